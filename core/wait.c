/* SPDX-License-Identifier: MIT */
/*
 * The honest wait estimate (wait.h; the formula and its reasons are in docs/sla.md,
 * "Honest wait").
 */
#include <stdlib.h>

#include "core/util.h"
#include "core/wait.h"

int64_t sb_wait_median(int64_t *ms, size_t n)
{
    if (n == 0)
        return -1;
    qsort(ms, n, sizeof(int64_t), sb_cmp_i64);
    return sb_nearest_rank(ms, n, 50);
}

/* The median scaled by the customers ahead per person online, in [median, max(median, cap)]. */
static int64_t scaled(int64_t median, uint64_t ahead, uint64_t online)
{
    int64_t cap = median > SB_WAIT_CAP_MS ? median : SB_WAIT_CAP_MS;
    double e = (double)median * (double)ahead / (double)online;
    if (e <= (double)median)
        return median;
    if (e >= (double)cap)
        return cap;
    return (int64_t)e;
}

void sb_wait_estimate(const sb_wait_in_t *in, sb_wait_t *out)
{
    out->online = in->online;
    out->open = sb_calendar_is_open(in->cal, in->now_ms);
    out->back_at_ms = -1;
    out->expected_ms = -1;
    if (!out->open) {
        int64_t back = sb_calendar_next_open(in->cal, in->now_ms);
        if (back == SB_CALENDAR_NEVER || back < in->now_ms)
            return;
        out->back_at_ms = back;
        if (in->median_ms >= 0)
            out->expected_ms = back - in->now_ms + in->median_ms;
        return;
    }
    if (in->median_ms < 0 || in->online == 0)
        return;
    out->expected_ms = scaled(in->median_ms, in->ahead, in->online);
}

void sb_wait_in_from_stats(const json_t *stats, const char *channel, sb_wait_in_t *in)
{
    const json_t *ch = json_object_get(json_object_get(stats, "by_channel"), channel);
    const json_t *rt = json_object_get(json_object_get(stats, "first_response_ms"), channel);
    const json_t *p50 = json_object_get(rt, "p50");
    json_int_t queue = json_integer_value(json_object_get(ch, "queue"));
    json_int_t online = json_integer_value(json_object_get(stats, "staff_online"));
    in->median_ms = json_is_integer(p50) ? json_integer_value(p50) : -1;
    in->ahead = queue > 0 ? (uint64_t)queue : 0;
    in->online = online > 0 ? (uint64_t)online : 0;
}

void sb_wait_to_json(const sb_wait_t *w, json_t *obj)
{
    json_object_set_new(obj, "expected_reply_ms",
                        w->expected_ms >= 0 ? json_integer(w->expected_ms) : json_null());
    json_object_set_new(obj, "online", json_integer((json_int_t)w->online));
    json_object_set_new(obj, "open", json_boolean(w->open));
    json_object_set_new(obj, "back_at",
                        w->back_at_ms >= 0 ? json_integer(w->back_at_ms) : json_null());
}

bool sb_wait_changed(const sb_wait_t *a, const sb_wait_t *b)
{
    if (a->online != b->online || a->open != b->open || a->back_at_ms != b->back_at_ms)
        return true;
    if ((a->expected_ms < 0) != (b->expected_ms < 0))
        return true;
    int64_t d = a->expected_ms - b->expected_ms;
    return (d < 0 ? -d : d) * 10 > a->expected_ms;
}

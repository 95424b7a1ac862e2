/* SPDX-License-Identifier: MIT */
/*
 * The small pieces of reporting that need no Redis (core/reports.h): the first-response
 * histogram /metrics prints (Prometheus text exposition format 0.0.4, cumulative `le`
 * buckets), durations as a person reads them, and a report's time bounds.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "core/reports.h"
#include "core/util.h"

/* 10 s … 1 d: from a quick chat answer to a mail answered the next day. */
const double sb_frt_bounds_s[SB_FRT_BUCKETS] = {10,   30,   60,    120,   300,  600,
                                                1800, 3600, 14400, 28800, 86400};

void sb_frt_hist_observe(sb_frt_hist_t *h, const char *channel, int64_t ms)
{
    int c = sb_channel_index(channel);
    if (c < 0 || ms < 0)
        return;
    double s = (double)ms / 1000.0;
    int i = 0;
    while (i < SB_FRT_BUCKETS && s > sb_frt_bounds_s[i])
        i++;
    h->count[c][i]++;
    h->sum_s[c] += s;
}

bool sb_frt_hist_observe_reply(sb_frt_hist_t *h, const json_t *reply_result)
{
    const json_t *ms = json_object_get(reply_result, "first_response_ms");
    /* the reply's channel: its message's (the result's conversation is a short state) */
    const char *channel =
        json_string_value(json_object_get(json_object_get(reply_result, "message"), "channel"));
    if (!channel)
        channel = json_string_value(
            json_object_get(json_object_get(reply_result, "conversation"), "channel"));
    if (!json_is_integer(ms) || json_integer_value(ms) < 0 || sb_channel_index(channel) < 0)
        return false;
    sb_frt_hist_observe(h, channel, json_integer_value(ms));
    return true;
}

void sb_frt_hist_render(const sb_frt_hist_t *h, sb_buf_t *b)
{
    sb_buf_puts(b, "# HELP switchboard_first_response_seconds Time from a customer's first "
                   "message to the first public reply by a person, by channel.\n"
                   "# TYPE switchboard_first_response_seconds histogram\n");
    for (int c = 0; c < SB_CHANNEL_COUNT; c++) {
        const char *ch = sb_channel_name(c);
        uint64_t cum = 0;
        for (int i = 0; i <= SB_FRT_BUCKETS; i++) {
            cum += h->count[c][i];
            if (i == SB_FRT_BUCKETS)
                sb_buf_printf(b,
                              "switchboard_first_response_seconds_bucket{channel=\"%s\","
                              "le=\"+Inf\"} %" PRIu64 "\n",
                              ch, cum);
            else
                sb_buf_printf(b,
                              "switchboard_first_response_seconds_bucket{channel=\"%s\","
                              "le=\"%g\"} %" PRIu64 "\n",
                              ch, sb_frt_bounds_s[i], cum);
        }
        sb_buf_printf(b,
                      "switchboard_first_response_seconds_sum{channel=\"%s\"} %.3f\n"
                      "switchboard_first_response_seconds_count{channel=\"%s\"} %" PRIu64 "\n",
                      ch, h->sum_s[c], ch, cum);
    }
}

const char *sb_duration_human(int64_t ms, char *out, size_t cap)
{
    static const struct {
        const char *unit;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    if (ms < 0)
        ms = 0;
    if (ms > 0 && ms < 1000) {
        snprintf(out, cap, "<1s");
        return out;
    }
    for (size_t i = 0; i < SB_ARRAY_LEN(units); i++) {
        if (ms < units[i].ms && i + 1 < SB_ARRAY_LEN(units))
            continue;
        long long big = ms / units[i].ms;
        long long small = i + 1 < SB_ARRAY_LEN(units) ? (ms % units[i].ms) / units[i + 1].ms : 0;
        if (small)
            snprintf(out, cap, "%lld%s %lld%s", big, units[i].unit, small, units[i + 1].unit);
        else
            snprintf(out, cap, "%lld%s", big, units[i].unit);
        return out;
    }
    return out; /* not reached: the last unit always answers */
}

int sb_report_time_parse(const char *s, int64_t now_ms, int64_t *out)
{
    if (!s || !*s)
        return SB_EINVAL;
    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    size_t digits = strspn(s, "0123456789");
    if (digits == strlen(s)) { /* an absolute time in ms */
        if (digits > 15)
            return SB_EINVAL;
        *out = strtoll(s, NULL, 10);
        return 0;
    }
    int64_t ago;
    if (digits == 0 || sb_config_parse_duration(s, &ago) != 0 || ago > now_ms)
        return SB_EINVAL;
    *out = now_ms - ago;
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The SLA engine (sla_engine.h). Per shard at most one call is in flight: a tick, and
 * when it returned states to plan, the sb_sla_set that stores their plans. A tick that
 * reports more work (its limit or its message ids ran out) is followed at once by
 * another with more ids, so a burst of due timers drains without waiting for the timer.
 */
#include <inttypes.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla_engine.h"
#include "core/sys.h"
#include "core/util.h"

/* Message ids passed with an ordinary tick, and with one that follows a tick out of ids. */
#define IDS_IDLE   8
#define IDS_BURST  512
#define TICK_LIMIT 200

/* Firing lateness buckets (upper bounds, ms); the last is +Inf. */
static const int64_t late_bounds[] = {50, 100, 250, 500, 1000, 2500, 5000, 30000};
#define NLATE (SB_ARRAY_LEN(late_bounds) + 1)

typedef struct shard_state {
    sb_sla_engine_t *e;
    unsigned index;
    bool busy;
    bool burst; /* the last tick ran out of ids or hit its limit */
} shard_state_t;

struct sb_sla_engine {
    uv_timer_t timer;
    sb_store_t *store;
    const sb_sla_conf_t *conf;
    unsigned nshards;
    shard_state_t *shards;
    unsigned busy; /* calls in flight */
    bool stopping, timer_closed;
    uint64_t ticks, plans, plan_errors, fired, errors;
    uint64_t late[NLATE], late_n;
    int64_t late_sum_ms;
};

static void maybe_free(sb_sla_engine_t *e)
{
    if (!e->stopping || e->busy || !e->timer_closed)
        return;
    sb_free(e->shards);
    sb_free(e);
}

static void tick_shard(shard_state_t *s);

static void call_done(shard_state_t *s)
{
    sb_sla_engine_t *e = s->e;
    s->busy = false;
    e->busy--;
    if (e->stopping)
        maybe_free(e);
    else if (s->burst)
        tick_shard(s);
}

static void on_set(int status, json_t *result, const char *errmsg, void *data)
{
    shard_state_t *s = data;
    (void)result;
    if (status) {
        s->e->errors++;
        SB_LOG_WARN("sla.plan", "shard=%u err=%s reason=\"%s\"", s->index, sb_err_name(status),
                    errmsg ? errmsg : "");
    }
    call_done(s);
}

/* How late each fired step was, from the tick's "late" list (ms). */
static void count_late(sb_sla_engine_t *e, const json_t *late)
{
    size_t i;
    json_t *v;
    json_array_foreach(late, i, v)
    {
        int64_t ms = json_integer_value(v);
        size_t b = 0;
        while (b < SB_ARRAY_LEN(late_bounds) && ms > late_bounds[b])
            b++;
        e->late[b]++;
        e->late_n++;
        e->late_sum_ms += ms;
    }
}

static void on_tick(int status, json_t *result, const char *errmsg, void *data)
{
    shard_state_t *s = data;
    sb_sla_engine_t *e = s->e;
    s->burst = false;
    if (status) {
        e->errors++;
        if (status != SB_EDISCONNECTED && status != SB_EUNAVAILABLE)
            SB_LOG_WARN("sla.tick", "shard=%u err=%s reason=\"%s\"", s->index, sb_err_name(status),
                        errmsg ? errmsg : "");
        call_done(s);
        return;
    }
    e->fired += (uint64_t)json_integer_value(json_object_get(result, "fired"));
    count_late(e, json_object_get(result, "late"));
    s->burst = json_is_true(json_object_get(result, "more")) && !e->stopping;
    json_t *states = json_object_get(result, "plan");
    json_t *plans = json_array();
    int64_t now = sb_now_ms();
    size_t i;
    json_t *state;
    json_array_foreach(states, i, state)
    {
        char why[160] = "";
        json_t *p = sb_sla_plan_json(e->conf, state, now, why, sizeof(why));
        if (p) {
            json_array_append_new(plans, p);
            e->plans++;
        } else {
            /* stays dirty: its lease runs out and it is tried again (and logged again) */
            e->plan_errors++;
            SB_LOG_WARN("sla.plan", "conv=%s reason=\"%s\"",
                        json_string_value(json_object_get(state, "conv")) ?: "?", why);
        }
    }
    if (json_array_size(plans) == 0 || e->stopping) {
        json_decref(plans);
        call_done(s);
        return;
    }
    if (sb_store_sla_set(e->store, s->index, plans, on_set, s) != 0) {
        e->errors++;
        call_done(s);
    }
}

static void tick_shard(shard_state_t *s)
{
    sb_sla_engine_t *e = s->e;
    if (s->busy || e->stopping || !sb_store_ready(e->store))
        return;
    s->busy = true;
    e->busy++;
    unsigned nids = s->burst ? IDS_BURST : IDS_IDLE;
    if (sb_store_sla_tick(e->store, s->index, TICK_LIMIT, nids, on_tick, s) != 0) {
        s->burst = false;
        s->busy = false;
        e->busy--;
        e->errors++;
    }
}

static void on_timer(uv_timer_t *t)
{
    sb_sla_engine_t *e = t->data;
    e->ticks++;
    for (unsigned i = 0; i < e->nshards; i++)
        tick_shard(&e->shards[i]);
}

int sb_sla_engine_start(uv_loop_t *loop, sb_store_t *store, const sb_sla_conf_t *conf,
                        unsigned tick_ms, sb_sla_engine_t **out)
{
    if (!loop || !store || !conf || !out)
        return SB_EINVAL;
    sb_sla_engine_t *e = SB_NEW(sb_sla_engine_t);
    e->store = store;
    e->conf = conf;
    e->nshards = sb_store_opts(store)->shards;
    e->shards = sb_calloc(e->nshards, sizeof(shard_state_t));
    for (unsigned i = 0; i < e->nshards; i++)
        e->shards[i] = (shard_state_t){.e = e, .index = i};
    uv_timer_init(loop, &e->timer);
    e->timer.data = e;
    unsigned every = tick_ms ? tick_ms : 100;
    uv_timer_start(&e->timer, on_timer, every, every);
    *out = e;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    sb_sla_engine_t *e = h->data;
    e->timer_closed = true;
    maybe_free(e);
}

void sb_sla_engine_stop(sb_sla_engine_t *e)
{
    if (!e || e->stopping)
        return;
    e->stopping = true;
    uv_close((uv_handle_t *)&e->timer, on_timer_closed);
}

void sb_sla_engine_metrics(const sb_sla_engine_t *e, sb_buf_t *out)
{
    if (!e)
        return;
    sb_buf_printf(out,
                  "# HELP switchboard_sla_ticks_total Timer ticks of this node's SLA engine.\n"
                  "# TYPE switchboard_sla_ticks_total counter\n"
                  "switchboard_sla_ticks_total %" PRIu64 "\n"
                  "# HELP switchboard_sla_plans_total Conversations whose SLA clocks this node "
                  "planned.\n"
                  "# TYPE switchboard_sla_plans_total counter\n"
                  "switchboard_sla_plans_total %" PRIu64 "\n"
                  "# HELP switchboard_sla_plan_errors_total Clock states that could not be "
                  "planned (logged).\n"
                  "# TYPE switchboard_sla_plan_errors_total counter\n"
                  "switchboard_sla_plan_errors_total %" PRIu64 "\n"
                  "# HELP switchboard_sla_steps_fired_total Warnings, breaches and escalations "
                  "this node fired.\n"
                  "# TYPE switchboard_sla_steps_fired_total counter\n"
                  "switchboard_sla_steps_fired_total %" PRIu64 "\n"
                  "# HELP switchboard_sla_errors_total SLA store calls that failed.\n"
                  "# TYPE switchboard_sla_errors_total counter\n"
                  "switchboard_sla_errors_total %" PRIu64 "\n"
                  "# HELP switchboard_sla_fire_lateness_seconds How long after its time a step "
                  "fired.\n"
                  "# TYPE switchboard_sla_fire_lateness_seconds histogram\n",
                  e->ticks, e->plans, e->plan_errors, e->fired, e->errors);
    uint64_t cum = 0;
    for (size_t b = 0; b < NLATE; b++) {
        cum += e->late[b];
        if (b < SB_ARRAY_LEN(late_bounds))
            sb_buf_printf(out,
                          "switchboard_sla_fire_lateness_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                          (double)late_bounds[b] / 1000.0, cum);
        else
            sb_buf_printf(out,
                          "switchboard_sla_fire_lateness_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                          cum);
    }
    sb_buf_printf(out,
                  "switchboard_sla_fire_lateness_seconds_sum %.3f\n"
                  "switchboard_sla_fire_lateness_seconds_count %" PRIu64 "\n",
                  (double)e->late_sum_ms / 1000.0, e->late_n);
}

/* SPDX-License-Identifier: MIT */
/*
 * The plan of one conversation's SLA clocks (docs/sla.md, "Plan"): the clock facts the
 * Redis functions keep (wall-clock intervals each clock ran) in, due times and escalation
 * step times counted in the policy's business hours out. The functions cannot read a
 * time zone, so this is the only place open time is measured; the plan it returns is what
 * sb_sla_set stores and what sb_sla_tick fires.
 *
 * The state comes from Redis: every field is checked for type and range before use and a
 * state that is not shaped as documented is refused with the reason. An empty Lua table
 * reaches us as `{}` or `[]` whatever it meant, so either is taken for an empty list or
 * object.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/sla.h"

const char *const sb_clock_names[SB_CLOCKS] = {"first_response", "next_response", "resolution"};

#define SEGS_MAX   256
#define TIME_MAX   32503680000000LL /* 3000-01-01, far past any real instant */
#define GEN_MAX    1000000000LL
#define REV_MAX    9007199254740991LL /* 2^53 - 1: exact in a Lua number */
#define STRING_MAX 128

typedef struct clock_facts {
    bool present, done;
    bool running; /* since is set */
    int64_t gen, used, since;
    size_t nsegs;
    int64_t segs[SEGS_MAX][2];
} clock_facts_t;

typedef struct state {
    const char *conv, *channel, *priority;
    int64_t rev;
    const json_t *fired; /* object or NULL */
    clock_facts_t clocks[SB_CLOCKS];
} state_t;

typedef struct planned {
    int64_t at;
    int clock;
    const sb_sla_step_t *step;
} planned_t;

static bool fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* ---- Reading the state ---- */

/* An integer in min..max; a real with an integral value counts (Lua numbers are doubles). */
static bool get_int(const json_t *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t n;
    if (json_is_integer(v)) {
        n = (int64_t)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d)
            return false;
        n = (int64_t)d;
    } else {
        return false;
    }
    if (n < min || n > max)
        return false;
    *out = n;
    return true;
}

/* An object, or an empty array standing for one. */
static bool is_object_like(const json_t *v)
{
    return json_is_object(v) || (json_is_array(v) && json_array_size(v) == 0);
}

/* A string of 1..STRING_MAX bytes, or null when nullable (then *out NULL). */
static bool get_string(const json_t *v, bool nullable, const char **out)
{
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return true;
    }
    size_t n = json_is_string(v) ? json_string_length(v) : 0;
    if (n == 0 || n > STRING_MAX || strlen(json_string_value(v)) != n)
        return false;
    *out = json_string_value(v);
    return true;
}

static bool read_segs(const char *name, const json_t *segs, clock_facts_t *c, char *err,
                      size_t errlen)
{
    if (!segs || (json_is_object(segs) && json_object_size(segs) == 0))
        return true;
    if (!json_is_array(segs))
        return fail(err, errlen, "clocks.%s.segs is not an array", name);
    if (json_array_size(segs) > SEGS_MAX)
        return fail(err, errlen, "clocks.%s has more than %d segs", name, SEGS_MAX);
    size_t i;
    const json_t *seg;
    json_array_foreach(segs, i, seg)
    {
        int64_t a, b;
        if (!json_is_array(seg) || json_array_size(seg) != 2 ||
            !get_int(json_array_get(seg, 0), 0, TIME_MAX, &a) ||
            !get_int(json_array_get(seg, 1), a, TIME_MAX, &b))
            return fail(err, errlen, "clocks.%s.segs[%zu] is not [from, to] with from <= to", name,
                        i);
        c->segs[i][0] = a;
        c->segs[i][1] = b;
    }
    c->nsegs = json_array_size(segs);
    return true;
}

static bool read_clock(const char *name, const json_t *o, clock_facts_t *c, char *err,
                       size_t errlen)
{
    if (!json_is_object(o))
        return fail(err, errlen, "clocks.%s is not an object", name);
    const json_t *gen = json_object_get(o, "gen"), *used = json_object_get(o, "used");
    const json_t *since = json_object_get(o, "since"), *done = json_object_get(o, "done");
    const json_t *key = json_object_get(o, "key");
    c->present = true;
    if (!get_int(gen, 0, GEN_MAX, &c->gen))
        return fail(err, errlen, "clocks.%s.gen is not an integer in 0..%lld", name, GEN_MAX);
    if (used && !get_int(used, 0, TIME_MAX, &c->used))
        return fail(err, errlen, "clocks.%s.used is not a duration in ms", name);
    if (!since || (!json_is_null(since) && !get_int(since, 0, TIME_MAX, &c->since)))
        return fail(err, errlen, "clocks.%s.since is not a time in ms or null", name);
    c->running = !json_is_null(since);
    if (done && !json_is_boolean(done))
        return fail(err, errlen, "clocks.%s.done is not a boolean", name);
    c->done = json_is_true(done);
    if (key && !json_is_string(key))
        return fail(err, errlen, "clocks.%s.key is not a string", name);
    return read_segs(name, json_object_get(o, "segs"), c, err, errlen);
}

static bool read_clocks(const json_t *clocks, state_t *st, char *err, size_t errlen)
{
    if (!is_object_like(clocks))
        return fail(err, errlen, "clocks is not an object");
    if (!json_is_object(clocks))
        return true;
    size_t found = 0;
    for (int k = 0; k < SB_CLOCKS; k++) {
        const json_t *v = json_object_get(clocks, sb_clock_names[k]);
        if (v && !read_clock(sb_clock_names[k], v, &st->clocks[k], err, errlen))
            return false;
        found += v != NULL;
    }
    if (found != json_object_size(clocks))
        return fail(err, errlen, "clocks has a clock other than %s, %s, %s", sb_clock_names[0],
                    sb_clock_names[1], sb_clock_names[2]);
    return true;
}

static bool read_state(const json_t *j, state_t *st, char *err, size_t errlen)
{
    if (!json_is_object(j))
        return fail(err, errlen, "state is not an object");
    const json_t *status = json_object_get(j, "status"), *assignee = json_object_get(j, "assignee");
    const json_t *fired = json_object_get(j, "fired");
    const char *ignored;
    if (!get_string(json_object_get(j, "conv"), false, &st->conv))
        return fail(err, errlen, "conv is not a string of 1..%d bytes", STRING_MAX);
    if (!get_int(json_object_get(j, "rev"), 0, REV_MAX, &st->rev))
        return fail(err, errlen, "rev is not a non-negative integer");
    if (!get_string(json_object_get(j, "channel"), true, &st->channel))
        return fail(err, errlen, "channel is not a string or null");
    if (!get_string(json_object_get(j, "priority"), true, &st->priority))
        return fail(err, errlen, "priority is not a string or null");
    if (status && !get_string(status, false, &ignored))
        return fail(err, errlen, "status is not a string");
    if (assignee && !get_string(assignee, true, &ignored))
        return fail(err, errlen, "assignee is not a string or null");
    if (fired && !is_object_like(fired))
        return fail(err, errlen, "fired is not an object");
    st->fired = json_is_object(fired) ? fired : NULL;
    return read_clocks(json_object_get(j, "clocks"), st, err, errlen);
}

/* ---- Measuring ---- */

/* The clock's open time so far: folded plus its segments', the running interval aside. */
static int64_t used_total(const sb_calendar_t *cal, const clock_facts_t *c)
{
    int64_t used = c->used;
    for (size_t i = 0; i < c->nsegs; i++)
        used += sb_calendar_open_ms(cal, c->segs[i][0], c->segs[i][1]);
    return used;
}

/*
 * The instant the running clock c reached (or will reach) x ms of open time, given its
 * open time total before the running interval. A mark passed inside a segment is found
 * there; one passed in time already folded away is dated to the earliest instant still
 * known (only its being past matters then).
 */
static int64_t reach(const sb_calendar_t *cal, const clock_facts_t *c, int64_t total, int64_t x)
{
    if (x > total)
        return sb_calendar_add(cal, c->since, x - total);
    int64_t acc = c->used;
    if (x <= acc)
        return c->nsegs ? c->segs[0][0] : c->since;
    for (size_t i = 0; i < c->nsegs; i++) {
        int64_t open = sb_calendar_open_ms(cal, c->segs[i][0], c->segs[i][1]);
        if (acc + open >= x)
            return sb_calendar_add(cal, c->segs[i][0], x - acc);
        acc += open;
    }
    return c->since; /* not reached: x <= total */
}

static bool fired(const state_t *st, int clock, unsigned percent)
{
    char key[96];
    snprintf(key, sizeof(key), "%s:%lld:%u", sb_clock_names[clock],
             (long long)st->clocks[clock].gen, percent);
    return st->fired && json_object_get(st->fired, key);
}

static int planned_cmp(const void *a, const void *b)
{
    const planned_t *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    if (x->clock != y->clock)
        return x->clock - y->clock;
    return x->step->percent < y->step->percent ? -1 : x->step->percent > y->step->percent;
}

/* ---- Writing the plan ---- */

static json_t *time_or_null(int64_t t)
{
    return t == SB_CALENDAR_NEVER ? json_null() : json_integer((json_int_t)t);
}

static json_t *step_json(const state_t *st, const planned_t *p)
{
    json_t *targets = json_array();
    for (size_t i = 0; i < p->step->ntargets; i++)
        json_array_append_new(targets, json_string(p->step->targets[i]));
    json_t *o = json_object();
    json_object_set_new(o, "at", json_integer((json_int_t)p->at));
    json_object_set_new(o, "clock", json_string(sb_clock_names[p->clock]));
    json_object_set_new(o, "gen", json_integer((json_int_t)st->clocks[p->clock].gen));
    json_object_set_new(o, "percent", json_integer((json_int_t)p->step->percent));
    json_object_set_new(o, "targets", targets);
    return o;
}

/* The plan's fields for policy p: due, paused, fold, steps, queue_at. */
static void plan_policy(const sb_sla_policy_t *p, const state_t *st, json_t *plan)
{
    json_t *due = json_object(), *fold = json_object(), *steps = json_array();
    int64_t dues[SB_CLOCKS];
    bool paused = false;
    size_t n = 0;
    planned_t *list = sb_calloc(SB_CLOCKS * p->nsteps + 1, sizeof(*list));
    for (int k = 0; k < SB_CLOCKS; k++) {
        const clock_facts_t *c = &st->clocks[k];
        int64_t total = used_total(p->cal, c);
        dues[k] = SB_CALENDAR_NEVER;
        if (c->nsegs) {
            json_t *f = json_object();
            json_object_set_new(f, "used", json_integer((json_int_t)total));
            json_object_set_new(f, "n", json_integer((json_int_t)c->nsegs));
            json_object_set_new(fold, sb_clock_names[k], f);
        }
        if (c->present && !c->done && !c->running)
            paused = true;
        if (c->present && !c->done && c->running) {
            int64_t target = p->target_ms[k];
            dues[k] = reach(p->cal, c, total, target);
            for (size_t i = 0; i < p->nsteps; i++) {
                const sb_sla_step_t *s = &p->steps[i];
                int64_t at = reach(p->cal, c, total, target * s->percent / 100);
                if (!fired(st, k, s->percent) && at != SB_CALENDAR_NEVER)
                    list[n++] = (planned_t){at, k, s};
            }
        }
        json_object_set_new(due, sb_clock_names[k], time_or_null(dues[k]));
    }
    if (n)
        qsort(list, n, sizeof(*list), planned_cmp);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(steps, step_json(st, &list[i]));
    sb_free(list);
    const clock_facts_t *first = &st->clocks[SB_CLOCK_FIRST];
    int response = first->present && !first->done ? SB_CLOCK_FIRST : SB_CLOCK_NEXT;
    json_object_set_new(plan, "policy", json_string(p->name));
    json_object_set_new(plan, "due", due);
    json_object_set_new(plan, "paused", json_boolean(paused));
    json_object_set_new(plan, "fold", fold);
    json_object_set_new(plan, "steps", steps);
    json_object_set_new(plan, "queue_at", time_or_null(dues[response]));
}

json_t *sb_sla_plan_json(const sb_sla_conf_t *conf, const json_t *state, int64_t now_ms, char *err,
                         size_t errlen)
{
    (void)now_ms; /* every instant derives from the facts; past steps keep past times */
    state_t *st = sb_calloc(1, sizeof(*st));
    if (!read_state(state, st, err, errlen)) {
        sb_free(st);
        return NULL;
    }
    json_t *plan = json_object();
    json_object_set_new(plan, "conv", json_string(st->conv));
    json_object_set_new(plan, "rev", json_integer((json_int_t)st->rev));
    const sb_sla_policy_t *p = sb_sla_match(conf, st->channel, st->priority);
    if (p) {
        plan_policy(p, st, plan);
    } else {
        json_t *due = json_object();
        for (int k = 0; k < SB_CLOCKS; k++)
            json_object_set_new(due, sb_clock_names[k], json_null());
        json_object_set_new(plan, "policy", json_null());
        json_object_set_new(plan, "due", due);
        json_object_set_new(plan, "paused", json_false());
        json_object_set_new(plan, "fold", json_object());
        json_object_set_new(plan, "steps", json_array());
        json_object_set_new(plan, "queue_at", json_null());
    }
    sb_free(st);
    return plan;
}

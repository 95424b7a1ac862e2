/* SPDX-License-Identifier: MIT */
/*
 * The SLA clocks and timers in the function library (functions.lua; docs/sla.md) on a real
 * redis-server: what each change records, plans applied only while current, steps fired
 * once whichever node ticks, pauses and stops. Time is this test's clock (core/sys.h).
 */
#include "tests/integration/store_fixture.h"

#include <hiredis/hiredis.h>

#include "core/sys.h"

static int64_t fake_now = 1800000000000;
static int64_t fake_now_ms(void)
{
    return fake_now;
}
static const sb_sys_t fake_sys = {.now_ms = fake_now_ms};

/* A store with SLA clocks on, on its own connection (another node when there are two). */
static void sla_node(fixture_t *f, node_t *n)
{
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "sla", .cmd_timeout_ms = 2000};
    assert_int_equal(sb_redis_new(&f->loop, &ro, &n->redis), 0);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16, .sla = true};
    sb_store_new(n->redis, &so, &n->store);
    /* the fixture's own store loads the functions on its connection */
    SB_TEST_SPIN_UNTIL(&f->loop, sb_store_ready(f->store), 5000);
}

static void call_done(fixture_t *f, result_t *r)
{
    wait(f, r);
    if (r->status)
        fail_msg("store call: %s", r->errmsg);
}

static json_t *tick(fixture_t *f, node_t *n, unsigned shard)
{
    result_t r = {0};
    assert_int_equal(sb_store_sla_tick(n->store, shard, 0, 64, on_result, &r), 0);
    call_done(f, &r);
    return r.json;
}

static json_t *get(fixture_t *f, node_t *n, const char *conv)
{
    result_t r = {0};
    assert_int_equal(sb_store_get(n->store, conv, on_result, &r), 0);
    call_done(f, &r);
    return r.json;
}

static char *redis_str(fixture_t *f, const char *fmt, const char *a, const char *b)
{
    redisContext *c = redisConnect("127.0.0.1", f->srv.port);
    redisReply *rep = redisCommand(c, fmt, a, b);
    char *out = NULL;
    if (rep && rep->type == REDIS_REPLY_STRING)
        out = strdup(rep->str);
    else if (rep && rep->type == REDIS_REPLY_INTEGER)
        out = sb_asprintf("%lld", rep->integer);
    freeReplyObject(rep);
    redisFree(c);
    return out;
}

/* A new web chat conversation on the SLA node. */
static void start_conv(fixture_t *f, node_t *n, char conv[SB_ID_MAX])
{
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    result_t r = {0};
    sb_ingest_t in = {.channel = "webchat", .contact_id = ct, .text = "help"};
    assert_int_equal(sb_store_ingest(n->store, &in, on_result, &r), 0);
    call_done(f, &r);
    snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    reset(&r);
}

static json_t *state_of(json_t *tick_result, const char *conv)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(tick_result, "plan"), i, s)
    {
        if (strcmp(jstr(s, "conv"), conv) == 0)
            return s;
    }
    return NULL;
}

/* A plan as core/sla.h makes it: 50 % and 100 % steps of first_response. */
static json_t *plan_for(const json_t *state, int64_t t50, int64_t t100, int64_t resolve_due)
{
    json_int_t gen = json_integer_value(json_object_get(
        json_object_get(json_object_get(state, "clocks"), "first_response"), "gen"));
    return json_pack("{s:O, s:O, s:s, s:{s:I, s:n, s:I}, s:b, s:{}, s:[{s:I, s:s, s:I, s:i, "
                     "s:[s]}, {s:I, s:s, s:I, s:i, s:[s]}], s:I}",
                     "conv", json_object_get(state, "conv"), "rev", json_object_get(state, "rev"),
                     "policy", "quick", "due", "first_response", (json_int_t)t100, "next_response",
                     "resolution", (json_int_t)resolve_due, "paused", 0, "fold", "steps", "at",
                     (json_int_t)t50, "clock", "first_response", "gen", gen, "percent", 50,
                     "targets", "assignee", "at", (json_int_t)t100, "clock", "first_response",
                     "gen", gen, "percent", 100, "targets", "everyone", "queue_at",
                     (json_int_t)t100);
}

static int set_plan(fixture_t *f, node_t *n, unsigned shard, json_t *plan)
{
    result_t r = {0};
    assert_int_equal(sb_store_sla_set(n->store, shard, json_pack("[o]", plan), on_result, &r), 0);
    call_done(f, &r);
    int applied = (int)json_integer_value(json_object_get(r.json, "applied"));
    reset(&r);
    return applied;
}

static void test_clocks_plan_and_fire_once(void **state)
{
    fixture_t *f = *state;
    sb_sys_set(&fake_sys);
    node_t a = {0}, b = {0};
    sla_node(f, &a);
    sla_node(f, &b);
    char conv[SB_ID_MAX];
    int64_t t0 = fake_now;
    start_conv(f, &a, conv);
    unsigned shard = sb_store_shard(a.store, conv);

    /* the new conversation is due for planning: first_response and resolution run */
    json_t *t = tick(f, &a, shard);
    json_t *st = state_of(t, conv);
    assert_non_null(st);
    json_t *fr = json_object_get(json_object_get(st, "clocks"), "first_response");
    assert_int_equal(json_integer_value(json_object_get(fr, "since")), t0);
    assert_int_equal(json_integer_value(json_object_get(fr, "gen")), 1);
    assert_false(json_is_true(json_object_get(fr, "done")));
    assert_non_null(json_object_get(json_object_get(st, "clocks"), "resolution"));
    assert_null(json_object_get(json_object_get(st, "clocks"), "next_response"));
    /* leased: the other node does not get it again at once */
    json_t *t2 = tick(f, &b, shard);
    assert_null(state_of(t2, conv));
    json_decref(t2);

    /* a stale plan is dropped, the current one applied */
    json_t *stale = plan_for(st, t0 + 60000, t0 + 120000, t0 + 86400000);
    json_object_set_new(stale, "rev",
                        json_integer(json_integer_value(json_object_get(st, "rev")) - 1));
    assert_int_equal(set_plan(f, &a, shard, stale), 0);
    assert_int_equal(set_plan(f, &a, shard, plan_for(st, t0 + 60000, t0 + 120000, t0 + 86400000)),
                     1);
    json_decref(t);

    json_t *c = get(f, &a, conv);
    assert_string_equal(jstr(c, "sla.policy"), "quick");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(c, "sla"), "first_response_due")),
        t0 + 120000);
    assert_true(json_is_null(json_object_get(json_object_get(c, "sla"), "next_response_due")));
    json_decref(c);
    char key[128];
    snprintf(key, sizeof(key), "sb:{%u}:queue", shard);
    char *score = redis_str(f, "ZSCORE %s %s", key, conv);
    assert_non_null(score);
    assert_int_equal(atoll(score), t0 + 120000); /* the queue is ordered by due time */
    free(score);

    /* nothing due yet; at 50 % one warning to everyone (nobody holds it), whichever node */
    fake_now = t0 + 59999;
    json_decref(tick(f, &a, shard));
    assert_int_equal(count_events(f, conv, "sla_warning", NULL), 0);
    fake_now = t0 + 60000;
    json_t *ta = tick(f, &a, shard), *tb = tick(f, &b, shard);
    assert_int_equal(json_integer_value(json_object_get(ta, "fired")) +
                         json_integer_value(json_object_get(tb, "fired")),
                     1);
    json_decref(ta);
    json_decref(tb);
    json_t *ev = NULL;
    assert_int_equal(count_events(f, conv, "sla_warning", &ev), 1);
    assert_string_equal(jstr(ev, "clock"), "first_response");
    assert_int_equal(json_integer_value(json_object_get(ev, "percent")), 50);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "targets"), 0)),
                        "everyone");
    assert_int_equal(json_integer_value(json_object_get(ev, "due")), t0 + 120000);

    /* the breach, once, late by what the clock says */
    fake_now = t0 + 125000;
    ta = tick(f, &b, shard);
    assert_int_equal(json_integer_value(json_object_get(ta, "fired")), 1);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(ta, "late"), 0)), 5000);
    json_decref(ta);
    json_decref(tick(f, &a, shard));
    assert_int_equal(count_events(f, conv, "sla_breach", &ev), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(ev, "targets"), 0)),
                        "everyone");
    c = get(f, &a, conv);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(c, "sla"), "breaches"), 0)),
                        "first_response");
    json_decref(c);
    snprintf(key, sizeof(key), "sb:{%u}:facts", shard);
    char *n = redis_str(f, "XLEN %s", key, NULL);
    assert_string_equal(n, "1");
    free(n);
    snprintf(key, sizeof(key), "sb:{%u}:sla", shard);
    score = redis_str(f, "ZSCORE %s %s", key, conv);
    assert_null(score); /* nothing left to do */

    /* a human reply stops first_response for good: planned again, with its run closed */
    result_t r = {0};
    fake_now = t0 + 130000;
    assert_int_equal(sb_store_reply(a.store, conv, &bob, "hi", NULL, NULL, false, on_result, &r),
                     0);
    call_done(f, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "first_response_ms")), 130000);
    reset(&r);
    t = tick(f, &a, shard);
    st = state_of(t, conv);
    assert_non_null(st);
    fr = json_object_get(json_object_get(st, "clocks"), "first_response");
    assert_true(json_is_true(json_object_get(fr, "done")));
    assert_true(json_is_null(json_object_get(fr, "since")));
    assert_int_equal(
        json_integer_value(json_array_get(json_array_get(json_object_get(fr, "segs"), 0), 1)),
        t0 + 130000);
    assert_non_null(json_object_get(json_object_get(st, "fired"), "first_response:1:50"));
    json_decref(t);
    json_decref(ev);
    node_stop(f, &a);
    node_stop(f, &b);
    sb_sys_set(NULL);
}

static void test_pending_pauses_and_waits(void **state)
{
    fixture_t *f = *state;
    sb_sys_set(&fake_sys);
    node_t a = {0};
    sla_node(f, &a);
    char conv[SB_ID_MAX];
    int64_t t0 = fake_now += 1000000;
    start_conv(f, &a, conv);
    unsigned shard = sb_store_shard(a.store, conv);
    json_decref(tick(f, &a, shard));
    result_t r = {0};
    /* answered, then the customer writes twice: one next_response wait from the first */
    fake_now = t0 + 1000;
    assert_int_equal(sb_store_reply(a.store, conv, &bob, "hi", NULL, NULL, false, on_result, &r),
                     0);
    call_done(f, &r);
    reset(&r);
    json_decref(tick(f, &a, shard));
    char ct[SB_ID_MAX];
    json_t *c = get(f, &a, conv);
    snprintf(ct, sizeof(ct), "%s", jstr(c, "contact.id"));
    json_decref(c);
    for (int i = 0; i < 2; i++) {
        fake_now = t0 + 2000 + i * 1000;
        sb_ingest_t in = {.channel = "webchat", .contact_id = ct, .conv = conv, .text = "more"};
        assert_int_equal(sb_store_ingest(a.store, &in, on_result, &r), 0);
        call_done(f, &r);
        reset(&r);
    }
    fake_now = t0 + 3500;
    json_t *t = tick(f, &a, shard);
    json_t *nr = json_object_get(json_object_get(state_of(t, conv), "clocks"), "next_response");
    assert_non_null(nr);
    assert_int_equal(json_integer_value(json_object_get(nr, "gen")), 1);
    assert_int_equal(json_integer_value(json_object_get(nr, "since")), t0 + 2000);
    json_decref(t);

    /* pending pauses every clock; the customer's message resumes them */
    fake_now = t0 + 5000;
    assert_int_equal(sb_store_act(a.store, conv, "pending", &bob, NULL, on_result, &r), 0);
    call_done(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "conversation.status"), "pending");
    fake_now = t0 + 6000;
    t = tick(f, &a, shard);
    json_t *clocks = json_object_get(state_of(t, conv), "clocks");
    nr = json_object_get(clocks, "next_response");
    assert_true(json_is_null(json_object_get(nr, "since")));
    assert_int_equal(
        json_integer_value(json_array_get(json_array_get(json_object_get(nr, "segs"), 0), 1)),
        t0 + 5000);
    assert_true(json_is_null(json_object_get(json_object_get(clocks, "resolution"), "since")));
    json_decref(t);
    fake_now = t0 + 9000;
    sb_ingest_t in = {.channel = "webchat", .contact_id = ct, .conv = conv, .text = "back"};
    assert_int_equal(sb_store_ingest(a.store, &in, on_result, &r), 0);
    call_done(f, &r);
    reset(&r);
    fake_now = t0 + 9500;
    t = tick(f, &a, shard);
    nr = json_object_get(json_object_get(state_of(t, conv), "clocks"), "next_response");
    assert_int_equal(json_integer_value(json_object_get(nr, "since")), t0 + 9000);
    assert_int_equal(json_integer_value(json_object_get(nr, "gen")), 1); /* the same wait */

    /* resolved stops everything; reopening starts resolution over */
    reset(&r);
    assert_int_equal(sb_store_act(a.store, conv, "resolve", &bob, NULL, on_result, &r), 0);
    call_done(f, &r);
    assert_int_equal(r.status, 0);
    json_decref(t);
    fake_now = t0 + 10000;
    t = tick(f, &a, shard);
    clocks = json_object_get(state_of(t, conv), "clocks");
    assert_true(json_is_true(json_object_get(json_object_get(clocks, "resolution"), "done")));
    assert_true(json_is_true(json_object_get(json_object_get(clocks, "next_response"), "done")));
    json_decref(t);
    in.text = "it broke again";
    fake_now = t0 + 11000;
    assert_int_equal(sb_store_ingest(a.store, &in, on_result, &r), 0);
    call_done(f, &r);
    reset(&r);
    fake_now = t0 + 12000;
    t = tick(f, &a, shard);
    clocks = json_object_get(state_of(t, conv), "clocks");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(clocks, "resolution"), "gen")), 2);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(clocks, "next_response"), "gen")), 2);
    json_decref(t);
    reset(&r);
    node_stop(f, &a);
    sb_sys_set(NULL);
}

/* Without SLA policies nothing is recorded: no k field, nothing in sla. */
static void test_off_without_policies(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    char key[128];
    snprintf(key, sizeof(key), "sb:{%u}:conv:%s", sb_store_shard(f->store, conv), conv);
    char *k = redis_str(f, "HGET %s %s", key, "k");
    assert_null(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clocks_plan_and_fire_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_pauses_and_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_off_without_policies, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Accountability reports (core/store_reports.c) on a real redis-server: facts written into
 * the shards' `facts` streams in the shape docs/sla.md gives them, read back as
 * percentiles by channel and policy, breaches, people with their names, within the time
 * bounds, for one channel or a scope, in pages, and cut at the cap with "truncated"; the
 * longest-waiting customers (`sb_waiting`) merged over the shards, oldest first.
 */
#include "tests/integration/store_fixture.h"

#include "core/reports.h"
#include "core/sys.h"

static int64_t fake_now;
static int64_t now_fake(void)
{
    return fake_now;
}
static const sb_sys_t fake_sys = {.now_ms = now_fake};

/* One facts entry at time at (ms) on shard; fields a literal "k v k v…". */
#define fact(f, shard, at, fields)                                                                 \
    sb_test_redis_cmd(&(f)->srv, "XADD sb:{%u}:facts %lld-0 " fields, (unsigned)(shard),           \
                      (long long)(at))

static json_t *report(fixture_t *f, const sb_report_query_t *q)
{
    result_t r = {0};
    assert_int_equal(sb_store_report(f->store, q, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    return r.json;
}

static json_int_t geti(const json_t *j, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    assert_non_null(cur);
    return json_integer_value(cur);
}

static const json_t *person_row(const json_t *rep, const char *id)
{
    const json_t *people = json_object_get(rep, "people");
    for (size_t i = 0; i < json_array_size(people); i++)
        if (strcmp(jstr(json_array_get(people, i), "id"), id) == 0)
            return json_array_get(people, i);
    return NULL;
}

/* Ten webchat first responses of 1..10 s over two shards, one email one; resolutions;
 * breaches; answers by two people; and facts just outside [1000, 2000]. */
static void seed(fixture_t *f)
{
    fact(f, 0, 999, "t first ms 999999 channel webchat policy quick staff st_ann conv c_o");
    for (int i = 1; i <= 10; i++)
        sb_test_redis_cmd(&f->srv,
                          "XADD sb:{%u}:facts %d-0 t first ms %d channel webchat policy quick "
                          "staff st_ann conv c_%d",
                          i % 2 ? 0u : 3u, 1000 + i, i * 1000, i);
    for (int i = 1; i <= 10; i++)
        fact(f, i % 2 ? 0 : 3, 1100 + i,
             "t answer ms 1 channel webchat policy quick staff st_ann conv c_x");
    fact(f, 5, 1500, "t first ms 120000 channel email policy slow staff st_bob conv c_m");
    fact(f, 5, 1502, "t answer ms 120000 channel email policy slow staff st_bob conv c_m");
    fact(f, 5, 1503, "t answer ms 5000 channel email policy slow staff st_bob conv c_m");
    fact(f, 7, 1600, "t resolved ms 3600000 channel email policy slow staff st_bob conv c_m");
    sb_test_redis_cmd(&f->srv,
                      "XADD sb:{7}:facts 1601-0 t resolved ms 60000 channel webchat policy quick "
                      "staff %s conv c_1",
                      "");
    fact(f, 2, 1700, "t breach clock first_response channel webchat policy quick conv c_1");
    fact(f, 2, 1701, "t breach clock first_response channel webchat policy quick conv c_2");
    fact(f, 9, 1702, "t breach clock resolution channel email policy slow conv c_m");
    fact(f, 3, 2001, "t first ms 999999 channel webchat policy quick staff st_ann conv c_o");
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:st_ann id st_ann name Ann role agent");
}

static void test_report_figures(void **state)
{
    fixture_t *f = *state;
    seed(f);
    sb_report_query_t q = {.from_ms = 1000, .to_ms = 2000};
    json_t *rep = report(f, &q);
    assert_false(json_is_true(json_object_get(rep, "truncated")));
    assert_int_equal(geti(rep, "scanned"), 28);
    /* nearest rank of 1..10 s: p50 the 5th, p90 the 9th; the facts outside never count */
    assert_int_equal(geti(rep, "first_response.by_channel.webchat.p50"), 5000);
    assert_int_equal(geti(rep, "first_response.by_channel.webchat.p90"), 9000);
    assert_int_equal(geti(rep, "first_response.by_channel.webchat.n"), 10);
    assert_int_equal(geti(rep, "first_response.by_channel.email.p50"), 120000);
    assert_int_equal(geti(rep, "first_response.by_policy.quick.n"), 10);
    assert_int_equal(geti(rep, "first_response.by_policy.slow.p90"), 120000);
    assert_int_equal(geti(rep, "resolution.by_channel.email.p50"), 3600000);
    assert_int_equal(geti(rep, "resolution.by_policy.quick.p50"), 60000);
    assert_int_equal(geti(rep, "breaches.total"), 3);
    assert_int_equal(geti(rep, "breaches.by_policy.quick.first_response"), 2);
    assert_int_equal(geti(rep, "breaches.by_policy.quick.total"), 2);
    assert_int_equal(geti(rep, "breaches.by_policy.slow.resolution"), 1);
    /* people: most answered first, names from their records (Bob has none) */
    const json_t *people = json_object_get(rep, "people");
    assert_int_equal(json_array_size(people), 2);
    assert_string_equal(jstr(json_array_get(people, 0), "id"), "st_ann");
    assert_string_equal(jstr(json_array_get(people, 0), "name"), "Ann");
    assert_int_equal(geti(person_row(rep, "st_ann"), "answered"), 10);
    assert_int_equal(geti(person_row(rep, "st_ann"), "first_responses"), 10);
    assert_int_equal(geti(person_row(rep, "st_ann"), "resolved"), 0);
    assert_true(json_is_null(json_object_get(person_row(rep, "st_bob"), "name")));
    assert_int_equal(geti(person_row(rep, "st_bob"), "answered"), 2);
    assert_int_equal(geti(person_row(rep, "st_bob"), "resolved"), 1);
    json_decref(rep);

    /* one channel: only its facts */
    q.channel = "email";
    rep = report(f, &q);
    assert_string_equal(jstr(rep, "channel"), "email");
    const json_t *by = json_object_get(json_object_get(rep, "first_response"), "by_channel");
    assert_int_equal(json_object_size(by), 1);
    assert_non_null(json_object_get(by, "email"));
    assert_int_equal(geti(rep, "breaches.total"), 1);
    assert_null(person_row(rep, "st_ann"));
    json_decref(rep);

    /* a scope of webchat only */
    q.channel = NULL;
    q.scoped = true;
    q.channels = 1u << sb_channel_index("webchat");
    rep = report(f, &q);
    assert_null(json_object_get(
        json_object_get(json_object_get(rep, "first_response"), "by_channel"), "email"));
    assert_null(person_row(rep, "st_bob"));
    assert_int_equal(geti(rep, "breaches.total"), 2);
    json_decref(rep);

    /* the bounds are inclusive: [999, 2001] takes the two outside facts in */
    sb_report_query_t wide = {.from_ms = 999, .to_ms = 2001};
    rep = report(f, &wide);
    assert_int_equal(geti(rep, "first_response.by_channel.webchat.n"), 12);
    json_decref(rep);

    result_t r = {0};
    sb_report_query_t bad = {.from_ms = 2000, .to_ms = 1000};
    assert_int_equal(sb_store_report(f->store, &bad, on_result, &r), SB_EINVAL);
    assert_false(r.done);
}

static void test_report_pages_and_truncation(void **state)
{
    fixture_t *f = *state;
    /* 1200 facts on one shard: three pages of at most 500 */
    sb_test_redis_cmd(&f->srv, "EVAL %s 1 sb:{4}:facts",
                      "for i = 0, 1199 do redis.call('XADD', KEYS[1], (10000 + i) .. '-0', 't', "
                      "'answer', 'ms', '1', 'channel', 'api', 'policy', 'p', 'staff', 'st_many', "
                      "'conv', 'c_1') end");
    sb_report_query_t q = {.from_ms = 0, .to_ms = 20000};
    json_t *rep = report(f, &q);
    assert_int_equal(geti(rep, "scanned"), 1200);
    assert_false(json_is_true(json_object_get(rep, "truncated")));
    assert_int_equal(geti(person_row(rep, "st_many"), "answered"), 1200);
    json_decref(rep);

    q.max_facts = 700;
    rep = report(f, &q);
    assert_int_equal(geti(rep, "scanned"), 700);
    assert_true(json_is_true(json_object_get(rep, "truncated")));
    assert_int_equal(geti(person_row(rep, "st_many"), "answered"), 700);
    json_decref(rep);
}

/* A new conversation on channel at time at, by contact name, with subject-less state. */
static void waiting_conv(fixture_t *f, int64_t at, const char *channel, const char *name,
                         char conv[SB_ID_MAX])
{
    fake_now = at;
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    sb_ingest_t in = {.channel = channel, .contact_id = ct, .contact_name = name, .text = "hi"};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    reset(&r);
}

static void test_waiting(void **state)
{
    fixture_t *f = *state;
    sb_sys_set(&fake_sys);
    const int64_t t0 = 1700000000000;
    char convs[6][SB_ID_MAX];
    static const char *const names[] = {"Cleo", "Alma", "Finn", "Bea", "Eve", "Dan"};
    static const int64_t ago[] = {3000, 1000, 6000, 2000, 5000, 4000};
    for (int i = 0; i < 6; i++)
        waiting_conv(f, t0 - ago[i] * 1000, i % 2 ? "api" : "webchat", names[i], convs[i]);
    /* one answered: it no longer waits */
    fake_now = t0;
    result_t r = {0};
    assert_int_equal(
        sb_store_reply(f->store, convs[2], &bob, "hello", NULL, NULL, false, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    /* the first human response: its wait in the result, counted in the histogram
     * (6000 s: the bucket up to 4 h) */
    assert_int_equal(geti(r.json, "first_response_ms"), 6000 * 1000);
    const sb_frt_hist_t *h = sb_store_frt_hist(f->store);
    assert_int_equal(h->count[sb_channel_index("webchat")][8], 1);
    reset(&r);
    assert_int_equal(
        sb_store_reply(f->store, convs[2], &bob, "more", NULL, NULL, false, on_result, &r), 0);
    wait(f, &r);
    assert_null(json_object_get(r.json, "first_response_ms")); /* not the first any more */
    assert_int_equal(h->count[sb_channel_index("webchat")][8], 1);
    reset(&r);

    sb_report_query_t q = {.from_ms = 0, .to_ms = t0, .waiting = 3};
    json_t *rep = report(f, &q);
    const json_t *w = json_object_get(rep, "waiting");
    assert_int_equal(json_array_size(w), 3);
    /* oldest first, across shards: Eve (5000 s), Dan (4000 s), Cleo (3000 s) */
    assert_string_equal(jstr(json_array_get(w, 0), "contact_name"), "Eve");
    assert_string_equal(jstr(json_array_get(w, 0), "conv"), convs[4]);
    assert_string_equal(jstr(json_array_get(w, 0), "channel"), "webchat");
    assert_int_equal(geti(json_array_get(w, 0), "awaiting_since"), t0 - 5000 * 1000);
    assert_string_equal(jstr(json_array_get(w, 1), "contact_name"), "Dan");
    assert_string_equal(jstr(json_array_get(w, 2), "contact_name"), "Cleo");
    assert_true(json_is_null(json_object_get(json_array_get(w, 2), "assignee")));
    json_decref(rep);

    q.channel = "api";
    q.waiting = 0;
    rep = report(f, &q);
    w = json_object_get(rep, "waiting");
    assert_int_equal(json_array_size(w), 3); /* Dan, Alma… and Bea */
    assert_string_equal(jstr(json_array_get(w, 0), "contact_name"), "Dan");
    assert_string_equal(jstr(json_array_get(w, 1), "contact_name"), "Bea");
    assert_string_equal(jstr(json_array_get(w, 2), "contact_name"), "Alma");
    json_decref(rep);
    sb_sys_set(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_figures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_pages_and_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiting, setup, teardown),
    };
    return cmocka_run_group_tests_name("core/store_reports", tests, NULL, NULL);
}

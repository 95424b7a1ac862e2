/* SPDX-License-Identifier: MIT */
/*
 * The store and its Redis Functions against a real redis-server: every function,
 * idempotency, collision checks, claim races between two connections, reopening,
 * the events dispatcher's resume, and a Redis killed mid-run (nothing acked is lost).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/events.h"
#include "core/redis.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/harness/harness.h"

typedef struct fixture {
    sb_test_redis_t srv;
    uv_loop_t loop;
    sb_redis_t *redis;
    sb_store_t *store;
} fixture_t;

/* The result of one store call, copied out of the callback. */
typedef struct result {
    bool done;
    int status;
    json_t *json;
    char errmsg[256];
} result_t;

static void on_result(int status, json_t *res, const char *errmsg, void *data)
{
    result_t *r = data;
    r->done = true;
    r->status = status;
    r->json = res ? json_incref(res) : NULL;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg ? errmsg : "");
}

static void reset(result_t *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static void on_connect(sb_redis_t *r, void *data)
{
    fixture_t *f = data;
    sb_store_on_connect(f->store); /* reload the functions on every (re)connect */
}

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    if (sb_test_redis_start_aof(&f->srv) != 0)
        return -1;
    uv_loop_init(&f->loop);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "test", .cmd_timeout_ms = 2000,
                          .on_connect = on_connect, .data = f};
    if (sb_redis_new(&f->loop, &ro, &f->redis) != 0)
        return -1;
    sb_store_new(f->redis, &so, &f->store); /* set before the loop runs the hook */
    *state = f;
    return 0;
}

static void on_stopped(void *data)
{
    *(bool *)data = true;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    bool stopped = false;
    sb_redis_stop(f->redis, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    sb_store_free(f->store);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    sb_test_redis_stop(&f->srv);
    sb_free(f);
    return 0;
}

static void wait(fixture_t *f, result_t *r)
{
    assert_true(sb_test_loop_until(&f->loop, &r->done, 5000));
}

static const char *jstr(const json_t *j, const char *path)
{
    /* "a.b" lookups */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

static void ingest(fixture_t *f, result_t *r, const char *contact, const char *text,
                   const char *external_id)
{
    reset(r);
    sb_ingest_t in = {.channel = "api", .contact_id = contact, .contact_name = "Alice",
                      .text = text, .external_id = external_id};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, r), 0);
    wait(f, r);
}

static const sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};
static const sb_actor_t eve = {.type = "staff", .id = "st_eve", .name = "Eve"};
static const sb_actor_t admin = {.type = "staff", .id = "st_adm", .name = "Ada", .admin = true};

static void test_ingest_creates_and_appends(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest(f, &r, ct, "first", NULL);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    char conv[SB_ID_MAX];
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    assert_true(sb_id_valid(conv, "c_"));
    /* Conversations live in their contact's shard. */
    assert_int_equal(sb_store_shard(f->store, conv), sb_store_shard(f->store, ct));
    assert_string_equal(jstr(r.json, "message.text"), "first");
    assert_string_equal(jstr(r.json, "conversation.status"), "open");

    ingest(f, &r, ct, "second", NULL);
    assert_int_equal(r.status, 0);
    assert_false(json_is_true(json_object_get(r.json, "created")));
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "conversation"),
                                                        "message_count")),
                     2);

    reset(&r);
    assert_int_equal(sb_store_messages(f->store, conv, NULL, 10, on_result, &r), 0);
    wait(f, &r);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 3); /* created event + 2 messages */
    assert_string_equal(jstr(json_array_get(items, 0), "type"), "created");
    assert_string_equal(jstr(json_array_get(items, 2), "text"), "second");
    /* Queue holds it, keyed by shard. */
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "sb:{%u}:queue", sb_store_shard(f->store, conv));
    assert_string_not_equal(sb_test_redis_cmd(&f->srv, "ZSCORE %s %s", cmd, conv), "(nil)");
    reset(&r);
}

static void test_ingest_duplicate_external_id(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest(f, &r, ct, "once", "ext-1");
    assert_int_equal(r.status, 0);
    char mid[SB_ID_MAX], conv[SB_ID_MAX];
    snprintf(mid, sizeof(mid), "%s", jstr(r.json, "message.id"));
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    ingest(f, &r, ct, "once", "ext-1");
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "duplicate")));
    assert_string_equal(jstr(r.json, "message.id"), mid);
    char key[128];
    snprintf(key, sizeof(key), "sb:{%u}:log:%s", sb_store_shard(f->store, conv), conv);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "XLEN %s", key), "2"); /* created + 1 */
    reset(&r);
}

static void new_conv(fixture_t *f, char conv[SB_ID_MAX], char seq[48])
{
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest(f, &r, ct, "help me", NULL);
    assert_int_equal(r.status, 0);
    snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    if (seq)
        snprintf(seq, 48, "%s", jstr(r.json, "message.seq"));
    reset(&r);
}

static void test_reply_collision_and_force(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], seq[48];
    new_conv(f, conv, seq);
    result_t a = {0}, b = {0};
    /* Two staff answer the same message concurrently: exactly one wins. */
    assert_int_equal(sb_store_reply(f->store, conv, &bob, "from bob", NULL, seq, false,
                                    on_result, &a),
                     0);
    assert_int_equal(sb_store_reply(f->store, conv, &eve, "from eve", NULL, seq, false,
                                    on_result, &b),
                     0);
    wait(f, &a);
    wait(f, &b);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, SB_ECONFLICT);
    json_t *newer = json_object_get(b.json, "messages");
    assert_int_equal(json_array_size(newer), 1);
    assert_string_equal(jstr(json_array_get(newer, 0), "text"), "from bob");
    /* A staff reply clears awaiting_since and takes it out of the queue. */
    assert_true(json_is_null(
        json_object_get(json_object_get(a.json, "conversation"), "awaiting_since")));
    reset(&b);
    assert_int_equal(sb_store_reply(f->store, conv, &eve, "from eve", NULL, seq, true,
                                    on_result, &b),
                     0);
    wait(f, &b);
    assert_int_equal(b.status, 0);
    assert_string_equal(jstr(b.json, "message.dir"), "out");
    assert_string_equal(jstr(b.json, "message.author.id"), "st_eve");
    reset(&a);
    reset(&b);
    /* Same client_id again: same message, not stored twice. */
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "retry", "cli-1", NULL, false, on_result, &a), 0);
    wait(f, &a);
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "retry", "cli-1", NULL, false, on_result, &b), 0);
    wait(f, &b);
    assert_string_equal(jstr(a.json, "message.id"), jstr(b.json, "message.id"));
    assert_true(json_is_true(json_object_get(b.json, "duplicate")));
    reset(&a);
    reset(&b);
}

static void test_note_is_internal(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    result_t r = {0};
    assert_int_equal(sb_store_note(f->store, conv, &bob, "VIP, be nice", NULL, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "message.kind"), "note");
    assert_string_equal(jstr(r.json, "message.dir"), "internal");
    /* A note does not answer the customer: still awaiting. */
    assert_true(json_is_integer(
        json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    /* No outbox entry, nothing queued for delivery. */
    reset(&r);
}

static void test_claim_race_one_wins(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    /* A second connection, as another node would have. */
    sb_redis_t *r2;
    sb_store_t *s2;
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "node2", .cmd_timeout_ms = 2000};
    assert_int_equal(sb_redis_new(&f->loop, &ro, &r2), 0);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    sb_store_new(r2, &so, &s2);
    sb_store_on_connect(s2);
    result_t a = {0}, b = {0};
    assert_int_equal(sb_store_act(f->store, conv, "claim", &bob, NULL, on_result, &a), 0);
    assert_int_equal(sb_store_act(s2, conv, "claim", &eve, NULL, on_result, &b), 0);
    wait(f, &a);
    wait(f, &b);
    assert_true((a.status == 0) != (b.status == 0));
    assert_true(a.status == SB_ECONFLICT || b.status == SB_ECONFLICT);
    const char *winner = a.status == 0 ? "st_bob" : "st_eve";
    result_t g = {0};
    assert_int_equal(sb_store_get(f->store, conv, on_result, &g), 0);
    wait(f, &g);
    assert_string_equal(jstr(g.json, "assignee"), winner);
    reset(&g);
    /* The loser may not release; an admin may steal. */
    const sb_actor_t *loser = a.status == 0 ? &eve : &bob;
    reset(&a);
    assert_int_equal(sb_store_act(f->store, conv, "release", loser, NULL, on_result, &a), 0);
    wait(f, &a);
    assert_int_equal(a.status, SB_EFORBIDDEN);
    reset(&a);
    json_t *steal = json_pack("{s:b}", "steal", 1);
    assert_int_equal(sb_store_act(f->store, conv, "claim", &admin, steal, on_result, &a), 0);
    wait(f, &a);
    assert_int_equal(a.status, 0);
    assert_string_equal(jstr(a.json, "conversation.assignee"), "st_adm");
    assert_string_equal(jstr(a.json, "event.type"), "claimed");
    json_decref(steal);
    reset(&a);
    reset(&b);
    bool stopped = false;
    sb_redis_stop(r2, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    sb_store_free(s2);
}

static void test_resolve_then_customer_reopens(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest(f, &r, ct, "broken", NULL);
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    reset(&r);
    assert_int_equal(sb_store_act(f->store, conv, "resolve", &bob, NULL, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "conversation.status"), "resolved");
    ingest(f, &r, ct, "still broken", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_true(json_is_true(json_object_get(r.json, "reopened")));
    assert_string_equal(jstr(r.json, "conversation.status"), "open");
    reset(&r);
}

static void test_resolved_long_ago_starts_new(void **state)
{
    fixture_t *f = *state;
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16, .reopen_window_ms = 1};
    sb_store_t *quick;
    sb_store_new(f->redis, &so, &quick);
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX];
    sb_id_new("ct_", ct);
    sb_ingest_t in = {.channel = "api", .contact_id = ct, .text = "one"};
    assert_int_equal(sb_store_ingest(quick, &in, on_result, &r), 0);
    wait(f, &r);
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    reset(&r);
    assert_int_equal(sb_store_act(quick, conv, "resolve", &bob, NULL, on_result, &r), 0);
    wait(f, &r);
    reset(&r);
    usleep(20000);
    in.text = "two";
    assert_int_equal(sb_store_ingest(quick, &in, on_result, &r), 0);
    wait(f, &r);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    assert_string_not_equal(jstr(r.json, "conversation.id"), conv);
    reset(&r);
    sb_store_free(quick);
}

static void test_actions_and_errors(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    result_t r = {0};
    json_t *args = json_pack("{s:I}", "until", (json_int_t)(sb_now_ms() + 60000));
    assert_int_equal(sb_store_act(f->store, conv, "snooze", &bob, args, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "conversation.status"), "snoozed");
    json_decref(args);
    reset(&r);
    args = json_pack("{s:I}", "until", (json_int_t)1);
    assert_int_equal(sb_store_act(f->store, conv, "snooze", &bob, args, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_EINVAL);
    json_decref(args);
    reset(&r);
    assert_int_equal(sb_store_act(f->store, conv, "reopen", &bob, NULL, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "conversation.status"), "open");
    reset(&r);
    args = json_pack("{s:s}", "priority", "high");
    assert_int_equal(sb_store_act(f->store, conv, "priority", &bob, args, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "conversation.priority"), "high");
    json_decref(args);
    reset(&r);
    args = json_pack("{s:[s,s]}", "tags", "billing", "vip");
    assert_int_equal(sb_store_act(f->store, conv, "tags", &bob, args, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(json_array_size(json_object_get(json_object_get(r.json, "conversation"),
                                                     "tags")),
                     2);
    json_decref(args);
    reset(&r);
    assert_int_equal(sb_store_act(f->store, "c_01jd3k0000000000000000000", "claim", &bob, NULL,
                                  on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    reset(&r);
    assert_int_equal(sb_store_get(f->store, "c_01jd3k0000000000000000000", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    reset(&r);
}

static void test_contact_resolve_stable(void **state)
{
    fixture_t *f = *state;
    result_t a = {0}, b = {0};
    assert_int_equal(sb_store_contact_resolve(f->store, "email", "zed@example.com", "Zed",
                                              "zed@example.com", on_result, &a),
                     0);
    assert_int_equal(sb_store_contact_resolve(f->store, "email", "zed@example.com", NULL, NULL,
                                              on_result, &b),
                     0);
    wait(f, &a);
    wait(f, &b);
    assert_string_equal(jstr(a.json, "id"), jstr(b.json, "id"));
    assert_true(json_is_true(json_object_get(a.json, "created")));
    assert_false(json_is_true(json_object_get(b.json, "created")));
    char key[128];
    snprintf(key, sizeof(key), "sb:contact:%s", jstr(a.json, "id"));
    assert_string_equal(sb_test_redis_cmd(&f->srv, "HGET %s name", key), "Zed");
    reset(&a);
    reset(&b);
}

static void test_token_lookup(void **state)
{
    fixture_t *f = *state;
    char key[256];
    sb_store_token_key("sb:", "sbt_secret", key, sizeof(key));
    assert_string_equal(sb_test_redis_cmd(&f->srv, "HSET %s kind staff id st_x role admin", key),
                        "3");
    result_t r = {0};
    assert_int_equal(sb_store_token_lookup(f->store, "sbt_secret", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "role"), "admin");
    reset(&r);
    assert_int_equal(sb_store_token_lookup(f->store, "sbt_other", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    reset(&r);
}

/* ---- events dispatcher ---- */

typedef struct collected {
    int n;
    char texts[64][32];
    char cursor[1024];
} collected_t;

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    collected_t *c = data;
    json_t *j = json_loadb(ev->json, ev->json_len, 0, NULL);
    const char *t = jstr(j, "message.text");
    if (t && c->n < 64)
        snprintf(c->texts[c->n++], 32, "%s", t);
    snprintf(c->cursor, sizeof(c->cursor), "%s", ev->cursor);
    json_decref(j);
}

static void test_events_live_and_resume(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *blk;
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "events", .cmd_timeout_ms = 2000};
    assert_int_equal(sb_redis_new(&f->loop, &ro, &blk), 0);
    sb_events_t *ev;
    assert_int_equal(sb_events_new(&f->loop, blk, f->redis, "sb:", 16, &ev), 0);
    sb_test_loop_for(&f->loop, 300);
    assert_true(sb_events_ready(ev));
    collected_t live = {0};
    sb_events_sub_t *sub;
    assert_int_equal(sb_events_subscribe(ev, NULL, on_event, NULL, &live, &sub), 0);
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest(f, &r, ct, "ev-1", NULL);
    ingest(f, &r, ct, "ev-2", NULL);
    reset(&r);
    for (int i = 0; i < 50 && live.n < 2; i++)
        sb_test_loop_for(&f->loop, 20);
    assert_int_equal(live.n, 2);
    assert_string_equal(live.texts[0], "ev-1");
    assert_string_equal(live.texts[1], "ev-2");
    char cursor[1024];
    snprintf(cursor, sizeof(cursor), "%s", live.cursor);
    sb_events_unsubscribe(sub);
    /* Missed while away, in another contact's shard too. */
    char ct2[SB_ID_MAX];
    sb_id_new("ct_", ct2);
    ingest(f, &r, ct, "ev-3", NULL);
    ingest(f, &r, ct2, "ev-4", NULL);
    reset(&r);
    collected_t resumed = {0};
    assert_int_equal(sb_events_subscribe(ev, cursor, on_event, NULL, &resumed, &sub), 0);
    ingest(f, &r, ct, "ev-5", NULL); /* arrives while history is being read */
    reset(&r);
    for (int i = 0; i < 100 && resumed.n < 3; i++)
        sb_test_loop_for(&f->loop, 20);
    sb_test_loop_for(&f->loop, 100);
    assert_int_equal(resumed.n, 3);
    int seen3 = 0, seen4 = 0, seen5 = 0;
    for (int i = 0; i < resumed.n; i++) {
        seen3 += strcmp(resumed.texts[i], "ev-3") == 0;
        seen4 += strcmp(resumed.texts[i], "ev-4") == 0;
        seen5 += strcmp(resumed.texts[i], "ev-5") == 0;
    }
    assert_int_equal(seen3 + seen4 + seen5, 3);
    assert_true(seen3 == 1 && seen4 == 1 && seen5 == 1);
    sb_events_unsubscribe(sub);
    sb_events_sub_t *bad;
    assert_int_equal(sb_events_subscribe(ev, "nonsense", on_event, NULL, &resumed, &bad),
                     SB_EINVAL);
    sb_events_free(ev);
    bool stopped = false;
    sb_redis_stop(blk, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
}

/* ---- Redis killed mid-run ---- */

typedef struct burst {
    fixture_t *f;
    int done, acked, failed;
    char acked_ids[400][SB_ID_MAX];
    char conv[SB_ID_MAX];
    bool killed;
} burst_t;

static void on_burst(int status, json_t *res, const char *errmsg, void *data)
{
    burst_t *b = data;
    b->done++;
    if (status == 0) {
        snprintf(b->acked_ids[b->acked++], SB_ID_MAX, "%s", jstr(res, "message.id"));
        snprintf(b->conv, sizeof(b->conv), "%s", jstr(res, "conversation.id"));
    } else {
        b->failed++;
    }
    if (b->done == 100 && !b->killed) {
        b->killed = true;
        sb_test_redis_kill(&b->f->srv);
    }
}

static void test_redis_killed_nothing_acked_lost(void **state)
{
    fixture_t *f = *state;
    burst_t *b = SB_NEW(burst_t);
    b->f = f;
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    for (int i = 0; i < 400; i++) {
        char text[32];
        snprintf(text, sizeof(text), "burst %d", i);
        sb_ingest_t in = {.channel = "api", .contact_id = ct, .text = text};
        assert_int_equal(sb_store_ingest(f->store, &in, on_burst, b), 0);
        if (i == 200)
            sb_test_loop_for(&f->loop, 5);
    }
    for (int i = 0; i < 400 && b->done < 400; i++)
        sb_test_loop_for(&f->loop, 20);
    assert_int_equal(b->done, 400); /* every callback ran exactly once */
    assert_true(b->acked >= 100);
    assert_true(b->failed > 0);
    assert_int_equal(sb_test_redis_restart(&f->srv), 0);
    /* The client reconnects by itself and reloads the functions. */
    result_t r = {0};
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        ingest(f, &r, ct, "after restart", NULL);
        ok = r.status == 0;
        if (!ok)
            sb_test_loop_for(&f->loop, 50);
    }
    assert_true(ok);
    reset(&r);
    sb_redis_stats_t st;
    sb_redis_stats(f->redis, &st);
    assert_true(st.reconnects >= 1);
    /* Every acked message is in the transcript after the crash. */
    char key[128];
    snprintf(key, sizeof(key), "sb:{%u}:log:%s", sb_store_shard(f->store, b->conv), b->conv);
    long n = atol(sb_test_redis_cmd(&f->srv, "XLEN %s", key));
    assert_true(n >= b->acked);
    assert_int_equal(sb_store_messages(f->store, b->conv, NULL, 1000, on_result, &r), 0);
    wait(f, &r);
    json_t *items = json_object_get(r.json, "items");
    for (int i = 0; i < b->acked; i++) {
        bool found = false;
        for (size_t k = 0; k < json_array_size(items) && !found; k++)
            found = strcmp(jstr(json_array_get(items, k), "id"), b->acked_ids[i]) == 0;
        assert_true(found);
    }
    reset(&r);
    sb_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingest_creates_and_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_duplicate_external_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_collision_and_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_note_is_internal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_race_one_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_then_customer_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolved_long_ago_starts_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_resolve_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_live_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed_nothing_acked_lost, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/store", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The store and its Redis Functions against a real redis-server: every function,
 * idempotency, collision checks, claim races between two connections, reopening,
 * conversation lists merged across shards and paged, bot handoff, contact views and
 * merges, stats, snooze wake-ups racing between two nodes, the events dispatcher's
 * resume, and a Redis killed mid-run (nothing acked is lost).
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

typedef sb_test_store_t fixture_t;

/* The result of one store call, copied out of the callback. */
typedef struct result {
    bool done;
    int status;
    json_t *json;
    char errmsg[256];
    sb_ingest_head_t head;
} result_t;

static void on_result(int status, json_t *res, const char *errmsg, void *data)
{
    result_t *r = data;
    if (!r) /* fire and forget */
        return;
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

static int setup(void **state)
{
    *state = sb_test_store_new(true, 2000);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sb_test_store_free(*state);
    return 0;
}

static void on_stopped(void *data)
{
    *(bool *)data = true;
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
    sb_ingest_t in = {.channel = "api",
                      .contact_id = contact,
                      .contact_name = "Alice",
                      .text = text,
                      .external_id = external_id};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, r), 0);
    wait(f, r);
}

/* The raw ingest's text, parsed for the comparison with its head. */
static void on_raw(int status, const char *json, size_t len, const char *errmsg, void *data)
{
    result_t *r = data;
    r->done = true;
    r->status = status;
    r->json = json ? json_loadb(json, len, 0, NULL) : NULL;
    if (json && sb_store_ingest_head(json, len, &r->head) != 0)
        r->status = -1; /* the head must always be readable */
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg ? errmsg : "");
}

static void raw_ingest(fixture_t *f, result_t *r, const char *contact, const char *text,
                       const char *client_id)
{
    reset(r);
    sb_ingest_t in = {.channel = "webchat",
                      .contact_id = contact,
                      .contact_name = "Alice",
                      .text = text,
                      .client_id = client_id};
    assert_int_equal(sb_store_ingest_raw(f->store, &in, on_raw, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
    assert_non_null(r->json);
    /* the head read without parsing is the parsed result's message */
    assert_string_equal(r->head.id, jstr(r->json, "message.id"));
    assert_string_equal(r->head.conv, jstr(r->json, "message.conv"));
    assert_string_equal(r->head.seq, jstr(r->json, "message.seq"));
    assert_int_equal(r->head.duplicate, json_is_true(json_object_get(r->json, "duplicate")));
}

static void test_ingest_raw_head_matches_result(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX], first[SB_ID_MAX];
    sb_id_new("ct_", ct);
    /* a new conversation (the general path), with text that imitates the head */
    raw_ingest(f, &r, ct, "\"message\":{\"id\":\"m_fake\",\"conv\":\"c_fake\"", "k1");
    assert_false(r.head.duplicate);
    assert_true(sb_id_valid(r.head.id, "m_"));
    snprintf(conv, sizeof(conv), "%s", r.head.conv);
    snprintf(first, sizeof(first), "%s", r.head.id);
    /* an append to an open conversation (the fast path) */
    raw_ingest(f, &r, ct, "second", "k2");
    assert_false(r.head.duplicate);
    assert_string_equal(r.head.conv, conv);
    assert_string_not_equal(r.head.id, first);
    /* the first client_id again: the first message, flagged duplicate */
    raw_ingest(f, &r, ct, "\"message\":{\"id\":\"m_fake\",\"conv\":\"c_fake\"", "k1");
    assert_true(r.head.duplicate);
    assert_string_equal(r.head.id, first);
    reset(&r);

    sb_ingest_head_t h;
    static const char bad[] = "{\"duplicate\":false,\"message\":{\"id\":\"m_x\",\"seq\":\"1-0\"}}";
    assert_int_equal(sb_store_ingest_head(bad, sizeof(bad) - 1, &h), SB_EINVAL);
    assert_int_equal(sb_store_ingest_head("{}", 2, &h), SB_EINVAL);
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
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(r.json, "conversation"), "message_count")),
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
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "from bob", NULL, seq, false, on_result, &a), 0);
    assert_int_equal(
        sb_store_reply(f->store, conv, &eve, "from eve", NULL, seq, false, on_result, &b), 0);
    wait(f, &a);
    wait(f, &b);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.status, SB_ECONFLICT);
    json_t *newer = json_object_get(b.json, "messages");
    assert_int_equal(json_array_size(newer), 1);
    assert_string_equal(jstr(json_array_get(newer, 0), "text"), "from bob");
    /* A staff reply clears awaiting_since and takes it out of the queue. */
    assert_true(
        json_is_null(json_object_get(json_object_get(a.json, "conversation"), "awaiting_since")));
    reset(&b);
    assert_int_equal(
        sb_store_reply(f->store, conv, &eve, "from eve", NULL, seq, true, on_result, &b), 0);
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
    assert_int_equal(sb_store_act(f->store, conv, "claim", loser, steal, on_result, &a), 0);
    wait(f, &a);
    assert_int_equal(a.status, SB_EFORBIDDEN); /* only admins steal */
    reset(&a);
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
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(r.json, "conversation"), "tags")), 2);
    json_decref(args);
    reset(&r);
    assert_int_equal(
        sb_store_act(f->store, "c_01jd3k0000000000000000000", "claim", &bob, NULL, on_result, &r),
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
    assert_int_equal(
        sb_store_contact_resolve(f->store, "email", "zed@example.com", NULL, NULL, on_result, &b),
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

static void test_contact_latest_and_idents(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    assert_int_equal(sb_store_contact_latest(f->store, ct, "api", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_null(r.json));
    ingest(f, &r, ct, "hello", NULL);
    char conv[SB_ID_MAX];
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    reset(&r);
    assert_int_equal(sb_store_contact_latest(f->store, ct, "api", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), conv);
    assert_string_equal(jstr(r.json, "contact.name"), "Alice");
    reset(&r);
    assert_int_equal(sb_store_contact_latest(f->store, ct, "email", on_result, &r), 0);
    wait(f, &r);
    assert_true(json_is_null(r.json));
    reset(&r);
    assert_int_equal(sb_store_ident_get(f->store, "visitor", "abc", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    reset(&r);
    assert_int_equal(sb_store_ident_set(f->store, "visitor", "abc", ct, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    assert_int_equal(sb_store_ident_get(f->store, "visitor", "abc", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), ct);
    reset(&r);
}

static void test_events_stream_trimmed_by_wake(void **state)
{
    fixture_t *f = *state;
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16, .events_maxlen = 100};
    sb_store_t *small;
    sb_store_new(f->redis, &so, &small);
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    result_t r = {0};
    for (int i = 0; i < 600; i++) {
        reset(&r);
        sb_ingest_t in = {.channel = "api", .contact_id = ct, .text = "fill"};
        assert_int_equal(sb_store_ingest(small, &in, on_result, &r), 0);
        wait(f, &r);
        assert_int_equal(r.status, 0);
    }
    unsigned shard = sb_store_shard(small, ct);
    char key[64];
    snprintf(key, sizeof(key), "sb:{%u}:events", shard);
    assert_true(atol(sb_test_redis_cmd(&f->srv, "XLEN %s", key)) >= 600);
    reset(&r);
    assert_int_equal(sb_store_wake(small, shard, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    long len = atol(sb_test_redis_cmd(&f->srv, "XLEN %s", key));
    assert_true(len < 600); /* approximate trimming: whole nodes of ~100 entries */
    assert_true(len >= 100);
    reset(&r);
    sb_store_free(small);
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

/* ---- Lists, handoff, contacts, merges, stats, wake-ups ---- */

static const sb_actor_t botty = {.type = "bot", .id = "bot_faq", .name = "FAQ bot"};

/* A second store on its own connection, as another node would have. */
typedef struct node {
    sb_redis_t *redis;
    sb_store_t *store;
} node_t;

static void node_start(fixture_t *f, node_t *n)
{
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "node2", .cmd_timeout_ms = 2000};
    assert_int_equal(sb_redis_new(&f->loop, &ro, &n->redis), 0);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    sb_store_new(n->redis, &so, &n->store);
    sb_store_on_connect(n->store);
}

static void node_stop(fixture_t *f, node_t *n)
{
    bool stopped = false;
    sb_redis_stop(n->redis, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    sb_store_free(n->store);
}

/* Ingests on a channel for a contact; returns the conversation id in conv. */
static void ingest_on(fixture_t *f, const char *channel, const char *contact, const char *text,
                      char conv[SB_ID_MAX])
{
    result_t r = {0};
    sb_ingest_t in = {.channel = channel, .contact_id = contact, .text = text};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    if (conv)
        snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    reset(&r);
}

static void act(fixture_t *f, const char *conv, const char *action, const sb_actor_t *who,
                json_t *args, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_act(f->store, conv, action, who, args, on_result, r), 0);
    wait(f, r);
    json_decref(args);
}

static void list(fixture_t *f, const char *status, const char *assignee, const char *channel,
                 unsigned limit, const char *cursor, result_t *r)
{
    reset(r);
    sb_list_query_t q = {.status = status,
                         .assignee = assignee,
                         .channel = channel,
                         .limit = limit,
                         .cursor = cursor};
    assert_int_equal(sb_store_list(f->store, &q, on_result, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
}

/* Pages through a list; writes the ids in order into ids (at most 64); returns the count. */
static int list_all(fixture_t *f, const char *status, const char *assignee, unsigned limit,
                    char ids[64][SB_ID_MAX])
{
    int n = 0, pages = 0;
    char cursor[256] = "";
    result_t r = {0};
    do {
        list(f, status, assignee, NULL, limit, cursor[0] ? cursor : NULL, &r);
        json_t *items = json_object_get(r.json, "items");
        assert_true(json_array_size(items) <= limit);
        for (size_t i = 0; i < json_array_size(items) && n < 64; i++)
            snprintf(ids[n++], SB_ID_MAX, "%s", jstr(json_array_get(items, i), "id"));
        const char *next = jstr(r.json, "next");
        snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
        assert_true(++pages < 100);
    } while (cursor[0]);
    reset(&r);
    return n;
}

static void test_list_most_urgent_first_across_shards_and_pages(void **state)
{
    fixture_t *f = *state;
    char convs[10][SB_ID_MAX], ct[SB_ID_MAX];
    bool shard_seen[16] = {false};
    int shards = 0;
    for (int i = 0; i < 10; i++) { /* ten customers, spread over the shards */
        sb_id_new("ct_", ct);
        ingest_on(f, "api", ct, "help", convs[i]);
        unsigned s = sb_store_shard(f->store, convs[i]);
        shards += !shard_seen[s];
        shard_seen[s] = true;
        usleep(3000); /* distinct awaiting_since */
    }
    assert_true(shards >= 3);
    result_t r = {0};
    /* 3 is answered (open, nobody waiting), 5 resolved, 7 claimed by Bob, 9 urgent. */
    reset(&r);
    assert_int_equal(
        sb_store_reply(f->store, convs[3], &bob, "done", NULL, NULL, false, on_result, &r), 0);
    wait(f, &r);
    act(f, convs[5], "resolve", &bob, NULL, &r);
    act(f, convs[7], "claim", &bob, NULL, &r);
    act(f, convs[9], "priority", &bob, json_pack("{s:s}", "priority", "urgent"), &r);
    reset(&r);
    const int want[] = {9, 0, 1, 2, 4, 6, 7, 8, 3};
    char ids[64][SB_ID_MAX];
    for (unsigned limit = 1; limit <= 4; limit += 3) { /* pages of 1 and of 4 */
        int n = list_all(f, "open", NULL, limit, ids);
        assert_int_equal(n, 9);
        for (int i = 0; i < n; i++)
            assert_string_equal(ids[i], convs[want[i]]);
    }
    /* Filters: unassigned, Bob's, resolved, everything. */
    assert_int_equal(list_all(f, "open", "none", 50, ids), 8);
    assert_int_equal(list_all(f, "open", "st_bob", 50, ids), 1);
    assert_string_equal(ids[0], convs[7]);
    assert_int_equal(list_all(f, "resolved", NULL, 50, ids), 1);
    assert_string_equal(ids[0], convs[5]);
    assert_int_equal(list_all(f, "all", NULL, 3, ids), 10);
    assert_string_equal(ids[9], convs[5]);
    list(f, "open", NULL, "email", 50, NULL, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
    assert_true(json_is_null(json_object_get(r.json, "next")));
    /* Items are whole conversations (docs/contract.md §4). */
    list(f, "open", NULL, "api", 1, NULL, &r);
    json_t *first = json_array_get(json_object_get(r.json, "items"), 0);
    assert_string_equal(jstr(first, "priority"), "urgent");
    assert_string_equal(jstr(first, "channel"), "api");
    assert_non_null(jstr(first, "contact.id"));
    /* A cursor is only good for its own kind of list; garbage is refused. */
    char cursor[256];
    snprintf(cursor, sizeof(cursor), "%s", jstr(r.json, "next"));
    reset(&r);
    sb_list_query_t q = {.status = "resolved", .cursor = cursor};
    assert_int_equal(sb_store_list(f->store, &q, on_result, &r), SB_EINVAL);
    q = (sb_list_query_t){.status = "open", .cursor = "!!"};
    assert_int_equal(sb_store_list(f->store, &q, on_result, &r), SB_EINVAL);
    q = (sb_list_query_t){.status = "closed"};
    assert_int_equal(sb_store_list(f->store, &q, on_result, &r), SB_EINVAL);
    q = (sb_list_query_t){.status = "open", .limit = 201};
    assert_int_equal(sb_store_list(f->store, &q, on_result, &r), SB_EINVAL);
    assert_false(r.done);
}

/* The transcript entries of a conversation with kind "event" and that type. */
static int count_events(fixture_t *f, const char *conv, const char *type, json_t **last)
{
    result_t r = {0};
    assert_int_equal(sb_store_messages(f->store, conv, NULL, 1000, on_result, &r), 0);
    wait(f, &r);
    int n = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r.json, "items"), i, m)
    {
        const char *t = jstr(m, "type");
        if (t && strcmp(t, type) == 0) {
            n++;
            if (last) {
                json_decref(*last);
                *last = json_incref(m);
            }
        }
    }
    reset(&r);
    return n;
}

static bool in_queue(fixture_t *f, const char *conv)
{
    return strcmp(sb_test_redis_cmd(&f->srv, "ZSCORE sb:{%u}:queue %s",
                                    sb_store_shard(f->store, conv), conv),
                  "(nil)") != 0;
}

static void test_bot_replies_and_hands_off_to_humans(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    result_t r = {0};
    /* A bot answer reaches the customer but leaves the conversation awaiting a human. */
    assert_int_equal(sb_store_reply(f->store, conv, &botty, "Opening hours: 9-17", NULL, NULL,
                                    false, on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "message.author.type"), "bot");
    assert_true(json_is_integer(
        json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    assert_true(in_queue(f, conv));
    reset(&r);
    /* Answered by staff: out of the queue; then the bot hands it back to humans. */
    assert_int_equal(sb_store_reply(f->store, conv, &bob, "hi", NULL, NULL, false, on_result, &r),
                     0);
    wait(f, &r);
    assert_false(in_queue(f, conv));
    act(f, conv, "handoff", &botty, json_pack("{s:s}", "reason", "asks for a refund"), &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "event.type"), "handoff");
    assert_string_equal(jstr(r.json, "event.author.id"), "bot_faq");
    assert_string_equal(jstr(r.json, "event.reason"), "asks for a refund");
    assert_true(json_is_integer(
        json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    assert_true(in_queue(f, conv));
    /* A resolved conversation handed off is open again, in the queue. */
    act(f, conv, "resolve", &bob, NULL, &r);
    assert_false(in_queue(f, conv));
    act(f, conv, "handoff", &botty, NULL, &r);
    assert_string_equal(jstr(r.json, "conversation.status"), "open");
    assert_string_equal(jstr(r.json, "event.from"), "resolved");
    assert_true(in_queue(f, conv));
    assert_int_equal(count_events(f, conv, "handoff", NULL), 2);
    reset(&r);
}

static void contact_get(fixture_t *f, const char *ct, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_contact_get(f->store, ct, on_result, r), 0);
    wait(f, r);
}

static void merge(sb_store_t *st, const char *into, const char *other, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_contact_merge(st, into, other, &admin, on_result, r), 0);
}

/* Resolves an email handle to a contact id. */
static void resolve(fixture_t *f, const char *email, const char *name, char ct[SB_ID_MAX])
{
    result_t r = {0};
    assert_int_equal(sb_store_contact_resolve(f->store, "email", email, name, email, on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    snprintf(ct, SB_ID_MAX, "%s", jstr(r.json, "id"));
    reset(&r);
}

/* Ingests into conversation conv (on channel, as contact named name); returns the status. */
static int ingest_into(fixture_t *f, const char *conv, const char *channel, const char *contact,
                       const char *name, const char *text)
{
    result_t r = {0};
    sb_ingest_t in = {.channel = channel,
                      .contact_id = contact,
                      .contact_name = name,
                      .conv = conv,
                      .text = text};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    int status = r.status;
    reset(&r);
    return status;
}

static void test_ingest_conv_only_its_contact_and_channel(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char alice[SB_ID_MAX], mallory[SB_ID_MAX], conv[SB_ID_MAX];
    sb_id_new("ct_", alice);
    sb_id_new("ct_", mallory);
    ingest(f, &r, alice, "help me", NULL); /* as "Alice", on api */
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    reset(&r);
    /* Another contact: refused on the fast path (same name) and the general one (renaming). */
    assert_int_equal(ingest_into(f, conv, "api", mallory, "Alice", "pay Mallory"), SB_ECONFLICT);
    assert_int_equal(ingest_into(f, conv, "api", mallory, NULL, "pay Mallory"), SB_ECONFLICT);
    assert_int_equal(ingest_into(f, conv, "api", mallory, "Mallory", "pay Mallory"), SB_ECONFLICT);
    /* Its own contact on another channel: refused too. */
    assert_int_equal(ingest_into(f, conv, "webchat", alice, NULL, "other channel"), SB_ECONFLICT);
    /* Resolved: the general path checks the same. */
    act(f, conv, "resolve", &bob, NULL, &r);
    assert_int_equal(ingest_into(f, conv, "api", mallory, NULL, "pay Mallory"), SB_ECONFLICT);
    assert_int_equal(ingest_into(f, conv, "api", alice, "Alice B.", "me again"), 0);
    reset(&r);
    assert_int_equal(sb_store_get(f->store, conv, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "contact.id"), alice);
    assert_string_equal(jstr(r.json, "contact.name"), "Alice B.");
    assert_int_equal(json_integer_value(json_object_get(r.json, "message_count")), 2);
    reset(&r);
}

static void test_claim_steal_only_when_true(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    result_t r = {0};
    act(f, conv, "claim", &bob, NULL, &r);
    assert_int_equal(r.status, 0);
    json_t *not_true[] = {json_null(), json_integer(0), json_string("no"), json_string("false"),
                          json_false()};
    for (size_t i = 0; i < SB_ARRAY_LEN(not_true); i++) {
        json_t *args = json_object();
        json_object_set_new(args, "steal", not_true[i]);
        act(f, conv, "claim", &admin, args, &r);
        assert_int_equal(r.status, SB_ECONFLICT);
    }
    act(f, conv, "claim", &admin, json_pack("{s:b}", "steal", 1), &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "conversation.assignee"), admin.id);
    reset(&r);
}

static void test_contact_find(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char a[SB_ID_MAX], b[SB_ID_MAX];
    resolve(f, "finn@example.com", "Finn", a);
    resolve(f, "fay@example.com", "Fay", b);
    assert_int_equal(sb_store_contact_find(f->store, a, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "id"), a);
    assert_true(json_is_null(json_object_get(r.json, "merged_into")));
    reset(&r);
    assert_int_equal(sb_store_contact_find(f->store, "ct_01jd3k0000000000000000000", on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    assert_int_equal(sb_store_contact_find(f->store, b, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "merged_into"), a);
    reset(&r);
    /* b merged into a, then a into c: b's messages belong to c */
    char c[SB_ID_MAX];
    resolve(f, "cy@example.com", "Cy", c);
    merge(f->store, c, a, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    assert_int_equal(sb_store_contact_find(f->store, b, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), b);
    assert_string_equal(jstr(r.json, "merged_into"), c);
    reset(&r);
}

static bool has_string(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), s) == 0) return true;
    return false;
}

static void test_contact_merge_moves_everything_once(void **state)
{
    fixture_t *f = *state;
    char a[SB_ID_MAX], b[SB_ID_MAX], a1[SB_ID_MAX], b1[SB_ID_MAX], b2[SB_ID_MAX];
    resolve(f, "ann@example.com", "Ann", a);
    char email[64];
    for (int i = 0;; i++) { /* the other contact in another shard: the hard case */
        snprintf(email, sizeof(email), "ann.%d@example.org", i);
        resolve(f, email, NULL, b);
        if (sb_store_shard(f->store, a) != sb_store_shard(f->store, b))
            break;
    }
    assert_int_equal(sb_store_ident_set(f->store, "mastodon", "@ann@social", b, on_result, NULL),
                     0);
    ingest_on(f, "email", a, "invoice?", a1);
    ingest_on(f, "email", b, "invoice!!", b1);
    usleep(2000);
    ingest_on(f, "mastodon", b, "@acme hello", b2);
    result_t r = {0}, r2 = {0};
    contact_get(f, b, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "conversations")), 2);
    assert_string_equal(jstr(json_array_get(json_object_get(r.json, "conversations"), 0), "id"),
                        b2); /* newest first */
    assert_true(has_string(json_object_get(r.json, "handles"), "mastodon:@ann@social"));

    /* Two admins merge at the same moment from two nodes: everything moves exactly once. */
    node_t n2;
    node_start(f, &n2);
    merge(f->store, a, b, &r);
    merge(n2.store, a, b, &r2);
    wait(f, &r);
    wait(f, &r2);
    assert_int_equal(r.status, 0);
    assert_int_equal(r2.status, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "moved")) +
                         json_array_size(json_object_get(r2.json, "moved")),
                     2);
    node_stop(f, &n2);
    contact_get(f, a, &r);
    json_t *convs = json_object_get(r.json, "conversations");
    assert_int_equal(json_array_size(convs), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_array_get(convs, i);
        assert_string_equal(jstr(c, "contact.id"), a);
        if (strcmp(jstr(c, "id"), a1) != 0) /* moved ones carry the surviving name */
            assert_string_equal(jstr(c, "contact.name"), "Ann");
    }
    json_t *handles = json_object_get(r.json, "handles");
    assert_true(has_string(handles, "email:ann@example.com"));
    assert_true(has_string(handles, "mastodon:@ann@social"));
    char handle[80];
    snprintf(handle, sizeof(handle), "email:%s", email);
    assert_true(has_string(handles, handle));
    json_t *ev = NULL;
    assert_int_equal(count_events(f, b1, "merged", &ev), 1);
    assert_string_equal(jstr(ev, "from"), b);
    assert_string_equal(jstr(ev, "into"), a);
    assert_string_equal(jstr(ev, "author.id"), "st_adm");
    json_decref(ev);
    assert_int_equal(count_events(f, b2, "merged", NULL), 1);
    assert_int_equal(count_events(f, a1, "merged", NULL), 0);
    /* The customer's handles now find the surviving contact. */
    reset(&r);
    assert_int_equal(sb_store_ident_get(f->store, "mastodon", "@ann@social", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), a);
    /* The merged contact says where it went and holds nothing. */
    contact_get(f, b, &r);
    assert_string_equal(jstr(r.json, "merged_into"), a);
    assert_int_equal(json_array_size(json_object_get(r.json, "conversations")), 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "handles")), 0);

    /* Again: nothing more to move, no new events. Into a third contact: refused. */
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "moved")), 0);
    assert_int_equal(count_events(f, b1, "merged", NULL), 1);
    char c[SB_ID_MAX];
    resolve(f, "carl@example.com", "Carl", c);
    merge(f->store, c, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, SB_ECONFLICT);
    merge(f->store, b, c, &r);
    wait(f, &r);
    assert_int_equal(r.status, SB_ECONFLICT);
    char unknown[SB_ID_MAX];
    sb_id_new("ct_", unknown);
    merge(f->store, a, unknown, &r);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    contact_get(f, unknown, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    assert_int_equal(sb_store_contact_merge(f->store, a, a, &admin, on_result, &r), SB_EINVAL);
    reset(&r);
    reset(&r2);
}

static void test_contact_merge_cross_shard_continues_conversation(void **state)
{
    fixture_t *f = *state;
    char a[SB_ID_MAX], b[SB_ID_MAX], conv[SB_ID_MAX], next[SB_ID_MAX], own[SB_ID_MAX];
    sb_id_new("ct_", a);
    do /* the other contact in another shard */
        sb_id_new("ct_", b);
    while (sb_store_shard(f->store, a) == sb_store_shard(f->store, b));
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s name Eve", a, a);
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s", b, b);
    ingest_on(f, "email", a, "my own email thread", own);
    ingest_on(f, "mastodon", b, "@acme my order?", conv);
    ingest_on(f, "email", b, "the other email thread", NULL);
    result_t r = {0};
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);

    /* The customer writes again as the surviving contact, on the other contact's channel:
     * that conversation continues (in its shard), not a new one. */
    ingest_on(f, "mastodon", a, "@acme any news?", next);
    assert_string_equal(next, conv);
    /* A channel the surviving contact had itself keeps its own conversation. */
    ingest_on(f, "email", a, "and about that email", next);
    assert_string_equal(next, own);
    /* The web chat's path (raw reply), with a client id: continued, then deduplicated. */
    reset(&r);
    sb_ingest_t in = {.channel = "mastodon", .contact_id = a, .text = "hello?", .client_id = "k1"};
    assert_int_equal(sb_store_ingest_raw(f->store, &in, on_raw, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.head.conv, conv);
    assert_false(r.head.duplicate);
    char first[SB_ID_MAX];
    snprintf(first, sizeof(first), "%s", r.head.id);
    reset(&r);
    assert_int_equal(sb_store_ingest_raw(f->store, &in, on_raw, &r), 0);
    wait(f, &r);
    assert_true(r.head.duplicate);
    assert_string_equal(r.head.id, first);
    reset(&r);

    /* Resolved longer ago than the reopen window: a new conversation, in the surviving
     * contact's own shard, which the next message continues. */
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16, .reopen_window_ms = 1};
    sb_store_t *quick;
    sb_store_new(f->redis, &so, &quick);
    act(f, conv, "resolve", &bob, NULL, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    usleep(20000);
    in = (sb_ingest_t){.channel = "mastodon", .contact_id = a, .text = "new question"};
    assert_int_equal(sb_store_ingest(quick, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    char fresh[SB_ID_MAX];
    snprintf(fresh, sizeof(fresh), "%s", jstr(r.json, "conversation.id"));
    assert_string_not_equal(fresh, conv);
    assert_int_equal(sb_store_shard(f->store, fresh), sb_store_shard(f->store, a));
    reset(&r);
    ingest_on(f, "mastodon", a, "follow-up", next);
    assert_string_equal(next, fresh);
    sb_store_free(quick);
}

static void test_contact_merge_same_shard_continues_conversation(void **state)
{
    fixture_t *f = *state;
    char a[SB_ID_MAX], b[SB_ID_MAX], conv[SB_ID_MAX], next[SB_ID_MAX];
    sb_id_new("ct_", a);
    sb_id_new_in_shard("ct_", sb_store_shard(f->store, a), 16, b);
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s name Dee", a, a);
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s", b, b);
    ingest_on(f, "email", b, "where is my parcel", conv);
    result_t r = {0};
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    /* The customer writes again as the surviving contact: same conversation, not a new one. */
    ingest_on(f, "email", a, "any news?", next);
    assert_string_equal(next, conv);
    reset(&r);
}

static void test_snooze_wakes_exactly_once_across_nodes(void **state)
{
    fixture_t *f = *state;
    char convs[12][SB_ID_MAX], later[SB_ID_MAX];
    result_t r = {0};
    /* Far enough ahead that the 12 snoozes are all still in the future on a loaded box. */
    int64_t until = sb_now_ms() + 1500;
    for (int i = 0; i < 12; i++) { /* more than one batch in some shards */
        char ct[SB_ID_MAX];
        sb_id_new_in_shard("ct_", (unsigned)(i % 2), 16, ct);
        ingest_on(f, "api", ct, "call me later", convs[i]);
        if (i % 3 == 0) /* answered before snoozing: nobody waiting */
            assert_int_equal(
                sb_store_reply(f->store, convs[i], &bob, "ok", NULL, NULL, false, on_result, NULL),
                0);
        act(f, convs[i], "snooze", &bob, json_pack("{s:I}", "until", (json_int_t)until), &r);
        assert_int_equal(r.status, 0);
    }
    new_conv(f, later, NULL);
    act(f, later, "snooze", &bob, json_pack("{s:I}", "until", (json_int_t)until + 60000), &r);
    assert_false(in_queue(f, convs[0]));
    while (sb_now_ms() <= until + 20) /* the time is due (Redis runs on this clock) */
        usleep(10000);
    /* Two nodes run their wake timers at the same moment, each until nothing is left. */
    node_t n2;
    node_start(f, &n2);
    int woke[12] = {0}, calls = 0;
    for (int round = 0; round < 4; round++) {
        result_t w[2][16];
        memset(w, 0, sizeof(w));
        for (unsigned s = 0; s < 16; s++) {
            assert_int_equal(sb_store_wake(f->store, s, on_result, &w[0][s]), 0);
            assert_int_equal(sb_store_wake(n2.store, s, on_result, &w[1][s]), 0);
        }
        for (int k = 0; k < 2; k++)
            for (unsigned s = 0; s < 16; s++) {
                wait(f, &w[k][s]);
                assert_int_equal(w[k][s].status, 0);
                json_t *ids = json_object_get(w[k][s].json, "woke");
                for (size_t i = 0; i < json_array_size(ids); i++, calls++)
                    for (int c = 0; c < 12; c++)
                        woke[c] += strcmp(json_string_value(json_array_get(ids, i)), convs[c]) == 0;
                reset(&w[k][s]);
            }
    }
    node_stop(f, &n2);
    assert_int_equal(calls, 12);
    for (int c = 0; c < 12; c++) {
        assert_int_equal(woke[c], 1);
        assert_int_equal(count_events(f, convs[c], "woke", NULL), 1);
        assert_true(in_queue(f, convs[c])); /* back in the queue, answered or not */
        reset(&r);
        assert_int_equal(sb_store_get(f->store, convs[c], on_result, &r), 0);
        wait(f, &r);
        assert_string_equal(jstr(r.json, "status"), "open");
        assert_true(json_is_null(json_object_get(r.json, "snooze_until")));
    }
    assert_int_equal(count_events(f, later, "woke", NULL), 0); /* not due yet */
    reset(&r);
    assert_int_equal(sb_store_get(f->store, later, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "status"), "snoozed");
    reset(&r);
}

static void test_stats_counts_queue_and_response_times(void **state)
{
    fixture_t *f = *state;
    char c1[SB_ID_MAX], c2[SB_ID_MAX], c3[SB_ID_MAX], ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest_on(f, "api", ct, "one", c1);
    ingest_on(f, "email", ct, "two", c2);
    sb_id_new("ct_", ct);
    ingest_on(f, "email", ct, "three", c3);
    usleep(20000);
    result_t r = {0};
    assert_int_equal(sb_store_serve(f->store, "email"), 0); /* as if its connector ran */
    assert_int_equal(sb_store_reply(f->store, c2, &bob, "answer", NULL, NULL, false, on_result, &r),
                     0);
    wait(f, &r);
    act(f, c3, "resolve", &bob, NULL, &r);
    reset(&r);
    assert_int_equal(sb_store_stats(f->store, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    json_t *j = r.json;
    assert_int_equal(json_integer_value(json_object_get(j, "queue_depth")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "open")), 2);
    json_t *bc = json_object_get(j, "by_channel");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(bc, "api"), "queue")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(bc, "email"), "open")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(bc, "email"), "queue")), 0);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "by_status"), "resolved")), 1);
    json_t *fr = json_object_get(json_object_get(j, "first_response_ms"), "email");
    assert_int_equal(json_integer_value(json_object_get(fr, "n")), 1);
    assert_true(json_integer_value(json_object_get(fr, "p50")) >= 20);
    assert_true(json_integer_value(json_object_get(fr, "p90")) < 5000);
    assert_null(json_object_get(json_object_get(j, "first_response_ms"), "api"));
    assert_int_equal(json_integer_value(json_object_get(j, "breaches")), 0);
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
        cmocka_unit_test_setup_teardown(test_ingest_raw_head_matches_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reply_collision_and_force, setup, teardown),
        cmocka_unit_test_setup_teardown(test_note_is_internal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_race_one_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_then_customer_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolved_long_ago_starts_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actions_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_resolve_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_latest_and_idents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_stream_trimmed_by_wake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_conv_only_its_contact_and_channel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claim_steal_only_when_true, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_most_urgent_first_across_shards_and_pages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bot_replies_and_hands_off_to_humans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_merge_moves_everything_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_merge_cross_shard_continues_conversation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_merge_same_shard_continues_conversation, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_snooze_wakes_exactly_once_across_nodes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_counts_queue_and_response_times, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_events_live_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed_nothing_acked_lost, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/store", tests, NULL, NULL);
}

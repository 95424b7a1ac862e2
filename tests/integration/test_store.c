/* SPDX-License-Identifier: MIT */
/*
 * The store and its Redis Functions against a real redis-server: a conversation's
 * operations. Ingest (idempotency, the raw path's head), replies and their collision
 * check, notes, claim races between two connections, resolve and reopen, the action
 * errors, the events stream's trim, and token lookups. Contacts: test_store_contacts.c;
 * lists, handoff, stats and snoozes: test_store_lists.c; the events dispatcher and a
 * killed Redis: test_store_events.c (helpers shared with them: store_fixture.h).
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
#include "tests/integration/store_fixture.h"

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
static const sb_actor_t eve = {.type = "staff", .id = "st_eve", .name = "Eve"};

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
        cmocka_unit_test_setup_teardown(test_events_stream_trimmed_by_wake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_conv_only_its_contact_and_channel, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claim_steal_only_when_true, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/store", tests, NULL, NULL);
}

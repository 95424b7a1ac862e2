/* SPDX-License-Identifier: MIT */
/*
 * Delivery outcomes against a real redis-server (core/store_delivery.c, docs/delivery.md):
 * a reply on a channel nobody serves is refused with nothing stored; outcomes become
 * transcript events and a delivery state; a repeated outcome (a crash between recording
 * and XACK) records nothing twice; only a final failure can be retried, and a retry puts
 * the reply back in its channel's outbox.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/harness/harness.h"

typedef sb_test_store_t fixture_t;

static const sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};

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

static void wait(fixture_t *f, result_t *r)
{
    assert_true(sb_test_loop_until(&f->loop, &r->done, 5000));
}

static int setup(void **state)
{
    *state = sb_test_store_new(false, 2000);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sb_test_store_free(*state);
    return 0;
}

static const char *jstr(const json_t *j, const char *a, const char *b)
{
    const json_t *v = json_object_get(j, a);
    return json_string_value(b ? json_object_get(v, b) : v);
}

/* A Redis command's answer about one of conv's shard keys ("XLEN", "log:" …). */
static long key_cmd(fixture_t *f, const char *cmd, const char *conv, const char *key)
{
    unsigned shard = sb_store_shard(f->store, conv);
    return atol(sb_test_redis_cmd(&f->srv, "%s sb:{%u}:%s", cmd, shard, key));
}

static long log_len(fixture_t *f, const char *conv)
{
    char key[96];
    snprintf(key, sizeof(key), "log:%s", conv);
    return key_cmd(f, "XLEN", conv, key);
}

/* An email conversation (a customer message ingested on channel email). */
static void email_conv(fixture_t *f, char conv[SB_ID_MAX])
{
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    result_t r = {0};
    sb_ingest_t in = {.channel = "email",
                      .contact_id = ct,
                      .contact_name = "Alice",
                      .text = "my order?",
                      .subject = "Order 42"};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation", "id"));
    reset(&r);
}

/* A staff reply on conv (email must be served); its message id into mid. */
static void reply(fixture_t *f, const char *conv, char mid[SB_ID_MAX])
{
    result_t r = {0};
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "shipped today", NULL, NULL, false, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    snprintf(mid, SB_ID_MAX, "%s", jstr(r.json, "message", "id"));
    reset(&r);
}

/* An email conversation, email served (as by its connector), and a staff reply on it. */
static void email_reply(fixture_t *f, char conv[SB_ID_MAX], char mid[SB_ID_MAX])
{
    email_conv(f, conv);
    assert_int_equal(sb_store_serve(f->store, "email"), 0);
    reply(f, conv, mid);
}

static void record(fixture_t *f, result_t *r, const sb_delivery_t *d)
{
    reset(r);
    assert_int_equal(sb_store_delivery_record(f->store, d, on_result, r), 0);
    wait(f, r);
}

static void retry(fixture_t *f, result_t *r, const char *conv, const char *mid)
{
    reset(r);
    assert_int_equal(sb_store_delivery_retry(f->store, conv, mid, &bob, on_result, r), 0);
    wait(f, r);
}

static void state_of(fixture_t *f, result_t *r, const char *conv, const char *mid)
{
    reset(r);
    assert_int_equal(sb_store_delivery_state(f->store, conv, mid, on_result, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
}

static void test_reply_unserved_channel_stores_nothing(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    email_conv(f, conv);
    long before = log_len(f, conv);
    long events = key_cmd(f, "XLEN", conv, "events");
    result_t r = {0};
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "hello", "cli-1", NULL, false, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_EUNAVAILABLE);
    assert_non_null(strstr(r.errmsg, "email"));
    /* Nothing stored: no transcript entry, no outbox entry, no event, no dedup key. */
    assert_int_equal(log_len(f, conv), before);
    assert_int_equal(key_cmd(f, "XLEN", conv, "events"), events);
    assert_int_equal(key_cmd(f, "EXISTS", conv, "outbox:email"), 0);
    /* The conversation still awaits an answer. */
    reset(&r);
    assert_int_equal(sb_store_get(f->store, conv, on_result, &r), 0);
    wait(f, &r);
    assert_true(json_is_integer(json_object_get(r.json, "awaiting_since")));
    /* A note is internal: never refused. */
    reset(&r);
    assert_int_equal(sb_store_note(f->store, conv, &bob, "VIP", NULL, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    /* Served, the same client_id is a new message (the refusal remembered nothing). */
    assert_int_equal(sb_store_serve(f->store, "email"), 0);
    reset(&r);
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "hello", "cli-1", NULL, false, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_false(json_is_true(json_object_get(r.json, "duplicate")));
    assert_int_equal(key_cmd(f, "XLEN", conv, "outbox:email"), 1);
    assert_int_equal(sb_store_serve(f->store, "Bad Name"), SB_EINVAL);
    reset(&r);
}

static void test_record_delivered_is_idempotent(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    email_reply(f, conv, mid);
    long before = log_len(f, conv);
    result_t r = {0};
    sb_delivery_t d = {.conv = conv,
                       .mid = mid,
                       .channel = "email",
                       .account = "",
                       .ok = true,
                       .provider_id = "<abc@mail>"};
    record(f, &r, &d);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "recorded")));
    json_t *ev = json_object_get(r.json, "event");
    assert_string_equal(jstr(ev, "kind", NULL), "event");
    assert_string_equal(jstr(ev, "type", NULL), "delivered");
    assert_string_equal(jstr(ev, "ref", NULL), mid);
    assert_string_equal(jstr(ev, "provider_id", NULL), "<abc@mail>");
    assert_int_equal(log_len(f, conv), before + 1);
    /* The event went to the live feed too. */
    char last[1024];
    snprintf(last, sizeof(last), "%s",
             sb_test_redis_cmd(&f->srv, "EVAL %s 1 sb:{%u}:events",
                               "return redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', "
                               "1)[1][2][4]",
                               sb_store_shard(f->store, conv)));
    assert_non_null(strstr(last, "\"type\":\"delivered\""));
    assert_non_null(strstr(last, mid));
    state_of(f, &r, conv, mid);
    assert_string_equal(jstr(r.json, "state", NULL), "delivered");
    assert_string_equal(jstr(r.json, "provider_id", NULL), "<abc@mail>");
    /* The same outcome again (crash before XACK), or a late failure: nothing recorded. */
    record(f, &r, &d);
    assert_int_equal(r.status, 0);
    assert_false(json_is_true(json_object_get(r.json, "recorded")));
    assert_string_equal(jstr(r.json, "state", NULL), "delivered");
    sb_delivery_t late = {
        .conv = conv, .mid = mid, .channel = "email", .final = true, .reason = "550 no such user"};
    record(f, &r, &late);
    assert_false(json_is_true(json_object_get(r.json, "recorded")));
    assert_int_equal(log_len(f, conv), before + 1);
    /* A delivered message is not retried. */
    retry(f, &r, conv, mid);
    assert_int_equal(r.status, SB_ECONFLICT);
    reset(&r);
}

/* A bounce comes after the provider took the mail: it turns a delivered into a final
 * failure, once. */
static void test_bounce_after_delivered(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    email_reply(f, conv, mid);
    result_t r = {0};
    sb_delivery_t ok = {.conv = conv, .mid = mid, .channel = "email", .ok = true};
    record(f, &r, &ok);
    assert_true(json_is_true(json_object_get(r.json, "recorded")));
    sb_delivery_t bounce = {.conv = conv,
                            .mid = mid,
                            .channel = "email",
                            .final = true,
                            .bounce = true,
                            .reason = "bounced: ana@example.org 5.1.1"};
    record(f, &r, &bounce);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "recorded")));
    json_t *ev = json_object_get(r.json, "event");
    assert_string_equal(jstr(ev, "type", NULL), "delivery_failed");
    assert_true(json_is_true(json_object_get(ev, "bounce")));
    state_of(f, &r, conv, mid);
    assert_string_equal(jstr(r.json, "state", NULL), "failed");
    assert_true(json_is_true(json_object_get(r.json, "final")));
    /* the same bounce read again (a new UIDVALIDITY): nothing more */
    long before = log_len(f, conv);
    record(f, &r, &bounce);
    assert_false(json_is_true(json_object_get(r.json, "recorded")));
    assert_int_equal(log_len(f, conv), before);
    reset(&r);
}

static void test_failures_and_retry(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    email_reply(f, conv, mid);
    result_t r = {0};
    /* Never attempted: nothing to retry (409); pending since the reply stored it. */
    state_of(f, &r, conv, mid);
    assert_string_equal(jstr(r.json, "state", NULL), "pending");
    assert_string_equal(jstr(r.json, "channel", NULL), "email");
    retry(f, &r, conv, mid);
    assert_int_equal(r.status, SB_ECONFLICT);
    /* A temporary failure: retried by the engine, not by people. */
    sb_delivery_t d = {.conv = conv,
                       .mid = mid,
                       .channel = "email",
                       .account = "support",
                       .reason = "421 try later",
                       .retry_at = 1900000000000ULL};
    record(f, &r, &d);
    assert_int_equal(r.status, 0);
    json_t *ev = json_object_get(r.json, "event");
    assert_string_equal(jstr(ev, "type", NULL), "delivery_failed");
    assert_string_equal(jstr(ev, "ref", NULL), mid);
    assert_string_equal(jstr(ev, "reason", NULL), "421 try later");
    assert_string_equal(jstr(ev, "account", NULL), "support");
    assert_true(json_is_false(json_object_get(ev, "final")));
    assert_int_equal(json_integer_value(json_object_get(ev, "retry_at")), 1900000000000LL);
    retry(f, &r, conv, mid);
    assert_int_equal(r.status, SB_ECONFLICT);
    /* Then a permanent one: final, retry_at null. */
    d = (sb_delivery_t){.conv = conv,
                        .mid = mid,
                        .channel = "email",
                        .final = true,
                        .reason = "550 mailbox unavailable"};
    record(f, &r, &d);
    ev = json_object_get(r.json, "event");
    assert_true(json_is_true(json_object_get(ev, "final")));
    assert_true(json_is_null(json_object_get(ev, "retry_at")));
    state_of(f, &r, conv, mid);
    assert_string_equal(jstr(r.json, "state", NULL), "failed");
    assert_true(json_is_true(json_object_get(r.json, "final")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "attempts")), 2);
    /* The same final failure again records nothing. */
    long before = log_len(f, conv);
    record(f, &r, &d);
    assert_false(json_is_true(json_object_get(r.json, "recorded")));
    assert_int_equal(log_len(f, conv), before);
    /* Retry: back in the outbox (the entry the reply wrote), pending, a retry event. */
    assert_int_equal(key_cmd(f, "XLEN", conv, "outbox:email"), 1);
    retry(f, &r, conv, mid);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "state", "state"), "pending");
    assert_string_equal(jstr(r.json, "event", "type"), "delivery_retry");
    assert_string_equal(jstr(r.json, "event", "ref"), mid);
    assert_string_equal(jstr(json_object_get(r.json, "event"), "author", "id"), "st_bob");
    assert_int_equal(key_cmd(f, "XLEN", conv, "outbox:email"), 2);
    unsigned shard = sb_store_shard(f->store, conv);
    char first[4096], second[4096];
    snprintf(first, sizeof(first), "%s",
             sb_test_redis_cmd(&f->srv, "EVAL %s 1 sb:{%u}:outbox:email",
                               "return redis.call('XRANGE', KEYS[1], '-', '+')[1][2][4]", shard));
    snprintf(second, sizeof(second), "%s",
             sb_test_redis_cmd(&f->srv, "EVAL %s 1 sb:{%u}:outbox:email",
                               "return redis.call('XRANGE', KEYS[1], '-', '+')[2][2][4]", shard));
    assert_string_equal(first, second);
    assert_non_null(strstr(second, mid));
    /* Pending again: a second retry is refused until a new outcome. */
    retry(f, &r, conv, mid);
    assert_int_equal(r.status, SB_ECONFLICT);
    d = (sb_delivery_t){.conv = conv, .mid = mid, .channel = "email", .ok = true};
    record(f, &r, &d);
    assert_true(json_is_true(json_object_get(r.json, "recorded")));
    state_of(f, &r, conv, mid);
    assert_string_equal(jstr(r.json, "state", NULL), "delivered");
    assert_int_equal(json_integer_value(json_object_get(r.json, "retries")), 1);
    reset(&r);
}

static void test_unknown_and_inbound_messages(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX], other[SB_ID_MAX];
    email_conv(f, conv);
    sb_id_new("m_", other);
    result_t r = {0};
    sb_delivery_t d = {.conv = conv, .mid = other, .channel = "email", .ok = true};
    record(f, &r, &d);
    assert_int_equal(r.status, SB_ENOTFOUND);
    retry(f, &r, conv, other);
    assert_int_equal(r.status, SB_ENOTFOUND);
    /* The customer's own message is not an outbound one. */
    reset(&r);
    assert_int_equal(sb_store_messages(f->store, conv, NULL, 10, on_result, &r), 0);
    wait(f, &r);
    json_t *items = json_object_get(r.json, "items");
    snprintf(mid, SB_ID_MAX, "%s",
             jstr(json_array_get(items, json_array_size(items) - 1), "id", NULL));
    d.mid = mid;
    record(f, &r, &d);
    assert_int_equal(r.status, SB_ENOTFOUND);
    /* An unknown conversation. */
    char nc[SB_ID_MAX];
    sb_id_new("c_", nc);
    d.conv = nc;
    record(f, &r, &d);
    assert_int_equal(r.status, SB_ENOTFOUND);
    /* Malformed input is refused before any call. */
    d = (sb_delivery_t){.conv = conv, .mid = "x", .channel = "email", .ok = true};
    assert_int_equal(sb_store_delivery_record(f->store, &d, on_result, &r), SB_EINVAL);
    d = (sb_delivery_t){.conv = conv, .mid = mid, .channel = "e\"mail", .ok = true};
    assert_int_equal(sb_store_delivery_record(f->store, &d, on_result, &r), SB_EINVAL);
    reset(&r);
}

static void test_retry_needs_a_serving_node(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    email_reply(f, conv, mid);
    result_t r = {0};
    sb_delivery_t d = {
        .conv = conv, .mid = mid, .channel = "email", .final = true, .reason = "auth failed"};
    record(f, &r, &d);
    assert_int_equal(r.status, 0);
    /* Another node, where no email connector runs, cannot retry it. */
    sb_store_t *other;
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    assert_int_equal(sb_store_new(f->redis, &so, &other), 0);
    reset(&r);
    assert_int_equal(sb_store_delivery_retry(other, conv, mid, &bob, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_EUNAVAILABLE);
    assert_int_equal(key_cmd(f, "XLEN", conv, "outbox:email"), 1);
    sb_store_free(other);
    retry(f, &r, conv, mid);
    assert_int_equal(r.status, 0);
    reset(&r);
}

static void test_provider_text_bounded(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    email_reply(f, conv, mid);
    /* A provider's long answer is cut (at a character boundary), broken UTF-8 replaced. */
    char longer[SB_DELIVERY_MAX_TEXT + 500];
    memset(longer, 'x', sizeof(longer) - 1);
    memcpy(longer + SB_DELIVERY_MAX_TEXT - 1, "\xc3\xa9", 2); /* é across the cut */
    longer[sizeof(longer) - 1] = '\0';
    result_t r = {0};
    sb_delivery_t d = {.conv = conv,
                       .mid = mid,
                       .channel = "email",
                       .reason = longer,
                       .retry_at = 1900000000000ULL};
    record(f, &r, &d);
    assert_int_equal(r.status, 0);
    const char *reason = jstr(r.json, "event", "reason");
    assert_int_equal(strlen(reason), SB_DELIVERY_MAX_TEXT - 1);
    d.reason = "bad \xff byte";
    record(f, &r, &d);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "event", "reason"), "(not valid UTF-8)");
    reset(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reply_unserved_channel_stores_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_record_delivered_is_idempotent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bounce_after_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_and_inbound_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_needs_a_serving_node, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_text_bounded, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/delivery", tests, NULL, NULL);
}

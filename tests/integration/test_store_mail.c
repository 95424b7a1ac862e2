/* SPDX-License-Identifier: MIT */
/*
 * What the store does for the email connector. Web chat answers that go on by mail
 * (core/store_followup.c, functions.lua: followup): a scheduled answer comes out when due
 * unless the visitor saw it; taking it puts it into outbox:email once, however many nodes
 * try. An email message may continue a web chat conversation of the same contact
 * (cross_channel), never another contact's. A mail that threads nowhere starts a new
 * conversation (new_conversation) instead of joining the contact's latest.
 */
#include "tests/integration/store_fixture.h"

/* A web chat conversation and one staff answer in it. */
static void chat_with_answer(fixture_t *f, char conv[SB_ID_MAX], char ct[SB_ID_MAX],
                             char mid[SB_ID_MAX], char seq[48])
{
    sb_id_new("ct_", ct);
    ingest_on(f, "webchat", ct, "anyone there?", conv);
    result_t r = {0};
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "Yes, I am here.", NULL, NULL, true, on_result, &r),
        0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    snprintf(mid, SB_ID_MAX, "%s", jstr(r.json, "message.id"));
    snprintf(seq, 48, "%s", jstr(r.json, "message.seq"));
    reset(&r);
}

static json_t *due(fixture_t *f, const char *conv)
{
    result_t r = {0};
    assert_int_equal(
        sb_store_followup_due(f->store, sb_store_shard(f->store, conv), 0, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    json_t *d = json_incref(json_object_get(r.json, "due"));
    reset(&r);
    return d;
}

static void call_ok(fixture_t *f, result_t *r, int rc)
{
    assert_int_equal(rc, 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
}

static void test_due_unless_seen(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], ct[SB_ID_MAX], mid[SB_ID_MAX], seq[48];
    chat_with_answer(f, conv, ct, mid, seq);
    result_t r = {0};
    uint64_t now = (uint64_t)sb_now_ms();
    call_ok(f, &r, sb_store_followup_add(f->store, conv, mid, seq, now + 60000, on_result, &r));
    reset(&r);
    json_t *d = due(f, conv);
    assert_int_equal(json_array_size(d), 0); /* not yet */
    json_decref(d);

    /* due now: listed */
    call_ok(f, &r, sb_store_followup_take(f->store, conv, mid, seq, false, on_result, &r));
    reset(&r);
    call_ok(f, &r, sb_store_followup_add(f->store, conv, mid, seq, now - 1, on_result, &r));
    reset(&r);
    d = due(f, conv);
    assert_int_equal(json_array_size(d), 1);
    assert_string_equal(jstr(json_array_get(d, 0), "mid"), mid);
    json_decref(d);

    /* the widget showed it: dropped, never mailed */
    call_ok(f, &r, sb_store_seen(f->store, conv, seq, on_result, &r));
    reset(&r);
    d = due(f, conv);
    assert_int_equal(json_array_size(d), 0);
    json_decref(d);
    assert_string_equal(
        sb_test_redis_cmd(&f->srv, "ZCARD sb:{%u}:followup", sb_store_shard(f->store, conv)), "0");
    /* seen only moves forward */
    call_ok(f, &r, sb_store_seen(f->store, conv, "1-0", on_result, &r));
    reset(&r);
    assert_string_equal(
        sb_test_redis_cmd(&f->srv, "HGET sb:{%u}:seen %s", sb_store_shard(f->store, conv), conv),
        seq);
    assert_int_equal(sb_store_seen(f->store, conv, "nope", on_result, &r), SB_EINVAL);
}

static void test_send_once(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], ct[SB_ID_MAX], mid[SB_ID_MAX], seq[48];
    chat_with_answer(f, conv, ct, mid, seq);
    result_t r = {0};
    call_ok(f, &r, sb_store_followup_add(f->store, conv, mid, seq, 1, on_result, &r));
    reset(&r);
    call_ok(f, &r, sb_store_followup_take(f->store, conv, mid, seq, true, on_result, &r));
    assert_true(json_is_true(json_object_get(r.json, "sent")));
    reset(&r);
    /* a second node taking the same entry gets nothing */
    call_ok(f, &r, sb_store_followup_take(f->store, conv, mid, seq, true, on_result, &r));
    assert_true(json_is_false(json_object_get(r.json, "sent")));
    reset(&r);
    unsigned shard = sb_store_shard(f->store, conv);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "XLEN sb:{%u}:outbox:email", shard), "1");
    /* the entry carries the answer itself */
    char script[200];
    snprintf(script, sizeof(script),
             "return redis.call('XRANGE', 'sb:{%u}:outbox:email', '-', '+')[1][2][4]", shard);
    assert_non_null(strstr(sb_test_redis_cmd(&f->srv, "EVAL %s 0", script), mid));
}

static void test_cross_channel(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX], ct[SB_ID_MAX], mid[SB_ID_MAX], seq[48], other[SB_ID_MAX];
    chat_with_answer(f, conv, ct, mid, seq);
    result_t r = {0};
    sb_ingest_t in = {.channel = "email", .contact_id = ct, .conv = conv, .text = "by mail now"};
    /* without the flag: refused, as before */
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ECONFLICT);
    reset(&r);
    in.cross_channel = true;
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_string_equal(jstr(r.json, "message.channel"), "email");
    reset(&r);
    assert_int_equal(sb_store_get(f->store, conv, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "channel"), "webchat"); /* the conversation stays a chat */
    reset(&r);
    /* another contact: still refused */
    sb_id_new("ct_", other);
    in.contact_id = other;
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ECONFLICT);
    reset(&r);
}

static void test_new_conversation(void **state)
{
    fixture_t *f = *state;
    char ct[SB_ID_MAX], first[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest_on(f, "email", ct, "my printer", first);
    result_t r = {0};
    /* by default the contact's latest conversation on the channel continues */
    sb_ingest_t in = {.channel = "email", .contact_id = ct, .text = "still broken"};
    call_ok(f, &r, sb_store_ingest(f->store, &in, on_result, &r));
    assert_string_equal(jstr(r.json, "conversation.id"), first);
    reset(&r);
    /* a new matter */
    in.text = "and my invoice";
    in.new_conversation = true;
    call_ok(f, &r, sb_store_ingest(f->store, &in, on_result, &r));
    assert_true(json_is_true(json_object_get(r.json, "created")));
    assert_string_not_equal(jstr(r.json, "conversation.id"), first);
    reset(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_due_unless_seen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_conversation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

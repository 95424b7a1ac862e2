/* SPDX-License-Identifier: MIT */
/*
 * The channel lanes' store hooks (gateway/connector_outbox.c) with the delivery engine
 * (core/outbox.h) and a real store on a real redis-server:
 *  - a staff reply written by core/functions.lua goes through a lane, its outcome is
 *    recorded by sb_connector_outbox_record (a `delivered` event in the transcript) before
 *    the entry is acknowledged;
 *  - crash safety: an entry recorded delivered but never acknowledged (the engine stops
 *    between the record and the XACK, as a crash would) is, after a restart, checked by
 *    sb_connector_outbox_check (the store's {"state":"delivered"}) and acknowledged
 *    without being sent again; one that was never recorded is sent again.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/outbox.h"
#include "core/store.h"
#include "gateway/connector_outbox.h"
#include "tests/harness/harness.h"

typedef struct fixture {
    sb_test_store_t *ts;
    char *keys[16];
    sb_outbox_t *o;
    sb_outbox_lane_t *lane;
    int delivered;             /* deliver calls */
    bool redelivered;          /* of the last one */
    sb_outcome_kind_t outcome; /* what deliver answers */
    /* crash: the record is stored, its answer never reaches the engine (no XACK) */
    bool drop_ack, recorded;
    int record_status;
    sb_outbox_done_cb held_cb;
    void *held_data;
} fixture_t;

typedef struct op {
    bool done;
    int status;
    char conv[64], mid[64];
} op_t;

static void on_op(int status, json_t *result, const char *errmsg, void *data)
{
    op_t *op = data;
    json_t *m = json_object_get(result, "message");
    op->status = status;
    snprintf(op->conv, sizeof(op->conv), "%s", json_string_value(json_object_get(m, "conv")));
    snprintf(op->mid, sizeof(op->mid), "%s", json_string_value(json_object_get(m, "id")));
    op->done = true;
}

static void deliver(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, sb_outbox_attempt_t *a,
                    void *data)
{
    fixture_t *f = data;
    f->delivered++;
    f->redelivered = e->redelivered;
    sb_outbox_answer(a, &(sb_outcome_t){.kind = f->outcome, .provider_id = "<p@mail>"});
}

static void on_real_record(int status, json_t *result, const char *errmsg, void *data)
{
    fixture_t *f = data;
    f->recorded = true;
    f->record_status = status; /* the engine's callback is held: no XACK follows */
}

/* The real record hook, or (drop_ack) the real record whose answer the engine never gets. */
static int record(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb, void *cbdata)
{
    fixture_t *f = ctx;
    if (!f->drop_ack)
        return sb_connector_outbox_record(f->ts->store, r, cb, cbdata);
    f->held_cb = cb;
    f->held_data = cbdata;
    return sb_connector_outbox_record(f->ts->store, r, on_real_record, f);
}

static int check(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb, void *cbdata)
{
    fixture_t *f = ctx;
    return sb_connector_outbox_check(f->ts->store, r, cb, cbdata);
}

static void engine_start(fixture_t *f)
{
    sb_outbox_opts_t oo = {.prefix = "sb:", .consumer = "node-1"};
    assert_int_equal(sb_outbox_new(&f->ts->loop, f->ts->redis, &oo, &f->o), 0);
    sb_outbox_lane_opts_t lo = {.name = "email",
                                .group = "email",
                                .streams = (const char *const *)f->keys,
                                .nstreams = 16,
                                .channel = "email",
                                .deliver = deliver,
                                .record = record,
                                .check = check,
                                .ctx = f,
                                .data = f};
    assert_int_equal(sb_outbox_lane_add(f->o, &lo, &f->lane), 0);
}

static void on_stopped(void *data)
{
    *(bool *)data = true;
}

static void engine_stop(fixture_t *f)
{
    bool stopped = false;
    sb_outbox_stop(f->o, on_stopped, &stopped);
    if (f->held_cb) { /* the answer the "crash" lost: too late, the engine is stopping */
        sb_outbox_done_cb cb = f->held_cb;
        f->held_cb = NULL;
        cb(SB_ECANCELED, NULL, "crashed", f->held_data);
    }
    assert_true(sb_test_loop_until(&f->ts->loop, &stopped, 5000));
    f->o = NULL;
}

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    f->ts = sb_test_store_new(false, 5000);
    assert_non_null(f->ts);
    sb_store_serve(f->ts->store, "email"); /* as a started email connector would */
    for (int i = 0; i < 16; i++)
        f->keys[i] = sb_asprintf("sb:{%d}:outbox:email", i);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->o)
        engine_stop(f);
    for (int i = 0; i < 16; i++)
        sb_free(f->keys[i]);
    sb_test_store_free(f->ts);
    sb_free(f);
    return 0;
}

/* ---- Helpers ---- */

/* A customer email and a staff reply to it: the reply's entry is in outbox:email. */
static void email_and_reply(fixture_t *f, op_t *in, op_t *rep)
{
    sb_ingest_t ing = {.channel = "email", .contact_id = "ct_wire", .text = "where is it?"};
    assert_int_equal(sb_store_ingest(f->ts->store, &ing, on_op, in), 0);
    assert_true(sb_test_loop_until(&f->ts->loop, &in->done, 5000));
    assert_int_equal(in->status, 0);
    sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};
    assert_int_equal(
        sb_store_reply(f->ts->store, in->conv, &bob, "on its way", NULL, NULL, false, on_op, rep),
        0);
    assert_true(sb_test_loop_until(&f->ts->loop, &rep->done, 5000));
    assert_int_equal(rep->status, 0);
}

static long pending(fixture_t *f, const char *conv)
{
    const char *key = f->keys[sb_store_shard(f->ts->store, conv)];
    const char *r = sb_test_redis_cmd(&f->ts->srv, "XPENDING %s email - + 10", key);
    return r[0] == '[' ? atol(r + 1) : -1;
}

/* The entries of the conversation's transcript (a second `delivered` would add one). */
static long log_len(fixture_t *f, const char *conv)
{
    const char *r = sb_test_redis_cmd(&f->ts->srv, "XLEN sb:{%u}:log:%s",
                                      sb_store_shard(f->ts->store, conv), conv);
    return atol(r);
}

typedef struct state_op {
    bool done;
    char state[16];
    long long attempts;
} state_op_t;

static void on_state(int status, json_t *result, const char *errmsg, void *data)
{
    state_op_t *op = data;
    snprintf(op->state, sizeof(op->state), "%s",
             status ? "error" : json_string_value(json_object_get(result, "state")));
    op->attempts = json_integer_value(json_object_get(result, "attempts"));
    op->done = true;
}

/* The message's delivery state as the store has it ("delivered", "failed", "pending"). */
static state_op_t delivery_state(fixture_t *f, const op_t *rep)
{
    state_op_t op = {0};
    assert_int_equal(sb_store_delivery_state(f->ts->store, rep->conv, rep->mid, on_state, &op), 0);
    assert_true(sb_test_loop_until(&f->ts->loop, &op.done, 5000));
    return op;
}

#define WAIT(cond) SB_TEST_SPIN_UNTIL(&f->ts->loop, (cond), 5000)

/* ---- Tests ---- */

static void test_connector_outbox_records_then_acks(void **state)
{
    fixture_t *f = *state;
    op_t in = {0}, rep = {0};
    email_and_reply(f, &in, &rep);
    f->outcome = SB_OUTCOME_OK;
    engine_start(f); /* group from 0: the reply is there */
    WAIT(f->delivered == 1 && pending(f, in.conv) == 0);
    assert_int_equal(f->delivered, 1);
    assert_int_equal(pending(f, in.conv), 0);
    assert_string_equal(delivery_state(f, &rep).state, "delivered");
}

static void test_connector_outbox_recorded_not_acked_is_not_sent_twice(void **state)
{
    fixture_t *f = *state;
    op_t in = {0}, rep = {0};
    email_and_reply(f, &in, &rep);
    f->outcome = SB_OUTCOME_OK;
    f->drop_ack = true;
    engine_start(f);
    WAIT(f->recorded);
    assert_int_equal(f->record_status, 0);
    assert_int_equal(f->delivered, 1);
    engine_stop(f); /* the "crash": recorded delivered, never acknowledged */
    assert_int_equal(pending(f, in.conv), 1);
    state_op_t before = delivery_state(f, &rep);
    assert_string_equal(before.state, "delivered");
    long len = log_len(f, in.conv);

    f->drop_ack = false;
    engine_start(f); /* the restart reads its pending entry again, checks it first */
    WAIT(pending(f, in.conv) == 0);
    assert_int_equal(pending(f, in.conv), 0);
    assert_int_equal(f->delivered, 1); /* not sent again */
    assert_int_equal(log_len(f, in.conv), len);
    assert_int_equal(delivery_state(f, &rep).attempts, before.attempts);
}

static void test_connector_outbox_unrecorded_pending_is_sent_again(void **state)
{
    fixture_t *f = *state;
    op_t in = {0}, rep = {0};
    email_and_reply(f, &in, &rep);
    /* An engine that read the entry and stopped before any outcome (a crash mid-send). */
    sb_test_redis_cmd(&f->ts->srv, "XGROUP CREATE %s email 0 MKSTREAM",
                      f->keys[sb_store_shard(f->ts->store, in.conv)]);
    sb_test_redis_cmd(&f->ts->srv, "XREADGROUP GROUP email node-1 COUNT 10 STREAMS %s >",
                      f->keys[sb_store_shard(f->ts->store, in.conv)]);
    assert_int_equal(pending(f, in.conv), 1);
    f->outcome = SB_OUTCOME_OK;
    engine_start(f);
    WAIT(pending(f, in.conv) == 0);
    assert_int_equal(f->delivered, 1);
    assert_true(f->redelivered); /* checked (never recorded), then sent */
    assert_string_equal(delivery_state(f, &rep).state, "delivered");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connector_outbox_records_then_acks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connector_outbox_recorded_not_acked_is_not_sent_twice,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_connector_outbox_unrecorded_pending_is_sent_again,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("gateway/connector_outbox", tests, NULL, NULL);
}

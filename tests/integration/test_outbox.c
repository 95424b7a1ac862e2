/* SPDX-License-Identifier: MIT */
/*
 * The delivery engine (core/outbox.c, core/outbox_attempt.c) against a real redis-server:
 * every outcome kind (ok, temporary up to the dead letter, rate_limited at the provider's
 * time, permanent, auth pausing the lane until resumed), record-before-ack (no XACK
 * until the record hook's answer; a failed record is retried, not the send), pending
 * entries first after a restart (with the check hook: one recorded delivered is not sent
 * again), and XAUTOCLAIM takeover between two engines. Delays run on the injectable
 * clock (core/sys.h): the test moves time, it never sleeps for it.
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
#include "core/sys.h"
#include "tests/harness/harness.h"

#define MAXSEEN 32

static int64_t fake_now;
static int64_t fake_now_ms(void)
{
    return fake_now;
}
static const sb_sys_t fake_sys = {.now_ms = fake_now_ms};

typedef struct seen {
    char id[48], conv[32], mid[32];
    unsigned attempt;
    bool redelivered;
} seen_t;

typedef struct rec {
    char conv[32], mid[32], channel[16], reason[64], provider_id[32];
    bool ok, final;
    uint64_t retry_at;
} rec_t;

typedef struct fixture {
    sb_test_redis_t srv;
    uv_loop_t loop;
    sb_redis_t *redis;
    sb_outbox_t *o;
    sb_outbox_lane_t *lane;
    const char *streams[2];
    /* deliver */
    seen_t seen[MAXSEEN];
    int nseen;
    sb_outbox_attempt_t *att[MAXSEEN]; /* attempts in flight, by seen index */
    int cancels;
    /* record */
    bool use_record, use_check, no_cancel, trim;
    rec_t recs[MAXSEEN];
    int nrecs;
    sb_outbox_done_cb rec_cb;
    void *rec_data;
    int checks;
    sb_outbox_done_cb check_cb;
    void *check_data;
    /* on_lane_state */
    int states;
    bool paused;
    char pause_reason[64];
} fixture_t;

static void deliver(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, sb_outbox_attempt_t *a,
                    void *data)
{
    fixture_t *f = data;
    assert_true(f->nseen < MAXSEEN);
    f->att[f->nseen] = a;
    seen_t *s = &f->seen[f->nseen++];
    snprintf(s->id, sizeof(s->id), "%s", e->id);
    const char *conv = sb_outbox_field(e, "conv", NULL);
    snprintf(s->conv, sizeof(s->conv), "%s", conv ? conv : "");
    s->attempt = e->attempt;
    s->redelivered = e->redelivered;
}

/* The oldest attempt in flight (its index into att), or -1. */
static int inflight(fixture_t *f)
{
    for (int i = 0; i < f->nseen; i++)
        if (f->att[i])
            return i;
    return -1;
}

static void cancel(sb_outbox_lane_t *lane, sb_outbox_attempt_t *a, void *data)
{
    fixture_t *f = data;
    int i = 0;
    while (i < f->nseen && f->att[i] != a)
        i++;
    assert_true(i < f->nseen);
    f->att[i] = NULL;
    f->cancels++;
}

static int record(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb, void *cbdata)
{
    fixture_t *f = ctx;
    assert_null(f->rec_cb);
    rec_t *x = &f->recs[f->nrecs++];
    snprintf(x->conv, sizeof(x->conv), "%s", r->conv);
    snprintf(x->mid, sizeof(x->mid), "%s", r->mid);
    snprintf(x->channel, sizeof(x->channel), "%s", r->channel);
    snprintf(x->reason, sizeof(x->reason), "%s", r->reason);
    snprintf(x->provider_id, sizeof(x->provider_id), "%s", r->provider_id);
    x->ok = r->ok;
    x->final = r->final;
    x->retry_at = r->retry_at;
    f->rec_cb = cb;
    f->rec_data = cbdata;
    return 0;
}

static int check(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb, void *cbdata)
{
    fixture_t *f = ctx;
    f->checks++;
    f->check_cb = cb;
    f->check_data = cbdata;
    return 0;
}

static void on_lane_state(sb_outbox_lane_t *lane, bool paused, const char *reason, void *data)
{
    fixture_t *f = data;
    f->states++;
    f->paused = paused;
    snprintf(f->pause_reason, sizeof(f->pause_reason), "%s", reason);
}

static void engine_start(fixture_t *f, const char *consumer, uint32_t claim_idle_ms)
{
    sb_outbox_opts_t oo = {.prefix = "t:",
                           .consumer = consumer,
                           .retry_base_ms = 1000,
                           .retry_max_ms = 60000,
                           .attempts = 3,
                           .claim_idle_ms = claim_idle_ms,
                           .dead_maxlen = 100,
                           .on_lane_state = on_lane_state,
                           .data = f};
    assert_int_equal(sb_outbox_new(&f->loop, f->redis, &oo, &f->o), 0);
    sb_outbox_lane_opts_t lo = {.name = "email",
                                .group = "email",
                                .streams = f->streams,
                                .nstreams = 2,
                                .channel = "email",
                                .deliver = deliver,
                                .cancel = f->no_cancel ? NULL : cancel,
                                .record = f->use_record ? record : NULL,
                                .check = f->use_check ? check : NULL,
                                .trim = f->trim,
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
    /* answers still owed by the test's hooks: the engine waits for them */
    if (f->rec_cb) {
        sb_outbox_done_cb cb = f->rec_cb;
        f->rec_cb = NULL;
        cb(SB_ECANCELED, NULL, "stopping", f->rec_data);
    }
    if (f->check_cb) {
        sb_outbox_done_cb cb = f->check_cb;
        f->check_cb = NULL;
        cb(SB_ECANCELED, NULL, "stopping", f->check_data);
    }
    assert_true(sb_test_loop_until(&f->loop, &stopped, 5000));
    f->o = NULL;
    f->lane = NULL;
}

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    assert_int_equal(sb_test_redis_start(&f->srv), 0);
    uv_loop_init(&f->loop);
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "test"};
    assert_int_equal(sb_redis_new(&f->loop, &ro, &f->redis), 0);
    f->streams[0] = "t:{0}:outbox:email";
    f->streams[1] = "t:{1}:outbox:email";
    fake_now = 1700000000000;
    sb_sys_set(&fake_sys);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->o)
        engine_stop(f);
    bool stopped = false;
    sb_redis_stop(f->redis, on_stopped, &stopped);
    assert_true(sb_test_loop_until(&f->loop, &stopped, 5000));
    sb_test_redis_stop(&f->srv); /* first: no server left behind by a failed test */
    sb_sys_set(NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sb_free(f);
    return 0;
}

/* ---- Helpers ---- */

static void xadd(fixture_t *f, int shard, const char *conv, const char *mid)
{
    char m[64];
    snprintf(m, sizeof(m), "{\"id\":\"%s\",\"text\":\"hi\"}", mid);
    const char *id =
        sb_test_redis_cmd(&f->srv, "XADD %s * conv %s m %s", f->streams[shard], conv, m);
    assert_true(strchr(id, '-') != NULL);
}

static long pending(fixture_t *f, int shard)
{
    const char *r = sb_test_redis_cmd(&f->srv, "XPENDING %s email - + 100", f->streams[shard]);
    return r[0] == '[' ? atol(r + 1) : -1;
}

static void answer(fixture_t *f, sb_outcome_kind_t kind, const char *reason, const char *pid,
                   uint64_t retry_at)
{
    int i = inflight(f);
    assert_true(i >= 0);
    sb_outbox_attempt_t *a = f->att[i];
    f->att[i] = NULL;
    sb_outbox_answer(a, &(sb_outcome_t){kind, reason, pid, retry_at});
}

static void recorded(fixture_t *f, int status, const char *json)
{
    assert_non_null(f->rec_cb);
    sb_outbox_done_cb cb = f->rec_cb;
    f->rec_cb = NULL;
    json_t *j = json ? json_loads(json, 0, NULL) : NULL;
    cb(status, j, status ? "store down" : NULL, f->rec_data);
    json_decref(j);
}

/* Runs the loop a little: what must not happen gets its chance to. */
static void settle(fixture_t *f)
{
    sb_test_loop_for(&f->loop, 50);
}

static void advance(fixture_t *f, int64_t ms)
{
    fake_now += ms;
    sb_outbox_kick(f->o);
}

#define WAIT(cond) SB_TEST_SPIN_UNTIL(&f->loop, (cond), 5000)

/* ---- Tests ---- */

static void test_outbox_ok_records_before_ack(void **state)
{
    fixture_t *f = *state;
    f->use_record = true;
    engine_start(f, "a", 300000);
    xadd(f, 1, "c_1", "m_1");
    sb_outbox_lane_poke(f->lane, 1);
    WAIT(f->nseen == 1);
    assert_string_equal(f->seen[0].conv, "c_1");
    assert_int_equal(f->seen[0].attempt, 1);
    assert_false(f->seen[0].redelivered);
    answer(f, SB_OUTCOME_OK, NULL, "prov-9", 0);
    assert_int_equal(f->nrecs, 1);
    assert_string_equal(f->recs[0].conv, "c_1");
    assert_string_equal(f->recs[0].mid, "m_1");
    assert_string_equal(f->recs[0].channel, "email");
    assert_string_equal(f->recs[0].provider_id, "prov-9");
    assert_string_equal(f->recs[0].reason, "");
    assert_true(f->recs[0].ok && f->recs[0].final);
    assert_int_equal(f->recs[0].retry_at, 0);
    settle(f);
    assert_int_equal(pending(f, 1), 1); /* not acknowledged before the record is stored */
    recorded(f, 0, "{\"recorded\":true}");
    WAIT(pending(f, 1) == 0);
    sb_outbox_stats_t st;
    sb_outbox_lane_stats(f->lane, &st);
    assert_int_equal(st.ok, 1);
    assert_int_equal(st.dead, 0);
}

static void test_outbox_record_failure_retries_record(void **state)
{
    fixture_t *f = *state;
    f->use_record = true;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_2", "m_2");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_OK, NULL, "p", 0);
    recorded(f, SB_EREDIS, NULL); /* the store failed */
    settle(f);
    assert_int_equal(pending(f, 0), 1); /* no XACK */
    assert_null(f->rec_cb);
    advance(f, 999);
    settle(f);
    assert_int_equal(f->nrecs, 1);
    advance(f, 1);
    WAIT(f->nrecs == 2); /* the record again, not the send */
    assert_int_equal(f->nseen, 1);
    assert_true(f->recs[1].ok && f->recs[1].final);
    recorded(f, 0, "{\"recorded\":true}");
    WAIT(pending(f, 0) == 0);
}

static void test_outbox_temporary_then_dead_letter(void **state)
{
    fixture_t *f = *state;
    f->use_record = true;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_3", "m_3");
    sb_outbox_lane_poke(f->lane, -1);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_TEMPORARY, "status_503", NULL, 0);
    assert_false(f->recs[0].final);
    assert_false(f->recs[0].ok);
    assert_int_equal(f->recs[0].retry_at, (uint64_t)fake_now + 1000); /* retry_base */
    assert_string_equal(f->recs[0].reason, "status_503");
    recorded(f, 0, "{\"recorded\":true}");
    settle(f);
    advance(f, 999);
    settle(f);
    assert_int_equal(f->nseen, 1); /* not before the backoff */
    advance(f, 1);
    WAIT(f->nseen == 2);
    assert_int_equal(f->seen[1].attempt, 2);
    answer(f, SB_OUTCOME_TEMPORARY, "status_503", NULL, 0);
    assert_int_equal(f->recs[1].retry_at, (uint64_t)fake_now + 2000); /* doubled */
    recorded(f, 0, "{\"recorded\":true}");
    advance(f, 2000);
    WAIT(f->nseen == 3);
    assert_int_equal(f->seen[2].attempt, 3);
    answer(f, SB_OUTCOME_TEMPORARY, "status_503", NULL, 0); /* the last attempt */
    assert_true(f->recs[2].final);
    assert_int_equal(f->recs[2].retry_at, 0);
    recorded(f, 0, "{\"recorded\":true}");
    WAIT(pending(f, 0) == 0);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "XLEN t:dead:email"), "1");
    sb_outbox_stats_t st;
    sb_outbox_lane_stats(f->lane, &st);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.retry, 2);
    sb_buf_t b;
    sb_buf_init(&b, 1 << 16);
    sb_outbox_metrics(f->o, &b);
    sb_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "switchboard_outbox_dead_letters_total{lane=\"email\"} 1\n"));
    sb_buf_dispose(&b);
}

static void test_outbox_permanent_is_dead_at_once(void **state)
{
    fixture_t *f = *state;
    engine_start(f, "a", 300000);
    xadd(f, 1, "c_4", "m_4");
    sb_outbox_lane_poke(f->lane, 1);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_PERMANENT, "mailbox does not exist", NULL, 0);
    WAIT(pending(f, 1) == 0);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "XLEN t:dead:email"), "1");
    /* the dead letter says where it came from and why, and keeps the fields */
    assert_string_equal(sb_test_redis_cmd(&f->srv, "XRANGE t:dead:email - +"), "[1]");
    const char *lua = "return redis.call('XRANGE',KEYS[1],'-','+')[1][2][tonumber(ARGV[1])]";
    const char *r = sb_test_redis_cmd(&f->srv, "EVAL %s 1 t:dead:email 6", lua);
    assert_string_equal(r, "mailbox does not exist");
    r = sb_test_redis_cmd(&f->srv, "EVAL %s 1 t:dead:email 10", lua);
    assert_string_equal(r, "c_4");
    settle(f);
    assert_int_equal(f->nseen, 1);
}

static void test_outbox_rate_limited_honours_time(void **state)
{
    fixture_t *f = *state;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_5", "m_5");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    for (int i = 0; i < 5; i++) { /* more often than attempts: never a dead letter */
        answer(f, SB_OUTCOME_RATE_LIMITED, "429", NULL, (uint64_t)fake_now + 60000);
        advance(f, 59999);
        settle(f);
        assert_int_equal(f->nseen, 1 + i);
        advance(f, 1);
        WAIT(f->nseen == 2 + i);
        assert_int_equal(f->seen[1 + i].attempt, 1); /* not a failed attempt */
    }
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(pending(f, 0) == 0);
    sb_outbox_stats_t st;
    sb_outbox_lane_stats(f->lane, &st);
    assert_int_equal(st.rate_limited, 5);
    assert_int_equal(st.dead, 0);
}

static void test_outbox_auth_pauses_lane(void **state)
{
    fixture_t *f = *state;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_6", "m_6");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_AUTH, "token revoked", NULL, 0);
    assert_int_equal(f->states, 1);
    assert_true(f->paused);
    assert_string_equal(f->pause_reason, "token revoked");
    xadd(f, 1, "c_7", "m_7"); /* other streams of the lane wait too */
    sb_outbox_lane_poke(f->lane, -1);
    advance(f, 3600000);
    settle(f);
    assert_int_equal(f->nseen, 1);
    assert_int_equal(pending(f, 0), 1);
    sb_outbox_stats_t st;
    sb_outbox_lane_stats(f->lane, &st);
    assert_true(st.paused);
    sb_buf_t b;
    sb_buf_init(&b, 1 << 16);
    sb_outbox_metrics(f->o, &b);
    sb_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "switchboard_outbox_paused{lane=\"email\"} 1\n"));
    sb_buf_dispose(&b);
    sb_outbox_lane_resume(f->lane);
    assert_int_equal(f->states, 2);
    assert_false(f->paused);
    WAIT(f->nseen == 3); /* one attempt per stream at once */
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(pending(f, 0) == 0 && pending(f, 1) == 0);
    assert_string_equal(f->seen[0].conv, "c_6");
    assert_true(strcmp(f->seen[1].conv, "c_6") == 0 || strcmp(f->seen[2].conv, "c_6") == 0);
    assert_int_equal(f->seen[1].attempt + f->seen[2].attempt, 2); /* auth: not a failed attempt */
}

/* With a record hook, the message that met the refusal says why it waits (not final). */
static void test_outbox_auth_is_recorded_on_the_message(void **state)
{
    fixture_t *f = *state;
    f->use_record = true;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_6a", "m_6a");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_AUTH, "token revoked", NULL, 0);
    assert_true(f->paused);
    assert_int_equal(f->nrecs, 1);
    assert_string_equal(f->recs[0].mid, "m_6a");
    assert_false(f->recs[0].ok);
    assert_false(f->recs[0].final);
    assert_string_equal(f->recs[0].reason, "account paused: token revoked");
    recorded(f, 0, "{\"recorded\":true}");
    settle(f);
    assert_int_equal(pending(f, 0), 1); /* waits for the resume, not acknowledged */
    sb_outbox_lane_resume(f->lane);
    WAIT(f->nseen == 2);
    assert_int_equal(f->seen[1].attempt, 1);
    answer(f, SB_OUTCOME_OK, NULL, "p", 0);
    recorded(f, 0, "{\"recorded\":true}");
    WAIT(pending(f, 0) == 0);
}

/* A record the store can never take does not hold the stream: the entry goes on. */
static void test_outbox_record_refused_does_not_block(void **state)
{
    fixture_t *f = *state;
    f->use_record = true;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_gone", "m_8");
    xadd(f, 0, "c_9", "m_9");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_TEMPORARY, "status_503", NULL, 0);
    recorded(f, SB_ENOTFOUND, NULL); /* no such conversation */
    WAIT(f->nseen == 2);             /* the next entry, without a backoff wait */
    assert_string_equal(f->seen[1].conv, "c_9");
    WAIT(strcmp(sb_test_redis_cmd(&f->srv, "XLEN t:dead:email"), "1") == 0);
    answer(f, SB_OUTCOME_OK, NULL, "p", 0);
    recorded(f, 0, "{\"recorded\":true}");
    WAIT(pending(f, 0) == 0);
}

static void test_outbox_pending_first_after_restart(void **state)
{
    fixture_t *f = *state;
    f->use_record = f->use_check = true;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_8", "m_8");
    xadd(f, 0, "c_9", "m_9");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    assert_int_equal(f->checks, 0); /* a new entry is not checked */
    engine_stop(f);                 /* the attempt in flight is cancelled */
    assert_int_equal(f->cancels, 1);
    assert_int_equal(pending(f, 0), 2); /* both were read, neither acknowledged */
    xadd(f, 0, "c_10", "m_10");

    engine_start(f, "a", 300000); /* the same consumer again */
    WAIT(f->checks == 1);         /* c_8 first, from our pending list: checked */
    assert_int_equal(f->nseen, 1);
    f->check_cb(0, NULL, NULL, f->check_data); /* not delivered yet */
    f->check_cb = NULL;
    WAIT(f->nseen == 2);
    assert_string_equal(f->seen[1].conv, "c_8");
    assert_true(f->seen[1].redelivered);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    recorded(f, 0, "{\"recorded\":true}");
    WAIT(f->checks == 2); /* c_9: also pending, also checked */
    json_t *done = json_pack("{s:b,s:s}", "recorded", 0, "state", "delivered");
    f->check_cb(0, done, NULL, f->check_data); /* recorded delivered before the crash */
    f->check_cb = NULL;
    json_decref(done);
    WAIT(f->nseen == 3); /* c_9 is not sent again: c_10 is next, new, unchecked */
    assert_string_equal(f->seen[2].conv, "c_10");
    assert_false(f->seen[2].redelivered);
    assert_int_equal(f->checks, 2);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    recorded(f, 0, "{\"recorded\":false,\"state\":\"delivered\"}"); /* acked all the same */
    WAIT(pending(f, 0) == 0);
}

static void test_outbox_autoclaim_takeover(void **state)
{
    fixture_t *f = *state;
    sb_sys_set(NULL); /* XAUTOCLAIM's idle time is Redis's clock: real time here */
    engine_start(f, "node-a", 200);
    xadd(f, 1, "c_11", "m_11");
    sb_outbox_lane_poke(f->lane, 1);
    WAIT(f->nseen == 1);
    sb_outbox_t *a = f->o;
    engine_start(f, "node-b", 200); /* a second node, both running */
    sb_outbox_t *b = f->o;
    sb_outbox_lane_t *lb = f->lane;
    sb_test_loop_for(&f->loop, 800); /* 4 x claim_idle: node-a keeps its entry fresh */
    assert_int_equal(f->nseen, 1);
    /* node-a dies: nothing acknowledges or refreshes its entry any more */
    f->o = a;
    engine_stop(f);
    assert_int_equal(f->cancels, 1);
    assert_int_equal(inflight(f), -1);
    f->o = b;
    f->lane = lb;
    WAIT(f->nseen == 2);
    assert_string_equal(f->seen[1].conv, "c_11");
    assert_true(f->seen[1].redelivered);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(pending(f, 1) == 0);
    const char *who = sb_test_redis_cmd(&f->srv, "XINFO CONSUMERS %s email", f->streams[1]);
    assert_string_equal(who, "[2]"); /* both nodes are consumers of the group */
}

static const char *xlen(fixture_t *f, int shard)
{
    return sb_test_redis_cmd(&f->srv, "XLEN %s", f->streams[shard]);
}

/* An outbox keeps only what is still to deliver: delivered entries are trimmed on the
 * claim tick, the pending one stays, and so does what another group has not read. */
static void test_outbox_trims_what_is_delivered(void **state)
{
    fixture_t *f = *state;
    f->trim = true;
    engine_start(f, "a", 200);
    for (int i = 0; i < 3; i++) {
        char conv[16], mid[16];
        snprintf(conv, sizeof(conv), "c_t%d", i);
        snprintf(mid, sizeof(mid), "m_t%d", i);
        xadd(f, 0, conv, mid);
    }
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(f->nseen == 2);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(f->nseen == 3); /* m_t2 in flight: pending */
    WAIT(pending(f, 0) == 1);
    advance(f, 1000);
    WAIT(strcmp(xlen(f, 0), "1") == 0); /* the two delivered ones went, the pending one not */
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(pending(f, 0) == 0);
    /* stream 1 has a second reader that has not read yet: what it has not read stays */
    sb_test_redis_cmd(&f->srv, "XGROUP CREATE %s other 0 MKSTREAM", f->streams[1]);
    xadd(f, 1, "c_o1", "m_o1");
    sb_outbox_lane_poke(f->lane, 1);
    WAIT(f->nseen == 4);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0);
    WAIT(pending(f, 1) == 0);
    advance(f, 1000);
    WAIT(strcmp(xlen(f, 0), "0") == 0); /* this tick trimmed both streams */
    settle(f);
    assert_string_equal(xlen(f, 1), "1");
}

/* Without a cancel hook an abandoned attempt stays the owner's to answer, even late. */
static void test_outbox_late_answer_without_cancel(void **state)
{
    fixture_t *f = *state;
    f->no_cancel = true;
    engine_start(f, "a", 300000);
    xadd(f, 0, "c_12", "m_12");
    sb_outbox_lane_poke(f->lane, 0);
    WAIT(f->nseen == 1);
    engine_stop(f);
    assert_int_equal(f->cancels, 0);
    answer(f, SB_OUTCOME_OK, NULL, NULL, 0); /* ignored: frees the attempt, nothing else */
    assert_int_equal(pending(f, 0), 1);      /* still pending for the next start */
}

/* ---- The real entry format: a staff reply on an email conversation (core/functions.lua) ---- */

typedef struct op {
    bool done;
    int status;
    char conv[64], mid[64], state[16];
} op_t;

static void on_op(int status, json_t *result, const char *errmsg, void *data)
{
    op_t *op = data;
    op->status = status;
    const char *conv =
        json_string_value(json_object_get(json_object_get(result, "message"), "conv"));
    const char *mid = json_string_value(json_object_get(json_object_get(result, "message"), "id"));
    snprintf(op->conv, sizeof(op->conv), "%s", conv ? conv : "");
    snprintf(op->mid, sizeof(op->mid), "%s", mid ? mid : "");
    op->done = true;
}

static void on_state(int status, json_t *result, const char *errmsg, void *data)
{
    op_t *op = data;
    const char *st = json_string_value(json_object_get(result, "state"));
    op->status = status;
    snprintf(op->state, sizeof(op->state), "%s", st ? st : "");
    op->done = true;
}

static void test_outbox_delivers_store_replies(void **state)
{
    fixture_t *f = *state; /* its hooks and records; the store brings its own Redis */
    sb_test_store_t *ts = sb_test_store_new(false, 5000);
    assert_non_null(ts);
    sb_store_serve(ts->store, "email"); /* as a started email connector would */
    f->use_record = true;
    op_t in = {0}, rep = {0};
    sb_ingest_t ing = {.channel = "email", .contact_id = "ct_outbox", .text = "where is it?"};
    assert_int_equal(sb_store_ingest(ts->store, &ing, on_op, &in), 0);
    assert_true(sb_test_loop_until(&ts->loop, &in.done, 5000));
    assert_int_equal(in.status, 0);
    sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};
    assert_int_equal(
        sb_store_reply(ts->store, in.conv, &bob, "on its way", NULL, NULL, false, on_op, &rep), 0);
    assert_true(sb_test_loop_until(&ts->loop, &rep.done, 5000));
    assert_int_equal(rep.status, 0);

    char *keys[16];
    for (int i = 0; i < 16; i++)
        keys[i] = sb_asprintf("sb:{%d}:outbox:email", i);
    sb_outbox_t *o;
    sb_outbox_opts_t oo = {.prefix = "sb:", .consumer = "n1"};
    assert_int_equal(sb_outbox_new(&ts->loop, ts->redis, &oo, &o), 0);
    sb_outbox_lane_opts_t lo = {.name = "email",
                                .group = "email",
                                .streams = (const char *const *)keys,
                                .nstreams = 16,
                                .channel = "email",
                                .deliver = deliver,
                                .cancel = cancel,
                                .record = record,
                                .ctx = f,
                                .data = f};
    sb_outbox_lane_t *lane;
    assert_int_equal(sb_outbox_lane_add(o, &lo, &lane), 0); /* group from 0: the reply is there */
    SB_TEST_SPIN_UNTIL(&ts->loop, f->nseen == 1, 5000);
    assert_string_equal(f->seen[0].conv, in.conv);
    answer(f, SB_OUTCOME_OK, NULL, "<id@mail>", 0);
    assert_int_equal(f->nrecs, 1);
    assert_string_equal(f->recs[0].conv, in.conv);
    assert_string_equal(f->recs[0].mid, rep.mid); /* from the entry's message JSON */
    assert_string_equal(f->recs[0].channel, "email");
    assert_string_equal(f->recs[0].provider_id, "<id@mail>");
    /* The record goes to the store, whose answer goes back to the engine as it is. */
    sb_outbox_done_cb cb = f->rec_cb;
    f->rec_cb = NULL;
    const rec_t *x = &f->recs[0];
    sb_delivery_t d = {.conv = x->conv,
                       .mid = x->mid,
                       .channel = x->channel,
                       .ok = x->ok,
                       .final = x->final,
                       .reason = x->reason,
                       .provider_id = x->provider_id};
    assert_int_equal(sb_store_delivery_record(ts->store, &d, cb, f->rec_data), 0);
    unsigned shard = sb_store_shard(ts->store, in.conv);
    char *key = keys[shard];
    uint64_t until = sb_test_now_ms() + 5000;
    while (strcmp(sb_test_redis_cmd(&ts->srv, "XPENDING %s email - + 10", key), "[0]") != 0 &&
           sb_test_now_ms() < until)
        sb_test_spin_once(&ts->loop);
    assert_string_equal(sb_test_redis_cmd(&ts->srv, "XPENDING %s email - + 10", key), "[0]");
    op_t st = {0}; /* the store has the outcome: the console shows "sent" */
    assert_int_equal(sb_store_delivery_state(ts->store, in.conv, rep.mid, on_state, &st), 0);
    assert_true(sb_test_loop_until(&ts->loop, &st.done, 5000));
    assert_string_equal(st.state, "delivered");
    bool stopped = false;
    sb_outbox_stop(o, on_stopped, &stopped);
    assert_true(sb_test_loop_until(&ts->loop, &stopped, 5000));
    for (int i = 0; i < 16; i++)
        sb_free(keys[i]);
    sb_test_store_free(ts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_outbox_ok_records_before_ack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_record_failure_retries_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_temporary_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_permanent_is_dead_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_rate_limited_honours_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_auth_pauses_lane, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_auth_is_recorded_on_the_message, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_outbox_record_refused_does_not_block, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_pending_first_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_autoclaim_takeover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_late_answer_without_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_trims_what_is_delivered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outbox_delivers_store_replies, setup, teardown),
    };
    return cmocka_run_group_tests_name("core/outbox", tests, NULL, NULL);
}

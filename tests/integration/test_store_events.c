/* SPDX-License-Identifier: MIT */
/*
 * The store under its readers and faults, against a real redis-server: the events
 * dispatcher's live delivery and resume, and a Redis killed mid-run (nothing acked is
 * lost).
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
        cmocka_unit_test_setup_teardown(test_events_live_and_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed_nothing_acked_lost, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/store_events", tests, NULL, NULL);
}

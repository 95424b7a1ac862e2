/* SPDX-License-Identifier: MIT */
/*
 * The store's queues against a real redis-server: conversation lists merged across
 * shards and paged (most urgent first), bot replies and handoff to humans, snooze
 * wake-ups racing between two nodes, and stats (queue and response times).
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

/* ---- Lists, handoff, stats, wake-ups ---- */

static const sb_actor_t botty = {.type = "bot", .id = "bot_faq", .name = "FAQ bot"};

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_list_most_urgent_first_across_shards_and_pages, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_bot_replies_and_hands_off_to_humans, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snooze_wakes_exactly_once_across_nodes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stats_counts_queue_and_response_times, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("integration/store_lists", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The honest wait estimate (core/wait.c, docs/sla.md "Honest wait"): a table of figures
 * and calendars against what a visitor is told, the median /v1/stats and the widget
 * share, the figures read from a stats result, the frame fields, and when a change is
 * worth telling visitors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/calendar.h"
#include "core/wait.h"

#define MIN  (60 * 1000LL)
#define HOUR (60 * MIN)

/* Instants in Europe/Berlin (CET, UTC+1, in November 2026). */
#define SAT_0300 1795831200000LL /* Saturday 2026-11-28 03:00 */
#define MON_0900 1796025600000LL /* Monday 2026-11-30 09:00 */
#define MON_1000 (MON_0900 + HOUR)
#define MON_1800 (MON_0900 + 9 * HOUR)
#define TUE_0900 (MON_0900 + 24 * HOUR)
#define FRI_1700 (MON_0900 - 64 * HOUR) /* Friday 2026-11-27 17:00, the closing minute */

static sb_calendar_t *office(void)
{
    char name[] = "office", zone[] = "Europe/Berlin", days[] = "mon-fri", hours[] = "09:00-17:00";
    char *argv[] = {name, zone, days, hours};
    char err[128] = "";
    sb_calendar_t *cal = NULL;
    int rc = sb_calendar_parse(4, argv, &cal, err, sizeof(err));
    if (rc != 0)
        fail_msg("calendar: %s", err);
    return cal;
}

typedef struct row {
    const char *what;
    int64_t median;
    uint64_t ahead, online;
    bool cal;
    int64_t now;
    int64_t expected; /* -1 unknown */
    bool open;
    int64_t back_at; /* -1 none */
} row_t;

static const row_t rows[] = {
    /* always open (no calendar) */
    {"no samples, someone online", -1, 0, 2, false, MON_1000, -1, true, -1},
    {"nobody online: no number", MIN, 0, 0, false, MON_1000, -1, true, -1},
    {"nobody online, a queue: still no number", MIN, 9, 0, false, MON_1000, -1, true, -1},
    {"empty queue: the median", 2 * MIN, 0, 1, false, MON_1000, 2 * MIN, true, -1},
    {"one ahead per person: the median", 2 * MIN, 3, 3, false, MON_1000, 2 * MIN, true, -1},
    {"fewer ahead than people: never below the median", 2 * MIN, 1, 4, false, MON_1000, 2 * MIN,
     true, -1},
    {"three ahead of one person: three medians", 2 * MIN, 3, 1, false, MON_1000, 6 * MIN, true, -1},
    {"six ahead of two: three medians", 2 * MIN, 6, 2, false, MON_1000, 6 * MIN, true, -1},
    {"five ahead of two: two and a half", 2 * MIN, 5, 2, false, MON_1000, 5 * MIN, true, -1},
    {"a long queue is capped", 2 * MIN, 1000, 1, false, MON_1000, SB_WAIT_CAP_MS, true, -1},
    {"a huge queue does not overflow", MIN, UINT64_MAX, 1, false, MON_1000, SB_WAIT_CAP_MS, true,
     -1},
    {"a median past the cap stands", 5 * HOUR, 10, 1, false, MON_1000, 5 * HOUR, true, -1},
    {"instant replies", 0, 4, 1, false, MON_1000, 0, true, -1},
    /* a calendar: Mon-Fri 09:00-17:00 Europe/Berlin */
    {"open hours, scaled as always", 2 * MIN, 4, 2, true, MON_1000, 4 * MIN, true, -1},
    {"open hours, nobody online", 2 * MIN, 0, 0, true, MON_1000, -1, true, -1},
    {"opening minute is open", MIN, 0, 1, true, MON_0900, MIN, true, -1},
    {"Saturday 03:00: back Monday 09:00", 2 * MIN, 0, 0, true, SAT_0300,
     MON_0900 - SAT_0300 + 2 * MIN, false, MON_0900},
    {"closed: someone online changes nothing", 2 * MIN, 5, 3, true, SAT_0300,
     MON_0900 - SAT_0300 + 2 * MIN, false, MON_0900},
    {"closed, no samples: when back, no number", -1, 0, 0, true, SAT_0300, -1, false, MON_0900},
    {"Monday evening: back Tuesday 09:00", 3 * MIN, 0, 1, true, MON_1800,
     TUE_0900 - MON_1800 + 3 * MIN, false, TUE_0900},
    {"Friday 17:00 is closed: back Monday", MIN, 0, 1, true, FRI_1700, MON_0900 - FRI_1700 + MIN,
     false, MON_0900},
};

static void test_wait_table(void **state)
{
    (void)state;
    sb_calendar_t *cal = office();
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row_t *r = &rows[i];
        sb_wait_in_t in = {.median_ms = r->median,
                           .ahead = r->ahead,
                           .online = r->online,
                           .cal = r->cal ? cal : NULL,
                           .now_ms = r->now};
        sb_wait_t w;
        memset(&w, 0xa5, sizeof(w));
        sb_wait_estimate(&in, &w);
        if (w.expected_ms != r->expected || w.open != r->open || w.back_at_ms != r->back_at ||
            w.online != r->online)
            fail_msg("%s: expected %lld open %d back_at %lld online %llu, want %lld %d %lld",
                     r->what, (long long)w.expected_ms, w.open, (long long)w.back_at_ms,
                     (unsigned long long)w.online, (long long)r->expected, r->open,
                     (long long)r->back_at);
    }
    sb_calendar_free(cal);
}

static void test_wait_median_nearest_rank(void **state)
{
    (void)state;
    int64_t odd[] = {50, 10, 30}, even[] = {40, 10, 30, 20}, one[] = {7};
    assert_int_equal(sb_wait_median(odd, 3), 30);
    assert_int_equal(sb_wait_median(even, 4), 20); /* the lower middle, as /v1/stats' p50 */
    assert_int_equal(sb_wait_median(one, 1), 7);
    assert_int_equal(sb_wait_median(NULL, 0), -1);
}

static void test_wait_reads_stats(void **state)
{
    (void)state;
    json_t *stats =
        json_loads("{\"by_channel\":{\"webchat\":{\"open\":5,\"queue\":4}},"
                   "\"first_response_ms\":{\"webchat\":{\"p50\":60000,\"p90\":1,\"n\":9}},"
                   "\"staff_online\":2}",
                   0, NULL);
    sb_wait_in_t in = {.median_ms = 1, .ahead = 1, .online = 1, .now_ms = 42};
    sb_wait_in_from_stats(stats, "webchat", &in);
    assert_int_equal(in.median_ms, 60000);
    assert_int_equal(in.ahead, 4);
    assert_int_equal(in.online, 2);
    assert_int_equal(in.now_ms, 42);
    sb_wait_in_from_stats(stats, "email", &in); /* nothing known of it */
    assert_int_equal(in.median_ms, -1);
    assert_int_equal(in.ahead, 0);
    assert_int_equal(in.online, 2);
    json_decref(stats);
}

static void test_wait_json_fields(void **state)
{
    (void)state;
    json_t *o = json_object();
    sb_wait_to_json(
        &(sb_wait_t){.expected_ms = -1, .online = 0, .open = false, .back_at_ms = MON_0900}, o);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "{\"back_at\":1796025600000,\"expected_reply_ms\":null,\"online\":0,"
                           "\"open\":false}");
    free(s);
    sb_wait_to_json(
        &(sb_wait_t){.expected_ms = 120000, .online = 3, .open = true, .back_at_ms = -1}, o);
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        s, "{\"back_at\":null,\"expected_reply_ms\":120000,\"online\":3,\"open\":true}");
    free(s);
    json_decref(o);
}

static void test_wait_changed_tells_what_matters(void **state)
{
    (void)state;
    sb_wait_t a = {.expected_ms = 100000, .online = 2, .open = true, .back_at_ms = -1}, b = a;
    assert_false(sb_wait_changed(&a, &b));
    b.expected_ms = 109000; /* under a tenth: the clock moving is not news */
    assert_false(sb_wait_changed(&a, &b));
    b.expected_ms = 111000;
    assert_true(sb_wait_changed(&a, &b));
    b = a;
    b.online = 0;
    assert_true(sb_wait_changed(&a, &b));
    b = a;
    b.expected_ms = -1;
    assert_true(sb_wait_changed(&a, &b));
    b = a;
    b.open = false;
    b.back_at_ms = MON_0900;
    assert_true(sb_wait_changed(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_table),
        cmocka_unit_test(test_wait_median_nearest_rank),
        cmocka_unit_test(test_wait_reads_stats),
        cmocka_unit_test(test_wait_json_fields),
        cmocka_unit_test(test_wait_changed_tells_what_matters),
    };
    return cmocka_run_group_tests_name("core/wait", tests, NULL, NULL);
}

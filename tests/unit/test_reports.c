/* SPDX-License-Identifier: MIT */
/*
 * Reporting without Redis (core/reports.c): the first-response histogram counts a reply
 * result's first_response_ms on its conversation's channel and prints cumulative
 * Prometheus buckets; durations read as a person says them; report bounds in ms or
 * relative to now.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/reports.h"

static bool observe(sb_frt_hist_t *h, const char *json)
{
    json_t *j = json_loads(json, 0, NULL);
    assert_non_null(j);
    bool counted = sb_frt_hist_observe_reply(h, j);
    json_decref(j);
    return counted;
}

static void test_hist_reply_field(void **state)
{
    (void)state;
    sb_frt_hist_t h = {0};
    int wc = sb_channel_index("webchat"), em = sb_channel_index("email");
    assert_true(observe(&h,
                        "{\"first_response_ms\":4000,\"conversation\":{\"channel\":\"webchat\"},"
                        "\"message\":{}}"));
    assert_true(
        observe(&h, "{\"first_response_ms\":45000,\"conversation\":{\"channel\":\"webchat\"}}"));
    assert_true(observe(&h, "{\"first_response_ms\":0,\"conversation\":{\"channel\":\"email\"}}"));
    assert_true(
        observe(&h, "{\"first_response_ms\":999999999,\"conversation\":{\"channel\":\"email\"}}"));
    /* not a first response, or not readable: nothing counted */
    assert_false(observe(&h, "{\"conversation\":{\"channel\":\"webchat\"}}"));
    assert_false(
        observe(&h, "{\"first_response_ms\":null,\"conversation\":{\"channel\":\"webchat\"}}"));
    assert_false(
        observe(&h, "{\"first_response_ms\":\"12\",\"conversation\":{\"channel\":\"webchat\"}}"));
    assert_false(
        observe(&h, "{\"first_response_ms\":-5,\"conversation\":{\"channel\":\"webchat\"}}"));
    assert_false(
        observe(&h, "{\"first_response_ms\":5,\"conversation\":{\"channel\":\"pigeon\"}}"));
    assert_false(observe(&h, "{\"first_response_ms\":5}"));
    /* sb_reply's own shape: the channel is the message's */
    assert_true(observe(&h, "{\"duplicate\":false,\"message\":{\"channel\":\"webchat\",\"dir\":"
                            "\"out\"},\"conversation\":{\"status\":\"open\"},"
                            "\"first_response_ms\":20000}"));
    assert_int_equal(h.count[wc][0], 1); /* 4 s <= 10 s */
    assert_int_equal(h.count[wc][1], 1); /* 20 s in (10 s, 30 s] */
    assert_int_equal(h.count[wc][2], 1); /* 45 s in (30 s, 60 s] */
    assert_int_equal(h.count[em][0], 1);
    assert_int_equal(h.count[em][SB_FRT_BUCKETS], 1); /* over a day: +Inf only */
    assert_true(h.sum_s[wc] > 68.99 && h.sum_s[wc] < 69.01);
}

static void test_hist_render(void **state)
{
    (void)state;
    sb_frt_hist_t h = {0};
    sb_frt_hist_observe(&h, "webchat", 4000);
    sb_frt_hist_observe(&h, "webchat", 45000);
    sb_frt_hist_observe(&h, "webchat", 90000000);
    sb_buf_t b;
    sb_buf_init(&b, 64 * 1024);
    sb_frt_hist_render(&h, &b);
    assert_false(sb_buf_error(&b));
    const char *t = b.data;
    assert_non_null(strstr(t, "# TYPE switchboard_first_response_seconds histogram\n"));
    /* cumulative buckets from 10 s to a day, then +Inf, sum and count */
    assert_non_null(
        strstr(t, "switchboard_first_response_seconds_bucket{channel=\"webchat\",le=\"10\"} 1\n"));
    assert_non_null(
        strstr(t, "switchboard_first_response_seconds_bucket{channel=\"webchat\",le=\"30\"} 1\n"));
    assert_non_null(
        strstr(t, "switchboard_first_response_seconds_bucket{channel=\"webchat\",le=\"60\"} 2\n"));
    assert_non_null(strstr(
        t, "switchboard_first_response_seconds_bucket{channel=\"webchat\",le=\"86400\"} 2\n"));
    assert_non_null(strstr(
        t, "switchboard_first_response_seconds_bucket{channel=\"webchat\",le=\"+Inf\"} 3\n"));
    assert_non_null(strstr(t, "switchboard_first_response_seconds_count{channel=\"webchat\"} 3\n"));
    assert_non_null(
        strstr(t, "switchboard_first_response_seconds_sum{channel=\"webchat\"} 90049.000\n"));
    assert_non_null(strstr(t, "switchboard_first_response_seconds_count{channel=\"email\"} 0\n"));
    sb_buf_dispose(&b);
}

static void test_duration_human(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {-5, "0s"},
        {850, "<1s"},
        {1000, "1s"},
        {45000, "45s"},
        {59999, "59s"},
        {60000, "1m"},
        {252000, "4m 12s"},
        {3600000, "1h"},
        {3900000, "1h 5m"},
        {3959000, "1h 5m"},
        {86400000, "1d"},
        {183600000, "2d 3h"},
        {864000000, "10d"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_string_equal(sb_duration_human(cases[i].ms, out, sizeof(out)), cases[i].want);
}

static void test_time_parse(void **state)
{
    (void)state;
    const int64_t now = 1732270000000;
    int64_t t = 0;
    assert_int_equal(sb_report_time_parse("1732000000123", now, &t), 0);
    assert_int_equal(t, 1732000000123);
    assert_int_equal(sb_report_time_parse("7d", now, &t), 0);
    assert_int_equal(t, now - 7 * 86400000LL);
    assert_int_equal(sb_report_time_parse("90m", now, &t), 0);
    assert_int_equal(t, now - 90 * 60000LL);
    assert_int_equal(sb_report_time_parse("now", now, &t), 0);
    assert_int_equal(t, now);
    static const char *const bad[] = {"",    "-5",        "7x", "d", "1e9", "12345678901234567",
                                      "7 d", "999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sb_report_time_parse(bad[i], now, &t), SB_EINVAL);
    assert_int_equal(sb_report_time_parse(NULL, now, &t), SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hist_reply_field),
        cmocka_unit_test(test_hist_render),
        cmocka_unit_test(test_duration_human),
        cmocka_unit_test(test_time_parse),
    };
    return cmocka_run_group_tests_name("core/reports", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Connector account alerts (core/alert.c): the notification's exact bytes (two nodes that
 * raise the same alert add one entry), a long reason cut on a character, bad arguments
 * refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/alert.h"
#include "core/alloc.h"
#include "core/util.h"

static void test_alert_json(void **state)
{
    (void)state;
    char *s = sb_alert_json("mastodon", "support", "paused",
                            "HTTP 401: The access token is invalid", 1732270000123LL);
    assert_non_null(s);
    assert_string_equal(s,
                        "{\"id\":\"mastodon:support:paused:1732270000123\",\"type\":\"connector\","
                        "\"channel\":\"mastodon\",\"account\":\"support\",\"state\":\"paused\","
                        "\"reason\":\"HTTP 401: The access token is invalid\","
                        "\"ts\":1732270000123}");
    sb_free(s);
}

static void test_alert_reason_cut(void **state)
{
    (void)state;
    char reason[SB_ALERT_REASON_MAX + 40];
    memset(reason, 'a', SB_ALERT_REASON_MAX - 1);
    strcpy(reason + SB_ALERT_REASON_MAX - 1, "\xc3\xa9tail"); /* é across the cut */
    char *s = sb_alert_json("bluesky", "brand", "paused", reason, 5);
    assert_non_null(s);
    json_t *j = json_loads(s, 0, NULL);
    const char *r = json_string_value(json_object_get(j, "reason"));
    assert_non_null(r);
    assert_int_equal(strlen(r), SB_ALERT_REASON_MAX - 1);
    assert_true(sb_utf8_valid(r, strlen(r)));
    json_decref(j);
    sb_free(s);
}

static void test_alert_bad(void **state)
{
    (void)state;
    assert_null(sb_alert_json(NULL, "a", "paused", NULL, 1));
    assert_null(sb_alert_json("mastodon", "", "paused", NULL, 1));
    assert_null(sb_alert_json("mastodon", "a", NULL, NULL, 1));
    assert_int_not_equal(sb_alert_admins(NULL, "mastodon", "a", "paused", NULL, 1), 0);
    char *s = sb_alert_json("hook", "x", "resumed", NULL, 2);
    assert_non_null(strstr(s, "\"reason\":\"\""));
    sb_free(s);
}

int main(void)
{
    sb_alloc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alert_json),
        cmocka_unit_test(test_alert_reason_cut),
        cmocka_unit_test(test_alert_bad),
    };
    return cmocka_run_group_tests_name("core/alert", tests, NULL, NULL);
}

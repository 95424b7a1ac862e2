/* SPDX-License-Identifier: MIT */
/*
 * SLA targets (core/sla_targets.c): `everyone` reaches the agents and admins whose
 * channels cover the conversation, `role:<r>` every member of that role, `st_<id>` one
 * person who exists; nobody twice. And the notification's compact form: the same bytes
 * for the same event, whatever order its fields came in.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/alloc.h"
#include "core/sla_targets.h"

#define ADA "st_01jd3k5x2p8q9r0s1t2v3w4x5a" /* agent, every channel */
#define BO  "st_01jd3k5x2p8q9r0s1t2v3w4x5b" /* agent, email only */
#define CY  "st_01jd3k5x2p8q9r0s1t2v3w4x5c" /* admin, "webchat,api" as a comma list */
#define DI  "st_01jd3k5x2p8q9r0s1t2v3w4x5d" /* exec */
#define ED  "st_01jd3k5x2p8q9r0s1t2v3w4x5e" /* exec, webchat only */

static json_t *staff(void)
{
    json_error_t e;
    json_t *s = json_loads("["
                           "{\"id\":\"" ADA "\",\"role\":\"agent\",\"channels\":null},"
                           "{\"id\":\"" BO "\",\"role\":\"agent\",\"channels\":[\"email\"]},"
                           "{\"id\":\"" CY "\",\"role\":\"admin\",\"channels\":\"webchat,api\"},"
                           "{\"id\":\"" DI "\",\"role\":\"exec\"},"
                           "{\"id\":\"" ED "\",\"role\":\"exec\",\"channels\":[\"webchat\"]},"
                           "{\"name\":\"no id\",\"role\":\"agent\"}"
                           "]",
                           0, &e);
    assert_non_null(s);
    return s;
}

/* The ids expand() names, joined by spaces (a static buffer). */
static const char *expand(const char *targets, const char *channel)
{
    static char out[512];
    json_t *st = staff(), *t = json_loads(targets, 0, NULL);
    assert_non_null(t);
    json_t *who = sb_sla_targets_expand(t, channel, st);
    out[0] = '\0';
    for (size_t i = 0; i < json_array_size(who); i++) {
        const char *id = json_string_value(json_object_get(json_array_get(who, i), "id"));
        strcat(out, i ? " " : "");
        strcat(out, id + strlen(id) - 1); /* the last letter names the member */
    }
    json_decref(who);
    json_decref(t);
    json_decref(st);
    return out;
}

static void test_targets_everyone_by_channel(void **state)
{
    (void)state;
    assert_string_equal(expand("[\"everyone\"]", "webchat"), "a c"); /* no execs, not Bo */
    assert_string_equal(expand("[\"everyone\"]", "email"), "a b");
    assert_string_equal(expand("[\"everyone\"]", "api"), "a c");
    assert_string_equal(expand("[\"everyone\"]", "mastodon"), "a");
    assert_string_equal(expand("[\"everyone\"]", NULL), "a"); /* only the unscoped */
}

static void test_targets_role_and_person(void **state)
{
    (void)state;
    assert_string_equal(expand("[\"role:exec\"]", "email"), "d e"); /* a role ignores scopes */
    assert_string_equal(expand("[\"role:admin\"]", "webchat"), "c");
    assert_string_equal(expand("[\"role:\"]", "webchat"), "");
    assert_string_equal(expand("[\"role:nobody\"]", "webchat"), "");
    assert_string_equal(expand("[\"" BO "\"]", "webchat"), "b"); /* a person: their scope too */
    assert_string_equal(expand("[\"st_01jd3k5x2p8q9r0s1t2v3w4x5z\"]", "webchat"), "");
}

static void test_targets_deduplicated(void **state)
{
    (void)state;
    assert_string_equal(expand("[\"" ADA "\",\"everyone\",\"role:exec\",\"" ADA "\"]", "webchat"),
                        "a c d e");
    assert_string_equal(expand("[\"assignee\",\"bogus\",42,null]", "webchat"), "");
    assert_string_equal(expand("[]", "webchat"), "");
}

static void test_targets_bad_input(void **state)
{
    (void)state;
    json_t *st = staff();
    json_t *who = sb_sla_targets_expand(NULL, "webchat", st); /* no targets */
    assert_int_equal(json_array_size(who), 0);
    json_decref(who);
    json_t *t = json_loads("[\"everyone\"]", 0, NULL);
    who = sb_sla_targets_expand(t, "webchat", NULL); /* no staff list */
    assert_int_equal(json_array_size(who), 0);
    json_decref(who);
    json_decref(t);
    json_decref(st);
}

static void test_notification_stable(void **state)
{
    (void)state;
    const char *a = "{\"conv\":\"c_1\",\"conversation\":{},\"type\":\"event\","
                    "\"message\":{\"id\":\"m_1\",\"ts\":1000,\"kind\":\"event\",\"type\":"
                    "\"sla_breach\",\"clock\":\"first_response\",\"percent\":100,\"policy\":"
                    "\"quick\",\"due\":1000,\"targets\":[\"everyone\"],\"subject\":\"Refund\","
                    "\"customer\":\"Ann\"}}";
    const char *b = "{\"message\":{\"customer\":\"Ann\",\"subject\":\"Refund\",\"targets\":"
                    "[\"everyone\"],\"due\":1000,\"policy\":\"quick\","
                    "\"percent\":100,\"clock\":\"first_response\",\"type\":\"sla_breach\","
                    "\"kind\":\"event\",\"ts\":1000,\"id\":\"m_1\"},\"type\":\"event\","
                    "\"conversation\":{},\"conv\":\"c_1\"}";
    json_t *ja = json_loads(a, 0, NULL), *jb = json_loads(b, 0, NULL);
    long long ts = 0;
    char *na = sb_sla_notification(ja, &ts), *nb = sb_sla_notification(jb, NULL);
    assert_non_null(na);
    assert_string_equal(na, nb);
    assert_int_equal(ts, 1000);
    assert_string_equal(na, "{\"id\":\"m_1\",\"type\":\"sla_breach\",\"conv\":\"c_1\",\"clock\":"
                            "\"first_response\",\"percent\":100,\"policy\":\"quick\",\"due\":"
                            "1000,\"ts\":1000,\"subject\":\"Refund\",\"customer\":\"Ann\"}");
    sb_free(na);
    sb_free(nb);
    json_decref(ja);
    json_decref(jb);
}

static void test_notification_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"conv\":\"c_1\",\"message\":{\"id\":\"m_1\",\"ts\":1,\"type\":\"claimed\"}}",
        "{\"conv\":\"c_1\",\"message\":{\"id\":\"m_1\",\"ts\":\"1\",\"type\":\"sla_warning\"}}",
        "{\"message\":{\"id\":\"m_1\",\"ts\":1,\"type\":\"escalated\"}}",
        "{\"conv\":\"c_1\",\"message\":{\"ts\":1,\"type\":\"escalated\"}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        assert_null(sb_sla_notification(j, NULL));
        json_decref(j);
    }
    /* a long subject is cut on a character */
    char subject[300] = "";
    for (int i = 0; i < 100; i++)
        strcat(subject, "é");
    json_t *j = json_pack("{s:s, s:{s:s, s:i, s:s, s:s}}", "conv", "c_1", "message", "id", "m_1",
                          "ts", 5, "type", "sla_warning", "subject", subject);
    char *n = sb_sla_notification(j, NULL);
    json_t *back = json_loads(n, 0, NULL);
    assert_non_null(back);
    assert_int_equal(strlen(json_string_value(json_object_get(back, "subject"))), 120);
    json_decref(back);
    sb_free(n);
    json_decref(j);
}

int main(void)
{
    sb_alloc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_targets_everyone_by_channel),
        cmocka_unit_test(test_targets_role_and_person),
        cmocka_unit_test(test_targets_deduplicated),
        cmocka_unit_test(test_targets_bad_input),
        cmocka_unit_test(test_notification_stable),
        cmocka_unit_test(test_notification_rejects),
    };
    return cmocka_run_group_tests_name("core/sla_targets", tests, NULL, NULL);
}

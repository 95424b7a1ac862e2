/* SPDX-License-Identifier: MIT */
/* Input checks of core/msg.h: docs/contract.md §9 limits on JSON documents and texts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/msg.h"

static void test_json_parse_object(void **state)
{
    json_t *j;
    sb_json_error_t e;
    const char *doc = "{\"text\":\"h\xc3\xa9llo\",\"n\":12345678901234}";
    assert_int_equal(sb_json_parse(doc, strlen(doc), 1024, 1, &j, &e), 0);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "h\xc3\xa9llo");
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 12345678901234LL);
    json_decref(j);
}

static void test_json_parse_reports_line_and_column(void **state)
{
    json_t *j;
    sb_json_error_t e;
    const char *doc = "{\"a\": 1,\n  \"b\": }";
    assert_int_equal(sb_json_parse(doc, strlen(doc), 1024, 1, &j, &e), SB_EPARSE);
    assert_null(j);
    assert_int_equal(e.line, 2);
    assert_true(e.column >= 7);
    assert_true(strlen(e.text) > 0);
}

static void test_json_parse_limits(void **state)
{
    json_t *j;
    sb_json_error_t e;
    assert_int_equal(sb_json_parse("{\"a\":1}", 7, 6, 1, &j, &e), SB_ETOOBIG);
    const char bad_utf8[] = "{\"a\":\"\xc3\x28\"}";
    assert_int_equal(sb_json_parse(bad_utf8, strlen(bad_utf8), 100, 1, &j, &e), SB_EUTF8);
    char deep[200];
    memset(deep, '[', 33);
    memset(deep + 33, ']', 33);
    assert_int_equal(sb_json_parse(deep, 66, 1000, 0, &j, &e), SB_EDEPTH);
    assert_int_equal(e.line, 1);
    assert_int_equal(e.column, 33);
    /* 32 levels are fine, and brackets inside strings don't count. */
    assert_int_equal(sb_json_parse(deep + 1, 64, 1000, 0, &j, &e), 0);
    json_decref(j);
    const char str[] = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}";
    assert_int_equal(sb_json_parse(str, strlen(str), 1000, 1, &j, &e), 0);
    json_decref(j);
    /* NUL escapes and duplicate keys are refused. */
    const char nul[] = "{\"a\":\"x\\u0000y\"}";
    assert_int_equal(sb_json_parse(nul, strlen(nul), 100, 1, &j, &e), SB_EPARSE);
    const char dup[] = "{\"a\":1,\"a\":2}";
    assert_int_equal(sb_json_parse(dup, strlen(dup), 100, 1, &j, &e), SB_EPARSE);
    assert_int_equal(sb_json_parse("[1]", 3, 100, 1, &j, &e), SB_EPARSE);
}

static void test_text_check(void **state)
{
    assert_int_equal(sb_text_check("hello", SB_MAX_TEXT), 0);
    assert_int_equal(sb_text_check("  \n\t", SB_MAX_TEXT), SB_EINVAL);
    assert_int_equal(sb_text_check("", SB_MAX_TEXT), SB_EINVAL);
    assert_int_equal(sb_text_check(NULL, SB_MAX_TEXT), SB_EINVAL);
    assert_int_equal(sb_text_check("\xed\xa0\x80", SB_MAX_TEXT), SB_EUTF8); /* surrogate */
    char *big = sb_malloc(SB_MAX_TEXT + 2);
    memset(big, 'a', SB_MAX_TEXT + 1);
    big[SB_MAX_TEXT + 1] = '\0';
    assert_int_equal(sb_text_check(big, SB_MAX_TEXT), SB_ETOOBIG);
    big[SB_MAX_TEXT] = '\0';
    assert_int_equal(sb_text_check(big, SB_MAX_TEXT), 0);
    sb_free(big);
}

static void test_opt_str(void **state)
{
    json_t *j = json_pack("{s:s, s:i, s:n}", "a", "x", "b", 1, "c");
    int bad = 0;
    assert_string_equal(sb_json_opt_str(j, "a", &bad), "x");
    assert_null(sb_json_opt_str(j, "c", &bad));
    assert_null(sb_json_opt_str(j, "missing", &bad));
    assert_int_equal(bad, 0);
    assert_null(sb_json_opt_str(j, "b", &bad));
    assert_int_equal(bad, SB_EINVAL);
    json_decref(j);
}

static void test_line_check(void **state)
{
    assert_int_equal(sb_line_check("Zo\xc3\xab O'Brien", SB_MAX_NAME), 0);
    assert_int_equal(sb_line_check("", SB_MAX_NAME), 0);
    assert_int_equal(sb_line_check(NULL, SB_MAX_NAME), SB_EINVAL);
    assert_int_equal(sb_line_check("Re: hi\r\nBcc: x@example.com", 998), SB_EINVAL);
    assert_int_equal(sb_line_check("a\tb", 10), SB_EINVAL);
    assert_int_equal(sb_line_check("a\x7f", 10), SB_EINVAL);
    assert_int_equal(sb_line_check("a\xc2\x85"
                                   "b",
                                   10),
                     SB_EINVAL); /* NEL, a C1 control */
    assert_int_equal(sb_line_check("caf\xc3\xa9", 10), 0);
    assert_int_equal(sb_line_check("\xc3\x28", 10), SB_EUTF8);
    assert_int_equal(sb_line_check("abcdef", 5), SB_ETOOBIG);
}

static void test_email_check_accepts_addr_specs(void **state)
{
    static const char *const good[] = {
        "alice@example.com",  "Alice.Smith+tag@Sub.Example.co.uk",
        "o'brien@example.ie", "!#$%&'*+-/=?^_`{|}~@example.com",
        "user@localhost",     "j\xc3\xb6rg@m\xc3\xbcller.de", /* RFC 6532 */
        "x@a-b.c0",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (sb_email_check(good[i]) != 0)
            fail_msg("refused %s", good[i]);
    }
}

static void test_email_check_refuses_the_rest(void **state)
{
    static const char *const bad[] = {
        "",
        "alice",
        "@example.com",
        "alice@",
        "victim@example.com\r\nBcc: all@example.com",
        "victim@example.com\nBcc: all@example.com",
        "a\tb@example.com",
        "<script>alert(1)</script>@example.com",
        "alice@<b>example</b>.com",
        "\"quoted local\"@example.com",
        "alice@[127.0.0.1]",
        "Alice <alice@example.com>",
        "alice@example.com (comment)",
        "a lice@example.com",
        ".alice@example.com",
        "alice.@example.com",
        "al..ice@example.com",
        "alice@example..com",
        "alice@.example.com",
        "alice@example.com.",
        "alice@-example.com",
        "alice@example-.com",
        "alice@exa_mple.com",
        "a@b@example.com",
        "alice@exam\xc2\x85"
        "ple.com",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sb_email_check(bad[i]) != SB_EINVAL)
            fail_msg("accepted %s", bad[i]);
    }
    assert_int_equal(sb_email_check(NULL), SB_EINVAL);
    assert_int_equal(sb_email_check("a@\xc3\x28.com"), SB_EUTF8);
}

static void test_email_check_lengths(void **state)
{
    char buf[400];
    /* local part: 64 bytes fine, 65 not */
    memset(buf, 'a', 64);
    strcpy(buf + 64, "@example.com");
    assert_int_equal(sb_email_check(buf), 0);
    memset(buf, 'a', 65);
    strcpy(buf + 65, "@example.com");
    assert_int_equal(sb_email_check(buf), SB_EINVAL);
    /* a label of 63 is fine, 64 not */
    strcpy(buf, "a@");
    memset(buf + 2, 'b', 63);
    strcpy(buf + 65, ".com");
    assert_int_equal(sb_email_check(buf), 0);
    memset(buf + 2, 'b', 64);
    strcpy(buf + 66, ".com");
    assert_int_equal(sb_email_check(buf), SB_EINVAL);
    /* the whole: SB_MAX_EMAIL bytes */
    size_t n = 0;
    n += (size_t)sprintf(buf, "%s@", "a");
    while (n + 10 <= SB_MAX_EMAIL)
        n += (size_t)sprintf(buf + n, "bbbbbbbbb.");
    while (n < SB_MAX_EMAIL)
        buf[n++] = 'c';
    buf[n] = '\0';
    assert_int_equal(strlen(buf), SB_MAX_EMAIL);
    assert_int_equal(sb_email_check(buf), 0);
    strcpy(buf + n, "c");
    assert_int_equal(sb_email_check(buf), SB_ETOOBIG);
}

static void test_seq_valid(void **state)
{
    assert_true(sb_seq_valid("1732270000123-0"));
    assert_true(sb_seq_valid("0"));
    assert_true(sb_seq_valid("1732270000123"));
    assert_true(sb_seq_valid("18446744073709551615-18446744073709551615"));
    static const char *const bad[] = {"",      "-1",
                                      "1-1-1", "99999999999999999999-0",
                                      "1-",    "zzz",
                                      "1-a",   "18446744073709551616",
                                      "-",     " 1",
                                      "+1",    "1-99999999999999999999",
                                      "0x1",   "123456789012345678901"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sb_seq_valid(bad[i]))
            fail_msg("accepted %s", bad[i]);
    }
    assert_false(sb_seq_valid(NULL));
}

/* The newest customer message whose ext has every named field: what an answer goes to. */
static void test_newest_in(void **state)
{
    (void)state;
    json_t *items =
        json_loads("[{\"id\":\"m_1\",\"dir\":\"in\",\"ext\":{\"account\":\"a\",\"uri\":\"u1\"}},"
                   "{\"id\":\"m_2\",\"dir\":\"in\",\"ext\":{\"account\":\"a\"}},"
                   "{\"id\":\"m_3\",\"dir\":\"out\",\"ext\":{\"account\":\"a\",\"uri\":\"u3\"}},"
                   "{\"id\":\"m_4\",\"dir\":\"in\",\"ext\":{\"account\":\"\",\"uri\":\"u4\"}},"
                   "{\"id\":\"m_5\",\"kind\":\"event\"}]",
                   0, NULL);
    assert_non_null(items);
    static const char *const acc[] = {"account", NULL}, *const both[] = {"account", "uri", NULL},
                             *const none[] = {NULL}, *const other[] = {"thread", NULL};
    assert_string_equal(json_string_value(json_object_get(sb_msg_newest_in(items, acc), "id")),
                        "m_2");
    assert_string_equal(json_string_value(json_object_get(sb_msg_newest_in(items, both), "id")),
                        "m_1"); /* m_3 is ours, m_4's account is empty */
    assert_string_equal(json_string_value(json_object_get(sb_msg_newest_in(items, none), "id")),
                        "m_4");
    assert_null(sb_msg_newest_in(items, other));
    assert_null(sb_msg_newest_in(NULL, acc));
    json_decref(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parse_object),
        cmocka_unit_test(test_json_parse_reports_line_and_column),
        cmocka_unit_test(test_json_parse_limits),
        cmocka_unit_test(test_text_check),
        cmocka_unit_test(test_opt_str),
        cmocka_unit_test(test_line_check),
        cmocka_unit_test(test_email_check_accepts_addr_specs),
        cmocka_unit_test(test_email_check_refuses_the_rest),
        cmocka_unit_test(test_email_check_lengths),
        cmocka_unit_test(test_seq_valid),
        cmocka_unit_test(test_newest_in),
    };
    return cmocka_run_group_tests_name("core/msg", tests, NULL, NULL);
}

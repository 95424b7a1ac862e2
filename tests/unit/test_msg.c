/* SPDX-License-Identifier: MIT */
/* Input checks of core/msg.h: DESIGN §9 limits on JSON documents and texts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_parse_object),
        cmocka_unit_test(test_json_parse_reports_line_and_column),
        cmocka_unit_test(test_json_parse_limits),
        cmocka_unit_test(test_text_check),
        cmocka_unit_test(test_opt_str),
    };
    return cmocka_run_group_tests_name("core/msg", tests, NULL, NULL);
}

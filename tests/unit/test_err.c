/* SPDX-License-Identifier: MIT */
/*
 * Error codes (core/err.c): the names and texts that end up in logs and in the HTTP
 * API's error codes, and the fallback for a code outside the table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"

static void test_err_names_and_texts(void **state)
{
    assert_string_equal(sb_err_name(0), "OK");
    assert_string_equal(sb_strerror(0), "success");
    assert_string_equal(sb_err_name(SB_ETOOBIG), "TOOBIG");
    assert_string_equal(sb_strerror(SB_ETOOBIG), "too large");
    assert_string_equal(sb_err_name(SB_ETIMEDOUT), "TIMEDOUT");
    assert_string_equal(sb_strerror(SB_ETIMEDOUT), "timed out");
    assert_string_equal(sb_err_name(SB_ECONFIG), "CONFIG");
    assert_string_equal(sb_strerror(SB_ECONFIG), "configuration error");
    assert_string_equal(sb_err_name(SB_ENOTFOUND), "NOTFOUND");
    assert_string_equal(sb_strerror(SB_EUTF8), "invalid UTF-8");
}

static void test_err_unknown_code(void **state)
{
    assert_string_equal(sb_err_name(-9999), "UNKNOWN");
    assert_string_equal(sb_strerror(-9999), "unknown error");
    assert_string_equal(sb_err_name(1), "UNKNOWN"); /* errors are never positive */
    assert_string_equal(sb_strerror(1), "unknown error");
}

static void test_err_every_code_is_distinct(void **state)
{
    static const int codes[] = {
#define CODE(name, value, text) value,
        SB_ERRORS(CODE)
#undef CODE
    };
    size_t n = sizeof(codes) / sizeof(codes[0]);
    for (size_t i = 0; i < n; i++) {
        assert_true(codes[i] <= 0);
        assert_string_not_equal(sb_err_name(codes[i]), "UNKNOWN");
        assert_string_not_equal(sb_strerror(codes[i]), "unknown error");
        for (size_t k = i + 1; k < n; k++) {
            assert_int_not_equal(codes[i], codes[k]);
            assert_string_not_equal(sb_err_name(codes[i]), sb_err_name(codes[k]));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_err_names_and_texts),
        cmocka_unit_test(test_err_unknown_code),
        cmocka_unit_test(test_err_every_code_is_distinct),
    };
    return cmocka_run_group_tests_name("core/err", tests, NULL, NULL);
}

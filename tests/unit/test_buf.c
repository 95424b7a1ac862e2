/* SPDX-License-Identifier: MIT */
/*
 * Capped buffers (core/buf.c): the hard cap (an append past it fails with SB_ETOOBIG
 * and leaves the content as it was), sticky errors (after a failed append every later
 * one fails until a reset, so one check at the end catches a hole in the middle),
 * printf, consume, steal and the NUL terminator every caller relies on when handing
 * data to C string functions.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

static void test_buf_cap_enforced(void **state)
{
    sb_buf_t b;
    sb_buf_init(&b, 8);
    assert_int_equal(sb_buf_append(&b, "12345", 5), 0);
    assert_int_equal(sb_buf_append(&b, "678", 3), 0); /* exactly the cap is fine */
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(sb_buf_error(&b), 0);
    assert_int_equal(sb_buf_append(&b, "9", 1), SB_ETOOBIG); /* 9 > 8: nothing appended */
    assert_int_equal(b.len, 8);
    assert_string_equal(b.data, "12345678");
    assert_int_equal(sb_buf_error(&b), SB_ETOOBIG);
    sb_buf_dispose(&b);

    /* A huge length can't wrap around the check. */
    sb_buf_init(&b, 8);
    assert_int_equal(sb_buf_append(&b, "x", SIZE_MAX), SB_ETOOBIG);
    assert_int_equal(b.len, 0);
    sb_buf_dispose(&b);

    /* Consuming makes room again (on a buffer that has not failed). */
    sb_buf_init(&b, 8);
    assert_int_equal(sb_buf_puts(&b, "12345678"), 0);
    sb_buf_consume(&b, 4);
    assert_int_equal(sb_buf_puts(&b, "abcd"), 0);
    assert_string_equal(b.data, "5678abcd");
    sb_buf_dispose(&b);
}

static void test_buf_error_sticky(void **state)
{
    sb_buf_t b;
    sb_buf_init(&b, 8);
    assert_int_equal(sb_buf_puts(&b, "head"), 0);
    assert_int_equal(sb_buf_puts(&b, "middle!!"), SB_ETOOBIG); /* does not fit */
    /* Each of these would fit on its own; none may land after the hole. */
    assert_int_equal(sb_buf_puts(&b, "t"), SB_ETOOBIG);
    assert_int_equal(sb_buf_append(&b, "a", 1), SB_ETOOBIG);
    assert_int_equal(sb_buf_printf(&b, "%d", 1), SB_ETOOBIG);
    assert_int_equal(sb_buf_append(&b, "", 0), SB_ETOOBIG);
    assert_string_equal(b.data, "head");
    assert_int_equal(b.len, 4);
    /* Consuming does not clear it: what was written is still missing its middle. */
    sb_buf_consume(&b, 4);
    assert_int_equal(sb_buf_puts(&b, "x"), SB_ETOOBIG);
    assert_int_equal(sb_buf_error(&b), SB_ETOOBIG);
    /* A reset starts over. */
    sb_buf_reset(&b);
    assert_int_equal(sb_buf_error(&b), 0);
    assert_int_equal(sb_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    sb_buf_dispose(&b);
}

static void test_buf_printf(void **state)
{
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    assert_int_equal(sb_buf_printf(&b, "conv=%s n=%d", "c_1", 42), 0);
    assert_int_equal(sb_buf_printf(&b, " %s", "ok"), 0);
    assert_string_equal(b.data, "conv=c_1 n=42 ok");
    assert_int_equal(b.len, strlen("conv=c_1 n=42 ok"));

    /* Output longer than the first allocation grows the buffer. */
    char big[5000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    sb_buf_reset(&b);
    assert_int_equal(sb_buf_printf(&b, "<%s>", big), 0);
    assert_int_equal(b.len, sizeof(big) + 1);
    assert_int_equal(b.data[0], '<');
    assert_int_equal(b.data[b.len - 1], '>');
    assert_int_equal(b.data[b.len], '\0');
    sb_buf_dispose(&b);
}

static void test_buf_consume(void **state)
{
    sb_buf_t b;
    sb_buf_init(&b, 64);
    assert_int_equal(sb_buf_puts(&b, "GET / HTTP/1.1\r\n"), 0);
    sb_buf_consume(&b, 4);
    assert_string_equal(b.data, "/ HTTP/1.1\r\n");
    assert_int_equal(b.len, 12);
    sb_buf_consume(&b, 0);
    assert_int_equal(b.len, 12);
    sb_buf_consume(&b, 12); /* everything */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    assert_int_equal(sb_buf_puts(&b, "next"), 0);
    sb_buf_consume(&b, 100); /* more than there is: empties */
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    sb_buf_dispose(&b);
}

static void test_buf_steal(void **state)
{
    sb_buf_t b;
    sb_buf_init(&b, 64);
    assert_int_equal(sb_buf_puts(&b, "hello"), 0);
    size_t len = 0;
    char *s = sb_buf_steal(&b, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_null(b.data); /* the buffer is empty and reusable */
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 64);
    assert_int_equal(sb_buf_puts(&b, "again"), 0);
    assert_string_equal(b.data, "again");
    sb_free(s);
    sb_buf_dispose(&b);

    /* Stealing from a buffer that never held anything gives "" (never NULL). */
    sb_buf_init(&b, 64);
    s = sb_buf_steal(&b, NULL);
    assert_non_null(s);
    assert_string_equal(s, "");
    sb_free(s);
    sb_buf_dispose(&b);
}

static void test_buf_nul_terminated(void **state)
{
    sb_buf_t b;
    sb_buf_init(&b, 64);
    assert_null(b.data);
    assert_int_equal(sb_buf_append(&b, "", 0), 0); /* even an empty append terminates */
    assert_non_null(b.data);
    assert_int_equal(b.data[0], '\0');
    assert_int_equal(sb_buf_append(&b, "ab\0cd", 5), 0); /* binary data keeps its length */
    assert_int_equal(b.len, 5);
    assert_memory_equal(b.data, "ab\0cd", 5);
    assert_int_equal(b.data[5], '\0');
    sb_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    sb_buf_dispose(&b);
    assert_null(b.data);
    sb_buf_dispose(&b); /* twice is harmless */
}

static void test_buf_json_str_escapes(void **state)
{
    (void)state;
    sb_buf_t b;
    sb_buf_init(&b, 256);
    sb_buf_json_str(&b, "a\"b\\c\n\t\r\x01 Zo\xc3\xab");
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\t\\r\\u0001 Zo\xc3\xab\"");
    sb_buf_reset(&b);
    sb_buf_json_str(&b, "");
    assert_string_equal(b.data, "\"\"");
    sb_buf_dispose(&b);
    sb_buf_init(&b, 4);
    sb_buf_json_str(&b, "toolong");
    assert_int_equal(sb_buf_error(&b), SB_ETOOBIG);
    sb_buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_json_str_escapes), cmocka_unit_test(test_buf_cap_enforced),
        cmocka_unit_test(test_buf_error_sticky),     cmocka_unit_test(test_buf_printf),
        cmocka_unit_test(test_buf_consume),          cmocka_unit_test(test_buf_steal),
        cmocka_unit_test(test_buf_nul_terminated),
    };
    return cmocka_run_group_tests_name("core/buf", tests, NULL, NULL);
}

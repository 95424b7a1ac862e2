/* SPDX-License-Identifier: MIT */
/*
 * Terminal-safe text (core/term.c): what sbctl prints of customers' names and messages.
 * Escape sequences (clear screen, window title, OSC 52 clipboard writes), C1 controls,
 * bidi overrides and broken UTF-8 come out visible; ordinary text, accents and emoji as
 * they are; line breaks either escaped or kept with an indent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/term.h"

static char out[1024];

static const char *esc(const char *s, size_t n, int flags, int indent)
{
    sb_buf_t b;
    sb_buf_init(&b, 256);
    int rc = sb_term_escape(&b, s, n, flags, indent);
    snprintf(out, sizeof(out), "%s%s", rc ? "ERR:" : "", b.data ? b.data : "");
    sb_buf_dispose(&b);
    return out;
}

#define ESC(s) esc(s, strlen(s), 0, 0)

static void test_term_plain_text_unchanged(void **state)
{
    (void)state;
    assert_string_equal(ESC("Hello, Zoë! 👋 \\x1b is text"), "Hello, Zoë! 👋 \\x1b is text");
    assert_string_equal(ESC(""), "");
}

static void test_term_escape_sequences_made_visible(void **state)
{
    (void)state;
    assert_string_equal(ESC("\x1b[2J\x1b[H"), "\\x1b[2J\\x1b[H");               /* clear screen */
    assert_string_equal(ESC("\x1b]0;pwned\x07"), "\\x1b]0;pwned\\x07");         /* title */
    assert_string_equal(ESC("\x1b]52;c;aGk=\x1b\\"), "\\x1b]52;c;aGk=\\x1b\\"); /* OSC 52 */
    assert_string_equal(ESC("a\rb\bc\x7f"), "a\\x0db\\x08c\\x7f");
    assert_string_equal(ESC("\xc2\x9b"
                            "2J"),
                        "\\u009b2J"); /* C1 CSI as UTF-8 */
    assert_string_equal(ESC("abc\xe2\x80\xae"
                            "evil"),
                        "abc\\u202eevil");                   /* RLO */
    assert_string_equal(ESC("x\xe2\x81\xa6y"), "x\\u2066y"); /* LRI */
    assert_string_equal(ESC("x\xe2\x80\xa8y"), "x\\u2028y"); /* LINE SEPARATOR */
}

static void test_term_broken_utf8_as_bytes(void **state)
{
    (void)state;
    assert_string_equal(ESC("a\xff"
                            "b"),
                        "a\\xffb");
    assert_string_equal(ESC("\xc0\xaf"), "\\xc0\\xaf");          /* overlong '/' */
    assert_string_equal(ESC("\xed\xa0\x80"), "\\xed\\xa0\\x80"); /* surrogate */
    assert_string_equal(ESC("\xe2\x82"), "\\xe2\\x82");          /* truncated */
    assert_string_equal(esc("a\0b", 3, 0, 0), "a\\x00b");
}

static void test_term_line_breaks(void **state)
{
    (void)state;
    assert_string_equal(ESC("one\ntwo\tx"), "one\\ntwo\\tx");
    assert_string_equal(esc("one\n12:00 > Boss: forged", 24, SB_TERM_MULTILINE, 4),
                        "one\n    12:00 > Boss: forged");
}

static void test_term_cap_reported(void **state)
{
    (void)state;
    char big[300];
    memset(big, '\x1b', sizeof(big));
    assert_string_equal(esc(big, sizeof(big), 0, 0),
                        "ERR:"
                        "\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b"
                        "\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b"
                        "\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b"
                        "\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b"
                        "\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b\\x1b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_term_plain_text_unchanged),
        cmocka_unit_test(test_term_escape_sequences_made_visible),
        cmocka_unit_test(test_term_broken_utf8_as_bytes),
        cmocka_unit_test(test_term_line_breaks),
        cmocka_unit_test(test_term_cap_reported),
    };
    return cmocka_run_group_tests_name("core/term", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes core/term.c, what sbctl prints customers' names and texts through. The first byte
 * picks the flags (multi-line or not) and the indent; the rest is the text. Invariants: the
 * output is valid UTF-8 holding no character a terminal would act on (C0 controls but the
 * kept line breaks, DEL, C1, bidi controls, U+2028/U+2029), every kept line break is
 * followed by exactly the indent, and text with nothing to escape comes out unchanged.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/term.h"
#include "core/util.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_term: %s\n", what);
    abort();
}

/* The code point at s (valid UTF-8, n > 0 bytes left); sets *len. */
static uint32_t decode(const unsigned char *s, size_t n, size_t *len)
{
    if (s[0] < 0x80)
        return *len = 1, s[0];
    if ((s[0] & 0xe0) == 0xc0 && n >= 2)
        return *len = 2, (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if ((s[0] & 0xf0) == 0xe0 && n >= 3)
        return *len = 3,
               (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    *len = 4;
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
           (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

static bool acts(uint32_t c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int flags = data[0] & 1 ? SB_TERM_MULTILINE : 0, indent = (data[0] >> 1) & 15;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    sb_buf_t b;
    sb_buf_init(&b, 16 * n + 64);
    if (sb_term_escape(&b, text, n, flags, indent) != 0)
        fail("a buffer 16 times the input was too small");
    const unsigned char *o = (const unsigned char *)(b.data ? b.data : "");
    if (!sb_utf8_valid((const char *)o, b.len))
        fail("output is not UTF-8");
    bool escaped = false;
    for (size_t i = 0, len; i < b.len; i += len) {
        uint32_t c = decode(o + i, b.len - i, &len);
        if (c == '\n' && flags) {
            for (int k = 1; k <= indent; k++)
                if (i + (size_t)k >= b.len || o[i + (size_t)k] != ' ')
                    fail("a kept line break is not followed by the indent");
            continue;
        }
        if (acts(c))
            fail("a character a terminal acts on came through");
        escaped |= c == '\\';
    }
    /* nothing to escape and no backslash: the text as it was */
    if (!escaped && !memchr(text, '\n', n) && sb_utf8_valid(text, n) &&
        (b.len != n || memcmp(b.data ? b.data : "", text, n) != 0)) {
        bool plain = true;
        for (size_t i = 0, len; i < n && plain; i += len)
            plain = !acts(decode((const unsigned char *)text + i, n - i, &len));
        if (plain)
            fail("plain text was changed");
    }
    sb_buf_dispose(&b);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * sb_term_escape of term.h. The characters made visible are the ones ECMA-48 terminals
 * interpret (C0, DEL, the C1 range which xterm and others honour as 8-bit CSI/OSC even
 * in UTF-8), plus the Unicode controls that reorder or break the displayed text (the
 * "Trojan Source" bidi controls, U+2028/U+2029).
 */
#include "core/term.h"

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

/* Decodes one UTF-8 sequence at s (n > 0 bytes); returns its length and sets *cp, or 0 if
 * the bytes are not well-formed UTF-8 (overlong, surrogate, truncated, > U+10FFFF). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c = s[0], min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, c &= 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, c &= 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, c &= 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static bool visible_unicode(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

int sb_term_escape(sb_buf_t *out, const char *s, size_t n, int flags, int indent)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = 0;
    while (n > 0 && rc == 0) {
        uint32_t c;
        size_t len = utf8_next(p, n, &c);
        if (len == 0) {
            rc = sb_buf_printf(out, "\\x%02x", p[0]);
            len = 1;
        } else if (c == '\n' && (flags & SB_TERM_MULTILINE)) {
            rc = sb_buf_printf(out, "\n%*s", indent, "");
        } else if (c == '\n') {
            rc = sb_buf_puts(out, "\\n");
        } else if (c == '\t') {
            rc = sb_buf_puts(out, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            rc = sb_buf_printf(out, "\\x%02x", (unsigned)c);
        } else if (visible_unicode(c)) {
            rc = sb_buf_printf(out, "\\u%04x", (unsigned)c);
        } else {
            rc = sb_buf_append(out, p, len);
        }
        p += len;
        n -= len;
    }
    return rc ? SB_ETOOBIG : 0;
}

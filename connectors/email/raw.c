/* SPDX-License-Identifier: MIT */
/*
 * Checks and repairs on the raw bytes of a message, before and around libetpan: the bound
 * on its recursion, header lines that would end its header block, the boundary of a
 * multipart that names none. Each walks its input once; mime.c decides what to do.
 */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/internal.h"
#include "core/alloc.h"

/* Is s[0..n) a header field's first line: a name of printable ASCII, then ':'? */
static bool field_line(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && s[i] > ' ' && s[i] < 127 && s[i] != ':')
        i++;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i > 0 && i < n && s[i] == ':';
}

/*
 * libetpan ends the header block at the first line that is not a field, and reads the
 * rest as the body. Real mail has such lines (an mbox "From " line, a script's stray
 * text); they are dropped from a copy. NULL when the header block is fine.
 */
char *sb__email_repair_headers(const char *raw, size_t n, size_t *out_n)
{
    size_t i = 0, bad = 0;
    for (;;) {
        const char *nl = memchr(raw + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - raw) : n, z = e > i && raw[e - 1] == '\r' ? e - 1 : e;
        if (z == i) /* the blank line: the body follows */
            break;
        if (raw[i] != ' ' && raw[i] != '\t' && !field_line(raw + i, z - i))
            bad++;
        if (!nl)
            break;
        i = e + 1;
    }
    if (!bad)
        return NULL;
    char *out = sb_malloc(n + 1);
    size_t o = 0;
    for (i = 0; i < n;) {
        const char *nl = memchr(raw + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - raw) + 1 : n, z = e;
        while (z > i && (raw[z - 1] == '\n' || raw[z - 1] == '\r'))
            z--;
        if (z == i) { /* the body, as it is */
            memcpy(out + o, raw + i, n - i);
            o += n - i;
            break;
        }
        if (raw[i] == ' ' || raw[i] == '\t' || field_line(raw + i, z - i)) {
            memcpy(out + o, raw + i, e - i);
            o += e - i;
        }
        i = e;
    }
    *out_n = o;
    return out;
}

/* How many "multipart" or "message/" the raw text holds (a bound on the nesting). */
size_t sb__email_nesting_words(const char *s, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i + 8 <= n; i++)
        if ((s[i] | 0x20) == 'm' && ((n - i >= 9 && strncasecmp(s + i, "multipart", 9) == 0) ||
                                     strncasecmp(s + i, "message/", 8) == 0))
            count++;
    return count;
}

/* The boundary a multipart body uses: its first line "--<boundary>", cut to RFC 2046's 70. */
size_t sb__email_guess_boundary(const char *s, size_t n, const char **b)
{
    for (size_t i = 0; i < n;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - s) : n, z = e;
        while (z > i && (s[z - 1] == '\r' || s[z - 1] == ' ' || s[z - 1] == '\t'))
            z--;
        if (z - i > 2 && z - i <= 72 && s[i] == '-' && s[i + 1] == '-' &&
            !memchr(s + i, '"', z - i)) {
            *b = s + i + 2;
            return z - i - 2;
        }
        i = e + 1;
    }
    return 0;
}

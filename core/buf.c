/* SPDX-License-Identifier: MIT */
/* Capped growable buffers with sticky errors; see buf.h. */
#include "core/buf.h"
#include "core/alloc.h"
#include "core/err.h"

#include <stdio.h>
#include <string.h>

void sb_buf_init(sb_buf_t *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->err = 0;
}

void sb_buf_dispose(sb_buf_t *b)
{
    sb_free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
}

void sb_buf_reset(sb_buf_t *b)
{
    b->len = 0;
    b->err = 0;
    if (b->data)
        b->data[0] = '\0';
}

/* Makes room for extra more bytes and the NUL. 0, or the (now sticky) error. */
static int reserve(sb_buf_t *b, size_t extra)
{
    if (b->err)
        return b->err;
    if (extra > b->max || b->len > b->max - extra)
        return b->err = SB_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    b->data = sb_realloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int sb_buf_append(sb_buf_t *b, const void *p, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int sb_buf_puts(sb_buf_t *b, const char *s)
{
    return sb_buf_append(b, s, strlen(s));
}

int sb_buf_vprintf(sb_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (b->err)
        return b->err;
    if (n < 0)
        return b->err = SB_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sb_buf_printf(sb_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = sb_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int sb_buf_error(const sb_buf_t *b)
{
    return b->err;
}

void sb_buf_consume(sb_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        if (b->data)
            b->data[0] = '\0';
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *sb_buf_steal(sb_buf_t *b, size_t *len)
{
    char *p = b->data ? b->data : sb_calloc(1, 1);
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    b->err = 0;
    return p;
}

void sb_buf_json_str(sb_buf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    sb_buf_append(b, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_buf_append(b, run, (size_t)(s - run));
        char esc[7] = {'\\', (char)c, 0};
        size_t n = 2;
        if (c == '\n')
            esc[1] = 'n';
        else if (c == '\t')
            esc[1] = 't';
        else if (c == '\r')
            esc[1] = 'r';
        else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        sb_buf_append(b, esc, n);
        run = s + 1;
    }
    sb_buf_append(b, run, (size_t)(s - run));
    sb_buf_append(b, "\"", 1);
}

/* SPDX-License-Identifier: MIT */
/* Allocation wrappers that abort on out-of-memory (see alloc.h for why). */
#include "core/alloc.h"
#include "core/err.h"

#include <jansson.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "switchboard: out of memory allocating %zu bytes\n", n);
    abort();
}

void *sb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *sb_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *sb_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *sb_strdup(const char *s)
{
    return s ? sb_strndup(s, strlen(s)) : NULL;
}

char *sb_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = sb_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *sb_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort();
    char *p = sb_malloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void sb_free(void *p)
{
    free(p);
}

void sb_alloc_init(void)
{
    json_set_alloc_funcs(sb_malloc, sb_free);
}

int sb_json_dumps(const json_t *j, size_t flags, char **out, size_t *len)
{
    *out = j ? json_dumps(j, flags) : NULL;
    if (!*out) /* allocation failures abort in sb_malloc: this is invalid input */
        return SB_EINVAL;
    if (len)
        *len = strlen(*out);
    return 0;
}

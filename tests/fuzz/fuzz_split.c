/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes core/split.c, how a long answer becomes a thread of posts. Three header bytes
 * pick the rules (limit 1..64, URL weight, mention rule, prefix, counter, max parts); the
 * rest is the text. Invariants: a refusal is SB_EINVAL or SB_ETOOBIG (then no parts and a
 * count over the maximum); accepted parts are valid UTF-8, start with the prefix, end with
 * " (i/n)" when numbered and several, weigh at most the limit, and together hold every
 * non-blank byte of the text in order (only blanks at the cuts are dropped).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/split.h"
#include "core/util.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_split: %s\n", what);
    abort();
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Appends the non-blank bytes of s[0, n) to out at *k. */
static void solid(const char *s, size_t n, char *out, size_t *k)
{
    for (size_t i = 0; i < n; i++)
        if (!blank(s[i]))
            out[(*k)++] = s[i];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = {NULL, "@alice@example.social ", "@bob ", ""};
    if (size < 3 || size > 4096)
        return 0;
    sb_split_rules_t r = {
        .limit = 1 + data[0] % 64,
        .url_weight = (data[1] & 1) ? 23 : 0,
        .mention_local = (data[1] & 2) != 0,
        .number = (data[1] & 4) != 0,
        .prefix = prefixes[(data[1] >> 3) & 3],
        .max_parts = data[2] % 40,
    };
    char *text = sb_strndup((const char *)data + 3, size - 3);
    size_t n = strlen(text);
    char **parts = NULL;
    size_t nparts = 0;
    int rc = sb_split(text, &r, &parts, &nparts);
    if (rc == SB_ETOOBIG) {
        unsigned max = r.max_parts ? r.max_parts : 10;
        if (parts || nparts <= max)
            fail("SB_ETOOBIG without a count over the maximum");
    } else if (rc == SB_EINVAL) {
        if (parts)
            fail("parts on SB_EINVAL");
    } else if (rc != 0) {
        fail("undocumented error");
    } else {
        if (nparts == 0)
            fail("no parts");
        size_t pl = r.prefix ? strlen(r.prefix) : 0, k1 = 0, k2 = 0;
        char *a = sb_malloc(n + 1), *b = sb_malloc(n + 1);
        solid(text, n, a, &k1);
        for (size_t i = 0; i < nparts; i++) {
            const char *p = parts[i];
            size_t len = strlen(p);
            if (!sb_utf8_valid(p, len))
                fail("a part is not valid UTF-8");
            if (sb_split_weight(p, len, &r) > r.limit)
                fail("a part over the limit");
            if (len < pl || memcmp(p, r.prefix ? r.prefix : "", pl) != 0)
                fail("a part without the prefix");
            char counter[48] = "";
            if (r.number && nparts > 1)
                snprintf(counter, sizeof(counter), " (%zu/%zu)", i + 1, nparts);
            size_t cl = strlen(counter);
            if (len < pl + cl || strcmp(p + len - cl, counter) != 0)
                fail("a part without its counter");
            if (len == pl + cl)
                fail("an empty part");
            if (k2 + (len - pl - cl) > n)
                fail("parts longer than the text");
            solid(p + pl, len - pl - cl, b, &k2);
        }
        if (k1 != k2 || memcmp(a, b, k1) != 0)
            fail("the parts do not hold the text");
        sb_free(a);
        sb_free(b);
    }
    if (sb_utf8_valid(text, n) && sb_split_graphemes(text, n) > n)
        fail("more clusters than bytes");
    sb_split_free(parts, nparts);
    sb_free(text);
    return 0;
}

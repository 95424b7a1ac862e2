/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the readers of connectors/mastodon/api.c: a Link header (its rel="next" and
 * rel="prev" URLs) and an X-RateLimit-Reset time. Invariants: a URL found lies inside
 * the header, between '<' and '>'; a time comes only from a YYYY-MM-DDTHH:MM:SS text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mastodon/internal.h"
#include "core/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = sb_strndup((const char *)data, size);
    static const char *const rels[] = {"next", "prev"};
    for (size_t i = 0; i < 2; i++) {
        char *u = sb__md_link_rel(s, rels[i]);
        if (u && (!strstr(s, u) || strchr(u, '>')))
            abort();
        sb_free(u);
    }
    int64_t t = sb__md_iso_ms(s);
    if (t != -1 && (strlen(s) < 19 || s[4] != '-')) /* a time only from a well-formed one */
        abort();
    sb_free(s);
    return 0;
}

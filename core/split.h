/* SPDX-License-Identifier: MIT */
/*
 * Length rules of social networks and the thread a long answer becomes. Mastodon and
 * Bluesky cap a post at a number of user-perceived characters (extended grapheme
 * clusters, UAX #29; counted with libunistring), Mastodon counting every URL as a fixed
 * weight and a mention "@user@host" as "@user". An answer longer than the cap is cut into
 * parts, each within it: at a paragraph break, else a line break, else after a sentence,
 * else between words, else between grapheme clusters (never inside one, never inside a
 * URL or mention unless it alone is over the cap), each part trimmed of the blanks at the
 * cut, with an optional prefix on every part (the "@alice@host " a Mastodon reply starts
 * with) and a " (i/n)" counter on each part when there are several.
 */
#ifndef SB_CORE_SPLIT_H
#define SB_CORE_SPLIT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sb_split_rules {
    size_t limit;       /* most weight per post (Mastodon: max_characters; Bluesky: 300) */
    size_t url_weight;  /* an http(s) URL weighs this (Mastodon: 23); 0 = as written */
    bool mention_local; /* "@user@host" weighs as "@user" (Mastodon) */
    const char *prefix; /* put before every part and weighed with it; NULL = none */
    bool number;        /* " (i/n)" after each part when n > 1, weighed with it */
    unsigned max_parts; /* more would be needed: SB_ETOOBIG; 0 = 10 */
} sb_split_rules_t;

/** The weight of n bytes of UTF-8 text under r's rules (prefix and counter not included). */
size_t sb_split_weight(const char *text, size_t n, const sb_split_rules_t *r);

/** The number of extended grapheme clusters in n bytes of UTF-8 text. */
size_t sb_split_graphemes(const char *text, size_t n);

/**
 * Cuts text (NUL-terminated UTF-8) into *nparts posts (each sb_malloc'd, NUL-terminated,
 * the array too; free with sb_split_free), each of weight ≤ r->limit including its prefix
 * and counter; one part (prefix + text) when it fits. 0; SB_EINVAL for invalid UTF-8,
 * empty text or a limit the prefix and counter alone fill; SB_ETOOBIG when more than
 * max_parts would be needed (*parts NULL, *nparts the number it would take).
 */
int sb_split(const char *text, const sb_split_rules_t *r, char ***parts, size_t *nparts);

/** Frees what sb_split returned. Accepts NULL. */
void sb_split_free(char **parts, size_t nparts);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * A Mastodon status's HTML content as plain text for the queue. Mastodon sends a status
 * as a small subset of HTML (its sanitizer keeps p, br, a, span and a few more): this
 * turns it into the text a person would read, not a general HTML parser.
 *
 *   <p>            a blank line between paragraphs
 *   <br>           a line break
 *   &amp; &#39; …  decoded (named entities of HTML's basic set, decimal and hex)
 *   a mention      <a class="u-url mention" href="https://host/@user">@<span>user</span></a>
 *                  becomes "@user@host": the acct the status's mentions give for that
 *                  href, else one built from the href
 *   a hashtag      "#tag"
 *   another link   its href (Mastodon shortens the text shown), or its text when the
 *                  href is not http(s)
 * Every other tag is dropped (script and style with their content), runs of blanks
 * become one space. The output is valid UTF-8 (a bad byte becomes U+FFFD), at most
 * max_out bytes (cut on a character boundary).
 */
#ifndef SB_MASTODON_HTML_H
#define SB_MASTODON_HTML_H

#include <stddef.h>

/** One of a status's mentions: its profile URL and full acct ("user@host"). */
typedef struct sb_md_mention {
    const char *url;
    const char *acct;
} sb_md_mention_t;

/** Default cap of sb_md_html_text's output (bytes). */
#define SB_MD_TEXT_MAX (64 * 1024)

/**
 * Converts n bytes of html into plain text, sb_malloc'd and NUL-terminated (never NULL;
 * "" for no text). mentions (nm of them, borrowed; may be NULL) name the accts of the
 * mention links. max_out 0 means SB_MD_TEXT_MAX.
 */
char *sb_md_html_text(const char *html, size_t n, const sb_md_mention_t *mentions, size_t nm,
                      size_t max_out);

#endif

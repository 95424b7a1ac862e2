/* SPDX-License-Identifier: MIT */
/*
 * The message model's limits and input checks (docs/contract.md §3, §9): every JSON document
 * from the network goes through sb_json_parse (size, UTF-8, depth, syntax with
 * line/column), every text through sb_text_check.
 */
#ifndef SB_MSG_H
#define SB_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define SB_MAX_HTTP_BODY  (1024 * 1024)
#define SB_MAX_WS_FRAME   (64 * 1024)
#define SB_MAX_TEXT       (8 * 1024)
#define SB_MAX_SUBJECT    998
#define SB_MAX_JSON_DEPTH 32
#define SB_MAX_ID_LEN     200 /* external ids, client ids, handles */
#define SB_MAX_EMAIL      254 /* RFC 5321 §4.5.3.1.3: a path of 256 less the angle brackets */
#define SB_MAX_NAME       200 /* display names of contacts */

typedef struct sb_json_error {
    int line;   /* 1-based, 0 when not about a position */
    int column; /* 1-based */
    char text[160];
} sb_json_error_t;

/**
 * Parses a JSON document from the network. Returns 0 and *out (caller decrefs), or
 * SB_ETOOBIG (len > max), SB_EUTF8 (invalid UTF-8), SB_EDEPTH (nesting deeper than
 * SB_MAX_JSON_DEPTH), SB_EPARSE (syntax; err has line and column); err is filled on
 * every error. If want_object, a non-object top level is SB_EPARSE.
 */
int sb_json_parse(const char *buf, size_t len, size_t max, int want_object, json_t **out,
                  sb_json_error_t *err);

/**
 * Checks a text field: non-empty (after trimming white space), ≤ max bytes, valid
 * UTF-8 with no NUL. Returns 0, SB_EINVAL (empty), SB_ETOOBIG or SB_EUTF8.
 */
int sb_text_check(const char *text, size_t max);

/**
 * Checks a one-line string (a name, a subject, an id from the outside): ≤ max bytes,
 * valid UTF-8, and no control character (C0 including CR, LF and TAB, DEL, C1), so it
 * can go into a mail header, a log line or a Redis key as it is. Empty is fine.
 * Returns 0, SB_EINVAL (NULL or a control character), SB_ETOOBIG or SB_EUTF8.
 */
int sb_line_check(const char *s, size_t max);

/**
 * Checks an email address: an RFC 5322 §3.4.1 addr-spec whose local part is a dot-atom
 * (§3.2.3; UTF-8 allowed in atext as RFC 6532 §3.2 does) and whose domain is a host name
 * (labels of letters, digits and hyphens, or UTF-8 U-labels; each 1..63 bytes, no hyphen
 * first or last). Quoted local parts, domain literals, comments and folding white space
 * (legal in RFC 5322, unused by real customers, and the usual way to smuggle header
 * text) are refused, as are control characters. Lengths per RFC 5321 §4.5.3.1: local
 * part ≤ 64, domain ≤ 253, the whole ≤ SB_MAX_EMAIL bytes. Returns 0, SB_EINVAL (NULL
 * or malformed), SB_ETOOBIG or SB_EUTF8. The one validator for addresses of customers,
 * staff and mailboxes (the API and the email connector).
 */
int sb_email_check(const char *s);

/**
 * True when s is a transcript position as Redis stream ids write it: "<ms>" or
 * "<ms>-<n>", each part 1..20 decimal digits that fit in 64 bits (messages' `seq`,
 * `after`, `based_on`).
 */
bool sb_seq_valid(const char *s);

/** Gets an optional string member: NULL if absent or null; SB_EINVAL via *bad if not a string. */
const char *sb_json_opt_str(const json_t *obj, const char *key, int *bad);

/**
 * The newest customer message of a transcript page (items oldest first, as the store's
 * pages are): the last item with "dir":"in" whose `ext` has a non-empty string under each
 * name in ext_fields (NULL-terminated) — the post, mail or hook message a connector's
 * answer goes back to. Borrowed from items; NULL when none has them.
 */
json_t *sb_msg_newest_in(const json_t *items, const char *const *ext_fields);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The message model's limits and input checks (DESIGN §3, §9): every JSON document
 * from the network goes through sb_json_parse (size, UTF-8, depth, syntax with
 * line/column), every text through sb_text_check.
 */
#ifndef SB_MSG_H
#define SB_MSG_H

#include <stddef.h>

#include <jansson.h>

#define SB_MAX_HTTP_BODY  (1024 * 1024)
#define SB_MAX_WS_FRAME   (64 * 1024)
#define SB_MAX_TEXT       (8 * 1024)
#define SB_MAX_SUBJECT    998
#define SB_MAX_JSON_DEPTH 32
#define SB_MAX_ID_LEN     200 /* external ids, client ids, handles */

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

/** Gets an optional string member: NULL if absent or null; SB_EINVAL via *bad if not a string. */
const char *sb_json_opt_str(const json_t *obj, const char *key, int *bad);

#endif

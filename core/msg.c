/* SPDX-License-Identifier: MIT */
/*
 * Input checks of msg.h. The depth check scans the raw text before jansson sees it,
 * so a hostile document of a million '[' costs one linear pass and no recursion.
 */
#include "core/msg.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/util.h"

/* Maximum nesting of arrays/objects in raw JSON text (strings skipped). */
static int json_depth(const char *s, size_t n, size_t *where)
{
    int depth = 0, max = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max) {
                max = depth;
                if (max > SB_MAX_JSON_DEPTH) {
                    *where = i;
                    return max;
                }
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return max;
}

static void position(const char *s, size_t off, sb_json_error_t *err)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    err->line = line;
    err->column = col;
}

int sb_json_parse(const char *buf, size_t len, size_t max, int want_object, json_t **out,
                  sb_json_error_t *err)
{
    memset(err, 0, sizeof(*err));
    *out = NULL;
    if (len > max) {
        snprintf(err->text, sizeof(err->text), "document of %zu bytes exceeds %zu", len, max);
        return SB_ETOOBIG;
    }
    if (!sb_utf8_valid(buf, len)) {
        snprintf(err->text, sizeof(err->text), "invalid UTF-8");
        return SB_EUTF8;
    }
    size_t where = 0;
    if (json_depth(buf, len, &where) > SB_MAX_JSON_DEPTH) {
        position(buf, where, err);
        snprintf(err->text, sizeof(err->text), "nested deeper than %d", SB_MAX_JSON_DEPTH);
        return SB_EDEPTH;
    }
    json_error_t je;
    json_t *j = json_loadb(buf, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        err->line = je.line > 0 ? je.line : 1;
        err->column = je.column > 0 ? je.column : 1;
        snprintf(err->text, sizeof(err->text), "%s", je.text);
        return SB_EPARSE;
    }
    if (want_object && !json_is_object(j)) {
        json_decref(j);
        err->line = 1;
        err->column = 1;
        snprintf(err->text, sizeof(err->text), "expected a JSON object");
        return SB_EPARSE;
    }
    *out = j;
    return 0;
}

int sb_text_check(const char *text, size_t max)
{
    if (!text)
        return SB_EINVAL;
    size_t n = strlen(text);
    if (n > max)
        return SB_ETOOBIG;
    if (!sb_utf8_valid(text, n))
        return SB_EUTF8;
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)text[i]))
            return 0;
    return SB_EINVAL;
}

const char *sb_json_opt_str(const json_t *obj, const char *key, int *bad)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        if (bad)
            *bad = SB_EINVAL;
        return NULL;
    }
    return json_string_value(v);
}

/* SPDX-License-Identifier: MIT */
/*
 * Input checks of msg.h. The depth check scans the raw text before jansson sees it,
 * so a hostile document of a million '[' costs one linear pass and no recursion.
 */
#include "core/msg.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
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

/* The bytes of a control character at s (C0, DEL, or C1 in UTF-8: C2 80..C2 9F), else 0. */
static size_t control_at(const unsigned char *s)
{
    if (s[0] < 0x20 || s[0] == 0x7f)
        return 1;
    if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
        return 2;
    return 0;
}

int sb_line_check(const char *s, size_t max)
{
    if (!s)
        return SB_EINVAL;
    size_t n = strlen(s);
    if (n > max)
        return SB_ETOOBIG;
    if (!sb_utf8_valid(s, n))
        return SB_EUTF8;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (control_at(p))
            return SB_EINVAL;
    return 0;
}

/* atext (RFC 5322 §3.2.3) and, per RFC 6532 §3.2, any byte of a UTF-8 sequence. */
static bool atext(unsigned char c)
{
    return (c < 0x80 && isalnum(c)) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c)) || c >= 0x80;
}

/* A dot-atom-text of n bytes: atext runs separated by single dots. */
static bool dot_atom(const unsigned char *s, size_t n)
{
    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '.' ? s[i + 1] == '.' : !atext(s[i]))
            return false;
    return true;
}

/* A host name of n bytes: labels of 1..63 letters, digits, hyphens or UTF-8 bytes. */
static bool host_name(const unsigned char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = s[i] >= 0x80 || (isalnum(s[i])) || (s[i] == '-' && label > 0);
        if (!ok)
            return false;
        label++;
    }
    return true;
}

int sb_email_check(const char *s)
{
    if (!s)
        return SB_EINVAL;
    size_t n = strlen(s);
    if (n > SB_MAX_EMAIL)
        return SB_ETOOBIG;
    if (!sb_utf8_valid(s, n))
        return SB_EUTF8;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n; i++)
        if (control_at(u + i))
            return SB_EINVAL;
    const char *at = strrchr(s, '@');
    if (!at)
        return SB_EINVAL;
    size_t local = (size_t)(at - s);
    if (local > 64 || !dot_atom(u, local) || !host_name(u + local + 1, n - local - 1))
        return SB_EINVAL;
    return 0;
}

bool sb_seq_valid(const char *s)
{
    if (!s)
        return false;
    const char *dash = strchr(s, '-');
    for (int part = 0; part < (dash ? 2 : 1); part++) {
        const char *p = part ? dash + 1 : s;
        size_t len = part || !dash ? strlen(p) : (size_t)(dash - s);
        if (len == 0 || len > 20 || strspn(p, "0123456789") != len)
            return false;
        errno = 0;
        char *end;
        strtoull(p, &end, 10);
        if (errno == ERANGE)
            return false;
    }
    return true;
}

json_t *sb_msg_newest_in(const json_t *items, const char *const *ext_fields)
{
    for (size_t i = json_array_size(items); i > 0; i--) {
        json_t *it = json_array_get(items, i - 1);
        const char *dir = json_string_value(json_object_get(it, "dir"));
        const json_t *ext = json_object_get(it, "ext");
        if (!dir || strcmp(dir, "in") != 0 || !json_is_object(ext))
            continue;
        bool all = true;
        for (size_t k = 0; all && ext_fields && ext_fields[k]; k++) {
            const char *v = json_string_value(json_object_get(ext, ext_fields[k]));
            all = v && *v;
        }
        if (all)
            return it;
    }
    return NULL;
}

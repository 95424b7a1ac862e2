/* SPDX-License-Identifier: MIT */
/*
 * The checks of api_input.h: every field of a request body or query that the REST API
 * passes on to Redis is typed, bounded and free of control characters here first, so a
 * bad value is a 400 naming the field, never a Redis error answered as 503, and never
 * stored. The bounds are those of docs/contract.md §9 (text ≤ 8 KiB) and docs/hardening-api.md.
 */
#include "gateway/api_input.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/msg.h"
#include "core/util.h"

static const char *member(const char *field)
{
    const char *dot = strrchr(field, '.');
    return dot ? dot + 1 : field;
}

bool sb__api_text(api_call_t *c, const char *field, const json_t *v, size_t max)
{
    int rc = json_is_string(v) ? sb_text_check(json_string_value(v), max) : SB_EINVAL;
    if (rc == SB_ETOOBIG)
        sb__api_fail(c, 413, "too_large", "%s exceeds %zu bytes", field, max);
    else if (rc == SB_EUTF8)
        sb__api_fail(c, 400, "bad_request", "%s is not valid UTF-8", field);
    else if (rc != 0)
        sb__api_fail(c, 400, "bad_request", "%s is required and must be a non-empty string", field);
    return rc == 0;
}

bool sb__api_opt_str(api_call_t *c, const json_t *obj, const char *field, size_t max,
                     const char **out)
{
    int bad = 0;
    *out = sb_json_opt_str(obj, member(field), &bad);
    if (bad || (*out && strlen(*out) > max)) {
        sb__api_fail(c, 400, "bad_request", "%s must be a string of at most %zu bytes", field, max);
        return false;
    }
    return true;
}

bool sb__api_opt_line(api_call_t *c, const json_t *obj, const char *field, size_t max,
                      const char **out)
{
    if (!sb__api_opt_str(c, obj, field, max, out))
        return false;
    if (*out && sb_line_check(*out, max) != 0) {
        sb__api_fail(c, 400, "bad_request", "%s must be one line without control characters",
                     field);
        return false;
    }
    return true;
}

bool sb__api_opt_bool(api_call_t *c, const json_t *obj, const char *field, bool *out)
{
    const json_t *v = json_object_get(obj, member(field));
    *out = json_is_true(v);
    if (v && !json_is_null(v) && !json_is_boolean(v)) {
        sb__api_fail(c, 400, "bad_request", "%s must be true or false", field);
        return false;
    }
    return true;
}

bool sb__api_seq(api_call_t *c, const char *field, const char *s)
{
    if (!s || !*s || sb_seq_valid(s))
        return true;
    sb__api_fail(c, 400, "bad_request", "%s must be a seq like 1732270000123-0", field);
    return false;
}

bool sb__api_count(api_call_t *c, const char *field, const char *s, long min, long max, long *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 0 && n <= 9 && strspn(s, "0123456789") == n) {
        *out = strtol(s, NULL, 10);
        if (*out >= min && *out <= max)
            return true;
    }
    sb__api_fail(c, 400, "bad_request", "%s must be %ld..%ld", field, min, max);
    return false;
}

/* ---- attachments and ext of an inbound message ---- */

/* An attachment's `type`: a MIME type token/token (RFC 2045 §5.1, without parameters). */
static bool mime_type(const char *s)
{
    static const char tspecial[] = "()<>@,;:\\\"/[]?=";
    size_t slash = 0, n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '/' && slash == 0 && i > 0)
            slash = i;
        else if (ch <= 0x20 || ch >= 0x7f || strchr(tspecial, ch))
            return false;
    }
    return slash > 0 && slash + 1 < n;
}

static bool url_ok(const char *s)
{
    const char *host = strncmp(s, "https://", 8) == 0  ? s + 8
                       : strncmp(s, "http://", 7) == 0 ? s + 7
                                                       : NULL;
    return host && *host && *host != '/' && !strpbrk(s, " <>\"'`");
}

static bool attachment(api_call_t *c, json_t *a, size_t i)
{
    char f[64];
    const char *k;
    json_t *v;
    if (!json_is_object(a)) {
        sb__api_fail(c, 400, "bad_request", "attachments[%zu] must be an object", i);
        return false;
    }
    json_object_foreach(a, k, v)
    {
        if (strcmp(k, "name") && strcmp(k, "type") && strcmp(k, "size") && strcmp(k, "url")) {
            sb__api_fail(c, 400, "bad_request",
                         "attachments[%zu] may have name, type, size and url only", i);
            return false;
        }
    }
    const char *name, *type, *url;
    snprintf(f, sizeof(f), "attachments[%zu].name", i);
    if (!sb__api_opt_line(c, a, f, 255, &name))
        return false;
    snprintf(f, sizeof(f), "attachments[%zu].type", i);
    if (!sb__api_opt_line(c, a, f, 127, &type))
        return false;
    if (type && !mime_type(type)) {
        sb__api_fail(c, 400, "bad_request", "%s must be a MIME type like image/png", f);
        return false;
    }
    snprintf(f, sizeof(f), "attachments[%zu].url", i);
    if (!sb__api_opt_line(c, a, f, SB_API_MAX_URL, &url))
        return false;
    if (url && !url_ok(url)) {
        sb__api_fail(c, 400, "bad_request", "%s must be an http:// or https:// URL", f);
        return false;
    }
    const json_t *size = json_object_get(a, "size");
    if (size && !json_is_null(size) &&
        (!json_is_integer(size) || json_integer_value(size) < 0 ||
         json_integer_value(size) > 25 * 1024 * 1024)) {
        sb__api_fail(c, 400, "bad_request", "attachments[%zu].size must be 0..%d bytes", i,
                     25 * 1024 * 1024);
        return false;
    }
    return true;
}

bool sb__api_attachments(api_call_t *c, json_t *att)
{
    if (!att || json_is_null(att))
        return true;
    if (!json_is_array(att) || json_array_size(att) > SB_API_MAX_ATTACHMENTS) {
        sb__api_fail(c, 400, "bad_request", "attachments must be an array of at most %d objects",
                     SB_API_MAX_ATTACHMENTS);
        return false;
    }
    for (size_t i = 0; i < json_array_size(att); i++)
        if (!attachment(c, json_array_get(att, i), i))
            return false;
    return true;
}

bool sb__api_ext(api_call_t *c, json_t *ext)
{
    if (!ext || json_is_null(ext))
        return true;
    if (!json_is_object(ext) || json_object_size(ext) > SB_API_MAX_EXT) {
        sb__api_fail(c, 400, "bad_request", "ext must be an object of at most %d members",
                     SB_API_MAX_EXT);
        return false;
    }
    const char *k;
    json_t *v;
    json_object_foreach(ext, k, v)
    {
        bool ok = strlen(k) <= 64 && sb_line_check(k, 64) == 0 &&
                  (json_is_number(v) || json_is_boolean(v) || json_is_null(v) ||
                   (json_is_string(v) && strlen(json_string_value(v)) <= SB_API_MAX_EXT_VALUE));
        if (!ok) {
            sb__api_fail(c, 400, "bad_request",
                         "ext.%.64s must be a string of at most %d bytes, a number, a boolean "
                         "or null (names at most 64 bytes)",
                         k, SB_API_MAX_EXT_VALUE);
            return false;
        }
    }
    return true;
}

/* ---- state changes ---- */

static bool tags_ok(api_call_t *c, const json_t *tags)
{
    if (!json_is_array(tags) || json_array_size(tags) > SB_API_MAX_TAGS) {
        sb__api_fail(c, 400, "bad_request", "tags must be an array of at most %d strings",
                     SB_API_MAX_TAGS);
        return false;
    }
    for (size_t i = 0; i < json_array_size(tags); i++) {
        const char *t = json_string_value(json_array_get(tags, i));
        if (!t || !*t || sb_line_check(t, SB_API_MAX_TAG) != 0) {
            sb__api_fail(c, 400, "bad_request",
                         "tags[%zu] must be a non-empty string of at most %d bytes without "
                         "control characters",
                         i, SB_API_MAX_TAG);
            return false;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(t, json_string_value(json_array_get(tags, k))) == 0) {
                sb__api_fail(c, 400, "bad_request", "tags[%zu] repeats \"%s\"", i, t);
                return false;
            }
        }
    }
    return true;
}

/* `until`: an integer time in ms, in the future and at most SB_API_MAX_SNOOZE_MS away. */
static bool until_ok(api_call_t *c, const json_t *v)
{
    int64_t now = (int64_t)sb_now_ms();
    if (!json_is_integer(v) || json_integer_value(v) <= now ||
        json_integer_value(v) > now + SB_API_MAX_SNOOZE_MS) {
        sb__api_fail(c, 400, "bad_request",
                     "until must be an integer time in ms since the epoch, in the future and "
                     "at most %lld days away",
                     SB_API_MAX_SNOOZE_MS / (24 * 3600 * 1000));
        return false;
    }
    return true;
}

bool sb__api_act_args(api_call_t *c, const char *action)
{
    json_t *b = c->body;
    const char *s;
    bool flag;
    if (!sb__api_opt_str(c, b, "reason", SB_API_MAX_REASON, &s))
        return false;
    if (strcmp(action, "claim") == 0)
        return sb__api_opt_bool(c, b, "steal", &flag);
    if (strcmp(action, "snooze") == 0)
        return until_ok(c, json_object_get(b, "until"));
    if (strcmp(action, "tags") == 0)
        return tags_ok(c, json_object_get(b, "tags"));
    if (strcmp(action, "priority") == 0) {
        s = json_string_value(json_object_get(b, "priority"));
        if (!s ||
            (strcmp(s, "low") && strcmp(s, "normal") && strcmp(s, "high") && strcmp(s, "urgent"))) {
            sb__api_fail(c, 400, "bad_request", "priority must be low, normal, high or urgent");
            return false;
        }
    }
    return true;
}

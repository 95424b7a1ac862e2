/* SPDX-License-Identifier: MIT */
/*
 * SLA notification targets (sla_targets.h): expanding `everyone`, `role:<r>` and `st_<id>`
 * against the staff list, and the one compact form of a notification every node builds
 * alike (so two nodes adding it to a sorted set add it once).
 */
#include <string.h>

#include "core/alloc.h"
#include "core/sla_targets.h"
#include "core/util.h"

#define SUBJECT_MAX 120

bool sb_sla_covers(const json_t *channels, const char *channel)
{
    if (!channels || json_is_null(channels))
        return true;
    if (!channel)
        return false;
    if (json_is_array(channels)) {
        for (size_t i = 0; i < json_array_size(channels); i++) {
            const char *c = json_string_value(json_array_get(channels, i));
            if (c && strcmp(c, channel) == 0)
                return true;
        }
        return false;
    }
    const char *s = json_string_value(channels);
    size_t n = strlen(channel);
    while (s && *s) {
        s += strspn(s, ", ");
        size_t len = strcspn(s, ", ");
        if (len == n && len && strncmp(s, channel, n) == 0)
            return true;
        s += len;
    }
    return false;
}

static bool str_is(const json_t *o, const char *key, const char *want)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v && strcmp(v, want) == 0;
}

/* Does one target string name this member? */
static bool names(const char *target, const json_t *m, const char *channel)
{
    if (strcmp(target, "everyone") == 0)
        return (str_is(m, "role", "agent") || str_is(m, "role", "admin")) &&
               sb_sla_covers(json_object_get(m, "channels"), channel);
    if (strncmp(target, "role:", 5) == 0)
        return target[5] && str_is(m, "role", target + 5);
    if (strncmp(target, "st_", 3) == 0)
        return str_is(m, "id", target);
    return false;
}

json_t *sb_sla_targets_expand(const json_t *targets, const char *channel, const json_t *staff)
{
    json_t *out = json_array();
    for (size_t i = 0; i < json_array_size(staff); i++) {
        json_t *m = json_array_get(staff, i);
        if (!json_is_object(m) || !json_string_value(json_object_get(m, "id")))
            continue;
        bool hit = false;
        for (size_t t = 0; t < json_array_size(targets) && !hit; t++) {
            const char *target = json_string_value(json_array_get(targets, t));
            hit = target && names(target, m, channel);
        }
        /* the staff list holds each member once; a repeated record is skipped */
        for (size_t k = 0; hit && k < json_array_size(out); k++)
            if (str_is(json_array_get(out, k), "id", json_string_value(json_object_get(m, "id"))))
                hit = false;
        if (hit)
            json_array_append(out, m);
    }
    return out;
}

bool sb_sla_event_type(const char *type)
{
    return type && (strcmp(type, "sla_warning") == 0 || strcmp(type, "sla_breach") == 0 ||
                    strcmp(type, "escalated") == 0);
}

char *sb_sla_notification(const json_t *event, long long *ts_out)
{
    json_t *m = json_object_get(event, "message");
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *id = json_string_value(json_object_get(m, "id"));
    const char *conv = json_string_value(json_object_get(event, "conv"));
    json_t *ts = json_object_get(m, "ts");
    if (!sb_sla_event_type(type) || !id || !conv || !json_is_integer(ts))
        return NULL;
    json_t *n = json_object();
    json_object_set_new(n, "id", json_string(id));
    json_object_set_new(n, "type", json_string(type));
    json_object_set_new(n, "conv", json_string(conv));
    static const char *const copied[] = {"clock", "percent", "policy", "due"};
    for (size_t i = 0; i < SB_ARRAY_LEN(copied); i++) {
        json_t *v = json_object_get(m, copied[i]);
        json_object_set(n, copied[i], v ? v : json_null());
    }
    json_object_set(n, "ts", ts);
    /* whom it is about: the event's own subject and customer (the functions add them) */
    static const char *const about[] = {"subject", "customer"};
    for (size_t i = 0; i < SB_ARRAY_LEN(about); i++) {
        const char *s = json_string_value(json_object_get(m, about[i]));
        if (!s || !*s)
            continue;
        size_t len = strlen(s);
        if (len > SUBJECT_MAX) {
            len = SUBJECT_MAX;
            while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
                len--;
        }
        json_object_set_new(n, about[i], json_stringn(s, len));
    }
    char *out = NULL;
    if (sb_json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER, &out, NULL) != 0)
        out = NULL;
    json_decref(n);
    if (ts_out)
        *ts_out = json_integer_value(ts);
    return out;
}

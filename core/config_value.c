/* SPDX-License-Identifier: MIT */
/*
 * The lexical layer of the configuration (config.h, config.c): a line split into words
 * (quotes, escapes, comments), the checks of the core's string values (listen, URLs,
 * the key prefix), and the numbers of values: plain counts, durations and
 * sizes, parsed strictly (digits, then one known unit; overflow is an error), and
 * durations written back in their largest exact unit for messages and --help-config.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/config_internal.h"
#include "core/err.h"
#include "core/util.h"

#define MS_PER_DAY (24LL * 3600 * 1000)

/* ---- Words ---- */

static void push_word(words_t *w, char *s)
{
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->v = sb_realloc(w->v, (size_t)w->cap * sizeof(char *));
    }
    w->v[w->n++] = s;
}

const char *sb__config_split_words(char *s, words_t *w)
{
    w->n = 0;
    for (;;) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            return NULL;
        char *word = s;
        if (*s == '"') {
            char *o = s++;
            while (*s != '"') {
                if (!*s)
                    return "unterminated quote";
                if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
                    s++;
                *o++ = *s++;
            }
            s++; /* past the closing quote; o is before it */
            if (*s && *s != ' ' && *s != '\t')
                return "text right after a closing quote";
            *o = '\0';
        } else {
            s += strcspn(s, " \t");
            if (*s)
                *s++ = '\0';
        }
        push_word(w, word);
    }
}

/* ---- Value checks ---- */

const char *sb__config_check_listen(const char *v)
{
    static const char *const why = "is not host:port (host: an IP, [IPv6], localhost or *)";
    const char *colon = strrchr(v, ':');
    if (!colon || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        strlen(colon + 1) > 5 || atoi(colon + 1) > 65535)
        return why;
    size_t hl = (size_t)(colon - v);
    char host[64];
    if (hl >= sizeof(host))
        return why;
    memcpy(host, v, hl);
    host[hl] = '\0';
    unsigned char addr[16];
    if (!*host || !strcmp(host, "*") || !strcmp(host, "localhost") ||
        inet_pton(AF_INET, host, addr) == 1)
        return NULL;
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        host[hl - 1] = '\0';
        if (inet_pton(AF_INET6, host + 1, addr) == 1)
            return NULL;
    }
    return why;
}

const char *sb__config_check_url(const char *v)
{
    if (!*v || (strncmp(v, "http://", 7) == 0 && v[7]) || (strncmp(v, "https://", 8) == 0 && v[8]))
        return NULL;
    return "is not an http:// or https:// URL";
}

const char *sb__config_check_redis(const char *v)
{
    if (!*v || (strncmp(v, "redis://", 8) == 0 && v[8]) || (strncmp(v, "unix:", 5) == 0 && v[5]))
        return NULL;
    return "is not redis://host:port/db or unix:/path";
}

/* The rest of every key formatted into a SB_KEY_MAX buffer fits after the longest prefix. */
_Static_assert(SB_PREFIX_MAX == 64, "the prefix row and check_prefix say 64");
_Static_assert(SB_PREFIX_MAX + sizeof("token:") - 1 + 64 < SB_KEY_MAX, "token keys fit");
_Static_assert(SB_PREFIX_MAX + sizeof("contact:") - 1 + SB_ID_MAX + sizeof(":idents") <= SB_KEY_MAX,
               "contact keys fit");
_Static_assert(SB_PREFIX_MAX + sizeof("{4294967295}:presence") <= SB_KEY_MAX, "shard keys fit");

/*
 * A key prefix: bounded, so that key buffers derived from SB_PREFIX_MAX never truncate;
 * no '{' or '}' (a brace would change the hash tag that puts a shard's keys in one Redis
 * Cluster slot), no spaces or control characters (keys are shown in logs and sbctl).
 */
const char *sb__config_check_prefix(const char *v)
{
    if (strlen(v) > SB_PREFIX_MAX)
        return "is longer than 64 bytes";
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p == '{' || *p == '}' || *p <= ' ' || *p == 0x7f)
            return "may not contain braces, spaces or control characters";
    return NULL;
}

/* ---- Numbers ---- */

int sb__config_parse_u64(const char *s, uint64_t *out)
{
    if (!*s)
        return SB_EINVAL;
    uint64_t n = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return SB_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (n > (UINT64_MAX - d) / 10)
            return SB_ETOOBIG;
        n = n * 10 + d;
    }
    *out = n;
    return 0;
}

int sb_config_parse_duration(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", MS_PER_DAY}};
    if (!s || *s < '0' || *s > '9')
        return SB_EINVAL;
    int64_t n = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';
        if (n > (INT64_MAX - d) / 10)
            return SB_EINVAL;
        n = n * 10 + d;
    }
    for (size_t i = 0; i < SB_ARRAY_LEN(units); i++) {
        if (strcmp(s, units[i].unit) == 0) {
            if (n > INT64_MAX / units[i].mult)
                return SB_EINVAL;
            *ms = n * units[i].mult;
            return 0;
        }
    }
    return SB_EINVAL;
}

int sb_config_parse_size(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *unit;
        unsigned shift;
    } units[] = {{"", 0}, {"K", 10}, {"M", 20}, {"G", 30}};
    if (!s || *s < '0' || *s > '9')
        return SB_EINVAL;
    size_t digits = strspn(s, "0123456789");
    char num[24];
    if (digits >= sizeof(num))
        return SB_EINVAL;
    memcpy(num, s, digits);
    num[digits] = '\0';
    uint64_t n;
    if (sb__config_parse_u64(num, &n) != 0)
        return SB_EINVAL;
    for (size_t i = 0; i < SB_ARRAY_LEN(units); i++) {
        if (strcmp(s + digits, units[i].unit) == 0) {
            if (n > (UINT64_MAX >> units[i].shift))
                return SB_EINVAL;
            *bytes = n << units[i].shift;
            return 0;
        }
    }
    return SB_EINVAL;
}

void sb__config_format_duration(int64_t ms, char *out, size_t n)
{
    static const struct {
        const char *unit;
        int64_t mult;
    } units[] = {{"d", MS_PER_DAY}, {"h", 3600000}, {"m", 60000}, {"s", 1000}};
    for (size_t i = 0; i < SB_ARRAY_LEN(units); i++) {
        if (ms > 0 && ms % units[i].mult == 0) {
            snprintf(out, n, "%lld%s", (long long)(ms / units[i].mult), units[i].unit);
            return;
        }
    }
    snprintf(out, n, "%lldms", (long long)ms);
}

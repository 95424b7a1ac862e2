/* SPDX-License-Identifier: MIT */
/*
 * The identifiers the Bluesky connector makes and reads (docs/bluesky.md): record keys
 * in the TID syntax of atproto (13 characters of "base32-sortable", a 64-bit integer whose
 * top bit is 0, then 53 bits of microseconds since the epoch and 10 bits of clock id), and
 * at-uris of records (at://<authority>/<collection>/<rkey>), from which the bsky.app web
 * address of a post is made. Input here comes from the network: nothing is trusted, and
 * tests/fuzz/fuzz_bluesky_ids.c runs these functions on arbitrary bytes.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "connectors/bluesky/internal.h"
#include "core/alloc.h"
#include "core/sys.h"

static const char b32s[] = "234567abcdefghijklmnopqrstuvwxyz";

/* FNV-1a over s, seeded, so the two halves of a TID's entropy differ. */
static uint64_t fnv(const char *s, uint64_t seed)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void sb__bs_tid(const char *msg_id, int64_t ts_ms, unsigned part, char out[BS_TID_LEN + 1])
{
    /* microseconds: the message's ms, then 50 slots of BS_MAX_PARTS picked by the id, then
     * the part; the clock id from another hash of the id: two answers written in the same
     * millisecond get different keys but for a chance of one in 51200 */
    uint64_t us = (uint64_t)(ts_ms > 0 ? ts_ms : 0) * 1000 + (fnv(msg_id, 1) % 50) * BS_MAX_PARTS +
                  part % BS_MAX_PARTS;
    uint64_t v = ((us & ((1ULL << 53) - 1)) << 10) | (fnv(msg_id, 2) & 0x3ff);
    for (int i = BS_TID_LEN - 1; i >= 0; i--) {
        out[i] = b32s[v & 31];
        v >>= 5;
    }
    out[BS_TID_LEN] = '\0';
}

bool sb__bs_tid_valid(const char *s)
{
    if (!s || strlen(s) != BS_TID_LEN)
        return false;
    /* the first character carries the top bit, which must be 0 */
    if (!strchr("234567abcdefghij", s[0]) || !s[0])
        return false;
    for (size_t i = 1; i < BS_TID_LEN; i++)
        if (!s[i] || !strchr(b32s, s[i]))
            return false;
    return true;
}

/* A segment of an at-uri: non-empty, printable ASCII without '/', '?', '#' or blanks. */
static size_t segment(const char *p)
{
    size_t n = 0;
    while (p[n] > ' ' && p[n] < 0x7f && p[n] != '/' && p[n] != '?' && p[n] != '#')
        n++;
    return n;
}

bool sb__bs_aturi_parse(const char *uri, bs_aturi_t *out)
{
    if (!uri || strncmp(uri, "at://", 5) != 0)
        return false;
    const char *p = uri + 5;
    size_t lens[3];
    const char *starts[3];
    for (int i = 0; i < 3; i++) {
        starts[i] = p;
        lens[i] = segment(p);
        if (lens[i] == 0)
            return false;
        p += lens[i];
        if (i < 2 && *p++ != '/')
            return false;
    }
    if (*p)
        return false;
    *out = (bs_aturi_t){.authority = starts[0],
                        .authority_len = lens[0],
                        .collection = starts[1],
                        .collection_len = lens[1],
                        .rkey = starts[2],
                        .rkey_len = lens[2]};
    return true;
}

char *sb__bs_web_url(const char *handle, const char *uri)
{
    bs_aturi_t u;
    if (!handle || !*handle || !sb__bs_aturi_parse(uri, &u))
        return NULL;
    if (u.collection_len != strlen("app.bsky.feed.post") ||
        memcmp(u.collection, "app.bsky.feed.post", u.collection_len) != 0)
        return NULL;
    for (const char *h = handle; *h; h++)
        if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
              *h == '.' || *h == '-' || *h == ':'))
            return NULL;
    if (strlen(handle) > 253)
        return NULL;
    for (size_t i = 0; i < u.rkey_len; i++) {
        char c = u.rkey[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_' || c == '~' || c == ':'))
            return NULL;
    }
    return sb_asprintf("https://bsky.app/profile/%s/post/%.*s", handle, (int)u.rkey_len, u.rkey);
}

void sb__bs_iso_now(char out[32])
{
    int64_t ms = sb_now_ms();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

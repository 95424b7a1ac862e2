/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the resume cursor of the live feeds (the `after` query parameter and the
 * Last-Event-ID header of GET /v1/events, "after" of the events WebSocket): core/events.c's
 * parser, through sb__events_parse_cursor. The first byte picks the shard count (1..64).
 * Invariants: an accepted cursor is "0" or exactly one decimal "<ms>[-<seq>]" per shard
 * joined by '.', with no sign, space or overflow (anything else must be a 400, not some
 * other position), and its positions, printed back, parse to the same positions.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/events_internal.h"

#define MAX_SHARDS 64

static void fail(const char *what, const char *cursor)
{
    fprintf(stderr, "fuzz_cursor: %s: \"%.200s\"\n", what, cursor);
    abort();
}

/* A strict decimal number: digits only, fits in 64 bits. */
static bool strict_u64(const char *s, size_t n)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    return true;
}

/* Whether text is one strict stream id "<ms>[-<seq>]". */
static bool strict_sid(const char *s, size_t n)
{
    const char *dash = memchr(s, '-', n);
    if (!dash)
        return strict_u64(s, n);
    return strict_u64(s, (size_t)(dash - s)) && strict_u64(dash + 1, n - (size_t)(dash - s) - 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    unsigned shards = (unsigned)(data[0] % MAX_SHARDS) + 1;
    char *cursor = malloc(size);
    memcpy(cursor, data + 1, size - 1);
    cursor[size - 1] = '\0';
    uint64_t ms[MAX_SHARDS], seq[MAX_SHARDS];
    if (sb__events_parse_cursor(cursor, shards, ms, seq) == 0 && strcmp(cursor, "0") != 0) {
        /* strict shape: shards ids, each strict, joined by '.' */
        const char *p = cursor;
        for (unsigned i = 0; i < shards; i++) {
            const char *dot = strchr(p, '.');
            size_t n = dot ? (size_t)(dot - p) : strlen(p);
            if (!strict_sid(p, n))
                fail("accepted a malformed id", cursor);
            p += n + (dot ? 1 : 0);
        }
        /* round trip */
        char again[MAX_SHARDS * 44];
        size_t o = 0;
        for (unsigned i = 0; i < shards; i++)
            o += (size_t)snprintf(again + o, sizeof(again) - o, "%s%" PRIu64 "-%" PRIu64,
                                  i ? "." : "", ms[i], seq[i]);
        uint64_t ms2[MAX_SHARDS], seq2[MAX_SHARDS];
        if (sb__events_parse_cursor(again, shards, ms2, seq2) != 0)
            fail("its own printed form is rejected", again);
        if (memcmp(ms, ms2, shards * sizeof(ms[0])) || memcmp(seq, seq2, shards * sizeof(seq[0])))
            fail("printed form parses to other positions", again);
    }
    free(cursor);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the TZif reader of core/tz.c with arbitrary bytes (the committed corpus holds
 * real zoneinfo files of versions 2 and 3). An accepted zone is then queried over a few
 * centuries and at extreme instants. Invariants: offsets within ±SB_TZ_MAX_OFFSET, the next
 * transition is strictly later, and the offset does not change before the transition
 * sb_tz_next_transition reports.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/tz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_tz: %s\n", what);
    abort();
}

static void check(const sb_tz_t *tz, int64_t t)
{
    int32_t off = sb_tz_offset(tz, t);
    if (off < -SB_TZ_MAX_OFFSET || off > SB_TZ_MAX_OFFSET)
        fail("offset out of range");
    int64_t next;
    if (sb_tz_next_transition(tz, t, &next) != 0)
        return;
    if (next <= t)
        fail("next transition not after the instant");
    if (next - 1 > t && sb_tz_offset(tz, next - 1) != off)
        fail("the offset changed before the next transition");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_tz_t *tz;
    char err[256];
    if (sb_tz_parse(data, size, &tz, err, sizeof(err)) != 0) {
        if (tz != NULL || err[0] == '\0')
            fail("refused without a reason, or with a zone");
        return 0;
    }
    static const int64_t probes[] = {
        INT64_MIN,    -((int64_t)1 << 50), -2208988800LL,    0,        1795793400LL,
        2216419200LL, 4102444800LL,        (int64_t)1 << 50, INT64_MAX};
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
        check(tz, probes[i]);
    /* walk the transitions from 1900 for a while */
    int64_t t = -2208988800LL;
    for (int i = 0; i < 300; i++) {
        check(tz, t);
        if (sb_tz_next_transition(tz, t, &t) != 0)
            break;
    }
    sb_tz_free(tz);
    return 0;
}

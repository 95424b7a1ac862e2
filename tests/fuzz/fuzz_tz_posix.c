/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the POSIX TZ string parser of core/tz.c (what a TZif footer holds:
 * "CET-1CEST,M3.5.0,M10.5.0/3"), and the rule evaluation behind an accepted string.
 * Invariants: offsets within ±SB_TZ_MAX_OFFSET; a reported transition is strictly later
 * and the offset does not change before it; walking transitions always advances.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/tz.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_tz_posix: %s\n", what);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sb_tz_t *tz;
    char err[256];
    if (sb_tz_posix((const char *)data, size, &tz, err, sizeof(err)) != 0) {
        if (tz != NULL || err[0] == '\0')
            fail("refused without a reason, or with a zone");
        return 0;
    }
    int64_t t = -2208988800LL; /* 1900 */
    for (int i = 0; i < 200; i++) {
        int32_t off = sb_tz_offset(tz, t);
        if (off < -SB_TZ_MAX_OFFSET || off > SB_TZ_MAX_OFFSET)
            fail("offset out of range");
        int64_t next;
        if (sb_tz_next_transition(tz, t, &next) != 0)
            break;
        if (next <= t)
            fail("next transition not after the instant");
        if (next - 1 > t && sb_tz_offset(tz, next - 1) != off)
            fail("the offset changed before the next transition");
        t = next + (i % 7) * 86400 * 40; /* jump ahead now and then: a few centuries in all */
    }
    (void)sb_tz_offset(tz, INT64_MAX);
    (void)sb_tz_offset(tz, INT64_MIN);
    sb_tz_free(tz);
    return 0;
}

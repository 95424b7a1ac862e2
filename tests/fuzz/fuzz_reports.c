/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes what core/reports.c reads from outside: a report bound as sbctl takes it
 * (sb_report_time_parse: ms, "now", or a time ago like "7d"), a reply result's
 * first_response_ms as the histogram takes it (sb_frt_hist_observe_reply), and
 * sb_duration_human over the numbers found. Invariants: an accepted bound is between 0 and
 * now (a time ago) or the digits given; the histogram counts exactly one sample when it
 * says it did and none otherwise; a duration is short, NUL-terminated and only "0-9dhms <".
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reports.h"

static uint64_t total(const sb_frt_hist_t *h)
{
    uint64_t n = 0;
    for (int c = 0; c < SB_CHANNEL_COUNT; c++)
        for (int i = 0; i <= SB_FRT_BUCKETS; i++)
            n += h->count[c][i];
    return n;
}

static void check_duration(int64_t ms)
{
    char out[32];
    sb_duration_human(ms, out, sizeof(out));
    if (strlen(out) == 0 || strspn(out, "0123456789dhms <") != strlen(out))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    const int64_t now = 1732270000000;
    int64_t t = -1;
    if (sb_report_time_parse(s, now, &t) == 0) {
        bool digits = strspn(s, "0123456789") == strlen(s);
        if (t < 0 || (!digits && t > now) || (digits && t != strtoll(s, NULL, 10)))
            abort();
        check_duration(now - t);
    }
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
    if (j) {
        sb_frt_hist_t h = {0};
        bool counted = sb_frt_hist_observe_reply(&h, j);
        if (total(&h) != (counted ? 1u : 0u))
            abort();
        json_t *ms = json_object_get(j, "first_response_ms");
        if (json_is_integer(ms))
            check_duration(json_integer_value(ms));
        json_decref(j);
    }
    free(s);
    return 0;
}

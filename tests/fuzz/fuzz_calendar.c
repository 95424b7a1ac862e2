/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes core/calendar.c: the `calendar` words (first line of the input), the `holiday`
 * words (second line), then the walk from a start instant and a duration taken from the
 * third line ("<minutes after 2026-01-01> <minutes of open time>"). Zone names reach the
 * real zoneinfo. Invariants: a refused line leaves a one-line reason and no calendar; for
 * an accepted one, the due instant is not before the start, exactly dur of open time lies
 * between them, the calendar is open just before it, next_open is open and nothing is
 * open between the start and it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/calendar.h"

#define MAX_WORDS 64

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_calendar: %s\n", what);
    abort();
}

/* Splits the NUL-terminated line s in place on spaces. */
static int split(char *s, char **argv)
{
    int n = 0;
    for (char *tok = strtok(s, " "); tok && n < MAX_WORDS; tok = strtok(NULL, " "))
        argv[n++] = tok;
    return n;
}

static void walk(const sb_calendar_t *cal, const char *params)
{
    long long start_min = 0, dur_min = 0;
    if (params)
        sscanf(params, "%lld %lld", &start_min, &dur_min);
    start_min %= 60LL * 24 * 366 * 100; /* within a century either side of 2026 */
    dur_min %= 60LL * 24 * 366;
    if (dur_min < 0)
        dur_min = -dur_min;
    int64_t start = 1767225600000LL + start_min * 60000 + (start_min & 1) * 123;
    int64_t dur = dur_min * 60000;
    int64_t due = sb_calendar_add(cal, start, dur);
    if (due != SB_CALENDAR_NEVER) {
        if (due < start)
            fail("due before the start");
        if (sb_calendar_open_ms(cal, start, due) != dur)
            fail("open time between start and due is not the duration");
        if (dur > 0 && !sb_calendar_is_open(cal, due - 1))
            fail("closed just before the due instant");
    }
    int64_t next = sb_calendar_next_open(cal, start);
    if (next != SB_CALENDAR_NEVER) {
        if (next < start || !sb_calendar_is_open(cal, next))
            fail("next_open is not an open instant at or after the start");
        if (sb_calendar_open_ms(cal, start, next) != 0)
            fail("open time before next_open");
    }
    struct tm tm;
    sb_calendar_local(cal, start, &tm);
    if (tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59)
        fail("local time out of range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *lines[3] = {text, NULL, NULL};
    for (int i = 1; i < 3 && lines[i - 1]; i++) {
        char *nl = strchr(lines[i - 1], '\n');
        if (nl) {
            *nl = '\0';
            lines[i] = nl + 1;
        }
    }
    char *argv[MAX_WORDS], *hv[MAX_WORDS], err[256] = "";
    sb_calendar_t *cal = NULL;
    if (sb_calendar_parse(split(lines[0], argv), argv, &cal, err, sizeof(err)) != 0) {
        if (cal || !err[0] || strchr(err, '\n'))
            fail("refused without a one-line reason, or with a calendar");
        free(text);
        return 0;
    }
    if (lines[1]) {
        err[0] = '\0';
        if (sb_calendar_add_holidays(cal, split(lines[1], hv), hv, err, sizeof(err)) != 0 &&
            (!err[0] || strchr(err, '\n')))
            fail("holidays refused without a one-line reason");
    }
    walk(cal, lines[2]);
    sb_calendar_free(cal);
    free(text);
    return 0;
}

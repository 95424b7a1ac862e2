/* SPDX-License-Identifier: MIT */
/*
 * Business-hours calendars (core/calendar.c) over the system zoneinfo (core/tz.c). The
 * table below gives, for a calendar line, its holidays, a start instant and an amount of
 * open time, the instant that amount is used up. Every expected value was worked out by
 * hand from the calendar's rules and the zone's transitions (cross-checked with
 * `TZ=<zone> date -d …` and `zdump -v`), never by running this code. Instants are written
 * with their UTC offset, which is the zone's local time at that instant.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/calendar.h"
#include "core/err.h"

/* "2026-11-27T16:30+01:00", "…T16:30:15Z": ms since the epoch. */
static int64_t at(const char *s)
{
    int y, mo, d, h, mi, sec = 0, oh = 0, om = 0, n = 0;
    char sign = 'Z';
    if (sscanf(s, "%d-%d-%dT%d:%d%n", &y, &mo, &d, &h, &mi, &n) != 5)
        fail_msg("bad instant %s", s);
    const char *p = s + n;
    if (*p == ':') {
        sec = atoi(p + 1);
        p += 3;
    }
    if (*p == '+' || *p == '-') {
        sign = *p;
        if (sscanf(p + 1, "%d:%d", &oh, &om) != 2)
            fail_msg("bad offset in %s", s);
    } else if (*p != 'Z')
        fail_msg("bad instant %s", s);
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t off = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
    return ((int64_t)timegm(&tm) - off) * 1000;
}

/* "1h", "90m", "8h30m", "3d", "0": ms. */
static int64_t dur(const char *s)
{
    int64_t total = 0;
    while (*s) {
        char *end;
        long long v = strtoll(s, &end, 10);
        int64_t unit = *end == 'd' ? 86400000 : *end == 'h' ? 3600000 : *end == 'm' ? 60000 : 1;
        total += v * unit;
        s = *end ? end + 1 : end;
    }
    return total;
}

/* Splits a calendar or holiday line into words (at most 16) in buf. */
static int words(const char *line, char *buf, size_t cap, char **argv)
{
    snprintf(buf, cap, "%s", line);
    int n = 0;
    for (char *tok = strtok(buf, " "); tok && n < 16; tok = strtok(NULL, " "))
        argv[n++] = tok;
    return n;
}

static sb_calendar_t *make(const char *line, const char *holidays)
{
    char buf[512], hbuf[512], err[256] = "";
    char *argv[16], *hv[16];
    sb_calendar_t *cal = NULL;
    int rc = sb_calendar_parse(words(line, buf, sizeof(buf), argv), argv, &cal, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s: %s", line, err);
    if (holidays && *holidays) {
        rc = sb_calendar_add_holidays(cal, words(holidays, hbuf, sizeof(hbuf), hv), hv, err,
                                      sizeof(err));
        if (rc != 0)
            fail_msg("%s: %s", holidays, err);
    }
    return cal;
}

#define BERLIN  "office Europe/Berlin mon-fri 09:00-17:00"
#define NEWYORK "ny America/New_York mon-fri 09:00-17:00"
#define SYDNEY  "syd Australia/Sydney mon-fri 09:00-17:00"
#define NIGHTS  "nite UTC mon-fri 22:00-06:00"
#define SPLIT   "split UTC mon-fri 09:00-12:30,13:30-17:30 sat 10:00-14:00"
#define XMAS    "2026-12-24 2026-12-25 2026-12-31 2027-01-01"

typedef struct {
    const char *what, *line, *holidays, *start, *dur, *due;
} add_case_t;

static const add_case_t cases[] = {
    /* the promise of docs/sla.md */
    {"friday 16:30 + 1h is monday 09:30", BERLIN, "", "2026-11-27T16:30+01:00", "1h",
     "2026-11-30T09:30+01:00"},
    {"inside open time", BERLIN, "", "2026-11-30T10:00+01:00", "2h", "2026-11-30T12:00+01:00"},
    {"before opening", BERLIN, "", "2026-11-30T07:00+01:00", "1h", "2026-11-30T10:00+01:00"},
    {"after closing", BERLIN, "", "2026-11-30T18:00+01:00", "30m", "2026-12-01T09:30+01:00"},
    {"used up exactly at closing", BERLIN, "", "2026-11-27T16:30+01:00", "30m",
     "2026-11-27T17:00+01:00"},
    {"zero inside open time", BERLIN, "", "2026-11-30T10:00+01:00", "0", "2026-11-30T10:00+01:00"},
    {"zero on a saturday: the next opening", BERLIN, "", "2026-11-28T12:00+01:00", "0",
     "2026-11-30T09:00+01:00"},
    {"zero at closing time", BERLIN, "", "2026-11-30T17:00+01:00", "0", "2026-12-01T09:00+01:00"},
    {"three weeks of business time", BERLIN, "", "2026-11-30T09:00+01:00", "120h",
     "2026-12-18T17:00+01:00"},
    {"three weeks across christmas holidays", BERLIN, XMAS, "2026-12-14T09:00+01:00", "120h",
     "2027-01-07T17:00+01:00"},
    {"twelve and a half weeks, across the spring DST change", BERLIN, "", "2026-01-05T09:00+01:00",
     "500h", "2026-04-01T13:00+02:00"},
    {"holidays right after the start", BERLIN, XMAS, "2026-12-23T16:00+01:00", "2h",
     "2026-12-28T10:00+01:00"},
    {"easter: holidays on both sides of a weekend", BERLIN, "2026-04-03 2026-04-06",
     "2026-04-02T16:00+02:00", "2h", "2026-04-07T10:00+02:00"},
    {"a holiday on the saturday of a weekend changes nothing", BERLIN, "2026-04-04",
     "2026-04-03T16:00+02:00", "2h", "2026-04-06T10:00+02:00"},
    {"berlin: the weekend of spring forward", BERLIN, "", "2026-03-27T16:00+01:00", "2h",
     "2026-03-30T10:00+02:00"},
    {"berlin: the weekend of fall back", BERLIN, "", "2026-10-23T16:00+02:00", "2h",
     "2026-10-26T10:00+01:00"},
    {"berlin: a period across the skipped hour is 2h long", "n Europe/Berlin sun 01:00-04:00", "",
     "2026-03-29T01:00+01:00", "2h", "2026-03-29T04:00+02:00"},
    {"berlin: one minute more waits a week", "n Europe/Berlin sun 01:00-04:00", "",
     "2026-03-29T01:00+01:00", "2h1m", "2026-04-05T01:01+02:00"},
    {"berlin: a period across the repeated hour is 4h long", "n Europe/Berlin sun 01:00-04:00", "",
     "2026-10-25T01:00+02:00", "4h", "2026-10-25T04:00+01:00"},
    {"berlin: a period inside the skipped hour does not open that day",
     "gap Europe/Berlin sun 02:00-03:00", "", "2026-03-28T12:00+01:00", "0",
     "2026-04-05T02:00+02:00"},
    {"berlin: a period inside the repeated hour opens twice", "ovl Europe/Berlin sun 02:00-03:00",
     "", "2026-10-25T02:00+02:00", "90m", "2026-10-25T02:30+01:00"},
    {"new york: the weekend of spring forward", NEWYORK, "", "2026-03-06T16:00-05:00", "2h",
     "2026-03-09T10:00-04:00"},
    {"new york: the weekend of fall back", NEWYORK, "", "2026-10-30T16:00-04:00", "2h",
     "2026-11-02T10:00-05:00"},
    {"new york: an overnight period across fall back is 9h", "nyn America/New_York sat 22:00-06:00",
     "", "2026-10-31T22:00-04:00", "9h", "2026-11-01T06:00-05:00"},
    {"new york: an overnight period across spring forward is 7h",
     "nyn America/New_York sat 22:00-06:00", "", "2026-03-07T22:00-05:00", "7h",
     "2026-03-08T06:00-04:00"},
    {"new york: a minute more waits for the next saturday", "nyn America/New_York sat 22:00-06:00",
     "", "2026-03-07T22:00-05:00", "7h1m", "2026-03-14T22:01-04:00"},
    {"sydney: DST ends in april", SYDNEY, "", "2026-04-03T16:00+11:00", "2h",
     "2026-04-06T10:00+10:00"},
    {"sydney: DST starts in october", SYDNEY, "", "2026-10-02T16:00+10:00", "2h",
     "2026-10-05T10:00+11:00"},
    {"sydney: an overnight period across the end of DST is 9h",
     "sydn Australia/Sydney sat 22:00-06:00", "", "2026-04-04T22:00+11:00", "8h30m",
     "2026-04-05T05:30+10:00"},
    {"lord howe: a half-hour DST change", "lh Australia/Lord_Howe sun 01:00-03:00", "",
     "2026-04-05T01:00+11:00", "150m", "2026-04-05T03:00+10:30"},
    {"kolkata (+05:30)", "in Asia/Kolkata mon-fri 10:00-18:00", "", "2026-11-27T17:00+05:30", "2h",
     "2026-11-30T11:00+05:30"},
    {"kolkata: a local holiday", "in Asia/Kolkata mon-fri 10:00-18:00", "2026-11-30",
     "2026-11-27T17:00+05:30", "2h", "2026-12-01T11:00+05:30"},
    {"kathmandu (+05:45), sunday to friday", "np Asia/Kathmandu sun-fri 10:00-17:00", "",
     "2026-11-27T16:00+05:45", "2h", "2026-11-29T11:00+05:45"},
    {"los angeles (west of UTC)", "la America/Los_Angeles mon-fri 08:00-16:00", "",
     "2026-11-27T15:00-08:00", "90m", "2026-11-30T08:30-08:00"},
    {"tokyo (east of UTC)", "jp Asia/Tokyo mon-fri 09:00-18:00", "", "2026-11-30T08:00+09:00",
     "10h", "2026-12-01T10:00+09:00"},
    {"lunch break", SPLIT, "", "2026-11-30T12:00Z", "1h", "2026-11-30T14:00Z"},
    {"friday evening to saturday morning", SPLIT, "", "2026-12-04T17:30Z", "2h",
     "2026-12-05T12:00Z"},
    {"24:00 ends a period", "late UTC mon-fri 20:00-24:00", "", "2026-11-30T23:00Z", "2h",
     "2026-12-01T21:00Z"},
    {"an overnight period belongs to the day it starts", NIGHTS, "", "2026-11-27T23:00Z", "8h",
     "2026-11-30T23:00Z"},
    {"a holiday closes the night that starts on it", NIGHTS, "2026-12-01", "2026-11-30T22:00Z",
     "9h", "2026-12-02T23:00Z"},
    {"fri-mon wraps", "wk UTC fri-mon 10:00-12:00", "", "2026-12-01T10:00Z", "3h",
     "2026-12-05T11:00Z"},
    {"a list of days", "mw UTC mon,wed 09:00-10:00", "", "2026-11-30T09:30Z", "1h",
     "2026-12-02T09:30Z"},
    {"always open", "all UTC mon-sun 00:00-24:00", "", "2026-11-27T05:00Z", "3d",
     "2026-11-30T05:00Z"},
    {"00:00-00:00 is a whole day", "all UTC mon-sun 00:00-00:00", "", "2026-11-27T05:00Z", "3d",
     "2026-11-30T05:00Z"},
    {"overlapping periods unite", "ov UTC mon 09:00-12:00 mon 11:00-13:00", "", "2026-11-30T09:00Z",
     "4h", "2026-11-30T13:00Z"},
    {"overlapping periods are not counted twice", "ov UTC mon 09:00-12:00 mon 11:00-13:00", "",
     "2026-11-30T09:00Z", "4h1m", "2026-12-07T09:01Z"},
    {"a night meets the next morning", "cont UTC mon 20:00-02:00 tue 02:00-04:00", "",
     "2026-11-30T20:00Z", "8h", "2026-12-01T04:00Z"},
    {"berlin 2040 (past the file's transitions: its footer rule)", BERLIN, "",
     "2040-03-23T16:00+01:00", "2h", "2040-03-26T10:00+02:00"},
    {"new york 2099", NEWYORK, "", "2099-10-30T16:00-04:00", "2h", "2099-11-02T10:00-05:00"},
};

static void test_calendar_add_table(void **state)
{
    (void)state;
    size_t n = sizeof(cases) / sizeof(cases[0]);
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const add_case_t *c = &cases[i];
        sb_calendar_t *cal = make(c->line, c->holidays);
        int64_t start = at(c->start), d = dur(c->dur), want = at(c->due);
        int64_t got = sb_calendar_add(cal, start, d);
        if (got != want) {
            struct tm tm;
            time_t t = (time_t)(got / 1000);
            char buf[64];
            strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
            fail_msg("%s: got %s, want %s", c->what, got == SB_CALENDAR_NEVER ? "never" : buf,
                     c->due);
        }
        /* the same amount of open time lies between the start and the due instant */
        if (sb_calendar_open_ms(cal, start, want) != d)
            fail_msg("%s: open_ms %lld, want %lld", c->what,
                     (long long)sb_calendar_open_ms(cal, start, want), (long long)d);
        if (d > 0 && !sb_calendar_is_open(cal, want - 1))
            fail_msg("%s: closed just before the due instant", c->what);
        if (d == 0 && sb_calendar_next_open(cal, start) != want)
            fail_msg("%s: next_open differs", c->what);
        sb_calendar_free(cal);
    }
}

static void test_calendar_is_open_boundaries(void **state)
{
    (void)state;
    sb_calendar_t *cal = make(BERLIN, "");
    assert_false(sb_calendar_is_open(cal, at("2026-11-30T09:00+01:00") - 1));
    assert_true(sb_calendar_is_open(cal, at("2026-11-30T09:00+01:00")));
    assert_true(sb_calendar_is_open(cal, at("2026-11-30T17:00+01:00") - 1));
    assert_false(sb_calendar_is_open(cal, at("2026-11-30T17:00+01:00")));
    assert_false(sb_calendar_is_open(cal, at("2026-11-28T12:00+01:00")));
    sb_calendar_free(cal);

    cal = make("late UTC mon-fri 20:00-24:00", "");
    assert_true(sb_calendar_is_open(cal, at("2026-12-01T00:00Z") - 1));
    assert_false(sb_calendar_is_open(cal, at("2026-12-01T00:00Z")));
    sb_calendar_free(cal);

    /* the night of monday 30 november is open on tuesday morning; tuesday's is a holiday */
    cal = make(NIGHTS, "2026-12-01");
    assert_true(sb_calendar_is_open(cal, at("2026-12-01T03:00Z")));
    assert_false(sb_calendar_is_open(cal, at("2026-12-01T06:00Z")));
    assert_false(sb_calendar_is_open(cal, at("2026-12-01T23:00Z")));
    assert_false(sb_calendar_is_open(cal, at("2026-12-02T03:00Z")));
    assert_true(sb_calendar_is_open(cal, at("2026-12-02T22:00Z")));
    sb_calendar_free(cal);

    assert_true(sb_calendar_is_open(NULL, 0));
}

static void test_calendar_open_ms(void **state)
{
    (void)state;
    sb_calendar_t *cal = make(BERLIN, "");
    int64_t fri = at("2026-11-27T16:30+01:00"), mon = at("2026-11-30T09:30+01:00");
    assert_int_equal(sb_calendar_open_ms(cal, fri, mon), dur("1h"));
    assert_int_equal(sb_calendar_open_ms(cal, mon, fri), 0); /* backwards: nothing */
    assert_int_equal(sb_calendar_open_ms(cal, fri, fri), 0);
    /* a week from friday 16:30: 30 min + 4 x 8 h + 7 h 30 min */
    assert_int_equal(sb_calendar_open_ms(cal, fri, fri + dur("7d")), dur("40h"));
    /* a whole year of it, holidays aside: 52 weeks and the first two days of 2027's week */
    assert_int_equal(
        sb_calendar_open_ms(cal, at("2026-01-01T00:00+01:00"), at("2027-01-01T00:00+01:00")),
        dur("2088h")); /* 261 working days in 2026 */
    sb_calendar_free(cal);

    cal = make("n Europe/Berlin sun 01:00-04:00", "");
    assert_int_equal(sb_calendar_open_ms(cal, at("2026-03-28T00:00Z"), at("2026-03-30T00:00Z")),
                     dur("2h"));
    assert_int_equal(sb_calendar_open_ms(cal, at("2026-10-24T00:00Z"), at("2026-10-26T00:00Z")),
                     dur("4h"));
    sb_calendar_free(cal);

    cal = make("nyn America/New_York sat 22:00-06:00", "");
    assert_int_equal(sb_calendar_open_ms(cal, at("2026-10-31T12:00Z"), at("2026-11-02T00:00Z")),
                     dur("9h"));
    sb_calendar_free(cal);
    assert_int_equal(sb_calendar_open_ms(NULL, 1000, 5000), 4000);
}

static void test_calendar_next_open(void **state)
{
    (void)state;
    sb_calendar_t *cal = make(BERLIN, "2026-11-30");
    /* saturday, monday a holiday: tuesday 09:00 */
    assert_int_equal(sb_calendar_next_open(cal, at("2026-11-28T12:00+01:00")),
                     at("2026-12-01T09:00+01:00"));
    assert_int_equal(sb_calendar_next_open(cal, at("2026-12-01T11:11+01:00")),
                     at("2026-12-01T11:11+01:00"));
    assert_int_equal(sb_calendar_next_open(cal, at("2026-12-01T17:00+01:00")),
                     at("2026-12-02T09:00+01:00"));
    sb_calendar_free(cal);
    assert_int_equal(sb_calendar_next_open(NULL, 42), 42);
}

static void test_calendar_never(void **state)
{
    (void)state;
    sb_calendar_t *cal = make("rare UTC mon 09:00-10:00", "");
    /* one hour a week: 600 hours take more than 10 years */
    assert_true(sb_calendar_add(cal, at("2026-11-30T00:00Z"), dur("600h")) == SB_CALENDAR_NEVER);
    assert_int_equal(sb_calendar_add(cal, at("2026-11-30T00:00Z"), dur("500h")),
                     at("2036-06-23T10:00Z")); /* the 500th monday, 499 weeks on */
    sb_calendar_free(cal);
    assert_int_equal(sb_calendar_add(NULL, 1000, 500), 1500);
}

static void test_calendar_local(void **state)
{
    (void)state;
    sb_calendar_t *cal = make("np Asia/Kathmandu sun-fri 10:00-17:00", "");
    struct tm tm;
    sb_calendar_local(cal, at("2026-11-27T16:00+05:45") + 999, &tm);
    assert_int_equal(tm.tm_year, 126);
    assert_int_equal(tm.tm_mon, 10);
    assert_int_equal(tm.tm_mday, 27);
    assert_int_equal(tm.tm_hour, 16);
    assert_int_equal(tm.tm_min, 0);
    assert_int_equal(tm.tm_sec, 0);
    assert_int_equal(tm.tm_wday, 5);
    assert_int_equal(tm.tm_gmtoff, 5 * 3600 + 45 * 60);
    assert_null(tm.tm_zone);
    assert_string_equal(sb_calendar_name(cal), "np");
    sb_calendar_free(cal);

    cal = make(NEWYORK, "");
    sb_calendar_local(cal, at("2026-11-01T01:30-05:00"), &tm); /* the second 01:30 */
    assert_int_equal(tm.tm_hour, 1);
    assert_int_equal(tm.tm_min, 30);
    assert_int_equal(tm.tm_gmtoff, -5 * 3600);
    assert_int_equal(tm.tm_isdst, 0);
    sb_calendar_local(cal, at("2026-11-01T01:30-04:00"), &tm); /* the first */
    assert_int_equal(tm.tm_gmtoff, -4 * 3600);
    assert_int_equal(tm.tm_isdst, 1);
    sb_calendar_free(cal);
}

static void refused(const char *line, const char *why)
{
    char buf[512], err[256] = "";
    char *argv[16];
    sb_calendar_t *cal = (sb_calendar_t *)1;
    int rc = sb_calendar_parse(words(line, buf, sizeof(buf), argv), argv, &cal, err, sizeof(err));
    if (rc != SB_EINVAL || cal != NULL || strcmp(err, why) != 0)
        fail_msg("%s: rc %d err '%s', want '%s'", line, rc, err, why);
}

static void test_calendar_parse_refuses(void **state)
{
    (void)state;
    refused("c UTC", "no open time");
    refused("c Europe/Berln mon 09:00-10:00", "unknown time zone Europe/Berln");
    refused("c ../etc/passwd mon 09:00-10:00", "bad time zone name ../etc/passwd");
    refused("c /etc/localtime mon 09:00-10:00", "bad time zone name /etc/localtime");
    refused("c UTC mun-fri 09:00-10:00", "bad days mun-fri");
    refused("c UTC mon-fri,,sat 09:00-10:00", "bad days mon-fri,,sat");
    refused("c UTC monday 09:00-10:00", "bad days monday");
    refused("c UTC mon 25:00-26:00", "bad range 25:00-26:00");
    refused("c UTC mon 09:60-10:00", "bad range 09:60-10:00");
    refused("c UTC mon 24:00-05:00", "bad range 24:00-05:00");
    refused("c UTC mon 09:00-24:01", "bad range 09:00-24:01");
    refused("c UTC mon 9:00-10:00", "bad range 9:00-10:00");
    refused("c UTC mon 09:00-10:00,", "bad range ");
    refused("c UTC mon 09:00-10:00 tue", "missing open periods after tue");
    refused("c", "calendar needs a name, a time zone and open periods");

    sb_calendar_t *cal = make(BERLIN, "");
    char err[256];
    char d1[] = "2026-12-24", d2[] = "2026-02-29", d3[] = "2026-13-01", d4[] = "2028-02-29";
    char *bad[] = {d1, d2};
    assert_int_equal(sb_calendar_add_holidays(cal, 2, bad, err, sizeof(err)), SB_EINVAL);
    assert_string_equal(err, "bad date 2026-02-29");
    char *bad2[] = {d3};
    assert_int_equal(sb_calendar_add_holidays(cal, 1, bad2, err, sizeof(err)), SB_EINVAL);
    assert_string_equal(err, "bad date 2026-13-01");
    /* a refused line adds none of its dates: monday 2026-12-28 is still open */
    char *good[] = {d4};
    assert_int_equal(sb_calendar_add_holidays(cal, 1, good, err, sizeof(err)), 0);
    assert_true(sb_calendar_is_open(cal, at("2026-12-24T10:00+01:00")));
    assert_false(sb_calendar_is_open(cal, at("2028-02-29T10:00+01:00")));
    sb_calendar_free(cal);
    sb_calendar_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calendar_add_table),
        cmocka_unit_test(test_calendar_is_open_boundaries),
        cmocka_unit_test(test_calendar_open_ms),
        cmocka_unit_test(test_calendar_next_open),
        cmocka_unit_test(test_calendar_never),
        cmocka_unit_test(test_calendar_local),
        cmocka_unit_test(test_calendar_parse_refuses),
    };
    return cmocka_run_group_tests_name("core/calendar", tests, NULL, NULL);
}

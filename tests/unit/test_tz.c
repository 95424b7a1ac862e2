/* SPDX-License-Identifier: MIT */
/*
 * The zoneinfo reader (core/tz.c): offsets around known transitions of the system's
 * TZif files, the POSIX TZ footer rules that take over after a file's last transition
 * (2040, 2099), TZ strings on their own, and files that must be refused. Expected values
 * come from `zdump -v` and `TZ=<zone> date`, not from this code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/tz.h"

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static sb_tz_t *load(const char *name)
{
    sb_tz_t *tz = NULL;
    char err[256] = "";
    if (sb_tz_load(name, &tz, err, sizeof(err)) != 0)
        fail_msg("%s: %s", name, err);
    assert_string_equal(sb_tz_name(tz), name);
    return tz;
}

/* The offset changes from `before` to `after` exactly at t. */
static void change(const sb_tz_t *tz, int64_t t, int32_t before, int32_t after)
{
    assert_int_equal(sb_tz_offset(tz, t - 1), before);
    assert_int_equal(sb_tz_offset(tz, t), after);
    int64_t next = 0;
    assert_int_equal(sb_tz_next_transition(tz, t - 1, &next), 0);
    assert_int_equal(next, t);
}

static void test_tz_transitions_2026(void **state)
{
    (void)state;
    sb_tz_t *tz = load("Europe/Berlin");
    change(tz, utc(2026, 3, 29, 1, 0, 0), 3600, 7200);
    change(tz, utc(2026, 10, 25, 1, 0, 0), 7200, 3600);
    assert_false(sb_tz_isdst(tz, utc(2026, 1, 1, 0, 0, 0)));
    assert_true(sb_tz_isdst(tz, utc(2026, 7, 1, 0, 0, 0)));
    int64_t next;
    assert_int_equal(sb_tz_next_transition(tz, utc(2026, 1, 1, 0, 0, 0), &next), 0);
    assert_int_equal(next, utc(2026, 3, 29, 1, 0, 0));
    sb_tz_free(tz);

    tz = load("America/New_York");
    change(tz, utc(2026, 3, 8, 7, 0, 0), -18000, -14400);
    change(tz, utc(2026, 11, 1, 6, 0, 0), -14400, -18000);
    sb_tz_free(tz);

    tz = load("Australia/Sydney"); /* southern: summer time ends in april */
    change(tz, utc(2026, 4, 4, 16, 0, 0), 39600, 36000);
    change(tz, utc(2026, 10, 3, 16, 0, 0), 36000, 39600);
    sb_tz_free(tz);

    tz = load("Asia/Kathmandu"); /* +05:30 until 1986, then +05:45 */
    change(tz, utc(1985, 12, 31, 18, 30, 0), 19800, 20700);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 6, 1, 0, 0, 0)), 20700);
    assert_int_equal(sb_tz_offset(tz, utc(2099, 6, 1, 0, 0, 0)), 20700);
    sb_tz_free(tz);

    tz = load("Asia/Kolkata");
    assert_int_equal(sb_tz_offset(tz, utc(2026, 6, 1, 0, 0, 0)), 19800);
    sb_tz_free(tz);

    tz = load("UTC");
    assert_int_equal(sb_tz_offset(tz, 0), 0);
    assert_int_equal(sb_tz_next_transition(tz, 0, &next), SB_ENOTFOUND);
    sb_tz_free(tz);
}

/* Debian's files list transitions up to 2037; later years come from the footer rule. */
static void test_tz_footer_rule_2040_2099(void **state)
{
    (void)state;
    sb_tz_t *tz = load("Europe/Berlin");
    change(tz, utc(2040, 3, 25, 1, 0, 0), 3600, 7200);
    change(tz, utc(2040, 10, 28, 1, 0, 0), 7200, 3600);
    change(tz, utc(2099, 3, 29, 1, 0, 0), 3600, 7200);
    change(tz, utc(2099, 10, 25, 1, 0, 0), 7200, 3600);
    sb_tz_free(tz);

    tz = load("America/New_York");
    change(tz, utc(2040, 3, 11, 7, 0, 0), -18000, -14400);
    change(tz, utc(2040, 11, 4, 6, 0, 0), -14400, -18000);
    change(tz, utc(2099, 3, 8, 7, 0, 0), -18000, -14400);
    change(tz, utc(2099, 11, 1, 6, 0, 0), -14400, -18000);
    sb_tz_free(tz);
}

static sb_tz_t *posix(const char *s)
{
    sb_tz_t *tz = NULL;
    char err[256] = "";
    if (sb_tz_posix(s, strlen(s), &tz, err, sizeof(err)) != 0)
        fail_msg("%s: %s", s, err);
    return tz;
}

static void test_tz_posix_strings(void **state)
{
    (void)state;
    sb_tz_t *tz = posix("CET-1CEST,M3.5.0,M10.5.0/3");
    change(tz, utc(2040, 3, 25, 1, 0, 0), 3600, 7200);
    change(tz, utc(2040, 10, 28, 1, 0, 0), 7200, 3600);
    sb_tz_free(tz);

    tz = posix("<+0330>-3:30");
    assert_int_equal(sb_tz_offset(tz, utc(2040, 1, 1, 0, 0, 0)), 12600);
    sb_tz_free(tz);

    tz = posix("<-03>3");
    assert_int_equal(sb_tz_offset(tz, 0), -10800);
    sb_tz_free(tz);

    /* southern hemisphere: DST from october to april (Sydney) */
    tz = posix("AEST-10AEDT,M10.1.0,M4.1.0/3");
    change(tz, utc(2050, 4, 2, 16, 0, 0), 39600, 36000); /* sunday 3 april 2050, 03:00 */
    change(tz, utc(2050, 10, 1, 16, 0, 0), 36000, 39600);
    sb_tz_free(tz);

    /* Jn never counts 29 February: J60 is 1 March, even in 2028 */
    tz = posix("AAA0BBB,J60/0,J300/0");
    change(tz, utc(2028, 3, 1, 0, 0, 0), 0, 3600);
    sb_tz_free(tz);
    /* n counts it: day 59 is 29 February in a leap year */
    tz = posix("AAA0BBB,59/0,300/0");
    change(tz, utc(2028, 2, 29, 0, 0, 0), 0, 3600);
    change(tz, utc(2027, 3, 1, 0, 0, 0), 0, 3600);
    sb_tz_free(tz);

    /* version 3: negative and >24 h times (Greenland's rule: -1:00 local of the last sunday,
     * i.e. 23:00 local on the saturday before it; Israel's: 26:00 of thursday) */
    tz = posix("<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    change(tz, utc(2040, 3, 25, 1, 0, 0), -7200, -3600);
    sb_tz_free(tz);
    tz = posix("IST-2IDT,M3.4.4/26,M10.5.0");
    change(tz, utc(2040, 3, 23, 0, 0, 0), 7200, 10800); /* friday 23 march 02:00 IST */
    sb_tz_free(tz);

    /* DST all year (a start at 0 and an end past the year) */
    tz = posix("EST5EDT,0/0,J365/25");
    assert_int_equal(sb_tz_offset(tz, utc(2040, 1, 1, 12, 0, 0)), -14400);
    assert_int_equal(sb_tz_offset(tz, utc(2040, 7, 1, 12, 0, 0)), -14400);
    assert_int_equal(sb_tz_offset(tz, utc(2040, 12, 31, 12, 0, 0)), -14400);
    sb_tz_free(tz);
}

static void bad_posix(const char *s)
{
    sb_tz_t *tz = (sb_tz_t *)1;
    char err[256];
    if (sb_tz_posix(s, strlen(s), &tz, err, sizeof(err)) != SB_EINVAL || tz != NULL)
        fail_msg("accepted %s", s);
}

static void test_tz_posix_refused(void **state)
{
    (void)state;
    bad_posix("");
    bad_posix("CE-1");                      /* name too short */
    bad_posix("CET");                       /* no offset */
    bad_posix("CET-1CEST,M3.5.0");          /* one rule date */
    bad_posix("CET-1CEST,M13.5.0,M10.5.0"); /* month 13 */
    bad_posix("CET-1CEST,M3.6.0,M10.5.0");  /* week 6 */
    bad_posix("CET-1CEST,M3.5.7,M10.5.0");  /* day 7 */
    bad_posix("CET-1CEST,J0,J10");          /* J starts at 1 */
    bad_posix("CET-1CEST,M3.5.0/168,M10.5.0");
    bad_posix("CET-25");
    bad_posix("<+03-3");
    bad_posix("UTC0 ");
}

static unsigned char *slurp(const char *name, size_t *len)
{
    char path[512];
    const char *dir = getenv("TZDIR");
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = sb_malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static void test_tz_refuses_bad_files(void **state)
{
    (void)state;
    size_t len;
    unsigned char *data = slurp("Europe/Berlin", &len);
    sb_tz_t *tz = NULL;
    char err[256];
    assert_int_equal(sb_tz_parse(data, len, &tz, err, sizeof(err)), 0);
    assert_int_equal(sb_tz_offset(tz, utc(2026, 7, 1, 0, 0, 0)), 7200);
    sb_tz_free(tz);
    /* every truncation is refused, none reads past the end (ASan) */
    for (size_t n = 0; n < len; n++) {
        unsigned char *copy = sb_malloc(n ? n : 1);
        memcpy(copy, data, n);
        tz = (sb_tz_t *)1;
        if (sb_tz_parse(copy, n, &tz, err, sizeof(err)) == 0)
            fail_msg("a TZif file cut to %zu of %zu bytes was accepted", n, len);
        assert_null(tz);
        sb_free(copy);
    }
    /* garbage, and a header with absurd counts */
    const unsigned char junk[] = "not a zoneinfo file at all, just some text of 60 bytes....";
    assert_int_equal(sb_tz_parse(junk, sizeof(junk), &tz, err, sizeof(err)), SB_EINVAL);
    assert_string_equal(err, "not a TZif file");
    data[35] = 0xff; /* the v1 block's timecnt */
    assert_int_not_equal(sb_tz_parse(data, len, &tz, err, sizeof(err)), 0);
    sb_free(data);

    assert_int_equal(sb_tz_load("Europe/../../etc/passwd", &tz, err, sizeof(err)), SB_EINVAL);
    assert_int_equal(sb_tz_load("Europe/Ber lin", &tz, err, sizeof(err)), SB_EINVAL);
    assert_int_equal(sb_tz_load("/etc/localtime", &tz, err, sizeof(err)), SB_EINVAL);
    assert_int_equal(sb_tz_load("Nowhere/Atlantis", &tz, err, sizeof(err)), SB_EINVAL);
    assert_string_equal(err, "unknown time zone Nowhere/Atlantis");
    assert_int_equal(sb_tz_load("zone.tab", &tz, err, sizeof(err)), SB_EINVAL); /* not TZif */
    assert_null(tz);
    sb_tz_free(NULL);
}

static void test_tz_civil_days(void **state)
{
    (void)state;
    assert_int_equal(sb_tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(sb_tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(sb_tz_days_from_civil(1969, 12, 31), -1);
    int64_t y;
    unsigned m, d;
    sb_tz_civil_from_days(20784, &y, &m, &d); /* 2026-11-27 */
    assert_int_equal(y, 2026);
    assert_int_equal(m, 11);
    assert_int_equal(d, 27);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tz_transitions_2026),
        cmocka_unit_test(test_tz_footer_rule_2040_2099),
        cmocka_unit_test(test_tz_posix_strings),
        cmocka_unit_test(test_tz_posix_refused),
        cmocka_unit_test(test_tz_refuses_bad_files),
        cmocka_unit_test(test_tz_civil_days),
    };
    return cmocka_run_group_tests_name("core/tz", tests, NULL, NULL);
}

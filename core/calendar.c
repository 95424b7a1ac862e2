/* SPDX-License-Identifier: MIT */
/*
 * Business-hours calendars (core/calendar.h, docs/sla.md "Configuration"): the parser of
 * `calendar` and `holiday` words, and the walk that turns "dur of open time after start"
 * into an instant. Semantics live in the header; here, how:
 *
 * A period [s, e) of local date D opens the UTC instants whose wall time (UTC + the zone's
 * offset at that instant) lies in [D s, D e). Between two transitions of the zone the
 * offset is constant, so each such stretch contributes one interval [D s - off, D e - off)
 * cut to the stretch: a skipped hour yields nothing, a repeated one yields its hour twice.
 * The walk gathers the open intervals of a week of UTC time at a time (every date that can
 * reach into it, holidays left out), sorts and merges them (overlapping periods, an
 * overnight period meeting the next day's, simply unite), and consumes them in order.
 * A week that no holiday and no zone transition can reach is not gathered: its open time
 * is the weekly total computed at parse time (long targets cost a few µs, not one per day).
 */
#include "core/calendar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/tz.h"
#include "core/util.h"

#define CAL_MAX_PERIODS  32               /* per weekday */
#define CAL_MAX_HOLIDAYS 100000           /* dates, over all holiday lines */
#define CAL_CHUNK_S      (7 * 86400)      /* UTC seconds gathered at a time */
#define CAL_HORIZON_S    (3660 * 86400LL) /* "within 10 years" */
/* Instants outside years 1…9999 are not walked (ms). */
#define CAL_MIN_MS (-62135596800000LL)
#define CAL_MAX_MS (253402300799999LL)

typedef struct {
    int16_t start, end; /* minutes of the day; end > start, up to 2880 for an overnight one */
} period_t;

typedef struct {
    int64_t a, b; /* ms, [a, b) */
} span_t;

typedef struct {
    span_t *v;
    size_t n, cap;
} spans_t;

struct sb_calendar {
    char *name;
    sb_tz_t *tz;
    period_t days[7][CAL_MAX_PERIODS]; /* 0 = Monday */
    int ndays[7];
    int64_t *holidays; /* day numbers since 1970-01-01, ascending, unique */
    size_t nholidays;
    int64_t week_ms; /* open time of a week without holidays or zone transitions */
};

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

static int fail(char *err, size_t errlen, const char *what, const char *word)
{
    if (errlen)
        snprintf(err, errlen, "%s%s%s", what, word ? " " : "", word ? word : "");
    return SB_EINVAL;
}

/* ---- Parsing ---- */

static int day_index(const char *s, size_t n)
{
    for (int i = 0; i < 7; i++)
        if (n == 3 && strncmp(s, day_names[i], 3) == 0)
            return i;
    return -1;
}

/* "mon-fri", "fri-mon", "mon,wed", "sat": sets mask bits (bit 0 = Monday). */
static bool parse_days(const char *w, unsigned *mask)
{
    *mask = 0;
    const char *p = w;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *dash = memchr(p, '-', n);
        int a = day_index(p, dash ? (size_t)(dash - p) : n);
        int b = dash ? day_index(dash + 1, n - (size_t)(dash - p) - 1) : a;
        if (a < 0 || b < 0)
            return false;
        for (int i = a;; i = (i + 1) % 7) {
            *mask |= 1u << i;
            if (i == b)
                break;
        }
        if (!comma)
            return true;
        p = comma + 1;
    }
}

/* HH:MM (00:00…23:59, or 24:00 when allow24): minutes, or -1. */
static int parse_hhmm(const char *s, size_t n, bool allow24)
{
    if (n != 5 || s[2] != ':')
        return -1;
    for (int i = 0; i < 5; i++)
        if (i != 2 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!allow24 || m != 0)))
        return -1;
    return h * 60 + m;
}

/* "09:00-12:30,13:30-17:30" into the days of mask. */
static int parse_ranges(sb_calendar_t *cal, unsigned mask, const char *w, char *err, size_t errlen)
{
    const char *p = w;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int s = n == 11 && p[5] == '-' ? parse_hhmm(p, 5, false) : -1;
        int e = s >= 0 ? parse_hhmm(p + 6, 5, true) : -1;
        if ((s < 0 || e < 0) && n == 0)
            return fail(err, errlen, "bad ranges", w);
        if (s < 0 || e < 0) {
            char word[64];
            snprintf(word, sizeof(word), "%.*s", (int)(n < 60 ? n : 60), p);
            return fail(err, errlen, "bad range", word);
        }
        if (e <= s)
            e += 1440; /* crosses midnight: ends on the next day */
        for (int d = 0; d < 7; d++) {
            if (!(mask & (1u << d)))
                continue;
            if (cal->ndays[d] == CAL_MAX_PERIODS)
                return fail(err, errlen, "too many periods on", day_names[d]);
            cal->days[d][cal->ndays[d]++] = (period_t){(int16_t)s, (int16_t)e};
        }
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* The open minutes of a week at a fixed offset: the union of every period, mod 7 days. */
static int64_t week_open_ms(const sb_calendar_t *cal)
{
    enum { WEEK_MIN = 7 * 1440 };
    unsigned char *open = sb_calloc(WEEK_MIN, 1);
    int64_t n = 0;
    for (int d = 0; d < 7; d++)
        for (int i = 0; i < cal->ndays[d]; i++)
            for (int m = cal->days[d][i].start; m < cal->days[d][i].end; m++) {
                int k = (d * 1440 + m) % WEEK_MIN;
                n += !open[k];
                open[k] = 1;
            }
    sb_free(open);
    return n * 60000;
}

int sb_calendar_parse(int argc, char *const *argv, sb_calendar_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (argc < 2)
        return fail(err, errlen, "calendar needs a name, a time zone and open periods", NULL);
    sb_calendar_t *cal = sb_calloc(1, sizeof(*cal));
    cal->name = sb_strdup(argv[0]);
    int rc = sb_tz_load(argv[1], &cal->tz, err, errlen);
    if (rc)
        goto fail;
    for (int i = 2; i < argc; i += 2) {
        unsigned mask;
        if (!parse_days(argv[i], &mask)) {
            rc = fail(err, errlen, "bad days", argv[i]);
            goto fail;
        }
        if (i + 1 >= argc) {
            rc = fail(err, errlen, "missing open periods after", argv[i]);
            goto fail;
        }
        rc = parse_ranges(cal, mask, argv[i + 1], err, errlen);
        if (rc)
            goto fail;
    }
    bool any = false;
    for (int d = 0; d < 7; d++)
        any |= cal->ndays[d] > 0;
    if (!any) {
        rc = fail(err, errlen, "no open time", NULL);
        goto fail;
    }
    cal->week_ms = week_open_ms(cal);
    *out = cal;
    return 0;
fail:
    sb_calendar_free(cal);
    return rc;
}

static bool parse_date(const char *w, int64_t *day)
{
    if (strlen(w) != 10 || w[4] != '-' || w[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (w[i] < '0' || w[i] > '9'))
            return false;
    int y = atoi(w), m = atoi(w + 5), d = atoi(w + 8);
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return false;
    *day = sb_tz_days_from_civil(y, (unsigned)m, (unsigned)d);
    return true;
}

int sb_calendar_add_holidays(sb_calendar_t *cal, int argc, char *const *argv, char *err,
                             size_t errlen)
{
    if (argc < 0 || cal->nholidays + (size_t)argc > CAL_MAX_HOLIDAYS)
        return fail(err, errlen, "too many holidays for", cal->name);
    for (int i = 0; i < argc; i++) {
        int64_t day;
        if (!parse_date(argv[i], &day))
            return fail(err, errlen, "bad date", argv[i]);
    }
    cal->holidays =
        sb_realloc(cal->holidays, (cal->nholidays + (size_t)argc + 1) * sizeof(int64_t));
    for (int i = 0; i < argc; i++)
        parse_date(argv[i], &cal->holidays[cal->nholidays++]);
    qsort(cal->holidays, cal->nholidays, sizeof(int64_t), sb_cmp_i64);
    size_t n = 0;
    for (size_t i = 0; i < cal->nholidays; i++)
        if (n == 0 || cal->holidays[n - 1] != cal->holidays[i])
            cal->holidays[n++] = cal->holidays[i];
    cal->nholidays = n;
    return 0;
}

void sb_calendar_free(sb_calendar_t *cal)
{
    if (!cal)
        return;
    sb_free(cal->name);
    sb_tz_free(cal->tz);
    sb_free(cal->holidays);
    sb_free(cal);
}

const char *sb_calendar_name(const sb_calendar_t *cal)
{
    return cal->name;
}

/* ---- Open intervals ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_holiday(const sb_calendar_t *cal, int64_t day)
{
    return cal->nholidays &&
           bsearch(&day, cal->holidays, cal->nholidays, sizeof(int64_t), sb_cmp_i64) != NULL;
}

static void push(spans_t *s, int64_t a, int64_t b)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->v = sb_realloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = (span_t){a, b};
}

/*
 * The instants whose wall time lies in [wa, wb) (local seconds), cut to [from, to) (ms):
 * one interval per stretch of constant offset.
 */
static void wall_to_utc(const sb_tz_t *tz, int64_t wa, int64_t wb, int64_t from, int64_t to,
                        spans_t *out)
{
    int64_t t = wa - SB_TZ_MAX_OFFSET, hi = wb + SB_TZ_MAX_OFFSET;
    while (t < hi) {
        int32_t off = sb_tz_offset(tz, t);
        int64_t next;
        if (sb_tz_next_transition(tz, t, &next) != 0 || next > hi)
            next = hi;
        int64_t a = wa - off > t ? wa - off : t, b = wb - off < next ? wb - off : next;
        if (a < b) {
            int64_t ams = a * 1000 > from ? a * 1000 : from, bms = b * 1000 < to ? b * 1000 : to;
            if (ams < bms)
                push(out, ams, bms);
        }
        t = next;
    }
}

static int cmp_span(const void *a, const void *b)
{
    const span_t *x = a, *y = b;
    return (x->a > y->a) - (x->a < y->a);
}

/* The open time in [from, to) (ms, at most a few weeks apart): sorted, merged intervals. */
static void gather(const sb_calendar_t *cal, int64_t from, int64_t to, spans_t *out)
{
    out->n = 0;
    int64_t from_s = floor_div(from, 1000), to_s = floor_div(to, 1000) + 1;
    /* a date's periods lie within [D 00:00 - max offset, D+2 00:00 + max offset) */
    int64_t d0 = floor_div(from_s - SB_TZ_MAX_OFFSET, 86400) - 2;
    int64_t d1 = floor_div(to_s + SB_TZ_MAX_OFFSET, 86400) + 1;
    for (int64_t d = d0; d <= d1; d++) {
        int wd = (int)(((d + 3) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
        if (cal->ndays[wd] == 0 || is_holiday(cal, d))
            continue;
        for (int i = 0; i < cal->ndays[wd]; i++) {
            const period_t *p = &cal->days[wd][i];
            wall_to_utc(cal->tz, d * 86400 + p->start * 60, d * 86400 + p->end * 60, from, to, out);
        }
    }
    if (out->n < 2)
        return;
    qsort(out->v, out->n, sizeof(*out->v), cmp_span);
    size_t n = 0;
    for (size_t i = 0; i < out->n; i++) {
        if (n > 0 && out->v[i].a <= out->v[n - 1].b) {
            if (out->v[i].b > out->v[n - 1].b)
                out->v[n - 1].b = out->v[i].b;
        } else
            out->v[n++] = out->v[i];
    }
    out->n = n;
}

/*
 * Whether the week [from, from + 7 days) is plain: no holiday among the dates that can
 * reach into it and no zone transition while they can. Its open time is then week_ms: the
 * weekly pattern at one offset is periodic, and any 7 days of it hold one period.
 */
static bool plain_week(const sb_calendar_t *cal, int64_t from)
{
    int64_t from_s = floor_div(from, 1000), to_s = from_s + CAL_CHUNK_S + 1;
    int64_t d0 = floor_div(from_s - SB_TZ_MAX_OFFSET, 86400) - 2;
    int64_t d1 = floor_div(to_s + SB_TZ_MAX_OFFSET, 86400) + 1;
    size_t lo = 0, hi = cal->nholidays; /* the first holiday >= d0 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (cal->holidays[mid] < d0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < cal->nholidays && cal->holidays[lo] <= d1)
        return false;
    int64_t next;
    return sb_tz_next_transition(cal->tz, d0 * 86400 - SB_TZ_MAX_OFFSET, &next) != 0 ||
           next > (d1 + 2) * 86400 + SB_TZ_MAX_OFFSET;
}

static int64_t clamp_ms(int64_t t)
{
    return t < CAL_MIN_MS ? CAL_MIN_MS : t > CAL_MAX_MS ? CAL_MAX_MS : t;
}

int64_t sb_calendar_add(const sb_calendar_t *cal, int64_t start_ms, int64_t dur_ms)
{
    if (dur_ms < 0)
        dur_ms = 0;
    if (!cal)
        return start_ms > INT64_MAX - dur_ms ? SB_CALENDAR_NEVER : start_ms + dur_ms;
    if (start_ms > CAL_MAX_MS)
        return SB_CALENDAR_NEVER;
    int64_t t = clamp_ms(start_ms), left = dur_ms, horizon = t + CAL_HORIZON_S * 1000;
    int64_t due = SB_CALENDAR_NEVER;
    spans_t s = {0};
    while (t < horizon && t < CAL_MAX_MS && due == SB_CALENDAR_NEVER) {
        int64_t end = t + CAL_CHUNK_S * 1000LL;
        if (left > cal->week_ms && plain_week(cal, t)) {
            left -= cal->week_ms;
            t = end;
            continue;
        }
        gather(cal, t, end, &s);
        for (size_t i = 0; i < s.n; i++) {
            int64_t len = s.v[i].b - s.v[i].a;
            if (left <= len) {
                due = s.v[i].a + left;
                break;
            }
            left -= len;
        }
        t = end;
    }
    sb_free(s.v);
    return due;
}

int64_t sb_calendar_open_ms(const sb_calendar_t *cal, int64_t from_ms, int64_t to_ms)
{
    if (to_ms <= from_ms)
        return 0;
    if (!cal)
        return from_ms < 0 && to_ms > INT64_MAX + from_ms ? INT64_MAX : to_ms - from_ms;
    from_ms = clamp_ms(from_ms), to_ms = clamp_ms(to_ms);
    int64_t sum = 0;
    spans_t s = {0};
    for (int64_t t = from_ms; t < to_ms;) {
        int64_t end = to_ms - t > CAL_CHUNK_S * 1000LL ? t + CAL_CHUNK_S * 1000LL : to_ms;
        if (end - t == CAL_CHUNK_S * 1000LL && plain_week(cal, t)) {
            sum += cal->week_ms;
            t = end;
            continue;
        }
        gather(cal, t, end, &s);
        for (size_t i = 0; i < s.n; i++)
            sum += s.v[i].b - s.v[i].a;
        t = end;
    }
    sb_free(s.v);
    return sum;
}

bool sb_calendar_is_open(const sb_calendar_t *cal, int64_t t_ms)
{
    if (!cal)
        return true;
    return sb_calendar_open_ms(cal, t_ms, t_ms + 1) == 1;
}

int64_t sb_calendar_next_open(const sb_calendar_t *cal, int64_t t_ms)
{
    return sb_calendar_add(cal, t_ms, 0);
}

void sb_calendar_local(const sb_calendar_t *cal, int64_t t_ms, struct tm *out)
{
    int64_t s = floor_div(t_ms, 1000);
    int32_t off = cal ? sb_tz_offset(cal->tz, s) : 0;
    int64_t local = s + off, day = floor_div(local, 86400), sod = local - day * 86400;
    int64_t y;
    unsigned m, d;
    sb_tz_civil_from_days(day, &y, &m, &d);
    memset(out, 0, sizeof(*out));
    out->tm_year = (int)(y - 1900);
    out->tm_mon = (int)m - 1;
    out->tm_mday = (int)d;
    out->tm_hour = (int)(sod / 3600);
    out->tm_min = (int)(sod / 60 % 60);
    out->tm_sec = (int)(sod % 60);
    out->tm_wday = (int)(((day + 4) % 7 + 7) % 7);
    out->tm_yday = (int)(day - sb_tz_days_from_civil(y, 1, 1));
    out->tm_isdst = cal ? sb_tz_isdst(cal->tz, s) : 0;
    out->tm_gmtoff = off;
    out->tm_zone = NULL;
}

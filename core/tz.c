/* SPDX-License-Identifier: MIT */
/*
 * A reader of the system zoneinfo (core/tz.h): TZif files (RFC 8536, versions 1 to 3) and
 * the POSIX TZ strings of their footers (POSIX.1-2017 §8.3 "TZ", with the RFC 8536 §3.3.1
 * extension of transition hours up to ±167). It owns nothing global: a zone is a sorted
 * table of transitions plus an optional rule, read-only once built, so any thread may
 * query any zone. Version 2+ files are read through their 64-bit block; a version 1 file
 * through its 32-bit one. Leap-second ("right/") files are refused: everything here counts
 * POSIX seconds.
 */
#include "core/tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"

#define TZ_MAX_FILE  (256 * 1024) /* Debian's largest zone is under 4 KiB */
#define TZ_MAX_TIMES 8192
#define TZ_MAX_TYPES 256
#define TZ_MAX_CHARS 1024
#define TZ_MAX_NAME  200

/* One side of a POSIX rule: the day of the year it happens and the local time of day. */
typedef struct {
    char kind; /* 'J' (1…365, no Feb 29), 'N' (0…365), 'M' (month.week.day) */
    int n, m, w, d;
    int32_t secs; /* local time of day, -167 h … 167 h */
} tz_date_t;

typedef struct {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool has_dst;
    tz_date_t start, end; /* start: std -> dst (std time); end: dst -> std (dst time) */
} tz_rule_t;

typedef struct {
    int32_t off;
    bool isdst;
} tz_type_t;

struct sb_tz {
    char name[TZ_MAX_NAME + 1];
    int64_t *times; /* ascending */
    uint8_t *idx;   /* the type in effect from times[i] */
    size_t ntimes;
    tz_type_t *types;
    size_t ntypes;
    bool has_rule;
    tz_rule_t rule;
};

/* Writes "what word" (or "what") into err; returns rc. */
static int fail(char *err, size_t errlen, int rc, const char *what, const char *word)
{
    if (errlen)
        snprintf(err, errlen, "%s%s%s", what, word ? " " : "", word ? word : "");
    return rc;
}

/* ---- Dates ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t sb_tz_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void sb_tz_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = floor_div(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return n[m - 1] + (m == 2 && is_leap(y));
}

/* The UTC instant of a rule date in year y, its time read at offset `off`. */
static int64_t rule_instant(const tz_date_t *r, int64_t y, int32_t off)
{
    int64_t day;
    if (r->kind == 'J')
        day = sb_tz_days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60);
    else if (r->kind == 'N')
        day = sb_tz_days_from_civil(y, 1, 1) + r->n;
    else {
        int64_t first = sb_tz_days_from_civil(y, (unsigned)r->m, 1);
        int wd = (int)((first % 7 + 11) % 7); /* 1970-01-01 was a Thursday (4); 0 = Sunday */
        int mday = 1 + (r->d - wd + 7) % 7 + 7 * (r->w - 1);
        while (mday > month_days(y, r->m))
            mday -= 7;
        day = first + mday - 1;
    }
    return day * 86400 + r->secs - off;
}

/* ---- POSIX TZ strings ---- */

typedef struct {
    const char *s, *end;
} cur_t;

static bool num(cur_t *c, int lo, int hi, int *out)
{
    int v = 0, digits = 0;
    while (c->s < c->end && *c->s >= '0' && *c->s <= '9' && digits < 4) {
        v = v * 10 + (*c->s++ - '0');
        digits++;
    }
    *out = v;
    return digits > 0 && v >= lo && v <= hi;
}

static bool name(cur_t *c)
{
    const char *p = c->s;
    if (p < c->end && *p == '<') {
        const char *q = ++p;
        while (q < c->end && (((*q | 32) >= 'a' && (*q | 32) <= 'z') || (*q >= '0' && *q <= '9') ||
                              *q == '+' || *q == '-'))
            q++;
        if (q >= c->end || *q != '>' || q - p < 3)
            return false;
        c->s = q + 1;
        return true;
    }
    while (p < c->end && (*p | 32) >= 'a' && (*p | 32) <= 'z')
        p++;
    if (p - c->s < 3)
        return false;
    c->s = p;
    return true;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h: seconds, sign applied. */
static bool hms(cur_t *c, int max_h, int32_t *out)
{
    int sign = 1, h, m = 0, s = 0;
    if (c->s < c->end && (*c->s == '+' || *c->s == '-'))
        sign = *c->s++ == '-' ? -1 : 1;
    if (!num(c, 0, max_h, &h))
        return false;
    if (c->s < c->end && *c->s == ':') {
        c->s++;
        if (!num(c, 0, 59, &m))
            return false;
        if (c->s < c->end && *c->s == ':') {
            c->s++;
            if (!num(c, 0, 59, &s))
                return false;
        }
    }
    *out = sign * (h * 3600 + m * 60 + s);
    return true;
}

static bool rule_date(cur_t *c, tz_date_t *r)
{
    memset(r, 0, sizeof(*r));
    r->secs = 7200; /* 02:00 unless said */
    if (c->s < c->end && *c->s == 'J') {
        c->s++;
        r->kind = 'J';
        if (!num(c, 1, 365, &r->n))
            return false;
    } else if (c->s < c->end && *c->s == 'M') {
        c->s++;
        r->kind = 'M';
        if (!num(c, 1, 12, &r->m) || c->s >= c->end || *c->s++ != '.' || !num(c, 1, 5, &r->w) ||
            c->s >= c->end || *c->s++ != '.' || !num(c, 0, 6, &r->d))
            return false;
    } else {
        r->kind = 'N';
        if (!num(c, 0, 365, &r->n))
            return false;
    }
    if (c->s < c->end && *c->s == '/') {
        c->s++;
        return hms(c, 167, &r->secs);
    }
    return true;
}

static bool parse_rule(const char *s, size_t len, tz_rule_t *r)
{
    cur_t c = {s, s + len};
    int32_t west;
    memset(r, 0, sizeof(*r));
    if (!name(&c) || !hms(&c, 24, &west))
        return false;
    r->std_off = -west;
    if (c.s == c.end)
        return true;
    if (!name(&c))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (c.s < c.end && *c.s != ',') {
        if (!hms(&c, 24, &west))
            return false;
        r->dst_off = -west;
    }
    if (c.s == c.end) { /* no rule given: the US rule, as most implementations assume */
        r->start = (tz_date_t){'M', 0, 3, 2, 0, 7200};
        r->end = (tz_date_t){'M', 0, 11, 1, 0, 7200};
        return true;
    }
    if (*c.s++ != ',' || !rule_date(&c, &r->start) || c.s >= c.end || *c.s++ != ',' ||
        !rule_date(&c, &r->end))
        return false;
    return c.s == c.end;
}

/* Up to 6 changes of years y-1…y+1 in time order: instant and whether DST starts. */
static size_t rule_events(const tz_rule_t *r, int64_t y, int64_t at[6], bool dst[6])
{
    size_t n = 0;
    for (int64_t k = y - 1; k <= y + 1; k++) {
        int64_t e = rule_instant(&r->end, k, r->dst_off);
        int64_t s = rule_instant(&r->start, k, r->std_off);
        /* equal instants: the end first, so that a zone in DST all year stays there */
        at[n] = e, dst[n++] = false;
        at[n] = s, dst[n++] = true;
    }
    for (size_t i = 1; i < n; i++) /* insertion sort, stable */
        for (size_t j = i; j > 0 && at[j - 1] > at[j]; j--) {
            int64_t t = at[j];
            at[j] = at[j - 1], at[j - 1] = t;
            bool b = dst[j];
            dst[j] = dst[j - 1], dst[j - 1] = b;
        }
    return n;
}

static int64_t year_of(int64_t t)
{
    int64_t y;
    unsigned m, d;
    sb_tz_civil_from_days(floor_div(t, 86400), &y, &m, &d);
    return y;
}

/* Instants past a few hundred thousand years are clamped (the rule repeats anyway). */
#define TZ_RULE_LIMIT ((int64_t)1 << 43)

static bool rule_isdst(const tz_rule_t *r, int64_t t)
{
    if (!r->has_dst)
        return false;
    t = t < -TZ_RULE_LIMIT ? -TZ_RULE_LIMIT : t > TZ_RULE_LIMIT ? TZ_RULE_LIMIT : t;
    int64_t at[6];
    bool dst[6];
    size_t n = rule_events(r, year_of(t + r->std_off), at, dst);
    bool in = !dst[0]; /* before the first change: the state it changes */
    for (size_t i = 0; i < n && at[i] <= t; i++)
        in = dst[i];
    return in;
}

static bool rule_next(const tz_rule_t *r, int64_t after, int64_t *out)
{
    if (!r->has_dst || after > TZ_RULE_LIMIT)
        return false;
    if (after < -TZ_RULE_LIMIT)
        after = -TZ_RULE_LIMIT;
    int64_t at[6];
    bool dst[6];
    for (int64_t y = year_of(after + r->std_off);; y++) { /* at most two rounds */
        size_t n = rule_events(r, y, at, dst);
        for (size_t i = 0; i < n; i++)
            if (at[i] > after) {
                *out = at[i];
                return true;
            }
    }
}

/* ---- Zones ---- */

static void zone_free(sb_tz_t *tz)
{
    if (!tz)
        return;
    sb_free(tz->times);
    sb_free(tz->idx);
    sb_free(tz->types);
    sb_free(tz);
}

void sb_tz_free(sb_tz_t *tz)
{
    zone_free(tz);
}

const char *sb_tz_name(const sb_tz_t *tz)
{
    return tz->name;
}

int sb_tz_posix(const char *s, size_t len, sb_tz_t **out, char *err, size_t errlen)
{
    *out = NULL;
    tz_rule_t r;
    char copy[257];
    if (len >= sizeof(copy) || memchr(s, '\0', len))
        return fail(err, errlen, SB_EINVAL, "bad TZ string (too long or NUL)", NULL);
    memcpy(copy, s, len);
    copy[len] = '\0';
    if (!parse_rule(s, len, &r))
        return fail(err, errlen, SB_EINVAL, "bad TZ string", copy);
    if (r.std_off < -SB_TZ_MAX_OFFSET || r.std_off > SB_TZ_MAX_OFFSET ||
        r.dst_off < -SB_TZ_MAX_OFFSET || r.dst_off > SB_TZ_MAX_OFFSET)
        return fail(err, errlen, SB_EINVAL, "offset out of range in", copy);
    sb_tz_t *tz = sb_calloc(1, sizeof(*tz));
    tz->has_rule = true;
    tz->rule = r;
    *out = tz;
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

typedef struct {
    uint32_t isut, isstd, leap, time, type, chars;
} tz_counts_t;

static bool header(const unsigned char *p, size_t left, tz_counts_t *c)
{
    if (left < 44 || memcmp(p, "TZif", 4) != 0)
        return false;
    c->isut = be32(p + 20), c->isstd = be32(p + 24), c->leap = be32(p + 28);
    c->time = be32(p + 32), c->type = be32(p + 36), c->chars = be32(p + 40);
    return true;
}

static size_t block_len(const tz_counts_t *c, size_t tsize)
{
    return c->time * tsize + c->time + c->type * 6 + c->chars + c->leap * (tsize + 4) + c->isstd +
           c->isut;
}

/* Reads a data block (tsize 4 or 8 bytes per time) into tz; p has block_len bytes. */
static int read_block(sb_tz_t *tz, const unsigned char *p, const tz_counts_t *c, size_t tsize,
                      char *err, size_t errlen)
{
    tz->ntimes = c->time, tz->ntypes = c->type;
    tz->times = sb_calloc(c->time + 1, sizeof(*tz->times));
    tz->idx = sb_calloc(c->time + 1, 1);
    tz->types = sb_calloc(c->type, sizeof(*tz->types));
    for (size_t i = 0; i < c->time; i++) {
        tz->times[i] = tsize == 8 ? be64(p + i * 8) : (int32_t)be32(p + i * 4);
        if (i > 0 && tz->times[i] <= tz->times[i - 1])
            return fail(err, errlen, SB_EINVAL, "transitions out of order", NULL);
    }
    p += c->time * tsize;
    for (size_t i = 0; i < c->time; i++) {
        tz->idx[i] = p[i];
        if (p[i] >= c->type)
            return fail(err, errlen, SB_EINVAL, "bad local time type index", NULL);
    }
    p += c->time;
    for (size_t i = 0; i < c->type; i++, p += 6) {
        int32_t off = (int32_t)be32(p);
        if (off < -SB_TZ_MAX_OFFSET || off > SB_TZ_MAX_OFFSET || p[4] > 1 || p[5] >= c->chars)
            return fail(err, errlen, SB_EINVAL, "bad local time type", NULL);
        tz->types[i] = (tz_type_t){off, p[4] == 1};
    }
    return 0;
}

int sb_tz_parse(const unsigned char *data, size_t len, sb_tz_t **out, char *err, size_t errlen)
{
    *out = NULL;
    tz_counts_t c;
    if (!header(data, len, &c))
        return fail(err, errlen, SB_EINVAL, "not a TZif file", NULL);
    int version = data[4] == 0 ? 1 : data[4] - '0';
    if (version < 1 || version > 4)
        return fail(err, errlen, SB_EINVAL, "unknown TZif version", NULL);
    size_t tsize = 4, off = 44;
    for (int pass = 0;; pass++) {
        if (c.time > TZ_MAX_TIMES || c.type > TZ_MAX_TYPES || c.chars > TZ_MAX_CHARS ||
            c.leap > TZ_MAX_TIMES || c.isstd > TZ_MAX_TYPES || c.isut > TZ_MAX_TYPES)
            return fail(err, errlen, SB_ETOOBIG, "TZif counts too large", NULL);
        if (c.type == 0 || c.chars == 0 || (c.isstd && c.isstd != c.type) ||
            (c.isut && c.isut != c.type))
            return fail(err, errlen, SB_EINVAL, "inconsistent TZif counts", NULL);
        if (len - off < block_len(&c, tsize))
            return fail(err, errlen, SB_EINVAL, "truncated TZif file", NULL);
        if (version == 1 || pass == 1)
            break;
        off += block_len(&c, tsize);
        if (!header(data + off, len - off, &c))
            return fail(err, errlen, SB_EINVAL, "truncated TZif file", NULL);
        off += 44, tsize = 8;
    }
    if (c.leap)
        return fail(err, errlen, SB_EINVAL, "leap-second zones are not supported", NULL);
    sb_tz_t *tz = sb_calloc(1, sizeof(*tz));
    int rc = read_block(tz, data + off, &c, tsize, err, errlen);
    if (rc)
        goto fail;
    off += block_len(&c, tsize);
    if (version >= 2) { /* footer: \n TZ-string \n */
        const unsigned char *nl =
            off < len && data[off] == '\n' ? memchr(data + off + 1, '\n', len - off - 1) : NULL;
        rc = SB_EINVAL;
        if (!nl) {
            fail(err, errlen, rc, "missing TZif footer", NULL);
            goto fail;
        }
        size_t n = (size_t)(nl - data - off - 1);
        if (n > 0) {
            sb_tz_t *r;
            rc = sb_tz_posix((const char *)data + off + 1, n, &r, err, errlen);
            if (rc)
                goto fail;
            tz->has_rule = true;
            tz->rule = r->rule;
            zone_free(r);
        }
    }
    *out = tz;
    return 0;
fail:
    zone_free(tz);
    return rc;
}

static bool good_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_MAX_NAME || name[0] == '/' || strstr(name, ".."))
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p | 32) >= 'a' && (*p | 32) <= 'z') && !(*p >= '0' && *p <= '9') && *p != '_' &&
            *p != '+' && *p != '-' && *p != '/')
            return false;
    return true;
}

static unsigned char *read_all(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TZ_MAX_FILE)
        goto done;
    buf = sb_malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *len = got;
done:
    close(fd);
    return buf;
}

int sb_tz_load(const char *name, sb_tz_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!name || !good_name(name))
        return fail(err, errlen, SB_EINVAL, "bad time zone name", name ? name : "(null)");
    const char *dir = getenv("TZDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    size_t len = 0;
    unsigned char *data = read_all(path, &len);
    if (!data) {
        if (strcmp(name, "UTC") == 0) {
            int rc = sb_tz_posix("UTC0", 4, out, err, errlen);
            if (rc == 0)
                snprintf((*out)->name, sizeof((*out)->name), "%s", name);
            return rc;
        }
        return fail(err, errlen, SB_EINVAL, "unknown time zone", name);
    }
    char why[128];
    int rc = sb_tz_parse(data, len, out, why, sizeof(why));
    sb_free(data);
    if (rc) {
        if (errlen)
            snprintf(err, errlen, "time zone %s: %s", name, why);
        return SB_EINVAL;
    }
    snprintf((*out)->name, sizeof((*out)->name), "%s", name);
    return 0;
}

/* ---- Queries ---- */

/* The index of the last transition at or before t, or -1 before the first. */
static ptrdiff_t find(const sb_tz_t *tz, int64_t t)
{
    size_t lo = 0, hi = tz->ntimes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tz->times[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

static tz_type_t lookup(const sb_tz_t *tz, int64_t t)
{
    ptrdiff_t i = tz->ntimes ? find(tz, t) : -1;
    bool tail = tz->ntimes ? i == (ptrdiff_t)tz->ntimes - 1 : true;
    if (tz->has_rule && tail && (tz->ntimes == 0 || t > tz->times[i])) {
        bool dst = rule_isdst(&tz->rule, t);
        return (tz_type_t){dst ? tz->rule.dst_off : tz->rule.std_off, dst};
    }
    if (i < 0)
        return tz->ntypes ? tz->types[0] : (tz_type_t){0, false};
    return tz->types[tz->idx[i]];
}

int32_t sb_tz_offset(const sb_tz_t *tz, int64_t utc_s)
{
    return lookup(tz, utc_s).off;
}

bool sb_tz_isdst(const sb_tz_t *tz, int64_t utc_s)
{
    return lookup(tz, utc_s).isdst;
}

int sb_tz_next_transition(const sb_tz_t *tz, int64_t after_s, int64_t *at_s)
{
    if (tz->ntimes) {
        ptrdiff_t i = find(tz, after_s);
        if (i + 1 < (ptrdiff_t)tz->ntimes) {
            *at_s = tz->times[i + 1];
            return 0;
        }
    }
    if (tz->has_rule && rule_next(&tz->rule, after_s, at_s))
        return 0;
    return SB_ENOTFOUND;
}

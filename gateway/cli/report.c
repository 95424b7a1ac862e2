/* SPDX-License-Identifier: MIT */
/*
 * sbctl's figures for people (client.h): `sbctl stats` as indented lines with durations
 * as a person reads them ("4m 12s", never milliseconds), and `sbctl report [--from]
 * [--to] [--channel]`: GET /v1/reports (docs/contract.md §5) printed as the tables the
 * console's Reports view shows. Bounds are ms, "now", or a time ago ("7d", "12h").
 * Everything the server returns that people typed (names, subjects) goes through
 * core/term.h before it reaches the terminal.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/reports.h"
#include "core/term.h"
#include "core/util.h"
#include "gateway/cli/client.h"

/* Server text made safe for one terminal line (a new string, sb_free it); NULL → dflt. */
static char *safe(const char *s, const char *dflt)
{
    if (!s || !*s)
        s = dflt;
    sb_buf_t b;
    sb_buf_init(&b, (size_t)1 << 20);
    sb_term_escape(&b, s, strlen(s), 0, 0);
    return sb_buf_steal(&b, NULL);
}

/* A duration value: "4m 12s", or "-" for null. */
static const char *dur(const json_t *v, char *out, size_t cap)
{
    if (!json_is_integer(v))
        return snprintf(out, cap, "-"), out;
    return sb_duration_human(json_integer_value(v), out, cap);
}

static bool is_ms_key(const char *k, bool in_ms)
{
    size_t n = strlen(k);
    if (n > 3 && strcmp(k + n - 3, "_ms") == 0)
        return true;
    return in_ms && (strcmp(k, "p50") == 0 || strcmp(k, "p90") == 0 || strcmp(k, "p99") == 0);
}

static void print_time(const char *label, json_int_t ms);

/* A key whose value is a point in time (ms since the epoch): back_at, …_at. */
static bool is_time_key(const char *k)
{
    size_t n = strlen(k);
    return n > 3 && strcmp(k + n - 3, "_at") == 0;
}

/* The stats tree; under a key ending in _ms, times are durations (and counts stay counts);
 * a key ending in _at is a time, printed as such ("2026-11-30 08:00 UTC"). */
static void print_tree(json_t *j, int depth, bool in_ms)
{
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        char *key = safe(k, "?");
        size_t kl = strlen(key);
        bool ms = is_ms_key(k, in_ms);
        if (kl > 3 && strcmp(key + kl - 3, "_ms") == 0)
            key[kl - 3] = '\0'; /* first_response_ms: first_response */
        if (json_is_object(v)) {
            printf("%*s%s:\n", depth * 2, "", key);
            print_tree(v, depth + 1, in_ms || ms);
        } else if (ms && (json_is_integer(v) || json_is_null(v))) {
            char d[32];
            printf("%*s%s: %s\n", depth * 2, "", key, dur(v, d, sizeof(d)));
        } else if (is_time_key(k) && json_is_integer(v)) {
            printf("%*s%s: ", depth * 2, "", key);
            print_time("", json_integer_value(v));
            printf("\n");
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
            printf("%*s%s: %s\n", depth * 2, "", key, s ? s : "?");
            free(s);
        }
        sb_free(key);
    }
}

void sbc_print_stats(json_t *stats)
{
    print_tree(stats, 0, false);
}

/* ---- report ---- */

static void print_time(const char *label, json_int_t ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    char buf[32] = "?";
    if (gmtime_r(&t, &tm))
        strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", &tm);
    printf("%s%s", label, buf);
}

/* {name: {"p50","p90","n"}} as rows under a title. */
static void print_percentiles(const char *title, const char *col, json_t *by)
{
    printf("\n%s\n  %-20s %-10s %-10s %s\n", title, col, "p50", "p90", "n");
    if (json_object_size(by) == 0)
        printf("  (none)\n");
    const char *k;
    json_t *v;
    json_object_foreach(by, k, v)
    {
        char *name = safe(k, "-");
        char a[32], b[32];
        printf("  %-20s %-10s %-10s %lld\n", name, dur(json_object_get(v, "p50"), a, sizeof(a)),
               dur(json_object_get(v, "p90"), b, sizeof(b)),
               (long long)json_integer_value(json_object_get(v, "n")));
        sb_free(name);
    }
}

static void print_breaches(json_t *br)
{
    printf("\nBreaches (%lld)\n  %-20s %-20s %s\n",
           (long long)json_integer_value(json_object_get(br, "total")), "policy", "clock", "n");
    const char *pol, *clock;
    json_t *clocks, *n;
    json_object_foreach(json_object_get(br, "by_policy"), pol, clocks)
    {
        char *p = safe(pol, "-");
        json_object_foreach(clocks, clock, n)
        {
            if (strcmp(clock, "total") == 0)
                continue;
            char *c = safe(clock, "-");
            printf("  %-20s %-20s %lld\n", p, c, (long long)json_integer_value(n));
            sb_free(c);
        }
        sb_free(p);
    }
}

static void print_people(json_t *people)
{
    printf("\nPeople\n  %-24s %-10s %-10s %s\n", "name", "answered", "first", "resolved");
    if (json_array_size(people) == 0)
        printf("  (none)\n");
    size_t i;
    json_t *p;
    json_array_foreach(people, i, p)
    {
        const char *nm = json_string_value(json_object_get(p, "name"));
        char *name = safe(nm ? nm : json_string_value(json_object_get(p, "id")), "-");
        printf("  %-24s %-10lld %-10lld %lld\n", name,
               (long long)json_integer_value(json_object_get(p, "answered")),
               (long long)json_integer_value(json_object_get(p, "first_responses")),
               (long long)json_integer_value(json_object_get(p, "resolved")));
        sb_free(name);
    }
}

static void print_waiting(json_t *waiting, int64_t now)
{
    printf("\nWaiting now\n  %-10s %-24s %-10s %-14s %s\n", "waited", "customer", "channel",
           "assignee", "conversation");
    if (json_array_size(waiting) == 0)
        printf("  (nobody)\n");
    size_t i;
    json_t *w;
    json_array_foreach(waiting, i, w)
    {
        char d[32];
        sb_duration_human(now - json_integer_value(json_object_get(w, "awaiting_since")), d,
                          sizeof(d));
        char *name = safe(json_string_value(json_object_get(w, "contact_name")), "-");
        char *ch = safe(json_string_value(json_object_get(w, "channel")), "-");
        char *as = safe(json_string_value(json_object_get(w, "assignee")), "-");
        char *cv = safe(json_string_value(json_object_get(w, "conv")), "-");
        printf("  %-10s %-24s %-10s %-14s %s\n", d, name, ch, as, cv);
        sb_free(name);
        sb_free(ch);
        sb_free(as);
        sb_free(cv);
    }
}

static void print_report(json_t *r, int64_t now)
{
    print_time("Report ", json_integer_value(json_object_get(r, "from")));
    print_time(" .. ", json_integer_value(json_object_get(r, "to")));
    char *ch = safe(json_string_value(json_object_get(r, "channel")), "all");
    printf(", channel %s; %lld facts%s\n", ch,
           (long long)json_integer_value(json_object_get(r, "scanned")),
           json_is_true(json_object_get(r, "truncated")) ? " (truncated: narrow the range)" : "");
    sb_free(ch);
    json_t *frt = json_object_get(r, "first_response"), *res = json_object_get(r, "resolution");
    print_percentiles("First response by channel", "channel", json_object_get(frt, "by_channel"));
    print_percentiles("First response by policy", "policy", json_object_get(frt, "by_policy"));
    print_percentiles("Resolution by channel", "channel", json_object_get(res, "by_channel"));
    print_percentiles("Resolution by policy", "policy", json_object_get(res, "by_policy"));
    print_breaches(json_object_get(r, "breaches"));
    print_people(json_object_get(r, "people"));
    print_waiting(json_object_get(r, "waiting"), now);
}

/* Appends "&name=<ms>" for a bound given as ms, now or a time ago; false when malformed. */
static bool add_bound(char *q, size_t cap, const char *name, const char *v, int64_t now)
{
    if (!v)
        return true;
    int64_t ms;
    if (sb_report_time_parse(v, now, &ms) != 0) {
        fprintf(stderr,
                "sbctl: report: --%s must be ms since the epoch, now, or a time ago like 7d\n",
                name);
        return false;
    }
    size_t n = strlen(q);
    snprintf(q + n, cap - n, "%s%s=%" PRId64, n ? "&" : "", name, ms);
    return true;
}

int sbc_report(const sbc_opts_t *o)
{
    int64_t now = sb_now_ms();
    char q[256] = "";
    if (!add_bound(q, sizeof(q), "from", o->from, now) ||
        !add_bound(q, sizeof(q), "to", o->to, now))
        return SBC_USAGE;
    if (o->channel) {
        char *e = curl_easy_escape(NULL, o->channel, 0);
        size_t n = strlen(q);
        snprintf(q + n, sizeof(q) - n, "%schannel=%s", n ? "&" : "", e ? e : "");
        curl_free(e);
    }
    char *path = sb_asprintf("/v1/reports%s%s", *q ? "?" : "", q);
    json_t *r = NULL;
    int code = sbc_get_json(o, path, &r);
    sb_free(path);
    if (code == SBC_OK && o->json) {
        char *s = json_dumps(r, JSON_COMPACT | (isatty(STDOUT_FILENO) ? JSON_ENSURE_ASCII : 0));
        if (s)
            printf("%s\n", s);
        free(s);
    } else if (code == SBC_OK) {
        print_report(r, now);
    }
    json_decref(r);
    return code;
}

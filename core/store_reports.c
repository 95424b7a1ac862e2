/* SPDX-License-Identifier: MIT */
/*
 * Accountability reports (core/reports.h): every shard's `facts` stream (docs/sla.md,
 * "Redis") read in pages over [from, to], folded into first-response and resolution
 * percentiles by channel and by policy, breaches by policy and clock, and each person's
 * answers, first responses and resolutions; then, in one round, the longest-waiting
 * customers of each shard (`sb_waiting`) and the names of the people counted.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/map.h"
#include "core/reports.h"
#include "core/store_internal.h"
#include "core/util.h"

#define PAGE 500u

/* The samples of one group (a channel or a policy). */
typedef struct series {
    int64_t *v;
    size_t n, cap;
} series_t;

typedef struct person {
    json_int_t answered, first, resolved;
} person_t;

typedef struct report {
    sb__fan_t *f; /* answers the caller; op points back here */
    char *channel;
    bool scoped;
    unsigned channels;
    int64_t from, to;
    size_t max, scanned;
    unsigned waiting;
    bool truncated;
    unsigned pending;                          /* XRANGE pages in flight, + 1 while issuing */
    sb_map_t frt_ch, frt_pol, res_ch, res_pol; /* name -> series_t */
    sb_map_t people;                           /* staff id -> person_t */
    json_t *breaches;                          /* {policy: {clock: n}} */
    json_t *staff_ids;                         /* the ids asked for names, in order */
} report_t;

typedef struct page {
    report_t *rp;
    unsigned shard;
} page_t;

/* ---- Folding facts ---- */

static void series_add(sb_map_t *m, const char *key, int64_t v)
{
    if (!key || !*key)
        return;
    series_t *s = sb_map_get(m, key);
    if (!s) {
        s = SB_NEW(series_t);
        sb_map_set(m, key, s);
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->v = sb_realloc(s->v, s->cap * sizeof(int64_t));
    }
    s->v[s->n++] = v;
}

static person_t *person(report_t *rp, const char *sid)
{
    if (!sid || !*sid)
        return NULL;
    person_t *p = sb_map_get(&rp->people, sid);
    if (!p) {
        p = SB_NEW(person_t);
        sb_map_set(&rp->people, sid, p);
    }
    return p;
}

static void count_breach(report_t *rp, const char *policy, const char *clock)
{
    const char *pk = policy && *policy ? policy : "-";
    json_t *p = json_object_get(rp->breaches, pk);
    if (!p)
        json_object_set_new(rp->breaches, pk, p = json_object());
    const char *ck = clock && *clock ? clock : "-";
    json_object_set_new(p, ck, json_integer(json_integer_value(json_object_get(p, ck)) + 1));
}

static bool channel_wanted(const report_t *rp, const char *ch)
{
    if (rp->channel && strcmp(rp->channel, ch) != 0)
        return false;
    if (!rp->scoped)
        return true;
    int i = sb_channel_index(ch);
    return i >= 0 && (rp->channels & (1u << i));
}

/* One facts entry: fields [k, v, k, v…]. */
static void fold_fact(report_t *rp, const redisReply *fields)
{
    const char *t = "", *channel = "", *policy = "", *staff = "", *clock = "";
    int64_t ms = -1;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "t") == 0)
            t = v->str;
        else if (strcmp(k->str, "ms") == 0)
            ms = strtoll(v->str, NULL, 10);
        else if (strcmp(k->str, "channel") == 0)
            channel = v->str;
        else if (strcmp(k->str, "policy") == 0)
            policy = v->str;
        else if (strcmp(k->str, "staff") == 0)
            staff = v->str;
        else if (strcmp(k->str, "clock") == 0)
            clock = v->str;
    }
    if (!channel_wanted(rp, channel))
        return;
    person_t *p;
    if (strcmp(t, "first") == 0 && ms >= 0) {
        series_add(&rp->frt_ch, channel, ms);
        series_add(&rp->frt_pol, policy, ms);
        if ((p = person(rp, staff)))
            p->first++;
    } else if (strcmp(t, "answer") == 0) {
        if ((p = person(rp, staff)))
            p->answered++;
    } else if (strcmp(t, "resolved") == 0 && ms >= 0) {
        series_add(&rp->res_ch, channel, ms);
        series_add(&rp->res_pol, policy, ms);
        if ((p = person(rp, staff)))
            p->resolved++;
    } else if (strcmp(t, "breach") == 0) {
        count_breach(rp, policy, clock);
    }
}

/* ---- Reading the facts, page by page ---- */

static void scan_done(report_t *rp);
static void on_page(sb_redis_t *r, redisReply *reply, int status, void *data);

/* Asks for the next page of a shard from start ("<ms>" or "(<id>"); false if not sent. */
static bool page_send(report_t *rp, unsigned shard, const char *start)
{
    size_t left = rp->max - rp->scanned;
    if (left == 0) {
        rp->truncated = true;
        return false;
    }
    sb_key_t key;
    char end[24], count[16];
    snprintf(end, sizeof(end), "%" PRId64, rp->to);
    snprintf(count, sizeof(count), "%zu", left < PAGE ? left : PAGE);
    const char *argv[] = {"XRANGE", key.str, start, end, "COUNT", count};
    int rc = sb_key_shard(&key, rp->f->st->prefix, shard, "facts");
    page_t *pg = SB_NEW(page_t);
    pg->rp = rp;
    pg->shard = shard;
    if (rc == 0)
        rc = sb_redis_command_argv(sb__store_redis(rp->f->st), on_page, pg, 0, 6, argv, NULL);
    if (rc) {
        sb_free(pg);
        sb__fan_fail(rp->f, rc, NULL);
        return false;
    }
    rp->pending++;
    return true;
}

static void on_page(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    page_t *pg = data;
    report_t *rp = pg->rp;
    if (status) {
        sb__fan_fail(rp->f, status, reply && reply->str ? reply->str : NULL);
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        const char *last = NULL;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[0]->type != REDIS_REPLY_STRING ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            rp->scanned++;
            last = e->element[0]->str;
            fold_fact(rp, e->element[1]);
        }
        /* A full page: there may be more after its last entry. */
        if (last && reply->elements >= PAGE) {
            char start[64];
            snprintf(start, sizeof(start), "(%s", last);
            page_send(rp, pg->shard, start);
        } else if (last && rp->scanned >= rp->max) {
            rp->truncated = true; /* the page was cut to the cap */
        }
    }
    sb_free(pg);
    if (--rp->pending == 0)
        scan_done(rp);
}

/* ---- The result ---- */

/* {name: {"p50","p90","n"}} of a map of series (sorted in place). */
static json_t *percentiles(sb_map_t *m)
{
    json_t *out = json_object();
    size_t b;
    for (sb_map_entry_t *e = sb_map_first(m, &b); e; e = sb_map_next(m, e, &b)) {
        series_t *s = e->value;
        qsort(s->v, s->n, sizeof(int64_t), sb_cmp_i64);
        json_object_set_new(
            out, e->key,
            json_pack("{s:I, s:I, s:I}", "p50", (json_int_t)sb_nearest_rank(s->v, s->n, 50), "p90",
                      (json_int_t)sb_nearest_rank(s->v, s->n, 90), "n", (json_int_t)s->n));
    }
    return out;
}

/* Frees a map and its values (series_t or person_t). */
static void map_free(sb_map_t *m, bool series)
{
    size_t b;
    for (sb_map_entry_t *e = sb_map_first(m, &b); e; e = sb_map_next(m, e, &b)) {
        if (series)
            sb_free(((series_t *)e->value)->v);
        sb_free(e->value);
    }
    sb_map_dispose(m);
}

static void report_free(report_t *rp)
{
    map_free(&rp->frt_ch, true);
    map_free(&rp->frt_pol, true);
    map_free(&rp->res_ch, true);
    map_free(&rp->res_pol, true);
    map_free(&rp->people, false);
    json_decref(rp->breaches);
    json_decref(rp->staff_ids);
    sb_free(rp->channel);
    sb_free(rp);
}

static int cmp_people(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    json_int_t x = json_integer_value(json_object_get(a, "answered"));
    json_int_t y = json_integer_value(json_object_get(b, "answered"));
    if (x != y)
        return x > y ? -1 : 1;
    return strcmp(json_string_value(json_object_get(a, "id")),
                  json_string_value(json_object_get(b, "id")));
}

/* The people counted, with the names the second round found (parts after the shards'). */
static json_t *people_json(report_t *rp, size_t names_at)
{
    size_t n = json_array_size(rp->staff_ids);
    json_t **rows = sb_malloc((n ? n : 1) * sizeof(json_t *));
    for (size_t i = 0; i < n; i++) {
        const char *sid = json_string_value(json_array_get(rp->staff_ids, i));
        person_t *p = sb_map_get(&rp->people, sid);
        json_t *name = json_array_get(rp->f->parts, names_at + i);
        rows[i] = json_pack("{s:s, s:O, s:I, s:I, s:I}", "id", sid, "name",
                            json_is_string(name) ? name : json_null(), "answered", p->answered,
                            "first_responses", p->first, "resolved", p->resolved);
    }
    qsort(rows, n, sizeof(json_t *), cmp_people);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, rows[i]);
    sb_free(rows);
    return out;
}

static int cmp_waiting(const void *pa, const void *pb)
{
    const json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
    json_int_t x = json_integer_value(json_object_get(a, "awaiting_since"));
    json_int_t y = json_integer_value(json_object_get(b, "awaiting_since"));
    return x < y ? -1 : x > y;
}

/* The oldest waits of every shard, merged, the first rp->waiting of them. */
static json_t *waiting_json(report_t *rp, unsigned shards)
{
    json_t *all = json_array();
    for (unsigned i = 0; i < shards; i++)
        json_array_extend(all, json_object_get(json_array_get(rp->f->parts, i), "waiting"));
    size_t n = json_array_size(all);
    json_t **rows = sb_malloc((n ? n : 1) * sizeof(json_t *));
    for (size_t i = 0; i < n; i++)
        rows[i] = json_array_get(all, i);
    qsort(rows, n, sizeof(json_t *), cmp_waiting);
    json_t *out = json_array();
    for (size_t i = 0; i < n && i < rp->waiting; i++)
        json_array_append(out, rows[i]);
    sb_free(rows);
    json_decref(all);
    return out;
}

static json_t *breaches_json(report_t *rp)
{
    json_int_t total = 0;
    const char *pol;
    json_t *clocks;
    json_object_foreach(rp->breaches, pol, clocks)
    {
        json_int_t sum = 0;
        const char *ck;
        json_t *n;
        json_object_foreach(clocks, ck, n) sum += json_integer_value(n);
        json_object_set_new(clocks, "total", json_integer(sum));
        total += sum;
    }
    return json_pack("{s:I, s:O}", "total", total, "by_policy", rp->breaches);
}

static void names_done(sb__fan_t *f)
{
    report_t *rp = f->op;
    json_t *res = NULL;
    if (!f->status) {
        unsigned shards = sb_store_opts(f->st)->shards;
        res = json_pack("{s:I, s:I, s:o, s:I, s:b, s:{s:o, s:o}, s:{s:o, s:o}, s:o, s:o, s:o}",
                        "from", (json_int_t)rp->from, "to", (json_int_t)rp->to, "channel",
                        rp->channel ? json_string(rp->channel) : json_null(), "scanned",
                        (json_int_t)rp->scanned, "truncated", rp->truncated, "first_response",
                        "by_channel", percentiles(&rp->frt_ch), "by_policy",
                        percentiles(&rp->frt_pol), "resolution", "by_channel",
                        percentiles(&rp->res_ch), "by_policy", percentiles(&rp->res_pol),
                        "breaches", breaches_json(rp), "people", people_json(rp, shards), "waiting",
                        waiting_json(rp, shards));
    }
    sb__fan_finish(f, res);
    json_decref(res);
    report_free(rp);
}

/* Every page is in: the waits of each shard and the names of the people, in one round. */
static void scan_done(report_t *rp)
{
    sb__fan_t *f = rp->f;
    if (f->status) {
        sb__fan_finish(f, NULL);
        report_free(rp);
        return;
    }
    sb__fan_begin(f, names_done);
    for (unsigned i = 0; i < sb_store_opts(f->st)->shards; i++) {
        json_t *a = json_pack("{s:i}", "limit", (int)rp->waiting);
        if (rp->channel)
            json_object_set_new(a, "channel", json_string(rp->channel));
        if (rp->scoped) {
            json_t *allow = json_array();
            for (int c = 0; c < SB_CHANNEL_COUNT; c++)
                if (rp->channels & (1u << c))
                    json_array_append_new(allow, json_string(sb_channel_name(c)));
            json_object_set_new(a, "channels", allow);
        }
        sb__fan_fcall(f, "sb_waiting", i, a, 0);
    }
    size_t b;
    for (sb_map_entry_t *e = sb_map_first(&rp->people, &b); e;
         e = sb_map_next(&rp->people, e, &b)) {
        sb_key_t key;
        if (sb_key_principal(&key, f->st->prefix, "staff", e->key) != 0)
            continue; /* an id too long for a key: no name */
        json_array_append_new(rp->staff_ids, json_string(e->key));
        const char *argv[] = {"HGET", key.str, "name"};
        sb__fan_cmd(f, 3, argv);
    }
    /* ids skipped above still need a row: they get a null name */
    for (sb_map_entry_t *e = sb_map_first(&rp->people, &b); e;
         e = sb_map_next(&rp->people, e, &b)) {
        sb_key_t key;
        if (sb_key_principal(&key, f->st->prefix, "staff", e->key) != 0)
            json_array_append_new(rp->staff_ids, json_string(e->key));
    }
    sb__fan_end(f);
}

int sb_store_report(sb_store_t *st, const sb_report_query_t *q, sb_store_cb cb, void *data)
{
    if (!q || q->to_ms < q->from_ms || q->from_ms < 0)
        return SB_EINVAL;
    report_t *rp = SB_NEW(report_t);
    rp->f = sb__fan_new(st, cb, data);
    rp->f->op = rp;
    rp->channel = q->channel && *q->channel ? sb_strdup(q->channel) : NULL;
    rp->scoped = q->scoped;
    rp->channels = q->channels;
    rp->from = q->from_ms;
    rp->to = q->to_ms;
    rp->max = q->max_facts ? q->max_facts : SB_REPORT_MAX_FACTS;
    rp->waiting = q->waiting ? (q->waiting > 200 ? 200 : q->waiting) : 20;
    sb_map_init(&rp->frt_ch);
    sb_map_init(&rp->frt_pol);
    sb_map_init(&rp->res_ch);
    sb_map_init(&rp->res_pol);
    sb_map_init(&rp->people);
    rp->breaches = json_object();
    rp->staff_ids = json_array();
    char start[24];
    snprintf(start, sizeof(start), "%" PRId64, rp->from);
    rp->pending = 1; /* held while issuing */
    for (unsigned i = 0; i < st->opts.shards && !rp->f->status; i++)
        page_send(rp, i, start);
    if (rp->f->status && rp->pending == 1) { /* nothing sent: the callback must not run */
        int rc = rp->f->status;
        sb__fan_free(rp->f);
        report_free(rp);
        return rc;
    }
    if (--rp->pending == 0)
        scan_done(rp);
    return 0;
}

/* ---- The first-response histogram of this node's replies ---- */

const sb_frt_hist_t *sb_store_frt_hist(const sb_store_t *st)
{
    return &st->frt;
}

void sb__store_frt_observe(sb_store_t *st, const json_t *reply_result)
{
    sb_frt_hist_observe_reply(&st->frt, reply_result);
}

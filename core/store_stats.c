/* SPDX-License-Identifier: MIT */
/*
 * Figures over every shard (store.h): the queue and response-time stats of
 * GET /v1/stats (`sb_stats` on each shard, summed here, percentiles computed here, with
 * the staff online now), and the recent staff response times read from every shard's `rt`
 * stream.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

typedef struct rt_ctx {
    sb_store_cb cb;
    void *data;
    unsigned pending;
    int status;
    json_t *samples;
} rt_ctx_t;

static void on_rt(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    rt_ctx_t *rc = data;
    if (status) {
        rc->status = status;
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            redisReply *f = e->element[1];
            json_t *s = json_object();
            for (size_t k = 0; k + 1 < f->elements; k += 2) {
                if (strcmp(f->element[k]->str, "ms") == 0)
                    json_object_set_new(s, "ms", json_integer(atoll(f->element[k + 1]->str)));
                else if (strcmp(f->element[k]->str, "channel") == 0)
                    json_object_set_new(s, "channel", json_string(f->element[k + 1]->str));
            }
            json_array_append_new(rc->samples, s);
        }
    }
    if (--rc->pending > 0)
        return;
    if (rc->status) {
        rc->cb(rc->status, NULL, sb_strerror(rc->status), rc->data);
    } else {
        json_t *res = json_pack("{s:O}", "samples", rc->samples);
        rc->cb(0, res, NULL, rc->data);
        json_decref(res);
    }
    json_decref(rc->samples);
    sb_free(rc);
}

int sb_store_response_times(sb_store_t *st, unsigned per_shard, sb_store_cb cb, void *data)
{
    rt_ctx_t *rc = SB_NEW(rt_ctx_t);
    rc->cb = cb;
    rc->data = data;
    rc->samples = json_array();
    rc->pending = st->opts.shards;
    char count[16];
    snprintf(count, sizeof(count), "%u", per_shard ? per_shard : 50);
    for (unsigned i = 0; i < st->opts.shards; i++) {
        sb_key_t key;
        const char *argv[] = {"XREVRANGE", key.str, "+", "-", "COUNT", count};
        if (sb_key_rt(&key, st->prefix, i) != 0)
            on_rt(st->redis, NULL, key.err, rc);
        else if (sb_redis_command_argv(st->redis, on_rt, rc, 0, 6, argv, NULL) != 0)
            on_rt(st->redis, NULL, SB_EUNAVAILABLE, rc);
    }
    return 0;
}

/* ---- Stats ---- */

/* {"<channel>":{"p50":…,"p90":…,"n":…}} from [[ms, channel], …] samples. */
static json_t *response_percentiles(const json_t *samples)
{
    json_t *by = json_object(), *out = json_object();
    size_t i;
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        const char *ch = json_string_value(json_array_get(s, 1));
        if (!ch || !*ch)
            continue;
        json_t *list = json_object_get(by, ch);
        if (!list)
            json_object_set_new(by, ch, list = json_array());
        json_array_append(list, json_array_get(s, 0));
    }
    const char *ch;
    json_t *list;
    json_object_foreach(by, ch, list)
    {
        size_t n = json_array_size(list);
        int64_t *v = sb_malloc(n * sizeof(int64_t));
        for (size_t k = 0; k < n; k++)
            v[k] = json_integer_value(json_array_get(list, k));
        qsort(v, n, sizeof(int64_t), sb_cmp_i64);
        json_object_set_new(out, ch,
                            json_pack("{s:I, s:I, s:I}", "p50",
                                      (json_int_t)sb_nearest_rank(v, n, 50), "p90",
                                      (json_int_t)sb_nearest_rank(v, n, 90), "n", (json_int_t)n));
        sb_free(v);
    }
    json_decref(by);
    return out;
}

/* Adds a shard's `counts` ("queue:webchat" -> n) into by_channel and breaches. */
static void add_counts(json_t *by_channel, json_int_t *breaches, json_t *counts)
{
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v)
    {
        json_int_t n = json_integer_value(v);
        const char *colon = strchr(k, ':');
        if (strcmp(k, "breaches") == 0)
            *breaches += n;
        if (!colon || (strncmp(k, "queue:", 6) != 0 && strncmp(k, "idle:", 5) != 0) || n <= 0)
            continue;
        json_t *ch = json_object_get(by_channel, colon + 1);
        if (!ch)
            json_object_set_new(by_channel, colon + 1,
                                ch = json_pack("{s:i, s:i}", "open", 0, "queue", 0));
        json_t *open = json_object_get(ch, "open");
        json_integer_set(open, json_integer_value(open) + n);
        if (k[0] == 'q') {
            json_t *q = json_object_get(ch, "queue");
            json_integer_set(q, json_integer_value(q) + n);
        }
    }
}

static void stats_done(sb__fan_t *f)
{
    json_int_t sum[5] = {0}, breaches = 0;
    static const char *const idx[] = {"queue", "idle", "pending", "snoozed", "resolved"};
    json_t *by_channel = json_object(), *samples = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(f->parts, i, part)
    {
        for (int k = 0; k < 5; k++)
            sum[k] += json_integer_value(json_object_get(part, idx[k]));
        add_counts(by_channel, &breaches, json_object_get(part, "counts"));
        json_array_extend(samples, json_object_get(part, "first_response"));
    }
    json_t *res =
        json_pack("{s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:I}", "queue_depth", sum[0],
                  "open", sum[0] + sum[1], "by_status", "open", sum[0] + sum[1], "pending", sum[2],
                  "snoozed", sum[3], "resolved", sum[4], "by_channel", by_channel,
                  "first_response_ms", response_percentiles(samples), "breaches", breaches);
    json_decref(samples);
    sb__fan_finish(f, res);
    json_decref(res);
}

/* The shards' figures, then staff_online added: what the honest wait needs in one call. */
typedef struct stats_ctx {
    sb_store_t *st;
    sb_store_cb cb;
    void *data;
    json_int_t online;
} stats_ctx_t;

static void on_shards(int status, json_t *res, const char *errmsg, void *data)
{
    stats_ctx_t *sc = data;
    if (status == 0)
        json_object_set_new(res, "staff_online", json_integer(sc->online));
    sc->cb(status, res, errmsg, sc->data);
    sb_free(sc);
}

static int stats_shards(stats_ctx_t *sc)
{
    sb__fan_t *f = sb__fan_new(sc->st, on_shards, sc);
    sb__fan_begin(f, stats_done);
    int rc = 0;
    for (unsigned i = 0; i < sb_store_opts(sc->st)->shards && !rc; i++)
        rc = sb__fan_fcall(f, "sb_stats", i, json_object(), 0);
    if (rc && f->pending == 1) {
        sb__fan_free(f);
        return rc;
    }
    sb__fan_end(f);
    return 0;
}

static void on_online(int status, json_t *res, const char *errmsg, void *data)
{
    stats_ctx_t *sc = data;
    if (status == 0)
        sc->online = json_integer_value(json_object_get(res, "online"));
    if (status == 0 && (status = stats_shards(sc)) == 0)
        return;
    sc->cb(status, NULL, errmsg ? errmsg : sb_strerror(status), sc->data);
    sb_free(sc);
}

int sb_store_stats(sb_store_t *st, sb_store_cb cb, void *data)
{
    stats_ctx_t *sc = SB_NEW(stats_ctx_t);
    sc->st = st;
    sc->cb = cb;
    sc->data = data;
    int rc = sb_store_online(st, on_online, sc);
    if (rc)
        sb_free(sc);
    return rc;
}

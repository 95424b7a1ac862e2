/* SPDX-License-Identifier: MIT */
/*
 * The store's fan-out (store_internal.h): several commands or FCALLs at once, one
 * continuation when every reply is in. Shards are independent slots, so the operations
 * over every shard (store_lists.c, store_merge.c, store_stats.c) need no cross-slot
 * transaction: each issues a round of calls and carries on from its continuation.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

sb__fan_t *sb__fan_new(sb_store_t *st, sb_store_cb cb, void *data)
{
    sb__fan_t *f = SB_NEW(sb__fan_t);
    f->st = st;
    f->cb = cb;
    f->data = data;
    f->parts = json_array();
    return f;
}

void sb__fan_free(sb__fan_t *f)
{
    json_decref(f->parts);
    sb_free(f);
}

/* Starts a round of calls whose continuation is done (parts are cleared). */
void sb__fan_begin(sb__fan_t *f, sb__fan_done_fn done)
{
    json_array_clear(f->parts);
    f->done = done;
    f->pending = 1; /* held until fan_end, so done never runs while issuing */
}

void sb__fan_end(sb__fan_t *f)
{
    if (--f->pending == 0)
        f->done(f);
}

void sb__fan_fail(sb__fan_t *f, int status, const char *errmsg)
{
    if (f->status)
        return;
    f->status = status;
    snprintf(f->errmsg, sizeof(f->errmsg), "%s", errmsg ? errmsg : sb_strerror(status));
}

static void on_fan_fcall(int status, json_t *res, const char *errmsg, void *data)
{
    sb__fan_call_t *fc = data;
    sb__fan_t *f = fc->f;
    if (status)
        sb__fan_fail(f, status, errmsg);
    else
        json_array_set(f->parts, fc->idx, res);
    sb_free(fc);
    sb__fan_end(f);
}

static sb__fan_call_t *fan_slot(sb__fan_t *f)
{
    sb__fan_call_t *fc = SB_NEW(sb__fan_call_t);
    fc->f = f;
    fc->idx = json_array_size(f->parts);
    json_array_append_new(f->parts, json_null());
    f->pending++;
    return fc;
}

/* Calls function fn on one shard (args stolen). Returns the issue error (also recorded). */
int sb__fan_fcall(sb__fan_t *f, const char *fn, unsigned shard, json_t *args, int nids)
{
    sb__fan_call_t *fc = fan_slot(f);
    int rc = sb__store_fcall(f->st, fn, shard, args, nids, on_fan_fcall, fc);
    if (rc) {
        sb__fan_fail(f, rc, NULL);
        sb_free(fc);
        f->pending--;
    }
    return rc;
}

/* A plain command's reply as JSON: strings, integers, nil, arrays (flat). */
static json_t *reply_json(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        return json_stringn(r->str, r->len);
    case REDIS_REPLY_INTEGER:
        return json_integer(r->integer);
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements; i++)
            json_array_append_new(a, reply_json(r->element[i]));
        return a;
    }
    default:
        return json_null();
    }
}

static void on_fan_cmd(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb__fan_call_t *fc = data;
    sb__fan_t *f = fc->f;
    if (status)
        sb__fan_fail(f, status, reply && reply->str ? reply->str : NULL);
    else
        json_array_set_new(f->parts, fc->idx, reply_json(reply));
    sb_free(fc);
    sb__fan_end(f);
}

/* Sends a plain command. Returns the issue error (also recorded). */
int sb__fan_cmd(sb__fan_t *f, int argc, const char **argv)
{
    sb__fan_call_t *fc = fan_slot(f);
    int rc = sb_redis_command_argv(sb__store_redis(f->st), on_fan_cmd, fc, 0, argc, argv, NULL);
    if (rc) {
        sb__fan_fail(f, rc, NULL);
        sb_free(fc);
        f->pending--;
    }
    return rc;
}

/* Answers the caller with result (borrowed) or the recorded failure; frees f. */
void sb__fan_finish(sb__fan_t *f, json_t *result)
{
    if (f->status)
        f->cb(f->status, NULL, f->errmsg, f->data);
    else
        f->cb(0, result, NULL, f->data);
    sb__fan_free(f);
}

/* A flat [k, v, k, v…] reply (HGETALL) as an object. */
json_t *sb__store_pairs_object(const json_t *flat)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < json_array_size(flat); i += 2) {
        const char *k = json_string_value(json_array_get(flat, i));
        if (k)
            json_object_set(o, k, json_array_get(flat, i + 1));
    }
    return o;
}

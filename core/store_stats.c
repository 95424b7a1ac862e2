/* SPDX-License-Identifier: MIT */
/*
 * Figures (store.h): recent staff response times read from every shard's `rt` stream.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
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
        char key[SB_KEY_MAX];
        snprintf(key, sizeof(key), "%s{%u}:rt", st->prefix, i);
        const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", count};
        if (sb_redis_command_argv(st->redis, on_rt, rc, 0, 6, argv, NULL) != 0)
            on_rt(st->redis, NULL, SB_EUNAVAILABLE, rc);
    }
    return 0;
}

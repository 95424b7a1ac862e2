/* SPDX-License-Identifier: MIT */
/*
 * Console notifications (store.h; docs/sla.md, "Notifications"): each staff member's
 * newest notifications in `<prefix>notif:<sid>` (a zset scored by the event's time, the
 * member the notification's compact JSON, so two nodes adding the same one add it once)
 * and the time up to which they have read them in `<prefix>notif_read:<sid>`. Plain
 * commands: the keys are outside the shards.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/store_internal.h"
#include "core/util.h"

typedef struct notif_ctx {
    sb_store_t *st;
    sb_key_t list, mark;
    long long read_until, want; /* the mark as read; the mark asked for (read) */
    unsigned limit;
    size_t waiting;
    int status;
    json_t *res;
    sb_store_cb cb;
    void *data;
} notif_ctx_t;

static notif_ctx_t *ctx_new(sb_store_t *st, sb_store_cb cb, void *data)
{
    notif_ctx_t *nc = SB_NEW(notif_ctx_t);
    nc->st = st;
    nc->res = json_object();
    nc->cb = cb;
    nc->data = data;
    return nc;
}

static void ctx_done(notif_ctx_t *nc)
{
    if (nc->status)
        nc->cb(nc->status, NULL, sb_strerror(nc->status), nc->data);
    else
        nc->cb(0, nc->res, NULL, nc->data);
    json_decref(nc->res);
    sb_free(nc);
}

static void ctx_release(notif_ctx_t *nc)
{
    if (--nc->waiting == 0)
        ctx_done(nc);
}

/* Sends one command held by nc (waiting counts it). */
static void ctx_send(notif_ctx_t *nc, sb_redis_reply_cb fn, int argc, const char **argv)
{
    nc->waiting++;
    if (sb_redis_command_argv(nc->st->redis, fn, nc, 0, argc, argv, NULL) != 0) {
        nc->status = SB_EUNAVAILABLE;
        nc->waiting--;
    }
}

static bool reply_failed(notif_ctx_t *nc, redisReply *reply, int status, int type)
{
    if (status || reply->type != type) {
        if (!nc->status)
            nc->status = status ? status : SB_EREDIS;
        return true;
    }
    return false;
}

/* ---- Adding ---- */

static void on_added(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notif_ctx_t *nc = data;
    if (!reply_failed(nc, reply, status, REDIS_REPLY_INTEGER)) {
        json_t *n = json_object_get(nc->res, "added");
        json_object_set_new(nc->res, "added", json_integer(json_integer_value(n) + reply->integer));
    }
    ctx_release(nc);
}

static void on_trimmed(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notif_ctx_t *nc = data;
    reply_failed(nc, reply, status, REDIS_REPLY_INTEGER);
    ctx_release(nc);
}

int sb_store_notif_add(sb_store_t *st, const char *const *sids, size_t n, long long ts,
                       const char *member, sb_store_cb cb, void *data)
{
    if (n == 0 || !member || !*member)
        return SB_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!sb_id_valid(sids[i], "st_"))
            return SB_EINVAL;
    notif_ctx_t *nc = ctx_new(st, cb, data);
    json_object_set_new(nc->res, "added", json_integer(0));
    char score[24], keep[24];
    snprintf(score, sizeof(score), "%lld", ts);
    snprintf(keep, sizeof(keep), "%d", -SB_STORE_NOTIF_KEEP - 1);
    nc->waiting = 1; /* held while sending */
    for (size_t i = 0; i < n && !nc->status; i++) {
        sb_key_notif(&nc->list, st->prefix, sids[i]);
        const char *zadd[] = {"ZADD", nc->list.str, score, member};
        const char *trim[] = {"ZREMRANGEBYRANK", nc->list.str, "0", keep};
        ctx_send(nc, on_added, 4, zadd);
        ctx_send(nc, on_trimmed, 4, trim);
    }
    if (nc->status && nc->waiting == 1) { /* nothing went out: the caller hears it */
        int rc = nc->status;
        json_decref(nc->res);
        sb_free(nc);
        return rc;
    }
    ctx_release(nc);
    return 0;
}

/* ---- Reading ---- */

static void on_items(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notif_ctx_t *nc = data;
    if (!reply_failed(nc, reply, status, REDIS_REPLY_ARRAY)) {
        json_t *items = json_array();
        for (size_t i = 0; i < reply->elements; i++) {
            redisReply *e = reply->element[i];
            json_t *item =
                e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
            if (json_is_object(item))
                json_array_append_new(items, item);
            else
                json_decref(item);
        }
        json_object_set_new(nc->res, "items", items);
    }
    ctx_release(nc);
}

static void on_unread(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notif_ctx_t *nc = data;
    if (!reply_failed(nc, reply, status, REDIS_REPLY_INTEGER))
        json_object_set_new(nc->res, "unread", json_integer(reply->integer));
    ctx_release(nc);
}

static void on_mark_set(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notif_ctx_t *nc = data;
    reply_failed(nc, reply, status, REDIS_REPLY_STATUS);
    ctx_release(nc);
}

/* The read mark is known: move it forward (read), then count and list. */
static void on_mark(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notif_ctx_t *nc = data;
    if (status || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
        nc->status = status ? status : SB_EREDIS;
        ctx_release(nc);
        return;
    }
    nc->read_until = reply->type == REDIS_REPLY_STRING ? strtoll(reply->str, NULL, 10) : 0;
    char ms[24], min[26], limit[16];
    if (nc->want > nc->read_until) {
        nc->read_until = nc->want;
        snprintf(ms, sizeof(ms), "%lld", nc->want);
        const char *set[] = {"SET", nc->mark.str, ms};
        ctx_send(nc, on_mark_set, 3, set);
    }
    json_object_set_new(nc->res, "read_until", json_integer(nc->read_until));
    snprintf(min, sizeof(min), "(%lld", nc->read_until);
    const char *count[] = {"ZCOUNT", nc->list.str, min, "+inf"};
    ctx_send(nc, on_unread, 4, count);
    if (nc->limit) {
        snprintf(limit, sizeof(limit), "%u", nc->limit - 1);
        const char *range[] = {"ZREVRANGE", nc->list.str, "0", limit};
        ctx_send(nc, on_items, 4, range);
    }
    ctx_release(nc);
}

static int notif_start(sb_store_t *st, const char *sid, unsigned limit, long long want,
                       sb_store_cb cb, void *data)
{
    if (!sb_id_valid(sid, "st_") || want < 0)
        return SB_EINVAL;
    notif_ctx_t *nc = ctx_new(st, cb, data);
    sb_key_notif(&nc->list, st->prefix, sid);
    sb_key_notif_read(&nc->mark, st->prefix, sid);
    nc->limit = limit;
    nc->want = want;
    nc->waiting = 1; /* held by the mark's reply */
    const char *get[] = {"GET", nc->mark.str};
    int rc = sb_redis_command_argv(st->redis, on_mark, nc, 0, 2, get, NULL);
    if (rc) {
        json_decref(nc->res);
        sb_free(nc);
    }
    return rc;
}

int sb_store_notif_list(sb_store_t *st, const char *sid, unsigned limit, sb_store_cb cb, void *data)
{
    if (limit < 1 || limit > SB_STORE_NOTIF_KEEP)
        return SB_EINVAL;
    return notif_start(st, sid, limit, 0, cb, data);
}

int sb_store_notif_read(sb_store_t *st, const char *sid, long long until_ms, sb_store_cb cb,
                        void *data)
{
    return notif_start(st, sid, 0, until_ms, cb, data);
}

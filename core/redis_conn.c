/* SPDX-License-Identifier: MIT */
/*
 * The Redis client's connection lifecycle (redis_internal.h): connecting (with a
 * timeout), the PING that tells a Redis still loading its dataset apart, SELECT, the
 * on_connect hook and the flush of the commands queued while disconnected; and a lost
 * connection: it is detached before any callback runs for its failure, every in-flight
 * command fails, and a reconnect is scheduled with exponential backoff (50 ms to 2 s).
 * An outage is logged once.
 */
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/redis_internal.h"

/* ---- Connection lifecycle ---- */

static void schedule_reconnect(sb_redis_t *r)
{
    r->state = SB__REDIS_WAITING;
    uv_timer_start(&r->conn_timer, sb__redis_on_conn_timer, r->backoff_ms, 0);
    r->backoff_ms =
        r->backoff_ms * 2 > SB__REDIS_BACKOFF_MAX_MS ? SB__REDIS_BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void note_failure(sb_redis_t *r, int err, const char *why, bool was_up, size_t failed)
{
    if (!r->connected_once && sb__redis_now_ms() < r->quiet_until_ms) {
        SB_LOG_DEBUG("redis.wait", "name=%s addr=%s err=%s reason=\"%s\"", r->name, r->url,
                     sb_err_name(err), why);
    } else if (!r->warned) {
        SB_LOG_WARN(was_up ? "redis.disconnect" : "redis.connect",
                    "name=%s addr=%s err=%s reason=\"%s\" failed=%zu", r->name, r->url,
                    sb_err_name(err), why, failed);
        r->warned = true;
    } else {
        SB_LOG_DEBUG("redis.retry", "name=%s addr=%s err=%s reason=\"%s\" failed=%zu", r->name,
                     r->url, sb_err_name(err), why, failed);
    }
    r->down = true;
}

/*
 * Detaches the current connection (if any), fails every in-flight command with err
 * and, unless stopping, schedules a reconnect. free_ac: we free the context
 * (otherwise hiredis is about to).
 */
void sb__redis_conn_drop(sb_redis_t *r, int err, bool free_ac, const char *why)
{
    redisAsyncContext *ac = r->ac;
    bool was_up = r->up;
    sb__redis_cmd_list_t failed = r->inflight;
    memset(&r->inflight, 0, sizeof(r->inflight));
    for (sb__redis_cmd_t *c = failed.head; c; c = c->next) {
        c->done = true;
        sb__redis_heap_remove(r, c);
    }
    r->ac = NULL;
    r->up = false;
    r->connect_ok = false;
    if (!r->stopping) {
        note_failure(r, err, why, was_up, failed.n);
        schedule_reconnect(r);
    }
    if (ac) {
        ac->data = NULL;
        if (free_ac)
            redisAsyncFree(ac); /* deferred by hiredis when inside one of its callbacks */
    }
    if (was_up && !r->stopping && r->on_disconnect)
        r->on_disconnect(r, err, r->data);
    sb__redis_cmd_t *c;
    while ((c = sb__redis_list_shift(&failed)) != NULL)
        sb__redis_cmd_finish(r, c, NULL, err);
}

/* Sends everything queued, in order (what hiredis refuses stays queued). */
static void flush_queue(sb_redis_t *r)
{
    sb__redis_cmd_t *c;
    while (r->ac && (c = sb__redis_list_shift(&r->queue)) != NULL) {
        if (!sb__redis_cmd_send(r, c)) {
            sb__redis_list_unshift(&r->queue, c);
            SB_LOG_ERROR("redis.flush", "name=%s addr=%s err=refused", r->name, r->url);
            break;
        }
    }
}

static void run_hook(sb_redis_t *r)
{
    r->state = SB__REDIS_HOOK;
    r->up = true;
    SB_LOG_DEBUG("redis.connected", "name=%s addr=%s queued=%zu", r->name, r->url, r->queue.n);
    if (r->on_connect)
        r->on_connect(r, r->data);
    if (r->state != SB__REDIS_HOOK)
        return; /* stopped inside the hook */
    flush_queue(r);
    r->state = SB__REDIS_READY;
}

static void on_select_reply(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    if (status == 0) {
        if (r->state == SB__REDIS_SELECTING)
            run_hook(r);
        return;
    }
    if (status == SB_EREDIS)
        SB_LOG_ERROR("redis.select", "name=%s addr=%s db=%d err=\"%s\"", r->name, r->url, r->db,
                     reply->str);
    if (r->state == SB__REDIS_SELECTING && r->ac)
        sb__redis_conn_drop(r, status, true, "SELECT failed");
}

/*
 * A Redis that is still loading its dataset (AOF/RDB replay after a restart) accepts
 * connections but answers every command with -LOADING: the connection is not up yet.
 * Drop it and try again with the usual backoff.
 */
static void on_hello_reply(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    if (r->state != SB__REDIS_SELECTING || !r->ac)
        return;
    if (status == SB_EREDIS && reply && reply->str && strncmp(reply->str, "LOADING", 7) == 0) {
        SB_LOG_INFO("redis.loading", "name=%s addr=%s msg=\"still loading its dataset\"", r->name,
                    r->url);
        sb__redis_conn_drop(r, SB_EDISCONNECTED, true, "loading");
        return;
    }
    if (status != 0 && status != SB_EREDIS) {
        sb__redis_conn_drop(r, status, true, "PING failed");
        return;
    }
    if (r->db == 0)
        run_hook(r);
    else
        sb__redis_send_internal(r, on_select_reply, "SELECT %d", r->db);
}

/* The connect completed (called from on_poll, outside hiredis's callbacks). */
void sb__redis_on_connected(sb_redis_t *r)
{
    uv_timer_stop(&r->conn_timer);
    r->last_io_ms = sb__redis_now_ms();
    if (r->connected_once)
        r->stats.reconnects++;
    r->connected_once = true;
    r->state = SB__REDIS_SELECTING;
    sb__redis_send_internal(r, on_hello_reply, "PING");
}

static void on_hiredis_connect(const redisAsyncContext *ac, int status)
{
    sb_redis_t *r = ac->data;
    if (!r || r->ac != ac)
        return;
    if (status == REDIS_OK)
        r->connect_ok = true; /* finished by on_poll once hiredis returns */
    else
        sb__redis_conn_drop(r, SB_EDISCONNECTED, false, ac->errstr ? ac->errstr : "connect failed");
}

static void on_hiredis_disconnect(const redisAsyncContext *ac, int status)
{
    sb_redis_t *r = ac->data;
    if (!r || r->ac != ac)
        return; /* detached: already handled */
    sb__redis_conn_drop(r, SB_EDISCONNECTED, false,
                        ac->errstr && *ac->errstr ? ac->errstr : "closed");
}

static void conn_start(sb_redis_t *r)
{
    redisAsyncContext *ac =
        r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err || sb__redis_attach(r, ac) != 0) {
        char why[160];
        snprintf(why, sizeof(why), "%s", ac && ac->err ? ac->errstr : "cannot set up");
        if (ac)
            redisAsyncFree(ac); /* no callbacks set yet: nothing runs */
        note_failure(r, SB_EDISCONNECTED, why, false, 0);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    r->state = SB__REDIS_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_hiredis_connect); /* also asks for a write event */
    redisAsyncSetDisconnectCallback(ac, on_hiredis_disconnect);
    uv_timer_start(&r->conn_timer, sb__redis_on_conn_timer, r->connect_timeout_ms, 0);
}

void sb__redis_on_conn_timer(uv_timer_t *t)
{
    sb_redis_t *r = t->data;
    if (r->state == SB__REDIS_WAITING)
        conn_start(r);
    else if (r->state == SB__REDIS_CONNECTING)
        sb__redis_conn_drop(r, SB_ETIMEDOUT, true, "connect timed out");
}

/* SPDX-License-Identifier: MIT */
/*
 * The async Redis client of redis.h: hiredis 0.14 on the libuv loop, plus what hiredis
 * 0.14 lacks. This file owns the client object, its commands (the queue while
 * disconnected, the in-flight FIFO, per-command deadlines in one min-heap), the PING
 * watchdog and the latency statistics. The connection lifecycle (connect, reconnect
 * with backoff) is in redis_conn.c, the libuv adapter in redis_uv.c, the address parser
 * in redis_url.c; what they share is in redis_internal.h.
 *
 * Ownership. Each command is a sb__redis_cmd_t. While it is on the wire it has two references:
 * ours (the in-flight FIFO, in send order, which is reply order) and hiredis's (its
 * reply callback runs exactly once, with NULL when the context is freed). Whoever
 * completes the command first sets `done` and runs the user's callback; the other
 * side only drops its reference. A hiredis context is detached (r->ac = NULL,
 * ac->data = NULL, every in-flight command marked done) before any user callback runs
 * for its failure, so callbacks of a dying context never reach the client again, and
 * we call redisAsyncFree() only on an attached context: hiredis frees it by itself
 * after a failed connect or after its disconnect callback. Memory of the client and
 * of the adapters is freed only in uv close callbacks.
 *
 * Deadlines of every pending command (queued or in flight) sit in one min-heap that
 * drives a single timer. A queued command past its deadline fails alone; an in-flight
 * one declares the connection dead (Redis answers in order, so everything behind it
 * is stuck too): all in-flight commands fail with SB_ETIMEDOUT and we reconnect.
 */
#include "core/redis.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/redis_internal.h"

#define DEFAULT_CMD_TIMEOUT_MS     5000
#define DEFAULT_PING_INTERVAL_MS   1000
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_MAX_QUEUED         100000

const double sb_redis_lat_bounds_us[SB_REDIS_LAT_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000, INFINITY};

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* ---- The deadline heap ---- */

static void heap_set(sb_redis_t *r, size_t i, sb__redis_cmd_t *c)
{
    r->heap[i] = c;
    c->hidx = i;
}

static void heap_up(sb_redis_t *r, size_t i)
{
    sb__redis_cmd_t *c = r->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (r->heap[p]->deadline_ms <= c->deadline_ms)
            break;
        heap_set(r, i, r->heap[p]);
        i = p;
    }
    heap_set(r, i, c);
}

static void heap_down(sb_redis_t *r, size_t i)
{
    sb__redis_cmd_t *c = r->heap[i];
    for (;;) {
        size_t k = 2 * i + 1;
        if (k >= r->hlen)
            break;
        if (k + 1 < r->hlen && r->heap[k + 1]->deadline_ms < r->heap[k]->deadline_ms)
            k++;
        if (c->deadline_ms <= r->heap[k]->deadline_ms)
            break;
        heap_set(r, i, r->heap[k]);
        i = k;
    }
    heap_set(r, i, c);
}

static void heap_push(sb_redis_t *r, sb__redis_cmd_t *c)
{
    if (r->hlen == r->hcap) {
        r->hcap = r->hcap ? 2 * r->hcap : 64;
        r->heap = sb_realloc(r->heap, r->hcap * sizeof(*r->heap));
    }
    heap_set(r, r->hlen++, c);
    heap_up(r, c->hidx);
}

void sb__redis_heap_remove(sb_redis_t *r, sb__redis_cmd_t *c)
{
    size_t i = c->hidx;
    if (i == SB__REDIS_NO_HEAP)
        return;
    c->hidx = SB__REDIS_NO_HEAP;
    sb__redis_cmd_t *last = r->heap[--r->hlen];
    if (i < r->hlen) {
        heap_set(r, i, last);
        heap_up(r, i);
        heap_down(r, last->hidx);
    }
}

/* ---- Commands ---- */

static void cmd_unref(sb__redis_cmd_t *c)
{
    if (--c->refs > 0)
        return;
    if (c->buf)
        redisFreeCommand(c->buf);
    sb_free(c);
}

static void record_latency(sb_redis_t *r, const sb__redis_cmd_t *c)
{
    double us = (double)(uv_hrtime() - c->sent_ns) / 1000.0;
    int i = 0;
    while (i < SB_REDIS_LAT_BUCKETS - 1 && us > sb_redis_lat_bounds_us[i])
        i++;
    r->stats.lat_count[i]++;
    r->stats.lat_sum_us += us;
}

/* Runs c's callback (once: c is already out of every list) and drops our reference. */
void sb__redis_cmd_finish(sb_redis_t *r, sb__redis_cmd_t *c, redisReply *reply, int status)
{
    c->done = true;
    sb__redis_heap_remove(r, c);
    if (reply) {
        r->stats.commands++;
        record_latency(r, c);
    } else {
        r->stats.errors++;
    }
    if (c->cb)
        c->cb(r, reply, status, c->data);
    cmd_unref(c);
}

/* Hands c to hiredis on the current connection; false if hiredis refused it. */
bool sb__redis_cmd_send(sb_redis_t *r, sb__redis_cmd_t *c)
{
    if (redisAsyncFormattedCommand(r->ac, on_reply, c, c->buf, c->len) != REDIS_OK)
        return false;
    redisFreeCommand(c->buf);
    c->buf = NULL;
    c->refs++; /* hiredis's */
    c->inflight = true;
    c->sent_ns = uv_hrtime();
    sb__redis_list_push(&r->inflight, c);
    return true;
}

/* Checks a formatted command: at least a name, and not one that changes hiredis's
 * reply routing (pub/sub, MONITOR), which this client does not support. */
static int cmd_check(const char *buf, size_t len)
{
    static const char *const unsupported[] = {"subscribe",   "psubscribe",   "ssubscribe",
                                              "unsubscribe", "punsubscribe", "sunsubscribe",
                                              "monitor"};
    const char *end = buf + len;
    const char *p = memchr(buf, '\n', len);
    if (!p || end - p < 2 || p[1] != '$')
        return SB_EINVAL;
    char *q;
    unsigned long n = strtoul(p + 2, &q, 10);
    if (q + 2 > end || q[0] != '\r' || q[1] != '\n' || n > (size_t)(end - (q + 2)))
        return SB_EINVAL;
    for (size_t i = 0; i < SB_ARRAY_LEN(unsupported); i++)
        if (strlen(unsupported[i]) == n && strncasecmp(q + 2, unsupported[i], n) == 0)
            return SB_EINVAL;
    return 0;
}

static void arm_deadline(sb_redis_t *r);

/* Creates a command from a formatted buffer (takes ownership) and enters its deadline. */
static sb__redis_cmd_t *cmd_new(sb_redis_t *r, sb_redis_reply_cb cb, void *data,
                                uint32_t timeout_ms, char *buf, size_t len)
{
    sb__redis_cmd_t *c = SB_NEW(sb__redis_cmd_t);
    c->r = r;
    c->cb = cb;
    c->data = data;
    c->buf = buf;
    c->len = len;
    c->refs = 1;
    c->hidx = SB__REDIS_NO_HEAP;
    c->deadline_ms = sb__redis_now_ms() + (timeout_ms ? timeout_ms : r->cmd_timeout_ms);
    c->sent_ns = uv_hrtime();
    heap_push(r, c);
    arm_deadline(r);
    return c;
}

/* Sends an internal command (SELECT, PING) on the current connection. */
void sb__redis_send_internal(sb_redis_t *r, sb_redis_reply_cb cb, const char *fmt, ...)
{
    char *buf;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    sb__redis_cmd_t *c = cmd_new(r, cb, NULL, 0, buf, (size_t)len);
    if (!sb__redis_cmd_send(r, c))
        sb__redis_cmd_finish(r, c, NULL, SB_EDISCONNECTED);
}

/* The hiredis reply callback of every command. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    sb__redis_cmd_t *c = privdata;
    sb_redis_t *r = c->r;
    if (c->done) {
        /* Already failed by us (timeout, stop): only hiredis's reference is left. */
    } else if (reply) {
        redisReply *rep = reply;
        sb__redis_list_remove(&r->inflight, c);
        r->last_io_ms = sb__redis_now_ms();
        if (r->down) {
            r->down = false;
            r->backoff_ms = SB__REDIS_BACKOFF_MIN_MS;
            SB_LOG_INFO("redis.up", "name=%s addr=%s reconnects=%llu", r->name, r->url,
                        (unsigned long long)r->stats.reconnects);
            r->warned = false;
        }
        sb__redis_cmd_finish(r, c, rep, rep->type == REDIS_REPLY_ERROR ? SB_EREDIS : 0);
    } else if (r->ac == ac) {
        /* hiredis is freeing the context after an I/O error: the connection is lost. */
        sb__redis_conn_drop(r, SB_EDISCONNECTED, false,
                            ac->errstr && *ac->errstr ? ac->errstr : "lost");
    } else {
        sb__redis_list_remove(&r->inflight, c); /* not reached: detaching marks commands done */
        sb__redis_cmd_finish(r, c, NULL, SB_EDISCONNECTED);
    }
    cmd_unref(c);
}

/* ---- Deadlines and the watchdog ---- */

static void on_deadline(uv_timer_t *t)
{
    sb_redis_t *r = t->data;
    uint64_t now = sb__redis_now_ms();
    while (!r->stopping && r->hlen > 0 && r->heap[0]->deadline_ms <= now) {
        sb__redis_cmd_t *c = r->heap[0];
        if (c->inflight) {
            sb__redis_conn_drop(r, SB_ETIMEDOUT, true, "command timed out");
        } else {
            sb__redis_list_remove(&r->queue, c);
            sb__redis_cmd_finish(r, c, NULL, SB_ETIMEDOUT);
        }
    }
    arm_deadline(r);
}

static void arm_deadline(sb_redis_t *r)
{
    if (r->stopping || r->hlen == 0)
        return; /* an armed timer that finds nothing due is harmless */
    uint64_t due = r->heap[0]->deadline_ms;
    if (uv_is_active((uv_handle_t *)&r->deadline_timer) && r->armed_ms <= due)
        return;
    uint64_t now = sb__redis_now_ms();
    uv_timer_start(&r->deadline_timer, on_deadline, due > now ? due - now : 0, 0);
    r->armed_ms = due;
}

static void on_ping_reply(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    if (status == SB_EREDIS)
        SB_LOG_WARN("redis.ping", "name=%s addr=%s err=%s", r->name, r->url, reply->str);
}

static void on_ping_timer(uv_timer_t *t)
{
    sb_redis_t *r = t->data;
    if (r->state != SB__REDIS_READY || r->inflight.n > 0)
        return;
    if (sb__redis_now_ms() - r->last_io_ms < r->ping_interval_ms / 2)
        return;
    sb__redis_send_internal(r, on_ping_reply, "PING");
}

/* ---- Public API ---- */

static void free_client(sb_redis_t *r)
{
    sb_free(r->heap);
    sb_free(r->name);
    sb_free(r->url);
    sb_free(r->host);
    sb_free(r->path);
    sb_free(r);
}

void sb__redis_handle_closed(sb_redis_t *r)
{
    if (--r->handles > 0 || !r->stopping)
        return;
    void (*cb)(void *) = r->stop_cb;
    void *data = r->stop_data;
    SB_LOG_DEBUG("redis.stopped", "name=%s addr=%s", r->name, r->url);
    free_client(r);
    if (cb)
        cb(data);
}

static void on_timer_closed(uv_handle_t *h)
{
    sb__redis_handle_closed(h->data);
}

static void init_timer(sb_redis_t *r, uv_timer_t *t)
{
    uv_timer_init(r->loop, t);
    t->data = r;
    r->handles++;
}

int sb_redis_new(uv_loop_t *loop, const sb_redis_opts_t *opts, sb_redis_t **out)
{
    if (!opts || !opts->url)
        return SB_EINVAL;
    sb_redis_t *r = SB_NEW(sb_redis_t);
    int rc = sb__redis_parse_url(r, opts->url);
    if (rc) {
        SB_LOG_ERROR("redis.config", "name=%s err=INVAL reason=\"bad url\"",
                     opts->name ? opts->name : "redis");
        free_client(r);
        return rc;
    }
    r->loop = loop;
    r->name = sb_strdup(opts->name ? opts->name : "redis");
    r->url = sb_strdup(opts->url);
    r->cmd_timeout_ms = opts->cmd_timeout_ms ? opts->cmd_timeout_ms : DEFAULT_CMD_TIMEOUT_MS;
    r->ping_interval_ms =
        opts->ping_interval_ms ? opts->ping_interval_ms : DEFAULT_PING_INTERVAL_MS;
    r->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    r->quiet_until_ms = sb__redis_now_ms() + opts->start_grace_ms;
    r->max_queued = opts->max_queued ? opts->max_queued : DEFAULT_MAX_QUEUED;
    r->on_connect = opts->on_connect;
    r->on_disconnect = opts->on_disconnect;
    r->data = opts->data;
    struct sigaction cur;
    r->guard_sigpipe = sigaction(SIGPIPE, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL;
    r->state = SB__REDIS_WAITING;
    r->down = true;
    r->backoff_ms = SB__REDIS_BACKOFF_MIN_MS;
    init_timer(r, &r->conn_timer);
    init_timer(r, &r->deadline_timer);
    init_timer(r, &r->ping_timer);
    uv_timer_start(&r->conn_timer, sb__redis_on_conn_timer, 0, 0); /* connect from the loop */
    uv_timer_start(&r->ping_timer, on_ping_timer, r->ping_interval_ms, r->ping_interval_ms);
    *out = r;
    return 0;
}

/* Sends or queues a formatted command (takes ownership of buf). */
static int submit(sb_redis_t *r, sb_redis_reply_cb cb, void *data, uint32_t timeout_ms, char *buf,
                  int len)
{
    if (len < 0)
        return SB_EINVAL;
    int rc = cmd_check(buf, (size_t)len);
    bool now = r->ac && (r->state == SB__REDIS_HOOK || r->state == SB__REDIS_READY);
    if (rc == 0 && !now && r->queue.n >= r->max_queued)
        rc = SB_ETOOBIG;
    if (rc) {
        redisFreeCommand(buf);
        return rc;
    }
    sb__redis_cmd_t *c = cmd_new(r, cb, data, timeout_ms, buf, (size_t)len);
    if (!now || !sb__redis_cmd_send(r, c))
        sb__redis_list_push(&r->queue, c);
    return 0;
}

int sb_redis_command_argv(sb_redis_t *r, sb_redis_reply_cb cb, void *data, uint32_t timeout_ms,
                          int argc, const char **argv, const size_t *argvlen)
{
    if (r->stopping)
        return SB_ECANCELED;
    if (argc < 1 || !argv)
        return SB_EINVAL;
    char *buf;
    int len = redisFormatCommandArgv(&buf, argc, argv, argvlen);
    return submit(r, cb, data, timeout_ms, buf, len);
}

int sb_redis_command(sb_redis_t *r, sb_redis_reply_cb cb, void *data, const char *fmt, ...)
{
    if (r->stopping)
        return SB_ECANCELED;
    char *buf;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    return submit(r, cb, data, 0, buf, len);
}

bool sb_redis_connected(const sb_redis_t *r)
{
    return r && r->state == SB__REDIS_READY;
}

void sb_redis_stats(const sb_redis_t *r, sb_redis_stats_t *out)
{
    *out = r->stats;
}

void sb_redis_stop(sb_redis_t *r, void (*cb)(void *data), void *data)
{
    if (!r || r->stopping)
        return;
    r->stopping = true;
    r->stop_cb = cb;
    r->stop_data = data;
    r->state = SB__REDIS_STOPPED;
    uv_close((uv_handle_t *)&r->conn_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->deadline_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->ping_timer, on_timer_closed);
    sb__redis_conn_drop(r, SB_ECANCELED, true, "stopped");
    sb__redis_cmd_t *c;
    while ((c = sb__redis_list_shift(&r->queue)) != NULL)
        sb__redis_cmd_finish(r, c, NULL, SB_ECANCELED);
}

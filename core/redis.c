/* SPDX-License-Identifier: MIT */
/*
 * The async Redis client of redis.h: hiredis 0.14 on the libuv loop through our own
 * adapter (one uv_poll_t per connection that, unlike the packaged one, hands poll
 * errors to hiredis so a refused connect reaches the connect callback), plus what
 * hiredis 0.14 lacks: per-command deadlines, a bounded queue while disconnected,
 * reconnects with backoff, a PING watchdog and latency statistics.
 *
 * Ownership. Each command is a cmd_t. While it is on the wire it has two references:
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
#include <sys/un.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define DEFAULT_CMD_TIMEOUT_MS     5000
#define DEFAULT_PING_INTERVAL_MS   1000
#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_MAX_QUEUED         100000
#define BACKOFF_MIN_MS             50
#define BACKOFF_MAX_MS             2000
#define MAX_DB                     1000000
#define NO_HEAP                    SIZE_MAX

const double sb_redis_lat_bounds_us[SB_REDIS_LAT_BUCKETS] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 100000, 1000000, INFINITY};

typedef enum {
    ST_WAITING,    /* no connection; conn_timer starts the next attempt */
    ST_CONNECTING, /* connect(2) in progress; conn_timer is its timeout */
    ST_SELECTING,  /* connected, PING (and SELECT) sent, waiting for the replies */
    ST_HOOK,       /* connected, running opts.on_connect: commands go out at once */
    ST_READY,      /* connected, queue flushed */
    ST_STOPPED,
} state_t;

typedef struct cmd {
    struct cmd *prev, *next; /* in r->queue or r->inflight (or a local list) */
    sb_redis_t *r;
    sb_redis_reply_cb cb;
    void *data;
    char *buf; /* the formatted command while queued (hiredis allocation) */
    size_t len;
    uint64_t deadline_ms; /* on the now_ms() clock */
    uint64_t sent_ns;
    size_t hidx; /* index in r->heap, NO_HEAP when not there */
    int refs;
    bool done;
    bool inflight;
} cmd_t;

typedef struct cmd_list {
    cmd_t *head, *tail;
    size_t n;
} cmd_list_t;

/* The event-library side of one hiredis context. */
typedef struct adapter {
    uv_poll_t poll;
    uv_prepare_t flush; /* writes this loop turn's commands before the loop polls */
    sb_redis_t *r;
    redisAsyncContext *ac; /* NULL once hiredis called cleanup */
    int events;
    int open_handles; /* poll and flush: the adapter is freed when both have closed */
    bool want_flush;  /* hiredis has output and flush is started */
    bool writing;     /* inside redisAsyncHandleWrite: more to write means POLLOUT */
} adapter_t;

struct sb_redis {
    uv_loop_t *loop;
    char *name, *url;  /* for logs */
    char *host, *path; /* TCP host or unix socket path */
    int port, db;
    uint32_t cmd_timeout_ms, ping_interval_ms, connect_timeout_ms;
    size_t max_queued;
    sb_redis_connect_cb on_connect;
    sb_redis_disconnect_cb on_disconnect;
    void *data;
    bool guard_sigpipe; /* SIGPIPE was not ignored at creation: ignore it around writes */

    state_t state;
    redisAsyncContext *ac;   /* the current connection, or NULL */
    bool connect_ok;         /* hiredis reported the connect; on_poll finishes it */
    bool up;                 /* on_connect ran for the current connection */
    bool down;               /* no reply since the last failure: an outage */
    bool warned;             /* the outage was logged */
    uint64_t quiet_until_ms; /* no warning before this if never connected (start_grace_ms) */
    bool connected_once;
    uint32_t backoff_ms;
    uint64_t last_io_ms;

    uv_timer_t conn_timer, deadline_timer, ping_timer;
    uint64_t armed_ms; /* deadline_timer's due time while active */
    int handles;       /* open uv handles: three timers and the adapters' polls */

    cmd_list_t queue, inflight;
    cmd_t **heap;
    size_t hlen, hcap;
    sb_redis_stats_t stats;

    bool stopping;
    void (*stop_cb)(void *data);
    void *stop_data;
};

static void conn_drop(sb_redis_t *r, int err, bool free_ac, const char *why);
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* ---- Lists and the deadline heap ---- */

static void list_push(cmd_list_t *l, cmd_t *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
}

static void list_unshift(cmd_list_t *l, cmd_t *c)
{
    c->prev = NULL;
    c->next = l->head;
    if (l->head)
        l->head->prev = c;
    else
        l->tail = c;
    l->head = c;
    l->n++;
}

static void list_remove(cmd_list_t *l, cmd_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
}

static cmd_t *list_shift(cmd_list_t *l)
{
    cmd_t *c = l->head;
    if (c)
        list_remove(l, c);
    return c;
}

static void heap_set(sb_redis_t *r, size_t i, cmd_t *c)
{
    r->heap[i] = c;
    c->hidx = i;
}

static void heap_up(sb_redis_t *r, size_t i)
{
    cmd_t *c = r->heap[i];
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
    cmd_t *c = r->heap[i];
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

static void heap_push(sb_redis_t *r, cmd_t *c)
{
    if (r->hlen == r->hcap) {
        r->hcap = r->hcap ? 2 * r->hcap : 64;
        r->heap = sb_realloc(r->heap, r->hcap * sizeof(*r->heap));
    }
    heap_set(r, r->hlen++, c);
    heap_up(r, c->hidx);
}

static void heap_remove(sb_redis_t *r, cmd_t *c)
{
    size_t i = c->hidx;
    if (i == NO_HEAP)
        return;
    c->hidx = NO_HEAP;
    cmd_t *last = r->heap[--r->hlen];
    if (i < r->hlen) {
        heap_set(r, i, last);
        heap_up(r, i);
        heap_down(r, last->hidx);
    }
}

/* ---- Commands ---- */

static void cmd_unref(cmd_t *c)
{
    if (--c->refs > 0)
        return;
    if (c->buf)
        redisFreeCommand(c->buf);
    sb_free(c);
}

static void record_latency(sb_redis_t *r, const cmd_t *c)
{
    double us = (double)(uv_hrtime() - c->sent_ns) / 1000.0;
    int i = 0;
    while (i < SB_REDIS_LAT_BUCKETS - 1 && us > sb_redis_lat_bounds_us[i])
        i++;
    r->stats.lat_count[i]++;
    r->stats.lat_sum_us += us;
}

/* Runs c's callback (once: c is already out of every list) and drops our reference. */
static void cmd_finish(sb_redis_t *r, cmd_t *c, redisReply *reply, int status)
{
    c->done = true;
    heap_remove(r, c);
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
static bool cmd_send(sb_redis_t *r, cmd_t *c)
{
    if (redisAsyncFormattedCommand(r->ac, on_reply, c, c->buf, c->len) != REDIS_OK)
        return false;
    redisFreeCommand(c->buf);
    c->buf = NULL;
    c->refs++; /* hiredis's */
    c->inflight = true;
    c->sent_ns = uv_hrtime();
    list_push(&r->inflight, c);
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
static cmd_t *cmd_new(sb_redis_t *r, sb_redis_reply_cb cb, void *data, uint32_t timeout_ms,
                      char *buf, size_t len)
{
    cmd_t *c = SB_NEW(cmd_t);
    c->r = r;
    c->cb = cb;
    c->data = data;
    c->buf = buf;
    c->len = len;
    c->refs = 1;
    c->hidx = NO_HEAP;
    c->deadline_ms = now_ms() + (timeout_ms ? timeout_ms : r->cmd_timeout_ms);
    c->sent_ns = uv_hrtime();
    heap_push(r, c);
    arm_deadline(r);
    return c;
}

/* Sends an internal command (SELECT, PING) on the current connection. */
static void send_internal(sb_redis_t *r, sb_redis_reply_cb cb, const char *fmt, ...)
{
    char *buf;
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&buf, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    cmd_t *c = cmd_new(r, cb, NULL, 0, buf, (size_t)len);
    if (!cmd_send(r, c))
        cmd_finish(r, c, NULL, SB_EDISCONNECTED);
}

/* The hiredis reply callback of every command. */
static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    cmd_t *c = privdata;
    sb_redis_t *r = c->r;
    if (c->done) {
        /* Already failed by us (timeout, stop): only hiredis's reference is left. */
    } else if (reply) {
        redisReply *rep = reply;
        list_remove(&r->inflight, c);
        r->last_io_ms = now_ms();
        if (r->down) {
            r->down = false;
            r->backoff_ms = BACKOFF_MIN_MS;
            SB_LOG_INFO("redis.up", "name=%s addr=%s reconnects=%llu", r->name, r->url,
                        (unsigned long long)r->stats.reconnects);
            r->warned = false;
        }
        cmd_finish(r, c, rep, rep->type == REDIS_REPLY_ERROR ? SB_EREDIS : 0);
    } else if (r->ac == ac) {
        /* hiredis is freeing the context after an I/O error: the connection is lost. */
        conn_drop(r, SB_EDISCONNECTED, false, ac->errstr && *ac->errstr ? ac->errstr : "lost");
    } else {
        list_remove(&r->inflight, c); /* not reached: detaching marks commands done */
        cmd_finish(r, c, NULL, SB_EDISCONNECTED);
    }
    cmd_unref(c);
}

/* ---- Deadlines and the watchdog ---- */

static void on_deadline(uv_timer_t *t)
{
    sb_redis_t *r = t->data;
    uint64_t now = now_ms();
    while (!r->stopping && r->hlen > 0 && r->heap[0]->deadline_ms <= now) {
        cmd_t *c = r->heap[0];
        if (c->inflight) {
            conn_drop(r, SB_ETIMEDOUT, true, "command timed out");
        } else {
            list_remove(&r->queue, c);
            cmd_finish(r, c, NULL, SB_ETIMEDOUT);
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
    uint64_t now = now_ms();
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
    if (r->state != ST_READY || r->inflight.n > 0)
        return;
    if (now_ms() - r->last_io_ms < r->ping_interval_ms / 2)
        return;
    send_internal(r, on_ping_reply, "PING");
}

/* ---- Connection lifecycle ---- */

static void on_conn_timer(uv_timer_t *t);

static void schedule_reconnect(sb_redis_t *r)
{
    r->state = ST_WAITING;
    uv_timer_start(&r->conn_timer, on_conn_timer, r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

static void note_failure(sb_redis_t *r, int err, const char *why, bool was_up, size_t failed)
{
    if (!r->connected_once && now_ms() < r->quiet_until_ms) {
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
static void conn_drop(sb_redis_t *r, int err, bool free_ac, const char *why)
{
    redisAsyncContext *ac = r->ac;
    bool was_up = r->up;
    cmd_list_t failed = r->inflight;
    memset(&r->inflight, 0, sizeof(r->inflight));
    for (cmd_t *c = failed.head; c; c = c->next) {
        c->done = true;
        heap_remove(r, c);
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
    cmd_t *c;
    while ((c = list_shift(&failed)) != NULL)
        cmd_finish(r, c, NULL, err);
}

/* Sends everything queued, in order (what hiredis refuses stays queued). */
static void flush_queue(sb_redis_t *r)
{
    cmd_t *c;
    while (r->ac && (c = list_shift(&r->queue)) != NULL) {
        if (!cmd_send(r, c)) {
            list_unshift(&r->queue, c);
            SB_LOG_ERROR("redis.flush", "name=%s addr=%s err=refused", r->name, r->url);
            break;
        }
    }
}

static void run_hook(sb_redis_t *r)
{
    r->state = ST_HOOK;
    r->up = true;
    SB_LOG_DEBUG("redis.connected", "name=%s addr=%s queued=%zu", r->name, r->url, r->queue.n);
    if (r->on_connect)
        r->on_connect(r, r->data);
    if (r->state != ST_HOOK)
        return; /* stopped inside the hook */
    flush_queue(r);
    r->state = ST_READY;
}

static void on_select_reply(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    if (status == 0) {
        if (r->state == ST_SELECTING)
            run_hook(r);
        return;
    }
    if (status == SB_EREDIS)
        SB_LOG_ERROR("redis.select", "name=%s addr=%s db=%d err=\"%s\"", r->name, r->url, r->db,
                     reply->str);
    if (r->state == ST_SELECTING && r->ac)
        conn_drop(r, status, true, "SELECT failed");
}

/*
 * A Redis that is still loading its dataset (AOF/RDB replay after a restart) accepts
 * connections but answers every command with -LOADING: the connection is not up yet.
 * Drop it and try again with the usual backoff.
 */
static void on_hello_reply(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    if (r->state != ST_SELECTING || !r->ac)
        return;
    if (status == SB_EREDIS && reply && reply->str && strncmp(reply->str, "LOADING", 7) == 0) {
        SB_LOG_INFO("redis.loading", "name=%s addr=%s msg=\"still loading its dataset\"", r->name,
                    r->url);
        conn_drop(r, SB_EDISCONNECTED, true, "loading");
        return;
    }
    if (status != 0 && status != SB_EREDIS) {
        conn_drop(r, status, true, "PING failed");
        return;
    }
    if (r->db == 0)
        run_hook(r);
    else
        send_internal(r, on_select_reply, "SELECT %d", r->db);
}

/* The connect completed (called from on_poll, outside hiredis's callbacks). */
static void on_connected(sb_redis_t *r)
{
    uv_timer_stop(&r->conn_timer);
    r->last_io_ms = now_ms();
    if (r->connected_once)
        r->stats.reconnects++;
    r->connected_once = true;
    r->state = ST_SELECTING;
    send_internal(r, on_hello_reply, "PING");
}

static void on_hiredis_connect(const redisAsyncContext *ac, int status)
{
    sb_redis_t *r = ac->data;
    if (!r || r->ac != ac)
        return;
    if (status == REDIS_OK)
        r->connect_ok = true; /* finished by on_poll once hiredis returns */
    else
        conn_drop(r, SB_EDISCONNECTED, false, ac->errstr ? ac->errstr : "connect failed");
}

static void on_hiredis_disconnect(const redisAsyncContext *ac, int status)
{
    sb_redis_t *r = ac->data;
    if (!r || r->ac != ac)
        return; /* detached: already handled */
    conn_drop(r, SB_EDISCONNECTED, false, ac->errstr && *ac->errstr ? ac->errstr : "closed");
}

/* ---- The libuv adapter ---- */

static void handle_closed(sb_redis_t *r);

static void handle_write(adapter_t *a)
{
    a->writing = true;
    if (!a->r->guard_sigpipe) {
        redisAsyncHandleWrite(a->ac);
    } else {
        /* hiredis 0.14 writes with write(2): a peer that just died would raise SIGPIPE. */
        struct sigaction ign = {.sa_handler = SIG_IGN}, old;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGPIPE, &ign, &old);
        redisAsyncHandleWrite(a->ac);
        sigaction(SIGPIPE, &old, NULL);
    }
    a->writing = false;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    adapter_t *a = h->data;
    sb_redis_t *r = a->r;
    if (!a->ac)
        return;
    if (status < 0) {
        /* libuv stopped the handle (POLLERR): let hiredis look at the socket, which
         * fails a refused connect or a broken connection. */
        a->events = 0;
        events = UV_READABLE | UV_WRITABLE;
    }
    if (events & UV_READABLE)
        redisAsyncHandleRead(a->ac);
    if (a->ac && (events & UV_WRITABLE))
        handle_write(a);
    if (a->ac && r->connect_ok && r->ac == a->ac) {
        r->connect_ok = false;
        on_connected(r);
    }
}

static void ev_update(adapter_t *a, int events)
{
    if (events == a->events)
        return;
    a->events = events;
    if (events)
        uv_poll_start(&a->poll, events, on_poll);
    else
        uv_poll_stop(&a->poll);
}

static void ev_add_read(void *p)
{
    adapter_t *a = p;
    ev_update(a, a->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    adapter_t *a = p;
    ev_update(a, a->events & ~UV_READABLE);
}

static void on_flush(uv_prepare_t *h)
{
    adapter_t *a = h->data;
    uv_prepare_stop(h);
    if (!a->want_flush || !a->ac)
        return;
    a->want_flush = false;
    handle_write(a);
}

/*
 * hiredis has output. While connected, it is written just before the loop polls again
 * (a prepare hook): every command of this loop turn in one write(2), and no POLLOUT
 * round trip (two epoll_ctl calls and a loop turn per write). Only what the socket does
 * not take, and the connect itself, wait for POLLOUT.
 */
static void ev_add_write(void *p)
{
    adapter_t *a = p;
    if (a->writing || !a->ac || !(a->ac->c.flags & REDIS_CONNECTED)) {
        ev_update(a, a->events | UV_WRITABLE);
        return;
    }
    if (!a->want_flush) {
        a->want_flush = true;
        uv_prepare_start(&a->flush, on_flush);
    }
}

static void ev_del_write(void *p)
{
    adapter_t *a = p;
    if (a->want_flush) {
        a->want_flush = false;
        uv_prepare_stop(&a->flush);
    }
    ev_update(a, a->events & ~UV_WRITABLE);
}

static void on_adapter_closed(uv_handle_t *h)
{
    adapter_t *a = h->data;
    if (--a->open_handles > 0)
        return;
    sb_redis_t *r = a->r;
    sb_free(a);
    handle_closed(r);
}

static void ev_cleanup(void *p)
{
    adapter_t *a = p;
    a->ac = NULL;
    a->want_flush = false;
    uv_close((uv_handle_t *)&a->poll, on_adapter_closed);
    uv_close((uv_handle_t *)&a->flush, on_adapter_closed);
}

static int attach(sb_redis_t *r, redisAsyncContext *ac)
{
    adapter_t *a = SB_NEW(adapter_t);
    if (uv_poll_init(r->loop, &a->poll, ac->c.fd) != 0) {
        sb_free(a);
        return SB_EIO;
    }
    uv_prepare_init(r->loop, &a->flush);
    a->open_handles = 2;
    r->handles++;
    a->poll.data = a;
    a->flush.data = a;
    a->r = r;
    a->ac = ac;
    ac->ev.data = a;
    ac->ev.addRead = ev_add_read;
    ac->ev.delRead = ev_del_read;
    ac->ev.addWrite = ev_add_write;
    ac->ev.delWrite = ev_del_write;
    ac->ev.cleanup = ev_cleanup;
    return 0;
}

static void conn_start(sb_redis_t *r)
{
    redisAsyncContext *ac =
        r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->host, r->port);
    if (!ac || ac->err || attach(r, ac) != 0) {
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
    r->state = ST_CONNECTING;
    redisAsyncSetConnectCallback(ac, on_hiredis_connect); /* also asks for a write event */
    redisAsyncSetDisconnectCallback(ac, on_hiredis_disconnect);
    uv_timer_start(&r->conn_timer, on_conn_timer, r->connect_timeout_ms, 0);
}

static void on_conn_timer(uv_timer_t *t)
{
    sb_redis_t *r = t->data;
    if (r->state == ST_WAITING)
        conn_start(r);
    else if (r->state == ST_CONNECTING)
        conn_drop(r, SB_ETIMEDOUT, true, "connect timed out");
}

/* ---- URL ---- */

/* Parses decimal digits at *p (at least one) no larger than max; advances *p. */
static bool parse_num(const char **p, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return false;
    }
    *p = s;
    *out = v;
    return true;
}

/* If *p starts with lead, parses the number after it (advancing *p); false if bad. */
static bool parse_opt_num(const char **p, const char *lead, unsigned long max, unsigned long *out)
{
    size_t n = strlen(lead);
    if (strncmp(*p, lead, n) != 0)
        return true;
    *p += n;
    return parse_num(p, max, out);
}

/* host[:port][/db], host may be [v6]; returns the rest of the string or NULL. */
static const char *parse_tcp(sb_redis_t *r, const char *p, unsigned long *db)
{
    unsigned long port = 6379;
    size_t n = strcspn(p, ":/");
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e || e == p + 1)
            return NULL;
        r->host = sb_strndup(p + 1, (size_t)(e - p - 1));
        p = e + 1;
    } else if (n > 0) {
        r->host = sb_strndup(p, n);
        p += n;
    } else {
        return NULL;
    }
    if (!parse_opt_num(&p, ":", 65535, &port) || port == 0)
        return NULL;
    r->port = (int)port;
    if (strcmp(p, "/") == 0)
        return p + 1;
    return parse_opt_num(&p, "/", MAX_DB, db) ? p : NULL;
}

/* /path[?db=N]; returns the rest of the string or NULL. */
static const char *parse_unix(sb_redis_t *r, const char *p, unsigned long *db)
{
    struct sockaddr_un sa;
    size_t n = strcspn(p, "?");
    if (*p != '/' || n >= sizeof(sa.sun_path))
        return NULL;
    r->path = sb_strndup(p, n);
    p += n;
    return parse_opt_num(&p, "?db=", MAX_DB, db) ? p : NULL;
}

/* redis://host[:port][/db] or unix:/path[?db=N] (also unix:///path). */
static int parse_url(sb_redis_t *r, const char *url)
{
    unsigned long db = 0;
    const char *rest = NULL;
    if (strncmp(url, "redis://", 8) == 0)
        rest = parse_tcp(r, url + 8, &db);
    else if (strncmp(url, "unix://", 7) == 0)
        rest = parse_unix(r, url + 7, &db);
    else if (strncmp(url, "unix:", 5) == 0)
        rest = parse_unix(r, url + 5, &db);
    if (!rest || *rest)
        return SB_EINVAL;
    r->db = (int)db;
    return 0;
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

static void handle_closed(sb_redis_t *r)
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
    handle_closed(h->data);
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
    int rc = parse_url(r, opts->url);
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
    r->quiet_until_ms = now_ms() + opts->start_grace_ms;
    r->max_queued = opts->max_queued ? opts->max_queued : DEFAULT_MAX_QUEUED;
    r->on_connect = opts->on_connect;
    r->on_disconnect = opts->on_disconnect;
    r->data = opts->data;
    struct sigaction cur;
    r->guard_sigpipe = sigaction(SIGPIPE, NULL, &cur) == 0 && cur.sa_handler == SIG_DFL;
    r->state = ST_WAITING;
    r->down = true;
    r->backoff_ms = BACKOFF_MIN_MS;
    init_timer(r, &r->conn_timer);
    init_timer(r, &r->deadline_timer);
    init_timer(r, &r->ping_timer);
    uv_timer_start(&r->conn_timer, on_conn_timer, 0, 0); /* connect from the loop */
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
    bool now = r->ac && (r->state == ST_HOOK || r->state == ST_READY);
    if (rc == 0 && !now && r->queue.n >= r->max_queued)
        rc = SB_ETOOBIG;
    if (rc) {
        redisFreeCommand(buf);
        return rc;
    }
    cmd_t *c = cmd_new(r, cb, data, timeout_ms, buf, (size_t)len);
    if (!now || !cmd_send(r, c))
        list_push(&r->queue, c);
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
    return r && r->state == ST_READY;
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
    r->state = ST_STOPPED;
    uv_close((uv_handle_t *)&r->conn_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->deadline_timer, on_timer_closed);
    uv_close((uv_handle_t *)&r->ping_timer, on_timer_closed);
    conn_drop(r, SB_ECANCELED, true, "stopped");
    cmd_t *c;
    while ((c = list_shift(&r->queue)) != NULL)
        cmd_finish(r, c, NULL, SB_ECANCELED);
}

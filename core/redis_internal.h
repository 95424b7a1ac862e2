/* SPDX-License-Identifier: MIT */
/*
 * Shared by the Redis client's files (redis.c: the client and its commands;
 * redis_conn.c: the connection lifecycle; redis_uv.c: the libuv adapter; redis_url.c:
 * the address): the client's state, the command record and the functions each file
 * offers the others. Nothing here is for users of redis.h.
 */
#ifndef SB_REDIS_INTERNAL_H
#define SB_REDIS_INTERNAL_H

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/redis.h"

/** Reconnect backoff: from this, doubling up to SB__REDIS_BACKOFF_MAX_MS. */
#define SB__REDIS_BACKOFF_MIN_MS 50
#define SB__REDIS_BACKOFF_MAX_MS 2000
/** cmd.hidx of a command that is not in the deadline heap. */
#define SB__REDIS_NO_HEAP SIZE_MAX

typedef enum {
    SB__REDIS_WAITING,    /* no connection; conn_timer starts the next attempt */
    SB__REDIS_CONNECTING, /* connect(2) in progress; conn_timer is its timeout */
    SB__REDIS_SELECTING,  /* connected, PING (and SELECT) sent, waiting for the replies */
    SB__REDIS_HOOK,       /* connected, running opts.on_connect: commands go out at once */
    SB__REDIS_READY,      /* connected, queue flushed */
    SB__REDIS_STOPPED,
} sb__redis_state_t;

typedef struct sb__redis_cmd {
    struct sb__redis_cmd *prev, *next; /* in r->queue or r->inflight (or a local list) */
    sb_redis_t *r;
    sb_redis_reply_cb cb;
    void *data;
    char *buf; /* the formatted command while queued (hiredis allocation) */
    size_t len;
    uint64_t deadline_ms; /* on the sb__redis_now_ms() clock */
    uint64_t sent_ns;
    size_t hidx; /* index in r->heap, SB__REDIS_NO_HEAP when not there */
    int refs;
    bool done;
    bool inflight;
} sb__redis_cmd_t;

typedef struct sb__redis_cmd_list {
    sb__redis_cmd_t *head, *tail;
    size_t n;
} sb__redis_cmd_list_t;

/* The event-library side of one hiredis context. */
typedef struct sb__redis_adapter {
    uv_poll_t poll;
    uv_prepare_t flush; /* writes this loop turn's commands before the loop polls */
    sb_redis_t *r;
    redisAsyncContext *ac; /* NULL once hiredis called cleanup */
    int events;
    int open_handles; /* poll and flush: the adapter is freed when both have closed */
    bool want_flush;  /* hiredis has output and flush is started */
    bool writing;     /* inside redisAsyncHandleWrite: more to write means POLLOUT */
} sb__redis_adapter_t;

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

    sb__redis_state_t state;
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

    sb__redis_cmd_list_t queue, inflight;
    sb__redis_cmd_t **heap;
    size_t hlen, hcap;
    sb_redis_stats_t stats;

    bool stopping;
    void (*stop_cb)(void *data);
    void *stop_data;
};

static inline void sb__redis_list_push(sb__redis_cmd_list_t *l, sb__redis_cmd_t *c)
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

static inline void sb__redis_list_unshift(sb__redis_cmd_list_t *l, sb__redis_cmd_t *c)
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

static inline void sb__redis_list_remove(sb__redis_cmd_list_t *l, sb__redis_cmd_t *c)
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

static inline sb__redis_cmd_t *sb__redis_list_shift(sb__redis_cmd_list_t *l)
{
    sb__redis_cmd_t *c = l->head;
    if (c)
        sb__redis_list_remove(l, c);
    return c;
}

static inline uint64_t sb__redis_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* ---- redis.c: commands ---- */

/** Runs c's callback (once: c is already out of every list) and drops our reference. */
void sb__redis_cmd_finish(sb_redis_t *r, sb__redis_cmd_t *c, redisReply *reply, int status);

/** Hands c to hiredis on the current connection; false if hiredis refused it. */
bool sb__redis_cmd_send(sb_redis_t *r, sb__redis_cmd_t *c);

/** Sends an internal command (SELECT, PING) on the current connection. */
void sb__redis_send_internal(sb_redis_t *r, sb_redis_reply_cb cb, const char *fmt, ...);

/** Takes c out of the deadline heap (if it is there). */
void sb__redis_heap_remove(sb_redis_t *r, sb__redis_cmd_t *c);

/** One of the client's uv handles closed: frees the client after the last, if stopping. */
void sb__redis_handle_closed(sb_redis_t *r);

/* ---- redis_conn.c: the connection ---- */

/**
 * Detaches the current connection (if any), fails every in-flight command with err
 * and, unless stopping, schedules a reconnect. free_ac: we free the context
 * (otherwise hiredis is about to).
 */
void sb__redis_conn_drop(sb_redis_t *r, int err, bool free_ac, const char *why);

/** The connect completed (called from the adapter, outside hiredis's callbacks). */
void sb__redis_on_connected(sb_redis_t *r);

/** conn_timer: starts the next connect attempt, or times out the current one. */
void sb__redis_on_conn_timer(uv_timer_t *t);

/* ---- redis_uv.c: the libuv adapter ---- */

/** Attaches a new hiredis context to the loop; 0 or SB_EIO. */
int sb__redis_attach(sb_redis_t *r, redisAsyncContext *ac);

/* ---- redis_url.c: the address ---- */

/** Parses url into r's host/port or path and db; 0 or SB_EINVAL. */
int sb__redis_parse_url(sb_redis_t *r, const char *url);

#endif

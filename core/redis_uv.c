/* SPDX-License-Identifier: MIT */
/*
 * The libuv adapter of the Redis client (redis_internal.h): the event-library side of
 * one hiredis context. One uv_poll_t per connection that, unlike the packaged adapter,
 * hands poll errors to hiredis so that a refused connect reaches the connect callback;
 * a uv_prepare_t that writes every command of a loop turn in one write(2) before the
 * loop polls again; SIGPIPE ignored around writes. The adapter's memory is freed only
 * in its handles' close callbacks.
 */
#include <signal.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/redis_internal.h"

/* ---- The libuv adapter ---- */

static void handle_write(sb__redis_adapter_t *a)
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
    sb__redis_adapter_t *a = h->data;
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
        sb__redis_on_connected(r);
    }
}

static void ev_update(sb__redis_adapter_t *a, int events)
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
    sb__redis_adapter_t *a = p;
    ev_update(a, a->events | UV_READABLE);
}

static void ev_del_read(void *p)
{
    sb__redis_adapter_t *a = p;
    ev_update(a, a->events & ~UV_READABLE);
}

static void on_flush(uv_prepare_t *h)
{
    sb__redis_adapter_t *a = h->data;
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
    sb__redis_adapter_t *a = p;
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
    sb__redis_adapter_t *a = p;
    if (a->want_flush) {
        a->want_flush = false;
        uv_prepare_stop(&a->flush);
    }
    ev_update(a, a->events & ~UV_WRITABLE);
}

static void on_adapter_closed(uv_handle_t *h)
{
    sb__redis_adapter_t *a = h->data;
    if (--a->open_handles > 0)
        return;
    sb_redis_t *r = a->r;
    sb_free(a);
    sb__redis_handle_closed(r);
}

static void ev_cleanup(void *p)
{
    sb__redis_adapter_t *a = p;
    a->ac = NULL;
    a->want_flush = false;
    uv_close((uv_handle_t *)&a->poll, on_adapter_closed);
    uv_close((uv_handle_t *)&a->flush, on_adapter_closed);
}

int sb__redis_attach(sb_redis_t *r, redisAsyncContext *ac)
{
    sb__redis_adapter_t *a = SB_NEW(sb__redis_adapter_t);
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

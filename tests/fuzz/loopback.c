/* SPDX-License-Identifier: MIT */
/*
 * The loopback exchange of loopback.h: a non-blocking client socket polled on the same
 * libuv loop as the server, so one thread runs both ends and no step waits on a clock.
 */
#include "tests/fuzz/loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/log.h"

#define EXCHANGE_LIMIT_MS 100

typedef struct exchange {
    uv_poll_t poll;
    uv_timer_t timer;
    int fd;
    const unsigned char *out[2];
    size_t out_len[2];
    int part;
    bool shut;
    bool done;
    char *resp;
    size_t cap, got;
    size_t want; /* answer bytes before the EXCHANGE_LIMIT_MS give-up starts */
    int closing;
} exchange_t;

void fz_server_start(fz_server_t *s, size_t max_body, void (*add_routes)(sb_http_server_t *))
{
    sb_log_setup(SB_LOG_ERROR, SB_LOG_TEXT);
    uv_loop_init(&s->loop);
    sb_http_opts_t o = {.loop = &s->loop, .listen = "127.0.0.1:0", .max_body = max_body};
    if (sb_http_server_new(&o, &s->srv) != 0) {
        fprintf(stderr, "fuzz: cannot start the HTTP server\n");
        abort();
    }
    s->port = sb_http_server_port(s->srv);
    add_routes(s->srv);
}

static void on_closed(uv_handle_t *h)
{
    exchange_t *x = h->data;
    x->closing--;
}

static void finish(exchange_t *x)
{
    x->done = true;
}

static void pump_out(exchange_t *x)
{
    while (x->part < 2) {
        size_t left = x->out_len[x->part];
        if (left == 0) {
            x->part++;
            continue;
        }
        ssize_t w = send(x->fd, x->out[x->part], left, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            x->part = 2; /* the server closed early: read what it answered */
            break;
        }
        x->out[x->part] += w;
        x->out_len[x->part] -= (size_t)w;
    }
    if (!x->shut) {
        shutdown(x->fd, SHUT_WR);
        x->shut = true;
    }
}

static void on_limit(uv_timer_t *t)
{
    finish(t->data);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    exchange_t *x = p->data;
    if (status < 0) {
        finish(x);
        return;
    }
    if (events & UV_WRITABLE)
        pump_out(x);
    if (events & UV_READABLE) {
        char buf[16384];
        for (;;) {
            ssize_t r = recv(x->fd, buf, sizeof(buf), 0);
            if (r > 0) {
                if (x->got + 1 < x->cap) {
                    size_t k = (size_t)r < x->cap - 1 - x->got ? (size_t)r : x->cap - 1 - x->got;
                    memcpy(x->resp + x->got, buf, k);
                    x->resp[x->got + k] = '\0';
                }
                bool had = x->got >= x->want;
                x->got += (size_t)r;
                if (!had && x->got >= x->want) /* the answer is in: the usual limit now */
                    uv_timer_start(&x->timer, on_limit, EXCHANGE_LIMIT_MS, 0);
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
                finish(x);
            break;
        }
    }
    if (!x->done)
        uv_poll_start(&x->poll, UV_READABLE | (x->shut ? 0 : UV_WRITABLE), on_poll);
}

size_t fz_exchange(fz_server_t *s, const void *head, size_t head_len, const void *data, size_t n,
                   char *resp, size_t cap)
{
    return fz_exchange_answered(s, head, head_len, data, n, resp, cap, 0);
}

size_t fz_exchange_answered(fz_server_t *s, const void *head, size_t head_len, const void *data,
                            size_t n, char *resp, size_t cap, size_t want)
{
    exchange_t x = {.out = {head, data},
                    .out_len = {head ? head_len : 0, n},
                    .resp = resp,
                    .cap = cap,
                    .want = want};
    if (cap)
        resp[0] = '\0';
    x.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (x.fd < 0) {
        perror("fuzz: socket");
        abort();
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(x.fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS) {
        perror("fuzz: connect");
        abort();
    }
    uv_poll_init(&s->loop, &x.poll, x.fd);
    x.poll.data = &x;
    uv_timer_init(&s->loop, &x.timer);
    x.timer.data = &x;
    uv_timer_start(&x.timer, on_limit, want ? FZ_ANSWER_PATIENCE_MS : EXCHANGE_LIMIT_MS, 0);
    uv_poll_start(&x.poll, UV_READABLE | UV_WRITABLE, on_poll);
    while (!x.done)
        uv_run(&s->loop, UV_RUN_ONCE);
    x.closing = 2;
    uv_close((uv_handle_t *)&x.poll, on_closed);
    uv_close((uv_handle_t *)&x.timer, on_closed);
    while (x.closing)
        uv_run(&s->loop, UV_RUN_ONCE);
    close(x.fd);
    /* let the server see the close and free the connection before the next input */
    uv_run(&s->loop, UV_RUN_NOWAIT);
    return x.got;
}

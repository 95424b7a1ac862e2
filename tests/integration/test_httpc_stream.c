/* SPDX-License-Identifier: MIT */
/*
 * Streaming requests of the HTTP client (sb_httpc_stream, core/httpc_stream.c) against a
 * small HTTP/1.1 peer on the same libuv loop (this file) that answers a stream's head and
 * then writes chunked body parts when the test says so: chunks reach on_data one by one
 * while the server still holds the stream open, a non-2xx answer's body is kept, the head
 * deadline, a stall (the server goes silent) after bytes that kept the stream alive past
 * both deadlines, cancel (also from inside on_data), stop with a stream open, on_head and
 * on_data aborting, and a request sent from inside on_data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/httpc.h"
#include "tests/harness/harness.h"

/* ---- The peer: answers by path, and keeps a stream's connection for the test ---- */

typedef struct conn conn_t;

typedef struct peer {
    uv_tcp_t tcp;
    int port;
    unsigned accepted, closed;
    conn_t *stream; /* the open connection of the last /stream request */
} peer_t;

struct conn {
    uv_tcp_t tcp;
    peer_t *p;
    sb_buf_t in;
    bool answered;
};

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->p->closed++;
    if (c->p->stream == c)
        c->p->stream = NULL;
    sb_buf_dispose(&c->in);
    sb_free(c);
}

static void conn_close(conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

typedef struct wreq {
    uv_write_t w;
    bool close_after;
    char bytes[];
} wreq_t;

static void on_written(uv_write_t *w, int status)
{
    wreq_t *q = (wreq_t *)w;
    conn_t *c = w->data;
    if (q->close_after || status < 0)
        conn_close(c);
    sb_free(q);
}

static void peer_write(conn_t *c, const char *text, size_t len, bool close_after)
{
    wreq_t *q = sb_malloc(sizeof(*q) + len);
    memcpy(q->bytes, text, len);
    q->close_after = close_after;
    q->w.data = c;
    uv_buf_t b = uv_buf_init(q->bytes, (unsigned)len);
    uv_write(&q->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

/* One chunk of a chunked body on the open stream. */
static void peer_chunk(peer_t *p, const char *text)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf), "%zx\r\n%s\r\n", strlen(text), text);
    assert_non_null(p->stream);
    peer_write(p->stream, buf, (size_t)n, false);
}

/* The last chunk; the connection closes once it is written. */
static void peer_end(peer_t *p)
{
    assert_non_null(p->stream);
    peer_write(p->stream, "0\r\n\r\n", 5, true);
}

static void answer(conn_t *c, const char *path)
{
    peer_t *p = c->p;
    if (strcmp(path, "/hang") == 0)
        return; /* never answers */
    if (strcmp(path, "/stream") == 0) {
        const char *t = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
        p->stream = c;
        peer_write(c, t, strlen(t), false);
    } else if (strcmp(path, "/ok") == 0) {
        const char *t = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        peer_write(c, t, strlen(t), true);
    } else {
        const char *t = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                        "Content-Length: 12\r\nConnection: close\r\n\r\nno such feed";
        peer_write(c, t, strlen(t), true);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char mem[65536];
    *b = uv_buf_init(mem, sizeof(mem));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    conn_t *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    sb_buf_append(&c->in, b->base, (size_t)n);
    sb_buf_append(&c->in, "", 1);
    c->in.len--;
    char path[64];
    if (!c->answered && strstr(c->in.data, "\r\n\r\n") &&
        sscanf(c->in.data, "%*s %63s", path) == 1) {
        c->answered = true;
        answer(c, path);
    }
}

static void on_connection(uv_stream_t *server, int status)
{
    peer_t *p = server->data;
    conn_t *c = SB_NEW(conn_t);
    c->p = p;
    sb_buf_init(&c->in, 1 << 16);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(server, (uv_stream_t *)&c->tcp);
    p->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- Fixture and what a stream reports ---- */

typedef struct fixture {
    uv_loop_t loop;
    peer_t peer;
    sb_httpc_t *h;
    bool stopped;
} fixture_t;

typedef struct rec {
    fixture_t *f;
    sb_httpc_req_t *req;
    int heads, chunks, dones, status;
    long head_code, code;
    char head_type[64], error[128], body[128];
    sb_buf_t got;
    int abort_head, abort_at_chunk; /* non-zero: what on_head / the Nth on_data returns */
    bool cancel_inside, stop_inside, send_inside;
    int inner_calls;
    long inner_code;
} rec_t;

static int on_head(const sb_httpc_response_t *res, void *data)
{
    rec_t *r = data;
    r->heads++;
    r->head_code = res->code;
    if (!sb_httpc_header(res, "Content-Type", r->head_type, sizeof(r->head_type)))
        r->head_type[0] = '\0';
    return r->abort_head;
}

static void on_inner(const sb_httpc_response_t *res, void *data)
{
    rec_t *r = data;
    r->inner_calls++;
    r->inner_code = res->code;
}

static void on_stopped(void *data)
{
    *(bool *)data = true;
}

static int on_data(const char *bytes, size_t n, void *data)
{
    rec_t *r = data;
    r->chunks++;
    sb_buf_append(&r->got, bytes, n);
    if (r->cancel_inside)
        sb_httpc_cancel(r->req);
    if (r->stop_inside) {
        sb_httpc_stop(r->f->h, on_stopped, &r->f->stopped);
        r->f->h = NULL;
    }
    if (r->send_inside) {
        char u[64];
        snprintf(u, sizeof(u), "http://127.0.0.1:%d/ok", r->f->peer.port);
        assert_int_equal(sb_httpc_send(r->f->h, &(sb_httpc_request_t){.url = u}, on_inner, r, NULL),
                         0);
    }
    return r->abort_at_chunk && r->chunks == r->abort_at_chunk ? SB_EFORBIDDEN : 0;
}

static void on_done(const sb_httpc_response_t *res, void *data)
{
    rec_t *r = data;
    r->dones++;
    r->status = res->status;
    r->code = res->code;
    snprintf(r->error, sizeof(r->error), "%s", res->error);
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body);
}

static const sb_httpc_stream_cbs_t CBS = {.on_head = on_head, .on_data = on_data};

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    uv_loop_init(&f->loop);
    uv_tcp_init(&f->loop, &f->peer.tcp);
    f->peer.tcp.data = &f->peer;
    f->peer.port = sb_test_free_port();
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", f->peer.port, &a);
    assert_int_equal(uv_tcp_bind(&f->peer.tcp, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->peer.tcp, 16, on_connection), 0);
    assert_int_equal(sb_httpc_new(&f->loop, "test-agent", &f->h), 0);
    *state = f;
    return 0;
}

static void close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, (h->type == UV_TCP && h->data && h->data != arg) ? on_conn_closed : NULL);
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->h) {
        sb_httpc_stop(f->h, on_stopped, &f->stopped);
        assert_true(sb_test_loop_until(&f->loop, &f->stopped, 5000));
    }
    uv_walk(&f->loop, close_walk, &f->peer);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sb_free(f);
    return 0;
}

static void rec_init(rec_t *r, fixture_t *f)
{
    memset(r, 0, sizeof(*r));
    r->f = f;
    sb_buf_init(&r->got, 1 << 20);
}

/* Starts a stream of path; the request's head deadline is head_ms. */
static void start(fixture_t *f, rec_t *r, const char *path, uint32_t head_ms, uint32_t idle_ms)
{
    char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", f->peer.port, path);
    const char *hs[] = {"Accept: text/event-stream", NULL};
    sb_httpc_request_t req = {.url = u, .headers = hs, .timeout_ms = head_ms};
    assert_int_equal(sb_httpc_stream(f->h, &req, idle_ms, &CBS, on_done, r, &r->req), 0);
    assert_int_equal(r->dones + r->heads + r->chunks, 0); /* nothing inside the call */
}

/* Chunk i of a stream. */
static const char *part(int i)
{
    static char t[32];
    snprintf(t, sizeof(t), "data: part %d\n\n", i);
    return t;
}

/* ---- Tests ---- */

static void test_stream_chunks_arrive_while_open(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    start(f, &r, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    assert_int_equal(r.head_code, 200);
    assert_string_equal(r.head_type, "text/event-stream");
    size_t want = 0;
    for (int i = 0; i < 5; i++) {
        peer_chunk(&f->peer, part(i));
        want += strlen(part(i));
        SB_TEST_SPIN_UNTIL(&f->loop, r.got.len == want, 5000);
        assert_int_equal(r.dones, 0); /* the server still holds the stream open */
        assert_non_null(f->peer.stream);
    }
    assert_int_equal(sb_httpc_inflight(f->h), 1);
    peer_end(&f->peer);
    SB_TEST_SPIN_UNTIL(&f->loop, r.dones == 1, 5000);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, ""); /* a 2xx body went to on_data only */
    assert_true(r.chunks >= 5);
    assert_int_equal(memcmp(r.got.data, "data: part 0\n\ndata: part 1\n\n", 28), 0);
    assert_int_equal(r.heads, 1);
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    sb_buf_dispose(&r.got);
}

static void test_stream_error_answer_body_kept(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    start(f, &r, "/missing", 5000, 1000);
    SB_TEST_SPIN_UNTIL(&f->loop, r.dones == 1, 5000);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 404);
    assert_string_equal(r.body, "no such feed");
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.head_code, 404);
    assert_int_equal(r.chunks, 0);
    sb_buf_dispose(&r.got);
}

static void test_stream_head_deadline(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    uint64_t t0 = sb_test_now_ms();
    start(f, &r, "/hang", 200, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.dones == 1, 5000);
    assert_true(sb_test_now_ms() - t0 >= 190);
    assert_int_equal(r.status, SB_ETIMEDOUT);
    assert_string_equal(r.error, "no answer within 200 ms");
    assert_int_equal(r.code, 0);
    assert_int_equal(r.heads, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.closed == 1, 5000); /* we hung up */
    sb_buf_dispose(&r.got);
}

typedef struct ticker {
    uv_timer_t t;
    peer_t *p;
    int left, sent;
    uint64_t last_ms;
    bool closed;
} ticker_t;

static void on_ticker_closed(uv_handle_t *h)
{
    ((ticker_t *)h->data)->closed = true;
}

static void on_tick(uv_timer_t *t)
{
    ticker_t *k = t->data;
    if (k->left == 0 || !k->p->stream) {
        uv_timer_stop(t);
        return;
    }
    peer_chunk(k->p, part(k->sent++));
    k->left--;
    k->last_ms = sb_test_now_ms();
}

static void test_stream_stall_detected(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    /* Head deadline 200 ms, stall after 500 ms: 25 chunks 40 ms apart keep it alive for
     * a second (past both), then the server holds the connection silent. */
    start(f, &r, "/stream", 200, 500);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    ticker_t k = {.p = &f->peer, .left = 25};
    uv_timer_init(&f->loop, &k.t);
    k.t.data = &k;
    uv_timer_start(&k.t, on_tick, 40, 40);
    SB_TEST_SPIN_UNTIL(&f->loop, r.dones == 1, 10000);
    uint64_t silent = sb_test_now_ms() - k.last_ms;
    uv_close((uv_handle_t *)&k.t, on_ticker_closed);
    assert_true(sb_test_loop_until(&f->loop, &k.closed, 5000));
    assert_int_equal(k.left, 0); /* every chunk went out before the stall was called */
    assert_int_equal(r.status, SB_ETIMEDOUT);
    assert_string_equal(r.error, "stalled: no byte for 500 ms");
    assert_true(silent >= 490);
    assert_int_equal(r.code, 200);
    char last[32];
    snprintf(last, sizeof(last), "%s", part(24));
    assert_int_equal(r.got.len >= strlen(last), true);
    assert_memory_equal(r.got.data + r.got.len - strlen(last), last, strlen(last));
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.stream == NULL, 5000); /* we hung up */
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    sb_buf_dispose(&r.got);
}

static void test_stream_cancel(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    start(f, &r, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    peer_chunk(&f->peer, part(0));
    SB_TEST_SPIN_UNTIL(&f->loop, r.chunks == 1, 5000);
    sb_httpc_cancel(r.req);
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.closed == 1, 5000);
    /* From inside on_data: no more chunks, no done, the connection goes. */
    rec_t r2;
    rec_init(&r2, f);
    r2.cancel_inside = true;
    start(f, &r2, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r2.heads == 1, 5000);
    peer_chunk(&f->peer, part(0));
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.closed == 2, 5000);
    assert_int_equal(r2.chunks, 1);
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    sb_test_loop_for(&f->loop, 20);
    assert_int_equal(r.dones + r2.dones, 0);
    sb_buf_dispose(&r.got);
    sb_buf_dispose(&r2.got);
}

static void test_stream_stop_open(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    start(f, &r, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    peer_chunk(&f->peer, part(0));
    SB_TEST_SPIN_UNTIL(&f->loop, r.chunks == 1, 5000);
    sb_httpc_t *h = f->h;
    sb_httpc_stop(h, on_stopped, &f->stopped);
    f->h = NULL;
    assert_int_equal(r.dones, 1); /* before stop returned */
    assert_int_equal(r.status, SB_ECANCELED);
    assert_string_equal(r.error, "canceled");
    rec_t r2;
    rec_init(&r2, f);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/stream", f->peer.port);
    assert_int_equal(
        sb_httpc_stream(h, &(sb_httpc_request_t){.url = u}, 0, &CBS, on_done, &r2, NULL),
        SB_ECANCELED);
    assert_true(sb_test_loop_until(&f->loop, &f->stopped, 5000));
    assert_int_equal(r.dones, 1);
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.closed == 1, 5000);
    sb_buf_dispose(&r2.got);
    sb_buf_dispose(&r.got);
}

static void test_stream_stop_inside_on_data(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    r.stop_inside = true;
    start(f, &r, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    peer_chunk(&f->peer, part(0));
    SB_TEST_SPIN_UNTIL(&f->loop, f->stopped, 5000);
    assert_int_equal(r.chunks, 1);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.status, SB_ECANCELED);
    sb_buf_dispose(&r.got);
}

static void test_stream_callbacks_abort(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    r.abort_at_chunk = 2;
    start(f, &r, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    peer_chunk(&f->peer, part(0));
    SB_TEST_SPIN_UNTIL(&f->loop, r.chunks == 1, 5000);
    peer_chunk(&f->peer, part(1));
    SB_TEST_SPIN_UNTIL(&f->loop, r.dones == 1, 5000);
    assert_int_equal(r.chunks, 2);
    assert_int_equal(r.status, SB_EFORBIDDEN);
    assert_non_null(strstr(r.error, "FORBIDDEN"));
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.closed == 1, 5000);
    /* on_head says no: no chunk is handed out. */
    rec_t r2;
    rec_init(&r2, f);
    r2.abort_head = SB_EAUTH;
    start(f, &r2, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r2.dones == 1, 5000);
    assert_int_equal(r2.status, SB_EAUTH);
    assert_int_equal(r2.chunks, 0);
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    sb_buf_dispose(&r.got);
    sb_buf_dispose(&r2.got);
}

static void test_stream_send_inside_on_data(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    r.send_inside = true;
    start(f, &r, "/stream", 5000, 0);
    SB_TEST_SPIN_UNTIL(&f->loop, r.heads == 1, 5000);
    peer_chunk(&f->peer, part(0));
    SB_TEST_SPIN_UNTIL(&f->loop, r.inner_calls == 1, 5000);
    assert_int_equal(r.inner_code, 200);
    assert_int_equal(r.dones, 0);
    sb_httpc_cancel(r.req); /* r lives on this stack */
    sb_buf_dispose(&r.got);
}

static void test_stream_bad_arguments(void **state)
{
    fixture_t *f = *state;
    rec_t r;
    rec_init(&r, f);
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/stream", f->peer.port);
    sb_httpc_request_t req = {.url = u};
    sb_httpc_stream_cbs_t no_data = {.on_head = on_head};
    assert_int_equal(sb_httpc_stream(f->h, &req, 0, NULL, on_done, &r, NULL), SB_EINVAL);
    assert_int_equal(sb_httpc_stream(f->h, &req, 0, &no_data, on_done, &r, NULL), SB_EINVAL);
    req.url = "ftp://127.0.0.1/";
    assert_int_equal(sb_httpc_stream(f->h, &req, 0, &CBS, on_done, &r, NULL), SB_EINVAL);
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    sb_buf_dispose(&r.got);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_chunks_arrive_while_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_answer_body_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_head_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_stall_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_stop_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_stop_inside_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_callbacks_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_send_inside_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests_name("core/httpc_stream", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client (core/httpc.c) against a small HTTP/1.1 peer that runs on the same
 * libuv loop (this file): answers and their headers (Retry-After, X-RateLimit-Reset),
 * a POST's method, headers and body as the peer saw them, the response size cap, the
 * per-request deadline, a refused connection, TLS verification against a self-signed
 * `openssl s_server`, cancel of a request in flight and stop with requests in flight.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/httpc.h"
#include "tests/harness/harness.h"

/* ---- The peer: one answer per connection, chosen by the request's path ---- */

typedef struct peer {
    uv_tcp_t tcp;
    int port;
    unsigned accepted, closed;
    char last_method[16], last_path[64], last_body[256], last_header[128];
} peer_t;

typedef struct conn {
    uv_tcp_t tcp;
    peer_t *p;
    sb_buf_t in;
    bool answered;
} conn_t;

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->p->closed++;
    sb_buf_dispose(&c->in);
    sb_free(c);
}

static void on_written(uv_write_t *w, int status)
{
    conn_t *c = w->data;
    sb_free(((char **)(w + 1))[0]);
    sb_free(w);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void reply(conn_t *c, const char *text, size_t len)
{
    uv_write_t *w = sb_malloc(sizeof(uv_write_t) + sizeof(char *));
    char *copy = sb_malloc(len);
    memcpy(copy, text, len);
    ((char **)(w + 1))[0] = copy;
    w->data = c;
    uv_buf_t b = uv_buf_init(copy, (unsigned)len);
    uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

/* Answers once the request's head and body are in. */
static void maybe_answer(conn_t *c)
{
    sb_buf_append(&c->in, "", 1);
    c->in.len--;
    char *end = strstr(c->in.data, "\r\n\r\n");
    if (!end || c->answered)
        return;
    const char *cl = strcasestr(c->in.data, "\r\nContent-Length:");
    size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
    if ((size_t)(c->in.data + c->in.len - (end + 4)) < want)
        return;
    c->answered = true;
    peer_t *p = c->p;
    sscanf(c->in.data, "%15s %63s", p->last_method, p->last_path);
    snprintf(p->last_body, sizeof(p->last_body), "%.*s", (int)want, end + 4);
    const char *xh = strcasestr(c->in.data, "\r\nX-Test:");
    p->last_header[0] = '\0';
    if (xh)
        sscanf(xh + 9, " %127[^\r]", p->last_header);
    const char *path = p->last_path;
    char buf[512];
    if (strcmp(path, "/hang") == 0)
        return; /* never answers */
    if (strcmp(path, "/ok") == 0) {
        reply(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello", 62);
    } else if (strcmp(path, "/limited") == 0) {
        const char *t = "HTTP/1.1 429 Too Many Requests\r\nRetry-After:  7 \r\n"
                        "X-RateLimit-Reset: 1732270000\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n";
        reply(c, t, strlen(t));
    } else if (strcmp(path, "/echo") == 0) {
        int n = snprintf(buf, sizeof(buf),
                         "HTTP/1.1 201 Created\r\nContent-Length: %zu\r\nConnection: close\r\n"
                         "\r\n%s",
                         strlen(p->last_body), p->last_body);
        reply(c, buf, (size_t)n);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 64 * 1024;
        char *t = sb_malloc(n + 128);
        int h = snprintf(t, 128, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"); /* no length */
        memset(t + h, 'x', n);
        reply(c, t, (size_t)h + n);
        sb_free(t);
    } else {
        const char *t = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        reply(c, t, strlen(t));
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
        if (!uv_is_closing((uv_handle_t *)s))
            uv_close((uv_handle_t *)s, on_conn_closed);
        return;
    }
    sb_buf_append(&c->in, b->base, (size_t)n);
    maybe_answer(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    peer_t *p = server->data;
    conn_t *c = SB_NEW(conn_t);
    c->p = p;
    sb_buf_init(&c->in, 1 << 20);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    uv_accept(server, (uv_stream_t *)&c->tcp);
    p->accepted++;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- Fixture ---- */

typedef struct fixture {
    uv_loop_t loop;
    peer_t peer;
    sb_httpc_t *h;
    bool stopped;
} fixture_t;

typedef struct result {
    int calls, status;
    long code;
    char body[256], error[256], retry_after[32], reset[32];
    size_t body_len;
} result_t;

static void on_done(const sb_httpc_response_t *res, void *data)
{
    result_t *r = data;
    r->calls++;
    r->status = res->status;
    r->code = res->code;
    r->body_len = res->body_len;
    snprintf(r->body, sizeof(r->body), "%.*s", (int)res->body_len, res->body);
    snprintf(r->error, sizeof(r->error), "%s", res->error);
    if (!sb_httpc_header(res, "retry-after", r->retry_after, sizeof(r->retry_after)))
        r->retry_after[0] = '\0';
    if (!sb_httpc_header(res, "X-RateLimit-Reset", r->reset, sizeof(r->reset)))
        r->reset[0] = '\0';
}

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

static void on_stopped(void *data)
{
    *(bool *)data = true;
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

static char *url(fixture_t *f, const char *path)
{
    static char u[128];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d%s", f->peer.port, path);
    return u;
}

static void run(fixture_t *f, const sb_httpc_request_t *req, result_t *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(sb_httpc_send(f->h, req, on_done, r, NULL), 0);
    assert_int_equal(r->calls, 0); /* never inside send */
    SB_TEST_SPIN_UNTIL(&f->loop, r->calls > 0, 10000);
    sb_test_loop_for(&f->loop, 5);
    assert_int_equal(r->calls, 1);
}

/* ---- Tests ---- */

static void test_httpc_get_answer(void **state)
{
    fixture_t *f = *state;
    result_t r;
    run(f, &(sb_httpc_request_t){.url = url(f, "/ok")}, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "hello");
    assert_int_equal(r.body_len, 5);
    assert_string_equal(f->peer.last_method, "GET");
    assert_int_equal(sb_httpc_inflight(f->h), 0);
}

static void test_httpc_rate_limit_headers(void **state)
{
    fixture_t *f = *state;
    result_t r;
    run(f, &(sb_httpc_request_t){.url = url(f, "/limited")}, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 429);
    assert_string_equal(r.retry_after, "7");
    assert_string_equal(r.reset, "1732270000");
}

static void test_httpc_post_body_and_headers(void **state)
{
    fixture_t *f = *state;
    result_t r;
    const char *hs[] = {"X-Test: yes it is", "Content-Type: application/json", NULL};
    run(f,
        &(sb_httpc_request_t){
            .url = url(f, "/echo"), .headers = hs, .body = "{\"a\":1}", .body_len = 7},
        &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 201);
    assert_string_equal(f->peer.last_method, "POST");
    assert_string_equal(f->peer.last_header, "yes it is");
    assert_string_equal(r.body, "{\"a\":1}");
    run(f,
        &(sb_httpc_request_t){.method = "PUT", .url = url(f, "/echo"), .body = "x", .body_len = 1},
        &r);
    assert_string_equal(f->peer.last_method, "PUT");
    assert_string_equal(r.body, "x");
}

static void test_httpc_response_cap(void **state)
{
    fixture_t *f = *state;
    result_t r;
    run(f, &(sb_httpc_request_t){.url = url(f, "/big"), .max_response = 1000}, &r);
    assert_int_equal(r.status, SB_ETOOBIG);
    assert_int_equal(r.code, 200);
    assert_true(r.body_len <= 1000);
    run(f, &(sb_httpc_request_t){.url = url(f, "/big")}, &r); /* under the default cap */
    assert_int_equal(r.status, 0);
    assert_int_equal(r.body_len, 64 * 1024);
}

static void test_httpc_deadline(void **state)
{
    fixture_t *f = *state;
    result_t r;
    uint64_t t0 = sb_test_now_ms();
    run(f, &(sb_httpc_request_t){.url = url(f, "/hang"), .timeout_ms = 200}, &r);
    assert_int_equal(r.status, SB_ETIMEDOUT);
    assert_int_equal(r.code, 0);
    assert_true(r.error[0] != '\0');
    assert_true(sb_test_now_ms() - t0 < 5000);
}

static void test_httpc_refused_and_bad_url(void **state)
{
    fixture_t *f = *state;
    result_t r;
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/", sb_test_free_port());
    run(f, &(sb_httpc_request_t){.url = u}, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.code, 0);
    assert_int_equal(
        sb_httpc_send(f->h, &(sb_httpc_request_t){.url = "ftp://x/"}, on_done, &r, NULL),
        SB_EINVAL);
    assert_int_equal(sb_httpc_send(f->h, &(sb_httpc_request_t){.url = NULL}, on_done, &r, NULL),
                     SB_EINVAL);
}

static void test_httpc_cancel(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    sb_httpc_req_t *req;
    assert_int_equal(
        sb_httpc_send(f->h, &(sb_httpc_request_t){.url = url(f, "/hang")}, on_done, &r, &req), 0);
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.last_path[0] != '\0', 5000);
    assert_int_equal(sb_httpc_inflight(f->h), 1);
    sb_httpc_cancel(req);
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.closed == 1, 5000); /* the connection went away */
    assert_int_equal(r.calls, 0);
    /* the client still works */
    result_t r2;
    run(f, &(sb_httpc_request_t){.url = url(f, "/ok")}, &r2);
    assert_int_equal(r2.code, 200);
}

static void test_httpc_stop_in_flight(void **state)
{
    fixture_t *f = *state;
    result_t r[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_httpc_send(f->h, &(sb_httpc_request_t){.url = url(f, "/hang")}, on_done,
                                       &r[i], NULL),
                         0);
    SB_TEST_SPIN_UNTIL(&f->loop, f->peer.accepted == 3, 5000);
    sb_httpc_stop(f->h, on_stopped, &f->stopped);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, SB_ECANCELED);
    }
    f->h = NULL;
    assert_true(sb_test_loop_until(&f->loop, &f->stopped, 5000));
}

/* A TLS peer with a self-signed certificate: verification must refuse it. */
static void test_httpc_tls_verified(void **state)
{
    fixture_t *f = *state;
    char dir[256];
    assert_int_equal(sb_test_mkdtemp(dir, "httpc-tls"), 0);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s/k.pem -out %s/c.pem "
             "-days 1 -subj /CN=127.0.0.1 >/dev/null 2>&1",
             dir, dir);
    if (system(cmd) != 0)
        skip();
    int port = sb_test_free_port();
    char portstr[16], cert[300], key[300];
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(cert, sizeof(cert), "%s/c.pem", dir);
    snprintf(key, sizeof(key), "%s/k.pem", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", 1);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-accept", portstr, "-cert", cert, "-key", key,
               "-www", "-quiet", (char *)NULL);
        _exit(127);
    }
    char u[64];
    snprintf(u, sizeof(u), "https://127.0.0.1:%d/", port);
    result_t r = {0};
    uint64_t dl = sb_test_now_ms() + 10000;
    do { /* until s_server listens: a refused connect is SB_EIO with "connect" in it */
        run(f, &(sb_httpc_request_t){.url = u, .timeout_ms = 3000}, &r);
    } while (r.status == SB_EIO && strstr(r.error, "onnect") && sb_test_now_ms() < dl);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.code, 0);
    assert_non_null(strcasestr(r.error, "certificate"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_httpc_get_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_rate_limit_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_post_body_and_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_response_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_refused_and_bad_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_stop_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_httpc_tls_verified, setup, teardown),
    };
    return cmocka_run_group_tests_name("core/httpc", tests, NULL, NULL);
}

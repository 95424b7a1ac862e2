/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server (gateway/http.c) against hostile clients on raw sockets: slowloris
 * (hundreds of connections from one address that never finish their headers must not
 * keep a client from another address waiting, and are closed after the header deadline)
 * and malformed requests (oversized header, too many headers, huge request line, %00 in
 * the URL, a garbage request line), which get a JSON error before the connection closes.
 * The test thread runs the server's libuv loop; blocking clients run in a thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "core/alloc.h"
#include "gateway/http.h"
#include "gateway/ws.h"
#include "tests/harness/harness.h"

#define SLOW_CONNS       300
#define HEADER_TIMEOUT_S 2

typedef struct fx {
    uv_loop_t loop;
    sb_http_server_t *srv;
    int port;
    bool stopped;
    sb_http_server_t *extra; /* a second server of the test, stopped by teardown */
    char ws_text[64];        /* the last text message a WebSocket got */
    int ws_texts;
} fx_t;

#define SPIN_UNTIL(fx, cond, ms) SB_TEST_SPIN_UNTIL(&(fx)->loop, cond, ms)

/* A TCP connection to 127.0.0.1:port from the local address src (any of 127/8). */
static int connect_from(const char *src, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    assert_int_equal(inet_pton(AF_INET, src, &a.sin_addr), 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    a.sin_port = htons((uint16_t)port);
    assert_int_equal(inet_pton(AF_INET, "127.0.0.1", &a.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* ---- A blocking raw client in a thread ---- */

typedef struct raw_call {
    const char *src; /* local address */
    int port;
    const char *req; /* bytes to send (NUL-terminated) */
    size_t req_len;  /* 0: strlen(req) */
    int timeout_ms;
    bool trickle; /* send a byte at a time */
    /* results */
    int status; /* 0: no answer */
    char body[1024];
    char resp[8192]; /* everything received */
    double elapsed_ms;
} raw_call_t;

typedef struct raw_client {
    pthread_t th;
    raw_call_t *calls;
    int n;
    atomic_bool done;
} raw_client_t;

static void raw_perform(raw_call_t *k)
{
    uint64_t t0 = sb_test_now_ms();
    int fd = connect_from(k->src, k->port);
    struct timeval tv = {k->timeout_ms / 1000, (k->timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    size_t len = k->req_len ? k->req_len : strlen(k->req), off = 0;
    while (off < len) { /* the server may answer and close before taking it all */
        if (k->trickle) {
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
        ssize_t w = send(fd, k->req + off, k->trickle ? 1 : len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    char resp[8192];
    size_t got = 0;
    for (;;) {
        ssize_t r = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (r <= 0 || (got += (size_t)r) == sizeof(resp) - 1)
            break;
    }
    resp[got] = '\0';
    memcpy(k->resp, resp, got + 1);
    close(fd);
    k->elapsed_ms = (double)(sb_test_now_ms() - t0);
    if (sscanf(resp, "HTTP/1.1 %d", &k->status) != 1)
        k->status = 0;
    const char *b = strstr(resp, "\r\n\r\n");
    snprintf(k->body, sizeof(k->body), "%s", b ? b + 4 : "");
}

static void *raw_main(void *arg)
{
    raw_client_t *c = arg;
    for (int i = 0; i < c->n; i++)
        raw_perform(&c->calls[i]);
    atomic_store(&c->done, true);
    return NULL;
}

static void raw_run(fx_t *fx, raw_call_t *calls, int n, int ms)
{
    raw_client_t c = {.calls = calls, .n = n};
    atomic_store(&c.done, false);
    assert_int_equal(pthread_create(&c.th, NULL, raw_main, &c), 0);
    SPIN_UNTIL(fx, atomic_load(&c.done), ms);
    pthread_join(c.th, NULL);
}

/* ---- The server ---- */

static void h_hello(sb_http_req_t *req, void *data)
{
    sb_http_respond(req, 200, "application/json", "{\"hello\":\"world\"}", 17);
}

static void on_flag(void *data)
{
    *(bool *)data = true;
}

static void on_stopped(void *data)
{
    ((fx_t *)data)->stopped = true;
}

static int setup(void **state)
{
    fx_t *fx = SB_NEW(fx_t);
    uv_loop_init(&fx->loop);
    sb_http_opts_t o = {
        .loop = &fx->loop, .listen = "127.0.0.1:0", .header_timeout_s = HEADER_TIMEOUT_S};
    assert_int_equal(sb_http_server_new(&o, &fx->srv), 0);
    fx->port = sb_http_server_port(fx->srv);
    assert_int_equal(sb_http_route(fx->srv, "GET", "/hello", h_hello, fx), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    sb_http_server_stop(fx->extra, NULL, NULL);
    sb_http_server_stop(fx->srv, on_stopped, fx);
    uint64_t deadline = sb_test_now_ms() + 5000;
    while (!fx->stopped && sb_test_now_ms() < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(fx->stopped);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    sb_free(fx);
    return 0;
}

/* ---- Slowloris ---- */

typedef struct slow {
    int fd;
    bool closed;
    bool got_429;
    uint64_t closed_at;
} slow_t;

/* Reads what the server sent to the slow connections; marks those it closed. */
static size_t slow_poll(slow_t *s, int n)
{
    size_t closed = 0;
    for (int i = 0; i < n; i++) {
        char buf[1024];
        while (!s[i].closed) {
            ssize_t r = recv(s[i].fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
            if (r > 0) {
                buf[r] = '\0';
                s[i].got_429 |= strncmp(buf, "HTTP/1.1 429", 12) == 0;
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            s[i].closed = true;
            s[i].closed_at = sb_test_now_ms();
        }
        closed += s[i].closed;
    }
    return closed;
}

static void test_http_slowloris_does_not_starve_others(void **state)
{
    fx_t *fx = *state;
    static const char partial[] = "GET /hello HTTP/1.1\r\nHost: example\r\nX-Slow: 1";
    slow_t *slow = sb_calloc(SLOW_CONNS, sizeof(*slow));
    uint64_t t0 = sb_test_now_ms();
    for (int i = 0; i < SLOW_CONNS; i++) {
        slow[i].fd = connect_from("127.0.0.1", fx->port);
        assert_int_equal(send(slow[i].fd, partial, sizeof(partial) - 1, MSG_NOSIGNAL),
                         (ssize_t)sizeof(partial) - 1);
        if (i % 16 == 0)
            sb_test_spin_once(&fx->loop); /* let the server accept as they come */
    }

    /* A client on another address is answered at once, every time. */
    raw_call_t calls[6];
    for (int i = 0; i < 6; i++)
        calls[i] =
            (raw_call_t){.src = "127.0.0.2",
                         .port = fx->port,
                         .req = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                         .timeout_ms = 3000};
    raw_run(fx, calls, 6, 30000);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(calls[i].status, 200);
        assert_string_equal(calls[i].body, "{\"hello\":\"world\"}");
        assert_true(calls[i].elapsed_ms < 3000);
    }

    /* Once half the header pool (128 of 256) was taken, connections of an address over
     * the cap got a 429; the others are closed by the header deadline, not before it. */
    SPIN_UNTIL(fx, slow_poll(slow, SLOW_CONNS) == SLOW_CONNS, (HEADER_TIMEOUT_S + 3) * 1000);
    int refused = 0, timed_out = 0;
    for (int i = 0; i < SLOW_CONNS; i++) {
        if (slow[i].got_429) {
            refused++;
        } else {
            timed_out++;
            assert_true(slow[i].closed_at - t0 >= (HEADER_TIMEOUT_S - 1) * 1000);
        }
        close(slow[i].fd);
    }
    assert_int_equal(timed_out, 128);
    assert_int_equal(refused, SLOW_CONNS - 128);
    sb_free(slow);
}

/* ---- Malformed request heads ---- */

static char *repeat(const char *head, const char *unit, size_t times, const char *tail)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *s = sb_malloc(hl + ul * times + tl + 1), *p = s;
    memcpy(p, head, hl);
    p += hl;
    for (size_t i = 0; i < times; i++, p += ul)
        memcpy(p, unit, ul);
    memcpy(p, tail, tl + 1);
    return s;
}

/* Sends req (from 127.0.0.3) and checks the JSON error that comes back before the close. */
static void expect_error(fx_t *fx, const char *req, int status, const char *code)
{
    raw_call_t k = {.src = "127.0.0.3", .port = fx->port, .req = req, .timeout_ms = 5000};
    raw_run(fx, &k, 1, 10000);
    if (k.status != status)
        fail_msg("expected %d, got %d (%s) for %.60s", status, k.status, k.body, req);
    json_error_t e;
    json_t *j = json_loads(k.body, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", k.body);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        code);
    assert_non_null(json_string_value(json_object_get(json_object_get(j, "error"), "message")));
    json_decref(j);
}

static void test_http_malformed_heads_get_json_errors(void **state)
{
    fx_t *fx = *state;
    char *big =
        repeat("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ", "a", (size_t)1 << 20, "\r\n\r\n");
    expect_error(fx, big, 431, "too_large");
    sb_free(big);
    char *many = repeat("GET /hello HTTP/1.1\r\nHost: x\r\n", "X-A: b\r\n", 2000, "\r\n");
    expect_error(fx, many, 431, "too_large");
    sb_free(many);
    char *line = repeat("GET /", "a", 100 * 1024, " HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_error(fx, line, 414, "too_large");
    sb_free(line);
    expect_error(fx, "GET /hel%00lo HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    expect_error(fx, "GET /a/%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    expect_error(fx, "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    expect_error(fx, "GARBAGE\r\n\r\n", 400, "bad_request");
    expect_error(fx, "\x16\x03\x01\x02\x05\x01\x01\x01\xfc\x03\x03\r\n\r\n", 400, "bad_request");
    expect_error(fx, "HELLO WORLD\r\n\r\n", 400, "bad_request");
    expect_error(fx, "GET /hello HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400, "bad_request");
    expect_error(fx, "GET /hello HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "bad_request");
    expect_error(fx, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented");

    /* Heads just within the limits, and one sent a byte at a time, still work. */
    raw_call_t ok[3] = {
        {.src = "127.0.0.3", .port = fx->port, .timeout_ms = 5000},
        {.src = "127.0.0.3", .port = fx->port, .timeout_ms = 5000},
        {.src = "127.0.0.3", .port = fx->port, .timeout_ms = 5000},
    };
    char *fits = repeat("GET /hello?q=%C3%A9 HTTP/1.1\r\nHost: x\r\nX-Big: ", "a", 8000,
                        "\r\nConnection: close\r\n\r\n");
    char *fields = repeat("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n",
                          "X-Field: value\r\n", 98, "\r\n");
    ok[0].req = fits;
    ok[1].req = fields;
    ok[2].req = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    ok[2].trickle = true;
    raw_run(fx, ok, 3, 15000);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ok[i].status, 200);
        assert_string_equal(ok[i].body, "{\"hello\":\"world\"}");
    }
    sb_free(fits);
    sb_free(fields);
}

/* The JSON error body that follows the status line `status_line` in resp. */
static void expect_json_after(const char *resp, const char *status_line, const char *code,
                              const char *message)
{
    const char *at = strstr(resp, status_line);
    if (!at)
        fail_msg("no %s in: %s", status_line, resp);
    const char *b = strstr(at, "\r\n\r\n");
    assert_non_null(b);
    json_error_t e;
    json_t *j = json_loads(b + 4, JSON_DISABLE_EOF_CHECK, &e);
    if (!j)
        fail_msg("not JSON: %s", b + 4);
    json_t *err = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(err, "code")), code);
    if (message)
        assert_string_equal(json_string_value(json_object_get(err, "message")), message);
    json_decref(j);
}

/* A request line lws cannot parse on a later request of a keep-alive connection (which the
 * gate does not see) still gets JSON, through lws's fallback to a raw socket. */
static void test_http_keep_alive_garbage_gets_json(void **state)
{
    fx_t *fx = *state;
    raw_call_t k = {.src = "127.0.0.4",
                    .port = fx->port,
                    .req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                           "HELLO\r\n\r\n",
                    .timeout_ms = 5000};
    raw_run(fx, &k, 1, 10000);
    assert_int_equal(k.status, 200);
    expect_json_after(k.resp, "HTTP/1.1 400", "bad_request", "malformed request line");
}

static size_t on_curl_data(char *p, size_t size, size_t n, void *arg)
{
    size_t len = size * n, used = strlen(arg);
    if (used + len < 4096) {
        memcpy((char *)arg + used, p, len);
        ((char *)arg)[used + len] = '\0';
    }
    return len;
}

typedef struct tls_call {
    char url[128];
    char body[4096];
    long status;
    atomic_bool done;
} tls_call_t;

static void *tls_main(void *arg)
{
    tls_call_t *k = arg;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, k->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "HELLO");
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_curl_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k->body);
    curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &k->status);
    curl_easy_cleanup(h);
    atomic_store(&k->done, true);
    return NULL;
}

/* On a TLS port: a request line lws cannot parse, and plain HTTP, get JSON too. */
static void test_http_tls_port_garbage_gets_json(void **state)
{
    fx_t *fx = *state;
    char dir[256], cert[300], key[300], cmd[1024];
    assert_int_equal(sb_test_mkdtemp(dir, "tls"), 0);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout '%s' -out '%s' -days 1 "
             "-subj /CN=localhost >/dev/null 2>&1",
             key, cert);
    if (system(cmd) != 0)
        skip();
    sb_http_opts_t o = {
        .loop = &fx->loop, .listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key};
    sb_http_server_t *tls = NULL;
    assert_int_equal(sb_http_server_new(&o, &tls), 0);
    fx->extra = tls;
    assert_int_equal(sb_http_route(tls, "GET", "/hello", h_hello, fx), 0);
    int port = sb_http_server_port(tls);

    tls_call_t k = {.status = 0};
    snprintf(k.url, sizeof(k.url), "https://127.0.0.1:%d/hello", port);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tls_main, &k), 0);
    SPIN_UNTIL(fx, atomic_load(&k.done), 10000);
    pthread_join(th, NULL);
    assert_int_equal(k.status, 400);
    char resp[4200];
    snprintf(resp, sizeof(resp), "HTTP/1.1 400\r\n\r\n%s", k.body);
    expect_json_after(resp, "HTTP/1.1 400", "bad_request", "malformed request line");

    raw_call_t plain = {.src = "127.0.0.5",
                        .port = port,
                        .req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
                        .timeout_ms = 5000};
    raw_run(fx, &plain, 1, 10000);
    assert_int_equal(plain.status, 400);
    expect_json_after(plain.resp, "HTTP/1.1 400", "bad_request", "this port speaks HTTPS");

    bool stopped = false;
    fx->extra = NULL;
    sb_http_server_stop(tls, on_flag, &stopped);
    SPIN_UNTIL(fx, stopped, 5000);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- WebSocket frames must be masked (RFC 6455 §5.1) ---- */

static void on_ws_text(sb_ws_t *ws, const char *msg, size_t len, void *data)
{
    fx_t *fx = data;
    snprintf(fx->ws_text, sizeof(fx->ws_text), "%.*s", (int)len, msg);
    fx->ws_texts++;
    sb_ws_send(ws, "ok", 2);
}

typedef struct ws_client {
    int port;
    bool masked;
    bool pipeline;          /* send the frame with the upgrade, not after the 101 */
    unsigned char got[256]; /* what came after the 101's head */
    size_t got_len;
    int status;
    atomic_bool done;
} ws_client_t;

static void *ws_client_main(void *arg)
{
    ws_client_t *k = arg;
    int fd = connect_from("127.0.0.6", k->port);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    static const char up[] =
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: switchboard.visitor.v1\r\n\r\n";
    static const unsigned char masked_hi[] = {0x81, 0x82, 0x12,       0x34,
                                              0x56, 0x78, 'h' ^ 0x12, 'i' ^ 0x34};
    char pipelined[sizeof(up) - 1 + sizeof(masked_hi)];
    memcpy(pipelined, up, sizeof(up) - 1);
    memcpy(pipelined + sizeof(up) - 1, masked_hi, sizeof(masked_hi));
    if (k->pipeline)
        send(fd, pipelined, sizeof(pipelined), MSG_NOSIGNAL);
    else
        send(fd, up, sizeof(up) - 1, MSG_NOSIGNAL);
    char head[2048];
    size_t n = 0;
    char *end = NULL;
    while (!end && n < sizeof(head) - 1) { /* the client waits for the 101 (RFC 6455 §4.1) */
        ssize_t r = recv(fd, head + n, sizeof(head) - 1 - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
        head[n] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    if (sscanf(head, "HTTP/1.1 %d", &k->status) == 1 && end) {
        static const unsigned char unmasked_hi[] = {0x81, 0x02, 'h', 'i'};
        size_t got = (size_t)(head + n - (end + 4)); /* frames already after the head */
        memcpy(k->got, end + 4, got);
        k->got_len = got;
        if (!k->pipeline && k->masked)
            send(fd, masked_hi, sizeof(masked_hi), MSG_NOSIGNAL);
        else if (!k->pipeline)
            send(fd, unmasked_hi, sizeof(unmasked_hi), MSG_NOSIGNAL);
        for (;;) { /* until the server closes, or the reply of a masked frame */
            ssize_t r = recv(fd, k->got + k->got_len, sizeof(k->got) - k->got_len, 0);
            if (r <= 0)
                break;
            k->got_len += (size_t)r;
            if (k->masked && k->got_len >= 4)
                break;
        }
    }
    close(fd);
    atomic_store(&k->done, true);
    return NULL;
}

static void ws_client_run(fx_t *fx, ws_client_t *k)
{
    pthread_t th;
    k->port = fx->port;
    atomic_store(&k->done, false);
    assert_int_equal(pthread_create(&th, NULL, ws_client_main, k), 0);
    SPIN_UNTIL(fx, atomic_load(&k->done), 10000);
    pthread_join(th, NULL);
}

static void test_ws_unmasked_frame_closes_1002(void **state)
{
    fx_t *fx = *state;
    sb_ws_route_t r = {
        .path = "/ws", .subprotocol = "switchboard.visitor.v1", .on_text = on_ws_text, .data = fx};
    assert_int_equal(sb_ws_route(fx->srv, &r), 0);

    ws_client_t bad = {.masked = false};
    ws_client_run(fx, &bad);
    assert_int_equal(bad.status, 101);
    /* A close frame with status 1002 (protocol error), and the frame was not delivered. */
    assert_true(bad.got_len >= 4);
    assert_int_equal(bad.got[0], 0x88);
    assert_int_equal((bad.got[2] << 8) | bad.got[3], 1002);
    assert_int_equal(fx->ws_texts, 0);

    ws_client_t good = {.masked = true};
    ws_client_run(fx, &good);
    assert_int_equal(good.status, 101);
    assert_int_equal(fx->ws_texts, 1);
    assert_string_equal(fx->ws_text, "hi");
    assert_true(good.got_len >= 4);
    assert_int_equal(good.got[0], 0x81); /* the "ok" reply */
    assert_memory_equal(good.got + 2, "ok", 2);

    /* A client that sends its first frame with the upgrade (not waiting for the 101) is
     * still served, once the look at the first frame gives up. */
    ws_client_t eager = {.masked = true, .pipeline = true};
    ws_client_run(fx, &eager);
    assert_int_equal(eager.status, 101);
    assert_int_equal(fx->ws_texts, 2);
    assert_true(eager.got_len >= 4);
    assert_int_equal(eager.got[0], 0x81);
    assert_memory_equal(eager.got + 2, "ok", 2);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_slowloris_does_not_starve_others, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_http_malformed_heads_get_json_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_keep_alive_garbage_gets_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_tls_port_garbage_gets_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ws_unmasked_frame_closes_1002, setup, teardown),
    };
    if (getenv("SB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SB_TEST_FILTER"));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests_name("integration/http_guard", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

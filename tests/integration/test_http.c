/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server (gateway/http.c) against a real client: libcurl runs in a thread while
 * the test thread runs the libuv loop the server lives on. Covers routing (exact, `{id}`,
 * `*`, 404, 405), query and header access, bodies (200 KiB intact, 413 by Content-Length
 * and by chunked upload), answers from a timer, clients that leave before the answer
 * (on_close once; no hook: a late respond is refused safely), keep-alive, SSE streaming
 * read incrementally, port 0, TLS, and stop with open connections closing the loop cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/alloc.h"
#include "core/err.h"
#include "gateway/http.h"
#include "tests/harness/harness.h"

#define SMALL_BODY 1024
#define STREAM_CAP (64 * 1024)

/* ---- A curl client in a thread ---- */

typedef struct call {
    const char *method; /* NULL = GET */
    char url[256];
    const char *body;
    size_t body_len;
    bool chunked; /* send the body with Transfer-Encoding: chunked */
    bool keep_expect;
    const char *hdrs[4];
    long timeout_ms;
    /* results */
    CURLcode rc;
    long status;
    long num_connects;
    double elapsed_ms;
    char *resp;
    size_t resp_len;
    char resp_hdrs[4096];
    size_t sent; /* chunked upload position */
    atomic_int events;
} call_t;

typedef struct client {
    pthread_t th;
    call_t calls[2];
    int ncalls;
    atomic_bool done;
} client_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    call_t *k = arg;
    size_t len = size * n;
    k->resp = realloc(k->resp, k->resp_len + len + 1);
    memcpy(k->resp + k->resp_len, p, len);
    k->resp_len += len;
    k->resp[k->resp_len] = '\0';
    int ev = 0;
    for (const char *s = k->resp; (s = strstr(s, "\n\n")) != NULL; s += 2)
        ev++;
    atomic_store(&k->events, ev);
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    call_t *k = arg;
    size_t len = size * n, used = strlen(k->resp_hdrs);
    if (used + len < sizeof(k->resp_hdrs)) {
        memcpy(k->resp_hdrs + used, p, len);
        k->resp_hdrs[used + len] = '\0';
    }
    return len;
}

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
    call_t *k = arg;
    size_t left = k->body_len - k->sent, len = size * n;
    if (len > 512)
        len = 512; /* several chunks */
    if (len > left)
        len = left;
    memcpy(p, k->body + k->sent, len);
    k->sent += len;
    return len;
}

static void perform(CURL *h, call_t *k)
{
    struct curl_slist *hl = NULL;
    for (int i = 0; i < 4 && k->hdrs[i]; i++)
        hl = curl_slist_append(hl, k->hdrs[i]);
    if (!k->keep_expect)
        hl = curl_slist_append(hl, "Expect:");
    if (k->chunked)
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, k->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_VERBOSE, getenv("SB_TEST_VERBOSE") ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, k->timeout_ms ? k->timeout_ms : 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, k);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    if (k->method && !strcmp(k->method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if (k->method)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, k->method);
    if (k->chunked) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, k);
    } else if (k->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)k->body_len);
    }
    k->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &k->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &k->num_connects);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &k->elapsed_ms);
    k->elapsed_ms *= 1000;
    curl_slist_free_all(hl);
}

static void *client_main(void *arg)
{
    client_t *c = arg;
    CURL *h = curl_easy_init();
    for (int i = 0; i < c->ncalls; i++)
        perform(h, &c->calls[i]);
    curl_easy_cleanup(h);
    atomic_store(&c->done, true);
    return NULL;
}

static void client_start(client_t *c)
{
    atomic_store(&c->done, false);
    assert_int_equal(pthread_create(&c->th, NULL, client_main, c), 0);
}

static void client_join(client_t *c)
{
    pthread_join(c->th, NULL);
    for (int i = 0; i < c->ncalls; i++)
        free(c->calls[i].resp);
}

/* ---- The server side ---- */

typedef struct fx {
    uv_loop_t loop;
    sb_http_server_t *srv;
    int port;
    bool stopped;
    int closes;    /* on_close hook runs */
    int hangs;     /* requests to /hang */
    int orphan_rc; /* sb_http_respond on a request whose client left (no hook) */
    bool orphan_done;
    sb_http_req_t *stream;   /* the open SSE request */
    sb_http_server_t *extra; /* a second server of the test */
    int stream_closes;
} fx_t;

typedef struct later {
    uv_timer_t timer;
    fx_t *fx;
    sb_http_req_t *req;
    int kind; /* 0 answer, 1 hang (hooked), 2 orphan */
} later_t;

static void url(const fx_t *fx, call_t *k, const char *path)
{
    snprintf(k->url, sizeof(k->url), "http://127.0.0.1:%d%s", fx->port, path);
}

#define SPIN_UNTIL(fx, cond, ms) SB_TEST_SPIN_UNTIL(&(fx)->loop, cond, ms)

static void run_client(fx_t *fx, client_t *c)
{
    client_start(c);
    SPIN_UNTIL(fx, atomic_load(&c->done), 15000);
}

static void h_hello(sb_http_req_t *req, void *data)
{
    json_t *j = json_pack("{s:s}", "hello", "world");
    assert_int_equal(sb_http_respond_json(req, 200, j), 0);
    json_decref(j);
}

static void h_item(sb_http_req_t *req, void *data)
{
    const char *q = sb_http_req_query(req, "q"), *tag = sb_http_req_query(req, "tag");
    json_t *j =
        json_pack("{s:s,s:s?,s:s?}", "id", sb_http_req_param(req, "id"), "q", q, "tag", tag);
    sb_http_respond_json(req, 200, j);
    json_decref(j);
}

static void h_special(sb_http_req_t *req, void *data)
{
    sb_http_respond(req, 200, "text/plain", "exact", 5);
}

static void h_asset(sb_http_req_t *req, void *data)
{
    const char *rest = sb_http_req_param(req, "*");
    sb_http_respond(req, 200, "text/plain", rest, strlen(rest));
}

static void h_echo(sb_http_req_t *req, void *data)
{
    size_t len;
    const char *body = sb_http_req_body(req, &len);
    sb_http_add_header(req, "X-Body-Length", "yes");
    sb_http_respond(req, 201, "application/octet-stream", body, len);
}

static void h_headers(sb_http_req_t *req, void *data)
{
    json_t *j = json_pack(
        "{s:s?,s:s?,s:s?,s:s?,s:s?,s:s}", "authorization", sb_http_req_header(req, "authorization"),
        "last_event_id", sb_http_req_header(req, "last-event-id"), "user_agent",
        sb_http_req_header(req, "user-agent"), "custom", sb_http_req_header(req, "x-custom"),
        "missing", sb_http_req_header(req, "x-missing"), "peer", sb_http_req_peer(req));
    sb_http_respond_json(req, 200, j);
    json_decref(j);
}

static void on_later_closed(uv_handle_t *h)
{
    sb_free(h->data);
}

static void on_later(uv_timer_t *t)
{
    later_t *l = t->data;
    if (l->kind == 2) {
        l->fx->orphan_rc = sb_http_respond(l->req, 200, "text/plain", "late", 4);
        l->fx->orphan_done = true;
    } else {
        sb_http_req_on_close(l->req, NULL, NULL);
        sb_http_respond_error(l->req, 202, "accepted", "answered later");
    }
    uv_close((uv_handle_t *)t, on_later_closed);
}

static void on_hang_close(sb_http_req_t *req, void *data)
{
    later_t *l = data;
    assert_ptr_equal(req, l->req);
    l->fx->closes++;
    uv_timer_stop(&l->timer);
    uv_close((uv_handle_t *)&l->timer, on_later_closed);
}

static void start_later(fx_t *fx, sb_http_req_t *req, int kind, uint64_t ms)
{
    later_t *l = SB_NEW(later_t);
    l->fx = fx;
    l->req = req;
    l->kind = kind;
    uv_timer_init(&fx->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, on_later, ms, 0);
    if (kind != 2)
        sb_http_req_on_close(req, on_hang_close, l);
}

static void h_slow(sb_http_req_t *req, void *data)
{
    start_later(data, req, 0, 50);
}

static void h_hang(sb_http_req_t *req, void *data)
{
    ((fx_t *)data)->hangs++;
    start_later(data, req, 1, 5000);
}

static void h_orphan(sb_http_req_t *req, void *data)
{
    start_later(data, req, 2, 1500); /* after the server noticed the client left */
}

static void on_stream_close(sb_http_req_t *req, void *data)
{
    fx_t *fx = data;
    fx->stream = NULL;
    fx->stream_closes++;
}

static void h_events(sb_http_req_t *req, void *data)
{
    fx_t *fx = data;
    fx->stream = req;
    sb_http_req_on_close(req, on_stream_close, fx);
    assert_int_equal(sb_http_stream_start(req, 200, "text/event-stream"), 0);
    assert_int_equal(sb_http_stream_write(req, "data: 1\n\n", 9), 0);
}

static int setup_with(void **state, size_t max_body)
{
    fx_t *fx = SB_NEW(fx_t);
    uv_loop_init(&fx->loop);
    sb_http_opts_t o = {.loop = &fx->loop,
                        .listen = "127.0.0.1:0",
                        .max_body = max_body,
                        .max_stream_buffer = STREAM_CAP};
    assert_int_equal(sb_http_server_new(&o, &fx->srv), 0);
    fx->port = sb_http_server_port(fx->srv);
    sb_http_server_t *s = fx->srv;
    assert_int_equal(sb_http_route(s, "GET", "/hello", h_hello, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/items/{id}", h_item, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/items/special", h_special, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/assets/*", h_asset, fx), 0);
    assert_int_equal(sb_http_route(s, "POST", "/echo", h_echo, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/headers", h_headers, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/slow", h_slow, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/hang", h_hang, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/orphan", h_orphan, fx), 0);
    assert_int_equal(sb_http_route(s, "GET", "/events", h_events, fx), 0);
    *state = fx;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0); /* default cap: 1 MiB */
}

static int setup_small(void **state)
{
    return setup_with(state, SMALL_BODY);
}

static void on_flag(void *data)
{
    *(bool *)data = true;
}

static void on_stopped(void *data)
{
    ((fx_t *)data)->stopped = true;
}

static void stop_server(fx_t *fx)
{
    if (fx->extra) {
        sb_http_server_stop(fx->extra, NULL, NULL);
        fx->extra = NULL;
    }
    if (fx->srv) {
        sb_http_server_stop(fx->srv, on_stopped, fx);
        fx->srv = NULL;
    }
    uint64_t deadline = uv_now(&fx->loop) + 5000;
    while (!fx->stopped && uv_now(&fx->loop) < deadline)
        uv_run(&fx->loop, UV_RUN_ONCE);
    assert_true(fx->stopped);
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    stop_server(fx);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* returns: nothing of lws is left on the loop */
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    sb_free(fx);
    return 0;
}

static json_t *body_json(const call_t *k)
{
    json_error_t e;
    json_t *j = json_loadb(k->resp ? k->resp : "", k->resp_len, 0, &e);
    assert_non_null(j);
    return j;
}

static void assert_error(const call_t *k, long status, const char *code)
{
    assert_int_equal(k->rc, CURLE_OK);
    assert_int_equal(k->status, status);
    assert_non_null(strcasestr(k->resp_hdrs, "content-type: application/json"));
    json_t *j = body_json(k);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                        code);
    json_decref(j);
}

/* ---- Tests ---- */

static void test_http_get_json(void **state)
{
    fx_t *fx = *state;
    assert_true(fx->port > 0);
    client_t c = {.ncalls = 1};
    url(fx, &c.calls[0], "/hello");
    run_client(fx, &c);
    call_t *k = &c.calls[0];
    assert_int_equal(k->rc, CURLE_OK);
    assert_int_equal(k->status, 200);
    assert_string_equal(k->resp, "{\"hello\":\"world\"}");
    assert_non_null(strcasestr(k->resp_hdrs, "content-type: application/json"));
    assert_non_null(strcasestr(k->resp_hdrs, "content-length: 17"));
    client_join(&c);
}

static void test_http_params_and_query(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 2};
    url(fx, &c.calls[0], "/items/abc%20d?q=hello%20world&tag=a%2Bb&x");
    url(fx, &c.calls[1], "/items/special");
    run_client(fx, &c);
    json_t *j = body_json(&c.calls[0]);
    assert_string_equal(json_string_value(json_object_get(j, "id")), "abc d");
    assert_string_equal(json_string_value(json_object_get(j, "q")), "hello world");
    assert_string_equal(json_string_value(json_object_get(j, "tag")), "a+b");
    json_decref(j);
    assert_string_equal(c.calls[1].resp, "exact"); /* exact beats {id} */
    client_join(&c);

    client_t d = {.ncalls = 2};
    url(fx, &d.calls[0], "/assets/js/app.js");
    url(fx, &d.calls[1], "/items/");
    run_client(fx, &d);
    assert_string_equal(d.calls[0].resp, "js/app.js");
    assert_error(&d.calls[1], 404, "not_found"); /* {id} needs a non-empty segment */
    client_join(&d);
}

static void test_http_not_found_and_method(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 2};
    url(fx, &c.calls[0], "/nope");
    url(fx, &c.calls[1], "/hello");
    c.calls[1].method = "DELETE";
    run_client(fx, &c);
    assert_error(&c.calls[0], 404, "not_found");
    assert_error(&c.calls[1], 405, "method_not_allowed");
    assert_non_null(strcasestr(c.calls[1].resp_hdrs, "allow: GET"));
    assert_int_equal(c.calls[1].num_connects, 0); /* errors keep the connection */
    client_join(&c);

    client_t h = {.ncalls = 1};
    url(fx, &h.calls[0], "/hello");
    h.calls[0].method = "HEAD";
    run_client(fx, &h);
    assert_int_equal(h.calls[0].rc, CURLE_OK);
    assert_int_equal(h.calls[0].status, 200);
    assert_int_equal(h.calls[0].resp_len, 0);
    assert_non_null(strcasestr(h.calls[0].resp_hdrs, "content-length: 17"));
    client_join(&h);
}

static void test_http_post_body_intact(void **state)
{
    fx_t *fx = *state;
    size_t n = 200 * 1024;
    char *body = sb_malloc(n);
    for (size_t i = 0; i < n; i++)
        body[i] = (char)('a' + (i * 7) % 26);
    client_t c = {.ncalls = 2};
    url(fx, &c.calls[0], "/echo");
    c.calls[0].body = body;
    c.calls[0].body_len = n;
    url(fx, &c.calls[1], "/echo");
    c.calls[1].body = body;
    c.calls[1].body_len = 3000;
    c.calls[1].chunked = true;
    c.calls[1].keep_expect = true; /* curl asks for 100-continue on chunked uploads */
    run_client(fx, &c);
    for (int i = 0; i < 2; i++) {
        call_t *k = &c.calls[i];
        assert_int_equal(k->rc, CURLE_OK);
        assert_int_equal(k->status, 201);
        assert_int_equal(k->resp_len, i == 0 ? n : 3000);
        assert_memory_equal(k->resp, body, k->resp_len);
        assert_non_null(strcasestr(k->resp_hdrs, "x-body-length: yes"));
    }
    client_join(&c);
    sb_free(body);
}

static void test_http_body_too_large(void **state)
{
    fx_t *fx = *state;
    char body[4 * SMALL_BODY];
    memset(body, 'x', sizeof(body));
    client_t c = {.ncalls = 2};
    url(fx, &c.calls[0], "/echo");
    c.calls[0].body = body;
    c.calls[0].body_len = 2 * SMALL_BODY;
    url(fx, &c.calls[1], "/hello"); /* the connection is still usable */
    run_client(fx, &c);
    assert_error(&c.calls[0], 413, "too_large");
    assert_int_equal(c.calls[1].status, 200);
    client_join(&c);

    client_t d = {.ncalls = 2};
    url(fx, &d.calls[0], "/echo");
    d.calls[0].body = body;
    d.calls[0].body_len = sizeof(body);
    d.calls[0].chunked = true;
    url(fx, &d.calls[1], "/echo");
    d.calls[1].body = body;
    d.calls[1].body_len = sizeof(body);
    d.calls[1].chunked = true;
    d.calls[1].keep_expect = true;
    run_client(fx, &d);
    assert_error(&d.calls[0], 413, "too_large");
    assert_error(&d.calls[1], 413, "too_large");
    client_join(&d);
}

static void test_http_async_answer(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 1};
    url(fx, &c.calls[0], "/slow");
    run_client(fx, &c);
    call_t *k = &c.calls[0];
    assert_error(k, 202, "accepted");
    assert_true(k->elapsed_ms >= 45);
    assert_int_equal(fx->closes, 0);
    client_join(&c);
}

static void test_http_client_leaves_early(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 1};
    url(fx, &c.calls[0], "/hang");
    c.calls[0].timeout_ms = 150;
    run_client(fx, &c);
    assert_int_equal(c.calls[0].rc, CURLE_OPERATION_TIMEDOUT);
    SPIN_UNTIL(fx, fx->closes > 0, 2000);
    sb_test_loop_for(&fx->loop, 50);
    assert_int_equal(fx->closes, 1);
    client_join(&c);

    /* without a hook: the late respond is refused and frees the request */
    client_t d = {.ncalls = 1};
    url(fx, &d.calls[0], "/orphan");
    d.calls[0].timeout_ms = 100;
    run_client(fx, &d);
    SPIN_UNTIL(fx, fx->orphan_done, 2000);
    assert_int_equal(fx->orphan_rc, SB_ECANCELED);
    client_join(&d);
}

static void test_http_keep_alive(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 2};
    url(fx, &c.calls[0], "/hello");
    url(fx, &c.calls[1], "/items/7");
    run_client(fx, &c);
    assert_int_equal(c.calls[0].status, 200);
    assert_int_equal(c.calls[0].num_connects, 1);
    assert_int_equal(c.calls[1].status, 200);
    assert_int_equal(c.calls[1].num_connects, 0);
    client_join(&c);
    sb_test_loop_for(&fx->loop, 50);
    sb_http_stats_t st;
    sb_http_server_stats(fx->srv, &st);
    assert_int_equal(st.requests, 2);
    assert_int_equal(st.open_connections, 0);
    assert_int_equal(st.open_streams, 0);
}

static void test_http_headers(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 1};
    url(fx, &c.calls[0], "/headers");
    c.calls[0].hdrs[0] = "Authorization: Bearer t0k";
    c.calls[0].hdrs[1] = "Last-Event-ID: 42-0";
    c.calls[0].hdrs[2] = "User-Agent: sbtest/1";
    c.calls[0].hdrs[3] = "X-Custom: yes please";
    run_client(fx, &c);
    json_t *j = body_json(&c.calls[0]);
    assert_string_equal(json_string_value(json_object_get(j, "authorization")), "Bearer t0k");
    assert_string_equal(json_string_value(json_object_get(j, "last_event_id")), "42-0");
    assert_string_equal(json_string_value(json_object_get(j, "user_agent")), "sbtest/1");
    assert_string_equal(json_string_value(json_object_get(j, "custom")), "yes please");
    assert_true(json_is_null(json_object_get(j, "missing")));
    assert_string_equal(json_string_value(json_object_get(j, "peer")), "127.0.0.1");
    json_decref(j);
    client_join(&c);
}

static void test_http_sse_stream(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 1};
    url(fx, &c.calls[0], "/events");
    call_t *k = &c.calls[0];
    client_start(&c);
    SPIN_UNTIL(fx, atomic_load(&k->events) >= 1, 5000);
    assert_non_null(fx->stream);
    sb_http_stats_t st;
    sb_http_server_stats(fx->srv, &st);
    assert_int_equal(st.open_streams, 1);
    /* each event is written only after the client has read the previous one */
    assert_int_equal(sb_http_stream_write(fx->stream, "data: 2\n\n", 9), 0);
    SPIN_UNTIL(fx, atomic_load(&k->events) >= 2, 5000);
    assert_int_equal(sb_http_stream_write(fx->stream, "data: 3\n\n", 9), 0);
    SPIN_UNTIL(fx, atomic_load(&k->events) >= 3, 5000);
    char *big = sb_calloc(1, STREAM_CAP + 1);
    assert_int_equal(sb_http_stream_write(fx->stream, big, STREAM_CAP + 1), SB_ETOOBIG);
    sb_free(big);
    sb_http_req_t *req = fx->stream;
    sb_http_req_on_close(req, NULL, NULL);
    fx->stream = NULL;
    sb_http_stream_end(req);
    SPIN_UNTIL(fx, atomic_load(&c.done), 5000);
    assert_int_equal(k->rc, CURLE_OK);
    assert_int_equal(k->status, 200);
    assert_string_equal(k->resp, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assert_non_null(strcasestr(k->resp_hdrs, "content-type: text/event-stream"));
    assert_non_null(strcasestr(k->resp_hdrs, "cache-control: no-cache"));
    assert_non_null(strcasestr(k->resp_hdrs, "x-accel-buffering: no"));
    assert_null(strcasestr(k->resp_hdrs, "content-length"));
    assert_int_equal(fx->stream_closes, 0);
    client_join(&c);
    sb_test_loop_for(&fx->loop, 20);
    sb_http_server_stats(fx->srv, &st);
    assert_int_equal(st.open_streams, 0);
}

static void test_http_upgrade_refused(void **state)
{
    fx_t *fx = *state;
    client_t c = {.ncalls = 2};
    url(fx, &c.calls[0], "/hello");
    c.calls[0].hdrs[0] = "Connection: Upgrade";
    c.calls[0].hdrs[1] = "Upgrade: websocket";
    c.calls[0].hdrs[2] = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";
    c.calls[0].hdrs[3] = "Sec-WebSocket-Version: 13";
    url(fx, &c.calls[1], "/hello");
    run_client(fx, &c);
    /* no WebSocket route there: an HTTP refusal, and the server goes on */
    assert_true(c.calls[0].status >= 400 && c.calls[0].status < 500);
    assert_int_equal(c.calls[1].status, 200);
    client_join(&c);
}

static void test_http_port_in_use(void **state)
{
    fx_t *fx = *state;
    char listen[64];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", fx->port);
    sb_http_opts_t o = {.loop = &fx->loop, .listen = listen};
    sb_http_server_t *other = NULL;
    assert_int_equal(sb_http_server_new(&o, &other), SB_EIO);
    assert_null(other);
    o.listen = "nonsense";
    assert_int_equal(sb_http_server_new(&o, &other), SB_EINVAL);
    assert_int_equal(sb_http_route(fx->srv, "GET", "/a/{", h_hello, fx), SB_EINVAL);
    assert_int_equal(sb_http_route(fx->srv, "GET", "/a*/b", h_hello, fx), SB_EINVAL);
    assert_int_equal(sb_http_route(fx->srv, "GET", "/hello", h_hello, fx), SB_EINVAL);
    sb_test_loop_for(&fx->loop, 20); /* the failed server finishes its cleanup */
}

static void test_http_stop_with_open_connections(void **state)
{
    fx_t *fx = *state;
    client_t a = {.ncalls = 1}, b = {.ncalls = 1};
    url(fx, &a.calls[0], "/events");
    url(fx, &b.calls[0], "/hang");
    client_start(&a);
    client_start(&b);
    SPIN_UNTIL(fx, atomic_load(&a.calls[0].events) >= 1 && fx->hangs == 1, 5000);
    stop_server(fx);
    assert_int_equal(fx->stream_closes, 1); /* on_close ran for the open stream */
    assert_int_equal(fx->closes, 1);        /* ... and for the pending answer */
    SPIN_UNTIL(fx, atomic_load(&a.done) && atomic_load(&b.done), 5000);
    assert_int_not_equal(b.calls[0].rc, CURLE_OK);
    client_join(&a);
    client_join(&b);
    /* teardown checks that the loop ends and closes */
}

static void test_http_tls(void **state)
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
    if (system(cmd) != 0) {
        skip();
    }
    sb_http_opts_t o = {
        .loop = &fx->loop, .listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key};
    sb_http_server_t *tls = NULL;
    assert_int_equal(sb_http_server_new(&o, &tls), 0);
    fx->extra = tls; /* teardown stops it if an assertion fails */
    assert_int_equal(sb_http_route(tls, "GET", "/hello", h_hello, fx), 0);
    client_t c = {.ncalls = 1};
    snprintf(c.calls[0].url, sizeof(c.calls[0].url), "https://127.0.0.1:%d/hello",
             sb_http_server_port(tls));
    run_client(fx, &c);
    assert_int_equal(c.calls[0].rc, CURLE_OK);
    assert_string_equal(c.calls[0].resp, "{\"hello\":\"world\"}");
    client_join(&c);
    bool stopped = false;
    fx->extra = NULL;
    sb_http_server_stop(tls, on_flag, &stopped);
    SPIN_UNTIL(fx, stopped, 5000);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* progress shows even if a test hangs */
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_get_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_params_and_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_not_found_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_post_body_intact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_body_too_large, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_http_async_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_client_leaves_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_keep_alive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_sse_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_upgrade_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_port_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_stop_with_open_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_tls, setup, teardown),
    };
    if (getenv("SB_TEST_FILTER"))
        cmocka_set_test_filter(getenv("SB_TEST_FILTER"));
    int rc = cmocka_run_group_tests_name("integration/http", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

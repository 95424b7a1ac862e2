/* SPDX-License-Identifier: MIT */
/*
 * Connectors on the v2 interface (connectors/connector.h), on a real redis-server:
 *   - web chat's start error paths: a host that refuses the route, and a configuration
 *     loaded without web chat's keys, make start fail with everything freed (ASan's leak
 *     check at exit), no route registered and no events subscription left; a good host
 *     gets exactly one WebSocket route and stop's callback runs once;
 *   - the echo example of docs/connectors.md (tests/connectors/echo/echo.c) on the real
 *     host (gateway/connector_host.c) and HTTP server: a POST becomes a stored message,
 *     bad input a 400, its metrics and stop work, and once the host is closed a request
 *     gets 503 without reaching the stopped connector.
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

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/events.h"
#include "core/util.h"
#include "gateway/connector_host.h"
#include "gateway/http.h"
#include "tests/harness/harness.h"

extern const sb_connector_desc_t sb_connector_webchat;
extern const sb_connector_desc_t sb_connector_echo;

typedef struct fx {
    sb_test_store_t *st; /* redis-server, loop, store */
    sb_redis_t *block;
    sb_events_t *events;
    char dir[256];
    uint64_t msgs_in[SB_CHANNEL_COUNT], msgs_out[SB_CHANNEL_COUNT];
} fx_t;

static int setup(void **state)
{
    fx_t *fx = SB_NEW(fx_t);
    fx->st = sb_test_store_new(false, 5000);
    if (!fx->st || sb_test_mkdtemp(fx->dir, "connectors") != 0)
        return -1;
    sb_redis_opts_t bo = {.url = fx->st->srv.url, .name = "events"};
    if (sb_redis_new(&fx->st->loop, &bo, &fx->block) != 0 ||
        sb_events_new(&fx->st->loop, fx->block, fx->st->redis, "sb:", 16, &fx->events) != 0)
        return -1;
    uint64_t deadline = sb_test_now_ms() + 10000;
    while ((!sb_store_ready(fx->st->store) || !sb_events_ready(fx->events)) &&
           sb_test_now_ms() < deadline)
        sb_test_spin_once(&fx->st->loop);
    *state = fx;
    return sb_store_ready(fx->st->store) && sb_events_ready(fx->events) ? 0 : -1;
}

static void on_flag(void *data)
{
    *(bool *)data = true;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    sb_events_free(fx->events);
    bool stopped = false;
    sb_redis_stop(fx->block, on_flag, &stopped);
    sb_test_loop_until(&fx->st->loop, &stopped, 5000);
    sb_test_store_free(fx->st);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    if (system(cmd) != 0)
        return -1;
    sb_free(fx);
    return 0;
}

static sb_connector_env_t env_of(fx_t *fx, const sb_config_t *cfg, const sb_host_ops_t *ops,
                                 void *host)
{
    return (sb_connector_env_t){.loop = &fx->st->loop,
                                .cfg = cfg,
                                .store = fx->st->store,
                                .events = fx->events,
                                .host = ops,
                                .host_data = host,
                                .msgs_in = fx->msgs_in,
                                .msgs_out = fx->msgs_out};
}

/* A config file in the fixture's directory, loaded with the given keys. */
static void load_conf(fx_t *fx, sb_config_t *c, const char *text,
                      const sb_config_key_t *const *extra)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/t.conf", fx->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    sb_buf_t errors;
    sb_buf_init(&errors, 4096);
    if (sb_config_load_with(c, path, extra, &errors) != 0)
        fail_msg("config: %s", errors.data);
    sb_buf_dispose(&errors);
}

/* ---- A host that only records routes, and can refuse them ---- */

typedef struct fake_host {
    int refuse; /* an SB_E* code every registration returns, or 0 */
    int ws_routes, http_routes, attempts;
    sb_host_ws_route_t last;
} fake_host_t;

static int fake_ws_route(void *host, const sb_host_ws_route_t *r)
{
    fake_host_t *h = host;
    h->attempts++;
    if (h->refuse)
        return h->refuse;
    h->ws_routes++;
    h->last = *r;
    return 0;
}

static int fake_http_route(void *host, const char *method, const char *pattern, sb_host_http_cb cb,
                           void *data)
{
    fake_host_t *h = host;
    h->attempts++;
    if (h->refuse)
        return h->refuse;
    h->http_routes++;
    return 0;
}

static const sb_host_ops_t fake_ops = {.http_route = fake_http_route, .ws_route = fake_ws_route};

static const char *const sites_conf =
    "site shop s3cret https://shop.example https://www.shop.example\nsite blog other\n";

/* ---- Web chat's start and stop ---- */

static void test_webchat_start_fails_when_the_route_is_refused(void **state)
{
    fx_t *fx = *state;
    sb_config_t cfg;
    load_conf(fx, &cfg, sites_conf, sb_connectors_config());
    fake_host_t host = {.refuse = SB_EINVAL};
    sb_connector_env_t env = env_of(fx, &cfg, &fake_ops, &host);
    size_t subs = sb_events_subscribers(fx->events);
    void *wc = NULL;
    assert_int_equal(sb_connector_webchat.start(&env, &wc), SB_EINVAL);
    assert_null(wc);
    assert_int_equal(host.attempts, 1);
    assert_int_equal(host.ws_routes + host.http_routes, 0);
    assert_int_equal(sb_events_subscribers(fx->events), subs); /* its subscription undone */
    sb_test_loop_for(&fx->st->loop, 50); /* nothing of it left to run (ASan would see) */
    sb_config_dispose(&cfg);
}

static void test_webchat_start_fails_without_its_keys(void **state)
{
    fx_t *fx = *state;
    sb_config_t cfg;
    load_conf(fx, &cfg, "", NULL); /* the core's keys only: no visitor_rate, no site */
    fake_host_t host = {0};
    sb_connector_env_t env = env_of(fx, &cfg, &fake_ops, &host);
    size_t subs = sb_events_subscribers(fx->events);
    void *wc = NULL;
    assert_int_equal(sb_connector_webchat.start(&env, &wc), SB_ECONFIG);
    assert_null(wc);
    assert_int_equal(host.attempts, 0);
    assert_int_equal(sb_events_subscribers(fx->events), subs);
    sb_config_dispose(&cfg);
}

static void on_stopped_count(void *data)
{
    (*(int *)data)++;
}

static void test_webchat_start_and_stop(void **state)
{
    fx_t *fx = *state;
    sb_config_t cfg;
    load_conf(fx, &cfg, sites_conf, sb_connectors_config());
    fake_host_t host = {0};
    sb_connector_env_t env = env_of(fx, &cfg, &fake_ops, &host);
    size_t subs = sb_events_subscribers(fx->events);
    void *wc = NULL;
    assert_int_equal(sb_connector_webchat.start(&env, &wc), 0);
    assert_non_null(wc);
    assert_int_equal(host.ws_routes, 1);
    assert_int_equal(host.http_routes, 0);
    assert_string_equal(host.last.path, "/v1/visitor/ws");
    assert_string_equal(host.last.subprotocol, "switchboard.visitor.v1");
    assert_ptr_equal(host.last.data, wc);
    assert_int_equal(sb_events_subscribers(fx->events), subs + 1);
    assert_string_equal(sb_connector_webchat.channel, "webchat");
    assert_null(sb_connector_webchat.deliver);

    sb_buf_t m;
    sb_buf_init(&m, 4096);
    sb_connector_webchat.metrics(wc, &m);
    assert_non_null(strstr(m.data, "\nswitchboard_webchat_sockets 0\n"));
    sb_buf_dispose(&m);

    /* Its wait-estimate timer reads the store: stop while that call is in flight. */
    sb_test_loop_for(&fx->st->loop, 250);
    int stopped = 0;
    sb_connector_webchat.stop(wc, on_stopped_count, &stopped);
    SB_TEST_SPIN_UNTIL(&fx->st->loop, stopped == 1, 5000);
    sb_test_loop_for(&fx->st->loop, 50);
    assert_int_equal(stopped, 1);
    assert_int_equal(sb_events_subscribers(fx->events), subs);
    sb_config_dispose(&cfg);
}

/* ---- The echo example on the real host ---- */

typedef struct post {
    pthread_t th;
    char url[128];
    const char *body;
    long status;
    char resp[1024];
    size_t len;
    atomic_bool done;
} post_t;

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
    post_t *k = arg;
    size_t len = size * n, room = sizeof(k->resp) - 1 - k->len;
    memcpy(k->resp + k->len, p, len < room ? len : room);
    k->len += len < room ? len : room;
    k->resp[k->len] = '\0';
    return len;
}

static void *post_main(void *arg)
{
    post_t *k = arg;
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, k->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
    curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &k->status);
    curl_easy_cleanup(h);
    atomic_store(&k->done, true);
    return NULL;
}

/* POSTs body to path on the loop's server; the response body is in k->resp. */
static void post(fx_t *fx, int port, const char *path, const char *body, post_t *k)
{
    memset(k, 0, sizeof(*k));
    snprintf(k->url, sizeof(k->url), "http://127.0.0.1:%d%s", port, path);
    k->body = body;
    assert_int_equal(pthread_create(&k->th, NULL, post_main, k), 0);
    SB_TEST_SPIN_UNTIL(&fx->st->loop, atomic_load(&k->done), 15000);
    pthread_join(k->th, NULL);
}

static void on_messages(int status, json_t *res, const char *errmsg, void *data)
{
    json_t **out = data;
    *out = status ? json_null() : json_incref(res);
}

static void test_echo_example(void **state)
{
    fx_t *fx = *state;
    const sb_config_key_t *const extra[] = {sb_connector_echo.config, NULL};
    sb_config_t cfg;
    load_conf(fx, &cfg, "echo_path /hooks/echo\n", extra);
    sb_http_opts_t ho = {.loop = &fx->st->loop, .listen = "127.0.0.1:0"};
    sb_http_server_t *http;
    assert_int_equal(sb_http_server_new(&ho, &http), 0);
    int port = sb_http_server_port(http);
    sb_connector_host_t *host = sb_connector_host_new(http);
    sb_connector_env_t env = env_of(fx, &cfg, &sb_connector_host_ops, host);
    void *echo = NULL;
    assert_int_equal(sb_connector_echo.start(&env, &echo), 0);

    post_t k;
    post(fx, port, "/hooks/echo", "{\"from\":\"alice\",\"text\":\"hello there\"}", &k);
    assert_int_equal(k.status, 201);
    json_t *r = json_loads(k.resp, 0, NULL);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "echo")), "hello there");
    const char *conv = json_string_value(json_object_get(r, "conversation"));
    assert_true(sb_id_valid(conv, "c_"));
    assert_int_equal(fx->msgs_in[SB_CHANNEL_api], 1);

    /* The message is in the store, in the conversation the answer named. */
    json_t *msgs = NULL;
    assert_int_equal(sb_store_messages(fx->st->store, conv, NULL, 10, on_messages, &msgs), 0);
    SB_TEST_SPIN_UNTIL(&fx->st->loop, msgs != NULL, 5000);
    json_t *items = json_object_get(msgs, "items"), *it, *m0 = NULL;
    size_t i;
    json_array_foreach(items, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id"));
        if (id && strcmp(id, json_string_value(json_object_get(r, "id"))) == 0)
            m0 = it;
    }
    assert_non_null(m0);
    assert_string_equal(json_string_value(json_object_get(m0, "text")), "hello there");
    assert_string_equal(json_string_value(json_object_get(m0, "channel")), "api");
    json_decref(msgs);
    json_decref(r);

    post(fx, port, "/hooks/echo", "{\"text\":\"nobody\"}", &k);
    assert_int_equal(k.status, 400);
    assert_non_null(strstr(k.resp, "\"bad_request\""));

    sb_buf_t m;
    sb_buf_init(&m, 4096);
    sb_connector_echo.metrics(echo, &m);
    assert_non_null(strstr(m.data, "\nswitchboard_echo_messages_total 1\n"));
    sb_buf_dispose(&m);

    /* Stopping as the daemon does: the host first, so nothing reaches the freed state. */
    sb_connector_host_close(host);
    int stopped = 0;
    sb_connector_echo.stop(echo, on_stopped_count, &stopped);
    assert_int_equal(stopped, 1); /* nothing in flight: at once */
    post(fx, port, "/hooks/echo", "{\"from\":\"bob\",\"text\":\"late\"}", &k);
    assert_int_equal(k.status, 503);
    bool http_stopped = false;
    sb_http_server_stop(http, on_flag, &http_stopped);
    assert_true(sb_test_loop_until(&fx->st->loop, &http_stopped, 5000));
    sb_connector_host_free(host);
    sb_config_dispose(&cfg);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_webchat_start_fails_when_the_route_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_webchat_start_fails_without_its_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_webchat_start_and_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_echo_example, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("integration/connectors", tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}

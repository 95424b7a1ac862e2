/* SPDX-License-Identifier: MIT */
/*
 * A delivering connector for tests, built into the daemon in SB_TESTING builds only (the
 * dev and tsan presets; never release): `test_channel <channel> <url>` makes it serve
 * <channel> (email, say) and deliver that channel's outbox by POSTing each entry to <url>
 * with core/httpc, so that the end-to-end tests (tests/e2e/delivery.test.mjs) drive real
 * outcomes from a fake receiver through the real outbox engine (docs/outbox.md).
 *
 * The POST body is {"channel","stream","id","attempt","redelivered","conv","m":{message}}
 * with the header Idempotency-Key: <message id>. The answer becomes the outcome:
 *   2xx                 ok, provider id = the body's "id" (when it is JSON with one)
 *   429                 rate_limited, at its Retry-After (seconds)
 *   401, 403            auth (the lane pauses until resumed)
 *   other 4xx           permanent
 *   5xx, no answer      temporary
 * The reason of a failure is "HTTP <code>: <the body's "error", or the body>".
 *
 * Without a test_channel line it does not run (start leaves its state NULL). Its
 * descriptor's channel is set from the configuration at start: one per process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/httpc.h"
#include "core/log.h"
#include "core/outbox.h"
#include "core/sys.h"

#define TIMEOUT_MS 10000

static char channel[32] = "email"; /* the descriptor's; from test_channel at start */

typedef struct testchan {
    sb_connector_env_t env;
    char *url;
    sb_httpc_t *httpc;
    uint64_t sent, failed;
    sb_connector_stopped_cb done;
    void *done_data;
} testchan_t;

typedef struct send {
    testchan_t *t;
    sb_deliver_cb done;
    void *data;
} send_t;

/* "HTTP <code>: <why>", why = the body's "error" (string) or the body itself. */
static void reason_of(const sb_httpc_response_t *res, const json_t *body, char *out, size_t cap)
{
    const char *why = json_string_value(json_object_get(body, "error"));
    snprintf(out, cap, "HTTP %ld: %.200s", res->code, why ? why : res->body);
}

static void on_answer(const sb_httpc_response_t *res, void *data)
{
    send_t *s = data;
    json_t *body = res->status == 0 ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
    char why[256], ra[32];
    sb_outcome_t o = {.kind = SB_OUTCOME_TEMPORARY, .reason = why};
    if (res->status != 0) {
        snprintf(why, sizeof(why), "%s", res->error);
    } else if (res->code >= 200 && res->code < 300) {
        o = (sb_outcome_t){.kind = SB_OUTCOME_OK,
                           .provider_id = json_string_value(json_object_get(body, "id"))};
    } else {
        reason_of(res, body, why, sizeof(why));
        if (res->code == 429) {
            o.kind = SB_OUTCOME_RATE_LIMITED;
            char *end;
            if (sb_httpc_header(res, "retry-after", ra, sizeof(ra))) {
                unsigned long secs = strtoul(ra, &end, 10);
                if (end != ra && !*end && secs <= 86400)
                    o.retry_at_ms = (uint64_t)sb_now_ms() + secs * 1000;
            }
        } else if (res->code == 401 || res->code == 403) {
            o.kind = SB_OUTCOME_AUTH;
        } else if (res->code >= 400 && res->code < 500) {
            o.kind = SB_OUTCOME_PERMANENT;
        }
    }
    if (o.kind == SB_OUTCOME_OK)
        s->t->sent++;
    else
        s->t->failed++;
    s->done(&o, s->data);
    json_decref(body);
    sb_free(s);
}

static int deliver(void *state, const sb_outbox_entry_t *e, sb_deliver_cb done, void *data)
{
    testchan_t *t = state;
    size_t mlen = 0;
    const char *m = sb_outbox_field(e, "m", &mlen);
    const char *conv = sb_outbox_field(e, "conv", NULL);
    json_t *msg = m ? json_loadb(m, mlen, 0, NULL) : NULL;
    if (!msg || !conv) {
        json_decref(msg);
        return SB_EINVAL;
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:b, s:s, s:O}", "channel", channel, "stream",
                          e->stream, "id", e->id, "attempt", (json_int_t)e->attempt, "redelivered",
                          e->redelivered, "conv", conv, "m", msg);
    char *body = json_dumps(j, JSON_COMPACT);
    char key[128];
    const char *mid = json_string_value(json_object_get(msg, "id"));
    snprintf(key, sizeof(key), "Idempotency-Key: %.100s", mid ? mid : e->id);
    const char *headers[] = {key, "Content-Type: application/json", NULL};
    sb_httpc_request_t req = {.method = "POST",
                              .url = t->url,
                              .headers = headers,
                              .body = body,
                              .body_len = strlen(body),
                              .timeout_ms = TIMEOUT_MS,
                              .max_response = 64 * 1024};
    send_t *s = SB_NEW(send_t);
    *s = (send_t){.t = t, .done = done, .data = data};
    int rc = sb_httpc_send(t->httpc, &req, on_answer, s, NULL);
    if (rc != 0)
        sb_free(s);
    free(body);
    json_decref(j);
    json_decref(msg);
    return rc;
}

static int start(const sb_connector_env_t *env, void **state)
{
    const sb_config_list_t *l = sb_config_list(env->cfg, "test_channel");
    *state = NULL;
    if (!l || l->n == 0)
        return 0; /* not configured: not running */
    const sb_config_entry_t *row = &l->items[l->n - 1];
    snprintf(channel, sizeof(channel), "%s", row->argv[0]);
    testchan_t *t = SB_NEW(testchan_t);
    t->env = *env;
    t->url = sb_strdup(row->argv[1]);
    sb_httpc_new(env->loop, "Switchboard-testchan", &t->httpc);
    SB_LOG_WARN("testchan.start", "channel=%s url=%s (a test connector)", channel, t->url);
    *state = t;
    return 0;
}

static void on_httpc_stopped(void *data)
{
    testchan_t *t = data;
    sb_connector_stopped_cb done = t->done;
    void *done_data = t->done_data;
    sb_free(t->url);
    sb_free(t);
    done(done_data);
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    testchan_t *t = state;
    t->done = done;
    t->done_data = data;
    sb_httpc_stop(t->httpc, on_httpc_stopped, t); /* in flight: answered as canceled */
}

static void metrics(void *state, sb_buf_t *out)
{
    const testchan_t *t = state;
    sb_buf_printf(out,
                  "# TYPE switchboard_testchan_deliveries_total counter\n"
                  "switchboard_testchan_deliveries_total{result=\"ok\"} %llu\n"
                  "switchboard_testchan_deliveries_total{result=\"failed\"} %llu\n",
                  (unsigned long long)t->sent, (unsigned long long)t->failed);
}

static bool check_row(int argc, char *const *argv, char *why, size_t cap)
{
    if (argc != 2) {
        snprintf(why, cap, "want <channel> <url>");
        return false;
    }
    if (strncmp(argv[1], "http://", 7) != 0 && strncmp(argv[1], "https://", 8) != 0) {
        snprintf(why, cap, "the url must start with http:// or https://");
        return false;
    }
    if (strlen(argv[0]) >= sizeof(channel)) {
        snprintf(why, cap, "channel name too long");
        return false;
    }
    return true;
}

static const sb_config_key_t config[] = {
    {"test_channel", SB_CONFIG_LIST, NULL, 2, 0, "<channel> <url>",
     "Tests only (SB_TESTING builds): serve <channel> by POSTing its outbox entries to <url>.",
     check_row},
    {NULL},
};

const sb_connector_desc_t sb_connector_testchan = {
    .name = "testchan",
    .channel = channel,
    .config = config,
    .start = start,
    .stop = stop,
    .deliver = deliver,
    .metrics = metrics,
};

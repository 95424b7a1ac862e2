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
 * It also takes customer messages the way a mail connector does (a test door, nothing
 * checks who calls it): POST /test/ingest {"conv","contact","text","ext"?,
 * "attachments"?:[{"name","type","content":<base64>}]} stores each attachment's bytes
 * with sb_attach_store (here on the loop: a real connector does it on its worker thread),
 * which lists those over attachment_max_bytes with "stored":false, and ingests the message
 * into the conversation; the answer is 201 and the stored message.
 *
 * Without a test_channel line it does not run (start leaves its state NULL). Its
 * descriptor's channel is set from the configuration at start: one per process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/attach.h"
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
    unsigned ingests; /* store calls in flight */
    bool stopping, httpc_stopped;
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

/* ---- POST /test/ingest ---- */

typedef struct ingest {
    testchan_t *t;
    sb_host_req_t *req;
} ingest_t;

static void maybe_done(testchan_t *t);

/* Decodes standard base64 (padding optional) into a new buffer; NULL if malformed. */
static unsigned char *base64_decode(const char *s, size_t *out_len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=')
        n--;
    unsigned char *out = sb_malloc(n * 3 / 4 + 1);
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(abc, s[i]);
        if (!p || !s[i]) {
            sb_free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)(p - abc);
        if (i % 4 == 3) {
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) {
        out[o++] = (unsigned char)(acc >> 4);
    } else if (n % 4 == 3) {
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    } else if (n % 4 == 1) {
        sb_free(out);
        return NULL;
    }
    *out_len = o;
    return out;
}

/* The listing of the request's attachments, their bytes stored; NULL (answered) if bad. */
static json_t *store_attachments(testchan_t *t, sb_host_req_t *req, const json_t *list)
{
    json_t *out = json_array(), *a;
    size_t i;
    json_array_foreach(list, i, a)
    {
        const char *b64 = json_string_value(json_object_get(a, "content"));
        size_t n;
        unsigned char *bytes = b64 ? base64_decode(b64, &n) : NULL;
        if (!bytes) {
            t->env.host->respond_error(req, 400, "bad_request", "content must be base64");
            json_decref(out);
            return NULL;
        }
        json_t *entry = NULL;
        int rc = sb_attach_store(t->env.cfg->data_dir, t->env.cfg->attachment_max_bytes,
                                 json_string_value(json_object_get(a, "name")),
                                 json_string_value(json_object_get(a, "type")), bytes, n, &entry);
        if (rc != 0) {
            t->env.host->respond_error(req, 500, "internal", "the attachment was not stored");
            sb_free(bytes);
            json_decref(out);
            return NULL;
        }
        json_array_append_new(out, entry);
        sb_free(bytes);
    }
    return out;
}

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    ingest_t *g = data;
    const sb_host_ops_t *h = g->t->env.host;
    if (status != 0)
        h->respond_error(g->req, 500, "internal", errmsg ? errmsg : sb_strerror(status));
    else
        h->respond_json(g->req, 201, json_object_get(result, "message"));
    g->t->ingests--;
    maybe_done(g->t);
    sb_free(g);
}

static void h_ingest(sb_host_req_t *req, void *data)
{
    testchan_t *t = data;
    const sb_host_ops_t *h = t->env.host;
    size_t len;
    const char *body = h->req_body(req, &len);
    json_t *j = json_loadb(body, len, 0, NULL), *att = NULL;
    const char *conv = json_string_value(json_object_get(j, "conv"));
    const char *contact = json_string_value(json_object_get(j, "contact"));
    const char *text = json_string_value(json_object_get(j, "text"));
    if (!conv || !contact || !text) {
        h->respond_error(req, 400, "bad_request", "conv, contact and text are required");
        json_decref(j);
        return;
    }
    if (!(att = store_attachments(t, req, json_object_get(j, "attachments")))) {
        json_decref(j);
        return;
    }
    sb_ingest_t in = {.channel = channel,
                      .contact_id = contact,
                      .conv = conv,
                      .text = text,
                      .attachments = att,
                      .ext = json_object_get(j, "ext")};
    ingest_t *g = SB_NEW(ingest_t);
    *g = (ingest_t){.t = t, .req = req};
    int rc = sb_store_ingest(t->env.store, &in, on_ingested, g);
    if (rc != 0) {
        h->respond_error(req, 503, "unavailable", sb_strerror(rc));
        sb_free(g);
    } else {
        t->ingests++;
    }
    json_decref(att);
    json_decref(j);
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
    env->host->http_route(env->host_data, "POST", "/test/ingest", h_ingest, t);
    *state = t;
    return 0;
}

/* Frees t once its HTTP client stopped and its ingests came back. */
static void maybe_done(testchan_t *t)
{
    if (!t->stopping || !t->httpc_stopped || t->ingests > 0)
        return;
    sb_connector_stopped_cb done = t->done;
    void *done_data = t->done_data;
    sb_free(t->url);
    sb_free(t);
    done(done_data);
}

static void on_httpc_stopped(void *data)
{
    testchan_t *t = data;
    t->httpc_stopped = true;
    maybe_done(t);
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    testchan_t *t = state;
    t->done = done;
    t->done_data = data;
    t->stopping = true;
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

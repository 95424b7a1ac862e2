/* SPDX-License-Identifier: MIT */
/*
 * The smallest working connector (docs/connectors.md shows this file whole): one config
 * key, one HTTP route, one message into the store. POST {"from":…,"text":…} to
 * echo_path; the sender becomes a contact (handle kind "echo"), the text a customer
 * message, and the answer echoes the text with the stored ids. It serves the existing
 * channel "api"; a real connector names its own (core/channel.h). Built by the tests only.
 */
#include <string.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"

typedef struct echo {
    sb_connector_env_t env;
    unsigned pending; /* store calls in flight: the state outlives them */
    uint64_t ingested;
    bool stopping;
    sb_connector_stopped_cb done;
    void *done_data;
} echo_t;

typedef struct call { /* one request, from contact to answer */
    echo_t *e;
    sb_host_req_t *req;
    char *text;
} call_t;

static void maybe_free(echo_t *e)
{
    if (!e->stopping || e->pending > 0)
        return;
    sb_connector_stopped_cb done = e->done;
    void *data = e->done_data;
    sb_free(e);
    done(data);
}

static void call_end(call_t *c, int status, json_t *body)
{
    echo_t *e = c->e;
    e->env.host->respond_json(c->req, status, body);
    json_decref(body);
    sb_free(c->text);
    sb_free(c);
    e->pending--;
    maybe_free(e);
}

static void on_ingested(int status, json_t *res, const char *errmsg, void *data)
{
    call_t *c = data;
    if (status) {
        call_end(c, 503, json_pack("{s:s}", "error", "not stored"));
        return;
    }
    c->e->ingested++;
    c->e->env.msgs_in[SB_CHANNEL_api]++;
    json_t *msg = json_object_get(res, "message"), *conv = json_object_get(res, "conversation");
    call_end(c, 201,
             json_pack("{s:s, s:O, s:O}", "echo", c->text, "id", json_object_get(msg, "id"),
                       "conversation", json_object_get(conv, "id")));
}

static void on_contact(int status, json_t *res, const char *errmsg, void *data)
{
    call_t *c = data;
    const char *contact = json_string_value(json_object_get(res, "id"));
    if (status || !contact) {
        call_end(c, 503, json_pack("{s:s}", "error", "no contact"));
        return;
    }
    sb_ingest_t in = {.channel = "api", .contact_id = contact, .text = c->text};
    if (sb_store_ingest(c->e->env.store, &in, on_ingested, c) != 0)
        call_end(c, 503, json_pack("{s:s}", "error", "not stored"));
}

static void on_post(sb_host_req_t *req, void *data)
{
    echo_t *e = data;
    const sb_host_ops_t *host = e->env.host;
    size_t len;
    json_t *body = json_loads(host->req_body(req, &len), 0, NULL);
    const char *from = json_string_value(json_object_get(body, "from"));
    const char *text = json_string_value(json_object_get(body, "text"));
    if (!from || !text || !*text) {
        host->respond_error(req, 400, "bad_request", "send {\"from\":…,\"text\":…}");
        json_decref(body);
        return;
    }
    call_t *c = SB_NEW(call_t);
    *c = (call_t){.e = e, .req = req, .text = sb_strdup(text)};
    e->pending++;
    if (sb_store_contact_resolve(e->env.store, "echo", from, NULL, NULL, on_contact, c) != 0)
        call_end(c, 503, json_pack("{s:s}", "error", "no contact"));
    json_decref(body);
}

static int start(const sb_connector_env_t *env, void **state)
{
    echo_t *e = SB_NEW(echo_t);
    e->env = *env;
    int rc = env->host->http_route(env->host_data, "POST", sb_config_str(env->cfg, "echo_path"),
                                   on_post, e);
    if (rc) {
        sb_free(e);
        return rc;
    }
    *state = e;
    return 0;
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    echo_t *e = state;
    e->stopping = true;
    e->done = done;
    e->done_data = data;
    maybe_free(e);
}

static void metrics(void *state, sb_buf_t *out)
{
    const echo_t *e = state;
    sb_buf_printf(out,
                  "# TYPE switchboard_echo_messages_total counter\n"
                  "switchboard_echo_messages_total %llu\n",
                  (unsigned long long)e->ingested);
}

static const sb_config_key_t config[] = {
    {"echo_path", SB_CONFIG_STRING, "/v1/echo", 2, 0, "<path>",
     "Where the echo connector listens."},
    {NULL},
};

const sb_connector_desc_t sb_connector_echo = {
    .name = "echo",
    .channel = "api",
    .config = config,
    .start = start,
    .stop = stop,
    .metrics = metrics,
};

/* SPDX-License-Identifier: MIT */
/*
 * The connector host (connector_host.h): sb_host_ops_t over http.h and ws.h, and the
 * daemon's loop that starts and stops the built-in connectors (app.h).
 *
 * A connector's sb_host_req_t is the server's sb_http_req_t and its sb_host_ws_t the
 * server's sb_ws_t, only named differently (both opaque on either side); routes get a
 * small adapter, owned by the host, that calls the connector's callbacks with those
 * names. Adapters live until the host is freed, after the server stopped. Once the
 * connectors are stopping (sb_connector_host_close), new requests get 503 and new sockets
 * are refused or closed before the connector sees them: its state may be gone.
 */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/app.h"
#include "gateway/connector_host.h"
#include "gateway/connector_outbox.h"
#include "gateway/ws.h"

typedef struct adapter {
    struct adapter *next;
    const sb_connector_host_t *host;
    sb_host_http_cb http_cb; /* an HTTP route's, or NULL */
    sb_host_ws_route_t ws;   /* a WebSocket route's */
    void *data;
} adapter_t;

struct sb_connector_host {
    sb_http_server_t *http;
    adapter_t *adapters;
    bool closed; /* the connectors are stopping: no new request or socket reaches them */
};

#define REQ(r)  ((sb_http_req_t *)(r))
#define CREQ(r) ((const sb_http_req_t *)(r))
#define WS(w)   ((sb_ws_t *)(w))
#define CWS(w)  ((const sb_ws_t *)(w))
#define HWS(w)  ((sb_host_ws_t *)(w))

static adapter_t *adapter_new(sb_connector_host_t *h)
{
    adapter_t *a = SB_NEW(adapter_t);
    a->host = h;
    a->next = h->adapters;
    h->adapters = a;
    return a;
}

static void adapter_drop(sb_connector_host_t *h, adapter_t *a)
{
    h->adapters = a->next; /* a is the newest */
    sb_free(a);
}

/* ---- HTTP ---- */

static void on_http(sb_http_req_t *req, void *data)
{
    adapter_t *a = data;
    if (a->host->closed) {
        sb_http_respond_error(req, 503, "unavailable", "shutting down");
        return;
    }
    a->http_cb((sb_host_req_t *)req, a->data);
}

static int http_route(void *host, const char *method, const char *pattern, sb_host_http_cb cb,
                      void *data)
{
    sb_connector_host_t *h = host;
    adapter_t *a = adapter_new(h);
    a->http_cb = cb;
    a->data = data;
    int rc = sb_http_route(h->http, method, pattern, on_http, a);
    if (rc)
        adapter_drop(h, a);
    return rc;
}

static const char *req_method(const sb_host_req_t *r)
{
    return sb_http_req_method(CREQ(r));
}

static const char *req_path(const sb_host_req_t *r)
{
    return sb_http_req_path(CREQ(r));
}

static const char *req_param(const sb_host_req_t *r, const char *name)
{
    return sb_http_req_param(CREQ(r), name);
}

static const char *req_query(const sb_host_req_t *r, const char *name)
{
    return sb_http_req_query(CREQ(r), name);
}

static const char *req_header(const sb_host_req_t *r, const char *name)
{
    return sb_http_req_header(CREQ(r), name);
}

static const char *req_peer(const sb_host_req_t *r)
{
    return sb_http_req_peer(CREQ(r));
}

static const char *req_body(const sb_host_req_t *r, size_t *len)
{
    return sb_http_req_body(CREQ(r), len);
}

static int respond_json(sb_host_req_t *r, int status, const json_t *j)
{
    return sb_http_respond_json(REQ(r), status, j);
}

static int respond_error(sb_host_req_t *r, int status, const char *code, const char *message)
{
    return sb_http_respond_error(REQ(r), status, code, message);
}

/* ---- WebSockets ---- */

static int on_ws_upgrade(sb_ws_t *ws, void *data)
{
    adapter_t *a = data;
    if (a->host->closed)
        return 503;
    return a->ws.on_upgrade ? a->ws.on_upgrade(HWS(ws), a->ws.data) : 0;
}

static void on_ws_open(sb_ws_t *ws, void *data)
{
    adapter_t *a = data;
    if (a->host->closed) {     /* upgraded just before: the connector never sees it */
        sb_ws_set_user(ws, a); /* marks it for on_ws_close */
        sb_ws_close(ws, 1001, "shutting down");
        return;
    }
    if (a->ws.on_open)
        a->ws.on_open(HWS(ws), a->ws.data);
}

static void on_ws_text(sb_ws_t *ws, const char *msg, size_t len, void *data)
{
    adapter_t *a = data;
    a->ws.on_text(HWS(ws), msg, len, a->ws.data);
}

static void on_ws_close(sb_ws_t *ws, void *data)
{
    adapter_t *a = data;
    if (a->ws.on_close && sb_ws_user(ws) != a)
        a->ws.on_close(HWS(ws), a->ws.data);
}

static int ws_route(void *host, const sb_host_ws_route_t *route)
{
    sb_connector_host_t *h = host;
    if (!route->on_text)
        return SB_EINVAL;
    adapter_t *a = adapter_new(h);
    a->ws = *route;
    sb_ws_route_t r = {.path = route->path,
                       .subprotocol = route->subprotocol,
                       .max_frame = route->max_frame,
                       .max_queue = route->max_queue,
                       .idle_timeout_s = route->idle_timeout_s,
                       .on_upgrade = on_ws_upgrade,
                       .on_open = on_ws_open,
                       .on_text = on_ws_text,
                       .on_close = on_ws_close,
                       .data = a};
    int rc = sb_ws_route(h->http, &r);
    if (rc)
        adapter_drop(h, a);
    return rc;
}

static int ws_send(sb_host_ws_t *ws, const char *msg, size_t len)
{
    return sb_ws_send(WS(ws), msg, len);
}

static void ws_close(sb_host_ws_t *ws, int code, const char *reason)
{
    sb_ws_close(WS(ws), code, reason);
}

static const char *ws_header(const sb_host_ws_t *ws, const char *name)
{
    return sb_ws_header(CWS(ws), name);
}

static const char *ws_query(const sb_host_ws_t *ws, const char *name)
{
    return sb_ws_query(CWS(ws), name);
}

static const char *ws_peer(const sb_host_ws_t *ws)
{
    return sb_ws_peer(CWS(ws));
}

static void ws_set_user(sb_host_ws_t *ws, void *user)
{
    sb_ws_set_user(WS(ws), user);
}

static void *ws_user(const sb_host_ws_t *ws)
{
    return sb_ws_user(CWS(ws));
}

const sb_host_ops_t sb_connector_host_ops = {
    .http_route = http_route,
    .ws_route = ws_route,
    .req_method = req_method,
    .req_path = req_path,
    .req_param = req_param,
    .req_query = req_query,
    .req_header = req_header,
    .req_peer = req_peer,
    .req_body = req_body,
    .respond_json = respond_json,
    .respond_error = respond_error,
    .ws_send = ws_send,
    .ws_close = ws_close,
    .ws_header = ws_header,
    .ws_query = ws_query,
    .ws_peer = ws_peer,
    .ws_set_user = ws_set_user,
    .ws_user = ws_user,
};

sb_connector_host_t *sb_connector_host_new(sb_http_server_t *http)
{
    sb_connector_host_t *h = SB_NEW(sb_connector_host_t);
    h->http = http;
    return h;
}

void sb_connector_host_close(sb_connector_host_t *h)
{
    if (h)
        h->closed = true;
}

void sb_connector_host_free(sb_connector_host_t *h)
{
    if (!h)
        return;
    for (adapter_t *a = h->adapters, *next; a; a = next) {
        next = a->next;
        sb_free(a);
    }
    sb_free(h);
}

/* ---- The daemon's connectors (app.h) ---- */

/* env.resume_lanes: a connector whose refused credentials work again resumes its lanes. */
static void resume_lanes(void *data, const char *name)
{
    unsigned n = 0;
    int rc = sb_app_connector_resume(data, name, &n);
    SB_LOG_INFO("connector.resumed", "name=%s lanes=%u by=connector%s%s", name, n,
                rc ? " err=" : "", rc ? sb_err_name(rc) : "");
}

int sb_app_connectors_start(sb_app_t *app)
{
    app->connector_host = sb_connector_host_new(app->http);
    app->connector_env = (sb_connector_env_t){.loop = app->loop,
                                              .cfg = app->cfg,
                                              .store = app->store,
                                              .events = app->events,
                                              .host = &sb_connector_host_ops,
                                              .host_data = app->connector_host,
                                              .msgs_in = app->msgs_in,
                                              .msgs_out = app->msgs_out,
                                              .sla = app->sla,
                                              .resume_lanes = resume_lanes,
                                              .lanes_data = app};
    for (int i = 0; sb_connectors[i] && i < (int)SB_ARRAY_LEN(app->connector_state); i++) {
        int rc = sb_connectors[i]->start(&app->connector_env, &app->connector_state[i]);
        if (rc) {
            SB_LOG_ERROR("connector.start", "name=%s err=%s", sb_connectors[i]->name,
                         sb_err_name(rc));
            return rc;
        }
        if (!app->connector_state[i]) { /* nothing configured for it */
            SB_LOG_DEBUG("connector.idle", "name=%s", sb_connectors[i]->name);
            continue;
        }
        SB_LOG_INFO("connector.start", "name=%s channel=%s", sb_connectors[i]->name,
                    sb_connectors[i]->channel);
        /* replies are refused on channels no started connector serves (docs/delivery.md) */
        sb_store_serve(app->store, sb_connectors[i]->channel);
    }
    return sb_app_connector_lanes_start(app);
}

static void on_connector_stopped(void *data)
{
    sb_app_t *app = data;
    if (--app->connectors_stopping == 0 && app->connectors_stopped)
        app->connectors_stopped(app->connectors_stopped_data);
}

void sb_app_connectors_stop(sb_app_t *app, void (*cb)(void *data), void *data)
{
    app->connectors_stopped = cb;
    app->connectors_stopped_data = data;
    app->connectors_stopping = 2; /* held until every stop was called; the lanes */
    sb_connector_host_close(app->connector_host);
    /* first: attempts in flight are abandoned before their connector cancels them */
    sb_app_connector_lanes_stop(app, on_connector_stopped, app);
    for (int i = 0; sb_connectors[i] && i < (int)SB_ARRAY_LEN(app->connector_state); i++) {
        void *state = app->connector_state[i];
        app->connector_state[i] = NULL;
        if (state) {
            app->connectors_stopping++;
            sb_connectors[i]->stop(state, on_connector_stopped, app);
        }
    }
    on_connector_stopped(app);
}

void sb_app_connectors_metrics(const sb_app_t *app, sb_buf_t *out)
{
    sb_app_connector_lanes_metrics(app, out);
    for (int i = 0; sb_connectors[i] && i < (int)SB_ARRAY_LEN(app->connector_state); i++)
        if (app->connector_state[i] && sb_connectors[i]->metrics)
            sb_connectors[i]->metrics(app->connector_state[i], out);
}

/* SPDX-License-Identifier: MIT */
/*
 * The REST API's shared machinery (docs/contract.md §5): per-request calls, bearer-token
 * authentication against the hashed tokens in Redis, JSON bodies checked against the
 * limits of docs/contract.md §9, and the mapping of store errors to HTTP errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "gateway/internal.h"

struct sb_api {
    sb_app_t *app;
    api_feed_t *feed;
    void *sse;
    void *events_ws;
    api_attach_t *attach;
    api_notifs_t *notifs;
};

static void on_client_gone(sb_http_req_t *req, void *data)
{
    api_call_t *c = data;
    c->req = NULL;
    if (!c->busy)
        sb__api_call_free(c);
}

api_call_t *sb__api_call_new(sb_app_t *app, sb_http_req_t *req)
{
    api_call_t *c = SB_NEW(api_call_t);
    c->app = app;
    c->req = req;
    sb_http_req_on_close(req, on_client_gone, c);
    return c;
}

void sb__api_call_free(api_call_t *c)
{
    if (!c)
        return;
    if (c->req)
        sb_http_req_on_close(c->req, NULL, NULL);
    json_decref(c->who);
    json_decref(c->body);
    sb_free(c);
}

bool sb__api_gone(api_call_t *c)
{
    c->busy = false;
    if (c->req)
        return false;
    sb__api_call_free(c);
    return true;
}

void sb__api_reply(api_call_t *c, int status, const json_t *body)
{
    sb_http_req_t *req = c->req;
    if (req) {
        sb_http_req_on_close(req, NULL, NULL);
        c->req = NULL;
        sb_http_respond_json(req, status, body);
    }
    sb__api_call_free(c);
}

void sb__api_fail(api_call_t *c, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sb_http_req_t *req = c->req;
    if (req) {
        SB_LOG_DEBUG("api.error", "path=%s status=%d code=%s", sb_http_req_path(req), status, code);
        sb_http_req_on_close(req, NULL, NULL);
        c->req = NULL;
        if (status == 503)
            sb_http_add_header(req, "Retry-After", "1");
        sb_http_respond_error(req, status, code, msg);
    }
    sb__api_call_free(c);
}

void sb__api_fail_store(api_call_t *c, int err, const char *errmsg)
{
    const char *m = errmsg ? errmsg : sb_strerror(err);
    switch (err) {
    case SB_ENOTFOUND:
        sb__api_fail(c, 404, "not_found", "%s", m);
        break;
    case SB_ECONFLICT:
        sb__api_fail(c, 409, "conflict", "%s", m);
        break;
    case SB_EFORBIDDEN:
        sb__api_fail(c, 403, "forbidden", "%s", m);
        break;
    case SB_EINVAL:
        sb__api_fail(c, 400, "bad_request", "%s", m);
        break;
    case SB_ETOOBIG:
        sb__api_fail(c, 413, "too_large", "%s", m);
        break;
    default:
        SB_LOG_WARN("api.store", "err=%s", sb_err_name(err));
        sb__api_fail(c, 503, "unavailable", "storage unavailable: %s", sb_strerror(err));
    }
}

bool sb__api_parse_body(api_call_t *c)
{
    size_t len;
    const char *body = sb_http_req_body(c->req, &len);
    sb_json_error_t je;
    int rc = sb_json_parse(body, len, SB_MAX_HTTP_BODY, 1, &c->body, &je);
    if (rc == 0)
        return true;
    if (rc == SB_ETOOBIG) {
        sb__api_fail(c, 413, "too_large", "%s", je.text);
    } else if (je.line > 0) {
        char msg[256];
        snprintf(msg, sizeof(msg), "invalid JSON at line %d, column %d: %s", je.line, je.column,
                 je.text);
        sb_http_req_t *req = c->req;
        sb_http_req_on_close(req, NULL, NULL);
        c->req = NULL;
        json_t *e = json_pack("{s:{s:s, s:s, s:i, s:i}}", "error", "code", "bad_request", "message",
                              msg, "line", je.line, "column", je.column);
        sb_http_respond_json(req, 400, e);
        json_decref(e);
        sb__api_call_free(c);
    } else {
        sb__api_fail(c, 400, "bad_request", "%s", je.text);
    }
    return false;
}

bool sb__api_settled(api_call_t *c, int status, const char *errmsg)
{
    if (sb__api_gone(c))
        return true;
    if (status == 0)
        return false;
    sb__api_fail_store(c, status, errmsg);
    return true;
}

void sb__api_on_result(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (!sb__api_settled(c, status, errmsg))
        sb__api_reply(c, 200, result);
}

void sb__api_begin(api_call_t *c, int rc)
{
    if (rc == 0)
        return;
    c->busy = false;
    sb__api_fail_store(c, rc, NULL);
}

/* ---- Authentication ---- */

int sb__api_role_level(const char *role)
{
    if (!role)
        return 0;
    if (strcmp(role, "admin") == 0)
        return SB_ROLE_ADMIN;
    if (strcmp(role, "agent") == 0 || strcmp(role, "exec") == 0)
        return SB_ROLE_AGENT;
    if (strcmp(role, "bot") == 0)
        return SB_ROLE_BOT;
    return 0;
}

static void on_token(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_gone(c))
        return;
    if (status == SB_ENOTFOUND) {
        sb__api_fail(c, 401, "unauthorized", "unknown or revoked token");
        return;
    }
    if (status != 0) {
        sb__api_fail_store(c, status, errmsg);
        return;
    }
    const char *role = json_string_value(json_object_get(result, "role"));
    if (sb__api_role_level(role) < c->role_min) {
        sb__api_fail(c, 403, "forbidden", "role %s may not do this", role ? role : "none");
        return;
    }
    c->who = json_incref(result);
    c->next(c);
}

/*
 * `?access_token=` is for the one client that cannot set a header on this server's HTTP
 * routes: a browser's EventSource on GET /v1/events (the events WebSocket reads its own
 * in api_events_ws.c). Anywhere else a token in the URL only ends up in proxies' and
 * browsers' logs, so it is refused even next to a valid header.
 */
static bool query_token_allowed(const sb_http_req_t *req)
{
    return strcmp(sb_http_req_path(req), "/v1/events") == 0;
}

void sb__api_authenticate(api_call_t *c, int role_min, api_step_fn next)
{
    const char *h = sb_http_req_header(c->req, "authorization");
    const char *q = sb_http_req_query(c->req, "access_token");
    const char *token = NULL;
    if (q && !query_token_allowed(c->req)) {
        SB_LOG_INFO("api.token_in_url", "path=%s peer=%s action=refuse", sb_http_req_path(c->req),
                    sb_http_req_peer(c->req));
        sb_http_add_header(c->req, "WWW-Authenticate", "Bearer");
        sb__api_fail(c, 401, "unauthorized",
                     "access_token in the URL is accepted only by the live feeds (GET /v1/events "
                     "and /v1/events/ws): send the token in an Authorization: Bearer header");
        return;
    }
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        token = h + 7;
    else if (!h && q)
        token = q;
    if (!token || !*token || strlen(token) > 256) {
        sb_http_add_header(c->req, "WWW-Authenticate", "Bearer");
        sb__api_fail(c, 401, "unauthorized", "missing bearer token");
        return;
    }
    c->role_min = role_min;
    c->next = next;
    c->busy = true;
    int rc = sb_store_token_lookup(c->app->store, token, on_token, c);
    if (rc != 0) {
        c->busy = false;
        sb__api_fail_store(c, rc, NULL);
    }
}

void sb__api_actor(const api_call_t *c, sb_actor_t *out)
{
    const char *kind = json_string_value(json_object_get(c->who, "kind"));
    out->type = kind && strcmp(kind, "bot") == 0 ? "bot" : "staff";
    out->id = json_string_value(json_object_get(c->who, "id"));
    out->name = json_string_value(json_object_get(c->who, "name"));
    out->admin =
        sb__api_role_level(json_string_value(json_object_get(c->who, "role"))) >= SB_ROLE_ADMIN;
}

/* ---- The API object ---- */

sb_api_t *sb_api_new(sb_app_t *app)
{
    sb_api_t *api = SB_NEW(sb_api_t);
    api->app = app;
    sb__api_ops_routes(app);
    sb__api_conv_routes(app);
    sb__api_assign_routes(app);
    sb__api_staff_list_routes(app);
    sb__api_staff_routes(app);
    sb__api_canned_routes(app);
    sb__api_reports_routes(app);
    sb__api_assets_routes(app);
    sb__api_connectors_routes(app);
    api->attach = sb__api_attach_new(app);
    api->notifs = sb__api_notifs_new(app);
    api->feed = sb__feed_new(app);
    api->sse = sb__api_sse_new(app, api->feed);
    api->events_ws = sb__api_events_ws_new(app, api->feed);
    return api;
}

void sb_api_free(sb_api_t *api)
{
    if (!api)
        return;
    sb__api_sse_free(api->sse);
    sb__api_events_ws_free(api->events_ws);
    sb__feed_free(api->feed);
    sb__api_attach_free(api->attach);
    sb__api_notifs_free(api->notifs);
    sb_free(api);
}

void *sb__api_sse_of(sb_api_t *api)
{
    return api->sse;
}

api_attach_t *sb__api_attach_of(sb_api_t *api)
{
    return api->attach;
}

void *sb__api_events_ws_of(sb_api_t *api)
{
    return api->events_ws;
}

size_t sb_api_streams(const sb_api_t *api)
{
    return api ? sb__feed_clients(api->feed) : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Canned replies (docs/canned.md, docs/contract.md §5): GET /v1/canned lists them for
 * agents, admins and bots; PUT /v1/canned/{shortcut} {"title","text"} creates (201) or
 * replaces (200) one, for agents and admins; DELETE /v1/canned/{shortcut} removes one
 * (204), for its author or an admin. Execs count as agents, as on every staff endpoint.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "gateway/internal.h"

/* The {shortcut} of the path, or NULL after answering 400. */
static const char *shortcut_param(api_call_t *c)
{
    const char *s = sb_http_req_param(c->req, "shortcut");
    if (!sb_canned_shortcut_valid(s)) {
        sb__api_fail(c, 400, "bad_request",
                     "shortcut must be 1 to 32 characters of a-z, 0-9, _ and -");
        return NULL;
    }
    return s;
}

/* Bots have no staff role but read the list (to answer with the team's wording). */
static bool is_bot(const api_call_t *c)
{
    const char *kind = json_string_value(json_object_get(c->who, "kind"));
    return kind && strcmp(kind, "bot") == 0;
}

/* ---- GET /v1/canned ---- */

static void list_authed(api_call_t *c)
{
    c->busy = true;
    sb__api_begin(c, sb_store_canned_list(c->app->store, sb__api_on_result, c));
}

static void h_list(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, list_authed);
}

/* ---- PUT /v1/canned/{shortcut} ---- */

static void on_put(int status, json_t *res, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    bool created = json_is_true(json_object_get(res, "created"));
    sb__api_reply(c, created ? 201 : 200, json_object_get(res, "item"));
}

static void put_authed(api_call_t *c)
{
    if (is_bot(c)) {
        sb__api_fail(c, 403, "forbidden", "bots may read canned replies, not change them");
        return;
    }
    const char *shortcut = shortcut_param(c);
    if (!shortcut || !sb__api_parse_body(c))
        return;
    json_t *jt = json_object_get(c->body, "title"), *jx = json_object_get(c->body, "text");
    if ((jt && !json_is_string(jt) && !json_is_null(jt)) || !json_is_string(jx)) {
        sb__api_fail(c, 400, "bad_request", "text (a string) is required; title is a string");
        return;
    }
    const char *title = json_is_string(jt) ? json_string_value(jt) : "";
    const char *text = json_string_value(jx), *why;
    int rc = sb_canned_check(shortcut, title, text, &why);
    if (rc != 0) {
        sb__api_fail(c, rc == SB_ETOOBIG ? 413 : 400,
                     rc == SB_ETOOBIG ? "too_large" : "bad_request", "%s", why);
        return;
    }
    if ((json_is_string(jt) && strlen(title) != json_string_length(jt)) ||
        strlen(text) != json_string_length(jx)) {
        sb__api_fail(c, 400, "bad_request", "title and text must not contain NUL");
        return;
    }
    sb_actor_t who;
    sb__api_actor(c, &who);
    SB_LOG_INFO("api.canned", "put=%s by=%s", shortcut, who.id ? who.id : "-");
    c->busy = true;
    sb__api_begin(c, sb_store_canned_put(c->app->store, shortcut, title, text, who.id, on_put, c));
}

static void h_put(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, put_authed);
}

/* ---- DELETE /v1/canned/{shortcut} ---- */

static void on_delete(int status, json_t *res, const char *errmsg, void *data)
{
    (void)res;
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    sb_http_req_t *req = c->req; /* 204 has no body, so not sb__api_reply */
    sb_http_req_on_close(req, NULL, NULL);
    c->req = NULL;
    sb_http_respond(req, 204, "application/json", "", 0);
    sb__api_call_free(c);
}

static void delete_authed(api_call_t *c)
{
    if (is_bot(c)) {
        sb__api_fail(c, 403, "forbidden", "bots may read canned replies, not change them");
        return;
    }
    const char *shortcut = shortcut_param(c);
    if (!shortcut)
        return;
    sb_actor_t who;
    sb__api_actor(c, &who);
    SB_LOG_INFO("api.canned", "delete=%s by=%s", shortcut, who.id ? who.id : "-");
    c->busy = true;
    sb__api_begin(c, sb_store_canned_delete(c->app->store, shortcut, who.id ? who.id : "",
                                            who.admin, on_delete, c));
}

static void h_delete(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, delete_authed);
}

void sb__api_canned_routes(sb_app_t *app)
{
    sb_http_server_t *s = app->http;
    sb_http_route(s, "GET", "/v1/canned", h_list, app);
    sb_http_route(s, "PUT", "/v1/canned/{shortcut}", h_put, app);
    sb_http_route(s, "DELETE", "/v1/canned/{shortcut}", h_delete, app);
}

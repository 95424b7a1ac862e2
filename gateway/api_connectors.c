/* SPDX-License-Identifier: MIT */
/*
 * The connectors as staff see them (admin tokens; docs/outbox.md, "What staff see"):
 *   GET  /v1/connectors               -> {"items":[{name, channel, running, delivers,
 *                                        lanes:[{name, paused, reason, inflight, ok, retry,
 *                                        rate_limited, dead, lost, dead_letters:{stream,
 *                                        length}}]}]}
 *   POST /v1/connectors/{name}/resume -> {"name":…,"resumed":N} (the lanes an auth outcome
 *                                        paused send again; 404 for an unknown name)
 * The state comes from gateway/connector_outbox.c; each dead-letter stream's length is one
 * XLEN (null when Redis did not answer).
 */
#include <hiredis/hiredis.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/connector_outbox.h"
#include "gateway/internal.h"

typedef struct listing {
    api_call_t *c;
    json_t *items;
    unsigned pending;
} listing_t;

typedef struct xlen {
    listing_t *l;
    json_t *dead; /* the lane's "dead_letters" object (borrowed from l->items) */
} xlen_t;

static void listing_end(listing_t *l)
{
    if (!sb__api_gone(l->c)) {
        json_t *body = json_pack("{s:O}", "items", l->items);
        sb__api_reply(l->c, 200, body);
        json_decref(body);
    }
    json_decref(l->items);
    sb_free(l);
}

static void on_xlen(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    xlen_t *x = data;
    listing_t *l = x->l;
    if (status == 0 && reply && reply->type == REDIS_REPLY_INTEGER)
        json_object_set_new(x->dead, "length", json_integer(reply->integer));
    sb_free(x);
    if (--l->pending == 0)
        listing_end(l);
}

static void count_dead(listing_t *l, json_t *dead)
{
    json_object_set_new(dead, "length", json_null());
    const char *argv[] = {"XLEN", json_string_value(json_object_get(dead, "stream"))};
    xlen_t *x = SB_NEW(xlen_t);
    *x = (xlen_t){.l = l, .dead = dead};
    l->pending++;
    if (sb_redis_command_argv(l->c->app->redis, on_xlen, x, 1000, 2, argv, NULL) != 0) {
        l->pending--;
        sb_free(x);
    }
}

static void list_authed(api_call_t *c)
{
    listing_t *l = SB_NEW(listing_t);
    *l = (listing_t){.c = c, .items = sb_app_connectors_json(c->app), .pending = 1};
    c->busy = true;
    size_t i, k;
    json_t *conn, *lane;
    json_array_foreach(l->items, i, conn)
    {
        json_array_foreach(json_object_get(conn, "lanes"), k, lane)
        {
            count_dead(l, json_object_get(lane, "dead_letters"));
        }
    }
    if (--l->pending == 0)
        listing_end(l);
}

static void resume_authed(api_call_t *c)
{
    const char *name = sb_http_req_param(c->req, "name");
    unsigned n = 0;
    if (!name || sb_app_connector_resume(c->app, name, &n) != 0) {
        sb__api_fail(c, 404, "not_found", "no connector named %s", name ? name : "");
        return;
    }
    const char *who = json_string_value(json_object_get(c->who, "id"));
    SB_LOG_INFO("connector.resume", "name=%s lanes=%u by=%s", name, n, who ? who : "-");
    json_t *body = json_pack("{s:s, s:i}", "name", name, "resumed", (json_int_t)n);
    sb__api_reply(c, 200, body);
    json_decref(body);
}

static void h_list(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_ADMIN, list_authed);
}

static void h_resume(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_ADMIN, resume_authed);
}

void sb__api_connectors_routes(sb_app_t *app)
{
    sb_http_route(app->http, "GET", "/v1/connectors", h_list, app);
    sb_http_route(app->http, "POST", "/v1/connectors/{name}/resume", h_resume, app);
}

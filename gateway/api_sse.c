/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/events: the live feed as Server-Sent Events (HTML Living Standard §9.2).
 * Each event is `id: <cursor>` + `data: <event JSON>`; a client that reconnects with
 * Last-Event-ID (or ?after=) gets exactly what it missed (core/events.h). A comment
 * line every 15 s keeps proxies from closing an idle stream; a client that reads too
 * slowly to keep its buffer under the cap is disconnected and resumes from its cursor.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/internal.h"

#define HEARTBEAT_MS    15000
#define REVOKE_CHECK_MS 2000

typedef struct stream stream_t;

typedef struct sse {
    sb_app_t *app;
    uv_timer_t *heartbeat;
    uv_timer_t *revocation;
    uint64_t next_id;
    unsigned checks; /* EXISTS replies still to come: the struct outlives sb__api_sse_free */
    bool dead;
    stream_t *streams;
    size_t count;
} sse_t;

struct stream {
    sse_t *sse;
    sb_http_req_t *req;
    sb_events_sub_t *sub;
    stream_t *prev, *next;
    uint64_t id;
    char token_key[128]; /* sb:token:<sha256>: the stream ends when it is revoked */
};

static void stream_free(stream_t *s)
{
    sse_t *sse = s->sse;
    if (s->prev)
        s->prev->next = s->next;
    else
        sse->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    sse->count--;
    sb_events_unsubscribe(s->sub);
    sb_free(s);
}

static void stream_end(stream_t *s)
{
    sb_http_req_t *req = s->req;
    sb_http_req_on_close(req, NULL, NULL);
    stream_free(s);
    sb_http_stream_end(req);
}

static void on_stream_closed(sb_http_req_t *req, void *data)
{
    stream_free(data);
}

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    stream_t *s = data;
    char head[4096];
    int n = snprintf(head, sizeof(head), "id: %s\ndata: ", ev->cursor);
    if (n < 0 || (size_t)n >= sizeof(head) || sb_http_stream_write(s->req, head, (size_t)n) != 0 ||
        sb_http_stream_write(s->req, ev->json, ev->json_len) != 0 ||
        sb_http_stream_write(s->req, "\n\n", 2) != 0) {
        SB_LOG_INFO("sse.slow", "peer=%s action=disconnect", sb_http_req_peer(s->req));
        stream_end(s);
    }
}

static void on_history_failed(sb_events_sub_t *sub, int status, void *data)
{
    stream_t *s = data;
    static const char msg[] = "event: error\ndata: {\"error\":{\"code\":\"unavailable\","
                              "\"message\":\"history unavailable, retry\"}}\n\n";
    sb_http_stream_write(s->req, msg, sizeof(msg) - 1);
    stream_end(s);
}

static void events_authed(api_call_t *c)
{
    const char *cursor = sb_http_req_header(c->req, "last-event-id");
    if (!cursor || !*cursor)
        cursor = sb_http_req_query(c->req, "after");
    if (!sb_events_ready(c->app->events) && !(cursor && *cursor)) {
        sb__api_fail(c, 503, "unavailable", "event feed is starting");
        return;
    }
    stream_t *s = SB_NEW(stream_t);
    s->sse = sb__api_sse_of(c->app->api);
    s->id = ++s->sse->next_id;
    const char *h = sb_http_req_header(c->req, "authorization");
    const char *token =
        h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : sb_http_req_query(c->req, "access_token");
    if (token)
        sb_store_token_key(sb_store_opts(c->app->store)->prefix, token, s->token_key,
                           sizeof(s->token_key));
    int rc = sb_events_subscribe(c->app->events, cursor, on_event, on_history_failed, s, &s->sub);
    if (rc != 0) {
        sb_free(s);
        sb__api_fail(c, 400, "bad_request", "after / Last-Event-ID is not a valid event id");
        return;
    }
    sse_t *owner = s->sse;
    s->req = c->req;
    s->next = owner->streams;
    if (owner->streams)
        owner->streams->prev = s;
    owner->streams = s;
    owner->count++;
    sb_http_req_on_close(c->req, on_stream_closed, s);
    c->req = NULL;
    sb__api_call_free(c);
    sb_http_stream_start(s->req, 200, "text/event-stream; charset=utf-8");
    static const char hello[] = "retry: 2000\n: connected\n\n";
    sb_http_stream_write(s->req, hello, sizeof(hello) - 1);
}

static void h_events(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, events_authed);
}

static void on_heartbeat(uv_timer_t *t)
{
    sse_t *sse = t->data;
    stream_t *s = sse->streams;
    while (s) {
        stream_t *next = s->next;
        if (sb_http_stream_write(s->req, ": ping\n\n", 8) != 0)
            stream_end(s);
        s = next;
    }
}

/* ---- revocation: a revoked token's streams end within REVOKE_CHECK_MS ---- */

typedef struct check {
    sse_t *sse;
    uint64_t id;
} check_t;

static void on_token_exists(sb_redis_t *r, struct redisReply *reply, int status, void *data)
{
    check_t *ck = data;
    ck->sse->checks--;
    if (ck->sse->dead) {
        if (ck->sse->checks == 0)
            sb_free(ck->sse);
        sb_free(ck);
        return;
    }
    if (status == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        for (stream_t *s = ck->sse->streams; s; s = s->next) {
            if (s->id == ck->id) {
                static const char msg[] = "event: error\ndata: {\"error\":{\"code\":"
                                          "\"unauthorized\",\"message\":\"token revoked\"}}\n\n";
                sb_http_stream_write(s->req, msg, sizeof(msg) - 1);
                SB_LOG_INFO("sse.revoked", "peer=%s", sb_http_req_peer(s->req));
                stream_end(s);
                break;
            }
        }
    }
    sb_free(ck);
}

static void on_revocation_check(uv_timer_t *t)
{
    sse_t *sse = t->data;
    for (stream_t *s = sse->streams; s; s = s->next) {
        if (!s->token_key[0])
            continue;
        check_t *ck = SB_NEW(check_t);
        ck->sse = sse;
        ck->id = s->id;
        const char *argv[] = {"EXISTS", s->token_key};
        if (sb_redis_command_argv(sse->app->redis, on_token_exists, ck, 0, 2, argv, NULL) != 0)
            sb_free(ck);
        else
            sse->checks++;
    }
}

static void on_timer_closed(uv_handle_t *h)
{
    sb_free(h);
}

void *sb__api_sse_new(sb_app_t *app)
{
    sse_t *sse = SB_NEW(sse_t);
    sse->app = app;
    sse->heartbeat = SB_NEW(uv_timer_t);
    uv_timer_init(app->loop, sse->heartbeat);
    sse->heartbeat->data = sse;
    uv_timer_start(sse->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
    sse->revocation = SB_NEW(uv_timer_t);
    uv_timer_init(app->loop, sse->revocation);
    sse->revocation->data = sse;
    uv_timer_start(sse->revocation, on_revocation_check, REVOKE_CHECK_MS, REVOKE_CHECK_MS);
    sb_http_route(app->http, "GET", "/v1/events", h_events, app);
    return sse;
}

void sb__api_sse_free(void *p)
{
    sse_t *sse = p;
    if (!sse)
        return;
    while (sse->streams)
        stream_end(sse->streams);
    uv_close((uv_handle_t *)sse->heartbeat, on_timer_closed);
    uv_close((uv_handle_t *)sse->revocation, on_timer_closed);
    sse->dead = true;
    if (sse->checks == 0)
        sb_free(sse);
}

size_t sb__api_sse_count(const void *p)
{
    const sse_t *sse = p;
    return sse ? sse->count : 0;
}

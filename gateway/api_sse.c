/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/events: the live feed as Server-Sent Events (HTML Living Standard §9.2).
 * Each event is `id: <cursor>` + `data: <event JSON>`; a client that reconnects with
 * Last-Event-ID (or ?after=) gets exactly what it missed (core/events.h). A comment
 * line every 15 s keeps proxies from closing an idle stream; a client that reads too
 * slowly to keep its buffer under the cap is disconnected and resumes from its cursor.
 * Any token of a bot or staff member may subscribe; each sees what api_feed.c lets it
 * see, and a revoked token's stream ends with an `event: error` within seconds.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/internal.h"

#define HEARTBEAT_MS 15000

typedef struct stream stream_t;

typedef struct sse {
    sb_app_t *app;
    api_feed_t *feed;
    uv_timer_t *heartbeat;
    stream_t *streams;
} sse_t;

struct stream {
    api_feed_client_t fc; /* first: the revocation callback gets it */
    sse_t *sse;
    sb_http_req_t *req;
    sb_events_sub_t *sub;
    stream_t *prev, *next;
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
    sb__feed_leave(&s->fc);
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
    if (!sb__feed_visible(s->sse->feed, &s->fc, ev))
        return;
    /* The cursor grows with `shards` (SB_EVENTS_CURSOR_SIZE): written as it is, no copy. */
    if (sb_http_stream_write(s->req, "id: ", 4) != 0 ||
        sb_http_stream_write(s->req, ev->cursor, strlen(ev->cursor)) != 0 ||
        sb_http_stream_write(s->req, "\ndata: ", 7) != 0 ||
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

static void on_revoked(api_feed_client_t *fc)
{
    stream_t *s = (stream_t *)fc;
    static const char msg[] = "event: error\ndata: {\"error\":{\"code\":"
                              "\"unauthorized\",\"message\":\"token revoked\"}}\n\n";
    sb_http_stream_write(s->req, msg, sizeof(msg) - 1);
    SB_LOG_INFO("sse.revoked", "peer=%s", sb_http_req_peer(s->req));
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
    int rc = sb_events_subscribe(c->app->events, cursor, on_event, on_history_failed, s, &s->sub);
    if (rc != 0) {
        sb_free(s);
        sb__api_fail(c, 400, "bad_request", "after / Last-Event-ID is not a valid event id");
        return;
    }
    const char *h = sb_http_req_header(c->req, "authorization");
    const char *token =
        h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : sb_http_req_query(c->req, "access_token");
    sse_t *owner = s->sse;
    sb__feed_join(owner->feed, &s->fc, c->who, token, on_revoked);
    s->req = c->req;
    s->next = owner->streams;
    if (owner->streams)
        owner->streams->prev = s;
    owner->streams = s;
    sb_http_req_on_close(c->req, on_stream_closed, s);
    c->req = NULL;
    sb__api_call_free(c);
    sb_http_stream_start(s->req, 200, "text/event-stream; charset=utf-8");
    static const char hello[] = "retry: 2000\n: connected\n\n";
    sb_http_stream_write(s->req, hello, sizeof(hello) - 1);
}

static void h_events(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, events_authed);
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

static void on_timer_closed(uv_handle_t *h)
{
    sb_free(h);
}

void *sb__api_sse_new(sb_app_t *app, api_feed_t *feed)
{
    sse_t *sse = SB_NEW(sse_t);
    sse->app = app;
    sse->feed = feed;
    sse->heartbeat = SB_NEW(uv_timer_t);
    uv_timer_init(app->loop, sse->heartbeat);
    sse->heartbeat->data = sse;
    uv_timer_start(sse->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
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
    sb_free(sse);
}

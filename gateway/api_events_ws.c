/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/events/ws: the live feed over WebSocket (RFC 6455), subprotocol
 * `switchboard.events.v1` (docs/contract.md §5; protocol in docs/design-notes.md "Live events").
 *
 *   client {"type":"subscribe","after":CURSOR|null[,"token":"sbt_…"]}
 *   server {"type":"subscribed","cursor":"…"}, then {"type":"event","id":CURSOR,"event":{…}}
 *   client {"type":"ping"}            server {"type":"pong"}
 *   server {"type":"error","code":"…","message":"…"}
 *
 * The event JSON and the cursors are those of the SSE feed (api_sse.c): a client may
 * switch between the two and resume with the last id it saw, nothing missed, nothing
 * twice. The token comes from an `Authorization: Bearer` header on the upgrade (once
 * gateway/ws.c exposes it), `?access_token=` (browsers cannot set headers on a WebSocket)
 * or the subscribe frame; it is looked up after the upgrade, and nothing is
 * delivered before it is verified: an unknown or revoked token gets an `unauthorized`
 * error and close 1008. Visibility, revocation (close 1008 within ~2 s) and presence are
 * api_feed.c's. A reader too slow to keep its queue under the cap is closed with 1008
 * and resumes from its last id.
 *
 * Cross-site WebSocket hijacking: a browser sends cookies and lets any page open a
 * WebSocket anywhere, and a token may ride in the URL; so an upgrade carrying an
 * `Origin` (browsers always send one) is accepted only from this server's own origin:
 * the Origin's host[:port] equals the request's Host, or the Origin equals the
 * configured public_url's origin. No Origin (curl, bots, sbctl) is accepted. A refusal
 * is 403 before the upgrade, logged as events_ws.origin.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "gateway/internal.h"
#include "gateway/ws.h"

#define MAX_TOKEN 256
/* A subscribe frame: the longest cursor any deployment can have, and room for the rest. */
#define MAX_SUBSCRIBE (SB_EVENTS_CURSOR_SIZE(SB_EVENTS_MAX_SHARDS) + 1024)
#define MAX_QUEUE     ((size_t)4 << 20)

typedef struct ews ews_t;
typedef struct client client_t;

struct ews {
    sb_app_t *app;
    api_feed_t *feed;
    client_t *clients; /* open sockets */
    size_t open;
    bool dead; /* freed: the last on_close frees the struct */
};

struct client {
    api_feed_client_t fc; /* first: the revocation callback gets it */
    ews_t *ews;
    sb_ws_t *ws; /* NULL once closed */
    client_t *prev, *next;
    sb_events_sub_t *sub;
    json_t *who;         /* the token's record, once verified */
    char *token;         /* until verified */
    char *pending_after; /* a subscribe waiting for the token lookup */
    bool pending;
    bool looking_up; /* token lookup in flight: its callback frees a closed client */
};

static void send_text(client_t *c, const char *s, size_t len)
{
    if (!c->ws)
        return;
    if (sb_ws_send(c->ws, s, len) == SB_ETOOBIG) {
        SB_LOG_INFO("events_ws.slow", "peer=%s action=disconnect", sb_ws_peer(c->ws));
        sb_ws_close(c->ws, 1008, "too slow");
    }
}

static void send_json(client_t *c, json_t *j)
{
    char *s;
    size_t len;
    if (sb_json_dumps(j, JSON_COMPACT, &s, &len) == 0)
        send_text(c, s, len);
    else /* a json_pack that met text that is not UTF-8 */
        SB_LOG_WARN("events_ws.frame", "err=%s", sb_err_name(SB_EINVAL));
    sb_free(s);
    json_decref(j);
}

static void send_error(client_t *c, const char *code, const char *message)
{
    send_json(c, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", message));
}

/* No more events: unsubscribed and out of the feed (presence, revocation). */
static void detach(client_t *c)
{
    sb_events_unsubscribe(c->sub);
    c->sub = NULL;
    sb__feed_leave(&c->fc);
}

static void client_free(client_t *c)
{
    json_decref(c->who);
    sb_free(c->token);
    sb_free(c->pending_after);
    sb_free(c);
}

/* Ends the socket with an error frame (the socket's on_close frees the client). */
static void fail(client_t *c, const char *code, const char *message, int close_code)
{
    send_error(c, code, message);
    detach(c);
    if (c->ws)
        sb_ws_close(c->ws, close_code, message);
}

/* ---- events ---- */

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    client_t *c = data;
    if (!sb__feed_visible(c->ews->feed, &c->fc, ev))
        return;
    static const char head[] = "{\"type\":\"event\",\"id\":\"";
    static const char mid[] = "\",\"event\":";
    size_t clen = strlen(ev->cursor);
    size_t len = sizeof(head) - 1 + clen + sizeof(mid) - 1 + ev->json_len + 1;
    char *f = sb_malloc(len);
    char *p = f;
    memcpy(p, head, sizeof(head) - 1);
    p += sizeof(head) - 1;
    memcpy(p, ev->cursor, clen); /* digits, '-' and '.': nothing to escape */
    p += clen;
    memcpy(p, mid, sizeof(mid) - 1);
    p += sizeof(mid) - 1;
    memcpy(p, ev->json, ev->json_len);
    p += ev->json_len;
    *p = '}';
    int rc = c->ws ? sb_ws_send(c->ws, f, len) : SB_ECANCELED;
    sb_free(f);
    if (rc == SB_ETOOBIG) {
        SB_LOG_INFO("events_ws.slow", "peer=%s action=disconnect", sb_ws_peer(c->ws));
        sb_ws_close(c->ws, 1008, "too slow");
    }
    if (rc != 0)
        detach(c); /* safe inside the callback */
}

static void on_history_failed(sb_events_sub_t *sub, int status, void *data)
{
    fail(data, "unavailable", "history unavailable, subscribe again", 1011);
}

static void subscribe(client_t *c, const char *after)
{
    if (!sb_events_ready(c->ews->app->events) && !(after && *after)) {
        send_error(c, "unavailable", "event feed is starting, subscribe again in a second");
        return;
    }
    int rc =
        sb_events_subscribe(c->ews->app->events, after, on_event, on_history_failed, c, &c->sub);
    if (rc != 0) {
        c->sub = NULL;
        send_error(c, "bad_cursor", "after is not a valid event id");
        return;
    }
    if (!c->sub) /* history failed at once (on_history_failed ran) */
        return;
    size_t cap = sb_events_cursor_size(c->ews->app->events);
    char *cursor = sb_malloc(cap);
    int crc = sb_events_cursor(c->sub, cursor, cap);
    (void)crc; /* cap holds the longest cursor */
    send_json(c, json_pack("{s:s, s:s}", "type", "subscribed", "cursor", cursor));
    sb_free(cursor);
}

/* ---- the token ---- */

static void on_revoked(api_feed_client_t *fc)
{
    client_t *c = (client_t *)fc;
    SB_LOG_INFO("events_ws.revoked", "peer=%s", c->ws ? sb_ws_peer(c->ws) : "-");
    fail(c, "unauthorized", "token revoked", 1008);
}

static void on_token(int status, json_t *result, const char *errmsg, void *data)
{
    client_t *c = data;
    c->looking_up = false;
    if (!c->ws) {
        client_free(c);
        return;
    }
    if (c->ews->dead)
        return; /* shutting down: the socket is closing */
    if (status == SB_ENOTFOUND) {
        fail(c, "unauthorized", "unknown or revoked token", 1008);
        return;
    }
    if (status != 0) {
        fail(c, "unavailable", "cannot check the token now, retry", 1011);
        return;
    }
    if (sb__api_role_level(json_string_value(json_object_get(result, "role"))) < SB_ROLE_BOT) {
        fail(c, "forbidden", "this token may not read the event feed", 1008);
        return;
    }
    c->who = json_incref(result);
    sb__feed_join(c->ews->feed, &c->fc, c->who, c->token, on_revoked);
    sb_free(c->token);
    c->token = NULL;
    if (c->pending) {
        c->pending = false;
        subscribe(c, c->pending_after);
        sb_free(c->pending_after);
        c->pending_after = NULL;
    }
}

static void look_up(client_t *c, const char *token)
{
    if (!*token || strlen(token) > MAX_TOKEN) {
        fail(c, "unauthorized", "unknown or revoked token", 1008);
        return;
    }
    c->token = sb_strdup(token);
    int rc = sb_store_token_lookup(c->ews->app->store, token, on_token, c);
    if (rc != 0)
        fail(c, "unavailable", "cannot check the token now, retry", 1011);
    else
        c->looking_up = true;
}

/* ---- frames ---- */

static void on_subscribe(client_t *c, const json_t *f)
{
    if (c->sub || c->pending) {
        send_error(c, "already_subscribed", "this socket is subscribed already");
        return;
    }
    const json_t *a = json_object_get(f, "after");
    if (a && !json_is_null(a) &&
        (!json_is_string(a) ||
         json_string_length(a) >= sb_events_cursor_size(c->ews->app->events))) {
        send_error(c, "bad_cursor", "after must be an event id (string) or null");
        return;
    }
    int bad = 0;
    const char *token = sb_json_opt_str(f, "token", &bad);
    if (bad) {
        send_error(c, "bad_request", "token must be a string");
        return;
    }
    const char *after = json_string_value(a);
    if (c->who) {
        subscribe(c, after);
        return;
    }
    c->pending = true;
    c->pending_after = after ? sb_strdup(after) : NULL;
    if (!c->looking_up) {
        if (token)
            look_up(c, token);
        else
            fail(c, "unauthorized", "no token: use ?access_token= or \"token\" in subscribe", 1008);
    }
}

static void on_text(sb_ws_t *ws, const char *msg, size_t len, void *data)
{
    client_t *c = sb_ws_user(ws);
    json_t *f;
    sb_json_error_t je;
    int rc = sb_json_parse(msg, len, MAX_SUBSCRIBE, 1, &f, &je);
    if (rc) {
        char m[200];
        snprintf(m, sizeof(m), "%s (line %d, column %d)", je.text, je.line, je.column);
        send_error(c, rc == SB_ETOOBIG ? "too_large" : "bad_request", m);
        return;
    }
    const char *type = json_string_value(json_object_get(f, "type"));
    if (!type)
        send_error(c, "bad_request", "a frame needs a string field type");
    else if (strcmp(type, "ping") == 0)
        send_json(c, json_pack("{s:s}", "type", "pong"));
    else if (strcmp(type, "subscribe") == 0)
        on_subscribe(c, f);
    else
        send_error(c, "unknown_type", "frame types are subscribe and ping");
    json_decref(f);
}

/* ---- sockets ---- */

/* The "scheme://host[:port]" part of a URL: its length (up to the first '/' after it). */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return 0;
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

/* Whether an upgrade with this Origin (NULL: none) comes from our own pages. */
static bool origin_allowed(const char *origin, const char *host, const char *public_url)
{
    if (!origin)
        return true; /* not a browser */
    size_t n = origin_len(origin);
    if (n == 0 || origin[n] != '\0')
        return false; /* "null" (sandboxed pages, files) or something malformed */
    const char *ohost = strstr(origin, "://") + 3;
    if (host && *host && strcasecmp(ohost, host) == 0)
        return true;
    size_t pn = public_url ? origin_len(public_url) : 0;
    return pn > 0 && pn == n && strncasecmp(origin, public_url, n) == 0;
}

static int on_upgrade(sb_ws_t *ws, void *data)
{
    sb_app_t *app = data;
    const char *origin = sb_ws_header(ws, "origin");
    if (origin_allowed(origin, sb_ws_header(ws, "host"), app->cfg ? app->cfg->public_url : NULL))
        return 0;
    SB_LOG_INFO("events_ws.origin", "peer=%s origin=%.200s action=refuse", sb_ws_peer(ws), origin);
    return 403;
}

static void on_open(sb_ws_t *ws, void *data)
{
    sb_app_t *app = data;
    ews_t *e = app->api ? sb__api_events_ws_of(app->api) : NULL;
    if (!e || e->dead) { /* shutting down */
        sb_ws_close(ws, 1001, "shutting down");
        return;
    }
    client_t *c = SB_NEW(client_t);
    c->ews = e;
    c->ws = ws;
    sb_ws_set_user(ws, c);
    c->next = e->clients;
    if (e->clients)
        e->clients->prev = c;
    e->clients = c;
    e->open++;
    /* sb_ws_header exposes only what gateway/ws.c captures (not Authorization, yet). */
    const char *h = sb_ws_header(ws, "authorization");
    const char *token =
        h && strncasecmp(h, "Bearer ", 7) == 0 ? h + 7 : sb_ws_query(ws, "access_token");
    if (token)
        look_up(c, token);
}

static void on_close(sb_ws_t *ws, void *data)
{
    client_t *c = sb_ws_user(ws);
    if (!c)
        return;
    ews_t *e = c->ews;
    detach(c);
    c->ws = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        e->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->looking_up)
        client_free(c);
    if (--e->open == 0 && e->dead)
        sb_free(e);
}

void *sb__api_events_ws_new(sb_app_t *app, api_feed_t *feed)
{
    ews_t *e = SB_NEW(ews_t);
    e->app = app;
    e->feed = feed;
    sb_ws_route_t r = {.path = "/v1/events/ws",
                       .subprotocol = "switchboard.events.v1",
                       /* as SSE's stream buffer: a history page (500 events) must fit */
                       .max_queue = MAX_QUEUE,
                       .on_upgrade = on_upgrade,
                       .on_open = on_open,
                       .on_text = on_text,
                       .on_close = on_close,
                       .data = app};
    if (sb_ws_route(app->http, &r) != 0)
        SB_LOG_ERROR("events_ws.route", "err=%s", sb_err_name(SB_EINVAL));
    return e;
}

void sb__api_events_ws_free(void *p)
{
    ews_t *e = p;
    if (!e)
        return;
    e->dead = true;
    for (client_t *c = e->clients; c; c = c->next) {
        detach(c);
        sb_ws_close(c->ws, 1001, "shutting down");
    }
    if (e->open == 0)
        sb_free(e);
}

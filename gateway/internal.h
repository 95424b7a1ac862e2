/* SPDX-License-Identifier: MIT */
/*
 * Shared within gateway/: the per-request state of API handlers and the helpers that
 * authenticate, answer errors and route store results.
 *
 * An api_call lives from a handler's start until its response is sent, or until the
 * client is gone AND no store operation of it is in flight (the store callback then
 * frees it). Handlers chain steps: authenticate -> operation -> respond.
 */
#ifndef SB_GATEWAY_INTERNAL_H
#define SB_GATEWAY_INTERNAL_H

#include <stdbool.h>

#include <jansson.h>

#include "core/events.h"
#include "core/store.h"
#include "core/util.h"
#include "gateway/app.h"
#include "gateway/http.h"

typedef struct api_call api_call_t;
typedef void (*api_step_fn)(api_call_t *c);

struct api_call {
    sb_app_t *app;
    sb_http_req_t *req; /* NULL once the client is gone */
    bool busy;          /* a store operation is in flight */
    json_t *who;        /* the token's record (kind, id, role, name) */
    json_t *body;       /* parsed request body, if any */
    api_step_fn next;   /* what runs after authentication */
    int role_min;       /* required role (SB_ROLE_*) */
    char conv[64];
    char channel[16]; /* c->conv's channel, once looked up (channel scopes, typing) */
};

enum { SB_ROLE_BOT = 1, SB_ROLE_AGENT = 2, SB_ROLE_ADMIN = 3 };

/** SB_ROLE_* of a role name ("admin"…), 0 for none or unknown. */
int sb__api_role_level(const char *role);
/** Starts a call for req (hooks the client's close). */
api_call_t *sb__api_call_new(sb_app_t *app, sb_http_req_t *req);
/** Finishes a call: frees it (the response must have been sent, or the client gone). */
void sb__api_call_free(api_call_t *c);
/** Checks the bearer token; then runs next(c) or answers 401/403/503 and frees c. */
void sb__api_authenticate(api_call_t *c, int role_min, api_step_fn next);
/** Sends a JSON error and frees c. */
void sb__api_fail(api_call_t *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Maps an SB_E* from the store to an HTTP error, sends it and frees c. */
void sb__api_fail_store(api_call_t *c, int err, const char *errmsg);
/** Sends a JSON body (borrowed) and frees c. */
void sb__api_reply(api_call_t *c, int status, const json_t *body);
/**
 * Parses the request body as a JSON object into c->body; on failure answers 400/413
 * (with line and column) and frees c. Returns true when parsed.
 */
bool sb__api_parse_body(api_call_t *c);
/** Called first in a store callback: true if the client is gone (c then freed). */
bool sb__api_gone(api_call_t *c);
/**
 * Called first in a store callback: true when the call is settled (the client is gone,
 * or status was an error and it was answered); false to go on with the result.
 */
bool sb__api_settled(api_call_t *c, int status, const char *errmsg);
/** A store callback that answers 200 with the result, or the store error. */
void sb__api_on_result(int status, json_t *result, const char *errmsg, void *data);
/**
 * Ends the start of a store operation made with c as its callback data, c->busy having
 * been set before the call: rc 0 leaves it to the callback; an error is answered at
 * once and c freed.
 */
void sb__api_begin(api_call_t *c, int rc);
/** The actor of the authenticated token. */
void sb__api_actor(const api_call_t *c, sb_actor_t *out);

/** Route registration of the parts of the API. */
void sb__api_ops_routes(sb_app_t *app);
void sb__api_conv_routes(sb_app_t *app);
void sb__api_assign_routes(sb_app_t *app);     /* api_assign.c */
void sb__api_staff_list_routes(sb_app_t *app); /* api_staff_list.c: GET /v1/staff */
void sb__api_staff_routes(sb_app_t *app);
/** GET /v1/canned, PUT and DELETE /v1/canned/{shortcut} (api_canned.c). */
void sb__api_canned_routes(sb_app_t *app);
void sb__api_reports_routes(sb_app_t *app);
void sb__api_assets_routes(sb_app_t *app);
/** GET /v1/connectors and POST /v1/connectors/{name}/resume (api_connectors.c). */
void sb__api_connectors_routes(sb_app_t *app);

/* ---- Console notifications (notifications.c; docs/sla.md, "Notifications") ---- */

typedef struct api_notifs api_notifs_t;
/**
 * Registers GET /v1/notifications and POST /v1/notifications/read and starts adding each
 * SLA step of the events feed to its targets' lists.
 */
api_notifs_t *sb__api_notifs_new(sb_app_t *app);
/** Stops following the feed; frees once its store operations are back. Accepts NULL. */
void sb__api_notifs_free(api_notifs_t *ns);

/* ---- Attachments (api_attach.c, docs/attachments.md) ---- */

typedef struct api_attach api_attach_t;
/** Loads the attachment key and registers GET /v1/attachments/{sha}. */
api_attach_t *sb__api_attach_new(sb_app_t *app);
/** Frees it (accepts NULL); the route answers 503 from then on. */
void sb__api_attach_free(api_attach_t *a);
/** The API's attachment state (NULL-safe through app->api being NULL). */
api_attach_t *sb__api_attach_of(sb_api_t *api);
/**
 * Adds a signed `url`, valid for attachment_url_ttl, to every stored attachment
 * (`"stored":true` with a valid `sha256`) of each message in the array `messages`
 * (borrowed, changed in place). Call only for a token that may see those messages'
 * conversation. Does nothing when the attachment key could not be loaded.
 */
void sb__api_attach_urls(sb_app_t *app, json_t *messages);

/* ---- Channel scopes of tokens ---- */

/** Every channel: a token without a `channels` scope. */
#define SB_SCOPE_ALL (~0u)
/**
 * The channels a token record (`who`) may see: SB_SCOPE_ALL, or a mask of SB_CHANNELS
 * indexes from its comma-separated `channels` field (unknown names count as none).
 */
unsigned sb__api_scope(const json_t *who);
/** True when scope includes channel (a NULL or unknown channel only for SB_SCOPE_ALL). */
bool sb__api_scope_allows(unsigned scope, const char *channel);

/* ---- The live feeds' shared parts (api_feed.c) ---- */

typedef struct api_feed api_feed_t;
typedef struct api_feed_client api_feed_client_t;
/** The client's token was revoked: end the feed (and call sb__feed_leave). */
typedef void (*api_feed_revoked_fn)(api_feed_client_t *fc);

/** A subscriber of a live feed, embedded in the SSE stream or WebSocket that owns it. */
struct api_feed_client {
    api_feed_t *feed; /* NULL when not joined */
    api_feed_client_t *prev, *next;
    uint64_t id;
    bool bot;       /* no notes, no staff or bot typing, no presence */
    unsigned scope; /* sb__api_scope of the token */
    char staff[SB_ID_MAX];
    char token_key[SB_KEY_MAX];
    api_feed_revoked_fn on_revoked;
};

/** The feeds' shared state; registers GET /v1/presence. */
api_feed_t *sb__feed_new(sb_app_t *app);
/** Frees it (once its Redis replies are in); clients must have left. Accepts NULL. */
void sb__feed_free(api_feed_t *f);
/**
 * Joins fc (caller's storage, until sb__feed_leave) for the token record `who` (borrowed)
 * and the bearer token (borrowed; NULL: no revocation checks): visibility, revocation
 * checks (on_revoked runs at most once, on the loop) and, for staff, presence.
 */
void sb__feed_join(api_feed_t *f, api_feed_client_t *fc, const json_t *who, const char *token,
                   api_feed_revoked_fn on_revoked);
/** Leaves the feed (presence goes offline with the last feed). Accepts a client not joined. */
void sb__feed_leave(api_feed_client_t *fc);
/** May fc see ev? f may be NULL (then nothing is cached: a bot's webhook, webhooks.c). */
bool sb__feed_visible(api_feed_t *f, const api_feed_client_t *fc, const sb_event_t *ev);
/** Joined clients. */
size_t sb__feed_clients(const api_feed_t *f);

/** GET /v1/events (api_sse.c) and GET /v1/events/ws (api_events_ws.c). */
void *sb__api_sse_new(sb_app_t *app, api_feed_t *feed);
void sb__api_sse_free(void *sse);
void *sb__api_events_ws_new(sb_app_t *app, api_feed_t *feed);
void sb__api_events_ws_free(void *ews);
/** The SSE and event WebSocket states of the API. */
void *sb__api_sse_of(sb_api_t *api);
void *sb__api_events_ws_of(sb_api_t *api);

#endif

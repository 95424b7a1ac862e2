/* SPDX-License-Identifier: MIT */
/*
 * WebSocket endpoints (RFC 6455) on the HTTP server's port, without lws types: a route
 * names a path, a required subprotocol and callbacks. Outgoing frames are queued and
 * written when the socket is writable; a queue over max_queue fails with SB_ETOOBIG
 * (a reader that slow is closed by the caller). The server pings every 30 s and
 * closes a peer that does not answer, and closes sockets idle for idle_timeout_s.
 *
 * Lifetime: an sb_ws_t is valid from on_open until on_close returns (on_close runs
 * exactly once for every socket that got on_open, also at server stop).
 */
#ifndef SB_GATEWAY_WS_H
#define SB_GATEWAY_WS_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/http.h"

typedef struct sb_ws sb_ws_t;

typedef struct sb_ws_route {
    const char *path;        /* e.g. "/v1/visitor/ws" */
    const char *subprotocol; /* e.g. "switchboard.visitor.v1" */
    size_t max_frame;        /* a bigger message closes with 1009 (default 64 KiB) */
    size_t max_queue;        /* outgoing bytes queued before sends fail (default 1 MiB) */
    unsigned idle_timeout_s; /* no frame from the peer for this long: close (default 300) */
    /**
     * Before the upgrade: return 0 to accept, or an HTTP status (403…) to refuse.
     * Headers and query are readable through sb_ws_header / sb_ws_query.
     */
    int (*on_upgrade)(sb_ws_t *ws, void *data);
    void (*on_open)(sb_ws_t *ws, void *data);
    /** A complete text message (valid only during the call). Binary messages are refused. */
    void (*on_text)(sb_ws_t *ws, const char *msg, size_t len, void *data);
    void (*on_close)(sb_ws_t *ws, void *data);
    void *data;
} sb_ws_route_t;

/** Registers a WebSocket route (the struct is copied; strings must outlive the server). */
int sb_ws_route(sb_http_server_t *s, const sb_ws_route_t *route);

/** Queues a text frame (copied). 0, SB_ETOOBIG (queue full) or SB_ECANCELED (closing). */
int sb_ws_send(sb_ws_t *ws, const char *msg, size_t len);

/**
 * Closes with a status code (1000 normal, 1008 policy, 1009 too big, 1011 error) once the
 * queued frames are out; a peer that has not taken them and the close frame within 5 s
 * (one that stopped reading) is hung up on, and the memory freed. While all queues of the
 * server together exceed its max_outbound, the largest are dropped and closed with 1008.
 */
void sb_ws_close(sb_ws_t *ws, int code, const char *reason);

/** A request header of the upgrade by lowercase name ("origin", "host", "authorization"), or NULL.
 */
const char *sb_ws_header(const sb_ws_t *ws, const char *name);
/**
 * A query parameter of the upgrade URL, %xx-decoded (by lws, which refuses %00), or
 * NULL. The first of repeated names wins. The string belongs to
 * the socket and stays valid until on_close returns.
 */
const char *sb_ws_query(const sb_ws_t *ws, const char *name);
/** The peer's IP address. */
const char *sb_ws_peer(const sb_ws_t *ws);

/** Per-socket user data. */
void sb_ws_set_user(sb_ws_t *ws, void *user);
void *sb_ws_user(const sb_ws_t *ws);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Between http.c and ws.c only: the WebSocket protocols live in the HTTP server's lws
 * vhost, and ws.c keeps its routes in a slot of the server. Includes lws types, so only
 * these two files include it.
 */
#ifndef SB_GATEWAY_HTTP_INTERNAL_H
#define SB_GATEWAY_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "gateway/http.h"

#define SB_WS_MAX_ROUTES 4

/**
 * A connection's outbound bytes (its queue, plus what it handed to lws while lws still
 * holds some of it), counted against the server's total cap (max_outbound). Embedded in
 * an SSE request or a WebSocket; listed in the server while bytes > 0.
 */
typedef struct sb_http_outq {
    struct sb_http_outq *prev, *next;
    size_t bytes;
    bool listed;
    /** Over the cap, the largest is shed first: drop its queue and close it now. */
    void (*shed)(struct sb_http_outq *q);
} sb_http_outq_t;

/** Sets q's byte count (0 unlists it); over the cap, shedding runs before the next poll. */
void sb__http_out_set(sb_http_server_t *s, sb_http_outq_t *q, size_t bytes);

/** Counts a connection closed because its reader was too slow (for /metrics). */
void sb__http_count_slow(sb_http_server_t *s);

/** ws.c's lws protocols, appended to the vhost's table after HTTP. */
const struct lws_protocols *sb__ws_protocols(size_t *n);

/** Checks a WebSocket upgrade (HTTP_CONFIRM_UPGRADE): 0 accept, 1 answered, -1 hang up. */
int sb__ws_confirm_upgrade(sb_http_server_t *s, struct lws *wsi, const char *what);

/** The server's slot for ws.c's state. */
void **sb__http_ws_slot(sb_http_server_t *s);

/** Asks for sb__ws_flush (and stream flushes) before the loop next polls. */
void sb__http_want_flush(sb_http_server_t *s);

/** Writes every WebSocket's queued frames (called by http.c before the loop polls). */
void sb__ws_flush(sb_http_server_t *s);

/** The loop's cached time in ms (uv_now). */
uint64_t sb__http_now_ms(const sb_http_server_t *s);

/* ---- http_guard.c: the header phase (slowloris, malformed heads) ---- */
typedef struct sb__http_guard sb__http_guard_t;

/* The biggest request head (request line and header fields) taken, in bytes, and the most
 * header fields; lws's header tables get room for this much and their own overhead. */
#define SB__HTTP_MAX_HEAD     8192
#define SB__HTTP_MAX_HEAD_S   "8192"
#define SB__HTTP_MAX_FIELDS   100
#define SB__HTTP_MAX_FIELDS_S "100"

/**
 * A guard allowing per_ip connections per address in the header phase (0: no cap) once
 * at least busy connections are in it. header_timeout_s: the header deadline (the vhost's
 * timeout_secs_ah_idle), which the guard applies to a keep-alive connection's later heads.
 */
sb__http_guard_t *sb__http_guard_new(sb_http_server_t *s, uv_loop_t *loop, unsigned per_ip,
                                     unsigned busy, unsigned header_timeout_s);
/** Frees the guard (NULL is fine). Connections still counted must be gone. */
void sb__http_guard_free(sb__http_guard_t *g);
/**
 * A connection was accepted (SERVER_NEW_CLIENT_INSTANTIATED): counts it under its
 * address, 0; or, over the cap, answers 429 on a cleartext socket and returns -1 (the
 * caller returns it to lws, which closes the connection).
 */
int sb__http_guard_accept(sb__http_guard_t *g, struct lws *wsi);
/** The connection is gone, upgraded or a stream: stops counting and gating it (idempotent). */
void sb__http_guard_release(sb__http_guard_t *g, struct lws *wsi);
/**
 * A request's headers are complete (LWS_CALLBACK_HTTP): stops counting the connection and
 * notes where its next request begins, when that can be told (idempotent).
 */
void sb__http_guard_head_done(sb__http_guard_t *g, struct lws *wsi);
/**
 * A response is complete and the connection kept alive (lws_http_transaction_completed
 * returned 0): puts the gate in place for the next request's head if lws holds none of it
 * (nothing pipelined read, no body left to drop, no response bytes buffered); otherwise
 * lws parses the connection's later requests alone. The connection counts against the
 * per-address cap from the next head's first byte, not while idle.
 */
void sb__http_guard_rearm(sb__http_guard_t *g, struct lws *wsi);
/** The lws protocol of lws's fallback to a raw socket (a request line it cannot parse). */
#define SB__HTTP_FALLBACK_PROTOCOL "sb-http-fallback"
/**
 * That protocol's callbacks (RAW_ADOPT, RAW_WRITEABLE; user: a bool of user space):
 * answers 400 JSON once, shuts the write side, drops what follows. tls_port: the server
 * has TLS (then plain text on it is answered "this port speaks HTTPS"). lws's verdict.
 */
int sb__http_guard_raw(sb__http_guard_t *g, struct lws *wsi, int reason, void *user, bool tls_port);
/** The server's guard. */
sb__http_guard_t *sb__http_guard_of(sb_http_server_t *s);

typedef struct sb__http_peek sb__http_peek_t;
/** The verdict on a WebSocket's first frame: masked (or the peer left: true too). */
typedef void (*sb__http_peek_cb)(void *data, bool masked);
/**
 * Keeps lws from reading an established cleartext WebSocket until its first frame header
 * is in, then runs cb(data, masked) once and lets lws read. NULL (and no callback) on TLS
 * or when the look cannot be set up. Cancel with sb__http_peek_cancel before the socket
 * goes, or to give up (the callback then never runs).
 */
sb__http_peek_t *sb__http_ws_first_frame(sb_http_server_t *s, struct lws *wsi, sb__http_peek_cb cb,
                                         void *data);
/** Stops the look (NULL is fine); release_rx: lws reads again (giving up, not closing). */
void sb__http_peek_cancel(sb__http_peek_t *p, bool release_rx);
/** Puts the gates of newly accepted connections in place (before the loop polls). */
void sb__http_guard_flush(sb__http_guard_t *g);

/** Frees ws.c's state of a server (called by http.c when the server is freed). */
void sb__ws_server_free(sb_http_server_t *s);

#endif

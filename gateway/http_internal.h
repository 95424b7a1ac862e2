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

/** Frees ws.c's state of a server (called by http.c when the server is freed). */
void sb__ws_server_free(sb_http_server_t *s);

#endif

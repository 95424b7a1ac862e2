/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server: libwebsockets on our libuv loop (foreign loop), with a small route
 * table and an async request/response API so handlers can answer after a Redis round
 * trip, plus long-lived streaming responses for Server-Sent Events.
 *
 * Limits (docs/contract.md §9): request bodies over opts.max_body get 413 `too_large` without
 * the handler running; unknown paths 404 `not_found`; a known path with another
 * method 405. All error bodies are {"error":{"code":…,"message":…}}.
 *
 * Lifetime: a request is valid from its handler's call until the handler (now or
 * later) calls sb_http_respond*() / sb_http_stream_end(), or until the client goes
 * away first, which runs the on_close hook set by sb_http_req_on_close() exactly once;
 * after either, the request pointer must not be used. A hook must therefore cancel or mark
 * the handler's pending work. Without a hook, a request whose client went away stays
 * allocated until the handler's sb_http_respond*() / sb_http_stream_end(), which then free
 * it and return SB_ECANCELED (stream writes return SB_ECANCELED meanwhile). A hang-up is
 * noticed within about half a second, or at the next write. HTTP/1.1 only (no h2).
 */
#ifndef SB_GATEWAY_HTTP_H
#define SB_GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

typedef struct sb_http_server sb_http_server_t;
typedef struct sb_http_req sb_http_req_t;

/** A route handler. data is the pointer given to sb_http_route. */
typedef void (*sb_http_handler_cb)(sb_http_req_t *req, void *data);

/** Runs when the client disconnects before the response was finished. */
typedef void (*sb_http_close_cb)(sb_http_req_t *req, void *data);

typedef struct sb_http_opts {
    uv_loop_t *loop;
    const char *listen;   /* "host:port" (host may be "*", "0.0.0.0", "[::1]"); port 0 = any */
    const char *tls_cert; /* PEM paths, both or neither */
    const char *tls_key;
    size_t max_body;          /* default 1 MiB */
    size_t max_stream_buffer; /* bytes queued on a stream before writes fail (default 4 MiB) */
    size_t max_outbound;      /* all streams' and WebSockets' queues together (default 256 MiB) */
    /** Seconds a connection has to send its request headers, then it is closed (default 5). */
    unsigned header_timeout_s;
    /**
     * Connections one address (IPv6: one /64) may have still sending their first request's
     * headers once half the header-table pool is in use (default 32); more are answered
     * 429 `rate_limited` and closed.
     */
    unsigned max_header_conns_per_ip;
} sb_http_opts_t;

typedef struct sb_http_stats {
    uint64_t open_connections;
    uint64_t requests;
    uint64_t open_streams;
    uint64_t outbound_bytes; /* queued for slow readers now: streams and WebSockets */
    uint64_t outbound_limit; /* max_outbound */
    uint64_t slow_closed;    /* connections closed because their reader fell too far behind */
    uint64_t shed;           /* of those, closed because the total went over max_outbound */
} sb_http_stats_t;

/** Creates the server and starts listening. 0, or SB_EIO when it can't listen. */
int sb_http_server_new(const sb_http_opts_t *opts, sb_http_server_t **out);

/** The port actually bound (useful with port 0). */
int sb_http_server_port(const sb_http_server_t *s);

/**
 * Adds a route. method "GET"/"POST"/…; pattern is a path whose segments may be
 * `{name}` placeholders matching one non-empty segment ("/v1/conversations/{id}"),
 * or end in `*` to match any rest (e.g. "/assets/" followed by `*`). Exact routes win over
 * patterns. Returns 0 or SB_EINVAL.
 */
int sb_http_route(sb_http_server_t *s, const char *method, const char *pattern,
                  sb_http_handler_cb cb, void *data);

/** Counters for /metrics. */
void sb_http_server_stats(const sb_http_server_t *s, sb_http_stats_t *out);

/**
 * Stops listening, closes every connection (on_close hooks run), destroys the lws
 * context, then runs cb(data) on the loop. Must be called on the loop thread.
 */
void sb_http_server_stop(sb_http_server_t *s, void (*cb)(void *data), void *data);

/* ---- request accessors (strings owned by the request) ---- */
const char *sb_http_req_method(const sb_http_req_t *req);
const char *sb_http_req_path(const sb_http_req_t *req);
/** A `{name}` placeholder's value (URL-decoded), or NULL. */
const char *sb_http_req_param(const sb_http_req_t *req, const char *name);
/** A query parameter's value (URL-decoded), or NULL. */
const char *sb_http_req_query(const sb_http_req_t *req, const char *name);
/** A request header by lowercase name ("authorization", "last-event-id", "origin"), or NULL. */
const char *sb_http_req_header(const sb_http_req_t *req, const char *name);
/** The request body (NUL-terminated; len without the NUL). Empty for no body. */
const char *sb_http_req_body(const sb_http_req_t *req, size_t *len);
/** The peer's IP address as text. */
const char *sb_http_req_peer(const sb_http_req_t *req);
/** The server the request came to. */
sb_http_server_t *sb_http_req_server(const sb_http_req_t *req);

/** Sets the hook that runs if the client goes away before the response is finished. */
void sb_http_req_on_close(sb_http_req_t *req, sb_http_close_cb cb, void *data);

/** Adds a response header (before respond / stream_start). Copied. */
void sb_http_add_header(sb_http_req_t *req, const char *name, const char *value);

/** Sends a whole response (copied) and finishes the request. Returns 0 or SB_E*. */
int sb_http_respond(sb_http_req_t *req, int status, const char *content_type, const void *body,
                    size_t len);
/** Sends a JSON response (j borrowed, serialised compactly). */
int sb_http_respond_json(sb_http_req_t *req, int status, const json_t *j);
/** Sends {"error":{"code":code,"message":message}} with that status. */
int sb_http_respond_error(sb_http_req_t *req, int status, const char *code, const char *message);

/* ---- streaming responses (SSE) ---- */
/** Sends status + headers (no Content-Length) and keeps the connection open. */
int sb_http_stream_start(sb_http_req_t *req, int status, const char *content_type);
/**
 * Queues bytes on a started stream (copied). Returns 0, or SB_ETOOBIG when the client
 * is too slow and more than max_stream_buffer is queued (the caller should end it),
 * SB_ECANCELED when the client is gone (hookless request), SB_EINVAL if not streaming.
 */
int sb_http_stream_write(sb_http_req_t *req, const void *data, size_t len);
/**
 * Finishes the request: flushes what is queued, then closes the connection. A client that
 * has not taken it all within 5 s (one that stopped reading) is hung up on and the memory
 * freed. The server also ends streams itself, largest queue first, while all queues
 * together exceed max_outbound: their queue is dropped at once and the request's
 * on_close hook runs, as if the client had gone.
 */
void sb_http_stream_end(sb_http_req_t *req);

#endif

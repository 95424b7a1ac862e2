/* SPDX-License-Identifier: MIT */
/*
 * The connector interface (v2). A connector brings one channel (core/channel.h) into the
 * store and delivers answers back out. Each lives in connectors/<channel>/ and exports
 * exactly one descriptor `const sb_connector_desc_t sb_connector_<name>`, listed in
 * connectors/registry.c; docs/connectors.md says how to write one.
 *
 * A connector sees core/ (store, events, config, buffers) and this header only: never a
 * gateway/ header, hiredis or libwebsockets. The daemon hands it a host (sb_host_ops_t,
 * implemented in gateway/connector_host.c) through which it registers HTTP and WebSocket
 * routes and answers requests; the request and socket types below are opaque views.
 */
#ifndef SB_CONNECTOR_H
#define SB_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/events.h"
#include "core/outcome.h"
#include "core/store.h"

/* ---- The host: routes, requests and WebSockets without gateway types ---- */

/** An HTTP request (opaque). Valid from the handler's call until it is answered. */
typedef struct sb_host_req sb_host_req_t;
/** A WebSocket (opaque). Valid from on_open until on_close returns. */
typedef struct sb_host_ws sb_host_ws_t;

/** An HTTP route's handler; data is the route's. It must answer (now or later). */
typedef void (*sb_host_http_cb)(sb_host_req_t *req, void *data);

typedef struct sb_host_ws_route {
    const char *path;        /* e.g. "/v1/visitor/ws" (must outlive the host) */
    const char *subprotocol; /* required of the client, e.g. "switchboard.visitor.v1" */
    size_t max_frame;        /* a bigger message closes with 1009 (0: 64 KiB) */
    size_t max_queue;        /* outgoing bytes queued before sends fail (0: 1 MiB) */
    unsigned idle_timeout_s; /* no frame from the peer for this long: close (0: 300) */
    /** Before the upgrade: 0 accepts, an HTTP status (403, 404…) refuses. */
    int (*on_upgrade)(sb_host_ws_t *ws, void *data);
    void (*on_open)(sb_host_ws_t *ws, void *data);
    /** A complete text message, valid only during the call. */
    void (*on_text)(sb_host_ws_t *ws, const char *msg, size_t len, void *data);
    /** Runs exactly once for every socket that got on_open (also when the server stops). */
    void (*on_close)(sb_host_ws_t *ws, void *data);
    void *data;
} sb_host_ws_route_t;

/**
 * What the daemon offers a connector. Route registration takes the env's host_data;
 * everything else takes the request or socket. Strings returned are owned by the request
 * or socket and live as long as it does.
 */
typedef struct sb_host_ops {
    /**
     * Adds an HTTP route: method "GET"/"POST"/…; pattern a path whose segments may be
     * `{name}` placeholders. 0 or SB_EINVAL. A route stays until the server stops.
     */
    int (*http_route)(void *host, const char *method, const char *pattern, sb_host_http_cb cb,
                      void *data);
    /** Adds a WebSocket route (copied). 0 or SB_EINVAL. */
    int (*ws_route)(void *host, const sb_host_ws_route_t *route);

    /* The request view. Header names are lowercase; absent values are NULL. */
    const char *(*req_method)(const sb_host_req_t *req);
    const char *(*req_path)(const sb_host_req_t *req);
    const char *(*req_param)(const sb_host_req_t *req, const char *name); /* `{name}` */
    const char *(*req_query)(const sb_host_req_t *req, const char *name);
    const char *(*req_header)(const sb_host_req_t *req, const char *name);
    const char *(*req_peer)(const sb_host_req_t *req);
    /** The body, NUL-terminated (len without the NUL); "" for none. */
    const char *(*req_body)(const sb_host_req_t *req, size_t *len);
    /** Answers with status and j (borrowed) and finishes the request. 0 or SB_E*. */
    int (*respond_json)(sb_host_req_t *req, int status, const json_t *j);
    /** Answers {"error":{"code":…,"message":…}} and finishes the request. */
    int (*respond_error)(sb_host_req_t *req, int status, const char *code, const char *message);

    /* WebSockets. */
    /** Queues a text frame (copied). 0, SB_ETOOBIG (queue full) or SB_ECANCELED (closing). */
    int (*ws_send)(sb_host_ws_t *ws, const char *msg, size_t len);
    /** Closes with a status code (1000, 1001, 1008, 1011…) once queued frames are out. */
    void (*ws_close)(sb_host_ws_t *ws, int code, const char *reason);
    const char *(*ws_header)(const sb_host_ws_t *ws, const char *name);
    const char *(*ws_query)(const sb_host_ws_t *ws, const char *name);
    const char *(*ws_peer)(const sb_host_ws_t *ws);
    void (*ws_set_user)(sb_host_ws_t *ws, void *user);
    void *(*ws_user)(const sb_host_ws_t *ws);
} sb_host_ops_t;

/* ---- Connectors ---- */

typedef struct sb_connector_env {
    uv_loop_t *loop;
    const sb_config_t *cfg; /* the descriptor's config rows: sb_config_uint/_list (config.h) */
    sb_store_t *store;
    sb_events_t *events;
    const sb_host_ops_t *host; /* routes, requests, sockets */
    void *host_data;           /* the first argument of host->http_route / ws_route */
    uint64_t *msgs_in;         /* per-channel counters for /metrics (SB_CHANNELS order) */
    uint64_t *msgs_out;
    /** The SLA policies and calendars (core/sla.h), NULL when not loaded; outlives it. */
    const struct sb_sla_conf *sla;
    /**
     * Resumes the connector's outbox lanes that an auth outcome paused, as an admin's
     * POST /v1/connectors/{name}/resume does: a connector calls it when credentials it had
     * reported refused work again (a fixed token file), so answers flow without an admin.
     * name is the descriptor's name; lanes_data its first argument. NULL when the host runs
     * no lanes (then nothing is paused either).
     */
    void (*resume_lanes)(void *lanes_data, const char *name);
    void *lanes_data;
} sb_connector_env_t;

/** One outbox entry to deliver (core/outbox.h defines it). */
typedef struct sb_outbox_entry sb_outbox_entry_t;
/** How a delivery attempt ended; outcome and its strings live for the call only. */
typedef void (*sb_deliver_cb)(const sb_outcome_t *outcome, void *data);
/** Runs once a stopping connector has freed its state. */
typedef void (*sb_connector_stopped_cb)(void *data);

typedef struct sb_connector_desc {
    const char *name;    /* the connector's name, e.g. "webchat" */
    const char *channel; /* the channel it serves (core/channel.h), e.g. "webchat" */
    /**
     * Its configuration keys (core/config.h), ended by a row whose name is NULL; NULL for
     * none. The daemon's config loader accepts, checks and documents them like its own.
     */
    const sb_config_key_t *config;
    /**
     * Starts the connector (env is borrowed and outlives it). Returns 0 and *state, or an
     * SB_E* code having freed everything and registered no route (the daemon then
     * refuses to start, logging why). 0 with *state NULL: nothing is configured for it;
     * it does not run, serves no channel and gets no outbox lane.
     */
    int (*start)(const sb_connector_env_t *env, void **state);
    /**
     * Stops: closes its sockets, ends its subscriptions, and frees its state once its
     * in-flight store calls have come back; then runs done(data) exactly once (possibly
     * before stop returns). Called on the loop, before the HTTP server stops; from then on
     * no new request or socket reaches the connector (its open sockets still get on_text
     * and on_close).
     */
    void (*stop)(void *state, sb_connector_stopped_cb done, void *data);
    /**
     * Optional (NULL when the connector does not use the outbox): sends one outbox entry;
     * done(outcome, data) runs exactly once, on the loop, unless this returns an SB_E*
     * code (then it never runs).
     */
    int (*deliver)(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data);
    /** Optional: appends `name value` lines of its gauges (Prometheus text) to out. */
    void (*metrics)(void *state, sb_buf_t *out);
} sb_connector_desc_t;

/** The connectors built in, NULL-terminated (connectors/registry.c). */
extern const sb_connector_desc_t *const sb_connectors[];

/**
 * The config tables of the built-in connectors, NULL-terminated, for sb_config_load_with
 * and sb_config_print_keys (static storage; call on the main thread).
 */
const sb_config_key_t *const *sb_connectors_config(void);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The connector interface. A connector brings one channel (webchat, email, mastodon,
 * bluesky) into the store and delivers answers back out. Each lives in
 * connectors/<channel>/ and exports exactly one descriptor
 * `const sb_connector_desc_t sb_connector_<name>`, listed in connectors/registry.c.
 * Connectors see the store, the events dispatcher and the (lws-free) HTTP/WebSocket
 * route API — never hiredis or libwebsockets types.
 */
#ifndef SB_CONNECTOR_H
#define SB_CONNECTOR_H

#include <stdint.h>

#include <uv.h>

#include "core/config.h"
#include "core/events.h"
#include "core/store.h"
#include "gateway/http.h"

typedef struct sb_connector_env {
    uv_loop_t *loop;
    const sb_config_t *cfg;
    sb_store_t *store;
    sb_events_t *events;
    sb_http_server_t *http; /* register HTTP (http.h) and WebSocket (ws.h) routes */
    uint64_t *msgs_in;      /* per-channel counters for /metrics (SB_CHANNELS order) */
    uint64_t *msgs_out;
} sb_connector_env_t;

typedef struct sb_connector_desc {
    const char *name;
    /**
     * Starts the connector (env is borrowed and outlives it). Returns 0 and *state,
     * or an SB_E* code (the daemon then refuses to start, logging why).
     */
    int (*start)(const sb_connector_env_t *env, void **state);
    /** Closes its sockets and frees its state. Called on the loop before HTTP stops. */
    void (*stop)(void *state);
    /** Optional: adds `name value` lines of its gauges to /metrics output. */
    void (*metrics)(void *state, char *out, size_t cap);
} sb_connector_desc_t;

/** The connectors built in, NULL-terminated (connectors/registry.c). */
extern const sb_connector_desc_t *const sb_connectors[];

#endif

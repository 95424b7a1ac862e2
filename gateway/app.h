/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state: one of these per process, owned by main.c and passed to the
 * API handlers. Everything here lives on the loop thread.
 */
#ifndef SB_GATEWAY_APP_H
#define SB_GATEWAY_APP_H

#include <stdint.h>

#include <uv.h>

#include "core/buf.h"
#include "core/channel.h"
#include "core/config.h"
#include "core/events.h"
#include "core/redis.h"
#include "core/sla.h"
#include "core/store.h"
#include "gateway/embedded.h"
#include "gateway/http.h"
#include "connectors/connector.h"
#include "gateway/connector_host.h"

typedef struct sb_api sb_api_t;
typedef struct sb_webhooks sb_webhooks_t;

typedef struct sb_app {
    uv_loop_t *loop;
    sb_config_t *cfg;
    sb_sla_conf_t *sla;      /* SLA policies and calendars (core/sla.h), from cfg */
    sb_embedded_t *embedded; /* NULL with an external Redis */
    sb_redis_t *redis;       /* commands */
    sb_redis_t *redis_block; /* the events dispatcher's XREAD BLOCK */
    sb_store_t *store;
    sb_events_t *events;
    sb_http_server_t *http;
    sb_api_t *api;
    sb_webhooks_t *webhooks;             /* outbound webhooks (gateway/webhooks.h) */
    struct sb_sla_engine *sla_engine;    /* SLA timers; NULL without policies */
    sb_connector_host_t *connector_host; /* freed after the HTTP server stopped */
    sb_connector_env_t connector_env;
    struct conn_outbox *conn_outbox; /* the connectors' outbox lanes (connector_outbox.h) */
    void *connector_state[8];        /* parallel to sb_connectors[]; NULL once stopping */
    unsigned connectors_stopping;
    void (*connectors_stopped)(void *data);
    void *connectors_stopped_data;
    int64_t started_ms;
    uint64_t msgs_in[SB_CHANNEL_COUNT], msgs_out[SB_CHANNEL_COUNT]; /* core/channel.h order */
} sb_app_t;

/**
 * Starts every built-in connector with the host (connector_host.h) on app->http, then the
 * outbox lanes of those that deliver (connector_outbox.h); 0 or the first error (logged;
 * the ones started are stopped by sb_app_connectors_stop). A connector whose start leaves
 * its state NULL has nothing configured: it does not run and serves no channel.
 */
int sb_app_connectors_start(sb_app_t *app);
/**
 * Stops the outbox lanes, then the started connectors (before the HTTP server stops);
 * cb(data) runs once the lanes stopped and every connector freed its state (possibly
 * before this returns).
 */
void sb_app_connectors_stop(sb_app_t *app, void (*cb)(void *data), void *data);
/** Appends the running connectors' metrics to out. */
void sb_app_connectors_metrics(const sb_app_t *app, sb_buf_t *out);

/** Registers every HTTP route of the API (api.c). */
sb_api_t *sb_api_new(sb_app_t *app);
/** Ends every live stream (SSE) and frees the API state; call before stopping HTTP. */
void sb_api_free(sb_api_t *api);
/** Number of open live feeds (SSE streams and event WebSockets). */
size_t sb_api_streams(const sb_api_t *api);

#endif

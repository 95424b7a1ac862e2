/* SPDX-License-Identifier: MIT */
/*
 * The host connectors run in (connectors/connector.h's sb_host_ops_t), on top of the
 * HTTP server (http.h) and its WebSockets (ws.h): the connector's request and socket
 * views are the server's own objects, so a frame goes through one extra call and is
 * never copied. Also the daemon's connector loop: start them all, stop them all.
 */
#ifndef SB_GATEWAY_CONNECTOR_HOST_H
#define SB_GATEWAY_CONNECTOR_HOST_H

#include "connectors/connector.h"
#include "gateway/http.h"

typedef struct sb_connector_host sb_connector_host_t;

/** The ops; their host argument is an sb_connector_host_t. */
extern const sb_host_ops_t sb_connector_host_ops;

/** A host registering routes on http (borrowed; outlives the host). */
sb_connector_host_t *sb_connector_host_new(sb_http_server_t *http);
/**
 * The connectors are stopping: from now on requests on their routes are answered 503 and
 * new sockets refused, without reaching them (their sockets already open still get
 * on_text and on_close). NULL is fine.
 */
void sb_connector_host_close(sb_connector_host_t *h);

/**
 * Frees the host (NULL is fine). Its routes' adapters go with it: call once the HTTP
 * server has stopped.
 */
void sb_connector_host_free(sb_connector_host_t *h);

#endif

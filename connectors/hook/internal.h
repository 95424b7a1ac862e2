/* SPDX-License-Identifier: MIT */
/*
 * Shared within connectors/hook/: the connector's state (hook.c), the inbound route
 * (inbound.c) and the delivery of staff answers (outbound.c).
 */
#ifndef SB_CONNECTORS_HOOK_INTERNAL_H
#define SB_CONNECTORS_HOOK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "connectors/connector.h"
#include "core/httpc.h"

/** Longest hook name ([a-z0-9_-]). */
#define SB_HOOK_NAME_MAX 32

/** One `hook <name> <secret> <reply-url>` entry. */
typedef struct hook_ep {
    char *name, *url;
    unsigned char *key; /* the HMAC key the secret decodes to */
    size_t keylen;
} hook_ep_t;

typedef struct hook {
    sb_connector_env_t env;
    hook_ep_t *eps;
    size_t neps;
    sb_httpc_t *httpc;
    unsigned pending; /* inbound requests and deliveries in flight */
    bool stopping, httpc_stopped;
    sb_connector_stopped_cb done;
    void *done_data;
    uint64_t received, duplicates, refused, sent, send_failed;
} hook_t;

/** The entry named name, or NULL. */
const hook_ep_t *sb__hook_find(const hook_t *h, const char *name);

/** One asynchronous chain (request, delivery) ended: frees h when it is stopping and idle. */
void sb__hook_unref(hook_t *h);

/** POST /v1/hooks/{name} (data: the hook_t). */
void sb__hook_on_post(sb_host_req_t *req, void *data);

/** The descriptor's deliver: one staff answer POSTed to the hook's reply-url. */
int sb__hook_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Shared between gateway/webhooks.c (the service: delivery over core/outbox and
 * core/httpc, start/stop, metrics) and gateway/webhooks_endpoints.c (endpoints: config
 * entries and bots, their filters, visibility and signing keys). Not a public header.
 */
#ifndef SB_GATEWAY_WEBHOOKS_INTERNAL_H
#define SB_GATEWAY_WEBHOOKS_INTERNAL_H

#include "core/httpc.h"
#include "core/outbox.h"
#include "gateway/webhooks.h"

typedef struct wh_endpoint wh_endpoint_t;

struct wh_endpoint {
    sb_webhooks_t *w;
    wh_endpoint_t *next;
    char *id, *group, *url, *secret, *events; /* events: filter words joined by ' ' */
    unsigned char *key;                       /* HMAC key */
    size_t keylen;
    char **words;
    int nwords;
    char *channels; /* a bot's channel scope as stored ("webchat,email"; "" = all) */
    unsigned scope; /* sb__api_scope of it */
    bool bot, seen;
    sb_outbox_lane_t *lane; /* its consumer group wh:<id> over the shards' events */
    struct wh_send **sends; /* the request in flight per shard (one at a time per stream) */
};

struct sb_webhooks {
    uv_loop_t *loop;
    const sb_config_t *cfg;
    sb_redis_t *redis;
    sb_events_sub_t *sub;
    sb_outbox_t *outbox;
    sb_httpc_t *httpc;
    uv_timer_t tick;
    unsigned shards;
    char **keys; /* the shards' events streams */
    char *prefix, *bots_key;
    char consumer[320];
    wh_endpoint_t *eps;
    unsigned nendpoints;
    unsigned refs; /* bot reload replies still to come, and the engine and client stopping */
    bool stopping, reloading;
    sb_outbox_stats_t gone; /* counters of endpoints removed since start */
};

/* gateway/webhooks.c */
/** Adds the endpoint's lane to the engine. 0 or an SB_E* code. */
int sb__wh_lane_add(wh_endpoint_t *ep);

/* gateway/webhooks_endpoints.c */
/** A new endpoint (not yet valid: call sb__wh_endpoint_set), linked into w->eps. */
wh_endpoint_t *sb__wh_endpoint_new(sb_webhooks_t *w, const char *id, bool bot);
/** Sets url, secret, filter words and (bots) channel scope. 0 or SB_EINVAL. */
int sb__wh_endpoint_set(wh_endpoint_t *ep, const char *url, const char *secret, const char *events,
                        const char *channels);
/** Unlinks and frees an endpoint, removing its lane (attempts in flight are cancelled). */
void sb__wh_endpoint_drop(wh_endpoint_t *ep);
/** Frees an endpoint's memory (not its lane). */
void sb__wh_endpoint_free(wh_endpoint_t *ep);
/** Does ep take this event (filter words, and for a bot what its token may see)? */
bool sb__wh_accepts(const wh_endpoint_t *ep, unsigned shard, const char *id, const char *json,
                    size_t len);
/** Adds one endpoint per `webhook` config entry. */
void sb__wh_add_config_endpoints(sb_webhooks_t *w);
/** Re-reads the bots' webhooks (the set <prefix>webhooks) and reconciles the endpoints. */
void sb__wh_reload_bots(sb_webhooks_t *w);
/** Called when a Redis reply or a stop of w's parts is in: frees w once stopped and idle. */
void sb__wh_maybe_free(sb_webhooks_t *w);

#endif

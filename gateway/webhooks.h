/* SPDX-License-Identifier: MIT */
/*
 * Outbound webhooks (docs/contract.md §5): every event of the shards' `events` streams is POSTed
 * to each endpoint (the `webhook` config key, and bots registered with a webhook by
 * `sbctl bot add --webhook URL --secret S`), signed per the Standard Webhooks spec.
 * Delivery is at least once: each endpoint reads through its own Redis consumer group
 * and acknowledges an event only after a 2xx answer (or after giving up on it), so a
 * restarted daemon resumes with whatever was still pending. HTTP runs on libcurl multi
 * driven by the libuv loop; Redis commands go over the main connection, never blocking.
 */
#ifndef SB_GATEWAY_WEBHOOKS_H
#define SB_GATEWAY_WEBHOOKS_H

#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/events.h"
#include "core/redis.h"

typedef struct sb_webhooks sb_webhooks_t;

/**
 * Starts delivering to the endpoints of cfg and to registered bots. loop, cfg, redis
 * (the command connection) and events are borrowed and must outlive the service until
 * sb_webhooks_stop. Returns 0 and *out, or SB_EINTERNAL if libcurl can't start.
 */
int sb_webhooks_start(uv_loop_t *loop, const sb_config_t *cfg, sb_redis_t *redis,
                      sb_events_t *events, sb_webhooks_t **out);

/**
 * Stops: requests in flight are cancelled (their events stay pending in Redis and are
 * retried after the next start), handles close on the loop. The service frees itself
 * once its last Redis reply has arrived (stopping redis cancels those). Accepts NULL.
 */
void sb_webhooks_stop(sb_webhooks_t *w);

/** Appends the service's Prometheus lines (deliveries by result, endpoints, in flight). */
void sb_webhooks_metrics(const sb_webhooks_t *w, sb_buf_t *out);

#endif

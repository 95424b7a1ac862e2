/* SPDX-License-Identifier: MIT */
/*
 * The channel lanes of the daemon's connectors (docs/outbox.md, "Channel lanes"): one
 * outbox engine (core/outbox.h) whose lanes read the per-shard streams
 * `<prefix>{N}:outbox:<channel>` of every started connector that delivers, hand each
 * entry to the connector's deliver and store every outcome with the store's delivery
 * record (core/store.h) before the entry is acknowledged. A lane paused by an auth
 * outcome is logged (WARN), shown by GET /v1/connectors and resumed by
 * POST /v1/connectors/{name}/resume (gateway/api_connectors.c).
 */
#ifndef SB_GATEWAY_CONNECTOR_OUTBOX_H
#define SB_GATEWAY_CONNECTOR_OUTBOX_H

#include <jansson.h>

#include "core/buf.h"
#include "core/outbox.h"
#include "gateway/app.h"

/**
 * The channel lanes' record hook (sb_outbox_lane_opts_t.record; ctx is the sb_store_t):
 * sb_store_delivery_record of the outcome, whose answer goes to cb unchanged.
 */
int sb_connector_outbox_record(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb,
                               void *cbdata);
/**
 * The channel lanes' check hook (ctx is the sb_store_t): sb_store_delivery_state of the
 * entry's message; its {"state":"delivered",…} is the engine's "already delivered", any
 * other state (or null: never recorded) means deliver.
 */
int sb_connector_outbox_check(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb,
                              void *cbdata);

/**
 * Starts the engine and one lane per started connector whose descriptor has deliver
 * (after sb_app_connectors_start). 0, or an SB_E* code (logged).
 */
int sb_app_connector_lanes_start(sb_app_t *app);

/**
 * Adds the lane of one connector (index in sb_connectors[]) for channel and account
 * (NULL or "" = the channel's only lane: group and lane name are the channel; else both
 * are "<channel>:<account>"). 0, SB_EINVAL (no deliver, bad name) or SB_ECANCELED.
 */
int sb_app_connector_lane_add(sb_app_t *app, int connector, const char *channel,
                              const char *account);

/**
 * Stops the engine: attempts in flight are abandoned (their entries stay pending and are
 * checked, then sent, after the next start); cb(data) runs once its last Redis reply and
 * store answer are in. Call before the connectors stop. cb runs even with no engine.
 */
void sb_app_connector_lanes_stop(sb_app_t *app, void (*cb)(void *data), void *data);

/** Appends the engine's Prometheus lines (sb_outbox_metrics) to out. */
void sb_app_connector_lanes_metrics(const sb_app_t *app, sb_buf_t *out);

/**
 * The connectors for GET /v1/connectors (new reference): [{"name","channel","running",
 * "delivers","lanes":[{"name","channel","account","paused","reason","inflight","ok",
 * "retry","rate_limited","dead","lost","dead_letters":{"stream":key}}]}]. The caller
 * adds each dead-letter stream's "length".
 */
json_t *sb_app_connectors_json(const sb_app_t *app);

/**
 * Resumes the paused lanes of the connector named name; *resumed (may be NULL) gets how
 * many were paused. 0, or SB_ENOTFOUND for no built-in connector of that name.
 */
int sb_app_connector_resume(sb_app_t *app, const char *name, unsigned *resumed);

#endif

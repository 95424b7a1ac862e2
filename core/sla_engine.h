/* SPDX-License-Identifier: MIT */
/*
 * The SLA engine (docs/sla.md): on every node, a timer on the loop walks the shards'
 * `sla` sets through the store. Conversations whose clocks changed are planned here
 * (core/sla.h: business hours need the system zoneinfo, which Redis cannot read) and the
 * plans stored; due steps fire inside Redis, exactly once whichever node gets there.
 */
#ifndef SB_SLA_ENGINE_H
#define SB_SLA_ENGINE_H

#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/sla.h"
#include "core/store.h"

typedef struct sb_sla_engine sb_sla_engine_t;

/**
 * Starts ticking every tick_ms (0: 100) over store's shards with conf (borrowed; both must
 * outlive the engine). 0, or SB_EINVAL.
 */
int sb_sla_engine_start(uv_loop_t *loop, sb_store_t *store, const sb_sla_conf_t *conf,
                        unsigned tick_ms, sb_sla_engine_t **out);

/** Stops ticking; the engine frees itself once its store calls have answered. NULL is fine. */
void sb_sla_engine_stop(sb_sla_engine_t *e);

/** Appends its Prometheus metrics (ticks, plans, steps fired, firing lateness). */
void sb_sla_engine_metrics(const sb_sla_engine_t *e, sb_buf_t *out);

#endif

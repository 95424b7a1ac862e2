/* SPDX-License-Identifier: MIT */
/*
 * SLA policies (docs/sla.md): the `sla`, `escalate`, `calendar` and `holiday` config lines
 * compiled into policies, and the plan of one conversation's clocks: when each is due and
 * when each escalation step fires, counted in its policy's business hours.
 *
 *     sla <name> channel=<channel|*> priority=<priority|*> first=<dur> next=<dur>
 *         resolve=<dur> [calendar=<name>]
 *     escalate <sla-name|*> <percent>% <target>[,<target>…]
 *
 * The first `sla` line matching a conversation's channel and priority wins. Targets are
 * `assignee`, `everyone`, `role:<role>` or `st_<id>`. Every policy also breaches at 100 %
 * of each clock, with or without an escalate line there.
 *
 * The Redis function library keeps each conversation's clock facts (wall-clock running
 * intervals, docs/sla.md) and fires the planned steps; it cannot read a time zone, so
 * this side turns facts into due times: sb_sla_plan_json.
 */
#ifndef SB_SLA_H
#define SB_SLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/calendar.h"
#include "core/config.h"

typedef enum { SB_CLOCK_FIRST, SB_CLOCK_NEXT, SB_CLOCK_RESOLVE, SB_CLOCKS } sb_clock_t;

/** "first_response", "next_response", "resolution". */
extern const char *const sb_clock_names[SB_CLOCKS];

typedef struct sb_sla_step {
    unsigned percent;
    size_t ntargets;
    char **targets; /* as written: "assignee", "everyone", "role:exec", "st_…" */
} sb_sla_step_t;

typedef struct sb_sla_policy {
    char *name;
    char *channel;  /* NULL = any */
    char *priority; /* NULL = any */
    int64_t target_ms[SB_CLOCKS];
    const sb_calendar_t *cal; /* NULL = always open */
    size_t nsteps;
    /* from the escalate lines naming it or `*`, by percent; always one at 100 (no
       targets when no line names 100 %) */
    sb_sla_step_t *steps;
} sb_sla_policy_t;

typedef struct sb_sla_conf sb_sla_conf_t;

/**
 * Compiles cfg's calendar, holiday, sla and escalate lines. 0, or SB_EINVAL with one
 * `file:line: what` line per problem appended to errors (may be NULL) and *out NULL.
 * A config with none of these lines gives an empty conf (never NULL on success).
 */
int sb_sla_conf_load(const sb_config_t *cfg, sb_sla_conf_t **out, sb_buf_t *errors);
void sb_sla_conf_free(sb_sla_conf_t *conf);

/** Whether any `sla` line is configured (else no clock ever runs). */
bool sb_sla_conf_active(const sb_sla_conf_t *conf);

/** The first policy matching channel and priority, or NULL. */
const sb_sla_policy_t *sb_sla_match(const sb_sla_conf_t *conf, const char *channel,
                                    const char *priority);

/** A calendar by name, or NULL. */
const sb_calendar_t *sb_sla_calendar(const sb_sla_conf_t *conf, const char *name);

/**
 * The plan of one conversation (docs/sla.md, "Plan"): state is the JSON the function
 * sb_sla_tick returns for a conversation whose clocks changed; the result is the JSON
 * sb_sla_set takes (new reference), or NULL with SB_EINVAL-style reason in err when state
 * is not shaped as documented.
 */
json_t *sb_sla_plan_json(const sb_sla_conf_t *conf, const json_t *state, int64_t now_ms, char *err,
                         size_t errlen);

#endif

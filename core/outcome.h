/* SPDX-License-Identifier: MIT */
/*
 * The outcome of one delivery attempt, as a connector's deliver() reports it and the
 * outbox (core/outbox.h) acts on it: ok (with the provider's id), temporary (retry with
 * backoff), rate_limited (retry at retry_at_ms), permanent (no retry), auth (pause the
 * account, raise an event). Kept apart so connectors need not include the outbox.
 */
#ifndef SB_OUTCOME_H
#define SB_OUTCOME_H

#include <stdint.h>

typedef enum {
    SB_OUTCOME_OK,
    SB_OUTCOME_TEMPORARY,
    SB_OUTCOME_RATE_LIMITED,
    SB_OUTCOME_PERMANENT,
    SB_OUTCOME_AUTH
} sb_outcome_kind_t;

/**
 * Strings are borrowed for the duration of the callback that carries the outcome:
 * reason (why it failed; NULL for ok), provider_id (the provider's id of the sent
 * message, or NULL), retry_at_ms (wall-clock ms, rate_limited only; 0 = unknown: the
 * outbox then uses its backoff).
 */
typedef struct sb_outcome {
    sb_outcome_kind_t kind;
    const char *reason;
    const char *provider_id;
    uint64_t retry_at_ms;
} sb_outcome_t;

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The honest wait (docs/sla.md, "Honest wait"): what a customer writing now on a channel
 * should be told about the first reply. Pure: the inputs are figures the store already
 * keeps (recent first-response times, the queue, the staff online) plus the channel's
 * calendar and the time; nothing here reads Redis or the clock.
 */
#ifndef SB_WAIT_H
#define SB_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/calendar.h"

/** Past this the estimate of an open channel stops growing (unless the median is longer). */
#define SB_WAIT_CAP_MS (4 * 3600 * 1000LL)

typedef struct sb_wait_in {
    int64_t median_ms;        /* median recent first response on the channel; < 0: no samples */
    uint64_t ahead;           /* customers queued ahead (awaiting a first or next reply) */
    uint64_t online;          /* staff online now who can answer the channel */
    const sb_calendar_t *cal; /* the channel's calendar; NULL = always open */
    int64_t now_ms;           /* wall clock, ms since the epoch */
} sb_wait_in_t;

typedef struct sb_wait {
    int64_t expected_ms; /* -1: unknown (no samples, or nobody online while open) */
    uint64_t online;     /* as given */
    bool open;           /* the calendar is open now */
    int64_t back_at_ms;  /* closed: the next opening; -1 when open (or never opens again) */
} sb_wait_t;

/**
 * The median of n samples as /v1/stats reports it (nearest rank: the lower middle of an
 * even count), or -1 when n is 0. Sorts ms in place.
 */
int64_t sb_wait_median(int64_t *ms, size_t n);

/**
 * The estimate (docs/sla.md "Honest wait"). Open: nobody online gives -1; else the median
 * scaled by the customers ahead per person online, never below the median and at most
 * SB_WAIT_CAP_MS (or the median, if longer). Closed: back_at_ms is the next opening and
 * expected_ms runs from now to that opening plus the median. No samples: -1 either way.
 */
void sb_wait_estimate(const sb_wait_in_t *in, sb_wait_t *out);

/**
 * Fills in's median_ms, ahead and online for channel from a sb_store_stats result
 * (first_response_ms.<ch>.p50, by_channel.<ch>.queue, staff_online; an absent figure counts
 * as none); cal and now_ms are left as they are.
 */
void sb_wait_in_from_stats(const json_t *stats, const char *channel, sb_wait_in_t *in);

/**
 * Sets "expected_reply_ms" (number|null), "online" (number), "open" (bool) and "back_at"
 * (ms|null) in obj.
 */
void sb_wait_to_json(const sb_wait_t *w, json_t *obj);

/**
 * Whether a visitor would be told something different: online, open or back_at changed,
 * expected_ms became or stopped being known, or moved by more than a tenth.
 */
bool sb_wait_changed(const sb_wait_t *a, const sb_wait_t *b);

#endif

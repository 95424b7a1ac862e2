/* SPDX-License-Identifier: MIT */
/*
 * Accountability reports (docs/sla.md "Reports"): first-response and resolution times,
 * breaches and who answered, read from every shard's `facts` stream, plus the customers
 * waiting longest now; the first-response histogram /metrics prints; and durations as a
 * person reads them ("4m 12s").
 */
#ifndef SB_REPORTS_H
#define SB_REPORTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/channel.h"
#include "core/store.h"

/** What a report covers. Strings are borrowed for the call. */
typedef struct sb_report_query {
    int64_t from_ms, to_ms; /* facts with from_ms <= time <= to_ms */
    const char *channel;    /* NULL: every channel */
    bool scoped;            /* only the channels in `channels` (a token's scope) */
    unsigned channels;      /* bit sb_channel_index(c) set: channel c is in the scope */
    size_t max_facts;       /* facts read at most over every shard; 0 = SB_REPORT_MAX_FACTS */
    unsigned waiting;       /* longest-waiting customers listed; 0 = 20, at most 200 */
} sb_report_query_t;

/** The facts a report reads at most by default (then its result says "truncated"). */
#define SB_REPORT_MAX_FACTS 200000

/**
 * Reads every shard's facts in [from_ms, to_ms] (XRANGE pages of at most 500 entries, so
 * no single command holds Redis for long) and the longest-waiting customers (`sb_waiting`
 * on each shard), and answers
 * {"from","to","channel","scanned","truncated",
 *  "first_response":{"by_channel":{c:{"p50","p90","n"}},"by_policy":{p:{…}}},
 *  "resolution":{"by_channel":{…},"by_policy":{…}},
 *  "breaches":{"total":n,"by_policy":{p:{clock:n,…,"total":n}}},
 *  "people":[{"id","name","answered","first_responses","resolved"}…] (most answered first),
 *  "waiting":[{"conv","channel","contact_name","assignee","subject","awaiting_since"}…]
 *  (oldest first)}.
 * Times in ms; p50/p90 are nearest-rank percentiles. SB_EINVAL when to_ms < from_ms. If the
 * call returns an error cb never runs; otherwise it runs exactly once.
 */
int sb_store_report(sb_store_t *st, const sb_report_query_t *q, sb_store_cb cb, void *data);

/* ---- First-response histogram (/metrics) ---- */

/** Bucket upper bounds in seconds (the last bucket is +Inf). */
#define SB_FRT_BUCKETS 11
extern const double sb_frt_bounds_s[SB_FRT_BUCKETS];

/** Per channel counts of first-response times (non-cumulative; [SB_FRT_BUCKETS] is +Inf). */
typedef struct sb_frt_hist {
    uint64_t count[SB_CHANNEL_COUNT][SB_FRT_BUCKETS + 1];
    double sum_s[SB_CHANNEL_COUNT];
} sb_frt_hist_t;

/** Counts one first response of ms on channel (an unknown channel is ignored). */
void sb_frt_hist_observe(sb_frt_hist_t *h, const char *channel, int64_t ms);

/**
 * Counts a reply result's `first_response_ms` (a top-level integer >= 0, set when the reply
 * was the conversation's first human response) on `message.channel` (else
 * `conversation.channel`). Returns true when
 * it counted one; a result without the field, or a malformed one, counts nothing.
 */
bool sb_frt_hist_observe_reply(sb_frt_hist_t *h, const json_t *reply_result);

/** Appends the histogram as `switchboard_first_response_seconds` (Prometheus text). */
void sb_frt_hist_render(const sb_frt_hist_t *h, sb_buf_t *b);

/** The store's histogram of the first responses its replies made (owned by the store). */
const sb_frt_hist_t *sb_store_frt_hist(const sb_store_t *st);

/* ---- Durations for people ---- */

/**
 * ms as a person reads it, two units at most: "850ms" → "<1s", "45s", "4m 12s", "1h 5m",
 * "2d 3h" (a negative ms is "0s"). Returns out.
 */
const char *sb_duration_human(int64_t ms, char *out, size_t cap);

/**
 * A report bound: milliseconds since the epoch ("1732270000123"), or a time before now
 * ("7d", "12h", "30m", "45s": now minus that), or "now". 0 or SB_EINVAL.
 */
int sb_report_time_parse(const char *s, int64_t now_ms, int64_t *out);

#endif

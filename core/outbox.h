/* SPDX-License-Identifier: MIT */
/*
 * The outbound delivery engine (docs/outbox.md): everything that leaves Switchboard
 * through a provider (email, social networks, webhooks) is an entry of a Redis stream
 * and is delivered at least once through a consumer group.
 *
 * A lane is one consumer group over a set of streams (typically the per-shard streams
 * `<prefix>{N}:outbox:<channel>` of one channel and account, or the shards' `events`
 * streams of one webhook endpoint). Per stream, a lane holds a small batch of entries
 * and delivers them one at a time, in stream order. It first re-reads its own pending
 * entries (XREADGROUP … 0: fetched before a restart and never acknowledged), then new
 * ones (`>`), and takes over entries another consumer left idle for claim_idle_ms
 * (XAUTOCLAIM: a node that died or came back under another name).
 *
 * The lane's owner delivers an entry (deliver hook) and answers later with an outcome:
 * ok (acknowledged), temporary (retried with backoff until the last attempt, then a dead
 * letter), rate_limited (retried at the provider's time, not counted as a failed
 * attempt), permanent (a dead letter at once) or auth (the lane pauses until
 * sb_outbox_lane_resume; on_lane_state reports it). With a record hook, each outcome is
 * stored before anything else happens, and an entry is XACKed only after its record is
 * stored; with a check hook, an entry read again from the pending list is first checked,
 * so one recorded as delivered (a crash between record and XACK) is not sent twice.
 * A dead letter is copied to the lane's capped dead-letter stream, then acknowledged.
 *
 * Every Redis command goes over the given connection and never blocks; time is read
 * through core/sys.h (tests move the clock instead of sleeping).
 */
#ifndef SB_CORE_OUTBOX_H
#define SB_CORE_OUTBOX_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/outcome.h"
#include "core/redis.h"

typedef struct sb_outbox sb_outbox_t;
typedef struct sb_outbox_lane sb_outbox_lane_t;
typedef struct sb_outbox_attempt sb_outbox_attempt_t;

/** One stream entry, valid only during the hook it is passed to. */
typedef struct sb_outbox_entry {
    const char *stream;       /* its stream's key */
    unsigned index;           /* that stream's index in the lane's streams (the shard) */
    const char *id;           /* stream entry id */
    const char *const *names; /* fields, nfields of them (NUL-terminated, binary-safe with lens) */
    const char *const *values;
    const size_t *lens; /* of values */
    size_t nfields;
    bool redelivered; /* read from a pending list (ours after a restart, or claimed) */
    unsigned attempt; /* 1 for the first attempt of this process */
} sb_outbox_entry_t;

/** The value of field name of e (its length into *len if len), or NULL. */
const char *sb_outbox_field(const sb_outbox_entry_t *e, const char *name, size_t *len);

/**
 * The answer a channel lane's entry carries (the fields a reply writes: `conv`, the
 * conversation id, and `m`, the message JSON; docs/outbox.md): conv and the message's id
 * copied into conv and mid (SB_ID_MAX bytes each, core/util.h), the message parsed into *m
 * (json_decref it). SB_EINVAL (*m NULL) when a field is missing or too long, or m is not a
 * message with an id and a text. Every delivering connector starts with it.
 */
int sb_outbox_reply_of(const sb_outbox_entry_t *e, char *conv, char *mid, json_t **m);

/**
 * What a record hook stores about one outcome: the same fields, names and meaning as the
 * store's delivery record, so the hook is a field-by-field copy and one call.
 */
typedef struct sb_outbox_record {
    const char *conv, *mid, *channel,
        *account;            /* from the entry's `conv`, `m.id`, the lane; "" when none */
    bool ok, final;          /* final=false: will be retried at retry_at */
    const char *reason;      /* "" when ok */
    const char *provider_id; /* "" when none */
    uint64_t retry_at;       /* ms; 0 when ok or final */
    sb_outcome_kind_t kind;
    const sb_outbox_entry_t *entry;
} sb_outbox_record_t;

/**
 * The answer of a record or check hook: the same shape as the store's callbacks
 * (core/store.h sb_store_cb), so a hook may pass it on unchanged. status 0 = done;
 * result is the store's JSON (borrowed).
 *   record: {"recorded":true}, or {"recorded":false,"state":"delivered"} when an earlier
 *           attempt was recorded delivered (the entry is then acknowledged as ok).
 *   check:  {"state":"delivered"} (or "recorded":false with it) = already delivered: not
 *           sent again, acknowledged; anything else = deliver.
 */
typedef void (*sb_outbox_done_cb)(int status, json_t *result, const char *errmsg, void *data);

typedef struct sb_outbox_lane_opts {
    const char *name;           /* for logs, metrics and the dead-letter stream; copied */
    const char *group;          /* the consumer group; copied */
    const char *const *streams; /* keys; copied */
    unsigned nstreams;
    const char *group_start; /* XGROUP CREATE … <start> MKSTREAM: "0" (all) or "$"; NULL = "0" */
    /** The streams are outboxes (written only to be delivered): entries every consumer
     *  group of the stream is done with are trimmed away on the claim tick, so a stream
     *  holds only what is still to deliver. false for streams with other readers (the
     *  events streams of webhooks, capped by their writer). */
    bool trim;
    const char *channel, *account; /* copied into records; NULL = "" */
    /** Delivers e; answer later (or inside) with sb_outbox_answer(a, …). Required. */
    void (*deliver)(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, sb_outbox_attempt_t *a,
                    void *data);
    /** An attempt given to deliver is abandoned (lane removed, engine stopping): stop its
     *  work; a is freed when this returns and must not be answered. May be NULL: then an
     *  abandoned attempt must still be answered once (the answer is ignored and frees it),
     *  even after the engine stopped. */
    void (*cancel)(sb_outbox_lane_t *lane, sb_outbox_attempt_t *a, void *data);
    /** Should e be delivered at all? false = acknowledged unsent (counted as skipped). May
     *  be NULL. */
    bool (*accept)(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, void *data);
    /** Stores an outcome before it takes effect: returns 0 and calls cb(…, cbdata) once
     *  later, or an error (cb never runs; retried with backoff). May be NULL. */
    int (*record)(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb, void *cbdata);
    /** For redelivered entries only, before the attempt: was it delivered already? Same
     *  contract as record (r->ok/final/reason are unset). May be NULL. */
    int (*check)(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb, void *cbdata);
    void *ctx;  /* passed to record and check (the store, say) */
    void *data; /* passed to deliver, cancel, accept */
} sb_outbox_lane_opts_t;

/** A lane's counters since start. */
typedef struct sb_outbox_stats {
    uint64_t ok, retry, rate_limited, dead, lost, skipped;
    unsigned inflight;
    bool paused;
} sb_outbox_stats_t;

typedef struct sb_outbox_opts {
    const char *prefix;     /* key prefix ("sb:"): dead letters go to <prefix>dead:<lane> */
    const char *consumer;   /* this node's consumer name; copied */
    uint32_t retry_base_ms; /* first retry delay, doubled per failed attempt (default 1 s) */
    uint32_t retry_max_ms;  /* delay cap (default 5 min) */
    unsigned attempts;      /* attempts before a dead letter (default 12) */
    uint32_t claim_idle_ms; /* take over others' entries idle this long (default 5 min) */
    unsigned dead_maxlen;   /* dead-letter stream cap, MAXLEN ~ (default 10000) */
    unsigned max_inflight;  /* attempts at once over all lanes (default 64) */
    const char *log_name;   /* log events are "<log_name>.<what>"; NULL = "outbox" */
    /** A lane paused (paused=true, reason: the auth outcome's) or resumed. May be NULL. */
    void (*on_lane_state)(sb_outbox_lane_t *lane, bool paused, const char *reason, void *data);
    void *data;
} sb_outbox_opts_t;

/**
 * Fills the backoff fields of opts (retry base and cap, attempts, claim idle, dead-letter
 * cap) and its prefix from the `outbox_*` config keys; the other fields are left alone.
 */
void sb_outbox_opts_config(sb_outbox_opts_t *opts, const sb_config_t *cfg);

/**
 * Creates the engine. loop and redis are borrowed and must outlive it (until stop's
 * callback). Strings are copied. Returns 0 and *out.
 */
int sb_outbox_new(uv_loop_t *loop, sb_redis_t *redis, const sb_outbox_opts_t *opts,
                  sb_outbox_t **out);

/**
 * Adds a lane: its groups are created, then its pending entries are read, then new ones.
 * Returns 0 and *out (owned by the engine), or SB_EINVAL (no streams, no deliver).
 */
int sb_outbox_lane_add(sb_outbox_t *o, const sb_outbox_lane_opts_t *opts, sb_outbox_lane_t **out);

/** Removes a lane: attempts in flight are cancelled (their entries stay pending). */
void sb_outbox_lane_remove(sb_outbox_lane_t *lane);

/** Answers an attempt given to deliver (once). a is freed by this call. */
void sb_outbox_answer(sb_outbox_attempt_t *a, const sb_outcome_t *outcome);

/** Resumes a lane paused by an auth outcome (on_lane_state reports it). */
void sb_outbox_lane_resume(sb_outbox_lane_t *lane);

/** The lane's name, as given. */
const char *sb_outbox_lane_name(const sb_outbox_lane_t *lane);

/** Copies a lane's counters into *out. */
void sb_outbox_lane_stats(const sb_outbox_lane_t *lane, sb_outbox_stats_t *out);

/** New entries may be in the lane's stream number index (all of them if index < 0). */
void sb_outbox_lane_poke(sb_outbox_lane_t *lane, int index);

/** Re-reads the clock and moves every lane forward (retries now due, fetches, claims). */
void sb_outbox_kick(sb_outbox_t *o);

/** Appends Prometheus lines: switchboard_outbox_deliveries_total{lane,result},
 *  switchboard_outbox_dead_letters_total{lane}, switchboard_outbox_paused{lane}. */
void sb_outbox_metrics(const sb_outbox_t *o, sb_buf_t *out);

/**
 * Stops: attempts in flight are cancelled (entries stay pending in Redis, retried after
 * the next start); once the last Redis reply and hook answer are in, cb(data) runs on the
 * loop and the engine is freed. cb may be NULL. Accepts NULL.
 */
void sb_outbox_stop(sb_outbox_t *o, void (*cb)(void *data), void *data);

#endif

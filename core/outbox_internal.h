/* SPDX-License-Identifier: MIT */
/*
 * Shared between core/outbox.c (lanes, reading streams, claims, the pump, start/stop)
 * and core/outbox_attempt.c (one entry's attempt: check, deliver, outcome, record,
 * acknowledge or dead-letter). Not a public header.
 */
#ifndef SB_CORE_OUTBOX_INTERNAL_H
#define SB_CORE_OUTBOX_INTERNAL_H

#include <stdio.h>

#include "core/log.h"
#include "core/outbox.h"

#define SB__OB_BATCH  8  /* entries fetched per stream at once */
#define SB__OB_SID    48 /* stream id buffer */
#define SB__OB_FIELDS 32 /* fields kept per entry */

typedef struct sb__ob_entry {
    char id[SB__OB_SID];
    size_t nfields;
    char **names, **values; /* owned */
    size_t *lens;
    char *conv, *mid; /* from the fields `conv` and `m` (message JSON's id); "" when none */
    bool redelivered;
} sb__ob_entry_t;

typedef enum { SB__OB_IDLE, SB__OB_CHECK, SB__OB_SEND, SB__OB_RECORD } sb__ob_phase_t;

/* One stream of a lane. */
typedef struct sb__ob_stream {
    sb_outbox_lane_t *lane;
    unsigned index;
    char *key;
    sb__ob_entry_t ent[SB__OB_BATCH];
    unsigned head, n;
    bool history;           /* re-reading our pending entries (from `after`) */
    char after[SB__OB_SID]; /* history cursor */
    bool dirty;             /* a fetch may find entries */
    bool fetching, claiming, claim_again;
    char claim_from[SB__OB_SID];
    /* the head entry */
    unsigned attempts; /* failed (temporary) attempts */
    unsigned rec_failures;
    int64_t next_at; /* nothing before (ms) */
    sb__ob_phase_t phase;
    bool checked;             /* a redelivered head passed the check hook */
    sb_outbox_attempt_t *att; /* the attempt in flight (phase SEND) */
    bool have_outcome;        /* an outcome waits to be recorded (and applied) */
    sb_outcome_kind_t kind;
    bool final;
    char *reason, *provider_id; /* owned */
    uint64_t retry_at;
} sb__ob_stream_t;

struct sb_outbox_lane {
    sb_outbox_t *o;
    sb_outbox_lane_t *next;
    sb_outbox_lane_opts_t opts; /* its strings point at the copies below */
    char *name, *group, *group_start, *channel, *account, *dead_key;
    sb__ob_stream_t *st;
    unsigned nst;
    bool groups_ready, creating, create_failed, fetching, removed, paused;
    unsigned create_pending;
    int64_t create_at;
    unsigned refs; /* Redis replies and hook answers still to come */
    sb_outbox_stats_t stats;
};

struct sb_outbox_attempt {
    sb__ob_stream_t *s;
};

struct sb_outbox {
    uv_loop_t *loop;
    sb_redis_t *redis;
    sb_outbox_opts_t opts;
    char *prefix, *consumer, *log_name;
    uv_timer_t timer, tick;
    unsigned handles_open, tick_ms;
    sb_outbox_lane_t *lanes;
    unsigned inflight;
    unsigned refs; /* all lanes' refs */
    int64_t next_refresh_at, next_claim_at;
    bool stopping, pumping, pump_again;
    void (*stop_cb)(void *);
    void *stop_data;
};

/* Logs event "<log_name>.<what>" (opts.log_name: "outbox", "webhook"). */
#define SB__OB_LOG(o, lvl, what, ...)                                                              \
    do {                                                                                           \
        if ((int)(lvl) <= sb_log_level) {                                                          \
            char ev_[48];                                                                          \
            snprintf(ev_, sizeof(ev_), "%s.%s", (o)->log_name, (what));                            \
            sb_log_write((lvl), ev_, __VA_ARGS__);                                                 \
        }                                                                                          \
    } while (0)

/* outbox.c */
void sb__ob_pump(sb_outbox_t *o);
int sb__ob_command(sb_outbox_lane_t *l, sb_redis_reply_cb cb, void *data, int argc,
                   const char **argv, const size_t *lens);
bool sb__ob_ref_done(sb_outbox_lane_t *l);
void sb__ob_ref(sb_outbox_lane_t *l);
void sb__ob_xack(sb__ob_stream_t *s, const char **ids, unsigned n);

/* outbox_attempt.c */
void sb__ob_entry_view(const sb__ob_stream_t *s, const sb__ob_entry_t *e, sb_outbox_entry_t *v,
                       unsigned attempt);
void sb__ob_entry_dispose(sb__ob_entry_t *e);
/** Moves the head entry of s on: starts its check, attempt or record when due. */
void sb__ob_step(sb__ob_stream_t *s);
/** Abandons whatever s has in flight (attempt cancelled; hook answers ignored). */
void sb__ob_abandon(sb__ob_stream_t *s);
uint64_t sb__ob_backoff(const sb_outbox_t *o, unsigned failures);

#endif

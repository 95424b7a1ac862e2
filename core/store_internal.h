/* SPDX-License-Identifier: MIT */
/*
 * Shared by the store's files (store.c and the store_*.c it is split into): the store
 * object, the FCALL plumbing and the actor encoding, so that every operation calls the
 * function library the same way.
 */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include <jansson.h>

#include "core/redis.h"
#include "core/reports.h"
#include "core/store.h"

struct redisReply;

struct sb_store {
    sb_redis_t *redis;
    sb_store_opts_t opts;
    char *prefix;
    bool ready;
    uint64_t generation; /* bumps on every connect, so a stale load reply is ignored */
    json_t *served;      /* channels a reply may go out on (store_delivery.c) */
    sb_frt_hist_t frt;   /* first responses of this node's replies (store_reports.c) */
    bool staff_indexed;  /* staff records older than the staff index were adopted into it */
    struct staff_cache *staff_cache; /* sb_store_staff_cached (store_staff.c) */
};

/** An ingest's arguments, kept with its call to follow a redirect (store_ingest.c). */
typedef struct sb__store_ingest_req sb__store_ingest_req_t;

/** One FCALL in flight: whom to answer. */
typedef struct sb__store_call {
    sb_store_t *st;
    sb_store_cb cb;
    sb_store_raw_cb raw; /* instead of cb: the reply unparsed */
    void *data;
    sb__store_ingest_req_t *ingest; /* an ingest, kept to follow a redirect */
} sb__store_call_t;

/** Frees the staff list kept by sb_store_staff_cached (store_staff.c; from sb_store_free). */
void sb__store_staff_cache_free(sb_store_t *st);

/** Frees a call and its ingest arguments. */
void sb__store_call_free(sb__store_call_t *c);

/**
 * The reply callback of every FCALL (data: a sb__store_call_t, freed here unless an
 * ingest is sent on): answers c->cb or c->raw as store.h promises.
 */
void sb__store_on_fcall(sb_redis_t *r, struct redisReply *reply, int status, void *data);

/** Frees an ingest's kept arguments (NULL is fine). */
void sb__store_ingest_req_free(sb__store_ingest_req_t *q);

/**
 * A redirect or fallback answer to an ingest: sends the ingest on. 0 if it did (c is on
 * its way), 1 if the reply is neither (the result), else the error that stopped it.
 */
int sb__store_ingest_resend(sb__store_call_t *c, const char *reply, size_t len);

/**
 * Sends a plain command whose success answers {"id": id} (id copied; argv borrowed for
 * the call). Same callback guarantee as the public operations; cb may be NULL.
 */
int sb__store_simple(sb_store_t *st, const char *id, int argc, const char **argv, sb_store_cb cb,
                     void *data);

/**
 * Calls function fn on a shard: args (stolen) gets prefix, shard, limits and nids fresh
 * message ids. Same callback guarantee as the public operations; cb may be NULL.
 */
int sb__store_fcall(sb_store_t *st, const char *fn, unsigned shard, json_t *args, int nids,
                    sb_store_cb cb, void *data);

/** sb__store_fcall with the 3 ids one message needs. */
static inline int sb__store_fcall_msg(sb_store_t *st, const char *fn, unsigned shard, json_t *args,
                                      sb_store_cb cb, void *data)
{
    return sb__store_fcall(st, fn, shard, args, 3, cb, data);
}

/** The store's command connection. */
sb_redis_t *sb__store_redis(sb_store_t *st);

/** The channels a reply may go out on, a JSON array owned by the store (store_delivery.c
 * adds to it; reply and retry send it to the functions). */
json_t *sb__store_served(sb_store_t *st);

/** Counts a reply result's first_response_ms in the store's histogram (store_reports.c). */
void sb__store_frt_observe(sb_store_t *st, const json_t *reply_result);

/** {"type","id","name"} of an actor (new reference). */
json_t *sb__store_actor_json(const sb_actor_t *who);

/* ---- Fan-out: several calls, one continuation (store_fan.c) ---- */

typedef struct sb__fan sb__fan_t;
/** The continuation of a round of calls. */
typedef void (*sb__fan_done_fn)(sb__fan_t *f);

struct sb__fan {
    sb_store_t *st;
    unsigned pending;
    int status; /* the first failure */
    char errmsg[200];
    json_t *parts;        /* one value per call in issue order; null until it answered */
    sb__fan_done_fn done; /* runs once when every call answered */
    sb_store_cb cb;       /* the caller of the public operation */
    void *data;
    void *op; /* the operation's own state */
};

/** One call of a round: its slot in parts (or, for a merge, its shard). */
typedef struct sb__fan_call {
    sb__fan_t *f;
    size_t idx;
} sb__fan_call_t;

/** A fan for one public operation answering cb(data); free it with sb__fan_finish. */
sb__fan_t *sb__fan_new(sb_store_t *st, sb_store_cb cb, void *data);

/** Frees f without answering (when nothing was sent: the callback must not run). */
void sb__fan_free(sb__fan_t *f);

/**
 * Starts a round of calls whose continuation is done (parts are cleared). The round is
 * held open until sb__fan_end, so done never runs while calls are being issued.
 */
void sb__fan_begin(sb__fan_t *f, sb__fan_done_fn done);

/** Ends issuing (or one call): runs the continuation when nothing is pending. */
void sb__fan_end(sb__fan_t *f);

/** Records a failure (the first one wins); errmsg NULL = the code's text. */
void sb__fan_fail(sb__fan_t *f, int status, const char *errmsg);

/**
 * Calls function fn on one shard (args stolen) into the next slot of parts. Returns
 * the issue error (also recorded).
 */
int sb__fan_fcall(sb__fan_t *f, const char *fn, unsigned shard, json_t *args, int nids);

/**
 * Sends a plain command into the next slot of parts (its reply as JSON: strings,
 * integers, nil, flat arrays). Returns the issue error (also recorded).
 */
int sb__fan_cmd(sb__fan_t *f, int argc, const char **argv);

/** Answers the caller with result (borrowed) or the recorded failure; frees f. */
void sb__fan_finish(sb__fan_t *f, json_t *result);

/** A flat [k, v, k, v…] reply (HGETALL) as an object (new reference). */
json_t *sb__store_pairs_object(const json_t *flat);

#endif

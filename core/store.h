/* SPDX-License-Identifier: MIT */
/*
 * The store: a C API over the `switchboard` Redis Function library (functions.lua).
 * Every operation is one round trip and atomic in Redis. The store picks a
 * conversation's shard (DESIGN §2: crc16(cid) % shards) and generates the ids the
 * functions need; new conversations are created in the shard of their contact, so all
 * conversations of one customer live in one shard (needed for atomic "latest
 * conversation of this contact" lookups and reopen-on-reply).
 *
 * Callback guarantee: if an operation returns an error the callback never runs;
 * otherwise it runs exactly once on the loop with status 0 and a result, or a negative
 * SB_E* (SB_ENOTFOUND, SB_ECONFLICT, SB_EFORBIDDEN, SB_EINVAL from the functions;
 * SB_ETIMEDOUT, SB_EDISCONNECTED, SB_EREDIS from the connection) with result NULL or,
 * for SB_ECONFLICT, a JSON body describing the conflict. `result` and `errmsg` are
 * borrowed: valid only during the callback (json_incref to keep the result).
 */
#ifndef SB_STORE_H
#define SB_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/redis.h"

typedef struct sb_store sb_store_t;

typedef void (*sb_store_cb)(int status, json_t *result, const char *errmsg, void *data);

typedef struct sb_store_opts {
    const char *prefix;       /* key prefix, default "sb:" */
    unsigned shards;          /* default 16 */
    int64_t reopen_window_ms; /* default 7 days */
    uint64_t events_maxlen;   /* default 100000 */
    uint32_t dedup_ttl_s;     /* default 7 days */
} sb_store_opts_t;

/** A customer message to ingest. Strings are borrowed for the call. */
typedef struct sb_ingest {
    const char *channel;       /* webchat, email, mastodon, bluesky, api */
    const char *contact_id;    /* resolved contact (ct_…) */
    const char *contact_name;  /* optional */
    bool contact_verified;
    const char *conv;          /* optional: append to this conversation */
    const char *text;
    const char *subject;       /* optional */
    const char *external_id;   /* optional: idempotency per channel */
    const char *client_id;     /* optional: idempotency per contact */
    const json_t *attachments; /* optional array (borrowed) */
    const json_t *ext;         /* optional object (borrowed) */
} sb_ingest_t;

/** Who acts: {"type":"staff"|"bot"|"system","id":…,"name":…}. */
typedef struct sb_actor {
    const char *type;
    const char *id;
    const char *name;
    bool admin; /* may steal claims, release others' claims */
} sb_actor_t;

/** Creates a store over a connected-or-connecting client (borrowed; must outlive it). */
int sb_store_new(sb_redis_t *redis, const sb_store_opts_t *opts, sb_store_t **out);
/** Frees the store (pending callbacks must have run: stop the redis client first). */
void sb_store_free(sb_store_t *st);

/**
 * Loads the function library (FUNCTION LOAD REPLACE). Call from the redis client's
 * on_connect hook: commands sent after it run after the load. sb_store_ready() is
 * true once a load succeeded on the current connection.
 */
void sb_store_on_connect(sb_store_t *st);
/** Marks the functions unloaded (call from the on_disconnect hook). */
void sb_store_on_disconnect(sb_store_t *st);
bool sb_store_ready(const sb_store_t *st);

/** The shard of a conversation or contact id. */
unsigned sb_store_shard(const sb_store_t *st, const char *id);
/** The options in force. */
const sb_store_opts_t *sb_store_opts(const sb_store_t *st);

/**
 * Ingests a customer message. Result: {"duplicate":b,"created":b,"reopened":b,
 * "message":{…},"conversation":{…}}. A repeated external_id/client_id returns the
 * first message with duplicate=true and stores nothing.
 */
int sb_store_ingest(sb_store_t *st, const sb_ingest_t *in, sb_store_cb cb, void *data);

/**
 * A staff or bot reply. based_on (optional): if a customer message or public reply
 * newer than that seq exists and !force, fails with SB_ECONFLICT and result
 * {"conflict":true,"messages":[…],"conversation":{…}}.
 */
int sb_store_reply(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                   const char *client_id, const char *based_on, bool force, sb_store_cb cb,
                   void *data);

/** An internal note. */
int sb_store_note(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                  const char *client_id, sb_store_cb cb, void *data);

/**
 * A state change: action is claim, release, resolve, reopen, snooze, priority or tags;
 * args (borrowed, may be NULL) carries "steal", "until", "priority", "tags".
 * Result {"changed":b,"event":{…}|null,"conversation":{…}}.
 */
int sb_store_act(sb_store_t *st, const char *conv, const char *action, const sb_actor_t *who,
                 json_t *args, sb_store_cb cb, void *data);

/** A conversation's state (DESIGN §4). */
int sb_store_get(sb_store_t *st, const char *conv, sb_store_cb cb, void *data);

/** Transcript page after `after` (exclusive; NULL = from the start): {"items":[…],"next":…}. */
int sb_store_messages(sb_store_t *st, const char *conv, const char *after, unsigned limit,
                      sb_store_cb cb, void *data);

/**
 * Finds or creates the contact for a handle (kind "email", "api", "visitor", …).
 * Result {"id":"ct_…","created":b}. name/email (optional) are stored on creation.
 */
int sb_store_contact_resolve(sb_store_t *st, const char *kind, const char *value,
                             const char *name, const char *email, sb_store_cb cb, void *data);

/**
 * Looks up a bearer token (hashed with SHA-256): result is the token's hash fields
 * as an object ({"kind":"staff","id":"st_…","role":"admin","name":…}); SB_ENOTFOUND when
 * unknown or revoked.
 */
int sb_store_token_lookup(sb_store_t *st, const char *token, sb_store_cb cb, void *data);

/** Writes the Redis key of a token into out: "<prefix>token:<sha256hex>". */
void sb_store_token_key(const char *prefix, const char *token, char *out, size_t cap);

/** Maps a function error reply ("NOTFOUND …") to an SB_E* code. */
int sb_store_error_code(const char *errmsg);

#endif

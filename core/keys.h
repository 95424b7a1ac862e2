/* SPDX-License-Identifier: MIT */
/*
 * Redis key names: the one place in C that spells them (docs/redis-keys.md lists every
 * key, its type and who writes it). Every key starts with the configured prefix
 * (default "sb:"). Keys of one conversation's atomic operations carry the shard's hash
 * tag, `<prefix>{N}:…`, N = crc16(id) % shards (sb_store_shard), so one Function call
 * only ever touches one cluster slot; contacts, handles, tokens and presence live
 * outside the shards.
 *
 *   <prefix>{N}:conv:<cid>       <prefix>contact:<ctid>
 *   <prefix>{N}:log:<cid>        <prefix>contact:<ctid>:idents
 *   <prefix>{N}:events           <prefix>ident:<kind>:<value>
 *   <prefix>{N}:<index>          <prefix>token:<sha256 hex of the token>
 *   <prefix>{N}:outbox:<channel> <prefix>presence
 *                                <prefix>staff:<sid>, <prefix>bot:<id>
 *                                <prefix>webhooks
 *                                <prefix>mid:<external message id>
 *                                <prefix>cursor:<connector cursor name>
 *
 * core/functions.lua builds the shard keys itself, from the same prefix and shard
 * (`ctx.pre` = "<prefix>{N}:" then "conv:", "log:", "events", "queue", …): the two
 * must agree, and tests/integration/test_keys_lua.c checks that they do by reading, with
 * the keys named here, what the Functions wrote.
 *
 * A key is built into a sb_key_t: at most SB_KEY_MAX bytes with its NUL (room for the
 * longest prefix, SB_PREFIX_MAX, and any rest below). Like sb_buf, an error is sticky
 * and nothing is ever truncated: a key that does not fit leaves `err` = SB_ETOOBIG and
 * `str` empty, so a forgotten check can never address another key.
 */
#ifndef SB_KEYS_H
#define SB_KEYS_H

#include <stddef.h>

#include "core/config.h"

/** A Redis key being built (caller's storage, no cleanup needed). */
typedef struct sb_key {
    size_t len;           /* bytes in str, without the NUL */
    int err;              /* 0, or SB_ETOOBIG once a part did not fit (sticky) */
    char str[SB_KEY_MAX]; /* NUL-terminated; "" after an error */
} sb_key_t;

/*
 * Every builder below (re)starts k and returns 0 or SB_ETOOBIG (then k->str is "").
 * Strings are borrowed for the call; prefix is the configured key prefix.
 */

/** `<prefix>{<shard>}:<name>`: a shard-wide key (events, queue, idle, rt, counts…). */
int sb_key_shard(sb_key_t *k, const char *prefix, unsigned shard, const char *name);
/** `<prefix>{<shard>}:`: what functions.lua prepends to every key of that shard. */
int sb_key_shard_prefix(sb_key_t *k, const char *prefix, unsigned shard);
/** `<prefix>{<shard>}:events`: the shard's event stream (every Function's routing key). */
int sb_key_events(sb_key_t *k, const char *prefix, unsigned shard);
/** `<prefix>{<shard>}:queue`: open conversations awaiting a reply, by SLA urgency. */
int sb_key_queue(sb_key_t *k, const char *prefix, unsigned shard);
/** `<prefix>{<shard>}:rt`: recent staff response times (a capped stream). */
int sb_key_rt(sb_key_t *k, const char *prefix, unsigned shard);
/** `<prefix>{<shard>}:conv:<cid>`: a conversation's state (a hash). */
int sb_key_conv(sb_key_t *k, const char *prefix, unsigned shard, const char *cid);
/** `<prefix>{<shard>}:log:<cid>`: a conversation's transcript (a stream). */
int sb_key_log(sb_key_t *k, const char *prefix, unsigned shard, const char *cid);
/** `<prefix>{<shard>}:outbox:<channel>`: replies waiting for a channel's connector. */
int sb_key_outbox(sb_key_t *k, const char *prefix, unsigned shard, const char *channel);
/** `<prefix>{N}:dlv:<cid>`: the delivery state of a conversation's outbound replies (a
 *  hash, message id -> JSON; docs/delivery.md). */
int sb_key_dlv(sb_key_t *k, const char *prefix, unsigned shard, const char *cid);

/** `<prefix>contact:<ctid>`: a contact (a hash). */
int sb_key_contact(sb_key_t *k, const char *prefix, const char *ctid);
/** `<prefix>contact:<ctid>:idents`: the handles pointing at a contact (a set). */
int sb_key_contact_idents(sb_key_t *k, const char *prefix, const char *ctid);
/** `<prefix>ident:<kind>:<value>`: a handle -> its contact id (a string). */
int sb_key_ident(sb_key_t *k, const char *prefix, const char *kind, const char *value);
/** `<prefix>ident:<handle>`, handle already "kind:value" (as stored in an idents set). */
int sb_key_handle(sb_key_t *k, const char *prefix, const char *handle);
/** `<prefix>token:<hex SHA-256 of token>`: a bearer token's principal (a hash). */
int sb_key_token(sb_key_t *k, const char *prefix, const char *token);
/** `<prefix>presence`: staff online, one field per staff member and node (a hash). */
int sb_key_presence(sb_key_t *k, const char *prefix);
/** `<prefix><kind>:<id>`, kind "staff" or "bot": a principal's record (a hash). */
int sb_key_principal(sb_key_t *k, const char *prefix, const char *kind, const char *id);
/** `<prefix>webhooks`: the bots with an outbound webhook (a set of bot ids). */
int sb_key_webhooks(sb_key_t *k, const char *prefix);
/** `<prefix>notify`: staff members who get notification mail, id → new|assigned (a hash). */
int sb_key_notify(sb_key_t *k, const char *prefix);
/** <prefix>staff_index: the ids of every staff member (set; sbctl keeps it). */
int sb_key_staff_index(sb_key_t *k, const char *prefix);
/** `<prefix>once:<name>`: done-once markers with an expiry (sb_store_once). */
int sb_key_once(sb_key_t *k, const char *prefix, const char *name);
/** `<prefix>canned`: the shared canned replies, shortcut → JSON (a hash; docs/canned.md). */
int sb_key_canned(sb_key_t *k, const char *prefix);
/** `<prefix>notif:<sid>`: a staff member's console notifications (a zset, by time). */
int sb_key_notif(sb_key_t *k, const char *prefix, const char *sid);
/** `<prefix>notif_read:<sid>`: the time (ms) up to which they have read them (a string). */
int sb_key_notif_read(sb_key_t *k, const char *prefix, const char *sid);
/** `<prefix>token:*`: a SCAN pattern over every token record (sbctl). */
int sb_key_token_pattern(sb_key_t *k, const char *prefix);
/** `<prefix>dead:<lane>`: an outbox lane's dead letters (a capped stream, docs/outbox.md). */
int sb_key_dead(sb_key_t *k, const char *prefix, const char *lane);
/** Longest external message id kept in a `mid:` key as it is (longer ones are hashed). */
#define SB_KEY_MID_RAW_MAX 200

/**
 * `<prefix>mid:<id>`: an external message id (an email Message-ID without its angle
 * brackets, a status id…) -> the conversation and message it belongs to (a string,
 * core/store_thread.c). The id is used as it is when it has 1 to SB_KEY_MID_RAW_MAX bytes,
 * all printable ASCII except '{' and '}' (no hash tag: these keys live outside the shards)
 * and does not start with "sha256:"; any other id becomes `mid:sha256:<hex SHA-256 of the
 * id>`, so two different ids never share a key.
 */
int sb_key_mid(sb_key_t *k, const char *prefix, const char *id);
/** `<prefix>cursor:<name>`: a connector's position in its source (a hash of strings). */
int sb_key_cursor(sb_key_t *k, const char *prefix, const char *name);
/**
 * Puts a built key into a new string (sb_strdup), or NULL when building it failed (the
 * key did not fit): for keys kept for a component's life.
 */
char *sb_key_dup(const sb_key_t *k);

#endif

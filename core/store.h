/* SPDX-License-Identifier: MIT */
/*
 * The store: a C API over the `switchboard` Redis Function library (functions.lua).
 * Every operation is one round trip and atomic in Redis. The store picks a
 * conversation's shard (docs/contract.md §2: crc16(cid) % shards) and generates the ids the
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
#include "core/util.h"

typedef struct sb_store sb_store_t;

typedef void (*sb_store_cb)(int status, json_t *result, const char *errmsg, void *data);

typedef struct sb_store_opts {
    const char *prefix;       /* key prefix, default "sb:" */
    unsigned shards;          /* default 16 */
    int64_t reopen_window_ms; /* default 7 days */
    uint64_t events_maxlen;   /* default 100000 */
    uint32_t dedup_ttl_s;     /* default 7 days */
    uint32_t thread_ttl_s;    /* threading ids (sb_store_thread_link) expire; 0 = kept */
    bool sla;                 /* some SLA policy is configured: keep clocks (docs/sla.md) */
} sb_store_opts_t;

/** A customer message to ingest. Strings are borrowed for the call. */
typedef struct sb_ingest {
    const char *channel;      /* webchat, email, mastodon, bluesky, api */
    const char *contact_id;   /* resolved contact (ct_…) */
    const char *contact_name; /* optional */
    bool contact_verified;
    /* optional: append to this conversation, which must be contact_id's on channel
     * (SB_ECONFLICT otherwise: a message never lands in another customer's conversation) */
    const char *conv;
    const char *text;
    const char *subject;       /* optional */
    const char *external_id;   /* optional: idempotency per channel */
    const char *client_id;     /* optional: idempotency per contact */
    const json_t *attachments; /* optional array (borrowed) */
    const json_t *ext;         /* optional object (borrowed) */
    /* an automatic message (auto-reply, out-of-office, bounce, list mail): stored with
     * "auto":true, it never reopens, queues or starts a wait (docs/threading.md) */
    bool automatic;
    /* with conv: that conversation may be on another channel (a web chat continued by
     * mail: the message keeps its own channel); the contact must still be its own */
    bool cross_channel;
    /* without conv: always a new conversation, never the contact's latest on the channel
     * (a mail that threads nowhere is a new matter, as in any helpdesk) */
    bool new_conversation;
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
 * first message with duplicate=true and stores nothing. An automatic message
 * (in->automatic) joins the conversation a customer message would but leaves its status,
 * queue place and awaiting_since as they were; where it would start a conversation, the
 * new one is created resolved (docs/threading.md).
 */
int sb_store_ingest(sb_store_t *st, const sb_ingest_t *in, sb_store_cb cb, void *data);

/** A store result as the function's JSON text, unparsed (json borrowed for the call;
 * NULL with an error status). */
typedef void (*sb_store_raw_cb)(int status, const char *json, size_t len, const char *errmsg,
                                void *data);

/**
 * sb_store_ingest for hot paths: the result is not parsed (jansson was a third of the
 * web chat's CPU time); sb_store_ingest_head reads the fields an ack needs.
 */
int sb_store_ingest_raw(sb_store_t *st, const sb_ingest_t *in, sb_store_raw_cb cb, void *data);

/** The fields of an ingest result an acknowledgement needs. */
typedef struct sb_ingest_head {
    bool duplicate;
    char id[SB_ID_MAX], conv[SB_ID_MAX], seq[48];
} sb_ingest_head_t;

/** Reads them from an ingest result's JSON text; SB_EINVAL if it is not shaped as expected. */
int sb_store_ingest_head(const char *json, size_t len, sb_ingest_head_t *out);

/**
 * A staff or bot reply. based_on (optional): if a customer message or public reply
 * newer than that seq exists and !force, fails with SB_ECONFLICT and result
 * {"conflict":true,"messages":[…],"conversation":{…}}.
 */
int sb_store_reply(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                   const char *client_id, const char *based_on, bool force, sb_store_cb cb,
                   void *data);

/**
 * Something addressed to conv over channel was refused and never reached the customer (a
 * forged staff answer by mail): a `rejected` event {channel, from, reason} by the system.
 * Result {"event":{…}}. SB_ENOTFOUND for an unknown conversation.
 */
int sb_store_rejected(sb_store_t *st, const char *conv, const char *channel, const char *from,
                      const char *reason, sb_store_cb cb, void *data);

/** An internal note. */
int sb_store_note(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                  const char *client_id, sb_store_cb cb, void *data);

/**
 * A state change: action is claim, release, assign, resolve, reopen, snooze, priority,
 * tags or handoff; args (borrowed, may be NULL) carries "steal", "until", "priority",
 * "tags", "reason", "to" (assign: the new assignee, absent or null to unassign; the caller
 * checks it is a staff member on duty for the channel). A claim held by someone else fails with
 * SB_ECONFLICT, or with SB_EFORBIDDEN when a non-admin asks to steal it. handoff (bot -> humans)
 * reopens the conversation if needed and puts it in the queue as awaiting a reply. Result
 * {"changed":b,"event":{…}|null,"conversation":{…}}.
 */
int sb_store_act(sb_store_t *st, const char *conv, const char *action, const sb_actor_t *who,
                 json_t *args, sb_store_cb cb, void *data);

/** A conversation's state (docs/contract.md §4). */
int sb_store_get(sb_store_t *st, const char *conv, sb_store_cb cb, void *data);

/** Transcript page after `after` (exclusive; NULL = from the start): {"items":[…],"next":…}. */
int sb_store_messages(sb_store_t *st, const char *conv, const char *after, unsigned limit,
                      sb_store_cb cb, void *data);

/**
 * The newest customer-visible messages (kind "message") strictly between `after` and
 * `before` (each NULL = unbounded), oldest first, at most `limit` and about `max_bytes` of
 * JSON (at least one): {"items":[…],"next":"SEQ"|null}; next is the `before` of the next
 * older page, null when none is left. SB_ENOTFOUND for an unknown conversation.
 */
int sb_store_public_page(sb_store_t *st, const char *conv, const char *before, const char *after,
                         unsigned limit, size_t max_bytes, sb_store_cb cb, void *data);

/**
 * Finds or creates the contact for a handle (kind "email", "api", "visitor", …).
 * Result {"id":"ct_…","created":b}. name/email (optional) are stored on creation, and the
 * handle joins the new contact's set of handles (`<prefix>contact:<id>:idents`).
 */
int sb_store_contact_resolve(sb_store_t *st, const char *kind, const char *value, const char *name,
                             const char *email, sb_store_cb cb, void *data);

/**
 * Checks that a contact exists (its hash): result {"id":…,"merged_into":"ct_…"|null}, or
 * SB_ENOTFOUND. merged_into is the live contact at the end of the merged_into links (a
 * contact merged into one that was merged in turn). One HMGET per link, for callers that
 * name a contact by id.
 */
int sb_store_contact_find(sb_store_t *st, const char *contact, sb_store_cb cb, void *data);

/** The contact's latest conversation on a channel: its state, or JSON null (status 0). */
int sb_store_contact_latest(sb_store_t *st, const char *contact, const char *channel,
                            sb_store_cb cb, void *data);

/** Reads a handle: result {"id":"ct_…"} or SB_ENOTFOUND. */
int sb_store_ident_get(sb_store_t *st, const char *kind, const char *value, sb_store_cb cb,
                       void *data);

/**
 * Points a handle at a contact (replacing). Result {"id":…}. Keeps the contacts' sets
 * of handles (`<prefix>contact:<id>:idents`, used by merges) in step.
 */
int sb_store_ident_set(sb_store_t *st, const char *kind, const char *value, const char *contact,
                       sb_store_cb cb, void *data);

/** Sets one field of a contact's hash (name, email…). Result {"id":…}. */
int sb_store_contact_set(sb_store_t *st, const char *contact, const char *field, const char *value,
                         sb_store_cb cb, void *data);

/**
 * Publishes an ephemeral event (typing, presence) on the conversation's shard events
 * stream: delivered live like any event, never part of the transcript. json is the
 * whole event object. cb may be NULL.
 */
int sb_store_publish(sb_store_t *st, const char *conv, const char *json, sb_store_cb cb,
                     void *data);

/**
 * Recent staff response times (ms from the oldest unanswered customer message to the
 * human reply), newest first, up to `per_shard` from every shard:
 * {"samples":[{"ms":N,"channel":"…"},…]}.
 */
int sb_store_response_times(sb_store_t *st, unsigned per_shard, sb_store_cb cb, void *data);

/* ---- Operations over every shard (store_lists.c, store_merge.c, store_stats.c) ---- */

/** A conversation list query (GET /v1/conversations). Strings are borrowed for the call. */
typedef struct sb_list_query {
    const char *status;   /* open (default), pending, snoozed, resolved or all */
    const char *assignee; /* NULL or "any": anyone; "none": unassigned; else a staff id */
    const char *channel;  /* NULL: every channel */
    unsigned limit;       /* 1..200; 0 = 50 */
    const char *cursor;   /* the "next" of the previous page, or NULL for the first */
} sb_list_query_t;

/**
 * Lists conversations across all shards, most urgent first: status open walks the queue
 * (awaiting a reply, by SLA urgency) and then the open conversations nobody waits on
 * (oldest first); pending and snoozed are oldest first / soonest wake-up first; resolved
 * is newest first; all is those in that order. Result {"items":[conversation…],
 * "next":cursor|null}; a page may hold fewer than limit items while next is not null.
 * Returns SB_EINVAL for an unknown status, a limit over 200 or a malformed cursor.
 */
int sb_store_list(sb_store_t *st, const sb_list_query_t *q, sb_store_cb cb, void *data);

/**
 * A contact: its hash fields (id, name, email, handle, created_at, merged_into…) plus
 * "handles" (every ident pointing at it) and "conversations" (all of them, every channel
 * and shard, newest first). SB_ENOTFOUND when it has neither fields nor conversations.
 */
int sb_store_contact_get(sb_store_t *st, const char *contact, sb_store_cb cb, void *data);

/**
 * Merges contact `other` into `into`: other is marked merged_into, fields `into` lacks
 * are copied, every handle of other is pointed at into, and other's conversations (on
 * every shard) become into's, each with a `merged` event by `who`. Several round trips,
 * each idempotent: after a failure, calling it again finishes the job. Result
 * {"id":into,"merged":other,"moved":[cid…],"handles":[…]} (moved/handles: this call's).
 * SB_EINVAL for bad ids or into == other; SB_ENOTFOUND when either contact is unknown;
 * SB_ECONFLICT when into was merged away, or other was merged into a third contact.
 */
int sb_store_contact_merge(sb_store_t *st, const char *into, const char *other,
                           const sb_actor_t *who, sb_store_cb cb, void *data);

/**
 * Queue and response-time figures over all shards: {"queue_depth":N,"open":N,
 * "by_status":{…},"by_channel":{"<ch>":{"open":N,"queue":N}},"first_response_ms":
 * {"<ch>":{"p50":ms,"p90":ms,"n":N}},"breaches":N,"staff_online":N}. Response times are
 * the recent first staff replies (the last ~1000 samples of each shard); staff_online is
 * sb_store_online's count.
 */
int sb_store_stats(sb_store_t *st, sb_store_cb cb, void *data);

/** Conversations one sb_store_wake call wakes at most. */
#define SB_STORE_WAKE_BATCH 8

/**
 * Wakes the snoozed conversations of one shard whose time has passed: each goes back to
 * open and into the queue with a `woke` event, exactly once even with several nodes
 * calling. Result {"woke":[cid…],"more":b}; more = call again, there may be others due.
 */
int sb_store_wake(sb_store_t *st, unsigned shard, sb_store_cb cb, void *data);

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

/* ---- Web chat answers that go on by mail (store_followup.c; docs/email.md) ---- */

/**
 * Schedules staff answer mid (seq in conv) to be mailed at due_ms unless the visitor sees
 * it first (sb_store_seen). Once per answer whoever schedules it. Result {}.
 */
int sb_store_followup_add(sb_store_t *st, const char *conv, const char *mid, const char *seq,
                          uint64_t due_ms, sb_store_cb cb, void *data);

/** A visitor's widget showed conv up to seq (only ever moves forward). cb may be NULL. */
int sb_store_seen(sb_store_t *st, const char *conv, const char *seq, sb_store_cb cb, void *data);

/**
 * Up to limit (0: 50) scheduled answers of a shard that are due and not seen (seen ones are
 * dropped): {"due":[{"conv","mid","seq"}]}.
 */
int sb_store_followup_due(sb_store_t *st, unsigned shard, unsigned limit, sb_store_cb cb,
                          void *data);

/**
 * Takes a due answer off the schedule: send puts it into outbox:email (field followup=1),
 * atomically and once across nodes ({"sent":true} for the one that did); !send drops it.
 */
int sb_store_followup_take(sb_store_t *st, const char *conv, const char *mid, const char *seq,
                           bool send, sb_store_cb cb, void *data);

/* ---- SLA timers (store_sla.c; docs/sla.md) ---- */

/**
 * A shard's due SLA work, up to limit (0: 200) conversations: those whose clocks changed
 * come back to be planned ({"plan":[state…]}, leased for 5 s), planned steps that are due
 * fire as events (nids message ids are passed for them; "more":true when they ran out or
 * the limit was reached). Result {"plan":[…],"fired":N,"more":b}.
 */
int sb_store_sla_tick(sb_store_t *st, unsigned shard, unsigned limit, unsigned nids, sb_store_cb cb,
                      void *data);

/** Stores plans (a JSON array, stolen; core/sla.h) made for a shard: {"applied":N}. */
int sb_store_sla_set(sb_store_t *st, unsigned shard, json_t *plans, sb_store_cb cb, void *data);

/* ---- Staff as connectors see them (store_staff.c) ---- */

/**
 * The staff members who want notification mail (sbctl staff notify): result
 * {"staff":[{"id","notify":"new"|"assigned","name","email"}]}.
 */
int sb_store_notify_list(sb_store_t *st, sb_store_cb cb, void *data);

/**
 * Every staff member, with what SLA targets are expanded against (core/sla_targets.h):
 * result {"staff":[{"id","name","email","role","channels":null|["webchat",…],
 * "notify":"new"|"assigned"|"none"}]}, unordered. Reads the ids from `staff_index` (sbctl
 * keeps it); the first call of a process also SCANs the `staff:*` records once and adopts
 * any older than the index. Callers cache it for a few seconds.
 */
int sb_store_staff_list(sb_store_t *st, sb_store_cb cb, void *data);

/** sb_store_staff_cached's callback: staff is the "staff" array (borrowed for the call), the
 * last one read when a reload failed (status then says why), NULL when none was ever read. */
typedef void (*sb_store_staff_cb)(int status, const json_t *staff, void *data);

/**
 * The staff list as sb_store_staff_list reads it, kept by the store for every caller on
 * this node: cb runs at once while the list is younger than ttl_ms, else after one read
 * shared by all who ask meanwhile, in the order they asked. cb always runs exactly once
 * (at once when the read cannot even be sent). The callers are the SLA notifiers
 * (gateway/notifications.c, connectors/email/notify_sla.c).
 */
void sb_store_staff_cached(sb_store_t *st, uint32_t ttl_ms, sb_store_staff_cb cb, void *data);

/**
 * A once-only marker: result {"first":true} for the first caller of name within ttl_s
 * seconds (on any node), {"first":false} after. SB_EINVAL for an empty or too long name.
 */
int sb_store_once(sb_store_t *st, const char *name, unsigned ttl_s, sb_store_cb cb, void *data);

/**
 * The staff online now, from the presence hash the gateway's live feeds keep
 * (gateway/api_feed.c): result {"staff":["st_…",…],"online":N}, each member once however
 * many nodes and feeds they have open, expired fields ignored. Presence carries no channel
 * scope: everyone online counts for every channel.
 */
int sb_store_online(sb_store_t *st, sb_store_cb cb, void *data);
/* ---- Console notifications (store_notif.c; docs/sla.md, "Notifications") ---- */

/** The newest notifications a staff member keeps (older ones are trimmed). */
#define SB_STORE_NOTIF_KEEP 500

/**
 * Adds one notification (a compact JSON text, borrowed, the same bytes on every node)
 * at score ts to each of the n staff ids in sids, each list trimmed to the newest
 * SB_STORE_NOTIF_KEEP. Adding a member already there changes nothing. Result
 * {"added":N} (new entries over all lists). SB_EINVAL for a bad id or n == 0.
 */
int sb_store_notif_add(sb_store_t *st, const char *const *sids, size_t n, long long ts,
                       const char *member, sb_store_cb cb, void *data);

/**
 * A staff member's newest notifications: result {"items":[{…}…] newest first (at most
 * limit, 1..SB_STORE_NOTIF_KEEP), "unread":N (those newer than the read mark),
 * "read_until":ms}. SB_EINVAL for a bad id or limit.
 */
int sb_store_notif_list(sb_store_t *st, const char *sid, unsigned limit, sb_store_cb cb,
                        void *data);

/**
 * Marks the notifications up to until_ms as read (the mark only moves forward): result
 * {"unread":N,"read_until":ms}. SB_EINVAL for a bad id or a negative time.
 */
int sb_store_notif_read(sb_store_t *st, const char *sid, long long until_ms, sb_store_cb cb,
                        void *data);

/* ---- Canned replies (store_canned.c; docs/canned.md) ---- */

#define SB_CANNED_MAX          1000 /* entries at most */
#define SB_CANNED_SHORTCUT_MAX 32
#define SB_CANNED_TITLE_MAX    200

/** True for a shortcut of 1..SB_CANNED_SHORTCUT_MAX characters of [a-z0-9_-]. */
bool sb_canned_shortcut_valid(const char *s);
/**
 * Checks a canned reply before it is stored: the shortcut, a one-line title (may be empty,
 * at most SB_CANNED_TITLE_MAX bytes) and the text (sb_text_check, SB_MAX_TEXT). Returns 0
 * or an SB_E* code with *why a static sentence for the caller.
 */
int sb_canned_check(const char *shortcut, const char *title, const char *text, const char **why);
/** Every canned reply: result {"items":[{shortcut,title,text,created_by,updated_by,updated_at}…]}
 * sorted by shortcut. */
int sb_store_canned_list(sb_store_t *st, sb_store_cb cb, void *data);
/**
 * Creates or replaces a canned reply as staff id `by` (a replace keeps the first author):
 * result {"created":bool,"item":{…}}. SB_EINVAL for bad input (sb_canned_check), the
 * callback gets SB_ECONFLICT when SB_CANNED_MAX entries exist and this one is new.
 */
int sb_store_canned_put(sb_store_t *st, const char *shortcut, const char *title, const char *text,
                        const char *by, sb_store_cb cb, void *data);
/**
 * Deletes a canned reply as `by`: allowed for its author, or anyone when `any` (admins).
 * Result {"deleted":true}; the callback gets SB_ENOTFOUND or SB_EFORBIDDEN.
 */
int sb_store_canned_delete(sb_store_t *st, const char *shortcut, const char *by, bool any,
                           sb_store_cb cb, void *data);

/* ---- Delivery outcomes (store_delivery.c; docs/delivery.md) ---- */

/**
 * Counts channel as served by a running connector on this node: replies on it are stored
 * (and go to its outbox), retries are accepted. webchat and api are served from the start;
 * the daemon adds the channel of every connector it started. The list is copied.
 * 0, or SB_EINVAL for a name that is not a channel name ([a-z0-9_-], at most 31 bytes).
 * A reply on a channel not served fails with SB_EUNAVAILABLE and stores nothing.
 */
int sb_store_serve(sb_store_t *st, const char *channel);

/** Bytes of a provider's reason or id kept in the transcript (longer text is cut). */
#define SB_DELIVERY_MAX_TEXT 1000

/**
 * The outcome of one delivery attempt of an outbound message. Strings are borrowed;
 * reason and provider_id are cut to SB_DELIVERY_MAX_TEXT bytes, and replaced by a note
 * when they are not valid UTF-8.
 */
typedef struct sb_delivery {
    const char *conv, *mid, *channel, *account; /* account "" (or NULL) when none */
    bool ok, final;                             /* final=false: will be retried at retry_at */
    bool bounce;        /* a failure reported after the provider took it (a bounce): may follow a
                           delivered; the event says bounce:true */
    const char *reason; /* "" when ok */
    const char *provider_id; /* "" when none */
    uint64_t retry_at;       /* ms; 0 when ok or final */
} sb_delivery_t;

/**
 * Records an outcome, atomically: a `delivered` (ref = mid, provider_id) or
 * `delivery_failed` (ref, reason, final, retry_at) event in the conversation's transcript
 * and events stream, and the message's delivery state. Result
 * {"recorded":true,"event":{…},"state":{…}}, or {"recorded":false,"state":"delivered"}
 * when the message was already recorded delivered (or "failed" when it already failed
 * for good and this is another final failure): a crash between recording and XACK
 * repeats nothing. SB_ENOTFOUND for an unknown conversation or a message that is not one
 * of its outbound messages; SB_EINVAL for malformed ids or channel (before any call).
 */
int sb_store_delivery_record(sb_store_t *s, const sb_delivery_t *d, sb_store_cb cb, void *data);

/**
 * A message's delivery state: {"mid","seq","channel","account","state":"delivered"|
 * "failed"|"pending","final","reason","provider_id","retry_at","attempts","retries",
 * "updated_at"}, or JSON null when nothing was recorded for it. SB_ENOTFOUND for an
 * unknown conversation.
 */
int sb_store_delivery_state(sb_store_t *s, const char *conv, const char *mid, sb_store_cb cb,
                            void *data);

/**
 * Retries a message whose last outcome was a final failure: puts it back in its channel's
 * outbox (the entry a reply writes), sets its state to pending and appends a
 * `delivery_retry` event by who. Result {"state":{…},"event":{…}}. SB_ECONFLICT when the
 * message is not in a final failure (delivered, pending, failed but still being retried,
 * or never attempted); SB_ENOTFOUND for an unknown conversation or message;
 * SB_EUNAVAILABLE when no connector on this node serves its channel.
 */
int sb_store_delivery_retry(sb_store_t *s, const char *conv, const char *mid, const sb_actor_t *who,
                            sb_store_cb cb, void *data);

/* ---- Threading and connector cursors (store_thread.c; docs/threading.md) ---- */

/** Threading candidates one sb_store_thread_find looks at, at most: refs, then convs. */
#define SB_THREAD_MAX_REFS  32
#define SB_THREAD_MAX_CONVS 8

/**
 * Finds the conversation an inbound message continues. refs are external message ids the
 * message answers (an email's In-Reply-To, then its References newest first), each
 * looked up in `<prefix>mid:` (sb_store_thread_link); convs are conversation ids the
 * connector decoded (a reply address, then a subject tag). The first candidate, refs
 * before convs and each list in its order, whose conversation exists, is on channel and
 * belongs to contact (or to the contact either was merged into) wins: nobody joins
 * another customer's conversation by copying a Message-ID or a subject tag. Result
 * {"conv":"c_…"|null,"via":"ref"|"conv"|null,"rejected":N}, rejected = the distinct
 * conversations among the candidates that exist but are not the contact's on channel
 * (for logs). Empty or NULL entries and conv entries that are not conversation ids are
 * skipped; refs past SB_THREAD_MAX_REFS and convs past SB_THREAD_MAX_CONVS are ignored.
 * SB_EINVAL for an empty channel or a contact that is not a contact id. Strings are
 * borrowed for the call. Every command touches one key or one shard (Redis Cluster).
 */
int sb_store_thread_find(sb_store_t *st, const char *channel, const char *contact,
                         const char *const *refs, size_t nrefs, const char *const *convs,
                         size_t nconvs, sb_store_cb cb, void *data);

/**
 * Records that the external message ids `ids` belong to conversation conv and message msg
 * (an m_ id, or NULL when there is none): the inbound message's own id after its ingest,
 * or the Message-ID of one of our replies before its outbox entry is acknowledged. An id
 * already recorded keeps its first conversation (nobody re-points a thread by reusing an
 * id). With thread_ttl_s the records expire. Result {"linked":N,"existing":M} (ids newly
 * recorded, ids that were already). SB_EINVAL for a bad conv or msg id, n == 0, or an
 * empty id.
 */
int sb_store_thread_link(sb_store_t *st, const char *conv, const char *msg, const char *const *ids,
                         size_t n, sb_store_cb cb, void *data);

/**
 * What sb_store_thread_link recorded for an external message id: {"conv":"c_…",
 * "msg":"m_…"|null}, or JSON null (status 0) when nothing was. SB_EINVAL for an empty id.
 */
int sb_store_thread_get(sb_store_t *st, const char *id, sb_store_cb cb, void *data);

/** Longest connector cursor name (bytes). */
#define SB_CURSOR_NAME_MAX 128

/**
 * A connector's cursor (its position in its source: an IMAP mailbox's UIDVALIDITY and
 * last UID, a Mastodon account's since_id…), `<prefix>cursor:<name>`: an object of its
 * string fields, {} when none was set. name is 1..SB_CURSOR_NAME_MAX bytes of
 * [A-Za-z0-9_.:@+-], e.g. "email:support"; SB_EINVAL otherwise.
 */
int sb_store_cursor_get(sb_store_t *st, const char *name, sb_store_cb cb, void *data);

/**
 * Sets fields of a connector's cursor (one HSET; other fields are left as they are).
 * fields (borrowed) is an object of 1..64 string values with non-empty names. Result
 * {"name":…}. SB_EINVAL for a bad name or fields.
 */
int sb_store_cursor_set(sb_store_t *st, const char *name, const json_t *fields, sb_store_cb cb,
                        void *data);

#endif

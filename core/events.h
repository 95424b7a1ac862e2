/* SPDX-License-Identifier: MIT */
/*
 * The per-node events dispatcher: one blocking XREAD over every shard's `events`
 * stream (on its own Redis connection), fanned out to in-process subscribers
 * (SSE clients, visitor sockets, staff consoles).
 *
 * Resume without gaps or duplicates: a subscriber holds a cursor, the vector of the
 * last stream id it saw in each shard. Subscribing with a cursor first registers for
 * live events (buffered), then reads each shard's history after the cursor (XRANGE),
 * delivers it, then the buffer and live events, skipping anything at or before the
 * cursor. Cursors are opaque strings (sb_events_cursor) such as
 * "0.0.1732270000123-0.0…" (one stream id per shard, "0" for none); the SSE `id:` and
 * `after=` use them.
 */
#ifndef SB_EVENTS_H
#define SB_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "core/redis.h"

/** The longest shard position in a cursor: "<ms>-<seq>", two 20-digit numbers. */
#define SB_EVENTS_SID_MAX 41
/** The most shards a deployment may have (the `shards` configuration key's bound). */
#define SB_EVENTS_MAX_SHARDS 1024
/**
 * Bytes the longest cursor of `shards` shards needs, its NUL included: every shard's
 * position and one separator ('.', or the final NUL). The one cursor size: every
 * buffer holding a cursor, and every bound on a cursor from a client, derives from it.
 */
#define SB_EVENTS_CURSOR_SIZE(shards) ((size_t)(shards) * (SB_EVENTS_SID_MAX + 1))

typedef struct sb_events sb_events_t;
typedef struct sb_events_sub sb_events_sub_t;

/** One event as the dispatcher hands it out; every pointer is borrowed for the call. */
typedef struct sb_event {
    unsigned shard;
    const char *id;   /* stream id within the shard */
    const char *conv; /* conversation id */
    const char *json; /* {"type":…,"conv":…,"message":{…},"conversation":{…}} */
    size_t json_len;
    const char *cursor; /* the subscriber's cursor after this event */
} sb_event_t;

/** Delivers one event to a subscriber (history and live alike, in shard order). */
typedef void (*sb_events_cb)(sb_events_sub_t *sub, const sb_event_t *ev, void *data);

/** Called once when a subscriber's history read fails (status is an SB_E* code). */
typedef void (*sb_events_fail_cb)(sb_events_sub_t *sub, int status, void *data);

/**
 * Creates the dispatcher. `blocking` is a connection used only for XREAD BLOCK;
 * `main` serves history reads. Both borrowed. Starts reading at once (from each
 * shard's current end). Returns 0 or SB_EINVAL.
 */
int sb_events_new(uv_loop_t *loop, sb_redis_t *blocking, sb_redis_t *main, const char *prefix,
                  unsigned shards, sb_events_t **out);

/** True once the dispatcher knows where every shard ends (it can serve "now" cursors). */
bool sb_events_ready(const sb_events_t *ev);

/**
 * Subscribes. cursor NULL or "" = from now on; "0" = every retained event; else a
 * cursor from sb_events_cursor(). Returns 0 and *out, or SB_EINVAL for a malformed
 * cursor. cb runs for every event after the cursor; fail (may be NULL) if history
 * can't be read. The subscriber lives until sb_events_unsubscribe (safe inside cb).
 */
int sb_events_subscribe(sb_events_t *ev, const char *cursor, sb_events_cb cb,
                        sb_events_fail_cb fail, void *data, sb_events_sub_t **out);

/** Ends a subscription; no callback runs after it. Accepts NULL. */
void sb_events_unsubscribe(sb_events_sub_t *sub);

/**
 * Writes the subscriber's current cursor into out. Returns 0, or SB_ETOOBIG when cap
 * is under sb_events_cursor_size() and the cursor does not fit.
 */
int sb_events_cursor(const sb_events_sub_t *sub, char *out, size_t cap);

/** SB_EVENTS_CURSOR_SIZE of this dispatcher's shards: a buffer this big holds any cursor. */
size_t sb_events_cursor_size(const sb_events_t *ev);

/** Number of subscribers (for /metrics). */
size_t sb_events_subscribers(const sb_events_t *ev);

/** Stops reading (the pending XREAD completes or is canceled with the connection), frees. */
void sb_events_free(sb_events_t *ev);

#endif

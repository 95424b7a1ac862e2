/* SPDX-License-Identifier: MIT */
/*
 * An async Redis client on the libuv loop, over hiredis 0.14 with our own libuv
 * adapter (the packaged one never reports a refused connect).
 *
 * - Commands are pipelined: sb_redis_command() writes at once when connected.
 * - While disconnected, commands wait in a bounded queue and are sent, in order,
 *   after the next connect (after the on_connect hook's own commands), or fail with
 *   SB_ETIMEDOUT when their deadline passes first.
 * - Every command has a deadline (opts.cmd_timeout_ms, or per command). A command
 *   that outlives it declares the connection dead: every pending command fails with
 *   SB_ETIMEDOUT, the connection is dropped and re-established with backoff.
 * - A watchdog PINGs an idle connection every opts.ping_interval_ms.
 * - Reconnects use exponential backoff from 50 ms to 2 s.
 *
 * Callback guarantee: if sb_redis_command() returns an error the callback never runs;
 * otherwise it runs exactly once, on the loop thread, with either a reply
 * (status 0, or SB_EREDIS for an error reply; the reply is valid only during the
 * callback) or reply == NULL and status SB_ETIMEDOUT / SB_EDISCONNECTED / SB_ECANCELED.
 */
#ifndef SB_REDIS_H
#define SB_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct redisReply;
typedef struct sb_redis sb_redis_t;

/** A reply callback; see the guarantee above. */
typedef void (*sb_redis_reply_cb)(sb_redis_t *r, struct redisReply *reply, int status, void *data);

/**
 * Called on the loop after every successful (re)connect, before queued commands are
 * sent: commands issued inside it (e.g. FUNCTION LOAD) run first.
 */
typedef void (*sb_redis_connect_cb)(sb_redis_t *r, void *data);

/** Called once when the connection is lost (err says why). */
typedef void (*sb_redis_disconnect_cb)(sb_redis_t *r, int err, void *data);

typedef struct sb_redis_opts {
    const char *url;             /* redis://host:port[/db] or unix:/path[?db=N] */
    const char *name;            /* for logs, e.g. "main", "events" */
    uint32_t cmd_timeout_ms;     /* default deadline per command (default 5000) */
    uint32_t ping_interval_ms;   /* watchdog PING period when idle (default 1000) */
    uint32_t connect_timeout_ms; /* default 2000 */
    size_t max_queued;           /* commands held while disconnected (default 100000) */
    uint32_t start_grace_ms;     /* failed connects this soon after start, before the first
                                    connection, are not warned about (a server starting
                                    alongside, e.g. the embedded Redis); default 0 */
    sb_redis_connect_cb on_connect;
    sb_redis_disconnect_cb on_disconnect;
    void *data; /* passed to on_connect / on_disconnect */
} sb_redis_opts_t;

/** Latency histogram buckets (upper bounds, microseconds); the last is +Inf. */
#define SB_REDIS_LAT_BUCKETS 12
extern const double sb_redis_lat_bounds_us[SB_REDIS_LAT_BUCKETS];

typedef struct sb_redis_stats {
    uint64_t commands; /* completed with a reply */
    uint64_t errors;   /* failed without a reply (timeout, disconnect) */
    uint64_t reconnects;
    uint64_t lat_count[SB_REDIS_LAT_BUCKETS]; /* non-cumulative counts per bucket */
    double lat_sum_us;
} sb_redis_stats_t;

/**
 * Creates a client and starts connecting. The url is copied.
 * Returns 0 and *out, or SB_EINVAL for a bad url.
 */
int sb_redis_new(uv_loop_t *loop, const sb_redis_opts_t *opts, sb_redis_t **out);

/**
 * Sends a command given as argv (binary-safe: argvlen may be NULL for C strings).
 * timeout_ms 0 = the default deadline; blocking commands (XREAD BLOCK n) must pass a
 * deadline longer than their block time. Returns 0 (cb will run once), SB_ETOOBIG
 * when the disconnected queue is full, SB_ECANCELED after sb_redis_stop, or SB_EINVAL
 * for an empty/malformed command or one hiredis 0.14 can't serve here (SUBSCRIBE
 * family, MONITOR).
 */
int sb_redis_command_argv(sb_redis_t *r, sb_redis_reply_cb cb, void *data, uint32_t timeout_ms,
                          int argc, const char **argv, const size_t *argvlen);

/** Printf-style command (hiredis format: %s, %b with (ptr, len), %d...). */
int sb_redis_command(sb_redis_t *r, sb_redis_reply_cb cb, void *data, const char *fmt, ...);

/** True while a connection is established (and its on_connect hook has run). */
bool sb_redis_connected(const sb_redis_t *r);

/** Copies the counters into *out. */
void sb_redis_stats(const sb_redis_t *r, sb_redis_stats_t *out);

/**
 * Stops: pending and queued commands fail with SB_ECANCELED, the connection closes,
 * handles close; then cb(data) runs once on the loop and the client is freed.
 * cb may be NULL.
 */
void sb_redis_stop(sb_redis_t *r, void (*cb)(void *data), void *data);

#endif

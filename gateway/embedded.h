/* SPDX-License-Identifier: MIT */
/*
 * The embedded Redis: with no `redis` configured, switchboard runs redis-server as a
 * child process on a unix socket under data_dir (no TCP port), with its AOF in data_dir
 * (appendonly yes, appendfsync always: a write is on disk before Redis replies, so an ack
 * survives a kill -9 of Redis or of the daemon, and a power loss), restarts it with
 * backoff if it dies, and stops it (SIGTERM, then SIGKILL after 5 s) on exit. The child
 * dies with the daemon (SIGTERM as death signal), and one daemon at a time owns a
 * data_dir: it holds data_dir/switchboard.lock ("switchboard=<pid> redis=<pid>") while it
 * and its Redis live.
 */
#ifndef SB_GATEWAY_EMBEDDED_H
#define SB_GATEWAY_EMBEDDED_H

#include <uv.h>

typedef struct sb_embedded sb_embedded_t;

/**
 * Takes the data_dir lock and spawns redis-server (`server_path`, NULL = "redis-server"
 * from PATH) with its files in data_dir (created if missing). A redis-server left serving
 * data_dir by an earlier daemon is stopped first (this blocks up to ~11 s). Returns 0 and
 * *out; SB_EEXISTS when another live switchboard holds data_dir; SB_EIO when the server
 * can't be found or spawned or the lock can't be had. The URL to connect to is
 * sb_embedded_url(). Does not wait for readiness (the Redis client reconnects with
 * backoff until the socket answers). Call from the loop's thread, which must live as long
 * as the process (the child's death signal is tied to the thread that forked it).
 */
int sb_embedded_start(uv_loop_t *loop, const char *data_dir, const char *server_path,
                      sb_embedded_t **out);

/** "unix:/abs/path/to/redis.sock" (owned by e). */
const char *sb_embedded_url(const sb_embedded_t *e);

/** Process id of the current child (0 while restarting). */
int sb_embedded_pid(const sb_embedded_t *e);

/**
 * Stops the child (no restart), waits for its exit, releases the data_dir lock, frees e,
 * then runs cb(data).
 */
void sb_embedded_stop(sb_embedded_t *e, void (*cb)(void *data), void *data);

#endif

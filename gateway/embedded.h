/* SPDX-License-Identifier: MIT */
/*
 * The embedded Redis: with no `redis` configured, switchboard runs redis-server as a
 * child process on a unix socket under data_dir (no TCP port), with AOF
 * (appendonly yes, appendfsync everysec) in data_dir, restarts it with backoff if it
 * dies, and stops it (SIGTERM, then SIGKILL after 5 s) on exit.
 */
#ifndef SB_GATEWAY_EMBEDDED_H
#define SB_GATEWAY_EMBEDDED_H

#include <uv.h>

typedef struct sb_embedded sb_embedded_t;

/**
 * Spawns redis-server (`server_path`, NULL = "redis-server" from PATH) with its files in
 * data_dir (created if missing). Returns 0 and *out, or SB_EIO when it can't be spawned.
 * The URL to connect to is sb_embedded_url(). Does not wait for readiness (the Redis
 * client reconnects with backoff until the socket answers).
 */
int sb_embedded_start(uv_loop_t *loop, const char *data_dir, const char *server_path,
                      sb_embedded_t **out);

/** "unix:/abs/path/to/redis.sock" (owned by e). */
const char *sb_embedded_url(const sb_embedded_t *e);

/** Process id of the current child (0 while restarting). */
int sb_embedded_pid(const sb_embedded_t *e);

/** Stops the child (no restart), waits for its exit, frees e, then runs cb(data). */
void sb_embedded_stop(sb_embedded_t *e, void (*cb)(void *data), void *data);

#endif

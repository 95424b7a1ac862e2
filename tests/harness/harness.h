/* SPDX-License-Identifier: MIT */
/*
 * Test harness: real servers on loopback for integration tests. Starts redis-server
 * on a free TCP port in a fresh temp dir (under $SB_TEST_TMP or /tmp), can kill and
 * restart it on the same port, and runs a libuv loop until a flag is set.
 */
#ifndef SB_TEST_HARNESS_H
#define SB_TEST_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "core/redis.h"
#include "core/store.h"

typedef struct sb_test_redis {
    char dir[256];
    char url[300]; /* redis://127.0.0.1:PORT */
    int port;
    pid_t pid;
    int aof; /* 1: appendonly with appendfsync always (survives a kill) */
} sb_test_redis_t;

/** Starts redis-server (no persistence) and waits until it answers PING. 0 or -1. */
int sb_test_redis_start(sb_test_redis_t *r);
/** Like sb_test_redis_start, with AOF and appendfsync always: acked writes survive a kill. */
int sb_test_redis_start_aof(sb_test_redis_t *r);
/** SIGKILLs the server and waits for it (the port stays reserved for restart). */
void sb_test_redis_kill(sb_test_redis_t *r);
/** Starts it again on the same port and waits for PING. 0 or -1. */
int sb_test_redis_restart(sb_test_redis_t *r);
/** SIGSTOPs / SIGCONTs the server (to simulate a hung Redis). */
void sb_test_redis_pause(sb_test_redis_t *r, bool paused);
/** Stops the server and removes its directory. */
void sb_test_redis_stop(sb_test_redis_t *r);

/**
 * Runs a synchronous command (hiredis sync API) and returns its reply as text:
 * integers as decimal, strings as is, nil as "(nil)", errors as "ERR…", arrays as
 * their element count "[N]". Returns a static buffer overwritten by the next call.
 */
const char *sb_test_redis_cmd(sb_test_redis_t *r, const char *fmt, ...);

/** Runs the loop until *flag becomes true or timeout_ms passes. Returns *flag. */
bool sb_test_loop_until(uv_loop_t *loop, const bool *flag, int timeout_ms);

/** Monotonic milliseconds. */
uint64_t sb_test_now_ms(void);

/** One turn of the loop (no waiting), then 0.3 ms of sleep so a client thread's progress
 *  gets seen. */
void sb_test_spin_once(uv_loop_t *loop);

/** Spins the loop until the expression cond holds; fails the test after ms. */
#define SB_TEST_SPIN_UNTIL(loop, cond, ms)                                                         \
    do {                                                                                           \
        uint64_t dl_ = sb_test_now_ms() + (ms);                                                    \
        while (!(cond) && sb_test_now_ms() < dl_)                                                  \
            sb_test_spin_once(loop);                                                               \
        assert_true(cond);                                                                         \
    } while (0)

/** Runs the loop for ms milliseconds. */
void sb_test_loop_for(uv_loop_t *loop, int ms);

/** Returns a free TCP port on 127.0.0.1. */
int sb_test_free_port(void);

/** Creates a fresh temp dir (under $SB_TEST_TMP or /tmp) into out (256 bytes). 0 or -1. */
int sb_test_mkdtemp(char out[256], const char *tag);

/** A store on a real redis-server, for the store's integration tests. */
typedef struct sb_test_store {
    sb_test_redis_t srv;
    uv_loop_t loop;
    sb_redis_t *redis;
    sb_store_t *store; /* prefix "sb:", 16 shards; its functions load on every (re)connect */
} sb_test_store_t;

/**
 * Starts redis-server (aof: with appendfsync always, so acked writes survive a kill), a
 * loop, a client with that command timeout and a store on it. Returns the fixture (free
 * with sb_test_store_free) or NULL.
 */
sb_test_store_t *sb_test_store_new(bool aof, int cmd_timeout_ms);
/** Stops the client, frees the store and the loop, stops the server. */
void sb_test_store_free(sb_test_store_t *f);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * What the Redis client's integration tests share (test_redis*.c): the fixture (a real
 * redis-server from tests/harness, the client under test, its hook counts), a command's
 * outcome copied out of its callback, and the waits. Each test file is its own
 * executable, so these are static inline.
 */
#ifndef SB_TESTS_INTEGRATION_REDIS_FIXTURE_H
#define SB_TESTS_INTEGRATION_REDIS_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/redis.h"
#include "tests/harness/harness.h"

typedef struct fixture {
    sb_test_redis_t srv;
    sb_test_redis_t later; /* a server a test starts itself (stopped by teardown) */
    pid_t unix_pid;        /* the unix-socket server, if any */
    char unix_dir[256];
    uv_loop_t loop;
    sb_redis_t *redis;
    int connects, disconnects, last_disconnect_err;
    bool hook_push; /* on_connect RPUSHes "hook" to the list "order" */
} fixture_t;

typedef struct batch batch_t;

/* The outcome of one command, copied out of its callback. */
typedef struct slot {
    batch_t *batch;
    int calls;
    int status;
    int type;
    long long integer;
    char str[128];
    uint64_t at_ms;
} slot_t;

struct batch {
    int want, got;
    bool all;
};

static inline uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static inline void on_slot(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    slot_t *s = data;
    s->calls++;
    s->status = status;
    s->at_ms = now_ms();
    if (reply) {
        s->type = reply->type;
        s->integer = reply->integer;
        if (reply->str)
            snprintf(s->str, sizeof(s->str), "%.*s", (int)reply->len, reply->str);
    }
    if (s->batch && ++s->batch->got >= s->batch->want)
        s->batch->all = true;
}

static inline void on_hook(sb_redis_t *r, void *data)
{
    fixture_t *f = data;
    f->connects++;
    assert_false(sb_redis_connected(r)); /* true only after the hook */
    if (f->hook_push)
        assert_int_equal(sb_redis_command(r, NULL, NULL, "RPUSH order hook"), 0);
}

static inline void on_lost(sb_redis_t *r, int err, void *data)
{
    fixture_t *f = data;
    f->disconnects++;
    f->last_disconnect_err = err;
}

static inline void on_stopped(void *data)
{
    *(bool *)data = true;
}

static inline int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    if (sb_test_redis_start(&f->srv) != 0)
        return -1;
    uv_loop_init(&f->loop);
    *state = f;
    return 0;
}

static inline void stop_client(fixture_t *f, sb_redis_t *r)
{
    bool stopped = false;
    sb_redis_stop(r, on_stopped, &stopped);
    assert_true(sb_test_loop_until(&f->loop, &stopped, 5000));
}

static inline int teardown(void **state)
{
    fixture_t *f = *state;
    bool stopped = f->redis == NULL;
    if (f->redis)
        sb_redis_stop(f->redis, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    sb_test_redis_stop(&f->srv);
    sb_test_redis_stop(&f->later);
    if (f->unix_pid > 0) {
        kill(f->unix_pid, SIGKILL);
        waitpid(f->unix_pid, NULL, 0);
    }
    if (f->unix_dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->unix_dir);
        if (system(cmd) != 0)
            return -1;
    }
    int rc = uv_loop_close(&f->loop); /* every handle of the client is closed */
    sb_free(f);
    return stopped && rc == 0 ? 0 : -1;
}

/* Creates the fixture's client with the test's options (url defaults to the server). */
static inline sb_redis_t *start_client(fixture_t *f, sb_redis_opts_t o)
{
    if (!o.url)
        o.url = f->srv.url;
    o.name = "test";
    o.on_connect = on_hook;
    o.on_disconnect = on_lost;
    o.data = f;
    assert_int_equal(sb_redis_new(&f->loop, &o, &f->redis), 0);
    return f->redis;
}

static inline bool wait_connected(fixture_t *f, sb_redis_t *r, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (!sb_redis_connected(r) && now_ms() < end)
        sb_test_loop_for(&f->loop, 5);
    return sb_redis_connected(r);
}

static inline void wait_slot(fixture_t *f, slot_t *s, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (s->calls == 0 && now_ms() < end)
        sb_test_loop_for(&f->loop, 2);
    assert_int_equal(s->calls, 1);
}

/* Runs one command and waits for its reply. */
static inline void run(fixture_t *f, slot_t *s, const char *fmt, const char *arg)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(sb_redis_command(f->redis, on_slot, s, fmt, arg), 0);
    wait_slot(f, s, 5000);
}

/* Retries SET key val until it succeeds (after an outage). */
static inline void set_until_ok(fixture_t *f, const char *key, const char *val, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    slot_t s = {0};
    do {
        memset(&s, 0, sizeof(s));
        assert_int_equal(sb_redis_command(f->redis, on_slot, &s, "SET %s %s", key, val), 0);
        wait_slot(f, &s, 6000);
    } while (s.status != 0 && now_ms() < end);
    assert_int_equal(s.status, 0);
    assert_string_equal(s.str, "OK");
}

#endif

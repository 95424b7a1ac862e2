/* SPDX-License-Identifier: MIT */
/*
 * The embedded Redis (gateway/embedded.c) with the real redis-server: it comes up on the
 * unix socket in a fresh data dir, a SIGKILLed child is restarted (new pid) with its data
 * kept by the AOF, stop terminates the child and runs its callback (also while a restart
 * is pending), and a server binary that does not exist fails the start cleanly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "gateway/embedded.h"
#include "tests/harness/harness.h"

typedef struct fx {
    uv_loop_t loop;
    char dir[256];
    char data_dir[300];
    sb_embedded_t *e;
    bool stopped;
} fx_t;

static void on_stopped(void *data)
{
    ((fx_t *)data)->stopped = true;
}

static int setup(void **state)
{
    fx_t *fx = SB_NEW(fx_t);
    uv_loop_init(&fx->loop);
    assert_int_equal(sb_test_mkdtemp(fx->dir, "embedded"), 0);
    snprintf(fx->data_dir, sizeof(fx->data_dir), "%s/data/redis", fx->dir); /* created */
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    if (fx->e) {
        sb_embedded_stop(fx->e, on_stopped, fx);
        fx->e = NULL;
        sb_test_loop_until(&fx->loop, &fx->stopped, 10000);
    }
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    sb_free(fx);
    return 0;
}

/* Connects over the unix socket, running the loop meanwhile, until PING answers. */
static redisContext *connect_ready(fx_t *fx, int timeout_ms)
{
    const char *url = sb_embedded_url(fx->e);
    assert_true(strncmp(url, "unix:", 5) == 0);
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectUnixWithTimeout(url + 5, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r)
                freeReplyObject(r);
            if (ok)
                return c;
        }
        if (c)
            redisFree(c);
        sb_test_loop_for(&fx->loop, 20);
    }
    fail_msg("redis did not answer on %s", url);
    return NULL;
}

static void command_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static void test_embedded_runs_restarts_and_stops(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(sb_embedded_start(&fx->loop, fx->data_dir, NULL, &fx->e), 0);
    const char *url = sb_embedded_url(fx->e);
    assert_non_null(strstr(url, "/data/redis/redis.sock"));
    assert_true(url[5] == '/'); /* absolute */
    int pid = sb_embedded_pid(fx->e);
    assert_true(pid > 0);

    redisContext *c = connect_ready(fx, 5000);
    command_ok(c, "CONFIG SET appendfsync always"); /* the SET is on disk before the kill */
    command_ok(c, "SET %s %s", "greeting", "hello");
    redisFree(c);
    struct stat st;
    char path[400];
    snprintf(path, sizeof(path), "%s/redis.log", fx->data_dir);
    assert_int_equal(stat(path, &st), 0);

    assert_int_equal(kill(pid, SIGKILL), 0);
    int npid = 0;
    for (int i = 0; i < 250 && (npid == 0 || npid == pid); i++) {
        sb_test_loop_for(&fx->loop, 20);
        npid = sb_embedded_pid(fx->e);
    }
    assert_true(npid > 0);
    assert_int_not_equal(npid, pid);

    c = connect_ready(fx, 5000);
    redisReply *r = redisCommand(c, "GET greeting");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "hello");
    freeReplyObject(r);
    redisFree(c);

    sb_embedded_stop(fx->e, on_stopped, fx);
    fx->e = NULL;
    assert_true(sb_test_loop_until(&fx->loop, &fx->stopped, 10000));
    assert_int_equal(kill(npid, 0), -1); /* exited and reaped */
    assert_int_equal(errno, ESRCH);
}

static void test_embedded_stop_while_restarting(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(sb_embedded_start(&fx->loop, fx->data_dir, NULL, &fx->e), 0);
    redisFree(connect_ready(fx, 5000));
    int pid = sb_embedded_pid(fx->e);
    assert_int_equal(kill(pid, SIGKILL), 0);
    for (int i = 0; i < 100 && sb_embedded_pid(fx->e) == pid; i++)
        uv_run(&fx->loop, UV_RUN_ONCE); /* the exit is seen; the restart waits 100 ms */
    assert_int_equal(sb_embedded_pid(fx->e), 0);
    sb_embedded_stop(fx->e, on_stopped, fx);
    fx->e = NULL;
    assert_true(sb_test_loop_until(&fx->loop, &fx->stopped, 2000));
    sb_test_loop_for(&fx->loop, 200); /* no child comes back */
}

static void test_embedded_missing_binary(void **state)
{
    fx_t *fx = *state;
    sb_embedded_t *e = NULL;
    assert_int_equal(sb_embedded_start(&fx->loop, fx->data_dir, "/nonexistent/redis-server", &e),
                     SB_EIO);
    assert_null(e);
    sb_test_loop_for(&fx->loop, 20); /* its handles close */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_embedded_runs_restarts_and_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_stop_while_restarting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_missing_binary, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/embedded", tests, NULL, NULL);
}

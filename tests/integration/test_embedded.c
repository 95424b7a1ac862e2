/* SPDX-License-Identifier: MIT */
/*
 * The embedded Redis (gateway/embedded.c) with the real redis-server: it comes up on the
 * unix socket in a fresh data dir, a SIGKILLed child is restarted (new pid) with its data
 * kept by the AOF, stop terminates the child and runs its callback (also while a restart
 * is pending), and a server binary that does not exist fails the start cleanly.
 *
 * One writer per AOF: the child dies with the process that started it (kill -9 of a
 * "daemon", here a forked helper process); a Redis left on the data dir (one SIGSTOPped so
 * its death signal can't act, or one started without the lock by an older version) is
 * stopped before the new child starts, with its data kept; a second start on a data dir
 * that a live embedded Redis owns is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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
            redisSetTimeout(c, tv); /* a stopped server must fail the test, not hang it */
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

static int mkdir_p_for_test(const char *path)
{
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
    return system(cmd);
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
    /* Acks are durable: Redis writes and fsyncs the AOF before it replies. */
    redisReply *r = redisCommand(c, "CONFIG GET appendfsync");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 2);
    assert_string_equal(r->element[1]->str, "always");
    freeReplyObject(r);
    command_ok(c, "SET %s %s", "greeting", "hello"); /* on disk before the kill */
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
    r = redisCommand(c, "GET greeting");
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

/* Exited: no such process, or a zombie (a dead orphan may wait for a busy PID 1). */
static bool gone(int pid)
{
    char path[64], buf[256] = "";
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[2] == 'Z';
}

static bool wait_gone(int pid, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (gone(pid))
            return true;
        usleep(20 * 1000);
    }
    return gone(pid);
}

/*
 * A "daemon" in a forked process: starts the embedded Redis on data_dir in its own loop,
 * writes the Redis pid to the pipe and runs until killed. Returns the helper's pid and
 * the Redis pid in *redis_pid.
 */
static pid_t start_helper(fx_t *fx, int *redis_pid)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        uv_loop_t loop;
        uv_loop_init(&loop);
        sb_embedded_t *e;
        if (sb_embedded_start(&loop, fx->data_dir, NULL, &e) != 0)
            _exit(1);
        int rp = sb_embedded_pid(e);
        if (write(p[1], &rp, sizeof(rp)) != sizeof(rp))
            _exit(1);
        for (;;)
            uv_run(&loop, UV_RUN_DEFAULT);
    }
    close(p[1]);
    *redis_pid = 0;
    assert_int_equal(read(p[0], redis_pid, sizeof(*redis_pid)), sizeof(*redis_pid));
    close(p[0]);
    assert_true(*redis_pid > 0);
    return pid;
}

/* Writes greeting=hello to the Redis on data_dir, on disk before it returns. */
static void write_greeting(fx_t *fx, const char *sock)
{
    redisContext *c = NULL;
    for (int i = 0; i < 250; i++) {
        struct timeval tv = {1, 0};
        c = redisConnectUnixWithTimeout(sock, tv);
        if (c && !c->err && redisSetTimeout(c, tv) == REDIS_OK)
            break;
        redisFree(c);
        c = NULL;
        usleep(20 * 1000);
    }
    assert_non_null(c);
    redisReply *r = NULL;
    for (int i = 0; i < 250; i++) { /* LOADING until the AOF is read */
        r = redisCommand(c, "CONFIG SET appendfsync always");
        if (r && r->type != REDIS_REPLY_ERROR)
            break;
        freeReplyObject(r);
        r = NULL;
        usleep(20 * 1000);
    }
    assert_non_null(r);
    freeReplyObject(r);
    command_ok(c, "SET %s %s", "greeting", "hello");
    redisFree(c);
}

/* Starts the embedded Redis in the test's loop and checks greeting=hello survived. */
static void start_and_check_greeting(fx_t *fx)
{
    assert_int_equal(sb_embedded_start(&fx->loop, fx->data_dir, NULL, &fx->e), 0);
    redisContext *c = connect_ready(fx, 5000);
    redisReply *r = NULL;
    for (int i = 0; i < 250; i++) {
        r = redisCommand(c, "GET greeting");
        if (r && r->type != REDIS_REPLY_ERROR)
            break;
        freeReplyObject(r);
        r = NULL;
        sb_test_loop_for(&fx->loop, 20);
    }
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "hello");
    freeReplyObject(r);
    redisFree(c);
}

/* A daemon in a helper process whose embedded Redis holds greeting=hello. */
static pid_t start_helper_with_greeting(fx_t *fx, int *redis_pid)
{
    pid_t helper = start_helper(fx, redis_pid);
    char sock[400];
    snprintf(sock, sizeof(sock), "%s/redis.sock", fx->data_dir);
    write_greeting(fx, sock);
    return helper;
}

static void test_embedded_dies_with_its_daemon(void **state)
{
    fx_t *fx = *state;
    int redis_pid;
    pid_t helper = start_helper_with_greeting(fx, &redis_pid);
    assert_int_equal(kill(helper, SIGKILL), 0);
    assert_int_equal(waitpid(helper, NULL, 0), helper);
    assert_true(wait_gone(redis_pid, 5000)); /* no orphan left writing the AOF */
    start_and_check_greeting(fx);
}

static void test_embedded_stray_lock_holder_is_stopped(void **state)
{
    fx_t *fx = *state;
    int redis_pid;
    pid_t helper = start_helper_with_greeting(fx, &redis_pid);
    /* Stopped, it can't act on its death signal: an orphan that outlives its daemon. */
    assert_int_equal(kill(redis_pid, SIGSTOP), 0);
    assert_int_equal(kill(helper, SIGKILL), 0);
    assert_int_equal(waitpid(helper, NULL, 0), helper);
    assert_false(gone(redis_pid));
    start_and_check_greeting(fx);
    assert_true(gone(redis_pid)); /* stopped before the new child started */
    assert_int_not_equal(sb_embedded_pid(fx->e), redis_pid);
}

static void test_embedded_stray_without_lock_is_stopped(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(mkdir_p_for_test(fx->data_dir), 0);
    char sock[400];
    snprintf(sock, sizeof(sock), "%s/redis.sock", fx->data_dir);
    pid_t stray = fork(); /* as an older switchboard left it: same files, no lock */
    assert_true(stray >= 0);
    if (stray == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--dir",
               fx->data_dir, "--appendonly", "yes", "--save", "", NULL);
        _exit(127);
    }
    write_greeting(fx, sock);
    start_and_check_greeting(fx);
    assert_int_equal(waitpid(stray, NULL, WNOHANG), stray); /* it exited before */
}

static void test_embedded_second_start_is_refused(void **state)
{
    fx_t *fx = *state;
    assert_int_equal(sb_embedded_start(&fx->loop, fx->data_dir, NULL, &fx->e), 0);
    int pid = sb_embedded_pid(fx->e);
    redisFree(connect_ready(fx, 5000));
    sb_embedded_t *second = NULL;
    assert_int_equal(sb_embedded_start(&fx->loop, fx->data_dir, NULL, &second), SB_EEXISTS);
    assert_null(second);
    sb_test_loop_for(&fx->loop, 50);               /* its handles close */
    assert_int_equal(sb_embedded_pid(fx->e), pid); /* the first one is untouched */
    assert_false(gone(pid));
    redisFree(connect_ready(fx, 1000));
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
        cmocka_unit_test_setup_teardown(test_embedded_dies_with_its_daemon, setup, teardown),
        cmocka_unit_test_setup_teardown(test_embedded_stray_lock_holder_is_stopped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_embedded_stray_without_lock_is_stopped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_embedded_second_start_is_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/embedded", tests, NULL, NULL);
}

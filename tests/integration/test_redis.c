/* SPDX-License-Identifier: MIT */
/*
 * The Redis client (core/redis.c) against a real redis-server: replies, pipelining
 * order, error replies, invalid arguments, db selection, unix sockets, the on_connect
 * hook's ordering, the bounded queue, and stop with pending commands (also from inside
 * a callback). Every callback is counted to check the "runs exactly once" guarantee.
 * Outages (refused, hanging, killed, paused, loading servers): test_redis_outages.c;
 * what both share: redis_fixture.h.
 */
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
#include "tests/integration/redis_fixture.h"

/* GET key in database db with a synchronous connection (TCP port or unix path). */
static const char *sync_get(int port, const char *path, int db, const char *key)
{
    static char out[128];
    redisContext *c = path ? redisConnectUnix(path) : redisConnect("127.0.0.1", port);
    assert_non_null(c);
    assert_int_equal(c->err, 0);
    redisReply *rep = redisCommand(c, "SELECT %d", db);
    assert_non_null(rep);
    freeReplyObject(rep);
    rep = redisCommand(c, "GET %s", key);
    assert_non_null(rep);
    snprintf(out, sizeof(out), "%s", rep->type == REDIS_REPLY_STRING ? rep->str : "(nil)");
    freeReplyObject(rep);
    redisFree(c);
    return out;
}

/* ---- Basics ---- */

static void test_redis_set_get(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    slot_t s;
    run(f, &s, "SET greeting %s", "hello world");
    assert_int_equal(s.status, 0);
    assert_int_equal(s.type, REDIS_REPLY_STATUS);
    assert_string_equal(s.str, "OK");
    run(f, &s, "GET %s", "greeting");
    assert_int_equal(s.status, 0);
    assert_int_equal(s.type, REDIS_REPLY_STRING);
    assert_string_equal(s.str, "hello world");
    assert_true(sb_redis_connected(r));
    assert_int_equal(f->connects, 1);

    /* argv form, binary-safe */
    const char *argv[] = {"SET", "bin", "a\0b"};
    const size_t lens[] = {3, 3, 3};
    memset(&s, 0, sizeof(s));
    assert_int_equal(sb_redis_command_argv(r, on_slot, &s, 0, 3, argv, lens), 0);
    wait_slot(f, &s, 5000);
    assert_int_equal(s.status, 0);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "STRLEN bin"), "3");

    sb_redis_stats_t st;
    sb_redis_stats(r, &st);
    assert_true(st.commands >= 3);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.reconnects, 0);
    uint64_t n = 0;
    for (int i = 0; i < SB_REDIS_LAT_BUCKETS; i++)
        n += st.lat_count[i];
    assert_int_equal(n, st.commands);
    assert_true(st.lat_sum_us > 0);
}

typedef struct incr {
    int n, got;
    long long *vals;
    bool done;
} incr_t;

static void on_incr(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    incr_t *in = data;
    assert_int_equal(status, 0);
    in->vals[in->got++] = reply->integer;
    in->done = in->got == in->n;
}

static void test_redis_pipeline_order(void **state)
{
    fixture_t *f = *state;
    start_client(f, (sb_redis_opts_t){0});
    incr_t in = {.n = 10000};
    in.vals = sb_calloc((size_t)in.n, sizeof(*in.vals));
    for (int i = 0; i < in.n; i++) /* queued before the connect, then pipelined */
        assert_int_equal(sb_redis_command(f->redis, on_incr, &in, "INCR counter"), 0);
    assert_true(sb_test_loop_until(&f->loop, &in.done, 10000));
    for (int i = 0; i < in.n; i++)
        assert_int_equal(in.vals[i], i + 1);
    /* and once connected, sent at once */
    in.got = 0;
    in.done = false;
    for (int i = 0; i < in.n; i++)
        assert_int_equal(sb_redis_command(f->redis, on_incr, &in, "INCR counter"), 0);
    assert_true(sb_test_loop_until(&f->loop, &in.done, 10000));
    for (int i = 0; i < in.n; i++)
        assert_int_equal(in.vals[i], in.n + i + 1);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "GET counter"), "20000");
    sb_free(in.vals);
}

static void test_redis_error_reply(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    slot_t s;
    run(f, &s, "SET %s x", "str");
    run(f, &s, "LPUSH %s y", "str");
    assert_int_equal(s.status, SB_EREDIS);
    assert_int_equal(s.type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(s.str, "WRONGTYPE"));
    run(f, &s, "NOSUCHCOMMAND %s", "a");
    assert_int_equal(s.status, SB_EREDIS);
    assert_int_equal(strncmp(s.str, "ERR", 3), 0);
    /* the connection stays usable */
    run(f, &s, "GET %s", "str");
    assert_int_equal(s.status, 0);
    assert_string_equal(s.str, "x");
    sb_redis_stats_t st;
    sb_redis_stats(r, &st);
    assert_int_equal(st.errors, 0); /* error replies are replies */
    assert_int_equal(f->disconnects, 0);
}

static void test_redis_invalid_args(void **state)
{
    fixture_t *f = *state;
    const char *bad[] = {"",
                         "http://127.0.0.1:6379",
                         "redis://",
                         "redis://host:0",
                         "redis://host:70000",
                         "redis://host:12x",
                         "redis://host:1/db",
                         "redis://user:pw@host",
                         "unix:relative.sock",
                         "unix:/tmp/x.sock?db=a",
                         "unix:/tmp/x.sock?foo=1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb_redis_opts_t o = {.url = bad[i]};
        sb_redis_t *r = NULL;
        assert_int_equal(sb_redis_new(&f->loop, &o, &r), SB_EINVAL);
        assert_null(r);
    }
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    slot_t s = {0};
    assert_int_equal(sb_redis_command(r, on_slot, &s, "SUBSCRIBE ch"), SB_EINVAL);
    assert_int_equal(sb_redis_command(r, on_slot, &s, "monitor"), SB_EINVAL);
    assert_int_equal(sb_redis_command(r, on_slot, &s, ""), SB_EINVAL);
    assert_int_equal(sb_redis_command_argv(r, on_slot, &s, 0, 0, NULL, NULL), SB_EINVAL);
    sb_test_loop_for(&f->loop, 50);
    assert_int_equal(s.calls, 0); /* an error return means no callback */
}

/* ---- Addresses ---- */

static void test_redis_db_select(void **state)
{
    fixture_t *f = *state;
    char url[320];
    snprintf(url, sizeof(url), "%s/3", f->srv.url);
    start_client(f, (sb_redis_opts_t){.url = url});
    slot_t s;
    run(f, &s, "SET k %s", "in-db3");
    assert_int_equal(s.status, 0);
    assert_string_equal(sync_get(f->srv.port, NULL, 3, "k"), "in-db3");
    assert_string_equal(sync_get(f->srv.port, NULL, 0, "k"), "(nil)");
    /* the db is selected again after a reconnect */
    assert_int_equal(sb_test_redis_restart(&f->srv), 0);
    set_until_ok(f, "k2", "again", 5000);
    assert_string_equal(sync_get(f->srv.port, NULL, 3, "k2"), "again");
    assert_string_equal(sync_get(f->srv.port, NULL, 0, "k2"), "(nil)");
    assert_int_equal(f->connects, 2);
}

/* Starts redis-server listening only on a unix socket in dir; returns its pid. */
static pid_t spawn_unix_redis(const char *dir, const char *sock)
{
    char log[300];
    snprintf(log, sizeof(log), "%s/redis.log", dir);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock,
               "--unixsocketperm", "700", "--dir", dir, "--save", "", "--appendonly", "no",
               "--logfile", log, "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && pid > 0; i++) {
        redisContext *c = redisConnectUnix(sock);
        bool ok = c && !c->err;
        if (c)
            redisFree(c);
        if (ok)
            return pid;
        usleep(20000);
    }
    return -1;
}

static void test_redis_unix_socket(void **state)
{
    fixture_t *f = *state;
    char sock[300], url[320];
    assert_int_equal(sb_test_mkdtemp(f->unix_dir, "redis-unix"), 0);
    snprintf(sock, sizeof(sock), "%s/r.sock", f->unix_dir);
    f->unix_pid = spawn_unix_redis(f->unix_dir, sock);
    assert_true(f->unix_pid > 0);
    snprintf(url, sizeof(url), "unix:%s?db=2", sock);
    start_client(f, (sb_redis_opts_t){.url = url});
    slot_t s;
    run(f, &s, "SET via %s", "unix");
    assert_int_equal(s.status, 0);
    run(f, &s, "GET %s", "via");
    assert_string_equal(s.str, "unix");
    assert_string_equal(sync_get(0, sock, 2, "via"), "unix");
    assert_string_equal(sync_get(0, sock, 0, "via"), "(nil)");
}

/* ---- Hook ordering, queue, stop ---- */

static void test_redis_on_connect_runs_first(void **state)
{
    fixture_t *f = *state;
    f->hook_push = true;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    slot_t s = {0};
    /* issued before the connect: queued, sent after the hook's command */
    assert_int_equal(sb_redis_command(r, on_slot, &s, "RPUSH order queued1"), 0);
    wait_slot(f, &s, 3000);
    assert_int_equal(s.status, 0);
    assert_int_equal(f->connects, 1);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "LINDEX order 0"), "hook");
    assert_string_equal(sb_test_redis_cmd(&f->srv, "LINDEX order 1"), "queued1");

    sb_test_redis_kill(&f->srv);
    for (int i = 0; i < 400 && f->disconnects == 0; i++)
        sb_test_loop_for(&f->loop, 5);
    assert_int_equal(f->disconnects, 1);
    memset(&s, 0, sizeof(s));
    assert_int_equal(sb_redis_command(r, on_slot, &s, "RPUSH order queued2"), 0);
    sb_test_loop_for(&f->loop, 100);
    assert_int_equal(s.calls, 0);                        /* waiting in the queue */
    assert_int_equal(sb_test_redis_restart(&f->srv), 0); /* a fresh, empty server */
    wait_slot(f, &s, 4000);
    assert_int_equal(s.status, 0);
    assert_int_equal(f->connects, 2);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "LLEN order"), "2");
    assert_string_equal(sb_test_redis_cmd(&f->srv, "LINDEX order 0"), "hook");
    assert_string_equal(sb_test_redis_cmd(&f->srv, "LINDEX order 1"), "queued2");
}

static void test_redis_queue_full(void **state)
{
    fixture_t *f = *state;
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", sb_test_free_port());
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){.url = url, .max_queued = 3});
    slot_t s[4] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_redis_command(r, on_slot, &s[i], "PING"), 0);
    assert_int_equal(sb_redis_command(r, on_slot, &s[3], "PING"), SB_ETOOBIG);
    stop_client(f, r);
    f->redis = NULL;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].status, SB_ECANCELED);
    }
    assert_int_equal(s[3].calls, 0);
}

typedef struct cancel {
    slot_t slot;
    sb_redis_t *r;
    int resend_rc;
} cancel_t;

static void on_cancel(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    cancel_t *c = data;
    on_slot(r, reply, status, &c->slot);
    c->resend_rc = sb_redis_command(r, NULL, NULL, "PING"); /* refused once stopping */
}

static void test_redis_stop_cancels_pending(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    assert_true(wait_connected(f, r, 2000));
    enum { N = 6 };
    cancel_t c[N] = {0};
    const char *argv[] = {"BLPOP", "nothing", "10"};
    assert_int_equal(sb_redis_command_argv(r, on_cancel, &c[0], 15000, 3, argv, NULL), 0);
    for (int i = 1; i < N; i++)
        assert_int_equal(sb_redis_command(r, on_cancel, &c[i], "INCR n"), 0);
    sb_test_loop_for(&f->loop, 50);

    /* a second client that never connects holds its commands in the queue */
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", sb_test_free_port());
    sb_redis_opts_t o = {.url = url, .name = "dead"};
    sb_redis_t *dead;
    assert_int_equal(sb_redis_new(&f->loop, &o, &dead), 0);
    cancel_t q[N] = {0};
    for (int i = 0; i < N; i++)
        assert_int_equal(sb_redis_command(dead, on_cancel, &q[i], "INCR n"), 0);
    sb_test_loop_for(&f->loop, 50);

    stop_client(f, r);
    f->redis = NULL;
    stop_client(f, dead);
    sb_test_loop_for(&f->loop, 50);
    for (int i = 0; i < N; i++) {
        assert_int_equal(c[i].slot.calls, 1);
        assert_int_equal(c[i].slot.status, SB_ECANCELED);
        assert_int_equal(c[i].resend_rc, SB_ECANCELED);
        assert_int_equal(q[i].slot.calls, 1);
        assert_int_equal(q[i].slot.status, SB_ECANCELED);
    }
    assert_int_equal(f->disconnects, 0); /* a stop is not a lost connection */
}

typedef struct stop_in_cb {
    fixture_t *f;
    bool stopped;
    int calls;
} stop_in_cb_t;

static void on_reply_then_stop(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    stop_in_cb_t *x = data;
    x->calls++;
    assert_int_equal(status, 0);
    sb_redis_stop(r, on_stopped, &x->stopped);
}

static void test_redis_stop_inside_callback(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    assert_true(wait_connected(f, r, 2000));
    stop_in_cb_t x = {.f = f};
    slot_t s[3] = {0};
    assert_int_equal(sb_redis_command(r, on_reply_then_stop, &x, "PING"), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_redis_command(r, on_slot, &s[i], "INCR n"), 0);
    f->redis = NULL; /* stopped by the callback */
    assert_true(sb_test_loop_until(&f->loop, &x.stopped, 3000));
    assert_int_equal(x.calls, 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_true(s[i].status == 0 || s[i].status == SB_ECANCELED);
    }
}

int main(void)
{
    /* SIGPIPE keeps its default: the client must not die writing to a killed Redis. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_set_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_pipeline_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_error_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_invalid_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_db_select, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_unix_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_on_connect_runs_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stop_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stop_inside_callback, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/redis", tests, NULL, NULL);
}

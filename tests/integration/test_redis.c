/* SPDX-License-Identifier: MIT */
/*
 * The Redis client (core/redis.c) against a real redis-server: replies, pipelining
 * order, unix sockets, db selection, error replies, a refused connect, Redis killed
 * or paused with commands in flight, the on_connect hook's ordering, the watchdog,
 * the bounded queue, and stop with pending commands. Every callback is counted to
 * check the "runs exactly once" guarantee.
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

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void on_slot(sb_redis_t *r, redisReply *reply, int status, void *data)
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

static void on_hook(sb_redis_t *r, void *data)
{
    fixture_t *f = data;
    f->connects++;
    assert_false(sb_redis_connected(r)); /* true only after the hook */
    if (f->hook_push)
        assert_int_equal(sb_redis_command(r, NULL, NULL, "RPUSH order hook"), 0);
}

static void on_lost(sb_redis_t *r, int err, void *data)
{
    fixture_t *f = data;
    f->disconnects++;
    f->last_disconnect_err = err;
}

static void on_stopped(void *data)
{
    *(bool *)data = true;
}

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    if (sb_test_redis_start(&f->srv) != 0)
        return -1;
    uv_loop_init(&f->loop);
    *state = f;
    return 0;
}

static void stop_client(fixture_t *f, sb_redis_t *r)
{
    bool stopped = false;
    sb_redis_stop(r, on_stopped, &stopped);
    assert_true(sb_test_loop_until(&f->loop, &stopped, 5000));
}

static int teardown(void **state)
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
static sb_redis_t *start_client(fixture_t *f, sb_redis_opts_t o)
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

static bool wait_connected(fixture_t *f, sb_redis_t *r, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (!sb_redis_connected(r) && now_ms() < end)
        sb_test_loop_for(&f->loop, 5);
    return sb_redis_connected(r);
}

static void wait_slot(fixture_t *f, slot_t *s, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    while (s->calls == 0 && now_ms() < end)
        sb_test_loop_for(&f->loop, 2);
    assert_int_equal(s->calls, 1);
}

/* Runs one command and waits for its reply. */
static void run(fixture_t *f, slot_t *s, const char *fmt, const char *arg)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(sb_redis_command(f->redis, on_slot, s, fmt, arg), 0);
    wait_slot(f, s, 5000);
}

/* Retries SET key val until it succeeds (after an outage). */
static void set_until_ok(fixture_t *f, const char *key, const char *val, int ms)
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

/* ---- Outages ---- */

static void test_redis_refused_then_up(void **state)
{
    fixture_t *f = *state;
    sb_test_redis_t *later = &f->later;
    assert_int_equal(sb_test_mkdtemp(later->dir, "redis-later"), 0);
    later->port = sb_test_free_port();
    snprintf(later->url, sizeof(later->url), "redis://127.0.0.1:%d", later->port);
    sb_redis_t *r = start_client(
        f,
        (sb_redis_opts_t){.url = later->url, .cmd_timeout_ms = 300, .connect_timeout_ms = 10000});
    slot_t s = {0};
    uint64_t t0 = now_ms();
    assert_int_equal(sb_redis_command(r, on_slot, &s, "GET k"), 0);
    wait_slot(f, &s, 2000);
    assert_int_equal(s.status, SB_ETIMEDOUT);
    assert_true(s.at_ms - t0 >= 250 && s.at_ms - t0 <= 800);
    assert_false(sb_redis_connected(r));
    assert_int_equal(f->connects, 0);
    sb_test_loop_for(&f->loop, 100);
    assert_int_equal(s.calls, 1);

    /* a server appears on that port: the client connects by itself */
    assert_int_equal(sb_test_redis_restart(later), 0);
    assert_true(wait_connected(f, r, 3000));
    set_until_ok(f, "k", "v", 2000);
    run(f, &s, "GET %s", "k");
    assert_string_equal(s.str, "v");
    assert_int_equal(f->connects, 1);
}

/* Opens a non-blocking TCP connect to 127.0.0.1:port; returns the fd. */
static int connect_nb(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    connect(fd, (struct sockaddr *)&a, sizeof(a));
    return fd;
}

static int local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    return ntohs(a.sin_port);
}

/* Adds to ports[] (distinct) the local ports of sockets in SYN_SENT towards port. */
static void collect_syn_sent(int port, int *ports, int *n, int max)
{
    FILE *fp = fopen("/proc/net/tcp", "r");
    assert_non_null(fp);
    char line[512];
    while (fgets(line, sizeof(line), fp)) {
        unsigned lport, rport, st;
        if (sscanf(line, " %*d: %*x:%x %*x:%x %x", &lport, &rport, &st) != 3)
            continue;
        if ((int)rport != port || st != 2) /* TCP_SYN_SENT */
            continue;
        bool seen = false;
        for (int i = 0; i < *n; i++)
            seen = seen || ports[i] == (int)lport;
        if (!seen && *n < max)
            ports[(*n)++] = (int)lport;
    }
    fclose(fp);
}

static void test_redis_connect_timeout(void **state)
{
    fixture_t *f = *state;
    /* A listener whose accept queue is full drops SYNs: connects hang. */
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 0), 0);
    int port = local_port(lfd);
    int fill[2] = {connect_nb(port), connect_nb(port)};
    usleep(50000);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    sb_redis_t *r = start_client(
        f, (sb_redis_opts_t){.url = url, .connect_timeout_ms = 100, .cmd_timeout_ms = 700});
    slot_t s = {0};
    uint64_t t0 = now_ms();
    assert_int_equal(sb_redis_command(r, on_slot, &s, "GET k"), 0);
    int ports[64], n = 0;
    while (s.calls == 0 && now_ms() - t0 < 2000) {
        sb_test_loop_for(&f->loop, 10);
        collect_syn_sent(port, ports, &n, 64);
    }
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, SB_ETIMEDOUT);
    assert_true(s.at_ms - t0 <= 1000);
    assert_false(sb_redis_connected(r));
    /* Each attempt gave up after 100 ms and retried from a new socket. */
    int ours = 0;
    for (int i = 0; i < n; i++)
        ours += ports[i] != local_port(fill[0]) && ports[i] != local_port(fill[1]);
    assert_true(ours >= 3);
    stop_client(f, r);
    f->redis = NULL;
    close(fill[0]);
    close(fill[1]);
    close(lfd);
}

static void test_redis_killed_inflight(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){0});
    assert_true(wait_connected(f, r, 2000));
    enum { N = 200 };
    batch_t b = {.want = N + 1};
    slot_t *s = sb_calloc(N + 1, sizeof(*s));
    for (int i = 0; i <= N; i++)
        s[i].batch = &b;
    /* BLPOP blocks the connection, so every INCR behind it stays in flight */
    const char *argv[] = {"BLPOP", "nothing", "10"};
    assert_int_equal(sb_redis_command_argv(r, on_slot, &s[0], 15000, 3, argv, NULL), 0);
    for (int i = 1; i <= N; i++)
        assert_int_equal(sb_redis_command(r, on_slot, &s[i], "INCR n"), 0);
    sb_test_loop_for(&f->loop, 100);
    assert_int_equal(b.got, 0);

    sb_test_redis_kill(&f->srv);
    assert_true(sb_test_loop_until(&f->loop, &b.all, 3000));
    sb_test_loop_for(&f->loop, 200);
    for (int i = 0; i <= N; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].status, SB_EDISCONNECTED);
    }
    assert_int_equal(f->disconnects, 1);
    assert_int_equal(f->last_disconnect_err, SB_EDISCONNECTED);
    assert_false(sb_redis_connected(r));
    sb_redis_stats_t st;
    sb_redis_stats(r, &st);
    assert_true(st.errors >= N + 1);

    assert_int_equal(sb_test_redis_restart(&f->srv), 0);
    assert_true(wait_connected(f, r, 3000));
    set_until_ok(f, "after", "restart", 3000);
    sb_redis_stats(r, &st);
    assert_int_equal(st.reconnects, 1);
    assert_int_equal(f->connects, 2);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "GET after"), "restart");
    sb_free(s);
}

static void test_redis_paused_times_out(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){.cmd_timeout_ms = 300});
    assert_true(wait_connected(f, r, 2000));
    sb_test_redis_pause(&f->srv, true);
    enum { N = 50 };
    batch_t b = {.want = N};
    slot_t s[N] = {0};
    uint64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        s[i].batch = &b;
        assert_int_equal(sb_redis_command(r, on_slot, &s[i], "INCR n"), 0);
    }
    assert_true(sb_test_loop_until(&f->loop, &b.all, 2000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(s[i].calls, 1);
        assert_int_equal(s[i].status, SB_ETIMEDOUT);
        assert_true(s[i].at_ms - t0 >= 250 && s[i].at_ms - t0 <= 700);
    }
    assert_int_equal(f->last_disconnect_err, SB_ETIMEDOUT);
    sb_test_loop_for(&f->loop, 200);
    for (int i = 0; i < N; i++)
        assert_int_equal(s[i].calls, 1);

    sb_test_redis_pause(&f->srv, false);
    set_until_ok(f, "recovered", "yes", 4000);
    assert_true(wait_connected(f, r, 2000));
    assert_string_equal(sb_test_redis_cmd(&f->srv, "GET recovered"), "yes");
}

static void test_redis_watchdog_detects_hang(void **state)
{
    fixture_t *f = *state;
    sb_redis_t *r =
        start_client(f, (sb_redis_opts_t){.cmd_timeout_ms = 200, .ping_interval_ms = 100});
    assert_true(wait_connected(f, r, 2000));
    sb_test_loop_for(&f->loop, 300); /* idle: PINGs succeed */
    assert_int_equal(f->disconnects, 0);
    sb_redis_stats_t st;
    sb_redis_stats(r, &st);
    assert_true(st.commands >= 1);

    sb_test_redis_pause(&f->srv, true); /* no command of ours is pending */
    uint64_t t0 = now_ms();
    while (f->disconnects == 0 && now_ms() - t0 < 2000)
        sb_test_loop_for(&f->loop, 10);
    assert_int_equal(f->disconnects, 1);
    assert_int_equal(f->last_disconnect_err, SB_ETIMEDOUT);
    assert_true(now_ms() - t0 <= 800); /* ping interval + deadline + slack */
    sb_test_redis_pause(&f->srv, false);
    set_until_ok(f, "alive", "1", 4000);
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

/* ---- A server still loading its dataset ---- */

typedef struct loading_fake {
    int lfd;
    int answered_loading, answered_pong;
} loading_fake_t;

/* Reads what the client sent (one command here); false on EOF. */
static bool fake_read(int fd)
{
    char buf[512];
    ssize_t n = read(fd, buf, sizeof(buf));
    return n > 0;
}

static void fake_drain(int fd)
{
    char buf[512];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
    close(fd);
}

/* First connection: every command gets -LOADING (as Redis replaying its AOF answers);
 * the second: +PONG, then it reads until the client leaves. */
static void *loading_fake_main(void *arg)
{
    loading_fake_t *lf = arg;
    static const char loading[] = "-LOADING Redis is loading the dataset in memory\r\n";
    int fd = accept(lf->lfd, NULL, NULL);
    if (fd >= 0 && fake_read(fd)) {
        __atomic_add_fetch(&lf->answered_loading, 1, __ATOMIC_SEQ_CST);
        if (write(fd, loading, sizeof(loading) - 1) < 0)
            perror("fake write");
        fake_drain(fd); /* the client drops this connection */
    }
    fd = accept(lf->lfd, NULL, NULL);
    if (fd >= 0 && fake_read(fd)) {
        __atomic_add_fetch(&lf->answered_pong, 1, __ATOMIC_SEQ_CST);
        if (write(fd, "+PONG\r\n", 7) < 0)
            perror("fake write");
        fake_drain(fd);
    }
    return NULL;
}

static void test_redis_waits_while_loading(void **state)
{
    fixture_t *f = *state;
    loading_fake_t lf = {0};
    lf.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lf.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lf.lfd, 4), 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", local_port(lf.lfd));
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, loading_fake_main, &lf), 0);
    sb_redis_t *r = start_client(f, (sb_redis_opts_t){.url = url});
    /* not up while the server says LOADING; up (hook run once) on the next connection */
    assert_true(wait_connected(f, r, 5000));
    assert_int_equal(f->connects, 1);
    assert_int_equal(__atomic_load_n(&lf.answered_loading, __ATOMIC_SEQ_CST), 1);
    assert_int_equal(__atomic_load_n(&lf.answered_pong, __ATOMIC_SEQ_CST), 1);
    stop_client(f, r);
    f->redis = NULL;
    pthread_join(th, NULL);
    close(lf.lfd);
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
        cmocka_unit_test_setup_teardown(test_redis_refused_then_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_paused_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_watchdog_detects_hang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_on_connect_runs_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_waits_while_loading, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_queue_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stop_cancels_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_stop_inside_callback, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/redis", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * The Redis client (core/redis.c) when its server fails it: a refused connect that
 * later succeeds, a connect that hangs (each attempt times out and retries, the command
 * meets its deadline), Redis killed or paused with commands in flight, the watchdog
 * finding a hung server, and a server still loading its dataset. Every callback is
 * counted to check the "runs exactly once" guarantee.
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
#include <poll.h>
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

/* A reference timer: when it fired, and whether its handle has closed. */
typedef struct ref_timer {
    uv_timer_t t;
    uint64_t at_ms;
    bool closed;
} ref_timer_t;

static void on_ref_timer(uv_timer_t *t)
{
    ((ref_timer_t *)t->data)->at_ms = now_ms();
}

static void on_ref_closed(uv_handle_t *h)
{
    ((ref_timer_t *)h->data)->closed = true;
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
    /* the first fills the queue (the second's SYN may be dropped already: not waited for) */
    struct pollfd pfd = {.fd = fill[0], .events = POLLOUT};
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    sb_redis_t *r = start_client(
        f, (sb_redis_opts_t){.url = url, .connect_timeout_ms = 100, .cmd_timeout_ms = 700});
    slot_t s = {0};
    uint64_t t0 = now_ms();
    assert_int_equal(sb_redis_command(r, on_slot, &s, "GET k"), 0);
    /* A plain 700 ms timer on the same loop: how late this loop runs its timers now (a
     * loaded machine delays both alike), the measure the deadline is held to below. */
    ref_timer_t ref = {0};
    uv_timer_init(&f->loop, &ref.t);
    ref.t.data = &ref;
    uv_timer_start(&ref.t, on_ref_timer, 700, 0);
    int ports[64], n = 0;
    while ((s.calls == 0 || ref.at_ms == 0) && now_ms() - t0 < 10000) {
        sb_test_loop_for(&f->loop, 10);
        collect_syn_sent(port, ports, &n, 64);
    }
    uv_close((uv_handle_t *)&ref.t, on_ref_closed);
    assert_true(sb_test_loop_until(&f->loop, &ref.closed, 5000));
    assert_int_not_equal(ref.at_ms, 0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.status, SB_ETIMEDOUT);
    /* Failed by its own deadline: not before 700 ms (the connect attempts' 100 ms
     * timeouts do not fail it), and no later than 300 ms after the loop ran a 700 ms
     * timer (the connect retries do not push it back). */
    assert_true(s.at_ms - t0 >= 700);
    assert_true(s.at_ms <= ref.at_ms + 300);
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

int main(void)
{
    /* SIGPIPE keeps its default: the client must not die writing to a killed Redis. */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_refused_then_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_killed_inflight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_paused_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_watchdog_detects_hang, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_waits_while_loading, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/redis_outages", tests, NULL, NULL);
}

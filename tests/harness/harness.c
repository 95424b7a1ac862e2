/* SPDX-License-Identifier: MIT */
/* The integration-test harness of harness.h: real redis-server processes on loopback. */
#include "tests/harness/harness.h"

#include "core/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int sb_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    int port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int sb_test_mkdtemp(char out[256], const char *tag)
{
    const char *base = getenv("SB_TEST_TMP");
    if (!base || !*base)
        base = "/tmp";
    mkdir(base, 0755);
    snprintf(out, 256, "%s/sb-%s-XXXXXX", base, tag);
    return mkdtemp(out) ? 0 : -1;
}

static int spawn_redis(sb_test_redis_t *r)
{
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    char log[300];
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir",
               r->dir, "--save", "", "--appendonly", r->aof ? "yes" : "no", "--appendfsync",
               "always", "--logfile", log, "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    for (int i = 0; i < 200; i++) {
        struct timeval tv = {1, 0};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
        if (c && !c->err) {
            redisReply *rep = redisCommand(c, "PING");
            bool ok = rep && rep->type == REDIS_REPLY_STATUS;
            if (rep)
                freeReplyObject(rep);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c) {
            redisFree(c);
        }
        usleep(20000);
    }
    return -1;
}

int sb_test_redis_start(sb_test_redis_t *r)
{
    memset(r, 0, sizeof(*r));
    if (sb_test_mkdtemp(r->dir, "redis") < 0)
        return -1;
    r->port = sb_test_free_port();
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
    return spawn_redis(r);
}

int sb_test_redis_start_aof(sb_test_redis_t *r)
{
    memset(r, 0, sizeof(*r));
    r->aof = 1;
    if (sb_test_mkdtemp(r->dir, "redis") < 0)
        return -1;
    r->port = sb_test_free_port();
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
    return spawn_redis(r);
}

void sb_test_redis_kill(sb_test_redis_t *r)
{
    if (r->pid > 0) {
        kill(r->pid, SIGCONT);
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

int sb_test_redis_restart(sb_test_redis_t *r)
{
    sb_test_redis_kill(r);
    return spawn_redis(r);
}

void sb_test_redis_pause(sb_test_redis_t *r, bool paused)
{
    if (r->pid > 0)
        kill(r->pid, paused ? SIGSTOP : SIGCONT);
}

void sb_test_redis_stop(sb_test_redis_t *r)
{
    sb_test_redis_kill(r);
    if (r->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
        int rc = system(cmd);
        (void)rc;
        r->dir[0] = '\0';
    }
}

const char *sb_test_redis_cmd(sb_test_redis_t *r, const char *fmt, ...)
{
    static char out[4096];
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);
    if (!c || c->err) {
        snprintf(out, sizeof(out), "ERRCONNECT");
        if (c)
            redisFree(c);
        return out;
    }
    va_list ap;
    va_start(ap, fmt);
    redisReply *rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!rep) {
        snprintf(out, sizeof(out), "ERRIO");
    } else {
        switch (rep->type) {
        case REDIS_REPLY_INTEGER:
            snprintf(out, sizeof(out), "%lld", rep->integer);
            break;
        case REDIS_REPLY_NIL:
            snprintf(out, sizeof(out), "(nil)");
            break;
        case REDIS_REPLY_ARRAY:
            snprintf(out, sizeof(out), "[%zu]", rep->elements);
            break;
        default:
            snprintf(out, sizeof(out), "%.*s", (int)rep->len, rep->str);
        }
        freeReplyObject(rep);
    }
    redisFree(c);
    return out;
}

typedef struct poll_ctx {
    const bool *flag;
} poll_ctx_t;

static void on_poll_timer(uv_timer_t *t)
{
    const bool *flag = ((poll_ctx_t *)t->data)->flag;
    if (*flag)
        uv_stop(t->loop);
}

bool sb_test_loop_until(uv_loop_t *loop, const bool *flag, int timeout_ms)
{
    uv_timer_t poll;
    uv_timer_init(loop, &poll);
    poll_ctx_t ctx = {flag};
    poll.data = &ctx;
    uv_timer_start(&poll, on_poll_timer, 1, 1);
    uint64_t deadline = uv_now(loop) + (uint64_t)timeout_ms;
    while (!*flag) {
        uv_update_time(loop);
        if (uv_now(loop) >= deadline)
            break;
        uv_run(loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&poll, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

void sb_test_loop_for(uv_loop_t *loop, int ms)
{
    bool never = false;
    sb_test_loop_until(loop, &never, ms);
}

uint64_t sb_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sb_test_spin_once(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    struct timespec ts = {0, 300000};
    nanosleep(&ts, NULL);
}

/* ---- a store on a real server ---- */

static void on_store_connect(sb_redis_t *r, void *data)
{
    (void)r;
    sb_test_store_t *f = data;
    sb_store_on_connect(f->store); /* reload the functions on every (re)connect */
}

sb_test_store_t *sb_test_store_new(bool aof, int cmd_timeout_ms)
{
    sb_test_store_t *f = SB_NEW(sb_test_store_t);
    if ((aof ? sb_test_redis_start_aof(&f->srv) : sb_test_redis_start(&f->srv)) != 0) {
        sb_free(f);
        return NULL;
    }
    uv_loop_init(&f->loop);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    sb_redis_opts_t ro = {.url = f->srv.url,
                          .name = "test",
                          .cmd_timeout_ms = (uint32_t)cmd_timeout_ms,
                          .on_connect = on_store_connect,
                          .data = f};
    if (sb_redis_new(&f->loop, &ro, &f->redis) != 0)
        return NULL;
    sb_store_new(f->redis, &so, &f->store); /* set before the loop runs the hook */
    return f;
}

static void on_store_stopped(void *data)
{
    *(bool *)data = true;
}

void sb_test_store_free(sb_test_store_t *f)
{
    bool stopped = false;
    sb_redis_stop(f->redis, on_store_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    sb_store_free(f->store);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    sb_test_redis_stop(&f->srv);
    sb_free(f);
}

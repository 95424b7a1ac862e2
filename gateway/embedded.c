/* SPDX-License-Identifier: MIT */
/*
 * The embedded Redis of gateway/embedded.h: redis-server as a child process (uv_spawn)
 * listening only on a unix socket under data_dir, with its AOF there too. The child is
 * watched: an unexpected exit restarts it after a backoff (100 ms doubling to 5 s, reset
 * once a child has stayed up for 10 s). Stop sends SIGTERM, SIGKILL after 5 s, waits for
 * the exit, then frees everything and runs the caller's callback.
 *
 * Owns: the uv_process_t of the current child (heap, freed in its close callback) and
 * one uv_timer_t used first for the restart backoff, then for the SIGKILL deadline.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/embedded.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HEALTHY_RUN_MS 10000 /* a child that lived this long resets the backoff */
#define STOP_GRACE_MS  5000  /* SIGTERM, then SIGKILL after this */

struct sb_embedded {
    uv_loop_t *loop;
    char *dir; /* absolute */
    char *sock;
    char *url;
    char *logfile;
    char *server;
    uv_process_t *proc; /* the running child, NULL between runs */
    uv_timer_t *timer;  /* restart backoff, then the SIGKILL deadline */
    int pid;
    unsigned backoff_ms;
    uint64_t started_ms;
    bool stopping;
    void (*stop_cb)(void *data);
    void *stop_data;
};

static void schedule_restart(sb_embedded_t *e);

/* ---- Files ---- */

/* mkdir -p with mode 0700 for the directories it creates. 0 or -1 (errno set). */
static int mkdir_p(const char *path)
{
    char *p = sb_strdup(path);
    int rc = 0;
    for (char *s = p + 1; rc == 0; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            rc = -1;
        if (end)
            break;
        *s = '/';
    }
    struct stat st;
    if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = -1;
    sb_free(p);
    return rc;
}

/*
 * Marks every descriptor above stderr close-on-exec so the child inherits none of ours
 * (a listening socket kept open by a restarted Redis would block the next start).
 */
static void cloexec_all(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return;
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end || end == de->d_name || fd <= 2 || fd == self)
            continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(d);
}

/* ---- The child ---- */

static void on_proc_closed(uv_handle_t *h)
{
    sb_free(h);
}

static void on_timer_closed(uv_handle_t *h)
{
    sb_embedded_t *e = h->data;
    void (*cb)(void *) = e->stop_cb;
    void *data = e->stop_data;
    sb_free(e->dir);
    sb_free(e->sock);
    sb_free(e->url);
    sb_free(e->logfile);
    sb_free(e->server);
    sb_free(e);
    sb_free(h);
    if (cb)
        cb(data);
}

static void finish_stop(sb_embedded_t *e)
{
    uv_timer_stop(e->timer);
    uv_close((uv_handle_t *)e->timer, on_timer_closed);
}

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
    sb_embedded_t *e = p->data;
    int pid = e->pid;
    uv_close((uv_handle_t *)p, on_proc_closed);
    e->proc = NULL;
    e->pid = 0;
    if (e->stopping) {
        SB_LOG_INFO("embedded.exit", "pid=%d status=%lld signal=%d", pid, (long long)status,
                    term_signal);
        finish_stop(e);
        return;
    }
    if (uv_now(e->loop) - e->started_ms >= HEALTHY_RUN_MS)
        e->backoff_ms = BACKOFF_MIN_MS;
    SB_LOG_WARN("embedded.exit", "pid=%d status=%lld signal=%d restart_in_ms=%u", pid,
                (long long)status, term_signal, e->backoff_ms);
    schedule_restart(e);
}

static int spawn(sb_embedded_t *e)
{
    const char *argv[] = {e->server,  "--port", "0",    "--unixsocket", e->sock, "--unixsocketperm",
                          "700",      "--dir",  e->dir, "--appendonly", "yes",   "--appendfsync",
                          "everysec", "--save", "",     "--daemonize",  "no",    "--logfile",
                          e->logfile, NULL};
    char *args[SB_ARRAY_LEN(argv)];
    for (size_t i = 0; i < SB_ARRAY_LEN(argv); i++)
        args[i] = sb_strdup(argv[i]);
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .exit_cb = on_child_exit, .file = args[0], .args = args, .stdio_count = 3, .stdio = stdio};
    uv_process_t *p = SB_NEW(uv_process_t);
    p->data = e;
    cloexec_all();
    int rc = uv_spawn(e->loop, p, &o);
    for (size_t i = 0; i < SB_ARRAY_LEN(args); i++)
        sb_free(args[i]);
    if (rc != 0) {
        SB_LOG_ERROR("embedded.spawn", "server=%s err=\"%s\"", e->server, uv_strerror(rc));
        uv_close((uv_handle_t *)p, on_proc_closed);
        return SB_EIO;
    }
    e->proc = p;
    e->pid = p->pid;
    e->started_ms = uv_now(e->loop);
    SB_LOG_INFO("embedded.start", "pid=%d socket=%s dir=%s", e->pid, e->sock, e->dir);
    return 0;
}

static void on_restart_timer(uv_timer_t *t)
{
    sb_embedded_t *e = t->data;
    if (e->stopping)
        return;
    SB_LOG_INFO("embedded.restart", "server=%s", e->server);
    if (spawn(e) != 0)
        schedule_restart(e);
}

static void schedule_restart(sb_embedded_t *e)
{
    uv_timer_start(e->timer, on_restart_timer, e->backoff_ms, 0);
    e->backoff_ms = e->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : e->backoff_ms * 2;
}

static void on_kill_deadline(uv_timer_t *t)
{
    sb_embedded_t *e = t->data;
    if (!e->proc)
        return;
    SB_LOG_WARN("embedded.kill", "pid=%d reason=\"no exit %d ms after SIGTERM\"", e->pid,
                STOP_GRACE_MS);
    uv_process_kill(e->proc, SIGKILL);
}

/* ---- API ---- */

int sb_embedded_start(uv_loop_t *loop, const char *data_dir, const char *server_path,
                      sb_embedded_t **out)
{
    *out = NULL;
    if (!data_dir || !*data_dir)
        return SB_EINVAL;
    if (mkdir_p(data_dir) != 0) {
        SB_LOG_ERROR("embedded.dir", "dir=%s err=\"%s\"", data_dir, strerror(errno));
        return SB_EIO;
    }
    char *abs = realpath(data_dir, NULL);
    if (!abs) {
        SB_LOG_ERROR("embedded.dir", "dir=%s err=\"%s\"", data_dir, strerror(errno));
        return SB_EIO;
    }
    sb_embedded_t *e = SB_NEW(sb_embedded_t);
    e->loop = loop;
    e->dir = sb_strdup(abs);
    free(abs);
    e->sock = sb_asprintf("%s/redis.sock", e->dir);
    e->url = sb_asprintf("unix:%s", e->sock);
    e->logfile = sb_asprintf("%s/redis.log", e->dir);
    e->server = sb_strdup(server_path && *server_path ? server_path : "redis-server");
    e->backoff_ms = BACKOFF_MIN_MS;
    e->timer = SB_NEW(uv_timer_t);
    uv_timer_init(loop, e->timer);
    e->timer->data = e;
    struct sockaddr_un sun;
    if (strlen(e->sock) >= sizeof(sun.sun_path)) {
        SB_LOG_ERROR("embedded.socket", "path=%s err=\"path too long for a unix socket\"", e->sock);
        goto fail;
    }
    if (spawn(e) != 0)
        goto fail;
    *out = e;
    return 0;
fail:
    e->stopping = true;
    finish_stop(e); /* frees e once the timer is closed */
    return SB_EIO;
}

const char *sb_embedded_url(const sb_embedded_t *e)
{
    return e->url;
}

int sb_embedded_pid(const sb_embedded_t *e)
{
    return e->pid;
}

void sb_embedded_stop(sb_embedded_t *e, void (*cb)(void *data), void *data)
{
    if (!e) {
        if (cb)
            cb(data);
        return;
    }
    if (e->stopping)
        return;
    e->stopping = true;
    e->stop_cb = cb;
    e->stop_data = data;
    uv_timer_stop(e->timer);
    if (!e->proc) {
        finish_stop(e);
        return;
    }
    SB_LOG_INFO("embedded.stop", "pid=%d", e->pid);
    uv_process_kill(e->proc, SIGTERM);
    uv_timer_start(e->timer, on_kill_deadline, STOP_GRACE_MS, 0);
}

/* SPDX-License-Identifier: MIT */
/*
 * The embedded Redis of gateway/embedded.h: redis-server as a child process listening
 * only on a unix socket under data_dir, with its AOF there too (appendfsync always).
 * Exactly one Redis writes a data_dir's AOF, always:
 *
 * - The daemon holds an exclusive flock on data_dir/switchboard.lock for its lifetime and
 *   the child inherits that open file, so the lock stays held while either of them lives.
 *   A second switchboard on the same data_dir finds the lock held by a live daemon and
 *   refuses to start.
 * - The child is forked here (not uv_spawn) so that PR_SET_PDEATHSIG(SIGTERM) is set
 *   between fork and exec: when the daemon dies, even by SIGKILL, its Redis shuts down
 *   cleanly (SIGTERM makes Redis fsync the AOF). The death signal follows the thread that
 *   forked; that is the loop thread, which lives as long as the process.
 * - At start, a redis-server still serving data_dir (one left by a daemon whose death
 *   signal could not fire, or by a version without this lock) is found through the lock
 *   record, redis.pid and /proc (a redis-server whose working directory is data_dir) and
 *   stopped (SIGTERM, SIGKILL after 5 s) before the new child starts. It is not adopted:
 *   it could not be waited on nor tied to our lifetime.
 *
 * The child is watched: an unexpected exit restarts it after a backoff (100 ms doubling
 * to 5 s, reset once a child has stayed up for 10 s). Stop sends SIGTERM, SIGKILL after
 * 5 s, waits for the exit, then releases the lock, frees everything and runs the caller's
 * callback.
 *
 * Owns: the lock descriptor, a uv_signal_t on SIGCHLD (reaps only our child's pid) and one
 * uv_timer_t used first for the restart backoff, then for the SIGKILL deadline.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/embedded.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define HEALTHY_RUN_MS 10000 /* a child that lived this long resets the backoff */
#define STOP_GRACE_MS  5000  /* SIGTERM, then SIGKILL after this */
#define LOCK_WAIT_MS   (2 * STOP_GRACE_MS + 1000) /* stray servers gone, lock ours */
#define LOCK_FD        3                          /* where the child keeps the lock open */
#define MAX_STRAYS     8

struct sb_embedded {
    uv_loop_t *loop;
    char *dir; /* absolute */
    char *sock;
    char *url;
    char *logfile;
    char *pidfile;
    char *lockfile;
    char *server; /* as configured */
    char *exe;    /* resolved path that is exec'd */
    int lock_fd;
    uv_signal_t *sigchld;
    uv_timer_t *timer; /* restart backoff, then the SIGKILL deadline */
    int pid;           /* the running child, 0 between runs */
    int closing;       /* handles still to close once stopped */
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

/* A close-on-exec copy of fd numbered above LOCK_FD (fd is closed); -1 on failure. */
static int fd_high(int fd)
{
    if (fd < 0 || fd > LOCK_FD)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, LOCK_FD + 1);
    close(fd);
    return high;
}

/* The executable for `server`: as is when it has a slash, else the first hit in PATH. */
static char *find_exe(const char *server)
{
    if (strchr(server, '/'))
        return access(server, X_OK) == 0 ? sb_strdup(server) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        char *cand = sb_asprintf("%.*s/%s", (int)n, n ? p : ".", server);
        if (access(cand, X_OK) == 0)
            return cand;
        sb_free(cand);
        if (!colon)
            return NULL;
        p = colon + 1;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- Who serves data_dir: the lock record, redis.pid and /proc ---- */

/* Reads a small file into buf (NUL-terminated); the byte count or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

/* The lock record "switchboard=<pid> redis=<pid>" (zeros where absent). */
static void read_record(int fd, int *daemon, int *redis)
{
    char buf[128];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    *daemon = *redis = 0;
    sscanf(buf, "switchboard=%d redis=%d", daemon, redis);
}

static void write_record(const sb_embedded_t *e)
{
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "switchboard=%d redis=%d\n", (int)getpid(), e->pid);
    if (ftruncate(e->lock_fd, 0) != 0 || pwrite(e->lock_fd, buf, (size_t)n, 0) != n)
        SB_LOG_WARN("embedded.lock", "file=%s err=\"%s\"", e->lockfile, strerror(errno));
}

/* True when process pid has the file `st` open (a holder of the data_dir lock). */
static bool holds_file(int pid, const struct stat *st)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/fd", pid);
    DIR *d = opendir(path);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    while (!found && (de = readdir(d)) != NULL) {
        char fdpath[320];
        struct stat fs;
        snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%s", pid, de->d_name);
        found = de->d_name[0] != '.' && stat(fdpath, &fs) == 0 && fs.st_dev == st->st_dev &&
                fs.st_ino == st->st_ino;
    }
    closedir(d);
    return found;
}

/* Exited: no such process, or a zombie waiting for its parent. */
static bool pid_gone(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (read_small(path, buf, sizeof(buf)) <= 0)
        return kill(pid, 0) != 0 && errno == ESRCH;
    const char *rp = strrchr(buf, ')');
    return rp && (rp[2] == 'Z' || rp[2] == 'X');
}

/* A redis-server (our binary's name) whose working directory is data_dir. */
static bool serves_dir(const sb_embedded_t *e, int pid)
{
    char path[64], cwd[PATH_MAX], comm[64];
    snprintf(path, sizeof(path), "/proc/%d/cwd", pid);
    ssize_t n = readlink(path, cwd, sizeof(cwd) - 1);
    if (n <= 0)
        return false;
    cwd[n] = '\0';
    if (strcmp(cwd, e->dir) != 0)
        return false;
    snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    if (read_small(path, comm, sizeof(comm)) <= 0)
        return false;
    comm[strcspn(comm, "\n")] = '\0';
    const char *base = strrchr(e->exe, '/');
    base = base ? base + 1 : e->exe;
    return strncmp(comm, base, 15) == 0 || strcmp(comm, "redis-server") == 0;
}

static void add_stray(int *pids, int *n, int pid)
{
    if (pid <= 0 || pid == (int)getpid() || *n >= MAX_STRAYS)
        return;
    for (int i = 0; i < *n; i++)
        if (pids[i] == pid)
            return;
    pids[(*n)++] = pid;
}

/*
 * Redis servers left on data_dir by an earlier daemon (none of them is the live holder
 * `daemon`): the recorded child, redis.pid, any holder of the lock file among those, and
 * any redis-server whose working directory is data_dir. Returns how many are in pids.
 */
static int find_strays(const sb_embedded_t *e, const struct stat *st, int daemon, int *pids)
{
    int n = 0, recorded, redis;
    char buf[32];
    read_record(e->lock_fd, &recorded, &redis);
    int cands[2] = {redis, read_small(e->pidfile, buf, sizeof(buf)) > 0 ? atoi(buf) : 0};
    for (size_t i = 0; i < SB_ARRAY_LEN(cands); i++)
        if (cands[i] != daemon && !pid_gone(cands[i]) &&
            (holds_file(cands[i], st) || serves_dir(e, cands[i])))
            add_stray(pids, &n, cands[i]);
    DIR *d = opendir("/proc");
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end == '\0' && pid > 0 && pid != daemon && serves_dir(e, (int)pid) &&
            !pid_gone((int)pid))
            add_stray(pids, &n, (int)pid);
    }
    if (d)
        closedir(d);
    return n;
}

/*
 * Takes the data_dir lock, stopping stray servers first. 0, SB_EEXISTS when a live
 * switchboard holds it, SB_EIO when the lock can't be had in LOCK_WAIT_MS.
 */
static int take_lock(sb_embedded_t *e)
{
    e->lock_fd = fd_high(open(e->lockfile, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    struct stat st;
    if (e->lock_fd < 0 || fstat(e->lock_fd, &st) != 0) {
        SB_LOG_ERROR("embedded.lock", "file=%s err=\"%s\"", e->lockfile, strerror(errno));
        return SB_EIO;
    }
    int strays[MAX_STRAYS], nstrays = 0, waited = 0;
    bool locked = false, killed = false;
    for (;;) {
        if (!locked)
            locked = flock(e->lock_fd, LOCK_EX | LOCK_NB) == 0;
        int daemon = 0, redis;
        if (!locked) {
            read_record(e->lock_fd, &daemon, &redis);
            if (daemon > 0 && !pid_gone(daemon) && holds_file(daemon, &st)) {
                SB_LOG_ERROR("embedded.lock",
                             "dir=%s holder=%d err=\"data_dir is in use by another switchboard "
                             "(pid %d): stop it or use another data_dir\"",
                             e->dir, daemon, daemon);
                return SB_EEXISTS;
            }
        }
        int found[MAX_STRAYS];
        int nfound = find_strays(e, &st, daemon, found);
        if (!locked && nfound) { /* a switchboard that took the lock meanwhile keeps its child */
            int again;
            read_record(e->lock_fd, &again, &redis);
            if (again != daemon)
                nfound = 0; /* look again next turn */
        }
        for (int i = 0; i < nfound; i++) {
            int before = nstrays;
            add_stray(strays, &nstrays, found[i]);
            if (nstrays == before)
                continue;
            SB_LOG_WARN("embedded.stray",
                        "pid=%d dir=%s action=SIGTERM reason=\"a redis-server left by an earlier "
                        "switchboard still serves data_dir\"",
                        found[i], e->dir);
            kill(found[i], SIGTERM);
        }
        if (locked && nfound == 0)
            break;
        if (waited >= LOCK_WAIT_MS) {
            SB_LOG_ERROR("embedded.lock", "dir=%s err=\"%s\"", e->dir,
                         locked ? "a redis-server on data_dir did not exit"
                                : "data_dir lock held by a process that is not a switchboard");
            return SB_EIO;
        }
        if (!killed && nstrays && waited >= STOP_GRACE_MS) {
            killed = true;
            for (int i = 0; i < nfound; i++) {
                SB_LOG_WARN("embedded.stray", "pid=%d action=SIGKILL", found[i]);
                kill(found[i], SIGKILL);
            }
        }
        sleep_ms(20);
        waited += 20;
    }
    write_record(e);
    return 0;
}

/* ---- The child ---- */

/*
 * In the forked child, before exec: only async-signal-safe calls. Dies with the daemon
 * (SIGTERM: Redis shuts down cleanly), and exits at once if the daemon already died
 * before the death signal was armed (then the parent is no longer `parent`).
 */
static void exec_child(const sb_embedded_t *e, char *const *argv, int devnull, pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent)
        _exit(127);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(devnull, 0) < 0 || dup2(devnull, 1) < 0 || dup2(e->lock_fd, LOCK_FD) < 0)
        _exit(127);
#ifdef SYS_close_range
    syscall(SYS_close_range, LOCK_FD + 1, ~0U, 0); /* cloexec_all() covers older kernels */
#endif
    execv(e->exe, argv);
    _exit(127);
}

static int spawn(sb_embedded_t *e)
{
    int devnull = fd_high(open("/dev/null", O_RDWR | O_CLOEXEC));
    if (devnull < 0) {
        SB_LOG_ERROR("embedded.spawn", "err=\"/dev/null: %s\"", strerror(errno));
        return SB_EIO;
    }
    /* appendfsync always: Redis writes and fsyncs the AOF before it replies, so what the
     * daemon acks survives a kill of Redis or a power loss (docs/hardening-embedded.md). */
    const char *opts[][2] = {
        {"--port", "0"},          {"--unixsocket", e->sock}, {"--unixsocketperm", "700"},
        {"--dir", e->dir},        {"--appendonly", "yes"},   {"--appendfsync", "always"},
        {"--save", ""},           {"--daemonize", "no"},     {"--pidfile", e->pidfile},
        {"--logfile", e->logfile}};
    char *args[2 * SB_ARRAY_LEN(opts) + 2]; /* copied before fork: the child can't allocate */
    size_t n = 0;
    args[n++] = sb_strdup(e->exe);
    for (size_t i = 0; i < SB_ARRAY_LEN(opts); i++) {
        args[n++] = sb_strdup(opts[i][0]);
        args[n++] = sb_strdup(opts[i][1]);
    }
    args[n] = NULL;
    cloexec_all();
    /* No signal handler of ours may run in the child between fork and exec. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        exec_child(e, args, devnull, parent);
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    close(devnull);
    for (size_t i = 0; i < n; i++)
        sb_free(args[i]);
    if (pid < 0) {
        SB_LOG_ERROR("embedded.spawn", "server=%s err=\"%s\"", e->exe, strerror(err));
        return SB_EIO;
    }
    e->pid = (int)pid;
    e->started_ms = uv_now(e->loop);
    write_record(e);
    SB_LOG_INFO("embedded.start", "pid=%d socket=%s dir=%s", e->pid, e->sock, e->dir);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    sb_embedded_t *e = h->data;
    sb_free(h);
    if (--e->closing > 0)
        return;
    if (e->lock_fd >= 0)
        close(e->lock_fd); /* the lock is free once the child has exited too */
    void (*cb)(void *) = e->stop_cb;
    void *data = e->stop_data;
    sb_free(e->dir);
    sb_free(e->sock);
    sb_free(e->url);
    sb_free(e->logfile);
    sb_free(e->pidfile);
    sb_free(e->lockfile);
    sb_free(e->server);
    sb_free(e->exe);
    sb_free(e);
    if (cb)
        cb(data);
}

static void finish_stop(sb_embedded_t *e)
{
    uv_timer_stop(e->timer);
    uv_signal_stop(e->sigchld);
    e->closing = 2;
    uv_close((uv_handle_t *)e->timer, on_handle_closed);
    uv_close((uv_handle_t *)e->sigchld, on_handle_closed);
}

static void on_child_exit(sb_embedded_t *e, int status)
{
    int pid = e->pid;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    e->pid = 0;
    if (e->stopping) {
        SB_LOG_INFO("embedded.exit", "pid=%d status=%d signal=%d", pid, code, sig);
        finish_stop(e);
        return;
    }
    if (uv_now(e->loop) - e->started_ms >= HEALTHY_RUN_MS)
        e->backoff_ms = BACKOFF_MIN_MS;
    SB_LOG_WARN("embedded.exit", "pid=%d status=%d signal=%d restart_in_ms=%u", pid, code, sig,
                e->backoff_ms);
    schedule_restart(e);
}

/* SIGCHLD: reaps our child only (other children belong to whoever spawned them). */
static void on_sigchld(uv_signal_t *s, int signum)
{
    sb_embedded_t *e = s->data;
    int status;
    if (e->pid > 0 && waitpid(e->pid, &status, WNOHANG) == e->pid)
        on_child_exit(e, status);
}

static void on_restart_timer(uv_timer_t *t)
{
    sb_embedded_t *e = t->data;
    if (e->stopping)
        return;
    SB_LOG_INFO("embedded.restart", "server=%s", e->exe);
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
    if (!e->pid)
        return;
    SB_LOG_WARN("embedded.kill", "pid=%d reason=\"no exit %d ms after SIGTERM\"", e->pid,
                STOP_GRACE_MS);
    kill(e->pid, SIGKILL);
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
    e->pidfile = sb_asprintf("%s/redis.pid", e->dir);
    e->lockfile = sb_asprintf("%s/switchboard.lock", e->dir);
    e->server = sb_strdup(server_path && *server_path ? server_path : "redis-server");
    e->lock_fd = -1;
    e->backoff_ms = BACKOFF_MIN_MS;
    e->timer = SB_NEW(uv_timer_t);
    uv_timer_init(loop, e->timer);
    e->timer->data = e;
    e->sigchld = SB_NEW(uv_signal_t);
    uv_signal_init(loop, e->sigchld);
    e->sigchld->data = e;
    int rc = SB_EIO;
    struct sockaddr_un sun;
    if (strlen(e->sock) >= sizeof(sun.sun_path)) {
        SB_LOG_ERROR("embedded.socket", "path=%s err=\"path too long for a unix socket\"", e->sock);
        goto fail;
    }
    if (!(e->exe = find_exe(e->server))) {
        SB_LOG_ERROR("embedded.spawn", "server=%s err=\"not found or not executable\"", e->server);
        goto fail;
    }
    if ((rc = take_lock(e)) != 0)
        goto fail;
    uv_signal_start(e->sigchld, on_sigchld, SIGCHLD);
    if ((rc = spawn(e)) != 0)
        goto fail;
    *out = e;
    return 0;
fail:
    e->stopping = true;
    finish_stop(e); /* frees e once its handles are closed */
    return rc;
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
    if (!e->pid) {
        finish_stop(e);
        return;
    }
    SB_LOG_INFO("embedded.stop", "pid=%d", e->pid);
    kill(e->pid, SIGTERM);
    uv_timer_start(e->timer, on_kill_deadline, STOP_GRACE_MS, 0);
}

/* SPDX-License-Identifier: MIT */
/* The SMTP test server of smtp.h: starts tests/harness/smtp_server.py and reads its Maildir. */
#include "tests/harness/smtp.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "tests/harness/harness.h"

#ifndef SB_SMTP_SERVER_PY
#error "SB_SMTP_SERVER_PY (the path of tests/harness/smtp_server.py) must be defined"
#endif

/* The whole file, NUL-terminated (sb_free), or NULL. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *p = sb_malloc(cap);
    size_t got;
    while ((got = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            p = sb_realloc(p, cap);
        }
    }
    fclose(f);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

static unsigned read_count(const sb_test_smtp_t *s, const char *name)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", s->dir, name);
    char *t = slurp(path, NULL);
    unsigned n = t ? (unsigned)strtoul(t, NULL, 10) : 0;
    sb_free(t);
    return n;
}

/* Appends copies of a (and b) to argv: execv wants them writable. */
static void add_arg(char **argv, int *argc, const char *a, const char *b)
{
    argv[(*argc)++] = strdup(a);
    if (b)
        argv[(*argc)++] = strdup(b);
}

int sb_test_smtp_start(sb_test_smtp_t *s, const sb_test_smtp_opts_t *opts)
{
    static const sb_test_smtp_opts_t none = {0};
    const sb_test_smtp_opts_t *o = opts ? opts : &none;
    memset(s, 0, sizeof(*s));
    if (sb_test_mkdtemp(s->dir, "smtp") != 0)
        return -1;
    s->port = sb_test_free_port();
    const char *host = o->host ? o->host : "127.0.0.1";
    snprintf(s->url, sizeof(s->url), "%s://%s:%d", o->implicit_tls ? "smtps" : "smtp", host,
             s->port);
    char port[16], fail[16], auth[256], log[300];
    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(fail, sizeof(fail), "%u", o->fail_data);
    snprintf(auth, sizeof(auth), "%s:%s", o->user ? o->user : "", o->password ? o->password : "");
    snprintf(log, sizeof(log), "%s/server.log", s->dir);
    char *argv[32];
    int argc = 0;
    add_arg(argv, &argc, "/usr/bin/python3", SB_SMTP_SERVER_PY);
    add_arg(argv, &argc, "--host", host);
    add_arg(argv, &argc, "--port", port);
    add_arg(argv, &argc, "--dir", s->dir);
    add_arg(argv, &argc, "--fail-data", fail);
    if (o->tls_cert) {
        add_arg(argv, &argc, "--tls-cert", o->tls_cert);
        add_arg(argv, &argc, "--tls-key", o->tls_key);
    }
    if (o->implicit_tls)
        add_arg(argv, &argc, "--implicit-tls", NULL);
    if (o->user)
        add_arg(argv, &argc, "--auth", auth);
    if (o->data_reply)
        add_arg(argv, &argc, "--data-reply", o->data_reply);
    if (o->rcpt_reply)
        add_arg(argv, &argc, "--rcpt-reply", o->rcpt_reply);
    if (o->hang)
        add_arg(argv, &argc, "--hang", o->hang);
    argv[argc] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        for (int i = 0; i < argc; i++)
            free(argv[i]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that crashes leaves no server behind */
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("PYTHONWARNINGS", "ignore", 1);
        execv(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    s->pid = pid;
    /* Until the server says it listens (it writes DIR/ready then), or it died. */
    char ready[300];
    snprintf(ready, sizeof(ready), "%s/ready", s->dir);
    uint64_t deadline = sb_test_now_ms() + 10000;
    while (access(ready, F_OK) != 0) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid || sb_test_now_ms() > deadline) {
            fprintf(stderr, "smtp test server did not start (see %s)\n", log);
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            s->pid = 0;
            return -1;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

void sb_test_smtp_stop(sb_test_smtp_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
    if (s->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}

unsigned sb_test_smtp_connections(const sb_test_smtp_t *s)
{
    return read_count(s, "connections");
}

/* Messages are named 000001.smtp, 000002.smtp... in arrival order. */
unsigned sb_test_smtp_count(const sb_test_smtp_t *s)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/mail/new", s->dir);
    DIR *d = opendir(path);
    unsigned n = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strstr(e->d_name, ".smtp") != NULL;
    closedir(d);
    return n;
}

char *sb_test_smtp_message(const sb_test_smtp_t *s, unsigned i, size_t *len)
{
    char path[300];
    snprintf(path, sizeof(path), "%s/mail/new/%06u.smtp", s->dir, i + 1);
    return slurp(path, len);
}

/* SPDX-License-Identifier: MIT */
/* The Dovecot of dovecot.h: a config file, a process group, a tiny synchronous IMAP client. */
#include "tests/harness/dovecot.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/harness/harness.h"

/* ---- A synchronous IMAP client (plain, on the imap port; loopback counts as secure) ---- */

typedef struct cl {
    int fd;
    char buf[65536];
    size_t len;
} cl_t;

/* Reads one line (CRLF stripped) into line; -1 on error or timeout. */
static int cl_line(cl_t *c, char *line, size_t n)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl) {
            size_t l = (size_t)(nl - c->buf) + 1;
            size_t k = l - 1;
            if (k && c->buf[k - 1] == '\r')
                k--;
            if (k >= n)
                k = n - 1;
            memcpy(line, c->buf, k);
            line[k] = '\0';
            memmove(c->buf, c->buf + l, c->len - l);
            c->len -= l;
            return 0;
        }
        if (c->len == sizeof(c->buf))
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static int cl_open(cl_t *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char line[512];
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        goto fail;
    do /* "* OK Waiting for authentication process to respond.." comes first at times */
        if (cl_line(c, line, sizeof(line)) < 0 || strncmp(line, "* OK", 4) != 0)
            goto fail;
    while (!strstr(line, "ready"));
    return 0;
fail:
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    return -1;
}

/* Sends "t <cmd>" (plus a literal's bytes, if any, with LITERAL+) and collects the untagged
 * lines into out (may be NULL) until the tagged answer. 0 on OK. */
static int cl_cmd(cl_t *c, const char *cmd, const char *lit, size_t lit_len, char *out, size_t n)
{
    char head[1024];
    int hl = snprintf(head, sizeof(head), "t %s\r\n", cmd);
    if (send(c->fd, head, (size_t)hl, MSG_NOSIGNAL) != hl)
        return -1;
    if (lit && (send(c->fd, lit, lit_len, MSG_NOSIGNAL) != (ssize_t)lit_len ||
                send(c->fd, "\r\n", 2, MSG_NOSIGNAL) != 2))
        return -1;
    size_t used = 0;
    if (out && n)
        out[0] = '\0';
    char line[4096];
    for (;;) {
        if (cl_line(c, line, sizeof(line)) < 0)
            return -1;
        if (out && used + 1 < n)
            used += (size_t)snprintf(out + used, n - used, "%s\n", line);
        if (strncmp(line, "t ", 2) == 0)
            return strncmp(line, "t OK", 4) == 0 ? 0 : -1;
    }
}

static int cl_login(cl_t *c, const sb_test_dovecot_t *d)
{
    char cmd[200];
    snprintf(cmd, sizeof(cmd), "LOGIN %s %s", d->user, d->pass);
    if (cl_open(c, d->port) < 0)
        return -1;
    if (cl_cmd(c, cmd, NULL, 0, NULL, 0) < 0) {
        close(c->fd);
        return -1;
    }
    return 0;
}

static void cl_close(cl_t *c)
{
    cl_cmd(c, "LOGOUT", NULL, 0, NULL, 0);
    close(c->fd);
}

/* ---- The server ---- */

static int write_conf(sb_test_dovecot_t *d, const sb_test_dovecot_opts_t *o)
{
    bool tls = o && o->cert_pem && o->key_pem;
    struct passwd *pw = getpwuid(getuid());
    struct group *gr = getgrgid(getgid());
    const char *user = pw ? pw->pw_name : "root", *group = gr ? gr->gr_name : "root";
    const char *login_user = user;
    d->mail_uid = getuid();
    d->mail_gid = getgid();
    if (getuid() == 0) { /* Dovecot runs neither logins nor mail as root */
        login_user = "dovenull";
        d->mail_uid = 65534;
        d->mail_gid = 65534;
    }
    FILE *f = fopen(d->conf, "w");
    if (!f)
        return -1;
    fprintf(f,
            "protocols = imap\nlisten = 127.0.0.1%s%s\nbase_dir = %s/run\n"
            "state_dir = %s/state\nlog_path = %s\nssl = %s\n",
            o && o->listen_also ? ", " : "", o && o->listen_also ? o->listen_also : "", d->dir,
            d->dir, d->log, tls ? "yes" : "no");
    if (tls)
        fprintf(f, "ssl_cert = <%s\nssl_key = <%s\n", o->cert_pem, o->key_pem);
    fprintf(f,
            "disable_plaintext_auth = no\nauth_mechanisms = plain login\nauth_verbose = yes\n"
            "default_internal_user = %s\ndefault_internal_group = %s\ndefault_login_user = %s\n"
            "first_valid_uid = 0\nmail_location = maildir:%s/mail/%%n\n"
            "passdb {\n  driver = static\n  args = password=%s\n}\n"
            "userdb {\n  driver = static\n  args = uid=%u gid=%u home=%s/home/%%n\n}\n"
            "service imap-login {\n  chroot =\n  inet_listener imap {\n    port = %d\n  }\n"
            "  inet_listener imaps {\n    port = %d\n    ssl = yes\n  }\n}\n"
            "service anvil {\n  chroot =\n}\nservice stats {\n  chroot =\n}\n",
            user, group, login_user, d->dir, d->pass, (unsigned)d->mail_uid, (unsigned)d->mail_gid,
            d->dir, d->port, d->tls_port);
    if (o && o->no_idle)
        fprintf(f, "imap_capability = IMAP4rev1 LITERAL+ UIDPLUS\n");
    return fclose(f) == 0 ? 0 : -1;
}

static int spawn(sb_test_dovecot_t *d)
{
    char pidfile[300];
    snprintf(pidfile, sizeof(pidfile), "%s/run/master.pid", d->dir);
    unlink(pidfile);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        setpgid(0, 0); /* one group: kill(-pid) takes every Dovecot process down */
        execlp("dovecot", "dovecot", "-F", "-c", d->conf, (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    d->pid = pid;
    for (int i = 0; i < 500; i++) {
        cl_t c;
        if (cl_open(&c, d->port) == 0) {
            close(c.fd);
            return 0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            d->pid = 0;
            return -1;
        }
        usleep(20000);
    }
    return -1;
}

int sb_test_dovecot_start(sb_test_dovecot_t *d, const sb_test_dovecot_opts_t *o)
{
    memset(d, 0, sizeof(*d));
    d->user = "alice";
    d->pass = "secret";
    if (sb_test_mkdtemp(d->dir, "dovecot") < 0)
        return -1;
    chmod(d->dir, 0755); /* the mail user (nobody, under root) must reach its maildir */
    snprintf(d->conf, sizeof(d->conf), "%s/dovecot.conf", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/dovecot.log", d->dir);
    d->port = sb_test_free_port();
    if (o && o->cert_pem && o->key_pem)
        d->tls_port = sb_test_free_port();
    char path[400];
    const char *sub[] = {"run", "state", "mail", "home"};
    for (size_t i = 0; i < sizeof(sub) / sizeof(*sub); i++) {
        snprintf(path, sizeof(path), "%s/%s", d->dir, sub[i]);
        mkdir(path, 0755);
    }
    if (write_conf(d, o) < 0)
        return -1;
    snprintf(path, sizeof(path), "%s/mail", d->dir);
    if (chown(path, d->mail_uid, d->mail_gid) < 0 && getuid() == 0)
        return -1;
    snprintf(path, sizeof(path), "%s/home", d->dir);
    if (chown(path, d->mail_uid, d->mail_gid) < 0 && getuid() == 0)
        return -1;
    return spawn(d);
}

void sb_test_dovecot_kill(sb_test_dovecot_t *d)
{
    if (d->pid > 0) {
        kill(-d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
        d->pid = 0;
    }
}

int sb_test_dovecot_restart(sb_test_dovecot_t *d)
{
    sb_test_dovecot_kill(d);
    return spawn(d);
}

void sb_test_dovecot_stop(sb_test_dovecot_t *d)
{
    sb_test_dovecot_kill(d);
    if (d->dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
        int rc = system(cmd);
        (void)rc;
        d->dir[0] = '\0';
    }
}

void sb_test_dovecot_url(const sb_test_dovecot_t *d, bool tls, const char *host, const char *folder,
                         char *out, size_t n)
{
    snprintf(out, n, "%s://%s:%s@%s:%d/%s", tls ? "imaps" : "imap", d->user, d->pass, host,
             tls ? d->tls_port : d->port, folder ? folder : "");
}

/* ---- Mail ---- */

int sb_test_dovecot_append(sb_test_dovecot_t *d, const char *folder, const char *raw, size_t len,
                           uint32_t *uid)
{
    cl_t c;
    if (cl_login(&c, d) < 0)
        return -1;
    char cmd[300], out[2048];
    snprintf(cmd, sizeof(cmd), "APPEND \"%s\" {%zu+}", folder, len);
    int rc = cl_cmd(&c, cmd, raw, len, out, sizeof(out));
    cl_close(&c);
    if (rc < 0)
        return -1;
    const char *p = strstr(out, "[APPENDUID ");
    unsigned v, u;
    if (uid && (!p || sscanf(p, "[APPENDUID %u %u]", &v, &u) != 2))
        return -1;
    if (uid)
        *uid = u;
    return 0;
}

int sb_test_dovecot_deliver(sb_test_dovecot_t *d, const char *folder, const char *raw, size_t len)
{
    char box[400], tmp[600], dst[600];
    if (strcasecmp(folder, "INBOX") == 0)
        snprintf(box, sizeof(box), "%s/mail/%s", d->dir, d->user);
    else
        snprintf(box, sizeof(box), "%s/mail/%s/.%s", d->dir, d->user, folder);
    const char *sub[] = {"", "/cur", "/new", "/tmp"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(tmp, sizeof(tmp), "%s%s", box, sub[i]);
        if (mkdir(tmp, 0700) == 0 && chown(tmp, d->mail_uid, d->mail_gid) < 0)
            return -1;
    }
    static unsigned seq;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char name[120];
    snprintf(name, sizeof(name), "%lld.M%ldP%dQ%u.sbtest", (long long)ts.tv_sec, ts.tv_nsec / 1000,
             (int)getpid(), ++seq);
    snprintf(tmp, sizeof(tmp), "%s/tmp/%s", box, name);
    snprintf(dst, sizeof(dst), "%s/new/%s", box, name);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return -1;
    size_t w = fwrite(raw, 1, len, f);
    if (fclose(f) != 0 || w != len || chown(tmp, d->mail_uid, d->mail_gid) < 0)
        return -1;
    return rename(tmp, dst);
}

/* Logs in and runs verb "folder" for each verb, stopping at the first that fails. */
static int folder_cmds(sb_test_dovecot_t *d, const char *folder, const char *const *verbs, size_t n)
{
    cl_t c;
    if (cl_login(&c, d) < 0)
        return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "%s \"%s\"", verbs[i], folder);
        rc = cl_cmd(&c, cmd, NULL, 0, NULL, 0);
    }
    cl_close(&c);
    return rc;
}

int sb_test_dovecot_create(sb_test_dovecot_t *d, const char *folder)
{
    const char *const verbs[] = {"CREATE"};
    return folder_cmds(d, folder, verbs, 1);
}

int sb_test_dovecot_recreate(sb_test_dovecot_t *d, const char *folder)
{
    const char *const verbs[] = {"DELETE", "CREATE"};
    return folder_cmds(d, folder, verbs, 2);
}

uint32_t sb_test_dovecot_uidvalidity(sb_test_dovecot_t *d, const char *folder)
{
    cl_t c;
    if (cl_login(&c, d) < 0)
        return 0;
    char cmd[300], out[2048];
    snprintf(cmd, sizeof(cmd), "STATUS \"%s\" (UIDVALIDITY)", folder);
    int rc = cl_cmd(&c, cmd, NULL, 0, out, sizeof(out));
    cl_close(&c);
    const char *p = rc == 0 ? strstr(out, "(UIDVALIDITY ") : NULL;
    unsigned v = 0;
    if (!p || sscanf(p, "(UIDVALIDITY %u)", &v) != 1)
        return 0;
    return v;
}

int sb_test_dovecot_flags(sb_test_dovecot_t *d, const char *folder, uint32_t uid, char *out,
                          size_t n)
{
    cl_t c;
    if (cl_login(&c, d) < 0)
        return -1;
    char cmd[300], resp[2048];
    snprintf(cmd, sizeof(cmd), "EXAMINE \"%s\"", folder);
    int rc = cl_cmd(&c, cmd, NULL, 0, NULL, 0);
    snprintf(cmd, sizeof(cmd), "UID FETCH %u (FLAGS)", uid);
    if (rc == 0)
        rc = cl_cmd(&c, cmd, NULL, 0, resp, sizeof(resp));
    cl_close(&c);
    const char *p = rc == 0 ? strstr(resp, "FLAGS (") : NULL;
    if (!p)
        return -1;
    p += 6;
    const char *e = strchr(p, ')');
    if (!e)
        return -1;
    snprintf(out, n, "%.*s", (int)(e - p + 1), p);
    return 0;
}

int sb_test_dovecot_logins(const sb_test_dovecot_t *d)
{
    FILE *f = fopen(d->log, "r");
    if (!f)
        return 0;
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "imap-login: Info: Login: user="))
            n++;
    fclose(f);
    return n;
}

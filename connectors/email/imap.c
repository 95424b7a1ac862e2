/* SPDX-License-Identifier: MIT */
/*
 * The loop side of an IMAP session (imap.h): the URL parser, start, the hand-over of what
 * the worker thread posts (statuses, messages in UID order), the owner's sb_imap_done
 * turned into credits for the worker, and a stop that never blocks: it shuts the socket
 * down and writes the wake eventfd, so whatever the thread is blocked in (IDLE, a fetch, a
 * TLS handshake, a backoff) returns at once. The thread's body is imap_session.c.
 */
#include "connectors/email/imap.h"
#include "connectors/email/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/email/imap_internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

const char *sb_imap_status_name(int status)
{
    switch (status) {
    case SB_IMAP_CONNECTED:
        return "connected";
    case SB_IMAP_IDLING:
        return "idling";
    case SB_IMAP_POLLING:
        return "polling";
    case SB_IMAP_UIDVALIDITY:
        return "uidvalidity";
    case SB_IMAP_ERROR:
        return "error";
    }
    return "unknown";
}

/* ---- URL ---- */

void sb_imap_url_dispose(sb_imap_url_t *u)
{
    sb_free(u->user);
    sb_free(u->pass);
    sb_free(u->host);
    sb_free(u->folder);
    memset(u, 0, sizeof(*u));
}

static int url_fail(sb_imap_url_t *u, char *why, size_t why_len, const char *reason)
{
    sb_imap_url_dispose(u);
    if (why_len)
        snprintf(why, why_len, "%s", reason);
    return SB_ECONFIG;
}

/* The authority's host[:port] part, hs[0..n): brackets for IPv6, port 1..65535. */
static int parse_hostport(sb_imap_url_t *u, const char *hs, size_t n, const char **err)
{
    const char *h = hs, *hend, *p = NULL;
    if (n && *hs == '[') {
        const char *rb = memchr(hs, ']', n);
        if (!rb) {
            *err = "unclosed '[' in the host";
            return -1;
        }
        h = hs + 1;
        hend = rb;
        if (rb + 1 < hs + n) {
            if (rb[1] != ':') {
                *err = "junk after ']'";
                return -1;
            }
            p = rb + 2;
        }
    } else {
        const char *colon = memchr(hs, ':', n);
        hend = colon ? colon : hs + n;
        if (colon)
            p = colon + 1;
    }
    if (hend == h) {
        *err = "no host";
        return -1;
    }
    for (const char *c = h; c < hend; c++)
        if (*c <= ' ' || *c == '/' || *c == '@' || *c == '%' || *c == '?' || *c == '#' ||
            (unsigned char)*c >= 0x7f) {
            *err = "bad character in the host";
            return -1;
        }
    u->host = sb_strndup(h, (size_t)(hend - h));
    if (p) {
        unsigned long port = 0;
        const char *e = hs + n;
        if (p == e) {
            *err = "empty port";
            return -1;
        }
        for (const char *c = p; c < e; c++) {
            if (!isdigit((unsigned char)*c) ||
                (port = port * 10 + (unsigned long)(*c - '0')) > 65535) {
                *err = "bad port";
                return -1;
            }
        }
        if (port == 0) {
            *err = "bad port";
            return -1;
        }
        u->port = (uint16_t)port;
    }
    return 0;
}

int sb_imap_url_parse(const char *url, sb_imap_url_t *out, char *why, size_t why_len)
{
    memset(out, 0, sizeof(*out));
    if (!url)
        return url_fail(out, why, why_len, "no URL");
    const char *rest;
    if (strncasecmp(url, "imaps://", 8) == 0) {
        out->tls = true;
        out->port = 993;
        rest = url + 8;
    } else if (strncasecmp(url, "imap://", 7) == 0) {
        out->port = 143;
        rest = url + 7;
    } else {
        return url_fail(out, why, why_len, "not an imap:// or imaps:// URL");
    }
    const char *slash = strchr(rest, '/');
    const char *auth_end = slash ? slash : rest + strlen(rest);
    const char *at = NULL;
    for (const char *c = rest; c < auth_end; c++)
        if (*c == '@')
            at = c; /* the last '@': an unencoded '@' in the user name stays part of it */
    const char *hs = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        const char *uend = colon ? colon : at;
        out->user = sb__email_pct_decode(rest, (size_t)(uend - rest));
        if (!out->user)
            return url_fail(out, why, why_len, "bad %-escape in the user name");
        if (colon && !(out->pass = sb__email_pct_decode(colon + 1, (size_t)(at - colon - 1))))
            return url_fail(out, why, why_len, "bad %-escape in the password");
        hs = at + 1;
    } else {
        out->user = sb_strdup("");
    }
    const char *err = NULL;
    if (parse_hostport(out, hs, (size_t)(auth_end - hs), &err) < 0)
        return url_fail(out, why, why_len, err);
    if (slash && slash[1]) {
        const char *fend = slash + 1 + strcspn(slash + 1, "?#");
        if (*fend)
            return url_fail(out, why, why_len, "a query or fragment in the URL");
        out->folder = sb__email_pct_decode(slash + 1, (size_t)(fend - slash - 1));
        if (!out->folder)
            return url_fail(out, why, why_len, "bad %-escape in the folder");
    } else {
        out->folder = sb_strdup("INBOX");
    }
    if (!*out->folder)
        return url_fail(out, why, why_len, "empty folder");
    return 0;
}

/* ---- The loop side ---- */

void sb__imap_item_free(sb_imap_t *m, sb__imap_item_t *it)
{
    if (!it)
        return;
    if (it->parsed && m->cbs.free_parsed)
        m->cbs.free_parsed(it->parsed, m->data);
    sb_free(it->raw);
    sb_free(it->reason);
    sb_free(it);
}

static void on_result(sb_worker_t *w, void *result, void *data)
{
    sb_imap_t *m = data;
    sb__imap_item_t *it = result;
    if (m->closing) {
        sb__imap_item_free(m, it);
        return;
    }
    if (!it->is_message) {
        if (m->cbs.on_status)
            m->cbs.on_status(m, it->status, it->reason ? it->reason : "", m->data);
        sb__imap_item_free(m, it);
        return;
    }
    /* Held until sb_imap_done: raw and parsed stay valid for the owner's store. */
    if (m->held_tail)
        m->held_tail->next = it;
    else
        m->held = it;
    m->held_tail = it;
    m->cbs.on_message(m, it->uidvalidity, it->uid, it->raw, it->len, it->parsed, m->data);
}

static void free_credit(void *job, void *data)
{
    sb_free(job);
}

/* The credit and wake-up for the worker after a done (or a stop). */
static void wake(sb_imap_t *m)
{
    uint64_t one = 1;
    ssize_t r = write(m->wake_fd, &one, sizeof(one));
    (void)r; /* an eventfd at its maximum is awake anyway */
}

void sb_imap_done(sb_imap_t *m, uint32_t uid, int err)
{
    sb__imap_item_t *prev = NULL, *it = m->held;
    while (it && it->uid != uid) {
        prev = it;
        it = it->next;
    }
    if (!it)
        return;
    if (prev)
        prev->next = it->next;
    else
        m->held = it->next;
    if (m->held_tail == it)
        m->held_tail = prev;
    sb__imap_credit_t *c = SB_NEW(sb__imap_credit_t);
    c->uidvalidity = it->uidvalidity;
    c->uid = uid;
    c->len = it->raw ? it->len : 0;
    c->err = err;
    sb__imap_item_free(m, it);
    if (sb_worker_submit(m->worker, c) != 0) {
        sb_free(c); /* stopping: nobody needs the credit */
        return;
    }
    if (err)
        wake(m); /* an IDLE must end so the message is fetched again */
}

static void free_session(sb_imap_t *m)
{
    sb_imap_url_dispose(&m->url);
    sb_free(m->name);
    sb_free(m->tls_ca);
    if (m->wake_fd >= 0)
        close(m->wake_fd);
    pthread_mutex_destroy(&m->mu);
    sb_free(m);
}

int sb_imap_start(uv_loop_t *loop, const sb_imap_opts_t *opts, const sb_imap_cbs_t *cbs, void *data,
                  sb_imap_t **out)
{
    if (!opts->name || !*opts->name || !cbs->on_message || (cbs->parse && !cbs->free_parsed)) {
        SB_LOG_ERROR("imap.start", "mailbox=%s err=CONFIG why=\"name and on_message required\"",
                     opts->name ? opts->name : "");
        return SB_ECONFIG;
    }
    sb_imap_t *m = SB_NEW(sb_imap_t);
    char why[128];
    if (sb_imap_url_parse(opts->url, &m->url, why, sizeof(why)) != 0) {
        SB_LOG_ERROR("imap.start", "mailbox=%s err=CONFIG why=\"%s\"", opts->name, why);
        sb_free(m);
        return SB_ECONFIG;
    }
    if (opts->password) {
        sb_free(m->url.pass);
        m->url.pass = sb_strdup(opts->password);
    }
    if (!m->url.pass)
        m->url.pass = sb_strdup("");
    m->loop = loop;
    m->o = *opts;
    m->name = sb_strdup(opts->name);
    m->tls_ca = opts->tls_ca ? sb_strdup(opts->tls_ca) : NULL;
    m->o.name = m->name;
    m->o.tls_ca = m->tls_ca;
    m->o.url = m->o.password = NULL; /* the parsed url holds what is needed */
    if (!m->o.idle_restart_s || m->o.idle_restart_s >= 29 * 60)
        m->o.idle_restart_s = 28 * 60;
    if (!m->o.poll_s)
        m->o.poll_s = 60;
    if (!m->o.timeout_s)
        m->o.timeout_s = 60;
    if (!m->o.backoff_min_ms)
        m->o.backoff_min_ms = 1000;
    if (!m->o.backoff_max_ms)
        m->o.backoff_max_ms = 5 * 60 * 1000;
    if (m->o.backoff_max_ms < m->o.backoff_min_ms)
        m->o.backoff_max_ms = m->o.backoff_min_ms;
    if (!m->o.max_inflight)
        m->o.max_inflight = 32;
    if (!m->o.max_inflight_bytes)
        m->o.max_inflight_bytes = 64u * 1024 * 1024;
    m->cbs = *cbs;
    m->data = data;
    m->uidvalidity = opts->uidvalidity;
    m->last_uid = opts->uidvalidity ? opts->last_uid : 0;
    m->sock = -1;
    pthread_mutex_init(&m->mu, NULL);
    m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    sb_worker_ops_t ops = {.run = sb__imap_run, .on_result = on_result, .free_job = free_credit};
    if (m->wake_fd < 0 || sb_worker_start(loop, &ops, m, &m->worker) != 0) {
        SB_LOG_ERROR("imap.start", "mailbox=%s err=INTERNAL why=\"no worker thread\"", m->name);
        free_session(m);
        return SB_EINTERNAL;
    }
    *out = m;
    return 0;
}

static void on_stopped(void *data)
{
    sb_imap_t *m = data;
    void (*cb)(void *) = m->stop_cb;
    void *cb_data = m->stop_data;
    for (sb__imap_item_t *it = m->held, *next; it; it = next) {
        next = it->next;
        sb__imap_item_free(m, it);
    }
    free_session(m);
    if (cb)
        cb(cb_data);
}

void sb_imap_stop(sb_imap_t *m, void (*cb)(void *), void *cb_data)
{
    if (!m) {
        if (cb)
            cb(cb_data);
        return;
    }
    if (m->closing)
        return;
    m->closing = true;
    m->stop_cb = cb;
    m->stop_data = cb_data;
    pthread_mutex_lock(&m->mu);
    m->stopping = true;
    if (m->sock >= 0)
        shutdown(m->sock, SHUT_RDWR); /* every blocking read or write returns now */
    pthread_mutex_unlock(&m->mu);
    wake(m);
    sb_worker_stop(m->worker, on_stopped, m);
}

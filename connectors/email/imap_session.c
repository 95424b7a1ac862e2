/* SPDX-License-Identifier: MIT */
/*
 * The worker thread of an IMAP session (imap.h), on libetpan's blocking API:
 *
 *   connect (our own non-blocking connect, so a stop interrupts it) → TLS (imaps) or
 *   STARTTLS (imap://; refused when not offered, except to a loopback peer) → verify the
 *   chain and host name (tls_verify.h) → LOGIN → EXAMINE (read-only: RFC 3501 §6.3.2) →
 *   UID FETCH last+1:* (UID RFC822.SIZE) → UID FETCH (UID BODY.PEEK[]) in batches bounded
 *   by the owner's credits → IDLE (RFC 2177) or a poll → fetch again → …
 *
 * Any error ends the connection; the thread waits an exponential backoff with jitter and
 * starts over from the last UID handed over. The socket is published under the session's
 * mutex while it exists, so sb_imap_stop can shut it down from the loop: every blocking
 * libetpan call then fails at once, and the thread sees `stopping` and returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libetpan/libetpan.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/email/imap_internal.h"
#include "connectors/email/tls_verify.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

/* What a step returns: 0 go on, ERR the connection failed (reason in s->why), STOP. */
enum { STEP_OK = 0, STEP_ERR = -1, STEP_STOP = -2 };

/* One connection's state (the thread's stack). */
typedef struct sess {
    sb_imap_t *m;
    sb_worker_t *w;
    mailimap *imap;
    bool has_idle;
    char why[512];
} sess_t;

static bool is_stopping(sb_imap_t *m)
{
    pthread_mutex_lock(&m->mu);
    bool s = m->stopping;
    pthread_mutex_unlock(&m->mu);
    return s;
}

static int fail(sess_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(sess_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof(s->why), fmt, ap);
    va_end(ap);
    return is_stopping(s->m) ? STEP_STOP : STEP_ERR;
}

/* A libetpan failure: the command, what went wrong, the server's text if it said something. */
static int imap_fail(sess_t *s, const char *what, int r)
{
    const char *text = s->imap && s->imap->imap_response ? s->imap->imap_response : "";
    const char *how = r == MAILIMAP_ERROR_STREAM      ? "connection lost"
                      : r == MAILIMAP_ERROR_PARSE     ? "connection lost or unreadable answer"
                      : r == MAILIMAP_ERROR_BAD_STATE ? "not allowed now"
                                                      : "refused";
    return fail(s, "%s: %s (libetpan %d)%s%s", what, how, r, *text ? ": " : "", text);
}

/* ---- Posting to the loop ---- */

static void post_status(sess_t *s, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void post_status(sess_t *s, int status, const char *fmt, ...)
{
    sb_imap_t *m = s->m;
    sb__imap_item_t *it = SB_NEW(sb__imap_item_t);
    it->status = status;
    va_list ap;
    va_start(ap, fmt);
    char buf[600];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    it->reason = sb_strdup(buf);
    if (status == SB_IMAP_ERROR)
        SB_LOG_WARN("imap.error", "mailbox=%s why=\"%s\"", m->name, buf);
    else if (status == SB_IMAP_UIDVALIDITY)
        SB_LOG_WARN("imap.uidvalidity", "mailbox=%s why=\"%s\"", m->name, buf);
    else
        SB_LOG_INFO("imap.status", "mailbox=%s status=%s why=\"%s\"", m->name,
                    sb_imap_status_name(status), buf);
    sb_worker_post(s->w, it);
}

/* Hands one message (raw owned; NULL when too big) to the loop and advances the resume
 * point: what is handed over is the owner's to store. */
static void post_message(sess_t *s, uint32_t uid, char *raw, size_t len)
{
    sb_imap_t *m = s->m;
    sb__imap_item_t *it = SB_NEW(sb__imap_item_t);
    it->is_message = true;
    it->uidvalidity = m->uidvalidity;
    it->uid = uid;
    it->raw = raw;
    it->len = len;
    if (raw && m->cbs.parse)
        it->parsed = m->cbs.parse(raw, len, m->data);
    m->inflight++;
    m->inflight_bytes += raw ? len : 0;
    m->last_uid = uid;
    sb_worker_post(s->w, it);
}

/* ---- Credits from the loop ---- */

static void apply_credit(sb_imap_t *m, sb__imap_credit_t *c)
{
    if (m->inflight)
        m->inflight--;
    m->inflight_bytes -= c->len <= m->inflight_bytes ? c->len : m->inflight_bytes;
    if (c->err && c->uidvalidity == m->uidvalidity && c->uid &&
        (!m->refetch_from || c->uid < m->refetch_from))
        m->refetch_from = c->uid;
    sb_free(c);
}

/* Waits up to ms for credits and applies all that came. false once stopping. */
static bool take_credits(sess_t *s, uint32_t ms)
{
    void *job;
    if (!sb_worker_take(s->w, &job, ms))
        return false;
    while (job) {
        apply_credit(s->m, job);
        if (!sb_worker_take(s->w, &job, 0))
            return false;
    }
    return !is_stopping(s->m);
}

/* Sleeps ms (taking credits meanwhile). false once stopping. */
static bool sleep_ms(sess_t *s, uint64_t ms)
{
    uint64_t end = sb_mono_ns() / 1000000 + ms;
    for (;;) {
        uint64_t now = sb_mono_ns() / 1000000;
        if (now >= end)
            return !is_stopping(s->m);
        if (!take_credits(s, (uint32_t)(end - now)))
            return false;
    }
}

/* Clears the wake eventfd (a stop or a failed done wrote it). */
static void drain_wake(sb_imap_t *m)
{
    uint64_t v;
    ssize_t r = read(m->wake_fd, &v, sizeof(v));
    (void)r;
}

/* ---- Connecting ---- */

/* Publishes fd as the session's socket (stop shuts it down); false if stopping already. */
static bool publish_sock(sb_imap_t *m, int fd)
{
    pthread_mutex_lock(&m->mu);
    bool ok = !m->stopping;
    if (ok || fd < 0)
        m->sock = fd;
    pthread_mutex_unlock(&m->mu);
    return ok;
}

/* One address: a non-blocking connect polled with the wake fd, then a blocking socket. */
static int connect_addr(sess_t *s, const struct addrinfo *ai)
{
    sb_imap_t *m = s->m;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (!publish_sock(m, fd)) {
        close(fd);
        return -ECANCELED;
    }
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd p[2] = {{.fd = fd, .events = POLLOUT},
                                  {.fd = m->wake_fd, .events = POLLIN}};
            int r = poll(p, 2, (int)m->o.timeout_s * 1000);
            socklen_t len = sizeof(err);
            if (r == 0)
                err = ETIMEDOUT;
            else if (r < 0 || (p[1].revents & POLLIN))
                err = ECANCELED;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
    }
    if (err == 0 && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0)
        err = errno;
    if (err == 0) {
        /* A NAT or firewall that forgets an idle connection drops it silently: keepalive
         * probes after a minute of silence find that out in about 90 s, not at the next
         * re-IDLE. */
        int on = 1, idle = 60, intvl = 10, cnt = 3;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    }
    if (err) {
        publish_sock(m, -1);
        close(fd);
        return -err;
    }
    return fd;
}

static int tcp_connect(sess_t *s)
{
    const sb_imap_url_t *u = &s->m->url;
    char port[8];
    snprintf(port, sizeof(port), "%u", u->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int r = getaddrinfo(u->host, port, &hints, &res);
    if (r != 0)
        return fail(s, "cannot resolve %s: %s", u->host, gai_strerror(r));
    int fd = -ECONNREFUSED;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = connect_addr(s, ai);
        if (fd >= 0 || fd == -ECANCELED)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fail(s, "connect to %s:%u: %s", u->host, u->port, strerror(-fd));
    return fd;
}

static bool peer_is_loopback(int fd)
{
    struct sockaddr_storage a;
    socklen_t len = sizeof(a);
    if (getpeername(fd, (struct sockaddr *)&a, &len) < 0)
        return false;
    if (a.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr) >> 24) == 127;
    if (a.ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((struct sockaddr_in6 *)&a)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(in6) || (IN6_IS_ADDR_V4MAPPED(in6) && in6->s6_addr[12] == 127);
    }
    return false;
}

static bool has_capability(mailimap *imap, const char *name)
{
    if (!imap->imap_connection_info || !imap->imap_connection_info->imap_capability)
        return false;
    clist *caps = imap->imap_connection_info->imap_capability->cap_list;
    for (clistiter *i = clist_begin(caps); i; i = clist_next(i)) {
        struct mailimap_capability *c = clist_content(i);
        if (c->cap_type == MAILIMAP_CAPABILITY_NAME && c->cap_data.cap_name &&
            strcasecmp(c->cap_data.cap_name, name) == 0)
            return true;
    }
    return false;
}

static int refresh_capabilities(sess_t *s)
{
    struct mailimap_capability_data *caps = NULL;
    int r = mailimap_capability(s->imap, &caps);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "CAPABILITY", r);
    mailimap_capability_data_free(caps);
    return STEP_OK;
}

/* SNI for a host name (not for an address literal). */
static void set_sni(struct mailstream_ssl_context *ctx, void *data)
{
    char *host = data;
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
        mailstream_ssl_set_server_name(ctx, host);
}

/* The chain the server sent, checked before anything secret goes over the connection. */
static int verify_peer(sess_t *s)
{
    carray *chain = mailstream_get_certificate_chain(s->imap->imap_stream);
    unsigned n = chain ? carray_count(chain) : 0;
    sb_tls_der_t *ders = sb_calloc(n ? n : 1, sizeof(*ders));
    for (unsigned i = 0; i < n; i++) {
        MMAPString *der = carray_get(chain, i);
        ders[i].data = (const unsigned char *)der->str;
        ders[i].len = der->len;
    }
    char why[400];
    int rc = sb_tls_verify(ders, n, s->m->url.host, s->m->tls_ca, why, sizeof(why));
    sb_free(ders);
    if (chain)
        mailstream_certificate_chain_free(chain);
    if (rc != 0)
        return fail(s, "TLS refused before LOGIN: %s", why);
    return STEP_OK;
}

/* TCP, TLS or STARTTLS, the certificate check: a connected, unauthenticated session. */
static int open_session(sess_t *s)
{
    sb_imap_t *m = s->m;
    int fd = tcp_connect(s);
    if (fd < 0)
        return fd;
    mailstream *stream =
        m->url.tls
            ? mailstream_ssl_open_with_callback_timeout(fd, m->o.timeout_s, set_sni, m->url.host)
            : mailstream_socket_open_timeout(fd, m->o.timeout_s);
    if (!stream) {
        publish_sock(m, -1);
        close(fd);
        return fail(s, "TLS handshake with %s:%u failed", m->url.host, m->url.port);
    }
    /* From here the stream owns fd; mailimap_free closes it. */
    int r = mailimap_connect(s->imap, stream);
    if (r != MAILIMAP_NO_ERROR_AUTHENTICATED && r != MAILIMAP_NO_ERROR_NON_AUTHENTICATED)
        return imap_fail(s, "greeting", r);
    if (!m->url.tls) {
        if ((r = refresh_capabilities(s)) != STEP_OK)
            return r;
        if (has_capability(s->imap, "STARTTLS")) {
            r = mailimap_socket_starttls_with_callback(s->imap, set_sni, m->url.host);
            if (r != MAILIMAP_NO_ERROR)
                return imap_fail(s, "STARTTLS", r);
        } else if (peer_is_loopback(fd)) {
            SB_LOG_WARN("imap.plaintext",
                        "mailbox=%s host=%s why=\"no STARTTLS offered; "
                        "allowed only because the server is on loopback\"",
                        m->name, m->url.host);
            return STEP_OK;
        } else {
            return fail(s, "%s:%u offers no STARTTLS: refusing to log in without TLS", m->url.host,
                        m->url.port);
        }
    }
    return verify_peer(s);
}

static int login_and_examine(sess_t *s)
{
    sb_imap_t *m = s->m;
    int r = mailimap_login(s->imap, m->url.user, m->url.pass);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "LOGIN", r);
    if ((r = refresh_capabilities(s)) != STEP_OK) /* they may change after LOGIN */
        return r;
    s->has_idle = mailimap_has_idle(s->imap);
    r = mailimap_examine(s->imap, m->url.folder);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "EXAMINE", r);
    uint32_t v = s->imap->imap_selection_info ? s->imap->imap_selection_info->sel_uidvalidity : 0;
    if (v == 0)
        return fail(s, "the server gave %s no UIDVALIDITY", m->url.folder);
    if (m->uidvalidity && v != m->uidvalidity)
        post_status(s, SB_IMAP_UIDVALIDITY,
                    "uidvalidity changed from %u to %u (last_uid was %u): every "
                    "message is fetched again",
                    m->uidvalidity, v, m->last_uid);
    if (v != m->uidvalidity) {
        m->uidvalidity = v;
        m->last_uid = 0;
        m->refetch_from = 0;
    }
    return STEP_OK;
}

/* ---- Fetching ---- */

typedef struct pending {
    uint32_t uid, size;
} pending_t;

static int cmp_pending(const void *a, const void *b)
{
    uint32_t x = ((const pending_t *)a)->uid, y = ((const pending_t *)b)->uid;
    return x < y ? -1 : x > y;
}

/* One message's UID, RFC822.SIZE and BODY[] from a FETCH response. */
static void read_att(struct mailimap_msg_att *att, uint32_t *uid, uint32_t *size,
                     struct mailimap_msg_att_body_section **body)
{
    for (clistiter *i = clist_begin(att->att_list); i; i = clist_next(i)) {
        struct mailimap_msg_att_item *item = clist_content(i);
        if (item->att_type != MAILIMAP_MSG_ATT_ITEM_STATIC || !item->att_data.att_static)
            continue;
        struct mailimap_msg_att_static *st = item->att_data.att_static;
        if (st->att_type == MAILIMAP_MSG_ATT_UID)
            *uid = st->att_data.att_uid;
        else if (st->att_type == MAILIMAP_MSG_ATT_RFC822_SIZE)
            *size = st->att_data.att_rfc822_size;
        else if (st->att_type == MAILIMAP_MSG_ATT_BODY_SECTION)
            *body = st->att_data.att_body_section;
    }
}

/* UID FETCH last+1:* (UID RFC822.SIZE): the UIDs above last_uid, sorted. `n:*` always
 * answers with the highest message, even when its UID is below n: those are skipped. */
static int list_new(sess_t *s, pending_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    uint32_t last = s->m->last_uid;
    if (last == UINT32_MAX)
        return STEP_OK;
    struct mailimap_set *set = mailimap_set_new_interval(last + 1, 0);
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
    mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_rfc822_size());
    clist *res = NULL;
    int r = mailimap_uid_fetch(s->imap, set, ft, &res);
    mailimap_set_free(set);
    mailimap_fetch_type_free(ft);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "UID FETCH (RFC822.SIZE)", r);
    pending_t *v = sb_calloc((size_t)clist_count(res) + 1, sizeof(*v));
    size_t k = 0;
    for (clistiter *i = clist_begin(res); i; i = clist_next(i)) {
        uint32_t uid = 0, size = 0;
        struct mailimap_msg_att_body_section *body = NULL;
        read_att(clist_content(i), &uid, &size, &body);
        if (uid > last)
            v[k++] = (pending_t){uid, size};
    }
    mailimap_fetch_list_free(res);
    qsort(v, k, sizeof(*v), cmp_pending);
    *out = v;
    *n = k;
    return STEP_OK;
}

/* Fetches the bodies of v[0..n) (UID BODY.PEEK[]: \Seen is never set) and hands them over
 * in UID order. A UID the server no longer has (expunged meanwhile) is passed over. */
static int fetch_bodies(sess_t *s, const pending_t *v, size_t n)
{
    struct mailimap_set *set = mailimap_set_new_empty();
    for (size_t i = 0; i < n; i++)
        mailimap_set_add_single(set, v[i].uid);
    struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();
    mailimap_fetch_type_new_fetch_att_list_add(ft, mailimap_fetch_att_new_uid());
    mailimap_fetch_type_new_fetch_att_list_add(
        ft, mailimap_fetch_att_new_body_peek_section(mailimap_section_new(NULL)));
    clist *res = NULL;
    int r = mailimap_uid_fetch(s->imap, set, ft, &res);
    mailimap_set_free(set);
    mailimap_fetch_type_free(ft);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "UID FETCH (BODY.PEEK[])", r);
    /* Responses come in sequence order, which is UID order; match them to v anyway. */
    struct mailimap_msg_att_body_section **bodies = sb_calloc(n, sizeof(*bodies));
    for (clistiter *i = clist_begin(res); i; i = clist_next(i)) {
        uint32_t uid = 0, size = 0;
        struct mailimap_msg_att_body_section *body = NULL;
        read_att(clist_content(i), &uid, &size, &body);
        for (size_t j = 0; body && j < n; j++)
            if (v[j].uid == uid)
                bodies[j] = body;
    }
    for (size_t j = 0; j < n; j++) {
        struct mailimap_msg_att_body_section *b = bodies[j];
        if (!b || !b->sec_body_part) {
            SB_LOG_DEBUG("imap.gone", "mailbox=%s uid=%u", s->m->name, v[j].uid);
            continue;
        }
        if (b->sec_length > SB_IMAP_MAX_MESSAGE) {
            post_message(s, v[j].uid, NULL, b->sec_length);
            continue;
        }
        char *raw = sb_malloc(b->sec_length + 1);
        memcpy(raw, b->sec_body_part, b->sec_length);
        raw[b->sec_length] = '\0';
        post_message(s, v[j].uid, raw, b->sec_length);
    }
    sb_free(bodies);
    mailimap_fetch_list_free(res);
    return STEP_OK;
}

/* Waits until the owner's credits leave room for a message of size bytes. */
static int wait_room(sess_t *s, uint32_t size)
{
    sb_imap_t *m = s->m;
    while (m->inflight >= m->o.max_inflight ||
           (m->inflight && m->inflight_bytes + size > m->o.max_inflight_bytes)) {
        if (!take_credits(s, 1000))
            return STEP_STOP;
        if (m->refetch_from)
            return fail(s, "the owner could not store uid %u", m->refetch_from);
    }
    return take_credits(s, 0) ? STEP_OK : STEP_STOP;
}

/* Everything above last_uid, batch by batch, until the server lists nothing new. */
static int fetch_new(sess_t *s)
{
    sb_imap_t *m = s->m;
    uint32_t stuck = 0; /* the first UID of a listing that handed nothing over */
    for (;;) {
        pending_t *v;
        size_t n;
        int r = list_new(s, &v, &n);
        if (r != STEP_OK)
            return r;
        if (n == 0) {
            sb_free(v);
            return STEP_OK;
        }
        /* Listed twice, and no body either time (a message just expunged is listed once at
         * most): rather than spin on it, fail and retry after a backoff. Never skipped: a
         * message is not dropped without a word. */
        if (stuck && v[0].uid == stuck) {
            sb_free(v);
            return fail(s, "the server lists uid %u but sends no body for it", stuck);
        }
        uint32_t first = v[0].uid, before = m->last_uid;
        for (size_t i = 0; i < n && r == STEP_OK;) {
            if ((r = wait_room(s, v[i].size)) != STEP_OK)
                break;
            if (m->refetch_from) {
                r = fail(s, "the owner could not store uid %u", m->refetch_from);
                break;
            }
            if (v[i].size > SB_IMAP_MAX_MESSAGE) {
                post_message(s, v[i].uid, NULL, v[i].size);
                i++;
                continue;
            }
            /* A batch: as many as the credits allow, never a too-big one. */
            size_t j = i, bytes = 0;
            while (j < n && v[j].size <= SB_IMAP_MAX_MESSAGE && j - i < 16 &&
                   m->inflight + (j - i) < m->o.max_inflight &&
                   (j == i || m->inflight_bytes + bytes + v[j].size <= m->o.max_inflight_bytes))
                bytes += v[j++].size;
            r = fetch_bodies(s, v + i, j - i);
            i = j;
        }
        sb_free(v);
        if (r != STEP_OK)
            return r;
        stuck = m->last_uid == before ? first : 0;
    }
}

/* ---- Waiting for news ---- */

/* IDLE until the server says something, idle_restart_s passes, or the wake fd fires. */
static int idle_once(sess_t *s)
{
    sb_imap_t *m = s->m;
    int r = mailimap_idle(s->imap);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "IDLE", r);
    /* libetpan may have read past the continuation already: then there is news. */
    if (s->imap->imap_stream->read_buffer_len == 0) {
        struct pollfd p[2] = {{.fd = mailimap_idle_get_fd(s->imap), .events = POLLIN},
                              {.fd = m->wake_fd, .events = POLLIN}};
        int pr;
        do
            pr = poll(p, 2, (int)m->o.idle_restart_s * 1000);
        while (pr < 0 && errno == EINTR);
        if (p[1].revents & POLLIN)
            drain_wake(m);
    }
    if (is_stopping(m))
        return STEP_STOP;
    r = mailimap_idle_done(s->imap);
    if (r != MAILIMAP_NO_ERROR)
        return imap_fail(s, "IDLE DONE", r);
    return STEP_OK;
}

/* Caught up: waits for news (IDLE, or poll_s without it). */
static int wait_news(sess_t *s, bool *announced)
{
    sb_imap_t *m = s->m;
    if (!*announced) {
        if (s->has_idle)
            post_status(s, SB_IMAP_IDLING, "waiting in IDLE");
        else
            post_status(s, SB_IMAP_POLLING, "the server has no IDLE: polling every %us",
                        m->o.poll_s);
        *announced = true;
        m->backoff_ms = 0; /* a session that got this far is healthy */
    }
    if (s->has_idle)
        return idle_once(s);
    uint64_t end = sb_mono_ns() / 1000000 + (uint64_t)m->o.poll_s * 1000;
    for (uint64_t now; (now = sb_mono_ns() / 1000000) < end;) {
        if (!take_credits(s, (uint32_t)(end - now > 250 ? 250 : end - now)))
            return STEP_STOP;
        if (m->refetch_from)
            break;
    }
    return STEP_OK;
}

/* ---- The thread ---- */

/* log_level debug: the IMAP conversation, 200 bytes per chunk, never the LOGIN line. */
static void wire_log(mailimap *imap, int type, const char *str, size_t size, void *ctx)
{
    sb_imap_t *m = ctx;
    const char *dir = type == MAILSTREAM_LOG_TYPE_DATA_RECEIVED ? "in"
                      : type == MAILSTREAM_LOG_TYPE_DATA_SENT   ? "out"
                                                                : NULL;
    if (dir)
        SB_LOG_DEBUG("imap.wire", "mailbox=%s dir=%s data=\"%.*s\"", m->name, dir,
                     (int)(size > 200 ? 200 : size), str);
}

static int run_connection(sess_t *s)
{
    sb_imap_t *m = s->m;
    drain_wake(m); /* a failed done's wake-up is stale now; a stop is seen through `stopping` */
    int r = open_session(s);
    if (r == STEP_OK)
        r = login_and_examine(s);
    if (r != STEP_OK)
        return r;
    post_status(s, SB_IMAP_CONNECTED, "uidvalidity=%u last_uid=%u%s", m->uidvalidity, m->last_uid,
                s->has_idle ? "" : " (no IDLE)");
    bool announced = false, quick = false;
    unsigned empty_wakes = 0;
    for (;;) {
        uint32_t before = m->last_uid;
        if ((r = fetch_new(s)) != STEP_OK)
            return r;
        if (m->refetch_from)
            return fail(s, "the owner could not store uid %u", m->refetch_from);
        /* A server that ends every IDLE at once with nothing new (Dovecot does, with "NO
         * Internal error", once the open folder was deleted) would make this loop spin:
         * after a few such turns, start over with a fresh connection, after a backoff. */
        empty_wakes = quick && m->last_uid == before ? empty_wakes + 1 : 0;
        if (empty_wakes >= 5)
            return fail(s, "the server keeps ending IDLE at once with nothing new");
        uint64_t t0 = sb_mono_ns() / 1000000;
        if ((r = wait_news(s, &announced)) != STEP_OK)
            return r;
        quick = sb_mono_ns() / 1000000 - t0 < 1000;
        if (!take_credits(s, 0))
            return STEP_STOP;
        if (m->refetch_from)
            return fail(s, "the owner could not store uid %u", m->refetch_from);
    }
}

static void close_connection(sess_t *s)
{
    publish_sock(s->m, -1); /* before the fd is closed: stop must never hit a reused one */
    if (s->imap->imap_stream) {
        mailstream_close(s->imap->imap_stream); /* no LOGOUT: it could block a whole timeout */
        s->imap->imap_stream = NULL;
    }
    mailimap_free(s->imap);
    s->imap = NULL;
}

/* The next reconnect delay: doubling from backoff_min_ms to backoff_max_ms, then a random
 * point in its upper half, so mailboxes on one server don't come back in step. */
static uint64_t next_backoff(sb_imap_t *m)
{
    m->backoff_ms = m->backoff_ms ? m->backoff_ms * 2 : m->o.backoff_min_ms;
    if (m->backoff_ms > m->o.backoff_max_ms)
        m->backoff_ms = m->o.backoff_max_ms;
    uint32_t rnd;
    sb_random_bytes(&rnd, sizeof(rnd));
    return m->backoff_ms / 2 + rnd % (m->backoff_ms / 2 + 1);
}

void sb__imap_run(sb_worker_t *w, void *data)
{
    sb_imap_t *m = data;
    sess_t s = {.m = m, .w = w};
    /* libetpan and GnuTLS write with plain send(2): a server that just went away (or a
     * socket stop shut down) raises SIGPIPE, which would end the process where the embedder
     * has not ignored it. Blocked on this thread, it stays pending and the write fails. */
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, NULL);
    for (;;) {
        s.imap = mailimap_new(0, NULL);
        mailimap_set_timeout(s.imap, m->o.timeout_s);
        if (sb_log_level >= SB_LOG_DEBUG)
            mailimap_set_logger(s.imap, wire_log, m);
        s.why[0] = '\0';
        int r = run_connection(&s);
        close_connection(&s);
        if (r == STEP_STOP || is_stopping(m))
            return;
        if (m->refetch_from) {
            /* Hand over again from the first message the owner could not store. */
            m->last_uid = m->refetch_from - 1;
            m->refetch_from = 0;
        }
        uint64_t delay = next_backoff(m);
        post_status(&s, SB_IMAP_ERROR, "%s; retrying in %.1fs", s.why, (double)delay / 1000.0);
        if (!sleep_ms(&s, delay))
            return;
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * The header phase of the HTTP server: what happens to a connection while a request's
 * head is coming. lws 4.1 parses request headers into a fixed pool of header tables
 * (max_http_header_pool); a connection holds one from its first byte until its headers are
 * complete, and a connection that finds the pool empty waits. And lws answers a request it
 * cannot parse by closing the connection (oversized head, NUL in the URL) or with an HTML
 * page (a garbage request line). This file adds:
 *
 * - a per-address cap on connections in the header phase (slowloris), counted under
 *   sb_ip_key() so an IPv6 host counts by its /64. It applies once the header phase is
 *   crowded (at least `busy` connections in it, half the pool), so a client opening many
 *   connections at once is never refused on an idle server; then an address at the cap
 *   gets a plain 429 JSON answer (cleartext only: a TLS peer has no session yet) and is
 *   closed. A connection counts from accept until its first head is complete, and on a
 *   cleartext keep-alive connection again from the first byte of each later head (not
 *   while idle between requests).
 *   The header deadline is lws's (the vhost's timeout_secs_ah_idle, set by http.c), and
 *   for a later head the gate's, from its first byte (lws takes a header table only once
 *   the gate lets it read).
 * - a gate on cleartext connections: lws does not read the socket (rx flow control)
 *   until the request head waiting in the kernel has been looked at (MSG_PEEK on a
 *   duplicate descriptor, SO_RCVLOWAT so the poll fires only when more has arrived).
 *   A head that is well-formed (RFC 9112 §2.2, §3, §5) and within the limits goes to lws
 *   untouched (lws reads it at once, lws_service_fd); any other gets its JSON error (400
 *   bad_request, 414 / 431 too_large, 501), then the connection's write side is shut and
 *   what the client still sends is read and dropped until it closes (so the answer is not
 *   lost to a reset), and lws closes it.
 *
 * After each response on a keep-alive connection (sb__http_guard_rearm) the gate is put in
 * place again for the next head, if lws holds none of it: the gate knows where the next
 * head begins in the byte stream (the last head's end plus its Content-Length) and the
 * kernel how much lws has read (TCP_INFO's bytes received minus FIONREAD). When lws has
 * read ahead (pipelined requests), has a body left to drop, still buffers response bytes,
 * or the body's end is not in the head (Transfer-Encoding), lws parses the connection's
 * later requests alone. So does it on TLS connections (the bytes are encrypted until lws
 * decrypts them; lws 4.1 has no callback between decrypting and parsing). Of what lws
 * then rejects, a request line it cannot parse (and plain HTTP sent to a TLS port) reaches
 * us through lws's fallback to a raw socket (sb__http_guard_raw), and gets a JSON 400 the
 * same way; an oversized head or %00 gets lws's silent close (docs/hardening-http.md).
 *
 * Each HTTP connection the gate can follow carries a record (lws opaque user data) and,
 * on cleartext, the gate's duplicate descriptor, from accept to close; a record goes when
 * the gate cannot follow the connection any more (TLS, pipelining, an upgrade to a
 * WebSocket, a stream), so WebSockets and streams cost nothing here.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/map.h"
#include "core/util.h"
#include "gateway/http_internal.h"

#define MAX_DRAIN ((size_t)16 << 20) /* bytes read and dropped after an error answer */

/* The kernel's struct tcp_info (linux/tcp.h) goes on after the fields of glibc's copy, which
 * lws's headers pull in (so linux/tcp.h cannot be included too): the layout is kernel ABI,
 * and tcpi_bytes_received is there since Linux 4.1. */
typedef struct tcp_info_ext {
    struct tcp_info base;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
} tcp_info_ext_t;
_Static_assert(offsetof(tcp_info_ext_t, bytes_received) == 128, "kernel tcp_info layout");

struct sb__http_guard {
    sb_http_server_t *srv;
    uv_loop_t *loop;
    sb_map_t counts; /* sb_ip_key -> connections in the header phase (as uintptr_t) */
    unsigned per_ip, busy;
    int header_timeout_s; /* a later request's head must be complete this long after it began */
    size_t total;         /* connections in the header phase */
    uint64_t refused;
    struct guard_conn *arming; /* gates to put in place before the loop polls */
    char peek[SB__HTTP_MAX_HEAD + 1];
};

typedef enum { GATE_NONE, GATE_ARMING, GATE_OPEN, GATE_DRAIN } gate_state_t;

typedef struct guard_conn {
    sb__http_guard_t *g;
    struct lws *wsi;
    char key[SB_IP_KEY_MAX];
    gate_state_t gate;
    struct guard_conn *next_arming;
    uv_poll_t *poll; /* on fd, a duplicate of the connection's socket */
    int fd;
    bool counted;        /* in the header phase: counted under key and in total */
    bool lowat;          /* SO_RCVLOWAT is above 1 */
    bool settled;        /* re-armed: lws is back to waiting for a head (sb__http_guard_flush) */
    bool head_seen;      /* the gate passed this request's whole head: head_len is known */
    bool rearmable;      /* next_head is known: the gate may look at the next request */
    uint64_t head_start; /* where in the byte stream the head the gate looks at begins */
    uint64_t next_head;  /* where the next request's head begins (after this one's body) */
    size_t checked;      /* bytes of the head already found well-formed (whole lines) */
    size_t head_len;
    unsigned lines;
    size_t drained;
} guard_conn_t;

sb__http_guard_t *sb__http_guard_new(sb_http_server_t *s, uv_loop_t *loop, unsigned per_ip,
                                     unsigned busy, unsigned header_timeout_s)
{
    sb__http_guard_t *g = SB_NEW(sb__http_guard_t);
    g->srv = s;
    g->loop = loop;
    sb_map_init(&g->counts);
    g->per_ip = per_ip;
    g->busy = busy;
    g->header_timeout_s = (int)header_timeout_s;
    return g;
}

void sb__http_guard_free(sb__http_guard_t *g)
{
    if (!g)
        return;
    sb_map_dispose(&g->counts);
    sb_free(g);
}

static uintptr_t count_of(const sb__http_guard_t *g, const char *key)
{
    return (uintptr_t)sb_map_get(&g->counts, key);
}

/* Whether a connection from key may not enter the header phase: its address is at the cap
 * while the header phase is crowded. Logs a refusal (once per 100). */
static bool over_cap(sb__http_guard_t *g, const char *key)
{
    if (!g->per_ip || count_of(g, key) < g->per_ip || g->total < g->busy)
        return false;
    /* one line per 100 refusals: an attack must not flood the log */
    if (g->refused++ % 100 == 0)
        SB_LOG_WARN("http.refused", "peer=%s reason=header_phase_limit limit=%u refused=%llu", key,
                    g->per_ip, (unsigned long long)g->refused);
    return true;
}

static void count_in(guard_conn_t *c)
{
    sb__http_guard_t *g = c->g;
    if (c->counted)
        return;
    sb_map_set(&g->counts, c->key, (void *)(count_of(g, c->key) + 1));
    g->total++;
    c->counted = true;
}

static void count_out(guard_conn_t *c)
{
    sb__http_guard_t *g = c->g;
    if (!c->counted)
        return;
    uintptr_t n = count_of(g, c->key);
    g->total--;
    if (n <= 1)
        sb_map_del(&g->counts, c->key);
    else
        sb_map_set(&g->counts, c->key, (void *)(n - 1));
    c->counted = false;
}

#define REFUSED_MESSAGE "too many connections from your address are still sending headers"

/* Writes a whole answer straight to the socket (best effort: it is small and the first
 * thing sent, so the kernel takes it). */
static void send_answer(int fd, int status, const char *reason, const char *code,
                        const char *message, const char *extra)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    char resp[1024];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
                     "%zu\r\n%sConnection: close\r\n\r\n%s",
                     status, reason, body ? strlen(body) : 0, extra, body ? body : "");
    free(body);
    if (n > 0 && (size_t)n < sizeof(resp)) {
        ssize_t w = send(fd, resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
    }
}

/* ---- The gate ---- */

static void on_gate_closed(uv_handle_t *h)
{
    int fd = (int)(intptr_t)h->data;
    if (fd >= 0)
        close(fd);
    sb_free(h);
}

/*
 * Stops looking at the socket; lws reads it from now on (unless it is being closed). keep:
 * the duplicate descriptor and its (stopped) poll stay for the connection's next request
 * (a keep-alive connection's gate is put in place again for each: sb__http_guard_rearm).
 */
static void gate_stop(guard_conn_t *c, bool to_lws, bool keep)
{
    if (c->gate == GATE_ARMING) {
        for (guard_conn_t **p = &c->g->arming; *p; p = &(*p)->next_arming)
            if (*p == c) {
                *p = c->next_arming;
                break;
            }
    }
    if (c->poll) {
        int one = 1;
        if (c->lowat) /* the socket's, so lws's poll too */
            setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
        c->lowat = false;
        uv_poll_stop(c->poll);
        if (!keep) {
            c->poll->data = (void *)(intptr_t)c->fd;
            uv_close((uv_handle_t *)c->poll, on_gate_closed);
            c->poll = NULL;
            c->fd = -1;
        }
    } else if (c->fd >= 0 && !keep) {
        close(c->fd);
        c->fd = -1;
    }
    if (to_lws && c->gate != GATE_ARMING && c->gate != GATE_NONE)
        lws_rx_flow_control(c->wsi, 1);
    c->gate = GATE_NONE;
}

static void gate_close(guard_conn_t *c, bool to_lws)
{
    gate_stop(c, to_lws, false);
}

/* Has lws close the connection (from outside its callbacks). */
static void kill_conn(guard_conn_t *c)
{
    struct lws *wsi = c->wsi;
    gate_close(c, false);
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(lws_get_context(wsi)); /* lws runs its timers after an event */
}

static bool is_tchar(unsigned char c)
{
    return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

typedef struct verdict {
    int status; /* 0: fine so far */
    const char *reason, *code, *message;
} verdict_t;

static int bad(verdict_t *v, int status, const char *message)
{
    v->status = status;
    v->reason = status == 400   ? "Bad Request"
                : status == 414 ? "URI Too Long"
                : status == 501 ? "Not Implemented"
                                : "Request Header Fields Too Large";
    v->code = status == 400 ? "bad_request" : status == 501 ? "not_implemented" : "too_large";
    v->message = message;
    return -1;
}

/* The request line (without its line end): method SP target SP HTTP-version. */
static int check_request_line(const char *p, size_t n, verdict_t *v)
{
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ' ')
        return bad(v, 400, "malformed request line");
    static const char *const methods[] = {"GET",   "HEAD",   "POST",   "PUT",
                                          "PATCH", "DELETE", "OPTIONS"};
    bool known = false;
    for (size_t m = 0; m < sizeof(methods) / sizeof(methods[0]); m++)
        known |= strlen(methods[m]) == i && memcmp(methods[m], p, i) == 0;
    size_t t = ++i;
    for (; i < n && p[i] != ' '; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c == 0x7f)
            return bad(v, 400, "control character in the request target");
        if (c == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)p[i + 1]) ||
                !isxdigit((unsigned char)p[i + 2]))
                return bad(v, 400, "malformed percent-encoding in the request target");
            if (p[i + 1] == '0' && p[i + 2] == '0')
                return bad(v, 400, "NUL (%00) in the request target");
        }
    }
    static const char ver[] = " HTTP/1.";
    if (i == t || n - i != sizeof(ver) || memcmp(p + i, ver, sizeof(ver) - 1) != 0 ||
        !isdigit((unsigned char)p[n - 1]))
        return bad(v, 400, "malformed request line");
    return known ? 0 : bad(v, 501, "request method not supported");
}

/* One header field line (without its line end): field-name ":" OWS field-value OWS. */
static int check_field_line(const char *p, size_t n, verdict_t *v)
{
    if (p[0] == ' ' || p[0] == '\t')
        return bad(v, 400, "obsolete line folding in a header field");
    size_t i = 0;
    while (i < n && is_tchar((unsigned char)p[i]))
        i++;
    if (i == 0 || i >= n || p[i] != ':')
        return bad(v, 400, "malformed header field");
    for (i++; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return bad(v, 400, "control character in a header field");
    }
    return 0;
}

/*
 * Looks at the head's bytes so far (n of them, from the start). 1: the head is complete
 * and well-formed; 0: fine so far, more is needed; -1: *v says what is wrong.
 */
static int check_head(guard_conn_t *c, const char *buf, size_t n, verdict_t *v)
{
    while (c->checked < n) {
        const char *p = buf + c->checked;
        const char *nl = memchr(p, '\n', n - c->checked);
        if (!nl)
            break;
        size_t len = (size_t)(nl - p);
        if (len > 0 && p[len - 1] == '\r')
            len--;
        if (c->lines == 0) {
            if (check_request_line(p, len, v) != 0)
                return -1;
        } else if (len == 0) {
            c->head_len = (size_t)(nl - buf) + 1;
            return 1; /* the empty line: end of the head */
        } else if (c->lines > SB__HTTP_MAX_FIELDS) {
            return bad(v, 431, "more than " SB__HTTP_MAX_FIELDS_S " header fields");
        } else if (check_field_line(p, len, v) != 0) {
            return -1;
        }
        c->lines++;
        c->checked = (size_t)(nl - buf) + 1;
    }
    if (n > SB__HTTP_MAX_HEAD) {
        if (c->lines == 0)
            return bad(v, 414, "request line is longer than " SB__HTTP_MAX_HEAD_S " bytes");
        return bad(v, 431, "request head is larger than " SB__HTTP_MAX_HEAD_S " bytes");
    }
    return 0;
}

/*
 * A later request's head must be complete within the header deadline of its first byte:
 * lws's own deadline starts only when it takes a header table, which it does once it
 * reads, and the gate keeps it from reading until the head is complete.
 */
static void set_deadline(guard_conn_t *c)
{
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, c->g->header_timeout_s);
    lws_cancel_service(lws_get_context(c->wsi)); /* lws reschedules its timers after an event */
}

/* Answers on the socket, shuts its write side, then reads and drops what follows until the
 * peer closes (so the answer is not lost to a reset); lws closes the connection then. */
static void answer_and_drain(guard_conn_t *c, int status, const char *reason, const char *code,
                             const char *message, const char *extra)
{
    send_answer(c->fd, status, reason, code, message, extra);
    shutdown(c->fd, SHUT_WR);
    int one = 1;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    c->gate = GATE_DRAIN;
    if (c->head_start > 0)
        set_deadline(c);
}

static void on_gate(uv_poll_t *h, int status, int events)
{
    guard_conn_t *c = h->data;
    sb__http_guard_t *g = c->g;
    if (c->gate == GATE_DRAIN) {
        ssize_t r = status < 0 ? -1 : recv(c->fd, g->peek, sizeof(g->peek), MSG_DONTWAIT);
        if (r > 0)
            c->drained += (size_t)r;
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR) || c->drained > MAX_DRAIN)
            kill_conn(c);
        return;
    }
    ssize_t n = status < 0 ? -1 : recv(c->fd, g->peek, sizeof(g->peek), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR) && status >= 0)
        return;
    if (n <= 0) { /* the peer left or failed: lws finds out and closes */
        gate_close(c, true);
        return;
    }
    bool first = !c->counted;
    if (first) { /* a keep-alive connection's next head begins: it counts from now */
        if (over_cap(g, c->key)) {
            answer_and_drain(c, 429, "Too Many Requests", "rate_limited", REFUSED_MESSAGE,
                             "Retry-After: 5\r\n");
            return;
        }
        count_in(c);
    }
    verdict_t v = {0};
    int rc = check_head(c, g->peek, (size_t)n, &v);
    if (rc > 0) {
        c->head_seen = true;
        /* lws reads the head now rather than after another turn of the loop (what lws's own
         * poll callback does; lws may close the connection, so c is not touched after) */
        struct lws_context *ctx = lws_get_context(c->wsi);
        struct lws_pollfd pfd = {
            .fd = lws_get_socket_fd(c->wsi), .events = LWS_POLLIN, .revents = LWS_POLLIN};
        gate_stop(c, true, true);
        lws_service_fd(ctx, &pfd);
    } else if (rc == 0) {
        if (first)
            set_deadline(c);
        int low = (int)n + 1; /* wake up only when more has arrived */
        setsockopt(c->fd, SOL_SOCKET, SO_RCVLOWAT, &low, sizeof(low));
        c->lowat = true;
    } else {
        char ip[64];
        const char *peer = lws_get_peer_simple(c->wsi, ip, sizeof(ip));
        SB_LOG_INFO("http.reject", "peer=%s status=%d code=%s reason=\"%s\"", peer ? peer : "",
                    v.status, v.code, v.message);
        answer_and_drain(c, v.status, v.reason, v.code, v.message, "");
    }
}

void sb__http_guard_flush(sb__http_guard_t *g)
{
    while (g && g->arming) {
        guard_conn_t *c = g->arming;
        if (c->head_start > 0 && !c->settled) {
            /* After a response lws waits for POLLOUT to go back to reading heads, and lws
             * 4.1 handles no event of a connection whose rx is held: its POLLOUT would
             * fire on every turn of the loop until the gate lets go. lws checks nothing
             * there (the response is all out: sb__http_guard_rearm), so it is handed its
             * POLLOUT now. If lws closes the connection, c is gone (and off the list). */
            c->settled = true;
            struct lws_pollfd pfd = {
                .fd = lws_get_socket_fd(c->wsi), .events = LWS_POLLOUT, .revents = LWS_POLLOUT};
            lws_service_fd(lws_get_context(c->wsi), &pfd);
            continue;
        }
        g->arming = c->next_arming;
        c->gate = GATE_OPEN;
        lws_rx_flow_control(c->wsi, 0);
        if (c->poll) { /* kept from the connection's last request */
            uv_poll_start(c->poll, UV_READABLE | UV_DISCONNECT, on_gate);
            continue;
        }
        c->poll = SB_NEW(uv_poll_t);
        if (uv_poll_init(g->loop, c->poll, c->fd) != 0) {
            sb_free(c->poll);
            c->poll = NULL;
            close(c->fd);
            c->fd = -1;
            gate_close(c, true);
            continue;
        }
        c->poll->data = c;
        uv_poll_start(c->poll, UV_READABLE | UV_DISCONNECT, on_gate);
    }
}

/* ---- The first WebSocket frame's mask bit ---- */

/*
 * lws 4.1 reads the MASK bit of a client's frame header and never checks it (RFC 6455
 * §5.1: a server MUST close the connection on an unmasked frame; lws checks from v5.0).
 * No public lws API tells whether a frame was masked, and lws reads whatever the socket
 * holds, so only a look before lws reads can tell: the first frame of a socket is looked
 * at the way the request head is. A client library that does not mask does so on every
 * frame, so this catches it; later frames are not looked at (docs/hardening-http.md).
 */
struct sb__http_peek {
    uv_poll_t *poll;
    int fd;
    struct lws *wsi;
    sb__http_peek_cb cb;
    void *data;
};

static void peek_close(sb__http_peek_t *p)
{
    int one = 1;
    setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof(one));
    uv_poll_stop(p->poll);
    p->poll->data = (void *)(intptr_t)p->fd;
    uv_close((uv_handle_t *)p->poll, on_gate_closed);
    sb_free(p);
}

static void on_peek(uv_poll_t *h, int status, int events)
{
    sb__http_peek_t *p = h->data;
    unsigned char b[2];
    ssize_t n = status < 0 ? -1 : recv(p->fd, b, sizeof(b), MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && status >= 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n == 1) {
        int two = 2;
        setsockopt(p->fd, SOL_SOCKET, SO_RCVLOWAT, &two, sizeof(two));
        return;
    }
    struct lws *wsi = p->wsi;
    sb__http_peek_cb cb = p->cb;
    void *data = p->data;
    peek_close(p);
    lws_rx_flow_control(wsi, 1); /* lws reads from here on (also what the callback refused) */
    cb(data, n == 2 ? (b[1] & 0x80) != 0 : true);
}

sb__http_peek_t *sb__http_ws_first_frame(sb_http_server_t *s, struct lws *wsi, sb__http_peek_cb cb,
                                         void *data)
{
    sb__http_guard_t *g = sb__http_guard_of(s);
    if (lws_is_ssl(wsi))
        return NULL;
    int fd = dup(lws_get_socket_fd(wsi));
    if (fd < 0)
        return NULL;
    sb__http_peek_t *p = SB_NEW(sb__http_peek_t);
    p->poll = SB_NEW(uv_poll_t);
    if (uv_poll_init(g->loop, p->poll, fd) != 0) {
        close(fd);
        sb_free(p->poll);
        sb_free(p);
        return NULL;
    }
    p->fd = fd;
    p->wsi = wsi;
    p->cb = cb;
    p->data = data;
    p->poll->data = p;
    lws_rx_flow_control(wsi, 0);
    uv_poll_start(p->poll, UV_READABLE | UV_DISCONNECT, on_peek);
    return p;
}

void sb__http_peek_cancel(sb__http_peek_t *p, bool release_rx)
{
    if (!p)
        return;
    struct lws *wsi = p->wsi;
    peek_close(p);
    if (release_rx)
        lws_rx_flow_control(wsi, 1);
}

/* ---- lws's fallback: a request line lws could not parse ---- */

int sb__http_guard_raw(sb__http_guard_t *g, struct lws *wsi, int reason, void *user, bool tls_port)
{
    bool *answered = user;
    if (reason == LWS_CALLBACK_RAW_ADOPT) {
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, 5); /* answer, drain, close within 5 s */
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (reason != LWS_CALLBACK_RAW_WRITEABLE || !answered)
        return 0;    /* RAW_RX: what follows is read and dropped */
    if (*answered) { /* the answer is out once lws holds nothing more of it */
        if (lws_partial_buffered(wsi))
            lws_callback_on_writable(wsi);
        else
            shutdown(lws_get_socket_fd(wsi), SHUT_WR); /* then drain until the peer closes */
        return 0;
    }
    const char *message =
        tls_port && !lws_is_ssl(wsi) ? "this port speaks HTTPS" : "malformed request line";
    char ip[64];
    const char *peer = lws_get_peer_simple(wsi, ip, sizeof(ip));
    SB_LOG_INFO("http.reject", "peer=%s status=400 code=bad_request reason=\"%s\"",
                peer ? peer : "", message);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", "bad_request", "message", message);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    unsigned char buf[LWS_PRE + 512];
    int n = snprintf((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE,
                     "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     body ? strlen(body) : 0, body ? body : "");
    free(body);
    *answered = true;
    if (n <= 0 || (size_t)n >= sizeof(buf) - LWS_PRE ||
        lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_RAW) < n)
        return -1;
    lws_callback_on_writable(wsi);
    (void)g;
    return 0;
}

/* ---- Accepting ---- */

int sb__http_guard_accept(sb__http_guard_t *g, struct lws *wsi)
{
    char ip[64], key[SB_IP_KEY_MAX];
    const char *p = lws_get_peer_simple(wsi, ip, sizeof(ip));
    sb_ip_key(p ? p : "", key);
    if (over_cap(g, key)) {
        if (!lws_is_ssl(wsi))
            send_answer(lws_get_socket_fd(wsi), 429, "Too Many Requests", "rate_limited",
                        REFUSED_MESSAGE, "Retry-After: 5\r\n");
        return -1;
    }
    guard_conn_t *c = SB_NEW(guard_conn_t);
    c->g = g;
    c->wsi = wsi;
    c->fd = -1;
    memcpy(c->key, key, sizeof(key));
    count_in(c);
    lws_set_opaque_user_data(wsi, c);
    if (!lws_is_ssl(wsi)) {
        /* lws reads a new socket only after the loop polls again: the gate is put in
         * place just before that (sb__http_guard_flush), outside lws's callbacks. */
        c->fd = dup(lws_get_socket_fd(wsi));
        if (c->fd >= 0) {
            c->gate = GATE_ARMING;
            c->next_arming = g->arming;
            g->arming = c;
            sb__http_want_flush(g->srv);
        }
    }
    return 0;
}

/* Forgets the connection: no longer counted, no gate, no record. */
static void forget(guard_conn_t *c, bool to_lws)
{
    lws_set_opaque_user_data(c->wsi, NULL);
    gate_close(c, to_lws);
    count_out(c);
    sb_free(c);
}

void sb__http_guard_release(sb__http_guard_t *g, struct lws *wsi)
{
    guard_conn_t *c = g && wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (c)
        forget(c, false);
}

/* The body length the head announces: 0 and true without one; false when it cannot be told
 * in advance (Transfer-Encoding) or the Content-Length is not a plain number. */
static bool body_length(struct lws *wsi, uint64_t *len)
{
    char cl[24];
    *len = 0;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return false;
    int n = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n < 0 || (n > 0 && strspn(cl, "0123456789") != (size_t)n) || n > 18)
        return false;
    *len = n ? strtoull(cl, NULL, 10) : 0;
    return true;
}

void sb__http_guard_head_done(sb__http_guard_t *g, struct lws *wsi)
{
    guard_conn_t *c = g && wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (!c)
        return;
    uint64_t body;
    if (lws_is_ssl(wsi) || !c->head_seen || !body_length(wsi, &body)) {
        forget(c, true); /* the gate cannot find the next head: lws parses the rest alone */
        return;
    }
    gate_stop(c, true, true);
    count_out(c);
    c->next_head = c->head_start + c->head_len + body;
    c->rearmable = true;
}

/* How many bytes of the connection's stream were read from the socket so far (by lws): what
 * the kernel received minus what it still holds, read twice so that bytes arriving between
 * the two calls cannot skew it. 0, or -1 when that cannot be told. */
static int bytes_read(int fd, uint64_t *out)
{
    for (int i = 0; i < 3; i++) {
        tcp_info_ext_t a, b;
        socklen_t la = sizeof(a), lb = sizeof(b);
        int inq;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &a, &la) != 0 || la < sizeof(a) ||
            ioctl(fd, FIONREAD, &inq) != 0 || inq < 0)
            return -1;
        /* nothing arrived in between if the kernel holds nothing now: one call less */
        if (inq > 0 && (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &b, &lb) != 0 || lb < sizeof(b)))
            return -1;
        if ((inq == 0 || a.bytes_received == b.bytes_received) &&
            a.bytes_received >= (uint64_t)inq) {
            *out = a.bytes_received - (uint64_t)inq;
            return 0;
        }
    }
    return -1;
}

void sb__http_guard_rearm(sb__http_guard_t *g, struct lws *wsi)
{
    guard_conn_t *c = g && wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (!c)
        return;
    /* Only when lws holds nothing of the next request (no pipelined bytes it already read,
     * no body it still has to read and drop) and nothing of this response (the gate may
     * answer on the socket itself). */
    uint64_t read;
    int fd = lws_get_socket_fd(wsi);
    if (!c->rearmable || c->gate != GATE_NONE || lws_partial_buffered(wsi) ||
        bytes_read(fd, &read) != 0 || read != c->next_head) {
        forget(c, false);
        return;
    }
    if (c->fd < 0)
        c->fd = dup(fd);
    if (c->fd < 0) {
        forget(c, false);
        return;
    }
    c->head_start = c->next_head;
    c->rearmable = c->head_seen = c->settled = false;
    c->checked = c->head_len = c->drained = 0;
    c->lines = 0;
    c->gate = GATE_ARMING; /* not counted until the next head's first byte */
    c->next_arming = g->arming;
    g->arming = c;
    sb__http_want_flush(g->srv);
}

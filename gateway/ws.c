/* SPDX-License-Identifier: MIT */
/*
 * WebSocket endpoints of gateway/ws.h (RFC 6455) on the HTTP server's lws vhost.
 * The subprotocols are fixed at build time (lws wants its protocol table when the vhost
 * is created); routes bind callbacks to them at run time. The upgrade is checked in the
 * HTTP protocol's CONFIRM_UPGRADE (path, subprotocol, the route's on_upgrade), so a
 * refusal is a real HTTP status; frames are reassembled from lws's fragments up to the
 * route's max_frame. Outgoing frames are framed here (a server's frames are unmasked,
 * RFC 6455 §5.2) into one per-socket buffer, and the whole buffer goes out in one
 * lws_write(LWS_WRITE_HTTP) (lws passes raw bytes through on a WebSocket) just before the
 * loop polls again (sb__ws_flush): a burst of acks and messages costs one send(), and a
 * socket with room in its kernel buffer needs no POLLOUT round trip (two epoll_ctl calls
 * and a loop turn per write otherwise). What the kernel does not take, lws queues and
 * sends on POLLOUT itself, before any later write.
 *
 * RFC 6455 §5.1 wants a server to close (1002) on an unmasked client frame; lws 4.1 does
 * not check, so the first frame of a cleartext socket is looked at before lws reads it
 * (sb__http_ws_first_frame, http_guard.c), and an unmasked one closes the socket.
 *
 * Memory per idle socket is what the 50k-connection target allows: lws's wsi plus one
 * sb_ws_t (no buffers until a frame is in flight); rx_buffer_size is kept small and
 * messages are reassembled here instead.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/http_internal.h"
#include "gateway/ws.h"

#define RX_CHUNK 1024
/* lws sends at most tx_packet_size (else rx_buffer_size: 1 KiB here) per send() and
 * queues the rest for later WRITEABLEs; a batch of frames should go in one. */
#define TX_PACKET         (256 * 1024)
#define DEFAULT_MAX_FRAME (64 * 1024)
#define DEFAULT_MAX_QUEUE (1024 * 1024)
#define DEFAULT_IDLE_S    300
/* A closing socket whose peer has not taken the rest and the close frame by then is hung
 * up on: a peer that stopped reading must not keep its socket and buffers. */
#define CLOSE_GRACE_S 5
/* How long the first frame is waited for before lws reads anyway: a client that sent its
 * first frame along with the upgrade (RFC 6455 §4.1 says wait for the 101) has it in lws's
 * buffer already, and a peer that only listens may stay quiet for long. */
#define FIRST_FRAME_WAIT_US (2 * LWS_USEC_PER_SEC)

typedef struct ws_state {
    sb_ws_route_t routes[SB_WS_MAX_ROUTES];
    size_t nroutes;
    sb_ws_t *dirty; /* sockets with frames to flush before the loop polls again */
} ws_state_t;

struct sb_ws {
    struct lws *wsi;
    const sb_ws_route_t *route;
    sb_http_server_t *srv;
    sb_ws_t *dirty_prev, *dirty_next; /* in the server's dirty list while dirty */
    bool dirty;
    uint64_t touched_ms; /* when the idle timeout was last pushed back */
    unsigned char *out;  /* LWS_PRE bytes of room, then framed bytes; NULL when empty */
    size_t outlen, outcap;
    char *rx;
    size_t rxlen;
    void *user;
    char *origin;
    char *host;  /* the upgrade's Host header, if any */
    char *auth;  /* the upgrade's Authorization header, if any */
    char *query; /* decoded parameters "a=1\0b=2\0\0" (query_dup) */
    char peer[48];
    int close_code;
    bool close_sent;
    char close_reason[32];
    bool opened;
    bool rx_too_big;
    /* Outbound bytes against the server's cap: the queue, and what the last write handed
     * to lws while lws still holds part of it. */
    sb_http_outq_t oq;
    size_t in_lws;
    bool overflowed;       /* a send failed with SB_ETOOBIG: closed as a slow reader */
    bool rx_refused;       /* closing for a protocol error: frames are dropped */
    sb__http_peek_t *peek; /* the look at the first frame, until its verdict */
};

static const char *const subprotocols[SB_WS_MAX_ROUTES] = {
    "switchboard.visitor.v1",
    "switchboard.events.v1",
};

static int on_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len);

static const struct lws_protocols ws_protocols[] = {
    {"switchboard.visitor.v1", on_ws, sizeof(sb_ws_t), RX_CHUNK, 0, NULL, TX_PACKET},
    {"switchboard.events.v1", on_ws, sizeof(sb_ws_t), RX_CHUNK, 1, NULL, TX_PACKET},
};

const struct lws_protocols *sb__ws_protocols(size_t *n)
{
    *n = sizeof(ws_protocols) / sizeof(ws_protocols[0]);
    return ws_protocols;
}

static ws_state_t *state_of(sb_http_server_t *s, bool create)
{
    void **slot = sb__http_ws_slot(s);
    if (!*slot && create)
        *slot = SB_NEW(ws_state_t);
    return *slot;
}

void sb__ws_server_free(sb_http_server_t *s)
{
    void **slot = sb__http_ws_slot(s);
    sb_free(*slot);
    *slot = NULL;
}

int sb_ws_route(sb_http_server_t *s, const sb_ws_route_t *route)
{
    bool known = false;
    for (size_t i = 0; i < SB_WS_MAX_ROUTES && subprotocols[i]; i++)
        known |= strcmp(subprotocols[i], route->subprotocol) == 0;
    ws_state_t *st = state_of(s, true);
    if (!known || !route->path || st->nroutes == SB_WS_MAX_ROUTES)
        return SB_EINVAL;
    sb_ws_route_t *r = &st->routes[st->nroutes++];
    *r = *route;
    if (!r->max_frame)
        r->max_frame = DEFAULT_MAX_FRAME;
    if (!r->max_queue)
        r->max_queue = DEFAULT_MAX_QUEUE;
    if (!r->idle_timeout_s)
        r->idle_timeout_s = DEFAULT_IDLE_S;
    return 0;
}

static const sb_ws_route_t *find_route(sb_http_server_t *s, const char *path, const char *proto)
{
    ws_state_t *st = state_of(s, false);
    for (size_t i = 0; st && i < st->nroutes; i++)
        if (strcmp(st->routes[i].path, path) == 0 &&
            (!proto || strcmp(st->routes[i].subprotocol, proto) == 0))
            return &st->routes[i];
    return NULL;
}

/* ---- capturing the upgrade request ---- */

static char *hdr_dup(struct lws *wsi, enum lws_token_indexes t)
{
    int n = lws_hdr_total_length(wsi, t);
    if (n <= 0)
        return NULL;
    char *s = sb_malloc((size_t)n + 1);
    if (lws_hdr_copy(wsi, s, n + 1, t) < 0) {
        sb_free(s);
        return NULL;
    }
    return s;
}

/*
 * The upgrade's query parameters as lws hands them over: one fragment per parameter,
 * already split at '&' and %xx-decoded (lws refuses %00). Kept as "a=1\0b=2\0\0", since a
 * decoded value may hold '&' or '=' itself (sb_ws_query reads this form).
 */
static char *query_dup(struct lws *wsi)
{
    sb_buf_t b;
    sb_buf_init(&b, 4096);
    char frag[512];
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++)
        sb_buf_append(&b, frag, strlen(frag) + 1);
    if (!b.len || sb_buf_error(&b)) { /* none, or over 4 KiB: not a query we use */
        sb_buf_dispose(&b);
        return NULL;
    }
    return sb_buf_steal(&b, NULL);
}

static void capture(sb_ws_t *ws, struct lws *wsi)
{
    ws->origin = hdr_dup(wsi, WSI_TOKEN_ORIGIN);
    ws->host = hdr_dup(wsi, WSI_TOKEN_HOST);
    ws->auth = hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    ws->query = query_dup(wsi);
    lws_get_peer_simple(wsi, ws->peer, sizeof(ws->peer));
}

static void undirty(sb_ws_t *ws)
{
    if (!ws->dirty)
        return;
    ws_state_t *st = state_of(ws->srv, false);
    if (ws->dirty_prev)
        ws->dirty_prev->dirty_next = ws->dirty_next;
    else
        st->dirty = ws->dirty_next;
    if (ws->dirty_next)
        ws->dirty_next->dirty_prev = ws->dirty_prev;
    ws->dirty_prev = ws->dirty_next = NULL;
    ws->dirty = false;
}

/* Recounts the socket's bytes against the server's cap. */
static void account(sb_ws_t *ws)
{
    if (!ws->srv)
        return;
    if (!ws->wsi || !lws_partial_buffered(ws->wsi))
        ws->in_lws = 0;
    sb__http_out_set(ws->srv, &ws->oq, ws->outlen + ws->in_lws);
}

static void release(sb_ws_t *ws)
{
    sb__http_peek_cancel(ws->peek, false);
    ws->peek = NULL;
    undirty(ws);
    if (ws->srv)
        sb__http_out_set(ws->srv, &ws->oq, 0);
    sb_free(ws->origin);
    sb_free(ws->host);
    sb_free(ws->auth);
    sb_free(ws->query);
    sb_free(ws->rx);
    ws->origin = ws->host = ws->auth = ws->query = ws->rx = NULL;
    sb_free(ws->out);
    ws->out = NULL;
    ws->outlen = ws->outcap = 0;
}

/* Which subprotocol the client asked for that we serve at this path, or NULL. */
static const sb_ws_route_t *route_for_upgrade(sb_http_server_t *s, struct lws *wsi, char *path,
                                              size_t cap)
{
    if (lws_hdr_copy(wsi, path, (int)cap, WSI_TOKEN_GET_URI) <= 0)
        return NULL;
    char protos[256];
    if (lws_hdr_copy(wsi, protos, sizeof(protos), WSI_TOKEN_PROTOCOL) <= 0)
        return NULL;
    char *save = NULL;
    for (char *t = strtok_r(protos, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        const sb_ws_route_t *r = find_route(s, path, t);
        if (r)
            return r;
    }
    return NULL;
}

int sb__ws_confirm_upgrade(sb_http_server_t *s, struct lws *wsi, const char *what)
{
    if (!what || strcmp(what, "websocket") != 0)
        return -1; /* h2c and others: not offered */
    char path[256];
    const sb_ws_route_t *r = route_for_upgrade(s, wsi, path, sizeof(path));
    if (!r) {
        int status = find_route(s, path, NULL) ? 400 : 404;
        lws_return_http_status(wsi, (unsigned)status,
                               status == 400 ? "unsupported subprotocol" : "no such endpoint");
        return 1;
    }
    if (r->on_upgrade) {
        sb_ws_t view = {.wsi = wsi, .route = r};
        capture(&view, wsi);
        int status = r->on_upgrade(&view, r->data);
        release(&view);
        if (status) {
            lws_return_http_status(wsi, (unsigned)status, "refused");
            return 1;
        }
    }
    return 0;
}

/* ---- the socket callbacks ---- */

static void shed(sb_http_outq_t *q);
/* The first frame's verdict (RFC 6455 §5.1): an unmasked frame closes with 1002. */
static void on_first_frame(void *data, bool masked)
{
    sb_ws_t *ws = data;
    ws->peek = NULL;
    if (ws->wsi)
        lws_set_timer_usecs(ws->wsi, LWS_SET_TIMER_USEC_CANCEL);
    if (masked || !ws->wsi)
        return;
    SB_LOG_INFO("ws.refused", "peer=%s path=%s reason=unmasked_frame", ws->peer,
                ws->route ? ws->route->path : "");
    ws->rx_refused = true;
    sb_ws_close(ws, 1002, "frame not masked");
}

static void on_established(sb_ws_t *ws, struct lws *wsi)
{
    struct lws_context *ctx = lws_get_context(wsi);
    sb_http_server_t *s = lws_context_user(ctx);
    char path[256] = "";
    lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI);
    memset(ws, 0, sizeof(*ws));
    ws->wsi = wsi;
    ws->srv = s;
    ws->oq.shed = shed;
    ws->route = find_route(s, path, lws_get_protocol(wsi)->name);
    capture(ws, wsi);
    if (!ws->route)
        return;
    lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)ws->route->idle_timeout_s);
    ws->touched_ms = sb__http_now_ms(s);
    ws->opened = true;
    ws->peek = sb__http_ws_first_frame(s, wsi, on_first_frame, ws);
    if (ws->peek)
        lws_set_timer_usecs(wsi, FIRST_FRAME_WAIT_US);
    if (ws->route->on_open)
        ws->route->on_open(ws, ws->route->data);
}

static int on_receive(sb_ws_t *ws, struct lws *wsi, const void *in, size_t len)
{
    if (!ws->route)
        return -1;
    if (ws->rx_refused)
        return 0; /* our close frame is on its way */
    /* lws keeps timeouts in a sorted list (an insertion walks it): push the idle timeout
     * back at most once a second, not on every frame. */
    uint64_t now = sb__http_now_ms(ws->srv);
    if (!ws->close_code && now - ws->touched_ms >= 1000) { /* closing: CLOSE_GRACE_S holds */
        ws->touched_ms = now;
        lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, (int)ws->route->idle_timeout_s);
    }
    if (lws_frame_is_binary(wsi)) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, NULL, 0);
        return -1;
    }
    if (lws_is_first_fragment(wsi))
        ws->rxlen = 0;
    if (ws->rxlen + len > ws->route->max_frame) {
        SB_LOG_INFO("ws.too_big", "peer=%s path=%s max=%zu", ws->peer, ws->route->path,
                    ws->route->max_frame);
        static unsigned char reason[] = "message too big";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, reason, sizeof(reason) - 1);
        return -1;
    }
    bool whole = lws_is_first_fragment(wsi) && lws_is_final_fragment(wsi) &&
                 !lws_remaining_packet_payload(wsi);
    if (whole) { /* the common case: no copy */
        if (ws->route->on_text)
            ws->route->on_text(ws, in, len, ws->route->data);
        return 0;
    }
    ws->rx = sb_realloc(ws->rx, ws->rxlen + len + 1);
    memcpy(ws->rx + ws->rxlen, in, len);
    ws->rxlen += len;
    if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        ws->rx[ws->rxlen] = '\0';
        if (ws->route->on_text)
            ws->route->on_text(ws, ws->rx, ws->rxlen, ws->route->data);
        sb_free(ws->rx);
        ws->rx = NULL;
        ws->rxlen = 0;
    }
    return 0;
}

/*
 * Hands the queued frames to lws in one write. lws keeps whatever the socket does not
 * take (after anything it still holds) and sends it when the socket is writable, so the
 * buffer is free once lws_write returns. Returns lws_write's verdict.
 */
static int write_out(sb_ws_t *ws, struct lws *wsi)
{
    undirty(ws);
    if (!ws->outlen)
        return 0;
    if (lws_partial_buffered(wsi)) {
        /* lws still holds what the kernel refused last time: keep queueing here, where
         * max_queue bounds a reader that stopped reading, until POLLOUT. */
        lws_callback_on_writable(wsi);
        return 0;
    }
    int n = lws_write(wsi, ws->out + LWS_PRE, ws->outlen, LWS_WRITE_HTTP);
    ws->in_lws = ws->outlen;
    sb_free(ws->out);
    ws->out = NULL;
    ws->outlen = ws->outcap = 0;
    account(ws);
    return n < 0 ? -1 : 0;
}

/*
 * Before the loop polls again (http_write.c's prepare hook): every socket that queued frames
 * during this turn writes them now, straight to the socket: no POLLOUT round trip, and
 * all frames of a turn in one send().
 */
void sb__ws_flush(sb_http_server_t *s)
{
    ws_state_t *st = state_of(s, false);
    struct lws_context *killed = NULL;
    while (st && st->dirty) {
        sb_ws_t *ws = st->dirty;
        if (write_out(ws, ws->wsi) != 0) {
            lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            killed = lws_get_context(ws->wsi);
        }
    }
    if (killed) /* lws runs its timers (and so the kill) after servicing an event */
        lws_cancel_service(killed);
}

/*
 * The close handshake (RFC 6455 §5.5.1), once the queued frames are out: our close
 * frame is written like the others (lws sends none when a callback returns -1, and the
 * peer would see 1006), then lws waits a little for the peer's close and hangs up.
 */
static int write_close(sb_ws_t *ws, struct lws *wsi)
{
    unsigned char f[LWS_PRE + 4 + sizeof(ws->close_reason)];
    unsigned char *p = f + LWS_PRE;
    size_t rlen = strlen(ws->close_reason);
    p[0] = 0x88; /* FIN, close */
    p[1] = (unsigned char)(2 + rlen);
    p[2] = (unsigned char)(ws->close_code >> 8);
    p[3] = (unsigned char)ws->close_code;
    memcpy(p + 4, ws->close_reason, rlen);
    ws->close_sent = true;
    if (lws_write(wsi, p, 4 + rlen, LWS_WRITE_HTTP) < 0)
        return -1;
    lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_ACK, 3);
    return 0;
}

static int on_writeable(sb_ws_t *ws, struct lws *wsi)
{
    if (write_out(ws, wsi) != 0)
        return -1;
    account(ws); /* lws may have sent what it held */
    if (ws->close_code && !ws->close_sent) {
        if (ws->outlen || lws_partial_buffered(wsi)) {
            lws_callback_on_writable(wsi); /* the data first */
            return 0;
        }
        return write_close(ws, wsi);
    }
    return 0;
}

static int on_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    sb_ws_t *ws = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        on_established(ws, wsi);
        return ws->route ? 0 : -1;
    case LWS_CALLBACK_RECEIVE:
        return on_receive(ws, wsi, in, len);
    case LWS_CALLBACK_TIMER: /* no first frame yet: stop looking, lws reads */
        if (ws && ws->peek) {
            sb__http_peek_cancel(ws->peek, true);
            ws->peek = NULL;
        }
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return on_writeable(ws, wsi);
    case LWS_CALLBACK_CLOSED:
        if (ws && ws->opened) {
            ws->opened = false;
            ws->wsi = NULL;
            if (ws->route->on_close)
                ws->route->on_close(ws, ws->route->data);
        }
        if (ws)
            release(ws);
        return 0;
    default:
        return 0;
    }
}

/* ---- public API ---- */

int sb_ws_send(sb_ws_t *ws, const char *msg, size_t len)
{
    if (!ws->wsi || ws->close_code)
        return SB_ECANCELED;
    if (ws->outlen + len > ws->route->max_queue) {
        ws->overflowed = true;
        return SB_ETOOBIG;
    }
    unsigned char head[10];
    size_t hlen;
    head[0] = 0x81; /* FIN, text */
    if (len < 126) {
        head[1] = (unsigned char)len;
        hlen = 2;
    } else if (len <= 0xffff) {
        head[1] = 126;
        head[2] = (unsigned char)(len >> 8);
        head[3] = (unsigned char)len;
        hlen = 4;
    } else {
        head[1] = 127;
        for (int i = 0; i < 8; i++)
            head[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        hlen = 10;
    }
    size_t need = LWS_PRE + ws->outlen + hlen + len;
    if (need > ws->outcap) {
        size_t cap = ws->outcap ? ws->outcap : 512;
        while (cap < need)
            cap *= 2;
        ws->out = sb_realloc(ws->out, cap);
        ws->outcap = cap;
    }
    bool was_empty = ws->outlen == 0;
    memcpy(ws->out + LWS_PRE + ws->outlen, head, hlen);
    memcpy(ws->out + LWS_PRE + ws->outlen + hlen, msg, len);
    ws->outlen += hlen + len;
    account(ws);
    if (was_empty && !ws->dirty) {
        ws_state_t *st = state_of(ws->srv, false);
        ws->dirty = true;
        ws->dirty_prev = NULL;
        ws->dirty_next = st->dirty;
        if (st->dirty)
            st->dirty->dirty_prev = ws;
        st->dirty = ws;
        sb__http_want_flush(ws->srv);
    }
    return 0;
}

void sb_ws_close(sb_ws_t *ws, int code, const char *reason)
{
    if (!ws->wsi || ws->close_code)
        return;
    ws->close_code = code ? code : 1000;
    snprintf(ws->close_reason, sizeof(ws->close_reason), "%s", reason ? reason : "");
    undirty(ws); /* the frames before the close go out from WRITEABLE, then the close */
    if (ws->overflowed)
        sb__http_count_slow(ws->srv); /* a reader too slow for its queue */
    lws_set_timeout(ws->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
    lws_callback_on_writable(ws->wsi);
}

/* Over the server's cap: the queue is dropped and the socket closed as too slow. */
static void shed(sb_http_outq_t *q)
{
    sb_ws_t *ws = (sb_ws_t *)((char *)q - offsetof(sb_ws_t, oq));
    SB_LOG_INFO("ws.slow", "peer=%s path=%s action=disconnect", ws->peer,
                ws->route ? ws->route->path : "-");
    sb_free(ws->out);
    ws->out = NULL;
    ws->outlen = ws->outcap = 0;
    ws->oq.shed = NULL; /* what lws still holds goes with the socket */
    account(ws);
    if (ws->close_code) { /* closing already: now only the close frame waits */
        sb__http_count_slow(ws->srv);
        return;
    }
    ws->overflowed = true;
    sb_ws_close(ws, 1008, "too slow"); /* counts it */
}

const char *sb_ws_header(const sb_ws_t *ws, const char *name)
{
    if (strcmp(name, "origin") == 0)
        return ws->origin;
    if (strcmp(name, "authorization") == 0)
        return ws->auth;
    if (strcmp(name, "host") == 0)
        return ws->host;
    return NULL;
}

const char *sb_ws_query(const sb_ws_t *ws, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = ws->query; p && *p; p += strlen(p) + 1)
        if (strncmp(p, name, n) == 0 && p[n] == '=')
            return p + n + 1;
    return NULL;
}

const char *sb_ws_peer(const sb_ws_t *ws)
{
    return ws->peer;
}

void sb_ws_set_user(sb_ws_t *ws, void *user)
{
    ws->user = user;
}

void *sb_ws_user(const sb_ws_t *ws)
{
    return ws->user;
}

/* SPDX-License-Identifier: MIT */
/*
 * The HTTP/1.1 server of gateway/http.h (RFC 9110, RFC 9112) on libwebsockets 4.1 running
 * on the caller's libuv loop (a "foreign" loop for lws). lws parses requests and owns the
 * sockets. This file owns the server's life: the lws context and vhost with its protocol
 * table (HTTP first, ws.c's WebSocket protocols, the raw fallback of http_guard.c), the
 * lws callback that hands each event to the file owning it, the listen address, the
 * loop-phase handles, stats, and shutdown. The rest of the server is split by what it owns:
 * http_route.c (route table), http_read.c (a request's head and body up to its handler),
 * http_req.c (a request's life, accessors, response API), http_write.c (writing responses
 * and streams, the outbound cap), http_guard.c (the header phase); http_internal.h holds
 * what they share.
 *
 * A request lives from its headers until its response is fully written (keep-alive then
 * goes on with a fresh one) or its connection closes (http_req.c).
 *
 * Shutdown follows the lws foreign-loop sequence (docs/libraries.md): the first
 * lws_context_destroy() closes every connection; once lws's own uv handles have closed,
 * a second lws_context_destroy() frees the context, and only then the stop callback runs.
 *
 * HTTP/2 is not offered (ALPN http/1.1, h2c upgrades refused).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/http.h"
#include "gateway/http_internal.h"

#define DEFAULT_MAX_BODY   ((size_t)1 << 20)
#define DEFAULT_MAX_STREAM ((size_t)4 << 20)
#define DEFAULT_MAX_OUT    ((size_t)256 << 20)
/* lws sends at most a protocol's tx_packet_size (else its rx buffer size, 4 KiB) per
 * send() and queues the rest for later WRITEABLEs: let a whole piece go at once. */
#define TX_PACKET_SIZE (256 * 1024)
#define KEEPALIVE_S    60
/* Header tables are 8 KiB each and lws allocates one per connection still in its HTTP
 * phase: cap them, so a burst of 50k WebSocket upgrades doesn't leave the heap 400 MB
 * high (connections wait for a free one instead). */
#define HEADER_POOL 256
/* Slowloris defence (http_guard.c; docs/hardening-http.md): a connection must finish its
 * request headers this long after it got a header table; and once half the pool is in
 * the header phase, an address (IPv6: /64) with this many connections there gets no
 * more. A browser has 6 in flight, for milliseconds; an attacker needs 8 addresses to
 * get past half the pool. */
#define DEFAULT_HEADER_TIMEOUT_S 5
#define DEFAULT_HEADER_CONNS_IP  32

/* More repeats of BODY_COMPLETION for one request than lws ever makes while working. */
#define COMPLETION_SPIN_MAX 64

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

/*
 * The first protocol of the vhost: lws sends every plain HTTP request and the
 * connection-level callbacks to protocols[0]. ws.c's WebSocket protocols follow it
 * (http_internal.h); the table is built when the vhost is created (lws copies it).
 */
static const struct lws_protocols http_protocol = {"http", on_lws, sizeof(sb__http_pss_t), 0,
                                                   0,      NULL,   TX_PACKET_SIZE};

/* The last protocol: where lws hands a connection whose request line it cannot parse
 * (vhost option FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG); http_guard.c answers 400 JSON.
 * It is the vhost's "raw" protocol by a per-vhost option (listen_accept_protocol would
 * bind every accepted connection to it). */
static const struct lws_protocols fallback_protocol = {
    SB__HTTP_FALLBACK_PROTOCOL, on_lws, sizeof(bool), 0, 0, NULL, 0};
static const struct lws_protocol_vhost_options fallback_raw = {NULL, NULL, "raw", ""};
static const struct lws_protocol_vhost_options fallback_pvo = {NULL, &fallback_raw,
                                                               SB__HTTP_FALLBACK_PROTOCOL, ""};

/* ---- The lws protocol callback ---- */

static void on_lws_log(int level, const char *line)
{
    char msg[512];
    size_t n = 0;
    for (const char *p = line; *p && n < sizeof(msg) - 1; p++)
        if (*p != '\n' && *p != '\r')
            msg[n++] = *p == '"' ? '\'' : *p;
    msg[n] = '\0';
    SB_LOG_WARN("lws", "level=%s msg=\"%s\"", level & LLL_ERR ? "err" : "warn", msg);
}

static int on_lws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct lws_context *ctx = wsi ? lws_get_context(wsi) : NULL;
    sb_http_server_t *s = ctx ? lws_context_user(ctx) : NULL;
    sb__http_pss_t *pss = user; /* only for the HTTP reasons below */
    sb_http_req_t *req = NULL;
    if (pss && (reason == LWS_CALLBACK_HTTP_BODY || reason == LWS_CALLBACK_HTTP_BODY_COMPLETION ||
                reason == LWS_CALLBACK_HTTP_WRITEABLE || reason == LWS_CALLBACK_CLOSED_HTTP ||
                reason == LWS_CALLBACK_HTTP_DROP_PROTOCOL))
        req = pss->req;
    switch (reason) {
    case LWS_CALLBACK_WSI_CREATE:
        if (s)
            s->stats.open_connections++;
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        if (s && s->stats.open_connections)
            s->stats.open_connections--;
        if (s)
            sb__http_guard_release(s->guard, wsi);
        return 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return s && !s->stopping ? sb__http_guard_accept(s->guard, wsi) : -1;
    case LWS_CALLBACK_HTTP:
        return sb__http_on_request(s, wsi, pss, in);
    case LWS_CALLBACK_HTTP_BODY:
        return sb__http_on_body(req, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (req && req->state == SB__HTTP_REQ_READING && !req->chunked) {
            sb__http_dispatch(req);
        } else if (req && ++req->completions > COMPLETION_SPIN_MAX) {
            /* lws 4.1 repeats this callback, never returning to the loop (so never writing
             * the answer), when a request with a body was pipelined behind another: the whole
             * daemon would spin. Close such a connection (RFC 9112 §9.3.2: the client retries
             * what was not answered). Found by tests/fuzz/fuzz_http. */
            SB_LOG_WARN("http.pipelined_body", "peer=%s path=\"%.200s\" what=\"closed\"", req->peer,
                        req->path);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return req ? sb__http_on_writeable(req, wsi, pss) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (req) {
            pss->req = NULL;
            sb__http_req_conn_gone(req);
        }
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: /* WebSocket routes decide; h2c is refused */
        if (!s)
            return -1;
        sb__http_guard_release(s->guard, wsi);
        return sb__ws_confirm_upgrade(s, wsi, in);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        return 0;
    case LWS_CALLBACK_RAW_ADOPT:
    case LWS_CALLBACK_RAW_RX:
    case LWS_CALLBACK_RAW_WRITEABLE:
    case LWS_CALLBACK_RAW_CLOSE:
        return s ? sb__http_guard_raw(s->guard, wsi, (int)reason, user, s->tls) : -1;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- Server life ---- */

/*
 * "host:port", "[v6]:port" or "port"; host "*" or "" (all interfaces, IPv6 too when
 * available), "0.0.0.0" (all IPv4), "localhost", or an IP literal. 0 or SB_EINVAL.
 */
static int parse_listen(const char *listen, char *host, size_t host_len, int *port, bool *v4only)
{
    if (!listen || !*listen)
        return SB_EINVAL;
    const char *colon = strrchr(listen, ':'), *ps = colon ? colon + 1 : listen;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    const char *h = listen;
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    } else if (memchr(h, ':', hl)) {
        return SB_EINVAL; /* a bare IPv6 address needs brackets */
    }
    char *end;
    long p = strtol(ps, &end, 10);
    if (!*ps || *end || p < 0 || p > 65535 || hl >= host_len)
        return SB_EINVAL;
    *port = (int)p;
    memcpy(host, h, hl);
    host[hl] = '\0';
    unsigned char addr[16];
    *v4only = false;
    if (!strcmp(host, "*") || !*host || !strcmp(host, "::")) {
        int fd = socket(AF_INET6, SOCK_STREAM, 0);
        *v4only = fd < 0;
        if (fd >= 0)
            close(fd);
        host[0] = '\0';
    } else if (!strcmp(host, "0.0.0.0")) {
        *v4only = true;
        host[0] = '\0';
    } else if (!strcmp(host, "localhost")) {
        *v4only = true;
        snprintf(host, host_len, "127.0.0.1");
    } else if (inet_pton(AF_INET, host, addr) == 1) {
        *v4only = true;
    } else if (inet_pton(AF_INET6, host, addr) != 1) {
        return SB_EINVAL;
    }
    return 0;
}

static void server_free(sb_http_server_t *s)
{
    while (s->live) /* lws closed every connection already; this is a safety net */
        sb__http_req_conn_gone(s->live);
    for (size_t i = 0; i < s->nroutes; i++) {
        sb__http_route_dispose(s->routes[i]);
        sb_free(s->routes[i]);
    }
    sb_free(s->routes);
    sb__ws_server_free(s);
    sb__http_guard_free(s->guard);
    sb_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    sb_free(h);
}

static void on_poll_in(uv_prepare_t *p)
{
    ((sb_http_server_t *)p->data)->in_poll = true;
}

static void on_poll_out(uv_check_t *c)
{
    ((sb_http_server_t *)c->data)->in_poll = false;
}

static void close_phase_handles(sb_http_server_t *s)
{
    uv_close((uv_handle_t *)s->poll_in, on_handle_closed);
    uv_close((uv_handle_t *)s->poll_out, on_handle_closed);
}

typedef struct probe {
    const void *ctx;
    bool found;
} probe_t;

/* lws's static uv handles (idle, timer) carry the context as data until they close. */
static void probe_handle(uv_handle_t *h, void *arg)
{
    probe_t *p = arg;
    if (h->data == p->ctx)
        p->found = true;
}

static void on_reaper_closed(uv_handle_t *h)
{
    sb_http_server_t *s = h->data;
    void (*cb)(void *) = s->stop_cb;
    void *data = s->stop_data;
    server_free(s);
    sb_free(h);
    if (cb)
        cb(data);
}

/* Polls until lws's handles have closed, then finishes the context (second destroy). */
static void on_reaper(uv_timer_t *t)
{
    sb_http_server_t *s = t->data;
    probe_t p = {s->ctx, false};
    uv_walk(s->loop, probe_handle, &p);
    if (p.found) {
        if (++s->reaper_ticks == 10000)
            SB_LOG_WARN("http.stop", "msg=\"lws handles still open after 10 s\"");
        return;
    }
    lws_context_destroy(s->ctx);
    s->ctx = NULL;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, on_reaper_closed);
}

static void destroy_begin(sb_http_server_t *s)
{
    s->stopping = true;
    uv_close((uv_handle_t *)s->watch, on_handle_closed);
    uv_close((uv_handle_t *)s->flusher, on_handle_closed);
    close_phase_handles(s);
    s->reaper = SB_NEW(uv_timer_t);
    uv_timer_init(s->loop, s->reaper);
    s->reaper->data = s;
    lws_context_destroy(s->ctx); /* closes every connection: on_close hooks run now */
    uv_timer_start(s->reaper, on_reaper, 1, 1);
}

int sb_http_server_new(const sb_http_opts_t *opts, sb_http_server_t **out)
{
    char host[64];
    int port;
    bool v4only;
    *out = NULL;
    if (!opts || !opts->loop ||
        parse_listen(opts->listen, host, sizeof(host), &port, &v4only) != 0) {
        SB_LOG_ERROR("http.listen", "listen=%s err=\"expected host:port\"",
                     opts && opts->listen ? opts->listen : "(none)");
        return SB_EINVAL;
    }
    bool tls = opts->tls_cert && *opts->tls_cert;
    if (tls != (opts->tls_key && *opts->tls_key)) {
        SB_LOG_ERROR("http.tls", "err=\"tls_cert and tls_key go together\"");
        return SB_EINVAL;
    }
    sb_http_server_t *s = SB_NEW(sb_http_server_t);
    s->loop = opts->loop;
    s->tls = tls;
    s->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
    s->max_stream = opts->max_stream_buffer ? opts->max_stream_buffer : DEFAULT_MAX_STREAM;
    s->max_out = opts->max_outbound ? opts->max_outbound : DEFAULT_MAX_OUT;
    s->guard = sb__http_guard_new(
        s, opts->loop,
        opts->max_header_conns_per_ip ? opts->max_header_conns_per_ip : DEFAULT_HEADER_CONNS_IP,
        HEADER_POOL / 2,
        opts->header_timeout_s ? opts->header_timeout_s : DEFAULT_HEADER_TIMEOUT_S);
    s->watch = SB_NEW(uv_timer_t);
    uv_timer_init(s->loop, s->watch);
    s->watch->data = s;
    s->flusher = SB_NEW(uv_prepare_t);
    uv_prepare_init(s->loop, s->flusher);
    s->flusher->data = s;
    s->poll_in = SB_NEW(uv_prepare_t);
    uv_prepare_init(s->loop, s->poll_in);
    s->poll_in->data = s;
    uv_prepare_start(s->poll_in, on_poll_in);
    uv_unref((uv_handle_t *)s->poll_in);
    s->poll_out = SB_NEW(uv_check_t);
    uv_check_init(s->loop, s->poll_out);
    s->poll_out->data = s;
    uv_check_start(s->poll_out, on_poll_out);
    uv_unref((uv_handle_t *)s->poll_out);
    lws_set_log_level(LLL_ERR | LLL_WARN, on_lws_log);

    void *loops[1] = {opts->loop};
    struct lws_context_creation_info ci;
    memset(&ci, 0, sizeof(ci));
    ci.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
                 (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0);
    ci.foreign_loops = loops;
    ci.user = s;
    ci.port = CONTEXT_PORT_NO_LISTEN;
    ci.server_string = "switchboard";
    /* http_guard.c lets no head over SB__HTTP_MAX_HEAD through; lws stores custom headers
     * with 8 bytes of its own per field: room for that, so lws never fails on such a head */
    ci.max_http_header_data = SB__HTTP_MAX_HEAD + 8 * SB__HTTP_MAX_FIELDS + 256;
    ci.max_http_header_pool = HEADER_POOL;
    s->ctx = lws_create_context(&ci);
    if (!s->ctx) {
        SB_LOG_ERROR("http.listen", "listen=%s err=\"lws context failed\"", opts->listen);
        uv_close((uv_handle_t *)s->watch, on_handle_closed);
        uv_close((uv_handle_t *)s->flusher, on_handle_closed);
        sb__http_guard_free(s->guard);
        close_phase_handles(s);
        sb_free(s);
        return SB_EIO;
    }

    struct lws_context_creation_info vi;
    memset(&vi, 0, sizeof(vi));
    vi.vhost_name = "switchboard";
    vi.port = port;
    vi.iface = host[0] ? host : NULL;
    size_t nws = 0;
    const struct lws_protocols *wsp = sb__ws_protocols(&nws);
    struct lws_protocols *table = sb_calloc(nws + 3, sizeof(*table)); /* zeroed terminator */
    table[0] = http_protocol;
    memcpy(table + 1, wsp, nws * sizeof(*table));
    table[nws + 1] = fallback_protocol;
    vi.protocols = table;
    vi.options = (v4only ? LWS_SERVER_OPTION_DISABLE_IPV6 : 0) |
                 (tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0) |
                 /* plain text on a TLS port goes to the fallback too (lws peeks first) */
                 (tls ? LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT : 0) |
                 LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG;
    vi.pvo = &fallback_pvo;
    vi.keepalive_timeout = KEEPALIVE_S;
    vi.timeout_secs_ah_idle =
        opts->header_timeout_s ? (int)opts->header_timeout_s : DEFAULT_HEADER_TIMEOUT_S;
    vi.alpn = "http/1.1";
    vi.ssl_cert_filepath = tls ? opts->tls_cert : NULL;
    vi.ssl_private_key_filepath = tls ? opts->tls_key : NULL;
    s->vhost = lws_create_vhost(s->ctx, &vi);
    sb_free(table);
    if (!s->vhost) {
        SB_LOG_ERROR("http.listen", "listen=%s err=\"cannot listen\"", opts->listen);
        destroy_begin(s); /* finishes on the loop */
        return SB_EIO;
    }
    s->port = lws_get_vhost_listen_port(s->vhost);
    SB_LOG_DEBUG("http.listen", "listen=%s port=%d tls=%d", opts->listen, s->port, tls);
    *out = s;
    return 0;
}

int sb_http_server_port(const sb_http_server_t *s)
{
    return s->port;
}

sb__http_guard_t *sb__http_guard_of(sb_http_server_t *s)
{
    return s->guard;
}

void **sb__http_ws_slot(sb_http_server_t *s)
{
    return &s->ws;
}

void sb_http_server_stats(const sb_http_server_t *s, sb_http_stats_t *out)
{
    *out = s->stats;
    out->outbound_bytes = s->out_bytes;
    out->outbound_limit = s->max_out;
}

void sb_http_server_stop(sb_http_server_t *s, void (*cb)(void *data), void *data)
{
    if (!s) {
        if (cb)
            cb(data);
        return;
    }
    if (s->stopping)
        return;
    s->stop_cb = cb;
    s->stop_data = data;
    destroy_begin(s);
}

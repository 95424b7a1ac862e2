/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's internals, shared by its own files only (gateway/http*.c and ws.c):
 * the WebSocket protocols live in the HTTP server's lws vhost, and ws.c keeps its routes
 * in a slot of the server; http_guard.c watches the header phase; and the server itself
 * is split by what each file owns (see the last section). Includes lws types, so nothing
 * outside the HTTP server includes it.
 */
#ifndef SB_GATEWAY_HTTP_INTERNAL_H
#define SB_GATEWAY_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "gateway/http.h"

#define SB_WS_MAX_ROUTES 4

/**
 * A connection's outbound bytes (its queue, plus what it handed to lws while lws still
 * holds some of it), counted against the server's total cap (max_outbound). Embedded in
 * an SSE request or a WebSocket; listed in the server while bytes > 0.
 */
typedef struct sb_http_outq {
    struct sb_http_outq *prev, *next;
    size_t bytes;
    bool listed;
    /** Over the cap, the largest is shed first: drop its queue and close it now. */
    void (*shed)(struct sb_http_outq *q);
} sb_http_outq_t;

/** Sets q's byte count (0 unlists it); over the cap, shedding runs before the next poll. */
void sb__http_out_set(sb_http_server_t *s, sb_http_outq_t *q, size_t bytes);

/** Counts a connection closed because its reader was too slow (for /metrics). */
void sb__http_count_slow(sb_http_server_t *s);

/** ws.c's lws protocols, appended to the vhost's table after HTTP. */
const struct lws_protocols *sb__ws_protocols(size_t *n);

/** Checks a WebSocket upgrade (HTTP_CONFIRM_UPGRADE): 0 accept, 1 answered, -1 hang up. */
int sb__ws_confirm_upgrade(sb_http_server_t *s, struct lws *wsi, const char *what);

/** The server's slot for ws.c's state. */
void **sb__http_ws_slot(sb_http_server_t *s);

/** Asks for sb__ws_flush (and stream flushes) before the loop next polls. */
void sb__http_want_flush(sb_http_server_t *s);

/** Writes every WebSocket's queued frames (called by http_write.c before the loop polls). */
void sb__ws_flush(sb_http_server_t *s);

/** The loop's cached time in ms (uv_now). */
uint64_t sb__http_now_ms(const sb_http_server_t *s);

/* ---- http_guard.c: the header phase (slowloris, malformed heads) ---- */
typedef struct sb__http_guard sb__http_guard_t;

/* The biggest request head (request line and header fields) taken, in bytes, and the most
 * header fields; lws's header tables get room for this much and their own overhead. */
#define SB__HTTP_MAX_HEAD     8192
#define SB__HTTP_MAX_HEAD_S   "8192"
#define SB__HTTP_MAX_FIELDS   100
#define SB__HTTP_MAX_FIELDS_S "100"

/**
 * A guard allowing per_ip connections per address in the header phase (0: no cap) once
 * at least busy connections are in it. header_timeout_s: the header deadline (the vhost's
 * timeout_secs_ah_idle), which the guard applies to a keep-alive connection's later heads.
 */
sb__http_guard_t *sb__http_guard_new(sb_http_server_t *s, uv_loop_t *loop, unsigned per_ip,
                                     unsigned busy, unsigned header_timeout_s);
/** Frees the guard (NULL is fine). Connections still counted must be gone. */
void sb__http_guard_free(sb__http_guard_t *g);
/**
 * A connection was accepted (SERVER_NEW_CLIENT_INSTANTIATED): counts it under its
 * address, 0; or, over the cap, answers 429 on a cleartext socket and returns -1 (the
 * caller returns it to lws, which closes the connection).
 */
int sb__http_guard_accept(sb__http_guard_t *g, struct lws *wsi);
/** The connection is gone, upgraded or a stream: stops counting and gating it (idempotent). */
void sb__http_guard_release(sb__http_guard_t *g, struct lws *wsi);
/**
 * A request's headers are complete (LWS_CALLBACK_HTTP): stops counting the connection and
 * notes where its next request begins, when that can be told (idempotent).
 */
void sb__http_guard_head_done(sb__http_guard_t *g, struct lws *wsi);
/**
 * A response is complete and the connection kept alive (lws_http_transaction_completed
 * returned 0): puts the gate in place for the next request's head if lws holds none of it
 * (nothing pipelined read, no body left to drop, no response bytes buffered); otherwise
 * lws parses the connection's later requests alone. The connection counts against the
 * per-address cap from the next head's first byte, not while idle.
 */
void sb__http_guard_rearm(sb__http_guard_t *g, struct lws *wsi);
/** The lws protocol of lws's fallback to a raw socket (a request line it cannot parse). */
#define SB__HTTP_FALLBACK_PROTOCOL "sb-http-fallback"
/**
 * That protocol's callbacks (RAW_ADOPT, RAW_WRITEABLE; user: a bool of user space):
 * answers 400 JSON once, shuts the write side, drops what follows. tls_port: the server
 * has TLS (then plain text on it is answered "this port speaks HTTPS"). lws's verdict.
 */
int sb__http_guard_raw(sb__http_guard_t *g, struct lws *wsi, int reason, void *user, bool tls_port);
/** The server's guard. */
sb__http_guard_t *sb__http_guard_of(sb_http_server_t *s);

typedef struct sb__http_peek sb__http_peek_t;
/** The verdict on a WebSocket's first frame: masked (or the peer left: true too). */
typedef void (*sb__http_peek_cb)(void *data, bool masked);
/**
 * Keeps lws from reading an established cleartext WebSocket until its first frame header
 * is in, then runs cb(data, masked) once and lets lws read. NULL (and no callback) on TLS
 * or when the look cannot be set up. Cancel with sb__http_peek_cancel before the socket
 * goes, or to give up (the callback then never runs).
 */
sb__http_peek_t *sb__http_ws_first_frame(sb_http_server_t *s, struct lws *wsi, sb__http_peek_cb cb,
                                         void *data);
/** Stops the look (NULL is fine); release_rx: lws reads again (giving up, not closing). */
void sb__http_peek_cancel(sb__http_peek_t *p, bool release_rx);
/** Puts the gates of newly accepted connections in place (before the loop polls). */
void sb__http_guard_flush(sb__http_guard_t *g);

/** Frees ws.c's state of a server (called by http.c when the server is freed). */
void sb__ws_server_free(sb_http_server_t *s);

/*
 * ---- Between the http*.c files: the server, its requests and routes ----
 *
 * http.c        the server's life: the lws context and vhost, the lws callback, stop
 * http_route.c  the route table: patterns, matching, sb_http_route
 * http_read.c   a request's head and body, up to the handler's call
 * http_req.c    a request's life, its accessors and the response API
 * http_write.c  writing responses and streams, the outbound cap, shedding
 */

#define SB__HTTP_WRITE_CHUNK      (256 * 1024) /* body bytes per lws_write */
#define SB__HTTP_MAX_RESP_HEADERS (8 * 1024)   /* bytes of handler-added response headers */
#define SB__HTTP_HEADER_ROOM      2048         /* status line, lws's and our fixed headers */
#define SB__HTTP_SCRATCH_SIZE                                                                      \
    (LWS_PRE + SB__HTTP_WRITE_CHUNK + SB__HTTP_MAX_RESP_HEADERS + SB__HTTP_HEADER_ROOM)

typedef struct sb__http_kv {
    char *name;
    char *value;
} sb__http_kv_t;

typedef struct sb__http_kv_list {
    sb__http_kv_t *items;
    size_t len, cap;
} sb__http_kv_list_t;

enum { SB__HTTP_ROUTE_EXACT, SB__HTTP_ROUTE_PARAM, SB__HTTP_ROUTE_PREFIX };

typedef struct sb__http_route {
    char *method;
    char *pattern;
    int kind;
    char **segs; /* SB__HTTP_ROUTE_PARAM: path segments, "{name}" for placeholders */
    size_t nsegs;
    size_t literals;   /* SB__HTTP_ROUTE_PARAM: literal segments (more = more specific) */
    size_t prefix_len; /* SB__HTTP_ROUTE_PREFIX: pattern without the '*' */
    sb_http_handler_cb cb;
    void *data;
} sb__http_route_t;

typedef enum {
    SB__HTTP_REQ_READING,    /* headers parsed, body arriving; handler not called yet */
    SB__HTTP_REQ_HANDLER,    /* the handler owns it; nothing queued */
    SB__HTTP_REQ_RESPONSE,   /* a whole response queued and being written */
    SB__HTTP_REQ_STREAM,     /* stream started; the handler still owns it */
    SB__HTTP_REQ_STREAM_END, /* stream_end called: flush, then close */
    SB__HTTP_REQ_ABORT,      /* close the connection without (more) answer */
} sb__http_req_state_t;

/* One request: from its head until its answer is written or its connection closes. */
struct sb_http_req {
    sb_http_server_t *srv;
    struct lws *wsi;            /* NULL once detached from its connection */
    sb_http_req_t *prev, *next; /* the server's attached requests */
    sb__http_req_state_t state;
    bool owned; /* the handler holds it */
    bool gone;  /* owned and the client vanished: only respond/stream_end may follow */
    bool in_hook;
    bool head;           /* HEAD: headers only */
    bool close_after;    /* Connection: close, and close once answered */
    bool chunked;        /* chunked request body */
    bool draining;       /* body read and dropped after an early answer */
    uint64_t drain_left; /* of a Content-Length body being drained */
    bool expect_continue;
    bool headers_sent;
    bool stream_counted;
    bool rx_held;   /* waiting with nothing to write: lws does not read (sb__http_req_hold_rx) */
    bool dirty;     /* a stream with bytes to write before the loop polls (http_write.c) */
    bool written;   /* the whole answer is out; waiting for a drain to finish */
    bool too_large; /* the chunked body went over max_body */
    const sb__http_route_t *route;
    char method[8];
    char *path;
    char peer[64];
    sb__http_kv_list_t *headers; /* a pointer: lazy lookups add to it through a const req */
    sb__http_kv_list_t query, params, resp_headers;
    size_t resp_headers_bytes;
    sb_buf_t body;
    int ch_state;
    uint64_t ch_size;
    int ch_digits;
    size_t drained;
    unsigned completions; /* BODY_COMPLETION callbacks after the answer (http.c, on_lws) */
    sb_http_close_cb on_close;
    void *on_close_data;
    int status;
    char *ctype;
    sb_buf_t out;   /* response body, or the stream's queue */
    size_t out_off; /* bytes of out already written */
    /* A stream's bytes against the server's cap: its queue and the last piece handed to
     * lws while lws still holds part of it. */
    sb_http_outq_t oq;
    size_t last_piece;
    bool overflowed; /* a write failed with SB_ETOOBIG: ended as a slow reader */
};

/* The server: its lws context, route table, attached requests and outbound accounting. */
struct sb_http_server {
    uv_loop_t *loop;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    int port;
    size_t max_body, max_stream;
    sb__http_route_t **routes; /* pointers: requests keep theirs while the table grows */
    size_t nroutes;
    sb_http_req_t *live;
    size_t held;           /* requests with rx held */
    uv_timer_t *watch;     /* runs while held > 0 */
    uv_prepare_t *flusher; /* writes what this loop turn queued, before the next poll */
    uv_prepare_t *poll_in; /* in_poll: what lws parses now was just read from a socket, */
    uv_check_t *poll_out;  /* not taken from its buffer of pipelined bytes (http_read.c) */
    bool in_poll;
    bool flush_armed;
    size_t dirty_streams;
    sb_http_outq_t *outqs; /* connections with outbound bytes, for shedding */
    size_t out_bytes, max_out;
    void *ws; /* ws.c's state (sb__http_ws_slot) */
    sb__http_guard_t *guard;
    sb_http_stats_t stats;
    bool stopping;
    bool tls;
    uv_timer_t *reaper;
    unsigned reaper_ticks;
    void (*stop_cb)(void *data);
    void *stop_data;
    unsigned char scratch[SB__HTTP_SCRATCH_SIZE];
};

/* lws keeps one of these per HTTP transaction (user_space). */
typedef struct sb__http_pss {
    sb_http_req_t *req;
} sb__http_pss_t;

/* A list of name/value pairs (headers, query, params): both strings owned by the list. */
static inline void sb__http_kv_add(sb__http_kv_list_t *l, const char *name, size_t nlen,
                                   const char *value, size_t vlen)
{
    if (l->len == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->items = sb_realloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->len].name = sb_strndup(name, nlen);
    l->items[l->len].value = sb_strndup(value, vlen);
    l->len++;
}

/* The value of name (nocase: ASCII case-insensitive), or NULL. Owned by the list. */
static inline const char *sb__http_kv_find(const sb__http_kv_list_t *l, const char *name,
                                           bool nocase)
{
    for (size_t i = 0; name && i < l->len; i++)
        if ((nocase ? strcasecmp : strcmp)(l->items[i].name, name) == 0)
            return l->items[i].value;
    return NULL;
}

static inline void sb__http_kv_dispose(sb__http_kv_list_t *l)
{
    for (size_t i = 0; i < l->len; i++) {
        sb_free(l->items[i].name);
        sb_free(l->items[i].value);
    }
    sb_free(l->items);
    memset(l, 0, sizeof(*l));
}

/* ---- http_route.c ---- */

/** Frees what the route owns (not r itself). */
void sb__http_route_dispose(sb__http_route_t *r);
/** Whether path matches r; params (may be NULL) gets its placeholders' (or `*`'s) values. */
bool sb__http_route_match(const sb__http_route_t *r, const char *path, sb__http_kv_list_t *params);
/**
 * The best route for method + path, or NULL; *known tells whether any route has that
 * path, and allow collects their methods ("GET, POST") for a 405.
 */
const sb__http_route_t *sb__http_route_find(const sb_http_server_t *s, const char *method,
                                            const char *path, bool *known, char *allow,
                                            size_t allow_len);

/* ---- http_req.c ---- */

/** Frees req and all it owns (it must be detached, or its connection gone). */
void sb__http_req_free(sb_http_req_t *req);
/** Stops lws reading req's connection while nothing is to be written (watched for hang-ups). */
void sb__http_req_hold_rx(sb_http_req_t *req);
/** Ends the hold of sb__http_req_hold_rx; reenable: lws reads the connection again. */
void sb__http_req_release_rx(sb_http_req_t *req, bool reenable);
/** Unhooks req from its connection and the server (stats included); req stays allocated. */
void sb__http_req_detach(sb_http_req_t *req);
/** req's connection went away: the on_close hook runs, or req is freed or left an orphan. */
void sb__http_req_conn_gone(sb_http_req_t *req);
/** For respond/stream_end: true if req is gone (then freed unless inside its hook). */
bool sb__http_req_finish_gone(sb_http_req_t *req);
/** Asks for a WRITEABLE callback (releasing the rx hold: lws sends none to a held wsi). */
void sb__http_req_wake(sb_http_req_t *req);

/** {"error":{"code":…,"message":…}} as malloc'd text (free() it); never NULL. */
char *sb__http_error_json(const char *code, const char *message);
/** Queues a whole response on req (body copied) and asks for WRITEABLE. */
void sb__http_queue_response(sb_http_req_t *req, int status, const char *ctype, const void *body,
                             size_t len);
/** An error answered by the server itself (404, 405, 413, 400) while it owns req. */
void sb__http_answer_error(sb_http_req_t *req, int status, const char *code, const char *message);
/** 413 `too_large` naming the server's max_body. */
void sb__http_answer_too_large(sb_http_req_t *req);

/* ---- http_read.c ---- */

/** LWS_CALLBACK_HTTP: a request's head is parsed (uri: its path). lws's verdict. */
int sb__http_on_request(sb_http_server_t *s, struct lws *wsi, sb__http_pss_t *pss, const char *uri);
/** LWS_CALLBACK_HTTP_BODY: len bytes of req's body (req may be NULL). lws's verdict. */
int sb__http_on_body(sb_http_req_t *req, const void *in, size_t len);
/** Hands req to its route's handler (the whole body is in). */
void sb__http_dispatch(sb_http_req_t *req);
/** The body after an early answer: true while more of it should be read and dropped. */
bool sb__http_drain_pending(const sb_http_req_t *req);

/* ---- http_write.c ---- */

/** LWS_CALLBACK_HTTP_WRITEABLE for req: writes what is due. lws's verdict (-1: close). */
int sb__http_on_writeable(sb_http_req_t *req, struct lws *wsi, sb__http_pss_t *pss);

#endif

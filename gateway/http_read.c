/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's input side (gateway/http.h; RFC 9110, RFC 9112): once lws has parsed
 * a request's head (LWS_CALLBACK_HTTP) this file makes its sb_http_req_t (headers, query,
 * peer), finds its route, decides how its body is read (Content-Length, our own chunked
 * decoder: lws 4.1 hands a chunked upload over as raw bytes, Expect: 100-continue), takes
 * the body under max_body, and calls the handler. Bodies after an early answer (404, 413)
 * are read and dropped, within a cap, so the client gets to read the answer.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/http.h"
#include "gateway/http_internal.h"

#define CHUNKED_DRAIN_MAX ((size_t)1 << 20) /* body read and dropped after a 413 */
/* A Content-Length body over max_body is read and dropped up to this much after the 413,
 * so the client, still uploading, gets to read the answer (RFC 9112 §9.6: closing with
 * unread data makes the kernel reset the connection, and the client loses the 413). */
#define LENGTH_DRAIN_MAX ((uint64_t)16 << 20)

/* Custom (not lws-tokenised) request headers captured with every request. */
static const char *const custom_headers[] = {
    "last-event-id",     "idempotency-key",   "x-request-id",        "webhook-id",
    "webhook-timestamp", "webhook-signature", "x-hub-signature-256", "x-signature",
    "x-forwarded-proto", "x-forwarded-host",
};

enum {
    CH_SIZE,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_DONE
};

/* ---- Reading a request ---- */

static void read_headers(sb_http_req_t *req, struct lws *wsi)
{
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const char *name = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        size_t nlen = name ? strlen(name) : 0;
        if (nlen < 2 || name[0] == ':' || name[nlen - 1] != ':')
            continue;
        int len = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (len <= 0)
            continue;
        char *v = sb_malloc((size_t)len + 1);
        if (lws_hdr_copy(wsi, v, len + 1, (enum lws_token_indexes)t) >= 0)
            sb__http_kv_add(req->headers, name, nlen - 1, v, strlen(v));
        sb_free(v);
    }
    for (size_t i = 0; i < SB_ARRAY_LEN(custom_headers); i++) {
        char name[64];
        int nlen = snprintf(name, sizeof(name), "%s:", custom_headers[i]);
        int len = lws_hdr_custom_length(wsi, name, nlen);
        if (len < 0)
            continue;
        char *v = sb_malloc((size_t)len + 1);
        if (lws_hdr_custom_copy(wsi, v, len + 1, name, nlen) >= 0) {
            const char *p = v;
            while (*p == ' ' || *p == '\t')
                p++;
            sb__http_kv_add(req->headers, name, (size_t)nlen - 1, p, strlen(p));
        }
        sb_free(v);
    }
}

static void read_query(sb_http_req_t *req, struct lws *wsi)
{
    for (int i = 0;; i++) {
        int len = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (len <= 0)
            break;
        char *frag = sb_malloc((size_t)len + 1);
        if (lws_hdr_copy_fragment(wsi, frag, len + 1, WSI_TOKEN_HTTP_URI_ARGS, i) >= 0) {
            /* lws has already percent-decoded the fragment and turned '+' into ' ' */
            const char *eq = strchr(frag, '=');
            if (eq)
                sb__http_kv_add(&req->query, frag, (size_t)(eq - frag), eq + 1, strlen(eq + 1));
            else
                sb__http_kv_add(&req->query, frag, strlen(frag), "", 0);
        }
        sb_free(frag);
    }
}

static void read_peer(sb_http_req_t *req, struct lws *wsi)
{
    char buf[64];
    const char *p = lws_get_peer_simple(wsi, buf, sizeof(buf));
    if (!p)
        p = "";
    if (strncmp(p, "::ffff:", 7) == 0 && strchr(p + 7, '.'))
        p += 7;
    snprintf(req->peer, sizeof(req->peer), "%s", p);
}

/*
 * Feeds chunked body bytes (RFC 9112 §7.1) into req->body, or drops them while draining
 * (sets too_large when the body outgrows the cap). 0 more to come, 1 done, SB_EPARSE, or
 * SB_ETOOBIG for an absurd chunk size.
 */
static int chunked_feed(sb_http_req_t *req, const unsigned char *p, size_t n)
{
    while (n > 0 && req->ch_state != CH_DONE) {
        unsigned char c = *p;
        int st = req->ch_state;
        if (st == CH_DATA) {
            size_t take = n < req->ch_size ? n : (size_t)req->ch_size;
            if (!req->draining && sb_buf_append(&req->body, p, take) != 0)
                req->draining = req->too_large = true;
            req->drained += req->draining ? take : 0;
            p += take;
            n -= take;
            req->ch_size -= take;
            if (req->ch_size == 0)
                req->ch_state = CH_DATA_CR;
            continue;
        }
        p++;
        n--;
        if (st == CH_SIZE && isxdigit(c)) {
            int v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
            if (req->ch_size > (UINT64_MAX >> 8))
                return SB_ETOOBIG;
            req->ch_size = req->ch_size * 16 + (uint64_t)v;
            req->ch_digits++;
        } else if (st == CH_SIZE || st == CH_EXT) {
            if (st == CH_SIZE && req->ch_digits == 0)
                return SB_EPARSE;
            if (c == '\r')
                req->ch_state = CH_SIZE_LF;
            else if (c == '\n')
                req->ch_state = req->ch_size ? CH_DATA : CH_TRAILER;
            else if (st == CH_SIZE && c != ';' && c != ' ' && c != '\t')
                return SB_EPARSE;
            else
                req->ch_state = CH_EXT;
        } else if (st == CH_SIZE_LF) {
            if (c != '\n')
                return SB_EPARSE;
            req->ch_state = req->ch_size ? CH_DATA : CH_TRAILER;
        } else if (st == CH_DATA_CR || st == CH_DATA_LF) {
            if (c == '\r' && st == CH_DATA_CR)
                req->ch_state = CH_DATA_LF;
            else if (c != '\n')
                return SB_EPARSE;
            else {
                req->ch_state = CH_SIZE;
                req->ch_digits = 0;
            }
        } else if (st == CH_TRAILER) {
            req->ch_state = c == '\r' ? CH_TRAILER_LF : c == '\n' ? CH_DONE : CH_TRAILER_LINE;
        } else if (st == CH_TRAILER_LINE) {
            if (c == '\n')
                req->ch_state = CH_TRAILER;
        } else if (st == CH_TRAILER_LF) {
            if (c != '\n')
                return SB_EPARSE;
            req->ch_state = CH_DONE;
        }
    }
    return req->ch_state == CH_DONE ? 1 : 0;
}

void sb__http_dispatch(sb_http_req_t *req)
{
    req->state = SB__HTTP_REQ_HANDLER;
    req->owned = true;
    req->route->cb(req, req->route->data);
    if (req->state == SB__HTTP_REQ_HANDLER) /* it answers later */
        sb__http_req_hold_rx(req);
}

/* ---- The request's start: headers parsed ---- */

static const char *method_name(struct lws *wsi)
{
    static const char *const names[] = {"GET",   "POST",   "OPTIONS", "PUT",
                                        "PATCH", "DELETE", "CONNECT", "HEAD"};
    char *uri;
    int len;
    int m = lws_http_get_uri_and_method(wsi, &uri, &len);
    return m >= 0 && m < (int)SB_ARRAY_LEN(names) ? names[m] : NULL;
}

/* Decides how the body arrives. Returns false when req was answered with an error. */
static bool plan_body(sb_http_req_t *req, struct lws *wsi, bool *now)
{
    const char *cl = sb__http_kv_find(req->headers, "content-length", false);
    const char *te = sb__http_kv_find(req->headers, "transfer-encoding", false);
    const char *ex = sb__http_kv_find(req->headers, "expect", false);
    bool body_method = !strcmp(req->method, "POST") || !strcmp(req->method, "PUT") ||
                       !strcmp(req->method, "PATCH");
    *now = false;
    if (te) {
        req->close_after = true;
        if (cl || strcasecmp(te, "chunked") != 0 || !body_method) {
            sb__http_answer_error(req, 400, "bad_request", "unsupported Transfer-Encoding");
            return false;
        }
        req->chunked = true;
    } else if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || cl[0] == '-') {
            req->close_after = true;
            sb__http_answer_error(req, 400, "bad_request", "invalid Content-Length");
            return false;
        }
        if (n > req->srv->max_body) {
            /* Answer at once, read and drop the body (never holding rx: lws 4.1 spins on
             * the buffered rx of a held connection), then close. */
            req->close_after = true;
            req->draining = true;
            req->drain_left = n < LENGTH_DRAIN_MAX ? n : LENGTH_DRAIN_MAX;
            sb__http_answer_too_large(req);
            return false;
        }
        *now = n == 0;
    } else {
        /* lws waits for a body on POST/PUT/PATCH without a length: answer, then close */
        req->close_after = body_method;
        *now = true;
    }
    req->expect_continue = !*now && ex && strcasecmp(ex, "100-continue") == 0;
    if (req->expect_continue)
        lws_callback_on_writable(wsi);
    return true;
}

/* Whether the head announces a body (Transfer-Encoding, or a Content-Length other than 0). */
static bool head_has_body(struct lws *wsi)
{
    char cl[24];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return true;
    int n = lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
    return n != 0 && strcmp(cl, "0") != 0;
}

int sb__http_on_request(sb_http_server_t *s, struct lws *wsi, sb__http_pss_t *pss, const char *uri)
{
    const char *method = method_name(wsi);
    if (s->stopping || !pss || !method)
        return -1;
    sb__http_guard_head_done(s->guard, wsi);
    if (!s->in_poll && head_has_body(wsi)) {
        /* A request pipelined behind another, parsed from lws's buffer outside the poll
         * phase: lws 4.1 hands its body from freed memory (or repeats BODY_COMPLETION
         * forever). Close before any of it is read; RFC 9112 §9.3.2 has the client retry
         * what a closed pipeline left unanswered. Found by tests/fuzz/fuzz_http. */
        char peer[64];
        SB_LOG_WARN("http.pipelined_body", "peer=%s what=\"closed\"",
                    lws_get_peer_simple(wsi, peer, sizeof(peer)) ? peer : "");
        return -1;
    }
    sb_http_req_t *req = SB_NEW(sb_http_req_t);
    req->srv = s;
    req->wsi = wsi;
    req->next = s->live;
    if (s->live)
        s->live->prev = req;
    s->live = req;
    pss->req = req;
    s->stats.requests++;
    snprintf(req->method, sizeof(req->method), "%s", method);
    req->head = strcmp(method, "HEAD") == 0;
    req->path = sb_strdup(uri);
    req->headers = SB_NEW(sb__http_kv_list_t);
    sb_buf_init(&req->body, s->max_body);
    read_headers(req, wsi);
    read_query(req, wsi);
    read_peer(req, wsi);

    bool known, now;
    char allow[128];
    const sb__http_route_t *route =
        sb__http_route_find(s, req->method, req->path, &known, allow, sizeof(allow));
    if (!plan_body(req, wsi, &now))
        return 0;
    if (!route) {
        /* a body may follow: lws drops a Content-Length one, we drain a chunked one */
        req->close_after = req->close_after || req->expect_continue;
        req->draining = req->chunked;
        if (known)
            sb__http_kv_add(&req->resp_headers, "Allow:", 6, allow, strlen(allow));
        sb__http_answer_error(req, known ? 405 : 404, known ? "method_not_allowed" : "not_found",
                              known ? "method not allowed" : "no such path");
        return 0;
    }
    sb__http_route_match(route, req->path, &req->params);
    req->route = route;
    if (now)
        sb__http_dispatch(req);
    return 0;
}

/* ---- Request bodies ---- */

/* The body after an early answer: true while more of it should be read. */
bool sb__http_drain_pending(const sb_http_req_t *req)
{
    if (!req->draining)
        return false;
    if (!req->chunked)
        return req->drain_left > 0;
    return req->ch_state != CH_DONE && req->drained < CHUNKED_DRAIN_MAX;
}

int sb__http_on_body(sb_http_req_t *req, const void *in, size_t len)
{
    if (!req || !len)
        return 0;
    if (req->state != SB__HTTP_REQ_READING) {
        if (!req->draining)
            return 0;
        if (!req->chunked)
            req->drain_left -= len < req->drain_left ? len : req->drain_left;
        else if (chunked_feed(req, in, len) < 0)
            req->draining = false;
        /* drained: close now if the answer is already out */
        return !sb__http_drain_pending(req) && req->written ? -1 : 0;
    }
    if (!req->chunked) {
        if (sb_buf_append(&req->body, in, len) != 0) { /* more than Content-Length said */
            req->close_after = true;
            sb__http_answer_too_large(req);
        }
        return 0;
    }
    int rc = chunked_feed(req, in, len);
    if (rc < 0)
        req->draining = false; /* can't follow the framing any more: close when answered */
    if (req->too_large || rc == SB_ETOOBIG) {
        sb__http_answer_too_large(req);
    } else if (rc == SB_EPARSE) {
        sb__http_answer_error(req, 400, "bad_request", "malformed chunked request body");
    } else if (rc == 1) {
        sb__http_dispatch(req);
    }
    return 0;
}

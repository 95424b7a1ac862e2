/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's output side (gateway/http.h): responses and streams are written only
 * from lws's WRITEABLE callback (sb__http_on_writeable), in pieces of at most
 * SB__HTTP_WRITE_CHUNK through the server's scratch buffer; a finished response ends the
 * transaction (keep-alive goes on, or the connection closes). Server-Sent Events streams
 * (sb_http_stream_*) queue their bytes and are flushed straight to the socket before the
 * loop next polls. Every stream's and WebSocket's queued bytes count against the
 * server's max_outbound; past it the largest queues are shed (their connections closed).
 */
#include <stddef.h>
#include <string.h>

#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/http.h"
#include "gateway/http_internal.h"

#define END_GRACE_S 5 /* a stream_end's flush; a client that takes longer is hung up on */

/* ---- Writing (only from LWS_CALLBACK_HTTP_WRITEABLE) ---- */

static bool no_body_status(int status)
{
    return status < 200 || status == 204 || status == 304;
}

static int write_headers(sb_http_req_t *req, struct lws *wsi, bool stream)
{
    unsigned char *start = req->srv->scratch + LWS_PRE, *p = start;
    unsigned char *end = req->srv->scratch + sizeof(req->srv->scratch) - 1;
    int rc;
    if (!stream && no_body_status(req->status))
        rc = lws_add_http_header_status(wsi, (unsigned)req->status, &p, end) ||
             lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                          (const unsigned char *)req->ctype,
                                          (int)strlen(req->ctype), &p, end);
    else
        rc = lws_add_http_common_headers(
            wsi, (unsigned)req->status, req->ctype,
            stream ? LWS_ILLEGAL_HTTP_CONTENT_LEN : (lws_filepos_t)req->out.len, &p, end);
    for (size_t i = 0; rc == 0 && i < req->resp_headers.len; i++) {
        const sb__http_kv_t *h = &req->resp_headers.items[i];
        rc = lws_add_http_header_by_name(wsi, (const unsigned char *)h->name,
                                         (const unsigned char *)h->value, (int)strlen(h->value), &p,
                                         end);
    }
    if (rc == 0 && req->close_after && !stream)
        rc = lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                          5, &p, end);
    if (rc == 0)
        rc = lws_finalize_write_http_header(wsi, start, &p, end);
    return rc ? -1 : 0;
}

/* Writes the next piece of req->out (LWS_WRITE_HTTP_FINAL on a response's last one). */
static int write_piece(sb_http_req_t *req, struct lws *wsi, bool response)
{
    size_t left = req->out.len - req->out_off;
    size_t n = left < SB__HTTP_WRITE_CHUNK ? left : SB__HTTP_WRITE_CHUNK;
    unsigned char *buf = req->srv->scratch + LWS_PRE;
    memcpy(buf, req->out.data + req->out_off, n);
    enum lws_write_protocol wp = response && n == left ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
    if (lws_write(wsi, buf, n, wp) != (int)n)
        return -1;
    req->out_off += n;
    req->last_piece = n;
    return 0;
}

static int write_continue(sb_http_req_t *req, struct lws *wsi)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char *buf = req->srv->scratch + LWS_PRE;
    req->expect_continue = false;
    memcpy(buf, cont, sizeof(cont) - 1);
    return lws_write(wsi, buf, sizeof(cont) - 1, LWS_WRITE_HTTP_HEADERS) < 0 ? -1 : 0;
}

/* The whole response is with lws: next transaction, or close. */
static int finish_response(sb_http_req_t *req, struct lws *wsi, sb__http_pss_t *pss)
{
    SB_LOG_DEBUG("http.response", "method=%s path=%s status=%d bytes=%zu peer=%s", req->method,
                 req->path, req->status, req->out.len, req->peer);
    if (req->close_after) {
        req->written = true;
        return sb__http_drain_pending(req) ? 0 : -1;
    }
    sb_http_server_t *s = req->srv;
    pss->req = NULL;
    sb__http_req_release_rx(req, true);
    sb__http_req_detach(req);
    sb__http_req_free(req);
    if (lws_http_transaction_completed(wsi))
        return -1;
    sb__http_guard_rearm(s->guard, wsi); /* the next head is checked too (http_guard.c) */
    return 0;
}

/* Recounts a stream's bytes against the cap. */
static void stream_account(sb_http_req_t *req)
{
    size_t n = 0;
    if (req->wsi && (req->state == SB__HTTP_REQ_STREAM || req->state == SB__HTTP_REQ_STREAM_END)) {
        n = req->out.len - req->out_off;
        if (lws_partial_buffered(req->wsi))
            n += req->last_piece;
    }
    sb__http_out_set(req->srv, &req->oq, n);
}

int sb__http_on_writeable(sb_http_req_t *req, struct lws *wsi, sb__http_pss_t *pss)
{
    if (req->state == SB__HTTP_REQ_READING)
        return req->expect_continue ? write_continue(req, wsi) : 0;
    if (req->state == SB__HTTP_REQ_ABORT)
        return -1;
    if (req->state == SB__HTTP_REQ_HANDLER || req->written)
        return 0;
    bool stream = req->state == SB__HTTP_REQ_STREAM || req->state == SB__HTTP_REQ_STREAM_END;
    if (!req->headers_sent) {
        if (write_headers(req, wsi, stream) != 0)
            return -1;
        req->headers_sent = true;
        /* A stream: free lws's header table and make the connection immortal (lws
         * otherwise closes an HTTP transaction after its 5 s timeout). What
         * lws_http_mark_sse does for HTTP/1.1, without its "not h2 substream" error
         * in the log for every stream. */
        if (stream) {
            sb__http_guard_release(req->srv->guard, wsi); /* a stream ends the connection */
            lws_http_headers_detach(wsi);
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
            if (req->state == SB__HTTP_REQ_STREAM_END)
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, END_GRACE_S);
        }
    }
    if (req->head || (!stream && no_body_status(req->status)))
        req->out_off = req->out.len;
    if (req->out_off < req->out.len) {
        if (write_piece(req, wsi, !stream) != 0)
            return -1;
        if (req->out_off < req->out.len) {
            if (stream)
                stream_account(req);
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (!stream)
        return finish_response(req, wsi, pss);
    sb_buf_reset(&req->out);
    req->out_off = 0;
    stream_account(req);
    if (req->state == SB__HTTP_REQ_STREAM_END)
        return -1;
    if (lws_partial_buffered(wsi))
        lws_callback_on_writable(wsi); /* lws flushes first; a held wsi would not */
    else
        sb__http_req_hold_rx(req); /* idle until the next write */
    return 0;
}

/* ---- Outbound bytes and their cap ---- */

/*
 * Every stream and WebSocket with bytes waiting for its reader is in s->outqs with its
 * count; s->out_bytes is the sum. Past max_out, the connections holding the most are
 * closed before the loop polls again (shed(), from on_flush: never inside a handler's
 * write, whose caller still uses the connection).
 */
void sb__http_out_set(sb_http_server_t *s, sb_http_outq_t *q, size_t bytes)
{
    s->out_bytes = s->out_bytes - q->bytes + bytes;
    q->bytes = bytes;
    if (bytes && !q->listed) {
        q->prev = NULL;
        q->next = s->outqs;
        if (s->outqs)
            s->outqs->prev = q;
        s->outqs = q;
        q->listed = true;
    } else if (!bytes && q->listed) {
        if (q->prev)
            q->prev->next = q->next;
        else
            s->outqs = q->next;
        if (q->next)
            q->next->prev = q->prev;
        q->prev = q->next = NULL;
        q->listed = false;
    }
    if (s->out_bytes > s->max_out)
        sb__http_want_flush(s);
}

void sb__http_count_slow(sb_http_server_t *s)
{
    s->stats.slow_closed++;
}

/* Closes the connections holding the most until the total is under the cap. */
static void shed(sb_http_server_t *s)
{
    while (s->out_bytes > s->max_out) {
        sb_http_outq_t *big = NULL;
        for (sb_http_outq_t *q = s->outqs; q; q = q->next)
            if (q->shed && (!big || q->bytes > big->bytes))
                big = q;
        if (!big)
            return; /* only connections already closing: their bytes go with them */
        size_t before = s->out_bytes;
        SB_LOG_WARN("http.shed", "bytes=%zu total=%zu limit=%zu action=disconnect", big->bytes,
                    s->out_bytes, s->max_out);
        s->stats.shed++;
        big->shed(big); /* may free big; counts it as slow_closed */
        if (s->out_bytes >= before)
            return;
    }
}

/* ---- Streams ---- */

/* Hangs up req's connection now (lws runs the kill after servicing the current event). */
static void conn_kill(sb_http_req_t *req)
{
    if (!req->wsi)
        return;
    lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_cancel_service(req->srv->ctx);
}

/* Over the cap: the stream's queue is dropped and its connection closed now; its owner
 * hears of it through the on_close hook, as if the client had gone. */
static void stream_shed(sb_http_outq_t *q)
{
    sb_http_req_t *req = (sb_http_req_t *)((char *)q - offsetof(sb_http_req_t, oq));
    SB_LOG_INFO("http.slow", "peer=%s path=%s action=disconnect", req->peer, req->path);
    sb__http_count_slow(req->srv);
    struct lws *wsi = req->wsi;
    sb__http_pss_t *pss = wsi ? lws_wsi_user(wsi) : NULL;
    if (pss && pss->req == req)
        pss->req = NULL; /* lws's close finds nothing left to do */
    conn_kill(req);
    sb_buf_dispose(&req->out);
    req->out_off = 0;
    sb__http_req_conn_gone(
        req); /* unlisted by sb__http_req_detach; the hook runs, or req is freed */
}

/*
 * Writes the streams that got data during this loop turn straight to their sockets
 * (their headers are out): no POLLOUT round trip and no release of the rx hold while the
 * kernel takes everything. When lws has to keep a remainder, the stream is woken so the
 * WRITEABLE path flushes it and writes the rest.
 */
static void flush_streams(sb_http_server_t *s)
{
    bool killed = false;
    for (sb_http_req_t *req = s->live; req && s->dirty_streams; req = req->next) {
        if (!req->dirty)
            continue;
        req->dirty = false;
        s->dirty_streams--;
        if (req->state != SB__HTTP_REQ_STREAM || !req->wsi)
            continue;
        while (req->out_off < req->out.len && !lws_partial_buffered(req->wsi))
            if (write_piece(req, req->wsi, false) != 0) {
                lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                killed = true;
                break;
            }
        if (req->out_off >= req->out.len) {
            sb_buf_reset(&req->out);
            req->out_off = 0;
        }
        stream_account(req);
        if (!killed && (req->out_off < req->out.len || lws_partial_buffered(req->wsi)))
            sb__http_req_wake(req);
    }
    if (killed) /* lws runs its timers (and so the kill) after servicing an event */
        lws_cancel_service(s->ctx);
}

static void on_flush(uv_prepare_t *p)
{
    sb_http_server_t *s = p->data;
    uv_prepare_stop(p);
    s->flush_armed = false;
    if (s->stopping)
        return;
    if (s->out_bytes > s->max_out)
        shed(s);
    sb__http_guard_flush(s->guard);
    sb__ws_flush(s);
    if (s->dirty_streams)
        flush_streams(s);
}

void sb__http_want_flush(sb_http_server_t *s)
{
    if (s->flush_armed || s->stopping)
        return;
    s->flush_armed = true;
    uv_prepare_start(s->flusher, on_flush);
}

uint64_t sb__http_now_ms(const sb_http_server_t *s)
{
    return uv_now(s->loop);
}

int sb_http_stream_start(sb_http_req_t *req, int status, const char *content_type)
{
    if (req->gone)
        return SB_ECANCELED;
    if (req->state != SB__HTTP_REQ_HANDLER || status < 200 || status > 999)
        return SB_EINVAL;
    if (!sb__http_kv_find(&req->resp_headers, "cache-control:", true))
        sb__http_kv_add(&req->resp_headers, "Cache-Control:", 14, "no-cache", 8);
    sb__http_kv_add(&req->resp_headers, "X-Accel-Buffering:", 18, "no", 2);
    req->status = status;
    req->ctype = sb_strdup(content_type && *content_type ? content_type : "text/event-stream");
    sb_buf_init(&req->out, req->srv->max_stream);
    req->out_off = 0;
    req->state = SB__HTTP_REQ_STREAM;
    req->oq.shed = stream_shed;
    req->stream_counted = true;
    req->srv->stats.open_streams++;
    sb__http_req_wake(req);
    return 0;
}

int sb_http_stream_write(sb_http_req_t *req, const void *data, size_t len)
{
    if (req->gone)
        return SB_ECANCELED;
    if (req->state != SB__HTTP_REQ_STREAM)
        return SB_EINVAL;
    if (len == 0)
        return 0;
    if (req->out.len - req->out_off + len > req->out.max) {
        req->overflowed = true;
        return SB_ETOOBIG;
    }
    if (req->out.len + len > req->out.max) {
        sb_buf_consume(&req->out, req->out_off);
        req->out_off = 0;
    }
    sb_buf_append(&req->out, data, len);
    stream_account(req);
    if (req->headers_sent && req->wsi) {
        if (!req->dirty) {
            req->dirty = true;
            req->srv->dirty_streams++;
            sb__http_want_flush(req->srv);
        }
    } else {
        sb__http_req_wake(req);
    }
    return 0;
}

void sb_http_stream_end(sb_http_req_t *req)
{
    if (sb__http_req_finish_gone(req))
        return;
    if (req->state == SB__HTTP_REQ_STREAM && req->overflowed)
        sb__http_count_slow(req->srv);
    if (req->state == SB__HTTP_REQ_STREAM)
        req->state = SB__HTTP_REQ_STREAM_END;
    else if (req->state == SB__HTTP_REQ_HANDLER)
        req->state = SB__HTTP_REQ_ABORT; /* nothing was sent: just close */
    else
        return;
    req->owned = false;
    req->on_close = NULL;
    if (req->wsi && req->headers_sent) /* else set once they are (sb__http_on_writeable) */
        lws_set_timeout(req->wsi, PENDING_TIMEOUT_USER_OK, END_GRACE_S);
    sb__http_req_wake(req);
}

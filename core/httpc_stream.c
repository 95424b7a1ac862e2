/* SPDX-License-Identifier: MIT */
/*
 * Streaming requests of httpc.h (sb_httpc_stream): an answer whose body never ends, such
 * as a Server-Sent Events feed, read chunk by chunk on the client's multi.
 *
 * libcurl's write callback only stores a 2xx body's bytes; they reach on_data once
 * curl_multi_socket_action has returned (sb__httpc_stream_flush, called by httpc.c after
 * each), because libcurl refuses to be called from inside its own callbacks: an on_data
 * that sends another request, cancels its stream or stops the client is then safe. The
 * bytes stored between two flushes are capped (SB__HTTPC_STREAM_PENDING).
 *
 * Deadlines: until the final answer's head is in, the request's timeout_ms; after it,
 * idle_ms from the last byte received. One timer of the client serves every stream: it
 * fires at the earliest deadline it was armed for, fails the streams whose deadline has
 * passed and is armed again for the next; a byte only moves its stream's deadline later,
 * so it costs no timer call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/httpc.h"
#include "core/httpc_internal.h"

void sb__httpc_stream_free(sb__httpc_stream_t *s)
{
    if (!s)
        return;
    sb_buf_dispose(&s->pending);
    sb_free(s);
}

static bool is_2xx(long code)
{
    return code >= 200 && code < 300;
}

/* ---- Deadlines ---- */

static void on_stall_timer(uv_timer_t *t);

/* Makes the client's timer fire no later than deadline (uv_now time). */
static void arm(sb_httpc_t *h, uint64_t deadline)
{
    if (!deadline || h->stopping)
        return;
    if (uv_is_active((uv_handle_t *)&h->stall_timer) && h->stall_due <= deadline)
        return;
    uint64_t now = uv_now(h->loop);
    h->stall_due = deadline;
    uv_timer_start(&h->stall_timer, on_stall_timer, deadline > now ? deadline - now : 0, 0);
}

/* Ends a stream now with status and the words of error (outside libcurl's callbacks). */
static void fail(sb_httpc_req_t *r, int status, const char *error)
{
    r->fail_status = status;
    snprintf(r->fail_error, sizeof(r->fail_error), "%s", error);
    sb__httpc_complete(r, CURLE_ABORTED_BY_CALLBACK);
}

/* The first stream whose deadline is not after now, or NULL; *next: the earliest other. */
static sb_httpc_req_t *expired(sb_httpc_t *h, uint64_t now, uint64_t *next)
{
    *next = 0;
    for (sb_httpc_req_t *r = h->reqs; r; r = r->next) {
        sb__httpc_stream_t *s = r->stream;
        if (!s || !s->deadline)
            continue;
        if (s->deadline <= now)
            return r;
        if (!*next || s->deadline < *next)
            *next = s->deadline;
    }
    return NULL;
}

static void on_stall_timer(uv_timer_t *t)
{
    sb_httpc_t *h = t->data;
    uint64_t now = uv_now(h->loop), next;
    sb_httpc_req_t *r;
    /* One at a time: a done callback may cancel or start other requests. */
    while (!h->stopping && (r = expired(h, now, &next))) {
        char why[96];
        if (r->stream->head_in)
            snprintf(why, sizeof(why), "stalled: no byte for %u ms", r->stream->idle_ms);
        else
            snprintf(why, sizeof(why), "no answer within %u ms", r->stream->head_ms);
        fail(r, SB_ETIMEDOUT, why);
    }
    if (!h->stopping && next)
        arm(h, next);
}

/* ---- libcurl's callbacks: store, never call out ---- */

static size_t on_stream_header(char *p, size_t size, size_t n, void *data)
{
    sb_httpc_req_t *r = data;
    sb__httpc_stream_t *s = r->stream;
    size_t len = sb__httpc_on_header(p, size, n, data);
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
        const char *sp = memchr(p, ' ', len);
        s->code = sp ? strtol(sp + 1, NULL, 10) : 0;
    } else if ((len == 2 && p[0] == '\r' && p[1] == '\n') || (len == 1 && p[0] == '\n')) {
        if (s->code >= 200 && !s->head_in) { /* the end of the final head (not a 1xx) */
            s->head_in = true;
            s->deadline = s->idle_ms ? uv_now(r->h->loop) + s->idle_ms : 0;
            arm(r->h, s->deadline);
        }
    }
    return len;
}

static size_t on_stream_body(char *p, size_t size, size_t n, void *data)
{
    sb_httpc_req_t *r = data;
    sb__httpc_stream_t *s = r->stream;
    size_t len = size * n;
    if (s->idle_ms)
        s->deadline = uv_now(r->h->loop) + s->idle_ms; /* later than before: no re-arm */
    if (!is_2xx(s->code))
        return sb__httpc_on_body(p, size, n, data); /* kept for done, under max_response */
    if (sb_buf_append(&s->pending, p, len) != 0) {
        r->fail_status = SB_ETOOBIG;
        snprintf(r->fail_error, sizeof(r->fail_error), "stream outran its reader");
        return 0; /* stops the transfer */
    }
    return len;
}

/* ---- Handing out what came ---- */

/* A stream with a head or bytes not yet handed out, or NULL. */
static sb_httpc_req_t *next_pending(sb_httpc_t *h)
{
    for (sb_httpc_req_t *r = h->reqs; r; r = r->next)
        if (r->stream && ((r->stream->head_in && !r->stream->head_told) || r->stream->pending.len))
            return r;
    return NULL;
}

/* Runs on_head (once) and on_data (for what is stored) of one stream; non-zero aborts. */
static int flush_one(sb_httpc_req_t *r)
{
    sb__httpc_stream_t *s = r->stream;
    int rc = 0;
    s->in_cb = true;
    if (!s->head_told) {
        s->head_told = true;
        if (s->cbs.on_head) {
            sb_buf_append(&r->resp_headers, "", 1); /* NUL-terminated, not counted */
            r->resp_headers.len--;
            sb_httpc_response_t res = {.code = s->code, .error = "", .body = "", .reply = ""};
            res.headers =
                r->resp_headers.data && !sb_buf_error(&r->resp_headers) ? r->resp_headers.data : "";
            rc = s->cbs.on_head(&res, r->data);
        }
    }
    if (rc == 0 && !s->dead && s->pending.len) {
        rc = s->cbs.on_data(s->pending.data, s->pending.len, r->data);
        sb_buf_reset(&s->pending);
    }
    s->in_cb = false;
    return rc;
}

void sb__httpc_stream_flush(sb_httpc_t *h)
{
    sb_httpc_req_t *r;
    /* From the list's head each time: a callback may cancel, start or stop anything. */
    while ((r = next_pending(h))) {
        int rc = flush_one(r);
        if (r->stream->dead) { /* cancelled or stopped inside its callback */
            sb__httpc_req_free(r);
        } else if (rc != 0) {
            sb_buf_reset(&r->stream->pending);
            r->fail_status = rc;
            snprintf(r->fail_error, sizeof(r->fail_error), "aborted by the reader (%s)",
                     sb_err_name(rc));
            sb__httpc_complete(r, CURLE_ABORTED_BY_CALLBACK);
        }
    }
}

/* ---- Start ---- */

int sb_httpc_stream(sb_httpc_t *h, const sb_httpc_request_t *req, uint32_t idle_ms,
                    const sb_httpc_stream_cbs_t *cbs, sb_httpc_cb done, void *data,
                    sb_httpc_req_t **out)
{
    if (h->stopping)
        return SB_ECANCELED;
    if (!sb__httpc_url_ok(req->url) || !cbs || !cbs->on_data || !done)
        return SB_EINVAL;
    if (!sb__httpc_curl_ready(h))
        return SB_EINTERNAL;
    sb_httpc_req_t *r = sb__httpc_req_new(
        h, req->max_response ? req->max_response : SB_HTTPC_MAX_RESPONSE, done, data);
    if (!r)
        return SB_EINTERNAL;
    sb__httpc_stream_t *s = SB_NEW(sb__httpc_stream_t);
    r->stream = s;
    h->streams++; /* down in sb__httpc_req_free */
    s->cbs = *cbs;
    s->head_ms = req->timeout_ms ? req->timeout_ms : SB_HTTPC_TIMEOUT_MS;
    s->idle_ms = idle_ms;
    sb_buf_init(&s->pending, SB__HTTPC_STREAM_PENDING);
    sb__httpc_set_options(r, req);
    /* No deadline on the whole exchange nor cap on a 2xx body: ours replace them. */
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, 0L);
    curl_easy_setopt(r->easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_stream_body);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_stream_header);
    int rc = sb__httpc_req_start(r, out);
    if (rc != 0)
        return rc;
    s->deadline = uv_now(h->loop) + s->head_ms;
    arm(h, s->deadline);
    return 0;
}

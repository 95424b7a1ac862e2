/* SPDX-License-Identifier: MIT */
/*
 * A request of the HTTP server (gateway/http.h): its life from its head until its answer
 * is written or its connection closes (held rx while its handler works, detached when the
 * client goes, orphaned for a late respond), its accessors, and the response API
 * (sb_http_add_header, sb_http_respond*) that queues a whole answer for http_write.c.
 *
 * Between the handler's call and sb_http_respond*()/sb_http_stream_end() the handler
 * "owns" the request: a disconnect then runs the on_close hook once and frees the request
 * after it; without a hook the request is kept as an orphan and freed by the handler's
 * late respond/stream_end (which returns SB_ECANCELED). A client that hangs up while its
 * request waits is noticed within WATCH_MS (on_watch).
 */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/http.h"
#include "gateway/http_internal.h"

#define WATCH_MS 500 /* how often held connections are checked for a client that left */

/* ---- Request life ---- */

void sb__http_req_free(sb_http_req_t *req)
{
    sb_free(req->path);
    sb__http_kv_dispose(&req->query);
    sb__http_kv_dispose(req->headers);
    sb_free(req->headers);
    sb__http_kv_dispose(&req->params);
    sb__http_kv_dispose(&req->resp_headers);
    sb_buf_dispose(&req->body);
    sb_buf_dispose(&req->out);
    sb_free(req->ctype);
    sb_free(req);
}

/*
 * Holds a connection whose request waits for its handler (or an idle stream). lws 4.1
 * does not read a connection in its "doing transaction" state, yet keeps POLLIN armed: a
 * client that pipelines or hangs up then makes the loop spin and its close goes unnoticed.
 * So lws stops reading (rx flow control) while nothing is to be written, and a timer polls
 * the held sockets for a hang-up (POLLRDHUP), which closes the connection and so runs the
 * on_close hook. lws gives a flow-controlled h1 connection no WRITEABLE callbacks either,
 * so anything queued for writing releases the hold first (sb__http_req_wake).
 */
static void on_watch(uv_timer_t *t)
{
    sb_http_server_t *s = t->data;
    struct pollfd *fds = sb_calloc(s->held, sizeof(*fds));
    struct lws **wsis = sb_calloc(s->held, sizeof(*wsis));
    nfds_t n = 0;
    bool kill = false;
    for (sb_http_req_t *req = s->live; req && n < s->held; req = req->next) {
        if (!req->rx_held)
            continue;
        fds[n].fd = lws_get_socket_fd(req->wsi);
        fds[n].events = POLLRDHUP;
        wsis[n++] = req->wsi;
    }
    if (n && poll(fds, n, 0) > 0)
        for (nfds_t i = 0; i < n; i++)
            if (fds[i].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
                lws_set_timeout(wsis[i], PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
                kill = true;
            }
    if (kill) /* lws runs its timers (and so the kills) after servicing an event */
        lws_cancel_service(s->ctx);
    sb_free(fds);
    sb_free(wsis);
}

void sb__http_req_hold_rx(sb_http_req_t *req)
{
    sb_http_server_t *s = req->srv;
    if (req->rx_held || !req->wsi)
        return;
    lws_rx_flow_control(req->wsi, 0);
    req->rx_held = true;
    if (s->held++ == 0)
        uv_timer_start(s->watch, on_watch, WATCH_MS, WATCH_MS);
}

void sb__http_req_release_rx(sb_http_req_t *req, bool reenable)
{
    sb_http_server_t *s = req->srv;
    if (!req->rx_held)
        return;
    req->rx_held = false;
    if (reenable && req->wsi)
        lws_rx_flow_control(req->wsi, 1);
    if (--s->held == 0)
        uv_timer_stop(s->watch);
}

/* Unhooks req from its connection and the server (stats included); req stays allocated. */
void sb__http_req_detach(sb_http_req_t *req)
{
    sb_http_server_t *s = req->srv;
    if (!req->wsi)
        return;
    sb__http_out_set(s, &req->oq, 0);
    sb__http_req_release_rx(req, false);
    if (req->dirty) {
        req->dirty = false;
        s->dirty_streams--;
    }
    if (req->prev)
        req->prev->next = req->next;
    else
        s->live = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    req->wsi = NULL;
    if (req->stream_counted) {
        s->stats.open_streams--;
        req->stream_counted = false;
    }
}

/* The connection of req went away (or lws dropped the transaction). */
void sb__http_req_conn_gone(sb_http_req_t *req)
{
    sb__http_req_detach(req);
    if (!req->owned) {
        sb__http_req_free(req);
        return;
    }
    req->gone = true;
    if (req->on_close) {
        req->in_hook = true;
        req->on_close(req, req->on_close_data);
        sb__http_req_free(req);
    }
    /* else: an orphan, freed by the handler's respond / stream_end */
}

/* For respond/stream_end: true if req is gone (then freed unless inside its hook). */
bool sb__http_req_finish_gone(sb_http_req_t *req)
{
    if (!req->gone)
        return false;
    if (!req->in_hook)
        sb__http_req_free(req);
    return true;
}

/* Asks for a WRITEABLE callback (lws sends none to a held connection: release it). */
void sb__http_req_wake(sb_http_req_t *req)
{
    if (!req->wsi)
        return;
    sb__http_req_release_rx(req, true);
    lws_callback_on_writable(req->wsi);
}

/* ---- Answers before (or instead of) the handler ---- */

char *sb__http_error_json(const char *code, const char *message)
{
    json_t *msg = json_string(message ? message : code);
    if (!msg)
        msg = json_string("(message is not valid UTF-8)");
    json_t *j = json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", msg);
    char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return out ? out : sb_strdup("{\"error\":{\"code\":\"internal\",\"message\":\"\"}}");
}

void sb__http_queue_response(sb_http_req_t *req, int status, const char *ctype, const void *body,
                             size_t len)
{
    req->status = status;
    sb_free(req->ctype);
    req->ctype = sb_strdup(ctype && *ctype ? ctype : "application/octet-stream");
    sb_buf_dispose(&req->out);
    sb_buf_init(&req->out, len);
    if (len)
        sb_buf_append(&req->out, body, len);
    req->out_off = 0;
    req->state = SB__HTTP_REQ_RESPONSE;
    sb__http_req_wake(req);
}

/* An error answered by the server itself (404, 405, 413, 400) while it owns req. */
void sb__http_answer_error(sb_http_req_t *req, int status, const char *code, const char *message)
{
    char *body = sb__http_error_json(code, message);
    SB_LOG_DEBUG("http.reject", "method=%s path=%s status=%d code=%s peer=%s", req->method,
                 req->path, status, code, req->peer);
    sb__http_queue_response(req, status, "application/json", body, strlen(body));
    free(body);
}

void sb__http_answer_too_large(sb_http_req_t *req)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "request body is larger than %zu bytes", req->srv->max_body);
    sb__http_answer_error(req, 413, "too_large", msg);
}

/* ---- Request accessors ---- */

const char *sb_http_req_method(const sb_http_req_t *req)
{
    return req->method;
}

const char *sb_http_req_path(const sb_http_req_t *req)
{
    return req->path;
}

const char *sb_http_req_param(const sb_http_req_t *req, const char *name)
{
    return sb__http_kv_find(&req->params, name, false);
}

const char *sb_http_req_query(const sb_http_req_t *req, const char *name)
{
    return sb__http_kv_find(&req->query, name, false);
}

const char *sb_http_req_header(const sb_http_req_t *req, const char *name)
{
    const char *v = sb__http_kv_find(req->headers, name, true);
    size_t n = name ? strlen(name) : 0;
    char key[128];
    if (v || !req->wsi || n == 0 || n + 2 > sizeof(key))
        return v;
    /* not captured up front: lws still has it while its header table is attached */
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[n] = ':';
    key[n + 1] = '\0';
    int len = lws_hdr_custom_length(req->wsi, key, (int)n + 1);
    if (len < 0)
        return NULL;
    char *buf = sb_malloc((size_t)len + 1);
    if (lws_hdr_custom_copy(req->wsi, buf, len + 1, key, (int)n + 1) >= 0) {
        const char *p = buf;
        while (*p == ' ' || *p == '\t')
            p++;
        sb__http_kv_add(req->headers, key, n, p, strlen(p));
        v = req->headers->items[req->headers->len - 1].value;
    }
    sb_free(buf);
    return v;
}

const char *sb_http_req_body(const sb_http_req_t *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return req->body.data ? req->body.data : "";
}

const char *sb_http_req_peer(const sb_http_req_t *req)
{
    return req->peer;
}

sb_http_server_t *sb_http_req_server(const sb_http_req_t *req)
{
    return req->srv;
}

void sb_http_req_on_close(sb_http_req_t *req, sb_http_close_cb cb, void *data)
{
    req->on_close = cb;
    req->on_close_data = data;
}

/* ---- Responses ---- */

static bool header_name_ok(const char *name)
{
    if (!*name)
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    return true;
}

void sb_http_add_header(sb_http_req_t *req, const char *name, const char *value)
{
    if (req->gone || (req->state != SB__HTTP_REQ_HANDLER && req->state != SB__HTTP_REQ_READING))
        return;
    if (!name || !value || !header_name_ok(name) || strpbrk(value, "\r\n") ||
        !strcasecmp(name, "content-length") || !strcasecmp(name, "content-type")) {
        SB_LOG_WARN("http.header", "name=%s err=\"not a header a handler may add\"",
                    name ? name : "(null)");
        return;
    }
    size_t nlen = strlen(name), vlen = strlen(value);
    if (req->resp_headers_bytes + nlen + vlen + 4 > SB__HTTP_MAX_RESP_HEADERS) {
        SB_LOG_WARN("http.header", "name=%s err=\"response headers over %d bytes\"", name,
                    SB__HTTP_MAX_RESP_HEADERS);
        return;
    }
    req->resp_headers_bytes += nlen + vlen + 4;
    char *key = sb_asprintf("%s:", name);
    sb__http_kv_add(&req->resp_headers, key, nlen + 1, value, vlen);
    sb_free(key);
}

int sb_http_respond(sb_http_req_t *req, int status, const char *content_type, const void *body,
                    size_t len)
{
    if (sb__http_req_finish_gone(req))
        return SB_ECANCELED;
    if (req->state != SB__HTTP_REQ_HANDLER || status < 100 || status > 999)
        return SB_EINVAL;
    req->owned = false;
    req->on_close = NULL;
    sb__http_queue_response(req, status, content_type, body, len);
    return 0;
}

int sb_http_respond_json(sb_http_req_t *req, int status, const json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    if (!s)
        return sb_http_respond_error(req, 500, "internal", "response is not serialisable");
    int rc = sb_http_respond(req, status, "application/json", s, strlen(s));
    free(s);
    return rc;
}

int sb_http_respond_error(sb_http_req_t *req, int status, const char *code, const char *message)
{
    char *body = sb__http_error_json(code ? code : "internal", message);
    int rc = sb_http_respond(req, status, "application/json", body, strlen(body));
    free(body);
    return rc;
}

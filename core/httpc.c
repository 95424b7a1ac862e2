/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client of httpc.h: libcurl multi on the libuv loop. libcurl tells us which
 * sockets to watch (CURLMOPT_SOCKETFUNCTION → one uv_poll_t each) and when to call it
 * back (CURLMOPT_TIMERFUNCTION → one uv_timer_t); we hand readiness back with
 * curl_multi_socket_action and collect finished transfers with curl_multi_info_read.
 *
 * libcurl (and its TLS library) is initialised at the first request, so a daemon that
 * sends none carries none of their pages; core/curl_dl.c loads the shared library then.
 * Each request owns its easy handle, header list, a copy of the body and two capped
 * buffers (answer body, answer headers).
 *
 * Mail (RFC 5321 SMTP) goes through the same multi: libcurl hands the server's reply
 * lines to the header callback, so they land in the answer-headers buffer and the last one
 * is kept apart as the reply a caller reports; the message is uploaded from the body copy.
 */
#include "core/httpc.h"
#include "core/httpc_internal.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdbool.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

typedef sb__httpc_sock_t sock_t;

#define REPLY_MAX SB__HTTPC_REPLY_MAX

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
static int on_curl_timer(CURLM *multi, long ms, void *userp);

int sb_httpc_new(uv_loop_t *loop, const char *user_agent, sb_httpc_t **out)
{
    sb_httpc_t *h = SB_NEW(sb_httpc_t);
    h->loop = loop;
    h->user_agent = sb_strdup(user_agent ? user_agent : "Switchboard");
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_init(loop, &h->stall_timer);
    h->stall_timer.data = h;
    h->handles_open = 2;
    *out = h;
    return 0;
}

void sb_httpc_limit_host(sb_httpc_t *h, unsigned n)
{
    h->host_limit = n;
    if (h->multi)
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)n);
}

unsigned sb_httpc_inflight(const sb_httpc_t *h)
{
    return h ? h->inflight : 0;
}

/* libcurl set up at the first request (see the file comment). */
bool sb__httpc_curl_ready(sb_httpc_t *h)
{
    if (h->multi)
        return true;
    if (!h->curl_inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return false;
        h->curl_inited = true;
    }
    h->multi = curl_multi_init();
    if (!h->multi)
        return false;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    if (h->host_limit)
        curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->host_limit);
    return true;
}

/* ---- Requests ---- */

size_t sb__httpc_on_body(char *p, size_t size, size_t n, void *data)
{
    sb_httpc_req_t *r = data;
    size_t len = size * n;
    if (r->resp.len + len > r->max_response) {
        r->too_big = true;
        sb_buf_append(&r->resp, p, r->max_response - r->resp.len);
        return 0; /* stops the transfer: CURLE_WRITE_ERROR */
    }
    sb_buf_append(&r->resp, p, len);
    return len;
}

size_t sb__httpc_on_header(char *p, size_t size, size_t n, void *data)
{
    sb_httpc_req_t *r = data;
    size_t len = size * n;
    if (r->mail) { /* one SMTP reply line */
        sb_buf_append(&r->resp_headers, p, len);
        if (len >= 4 && strncmp(p, "221 ", 4) == 0)
            return len; /* the answer to QUIT: says nothing about the mail */
        size_t k = len;
        while (k > 0 && (p[k - 1] == '\r' || p[k - 1] == '\n'))
            k--;
        k = k < REPLY_MAX - 1 ? k : REPLY_MAX - 1;
        memcpy(r->reply, p, k);
        r->reply[k] = '\0';
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)r->reply[i] < 0x20 || r->reply[i] == 0x7f)
                r->reply[i] = ' '; /* a server's text, shown to staff and logged */
        /* The error a failed send reports, whatever follows it. */
        if ((p[0] == '4' || p[0] == '5') && (k == 3 || (k > 3 && r->reply[3] == ' ')))
            memcpy(r->err_reply, r->reply, k + 1);
        return len;
    }
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0)
        sb_buf_reset(&r->resp_headers); /* a new answer (after 100 Continue, say) */
    else
        sb_buf_append(&r->resp_headers, p, len); /* past the cap: later lines dropped */
    return len;
}

void sb__httpc_unlink(sb_httpc_req_t *r)
{
    sb_httpc_t *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    h->inflight--;
}

void sb__httpc_detach(sb_httpc_req_t *r)
{
    if (r->attached && r->h->multi)
        curl_multi_remove_handle(r->h->multi, r->easy);
    r->attached = false;
}

void sb__httpc_req_free(sb_httpc_req_t *r)
{
    sb__httpc_detach(r);
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    sb_free(r->body);
    sb_buf_dispose(&r->resp);
    sb_buf_dispose(&r->resp_headers);
    if (r->stream) {
        r->h->streams--;
        sb__httpc_stream_free(r->stream);
    }
    sb_free(r);
}

bool sb__httpc_url_ok(const char *url)
{
    return url && (strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0) &&
           !strpbrk(url, " \t\r\n");
}

void sb__httpc_set_options(sb_httpc_req_t *r, const sb_httpc_request_t *req)
{
    CURL *c = r->easy;
    curl_easy_setopt(c, CURLOPT_URL, req->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, r->h->user_agent);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     (long)(req->timeout_ms ? req->timeout_ms : SB_HTTPC_TIMEOUT_MS));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)r->max_response);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sb__httpc_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sb__httpc_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
    const char *method = req->method ? req->method : req->body ? "POST" : "GET";
    if (req->body) {
        r->body = sb_malloc(req->body_len + 1);
        memcpy(r->body, req->body, req->body_len);
        r->body[req->body_len] = '\0';
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    }
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    else if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else if (strcmp(method, "POST") != 0 || !req->body)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "POST") == 0 && !req->body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    r->headers = curl_slist_append(r->headers, "Expect:"); /* no 100-continue round trip */
    for (size_t i = 0; req->headers && req->headers[i]; i++)
        r->headers = curl_slist_append(r->headers, req->headers[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
}

/* A request with its easy handle and buffers, not yet attached (NULL: no easy handle). */
sb_httpc_req_t *sb__httpc_req_new(sb_httpc_t *h, size_t max_response, sb_httpc_cb cb, void *data)
{
    sb_httpc_req_t *r = SB_NEW(sb_httpc_req_t);
    r->h = h;
    r->cb = cb;
    r->data = data;
    r->max_response = max_response;
    sb_buf_init(&r->resp, r->max_response);
    sb_buf_init(&r->resp_headers, SB_HTTPC_MAX_HEADERS);
    r->easy = curl_easy_init();
    if (!r->easy) {
        sb__httpc_req_free(r);
        return NULL;
    }
    return r;
}

/* Hands a set-up request to the multi (frees it on failure). */
int sb__httpc_req_start(sb_httpc_req_t *r, sb_httpc_req_t **out)
{
    sb_httpc_t *h = r->h;
    CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
    if (mc != CURLM_OK) {
        SB_LOG_ERROR("httpc.send", "err=\"%s\"", curl_multi_strerror(mc));
        sb__httpc_req_free(r);
        return SB_EINTERNAL;
    }
    r->attached = true;
    r->next = h->reqs;
    if (h->reqs)
        h->reqs->prev = r;
    h->reqs = r;
    h->inflight++;
    if (out)
        *out = r;
    return 0;
}

int sb_httpc_send(sb_httpc_t *h, const sb_httpc_request_t *req, sb_httpc_cb cb, void *data,
                  sb_httpc_req_t **out)
{
    if (h->stopping)
        return SB_ECANCELED;
    if (!sb__httpc_url_ok(req->url))
        return SB_EINVAL;
    if (!sb__httpc_curl_ready(h))
        return SB_EINTERNAL;
    sb_httpc_req_t *r = sb__httpc_req_new(
        h, req->max_response ? req->max_response : SB_HTTPC_MAX_RESPONSE, cb, data);
    if (!r)
        return SB_EINTERNAL;
    sb__httpc_set_options(r, req);
    return sb__httpc_req_start(r, out);
}

/* ---- Mail ---- */

/* A field we put on an SMTP command line: no CR, LF, angle brackets or other controls. */
static bool mail_field_ok(const char *s, bool empty_ok)
{
    if (!s || (!*s && !empty_ok) || strlen(s) > 320)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x21 || *p == 0x7f || *p == '<' || *p == '>')
            return false;
    return true;
}

/* The host of "smtp[s]://host[:port]" into out; false when the URL is not of that shape. */
static bool mail_url_host(const char *url, bool *tls, char *out, size_t cap)
{
    const char *p;
    if (strncasecmp(url, "smtps://", 8) == 0)
        p = url + 8, *tls = true;
    else if (strncasecmp(url, "smtp://", 7) == 0)
        p = url + 7, *tls = false;
    else
        return false;
    if (strpbrk(p, "@?#%") || !*p)
        return false;
    for (const char *q = p; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f)
            return false;
    const char *end = p + strcspn(p, "/");
    if (*end && end[1])
        return false; /* a path: the EHLO name is ours to set */
    const char *host_end = end;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (!rb)
            return false;
        p++, host_end = rb;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon)
            host_end = colon;
    }
    size_t n = (size_t)(host_end - p);
    if (n == 0 || n >= cap)
        return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* An EHLO name: a host name or an address literal (it goes into the URL's path). */
static bool helo_ok(const char *s)
{
    if (!*s || strlen(s) > 255)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(".-_:[]", *s))
            return false;
    return true;
}

/* localhost, 127.0.0.0/8 and ::1: the only hosts that may go without STARTTLS. */
static bool host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcasecmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

static size_t on_mail_read(char *buf, size_t size, size_t n, void *data)
{
    sb_httpc_req_t *r = data;
    size_t len = size * n, left = r->body_len - r->sent;
    len = len < left ? len : left;
    memcpy(buf, r->body + r->sent, len);
    r->sent += len;
    return len;
}

static void set_mail_options(sb_httpc_req_t *r, const sb_httpc_mail_t *m, bool tls, bool loopback)
{
    CURL *c = r->easy;
    const char *at = strrchr(m->mail_from, '@');
    const char *helo = m->helo ? m->helo : at && at[1] && helo_ok(at + 1) ? at + 1 : "localhost";
    char url[1024];
    size_t ul = strlen(m->url);
    snprintf(url, sizeof(url), "%.*s/%s", (int)(m->url[ul - 1] == '/' ? ul - 1 : ul), m->url, helo);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (m->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, m->ca_file);
    if (!tls) /* STARTTLS: required, except on loopback (see httpc.h) */
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)(loopback ? CURLUSESSL_TRY : CURLUSESSL_ALL));
    if (m->username) {
        curl_easy_setopt(c, CURLOPT_USERNAME, m->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, m->password);
    }
    char from[340];
    snprintf(from, sizeof(from), "<%s>", m->mail_from);
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    for (size_t i = 0; m->rcpt[i]; i++) {
        char to[340];
        snprintf(to, sizeof(to), "<%s>", m->rcpt[i]);
        r->headers = curl_slist_append(r->headers, to);
    }
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, r->headers);
    r->body = sb_malloc(m->message_len);
    memcpy(r->body, m->message, m->message_len);
    r->body_len = m->message_len;
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, on_mail_read);
    curl_easy_setopt(c, CURLOPT_READDATA, r);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)m->message_len);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    uint32_t ms = m->timeout_ms ? m->timeout_ms : SB_HTTPC_TIMEOUT_MS;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ms);
    /* Each reply's wait, also the QUIT's when a failed connection closes: that one only
     * knows this limit (120 s by default) and blocks while it waits (docs/libraries.md). */
    curl_easy_setopt(c, CURLOPT_SERVER_RESPONSE_TIMEOUT, (long)((ms + 999) / 1000));
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sb__httpc_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
}

int sb_httpc_mail_check(const sb_httpc_mail_t *m)
{
    bool tls;
    char host[256];
    if (!m->url || !mail_url_host(m->url, &tls, host, sizeof(host)) ||
        !mail_field_ok(m->mail_from, true) || (m->helo && !helo_ok(m->helo)) || !m->rcpt ||
        !m->rcpt[0] || !m->message || m->message_len == 0 || !m->username != !m->password)
        return SB_EINVAL;
    for (size_t i = 0; m->rcpt[i]; i++)
        if (!mail_field_ok(m->rcpt[i], false))
            return SB_EINVAL;
    return 0;
}

int sb_httpc_send_mail(sb_httpc_t *h, const sb_httpc_mail_t *m, sb_httpc_cb cb, void *data,
                       sb_httpc_req_t **out)
{
    if (h->stopping)
        return SB_ECANCELED;
    bool tls;
    char host[256];
    if (sb_httpc_mail_check(m) != 0 || !mail_url_host(m->url, &tls, host, sizeof(host)))
        return SB_EINVAL;
    if (!sb__httpc_curl_ready(h))
        return SB_EINTERNAL;
    sb_httpc_req_t *r = sb__httpc_req_new(h, 1, cb, data);
    if (!r)
        return SB_EINTERNAL;
    r->mail = true;
    set_mail_options(r, m, tls, host_is_loopback(host));
    return sb__httpc_req_start(r, out);
}

void sb_httpc_cancel(sb_httpc_req_t *r)
{
    if (!r || (r->stream && r->stream->dead))
        return;
    sb__httpc_unlink(r);
    if (r->stream && r->stream->in_cb) { /* freed by httpc_stream.c once the callback returns */
        r->stream->dead = true;
        return;
    }
    sb__httpc_req_free(r);
}

const char *sb_httpc_header(const sb_httpc_response_t *res, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = res->headers; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *end = p + len;
            const char *cr = memchr(v, '\r', (size_t)(end - v));
            end = cr ? cr : end; /* a value ends at the first CR */
            while (v < end && (*v == ' ' || *v == '\t'))
                v++;
            while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            if ((size_t)(end - v) >= cap)
                return NULL; /* does not fit: as good as absent */
            memcpy(out, v, (size_t)(end - v));
            out[end - v] = '\0';
            return out;
        }
        p = eol ? eol + 1 : p + len;
    }
    return NULL;
}

static sb_httpc_cause_t cause_of(const sb_httpc_req_t *r, CURLcode res, long code)
{
    switch (res) {
    case CURLE_OK:
        return SB_HTTPC_CAUSE_NONE;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_USE_SSL_FAILED: /* STARTTLS required and not offered */
        return SB_HTTPC_CAUSE_TLS;
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
        return r->mail ? SB_HTTPC_CAUSE_LOGIN : SB_HTTPC_CAUSE_NETWORK;
    default:
        return r->mail && code >= 400 && res != CURLE_OPERATION_TIMEDOUT ? SB_HTTPC_CAUSE_REPLY
                                                                         : SB_HTTPC_CAUSE_NETWORK;
    }
}

/* Runs the callback of a finished request and frees it. */
void sb__httpc_complete(sb_httpc_req_t *r, CURLcode res)
{
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    sb_httpc_response_t out = {.code = code, .error = "", .reply = r->mail ? r->reply : ""};
    if (r->mail && res != CURLE_OK && r->err_reply[0])
        out.reply = r->err_reply;
    out.cause = cause_of(r, res, code);
    if (r->fail_status) {
        out.status = r->fail_status;
        out.error = r->fail_error;
        out.cause = r->fail_status == SB_ETIMEDOUT ? SB_HTTPC_CAUSE_NETWORK : SB_HTTPC_CAUSE_NONE;
    } else if (r->too_big || res == CURLE_FILESIZE_EXCEEDED) {
        out.status = SB_ETOOBIG;
        out.error = "response too large";
        out.cause = SB_HTTPC_CAUSE_NONE;
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        out.status = SB_ETIMEDOUT;
        out.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
    } else if (res != CURLE_OK) {
        out.status = SB_EIO;
        out.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
    }
    out.body = r->resp.data && !sb_buf_error(&r->resp) ? r->resp.data : "";
    out.body_len = r->resp.data && !sb_buf_error(&r->resp) ? r->resp.len : 0;
    sb_buf_append(&r->resp_headers, "", 1);
    out.headers =
        r->resp_headers.data && !sb_buf_error(&r->resp_headers) ? r->resp_headers.data : "";
    sb_buf_append(&r->resp, "", 1); /* NUL-terminates body (not counted in body_len) */
    if (sb_buf_error(&r->resp))
        out.body = "", out.body_len = 0;
    sb__httpc_unlink(r);
    sb__httpc_detach(r);
    r->cb(&out, r->data);
    sb__httpc_req_free(r);
}

/* ---- libcurl multi on the loop ---- */

static void check_done(sb_httpc_t *h)
{
    CURLMsg *m;
    int left;
    while (h->multi && (m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        sb_httpc_req_t *r = NULL;
        CURLcode res = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        sb__httpc_complete(r, res);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *k = p->data;
    sb_httpc_t *h = k->h;
    int flags = status < 0 ? CURL_CSELECT_ERR
                           : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                                 ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, k->fd, flags, &running);
    if (h->streams)
        sb__httpc_stream_flush(h);
    check_done(h);
}

static void maybe_free(sb_httpc_t *h)
{
    if (!h->stopping || h->handles_open)
        return;
    void (*cb)(void *) = h->stop_cb;
    void *data = h->stop_data;
    bool inited = h->curl_inited;
    sb_free(h->user_agent);
    sb_free(h);
    if (inited)
        curl_global_cleanup();
    if (cb)
        cb(data);
}

static void on_sock_closed(uv_handle_t *hd)
{
    sock_t *k = hd->data;
    sb_httpc_t *h = k->h;
    sb_free(k);
    h->handles_open--;
    maybe_free(h);
}

static void sock_close(sock_t *k)
{
    sb_httpc_t *h = k->h;
    if (k->prev)
        k->prev->next = k->next;
    else
        h->socks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    sb_httpc_t *h = userp;
    sock_t *k = socketp;
    if (h->multi_closing)
        return 0; /* sb_httpc_stop closed every poll already */
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            curl_multi_assign(h->multi, s, NULL);
            sock_close(k);
        }
        return 0;
    }
    if (!k) {
        k = SB_NEW(sock_t);
        k->fd = s;
        k->h = h;
        if (uv_poll_init_socket(h->loop, &k->poll, s) != 0) {
            sb_free(k);
            return -1;
        }
        k->poll.data = k;
        h->handles_open++;
        k->next = h->socks;
        if (h->socks)
            h->socks->prev = k;
        h->socks = k;
        curl_multi_assign(h->multi, s, k);
    }
    int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&k->poll, ev, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    sb_httpc_t *h = t->data;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    if (h->streams)
        sb__httpc_stream_flush(h);
    check_done(h);
}

static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    sb_httpc_t *h = userp;
    if (h->stopping)
        return 0;
    if (ms < 0)
        uv_timer_stop(&h->timer);
    else
        uv_timer_start(&h->timer, on_curl_timeout, (uint64_t)ms, 0);
    return 0;
}

/* ---- Stop ---- */

static void on_timer_closed(uv_handle_t *hd)
{
    sb_httpc_t *h = hd->data;
    h->handles_open--;
    maybe_free(h);
}

void sb_httpc_stop(sb_httpc_t *h, void (*cb)(void *data), void *data)
{
    if (!h) {
        if (cb)
            cb(data);
        return;
    }
    if (h->stopping)
        return;
    h->stopping = true;
    h->stop_cb = cb;
    h->stop_data = data;
    /* Connections in use end now: libcurl says QUIT to an SMTP server as it drops one and
     * waits for the answer without returning, up to a whole reply timeout. */
    for (sock_t *k = h->socks; k; k = k->next)
        shutdown(k->fd, SHUT_RDWR);
    while (h->reqs) {
        sb_httpc_req_t *r = h->reqs;
        sb__httpc_unlink(r);
        sb_httpc_response_t out = {
            .status = SB_ECANCELED, .error = "canceled", .body = "", .headers = "", .reply = ""};
        r->cb(&out, r->data);
        if (r->stream && r->stream->in_cb) { /* stopped from its own on_data: freed after it */
            sb__httpc_detach(r);
            r->stream->dead = true;
            continue;
        }
        sb__httpc_req_free(r);
    }
    /* Every transfer is gone: close the polls libcurl still holds, then the multi. */
    h->multi_closing = true;
    while (h->socks)
        sock_close(h->socks);
    if (h->multi) {
        CURLM *m = h->multi;
        h->multi = NULL;
        curl_multi_cleanup(m);
    }
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
    uv_close((uv_handle_t *)&h->stall_timer, on_timer_closed);
}

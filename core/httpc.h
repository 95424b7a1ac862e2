/* SPDX-License-Identifier: MIT */
/*
 * An HTTP client on the libuv loop: libcurl's multi interface driven by libuv polls and
 * one timer (curl_multi_socket_action), so no request ever blocks the loop. libcurl is
 * loaded at the first request (core/curl_dl.c), not when the client is created: a daemon
 * that never sends a request never maps it.
 *
 * Every request has a deadline (connect, send and answer together) and a cap on the size
 * of the answer's body; TLS peers are verified (certificate chain and host name); only
 * http and https URLs are fetched and redirects are not followed.
 *
 * The same client sends mail (sb_httpc_send_mail): libcurl's SMTP (RFC 5321) with
 * STARTTLS (RFC 3207) or implicit TLS (RFC 8314) and AUTH (RFC 4954), on the same multi,
 * whose connection cache keeps a connection to a server open for the next message.
 *
 * Callback guarantee: if sb_httpc_send() returns an error the callback never runs;
 * otherwise it runs exactly once, on the loop, unless the request is cancelled with
 * sb_httpc_cancel() first (then it never runs). sb_httpc_stop() completes every request
 * still in flight with SB_ECANCELED.
 */
#ifndef SB_CORE_HTTPC_H
#define SB_CORE_HTTPC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct sb_httpc sb_httpc_t;
typedef struct sb_httpc_req sb_httpc_req_t;

/** Defaults for a request that leaves timeout_ms / max_response at 0. */
#define SB_HTTPC_TIMEOUT_MS   30000
#define SB_HTTPC_MAX_RESPONSE (1024 * 1024)
/** Response headers kept per answer (bytes of "Name: value\r\n" lines). */
#define SB_HTTPC_MAX_HEADERS (16 * 1024)

/** One request. Every pointer is borrowed and copied by sb_httpc_send. */
typedef struct sb_httpc_request {
    const char *method;         /* "GET", "POST", "PUT", "DELETE"...; NULL = GET (POST if a body) */
    const char *url;            /* http:// or https:// */
    const char *const *headers; /* "Name: value" lines, NULL-terminated; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    uint32_t timeout_ms; /* deadline of the whole exchange; 0 = SB_HTTPC_TIMEOUT_MS */
    size_t max_response; /* body cap; 0 = SB_HTTPC_MAX_RESPONSE */
} sb_httpc_request_t;

/** Why a request failed, for callers that act differently on each kind of failure. */
typedef enum sb_httpc_cause {
    SB_HTTPC_CAUSE_NONE,    /* no failure (status 0), or canceled, or too big */
    SB_HTTPC_CAUSE_NETWORK, /* refused, reset, DNS, deadline passed */
    SB_HTTPC_CAUSE_TLS,     /* TLS handshake or peer verification failed (or STARTTLS missing
                               where it is required) */
    SB_HTTPC_CAUSE_LOGIN,   /* mail: the server refused our user name and password */
    SB_HTTPC_CAUSE_REPLY,   /* mail: the server answered a command with an error (code) */
} sb_httpc_cause_t;

/**
 * The outcome of a request, valid only during the callback.
 *
 * HTTP: status is 0 when an answer came (whatever its HTTP code), else SB_ETIMEDOUT
 * (deadline passed), SB_ETOOBIG (the body outgrew max_response: the transfer was stopped,
 * code and headers are those of the answer, body is the part received up to the cap),
 * SB_ECANCELED (sb_httpc_stop) or SB_EIO (no answer: refused, DNS, TLS verification...).
 * error says why in words ("" when status is 0).
 *
 * Mail: status is 0 only when the server took the message (a 2xx after the data); an
 * error reply to any command is SB_EIO with cause SB_HTTPC_CAUSE_REPLY (or _LOGIN) and
 * code the reply's code. code is the last reply's code (0 when none came), reply that
 * reply's last line ("250 2.0.0 Ok: queued as 4Xz"; after a failure the last error reply,
 * never the 221 to the QUIT libcurl sends then; "" when none) and headers every reply
 * line of the exchange, CRLF-ended; body is "".
 */
typedef struct sb_httpc_response {
    int status;
    const char *error;
    long code;        /* HTTP status code (mail: SMTP reply code), 0 when no answer came */
    const char *body; /* NUL-terminated; "" when empty */
    size_t body_len;
    const char *headers;    /* raw "Name: value\r\n" lines of the final answer ("" when none) */
    sb_httpc_cause_t cause; /* why status is not 0 */
    const char *reply;      /* mail: the server's last reply line; HTTP: "" */
} sb_httpc_response_t;

typedef void (*sb_httpc_cb)(const sb_httpc_response_t *res, void *data);

/**
 * Creates a client on loop (borrowed; must outlive the client). user_agent is copied.
 * Returns 0 and *out. Nothing is loaded yet.
 */
int sb_httpc_new(uv_loop_t *loop, const char *user_agent, sb_httpc_t **out);

/**
 * Starts a request. Returns 0 (cb will run once, later, never inside this call; *out, if
 * out is not NULL, is the handle for sb_httpc_cancel, valid until cb runs), SB_EINVAL for
 * a bad request (no URL, not http/https), SB_EINTERNAL when libcurl can't be loaded or
 * set up, or SB_ECANCELED after sb_httpc_stop.
 */
int sb_httpc_send(sb_httpc_t *h, const sb_httpc_request_t *req, sb_httpc_cb cb, void *data,
                  sb_httpc_req_t **out);

/** What a streaming request reports while it runs (sb_httpc_stream). */
typedef struct sb_httpc_stream_cbs {
    /**
     * The answer's head arrived: res->code and res->headers are set, res->body is "".
     * Return 0 to go on; anything else aborts the request and done gets that status. May
     * be NULL.
     */
    int (*on_head)(const sb_httpc_response_t *res, void *data);
    /**
     * A chunk of a 2xx answer's body, as it arrives (any size, split anywhere). Return 0
     * to go on; anything else aborts the request and done gets that status. Required.
     */
    int (*on_data)(const char *bytes, size_t n, void *data);
} sb_httpc_stream_cbs_t;

/**
 * A streaming request (an SSE feed such as Mastodon's /api/v1/streaming/user): as
 * sb_httpc_send, except that a 2xx answer's body is not kept but handed to cbs->on_data
 * chunk by chunk, and there is no deadline on the whole exchange: req->timeout_ms (0 =
 * SB_HTTPC_TIMEOUT_MS) bounds only the wait for the answer's head, and after it a stream
 * that brings no byte for idle_ms (0 = no limit) is ended with SB_ETIMEDOUT: a stall.
 * A non-2xx answer's body is kept (up to req->max_response) and given to done as
 * sb_httpc_send would. done runs exactly once: status 0 when the server ended the
 * stream, SB_ETIMEDOUT (head deadline or stall; error says which), SB_EIO, SB_ECANCELED
 * (sb_httpc_stop), or the value a callback returned to abort. sb_httpc_cancel stops it
 * with no callback. Returns as sb_httpc_send (SB_EINVAL also for cbs or on_data NULL).
 */
int sb_httpc_stream(sb_httpc_t *h, const sb_httpc_request_t *req, uint32_t idle_ms,
                    const sb_httpc_stream_cbs_t *cbs, sb_httpc_cb done, void *data,
                    sb_httpc_req_t **out);

/** One mail to send. Every pointer is borrowed and copied by sb_httpc_send_mail. */
typedef struct sb_httpc_mail {
    /* "smtps://host[:port]" (TLS from the first byte, port 465 by default) or
     * "smtp://host[:port]" (port 25 by default; STARTTLS required, except that a loopback
     * host — localhost, 127.0.0.0/8, [::1] — goes on in plain text when the server does not
     * offer it). No path, no user name in the URL. */
    const char *url;
    const char *username, *password; /* both or neither; NULL: no AUTH */
    const char *ca_file;             /* PEM bundle to trust; NULL: the system's store */
    const char *helo;        /* EHLO name; NULL: the domain of mail_from, else "localhost" */
    const char *mail_from;   /* envelope sender, a bare address; "" sends MAIL FROM:<> */
    const char *const *rcpt; /* bare addresses, NULL-terminated, at least one */
    const char *message;     /* the RFC 5322 message with CRLF line ends (not stuffed) */
    size_t message_len;
    uint32_t timeout_ms; /* deadline of the whole exchange; 0 = SB_HTTPC_TIMEOUT_MS */
} sb_httpc_mail_t;

/**
 * Sends one mail: connect (or reuse an open connection to the same server with the same
 * credentials), EHLO, STARTTLS, AUTH, MAIL FROM, RCPT TO for each recipient (any refused
 * recipient fails the whole send: nothing is sent to the others), DATA. TLS is always
 * verified (chain and host name). Returns and calls back as sb_httpc_send; SB_EINVAL for
 * a bad URL or a missing or malformed field (a CR, LF, '<' or '>' in an address).
 *
 * libcurl 7.88 waits for the server's answer to the final "." without returning to the
 * loop (docs/libraries.md): the loop stalls for that long, at most timeout_ms.
 */
int sb_httpc_send_mail(sb_httpc_t *h, const sb_httpc_mail_t *m, sb_httpc_cb cb, void *data,
                       sb_httpc_req_t **out);

/** The checks of sb_httpc_send_mail on their own: 0 or SB_EINVAL. */
int sb_httpc_mail_check(const sb_httpc_mail_t *m);

/** Aborts a request in flight; its callback never runs. Accepts NULL. */
void sb_httpc_cancel(sb_httpc_req_t *r);

/**
 * At most n connections to one server at a time (0, the default: no limit); requests over
 * the limit wait for a connection to come free, within their own deadline.
 */
void sb_httpc_limit_host(sb_httpc_t *h, unsigned n);

/** Requests in flight. */
unsigned sb_httpc_inflight(const sb_httpc_t *h);

/**
 * The value of a response header (name case-insensitive; the first line of that name)
 * copied into out (cap bytes, NUL-terminated, surrounding blanks trimmed, ending at a CR).
 * Returns out, or NULL when absent or longer than cap - 1 bytes.
 */
const char *sb_httpc_header(const sb_httpc_response_t *res, const char *name, char *out,
                            size_t cap);

/**
 * Stops: requests in flight complete with SB_ECANCELED (their callbacks run before this
 * returns), handles close; then cb(data) runs once on the loop and the client is freed.
 * No request may be sent after this call. cb may be NULL. Accepts NULL (then cb still
 * runs, at once).
 */
void sb_httpc_stop(sb_httpc_t *h, void (*cb)(void *data), void *data);

#endif

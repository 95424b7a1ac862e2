/* SPDX-License-Identifier: MIT */
/*
 * Shared between core/httpc.c (the client, libcurl's multi on the loop, plain requests,
 * mail, stop) and core/httpc_stream.c (streaming requests: chunks handed out as they
 * arrive, the head deadline and the stall timer). Not a public header.
 */
#ifndef SB_CORE_HTTPC_INTERNAL_H
#define SB_CORE_HTTPC_INTERNAL_H

#include <curl/curl.h>
#include <stdbool.h>

#include "core/buf.h"
#include "core/httpc.h"

typedef struct sb__httpc_sock sb__httpc_sock_t;

struct sb__httpc_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    sb_httpc_t *h;
    sb__httpc_sock_t *prev, *next;
};

/* The longest SMTP reply line kept as the reply (RFC 5321 §4.5.3.1.5 says 512 with CRLF). */
#define SB__HTTPC_REPLY_MAX 512
/* Body bytes of a stream received and not yet handed to on_data (see httpc_stream.c). */
#define SB__HTTPC_STREAM_PENDING (4 * 1024 * 1024)

/* What a streaming request adds to a request (httpc_stream.c). */
typedef struct sb__httpc_stream {
    sb_httpc_stream_cbs_t cbs;
    uint32_t head_ms, idle_ms;
    uint64_t deadline; /* uv_now() at which it fails; 0 = none */
    long code;         /* the status of the answer being read (0 before its status line) */
    bool head_in;      /* the final answer's head is in */
    bool head_told;    /* ... and on_head ran */
    bool in_cb;        /* on_head or on_data is running: cancel and stop defer the free */
    bool dead;         /* cancelled or stopped inside a callback: free once it returns */
    sb_buf_t pending;  /* 2xx body bytes waiting for on_data */
} sb__httpc_stream_t;

struct sb_httpc_req {
    sb_httpc_t *h;
    sb_httpc_req_t *prev, *next;
    CURL *easy;
    struct curl_slist *headers; /* HTTP: request headers; mail: the recipients */
    char *body;                 /* the request body or the mail (owned copy) */
    size_t body_len, sent;      /* mail: bytes of body handed to libcurl so far */
    sb_buf_t resp, resp_headers;
    size_t max_response;
    bool too_big, attached; /* attached: easy is in the multi */
    bool mail;
    sb_httpc_cb cb;
    void *data;
    int fail_status;            /* not 0: the status done reports, whatever libcurl says */
    char fail_error[96];        /* ... and its words */
    sb__httpc_stream_t *stream; /* NULL for a plain request or a mail */
    char errbuf[CURL_ERROR_SIZE];
    char reply[SB__HTTPC_REPLY_MAX];     /* mail: the last reply line, without its CRLF */
    char err_reply[SB__HTTPC_REPLY_MAX]; /* mail: the last final line of an error reply */
};

struct sb_httpc {
    uv_loop_t *loop;
    CURLM *multi; /* NULL until the first request */
    bool curl_inited, stopping, multi_closing;
    uv_timer_t timer;       /* libcurl's (CURLMOPT_TIMERFUNCTION) */
    uv_timer_t stall_timer; /* streams' head deadlines and stalls (httpc_stream.c) */
    uint64_t stall_due;     /* when stall_timer fires (uv_now); valid while it is active */
    unsigned handles_open, inflight, streams;
    unsigned host_limit; /* CURLMOPT_MAX_HOST_CONNECTIONS; 0 = none */
    sb__httpc_sock_t *socks;
    sb_httpc_req_t *reqs;
    char *user_agent;
    void (*stop_cb)(void *);
    void *stop_data;
};

/* ---- httpc.c ---- */

/** libcurl and the multi, set up at the first request. false when libcurl can't load. */
bool sb__httpc_curl_ready(sb_httpc_t *h);
/** An http or https URL with no blanks. */
bool sb__httpc_url_ok(const char *url);
/** A request with its easy handle and buffers, not yet attached (NULL: no easy handle). */
sb_httpc_req_t *sb__httpc_req_new(sb_httpc_t *h, size_t max_response, sb_httpc_cb cb, void *data);
/** The options of an HTTP request (URL, method, headers, body, deadline, callbacks). */
void sb__httpc_set_options(sb_httpc_req_t *r, const sb_httpc_request_t *req);
/** Hands a set-up request to the multi (frees it on failure): 0 or SB_EINTERNAL. */
int sb__httpc_req_start(sb_httpc_req_t *r, sb_httpc_req_t **out);
/** Takes the request off the client's list (inflight goes down). */
void sb__httpc_unlink(sb_httpc_req_t *r);
/** Takes the easy handle out of the multi (never from inside a libcurl callback). */
void sb__httpc_detach(sb_httpc_req_t *r);
/** Frees a request that is off the list. */
void sb__httpc_req_free(sb_httpc_req_t *r);
/** libcurl's write and header callbacks of a plain request (body kept under the cap). */
size_t sb__httpc_on_body(char *p, size_t size, size_t n, void *data);
size_t sb__httpc_on_header(char *p, size_t size, size_t n, void *data);
/**
 * Runs the callback of a finished request (res: libcurl's result; r->fail_status, when
 * set, wins over it) and frees it. Not from inside a libcurl callback.
 */
void sb__httpc_complete(sb_httpc_req_t *r, CURLcode res);

/* ---- httpc_stream.c ---- */

/** Hands every stream's received head and chunks to its callbacks (after libcurl ran). */
void sb__httpc_stream_flush(sb_httpc_t *h);
/** Frees what a stream adds to a request. Accepts NULL. */
void sb__httpc_stream_free(sb__httpc_stream_t *s);

#endif

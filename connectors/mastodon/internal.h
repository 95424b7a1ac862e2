/* SPDX-License-Identifier: MIT */
/*
 * The Mastodon connector's state, shared by its files only:
 *   mastodon.c  lifecycle: the account rows, start and stop, verify_credentials and the
 *               instance's limits, pausing an account on a 401 and resuming it, metrics
 *   api.c       requests to an account's server (Bearer), Link headers, times
 *   stream.c    the streaming API (SSE): connect, heartbeats, stall, reconnect
 *   catchup.c   GET /api/v1/notifications after every (re)connect, cursor kept in Redis
 *   ingest.c    a mention into the store: contact, thread, message, links, cursor
 *   deliver.c   outbox → POST /api/v1/statuses, a long answer as a thread
 *   html.c      status HTML → plain text (html.h)
 */
#ifndef SB_MASTODON_INTERNAL_H
#define SB_MASTODON_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "connectors/connector.h"
#include "core/httpc.h"
#include "core/sse.h"

#define SB__MD_CHANNEL   "mastodon"
#define SB__MD_ID_MAX    64   /* a status or notification id (Mastodon's are decimal) */
#define SB__MD_QUEUE_MAX 1000 /* notifications waiting to be ingested, per account */

typedef struct md md_t;
typedef struct md_acct md_acct_t;

/* A notification waiting to be ingested (one at a time, in order). */
typedef struct md_item {
    struct md_item *next;
    json_t *notif;     /* the Notification (owned) */
    bool from_catchup; /* part of a contiguous catch-up page: may move the cursor */
    unsigned cgen;     /* the catch-up it belongs to */
} md_item_t;

typedef enum { MD_STARTING, MD_UP, MD_PAUSED, MD_STOPPED } md_state_t;

/* One configured account: `mastodon <name> <base-url> <token-file>`. */
struct md_acct {
    md_t *md;
    char *name, *base, *token_file; /* base without a trailing '/' */
    char *host;                     /* base's host: the domain of local accts */
    char *auth;                     /* "Authorization: Bearer <token>" */
    char *stream_base;              /* the streaming server (instance urls.streaming), or base */
    char my_id[SB__MD_ID_MAX], my_acct[128];
    size_t max_chars, url_chars; /* from /api/v2/instance (500 / 23 when absent) */
    md_state_t state;
    char reason[256];  /* why it is paused */
    unsigned gen;      /* bumped when the connection's requests go stale (drop, pause, stop) */
    unsigned inflight; /* requests and store calls with callbacks to come */
    uv_timer_t *timer; /* reconnect / verify retry */
    unsigned backoff_ms;
    /* The stream. */
    sb_httpc_req_t *stream;
    void *stream_ctx; /* its callbacks' state, freed when it is cancelled */
    sb_sse_t *sse;
    bool stream_live; /* its head came (2xx) and it has not ended */
    /* The catch-up and the cursor. */
    bool cursor_loaded, catching_up;
    bool caught_up; /* a catch-up ended on this connection: stream events may move the cursor */
    size_t catchup_left;        /* items of the current page not yet ingested */
    unsigned cgen;              /* bumped by every catch-up */
    bool page_full;             /* the current page was full: more may follow */
    char *next_url;             /* the next (newer) page, from its Link rel="prev" */
    char cursor[SB__MD_ID_MAX]; /* the newest id ingested with nothing missing before it */
    unsigned catchup_pages;     /* pages of the running catch-up */
    /* Notifications to ingest, one at a time. */
    md_item_t *head, *tail;
    size_t queued;
    bool busy;
    uv_timer_t *retry; /* the store was unavailable: try the head again */
    /* Metrics. */
    uint64_t reconnects, stalls, pages, ingested, duplicates, pauses, posted, post_failed;
};

struct md {
    sb_connector_env_t env;
    md_acct_t *accts;
    size_t naccts;
    sb_httpc_t *httpc;
    uint32_t stall_ms, pause_retry_ms;
    unsigned max_parts;
    unsigned pending; /* deliveries in flight */
    bool stopping, httpc_stopped;
    unsigned timers; /* uv timers not yet closed */
    sb_connector_stopped_cb stopped;
    void *stopped_data;
};

/* mastodon.c */
/** A 401 from the server: the account pauses (alert, WARN), retried every pause_retry. */
void sb__md_pause(md_acct_t *a, const char *why);
/** The account's connection dropped or failed: a new one after the backoff. */
void sb__md_reconnect_later(md_acct_t *a);
/** Frees t when the connector may finish stopping. */
void sb__md_maybe_done(md_t *md);
/** An account by name, or NULL. */
md_acct_t *sb__md_acct(md_t *md, const char *name);

/* api.c */
/**
 * A request's end: res is the answer (a 401 has already paused the account); stale is
 * true when the account dropped what was in flight meanwhile (a pause, a new connection,
 * stopping): the caller then only frees arg.
 */
typedef void (*md_call_cb)(md_acct_t *a, const sb_httpc_response_t *res, bool stale, void *arg);
/**
 * A request with the account's Bearer token (url absolute; body NULL for a GET, else JSON
 * and content_type set; extra: more header lines, NULL-terminated, may be NULL). With
 * conn, it belongs to the current connection (a new one makes it stale). 0 (cb runs
 * once) or an SB_E* code (it never runs).
 */
int sb__md_call(md_acct_t *a, bool conn, const char *method, const char *url,
                const char *const *extra, const char *body, md_call_cb cb, void *arg);
/** The URL of rel (e.g. "next", "prev") in a Link header value, sb_malloc'd, or NULL. */
char *sb__md_link_rel(const char *link, const char *rel);
/** An ISO 8601 time ("2026-11-30T05:00:00.000Z", offsets too) in ms; -1 if malformed. */
int64_t sb__md_iso_ms(const char *s);
/** Compares two decimal ids (shorter is smaller); NULL or "" is the smallest. */
int sb__md_id_cmp(const char *x, const char *y);
/** "<reason>" of an error answer: "HTTP <code>: <the body's error, or the body>". */
void sb__md_reason(const sb_httpc_response_t *res, char *out, size_t cap);

/* stream.c */
/** Connects the streaming API (catch-up once its head came). */
void sb__md_stream_start(md_acct_t *a);
/** Ends the stream without a callback. */
void sb__md_stream_stop(md_acct_t *a);

/* catchup.c */
/** Reads the cursor (once), then the notifications after it, page by page. */
void sb__md_catchup(md_acct_t *a);

/* ingest.c */
/**
 * Queues a notification (takes a reference) to be ingested in order. False when a
 * stream's notification finds the queue full (the stream is then dropped: the catch-up
 * of the next connection brings what was lost).
 */
bool sb__md_enqueue(md_acct_t *a, json_t *notif, bool from_catchup);
/** Called by ingest when an item is done: moves on to the next. */
void sb__md_ingest_next(md_acct_t *a);
/** Drops the queue (pause, stop). */
void sb__md_queue_clear(md_acct_t *a);
/** A catch-up item of catch-up cgen was ingested (or skipped): the cursor moves to id. */
void sb__md_catchup_item_done(md_acct_t *a, unsigned cgen, const char *id);
/** Moves the cursor forward to id (never back) and saves it. */
void sb__md_cursor_advance(md_acct_t *a, const char *id);

/* deliver.c */
int sb__md_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data);

#endif

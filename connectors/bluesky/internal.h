/* SPDX-License-Identifier: MIT */
/*
 * Shared state of the Bluesky connector (docs/bluesky.md). One `bluesky` row is one
 * account: an XRPC session on its PDS (xrpc.c), a poller of its notifications (poll.c)
 * and the sender of the answers to conversations that came in through it (deliver.c).
 * bluesky.c reads the configuration, starts and stops; ids.c holds the pure helpers
 * (record keys, at-uris) that the fuzz target exercises.
 */
#ifndef SB_CONNECTORS_BLUESKY_INTERNAL_H
#define SB_CONNECTORS_BLUESKY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "connectors/connector.h"
#include "core/httpc.h"

/* A paused account tries a new session this often (wall clock, core/sys.h). */
#define BS_PAUSE_RETRY_MS 60000
/* Bluesky's cap on a post, in graphemes. */
#define BS_POST_LIMIT 300
/* The most parts bluesky_max_parts may allow (each part's record key is derived from it). */
#define BS_MAX_PARTS 20

typedef struct bs bs_t;
typedef struct bs_acct bs_acct_t;
typedef struct bs_call bs_call_t;

/** An XRPC answer, valid during the callback only. */
typedef struct bs_res {
    int status;          /* 0: an HTTP answer came; else SB_E* (no answer, canceled, auth) */
    long code;           /* HTTP status */
    json_t *body;        /* the parsed body (borrowed), NULL when not JSON */
    const char *error;   /* XRPC error name ("ExpiredToken", "RecordNotFound"), "" */
    const char *message; /* XRPC error message or transport error text, "" */
    const sb_httpc_response_t *http; /* the raw answer (headers), NULL without one */
} bs_res_t;

typedef void (*bs_xrpc_cb)(bs_acct_t *a, const bs_res_t *res, void *data);

struct bs_acct {
    bs_t *bs;
    char *name, *service, *handle, *password_file;
    char cursor_name[160]; /* "bluesky:<name>" */
    /* the session */
    char *access, *refresh, *did, *our_handle;
    bool renewing;        /* a refresh or createSession is in flight */
    bs_call_t *waiting;   /* calls waiting for it (a list through call->next) */
    unsigned session_gen; /* bumped on every new access token */
    /* paused: createSession refused our password */
    bool paused;
    char pause_reason[256];
    int64_t retry_at_ms;
    /* polling */
    bool cursor_loaded, polling;
    char *cursor_at, *cursor_uri; /* the newest processed notification */
    int64_t poll_after_ms;        /* a 429 on a poll: not before this (wall clock) */
    int64_t poll_limited_ms;      /* when that 429 came: a clock set back before it ends the wait */
    /* counters */
    uint64_t polls, ingested, refreshes, sessions, sent, send_failed, poll_errors;
};

struct bs {
    sb_connector_env_t env;
    sb_httpc_t *httpc;
    uv_timer_t tick;
    bs_acct_t *accts;
    size_t n;
    uint64_t poll_ms;
    unsigned max_parts;
    unsigned pending; /* store calls and deliveries in flight */
    bool stopping, httpc_stopped, timer_closed;
    sb_connector_stopped_cb done;
    void *done_data;
};

/* ---- xrpc.c: requests with the account's session ---- */

/**
 * Calls nsid on the account's PDS: method "GET" (query: "a=b&c=d", already encoded, or
 * NULL) or "POST" (body: borrowed JSON, or NULL). Makes a session first when there is
 * none, renews an expired one (refreshSession, else createSession) and sends once more.
 * cb runs exactly once, on the loop, never inside this call; a paused account, or one
 * whose session cannot be made because the password is refused, answers status SB_EAUTH.
 */
void sb__bs_xrpc(bs_acct_t *a, const char *method, const char *nsid, const char *query,
                 const json_t *body, bs_xrpc_cb cb, void *data);

/** A paused account whose retry time came: re-read the password and try a session. */
void sb__bs_try_resume(bs_acct_t *a);

/** Frees the session strings and calls still waiting (at stop, no callback). */
void sb__bs_session_dispose(bs_acct_t *a);

/* ---- poll.c ---- */

/** One round of listNotifications for the account (no-op while a round runs). */
void sb__bs_poll(bs_acct_t *a);

/* ---- deliver.c ---- */

int sb__bs_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data);

/* ---- bluesky.c ---- */

/** The account called name, or NULL. */
bs_acct_t *sb__bs_acct(bs_t *bs, const char *name);
/** Frees bs once it stopped and nothing is in flight (pending 0). */
void sb__bs_maybe_done(bs_t *bs);

/* ---- ids.c: record keys and at-uris ---- */

/** Length of a TID (a record key of app.bsky.feed.post). */
#define BS_TID_LEN 13

/**
 * The record key of part `part` (0-based, < BS_MAX_PARTS) of our message msg_id written at
 * ts_ms: a valid TID (13 characters of base32-sortable), the same for the same inputs.
 */
void sb__bs_tid(const char *msg_id, int64_t ts_ms, unsigned part, char out[BS_TID_LEN + 1]);

/** True when s is a syntactically valid TID. */
bool sb__bs_tid_valid(const char *s);

/**
 * Splits an at-uri "at://<authority>/<collection>/<rkey>" into its parts (pointers into
 * uri with lengths). true, or false when it is not shaped so (no query or fragment).
 */
typedef struct bs_aturi {
    const char *authority, *collection, *rkey;
    size_t authority_len, collection_len, rkey_len;
} bs_aturi_t;
bool sb__bs_aturi_parse(const char *uri, bs_aturi_t *out);

/**
 * The bsky.app web address of a post: https://bsky.app/profile/<handle>/post/<rkey>
 * (sb_free it), or NULL when uri is not a post's at-uri or the handle is unsafe.
 */
char *sb__bs_web_url(const char *handle, const char *uri);

/** The current time as the ISO 8601 UTC text of a record's createdAt (ms precision). */
void sb__bs_iso_now(char out[32]);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * One IMAP mailbox read by one worker thread (core/worker.h) with libetpan: connect (TLS or
 * STARTTLS, RFC 3501 §6.2.1), verify the server's certificate chain and host name before
 * LOGIN (tls_verify.h; libetpan does not), EXAMINE the folder (read-only), fetch every
 * message above the last UID handed over with BODY.PEEK[] (never sets \Seen), then wait
 * with IDLE (RFC 2177; polling when the server lacks it) and fetch again on news. Errors
 * and disconnects reconnect with exponential backoff and backfill from the last UID, so
 * nothing that arrived while the session was away is missed. Mail on the server is never
 * changed: no STORE, no EXPUNGE, no MOVE, no flags.
 *
 * Messages reach the owner on the loop, in UID order, a bounded number at a time: the
 * worker fetches more only as the owner says it stored the earlier ones (sb_imap_done).
 * docs/email.md ("IMAP in") describes the behaviour in full.
 *
 * Thread rules: sb_imap_start, sb_imap_done and sb_imap_stop belong to the loop thread, and
 * on_message / on_status run there; cbs.parse runs on the worker thread, which blocks
 * SIGPIPE for itself (libetpan writes with plain send).
 */
#ifndef SB_EMAIL_IMAP_H
#define SB_EMAIL_IMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** Messages larger than this are not fetched: on_message gets raw NULL and their size. */
#define SB_IMAP_MAX_MESSAGE (25u * 1024 * 1024)

typedef struct sb_imap sb_imap_t;

/** What on_status reports. */
typedef enum sb_imap_status {
    SB_IMAP_CONNECTED = 0, /* logged in, folder open; reason "uidvalidity=N last_uid=M" */
    SB_IMAP_IDLING,        /* caught up, waiting in IDLE */
    SB_IMAP_POLLING,       /* caught up, the server has no IDLE: checking every poll_s */
    SB_IMAP_UIDVALIDITY,   /* the folder's UIDVALIDITY is not the resume point's: every
                              message is fetched again (reason says old and new) */
    SB_IMAP_ERROR,         /* reason says what failed; the session retries after a backoff */
} sb_imap_status_t;

/** The status's name: "connected", "idling", "polling", "uidvalidity", "error". */
const char *sb_imap_status_name(int status);

/** An IMAP URL, parsed (sb_imap_url_parse). Strings are owned (sb_imap_url_dispose). */
typedef struct sb_imap_url {
    bool tls;      /* imaps:// (TLS from the first byte); false: imap:// (STARTTLS) */
    char *user;    /* %-decoded; "" when none */
    char *pass;    /* %-decoded; NULL when the URL has none */
    char *host;    /* without brackets for an IPv6 literal */
    uint16_t port; /* 993 / 143 when not given */
    char *folder;  /* %-decoded path without the leading '/'; "INBOX" when empty */
} sb_imap_url_t;

/**
 * Parses imaps://user[:pass]@host[:port][/FOLDER] or imap://… . Returns 0 and fills out
 * (dispose it), or SB_ECONFIG with a reason in why (why_len bytes, may be 0) and out left
 * empty. Never logs the password.
 */
int sb_imap_url_parse(const char *url, sb_imap_url_t *out, char *why, size_t why_len);

/** Frees the strings of u (accepts a zeroed one). */
void sb_imap_url_dispose(sb_imap_url_t *u);

typedef struct sb_imap_opts {
    const char *name;        /* the mailbox's name, for logs; required */
    const char *url;         /* imaps://user[:pass]@host[:port][/FOLDER] or imap://… (STARTTLS) */
    const char *password;    /* overrides the URL's (mailbox_password_file); NULL: the URL's */
    const char *tls_ca;      /* PEM file of trusted CAs (mailbox_tls_ca); NULL: the system's */
    uint32_t uidvalidity;    /* where to resume (the owner's stored state); 0 = nothing yet */
    uint32_t last_uid;       /* every UID up to this one was stored; ignored if uidvalidity 0 */
    unsigned idle_restart_s; /* leave and re-enter IDLE after this long (0: 28 min; < 29) */
    unsigned poll_s;         /* check interval without IDLE (0: 60) */
    unsigned timeout_s;      /* per IMAP command and connect (0: 60) */
    unsigned backoff_min_ms; /* first reconnect delay (0: 1 s); doubles per failure */
    unsigned backoff_max_ms; /* longest reconnect delay (0: 5 min) */
    unsigned max_inflight;   /* messages handed over and not yet done, at most (0: 32) */
    size_t max_inflight_bytes; /* their bytes at most (0: 64 MiB; one message always fits) */
} sb_imap_opts_t;

typedef struct sb_imap_cbs {
    /**
     * Worker thread, optional: turns a raw message into the owner's parsed form, so MIME
     * parsing stays off the loop. raw is valid only during the call; the result is handed to
     * on_message and freed with free_parsed. May return NULL.
     */
    void *(*parse)(const char *raw, size_t len, void *data);
    /** Loop: frees what parse returned (never called with NULL). Required with parse. */
    void (*free_parsed)(void *parsed, void *data);
    /**
     * Loop, required: one message, in UID order within a uidvalidity. raw is NULL when the
     * message is larger than SB_IMAP_MAX_MESSAGE (len is then its size, nothing was
     * fetched). The owner stores it and then calls sb_imap_done(m, uid, err); raw and parsed
     * stay valid (owned by the session) until that call.
     */
    void (*on_message)(sb_imap_t *m, uint32_t uidvalidity, uint32_t uid, const char *raw,
                       size_t len, void *parsed, void *data);
    /** Loop, optional: a change of state (sb_imap_status_t) with a reason (may be ""). */
    void (*on_status)(sb_imap_t *m, int status, const char *reason, void *data);
} sb_imap_cbs_t;

/**
 * Starts the session's thread; the first connect is immediate. opts is copied (strings
 * too), cbs copied, data passed to every callback; loop is borrowed and must outlive the
 * session. Returns 0 and *out, SB_ECONFIG (bad URL, or no name; logged), or SB_EINTERNAL
 * (no thread). On error no callback ever runs.
 */
int sb_imap_start(uv_loop_t *loop, const sb_imap_opts_t *opts, const sb_imap_cbs_t *cbs, void *data,
                  sb_imap_t **out);

/**
 * Loop: the owner is done with message uid (from on_message): err 0 = stored, so the
 * session frees raw and parsed and may fetch further; err < 0 = it could not be stored, so
 * the session fetches it (and what followed) again after a backoff. An unknown uid is
 * ignored.
 */
void sb_imap_done(sb_imap_t *m, uint32_t uid, int err);

/**
 * Loop, never blocks: stops the session at once, whatever the thread is doing (a blocking
 * IDLE, a fetch, a backoff). No callback runs after this call; messages handed over and
 * not yet done are freed before cb, so the owner must not use them afterwards, and
 * sb_imap_done is accepted until cb. cb(cb_data) runs once on the loop when the thread has
 * ended, then m is freed. cb may be NULL. Accepts NULL (cb still runs).
 */
void sb_imap_stop(sb_imap_t *m, void (*cb)(void *), void *cb_data);

#endif

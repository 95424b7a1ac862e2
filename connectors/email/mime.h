/* SPDX-License-Identifier: MIT */
/*
 * One raw RFC 5322 message (bytes, as IMAP hands it over) to a clean, normalised message:
 * the headers threading and loop detection need, the customer's text in UTF-8 without the
 * quoted history and signature (kept apart in `quoted`), and the attachments listed.
 * Pure and synchronous: no I/O, no globals; the email connector's worker threads call it.
 *
 * Bounds: input ≤ SB_MIME_MAX_INPUT bytes (else SB_ETOOBIG); text and quoted ≤ SB_MAX_TEXT
 * bytes each, cut at a character boundary (`truncated` says so); subject ≤ SB_MAX_SUBJECT,
 * address ≤ SB_MAX_EMAIL, display name ≤ SB_MAX_NAME; at most SB_MIME_MAX_DEPTH levels of
 * nested parts (deeper is SB_EDEPTH) and SB_MIME_MAX_PARTS attachments listed.
 */
#ifndef SB_EMAIL_MIME_H
#define SB_EMAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "core/msg.h"

#define SB_MIME_MAX_INPUT (25 * 1024 * 1024)
#define SB_MIME_MAX_DEPTH 8
#define SB_MIME_MAX_PARTS 64
#define SB_MIME_MAX_MSGID 998 /* a header line's limit (RFC 5322 §2.1.1) */
#define SB_MIME_MAX_REFS  256 /* References kept: the first and the last 255 */

#define SB_MIME_MAX_DIAGNOSTIC  300 /* bounce_diagnostic, bytes */
#define SB_MIME_FALLBACK_ID_LEN 65  /* sb_mime_fallback_id's output, NUL included */

/* Flags for loop detection (what marks mail sent by a machine); see sb_mime_is_automatic. */
enum {
    SB_MIME_AUTO_SUBMITTED = 1 << 0,         /* Auto-Submitted: anything but "no" */
    SB_MIME_PRECEDENCE = 1 << 1,             /* Precedence: bulk, junk or list */
    SB_MIME_AUTOREPLY = 1 << 2,              /* X-Autoreply or X-Autorespond present */
    SB_MIME_LIST = 1 << 3,                   /* List-Id present */
    SB_MIME_DSN = 1 << 4,                    /* Content-Type multipart/report (a bounce) */
    SB_MIME_MAILER_DAEMON = 1 << 5,          /* From mailer-daemon@ or postmaster@, or
                                                Return-Path: <> (the null sender) */
    SB_MIME_AUTO_RESPONSE_SUPPRESS = 1 << 6, /* X-Auto-Response-Suppress (Exchange) present */
};

typedef struct sb_mime_attachment {
    char *name; /* UTF-8 (RFC 2231 / RFC 2047 decoded), "" when none was given */
    char *type; /* lower case, "image/png" */
    char *data; /* the decoded bytes (owned) */
    size_t size;
} sb_mime_attachment_t;

typedef struct sb_mime_msg {
    char *from_addr;   /* "ana@example.org", "" when absent */
    char *from_name;   /* display name, UTF-8, "" when absent */
    char *subject;     /* UTF-8 */
    char *message_id;  /* without the angle brackets, "" when absent */
    char *in_reply_to; /* the first id, without brackets, "" when absent */
    char **references; /* ids without brackets, oldest first */
    size_t n_references;
    char *date; /* "2026-11-29T22:45:00+01:00", "" when absent */
    unsigned flags;
    char *text;   /* the new text, UTF-8 */
    char *quoted; /* quoted history and signature, UTF-8, "" when none */
    bool truncated;
    sb_mime_attachment_t *attachments;
    size_t n_attachments;
    /*
     * A delivery status notification's facts (RFC 3464), all "" unless the message has a
     * message/delivery-status part. Of several recipients, the first one that failed is
     * reported (else the first one). bounce_message_id is the Message-ID of the returned
     * original (its message/rfc822 or text/rfc822-headers part), else the DSN's own
     * In-Reply-To, else its last References entry; without brackets.
     */
    char *bounce_message_id;
    char *bounce_recipient;  /* Final-Recipient (else Original-Recipient), the address only */
    char *bounce_status;     /* "5.1.1" */
    char *bounce_action;     /* lower case: "failed", "delayed", "delivered", "relayed"… */
    char *bounce_diagnostic; /* Diagnostic-Code without its type, unfolded, at most
                                SB_MIME_MAX_DIAGNOSTIC bytes */
} sb_mime_msg_t;

/**
 * Parses raw[0..n) into *out (zeroed first; free with sb_mime_free, also after an error).
 * Returns 0, SB_EINVAL (NULL argument), SB_ETOOBIG (input over SB_MIME_MAX_INPUT),
 * SB_EDEPTH (parts nested too deeply), SB_EPARSE (not a message) or SB_ENOMEM.
 */
int sb_mime_parse(const char *raw, size_t n, sb_mime_msg_t *out);
void sb_mime_free(sb_mime_msg_t *m);

/**
 * Was m sent by a machine? True when any of its flags is set (false for NULL): an
 * Auto-Submitted other than "no", Precedence bulk/junk/list, X-Autoreply/X-Autorespond,
 * List-Id, a multipart/report, a mailer-daemon or postmaster sender or the null
 * Return-Path, or X-Auto-Response-Suppress (Exchange puts it on its own out-of-office
 * replies and notices; a sender who asks for no automatic answer gets none either).
 * Automatic mail never gets an automatic answer and never changes SLA state.
 */
bool sb_mime_is_automatic(const sb_mime_msg_t *m);

/**
 * Is m a bounce to act on: a DSN whose reported recipient has Action "failed" and a 5.x.x
 * Status (permanent)? A "delayed" action or a 4.x.x status is the server still trying:
 * automatic mail, but nothing to mark on the contact yet. False for NULL.
 */
bool sb_mime_is_permanent_bounce(const sb_mime_msg_t *m);

/**
 * Writes the dedup key of a message without a Message-ID into out: the SHA-256 of
 * raw[0..n) as lower-case hex (64 characters and a NUL). raw must be the bytes exactly as
 * the IMAP server returns them for BODY.PEEK[] (RFC 3501 messages are immutable: the same
 * message fetched again, after a reconnect or from a copy in another folder, has the same
 * bytes). Never fails.
 */
void sb_mime_fallback_id(const char *raw, size_t n, char out[SB_MIME_FALLBACK_ID_LEN]);

#endif

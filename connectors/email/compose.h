/* SPDX-License-Identifier: MIT */
/*
 * One outbound mail, built from a struct into an RFC 5322 message with CRLF line ends,
 * ready for sb_httpc_send_mail: the headers replies thread on (our Message-ID,
 * In-Reply-To, References, a stable "Re:" subject), RFC 3834's Auto-Submitted, and a
 * MIME (RFC 2045/2046) multipart/alternative body with a UTF-8 text/plain part and a
 * simple text/html part, both quoted-printable. Non-ASCII subjects and display names are
 * RFC 2047 encoded-words. Pure and synchronous.
 *
 * The output is a function of the input only: the Message-ID comes from our message id
 * and the mailbox's domain, the MIME boundary from the Message-ID, the Date from date_ms.
 * Composing the same message again after a crash gives the same bytes, so a resend is
 * the same mail (a receiving server or client that has it already can tell).
 */
#ifndef SB_EMAIL_COMPOSE_H
#define SB_EMAIL_COMPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** The longest Message-ID we make or copy, without brackets (a header line's limit). */
#define SB_EMAIL_MSGID_MAX 250
/** References keeps the first id of the chain and the last SB_EMAIL_REFS_MAX - 1. */
#define SB_EMAIL_REFS_MAX 20
/** The most a composed mail may be (text ≤ SB_MAX_TEXT grows ~3x in two QP parts). */
#define SB_EMAIL_COMPOSE_MAX (1024 * 1024)

typedef enum sb_email_auto {
    SB_EMAIL_HUMAN,          /* written by a person: no Auto-Submitted */
    SB_EMAIL_AUTO_REPLIED,   /* an automatic answer to their mail ("we got it") */
    SB_EMAIL_AUTO_GENERATED, /* a notification nobody's mail caused */
} sb_email_auto_t;

typedef struct sb_email_compose {
    const char *from_addr, *from_name; /* our mailbox; name may be NULL */
    const char *to_addr, *to_name;     /* name may be NULL */
    const char *reply_to;              /* an address, or NULL */
    const char *subject;               /* UTF-8; NULL = "" */
    bool reply;                        /* an answer: "Re: " in front, once */
    const char *msg_id;                /* our message id ("m_…"): the Message-ID's left part */
    const char *domain;                /* its right part; NULL = from_addr's domain */
    /* The customer's ids, untrusted, as sb_mime_parse gives them (no brackets). */
    const char *in_reply_to;       /* the message answered (no brackets), or NULL */
    const char *const *references; /* its References, oldest first (no brackets) */
    size_t n_references;
    int64_t date_ms;           /* the Date header, Unix ms (UTC is written): the message's own
                                  time, not now, so a resend is the same */
    sb_email_auto_t automatic; /* Auto-Submitted */
    const char *conversation;  /* X-Switchboard-Conversation, or NULL */
    const char *text;          /* the body, UTF-8, lines ending in LF (or CRLF) */
} sb_email_compose_t;

/**
 * Builds the mail. Returns 0 and *out (NUL-terminated, sb_free) with *out_len, or
 * SB_EINVAL: a required field missing (from_addr, to_addr, msg_id, text), an address that
 * sb_email_check refuses, a header value (name, subject, id, conversation) with a CR, LF
 * or another control character or bytes that are not UTF-8, a msg_id, domain or
 * conversation that is not letters, digits and "._-", text that is not UTF-8; or
 * SB_ETOOBIG past SB_EMAIL_COMPOSE_MAX. On error *out is NULL. Customer ids that cannot
 * be msg-ids (a space, an angle bracket, non-ASCII) are left out of In-Reply-To and
 * References rather than refused: they could not thread anything.
 */
int sb_email_compose(const sb_email_compose_t *c, char **out, size_t *out_len);

/**
 * Our Message-ID for msg_id at domain, without brackets ("sb.m_7Fq2@example.org"), into
 * out. Returns 0 or SB_EINVAL (a character that may not stand in a Message-ID, or it does
 * not fit cap).
 */
int sb_email_message_id(const char *msg_id, const char *domain, char *out, size_t cap);

/**
 * The subject without the reply prefixes mail clients add ("Re:", "RE:", "Aw:", "Sv:",
 * "Re[2]:", repeated, with the blanks after them): what "Re: " is put in front of.
 * Points into subject.
 */
const char *sb_email_subject_base(const char *subject);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Shared by inbound.c (the line: one mailbox's mails in UID order, worker parse, dedup,
 * contact, threading, ingest, link, UID state) and inbound_special.c (bounces of our mail,
 * staff answers by mail, web chats answered by mail) only.
 */
#ifndef SB_EMAIL_INBOUND_H
#define SB_EMAIL_INBOUND_H

#include <jansson.h>

#include "connectors/email/mime.h"
#include "connectors/email/rcpt.h"
#include "connectors/email/staffaddr.h"
#include "connectors/email/state.h"

#define EXT_ID_MAX (SB_MIME_MAX_MSGID + 8)

/* What the worker thread makes of one raw message. */
typedef struct em_parsed {
    int rc; /* sb_mime_parse's */
    sb_mime_msg_t mime;
    char ext_id[EXT_ID_MAX]; /* the Message-ID, else the SHA-256 of the raw bytes (hex) */
    json_t *attachments;     /* [{name,type,size,sha256,stored}] or NULL */
    sb_rcpt_t rcpt;          /* To, Cc and the envelope headers */
    int attach_rc;           /* an attachment could not be written (listed as not stored) */
} em_parsed_t;

struct em_in {
    em_in_t *next;
    uint32_t uidvalidity, uid;
    size_t size;
    em_parsed_t *p; /* NULL: too big, not fetched */
    char contact[SB_ID_MAX], conv[SB_ID_MAX], msg[SB_ID_MAX];
    bool tried_without_conv;
    char hint[SB_ID_MAX]; /* the conversation our plus address names (a customer's mail) */
    sb_staffaddr_t staff; /* the staff reply address it was sent to, if any */
    char cont_conv[SB_ID_MAX], cont_contact[SB_ID_MAX]; /* a chat it may continue */
    size_t cont_next;
    bool cross; /* it continues a conversation of another channel (a chat) */
};

/* inbound.c: the line's steps. Every store call counts in em->pending; its callback goes
 * on only when sb__em_in_proceed says so and ends with sb__em_unref. */
bool sb__em_in_proceed(em_box_t *b, int status, const char *step, const char *errmsg);
/** A store call that failed before being sent: as if its callback had the error. */
void sb__em_in_call_failed(em_box_t *b, int rc, const char *step);
/** Refused for good: logged, passed (the UID state moves on). */
void sb__em_in_reject(em_box_t *b, const char *why);
/** Done with the head: saves the UID state, then the next mail. */
void sb__em_in_finish(em_box_t *b);
void sb__em_in_contact(em_box_t *b);
void sb__em_in_ingest(em_box_t *b);
void sb__em_in_link(em_box_t *b);

/* inbound_special.c */
/** A permanent bounce: a delivery_failed on the answer it names, else automatic mail. */
void sb__em_in_bounce(em_box_t *b);
/** Sent to a signed staff reply address of this mailbox? (a plus address sets hint) */
bool sb__em_in_staff_address(em_box_t *b, em_in_t *it);
/** A staff member's answer by mail, or a refusal. */
void sb__em_in_staff(em_box_t *b);
/** Threading found nothing of this contact's: maybe a web chat answered by mail. */
void sb__em_in_continue(em_box_t *b);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The email connector's state, shared by its files only:
 *   email.c     lifecycle: the mailbox rows, start and stop, metrics
 *   inbound.c   IMAP → store: one mailbox's messages in UID order, threaded, deduplicated,
 *               automatic mail and bounces recognised, the UID state saved
 *   outbound.c  outbox → SMTP: an answer composed as a reply in the customer's thread
 * (mime.c/text.c parse, imap.c fetches, compose.c writes mail, smtp.c reads SMTP answers.)
 */
#ifndef SB_EMAIL_STATE_H
#define SB_EMAIL_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "connectors/connector.h"
#include "connectors/email/imap.h"
#include "connectors/email/smtp.h"
#include "core/httpc.h"

#define SB__EM_CHANNEL "email"
#define SB__EM_TAG_LEN 10 /* the subject tag: the last characters of the conversation id */
#define SB__EM_CREATED 64 /* conversations just created whose first message is awaited */

typedef struct em em_t;
typedef struct em_in em_in_t;
typedef struct em_note em_note_t;

/* An event waiting for the staff list (notify.c). */
typedef struct em_ev {
    struct em_ev *next;
    json_t *json;
} em_ev_t;

/* One configured mailbox: `mailbox <name> <imap-url> <smtp-url> <address>`. */
typedef struct em_box {
    em_t *em;
    char *name, *imap_url, *smtp_url, *address;
    char *password;              /* from mailbox_password_file, or NULL (the URLs' own) */
    char *smtp_user, *smtp_pass; /* taken out of smtp_url (%-decoded), or NULL */
    char *smtp_bare;             /* smtp_url without its credentials */
    char *domain;                /* address's domain, for our Message-IDs */
    sb_imap_t *imap;
    /* Inbound: messages handed over by the IMAP worker, stored one at a time in order. */
    em_in_t *head, *tail;
    bool busy;
    uv_timer_t *retry; /* the store was unavailable: try the head again */
    unsigned retry_ms;
    int status;
    char reason[256];
    uint64_t received, stored, duplicates, automatic, bounces, rejected;
} em_box_t;

struct em {
    sb_connector_env_t env;
    em_box_t *boxes;
    size_t nboxes;
    char *tls_ca;          /* mailbox_tls_ca, or NULL */
    char *data_dir;        /* attachments (core/attach.h) */
    sb_email_smtp_t *smtp; /* the sending thread (smtp.h) */
    unsigned pending;      /* store calls and sends in flight */
    bool stopping;
    unsigned imap_running; /* sessions not yet stopped */
    unsigned timers;       /* uv timers not yet closed */
    uint64_t attach_max;   /* attachment_max_bytes */
    sb_connector_stopped_cb stopped;
    void *stopped_data;
    uint64_t sent, send_failed;
    /* Staff by email (notify.c, inbound.c). */
    unsigned char secret[32]; /* signs reply addresses: mailbox_reply_secret or the node key */
    size_t secret_len;
    char *notify_from; /* notify_from, or NULL: the mailbox's address */
    char *public_url;  /* links to the console */
    sb_events_sub_t *sub;
    char *cursor; /* the feed's cursor, saved every 2 s when it moved */
    size_t cursor_cap;
    bool cursor_dirty;
    uv_timer_t *save_timer;
    json_t *staff; /* {"staff":[…]} (sb_store_notify_list), read again after 250 ms */
    uint64_t staff_at;
    bool staff_loading;
    em_ev_t *ev_head, *ev_tail;
    em_note_t *notes; /* notification mails in flight or waiting to retry */
    char created[SB__EM_CREATED][SB_ID_MAX];
    unsigned created_next;
    /* Web chat answers that go on by mail (followup.c). */
    uint64_t followup_after_ms; /* webchat_email_after */
    uv_timer_t *fu_timer;
    unsigned fu_next; /* the next shard to look at */
};

/* inbound.c */
/** Starts one mailbox's IMAP session from the UID state kept in Redis. */
int sb__em_in_start(em_box_t *b);
/** Stopping: closes the mailbox's timer (its session is stopped by email.c). */
void sb__em_in_close(em_box_t *b);
/** Frees what the mailbox still holds of inbound messages (after its session stopped). */
void sb__em_in_dispose(em_box_t *b);

/* notify.c */
/** Follows the event feed from its saved cursor and mails staff who asked for it. */
int sb__em_notify_start(em_t *em);
/** Stopping: ends the subscription, closes timers, drops queued events. */
void sb__em_notify_stop(em_t *em);
/** Frees what notify.c holds (when the connector is freed). */
void sb__em_notify_dispose(em_t *em);

/* notify_sla.c */
/** An SLA step of the feed (takes ownership of ev): mailed to its targets who want mail. */
void sb__em_notify_sla_event(em_t *em, json_t *ev);

/* followup.c */
/** Starts the timer that mails the due web chat answers. */
int sb__em_followup_start(em_t *em);
void sb__em_followup_stop(em_t *em);
/** An event of the feed: a staff answer in a web chat is scheduled. */
void sb__em_followup_event(em_t *em, const json_t *ev);

/* outbound.c */
int sb__em_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data);

/* email.c */
/** Frees the connector once stopping and nothing is left in flight. */
void sb__em_maybe_free(em_t *em);
/** A store call or send came back: frees the connector once stopping and nothing is left. */
void sb__em_unref(em_t *em);
/** The mailbox that sends for a conversation: by name, else the first. */
em_box_t *sb__em_box(em_t *em, const char *name);
/** The subject tag of a conversation id ("[#…]" carries it), into out (SB__EM_TAG_LEN+1). */
void sb__em_tag(const char *cid, char *out);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Shared by notify.c (the notification mail machinery: once-markers, composing, sending
 * with retries) and notify_sla.c (what an SLA step's mail says and whom it reaches).
 */
#ifndef SB_EMAIL_NOTIFY_H
#define SB_EMAIL_NOTIFY_H

#include <stdbool.h>

#include <jansson.h>

#include "connectors/email/state.h"

/* One notification mail to one staff member, from the once-marker to the last attempt. */
struct em_note {
    em_t *em;
    em_note_t *next, *prev;
    char cid[SB_ID_MAX], sid[SB_ID_MAX], event[48];
    char *to, *subject, *text, *who, *mailbox;
    bool assigned;
    json_t *sla; /* an SLA step's message (its event), or NULL */
    unsigned attempts;
    uv_timer_t *timer;
    char *mail;
    size_t mail_len;
};

/**
 * Mails one staff member ({"id","email","name",…}, borrowed) about one feed event
 * (borrowed) unless a node did already: assigned says an assignment, sla an SLA step.
 */
void sb__em_notify_one(em_t *em, const json_t *staff, const json_t *ev, bool assigned, bool sla);

/** Writes n's mail (subject and text borrowed); false when it can't be (logged). */
bool sb__em_note_compose(em_note_t *n, const char *staff_name, const char *subject,
                         const char *text);
/** Sends n's mail (retried, then ended). */
void sb__em_note_send(em_note_t *n);
/** Ends n (its timer closes, then it is freed). */
void sb__em_note_end(em_note_t *n);

/**
 * An SLA note's conversation (borrowed) is known: reads the customer's last message,
 * then writes and sends the mail, or ends n. Takes ownership of staff_name (sb_free).
 */
void sb__em_sla_conv(em_note_t *n, const json_t *conv, char *staff_name);

#endif

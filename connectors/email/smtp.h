/* SPDX-License-Identifier: MIT */
/*
 * What an SMTP answer means for the outbox: the response of sb_httpc_send_mail
 * (core/httpc.h) mapped to a delivery outcome (core/outcome.h). Reply codes are RFC 5321's
 * (§4.2), enhanced status codes RFC 3463's.
 *
 *   2xx after the data                  ok; provider_id = the server's queue id when its
 *                                       reply names one ("queued as X", "id=X"), else
 *                                       our Message-ID
 *   4xx, no answer, timeout, canceled   temporary (retry with backoff)
 *   5xx                                 permanent (reason = the server's reply)
 *   530, 534, 535, 538, x.7.8, refused
 *   login                               auth (the outbox pauses the account)
 *   TLS verification failed, STARTTLS
 *   missing where required              auth: a configuration fault (wrong CA, wrong host
 *                                       name, a server that changed) that every message
 *                                       to this server would meet and an admin must fix;
 *                                       pausing keeps the queue instead of burning each
 *                                       message's retries or dead-lettering them one by one.
 */
#ifndef SB_EMAIL_SMTP_H
#define SB_EMAIL_SMTP_H

#include <stddef.h>
#include <uv.h>

#include "core/httpc.h"
#include "core/outcome.h"

/** Room for a server's queue id (longer ones are not used: provider_id is our id then). */
#define SB_EMAIL_QUEUE_ID_MAX 128

/**
 * Fills *out from r. message_id (our Message-ID, without brackets; may be NULL) is the
 * provider_id of an ok when the reply names no queue id; a queue id is copied into
 * idbuf[SB_EMAIL_QUEUE_ID_MAX]. out's strings point into r, message_id or idbuf and live
 * as long as they do (r: for the callback).
 */
void sb_email_smtp_outcome(const sb_httpc_response_t *r, const char *message_id, sb_outcome_t *out,
                           char idbuf[SB_EMAIL_QUEUE_ID_MAX]);

typedef struct sb_email_smtp sb_email_smtp_t;

/** Connections the sending thread opens to one server at most; more mails queue for them. */
#define SB_EMAIL_SMTP_CONNECTIONS 4

/**
 * Starts the sending thread (its loop and HTTP client; libcurl loads at the first mail).
 * loop (borrowed, must outlive the sender) is where callbacks run. Returns 0 and *out, or
 * SB_EINTERNAL when the thread can't start.
 */
int sb_email_smtp_start(uv_loop_t *loop, sb_email_smtp_t **out);

/**
 * Sends one mail (as sb_httpc_send_mail; m and everything it points to is copied). Returns
 * 0, then cb(res, data) runs exactly once, later, on the loop; SB_EINVAL (the checks of
 * sb_httpc_mail_check) or SB_ECANCELED after stop, and then cb never runs. res is valid
 * during the callback; its headers and body are "".
 */
int sb_email_smtp_send(sb_email_smtp_t *s, const sb_httpc_mail_t *m, sb_httpc_cb cb, void *data);

/** Mails handed to the thread whose callback has not run yet. */
unsigned sb_email_smtp_inflight(const sb_email_smtp_t *s);

/**
 * Stops, without blocking the loop: mails in flight complete with SB_ECANCELED (their
 * connections are dropped), the thread ends and is joined, then cb(data) runs once on the
 * loop and the sender is freed. cb may be NULL. Accepts NULL (then cb runs at once).
 */
void sb_email_smtp_stop(sb_email_smtp_t *s, void (*cb)(void *data), void *data);

#endif

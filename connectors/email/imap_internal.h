/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of an IMAP session share: imap.c (the loop side: start, done, stop,
 * the hand-over of results) and imap_session.c (the worker thread's body: connect, verify,
 * fetch, IDLE, backoff). Only these files include it.
 */
#ifndef SB_EMAIL_IMAP_INTERNAL_H
#define SB_EMAIL_IMAP_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "connectors/email/imap.h"
#include "core/worker.h"

/* A result the worker posts to the loop: a message or a status. */
typedef struct sb__imap_item sb__imap_item_t;
struct sb__imap_item {
    sb__imap_item_t *next; /* loop side: the list of messages handed over, not yet done */
    bool is_message;
    int status;   /* !is_message: sb_imap_status_t */
    char *reason; /* !is_message: owned */
    uint32_t uidvalidity, uid;
    char *raw; /* owned; NULL when too big */
    size_t len;
    void *parsed; /* from cbs.parse, freed with cbs.free_parsed */
};

/* A job the loop submits to the worker: the owner is done with a message. */
typedef struct sb__imap_credit {
    uint32_t uidvalidity, uid;
    size_t len;
    int err;
} sb__imap_credit_t;

struct sb_imap {
    uv_loop_t *loop;
    sb_imap_opts_t o; /* strings below are the copies o points at */
    char *name, *tls_ca;
    sb_imap_url_t url; /* url.pass replaced by opts.password when given */
    sb_imap_cbs_t cbs;
    void *data;
    sb_worker_t *worker;

    /* Shared with the worker thread, under mu. */
    pthread_mutex_t mu;
    int sock;      /* the IMAP socket while connected, -1 otherwise: stop shuts it down */
    int wake_fd;   /* eventfd: written by stop and by a failed done; polled in IDLE */
    bool stopping; /* sb_imap_stop was called */

    /* Worker thread only. */
    uint32_t uidvalidity, last_uid; /* the resume point: what was handed over */
    uint32_t refetch_from;          /* a failed done: fetch again from here (0: none) */
    unsigned inflight;              /* messages posted and not yet credited back */
    size_t inflight_bytes;
    unsigned backoff_ms;

    /* Loop thread only. */
    sb__imap_item_t *held, *held_tail; /* messages handed over, not yet done */
    bool closing;                      /* sb_imap_stop ran: no more callbacks */
    void (*stop_cb)(void *);
    void *stop_data;
};

/** The worker thread's body (imap_session.c): connects, fetches, idles until stopping. */
void sb__imap_run(sb_worker_t *w, void *data);

/** Frees an item (and its raw, reason; parsed via cbs.free_parsed on the loop). */
void sb__imap_item_free(sb_imap_t *m, sb__imap_item_t *it);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The widget's promise (docs/email.md, "Web chat by email"): a staff answer in a web chat
 * whose visitor is gone goes out by mail after webchat_email_after, unless the widget
 * showed it first (connectors/webchat marks what it shows as seen). Every node schedules
 * the answers it sees in the event feed (one entry per answer in its shard); a timer
 * takes the due ones, a shard group per tick, and mails those whose contact left an
 * address: taking one is atomic, so one node sends it. The mail is an ordinary entry of
 * the email outbox (outbound.c writes it: the conversation has no inbound mail, so the
 * contact's address is used), and the visitor's answer by mail threads back into the chat
 * (inbound.c).
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "connectors/email/state.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define TICK_MS         1000
#define SHARDS_PER_TICK 16

typedef struct fu_job {
    em_t *em;
    char conv[SB_ID_MAX], mid[SB_ID_MAX], seq[48];
} fu_job_t;

static void on_taken(int status, json_t *result, const char *errmsg, void *data)
{
    fu_job_t *j = data;
    if (status)
        SB_LOG_WARN("email.followup", "conv=%s msg=%s err=%s reason=\"%s\"", j->conv, j->mid,
                    sb_err_name(status), errmsg ? errmsg : "");
    else if (json_is_true(json_object_get(result, "sent")))
        SB_LOG_INFO("email.followup", "conv=%s msg=%s: not seen in the chat, goes by mail", j->conv,
                    j->mid);
    em_t *em = j->em;
    sb_free(j);
    sb__em_unref(em);
}

static void take(fu_job_t *j, bool send)
{
    j->em->pending++;
    if (sb_store_followup_take(j->em->env.store, j->conv, j->mid, j->seq, send, on_taken, j) != 0) {
        j->em->pending--;
        sb_free(j);
    }
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    fu_job_t *j = data;
    em_t *em = j->em;
    const char *email = json_string_value(json_object_get(result, "email"));
    if (!em->stopping && status != SB_EUNAVAILABLE && status != SB_ETIMEDOUT)
        take(j, status == 0 && email && *email); /* no address: nothing to keep it for */
    else
        sb_free(j); /* stays due: the next tick tries again */
    sb__em_unref(em);
}

static void on_conv(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    fu_job_t *j = data;
    em_t *em = j->em;
    json_t *c = result; /* sb_store_get answers the conversation itself */
    const char *ct = json_string_value(json_object_get(json_object_get(c, "contact"), "id"));
    if (em->stopping || status == SB_EUNAVAILABLE || status == SB_ETIMEDOUT) {
        sb_free(j);
    } else if (status || !ct) {
        take(j, false);
    } else {
        em->pending++;
        if (sb_store_contact_get(em->env.store, ct, on_contact, j) != 0) {
            em->pending--;
            sb_free(j);
        }
    }
    sb__em_unref(em);
}

static void on_due(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    em_t *em = data;
    json_t *due = json_object_get(result, "due");
    for (size_t i = 0; !status && !em->stopping && i < json_array_size(due); i++) {
        json_t *e = json_array_get(due, i);
        fu_job_t *j = SB_NEW(fu_job_t);
        j->em = em;
        snprintf(j->conv, sizeof(j->conv), "%s", json_string_value(json_object_get(e, "conv")));
        snprintf(j->mid, sizeof(j->mid), "%s", json_string_value(json_object_get(e, "mid")));
        snprintf(j->seq, sizeof(j->seq), "%s", json_string_value(json_object_get(e, "seq")));
        em->pending++;
        if (sb_store_get(em->env.store, j->conv, on_conv, j) != 0) {
            em->pending--;
            sb_free(j);
        }
    }
    sb__em_unref(em);
}

static void on_tick(uv_timer_t *t)
{
    em_t *em = t->data;
    unsigned shards = sb_store_opts(em->env.store)->shards;
    for (unsigned k = 0; k < SHARDS_PER_TICK && k < shards && !em->stopping; k++) {
        unsigned shard = em->fu_next++ % shards;
        em->pending++;
        if (sb_store_followup_due(em->env.store, shard, 0, on_due, em) != 0)
            em->pending--;
    }
}

static void on_added(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    em_t *em = data;
    if (status)
        SB_LOG_WARN("email.followup", "schedule err=%s reason=\"%s\"", sb_err_name(status),
                    errmsg ? errmsg : "");
    sb__em_unref(em);
}

void sb__em_followup_event(em_t *em, const json_t *ev)
{
    /* an answer's channel is its conversation's (the events carry no conversation channel) */
    json_t *m = json_object_get(ev, "message");
    const char *kind = json_string_value(json_object_get(m, "kind"));
    const char *dir = json_string_value(json_object_get(m, "dir"));
    const char *channel = json_string_value(json_object_get(m, "channel"));
    const char *conv = json_string_value(json_object_get(ev, "conv"));
    const char *mid = json_string_value(json_object_get(m, "id"));
    const char *seq = json_string_value(json_object_get(m, "seq"));
    if (!kind || strcmp(kind, "message") != 0 || !dir || strcmp(dir, "out") != 0 || !channel ||
        strcmp(channel, "webchat") != 0 || !conv || !mid || !seq)
        return;
    em->pending++;
    if (sb_store_followup_add(em->env.store, conv, mid, seq,
                              (uint64_t)sb_now_ms() + em->followup_after_ms, on_added, em) != 0)
        em->pending--;
}

int sb__em_followup_start(em_t *em)
{
    em->fu_timer = SB_NEW(uv_timer_t);
    uv_timer_init(em->env.loop, em->fu_timer);
    em->fu_timer->data = em;
    em->timers++;
    uv_timer_start(em->fu_timer, on_tick, TICK_MS, TICK_MS);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    em_t *em = h->data;
    sb_free(h);
    em->timers--;
    sb__em_maybe_free(em);
}

void sb__em_followup_stop(em_t *em)
{
    if (em->fu_timer) {
        uv_close((uv_handle_t *)em->fu_timer, on_closed);
        em->fu_timer = NULL;
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * Outbox → SMTP: one staff or bot answer becomes a mail in the customer's thread. The
 * conversation gives the subject and the contact; its newest inbound mail gives the
 * address to answer, the mailbox that received it and the ids to thread on (In-Reply-To
 * and References). Our Message-ID is derived from the message id, so an attempt repeated
 * after a crash sends the same mail, and it is linked to the conversation before the
 * mail leaves, so the customer's answer threads even if it comes back at once.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "connectors/email/compose.h"
#include "connectors/email/mime.h"
#include "connectors/email/smtp.h"
#include "connectors/email/state.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/outbox.h"

#define PAGE_ITEMS      50
#define PAGE_BYTES      (512 * 1024)
#define MAX_REFS        20
#define SEND_TIMEOUT_MS 60000

typedef struct em_out {
    em_t *em;
    sb_deliver_cb done;
    void *data;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    json_t *m;    /* the outbound message */
    json_t *c;    /* its conversation */
    json_t *last; /* the newest inbound mail of the conversation, or NULL */
    char *to;     /* the customer's address */
    em_box_t *box;
    char message_id[SB_EMAIL_MSGID_MAX + 1];
    char tag_id[32];
    char *mail;
    size_t mail_len;
} em_out_t;

static void out_free(em_out_t *o)
{
    json_decref(o->m);
    json_decref(o->c);
    json_decref(o->last);
    sb_free(o->to);
    sb_free(o->mail);
    sb_free(o);
}

/* Ends the attempt with an outcome (the outbox records it, then acks or retries). */
static void end(em_out_t *o, sb_outcome_kind_t kind, const char *reason, const char *provider_id)
{
    sb_outcome_t oc = {.kind = kind, .reason = reason, .provider_id = provider_id};
    if (kind == SB_OUTCOME_OK)
        o->em->sent++;
    else
        o->em->send_failed++;
    if (kind != SB_OUTCOME_OK)
        SB_LOG_WARN("email.out", "conv=%s msg=%s outcome=%d reason=\"%s\"", o->conv, o->mid,
                    (int)kind, reason ? reason : "");
    else
        SB_LOG_INFO("email.out.sent", "conv=%s msg=%s to=%s message_id=\"%s\"", o->conv, o->mid,
                    o->to, o->message_id);
    em_t *em = o->em;
    o->done(&oc, o->data);
    out_free(o);
    sb__em_unref(em);
}

/* A store answer that is not there: retried (the store is away) or given up (refused). */
static void end_store(em_out_t *o, int status, const char *errmsg, const char *step)
{
    char why[256];
    snprintf(why, sizeof(why), "%s: %s", step, errmsg && *errmsg ? errmsg : sb_strerror(status));
    bool gone = status == SB_ENOTFOUND || status == SB_EINVAL;
    end(o, gone ? SB_OUTCOME_PERMANENT : SB_OUTCOME_TEMPORARY, why, NULL);
}

static void on_sent(const sb_httpc_response_t *res, void *data)
{
    em_out_t *o = data;
    sb_outcome_t oc;
    char idbuf[SB_EMAIL_QUEUE_ID_MAX];
    sb_email_smtp_outcome(res, o->message_id, &oc, idbuf);
    end(o, oc.kind, oc.reason, oc.provider_id);
}

static void send_mail(em_out_t *o)
{
    em_box_t *b = o->box;
    const char *rcpt[] = {o->to, NULL};
    sb_httpc_mail_t m = {.url = b->smtp_bare,
                         .username = b->smtp_user,
                         .password = b->smtp_pass,
                         .ca_file = o->em->tls_ca,
                         .mail_from = b->address,
                         .rcpt = rcpt,
                         .message = o->mail,
                         .message_len = o->mail_len,
                         .timeout_ms = SEND_TIMEOUT_MS};
    int rc = sb_email_smtp_send(o->em->smtp, &m, on_sent, o);
    if (rc)
        end(o, SB_OUTCOME_TEMPORARY, sb_strerror(rc), NULL);
}

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    em_out_t *o = data;
    if (status)
        end_store(o, status, errmsg, "thread link");
    else
        send_mail(o);
}

static const char *str(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

/* Writes the mail, then links our Message-ID (and the subject tag) to the conversation. */
static void compose(em_out_t *o)
{
    json_t *ext = json_object_get(o->last, "ext");
    const char *in_reply_to = str(ext, "message_id", NULL);
    const char *refs[MAX_REFS + 1];
    size_t n = 0;
    json_t *r = json_object_get(ext, "references");
    size_t nr = json_array_size(r), from = nr > MAX_REFS ? nr - MAX_REFS : 0;
    for (size_t i = from; i < nr; i++)
        if (json_string_value(json_array_get(r, i)))
            refs[n++] = json_string_value(json_array_get(r, i));
    if (in_reply_to)
        refs[n++] = in_reply_to;
    const char *subject = str(o->c, "subject", NULL);
    if (!subject || !*subject)
        subject = str(o->last, "subject", NULL);
    char tag[SB__EM_TAG_LEN + 1];
    sb__em_tag(o->conv, tag);
    const char *base = subject && *subject ? sb_email_subject_base(subject) : "Your message to us";
    char *subj = strstr(base, tag) ? sb_strdup(base) : sb_asprintf("%s [#%s]", base, tag);
    snprintf(o->tag_id, sizeof(o->tag_id), "tag:%s", tag);
    const char *author = str(o->m, "author", "name");
    int rc = sb_email_message_id(o->mid, o->box->domain, o->message_id, sizeof(o->message_id));
    /* a web chat answered by mail says where it comes from and how to go on */
    const char *channel = str(o->c, "channel", NULL);
    bool chat = channel && strcmp(channel, "webchat") == 0;
    char *text = sb_asprintf("%s%s", str(o->m, "text", NULL),
                             chat ? "\n\n-- \nYou wrote to us in the chat on our website. Reply to "
                                    "this mail to answer, or go back to the chat."
                                  : "");
    sb_email_compose_t mo = {.from_addr = o->box->address,
                             .from_name = author && *author ? author : NULL,
                             .to_addr = o->to,
                             .to_name = str(o->c, "contact", "name"),
                             .subject = subj,
                             .reply = true,
                             .msg_id = o->mid,
                             .domain = o->box->domain,
                             .in_reply_to = in_reply_to,
                             .references = refs,
                             .n_references = n,
                             /* the answer's own time: an attempt repeated sends the same bytes */
                             .date_ms = json_integer_value(json_object_get(o->m, "ts")),
                             .automatic = SB_EMAIL_HUMAN,
                             .conversation = o->conv,
                             .text = text};
    if (!rc)
        rc = sb_email_compose(&mo, &o->mail, &o->mail_len);
    sb_free(text);
    sb_free(subj);
    if (rc) {
        end(o, SB_OUTCOME_PERMANENT, "the mail could not be written (bad address or header)", NULL);
        return;
    }
    const char *ids[] = {o->message_id, o->tag_id};
    rc = sb_store_thread_link(o->em->env.store, o->conv, o->mid, ids, 2, on_linked, o);
    if (rc)
        end_store(o, rc, NULL, "thread link");
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    em_out_t *o = data;
    const char *email = str(result, "email", NULL);
    if (status)
        end_store(o, status, errmsg, "contact");
    else if (!email || !*email)
        end(o, SB_OUTCOME_PERMANENT, "the contact has no email address", NULL);
    else {
        o->to = sb_strdup(email);
        o->box = sb__em_box(o->em, NULL);
        compose(o);
    }
}

/* The newest inbound mail: whom to answer, from which mailbox, on which ids. */
static void on_page(int status, json_t *result, const char *errmsg, void *data)
{
    em_out_t *o = data;
    if (status) {
        end_store(o, status, errmsg, "transcript");
        return;
    }
    static const char *const need[] = {"from", NULL};
    json_t *it = sb_msg_newest_in(json_object_get(result, "items"), need);
    if (it) {
        o->last = json_incref(it);
        o->to = sb_strdup(str(it, "ext", "from"));
        o->box = sb__em_box(o->em, str(it, "ext", "mailbox"));
        compose(o);
        return;
    }
    /* started elsewhere (the API, the web chat): the contact's own address */
    const char *ct = str(o->c, "contact", "id");
    int rc = ct ? sb_store_contact_get(o->em->env.store, ct, on_contact, o) : SB_ENOTFOUND;
    if (rc)
        end_store(o, rc, NULL, "contact");
}

static void on_conv(int status, json_t *result, const char *errmsg, void *data)
{
    em_out_t *o = data;
    if (status) {
        end_store(o, status, errmsg, "conversation");
        return;
    }
    o->c = json_incref(result); /* the conversation itself */
    int rc = sb_store_public_page(o->em->env.store, o->conv, NULL, NULL, PAGE_ITEMS, PAGE_BYTES,
                                  on_page, o);
    if (rc)
        end_store(o, rc, NULL, "transcript");
}

int sb__em_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data)
{
    em_t *em = state;
    em_out_t *o = SB_NEW(em_out_t);
    if (sb_outbox_reply_of(entry, o->conv, o->mid, &o->m) != 0) {
        sb_free(o);
        return SB_EINVAL;
    }
    o->em = em;
    o->done = done;
    o->data = data;
    em->pending++;
    int rc = sb_store_get(em->env.store, o->conv, on_conv, o);
    if (rc) {
        em->pending--;
        out_free(o);
        return rc;
    }
    return 0;
}

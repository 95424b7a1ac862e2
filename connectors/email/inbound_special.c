/* SPDX-License-Identifier: MIT */
/*
 * The inbound line's special cases (inbound.h): a bounce of one of our mails becomes a
 * delivery_failed on it and flags the address; a mail to a staff member's signed reply
 * address is their answer, or refused with a `rejected` event; a reply to our mail about
 * a web chat continues that chat. docs/email.md describes each.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "connectors/email/inbound.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

/* ---- A web chat answered by mail: our mail went to the address the visitor left, and
 * its answer names our Message-ID; the conversation is a chat of another contact than the
 * one the From address resolves to, so it continues only when that contact's address is
 * the sender's (the same rule as a participant, through the address we wrote to). ---- */

#define CONT_TRIES 4 /* In-Reply-To and the newest References entries looked at */

static const char *ref_at(const sb_mime_msg_t *m, size_t i)
{
    if (m->in_reply_to[0]) {
        if (i == 0)
            return m->in_reply_to;
        i--;
    }
    return i < m->n_references ? m->references[m->n_references - 1 - i] : NULL;
}

static void on_cont_contact(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    const char *email = json_string_value(json_object_get(result, "email"));
    if (!sb__em_in_proceed(b, status == SB_ENOTFOUND ? 0 : status, "continue", errmsg)) {
    } else if (status == 0 && email && strcasecmp(email, it->p->mime.from_addr) == 0) {
        snprintf(it->conv, sizeof(it->conv), "%s", it->cont_conv);
        snprintf(it->contact, sizeof(it->contact), "%s", it->cont_contact);
        it->cross = true;
        SB_LOG_INFO("email.in.continue", "mailbox=%s uid=%u conv=%s: a chat answered by mail",
                    b->name, it->uid, it->conv);
        sb__em_in_ingest(b);
    } else {
        sb__em_in_continue(b);
    }
    sb__em_unref(b->em);
}

static void on_cont_conv(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    json_t *c = result; /* sb_store_get answers the conversation itself */
    const char *ch = json_string_value(json_object_get(c, "channel"));
    const char *ct = json_string_value(json_object_get(json_object_get(c, "contact"), "id"));
    if (!sb__em_in_proceed(b, status == SB_ENOTFOUND ? 0 : status, "continue", errmsg)) {
    } else if (status == 0 && ch && strcmp(ch, SB__EM_CHANNEL) != 0 && ct) {
        snprintf(it->cont_contact, sizeof(it->cont_contact), "%s", ct);
        b->em->pending++;
        int rc = sb_store_contact_get(b->em->env.store, ct, on_cont_contact, b);
        if (rc)
            sb__em_in_call_failed(b, rc, "continue");
    } else {
        sb__em_in_continue(b);
    }
    sb__em_unref(b->em);
}

static void on_cont_ref(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    const char *conv = json_string_value(json_object_get(result, "conv"));
    if (!sb__em_in_proceed(b, status, "continue", errmsg)) {
    } else if (status == 0 && conv) {
        snprintf(it->cont_conv, sizeof(it->cont_conv), "%s", conv);
        b->em->pending++;
        int rc = sb_store_get(b->em->env.store, conv, on_cont_conv, b);
        if (rc)
            sb__em_in_call_failed(b, rc, "continue");
    } else {
        sb__em_in_continue(b);
    }
    sb__em_unref(b->em);
}

/* The next reference to try; a new conversation when none is left. */
void sb__em_in_continue(em_box_t *b)
{
    em_in_t *it = b->head;
    const char *ref = it->cont_next < CONT_TRIES ? ref_at(&it->p->mime, it->cont_next) : NULL;
    if (!ref) {
        sb__em_in_ingest(b);
        return;
    }
    it->cont_next++;
    b->em->pending++;
    int rc = sb_store_thread_get(b->em->env.store, ref, on_cont_ref, b);
    if (rc)
        sb__em_in_call_failed(b, rc, "continue");
}

static void on_bounce_flagged(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    em_box_t *b = data;
    if (sb__em_in_proceed(b, status, "bounce flag", errmsg)) {
        if (status)
            SB_LOG_WARN("email.in.bounce", "mailbox=%s flag err=%s", b->name, sb_err_name(status));
        sb__em_in_finish(b);
    }
    sb__em_unref(b->em);
}

static void on_bounce_contact(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    const char *ct = json_string_value(json_object_get(result, "id"));
    if (!sb__em_in_proceed(b, status, "bounce contact", errmsg)) {
    } else if (status || !ct) {
        sb__em_in_finish(b); /* nobody has that address any more */
    } else {
        const sb_mime_msg_t *m = &b->head->p->mime;
        char *v = sb_asprintf("%s %s", m->bounce_recipient, m->bounce_status);
        b->em->pending++;
        int rc =
            sb_store_contact_set(b->em->env.store, ct, "email_bounced", v, on_bounce_flagged, b);
        sb_free(v);
        if (rc)
            sb__em_in_call_failed(b, rc, "bounce flag");
    }
    sb__em_unref(b->em);
}

static void on_bounce_recorded(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    em_box_t *b = data;
    if (!sb__em_in_proceed(b, status, "bounce record", errmsg)) {
    } else if (status) {
        /* not one of our outbound messages after all: keep it as automatic mail */
        sb__em_in_contact(b);
    } else {
        const sb_mime_msg_t *m = &b->head->p->mime;
        b->bounces++;
        SB_LOG_INFO("email.in.bounce", "mailbox=%s uid=%u conv=%s msg=%s recipient=%s status=%s",
                    b->name, b->head->uid, b->head->conv, b->head->msg, m->bounce_recipient,
                    m->bounce_status);
        b->em->pending++;
        int rc = sb_store_ident_get(b->em->env.store, "email", m->bounce_recipient,
                                    on_bounce_contact, b);
        if (rc) {
            b->em->pending--;
            sb__em_in_finish(b);
        }
    }
    sb__em_unref(b->em);
}

static void on_bounce_found(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    const char *conv = json_string_value(json_object_get(result, "conv"));
    const char *msg = json_string_value(json_object_get(result, "msg"));
    if (!sb__em_in_proceed(b, status, "bounce find", errmsg)) {
    } else if (status || !conv || !msg) {
        sb__em_in_contact(b); /* not a bounce of ours: automatic mail like any other */
    } else {
        const sb_mime_msg_t *m = &it->p->mime;
        snprintf(it->conv, sizeof(it->conv), "%s", conv);
        snprintf(it->msg, sizeof(it->msg), "%s", msg);
        char *reason = sb_asprintf("bounced: %s %s%s%s", m->bounce_recipient, m->bounce_status,
                                   m->bounce_diagnostic[0] ? ": " : "", m->bounce_diagnostic);
        sb_delivery_t d = {.conv = conv,
                           .mid = msg,
                           .channel = SB__EM_CHANNEL,
                           .account = b->name,
                           .ok = false,
                           .final = true,
                           .bounce = true,
                           .reason = reason,
                           .provider_id = ""};
        b->em->pending++;
        int rc = sb_store_delivery_record(b->em->env.store, &d, on_bounce_recorded, b);
        sb_free(reason);
        if (rc) {
            b->em->pending--;
            sb__em_in_contact(b);
        }
    }
    sb__em_unref(b->em);
}

/* ---- A staff member's answer by mail (to a notification's reply address) ---- */

/* Looks at the recipients: a signed staff address, or a customer's plus address (a hint
 * for threading). True for the first. */
bool sb__em_in_staff_address(em_box_t *b, em_in_t *it)
{
    for (size_t i = 0; i < it->p->rcpt.n; i++) {
        sb_staffaddr_t a;
        if (!sb_staffaddr_parse(it->p->rcpt.addr[i], b->address, &a))
            continue;
        if (a.sig[0]) {
            it->staff = a;
            return true;
        }
        if (!it->hint[0])
            snprintf(it->hint, sizeof(it->hint), "%s", a.cid);
    }
    return false;
}

static void on_refusal_noted(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result, (void)errmsg;
    em_box_t *b = data;
    if (sb__em_in_proceed(b, status == SB_ENOTFOUND ? 0 : status, "staff refusal", errmsg))
        sb__em_in_finish(b);
    sb__em_unref(b->em);
}

/* A mail to a staff reply address that is not that staff member's answer: logged, a
 * `rejected` event on the conversation (the customer never sees it), and passed. */
static void refuse_staff(em_box_t *b, const char *why)
{
    em_in_t *it = b->head;
    b->rejected++;
    SB_LOG_WARN("email.in.staff_refused", "mailbox=%s uid=%u conv=%s from=%s reason=\"%s\"",
                b->name, it->uid, it->staff.cid, it->p->mime.from_addr, why);
    b->em->pending++;
    int rc = sb_store_rejected(b->em->env.store, it->staff.cid, SB__EM_CHANNEL,
                               it->p->mime.from_addr, why, on_refusal_noted, b);
    if (rc) {
        b->em->pending--;
        sb__em_in_finish(b);
    }
}

static void on_staff_replied(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    if (!sb__em_in_proceed(b, status, "staff reply", errmsg)) {
    } else if (status) {
        refuse_staff(b, errmsg && *errmsg ? errmsg : sb_strerror(status));
    } else {
        json_t *m = json_object_get(result, "message");
        const char *mid = json_string_value(json_object_get(m ? m : result, "id"));
        snprintf(it->conv, sizeof(it->conv), "%s", it->staff.cid);
        snprintf(it->msg, sizeof(it->msg), "%s", mid ? mid : "");
        b->stored++;
        SB_LOG_INFO("email.in.staff_reply", "mailbox=%s uid=%u conv=%s msg=%s", b->name, it->uid,
                    it->conv, it->msg);
        sb__em_in_link(b);
    }
    sb__em_unref(b->em);
}

static void on_staff_list(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    if (!sb__em_in_proceed(b, status, "staff list", errmsg)) {
        sb__em_unref(b->em);
        return;
    }
    const sb_mime_msg_t *m = &it->p->mime;
    json_t *staff = json_object_get(result, "staff"), *who = NULL;
    for (size_t i = 0; i < json_array_size(staff); i++) {
        const char *email = json_string_value(json_object_get(json_array_get(staff, i), "email"));
        if (email && strcasecmp(email, m->from_addr) == 0)
            who = json_array_get(staff, i);
    }
    const char *sid = json_string_value(json_object_get(who, "id"));
    if (!who || !sid) {
        refuse_staff(b, "the sender is not a staff member who gets notification mail");
    } else if (!sb_staffaddr_verify(b->em->secret, b->em->secret_len, it->staff.cid, sid,
                                    it->staff.sig)) {
        refuse_staff(b, "the address was not made for this sender");
    } else if (!m->text[0]) {
        refuse_staff(b, "no text above the quoted part");
    } else {
        char key[80], hex[65];
        sb_sha256_hex(it->p->ext_id, strlen(it->p->ext_id), hex);
        snprintf(key, sizeof(key), "mail:%.40s", hex);
        sb_actor_t actor = {
            .type = "staff", .id = sid, .name = json_string_value(json_object_get(who, "name"))};
        b->em->pending++;
        int rc = sb_store_reply(b->em->env.store, it->staff.cid, &actor, m->text, key, NULL, true,
                                on_staff_replied, b);
        if (rc)
            sb__em_in_call_failed(b, rc, "staff reply");
    }
    sb__em_unref(b->em);
}

void sb__em_in_staff(em_box_t *b)
{
    if (b->head->p->mime.flags & (SB_MIME_DSN | SB_MIME_AUTOREPLY) ||
        sb_mime_is_automatic(&b->head->p->mime)) {
        refuse_staff(b, "automatic mail (an out-of-office or a bounce) is never an answer");
        return;
    }
    b->em->pending++;
    int rc = sb_store_notify_list(b->em->env.store, on_staff_list, b);
    if (rc)
        sb__em_in_call_failed(b, rc, "staff list");
}

/* A permanent bounce naming one of our Message-IDs: look the original up. */
void sb__em_in_bounce(em_box_t *b)
{
    b->em->pending++;
    int rc = sb_store_thread_get(b->em->env.store, b->head->p->mime.bounce_message_id,
                                 on_bounce_found, b);
    if (rc) {
        b->em->pending--;
        sb__em_in_contact(b);
    }
}

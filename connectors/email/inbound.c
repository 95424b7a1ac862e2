/* SPDX-License-Identifier: MIT */
/*
 * IMAP → store, one mailbox at a time and in UID order: the worker thread parses each
 * message (and stores its attachments) off the loop; here it is deduplicated, recognised
 * as a bounce or automatic mail, threaded and ingested, its Message-ID linked to the
 * conversation, and only then is the mailbox's UID state saved and the next one taken.
 * The store being away stops the line (the message is retried with backoff, never
 * skipped); a message the store refuses for good is logged and passed (it stays in the
 * mailbox: nothing is ever deleted there).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "connectors/email/inbound.h"
#include "core/alloc.h"
#include "core/attach.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/util.h"

#define RETRY_MIN_MS 250
#define RETRY_MAX_MS 30000
#define MAX_REFS     20 /* References entries looked up, newest first */

/* ---- Worker thread ---- */

static void *parse(const char *raw, size_t len, void *data)
{
    em_box_t *b = data;
    em_parsed_t *p = SB_NEW(em_parsed_t);
    p->rc = sb_mime_parse(raw, len, &p->mime);
    sb_rcpt_parse(raw, len, &p->rcpt);
    if (p->rc == 0 && p->mime.message_id[0])
        snprintf(p->ext_id, sizeof(p->ext_id), "%s", p->mime.message_id);
    else
        sb_mime_fallback_id(raw, len, p->ext_id); /* no Message-ID: the bytes' SHA-256 */
    if (p->rc == 0 && p->mime.n_attachments) {
        p->attachments = json_array();
        for (size_t i = 0; i < p->mime.n_attachments; i++) {
            sb_mime_attachment_t *a = &p->mime.attachments[i];
            json_t *entry = NULL;
            int rc = sb_attach_store(b->em->data_dir, b->em->attach_max, a->name, a->type, a->data,
                                     a->size, &entry);
            if (rc) {
                /* the disk refused it: listed as not stored (the mail stays in the mailbox) */
                p->attach_rc = rc;
                entry = json_pack("{s:s, s:s, s:I, s:b, s:s}", "name", a->name, "type", a->type,
                                  "size", (json_int_t)a->size, "stored", 0, "error",
                                  "could not be written under data_dir");
            }
            json_array_append_new(p->attachments, entry);
            sb_free(a->data); /* kept on disk: the bytes are not needed on the loop */
            a->data = NULL;
        }
    }
    return p;
}

static void free_parsed(void *parsed, void *data)
{
    (void)data;
    em_parsed_t *p = parsed;
    if (!p)
        return;
    if (p->rc == 0)
        sb_mime_free(&p->mime);
    sb_rcpt_free(&p->rcpt);
    json_decref(p->attachments);
    sb_free(p);
}

/* ---- The line ----
 * Every store call counts in em->pending; its callback does its work only when sb__em_in_proceed()
 * says so, and ends with sb__em_unref (which may free the connector, b with it). */

static void next(em_box_t *b);
static void step_dedup(em_box_t *b);

static bool transient(int status)
{
    return status == SB_ETIMEDOUT || status == SB_EDISCONNECTED || status == SB_EREDIS ||
           status == SB_EUNAVAILABLE || status == SB_EIO || status == SB_ENOMEM;
}

static void on_retry(uv_timer_t *t)
{
    em_box_t *b = t->data;
    if (!b->em->stopping && b->head && !b->busy) {
        b->busy = true;
        step_dedup(b);
    }
}

/* The store is away: the same message again later (backoff 250 ms doubling to 30 s). */
static void retry_later(em_box_t *b, int status, const char *step, const char *errmsg)
{
    b->retry_ms = b->retry_ms ? b->retry_ms * 2 : RETRY_MIN_MS;
    if (b->retry_ms > RETRY_MAX_MS)
        b->retry_ms = RETRY_MAX_MS;
    SB_LOG_WARN("email.in.retry", "mailbox=%s uid=%u step=%s err=%s reason=\"%s\" in_ms=%u",
                b->name, b->head->uid, step, sb_err_name(status), errmsg ? errmsg : "",
                b->retry_ms);
    b->busy = false;
    b->head->conv[0] = b->head->contact[0] = b->head->msg[0] = '\0';
    b->head->tried_without_conv = false;
    b->head->cross = false;
    b->head->cont_next = 0;
    if (!b->em->stopping)
        uv_timer_start(b->retry, on_retry, b->retry_ms, 0);
}

void sb__em_in_reject(em_box_t *b, const char *why)
{
    em_in_t *it = b->head;
    b->rejected++;
    SB_LOG_WARN("email.in.rejected", "mailbox=%s uid=%u message_id=\"%s\" reason=\"%s\"", b->name,
                it->uid, it->p ? it->p->ext_id : "", why);
    sb__em_in_finish(b);
}

/* May the callback of step go on? Not when stopping or when the store is away. */
bool sb__em_in_proceed(em_box_t *b, int status, const char *step, const char *errmsg)
{
    if (b->em->stopping) {
        b->busy = false;
        return false;
    }
    if (status && transient(status)) {
        retry_later(b, status, step, errmsg);
        return false;
    }
    return true;
}

/* A store call that failed before being sent: as if its callback had the error. */
void sb__em_in_call_failed(em_box_t *b, int rc, const char *step)
{
    b->em->pending--;
    if (transient(rc))
        retry_later(b, rc, step, sb_strerror(rc));
    else
        sb__em_in_reject(b, sb_strerror(rc));
}

/* The parsed message is the session's (it frees it at sb_imap_done or when it stops). */
static void in_free(em_in_t *it, em_box_t *b)
{
    (void)b;
    sb_free(it);
}

/* The UID state is saved: the worker may go on, and the next message is taken. */
static void on_cursor(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    em_box_t *b = data;
    if (sb__em_in_proceed(b, status, "cursor", errmsg)) {
        if (status)
            SB_LOG_WARN("email.in.cursor", "mailbox=%s err=%s", b->name, sb_err_name(status));
        em_in_t *it = b->head;
        b->head = it->next;
        if (!b->head)
            b->tail = NULL;
        if (b->imap)
            sb_imap_done(b->imap, it->uid, 0);
        in_free(it, b);
        b->busy = false;
        b->retry_ms = 0;
        next(b);
    }
    sb__em_unref(b->em);
}

/* The head is done with (stored, a duplicate, or refused for good): save the UID state. */
void sb__em_in_finish(em_box_t *b)
{
    em_in_t *it = b->head;
    char v[16], u[16], name[128];
    snprintf(v, sizeof(v), "%u", it->uidvalidity);
    snprintf(u, sizeof(u), "%u", it->uid);
    snprintf(name, sizeof(name), "email:%s", b->name);
    json_t *f = json_pack("{s:s,s:s}", "uidvalidity", v, "last_uid", u);
    b->em->pending++;
    int rc = sb_store_cursor_set(b->em->env.store, name, f, on_cursor, b);
    json_decref(f);
    if (rc) {
        b->em->pending--;
        retry_later(b, SB_EUNAVAILABLE, "cursor", sb_strerror(rc));
    }
}

/* ---- link ← ingest ← thread ← contact ← bounce ← dedup ---- */

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    em_box_t *b = data;
    if (sb__em_in_proceed(b, status, "link", errmsg)) {
        if (status)
            SB_LOG_WARN("email.in.link", "mailbox=%s err=%s", b->name, sb_err_name(status));
        sb__em_in_finish(b);
    }
    sb__em_unref(b->em);
}

void sb__em_in_link(em_box_t *b)
{
    em_in_t *it = b->head;
    const char *ids[] = {it->p->ext_id};
    b->em->pending++;
    int rc = sb_store_thread_link(b->em->env.store, it->conv, it->msg[0] ? it->msg : NULL, ids, 1,
                                  on_linked, b);
    if (rc)
        sb__em_in_call_failed(b, rc, "link");
}

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    if (!sb__em_in_proceed(b, status, "ingest", errmsg)) {
    } else if (status == SB_ECONFLICT && it->conv[0] && !it->tried_without_conv) {
        /* the conversation found is no longer this contact's: a new one */
        it->tried_without_conv = true;
        it->conv[0] = '\0';
        it->cross = false;
        sb__em_in_ingest(b);
    } else if (status) {
        sb__em_in_reject(b, errmsg && *errmsg ? errmsg : sb_strerror(status));
    } else {
        json_t *m = json_object_get(result, "message"),
               *c = json_object_get(result, "conversation");
        const char *mid = json_string_value(json_object_get(m, "id"));
        const char *cid = json_string_value(json_object_get(c, "id"));
        if (!cid)
            cid = json_string_value(json_object_get(m, "conv"));
        snprintf(it->msg, sizeof(it->msg), "%s", mid ? mid : "");
        snprintf(it->conv, sizeof(it->conv), "%s", cid ? cid : "");
        if (json_is_true(json_object_get(result, "duplicate")))
            b->duplicates++;
        else
            b->stored++;
        b->em->env.msgs_in[SB_CHANNEL_email]++;
        SB_LOG_DEBUG("email.in.stored", "mailbox=%s uid=%u conv=%s msg=%s auto=%d", b->name,
                     it->uid, it->conv, it->msg, sb_mime_is_automatic(&it->p->mime));
        if (it->conv[0])
            sb__em_in_link(b);
        else
            sb__em_in_finish(b);
    }
    sb__em_unref(b->em);
}

void sb__em_in_ingest(em_box_t *b)
{
    em_in_t *it = b->head;
    const sb_mime_msg_t *m = &it->p->mime;
    json_t *ext = json_pack("{s:s,s:s}", "mailbox", b->name, "from", m->from_addr);
    if (m->message_id[0])
        json_object_set_new(ext, "message_id", json_string(m->message_id));
    if (m->in_reply_to[0])
        json_object_set_new(ext, "in_reply_to", json_string(m->in_reply_to));
    if (m->n_references) {
        json_t *r = json_array();
        size_t from = m->n_references > MAX_REFS ? m->n_references - MAX_REFS : 0;
        for (size_t i = from; i < m->n_references; i++)
            json_array_append_new(r, json_string(m->references[i]));
        json_object_set_new(ext, "references", r);
    }
    if (m->quoted[0])
        json_object_set_new(ext, "quoted", json_string(m->quoted));
    if (m->date[0])
        json_object_set_new(ext, "date", json_string(m->date));
    const char *text = m->text;
    if (!text[0])
        text = it->p->attachments ? "(attachments only)" : "(no text)";
    sb_ingest_t in = {
        .channel = SB__EM_CHANNEL,
        .contact_id = it->contact,
        .contact_name = m->from_name[0] ? m->from_name : NULL,
        .conv = it->conv[0] ? it->conv : NULL,
        .text = text,
        .subject = m->subject[0] ? m->subject : NULL,
        .external_id = it->p->ext_id,
        .attachments = it->p->attachments,
        .ext = ext,
        .automatic = sb_mime_is_automatic(m),
        .cross_channel = it->cross,
        .new_conversation = !it->conv[0],
    };
    if (in.automatic)
        b->automatic++;
    b->em->pending++;
    int rc = sb_store_ingest(b->em->env.store, &in, on_ingested, b);
    json_decref(ext);
    if (rc)
        sb__em_in_call_failed(b, rc, "ingest");
}

static void on_threaded(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    if (sb__em_in_proceed(b, status, "thread", errmsg)) {
        em_in_t *it = b->head;
        const char *cid = json_string_value(json_object_get(result, "conv"));
        json_int_t rejected = json_integer_value(json_object_get(result, "rejected"));
        snprintf(it->conv, sizeof(it->conv), "%s", status == 0 && cid ? cid : "");
        if (!it->conv[0] && rejected) {
            SB_LOG_DEBUG("email.in.thread",
                         "mailbox=%s uid=%u from=%s rejected=%lld: another contact's, or a chat",
                         b->name, it->uid, it->p->mime.from_addr, (long long)rejected);
            it->cont_next = 0;
            sb__em_in_continue(b);
        } else {
            sb__em_in_ingest(b);
        }
    }
    sb__em_unref(b->em);
}

/* The conversation id a subject's "[#tag]" names, looked up through the link map. */
static bool subject_tag(const char *subject, char *out, size_t cap)
{
    const char *p = strstr(subject, "[#");
    if (!p)
        return false;
    p += 2;
    size_t n = strspn(p, "0123456789abcdefghjkmnpqrstvwxyz");
    if (n != SB__EM_TAG_LEN || p[n] != ']')
        return false;
    snprintf(out, cap, "tag:%.*s", (int)n, p);
    return true;
}

static void step_thread(em_box_t *b)
{
    em_in_t *it = b->head;
    const sb_mime_msg_t *m = &it->p->mime;
    const char *refs[MAX_REFS + 2];
    size_t n = 0;
    char tag[32];
    if (m->in_reply_to[0])
        refs[n++] = m->in_reply_to;
    for (size_t i = m->n_references; i > 0 && n < MAX_REFS; i--)
        refs[n++] = m->references[i - 1];
    if (subject_tag(m->subject, tag, sizeof(tag)))
        refs[n++] = tag;
    const char *convs[] = {it->hint};
    b->em->pending++;
    int rc = sb_store_thread_find(b->em->env.store, SB__EM_CHANNEL, it->contact, refs, n, convs,
                                  it->hint[0] ? 1 : 0, on_threaded, b);
    if (rc)
        sb__em_in_call_failed(b, rc, "thread");
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    if (!sb__em_in_proceed(b, status, "contact", errmsg)) {
    } else if (status || !json_string_value(json_object_get(result, "id"))) {
        sb__em_in_reject(b, errmsg && *errmsg ? errmsg : "the sender's contact could not be made");
    } else {
        snprintf(b->head->contact, sizeof(b->head->contact), "%s",
                 json_string_value(json_object_get(result, "id")));
        step_thread(b);
    }
    sb__em_unref(b->em);
}

void sb__em_in_contact(em_box_t *b)
{
    const sb_mime_msg_t *m = &b->head->p->mime;
    char addr[SB_MAX_EMAIL + 1];
    size_t n = strlen(m->from_addr);
    if (n == 0 || n > SB_MAX_EMAIL || !strchr(m->from_addr, '@')) {
        sb__em_in_reject(b, "no usable From address");
        return;
    }
    for (size_t i = 0; i <= n; i++)
        addr[i] = (char)tolower((unsigned char)m->from_addr[i]);
    b->em->pending++;
    int rc = sb_store_contact_resolve(b->em->env.store, "email", addr,
                                      m->from_name[0] ? m->from_name : NULL, m->from_addr,
                                      on_contact, b);
    if (rc)
        sb__em_in_call_failed(b, rc, "contact");
}

/* A bounce of one of our mails: a delivery_failed on the message it bounced from, and the
 * address flagged on its contact. */
static void on_dedup(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    em_in_t *it = b->head;
    if (!sb__em_in_proceed(b, status, "dedup", errmsg)) {
    } else if (status == 0 && json_string_value(json_object_get(result, "msg"))) {
        b->duplicates++;
        SB_LOG_DEBUG("email.in.duplicate", "mailbox=%s uid=%u message_id=\"%s\"", b->name, it->uid,
                     it->p->ext_id);
        sb__em_in_finish(b);
    } else if (sb__em_in_staff_address(b, it)) {
        sb__em_in_staff(b);
    } else if (sb_mime_is_permanent_bounce(&it->p->mime) && it->p->mime.bounce_message_id[0]) {
        sb__em_in_bounce(b);
    } else {
        sb__em_in_contact(b);
    }
    sb__em_unref(b->em);
}

/* First: was this Message-ID stored already (a restart, a copy in another folder, a new
 * UIDVALIDITY)? The link map keeps every id we stored, without expiry. */
static void step_dedup(em_box_t *b)
{
    em_in_t *it = b->head;
    if (!it->p) {
        char why[96];
        snprintf(why, sizeof(why), "%zu bytes: over the %u byte limit, not fetched", it->size,
                 (unsigned)SB_MIME_MAX_INPUT);
        sb__em_in_reject(b, why);
        return;
    }
    if (it->p->rc) {
        sb__em_in_reject(b, "not a MIME message");
        return;
    }
    if (it->p->attach_rc)
        SB_LOG_WARN("email.in.attachment",
                    "mailbox=%s uid=%u err=%s reason=\"an attachment could "
                    "not be written under data_dir: listed as not stored\"",
                    b->name, it->uid, sb_err_name(it->p->attach_rc));
    b->em->pending++;
    int rc = sb_store_thread_get(b->em->env.store, it->p->ext_id, on_dedup, b);
    if (rc)
        sb__em_in_call_failed(b, rc, "dedup");
}

static void next(em_box_t *b)
{
    if (b->busy || !b->head || b->em->stopping)
        return;
    b->busy = true;
    step_dedup(b);
}

/* ---- The IMAP session ---- */

static void on_message(sb_imap_t *m, uint32_t uidvalidity, uint32_t uid, const char *raw,
                       size_t len, void *parsed, void *data)
{
    (void)m, (void)raw;
    em_box_t *b = data;
    em_in_t *it = SB_NEW(em_in_t);
    it->uidvalidity = uidvalidity;
    it->uid = uid;
    it->size = len;
    it->p = parsed;
    b->received++;
    if (b->tail)
        b->tail->next = it;
    else
        b->head = it;
    b->tail = it;
    next(b);
}

static void on_status(sb_imap_t *m, int status, const char *reason, void *data)
{
    (void)m;
    em_box_t *b = data;
    b->status = status;
    snprintf(b->reason, sizeof(b->reason), "%s", reason ? reason : "");
    /* the session logs its own changes (imap.status, imap.error, imap.uidvalidity) */
}

static void start_session(em_box_t *b, uint32_t uidvalidity, uint32_t last_uid)
{
    sb_imap_opts_t o = {.name = b->name,
                        .url = b->imap_url,
                        .password = b->password,
                        .tls_ca = b->em->tls_ca,
                        .uidvalidity = uidvalidity,
                        .last_uid = last_uid};
    sb_imap_cbs_t cbs = {.parse = parse,
                         .free_parsed = free_parsed,
                         .on_message = on_message,
                         .on_status = on_status};
    int rc = sb_imap_start(b->em->env.loop, &o, &cbs, b, &b->imap);
    if (rc) {
        SB_LOG_ERROR("email.imap", "mailbox=%s err=%s", b->name, sb_err_name(rc));
        return;
    }
    b->em->imap_running++;
    SB_LOG_INFO("email.imap", "mailbox=%s uidvalidity=%u last_uid=%u", b->name, uidvalidity,
                last_uid);
}

static void load_cursor(em_box_t *b);

static void on_cursor_retry(uv_timer_t *t)
{
    load_cursor(t->data);
}

static uint32_t field_u32(json_t *o, const char *name)
{
    const char *s = json_string_value(json_object_get(o, name));
    return s ? (uint32_t)strtoul(s, NULL, 10) : 0;
}

static void on_cursor_loaded(int status, json_t *result, const char *errmsg, void *data)
{
    em_box_t *b = data;
    if (b->em->stopping) {
    } else if (status) {
        SB_LOG_WARN("email.in.state", "mailbox=%s err=%s reason=\"%s\" (retrying)", b->name,
                    sb_err_name(status), errmsg ? errmsg : "");
        uv_timer_start(b->retry, on_cursor_retry, 1000, 0);
    } else {
        start_session(b, field_u32(result, "uidvalidity"), field_u32(result, "last_uid"));
    }
    sb__em_unref(b->em);
}

static void load_cursor(em_box_t *b)
{
    char name[128];
    snprintf(name, sizeof(name), "email:%s", b->name);
    b->em->pending++;
    int rc = sb_store_cursor_get(b->em->env.store, name, on_cursor_loaded, b);
    if (rc) {
        b->em->pending--;
        uv_timer_start(b->retry, on_cursor_retry, 1000, 0);
    }
}

int sb__em_in_start(em_box_t *b)
{
    b->retry = SB_NEW(uv_timer_t);
    uv_timer_init(b->em->env.loop, b->retry);
    b->retry->data = b;
    b->em->timers++;
    load_cursor(b);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    em_box_t *b = h->data;
    sb_free(h);
    b->em->timers--;
    sb__em_maybe_free(b->em);
}

void sb__em_in_close(em_box_t *b)
{
    if (b->retry) {
        uv_close((uv_handle_t *)b->retry, on_timer_closed);
        b->retry = NULL;
    }
}

void sb__em_in_dispose(em_box_t *b)
{
    for (em_in_t *it = b->head, *nx; it; it = nx) {
        nx = it->next;
        in_free(it, b);
    }
    b->head = b->tail = NULL;
}

/* SPDX-License-Identifier: MIT */
/*
 * Staff notification mail (docs/email.md, "Staff by email"). The connector follows the
 * event feed from where it left off (its cursor is kept in Redis, so a restart misses
 * nothing the events streams still hold): a new conversation is mailed to every staff
 * member whose preference is `new`, an assignment to the assignee when it is `new` or
 * `assigned` (sbctl staff notify): a claim, or POST …/assign handing it to them. Each mail's
 * Reply-To is that member's signed reply address for the conversation, so answering it answers the
 * customer (inbound.c checks it). Of several nodes, one sends each mail (a once-only marker per
 * conversation, member and event). Sent directly, not through the outbox: a notification is retried
 * three times over about a minute and then dropped with a logged reason.
 */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "connectors/email/compose.h"
#include "connectors/email/mime.h"
#include "connectors/email/notify.h"
#include "connectors/email/smtp.h"
#include "connectors/email/staffaddr.h"
#include "connectors/email/state.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla_targets.h"

#define STAFF_TTL_MS                                                                               \
    250 /* the staff list is read again after this (preference changes count at once) */
#define ONCE_TTL_S     604800 /* a week: longer than any events stream keeps an event */
#define CURSOR_SAVE_MS 2000
#define SEND_ATTEMPTS  3
#define TEXT_IN_MAIL   4000 /* bytes of the customer's text quoted in the mail */

static void note_free(em_note_t *n)
{
    em_t *em = n->em;
    if (n->prev)
        n->prev->next = n->next;
    else if (em->notes == n)
        em->notes = n->next;
    if (n->next)
        n->next->prev = n->prev;
    sb_free(n->to);
    sb_free(n->subject);
    sb_free(n->text);
    sb_free(n->who);
    sb_free(n->mailbox);
    sb_free(n->mail);
    json_decref(n->sla);
    sb_free(n);
}

static void on_note_timer_closed(uv_handle_t *h)
{
    em_note_t *n = h->data;
    em_t *em = n->em;
    note_free(n);
    em->timers--;
    sb__em_maybe_free(em);
}

void sb__em_note_end(em_note_t *n)
{
    uv_close((uv_handle_t *)n->timer, on_note_timer_closed);
}

static void on_note_retry(uv_timer_t *t)
{
    sb__em_note_send(t->data);
}

static void on_note_sent(const sb_httpc_response_t *res, void *data)
{
    em_note_t *n = data;
    sb_outcome_t oc;
    char idbuf[SB_EMAIL_QUEUE_ID_MAX];
    sb_email_smtp_outcome(res, NULL, &oc, idbuf);
    if (oc.kind == SB_OUTCOME_OK) {
        SB_LOG_INFO("email.notify.sent", "conv=%s staff=%s event=%s to=%s", n->cid, n->sid,
                    n->event, n->to);
        sb__em_note_end(n);
    } else if (n->em->stopping || oc.kind == SB_OUTCOME_PERMANENT || n->attempts >= SEND_ATTEMPTS) {
        SB_LOG_WARN("email.notify.failed", "conv=%s staff=%s to=%s attempts=%u reason=\"%s\"",
                    n->cid, n->sid, n->to, n->attempts, oc.reason ? oc.reason : "");
        sb__em_note_end(n);
    } else {
        uv_timer_start(n->timer, on_note_retry, n->attempts == 1 ? 5000 : 30000, 0);
    }
    sb__em_unref(n->em);
}

void sb__em_note_send(em_note_t *n)
{
    em_box_t *b = sb__em_box(n->em, n->mailbox);
    const char *rcpt[] = {n->to, NULL};
    const char *from = n->em->notify_from ? n->em->notify_from : b->address;
    sb_httpc_mail_t m = {.url = b->smtp_bare,
                         .username = b->smtp_user,
                         .password = b->smtp_pass,
                         .ca_file = n->em->tls_ca,
                         .mail_from = from,
                         .rcpt = rcpt,
                         .message = n->mail,
                         .message_len = n->mail_len,
                         .timeout_ms = 60000};
    n->attempts++;
    n->em->pending++;
    int rc = sb_email_smtp_send(n->em->smtp, &m, on_note_sent, n);
    if (rc) {
        n->em->pending--;
        SB_LOG_WARN("email.notify.failed", "conv=%s staff=%s err=%s", n->cid, n->sid,
                    sb_err_name(rc));
        sb__em_note_end(n);
    }
}

bool sb__em_note_compose(em_note_t *n, const char *staff_name, const char *subject,
                         const char *text)
{
    em_box_t *b = sb__em_box(n->em, n->mailbox);
    char reply_to[256], mid[200];
    if (sb_staffaddr_make(n->em->secret, n->em->secret_len, b->address, n->cid, n->sid, reply_to,
                          sizeof(reply_to)) != 0) {
        SB_LOG_WARN("email.notify",
                    "mailbox=%s err=\"no reply address fits (local part too long)\"", b->name);
        return false;
    }
    snprintf(mid, sizeof(mid), "notify.%s.%s.%s", n->cid, n->sid, n->event);
    sb_email_compose_t mo = {.from_addr = n->em->notify_from ? n->em->notify_from : b->address,
                             .from_name = "Switchboard",
                             .to_addr = n->to,
                             .to_name = staff_name,
                             .reply_to = reply_to,
                             .subject = subject,
                             .msg_id = mid,
                             .domain = b->domain,
                             .date_ms = sb_now_ms(),
                             .automatic = SB_EMAIL_AUTO_GENERATED,
                             .conversation = n->cid,
                             .text = text};
    int rc = sb_email_compose(&mo, &n->mail, &n->mail_len);
    if (rc)
        SB_LOG_WARN("email.notify", "conv=%s staff=%s err=\"the mail could not be written\"",
                    n->cid, n->sid);
    return rc == 0;
}

/* Writes the mail of a new conversation or an assignment; false when it can't be. */
static bool compose_note(em_note_t *n, const char *staff_name)
{
    char tag[SB__EM_TAG_LEN + 1];
    sb__em_tag(n->cid, tag);
    char *subject = sb_asprintf("%s %s [#%s]", n->assigned ? "Assigned to you:" : "New:",
                                n->subject && *n->subject ? n->subject : "(no subject)", tag);
    char *text = sb_asprintf(
        "%s%s wrote:\n\n%.*s%s\n\n-- \nReply to this mail to answer %s (your reply goes to them "
        "as your answer, without the quoted part).\nOpen it in the console: %s/console#/c/%s\n",
        n->assigned ? "A conversation was assigned to you. " : "", n->who ? n->who : "A customer",
        TEXT_IN_MAIL, n->text ? n->text : "", n->text && strlen(n->text) > TEXT_IN_MAIL ? "…" : "",
        n->who ? n->who : "them", n->em->public_url, n->cid);
    bool ok = sb__em_note_compose(n, staff_name, subject, text);
    sb_free(subject);
    sb_free(text);
    return ok;
}

typedef struct once_job {
    em_note_t *n;
    char *staff_name;
} once_job_t;

/* The first n bytes of s at most, cut on a character, "..." added when cut (sb_free). */
static char *cut(const char *s, size_t n)
{
    size_t len = strlen(s);
    if (len <= n)
        return sb_strdup(s);
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return sb_asprintf("%.*s...", (int)n, s);
}

/* The conversation's subject and customer for the mail, then it is written and sent. */
static void on_note_conv(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    once_job_t *j = data;
    em_note_t *n = j->n;
    em_t *em = n->em;
    if (!em->stopping && status == 0) {
        const char *subject = json_string_value(json_object_get(result, "subject"));
        const char *who =
            json_string_value(json_object_get(json_object_get(result, "contact"), "name"));
        n->subject = cut(subject && *subject ? subject : n->text ? n->text : "", 80);
        n->who = who && *who ? sb_strdup(who) : NULL;
        if (n->sla) {
            sb__em_sla_conv(n, result, j->staff_name);
            sb_free(j);
            sb__em_unref(em);
            return;
        }
        if (compose_note(n, j->staff_name))
            sb__em_note_send(n);
        else
            sb__em_note_end(n);
    } else {
        sb__em_note_end(n);
    }
    sb_free(j->staff_name);
    sb_free(j);
    sb__em_unref(em);
}

static void on_once(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    once_job_t *j = data;
    em_note_t *n = j->n;
    em_t *em = n->em;
    if (!em->stopping && status == 0 && json_is_false(json_object_get(result, "first")))
        SB_LOG_INFO("email.notify.skip",
                    "conv=%s staff=%s event=%s reason=\"another node sends it\"", n->cid, n->sid,
                    n->event);
    if (!em->stopping && status == 0 && json_is_true(json_object_get(result, "first"))) {
        em->pending++;
        if (sb_store_get(em->env.store, n->cid, on_note_conv, j) == 0) {
            sb__em_unref(em);
            return;
        }
        em->pending--;
    }
    sb__em_note_end(n);
    sb_free(j->staff_name);
    sb_free(j);
    sb__em_unref(em);
}

/* One mail to one staff member about one event, if no node sent it already. */
void sb__em_notify_one(em_t *em, const json_t *staff, const json_t *ev, bool assigned, bool sla)
{
    const char *sid = json_string_value(json_object_get(staff, "id"));
    const char *to = json_string_value(json_object_get(staff, "email"));
    json_t *m = json_object_get(ev, "message");
    const char *cid = json_string_value(json_object_get(ev, "conv"));
    const char *seq = json_string_value(json_object_get(m, "seq"));
    if (!sid || !to || !*to || !cid || !seq)
        return;
    em_note_t *n = SB_NEW(em_note_t);
    n->em = em;
    snprintf(n->cid, sizeof(n->cid), "%s", cid);
    snprintf(n->sid, sizeof(n->sid), "%s", sid);
    snprintf(n->event, sizeof(n->event), "%s", seq);
    n->to = sb_strdup(to);
    n->assigned = assigned;
    n->sla = sla ? json_incref(m) : NULL;
    const char *text = json_string_value(json_object_get(m, "text"));
    const char *box = json_string_value(json_object_get(json_object_get(m, "ext"), "mailbox"));
    n->text = text ? sb_strdup(text) : NULL;
    n->mailbox = box ? sb_strdup(box) : NULL;
    n->timer = SB_NEW(uv_timer_t);
    uv_timer_init(em->env.loop, n->timer);
    n->timer->data = n;
    em->timers++;
    n->next = em->notes;
    if (em->notes)
        em->notes->prev = n;
    em->notes = n;
    char name[160];
    snprintf(name, sizeof(name), "notify:%s:%s:%s", sid, cid, seq);
    once_job_t *j = SB_NEW(once_job_t);
    j->n = n;
    const char *sname = json_string_value(json_object_get(staff, "name"));
    j->staff_name = sname ? sb_strdup(sname) : NULL;
    em->pending++;
    if (sb_store_once(em->env.store, name, ONCE_TTL_S, on_once, j) != 0) {
        em->pending--;
        sb_free(j->staff_name);
        sb_free(j);
        sb__em_note_end(n);
    }
}

/* What an event asks of the staff list: a new conversation (its first customer message)
 * or an assignment. */
static void dispatch(em_t *em, const json_t *ev)
{
    json_t *m = json_object_get(ev, "message");
    const char *kind = json_string_value(json_object_get(m, "kind"));
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!kind || !json_string_value(json_object_get(ev, "conv")))
        return;
    /* on_event marked a new conversation's first customer message */
    bool created = json_is_true(json_object_get(ev, "first")) && strcmp(kind, "message") == 0 &&
                   !json_is_true(json_object_get(m, "auto"));
    const char *assignee = json_string_value(json_object_get(m, "assignee"));
    bool claimed = strcmp(kind, "event") == 0 && type && strcmp(type, "claimed") == 0 && assignee;
    if (!claimed && strcmp(kind, "event") == 0 && type && strcmp(type, "assigned") == 0) {
        /* POST …/assign: the new assignee, unless they assigned it to themselves */
        assignee = json_string_value(json_object_get(m, "to"));
        const char *by = json_string_value(json_object_get(m, "by"));
        claimed = assignee && !(by && strcmp(by, assignee) == 0);
    }
    if (!created && !claimed)
        return;
    json_t *staff = json_object_get(em->staff, "staff");
    for (size_t i = 0; i < json_array_size(staff); i++) {
        json_t *s = json_array_get(staff, i);
        const char *pref = json_string_value(json_object_get(s, "notify"));
        const char *sid = json_string_value(json_object_get(s, "id"));
        if (!pref || !sid)
            continue;
        if (created && strcmp(pref, "new") == 0)
            sb__em_notify_one(em, s, ev, false, false);
        else if (claimed && strcmp(sid, assignee) == 0)
            sb__em_notify_one(em, s, ev, true, false);
    }
}

/* Events wait here while the staff list is read (at most every STAFF_TTL_MS). */
static void drain(em_t *em)
{
    while (em->ev_head) {
        em_ev_t *e = em->ev_head;
        em->ev_head = e->next;
        if (!em->ev_head)
            em->ev_tail = NULL;
        dispatch(em, e->json);
        json_decref(e->json);
        sb_free(e);
    }
}

static void on_staff(int status, json_t *result, const char *errmsg, void *data)
{
    em_t *em = data;
    em->staff_loading = false;
    if (!em->stopping) {
        if (status) {
            SB_LOG_WARN("email.notify", "staff list err=%s reason=\"%s\"", sb_err_name(status),
                        errmsg ? errmsg : "");
        } else {
            json_decref(em->staff);
            em->staff = json_incref(result);
            em->staff_at = sb_now_ms();
        }
        drain(em);
    }
    sb__em_unref(em);
}

/* Is cid a conversation whose created event was just seen? (then forgotten) */
static bool take_created(em_t *em, const char *cid)
{
    for (size_t i = 0; i < SB__EM_CREATED; i++)
        if (strcmp(em->created[i], cid) == 0) {
            em->created[i][0] = '\0';
            return true;
        }
    return false;
}

/*
 * Every event of every conversation passes here (web chat at full speed too), so most are
 * let go on a substring test, without parsing: only a conversation's creation and its
 * first customer message, an assignment, and a staff answer in a web chat matter.
 */
static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    (void)sub;
    em_t *em = data;
    snprintf(em->cursor, em->cursor_cap, "%s", ev->cursor);
    em->cursor_dirty = true;
    const char *js = ev->json;
    bool first = strstr(js, "\"dir\":\"in\"") && take_created(em, ev->conv);
    bool marked = strstr(js, "\"created\"") || strstr(js, "\"claimed\"") ||
                  strstr(js, "\"assigned\"") || strstr(js, "\"sla_") || strstr(js, "\"escalated\"");
    bool answer = strstr(js, "\"dir\":\"out\"") && strstr(js, "\"channel\":\"webchat\"");
    if (!first && !marked && !answer)
        return;
    json_t *j = json_loadb(ev->json, ev->json_len, 0, NULL);
    if (!j)
        return;
    json_t *m = json_object_get(j, "message");
    const char *kind = json_string_value(json_object_get(m, "kind"));
    const char *type = json_string_value(json_object_get(m, "type"));
    bool event = kind && strcmp(kind, "event") == 0 && type;
    if (event && sb_sla_event_type(type)) {
        sb__em_notify_sla_event(em, j); /* notify_sla.c */
        return;
    }
    if (answer)
        sb__em_followup_event(em, j);
    if (event && strcmp(type, "created") == 0) /* its first message follows: remember it */
        snprintf(em->created[em->created_next++ % SB__EM_CREATED], SB_ID_MAX, "%s", ev->conv);
    if (first)
        json_object_set_new(j, "first", json_true());
    if (!first && !(event && (strcmp(type, "claimed") == 0 || strcmp(type, "assigned") == 0))) {
        json_decref(j);
        return; /* nothing for the staff list */
    }
    em_ev_t *e = SB_NEW(em_ev_t);
    e->json = j;
    if (em->ev_tail)
        em->ev_tail->next = e;
    else
        em->ev_head = e;
    em->ev_tail = e;
    if (em->staff && sb_now_ms() - em->staff_at < STAFF_TTL_MS) {
        drain(em);
    } else if (!em->staff_loading) {
        em->staff_loading = true;
        em->pending++;
        if (sb_store_notify_list(em->env.store, on_staff, em) != 0) {
            em->pending--;
            em->staff_loading = false;
            drain(em);
        }
    }
}

static void on_sub_failed(sb_events_sub_t *sub, int status, void *data)
{
    (void)sub;
    em_t *em = data;
    SB_LOG_WARN("email.notify", "events err=%s (notifications stop until restart)",
                sb_err_name(status));
    em->sub = NULL;
}

static void on_cursor_saved(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result, (void)errmsg, (void)status;
    sb__em_unref(data);
}

static void on_save_timer(uv_timer_t *t)
{
    em_t *em = t->data;
    if (!em->cursor_dirty || em->stopping)
        return;
    em->cursor_dirty = false;
    json_t *f = json_pack("{s:s}", "events", em->cursor);
    em->pending++;
    if (sb_store_cursor_set(em->env.store, "email:notify", f, on_cursor_saved, em) != 0)
        em->pending--;
    json_decref(f);
}

static void subscribe(em_t *em, const char *cursor)
{
    int rc = sb_events_subscribe(em->env.events, cursor && *cursor ? cursor : NULL, on_event,
                                 on_sub_failed, em, &em->sub);
    if (rc && cursor && *cursor) /* a cursor the streams no longer hold: from now */
        rc = sb_events_subscribe(em->env.events, NULL, on_event, on_sub_failed, em, &em->sub);
    if (rc)
        SB_LOG_WARN("email.notify", "subscribe err=%s", sb_err_name(rc));
}

static void on_cursor_loaded(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    em_t *em = data;
    if (!em->stopping)
        subscribe(em, status ? NULL : json_string_value(json_object_get(result, "events")));
    sb__em_unref(em);
}

int sb__em_notify_start(em_t *em)
{
    em->cursor_cap = sb_events_cursor_size(em->env.events);
    em->cursor = sb_calloc(1, em->cursor_cap);
    em->save_timer = SB_NEW(uv_timer_t);
    uv_timer_init(em->env.loop, em->save_timer);
    em->save_timer->data = em;
    em->timers++;
    uv_timer_start(em->save_timer, on_save_timer, CURSOR_SAVE_MS, CURSOR_SAVE_MS);
    em->pending++;
    if (sb_store_cursor_get(em->env.store, "email:notify", on_cursor_loaded, em) != 0) {
        em->pending--;
        subscribe(em, NULL);
    }
    return 0;
}

static void on_save_timer_closed(uv_handle_t *h)
{
    em_t *em = h->data;
    sb_free(h);
    em->timers--;
    sb__em_maybe_free(em);
}

void sb__em_notify_stop(em_t *em)
{
    sb_events_unsubscribe(em->sub);
    em->sub = NULL;
    if (em->save_timer) {
        uv_close((uv_handle_t *)em->save_timer, on_save_timer_closed);
        em->save_timer = NULL;
    }
    for (em_note_t *n = em->notes; n; n = n->next)
        if (!uv_is_closing((uv_handle_t *)n->timer) && !uv_is_active((uv_handle_t *)n->timer))
            ; /* waiting on a send or the once marker: ends when it comes back */
        else if (!uv_is_closing((uv_handle_t *)n->timer))
            sb__em_note_end(n); /* waiting to retry: drop */
    while (em->ev_head) {
        em_ev_t *e = em->ev_head;
        em->ev_head = e->next;
        json_decref(e->json);
        sb_free(e);
    }
    em->ev_tail = NULL;
}

void sb__em_notify_dispose(em_t *em)
{
    json_decref(em->staff);
    sb_free(em->cursor);
}

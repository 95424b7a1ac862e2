/* SPDX-License-Identifier: MIT */
/*
 * The visitor's frames (switchboard.visitor.v1, docs/contract.md §5): parsing and the per-type
 * limits, then message, email, typing, history and ping.
 *
 * - message: ingested with the frame's client_id (1-128 printable ASCII characters) as
 *   idempotency key; the ack is sent only once Redis has the message, and a repeated
 *   client_id gets the same ack. Every refusal is an error frame carrying the client_id.
 *   An anonymous visitor's contact (and its token's handle) is created here, on the
 *   first message, not at hello.
 * - email: saved on the contact, with a note in the conversation.
 * - history: {"before","after","limit"} -> {"type":"history","messages":[…],"more",
 *   "before"}: older pages of the transcript (the welcome carries only the newest).
 * Limits (webchat.c has the rates): message, email, hello and history are answered with
 * rate_limited and retry_after_ms; typing, ping and bad frames past theirs are dropped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webchat/internal.h"
#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/log.h"

bool sb__webchat_seq_ok(const char *s)
{
    size_t n = strlen(s), digits = strspn(s, "0123456789");
    if (n == 0 || n > 42 || digits == 0)
        return false;
    if (digits == n)
        return true;
    return s[digits] == '-' && s[digits + 1] &&
           strspn(s + digits + 1, "0123456789") == n - digits - 1;
}

/* A frame past its type's limit that is dropped without an answer. */
static bool drop_limited(visitor_t *v, enum wc_limit which, const char *what)
{
    uint64_t retry = 0;
    if (sb__webchat_take(v, which, &retry))
        return false;
    SB_LOG_DEBUG("webchat.limited", "peer=%s frame=%s action=drop", v->ip, what);
    return true;
}

/* True (and an error frame sent) when the frame is over its type's limit. */
static bool answer_limited(visitor_t *v, enum wc_limit which, const char *msg, const char *cid)
{
    uint64_t retry = 0;
    if (sb__webchat_take(v, which, &retry))
        return false;
    SB_LOG_DEBUG("webchat.limited", "peer=%s limit=%d action=answer", v->ip, (int)which);
    sb__webchat_send_error(v, "rate_limited", msg, cid, retry);
    return true;
}

static bool has_nul(const json_t *s)
{
    return json_is_string(s) && json_string_length(s) != strlen(json_string_value(s));
}

static bool client_id_ok(const char *cid)
{
    size_t n = strlen(cid);
    if (n == 0 || n > SB__WC_CLIENT_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (cid[i] < 0x20 || cid[i] > 0x7e)
            return false;
    return true;
}

/* ---- message ---- */

typedef struct send_ctx {
    visitor_t *v;
    char *client_id;
    char *text;
    struct send_ctx *next; /* in v->waiting */
} send_ctx_t;

static void send_free(send_ctx_t *s)
{
    sb_free(s->client_id);
    sb_free(s->text);
    sb_free(s);
}

/* The ack is written by hand: through jansson it was a fifth of the daemon's instructions
 * per web chat message (callgrind). The ids come from our store; the client_id is quoted. */
static void send_ack(visitor_t *v, const char *client_id, const sb_ingest_head_t *h)
{
    if (!v->ws)
        return;
    sb_buf_t b;
    sb_buf_init(&b, 1024); /* client_id ≤ 128 printable characters, ids of our own */
    sb_buf_puts(&b, "{\"type\":\"ack\",\"client_id\":");
    sb_buf_json_str(&b, client_id);
    sb_buf_printf(&b, ",\"id\":\"%s\",\"seq\":\"%s\",\"conv\":\"%s\"}", h->id, h->seq, h->conv);
    if (sb_buf_error(&b) == 0 && v->wc->env.host->ws_send(v->ws, b.data, b.len) == SB_ETOOBIG) {
        SB_LOG_INFO("webchat.slow", "peer=%s action=close", v->ip);
        v->wc->env.host->ws_close(v->ws, 1008, "too slow");
    }
    sb_buf_dispose(&b);
}

static void on_ingested(int status, const char *json, size_t len, const char *errmsg, void *data)
{
    send_ctx_t *s = data;
    visitor_t *v = s->v;
    if (!sb__webchat_alive(v)) {
        send_free(s);
        return;
    }
    sb_ingest_head_t h;
    if (status) {
        sb__webchat_send_error(v, status == SB_EINVAL ? "bad_request" : "unavailable",
                               status == SB_EINVAL ? errmsg : "not stored, please retry",
                               s->client_id, status == SB_EINVAL ? 0 : 1000);
    } else if (sb_store_ingest_head(json, len, &h) != 0) {
        SB_LOG_ERROR("webchat.ingest", "err=PARSE reply=\"%.80s\"", json);
        sb__webchat_send_error(v, "unavailable", "not stored, please retry", s->client_id, 1000);
    } else {
        if (!h.duplicate)
            v->wc->env.msgs_in[SB_CHANNEL_webchat]++;
        sb__webchat_note_sent(v, h.seq); /* the ack covers it */
        if (strcmp(h.conv, v->conv) != 0) {
            /* a new conversation (rare): the whole message goes to the contact's other tabs */
            sb__webchat_detach(v);
            sb__webchat_attach(v, h.conv);
            json_t *res = json_loadb(json, len, 0, NULL);
            json_t *frame = json_deep_copy(json_object_get(res, "message"));
            json_decref(res);
            if (frame) {
                json_object_set_new(frame, "type", json_string("message"));
                sb__webchat_attach_contact(v, h.conv, frame);
                json_decref(frame);
            }
        }
        send_ack(v, s->client_id, &h);
    }
    send_free(s);
}

static void ingest(send_ctx_t *s)
{
    visitor_t *v = s->v;
    sb_ingest_t in = {.channel = SB__WC_CHANNEL,
                      .contact_id = v->contact,
                      .contact_name = v->name[0] ? v->name : NULL,
                      .contact_verified = v->verified,
                      .text = s->text,
                      .client_id = s->client_id};
    v->busy++;
    int rc = sb_store_ingest_raw(v->wc->env.store, &in, on_ingested, s);
    if (rc) {
        v->busy--;
        sb__webchat_send_error(v, "unavailable", "not stored, please retry", s->client_id, 1000);
        send_free(s);
    }
}

/* The anonymous visitor's contact now exists (or already did: SET NX keeps the first). */
static bool took_contact(visitor_t *v, int status, json_t *res)
{
    if (status) {
        SB_LOG_WARN("webchat.contact", "peer=%s err=%s", v->ip, sb_err_name(status));
        return false;
    }
    if (!v->contact[0])
        snprintf(v->contact, sizeof(v->contact), "%s",
                 json_string_value(json_object_get(res, "id")));
    return true;
}

void sb__webchat_drop_waiting(visitor_t *v)
{
    for (send_ctx_t *s = v->waiting, *next; s; s = next) {
        next = s->next;
        send_free(s);
    }
    v->waiting = v->waiting_tail = NULL;
}

/*
 * The contact exists (or could not be created): the messages that came while it was being
 * created go on in the order they came. They waited because creating takes more round
 * trips than finding the contact another frame created: sent at once, the first message
 * would have been stored after the next ones.
 */
static void release_waiting(visitor_t *v)
{
    send_ctx_t *s = v->waiting;
    v->waiting = v->waiting_tail = NULL;
    v->creating = false;
    for (send_ctx_t *next; s; s = next) {
        next = s->next;
        s->next = NULL;
        if (v->contact[0]) {
            ingest(s);
        } else {
            sb__webchat_send_error(v, "unavailable", "not stored, please retry", s->client_id,
                                   1000);
            send_free(s);
        }
    }
}

static void on_message_contact(int status, json_t *res, const char *errmsg, void *data)
{
    send_ctx_t *s = data;
    if (!sb__webchat_alive(s->v)) {
        send_free(s);
    } else if (!took_contact(s->v, status, res)) {
        sb__webchat_send_error(s->v, "unavailable", "not stored, please retry", s->client_id, 1000);
        release_waiting(s->v);
        send_free(s);
    } else {
        ingest(s);
        release_waiting(s->v);
    }
}

/* Creates the anonymous visitor's contact: its token's handle, its name and email. */
static int create_contact(visitor_t *v, sb_store_cb cb, void *data)
{
    v->busy++;
    int rc = sb_store_contact_resolve(v->wc->env.store, "visitor", v->token_hash,
                                      v->name[0] ? v->name : NULL, v->email, cb, data);
    if (rc)
        v->busy--;
    else
        v->creating = true;
    return rc;
}

static void on_message(visitor_t *v, json_t *f)
{
    json_t *cidj = json_object_get(f, "client_id"), *textj = json_object_get(f, "text");
    const char *cid = json_string_value(cidj);
    const char *echo = cid && !has_nul(cidj) ? cid : NULL; /* what an error can carry */
    if (!cid || has_nul(cidj) || !client_id_ok(cid)) {
        sb__webchat_send_error(v, "bad_request",
                               "client_id is required: 1 to 128 printable ASCII characters", echo,
                               0);
        return;
    }
    if (has_nul(textj)) {
        sb__webchat_send_error(v, "bad_request", "text contains a NUL character", cid, 0);
        return;
    }
    const char *text = json_string_value(textj);
    int rc = sb_text_check(text, SB_MAX_TEXT);
    if (rc) {
        sb__webchat_send_error(
            v, rc == SB_ETOOBIG ? "too_large" : "bad_request",
            rc == SB_ETOOBIG ? "text exceeds 8 KiB" : "text must be non-empty UTF-8", cid, 0);
        return;
    }
    if (answer_limited(v, WC_MESSAGE, "too many messages, slow down", cid))
        return;
    send_ctx_t *s = SB_NEW(send_ctx_t);
    s->v = v;
    s->client_id = sb_strdup(cid);
    s->text = sb_strdup(text);
    /* While a message or email creates the contact, wait for it, even when an email that
     * found the new contact has set v->contact already: the creator's message goes first. */
    if (v->creating) {
        if (v->waiting_tail)
            v->waiting_tail->next = s;
        else
            v->waiting = s;
        v->waiting_tail = s;
    } else if (v->contact[0]) {
        ingest(s);
    } else if (create_contact(v, on_message_contact, s) != 0) {
        sb__webchat_send_error(v, "unavailable", "not stored, please retry", cid, 1000);
        send_free(s);
    }
}

/* ---- email, typing ---- */

typedef struct email_ctx {
    visitor_t *v;
    bool creator; /* its call creates the contact (others may wait on it) */
    char email[256];
} email_ctx_t;

static void save_email(visitor_t *v, const char *email)
{
    sb_store_contact_set(v->wc->env.store, v->contact, "email", email, NULL, NULL);
    if (v->conv[0]) {
        char text[400];
        snprintf(text, sizeof(text), "The visitor asked to continue by email: %s", email);
        sb_actor_t sys = {.type = "system", .name = "webchat"};
        sb_store_note(v->wc->env.store, v->conv, &sys, text, NULL, NULL, NULL);
    }
    json_t *st =
        json_pack("{s:s, s:s, s:s}", "type", "status", "status", "email_saved", "email", email);
    sb__webchat_send_json(v, st);
    json_decref(st);
}

static void on_email_contact(int status, json_t *res, const char *errmsg, void *data)
{
    email_ctx_t *e = data;
    if (sb__webchat_alive(e->v)) {
        if (took_contact(e->v, status, res))
            save_email(e->v, e->email);
        else
            sb__webchat_send_error(e->v, "unavailable", "email not saved, please retry", NULL,
                                   1000);
        if (e->creator)
            release_waiting(e->v);
    }
    sb_free(e);
}

static void on_email(visitor_t *v, json_t *f)
{
    json_t *ej = json_object_get(f, "email");
    const char *email = json_string_value(ej);
    /* the one validator of addresses: a CR or LF here would reach mail headers later */
    if (!email || has_nul(ej) || sb_email_check(email) != 0) {
        sb__webchat_send_error(v, "bad_request", "email must be an email address", NULL, 0);
        return;
    }
    if (answer_limited(v, WC_EMAIL, "too many email frames, retry later", NULL))
        return;
    if (v->contact[0]) {
        save_email(v, email);
        return;
    }
    email_ctx_t *e = SB_NEW(email_ctx_t);
    e->v = v;
    e->creator = !v->creating;
    snprintf(e->email, sizeof(e->email), "%s", email);
    sb_free(v->email);
    v->email = sb_strdup(email);
    if (create_contact(v, on_email_contact, e) != 0) {
        sb__webchat_send_error(v, "unavailable", "email not saved, please retry", NULL, 1000);
        sb_free(e);
    }
}

static void on_typing(visitor_t *v, json_t *f)
{
    if (!v->conv[0] || drop_limited(v, WC_TYPING, "typing"))
        return;
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s}}", "type", "typing", "conv", v->conv,
                  "channel", "webchat", "on", !json_is_false(json_object_get(f, "on")), "who",
                  "type", "contact", "id", v->contact, "name", v->name);
    char *s;
    if (sb_json_dumps(e, JSON_COMPACT, &s, NULL) == 0)
        sb_store_publish(v->wc->env.store, v->conv, s, NULL, NULL);
    free(s);
    json_decref(e);
}

/* ---- history ---- */

static void send_history(visitor_t *v, json_t *items, const char *before)
{
    json_t *h = json_pack("{s:s, s:o, s:b, s:o}", "type", "history", "messages",
                          items ? json_incref(items) : json_array(), "more", before != NULL,
                          "before", before ? json_string(before) : json_null());
    sb__webchat_send_json(v, h);
    json_decref(h);
}

static void on_history_page(int status, json_t *res, const char *errmsg, void *data)
{
    visitor_t *v = data;
    if (!sb__webchat_alive(v))
        return;
    v->history_busy = false;
    if (status) {
        SB_LOG_WARN("webchat.history", "peer=%s conv=%s err=%s", v->ip, v->conv,
                    sb_err_name(status));
        sb__webchat_send_error(v, "unavailable", "history unavailable, retry", NULL, 1000);
        return;
    }
    send_history(v, json_object_get(res, "items"), json_string_value(json_object_get(res, "next")));
}

static void on_history(visitor_t *v, json_t *f)
{
    int bad = 0;
    const char *before = sb_json_opt_str(f, "before", &bad);
    const char *after = sb_json_opt_str(f, "after", &bad);
    json_t *lj = json_object_get(f, "limit");
    json_int_t limit = lj && !json_is_null(lj) ? json_integer_value(lj) : SB__WC_PAGE;
    if (bad || (before && !sb__webchat_seq_ok(before)) || (after && !sb__webchat_seq_ok(after)) ||
        (lj && !json_is_null(lj) && !json_is_integer(lj)) || limit < 1 || limit > SB__WC_PAGE) {
        sb__webchat_send_error(v, "bad_request",
                               "history takes before and after (seqs) and a limit of 1 to 50", NULL,
                               0);
        return;
    }
    if (v->history_busy) { /* one page at a time keeps the socket's queue bounded */
        sb__webchat_send_error(v, "rate_limited", "a history page is on its way", NULL, 200);
        return;
    }
    if (answer_limited(v, WC_HISTORY, "too many history requests, slow down", NULL))
        return;
    if (!v->conv[0]) {
        json_t *none = json_array();
        send_history(v, none, NULL);
        json_decref(none);
        return;
    }
    v->busy++;
    v->history_busy = true;
    int rc = sb_store_public_page(v->wc->env.store, v->conv, before, after, (unsigned)limit,
                                  SB__WC_PAGE_BYTES, on_history_page, v);
    if (rc) {
        v->busy--;
        v->history_busy = false;
        sb__webchat_send_error(v, "unavailable", "history unavailable, retry", NULL, 1000);
    }
}

/* ---- dispatch ---- */

/*
 * The length of s cut to at most max bytes without splitting a UTF-8 sequence: an error
 * message that is not UTF-8 cannot be packed, and the visitor would get no answer at all.
 */
static int utf8_cut(const char *s, int max)
{
    int n = (int)strnlen(s, (size_t)max);
    if (s[n] == '\0')
        return n;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) /* s[n] continues a sequence */
        n--;
    return n;
}

/*
 * An unparsable frame. A NUL (\u0000) is the one thing jansson refuses that a browser
 * easily sends: name it, with the frame's client_id, so the widget stops waiting.
 */
static void on_bad_frame(visitor_t *v, const char *msg, size_t len, int rc,
                         const sb_json_error_t *je)
{
    json_t *f = rc == SB_EPARSE
                    ? json_loadb(msg, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL)
                    : NULL;
    if (json_is_object(f)) { /* valid but for a NUL: answered like the frame's type */
        const char *key;
        json_t *val;
        json_t *cidj = json_object_get(f, "client_id");
        const char *cid = json_is_string(cidj) && !has_nul(cidj) ? json_string_value(cidj) : NULL;
        json_object_foreach(f, key, val)
        {
            if (has_nul(val))
                break;
        }
        char m[160];
        const char *name = key ? key : "a nested field";
        snprintf(m, sizeof(m), "%.*s contains a NUL character", utf8_cut(name, 60), name);
        sb__webchat_send_error(v, "bad_request", m, cid, 0);
        json_decref(f);
        return;
    }
    json_decref(f);
    if (drop_limited(v, WC_OTHER, "bad"))
        return;
    char m[200];
    if (strstr(je->text, "u0000") || strstr(je->text, "NUL"))
        snprintf(m, sizeof(m), "a NUL character is not allowed here (line %d, column %d)", je->line,
                 je->column);
    else
        snprintf(m, sizeof(m), "%s (line %d, column %d)", je->text, je->line, je->column);
    sb__webchat_send_error(v, rc == SB_ETOOBIG ? "too_large" : "bad_request", m, NULL, 0);
}

static void dispatch(visitor_t *v, json_t *f)
{
    const char *type = json_string_value(json_object_get(f, "type"));
    if (!type) {
        if (!drop_limited(v, WC_OTHER, "untyped"))
            sb__webchat_send_error(v, "bad_request", "a frame needs a string field type", NULL, 0);
    } else if (strcmp(type, "hello") == 0) {
        sb__webchat_on_hello(v, f);
    } else if (v->state != V_READY) {
        if (!drop_limited(v, WC_OTHER, "early"))
            sb__webchat_send_error(v, "not_ready", "send hello and wait for welcome first", NULL,
                                   0);
    } else if (strcmp(type, "message") == 0) {
        on_message(v, f);
    } else if (strcmp(type, "typing") == 0) {
        on_typing(v, f);
    } else if (strcmp(type, "email") == 0) {
        on_email(v, f);
    } else if (strcmp(type, "history") == 0) {
        on_history(v, f);
    } else if (strcmp(type, "ping") == 0) {
        if (!drop_limited(v, WC_OTHER, "ping")) {
            json_t *pong = json_pack("{s:s}", "type", "pong");
            sb__webchat_send_json(v, pong);
            json_decref(pong);
        }
    } else if (!drop_limited(v, WC_OTHER, "unknown")) {
        sb__webchat_send_error(v, "bad_request", "unknown frame type", NULL, 0);
    }
}

void sb__webchat_on_text(sb_host_ws_t *ws, const char *msg, size_t len, void *data)
{
    const webchat_t *wc = data;
    visitor_t *v = wc->env.host->ws_user(ws);
    if (!v || v->wc->stopping)
        return;
    json_t *f;
    sb_json_error_t je;
    int rc = sb_json_parse(msg, len, SB_MAX_WS_FRAME, 1, &f, &je);
    if (rc) {
        on_bad_frame(v, msg, len, rc, &je);
        return;
    }
    dispatch(v, f);
    json_decref(f);
}

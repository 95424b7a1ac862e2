/* SPDX-License-Identifier: MIT */
/*
 * Frames to web chat visitors: JSON and error frames, transcript messages sent at most
 * once per socket (per-conversation seqs only grow; frames that arrive before the
 * welcome are held), conversation routing (conv id -> the sockets showing it, other tabs
 * included), and the node's one events subscription fanned out to those sockets.
 * A socket whose outgoing queue is full is closed with 1008 "too slow".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/webchat/internal.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define MAX_HELD 200

void sb__webchat_send_json(visitor_t *v, json_t *j)
{
    if (!v->ws)
        return;
    char *s;
    size_t len;
    if (sb_json_dumps(j, JSON_COMPACT, &s, &len) != 0) /* NULL j: nothing to send */
        return;
    if (v->wc->env.host->ws_send(v->ws, s, len) == SB_ETOOBIG) {
        SB_LOG_INFO("webchat.slow", "peer=%s action=close", v->ip);
        v->wc->env.host->ws_close(v->ws, 1008, "too slow");
    }
    free(s);
}

void sb__webchat_send_error(visitor_t *v, const char *code, const char *msg, const char *client_id,
                            uint64_t retry_ms)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", msg);
    if (client_id)
        json_object_set_new(e, "client_id", json_string(client_id));
    if (retry_ms)
        json_object_set_new(e, "retry_after_ms", json_integer((json_int_t)retry_ms));
    sb__webchat_send_json(v, e);
    json_decref(e);
    SB_LOG_DEBUG("webchat.error", "peer=%s code=%s", v->ip, code);
}

/* Compares two seqs "ms-n" numerically (an empty one is the smallest). */
static int seq_cmp(const char *a, const char *b)
{
    unsigned long long am = 0, an = 0, bm = 0, bn = 0;
    if (a && *a)
        sscanf(a, "%llu-%llu", &am, &an);
    if (b && *b)
        sscanf(b, "%llu-%llu", &bm, &bn);
    if (am != bm)
        return am < bm ? -1 : 1;
    return an < bn ? -1 : an > bn;
}

void sb__webchat_note_sent(visitor_t *v, const char *seq)
{
    if (seq && seq_cmp(seq, v->sent_seq) > 0)
        snprintf(v->sent_seq, sizeof(v->sent_seq), "%s", seq);
}

/*
 * Sends a transcript frame (text, with its seq) unless this socket already had it;
 * before the welcome it is held, so nothing slips between the history read and live
 * delivery.
 */
void sb__webchat_send_message_text(visitor_t *v, const char *text, size_t len, const char *seq)
{
    if (!v->ws)
        return;
    if (v->state != V_READY) {
        if (v->nheld < MAX_HELD) {
            v->held = sb_realloc(v->held, (v->nheld + 1) * sizeof(held_t));
            v->held[v->nheld].text = sb_strndup(text, len);
            snprintf(v->held[v->nheld].seq, sizeof(v->held[v->nheld].seq), "%s", seq);
            v->nheld++;
        }
        return;
    }
    if (seq_cmp(seq, v->sent_seq) <= 0)
        return;
    sb__webchat_note_sent(v, seq);
    if (v->wc->env.host->ws_send(v->ws, text, len) == SB_ETOOBIG)
        v->wc->env.host->ws_close(v->ws, 1008, "too slow");
}

static void send_message_frame(visitor_t *v, json_t *frame, const char *text)
{
    const char *seq = json_string_value(json_object_get(frame, "seq"));
    sb__webchat_send_message_text(v, text, strlen(text), seq ? seq : "");
}

void sb__webchat_drop_held(visitor_t *v)
{
    for (size_t i = 0; i < v->nheld; i++)
        sb_free(v->held[i].text);
    sb_free(v->held);
    v->held = NULL;
    v->nheld = 0;
}

/* ---- conversation routing ---- */

void sb__webchat_attach(visitor_t *v, const char *conv)
{
    if (!conv || !*conv || strcmp(v->conv, conv) == 0)
        return;
    snprintf(v->conv, sizeof(v->conv), "%s", conv);
    v->conv_next = sb_map_get(&v->wc->by_conv, conv);
    sb_map_set(&v->wc->by_conv, conv, v);
}

void sb__webchat_detach(visitor_t *v)
{
    if (!v->conv[0])
        return;
    visitor_t *head = sb_map_get(&v->wc->by_conv, v->conv);
    visitor_t **pp = &head;
    while (*pp && *pp != v)
        pp = &(*pp)->conv_next;
    if (*pp)
        *pp = v->conv_next;
    if (head)
        sb_map_set(&v->wc->by_conv, v->conv, head);
    else
        sb_map_del(&v->wc->by_conv, v->conv);
    v->conv[0] = '\0';
    v->conv_next = NULL;
}

/* Whether socket o belongs to the same customer as v: same contact, or same token. */
static bool same_customer(const visitor_t *o, const visitor_t *v)
{
    if (o->contact[0])
        return strcmp(o->contact, v->contact) == 0;
    return o->token_hash[0] && strcmp(o->token_hash, v->token_hash) == 0;
}

/*
 * Other sockets of the same contact join a new conversation (other tabs), and get the
 * message that started it: its event may have been dispatched before anyone was attached.
 * A tab of the same anonymous token learns the contact the first message created.
 */
void sb__webchat_attach_contact(visitor_t *v, const char *conv, json_t *frame)
{
    char *text = NULL;
    for (visitor_t *o = v->wc->all; o; o = o->all_next) {
        if (o == v || !o->ws || !same_customer(o, v) || strcmp(o->conv, conv) == 0)
            continue;
        if (!o->contact[0])
            snprintf(o->contact, sizeof(o->contact), "%s", v->contact);
        sb__webchat_detach(o);
        sb__webchat_attach(o, conv);
        if (!text && sb_json_dumps(frame, JSON_COMPACT, &text, NULL) != 0)
            break;
        send_message_frame(o, frame, text);
    }
    free(text);
}

/* ---- delivery of events to visitors ---- */

static void deliver(webchat_t *wc, const char *conv, json_t *frame)
{
    char *s;
    if (sb_json_dumps(frame, JSON_COMPACT, &s, NULL) != 0)
        return;
    for (visitor_t *v = sb_map_get(&wc->by_conv, conv); v; v = v->conv_next)
        if (v->ws && v->state == V_READY &&
            v->wc->env.host->ws_send(v->ws, s, strlen(s)) == SB_ETOOBIG)
            v->wc->env.host->ws_close(v->ws, 1008, "too slow");
    free(s);
}

/*
 * A transcript message event, as functions.lua writes it:
 *   {"conv":"…","conversation":{…state…},"type":"message","message":{…}}
 * The visitor frame is the message object with "type":"message" in front, cut out of
 * the text without a parse (the state holds no customer text, so the marker is unique).
 * Returns false when the event has another shape.
 */
static bool deliver_message_event(webchat_t *wc, const sb_event_t *ev)
{
    static const char mark[] = ",\"type\":\"message\",\"message\":{";
    const char *p = memmem(ev->json, ev->json_len, mark, sizeof(mark) - 1);
    if (!p || ev->json_len < 2 || ev->json[ev->json_len - 1] != '}')
        return false;
    const char *obj = p + sizeof(mark) - 2; /* the message's '{' */
    size_t olen = (size_t)(ev->json + ev->json_len - 1 - obj);
    const char *sq = memmem(obj, olen, "\"seq\":\"", 7);
    char seq[48] = "";
    if (sq) {
        const char *end = memchr(sq + 7, '"', (size_t)(obj + olen - sq - 7));
        if (end && (size_t)(end - sq - 7) < sizeof(seq))
            snprintf(seq, sizeof(seq), "%.*s", (int)(end - sq - 7), sq + 7);
    }
    sb_buf_t f;
    sb_buf_init(&f, SB_MAX_WS_FRAME * 4);
    sb_buf_puts(&f, "{\"type\":\"message\",");
    sb_buf_append(&f, obj + 1, olen - 1);
    for (visitor_t *v = sb_map_get(&wc->by_conv, ev->conv); v; v = v->conv_next)
        sb__webchat_send_message_text(v, f.data, f.len, seq);
    sb_buf_dispose(&f);
    /* a visitor here saw an answer: it will not go on by mail (docs/email.md) */
    if (seq[0] && memmem(obj, olen, "\"dir\":\"out\"", 11))
        sb_store_seen(wc->env.store, ev->conv, seq, NULL, NULL);
    return true;
}

void sb__webchat_on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    webchat_t *wc = data;
    static const char presence[] = "\"type\":\"presence\"";
    if (ev->conv && strncmp(ev->conv, "st_", 3) == 0 && /* published under the staff id */
        memmem(ev->json, ev->json_len, presence, sizeof(presence) - 1)) {
        sb__webchat_wait_refresh(wc); /* staff online changed: the honest wait may have */
        return;
    }
    if (!sb_map_get(&wc->by_conv, ev->conv))
        return; /* nobody of this conversation is connected here */
    if (deliver_message_event(wc, ev))
        return;
    json_t *e = json_loadb(ev->json, ev->json_len, 0, NULL);
    if (!e)
        return;
    const char *type = json_string_value(json_object_get(e, "type"));
    json_t *m = json_object_get(e, "message");
    json_t *frame = NULL;
    if (type && strcmp(type, "typing") == 0) {
        json_t *who = json_object_get(e, "who");
        const char *wtype = json_string_value(json_object_get(who, "type"));
        if (wtype && strcmp(wtype, "contact") != 0)
            frame =
                json_pack("{s:s, s:O, s:b}", "type", "typing", "name", json_object_get(who, "name"),
                          "on", !json_is_false(json_object_get(e, "on")));
    } else if (type && strcmp(type, "event") == 0 && json_is_object(m)) {
        const char *et = json_string_value(json_object_get(m, "type"));
        if (et && (strcmp(et, "resolved") == 0 || strcmp(et, "reopened") == 0 ||
                   strcmp(et, "snoozed") == 0 || strcmp(et, "claimed") == 0)) {
            frame = json_pack("{s:s, s:O, s:s}", "type", "status", "status",
                              json_object_get(json_object_get(e, "conversation"), "status"),
                              "event", et);
            sb__webchat_wait_json(wc, frame);
        }
    }
    if (frame) {
        deliver(wc, ev->conv, frame);
        json_decref(frame);
    }
    json_decref(e);
}

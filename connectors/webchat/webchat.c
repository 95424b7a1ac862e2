/* SPDX-License-Identifier: MIT */
/*
 * The webchat connector: the embeddable widget's WebSocket, subprotocol
 * `switchboard.visitor.v1` (DESIGN §5, §6).
 *
 * - hello/welcome: a visitor token (128 random bits, stored hashed as
 *   sb:ident:visitor:<sha256>) maps to a contact; `user_id` + `user_hash` (hex
 *   HMAC-SHA256 of user_id with the site secret) attaches the visitor to that user's
 *   verified contact. The welcome carries the contact's latest webchat conversation and
 *   every customer-visible message after `last_seq` (never notes).
 * - message: ingested with the frame's client_id as idempotency key; the ack is sent
 *   only once Redis has the message, and a repeated client_id gets the same ack.
 * - delivery: one events subscription per node routes each conversation's public
 *   messages to every open socket of it (other tabs included); replies sent while the
 *   visitor was away arrive with the next welcome.
 * - limits: site origins checked on upgrade, frame and text sizes, per-socket and
 *   per-IP token buckets (error frame with retry_after_ms), idle timeout.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/map.h"
#include "core/msg.h"
#include "core/util.h"
#include "gateway/ws.h"

#define CHANNEL       "webchat"
#define HISTORY_LIMIT 500
#define RT_REFRESH_MS 10000
#define IP_SWEEP_MS   60000

typedef struct site {
    char *id;
    char *secret;
    char **origins; /* allowed Origin values; "*" allows any */
    int norigins;
} site_t;

/* A token bucket: `burst` tokens, refilled at `per_s` per second. */
typedef struct bucket {
    double tokens;
    uint64_t at_ms;
} bucket_t;

typedef struct webchat webchat_t;
typedef struct visitor visitor_t;

typedef struct held {
    char *text;
    char seq[48];
} held_t;

enum vstate { V_NEW, V_HELLO, V_READY };

struct visitor {
    webchat_t *wc;
    sb_ws_t *ws; /* NULL once closed */
    int busy;    /* store operations in flight */
    enum vstate state;
    const site_t *site;
    char token_hash[65];
    char contact[SB_ID_MAX];
    char conv[SB_ID_MAX];
    char name[128];
    char ip[64];
    char *last_seq;    /* the hello's last_seq */
    char sent_seq[48]; /* newest transcript seq this socket has been sent */
    struct held *held; /* message frames that arrived before the welcome */
    size_t nheld;
    bool verified;
    bucket_t bucket;
    uint64_t typing_at;
    visitor_t *conv_next; /* sockets of the same conversation */
    visitor_t *all_prev, *all_next;
};

struct webchat {
    sb_connector_env_t env;
    site_t *sites;
    int nsites;
    sb_map_t by_conv; /* conv id -> visitor list */
    sb_map_t by_ip;   /* ip -> bucket_t* */
    visitor_t *all;
    size_t nvisitors;
    sb_events_sub_t *sub;
    uv_timer_t *timer;
    int64_t expected_ms; /* -1 = unknown */
    uint64_t last_sweep;
    bool stopping; /* freed when the last visitor is */
};

static void wc_free(webchat_t *wc);

/* ---- small helpers ---- */

static uint64_t now_ms(const webchat_t *wc)
{
    return uv_now(wc->env.loop);
}

static bool take(bucket_t *b, double burst, double per_s, uint64_t now, uint64_t *retry_ms)
{
    if (b->at_ms == 0) {
        b->tokens = burst;
    } else {
        b->tokens += (double)(now - b->at_ms) * per_s / 1000.0;
        if (b->tokens > burst)
            b->tokens = burst;
    }
    b->at_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    *retry_ms = (uint64_t)((1.0 - b->tokens) * 1000.0 / per_s) + 1;
    return false;
}

static void send_json(visitor_t *v, json_t *j)
{
    if (!v->ws)
        return;
    char *s;
    size_t len;
    if (sb_json_dumps(j, JSON_COMPACT, &s, &len) != 0) /* NULL j: nothing to send */
        return;
    if (sb_ws_send(v->ws, s, len) == SB_ETOOBIG) {
        SB_LOG_INFO("webchat.slow", "peer=%s action=close", v->ip);
        sb_ws_close(v->ws, 1008, "too slow");
    }
    free(s);
}

static void send_error(visitor_t *v, const char *code, const char *msg, const char *client_id,
                       uint64_t retry_ms)
{
    json_t *e = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "message", msg);
    if (client_id)
        json_object_set_new(e, "client_id", json_string(client_id));
    if (retry_ms)
        json_object_set_new(e, "retry_after_ms", json_integer((json_int_t)retry_ms));
    send_json(v, e);
    json_decref(e);
    SB_LOG_DEBUG("webchat.error", "peer=%s code=%s", v->ip, code);
}

static json_t *expected_json(const webchat_t *wc)
{
    return wc->expected_ms >= 0 ? json_integer(wc->expected_ms) : json_null();
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

static void note_sent(visitor_t *v, const char *seq)
{
    if (seq && seq_cmp(seq, v->sent_seq) > 0)
        snprintf(v->sent_seq, sizeof(v->sent_seq), "%s", seq);
}

/*
 * Sends a transcript frame (text, with its seq) unless this socket already had it
 * (per-conversation seqs only grow); before the welcome it is held, so nothing slips
 * between the history read and live delivery.
 */
static void send_message_text(visitor_t *v, const char *text, size_t len, const char *seq)
{
    if (!v->ws)
        return;
    if (v->state != V_READY) {
        if (v->nheld < 200) {
            v->held = sb_realloc(v->held, (v->nheld + 1) * sizeof(held_t));
            v->held[v->nheld].text = sb_strndup(text, len);
            snprintf(v->held[v->nheld].seq, sizeof(v->held[v->nheld].seq), "%s", seq);
            v->nheld++;
        }
        return;
    }
    if (seq_cmp(seq, v->sent_seq) <= 0)
        return;
    note_sent(v, seq);
    if (sb_ws_send(v->ws, text, len) == SB_ETOOBIG)
        sb_ws_close(v->ws, 1008, "too slow");
}

static void send_message_frame(visitor_t *v, json_t *frame, const char *text)
{
    const char *seq = json_string_value(json_object_get(frame, "seq"));
    send_message_text(v, text, strlen(text), seq ? seq : "");
}

static void drop_held(visitor_t *v)
{
    for (size_t i = 0; i < v->nheld; i++)
        sb_free(v->held[i].text);
    sb_free(v->held);
    v->held = NULL;
    v->nheld = 0;
}

/* ---- conversation routing ---- */

static void attach(visitor_t *v, const char *conv)
{
    if (!conv || !*conv || strcmp(v->conv, conv) == 0)
        return;
    snprintf(v->conv, sizeof(v->conv), "%s", conv);
    v->conv_next = sb_map_get(&v->wc->by_conv, conv);
    sb_map_set(&v->wc->by_conv, conv, v);
}

static void detach(visitor_t *v)
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

/*
 * Other sockets of the same contact join a new conversation (other tabs), and get the
 * message that started it: its event may have been dispatched before anyone was attached.
 */
static void attach_contact(webchat_t *wc, const char *contact, const char *conv, json_t *frame)
{
    char *text = NULL;
    for (visitor_t *o = wc->all; o; o = o->all_next) {
        if (!o->ws || strcmp(o->contact, contact) != 0 || strcmp(o->conv, conv) == 0)
            continue;
        detach(o);
        attach(o, conv);
        if (!text)
            text = json_dumps(frame, JSON_COMPACT);
        send_message_frame(o, frame, text);
    }
    free(text);
}

static void visitor_free(visitor_t *v)
{
    webchat_t *wc = v->wc;
    detach(v);
    if (v->all_prev)
        v->all_prev->all_next = v->all_next;
    else
        wc->all = v->all_next;
    if (v->all_next)
        v->all_next->all_prev = v->all_prev;
    wc->nvisitors--;
    drop_held(v);
    sb_free(v->last_seq);
    sb_free(v);
    if (wc->stopping && wc->nvisitors == 0)
        wc_free(wc);
}

/* Called first in every store callback: false (and v freed) if the socket is gone. */
static bool alive(visitor_t *v)
{
    v->busy--;
    if (v->ws)
        return true;
    if (v->busy == 0)
        visitor_free(v);
    return false;
}

/* ---- hello / welcome ---- */

static void on_history(int status, json_t *res, const char *errmsg, void *data);

static void welcome(visitor_t *v, json_t *history, const char *new_token)
{
    json_t *w = json_pack("{s:s, s:o, s:o, s:o}", "type", "welcome", "conv",
                          v->conv[0] ? json_string(v->conv) : json_null(), "expected_reply_ms",
                          expected_json(v->wc), "history", history ? history : json_array());
    json_object_set_new(w, "token", new_token ? json_string(new_token) : json_null());
    json_object_set_new(w, "verified", json_boolean(v->verified));
    note_sent(v, v->last_seq);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(w, "history"), i, m)
    {
        note_sent(v, json_string_value(json_object_get(m, "seq")));
    }
    send_json(v, w);
    json_decref(w);
    v->state = V_READY;
    held_t *held = v->held;
    size_t nheld = v->nheld;
    v->held = NULL;
    v->nheld = 0;
    for (size_t k = 0; k < nheld; k++) {
        send_message_text(v, held[k].text, strlen(held[k].text), held[k].seq);
        sb_free(held[k].text);
    }
    sb_free(held);
    SB_LOG_DEBUG("webchat.welcome", "peer=%s contact=%s conv=%s", v->ip, v->contact, v->conv);
}

typedef struct hello_ctx {
    visitor_t *v;
    char *new_token;
    char *user_id;
    char *email;
} hello_ctx_t;

static void hello_done(hello_ctx_t *h, json_t *history)
{
    welcome(h->v, history, h->new_token);
    sb_free(h->new_token);
    sb_free(h->user_id);
    sb_free(h->email);
    sb_free(h);
}

static void hello_fail(hello_ctx_t *h, int status)
{
    send_error(h->v, "unavailable", "storage unavailable, retry", NULL, 1000);
    h->v->state = V_NEW;
    SB_LOG_WARN("webchat.hello", "peer=%s err=%s", h->v->ip, sb_err_name(status));
    sb_free(h->new_token);
    sb_free(h->user_id);
    sb_free(h->email);
    sb_free(h);
}

/* Keeps the customer-visible messages of a transcript page. */
static json_t *public_messages(const json_t *items)
{
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(items, i, m)
    {
        const char *kind = json_string_value(json_object_get(m, "kind"));
        if (kind && strcmp(kind, "message") == 0)
            json_array_append(out, m);
    }
    return out;
}

/*
 * The start of every hello step's store callback: false (and h finished) when the
 * socket is gone or the step failed; true to go on.
 */
static bool hello_step_ok(hello_ctx_t *h, int status)
{
    if (!alive(h->v)) {
        h->v = NULL;
        hello_done(h, NULL); /* frees h; the welcome goes nowhere */
        return false;
    }
    if (status) {
        hello_fail(h, status);
        return false;
    }
    return true;
}

static void on_history(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!alive(h->v)) {
        h->v = NULL;
        sb_free(h->new_token);
        sb_free(h->user_id);
        sb_free(h->email);
        sb_free(h);
        return;
    }
    if (status) {
        hello_fail(h, status);
        return;
    }
    hello_done(h, public_messages(json_object_get(res, "items")));
}

static void on_latest(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    visitor_t *v = h->v;
    if (!alive(v)) {
        h->v = NULL;
        hello_done(h, NULL); /* frees h; welcome goes nowhere */
        return;
    }
    if (status) {
        hello_fail(h, status);
        return;
    }
    const char *conv = json_string_value(json_object_get(res, "id"));
    if (!conv) {
        hello_done(h, NULL);
        return;
    }
    attach(v, conv);
    v->busy++;
    int rc = sb_store_messages(v->wc->env.store, conv, v->last_seq, HISTORY_LIMIT, on_history, h);
    if (rc) {
        v->busy--;
        hello_fail(h, rc);
    }
}

static void find_conversation(hello_ctx_t *h)
{
    visitor_t *v = h->v;
    v->busy++;
    int rc = sb_store_contact_latest(v->wc->env.store, v->contact, CHANNEL, on_latest, h);
    if (rc) {
        v->busy--;
        hello_fail(h, rc);
    }
}

static void on_token_linked(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!hello_step_ok(h, status))
        return;
    find_conversation(h);
}

/* The verified user's contact: point this visitor token at it. */
static void on_user_contact(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!hello_step_ok(h, status))
        return;
    visitor_t *v = h->v;
    snprintf(v->contact, sizeof(v->contact), "%s", json_string_value(json_object_get(res, "id")));
    v->verified = true;
    v->busy++;
    int rc = sb_store_ident_set(v->wc->env.store, "visitor", v->token_hash, v->contact,
                                on_token_linked, h);
    if (rc) {
        v->busy--;
        hello_fail(h, rc);
    }
}

static void identify_user(hello_ctx_t *h)
{
    visitor_t *v = h->v;
    char value[300];
    snprintf(value, sizeof(value), "%s:%s", v->site->id, h->user_id);
    v->busy++;
    int rc = sb_store_contact_resolve(v->wc->env.store, "user", value, v->name[0] ? v->name : NULL,
                                      h->email, on_user_contact, h);
    if (rc) {
        v->busy--;
        hello_fail(h, rc);
    }
}

static void after_contact(hello_ctx_t *h)
{
    if (h->user_id)
        identify_user(h);
    else
        find_conversation(h);
}

static void on_new_contact(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!hello_step_ok(h, status))
        return;
    visitor_t *v = h->v;
    snprintf(v->contact, sizeof(v->contact), "%s", json_string_value(json_object_get(res, "id")));
    after_contact(h);
}

static void new_visitor(hello_ctx_t *h)
{
    visitor_t *v = h->v;
    char raw[33];
    sb_random_hex(raw, 16);
    h->new_token = sb_asprintf("vt_%s", raw);
    sb_sha256_hex(h->new_token, strlen(h->new_token), v->token_hash);
    v->busy++;
    int rc = sb_store_contact_resolve(v->wc->env.store, "visitor", v->token_hash,
                                      v->name[0] ? v->name : NULL, h->email, on_new_contact, h);
    if (rc) {
        v->busy--;
        hello_fail(h, rc);
    }
}

static void on_token_contact(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    visitor_t *v = h->v;
    if (!alive(v)) {
        h->v = NULL;
        hello_done(h, NULL);
        return;
    }
    if (status == SB_ENOTFOUND) { /* unknown or forged token: start afresh */
        new_visitor(h);
        return;
    }
    if (status) {
        hello_fail(h, status);
        return;
    }
    snprintf(v->contact, sizeof(v->contact), "%s", json_string_value(json_object_get(res, "id")));
    after_contact(h);
}

static bool user_hash_ok(const site_t *site, const char *user_id, const char *user_hash)
{
    if (!site->secret || !*site->secret || !user_hash)
        return false;
    char want[65], got[65];
    sb_hmac_sha256_hex(site->secret, strlen(site->secret), user_id, strlen(user_id), want);
    size_t n = strlen(user_hash);
    if (n != 64)
        return false;
    for (size_t i = 0; i <= n; i++)
        got[i] = (char)tolower((unsigned char)user_hash[i]);
    return sb_streq_ct(want, got);
}

static void on_hello(visitor_t *v, json_t *f)
{
    if (v->state != V_NEW) {
        send_error(v, "bad_request", "hello was already sent", NULL, 0);
        return;
    }
    int bad = 0;
    const char *site = sb_json_opt_str(f, "site", &bad);
    const char *token = sb_json_opt_str(f, "token", &bad);
    const char *last_seq = sb_json_opt_str(f, "last_seq", &bad);
    const char *name = sb_json_opt_str(f, "name", &bad);
    const char *email = sb_json_opt_str(f, "email", &bad);
    const char *user_id = sb_json_opt_str(f, "user_id", &bad);
    const char *user_hash = sb_json_opt_str(f, "user_hash", &bad);
    if (bad || (token && strlen(token) > 100) || (last_seq && strlen(last_seq) > 42) ||
        (name && strlen(name) > 100) || (email && (strlen(email) > 254 || !strchr(email, '@'))) ||
        (user_id && strlen(user_id) > SB_MAX_ID_LEN) ||
        (last_seq && strspn(last_seq, "0123456789-") != strlen(last_seq))) {
        send_error(v, "bad_request", "hello fields must be strings of sane length", NULL, 0);
        return;
    }
    if (site && strcmp(site, v->site->id) != 0) {
        send_error(v, "forbidden", "site does not match the connection's site", NULL, 0);
        return;
    }
    hello_ctx_t *h = SB_NEW(hello_ctx_t);
    h->v = v;
    h->email = email ? sb_strdup(email) : NULL;
    if (user_id) {
        if (user_hash_ok(v->site, user_id, user_hash)) {
            h->user_id = sb_strdup(user_id);
        } else {
            /* Never merge an unverified visitor into a verified contact. */
            send_error(v, "forbidden", "user_hash does not verify user_id; continuing anonymously",
                       NULL, 0);
        }
    }
    snprintf(v->name, sizeof(v->name), "%s", name ? name : "");
    sb_free(v->last_seq);
    v->last_seq = last_seq && *last_seq ? sb_strdup(last_seq) : NULL;
    v->state = V_HELLO;
    if (!token || !*token) {
        new_visitor(h);
        return;
    }
    sb_sha256_hex(token, strlen(token), v->token_hash);
    v->busy++;
    int rc = sb_store_ident_get(v->wc->env.store, "visitor", v->token_hash, on_token_contact, h);
    if (rc) {
        v->busy--;
        hello_fail(h, rc);
    }
}

/* ---- messages from the visitor ---- */

typedef struct send_ctx {
    visitor_t *v;
    char client_id[SB_MAX_ID_LEN + 1];
} send_ctx_t;

static void on_ingested(int status, const char *json, size_t len, const char *errmsg, void *data)
{
    send_ctx_t *s = data;
    visitor_t *v = s->v;
    if (!alive(v)) {
        sb_free(s);
        return;
    }
    if (status) {
        send_error(v, status == SB_EINVAL ? "bad_request" : "unavailable",
                   status == SB_EINVAL ? errmsg : "not stored, please retry", s->client_id,
                   status == SB_EINVAL ? 0 : 1000);
        sb_free(s);
        return;
    }
    sb_ingest_head_t h;
    if (sb_store_ingest_head(json, len, &h) != 0) {
        SB_LOG_ERROR("webchat.ingest", "err=PARSE reply=\"%.80s\"", json);
        send_error(v, "unavailable", "not stored, please retry", s->client_id, 1000);
        sb_free(s);
        return;
    }
    const char *conv = h.conv;
    if (!h.duplicate)
        v->wc->env.msgs_in[0]++;
    note_sent(v, h.seq); /* the ack covers it */
    if (strcmp(conv, v->conv) != 0) {
        /* a new conversation (rare): the whole message goes to the contact's other tabs */
        detach(v);
        attach(v, conv);
        json_t *res = json_loadb(json, len, 0, NULL);
        json_t *frame = json_deep_copy(json_object_get(res, "message"));
        json_decref(res);
        if (frame) {
            json_object_set_new(frame, "type", json_string("message"));
            attach_contact(v->wc, v->contact, conv, frame);
            json_decref(frame);
        }
    }
    /* client_id came from the visitor: keep jansson's escaping for it. */
    json_t *cid = json_string(s->client_id);
    char *cid_text = json_dumps(cid, JSON_ENCODE_ANY);
    char ack[512];
    int n = snprintf(ack, sizeof(ack),
                     "{\"type\":\"ack\",\"client_id\":%s,\"id\":\"%s\",\"seq\":\"%s\","
                     "\"conv\":\"%s\"}",
                     cid_text, h.id, h.seq, conv);
    free(cid_text);
    json_decref(cid);
    if (n > 0 && (size_t)n < sizeof(ack) && v->ws &&
        sb_ws_send(v->ws, ack, (size_t)n) == SB_ETOOBIG)
        sb_ws_close(v->ws, 1008, "too slow");
    sb_free(s);
}

static void on_message(visitor_t *v, json_t *f)
{
    int bad = 0;
    const char *client_id = sb_json_opt_str(f, "client_id", &bad);
    const char *text = json_string_value(json_object_get(f, "text"));
    if (bad || !client_id || !*client_id || strlen(client_id) > SB_MAX_ID_LEN) {
        send_error(v, "bad_request", "client_id is required (a string of at most 200 bytes)", NULL,
                   0);
        return;
    }
    int rc = sb_text_check(text, SB_MAX_TEXT);
    if (rc) {
        send_error(v, rc == SB_ETOOBIG ? "too_large" : "bad_request",
                   rc == SB_ETOOBIG ? "text exceeds 8 KiB" : "text must be non-empty UTF-8",
                   client_id, 0);
        return;
    }
    uint64_t now = now_ms(v->wc), retry = 0;
    bucket_t *ipb = sb_map_get(&v->wc->by_ip, v->ip);
    const sb_config_t *cfg = v->wc->env.cfg;
    double vr = (double)cfg->visitor_rate, ir = (double)cfg->visitor_ip_rate;
    if (!take(&v->bucket, vr / 6 > 1 ? vr / 6 : 1, vr / 60, now, &retry) ||
        (ipb && !take(ipb, ir / 6 > 1 ? ir / 6 : 1, ir / 60, now, &retry))) {
        send_error(v, "rate_limited", "too many messages, slow down", client_id, retry);
        return;
    }
    send_ctx_t *s = SB_NEW(send_ctx_t);
    s->v = v;
    snprintf(s->client_id, sizeof(s->client_id), "%s", client_id);
    sb_ingest_t in = {.channel = CHANNEL,
                      .contact_id = v->contact,
                      .contact_name = v->name[0] ? v->name : NULL,
                      .contact_verified = v->verified,
                      .text = text,
                      .client_id = client_id};
    v->busy++;
    rc = sb_store_ingest_raw(v->wc->env.store, &in, on_ingested, s);
    if (rc) {
        v->busy--;
        sb_free(s);
        send_error(v, "unavailable", "not stored, please retry", client_id, 1000);
    }
}

static void on_typing(visitor_t *v, json_t *f)
{
    uint64_t now = now_ms(v->wc);
    if (!v->conv[0] || now - v->typing_at < 1500)
        return;
    v->typing_at = now;
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s}}", "type", "typing", "conv", v->conv,
                  "channel", "webchat", "on", !json_is_false(json_object_get(f, "on")), "who",
                  "type", "contact", "id", v->contact, "name", v->name);
    char *s = json_dumps(e, JSON_COMPACT);
    sb_store_publish(v->wc->env.store, v->conv, s, NULL, NULL);
    free(s);
    json_decref(e);
}

static void on_email(visitor_t *v, json_t *f)
{
    const char *email = json_string_value(json_object_get(f, "email"));
    if (!email || strlen(email) > 254 || !strchr(email, '@') || strchr(email, ' ')) {
        send_error(v, "bad_request", "email must be an email address", NULL, 0);
        return;
    }
    sb_store_contact_set(v->wc->env.store, v->contact, "email", email, NULL, NULL);
    if (v->conv[0]) {
        char text[400];
        snprintf(text, sizeof(text), "The visitor asked to continue by email: %s", email);
        sb_actor_t sys = {.type = "system", .name = "webchat"};
        sb_store_note(v->wc->env.store, v->conv, &sys, text, NULL, NULL, NULL);
    }
    json_t *st =
        json_pack("{s:s, s:s, s:s}", "type", "status", "status", "email_saved", "email", email);
    send_json(v, st);
    json_decref(st);
}

static void on_text(sb_ws_t *ws, const char *msg, size_t len, void *data)
{
    visitor_t *v = sb_ws_user(ws);
    json_t *f;
    sb_json_error_t je;
    int rc = sb_json_parse(msg, len, SB_MAX_WS_FRAME, 1, &f, &je);
    if (rc) {
        char m[200];
        snprintf(m, sizeof(m), "%s (line %d, column %d)", je.text, je.line, je.column);
        send_error(v, rc == SB_ETOOBIG ? "too_large" : "bad_request", m, NULL, 0);
        return;
    }
    const char *type = json_string_value(json_object_get(f, "type"));
    if (!type)
        send_error(v, "bad_request", "a frame needs a string field type", NULL, 0);
    else if (strcmp(type, "hello") == 0)
        on_hello(v, f);
    else if (v->state != V_READY)
        send_error(v, "not_ready", "send hello and wait for welcome first", NULL, 0);
    else if (strcmp(type, "message") == 0)
        on_message(v, f);
    else if (strcmp(type, "typing") == 0)
        on_typing(v, f);
    else if (strcmp(type, "email") == 0)
        on_email(v, f);
    else if (strcmp(type, "ping") == 0) {
        json_t *pong = json_pack("{s:s}", "type", "pong");
        send_json(v, pong);
        json_decref(pong);
    } else
        send_error(v, "bad_request", "unknown frame type", NULL, 0);
    json_decref(f);
}

/* ---- sockets ---- */

static const site_t *find_site(const webchat_t *wc, const char *id)
{
    for (int i = 0; i < wc->nsites; i++)
        if (strcmp(wc->sites[i].id, id) == 0)
            return &wc->sites[i];
    return NULL;
}

static bool origin_ok(const site_t *site, const char *origin)
{
    if (!origin) /* not a browser: no ambient credentials to protect */
        return true;
    for (int i = 0; i < site->norigins; i++)
        if (strcmp(site->origins[i], "*") == 0 || strcasecmp(site->origins[i], origin) == 0)
            return true;
    return false;
}

static int on_upgrade(sb_ws_t *ws, void *data)
{
    webchat_t *wc = data;
    const char *id = sb_ws_query(ws, "site");
    const site_t *site = find_site(wc, id ? id : "default");
    const char *origin = sb_ws_header(ws, "origin");
    if (!site) {
        SB_LOG_INFO("webchat.refused", "peer=%s reason=unknown-site", sb_ws_peer(ws));
        return 404;
    }
    if (!origin_ok(site, origin)) {
        SB_LOG_INFO("webchat.refused", "peer=%s site=%s origin=\"%s\" reason=origin",
                    sb_ws_peer(ws), site->id, origin);
        return 403;
    }
    return 0;
}

static void on_open(sb_ws_t *ws, void *data)
{
    webchat_t *wc = data;
    visitor_t *v = SB_NEW(visitor_t);
    v->wc = wc;
    v->ws = ws;
    const char *id = sb_ws_query(ws, "site");
    v->site = find_site(wc, id ? id : "default");
    snprintf(v->ip, sizeof(v->ip), "%s", sb_ws_peer(ws));
    if (!sb_map_get(&wc->by_ip, v->ip))
        sb_map_set(&wc->by_ip, v->ip, SB_NEW(bucket_t));
    v->all_next = wc->all;
    if (wc->all)
        wc->all->all_prev = v;
    wc->all = v;
    wc->nvisitors++;
    sb_ws_set_user(ws, v);
}

static void on_close(sb_ws_t *ws, void *data)
{
    visitor_t *v = sb_ws_user(ws);
    if (!v)
        return;
    v->ws = NULL;
    detach(v);
    if (v->busy == 0)
        visitor_free(v);
}

/* ---- delivery of events to visitors ---- */

static void deliver(webchat_t *wc, const char *conv, json_t *frame)
{
    char *s;
    if (sb_json_dumps(frame, JSON_COMPACT, &s, NULL) != 0)
        return;
    for (visitor_t *v = sb_map_get(&wc->by_conv, conv); v; v = v->conv_next)
        if (v->ws && v->state == V_READY && sb_ws_send(v->ws, s, strlen(s)) == SB_ETOOBIG)
            sb_ws_close(v->ws, 1008, "too slow");
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
        send_message_text(v, f.data, f.len, seq);
    sb_buf_dispose(&f);
    return true;
}

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    webchat_t *wc = data;
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
                   strcmp(et, "snoozed") == 0 || strcmp(et, "claimed") == 0))
            frame = json_pack("{s:s, s:O, s:s, s:o}", "type", "status", "status",
                              json_object_get(json_object_get(e, "conversation"), "status"),
                              "event", et, "expected_reply_ms", expected_json(wc));
    }
    if (frame) {
        deliver(wc, ev->conv, frame);
        json_decref(frame);
    }
    json_decref(e);
}

/* ---- the honest wait: median of recent human response times ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_response_times(int status, json_t *res, const char *errmsg, void *data)
{
    webchat_t *wc = data;
    if (status)
        return;
    json_t *samples = json_object_get(res, "samples");
    size_t n = 0, i;
    int64_t *ms = sb_calloc(json_array_size(samples) + 1, sizeof(int64_t));
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        const char *ch = json_string_value(json_object_get(s, "channel"));
        if (ch && strcmp(ch, CHANNEL) == 0)
            ms[n++] = json_integer_value(json_object_get(s, "ms"));
    }
    if (n > 0) {
        qsort(ms, n, sizeof(int64_t), cmp_i64);
        wc->expected_ms = ms[n / 2];
    }
    sb_free(ms);
}

static void on_timer(uv_timer_t *t)
{
    webchat_t *wc = t->data;
    sb_store_response_times(wc->env.store, 50, on_response_times, wc);
    uint64_t now = now_ms(wc);
    if (now - wc->last_sweep >= IP_SWEEP_MS) { /* forget idle per-IP buckets */
        wc->last_sweep = now;
        size_t b;
        char **gone = NULL;
        size_t ngone = 0;
        for (sb_map_entry_t *e = sb_map_first(&wc->by_ip, &b); e;
             e = sb_map_next(&wc->by_ip, e, &b)) {
            bucket_t *bk = e->value;
            if (now - bk->at_ms > IP_SWEEP_MS) {
                gone = sb_realloc(gone, (ngone + 1) * sizeof(char *));
                gone[ngone++] = sb_strdup(e->key);
            }
        }
        for (size_t i = 0; i < ngone; i++) {
            bool used = false;
            for (visitor_t *v = wc->all; v && !used; v = v->all_next)
                used = strcmp(v->ip, gone[i]) == 0;
            if (!used)
                sb_free(sb_map_del(&wc->by_ip, gone[i]));
            sb_free(gone[i]);
        }
        sb_free(gone);
    }
}

/* ---- sites ---- */

/* The origin of a URL ("https://a.example:8443/x" -> "https://a.example:8443"). */
static char *url_origin(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return sb_strdup(url);
    const char *slash = strchr(p + 3, '/');
    return slash ? sb_strndup(url, (size_t)(slash - url)) : sb_strdup(url);
}

static void load_sites(webchat_t *wc, const sb_config_t *cfg)
{
    if (cfg->site.n == 0) { /* the default site serves the daemon's own pages */
        wc->nsites = 1;
        wc->sites = sb_calloc(1, sizeof(site_t));
        wc->sites[0].id = sb_strdup("default");
        char secret[65];
        sb_random_hex(secret, 32); /* unknown to anyone: nobody can claim a verified id */
        wc->sites[0].secret = sb_strdup(secret);
        wc->sites[0].norigins = 1;
        wc->sites[0].origins = sb_calloc(1, sizeof(char *));
        wc->sites[0].origins[0] = url_origin(cfg->public_url);
        return;
    }
    wc->nsites = (int)cfg->site.n;
    wc->sites = sb_calloc(cfg->site.n, sizeof(site_t));
    for (size_t i = 0; i < cfg->site.n; i++) {
        const sb_config_entry_t *e = &cfg->site.items[i];
        site_t *s = &wc->sites[i];
        s->id = sb_strdup(e->argv[0]);
        s->secret = sb_strdup(e->argc > 1 ? e->argv[1] : "");
        s->norigins = e->argc > 2 ? e->argc - 2 : 1;
        s->origins = sb_calloc((size_t)s->norigins, sizeof(char *));
        for (int k = 0; k < s->norigins; k++)
            s->origins[k] = e->argc > 2 ? url_origin(e->argv[k + 2]) : url_origin(cfg->public_url);
    }
}

/* ---- lifecycle ---- */

static void on_sub_failed(sb_events_sub_t *sub, int status, void *data)
{
    SB_LOG_ERROR("webchat.events", "err=%s", sb_err_name(status));
}

static int start(const sb_connector_env_t *env, void **state)
{
    webchat_t *wc = SB_NEW(webchat_t);
    wc->env = *env;
    wc->expected_ms = -1;
    sb_map_init(&wc->by_conv);
    sb_map_init(&wc->by_ip);
    load_sites(wc, env->cfg);
    sb_ws_route_t r = {.path = "/v1/visitor/ws",
                       .subprotocol = "switchboard.visitor.v1",
                       .max_frame = SB_MAX_WS_FRAME,
                       .max_queue = 1024 * 1024,
                       .idle_timeout_s = 300,
                       .on_upgrade = on_upgrade,
                       .on_open = on_open,
                       .on_text = on_text,
                       .on_close = on_close,
                       .data = wc};
    int rc = sb_ws_route(env->http, &r);
    if (rc == 0)
        rc = sb_events_subscribe(env->events, NULL, on_event, on_sub_failed, wc, &wc->sub);
    if (rc) {
        sb_map_dispose(&wc->by_conv);
        sb_map_dispose(&wc->by_ip);
        sb_free(wc);
        return rc;
    }
    wc->timer = SB_NEW(uv_timer_t);
    uv_timer_init(env->loop, wc->timer);
    wc->timer->data = wc;
    uv_timer_start(wc->timer, on_timer, 200, RT_REFRESH_MS);
    *state = wc;
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    sb_free(h);
}

static void wc_free(webchat_t *wc)
{
    size_t b;
    for (sb_map_entry_t *e = sb_map_first(&wc->by_ip, &b); e; e = sb_map_next(&wc->by_ip, e, &b))
        sb_free(e->value);
    sb_map_dispose(&wc->by_ip);
    sb_map_dispose(&wc->by_conv);
    for (int i = 0; i < wc->nsites; i++) {
        sb_free(wc->sites[i].id);
        sb_free(wc->sites[i].secret);
        for (int k = 0; k < wc->sites[i].norigins; k++)
            sb_free(wc->sites[i].origins[k]);
        sb_free(wc->sites[i].origins);
    }
    sb_free(wc->sites);
    sb_free(wc);
}

static void stop(void *state)
{
    webchat_t *wc = state;
    if (!wc)
        return;
    sb_events_unsubscribe(wc->sub);
    wc->sub = NULL;
    uv_close((uv_handle_t *)wc->timer, on_timer_closed);
    wc->stopping = true;
    for (visitor_t *v = wc->all; v; v = v->all_next)
        if (v->ws)
            sb_ws_close(v->ws, 1001, "server shutting down");
    if (wc->nvisitors == 0)
        wc_free(wc);
}

static void metrics(void *state, char *out, size_t cap)
{
    webchat_t *wc = state;
    snprintf(out, cap,
             "# TYPE switchboard_webchat_sockets gauge\nswitchboard_webchat_sockets %zu\n"
             "# TYPE switchboard_webchat_expected_reply_ms gauge\n"
             "switchboard_webchat_expected_reply_ms %lld\n",
             wc->nvisitors, (long long)wc->expected_ms);
}

const sb_connector_desc_t sb_connector_webchat = {
    .name = "webchat",
    .start = start,
    .stop = stop,
    .metrics = metrics,
};

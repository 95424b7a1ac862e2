/* SPDX-License-Identifier: MIT */
/*
 * hello/welcome of the visitor protocol (switchboard.visitor.v1, docs/contract.md §5).
 *
 * A visitor token (`vt_` + 128 random bits) names an anonymous visitor; it is stored
 * hashed as sb:ident:visitor:<sha256>, but only once the visitor sends a first message
 * or an email address (frames.c): a hello alone stores nothing, so page views cannot
 * grow Redis. The welcome hands out a new token only when the hello brought none (or
 * one that is no token of ours); a well-formed token that Redis does not know yet is an
 * identity that never wrote, and is kept, so the first message later maps to it.
 * `user_id` + `user_hash` (hex HMAC-SHA256 of user_id with the site secret) attach the
 * visitor to that user's verified contact.
 *
 * The welcome carries the contact's latest web chat conversation and its newest
 * customer-visible messages after `last_seq` (never notes), one page of them: with
 * "more":true, "before" is the cursor a history frame asks older ones with.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "connectors/webchat/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

typedef struct hello_ctx {
    visitor_t *v;
    char *new_token;
    char *user_id;
} hello_ctx_t;

static void hello_free(hello_ctx_t *h)
{
    sb_free(h->new_token);
    sb_free(h->user_id);
    sb_free(h);
}

static void welcome(visitor_t *v, json_t *history, const char *before, const char *new_token)
{
    json_t *w = json_pack("{s:s, s:o, s:o}", "type", "welcome", "conv",
                          v->conv[0] ? json_string(v->conv) : json_null(), "history",
                          history ? json_incref(history) : json_array());
    sb__webchat_wait_json(v->wc, w);
    json_object_set_new(w, "token", new_token ? json_string(new_token) : json_null());
    json_object_set_new(w, "verified", json_boolean(v->verified));
    json_object_set_new(w, "more", json_boolean(before != NULL));
    json_object_set_new(w, "before", before ? json_string(before) : json_null());
    sb__webchat_note_sent(v, v->last_seq);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(w, "history"), i, m)
    {
        sb__webchat_note_sent(v, json_string_value(json_object_get(m, "seq")));
    }
    sb__webchat_send_json(v, w);
    /* the visitor sees the answers now: none of them goes on by mail (docs/email.md) */
    json_t *hist = json_object_get(w, "history");
    const char *newest =
        json_string_value(json_object_get(json_array_get(hist, json_array_size(hist) - 1), "seq"));
    if (v->conv[0] && newest)
        sb_store_seen(v->wc->env.store, v->conv, newest, NULL, NULL);
    json_decref(w);
    v->state = V_READY;
    held_t *held = v->held;
    size_t nheld = v->nheld;
    v->held = NULL;
    v->nheld = 0;
    for (size_t k = 0; k < nheld; k++) {
        sb__webchat_send_message_text(v, held[k].text, strlen(held[k].text), held[k].seq);
        sb_free(held[k].text);
    }
    sb_free(held);
    SB_LOG_DEBUG("webchat.welcome", "peer=%s contact=%s conv=%s", v->ip, v->contact, v->conv);
}

static void hello_done(hello_ctx_t *h, json_t *history, const char *before)
{
    welcome(h->v, history, before, h->new_token);
    hello_free(h);
}

static void hello_fail(hello_ctx_t *h, int status)
{
    sb__webchat_send_error(h->v, "unavailable", "storage unavailable, retry", NULL, 1000);
    h->v->state = V_NEW;
    SB_LOG_WARN("webchat.hello", "peer=%s err=%s", h->v->ip, sb_err_name(status));
    hello_free(h);
}

/*
 * The start of every hello step's store callback: false (and h freed) when the socket
 * is gone or the step failed; true to go on.
 */
static bool hello_step_ok(hello_ctx_t *h, int status)
{
    if (!sb__webchat_alive(h->v)) {
        hello_free(h);
        return false;
    }
    if (status) {
        hello_fail(h, status);
        return false;
    }
    return true;
}

/* Runs a store call for a hello step: rc is its return (the callback then never runs). */
static void hello_call(hello_ctx_t *h, int rc)
{
    if (rc) {
        h->v->busy--;
        hello_fail(h, rc);
    }
}

static void on_page(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!hello_step_ok(h, status))
        return;
    hello_done(h, json_object_get(res, "items"), json_string_value(json_object_get(res, "next")));
}

static void on_latest(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!hello_step_ok(h, status))
        return;
    visitor_t *v = h->v;
    const char *conv = json_string_value(json_object_get(res, "id"));
    if (!conv) {
        hello_done(h, NULL, NULL);
        return;
    }
    sb__webchat_attach(v, conv);
    v->busy++;
    hello_call(h, sb_store_public_page(v->wc->env.store, conv, NULL, v->last_seq, SB__WC_PAGE,
                                       SB__WC_PAGE_BYTES, on_page, h));
}

static void find_conversation(hello_ctx_t *h)
{
    visitor_t *v = h->v;
    v->busy++;
    hello_call(h,
               sb_store_contact_latest(v->wc->env.store, v->contact, SB__WC_CHANNEL, on_latest, h));
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
    hello_call(h, sb_store_ident_set(v->wc->env.store, "visitor", v->token_hash, v->contact,
                                     on_token_linked, h));
}

/* The visitor's token is settled: find its contact's conversation, if it has one. */
static void after_token(hello_ctx_t *h)
{
    visitor_t *v = h->v;
    if (h->user_id) {
        char value[300];
        snprintf(value, sizeof(value), "%s:%s", v->site->id, h->user_id);
        v->busy++;
        hello_call(h, sb_store_contact_resolve(v->wc->env.store, "user", value,
                                               v->name[0] ? v->name : NULL, v->email,
                                               on_user_contact, h));
    } else if (v->contact[0]) {
        find_conversation(h);
    } else {
        hello_done(h, NULL, NULL); /* an anonymous visitor who never wrote */
    }
}

static void new_token(hello_ctx_t *h)
{
    char raw[33];
    sb_random_hex(raw, 16);
    h->new_token = sb_asprintf("vt_%s", raw);
    sb_sha256_hex(h->new_token, strlen(h->new_token), h->v->token_hash);
}

/* A token we could have issued: "vt_" and 32 lowercase hex digits. */
static bool token_well_formed(const char *t)
{
    if (strlen(t) != 35 || strncmp(t, "vt_", 3) != 0)
        return false;
    for (const char *p = t + 3; *p; p++)
        if (!isdigit((unsigned char)*p) && !(*p >= 'a' && *p <= 'f'))
            return false;
    return true;
}

static void on_token_contact(int status, json_t *res, const char *errmsg, void *data)
{
    hello_ctx_t *h = data;
    if (!hello_step_ok(h, status == SB_ENOTFOUND ? 0 : status))
        return;
    if (status == 0)
        snprintf(h->v->contact, sizeof(h->v->contact), "%s",
                 json_string_value(json_object_get(res, "id")));
    after_token(h);
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

void sb__webchat_on_hello(visitor_t *v, json_t *f)
{
    if (v->state != V_NEW) {
        sb__webchat_send_error(v, "bad_request", "hello was already sent", NULL, 0);
        return;
    }
    uint64_t retry = 0;
    if (!sb__webchat_take(v, WC_HELLO, &retry)) {
        SB_LOG_DEBUG("webchat.limited", "peer=%s frame=hello", v->ip);
        sb__webchat_send_error(v, "rate_limited", "too many visitors from your address, retry",
                               NULL, retry);
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
    if (bad || (token && strlen(token) > 100) || (last_seq && !sb__webchat_seq_ok(last_seq)) ||
        (name && sb_line_check(name, 100) != 0) ||
        (email && *email && sb_email_check(email) != 0) ||
        (user_id && strlen(user_id) > SB_MAX_ID_LEN)) {
        sb__webchat_send_error(v, "bad_request",
                               "hello fields must be strings of sane length (a name one line "
                               "without control characters, an email an address)",
                               NULL, 0);
        return;
    }
    if (site && strcmp(site, v->site->id) != 0) {
        sb__webchat_send_error(v, "forbidden", "site does not match the connection's site", NULL,
                               0);
        return;
    }
    hello_ctx_t *h = SB_NEW(hello_ctx_t);
    h->v = v;
    if (user_id) {
        if (user_hash_ok(v->site, user_id, user_hash)) {
            h->user_id = sb_strdup(user_id);
        } else {
            /* Never merge an unverified visitor into a verified contact. */
            sb__webchat_send_error(v, "forbidden",
                                   "user_hash does not verify user_id; continuing anonymously",
                                   NULL, 0);
        }
    }
    snprintf(v->name, sizeof(v->name), "%s", name ? name : "");
    sb_free(v->email);
    v->email = email && *email ? sb_strdup(email) : NULL;
    sb_free(v->last_seq);
    v->last_seq = last_seq && *last_seq && strcmp(last_seq, "0") != 0 ? sb_strdup(last_seq) : NULL;
    v->state = V_HELLO;
    if (!token || !token_well_formed(token)) { /* none, or none of ours: start afresh */
        new_token(h);
        after_token(h);
        return;
    }
    sb_sha256_hex(token, strlen(token), v->token_hash);
    v->busy++;
    hello_call(h,
               sb_store_ident_get(v->wc->env.store, "visitor", v->token_hash, on_token_contact, h));
}

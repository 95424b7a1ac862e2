/* SPDX-License-Identifier: MIT */
/*
 * POST /v1/inbound (docs/contract.md §5): a bot, a form or any system posts a customer message.
 * The contact is named by `contact.id` (which must exist; a merged contact's messages
 * go to the contact it was merged into), `contact.email` (an RFC 5322 address,
 * sb_email_check) or `contact.external_id` (a handle on the message's channel); the
 * last two create the contact on first use. Every field is checked first (api_input.h).
 *
 * With `conv`, the message continues that conversation, and only as its own customer on
 * its own channel: the conversation must be in the token's channel scope (404 otherwise,
 * as every /v1/conversations/{id} endpoint answers), `channel` (default: the
 * conversation's) must be the conversation's (422 `channel_mismatch`), and the contact
 * must be the conversation's contact (422 `contact_mismatch`: an email or handle is only
 * looked up, never created, on this path). The function re-checks contact and channel
 * atomically (409 if a merge moved the conversation meanwhile). Without `conv` a token
 * may post only on its channels (403).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/util.h"
#include "gateway/api_input.h"

/* Where the conversation's contact id is kept on the conv path (set after validation). */
#define CONV_CONTACT "\x01conv_contact"

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    bool dup = json_is_true(json_object_get(result, "duplicate"));
    json_t *msg = json_object_get(result, "message");
    if (!dup) {
        int ch = sb_channel_index(json_string_value(json_object_get(msg, "channel")));
        if (ch >= 0)
            c->app->msgs_in[ch]++;
    }
    SB_LOG_DEBUG("api.inbound", "conv=%s duplicate=%d",
                 json_string_value(json_object_get(msg, "conv")), dup);
    sb__api_reply(c, dup ? 200 : 201, msg);
}

static void ingest(api_call_t *c, const char *contact_id)
{
    json_t *b = c->body;
    json_t *contact = json_object_get(b, "contact");
    sb_ingest_t in = {0};
    in.channel = json_string_value(json_object_get(b, "channel"));
    in.contact_id = contact_id;
    in.contact_name = json_string_value(json_object_get(contact, "name"));
    in.conv = c->conv[0] ? c->conv : NULL;
    in.text = json_string_value(json_object_get(b, "text"));
    in.subject = json_string_value(json_object_get(b, "subject"));
    in.external_id = json_string_value(json_object_get(b, "external_id"));
    in.client_id = json_string_value(json_object_get(b, "client_id"));
    in.attachments = json_object_get(b, "attachments");
    in.ext = json_object_get(b, "ext");
    c->busy = true;
    sb__api_begin(c, sb_store_ingest(c->app->store, &in, on_ingested, c));
}

static void contact_mismatch(api_call_t *c)
{
    sb__api_fail(c, 422, "contact_mismatch", "contact is not the customer of conversation %s",
                 c->conv);
}

/* The handle (kind, value) of contact.email or contact.external_id; false if neither. */
static bool handle_of(api_call_t *c, char *kind, size_t kcap, char *value, size_t vcap)
{
    json_t *ct = json_object_get(c->body, "contact");
    const char *email = json_string_value(json_object_get(ct, "email"));
    const char *ext = json_string_value(json_object_get(ct, "external_id"));
    if (email) {
        snprintf(kind, kcap, "email");
        size_t i = 0;
        for (; email[i] && i + 1 < vcap; i++)
            value[i] = (char)tolower((unsigned char)email[i]);
        value[i] = '\0';
        return true;
    }
    if (ext) {
        snprintf(kind, kcap, "%s", json_string_value(json_object_get(c->body, "channel")));
        snprintf(value, vcap, "%s", ext);
        return true;
    }
    return false;
}

/* ---- without conv: find or create the contact ---- */

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    char id[SB_ID_MAX];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(result, "id")));
    ingest(c, id);
}

static void on_contact_found(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (status == SB_ENOTFOUND && !sb__api_gone(c)) {
        const char *id =
            json_string_value(json_object_get(json_object_get(c->body, "contact"), "id"));
        sb__api_fail(c, 422, "unknown_contact", "contact.id: no contact %s", id);
        return;
    }
    if (sb__api_settled(c, status, errmsg))
        return;
    const char *into = json_string_value(json_object_get(result, "merged_into"));
    char id[SB_ID_MAX];
    snprintf(id, sizeof(id), "%s", into ? into : json_string_value(json_object_get(result, "id")));
    ingest(c, id);
}

static void contact_step(api_call_t *c)
{
    json_t *ct = json_object_get(c->body, "contact");
    const char *id = json_string_value(json_object_get(ct, "id"));
    c->busy = true;
    if (id) {
        sb__api_begin(c, sb_store_contact_find(c->app->store, id, on_contact_found, c));
        return;
    }
    char kind[40], value[300];
    handle_of(c, kind, sizeof(kind), value, sizeof(value));
    sb__api_begin(c, sb_store_contact_resolve(
                         c->app->store, kind, value, json_string_value(json_object_get(ct, "name")),
                         json_string_value(json_object_get(ct, "email")), on_contact, c));
}

/* ---- with conv: its own customer, on its own channel ---- */

static void on_ident(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (status == SB_ENOTFOUND && !sb__api_gone(c)) {
        contact_mismatch(c);
        return;
    }
    if (sb__api_settled(c, status, errmsg))
        return;
    const char *want = json_string_value(json_object_get(c->body, CONV_CONTACT));
    const char *id = json_string_value(json_object_get(result, "id"));
    if (!id || !want || strcmp(id, want) != 0) {
        contact_mismatch(c);
        return;
    }
    char cid[SB_ID_MAX];
    snprintf(cid, sizeof(cid), "%s", id);
    ingest(c, cid);
}

static void on_conv(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    json_t *b = c->body;
    const char *channel = json_string_value(json_object_get(result, "channel"));
    const char *owner =
        json_string_value(json_object_get(json_object_get(result, "contact"), "id"));
    const char *asked = json_string_value(json_object_get(b, "channel"));
    if (!channel || !owner || !sb__api_scope_allows(sb__api_scope(c->who), channel)) {
        sb__api_fail(c, 404, "not_found", "no conversation %s", c->conv);
        return;
    }
    if (asked && strcmp(asked, channel) != 0) {
        sb__api_fail(c, 422, "channel_mismatch",
                     "channel is %s but conversation %s is on %s: a message goes on its "
                     "conversation's channel",
                     asked, c->conv, channel);
        return;
    }
    json_object_set_new(b, "channel", json_string(channel));
    json_object_set_new(b, CONV_CONTACT, json_string(owner));
    json_t *ct = json_object_get(b, "contact");
    const char *id = json_string_value(json_object_get(ct, "id"));
    if (id) {
        if (strcmp(id, owner) != 0)
            contact_mismatch(c);
        else
            ingest(c, owner);
        return;
    }
    char kind[40], value[300];
    handle_of(c, kind, sizeof(kind), value, sizeof(value));
    c->busy = true;
    sb__api_begin(c, sb_store_ident_get(c->app->store, kind, value, on_ident, c));
}

/* ---- the request ---- */

static bool contact_valid(api_call_t *c, json_t *ct)
{
    const char *id, *email, *ext, *name;
    if (!json_is_object(ct)) {
        sb__api_fail(c, 400, "bad_request",
                     "contact is required: an object with id, email or external_id");
        return false;
    }
    if (!sb__api_opt_line(c, ct, "contact.id", 64, &id) ||
        !sb__api_opt_line(c, ct, "contact.email", SB_MAX_EMAIL, &email) ||
        !sb__api_opt_line(c, ct, "contact.external_id", SB_MAX_ID_LEN, &ext) ||
        !sb__api_opt_line(c, ct, "contact.name", SB_MAX_NAME, &name))
        return false;
    if (id && !sb_id_valid(id, "ct_")) {
        sb__api_fail(c, 400, "bad_request", "contact.id is not a contact id (ct_…)");
        return false;
    }
    if (email && sb_email_check(email) != 0) {
        sb__api_fail(c, 400, "bad_request",
                     "contact.email is not an email address (name@example.com)");
        return false;
    }
    if (!id && !email && !(ext && *ext)) {
        sb__api_fail(c, 400, "bad_request", "contact needs id, email or external_id");
        return false;
    }
    return true;
}

/* Validates the body; returns false after answering 400/404/413. */
static bool inbound_valid(api_call_t *c)
{
    json_t *b = c->body;
    const char *s, *conv;
    if (!sb__api_opt_line(c, b, "channel", 32, &s))
        return false;
    if (s && sb_channel_index(s) < 0) {
        sb__api_fail(c, 400, "bad_request", "channel must be one of %s", SB_CHANNEL_LIST_TEXT);
        return false;
    }
    if (!sb__api_text(c, "text", json_object_get(b, "text"), SB_MAX_TEXT) ||
        !sb__api_opt_line(c, b, "external_id", SB_MAX_ID_LEN, &s) ||
        !sb__api_opt_line(c, b, "client_id", SB_MAX_ID_LEN, &s) ||
        !sb__api_opt_line(c, b, "subject", SB_MAX_SUBJECT, &s) ||
        !sb__api_opt_line(c, b, "conv", 64, &conv) ||
        !sb__api_attachments(c, json_object_get(b, "attachments")) ||
        !sb__api_ext(c, json_object_get(b, "ext")) ||
        !contact_valid(c, json_object_get(b, "contact")))
        return false;
    if (conv && !sb_id_valid(conv, "c_")) {
        sb__api_fail(c, 404, "not_found", "no conversation %s", conv);
        return false;
    }
    snprintf(c->conv, sizeof(c->conv), "%s", conv ? conv : "");
    return true;
}

static void inbound_authed(api_call_t *c)
{
    if (!sb__api_parse_body(c) || !inbound_valid(c))
        return;
    const char *channel = json_string_value(json_object_get(c->body, "channel"));
    if (channel && !sb__api_scope_allows(sb__api_scope(c->who), channel)) {
        sb__api_fail(c, 403, "forbidden", "this token may not post on channel %s", channel);
        return;
    }
    if (c->conv[0]) {
        c->busy = true;
        sb__api_begin(c, sb_store_get(c->app->store, c->conv, on_conv, c));
        return;
    }
    if (!channel) {
        if (!sb__api_scope_allows(sb__api_scope(c->who), "api")) {
            sb__api_fail(c, 403, "forbidden", "this token may not post on channel api");
            return;
        }
        json_object_set_new(c->body, "channel", json_string("api"));
    }
    contact_step(c);
}

static void h_inbound(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, inbound_authed);
}

void sb__api_inbound_routes(sb_app_t *app)
{
    sb_http_route(app->http, "POST", "/v1/inbound", h_inbound, app);
}

/* SPDX-License-Identifier: MIT */
/*
 * Conversation endpoints of the REST API (DESIGN §5): POST /v1/inbound (a bot, form or
 * any system posts a customer message), GET /v1/conversations (the list across shards,
 * most urgent first, paged by cursor), GET /v1/conversations/{id}, its messages,
 * staff/bot replies with the `based_on` collision check, notes, state changes (claim,
 * release, resolve, reopen, snooze, priority, tags) and handoff (bot -> humans).
 *
 * Roles (checked by sb__api_authenticate from the minimum each handler names):
 * bots (SB_ROLE_BOT) may post inbound messages, replies, notes and handoffs; everything
 * else needs an agent or exec (SB_ROLE_AGENT); stealing a claim needs an admin (the
 * actor's admin flag, enforced by the function).
 *
 * Channel scopes (a token's `channels` field, sb__api_scope): a scoped token lists only
 * its channels' conversations, and every other conversation is 404 to it (looked up
 * first: one more round trip, for scoped tokens only); its inbound messages must be on
 * its channels (403).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/util.h"
#include "gateway/internal.h"

/* Validates a text field of c->body; answers 400/413 and returns false when bad. */
static bool check_text(api_call_t *c, const char *field, const char *text, size_t max)
{
    int rc = sb_text_check(text, max);
    if (rc == SB_ETOOBIG)
        sb__api_fail(c, 413, "too_large", "%s exceeds %zu bytes", field, max);
    else if (rc == SB_EUTF8)
        sb__api_fail(c, 400, "bad_request", "%s is not valid UTF-8", field);
    else if (rc != 0)
        sb__api_fail(c, 400, "bad_request", "%s is required and must be a non-empty string", field);
    return rc == 0;
}

/* Reads an optional string field bounded by max; answers 400 and returns false if bad. */
static bool opt_str(api_call_t *c, const json_t *obj, const char *key, size_t max, const char **out)
{
    int bad = 0;
    *out = sb_json_opt_str(obj, key, &bad);
    if (bad || (*out && strlen(*out) > max)) {
        sb__api_fail(c, 400, "bad_request", "%s must be a string of at most %zu bytes", key, max);
        return false;
    }
    return true;
}

static bool conv_param(api_call_t *c)
{
    const char *id = sb_http_req_param(c->req, "id");
    if (!sb_id_valid(id, "c_")) {
        sb__api_fail(c, 404, "not_found", "no conversation %.64s", id ? id : "");
        return false;
    }
    snprintf(c->conv, sizeof(c->conv), "%s", id);
    return true;
}

/* ---- channel scopes ---- */

static bool scoped(const api_call_t *c)
{
    return sb__api_scope(c->who) != SB_SCOPE_ALL;
}

static void on_scope_checked(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    const char *channel = json_string_value(json_object_get(result, "channel"));
    if (!sb__api_scope_allows(sb__api_scope(c->who), channel)) {
        sb__api_fail(c, 404, "not_found", "no conversation %s", c->conv);
        return;
    }
    snprintf(c->channel, sizeof(c->channel), "%s", channel ? channel : "");
    c->next(c);
}

/*
 * Runs step(c) once c->conv is known to exist in the token's scope (answers 404 if not).
 * Looks the conversation up only for scoped tokens, or always when `always`.
 */
static void in_scope(api_call_t *c, api_step_fn step, bool always)
{
    if (!always && !scoped(c)) {
        step(c);
        return;
    }
    c->next = step;
    c->busy = true;
    sb__api_begin(c, sb_store_get(c->app->store, c->conv, on_scope_checked, c));
}

/* ---- POST /v1/inbound ---- */

typedef struct inbound {
    api_call_t *c;
    char contact[SB_ID_MAX];
} inbound_t;

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    bool dup = json_is_true(json_object_get(result, "duplicate"));
    json_t *msg = json_object_get(result, "message");
    if (!dup) {
        int ch = sb_app_channel_index(json_string_value(json_object_get(msg, "channel")));
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
    in.conv = json_string_value(json_object_get(b, "conv"));
    in.text = json_string_value(json_object_get(b, "text"));
    in.subject = json_string_value(json_object_get(b, "subject"));
    in.external_id = json_string_value(json_object_get(b, "external_id"));
    in.client_id = json_string_value(json_object_get(b, "client_id"));
    in.attachments = json_object_get(b, "attachments");
    in.ext = json_object_get(b, "ext");
    c->busy = true;
    sb__api_begin(c, sb_store_ingest(c->app->store, &in, on_ingested, c));
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    char id[SB_ID_MAX];
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(result, "id")));
    ingest(c, id);
}

/* Validates the inbound body; returns false after answering 400. */
static bool inbound_valid(api_call_t *c)
{
    json_t *b = c->body;
    const char *s;
    if (!opt_str(c, b, "channel", 32, &s))
        return false;
    if (!s)
        json_object_set_new(b, "channel", json_string("api"));
    else if (sb_app_channel_index(s) < 0) {
        sb__api_fail(c, 400, "bad_request",
                     "channel must be one of webchat, email, mastodon, bluesky, api");
        return false;
    }
    if (!check_text(c, "text", json_string_value(json_object_get(b, "text")), SB_MAX_TEXT))
        return false;
    if (!opt_str(c, b, "external_id", SB_MAX_ID_LEN, &s) ||
        !opt_str(c, b, "client_id", SB_MAX_ID_LEN, &s) ||
        !opt_str(c, b, "subject", SB_MAX_SUBJECT, &s) || !opt_str(c, b, "conv", 64, &s))
        return false;
    if (s && !sb_id_valid(s, "c_")) {
        sb__api_fail(c, 404, "not_found", "no conversation %s", s);
        return false;
    }
    json_t *att = json_object_get(b, "attachments"), *ext = json_object_get(b, "ext");
    if ((att && !json_is_array(att)) || (ext && !json_is_object(ext))) {
        sb__api_fail(c, 400, "bad_request", "attachments must be an array, ext an object");
        return false;
    }
    json_t *ct = json_object_get(b, "contact");
    if (!json_is_object(ct)) {
        sb__api_fail(c, 400, "bad_request",
                     "contact is required: an object with id, email or external_id");
        return false;
    }
    if (!opt_str(c, ct, "id", 64, &s) || !opt_str(c, ct, "email", 254, &s) ||
        !opt_str(c, ct, "external_id", SB_MAX_ID_LEN, &s) || !opt_str(c, ct, "name", 200, &s))
        return false;
    return true;
}

static void inbound_authed(api_call_t *c)
{
    if (!sb__api_parse_body(c) || !inbound_valid(c))
        return;
    const char *channel = json_string_value(json_object_get(c->body, "channel"));
    if (!sb__api_scope_allows(sb__api_scope(c->who), channel)) {
        sb__api_fail(c, 403, "forbidden", "this token may not post on channel %s", channel);
        return;
    }
    json_t *ct = json_object_get(c->body, "contact");
    const char *id = json_string_value(json_object_get(ct, "id"));
    const char *email = json_string_value(json_object_get(ct, "email"));
    const char *ext = json_string_value(json_object_get(ct, "external_id"));
    const char *name = json_string_value(json_object_get(ct, "name"));
    if (id) {
        if (!sb_id_valid(id, "ct_")) {
            sb__api_fail(c, 400, "bad_request", "contact.id is not a contact id");
            return;
        }
        ingest(c, id);
        return;
    }
    char kind[40], value[300];
    if (email) {
        if (!strchr(email, '@')) {
            sb__api_fail(c, 400, "bad_request", "contact.email is not an email address");
            return;
        }
        snprintf(kind, sizeof(kind), "email");
        size_t i = 0;
        for (; email[i] && i + 1 < sizeof(value); i++)
            value[i] = (char)tolower((unsigned char)email[i]);
        value[i] = '\0';
    } else if (ext) {
        snprintf(kind, sizeof(kind), "%s", json_string_value(json_object_get(c->body, "channel")));
        snprintf(value, sizeof(value), "%s", ext);
    } else {
        sb__api_fail(c, 400, "bad_request", "contact needs id, email or external_id");
        return;
    }
    c->busy = true;
    sb__api_begin(c,
                  sb_store_contact_resolve(c->app->store, kind, value, name, email, on_contact, c));
}

static void h_inbound(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, inbound_authed);
}

/* ---- GET /v1/conversations/{id} and its messages ---- */

static void on_got(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    if (!sb__api_scope_allows(sb__api_scope(c->who),
                              json_string_value(json_object_get(result, "channel"))))
        sb__api_fail(c, 404, "not_found", "no conversation %s", c->conv);
    else
        sb__api_reply(c, 200, result);
}

static void get_authed(api_call_t *c)
{
    if (!conv_param(c))
        return;
    c->busy = true;
    sb__api_begin(c, sb_store_get(c->app->store, c->conv, on_got, c));
}

static void h_get(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, get_authed);
}

static void messages_go(api_call_t *c)
{
    const char *after = sb_http_req_query(c->req, "after");
    const char *lim = sb_http_req_query(c->req, "limit");
    long limit = 100;
    if (lim) {
        char *end;
        limit = strtol(lim, &end, 10);
        if (*end || limit < 1 || limit > 1000) {
            sb__api_fail(c, 400, "bad_request", "limit must be 1..1000");
            return;
        }
    }
    if (after && (strlen(after) > 42 || strspn(after, "0123456789-") != strlen(after))) {
        sb__api_fail(c, 400, "bad_request", "after must be a seq like 1732270000123-0");
        return;
    }
    c->busy = true;
    sb__api_begin(
        c, sb_store_messages(c->app->store, c->conv, after, (unsigned)limit, sb__api_on_result, c));
}

static void messages_authed(api_call_t *c)
{
    if (conv_param(c))
        in_scope(c, messages_go, false);
}

static void h_messages(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, messages_authed);
}

/* ---- GET /v1/conversations ---- */

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

/* Reads ?status, ?assignee, ?channel, ?limit, ?cursor into q; answers 400 when bad. */
static bool list_query(api_call_t *c, sb_list_query_t *q)
{
    static const char *const statuses[] = {"open", "pending", "snoozed", "resolved", "all"};
    static const char *const assignees[] = {"me", "none", "any"};
    q->status = sb_http_req_query(c->req, "status");
    q->assignee = sb_http_req_query(c->req, "assignee");
    q->channel = sb_http_req_query(c->req, "channel");
    q->cursor = sb_http_req_query(c->req, "cursor");
    const char *lim = sb_http_req_query(c->req, "limit");
    if (q->status && !one_of(q->status, statuses, SB_ARRAY_LEN(statuses))) {
        sb__api_fail(c, 400, "bad_request",
                     "status must be open, pending, snoozed, resolved or all");
        return false;
    }
    if (q->assignee && !one_of(q->assignee, assignees, SB_ARRAY_LEN(assignees)) &&
        !sb_id_valid(q->assignee, "st_")) {
        sb__api_fail(c, 400, "bad_request", "assignee must be me, none, any or a staff id");
        return false;
    }
    if (q->assignee && strcmp(q->assignee, "me") == 0)
        q->assignee = json_string_value(json_object_get(c->who, "id"));
    if (q->channel && sb_app_channel_index(q->channel) < 0) {
        sb__api_fail(c, 400, "bad_request",
                     "channel must be one of webchat, email, mastodon, bluesky, api");
        return false;
    }
    q->limit = 50;
    if (lim) {
        char *end;
        long l = strtol(lim, &end, 10);
        if (*end || end == lim || l < 1 || l > 200) {
            sb__api_fail(c, 400, "bad_request", "limit must be 1..200");
            return false;
        }
        q->limit = (unsigned)l;
    }
    return true;
}

/* A scoped token's page: only its channels' conversations (a page may come out short). */
static void on_listed(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    unsigned scope = c->req ? sb__api_scope(c->who) : SB_SCOPE_ALL;
    json_t *items = status == 0 ? json_object_get(result, "items") : NULL;
    for (size_t i = json_array_size(items); scope != SB_SCOPE_ALL && i-- > 0;) {
        const char *ch = json_string_value(json_object_get(json_array_get(items, i), "channel"));
        if (!sb__api_scope_allows(scope, ch))
            json_array_remove(items, i);
    }
    sb__api_on_result(status, result, errmsg, data);
}

static void list_authed(api_call_t *c)
{
    static const char *const names[] = {
#define SB_CHANNEL_NAME(n) #n,
        SB_CHANNELS(SB_CHANNEL_NAME)
#undef SB_CHANNEL_NAME
    };
    sb_list_query_t q = {0};
    if (!list_query(c, &q))
        return;
    unsigned scope = sb__api_scope(c->who);
    if (q.channel && !sb__api_scope_allows(scope, q.channel)) {
        sb__api_fail(c, 403, "forbidden", "this token may not see channel %s", q.channel);
        return;
    }
    for (size_t i = 0; !q.channel && scope != SB_SCOPE_ALL && i < SB_ARRAY_LEN(names); i++)
        if (scope == 1u << i) /* one channel: let the store filter */
            q.channel = names[i];
    c->busy = true;
    int rc = sb_store_list(c->app->store, &q, on_listed, c);
    if (rc) {
        c->busy = false;
        if (rc == SB_EINVAL)
            sb__api_fail(c, 400, "bad_request", "cursor does not belong to this list");
        else
            sb__api_fail_store(c, rc, NULL);
    }
}

static void h_list(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, list_authed);
}

/* ---- POST replies, notes and state changes ---- */

static void on_posted(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_gone(c))
        return;
    if (status == SB_ECONFLICT && result) {
        json_t *e = json_pack("{s:{s:s, s:s, s:O}}", "error", "code", "conflict", "message",
                              "newer messages exist; read them, or send with force", "messages",
                              json_object_get(result, "messages"));
        sb__api_reply(c, 409, e);
        json_decref(e);
        return;
    }
    if (status != 0) {
        sb__api_fail_store(c, status, errmsg);
        return;
    }
    json_t *msg = json_object_get(result, "message");
    bool dup = json_is_true(json_object_get(result, "duplicate"));
    if (!dup && json_is_string(json_object_get(msg, "dir")) &&
        strcmp(json_string_value(json_object_get(msg, "dir")), "out") == 0) {
        int ch = sb_app_channel_index(json_string_value(json_object_get(msg, "channel")));
        if (ch >= 0)
            c->app->msgs_out[ch]++;
    }
    sb__api_reply(c, dup ? 200 : 201, msg);
}

static void post_go(api_call_t *c, bool is_note)
{
    if (!sb__api_parse_body(c))
        return;
    const char *text = json_string_value(json_object_get(c->body, "text"));
    const char *client_id, *based_on;
    if (!check_text(c, "text", text, SB_MAX_TEXT) ||
        !opt_str(c, c->body, "client_id", SB_MAX_ID_LEN, &client_id) ||
        !opt_str(c, c->body, "based_on", 42, &based_on))
        return;
    sb_actor_t who;
    sb__api_actor(c, &who);
    bool force = json_is_true(json_object_get(c->body, "force"));
    c->busy = true;
    sb__api_begin(
        c, is_note ? sb_store_note(c->app->store, c->conv, &who, text, client_id, on_posted, c)
                   : sb_store_reply(c->app->store, c->conv, &who, text, client_id, based_on, force,
                                    on_posted, c));
}

static void reply_go(api_call_t *c)
{
    post_go(c, false);
}

static void note_go(api_call_t *c)
{
    post_go(c, true);
}

static void reply_authed(api_call_t *c)
{
    if (conv_param(c))
        in_scope(c, reply_go, false);
}

static void note_authed(api_call_t *c)
{
    if (conv_param(c))
        in_scope(c, note_go, false);
}

static void h_reply(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, reply_authed);
}

static void h_note(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, note_authed);
}

/* ---- POST /v1/conversations/{id}/typing: "X is typing" to the customer and colleagues ---- */

static void on_typing_published(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    json_t *ok = json_pack("{s:b}", "ok", 1);
    sb__api_reply(c, 202, ok);
    json_decref(ok);
}

/* The conversation was looked up: its channel goes into the event (feeds' scopes). */
static void typing_go(api_call_t *c)
{
    size_t len;
    sb_http_req_body(c->req, &len);
    if (len > 0 && !sb__api_parse_body(c))
        return;
    sb_actor_t who;
    sb__api_actor(c, &who);
    json_t *e =
        json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s?, s:s?}}", "type", "typing", "conv", c->conv,
                  "channel", c->channel, "on", !json_is_false(json_object_get(c->body, "on")),
                  "who", "type", who.type, "id", who.id, "name", who.name);
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    c->busy = true;
    int rc = sb_store_publish(c->app->store, c->conv, text, on_typing_published, c);
    free(text);
    sb__api_begin(c, rc);
}

static void typing_authed(api_call_t *c)
{
    if (conv_param(c))
        in_scope(c, typing_go, true);
}

static void h_typing(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, typing_authed);
}

static void act_go(api_call_t *c)
{
    size_t len;
    sb_http_req_body(c->req, &len);
    if (len > 0 && !sb__api_parse_body(c))
        return;
    const char *reason;
    if (!opt_str(c, c->body, "reason", 1000, &reason))
        return;
    const char *path = sb_http_req_path(c->req);
    const char *action = strrchr(path, '/') + 1;
    sb_actor_t who;
    sb__api_actor(c, &who);
    c->busy = true;
    sb__api_begin(
        c, sb_store_act(c->app->store, c->conv, action, &who, c->body, sb__api_on_result, c));
}

static void act_authed(api_call_t *c)
{
    if (conv_param(c))
        in_scope(c, act_go, false);
}

static void h_act(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, act_authed);
}

static void h_handoff(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, act_authed);
}

void sb__api_conv_routes(sb_app_t *app)
{
    sb_http_server_t *s = app->http;
    sb_http_route(s, "POST", "/v1/inbound", h_inbound, app);
    sb_http_route(s, "GET", "/v1/conversations", h_list, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/handoff", h_handoff, app);
    sb_http_route(s, "GET", "/v1/conversations/{id}", h_get, app);
    sb_http_route(s, "GET", "/v1/conversations/{id}/messages", h_messages, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/messages", h_reply, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/notes", h_note, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/typing", h_typing, app);
    static const char *const actions[] = {"claim",  "release",  "resolve", "reopen",
                                          "snooze", "priority", "tags"};
    for (size_t i = 0; i < SB_ARRAY_LEN(actions); i++) {
        char pattern[80];
        snprintf(pattern, sizeof(pattern), "/v1/conversations/{id}/%s", actions[i]);
        sb_http_route(s, "POST", pattern, h_act, app);
    }
}

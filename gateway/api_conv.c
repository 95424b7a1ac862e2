/* SPDX-License-Identifier: MIT */
/*
 * Conversation endpoints of the REST API (docs/contract.md §5): GET /v1/conversations (the list
 * across shards, most urgent first, paged by cursor), GET /v1/conversations/{id}, its messages,
 * staff/bot replies with the `based_on` collision check, notes, state changes (claim, release,
 * resolve, reopen, pending, snooze, priority, tags) and handoff (bot -> humans).
 *
 * Roles (checked by sb__api_authenticate from the minimum each handler names):
 * bots (SB_ROLE_BOT) may post inbound messages, replies, notes and handoffs; everything
 * else needs an agent or exec (SB_ROLE_AGENT); stealing a claim needs an admin (the
 * actor's admin flag, enforced by the function).
 *
 * Channel scopes (a token's `channels` field, sb__api_scope): a scoped token lists only
 * its channels' conversations, and every other conversation is 404 to it (looked up
 * first: one more round trip, for scoped tokens only). POST /v1/inbound is in
 * api_inbound.c.
 *
 * A reply on a channel that no running connector serves is 422 channel_unavailable, and a
 * message that failed for good is retried by POST …/messages/{mid}/retry (docs/delivery.md).
 *
 * The messages handed out (a transcript page, a 409's newer messages) get a signed,
 * expiring `url` on each stored attachment (api_attach.c, docs/attachments.md).
 *
 * Every parameter is checked before it reaches Redis (api_input.h): a malformed seq,
 * count, flag, time or tag is a 400 naming it, never a Redis error answered as 503.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/util.h"
#include "gateway/api_input.h"

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

/* A transcript page: each stored attachment gets its signed URL (api_attach.c). */
static void on_messages(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (status == 0 && c->req)
        sb__api_attach_urls(c->app, json_object_get(result, "items"));
    sb__api_on_result(status, result, errmsg, data);
}

static void messages_go(api_call_t *c)
{
    const char *after = sb_http_req_query(c->req, "after");
    const char *lim = sb_http_req_query(c->req, "limit");
    long limit = 100;
    if ((lim && !sb__api_count(c, "limit", lim, 1, 1000, &limit)) ||
        !sb__api_seq(c, "after", after))
        return;
    c->busy = true;
    sb__api_begin(
        c, sb_store_messages(c->app->store, c->conv, after, (unsigned)limit, on_messages, c));
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
    if (q->channel && sb_channel_index(q->channel) < 0) {
        sb__api_fail(c, 400, "bad_request", "channel must be one of %s", SB_CHANNEL_LIST_TEXT);
        return false;
    }
    long limit = 50;
    if (lim && !sb__api_count(c, "limit", lim, 1, 200, &limit))
        return false;
    q->limit = (unsigned)limit;
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
    sb_list_query_t q = {0};
    if (!list_query(c, &q))
        return;
    unsigned scope = sb__api_scope(c->who);
    if (q.channel && !sb__api_scope_allows(scope, q.channel)) {
        sb__api_fail(c, 403, "forbidden", "this token may not see channel %s", q.channel);
        return;
    }
    for (int i = 0; !q.channel && scope != SB_SCOPE_ALL && i < SB_CHANNEL_COUNT; i++)
        if (scope == 1u << i) /* one channel: let the store filter */
            q.channel = sb_channel_name(i);
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
        sb__api_attach_urls(c->app, json_object_get(result, "messages"));
        json_t *e = json_pack("{s:{s:s, s:s, s:O}}", "error", "code", "conflict", "message",
                              "newer messages exist; read them, or send with force", "messages",
                              json_object_get(result, "messages"));
        sb__api_reply(c, 409, e);
        json_decref(e);
        return;
    }
    if (status == SB_EUNAVAILABLE) { /* nothing was stored (docs/delivery.md) */
        sb__api_fail(c, 422, "channel_unavailable", "%s", errmsg ? errmsg : sb_strerror(status));
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
        int ch = sb_channel_index(json_string_value(json_object_get(msg, "channel")));
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
    const char *client_id, *based_on = NULL;
    bool force = false;
    if (!sb__api_text(c, "text", json_object_get(c->body, "text"), SB_MAX_TEXT) ||
        !sb__api_opt_line(c, c->body, "client_id", SB_MAX_ID_LEN, &client_id) ||
        (!is_note &&
         (!sb__api_opt_line(c, c->body, "based_on", 42, &based_on) ||
          !sb__api_seq(c, "based_on", based_on) || !sb__api_opt_bool(c, c->body, "force", &force))))
        return;
    sb_actor_t who;
    sb__api_actor(c, &who);
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
    bool on = true;
    if (len > 0 && !sb__api_parse_body(c))
        return;
    const json_t *onv = json_object_get(c->body, "on"); /* absent or null: on */
    if (onv && !json_is_null(onv) && !sb__api_opt_bool(c, c->body, "on", &on))
        return;
    sb_actor_t who;
    sb__api_actor(c, &who);
    json_t *e = json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s?, s:s?}}", "type", "typing", "conv",
                          c->conv, "channel", c->channel, "on", on, "who", "type", who.type, "id",
                          who.id, "name", who.name);
    char *text;
    int rc = sb_json_dumps(e, JSON_COMPACT, &text, NULL);
    json_decref(e);
    c->busy = true;
    if (rc == 0)
        rc = sb_store_publish(c->app->store, c->conv, text, on_typing_published, c);
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
    const char *path = sb_http_req_path(c->req);
    const char *action = strrchr(path, '/') + 1;
    if (!sb__api_act_args(c, action))
        return;
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

/* ---- POST /v1/conversations/{id}/messages/{mid}/retry (docs/delivery.md) ---- */

static void on_retried(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_gone(c))
        return;
    if (status == SB_ECONFLICT)
        sb__api_fail(c, 409, "not_failed", "%s", errmsg ? errmsg : "not failed");
    else if (status == SB_EUNAVAILABLE)
        sb__api_fail(c, 422, "channel_unavailable", "%s", errmsg ? errmsg : "");
    else if (status != 0)
        sb__api_fail_store(c, status, errmsg);
    else
        sb__api_reply(c, 202, result);
}

static void retry_go(api_call_t *c)
{
    const char *mid = sb_http_req_param(c->req, "mid");
    if (!sb_id_valid(mid, "m_")) {
        sb__api_fail(c, 404, "not_found", "no message %.64s", mid ? mid : "");
        return;
    }
    sb_actor_t who;
    sb__api_actor(c, &who);
    c->busy = true;
    sb__api_begin(c, sb_store_delivery_retry(c->app->store, c->conv, mid, &who, on_retried, c));
}

static void retry_authed(api_call_t *c)
{
    if (conv_param(c))
        in_scope(c, retry_go, false);
}

static void h_retry(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, retry_authed);
}

void sb__api_conv_routes(sb_app_t *app)
{
    sb_http_server_t *s = app->http;
    sb__api_inbound_routes(app);
    sb_http_route(s, "GET", "/v1/conversations", h_list, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/handoff", h_handoff, app);
    sb_http_route(s, "GET", "/v1/conversations/{id}", h_get, app);
    sb_http_route(s, "GET", "/v1/conversations/{id}/messages", h_messages, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/messages", h_reply, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/notes", h_note, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/typing", h_typing, app);
    sb_http_route(s, "POST", "/v1/conversations/{id}/messages/{mid}/retry", h_retry, app);
    static const char *const actions[] = {"claim",   "release", "resolve",  "reopen",
                                          "pending", "snooze",  "priority", "tags"};
    for (size_t i = 0; i < SB_ARRAY_LEN(actions); i++) {
        char pattern[80];
        snprintf(pattern, sizeof(pattern), "/v1/conversations/{id}/%s", actions[i]);
        sb_http_route(s, "POST", pattern, h_act, app);
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * Staff endpoints of the REST API (docs/contract.md §5) that are not about one conversation:
 * GET /v1/me (the token's record), GET /v1/stats (queue depth, open conversations by
 * channel, first-response percentiles, breaches, the honest wait per channel),
 * GET /v1/contacts/{id} (the customer with every conversation on every channel) and
 * POST /v1/contacts/{id}/merge.
 *
 * Roles (checked by sb__api_authenticate from the minimum each handler names): any
 * valid token may ask who it is; agents and execs read stats and contacts; merging
 * contacts needs an admin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "core/wait.h"
#include "gateway/internal.h"

/* ---- GET /v1/me ---- */

static void me_authed(api_call_t *c)
{
    static const char *const fields[] = {"kind", "id", "role", "name"};
    json_t *me = json_object();
    for (size_t i = 0; i < SB_ARRAY_LEN(fields); i++) {
        json_t *v = json_object_get(c->who, fields[i]);
        json_object_set(me, fields[i], v ? v : json_null());
    }
    const char *created = json_string_value(json_object_get(c->who, "created_at"));
    json_object_set_new(me, "created_at",
                        created ? json_integer(strtoll(created, NULL, 10)) : json_null());
    /* The channel scope as a list, or null for every channel. */
    json_t *channels = json_null();
    if (sb__api_scope(c->who) != SB_SCOPE_ALL) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", json_string_value(json_object_get(c->who, "channels")));
        channels = json_array();
        char *save = NULL;
        for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            json_array_append_new(channels, json_string(t));
    }
    json_object_set_new(me, "channels", channels);
    sb__api_reply(c, 200, me);
    json_decref(me);
}

static void h_me(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, me_authed);
}

/* ---- GET /v1/stats ---- */

/*
 * A token with a channels scope sees the figures of its channels only: by_channel and
 * first_response_ms keep those channels, and the totals are their sums (by_status keeps
 * "open" only: the shards count the other states per shard, not per channel).
 */
static void stats_scoped(json_t *res, unsigned scope)
{
    json_t *by = json_object_get(res, "by_channel");
    json_t *rt = json_object_get(res, "first_response_ms");
    const char *ch;
    json_t *v;
    void *tmp;
    json_int_t open = 0, queue = 0;
    json_object_foreach_safe(by, tmp, ch, v)
    {
        if (!sb__api_scope_allows(scope, ch)) {
            json_object_del(by, ch);
            continue;
        }
        open += json_integer_value(json_object_get(v, "open"));
        queue += json_integer_value(json_object_get(v, "queue"));
    }
    json_object_foreach_safe(rt, tmp, ch, v)
    {
        if (!sb__api_scope_allows(scope, ch))
            json_object_del(rt, ch);
    }
    json_object_set_new(res, "queue_depth", json_integer(queue));
    json_object_set_new(res, "open", json_integer(open));
    json_object_set_new(res, "by_status", json_pack("{s:I}", "open", open));
    json_object_set_new(res, "breaches", json_null()); /* counted per shard, not per channel */
}

/*
 * The honest wait of every channel (docs/sla.md "Honest wait") next to its figures:
 * by_channel.<ch> gets expected_reply_ms and wait {expected_reply_ms, online, open,
 * back_at} as the widget's frames carry them (a separate object: by_channel's "open" is
 * a count), the calendar being that of the policy a normal-priority conversation of the
 * channel would get.
 */
static void stats_waits(json_t *res, const sb_sla_conf_t *sla)
{
    json_t *by = json_object_get(res, "by_channel");
    int64_t now = sb_now_ms();
    for (int i = 0; i < SB_CHANNEL_COUNT && by; i++) {
        const char *name = sb_channel_name(i);
        const sb_sla_policy_t *p = sla ? sb_sla_match(sla, name, "normal") : NULL;
        sb_wait_in_t in = {.cal = p ? p->cal : NULL, .now_ms = now};
        sb_wait_in_from_stats(res, name, &in);
        sb_wait_t w;
        sb_wait_estimate(&in, &w);
        json_t *ch = json_object_get(by, name);
        if (!ch)
            json_object_set_new(by, name, ch = json_pack("{s:i, s:i}", "open", 0, "queue", 0));
        json_t *wait = json_object();
        sb_wait_to_json(&w, wait);
        json_object_set(ch, "expected_reply_ms", json_object_get(wait, "expected_reply_ms"));
        json_object_set_new(ch, "wait", wait);
    }
}

static void on_stats(int status, json_t *res, const char *errmsg, void *data)
{
    api_call_t *c = data;
    unsigned scope = c->who ? sb__api_scope(c->who) : SB_SCOPE_ALL;
    if (status == 0 && res)
        stats_waits(res, c->app->sla);
    if (status == 0 && res && scope != SB_SCOPE_ALL)
        stats_scoped(res, scope);
    sb__api_on_result(status, res, errmsg, data);
}

static void stats_authed(api_call_t *c)
{
    c->busy = true;
    sb__api_begin(c, sb_store_stats(c->app->store, on_stats, c));
}

static void h_stats(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, stats_authed);
}

/* ---- Contacts ---- */

static const char *contact_param(api_call_t *c)
{
    const char *id = sb_http_req_param(c->req, "id");
    if (!sb_id_valid(id, "ct_")) {
        sb__api_fail(c, 404, "not_found", "no contact %.64s", id ? id : "");
        return NULL;
    }
    return id;
}

/* A scoped token sees the contact with its channels' conversations only. */
static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    unsigned scope = c->req ? sb__api_scope(c->who) : SB_SCOPE_ALL;
    json_t *convs = status == 0 ? json_object_get(result, "conversations") : NULL;
    for (size_t i = json_array_size(convs); scope != SB_SCOPE_ALL && i-- > 0;) {
        const char *ch = json_string_value(json_object_get(json_array_get(convs, i), "channel"));
        if (!sb__api_scope_allows(scope, ch))
            json_array_remove(convs, i);
    }
    sb__api_on_result(status, result, errmsg, data);
}

static void contact_authed(api_call_t *c)
{
    const char *id = contact_param(c);
    if (!id)
        return;
    c->busy = true;
    sb__api_begin(c, sb_store_contact_get(c->app->store, id, on_contact, c));
}

static void h_contact(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, contact_authed);
}

static void merge_authed(api_call_t *c)
{
    const char *id = contact_param(c);
    if (!id || !sb__api_parse_body(c))
        return;
    const char *other = json_string_value(json_object_get(c->body, "other"));
    if (!sb_id_valid(other, "ct_")) {
        sb__api_fail(c, 400, "bad_request", "other must be a contact id (ct_…)");
        return;
    }
    if (strcmp(other, id) == 0) {
        sb__api_fail(c, 400, "bad_request", "a contact cannot be merged into itself");
        return;
    }
    sb_actor_t who;
    sb__api_actor(c, &who);
    SB_LOG_INFO("api.merge", "into=%s other=%s by=%s", id, other, who.id ? who.id : "-");
    c->busy = true;
    sb__api_begin(c, sb_store_contact_merge(c->app->store, id, other, &who, sb__api_on_result, c));
}

static void h_merge(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_ADMIN, merge_authed);
}

void sb__api_staff_routes(sb_app_t *app)
{
    sb_http_server_t *s = app->http;
    sb_http_route(s, "GET", "/v1/me", h_me, app);
    sb_http_route(s, "GET", "/v1/stats", h_stats, app);
    sb_http_route(s, "GET", "/v1/contacts/{id}", h_contact, app);
    sb_http_route(s, "POST", "/v1/contacts/{id}/merge", h_merge, app);
}

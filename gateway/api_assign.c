/* SPDX-License-Identifier: MIT */
/*
 * POST /v1/conversations/{id}/assign {"to":"st_…"|null} (docs/contract.md §5): hands a
 * conversation to a staff member on duty for its channel, or to nobody.
 *
 * Who may assign whom: any agent, exec or admin (and a bot whose channel scope covers the
 * conversation) assigns to any staff member "on duty" for the conversation, that is one
 * whose channel scope covers its channel; anyone else is 422 unknown_staff. Steps: the
 * conversation is looked up (404, and the token's scope), the staff list read fresh (a
 * member added a second ago can be assigned), then the `assign` action of the function
 * library changes it in one call. When the assignee changed to someone other than the
 * actor, their console notification (type "assigned") is added before the answer, so
 * the bell shows it as soon as the call returns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla_targets.h"
#include "core/util.h"
#include "gateway/internal.h"

#define CUSTOMER_MAX 120

/* The answer of the action, kept while the assignee's notification is added. */
typedef struct {
    api_call_t *c;
    json_t *result;
} notify_job_t;

static const char *to_of(const api_call_t *c)
{
    return json_string_value(json_object_get(c->body, "to")); /* NULL: unassign */
}

static void on_notified(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    notify_job_t *j = data;
    api_call_t *c = j->c;
    if (status != 0) /* the assignment stands; only the bell misses it */
        SB_LOG_WARN("assign.notif", "conv=%s err=%s %s", c->conv, sb_err_name(status),
                    errmsg ? errmsg : "");
    if (!sb__api_gone(c))
        sb__api_reply(c, 200, j->result);
    json_decref(j->result);
    sb_free(j);
}

/* {"id","type":"assigned","conv","by","by_id","ts","customer"?,"subject"?}, compact. */
static char *notification(const json_t *result, const sb_actor_t *who)
{
    const json_t *ev = json_object_get(result, "event");
    const json_t *conv = json_object_get(result, "conversation");
    const char *id = json_string_value(json_object_get(ev, "id"));
    json_t *ts = json_object_get(ev, "ts");
    if (!id || !json_is_integer(ts))
        return NULL;
    json_t *n = json_pack("{s:s, s:s, s:O, s:s?, s:s?, s:O}", "id", id, "type", "assigned", "conv",
                          json_object_get(conv, "id"), "by", who->name, "by_id", who->id, "ts", ts);
    if (!n)
        return NULL;
    const char *about[][2] = {
        {"customer", json_string_value(json_object_get(json_object_get(conv, "contact"), "name"))},
        {"subject", json_string_value(json_object_get(conv, "subject"))}};
    for (size_t i = 0; i < SB_ARRAY_LEN(about); i++) {
        const char *s = about[i][1];
        if (!s || !*s)
            continue;
        size_t len = strlen(s);
        if (len > CUSTOMER_MAX) {
            len = CUSTOMER_MAX;
            while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
                len--;
        }
        json_object_set_new(n, about[i][0], json_stringn(s, len));
    }
    char *out = NULL;
    if (sb_json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER, &out, NULL) != 0)
        out = NULL;
    json_decref(n);
    return out;
}

static void on_assigned(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    const char *to = to_of(c);
    sb_actor_t who;
    sb__api_actor(c, &who);
    char *member = NULL;
    if (json_is_true(json_object_get(result, "changed")) && to &&
        (!who.id || strcmp(to, who.id) != 0))
        member = notification(result, &who);
    if (!member) {
        sb__api_reply(c, 200, result);
        return;
    }
    notify_job_t *j = SB_NEW(notify_job_t);
    j->c = c;
    j->result = json_incref(result);
    const char *sids[] = {to};
    long long ts = json_integer_value(json_object_get(json_object_get(result, "event"), "ts"));
    c->busy = true;
    int rc = sb_store_notif_add(c->app->store, sids, 1, ts, member, on_notified, j);
    sb_free(member);
    if (rc)
        on_notified(rc, NULL, NULL, j);
}

static void act(api_call_t *c)
{
    sb_actor_t who;
    sb__api_actor(c, &who);
    json_t *args = json_object();
    const char *to = to_of(c);
    if (to)
        json_object_set_new(args, "to", json_string(to));
    c->busy = true;
    int rc = sb_store_act(c->app->store, c->conv, "assign", &who, args, on_assigned, c);
    json_decref(args);
    sb__api_begin(c, rc);
}

static void on_staff(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    const char *to = to_of(c);
    const json_t *staff = json_object_get(result, "staff");
    for (size_t i = 0; i < json_array_size(staff); i++) {
        const json_t *m = json_array_get(staff, i);
        const char *id = json_string_value(json_object_get(m, "id"));
        if (id && strcmp(id, to) == 0 &&
            sb_sla_covers(json_object_get(m, "channels"), c->channel)) {
            act(c);
            return;
        }
    }
    sb__api_fail(c, 422, "unknown_staff", "%s is not a staff member on duty for %s", to,
                 c->channel);
}

static void on_conv(int status, json_t *result, const char *errmsg, void *data)
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
    if (!to_of(c)) {
        act(c);
        return;
    }
    c->busy = true;
    sb__api_begin(c, sb_store_staff_list(c->app->store, on_staff, c));
}

static void assign_authed(api_call_t *c)
{
    const char *id = sb_http_req_param(c->req, "id");
    if (!sb_id_valid(id, "c_")) {
        sb__api_fail(c, 404, "not_found", "no conversation %.64s", id ? id : "");
        return;
    }
    snprintf(c->conv, sizeof(c->conv), "%s", id);
    if (!sb__api_parse_body(c))
        return;
    const json_t *to = json_object_get(c->body, "to");
    if (!to || !(json_is_null(to) || sb_id_valid(json_string_value(to), "st_"))) {
        sb__api_fail(c, 400, "bad_request", "to must be a staff id (st_…) or null");
        return;
    }
    c->busy = true;
    sb__api_begin(c, sb_store_get(c->app->store, c->conv, on_conv, c));
}

static void h_assign(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_BOT, assign_authed);
}

void sb__api_assign_routes(sb_app_t *app)
{
    sb_http_route(app->http, "POST", "/v1/conversations/{id}/assign", h_assign, app);
}

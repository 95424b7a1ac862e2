/* SPDX-License-Identifier: MIT */
/*
 * Console notifications (docs/sla.md, "Notifications"; docs/contract.md): every node
 * follows the events feed and, for each SLA step (sla_warning, sla_breach, escalated),
 * adds one notification to the list of each person its targets name
 * (core/sla_targets.h against the staff list, read again at most every STAFF_TTL_MS).
 * Every node builds the same bytes for the same event, so with several nodes each
 * list still holds it once. The API reads a staff member's list and moves their read
 * mark: GET /v1/notifications and POST /v1/notifications/read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla_targets.h"
#include "gateway/api_input.h"
#include "gateway/internal.h"

#define STAFF_TTL_MS 2000  /* the staff list (roles, scopes) is read again after this */
#define QUEUE_MAX    10000 /* SLA events waiting for the staff list; more are dropped */

/* An SLA event waiting for the staff list (sb_store_staff_cached). */
typedef struct notif_ev {
    api_notifs_t *ns;
    json_t *json;
} notif_ev_t;

struct api_notifs {
    sb_app_t *app;
    sb_events_sub_t *sub;
    bool stopping;
    unsigned pending; /* store operations in flight (the object outlives them) */
    size_t queued;    /* events waiting for the staff list */
};

static void maybe_free(api_notifs_t *ns)
{
    if (!ns->stopping || ns->pending)
        return;
    sb_free(ns);
}

/* ---- From the feed to the lists ---- */

typedef struct add_job {
    api_notifs_t *ns;
    char id[SB_ID_MAX + 16];
    size_t targets;
} add_job_t;

static void on_added(int status, json_t *result, const char *errmsg, void *data)
{
    add_job_t *j = data;
    api_notifs_t *ns = j->ns;
    if (status)
        SB_LOG_WARN("notif.add", "event=%s err=%s reason=\"%s\"", j->id, sb_err_name(status),
                    errmsg ? errmsg : "");
    else /* added=0: another node was first */
        SB_LOG_INFO("notif.add", "event=%s targets=%zu added=%lld", j->id, j->targets,
                    (long long)json_integer_value(json_object_get(result, "added")));
    sb_free(j);
    ns->pending--;
    maybe_free(ns);
}

/* One SLA event: its notification into each target's list. */
static void dispatch(api_notifs_t *ns, const json_t *ev, const json_t *staff)
{
    long long ts = 0;
    char *member = sb_sla_notification(ev, &ts);
    if (!member)
        return;
    json_t *m = json_object_get(ev, "message");
    const char *channel = json_string_value(json_object_get(m, "channel"));
    if (!channel)
        channel =
            json_string_value(json_object_get(json_object_get(ev, "conversation"), "channel"));
    json_t *who = sb_sla_targets_expand(json_object_get(m, "targets"), channel, staff);
    size_t n = json_array_size(who);
    const char **sids = sb_calloc(n ? n : 1, sizeof(*sids));
    for (size_t i = 0; i < n; i++)
        sids[i] = json_string_value(json_object_get(json_array_get(who, i), "id"));
    if (n) {
        add_job_t *j = SB_NEW(add_job_t);
        j->ns = ns;
        j->targets = n;
        snprintf(j->id, sizeof(j->id), "%s",
                 json_string_value(json_object_get(json_object_get(ev, "message"), "id")));
        ns->pending++;
        int rc = sb_store_notif_add(ns->app->store, sids, n, ts, member, on_added, j);
        if (rc) {
            sb_free(j);
            ns->pending--;
            SB_LOG_WARN("notif.add", "conv=%s err=%s",
                        json_string_value(json_object_get(ev, "conv")), sb_err_name(rc));
        }
    }
    sb_free(sids);
    json_decref(who);
    sb_free(member);
}

/* The staff list for one waiting event: its notifications go out (unless stopping). */
static void on_staff(int status, const json_t *staff, void *data)
{
    (void)status; /* logged by the store; a list read before is used */
    notif_ev_t *e = data;
    api_notifs_t *ns = e->ns;
    ns->queued--;
    ns->pending--;
    if (!ns->stopping && staff)
        dispatch(ns, e->json, staff);
    json_decref(e->json);
    sb_free(e);
    maybe_free(ns);
}

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    (void)sub;
    api_notifs_t *ns = data;
    /* every event passes here: only an SLA step is parsed */
    if (!strstr(ev->json, "\"sla_") && !strstr(ev->json, "\"escalated\""))
        return;
    json_t *j = json_loadb(ev->json, ev->json_len, 0, NULL);
    json_t *m = json_object_get(j, "message");
    const char *kind = json_string_value(json_object_get(m, "kind"));
    if (!kind || strcmp(kind, "event") != 0 ||
        !sb_sla_event_type(json_string_value(json_object_get(m, "type"))) ||
        ns->queued >= QUEUE_MAX) {
        json_decref(j);
        return;
    }
    notif_ev_t *e = SB_NEW(notif_ev_t);
    e->ns = ns;
    e->json = j;
    ns->queued++;
    ns->pending++;
    sb_store_staff_cached(ns->app->store, STAFF_TTL_MS, on_staff, e);
}

static void on_sub_failed(sb_events_sub_t *sub, int status, void *data)
{
    (void)sub;
    api_notifs_t *ns = data;
    SB_LOG_WARN("notif.events", "err=%s (console notifications stop until restart)",
                sb_err_name(status));
    ns->sub = NULL;
}

/* ---- GET /v1/notifications ---- */

/* Notifications are a person's: a bot's token, or one without a staff id, has none. */
static const char *staff_id(api_call_t *c)
{
    const char *kind = json_string_value(json_object_get(c->who, "kind"));
    const char *id = json_string_value(json_object_get(c->who, "id"));
    if (!kind || strcmp(kind, "staff") != 0 || !sb_id_valid(id, "st_")) {
        sb__api_fail(c, 403, "forbidden", "notifications belong to staff members");
        return NULL;
    }
    return id;
}

static void list_authed(api_call_t *c)
{
    const char *sid = staff_id(c);
    if (!sid)
        return;
    const char *lim = sb_http_req_query(c->req, "limit");
    long limit = 50;
    if (lim && !sb__api_count(c, "limit", lim, 1, SB_STORE_NOTIF_KEEP, &limit))
        return;
    c->busy = true;
    sb__api_begin(c,
                  sb_store_notif_list(c->app->store, sid, (unsigned)limit, sb__api_on_result, c));
}

static void h_list(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, list_authed);
}

/* ---- POST /v1/notifications/read ---- */

static void read_authed(api_call_t *c)
{
    const char *sid = staff_id(c);
    if (!sid)
        return;
    size_t len = 0;
    sb_http_req_body(c->req, &len);
    long long until = sb_now_ms();
    if (len > 0) { /* no body: everything until now */
        if (!sb__api_parse_body(c))
            return;
        json_t *u = json_object_get(c->body, "until");
        if (u && !json_is_null(u)) {
            if (!json_is_integer(u) || json_integer_value(u) < 0) {
                sb__api_fail(c, 400, "bad_request", "until must be a time in ms (an integer ≥ 0)");
                return;
            }
            until = json_integer_value(u);
        }
    }
    c->busy = true;
    sb__api_begin(c, sb_store_notif_read(c->app->store, sid, until, sb__api_on_result, c));
}

static void h_read(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, read_authed);
}

/* ---- Life ---- */

api_notifs_t *sb__api_notifs_new(sb_app_t *app)
{
    sb_http_route(app->http, "GET", "/v1/notifications", h_list, app);
    sb_http_route(app->http, "POST", "/v1/notifications/read", h_read, app);
    api_notifs_t *ns = SB_NEW(api_notifs_t);
    ns->app = app;
    int rc = sb_events_subscribe(app->events, NULL, on_event, on_sub_failed, ns, &ns->sub);
    if (rc)
        SB_LOG_WARN("notif.events", "subscribe err=%s", sb_err_name(rc));
    return ns;
}

void sb__api_notifs_free(api_notifs_t *ns)
{
    if (!ns)
        return;
    sb_events_unsubscribe(ns->sub);
    ns->sub = NULL;
    ns->stopping = true;
    maybe_free(ns);
}

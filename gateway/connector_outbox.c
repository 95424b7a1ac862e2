/* SPDX-License-Identifier: MIT */
/*
 * The channel lanes of connector_outbox.h: the daemon's outbox engine for connectors.
 *
 * Per started connector whose descriptor has deliver, one lane: consumer group <channel>
 * (created from "0": a reply written before the first start is sent too) over the shards'
 * `<prefix>{N}:outbox:<channel>` streams, consumer `<hostname>/<listen>` as for webhooks.
 * Its deliver hands the entry to the connector and answers the attempt with the
 * connector's outcome; its record hook is sb_store_delivery_record (the `delivered` /
 * `delivery_failed` events staff see on the message) and its check hook
 * sb_store_delivery_state, whose answer {"state":"delivered",…} is what the engine takes
 * for "already delivered" (a crash between record and XACK sends nothing twice).
 *
 * Reads never block: the engine is poked for a shard whenever that shard has an event
 * (a reply and a retry both write one), and its tick is the safety net. A lane paused by
 * an auth outcome is logged as a WARN (`connector.paused`) and its reason kept for
 * GET /v1/connectors until it is resumed.
 */
#include "gateway/connector_outbox.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"

#define MAX_INFLIGHT 64 /* attempts at once, every channel together */

typedef struct conn_lane {
    struct conn_outbox *co;
    int connector; /* index in sb_connectors[] */
    char *channel, *account, *name, *dead_key;
    char *reason; /* of the pause; NULL while running */
    sb_outbox_lane_t *lane;
} conn_lane_t;

struct conn_outbox {
    sb_app_t *app;
    sb_outbox_t *outbox;
    sb_events_sub_t *sub;
    conn_lane_t **lanes;
    unsigned nlanes;
    char consumer[320];
    void (*stopped)(void *data);
    void *stopped_data;
};

/* ---- Hooks of a lane ---- */

static void on_delivered(const sb_outcome_t *outcome, void *data)
{
    sb_outbox_answer(data, outcome); /* data is the attempt */
}

static void lane_deliver(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, sb_outbox_attempt_t *a,
                         void *data)
{
    conn_lane_t *cl = data;
    const sb_connector_desc_t *desc = sb_connectors[cl->connector];
    void *state = cl->co->app->connector_state[cl->connector];
    int rc = state ? desc->deliver(state, e, on_delivered, a) : SB_ECANCELED;
    if (rc != 0) {
        SB_LOG_WARN("connector.deliver", "name=%s lane=%s entry=%s err=%s", desc->name, cl->name,
                    e->id, sb_err_name(rc));
        sb_outbox_answer(a,
                         &(sb_outcome_t){.kind = SB_OUTCOME_TEMPORARY, .reason = sb_strerror(rc)});
    }
}

#ifdef SB_TESTING
/* Test builds: SWITCHBOARD_TEST_KILL_AFTER_RECORD=1 kills the daemon once a delivery is
 * recorded and before the entry is acked (tests/e2e/email.test.mjs: nothing is sent twice). */
typedef struct kill_ctx {
    sb_outbox_done_cb cb;
    void *data;
} kill_ctx_t;

static void kill_after_record(int status, json_t *result, const char *errmsg, void *data)
{
    kill_ctx_t k = *(kill_ctx_t *)data;
    sb_free(data);
    if (status == 0) {
        SB_LOG_WARN("test.kill", "after recording a delivery, before its ack");
        raise(SIGKILL);
    }
    k.cb(status, result, errmsg, k.data);
}
#endif

int sb_connector_outbox_record(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb,
                               void *cbdata)
{
#ifdef SB_TESTING
    const char *kill_env = getenv("SWITCHBOARD_TEST_KILL_AFTER_RECORD");
    if (kill_env && *kill_env == '1' && r->ok) {
        kill_ctx_t *k = SB_NEW(kill_ctx_t);
        k->cb = cb;
        k->data = cbdata;
        cb = kill_after_record;
        cbdata = k;
    }
#endif
    sb_delivery_t d = {.conv = r->conv,
                       .mid = r->mid,
                       .channel = r->channel,
                       .account = r->account,
                       .ok = r->ok,
                       .final = r->final,
                       .reason = r->reason,
                       .provider_id = r->provider_id,
                       .retry_at = r->retry_at};
    int rc = sb_store_delivery_record(ctx, &d, cb, cbdata);
#ifdef SB_TESTING
    if (rc && cb == kill_after_record)
        sb_free(cbdata);
#endif
    return rc;
}

/* The store's state ({"state":"delivered",…} or null) is the answer the engine reads. */
int sb_connector_outbox_check(void *ctx, const sb_outbox_record_t *r, sb_outbox_done_cb cb,
                              void *cbdata)
{
    return sb_store_delivery_state(ctx, r->conv, r->mid, cb, cbdata);
}

static conn_lane_t *lane_of(const struct conn_outbox *co, const sb_outbox_lane_t *lane)
{
    for (unsigned i = 0; i < co->nlanes; i++)
        if (co->lanes[i]->lane == lane)
            return co->lanes[i];
    return NULL;
}

static void on_lane_state(sb_outbox_lane_t *lane, bool paused, const char *reason, void *data)
{
    conn_lane_t *cl = lane_of(data, lane);
    if (!cl)
        return;
    const char *name = sb_connectors[cl->connector]->name;
    sb_free(cl->reason);
    cl->reason = NULL;
    if (paused) {
        cl->reason = sb_strdup(reason && *reason ? reason : "credentials refused");
        SB_LOG_WARN("connector.paused",
                    "name=%s lane=%s reason=\"%s\" resume=\"POST /v1/connectors/%s/resume\"", name,
                    cl->name, cl->reason, name);
    } else {
        SB_LOG_INFO("connector.resumed", "name=%s lane=%s", name, cl->name);
    }
}

/* ---- Lanes ---- */

/* A shard had an event (a reply, a retry): its outbox streams may have an entry. */
static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    struct conn_outbox *co = data;
    for (unsigned i = 0; i < co->nlanes; i++)
        if (ev->shard < co->app->cfg->shards)
            sb_outbox_lane_poke(co->lanes[i]->lane, (int)ev->shard);
}

static void lane_free(conn_lane_t *cl)
{
    sb_free(cl->channel);
    sb_free(cl->account);
    sb_free(cl->name);
    sb_free(cl->dead_key);
    sb_free(cl->reason);
    sb_free(cl);
}

int sb_app_connector_lane_add(sb_app_t *app, int connector, const char *channel,
                              const char *account)
{
    struct conn_outbox *co = app->conn_outbox;
    if (!co || !co->outbox)
        return SB_ECANCELED;
    if (!sb_connectors[connector]->deliver || !channel)
        return SB_EINVAL;
    const sb_config_t *cfg = app->cfg;
    bool acc = account && *account;
    conn_lane_t *cl = SB_NEW(conn_lane_t);
    *cl = (conn_lane_t){.co = co,
                        .connector = connector,
                        .channel = sb_strdup(channel),
                        .account = sb_strdup(acc ? account : ""),
                        .name = acc ? sb_asprintf("%s:%s", channel, account) : sb_strdup(channel)};
    sb_key_t dk; /* the config bounds the prefix, channel and account names are short */
    sb_key_dead(&dk, cfg->prefix, cl->name);
    cl->dead_key = sb_key_dup(&dk);
    char **keys = sb_calloc(cfg->shards, sizeof(char *));
    int rc = 0;
    for (unsigned i = 0; i < cfg->shards; i++) {
        sb_key_t k;
        if (rc == 0)
            rc = sb_key_outbox(&k, cfg->prefix, i, channel);
        keys[i] = sb_strdup(rc == 0 ? k.str : "");
    }
    sb_outbox_lane_opts_t lo = {.name = cl->name,
                                .group = cl->name,
                                .streams = (const char *const *)keys,
                                .nstreams = cfg->shards,
                                .group_start = "0",
                                .trim = true,
                                .channel = cl->channel,
                                .account = cl->account,
                                .deliver = lane_deliver,
                                .record = sb_connector_outbox_record,
                                .check = sb_connector_outbox_check,
                                .ctx = app->store,
                                .data = cl};
    if (rc == 0)
        rc = sb_outbox_lane_add(co->outbox, &lo, &cl->lane);
    for (unsigned i = 0; i < cfg->shards; i++)
        sb_free(keys[i]);
    sb_free(keys);
    if (rc != 0) {
        SB_LOG_ERROR("connector.lane", "name=%s lane=%s err=%s", sb_connectors[connector]->name,
                     cl->name, sb_err_name(rc));
        lane_free(cl);
        return rc;
    }
    co->lanes = sb_realloc(co->lanes, (co->nlanes + 1) * sizeof(conn_lane_t *));
    co->lanes[co->nlanes++] = cl;
    if (!co->sub) /* the first lane: from now on events poke the lanes */
        sb_events_subscribe(app->events, NULL, on_event, NULL, co, &co->sub);
    SB_LOG_INFO("connector.lane", "name=%s lane=%s streams=%u consumer=%s",
                sb_connectors[connector]->name, cl->name, cfg->shards, co->consumer);
    return 0;
}

int sb_app_connector_lanes_start(sb_app_t *app)
{
    struct conn_outbox *co = SB_NEW(struct conn_outbox);
    co->app = app;
    app->conn_outbox = co;
    char host[256] = "localhost";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    snprintf(co->consumer, sizeof(co->consumer), "%s/%s", host, app->cfg->listen);
    sb_outbox_opts_t oo = {.consumer = co->consumer,
                           .max_inflight = MAX_INFLIGHT,
                           .log_name = "outbox",
                           .on_lane_state = on_lane_state,
                           .data = co};
    sb_outbox_opts_config(&oo, app->cfg);
    int rc = sb_outbox_new(app->loop, app->redis, &oo, &co->outbox);
    if (rc != 0)
        return rc;
    for (int i = 0; sb_connectors[i] && i < (int)SB_ARRAY_LEN(app->connector_state); i++) {
        if (!app->connector_state[i] || !sb_connectors[i]->deliver)
            continue;
        if ((rc = sb_app_connector_lane_add(app, i, sb_connectors[i]->channel, NULL)) != 0)
            return rc;
    }
    return 0;
}

static void on_outbox_stopped(void *data)
{
    struct conn_outbox *co = data;
    for (unsigned i = 0; i < co->nlanes; i++)
        lane_free(co->lanes[i]);
    sb_free(co->lanes);
    void (*cb)(void *) = co->stopped;
    void *cb_data = co->stopped_data;
    sb_free(co);
    if (cb)
        cb(cb_data);
}

void sb_app_connector_lanes_stop(sb_app_t *app, void (*cb)(void *data), void *data)
{
    struct conn_outbox *co = app->conn_outbox;
    app->conn_outbox = NULL;
    if (!co) {
        if (cb)
            cb(data);
        return;
    }
    co->stopped = cb;
    co->stopped_data = data;
    sb_events_unsubscribe(co->sub);
    co->sub = NULL;
    if (co->outbox)
        sb_outbox_stop(co->outbox, on_outbox_stopped, co); /* frees the lanes with it */
    else
        on_outbox_stopped(co);
}

void sb_app_connector_lanes_metrics(const sb_app_t *app, sb_buf_t *out)
{
    if (app->conn_outbox && app->conn_outbox->outbox)
        sb_outbox_metrics(app->conn_outbox->outbox, out);
}

/* ---- What staff see: GET /v1/connectors, POST /v1/connectors/{name}/resume ---- */

static json_t *lane_json(const conn_lane_t *cl)
{
    sb_outbox_stats_t st;
    sb_outbox_lane_stats(cl->lane, &st);
    return json_pack("{s:s, s:s, s:s, s:b, s:s?, s:i, s:I, s:I, s:I, s:I, s:I, s:{s:s}}", "name",
                     cl->name, "channel", cl->channel, "account", cl->account, "paused", st.paused,
                     "reason", cl->reason, "inflight", (json_int_t)st.inflight, "ok",
                     (json_int_t)st.ok, "retry", (json_int_t)st.retry, "rate_limited",
                     (json_int_t)st.rate_limited, "dead", (json_int_t)st.dead, "lost",
                     (json_int_t)st.lost, "dead_letters", "stream", cl->dead_key);
}

json_t *sb_app_connectors_json(const sb_app_t *app)
{
    const struct conn_outbox *co = app->conn_outbox;
    json_t *items = json_array();
    for (int i = 0; sb_connectors[i] && i < (int)SB_ARRAY_LEN(app->connector_state); i++) {
        const sb_connector_desc_t *d = sb_connectors[i];
        json_t *lanes = json_array();
        for (unsigned k = 0; co && k < co->nlanes; k++)
            if (co->lanes[k]->connector == i)
                json_array_append_new(lanes, lane_json(co->lanes[k]));
        json_array_append_new(items,
                              json_pack("{s:s, s:s, s:b, s:b, s:o}", "name", d->name, "channel",
                                        d->channel, "running", app->connector_state[i] != NULL,
                                        "delivers", d->deliver != NULL, "lanes", lanes));
    }
    return items;
}

int sb_app_connector_resume(sb_app_t *app, const char *name, unsigned *resumed)
{
    const struct conn_outbox *co = app->conn_outbox;
    int found = -1;
    for (int i = 0; sb_connectors[i]; i++)
        if (strcmp(sb_connectors[i]->name, name) == 0)
            found = i;
    if (found < 0)
        return SB_ENOTFOUND;
    unsigned n = 0;
    for (unsigned k = 0; co && k < co->nlanes; k++) {
        conn_lane_t *cl = co->lanes[k];
        sb_outbox_stats_t st;
        sb_outbox_lane_stats(cl->lane, &st);
        if (cl->connector == found && st.paused) {
            sb_free(cl->reason);
            cl->reason = NULL;
            sb_outbox_lane_resume(cl->lane);
            n++;
        }
    }
    if (resumed)
        *resumed = n;
    return 0;
}

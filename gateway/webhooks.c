/* SPDX-License-Identifier: MIT */
/*
 * Outbound webhooks of webhooks.h, as a user of the delivery engine (core/outbox.h) and
 * the HTTP client (core/httpc.h): each endpoint (gateway/webhooks_endpoints.c) is one
 * outbox lane, the consumer group `wh:<endpoint-id>` over every shard's
 * `<prefix>{N}:events` stream, created with `XGROUP CREATE … $ MKSTREAM` when first seen
 * (by sbctl for bots) so it gets the events from then on; consumer `<hostname>/<listen>`.
 *
 * This file turns an event into a signed POST (Standard Webhooks: webhook-id
 * `evt_<shard>_<stream-id>`, webhook-timestamp, webhook-signature) and its answer into an
 * outcome: 2xx is ok; 429 is rate_limited (retried at its Retry-After when it gives
 * seconds); anything else, a refused connection or webhook_timeout is temporary, retried
 * after webhook_retry_base doubling up to webhook_retry_max, and after webhook_attempts
 * attempts a dead letter (logged, counted as dead, copied to `<prefix>dead:wh:<id>`).
 * The engine does the rest: pending entries first after a restart, takeover of another
 * node's idle entries after webhook_claim_idle, events trimmed while pending counted as
 * lost. The events dispatcher pokes an endpoint's lane whenever its shard has an event.
 */
#include "gateway/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/stdwebhooks.h"
#include "core/sys.h"
#include "gateway/version.h"
#include "gateway/webhooks_internal.h"

#define TICK_MS      1000 /* bot reload */
#define MAX_INFLIGHT 64   /* HTTP requests at once, all endpoints together */

typedef struct wh_send {
    wh_endpoint_t *ep;
    unsigned shard;
    sb_outbox_attempt_t *a;
    sb_httpc_req_t *req;
} wh_send_t;

/* ---- One delivery: a signed POST and its answer as an outcome ---- */

static void outcome_of(const sb_httpc_response_t *res, sb_outcome_t *o, char *why, size_t cap)
{
    *o = (sb_outcome_t){.kind = SB_OUTCOME_TEMPORARY, .reason = why};
    if (res->status == 0 && res->code >= 200 && res->code < 300) {
        o->kind = SB_OUTCOME_OK;
        o->reason = NULL;
        return;
    }
    if (res->status != 0) {
        snprintf(why, cap, "%s", res->error);
        return;
    }
    snprintf(why, cap, "status_%ld", res->code);
    char ra[32];
    if (res->code == 429) {
        o->kind = SB_OUTCOME_RATE_LIMITED;
        char *end;
        if (sb_httpc_header(res, "retry-after", ra, sizeof(ra))) {
            unsigned long secs = strtoul(ra, &end, 10);
            if (end != ra && !*end && secs <= 86400)
                o->retry_at_ms = (uint64_t)sb_now_ms() + secs * 1000;
        }
    }
}

static void on_http_done(const sb_httpc_response_t *res, void *data)
{
    wh_send_t *s = data;
    s->ep->sends[s->shard] = NULL;
    char why[160];
    sb_outcome_t o;
    outcome_of(res, &o, why, sizeof(why));
    if (o.kind == SB_OUTCOME_OK)
        SB_LOG_DEBUG("webhook.delivered", "endpoint=%s shard=%u status=%ld", s->ep->id, s->shard,
                     res->code);
    else
        SB_LOG_INFO("webhook.failed", "endpoint=%s shard=%u err=\"%s\"", s->ep->id, s->shard, why);
    sb_outbox_attempt_t *a = s->a;
    sb_free(s);
    sb_outbox_answer(a, &o);
}

static void deliver(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, sb_outbox_attempt_t *a,
                    void *data)
{
    wh_endpoint_t *ep = data;
    sb_webhooks_t *w = ep->w;
    size_t len = 0;
    const char *body = sb_outbox_field(e, "e", &len);
    char wid[96], ts[24], sig[SB_STDWEBHOOKS_SIG_MAX], h[3][160];
    snprintf(wid, sizeof(wid), "evt_%u_%s", e->index, e->id);
    snprintf(ts, sizeof(ts), "%lld", (long long)(sb_now_ms() / 1000));
    sb_stdwebhooks_sign(ep->key, ep->keylen, wid, ts, body ? body : "", len, sig);
    snprintf(h[0], sizeof(h[0]), "webhook-id: %s", wid);
    snprintf(h[1], sizeof(h[1]), "webhook-timestamp: %s", ts);
    snprintf(h[2], sizeof(h[2]), "webhook-signature: %s", sig);
    const char *headers[] = {h[0], h[1], h[2], "Content-Type: application/json", NULL};
    sb_httpc_request_t req = {.method = "POST",
                              .url = ep->url,
                              .headers = headers,
                              .body = body ? body : "",
                              .body_len = len,
                              .timeout_ms = w->cfg->webhook_timeout_ms,
                              .max_response = 64 * 1024};
    wh_send_t *s = SB_NEW(wh_send_t);
    s->ep = ep;
    s->shard = e->index;
    s->a = a;
    int rc = sb_httpc_send(w->httpc, &req, on_http_done, s, &s->req);
    if (rc != 0) {
        SB_LOG_ERROR("webhook.send", "endpoint=%s err=%s", ep->id, sb_err_name(rc));
        sb_free(s);
        sb_outbox_answer(a, &(sb_outcome_t){.kind = SB_OUTCOME_TEMPORARY,
                                            .reason = "the HTTP client could not start"});
        return;
    }
    ep->sends[e->index] = s;
}

static void cancel(sb_outbox_lane_t *lane, sb_outbox_attempt_t *a, void *data)
{
    wh_endpoint_t *ep = data;
    for (unsigned i = 0; i < ep->w->shards; i++) {
        wh_send_t *s = ep->sends[i];
        if (s && s->a == a) {
            sb_httpc_cancel(s->req); /* its callback never runs */
            ep->sends[i] = NULL;
            sb_free(s);
        }
    }
}

static bool takes_event(sb_outbox_lane_t *lane, const sb_outbox_entry_t *e, void *data)
{
    size_t len;
    const char *body = sb_outbox_field(e, "e", &len);
    return body && sb__wh_accepts(data, e->index, e->id, body, len);
}

int sb__wh_lane_add(wh_endpoint_t *ep)
{
    sb_webhooks_t *w = ep->w;
    ep->sends = sb_calloc(w->shards, sizeof(wh_send_t *));
    sb_outbox_lane_opts_t lo = {.name = ep->group,
                                .group = ep->group,
                                .streams = (const char *const *)w->keys,
                                .nstreams = w->shards,
                                .group_start = "$",
                                .deliver = deliver,
                                .cancel = cancel,
                                .accept = takes_event,
                                .data = ep};
    return sb_outbox_lane_add(w->outbox, &lo, &ep->lane);
}

/* ---- Start, stop, metrics ---- */

static void on_tick(uv_timer_t *t)
{
    sb__wh_reload_bots(t->data);
}

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    sb_webhooks_t *w = data;
    for (wh_endpoint_t *ep = w->eps; ep; ep = ep->next)
        if (ev->shard < w->shards && ep->lane)
            sb_outbox_lane_poke(ep->lane, (int)ev->shard);
}

int sb_webhooks_start(uv_loop_t *loop, const sb_config_t *cfg, sb_redis_t *redis,
                      sb_events_t *events, sb_webhooks_t **out)
{
    sb_webhooks_t *w = SB_NEW(sb_webhooks_t);
    w->loop = loop;
    w->cfg = cfg;
    w->redis = redis;
    w->shards = cfg->shards;
    w->prefix = sb_strdup(cfg->prefix);
    sb_key_t k; /* the config bounds the prefix: these keys always fit */
    sb_key_webhooks(&k, cfg->prefix);
    w->bots_key = sb_key_dup(&k);
    w->keys = sb_calloc(w->shards, sizeof(char *));
    for (unsigned i = 0; i < w->shards; i++) {
        sb_key_events(&k, cfg->prefix, i);
        w->keys[i] = sb_key_dup(&k);
    }
    char host[256] = "localhost";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    snprintf(w->consumer, sizeof(w->consumer), "%s/%s", host, cfg->listen);
    char ua[64];
    snprintf(ua, sizeof(ua), "Switchboard/%s (webhooks)", sb_version());
    sb_httpc_new(loop, ua, &w->httpc);
    sb_outbox_opts_t oo = {.prefix = cfg->prefix,
                           .consumer = w->consumer,
                           .retry_base_ms = cfg->webhook_retry_base_ms,
                           .retry_max_ms = cfg->webhook_retry_max_ms,
                           .attempts = (unsigned)cfg->webhook_attempts,
                           .claim_idle_ms = cfg->webhook_claim_idle_ms,
                           .dead_maxlen = (unsigned)cfg->outbox_dead_maxlen,
                           .max_inflight = MAX_INFLIGHT,
                           .log_name = "webhook"};
    sb_outbox_new(loop, redis, &oo, &w->outbox);
    uv_timer_init(loop, &w->tick);
    w->tick.data = w;
    uv_unref((uv_handle_t *)&w->tick);
    sb__wh_add_config_endpoints(w);
    sb_events_subscribe(events, NULL, on_event, NULL, w, &w->sub);
    uv_timer_start(&w->tick, on_tick, 0, TICK_MS);
    SB_LOG_INFO("webhook.start", "endpoints=%u consumer=%s", w->nendpoints, w->consumer);
    *out = w;
    return 0;
}

void sb__wh_maybe_free(sb_webhooks_t *w)
{
    if (!w->stopping || w->refs)
        return;
    while (w->eps) {
        wh_endpoint_t *ep = w->eps;
        w->eps = ep->next;
        sb__wh_endpoint_free(ep); /* its lane went with the engine */
    }
    for (unsigned i = 0; i < w->shards; i++)
        sb_free(w->keys[i]);
    sb_free(w->keys);
    sb_free(w->prefix);
    sb_free(w->bots_key);
    sb_free(w);
}

static void on_part_stopped(void *data)
{
    sb_webhooks_t *w = data;
    w->refs--;
    sb__wh_maybe_free(w);
}

static void on_outbox_stopped(void *data)
{
    sb_webhooks_t *w = data;
    w->outbox = NULL;
    sb_httpc_stop(w->httpc, on_part_stopped, w); /* nothing in flight any more */
}

static void on_tick_closed(uv_handle_t *h)
{
    on_part_stopped(h->data);
}

void sb_webhooks_stop(sb_webhooks_t *w)
{
    if (!w || w->stopping)
        return;
    w->stopping = true;
    sb_events_unsubscribe(w->sub);
    w->sub = NULL;
    w->refs += 2; /* the tick's close; the engine, then the HTTP client */
    uv_close((uv_handle_t *)&w->tick, on_tick_closed);
    SB_LOG_INFO("webhook.stop", "pending_replies=%u", w->refs - 2);
    /* in flight: cancelled (their events stay pending in Redis, retried after a start) */
    sb_outbox_stop(w->outbox, on_outbox_stopped, w);
}

void sb_webhooks_metrics(const sb_webhooks_t *w, sb_buf_t *out)
{
    if (!w)
        return;
    sb_outbox_stats_t sum = w->gone;
    for (const wh_endpoint_t *ep = w->eps; ep; ep = ep->next) {
        sb_outbox_stats_t st;
        if (!ep->lane)
            continue;
        sb_outbox_lane_stats(ep->lane, &st);
        sum.ok += st.ok;
        sum.retry += st.retry + st.rate_limited;
        sum.dead += st.dead;
        sum.lost += st.lost;
    }
    const uint64_t counts[] = {sum.ok, sum.retry, sum.dead, sum.lost};
    static const char *const results[] = {"ok", "retry", "dead", "lost"};
    sb_buf_puts(out, "# HELP switchboard_webhook_deliveries_total Webhook delivery attempts: ok "
                     "(2xx), retry (failed, retried later), dead (given up), lost (trimmed "
                     "before delivery).\n# TYPE switchboard_webhook_deliveries_total counter\n");
    for (int i = 0; i < 4; i++)
        sb_buf_printf(out, "switchboard_webhook_deliveries_total{result=\"%s\"} %llu\n", results[i],
                      (unsigned long long)counts[i]);
    sb_buf_printf(out,
                  "# TYPE switchboard_webhook_endpoints gauge\nswitchboard_webhook_endpoints %u\n"
                  "# TYPE switchboard_webhook_inflight gauge\nswitchboard_webhook_inflight %u\n",
                  w->nendpoints, w->stopping ? 0 : sb_httpc_inflight(w->httpc));
}

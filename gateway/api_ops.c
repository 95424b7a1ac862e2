/* SPDX-License-Identifier: MIT */
/*
 * Operational endpoints: GET /healthz (the process answers), GET /readyz (Redis is
 * reachable, the function library loaded and the events feed running; 503 otherwise)
 * and GET /metrics (Prometheus text exposition format 0.0.4).
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/reports.h"
#include "core/sla_engine.h"
#include "core/util.h"
#include "gateway/internal.h"
#include "gateway/version.h"
#include "gateway/webhooks.h"

static void h_healthz(sb_http_req_t *req, void *data)
{
    json_t *j = json_pack("{s:s, s:s}", "status", "ok", "version", sb_version());
    sb_http_respond_json(req, 200, j);
    json_decref(j);
}

static void h_readyz(sb_http_req_t *req, void *data)
{
    sb_app_t *app = data;
    bool redis = sb_redis_connected(app->redis);
    bool functions = sb_store_ready(app->store);
    bool events = sb_events_ready(app->events);
    if (redis && functions && events) {
        json_t *j = json_pack("{s:s}", "status", "ready");
        sb_http_respond_json(req, 200, j);
        json_decref(j);
        return;
    }
    char msg[160];
    snprintf(msg, sizeof(msg), "not ready: redis=%s functions=%s events=%s", redis ? "up" : "down",
             functions ? "loaded" : "missing", events ? "running" : "starting");
    sb_http_add_header(req, "Retry-After", "1");
    sb_http_respond_error(req, 503, "unavailable", msg);
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

typedef struct scrape {
    api_call_t *c;
    unsigned pending;
    long long queue_depth;
    bool queue_ok;
} scrape_t;

static void render(scrape_t *sc)
{
    sb_app_t *app = sc->c->app;
    sb_buf_t b;
    sb_buf_init(&b, 256 * 1024);
    sb_http_stats_t hs;
    sb_http_server_stats(app->http, &hs);
    sb_buf_printf(&b,
                  "# HELP switchboard_rss_bytes Resident memory of the daemon.\n"
                  "# TYPE switchboard_rss_bytes gauge\nswitchboard_rss_bytes %ld\n"
                  "# TYPE switchboard_uptime_seconds gauge\nswitchboard_uptime_seconds %.3f\n"
                  "# TYPE switchboard_http_open_connections gauge\n"
                  "switchboard_http_open_connections %llu\n"
                  "# TYPE switchboard_http_requests_total counter\n"
                  "switchboard_http_requests_total %llu\n"
                  "# TYPE switchboard_sse_streams gauge\nswitchboard_sse_streams %zu\n",
                  rss_bytes(), (double)(sb_now_ms() - app->started_ms) / 1000.0,
                  (unsigned long long)hs.open_connections, (unsigned long long)hs.requests,
                  sb_api_streams(app->api));
    sb_buf_printf(&b,
                  "# HELP switchboard_outbound_buffered_bytes Bytes queued for readers of live "
                  "streams and WebSockets.\n"
                  "# TYPE switchboard_outbound_buffered_bytes gauge\n"
                  "switchboard_outbound_buffered_bytes %llu\n"
                  "# TYPE switchboard_outbound_buffer_limit_bytes gauge\n"
                  "switchboard_outbound_buffer_limit_bytes %llu\n"
                  "# HELP switchboard_slow_readers_closed_total Connections closed because "
                  "their reader fell too far behind (over_limit: the total was over "
                  "max_outbound_buffer).\n"
                  "# TYPE switchboard_slow_readers_closed_total counter\n"
                  "switchboard_slow_readers_closed_total{reason=\"queue_full\"} %llu\n"
                  "switchboard_slow_readers_closed_total{reason=\"over_limit\"} %llu\n",
                  (unsigned long long)hs.outbound_bytes, (unsigned long long)hs.outbound_limit,
                  (unsigned long long)(hs.slow_closed - hs.shed), (unsigned long long)hs.shed);
    sb_buf_puts(&b, "# HELP switchboard_messages_total Messages by channel and direction.\n"
                    "# TYPE switchboard_messages_total counter\n");
    for (int i = 0; i < SB_CHANNEL_COUNT; i++) {
        sb_buf_printf(&b, "switchboard_messages_total{channel=\"%s\",dir=\"in\"} %llu\n",
                      sb_channel_name(i), (unsigned long long)app->msgs_in[i]);
        sb_buf_printf(&b, "switchboard_messages_total{channel=\"%s\",dir=\"out\"} %llu\n",
                      sb_channel_name(i), (unsigned long long)app->msgs_out[i]);
    }
    sb_redis_stats_t rs;
    sb_redis_stats(app->redis, &rs);
    sb_buf_printf(&b,
                  "# TYPE switchboard_redis_up gauge\nswitchboard_redis_up %d\n"
                  "# TYPE switchboard_redis_reconnects_total counter\n"
                  "switchboard_redis_reconnects_total %llu\n"
                  "# TYPE switchboard_redis_errors_total counter\n"
                  "switchboard_redis_errors_total %llu\n"
                  "# HELP switchboard_redis_command_seconds Redis command latency.\n"
                  "# TYPE switchboard_redis_command_seconds histogram\n",
                  sb_redis_connected(app->redis) ? 1 : 0, (unsigned long long)rs.reconnects,
                  (unsigned long long)rs.errors);
    uint64_t cum = 0;
    for (int i = 0; i < SB_REDIS_LAT_BUCKETS; i++) {
        cum += rs.lat_count[i];
        double le = sb_redis_lat_bounds_us[i];
        if (i == SB_REDIS_LAT_BUCKETS - 1)
            sb_buf_printf(&b, "switchboard_redis_command_seconds_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)cum);
        else
            sb_buf_printf(&b, "switchboard_redis_command_seconds_bucket{le=\"%g\"} %llu\n",
                          le / 1e6, (unsigned long long)cum);
    }
    sb_buf_printf(&b,
                  "switchboard_redis_command_seconds_sum %.6f\n"
                  "switchboard_redis_command_seconds_count %llu\n",
                  rs.lat_sum_us / 1e6, (unsigned long long)cum);
    if (sc->queue_ok)
        sb_buf_printf(&b,
                      "# HELP switchboard_queue_depth Open conversations awaiting a reply.\n"
                      "# TYPE switchboard_queue_depth gauge\nswitchboard_queue_depth %lld\n",
                      sc->queue_depth);
    sb_frt_hist_render(sb_store_frt_hist(app->store), &b);
    sb_webhooks_metrics(app->webhooks, &b);
    sb_sla_engine_metrics(app->sla_engine, &b);
    sb_app_connectors_metrics(app, &b);
    sb_http_req_t *req = sc->c->req;
    if (req) {
        sb_http_req_on_close(req, NULL, NULL);
        sc->c->req = NULL;
        if (sb_buf_error(&b)) /* one check for every append above (sticky errors) */
            sb_http_respond_error(req, 500, "internal", "metrics larger than their buffer");
        else
            sb_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
    }
    sb_buf_dispose(&b);
    sb__api_call_free(sc->c);
    sb_free(sc);
}

static void on_zcard(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    scrape_t *sc = data;
    if (status == 0 && reply->type == REDIS_REPLY_INTEGER)
        sc->queue_depth += reply->integer;
    else
        sc->queue_ok = false;
    if (--sc->pending > 0)
        return;
    sc->c->busy = false;
    if (!sc->c->req) {
        sb__api_call_free(sc->c);
        sb_free(sc);
        return;
    }
    render(sc);
}

static void h_metrics(sb_http_req_t *req, void *data)
{
    sb_app_t *app = data;
    scrape_t *sc = SB_NEW(scrape_t);
    sc->c = sb__api_call_new(app, req);
    sc->queue_ok = sb_redis_connected(app->redis);
    if (!sc->queue_ok) {
        render(sc);
        return;
    }
    const sb_store_opts_t *o = sb_store_opts(app->store);
    sc->c->busy = true;
    for (unsigned i = 0; i < o->shards; i++) {
        sb_key_t key;
        const char *argv[] = {"ZCARD", key.str};
        sc->pending++;
        if (sb_key_queue(&key, o->prefix, i) != 0 ||
            sb_redis_command_argv(app->redis, on_zcard, sc, 1000, 2, argv, NULL) != 0) {
            sc->pending--;
            sc->queue_ok = false;
        }
    }
    if (sc->pending == 0) {
        sc->c->busy = false;
        render(sc);
    }
}

void sb__api_ops_routes(sb_app_t *app)
{
    sb_http_route(app->http, "GET", "/healthz", h_healthz, app);
    sb_http_route(app->http, "GET", "/readyz", h_readyz, app);
    sb_http_route(app->http, "GET", "/metrics", h_metrics, app);
}

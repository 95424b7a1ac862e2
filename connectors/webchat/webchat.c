/* SPDX-License-Identifier: MIT */
/*
 * The webchat connector: the embeddable widget's WebSocket, subprotocol
 * `switchboard.visitor.v1` (docs/contract.md §5, §6). This file owns the connector's lifecycle,
 * the sockets (site origins checked on upgrade), the sites and the rate limits; hello.c,
 * frames.c and deliver.c hold the protocol, wait.c the honest wait (internal.h).
 *
 * Limits: every frame type has a token bucket per socket and one per address, the
 * address being sb_ip_key() (an IPv6 /64 counts as one). An address's buckets live as
 * long as a socket of it is open, and a minute after (so a reconnect loop cannot reset
 * them); the sweep that forgets idle ones walks the addresses, not the sockets (on the
 * wait refresh's timer).
 *
 * Lifetime: a visitor is freed when its socket closed and no store call of it is in
 * flight; the connector's state is freed once it is stopping, every visitor is gone and
 * its own store calls (the wait refresh, wait.c) have come back, and then stop's callback
 * runs.
 * Sockets are the host's (connectors/connector.h): no gateway type is seen here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "connectors/webchat/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla.h"

#define IP_SWEEP_MS 60000

typedef struct rate {
    double burst, per_s;
} rate_t;

/* Per socket. Messages come from the config (visitor_rate); hello is once per socket. */
static const rate_t socket_rates[WC_NLIMITS] = {
    [WC_HELLO] = {5, 1},
    [WC_TYPING] = {1, 1 / 1.5}, /* one typing event per 1.5 s: the rest are coalesced away */
    [WC_EMAIL] = {3, 3 / 60.0}, /* a few per minute: each is a note, an event and a webhook */
    [WC_HISTORY] = {6, 2},
    [WC_OTHER] = {10, 2},
};

/*
 * Per address: shares of visitor_ip_rate (messages per minute, default 600), so an
 * operator who raises it for many visitors behind one NAT raises every address budget.
 * At the default: 100 messages at once then 10/s, 30 hellos then 2/s, typing 5/s,
 * email 10 a minute, history 10 pages/s, other frames 20/s.
 */
static const rate_t ip_shares[WC_NLIMITS] = {
    [WC_MESSAGE] = {1 / 6.0, 1},       [WC_HELLO] = {1 / 20.0, 1 / 5.0},
    [WC_TYPING] = {1 / 30.0, 1 / 2.0}, [WC_EMAIL] = {1 / 60.0, 1 / 60.0},
    [WC_HISTORY] = {1 / 15.0, 1},      [WC_OTHER] = {1 / 6.0, 2},
};

uint64_t sb__webchat_now(const webchat_t *wc)
{
    return uv_now(wc->env.loop);
}

static bool take(bucket_t *b, rate_t r, uint64_t now, uint64_t *retry_ms)
{
    if (b->at_ms == 0) {
        b->tokens = r.burst;
    } else {
        b->tokens += (double)(now - b->at_ms) * r.per_s / 1000.0;
        if (b->tokens > r.burst)
            b->tokens = r.burst;
    }
    b->at_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return true;
    }
    *retry_ms = (uint64_t)((1.0 - b->tokens) * 1000.0 / r.per_s) + 1;
    return false;
}

static rate_t rate_of(const webchat_t *wc, enum wc_limit which, bool per_ip)
{
    if (!per_ip && which != WC_MESSAGE)
        return socket_rates[which];
    double per_min = (double)(per_ip ? wc->visitor_ip_rate : wc->visitor_rate);
    rate_t share = per_ip ? ip_shares[which] : (rate_t){1 / 6.0, 1};
    double burst = per_min * share.burst;
    return (rate_t){burst > 1 ? burst : 1, per_min * share.per_s / 60};
}

bool sb__webchat_take(visitor_t *v, enum wc_limit which, uint64_t *retry_ms)
{
    uint64_t now = sb__webchat_now(v->wc);
    if (!take(&v->b[which], rate_of(v->wc, which, false), now, retry_ms)) {
        v->wc->limited++;
        return false;
    }
    v->ipst->at_ms = now;
    if (take(&v->ipst->b[which], rate_of(v->wc, which, true), now, retry_ms))
        return true;
    v->b[which].tokens += 1.0; /* refused by the address: the socket's token goes back */
    v->wc->limited++;
    return false;
}

/* ---- visitors ---- */

void sb__webchat_visitor_free(visitor_t *v)
{
    webchat_t *wc = v->wc;
    sb__webchat_detach(v);
    if (v->all_prev)
        v->all_prev->all_next = v->all_next;
    else
        wc->all = v->all_next;
    if (v->all_next)
        v->all_next->all_prev = v->all_prev;
    wc->nvisitors--;
    v->ipst->live--;
    v->ipst->at_ms = sb__webchat_now(wc);
    sb__webchat_drop_held(v);
    sb__webchat_drop_waiting(v);
    sb_free(v->last_seq);
    sb_free(v->email);
    sb_free(v);
    sb__webchat_maybe_free(wc);
}

bool sb__webchat_alive(visitor_t *v)
{
    v->busy--;
    if (v->ws)
        return true;
    if (v->busy == 0)
        sb__webchat_visitor_free(v);
    return false;
}

/* ---- sockets ---- */

static const site_t *find_site(const webchat_t *wc, const char *id)
{
    for (int i = 0; i < wc->nsites; i++)
        if (strcmp(wc->sites[i].id, id) == 0)
            return &wc->sites[i];
    return NULL;
}

static bool origin_ok(const site_t *site, const char *origin)
{
    if (!origin) /* not a browser: no ambient credentials to protect */
        return true;
    for (int i = 0; i < site->norigins; i++)
        if (strcmp(site->origins[i], "*") == 0 || strcasecmp(site->origins[i], origin) == 0)
            return true;
    return false;
}

static int on_upgrade(sb_host_ws_t *ws, void *data)
{
    webchat_t *wc = data;
    const sb_host_ops_t *host = wc->env.host;
    const char *id = host->ws_query(ws, "site");
    const site_t *site = find_site(wc, id ? id : "default");
    const char *origin = host->ws_header(ws, "origin");
    if (!site) {
        SB_LOG_INFO("webchat.refused", "peer=%s reason=unknown-site", host->ws_peer(ws));
        return 404;
    }
    if (!origin_ok(site, origin)) {
        SB_LOG_INFO("webchat.refused", "peer=%s site=%s origin=\"%s\" reason=origin",
                    host->ws_peer(ws), site->id, origin);
        return 403;
    }
    return 0;
}

static void on_open(sb_host_ws_t *ws, void *data)
{
    webchat_t *wc = data;
    const sb_host_ops_t *host = wc->env.host;
    const char *id = host->ws_query(ws, "site");
    const site_t *site = find_site(wc, id ? id : "default");
    if (!site) { /* on_upgrade checked it: cannot happen */
        host->ws_close(ws, 1011, "unknown site");
        return;
    }
    visitor_t *v = SB_NEW(visitor_t);
    v->wc = wc;
    v->ws = ws;
    v->site = site;
    snprintf(v->ip, sizeof(v->ip), "%s", host->ws_peer(ws));
    char key[SB_IP_KEY_MAX];
    sb_ip_key(v->ip, key);
    v->ipst = sb_map_get(&wc->by_ip, key);
    if (!v->ipst) {
        v->ipst = SB_NEW(ip_state_t);
        sb_map_set(&wc->by_ip, key, v->ipst);
    }
    v->ipst->live++;
    v->ipst->at_ms = sb__webchat_now(wc);
    v->all_next = wc->all;
    if (wc->all)
        wc->all->all_prev = v;
    wc->all = v;
    wc->nvisitors++;
    host->ws_set_user(ws, v);
}

static void on_close(sb_host_ws_t *ws, void *data)
{
    const webchat_t *wc = data;
    visitor_t *v = wc->env.host->ws_user(ws);
    if (!v)
        return;
    v->ws = NULL;
    sb__webchat_detach(v);
    if (v->busy == 0)
        sb__webchat_visitor_free(v);
}

/* Forgets the buckets of addresses with no socket that were idle a whole sweep period. */
void sb__webchat_sweep(webchat_t *wc, uint64_t now)
{
    if (now - wc->last_sweep < IP_SWEEP_MS)
        return;
    wc->last_sweep = now;
    size_t b, ngone = 0;
    char **gone = NULL;
    for (sb_map_entry_t *e = sb_map_first(&wc->by_ip, &b); e; e = sb_map_next(&wc->by_ip, e, &b)) {
        const ip_state_t *ip = e->value;
        if (ip->live == 0 && now - ip->at_ms > IP_SWEEP_MS) {
            gone = sb_realloc(gone, (ngone + 1) * sizeof(char *));
            gone[ngone++] = sb_strdup(e->key);
        }
    }
    for (size_t i = 0; i < ngone; i++) {
        sb_free(sb_map_del(&wc->by_ip, gone[i]));
        sb_free(gone[i]);
    }
    sb_free(gone);
}

/* ---- sites ---- */

/* The origin of a URL ("https://a.example:8443/x" -> "https://a.example:8443"). */
static char *url_origin(const char *url)
{
    const char *p = strstr(url, "://");
    if (!p)
        return sb_strdup(url);
    const char *slash = strchr(p + 3, '/');
    return slash ? sb_strndup(url, (size_t)(slash - url)) : sb_strdup(url);
}

static void load_sites(webchat_t *wc, const sb_config_t *cfg)
{
    const sb_config_list_t *sites = sb_config_list(cfg, "site");
    if (sites->n == 0) { /* the default site serves the daemon's own pages */
        wc->nsites = 1;
        wc->sites = sb_calloc(1, sizeof(site_t));
        wc->sites[0].id = sb_strdup("default");
        char secret[65];
        sb_random_hex(secret, 32); /* unknown to anyone: nobody can claim a verified id */
        wc->sites[0].secret = sb_strdup(secret);
        wc->sites[0].norigins = 1;
        wc->sites[0].origins = sb_calloc(1, sizeof(char *));
        wc->sites[0].origins[0] = url_origin(cfg->public_url);
        return;
    }
    wc->nsites = (int)sites->n;
    wc->sites = sb_calloc(sites->n, sizeof(site_t));
    for (size_t i = 0; i < sites->n; i++) {
        const sb_config_entry_t *e = &sites->items[i];
        site_t *s = &wc->sites[i];
        s->id = sb_strdup(e->argv[0]);
        s->secret = sb_strdup(e->argc > 1 ? e->argv[1] : "");
        s->norigins = e->argc > 2 ? e->argc - 2 : 1;
        s->origins = sb_calloc((size_t)s->norigins, sizeof(char *));
        for (int k = 0; k < s->norigins; k++)
            s->origins[k] = e->argc > 2 ? url_origin(e->argv[k + 2]) : url_origin(cfg->public_url);
    }
}

/* ---- lifecycle ---- */

static void wc_free(webchat_t *wc)
{
    size_t b;
    for (sb_map_entry_t *e = sb_map_first(&wc->by_ip, &b); e; e = sb_map_next(&wc->by_ip, e, &b))
        sb_free(e->value);
    sb_map_dispose(&wc->by_ip);
    sb_map_dispose(&wc->by_conv);
    for (int i = 0; i < wc->nsites; i++) {
        sb_free(wc->sites[i].id);
        sb_free(wc->sites[i].secret);
        for (int k = 0; k < wc->sites[i].norigins; k++)
            sb_free(wc->sites[i].origins[k]);
        sb_free(wc->sites[i].origins);
    }
    sb_free(wc->sites);
    sb_free(wc);
}

void sb__webchat_maybe_free(webchat_t *wc)
{
    if (!wc->stopping || wc->nvisitors > 0 || wc->pending > 0)
        return;
    sb_connector_stopped_cb done = wc->stopped;
    void *data = wc->stopped_data;
    wc_free(wc);
    if (done)
        done(data);
}

static void on_sub_failed(sb_events_sub_t *sub, int status, void *data)
{
    SB_LOG_ERROR("webchat.events", "err=%s", sb_err_name(status));
}

static int start(const sb_connector_env_t *env, void **state)
{
    webchat_t *wc = SB_NEW(webchat_t);
    wc->env = *env;
    const sb_sla_policy_t *policy =
        env->sla ? sb_sla_match(env->sla, SB__WC_CHANNEL, "normal") : NULL;
    wc->cal = policy ? policy->cal : NULL;
    wc->wait_in.median_ms = -1;
    wc->wait = (sb_wait_t){.expected_ms = -1, .open = true, .back_at_ms = -1};
    sb_map_init(&wc->by_conv);
    sb_map_init(&wc->by_ip);
    load_sites(wc, env->cfg);
    /* Both 0 when the configuration was loaded without this connector's keys. */
    wc->visitor_rate = sb_config_uint(env->cfg, "visitor_rate");
    wc->visitor_ip_rate = sb_config_uint(env->cfg, "visitor_ip_rate");
    int rc = SB_ECONFIG;
    if (!wc->visitor_rate || !wc->visitor_ip_rate)
        goto fail;
    /* The subscription first: a route cannot be taken back, so it goes last. */
    rc = sb_events_subscribe(env->events, NULL, sb__webchat_on_event, on_sub_failed, wc, &wc->sub);
    if (rc)
        goto fail;
    sb_host_ws_route_t r = {.path = "/v1/visitor/ws",
                            .subprotocol = "switchboard.visitor.v1",
                            .max_frame = SB_MAX_WS_FRAME,
                            .max_queue = 1024 * 1024,
                            .idle_timeout_s = 300,
                            .on_upgrade = on_upgrade,
                            .on_open = on_open,
                            .on_text = sb__webchat_on_text,
                            .on_close = on_close,
                            .data = wc};
    rc = env->host->ws_route(env->host_data, &r);
    if (rc) {
        sb_events_unsubscribe(wc->sub);
        goto fail;
    }
    sb__webchat_wait_start(wc);
    *state = wc;
    return 0;
fail:
    SB_LOG_ERROR("webchat.start", "err=%s", sb_err_name(rc));
    wc_free(wc);
    return rc;
}

static void on_timer_closed(uv_handle_t *h)
{
    sb_free(h);
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    webchat_t *wc = state;
    if (!wc) {
        if (done)
            done(data);
        return;
    }
    wc->stopped = done;
    wc->stopped_data = data;
    sb_events_unsubscribe(wc->sub);
    wc->sub = NULL;
    uv_close((uv_handle_t *)wc->timer, on_timer_closed);
    wc->stopping = true;
    for (visitor_t *v = wc->all, *next; v; v = next) {
        next = v->all_next;
        if (v->ws)
            wc->env.host->ws_close(v->ws, 1001, "server shutting down");
    }
    sb__webchat_maybe_free(wc);
}

static void metrics(void *state, sb_buf_t *out)
{
    webchat_t *wc = state;
    sb_buf_printf(out,
                  "# TYPE switchboard_webchat_sockets gauge\nswitchboard_webchat_sockets %zu\n"
                  "# TYPE switchboard_webchat_expected_reply_ms gauge\n"
                  "switchboard_webchat_expected_reply_ms %lld\n"
                  "# TYPE switchboard_webchat_staff_online gauge\n"
                  "switchboard_webchat_staff_online %llu\n"
                  "# TYPE switchboard_webchat_rate_limited_total counter\n"
                  "switchboard_webchat_rate_limited_total %llu\n",
                  wc->nvisitors, (long long)wc->wait.expected_ms,
                  (unsigned long long)wc->wait.online, (unsigned long long)wc->limited);
}

/* The web chat's configuration keys (core/config.h parses them for us). */
static const sb_config_key_t config_keys[] = {
    {"visitor_rate", SB_CONFIG_UINT, "120", 1, 1000000, "<per-minute>",
     "Messages one visitor socket may send per minute (bursts of a sixth)."},
    {"visitor_ip_rate", SB_CONFIG_UINT, "600", 1, 100000000, "<per-minute>",
     "Messages all visitors of one address (IPv6: /64) may send per minute; also sizes its "
     "hello, typing, email and history budgets."},
    {"site", SB_CONFIG_LIST, NULL, 2, 0, "<id> <secret> [allowed-origin...]",
     "A website embedding the widget: the secret signs user_hash; origins default to "
     "public_url."},
    {NULL},
};

const sb_connector_desc_t sb_connector_webchat = {
    .name = "webchat",
    .channel = SB__WC_CHANNEL,
    .config = config_keys,
    .start = start,
    .stop = stop,
    .deliver = NULL, /* answers reach visitors through the events subscription */
    .metrics = metrics,
};

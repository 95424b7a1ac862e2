/* SPDX-License-Identifier: MIT */
/*
 * Signed inbound hooks (docs/hooks.md): any network a small relay can reach comes in as
 * the channel "hook". Each `hook <name> <secret> <reply-url>` entry opens
 * POST /v1/hooks/<name> for posts signed with the secret (Standard Webhooks,
 * core/stdwebhooks.h; inbound.c), and staff answers to those conversations are POSTed to
 * <reply-url>, signed the same way, through the hook channel's outbox lane (outbound.c).
 * This file owns the configuration and the connector's life.
 */
#include <stdio.h>
#include <string.h>

#include "connectors/hook/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/stdwebhooks.h"

const hook_ep_t *sb__hook_find(const hook_t *h, const char *name)
{
    for (size_t i = 0; name && i < h->neps; i++)
        if (strcmp(h->eps[i].name, name) == 0)
            return &h->eps[i];
    return NULL;
}

static void hook_free(hook_t *h)
{
    for (size_t i = 0; i < h->neps; i++) {
        sb_free(h->eps[i].name);
        sb_free(h->eps[i].url);
        sb_free(h->eps[i].key);
    }
    sb_free(h->eps);
    sb_free(h);
}

/* Frees h once it is stopping, its HTTP client stopped and nothing is in flight. */
static void maybe_done(hook_t *h)
{
    if (!h->stopping || !h->httpc_stopped || h->pending > 0)
        return;
    sb_connector_stopped_cb done = h->done;
    void *done_data = h->done_data;
    hook_free(h);
    done(done_data);
}

void sb__hook_unref(hook_t *h)
{
    h->pending--;
    maybe_done(h);
}

static void on_httpc_stopped(void *data)
{
    hook_t *h = data;
    h->httpc_stopped = true;
    maybe_done(h);
}

static int start(const sb_connector_env_t *env, void **state)
{
    const sb_config_list_t *l = sb_config_list(env->cfg, "hook");
    *state = NULL;
    if (l->n == 0)
        return 0; /* no hook configured: not running */
    hook_t *h = SB_NEW(hook_t);
    h->env = *env;
    h->eps = sb_calloc(l->n, sizeof(*h->eps));
    for (size_t i = 0; i < l->n; i++) {
        const sb_config_entry_t *e = &l->items[i];
        hook_ep_t *ep = &h->eps[h->neps];
        if (sb_stdwebhooks_key(e->argv[1], &ep->key, &ep->keylen) != 0) {
            SB_LOG_ERROR("hook.config", "file=%s line=%d hook=%s err=\"bad secret\"", e->file,
                         e->line, e->argv[0]);
            hook_free(h);
            return SB_ECONFIG;
        }
        ep->name = sb_strdup(e->argv[0]);
        ep->url = sb_strdup(e->argv[2]);
        h->neps++;
    }
    if (env->host->http_route(env->host_data, "POST", "/v1/hooks/{name}", sb__hook_on_post, h)) {
        hook_free(h);
        return SB_EINVAL;
    }
    sb_httpc_new(env->loop, "Switchboard-hook", &h->httpc);
    SB_LOG_INFO("hook.start", "hooks=%zu", h->neps);
    *state = h;
    return 0;
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    hook_t *h = state;
    h->done = done;
    h->done_data = data;
    h->stopping = true;
    sb_httpc_stop(h->httpc, on_httpc_stopped, h); /* sends in flight end as canceled */
}

static void metrics(void *state, sb_buf_t *out)
{
    const hook_t *h = state;
    sb_buf_printf(out,
                  "# TYPE switchboard_hook_posts_total counter\n"
                  "switchboard_hook_posts_total{result=\"stored\"} %llu\n"
                  "switchboard_hook_posts_total{result=\"duplicate\"} %llu\n"
                  "switchboard_hook_posts_total{result=\"refused\"} %llu\n"
                  "# TYPE switchboard_hook_replies_total counter\n"
                  "switchboard_hook_replies_total{result=\"ok\"} %llu\n"
                  "switchboard_hook_replies_total{result=\"failed\"} %llu\n",
                  (unsigned long long)h->received, (unsigned long long)h->duplicates,
                  (unsigned long long)h->refused, (unsigned long long)h->sent,
                  (unsigned long long)h->send_failed);
}

/* ---- Configuration ---- */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SB_HOOK_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return false;
    return true;
}

static bool url_ok(const char *url)
{
    const char *host = !strncmp(url, "http://", 7)    ? url + 7
                       : !strncmp(url, "https://", 8) ? url + 8
                                                      : NULL;
    if (!host || !*host || *host == '/' || *host == ':' || *host == '?' || *host == '#')
        return false;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static bool check_row(int argc, char *const *argv, char *why, size_t cap)
{
    unsigned char *key;
    size_t keylen;
    if (argc != 3) {
        snprintf(why, cap, "want <name> <secret> <reply-url>");
        return false;
    }
    if (!name_ok(argv[0])) {
        snprintf(why, cap, "the name '%.40s' must be 1-%d of a-z, 0-9, _ and -", argv[0],
                 SB_HOOK_NAME_MAX);
        return false;
    }
    if (sb_stdwebhooks_key(argv[1], &key, &keylen) != 0) {
        snprintf(why, cap, "the secret is empty, or whsec_ without valid base64");
        return false;
    }
    sb_free(key);
    if (!url_ok(argv[2])) {
        snprintf(why, cap, "the reply-url '%.100s' must be an http:// or https:// URL", argv[2]);
        return false;
    }
    return true;
}

static const sb_config_key_t config[] = {
    {"hook", SB_CONFIG_LIST, NULL, 3, 0, "<name> <secret> <reply-url>",
     "A signed inbound hook (docs/hooks.md): posts to /v1/hooks/<name> signed with <secret> "
     "(Standard Webhooks; whsec_<base64> or raw) become conversations; staff answers are "
     "POSTed to <reply-url>, signed the same way.",
     check_row, true},
    {NULL},
};

const sb_connector_desc_t sb_connector_hook = {
    .name = "hook",
    .channel = "hook",
    .config = config,
    .start = start,
    .stop = stop,
    .deliver = sb__hook_deliver,
    .metrics = metrics,
};

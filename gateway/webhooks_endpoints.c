/* SPDX-License-Identifier: MIT */
/*
 * The endpoints of outbound webhooks (gateway/webhooks.h): who gets which events, and
 * the keys that sign them.
 *
 * One endpoint per `webhook` config entry (id `cfg_<sha256(url)[:16]>`) and one per bot
 * id in the set `<prefix>webhooks` whose hash `<prefix>bot:<id>` has `webhook` and
 * `secret` (and optionally `events`, `channels`); the set is re-read every second, so
 * bots come and go without a restart. A bot's webhook gets only what its token may see
 * on the live feeds (sb__feed_visible: no notes, no staff typing, no presence, only the
 * channels of its `channels` scope); the `webhook` config entries are the operator's and
 * get every event their filter takes.
 *
 * Signatures follow Standard Webhooks (core/stdwebhooks.h): each endpoint keeps the key
 * its secret decodes to.
 */
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/stdwebhooks.h"
#include "core/util.h"
#include "gateway/internal.h"
#include "gateway/webhooks_internal.h"

#define MAX_BOTS 10000

/* ---- Endpoints ---- */

static bool url_ok(const char *url)
{
    const char *host = !strncmp(url, "http://", 7)    ? url + 7
                       : !strncmp(url, "https://", 8) ? url + 8
                                                      : NULL;
    return host && *host && *host != '/' && !strpbrk(url, " \t\r\n");
}

/* Frees what sb__wh_endpoint_set set (url, secret, filter, scope, key). */
static void clear_settings(wh_endpoint_t *ep)
{
    sb_free(ep->url);
    sb_free(ep->secret);
    sb_free(ep->events);
    sb_free(ep->channels);
    sb_free(ep->key);
    for (int i = 0; i < ep->nwords; i++)
        sb_free(ep->words[i]);
    sb_free(ep->words);
    ep->words = NULL;
    ep->nwords = 0;
}

int sb__wh_endpoint_set(wh_endpoint_t *ep, const char *url, const char *secret, const char *events,
                        const char *channels)
{
    unsigned char *key;
    size_t keylen;
    if (!url_ok(url) || sb_stdwebhooks_key(secret, &key, &keylen) != 0)
        return SB_EINVAL;
    clear_settings(ep);
    ep->channels = sb_strdup(channels);
    json_t *who = json_pack("{s:s}", "channels", channels);
    ep->scope = sb__api_scope(who);
    json_decref(who);
    ep->url = sb_strdup(url);
    ep->secret = sb_strdup(secret);
    ep->events = sb_strdup(events);
    ep->key = key;
    ep->keylen = keylen;
    char *copy = sb_strdup(events);
    for (char *save = NULL, *wd = strtok_r(copy, " \t", &save); wd;
         wd = strtok_r(NULL, " \t", &save)) {
        ep->words = sb_realloc(ep->words, (size_t)(ep->nwords + 1) * sizeof(char *));
        ep->words[ep->nwords++] = sb_strdup(wd);
    }
    sb_free(copy);
    return 0;
}

wh_endpoint_t *sb__wh_endpoint_new(sb_webhooks_t *w, const char *id, bool bot)
{
    wh_endpoint_t *ep = SB_NEW(wh_endpoint_t);
    ep->w = w;
    ep->id = sb_strdup(id);
    ep->group = sb_asprintf("wh:%s", id);
    ep->bot = bot;
    ep->next = w->eps;
    w->eps = ep;
    w->nendpoints++;
    return ep;
}

static wh_endpoint_t *endpoint_find(sb_webhooks_t *w, const char *id)
{
    for (wh_endpoint_t *ep = w->eps; ep; ep = ep->next)
        if (strcmp(ep->id, id) == 0)
            return ep;
    return NULL;
}

void sb__wh_endpoint_free(wh_endpoint_t *ep)
{
    sb_free(ep->id);
    sb_free(ep->group);
    clear_settings(ep);
    sb_free(ep->sends);
    sb_free(ep);
}

void sb__wh_endpoint_drop(wh_endpoint_t *ep)
{
    sb_webhooks_t *w = ep->w;
    wh_endpoint_t **pp = &w->eps;
    while (*pp != ep)
        pp = &(*pp)->next;
    *pp = ep->next;
    w->nendpoints--;
    if (ep->lane) {
        sb_outbox_stats_t st;
        sb_outbox_lane_stats(ep->lane, &st);
        w->gone.ok += st.ok;
        w->gone.retry += st.retry + st.rate_limited;
        w->gone.dead += st.dead;
        w->gone.lost += st.lost;
        sb_outbox_lane_remove(ep->lane); /* its entries stay pending in the group */
    }
    sb__wh_endpoint_free(ep);
}

/* Does the endpoint's filter take this event? No filter: all but typing and presence. */
static bool wanted(const wh_endpoint_t *ep, const char *json, size_t len)
{
    json_t *j = json_loadb(json, len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    json_t *m = json_object_get(j, "message");
    const char *dir = json_string_value(json_object_get(m, "dir"));
    const char *etype = json_string_value(json_object_get(m, "type"));
    bool ok = ep->nwords == 0 &&
              !(type && (strcmp(type, "typing") == 0 || strcmp(type, "presence") == 0));
    for (int i = 0; i < ep->nwords && !ok && type; i++) {
        const char *wd = ep->words[i];
        size_t tl = strlen(type);
        ok = strcmp(wd, "*") == 0 || strcmp(wd, type) == 0 ||
             (strcmp(type, "event") == 0 && etype && strcmp(wd, etype) == 0) ||
             (dir && strncmp(wd, type, tl) == 0 && wd[tl] == '.' && strcmp(wd + tl + 1, dir) == 0);
    }
    json_decref(j);
    return ok;
}

bool sb__wh_accepts(const wh_endpoint_t *ep, unsigned shard, const char *id, const char *json,
                    size_t len)
{
    if (ep->bot) { /* a bot: what its token sees on the feeds */
        api_feed_client_t fc = {.bot = true, .scope = ep->scope};
        sb_event_t ev = {.shard = shard, .id = id, .json = json, .json_len = len};
        if (!sb__feed_visible(NULL, &fc, &ev))
            return false;
    }
    return wanted(ep, json, len);
}

/* ---- The `webhook` config entries ---- */

void sb__wh_add_config_endpoints(sb_webhooks_t *w)
{
    for (size_t i = 0; i < w->cfg->webhook.n; i++) {
        const sb_config_entry_t *e = &w->cfg->webhook.items[i];
        char hex[65], id[32];
        sb_sha256_hex(e->argv[0], strlen(e->argv[0]), hex);
        snprintf(id, sizeof(id), "cfg_%.16s", hex);
        if (endpoint_find(w, id)) {
            SB_LOG_WARN("webhook.endpoint", "url=%s action=duplicate_ignored", e->argv[0]);
            continue;
        }
        sb_buf_t words;
        sb_buf_init(&words, 64 * 1024);
        for (int k = 2; k < e->argc; k++)
            sb_buf_printf(&words, "%s%s", k > 2 ? " " : "", e->argv[k]);
        wh_endpoint_t *ep = sb__wh_endpoint_new(w, id, false);
        if (sb__wh_endpoint_set(ep, e->argv[0], e->argv[1], words.data ? words.data : "", "") !=
                0 ||
            sb__wh_lane_add(ep) != 0) {
            SB_LOG_ERROR("webhook.endpoint", "url=%s err=invalid", e->argv[0]);
            sb__wh_endpoint_drop(ep);
        } else {
            SB_LOG_INFO("webhook.endpoint", "id=%s url=%s action=added", id, e->argv[0]);
        }
        sb_buf_dispose(&words);
    }
}

/* ---- Bots: the set <prefix>webhooks, re-read every tick ---- */

typedef struct reload {
    sb_webhooks_t *w;
    size_t n, pending;
    bool failed; /* a read failed: keep the endpoints as they are */
    char **ids;
    char *(*fields)[4]; /* webhook, secret, events, channels */
} reload_t;

static void reconcile_one(sb_webhooks_t *w, const char *id, char *const *fields)
{
    const char *url = fields[0], *secret = fields[1];
    const char *events = fields[2] ? fields[2] : "";
    const char *channels = fields[3] ? fields[3] : "";
    if (!url || !secret)
        return;
    wh_endpoint_t *ep = endpoint_find(w, id);
    if (ep && ep->bot &&
        (strcmp(ep->url, url) || strcmp(ep->secret, secret) || strcmp(ep->events, events) ||
         strcmp(ep->channels, channels))) {
        if (sb__wh_endpoint_set(ep, url, secret, events, channels) == 0)
            SB_LOG_INFO("webhook.endpoint", "id=%s url=%s action=updated", ep->id, url);
    } else if (!ep) {
        ep = sb__wh_endpoint_new(w, id, true);
        if (sb__wh_endpoint_set(ep, url, secret, events, channels) != 0 ||
            sb__wh_lane_add(ep) != 0) {
            SB_LOG_DEBUG("webhook.endpoint", "id=%s action=invalid", id);
            sb__wh_endpoint_drop(ep);
            return;
        }
        SB_LOG_INFO("webhook.endpoint", "id=%s url=%s action=added", ep->id, url);
    }
    ep->seen = true;
}

static void reconcile(sb_webhooks_t *w, const reload_t *rl)
{
    for (wh_endpoint_t *ep = w->eps; ep; ep = ep->next)
        ep->seen = !ep->bot;
    for (size_t i = 0; i < rl->n; i++)
        reconcile_one(w, rl->ids[i], rl->fields[i]);
    for (wh_endpoint_t *ep = w->eps, *next; ep; ep = next) {
        next = ep->next;
        if (!ep->seen) {
            SB_LOG_INFO("webhook.endpoint", "id=%s action=removed", ep->id);
            sb__wh_endpoint_drop(ep);
        }
    }
}

static void reload_free(reload_t *rl)
{
    for (size_t i = 0; i < rl->n; i++) {
        sb_free(rl->ids[i]);
        for (int k = 0; k < 4; k++)
            sb_free(rl->fields[i][k]);
    }
    sb_free(rl->ids);
    sb_free(rl->fields);
    sb_free(rl);
}

static void reload_done(reload_t *rl)
{
    sb_webhooks_t *w = rl->w;
    if (!w->stopping && !rl->failed)
        reconcile(w, rl);
    reload_free(rl);
    w->reloading = false;
}

static void on_bot(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    void **slot = data; /* {reload, index} */
    reload_t *rl = slot[0];
    size_t i = (size_t)(uintptr_t)slot[1];
    sb_free(slot);
    sb_webhooks_t *w = rl->w;
    w->refs--;
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4)
        for (int k = 0; k < 4; k++)
            if (reply->element[k]->type == REDIS_REPLY_STRING)
                rl->fields[i][k] = sb_strndup(reply->element[k]->str, reply->element[k]->len);
    if (status != 0)
        rl->failed = true;
    if (--rl->pending > 0)
        return;
    reload_done(rl);
    sb__wh_maybe_free(w);
}

static void on_members(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_webhooks_t *w = data;
    w->refs--;
    if (w->stopping || status != 0 || reply->type != REDIS_REPLY_ARRAY) {
        w->reloading = false;
        sb__wh_maybe_free(w);
        return;
    }
    reload_t *rl = SB_NEW(reload_t);
    rl->w = w;
    size_t n = reply->elements < MAX_BOTS ? reply->elements : MAX_BOTS;
    rl->ids = sb_calloc(n + 1, sizeof(char *));
    rl->fields = sb_calloc(n + 1, sizeof(*rl->fields));
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = reply->element[i];
        sb_key_t k;
        if (m->type != REDIS_REPLY_STRING || m->len > 64 ||
            sb_key_principal(&k, w->prefix, "bot", m->str) != 0)
            continue;
        char *key = sb_key_dup(&k);
        const char *argv[] = {"HMGET", key, "webhook", "secret", "events", "channels"};
        void **slot = sb_calloc(2, sizeof(void *));
        slot[0] = rl;
        slot[1] = (void *)(uintptr_t)rl->n;
        rl->ids[rl->n] = sb_strdup(m->str);
        rl->n++;
        rl->pending++;
        if (sb_redis_command_argv(w->redis, on_bot, slot, 0, 6, argv, NULL) == 0) {
            w->refs++;
        } else {
            sb_free(slot);
            rl->pending--;
            rl->failed = true;
        }
        sb_free(key);
    }
    if (rl->pending == 0)
        reload_done(rl);
}

void sb__wh_reload_bots(sb_webhooks_t *w)
{
    if (w->reloading)
        return;
    const char *argv[] = {"SMEMBERS", w->bots_key};
    if (sb_redis_command_argv(w->redis, on_members, w, 0, 2, argv, NULL) == 0) {
        w->reloading = true;
        w->refs++;
    }
}

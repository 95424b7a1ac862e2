/* SPDX-License-Identifier: MIT */
/*
 * Outbound webhooks of webhooks.h: Standard Webhooks (https://www.standardwebhooks.com/,
 * "webhook-id", "webhook-timestamp", "webhook-signature: v1,<base64 HMAC-SHA256>") over
 * libcurl multi on the libuv loop, fed by Redis consumer groups.
 *
 * Endpoints: one per `webhook` config entry (id `cfg_<sha256(url)[:16]>`) and one per bot
 * id in the set `<prefix>webhooks` whose hash `<prefix>bot:<id>` has `webhook` and
 * `secret` (and optionally `events`); the set is re-read every second, so bots come and
 * go without a restart. A bot's webhook gets only what its token may see on the live
 * feeds (sb__feed_visible: no notes, no staff typing, no presence, only the channels of
 * its `channels` scope); the `webhook` config entries are the operator's and get every
 * event their filter takes. Each endpoint reads through the consumer group `wh:<endpoint-id>`
 * on every shard's `<prefix>{N}:events` stream (created with `XGROUP CREATE … $
 * MKSTREAM` when first seen — by sbctl for bots — so it gets the events from then on; an
 * existing group resumes where it was), consumer `<hostname>/<listen>`.
 *
 * Per endpoint and shard a lane holds up to LANE_BATCH fetched events and sends them one
 * at a time, in stream order (so per conversation, in order). A lane first re-reads its
 * consumer's pending entries (XREADGROUP … 0: events fetched before a restart and never
 * acknowledged), then new ones (`>`). Fetches are non-blocking XREADGROUPs on the main
 * connection, triggered by the events dispatcher (any event of a shard pokes its lanes)
 * and by a one-second tick. A 2xx answer is acknowledged with XACK; any other answer, a
 * refused connection or webhook_timeout schedules a retry after webhook_retry_base,
 * doubling up to webhook_retry_max; after webhook_attempts attempts the event is
 * acknowledged, logged and counted as dead. Events trimmed from the stream
 * (events_maxlen) while pending are acknowledged and counted as lost (those trimmed
 * before the group read them are skipped by Redis unseen). At most MAX_INFLIGHT
 * requests run at once; memory is bounded by endpoints × shards × LANE_BATCH.
 *
 * Several nodes: each reads as its own consumer, so an event goes to one node. A node
 * resets the idle time of the entries it holds every webhook_claim_idle/4 (XCLAIM …
 * JUSTID to itself); every webhook_claim_idle/2 its empty lanes take over entries idle
 * for webhook_claim_idle (XAUTOCLAIM): those of a node that stopped for good or came
 * back under another name (hostname, listen).
 */
#include "gateway/webhooks.h"

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"
#include "gateway/internal.h"
#include "gateway/version.h"

#define LANE_BATCH   8    /* events fetched per lane at once */
#define MAX_INFLIGHT 64   /* HTTP requests at once, all endpoints together */
#define TICK_MS      1000 /* bot reload, fetch safety net, group creation retries */
#define MAX_BOTS     10000
#define SID_MAX      48

enum { RES_OK, RES_RETRY, RES_DEAD, RES_LOST, RES_COUNT };

typedef struct sock sock_t;
typedef struct endpoint endpoint_t;

typedef struct entry {
    char id[SID_MAX]; /* stream id */
    char *body;       /* the event JSON (owned) */
    size_t len;
} entry_t;

typedef struct lane {
    endpoint_t *ep;
    unsigned shard;
    entry_t ent[LANE_BATCH];
    unsigned head, n;
    bool history;        /* re-reading our pending entries (XREADGROUP from `after`) */
    char after[SID_MAX]; /* history cursor */
    bool dirty;          /* a fetch may find entries */
    bool fetching;       /* part of the endpoint's XREADGROUP in flight */
    bool claiming;       /* an XAUTOCLAIM of it is in flight */
    bool claim_again;    /* look for other consumers' idle entries */
    char claim_from[SID_MAX];
    unsigned attempts; /* failed attempts of the head entry */
    int64_t next_at;   /* no attempt before (ms) */
    CURL *easy;        /* the attempt in flight */
    struct curl_slist *headers;
} lane_t;

struct endpoint {
    sb_webhooks_t *w;
    endpoint_t *next;
    char *id, *group, *url, *secret, *events; /* events: filter words joined by ' ' */
    unsigned char *key;                       /* HMAC key */
    size_t keylen;
    char **words;
    int nwords;
    char *channels; /* a bot's channel scope as stored ("webchat,email"; "" = all) */
    unsigned scope; /* sb__api_scope of it */
    bool bot, seen, removed;
    bool groups_ready, creating, create_failed, fetching;
    unsigned create_pending;
    int64_t create_at; /* next group creation attempt (ms) */
    unsigned refs;     /* Redis replies still to come for this endpoint */
    lane_t *lanes;
};

struct sock {
    uv_poll_t poll;
    curl_socket_t fd;
    sb_webhooks_t *w;
    sock_t *prev, *next;
};

struct sb_webhooks {
    uv_loop_t *loop;
    const sb_config_t *cfg;
    sb_redis_t *redis;
    sb_events_sub_t *sub;
    CURLM *multi; /* NULL until the first delivery (curl_ready) */
    bool curl_inited;
    uv_timer_t curl_timer, retry_timer, tick;
    unsigned handles_open; /* timers and polls not yet closed */
    unsigned shards;
    char **keys; /* the shards' events streams */
    char *prefix, *bots_key;
    char consumer[320];
    char user_agent[64];
    endpoint_t *eps;
    sock_t *socks;
    unsigned inflight, nendpoints;
    unsigned redis_refs; /* Redis replies still to come, all kinds */
    int64_t next_refresh_at, next_claim_at;
    bool stopping, multi_closing, reloading, pumping, pump_again;
    uint64_t count[RES_COUNT];
};

static void pump(sb_webhooks_t *w);
static void on_retry_timer(uv_timer_t *t);
static void maybe_free(sb_webhooks_t *w);

/* ---- Secrets and signatures ---- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 (padding optional) into a new buffer. 0 or SB_EINVAL. */
static int base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(s);
    unsigned char *o = sb_malloc(n + 1);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val((unsigned char)*s);
        if (v < 0) {
            sb_free(o);
            return SB_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
        }
    }
    if (k == 0) {
        sb_free(o);
        return SB_EINVAL;
    }
    *out = o;
    *outlen = k;
    return 0;
}

/* Standard Webhooks: `whsec_<base64>` signs with the decoded bytes, anything else raw. */
static int secret_key(const char *secret, unsigned char **key, size_t *keylen)
{
    if (!*secret)
        return SB_EINVAL;
    if (strncmp(secret, "whsec_", 6) == 0)
        return base64_decode(secret + 6, key, keylen);
    *keylen = strlen(secret);
    *key = (unsigned char *)sb_strndup(secret, *keylen);
    return 0;
}

/* Writes "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" into out (64 bytes). */
static void sign(const endpoint_t *ep, const char *wid, const char *ts, const entry_t *e,
                 char out[64])
{
    size_t hl = strlen(wid) + strlen(ts) + 2;
    char *msg = sb_malloc(hl + e->len + 1);
    snprintf(msg, hl + 1, "%s.%s.", wid, ts);
    memcpy(msg + hl, e->body, e->len);
    unsigned char mac[32];
    sb_hmac_sha256(ep->key, ep->keylen, msg, hl + e->len, mac);
    sb_free(msg);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof(mac)); /* 44 chars + NUL */
}

/* ---- Endpoints ---- */

static bool url_ok(const char *url)
{
    const char *host = !strncmp(url, "http://", 7)    ? url + 7
                       : !strncmp(url, "https://", 8) ? url + 8
                                                      : NULL;
    return host && *host && *host != '/' && !strpbrk(url, " \t\r\n");
}

static void free_words(endpoint_t *ep)
{
    for (int i = 0; i < ep->nwords; i++)
        sb_free(ep->words[i]);
    sb_free(ep->words);
    ep->words = NULL;
    ep->nwords = 0;
}

/*
 * Sets url, secret, filter (events: words separated by spaces) and, for a bot, its
 * channel scope (channels: as on its token, "" for all). 0 or SB_EINVAL.
 */
static int endpoint_set(endpoint_t *ep, const char *url, const char *secret, const char *events,
                        const char *channels)
{
    unsigned char *key;
    size_t keylen;
    if (!url_ok(url) || secret_key(secret, &key, &keylen) != 0)
        return SB_EINVAL;
    sb_free(ep->url);
    sb_free(ep->secret);
    sb_free(ep->events);
    sb_free(ep->channels);
    sb_free(ep->key);
    free_words(ep);
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

static endpoint_t *endpoint_new(sb_webhooks_t *w, const char *id, bool bot)
{
    endpoint_t *ep = SB_NEW(endpoint_t);
    ep->w = w;
    ep->id = sb_strdup(id);
    ep->group = sb_asprintf("wh:%s", id);
    ep->bot = bot;
    ep->lanes = sb_calloc(w->shards, sizeof(lane_t));
    for (unsigned i = 0; i < w->shards; i++) {
        lane_t *l = &ep->lanes[i];
        l->ep = ep;
        l->shard = i;
        l->history = true;
        snprintf(l->after, sizeof(l->after), "0");
        l->dirty = true;
    }
    ep->next = w->eps;
    w->eps = ep;
    w->nendpoints++;
    return ep;
}

static endpoint_t *endpoint_find(sb_webhooks_t *w, const char *id)
{
    for (endpoint_t *ep = w->eps; ep; ep = ep->next)
        if (!ep->removed && strcmp(ep->id, id) == 0)
            return ep;
    return NULL;
}

static void endpoint_free(endpoint_t *ep)
{
    sb_free(ep->id);
    sb_free(ep->group);
    sb_free(ep->url);
    sb_free(ep->secret);
    sb_free(ep->events);
    sb_free(ep->channels);
    sb_free(ep->key);
    free_words(ep);
    sb_free(ep->lanes);
    sb_free(ep);
}

static void endpoint_unlink_free(endpoint_t *ep)
{
    endpoint_t **pp = &ep->w->eps;
    while (*pp != ep)
        pp = &(*pp)->next;
    *pp = ep->next;
    endpoint_free(ep);
}

/* Does the endpoint's filter take this event? No filter: all but typing and presence. */
static bool wanted(const endpoint_t *ep, const char *json, size_t len)
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

/* May this endpoint see the event? A bot: what its token sees on the feeds. */
static bool visible(const endpoint_t *ep, unsigned shard, const char *id, const char *json,
                    size_t len)
{
    if (!ep->bot)
        return true;
    api_feed_client_t fc = {.bot = true, .scope = ep->scope};
    sb_event_t ev = {.shard = shard, .id = id, .json = json, .json_len = len};
    return sb__feed_visible(NULL, &fc, &ev);
}

/* ---- Redis ---- */

/*
 * Sends a command for ep (data: ep or one of its lanes); its callback must start with
 * reply_done(ep). 0 or an SB_E* code.
 */
static int command(endpoint_t *ep, sb_redis_reply_cb cb, void *data, int argc, const char **argv)
{
    int rc = sb_redis_command_argv(ep->w->redis, cb, data, 0, argc, argv, NULL);
    if (rc == 0) {
        ep->refs++;
        ep->w->redis_refs++;
    }
    return rc;
}

/* Accounts for one reply of ep; true when the reply must be ignored (stopping, removed). */
static bool reply_done(endpoint_t *ep)
{
    sb_webhooks_t *w = ep->w;
    ep->refs--;
    w->redis_refs--;
    if (w->stopping) {
        maybe_free(w);
        return true;
    }
    if (ep->removed) {
        if (ep->refs == 0)
            endpoint_unlink_free(ep);
        return true;
    }
    return false;
}

static void on_acked(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    endpoint_t *ep = data;
    if (!reply_done(ep) && status != 0)
        SB_LOG_WARN("webhook.redis", "endpoint=%s err=%s", ep->id, sb_err_name(status));
}

static void xack(endpoint_t *ep, unsigned shard, const char **ids, unsigned n)
{
    if (n == 0)
        return;
    const char *argv[3 + LANE_BATCH] = {"XACK", ep->w->keys[shard], ep->group};
    for (unsigned i = 0; i < n; i++)
        argv[3 + i] = ids[i];
    if (command(ep, on_acked, ep, 3 + (int)n, argv) != 0)
        SB_LOG_WARN("webhook.ack", "endpoint=%s err=queue_full", ep->id);
}

static void on_group_created(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    endpoint_t *ep = data;
    if (reply_done(ep))
        return;
    bool exists = status == SB_EREDIS && reply->type == REDIS_REPLY_ERROR &&
                  strncmp(reply->str, "BUSYGROUP", 9) == 0;
    if (status != 0 && !exists) {
        if (!ep->create_failed)
            SB_LOG_WARN("webhook.group", "endpoint=%s err=%s what=\"%s\"", ep->id,
                        sb_err_name(status), status == SB_EREDIS ? reply->str : "");
        ep->create_failed = true;
    }
    if (--ep->create_pending > 0)
        return;
    ep->creating = false;
    if (ep->create_failed) {
        ep->create_at = sb_now_ms() + TICK_MS;
        return;
    }
    ep->groups_ready = true;
    for (unsigned i = 0; i < ep->w->shards; i++)
        ep->lanes[i].dirty = true;
    pump(ep->w);
}

static void create_groups(endpoint_t *ep)
{
    sb_webhooks_t *w = ep->w;
    ep->creating = true;
    ep->create_failed = false;
    ep->create_pending = 0;
    for (unsigned i = 0; i < w->shards; i++) {
        const char *argv[] = {"XGROUP", "CREATE", w->keys[i], ep->group, "$", "MKSTREAM"};
        if (command(ep, on_group_created, ep, 6, argv) == 0)
            ep->create_pending++;
        else
            ep->create_failed = true;
    }
    if (ep->create_pending == 0) {
        ep->creating = false;
        ep->create_at = sb_now_ms() + TICK_MS;
    }
}

/* ---- Fetching: XREADGROUP over the endpoint's empty lanes ---- */

static const redisReply *field(const redisReply *fields, const char *name)
{
    if (fields->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2)
        if (fields->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[i]->str, name) == 0 &&
            fields->element[i + 1]->type == REDIS_REPLY_STRING)
            return fields->element[i + 1];
    return NULL;
}

/* Takes one stream's entries into its lane; acks those filtered out or trimmed. */
static void take_entries(lane_t *l, const redisReply *entries)
{
    endpoint_t *ep = l->ep;
    const char *acks[LANE_BATCH];
    unsigned nacks = 0;
    if (l->history && entries->elements > 0)
        SB_LOG_INFO("webhook.resume", "endpoint=%s shard=%u pending=%zu", ep->id, l->shard,
                    entries->elements);
    for (size_t i = 0; i < entries->elements && i < LANE_BATCH; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= SID_MAX)
            continue;
        const char *id = e->element[0]->str;
        if (l->history)
            snprintf(l->after, sizeof(l->after), "%s", id);
        const redisReply *body = field(e->element[1], "e");
        if (!body) { /* trimmed (events_maxlen) before it was delivered */
            SB_LOG_WARN("webhook.lost", "endpoint=%s shard=%u event=%s", ep->id, l->shard, id);
            ep->w->count[RES_LOST]++;
            acks[nacks++] = id;
        } else if (!visible(ep, l->shard, id, body->str, body->len) ||
                   !wanted(ep, body->str, body->len)) {
            acks[nacks++] = id;
        } else {
            entry_t *en = &l->ent[l->n++];
            snprintf(en->id, sizeof(en->id), "%s", id);
            en->body = sb_strndup(body->str, body->len);
            en->len = body->len;
        }
    }
    if (l->history && entries->elements == 0) {
        l->history = false; /* our pending entries are all read: new ones from now on */
        l->dirty = true;
    } else if (l->history || entries->elements >= LANE_BATCH) {
        l->dirty = l->n == 0; /* more may follow: fetch again once drained */
    }
    xack(ep, l->shard, acks, nacks);
}

static lane_t *lane_of_key(endpoint_t *ep, const redisReply *key)
{
    for (unsigned i = 0; key->type == REDIS_REPLY_STRING && i < ep->w->shards; i++)
        if (strcmp(key->str, ep->w->keys[i]) == 0)
            return &ep->lanes[i];
    return NULL;
}

static void on_fetched(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    endpoint_t *ep = data;
    if (reply_done(ep))
        return;
    ep->fetching = false;
    sb_webhooks_t *w = ep->w;
    if (status != 0) { /* Redis down (logged by the client) or an error reply */
        SB_LOG_AT(status == SB_EREDIS ? SB_LOG_WARN : SB_LOG_DEBUG, "webhook.fetch",
                  "endpoint=%s err=%s what=\"%s\"", ep->id, sb_err_name(status),
                  status == SB_EREDIS ? reply->str : "");
        if (status == SB_EREDIS && strncmp(reply->str, "NOGROUP", 7) == 0)
            ep->groups_ready = false; /* stream deleted: recreate (retried by the tick) */
        for (unsigned i = 0; i < w->shards; i++)
            ep->lanes[i].fetching = false; /* the tick marks them dirty again */
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *st = reply->element[i];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            lane_t *l = lane_of_key(ep, st->element[0]);
            if (l && l->fetching && l->n == 0)
                take_entries(l, st->element[1]);
        }
    }
    for (unsigned i = 0; i < w->shards; i++)
        ep->lanes[i].fetching = false;
    pump(w);
}

static void fetch(endpoint_t *ep)
{
    sb_webhooks_t *w = ep->w;
    unsigned n = 0;
    lane_t **in = sb_calloc(w->shards, sizeof(lane_t *));
    for (unsigned i = 0; i < w->shards; i++) {
        lane_t *l = &ep->lanes[i];
        if (l->n == 0 && l->dirty && !l->easy && !l->claiming)
            in[n++] = l;
    }
    const char **argv = sb_calloc(7 + 2 * (size_t)n, sizeof(char *));
    char count[16];
    snprintf(count, sizeof(count), "%d", LANE_BATCH);
    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = ep->group;
    argv[3] = w->consumer;
    argv[4] = "COUNT";
    argv[5] = count;
    argv[6] = "STREAMS";
    for (unsigned k = 0; k < n; k++) {
        argv[7 + k] = w->keys[in[k]->shard];
        argv[7 + n + k] = in[k]->history ? in[k]->after : ">";
    }
    if (n > 0 && command(ep, on_fetched, ep, 7 + 2 * (int)n, argv) == 0) {
        ep->fetching = true;
        for (unsigned k = 0; k < n; k++) {
            in[k]->dirty = false;
            in[k]->fetching = true;
        }
    }
    sb_free(argv);
    sb_free(in);
}

/* ---- Other consumers' idle entries (XAUTOCLAIM) and keeping ours fresh (XCLAIM) ---- */

static void on_claimed(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    lane_t *l = data;
    endpoint_t *ep = l->ep;
    if (reply_done(ep))
        return;
    l->claiming = false;
    l->claim_again = false;
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        SB_LOG_DEBUG("webhook.claim", "endpoint=%s shard=%u err=%s", ep->id, l->shard,
                     sb_err_name(status ? status : SB_EREDIS));
        return;
    }
    const redisReply *next = reply->element[0], *entries = reply->element[1];
    if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY &&
        reply->element[2]->elements > 0) { /* trimmed before delivery (Redis 7) */
        SB_LOG_WARN("webhook.lost", "endpoint=%s shard=%u events=%zu", ep->id, l->shard,
                    reply->element[2]->elements);
        ep->w->count[RES_LOST] += reply->element[2]->elements;
    }
    if (entries->elements > 0) {
        SB_LOG_INFO("webhook.claimed", "endpoint=%s shard=%u events=%zu", ep->id, l->shard,
                    entries->elements);
        if (l->n == 0)
            take_entries(l, entries);
    }
    /* More to scan (the cursor moved on) or a full batch: look again once drained. */
    bool more = strcmp(next->str, "0-0") != 0;
    snprintf(l->claim_from, sizeof(l->claim_from), "%s", more ? next->str : "0-0");
    l->claim_again = more || entries->elements >= LANE_BATCH;
    pump(ep->w);
}

static void autoclaim(lane_t *l)
{
    endpoint_t *ep = l->ep;
    sb_webhooks_t *w = ep->w;
    char idle[24], count[16];
    snprintf(idle, sizeof(idle), "%u", w->cfg->webhook_claim_idle_ms);
    snprintf(count, sizeof(count), "%d", LANE_BATCH);
    const char *argv[] = {"XAUTOCLAIM", w->keys[l->shard],
                          ep->group,    w->consumer,
                          idle,         l->claim_from[0] ? l->claim_from : "0-0",
                          "COUNT",      count};
    if (command(ep, on_claimed, l, 8, argv) == 0)
        l->claiming = true;
    l->claim_again = false;
}

/* Resets the idle time of the entries a lane holds, so no other node takes them over. */
static void refresh(lane_t *l)
{
    endpoint_t *ep = l->ep;
    const char *argv[6 + LANE_BATCH] = {"XCLAIM", ep->w->keys[l->shard], ep->group, ep->w->consumer,
                                        "0"};
    int argc = 5;
    for (unsigned i = 0; i < l->n; i++)
        argv[argc++] = l->ent[(l->head + i) % LANE_BATCH].id;
    argv[argc++] = "JUSTID";
    command(ep, on_acked, ep, argc, argv);
}

/* Every tick: refresh held entries (each claim_idle/4), look for idle ones (claim_idle/2). */
static void claim_tick(sb_webhooks_t *w)
{
    int64_t now = sb_now_ms();
    bool do_refresh = now >= w->next_refresh_at, do_claim = now >= w->next_claim_at;
    if (do_refresh)
        w->next_refresh_at = now + w->cfg->webhook_claim_idle_ms / 4;
    if (do_claim)
        w->next_claim_at = now + w->cfg->webhook_claim_idle_ms / 2;
    for (endpoint_t *ep = w->eps; ep; ep = ep->next) {
        if (ep->removed || !ep->groups_ready)
            continue;
        for (unsigned i = 0; i < w->shards; i++) {
            lane_t *l = &ep->lanes[i];
            if (do_refresh && l->n > 0)
                refresh(l);
            if (do_claim && !l->history)
                l->claim_again = true;
        }
    }
}

/* ---- Delivery ---- */

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    return size * n; /* the answer's body is not used */
}

static void lane_cancel(lane_t *l)
{
    if (l->easy) {
        if (!l->ep->w->multi_closing)
            curl_multi_remove_handle(l->ep->w->multi, l->easy);
        curl_easy_cleanup(l->easy);
        curl_slist_free_all(l->headers);
        l->easy = NULL;
        l->headers = NULL;
        l->ep->w->inflight--;
    }
}

static void lane_clear(lane_t *l)
{
    lane_cancel(l);
    for (unsigned i = 0; i < l->n; i++)
        sb_free(l->ent[(l->head + i) % LANE_BATCH].body);
    l->head = l->n = 0;
}

/* Acknowledges the head entry and drops it. */
static void ack_pop(lane_t *l)
{
    entry_t *e = &l->ent[l->head];
    const char *id = e->id;
    xack(l->ep, l->shard, &id, 1);
    sb_free(e->body);
    e->body = NULL;
    l->head = (l->head + 1) % LANE_BATCH;
    l->attempts = 0;
    l->next_at = 0;
    if (--l->n == 0) {
        l->head = 0;
        l->dirty = true;
    }
}

static void finish_attempt(lane_t *l, CURLcode res, long code)
{
    endpoint_t *ep = l->ep;
    sb_webhooks_t *w = ep->w;
    lane_cancel(l);
    const entry_t *e = &l->ent[l->head];
    if (res == CURLE_OK && code >= 200 && code < 300) {
        w->count[RES_OK]++;
        SB_LOG_DEBUG("webhook.delivered", "endpoint=%s shard=%u event=%s status=%ld", ep->id,
                     l->shard, e->id, code);
        ack_pop(l);
        return;
    }
    char why[96];
    if (res != CURLE_OK)
        snprintf(why, sizeof(why), "\"%s\"", curl_easy_strerror(res));
    else
        snprintf(why, sizeof(why), "status_%ld", code);
    if (++l->attempts >= w->cfg->webhook_attempts) {
        w->count[RES_DEAD]++;
        SB_LOG_WARN("webhook.dead", "endpoint=%s shard=%u event=%s attempts=%u err=%s", ep->id,
                    l->shard, e->id, l->attempts, why);
        ack_pop(l);
        return;
    }
    uint64_t delay = w->cfg->webhook_retry_base_ms;
    for (unsigned i = 1; i < l->attempts && delay < w->cfg->webhook_retry_max_ms; i++)
        delay *= 2;
    if (delay > w->cfg->webhook_retry_max_ms)
        delay = w->cfg->webhook_retry_max_ms;
    l->next_at = sb_now_ms() + (int64_t)delay;
    w->count[RES_RETRY]++;
    SB_LOG_INFO("webhook.retry", "endpoint=%s shard=%u event=%s attempt=%u err=%s retry_ms=%llu",
                ep->id, l->shard, e->id, l->attempts, why, (unsigned long long)delay);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp);
static int on_curl_timer(CURLM *multi, long ms, void *userp);

/*
 * libcurl (and GnuTLS under it) is set up at the first delivery, not at start: a daemon
 * without webhook endpoints doesn't carry their pages (about 4 MB of its idle RSS).
 */
static bool curl_ready(sb_webhooks_t *w)
{
    if (w->multi)
        return true;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return false;
    w->curl_inited = true;
    w->multi = curl_multi_init();
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    return w->multi != NULL;
}

static void send_head(lane_t *l)
{
    endpoint_t *ep = l->ep;
    sb_webhooks_t *w = ep->w;
    const entry_t *e = &l->ent[l->head];
    if (!curl_ready(w)) {
        SB_LOG_ERROR("webhook.send", "endpoint=%s err=\"libcurl init failed\"", ep->id);
        finish_attempt(l, CURLE_FAILED_INIT, 0);
        return;
    }
    char wid[SID_MAX + 16], ts[24], sig[64], h[160];
    snprintf(wid, sizeof(wid), "evt_%u_%s", l->shard, e->id);
    snprintf(ts, sizeof(ts), "%lld", (long long)(sb_now_ms() / 1000));
    sign(ep, wid, ts, e, sig);
    struct curl_slist *hs = NULL;
    snprintf(h, sizeof(h), "webhook-id: %s", wid);
    hs = curl_slist_append(hs, h);
    snprintf(h, sizeof(h), "webhook-timestamp: %s", ts);
    hs = curl_slist_append(hs, h);
    snprintf(h, sizeof(h), "webhook-signature: %s", sig);
    hs = curl_slist_append(hs, h);
    hs = curl_slist_append(hs, "Content-Type: application/json");
    hs = curl_slist_append(hs, "Expect:");
    CURL *c = curl_easy_init();
    if (!c)
        abort(); /* out of memory */
    curl_easy_setopt(c, CURLOPT_URL, ep->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_USERAGENT, w->user_agent);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->cfg->webhook_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_PRIVATE, l);
    l->easy = c;
    l->headers = hs;
    w->inflight++;
    CURLMcode mc = curl_multi_add_handle(w->multi, c);
    if (mc != CURLM_OK) {
        SB_LOG_ERROR("webhook.send", "endpoint=%s err=\"%s\"", ep->id, curl_multi_strerror(mc));
        finish_attempt(l, CURLE_FAILED_INIT, 0);
    }
}

/*
 * Moves everything forward: creates missing groups, starts due attempts while under
 * MAX_INFLIGHT, fetches for lanes that want entries, arms the retry timer. Re-entrant
 * calls are folded into the running one.
 */
static void pump(sb_webhooks_t *w)
{
    if (w->stopping)
        return;
    if (w->pumping) {
        w->pump_again = true;
        return;
    }
    w->pumping = true;
    int64_t earliest;
    do {
        w->pump_again = false;
        int64_t now = sb_now_ms();
        earliest = INT64_MAX;
        for (endpoint_t *ep = w->eps; ep; ep = ep->next) {
            if (ep->removed)
                continue;
            if (!ep->groups_ready) {
                if (!ep->creating && now >= ep->create_at)
                    create_groups(ep);
                continue;
            }
            bool want = false;
            for (unsigned i = 0; i < w->shards; i++) {
                lane_t *l = &ep->lanes[i];
                if (l->n == 0 && l->claim_again && !l->fetching && !l->claiming) {
                    autoclaim(l);
                } else if (l->n == 0) {
                    want |= l->dirty && !l->fetching && !l->claiming;
                } else if (!l->easy && l->next_at > now) {
                    earliest = l->next_at < earliest ? l->next_at : earliest;
                } else if (!l->easy && w->inflight < MAX_INFLIGHT) {
                    send_head(l);
                }
            }
            if (want && !ep->fetching)
                fetch(ep);
        }
    } while (w->pump_again);
    w->pumping = false;
    if (earliest != INT64_MAX) {
        int64_t d = earliest - sb_now_ms();
        uv_timer_start(&w->retry_timer, on_retry_timer, d > 0 ? (uint64_t)d : 0, 0);
    }
}

static void on_retry_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* ---- libcurl multi on the loop (LIBRARIES.md) ---- */

static void check_done(sb_webhooks_t *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *c = m->easy_handle;
        CURLcode res = m->data.result;
        lane_t *l = NULL;
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_PRIVATE, (char **)&l);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        finish_attempt(l, res, code);
    }
    pump(w);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    sock_t *k = p->data;
    sb_webhooks_t *w = k->w;
    int flags = status < 0 ? CURL_CSELECT_ERR
                           : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
                                 ((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(w->multi, k->fd, flags, &running);
    check_done(w);
}

static void on_handle_closed(uv_handle_t *h)
{
    sb_webhooks_t *w = h->data;
    w->handles_open--;
    maybe_free(w);
}

static void on_sock_closed(uv_handle_t *h)
{
    sock_t *k = h->data;
    sb_webhooks_t *w = k->w;
    sb_free(k);
    w->handles_open--;
    maybe_free(w);
}

static void sock_close(sock_t *k)
{
    sb_webhooks_t *w = k->w;
    if (k->prev)
        k->prev->next = k->next;
    else
        w->socks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, on_sock_closed);
}

static int on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    sb_webhooks_t *w = userp;
    sock_t *k = socketp;
    if (w->multi_closing)
        return 0; /* sb_webhooks_stop closed every poll already */
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            curl_multi_assign(w->multi, s, NULL);
            sock_close(k);
        }
        return 0;
    }
    if (!k) {
        k = SB_NEW(sock_t);
        k->fd = s;
        k->w = w;
        if (uv_poll_init_socket(w->loop, &k->poll, s) != 0) {
            sb_free(k);
            return -1;
        }
        k->poll.data = k;
        w->handles_open++;
        k->next = w->socks;
        if (w->socks)
            w->socks->prev = k;
        w->socks = k;
        curl_multi_assign(w->multi, s, k);
    }
    int ev = ((what & CURL_POLL_IN) ? UV_READABLE : 0) | ((what & CURL_POLL_OUT) ? UV_WRITABLE : 0);
    uv_poll_start(&k->poll, ev, on_poll);
    return 0;
}

static void on_curl_timeout(uv_timer_t *t)
{
    sb_webhooks_t *w = t->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(w);
}

static int on_curl_timer(CURLM *multi, long ms, void *userp)
{
    sb_webhooks_t *w = userp;
    if (w->stopping)
        return 0;
    if (ms < 0)
        uv_timer_stop(&w->curl_timer);
    else
        uv_timer_start(&w->curl_timer, on_curl_timeout, (uint64_t)ms, 0);
    return 0;
}

/* ---- Bots: the set <prefix>webhooks, re-read every tick ---- */

typedef struct reload {
    sb_webhooks_t *w;
    size_t n, pending;
    bool failed; /* a read failed: keep the endpoints as they are */
    char **ids;
    char *(*fields)[4]; /* webhook, secret, events, channels */
} reload_t;

static void endpoint_remove(endpoint_t *ep)
{
    ep->removed = true;
    ep->w->nendpoints--;
    for (unsigned i = 0; i < ep->w->shards; i++)
        lane_clear(&ep->lanes[i]); /* still pending in the group */
    SB_LOG_INFO("webhook.endpoint", "id=%s action=removed", ep->id);
    if (ep->refs == 0)
        endpoint_unlink_free(ep);
}

static void reconcile(sb_webhooks_t *w, const reload_t *rl)
{
    for (endpoint_t *ep = w->eps; ep; ep = ep->next)
        ep->seen = !ep->bot;
    for (size_t i = 0; i < rl->n; i++) {
        const char *url = rl->fields[i][0], *secret = rl->fields[i][1];
        const char *events = rl->fields[i][2] ? rl->fields[i][2] : "";
        const char *channels = rl->fields[i][3] ? rl->fields[i][3] : "";
        if (!url || !secret)
            continue;
        endpoint_t *ep = endpoint_find(w, rl->ids[i]);
        if (ep && ep->bot &&
            (strcmp(ep->url, url) || strcmp(ep->secret, secret) || strcmp(ep->events, events) ||
             strcmp(ep->channels, channels))) {
            if (endpoint_set(ep, url, secret, events, channels) == 0)
                SB_LOG_INFO("webhook.endpoint", "id=%s url=%s action=updated", ep->id, url);
        } else if (!ep) {
            ep = endpoint_new(w, rl->ids[i], true);
            if (endpoint_set(ep, url, secret, events, channels) != 0) {
                SB_LOG_DEBUG("webhook.endpoint", "id=%s action=invalid", rl->ids[i]);
                w->nendpoints--;
                endpoint_unlink_free(ep);
                continue;
            }
            SB_LOG_INFO("webhook.endpoint", "id=%s url=%s action=added", ep->id, url);
        }
        ep->seen = true;
    }
    for (endpoint_t *ep = w->eps, *next; ep; ep = next) {
        next = ep->next;
        if (!ep->seen && !ep->removed)
            endpoint_remove(ep);
    }
    pump(w);
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

static void on_bot(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    void **slot = data; /* {reload, index} */
    reload_t *rl = slot[0];
    size_t i = (size_t)(uintptr_t)slot[1];
    sb_free(slot);
    sb_webhooks_t *w = rl->w;
    w->redis_refs--;
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY && reply->elements == 4)
        for (int k = 0; k < 4; k++)
            if (reply->element[k]->type == REDIS_REPLY_STRING)
                rl->fields[i][k] = sb_strndup(reply->element[k]->str, reply->element[k]->len);
    if (status != 0)
        rl->failed = true;
    if (--rl->pending > 0)
        return;
    if (!w->stopping && !rl->failed)
        reconcile(w, rl);
    reload_free(rl);
    w->reloading = false;
    maybe_free(w);
}

static void on_members(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_webhooks_t *w = data;
    w->redis_refs--;
    if (w->stopping || status != 0 || reply->type != REDIS_REPLY_ARRAY) {
        w->reloading = false;
        maybe_free(w);
        return;
    }
    reload_t *rl = SB_NEW(reload_t);
    rl->w = w;
    size_t n = reply->elements < MAX_BOTS ? reply->elements : MAX_BOTS;
    rl->ids = sb_calloc(n + 1, sizeof(char *));
    rl->fields = sb_calloc(n + 1, sizeof(*rl->fields));
    for (size_t i = 0; i < n; i++) {
        const redisReply *m = reply->element[i];
        if (m->type != REDIS_REPLY_STRING || m->len > 64)
            continue;
        char *key = sb_asprintf("%sbot:%s", w->prefix, m->str);
        const char *argv[] = {"HMGET", key, "webhook", "secret", "events", "channels"};
        void **slot = sb_calloc(2, sizeof(void *));
        slot[0] = rl;
        slot[1] = (void *)(uintptr_t)rl->n;
        rl->ids[rl->n] = sb_strdup(m->str);
        rl->n++;
        rl->pending++;
        if (sb_redis_command_argv(w->redis, on_bot, slot, 0, 6, argv, NULL) == 0) {
            w->redis_refs++;
        } else {
            sb_free(slot);
            rl->pending--;
            rl->failed = true;
        }
        sb_free(key);
    }
    if (rl->pending == 0) {
        if (!rl->failed)
            reconcile(w, rl);
        reload_free(rl);
        w->reloading = false;
    }
}

static void on_tick(uv_timer_t *t)
{
    sb_webhooks_t *w = t->data;
    for (endpoint_t *ep = w->eps; ep; ep = ep->next)
        for (unsigned i = 0; i < w->shards; i++)
            if (ep->lanes[i].n == 0)
                ep->lanes[i].dirty = true; /* safety net: events the dispatcher missed */
    claim_tick(w);
    if (!w->reloading) {
        const char *argv[] = {"SMEMBERS", w->bots_key};
        if (sb_redis_command_argv(w->redis, on_members, w, 0, 2, argv, NULL) == 0) {
            w->reloading = true;
            w->redis_refs++;
        }
    }
    pump(w);
}

static void on_event(sb_events_sub_t *sub, const sb_event_t *ev, void *data)
{
    sb_webhooks_t *w = data;
    for (endpoint_t *ep = w->eps; ep; ep = ep->next)
        if (ev->shard < w->shards)
            ep->lanes[ev->shard].dirty = true;
    pump(w);
}

/* ---- Start, stop, metrics ---- */

static void add_config_endpoints(sb_webhooks_t *w)
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
        endpoint_t *ep = endpoint_new(w, id, false);
        if (endpoint_set(ep, e->argv[0], e->argv[1], words.data ? words.data : "", "") != 0) {
            SB_LOG_ERROR("webhook.endpoint", "url=%s err=invalid", e->argv[0]);
            w->nendpoints--;
            endpoint_unlink_free(ep);
        } else {
            SB_LOG_INFO("webhook.endpoint", "id=%s url=%s action=added", id, e->argv[0]);
        }
        sb_buf_dispose(&words);
    }
}

static void timer_init(sb_webhooks_t *w, uv_timer_t *t)
{
    uv_timer_init(w->loop, t);
    t->data = w;
    w->handles_open++;
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
    w->bots_key = sb_asprintf("%swebhooks", cfg->prefix);
    w->keys = sb_calloc(w->shards, sizeof(char *));
    for (unsigned i = 0; i < w->shards; i++)
        w->keys[i] = sb_asprintf("%s{%u}:events", cfg->prefix, i);
    char host[256] = "localhost";
    if (gethostname(host, sizeof(host) - 1) != 0)
        snprintf(host, sizeof(host), "localhost");
    snprintf(w->consumer, sizeof(w->consumer), "%s/%s", host, cfg->listen);
    snprintf(w->user_agent, sizeof(w->user_agent), "Switchboard/%s (webhooks)", sb_version());
    timer_init(w, &w->curl_timer);
    timer_init(w, &w->retry_timer);
    timer_init(w, &w->tick);
    uv_unref((uv_handle_t *)&w->tick);
    add_config_endpoints(w);
    sb_events_subscribe(events, NULL, on_event, NULL, w, &w->sub);
    uv_timer_start(&w->tick, on_tick, 0, TICK_MS);
    SB_LOG_INFO("webhook.start", "endpoints=%u consumer=%s", w->nendpoints, w->consumer);
    *out = w;
    return 0;
}

static void maybe_free(sb_webhooks_t *w)
{
    if (!w->stopping || w->redis_refs || w->handles_open)
        return;
    while (w->eps) {
        endpoint_t *ep = w->eps;
        w->eps = ep->next;
        endpoint_free(ep);
    }
    for (unsigned i = 0; i < w->shards; i++)
        sb_free(w->keys[i]);
    sb_free(w->keys);
    sb_free(w->prefix);
    sb_free(w->bots_key);
    bool inited = w->curl_inited;
    sb_free(w);
    if (inited)
        curl_global_cleanup();
}

void sb_webhooks_stop(sb_webhooks_t *w)
{
    if (!w || w->stopping)
        return;
    w->stopping = true;
    sb_events_unsubscribe(w->sub);
    w->sub = NULL;
    for (endpoint_t *ep = w->eps; ep; ep = ep->next)
        for (unsigned i = 0; i < w->shards; i++)
            lane_clear(&ep->lanes[i]); /* in flight: cancelled, still pending in Redis */
    w->multi_closing = true;
    while (w->socks)
        sock_close(w->socks);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    w->multi = NULL;
    uv_close((uv_handle_t *)&w->curl_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->retry_timer, on_handle_closed);
    uv_close((uv_handle_t *)&w->tick, on_handle_closed);
    SB_LOG_INFO("webhook.stop", "pending_replies=%u", w->redis_refs);
}

void sb_webhooks_metrics(const sb_webhooks_t *w, sb_buf_t *out)
{
    if (!w)
        return;
    static const char *const results[RES_COUNT] = {"ok", "retry", "dead", "lost"};
    sb_buf_puts(out, "# HELP switchboard_webhook_deliveries_total Webhook delivery attempts: ok "
                     "(2xx), retry (failed, retried later), dead (given up), lost (trimmed "
                     "before delivery).\n# TYPE switchboard_webhook_deliveries_total counter\n");
    for (int i = 0; i < RES_COUNT; i++)
        sb_buf_printf(out, "switchboard_webhook_deliveries_total{result=\"%s\"} %llu\n", results[i],
                      (unsigned long long)w->count[i]);
    sb_buf_printf(out,
                  "# TYPE switchboard_webhook_endpoints gauge\nswitchboard_webhook_endpoints %u\n"
                  "# TYPE switchboard_webhook_inflight gauge\nswitchboard_webhook_inflight %u\n",
                  w->nendpoints, w->inflight);
}

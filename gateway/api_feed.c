/* SPDX-License-Identifier: MIT */
/*
 * What the two live feeds (SSE GET /v1/events in api_sse.c, WebSocket GET /v1/events/ws
 * in api_events_ws.c) share: who may see which event, the end of a revoked token's
 * feeds, and staff presence (GET /v1/presence and the `presence` event).
 *
 * Visibility (docs/design-notes.md "Live events"): staff tokens see every event; bot
 * tokens see messages, conversation events and customers' typing, never internal notes,
 * staff or bot typing, or presence; a token with a `channels` scope (the token hash's
 * field, "webchat,email") sees only events of conversations on those channels (and
 * presence, which belongs to no conversation). An event is classified once per node (the
 * dispatcher hands the same event to every subscriber in a row; the last one is cached).
 *
 * Revocation: every REVOKE_CHECK_MS each joined client's token key is checked with
 * EXISTS; a missing key calls the client's on_revoked.
 *
 * Presence: each node counts its own staff feeds by staff id. The hash
 * `<prefix>presence` holds one field `<staff id>@<node id>` per staff member and node,
 * valued {"id","name","role","since","clients","exp"}; the node rewrites its fields
 * every PRESENCE_REFRESH_MS with exp = now + PRESENCE_TTL_MS (a node that dies takes its
 * fields with it once they expire; readers ignore and remove expired fields). A staff
 * member's first feed on a node adds the field and, when no other node has them,
 * publishes {"type":"presence","staff":{…},"online":true}; the last feed closing removes
 * it and publishes "online":false when no other node still has them. Both steps are one
 * atomic call (sb_presence in core/functions.lua), so two nodes racing decide once.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/util.h"
#include "gateway/internal.h"

#define REVOKE_CHECK_MS     2000
#define PRESENCE_REFRESH_MS 10000
#define PRESENCE_TTL_MS     30000

typedef struct presence {
    struct presence *next;
    char id[SB_ID_MAX];
    char *name, *role;
    int64_t since;
    unsigned clients;
} presence_t;

/* What visibility needs to know about one event. */
typedef struct ev_info {
    int channel; /* SB_CHANNELS index, or -1 when unknown */
    bool note, presence, typing, customer_typing;
} ev_info_t;

struct api_feed {
    sb_app_t *app;
    uv_timer_t *revocation;
    uv_timer_t *refresh;
    api_feed_client_t *clients;
    size_t count;
    uint64_t next_id;
    unsigned refs; /* Redis replies still to come: the struct outlives sb__feed_free */
    bool dead;
    presence_t *presence;
    char node[20];
    sb_key_t key; /* <prefix>presence */
    /* the last event classified */
    unsigned last_shard;
    char last_id[64];
    ev_info_t last;
};

static void feed_unref(api_feed_t *f)
{
    if (--f->refs == 0 && f->dead)
        sb_free(f);
}

/* ---- scopes ---- */

unsigned sb__api_scope(const json_t *who)
{
    const char *list = json_string_value(json_object_get(who, "channels"));
    if (!list || !*list)
        return SB_SCOPE_ALL;
    unsigned mask = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        int i = sb_channel_index(t);
        if (i >= 0)
            mask |= 1u << i;
    }
    return mask; /* only unknown names: sees no conversation at all */
}

bool sb__api_scope_allows(unsigned scope, const char *channel)
{
    if (scope == SB_SCOPE_ALL)
        return true;
    int i = sb_channel_index(channel);
    return i >= 0 && (scope & (1u << i));
}

/* ---- visibility ---- */

static const char *str_at(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void classify(const sb_event_t *ev, ev_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->channel = -1;
    json_t *j = json_loadb(ev->json, ev->json_len, 0, NULL);
    const char *type = str_at(j, "type");
    json_t *m = json_object_get(j, "message");
    const char *channel = str_at(j, "channel");
    if (!channel)
        channel = str_at(m, "channel");
    out->note = type && strcmp(type, "note") == 0;
    out->presence = type && strcmp(type, "presence") == 0;
    out->typing = type && strcmp(type, "typing") == 0;
    if (out->typing) {
        const char *by = str_at(json_object_get(j, "who"), "type");
        out->customer_typing = by && strcmp(by, "contact") == 0;
        /* A visitor's typing (connectors/webchat, the only connector publishing a
         * customer's typing) does not name its channel yet. */
        if (!channel && out->customer_typing)
            channel = "webchat";
    }
    out->channel = sb_channel_index(channel);
    json_decref(j);
}

bool sb__feed_visible(api_feed_t *f, const api_feed_client_t *fc, const sb_event_t *ev)
{
    if (!fc->bot && fc->scope == SB_SCOPE_ALL)
        return true; /* unscoped staff: everything, without parsing */
    ev_info_t once;
    if (!f) { /* no feed to cache it in (outbound webhooks) */
        classify(ev, &once);
    } else if (f->last_shard != ev->shard || strcmp(f->last_id, ev->id) != 0) {
        classify(ev, &f->last);
        f->last_shard = ev->shard;
        snprintf(f->last_id, sizeof(f->last_id), "%s", ev->id);
    }
    const ev_info_t *in = f ? &f->last : &once;
    if (in->presence)
        return !fc->bot;
    if (fc->bot && (in->note || (in->typing && !in->customer_typing)))
        return false;
    if (fc->scope != SB_SCOPE_ALL)
        return in->channel >= 0 && (fc->scope & (1u << in->channel));
    return true;
}

/* ---- presence ---- */

typedef struct presence_op {
    api_feed_t *f;
    bool online;
    char id[SB_ID_MAX];
    char *name, *role;
} presence_op_t;

static char *presence_value(const presence_t *p, int64_t now)
{
    json_t *v = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "id", p->id, "name", p->name, "role",
                          p->role, "since", (json_int_t)p->since, "clients", (json_int_t)p->clients,
                          "exp", (json_int_t)(now + PRESENCE_TTL_MS));
    char *s;
    if (sb_json_dumps(v, JSON_COMPACT, &s, NULL) != 0) /* a name that is not UTF-8 */
        s = sb_strdup("{}");
    json_decref(v);
    return s;
}

static void on_presence_done(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    presence_op_t *op = data;
    if (status != 0 || reply->type != REDIS_REPLY_INTEGER) {
        SB_LOG_WARN("presence.update", "staff=%s err=%s", op->id, sb_err_name(status));
    } else if (reply->integer == 0) { /* no other node has them: tell everyone */
        json_t *e = json_pack("{s:s, s:{s:s, s:s, s:s}, s:b, s:I}", "type", "presence", "staff",
                              "id", op->id, "name", op->name, "role", op->role, "online",
                              op->online, "ts", (json_int_t)sb_now_ms());
        char *s;
        if (sb_json_dumps(e, JSON_COMPACT, &s, NULL) == 0) /* Sharded by staff id: fanned */
            sb_store_publish(op->f->app->store, op->id, s, NULL, NULL); /* out like any event */
        else
            SB_LOG_WARN("presence.event", "staff=%s err=%s", op->id, sb_err_name(SB_EINVAL));
        json_decref(e);
        sb_free(s);
    }
    sb_free(op->name);
    sb_free(op->role);
    feed_unref(op->f);
    sb_free(op);
}

static void presence_change(api_feed_t *f, const presence_t *p, bool online)
{
    presence_op_t *op = SB_NEW(presence_op_t);
    op->f = f;
    op->online = online;
    snprintf(op->id, sizeof(op->id), "%s", p->id);
    op->name = sb_strdup(p->name);
    op->role = sb_strdup(p->role);
    char field[SB_ID_MAX + 24], now[24];
    int64_t t = sb_now_ms();
    snprintf(field, sizeof(field), "%s@%s", p->id, f->node);
    snprintf(now, sizeof(now), "%lld", (long long)t);
    char *value = presence_value(p, t);
    /* functions.lua: presence (1 when another node still has them online) */
    const char *argv[] = {"FCALL", "sb_presence", "1", f->key.str, online ? "join" : "leave",
                          field,   value,         now};
    if (sb_redis_command_argv(f->app->redis, on_presence_done, op, 0, 8, argv, NULL) == 0) {
        f->refs++;
    } else {
        sb_free(op->name);
        sb_free(op->role);
        sb_free(op);
    }
    sb_free(value);
}

/* Rewrites this node's fields (all, or only `only`) with a fresh expiry, 32 per HSET. */
static void presence_write(api_feed_t *f, const presence_t *only)
{
    enum { BATCH = 32 };
    const char *argv[2 + 2 * BATCH] = {"HSET", f->key.str};
    char *owned[2 * BATCH];
    int n = 0;
    int64_t t = sb_now_ms();
    for (const presence_t *p = f->presence; p; p = p->next) {
        if (only && p != only)
            continue;
        argv[2 + n] = owned[n] = sb_asprintf("%s@%s", p->id, f->node);
        n++;
        argv[2 + n] = owned[n] = presence_value(p, t);
        n++;
        if (n == 2 * BATCH || !p->next || only) {
            sb_redis_command_argv(f->app->redis, NULL, NULL, 0, 2 + n, argv, NULL);
            for (int i = 0; i < n; i += 2) {
                sb_free(owned[i]);
                sb_free(owned[i + 1]); /* presence_value */
            }
            n = 0;
        }
    }
}

static void on_refresh(uv_timer_t *t)
{
    presence_write(t->data, NULL);
}

static void presence_join(api_feed_t *f, const json_t *who)
{
    const char *id = str_at(who, "id");
    presence_t *p = f->presence;
    while (p && strcmp(p->id, id) != 0)
        p = p->next;
    if (p) {
        p->clients++;
        presence_write(f, p);
        return;
    }
    p = SB_NEW(presence_t);
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->name = sb_strdup(str_at(who, "name") ? str_at(who, "name") : "");
    p->role = sb_strdup(str_at(who, "role") ? str_at(who, "role") : "");
    p->since = sb_now_ms();
    p->clients = 1;
    p->next = f->presence;
    f->presence = p;
    presence_change(f, p, true);
}

static void presence_leave(api_feed_t *f, const char *id)
{
    presence_t **pp = &f->presence;
    while (*pp && strcmp((*pp)->id, id) != 0)
        pp = &(*pp)->next;
    presence_t *p = *pp;
    if (!p)
        return;
    if (--p->clients > 0) {
        presence_write(f, p);
        return;
    }
    *pp = p->next;
    presence_change(f, p, false);
    sb_free(p->name);
    sb_free(p->role);
    sb_free(p);
}

/* ---- GET /v1/presence ---- */

static int by_name(const void *a, const void *b)
{
    const char *x = str_at(*(json_t *const *)a, "name"), *y = str_at(*(json_t *const *)b, "name");
    return strcmp(x ? x : "", y ? y : "");
}

static void on_presence_read(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    api_call_t *c = data;
    if (sb__api_gone(c))
        return;
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY) {
        sb__api_fail_store(c, status ? status : SB_EREDIS, NULL);
        return;
    }
    int64_t now = sb_now_ms();
    json_t *by_id = json_object();
    const char *expired[64];
    size_t nexpired = 0;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        json_t *e = json_loadb(v->str, v->len, 0, NULL);
        const char *id = str_at(e, "id");
        json_int_t exp = json_integer_value(json_object_get(e, "exp"));
        if (!id || exp <= now) {
            if (nexpired < SB_ARRAY_LEN(expired))
                expired[nexpired++] = k->str;
            json_decref(e);
            continue;
        }
        json_t *have = json_object_get(by_id, id);
        if (!have) {
            json_object_del(e, "exp");
            json_object_set_new(by_id, id, e);
            continue;
        }
        json_int_t since = json_integer_value(json_object_get(e, "since"));
        if (since < json_integer_value(json_object_get(have, "since")))
            json_object_set_new(have, "since", json_integer(since));
        json_object_set_new(have, "clients",
                            json_integer(json_integer_value(json_object_get(have, "clients")) +
                                         json_integer_value(json_object_get(e, "clients"))));
        json_decref(e);
    }
    sb_key_t key;
    if (nexpired && sb_key_presence(&key, sb_store_opts(c->app->store)->prefix) == 0) {
        /* a node died without saying goodbye: tidy up */
        const char *argv[2 + SB_ARRAY_LEN(expired)];
        argv[0] = "HDEL";
        argv[1] = key.str;
        memcpy(argv + 2, expired, nexpired * sizeof(*expired));
        sb_redis_command_argv(c->app->redis, NULL, NULL, 0, (int)(2 + nexpired), argv, NULL);
    }
    size_t n = json_object_size(by_id), i = 0;
    json_t **items = sb_malloc((n ? n : 1) * sizeof(*items));
    const char *k;
    json_t *v;
    json_object_foreach(by_id, k, v) items[i++] = v;
    qsort(items, n, sizeof(*items), by_name);
    json_t *arr = json_array();
    for (i = 0; i < n; i++)
        json_array_append(arr, items[i]);
    sb_free(items);
    json_t *body = json_pack("{s:o}", "items", arr);
    json_decref(by_id);
    sb__api_reply(c, 200, body);
    json_decref(body);
}

static void presence_authed(api_call_t *c)
{
    sb_key_t key;
    int rc = sb_key_presence(&key, sb_store_opts(c->app->store)->prefix);
    const char *argv[] = {"HGETALL", key.str};
    c->busy = true;
    if (rc == 0)
        rc = sb_redis_command_argv(c->app->redis, on_presence_read, c, 0, 2, argv, NULL);
    sb__api_begin(c, rc);
}

static void h_presence(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, presence_authed);
}

/* ---- revocation ---- */

typedef struct check {
    api_feed_t *f;
    uint64_t id;
} check_t;

static void on_token_exists(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    check_t *ck = data;
    api_feed_t *f = ck->f;
    if (!f->dead && status == 0 && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0) {
        for (api_feed_client_t *fc = f->clients; fc; fc = fc->next) {
            if (fc->id == ck->id) {
                fc->on_revoked(fc); /* leaves the feed */
                break;
            }
        }
    }
    sb_free(ck);
    feed_unref(f);
}

static void on_revocation_check(uv_timer_t *t)
{
    api_feed_t *f = t->data;
    for (api_feed_client_t *fc = f->clients; fc; fc = fc->next) {
        if (!fc->token_key[0])
            continue;
        check_t *ck = SB_NEW(check_t);
        ck->f = f;
        ck->id = fc->id;
        const char *argv[] = {"EXISTS", fc->token_key};
        if (sb_redis_command_argv(f->app->redis, on_token_exists, ck, 0, 2, argv, NULL) != 0)
            sb_free(ck);
        else
            f->refs++;
    }
}

/* ---- clients ---- */

void sb__feed_join(api_feed_t *f, api_feed_client_t *fc, const json_t *who, const char *token,
                   api_feed_revoked_fn on_revoked)
{
    fc->feed = f;
    fc->id = ++f->next_id;
    fc->on_revoked = on_revoked;
    const char *kind = str_at(who, "kind");
    fc->bot = !kind || strcmp(kind, "staff") != 0;
    fc->scope = sb__api_scope(who);
    fc->token_key[0] = '\0';
    if (token)
        sb_store_token_key(sb_store_opts(f->app->store)->prefix, token, fc->token_key,
                           sizeof(fc->token_key));
    fc->staff[0] = '\0';
    if (!fc->bot && sb_id_valid(str_at(who, "id"), "st_")) {
        snprintf(fc->staff, sizeof(fc->staff), "%s", str_at(who, "id"));
        presence_join(f, who);
    }
    fc->prev = NULL;
    fc->next = f->clients;
    if (f->clients)
        f->clients->prev = fc;
    f->clients = fc;
    f->count++;
}

void sb__feed_leave(api_feed_client_t *fc)
{
    api_feed_t *f = fc->feed;
    if (!f)
        return;
    if (fc->prev)
        fc->prev->next = fc->next;
    else
        f->clients = fc->next;
    if (fc->next)
        fc->next->prev = fc->prev;
    f->count--;
    if (fc->staff[0])
        presence_leave(f, fc->staff);
    fc->feed = NULL;
}

size_t sb__feed_clients(const api_feed_t *f)
{
    return f ? f->count : 0;
}

/* ---- the feed object ---- */

static void on_timer_closed(uv_handle_t *h)
{
    sb_free(h);
}

static uv_timer_t *timer_new(api_feed_t *f, uv_timer_cb cb, uint64_t every)
{
    uv_timer_t *t = SB_NEW(uv_timer_t);
    uv_timer_init(f->app->loop, t);
    t->data = f;
    uv_timer_start(t, cb, every, every);
    return t;
}

api_feed_t *sb__feed_new(sb_app_t *app)
{
    api_feed_t *f = SB_NEW(api_feed_t);
    f->app = app;
    f->refs = 1; /* the owner's */
    char raw[17];
    sb_random_hex(raw, 8);
    snprintf(f->node, sizeof(f->node), "n%s", raw);
    if (sb_key_presence(&f->key, sb_store_opts(app->store)->prefix) != 0)
        SB_LOG_ERROR("presence.key", "err=%s", sb_err_name(f->key.err)); /* config bounds it */
    f->revocation = timer_new(f, on_revocation_check, REVOKE_CHECK_MS);
    f->refresh = timer_new(f, on_refresh, PRESENCE_REFRESH_MS);
    sb_http_route(app->http, "GET", "/v1/presence", h_presence, app);
    return f;
}

void sb__feed_free(api_feed_t *f)
{
    if (!f)
        return;
    while (f->clients) /* the feeds' owners have ended theirs already */
        sb__feed_leave(f->clients);
    while (f->presence) { /* still counted: say goodbye */
        presence_t *p = f->presence;
        f->presence = p->next;
        presence_change(f, p, false);
        sb_free(p->name);
        sb_free(p->role);
        sb_free(p);
    }
    uv_close((uv_handle_t *)f->revocation, on_timer_closed);
    uv_close((uv_handle_t *)f->refresh, on_timer_closed);
    f->dead = true;
    feed_unref(f);
}

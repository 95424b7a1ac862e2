/* SPDX-License-Identifier: MIT */
/*
 * Staff as connectors see them (store.h): who wants notification mail (the `notify` hash
 * sbctl keeps, with each member's name and address from their record), the whole staff
 * list with roles and channel scopes (whom an SLA step reaches), a once-only marker so that
 * of several nodes seeing the same event, one acts on it, and who is online now (the
 * presence hash the gateway's live feeds keep, gateway/api_feed.c). Plain commands: the
 * keys are outside the shards.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

typedef struct notify_ctx {
    sb_store_t *st;
    json_t *list; /* [{id, notify}] filled in with name and email */
    size_t waiting;
    int status;
    sb_store_cb cb;
    void *data;
} notify_ctx_t;

static void notify_done(notify_ctx_t *nc)
{
    if (nc->status) {
        nc->cb(nc->status, NULL, sb_strerror(nc->status), nc->data);
    } else {
        json_t *res = json_pack("{s:O}", "staff", nc->list);
        nc->cb(0, res, NULL, nc->data);
        json_decref(res);
    }
    json_decref(nc->list);
    sb_free(nc);
}

typedef struct member_ctx {
    notify_ctx_t *nc;
    json_t *row; /* borrowed from nc->list */
} member_ctx_t;

static void on_member(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    member_ctx_t *mc = data;
    notify_ctx_t *nc = mc->nc;
    if (status) {
        nc->status = status;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2) {
        for (size_t i = 0; i < 2; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                json_object_set_new(mc->row, i ? "email" : "name",
                                    json_stringn(reply->element[i]->str, reply->element[i]->len));
    }
    sb_free(mc);
    if (--nc->waiting == 0)
        notify_done(nc);
}

static void on_notify(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    notify_ctx_t *nc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY) {
        nc->status = status ? status : SB_EREDIS;
        notify_done(nc);
        return;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
            sb_id_valid(k->str, "st_"))
            json_array_append_new(nc->list,
                                  json_pack("{s:s, s:s%}", "id", k->str, "notify", v->str, v->len));
    }
    nc->waiting = json_array_size(nc->list) + 1; /* + 1: held while sending */
    for (size_t i = 0; i < json_array_size(nc->list); i++) {
        json_t *row = json_array_get(nc->list, i);
        sb_key_t pk;
        sb_key_principal(&pk, nc->st->prefix, "staff",
                         json_string_value(json_object_get(row, "id")));
        member_ctx_t *mc = SB_NEW(member_ctx_t);
        mc->nc = nc;
        mc->row = row;
        const char *argv[] = {"HMGET", pk.str, "name", "email"};
        if (sb_redis_command_argv(nc->st->redis, on_member, mc, 0, 4, argv, NULL) != 0) {
            sb_free(mc);
            nc->status = SB_EUNAVAILABLE;
            nc->waiting--;
        }
    }
    if (--nc->waiting == 0)
        notify_done(nc);
}

int sb_store_notify_list(sb_store_t *st, sb_store_cb cb, void *data)
{
    sb_key_t k;
    sb_key_notify(&k, st->prefix);
    notify_ctx_t *nc = SB_NEW(notify_ctx_t);
    nc->st = st;
    nc->list = json_array();
    nc->cb = cb;
    nc->data = data;
    const char *argv[] = {"HGETALL", k.str};
    int rc = sb_redis_command_argv(st->redis, on_notify, nc, 0, 2, argv, NULL);
    if (rc) {
        json_decref(nc->list);
        sb_free(nc);
    }
    return rc;
}

typedef struct once_ctx {
    sb_store_cb cb;
    void *data;
} once_ctx_t;

static void on_once(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    once_ctx_t *oc = data;
    if (status) {
        oc->cb(status, NULL, sb_strerror(status), oc->data);
    } else {
        json_t *res = json_pack("{s:b}", "first", reply->type == REDIS_REPLY_STATUS);
        oc->cb(0, res, NULL, oc->data);
        json_decref(res);
    }
    sb_free(oc);
}

int sb_store_once(sb_store_t *st, const char *name, unsigned ttl_s, sb_store_cb cb, void *data)
{
    sb_key_t k;
    if (!name || !*name || sb_key_once(&k, st->prefix, name) != 0)
        return SB_EINVAL;
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", ttl_s ? ttl_s : 1);
    once_ctx_t *oc = SB_NEW(once_ctx_t);
    oc->cb = cb;
    oc->data = data;
    const char *argv[] = {"SET", k.str, "1", "NX", "EX", ttl};
    int rc = sb_redis_command_argv(st->redis, on_once, oc, 0, 6, argv, NULL);
    if (rc)
        sb_free(oc);
    return rc;
}

/* ---- Staff online now ---- */

typedef struct online_ctx {
    sb_store_cb cb;
    void *data;
} online_ctx_t;

/* The staff id of a live presence field ("<sid>@<node>" valued JSON with "exp"), or NULL. */
static const char *live_staff(const redisReply *k, const redisReply *v, int64_t now, char *id,
                              size_t cap)
{
    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
        return NULL;
    const char *at = memchr(k->str, '@', k->len);
    size_t n = at ? (size_t)(at - k->str) : k->len;
    if (n == 0 || n >= cap)
        return NULL;
    memcpy(id, k->str, n);
    id[n] = '\0';
    if (!sb_id_valid(id, "st_"))
        return NULL;
    json_t *e = json_loadb(v->str, v->len, 0, NULL);
    json_t *exp = json_object_get(e, "exp");
    bool live = json_is_integer(exp) && json_integer_value(exp) > now;
    json_decref(e);
    return live ? id : NULL;
}

static void on_online(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    online_ctx_t *oc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY) {
        status = status ? status : SB_EREDIS;
        oc->cb(status, NULL, sb_strerror(status), oc->data);
        sb_free(oc);
        return;
    }
    int64_t now = sb_now_ms();
    json_t *seen = json_object(), *staff = json_array();
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        char id[SB_ID_MAX];
        if (!live_staff(reply->element[i], reply->element[i + 1], now, id, sizeof(id)) ||
            json_object_get(seen, id))
            continue; /* expired, not a staff field, or the same person on another node */
        json_object_set_new(seen, id, json_true());
        json_array_append_new(staff, json_string(id));
    }
    json_t *res =
        json_pack("{s:o, s:I}", "staff", staff, "online", (json_int_t)json_object_size(seen));
    json_decref(seen);
    oc->cb(0, res, NULL, oc->data);
    json_decref(res);
    sb_free(oc);
}

int sb_store_online(sb_store_t *st, sb_store_cb cb, void *data)
{
    sb_key_t k;
    if (sb_key_presence(&k, st->prefix) != 0)
        return k.err;
    online_ctx_t *oc = SB_NEW(online_ctx_t);
    oc->cb = cb;
    oc->data = data;
    const char *argv[] = {"HGETALL", k.str};
    int rc = sb_redis_command_argv(st->redis, on_online, oc, 0, 2, argv, NULL);
    if (rc)
        sb_free(oc);
    return rc;
}

/* ---- The whole staff list (SLA targets) ---- */

typedef struct staff_ctx {
    sb_store_t *st;
    json_t *prefs; /* the notify hash: id -> new|assigned */
    json_t *list;  /* [{id, name, email, role, channels, notify}] */
    char cursor[32];
    char *pattern;
    char *index; /* <prefix>staff_index */
    size_t waiting;
    int status;
    sb_store_cb cb;
    void *data;
} staff_ctx_t;

static void staff_done(staff_ctx_t *sc)
{
    if (sc->status) {
        sc->cb(sc->status, NULL, sb_strerror(sc->status), sc->data);
    } else {
        json_t *res = json_pack("{s:O}", "staff", sc->list);
        sc->cb(0, res, NULL, sc->data);
        json_decref(res);
    }
    json_decref(sc->prefs);
    json_decref(sc->list);
    sb_free(sc->pattern);
    sb_free(sc->index);
    sb_free(sc);
}

/* A comma list of channels as an array; NULL (every channel) for none. */
static json_t *channel_list(const char *s, size_t n)
{
    json_t *a = json_array();
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ',' || s[i] == ' '))
            i++;
        size_t start = i;
        while (i < n && s[i] != ',' && s[i] != ' ')
            i++;
        if (i > start)
            json_array_append_new(a, json_stringn(s + start, i - start));
    }
    return a;
}

static void on_staff_record(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    staff_ctx_t *sc = data;
    static const char *const fields[] = {"id", "name", "email", "role", "channels"};
    if (status) {
        sc->status = status;
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 5 &&
               reply->element[0]->type == REDIS_REPLY_STRING &&
               sb_id_valid(reply->element[0]->str, "st_")) {
        json_t *row = json_object();
        for (size_t i = 0; i < 4; i++) {
            redisReply *v = reply->element[i];
            json_object_set_new(row, fields[i],
                                v->type == REDIS_REPLY_STRING ? json_stringn(v->str, v->len)
                                                              : json_null());
        }
        redisReply *ch = reply->element[4];
        json_object_set_new(row, "channels",
                            ch->type == REDIS_REPLY_STRING ? channel_list(ch->str, ch->len)
                                                           : json_null());
        const char *pref = json_string_value(json_object_get(sc->prefs, reply->element[0]->str));
        json_object_set_new(row, "notify", json_string(pref ? pref : "none"));
        json_array_append_new(sc->list, row);
    }
    if (--sc->waiting == 0)
        staff_done(sc);
}

static void staff_scan(staff_ctx_t *sc);

static void on_staff_scan(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    staff_ctx_t *sc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        sc->status = status ? status : SB_EREDIS;
        if (--sc->waiting == 0)
            staff_done(sc);
        return;
    }
    snprintf(sc->cursor, sizeof(sc->cursor), "%s", reply->element[0]->str);
    redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++) {
        if (keys->element[i]->type != REDIS_REPLY_STRING)
            continue;
        const char *argv[] = {"HMGET",   keys->element[i]->str, "id", "name", "email", "role",
                              "channels"};
        const char *id = strrchr(keys->element[i]->str, ':');
        if (id && sb_id_valid(id + 1, "st_")) { /* adopted into the index */
            const char *sadd[] = {"SADD", sc->index, id + 1};
            sb_redis_command_argv(sc->st->redis, NULL, NULL, 0, 3, sadd, NULL);
        }
        sc->waiting++;
        if (sb_redis_command_argv(sc->st->redis, on_staff_record, sc, 0, 7, argv, NULL) != 0) {
            sc->status = SB_EUNAVAILABLE;
            sc->waiting--;
        }
    }
    if (strcmp(sc->cursor, "0") != 0 && !sc->status) {
        staff_scan(sc); /* keeps the hold: waiting is unchanged */
        return;
    }
    if (!sc->status)
        sc->st->staff_indexed = true;
    if (--sc->waiting == 0)
        staff_done(sc);
}

static void staff_scan(staff_ctx_t *sc)
{
    const char *argv[] = {"SCAN", sc->cursor, "MATCH", sc->pattern, "COUNT", "1000"};
    if (sb_redis_command_argv(sc->st->redis, on_staff_scan, sc, 0, 6, argv, NULL) != 0) {
        sc->status = SB_EUNAVAILABLE;
        if (--sc->waiting == 0)
            staff_done(sc);
    }
}

/* The index's ids: each record read as the scan reads them. */
static void on_staff_index(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    staff_ctx_t *sc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY) {
        sc->status = status ? status : SB_EREDIS;
    } else {
        for (size_t i = 0; i < reply->elements; i++) {
            redisReply *e = reply->element[i];
            sb_key_t pk;
            if (e->type != REDIS_REPLY_STRING || !sb_id_valid(e->str, "st_") ||
                sb_key_principal(&pk, sc->st->prefix, "staff", e->str) != 0)
                continue;
            const char *argv[] = {"HMGET", pk.str, "id", "name", "email", "role", "channels"};
            sc->waiting++;
            if (sb_redis_command_argv(sc->st->redis, on_staff_record, sc, 0, 7, argv, NULL) != 0) {
                sc->status = SB_EUNAVAILABLE;
                sc->waiting--;
            }
        }
    }
    if (--sc->waiting == 0)
        staff_done(sc);
}

static void on_staff_prefs(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    staff_ctx_t *sc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY) {
        sc->status = status ? status : SB_EREDIS;
        staff_done(sc);
        return;
    }
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        redisReply *k = reply->element[i], *v = reply->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
            json_object_set_new(sc->prefs, k->str, json_stringn(v->str, v->len));
    }
    sc->waiting = 1; /* held by the scan or the index read until it answered */
    if (!sc->st->staff_indexed) {
        staff_scan(sc); /* once per process: records sbctl wrote before the index existed */
        return;
    }
    const char *argv[] = {"SMEMBERS", sc->index};
    if (sb_redis_command_argv(sc->st->redis, on_staff_index, sc, 0, 2, argv, NULL) != 0) {
        sc->status = SB_EUNAVAILABLE;
        staff_done(sc);
    }
}

int sb_store_staff_list(sb_store_t *st, sb_store_cb cb, void *data)
{
    sb_key_t k, pat;
    sb_key_notify(&k, st->prefix);
    sb_key_principal(&pat, st->prefix, "staff", "*"); /* a SCAN pattern: always fits */
    staff_ctx_t *sc = SB_NEW(staff_ctx_t);
    sc->st = st;
    sc->prefs = json_object();
    sc->list = json_array();
    snprintf(sc->cursor, sizeof(sc->cursor), "0");
    sc->pattern = sb_key_dup(&pat);
    sb_key_staff_index(&pat, st->prefix);
    sc->index = sb_key_dup(&pat);
    sc->cb = cb;
    sc->data = data;
    const char *argv[] = {"HGETALL", k.str};
    int rc = sb_redis_command_argv(st->redis, on_staff_prefs, sc, 0, 2, argv, NULL);
    if (rc) {
        json_decref(sc->prefs);
        json_decref(sc->list);
        sb_free(sc->pattern);
        sb_free(sc->index);
        sb_free(sc);
    }
    return rc;
}

/* ---- The staff list kept for the node (sb_store_staff_cached) ---- */

typedef struct staff_waiter {
    struct staff_waiter *next;
    sb_store_staff_cb cb;
    void *data;
} staff_waiter_t;

struct staff_cache {
    json_t *staff; /* the last "staff" array read, or NULL */
    int64_t at;    /* when it was read */
    bool loading;
    staff_waiter_t *head, *tail;
};

static void staff_cache_answer(struct staff_cache *sc, int status)
{
    while (sc->head) {
        staff_waiter_t *w = sc->head;
        sc->head = w->next;
        if (!sc->head)
            sc->tail = NULL;
        w->cb(status, sc->staff, w->data);
        sb_free(w);
    }
}

static void on_staff_cached(int status, json_t *result, const char *errmsg, void *data)
{
    sb_store_t *st = data;
    struct staff_cache *sc = st->staff_cache;
    sc->loading = false;
    if (status) {
        SB_LOG_WARN("store.staff", "err=%s reason=\"%s\"", sb_err_name(status),
                    errmsg ? errmsg : "");
    } else {
        json_decref(sc->staff);
        sc->staff = json_incref(json_object_get(result, "staff"));
        sc->at = sb_now_ms();
    }
    staff_cache_answer(sc, status);
}

void sb_store_staff_cached(sb_store_t *st, uint32_t ttl_ms, sb_store_staff_cb cb, void *data)
{
    struct staff_cache *sc = st->staff_cache;
    if (!sc)
        sc = st->staff_cache = SB_NEW(struct staff_cache);
    if (sc->staff && !sc->loading && sb_now_ms() - sc->at < (int64_t)ttl_ms) {
        cb(0, sc->staff, data);
        return;
    }
    staff_waiter_t *w = SB_NEW(staff_waiter_t);
    w->cb = cb;
    w->data = data;
    if (sc->tail)
        sc->tail->next = w;
    else
        sc->head = w;
    sc->tail = w;
    if (sc->loading)
        return;
    sc->loading = true;
    int rc = sb_store_staff_list(st, on_staff_cached, st);
    if (rc) {
        sc->loading = false;
        staff_cache_answer(sc, rc);
    }
}

void sb__store_staff_cache_free(sb_store_t *st)
{
    struct staff_cache *sc = st->staff_cache;
    if (!sc)
        return;
    staff_cache_answer(sc, SB_ECANCELED); /* (none wait once the client has stopped) */
    json_decref(sc->staff);
    sb_free(sc);
    st->staff_cache = NULL;
}

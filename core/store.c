/* SPDX-License-Identifier: MIT */
/*
 * The store of store.h, its core: the store object and its options, loading the
 * function library (functions.lua) on every connect, the FCALL path every operation
 * takes (arguments in, reply back to JSON or raw text for the caller), plain commands
 * with an {"id"} answer, and bearer-token lookups (hashed tokens live outside the
 * shards). The operations themselves are in store_ingest.c (customer messages),
 * store_conv.c (a conversation's operations), store_contacts.c (contacts and handles),
 * store_stats.c (figures), and store_lists.c / store_merge.c (every shard at once,
 * through the fan-out of store_fan.c).
 */
#include "core/store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

extern const unsigned char sb_functions_lua[];
extern const size_t sb_functions_lua_len;

void sb__store_call_free(sb__store_call_t *c)
{
    sb__store_ingest_req_free(c->ingest);
    sb_free(c);
}

int sb_store_new(sb_redis_t *redis, const sb_store_opts_t *opts, sb_store_t **out)
{
    sb_store_t *st = SB_NEW(sb_store_t);
    st->redis = redis;
    if (opts)
        st->opts = *opts;
    st->prefix = sb_strdup(st->opts.prefix ? st->opts.prefix : "sb:");
    st->served = json_pack("[ss]", "webchat", "api");
    st->opts.prefix = st->prefix;
    if (!st->opts.shards)
        st->opts.shards = 16;
    if (!st->opts.reopen_window_ms)
        st->opts.reopen_window_ms = 7LL * 24 * 3600 * 1000;
    if (!st->opts.events_maxlen)
        st->opts.events_maxlen = 100000;
    if (!st->opts.dedup_ttl_s)
        st->opts.dedup_ttl_s = 7 * 24 * 3600;
    *out = st;
    return 0;
}

void sb_store_free(sb_store_t *st)
{
    if (!st)
        return;
    sb__store_staff_cache_free(st);
    sb_free(st->prefix);
    json_decref(st->served);
    sb_free(st);
}

const sb_store_opts_t *sb_store_opts(const sb_store_t *st)
{
    return &st->opts;
}

unsigned sb_store_shard(const sb_store_t *st, const char *id)
{
    return sb_shard_of(id, st->opts.shards);
}

bool sb_store_ready(const sb_store_t *st)
{
    return st->ready;
}

int sb_store_error_code(const char *errmsg)
{
    static const struct {
        const char *prefix;
        int code;
    } map[] = {{"NOTFOUND", SB_ENOTFOUND},
               {"CONFLICT", SB_ECONFLICT},
               {"FORBIDDEN", SB_EFORBIDDEN},
               {"INVAL", SB_EINVAL},
               {"UNAVAILABLE", SB_EUNAVAILABLE}};
    if (!errmsg)
        return SB_EREDIS;
    for (size_t i = 0; i < SB_ARRAY_LEN(map); i++) {
        size_t n = strlen(map[i].prefix);
        if (strncmp(errmsg, map[i].prefix, n) == 0 && (errmsg[n] == ' ' || errmsg[n] == '\0'))
            return map[i].code;
    }
    return SB_EREDIS;
}

/* ---- Loading the function library ---- */

typedef struct load_ctx {
    sb_store_t *st;
    uint64_t generation;
} load_ctx_t;

static void on_loaded(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    load_ctx_t *lc = data;
    if (status == 0 && lc->generation == lc->st->generation) {
        lc->st->ready = true;
        SB_LOG_INFO("store.functions", "loaded=switchboard shards=%u", lc->st->opts.shards);
    } else if (status != 0) {
        SB_LOG_ERROR("store.functions", "err=%s reply=\"%s\"", sb_err_name(status),
                     reply && reply->str ? reply->str : "");
    }
    sb_free(lc);
}

void sb_store_on_connect(sb_store_t *st)
{
    st->generation++;
    st->ready = false;
    load_ctx_t *lc = SB_NEW(load_ctx_t);
    lc->st = st;
    lc->generation = st->generation;
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", (const char *)sb_functions_lua};
    size_t lens[] = {8, 4, 7, sb_functions_lua_len};
    if (sb_redis_command_argv(st->redis, on_loaded, lc, 0, 4, argv, lens) != 0)
        sb_free(lc);
}

void sb_store_on_disconnect(sb_store_t *st)
{
    st->ready = false;
}

/* ---- FCALL plumbing ---- */

void sb__store_on_fcall(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb__store_call_t *c = data;
    if (c->ingest && status == 0 && reply && reply->type == REDIS_REPLY_STRING) {
        int rr = sb__store_ingest_resend(c, reply->str, reply->len);
        if (rr == 0)
            return; /* sent on to where the conversation lives */
        if (rr != 1) {
            status = rr; /* a redirect that could not be followed */
            reply = NULL;
        }
    }
    if (c->raw) {
        if (status == SB_EREDIS && reply && reply->str) {
            const char *sp = strchr(reply->str, ' ');
            c->raw(sb_store_error_code(reply->str), NULL, 0, sp ? sp + 1 : reply->str, c->data);
        } else if (status != 0 || !reply) {
            c->raw(status ? status : SB_EREDIS, NULL, 0, sb_strerror(status), c->data);
        } else if (reply->type != REDIS_REPLY_STRING) {
            c->raw(SB_EREDIS, NULL, 0, "unexpected reply type", c->data);
        } else {
            c->raw(0, reply->str, reply->len, NULL, c->data);
        }
    } else if (!c->cb) {
        if (status)
            SB_LOG_WARN("store.fcall", "err=%s reply=\"%s\"", sb_err_name(status),
                        reply && reply->str ? reply->str : "");
    } else if (status == SB_EREDIS && reply && reply->str) {
        int code = sb_store_error_code(reply->str);
        const char *sp = strchr(reply->str, ' ');
        c->cb(code, NULL, sp ? sp + 1 : reply->str, c->data);
    } else if (status != 0 || !reply) {
        c->cb(status ? status : SB_EREDIS, NULL, sb_strerror(status), c->data);
    } else if (reply->type != REDIS_REPLY_STRING) {
        c->cb(SB_EREDIS, NULL, "unexpected reply type", c->data);
    } else {
        json_error_t jerr;
        json_t *res = json_loadb(reply->str, reply->len, JSON_DECODE_ANY, &jerr);
        if (!res) {
            SB_LOG_ERROR("store.reply", "err=PARSE what=\"%s\"", jerr.text);
            c->cb(SB_EREDIS, NULL, "bad reply from function", c->data);
        } else {
            int code = json_is_true(json_object_get(res, "conflict")) ? SB_ECONFLICT : 0;
            c->cb(code, res, NULL, c->data);
            json_decref(res);
        }
    }
    sb__store_call_free(c);
}

int sb__store_fcall(sb_store_t *st, const char *fn, unsigned shard, json_t *args, int nids,
                    sb_store_cb cb, void *data)
{
    sb_key_t key;
    if (sb_key_events(&key, st->prefix, shard) != 0) {
        json_decref(args);
        return key.err;
    }
    json_t *ids = json_array();
    for (int i = 0; i < nids; i++) {
        char id[SB_ID_MAX];
        sb_id_new("m_", id);
        json_array_append_new(ids, json_string(id));
    }
    json_object_set_new(args, "ids", ids);
    json_object_set_new(args, "prefix", json_string(st->prefix));
    json_object_set_new(args, "shard", json_integer(shard));
    json_object_set_new(args, "events_maxlen", json_integer((json_int_t)st->opts.events_maxlen));
    json_object_set_new(args, "dedup_ttl", json_integer(st->opts.dedup_ttl_s));
    /* The functions' clock is the caller's (core/sys.h), never Redis TIME. */
    json_object_set_new(args, "now", json_integer((json_int_t)sb_now_ms()));
    if (st->opts.sla)
        json_object_set_new(args, "sla", json_true()); /* keep SLA clocks (docs/sla.md) */
    char *js;
    int jrc = sb_json_dumps(args, JSON_COMPACT, &js, NULL);
    json_decref(args);
    if (jrc != 0)
        return jrc;
    sb__store_call_t *c = SB_NEW(sb__store_call_t);
    c->st = st;
    c->cb = cb;
    c->data = data;
    const char *argv[] = {"FCALL", fn, "1", key.str, js};
    int rc = sb_redis_command_argv(st->redis, sb__store_on_fcall, c, 0, 5, argv, NULL);
    free(js);
    if (rc != 0)
        sb_free(c);
    return rc;
}

json_t *sb__store_served(sb_store_t *st)
{
    return st->served;
}

sb_redis_t *sb__store_redis(sb_store_t *st)
{
    return st->redis;
}

json_t *sb__store_actor_json(const sb_actor_t *who)
{
    json_t *a = json_object();
    json_object_set_new(a, "type", json_string(who->type ? who->type : "system"));
    if (who->id)
        json_object_set_new(a, "id", json_string(who->id));
    if (who->name)
        json_object_set_new(a, "name", json_string(who->name));
    return a;
}

/* ---- Plain commands with a generic {"id"} / ok reply ---- */

typedef struct simple_ctx {
    sb_store_cb cb;
    void *data;
    char id[SB_ID_MAX];
} simple_ctx_t;

static void on_simple(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    simple_ctx_t *sc = data;
    if (sc->cb) {
        if (status) {
            sc->cb(status, NULL, reply && reply->str ? reply->str : sb_strerror(status), sc->data);
        } else {
            json_t *res = json_pack("{s:s}", "id", sc->id);
            sc->cb(0, res, NULL, sc->data);
            json_decref(res);
        }
    }
    sb_free(sc);
}

int sb__store_simple(sb_store_t *st, const char *id, int argc, const char **argv, sb_store_cb cb,
                     void *data)
{
    simple_ctx_t *sc = SB_NEW(simple_ctx_t);
    sc->cb = cb;
    sc->data = data;
    snprintf(sc->id, sizeof(sc->id), "%s", id ? id : "");
    int rc = sb_redis_command_argv(st->redis, on_simple, sc, 0, argc, argv, NULL);
    if (rc)
        sb_free(sc);
    return rc;
}

/* ---- Tokens ---- */

void sb_store_token_key(const char *prefix, const char *token, char *out, size_t cap)
{
    sb_key_t k;
    if (cap == 0)
        return;
    if (sb_key_token(&k, prefix, token) != 0 || k.len >= cap) {
        out[0] = '\0'; /* never a truncated key */
        return;
    }
    memcpy(out, k.str, k.len + 1);
}

static void on_token(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb__store_call_t *c = data;
    if (status) {
        c->cb(status, NULL, sb_strerror(status), c->data);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        c->cb(SB_ENOTFOUND, NULL, "unknown or revoked token", c->data);
    } else {
        json_t *o = json_object();
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
                json_object_set_new(o, k->str, json_stringn(v->str, v->len));
        }
        c->cb(0, o, NULL, c->data);
        json_decref(o);
    }
    sb_free(c);
}

int sb_store_token_lookup(sb_store_t *st, const char *token, sb_store_cb cb, void *data)
{
    if (!token || !*token)
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_token(&key, st->prefix, token) != 0)
        return key.err;
    sb__store_call_t *c = SB_NEW(sb__store_call_t);
    c->st = st;
    c->cb = cb;
    c->data = data;
    const char *argv[] = {"HGETALL", key.str};
    int rc = sb_redis_command_argv(st->redis, on_token, c, 0, 2, argv, NULL);
    if (rc)
        sb_free(c);
    return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * Contacts and their handles (store.h): resolving a handle to a contact (creating it),
 * following merged_into links, the latest conversation of a contact on a channel,
 * reading and re-pointing handles (keeping each contact's set of handles in step), and
 * setting a contact's fields. Contacts live outside the shards, in plain commands; a
 * contact across every shard and merges are in store_merge.c.
 */
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

/* ---- Contacts ---- */

typedef struct resolve_ctx {
    sb_store_t *st;
    char id[SB_ID_MAX];
    char *name, *email, *handle;
    sb_store_cb cb;
    void *data;
} resolve_ctx_t;

static void resolve_done(resolve_ctx_t *rc, int status, const char *id, bool created)
{
    if (status) {
        rc->cb(status, NULL, sb_strerror(status), rc->data);
    } else {
        json_t *res = json_pack("{s:s, s:b}", "id", id, "created", created);
        rc->cb(0, res, NULL, rc->data);
        json_decref(res);
    }
    sb_free(rc->name);
    sb_free(rc->email);
    sb_free(rc->handle);
    sb_free(rc);
}

static void on_contact_idents(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    resolve_ctx_t *rc = data;
    resolve_done(rc, status, rc->id, true);
}

/* The contact exists; record its first handle in its idents set (used by merges). */
static void on_contact_hset(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    resolve_ctx_t *rc = data;
    if (status) {
        resolve_done(rc, status, NULL, false);
        return;
    }
    sb_key_t key;
    if (sb_key_contact_idents(&key, rc->st->prefix, rc->id) != 0) {
        resolve_done(rc, key.err, NULL, false);
        return;
    }
    const char *argv[] = {"SADD", key.str, rc->handle};
    if (sb_redis_command_argv(rc->st->redis, on_contact_idents, rc, 0, 3, argv, NULL) != 0)
        resolve_done(rc, SB_EUNAVAILABLE, NULL, false);
}

static void on_ident_set(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    resolve_ctx_t *rc = data;
    if (status) {
        resolve_done(rc, status, NULL, false);
        return;
    }
    if (reply->type == REDIS_REPLY_STRING) { /* existed: SET … NX GET returns the old id */
        char id[SB_ID_MAX];
        snprintf(id, sizeof(id), "%.*s", (int)reply->len, reply->str);
        resolve_done(rc, 0, id, false);
        return;
    }
    char created[24];
    snprintf(created, sizeof(created), "%lld", (long long)sb_now_ms());
    sb_key_t key;
    if (sb_key_contact(&key, rc->st->prefix, rc->id) != 0) {
        resolve_done(rc, key.err, NULL, false);
        return;
    }
    const char *argv[12] = {"HSET",       key.str, "id",     rc->id,
                            "created_at", created, "handle", rc->handle};
    int argc = 8;
    if (rc->name) {
        argv[argc++] = "name";
        argv[argc++] = rc->name;
    }
    if (rc->email) {
        argv[argc++] = "email";
        argv[argc++] = rc->email;
    }
    if (sb_redis_command_argv(rc->st->redis, on_contact_hset, rc, 0, argc, argv, NULL) != 0)
        resolve_done(rc, SB_EUNAVAILABLE, NULL, false);
}

int sb_store_contact_resolve(sb_store_t *st, const char *kind, const char *value, const char *name,
                             const char *email, sb_store_cb cb, void *data)
{
    if (!kind || !*kind || !value || !*value)
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_ident(&key, st->prefix, kind, value) != 0)
        return key.err;
    resolve_ctx_t *rc = SB_NEW(resolve_ctx_t);
    rc->st = st;
    sb_id_new("ct_", rc->id);
    rc->name = name && *name ? sb_strdup(name) : NULL;
    rc->email = email && *email ? sb_strdup(email) : NULL;
    rc->handle = sb_asprintf("%s:%s", kind, value);
    rc->cb = cb;
    rc->data = data;
    const char *argv[] = {"SET", key.str, rc->id, "NX", "GET"};
    int err = sb_redis_command_argv(st->redis, on_ident_set, rc, 0, 5, argv, NULL);
    if (err) {
        sb_free(rc->name);
        sb_free(rc->email);
        sb_free(rc->handle);
        sb_free(rc);
    }
    return err;
}

#define FIND_HOPS 8 /* merged_into links followed at most (merges refuse to make long chains) */

typedef struct find_ctx {
    sb_store_t *st;
    sb_store_cb cb;
    void *data;
    char asked[SB_ID_MAX], cur[SB_ID_MAX]; /* the contact asked for, the one looked up */
    int hops;
} find_ctx_t;

static int find_send(find_ctx_t *fc);

static void find_done(find_ctx_t *fc, int status)
{
    if (status) {
        fc->cb(status, NULL, status == SB_ENOTFOUND ? "no such contact" : sb_strerror(status),
               fc->data);
    } else {
        bool moved = strcmp(fc->asked, fc->cur) != 0;
        json_t *res =
            json_pack("{s:s, s:s?}", "id", fc->asked, "merged_into", moved ? fc->cur : NULL);
        fc->cb(0, res, NULL, fc->data);
        json_decref(res);
    }
    sb_free(fc);
}

static void on_contact_find(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    find_ctx_t *fc = data;
    const redisReply *id = !status && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
                               ? reply->element[0]
                               : NULL;
    const redisReply *into = id ? reply->element[1] : NULL;
    if (status || !id || id->type != REDIS_REPLY_STRING) {
        /* a contact merged into one whose record is gone still answers that one */
        find_done(fc, status ? status : fc->hops > 0 ? 0 : SB_ENOTFOUND);
        return;
    }
    char next[SB_ID_MAX] = "";
    if (into->type == REDIS_REPLY_STRING && into->len < SB_ID_MAX)
        snprintf(next, sizeof(next), "%.*s", (int)into->len, into->str);
    if (!sb_id_valid(next, "ct_") || fc->hops >= FIND_HOPS) {
        find_done(fc, 0); /* not merged (or an unreadable link: this one, then) */
        return;
    }
    snprintf(fc->cur, sizeof(fc->cur), "%s", next);
    fc->hops++;
    if (find_send(fc) != 0)
        find_done(fc, SB_EUNAVAILABLE);
}

static int find_send(find_ctx_t *fc)
{
    sb_key_t key;
    if (sb_key_contact(&key, fc->st->prefix, fc->cur) != 0)
        return key.err;
    const char *argv[] = {"HMGET", key.str, "id", "merged_into"};
    return sb_redis_command_argv(fc->st->redis, on_contact_find, fc, 0, 4, argv, NULL);
}

int sb_store_contact_find(sb_store_t *st, const char *contact, sb_store_cb cb, void *data)
{
    if (!contact || !*contact || strlen(contact) >= SB_ID_MAX)
        return SB_EINVAL;
    find_ctx_t *fc = SB_NEW(find_ctx_t);
    fc->st = st;
    fc->cb = cb;
    fc->data = data;
    snprintf(fc->asked, sizeof(fc->asked), "%s", contact);
    snprintf(fc->cur, sizeof(fc->cur), "%s", contact);
    int rc = find_send(fc);
    if (rc)
        sb_free(fc);
    return rc;
}

int sb_store_contact_latest(sb_store_t *st, const char *contact, const char *channel,
                            sb_store_cb cb, void *data)
{
    if (!contact || !channel)
        return SB_EINVAL;
    json_t *a = json_pack("{s:s, s:s}", "contact", contact, "channel", channel);
    return sb__store_fcall_msg(st, "sb_latest", sb_store_shard(st, contact), a, cb, data);
}

typedef struct ident_ctx {
    sb_store_t *st;
    sb_store_cb cb;
    void *data;
    char id[SB_ID_MAX]; /* the contact a SET points the handle at ("" for GET) */
    char *handle;       /* "kind:value" */
    unsigned pending;   /* idents set updates in flight after a SET */
    int status;
} ident_ctx_t;

static void ident_done(ident_ctx_t *ic, int status, const char *id)
{
    if (status) {
        ic->cb(status, NULL, sb_strerror(status), ic->data);
    } else if (id) {
        json_t *res = json_pack("{s:s}", "id", id);
        ic->cb(0, res, NULL, ic->data);
        json_decref(res);
    } else {
        ic->cb(SB_ENOTFOUND, NULL, "unknown handle", ic->data);
    }
    sb_free(ic->handle);
    sb_free(ic);
}

static void on_ident_sets(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    ident_ctx_t *ic = data;
    if (status && !ic->status)
        ic->status = status;
    if (--ic->pending == 0)
        ident_done(ic, ic->status, ic->id);
}

/* After SET … GET: the handle joins its contact's idents set and leaves the old one's. */
static void ident_sets(ident_ctx_t *ic, const char *old)
{
    sb_store_t *st = ic->st;
    sb_key_t key, okey;
    sb_key_contact_idents(&key, st->prefix, ic->id);
    const char *add[] = {"SADD", key.str, ic->handle};
    ic->pending = 1;
    if (old && strcmp(old, ic->id) != 0) {
        const char *rem[] = {"SREM", okey.str, ic->handle};
        ic->pending++;
        if (sb_key_contact_idents(&okey, st->prefix, old) != 0)
            on_ident_sets(st->redis, NULL, okey.err, ic);
        else if (sb_redis_command_argv(st->redis, on_ident_sets, ic, 0, 3, rem, NULL) != 0)
            on_ident_sets(st->redis, NULL, SB_EUNAVAILABLE, ic);
    }
    if (key.err)
        on_ident_sets(st->redis, NULL, key.err, ic);
    else if (sb_redis_command_argv(st->redis, on_ident_sets, ic, 0, 3, add, NULL) != 0)
        on_ident_sets(st->redis, NULL, SB_EUNAVAILABLE, ic);
}

static void on_ident(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    ident_ctx_t *ic = data;
    char old[SB_ID_MAX] = "";
    bool found = !status && reply->type == REDIS_REPLY_STRING;
    if (found)
        snprintf(old, sizeof(old), "%.*s", (int)reply->len, reply->str);
    if (status || !ic->id[0])
        ident_done(ic, status, found ? old : NULL);
    else
        ident_sets(ic, found ? old : NULL);
}

static int ident_cmd(sb_store_t *st, const char *kind, const char *value, const char *contact,
                     sb_store_cb cb, void *data)
{
    if (!kind || !value || !*value)
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_ident(&key, st->prefix, kind, value) != 0)
        return key.err;
    ident_ctx_t *ic = SB_NEW(ident_ctx_t);
    ic->st = st;
    ic->cb = cb;
    ic->data = data;
    ic->handle = sb_asprintf("%s:%s", kind, value);
    if (contact)
        snprintf(ic->id, sizeof(ic->id), "%s", contact);
    const char *argv[] = {contact ? "SET" : "GET", key.str, contact, "GET"};
    int rc = sb_redis_command_argv(st->redis, on_ident, ic, 0, contact ? 4 : 2, argv, NULL);
    if (rc) {
        sb_free(ic->handle);
        sb_free(ic);
    }
    return rc;
}

int sb_store_ident_get(sb_store_t *st, const char *kind, const char *value, sb_store_cb cb,
                       void *data)
{
    return ident_cmd(st, kind, value, NULL, cb, data);
}

int sb_store_ident_set(sb_store_t *st, const char *kind, const char *value, const char *contact,
                       sb_store_cb cb, void *data)
{
    return ident_cmd(st, kind, value, contact, cb, data);
}

int sb_store_contact_set(sb_store_t *st, const char *contact, const char *field, const char *value,
                         sb_store_cb cb, void *data)
{
    if (!contact || !field || !value)
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_contact(&key, st->prefix, contact) != 0)
        return key.err;
    const char *argv[] = {"HSET", key.str, field, value};
    return sb__store_simple(st, contact, 4, argv, cb, data);
}

/* SPDX-License-Identifier: MIT */
/*
 * Contacts across every shard (store.h): a contact with all its conversations, and
 * contact merges (handles re-pointed, then every shard's conversations moved by
 * `sb_merge`, then the latest conversations per channel linked; each step idempotent,
 * so a failed merge is finished by running it again).
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

/* ---- A contact and all its conversations ---- */

static int conv_newest_first(const void *pa, const void *pb)
{
    const json_t *ca = *(json_t *const *)pa, *cb = *(json_t *const *)pb;
    json_int_t a = json_integer_value(json_object_get(ca, "created_at"));
    json_int_t b = json_integer_value(json_object_get(cb, "created_at"));
    if (a != b)
        return a > b ? -1 : 1;
    const char *ia = json_string_value(json_object_get(ca, "id"));
    const char *ib = json_string_value(json_object_get(cb, "id"));
    return ia && ib ? -strcmp(ia, ib) : 0; /* ids are time-ordered too */
}

/* The conversations of every shard's answer from parts[first…], newest first. */
static json_t *merged_convs(const json_t *parts, size_t first)
{
    size_t n = 0;
    for (size_t i = first; i < json_array_size(parts); i++)
        n += json_array_size(json_array_get(parts, i));
    json_t **v = sb_malloc((n + 1) * sizeof(json_t *));
    n = 0;
    for (size_t i = first; i < json_array_size(parts); i++) {
        size_t k;
        json_t *c;
        json_array_foreach(json_array_get(parts, i), k, c) v[n++] = c;
    }
    qsort(v, n, sizeof(json_t *), conv_newest_first);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append(out, v[i]);
    sb_free(v);
    return out;
}

static void contact_done(sb__fan_t *f)
{
    if (f->status) {
        sb_free(f->op);
        sb__fan_finish(f, NULL);
        return;
    }
    json_t *res = sb__store_pairs_object(json_array_get(f->parts, 0));
    json_t *convs = merged_convs(f->parts, 2);
    if (json_object_size(res) == 0 && json_array_size(convs) == 0) {
        sb__fan_fail(f, SB_ENOTFOUND, "no such contact");
    } else {
        if (!json_object_get(res, "id"))
            json_object_set_new(res, "id", json_string(f->op));
        json_t *handles = json_array_get(f->parts, 1);
        json_object_set(res, "handles", json_is_array(handles) ? handles : json_array());
        json_object_set(res, "conversations", convs);
    }
    json_decref(convs);
    sb_free(f->op);
    sb__fan_finish(f, res);
    json_decref(res);
}

int sb_store_contact_get(sb_store_t *st, const char *contact, sb_store_cb cb, void *data)
{
    if (!sb_id_valid(contact, "ct_"))
        return SB_EINVAL;
    sb_key_t hkey, ikey; /* ikey starts with hkey: both fit when it does */
    sb_key_contact(&hkey, st->prefix, contact);
    if (sb_key_contact_idents(&ikey, st->prefix, contact) != 0)
        return ikey.err;
    sb__fan_t *f = sb__fan_new(st, cb, data);
    f->op = sb_strdup(contact);
    sb__fan_begin(f, contact_done);
    const char *hgetall[] = {"HGETALL", hkey.str};
    const char *smembers[] = {"SMEMBERS", ikey.str};
    int rc = sb__fan_cmd(f, 2, hgetall);
    if (rc) {
        sb_free(f->op);
        sb__fan_free(f);
        return rc;
    }
    if (sb__fan_cmd(f, 2, smembers) == 0) {
        for (unsigned i = 0; i < sb_store_opts(st)->shards; i++)
            if (sb__fan_fcall(f, "sb_contact_convs", i, json_pack("{s:s}", "contact", contact), 0))
                break;
    }
    sb__fan_end(f);
    return 0;
}

/* ---- Contact merge ---- */

/*
 * Steps, each safe to repeat: (1) read both contacts; (2) mark the other one
 * merged_into, copy the fields this one lacks, read the other's handles; (3) point
 * every handle at this contact; (4) move the conversations on every shard (sb_merge,
 * repeated while a shard says "more"). A failed merge can simply be run again.
 */
typedef struct merge_op {
    char into[SB_ID_MAX], other[SB_ID_MAX];
    json_t *author;
    char *name;      /* this contact's name, for the moved conversations */
    json_t *handles; /* the handles moved */
    json_t *moved;   /* the conversation ids moved */
    json_t *latest;  /* channel -> latest conversation, from shards other than this one's */
} merge_op_t;

static void merge_finish(sb__fan_t *f)
{
    merge_op_t *op = f->op;
    json_t *res = NULL;
    if (!f->status)
        res = json_pack("{s:s, s:s, s:O, s:O}", "id", op->into, "merged", op->other, "moved",
                        op->moved, "handles", op->handles);
    json_decref(op->author);
    json_decref(op->handles);
    json_decref(op->moved);
    json_decref(op->latest);
    sb_free(op->name);
    sb_free(op);
    sb__fan_finish(f, res);
    json_decref(res);
}

static int merge_shard(sb__fan_t *f, unsigned shard);

static void on_merge_shard(int status, json_t *res, const char *errmsg, void *data)
{
    sb__fan_call_t *fc = data;
    sb__fan_t *f = fc->f;
    merge_op_t *op = f->op;
    unsigned shard = (unsigned)fc->idx;
    sb_free(fc);
    if (status) {
        sb__fan_fail(f, status, errmsg);
    } else {
        json_array_extend(op->moved, json_object_get(res, "moved"));
        if (json_is_true(json_object_get(res, "more")) && merge_shard(f, shard) == 0)
            return; /* still pending: the next batch of this shard is on its way */
        json_t *latest = json_object_get(res, "latest");
        if (json_is_object(latest) && shard != sb_store_shard(f->st, op->into))
            json_object_update_missing(op->latest, latest);
    }
    sb__fan_end(f);
}

/* Moves the next batch of the other contact's conversations of one shard. */
static int merge_shard(sb__fan_t *f, unsigned shard)
{
    merge_op_t *op = f->op;
    json_t *a =
        json_pack("{s:s, s:s, s:O}", "from", op->other, "into", op->into, "author", op->author);
    if (op->name)
        json_object_set_new(a, "name", json_string(op->name));
    sb__fan_call_t *fc = SB_NEW(sb__fan_call_t);
    fc->f = f;
    fc->idx = shard;
    int rc = sb__store_fcall(f->st, "sb_merge", shard, a, 25, on_merge_shard, fc);
    if (rc) {
        sb__fan_fail(f, rc, NULL);
        sb_free(fc);
    }
    return rc;
}

static void on_linked(int status, json_t *res, const char *errmsg, void *data)
{
    sb__fan_call_t *fc = data;
    sb__fan_t *f = fc->f;
    sb_free(fc);
    if (status)
        sb__fan_fail(f, status, errmsg);
    sb__fan_end(f);
}

/*
 * Every shard is merged: the contact's latest conversations per channel that live in
 * other shards are recorded in its own shard (sb_link_latest, where it has none for that
 * channel), so the customer's next message on that channel continues them.
 */
static void merge_link(sb__fan_t *f)
{
    merge_op_t *op = f->op;
    if (f->status || json_object_size(op->latest) == 0) {
        merge_finish(f);
        return;
    }
    sb__fan_begin(f, merge_finish);
    sb__fan_call_t *fc = SB_NEW(sb__fan_call_t);
    fc->f = f;
    f->pending++;
    json_t *a = json_pack("{s:s, s:O}", "contact", op->into, "latest", op->latest);
    int rc = sb__store_fcall(f->st, "sb_link_latest", sb_store_shard(f->st, op->into), a, 0,
                             on_linked, fc);
    if (rc) {
        f->pending--;
        sb__fan_fail(f, rc, NULL);
        sb_free(fc);
    }
    sb__fan_end(f);
}

static void merge_handles_done(sb__fan_t *f)
{
    if (f->status) {
        merge_finish(f);
        return;
    }
    sb__fan_begin(f, merge_link);
    for (unsigned i = 0; i < sb_store_opts(f->st)->shards; i++) {
        f->pending++;
        if (merge_shard(f, i) != 0)
            f->pending--;
    }
    sb__fan_end(f);
}

/* Points every handle of the other contact at this one (SET, SADD, then SREM). */
static void merge_marked(sb__fan_t *f)
{
    merge_op_t *op = f->op;
    json_t *handles = json_array_get(f->parts, json_array_size(f->parts) - 1);
    if (f->status || !json_is_array(handles)) {
        sb__fan_fail(f, SB_EREDIS, "could not read the handles");
        merge_finish(f);
        return;
    }
    json_array_extend(op->handles, handles);
    const char *prefix = f->st->prefix;
    sb_key_t ikey, okey;
    if (sb_key_contact_idents(&ikey, prefix, op->into) != 0 ||
        sb_key_contact_idents(&okey, prefix, op->other) != 0) {
        sb__fan_fail(f, SB_ETOOBIG, NULL);
        merge_finish(f);
        return;
    }
    sb__fan_begin(f, merge_handles_done);
    size_t i;
    json_t *h;
    json_array_foreach(op->handles, i, h)
    {
        const char *handle = json_string_value(h);
        sb_key_t key;
        if (!handle || sb_key_handle(&key, prefix, handle) != 0) {
            sb__fan_fail(f, SB_ETOOBIG, "a handle is too long for a key");
            continue;
        }
        const char *set[] = {"SET", key.str, op->into};
        const char *add[] = {"SADD", ikey.str, handle};
        const char *rem[] = {"SREM", okey.str, handle};
        sb__fan_cmd(f, 3, set);
        sb__fan_cmd(f, 3, add);
        sb__fan_cmd(f, 3, rem);
    }
    sb__fan_end(f);
}

/* Both contacts read: validate, mark the other as merged, copy missing fields. */
static void merge_read(sb__fan_t *f)
{
    merge_op_t *op = f->op;
    if (f->status) {
        merge_finish(f);
        return;
    }
    json_t *into = sb__store_pairs_object(json_array_get(f->parts, 0));
    json_t *other = sb__store_pairs_object(json_array_get(f->parts, 1));
    const char *other_to = json_string_value(json_object_get(other, "merged_into"));
    const char *into_to = json_string_value(json_object_get(into, "merged_into"));
    if (json_object_size(into) == 0 || json_object_size(other) == 0)
        sb__fan_fail(f, SB_ENOTFOUND, "no such contact");
    else if (into_to)
        sb__fan_fail(f, SB_ECONFLICT, "this contact was itself merged into another");
    else if (other_to && strcmp(other_to, op->into) != 0)
        sb__fan_fail(f, SB_ECONFLICT, "the other contact was merged into another");
    const char *name = json_string_value(json_object_get(into, "name"));
    if (!name)
        name = json_string_value(json_object_get(other, "name"));
    op->name = name ? sb_strdup(name) : NULL;
    if (f->status) {
        json_decref(into);
        json_decref(other);
        merge_finish(f);
        return;
    }
    const char *prefix = f->st->prefix;
    sb_key_t ikey, okey, ids; /* the ids were checked: the keys fit when the prefix does */
    char now[24];
    sb_key_contact(&ikey, prefix, op->into);
    sb_key_contact(&okey, prefix, op->other);
    if (ikey.err || okey.err || sb_key_contact_idents(&ids, prefix, op->other) != 0) {
        sb__fan_fail(f, SB_ETOOBIG, NULL);
        json_decref(into);
        json_decref(other);
        merge_finish(f);
        return;
    }
    snprintf(now, sizeof(now), "%lld", (long long)sb_now_ms());
    sb__fan_begin(f, merge_marked);
    const char *mark[] = {"HSET", okey.str, "merged_into", op->into, "merged_at", now};
    sb__fan_cmd(f, 6, mark);
    const char *k;
    json_t *v;
    json_object_foreach(other, k, v)
    {
        if (strcmp(k, "id") && strcmp(k, "created_at") && strncmp(k, "merged_", 7) &&
            json_is_string(v)) {
            const char *cp[] = {"HSETNX", ikey.str, k, json_string_value(v)};
            sb__fan_cmd(f, 4, cp);
        }
    }
    const char *members[] = {"SMEMBERS", ids.str};
    sb__fan_cmd(f, 2, members);
    json_decref(into);
    json_decref(other);
    sb__fan_end(f);
}

int sb_store_contact_merge(sb_store_t *st, const char *into, const char *other,
                           const sb_actor_t *who, sb_store_cb cb, void *data)
{
    if (!sb_id_valid(into, "ct_") || !sb_id_valid(other, "ct_") || strcmp(into, other) == 0)
        return SB_EINVAL;
    sb_key_t ikey, okey;
    if (sb_key_contact(&ikey, st->prefix, into) != 0 ||
        sb_key_contact(&okey, st->prefix, other) != 0)
        return SB_ETOOBIG;
    sb__fan_t *f = sb__fan_new(st, cb, data);
    merge_op_t *op = SB_NEW(merge_op_t);
    snprintf(op->into, sizeof(op->into), "%s", into);
    snprintf(op->other, sizeof(op->other), "%s", other);
    op->author = sb__store_actor_json(who);
    op->handles = json_array();
    op->moved = json_array();
    op->latest = json_object();
    f->op = op;
    sb__fan_begin(f, merge_read);
    const char *a[] = {"HGETALL", ikey.str};
    const char *b[] = {"HGETALL", okey.str};
    int rc = sb__fan_cmd(f, 2, a);
    if (rc) {
        json_decref(op->author);
        json_decref(op->handles);
        json_decref(op->moved);
        sb_free(op);
        sb__fan_free(f);
        return rc;
    }
    sb__fan_cmd(f, 2, b);
    sb__fan_end(f);
    return 0;
}

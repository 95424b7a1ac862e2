/* SPDX-License-Identifier: MIT */
/*
 * Store operations that span every shard (store.h): the conversation list (each
 * shard's page from `sb_list`, merged here by index position, with an opaque cursor),
 * a contact with all its conversations, contact merges (idents re-pointed, then every
 * shard's conversations moved by `sb_merge`; each step idempotent), the stats of
 * GET /v1/stats, and snooze wake-ups (`sb_wake`, one shard per call).
 *
 * A `fan` issues several commands at once and runs one continuation when every reply
 * is in: shards are independent slots, so nothing here needs a cross-slot transaction.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

/* ---- Fan-out: several calls, one continuation ---- */

typedef struct fan fan_t;
typedef void (*fan_done_fn)(fan_t *f);

struct fan {
    sb_store_t *st;
    unsigned pending;
    int status; /* the first failure */
    char errmsg[200];
    json_t *parts;    /* one value per call in issue order; null until it answered */
    fan_done_fn done; /* runs once when every call answered */
    sb_store_cb cb;   /* the caller of the public operation */
    void *data;
    void *op; /* the operation's own state */
};

typedef struct fan_call {
    fan_t *f;
    size_t idx;
} fan_call_t;

static fan_t *fan_new(sb_store_t *st, sb_store_cb cb, void *data)
{
    fan_t *f = SB_NEW(fan_t);
    f->st = st;
    f->cb = cb;
    f->data = data;
    f->parts = json_array();
    return f;
}

static void fan_free(fan_t *f)
{
    json_decref(f->parts);
    sb_free(f);
}

/* Starts a round of calls whose continuation is done (parts are cleared). */
static void fan_begin(fan_t *f, fan_done_fn done)
{
    json_array_clear(f->parts);
    f->done = done;
    f->pending = 1; /* held until fan_end, so done never runs while issuing */
}

static void fan_end(fan_t *f)
{
    if (--f->pending == 0)
        f->done(f);
}

static void fan_fail(fan_t *f, int status, const char *errmsg)
{
    if (f->status)
        return;
    f->status = status;
    snprintf(f->errmsg, sizeof(f->errmsg), "%s", errmsg ? errmsg : sb_strerror(status));
}

static void on_fan_fcall(int status, json_t *res, const char *errmsg, void *data)
{
    fan_call_t *fc = data;
    fan_t *f = fc->f;
    if (status)
        fan_fail(f, status, errmsg);
    else
        json_array_set(f->parts, fc->idx, res);
    sb_free(fc);
    fan_end(f);
}

static fan_call_t *fan_slot(fan_t *f)
{
    fan_call_t *fc = SB_NEW(fan_call_t);
    fc->f = f;
    fc->idx = json_array_size(f->parts);
    json_array_append_new(f->parts, json_null());
    f->pending++;
    return fc;
}

/* Calls function fn on one shard (args stolen). Returns the issue error (also recorded). */
static int fan_fcall(fan_t *f, const char *fn, unsigned shard, json_t *args, int nids)
{
    fan_call_t *fc = fan_slot(f);
    int rc = sb__store_fcall(f->st, fn, shard, args, nids, on_fan_fcall, fc);
    if (rc) {
        fan_fail(f, rc, NULL);
        sb_free(fc);
        f->pending--;
    }
    return rc;
}

/* A plain command's reply as JSON: strings, integers, nil, arrays (flat). */
static json_t *reply_json(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        return json_stringn(r->str, r->len);
    case REDIS_REPLY_INTEGER:
        return json_integer(r->integer);
    case REDIS_REPLY_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < r->elements; i++)
            json_array_append_new(a, reply_json(r->element[i]));
        return a;
    }
    default:
        return json_null();
    }
}

static void on_fan_cmd(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    fan_call_t *fc = data;
    fan_t *f = fc->f;
    if (status)
        fan_fail(f, status, reply && reply->str ? reply->str : NULL);
    else
        json_array_set_new(f->parts, fc->idx, reply_json(reply));
    sb_free(fc);
    fan_end(f);
}

/* Sends a plain command. Returns the issue error (also recorded). */
static int fan_cmd(fan_t *f, int argc, const char **argv)
{
    fan_call_t *fc = fan_slot(f);
    int rc = sb_redis_command_argv(sb__store_redis(f->st), on_fan_cmd, fc, 0, argc, argv, NULL);
    if (rc) {
        fan_fail(f, rc, NULL);
        sb_free(fc);
        f->pending--;
    }
    return rc;
}

/* Answers the caller with result (borrowed) or the recorded failure; frees f. */
static void fan_finish(fan_t *f, json_t *result)
{
    if (f->status)
        f->cb(f->status, NULL, f->errmsg, f->data);
    else
        f->cb(0, result, NULL, f->data);
    fan_free(f);
}

/* A flat [k, v, k, v…] reply (HGETALL) as an object. */
static json_t *pairs_object(const json_t *flat)
{
    json_t *o = json_object();
    for (size_t i = 0; i + 1 < json_array_size(flat); i += 2) {
        const char *k = json_string_value(json_array_get(flat, i));
        if (k)
            json_object_set(o, k, json_array_get(flat, i + 1));
    }
    return o;
}

/* ---- Conversation lists ---- */

typedef struct phase {
    const char *index; /* the shard zset */
    bool desc;         /* newest first */
} phase_t;

typedef struct status_phases {
    const char *status;
    phase_t phases[5];
    int n;
} status_phases_t;

/* Which indexes a status filter walks, in order: awaiting a reply first, by urgency. */
static const status_phases_t list_statuses[] = {
    {"open", {{"queue", false}, {"idle", false}}, 2},
    {"pending", {{"pending", false}}, 1},
    {"snoozed", {{"snoozed", false}}, 1},
    {"resolved", {{"resolved", true}}, 1},
    {"all",
     {{"queue", false},
      {"idle", false},
      {"pending", false},
      {"snoozed", false},
      {"resolved", true}},
     5},
};

/* A position in a list: phase (1-based), score, id; ordered as the list is. */
typedef struct pos {
    int phase;
    int64_t score;
    const char *id;
    bool desc;
    json_t *conv; /* borrowed from the shard's reply */
} pos_t;

static int pos_cmp(const void *pa, const void *pb)
{
    const pos_t *a = pa, *b = pb;
    if (a->phase != b->phase)
        return a->phase < b->phase ? -1 : 1;
    int r = a->score < b->score ? -1 : a->score > b->score ? 1 : strcmp(a->id, b->id);
    return a->desc ? -r : r;
}

typedef struct list_op {
    const status_phases_t *sp;
    unsigned limit;
} list_op_t;

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_encode(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in), o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64url[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
}

/* Decodes base64url without padding; returns false on a bad character or overflow. */
static bool b64_decode(const char *in, char *out, size_t cap)
{
    uint32_t v = 0;
    int bits = 0;
    size_t o = 0;
    for (const char *p = in; *p; p++) {
        const char *k = strchr(b64url, *p);
        if (!k)
            return false;
        v = (v << 6) | (uint32_t)(k - b64url);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o + 1 >= cap)
                return false;
            out[o++] = (char)((v >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return true;
}

static json_t *cursor_json(const list_op_t *op, const pos_t *p)
{
    char raw[160], enc[240];
    snprintf(raw, sizeof(raw), "%s:%" PRId64 ":%s", op->sp->phases[p->phase - 1].index, p->score,
             p->id);
    b64_encode(raw, enc, sizeof(enc));
    return json_string(enc);
}

/* Parses a cursor into [phase, score, id] for the shards; NULL when malformed. */
static json_t *cursor_parse(const status_phases_t *sp, const char *cursor)
{
    char raw[160], index[16], id[SB_ID_MAX + 1];
    long long score;
    int used = 0;
    if (strlen(cursor) > 200 || !b64_decode(cursor, raw, sizeof(raw)) ||
        sscanf(raw, "%15[a-z]:%lld:%40[a-z0-9_]%n", index, &score, id, &used) != 3 ||
        raw[used] != '\0')
        return NULL;
    for (int i = 0; i < sp->n; i++)
        if (strcmp(sp->phases[i].index, index) == 0)
            return json_pack("[i, I, s]", i + 1, (json_int_t)score, id);
    return NULL;
}

static bool pos_from(const list_op_t *op, const json_t *a, pos_t *p)
{
    p->phase = (int)json_integer_value(json_array_get(a, 0));
    p->score = json_integer_value(json_array_get(a, 1));
    p->id = json_string_value(json_array_get(a, 2));
    p->conv = json_array_get(a, 3);
    if (p->phase < 1 || p->phase > op->sp->n || !p->id)
        return false;
    p->desc = op->sp->phases[p->phase - 1].desc;
    return true;
}

/* Every shard answered: merge their pages, cut at the least complete shard. */
static void list_done(fan_t *f)
{
    list_op_t *op = f->op;
    size_t cap = 0, n = 0;
    for (size_t i = 0; i < json_array_size(f->parts); i++)
        cap += json_array_size(json_object_get(json_array_get(f->parts, i), "items"));
    pos_t *all = sb_malloc((cap + 1) * sizeof(pos_t));
    pos_t cut = {0};
    bool has_cut = false;
    for (size_t i = 0; i < json_array_size(f->parts) && !f->status; i++) {
        json_t *part = json_array_get(f->parts, i), *v;
        size_t k;
        json_array_foreach(json_object_get(part, "items"), k, v)
        {
            if (pos_from(op, v, &all[n]))
                n++;
        }
        pos_t u;
        if (pos_from(op, json_object_get(part, "upto"), &u) &&
            (!has_cut || pos_cmp(&u, &cut) < 0)) {
            cut = u;
            has_cut = true;
        }
    }
    qsort(all, n, sizeof(pos_t), pos_cmp);
    json_t *items = json_array();
    size_t emitted = 0;
    while (emitted < n && emitted < op->limit && (!has_cut || pos_cmp(&all[emitted], &cut) <= 0))
        json_array_append(items, all[emitted++].conv);
    json_t *next = json_null();
    if (emitted == op->limit && (emitted < n || has_cut))
        next = cursor_json(op, &all[emitted - 1]);
    else if (emitted < op->limit && has_cut)
        next = cursor_json(op, &cut);
    json_t *res = json_pack("{s:o, s:o}", "items", items, "next", next);
    sb_free(all);
    sb_free(op);
    fan_finish(f, res);
    json_decref(res);
}

int sb_store_list(sb_store_t *st, const sb_list_query_t *q, sb_store_cb cb, void *data)
{
    const char *status = q->status && *q->status ? q->status : "open";
    const status_phases_t *sp = NULL;
    for (size_t i = 0; i < SB_ARRAY_LEN(list_statuses); i++)
        if (strcmp(list_statuses[i].status, status) == 0)
            sp = &list_statuses[i];
    unsigned limit = q->limit ? q->limit : 50;
    if (!sp || limit > 200)
        return SB_EINVAL;
    json_t *cursor = NULL;
    if (q->cursor && *q->cursor && !(cursor = cursor_parse(sp, q->cursor)))
        return SB_EINVAL;
    json_t *args = json_pack("{s:i, s:[]}", "limit", limit, "phases");
    for (int i = 0; i < sp->n; i++)
        json_array_append_new(
            json_object_get(args, "phases"),
            json_pack("{s:s, s:b}", "k", sp->phases[i].index, "desc", sp->phases[i].desc));
    if (cursor)
        json_object_set_new(args, "cursor", cursor);
    if (q->channel && *q->channel)
        json_object_set_new(args, "channel", json_string(q->channel));
    if (q->assignee && strcmp(q->assignee, "any") != 0)
        json_object_set_new(args, "assignee",
                            json_string(strcmp(q->assignee, "none") == 0 ? "" : q->assignee));
    fan_t *f = fan_new(st, cb, data);
    list_op_t *op = SB_NEW(list_op_t);
    op->sp = sp;
    op->limit = limit;
    f->op = op;
    fan_begin(f, list_done);
    int rc = 0;
    for (unsigned i = 0; i < sb_store_opts(st)->shards && !rc; i++)
        rc = fan_fcall(f, "sb_list", i, json_deep_copy(args), 0);
    json_decref(args);
    if (rc && f->pending == 1) { /* nothing was sent: the callback must not run */
        sb_free(op);
        fan_free(f);
        return rc;
    }
    fan_end(f);
    return 0;
}

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

static void contact_done(fan_t *f)
{
    if (f->status) {
        sb_free(f->op);
        fan_finish(f, NULL);
        return;
    }
    json_t *res = pairs_object(json_array_get(f->parts, 0));
    json_t *convs = merged_convs(f->parts, 2);
    if (json_object_size(res) == 0 && json_array_size(convs) == 0) {
        fan_fail(f, SB_ENOTFOUND, "no such contact");
    } else {
        if (!json_object_get(res, "id"))
            json_object_set_new(res, "id", json_string(f->op));
        json_t *handles = json_array_get(f->parts, 1);
        json_object_set(res, "handles", json_is_array(handles) ? handles : json_array());
        json_object_set(res, "conversations", convs);
    }
    json_decref(convs);
    sb_free(f->op);
    fan_finish(f, res);
    json_decref(res);
}

int sb_store_contact_get(sb_store_t *st, const char *contact, sb_store_cb cb, void *data)
{
    if (!sb_id_valid(contact, "ct_"))
        return SB_EINVAL;
    const char *prefix = sb_store_opts(st)->prefix;
    char hkey[SB_KEY_MAX], ikey[SB_KEY_MAX];
    snprintf(hkey, sizeof(hkey), "%scontact:%s", prefix, contact);
    snprintf(ikey, sizeof(ikey), "%scontact:%s:idents", prefix, contact);
    fan_t *f = fan_new(st, cb, data);
    f->op = sb_strdup(contact);
    fan_begin(f, contact_done);
    const char *hgetall[] = {"HGETALL", hkey};
    const char *smembers[] = {"SMEMBERS", ikey};
    int rc = fan_cmd(f, 2, hgetall);
    if (rc) {
        sb_free(f->op);
        fan_free(f);
        return rc;
    }
    if (fan_cmd(f, 2, smembers) == 0) {
        for (unsigned i = 0; i < sb_store_opts(st)->shards; i++)
            if (fan_fcall(f, "sb_contact_convs", i, json_pack("{s:s}", "contact", contact), 0))
                break;
    }
    fan_end(f);
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

static void merge_finish(fan_t *f)
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
    fan_finish(f, res);
    json_decref(res);
}

static int merge_shard(fan_t *f, unsigned shard);

static void on_merge_shard(int status, json_t *res, const char *errmsg, void *data)
{
    fan_call_t *fc = data;
    fan_t *f = fc->f;
    merge_op_t *op = f->op;
    unsigned shard = (unsigned)fc->idx;
    sb_free(fc);
    if (status) {
        fan_fail(f, status, errmsg);
    } else {
        json_array_extend(op->moved, json_object_get(res, "moved"));
        if (json_is_true(json_object_get(res, "more")) && merge_shard(f, shard) == 0)
            return; /* still pending: the next batch of this shard is on its way */
        json_t *latest = json_object_get(res, "latest");
        if (json_is_object(latest) && shard != sb_store_shard(f->st, op->into))
            json_object_update_missing(op->latest, latest);
    }
    fan_end(f);
}

/* Moves the next batch of the other contact's conversations of one shard. */
static int merge_shard(fan_t *f, unsigned shard)
{
    merge_op_t *op = f->op;
    json_t *a =
        json_pack("{s:s, s:s, s:O}", "from", op->other, "into", op->into, "author", op->author);
    if (op->name)
        json_object_set_new(a, "name", json_string(op->name));
    fan_call_t *fc = SB_NEW(fan_call_t);
    fc->f = f;
    fc->idx = shard;
    int rc = sb__store_fcall(f->st, "sb_merge", shard, a, 25, on_merge_shard, fc);
    if (rc) {
        fan_fail(f, rc, NULL);
        sb_free(fc);
    }
    return rc;
}

static void on_linked(int status, json_t *res, const char *errmsg, void *data)
{
    fan_call_t *fc = data;
    fan_t *f = fc->f;
    sb_free(fc);
    if (status)
        fan_fail(f, status, errmsg);
    fan_end(f);
}

/*
 * Every shard is merged: the contact's latest conversations per channel that live in
 * other shards are recorded in its own shard (sb_link_latest, where it has none for that
 * channel), so the customer's next message on that channel continues them.
 */
static void merge_link(fan_t *f)
{
    merge_op_t *op = f->op;
    if (f->status || json_object_size(op->latest) == 0) {
        merge_finish(f);
        return;
    }
    fan_begin(f, merge_finish);
    fan_call_t *fc = SB_NEW(fan_call_t);
    fc->f = f;
    f->pending++;
    json_t *a = json_pack("{s:s, s:O}", "contact", op->into, "latest", op->latest);
    int rc = sb__store_fcall(f->st, "sb_link_latest", sb_store_shard(f->st, op->into), a, 0,
                             on_linked, fc);
    if (rc) {
        f->pending--;
        fan_fail(f, rc, NULL);
        sb_free(fc);
    }
    fan_end(f);
}

static void merge_handles_done(fan_t *f)
{
    if (f->status) {
        merge_finish(f);
        return;
    }
    fan_begin(f, merge_link);
    for (unsigned i = 0; i < sb_store_opts(f->st)->shards; i++) {
        f->pending++;
        if (merge_shard(f, i) != 0)
            f->pending--;
    }
    fan_end(f);
}

/* Points every handle of the other contact at this one (SET, SADD, then SREM). */
static void merge_marked(fan_t *f)
{
    merge_op_t *op = f->op;
    json_t *handles = json_array_get(f->parts, json_array_size(f->parts) - 1);
    if (f->status || !json_is_array(handles)) {
        fan_fail(f, SB_EREDIS, "could not read the handles");
        merge_finish(f);
        return;
    }
    json_array_extend(op->handles, handles);
    const char *prefix = sb_store_opts(f->st)->prefix;
    char ikey[SB_KEY_MAX], okey[SB_KEY_MAX];
    snprintf(ikey, sizeof(ikey), "%scontact:%s:idents", prefix, op->into);
    snprintf(okey, sizeof(okey), "%scontact:%s:idents", prefix, op->other);
    fan_begin(f, merge_handles_done);
    size_t i;
    json_t *h;
    json_array_foreach(op->handles, i, h)
    {
        char *key = sb_asprintf("%sident:%s", prefix, json_string_value(h));
        const char *set[] = {"SET", key, op->into};
        const char *add[] = {"SADD", ikey, json_string_value(h)};
        const char *rem[] = {"SREM", okey, json_string_value(h)};
        fan_cmd(f, 3, set);
        fan_cmd(f, 3, add);
        fan_cmd(f, 3, rem);
        sb_free(key);
    }
    fan_end(f);
}

/* Both contacts read: validate, mark the other as merged, copy missing fields. */
static void merge_read(fan_t *f)
{
    merge_op_t *op = f->op;
    if (f->status) {
        merge_finish(f);
        return;
    }
    json_t *into = pairs_object(json_array_get(f->parts, 0));
    json_t *other = pairs_object(json_array_get(f->parts, 1));
    const char *other_to = json_string_value(json_object_get(other, "merged_into"));
    const char *into_to = json_string_value(json_object_get(into, "merged_into"));
    if (json_object_size(into) == 0 || json_object_size(other) == 0)
        fan_fail(f, SB_ENOTFOUND, "no such contact");
    else if (into_to)
        fan_fail(f, SB_ECONFLICT, "this contact was itself merged into another");
    else if (other_to && strcmp(other_to, op->into) != 0)
        fan_fail(f, SB_ECONFLICT, "the other contact was merged into another");
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
    const char *prefix = sb_store_opts(f->st)->prefix;
    char ikey[SB_KEY_MAX], okey[SB_KEY_MAX], ids[SB_KEY_MAX], now[24];
    snprintf(ikey, sizeof(ikey), "%scontact:%s", prefix, op->into);
    snprintf(okey, sizeof(okey), "%scontact:%s", prefix, op->other);
    snprintf(ids, sizeof(ids), "%scontact:%s:idents", prefix, op->other);
    snprintf(now, sizeof(now), "%lld", (long long)sb_now_ms());
    fan_begin(f, merge_marked);
    const char *mark[] = {"HSET", okey, "merged_into", op->into, "merged_at", now};
    fan_cmd(f, 6, mark);
    const char *k;
    json_t *v;
    json_object_foreach(other, k, v)
    {
        if (strcmp(k, "id") && strcmp(k, "created_at") && strncmp(k, "merged_", 7) &&
            json_is_string(v)) {
            const char *cp[] = {"HSETNX", ikey, k, json_string_value(v)};
            fan_cmd(f, 4, cp);
        }
    }
    const char *members[] = {"SMEMBERS", ids};
    fan_cmd(f, 2, members);
    json_decref(into);
    json_decref(other);
    fan_end(f);
}

int sb_store_contact_merge(sb_store_t *st, const char *into, const char *other,
                           const sb_actor_t *who, sb_store_cb cb, void *data)
{
    if (!sb_id_valid(into, "ct_") || !sb_id_valid(other, "ct_") || strcmp(into, other) == 0)
        return SB_EINVAL;
    fan_t *f = fan_new(st, cb, data);
    merge_op_t *op = SB_NEW(merge_op_t);
    snprintf(op->into, sizeof(op->into), "%s", into);
    snprintf(op->other, sizeof(op->other), "%s", other);
    op->author = sb__store_actor_json(who);
    op->handles = json_array();
    op->moved = json_array();
    op->latest = json_object();
    f->op = op;
    const char *prefix = sb_store_opts(st)->prefix;
    char ikey[SB_KEY_MAX], okey[SB_KEY_MAX];
    snprintf(ikey, sizeof(ikey), "%scontact:%s", prefix, into);
    snprintf(okey, sizeof(okey), "%scontact:%s", prefix, other);
    fan_begin(f, merge_read);
    const char *a[] = {"HGETALL", ikey};
    const char *b[] = {"HGETALL", okey};
    int rc = fan_cmd(f, 2, a);
    if (rc) {
        json_decref(op->author);
        json_decref(op->handles);
        json_decref(op->moved);
        sb_free(op);
        fan_free(f);
        return rc;
    }
    fan_cmd(f, 2, b);
    fan_end(f);
    return 0;
}

/* ---- Stats ---- */

static int cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

/* Nearest-rank percentile of sorted values. */
static int64_t percentile(const int64_t *v, size_t n, unsigned pct)
{
    size_t rank = (n * pct + 99) / 100;
    return v[rank ? rank - 1 : 0];
}

/* {"<channel>":{"p50":…,"p90":…,"n":…}} from [[ms, channel], …] samples. */
static json_t *response_percentiles(const json_t *samples)
{
    json_t *by = json_object(), *out = json_object();
    size_t i;
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        const char *ch = json_string_value(json_array_get(s, 1));
        if (!ch || !*ch)
            continue;
        json_t *list = json_object_get(by, ch);
        if (!list)
            json_object_set_new(by, ch, list = json_array());
        json_array_append(list, json_array_get(s, 0));
    }
    const char *ch;
    json_t *list;
    json_object_foreach(by, ch, list)
    {
        size_t n = json_array_size(list);
        int64_t *v = sb_malloc(n * sizeof(int64_t));
        for (size_t k = 0; k < n; k++)
            v[k] = json_integer_value(json_array_get(list, k));
        qsort(v, n, sizeof(int64_t), cmp_i64);
        json_object_set_new(out, ch,
                            json_pack("{s:I, s:I, s:I}", "p50", (json_int_t)percentile(v, n, 50),
                                      "p90", (json_int_t)percentile(v, n, 90), "n", (json_int_t)n));
        sb_free(v);
    }
    json_decref(by);
    return out;
}

/* Adds a shard's `counts` ("queue:webchat" -> n) into by_channel and breaches. */
static void add_counts(json_t *by_channel, json_int_t *breaches, json_t *counts)
{
    const char *k;
    json_t *v;
    json_object_foreach(counts, k, v)
    {
        json_int_t n = json_integer_value(v);
        const char *colon = strchr(k, ':');
        if (strcmp(k, "breaches") == 0)
            *breaches += n;
        if (!colon || (strncmp(k, "queue:", 6) != 0 && strncmp(k, "idle:", 5) != 0) || n <= 0)
            continue;
        json_t *ch = json_object_get(by_channel, colon + 1);
        if (!ch)
            json_object_set_new(by_channel, colon + 1,
                                ch = json_pack("{s:i, s:i}", "open", 0, "queue", 0));
        json_t *open = json_object_get(ch, "open");
        json_integer_set(open, json_integer_value(open) + n);
        if (k[0] == 'q') {
            json_t *q = json_object_get(ch, "queue");
            json_integer_set(q, json_integer_value(q) + n);
        }
    }
}

static void stats_done(fan_t *f)
{
    json_int_t sum[5] = {0}, breaches = 0;
    static const char *const idx[] = {"queue", "idle", "pending", "snoozed", "resolved"};
    json_t *by_channel = json_object(), *samples = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(f->parts, i, part)
    {
        for (int k = 0; k < 5; k++)
            sum[k] += json_integer_value(json_object_get(part, idx[k]));
        add_counts(by_channel, &breaches, json_object_get(part, "counts"));
        json_array_extend(samples, json_object_get(part, "first_response"));
    }
    json_t *res =
        json_pack("{s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:o, s:o, s:I}", "queue_depth", sum[0],
                  "open", sum[0] + sum[1], "by_status", "open", sum[0] + sum[1], "pending", sum[2],
                  "snoozed", sum[3], "resolved", sum[4], "by_channel", by_channel,
                  "first_response_ms", response_percentiles(samples), "breaches", breaches);
    json_decref(samples);
    fan_finish(f, res);
    json_decref(res);
}

int sb_store_stats(sb_store_t *st, sb_store_cb cb, void *data)
{
    fan_t *f = fan_new(st, cb, data);
    fan_begin(f, stats_done);
    int rc = 0;
    for (unsigned i = 0; i < sb_store_opts(st)->shards && !rc; i++)
        rc = fan_fcall(f, "sb_stats", i, json_object(), 0);
    if (rc && f->pending == 1) {
        fan_free(f);
        return rc;
    }
    fan_end(f);
    return 0;
}

/* ---- Snooze wake-ups ---- */

int sb_store_wake(sb_store_t *st, unsigned shard, sb_store_cb cb, void *data)
{
    if (shard >= sb_store_opts(st)->shards)
        return SB_EINVAL;
    return sb__store_fcall(st, "sb_wake", shard, json_object(), SB_STORE_WAKE_BATCH, cb, data);
}

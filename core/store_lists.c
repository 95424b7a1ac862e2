/* SPDX-License-Identifier: MIT */
/*
 * The conversation list (store.h: sb_store_list, GET /v1/conversations): each shard's
 * page from `sb_list` (functions.lua), merged here by index position and cut at the
 * least complete shard, with an opaque base64url cursor naming the last position.
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
static void list_done(sb__fan_t *f)
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
    sb__fan_finish(f, res);
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
    sb__fan_t *f = sb__fan_new(st, cb, data);
    list_op_t *op = SB_NEW(list_op_t);
    op->sp = sp;
    op->limit = limit;
    f->op = op;
    sb__fan_begin(f, list_done);
    int rc = 0;
    for (unsigned i = 0; i < sb_store_opts(st)->shards && !rc; i++)
        rc = sb__fan_fcall(f, "sb_list", i, json_deep_copy(args), 0);
    json_decref(args);
    if (rc && f->pending == 1) { /* nothing was sent: the callback must not run */
        sb_free(op);
        sb__fan_free(f);
        return rc;
    }
    sb__fan_end(f);
    return 0;
}

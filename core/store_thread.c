/* SPDX-License-Identifier: MIT */
/*
 * Threading and connector cursors (store.h; the rules in docs/threading.md): which
 * conversation an inbound message continues, found from the external message ids it
 * answers (`<prefix>mid:<id>` -> "<cid>[ <mid>]", written by sb_store_thread_link) and
 * the conversation ids its connector decoded, with a participant check (the conversation
 * must be the sender's, following contact merges, on the message's channel); and the
 * cursors connectors keep in `<prefix>cursor:<name>` (an IMAP mailbox's UIDVALIDITY and
 * last UID, a Mastodon account's since_id).
 *
 * Nothing here knows a channel's format: a connector passes ids and candidates in its
 * order of preference. The mid: keys carry no hash tag and each candidate conversation
 * lives in its own shard, so a lookup is rounds of single-key commands and single-shard
 * FCALLs through the fan-out (store_fan.c), never one command over several slots.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

/* ---- A store operation as one call of a round ---- */

typedef struct op_slot {
    sb__fan_t *f;
    size_t idx;
} op_slot_t;

/* A store operation's answer into its slot of parts; SB_ENOTFOUND leaves it null. */
static void on_op_slot(int status, json_t *res, const char *errmsg, void *data)
{
    op_slot_t *s = data;
    if (status == 0)
        json_array_set(s->f->parts, s->idx, res);
    else if (status != SB_ENOTFOUND)
        sb__fan_fail(s->f, status, errmsg);
    sb__fan_t *f = s->f;
    sb_free(s);
    sb__fan_end(f);
}

typedef int (*op_fn)(sb_store_t *st, const char *id, sb_store_cb cb, void *data);

/* Calls op(id) into the next slot of parts. Returns the issue error (also recorded). */
static int fan_op(sb__fan_t *f, op_fn op, const char *id)
{
    op_slot_t *s = SB_NEW(op_slot_t);
    s->f = f;
    s->idx = json_array_size(f->parts);
    json_array_append_new(f->parts, json_null());
    f->pending++;
    int rc = op(f->st, id, on_op_slot, s);
    if (rc) {
        sb__fan_fail(f, rc, NULL);
        f->pending--;
        sb_free(s);
    }
    return rc;
}

/* The conversation id a mid: record names ("<cid>" or "<cid> <mid>"), into cid. */
static bool record_conv(const char *v, char cid[SB_ID_MAX])
{
    size_t n = v ? strcspn(v, " ") : 0;
    if (n == 0 || n >= SB_ID_MAX)
        return false;
    memcpy(cid, v, n);
    cid[n] = '\0';
    return sb_id_valid(cid, "c_");
}

/* Sends one command whose reply done turns into the answer (done frees opv; after an
 * issue error nothing runs and opv is still the caller's). */
static int one_cmd(sb_store_t *st, int argc, const char **argv, sb__fan_done_fn done, void *opv,
                   sb_store_cb cb, void *data)
{
    sb__fan_t *f = sb__fan_new(st, cb, data);
    f->op = opv;
    sb__fan_begin(f, done);
    int rc = sb__fan_cmd(f, argc, argv);
    if (rc) {
        sb__fan_free(f);
        return rc;
    }
    sb__fan_end(f);
    return 0;
}

/* ---- Finding the conversation a message continues ---- */

#define MAX_CANDS (SB_THREAD_MAX_REFS + SB_THREAD_MAX_CONVS)

typedef struct cand {
    char cid[SB_ID_MAX];
    const char *via; /* "ref" or "conv" */
} cand_t;

typedef struct find_op {
    char *channel;
    char contact[SB_ID_MAX];
    char live[SB_ID_MAX]; /* the contact at the end of contact's merged_into links */
    char convs[SB_THREAD_MAX_CONVS][SB_ID_MAX];
    size_t nconvs;
    cand_t cands[MAX_CANDS];
    size_t ncands;
    json_t *states; /* each candidate's conversation, or null when it does not exist */
    json_t *owners; /* other contacts met -> the contact each was merged into (or itself) */
} find_op_t;

static void find_answer(sb__fan_t *f, const cand_t *win, int rejected)
{
    find_op_t *op = f->op;
    json_t *res = NULL;
    if (!f->status)
        res = json_pack("{s:s?, s:s?, s:i}", "conv", win ? win->cid : NULL, "via",
                        win ? win->via : NULL, "rejected", rejected);
    sb_free(op->channel);
    json_decref(op->states);
    json_decref(op->owners);
    sb_free(op);
    sb__fan_finish(f, res);
    json_decref(res);
}

static bool is_asker(const find_op_t *op, const char *ct)
{
    return ct && (strcmp(ct, op->contact) == 0 || strcmp(ct, op->live) == 0);
}

/* 1: the asker's conversation on the channel; 0: not; -1: another contact's, which may
 * have been merged into the asker's (op->owners not read yet). */
static int judge(const find_op_t *op, const json_t *conv)
{
    const char *ch = json_string_value(json_object_get(conv, "channel"));
    const char *ct = json_string_value(json_object_get(json_object_get(conv, "contact"), "id"));
    if (!ch || strcmp(ch, op->channel) != 0 || !ct)
        return 0;
    if (is_asker(op, ct))
        return 1;
    if (!op->owners)
        return -1;
    return is_asker(op, json_string_value(json_object_get(op->owners, ct))) ? 1 : 0;
}

/* The first acceptable candidate answers; the others that exist count as rejected. */
static void find_decide(sb__fan_t *f)
{
    find_op_t *op = f->op;
    const cand_t *win = NULL;
    int rejected = 0;
    for (size_t i = 0; i < op->ncands; i++) {
        const json_t *conv = json_array_get(op->states, i);
        if (!json_is_object(conv))
            continue;
        if (judge(op, conv) == 1) {
            if (!win)
                win = &op->cands[i];
        } else {
            rejected++;
        }
    }
    find_answer(f, win, rejected);
}

static void on_owners(sb__fan_t *f)
{
    find_op_t *op = f->op;
    if (f->status) {
        find_answer(f, NULL, 0);
        return;
    }
    /* each part: {"id":asked,"merged_into":…}, or null for a contact with no record */
    size_t i;
    json_t *found;
    json_array_foreach(f->parts, i, found)
    {
        const char *ct = json_string_value(json_object_get(found, "id"));
        const char *into = json_string_value(json_object_get(found, "merged_into"));
        if (ct)
            json_object_set_new(op->owners, ct, json_string(into ? into : ct));
    }
    find_decide(f);
}

static void on_states(sb__fan_t *f)
{
    find_op_t *op = f->op;
    if (f->status) {
        find_answer(f, NULL, 0);
        return;
    }
    op->states = json_copy(f->parts);
    /* other contacts' conversations on this channel: were they merged into the asker? */
    json_t *others = json_object();
    for (size_t i = 0; i < op->ncands; i++) {
        const json_t *conv = json_array_get(op->states, i);
        if (json_is_object(conv) && judge(op, conv) == -1)
            json_object_set_new(
                others, json_string_value(json_object_get(json_object_get(conv, "contact"), "id")),
                json_null());
    }
    if (json_object_size(others) == 0) {
        json_decref(others);
        find_decide(f);
        return;
    }
    op->owners = others;
    sb__fan_begin(f, on_owners);
    const char *ct;
    json_t *v;
    json_object_foreach(others, ct, v)
    {
        if (fan_op(f, sb_store_contact_find, ct) != 0)
            break;
    }
    sb__fan_end(f);
}

static void add_cand(find_op_t *op, const char *cid, const char *via)
{
    for (size_t i = 0; i < op->ncands; i++)
        if (strcmp(op->cands[i].cid, cid) == 0)
            return; /* the same conversation again: judged once */
    cand_t *c = &op->cands[op->ncands++];
    snprintf(c->cid, sizeof(c->cid), "%s", cid);
    c->via = via;
}

static void on_refs(sb__fan_t *f)
{
    find_op_t *op = f->op;
    if (f->status) {
        find_answer(f, NULL, 0);
        return;
    }
    /* parts: [contact_find of the asker | null, GET of each ref…] */
    const char *into =
        json_string_value(json_object_get(json_array_get(f->parts, 0), "merged_into"));
    snprintf(op->live, sizeof(op->live), "%s",
             into && sb_id_valid(into, "ct_") ? into : op->contact);
    char cid[SB_ID_MAX];
    for (size_t i = 1; i < json_array_size(f->parts); i++)
        if (record_conv(json_string_value(json_array_get(f->parts, i)), cid))
            add_cand(op, cid, "ref");
    for (size_t i = 0; i < op->nconvs; i++)
        add_cand(op, op->convs[i], "conv");
    if (op->ncands == 0) {
        find_answer(f, NULL, 0);
        return;
    }
    sb__fan_begin(f, on_states);
    for (size_t i = 0; i < op->ncands; i++)
        if (fan_op(f, sb_store_get, op->cands[i].cid) != 0)
            break;
    sb__fan_end(f);
}

int sb_store_thread_find(sb_store_t *st, const char *channel, const char *contact,
                         const char *const *refs, size_t nrefs, const char *const *convs,
                         size_t nconvs, sb_store_cb cb, void *data)
{
    if (!channel || !*channel || !sb_id_valid(contact, "ct_") || (nrefs && !refs) ||
        (nconvs && !convs))
        return SB_EINVAL;
    find_op_t *op = SB_NEW(find_op_t);
    op->channel = sb_strdup(channel);
    snprintf(op->contact, sizeof(op->contact), "%s", contact);
    for (size_t i = 0; i < nconvs && i < SB_THREAD_MAX_CONVS; i++)
        if (sb_id_valid(convs[i], "c_"))
            snprintf(op->convs[op->nconvs++], SB_ID_MAX, "%s", convs[i]);
    sb__fan_t *f = sb__fan_new(st, cb, data);
    f->op = op;
    sb__fan_begin(f, on_refs);
    int rc = fan_op(f, sb_store_contact_find, contact);
    if (rc) {
        sb_free(op->channel);
        sb_free(op);
        sb__fan_free(f);
        return rc;
    }
    for (size_t i = 0; i < nrefs && i < SB_THREAD_MAX_REFS; i++) {
        if (!refs[i] || !*refs[i])
            continue;
        sb_key_t key;
        sb_key_mid(&key, st->prefix, refs[i]); /* always fits: long ids are hashed */
        const char *argv[] = {"GET", key.str};
        if (key.err)
            sb__fan_fail(f, key.err, NULL);
        if (key.err || sb__fan_cmd(f, 2, argv) != 0)
            break; /* the continuation answers the recorded failure */
    }
    sb__fan_end(f);
    return 0;
}

/* ---- Recording and reading external message ids ---- */

static void on_linked(sb__fan_t *f)
{
    json_t *res = NULL;
    if (!f->status) {
        size_t linked = 0, n = json_array_size(f->parts);
        for (size_t i = 0; i < n; i++)
            linked += json_is_null(json_array_get(f->parts, i));
        res = json_pack("{s:I, s:I}", "linked", (json_int_t)linked, "existing",
                        (json_int_t)(n - linked));
    }
    sb__fan_finish(f, res);
    json_decref(res);
}

int sb_store_thread_link(sb_store_t *st, const char *conv, const char *msg, const char *const *ids,
                         size_t n, sb_store_cb cb, void *data)
{
    if (!sb_id_valid(conv, "c_") || (msg && !sb_id_valid(msg, "m_")) || n == 0 || !ids)
        return SB_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!ids[i] || !*ids[i])
            return SB_EINVAL;
    char value[2 * SB_ID_MAX], ttl[16];
    snprintf(value, sizeof(value), "%s%s%s", conv, msg ? " " : "", msg ? msg : "");
    snprintf(ttl, sizeof(ttl), "%u", st->opts.thread_ttl_s);
    sb__fan_t *f = sb__fan_new(st, cb, data);
    sb__fan_begin(f, on_linked);
    for (size_t i = 0; i < n; i++) {
        sb_key_t key;
        sb_key_mid(&key, st->prefix, ids[i]);
        /* NX: the first conversation an id was recorded for keeps it; GET tells which */
        const char *argv[] = {"SET", key.str, value, "NX", "GET", "EX", ttl};
        int rc = key.err ? key.err : sb__fan_cmd(f, st->opts.thread_ttl_s ? 7 : 5, argv);
        if (rc && i == 0) {
            sb__fan_free(f); /* nothing sent: the callback must not run */
            return rc;
        }
        if (rc) {
            sb__fan_fail(f, rc, NULL);
            break;
        }
    }
    sb__fan_end(f);
    return 0;
}

static void on_thread_get(sb__fan_t *f)
{
    json_t *res = NULL;
    if (!f->status) {
        const char *v = json_string_value(json_array_get(f->parts, 0));
        char cid[SB_ID_MAX];
        const char *sp = v ? strchr(v, ' ') : NULL;
        if (record_conv(v, cid))
            res = json_pack("{s:s, s:s?}", "conv", cid, "msg",
                            sp && sb_id_valid(sp + 1, "m_") ? sp + 1 : NULL);
        else
            res = json_null();
    }
    sb__fan_finish(f, res);
    json_decref(res);
}

int sb_store_thread_get(sb_store_t *st, const char *id, sb_store_cb cb, void *data)
{
    if (!id || !*id)
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_mid(&key, st->prefix, id) != 0)
        return key.err;
    const char *argv[] = {"GET", key.str};
    return one_cmd(st, 2, argv, on_thread_get, NULL, cb, data);
}

/* ---- Connector cursors ---- */

static bool cursor_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > SB_CURSOR_NAME_MAX)
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@+-") ==
           n;
}

static void on_cursor_get(sb__fan_t *f)
{
    json_t *res = f->status ? NULL : sb__store_pairs_object(json_array_get(f->parts, 0));
    sb__fan_finish(f, res);
    json_decref(res);
}

static void on_cursor_set(sb__fan_t *f)
{
    json_t *res = f->status ? NULL : json_pack("{s:s}", "name", (const char *)f->op);
    sb_free(f->op);
    sb__fan_finish(f, res);
    json_decref(res);
}

int sb_store_cursor_get(sb_store_t *st, const char *name, sb_store_cb cb, void *data)
{
    if (!cursor_name_valid(name))
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_cursor(&key, st->prefix, name) != 0)
        return key.err;
    const char *argv[] = {"HGETALL", key.str};
    return one_cmd(st, 2, argv, on_cursor_get, NULL, cb, data);
}

#define CURSOR_MAX_FIELDS 64

int sb_store_cursor_set(sb_store_t *st, const char *name, const json_t *fields, sb_store_cb cb,
                        void *data)
{
    size_t n = json_object_size(fields);
    if (!cursor_name_valid(name) || !json_is_object(fields) || n == 0 || n > CURSOR_MAX_FIELDS)
        return SB_EINVAL;
    sb_key_t key;
    if (sb_key_cursor(&key, st->prefix, name) != 0)
        return key.err;
    const char *argv[2 + 2 * CURSOR_MAX_FIELDS] = {"HSET", key.str};
    int argc = 2;
    json_t *copy = json_deep_copy(fields); /* iterable (fields is const); argv points into it */
    const char *k;
    json_t *v;
    json_object_foreach(copy, k, v)
    {
        const char *s = json_string_value(v);
        if (!*k || !s || strlen(s) != json_string_length(v)) {
            json_decref(copy);
            return SB_EINVAL; /* a string, without NUL bytes */
        }
        argv[argc++] = k;
        argv[argc++] = s;
    }
    char *nm = sb_strdup(name);
    int rc = one_cmd(st, argc, argv, on_cursor_set, nm, cb, data);
    json_decref(copy);
    if (rc)
        sb_free(nm);
    return rc;
}

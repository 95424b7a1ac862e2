/* SPDX-License-Identifier: MIT */
/*
 * A conversation's operations after its creation (store.h): replies, notes, state
 * changes, reads of its state and transcript, ephemeral events on its shard's events
 * stream, and snooze wake-ups. Each is one FCALL of functions.lua on the conversation's
 * shard (or a plain XADD for an ephemeral event); a wake-up is one shard per call.
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

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v)
        json_object_set_new(o, k, json_string(v));
}

static json_t *conv_args(const char *conv, const sb_actor_t *who)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    json_object_set_new(a, "author", sb__store_actor_json(who));
    if (who->admin)
        json_object_set_new(a, "admin", json_true());
    return a;
}

static void set_client_dedup(json_t *a, const sb_actor_t *who, const char *client_id)
{
    if (client_id && *client_id) {
        json_object_set_new(a, "client_id", json_string(client_id));
        char *k = sb_asprintf("c:%s:%s", who->id ? who->id : "-", client_id);
        json_object_set_new(a, "dedup", json_string(k));
        sb_free(k);
    }
}

/* A reply's caller, answered after its first_response_ms is counted (core/reports.h). */
typedef struct reply_ctx {
    sb_store_t *st;
    sb_store_cb cb;
    void *data;
} reply_ctx_t;

static void on_reply(int status, json_t *res, const char *errmsg, void *data)
{
    reply_ctx_t *rc = data;
    if (status == 0 && res)
        sb__store_frt_observe(rc->st, res);
    if (rc->cb)
        rc->cb(status, res, errmsg, rc->data);
    else if (status)
        SB_LOG_WARN("store.reply", "err=%s reply=\"%s\"", sb_err_name(status),
                    errmsg ? errmsg : "");
    sb_free(rc);
}

int sb_store_reply(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                   const char *client_id, const char *based_on, bool force, sb_store_cb cb,
                   void *data)
{
    if (!conv || !text)
        return SB_EINVAL;
    reply_ctx_t *rc = SB_NEW(reply_ctx_t);
    rc->st = st;
    rc->cb = cb;
    rc->data = data;
    json_t *a = conv_args(conv, who);
    json_object_set_new(a, "text", json_string(text));
    set_client_dedup(a, who, client_id);
    set_str(a, "based_on", based_on);
    if (force)
        json_object_set_new(a, "force", json_true());
    json_object_set(a, "served", st->served);
    int err = sb__store_fcall_msg(st, "sb_reply", sb_store_shard(st, conv), a, on_reply, rc);
    if (err)
        sb_free(rc); /* not sent: no callback */
    return err;
}

int sb_store_note(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                  const char *client_id, sb_store_cb cb, void *data)
{
    if (!conv || !text)
        return SB_EINVAL;
    json_t *a = conv_args(conv, who);
    json_object_set_new(a, "text", json_string(text));
    set_client_dedup(a, who, client_id);
    return sb__store_fcall_msg(st, "sb_note", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_rejected(sb_store_t *st, const char *conv, const char *channel, const char *from,
                      const char *reason, sb_store_cb cb, void *data)
{
    if (!sb_id_valid(conv, "c_") || !channel || !reason)
        return SB_EINVAL;
    sb_actor_t sys = {.type = "system", .name = channel};
    json_t *a = conv_args(conv, &sys);
    json_object_set_new(a, "channel", json_string(channel));
    json_object_set_new(a, "from", json_string(from ? from : ""));
    json_object_set_new(a, "reason", json_string(reason));
    return sb__store_fcall(st, "sb_rejected", sb_store_shard(st, conv), a, 1, cb, data);
}

int sb_store_act(sb_store_t *st, const char *conv, const char *action, const sb_actor_t *who,
                 json_t *args, sb_store_cb cb, void *data)
{
    if (!conv || !action)
        return SB_EINVAL;
    json_t *a = conv_args(conv, who);
    json_object_set_new(a, "action", json_string(action));
    if (args) {
        const char *k;
        json_t *v;
        json_object_foreach(args, k, v)
        {
            if (json_is_null(v))
                continue; /* absent (cjson would decode null as a true value) */
            if (strcmp(k, "steal") == 0)
                json_object_set_new(a, k, json_boolean(json_is_true(v)));
            else if (strcmp(k, "until") == 0 || strcmp(k, "priority") == 0 ||
                     strcmp(k, "tags") == 0 || strcmp(k, "reason") == 0 || strcmp(k, "to") == 0)
                json_object_set(a, k, v);
        }
    }
    return sb__store_fcall_msg(st, "sb_act", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_get(sb_store_t *st, const char *conv, sb_store_cb cb, void *data)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    return sb__store_fcall_msg(st, "sb_get", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_messages(sb_store_t *st, const char *conv, const char *after, unsigned limit,
                      sb_store_cb cb, void *data)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    set_str(a, "after", after);
    json_object_set_new(a, "limit", json_integer(limit ? limit : 100));
    return sb__store_fcall_msg(st, "sb_messages", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_public_page(sb_store_t *st, const char *conv, const char *before, const char *after,
                         unsigned limit, size_t max_bytes, sb_store_cb cb, void *data)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    set_str(a, "before", before);
    set_str(a, "after", after);
    json_object_set_new(a, "limit", json_integer(limit ? limit : 50));
    json_object_set_new(a, "max_bytes", json_integer((json_int_t)max_bytes));
    return sb__store_fcall_msg(st, "sb_public_page", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_publish(sb_store_t *st, const char *conv, const char *json, sb_store_cb cb, void *data)
{
    if (!conv || !json)
        return SB_EINVAL;
    sb_key_t key;
    char maxlen[24];
    if (sb_key_events(&key, st->prefix, sb_store_shard(st, conv)) != 0)
        return key.err;
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)st->opts.events_maxlen);
    const char *argv[] = {"XADD", key.str, "MAXLEN", "~", maxlen, "*", "conv", conv, "e", json};
    return sb__store_simple(st, conv, 10, argv, cb, data);
}

/* ---- Snooze wake-ups ---- */

int sb_store_wake(sb_store_t *st, unsigned shard, sb_store_cb cb, void *data)
{
    if (shard >= sb_store_opts(st)->shards)
        return SB_EINVAL;
    return sb__store_fcall(st, "sb_wake", shard, json_object(), SB_STORE_WAKE_BATCH, cb, data);
}

/* SPDX-License-Identifier: MIT */
/*
 * Web chat answers that go on by mail (store.h; docs/email.md): a staff answer to a
 * visitor is scheduled to be mailed later, unless the visitor's widget shows it first. The
 * schedule and the visitors' seen marks live in the conversation's shard (functions.lua:
 * followup), so taking a due entry and putting it into the email outbox is one atomic step
 * on any node: one mail, whichever node's timer gets there.
 */
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/msg.h"
#include "core/store_internal.h"
#include "core/util.h"

static json_t *entry_args(const char *op, const char *conv, const char *mid, const char *seq)
{
    if (!sb_id_valid(conv, "c_") || (mid && !sb_id_valid(mid, "m_")) || !sb_seq_valid(seq))
        return NULL;
    json_t *a = json_pack("{s:s, s:s, s:s}", "op", op, "conv", conv, "seq", seq);
    if (mid)
        json_object_set_new(a, "mid", json_string(mid));
    return a;
}

static int call(sb_store_t *st, const char *conv, json_t *a, sb_store_cb cb, void *data)
{
    if (!a)
        return SB_EINVAL;
    return sb__store_fcall(st, "sb_followup", sb_store_shard(st, conv), a, 0, cb, data);
}

int sb_store_followup_add(sb_store_t *st, const char *conv, const char *mid, const char *seq,
                          uint64_t due_ms, sb_store_cb cb, void *data)
{
    json_t *a = entry_args("add", conv, mid, seq);
    if (a)
        json_object_set_new(a, "due", json_integer((json_int_t)due_ms));
    return call(st, conv, a, cb, data);
}

int sb_store_seen(sb_store_t *st, const char *conv, const char *seq, sb_store_cb cb, void *data)
{
    return call(st, conv, entry_args("seen", conv, NULL, seq), cb, data);
}

int sb_store_followup_due(sb_store_t *st, unsigned shard, unsigned limit, sb_store_cb cb,
                          void *data)
{
    if (shard >= sb_store_opts(st)->shards)
        return SB_EINVAL;
    json_t *a = json_pack("{s:s, s:i}", "op", "due", "limit", limit ? (int)limit : 50);
    return sb__store_fcall(st, "sb_followup", shard, a, 0, cb, data);
}

int sb_store_followup_take(sb_store_t *st, const char *conv, const char *mid, const char *seq,
                           bool send, sb_store_cb cb, void *data)
{
    return call(st, conv, entry_args(send ? "send" : "drop", conv, mid, seq), cb, data);
}

/* SPDX-License-Identifier: MIT */
/*
 * SLA timers in the store (store.h; docs/sla.md "Functions"): one call takes a shard's due
 * SLA work (conversations to plan, steps to fire), another stores the plans. Firing is
 * atomic in Redis, so each step happens once whichever node's tick gets there.
 */
#include "core/err.h"
#include "core/store_internal.h"

int sb_store_sla_tick(sb_store_t *st, unsigned shard, unsigned limit, unsigned nids, sb_store_cb cb,
                      void *data)
{
    if (shard >= sb_store_opts(st)->shards || nids > 4096)
        return SB_EINVAL;
    json_t *a = json_pack("{s:i}", "limit", limit ? (int)limit : 200);
    return sb__store_fcall(st, "sb_sla_tick", shard, a, (int)nids, cb, data);
}

int sb_store_sla_set(sb_store_t *st, unsigned shard, json_t *plans, sb_store_cb cb, void *data)
{
    if (shard >= sb_store_opts(st)->shards || !json_is_array(plans)) {
        json_decref(plans);
        return SB_EINVAL;
    }
    json_t *a = json_object();
    json_object_set_new(a, "plans", plans);
    return sb__store_fcall(st, "sb_sla_set", shard, a, 0, cb, data);
}

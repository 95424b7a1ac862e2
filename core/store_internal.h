/* SPDX-License-Identifier: MIT */
/*
 * Shared between store.c and store_shards.c: the FCALL plumbing and the actor encoding,
 * so the cross-shard operations call the function library exactly like the rest.
 */
#ifndef SB_STORE_INTERNAL_H
#define SB_STORE_INTERNAL_H

#include <jansson.h>

#include "core/redis.h"
#include "core/store.h"

/**
 * Calls function fn on a shard: args (stolen) gets prefix, shard, limits and nids fresh
 * message ids. Same callback guarantee as the public operations; cb may be NULL.
 */
int sb__store_fcall(sb_store_t *st, const char *fn, unsigned shard, json_t *args, int nids,
                    sb_store_cb cb, void *data);

/** The store's command connection. */
sb_redis_t *sb__store_redis(sb_store_t *st);

/** The channels a reply may go out on, a JSON array owned by the store (store_delivery.c
 * adds to it; reply and retry send it to the functions). */
json_t *sb__store_served(sb_store_t *st);

/** {"type","id","name"} of an actor (new reference). */
json_t *sb__store_actor_json(const sb_actor_t *who);

#endif

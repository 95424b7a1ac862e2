/* SPDX-License-Identifier: MIT */
/*
 * events.c's cursor parser, for its tests and tests/fuzz/fuzz_cursor only.
 */
#ifndef SB_EVENTS_INTERNAL_H
#define SB_EVENTS_INTERNAL_H

#include <stdint.h>

/**
 * Parses a resume cursor (after= / Last-Event-ID) for `shards` shards: "0", or one stream
 * id "<ms>[-<seq>]" per shard joined by '.'. Fills ms[shards] and seq[shards] (caller's
 * storage). Returns 0 or SB_EINVAL.
 */
int sb__events_parse_cursor(const char *cursor, unsigned shards, uint64_t *ms, uint64_t *seq);

#endif

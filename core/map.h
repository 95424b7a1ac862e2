/* SPDX-License-Identifier: MIT */
/*
 * A string-keyed hash map (chained, power-of-two buckets, grows at load 1). Keys are
 * copied; values are the caller's pointers. Used for conversation -> sockets routing and
 * per-address counters, whose keys an attacker chooses: keys are hashed with SipHash-2-4
 * under a random per-process key, so nobody outside can aim many keys at one bucket.
 */
#ifndef SB_MAP_H
#define SB_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_map_entry {
    struct sb_map_entry *next;
    void *value;
    char key[]; /* NUL-terminated */
} sb_map_entry_t;

typedef struct sb_map {
    sb_map_entry_t **buckets;
    size_t nbuckets;
    size_t count;
} sb_map_t;

/** Initialises an empty map in caller storage. */
void sb_map_init(sb_map_t *m);
/** Frees the map's own memory (not the values). */
void sb_map_dispose(sb_map_t *m);
/** The value for key, or NULL. */
void *sb_map_get(const sb_map_t *m, const char *key);
/** Sets key to value (replacing). */
void sb_map_set(sb_map_t *m, const char *key, void *value);
/** Removes key; returns its value or NULL. */
void *sb_map_del(sb_map_t *m, const char *key);

/** Iteration: for (it = sb_map_first(m, &b); it; it = sb_map_next(m, it, &b)). No changes during.
 */
sb_map_entry_t *sb_map_first(const sb_map_t *m, size_t *bucket);
sb_map_entry_t *sb_map_next(const sb_map_t *m, sb_map_entry_t *e, size_t *bucket);

/**
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF", 2012) of
 * len bytes under a 16-byte key. The map's hash; exposed for its test vectors.
 */
uint64_t sb_siphash24(const unsigned char key[16], const void *data, size_t len);

#endif

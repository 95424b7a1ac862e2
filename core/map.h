/* SPDX-License-Identifier: MIT */
/*
 * A string-keyed hash map (chained, power-of-two buckets, grows at load 1). Keys are
 * copied; values are the caller's pointers. Used for conversation -> sockets routing.
 */
#ifndef SB_MAP_H
#define SB_MAP_H

#include <stddef.h>

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

#endif

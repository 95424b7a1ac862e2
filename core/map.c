/* SPDX-License-Identifier: MIT */
/* The string-keyed hash map of map.h (FNV-1a hashing). */
#include "core/map.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void sb_map_init(sb_map_t *m)
{
    m->nbuckets = 16;
    m->buckets = sb_calloc(m->nbuckets, sizeof(sb_map_entry_t *));
    m->count = 0;
}

void sb_map_dispose(sb_map_t *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        sb_map_entry_t *e = m->buckets[i];
        while (e) {
            sb_map_entry_t *next = e->next;
            sb_free(e);
            e = next;
        }
    }
    sb_free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}

void *sb_map_get(const sb_map_t *m, const char *key)
{
    for (sb_map_entry_t *e = m->buckets[hash(key) & (m->nbuckets - 1)]; e; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e->value;
    return NULL;
}

static void grow(sb_map_t *m)
{
    size_t n = m->nbuckets * 2;
    sb_map_entry_t **b = sb_calloc(n, sizeof(sb_map_entry_t *));
    for (size_t i = 0; i < m->nbuckets; i++) {
        sb_map_entry_t *e = m->buckets[i];
        while (e) {
            sb_map_entry_t *next = e->next;
            size_t k = hash(e->key) & (n - 1);
            e->next = b[k];
            b[k] = e;
            e = next;
        }
    }
    sb_free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

void sb_map_set(sb_map_t *m, const char *key, void *value)
{
    size_t k = hash(key) & (m->nbuckets - 1);
    for (sb_map_entry_t *e = m->buckets[k]; e; e = e->next) {
        if (strcmp(e->key, key) == 0) {
            e->value = value;
            return;
        }
    }
    size_t len = strlen(key);
    sb_map_entry_t *e = sb_malloc(sizeof(*e) + len + 1);
    memcpy(e->key, key, len + 1);
    e->value = value;
    e->next = m->buckets[k];
    m->buckets[k] = e;
    if (++m->count > m->nbuckets)
        grow(m);
}

void *sb_map_del(sb_map_t *m, const char *key)
{
    sb_map_entry_t **pp = &m->buckets[hash(key) & (m->nbuckets - 1)];
    for (; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) == 0) {
            sb_map_entry_t *e = *pp;
            void *v = e->value;
            *pp = e->next;
            sb_free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

sb_map_entry_t *sb_map_first(const sb_map_t *m, size_t *bucket)
{
    for (*bucket = 0; *bucket < m->nbuckets; (*bucket)++)
        if (m->buckets[*bucket])
            return m->buckets[*bucket];
    return NULL;
}

sb_map_entry_t *sb_map_next(const sb_map_t *m, sb_map_entry_t *e, size_t *bucket)
{
    if (e->next)
        return e->next;
    for ((*bucket)++; *bucket < m->nbuckets; (*bucket)++)
        if (m->buckets[*bucket])
            return m->buckets[*bucket];
    return NULL;
}

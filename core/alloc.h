/* SPDX-License-Identifier: MIT */
/*
 * Allocation. Out of memory is not recoverable for a gateway: these functions abort
 * with a message instead of returning NULL, so no caller checks for NULL. jansson is
 * made to allocate through them too (sb_alloc_init), and sb_json_dumps is the one way
 * to serialise JSON: it never hands back a NULL that could reach strlen.
 */
#ifndef SB_ALLOC_H
#define SB_ALLOC_H

#include <stddef.h>

/** malloc that never returns NULL (aborts on OOM). sb_malloc(0) returns a unique pointer. */
void *sb_malloc(size_t n);
/** calloc that never returns NULL. */
void *sb_calloc(size_t count, size_t size);
/** realloc that never returns NULL. */
void *sb_realloc(void *p, size_t n);
/** strdup that never returns NULL; sb_strdup(NULL) returns NULL. */
char *sb_strdup(const char *s);
/** strndup that never returns NULL. */
char *sb_strndup(const char *s, size_t n);
/** printf into a new heap string (caller frees with sb_free). */
char *sb_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** free; accepts NULL. */
void sb_free(void *p);

struct json_t;

/**
 * Makes jansson allocate with sb_malloc/sb_free, so that out of memory aborts there
 * like everywhere else. Call once at the start of every program, before any json_*
 * call (jansson frees with the functions it allocated with).
 */
void sb_alloc_init(void);

/**
 * Serialises j (json_dumps flags). Returns 0 and *out (NUL-terminated, free with
 * sb_free; *len its length if len is not NULL), or SB_EINVAL with *out NULL when j is
 * NULL (e.g. what json_pack returns for a string that is not UTF-8) or cannot be
 * encoded with these flags. Out of memory aborts.
 */
int sb_json_dumps(const struct json_t *j, size_t flags, char **out, size_t *len);

#define SB_NEW(type)    ((type *)sb_calloc(1, sizeof(type)))
#define SB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

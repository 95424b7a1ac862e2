/* SPDX-License-Identifier: MIT */
/*
 * Allocation. Out of memory is not recoverable for a gateway: these functions abort
 * with a message instead of returning NULL, so no caller checks for NULL.
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

#define SB_NEW(type)    ((type *)sb_calloc(1, sizeof(type)))
#define SB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif

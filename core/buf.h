/* SPDX-License-Identifier: MIT */
/*
 * Capped growable buffers (like curl's dynbuf): every buffer has a hard maximum and
 * appending past it fails with SB_ETOOBIG, leaving the content as it was.
 * The content is always NUL-terminated (the NUL is not counted in len).
 *
 * Errors are sticky: once an append has failed, every later append fails with the same
 * code (appending nothing) until sb_buf_reset, so a run of appends may be checked once
 * at the end with sb_buf_error() and no failed piece can silently vanish from the middle
 * of the output.
 */
#ifndef SB_BUF_H
#define SB_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct sb_buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max; /* hard cap on len */
    int err;    /* 0, or the first append's error (sticky until sb_buf_reset) */
} sb_buf_t;

/** Initialises an empty buffer in caller storage with a hard cap of `max` bytes. */
void sb_buf_init(sb_buf_t *b, size_t max);
/** Frees the content; the buffer can be reused after sb_buf_init. */
void sb_buf_dispose(sb_buf_t *b);
/** Empties the buffer, keeping its memory, and clears a sticky error. */
void sb_buf_reset(sb_buf_t *b);
/**
 * Appends n bytes. Returns 0, or SB_ETOOBIG (nothing appended; the buffer then stays
 * failed) or the error of an earlier failed append.
 */
int sb_buf_append(sb_buf_t *b, const void *p, size_t n);
/** Appends a NUL-terminated string. Returns as sb_buf_append. */
int sb_buf_puts(sb_buf_t *b, const char *s);
/** Appends formatted text. Returns as sb_buf_append (SB_EINVAL for a bad format). */
int sb_buf_printf(sb_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sb_buf_vprintf(sb_buf_t *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/** 0, or the sticky error of the first append that failed since init/reset. */
int sb_buf_error(const sb_buf_t *b);
/** Removes the first n bytes (n ≤ len). Keeps a sticky error. */
void sb_buf_consume(sb_buf_t *b, size_t n);
/**
 * Hands the content to the caller (free with sb_free; never NULL) and empties the buffer
 * (clearing a sticky error: check sb_buf_error first).
 */
char *sb_buf_steal(sb_buf_t *b, size_t *len);

/**
 * Appends s (UTF-8, NUL-terminated) as a JSON string with its quotes: `"` and `\` and the
 * C0 controls escaped, everything else as it is. Errors as sb_buf_append (sticky).
 */
void sb_buf_json_str(sb_buf_t *b, const char *s);

#endif

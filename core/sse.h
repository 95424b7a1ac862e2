/* SPDX-License-Identifier: MIT */
/*
 * A Server-Sent Events reader (the WHATWG "text/event-stream" format): bytes in, events
 * out. Fed the body of a streaming answer in chunks of any size (a line or a UTF-8
 * character may be split anywhere), it calls back once per dispatched event with its
 * `event` type ("message" when none was given), its `data` (lines joined with "\n") and
 * its `id`. Comment lines (":thump", Mastodon's heartbeat) and `retry:` are reported to
 * on_comment / kept in retry_ms, so a caller can tell a live, idle stream from a stalled
 * one. Lines end in LF, CRLF or CR; a leading UTF-8 BOM is skipped.
 *
 * Bounded: a line longer than max_line or an event whose data outgrows max_event makes
 * sb_sse_feed fail with SB_ETOOBIG (the caller drops the stream and reconnects); nothing
 * grows without limit.
 */
#ifndef SB_CORE_SSE_H
#define SB_CORE_SSE_H

#include <stddef.h>
#include <stdint.h>

typedef struct sb_sse sb_sse_t;

/** One event, valid only during the callback (strings NUL-terminated). */
typedef struct sb_sse_event {
    const char *type; /* "message" when the event named none */
    const char *data; /* lines joined with "\n" */
    size_t data_len;
    const char *id; /* the last id seen (kept across events, as the spec says); "" for none */
} sb_sse_event_t;

typedef struct sb_sse_opts {
    size_t max_line;  /* 0 = 64 KiB */
    size_t max_event; /* 0 = 1 MiB */
    /** One event; return 0 to go on, anything else stops sb_sse_feed, which returns it. */
    int (*on_event)(const sb_sse_event_t *ev, void *data);
    /** A comment line (its text after ':' and one optional blank). May be NULL. */
    void (*on_comment)(const char *text, size_t len, void *data);
    void *data;
} sb_sse_opts_t;

/** A reader with opts (copied). Returns NULL only when memory runs out (as sb_malloc). */
sb_sse_t *sb_sse_new(const sb_sse_opts_t *opts);

/**
 * Feeds n bytes. 0, SB_ETOOBIG (a line or event over its cap: the reader is then unusable
 * until sb_sse_reset), or the non-zero value an on_event returned.
 */
int sb_sse_feed(sb_sse_t *s, const char *bytes, size_t n);

/** Forgets any partial line and event (a new connection); the last id is kept. */
void sb_sse_reset(sb_sse_t *s);

/** The last event id seen ("" for none) and the last retry: value in ms (0 for none). */
const char *sb_sse_last_id(const sb_sse_t *s);
uint32_t sb_sse_retry_ms(const sb_sse_t *s);

/** Frees. Accepts NULL. */
void sb_sse_free(sb_sse_t *s);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the Server-Sent Events reader (core/sse.c): the body of a provider's streaming
 * answer (Mastodon's notifications) is untrusted input, cut into chunks anywhere.
 * Input: one byte that seeds the chunk sizes, then the stream.
 * Invariants: the stream fed whole and fed in chunks gives the same events, comments,
 * last id, retry and final status; every type, data, id and comment is valid UTF-8 and
 * NUL-terminated at its length (a type may hold a NUL: it then reads shorter); data stays
 * under max_event and lines under max_line (small caps, so the fuzzer reaches them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/sse.h"
#include "core/util.h"

#define MAX_LINE  200
#define MAX_EVENT 600

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t n, size_t cap)
{
    if (n > cap || s[n] != '\0' || !sb_utf8_valid(s, n))
        abort();
}

static int on_event(const sb_sse_event_t *ev, void *data)
{
    sb_buf_t *log = data;
    size_t tl = strlen(ev->type), il = strlen(ev->id);
    check_text(ev->type, tl, 3 * MAX_LINE);
    check_text(ev->data, ev->data_len, MAX_EVENT);
    check_text(ev->id, il, 3 * MAX_LINE);
    sb_buf_printf(log, "E%zu:%s|%zu:", tl, ev->type, ev->data_len);
    sb_buf_append(log, ev->data, ev->data_len);
    sb_buf_printf(log, "|%s\n", ev->id);
    return 0;
}

static void on_comment(const char *text, size_t len, void *data)
{
    check_text(text, len, 3 * MAX_LINE);
    sb_buf_printf(data, "C%zu:", len);
    sb_buf_append(data, text, len);
}

/* Feeds the stream in chunks (sizes from seed; 0 = whole) into log; returns the status. */
static int run(const uint8_t *p, size_t n, unsigned seed, sb_buf_t *log)
{
    sb_sse_opts_t o = {.max_line = MAX_LINE,
                       .max_event = MAX_EVENT,
                       .on_event = on_event,
                       .on_comment = on_comment,
                       .data = log};
    sb_sse_t *s = sb_sse_new(&o);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t k = seed ? 1 + (seed = seed * 1103515245u + 12345u, (seed >> 16) % 7) : n;
        k = k < n - i ? k : n - i;
        rc = sb_sse_feed(s, (const char *)p + i, k);
        i += k;
    }
    if (rc != 0 && rc != SB_ETOOBIG)
        abort();
    sb_buf_printf(log, "=%d id=%s retry=%u", rc, sb_sse_last_id(s), sb_sse_retry_ms(s));
    sb_sse_free(s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 16 * 1024)
        return 0;
    sb_buf_t whole, cut;
    sb_buf_init(&whole, 1 << 24);
    sb_buf_init(&cut, 1 << 24);
    run(data + 1, size - 1, 0, &whole);
    run(data + 1, size - 1, data[0] | 1u, &cut);
    if (whole.len != cut.len || memcmp(whole.data, cut.data, whole.len) != 0) {
        fprintf(stderr, "whole:\n%.*s\ncut:\n%.*s\n", (int)whole.len, whole.data, (int)cut.len,
                cut.data);
        abort();
    }
    sb_buf_dispose(&whole);
    sb_buf_dispose(&cut);
    return 0;
}

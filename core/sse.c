/* SPDX-License-Identifier: MIT */
/*
 * The Server-Sent Events reader of sse.h: the WHATWG HTML "text/event-stream"
 * interpretation (the event stream's grammar and its field processing), fed in chunks.
 *
 * Bytes are gathered into a line (capped at max_line) until LF, CR or CRLF; a CR that
 * ends one chunk is remembered so that an LF opening the next is not taken for an empty
 * line. A complete line that is not valid UTF-8 is decoded as the standard's UTF-8 decoder
 * does (each maximal ill-formed subpart becomes U+FFFD), so fields and data are always
 * UTF-8. Then each line is one of: empty (dispatch the event), a comment (':'), or a field
 * "name[: value]" — event, data, id (ignored when the value holds a NUL), retry (digits
 * only); any other name is ignored. The id buffer outlives events; the id an event carries
 * and sb_sse_last_id are the one in force when the last event was dispatched.
 */
#include "core/sse.h"

#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/util.h"

#define DEFAULT_MAX_LINE  (64 * 1024)
#define DEFAULT_MAX_EVENT (1024 * 1024)

struct sb_sse {
    sb_sse_opts_t o;
    sb_buf_t line;  /* the line being read (raw bytes) */
    sb_buf_t fixed; /* a line not in UTF-8, decoded with U+FFFD */
    sb_buf_t data;  /* data lines, each followed by LF */
    sb_buf_t type;  /* the event type buffer */
    sb_buf_t id;    /* the last event id buffer (set by id:) */
    sb_buf_t last;  /* the last event id string (set at dispatch) */
    uint32_t retry_ms;
    unsigned bom;  /* BOM bytes matched so far; 3 (or more) when past it */
    bool after_cr; /* the previous byte ended a line with CR */
    int failed;    /* sticky SB_ETOOBIG until sb_sse_reset */
};

static const unsigned char BOM[3] = {0xEF, 0xBB, 0xBF};

sb_sse_t *sb_sse_new(const sb_sse_opts_t *opts)
{
    sb_sse_t *s = SB_NEW(sb_sse_t);
    s->o = *opts;
    if (!s->o.max_line)
        s->o.max_line = DEFAULT_MAX_LINE;
    if (!s->o.max_event)
        s->o.max_event = DEFAULT_MAX_EVENT;
    sb_buf_init(&s->line, s->o.max_line + 1);
    sb_buf_init(&s->fixed, 3 * s->o.max_line + 1);
    sb_buf_init(&s->data, s->o.max_event + 1);
    sb_buf_init(&s->type, 3 * s->o.max_line + 1);
    sb_buf_init(&s->id, 3 * s->o.max_line + 1);
    sb_buf_init(&s->last, 3 * s->o.max_line + 1);
    return s;
}

void sb_sse_free(sb_sse_t *s)
{
    if (!s)
        return;
    sb_buf_dispose(&s->line);
    sb_buf_dispose(&s->fixed);
    sb_buf_dispose(&s->data);
    sb_buf_dispose(&s->type);
    sb_buf_dispose(&s->id);
    sb_buf_dispose(&s->last);
    sb_free(s);
}

/* Sets b to the n bytes at p, NUL-terminated (fits: b's cap is above every line). */
static void set(sb_buf_t *b, const char *p, size_t n)
{
    sb_buf_reset(b);
    sb_buf_append(b, p, n);
    sb_buf_append(b, "", 1);
    b->len--;
}

/* A NUL-terminated view of b ("" when empty). */
static const char *cstr(sb_buf_t *b)
{
    if (sb_buf_append(b, "", 1) != 0)
        return "";
    b->len--;
    return b->data;
}

void sb_sse_reset(sb_sse_t *s)
{
    sb_buf_reset(&s->line);
    sb_buf_reset(&s->data);
    sb_buf_reset(&s->type);
    set(&s->id, s->last.data ? s->last.data : "", s->last.len);
    s->bom = 0;
    s->after_cr = false;
    s->failed = 0;
}

const char *sb_sse_last_id(const sb_sse_t *s)
{
    return s->last.len ? s->last.data : "";
}

uint32_t sb_sse_retry_ms(const sb_sse_t *s)
{
    return s->retry_ms;
}

/* ---- UTF-8 decoding of a line ---- */

/* The length of the well-formed sequence at p (n bytes left), or 0 and *bad: the bytes of
 * its maximal ill-formed subpart (at least 1), as the standard's UTF-8 decoder splits. */
static size_t utf8_seq(const unsigned char *p, size_t n, size_t *bad)
{
    unsigned c = p[0];
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF)
        need = 2, lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    else if (c >= 0xF0 && c <= 0xF4)
        need = 3, lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            *bad = i;
            return 0;
        }
        lo = 0x80, hi = 0xBF;
    }
    return need + 1;
}

/* The line as UTF-8, NUL-terminated: itself when valid, else s->fixed with U+FFFD for
 * each bad part. */
static const char *decoded(sb_sse_t *s, size_t *len)
{
    const char *p = cstr(&s->line);
    size_t n = s->line.len;
    if (sb_utf8_valid(p, n)) {
        *len = n;
        return p;
    }
    sb_buf_reset(&s->fixed);
    for (size_t i = 0; i < n;) {
        size_t bad = 0, k = utf8_seq((const unsigned char *)p + i, n - i, &bad);
        if (k) {
            sb_buf_append(&s->fixed, p + i, k);
            i += k;
        } else {
            sb_buf_append(&s->fixed, "\xEF\xBF\xBD", 3);
            i += bad;
        }
    }
    *len = s->fixed.len;
    return cstr(&s->fixed);
}

/* ---- Lines ---- */

static int dispatch(sb_sse_t *s)
{
    set(&s->last, s->id.data ? s->id.data : "", s->id.len);
    if (s->data.len == 0) {
        sb_buf_reset(&s->type);
        return 0;
    }
    s->data.len--; /* the LF after the last data line */
    sb_sse_event_t ev = {.type = s->type.len ? cstr(&s->type) : "message",
                         .data = cstr(&s->data),
                         .data_len = s->data.len,
                         .id = s->last.len ? s->last.data : ""};
    int rc = s->o.on_event ? s->o.on_event(&ev, s->o.data) : 0;
    sb_buf_reset(&s->data);
    sb_buf_reset(&s->type);
    return rc;
}

static void set_retry(sb_sse_t *s, const char *v, size_t n)
{
    uint64_t ms = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return;
        ms = ms * 10 + (uint64_t)(v[i] - '0');
        if (ms > UINT32_MAX)
            ms = UINT32_MAX; /* stays there: digits only make it bigger */
    }
    s->retry_ms = (uint32_t)ms;
}

static int field(sb_sse_t *s, const char *name, size_t nl, const char *v, size_t vl)
{
    if (nl == 5 && memcmp(name, "event", 5) == 0) {
        set(&s->type, v, vl);
    } else if (nl == 4 && memcmp(name, "data", 4) == 0) {
        sb_buf_append(&s->data, v, vl);
        sb_buf_append(&s->data, "\n", 1);
        if (sb_buf_error(&s->data))
            return SB_ETOOBIG;
    } else if (nl == 2 && memcmp(name, "id", 2) == 0) {
        if (!memchr(v, '\0', vl))
            set(&s->id, v, vl);
    } else if (nl == 5 && memcmp(name, "retry", 5) == 0) {
        set_retry(s, v, vl);
    }
    return 0;
}

/* One complete line (in s->line, its end not included). */
static int line(sb_sse_t *s)
{
    size_t n;
    const char *p = decoded(s, &n);
    int rc = 0;
    if (n == 0) {
        rc = dispatch(s);
    } else if (p[0] == ':') {
        size_t skip = n > 1 && p[1] == ' ' ? 2 : 1;
        if (s->o.on_comment)
            s->o.on_comment(p + skip, n - skip, s->o.data);
    } else {
        const char *colon = memchr(p, ':', n);
        size_t nl = colon ? (size_t)(colon - p) : n;
        const char *v = colon ? colon + 1 : p + n;
        size_t vl = colon ? n - nl - 1 : 0;
        if (vl && *v == ' ')
            v++, vl--;
        rc = field(s, p, nl, v, vl);
    }
    sb_buf_reset(&s->line);
    return rc;
}

/* ---- Feeding ---- */

/* Skips a leading BOM; returns how many of the n bytes at p it took. */
static size_t skip_bom(sb_sse_t *s, const char *p, size_t n)
{
    size_t i = 0;
    while (s->bom < 3 && i < n && (unsigned char)p[i] == BOM[s->bom])
        s->bom++, i++;
    if (s->bom < 3 && i < n) { /* not a BOM: the bytes matched so far are text */
        sb_buf_append(&s->line, BOM, s->bom);
        s->bom = 3;
    }
    return i;
}

int sb_sse_feed(sb_sse_t *s, const char *bytes, size_t n)
{
    if (s->failed)
        return s->failed;
    size_t i = s->bom < 3 ? skip_bom(s, bytes, n) : 0;
    while (i < n) {
        if (s->after_cr) {
            s->after_cr = false;
            if (bytes[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && bytes[j] != '\n' && bytes[j] != '\r')
            j++;
        if (s->line.len + (j - i) > s->o.max_line)
            return s->failed = SB_ETOOBIG;
        sb_buf_append(&s->line, bytes + i, j - i);
        if (j == n)
            break;
        s->after_cr = bytes[j] == '\r';
        i = j + 1;
        int rc = line(s);
        if (rc == SB_ETOOBIG)
            return s->failed = rc;
        if (rc != 0)
            return rc;
    }
    return 0;
}

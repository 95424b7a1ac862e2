/* SPDX-License-Identifier: MIT */
/*
 * The events dispatcher of events.h. One XREAD BLOCK over all shards' `events`
 * streams at a time; each batch is fanned out to every subscriber. Subscribers that
 * resume from a cursor read the shards' history with XRANGE while live events are
 * buffered for them, so nothing is missed and nothing delivered twice.
 *
 * Memory: a subscriber is freed only when it is unsubscribed and no history read of
 * it is in flight and no dispatch loop is running (see sweep()).
 */
#include "core/events.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/events_internal.h"
#include "core/keys.h"
#include "core/log.h"

#define HISTORY_PAGE   500
#define XREAD_COUNT    1000
#define XREAD_BLOCK_MS 1000
#define RETRY_MS       200

typedef struct sid {
    uint64_t ms, seq;
} sid_t;

typedef struct buffered {
    unsigned shard;
    sid_t id;
    char *conv;
    char *json;
    size_t json_len;
} buffered_t;

enum sub_state { SUB_WAIT_INIT, SUB_LOADING, SUB_LIVE };

/* A shard position as cursor text, kept while the position stays the same. */
typedef struct sid_text {
    sid_t id;
    unsigned char len; /* 0: not formatted yet */
    char s[SB_EVENTS_SID_MAX + 1];
} sid_text_t;

struct sb_events_sub {
    sb_events_t *ev;
    sb_events_sub_t *prev, *next;
    sid_t *pos;
    sid_text_t *text; /* per shard: every event needs the whole cursor, one shard moved */
    enum sub_state state;
    unsigned loading_shard;
    buffered_t *buf;
    size_t nbuf, capbuf;
    sb_events_cb cb;
    sb_events_fail_cb fail;
    void *data;
    bool dead;
    bool in_flight;
};

struct sb_events {
    uv_loop_t *loop;
    sb_redis_t *blocking, *main;
    char *prefix;
    unsigned shards;
    char **keys;
    sid_t *pos;
    bool ready;
    bool reading;  /* an XREAD or init command is in flight */
    bool stopping; /* sb_events_free called while reading */
    unsigned init_pending;
    int dispatching;
    uv_timer_t *retry;
    sb_events_sub_t *subs;
    size_t nsubs;
    char *cursor; /* SB_EVENTS_CURSOR_SIZE(shards): the cursor handed with each event */
};

static void start_read(sb_events_t *ev);
static void start_init(sb_events_t *ev);
static void load_history(sb_events_sub_t *sub);

/* ---- stream ids and cursors ---- */

/* A decimal number of at most 64 bits: digits only (strtoull would take a sign, spaces
 * and overflow, and a malformed cursor would become some other position). */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return SB_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return SB_EINVAL;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return SB_EINVAL;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* A stream id "<ms>[-<seq>]". */
static int parse_sid(const char *s, size_t n, sid_t *out)
{
    const char *dash = memchr(s, '-', n);
    out->seq = 0;
    if (!dash)
        return parse_u64(s, n, &out->ms);
    size_t head = (size_t)(dash - s);
    if (parse_u64(s, head, &out->ms) != 0 || parse_u64(dash + 1, n - head - 1, &out->seq) != 0)
        return SB_EINVAL;
    return 0;
}

static int sid_cmp(sid_t a, sid_t b)
{
    if (a.ms != b.ms)
        return a.ms < b.ms ? -1 : 1;
    if (a.seq != b.seq)
        return a.seq < b.seq ? -1 : 1;
    return 0;
}

static int parse_cursor(const char *cursor, unsigned shards, sid_t *pos)
{
    memset(pos, 0, sizeof(sid_t) * shards);
    if (strcmp(cursor, "0") == 0)
        return 0;
    const char *p = cursor;
    for (unsigned i = 0; i < shards; i++) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (parse_sid(p, n, &pos[i]) != 0)
            return SB_EINVAL;
        if (i + 1 < shards) {
            if (!dot)
                return SB_EINVAL;
            p = dot + 1;
        } else if (dot) {
            return SB_EINVAL;
        }
    }
    return 0;
}

int sb__events_parse_cursor(const char *cursor, unsigned shards, uint64_t *ms, uint64_t *seq)
{
    sid_t *pos = sb_calloc(shards ? shards : 1, sizeof(sid_t));
    int rc = parse_cursor(cursor, shards, pos);
    for (unsigned i = 0; rc == 0 && i < shards; i++) {
        ms[i] = pos[i].ms;
        seq[i] = pos[i].seq;
    }
    sb_free(pos);
    return rc;
}

static size_t u64_fmt(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t sb_events_cursor_size(const sb_events_t *ev)
{
    return SB_EVENTS_CURSOR_SIZE(ev->shards);
}

int sb_events_cursor(const sb_events_sub_t *sub, char *out, size_t cap)
{
    size_t o = 0;
    for (unsigned i = 0; i < sub->ev->shards; i++) {
        sid_text_t *t = &sub->text[i];
        sid_t id = sub->pos[i];
        if (t->len == 0 || sid_cmp(t->id, id) != 0) {
            size_t n;
            if (id.ms == 0 && id.seq == 0) {
                t->s[0] = '0';
                n = 1;
            } else {
                n = u64_fmt(id.ms, t->s);
                t->s[n++] = '-';
                n += u64_fmt(id.seq, t->s + n);
            }
            t->s[n] = '\0';
            t->id = id;
            t->len = (unsigned char)n;
        }
        if (o + (i > 0) + t->len + 1 > cap) /* separator, position, NUL */
            return SB_ETOOBIG;
        if (i > 0)
            out[o++] = '.';
        memcpy(out + o, t->s, t->len);
        o += t->len;
    }
    out[o] = '\0';
    return 0;
}

/* ---- subscribers ---- */

static void free_sub(sb_events_sub_t *sub)
{
    sb_events_t *ev = sub->ev;
    if (sub->prev)
        sub->prev->next = sub->next;
    else
        ev->subs = sub->next;
    if (sub->next)
        sub->next->prev = sub->prev;
    ev->nsubs--;
    for (size_t i = 0; i < sub->nbuf; i++) {
        sb_free(sub->buf[i].conv);
        sb_free(sub->buf[i].json);
    }
    sb_free(sub->buf);
    sb_free(sub->pos);
    sb_free(sub->text);
    sb_free(sub);
}

static void sweep(sb_events_t *ev)
{
    if (ev->dispatching)
        return;
    sb_events_sub_t *s = ev->subs;
    while (s) {
        sb_events_sub_t *next = s->next;
        if (s->dead && !s->in_flight)
            free_sub(s);
        s = next;
    }
}

/* Delivers one event to sub if it is after sub's position in that shard. */
static void deliver(sb_events_sub_t *sub, unsigned shard, sid_t id, const char *conv,
                    const char *json, size_t len)
{
    if (sub->dead || sid_cmp(id, sub->pos[shard]) <= 0)
        return;
    sub->pos[shard] = id;
    /* One buffer for the whole dispatcher: a cursor is read only during its callback. */
    char *cursor = sub->ev->cursor;
    int rc = sb_events_cursor(sub, cursor, sb_events_cursor_size(sub->ev));
    (void)rc; /* the buffer is the size of the longest cursor */
    sb_event_t e = {.shard = shard,
                    .id = sub->text[shard].s, /* formatted by sb_events_cursor */
                    .conv = conv,
                    .json = json,
                    .json_len = len,
                    .cursor = cursor};
    sub->cb(sub, &e, sub->data);
}

static void buffer_event(sb_events_sub_t *sub, unsigned shard, sid_t id, const char *conv,
                         const char *json, size_t len)
{
    if (sub->nbuf == sub->capbuf) {
        sub->capbuf = sub->capbuf ? sub->capbuf * 2 : 16;
        sub->buf = sb_realloc(sub->buf, sub->capbuf * sizeof(buffered_t));
    }
    buffered_t *b = &sub->buf[sub->nbuf++];
    b->shard = shard;
    b->id = id;
    b->conv = sb_strdup(conv);
    b->json = sb_strndup(json, len);
    b->json_len = len;
}

static void go_live(sb_events_sub_t *sub)
{
    sub->state = SUB_LIVE;
    sb_events_t *ev = sub->ev;
    ev->dispatching++;
    for (size_t i = 0; i < sub->nbuf && !sub->dead; i++) {
        buffered_t *b = &sub->buf[i];
        deliver(sub, b->shard, b->id, b->conv, b->json, b->json_len);
    }
    ev->dispatching--;
    for (size_t i = 0; i < sub->nbuf; i++) {
        sb_free(sub->buf[i].conv);
        sb_free(sub->buf[i].json);
    }
    sub->nbuf = 0;
}

/* Reads fields conv and e of a stream entry [id, [f, v, …]]. */
static bool entry_fields(const redisReply *entry, sid_t *id, const redisReply **conv,
                         const redisReply **json)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
        return false;
    const redisReply *rid = entry->element[0], *fields = entry->element[1];
    if (rid->type != REDIS_REPLY_STRING || parse_sid(rid->str, rid->len, id) != 0 ||
        fields->type != REDIS_REPLY_ARRAY)
        return false;
    *conv = *json = NULL;
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const redisReply *k = fields->element[i], *v = fields->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(k->str, "conv") == 0)
            *conv = v;
        else if (strcmp(k->str, "e") == 0)
            *json = v;
    }
    return *conv && *json;
}

static void destroy(sb_events_t *ev);

/* After sb_events_free: frees once no command of ours is in flight any more. */
static bool maybe_destroy(sb_events_t *ev)
{
    if (!ev->stopping)
        return false;
    if (ev->reading)
        return true;
    for (sb_events_sub_t *s = ev->subs; s; s = s->next)
        if (s->in_flight)
            return true;
    destroy(ev);
    return true;
}

static void on_history(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_events_sub_t *sub = data;
    sb_events_t *ev = sub->ev;
    sub->in_flight = false;
    if (maybe_destroy(ev))
        return;
    if (sub->dead) {
        sweep(ev);
        return;
    }
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY) {
        SB_LOG_WARN("events.history", "shard=%u err=%s", sub->loading_shard, sb_err_name(status));
        sub->dead = true; /* the owner must unsubscribe; nothing more is delivered */
        if (sub->fail)
            sub->fail(sub, status ? status : SB_EREDIS, sub->data);
        sweep(ev);
        return;
    }
    unsigned shard = sub->loading_shard;
    ev->dispatching++;
    for (size_t i = 0; i < reply->elements && !sub->dead; i++) {
        sid_t id;
        const redisReply *conv, *json;
        if (entry_fields(reply->element[i], &id, &conv, &json))
            deliver(sub, shard, id, conv->str, json->str, json->len);
    }
    ev->dispatching--;
    if (!sub->dead) {
        if (reply->elements < HISTORY_PAGE)
            sub->loading_shard++;
        if (sub->loading_shard < ev->shards)
            load_history(sub);
        else
            go_live(sub);
    }
    sweep(ev);
}

static void load_history(sb_events_sub_t *sub)
{
    sb_events_t *ev = sub->ev;
    unsigned s = sub->loading_shard;
    char start[64];
    if (sub->pos[s].ms == 0 && sub->pos[s].seq == 0)
        snprintf(start, sizeof(start), "-");
    else
        snprintf(start, sizeof(start), "(%" PRIu64 "-%" PRIu64, sub->pos[s].ms, sub->pos[s].seq);
    char count[16];
    snprintf(count, sizeof(count), "%d", HISTORY_PAGE);
    const char *argv[] = {"XRANGE", ev->keys[s], start, "+", "COUNT", count};
    sub->in_flight = true;
    if (sb_redis_command_argv(ev->main, on_history, sub, 0, 6, argv, NULL) != 0) {
        sub->in_flight = false;
        sub->dead = true;
        if (sub->fail)
            sub->fail(sub, SB_EUNAVAILABLE, sub->data);
    }
}

int sb_events_subscribe(sb_events_t *ev, const char *cursor, sb_events_cb cb,
                        sb_events_fail_cb fail, void *data, sb_events_sub_t **out)
{
    sb_events_sub_t *sub = SB_NEW(sb_events_sub_t);
    sub->ev = ev;
    sub->pos = sb_calloc(ev->shards, sizeof(sid_t));
    sub->text = sb_calloc(ev->shards, sizeof(sid_text_t));
    sub->cb = cb;
    sub->fail = fail;
    sub->data = data;
    bool resume = cursor && *cursor;
    if (resume && parse_cursor(cursor, ev->shards, sub->pos) != 0) {
        sb_free(sub->pos);
        sb_free(sub->text);
        sb_free(sub);
        return SB_EINVAL;
    }
    sub->next = ev->subs;
    if (ev->subs)
        ev->subs->prev = sub;
    ev->subs = sub;
    ev->nsubs++;
    *out = sub;
    if (resume) {
        sub->state = SUB_LOADING;
        load_history(sub);
    } else if (ev->ready) {
        memcpy(sub->pos, ev->pos, sizeof(sid_t) * ev->shards);
        sub->state = SUB_LIVE;
    } else {
        sub->state = SUB_WAIT_INIT;
    }
    return 0;
}

void sb_events_unsubscribe(sb_events_sub_t *sub)
{
    if (!sub)
        return;
    sub->dead = true;
    sweep(sub->ev);
}

size_t sb_events_subscribers(const sb_events_t *ev)
{
    return ev->nsubs;
}

bool sb_events_ready(const sb_events_t *ev)
{
    return ev->ready;
}

/* ---- the dispatcher ---- */

static void fan_out(sb_events_t *ev, unsigned shard, const redisReply *entries)
{
    for (size_t i = 0; i < entries->elements; i++) {
        sid_t id;
        const redisReply *conv, *json;
        if (!entry_fields(entries->element[i], &id, &conv, &json))
            continue;
        if (sid_cmp(id, ev->pos[shard]) > 0)
            ev->pos[shard] = id;
        for (sb_events_sub_t *s = ev->subs; s; s = s->next) {
            if (s->dead)
                continue;
            if (s->state == SUB_LIVE)
                deliver(s, shard, id, conv->str, json->str, json->len);
            else if (s->state == SUB_LOADING)
                buffer_event(s, shard, id, conv->str, json->str, json->len);
        }
    }
}

static void destroy(sb_events_t *ev)
{
    while (ev->subs)
        free_sub(ev->subs);
    for (unsigned i = 0; i < ev->shards; i++)
        sb_free(ev->keys[i]);
    sb_free(ev->keys);
    sb_free(ev->pos);
    sb_free(ev->prefix);
    sb_free(ev->cursor);
    sb_free(ev);
}

static void on_retry_closed(uv_handle_t *h)
{
    sb_free(h);
}

static void on_retry(uv_timer_t *t)
{
    sb_events_t *ev = t->data;
    if (ev->ready)
        start_read(ev);
    else
        start_init(ev);
}

static void retry_later(sb_events_t *ev)
{
    uv_timer_start(ev->retry, on_retry, RETRY_MS, 0);
}

static unsigned shard_of_key(const sb_events_t *ev, const redisReply *key)
{
    for (unsigned i = 0; i < ev->shards; i++)
        if (key->type == REDIS_REPLY_STRING && strcmp(key->str, ev->keys[i]) == 0)
            return i;
    return ev->shards;
}

static void on_xread(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_events_t *ev = data;
    ev->reading = false;
    if (maybe_destroy(ev))
        return;
    if (status != 0) {
        SB_LOG_DEBUG("events.xread", "err=%s", sb_err_name(status));
        retry_later(ev);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY) {
        ev->dispatching++;
        for (size_t i = 0; i < reply->elements; i++) {
            const redisReply *st = reply->element[i];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2)
                continue;
            unsigned shard = shard_of_key(ev, st->element[0]);
            if (shard < ev->shards && st->element[1]->type == REDIS_REPLY_ARRAY)
                fan_out(ev, shard, st->element[1]);
        }
        ev->dispatching--;
        sweep(ev);
    }
    start_read(ev);
}

static void start_read(sb_events_t *ev)
{
    unsigned n = ev->shards;
    int argc = 6 + 2 * (int)n;
    const char **argv = sb_calloc((size_t)argc, sizeof(char *));
    char(*ids)[SB_EVENTS_SID_MAX + 1] = sb_calloc(n, SB_EVENTS_SID_MAX + 1);
    char count[16], block[16];
    snprintf(count, sizeof(count), "%d", XREAD_COUNT);
    snprintf(block, sizeof(block), "%d", XREAD_BLOCK_MS);
    argv[0] = "XREAD";
    argv[1] = "COUNT";
    argv[2] = count;
    argv[3] = "BLOCK";
    argv[4] = block;
    argv[5] = "STREAMS";
    for (unsigned i = 0; i < n; i++) {
        argv[6 + i] = ev->keys[i];
        snprintf(ids[i], SB_EVENTS_SID_MAX + 1, "%" PRIu64 "-%" PRIu64, ev->pos[i].ms,
                 ev->pos[i].seq);
        argv[6 + n + i] = ids[i];
    }
    ev->reading = true;
    int rc =
        sb_redis_command_argv(ev->blocking, on_xread, ev, XREAD_BLOCK_MS + 5000, argc, argv, NULL);
    sb_free(argv);
    sb_free(ids);
    if (rc != 0) {
        ev->reading = false;
        retry_later(ev);
    }
}

typedef struct init_ctx {
    sb_events_t *ev;
    unsigned shard;
    bool *failed; /* shared among the batch */
} init_ctx_t;

static void on_init(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    init_ctx_t *ic = data;
    sb_events_t *ev = ic->ev;
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY) {
        *ic->failed = true;
    } else if (reply->elements > 0) {
        const redisReply *e = reply->element[0];
        if (e->type == REDIS_REPLY_ARRAY && e->elements > 0 &&
            e->element[0]->type == REDIS_REPLY_STRING)
            parse_sid(e->element[0]->str, e->element[0]->len, &ev->pos[ic->shard]);
    }
    bool last = --ev->init_pending == 0;
    if (last) {
        bool failed = *ic->failed;
        sb_free(ic->failed);
        ev->reading = false;
        if (maybe_destroy(ev)) {
            sb_free(ic);
            return;
        }
        if (failed) {
            retry_later(ev);
        } else {
            ev->ready = true;
            for (sb_events_sub_t *s = ev->subs; s; s = s->next) {
                if (s->state == SUB_WAIT_INIT) {
                    memcpy(s->pos, ev->pos, sizeof(sid_t) * ev->shards);
                    s->state = SUB_LIVE;
                }
            }
            SB_LOG_DEBUG("events.ready", "shards=%u", ev->shards);
            start_read(ev);
        }
    }
    sb_free(ic);
}

static void start_init(sb_events_t *ev)
{
    bool *failed = SB_NEW(bool);
    ev->reading = true;
    ev->init_pending = ev->shards;
    for (unsigned i = 0; i < ev->shards; i++) {
        init_ctx_t *ic = SB_NEW(init_ctx_t);
        ic->ev = ev;
        ic->shard = i;
        ic->failed = failed;
        const char *argv[] = {"XREVRANGE", ev->keys[i], "+", "-", "COUNT", "1"};
        if (sb_redis_command_argv(ev->main, on_init, ic, 0, 6, argv, NULL) != 0) {
            /* Queue full: count this one as failed and finish the batch accounting. */
            *failed = true;
            on_init(ev->main, NULL, SB_EUNAVAILABLE, ic);
        }
    }
}

int sb_events_new(uv_loop_t *loop, sb_redis_t *blocking, sb_redis_t *main, const char *prefix,
                  unsigned shards, sb_events_t **out)
{
    if (!blocking || !main || shards == 0 || shards > SB_EVENTS_MAX_SHARDS)
        return SB_EINVAL;
    sb_key_t key; /* the longest shard's key: every other fits when it does */
    if (sb_key_events(&key, prefix ? prefix : "sb:", shards - 1) != 0)
        return key.err;
    sb_events_t *ev = SB_NEW(sb_events_t);
    ev->loop = loop;
    ev->blocking = blocking;
    ev->main = main;
    ev->prefix = sb_strdup(prefix ? prefix : "sb:");
    ev->shards = shards;
    ev->keys = sb_calloc(shards, sizeof(char *));
    ev->pos = sb_calloc(shards, sizeof(sid_t));
    ev->cursor = sb_malloc(SB_EVENTS_CURSOR_SIZE(shards));
    for (unsigned i = 0; i < shards; i++) {
        sb_key_events(&key, ev->prefix, i);
        ev->keys[i] = sb_strdup(key.str);
    }
    ev->retry = SB_NEW(uv_timer_t);
    uv_timer_init(loop, ev->retry);
    ev->retry->data = ev;
    *out = ev;
    start_init(ev);
    return 0;
}

void sb_events_free(sb_events_t *ev)
{
    if (!ev)
        return;
    uv_timer_stop(ev->retry);
    uv_close((uv_handle_t *)ev->retry, on_retry_closed);
    for (sb_events_sub_t *s = ev->subs; s; s = s->next)
        s->dead = true;
    ev->stopping = true; /* freed now, or by the last pending callback */
    maybe_destroy(ev);
}

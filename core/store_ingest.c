/* SPDX-License-Identifier: MIT */
/*
 * Ingesting a customer message (store.h: sb_store_ingest, _raw, _head), the store's hot
 * path: the FCALL arguments are written by hand (jansson here was most of an ingest's
 * CPU time on the client side), the function's redirect to the shard where the
 * contact's conversation lives after a merge is followed, and an ack's fields are read
 * from the raw reply without parsing it.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

/* Appends s as a JSON string (UTF-8 passed through: callers validated it). */

static void json_field(sb_buf_t *b, const char *name, const char *v)
{
    if (!v || !*v)
        return;
    sb_buf_printf(b, ",\"%s\":", name);
    sb_buf_json_str(b, v);
}

static void json_raw(sb_buf_t *b, const char *name, const json_t *v)
{
    char *text;
    if (sb_json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY, &text, NULL) == 0)
        sb_buf_printf(b, ",\"%s\":%s", name, text);
    else
        sb_buf_printf(b, ",\"%s\":null", name);
    free(text);
}

/*
 * The customer message's JSON after its id/conv/seq/ts/kind/dir, as text starting with
 * ',' and ending the object: the function prepends the head and stores it verbatim.
 * Built by hand: jansson here was most of an ingest's CPU time on the client side.
 */
static void message_tail(sb_buf_t *b, const sb_ingest_t *in)
{
    json_field(b, "channel", in->channel);
    sb_buf_puts(b, ",\"author\":{\"type\":\"contact\"");
    json_field(b, "id", in->contact_id);
    json_field(b, "name", in->contact_name);
    sb_buf_puts(b, "}");
    json_field(b, "text", in->text);
    json_field(b, "subject", in->subject);
    json_field(b, "client_id", in->client_id);
    json_field(b, "external_id", in->external_id);
    if (in->attachments && json_array_size(in->attachments) > 0)
        json_raw(b, "attachments", in->attachments);
    if (in->ext && json_object_size(in->ext) > 0)
        json_raw(b, "ext", in->ext);
    if (in->automatic)
        sb_buf_puts(b, ",\"auto\":true");
    sb_buf_puts(b, "}");
}

/* ---- Operations ---- */

/*
 * An ingest's FCALL arguments, kept with its call: the function may answer
 * {"redirect":cid} (the contact's latest conversation on this channel lives in another
 * shard, after a merge: send it there, as that conversation's "latest" continuation) or,
 * to such a redirected call, {"fallback":true} (that conversation can't continue: start
 * one in the contact's shard). A resend passes the same JSON arguments and tail, with the
 * shard, conversation and mode after them (functions.lua: ingest).
 */
struct sb__store_ingest_req {
    sb_buf_t args, tail;
    unsigned home; /* the shard of the first call */
    int hops;
};

void sb__store_ingest_req_free(sb__store_ingest_req_t *q)
{
    if (!q)
        return;
    sb_buf_dispose(&q->args);
    sb_buf_dispose(&q->tail);
    sb_free(q);
}

/* Sends an ingest on to `shard`: to conversation conv as its "latest", or "home". */
static int ingest_resend_to(sb__store_call_t *c, unsigned shard, const char *conv, const char *mode)
{
    sb__store_ingest_req_t *q = c->ingest;
    sb_store_t *st = c->st;
    sb_key_t key;
    char sh[16];
    if (sb_key_events(&key, st->prefix, shard) != 0)
        return key.err;
    snprintf(sh, sizeof(sh), "%u", shard);
    const char *argv[] = {"FCALL",      "sb_ingest", "1",  key.str, q->args.data,
                          q->tail.data, sh,          conv, mode};
    size_t lens[SB_ARRAY_LEN(argv)];
    for (size_t i = 0; i < SB_ARRAY_LEN(argv); i++)
        lens[i] = i == 4 ? q->args.len : i == 5 ? q->tail.len : strlen(argv[i]);
    return sb_redis_command_argv(st->redis, sb__store_on_fcall, c, 0, (int)SB_ARRAY_LEN(argv), argv,
                                 lens);
}

/*
 * A redirect or fallback answer: sends the ingest on. 0 if it did (c is on its way), 1 if
 * the reply is neither (the result), else the error that stopped it.
 */
int sb__store_ingest_resend(sb__store_call_t *c, const char *reply, size_t len)
{
    static const char redirect[] = "{\"redirect\":\"", fallback[] = "{\"fallback\":true}";
    sb__store_ingest_req_t *q = c->ingest;
    bool is_redirect =
        len > sizeof(redirect) - 1 && memcmp(reply, redirect, sizeof(redirect) - 1) == 0;
    bool is_fallback = len == sizeof(fallback) - 1 && memcmp(reply, fallback, len) == 0;
    if (!is_redirect && !is_fallback)
        return 1;
    if (q->hops++ >= 2)
        return SB_EREDIS; /* never loops: a redirect, then at most a fallback */
    if (!is_redirect)
        return ingest_resend_to(c, q->home, "", "home");
    char cid[SB_ID_MAX];
    const char *p = reply + sizeof(redirect) - 1, *e = memchr(p, '"', len - (size_t)(p - reply));
    if (!e || (size_t)(e - p) >= sizeof(cid))
        return SB_EREDIS;
    memcpy(cid, p, (size_t)(e - p));
    cid[e - p] = '\0';
    if (!sb_id_valid(cid, "c_"))
        return SB_EREDIS;
    SB_LOG_DEBUG("store.ingest", "redirect=%s", cid);
    return ingest_resend_to(c, sb_store_shard(c->st, cid), cid, "latest");
}

static int ingest(sb_store_t *st, const sb_ingest_t *in, sb__store_call_t *c)
{
    if (!in->channel || !in->contact_id || !in->text) {
        sb_free(c);
        return SB_EINVAL;
    }
    sb__store_ingest_req_t *q = SB_NEW(sb__store_ingest_req_t);
    c->ingest = q;
    unsigned shard = sb_store_shard(st, in->conv && *in->conv ? in->conv : in->contact_id);
    q->home = shard;
    char cid[SB_ID_MAX], ids[3][SB_ID_MAX];
    sb_id_new_in_shard("c_", shard, st->opts.shards, cid);
    for (int i = 0; i < 3; i++)
        sb_id_new("m_", ids[i]);
    long long now = (long long)sb_now_ms();
    char *dedup = NULL;
    if (in->external_id && *in->external_id)
        dedup = sb_asprintf("x:%s:%s", in->channel, in->external_id);
    else if (in->client_id && *in->client_id)
        dedup = sb_asprintf("c:%s:%s", in->contact_id, in->client_id);
    sb_buf_t *a = &q->args;
    sb_buf_init(a, 1 << 20);
    sb_buf_init(&q->tail, 4 << 20);
    sb_buf_puts(a, "{\"prefix\":");
    sb_buf_json_str(a, st->prefix);
    sb_buf_printf(a,
                  ",\"shard\":%u,\"ids\":[\"%s\",\"%s\",\"%s\"],\"events_maxlen\":%llu,"
                  "\"dedup_ttl\":%u,\"new_conv\":\"%s\",\"reopen_window_ms\":%lld,\"now\":%lld",
                  shard, ids[0], ids[1], ids[2], (unsigned long long)st->opts.events_maxlen,
                  st->opts.dedup_ttl_s, cid, (long long)st->opts.reopen_window_ms, now);
    json_field(a, "channel", in->channel);
    sb_buf_puts(a, ",\"contact\":{\"id\":");
    sb_buf_json_str(a, in->contact_id);
    json_field(a, "name", in->contact_name);
    sb_buf_printf(a, ",\"verified\":%s}", in->contact_verified ? "true" : "false");
    json_field(a, "conv", in->conv);
    json_field(a, "subject", in->subject);
    json_field(a, "dedup", dedup);
    if (in->automatic)
        sb_buf_puts(a, ",\"auto\":true");
    if (in->cross_channel)
        sb_buf_puts(a, ",\"cross\":true");
    if (in->new_conversation && !(in->conv && *in->conv))
        sb_buf_puts(a, ",\"fresh\":true");
    if (st->opts.sla)
        sb_buf_puts(a, ",\"sla\":true");
    sb_buf_puts(a, "}");
    message_tail(&q->tail, in);
    sb_key_t key, pre; /* pre is the start of key: it fits when key does */
    char nowtxt[24], ttl[16];
    sb_key_events(&key, st->prefix, shard);
    sb_key_shard_prefix(&pre, st->prefix, shard);
    snprintf(nowtxt, sizeof(nowtxt), "%lld", now);
    snprintf(ttl, sizeof(ttl), "%u", st->opts.dedup_ttl_s);
    /* The JSON arguments, the message tail, then the append fast path's inputs by position
     * (functions.lua: ingest_fast), so an append needs no JSON decode. An automatic
     * message sends none of them: the fast path would start a wait, so it takes the
     * general one. */
    const char *opt = "";
    const char *argv[] = {"FCALL",
                          "sb_ingest",
                          "1",
                          key.str,
                          a->data,
                          q->tail.data,
                          pre.str,
                          in->contact_id,
                          in->channel,
                          in->conv ? in->conv : opt,
                          in->contact_name ? in->contact_name : opt,
                          in->subject && *in->subject ? "1" : opt,
                          dedup ? dedup : opt,
                          nowtxt,
                          ids[0],
                          ttl,
                          st->opts.sla ? "1" : opt};
    size_t lens[SB_ARRAY_LEN(argv)];
    for (size_t i = 0; i < SB_ARRAY_LEN(argv); i++)
        lens[i] = i == 4 ? a->len : i == 5 ? q->tail.len : strlen(argv[i]);
    /* the fast path appends to an existing conversation: not for these */
    int argc = in->automatic || in->new_conversation ? 6 : (int)SB_ARRAY_LEN(argv);
    int rc = key.err ? key.err
                     : sb_redis_command_argv(st->redis, sb__store_on_fcall, c, 0, argc, argv, lens);
    sb_free(dedup);
    if (rc != 0)
        sb__store_call_free(c);
    return rc;
}

int sb_store_ingest(sb_store_t *st, const sb_ingest_t *in, sb_store_cb cb, void *data)
{
    sb__store_call_t *c = SB_NEW(sb__store_call_t);
    c->st = st;
    c->cb = cb;
    c->data = data;
    return ingest(st, in, c);
}

int sb_store_ingest_raw(sb_store_t *st, const sb_ingest_t *in, sb_store_raw_cb cb, void *data)
{
    sb__store_call_t *c = SB_NEW(sb__store_call_t);
    c->st = st;
    c->raw = cb;
    c->data = data;
    return ingest(st, in, c);
}

/* Copies the JSON string value at *p (no escapes: ids and seqs) up to its quote. */
static const char *head_str(const char *p, const char *end, char *out, size_t cap)
{
    size_t n = 0;
    if (!p)
        return NULL;
    while (p < end && *p != '"') {
        if (*p == '\\' || n + 1 >= cap)
            return NULL;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return p < end && n > 0 ? p + 1 : NULL;
}

static const char *head_lit(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return p && (size_t)(end - p) >= n && memcmp(p, lit, n) == 0 ? p + n : NULL;
}

int sb_store_ingest_head(const char *json, size_t len, sb_ingest_head_t *out)
{
    /* functions.lua writes {"duplicate":B,…,"message":{"id":"…","conv":"…","seq":"…",… with
     * the message's head first (msg_head): read those fields where they are. */
    const char *end = json + len, *p = head_lit(json, end, "{\"duplicate\":");
    if (!p)
        return SB_EINVAL;
    out->duplicate = head_lit(p, end, "true") != NULL;
    static const char key[] = "\"message\":{\"id\":\"";
    const char *m = memmem(p, (size_t)(end - p), key, sizeof(key) - 1);
    if (!m)
        return SB_EINVAL;
    p = head_str(m + sizeof(key) - 1, end, out->id, sizeof(out->id));
    p = p ? head_str(head_lit(p, end, ",\"conv\":\""), end, out->conv, sizeof(out->conv)) : NULL;
    p = p ? head_str(head_lit(p, end, ",\"seq\":\""), end, out->seq, sizeof(out->seq)) : NULL;
    return p ? 0 : SB_EINVAL;
}

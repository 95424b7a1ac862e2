/* SPDX-License-Identifier: MIT */
/*
 * The store of store.h: builds each operation's JSON arguments, calls the matching
 * function of functions.lua with FCALL on the conversation's shard, and turns the
 * reply back into JSON for the caller. Also resolves contacts (ident -> contact) and
 * looks up hashed bearer tokens, which live outside the shards. Operations that span
 * every shard (lists, contacts, merge, stats, wake-ups) are in store_shards.c.
 */
#include "core/store.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/store_internal.h"
#include "core/util.h"

extern const unsigned char sb_functions_lua[];
extern const size_t sb_functions_lua_len;

struct sb_store {
    sb_redis_t *redis;
    sb_store_opts_t opts;
    char *prefix;
    bool ready;
    uint64_t generation; /* bumps on every connect, so a stale load reply is ignored */
    json_t *served;      /* channels a reply may go out on (store_delivery.c) */
};

typedef struct ingest_req ingest_req_t;

typedef struct call {
    sb_store_t *st;
    sb_store_cb cb;
    sb_store_raw_cb raw; /* instead of cb: the reply unparsed */
    void *data;
    ingest_req_t *ingest; /* an ingest, kept to follow a redirect */
} call_t;

static void ingest_req_free(ingest_req_t *q);
static int ingest_resend(call_t *c, const char *reply, size_t len);

static void call_free(call_t *c)
{
    ingest_req_free(c->ingest);
    sb_free(c);
}

int sb_store_new(sb_redis_t *redis, const sb_store_opts_t *opts, sb_store_t **out)
{
    sb_store_t *st = SB_NEW(sb_store_t);
    st->redis = redis;
    if (opts)
        st->opts = *opts;
    st->prefix = sb_strdup(st->opts.prefix ? st->opts.prefix : "sb:");
    st->served = json_pack("[ss]", "webchat", "api");
    st->opts.prefix = st->prefix;
    if (!st->opts.shards)
        st->opts.shards = 16;
    if (!st->opts.reopen_window_ms)
        st->opts.reopen_window_ms = 7LL * 24 * 3600 * 1000;
    if (!st->opts.events_maxlen)
        st->opts.events_maxlen = 100000;
    if (!st->opts.dedup_ttl_s)
        st->opts.dedup_ttl_s = 7 * 24 * 3600;
    *out = st;
    return 0;
}

void sb_store_free(sb_store_t *st)
{
    if (!st)
        return;
    sb_free(st->prefix);
    json_decref(st->served);
    sb_free(st);
}

const sb_store_opts_t *sb_store_opts(const sb_store_t *st)
{
    return &st->opts;
}

unsigned sb_store_shard(const sb_store_t *st, const char *id)
{
    return sb_shard_of(id, st->opts.shards);
}

bool sb_store_ready(const sb_store_t *st)
{
    return st->ready;
}

int sb_store_error_code(const char *errmsg)
{
    static const struct {
        const char *prefix;
        int code;
    } map[] = {{"NOTFOUND", SB_ENOTFOUND},
               {"CONFLICT", SB_ECONFLICT},
               {"FORBIDDEN", SB_EFORBIDDEN},
               {"INVAL", SB_EINVAL},
               {"UNAVAILABLE", SB_EUNAVAILABLE}};
    if (!errmsg)
        return SB_EREDIS;
    for (size_t i = 0; i < SB_ARRAY_LEN(map); i++) {
        size_t n = strlen(map[i].prefix);
        if (strncmp(errmsg, map[i].prefix, n) == 0 && (errmsg[n] == ' ' || errmsg[n] == '\0'))
            return map[i].code;
    }
    return SB_EREDIS;
}

/* ---- Loading the function library ---- */

typedef struct load_ctx {
    sb_store_t *st;
    uint64_t generation;
} load_ctx_t;

static void on_loaded(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    load_ctx_t *lc = data;
    if (status == 0 && lc->generation == lc->st->generation) {
        lc->st->ready = true;
        SB_LOG_INFO("store.functions", "loaded=switchboard shards=%u", lc->st->opts.shards);
    } else if (status != 0) {
        SB_LOG_ERROR("store.functions", "err=%s reply=\"%s\"", sb_err_name(status),
                     reply && reply->str ? reply->str : "");
    }
    sb_free(lc);
}

void sb_store_on_connect(sb_store_t *st)
{
    st->generation++;
    st->ready = false;
    load_ctx_t *lc = SB_NEW(load_ctx_t);
    lc->st = st;
    lc->generation = st->generation;
    const char *argv[] = {"FUNCTION", "LOAD", "REPLACE", (const char *)sb_functions_lua};
    size_t lens[] = {8, 4, 7, sb_functions_lua_len};
    if (sb_redis_command_argv(st->redis, on_loaded, lc, 0, 4, argv, lens) != 0)
        sb_free(lc);
}

void sb_store_on_disconnect(sb_store_t *st)
{
    st->ready = false;
}

/* ---- FCALL plumbing ---- */

static void on_fcall(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    call_t *c = data;
    if (c->ingest && status == 0 && reply && reply->type == REDIS_REPLY_STRING) {
        int rr = ingest_resend(c, reply->str, reply->len);
        if (rr == 0)
            return; /* sent on to where the conversation lives */
        if (rr != 1) {
            status = rr; /* a redirect that could not be followed */
            reply = NULL;
        }
    }
    if (c->raw) {
        if (status == SB_EREDIS && reply && reply->str) {
            const char *sp = strchr(reply->str, ' ');
            c->raw(sb_store_error_code(reply->str), NULL, 0, sp ? sp + 1 : reply->str, c->data);
        } else if (status != 0 || !reply) {
            c->raw(status ? status : SB_EREDIS, NULL, 0, sb_strerror(status), c->data);
        } else if (reply->type != REDIS_REPLY_STRING) {
            c->raw(SB_EREDIS, NULL, 0, "unexpected reply type", c->data);
        } else {
            c->raw(0, reply->str, reply->len, NULL, c->data);
        }
    } else if (!c->cb) {
        if (status)
            SB_LOG_WARN("store.fcall", "err=%s reply=\"%s\"", sb_err_name(status),
                        reply && reply->str ? reply->str : "");
    } else if (status == SB_EREDIS && reply && reply->str) {
        int code = sb_store_error_code(reply->str);
        const char *sp = strchr(reply->str, ' ');
        c->cb(code, NULL, sp ? sp + 1 : reply->str, c->data);
    } else if (status != 0 || !reply) {
        c->cb(status ? status : SB_EREDIS, NULL, sb_strerror(status), c->data);
    } else if (reply->type != REDIS_REPLY_STRING) {
        c->cb(SB_EREDIS, NULL, "unexpected reply type", c->data);
    } else {
        json_error_t jerr;
        json_t *res = json_loadb(reply->str, reply->len, JSON_DECODE_ANY, &jerr);
        if (!res) {
            SB_LOG_ERROR("store.reply", "err=PARSE what=\"%s\"", jerr.text);
            c->cb(SB_EREDIS, NULL, "bad reply from function", c->data);
        } else {
            int code = json_is_true(json_object_get(res, "conflict")) ? SB_ECONFLICT : 0;
            c->cb(code, res, NULL, c->data);
            json_decref(res);
        }
    }
    call_free(c);
}

int sb__store_fcall(sb_store_t *st, const char *fn, unsigned shard, json_t *args, int nids,
                    sb_store_cb cb, void *data)
{
    json_t *ids = json_array();
    for (int i = 0; i < nids; i++) {
        char id[SB_ID_MAX];
        sb_id_new("m_", id);
        json_array_append_new(ids, json_string(id));
    }
    json_object_set_new(args, "ids", ids);
    json_object_set_new(args, "prefix", json_string(st->prefix));
    json_object_set_new(args, "shard", json_integer(shard));
    json_object_set_new(args, "events_maxlen", json_integer((json_int_t)st->opts.events_maxlen));
    json_object_set_new(args, "dedup_ttl", json_integer(st->opts.dedup_ttl_s));
    /* The functions' clock is the caller's (core/sys.h), never Redis TIME. */
    json_object_set_new(args, "now", json_integer((json_int_t)sb_now_ms()));
    char *js;
    int jrc = sb_json_dumps(args, JSON_COMPACT, &js, NULL);
    json_decref(args);
    if (jrc != 0)
        return jrc;
    char key[256];
    snprintf(key, sizeof(key), "%s{%u}:events", st->prefix, shard);
    call_t *c = SB_NEW(call_t);
    c->st = st;
    c->cb = cb;
    c->data = data;
    const char *argv[] = {"FCALL", fn, "1", key, js};
    int rc = sb_redis_command_argv(st->redis, on_fcall, c, 0, 5, argv, NULL);
    free(js);
    if (rc != 0)
        sb_free(c);
    return rc;
}

/* Calls function fn on a shard with args (stolen) and the 3 ids one message needs. */
static int fcall(sb_store_t *st, const char *fn, unsigned shard, json_t *args, sb_store_cb cb,
                 void *data)
{
    return sb__store_fcall(st, fn, shard, args, 3, cb, data);
}

sb_redis_t *sb__store_redis(sb_store_t *st)
{
    return st->redis;
}

json_t *sb__store_served(sb_store_t *st)
{
    return st->served;
}

json_t *sb__store_actor_json(const sb_actor_t *who)
{
    json_t *a = json_object();
    json_object_set_new(a, "type", json_string(who->type ? who->type : "system"));
    if (who->id)
        json_object_set_new(a, "id", json_string(who->id));
    if (who->name)
        json_object_set_new(a, "name", json_string(who->name));
    return a;
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v && *v)
        json_object_set_new(o, k, json_string(v));
}

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
struct ingest_req {
    sb_buf_t args, tail;
    unsigned home; /* the shard of the first call */
    int hops;
};

static void ingest_req_free(ingest_req_t *q)
{
    if (!q)
        return;
    sb_buf_dispose(&q->args);
    sb_buf_dispose(&q->tail);
    sb_free(q);
}

/* Sends an ingest on to `shard`: to conversation conv as its "latest", or "home". */
static int ingest_resend_to(call_t *c, unsigned shard, const char *conv, const char *mode)
{
    ingest_req_t *q = c->ingest;
    sb_store_t *st = c->st;
    char key[256], sh[16];
    snprintf(key, sizeof(key), "%s{%u}:events", st->prefix, shard);
    snprintf(sh, sizeof(sh), "%u", shard);
    const char *argv[] = {"FCALL",      "sb_ingest", "1",  key, q->args.data,
                          q->tail.data, sh,          conv, mode};
    size_t lens[SB_ARRAY_LEN(argv)];
    for (size_t i = 0; i < SB_ARRAY_LEN(argv); i++)
        lens[i] = i == 4 ? q->args.len : i == 5 ? q->tail.len : strlen(argv[i]);
    return sb_redis_command_argv(st->redis, on_fcall, c, 0, (int)SB_ARRAY_LEN(argv), argv, lens);
}

/*
 * A redirect or fallback answer: sends the ingest on. 0 if it did (c is on its way), 1 if
 * the reply is neither (the result), else the error that stopped it.
 */
static int ingest_resend(call_t *c, const char *reply, size_t len)
{
    static const char redirect[] = "{\"redirect\":\"", fallback[] = "{\"fallback\":true}";
    ingest_req_t *q = c->ingest;
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

static int ingest(sb_store_t *st, const sb_ingest_t *in, call_t *c)
{
    if (!in->channel || !in->contact_id || !in->text) {
        sb_free(c);
        return SB_EINVAL;
    }
    ingest_req_t *q = SB_NEW(ingest_req_t);
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
    sb_buf_puts(a, "}");
    message_tail(&q->tail, in);
    char key[256], pre[160], nowtxt[24], ttl[16];
    snprintf(key, sizeof(key), "%s{%u}:events", st->prefix, shard);
    snprintf(pre, sizeof(pre), "%s{%u}:", st->prefix, shard);
    snprintf(nowtxt, sizeof(nowtxt), "%lld", now);
    snprintf(ttl, sizeof(ttl), "%u", st->opts.dedup_ttl_s);
    /* The JSON arguments, the message tail, then the append fast path's inputs by position
     * (functions.lua: ingest_fast), so an append needs no JSON decode. */
    const char *opt = "";
    const char *argv[] = {"FCALL",
                          "sb_ingest",
                          "1",
                          key,
                          a->data,
                          q->tail.data,
                          pre,
                          in->contact_id,
                          in->channel,
                          in->conv ? in->conv : opt,
                          in->contact_name ? in->contact_name : opt,
                          in->subject && *in->subject ? "1" : opt,
                          dedup ? dedup : opt,
                          nowtxt,
                          ids[0],
                          ttl};
    size_t lens[SB_ARRAY_LEN(argv)];
    for (size_t i = 0; i < SB_ARRAY_LEN(argv); i++)
        lens[i] = i == 4 ? a->len : i == 5 ? q->tail.len : strlen(argv[i]);
    int rc = sb_redis_command_argv(st->redis, on_fcall, c, 0, (int)SB_ARRAY_LEN(argv), argv, lens);
    sb_free(dedup);
    if (rc != 0)
        call_free(c);
    return rc;
}

int sb_store_ingest(sb_store_t *st, const sb_ingest_t *in, sb_store_cb cb, void *data)
{
    call_t *c = SB_NEW(call_t);
    c->st = st;
    c->cb = cb;
    c->data = data;
    return ingest(st, in, c);
}

int sb_store_ingest_raw(sb_store_t *st, const sb_ingest_t *in, sb_store_raw_cb cb, void *data)
{
    call_t *c = SB_NEW(call_t);
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

static json_t *conv_args(const char *conv, const sb_actor_t *who)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    json_object_set_new(a, "author", sb__store_actor_json(who));
    if (who->admin)
        json_object_set_new(a, "admin", json_true());
    return a;
}

static void set_client_dedup(json_t *a, const sb_actor_t *who, const char *client_id)
{
    if (client_id && *client_id) {
        json_object_set_new(a, "client_id", json_string(client_id));
        char *k = sb_asprintf("c:%s:%s", who->id ? who->id : "-", client_id);
        json_object_set_new(a, "dedup", json_string(k));
        sb_free(k);
    }
}

int sb_store_reply(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                   const char *client_id, const char *based_on, bool force, sb_store_cb cb,
                   void *data)
{
    if (!conv || !text)
        return SB_EINVAL;
    json_t *a = conv_args(conv, who);
    json_object_set_new(a, "text", json_string(text));
    set_client_dedup(a, who, client_id);
    set_str(a, "based_on", based_on);
    if (force)
        json_object_set_new(a, "force", json_true());
    json_object_set(a, "served", st->served);
    return fcall(st, "sb_reply", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_note(sb_store_t *st, const char *conv, const sb_actor_t *who, const char *text,
                  const char *client_id, sb_store_cb cb, void *data)
{
    if (!conv || !text)
        return SB_EINVAL;
    json_t *a = conv_args(conv, who);
    json_object_set_new(a, "text", json_string(text));
    set_client_dedup(a, who, client_id);
    return fcall(st, "sb_note", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_act(sb_store_t *st, const char *conv, const char *action, const sb_actor_t *who,
                 json_t *args, sb_store_cb cb, void *data)
{
    if (!conv || !action)
        return SB_EINVAL;
    json_t *a = conv_args(conv, who);
    json_object_set_new(a, "action", json_string(action));
    if (args) {
        const char *k;
        json_t *v;
        json_object_foreach(args, k, v)
        {
            if (json_is_null(v))
                continue; /* absent (cjson would decode null as a true value) */
            if (strcmp(k, "steal") == 0)
                json_object_set_new(a, k, json_boolean(json_is_true(v)));
            else if (strcmp(k, "until") == 0 || strcmp(k, "priority") == 0 ||
                     strcmp(k, "tags") == 0 || strcmp(k, "reason") == 0)
                json_object_set(a, k, v);
        }
    }
    return fcall(st, "sb_act", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_get(sb_store_t *st, const char *conv, sb_store_cb cb, void *data)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    return fcall(st, "sb_get", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_messages(sb_store_t *st, const char *conv, const char *after, unsigned limit,
                      sb_store_cb cb, void *data)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    set_str(a, "after", after);
    json_object_set_new(a, "limit", json_integer(limit ? limit : 100));
    return fcall(st, "sb_messages", sb_store_shard(st, conv), a, cb, data);
}

int sb_store_public_page(sb_store_t *st, const char *conv, const char *before, const char *after,
                         unsigned limit, size_t max_bytes, sb_store_cb cb, void *data)
{
    json_t *a = json_object();
    json_object_set_new(a, "conv", json_string(conv));
    set_str(a, "before", before);
    set_str(a, "after", after);
    json_object_set_new(a, "limit", json_integer(limit ? limit : 50));
    json_object_set_new(a, "max_bytes", json_integer((json_int_t)max_bytes));
    return fcall(st, "sb_public_page", sb_store_shard(st, conv), a, cb, data);
}

/* ---- Contacts ---- */

typedef struct resolve_ctx {
    sb_store_t *st;
    char id[SB_ID_MAX];
    char *name, *email, *handle;
    sb_store_cb cb;
    void *data;
} resolve_ctx_t;

static void resolve_done(resolve_ctx_t *rc, int status, const char *id, bool created)
{
    if (status) {
        rc->cb(status, NULL, sb_strerror(status), rc->data);
    } else {
        json_t *res = json_pack("{s:s, s:b}", "id", id, "created", created);
        rc->cb(0, res, NULL, rc->data);
        json_decref(res);
    }
    sb_free(rc->name);
    sb_free(rc->email);
    sb_free(rc->handle);
    sb_free(rc);
}

static void on_contact_idents(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    resolve_ctx_t *rc = data;
    resolve_done(rc, status, rc->id, true);
}

/* The contact exists; record its first handle in its idents set (used by merges). */
static void on_contact_hset(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    resolve_ctx_t *rc = data;
    if (status) {
        resolve_done(rc, status, NULL, false);
        return;
    }
    char key[SB_KEY_MAX];
    snprintf(key, sizeof(key), "%scontact:%s:idents", rc->st->prefix, rc->id);
    const char *argv[] = {"SADD", key, rc->handle};
    if (sb_redis_command_argv(rc->st->redis, on_contact_idents, rc, 0, 3, argv, NULL) != 0)
        resolve_done(rc, SB_EUNAVAILABLE, NULL, false);
}

static void on_ident_set(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    resolve_ctx_t *rc = data;
    if (status) {
        resolve_done(rc, status, NULL, false);
        return;
    }
    if (reply->type == REDIS_REPLY_STRING) { /* existed: SET … NX GET returns the old id */
        char id[SB_ID_MAX];
        snprintf(id, sizeof(id), "%.*s", (int)reply->len, reply->str);
        resolve_done(rc, 0, id, false);
        return;
    }
    char created[24];
    snprintf(created, sizeof(created), "%lld", (long long)sb_now_ms());
    char key[256];
    snprintf(key, sizeof(key), "%scontact:%s", rc->st->prefix, rc->id);
    const char *argv[12] = {"HSET", key, "id", rc->id, "created_at", created, "handle", rc->handle};
    int argc = 8;
    if (rc->name) {
        argv[argc++] = "name";
        argv[argc++] = rc->name;
    }
    if (rc->email) {
        argv[argc++] = "email";
        argv[argc++] = rc->email;
    }
    if (sb_redis_command_argv(rc->st->redis, on_contact_hset, rc, 0, argc, argv, NULL) != 0)
        resolve_done(rc, SB_EUNAVAILABLE, NULL, false);
}

int sb_store_contact_resolve(sb_store_t *st, const char *kind, const char *value, const char *name,
                             const char *email, sb_store_cb cb, void *data)
{
    if (!kind || !*kind || !value || !*value)
        return SB_EINVAL;
    resolve_ctx_t *rc = SB_NEW(resolve_ctx_t);
    rc->st = st;
    sb_id_new("ct_", rc->id);
    rc->name = name && *name ? sb_strdup(name) : NULL;
    rc->email = email && *email ? sb_strdup(email) : NULL;
    rc->handle = sb_asprintf("%s:%s", kind, value);
    rc->cb = cb;
    rc->data = data;
    char *key = sb_asprintf("%sident:%s:%s", st->prefix, kind, value);
    const char *argv[] = {"SET", key, rc->id, "NX", "GET"};
    int err = sb_redis_command_argv(st->redis, on_ident_set, rc, 0, 5, argv, NULL);
    sb_free(key);
    if (err) {
        sb_free(rc->name);
        sb_free(rc->email);
        sb_free(rc->handle);
        sb_free(rc);
    }
    return err;
}

#define FIND_HOPS 8 /* merged_into links followed at most (merges refuse to make long chains) */

typedef struct find_ctx {
    sb_store_t *st;
    sb_store_cb cb;
    void *data;
    char asked[SB_ID_MAX], cur[SB_ID_MAX]; /* the contact asked for, the one looked up */
    int hops;
} find_ctx_t;

static int find_send(find_ctx_t *fc);

static void find_done(find_ctx_t *fc, int status)
{
    if (status) {
        fc->cb(status, NULL, status == SB_ENOTFOUND ? "no such contact" : sb_strerror(status),
               fc->data);
    } else {
        bool moved = strcmp(fc->asked, fc->cur) != 0;
        json_t *res =
            json_pack("{s:s, s:s?}", "id", fc->asked, "merged_into", moved ? fc->cur : NULL);
        fc->cb(0, res, NULL, fc->data);
        json_decref(res);
    }
    sb_free(fc);
}

static void on_contact_find(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    find_ctx_t *fc = data;
    const redisReply *id = !status && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
                               ? reply->element[0]
                               : NULL;
    const redisReply *into = id ? reply->element[1] : NULL;
    if (status || !id || id->type != REDIS_REPLY_STRING) {
        /* a contact merged into one whose record is gone still answers that one */
        find_done(fc, status ? status : fc->hops > 0 ? 0 : SB_ENOTFOUND);
        return;
    }
    char next[SB_ID_MAX] = "";
    if (into->type == REDIS_REPLY_STRING && into->len < SB_ID_MAX)
        snprintf(next, sizeof(next), "%.*s", (int)into->len, into->str);
    if (!sb_id_valid(next, "ct_") || fc->hops >= FIND_HOPS) {
        find_done(fc, 0); /* not merged (or an unreadable link: this one, then) */
        return;
    }
    snprintf(fc->cur, sizeof(fc->cur), "%s", next);
    fc->hops++;
    if (find_send(fc) != 0)
        find_done(fc, SB_EUNAVAILABLE);
}

static int find_send(find_ctx_t *fc)
{
    char *key = sb_asprintf("%scontact:%s", fc->st->prefix, fc->cur);
    const char *argv[] = {"HMGET", key, "id", "merged_into"};
    int rc = sb_redis_command_argv(fc->st->redis, on_contact_find, fc, 0, 4, argv, NULL);
    sb_free(key);
    return rc;
}

int sb_store_contact_find(sb_store_t *st, const char *contact, sb_store_cb cb, void *data)
{
    if (!contact || !*contact || strlen(contact) >= SB_ID_MAX)
        return SB_EINVAL;
    find_ctx_t *fc = SB_NEW(find_ctx_t);
    fc->st = st;
    fc->cb = cb;
    fc->data = data;
    snprintf(fc->asked, sizeof(fc->asked), "%s", contact);
    snprintf(fc->cur, sizeof(fc->cur), "%s", contact);
    int rc = find_send(fc);
    if (rc)
        sb_free(fc);
    return rc;
}

int sb_store_contact_latest(sb_store_t *st, const char *contact, const char *channel,
                            sb_store_cb cb, void *data)
{
    if (!contact || !channel)
        return SB_EINVAL;
    json_t *a = json_pack("{s:s, s:s}", "contact", contact, "channel", channel);
    return fcall(st, "sb_latest", sb_store_shard(st, contact), a, cb, data);
}

typedef struct ident_ctx {
    sb_store_t *st;
    sb_store_cb cb;
    void *data;
    char id[SB_ID_MAX]; /* the contact a SET points the handle at ("" for GET) */
    char *handle;       /* "kind:value" */
    unsigned pending;   /* idents set updates in flight after a SET */
    int status;
} ident_ctx_t;

static void ident_done(ident_ctx_t *ic, int status, const char *id)
{
    if (status) {
        ic->cb(status, NULL, sb_strerror(status), ic->data);
    } else if (id) {
        json_t *res = json_pack("{s:s}", "id", id);
        ic->cb(0, res, NULL, ic->data);
        json_decref(res);
    } else {
        ic->cb(SB_ENOTFOUND, NULL, "unknown handle", ic->data);
    }
    sb_free(ic->handle);
    sb_free(ic);
}

static void on_ident_sets(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    ident_ctx_t *ic = data;
    if (status && !ic->status)
        ic->status = status;
    if (--ic->pending == 0)
        ident_done(ic, ic->status, ic->id);
}

/* After SET … GET: the handle joins its contact's idents set and leaves the old one's. */
static void ident_sets(ident_ctx_t *ic, const char *old)
{
    sb_store_t *st = ic->st;
    char key[SB_KEY_MAX];
    snprintf(key, sizeof(key), "%scontact:%s:idents", st->prefix, ic->id);
    const char *add[] = {"SADD", key, ic->handle};
    ic->pending = 1;
    if (old && strcmp(old, ic->id) != 0) {
        char okey[SB_KEY_MAX];
        snprintf(okey, sizeof(okey), "%scontact:%s:idents", st->prefix, old);
        const char *rem[] = {"SREM", okey, ic->handle};
        ic->pending++;
        if (sb_redis_command_argv(st->redis, on_ident_sets, ic, 0, 3, rem, NULL) != 0)
            on_ident_sets(st->redis, NULL, SB_EUNAVAILABLE, ic);
    }
    if (sb_redis_command_argv(st->redis, on_ident_sets, ic, 0, 3, add, NULL) != 0)
        on_ident_sets(st->redis, NULL, SB_EUNAVAILABLE, ic);
}

static void on_ident(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    ident_ctx_t *ic = data;
    char old[SB_ID_MAX] = "";
    bool found = !status && reply->type == REDIS_REPLY_STRING;
    if (found)
        snprintf(old, sizeof(old), "%.*s", (int)reply->len, reply->str);
    if (status || !ic->id[0])
        ident_done(ic, status, found ? old : NULL);
    else
        ident_sets(ic, found ? old : NULL);
}

static int ident_cmd(sb_store_t *st, const char *kind, const char *value, const char *contact,
                     sb_store_cb cb, void *data)
{
    if (!kind || !value || !*value)
        return SB_EINVAL;
    ident_ctx_t *ic = SB_NEW(ident_ctx_t);
    ic->st = st;
    ic->cb = cb;
    ic->data = data;
    ic->handle = sb_asprintf("%s:%s", kind, value);
    if (contact)
        snprintf(ic->id, sizeof(ic->id), "%s", contact);
    char *key = sb_asprintf("%sident:%s", st->prefix, ic->handle);
    const char *argv[] = {contact ? "SET" : "GET", key, contact, "GET"};
    int rc = sb_redis_command_argv(st->redis, on_ident, ic, 0, contact ? 4 : 2, argv, NULL);
    sb_free(key);
    if (rc) {
        sb_free(ic->handle);
        sb_free(ic);
    }
    return rc;
}

int sb_store_ident_get(sb_store_t *st, const char *kind, const char *value, sb_store_cb cb,
                       void *data)
{
    return ident_cmd(st, kind, value, NULL, cb, data);
}

int sb_store_ident_set(sb_store_t *st, const char *kind, const char *value, const char *contact,
                       sb_store_cb cb, void *data)
{
    return ident_cmd(st, kind, value, contact, cb, data);
}

/* ---- Plain commands with a generic {"id"} / ok reply ---- */

typedef struct simple_ctx {
    sb_store_cb cb;
    void *data;
    char id[SB_ID_MAX];
} simple_ctx_t;

static void on_simple(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    simple_ctx_t *sc = data;
    if (sc->cb) {
        if (status) {
            sc->cb(status, NULL, reply && reply->str ? reply->str : sb_strerror(status), sc->data);
        } else {
            json_t *res = json_pack("{s:s}", "id", sc->id);
            sc->cb(0, res, NULL, sc->data);
            json_decref(res);
        }
    }
    sb_free(sc);
}

static int simple(sb_store_t *st, const char *id, int argc, const char **argv, sb_store_cb cb,
                  void *data)
{
    simple_ctx_t *sc = SB_NEW(simple_ctx_t);
    sc->cb = cb;
    sc->data = data;
    snprintf(sc->id, sizeof(sc->id), "%s", id ? id : "");
    int rc = sb_redis_command_argv(st->redis, on_simple, sc, 0, argc, argv, NULL);
    if (rc)
        sb_free(sc);
    return rc;
}

int sb_store_contact_set(sb_store_t *st, const char *contact, const char *field, const char *value,
                         sb_store_cb cb, void *data)
{
    if (!contact || !field || !value)
        return SB_EINVAL;
    char key[SB_KEY_MAX];
    snprintf(key, sizeof(key), "%scontact:%s", st->prefix, contact);
    const char *argv[] = {"HSET", key, field, value};
    return simple(st, contact, 4, argv, cb, data);
}

int sb_store_publish(sb_store_t *st, const char *conv, const char *json, sb_store_cb cb, void *data)
{
    if (!conv || !json)
        return SB_EINVAL;
    char key[SB_KEY_MAX], maxlen[24];
    snprintf(key, sizeof(key), "%s{%u}:events", st->prefix, sb_store_shard(st, conv));
    snprintf(maxlen, sizeof(maxlen), "%llu", (unsigned long long)st->opts.events_maxlen);
    const char *argv[] = {"XADD", key, "MAXLEN", "~", maxlen, "*", "conv", conv, "e", json};
    return simple(st, conv, 10, argv, cb, data);
}

typedef struct rt_ctx {
    sb_store_cb cb;
    void *data;
    unsigned pending;
    int status;
    json_t *samples;
} rt_ctx_t;

static void on_rt(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    rt_ctx_t *rc = data;
    if (status) {
        rc->status = status;
    } else if (reply->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < reply->elements; i++) {
            redisReply *e = reply->element[i];
            if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                e->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            redisReply *f = e->element[1];
            json_t *s = json_object();
            for (size_t k = 0; k + 1 < f->elements; k += 2) {
                if (strcmp(f->element[k]->str, "ms") == 0)
                    json_object_set_new(s, "ms", json_integer(atoll(f->element[k + 1]->str)));
                else if (strcmp(f->element[k]->str, "channel") == 0)
                    json_object_set_new(s, "channel", json_string(f->element[k + 1]->str));
            }
            json_array_append_new(rc->samples, s);
        }
    }
    if (--rc->pending > 0)
        return;
    if (rc->status) {
        rc->cb(rc->status, NULL, sb_strerror(rc->status), rc->data);
    } else {
        json_t *res = json_pack("{s:O}", "samples", rc->samples);
        rc->cb(0, res, NULL, rc->data);
        json_decref(res);
    }
    json_decref(rc->samples);
    sb_free(rc);
}

int sb_store_response_times(sb_store_t *st, unsigned per_shard, sb_store_cb cb, void *data)
{
    rt_ctx_t *rc = SB_NEW(rt_ctx_t);
    rc->cb = cb;
    rc->data = data;
    rc->samples = json_array();
    rc->pending = st->opts.shards;
    char count[16];
    snprintf(count, sizeof(count), "%u", per_shard ? per_shard : 50);
    for (unsigned i = 0; i < st->opts.shards; i++) {
        char key[SB_KEY_MAX];
        snprintf(key, sizeof(key), "%s{%u}:rt", st->prefix, i);
        const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", count};
        if (sb_redis_command_argv(st->redis, on_rt, rc, 0, 6, argv, NULL) != 0)
            on_rt(st->redis, NULL, SB_EUNAVAILABLE, rc);
    }
    return 0;
}

/* ---- Tokens ---- */

void sb_store_token_key(const char *prefix, const char *token, char *out, size_t cap)
{
    char hex[65];
    sb_sha256_hex(token, strlen(token), hex);
    snprintf(out, cap, "%stoken:%s", prefix, hex);
}

static void on_token(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    call_t *c = data;
    if (status) {
        c->cb(status, NULL, sb_strerror(status), c->data);
    } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) {
        c->cb(SB_ENOTFOUND, NULL, "unknown or revoked token", c->data);
    } else {
        json_t *o = json_object();
        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            redisReply *k = reply->element[i], *v = reply->element[i + 1];
            if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
                json_object_set_new(o, k->str, json_stringn(v->str, v->len));
        }
        c->cb(0, o, NULL, c->data);
        json_decref(o);
    }
    sb_free(c);
}

int sb_store_token_lookup(sb_store_t *st, const char *token, sb_store_cb cb, void *data)
{
    if (!token || !*token)
        return SB_EINVAL;
    char key[256];
    sb_store_token_key(st->prefix, token, key, sizeof(key));
    call_t *c = SB_NEW(call_t);
    c->st = st;
    c->cb = cb;
    c->data = data;
    const char *argv[] = {"HGETALL", key};
    int rc = sb_redis_command_argv(st->redis, on_token, c, 0, 2, argv, NULL);
    if (rc)
        sb_free(c);
    return rc;
}

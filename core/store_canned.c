/* SPDX-License-Identifier: MIT */
/*
 * Canned replies (store.h; docs/canned.md): one hash `<prefix>canned` outside the shards,
 * field the shortcut, value the reply's JSON {shortcut, title, text, created_by,
 * updated_by, updated_at}. Writes are small EVAL scripts so the entry limit and the
 * "only the author or an admin deletes" rule hold under concurrent callers.
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/msg.h"
#include "core/store_internal.h"
#include "core/sys.h"
#include "core/util.h"

/*
 * KEYS[1] the hash; ARGV shortcut, title, text, author id, now (ms), limit. Keeps the
 * first author on a replace. Returns {0 created | 1 replaced | -1 full, stored JSON}.
 */
static const char put_script[] =
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not old and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[6]) then return {-1, ''} end\n"
    "local by = ARGV[4]\n"
    "if old then\n"
    "  local ok, o = pcall(cjson.decode, old)\n"
    "  if ok and type(o) == 'table' and type(o.created_by) == 'string' then by = o.created_by end\n"
    "end\n"
    "local v = cjson.encode({shortcut = ARGV[1], title = ARGV[2], text = ARGV[3],\n"
    "  created_by = by, updated_by = ARGV[4], updated_at = tonumber(ARGV[5])})\n"
    "redis.call('HSET', KEYS[1], ARGV[1], v)\n"
    "if old then return {1, v} end\n"
    "return {0, v}\n";

/*
 * KEYS[1] the hash; ARGV shortcut, caller id, "1" when the caller may delete any entry.
 * Returns 1 deleted, 0 not found, -2 another author's entry.
 */
static const char delete_script[] =
    "local old = redis.call('HGET', KEYS[1], ARGV[1])\n"
    "if not old then return 0 end\n"
    "if ARGV[3] ~= '1' then\n"
    "  local ok, o = pcall(cjson.decode, old)\n"
    "  if not ok or type(o) ~= 'table' or o.created_by ~= ARGV[2] then return -2 end\n"
    "end\n"
    "redis.call('HDEL', KEYS[1], ARGV[1])\n"
    "return 1\n";

typedef struct canned_ctx {
    sb_store_cb cb;
    void *data;
} canned_ctx_t;

bool sb_canned_shortcut_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > SB_CANNED_SHORTCUT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static int canned_send(sb_store_t *st, sb_redis_reply_cb fn, sb_store_cb cb, void *data, int argc,
                       const char **argv)
{
    canned_ctx_t *cc = SB_NEW(canned_ctx_t);
    cc->cb = cb;
    cc->data = data;
    if (sb_redis_command_argv(st->redis, fn, cc, 0, argc, argv, NULL) != 0) {
        sb_free(cc);
        return SB_EUNAVAILABLE;
    }
    return 0;
}

static void fail(canned_ctx_t *cc, int status)
{
    cc->cb(status, NULL, sb_strerror(status), cc->data);
    sb_free(cc);
}

static void done(canned_ctx_t *cc, json_t *res)
{
    cc->cb(0, res, NULL, cc->data);
    json_decref(res);
    sb_free(cc);
}

/* ---- Listing ---- */

static int by_shortcut(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "shortcut")),
                  json_string_value(json_object_get(y, "shortcut")));
}

static void on_list(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    canned_ctx_t *cc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY) {
        fail(cc, status ? status : SB_EREDIS);
        return;
    }
    size_t n = 0;
    json_t **v = sb_calloc(reply->elements / 2 + 1, sizeof(*v));
    for (size_t i = 1; i < reply->elements; i += 2) {
        redisReply *e = reply->element[i];
        json_t *item = e->type == REDIS_REPLY_STRING ? json_loadb(e->str, e->len, 0, NULL) : NULL;
        if (json_is_object(item) && json_is_string(json_object_get(item, "shortcut")))
            v[n++] = item;
        else
            json_decref(item); /* not ours: skipped rather than failing the whole list */
    }
    qsort(v, n, sizeof(*v), by_shortcut);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, v[i]);
    sb_free(v);
    done(cc, json_pack("{s:o}", "items", items));
}

int sb_store_canned_list(sb_store_t *st, sb_store_cb cb, void *data)
{
    sb_key_t k;
    if (sb_key_canned(&k, st->prefix) != 0)
        return SB_EINVAL;
    const char *argv[] = {"HGETALL", k.str};
    return canned_send(st, on_list, cb, data, 2, argv);
}

/* ---- Writing ---- */

int sb_canned_check(const char *shortcut, const char *title, const char *text, const char **why)
{
    if (!sb_canned_shortcut_valid(shortcut)) {
        *why = "shortcut must be 1 to 32 characters of a-z, 0-9, _ and -";
        return SB_EINVAL;
    }
    int rc = title ? sb_line_check(title, SB_CANNED_TITLE_MAX) : SB_EINVAL;
    if (rc != 0) {
        *why = rc == SB_ETOOBIG ? "title is longer than 200 bytes"
                                : "title must be one line of valid UTF-8";
        return rc == SB_ETOOBIG ? SB_EINVAL : rc;
    }
    rc = sb_text_check(text, SB_MAX_TEXT);
    if (rc != 0) {
        *why = rc == SB_ETOOBIG ? "text is longer than 8 KiB"
               : rc == SB_EUTF8 ? "text must be valid UTF-8"
                                : "text must not be empty";
        return rc;
    }
    return 0;
}

static void on_put(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    canned_ctx_t *cc = data;
    if (status || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        fail(cc, status ? status : SB_EREDIS);
        return;
    }
    if (reply->element[0]->integer < 0) {
        cc->cb(SB_ECONFLICT, NULL, "there are already 1000 canned replies; remove one first",
               cc->data);
        sb_free(cc);
        return;
    }
    redisReply *v = reply->element[1];
    json_t *item = v->type == REDIS_REPLY_STRING ? json_loadb(v->str, v->len, 0, NULL) : NULL;
    if (!json_is_object(item)) {
        json_decref(item);
        fail(cc, SB_EREDIS);
        return;
    }
    done(cc, json_pack("{s:b, s:o}", "created", reply->element[0]->integer == 0, "item", item));
}

int sb_store_canned_put(sb_store_t *st, const char *shortcut, const char *title, const char *text,
                        const char *by, sb_store_cb cb, void *data)
{
    const char *why;
    sb_key_t k;
    if (sb_canned_check(shortcut, title, text, &why) != 0 || !by || !*by ||
        sb_key_canned(&k, st->prefix) != 0)
        return SB_EINVAL;
    char now[24], limit[16];
    snprintf(now, sizeof(now), "%lld", (long long)sb_now_ms());
    snprintf(limit, sizeof(limit), "%d", SB_CANNED_MAX);
    const char *argv[] = {"EVAL", put_script, "1", k.str, shortcut, title, text, by, now, limit};
    return canned_send(st, on_put, cb, data, (int)SB_ARRAY_LEN(argv), argv);
}

static void on_delete(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    (void)r;
    canned_ctx_t *cc = data;
    if (status || reply->type != REDIS_REPLY_INTEGER) {
        fail(cc, status ? status : SB_EREDIS);
        return;
    }
    if (reply->integer == 0) {
        cc->cb(SB_ENOTFOUND, NULL, "no such canned reply", cc->data);
        sb_free(cc);
    } else if (reply->integer < 0) {
        cc->cb(SB_EFORBIDDEN, NULL, "only its author or an admin may delete this canned reply",
               cc->data);
        sb_free(cc);
    } else {
        done(cc, json_pack("{s:b}", "deleted", 1));
    }
}

int sb_store_canned_delete(sb_store_t *st, const char *shortcut, const char *by, bool any,
                           sb_store_cb cb, void *data)
{
    sb_key_t k;
    if (!sb_canned_shortcut_valid(shortcut) || !by || sb_key_canned(&k, st->prefix) != 0)
        return SB_EINVAL;
    const char *argv[] = {"EVAL", delete_script, "1", k.str, shortcut, by, any ? "1" : "0"};
    return canned_send(st, on_delete, cb, data, (int)SB_ARRAY_LEN(argv), argv);
}

/* SPDX-License-Identifier: MIT */
/*
 * Redis key names (keys.h): each builder appends its parts into the key's fixed
 * storage; the first part that does not fit fails the key (sticky, nothing truncated).
 * The layout itself is described in keys.h and docs/redis-keys.md.
 */
#include "core/keys.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/util.h"

/* The rest of every key fits after the longest prefix (ids are bounded by SB_ID_MAX). */
_Static_assert(SB_PREFIX_MAX + sizeof("token:") - 1 + 64 < SB_KEY_MAX, "token keys fit");
_Static_assert(SB_PREFIX_MAX + sizeof("contact:") - 1 + SB_ID_MAX + sizeof(":idents") <= SB_KEY_MAX,
               "contact keys fit");
_Static_assert(SB_PREFIX_MAX + sizeof("{4294967295}:conv:") - 1 + SB_ID_MAX <= SB_KEY_MAX,
               "conversation keys fit");
/* A handle: kind below 40 bytes, value below 300 (an email address is at most 254). */
_Static_assert(SB_PREFIX_MAX + sizeof("ident:") + 40 + 300 <= SB_KEY_MAX, "ident keys fit");

_Static_assert(SB_PREFIX_MAX + sizeof("mid:sha256:") + 64 <= SB_KEY_MAX, "mid keys fit");
_Static_assert(SB_PREFIX_MAX + sizeof("mid:") + SB_KEY_MID_RAW_MAX <= SB_KEY_MAX,
               "raw mid keys fit");

static void key_start(sb_key_t *k)
{
    k->len = 0;
    k->err = 0;
    k->str[0] = '\0';
}

static void key_put(sb_key_t *k, const char *s, size_t n)
{
    if (k->err)
        return;
    if (n >= sizeof(k->str) - k->len) {
        k->err = SB_ETOOBIG;
        k->len = 0;
        k->str[0] = '\0';
        return;
    }
    memcpy(k->str + k->len, s, n);
    k->len += n;
    k->str[k->len] = '\0';
}

static void key_puts(sb_key_t *k, const char *s)
{
    key_put(k, s, strlen(s));
}

/* "<prefix>{<shard>}:" */
static void key_shard(sb_key_t *k, const char *prefix, unsigned shard)
{
    char tag[16];
    int n = snprintf(tag, sizeof(tag), "{%u}:", shard);
    key_start(k);
    key_puts(k, prefix);
    key_put(k, tag, (size_t)n);
}

/* `<prefix>{N}:<kind><id>`: one item of a shard (kind ends with ':'). */
static int shard_item(sb_key_t *k, const char *prefix, unsigned shard, const char *kind,
                      const char *id)
{
    key_shard(k, prefix, shard);
    key_puts(k, kind);
    key_puts(k, id);
    return k->err;
}

int sb_key_shard_prefix(sb_key_t *k, const char *prefix, unsigned shard)
{
    key_shard(k, prefix, shard);
    return k->err;
}

int sb_key_shard(sb_key_t *k, const char *prefix, unsigned shard, const char *name)
{
    key_shard(k, prefix, shard);
    key_puts(k, name);
    return k->err;
}

int sb_key_events(sb_key_t *k, const char *prefix, unsigned shard)
{
    return sb_key_shard(k, prefix, shard, "events");
}

int sb_key_queue(sb_key_t *k, const char *prefix, unsigned shard)
{
    return sb_key_shard(k, prefix, shard, "queue");
}

int sb_key_rt(sb_key_t *k, const char *prefix, unsigned shard)
{
    return sb_key_shard(k, prefix, shard, "rt");
}

int sb_key_conv(sb_key_t *k, const char *prefix, unsigned shard, const char *cid)
{
    return shard_item(k, prefix, shard, "conv:", cid);
}

int sb_key_log(sb_key_t *k, const char *prefix, unsigned shard, const char *cid)
{
    return shard_item(k, prefix, shard, "log:", cid);
}

int sb_key_outbox(sb_key_t *k, const char *prefix, unsigned shard, const char *channel)
{
    return shard_item(k, prefix, shard, "outbox:", channel);
}

int sb_key_dlv(sb_key_t *k, const char *prefix, unsigned shard, const char *cid)
{
    return shard_item(k, prefix, shard, "dlv:", cid);
}

int sb_key_contact(sb_key_t *k, const char *prefix, const char *ctid)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "contact:");
    key_puts(k, ctid);
    return k->err;
}

int sb_key_contact_idents(sb_key_t *k, const char *prefix, const char *ctid)
{
    sb_key_contact(k, prefix, ctid);
    key_puts(k, ":idents");
    return k->err;
}

int sb_key_ident(sb_key_t *k, const char *prefix, const char *kind, const char *value)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "ident:");
    key_puts(k, kind);
    key_puts(k, ":");
    key_puts(k, value);
    return k->err;
}

int sb_key_handle(sb_key_t *k, const char *prefix, const char *handle)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "ident:");
    key_puts(k, handle);
    return k->err;
}

int sb_key_token(sb_key_t *k, const char *prefix, const char *token)
{
    char hex[65];
    sb_sha256_hex(token, strlen(token), hex);
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "token:");
    key_put(k, hex, 64);
    return k->err;
}

int sb_key_presence(sb_key_t *k, const char *prefix)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "presence");
    return k->err;
}

int sb_key_principal(sb_key_t *k, const char *prefix, const char *kind, const char *id)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, kind);
    key_puts(k, ":");
    key_puts(k, id);
    return k->err;
}

int sb_key_webhooks(sb_key_t *k, const char *prefix)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "webhooks");
    return k->err;
}

int sb_key_notify(sb_key_t *k, const char *prefix)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "notify");
    return k->err;
}

int sb_key_staff_index(sb_key_t *k, const char *prefix)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "staff_index");
    return k->err;
}

int sb_key_once(sb_key_t *k, const char *prefix, const char *name)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "once:");
    key_puts(k, name);
    return k->err;
}

int sb_key_canned(sb_key_t *k, const char *prefix)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "canned");
    return k->err;
}

int sb_key_notif(sb_key_t *k, const char *prefix, const char *sid)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "notif:");
    key_puts(k, sid);
    return k->err;
}

int sb_key_notif_read(sb_key_t *k, const char *prefix, const char *sid)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "notif_read:");
    key_puts(k, sid);
    return k->err;
}

int sb_key_token_pattern(sb_key_t *k, const char *prefix)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "token:*");
    return k->err;
}

int sb_key_dead(sb_key_t *k, const char *prefix, const char *lane)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "dead:");
    key_puts(k, lane);
    return k->err;
}

/* An id kept as it is in a mid: key (keys.h says which). */
static bool mid_raw(const char *id, size_t n)
{
    static const char hashed[] = "sha256:";
    if (n == 0 || n > SB_KEY_MID_RAW_MAX || strncmp(id, hashed, sizeof(hashed) - 1) == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c < 0x21 || c > 0x7e || c == '{' || c == '}')
            return false;
    }
    return true;
}

int sb_key_mid(sb_key_t *k, const char *prefix, const char *id)
{
    size_t n = strlen(id);
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "mid:");
    if (mid_raw(id, n)) {
        key_put(k, id, n);
    } else {
        char hex[65];
        sb_sha256_hex(id, n, hex);
        key_puts(k, "sha256:");
        key_put(k, hex, 64);
    }
    return k->err;
}

int sb_key_cursor(sb_key_t *k, const char *prefix, const char *name)
{
    key_start(k);
    key_puts(k, prefix);
    key_puts(k, "cursor:");
    key_puts(k, name);
    return k->err;
}

char *sb_key_dup(const sb_key_t *k)
{
    return k->err ? NULL : sb_strdup(k->str);
}

/* SPDX-License-Identifier: MIT */
/*
 * sbctl — Switchboard's command-line client. Administration (tokens, staff, bots) talks
 * directly to the Redis of a configuration (-c FILE, or the defaults: the embedded Redis
 * under ./var of a running switchboard); tokens are stored hashed (SHA-256), so a token is
 * printed once and never again. Everything else is a client of the REST API
 * (SWITCHBOARD_URL, SWITCHBOARD_TOKEN), implemented in client.c.
 *
 *   sbctl token create --role admin|agent|exec|bot --name NAME [--channels LIST] [-c FILE]
 *   sbctl token revoke TOKEN [-c FILE]
 *   sbctl staff add --name N --email E --role agent|admin|exec [--channels LIST]
 *   sbctl staff list [--json] | staff remove ST_ID
 *   sbctl bot add --name N [--channels LIST] [--webhook URL --secret S [--events "WORD…"]]
 *   sbctl bot list [--json] | bot remove BOT_ID
 *   (--channels webchat,email: the token sees only those channels' conversations)
 *   sbctl queue | show ID | reply ID [TEXT|-] | note ID TEXT | claim ID [--steal]
 *   sbctl assign ID ST_ID|--none | release ID | resolve ID | tail [--after ID] | stats
 *   sbctl report [--from T] [--to T] [--channel C]   (T: ms, now, or a time ago: 7d)
 *
 * Exit codes: 0 ok, 1 failure, 2 usage or configuration error, 3 Redis or server
 * unreachable, 4 conflict (409), 5 not found (404), 6 unauthorized or forbidden (401/403).
 */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/channel.h"
#include "core/config.h"
#include "core/keys.h"
#include "core/store.h"
#include "core/term.h"
#include "core/util.h"
#include "gateway/cli/client.h"

enum {
    EXIT_OK = SBC_OK,
    EXIT_FAIL = SBC_FAIL,
    EXIT_USAGE = SBC_USAGE,
    EXIT_UNREACHABLE = SBC_UNREACHABLE,
    EXIT_NOTFOUND = SBC_NOT_FOUND
};

static void usage(FILE *f)
{
    fprintf(f, "usage: sbctl [OPTIONS] COMMAND …\n"
               "administration (direct to Redis; -c FILE or the embedded Redis under ./var):\n"
               "  token create --role admin|agent|exec|bot --name NAME [--channels LIST]\n"
               "                         create a token and print it (shown only once);\n"
               "                         --channels webchat,email: it sees only those\n"
               "                         channels' conversations and events\n"
               "  token revoke TOKEN     revoke a token at once\n"
               "  staff add --name N --email E --role agent|admin|exec [--channels LIST]\n"
               "                         add a staff member; prints their token once\n"
               "  staff list [--json]    list staff members\n"
               "  staff remove ST_ID     remove a staff member: all their tokens die at once\n"
               "  staff notify ST_ID new|assigned|none\n"
               "                         notification mail (with a mailbox configured): of\n"
               "                         every new conversation, of those assigned to them,\n"
               "                         or none (the default); they can answer by replying\n"
               "  bot add --name N [--channels LIST] [--webhook URL --secret S\n"
               "          [--events \"WORD...\"]]\n"
               "                         add a bot; prints its token once; with --webhook it\n"
               "                         gets every event from now on (or those --events lists)\n"
               "  bot list [--json]      list bots and their webhooks\n"
               "  bot remove BOT_ID      remove a bot: its tokens die, its webhook stops\n"
               "client (HTTP: SWITCHBOARD_URL, default http://127.0.0.1:8080, and\n"
               "SWITCHBOARD_TOKEN or --token):\n"
               "  queue                  open conversations, most urgent first\n"
               "  show ID                a conversation and its transcript\n"
               "  reply ID [TEXT|-]      answer (no TEXT or - reads stdin); refused with exit 4\n"
               "                         if newer messages arrived (--force sends anyway,\n"
               "                         --based-on SEQ instead of the current last_seq)\n"
               "  note ID TEXT           internal note (never reaches the customer)\n"
               "  claim ID [--steal]     assign to yourself (--steal: admins take it over)\n"
               "  assign ID ST_ID|--none hand it to a colleague on duty for its channel\n"
               "                         (they are notified), or to nobody\n"
               "  release ID             back to the queue\n"
               "  resolve ID             mark resolved\n"
               "  tail [--after ID]      live feed, one line per message, until Ctrl-C\n"
               "  stats                  queue depth and response times\n"
               "  report [--from T] [--to T] [--channel C]\n"
               "                         response times, breaches, who answered, who waits\n"
               "                         (T: ms, now, or a time ago like 7d; default 7d..now)\n"
               "  connectors             connectors and their outbox lanes (admin): paused\n"
               "                         lanes with the reason, counts, dead letters\n"
               "  connectors resume NAME send again on the lanes of connector NAME that a\n"
               "                         refused credential paused (admin)\n"
               "  canned list            the shared canned replies (/shortcut, title, text)\n"
               "  canned add SHORTCUT TITLE [TEXT|-]\n"
               "                         create or replace one (no TEXT or - reads stdin);\n"
               "                         {{contact.name}}, {{agent.name}} are filled in the\n"
               "                         console when it is inserted\n"
               "  canned remove SHORTCUT delete one (its author or an admin)\n"
               "options:\n"
               "  -c, --config FILE      switchboard configuration (administration)\n"
               "  --url URL, --token T   override SWITCHBOARD_URL / SWITCHBOARD_TOKEN\n"
               "  --json                 print the API's JSON as is (every read command)\n"
               "  -h, --help             this help\n"
               "exit codes: 0 ok, 1 failed, 2 usage/config error, 3 Redis or server\n"
               "unreachable, 4 conflict (409), 5 not found (404), 6 unauthorized/forbidden\n"
               "(401/403)\n");
}

/* Connects to the configured Redis (or the embedded one's socket). */
static redisContext *connect_redis(const sb_config_t *cfg, char *where, size_t cap)
{
    struct timeval tv = {3, 0};
    redisContext *c = NULL;
    int db = 0;
    if (!cfg->redis || !*cfg->redis) {
        char dir[PATH_MAX];
        if (!realpath(cfg->data_dir, dir))
            snprintf(dir, sizeof(dir), "%s", cfg->data_dir);
        snprintf(where, cap, "unix:%s/redis.sock", dir);
        c = redisConnectUnixWithTimeout(where + 5, tv);
    } else if (strncmp(cfg->redis, "unix:", 5) == 0) {
        snprintf(where, cap, "%s", cfg->redis);
        char *q = strchr(where, '?');
        if (q) {
            sscanf(q, "?db=%d", &db);
            *q = '\0';
        }
        c = redisConnectUnixWithTimeout(where + 5, tv);
    } else if (strncmp(cfg->redis, "redis://", 8) == 0) {
        char host[256] = "127.0.0.1";
        int port = 6379;
        snprintf(where, cap, "%s", cfg->redis);
        const char *hp = cfg->redis + 8;
        const char *colon = strrchr(hp, ':');
        const char *slash = strchr(hp, '/');
        size_t hl = colon ? (size_t)(colon - hp) : slash ? (size_t)(slash - hp) : strlen(hp);
        if (hl > 0 && hl < sizeof(host)) {
            memcpy(host, hp, hl);
            host[hl] = '\0';
        }
        if (colon)
            port = atoi(colon + 1);
        if (slash)
            db = atoi(slash + 1);
        c = redisConnectWithTimeout(host, port, tv);
    } else {
        snprintf(where, cap, "%s", cfg->redis);
        return NULL;
    }
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    if (db > 0) {
        redisReply *r = redisCommand(c, "SELECT %d", db);
        if (r)
            freeReplyObject(r);
    }
    return c;
}

static bool in_list(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

static bool role_valid(const char *role)
{
    static const char *const roles[] = {"admin", "agent", "exec", "bot"};
    return in_list(role, roles, SB_ARRAY_LEN(roles));
}

static bool staff_role_valid(const char *role)
{
    static const char *const roles[] = {"admin", "agent", "exec"};
    return in_list(role, roles, SB_ARRAY_LEN(roles));
}

static bool reply_ok(redisReply *r)
{
    bool ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r)
        freeReplyObject(r);
    return ok;
}

/*
 * Registers a bot's webhook: the consumer group wh:<id> on every shard's events stream
 * (from now on: events after `bot add` returns are delivered) and the id in the set
 * <prefix>webhooks that running daemons re-read every second (gateway/webhooks.c).
 */
static bool bot_webhook_register(redisContext *rc, const sb_config_t *cfg, const char *id)
{
    bool ok = true;
    sb_key_t k;
    for (unsigned i = 0; ok && i < cfg->shards; i++) {
        sb_key_events(&k, cfg->prefix, i);
        redisReply *r = redisCommand(rc, "XGROUP CREATE %s wh:%s $ MKSTREAM", k.str, id);
        ok = r && (r->type == REDIS_REPLY_STATUS ||
                   (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) == 0));
        if (r)
            freeReplyObject(r);
    }
    sb_key_webhooks(&k, cfg->prefix);
    return ok && reply_ok(redisCommand(rc, "SADD %s %s", k.str, id));
}

/*
 * Creates a principal (staff member or bot) and a token for it: the principal's hash
 * <prefix>staff|bot:<id> with id, name, role, created_at and the `extra` field/value
 * pairs (NULL values skipped), and the token record (kind, id, role, name). Prints the
 * token once. Used by token create, staff add and bot add.
 */
static int principal_create(redisContext *rc, const sb_config_t *cfg, const char *role,
                            const char *name, const char *channels, const char *const *extra,
                            size_t nextra)
{
    char raw[49], token[64], key[256], id[SB_ID_MAX], created[32];
    sb_random_hex(raw, 24);
    snprintf(token, sizeof(token), "sbt_%s", raw);
    sb_store_token_key(cfg->prefix, token, key, sizeof(key));
    bool bot = strcmp(role, "bot") == 0;
    sb_id_new(bot ? "bot_" : "st_", id);
    snprintf(created, sizeof(created), "%lld", (long long)sb_now_ms());
    const char *kind = bot ? "bot" : "staff";
    const char *targv[] = {"HSET", key,    "kind", kind,         "id",    id,         "role",
                           role,   "name", name,   "created_at", created, "channels", channels};
    bool ok = reply_ok(redisCommandArgv(rc, channels ? 14 : 12, targv, NULL));
    if (ok) {
        sb_key_t k; /* a new id: always fits */
        sb_key_principal(&k, cfg->prefix, kind, id);
        char *pkey = sb_key_dup(&k);
        const char *argv[32] = {"HSET", pkey,   "id", id,           "name",
                                name,   "role", role, "created_at", created};
        size_t argc = 10;
        if (channels) {
            argv[argc++] = "channels";
            argv[argc++] = channels;
        }
        for (size_t i = 0; i + 1 < nextra && argc + 2 <= SB_ARRAY_LEN(argv); i += 2) {
            if (!extra[i + 1])
                continue;
            argv[argc++] = extra[i];
            argv[argc++] = extra[i + 1];
        }
        ok = reply_ok(redisCommandArgv(rc, (int)argc, argv, NULL));
        sb_free(pkey);
        if (ok && !bot) { /* whom SLA steps reach is read from the index (core/store_staff.c) */
            sb_key_staff_index(&k, cfg->prefix);
            ok = reply_ok(redisCommand(rc, "SADD %s %s", k.str, id));
        }
        for (size_t i = 0; ok && bot && i + 1 < nextra; i += 2)
            if (strcmp(extra[i], "webhook") == 0 && extra[i + 1])
                ok = bot_webhook_register(rc, cfg, id);
    }
    if (!ok) {
        fprintf(stderr, "sbctl: could not store the token: %s\n", rc->err ? rc->errstr : "");
        return EXIT_FAIL;
    }
    printf("%s\n", token);
    fprintf(stderr, "sbctl: created %s token for %s (%s); it is shown only this once\n", role, name,
            id);
    return EXIT_OK;
}

static int token_create(redisContext *rc, const sb_config_t *cfg, const char *role,
                        const char *name, const char *channels)
{
    return principal_create(rc, cfg, role, name, channels, NULL, 0);
}

/*
 * Checks a --channels list ("webchat,email") and writes it normalised (comma-separated,
 * no spaces) into out; prints why not.
 */
static bool channels_valid(const char *list, char *out, size_t cap)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", list);
    out[0] = '\0';
    size_t n = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
        if (sb_channel_index(t) < 0) {
            fprintf(stderr, "sbctl: --channels: '%s' is not one of %s\n", t, SB_CHANNEL_LIST_TEXT);
            return false;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "," : "", t);
    }
    if (!out[0])
        fprintf(stderr, "sbctl: --channels needs at least one channel\n");
    return out[0] != '\0';
}

/* Prints one staff or bot hash (a flat HGETALL reply) as a table row or adds it to `arr`. */
static void principal_row(redisReply *h, json_t *arr, bool bot)
{
    /* the third column: a staff member's email, a bot's webhook URL */
    const char *f[5] = {"id", "name", bot ? "webhook" : "email", "role", "created_at"};
    const char *v[5] = {"-", "-", "-", "-", "-"};
    for (size_t i = 0; i + 1 < h->elements; i += 2)
        for (size_t k = 0; k < 5; k++)
            if (h->element[i]->type == REDIS_REPLY_STRING &&
                h->element[i + 1]->type == REDIS_REPLY_STRING &&
                strcmp(h->element[i]->str, f[k]) == 0)
                v[k] = h->element[i + 1]->str;
    if (arr) {
        json_t *o = json_object();
        for (size_t k = 0; k < 5; k++)
            if (strcmp(v[k], "-") != 0)
                json_object_set_new(o, f[k],
                                    k == 4 ? json_integer(atoll(v[k])) : json_string(v[k]));
        json_array_append_new(arr, o);
    } else {
        char *e[4]; /* names are typed by people: made safe for the terminal too */
        for (size_t k = 0; k < 4; k++) {
            sb_buf_t b;
            sb_buf_init(&b, 1 << 20);
            sb_term_escape(&b, v[k], strlen(v[k]), 0, 0);
            e[k] = sb_buf_steal(&b, NULL);
        }
        printf("%-30s %-20s %-30s %-6s\n", e[0], e[1], e[2], e[3]);
        for (size_t k = 0; k < 4; k++)
            sb_free(e[k]);
    }
}

/* SCANs <prefix>staff:* (or bot:*) and lists every staff member (or bot). */
static int principal_list(redisContext *rc, const sb_config_t *cfg, const char *kind, bool as_json)
{
    bool bot = strcmp(kind, "bot") == 0;
    sb_key_t pat;
    sb_key_principal(&pat, cfg->prefix, kind, "*"); /* a SCAN pattern: always fits */
    char *pattern = sb_key_dup(&pat);
    size_t plen = strlen(pattern) - 1;
    char cursor[32] = "0";
    json_t *arr = as_json ? json_array() : NULL;
    int code = EXIT_OK;
    if (!as_json)
        printf("%-30s %-20s %-30s %-6s\n", "ID", "NAME", bot ? "WEBHOOK" : "EMAIL", "ROLE");
    do {
        redisReply *r = redisCommand(rc, "SCAN %s MATCH %s COUNT 500", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            fprintf(stderr, "sbctl: redis error during SCAN\n");
            code = EXIT_FAIL;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            if (strchr(k + plen, ':'))
                continue; /* not a principal's record itself */
            redisReply *h = redisCommand(rc, "HGETALL %s", k);
            if (h && h->type == REDIS_REPLY_ARRAY && h->elements)
                principal_row(h, arr, bot);
            if (h)
                freeReplyObject(h);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    if (arr && code == EXIT_OK) {
        char *s = json_dumps(arr, JSON_COMPACT);
        printf("%s\n", s ? s : "[]");
        free(s);
    }
    json_decref(arr);
    sb_free(pattern);
    return code;
}

static int token_revoke(redisContext *rc, const sb_config_t *cfg, const char *token)
{
    char key[256];
    sb_store_token_key(cfg->prefix, token, key, sizeof(key));
    redisReply *r = redisCommand(rc, "DEL %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    if (n < 0) {
        fprintf(stderr, "sbctl: redis error\n");
        return EXIT_FAIL;
    }
    if (n == 0) {
        fprintf(stderr, "sbctl: no such token\n");
        return EXIT_FAIL;
    }
    fprintf(stderr, "sbctl: token revoked\n");
    return EXIT_OK;
}

/* DELs every token of principal `id` (SCAN of <prefix>token:*); returns how many, or -1. */
static long long tokens_revoke_of(redisContext *rc, const sb_config_t *cfg, const char *id)
{
    sb_key_t pat;
    sb_key_token_pattern(&pat, cfg->prefix); /* always fits */
    char *pattern = sb_key_dup(&pat);
    char cursor[32] = "0";
    long long n = 0;
    do {
        redisReply *r = redisCommand(rc, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            n = -1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            const char *k = keys->element[i]->str;
            redisReply *h = redisCommand(rc, "HGET %s id", k);
            bool mine = h && h->type == REDIS_REPLY_STRING && strcmp(h->str, id) == 0;
            if (h)
                freeReplyObject(h);
            if (mine && reply_ok(redisCommand(rc, "DEL %s", k)))
                n++;
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    sb_free(pattern);
    return n;
}

/*
 * Removes a staff member or a bot: every token of theirs dies at once (open feeds end
 * within seconds), a bot's webhook stops (running daemons re-read <prefix>webhooks every
 * second) and its consumer groups go, and the record is deleted. Transcripts keep their
 * names.
 */
static int principal_remove(redisContext *rc, const sb_config_t *cfg, const char *kind,
                            const char *id)
{
    sb_key_t pk, k;
    /* an id too long for a key names nobody */
    redisReply *r = sb_key_principal(&pk, cfg->prefix, kind, id) == 0
                        ? redisCommand(rc, "EXISTS %s", pk.str)
                        : NULL;
    bool exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    long long tokens = exists ? tokens_revoke_of(rc, cfg, id) : 0;
    bool ok = exists && tokens >= 0;
    if (ok && strcmp(kind, "bot") == 0) {
        sb_key_webhooks(&k, cfg->prefix);
        ok = reply_ok(redisCommand(rc, "SREM %s %s", k.str, id));
        for (unsigned i = 0; ok && i < cfg->shards; i++) {
            sb_key_events(&k, cfg->prefix, i);
            r = redisCommand(rc, "XGROUP DESTROY %s wh:%s", k.str, id);
            ok = r && r->type != REDIS_REPLY_ERROR;
            if (r)
                freeReplyObject(r);
        }
    }
    if (ok && strcmp(kind, "staff") == 0) {
        sb_key_notify(&k, cfg->prefix);
        ok = reply_ok(redisCommand(rc, "HDEL %s %s", k.str, id));
        sb_key_staff_index(&k, cfg->prefix);
        ok = ok && reply_ok(redisCommand(rc, "SREM %s %s", k.str, id));
    }
    ok = ok && reply_ok(redisCommand(rc, "DEL %s", pk.str));
    if (!exists) {
        fprintf(stderr, "sbctl: no %s %s\n", strcmp(kind, "bot") == 0 ? "bot" : "staff member", id);
        return EXIT_NOTFOUND;
    }
    if (!ok) {
        fprintf(stderr, "sbctl: redis error: %s\n", rc->err ? rc->errstr : "");
        return EXIT_FAIL;
    }
    fprintf(stderr, "sbctl: removed %s; %lld token%s revoked\n", id, tokens,
            tokens == 1 ? "" : "s");
    return EXIT_OK;
}

typedef struct args {
    const char *path, *role, *name, *email, *webhook, *secret, *events, *channels;
    sbc_opts_t http;
} args_t;

/* Checks --webhook, --secret and --events as the `webhook` config key would; prints why not. */
static bool webhook_valid(const args_t *a)
{
    char *words[64] = {sb_strdup(a->webhook), sb_strdup(a->secret)};
    int n = 2;
    char *events = sb_strdup(a->events ? a->events : "");
    for (char *save = NULL, *w = strtok_r(events, " \t,", &save); w && n < 64;
         w = strtok_r(NULL, " \t,", &save))
        words[n++] = w;
    char why[200];
    bool ok = sb_config_webhook_valid(n, words, why, sizeof(why));
    if (!ok)
        fprintf(stderr, "sbctl: --webhook/--secret/--events: %s\n", why);
    sb_free(events);
    sb_free(words[0]);
    sb_free(words[1]);
    return ok;
}

/* Checks the administration command's words and options; prints why not. */
/* staff notify: the preference on the staff record, and the notify hash the daemon reads
 * (only members who want mail are in it). */
static int staff_notify(redisContext *rc, const sb_config_t *cfg, const char *id, const char *mode)
{
    sb_key_t pk, nk;
    redisReply *r = sb_key_principal(&pk, cfg->prefix, "staff", id) == 0
                        ? redisCommand(rc, "EXISTS %s", pk.str)
                        : NULL;
    bool exists = r && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    if (r)
        freeReplyObject(r);
    if (!exists) {
        fprintf(stderr, "sbctl: no staff member %s\n", id);
        return EXIT_NOTFOUND;
    }
    sb_key_notify(&nk, cfg->prefix);
    bool ok =
        reply_ok(redisCommand(rc, "HSET %s notify %s", pk.str, mode)) &&
        reply_ok(strcmp(mode, "none") == 0 ? redisCommand(rc, "HDEL %s %s", nk.str, id)
                                           : redisCommand(rc, "HSET %s %s %s", nk.str, id, mode));
    if (!ok) {
        fprintf(stderr, "sbctl: redis error: %s\n", rc->err ? rc->errstr : "");
        return EXIT_UNREACHABLE;
    }
    printf("%s notify %s\n", id, mode);
    return EXIT_OK;
}

static bool notify_mode_valid(const char *m)
{
    return m && (strcmp(m, "new") == 0 || strcmp(m, "assigned") == 0 || strcmp(m, "none") == 0);
}

static bool admin_valid(const args_t *a, const char *w1, const char *w2, const char *w3,
                        const char *w4)
{
    if (strcmp(w1, "staff") == 0 && w2 && strcmp(w2, "notify") == 0) {
        if (!w3 || !sb_id_valid(w3, "st_") || !notify_mode_valid(w4))
            fprintf(stderr, "sbctl: staff notify ST_ID new|assigned|none\n");
        return w3 && sb_id_valid(w3, "st_") && notify_mode_valid(w4);
    }
    if (!w2)
        return false;
    char norm[256];
    if (a->channels && !channels_valid(a->channels, norm, sizeof(norm)))
        return false;
    bool named = a->name && *a->name;
    if (strcmp(w1, "token") == 0 && strcmp(w2, "revoke") == 0)
        return w3 != NULL;
    if (strcmp(w1, "staff") == 0 && strcmp(w2, "remove") == 0)
        return w3 && sb_id_valid(w3, "st_");
    if (strcmp(w1, "bot") == 0 && strcmp(w2, "remove") == 0)
        return w3 && sb_id_valid(w3, "bot_");
    if (strcmp(w1, "token") == 0 && strcmp(w2, "create") == 0) {
        if (!role_valid(a->role))
            fprintf(stderr, "sbctl: --role must be admin, agent, exec or bot\n");
        else if (!named)
            fprintf(stderr, "sbctl: --name is required\n");
        return role_valid(a->role) && named;
    }
    if ((strcmp(w1, "staff") == 0 || strcmp(w1, "bot") == 0) && strcmp(w2, "list") == 0)
        return true;
    if (strcmp(w1, "staff") == 0 && strcmp(w2, "add") == 0) {
        if (!staff_role_valid(a->role))
            fprintf(stderr, "sbctl: --role must be agent, admin or exec\n");
        else if (!named || !a->email || !*a->email)
            fprintf(stderr, "sbctl: --name and --email are required\n");
        return staff_role_valid(a->role) && named && a->email && *a->email;
    }
    if (strcmp(w1, "bot") == 0 && strcmp(w2, "add") == 0) {
        if (!named)
            fprintf(stderr, "sbctl: --name is required\n");
        else if (!a->webhook != !a->secret)
            fprintf(stderr, "sbctl: --webhook and --secret go together\n");
        else if (a->webhook && !webhook_valid(a))
            return false;
        return named && !a->webhook == !a->secret && (!a->events || a->webhook);
    }
    return false;
}

/* Runs an administration command against the configuration's Redis. */
static int admin_run(const args_t *a, const char *w1, const char *w2, const char *w3,
                     const char *w4)
{
    if (!admin_valid(a, w1, w2, w3, w4)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    sb_config_t cfg;
    sb_buf_t errors;
    sb_buf_init(&errors, 64 * 1024);
    if (sb_config_load_with(&cfg, a->path, sb_connectors_config(), &errors) != 0) {
        fputs(errors.data ? errors.data : "sbctl: bad configuration\n", stderr);
        sb_buf_dispose(&errors);
        sb_config_dispose(&cfg);
        return EXIT_USAGE;
    }
    sb_buf_dispose(&errors);
    char norm[256];
    const char *channels = NULL;
    if (a->channels && channels_valid(a->channels, norm, sizeof(norm)))
        channels = norm;
    char where[PATH_MAX + 16];
    int code;
    redisContext *rc = connect_redis(&cfg, where, sizeof(where));
    if (!rc) {
        fprintf(stderr, "sbctl: cannot reach Redis at %s%s\n", where,
                cfg.redis && *cfg.redis ? "" : " (is switchboard running with this data_dir?)");
        code = EXIT_UNREACHABLE;
    } else {
        if (strcmp(w1, "token") == 0 && strcmp(w2, "create") == 0) {
            code = token_create(rc, &cfg, a->role, a->name, channels);
        } else if (strcmp(w1, "token") == 0) {
            code = token_revoke(rc, &cfg, w3);
        } else if (strcmp(w2, "list") == 0) {
            code = principal_list(rc, &cfg, w1, a->http.json);
        } else if (strcmp(w2, "remove") == 0) {
            code = principal_remove(rc, &cfg, w1, w3);
        } else if (strcmp(w2, "notify") == 0) {
            code = staff_notify(rc, &cfg, w3, w4);
        } else if (strcmp(w1, "staff") == 0) {
            const char *extra[] = {"email", a->email};
            code = principal_create(rc, &cfg, a->role, a->name, channels, extra, 2);
        } else {
            const char *extra[] = {"webhook", a->webhook, "secret", a->secret, "events", a->events};
            code = principal_create(rc, &cfg, "bot", a->name, channels, extra, 6);
        }
        redisFree(rc);
    }
    sb_config_dispose(&cfg);
    return code;
}

/* Parses options (GNU getopt permutes: they may come before or after the words). */
static int parse(int argc, char **argv, args_t *a)
{
    enum {
        O_EMAIL = 256,
        O_WEBHOOK,
        O_SECRET,
        O_EVENTS,
        O_JSON,
        O_TOKEN,
        O_URL,
        O_FORCE,
        O_STEAL,
        O_AFTER,
        O_BASED,
        O_CHANNELS,
        O_FROM,
        O_TO,
        O_CHANNEL,
        O_NONE
    };
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"role", required_argument, NULL, 'r'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"email", required_argument, NULL, O_EMAIL},
                                             {"webhook", required_argument, NULL, O_WEBHOOK},
                                             {"secret", required_argument, NULL, O_SECRET},
                                             {"events", required_argument, NULL, O_EVENTS},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"token", required_argument, NULL, O_TOKEN},
                                             {"url", required_argument, NULL, O_URL},
                                             {"force", no_argument, NULL, O_FORCE},
                                             {"steal", no_argument, NULL, O_STEAL},
                                             {"none", no_argument, NULL, O_NONE},
                                             {"after", required_argument, NULL, O_AFTER},
                                             {"based-on", required_argument, NULL, O_BASED},
                                             {"channels", required_argument, NULL, O_CHANNELS},
                                             {"from", required_argument, NULL, O_FROM},
                                             {"to", required_argument, NULL, O_TO},
                                             {"channel", required_argument, NULL, O_CHANNEL},
                                             {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            a->path = optarg;
            break;
        case 'r':
            a->role = optarg;
            break;
        case 'n':
            a->name = optarg;
            break;
        case O_EMAIL:
            a->email = optarg;
            break;
        case O_WEBHOOK:
            a->webhook = optarg;
            break;
        case O_SECRET:
            a->secret = optarg;
            break;
        case O_EVENTS:
            a->events = optarg;
            break;
        case O_CHANNELS:
            a->channels = optarg;
            break;
        case O_JSON:
            a->http.json = true;
            break;
        case O_TOKEN:
            a->http.token = optarg;
            break;
        case O_URL:
            a->http.url = optarg;
            break;
        case O_FORCE:
            a->http.force = true;
            break;
        case O_STEAL:
            a->http.steal = true;
            break;
        case O_NONE:
            a->http.none = true;
            break;
        case O_AFTER:
            a->http.after = optarg;
            break;
        case O_BASED:
            a->http.based_on = optarg;
            break;
        case O_FROM:
            a->http.from = optarg;
            break;
        case O_TO:
            a->http.to = optarg;
            break;
        case O_CHANNEL:
            a->http.channel = optarg;
            break;
        case 'h':
            usage(stdout);
            return -1;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    sb_alloc_init(); /* before any jansson call */
    args_t a = {0};
    int code = parse(argc, argv, &a);
    if (code != EXIT_OK)
        return code < 0 ? EXIT_OK : code;
    const char *w1 = optind < argc ? argv[optind] : NULL;
    if (w1 && sbc_is_command(w1)) {
        if (!a.http.url)
            a.http.url = getenv("SWITCHBOARD_URL");
        if (!a.http.url || !*a.http.url)
            a.http.url = "http://127.0.0.1:8080";
        if (!a.http.token)
            a.http.token = getenv("SWITCHBOARD_TOKEN");
        char *url = sb_strdup(a.http.url);
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
            url[--n] = '\0';
        a.http.url = url;
        code = sbc_run(&a.http, argc - optind, argv + optind);
        sb_free(url);
        return code;
    }
    if (!w1 || (strcmp(w1, "token") != 0 && strcmp(w1, "staff") != 0 && strcmp(w1, "bot") != 0)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *w2 = optind + 1 < argc ? argv[optind + 1] : NULL;
    const char *w3 = optind + 2 < argc ? argv[optind + 2] : NULL;
    const char *w4 = optind + 3 < argc ? argv[optind + 3] : NULL;
    return admin_run(&a, w1, w2, w3, w4);
}

/* SPDX-License-Identifier: MIT */
/*
 * sbctl — Switchboard's command-line client. Administration (tokens) talks directly
 * to the Redis of a configuration (-c FILE, or the defaults: the embedded Redis under
 * ./var of a running switchboard); tokens are stored hashed (SHA-256), so the token
 * itself is printed once and never again.
 *
 *   sbctl token create --role admin|agent|exec|bot --name NAME [-c FILE]
 *   sbctl token revoke TOKEN [-c FILE]
 *
 * Exit codes: 0 ok, 1 failure talking to Redis, 2 usage or configuration error,
 * 3 Redis unreachable (is switchboard running?).
 */
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/store.h"
#include "core/util.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3 };

static void usage(FILE *f)
{
    fprintf(f, "usage: sbctl [-c FILE] COMMAND …\n"
               "  token create --role admin|agent|exec|bot --name NAME\n"
               "                      create a token and print it (shown only once)\n"
               "  token revoke TOKEN  revoke a token at once\n"
               "options:\n"
               "  -c, --config FILE   switchboard configuration (default: built-in defaults,\n"
               "                      i.e. the embedded Redis under ./var)\n"
               "exit codes: 0 ok, 1 failed, 2 usage/config error, 3 Redis unreachable\n");
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

static bool role_valid(const char *role)
{
    static const char *const roles[] = {"admin", "agent", "exec", "bot"};
    for (size_t i = 0; role && i < SB_ARRAY_LEN(roles); i++)
        if (strcmp(role, roles[i]) == 0)
            return true;
    return false;
}

static int token_create(redisContext *rc, const sb_config_t *cfg, const char *role,
                        const char *name)
{
    char raw[49], token[64], key[256], id[SB_ID_MAX], created[32];
    sb_random_hex(raw, 24);
    snprintf(token, sizeof(token), "sbt_%s", raw);
    sb_store_token_key(cfg->prefix, token, key, sizeof(key));
    bool bot = strcmp(role, "bot") == 0;
    sb_id_new(bot ? "bot_" : "st_", id);
    snprintf(created, sizeof(created), "%lld", (long long)sb_now_ms());
    const char *kind = bot ? "bot" : "staff";
    redisReply *r = redisCommand(rc, "HSET %s kind %s id %s role %s name %s created_at %s", key,
                                 kind, id, role, name, created);
    bool ok = r && r->type == REDIS_REPLY_INTEGER;
    if (r)
        freeReplyObject(r);
    if (ok) {
        char *pkey = sb_asprintf("%s%s:%s", cfg->prefix, bot ? "bot" : "staff", id);
        r = redisCommand(rc, "HSET %s id %s name %s role %s created_at %s", pkey, id, name, role,
                         created);
        ok = r && r->type == REDIS_REPLY_INTEGER;
        if (r)
            freeReplyObject(r);
        sb_free(pkey);
    }
    if (!ok) {
        fprintf(stderr, "sbctl: could not store the token: %s\n", rc->err ? rc->errstr : "");
        return EXIT_FAIL;
    }
    printf("%s\n", token);
    fprintf(stderr, "sbctl: created %s token for %s (%s); it is shown only this once\n", role,
            name, id);
    return EXIT_OK;
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

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"role", required_argument, NULL, 'r'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *path = NULL, *role = NULL, *name = NULL;
    int opt;
    /* GNU getopt permutes: options may come before or after the command words. */
    while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    int rargc = argc;
    char **rest = argv;
    const char *w1 = optind < rargc ? rest[optind] : NULL;
    const char *w2 = optind + 1 < rargc ? rest[optind + 1] : NULL;
    const char *w3 = optind + 2 < rargc ? rest[optind + 2] : NULL;
    int code = EXIT_USAGE;
    if (!w1 || strcmp(w1, "token") != 0 || !w2) {
        usage(stderr);
        goto out;
    }
    bool create = strcmp(w2, "create") == 0, revoke = strcmp(w2, "revoke") == 0;
    if ((!create && !revoke) || (create && (!role_valid(role) || !name || !*name)) ||
        (revoke && !w3)) {
        if (create && !role_valid(role))
            fprintf(stderr, "sbctl: --role must be admin, agent, exec or bot\n");
        else if (create)
            fprintf(stderr, "sbctl: --name is required\n");
        usage(stderr);
        goto out;
    }
    sb_config_t cfg;
    sb_buf_t errors;
    sb_buf_init(&errors, 64 * 1024);
    if (sb_config_load(&cfg, path, &errors) != 0) {
        fputs(errors.data ? errors.data : "sbctl: bad configuration\n", stderr);
        sb_buf_dispose(&errors);
        sb_config_dispose(&cfg);
        goto out;
    }
    sb_buf_dispose(&errors);
    char where[PATH_MAX + 16];
    redisContext *rc = connect_redis(&cfg, where, sizeof(where));
    if (!rc) {
        fprintf(stderr, "sbctl: cannot reach Redis at %s%s\n", where,
                cfg.redis && *cfg.redis ? "" : " (is switchboard running with this data_dir?)");
        code = EXIT_UNREACHABLE;
    } else {
        code = create ? token_create(rc, &cfg, role, name) : token_revoke(rc, &cfg, w3);
        redisFree(rc);
    }
    sb_config_dispose(&cfg);
out:
    return code;
}

/* SPDX-License-Identifier: MIT */
/*
 * Configuration (docs/contract.md §8): one file of `key value…` lines with `#` comments; every
 * key can be overridden by the environment variable SWITCHBOARD_<KEY> (upper case).
 * Keys are described by one table in config.c (name, kind, default, help); the same
 * table drives parsing, defaults, env overrides and `--check`.
 *
 * Single-valued keys appear at most once (a repeat is an error); list keys (webhook,
 * sla, calendar, holiday, escalate, and connectors' keys such as web chat's site) may repeat and
 * keep their words. For a list key the env override holds entries separated by ';'.
 *
 * Core holds no channel's keys: a connector describes its own as sb_config_key_t rows
 * (connectors/connector.h), the daemon passes them to sb_config_load_with, and they are
 * parsed, checked, overridden from the environment and listed like the core's; the
 * connector reads them back by name with sb_config_uint / _str / _list.
 */
#ifndef SB_CONFIG_H
#define SB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/log.h"

/** The longest `prefix` a configuration may set, in bytes (checked by --check). */
#define SB_PREFIX_MAX 64
/**
 * Room for any Redis key (core/keys.h), its NUL included: a prefix of up to
 * SB_PREFIX_MAX and the longest rest ("ident:" and a handle kind and value, "token:" and
 * a SHA-256 in hex, "contact:<id>:idents", "{<shard>}:events"; keys.c checks these fit
 * at compile time).
 */
#define SB_KEY_MAX (SB_PREFIX_MAX + 384)

/** One occurrence of a list key: its words and where it came from. */
typedef struct sb_config_entry {
    int argc;
    char **argv; /* words after the key (owned) */
    char *file;  /* source file or "env:SWITCHBOARD_KEY" (owned) */
    int line;
} sb_config_entry_t;

typedef struct sb_config_list {
    size_t n;
    sb_config_entry_t *items;
} sb_config_list_t;

typedef struct sb_config {
    char *listen;     /* default "127.0.0.1:8080" */
    char *public_url; /* default "http://<listen>" (https with TLS; * → localhost) */
    char *tls_cert;   /* NULL = plain HTTP */
    char *tls_key;
    char *redis;                /* NULL/empty = embedded */
    char *redis_server;         /* embedded: path of redis-server (default "redis-server") */
    char *data_dir;             /* default "./var" */
    char *prefix;               /* Redis key prefix, default "sb:" */
    unsigned shards;            /* default 16, 1..1024 */
    sb_log_level_t log_level;   /* default info */
    sb_log_format_t log_format; /* default text */
    int64_t reopen_window_ms;  /* default 7 days; written as 7d, 12h, 30m, 45s, 500ms or plain ms */
    uint64_t events_maxlen;    /* default 100000 */
    uint32_t redis_timeout_ms; /* per-command deadline, default 5000 */
    bool demo_page;            /* default on */
    char *notify_from;         /* NULL */
    uint32_t webhook_timeout_ms;    /* one delivery attempt, default 10 s */
    uint32_t webhook_retry_base_ms; /* first retry delay (doubles each attempt), default 1 s */
    uint32_t webhook_retry_max_ms;  /* retry delay cap, default 5 min */
    uint64_t webhook_attempts;      /* attempts before an event is dead, default 12 */
    uint32_t webhook_claim_idle_ms; /* take over other consumers' idle entries, default 5 min */
    uint32_t outbox_retry_base_ms;  /* channel outboxes (core/outbox.h): first retry, 1 s */
    uint32_t outbox_retry_max_ms;   /* retry delay cap, default 5 min */
    uint64_t outbox_attempts;       /* attempts before a dead letter, default 12 */
    uint32_t outbox_claim_idle_ms;  /* take over other consumers' idle entries, default 5 min */
    uint64_t outbox_dead_maxlen;    /* dead-letter stream cap per lane, default 10000 */
    uint64_t max_outbound_buffer;   /* bytes queued for all live readers together, 256 MiB */
    char *attachment_secret;        /* signs attachment URLs; NULL: <data_dir>/attachment.key */
    uint64_t attachment_max_bytes;  /* an attachment's bytes stored up to this, default 25 MiB */
    uint32_t attachment_url_ttl_ms; /* lifetime of a signed attachment URL, default 15 min */
    sb_config_list_t webhook, sla, calendar, holiday, escalate;
    struct sb_config_ext *ext; /* the values of the keys added by connectors (owned) */
    size_t next;
} sb_config_t;

/** The kind of a key added by a connector. */
typedef enum {
    SB_CONFIG_STRING,   /* one word; min = least length */
    SB_CONFIG_UINT,     /* a number in min..max */
    SB_CONFIG_BOOL,     /* on|off */
    SB_CONFIG_DURATION, /* 7d, 12h, 30m, 45s, 500ms; min..max in ms */
    SB_CONFIG_SIZE,     /* 64K, 256M; min..max in bytes */
    SB_CONFIG_LIST      /* repeatable; each entry has at least min words */
} sb_config_kind_t;

/**
 * A key a connector adds (its descriptor's `config` rows, ended by a row whose name is
 * NULL). Strings are static.
 */
typedef struct sb_config_key {
    const char *name;
    sb_config_kind_t kind;
    const char *def;   /* default written as in a file; NULL = unset (lists: no entries) */
    uint64_t min, max; /* bounds, as the kind says */
    const char *arg;   /* shape of the value ("<per-minute>"), for messages and --help-config */
    const char *help;
    /**
     * Optional, lists only: checks an entry's words. True, or false with the problem
     * written into why (cap bytes); reported as `file:line: name: why`.
     */
    bool (*check)(int argc, char *const *argv, char *why, size_t cap);
    /** Lists only: an entry whose first word an earlier entry has is an error (a name). */
    bool unique;
} sb_config_key_t;

/** Fills c with the defaults (no file), core keys only. */
void sb_config_init(sb_config_t *c);

/**
 * Fills c with the defaults of the core keys and of the keys in extra (NULL, or a
 * NULL-terminated array of key tables; borrowed, must outlive c).
 */
void sb_config_init_with(sb_config_t *c, const sb_config_key_t *const *extra);

/**
 * Loads `path` (NULL = defaults only) over the defaults, then applies SWITCHBOARD_*
 * environment overrides. c need not be initialised (this fills the defaults first) and
 * must be released with sb_config_dispose whatever the result. On error returns
 * SB_ECONFIG and appends one line per problem, `file:line: what` (env problems as
 * `env:SWITCHBOARD_KEY: what`), to errors (may be NULL); c then holds whatever parsed.
 * Unknown keys, bad numbers, bad values of enum keys, repeated single keys, a missing
 * file and wrong word counts are errors.
 */
int sb_config_load(sb_config_t *c, const char *path, sb_buf_t *errors);

/** sb_config_load with the keys of extra too (as sb_config_init_with). */
int sb_config_load_with(sb_config_t *c, const char *path, const sb_config_key_t *const *extra,
                        sb_buf_t *errors);

/**
 * The value of an added key of kind uint, duration (ms), size (bytes) or bool (0/1);
 * 0 when c has no such key.
 */
uint64_t sb_config_uint(const sb_config_t *c, const char *name);
/** The value of an added string key, or NULL (unset, or no such key). */
const char *sb_config_str(const sb_config_t *c, const char *name);
/** The entries of an added list key; an empty list when c has no such key. Never NULL. */
const sb_config_list_t *sb_config_list(const sb_config_t *c, const char *name);

/** Frees everything c owns. */
void sb_config_dispose(sb_config_t *c);

/** Parses a duration ("7d", "12h", "30m", "45s", "500ms", "1500"= ms) into ms. 0 or SB_EINVAL. */
int sb_config_parse_duration(const char *s, int64_t *ms);

/** Parses a size in bytes ("65536", "64K", "256M", "1G"; K/M/G are powers of 1024). 0 or SB_EINVAL.
 */
int sb_config_parse_size(const char *s, uint64_t *bytes);

/**
 * Checks the words of one `webhook` entry, `<url> <secret> [event...]`: an http(s) URL
 * with a host, a non-empty secret (`whsec_` + base64, or any raw text), filter words
 * made of a-z, '_' and '.' (or `*`). Returns true, or false with the first problem
 * written into why (cap bytes).
 */
bool sb_config_webhook_valid(int argc, char *const *argv, char *why, size_t cap);

/**
 * Writes every core key and every key of extra (as sb_config_init_with; may be NULL) with
 * its help text and default (for `switchboard --help-config`).
 */
void sb_config_print_keys(sb_buf_t *out, const sb_config_key_t *const *extra);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader of config.h (docs/contract.md §8, bounds of §9). One static table,
 * `options`, describes every key: its kind, where it lives in sb_config_t, its default,
 * its bounds and its help. That table alone fills the defaults, parses the file,
 * applies the SWITCHBOARD_<KEY> environment overrides, reports problems as
 * `file:line: what` for --check and prints --help-config: adding a key is adding a row
 * (and a line in deploy/switchboard.conf.example, which a unit test enforces).
 * The table holds no channel's keys: a connector's rows (sb_config_key_t, from its
 * descriptor) are turned into options of their own at init (`ext`, with the values
 * beside them) and from then on go through the same code as the table's.
 *
 * Syntax: one `key value…` per line, words separated by spaces or tabs; a word that
 * starts with `"` runs to the next unescaped `"` (`\"` and `\\` inside) and may hold
 * spaces; `#` at the start of a word starts a comment. Problems are collected, not
 * stopped at, so one --check run shows all of them. A file is at most 1 MiB and a line
 * at most 64 KiB. Environment values of single keys are taken as they are (no
 * quoting); those of list keys hold entries separated by ';', each split like a line.
 */
#include "core/config.h"
#include "core/config_internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/events.h"
#include "core/util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE   (1024 * 1024)
#define MAX_LINE   (64 * 1024)
#define MS_PER_DAY (24LL * 3600 * 1000)
#define ENV_PREFIX "SWITCHBOARD_"

/* ---- The table of options ---- */

typedef enum {
    OPT_STRING,
    OPT_UINT,
    OPT_BOOL,
    OPT_DURATION,
    OPT_SIZE,
    OPT_ENUM,
    OPT_LIST
} opt_kind_t;

/* Extra validation of a string value: NULL if fine, else why not (a static text). */
typedef const char *(*check_fn)(const char *v);

typedef struct option {
    const char *name;
    opt_kind_t kind;
    size_t offset;              /* of the field (or its sb_config_list_t) in sb_config_t */
    size_t size;                /* of that field */
    const char *def;            /* default, written as in a file; NULL = unset */
    uint64_t min, max;          /* uint, duration (ms), size (bytes): bounds; string: min
                                   length; list: min words */
    const char *const *choices; /* enum: the names; a value is its index */
    check_fn check;             /* string: extra validation (may be NULL) */
    const char *arg;            /* shape of the value, for messages and --help-config */
    const char *help;
    /* a connector's list key: checks an entry's words; may be NULL */
    bool (*entry_check)(int argc, char *const *argv, char *why, size_t cap);
    bool unique; /* lists: no two entries with the same first word */
} option_t;

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

_Static_assert(sizeof(sb_log_level_t) == sizeof(uint32_t), "enums are stored as 32 bits");
_Static_assert(sizeof(sb_log_format_t) == sizeof(uint32_t), "enums are stored as 32 bits");

#define FIELD(m) offsetof(sb_config_t, m), sizeof(((sb_config_t *)0)->m)
/* clang-format off */
#define STR(m, def, minlen, check, arg, help) \
    {#m, OPT_STRING, FIELD(m), def, minlen, 0, NULL, check, arg, help}
#define LIST(m, minwords, arg, help) \
    {#m, OPT_LIST, FIELD(m), NULL, minwords, 0, NULL, NULL, arg, help}
/* clang-format on */

static const option_t options[] = {
    STR(listen, "127.0.0.1:8080", 1, sb__config_check_listen, "<host:port>",
        "Address the HTTP/WebSocket server listens on: an IP, [IPv6], localhost or * (all)."),
    STR(public_url, NULL, 0, sb__config_check_url, "<url>",
        "URL browsers use to reach this server (default http://<listen>, https with TLS)."),
    STR(tls_cert, NULL, 0, NULL, "<file>", "PEM certificate chain; with tls_key, serve HTTPS."),
    STR(tls_key, NULL, 0, NULL, "<file>", "PEM private key of tls_cert."),
    STR(redis, NULL, 0, sb__config_check_redis, "<url>",
        "Redis to use, redis://host:port/db or unix:/path; unset = embedded under data_dir."),
    STR(redis_server, "redis-server", 1, NULL, "<path>",
        "The redis-server program the embedded mode runs."),
    STR(data_dir, "./var", 1, NULL, "<dir>",
        "Directory of the embedded Redis (AOF, socket), the attachments and their key."),
    STR(prefix, "sb:", 0, sb__config_check_prefix, "<string>",
        "Prefix of every Redis key (up to 64 bytes, no braces or spaces), so that several "
        "deployments can share one Redis."),
    {"shards", OPT_UINT, FIELD(shards), "16", 1, SB_EVENTS_MAX_SHARDS, NULL, NULL, "<1..1024>",
     "Conversation shards (event streams, queues); keep it fixed for the life of the data."},
    {"log_level", OPT_ENUM, FIELD(log_level), "info", 0, 0, log_levels, NULL,
     "error|warn|info|debug", "Least severe level logged (message bodies only at debug)."},
    {"log_format", OPT_ENUM, FIELD(log_format), "text", 0, 0, log_formats, NULL, "text|json",
     "Log lines as text or as one JSON object per line."},
    {"reopen_window", OPT_DURATION, FIELD(reopen_window_ms), "7d", 1, 365 * MS_PER_DAY, NULL, NULL,
     "<duration>", "A customer message this soon after resolution reopens the conversation."},
    {"events_maxlen", OPT_UINT, FIELD(events_maxlen), "100000", 1, 1000000000, NULL, NULL,
     "<count>", "Approximate length each shard's event stream is trimmed to."},
    {"redis_timeout", OPT_DURATION, FIELD(redis_timeout_ms), "5000ms", 1, 600000, NULL, NULL,
     "<duration>", "Deadline of one Redis command."},
    {"demo_page", OPT_BOOL, FIELD(demo_page), "on", 0, 1, NULL, NULL, "on|off",
     "Serve a demo page with the chat widget at /."},
    STR(notify_from, NULL, 0, NULL, "<address>",
        "From address of notification emails to staff (SLA warnings, escalations)."),
    LIST(webhook, 2, "<url> <secret> [event...]",
         "POST events (all, or those listed) to url, signed with secret (Standard Webhooks)."),
    {"webhook_timeout", OPT_DURATION, FIELD(webhook_timeout_ms), "10s", 100, 120000, NULL, NULL,
     "<duration>", "Deadline of one webhook delivery attempt (connect, send, answer)."},
    {"webhook_retry_base", OPT_DURATION, FIELD(webhook_retry_base_ms), "1s", 1, 3600000, NULL, NULL,
     "<duration>", "Delay before the first webhook retry; it doubles with every failed attempt."},
    {"webhook_retry_max", OPT_DURATION, FIELD(webhook_retry_max_ms), "5m", 1, 86400000, NULL, NULL,
     "<duration>", "Longest delay between two webhook attempts."},
    {"webhook_attempts", OPT_UINT, FIELD(webhook_attempts), "12", 1, 1000, NULL, NULL, "<count>",
     "Attempts before an undeliverable webhook event is given up (acked, counted as dead)."},
    {"webhook_claim_idle", OPT_DURATION, FIELD(webhook_claim_idle_ms), "5m", 1000, 86400000, NULL,
     NULL, "<duration>",
     "Webhook events left pending this long by another node (stopped, renamed) are taken over."},
    {"outbox_retry_base", OPT_DURATION, FIELD(outbox_retry_base_ms), "1s", 1, 3600000, NULL, NULL,
     "<duration>",
     "Delay before the first retry of a channel delivery; it doubles with every failed attempt."},
    {"outbox_retry_max", OPT_DURATION, FIELD(outbox_retry_max_ms), "5m", 1, 86400000, NULL, NULL,
     "<duration>", "Longest delay between two attempts of a channel delivery."},
    {"outbox_attempts", OPT_UINT, FIELD(outbox_attempts), "12", 1, 1000, NULL, NULL, "<count>",
     "Failed attempts before a channel delivery becomes a dead letter."},
    {"outbox_claim_idle", OPT_DURATION, FIELD(outbox_claim_idle_ms), "5m", 1000, 86400000, NULL,
     NULL, "<duration>",
     "Outbox entries left pending this long by another node (stopped, renamed) are taken over."},
    {"outbox_dead_maxlen", OPT_UINT, FIELD(outbox_dead_maxlen), "10000", 10, 100000000, NULL, NULL,
     "<count>", "Dead letters kept per lane (<prefix>dead:<lane>, trimmed with MAXLEN ~)."},
    {"max_outbound_buffer", OPT_SIZE, FIELD(max_outbound_buffer), "256M", 1 << 20, 1ULL << 40, NULL,
     NULL, "<size>",
     "Bytes queued for all slow live readers together (SSE, WebSockets); past it the "
     "largest queues are closed first."},
    STR(attachment_secret, NULL, 0, NULL, "<secret>",
        "Key signing attachment download URLs; unset = a random key kept in "
        "<data_dir>/attachment.key. Nodes that do not share data_dir need the same value."),
    {"attachment_max_bytes", OPT_SIZE, FIELD(attachment_max_bytes), "25M", 0, 64ULL << 20, NULL,
     NULL, "<size>",
     "Largest attachment whose bytes are stored; larger ones are listed without them."},
    {"attachment_url_ttl", OPT_DURATION, FIELD(attachment_url_ttl_ms), "15m", 1000, 7 * MS_PER_DAY,
     NULL, NULL, "<duration>", "How long a signed attachment URL handed to staff stays valid."},
    LIST(calendar, 4, "<name> <IANA-zone> <days> <HH:MM-HH:MM>[,...] [<days> <ranges>...]",
         "Business hours an SLA can count in: a time zone and weekly open periods "
         "(docs/sla.md)."),
    LIST(holiday, 2, "<calendar> <YYYY-MM-DD>...",
         "Dates on which a calendar's periods do not open."),
    LIST(sla, 2,
         "<name> channel=<channel|*> priority=<priority|*> first=<dur> next=<dur> "
         "resolve=<dur> [calendar=<name>]",
         "An SLA policy; the first policy matching a conversation's channel and priority "
         "wins."),
    LIST(escalate, 3, "<sla-name|*> <percent>% <target>[,<target>...]",
         "Escalation step: at that percentage of an SLA clock's target, notify the targets "
         "(assignee, everyone, role:<role>, st_<id>)."),
};

#define NOPTS SB_ARRAY_LEN(options)

_Static_assert(SB_EVENTS_MAX_SHARDS == 1024, "the shards row's text says 1..1024");

static const option_t *find_option(const char *name)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strcmp(options[i].name, name) == 0)
            return &options[i];
    return NULL;
}

/* ---- Error reporting ---- */

/* Where a value came from: a file line, or an environment variable (line 0). */
typedef struct src {
    const char *file; /* path, or "env:SWITCHBOARD_KEY" */
    int line;         /* > 0 for a file */
    int entry;        /* > 0: the n-th ';'-separated entry of an env list */
} src_t;

typedef struct load {
    sb_config_t *c;
    sb_buf_t *errors; /* may be NULL */
    int nerr;
    const char *path;
    int set_at[NOPTS]; /* single keys: 0 unset, > 0 file line, -1 environment */
} load_t;

static void report(load_t *l, const src_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- Keys added by connectors ---- */

/* One added key: its row as an option whose offset is into this struct, and its value. */
struct sb_config_ext {
    option_t o;
    int set_at; /* as load_t's */
    char *s;
    uint64_t u;
    bool b;
    sb_config_list_t list;
};

/* A key of either table: its row, the struct its offset is into, where it was set. */
typedef struct slot {
    const option_t *o;
    void *base;
    int *set_at; /* NULL outside a load */
} slot_t;

static slot_t slot_at(load_t *l, sb_config_t *c, size_t i)
{
    if (i < NOPTS)
        return (slot_t){&options[i], c, l ? &l->set_at[i] : NULL};
    struct sb_config_ext *e = &c->ext[i - NOPTS];
    return (slot_t){&e->o, e, &e->set_at};
}

static bool find_slot(load_t *l, const char *name, slot_t *out)
{
    for (size_t i = 0; i < NOPTS + l->c->next; i++) {
        *out = slot_at(l, l->c, i);
        if (strcmp(out->o->name, name) == 0)
            return true;
    }
    return false;
}

static const struct sb_config_ext *find_ext(const sb_config_t *c, const char *name)
{
    for (size_t i = 0; i < c->next; i++)
        if (strcmp(c->ext[i].o.name, name) == 0)
            return &c->ext[i];
    return NULL;
}

/* Makes c->ext from the added tables (a name already taken keeps its first row). */
static void ext_init(sb_config_t *c, const sb_config_key_t *const *extra)
{
    static const struct {
        opt_kind_t kind;
        size_t offset, size;
    } kinds[] = {
        [SB_CONFIG_STRING] = {OPT_STRING, offsetof(struct sb_config_ext, s), sizeof(char *)},
        [SB_CONFIG_UINT] = {OPT_UINT, offsetof(struct sb_config_ext, u), sizeof(uint64_t)},
        [SB_CONFIG_BOOL] = {OPT_BOOL, offsetof(struct sb_config_ext, b), sizeof(bool)},
        [SB_CONFIG_DURATION] = {OPT_DURATION, offsetof(struct sb_config_ext, u), sizeof(uint64_t)},
        [SB_CONFIG_SIZE] = {OPT_SIZE, offsetof(struct sb_config_ext, u), sizeof(uint64_t)},
        [SB_CONFIG_LIST] = {OPT_LIST, offsetof(struct sb_config_ext, list),
                            sizeof(sb_config_list_t)},
    };
    size_t n = 0;
    for (size_t t = 0; extra && extra[t]; t++)
        for (const sb_config_key_t *k = extra[t]; k->name; k++)
            n++;
    c->ext = n ? sb_calloc(n, sizeof(*c->ext)) : NULL;
    for (size_t t = 0; extra && extra[t]; t++) {
        for (const sb_config_key_t *k = extra[t]; k->name; k++) {
            if (find_option(k->name) || find_ext(c, k->name) || k->kind > SB_CONFIG_LIST)
                continue;
            struct sb_config_ext *e = &c->ext[c->next++];
            e->o = (option_t){.name = k->name,
                              .kind = kinds[k->kind].kind,
                              .offset = kinds[k->kind].offset,
                              .size = kinds[k->kind].size,
                              .def = k->def,
                              .min = k->min,
                              .max = k->max,
                              .arg = k->arg,
                              .help = k->help,
                              .entry_check = k->check,
                              .unique = k->unique};
        }
    }
}

uint64_t sb_config_uint(const sb_config_t *c, const char *name)
{
    const struct sb_config_ext *e = find_ext(c, name);
    return !e ? 0 : e->o.kind == OPT_BOOL ? e->b : e->u;
}

const char *sb_config_str(const sb_config_t *c, const char *name)
{
    const struct sb_config_ext *e = find_ext(c, name);
    return e ? e->s : NULL;
}

const sb_config_list_t *sb_config_list(const sb_config_t *c, const char *name)
{
    static const sb_config_list_t none;
    const struct sb_config_ext *e = find_ext(c, name);
    return e && e->o.kind == OPT_LIST ? &e->list : &none;
}

/* Appends one `file:line: what` line (whole or not at all, should errors be full). */
static void report(load_t *l, const src_t *at, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    l->nerr++;
    if (!l->errors)
        return;
    char entry[32] = "";
    if (at->entry > 0)
        snprintf(entry, sizeof(entry), "entry %d: ", at->entry);
    if (at->line > 0)
        sb_buf_printf(l->errors, "%s:%d: %s%s\n", at->file, at->line, entry, what);
    else
        sb_buf_printf(l->errors, "%s: %s%s\n", at->file, entry, what);
}

static void env_name(const option_t *o, char *out, size_t n, bool with_tag)
{
    int k = snprintf(out, n, "%s%s", with_tag ? "env:" ENV_PREFIX : ENV_PREFIX, o->name);
    for (int i = with_tag ? 4 : 0; i < k && (size_t)i < n; i++)
        if (out[i] >= 'a' && out[i] <= 'z')
            out[i] = (char)(out[i] - 'a' + 'A');
}

/* ---- Setting values ---- */

static void store_uint(void *field, size_t size, uint64_t v)
{
    if (size == sizeof(uint64_t)) {
        memcpy(field, &v, sizeof(v));
    } else {
        uint32_t x = (uint32_t)v;
        memcpy(field, &x, sizeof(x));
    }
}

static bool set_string(load_t *l, const option_t *o, char **field, const char *v, const src_t *at)
{
    if (strlen(v) < o->min) {
        report(l, at, "%s: empty value (%s %s)", o->name, o->name, o->arg);
        return false;
    }
    const char *why = o->check ? o->check(v) : NULL;
    if (why) {
        report(l, at, "%s: '%.100s' %s", o->name, v, why);
        return false;
    }
    sb_free(*field);
    *field = (*v || o->def) ? sb_strdup(v) : NULL; /* "" unsets a key that has no default */
    return true;
}

static bool set_number(load_t *l, const option_t *o, void *field, const char *v, const src_t *at)
{
    uint64_t n;
    char lo[32], hi[32];
    if (o->kind == OPT_SIZE) {
        if (sb_config_parse_size(v, &n) != 0) {
            report(l, at, "%s: '%.100s' is not a size (bytes, or with K, M or G: 256M)", o->name,
                   v);
            return false;
        }
        snprintf(lo, sizeof(lo), "%lluK", (unsigned long long)(o->min >> 10));
        snprintf(hi, sizeof(hi), "%lluG", (unsigned long long)(o->max >> 30));
    } else if (o->kind == OPT_DURATION) {
        int64_t ms;
        if (sb_config_parse_duration(v, &ms) != 0) {
            report(l, at, "%s: '%.100s' is not a duration (e.g. 7d, 12h, 30m, 45s, 500ms)", o->name,
                   v);
            return false;
        }
        n = (uint64_t)ms;
        sb__config_format_duration((int64_t)o->min, lo, sizeof(lo));
        sb__config_format_duration((int64_t)o->max, hi, sizeof(hi));
    } else {
        int rc = sb__config_parse_u64(v, &n);
        if (rc == SB_EINVAL) {
            report(l, at, "%s: '%.100s' is not a number", o->name, v);
            return false;
        }
        if (rc != 0)
            n = UINT64_MAX;
        snprintf(lo, sizeof(lo), "%llu", (unsigned long long)o->min);
        snprintf(hi, sizeof(hi), "%llu", (unsigned long long)o->max);
    }
    if (n < o->min || n > o->max) {
        report(l, at, "%s: %.100s is out of range %s..%s", o->name, v, lo, hi);
        return false;
    }
    store_uint(field, o->size, n);
    return true;
}

static bool set_value(load_t *l, slot_t k, const char *v, const src_t *at)
{
    const option_t *o = k.o;
    void *field = (char *)k.base + o->offset;
    switch (o->kind) {
    case OPT_STRING:
        return set_string(l, o, field, v, at);
    case OPT_UINT:
    case OPT_DURATION:
    case OPT_SIZE:
        return set_number(l, o, field, v, at);
    case OPT_BOOL:
        if (strcmp(v, "on") != 0 && strcmp(v, "off") != 0) {
            report(l, at, "%s: '%.100s' is not on or off", o->name, v);
            return false;
        }
        *(bool *)field = strcmp(v, "on") == 0;
        return true;
    case OPT_ENUM:
        for (uint32_t i = 0; o->choices[i]; i++) {
            if (strcmp(v, o->choices[i]) == 0) {
                store_uint(field, o->size, i);
                return true;
            }
        }
        report(l, at, "%s: '%.100s' is not one of %s", o->name, v, o->arg);
        return false;
    case OPT_LIST:
        break;
    }
    return false;
}

static void free_list(sb_config_list_t *list)
{
    for (size_t i = 0; i < list->n; i++) {
        sb_config_entry_t *e = &list->items[i];
        for (int k = 0; k < e->argc; k++)
            sb_free(e->argv[k]);
        sb_free(e->argv);
        sb_free(e->file);
    }
    sb_free(list->items);
    list->items = NULL;
    list->n = 0;
}

static void add_entry(load_t *l, slot_t k, int argc, char **argv, const src_t *at)
{
    const option_t *o = k.o;
    char why[200];
    if ((uint64_t)argc < o->min) {
        report(l, at, "%s: needs at least %d words: %s %s", o->name, (int)o->min, o->name, o->arg);
        return;
    }
    if (o->entry_check && !o->entry_check(argc, argv, why, sizeof(why))) {
        report(l, at, "%s: %s", o->name, why);
        return;
    }
    sb_config_list_t *list = (sb_config_list_t *)((char *)k.base + o->offset);
    for (size_t i = 0; o->unique && argc > 0 && i < list->n; i++) {
        if (strcmp(list->items[i].argv[0], argv[0]) == 0) {
            report(l, at, "%s: duplicate '%.100s' (first at %s:%d)", o->name, argv[0],
                   list->items[i].file, list->items[i].line);
            return;
        }
    }
    list->items = sb_realloc(list->items, (list->n + 1) * sizeof(*list->items));
    sb_config_entry_t *e = &list->items[list->n++];
    e->argc = argc;
    e->argv = sb_calloc((size_t)argc, sizeof(char *));
    for (int i = 0; i < argc; i++)
        e->argv[i] = sb_strdup(argv[i]);
    e->file = sb_strdup(at->file);
    e->line = at->line > 0 ? at->line : at->entry;
}

/* A key and its words from a file line: one value for single keys, an entry for lists. */
static void apply(load_t *l, slot_t k, int argc, char **argv, const src_t *at)
{
    const option_t *o = k.o;
    if (o->kind == OPT_LIST) {
        add_entry(l, k, argc, argv, at);
        return;
    }
    if (argc == 0) {
        report(l, at, "%s: missing value (%s %s)", o->name, o->name, o->arg);
    } else if (argc > 1) {
        report(l, at, "%s: expects one value, got %d (quote a value with spaces)", o->name, argc);
    } else if (*k.set_at > 0) {
        report(l, at, "%s: repeated (first set on line %d)", o->name, *k.set_at);
    } else {
        *k.set_at = at->line;
        set_value(l, k, argv[0], at);
    }
}

/* ---- Lexing and files ---- */

static void parse_line(load_t *l, char *line, const src_t *at, words_t *w)
{
    const char *why = sb__config_split_words(line, w);
    if (why) {
        report(l, at, "%s", why);
        return;
    }
    if (w->n == 0)
        return;
    slot_t k;
    if (!find_slot(l, w->v[0], &k)) {
        report(l, at, "unknown key '%.100s'", w->v[0]);
        return;
    }
    apply(l, k, w->n - 1, w->v + 1, at);
}

/* Parses a whole file's text (NUL-terminated at text[len]; modified in place). */
static void parse_text(load_t *l, char *text, size_t len)
{
    words_t w = {0};
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        char *line = text + pos;
        char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl ? 1 : 0);
        src_t at = {.file = l->path, .line = ++lineno};
        if (n > MAX_LINE) {
            report(l, &at, "line longer than %d bytes", MAX_LINE);
            continue;
        }
        if (memchr(line, '\0', n)) {
            report(l, &at, "NUL byte in line");
            continue;
        }
        if (!sb_utf8_valid(line, n)) {
            report(l, &at, "invalid UTF-8");
            continue;
        }
        line[n] = '\0';
        if (n > 0 && line[n - 1] == '\r')
            line[n - 1] = '\0';
        parse_line(l, line, &at, &w);
    }
    sb_free(w.v);
}

static void load_file(load_t *l)
{
    src_t at = {.file = l->path};
    FILE *f = fopen(l->path, "rb");
    if (!f) {
        report(l, &at, "cannot open: %s", strerror(errno));
        return;
    }
    sb_buf_t text;
    sb_buf_init(&text, MAX_FILE);
    char chunk[16384];
    size_t n;
    bool ok = true;
    while (ok && (n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (sb_buf_append(&text, chunk, n) != 0) {
            report(l, &at, "larger than %d bytes", MAX_FILE);
            ok = false;
        }
    }
    if (ok && ferror(f)) {
        report(l, &at, "cannot read: %s", strerror(errno));
        ok = false;
    }
    fclose(f);
    if (ok && text.len)
        parse_text(l, text.data, text.len);
    sb_buf_dispose(&text);
}

/* ---- Environment ---- */

/* SWITCHBOARD_<LIST>: replaces the file's entries with the ';'-separated ones. */
static void apply_env_list(load_t *l, slot_t k, const char *v, const src_t *at)
{
    free_list((sb_config_list_t *)((char *)k.base + k.o->offset));
    char *copy = sb_strdup(v);
    words_t w = {0};
    int entry = 0;
    for (char *save = NULL, *part = strtok_r(copy, ";", &save); part;
         part = strtok_r(NULL, ";", &save)) {
        src_t eat = {.file = at->file, .entry = ++entry};
        const char *why = sb__config_split_words(part, &w);
        if (why)
            report(l, &eat, "%s", why);
        else if (w.n > 0)
            add_entry(l, k, w.n, w.v, &eat);
    }
    sb_free(w.v);
    sb_free(copy);
}

static void apply_env(load_t *l)
{
    for (size_t i = 0; i < NOPTS + l->c->next; i++) {
        slot_t k = slot_at(l, l->c, i);
        const option_t *o = k.o;
        char var[64], tagged[80];
        env_name(o, var, sizeof(var), false);
        env_name(o, tagged, sizeof(tagged), true);
        const char *v = getenv(var);
        if (!v)
            continue;
        src_t at = {.file = tagged};
        if (strlen(v) > MAX_LINE) {
            report(l, &at, "longer than %d bytes", MAX_LINE);
        } else if (!sb_utf8_valid(v, strlen(v))) {
            report(l, &at, "invalid UTF-8");
        } else if (o->kind == OPT_LIST) {
            apply_env_list(l, k, v, &at);
        } else if (set_value(l, k, v, &at)) {
            *k.set_at = -1;
        }
    }
}

/* ---- Loading ---- */

/* Reports a problem at the place where single key `name` was set. */
static void report_key(load_t *l, const char *name, const char *what)
{
    const option_t *o = find_option(name);
    int line = l->set_at[o - options];
    char tagged[80];
    env_name(o, tagged, sizeof(tagged), true);
    src_t at = {.file = line > 0 ? l->path : tagged, .line = line};
    report(l, &at, "%s", what);
}

bool sb_config_webhook_valid(int argc, char *const *argv, char *why, size_t cap)
{
    const char *url = argc > 0 ? argv[0] : "", *secret = argc > 1 ? argv[1] : "";
    const char *host = !strncmp(url, "http://", 7)    ? url + 7
                       : !strncmp(url, "https://", 8) ? url + 8
                                                      : NULL;
    if (!host || !*host || *host == '/' || strpbrk(url, " \t\r\n")) {
        snprintf(why, cap, "'%.100s' is not an http:// or https:// URL", url);
        return false;
    }
    if (!*secret) {
        snprintf(why, cap, "empty secret");
        return false;
    }
    if (!strncmp(secret, "whsec_", 6)) {
        const char *b = secret + 6;
        size_t n = strspn(b, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
        size_t pad = strspn(b + n, "=");
        if (n == 0 || b[n + pad] || n % 4 == 1 || (pad && (n + pad) % 4)) {
            snprintf(why, cap, "secret 'whsec_...' is not valid base64");
            return false;
        }
    }
    for (int k = 2; k < argc; k++) {
        const char *w = argv[k];
        size_t n = strspn(w, "abcdefghijklmnopqrstuvwxyz_.");
        if (strcmp(w, "*") != 0 && (n == 0 || w[n] || w[0] == '.' || w[n - 1] == '.')) {
            snprintf(why, cap, "'%.100s' is not an event name (e.g. message.in handoff)", w);
            return false;
        }
    }
    return true;
}

static void check_webhooks(load_t *l)
{
    for (size_t i = 0; i < l->c->webhook.n; i++) {
        const sb_config_entry_t *e = &l->c->webhook.items[i];
        bool env = strncmp(e->file, "env:", 4) == 0;
        src_t at = {.file = e->file, .line = env ? 0 : e->line, .entry = env ? e->line : 0};
        char why[200];
        if (!sb_config_webhook_valid(e->argc, e->argv, why, sizeof(why)))
            report(l, &at, "webhook: %s", why);
    }
}

/* Checks across keys, then derives public_url from listen when it is unset. */
static void finish(load_t *l)
{
    sb_config_t *c = l->c;
    if (c->tls_cert && !c->tls_key)
        report_key(l, "tls_cert", "tls_cert is set but tls_key is not");
    if (c->tls_key && !c->tls_cert)
        report_key(l, "tls_key", "tls_key is set but tls_cert is not");
    check_webhooks(l);
    if (!c->public_url) {
        const char *colon = strrchr(c->listen, ':');
        size_t hl = (size_t)(colon - c->listen);
        bool any = hl == 0 || !strncmp(c->listen, "*:", 2) || !strncmp(c->listen, "0.0.0.0:", 8) ||
                   !strncmp(c->listen, "[::]:", 5);
        c->public_url = sb_asprintf("%s://%.*s%s", c->tls_cert ? "https" : "http",
                                    any ? 9 : (int)hl, any ? "localhost" : c->listen, colon);
    }
}

void sb_config_init_with(sb_config_t *c, const sb_config_key_t *const *extra)
{
    memset(c, 0, sizeof(*c));
    ext_init(c, extra);
    load_t l = {.c = c, .path = "(defaults)"};
    src_t at = {.file = "(defaults)"};
    for (size_t i = 0; i < NOPTS + c->next; i++) {
        slot_t k = slot_at(&l, c, i);
        if (k.o->def)
            set_value(&l, k, k.o->def, &at);
    }
}

void sb_config_init(sb_config_t *c)
{
    sb_config_init_with(c, NULL);
}

int sb_config_load(sb_config_t *c, const char *path, sb_buf_t *errors)
{
    return sb_config_load_with(c, path, NULL, errors);
}

int sb_config_load_with(sb_config_t *c, const char *path, const sb_config_key_t *const *extra,
                        sb_buf_t *errors)
{
    sb_config_init_with(c, extra);
    load_t l = {.c = c, .errors = errors, .path = path};
    if (path)
        load_file(&l);
    apply_env(&l);
    finish(&l);
    return l.nerr ? SB_ECONFIG : 0;
}

void sb_config_dispose(sb_config_t *c)
{
    for (size_t i = 0; i < NOPTS + c->next; i++) {
        slot_t k = slot_at(NULL, c, i);
        void *field = (char *)k.base + k.o->offset;
        if (k.o->kind == OPT_STRING) {
            sb_free(*(char **)field);
            *(char **)field = NULL;
        } else if (k.o->kind == OPT_LIST) {
            free_list(field);
        }
    }
    sb_free(c->ext);
    c->ext = NULL;
    c->next = 0;
}

void sb_config_print_keys(sb_buf_t *out, const sb_config_key_t *const *extra)
{
    sb_config_t c;
    sb_config_init_with(&c, extra);
    for (size_t i = 0; i < NOPTS + c.next; i++) {
        const option_t *o = slot_at(NULL, &c, i).o;
        char var[64];
        env_name(o, var, sizeof(var), false);
        sb_buf_printf(out, "%s %s", o->name, o->arg);
        if (o->kind == OPT_LIST)
            sb_buf_printf(out, "  (repeatable; %s holds entries separated by ';')\n", var);
        else if (o->def)
            sb_buf_printf(out, "  (default %s; env %s)\n", o->def, var);
        else
            sb_buf_printf(out, "  (unset by default; env %s)\n", var);
        sb_buf_printf(out, "    %s\n", o->help);
    }
    sb_config_dispose(&c);
}

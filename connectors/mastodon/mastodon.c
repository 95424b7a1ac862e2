/* SPDX-License-Identifier: MIT */
/*
 * The Mastodon connector (docs/mastodon.md): mentions and direct messages of one or more
 * accounts into the queue, answers back as replies in the customer's thread.
 *
 * This file owns the lifecycle. Each `mastodon <name> <base-url> <token-file>` row is an
 * account that starts with GET /api/v1/accounts/verify_credentials (who we are) and
 * GET /api/v2/instance (the status length limit, the streaming server), then follows
 * the streaming API (stream.c) with a catch-up after every connect (catchup.c). A 401
 * anywhere pauses the account: nothing is streamed or polled, its deliveries answer
 * `auth`, the admins get an alert (core/alert.h), and every mastodon_pause_retry the token
 * file is read again and verify_credentials tried; a success resumes it ("resumed").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mastodon/internal.h"
#include "core/alert.h"
#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sys.h"

#define BACKOFF_MIN_MS  500
#define BACKOFF_MAX_MS  60000
#define TOKEN_MAX       4096
#define NAME_MAX_LEN    32
#define DEFAULT_CHARS   500
#define DEFAULT_URL_CHR 23

static void acct_begin(md_acct_t *a);

md_acct_t *sb__md_acct(md_t *md, const char *name)
{
    for (size_t i = 0; name && i < md->naccts; i++)
        if (strcmp(md->accts[i].name, name) == 0)
            return &md->accts[i];
    return NULL;
}

/* The first line of the token file, trimmed; NULL (why written) when unreadable or empty. */
static char *read_token(const char *path, char *why, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, cap, "cannot read the token file %s", path);
        return NULL;
    }
    char line[TOKEN_MAX];
    char *got = fgets(line, sizeof(line), f);
    fclose(f);
    size_t n = got ? strcspn(line, "\r\n") : 0;
    line[n] = '\0';
    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    const char *t = line + strspn(line, " \t");
    if (!*t || strpbrk(t, " \t")) {
        snprintf(why, cap, "the token file %s has no token on its first line", path);
        return NULL;
    }
    return sb_strdup(t);
}

/* ---- Timers ---- */

static void on_timer_closed(uv_handle_t *h)
{
    md_t *md = h->data;
    sb_free(h);
    md->timers--;
    sb__md_maybe_done(md);
}

static void on_timer(uv_timer_t *t)
{
    md_acct_t *a = t->data;
    if (!a->md->stopping)
        acct_begin(a);
}

static void arm(md_acct_t *a, uint64_t ms)
{
    if (a->md->stopping)
        return;
    if (!a->timer) {
        a->timer = sb_malloc(sizeof(*a->timer));
        uv_timer_init(a->md->env.loop, a->timer);
        a->timer->data = a;
        a->md->timers++;
    }
    uv_timer_start(a->timer, on_timer, ms, 0);
}

void sb__md_reconnect_later(md_acct_t *a)
{
    if (a->state == MD_PAUSED || a->state == MD_STOPPED || a->md->stopping)
        return;
    a->gen++;
    a->reconnects++;
    a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (a->backoff_ms > BACKOFF_MAX_MS)
        a->backoff_ms = BACKOFF_MAX_MS;
    SB_LOG_INFO("mastodon.reconnect", "account=%s in_ms=%u", a->name, a->backoff_ms);
    arm(a, a->backoff_ms);
}

/* ---- Pause and resume ---- */

/* Tells the admins about a pause once the store can take it (not yet at start). */
static void send_alert(md_acct_t *a)
{
    if (!a->alert_due || !sb_store_ready(a->md->env.store))
        return;
    a->alert_due = false;
    sb_alert_admins(a->md->env.store, SB__MD_CHANNEL, a->name, "paused", a->reason, sb_now_ms());
}

void sb__md_pause(md_acct_t *a, const char *why)
{
    if (a->state == MD_STOPPED || a->md->stopping)
        return;
    a->gen++;
    sb__md_stream_stop(a);
    sb__md_queue_clear(a);
    a->catching_up = false;
    if (a->state != MD_PAUSED) {
        a->state = MD_PAUSED;
        a->pauses++;
        snprintf(a->reason, sizeof(a->reason), "%s", why);
        SB_LOG_WARN("mastodon.paused", "account=%s reason=\"%s\" retry_ms=%u", a->name, why,
                    a->md->pause_retry_ms);
        a->alert_due = true;
    }
    send_alert(a);
    arm(a, a->md->pause_retry_ms);
}

static void resumed(md_acct_t *a)
{
    send_alert(a); /* a pause nobody was told of yet comes first */
    SB_LOG_WARN("mastodon.resumed", "account=%s", a->name);
    sb_alert_admins(a->md->env.store, SB__MD_CHANNEL, a->name, "resumed", NULL, sb_now_ms());
    a->reason[0] = '\0';
    /* the lane an auth outcome paused sends again, unless another account still waits */
    md_t *md = a->md;
    for (size_t i = 0; i < md->naccts; i++)
        if (md->accts[i].state == MD_PAUSED)
            return;
    if (md->env.resume_lanes)
        md->env.resume_lanes(md->env.lanes_data, "mastodon");
}

/* ---- Start: verify_credentials, then the instance, then the stream ---- */

static char *stream_base_of(const char *u)
{
    if (!u || !*u)
        return NULL;
    if (strncmp(u, "wss://", 6) == 0)
        return sb_asprintf("https://%s", u + 6);
    if (strncmp(u, "ws://", 5) == 0)
        return sb_asprintf("http://%s", u + 5);
    if (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0)
        return sb_strdup(u);
    return NULL;
}

static void on_instance(md_acct_t *a, const sb_httpc_response_t *res, bool stale, void *arg)
{
    (void)arg;
    if (stale)
        return;
    json_t *j = res->status == 0 && res->code / 100 == 2
                    ? json_loadb(res->body, res->body_len, 0, NULL)
                    : NULL;
    json_t *conf = json_object_get(j, "configuration");
    const char *domain = json_string_value(json_object_get(j, "domain"));
    if (domain && *domain && strlen(domain) < 256 && !strpbrk(domain, "/@ ")) {
        sb_free(a->host); /* local accts' domain (LOCAL_DOMAIN may differ from the URL's) */
        a->host = sb_strdup(domain);
    }
    json_t *st = json_object_get(conf, "statuses");
    json_int_t mc = json_integer_value(json_object_get(st, "max_characters"));
    json_int_t uc = json_integer_value(json_object_get(st, "characters_reserved_per_url"));
    a->max_chars = mc > 0 && mc < 1000000 ? (size_t)mc : DEFAULT_CHARS;
    a->url_chars = uc > 0 && uc < 1000 ? (size_t)uc : DEFAULT_URL_CHR;
    char *sb = stream_base_of(
        json_string_value(json_object_get(json_object_get(conf, "urls"), "streaming")));
    sb_free(a->stream_base);
    a->stream_base = sb ? sb : sb_strdup(a->base);
    size_t n = strlen(a->stream_base);
    if (n > 0 && a->stream_base[n - 1] == '/')
        a->stream_base[n - 1] = '\0';
    json_decref(j);
    if (!j)
        SB_LOG_WARN("mastodon.instance", "account=%s code=%ld max_characters=%zu (default)",
                    a->name, res->code, a->max_chars);
    a->state = MD_UP;
    SB_LOG_INFO("mastodon.up", "account=%s acct=%s max_characters=%zu url_weight=%zu", a->name,
                a->my_acct, a->max_chars, a->url_chars);
    sb__md_stream_start(a);
}

static void on_verified(md_acct_t *a, const sb_httpc_response_t *res, bool stale, void *arg)
{
    (void)arg;
    if (stale)
        return;
    if (a->state == MD_PAUSED && (res->status != 0 || res->code / 100 != 2)) {
        arm(a, a->md->pause_retry_ms); /* still refused or unreachable: later */
        return;
    }
    json_t *j = res->status == 0 && res->code / 100 == 2
                    ? json_loadb(res->body, res->body_len, 0, NULL)
                    : NULL;
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *acct = json_string_value(json_object_get(j, "acct"));
    if (!id || !acct || strlen(id) >= sizeof(a->my_id)) {
        char why[256];
        sb__md_reason(res, why, sizeof(why));
        SB_LOG_WARN("mastodon.verify", "account=%s err=\"%s\"", a->name, why);
        json_decref(j);
        sb__md_reconnect_later(a);
        return;
    }
    snprintf(a->my_id, sizeof(a->my_id), "%s", id);
    snprintf(a->my_acct, sizeof(a->my_acct), "%s", acct);
    json_decref(j);
    if (a->state == MD_PAUSED) {
        a->state = MD_STARTING;
        resumed(a);
    }
    char *url = sb_asprintf("%s/api/v2/instance", a->base);
    if (sb__md_call(a, true, "GET", url, NULL, NULL, on_instance, NULL) != 0)
        sb__md_reconnect_later(a);
    sb_free(url);
}

/* (Re)starts an account: the token file read again, who we are asked. */
static void acct_begin(md_acct_t *a)
{
    char why[256];
    char *token = read_token(a->token_file, why, sizeof(why));
    if (!token) {
        sb__md_pause(a, why);
        return;
    }
    sb_free(a->auth);
    a->auth = sb_asprintf("Authorization: Bearer %s", token);
    sb_free(token);
    a->gen++;
    char *url = sb_asprintf("%s/api/v1/accounts/verify_credentials", a->base);
    if (sb__md_call(a, true, "GET", url, NULL, NULL, on_verified, NULL) != 0)
        sb__md_reconnect_later(a);
    sb_free(url);
}

/* ---- The connector ---- */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

/* The host of an http(s) URL (sb_malloc'd), or NULL when there is none. */
static char *url_host(const char *url)
{
    const char *h = strncmp(url, "https://", 8) == 0  ? url + 8
                    : strncmp(url, "http://", 7) == 0 ? url + 7
                                                      : NULL;
    if (!h)
        return NULL;
    size_t n = strcspn(h, "/?#");
    if (n == 0 || memchr(h, '@', n) || strpbrk(h, " \t"))
        return NULL;
    return sb_strndup(h, n);
}

static int start(const sb_connector_env_t *env, void **state)
{
    const sb_config_list_t *l = sb_config_list(env->cfg, "mastodon");
    *state = NULL;
    if (!l || l->n == 0)
        return 0;
    md_t *md = SB_NEW(md_t);
    md->env = *env;
    md->stall_ms = (uint32_t)sb_config_uint(env->cfg, "mastodon_stall");
    md->pause_retry_ms = (uint32_t)sb_config_uint(env->cfg, "mastodon_pause_retry");
    md->max_parts = (unsigned)sb_config_uint(env->cfg, "mastodon_max_parts");
    md->accts = sb_calloc(l->n, sizeof(md_acct_t));
    for (size_t i = 0; i < l->n; i++) {
        const sb_config_entry_t *e = &l->items[i];
        md_acct_t *a = &md->accts[i];
        if (sb__md_acct(md, e->argv[0])) {
            SB_LOG_ERROR("mastodon.config", "at=%s:%d account=%s err=\"duplicate name\"", e->file,
                         e->line, e->argv[0]);
            for (size_t k = 0; k < md->naccts; k++) {
                sb_free(md->accts[k].name), sb_free(md->accts[k].base);
                sb_free(md->accts[k].token_file), sb_free(md->accts[k].host);
            }
            sb_free(md->accts);
            sb_free(md);
            return SB_ECONFIG;
        }
        a->md = md;
        a->name = sb_strdup(e->argv[0]);
        a->base = sb_strdup(e->argv[1]);
        size_t bl = strlen(a->base);
        while (bl > 0 && a->base[bl - 1] == '/')
            a->base[--bl] = '\0';
        a->token_file = sb_strdup(e->argv[2]);
        a->host = url_host(a->base);
        a->max_chars = DEFAULT_CHARS;
        a->url_chars = DEFAULT_URL_CHR;
        md->naccts++;
    }
    sb_httpc_new(env->loop, "Switchboard-mastodon", &md->httpc);
    for (size_t i = 0; i < md->naccts; i++) {
        SB_LOG_INFO("mastodon.start", "account=%s base=%s", md->accts[i].name, md->accts[i].base);
        acct_begin(&md->accts[i]);
    }
    *state = md;
    return 0;
}

void sb__md_maybe_done(md_t *md)
{
    if (!md->stopping || !md->httpc_stopped || md->timers > 0 || md->pending > 0)
        return;
    for (size_t i = 0; i < md->naccts; i++)
        if (md->accts[i].inflight > 0)
            return;
    for (size_t i = 0; i < md->naccts; i++) {
        md_acct_t *a = &md->accts[i];
        sb_sse_free(a->sse);
        sb_free(a->name), sb_free(a->base), sb_free(a->token_file), sb_free(a->host);
        sb_free(a->auth), sb_free(a->stream_base), sb_free(a->next_url);
    }
    sb_connector_stopped_cb done = md->stopped;
    void *data = md->stopped_data;
    sb_free(md->accts);
    sb_free(md);
    done(data);
}

static void on_httpc_stopped(void *data)
{
    md_t *md = data;
    md->httpc_stopped = true;
    sb__md_maybe_done(md);
}

static void close_timer(md_t *md, uv_timer_t **t)
{
    if (!*t)
        return;
    (*t)->data = md;
    uv_close((uv_handle_t *)*t, on_timer_closed);
    *t = NULL;
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    md_t *md = state;
    md->stopped = done;
    md->stopped_data = data;
    md->stopping = true;
    for (size_t i = 0; i < md->naccts; i++) {
        md_acct_t *a = &md->accts[i];
        a->gen++;
        sb__md_stream_stop(a);
        sb__md_queue_clear(a);
        a->state = MD_STOPPED;
        close_timer(md, &a->timer);
        close_timer(md, &a->retry);
    }
    sb_httpc_stop(md->httpc, on_httpc_stopped, md); /* in flight: answered as canceled */
}

static void metrics(void *state, sb_buf_t *out)
{
    const md_t *md = state;
    static const char *const names[] = {"up",
                                        "paused",
                                        "stream_reconnects_total",
                                        "stream_stalls_total",
                                        "catchup_pages_total",
                                        "mentions_ingested_total",
                                        "duplicates_total",
                                        "posts_total",
                                        "post_failures_total"};
    for (size_t k = 0; k < SB_ARRAY_LEN(names); k++) {
        bool gauge = k < 2;
        sb_buf_printf(out, "# TYPE switchboard_mastodon_%s %s\n", names[k],
                      gauge ? "gauge" : "counter");
        for (size_t i = 0; i < md->naccts; i++) {
            const md_acct_t *a = &md->accts[i];
            uint64_t v[] = {a->state == MD_UP && a->stream_live,
                            a->state == MD_PAUSED,
                            a->reconnects,
                            a->stalls,
                            a->pages,
                            a->ingested,
                            a->duplicates,
                            a->posted,
                            a->post_failed};
            sb_buf_printf(out, "switchboard_mastodon_%s{account=\"%s\"} %llu\n", names[k], a->name,
                          (unsigned long long)v[k]);
        }
    }
}

/* ---- Configuration ---- */

static bool check_row(int argc, char *const *argv, char *why, size_t cap)
{
    if (argc != 3) {
        snprintf(why, cap, "want <name> <base-url> <token-file>");
        return false;
    }
    if (!valid_name(argv[0])) {
        snprintf(why, cap, "the name must be 1 to %d of a-z A-Z 0-9 _ - .", NAME_MAX_LEN);
        return false;
    }
    char *host = url_host(argv[1]);
    bool url_ok = host != NULL;
    sb_free(host);
    if (!url_ok) {
        snprintf(why, cap, "the base URL must be http(s)://host[:port], not \"%.100s\"", argv[1]);
        return false;
    }
    char *tok = read_token(argv[2], why, cap);
    if (!tok)
        return false;
    sb_free(tok);
    return true;
}

static const sb_config_key_t config[] = {
    {"mastodon", SB_CONFIG_LIST, NULL, 3, 0, "<name> <base-url> <token-file>",
     "A Mastodon account: its mentions and direct messages come in, answers go out as "
     "replies (docs/mastodon.md). The token file's first line is an access token with the "
     "scopes read:accounts read:notifications read:statuses write:statuses.",
     check_row, .unique_name = true},
    {"mastodon_stall", SB_CONFIG_DURATION, "45s", 1000, 3600000, "<duration>",
     "A Mastodon stream that brings no byte (not even its heartbeat) for this long is "
     "stalled: it is dropped and connected again.",
     NULL},
    {"mastodon_max_parts", SB_CONFIG_UINT, "10", 1, 50, "<n>",
     "An answer longer than the server's limit is posted as a thread of at most this many "
     "statuses; a longer one fails, telling staff to shorten it.",
     NULL},
    {"mastodon_pause_retry", SB_CONFIG_DURATION, "60s", 100, 86400000, "<duration>",
     "A paused account (its token refused) reads its token file again and retries this "
     "often.",
     NULL},
    {NULL},
};

const sb_connector_desc_t sb_connector_mastodon = {
    .name = "mastodon",
    .channel = SB__MD_CHANNEL,
    .config = config,
    .start = start,
    .stop = stop,
    .deliver = sb__md_deliver,
    .metrics = metrics,
};

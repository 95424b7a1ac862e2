/* SPDX-License-Identifier: MIT */
/*
 * The Bluesky connector (docs/bluesky.md): every `bluesky <name> <service-url> <handle>
 * <app-password-file>` row is one account on its PDS. A timer polls each account's
 * notifications every bluesky_poll_interval (poll.c) over an XRPC session (xrpc.c), and
 * the daemon's outbox lane for the channel hands answers to deliver.c, which posts them
 * as replies in the customer's thread. This file reads and checks the configuration,
 * starts and stops, and reports the metrics.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connectors/bluesky/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sys.h"

#define NAME_MAX_LEN 64

/* ---- Configuration ---- */

static bool url_ok(const char *u)
{
    const char *host = strncmp(u, "https://", 8) == 0  ? u + 8
                       : strncmp(u, "http://", 7) == 0 ? u + 7
                                                       : NULL;
    if (!host || !*host || *host == '/' || *host == ':')
        return false;
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '?' || *p == '#' || *p == '@' || *p == '\\')
            return false;
    return true;
}

static bool handle_ok(const char *h)
{
    size_t n = strlen(h);
    if (n < 3 || n > 253 || !strchr(h, '.') || h[0] == '.' || h[n - 1] == '.')
        return false;
    for (const char *p = h; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
            return false;
    return true;
}

static bool check_row(int argc, char *const *argv, char *why, size_t cap)
{
    if (argc != 4) {
        snprintf(why, cap, "expected <name> <service-url> <handle> <app-password-file>");
        return false;
    }
    size_t n = strlen(argv[0]);
    if (n == 0 || n > NAME_MAX_LEN) {
        snprintf(why, cap, "name: 1 to %d characters", NAME_MAX_LEN);
        return false;
    }
    for (const char *p = argv[0]; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_') {
            snprintf(why, cap, "name '%s': letters, digits, '-' and '_' only", argv[0]);
            return false;
        }
    if (!url_ok(argv[1])) {
        snprintf(why, cap,
                 "'%s' is not an http:// or https:// URL of a PDS (e.g. https://bsky.social)",
                 argv[1]);
        return false;
    }
    if (!handle_ok(argv[2])) {
        snprintf(why, cap, "'%s' is not a handle (e.g. support.example.com, no '@')", argv[2]);
        return false;
    }
    if (access(argv[3], R_OK) != 0) {
        snprintf(why, cap, "the app password file %s cannot be read: %s", argv[3], strerror(errno));
        return false;
    }
    return true;
}

static const sb_config_key_t config[] = {
    {"bluesky", SB_CONFIG_LIST, NULL, 4, 0, "<name> <service-url> <handle> <app-password-file>",
     "A Bluesky account (docs/bluesky.md): mentions, replies and quotes of <handle> on the PDS at "
     "<service-url> become conversations; answers are posted as replies. The file holds an app "
     "password.",
     check_row, .unique_name = true},
    {"bluesky_poll_interval", SB_CONFIG_DURATION, "2s", 50, 3600 * 1000ULL, "<duration>",
     "How often each Bluesky account's notifications are read.", NULL},
    {"bluesky_max_parts", SB_CONFIG_UINT, "10", 1, BS_MAX_PARTS, "<n>",
     "An answer longer than a post (300 graphemes) becomes a thread of at most this many posts; "
     "a longer one is refused.",
     NULL},
    {NULL},
};

/* ---- Start, tick, stop ---- */

bs_acct_t *sb__bs_acct(bs_t *bs, const char *name)
{
    for (size_t i = 0; name && i < bs->n; i++)
        if (strcmp(bs->accts[i].name, name) == 0)
            return &bs->accts[i];
    return NULL;
}

static void on_tick(uv_timer_t *t)
{
    bs_t *bs = t->data;
    int64_t now = sb_now_ms();
    for (size_t i = 0; i < bs->n && !bs->stopping; i++) {
        bs_acct_t *a = &bs->accts[i];
        if (a->paused) {
            if (now >= a->retry_at_ms)
                sb__bs_try_resume(a);
        } else if (!a->polling && (now >= a->poll_after_ms || now < a->poll_limited_ms)) {
            sb__bs_poll(a);
        }
    }
}

static void free_all(bs_t *bs)
{
    for (size_t i = 0; i < bs->n; i++) {
        bs_acct_t *a = &bs->accts[i];
        sb__bs_session_dispose(a);
        sb_free(a->name);
        sb_free(a->service);
        sb_free(a->handle);
        sb_free(a->password_file);
        sb_free(a->cursor_at);
        sb_free(a->cursor_uri);
    }
    sb_free(bs->accts);
    sb_free(bs);
}

void sb__bs_maybe_done(bs_t *bs)
{
    if (!bs->stopping || !bs->httpc_stopped || !bs->timer_closed || bs->pending > 0)
        return;
    sb_connector_stopped_cb done = bs->done;
    void *data = bs->done_data;
    free_all(bs);
    done(data);
}

static int start(const sb_connector_env_t *env, void **state)
{
    const sb_config_list_t *l = sb_config_list(env->cfg, "bluesky");
    *state = NULL;
    if (l->n == 0)
        return 0;
    bs_t *bs = SB_NEW(bs_t);
    bs->env = *env;
    bs->poll_ms = sb_config_uint(env->cfg, "bluesky_poll_interval");
    bs->max_parts = (unsigned)sb_config_uint(env->cfg, "bluesky_max_parts");
    if (bs->poll_ms == 0)
        bs->poll_ms = 2000;
    if (bs->max_parts == 0 || bs->max_parts > BS_MAX_PARTS)
        bs->max_parts = 10;
    bs->accts = sb_calloc(l->n, sizeof(bs_acct_t));
    for (size_t i = 0; i < l->n; i++) {
        const sb_config_entry_t *e = &l->items[i];
        if (sb__bs_acct(bs, e->argv[0])) {
            SB_LOG_ERROR("bluesky.config", "%s:%d: the account name '%s' is used twice", e->file,
                         e->line, e->argv[0]);
            free_all(bs);
            return SB_ECONFIG;
        }
        bs_acct_t *a = &bs->accts[bs->n++];
        a->bs = bs;
        a->name = sb_strdup(e->argv[0]);
        size_t sl = strlen(e->argv[1]);
        while (sl > 0 && e->argv[1][sl - 1] == '/')
            sl--;
        a->service = sb_strndup(e->argv[1], sl);
        a->handle = sb_strdup(e->argv[2][0] == '@' ? e->argv[2] + 1 : e->argv[2]);
        a->password_file = sb_strdup(e->argv[3]);
        snprintf(a->cursor_name, sizeof(a->cursor_name), "bluesky:%s", a->name);
        SB_LOG_INFO("bluesky.account", "account=%s service=%s handle=%s", a->name, a->service,
                    a->handle);
    }
    sb_httpc_new(env->loop, "Switchboard-bluesky", &bs->httpc);
    sb_httpc_limit_host(bs->httpc, 4);
    uv_timer_init(env->loop, &bs->tick);
    bs->tick.data = bs;
    uv_timer_start(&bs->tick, on_tick, 0, bs->poll_ms);
    *state = bs;
    return 0;
}

static void on_httpc_stopped(void *data)
{
    bs_t *bs = data;
    bs->httpc_stopped = true;
    sb__bs_maybe_done(bs);
}

static void on_timer_closed(uv_handle_t *h)
{
    bs_t *bs = h->data;
    bs->timer_closed = true;
    sb__bs_maybe_done(bs);
}

static void stop(void *state, sb_connector_stopped_cb done, void *data)
{
    bs_t *bs = state;
    bs->done = done;
    bs->done_data = data;
    bs->stopping = true;
    uv_timer_stop(&bs->tick);
    uv_close((uv_handle_t *)&bs->tick, on_timer_closed);
    sb_httpc_stop(bs->httpc, on_httpc_stopped, bs); /* in flight: answered as canceled */
}

static void metric(sb_buf_t *out, const bs_t *bs, const char *name, const char *type,
                   uint64_t (*get)(const bs_acct_t *))
{
    sb_buf_printf(out, "# TYPE switchboard_bluesky_%s %s\n", name, type);
    for (size_t i = 0; i < bs->n; i++)
        sb_buf_printf(out, "switchboard_bluesky_%s{account=\"%s\"} %llu\n", name, bs->accts[i].name,
                      (unsigned long long)get(&bs->accts[i]));
}

static uint64_t m_up(const bs_acct_t *a)
{
    return a->access && !a->paused;
}
static uint64_t m_paused(const bs_acct_t *a)
{
    return a->paused;
}
static uint64_t m_polls(const bs_acct_t *a)
{
    return a->polls;
}
static uint64_t m_poll_errors(const bs_acct_t *a)
{
    return a->poll_errors;
}
static uint64_t m_ingested(const bs_acct_t *a)
{
    return a->ingested;
}
static uint64_t m_refreshes(const bs_acct_t *a)
{
    return a->refreshes;
}
static uint64_t m_sessions(const bs_acct_t *a)
{
    return a->sessions;
}
static uint64_t m_sent(const bs_acct_t *a)
{
    return a->sent;
}
static uint64_t m_send_failed(const bs_acct_t *a)
{
    return a->send_failed;
}

static void metrics(void *state, sb_buf_t *out)
{
    const bs_t *bs = state;
    metric(out, bs, "account_up", "gauge", m_up);
    metric(out, bs, "account_paused", "gauge", m_paused);
    metric(out, bs, "polls_total", "counter", m_polls);
    metric(out, bs, "poll_errors_total", "counter", m_poll_errors);
    metric(out, bs, "notifications_ingested_total", "counter", m_ingested);
    metric(out, bs, "session_refreshes_total", "counter", m_refreshes);
    metric(out, bs, "sessions_created_total", "counter", m_sessions);
    metric(out, bs, "posts_total", "counter", m_sent);
    metric(out, bs, "post_failures_total", "counter", m_send_failed);
}

const sb_connector_desc_t sb_connector_bluesky = {
    .name = "bluesky",
    .channel = "bluesky",
    .config = config,
    .start = start,
    .stop = stop,
    .deliver = sb__bs_deliver,
    .metrics = metrics,
};

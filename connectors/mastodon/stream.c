/* SPDX-License-Identifier: MIT */
/*
 * An account's live feed: GET /api/v1/streaming/user on the streaming server, read as
 * Server-Sent Events (core/sse.h) through sb_httpc_stream. Mastodon sends an
 * `event: notification` whose data is a Notification as JSON text; mentions (direct
 * messages arrive as mentions too) are queued for ingest. It also sends a `:thump`
 * comment every few seconds, so a stream with no byte for mastodon_stall is dead: the
 * request ends with SB_ETIMEDOUT and a new connection follows after a backoff. Every
 * connection, once its head came, starts a catch-up (catchup.c): what was posted while
 * no stream was open comes from there.
 */
#include <stdio.h>
#include <string.h>

#include "connectors/mastodon/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define HEAD_TIMEOUT_MS 30000
#define EVENT_MAX       (1024 * 1024)

typedef struct md_stream {
    md_acct_t *a;
    unsigned gen;
    uint64_t events;
} md_stream_t;

static int on_event(const sb_sse_event_t *ev, void *data)
{
    md_stream_t *s = data;
    md_acct_t *a = s->a;
    s->events++;
    if (strcmp(ev->type, "notification") != 0)
        return 0; /* update, delete, status.update, filters_changed…: not ours */
    json_error_t err;
    json_t *n = json_loadb(ev->data, ev->data_len, 0, &err);
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) {
        SB_LOG_WARN("mastodon.stream", "account=%s err=\"a notification that is not JSON: %s\"",
                    a->name, err.text);
    } else if (strcmp(type, "mention") == 0 && !sb__md_enqueue(a, n, false)) {
        json_decref(n);
        return SB_ETOOBIG;
    }
    json_decref(n);
    return 0;
}

static void on_comment(const char *text, size_t len, void *data)
{
    (void)text, (void)len, (void)data; /* a heartbeat: the stall deadline moved already */
}

static int on_head(const sb_httpc_response_t *res, void *data)
{
    md_stream_t *s = data;
    md_acct_t *a = s->a;
    if (s->gen != a->gen || res->code / 100 != 2)
        return 0; /* a refusal: on_end reads it */
    a->stream_live = true;
    a->backoff_ms = 0;
    a->caught_up = false;
    SB_LOG_INFO("mastodon.stream.open", "account=%s code=%ld", a->name, res->code);
    sb__md_catchup(a); /* the stream is open: nothing new can be missed from here on */
    return 0;
}

static int on_data(const char *bytes, size_t n, void *data)
{
    md_stream_t *s = data;
    md_acct_t *a = s->a;
    if (s->gen != a->gen)
        return SB_ECANCELED;
    int rc = sb_sse_feed(a->sse, bytes, n);
    if (rc)
        SB_LOG_WARN("mastodon.stream", "account=%s err=\"%s\"", a->name, sb_strerror(rc));
    return rc;
}

static void on_end(const sb_httpc_response_t *res, void *data)
{
    md_stream_t *s = data;
    md_acct_t *a = s->a;
    a->inflight--;
    bool current = s->gen == a->gen && !a->md->stopping && a->state == MD_UP;
    if (a->stream_ctx == s) {
        a->stream_ctx = NULL;
        a->stream = NULL;
    }
    if (current) {
        a->stream_live = false;
        a->caught_up = false;
        char why[256];
        sb__md_reason(res, why, sizeof(why));
        if (res->status == SB_ETIMEDOUT)
            a->stalls++;
        if (res->status == 0 && res->code == 401) {
            sb__md_pause(a, why);
        } else {
            SB_LOG_WARN("mastodon.stream.end",
                        "account=%s status=%s code=%ld events=%llu err=\"%s\"", a->name,
                        sb_err_name(res->status), res->code, (unsigned long long)s->events,
                        res->status || res->code / 100 != 2 ? why : "ended");
            sb__md_reconnect_later(a);
        }
    }
    md_t *md = a->md;
    sb_free(s);
    sb__md_maybe_done(md);
}

void sb__md_stream_start(md_acct_t *a)
{
    sb__md_stream_stop(a);
    md_stream_t *s = SB_NEW(md_stream_t);
    s->a = a;
    s->gen = a->gen;
    sb_sse_free(a->sse);
    sb_sse_opts_t o = {
        .max_event = EVENT_MAX, .on_event = on_event, .on_comment = on_comment, .data = s};
    a->sse = sb_sse_new(&o);
    char *url = sb_asprintf("%s/api/v1/streaming/user", a->stream_base);
    const char *headers[] = {a->auth, "Accept: text/event-stream", NULL};
    sb_httpc_request_t req = {.method = "GET",
                              .url = url,
                              .headers = headers,
                              .timeout_ms = HEAD_TIMEOUT_MS,
                              .max_response = 64 * 1024};
    sb_httpc_stream_cbs_t cbs = {.on_head = on_head, .on_data = on_data};
    int rc = sb_httpc_stream(a->md->httpc, &req, a->md->stall_ms, &cbs, on_end, s, &a->stream);
    sb_free(url);
    if (rc) {
        sb_free(s);
        a->stream = NULL;
        a->stream_ctx = NULL;
        SB_LOG_WARN("mastodon.stream", "account=%s err=\"%s\"", a->name, sb_strerror(rc));
        sb__md_reconnect_later(a);
        return;
    }
    a->stream_ctx = s;
    a->inflight++;
}

void sb__md_stream_stop(md_acct_t *a)
{
    if (!a->stream)
        return;
    sb_httpc_cancel(a->stream); /* its callbacks never run: their state is freed here */
    sb_free(a->stream_ctx);
    a->stream_ctx = NULL;
    a->stream = NULL;
    a->stream_live = false;
    a->inflight--;
}

/* SPDX-License-Identifier: MIT */
/*
 * A mention into the store, one at a time per account, in the order they were queued:
 *   1. the author's contact: sb_store_contact_resolve("mastodon", "@user@host");
 *   2. the conversation: the status it answers ("mastodon:<name>:<in_reply_to_id>", linked
 *      when we stored or posted it), else its ancestors from
 *      GET /api/v1/statuses/:id/context, newest first; a status that threads nowhere
 *      (a new post) follows the store's rule for a channel without threads: the
 *      contact's open conversation on mastodon, else a new one (docs/threading.md);
 *   3. sb_store_ingest with external_id "<name>:<status id>" (a status seen again after a
 *      drop or a restart is not stored twice) and ext {account, status_id, url,
 *      visibility, acct, in_reply_to_id}, which a delivery reads back;
 *   4. sb_store_thread_link of "mastodon:<name>:<status id>", so answers to it thread;
 *   5. the cursor (catchup.c) moves past it when nothing before it is missing.
 * A store that is away keeps the item at the head and tries again a second later.
 */
#include <stdio.h>
#include <string.h>

#include "connectors/mastodon/html.h"
#include "connectors/mastodon/internal.h"
#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/log.h"

#define RETRY_MS      1000
#define MAX_MENTIONS  32
#define MAX_ANCESTORS SB_THREAD_MAX_REFS

typedef struct md_ing {
    md_acct_t *a;
    md_item_t *item;
    const char *status_id, *in_reply_to; /* borrowed from item->notif */
    char acct[256], ref[SB__MD_ID_MAX + 64];
    char contact[SB_ID_MAX];
    char *name;
    char *text;
    bool ancestors; /* the lookup in flight is the ancestors': no context after a miss */
} md_ing_t;

static void process(md_acct_t *a);

static void item_free(md_item_t *it)
{
    json_decref(it->notif);
    sb_free(it);
}

bool sb__md_enqueue(md_acct_t *a, json_t *notif, bool from_catchup)
{
    if (a->state == MD_STOPPED || a->state == MD_PAUSED)
        return true;
    if (a->queued >= SB__MD_QUEUE_MAX && !from_catchup) { /* a page is at most 40 */
        SB_LOG_WARN("mastodon.queue", "account=%s err=\"queue full: reconnecting\"", a->name);
        a->caught_up = false;
        return false;
    }
    md_item_t *it = SB_NEW(md_item_t);
    it->notif = json_incref(notif);
    it->from_catchup = from_catchup;
    it->cgen = a->cgen;
    if (a->tail)
        a->tail->next = it;
    else
        a->head = it;
    a->tail = it;
    a->queued++;
    process(a);
    return true;
}

void sb__md_queue_clear(md_acct_t *a)
{
    while (a->head) {
        md_item_t *it = a->head;
        a->head = it->next;
        item_free(it);
    }
    a->tail = NULL;
    a->queued = 0;
}

static void on_retry(uv_timer_t *t)
{
    md_acct_t *a = t->data;
    process(a);
}

/* Ends the item: ok = stored (or not ours); requeue = try it again later. */
static void end(md_ing_t *g, bool ok, bool requeue)
{
    md_acct_t *a = g->a;
    md_item_t *it = g->item;
    a->busy = false;
    bool live = !a->md->stopping && a->state != MD_STOPPED;
    if (ok) {
        const char *id = json_string_value(json_object_get(it->notif, "id"));
        if (it->from_catchup)
            sb__md_catchup_item_done(a, it->cgen, id);
        else if (a->caught_up && a->stream_live)
            sb__md_cursor_advance(a, id);
        item_free(it);
    } else if (requeue && live && a->state != MD_PAUSED) {
        it->next = a->head; /* back at the head, tried again in a second */
        a->head = it;
        if (!a->tail)
            a->tail = it;
        a->queued++;
        if (!a->retry) {
            a->retry = sb_malloc(sizeof(*a->retry));
            uv_timer_init(a->md->env.loop, a->retry);
            a->retry->data = a;
            a->md->timers++;
        }
        uv_timer_start(a->retry, on_retry, RETRY_MS, 0);
    } else {
        item_free(it); /* dropped: the cursor did not move past it, a catch-up brings it */
    }
    sb_free(g->name);
    sb_free(g->text);
    sb_free(g);
    if (live && !(requeue && !ok))
        process(a);
    sb__md_maybe_done(a->md);
}

/* A store failure: the store away (retry) or the request refused (skip it, logged). */
static void end_store(md_ing_t *g, int status, const char *errmsg, const char *step)
{
    bool retry = status == SB_ETIMEDOUT || status == SB_EDISCONNECTED || status == SB_EREDIS ||
                 status == SB_EUNAVAILABLE || status == SB_ECANCELED;
    SB_LOG_WARN("mastodon.ingest", "account=%s status_id=%s step=%s err=\"%s\" %s", g->a->name,
                g->status_id, step, errmsg ? errmsg : sb_strerror(status),
                retry ? "retry=1s" : "skipped=1");
    end(g, !retry, retry);
}

static bool done_call(md_ing_t *g)
{
    g->a->inflight--;
    if (g->a->md->stopping) {
        end(g, false, false);
        return false;
    }
    return true;
}

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    md_ing_t *g = data;
    if (!done_call(g))
        return;
    if (status)
        end_store(g, status, errmsg, "thread link");
    else
        end(g, true, false);
}

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    md_ing_t *g = data;
    md_acct_t *a = g->a;
    if (!done_call(g))
        return;
    if (status) {
        end_store(g, status, errmsg, "ingest");
        return;
    }
    bool dup = json_is_true(json_object_get(result, "duplicate"));
    const char *conv =
        json_string_value(json_object_get(json_object_get(result, "conversation"), "id"));
    const char *mid = json_string_value(json_object_get(json_object_get(result, "message"), "id"));
    if (!conv)
        conv = json_string_value(json_object_get(json_object_get(result, "message"), "conv"));
    if (dup) {
        a->duplicates++;
    } else {
        a->ingested++;
        a->md->env.msgs_in[SB_CHANNEL_mastodon]++;
        SB_LOG_INFO("mastodon.in", "account=%s status_id=%s conv=%s acct=%s", a->name, g->status_id,
                    conv ? conv : "-", g->acct);
    }
    char link[SB__MD_ID_MAX + 64];
    snprintf(link, sizeof(link), "mastodon:%s:%s", a->name, g->status_id);
    const char *ids[] = {link};
    if (!conv) {
        end(g, true, false);
        return;
    }
    int rc = sb_store_thread_link(a->md->env.store, conv, mid, ids, 1, on_linked, g);
    if (rc)
        end_store(g, rc, NULL, "thread link");
    else
        a->inflight++;
}

static void ingest(md_ing_t *g, const char *conv)
{
    md_acct_t *a = g->a;
    json_t *st = json_object_get(g->item->notif, "status");
    const char *url = json_string_value(json_object_get(st, "url"));
    if (!url)
        url = json_string_value(json_object_get(st, "uri"));
    const char *vis = json_string_value(json_object_get(st, "visibility"));
    json_t *ext = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?}", "account", a->name, "status_id",
                            g->status_id, "url", url, "visibility", vis ? vis : "public", "acct",
                            g->acct, "in_reply_to_id", g->in_reply_to);
    char xid[SB__MD_ID_MAX + 64];
    snprintf(xid, sizeof(xid), "%s:%s", a->name, g->status_id);
    sb_ingest_t in = {.channel = SB__MD_CHANNEL,
                      .contact_id = g->contact,
                      .contact_name = g->name,
                      .conv = conv,
                      .text = g->text,
                      .external_id = xid,
                      .ext = ext};
    int rc = sb_store_ingest(a->md->env.store, &in, on_ingested, g);
    json_decref(ext);
    if (rc)
        end_store(g, rc, NULL, "ingest");
    else
        a->inflight++;
}

static void on_found(int status, json_t *result, const char *errmsg, void *data);

/* Looks the refs up (n of them, borrowed); ingest follows. last: no context after a miss. */
static void find(md_ing_t *g, const char *const *refs, size_t n, bool last)
{
    int rc = sb_store_thread_find(g->a->md->env.store, SB__MD_CHANNEL, g->contact, refs, n, NULL, 0,
                                  on_found, g);
    if (rc) {
        end_store(g, rc, NULL, "thread find");
        return;
    }
    g->a->inflight++;
    g->ancestors = last;
}

static void on_context(md_acct_t *a, const sb_httpc_response_t *res, bool stale, void *arg)
{
    md_ing_t *g = arg;
    if (stale || a->md->stopping || a->state == MD_PAUSED) {
        end(g, false, false); /* a 401 paused the account: the catch-up brings it back */
        return;
    }
    json_t *j = res->status == 0 && res->code / 100 == 2
                    ? json_loadb(res->body, res->body_len, 0, NULL)
                    : NULL;
    json_t *anc = json_object_get(j, "ancestors");
    if (!json_is_array(anc)) {
        if (res->status == 0 && res->code == 404) { /* gone: a new conversation */
            json_decref(j);
            ingest(g, NULL);
            return;
        }
        char why[256];
        sb__md_reason(res, why, sizeof(why));
        SB_LOG_WARN("mastodon.context", "account=%s status_id=%s err=\"%s\" retry=1s", a->name,
                    g->status_id, why);
        json_decref(j);
        end(g, false, true);
        return;
    }
    /* ancestors come oldest first: refs newest first, the nearest past the one tried */
    char *refs[MAX_ANCESTORS];
    size_t n = 0;
    for (size_t i = json_array_size(anc); i > 0 && n < MAX_ANCESTORS; i--) {
        const char *id = json_string_value(json_object_get(json_array_get(anc, i - 1), "id"));
        if (id && strlen(id) < SB__MD_ID_MAX && strcmp(id, g->in_reply_to) != 0)
            refs[n++] = sb_asprintf("mastodon:%s:%s", a->name, id);
    }
    json_decref(j);
    if (n == 0)
        ingest(g, NULL);
    else
        find(g, (const char *const *)refs, n, true);
    for (size_t i = 0; i < n; i++)
        sb_free(refs[i]);
}

static void on_found(int status, json_t *result, const char *errmsg, void *data)
{
    md_ing_t *g = data;
    md_acct_t *a = g->a;
    if (!done_call(g))
        return;
    if (status) {
        end_store(g, status, errmsg, "thread find");
        return;
    }
    const char *conv = json_string_value(json_object_get(result, "conv"));
    if (conv || g->ancestors) {
        ingest(g, conv);
        return;
    }
    char *url = sb_asprintf("%s/api/v1/statuses/%s/context", a->base, g->status_id);
    int rc = sb__md_call(a, false, "GET", url, NULL, NULL, on_context, g);
    sb_free(url);
    if (rc)
        end(g, false, true);
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    md_ing_t *g = data;
    if (!done_call(g))
        return;
    const char *id = json_string_value(json_object_get(result, "id"));
    if (status || !id || strlen(id) >= sizeof(g->contact)) {
        end_store(g, status ? status : SB_EINVAL, errmsg, "contact");
        return;
    }
    snprintf(g->contact, sizeof(g->contact), "%s", id);
    if (!g->in_reply_to) {
        ingest(g, NULL);
        return;
    }
    const char *refs[] = {g->ref};
    snprintf(g->ref, sizeof(g->ref), "mastodon:%s:%s", g->a->name, g->in_reply_to);
    find(g, refs, 1, false);
}

/* The status's text: its content as text, a content warning first, media links last. */
static char *status_text(const md_acct_t *a, json_t *st)
{
    sb_md_mention_t m[MAX_MENTIONS];
    char *full[MAX_MENTIONS];
    size_t nm = 0;
    json_t *ms = json_object_get(st, "mentions"), *v;
    size_t i;
    json_array_foreach(ms, i, v)
    {
        const char *url = json_string_value(json_object_get(v, "url"));
        const char *acct = json_string_value(json_object_get(v, "acct"));
        if (!url || !acct || nm == MAX_MENTIONS)
            continue;
        full[nm] =
            strchr(acct, '@') || !a->host ? sb_strdup(acct) : sb_asprintf("%s@%s", acct, a->host);
        m[nm] = (sb_md_mention_t){.url = url, .acct = full[nm]};
        nm++;
    }
    const char *html = json_string_value(json_object_get(st, "content"));
    char *text = sb_md_html_text(html ? html : "", html ? strlen(html) : 0, m, nm, 0);
    for (i = 0; i < nm; i++)
        sb_free(full[i]);
    const char *cw = json_string_value(json_object_get(st, "spoiler_text"));
    sb_buf_t b;
    sb_buf_init(&b, SB_MD_TEXT_MAX + 8192);
    if (cw && *cw)
        sb_buf_printf(&b, "CW: %.500s\n\n", cw);
    sb_buf_puts(&b, text);
    json_array_foreach(json_object_get(st, "media_attachments"), i, v)
    {
        const char *u = json_string_value(json_object_get(v, "url"));
        if (u && strlen(u) < 1024)
            sb_buf_printf(&b, "%s%s", b.len ? "\n" : "", u);
    }
    sb_free(text);
    if (b.len == 0)
        sb_buf_puts(&b, "(no text)");
    char *out =
        sb_buf_error(&b) ? sb_strdup("(the status was too long to keep)") : sb_buf_steal(&b, NULL);
    sb_buf_dispose(&b);
    return out;
}

/* Starts the head item; a notification that is not a mention of someone else is done. */
static void process(md_acct_t *a)
{
    if (a->busy || !a->head || a->md->stopping || a->state == MD_PAUSED ||
        (a->retry && uv_is_active((uv_handle_t *)a->retry)))
        return;
    md_item_t *it = a->head;
    a->head = it->next;
    if (!a->head)
        a->tail = NULL;
    a->queued--;
    it->next = NULL;
    a->busy = true;
    md_ing_t *g = SB_NEW(md_ing_t);
    g->a = a;
    g->item = it;
    json_t *st = json_object_get(it->notif, "status");
    json_t *who = json_object_get(st, "account");
    const char *acct = json_string_value(json_object_get(who, "acct"));
    const char *wid = json_string_value(json_object_get(who, "id"));
    g->status_id = json_string_value(json_object_get(st, "id"));
    g->in_reply_to = json_string_value(json_object_get(st, "in_reply_to_id"));
    if (!acct || !*acct || !g->status_id || strlen(g->status_id) >= SB__MD_ID_MAX ||
        (g->in_reply_to && strlen(g->in_reply_to) >= SB__MD_ID_MAX) ||
        (wid && strcmp(wid, a->my_id) == 0)) {
        end(g, true, false); /* not a mention we answer (our own, or malformed) */
        return;
    }
    snprintf(g->acct, sizeof(g->acct), "%s%s%s", acct, strchr(acct, '@') || !a->host ? "" : "@",
             strchr(acct, '@') || !a->host ? "" : a->host);
    const char *dn = json_string_value(json_object_get(who, "display_name"));
    const char *un = json_string_value(json_object_get(who, "username"));
    g->name = sb_strdup(dn && *dn ? dn : un ? un : acct);
    g->text = status_text(a, st);
    char value[300];
    snprintf(value, sizeof(value), "@%s", g->acct);
    int rc =
        sb_store_contact_resolve(a->md->env.store, "mastodon", value, g->name, NULL, on_contact, g);
    if (rc)
        end_store(g, rc, NULL, "contact");
    else
        a->inflight++;
}

void sb__md_ingest_next(md_acct_t *a)
{
    process(a);
}

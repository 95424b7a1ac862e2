/* SPDX-License-Identifier: MIT */
/*
 * Inbound: one polling round of an account's notifications
 * (app.bsky.notification.listNotifications, newest first, `cursor` pages to older ones).
 * Mentions, replies and quotes become customer messages; likes, reposts and follows are
 * passed over. The newest notification processed (its indexedAt and uri) is the account's
 * cursor in Redis (`bluesky:<name>`): a round pages back until it reaches that one, so
 * notifications that came while the daemon was down are read too, and it ingests them
 * oldest first, moving the cursor after each one stored, so that a failure mid-way leaves
 * the rest for the next round and nothing is skipped. The read flags (isRead, updateSeen)
 * are not used: another client reading the notifications changes nothing here.
 *
 * Each post is threaded by its parents: app.bsky.feed.getPostThread gives the parent
 * chain, each parent's uri is looked up as "bluesky:<name>:<uri>"
 * (sb_store_thread_find), so an answer to our reply, or to the customer's earlier post,
 * continues that conversation; after the ingest the post's own uri is linked the same way.
 * The author is the contact (kind "bluesky", their DID). A repeated post is stopped by its
 * external id "<name>:<uri>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bluesky/internal.h"
#include "core/alloc.h"
#include "core/attach.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sys.h"

#define PAGE_LIMIT    50
#define MAX_PAGES     40 /* 2000 notifications behind: older ones are not read */
#define PARENT_HEIGHT 8
#define MAX_REFS      12
/* a 429 without ratelimit-reset: poll again after this */
#define RATE_LIMIT_WAIT_MS 10000

typedef struct round {
    bs_acct_t *a;
    json_t *items;                /* notifications to ingest, newest first */
    char *newest_at, *newest_uri; /* the newest notification of any kind */
    unsigned pages;
    size_t next;  /* items left to ingest: index + 1 of the next (oldest first) */
    json_t *n;    /* the notification being ingested (borrowed from items) */
    json_t *refs; /* its parents' "bluesky:<name>:<uri>", nearest first */
    char contact[SB_ID_MAX];
} round_t;

static void next_item(round_t *rd);
static void fetch_page(round_t *rd, const char *cursor);

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void round_end(round_t *rd, bool ok)
{
    bs_acct_t *a = rd->a;
    if (!ok)
        a->poll_errors++;
    json_decref(rd->items);
    json_decref(rd->refs);
    sb_free(rd->newest_at);
    sb_free(rd->newest_uri);
    sb_free(rd);
    a->polling = false;
    sb__bs_maybe_done(a->bs);
}

/* A store call ended: false (and the round is over) when the connector is stopping. */
static bool store_back(round_t *rd)
{
    rd->a->bs->pending--;
    if (rd->a->bs->stopping) {
        round_end(rd, true);
        return false;
    }
    return true;
}

static void store_fail(round_t *rd, int rc, const char *errmsg, const char *step)
{
    SB_LOG_WARN("bluesky.poll", "account=%s step=%s uri=%s err=\"%s\"", rd->a->name, step,
                rd->n ? str(rd->n, "uri") : "", errmsg && *errmsg ? errmsg : sb_strerror(rc));
    round_end(rd, false);
}

/* ---- The cursor ---- */

static void set_mem_cursor(bs_acct_t *a, const char *at, const char *uri)
{
    sb_free(a->cursor_at);
    sb_free(a->cursor_uri);
    a->cursor_at = sb_strdup(at);
    a->cursor_uri = sb_strdup(uri);
}

static void on_cursor_set(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    round_t *rd = data;
    if (!store_back(rd))
        return;
    if (status != 0)
        store_fail(rd, status, errmsg, "cursor");
    else
        next_item(rd);
}

/* Keeps at/uri as the newest processed notification, then goes on with the next. */
static void save_cursor(round_t *rd, const char *at, const char *uri)
{
    bs_acct_t *a = rd->a;
    if (a->cursor_uri && strcmp(a->cursor_uri, uri) == 0) {
        next_item(rd);
        return;
    }
    set_mem_cursor(a, at, uri);
    json_t *f = json_pack("{s:s, s:s}", "indexed_at", at, "uri", uri);
    a->bs->pending++;
    int rc = sb_store_cursor_set(a->bs->env.store, a->cursor_name, f, on_cursor_set, rd);
    json_decref(f);
    if (rc != 0) {
        a->bs->pending--;
        store_fail(rd, rc, NULL, "cursor");
    }
}

/* ---- One notification ---- */

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    round_t *rd = data;
    if (!store_back(rd))
        return;
    if (status != 0) {
        store_fail(rd, status, errmsg, "thread link");
        return;
    }
    save_cursor(rd, str(rd->n, "indexedAt"), str(rd->n, "uri"));
}

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    round_t *rd = data;
    if (!store_back(rd))
        return;
    bs_acct_t *a = rd->a;
    json_t *m = json_object_get(result, "message");
    const char *conv = str(json_object_get(result, "conversation"), "id");
    const char *mid = str(m, "id");
    if (status != 0 || !conv || !mid) {
        store_fail(rd, status ? status : SB_EINVAL, errmsg, "ingest");
        return;
    }
    if (!json_is_true(json_object_get(result, "duplicate"))) {
        a->ingested++;
        if (a->bs->env.msgs_in)
            a->bs->env.msgs_in[SB_CHANNEL_bluesky]++;
        SB_LOG_INFO("bluesky.in", "account=%s conv=%s msg=%s uri=%s", a->name, conv, mid,
                    str(rd->n, "uri"));
    }
    char *id = sb_asprintf("bluesky:%s:%s", a->name, str(rd->n, "uri"));
    const char *ids[] = {id};
    a->bs->pending++;
    int rc = sb_store_thread_link(a->bs->env.store, conv, mid, ids, 1, on_linked, rd);
    sb_free(id);
    if (rc != 0) {
        a->bs->pending--;
        store_fail(rd, rc, NULL, "thread link");
    }
}

/* The reply refs of the post's record: {root:{uri,cid}, parent:{uri,cid}} or NULL. */
static json_t *reply_of(const json_t *n)
{
    json_t *r = json_object_get(json_object_get(n, "record"), "reply");
    return json_is_object(r) ? r : NULL;
}

static json_t *make_ext(bs_acct_t *a, const json_t *n)
{
    const json_t *author = json_object_get(n, "author");
    const char *uri = str(n, "uri"), *cid = str(n, "cid");
    json_t *reply = reply_of(n), *root = json_object_get(reply, "root");
    const char *root_uri = str(root, "uri"), *root_cid = str(root, "cid");
    if (!root_uri || !root_cid) {
        root_uri = uri;
        root_cid = cid;
    }
    char *url = sb__bs_web_url(str(author, "handle"), uri);
    json_t *ext = json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s, s:s?, s:s?, s:s?}", "account",
                            a->name, "uri", uri, "cid", cid, "root_uri", root_uri, "root_cid",
                            root_cid, "did", str(author, "did"), "handle", str(author, "handle"),
                            "url", url, "reason", str(n, "reason"));
    sb_free(url);
    return ext;
}

static void on_found(int status, json_t *result, const char *errmsg, void *data)
{
    round_t *rd = data;
    if (!store_back(rd))
        return;
    if (status != 0) {
        store_fail(rd, status, errmsg, "thread find");
        return;
    }
    bs_acct_t *a = rd->a;
    const json_t *n = rd->n, *author = json_object_get(n, "author");
    const char *conv = str(result, "conv");
    char *external = sb_asprintf("%s:%s", a->name, str(n, "uri"));
    const char *text = str(json_object_get(n, "record"), "text");
    char *fallback = NULL;
    if (!text || !*text)
        text = fallback = sb_asprintf("(a post without text: %s)", str(n, "uri"));
    const char *name = str(author, "displayName");
    if (!name || !*name)
        name = str(author, "handle");
    json_t *ext = make_ext(a, n);
    sb_ingest_t in = {.channel = "bluesky",
                      .contact_id = rd->contact,
                      .contact_name = name,
                      .conv = conv,
                      .text = text,
                      .external_id = external,
                      .ext = ext,
                      .new_conversation = conv == NULL};
    a->bs->pending++;
    int rc = sb_store_ingest(a->bs->env.store, &in, on_ingested, rd);
    json_decref(ext);
    sb_free(external);
    sb_free(fallback);
    if (rc != 0) {
        a->bs->pending--;
        store_fail(rd, rc, NULL, "ingest");
    }
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    round_t *rd = data;
    if (!store_back(rd))
        return;
    const char *id = str(result, "id");
    if (status != 0 || !id || strlen(id) >= sizeof(rd->contact)) {
        store_fail(rd, status ? status : SB_EINVAL, errmsg, "contact");
        return;
    }
    snprintf(rd->contact, sizeof(rd->contact), "%s", id);
    const char *refs[MAX_REFS];
    size_t nrefs = 0;
    for (size_t i = 0; i < json_array_size(rd->refs) && nrefs < MAX_REFS; i++)
        refs[nrefs++] = json_string_value(json_array_get(rd->refs, i));
    bs_t *bs = rd->a->bs;
    bs->pending++;
    int rc = sb_store_thread_find(bs->env.store, "bluesky", rd->contact, refs, nrefs, NULL, 0,
                                  on_found, rd);
    if (rc != 0) {
        bs->pending--;
        store_fail(rd, rc, NULL, "thread find");
    }
}

static void add_ref(round_t *rd, const char *uri)
{
    if (!uri || !*uri || json_array_size(rd->refs) >= MAX_REFS)
        return;
    char *r = sb_asprintf("bluesky:%s:%s", rd->a->name, uri);
    size_t i;
    json_t *v;
    json_array_foreach(rd->refs, i, v)
    {
        if (strcmp(json_string_value(v), r) == 0) {
            sb_free(r);
            return;
        }
    }
    json_array_append_new(rd->refs, json_string(r));
    sb_free(r);
}

/* The author is the contact: their DID, named by their display name or handle. */
static void resolve_contact(round_t *rd)
{
    const json_t *n = rd->n, *author = json_object_get(n, "author");
    /* the record's own refs close the list (they hold when getPostThread did not answer) */
    json_t *reply = reply_of(n);
    add_ref(rd, str(json_object_get(reply, "parent"), "uri"));
    add_ref(rd, str(json_object_get(reply, "root"), "uri"));
    /* a quote of our post continues the conversation of that post */
    json_t *embed = json_object_get(json_object_get(n, "record"), "embed");
    json_t *quoted = json_object_get(embed, "record");
    add_ref(rd, str(quoted, "uri"));
    add_ref(rd, str(json_object_get(quoted, "record"), "uri"));
    const char *name = str(author, "displayName");
    if (!name || !*name)
        name = str(author, "handle");
    bs_t *bs = rd->a->bs;
    bs->pending++;
    int rc = sb_store_contact_resolve(bs->env.store, "bluesky", str(author, "did"), name, NULL,
                                      on_contact, rd);
    if (rc != 0) {
        bs->pending--;
        store_fail(rd, rc, NULL, "contact");
    }
}

/* getPostThread's answer: the parent chain, nearest first (threadViewPost.parent...). */
static void on_thread(bs_acct_t *a, const bs_res_t *res, void *data)
{
    round_t *rd = data;
    if (res->status == SB_ECANCELED || a->bs->stopping) {
        round_end(rd, true);
        return;
    }
    if (res->status == 0 && res->code == 200) {
        const json_t *t = json_object_get(res->body, "thread");
        for (json_t *p = json_object_get(t, "parent"); json_is_object(p);
             p = json_object_get(p, "parent"))
            add_ref(rd, str(json_object_get(p, "post"), "uri"));
    } else {
        SB_LOG_INFO("bluesky.thread", "account=%s uri=%s code=%ld err=\"%s %s\"", a->name,
                    str(rd->n, "uri"), res->code, res->error, res->message);
    }
    resolve_contact(rd);
}

/* Ingests items[rd->next - 1] (the oldest left), or ends the round when none is left. */
static void next_item(round_t *rd)
{
    bs_acct_t *a = rd->a;
    if (a->bs->stopping) {
        round_end(rd, true);
        return;
    }
    if (rd->next == 0) {
        /* all stored: the cursor goes to the newest notification, whatever its kind */
        if (rd->newest_uri && (!a->cursor_uri || strcmp(a->cursor_uri, rd->newest_uri) != 0)) {
            char *at = rd->newest_at, *uri = rd->newest_uri;
            rd->newest_at = rd->newest_uri = NULL;
            rd->n = NULL;
            save_cursor(rd, at, uri);
            sb_free(at);
            sb_free(uri);
            return;
        }
        round_end(rd, true);
        return;
    }
    rd->n = json_array_get(rd->items, --rd->next);
    json_array_clear(rd->refs);
    if (!reply_of(rd->n)) {
        resolve_contact(rd);
        return;
    }
    char uri[1024];
    if (sb_attach_pct_encode(str(rd->n, "uri"), uri, sizeof(uri)) < 0) {
        resolve_contact(rd);
        return;
    }
    char *q = sb_asprintf("uri=%s&depth=0&parentHeight=%d", uri, PARENT_HEIGHT);
    sb__bs_xrpc(a, "GET", "app.bsky.feed.getPostThread", q, NULL, on_thread, rd);
    sb_free(q);
}

/* ---- Pages of notifications ---- */

static bool wanted(const bs_acct_t *a, const json_t *n)
{
    const char *reason = str(n, "reason"), *did = str(json_object_get(n, "author"), "did");
    if (!reason || !str(n, "uri") || !str(n, "cid") || !did || !str(n, "indexedAt"))
        return false;
    if (a->did && strcmp(did, a->did) == 0)
        return false; /* our own post */
    return !strcmp(reason, "mention") || !strcmp(reason, "reply") || !strcmp(reason, "quote");
}

/* A 429 to a poll: the account polls again at the PDS's ratelimit-reset (unix seconds). */
static void rate_limited(bs_acct_t *a, const bs_res_t *res)
{
    char reset[32];
    int64_t now = sb_now_ms(), at = now + RATE_LIMIT_WAIT_MS;
    if (res->http && sb_httpc_header(res->http, "ratelimit-reset", reset, sizeof(reset))) {
        char *e;
        long long s = strtoll(reset, &e, 10);
        if (e != reset && !*e && s > 0 && s < 4102444800LL && s * 1000 > now)
            at = s * 1000;
    }
    a->poll_after_ms = at;
    a->poll_limited_ms = now;
    SB_LOG_WARN("bluesky.poll", "account=%s err=\"rate limited\" retry_in_ms=%lld", a->name,
                (long long)(at - now));
}

static void on_page(bs_acct_t *a, const bs_res_t *res, void *data)
{
    round_t *rd = data;
    if (res->status == SB_ECANCELED || a->bs->stopping) {
        round_end(rd, true);
        return;
    }
    json_t *list = json_object_get(res->body, "notifications");
    if (res->status == 0 && res->code == 429) {
        rate_limited(a, res);
        round_end(rd, false);
        return;
    }
    if (res->status != 0 || res->code != 200 || !json_is_array(list)) {
        if (res->status != SB_EAUTH)
            SB_LOG_WARN("bluesky.poll", "account=%s code=%ld err=\"%s %s\"", a->name, res->code,
                        res->error, res->message);
        round_end(rd, false);
        return;
    }
    rd->pages++;
    bool reached = false;
    size_t i;
    json_t *n;
    json_array_foreach(list, i, n)
    {
        const char *at = str(n, "indexedAt"), *uri = str(n, "uri");
        if (!at || !uri)
            continue;
        if (a->cursor_uri && (strcmp(uri, a->cursor_uri) == 0 || strcmp(at, a->cursor_at) < 0)) {
            reached = true;
            break;
        }
        if (!rd->newest_uri) {
            rd->newest_at = sb_strdup(at);
            rd->newest_uri = sb_strdup(uri);
        }
        if (wanted(a, n))
            json_array_append(rd->items, n);
    }
    const char *cursor = str(res->body, "cursor");
    /* the first round of a new account reads one page: its history stays out of the queue */
    bool more = !reached && a->cursor_uri && cursor && *cursor && json_array_size(list) > 0;
    if (more && rd->pages < MAX_PAGES) {
        fetch_page(rd, cursor);
        return;
    }
    if (more)
        SB_LOG_WARN("bluesky.poll",
                    "account=%s pages=%u err=\"more notifications behind than "
                    "read in one round: the oldest are skipped\"",
                    a->name, rd->pages);
    rd->next = json_array_size(rd->items);
    next_item(rd);
}

static void fetch_page(round_t *rd, const char *cursor)
{
    char enc[512] = "";
    if (cursor && sb_attach_pct_encode(cursor, enc, sizeof(enc)) < 0) {
        SB_LOG_WARN("bluesky.poll", "account=%s err=\"cursor too long\"", rd->a->name);
        round_end(rd, false);
        return;
    }
    char *q = sb_asprintf("limit=%d%s%s", PAGE_LIMIT, cursor ? "&cursor=" : "", enc);
    sb__bs_xrpc(rd->a, "GET", "app.bsky.notification.listNotifications", q, NULL, on_page, rd);
    sb_free(q);
}

static void on_cursor(int status, json_t *result, const char *errmsg, void *data)
{
    round_t *rd = data;
    if (!store_back(rd))
        return;
    if (status != 0) {
        store_fail(rd, status, errmsg, "cursor");
        return;
    }
    const char *at = str(result, "indexed_at"), *uri = str(result, "uri");
    if (at && uri)
        set_mem_cursor(rd->a, at, uri);
    rd->a->cursor_loaded = true;
    fetch_page(rd, NULL);
}

void sb__bs_poll(bs_acct_t *a)
{
    if (a->polling || a->paused || a->bs->stopping)
        return;
    a->polling = true;
    a->polls++;
    round_t *rd = SB_NEW(round_t);
    rd->a = a;
    rd->items = json_array();
    rd->refs = json_array();
    if (a->cursor_loaded) {
        fetch_page(rd, NULL);
        return;
    }
    a->bs->pending++;
    int rc = sb_store_cursor_get(a->bs->env.store, a->cursor_name, on_cursor, rd);
    if (rc != 0) {
        a->bs->pending--;
        store_fail(rd, rc, NULL, "cursor");
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * The catch-up: what was mentioned while no stream was open, read from
 * GET /api/v1/notifications?types[]=mention after every connection's head came, oldest
 * first, the cursor (the newest id ingested with nothing missing before it) kept in
 * Redis as `cursor:mastodon:<name>` {"since_id":…}.
 *
 * Mastodon pages newest first. since_id=<cursor> answers the newest page after the
 * cursor: when it is not full it is everything, the usual case, and one request. When
 * it is full there may be more between the cursor and it, so the walk starts again from
 * the cursor with min_id=<cursor> (the page just after it) and follows each answer's
 * Link rel="prev" (the next newer page) until a page comes back short. Each page is
 * ingested oldest first and the cursor moves only past ids ingested, so a crash or a
 * drop anywhere repeats some work (external ids deduplicate it) and skips nothing.
 * On the very first start (no cursor) the newest mention becomes the cursor: the
 * account's history is not imported.
 */
#include <stdio.h>
#include <string.h>

#include "connectors/mastodon/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define PAGE_LIMIT 40

static void fetch(md_acct_t *a, char *url);

static char *cursor_name(const md_acct_t *a)
{
    return sb_asprintf("mastodon:%s", a->name);
}

static void on_saved(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    md_acct_t *a = data;
    a->inflight--;
    if (status)
        SB_LOG_WARN("mastodon.cursor", "account=%s err=\"%s\"", a->name,
                    errmsg ? errmsg : sb_strerror(status));
    sb__md_maybe_done(a->md);
}

void sb__md_cursor_advance(md_acct_t *a, const char *id)
{
    if (!id || !*id || strlen(id) >= sizeof(a->cursor) || sb__md_id_cmp(id, a->cursor) <= 0)
        return;
    snprintf(a->cursor, sizeof(a->cursor), "%s", id);
    char *name = cursor_name(a);
    json_t *f = json_pack("{s:s}", "since_id", id);
    if (sb_store_cursor_set(a->md->env.store, name, f, on_saved, a) == 0)
        a->inflight++;
    json_decref(f);
    sb_free(name);
}

static void finish(md_acct_t *a)
{
    a->catching_up = false;
    a->caught_up = a->stream_live;
    SB_LOG_INFO("mastodon.catchup", "account=%s pages=%u cursor=%s", a->name, a->catchup_pages,
                a->cursor);
}

/* The page's items are all in: the next page, or the end. */
static void page_done(md_acct_t *a)
{
    if (!a->page_full) {
        finish(a);
        return;
    }
    char *url = a->next_url;
    a->next_url = NULL;
    if (!url)
        url = sb_asprintf("%s/api/v1/notifications?types[]=mention&min_id=%s&limit=%d", a->base,
                          a->cursor, PAGE_LIMIT);
    fetch(a, url);
}

void sb__md_catchup_item_done(md_acct_t *a, unsigned cgen, const char *id)
{
    sb__md_cursor_advance(a, id);
    if (cgen != a->cgen || !a->catching_up || a->catchup_left == 0)
        return;
    if (--a->catchup_left == 0)
        page_done(a);
}

/* A Link URL we may follow with our token: one on the account's own server. */
static char *own_link(const md_acct_t *a, const char *link, const char *rel)
{
    char *u = link ? sb__md_link_rel(link, rel) : NULL;
    size_t bl = strlen(a->base);
    if (u && (strncmp(u, a->base, bl) != 0 || u[bl] != '/')) {
        sb_free(u);
        u = NULL;
    }
    return u;
}

static void on_page(md_acct_t *a, const sb_httpc_response_t *res, bool stale, void *arg)
{
    bool first = arg != NULL; /* the since_id request */
    if (stale)
        return;
    json_t *items = res->status == 0 && res->code / 100 == 2
                        ? json_loadb(res->body, res->body_len, 0, NULL)
                        : NULL;
    if (!json_is_array(items)) {
        char why[256];
        sb__md_reason(res, why, sizeof(why));
        SB_LOG_WARN("mastodon.catchup", "account=%s err=\"%s\"", a->name, why);
        json_decref(items);
        if (a->state == MD_UP) {
            a->catching_up = false;
            sb__md_stream_stop(a);
            sb__md_reconnect_later(a); /* a catch-up that failed is a gap: start over */
        }
        return;
    }
    a->pages++;
    a->catchup_pages++;
    size_t n = json_array_size(items);
    if (!a->cursor[0]) { /* first start: from the newest mention on */
        const char *id = json_string_value(json_object_get(json_array_get(items, 0), "id"));
        sb__md_cursor_advance(a, id ? id : "0");
        if (!id)
            snprintf(a->cursor, sizeof(a->cursor), "0");
        json_decref(items);
        finish(a);
        return;
    }
    if (first && n >= PAGE_LIMIT) { /* maybe more before it: walk up from the cursor */
        json_decref(items);
        a->page_full = true;
        page_done(a);
        return;
    }
    char hdr[4096];
    const char *link = sb_httpc_header(res, "link", hdr, sizeof(hdr));
    sb_free(a->next_url);
    a->next_url = own_link(a, link, "prev");
    a->page_full = n >= PAGE_LIMIT;
    a->cgen++;
    a->catchup_left = 0;
    for (size_t i = n; i > 0; i--) {
        json_t *it = json_array_get(items, i - 1);
        const char *id = json_string_value(json_object_get(it, "id"));
        if (id && sb__md_id_cmp(id, a->cursor) > 0) {
            a->catchup_left++;
            sb__md_enqueue(a, it, true);
        }
    }
    json_decref(items);
    if (a->catchup_left == 0)
        page_done(a);
}

/* GETs one page (url taken); first: the since_id request. */
static void fetch_as(md_acct_t *a, char *url, bool first)
{
    int rc = sb__md_call(a, true, "GET", url, NULL, NULL, on_page, first ? (void *)1 : NULL);
    sb_free(url);
    if (rc) {
        a->catching_up = false;
        sb__md_stream_stop(a);
        sb__md_reconnect_later(a);
    }
}

static void fetch(md_acct_t *a, char *url)
{
    fetch_as(a, url, false);
}

static void begin(md_acct_t *a)
{
    if (!a->cursor[0])
        fetch_as(a, sb_asprintf("%s/api/v1/notifications?types[]=mention&limit=1", a->base), false);
    else
        fetch_as(a,
                 sb_asprintf("%s/api/v1/notifications?types[]=mention&since_id=%s&limit=%d",
                             a->base, a->cursor, PAGE_LIMIT),
                 true);
}

typedef struct cur_get {
    md_acct_t *a;
    unsigned gen;
} cur_get_t;

static void on_cursor(int status, json_t *result, const char *errmsg, void *data)
{
    cur_get_t *g = data;
    md_acct_t *a = g->a;
    a->inflight--;
    bool stale = g->gen != a->gen || a->md->stopping || a->state != MD_UP;
    sb_free(g);
    if (!stale && status) {
        SB_LOG_WARN("mastodon.cursor", "account=%s err=\"%s\"", a->name,
                    errmsg ? errmsg : sb_strerror(status));
        a->catching_up = false;
        sb__md_stream_stop(a);
        sb__md_reconnect_later(a);
    } else if (!stale) {
        const char *since = json_string_value(json_object_get(result, "since_id"));
        snprintf(a->cursor, sizeof(a->cursor), "%s",
                 since && strlen(since) < sizeof(a->cursor) ? since : "");
        a->cursor_loaded = true;
        begin(a);
    }
    sb__md_maybe_done(a->md);
}

void sb__md_catchup(md_acct_t *a)
{
    a->catching_up = true;
    a->caught_up = false;
    a->catchup_pages = 0;
    a->catchup_left = 0;
    a->page_full = false;
    a->cgen++;
    sb_free(a->next_url);
    a->next_url = NULL;
    if (a->cursor_loaded) {
        begin(a);
        return;
    }
    cur_get_t *g = SB_NEW(cur_get_t);
    *g = (cur_get_t){.a = a, .gen = a->gen};
    char *name = cursor_name(a);
    int rc = sb_store_cursor_get(a->md->env.store, name, on_cursor, g);
    sb_free(name);
    if (rc) {
        sb_free(g);
        a->catching_up = false;
        sb__md_stream_stop(a);
        sb__md_reconnect_later(a);
        return;
    }
    a->inflight++;
}

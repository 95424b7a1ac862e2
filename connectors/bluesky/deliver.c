/* SPDX-License-Identifier: MIT */
/*
 * Outbox → Bluesky: a staff or bot answer becomes a reply post
 * (com.atproto.repo.createRecord of an app.bsky.feed.post) under the customer's newest
 * post in the conversation, from the account that received it. The record carries
 * reply.root (the thread's first post, as the customer's post named it, or that post
 * itself) and reply.parent (the customer's post), starts with "@handle " and has a mention
 * facet over it (UTF-8 byte offsets) naming the customer's DID. An answer over 300
 * graphemes is cut with core/split.h into a thread of at most bluesky_max_parts posts,
 * each the reply of the one before (the root stays); a longer one is refused.
 *
 * Sent once: each part's record key is a TID derived from the message id and the part
 * number (ids.c), so a part already created has a known address. An attempt that may
 * follow an earlier one (an entry read again after a restart, or a retry) first asks
 * com.atproto.repo.getRecord whether the part is there, and counts it as posted if so;
 * the PDS refuses a second record with the same key anyway. The posts' uris are linked to
 * the conversation (sb_store_thread_link) before the outcome is ok, so a customer's
 * answer to any of them threads back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/bluesky/internal.h"
#include "core/alloc.h"
#include "core/attach.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/outbox.h"
#include "core/split.h"
#include "core/sys.h"

#define PAGE_ITEMS 50
#define PAGE_BYTES (512 * 1024)

typedef struct out {
    bs_t *bs;
    bs_acct_t *a;
    sb_deliver_cb done;
    void *data;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    json_t *m;    /* the answer */
    json_t *post; /* ext of the customer's post we answer */
    bool check;   /* ask getRecord before creating each part */
    char **parts;
    size_t nparts, i;
    json_t *posted; /* [{uri,cid}] of the parts posted */
    char rkey[BS_TID_LEN + 1];
} out_t;

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void end(out_t *o, sb_outcome_kind_t kind, const char *reason, const char *provider_id,
                uint64_t retry_at_ms)
{
    sb_outcome_t oc = {
        .kind = kind, .reason = reason, .provider_id = provider_id, .retry_at_ms = retry_at_ms};
    if (o->a) {
        if (kind == SB_OUTCOME_OK)
            o->a->sent++;
        else
            o->a->send_failed++;
    }
    if (kind == SB_OUTCOME_OK)
        SB_LOG_INFO("bluesky.out.sent", "account=%s conv=%s msg=%s posts=%zu uri=%s",
                    o->a ? o->a->name : "", o->conv, o->mid, o->nparts, provider_id);
    else
        SB_LOG_WARN("bluesky.out", "account=%s conv=%s msg=%s outcome=%d reason=\"%s\"",
                    o->a ? o->a->name : "", o->conv, o->mid, (int)kind, reason ? reason : "");
    bs_t *bs = o->bs;
    o->done(&oc, o->data);
    json_decref(o->m);
    json_decref(o->post);
    json_decref(o->posted);
    sb_split_free(o->parts, o->nparts);
    sb_free(o);
    bs->pending--;
    sb__bs_maybe_done(bs);
}

/* An XRPC failure as an outcome (docs/bluesky.md, "Limits"). */
static void end_res(out_t *o, const char *step, const bs_res_t *r)
{
    char why[300];
    if (r->status == SB_EAUTH) {
        end(o, SB_OUTCOME_AUTH, r->message, NULL, 0);
        return;
    }
    if (r->status != 0) {
        snprintf(why, sizeof(why), "%s: %s", step, r->message);
        end(o, SB_OUTCOME_TEMPORARY, why, NULL, 0);
        return;
    }
    snprintf(why, sizeof(why), "%s: HTTP %ld%s%s%s%.200s", step, r->code, *r->error ? " " : "",
             r->error, *r->message ? ": " : "", r->message);
    if (r->code == 429) {
        char reset[32];
        uint64_t at = 0;
        if (r->http && sb_httpc_header(r->http, "ratelimit-reset", reset, sizeof(reset))) {
            char *e;
            unsigned long long s = strtoull(reset, &e, 10);
            if (e != reset && !*e && s > 0 && s < 4102444800ULL) /* before 2100 */
                at = (uint64_t)s * 1000;
        }
        end(o, SB_OUTCOME_RATE_LIMITED, why, NULL, at);
    } else if (r->code == 401 || r->code == 403) {
        end(o, SB_OUTCOME_AUTH, why, NULL, 0);
    } else if (r->code >= 400 && r->code < 500) {
        end(o, SB_OUTCOME_PERMANENT, why, NULL, 0);
    } else {
        end(o, SB_OUTCOME_TEMPORARY, why, NULL, 0);
    }
}

/* ---- Posting the parts ---- */

static void post_part(out_t *o);

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    out_t *o = data;
    if (status != 0) {
        char why[256];
        snprintf(why, sizeof(why), "thread link: %s",
                 errmsg && *errmsg ? errmsg : sb_strerror(status));
        end(o, SB_OUTCOME_TEMPORARY, why, NULL, 0);
        return;
    }
    end(o, SB_OUTCOME_OK, NULL, str(json_array_get(o->posted, 0), "uri"), 0);
}

/* Every part is posted: link their uris to the conversation, then ok. */
static void link_posts(out_t *o)
{
    size_t n = json_array_size(o->posted);
    char **ids = sb_calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        ids[i] = sb_asprintf("bluesky:%s:%s", o->a->name, str(json_array_get(o->posted, i), "uri"));
    int rc = sb_store_thread_link(o->bs->env.store, o->conv, o->mid, (const char *const *)ids, n,
                                  on_linked, o);
    for (size_t i = 0; i < n; i++)
        sb_free(ids[i]);
    sb_free(ids);
    if (rc != 0)
        end(o, SB_OUTCOME_TEMPORARY, "thread link: the store is unavailable", NULL, 0);
}

/* The part i is on the PDS at uri/cid: the next one, or the links. */
static void posted(out_t *o, const char *uri, const char *cid)
{
    json_array_append_new(o->posted, json_pack("{s:s, s:s}", "uri", uri, "cid", cid));
    o->i++;
    if (o->i < o->nparts)
        post_part(o);
    else
        link_posts(o);
}

static void on_created(bs_acct_t *a, const bs_res_t *r, void *data)
{
    (void)a;
    out_t *o = data;
    const char *uri = str(r->body, "uri"), *cid = str(r->body, "cid");
    if (r->status == 0 && r->code == 200 && uri && cid) {
        posted(o, uri, cid);
        return;
    }
    if (r->status == 0 && r->code == 200) {
        end(o, SB_OUTCOME_TEMPORARY, "createRecord answered without uri and cid", NULL, 0);
        return;
    }
    end_res(o, "createRecord", r);
}

/* The post's reply refs: root as the customer's post named it, parent the post before. */
static json_t *reply_refs(out_t *o)
{
    const json_t *prev = json_array_get(o->posted, json_array_size(o->posted) - 1);
    const char *puri = prev ? str(prev, "uri") : str(o->post, "uri");
    const char *pcid = prev ? str(prev, "cid") : str(o->post, "cid");
    const char *ruri = str(o->post, "root_uri"), *rcid = str(o->post, "root_cid");
    if (!ruri || !rcid) {
        ruri = str(o->post, "uri");
        rcid = str(o->post, "cid");
    }
    return json_pack("{s:{s:s, s:s}, s:{s:s, s:s}}", "root", "uri", ruri, "cid", rcid, "parent",
                     "uri", puri, "cid", pcid);
}

static void create_part(out_t *o)
{
    bs_acct_t *a = o->a;
    const char *text = o->parts[o->i];
    const char *handle = str(o->post, "handle"), *did = str(o->post, "did");
    char created[32];
    sb__bs_iso_now(created);
    json_t *record = json_pack("{s:s, s:s, s:s, s:o}", "$type", "app.bsky.feed.post", "text", text,
                               "createdAt", created, "reply", reply_refs(o));
    if (!record) {
        end(o, SB_OUTCOME_PERMANENT, "the answer is not valid UTF-8", NULL, 0);
        return;
    }
    size_t mention = handle ? strlen(handle) + 1 : 0; /* "@handle", in bytes */
    if (handle && did && strncmp(text, "@", 1) == 0 && strncmp(text + 1, handle, mention - 1) == 0)
        json_object_set_new(record, "facets",
                            json_pack("[{s:{s:i, s:i}, s:[{s:s, s:s}]}]", "index", "byteStart", 0,
                                      "byteEnd", (json_int_t)mention, "features", "$type",
                                      "app.bsky.richtext.facet#mention", "did", did));
    json_t *body = json_pack("{s:s, s:s, s:s, s:o}", "repo", a->did ? a->did : a->handle,
                             "collection", "app.bsky.feed.post", "rkey", o->rkey, "record", record);
    sb__bs_xrpc(a, "POST", "com.atproto.repo.createRecord", NULL, body, on_created, o);
    json_decref(body);
}

static void on_record(bs_acct_t *a, const bs_res_t *r, void *data)
{
    (void)a;
    out_t *o = data;
    const char *uri = str(r->body, "uri"), *cid = str(r->body, "cid");
    if (r->status == 0 && r->code == 200 && uri && cid) {
        SB_LOG_INFO("bluesky.out.found", "account=%s msg=%s part=%zu uri=%s (posted before)",
                    o->a->name, o->mid, o->i, uri);
        posted(o, uri, cid);
    } else if (r->status == 0 && (r->code == 404 || !strcmp(r->error, "RecordNotFound"))) {
        create_part(o);
    } else {
        end_res(o, "getRecord", r);
    }
}

static void post_part(out_t *o)
{
    bs_acct_t *a = o->a;
    sb__bs_tid(o->mid, json_integer_value(json_object_get(o->m, "ts")), (unsigned)o->i, o->rkey);
    if (!o->check) {
        create_part(o);
        return;
    }
    char repo[300];
    if (sb_attach_pct_encode(a->did ? a->did : a->handle, repo, sizeof(repo)) < 0) {
        end(o, SB_OUTCOME_PERMANENT, "the account's DID is too long", NULL, 0);
        return;
    }
    char *q = sb_asprintf("repo=%s&collection=app.bsky.feed.post&rkey=%s", repo, o->rkey);
    sb__bs_xrpc(a, "GET", "com.atproto.repo.getRecord", q, NULL, on_record, o);
    sb_free(q);
}

/* ---- Finding the post to answer ---- */

/* Cuts the answer into the posts it takes; false (and the attempt ended) if it can't. */
static bool split_answer(out_t *o)
{
    const char *handle = str(o->post, "handle");
    char *prefix = handle ? sb_asprintf("@%s ", handle) : NULL;
    sb_split_rules_t rules = {
        .limit = BS_POST_LIMIT, .prefix = prefix, .number = true, .max_parts = o->bs->max_parts};
    int rc = sb_split(str(o->m, "text"), &rules, &o->parts, &o->nparts);
    sb_free(prefix);
    char why[256];
    if (rc == SB_ETOOBIG) {
        snprintf(why, sizeof(why),
                 "the answer would take %zu posts of 300 characters; bluesky_max_parts allows %u: "
                 "shorten it",
                 o->nparts, o->bs->max_parts);
        o->nparts = 0;
        end(o, SB_OUTCOME_PERMANENT, why, NULL, 0);
        return false;
    }
    if (rc != 0) {
        o->parts = NULL;
        o->nparts = 0;
        end(o, SB_OUTCOME_PERMANENT, "the answer cannot be posted (empty, or not valid UTF-8)",
            NULL, 0);
        return false;
    }
    return true;
}

/* The newest inbound Bluesky post: which account answers, and under which post. */
static void on_page(int status, json_t *result, const char *errmsg, void *data)
{
    out_t *o = data;
    if (status != 0) {
        char why[256];
        snprintf(why, sizeof(why), "transcript: %s",
                 errmsg && *errmsg ? errmsg : sb_strerror(status));
        bool gone = status == SB_ENOTFOUND || status == SB_EINVAL;
        end(o, gone ? SB_OUTCOME_PERMANENT : SB_OUTCOME_TEMPORARY, why, NULL, 0);
        return;
    }
    static const char *const need[] = {"account", "uri", "cid", NULL};
    const json_t *it = sb_msg_newest_in(json_object_get(result, "items"), need);
    if (it)
        o->post = json_incref(json_object_get(it, "ext"));
    if (!o->post) {
        end(o, SB_OUTCOME_PERMANENT, "the conversation has no Bluesky post to answer", NULL, 0);
        return;
    }
    o->a = sb__bs_acct(o->bs, str(o->post, "account"));
    if (!o->a) {
        char why[200];
        snprintf(why, sizeof(why), "the Bluesky account '%.64s' is not configured",
                 str(o->post, "account"));
        end(o, SB_OUTCOME_PERMANENT, why, NULL, 0);
        return;
    }
    if (o->a->paused) {
        end(o, SB_OUTCOME_AUTH, o->a->pause_reason, NULL, 0);
        return;
    }
    if (split_answer(o))
        post_part(o);
}

int sb__bs_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data)
{
    bs_t *bs = state;
    out_t *o = SB_NEW(out_t);
    *o = (out_t){.bs = bs, .done = done, .data = data};
    if (sb_outbox_reply_of(entry, o->conv, o->mid, &o->m) != 0) {
        sb_free(o);
        return SB_EINVAL;
    }
    o->posted = json_array();
    o->check = entry->redelivered || entry->attempt > 1;
    int rc = sb_store_public_page(bs->env.store, o->conv, NULL, NULL, PAGE_ITEMS, PAGE_BYTES,
                                  on_page, o);
    if (rc != 0) {
        json_decref(o->posted);
        json_decref(o->m);
        sb_free(o);
        return rc;
    }
    bs->pending++;
    return 0;
}

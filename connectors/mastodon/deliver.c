/* SPDX-License-Identifier: MIT */
/*
 * Outbox → Mastodon: one staff or bot answer becomes a reply under the customer's status.
 * The conversation's newest inbound mastodon message says which account received it,
 * which status to answer, its visibility (a direct message is answered directly) and its
 * author's acct. The answer is POSTed to /api/v1/statuses as "@acct <text>", and when it
 * is over the server's max_characters it is cut (core/split.h, URLs weighed as the
 * server does, a counter " (i/n)") into a thread, each part answering the previous one.
 *
 * Idempotency-Key is the message id (part i > 1: "<id>-<i>"): an attempt repeated after a
 * crash or a failed later part gets the same statuses back from the server instead of
 * posting them twice. Every posted status is linked to the conversation before the
 * outcome is ok, so the customer's reply to it threads back.
 *
 * Outcomes: 2xx ok (provider id = the first status), 429 rate_limited at
 * X-RateLimit-Reset, 401 auth (the account pauses too), other 4xx permanent with the
 * server's error, 5xx and network failures temporary.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/mastodon/internal.h"
#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/outbox.h"
#include "core/split.h"
#include "core/sys.h"

#define PAGE_ITEMS 50
#define PAGE_BYTES (512 * 1024)

typedef struct md_out {
    md_t *md;
    md_acct_t *a;
    sb_deliver_cb done;
    void *data;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    json_t *m;    /* the outbound message */
    json_t *last; /* the ext of the newest inbound mastodon message */
    char **parts;
    size_t nparts, i;
    char reply_to[SB__MD_ID_MAX];
    char **ids; /* the posted statuses' link ids, "mastodon:<name>:<id>" */
    char first[SB__MD_ID_MAX];
} md_out_t;

static void out_free(md_out_t *o)
{
    json_decref(o->m);
    json_decref(o->last);
    sb_split_free(o->parts, o->nparts);
    for (size_t k = 0; o->ids && k < o->nparts; k++)
        sb_free(o->ids[k]);
    sb_free(o->ids);
    sb_free(o);
}

static void end(md_out_t *o, sb_outcome_kind_t kind, const char *reason, uint64_t retry_at)
{
    sb_outcome_t oc = {.kind = kind,
                       .reason = reason,
                       .provider_id = kind == SB_OUTCOME_OK ? o->first : NULL,
                       .retry_at_ms = retry_at};
    md_t *md = o->md;
    if (kind == SB_OUTCOME_OK) {
        md->env.msgs_out[SB_CHANNEL_mastodon]++;
        if (o->a)
            o->a->posted++;
        SB_LOG_INFO("mastodon.out.sent", "conv=%s msg=%s account=%s status_id=%s parts=%zu",
                    o->conv, o->mid, o->a->name, o->first, o->nparts);
    } else {
        if (o->a)
            o->a->post_failed++;
        SB_LOG_WARN("mastodon.out", "conv=%s msg=%s outcome=%d reason=\"%s\"", o->conv, o->mid,
                    (int)kind, reason ? reason : "");
    }
    o->done(&oc, o->data);
    out_free(o);
    md->pending--;
    sb__md_maybe_done(md);
}

static void end_store(md_out_t *o, int status, const char *errmsg, const char *step)
{
    char why[256];
    snprintf(why, sizeof(why), "%s: %s", step, errmsg && *errmsg ? errmsg : sb_strerror(status));
    bool gone = status == SB_ENOTFOUND || status == SB_EINVAL;
    end(o, gone ? SB_OUTCOME_PERMANENT : SB_OUTCOME_TEMPORARY, why, 0);
}

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    md_out_t *o = data;
    if (status)
        end_store(o, status, errmsg, "thread link");
    else
        end(o, SB_OUTCOME_OK, NULL, 0);
}

static void post_next(md_out_t *o);

/* The server's answer to one part: the next part, the links, or the outcome. */
static void on_posted(md_acct_t *a, const sb_httpc_response_t *res, bool stale, void *arg)
{
    md_out_t *o = arg;
    char why[300];
    (void)stale;
    if (a->md->stopping) {
        end(o, SB_OUTCOME_TEMPORARY, "the connector is stopping", 0);
        return;
    }
    sb__md_reason(res, why, sizeof(why));
    if (res->status != 0 || res->code >= 500) {
        end(o, SB_OUTCOME_TEMPORARY, why, 0);
        return;
    }
    if (res->code == 401) {
        char r[320];
        snprintf(r, sizeof(r), "account paused: %s", why);
        end(o, SB_OUTCOME_AUTH, r, 0);
        return;
    }
    if (res->code == 429) {
        char reset[64];
        int64_t at = sb_httpc_header(res, "x-ratelimit-reset", reset, sizeof(reset))
                         ? sb__md_iso_ms(reset)
                         : -1;
        end(o, SB_OUTCOME_RATE_LIMITED, why, at > 0 ? (uint64_t)at : 0);
        return;
    }
    if (res->code / 100 != 2) {
        end(o, SB_OUTCOME_PERMANENT, why, 0);
        return;
    }
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!id || !*id || strlen(id) >= SB__MD_ID_MAX) {
        json_decref(j);
        end(o, SB_OUTCOME_TEMPORARY, "the server's answer has no status id", 0);
        return;
    }
    if (o->i == 0)
        snprintf(o->first, sizeof(o->first), "%s", id);
    snprintf(o->reply_to, sizeof(o->reply_to), "%s", id);
    o->ids[o->i] = sb_asprintf("mastodon:%s:%s", a->name, id);
    json_decref(j);
    o->i++;
    if (o->i < o->nparts) {
        post_next(o);
        return;
    }
    int rc = sb_store_thread_link(o->md->env.store, o->conv, o->mid, (const char *const *)o->ids,
                                  o->nparts, on_linked, o);
    if (rc)
        end_store(o, rc, NULL, "thread link");
}

static void post_next(md_out_t *o)
{
    md_acct_t *a = o->a;
    const char *vis = json_string_value(json_object_get(o->last, "visibility"));
    json_t *body = json_pack("{s:s, s:s, s:s}", "status", o->parts[o->i], "in_reply_to_id",
                             o->reply_to, "visibility", vis ? vis : "public");
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char key[SB_ID_MAX + 64];
    if (o->i == 0)
        snprintf(key, sizeof(key), "Idempotency-Key: %s", o->mid);
    else
        snprintf(key, sizeof(key), "Idempotency-Key: %s-%zu", o->mid, o->i + 1);
    const char *extra[] = {key, NULL};
    char *url = sb_asprintf("%s/api/v1/statuses", a->base);
    int rc = sb__md_call(a, false, "POST", url, extra, text, on_posted, o);
    sb_free(url);
    free(text);
    if (rc)
        end(o, SB_OUTCOME_TEMPORARY, sb_strerror(rc), 0);
}

/* Cuts the answer to the account's limit and posts the first part. */
static void compose(md_out_t *o)
{
    md_acct_t *a = o->a;
    const char *acct = json_string_value(json_object_get(o->last, "acct"));
    const char *status_id = json_string_value(json_object_get(o->last, "status_id"));
    if (!acct || !status_id || strlen(status_id) >= SB__MD_ID_MAX) {
        end(o, SB_OUTCOME_PERMANENT, "the customer's status is not known (no acct or status id)",
            0);
        return;
    }
    if (a->state == MD_PAUSED) {
        char r[320];
        snprintf(r, sizeof(r), "account paused: %s", a->reason);
        end(o, SB_OUTCOME_AUTH, r, 0);
        return;
    }
    snprintf(o->reply_to, sizeof(o->reply_to), "%s", status_id);
    char *prefix = sb_asprintf("@%s ", acct);
    sb_split_rules_t r = {.limit = a->max_chars,
                          .url_weight = a->url_chars,
                          .mention_local = true,
                          .prefix = prefix,
                          .number = true,
                          .max_parts = o->md->max_parts};
    int rc = sb_split(json_string_value(json_object_get(o->m, "text")), &r, &o->parts, &o->nparts);
    sb_free(prefix);
    if (rc == SB_ETOOBIG) {
        char why[256];
        snprintf(why, sizeof(why),
                 "the answer needs %zu posts of at most %zu characters; the limit is %u: "
                 "shorten it",
                 o->nparts, a->max_chars, o->md->max_parts);
        o->nparts = 0;
        end(o, SB_OUTCOME_PERMANENT, why, 0);
        return;
    }
    if (rc) {
        o->nparts = 0;
        end(o, SB_OUTCOME_PERMANENT, "the answer is empty or not valid UTF-8", 0);
        return;
    }
    o->ids = sb_calloc(o->nparts, sizeof(char *));
    post_next(o);
}

/* The newest inbound mastodon message: which account, status and visibility to answer. */
static void on_page(int status, json_t *result, const char *errmsg, void *data)
{
    md_out_t *o = data;
    if (status) {
        end_store(o, status, errmsg, "transcript");
        return;
    }
    static const char *const need[] = {"account", NULL};
    const json_t *it = sb_msg_newest_in(json_object_get(result, "items"), need);
    if (it) {
        json_t *ext = json_object_get(it, "ext");
        const char *acc = json_string_value(json_object_get(ext, "account"));
        o->a = sb__md_acct(o->md, acc);
        if (!o->a) {
            char why[200];
            snprintf(why, sizeof(why), "the Mastodon account %.64s is not configured", acc);
            end(o, SB_OUTCOME_PERMANENT, why, 0);
            return;
        }
        o->last = json_incref(ext);
        compose(o);
        return;
    }
    end(o, SB_OUTCOME_PERMANENT, "no Mastodon status to answer in this conversation", 0);
}

int sb__md_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data)
{
    md_t *md = state;
    md_out_t *o = SB_NEW(md_out_t);
    if (sb_outbox_reply_of(entry, o->conv, o->mid, &o->m) != 0) {
        sb_free(o);
        return SB_EINVAL;
    }
    o->md = md;
    o->done = done;
    o->data = data;
    md->pending++;
    int rc = sb_store_public_page(md->env.store, o->conv, NULL, NULL, PAGE_ITEMS, PAGE_BYTES,
                                  on_page, o);
    if (rc) {
        md->pending--;
        out_free(o);
        return rc;
    }
    return 0;
}

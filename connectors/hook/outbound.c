/* SPDX-License-Identifier: MIT */
/*
 * Outbox → relay: one staff or bot answer in a hook conversation is POSTed to the hook's
 * reply-url (docs/hooks.md). The conversation's newest inbound message from a hook says
 * which hook, which thread and which post it answers; the body is
 * {"type":"message","id","conv","thread","in_reply_to","text","author":{"name"}}, signed
 * as Standard Webhooks with webhook-id = our message id, the same on every attempt, so
 * the relay can drop a repeat. The answer becomes the outcome: 2xx ok (provider id = its
 * "id"), 429 rate limited until Retry-After, 401/403 auth, other 4xx permanent, 5xx and
 * no answer temporary (the outbox retries with backoff, then dead-letters).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/hook/internal.h"
#include "core/alloc.h"
#include "core/msg.h"
#include "core/err.h"
#include "core/log.h"
#include "core/outbox.h"
#include "core/stdwebhooks.h"
#include "core/sys.h"
#include "core/util.h"

#define PAGE_ITEMS      50
#define PAGE_BYTES      (512 * 1024)
#define SEND_TIMEOUT_MS 10000
#define RETRY_AFTER_MAX (24 * 3600)

typedef struct hook_out {
    hook_t *h;
    sb_deliver_cb done;
    void *data;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    json_t *m; /* the outbound message */
    const hook_ep_t *ep;
} hook_out_t;

static void end(hook_out_t *o, sb_outcome_kind_t kind, const char *reason, const char *provider_id,
                uint64_t retry_at_ms)
{
    sb_outcome_t oc = {
        .kind = kind, .reason = reason, .provider_id = provider_id, .retry_at_ms = retry_at_ms};
    hook_t *h = o->h;
    if (kind == SB_OUTCOME_OK) {
        h->sent++;
        SB_LOG_INFO("hook.out.sent", "hook=%s conv=%s msg=%s", o->ep ? o->ep->name : "", o->conv,
                    o->mid);
    } else {
        h->send_failed++;
        SB_LOG_WARN("hook.out", "conv=%s msg=%s outcome=%d reason=\"%s\"", o->conv, o->mid,
                    (int)kind, reason ? reason : "");
    }
    o->done(&oc, o->data);
    json_decref(o->m);
    sb_free(o);
    sb__hook_unref(h);
}

static void on_answer(const sb_httpc_response_t *res, void *data)
{
    hook_out_t *o = data;
    char why[256], ra[32];
    if (res->status != 0) {
        snprintf(why, sizeof(why), "%s",
                 res->error && *res->error ? res->error : sb_strerror(res->status));
        end(o, SB_OUTCOME_TEMPORARY, why, NULL, 0);
        return;
    }
    json_t *body = json_loadb(res->body, res->body_len, 0, NULL);
    if (res->code >= 200 && res->code < 300) {
        end(o, SB_OUTCOME_OK, NULL, json_string_value(json_object_get(body, "id")), 0);
        json_decref(body);
        return;
    }
    const char *err = json_string_value(json_object_get(body, "error"));
    if (!err) /* {"error":{"message":…}} as our own API answers */
        err = json_string_value(json_object_get(json_object_get(body, "error"), "message"));
    snprintf(why, sizeof(why), "HTTP %ld: %.200s", res->code, err ? err : res->body);
    sb_outcome_kind_t kind = SB_OUTCOME_TEMPORARY;
    uint64_t at = 0;
    if (res->code == 429) {
        kind = SB_OUTCOME_RATE_LIMITED;
        char *e;
        if (sb_httpc_header(res, "retry-after", ra, sizeof(ra))) {
            unsigned long secs = strtoul(ra, &e, 10);
            if (e != ra && !*e && secs <= RETRY_AFTER_MAX)
                at = (uint64_t)sb_now_ms() + secs * 1000;
        }
    } else if (res->code == 401 || res->code == 403) {
        kind = SB_OUTCOME_AUTH;
    } else if (res->code >= 400 && res->code < 500) {
        kind = SB_OUTCOME_PERMANENT;
    }
    end(o, kind, why, NULL, at);
    json_decref(body);
}

/* POSTs the answer to the hook's reply-url, signed. */
static void send_reply(hook_out_t *o, json_t *last)
{
    json_t *ext = json_object_get(last, "ext");
    const char *author =
        json_string_value(json_object_get(json_object_get(o->m, "author"), "name"));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:O, s:O, s:O, s:{s:s?}}", "type", "message", "id", o->mid,
                  "conv", o->conv, "thread", json_object_get(ext, "thread"), "in_reply_to",
                  json_object_get(ext, "id") ? json_object_get(ext, "id") : json_null(), "text",
                  json_object_get(o->m, "text"), "author", "name", author);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        end(o, SB_OUTCOME_PERMANENT, "the answer could not be written as JSON", NULL, 0);
        return;
    }
    char ts[24], sig[SB_STDWEBHOOKS_SIG_MAX], hid[96], hts[48], hsig[96];
    snprintf(ts, sizeof(ts), "%lld", (long long)(sb_now_ms() / 1000));
    sb_stdwebhooks_sign(o->ep->key, o->ep->keylen, o->mid, ts, body, strlen(body), sig);
    snprintf(hid, sizeof(hid), "webhook-id: %s", o->mid);
    snprintf(hts, sizeof(hts), "webhook-timestamp: %s", ts);
    snprintf(hsig, sizeof(hsig), "webhook-signature: %s", sig);
    const char *headers[] = {hid, hts, hsig, "Content-Type: application/json", NULL};
    sb_httpc_request_t req = {.method = "POST",
                              .url = o->ep->url,
                              .headers = headers,
                              .body = body,
                              .body_len = strlen(body),
                              .timeout_ms = SEND_TIMEOUT_MS,
                              .max_response = 64 * 1024};
    int rc = sb_httpc_send(o->h->httpc, &req, on_answer, o, NULL);
    free(body);
    if (rc)
        end(o, SB_OUTCOME_TEMPORARY, sb_strerror(rc), NULL, 0);
}

/* The newest inbound message from a hook: which hook, thread and post to answer. */
static void on_page(int status, json_t *result, const char *errmsg, void *data)
{
    hook_out_t *o = data;
    if (status) {
        char why[256];
        snprintf(why, sizeof(why), "transcript: %s",
                 errmsg && *errmsg ? errmsg : sb_strerror(status));
        end(o, status == SB_ENOTFOUND ? SB_OUTCOME_PERMANENT : SB_OUTCOME_TEMPORARY, why, NULL, 0);
        return;
    }
    static const char *const need[] = {"hook", "thread", NULL};
    json_t *it = sb_msg_newest_in(json_object_get(result, "items"), need);
    if (it) {
        const char *name = json_string_value(json_object_get(json_object_get(it, "ext"), "hook"));
        o->ep = sb__hook_find(o->h, name);
        if (!o->ep) {
            char why[128];
            snprintf(why, sizeof(why), "hook %.40s is not configured", name);
            end(o, SB_OUTCOME_PERMANENT, why, NULL, 0);
            return;
        }
        send_reply(o, it);
        return;
    }
    end(o, SB_OUTCOME_PERMANENT, "the conversation has no message from a hook", NULL, 0);
}

int sb__hook_deliver(void *state, const sb_outbox_entry_t *entry, sb_deliver_cb done, void *data)
{
    hook_t *h = state;
    hook_out_t *o = SB_NEW(hook_out_t);
    *o = (hook_out_t){.h = h, .done = done, .data = data};
    if (sb_outbox_reply_of(entry, o->conv, o->mid, &o->m) != 0) {
        sb_free(o);
        return SB_EINVAL;
    }
    h->pending++;
    int rc =
        sb_store_public_page(h->env.store, o->conv, NULL, NULL, PAGE_ITEMS, PAGE_BYTES, on_page, o);
    if (rc) {
        h->pending--;
        json_decref(o->m);
        sb_free(o);
        return rc;
    }
    return 0;
}

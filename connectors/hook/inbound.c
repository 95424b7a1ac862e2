/* SPDX-License-Identifier: MIT */
/*
 * POST /v1/hooks/{name}: one signed post of a relay becomes a customer message
 * (docs/hooks.md). The signature is checked before the body is even parsed (a refusal is
 * 401 and one log line with the reason); the body's thread, author and text are checked;
 * then the author becomes a contact (handle kind "hook:<name>"), the thread finds its
 * conversation (the external id "hook:<name>:<thread>", linked after every ingest), and
 * the message is ingested with the external id "<name>:<id>" (or "<name>:wh:<webhook-id>"
 * without an id), so a replayed post is answered 200 with the first message's ids and
 * stores nothing. The answer is sent only once Redis holds the message and its link.
 */
#include <stdio.h>
#include <string.h>

#include "connectors/hook/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/stdwebhooks.h"

#define BODY_MAX   (256 * 1024)
#define FIELD_MAX  256
#define TEXT_MAX   (64 * 1024)
#define THREAD_REF (SB_HOOK_NAME_MAX + FIELD_MAX + 8)

typedef struct post {
    hook_t *h;
    sb_host_req_t *req;
    const hook_ep_t *ep;
    json_t *body;                                             /* the parsed post */
    const char *thread, *author_id, *author_name, *text, *id; /* in body */
    char contact[SB_ID_MAX];
    char ref[THREAD_REF]; /* "hook:<name>:<thread>" */
    char *external_id;    /* "<name>:<id>" or "<name>:wh:<webhook-id>" */
    json_t *answer;       /* {"id","conv","duplicate"} once ingested */
} post_t;

static void post_end(post_t *p)
{
    hook_t *h = p->h;
    json_decref(p->body);
    json_decref(p->answer);
    sb_free(p->external_id);
    sb_free(p);
    sb__hook_unref(h);
}

/* A store call that failed: 503 (the relay retries; a stored message is deduplicated). */
static void fail_store(post_t *p, int status, const char *errmsg, const char *step)
{
    SB_LOG_WARN("hook.store", "hook=%s step=%s err=\"%s\"", p->ep->name, step,
                errmsg && *errmsg ? errmsg : sb_strerror(status));
    p->h->env.host->respond_error(p->req, 503, "unavailable", "the store is unavailable; retry");
    post_end(p);
}

static void on_linked(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    post_t *p = data;
    if (status) {
        fail_store(p, status, errmsg, "thread link");
        return;
    }
    bool dup = json_is_true(json_object_get(p->answer, "duplicate"));
    p->h->env.host->respond_json(p->req, dup ? 200 : 201, p->answer);
    post_end(p);
}

static void on_ingested(int status, json_t *result, const char *errmsg, void *data)
{
    post_t *p = data;
    if (status) {
        fail_store(p, status, errmsg, "ingest");
        return;
    }
    json_t *m = json_object_get(result, "message");
    const char *mid = json_string_value(json_object_get(m, "id"));
    const char *conv = json_string_value(json_object_get(m, "conv"));
    bool dup = json_is_true(json_object_get(result, "duplicate"));
    if (!mid || !conv) {
        fail_store(p, SB_EINTERNAL, "no message in the ingest result", "ingest");
        return;
    }
    if (dup)
        p->h->duplicates++;
    else
        p->h->received++;
    SB_LOG_INFO("hook.in", "hook=%s conv=%s msg=%s duplicate=%d", p->ep->name, conv, mid, dup);
    p->answer = json_pack("{s:s, s:s, s:b}", "id", mid, "conv", conv, "duplicate", dup);
    const char *ids[] = {p->ref};
    int rc = sb_store_thread_link(p->h->env.store, conv, mid, ids, 1, on_linked, p);
    if (rc)
        fail_store(p, rc, NULL, "thread link");
}

static void on_thread(int status, json_t *result, const char *errmsg, void *data)
{
    post_t *p = data;
    if (status) {
        fail_store(p, status, errmsg, "thread");
        return;
    }
    const char *conv = json_string_value(json_object_get(result, "conv"));
    json_t *ext = json_pack("{s:s, s:s, s:s*, s:s}", "hook", p->ep->name, "thread", p->thread, "id",
                            p->id, "author_id", p->author_id);
    sb_ingest_t in = {.channel = "hook",
                      .contact_id = p->contact,
                      .contact_name = p->author_name,
                      .conv = conv,
                      .new_conversation = conv == NULL,
                      .text = p->text,
                      .external_id = p->external_id,
                      .ext = ext};
    int rc = sb_store_ingest(p->h->env.store, &in, on_ingested, p);
    json_decref(ext);
    if (rc)
        fail_store(p, rc, NULL, "ingest");
}

static void on_contact(int status, json_t *result, const char *errmsg, void *data)
{
    post_t *p = data;
    const char *id = json_string_value(json_object_get(result, "id"));
    if (status || !id || strlen(id) >= sizeof(p->contact)) {
        fail_store(p, status ? status : SB_EINTERNAL, errmsg, "contact");
        return;
    }
    snprintf(p->contact, sizeof(p->contact), "%s", id);
    const char *refs[] = {p->ref};
    int rc =
        sb_store_thread_find(p->h->env.store, "hook", p->contact, refs, 1, NULL, 0, on_thread, p);
    if (rc)
        fail_store(p, rc, NULL, "thread");
}

/* A string member of o; NULL when absent and not required, or (with *bad) when it is not
 * a string of 1..max bytes without NUL. */
static const char *field(json_t *o, const char *name, size_t max, bool required, bool *bad)
{
    json_t *v = json_object_get(o, name);
    const char *s = json_string_value(v);
    size_t n = s ? json_string_length(v) : 0;
    *bad = v ? !s || n == 0 || n > max || strlen(s) != n : required;
    return *bad ? NULL : s;
}

/* Checks the post's shape; NULL, or what is wrong (written into why). */
static const char *check_body(post_t *p, const char *raw, size_t len, char *why, size_t cap)
{
    json_error_t err;
    if (len > BODY_MAX)
        return snprintf(why, cap, "the body is over %d bytes", BODY_MAX), why;
    p->body = json_loadb(raw, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(p->body)) {
        snprintf(why, cap, "the body must be a JSON object (%.100s)",
                 p->body ? "not an object" : err.text);
        return why;
    }
    json_t *author = json_object_get(p->body, "author");
    if (!json_is_object(author))
        return snprintf(why, cap, "author must be an object with an id and a name"), why;
    const struct {
        json_t *o;
        const char *name, *label;
        size_t max;
        bool required;
        const char **out;
    } f[] = {
        {p->body, "thread", "thread", FIELD_MAX, true, &p->thread},
        {author, "id", "author.id", FIELD_MAX, true, &p->author_id},
        {author, "name", "author.name", FIELD_MAX, false, &p->author_name},
        {p->body, "text", "text", TEXT_MAX, true, &p->text},
        {p->body, "id", "id", FIELD_MAX, false, &p->id},
    };
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        bool bad;
        *f[i].out = field(f[i].o, f[i].name, f[i].max, f[i].required, &bad);
        if (bad) {
            snprintf(why, cap, "%s %s a string of 1 to %zu bytes", f[i].label,
                     f[i].required ? "is required:" : "must be", f[i].max);
            return why;
        }
    }
    return NULL;
}

void sb__hook_on_post(sb_host_req_t *req, void *data)
{
    hook_t *h = data;
    const sb_host_ops_t *host = h->env.host;
    const char *name = host->req_param(req, "name");
    const hook_ep_t *ep = sb__hook_find(h, name);
    if (!ep) {
        host->respond_error(req, 404, "not_found", "no such hook");
        return;
    }
    size_t len = 0;
    const char *body = host->req_body(req, &len);
    const char *wid = host->req_header(req, "webhook-id"), *why = NULL;
    int rc =
        sb_stdwebhooks_verify(ep->key, ep->keylen, wid, host->req_header(req, "webhook-timestamp"),
                              host->req_header(req, "webhook-signature"), body, len, &why);
    if (rc) {
        h->refused++;
        SB_LOG_WARN("hook.refused", "hook=%s peer=%s reason=\"%s\"", ep->name,
                    host->req_peer(req) ? host->req_peer(req) : "", why);
        host->respond_error(req, 401, "unauthorized", why);
        return;
    }
    post_t *p = SB_NEW(post_t);
    *p = (post_t){.h = h, .req = req, .ep = ep};
    char bad[160];
    if (check_body(p, body, len, bad, sizeof(bad))) {
        host->respond_error(req, 400, "bad_request", bad);
        json_decref(p->body);
        sb_free(p);
        return;
    }
    snprintf(p->ref, sizeof(p->ref), "hook:%s:%s", ep->name, p->thread);
    p->external_id =
        p->id ? sb_asprintf("%s:%s", ep->name, p->id) : sb_asprintf("%s:wh:%s", ep->name, wid);
    char kind[SB_HOOK_NAME_MAX + 8];
    snprintf(kind, sizeof(kind), "hook:%s", ep->name);
    h->pending++;
    rc = sb_store_contact_resolve(h->env.store, kind, p->author_id, p->author_name, NULL,
                                  on_contact, p);
    if (rc)
        fail_store(p, rc, NULL, "contact");
}

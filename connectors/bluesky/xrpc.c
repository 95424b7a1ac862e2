/* SPDX-License-Identifier: MIT */
/*
 * XRPC calls with an account's session (atproto's HTTP API: GET /xrpc/<nsid>?… for
 * queries, POST /xrpc/<nsid> with a JSON body for procedures, errors as
 * {"error":"<Name>","message":"…"}). The session comes from
 * com.atproto.server.createSession {identifier, password} (the handle and the app
 * password read from the account's file at each attempt) and gives accessJwt (sent as
 * the Bearer token of every call), refreshJwt, did and handle. An answer that says the
 * access token expired (400 ExpiredToken or InvalidToken, or 401) renews the session with
 * com.atproto.server.refreshSession (Bearer refreshJwt) and sends the call once more; a
 * refresh token that is refused starts a new session. While one renewal is in flight the
 * other calls that need it wait for it.
 *
 * A createSession refused (401 AuthenticationRequired, or a taken-down / deactivated
 * account) pauses the account: its calls answer SB_EAUTH, a WARN line is logged and the
 * admins get an alert (core/alert.h); every BS_PAUSE_RETRY_MS the poller calls
 * sb__bs_try_resume, which reads the password file again and tries once more ("resumed").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "connectors/bluesky/internal.h"
#include "core/alert.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sys.h"

#define CALL_TIMEOUT_MS 15000
#define MAX_ANSWER      (4 * 1024 * 1024)
#define PASSWORD_MAX    1024

struct bs_call {
    bs_acct_t *a;
    char *method, *nsid, *query, *body;
    bs_xrpc_cb cb;
    void *data;
    unsigned gen;     /* the session_gen it was sent with */
    unsigned renewed; /* renewals done for it */
    bs_call_t *next;
};

static void call_free(bs_call_t *c)
{
    sb_free(c->method);
    sb_free(c->nsid);
    sb_free(c->query);
    sb_free(c->body);
    sb_free(c);
}

/* Runs the call's callback with res, then frees it. */
static void complete(bs_call_t *c, const bs_res_t *res)
{
    bs_t *bs = c->a->bs;
    c->cb(c->a, res, c->data);
    call_free(c);
    bs->pending--;
    sb__bs_maybe_done(bs);
}

static void complete_status(bs_call_t *c, int status, const char *message)
{
    bs_res_t r = {.status = status, .error = "", .message = message ? message : ""};
    complete(c, &r);
}

/* Fills r from an HTTP answer (body parsed into r->body: decref it). */
static void res_of(const sb_httpc_response_t *http, bs_res_t *r)
{
    *r = (bs_res_t){.status = http->status, .code = http->code, .http = http};
    r->error = r->message = "";
    if (http->status != 0) {
        r->message = http->error;
        return;
    }
    r->body = json_loadb(http->body, http->body_len, 0, NULL);
    const char *e = json_string_value(json_object_get(r->body, "error"));
    const char *m = json_string_value(json_object_get(r->body, "message"));
    r->error = e ? e : "";
    r->message = m ? m : "";
}

static bool expired(const bs_res_t *r)
{
    return r->status == 0 &&
           (r->code == 401 || (r->code == 400 && (!strcmp(r->error, "ExpiredToken") ||
                                                  !strcmp(r->error, "InvalidToken"))));
}

static char *xrpc_url(const bs_acct_t *a, const char *nsid, const char *query)
{
    return sb_asprintf("%s/xrpc/%s%s%s", a->service, nsid, query && *query ? "?" : "",
                       query ? query : "");
}

/* ---- Sessions ---- */

static void renew(bs_acct_t *a);
static void send_call(bs_call_t *c);

static void set_str(char **dst, const char *v)
{
    sb_free(*dst);
    *dst = v ? sb_strdup(v) : NULL;
}

static void drop_session(bs_acct_t *a)
{
    set_str(&a->access, NULL);
    set_str(&a->refresh, NULL);
}

/* Takes the tokens of a createSession or refreshSession answer; false if they are missing. */
static bool take_session(bs_acct_t *a, const json_t *b)
{
    const char *acc = json_string_value(json_object_get(b, "accessJwt"));
    const char *ref = json_string_value(json_object_get(b, "refreshJwt"));
    const char *did = json_string_value(json_object_get(b, "did"));
    const char *handle = json_string_value(json_object_get(b, "handle"));
    if (!acc || !ref || !did || strncmp(did, "did:", 4) != 0)
        return false;
    set_str(&a->access, acc);
    set_str(&a->refresh, ref);
    set_str(&a->did, did);
    set_str(&a->our_handle, handle ? handle : a->handle);
    a->session_gen++;
    return true;
}

/* The renewal ended: the waiting calls go out again (ok) or end with fail. */
static void renew_done(bs_acct_t *a, const bs_res_t *fail)
{
    bs_call_t *list = a->waiting;
    a->waiting = NULL;
    a->renewing = false;
    while (list) {
        bs_call_t *c = list;
        list = c->next;
        c->next = NULL;
        if (fail) {
            complete(c, fail);
        } else {
            c->renewed++;
            send_call(c);
        }
    }
}

static void pause_account(bs_acct_t *a, const char *why)
{
    int64_t now = sb_now_ms();
    a->retry_at_ms = now + BS_PAUSE_RETRY_MS;
    drop_session(a);
    if (a->paused)
        return;
    a->paused = true;
    snprintf(a->pause_reason, sizeof(a->pause_reason), "%s", why);
    SB_LOG_WARN("bluesky.paused", "account=%s handle=%s reason=\"%s\" retry_in_s=%d", a->name,
                a->handle, a->pause_reason, BS_PAUSE_RETRY_MS / 1000);
    sb_alert_admins(a->bs->env.store, "bluesky", a->name, "paused", a->pause_reason, now);
}

static void resume_account(bs_acct_t *a)
{
    if (!a->paused)
        return;
    a->paused = false;
    a->pause_reason[0] = '\0';
    SB_LOG_WARN("bluesky.resumed", "account=%s handle=%s did=%s", a->name, a->handle, a->did);
    sb_alert_admins(a->bs->env.store, "bluesky", a->name, "resumed", NULL, sb_now_ms());
    /* the lane an auth outcome paused sends again, unless another account still waits */
    bs_t *bs = a->bs;
    for (size_t i = 0; i < bs->n; i++)
        if (bs->accts[i].paused)
            return;
    if (bs->env.resume_lanes)
        bs->env.resume_lanes(bs->env.lanes_data, "bluesky");
}

static void on_created(const sb_httpc_response_t *http, void *data)
{
    bs_acct_t *a = data;
    bs_res_t r;
    res_of(http, &r);
    if (r.status == 0 && r.code == 200 && take_session(a, r.body)) {
        a->sessions++;
        SB_LOG_INFO("bluesky.session", "account=%s did=%s", a->name, a->did);
        resume_account(a);
        json_decref(r.body);
        renew_done(a, NULL);
        return;
    }
    bool refused = r.status == 0 &&
                   (r.code == 401 || !strcmp(r.error, "AuthenticationRequired") ||
                    !strcmp(r.error, "AccountTakedown") || !strcmp(r.error, "AccountDeactivated"));
    if (refused) {
        char why[200];
        snprintf(why, sizeof(why), "createSession refused: %s%s%.120s",
                 *r.error ? r.error : "HTTP 401", *r.message ? ": " : "", r.message);
        pause_account(a, why);
        bs_res_t f = {.status = SB_EAUTH, .error = "", .message = a->pause_reason};
        renew_done(a, &f);
    } else {
        if (r.status == SB_ECANCELED)
            ; /* stopping: nothing to say */
        else
            SB_LOG_WARN("bluesky.session", "account=%s code=%ld err=\"%s %s\"", a->name, r.code,
                        r.error, r.message);
        if (r.status == 0 && r.code == 200)
            r.message = "createSession answered without a session";
        renew_done(a, &r);
    }
    json_decref(r.body);
}

static int read_password(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -errno;
    size_t n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

static void create_session(bs_acct_t *a)
{
    if (a->bs->stopping) {
        bs_res_t f = {.status = SB_ECANCELED, .error = "", .message = "stopping"};
        renew_done(a, &f);
        return;
    }
    char password[PASSWORD_MAX];
    int rc = read_password(a->password_file, password, sizeof(password));
    if (rc != 0 || !*password) {
        char why[200];
        snprintf(why, sizeof(why), "the app password file %s cannot be read%s%s", a->password_file,
                 rc ? ": " : " (empty)", rc ? strerror(-rc) : "");
        pause_account(a, why);
        bs_res_t f = {.status = SB_EAUTH, .error = "", .message = a->pause_reason};
        renew_done(a, &f);
        return;
    }
    json_t *j = json_pack("{s:s, s:s}", "identifier", a->handle, "password", password);
    char *body = NULL;
    if (sb_json_dumps(j, JSON_COMPACT, &body, NULL) != 0)
        body = sb_strdup("{}"); /* a password that is not UTF-8: refused by the server */
    json_decref(j);
    explicit_bzero(password, sizeof(password));
    char *url = xrpc_url(a, "com.atproto.server.createSession", NULL);
    const char *headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
    sb_httpc_request_t req = {.method = "POST",
                              .url = url,
                              .headers = headers,
                              .body = body,
                              .body_len = strlen(body),
                              .timeout_ms = CALL_TIMEOUT_MS,
                              .max_response = 64 * 1024};
    rc = sb_httpc_send(a->bs->httpc, &req, on_created, a, NULL);
    explicit_bzero(body, strlen(body));
    sb_free(body);
    sb_free(url);
    if (rc != 0) {
        bs_res_t f = {.status = rc, .error = "", .message = sb_strerror(rc)};
        renew_done(a, &f);
    }
}

static void on_refreshed(const sb_httpc_response_t *http, void *data)
{
    bs_acct_t *a = data;
    bs_res_t r;
    res_of(http, &r);
    if (r.status == 0 && r.code == 200 && take_session(a, r.body)) {
        a->refreshes++;
        SB_LOG_INFO("bluesky.refreshed", "account=%s", a->name);
        json_decref(r.body);
        renew_done(a, NULL);
        return;
    }
    if (r.status == 0 && r.code >= 400 && r.code < 500) {
        /* the refresh token expired or was revoked: a new session */
        SB_LOG_INFO("bluesky.refresh_refused", "account=%s code=%ld err=%s", a->name, r.code,
                    r.error);
        drop_session(a);
        create_session(a);
    } else {
        renew_done(a, &r);
    }
    json_decref(r.body);
}

/* Renews the session (refresh, else create); the calls in a->waiting go on after it. */
static void renew(bs_acct_t *a)
{
    if (a->renewing)
        return;
    a->renewing = true;
    if (!a->refresh || a->bs->stopping) {
        create_session(a); /* (which ends the renewal when stopping) */
        return;
    }
    char *url = xrpc_url(a, "com.atproto.server.refreshSession", NULL);
    char *auth = sb_asprintf("Authorization: Bearer %s", a->refresh);
    const char *headers[] = {auth, "Accept: application/json", NULL};
    sb_httpc_request_t req = {.method = "POST",
                              .url = url,
                              .headers = headers,
                              .timeout_ms = CALL_TIMEOUT_MS,
                              .max_response = 64 * 1024};
    int rc = sb_httpc_send(a->bs->httpc, &req, on_refreshed, a, NULL);
    sb_free(auth);
    sb_free(url);
    if (rc != 0) {
        bs_res_t f = {.status = rc, .error = "", .message = sb_strerror(rc)};
        renew_done(a, &f);
    }
}

static void wait_for_session(bs_call_t *c)
{
    bs_acct_t *a = c->a;
    c->next = a->waiting;
    a->waiting = c;
    renew(a);
}

/* ---- Calls ---- */

static void on_answer(const sb_httpc_response_t *http, void *data)
{
    bs_call_t *c = data;
    bs_acct_t *a = c->a;
    bs_res_t r;
    res_of(http, &r);
    if (expired(&r) && c->renewed < 2 && !a->paused) {
        json_decref(r.body);
        if (c->gen != a->session_gen && a->access)
            send_call(c); /* renewed meanwhile by another call */
        else {
            if (c->gen == a->session_gen)
                set_str(&a->access, NULL);
            wait_for_session(c);
        }
        return;
    }
    complete(c, &r);
    json_decref(r.body);
}

static void send_call(bs_call_t *c)
{
    bs_acct_t *a = c->a;
    if (a->bs->stopping) { /* the HTTP client is stopped (and freed): nothing more is sent */
        complete_status(c, SB_ECANCELED, "stopping");
        return;
    }
    if (a->paused) {
        complete_status(c, SB_EAUTH, a->pause_reason);
        return;
    }
    if (!a->access) {
        wait_for_session(c);
        return;
    }
    c->gen = a->session_gen;
    char *url = xrpc_url(a, c->nsid, c->query);
    char *auth = sb_asprintf("Authorization: Bearer %s", a->access);
    const char *headers[] = {auth, "Accept: application/json",
                             c->body ? "Content-Type: application/json" : NULL, NULL};
    sb_httpc_request_t req = {.method = c->method,
                              .url = url,
                              .headers = headers,
                              .body = c->body,
                              .body_len = c->body ? strlen(c->body) : 0,
                              .timeout_ms = CALL_TIMEOUT_MS,
                              .max_response = MAX_ANSWER};
    int rc = sb_httpc_send(a->bs->httpc, &req, on_answer, c, NULL);
    sb_free(auth);
    sb_free(url);
    if (rc != 0)
        complete_status(c, rc, sb_strerror(rc));
}

static void on_timer_closed(uv_handle_t *h)
{
    sb_free(h);
}

static void on_deferred(uv_timer_t *t)
{
    bs_call_t *c = t->data;
    send_call(c);
    uv_close((uv_handle_t *)t, on_timer_closed);
}

void sb__bs_xrpc(bs_acct_t *a, const char *method, const char *nsid, const char *query,
                 const json_t *body, bs_xrpc_cb cb, void *data)
{
    bs_call_t *c = SB_NEW(bs_call_t);
    c->a = a;
    c->method = sb_strdup(method);
    c->nsid = sb_strdup(nsid);
    c->query = query ? sb_strdup(query) : NULL;
    if (body && sb_json_dumps(body, JSON_COMPACT, &c->body, NULL) != 0)
        c->body = sb_strdup("{}");
    a->bs->pending++;
    c->cb = cb;
    c->data = data;
    /* never call back inside this call: the first step runs on the next loop turn */
    uv_timer_t *t = SB_NEW(uv_timer_t);
    uv_timer_init(a->bs->env.loop, t);
    t->data = c;
    uv_timer_start(t, on_deferred, 0, 0);
}

void sb__bs_try_resume(bs_acct_t *a)
{
    if (!a->paused || a->renewing || a->bs->stopping)
        return;
    a->retry_at_ms = sb_now_ms() + BS_PAUSE_RETRY_MS;
    SB_LOG_INFO("bluesky.resume_try", "account=%s", a->name);
    a->renewing = true;
    create_session(a);
}

void sb__bs_session_dispose(bs_acct_t *a)
{
    drop_session(a);
    set_str(&a->did, NULL);
    set_str(&a->our_handle, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * sbctl as a client of the Switchboard REST API: one blocking libcurl easy handle per
 * request (a CLI has nothing else to do meanwhile), JSON through jansson. HTTP statuses
 * map to exit codes scripts can rely on (409 → 4, 404 → 5, 401/403 → 6, no connection
 * → 3); the API's error message goes to stderr. `tail` reads /v1/events as Server-Sent
 * Events and prints one line per message until interrupted.
 */
#include "gateway/cli/client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/term.h"
#include "core/util.h"

typedef struct resp {
    long status;
    sb_buf_t body;
    json_t *json;
} resp_t;

static size_t on_body(char *p, size_t size, size_t n, void *data)
{
    sb_buf_t *b = data;
    return sb_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* Performs one request; returns SBC_OK with r->status set, or SBC_UNREACHABLE. */
static int http(const sbc_opts_t *o, const char *method, const char *path, json_t *body, resp_t *r)
{
    memset(r, 0, sizeof(*r));
    sb_buf_init(&r->body, 64 * 1024 * 1024);
    CURL *h = curl_easy_init();
    if (!h)
        return SBC_FAIL;
    char *url = sb_asprintf("%s%s", o->url, path);
    char *auth = sb_asprintf("Authorization: Bearer %s", o->token);
    char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    hd = curl_slist_append(hd, "Accept: application/json");
    if (payload) {
        hd = curl_slist_append(hd, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    int code = SBC_OK;
    if (rc != CURLE_OK) {
        fprintf(stderr, "sbctl: cannot reach %s: %s\n", o->url, curl_easy_strerror(rc));
        code = SBC_UNREACHABLE;
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        if (r->body.len)
            r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(payload);
    sb_free(auth);
    sb_free(url);
    return code;
}

static void resp_dispose(resp_t *r)
{
    json_decref(r->json);
    sb_buf_dispose(&r->body);
}

/* Maps a non-2xx status to an exit code, printing the API's error message. */
static int http_error(const resp_t *r)
{
    json_t *err = json_object_get(r->json, "error");
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *code = json_string_value(json_object_get(err, "code"));
    fprintf(stderr, "sbctl: HTTP %ld %s: %s\n", r->status, code ? code : "error",
            msg ? msg : "(no message)");
    switch (r->status) {
    case 409:
        return SBC_CONFLICT;
    case 404:
        return SBC_NOT_FOUND;
    case 401:
    case 403:
        return SBC_DENIED;
    default:
        return SBC_FAIL;
    }
}

/* GET/POST returning parsed JSON in r (status 2xx), or an exit code. */
static int call(const sbc_opts_t *o, const char *method, const char *path, json_t *body, resp_t *r)
{
    int code = http(o, method, path, body, r);
    if (code != SBC_OK)
        return code;
    if (r->status < 200 || r->status >= 300)
        return http_error(r);
    if (!r->json) {
        fprintf(stderr, "sbctl: the server answered HTTP %ld without JSON\n", r->status);
        return SBC_FAIL;
    }
    return SBC_OK;
}

int sbc_get_json(const sbc_opts_t *o, const char *path, json_t **out)
{
    resp_t r;
    int code = call(o, "GET", path, NULL, &r);
    *out = code == SBC_OK ? json_incref(r.json) : NULL;
    resp_dispose(&r);
    return code;
}

/* --json output: JSON escapes C0 controls; on a terminal, \u-escape everything non-ASCII
 * too (C1 controls and bidi overrides are UTF-8 characters that jansson leaves as they are). */
static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | (isatty(STDOUT_FILENO) ? JSON_ENSURE_ASCII : 0));
    if (s)
        printf("%s\n", s);
    free(s);
}

static char *esc(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = sb_strdup(e ? e : "");
    curl_free(e);
    return out;
}

static const char *str(json_t *o, const char *key, const char *dflt)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : dflt;
}

/* Server text (a customer's name or message, anything the API returns) made safe to print
 * on a terminal (core/term.h): a new string, free with sb_free. `indent` > 0 keeps line
 * breaks, each followed by that many spaces; 0 shows them as \n. */
static char *safe(const char *s, int indent)
{
    sb_buf_t b;
    sb_buf_init(&b, (size_t)64 << 20);
    sb_term_escape(&b, s, strlen(s), indent > 0 ? SB_TERM_MULTILINE : 0, indent);
    return sb_buf_steal(&b, NULL);
}

/* str() of a field made safe() for one line. */
static char *sstr(json_t *o, const char *key, const char *dflt)
{
    return safe(str(o, key, dflt), 0);
}

static void fmt_age(long long ms, char *out, size_t cap)
{
    long long s = ms / 1000;
    if (s < 60)
        snprintf(out, cap, "%llds", s);
    else if (s < 3600)
        snprintf(out, cap, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(out, cap, "%lldh%02lldm", s / 3600, s / 60 % 60);
    else
        snprintf(out, cap, "%lldd%02lldh", s / 86400, s / 3600 % 24);
}

static int cmd_queue(const sbc_opts_t *o)
{
    resp_t r;
    int code = call(o, "GET", "/v1/conversations?status=open&assignee=any&limit=100", NULL, &r);
    if (code == SBC_OK && o->json) {
        print_json(r.json);
    } else if (code == SBC_OK) {
        json_t *items = json_object_get(r.json, "items"), *c;
        size_t i;
        long long now = (long long)sb_now_ms();
        printf("%-30s %-8s %-20s %-8s %-30s %s\n", "ID", "CHANNEL", "CONTACT", "STATUS", "ASSIGNEE",
               "WAITING");
        json_array_foreach(items, i, c)
        {
            char wait[32] = "-";
            json_t *since = json_object_get(c, "awaiting_since");
            if (json_is_integer(since))
                fmt_age(now - json_integer_value(since), wait, sizeof(wait));
            char *id = sstr(c, "id", "?"), *ch = sstr(c, "channel", "?");
            char *name = sstr(json_object_get(c, "contact"), "name", "-");
            char *st = sstr(c, "status", "?"), *as = sstr(c, "assignee", "-");
            printf("%-30s %-8s %-20s %-8s %-30s %s\n", id, ch, name, st, as, wait);
            sb_free(id), sb_free(ch), sb_free(name), sb_free(st), sb_free(as);
        }
        if (json_array_size(items) == 0)
            fprintf(stderr, "sbctl: the queue is empty\n");
    }
    resp_dispose(&r);
    return code;
}

/* One transcript line: time, direction marker, author, text (notes and events marked). */
static void print_message(FILE *f, json_t *m)
{
    char when[16] = "--:--";
    json_t *ts = json_object_get(m, "ts");
    if (json_is_integer(ts)) {
        time_t t = (time_t)(json_integer_value(ts) / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(when, sizeof(when), "%H:%M", &tm);
    }
    const char *kind = str(m, "kind", "message"), *dir = str(m, "dir", "");
    const char *name = str(json_object_get(m, "author"), "name", NULL);
    char *who = safe(name ? name : str(json_object_get(m, "author"), "type", "?"), 0);
    /* continuation lines of a text are indented past the time column */
    char *text = safe(str(m, "text", ""), 7);
    if (strcmp(kind, "note") == 0) {
        fprintf(f, "%s  [note] %s: %s\n", when, who, text);
    } else if (strcmp(kind, "event") == 0) {
        char *type = sstr(m, "type", "event");
        fprintf(f, "%s  * %s %s\n", when, who, type);
        sb_free(type);
    } else {
        fprintf(f, "%s  %s %s: %s\n", when, strcmp(dir, "in") == 0 ? "<" : ">", who, text);
    }
    sb_free(who);
    sb_free(text);
}

/* Fetches every message of a conversation (following `next`) into one array. */
static int fetch_messages(const sbc_opts_t *o, const char *eid, json_t **out)
{
    json_t *all = json_array();
    char *after = NULL;
    int code = SBC_OK;
    for (int page = 0; page < 1000; page++) {
        char *p = after
                      ? sb_asprintf("/v1/conversations/%s/messages?limit=200&after=%s", eid, after)
                      : sb_asprintf("/v1/conversations/%s/messages?limit=200", eid);
        resp_t r;
        code = call(o, "GET", p, NULL, &r);
        sb_free(p);
        if (code == SBC_OK) {
            json_array_extend(all, json_object_get(r.json, "items"));
            sb_free(after);
            const char *next = str(r.json, "next", NULL);
            after = next && json_array_size(json_object_get(r.json, "items")) ? esc(next) : NULL;
        }
        resp_dispose(&r);
        if (code != SBC_OK || !after)
            break;
    }
    sb_free(after);
    if (code != SBC_OK) {
        json_decref(all);
        return code;
    }
    *out = all;
    return SBC_OK;
}

static int cmd_show(const sbc_opts_t *o, const char *id)
{
    char *eid = esc(id);
    char *p = sb_asprintf("/v1/conversations/%s", eid);
    resp_t r;
    json_t *msgs = NULL;
    int code = call(o, "GET", p, NULL, &r);
    if (code == SBC_OK)
        code = fetch_messages(o, eid, &msgs);
    if (code == SBC_OK && o->json) {
        json_t *j = json_pack("{s:O, s:O}", "conversation", r.json, "messages", msgs);
        print_json(j);
        json_decref(j);
    } else if (code == SBC_OK) {
        json_t *c = r.json, *m;
        size_t i;
        char *cid = sstr(c, "id", "?"), *name = sstr(json_object_get(c, "contact"), "name", "?");
        char *ch = sstr(c, "channel", "?"), *st = sstr(c, "status", "?");
        char *as = sstr(c, "assignee", "-");
        printf("%s  %s  %s  %s  assignee %s\n", cid, name, ch, st, as);
        sb_free(cid), sb_free(name), sb_free(ch), sb_free(st), sb_free(as);
        json_array_foreach(msgs, i, m) print_message(stdout, m);
    }
    json_decref(msgs);
    resp_dispose(&r);
    sb_free(p);
    sb_free(eid);
    return code;
}

/* Reads all of stdin into a new string (a reply text). */
static char *read_stdin(void)
{
    sb_buf_t b;
    sb_buf_init(&b, 1024 * 1024);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (sb_buf_append(&b, chunk, n) != 0)
            break;
    sb_buf_append(&b, "", 1);
    char *s = sb_buf_steal(&b, NULL);
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        s[--len] = '\0';
    return s;
}

int sbc_call_json(const sbc_opts_t *o, const char *method, const char *path, json_t *body,
                  json_t **out)
{
    resp_t r;
    int code = http(o, method, path, body, &r);
    if (code == SBC_OK && (r.status < 200 || r.status >= 300))
        code = http_error(&r);
    else if (code == SBC_OK && !r.json && r.status != 204) {
        fprintf(stderr, "sbctl: the server answered HTTP %ld without JSON\n", r.status);
        code = SBC_FAIL;
    } else if (code == SBC_OK && !r.json)
        r.json = json_object(); /* 204: no content */
    *out = code == SBC_OK ? json_incref(r.json) : NULL;
    resp_dispose(&r);
    return code;
}

char *sbc_read_stdin(void)
{
    return read_stdin();
}

void sbc_print_json(json_t *j)
{
    print_json(j);
}

char *sbc_safe(const char *s)
{
    return safe(s ? s : "", 0);
}

/* Reports a 409 on a reply: the newer messages the sender has not seen. */
static void report_conflict(const sbc_opts_t *o, resp_t *r)
{
    json_t *msgs = json_object_get(json_object_get(r->json, "error"), "messages"), *m;
    size_t i;
    if (o->json) {
        print_json(r->json);
        return;
    }
    fprintf(stderr, "sbctl: not sent; newer messages (reply again after reading them, or use "
                    "--force):\n");
    json_array_foreach(msgs, i, m) print_message(stderr, m);
}

static int cmd_reply(const sbc_opts_t *o, const char *id, const char *text)
{
    char *eid = esc(id), *owned = NULL, *based = o->based_on ? sb_strdup(o->based_on) : NULL;
    int code = SBC_OK;
    if (!text || strcmp(text, "-") == 0)
        text = owned = read_stdin();
    if (!*text) {
        fprintf(stderr, "sbctl: empty reply, nothing sent\n");
        code = SBC_USAGE;
    }
    if (code == SBC_OK && !o->force && !based) {
        char *p = sb_asprintf("/v1/conversations/%s", eid);
        resp_t r;
        code = call(o, "GET", p, NULL, &r);
        if (code == SBC_OK)
            based = sb_strdup(str(r.json, "last_seq", "0"));
        resp_dispose(&r);
        sb_free(p);
    }
    if (code == SBC_OK) {
        char cid[49];
        sb_random_hex(cid, 16);
        json_t *body = json_pack("{s:s, s:s}", "text", text, "client_id", cid);
        if (o->force)
            json_object_set_new(body, "force", json_true());
        else
            json_object_set_new(body, "based_on", json_string(based));
        char *p = sb_asprintf("/v1/conversations/%s/messages", eid);
        resp_t r;
        code = call(o, "POST", p, body, &r);
        if (code == SBC_CONFLICT && r.json)
            report_conflict(o, &r);
        else if (code == SBC_OK && o->json)
            print_json(r.json);
        else if (code == SBC_OK)
            printf("%s\n", str(r.json, "id", "?"));
        resp_dispose(&r);
        sb_free(p);
        json_decref(body);
    }
    sb_free(based);
    sb_free(owned);
    sb_free(eid);
    return code;
}

/* note, claim, release, assign, resolve: one POST, prints the result. */
static int cmd_post(const sbc_opts_t *o, const char *verb, const char *id, const char *text)
{
    char *eid = esc(id);
    bool note = strcmp(verb, "note") == 0;
    char *p = sb_asprintf("/v1/conversations/%s/%s", eid, note ? "notes" : verb);
    json_t *body = json_object();
    if (note)
        json_object_set_new(body, "text", json_string(text));
    if (o->steal && strcmp(verb, "claim") == 0)
        json_object_set_new(body, "steal", json_true());
    if (strcmp(verb, "assign") == 0) /* text: the staff id, or NULL with --none */
        json_object_set_new(body, "to", text ? json_string(text) : json_null());
    resp_t r;
    int code = call(o, "POST", p, body, &r);
    if (code == SBC_OK && o->json) {
        print_json(r.json);
    } else if (code == SBC_OK && note) {
        printf("%s\n", str(r.json, "id", "?"));
    } else if (code == SBC_OK) {
        json_t *c = json_object_get(r.json, "conversation");
        bool changed = !json_is_false(json_object_get(r.json, "changed"));
        printf("%s %s%s: status %s, assignee %s\n", id, verb, changed ? "" : " (no change)",
               str(c, "status", "?"), str(c, "assignee", "-"));
    }
    resp_dispose(&r);
    json_decref(body);
    sb_free(p);
    sb_free(eid);
    return code;
}

static int cmd_stats(const sbc_opts_t *o)
{
    resp_t r;
    int code = call(o, "GET", "/v1/stats", NULL, &r);
    if (code == SBC_OK && o->json)
        print_json(r.json);
    else if (code == SBC_OK)
        sbc_print_stats(r.json);
    resp_dispose(&r);
    return code;
}

/* A counter of a lane, 0 when absent. */
static long long num(json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* connectors: one line per connector, one per lane (paused ones with their reason). */
static int cmd_connectors(const sbc_opts_t *o)
{
    resp_t r;
    int code = call(o, "GET", "/v1/connectors", NULL, &r);
    if (code == SBC_OK && o->json)
        print_json(r.json);
    size_t i, k;
    json_t *c, *l;
    json_array_foreach(code == SBC_OK && !o->json ? json_object_get(r.json, "items") : NULL, i, c)
    {
        char *name = sstr(c, "name", "?"), *ch = sstr(c, "channel", "?");
        printf("%-12s %-10s %s%s\n", name, ch,
               json_is_true(json_object_get(c, "running")) ? "running" : "not running",
               json_is_true(json_object_get(c, "delivers")) ? "" : " (no outbox)");
        json_array_foreach(json_object_get(c, "lanes"), k, l)
        {
            char *lane = sstr(l, "name", "?"), *why = sstr(l, "reason", "");
            json_t *dl = json_object_get(json_object_get(l, "dead_letters"), "length");
            char dls[24] = "?";
            if (json_is_integer(dl))
                snprintf(dls, sizeof(dls), "%lld", (long long)json_integer_value(dl));
            printf("  lane %-12s %-7s inflight=%lld ok=%lld retry=%lld dead=%lld "
                   "dead_letters=%s%s%s\n",
                   lane, json_is_true(json_object_get(l, "paused")) ? "paused" : "running",
                   num(l, "inflight"), num(l, "ok"), num(l, "retry") + num(l, "rate_limited"),
                   num(l, "dead"), dls, *why ? " reason=" : "", why);
            sb_free(lane);
            sb_free(why);
        }
        sb_free(name);
        sb_free(ch);
    }
    resp_dispose(&r);
    return code;
}

/* connectors resume NAME: the lanes of NAME an auth outcome paused send again. */
static int cmd_resume(const sbc_opts_t *o, const char *name)
{
    char *esc = curl_easy_escape(NULL, name, 0);
    if (!esc)
        return SBC_USAGE;
    char path[512];
    snprintf(path, sizeof(path), "/v1/connectors/%.400s/resume", esc);
    curl_free(esc);
    resp_t r;
    int code = call(o, "POST", path, NULL, &r);
    if (code == SBC_OK && o->json)
        print_json(r.json);
    else if (code == SBC_OK)
        printf("%s: %lld paused lane(s) resumed\n", name, num(r.json, "resumed"));
    resp_dispose(&r);
    return code;
}

/* ---- tail: Server-Sent Events ---- */

typedef struct sse {
    const sbc_opts_t *o;
    sb_buf_t line;
    sb_buf_t data;
    long status;
    CURL *h;
    bool following; /* the server's greeting came: said so on stderr */
} sse_t;

static void sse_event(sse_t *s)
{
    if (!s->data.len)
        return;
    sb_buf_append(&s->data, "", 1);
    json_t *ev = json_loads(s->data.data, 0, NULL);
    sb_buf_reset(&s->data);
    if (!ev)
        return;
    json_t *m = json_object_get(ev, "message");
    if (s->o->json) {
        print_json(ev);
    } else if (m) {
        const char *name = str(json_object_get(m, "author"), "name", NULL);
        char *who = safe(name ? name : str(json_object_get(m, "author"), "type", "?"), 0);
        char *conv = sstr(ev, "conv", "?");
        const char *kind = str(m, "kind", "message");
        if (strcmp(kind, "event") == 0) {
            char *type = sstr(m, "type", "event");
            printf("%s * %s: %s\n", conv, who, type);
            sb_free(type);
        } else {
            char *dir = safe(strcmp(kind, "note") == 0 ? "note" : str(m, "dir", "?"), 0);
            char *text = sstr(m, "text", "");
            printf("%s %s %s: %s\n", conv, dir, who, text);
            sb_free(dir), sb_free(text);
        }
        sb_free(who), sb_free(conv);
    }
    fflush(stdout);
    json_decref(ev);
}

static void sse_line(sse_t *s, const char *l)
{
    if (!*l)
        sse_event(s);
    else if (strncmp(l, "data:", 5) == 0) {
        const char *v = l[5] == ' ' ? l + 6 : l + 5;
        if (s->data.len)
            sb_buf_append(&s->data, "\n", 1);
        sb_buf_puts(&s->data, v);
    } else if (l[0] == ':' && !s->following) {
        /* the server's first comment: the feed is live from here on */
        s->following = true;
        fprintf(stderr, "sbctl: following live events (Ctrl-C stops)\n");
    }
}

static size_t on_sse(char *p, size_t size, size_t n, void *data)
{
    sse_t *s = data;
    size_t len = size * n;
    if (!s->status)
        curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 200) /* keep the error body for the message */
        return sb_buf_append(&s->data, p, len) == 0 ? len : 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\n') {
            sb_buf_append(&s->line, "", 1);
            size_t l = strlen(s->line.data);
            if (l && s->line.data[l - 1] == '\r')
                s->line.data[l - 1] = '\0';
            sse_line(s, s->line.data);
            sb_buf_reset(&s->line);
        } else if (sb_buf_append(&s->line, p + i, 1) != 0) {
            return 0;
        }
    }
    return len;
}

static int cmd_tail(const sbc_opts_t *o)
{
    sse_t s = {.o = o};
    sb_buf_init(&s.line, 1024 * 1024);
    sb_buf_init(&s.data, 16 * 1024 * 1024);
    char *after = esc(o->after ? o->after : "$");
    char *url = o->after ? sb_asprintf("%s/v1/events?after=%s", o->url, after)
                         : sb_asprintf("%s/v1/events", o->url);
    char *auth = sb_asprintf("Authorization: Bearer %s", o->token);
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    hd = curl_slist_append(hd, "Accept: text/event-stream");
    s.h = curl_easy_init();
    curl_easy_setopt(s.h, CURLOPT_URL, url);
    curl_easy_setopt(s.h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(s.h, CURLOPT_WRITEFUNCTION, on_sse);
    curl_easy_setopt(s.h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(s.h, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(s.h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(s.h);
    int code = SBC_OK;
    curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &s.status);
    if (s.status && s.status != 200) {
        resp_t r = {.status = s.status};
        r.json = s.data.len ? json_loadb(s.data.data, s.data.len, 0, NULL) : NULL;
        code = http_error(&r);
        json_decref(r.json);
    } else if (rc != CURLE_OK) {
        fprintf(stderr, "sbctl: cannot reach %s: %s\n", o->url, curl_easy_strerror(rc));
        code = s.status ? SBC_FAIL : SBC_UNREACHABLE;
    }
    curl_easy_cleanup(s.h);
    curl_slist_free_all(hd);
    sb_free(auth);
    sb_free(url);
    sb_free(after);
    sb_buf_dispose(&s.line);
    sb_buf_dispose(&s.data);
    return code;
}

/* ---- dispatch ---- */

static const char *const commands[] = {"queue",      "show",    "reply",   "note", "claim",
                                       "assign",     "release", "resolve", "tail", "stats",
                                       "connectors", "report",  "canned"};

bool sbc_is_command(const char *cmd)
{
    for (size_t i = 0; cmd && i < SB_ARRAY_LEN(commands); i++)
        if (strcmp(cmd, commands[i]) == 0)
            return true;
    return false;
}

int sbc_run(const sbc_opts_t *o, int n, char **w)
{
    const char *cmd = w[0], *id = n > 1 ? w[1] : NULL, *arg = n > 2 ? w[2] : NULL;
    if (strcmp(cmd, "canned") == 0) {
        if (!o->token || !*o->token) {
            fprintf(stderr, "sbctl: no token: set SWITCHBOARD_TOKEN or pass --token\n");
            return SBC_USAGE;
        }
        curl_global_init(CURL_GLOBAL_DEFAULT);
        int code = sbc_canned(o, n - 1, w + 1);
        curl_global_cleanup();
        return code;
    }
    bool needs_id = strcmp(cmd, "queue") && strcmp(cmd, "tail") && strcmp(cmd, "stats") &&
                    strcmp(cmd, "connectors") && strcmp(cmd, "report");
    bool resume = strcmp(cmd, "connectors") == 0 && id; /* connectors resume NAME */
    bool assign = strcmp(cmd, "assign") == 0;           /* assign ID ST_ID, or assign ID --none */
    int max = strcmp(cmd, "reply") == 0 || strcmp(cmd, "note") == 0 || resume || assign ? 3
              : needs_id                                                                ? 2
                                                                                        : 1;
    if ((needs_id && !id) || n > max || (strcmp(cmd, "note") == 0 && (!arg || !*arg)) ||
        (resume && (strcmp(id, "resume") != 0 || !arg || !*arg)) ||
        (assign && (o->none ? arg != NULL : !arg || !*arg))) {
        fprintf(stderr, "sbctl: %s: wrong arguments (see sbctl --help)\n", cmd);
        return SBC_USAGE;
    }
    if (!o->token || !*o->token) {
        fprintf(stderr, "sbctl: no token: set SWITCHBOARD_TOKEN or pass --token\n");
        return SBC_USAGE;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int code;
    if (strcmp(cmd, "queue") == 0)
        code = cmd_queue(o);
    else if (strcmp(cmd, "show") == 0)
        code = cmd_show(o, id);
    else if (strcmp(cmd, "reply") == 0)
        code = cmd_reply(o, id, arg);
    else if (strcmp(cmd, "tail") == 0)
        code = cmd_tail(o);
    else if (strcmp(cmd, "stats") == 0)
        code = cmd_stats(o);
    else if (resume)
        code = cmd_resume(o, arg);
    else if (strcmp(cmd, "connectors") == 0)
        code = cmd_connectors(o);
    else if (strcmp(cmd, "report") == 0)
        code = sbc_report(o);
    else
        code = cmd_post(o, cmd, id, arg);
    curl_global_cleanup();
    return code;
}

/* SPDX-License-Identifier: MIT */
/*
 * Requests to a Mastodon server: the Bearer token on every one, a 401 pausing the
 * account wherever it comes from, answers to a connection that has since been replaced
 * marked stale. Also the small readers the other files share: the Link header of a
 * paginated answer (RFC 8288: `<url>; rel="next", <url>; rel="prev"`), the ISO 8601 time
 * of X-RateLimit-Reset, and the order of Mastodon's decimal ids.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "connectors/mastodon/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define CALL_TIMEOUT_MS 30000
#define MAX_HEADERS     8

typedef struct md_call {
    md_acct_t *a;
    unsigned gen;
    bool conn;
    md_call_cb cb;
    void *arg;
} md_call_t;

void sb__md_reason(const sb_httpc_response_t *res, char *out, size_t cap)
{
    if (res->status != 0) {
        snprintf(out, cap, "%s", res->error && *res->error ? res->error : sb_strerror(res->status));
        return;
    }
    json_t *j = json_loadb(res->body, res->body_len, 0, NULL);
    const char *why = json_string_value(json_object_get(j, "error"));
    snprintf(out, cap, "HTTP %ld: %.200s", res->code, why ? why : res->body);
    json_decref(j);
}

static void on_answer(const sb_httpc_response_t *res, void *data)
{
    md_call_t *c = data;
    md_acct_t *a = c->a;
    a->inflight--;
    bool stale = a->md->stopping || a->state == MD_STOPPED || (c->conn && c->gen != a->gen);
    if (!stale && res->status == 0 && res->code == 401) {
        char why[256];
        sb__md_reason(res, why, sizeof(why));
        sb__md_pause(a, why);
        stale = c->conn; /* the connection is gone with the pause */
    }
    c->cb(a, res, stale, c->arg);
    md_t *md = a->md;
    sb_free(c);
    sb__md_maybe_done(md);
}

int sb__md_call(md_acct_t *a, bool conn, const char *method, const char *url,
                const char *const *extra, const char *body, md_call_cb cb, void *arg)
{
    const char *headers[MAX_HEADERS + 4];
    size_t n = 0;
    headers[n++] = a->auth;
    headers[n++] = "Accept: application/json";
    if (body)
        headers[n++] = "Content-Type: application/json";
    for (size_t i = 0; extra && extra[i] && i < MAX_HEADERS; i++)
        headers[n++] = extra[i];
    headers[n] = NULL;
    sb_httpc_request_t req = {.method = method,
                              .url = url,
                              .headers = headers,
                              .body = body,
                              .body_len = body ? strlen(body) : 0,
                              .timeout_ms = CALL_TIMEOUT_MS,
                              .max_response = 4 * 1024 * 1024};
    md_call_t *c = SB_NEW(md_call_t);
    *c = (md_call_t){.a = a, .gen = a->gen, .conn = conn, .cb = cb, .arg = arg};
    int rc = sb_httpc_send(a->md->httpc, &req, on_answer, c, NULL);
    if (rc) {
        sb_free(c);
        return rc;
    }
    a->inflight++;
    return 0;
}

char *sb__md_link_rel(const char *link, const char *rel)
{
    /* <url>; rel="next", <url>; rel="prev" — params in any order, rel maybe unquoted */
    for (const char *p = link; p && (p = strchr(p, '<'));) {
        const char *e = strchr(p, '>');
        if (!e)
            return NULL;
        const char *stop = strchr(e, ',');
        size_t plen = stop ? (size_t)(stop - e) : strlen(e);
        char *params = sb_strndup(e + 1, plen ? plen - 1 : 0);
        bool hit = false;
        for (char *q = params; (q = strstr(q, "rel"));) {
            char *v = q + 3;
            while (*v == ' ')
                v++;
            if (*v != '=') {
                q = v;
                continue;
            }
            v++;
            while (*v == ' ' || *v == '"')
                v++;
            /* rel may list several space-separated types */
            for (char *w = v; *w && *w != '"' && *w != ';';) {
                size_t wl = strcspn(w, " \";");
                if (wl == strlen(rel) && strncasecmp(w, rel, wl) == 0)
                    hit = true;
                w += wl;
                while (*w == ' ')
                    w++;
            }
            break;
        }
        sb_free(params);
        if (hit)
            return sb_strndup(p + 1, (size_t)(e - p - 1));
        p = stop;
    }
    return NULL;
}

static bool digits(const char *s, int n, int *out)
{
    *out = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        *out = *out * 10 + (s[i] - '0');
    }
    return true;
}

int64_t sb__md_iso_ms(const char *s)
{
    int y, mo, d, h, mi, sec, ms = 0;
    if (!s || strlen(s) < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        int scale = 100;
        for (p++; isdigit((unsigned char)*p); p++, scale /= 10)
            ms += (*p - '0') * scale;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om) || p[6])
            return -1;
        off = (*p == '+' ? 1 : -1) * ((int64_t)oh * 3600 + om * 60);
    } else if (!(*p == 'Z' && !p[1]) && *p) {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    time_t t = timegm(&tm);
    return ((int64_t)t - off) * 1000 + ms;
}

int sb__md_id_cmp(const char *x, const char *y)
{
    size_t xl = x ? strlen(x) : 0, yl = y ? strlen(y) : 0;
    if (xl != yl)
        return xl < yl ? -1 : 1;
    return xl ? strcmp(x, y) : 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server's route table (gateway/http.h): sb_http_route() compiles a pattern
 * (exact path, `{name}` placeholders, or a `*` prefix) into the server's table, and each
 * request's path is matched against it once its head is read (http_read.c): the most
 * specific route for the method wins, and a path known under other methods makes a 405
 * with its Allow list.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "gateway/http.h"
#include "gateway/http_internal.h"

void sb__http_route_dispose(sb__http_route_t *r)
{
    for (size_t i = 0; i < r->nsegs; i++)
        sb_free(r->segs[i]);
    sb_free(r->segs);
    sb_free(r->method);
    sb_free(r->pattern);
}

/* Splits a "{param}" pattern into segments. 0 or SB_EINVAL. */
static int route_compile_params(sb__http_route_t *r)
{
    const char *p = r->pattern;
    while (*p == '/') {
        p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *open = memchr(p, '{', n), *close = memchr(p, '}', n);
        if (open || close) {
            if (open != p || close != p + n - 1 || n < 3 || memchr(p + 1, '{', n - 1) ||
                memchr(p, '}', n - 1))
                return SB_EINVAL;
        } else {
            r->literals++;
        }
        r->segs = sb_realloc(r->segs, (r->nsegs + 1) * sizeof(*r->segs));
        r->segs[r->nsegs++] = sb_strndup(p, n);
        p += n;
    }
    return *p ? SB_EINVAL : 0;
}

bool sb__http_route_match(const sb__http_route_t *r, const char *path, sb__http_kv_list_t *params)
{
    if (r->kind == SB__HTTP_ROUTE_EXACT)
        return strcmp(r->pattern, path) == 0;
    if (r->kind == SB__HTTP_ROUTE_PREFIX) {
        if (strncmp(r->pattern, path, r->prefix_len) != 0)
            return false;
        if (params)
            sb__http_kv_add(params, "*", 1, path + r->prefix_len, strlen(path + r->prefix_len));
        return true;
    }
    const char *p = path;
    for (size_t i = 0; i < r->nsegs; i++) {
        if (*p != '/')
            return false;
        p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        const char *seg = r->segs[i];
        if (seg[0] == '{') {
            if (n == 0)
                return false;
            if (params)
                sb__http_kv_add(params, seg + 1, strlen(seg) - 2, p, n);
        } else if (strlen(seg) != n || memcmp(seg, p, n) != 0) {
            return false;
        }
        p += n;
    }
    return *p == '\0';
}

/* Lower is more specific: exact, then placeholders (more literals first), then prefixes. */
static long route_rank(const sb__http_route_t *r)
{
    if (r->kind == SB__HTTP_ROUTE_EXACT)
        return 0;
    if (r->kind == SB__HTTP_ROUTE_PARAM)
        return 1000000 - (long)r->literals;
    return 2000000 - (long)r->prefix_len;
}

static bool method_ok(const sb__http_route_t *r, const char *method)
{
    return strcmp(r->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

const sb__http_route_t *sb__http_route_find(const sb_http_server_t *s, const char *method,
                                            const char *path, bool *known, char *allow,
                                            size_t allow_len)
{
    const sb__http_route_t *best = NULL;
    *known = false;
    allow[0] = '\0';
    for (size_t i = 0; i < s->nroutes; i++) {
        const sb__http_route_t *r = s->routes[i];
        if (!sb__http_route_match(r, path, NULL))
            continue;
        *known = true;
        size_t used = strlen(allow);
        if (!strstr(allow, r->method))
            snprintf(allow + used, allow_len - used, "%s%s", used ? ", " : "", r->method);
        if (method_ok(r, method) && (!best || route_rank(r) < route_rank(best)))
            best = r;
    }
    return best;
}

int sb_http_route(sb_http_server_t *s, const char *method, const char *pattern,
                  sb_http_handler_cb cb, void *data)
{
    if (!s || !method || !*method || strlen(method) >= 8 || !pattern || pattern[0] != '/' || !cb)
        return SB_EINVAL;
    for (const char *m = method; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return SB_EINVAL;
    for (size_t i = 0; i < s->nroutes; i++)
        if (!strcmp(s->routes[i]->method, method) && !strcmp(s->routes[i]->pattern, pattern))
            return SB_EINVAL;
    sb__http_route_t *r = SB_NEW(sb__http_route_t);
    r->method = sb_strdup(method);
    r->pattern = sb_strdup(pattern);
    r->cb = cb;
    r->data = data;
    const char *star = strchr(pattern, '*');
    int rc = 0;
    if (star) {
        r->kind = SB__HTTP_ROUTE_PREFIX;
        r->prefix_len = strlen(pattern) - 1;
        if (star[1] || strpbrk(pattern, "{}"))
            rc = SB_EINVAL;
    } else if (strpbrk(pattern, "{}")) {
        r->kind = SB__HTTP_ROUTE_PARAM;
        rc = route_compile_params(r);
    }
    if (rc != 0) {
        sb__http_route_dispose(r);
        sb_free(r);
        return rc;
    }
    s->routes = sb_realloc(s->routes, (s->nroutes + 1) * sizeof(*s->routes));
    s->routes[s->nroutes++] = r;
    return 0;
}

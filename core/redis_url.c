/* SPDX-License-Identifier: MIT */
/*
 * The Redis client's address (redis_internal.h): redis://host[:port][/db] (host may be
 * [v6]) and unix:/path[?db=N] (also unix:///path), with bounded port, db and path.
 */
#include <sys/un.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/redis_internal.h"

#define MAX_DB 1000000

/* ---- URL ---- */

/* Parses decimal digits at *p (at least one) no larger than max; advances *p. */
static bool parse_num(const char **p, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;
    const char *s = *p;
    if (*s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return false;
    }
    *p = s;
    *out = v;
    return true;
}

/* If *p starts with lead, parses the number after it (advancing *p); false if bad. */
static bool parse_opt_num(const char **p, const char *lead, unsigned long max, unsigned long *out)
{
    size_t n = strlen(lead);
    if (strncmp(*p, lead, n) != 0)
        return true;
    *p += n;
    return parse_num(p, max, out);
}

/* host[:port][/db], host may be [v6]; returns the rest of the string or NULL. */
static const char *parse_tcp(sb_redis_t *r, const char *p, unsigned long *db)
{
    unsigned long port = 6379;
    size_t n = strcspn(p, ":/");
    if (*p == '[') {
        const char *e = strchr(p, ']');
        if (!e || e == p + 1)
            return NULL;
        r->host = sb_strndup(p + 1, (size_t)(e - p - 1));
        p = e + 1;
    } else if (n > 0) {
        r->host = sb_strndup(p, n);
        p += n;
    } else {
        return NULL;
    }
    if (!parse_opt_num(&p, ":", 65535, &port) || port == 0)
        return NULL;
    r->port = (int)port;
    if (strcmp(p, "/") == 0)
        return p + 1;
    return parse_opt_num(&p, "/", MAX_DB, db) ? p : NULL;
}

/* /path[?db=N]; returns the rest of the string or NULL. */
static const char *parse_unix(sb_redis_t *r, const char *p, unsigned long *db)
{
    struct sockaddr_un sa;
    size_t n = strcspn(p, "?");
    if (*p != '/' || n >= sizeof(sa.sun_path))
        return NULL;
    r->path = sb_strndup(p, n);
    p += n;
    return parse_opt_num(&p, "?db=", MAX_DB, db) ? p : NULL;
}

/* redis://host[:port][/db] or unix:/path[?db=N] (also unix:///path). */
int sb__redis_parse_url(sb_redis_t *r, const char *url)
{
    unsigned long db = 0;
    const char *rest = NULL;
    if (strncmp(url, "redis://", 8) == 0)
        rest = parse_tcp(r, url + 8, &db);
    else if (strncmp(url, "unix://", 7) == 0)
        rest = parse_unix(r, url + 7, &db);
    else if (strncmp(url, "unix:", 5) == 0)
        rest = parse_unix(r, url + 5, &db);
    if (!rest || *rest)
        return SB_EINVAL;
    r->db = (int)db;
    return 0;
}

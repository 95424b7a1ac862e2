/* SPDX-License-Identifier: MIT */
/*
 * The header-phase guard of the HTTP server (slowloris defence). lws 4.1 parses request
 * headers into a fixed pool of header tables (max_http_header_pool); a connection holds
 * one from its first byte until its headers are complete, and a connection that finds
 * the pool empty waits. Clients that open many connections and never finish their
 * headers would so starve everyone else. Two limits keep one address from doing that:
 *
 * - a per-address cap on connections in the header phase (from accept until the first
 *   request's headers are complete), counted under sb_ip_key() so an IPv6 host counts
 *   by its /64; a connection over the cap gets a plain 429 JSON answer (cleartext only:
 *   a TLS peer has no session yet) and is closed at once;
 * - a header deadline (the vhost's timeout_secs_ah_idle, set by http.c): lws closes a
 *   connection whose headers are not complete that long after it took a header table.
 *
 * Each counted connection carries a small record (lws opaque user data) naming its
 * address key; the record goes when the headers are complete, so idle keep-alive
 * connections and WebSockets cost nothing here.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <libwebsockets.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/map.h"
#include "core/util.h"
#include "gateway/http_internal.h"

struct sb__http_guard {
    sb_map_t counts; /* sb_ip_key -> connections in the header phase (as uintptr_t) */
    unsigned per_ip;
    uint64_t refused;
};

typedef struct guard_conn {
    char key[SB_IP_KEY_MAX];
} guard_conn_t;

sb__http_guard_t *sb__http_guard_new(unsigned per_ip)
{
    sb__http_guard_t *g = SB_NEW(sb__http_guard_t);
    sb_map_init(&g->counts);
    g->per_ip = per_ip;
    return g;
}

void sb__http_guard_free(sb__http_guard_t *g)
{
    if (!g)
        return;
    sb_map_dispose(&g->counts);
    sb_free(g);
}

static uintptr_t count_of(const sb__http_guard_t *g, const char *key)
{
    return (uintptr_t)sb_map_get(&g->counts, key);
}

/* Writes a whole 429 straight to a cleartext socket that lws has not read from yet. */
static void refuse(struct lws *wsi)
{
    static const char body[] = "{\"error\":{\"code\":\"rate_limited\",\"message\":\"too many "
                               "connections from your address are still sending headers\"}}";
    char resp[512];
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nRetry-After: 5\r\nConnection: close\r\n\r\n%s",
                     sizeof(body) - 1, body);
    if (lws_is_ssl(wsi) || n <= 0 || (size_t)n >= sizeof(resp))
        return;
    ssize_t w = send(lws_get_socket_fd(wsi), resp, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w; /* best effort: the connection closes either way */
}

int sb__http_guard_accept(sb__http_guard_t *g, struct lws *wsi)
{
    char ip[64], key[SB_IP_KEY_MAX];
    const char *p = lws_get_peer_simple(wsi, ip, sizeof(ip));
    sb_ip_key(p ? p : "", key);
    uintptr_t n = count_of(g, key);
    if (g->per_ip && n >= g->per_ip) {
        /* one line per 100 refusals: an attack must not flood the log */
        if (g->refused++ % 100 == 0)
            SB_LOG_WARN("http.refused", "peer=%s reason=header_phase_limit limit=%u refused=%llu",
                        key, g->per_ip, (unsigned long long)g->refused);
        refuse(wsi);
        return -1;
    }
    guard_conn_t *c = SB_NEW(guard_conn_t);
    memcpy(c->key, key, sizeof(key));
    sb_map_set(&g->counts, key, (void *)(n + 1));
    lws_set_opaque_user_data(wsi, c);
    return 0;
}

void sb__http_guard_release(sb__http_guard_t *g, struct lws *wsi)
{
    guard_conn_t *c = g && wsi ? lws_get_opaque_user_data(wsi) : NULL;
    if (!c)
        return;
    lws_set_opaque_user_data(wsi, NULL);
    uintptr_t n = count_of(g, c->key);
    if (n <= 1)
        sb_map_del(&g->counts, c->key);
    else
        sb_map_set(&g->counts, c->key, (void *)(n - 1));
    sb_free(c);
}

/* SPDX-License-Identifier: MIT */
/*
 * Web chat load generator (a minimal RFC 6455 client on epoll, no library):
 *
 *   bench_ws idle HOST PORT N PID [HOLD_S]
 *       opens N visitor sockets (hello -> welcome) spread over source addresses
 *       127.0.0.1..127.0.0.250 (one address has only ~28k ephemeral ports), then prints
 *       the daemon's RSS growth per connection, and holds them HOLD_S seconds more.
 *   bench_ws load HOST PORT VISITORS RATE SECONDS TOKEN
 *       VISITORS sockets send RATE messages/s in total (RATE 0 = as fast as acks
 *       allow, 8 in flight per socket) for SECONDS while one staff SSE stream listens;
 *       prints messages/s acked and send->ack and send->SSE latency percentiles.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench/proc_rss.h"

#define MAX_LAT 4000000

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct conn {
    int fd;
    int state; /* 0 connecting, 1 upgraded (awaiting welcome), 2 ready */
    char in[65536];
    size_t inlen;
    unsigned inflight;
    unsigned long seq;
} conn_t;

static const char *host;
static int port;
static uint64_t *ack_lat, *sse_lat;
static size_t nack, nsse;
static uint64_t t_origin;

static int dial(int src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (src > 0) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        s.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
        bind(fd, (struct sockaddr *)&s, sizeof(s));
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes all of buf (blocking briefly on EAGAIN: the bench is the only writer). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            usleep(100);
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int ws_send(int fd, const char *text)
{
    size_t n = strlen(text);
    unsigned char hdr[14];
    size_t h = 0;
    hdr[h++] = 0x81;
    if (n < 126) {
        hdr[h++] = (unsigned char)(0x80 | n);
    } else {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(n >> 8);
        hdr[h++] = (unsigned char)n;
    }
    unsigned char mask[4] = {1, 2, 3, 4};
    memcpy(hdr + h, mask, 4);
    h += 4;
    char *buf = malloc(h + n);
    memcpy(buf, hdr, h);
    for (size_t i = 0; i < n; i++)
        buf[h + i] = (char)(text[i] ^ mask[i & 3]);
    int rc = write_all(fd, buf, h + n);
    free(buf);
    return rc;
}

static int upgrade(int fd)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/visitor/ws?site=default HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Protocol: switchboard.visitor.v1\r\n\r\n",
                     host, port);
    return write_all(fd, req, (size_t)n);
}

/* Extracts complete frames from c->in; calls on_frame for each text payload. */
static void parse_frames(conn_t *c, void (*on_frame)(conn_t *, char *, size_t))
{
    size_t off = 0;
    while (c->inlen - off >= 2) {
        unsigned char *p = (unsigned char *)c->in + off;
        size_t len = p[1] & 0x7f, h = 2;
        if (len == 126) {
            if (c->inlen - off < 4)
                break;
            len = ((size_t)p[2] << 8) | p[3];
            h = 4;
        } else if (len == 127) {
            if (c->inlen - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | p[2 + i];
            h = 10;
        }
        if (c->inlen - off < h + len)
            break;
        if ((p[0] & 0x0f) == 1)
            on_frame(c, (char *)p + h, len);
        off += h + len;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
}

static void on_frame(conn_t *c, char *p, size_t len)
{
    if (c->state == 1 && memmem(p, len, "\"welcome\"", 9)) {
        c->state = 2;
        return;
    }
    char *ack = memmem(p, len, "\"client_id\":\"b", 14);
    if (ack && memmem(p, len, "\"ack\"", 5)) {
        uint64_t t = strtoull(ack + 14, NULL, 10);
        if (nack < MAX_LAT)
            ack_lat[nack++] = now_ns() - t_origin - t;
        if (c->inflight)
            c->inflight--;
    }
}

/* Reads what is there; handles the HTTP 101 then frames. Returns -1 on EOF/error. */
static int pump(conn_t *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen);
        if (r < 0 && errno == EAGAIN)
            return 0;
        if (r <= 0) {
            if (getenv("BENCH_DEBUG"))
                fprintf(stderr, "fail state=%d r=%zd errno=%d in=%.*s\n", c->state, r, errno,
                        (int)(c->inlen < 120 ? c->inlen : 120), c->in);
            return -1;
        }
        c->inlen += (size_t)r;
        if (c->state == 0) {
            char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
            if (!end)
                continue;
            if (strncmp(c->in, "HTTP/1.1 101", 12) != 0)
                return -1;
            size_t hl = (size_t)(end + 4 - c->in);
            memmove(c->in, c->in + hl, c->inlen - hl);
            c->inlen -= hl;
            c->state = 1;
            ws_send(c->fd, "{\"type\":\"hello\",\"site\":\"default\"}");
        }
        parse_frames(c, on_frame);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_lat(const char *name, uint64_t *v, size_t n)
{
    if (n == 0) {
        printf("%s: no samples\n", name);
        return;
    }
    qsort(v, n, sizeof(uint64_t), cmp_u64);
    printf("%s: n=%zu p50=%.3fms p99=%.3fms p99.9=%.3fms max=%.3fms\n", name, n,
           (double)v[n / 2] / 1e6, (double)v[(size_t)((double)n * 0.99)] / 1e6,
           (double)v[(size_t)((double)n * 0.999)] / 1e6, (double)v[n - 1] / 1e6);
}

/* Opens n sockets and waits until all are welcomed (or timeout). At most MAX_PENDING
 * handshakes at a time: a burst of tens of thousands of SYNs overflows the listen
 * backlog (4096), and Linux then resets the connections it dropped (visitors arrive
 * over time, not in the same millisecond). */
#define MAX_PENDING 1000
static int welcomed;

static conn_t *open_all(int ep, int n, double timeout_s)
{
    conn_t *cs = calloc((size_t)n, sizeof(conn_t));
    int dialed = 0, ready = 0, dead = 0;
    uint64_t t0 = now_ns();
    struct epoll_event evs[1024];
    while (ready + dead < n && (double)(now_ns() - t0) / 1e9 < timeout_s) {
        while (dialed < n && dialed - ready - dead < MAX_PENDING) {
            conn_t *c = &cs[dialed];
            c->fd = dial(1 + dialed % 250);
            if (c->fd < 0) {
                fprintf(stderr, "dial %d failed: %s\n", dialed, strerror(errno));
                exit(1);
            }
            struct epoll_event e = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
            epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &e);
            dialed++;
        }
        int k = epoll_wait(ep, evs, 1024, 100);
        for (int i = 0; i < k; i++) {
            conn_t *c = evs[i].data.ptr;
            int before = c->state;
            if ((evs[i].events & EPOLLOUT) && c->state == 0 && c->inlen == 0 && !c->seq) {
                c->seq = 1;
                upgrade(c->fd);
            }
            if ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && pump(c) < 0 && c->fd >= 0) {
                close(c->fd);
                c->fd = -1;
                dead++;
            }
            if (before != 2 && c->state == 2)
                ready++;
        }
    }
    for (int i = dialed; i < n; i++)
        cs[i].fd = -1;
    welcomed = ready;
    printf("connections: %d welcomed, %d failed, in %.2fs\n", ready, dead,
           (double)(now_ns() - t0) / 1e9);
    return cs;
}

static int idle(int n, int pid, int hold_s)
{
    long before = proc_rss_kb(pid);
    int ep = epoll_create1(0);
    conn_t *cs = open_all(ep, n, 120);
    sleep(2);
    long after = proc_rss_kb(pid);
    printf("daemon_rss: before=%.1fMB after=%.1fMB sockets=%d delta_per_socket=%.2fKB "
           "(target <= 4 KB)\n",
           (double)before / 1024, (double)after / 1024, welcomed,
           welcomed ? (double)(after - before) / welcomed : 0.0);
    fflush(stdout);
    sleep((unsigned)hold_s); /* keeps them open while other nodes are measured */
    for (int i = 0; i < n; i++)
        if (cs[i].fd >= 0)
            close(cs[i].fd);
    free(cs);
    return 0;
}

/* ---- staff SSE listener ---- */

/* Counts staff deliveries in complete SSE lines; keeps a partial last line for later. */
static void sse_scan(char *buf, size_t *len)
{
    char *end = buf + *len;
    char *last_nl = NULL;
    for (char *q = end; q > buf; q--)
        if (q[-1] == '\n') {
            last_nl = q;
            break;
        }
    if (!last_nl)
        return;
    for (char *p = buf; p < last_nl;) {
        char *m = memmem(p, (size_t)(last_nl - p), "\"text\":\"b", 9);
        if (!m)
            break;
        uint64_t t = strtoull(m + 9, NULL, 10);
        if (nsse < MAX_LAT)
            sse_lat[nsse++] = now_ns() - t_origin - t;
        p = m + 9;
    }
    memmove(buf, last_nl, (size_t)(end - last_nl));
    *len = (size_t)(end - last_nl);
}

/* Reads what the ready sockets have: the staff SSE stream, or visitors' frames. */
static void service(const struct epoll_event *evs, int k, conn_t *sse)
{
    for (int i = 0; i < k; i++) {
        conn_t *c = evs[i].data.ptr;
        if (c == sse) {
            ssize_t r = read(sse->fd, sse->in + sse->inlen, sizeof(sse->in) - sse->inlen - 1);
            if (r > 0) {
                sse->inlen += (size_t)r;
                sse_scan(sse->in, &sse->inlen);
            }
        } else if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
            pump(c);
        }
    }
}

static int load(int visitors, int rate, int seconds, const char *token)
{
    ack_lat = calloc(MAX_LAT, sizeof(uint64_t));
    sse_lat = calloc(MAX_LAT, sizeof(uint64_t));
    int ep = epoll_create1(0);
    int sfd = dial(0);
    usleep(100000);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     token);
    write_all(sfd, req, (size_t)n);
    conn_t sse = {.fd = sfd, .state = 9};
    struct epoll_event se = {.events = EPOLLIN, .data.ptr = &sse};
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &se);
    conn_t *cs = open_all(ep, visitors, 60);
    usleep(300000);
    t_origin = now_ns();
    uint64_t sent = 0, t_end = (uint64_t)seconds * 1000000000u;
    struct epoll_event evs[1024];
    char msg[256];
    int rr = 0;
    while (now_ns() - t_origin < t_end) {
        uint64_t el = now_ns() - t_origin;
        uint64_t due = rate > 0 ? el * (uint64_t)rate / 1000000000u : UINT64_MAX;
        bool blocked = true; /* every visitor has 8 in flight: nothing to send until acks */
        for (int tries = 0; sent < due && tries < visitors; tries++) {
            conn_t *c = &cs[rr++ % visitors];
            if (c->state != 2 || c->inflight >= 8)
                continue;
            blocked = false;
            snprintf(msg, sizeof(msg),
                     "{\"type\":\"message\",\"client_id\":\"b%llu-%lu\",\"text\":\"b%llu\"}",
                     (unsigned long long)(now_ns() - t_origin), c->seq++,
                     (unsigned long long)(now_ns() - t_origin));
            if (ws_send(c->fd, msg) == 0) {
                c->inflight++;
                sent++;
            }
        }
        /* Sleep in epoll until the next message is due (fixed rate) or an ack frees a
         * slot (saturation): a generator that spins takes a core from the daemon and
         * Redis on this two-core machine. */
        struct timespec wait = {0, 0};
        if (rate > 0) {
            uint64_t next = (sent + 1) * 1000000000u / (uint64_t)rate;
            el = now_ns() - t_origin;
            if (next > el)
                wait.tv_nsec = (long)(next - el < 1000000u ? next - el : 1000000u);
        } else if (blocked) {
            wait.tv_nsec = 1000000;
        }
        service(evs, epoll_pwait2(ep, evs, 1024, &wait, NULL), &sse);
    }
    /* Drain for a second so late acks count. */
    uint64_t t1 = now_ns();
    while (now_ns() - t1 < 1000000000u) {
        service(evs, epoll_wait(ep, evs, 1024, 50), &sse);
    }
    printf("load: visitors=%d target_rate=%s sent=%llu acked=%zu rate_acked=%.0f/s "
           "staff_events=%zu\n",
           visitors, rate ? "fixed" : "saturation", (unsigned long long)sent, nack,
           (double)nack / seconds, nsse);
    if (rate)
        printf("  (fixed rate %d msgs/s)\n", rate);
    print_lat("  send->ack", ack_lat, nack);
    print_lat("  send->staff(SSE)", sse_lat, nsse);
    return 0;
}

int main(int argc, char **argv)
{
    struct rlimit rl = {400000, 400000};
    setrlimit(RLIMIT_NOFILE, &rl);
    if (argc >= 6 && strcmp(argv[1], "idle") == 0) {
        host = argv[2];
        port = atoi(argv[3]);
        return idle(atoi(argv[4]), atoi(argv[5]), argc > 6 ? atoi(argv[6]) : 0);
    }
    if (argc >= 8 && strcmp(argv[1], "load") == 0) {
        host = argv[2];
        port = atoi(argv[3]);
        return load(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]), argv[7]);
    }
    fprintf(stderr, "usage: bench_ws idle HOST PORT N PID [HOLD_S] | load HOST PORT VISITORS RATE "
                    "SECS TOKEN\n");
    return 2;
}

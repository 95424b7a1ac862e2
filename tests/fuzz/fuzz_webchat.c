/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes every frame of the web chat visitor protocol (switchboard.visitor.v1 at
 * /v1/visitor/ws, connectors/webchat): hello, message, typing, email, history, ping and
 * whatever else a visitor sends, through the daemon's own pieces on one libuv loop: a real
 * redis-server (spawned on a free port, killed when this process ends), the store with its
 * Functions, the events dispatcher, the HTTP server and the webchat connector.
 *
 * Per input a WebSocket client (on the same loop) upgrades, says hello, waits for the
 * welcome, then sends the input as masked text frames. data[0] picks how:
 *   bits 0-1  0: the rest split on '\n', each piece a frame
 *             1: records [template][len][value]: a frame template (low 4 bits) with the
 *                value as a JSON string (escaped) or, with bit 7 of the template, raw
 *             2: like 0, but the first piece replaces the valid hello
 *             3: like 1, but the first record replaces the valid hello
 *   bit 2     hang up right after sending (the answers arrive for a closed socket)
 * Then (unless hanging up) a last message "fz-end-N" whose ack says every earlier frame
 * was handled, and a close handshake.
 * Invariants (abort): the upgrade is answered with 101; a valid hello gets a welcome;
 * every frame the server parses as a message with a string client_id (or that it refuses
 * for a NUL and that carries a client_id) gets an ack or an error naming it before the
 * socket closes; the messages with our own client_ids ("fz-…", fresh) are stored in the
 * order they were sent; an email address the server saves passes sb_email_check; the server's
 * close frame carries a valid code (RFC 6455 §7.4); every visitor is freed (the connector's
 * socket gauge is back to 0) once its socket closed and its store calls came back.
 * FUZZ_WEBCHAT_TRACE=1 in the environment prints every frame the server sends.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/channel.h"
#include "core/config.h"
#include "core/err.h"
#include "core/events.h"
#include "core/log.h"
#include "core/msg.h"
#include "core/redis.h"
#include "core/store.h"
#include "gateway/connector_host.h"
#include "gateway/http.h"

#define START_LIMIT_MS  15000
#define ANSWER_LIMIT_MS 3000 /* a message unanswered this long is a broken invariant */
#define CLOSE_LIMIT_MS  100
#define HELLO_LIMIT_MS  50 /* a fuzzed first frame may get no answer at all */

/* ---- the daemon's pieces ---- */

static struct {
    uv_loop_t loop;
    sb_config_t cfg;
    sb_redis_t *redis, *redis_block;
    sb_store_t *store;
    sb_events_t *events;
    sb_http_server_t *http;
    sb_connector_host_t *host;
    sb_connector_env_t env;
    const sb_connector_desc_t *desc; /* the webchat connector */
    void *wc;
    uint64_t msgs_in[SB_CHANNEL_COUNT], msgs_out[SB_CHANNEL_COUNT];
    int port;
    pid_t redis_pid;
    char dir[64], log[96];
    unsigned serial; /* makes client_ids unique across inputs */
    bool trace;      /* FUZZ_WEBCHAT_TRACE set: print what the server sends */
} g;

static void stop_redis(void)
{
    if (g.redis_pid > 0) {
        kill(g.redis_pid, SIGKILL);
        waitpid(g.redis_pid, NULL, 0);
        g.redis_pid = 0;
        unlink(g.log);
        rmdir(g.dir);
    }
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t n = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &n) != 0) {
        perror("fuzz_webchat: free port");
        abort();
    }
    close(fd);
    return ntohs(sa.sin_port);
}

/* redis-server dies with us (PDEATHSIG), even when a crash skips atexit. */
static void spawn_redis(int port)
{
    snprintf(g.dir, sizeof(g.dir), "/tmp/fuzz_webchat.XXXXXX");
    if (!mkdtemp(g.dir)) {
        perror("fuzz_webchat: mkdtemp");
        abort();
    }
    snprintf(g.log, sizeof(g.log), "%s/redis.log", g.dir);
    char ports[16];
    snprintf(ports, sizeof(ports), "%d", port);
    pid_t parent = getpid();
    g.redis_pid = fork();
    if (g.redis_pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        execlp("redis-server", "redis-server", "--port", ports, "--bind", "127.0.0.1", "--dir",
               g.dir, "--save", "", "--appendonly", "no", "--logfile", g.log, "--daemonize", "no",
               (char *)NULL);
        _exit(127);
    }
    if (g.redis_pid < 0) {
        perror("fuzz_webchat: fork");
        abort();
    }
    atexit(stop_redis);
}

static void on_redis_connect(sb_redis_t *r, void *data)
{
    sb_store_on_connect(g.store);
}

static void on_redis_disconnect(sb_redis_t *r, int err, void *data)
{
    sb_store_on_disconnect(g.store);
}

static void on_start_limit(uv_timer_t *t)
{
    fprintf(stderr, "fuzz_webchat: Redis and the store not ready after %d ms\n", START_LIMIT_MS);
    abort();
}

static void start_daemon(void)
{
    sb_log_setup(SB_LOG_ERROR, SB_LOG_TEXT);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&g.loop);
    /* The limits are not what is fuzzed: the highest rates (every socket is 127.0.0.1). */
    setenv("SWITCHBOARD_VISITOR_RATE", "1000000", 1);
    setenv("SWITCHBOARD_VISITOR_IP_RATE", "100000000", 1);
    if (sb_config_load_with(&g.cfg, NULL, sb_connectors_config(), NULL) != 0) {
        fprintf(stderr, "fuzz_webchat: the configuration does not load\n");
        abort();
    }
    int port = free_port();
    spawn_redis(port);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    sb_redis_opts_t ro = {.url = url,
                          .name = "main",
                          .start_grace_ms = START_LIMIT_MS,
                          .on_connect = on_redis_connect,
                          .on_disconnect = on_redis_disconnect};
    sb_redis_opts_t bo = {.url = url, .name = "events", .start_grace_ms = START_LIMIT_MS};
    sb_store_opts_t so = {.prefix = g.cfg.prefix,
                          .shards = g.cfg.shards,
                          .reopen_window_ms = g.cfg.reopen_window_ms,
                          .events_maxlen = g.cfg.events_maxlen};
    sb_http_opts_t ho = {.loop = &g.loop, .listen = "127.0.0.1:0"};
    if (sb_redis_new(&g.loop, &ro, &g.redis) != 0 ||
        sb_redis_new(&g.loop, &bo, &g.redis_block) != 0 ||
        sb_store_new(g.redis, &so, &g.store) != 0 ||
        sb_events_new(&g.loop, g.redis_block, g.redis, g.cfg.prefix, g.cfg.shards, &g.events) ||
        sb_http_server_new(&ho, &g.http) != 0) {
        fprintf(stderr, "fuzz_webchat: cannot start the daemon's pieces\n");
        abort();
    }
    g.port = sb_http_server_port(g.http);
    g.host = sb_connector_host_new(g.http);
    g.env = (sb_connector_env_t){.loop = &g.loop,
                                 .cfg = &g.cfg,
                                 .store = g.store,
                                 .events = g.events,
                                 .host = &sb_connector_host_ops,
                                 .host_data = g.host,
                                 .msgs_in = g.msgs_in,
                                 .msgs_out = g.msgs_out};
    for (int i = 0; sb_connectors[i]; i++)
        if (strcmp(sb_connectors[i]->name, "webchat") == 0)
            g.desc = sb_connectors[i];
    if (!g.desc || g.desc->start(&g.env, &g.wc) != 0) {
        fprintf(stderr, "fuzz_webchat: the webchat connector did not start\n");
        abort();
    }
    uv_timer_t limit;
    uv_timer_init(&g.loop, &limit);
    uv_timer_start(&limit, on_start_limit, START_LIMIT_MS, 0);
    while (!sb_store_ready(g.store) || !sb_events_ready(g.events))
        uv_run(&g.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&limit, NULL);
    uv_run(&g.loop, UV_RUN_NOWAIT);
}

/* ---- the visitor: a WebSocket client on the same loop ---- */

typedef struct expect {
    char *cid;
    int n;
} expect_t;

typedef struct client {
    uv_poll_t poll;
    uv_timer_t timer;
    int fd;
    unsigned char *out;
    size_t out_len, out_off, out_cap;
    unsigned char *in;
    size_t in_len, in_cap;
    unsigned char *msg; /* a text message being reassembled */
    size_t msg_len;
    bool upgraded, eof, timed_out;
    int hello;       /* 0 waiting, 1 welcome, -1 refused */
    bool close_seen; /* the server's close frame */
    expect_t *exp;
    size_t nexp;
    int pending;               /* messages not yet answered */
    bool order_off;            /* the input itself names an "fz-" client_id */
    unsigned long last_serial; /* N of the last ack of an "fz-" client_id */
    int closing;
} client_t;

static void queue_bytes(client_t *c, const void *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        c->out_cap = (c->out_len + n) * 2;
        c->out = sb_realloc(c->out, c->out_cap);
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
}

/* One masked client frame (RFC 6455 §5.2). */
static void queue_frame(client_t *c, int opcode, const void *p, size_t n)
{
    static const unsigned char mask[4] = {0x5a, 0x13, 0xc4, 0x7e};
    unsigned char h[14];
    size_t k = 0;
    h[k++] = (unsigned char)(0x80 | opcode);
    if (n < 126) {
        h[k++] = (unsigned char)(0x80 | n);
    } else if (n < 65536) {
        h[k++] = 0x80 | 126;
        h[k++] = (unsigned char)(n >> 8);
        h[k++] = (unsigned char)n;
    } else {
        h[k++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[k++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    memcpy(h + k, mask, 4);
    queue_bytes(c, h, k + 4);
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = s[i] ^ mask[i & 3];
        queue_bytes(c, &b, 1);
    }
}

static expect_t *find_expect(client_t *c, const char *cid)
{
    for (size_t i = 0; i < c->nexp; i++)
        if (strcmp(c->exp[i].cid, cid) == 0)
            return &c->exp[i];
    return NULL;
}

static void expect_answer(client_t *c, const char *cid)
{
    expect_t *e = find_expect(c, cid);
    if (!e) {
        c->exp = sb_realloc(c->exp, (c->nexp + 1) * sizeof(expect_t));
        e = &c->exp[c->nexp++];
        e->cid = sb_strdup(cid);
        e->n = 0;
    }
    e->n++;
    c->pending++;
}

/* Whether frames.c must answer this frame naming a client_id, and which (mirrors it). */
static void note_frame(client_t *c, const char *p, size_t n)
{
    json_t *f = NULL;
    sb_json_error_t je;
    int rc = sb_json_parse(p, n, SB_MAX_WS_FRAME, 1, &f, &je);
    if (rc == 0) {
        const char *type = json_string_value(json_object_get(f, "type"));
        const char *cid = json_string_value(json_object_get(f, "client_id"));
        if (type && strcmp(type, "message") == 0 && cid)
            expect_answer(c, cid);
    } else if (rc == SB_EPARSE) {
        f = json_loadb(p, n, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
        json_t *cidj = json_object_get(f, "client_id");
        if (json_is_object(f) && json_is_string(cidj) &&
            strlen(json_string_value(cidj)) == json_string_length(cidj))
            expect_answer(c, json_string_value(cidj));
    }
    json_decref(f);
}

static void on_answer(client_t *c, const char *cid)
{
    expect_t *e = find_expect(c, cid);
    if (e && e->n > 0) {
        e->n--;
        c->pending--;
    }
}

/*
 * Our own client_ids ("fz-N", "fz-end-N": N grows) are fresh and sent in order: their
 * acks, which come in the order Redis stored the messages, must come in that order too.
 */
static void check_order(client_t *c, const char *cid, const char *seq)
{
    const char *num = cid + strcspn(cid, "0123456789");
    unsigned long serial = strtoul(num, NULL, 10);
    if (!seq || serial <= c->last_serial) {
        fprintf(stderr, "fuzz_webchat: %s (seq %s) stored after fz-%lu, sent later\n", cid,
                seq ? seq : "none", c->last_serial);
        abort();
    }
    c->last_serial = serial;
}

static void on_server_text(client_t *c, const unsigned char *p, size_t n)
{
    if (g.trace)
        fprintf(stderr, "fuzz_webchat: < %.300s\n", p);
    json_t *f = json_loadb((const char *)p, n, JSON_ALLOW_NUL, NULL);
    if (!json_is_object(f)) {
        fprintf(stderr, "fuzz_webchat: the server sent a frame that is not a JSON object\n");
        abort();
    }
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *cid = json_string_value(json_object_get(f, "client_id"));
    const char *msg = json_string_value(json_object_get(f, "message"));
    if (!type) {
        fprintf(stderr, "fuzz_webchat: a server frame without a type: %.200s\n", p);
        abort();
    }
    if (strcmp(type, "welcome") == 0) {
        c->hello = 1;
    } else if (strcmp(type, "error") == 0 && c->hello == 0 &&
               !(msg && strstr(msg, "continuing anonymously"))) {
        c->hello = -1;
    }
    const char *email = json_string_value(json_object_get(f, "email"));
    if (strcmp(type, "status") == 0 && email && sb_email_check(email) != 0) {
        fprintf(stderr, "fuzz_webchat: saved an email address that is none: \"%.200s\"\n", email);
        abort();
    }
    if (cid && strcmp(type, "ack") == 0 && strncmp(cid, "fz-", 3) == 0 && !c->order_off)
        check_order(c, cid, json_string_value(json_object_get(f, "seq")));
    if (cid && (strcmp(type, "ack") == 0 || strcmp(type, "error") == 0))
        on_answer(c, cid);
    json_decref(f);
}

static bool close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

/* Parses what came back: the 101 answer, then server frames (unmasked). */
static void parse_in(client_t *c)
{
    size_t off = 0;
    if (!c->upgraded) {
        unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end)
            return;
        if (c->in_len < 12 || memcmp(c->in, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "fuzz_webchat: upgrade not answered with 101: %.80s\n", c->in);
            abort();
        }
        c->upgraded = true;
        off = (size_t)(end - c->in) + 4;
    }
    while (c->in_len - off >= 2) {
        const unsigned char *h = c->in + off;
        size_t avail = c->in_len - off, hl = 2;
        uint64_t len = h[1] & 0x7f;
        if (h[1] & 0x80) {
            fprintf(stderr, "fuzz_webchat: the server masked a frame\n");
            abort();
        }
        if (len == 126) {
            if (avail < 4)
                break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (avail - hl < len)
            break;
        const unsigned char *p = h + hl;
        int opcode = h[0] & 0x0f;
        if (opcode == 0 || opcode == 1) {
            c->msg = sb_realloc(c->msg, c->msg_len + len + 1);
            memcpy(c->msg + c->msg_len, p, len);
            c->msg_len += len;
            c->msg[c->msg_len] = '\0';
            if (h[0] & 0x80) {
                on_server_text(c, c->msg, c->msg_len);
                c->msg_len = 0;
            }
        } else if (opcode == 8) {
            unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : 1000;
            if (len == 1 || !close_code_ok(code)) {
                fprintf(stderr, "fuzz_webchat: close frame with code %u (%zu bytes)\n", code,
                        (size_t)len);
                abort();
            }
            c->close_seen = true;
        } else if (opcode != 9 && opcode != 10) {
            fprintf(stderr, "fuzz_webchat: the server sent opcode %d\n", opcode);
            abort();
        }
        off += hl + len;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    client_t *c = p->data;
    if (status < 0) {
        c->eof = true;
        return;
    }
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                c->out_off = c->out_len; /* the server hung up: read what it said */
            break;
        }
        c->out_off += (size_t)w;
    }
    for (;;) {
        if (c->in_cap - c->in_len < 16384) {
            c->in_cap = c->in_cap * 2 + 16384;
            c->in = sb_realloc(c->in, c->in_cap + 1);
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            c->in[c->in_len] = '\0';
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            c->eof = true;
        break;
    }
    parse_in(c);
    if (!c->eof)
        uv_poll_start(&c->poll, UV_READABLE | (c->out_off < c->out_len ? UV_WRITABLE : 0), on_poll);
}

static void on_timeout(uv_timer_t *t)
{
    client_t *c = t->data;
    c->timed_out = true;
}

/* Sends what is queued and runs the loop until done(c), EOF or limit_ms. */
static void run_until(client_t *c, bool (*done)(const client_t *), uint64_t limit_ms)
{
    c->timed_out = false;
    uv_timer_start(&c->timer, on_timeout, limit_ms, 0);
    if (!c->eof)
        uv_poll_start(&c->poll, UV_READABLE | UV_WRITABLE, on_poll);
    while (!c->eof && !c->timed_out && !done(c))
        uv_run(&g.loop, UV_RUN_ONCE);
    uv_timer_stop(&c->timer);
}

static bool upgraded(const client_t *c)
{
    return c->upgraded;
}

static bool hello_done(const client_t *c)
{
    return c->hello != 0;
}

static bool all_answered(const client_t *c)
{
    return c->close_seen || (c->out_off == c->out_len && c->pending == 0);
}

static bool never(const client_t *c)
{
    return false;
}

static void on_closed(uv_handle_t *h)
{
    client_t *c = h->data;
    c->closing--;
}

static void client_open(client_t *c)
{
    static const char head[] = "GET /v1/visitor/ws HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\n"
                               "Upgrade: websocket\r\n"
                               "Connection: Upgrade\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                               "Sec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Protocol: switchboard.visitor.v1\r\n\r\n";
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g.port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c->fd < 0 ||
        (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EINPROGRESS)) {
        perror("fuzz_webchat: connect");
        abort();
    }
    uv_poll_init(&g.loop, &c->poll, c->fd);
    c->poll.data = c;
    uv_timer_init(&g.loop, &c->timer);
    c->timer.data = c;
    queue_bytes(c, head, sizeof(head) - 1);
}

static void client_close(client_t *c)
{
    c->closing = 2;
    uv_close((uv_handle_t *)&c->poll, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
    while (c->closing)
        uv_run(&g.loop, UV_RUN_ONCE);
    close(c->fd);
    /* let the server see the close and the store calls in flight come back */
    uv_run(&g.loop, UV_RUN_NOWAIT);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    for (size_t i = 0; i < c->nexp; i++)
        sb_free(c->exp[i].cid);
    sb_free(c->exp);
    sb_free(c->out);
    sb_free(c->in);
    sb_free(c->msg);
}

/* ---- inputs to frames ---- */

/* @N is a fresh number, @V the value. */
static const char *const templates[] = {
    "{\"type\":\"message\",\"client_id\":\"fz-@N\",\"text\":@V}",
    "{\"type\":\"message\",\"client_id\":@V,\"text\":\"hello\"}",
    "{\"type\":\"typing\",\"on\":@V}",
    "{\"type\":\"email\",\"email\":@V}",
    "{\"type\":\"history\",\"before\":@V}",
    "{\"type\":\"history\",\"after\":@V,\"limit\":5}",
    "{\"type\":\"history\",\"limit\":@V}",
    "{\"type\":\"ping\",\"x\":@V}",
    "{\"type\":\"hello\",\"token\":@V}",
    "{\"type\":@V}",
    "{\"type\":\"message\",\"client_id\":\"fz-@N\",\"text\":\"x\",\"extra\":@V}",
    "{\"type\":\"hello\",\"name\":\"N\",\"email\":\"a@b\",\"last_seq\":@V}",
    "{\"type\":\"hello\",\"user_id\":@V,\"user_hash\":\"00\"}",
    "{\"type\":\"message\",\"text\":@V,\"client_id\":\"fz-@N\",\"client_id\":\"fz-d@N\"}",
    "@V",
    "{\"type\":\"email\",\"email\":\"a@b.c\"}",
};

/* The value as a JSON string: quotes, backslashes and control bytes escaped, the rest as is. */
static size_t quote(const unsigned char *v, size_t n, char *out)
{
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\') {
            out[o++] = '\\';
            out[o++] = (char)v[i];
        } else if (v[i] < 0x20) {
            o += (size_t)sprintf(out + o, "\\u%04x", v[i]);
        } else {
            out[o++] = (char)v[i];
        }
    }
    out[o++] = '"';
    return o;
}

static void send_text(client_t *c, const void *p, size_t n)
{
    if (c->hello == 1)
        note_frame(c, p, n);
    queue_frame(c, 1, p, n);
}

/* Builds one frame from a record; returns the bytes of input it used. */
static size_t templated(client_t *c, const unsigned char *in, size_t n, bool send)
{
    if (n < 2)
        return n;
    unsigned t = in[0];
    size_t len = in[1] < n - 2 ? in[1] : n - 2;
    const char *tpl = templates[(t & 0x0f) % (sizeof(templates) / sizeof(templates[0]))];
    char frame[2048];
    size_t o = 0;
    for (const char *s = tpl; *s; s++) {
        if (s[0] == '@' && s[1] == 'N') {
            o += (size_t)sprintf(frame + o, "%u", ++g.serial);
            s++;
        } else if (s[0] == '@' && s[1] == 'V') {
            if (t & 0x80) {
                memcpy(frame + o, in + 2, len);
                o += len;
            } else {
                o += quote(in + 2, len, frame + o);
            }
            s++;
        } else {
            frame[o++] = *s;
        }
    }
    if (send)
        send_text(c, frame, o);
    else
        queue_frame(c, 1, frame, o);
    return 2 + len;
}

/* The input's frames; the first one is the hello when fuzz_hello. */
static void queue_input(client_t *c, const unsigned char *in, size_t n, bool records, bool hello)
{
    while (n > 0) {
        size_t used;
        if (records) {
            used = templated(c, in, n, !hello);
        } else {
            const unsigned char *nl = memchr(in, '\n', n);
            size_t len = nl ? (size_t)(nl - in) : n;
            if (hello)
                queue_frame(c, 1, in, len);
            else
                send_text(c, in, len);
            used = nl ? len + 1 : len;
        }
        in += used;
        n -= used;
        if (hello)
            return;
    }
}

static size_t first_record(const unsigned char *in, size_t n, bool records)
{
    if (records)
        return n < 2 ? n : 2 + (in[1] < n - 2 ? in[1] : n - 2);
    const unsigned char *nl = memchr(in, '\n', n);
    return nl ? (size_t)(nl - in) + 1 : n;
}

/* The connector's open visitor sockets, from its /metrics gauge. */
static unsigned long visitors(void)
{
    sb_buf_t m;
    sb_buf_init(&m, 4096);
    g.desc->metrics(g.wc, &m);
    const char *p = m.data ? strstr(m.data, "\nswitchboard_webchat_sockets ") : NULL;
    unsigned long n = p ? strtoul(p + 30, NULL, 10) : 0;
    sb_buf_dispose(&m);
    return n;
}

static void on_leak_limit(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Every visitor of the last input is freed once its store calls are back. */
static void check_visitors_freed(void)
{
    bool late = false;
    uv_timer_t limit;
    uv_timer_init(&g.loop, &limit);
    limit.data = &late;
    uv_timer_start(&limit, on_leak_limit, ANSWER_LIMIT_MS, 0);
    while (visitors() != 0 && !late)
        uv_run(&g.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&limit, NULL);
    uv_run(&g.loop, UV_RUN_NOWAIT);
    if (late) {
        fprintf(stderr, "fuzz_webchat: %lu visitor(s) still open %d ms after their socket\n",
                visitors(), ANSWER_LIMIT_MS);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    sb_alloc_init();
    g.trace = getenv("FUZZ_WEBCHAT_TRACE") != NULL;
    start_daemon();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    unsigned mode = data[0] & 3;
    bool records = mode & 1, fuzz_hello = mode & 2, hang_up = data[0] & 4;
    const unsigned char *in = data + 1;
    size_t n = size - 1;
    client_t c = {.order_off = memmem(data, size, "fz-", 3) != NULL};
    client_open(&c);
    /* the frames go after the 101: lws leaves bytes that came with the upgrade unread a while */
    run_until(&c, upgraded, ANSWER_LIMIT_MS);
    if (!c.upgraded) {
        fprintf(stderr, "fuzz_webchat: upgrade not answered (eof=%d)\n", c.eof);
        abort();
    }
    if (fuzz_hello) {
        size_t k = first_record(in, n, records);
        queue_input(&c, in, k, records, true);
        in += k;
        n -= k;
    } else {
        static const char hello[] = "{\"type\":\"hello\",\"name\":\"Fuzz\"}";
        queue_frame(&c, 1, hello, sizeof(hello) - 1);
    }
    run_until(&c, hello_done, fuzz_hello ? HELLO_LIMIT_MS : ANSWER_LIMIT_MS);
    if (!fuzz_hello && c.hello != 1) {
        fprintf(stderr, "fuzz_webchat: a valid hello got no welcome (hello=%d eof=%d)\n", c.hello,
                c.eof);
        abort();
    }
    queue_input(&c, in, n, records, false);
    if (!hang_up && !c.eof && c.hello == 1) {
        char end[80];
        int k = snprintf(end, sizeof(end),
                         "{\"type\":\"message\",\"client_id\":\"fz-end-%u\",\"text\":\"end\"}",
                         ++g.serial);
        send_text(&c, end, (size_t)k);
    }
    if (!hang_up) {
        run_until(&c, all_answered, ANSWER_LIMIT_MS);
        if (!c.eof && !c.close_seen && c.pending > 0) {
            fprintf(stderr, "fuzz_webchat: %d message(s) unanswered after %d ms\n", c.pending,
                    ANSWER_LIMIT_MS);
            for (size_t i = 0; i < c.nexp; i++)
                if (c.exp[i].n)
                    fprintf(stderr, "  client_id=\"%.140s\" x%d\n", c.exp[i].cid, c.exp[i].n);
            abort();
        }
        static const unsigned char bye[] = {0x03, 0xe8};
        queue_frame(&c, 8, bye, sizeof(bye));
        run_until(&c, never, CLOSE_LIMIT_MS);
    } else {
        run_until(&c, all_answered, 0); /* one turn to send */
    }
    client_close(&c);
    check_visitors_freed();
    return 0;
}

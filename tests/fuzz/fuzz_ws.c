/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes what of WebSocket handling is ours (gateway/ws.c): after a valid upgrade to a real
 * in-process server (lws does the handshake and the frame header parsing and unmasking),
 * our code reassembles messages from lws's fragments up to max_frame (1009 past it),
 * refuses binary messages, hands complete texts to the route, queues and frames answers
 * and runs the close handshake. Input: first byte odd = the rest is sent raw after the
 * upgrade; even = the rest is records [fin|opcode byte][length byte][payload], each sent
 * as one masked client frame, so the fuzzer reaches fragmentation and control frames
 * easily. The route echoes every text and closes on a text starting with "close".
 * Invariants: the upgrade is answered with 101, and the server always ends the exchange.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/ws.h"
#include "tests/fuzz/loopback.h"

#define MAX_FRAME 256

static fz_server_t server;

static void on_text(sb_ws_t *ws, const char *msg, size_t len, void *data)
{
    if (len >= 5 && memcmp(msg, "close", 5) == 0) {
        sb_ws_close(ws, 1000, "bye");
        return;
    }
    sb_ws_send(ws, msg, len);
}

static void add_routes(sb_http_server_t *s)
{
    static const sb_ws_route_t route = {.path = "/ws",
                                        .subprotocol = "switchboard.events.v1",
                                        .max_frame = MAX_FRAME,
                                        .max_queue = 4096,
                                        .on_text = on_text};
    if (sb_ws_route(s, &route) != 0)
        abort();
}

static const char head[] = "GET /ws HTTP/1.1\r\n"
                           "Host: x\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Protocol: switchboard.events.v1\r\n\r\n";

/* Turns records into masked client frames (RFC 6455 §5.2); returns the bytes written. */
static size_t frames_of(const uint8_t *in, size_t n, uint8_t *out)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t o = 0;
    while (n >= 2) {
        uint8_t b0 = in[0], len = in[1];
        in += 2;
        n -= 2;
        size_t take = len < n ? len : n;
        out[o++] = b0;
        if (take < 126) {
            out[o++] = 0x80 | (uint8_t)take;
        } else {
            out[o++] = 0x80 | 126;
            out[o++] = (uint8_t)(take >> 8);
            out[o++] = (uint8_t)take;
        }
        memcpy(out + o, mask, 4);
        o += 4;
        for (size_t i = 0; i < take; i++)
            out[o++] = in[i] ^ mask[i & 3];
        in += take;
        n -= take;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    if (!server.srv)
        fz_server_start(&server, 4096, add_routes);
    const uint8_t *body = data + 1;
    size_t n = size - 1;
    uint8_t *framed = NULL;
    if (!(data[0] & 1)) {
        framed = malloc(n * 4 + 16); /* each record grows by at most 6 bytes per 2 */
        n = frames_of(body, n, framed);
        body = framed;
    }
    char resp[64];
    /* wait for the status line: only its absence breaks the invariant, not a slow loop */
    size_t got =
        fz_exchange_answered(&server, head, sizeof(head) - 1, body, n, resp, sizeof(resp), 12);
    free(framed);
    if (got < 12 || memcmp(resp, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "fuzz_ws: upgrade not answered with 101: %.60s\n", resp);
        abort();
    }
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * For the fuzz targets that go through the real HTTP server (fuzz_http, fuzz_ws): one
 * in-process gateway/http.c server (libwebsockets on a libuv loop) listening on loopback,
 * and an exchange that sends bytes on a fresh connection, half-closes it and runs the loop
 * until the server has closed it (or 100 ms passed: a request lws still waits on after the
 * client half-closed keeps its connection until lws times it out; a target that needs the
 * answer's status line waits for it first, with a generous deadline). The bytes meet lws's request
 * parser, then our header, query, route, body and WebSocket code, exactly as in the daemon.
 */
#ifndef SB_FUZZ_LOOPBACK_H
#define SB_FUZZ_LOOPBACK_H

#include <stddef.h>

#include <uv.h>

#include "gateway/http.h"

typedef struct fz_server {
    uv_loop_t loop;
    sb_http_server_t *srv;
    int port;
} fz_server_t;

/** Starts the server (max_body bytes per request body) and lets add_routes register its
 *  routes. Aborts if it cannot listen: the target has nothing to fuzz then. */
void fz_server_start(fz_server_t *s, size_t max_body, void (*add_routes)(sb_http_server_t *));

/**
 * Connects, writes head (may be NULL) then data, shuts the write side and runs the loop
 * until the server closes the connection or 100 ms pass. The answer's first bytes go
 * to resp (cap bytes, NUL-terminated if cap > 0); returns how many bytes came back.
 */
size_t fz_exchange(fz_server_t *s, const void *head, size_t head_len, const void *data, size_t n,
                   char *resp, size_t cap);

/**
 * fz_exchange for a target whose invariant needs the answer's first `want` bytes (a
 * status line): the 100 ms give-up starts only once they are in; until then the loop runs
 * until they are, the server closes, or FZ_ANSWER_PATIENCE_MS pass (a loaded machine can
 * take longer than 100 ms to answer; a server that never answers still ends the run).
 */
size_t fz_exchange_answered(fz_server_t *s, const void *head, size_t head_len, const void *data,
                            size_t n, char *resp, size_t cap, size_t want);

/** How long fz_exchange_answered waits for the answer's first bytes. */
#define FZ_ANSWER_PATIENCE_MS 5000

#endif

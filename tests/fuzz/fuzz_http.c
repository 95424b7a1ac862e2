/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes an HTTP request as the daemon receives it: the input is the raw bytes of one
 * connection (request head, then a Content-Length or chunked body, maybe pipelined
 * requests) sent over loopback to a real gateway/http.c server. lws parses the head (it
 * is not instrumented, so coverage guides only our side); our code reads headers and
 * query, routes with {param} and prefix patterns, decodes chunked bodies (chunked_feed),
 * enforces max_body and answers errors. The handler reads what the API handlers read and
 * parses the body with sb_json_parse. Invariants: the server answers (or closes) every
 * connection, and a response starts with a status line.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/msg.h"
#include "tests/fuzz/loopback.h"

static fz_server_t server;

static void h_any(sb_http_req_t *req, void *data)
{
    size_t len = 0;
    const char *body = sb_http_req_body(req, &len);
    const char *id = sb_http_req_param(req, "id");
    const char *rest = sb_http_req_param(req, "*");
    const char *after = sb_http_req_query(req, "after");
    const char *limit = sb_http_req_query(req, "limit");
    const char *auth = sb_http_req_header(req, "authorization");
    const char *lei = sb_http_req_header(req, "last-event-id");
    const char *ctype = sb_http_req_header(req, "content-type");
    json_t *reply =
        json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:b, s:b, s:s?, s:s, s:I}", "method",
                  sb_http_req_method(req), "path", sb_http_req_path(req), "id", id, "rest", rest,
                  "after", after, "limit", limit, "auth", auth != NULL, "lei", lei != NULL, "ctype",
                  ctype, "peer", sb_http_req_peer(req), "body", (json_int_t)len);
    if (len) {
        json_t *doc = NULL;
        sb_json_error_t err;
        int rc = sb_json_parse(body, len, SB_MAX_HTTP_BODY, 1, &doc, &err);
        if (rc != 0) {
            json_decref(reply);
            sb_http_respond_error(req, 400, "bad_request", err.text);
            return;
        }
        json_object_set_new(reply, "doc", doc);
    }
    sb_http_add_header(req, "X-Fuzz", "1");
    sb_http_respond_json(req, 200, reply);
    json_decref(reply);
}

static void h_stream(sb_http_req_t *req, void *data)
{
    if (sb_http_stream_start(req, 200, "text/event-stream") == 0) {
        sb_http_stream_write(req, ": connected\n\n", 13);
        sb_http_stream_end(req);
    }
}

static void add_routes(sb_http_server_t *s)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        sb_http_route(s, methods[i], "/v1/conversations/{id}/messages", h_any, NULL);
        sb_http_route(s, methods[i], "/v1/conversations/{id}", h_any, NULL);
        sb_http_route(s, methods[i], "/v1/inbound", h_any, NULL);
        sb_http_route(s, methods[i], "/assets/*", h_any, NULL);
    }
    sb_http_route(s, "GET", "/", h_any, NULL);
    sb_http_route(s, "GET", "/v1/events", h_stream, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server.srv)
        fz_server_start(&server, 4096, add_routes);
    char resp[64];
    size_t got = fz_exchange(&server, NULL, 0, data, size, resp, sizeof(resp));
    /* Whatever came back starts as an HTTP/1.1 response (lws may also just hang up). */
    if (got >= 5 && memcmp(resp, "HTTP/", 5) != 0) {
        fprintf(stderr, "fuzz_http: not a response: %.60s\n", resp);
        abort();
    }
    return 0;
}

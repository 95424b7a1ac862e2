/* SPDX-License-Identifier: MIT */
/*
 * Attachments on the REST API (docs/attachments.md): the signed, expiring `url` the API
 * adds to each stored attachment of the messages it hands to staff, and
 * GET /v1/attachments/{sha}, which serves the file to whoever holds such a URL.
 *
 * The URL is the credential: no token is asked for, the signature (core/attach.h) covers
 * the sha, name, type and expiry, and a bad or expired one is 403 whether or not the file
 * exists. Only types a browser shows without running anything (images but SVG, PDF, plain
 * text) are served as themselves, inline; everything else as application/octet-stream to
 * be saved (`Content-Disposition: attachment`). Every answer carries `nosniff`, a
 * `sandbox` CSP (a document opened from here has no origin and runs no script) and
 * `Cache-Control: private`.
 *
 * The file is read with libuv's file system requests (its thread pool), so the loop
 * never waits for the disk; the HTTP server sends a response from memory, so a download
 * holds the whole file (at most attachment_max_bytes, or 25 MiB) until it is written out
 * (docs/attachments.md, Limits).
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/attach.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/internal.h"

/* A file is served up to attachment_max_bytes (at most 64 MiB, core/config.c) or this,
 * whichever is larger: the limit may have been lowered since a file was stored. */
#define SERVE_DEFAULT (25ULL << 20)

struct api_attach {
    sb_app_t *app;
    sb_attach_key_t key;
    bool ready; /* the key loaded: URLs are signed and served */
};

/* ---- URLs in the messages staff get ---- */

void sb__api_attach_urls(sb_app_t *app, json_t *messages)
{
    struct api_attach *a = app->api ? sb__api_attach_of(app->api) : NULL;
    if (!a || !a->ready)
        return;
    int64_t exp = sb_now_ms() / 1000 + (int64_t)(app->cfg->attachment_url_ttl_ms / 1000);
    size_t i, j;
    json_t *m, *att;
    json_array_foreach(messages, i, m)
    {
        json_array_foreach(json_object_get(m, "attachments"), j, att)
        {
            const char *sha = json_string_value(json_object_get(att, "sha256"));
            if (!json_is_true(json_object_get(att, "stored")) || !sb_attach_sha_valid(sha))
                continue;
            char *url = sb_attach_url(&a->key, sha, json_string_value(json_object_get(att, "name")),
                                      json_string_value(json_object_get(att, "type")), exp);
            if (url)
                json_object_set_new(att, "url", json_string(url));
            sb_free(url);
        }
    }
}

/* ---- GET /v1/attachments/{sha} ---- */

typedef struct dl {
    uv_fs_t fs;
    uv_loop_t *loop;
    sb_http_req_t *req; /* NULL once the client is gone */
    uv_file fd;
    char *buf;
    size_t size, off;
    uint64_t max;
    char *type, *name;
} dl_t;

static void dl_free(dl_t *d)
{
    if (d->fd >= 0) {
        uv_fs_t close_req;
        uv_fs_close(d->loop, &close_req, d->fd, NULL); /* no callback: synchronous */
        uv_fs_req_cleanup(&close_req);
    }
    if (d->req)
        sb_http_req_on_close(d->req, NULL, NULL);
    sb_free(d->buf);
    sb_free(d->type);
    sb_free(d->name);
    sb_free(d);
}

static void dl_gone(sb_http_req_t *req, void *data)
{
    dl_t *d = data;
    d->req = NULL;
}

/* An error answer, never cached. */
static void refuse(sb_http_req_t *req, int status, const char *code, const char *message)
{
    sb_http_add_header(req, "Cache-Control", "no-store");
    sb_http_respond_error(req, status, code, message);
}

/* Ends a download with an error (when the client is still there), then frees it. */
static void dl_fail(dl_t *d, int status, const char *code, const char *message)
{
    sb_http_req_t *req = d->req;
    if (req) {
        sb_http_req_on_close(req, NULL, NULL);
        d->req = NULL;
        refuse(req, status, code, message);
    }
    dl_free(d);
}

/* Types a browser may show as themselves: none of them runs script. */
static bool inline_type(const char *t)
{
    static const char *const safe[] = {"image/png",  "image/jpeg", "image/gif",       "image/webp",
                                       "image/avif", "image/bmp",  "application/pdf", "text/plain"};
    for (size_t i = 0; t && i < SB_ARRAY_LEN(safe); i++)
        if (strcasecmp(t, safe[i]) == 0)
            return true;
    return false;
}

static void dl_send(dl_t *d)
{
    sb_http_req_t *req = d->req;
    if (!req) {
        dl_free(d);
        return;
    }
    bool show = inline_type(d->type);
    const char *name = d->name && *d->name ? d->name : "attachment";
    size_t cap = 3 * strlen(name) + 1;
    char *enc = sb_malloc(cap);
    sb_attach_pct_encode(name, enc, cap);
    char *disp = sb_asprintf("%s; filename*=UTF-8''%s", show ? "inline" : "attachment", enc);
    sb_http_req_on_close(req, NULL, NULL);
    d->req = NULL;
    sb_http_add_header(req, "Content-Disposition", disp);
    sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
    sb_http_add_header(req, "Content-Security-Policy", "sandbox");
    sb_http_add_header(req, "Cache-Control", "private");
    sb_http_respond(req, 200, show ? d->type : "application/octet-stream", d->buf, d->size);
    sb_free(disp);
    sb_free(enc);
    dl_free(d);
}

static void on_read(uv_fs_t *fs)
{
    dl_t *d = fs->data;
    ssize_t n = fs->result;
    uv_fs_req_cleanup(fs);
    if (n < 0 || !d->req) {
        if (n < 0)
            SB_LOG_ERROR("attach.read", "err=\"%s\"", uv_strerror((int)n));
        dl_fail(d, 500, "internal", "the attachment could not be read");
        return;
    }
    d->off += (size_t)n;
    if (n == 0 || d->off >= d->size) {
        d->size = d->off; /* a file can't shrink (content-addressed), but never send junk */
        dl_send(d);
        return;
    }
    uv_buf_t b = uv_buf_init(d->buf + d->off, (unsigned)(d->size - d->off));
    if (uv_fs_read(fs->loop, fs, d->fd, &b, 1, (int64_t)d->off, on_read) != 0)
        dl_fail(d, 500, "internal", "the attachment could not be read");
}

static void on_stat(uv_fs_t *fs)
{
    dl_t *d = fs->data;
    int rc = (int)fs->result;
    uint64_t size = fs->statbuf.st_size;
    uv_fs_req_cleanup(fs);
    if (rc < 0 || !d->req) {
        dl_fail(d, 500, "internal", "the attachment could not be read");
        return;
    }
    if (size > d->max) {
        dl_fail(d, 413, "too_large", "the attachment is larger than this server serves");
        return;
    }
    d->size = (size_t)size;
    d->buf = sb_malloc(d->size ? d->size : 1);
    if (d->size == 0) {
        dl_send(d);
        return;
    }
    uv_buf_t b = uv_buf_init(d->buf, (unsigned)d->size);
    if (uv_fs_read(fs->loop, fs, d->fd, &b, 1, 0, on_read) != 0)
        dl_fail(d, 500, "internal", "the attachment could not be read");
}

static void on_open(uv_fs_t *fs)
{
    dl_t *d = fs->data;
    int rc = (int)fs->result;
    uv_fs_req_cleanup(fs);
    if (rc == UV_ENOENT || rc == UV_ENOTDIR) {
        dl_fail(d, 404, "not_found", "no such attachment");
        return;
    }
    if (rc >= 0)
        d->fd = rc; /* closed by dl_free */
    if (rc < 0 || !d->req) {
        if (rc < 0)
            SB_LOG_ERROR("attach.open", "err=\"%s\"", uv_strerror(rc));
        dl_fail(d, 500, "internal", "the attachment could not be read");
        return;
    }
    if (uv_fs_fstat(fs->loop, fs, d->fd, on_stat) != 0)
        dl_fail(d, 500, "internal", "the attachment could not be read");
}

static void h_download(sb_http_req_t *req, void *data)
{
    sb_app_t *app = data;
    struct api_attach *a = app->api ? sb__api_attach_of(app->api) : NULL;
    const char *sha = sb_http_req_param(req, "sha");
    const char *name = sb_http_req_query(req, "name"), *type = sb_http_req_query(req, "type");
    if (!sb_attach_sha_valid(sha)) {
        refuse(req, 404, "not_found", "no such attachment");
        return;
    }
    if (!a || !a->ready) {
        sb_http_add_header(req, "Retry-After", "1");
        refuse(req, 503, "unavailable", "attachments are not available");
        return;
    }
    int rc = sb_attach_verify(&a->key, sha, name, type, sb_http_req_query(req, "exp"),
                              sb_http_req_query(req, "sig"), sb_now_ms() / 1000);
    if (rc != 0) {
        refuse(req, 403, "forbidden",
               rc == SB_ETIMEDOUT ? "this link has expired: reload the conversation"
                                  : "this link is not valid");
        return;
    }
    char path[SB_ATTACH_PATH_MAX];
    if (sb_attach_path(a->app->cfg->data_dir, sha, path, sizeof(path)) != 0) {
        refuse(req, 404, "not_found", "no such attachment");
        return;
    }
    dl_t *d = SB_NEW(dl_t);
    d->req = req;
    d->loop = app->loop;
    d->fd = -1;
    d->fs.data = d;
    d->type = type ? sb_strdup(type) : NULL;
    d->name = name ? sb_strdup(name) : NULL;
    uint64_t max = a->app->cfg->attachment_max_bytes;
    d->max = max < SERVE_DEFAULT ? SERVE_DEFAULT : max;
    sb_http_req_on_close(req, dl_gone, d);
    if (uv_fs_open(a->app->loop, &d->fs, path, O_RDONLY | O_CLOEXEC, 0, on_open) != 0)
        dl_fail(d, 500, "internal", "the attachment could not be read");
}

/* ---- Setup ---- */

api_attach_t *sb__api_attach_new(sb_app_t *app)
{
    struct api_attach *a = SB_NEW(struct api_attach);
    a->app = app;
    /* Blocking, once, at start: the key file is a few bytes under data_dir. */
    a->ready = sb_attach_key_load(&a->key, app->cfg->data_dir, app->cfg->attachment_secret) == 0;
    if (!a->ready)
        SB_LOG_WARN("attach.key", "dir=%s action=\"attachments are listed without URLs\"",
                    app->cfg->data_dir);
    sb_http_route(app->http, "GET", "/v1/attachments/{sha}", h_download, app);
    return a;
}

void sb__api_attach_free(api_attach_t *a)
{
    sb_free(a);
}

/* SPDX-License-Identifier: MIT */
/*
 * Static assets compiled into the binary (gateway/assets/, embedded by CMake):
 * GET /widget.js (the embeddable chat widget) and GET / (the demo page with the widget
 * of site `default`; config key demo_page). Served with an ETag so browsers revalidate
 * cheaply, and `Access-Control-Allow-Origin: *` on the widget, which any site embeds.
 */
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "gateway/internal.h"

extern const unsigned char sb_asset_widget_js[];
extern const size_t sb_asset_widget_js_len;
extern const unsigned char sb_asset_demo_html[];
extern const size_t sb_asset_demo_html_len;

typedef struct asset {
    const char *path;
    const char *type;
    const unsigned char *data;
    const size_t *len;
    char etag[24];
} asset_t;

static asset_t assets[] = {
    {"/widget.js", "application/javascript; charset=utf-8", sb_asset_widget_js,
     &sb_asset_widget_js_len, ""},
    {"/", "text/html; charset=utf-8", sb_asset_demo_html, &sb_asset_demo_html_len, ""},
};

static void h_asset(sb_http_req_t *req, void *data)
{
    asset_t *a = data;
    const char *inm = sb_http_req_header(req, "if-none-match");
    sb_http_add_header(req, "ETag", a->etag);
    sb_http_add_header(req, "Cache-Control", "no-cache");
    if (strcmp(a->path, "/widget.js") == 0)
        sb_http_add_header(req, "Access-Control-Allow-Origin", "*");
    if (inm && strcmp(inm, a->etag) == 0) {
        sb_http_respond(req, 304, a->type, "", 0);
        return;
    }
    sb_http_respond(req, 200, a->type, a->data, *a->len);
}

void sb__api_assets_routes(sb_app_t *app)
{
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++) {
        asset_t *a = &assets[i];
        if (strcmp(a->path, "/") == 0 && !app->cfg->demo_page)
            continue;
        char hex[65];
        sb_sha256_hex(a->data, *a->len, hex);
        snprintf(a->etag, sizeof(a->etag), "\"%.16s\"", hex);
        sb_http_route(app->http, "GET", a->path, h_asset, a);
    }
}

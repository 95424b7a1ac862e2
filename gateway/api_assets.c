/* SPDX-License-Identifier: MIT */
/*
 * Static assets compiled into the binary (gateway/assets/, embedded by CMake, so the
 * daemon serves them whatever its working directory):
 * - GET /widget.js, the embeddable chat widget (`Access-Control-Allow-Origin: *`: any
 *   site embeds it);
 * - GET /, the demo page with the widget of site `default` (config key demo_page);
 * - GET /console and /console/ (index.html) and /console/<file>, the staff web console
 *   (gateway/assets/console/: plain ES modules, no build step). Only the files listed in
 *   `assets` exist: any other /console/… path is a 404 JSON error, so no path reaches the
 *   filesystem. Console responses carry a Content-Security-Policy that allows scripts,
 *   styles and connections to this origin only (W3C CSP Level 3).
 * The demo page has its own policy: scripts (the widget) and connections (its WebSocket:
 *   CSP 3 lets 'self' match ws:/wss: of this host) from this origin only, no inline or
 *   eval'd script, no plugins, no framing; inline styles are allowed, because the page's
 *   own <style> and the widget's shadow-root <style> and style attributes are inline
 *   (styles cannot run code; docs/hardening-http.md).
 * Everything is served with an ETag and `Cache-Control: no-cache`, so browsers revalidate
 * cheaply and see a new version as soon as the daemon runs one.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/util.h"
#include "gateway/internal.h"

#define ASSET(sym)                                                                                 \
    extern const unsigned char sb_asset_##sym[];                                                   \
    extern const size_t sb_asset_##sym##_len

ASSET(widget_js);
ASSET(demo_html);
ASSET(console_index_html);
ASSET(console_console_css);
ASSET(console_app_js);
ASSET(console_api_js);
ASSET(console_queue_js);
ASSET(console_conv_js);
ASSET(console_util_js);
ASSET(console_reports_js);
ASSET(console_notifs_js);
ASSET(console_canned_js);
ASSET(console_canned_fill_js);

#define TYPE_JS   "text/javascript; charset=utf-8"
#define TYPE_CSS  "text/css; charset=utf-8"
#define TYPE_HTML "text/html; charset=utf-8"

/* Where an asset may be used from: anywhere (the widget), the demo page, the console. */
enum { FOR_ANY, FOR_DEMO, FOR_CONSOLE };

static const char console_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

static const char demo_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; font-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

typedef struct asset {
    const char *path;
    const char *type;
    const unsigned char *data;
    const size_t *len;
    int scope;
    char etag[24];
} asset_t;

static asset_t assets[] = {
    {"/widget.js", TYPE_JS, sb_asset_widget_js, &sb_asset_widget_js_len, FOR_ANY, ""},
    {"/", TYPE_HTML, sb_asset_demo_html, &sb_asset_demo_html_len, FOR_DEMO, ""},
    {"/console", TYPE_HTML, sb_asset_console_index_html, &sb_asset_console_index_html_len,
     FOR_CONSOLE, ""},
    {"/console/", TYPE_HTML, sb_asset_console_index_html, &sb_asset_console_index_html_len,
     FOR_CONSOLE, ""},
    {"/console/console.css", TYPE_CSS, sb_asset_console_console_css,
     &sb_asset_console_console_css_len, FOR_CONSOLE, ""},
    {"/console/app.js", TYPE_JS, sb_asset_console_app_js, &sb_asset_console_app_js_len, FOR_CONSOLE,
     ""},
    {"/console/api.js", TYPE_JS, sb_asset_console_api_js, &sb_asset_console_api_js_len, FOR_CONSOLE,
     ""},
    {"/console/queue.js", TYPE_JS, sb_asset_console_queue_js, &sb_asset_console_queue_js_len,
     FOR_CONSOLE, ""},
    {"/console/conv.js", TYPE_JS, sb_asset_console_conv_js, &sb_asset_console_conv_js_len,
     FOR_CONSOLE, ""},
    {"/console/util.js", TYPE_JS, sb_asset_console_util_js, &sb_asset_console_util_js_len,
     FOR_CONSOLE, ""},
    {"/console/reports.js", TYPE_JS, sb_asset_console_reports_js, &sb_asset_console_reports_js_len,
     FOR_CONSOLE, ""},
    {"/console/notifs.js", TYPE_JS, sb_asset_console_notifs_js, &sb_asset_console_notifs_js_len,
     FOR_CONSOLE, ""},
    {"/console/canned.js", TYPE_JS, sb_asset_console_canned_js, &sb_asset_console_canned_js_len,
     FOR_CONSOLE, ""},
    {"/console/canned_fill.js", TYPE_JS, sb_asset_console_canned_fill_js,
     &sb_asset_console_canned_fill_js_len, FOR_CONSOLE, ""},
};

static void h_asset(sb_http_req_t *req, void *data)
{
    asset_t *a = data;
    const char *inm = sb_http_req_header(req, "if-none-match");
    sb_http_add_header(req, "ETag", a->etag);
    sb_http_add_header(req, "Cache-Control", "no-cache");
    sb_http_add_header(req, "X-Content-Type-Options", "nosniff");
    if (a->scope == FOR_ANY)
        sb_http_add_header(req, "Access-Control-Allow-Origin", "*");
    if (a->scope == FOR_CONSOLE) {
        sb_http_add_header(req, "Content-Security-Policy", console_csp);
        sb_http_add_header(req, "Referrer-Policy", "no-referrer");
        sb_http_add_header(req, "X-Frame-Options", "DENY");
    }
    if (a->scope == FOR_DEMO) {
        sb_http_add_header(req, "Content-Security-Policy", demo_csp);
        sb_http_add_header(req, "X-Frame-Options", "DENY");
    }
    if (inm && strcmp(inm, a->etag) == 0) {
        sb_http_respond(req, 304, a->type, "", 0);
        return;
    }
    sb_http_respond(req, 200, a->type, a->data, *a->len);
}

/* Any other /console/… path: the console has no such file (nothing is read from disk). */
static void h_console_missing(sb_http_req_t *req, void *data)
{
    sb_http_add_header(req, "Cache-Control", "no-cache");
    sb_http_respond_error(req, 404, "not_found", "no such console file");
}

void sb__api_assets_routes(sb_app_t *app)
{
    for (size_t i = 0; i < SB_ARRAY_LEN(assets); i++) {
        asset_t *a = &assets[i];
        if (a->scope == FOR_DEMO && !app->cfg->demo_page)
            continue;
        char hex[65];
        sb_sha256_hex(a->data, *a->len, hex);
        snprintf(a->etag, sizeof(a->etag), "\"%.16s\"", hex);
        sb_http_route(app->http, "GET", a->path, h_asset, a);
    }
    sb_http_route(app->http, "GET", "/console/*", h_console_missing, NULL);
}

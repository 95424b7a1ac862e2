/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/staff (docs/contract.md §5): the staff members, for the console's assignee picker
 * and for bots that hand conversations on. Each is {"id","name","role","channels","online"}
 * (channels: null for every channel, else a list; online: a live feed of theirs is open on
 * some node, sb_store_online). Online first, then by name. No email addresses: agents see
 * who their colleagues are, not how to reach them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/util.h"
#include "gateway/internal.h"

static int by_online_then_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int ox = json_is_true(json_object_get(x, "online")),
        oy = json_is_true(json_object_get(y, "online"));
    if (ox != oy)
        return oy - ox;
    const char *nx = json_string_value(json_object_get(x, "name"));
    const char *ny = json_string_value(json_object_get(y, "name"));
    int d = strcmp(nx ? nx : "", ny ? ny : "");
    if (d)
        return d;
    const char *ix = json_string_value(json_object_get(x, "id"));
    const char *iy = json_string_value(json_object_get(y, "id"));
    return strcmp(ix ? ix : "", iy ? iy : "");
}

static bool has(const json_t *ids, const char *id)
{
    for (size_t i = 0; id && i < json_array_size(ids); i++) {
        const char *s = json_string_value(json_array_get(ids, i));
        if (s && strcmp(s, id) == 0)
            return true;
    }
    return false;
}

/* A member's channels as the API gives them: null, or a list (a record may hold "a,b"). */
static json_t *channels_of(const json_t *m)
{
    const json_t *ch = json_object_get(m, "channels");
    if (!ch || json_is_null(ch))
        return json_null();
    if (json_is_array(ch))
        return json_deep_copy(ch);
    json_t *out = json_array();
    const char *s = json_string_value(ch);
    while (s && *s) {
        s += strspn(s, ", ");
        size_t len = strcspn(s, ", ");
        if (len)
            json_array_append_new(out, json_stringn(s, len));
        s += len;
    }
    return out;
}

/* The online ids arrived; c->body holds the staff list read first. */
static void on_online(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    const json_t *online = json_object_get(result, "staff");
    const json_t *staff = json_object_get(c->body, "staff");
    size_t n = json_array_size(staff), k = 0;
    json_t **items = sb_malloc((n ? n : 1) * sizeof(*items));
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(staff, i);
        const char *id = json_string_value(json_object_get(m, "id"));
        if (!id)
            continue;
        json_t *name = json_object_get(m, "name"), *role = json_object_get(m, "role");
        items[k++] = json_pack("{s:s, s:O, s:O, s:o, s:b}", "id", id, "name",
                               name ? name : json_null(), "role", role ? role : json_null(),
                               "channels", channels_of(m), "online", has(online, id));
    }
    qsort(items, k, sizeof(*items), by_online_then_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, items[i]);
    sb_free(items);
    json_t *body = json_pack("{s:o}", "items", arr);
    sb__api_reply(c, 200, body);
    json_decref(body);
}

static void on_staff(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (sb__api_settled(c, status, errmsg))
        return;
    json_decref(c->body);
    c->body = json_incref(result); /* a GET has no body: the list waits here */
    c->busy = true;
    sb__api_begin(c, sb_store_online(c->app->store, on_online, c));
}

static void staff_authed(api_call_t *c)
{
    c->busy = true;
    sb__api_begin(c, sb_store_staff_list(c->app->store, on_staff, c));
}

static void h_staff(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, staff_authed);
}

void sb__api_staff_list_routes(sb_app_t *app)
{
    sb_http_route(app->http, "GET", "/v1/staff", h_staff, app);
}

/* SPDX-License-Identifier: MIT */
/*
 * A test hook for delivery outcomes, built into SB_TESTING builds only (the dev and tsan
 * presets; never release) and active only when the daemon starts with
 * SWITCHBOARD_TEST_DELIVERY set to a comma-separated list of channels ("email"):
 *  - those channels count as served (as if their connector had started), so replies on
 *    them are stored and put in their outbox instead of being refused with 422;
 *  - POST /v1/testing/delivery (admin token) records one delivery outcome through
 *    sb_store_delivery_record, as the outbox engine does after an attempt. Body:
 *    {"conv","mid","channel","ok","final","reason","provider_id","retry_at","account"}.
 * No connector delivers email yet; this lets the end-to-end tests (tests/e2e/
 * delivery.test.mjs) show outcomes in the console and retry them (docs/delivery.md).
 */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "gateway/api_input.h"

#ifdef SB_TESTING

static void on_recorded(int status, json_t *result, const char *errmsg, void *data)
{
    api_call_t *c = data;
    if (!sb__api_settled(c, status, errmsg))
        sb__api_reply(c, 200, result);
}

static void delivery_authed(api_call_t *c)
{
    if (!sb__api_parse_body(c))
        return;
    const json_t *b = c->body;
    const json_t *at = json_object_get(b, "retry_at");
    sb_delivery_t d = {
        .conv = json_string_value(json_object_get(b, "conv")),
        .mid = json_string_value(json_object_get(b, "mid")),
        .channel = json_string_value(json_object_get(b, "channel")),
        .account = json_string_value(json_object_get(b, "account")),
        .ok = json_is_true(json_object_get(b, "ok")),
        .final = json_is_true(json_object_get(b, "final")),
        .reason = json_string_value(json_object_get(b, "reason")),
        .provider_id = json_string_value(json_object_get(b, "provider_id")),
        .retry_at = json_integer_value(at) > 0 ? (uint64_t)json_integer_value(at) : 0,
    };
    if (!d.conv || !d.mid || !d.channel) {
        sb__api_fail(c, 400, "bad_request", "conv, mid and channel are required");
        return;
    }
    c->busy = true;
    sb__api_begin(c, sb_store_delivery_record(c->app->store, &d, on_recorded, c));
}

static void h_delivery(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_ADMIN, delivery_authed);
}

void sb__api_testing_routes(sb_app_t *app)
{
    const char *list = getenv("SWITCHBOARD_TEST_DELIVERY");
    if (!list || !*list)
        return;
    char *copy = sb_strdup(list), *save = NULL;
    for (char *ch = strtok_r(copy, ",", &save); ch; ch = strtok_r(NULL, ",", &save))
        if (sb_store_serve(app->store, ch) == 0)
            SB_LOG_WARN("testing.delivery", "channel=%s served by the test hook", ch);
    sb_free(copy);
    sb_http_route(app->http, "POST", "/v1/testing/delivery", h_delivery, app);
}

#else

void sb__api_testing_routes(sb_app_t *app)
{
    (void)app;
}

#endif

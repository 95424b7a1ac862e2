/* SPDX-License-Identifier: MIT */
/*
 * GET /v1/reports (docs/contract.md §5): the accountability report of core/reports.h over
 * [from, to] (ms since the epoch; the last 7 days by default), for one channel or all.
 * Agents, execs and admins read it, as they read /v1/stats; bots are refused. A token
 * with a channels scope gets the figures of its channels only: the scope goes into the
 * query, so percentiles, breaches and people are computed from those channels' facts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/reports.h"
#include "core/util.h"
#include "gateway/internal.h"

#define WEEK_MS     (7 * 86400000LL)
#define MAX_SPAN_MS (400 * 86400000LL) /* a report spans at most about a year */

/* A bound: digits only, at most 15 of them. False (and a 400) otherwise. */
static bool bound(api_call_t *c, const char *name, int64_t *out)
{
    const char *v = sb_http_req_query(c->req, name);
    if (!v)
        return true;
    size_t n = strspn(v, "0123456789");
    if (n == 0 || n > 15 || v[n]) {
        sb__api_fail(c, 400, "bad_request", "%s must be a time in ms since the epoch", name);
        return false;
    }
    *out = strtoll(v, NULL, 10);
    return true;
}

static void reports_authed(api_call_t *c)
{
    int64_t now = sb_now_ms();
    sb_report_query_t q = {.to_ms = now};
    if (!bound(c, "to", &q.to_ms))
        return;
    q.from_ms = q.to_ms > WEEK_MS ? q.to_ms - WEEK_MS : 0;
    if (!bound(c, "from", &q.from_ms))
        return;
    if (q.to_ms < q.from_ms) {
        sb__api_fail(c, 400, "bad_request", "from must not be after to");
        return;
    }
    if (q.to_ms - q.from_ms > MAX_SPAN_MS) {
        sb__api_fail(c, 400, "bad_request", "a report spans at most 400 days");
        return;
    }
    q.channel = sb_http_req_query(c->req, "channel");
    if (q.channel && sb_channel_index(q.channel) < 0) {
        sb__api_fail(c, 400, "bad_request", "channel must be one of %s", SB_CHANNEL_LIST_TEXT);
        return;
    }
    unsigned scope = sb__api_scope(c->who);
    if (scope != SB_SCOPE_ALL) {
        q.scoped = true;
        q.channels = scope;
    }
    c->busy = true;
    sb__api_begin(c, sb_store_report(c->app->store, &q, sb__api_on_result, c));
}

static void h_reports(sb_http_req_t *req, void *data)
{
    sb__api_authenticate(sb__api_call_new(data, req), SB_ROLE_AGENT, reports_authed);
}

void sb__api_reports_routes(sb_app_t *app)
{
    sb_http_route(app->http, "GET", "/v1/reports", h_reports, app);
}

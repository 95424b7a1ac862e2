/* SPDX-License-Identifier: MIT */
/*
 * The honest wait of the web chat (docs/sla.md, "Honest wait"; the estimate is
 * core/wait.h): every REFRESH_MS one sb_store_stats call brings the figures it needs
 * (recent first-response times on the channel, the channel's queue, the staff online
 * now), and at once when a staff member comes online or goes (their `presence` event);
 * the estimate is then worked out against the channel policy's calendar, and when
 * it changes from what the visitors were last told, every welcomed visitor gets a
 * {"type":"status","event":"wait",…} frame. The welcome and the conversation status
 * frames carry the estimate of their moment (sb__webchat_wait_json).
 *
 * The queue ahead is the channel's whole queue: a visitor about to write is behind all
 * of it, and one figure for all keeps the broadcast one frame.
 */
#include "connectors/webchat/internal.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define REFRESH_MS 10000

void sb__webchat_wait_now(const webchat_t *wc, sb_wait_t *out)
{
    sb_wait_in_t in = wc->wait_in;
    in.cal = wc->cal;
    in.now_ms = sb_now_ms();
    sb_wait_estimate(&in, out);
}

void sb__webchat_wait_json(const webchat_t *wc, json_t *frame)
{
    sb_wait_t w;
    sb__webchat_wait_now(wc, &w);
    sb_wait_to_json(&w, frame);
}

/* Tells every welcomed visitor the estimate w. */
static void broadcast(webchat_t *wc, const sb_wait_t *w)
{
    json_t *f = json_pack("{s:s, s:s}", "type", "status", "event", "wait");
    sb_wait_to_json(w, f);
    for (visitor_t *v = wc->all; v; v = v->all_next)
        if (v->ws && v->state == V_READY)
            sb__webchat_send_json(v, f);
    json_decref(f);
}

static void on_stats(int status, json_t *res, const char *errmsg, void *data)
{
    webchat_t *wc = data;
    wc->pending--;
    wc->refreshing = false;
    if (wc->stopping) {
        sb__webchat_maybe_free(wc);
        return;
    }
    if (wc->refresh_again) { /* asked for while this read was on its way: read again */
        wc->refresh_again = false;
        sb__webchat_wait_refresh(wc);
    }
    if (status) {
        SB_LOG_DEBUG("webchat.wait", "err=%s", sb_err_name(status));
        return; /* the last figures stand */
    }
    sb_wait_in_from_stats(res, SB__WC_CHANNEL, &wc->wait_in);
    sb_wait_t w;
    sb__webchat_wait_now(wc, &w);
    if (!sb_wait_changed(&wc->wait, &w))
        return;
    broadcast(wc, &w);
    wc->wait = w;
}

void sb__webchat_wait_refresh(webchat_t *wc)
{
    if (wc->refreshing) {
        wc->refresh_again = true;
        return;
    }
    if (sb_store_stats(wc->env.store, on_stats, wc) == 0) {
        wc->pending++;
        wc->refreshing = true;
    }
}

static void on_timer(uv_timer_t *t)
{
    webchat_t *wc = t->data;
    sb__webchat_wait_refresh(wc);
    sb__webchat_sweep(wc, sb__webchat_now(wc));
}

void sb__webchat_wait_start(webchat_t *wc)
{
    wc->timer = SB_NEW(uv_timer_t);
    uv_timer_init(wc->env.loop, wc->timer);
    wc->timer->data = wc;
    uv_timer_start(wc->timer, on_timer, 0, REFRESH_MS);
}

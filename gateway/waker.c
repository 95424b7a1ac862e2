/* SPDX-License-Identifier: MIT */
/*
 * The snooze waker of waker.h: every second, one `sb_wake` call per shard, skipped
 * while the previous round is still in flight or the function library is not loaded.
 * A shard that reports more due conversations than one call wakes is called again at
 * once. The exactly-once guarantee is the function's (ZRANGE + ZREM in one call), so
 * every node runs this timer and none needs to be elected.
 */
#include <stdint.h>

#include "core/err.h"
#include "core/log.h"
#include "gateway/waker.h"

#define WAKE_INTERVAL_MS 1000

static struct {
    sb_app_t *app;
    uv_timer_t timer;
    unsigned inflight;
    bool running;
} waker;

static void on_woke(int status, json_t *result, const char *errmsg, void *data);

static void wake_shard(unsigned shard)
{
    if (sb_store_wake(waker.app->store, shard, on_woke, (void *)(uintptr_t)shard) == 0)
        waker.inflight++;
}

static void on_woke(int status, json_t *result, const char *errmsg, void *data)
{
    unsigned shard = (unsigned)(uintptr_t)data;
    waker.inflight--;
    if (!waker.running)
        return;
    if (status) {
        SB_LOG_WARN("snooze.wake", "shard=%u err=%s what=\"%s\"", shard, sb_err_name(status),
                    errmsg ? errmsg : "");
        return;
    }
    size_t n = json_array_size(json_object_get(result, "woke"));
    if (n)
        SB_LOG_INFO("snooze.wake", "shard=%u woke=%zu", shard, n);
    if (json_is_true(json_object_get(result, "more")))
        wake_shard(shard);
}

static void on_tick(uv_timer_t *t)
{
    if (waker.inflight || !sb_store_ready(waker.app->store))
        return;
    for (unsigned i = 0; i < sb_store_opts(waker.app->store)->shards; i++)
        wake_shard(i);
}

void sb_app_waker_start(sb_app_t *app)
{
    if (waker.running)
        return;
    waker.app = app;
    waker.running = true;
    uv_timer_init(app->loop, &waker.timer);
    uv_unref((uv_handle_t *)&waker.timer); /* never the reason the loop stays alive */
    uv_timer_start(&waker.timer, on_tick, WAKE_INTERVAL_MS, WAKE_INTERVAL_MS);
}

void sb_app_waker_stop(void)
{
    if (!waker.running)
        return;
    waker.running = false;
    uv_timer_stop(&waker.timer);
    uv_close((uv_handle_t *)&waker.timer, NULL);
}

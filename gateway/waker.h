/* SPDX-License-Identifier: MIT */
/*
 * The snooze waker: a once-a-second timer on the loop that asks every shard to wake its
 * snoozed conversations whose time has passed (sb_store_wake). Safe with several nodes:
 * each wake-up happens exactly once, inside the Redis Function. One per process.
 */
#ifndef SB_GATEWAY_WAKER_H
#define SB_GATEWAY_WAKER_H

#include "gateway/app.h"

/** Starts the timer on app->loop (app and its store must outlive sb_app_waker_stop). */
void sb_app_waker_start(sb_app_t *app);

/**
 * Stops the timer and closes its handle (on the loop); replies still in flight are
 * ignored. Call before the store is freed; harmless if the waker never started.
 */
void sb_app_waker_stop(void);

#endif

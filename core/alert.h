/* SPDX-License-Identifier: MIT */
/*
 * Alerts for the people who can fix a connector account: when a provider refuses our
 * credentials (a Mastodon token answered 401, a Bluesky session that cannot be made) the
 * connector pauses that account and tells the admins. The alert is a console notification
 * (core/store.h, sb_store_notif_add) in the list of every staff member whose role is
 * admin, shown by the console's bell and GET /v1/notifications:
 *
 *   {"id":"<channel>:<account>:<state>:<ts>","type":"connector","channel":…,"account":…,
 *    "state":"paused"|"resumed","reason":…,"ts":ms}
 *
 * The connector also logs it (WARN) and counts it in its metrics; the alert is what a
 * person sees without reading logs.
 */
#ifndef SB_CORE_ALERT_H
#define SB_CORE_ALERT_H

#include "core/store.h"

/** Longest reason kept in an alert (bytes; longer text is cut on a character). */
#define SB_ALERT_REASON_MAX 300

/**
 * Adds the alert to every admin's notifications (the staff list as sb_store_staff_cached
 * keeps it). Fire and forget: failures are logged (`alert.add`). store is borrowed and
 * must outlive the Redis replies (it does: the daemon frees it after its client stops).
 * state is "paused" or "resumed"; reason may be NULL. ts is the alert's time (ms).
 * 0, or SB_EINVAL for a missing channel, account or state.
 */
int sb_alert_admins(sb_store_t *store, const char *channel, const char *account, const char *state,
                    const char *reason, long long ts);

/** The alert's JSON text as it is stored (sb_free it), or NULL for bad arguments. */
char *sb_alert_json(const char *channel, const char *account, const char *state, const char *reason,
                    long long ts);

#endif

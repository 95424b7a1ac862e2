/* SPDX-License-Identifier: MIT */
/* Connector account alerts to the admins' console notifications (alert.h). */
#include <stdio.h>
#include <string.h>

#include "core/alert.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#define STAFF_TTL_MS 2000 /* the staff list is read again after this (shared by callers) */

typedef struct alert_job {
    sb_store_t *store;
    char *member;
    long long ts;
} alert_job_t;

char *sb_alert_json(const char *channel, const char *account, const char *state, const char *reason,
                    long long ts)
{
    if (!channel || !*channel || !account || !*account || !state || !*state)
        return NULL;
    size_t len = reason ? strlen(reason) : 0;
    if (len > SB_ALERT_REASON_MAX) {
        len = SB_ALERT_REASON_MAX;
        while (len > 0 && ((unsigned char)reason[len] & 0xC0) == 0x80)
            len--;
    }
    char id[256];
    snprintf(id, sizeof(id), "%.64s:%.128s:%.16s:%lld", channel, account, state, ts);
    json_t *n = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "type", "connector", "channel",
                          channel, "account", account, "state", state);
    if (n) {
        json_object_set_new(n, "reason", json_stringn(reason ? reason : "", len));
        json_object_set_new(n, "ts", json_integer(ts));
    }
    char *out = NULL;
    if (!n || sb_json_dumps(n, JSON_COMPACT | JSON_PRESERVE_ORDER, &out, NULL) != 0)
        out = NULL;
    json_decref(n);
    return out;
}

static void on_added(int status, json_t *result, const char *errmsg, void *data)
{
    (void)result;
    if (status)
        SB_LOG_WARN("alert.add", "err=%s reason=\"%s\"", sb_err_name(status), errmsg ? errmsg : "");
    (void)data;
}

static void on_staff(int status, const json_t *staff, void *data)
{
    alert_job_t *j = data;
    size_t n = json_array_size(staff), k = 0;
    const char **sids = sb_calloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const json_t *m = json_array_get(staff, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        const char *id = json_string_value(json_object_get(m, "id"));
        if (id && role && strcmp(role, "admin") == 0)
            sids[k++] = id;
    }
    if (k == 0)
        SB_LOG_WARN("alert.add", "admins=0 status=%s: nobody to tell", sb_err_name(status));
    else if (sb_store_notif_add(j->store, sids, k, j->ts, j->member, on_added, NULL) != 0)
        SB_LOG_WARN("alert.add", "admins=%zu err=not_sent", k);
    sb_free(sids);
    sb_free(j->member);
    sb_free(j);
}

int sb_alert_admins(sb_store_t *store, const char *channel, const char *account, const char *state,
                    const char *reason, long long ts)
{
    char *member = sb_alert_json(channel, account, state, reason, ts);
    if (!member || !store) {
        sb_free(member);
        return SB_EINVAL;
    }
    alert_job_t *j = SB_NEW(alert_job_t);
    *j = (alert_job_t){.store = store, .member = member, .ts = ts};
    sb_store_staff_cached(store, STAFF_TTL_MS, on_staff, j);
    return 0;
}

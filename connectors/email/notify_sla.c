/* SPDX-License-Identifier: MIT */
/*
 * SLA steps by mail (docs/email.md, "Staff by email"; docs/sla.md, "Notifications"): an
 * sla_warning, sla_breach or escalated event of the feed is mailed to each person its
 * targets name (core/sla_targets.h against the whole staff list, read again at most
 * every STAFF_TTL_MS) whose notify preference is not `none`. The mail says which clock,
 * when it is or was due, quotes the customer's last message and links the console; its
 * Reply-To is the member's signed reply address, as every notification mail's
 * (notify.c, which also makes sure one node only sends each).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "connectors/email/notify.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/sla_targets.h"

#define STAFF_TTL_MS 2000 /* the staff list (roles, scopes, preferences) is read again after */
#define TEXT_IN_MAIL 4000 /* bytes of the customer's text quoted in the mail */
#define PAGE         100  /* transcript entries read from the start of the wait */

/* ---- Whom ---- */

static void dispatch(em_t *em, const json_t *ev, const json_t *staff)
{
    json_t *m = json_object_get(ev, "message");
    const char *channel = json_string_value(json_object_get(m, "channel"));
    json_t *who = sb_sla_targets_expand(json_object_get(m, "targets"), channel, staff);
    for (size_t i = 0; i < json_array_size(who); i++) {
        json_t *s = json_array_get(who, i);
        const char *pref = json_string_value(json_object_get(s, "notify"));
        if (pref && strcmp(pref, "none") != 0)
            sb__em_notify_one(em, s, ev, false, true);
    }
    json_decref(who);
}

/* An SLA event waiting for the staff list (sb_store_staff_cached). */
typedef struct sla_wait {
    em_t *em;
    json_t *ev;
} sla_wait_t;

static void on_staff(int status, const json_t *staff, void *data)
{
    (void)status; /* logged by the store; a list read before is used */
    sla_wait_t *w = data;
    if (!w->em->stopping && staff)
        dispatch(w->em, w->ev, staff);
    json_decref(w->ev);
    sb__em_unref(w->em);
    sb_free(w);
}

void sb__em_notify_sla_event(em_t *em, json_t *ev)
{
    sla_wait_t *w = SB_NEW(sla_wait_t);
    w->em = em;
    w->ev = ev;
    em->pending++;
    sb_store_staff_cached(em->env.store, STAFF_TTL_MS, on_staff, w);
}

/* ---- What the mail says ---- */

static const char *clock_name(const char *clock)
{
    if (clock && strcmp(clock, "first_response") == 0)
        return "first response";
    if (clock && strcmp(clock, "next_response") == 0)
        return "next response";
    if (clock && strcmp(clock, "resolution") == 0)
        return "resolution";
    return clock ? clock : "response";
}

/* A span a person reads: "45s", "2m", "1h 5m", "3d". */
static void span(long long ms, char *out, size_t cap)
{
    long long s = (ms < 0 ? -ms : ms) / 1000;
    if (s < 60)
        snprintf(out, cap, "%llds", s);
    else if (s < 3600)
        snprintf(out, cap, "%lldm", s / 60);
    else if (s < 86400)
        snprintf(out, cap, s % 3600 >= 60 ? "%lldh %lldm" : "%lldh", s / 3600, s % 3600 / 60);
    else
        snprintf(out, cap, "%lldd", s / 86400);
}

/* "2026-11-30 14:05 UTC" */
static void when(long long ms, char *out, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

static void compose_and_send(em_note_t *n, const char *staff_name, const char *last)
{
    json_t *m = n->sla;
    const char *type = json_string_value(json_object_get(m, "type"));
    const char *clock = clock_name(json_string_value(json_object_get(m, "clock")));
    const char *policy = json_string_value(json_object_get(m, "policy"));
    long long due = (long long)json_number_value(json_object_get(m, "due"));
    long long ts = json_integer_value(json_object_get(m, "ts"));
    long long percent = (long long)json_number_value(json_object_get(m, "percent"));
    bool warning = strcmp(type, "sla_warning") == 0;
    char left[32], at[40], tag[SB__EM_TAG_LEN + 1];
    span(due - ts, left, sizeof(left));
    when(due, at, sizeof(at));
    sb__em_tag(n->cid, tag);
    const char *about = n->subject && *n->subject ? n->subject : n->who ? n->who : "(no subject)";
    char *state = warning                 ? sb_asprintf("%s due in %s", clock, left)
                  : due && ts > due + 999 ? sb_asprintf("%s overdue by %s", clock, left)
                                          : sb_asprintf("%s overdue", clock);
    char *subject = sb_asprintf("%s %s — %s [#%s]",
                                warning                           ? "[SLA warning]"
                                : strcmp(type, "sla_breach") == 0 ? "[SLA breach]"
                                                                  : "[Escalated]",
                                about, state, tag);
    char *text = sb_asprintf(
        "The %s of this conversation %s %s (policy %s, %lld %%).\n\n%s wrote:\n\n%.*s%s\n\n-- \n"
        "Reply to this mail to answer %s (your reply goes to them as your answer, without the "
        "quoted part).\nOpen it in the console: %s/console#/c/%s\n",
        clock, warning ? "is due" : "was due", at, policy ? policy : "-", percent,
        n->who ? n->who : "The customer", TEXT_IN_MAIL, last ? last : "(no message)",
        last && strlen(last) > TEXT_IN_MAIL ? "…" : "", n->who ? n->who : "them", n->em->public_url,
        n->cid);
    if (sb__em_note_compose(n, staff_name, subject, text))
        sb__em_note_send(n);
    else
        sb__em_note_end(n);
    sb_free(state);
    sb_free(subject);
    sb_free(text);
}

typedef struct sla_job {
    em_note_t *n;
    char *staff_name;
} sla_job_t;

/* The transcript from the start of the wait: the customer's last message is quoted. */
static void on_messages(int status, json_t *result, const char *errmsg, void *data)
{
    (void)errmsg;
    sla_job_t *j = data;
    em_t *em = j->n->em;
    if (em->stopping) {
        sb__em_note_end(j->n);
    } else {
        const char *last = NULL;
        json_t *items = status == 0 ? json_object_get(result, "items") : NULL;
        for (size_t i = 0; i < json_array_size(items); i++) {
            json_t *x = json_array_get(items, i);
            const char *kind = json_string_value(json_object_get(x, "kind"));
            const char *dir = json_string_value(json_object_get(x, "dir"));
            const char *text = json_string_value(json_object_get(x, "text"));
            if (kind && dir && text && strcmp(kind, "message") == 0 && strcmp(dir, "in") == 0)
                last = text;
        }
        compose_and_send(j->n, j->staff_name, last);
    }
    sb_free(j->staff_name);
    sb_free(j);
    sb__em_unref(em);
}

void sb__em_sla_conv(em_note_t *n, const json_t *conv, char *staff_name)
{
    em_t *em = n->em;
    sla_job_t *j = SB_NEW(sla_job_t);
    j->n = n;
    j->staff_name = staff_name;
    /* seqs are "<ms>-<n>": from the first one of the wait on */
    json_t *since = json_object_get(conv, "awaiting_since");
    char after[48];
    bool from_wait = json_is_integer(since) && json_integer_value(since) > 0;
    if (from_wait)
        snprintf(after, sizeof(after), "%lld-0", (long long)json_integer_value(since) - 1);
    em->pending++;
    if (sb_store_messages(em->env.store, n->cid, from_wait ? after : NULL, PAGE, on_messages, j) !=
        0) {
        em->pending--;
        compose_and_send(n, staff_name, NULL);
        sb_free(j->staff_name);
        sb_free(j);
    }
}

/* SPDX-License-Identifier: MIT */
/*
 * The delivery engine of outbox.h, part two: one entry at the head of a lane's stream,
 * from attempt to acknowledgement.
 *
 *   redelivered and a check hook? → check: delivered already → XACK, done
 *   deliver(entry, attempt) → the owner answers with an outcome
 *   ok            → final, delivered
 *   temporary     → attempts+1; retried after the backoff, or final (dead) after the last
 *   rate_limited  → retried at the provider's time (the backoff when it gave none)
 *   permanent     → final (dead)
 *   auth          → the lane pauses (on_lane_state); the entry waits for the resume
 *   record hook?  → the outcome is stored first; a failed store is retried with backoff
 *                   and nothing else happens meanwhile (no XACK, no new attempt)
 *   then          → ok: XACK; dead: copied to the dead-letter stream, XACK; else wait
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "core/outbox_internal.h"
#include "core/sys.h"
#include "core/util.h"

const char *sb_outbox_field(const sb_outbox_entry_t *e, const char *name, size_t *len)
{
    for (size_t i = 0; i < e->nfields; i++)
        if (strcmp(e->names[i], name) == 0) {
            if (len)
                *len = e->lens[i];
            return e->values[i];
        }
    return NULL;
}

int sb_outbox_reply_of(const sb_outbox_entry_t *e, char *conv, char *mid, json_t **m)
{
    size_t mlen = 0;
    const char *c = sb_outbox_field(e, "conv", NULL);
    const char *mj = sb_outbox_field(e, "m", &mlen);
    *m = NULL;
    if (!c || !*c || !mj || strlen(c) >= SB_ID_MAX)
        return SB_EINVAL;
    json_t *j = json_loadb(mj, mlen, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "id"));
    if (!j || !id || !*id || strlen(id) >= SB_ID_MAX ||
        !json_string_value(json_object_get(j, "text"))) {
        json_decref(j);
        return SB_EINVAL;
    }
    snprintf(conv, SB_ID_MAX, "%s", c);
    snprintf(mid, SB_ID_MAX, "%s", id);
    *m = j;
    return 0;
}

void sb__ob_entry_view(const sb__ob_stream_t *s, const sb__ob_entry_t *e, sb_outbox_entry_t *v,
                       unsigned attempt)
{
    *v = (sb_outbox_entry_t){.stream = s->key,
                             .index = s->index,
                             .id = e->id,
                             .names = (const char *const *)e->names,
                             .values = (const char *const *)e->values,
                             .lens = e->lens,
                             .nfields = e->nfields,
                             .redelivered = e->redelivered,
                             .attempt = attempt};
}

void sb__ob_entry_dispose(sb__ob_entry_t *e)
{
    for (size_t i = 0; i < e->nfields; i++) {
        sb_free(e->names[i]);
        sb_free(e->values[i]);
    }
    sb_free(e->names);
    sb_free(e->values);
    sb_free(e->lens);
    sb_free(e->conv);
    sb_free(e->mid);
    memset(e, 0, sizeof(*e));
}

uint64_t sb__ob_backoff(const sb_outbox_t *o, unsigned failures)
{
    uint64_t delay = o->opts.retry_base_ms;
    for (unsigned i = 1; i < failures && delay < o->opts.retry_max_ms; i++)
        delay *= 2;
    return delay > o->opts.retry_max_ms ? o->opts.retry_max_ms : delay;
}

static void clear_outcome(sb__ob_stream_t *s)
{
    s->have_outcome = false;
    sb_free(s->reason);
    sb_free(s->provider_id);
    s->reason = s->provider_id = NULL;
}

/* Acknowledges the head entry and drops it; the next one starts fresh. */
static void ack_pop(sb__ob_stream_t *s)
{
    sb__ob_entry_t *e = &s->ent[s->head];
    const char *id = e->id;
    sb__ob_xack(s, &id, 1);
    sb__ob_entry_dispose(e);
    s->head = (s->head + 1) % SB__OB_BATCH;
    s->attempts = s->rec_failures = 0;
    s->next_at = 0;
    s->checked = false;
    s->phase = SB__OB_IDLE;
    clear_outcome(s);
    if (--s->n == 0) {
        s->head = 0;
        s->dirty = true;
    }
}

static void on_dead_added(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_outbox_lane_t *l = data;
    if (!sb__ob_ref_done(l) && status != 0)
        SB__OB_LOG(l->o, SB_LOG_WARN, "dead", "lane=%s err=%s", l->name, sb_err_name(status));
}

/* Copies the head entry to the lane's capped dead-letter stream (then acks it). */
static void dead_letter(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    const sb__ob_entry_t *e = &s->ent[s->head];
    char maxlen[24], attempts[16];
    snprintf(maxlen, sizeof(maxlen), "%u", l->o->opts.dead_maxlen);
    snprintf(attempts, sizeof(attempts), "%u", s->attempts);
    size_t cap = 16 + 2 * e->nfields;
    const char **argv = sb_calloc(cap, sizeof(char *));
    size_t *lens = sb_calloc(cap, sizeof(size_t));
    int argc = 0;
#define ARG(p, n) (argv[argc] = (p), lens[argc++] = (n))
#define STR(p)    ARG(p, strlen(p))
    STR("XADD");
    STR(l->dead_key);
    STR("MAXLEN");
    STR("~");
    STR(maxlen);
    STR("*");
    STR("stream");
    STR(s->key);
    STR("id");
    STR(e->id);
    STR("reason");
    STR(s->reason ? s->reason : "");
    STR("attempts");
    STR(attempts);
    for (size_t i = 0; i < e->nfields; i++) {
        STR(e->names[i]);
        ARG(e->values[i], e->lens[i]);
    }
#undef STR
#undef ARG
    if (sb__ob_command(l, on_dead_added, l, argc, argv, lens) != 0)
        SB__OB_LOG(l->o, SB_LOG_WARN, "dead", "lane=%s entry=%s err=queue_full", l->name, e->id);
    sb_free(argv);
    sb_free(lens);
}

/* The outcome of the head entry takes effect (after its record, if any). */
static void apply(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    const sb__ob_entry_t *e = &s->ent[s->head];
    s->phase = SB__OB_IDLE;
    if (s->kind == SB_OUTCOME_OK) {
        l->stats.ok++;
        SB__OB_LOG(l->o, SB_LOG_DEBUG, "delivered", "lane=%s entry=%s provider_id=%s", l->name,
                   e->id, s->provider_id ? s->provider_id : "");
        ack_pop(s);
    } else if (s->final) {
        l->stats.dead++;
        SB__OB_LOG(l->o, SB_LOG_WARN, "dead",
                   "lane=%s stream=%s entry=%s attempts=%u reason=\"%s\"", l->name, s->key, e->id,
                   s->attempts, s->reason ? s->reason : "");
        dead_letter(s);
        ack_pop(s);
    } else {
        if (s->kind == SB_OUTCOME_RATE_LIMITED)
            l->stats.rate_limited++;
        else
            l->stats.retry++;
        s->next_at = (int64_t)s->retry_at;
        SB__OB_LOG(l->o, SB_LOG_INFO, "retry",
                   "lane=%s entry=%s attempt=%u reason=\"%s\" retry_in_ms=%lld", l->name, e->id,
                   s->attempts, s->reason ? s->reason : "", (long long)(s->next_at - sb_now_ms()));
        clear_outcome(s);
    }
}

/* ---- Record and check hooks ---- */

static bool said_delivered(json_t *result)
{
    const char *state = json_string_value(json_object_get(result, "state"));
    return state && strcmp(state, "delivered") == 0;
}

static void fill_record(const sb__ob_stream_t *s, sb_outbox_entry_t *view, sb_outbox_record_t *r)
{
    const sb__ob_entry_t *e = &s->ent[s->head];
    sb_outbox_lane_t *l = s->lane;
    sb__ob_entry_view(s, e, view, s->attempts + 1);
    *r = (sb_outbox_record_t){.conv = e->conv,
                              .mid = e->mid,
                              .channel = l->channel,
                              .account = l->account,
                              .ok = s->kind == SB_OUTCOME_OK,
                              .final = s->final,
                              .reason = s->reason ? s->reason : "",
                              .provider_id = s->provider_id ? s->provider_id : "",
                              .retry_at = s->final ? 0 : s->retry_at,
                              .kind = s->kind,
                              .entry = view};
}

/*
 * The store refused the record for good (SB_EINVAL, SB_ENOTFOUND: the entry names no
 * conversation or message it knows), so retrying the record would hold the stream's head
 * forever. The outcome takes effect unrecorded: ok is acknowledged; a failure becomes a
 * dead letter at once (nobody can be told about it in a transcript, so it is kept where
 * staff see it: the lane's dead letters). True if the status was such a refusal.
 */
static bool record_refused(sb__ob_stream_t *s, int status, const char *errmsg)
{
    if (status != SB_EINVAL && status != SB_ENOTFOUND)
        return false;
    sb_outbox_lane_t *l = s->lane;
    SB__OB_LOG(l->o, SB_LOG_WARN, "record_refused", "lane=%s entry=%s err=%s what=\"%s\"", l->name,
               s->ent[s->head].id, sb_err_name(status), errmsg ? errmsg : "");
    s->rec_failures = 0;
    if (s->kind != SB_OUTCOME_OK)
        s->final = true;
    apply(s);
    return true;
}

static void on_recorded(int status, json_t *result, const char *errmsg, void *data)
{
    sb__ob_stream_t *s = data;
    sb_outbox_lane_t *l = s->lane;
    if (sb__ob_ref_done(l) || s->phase != SB__OB_RECORD)
        return;
    if (status != 0 && record_refused(s, status, errmsg)) {
        sb__ob_pump(l->o);
        return;
    }
    if (status != 0) {
        uint64_t d = sb__ob_backoff(l->o, ++s->rec_failures);
        SB__OB_LOG(l->o, SB_LOG_WARN, "record",
                   "lane=%s entry=%s err=%s what=\"%s\" retry_in_ms=%llu", l->name,
                   s->ent[s->head].id, sb_err_name(status), errmsg ? errmsg : "",
                   (unsigned long long)d);
        s->phase = SB__OB_IDLE;
        s->next_at = sb_now_ms() + (int64_t)d; /* the record again, not the send */
        sb__ob_pump(l->o);
        return;
    }
    s->rec_failures = 0;
    if (said_delivered(result)) /* an earlier attempt was recorded delivered */
        s->kind = SB_OUTCOME_OK;
    apply(s);
    sb__ob_pump(l->o);
}

static void record_now(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    sb_outbox_entry_t view;
    sb_outbox_record_t r;
    fill_record(s, &view, &r);
    s->phase = SB__OB_RECORD;
    sb__ob_ref(l);
    int rc = l->opts.record(l->opts.ctx, &r, on_recorded, s);
    if (rc != 0) {
        l->refs--;
        l->o->refs--;
        s->phase = SB__OB_IDLE;
        if (record_refused(s, rc, "refused before it reached the store"))
            return;
        s->next_at = sb_now_ms() + (int64_t)sb__ob_backoff(l->o, ++s->rec_failures);
        SB__OB_LOG(l->o, SB_LOG_WARN, "record", "lane=%s entry=%s err=%s", l->name,
                   s->ent[s->head].id, sb_err_name(rc));
    }
}

static void on_checked(int status, json_t *result, const char *errmsg, void *data)
{
    sb__ob_stream_t *s = data;
    sb_outbox_lane_t *l = s->lane;
    if (sb__ob_ref_done(l) || s->phase != SB__OB_CHECK)
        return;
    s->phase = SB__OB_IDLE;
    if (status != 0) {
        s->next_at = sb_now_ms() + (int64_t)sb__ob_backoff(l->o, 1);
        SB__OB_LOG(l->o, SB_LOG_WARN, "check", "lane=%s entry=%s err=%s", l->name,
                   s->ent[s->head].id, sb_err_name(status));
    } else if (said_delivered(result)) {
        SB__OB_LOG(l->o, SB_LOG_INFO, "already_delivered", "lane=%s entry=%s", l->name,
                   s->ent[s->head].id);
        l->stats.ok++;
        ack_pop(s);
    } else {
        s->checked = true;
    }
    sb__ob_pump(l->o);
}

static void check_now(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    sb_outbox_entry_t view;
    sb_outbox_record_t r;
    fill_record(s, &view, &r);
    r.ok = r.final = false;
    s->phase = SB__OB_CHECK;
    sb__ob_ref(l);
    int rc = l->opts.check(l->opts.ctx, &r, on_checked, s);
    if (rc != 0) {
        l->refs--;
        l->o->refs--;
        s->phase = SB__OB_IDLE;
        s->next_at = sb_now_ms() + (int64_t)sb__ob_backoff(l->o, 1);
    }
}

/* ---- Attempts ---- */

void sb__ob_step(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    sb_outbox_t *o = l->o;
    const sb__ob_entry_t *e = &s->ent[s->head];
    if (s->have_outcome) {
        record_now(s);
        return;
    }
    if (l->paused || o->inflight >= o->opts.max_inflight)
        return;
    if (e->redelivered && !s->checked && l->opts.check) {
        check_now(s);
        return;
    }
    sb_outbox_attempt_t *a = SB_NEW(sb_outbox_attempt_t);
    a->s = s;
    s->att = a;
    s->phase = SB__OB_SEND;
    o->inflight++;
    l->stats.inflight++;
    sb_outbox_entry_t view;
    sb__ob_entry_view(s, e, &view, s->attempts + 1);
    l->opts.deliver(l, &view, a, l->opts.data);
}

void sb__ob_abandon(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    if (s->att) {
        sb_outbox_attempt_t *a = s->att;
        s->att = NULL;
        l->o->inflight--;
        l->stats.inflight--;
        if (l->opts.cancel) {
            l->opts.cancel(l, a, l->opts.data);
            sb_free(a);
        } else {
            a->s = NULL; /* orphaned: its late answer only frees it */
        }
    }
    s->phase = SB__OB_IDLE; /* hook answers still to come are ignored */
}

static void pause_lane(sb_outbox_lane_t *l, const char *reason)
{
    if (l->paused)
        return;
    l->paused = true;
    l->stats.paused = true;
    SB__OB_LOG(l->o, SB_LOG_WARN, "paused", "lane=%s reason=\"%s\"", l->name, reason);
    if (l->o->opts.on_lane_state)
        l->o->opts.on_lane_state(l, true, reason, l->o->opts.data);
}

void sb_outbox_answer(sb_outbox_attempt_t *a, const sb_outcome_t *out)
{
    sb__ob_stream_t *s = a->s;
    if (!s) { /* abandoned while in flight (no cancel hook): nothing to do */
        sb_free(a);
        return;
    }
    sb_outbox_lane_t *l = s->lane;
    sb_outbox_t *o = l->o;
    sb_free(a);
    s->att = NULL;
    o->inflight--;
    l->stats.inflight--;
    s->phase = SB__OB_IDLE;
    const char *reason = out->reason ? out->reason : "";
    int64_t now = sb_now_ms();
    clear_outcome(s);
    s->have_outcome = true;
    s->kind = out->kind;
    s->provider_id =
        sb_strdup(out->provider_id && out->kind != SB_OUTCOME_AUTH ? out->provider_id : "");
    s->final = true;
    s->retry_at = 0;
    if (out->kind == SB_OUTCOME_AUTH) {
        /* Not a failed attempt of the entry's but of the lane's account: the lane pauses,
         * and the message says why it waits (a failure that is not final, tried again
         * once the lane resumes; its attempts are not used up). */
        pause_lane(l, reason);
        s->reason = sb_asprintf("account paused: %s", reason);
        s->final = false;
    } else {
        s->reason = sb_strdup(out->kind == SB_OUTCOME_OK ? "" : reason);
    }
    if (out->kind == SB_OUTCOME_TEMPORARY && ++s->attempts < o->opts.attempts) {
        s->final = false;
        s->retry_at = (uint64_t)now + sb__ob_backoff(o, s->attempts);
    } else if (out->kind == SB_OUTCOME_RATE_LIMITED) {
        s->final = false;
        s->retry_at = out->retry_at_ms ? out->retry_at_ms
                                       : (uint64_t)now + sb__ob_backoff(o, s->attempts + 1);
    }
    if (l->opts.record) {
        record_now(s);
    } else {
        apply(s);
    }
    sb__ob_pump(o);
}

/* ---- Metrics ---- */

/* Appends `<metric>{lane="<name>"<extra>} ` (the name quoted and escaped as a label). */
static void series(sb_buf_t *out, const char *metric, const sb_outbox_lane_t *l, const char *extra)
{
    sb_buf_printf(out, "%s{lane=", metric);
    sb_buf_json_str(out, l->name); /* JSON's escapes of " \ and newline are Prometheus' too */
    sb_buf_printf(out, "%s} ", extra);
}

void sb_outbox_metrics(const sb_outbox_t *o, sb_buf_t *out)
{
    if (!o)
        return;
    static const char *const names[] = {"ok", "retry", "rate_limited", "dead", "lost", "skipped"};
    sb_buf_puts(out, "# HELP switchboard_outbox_deliveries_total Outbox entries by result: ok, "
                     "retry (temporary failure), rate_limited, dead (dead letter), lost (deleted "
                     "before delivery), skipped (not for this lane).\n"
                     "# TYPE switchboard_outbox_deliveries_total counter\n");
    for (const sb_outbox_lane_t *l = o->lanes; l; l = l->next) {
        if (l->removed)
            continue;
        const sb_outbox_stats_t *st = &l->stats;
        const uint64_t v[] = {st->ok, st->retry, st->rate_limited, st->dead, st->lost, st->skipped};
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
            char extra[32];
            snprintf(extra, sizeof(extra), ",result=\"%s\"", names[i]);
            series(out, "switchboard_outbox_deliveries_total", l, extra);
            sb_buf_printf(out, "%llu\n", (unsigned long long)v[i]);
        }
    }
    sb_buf_puts(out, "# HELP switchboard_outbox_dead_letters_total Entries moved to a lane's "
                     "dead-letter stream (<prefix>dead:<lane>).\n"
                     "# TYPE switchboard_outbox_dead_letters_total counter\n");
    for (const sb_outbox_lane_t *l = o->lanes; l; l = l->next)
        if (!l->removed) {
            series(out, "switchboard_outbox_dead_letters_total", l, "");
            sb_buf_printf(out, "%llu\n", (unsigned long long)l->stats.dead);
        }
    sb_buf_puts(out, "# HELP switchboard_outbox_paused Lanes paused by an auth outcome.\n"
                     "# TYPE switchboard_outbox_paused gauge\n");
    for (const sb_outbox_lane_t *l = o->lanes; l; l = l->next)
        if (!l->removed) {
            series(out, "switchboard_outbox_paused", l, "");
            sb_buf_printf(out, "%d\n", l->paused ? 1 : 0);
        }
}

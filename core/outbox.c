/* SPDX-License-Identifier: MIT */
/*
 * The delivery engine of outbox.h, part one: lanes, reading their streams through the
 * consumer group, taking over idle entries, the pump that moves everything forward, and
 * start/stop. One entry's attempt (check, deliver, outcome, record, ack or dead letter)
 * is core/outbox_attempt.c.
 *
 * Reading: per lane, one non-blocking XREADGROUP over those of its streams that are empty
 * and may have entries (dirty): a stream's id is first its history cursor (our own
 * pending entries, from 0), then `>` once a history read comes back empty. Streams are
 * marked dirty by sb_outbox_lane_poke (the owner knows an entry was added), by
 * acknowledging their last held entry, and by a tick (a safety net).
 *
 * Several nodes: each reads as its own consumer, so an entry goes to one node. The
 * entries a node holds have their idle time reset every claim_idle/4 (XCLAIM … JUSTID to
 * itself); every claim_idle/2 a lane's empty streams take over entries idle for
 * claim_idle (XAUTOCLAIM), i.e. those of a node that stopped for good. Entries deleted
 * from a stream while pending (a trimmed stream) are acknowledged and counted as lost.
 */
#include "core/outbox.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/outbox_internal.h"
#include "core/sys.h"

#define TICK_MAX_MS 1000

static void maybe_free(sb_outbox_t *o);

/* ---- Redis commands of a lane ---- */

void sb__ob_ref(sb_outbox_lane_t *l)
{
    l->refs++;
    l->o->refs++;
}

int sb__ob_command(sb_outbox_lane_t *l, sb_redis_reply_cb cb, void *data, int argc,
                   const char **argv, const size_t *lens)
{
    int rc = sb_redis_command_argv(l->o->redis, cb, data, 0, argc, argv, lens);
    if (rc == 0)
        sb__ob_ref(l);
    return rc;
}

static void lane_free(sb_outbox_lane_t *l)
{
    for (unsigned i = 0; i < l->nst; i++) {
        sb__ob_stream_t *s = &l->st[i];
        for (unsigned k = 0; k < s->n; k++)
            sb__ob_entry_dispose(&s->ent[(s->head + k) % SB__OB_BATCH]);
        sb_free(s->reason);
        sb_free(s->provider_id);
        sb_free(s->key);
    }
    sb_free(l->st);
    sb_free(l->name);
    sb_free(l->group);
    sb_free(l->group_start);
    sb_free(l->channel);
    sb_free(l->account);
    sb_free(l->dead_key);
    sb_free(l);
}

static void lane_unlink_free(sb_outbox_lane_t *l)
{
    sb_outbox_lane_t **pp = &l->o->lanes;
    while (*pp != l)
        pp = &(*pp)->next;
    *pp = l->next;
    lane_free(l);
}

/* Accounts for one reply or hook answer of l; true when it must be ignored. */
bool sb__ob_ref_done(sb_outbox_lane_t *l)
{
    sb_outbox_t *o = l->o;
    l->refs--;
    o->refs--;
    if (o->stopping) {
        maybe_free(o);
        return true;
    }
    if (l->removed) {
        if (l->refs == 0)
            lane_unlink_free(l);
        return true;
    }
    return false;
}

static void on_acked(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_outbox_lane_t *l = data;
    if (!sb__ob_ref_done(l) && status != 0)
        SB__OB_LOG(l->o, SB_LOG_WARN, "redis", "lane=%s err=%s", l->name, sb_err_name(status));
}

void sb__ob_xack(sb__ob_stream_t *s, const char **ids, unsigned n)
{
    if (n == 0)
        return;
    sb_outbox_lane_t *l = s->lane;
    const char *argv[3 + SB__OB_BATCH] = {"XACK", s->key, l->group};
    for (unsigned i = 0; i < n; i++)
        argv[3 + i] = ids[i];
    if (sb__ob_command(l, on_acked, l, 3 + (int)n, argv, NULL) != 0)
        SB__OB_LOG(l->o, SB_LOG_WARN, "ack", "lane=%s err=queue_full", l->name);
}

/* ---- Consumer groups ---- */

static void on_group_created(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_outbox_lane_t *l = data;
    if (sb__ob_ref_done(l))
        return;
    bool exists = status == SB_EREDIS && reply->type == REDIS_REPLY_ERROR &&
                  strncmp(reply->str, "BUSYGROUP", 9) == 0;
    if (status != 0 && !exists) {
        if (!l->create_failed)
            SB__OB_LOG(l->o, SB_LOG_WARN, "group", "lane=%s err=%s what=\"%s\"", l->name,
                       sb_err_name(status), status == SB_EREDIS ? reply->str : "");
        l->create_failed = true;
    }
    if (--l->create_pending > 0)
        return;
    l->creating = false;
    if (l->create_failed) {
        l->create_at = sb_now_ms() + (int64_t)l->o->tick_ms;
        return;
    }
    l->groups_ready = true;
    for (unsigned i = 0; i < l->nst; i++)
        l->st[i].dirty = true;
    sb__ob_pump(l->o);
}

static void create_groups(sb_outbox_lane_t *l)
{
    l->creating = true;
    l->create_failed = false;
    l->create_pending = 0;
    for (unsigned i = 0; i < l->nst; i++) {
        const char *argv[] = {"XGROUP", "CREATE",       l->st[i].key,
                              l->group, l->group_start, "MKSTREAM"};
        if (sb__ob_command(l, on_group_created, l, 6, argv, NULL) == 0)
            l->create_pending++;
        else
            l->create_failed = true;
    }
    if (l->create_pending == 0) {
        l->creating = false;
        l->create_at = sb_now_ms() + (int64_t)l->o->tick_ms;
    }
}

/* ---- Reading: XREADGROUP over the lane's empty streams ---- */

static void take_entry(sb__ob_stream_t *s, const redisReply *e, const char **acks, unsigned *nacks)
{
    sb_outbox_lane_t *l = s->lane;
    const char *id = e->element[0]->str;
    const redisReply *f = e->element[1];
    if (f->type != REDIS_REPLY_ARRAY) { /* deleted while pending (a trimmed stream) */
        SB__OB_LOG(l->o, SB_LOG_WARN, "lost", "lane=%s stream=%s entry=%s", l->name, s->key, id);
        l->stats.lost++;
        acks[(*nacks)++] = id;
        return;
    }
    sb__ob_entry_t *en = &s->ent[(s->head + s->n) % SB__OB_BATCH];
    memset(en, 0, sizeof(*en));
    snprintf(en->id, sizeof(en->id), "%s", id);
    en->redelivered = s->history || s->claiming;
    size_t nf = f->elements / 2 < SB__OB_FIELDS ? f->elements / 2 : SB__OB_FIELDS;
    en->names = sb_calloc(nf + 1, sizeof(char *));
    en->values = sb_calloc(nf + 1, sizeof(char *));
    en->lens = sb_calloc(nf + 1, sizeof(size_t));
    for (size_t i = 0; i < nf; i++) {
        const redisReply *k = f->element[2 * i], *v = f->element[2 * i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
            continue;
        en->names[en->nfields] = sb_strndup(k->str, k->len);
        en->values[en->nfields] = sb_strndup(v->str, v->len);
        en->lens[en->nfields] = v->len;
        en->nfields++;
    }
    sb_outbox_entry_t view;
    sb__ob_entry_view(s, en, &view, 1);
    if (l->opts.accept && !l->opts.accept(l, &view, l->opts.data)) {
        l->stats.skipped++;
        acks[(*nacks)++] = id;
        sb__ob_entry_dispose(en);
        return;
    }
    const char *conv = sb_outbox_field(&view, "conv", NULL);
    size_t mlen;
    const char *m = sb_outbox_field(&view, "m", &mlen);
    json_t *mj = m ? json_loadb(m, mlen, 0, NULL) : NULL;
    const char *mid = json_string_value(json_object_get(mj, "id"));
    en->conv = sb_strdup(conv ? conv : "");
    en->mid = sb_strdup(mid ? mid : "");
    json_decref(mj);
    s->n++;
}

/* Takes one stream's entries (a reply's [[id, fields]…]); acks those skipped or lost. */
static void take_entries(sb__ob_stream_t *s, const redisReply *entries)
{
    sb_outbox_lane_t *l = s->lane;
    const char *acks[SB__OB_BATCH];
    unsigned nacks = 0;
    if ((s->history || s->claiming) && entries->elements > 0)
        SB__OB_LOG(l->o, SB_LOG_INFO, s->claiming ? "claimed" : "resume",
                   "lane=%s stream=%s entries=%zu", l->name, s->key, entries->elements);
    for (size_t i = 0; i < entries->elements && i < SB__OB_BATCH && s->n < SB__OB_BATCH; i++) {
        const redisReply *e = entries->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[0]->len >= SB__OB_SID)
            continue;
        if (s->history)
            snprintf(s->after, sizeof(s->after), "%s", e->element[0]->str);
        take_entry(s, e, acks, &nacks);
    }
    if (s->history && entries->elements == 0) {
        s->history = false; /* our pending entries are all read: new ones from now on */
        s->dirty = true;
    } else if (s->history || entries->elements >= SB__OB_BATCH) {
        s->dirty = s->n == 0; /* more may follow: fetch again once drained */
    }
    sb__ob_xack(s, acks, nacks);
}

static sb__ob_stream_t *stream_of_key(sb_outbox_lane_t *l, const redisReply *key)
{
    for (unsigned i = 0; key->type == REDIS_REPLY_STRING && i < l->nst; i++)
        if (strcmp(key->str, l->st[i].key) == 0)
            return &l->st[i];
    return NULL;
}

static void on_fetched(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb_outbox_lane_t *l = data;
    if (sb__ob_ref_done(l))
        return;
    l->fetching = false;
    if (status != 0) {
        SB__OB_LOG(l->o, status == SB_EREDIS ? SB_LOG_WARN : SB_LOG_DEBUG, "fetch",
                   "lane=%s err=%s what=\"%s\"", l->name, sb_err_name(status),
                   status == SB_EREDIS ? reply->str : "");
        if (status == SB_EREDIS && strncmp(reply->str, "NOGROUP", 7) == 0)
            l->groups_ready = false; /* stream deleted: recreate (retried by the tick) */
        for (unsigned i = 0; i < l->nst; i++)
            l->st[i].fetching = false; /* the tick marks them dirty again */
        return;
    }
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++) {
        const redisReply *st = reply->element[i];
        if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
            st->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        sb__ob_stream_t *s = stream_of_key(l, st->element[0]);
        if (s && s->fetching && s->n == 0)
            take_entries(s, st->element[1]);
    }
    for (unsigned i = 0; i < l->nst; i++)
        l->st[i].fetching = false;
    sb__ob_pump(l->o);
}

static void fetch(sb_outbox_lane_t *l)
{
    unsigned n = 0;
    sb__ob_stream_t **in = sb_calloc(l->nst, sizeof(*in));
    for (unsigned i = 0; i < l->nst; i++) {
        sb__ob_stream_t *s = &l->st[i];
        if (s->n == 0 && s->dirty && !s->claiming && !s->fetching)
            in[n++] = s;
    }
    const char **argv = sb_calloc(7 + 2 * (size_t)n, sizeof(char *));
    char count[16];
    snprintf(count, sizeof(count), "%d", SB__OB_BATCH);
    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = l->group;
    argv[3] = l->o->consumer;
    argv[4] = "COUNT";
    argv[5] = count;
    argv[6] = "STREAMS";
    for (unsigned k = 0; k < n; k++) {
        argv[7 + k] = in[k]->key;
        argv[7 + n + k] = in[k]->history ? in[k]->after : ">";
    }
    if (n > 0 && sb__ob_command(l, on_fetched, l, 7 + 2 * (int)n, argv, NULL) == 0) {
        l->fetching = true;
        for (unsigned k = 0; k < n; k++) {
            in[k]->dirty = false;
            in[k]->fetching = true;
        }
    }
    sb_free(argv);
    sb_free(in);
}

/* ---- Other consumers' idle entries (XAUTOCLAIM) and keeping ours (XCLAIM) ---- */

static void on_claimed(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb__ob_stream_t *s = data;
    sb_outbox_lane_t *l = s->lane;
    if (sb__ob_ref_done(l))
        return;
    s->claim_again = false;
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY || reply->elements < 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        SB__OB_LOG(l->o, SB_LOG_DEBUG, "claim", "lane=%s stream=%s err=%s", l->name, s->key,
                   sb_err_name(status ? status : SB_EREDIS));
        s->claiming = false;
        return;
    }
    const redisReply *next = reply->element[0], *entries = reply->element[1];
    if (reply->elements >= 3 && reply->element[2]->type == REDIS_REPLY_ARRAY &&
        reply->element[2]->elements > 0) { /* deleted before delivery (Redis 7) */
        SB__OB_LOG(l->o, SB_LOG_WARN, "lost", "lane=%s stream=%s entries=%zu", l->name, s->key,
                   reply->element[2]->elements);
        l->stats.lost += reply->element[2]->elements;
    }
    if (entries->elements > 0 && s->n == 0)
        take_entries(s, entries); /* while claiming: marked redelivered */
    s->claiming = false;
    bool more = strcmp(next->str, "0-0") != 0;
    snprintf(s->claim_from, sizeof(s->claim_from), "%s", more ? next->str : "0-0");
    s->claim_again = more || entries->elements >= SB__OB_BATCH;
    sb__ob_pump(l->o);
}

static void autoclaim(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    char idle[24], count[16];
    snprintf(idle, sizeof(idle), "%u", l->o->opts.claim_idle_ms);
    snprintf(count, sizeof(count), "%d", SB__OB_BATCH);
    const char *argv[] = {"XAUTOCLAIM",   s->key, l->group,
                          l->o->consumer, idle,   s->claim_from[0] ? s->claim_from : "0-0",
                          "COUNT",        count};
    if (sb__ob_command(l, on_claimed, s, 8, argv, NULL) == 0)
        s->claiming = true;
    s->claim_again = false;
}

/* Resets the idle time of the entries a stream holds, so no other node takes them. */
static void refresh(sb__ob_stream_t *s)
{
    sb_outbox_lane_t *l = s->lane;
    const char *argv[6 + SB__OB_BATCH] = {"XCLAIM", s->key, l->group, l->o->consumer, "0"};
    int argc = 5;
    for (unsigned i = 0; i < s->n; i++)
        argv[argc++] = s->ent[(s->head + i) % SB__OB_BATCH].id;
    argv[argc++] = "JUSTID";
    sb__ob_command(l, on_acked, l, argc, argv, NULL);
}

/*
 * Trims the entries every consumer group of a stream is done with: those up to each
 * group's last-delivered id, except from the oldest entry still pending in any group on.
 * One round trip, atomic (a group can't move between the look and the trim).
 */
static const char trim_script[] =
    "local function lt(a, b)\n"
    "  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"
    "  local bm, bs = string.match(b, '^(%d+)-(%d+)$')\n"
    "  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)\n"
    "  return am < bm or (am == bm and as < bs)\n"
    "end\n"
    "local keep = nil\n"
    "for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "  local k\n"
    "  if tonumber(f['pending']) > 0 then\n"
    "    k = redis.call('XPENDING', KEYS[1], f['name'])[2]\n"
    "  else\n"
    "    local ms, sq = string.match(f['last-delivered-id'], '^(%d+)-(%d+)$')\n"
    "    k = ms .. '-' .. string.format('%.0f', tonumber(sq) + 1)\n"
    "  end\n"
    "  if not keep or lt(k, keep) then keep = k end\n"
    "end\n"
    "if not keep then return 0 end\n"
    "return redis.call('XTRIM', KEYS[1], 'MINID', keep)\n";

static void on_trimmed(sb_redis_t *r, redisReply *reply, int status, void *data)
{
    sb__ob_stream_t *s = data;
    sb_outbox_lane_t *l = s->lane;
    if (sb__ob_ref_done(l))
        return;
    if (status != 0 || reply->type != REDIS_REPLY_INTEGER)
        SB__OB_LOG(l->o, SB_LOG_WARN, "trim", "lane=%s stream=%s err=%s", l->name, s->key,
                   sb_err_name(status ? status : SB_EREDIS));
    else if (reply->integer > 0)
        SB__OB_LOG(l->o, SB_LOG_DEBUG, "trim", "lane=%s stream=%s entries=%lld", l->name, s->key,
                   (long long)reply->integer);
}

/* Only for outboxes (opts.trim): see sb_outbox_lane_opts_t. */
static void trim(sb__ob_stream_t *s)
{
    const char *argv[] = {"EVAL", trim_script, "1", s->key};
    sb__ob_command(s->lane, on_trimmed, s, 4, argv, NULL);
}

static void claim_tick(sb_outbox_t *o)
{
    int64_t now = sb_now_ms();
    bool do_refresh = now >= o->next_refresh_at, do_claim = now >= o->next_claim_at;
    if (do_refresh)
        o->next_refresh_at = now + o->opts.claim_idle_ms / 4;
    if (do_claim)
        o->next_claim_at = now + o->opts.claim_idle_ms / 2;
    for (sb_outbox_lane_t *l = o->lanes; l; l = l->next) {
        if (l->removed || !l->groups_ready)
            continue;
        for (unsigned i = 0; i < l->nst; i++) {
            sb__ob_stream_t *s = &l->st[i];
            if (do_refresh && s->n > 0)
                refresh(s);
            if (do_claim && !s->history)
                s->claim_again = true;
            if (do_claim && l->opts.trim)
                trim(s);
        }
    }
}

/* ---- The pump ---- */

static void on_timer(uv_timer_t *t)
{
    sb__ob_pump(t->data);
}

/* One lane's turn: claims, fetches, due attempts. Returns the earliest future due time. */
static int64_t pump_lane(sb_outbox_lane_t *l, int64_t now)
{
    int64_t earliest = INT64_MAX;
    if (!l->groups_ready) {
        if (!l->creating && now >= l->create_at)
            create_groups(l);
        return earliest;
    }
    bool want = false;
    for (unsigned i = 0; i < l->nst; i++) {
        sb__ob_stream_t *s = &l->st[i];
        if (s->n == 0) {
            if (s->claim_again && !s->fetching && !s->claiming)
                autoclaim(s);
            else
                want |= s->dirty && !s->fetching && !s->claiming;
        } else if (s->phase == SB__OB_IDLE && s->next_at > now) {
            earliest = s->next_at < earliest ? s->next_at : earliest;
        } else if (s->phase == SB__OB_IDLE) {
            sb__ob_step(s);
        }
    }
    if (want && !l->fetching)
        fetch(l);
    return earliest;
}

void sb__ob_pump(sb_outbox_t *o)
{
    if (o->stopping)
        return;
    if (o->pumping) {
        o->pump_again = true;
        return;
    }
    o->pumping = true;
    int64_t earliest;
    do {
        o->pump_again = false;
        int64_t now = sb_now_ms();
        earliest = INT64_MAX;
        for (sb_outbox_lane_t *l = o->lanes; l; l = l->next) {
            if (l->removed)
                continue;
            int64_t e = pump_lane(l, now);
            earliest = e < earliest ? e : earliest;
        }
    } while (o->pump_again);
    o->pumping = false;
    if (earliest != INT64_MAX) {
        int64_t d = earliest - sb_now_ms();
        uv_timer_start(&o->timer, on_timer, d > 0 ? (uint64_t)d : 0, 0);
    }
}

static void on_tick(uv_timer_t *t)
{
    sb_outbox_t *o = t->data;
    for (sb_outbox_lane_t *l = o->lanes; l; l = l->next)
        for (unsigned i = 0; i < l->nst; i++)
            if (l->st[i].n == 0)
                l->st[i].dirty = true; /* safety net: entries nobody poked us about */
    claim_tick(o);
    sb__ob_pump(o);
}

void sb_outbox_kick(sb_outbox_t *o)
{
    sb__ob_pump(o);
}

void sb_outbox_lane_poke(sb_outbox_lane_t *l, int index)
{
    for (unsigned i = 0; i < l->nst; i++)
        if (index < 0 || (unsigned)index == i)
            l->st[i].dirty = true;
    sb__ob_pump(l->o);
}

/* ---- Engine and lanes ---- */

void sb_outbox_opts_config(sb_outbox_opts_t *opts, const sb_config_t *cfg)
{
    opts->prefix = cfg->prefix;
    opts->retry_base_ms = cfg->outbox_retry_base_ms;
    opts->retry_max_ms = cfg->outbox_retry_max_ms;
    opts->attempts = (unsigned)cfg->outbox_attempts;
    opts->claim_idle_ms = cfg->outbox_claim_idle_ms;
    opts->dead_maxlen = (unsigned)cfg->outbox_dead_maxlen;
}

int sb_outbox_new(uv_loop_t *loop, sb_redis_t *redis, const sb_outbox_opts_t *opts,
                  sb_outbox_t **out)
{
    sb_outbox_t *o = SB_NEW(sb_outbox_t);
    o->loop = loop;
    o->redis = redis;
    o->opts = *opts;
    o->prefix = sb_strdup(opts->prefix ? opts->prefix : "sb:");
    o->consumer = sb_strdup(opts->consumer ? opts->consumer : "switchboard");
    o->log_name = sb_strdup(opts->log_name ? opts->log_name : "outbox");
    o->opts.log_name = o->log_name;
    o->opts.prefix = o->prefix;
    o->opts.consumer = o->consumer;
#define DEFAULT(f, v)                                                                              \
    if (!o->opts.f)                                                                                \
        o->opts.f = (v);
    DEFAULT(retry_base_ms, 1000)
    DEFAULT(retry_max_ms, 300000)
    DEFAULT(attempts, 12)
    DEFAULT(claim_idle_ms, 300000)
    DEFAULT(dead_maxlen, 10000)
    DEFAULT(max_inflight, 64)
#undef DEFAULT
    o->tick_ms = o->opts.claim_idle_ms / 4;
    o->tick_ms = o->tick_ms > TICK_MAX_MS ? TICK_MAX_MS : o->tick_ms < 10 ? 10 : o->tick_ms;
    uv_timer_init(loop, &o->timer);
    uv_timer_init(loop, &o->tick);
    o->timer.data = o->tick.data = o;
    o->handles_open = 2;
    uv_unref((uv_handle_t *)&o->tick);
    uv_timer_start(&o->tick, on_tick, o->tick_ms, o->tick_ms);
    *out = o;
    return 0;
}

int sb_outbox_lane_add(sb_outbox_t *o, const sb_outbox_lane_opts_t *opts, sb_outbox_lane_t **out)
{
    if (!opts->deliver || opts->nstreams == 0 || !opts->name || !opts->group)
        return SB_EINVAL;
    sb_outbox_lane_t *l = SB_NEW(sb_outbox_lane_t);
    l->o = o;
    l->opts = *opts;
    l->name = sb_strdup(opts->name);
    l->group = sb_strdup(opts->group);
    l->group_start = sb_strdup(opts->group_start ? opts->group_start : "0");
    l->channel = sb_strdup(opts->channel ? opts->channel : "");
    l->account = sb_strdup(opts->account ? opts->account : "");
    sb_key_t dk;
    sb_key_dead(&dk, o->prefix, opts->name);
    l->dead_key = sb_key_dup(&dk);
    l->opts.name = l->name;
    l->opts.group = l->group;
    l->opts.group_start = l->group_start;
    l->opts.channel = l->channel;
    l->opts.account = l->account;
    l->opts.streams = NULL;
    l->nst = opts->nstreams;
    l->st = sb_calloc(l->nst, sizeof(sb__ob_stream_t));
    for (unsigned i = 0; i < l->nst; i++) {
        sb__ob_stream_t *s = &l->st[i];
        s->lane = l;
        s->index = i;
        s->key = sb_strdup(opts->streams[i]);
        s->history = true;
        snprintf(s->after, sizeof(s->after), "0");
        s->dirty = true;
    }
    l->next = o->lanes;
    o->lanes = l;
    *out = l;
    sb__ob_pump(o);
    return 0;
}

void sb_outbox_lane_remove(sb_outbox_lane_t *l)
{
    if (!l || l->removed)
        return;
    l->removed = true;
    for (unsigned i = 0; i < l->nst; i++)
        sb__ob_abandon(&l->st[i]); /* still pending in the group */
    if (l->refs == 0)
        lane_unlink_free(l);
}

void sb_outbox_lane_resume(sb_outbox_lane_t *l)
{
    if (!l->paused)
        return;
    l->paused = false;
    l->stats.paused = false;
    SB__OB_LOG(l->o, SB_LOG_INFO, "resumed", "lane=%s", l->name);
    if (l->o->opts.on_lane_state)
        l->o->opts.on_lane_state(l, false, "", l->o->opts.data);
    sb__ob_pump(l->o);
}

const char *sb_outbox_lane_name(const sb_outbox_lane_t *l)
{
    return l->name;
}

void sb_outbox_lane_stats(const sb_outbox_lane_t *l, sb_outbox_stats_t *out)
{
    *out = l->stats;
}

static void on_handle_closed(uv_handle_t *h)
{
    sb_outbox_t *o = h->data;
    o->handles_open--;
    maybe_free(o);
}

static void maybe_free(sb_outbox_t *o)
{
    if (!o->stopping || o->refs || o->handles_open)
        return;
    while (o->lanes) {
        sb_outbox_lane_t *l = o->lanes;
        o->lanes = l->next;
        lane_free(l);
    }
    void (*cb)(void *) = o->stop_cb;
    void *data = o->stop_data;
    sb_free(o->prefix);
    sb_free(o->consumer);
    sb_free(o->log_name);
    sb_free(o);
    if (cb)
        cb(data);
}

void sb_outbox_stop(sb_outbox_t *o, void (*cb)(void *data), void *data)
{
    if (!o) {
        if (cb)
            cb(data);
        return;
    }
    if (o->stopping)
        return;
    for (sb_outbox_lane_t *l = o->lanes; l; l = l->next)
        for (unsigned i = 0; i < l->nst; i++)
            sb__ob_abandon(&l->st[i]); /* in flight: cancelled, still pending in Redis */
    o->stopping = true;
    o->stop_cb = cb;
    o->stop_data = data;
    uv_close((uv_handle_t *)&o->timer, on_handle_closed);
    uv_close((uv_handle_t *)&o->tick, on_handle_closed);
    SB__OB_LOG(o, SB_LOG_DEBUG, "stop", "pending_replies=%u", o->refs);
}

/* SPDX-License-Identifier: MIT */
/*
 * SLA configuration (docs/sla.md, "Configuration"): compiles the `calendar`, `holiday`,
 * `sla` and `escalate` entries of a loaded sb_config_t into calendars and policies, and
 * answers which policy a conversation falls under. Owns the calendars (core/calendar.h
 * parses each line) and the policies with their escalation steps; the plan of one
 * conversation's clocks is computed from them in sla_plan.c.
 *
 * Every problem is reported as `file:line: key: what`, all of them in one pass, so that
 * `switchboard --check` lists a whole file's mistakes at once.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/channel.h"
#include "core/err.h"
#include "core/sla.h"
#include "core/util.h"

/* The longest clock target: a year (also keeps percent * target far from overflow). */
#define TARGET_MAX_MS (365LL * 24 * 3600 * 1000)
#define PERCENT_MAX   1000u
#define NAME_MAX_LEN  64

struct sb_sla_conf {
    size_t ncals;
    sb_calendar_t **cals;
    size_t npolicies;
    sb_sla_policy_t *policies;
};

static const char *const priorities[] = {"low", "normal", "high", "urgent"};

/* One problem found, kept until the end so that they are listed in file order. */
typedef struct problem {
    const sb_config_entry_t *at;
    size_t seq;
    char *text; /* the whole line, newline included */
} problem_t;

/* The compile in progress: the conf being built and the problems found. */
typedef struct compile {
    sb_sla_conf_t *conf;
    size_t nerr;
    problem_t *problems;
} compile_t;

static void report(compile_t *c, const sb_config_entry_t *e, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* One `file:line: key: what` line; an environment entry reads `env:VAR: entry N: …`. */
static void report(compile_t *c, const sb_config_entry_t *e, const char *key, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    c->problems = sb_realloc(c->problems, (c->nerr + 1) * sizeof(*c->problems));
    problem_t *p = &c->problems[c->nerr];
    *p = (problem_t){.at = e, .seq = c->nerr};
    c->nerr++;
    if (strncmp(e->file, "env:", 4) == 0)
        p->text = sb_asprintf("%s: entry %d: %s: %s\n", e->file, e->line, key, what);
    else
        p->text = sb_asprintf("%s:%d: %s: %s\n", e->file, e->line, key, what);
}

/* Files before the environment, then by file name, line, and the order found. */
static int problem_cmp(const void *a, const void *b)
{
    const problem_t *x = a, *y = b;
    bool xe = !strncmp(x->at->file, "env:", 4), ye = !strncmp(y->at->file, "env:", 4);
    int d = xe != ye ? xe - ye : strcmp(x->at->file, y->at->file);
    if (d == 0)
        d = x->at->line != y->at->line ? (x->at->line < y->at->line ? -1 : 1) : 0;
    if (d == 0)
        d = x->seq < y->seq ? -1 : x->seq > y->seq;
    return d;
}

/* Appends the problems, sorted, to errors (may be NULL) and frees them. */
static void flush_problems(compile_t *c, sb_buf_t *errors)
{
    if (c->nerr)
        qsort(c->problems, c->nerr, sizeof(*c->problems), problem_cmp);
    for (size_t i = 0; i < c->nerr; i++) {
        if (errors)
            sb_buf_puts(errors, c->problems[i].text);
        sb_free(c->problems[i].text);
    }
    sb_free(c->problems);
}

/* A policy or calendar name: 1..64 of [A-Za-z0-9_.-]. */
static bool name_valid(const char *s)
{
    size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-");
    return n > 0 && n <= NAME_MAX_LEN && s[n] == '\0';
}

static sb_calendar_t *find_calendar(const sb_sla_conf_t *conf, const char *name)
{
    for (size_t i = 0; conf && name && i < conf->ncals; i++)
        if (strcmp(sb_calendar_name(conf->cals[i]), name) == 0)
            return conf->cals[i];
    return NULL;
}

const sb_calendar_t *sb_sla_calendar(const sb_sla_conf_t *conf, const char *name)
{
    return find_calendar(conf, name);
}

static sb_sla_policy_t *find_policy(const sb_sla_conf_t *conf, const char *name)
{
    for (size_t i = 0; i < conf->npolicies; i++)
        if (strcmp(conf->policies[i].name, name) == 0)
            return &conf->policies[i];
    return NULL;
}

/* ---- calendar and holiday ---- */

static void add_calendar(compile_t *c, const sb_config_entry_t *e)
{
    char err[256] = "";
    if (!name_valid(e->argv[0])) {
        report(c, e, "calendar", "'%.100s' is not a name (letters, digits, _ . -)", e->argv[0]);
        return;
    }
    if (sb_sla_calendar(c->conf, e->argv[0])) {
        report(c, e, "calendar", "'%s' is defined twice", e->argv[0]);
        return;
    }
    sb_calendar_t *cal = NULL;
    if (sb_calendar_parse(e->argc, e->argv, &cal, err, sizeof(err)) != 0) {
        report(c, e, "calendar", "%s", err[0] ? err : "invalid");
        return;
    }
    sb_sla_conf_t *conf = c->conf;
    conf->cals = sb_realloc(conf->cals, (conf->ncals + 1) * sizeof(*conf->cals));
    conf->cals[conf->ncals++] = cal;
}

static void add_holidays(compile_t *c, const sb_config_entry_t *e)
{
    char err[256] = "";
    sb_calendar_t *cal = find_calendar(c->conf, e->argv[0]);
    if (!cal)
        report(c, e, "holiday", "unknown calendar '%.100s'", e->argv[0]);
    else if (sb_calendar_add_holidays(cal, e->argc - 1, e->argv + 1, err, sizeof(err)) != 0)
        report(c, e, "holiday", "%s", err[0] ? err : "invalid date");
}

/* ---- sla ---- */

/* One `setting=value` word of an sla line into p; false after reporting a problem. */
static bool sla_setting(compile_t *c, const sb_config_entry_t *e, sb_sla_policy_t *p,
                        const char *word, unsigned *seen)
{
    static const char *const names[] = {"first",   "next",     "resolve",
                                        "channel", "priority", "calendar"};
    const char *eq = strchr(word, '=');
    size_t kl = eq ? (size_t)(eq - word) : 0;
    size_t k = 0;
    while (k < SB_ARRAY_LEN(names) && (strlen(names[k]) != kl || strncmp(word, names[k], kl)))
        k++;
    if (!eq || k == SB_ARRAY_LEN(names)) {
        report(c, e, "sla",
               "'%.100s' is not a setting (channel= priority= first= next= resolve= calendar=)",
               word);
        return false;
    }
    const char *v = eq + 1;
    if (*seen & (1u << k)) {
        report(c, e, "sla", "%s= given twice", names[k]);
        return false;
    }
    *seen |= 1u << k;
    if (k < SB_CLOCKS) {
        int64_t ms;
        if (sb_config_parse_duration(v, &ms) != 0 || ms <= 0 || ms > TARGET_MAX_MS) {
            report(c, e, "sla", "%s=%.100s: not a duration from 1ms to 365d (45s, 5m, 2h, 1d)",
                   names[k], v);
            return false;
        }
        p->target_ms[k] = ms;
    } else if (k == 3) {
        if (strcmp(v, "*") != 0 && sb_channel_index(v) < 0) {
            report(c, e, "sla", "unknown channel '%.100s' (%s or *)", v, SB_CHANNEL_LIST_TEXT);
            return false;
        }
        p->channel = strcmp(v, "*") ? sb_strdup(v) : NULL;
    } else if (k == 4) {
        size_t i = 0;
        while (i < SB_ARRAY_LEN(priorities) && strcmp(v, priorities[i]))
            i++;
        if (strcmp(v, "*") != 0 && i == SB_ARRAY_LEN(priorities)) {
            report(c, e, "sla", "unknown priority '%.100s' (low, normal, high, urgent or *)", v);
            return false;
        }
        p->priority = strcmp(v, "*") ? sb_strdup(v) : NULL;
    } else {
        p->cal = sb_sla_calendar(c->conf, v);
        if (!p->cal) {
            report(c, e, "sla", "unknown calendar '%.100s'", v);
            return false;
        }
    }
    return true;
}

static void policy_dispose(sb_sla_policy_t *p)
{
    for (size_t i = 0; i < p->nsteps; i++) {
        for (size_t k = 0; k < p->steps[i].ntargets; k++)
            sb_free(p->steps[i].targets[k]);
        sb_free(p->steps[i].targets);
    }
    sb_free(p->steps);
    sb_free(p->name);
    sb_free(p->channel);
    sb_free(p->priority);
}

static void add_policy(compile_t *c, const sb_config_entry_t *e)
{
    const char *name = e->argv[0];
    if (!name_valid(name)) {
        report(c, e, "sla", "'%.100s' is not a name (letters, digits, _ . -)", name);
        return;
    }
    if (find_policy(c->conf, name)) {
        report(c, e, "sla", "'%s' is defined twice", name);
        return;
    }
    sb_sla_policy_t p = {0};
    unsigned seen = 0;
    bool ok = true;
    for (int i = 1; i < e->argc; i++)
        ok = sla_setting(c, e, &p, e->argv[i], &seen) && ok;
    static const char *const required[] = {"first", "next", "resolve", "channel", "priority"};
    for (size_t k = 0; ok && k < SB_ARRAY_LEN(required); k++) {
        if (!(seen & (1u << k))) {
            report(c, e, "sla", "'%s' has no %s=", name, required[k]);
            ok = false;
        }
    }
    if (!ok) {
        policy_dispose(&p);
        return;
    }
    p.name = sb_strdup(name);
    sb_sla_conf_t *conf = c->conf;
    conf->policies = sb_realloc(conf->policies, (conf->npolicies + 1) * sizeof(p));
    conf->policies[conf->npolicies++] = p;
}

/* ---- escalate ---- */

/* "<1..1000>%" into *out. */
static bool parse_percent(const char *s, unsigned *out)
{
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n > 4 || strcmp(s + n, "%") != 0)
        return false;
    unsigned v = (unsigned)strtoul(s, NULL, 10);
    if (v == 0 || v > PERCENT_MAX)
        return false;
    *out = v;
    return true;
}

static bool target_valid(const char *t)
{
    static const char *const roles[] = {"agent", "admin", "exec", "bot"};
    if (!strcmp(t, "assignee") || !strcmp(t, "everyone") || sb_id_valid(t, "st_"))
        return true;
    for (size_t i = 0; !strncmp(t, "role:", 5) && i < SB_ARRAY_LEN(roles); i++)
        if (!strcmp(t + 5, roles[i]))
            return true;
    return false;
}

/* Adds target to p's step at percent (made, in percent order, when missing); no repeats. */
static void step_add(sb_sla_policy_t *p, unsigned percent, const char *target)
{
    size_t i = 0;
    while (i < p->nsteps && p->steps[i].percent < percent)
        i++;
    if (i == p->nsteps || p->steps[i].percent != percent) {
        p->steps = sb_realloc(p->steps, (p->nsteps + 1) * sizeof(*p->steps));
        memmove(&p->steps[i + 1], &p->steps[i], (p->nsteps - i) * sizeof(*p->steps));
        p->steps[i] = (sb_sla_step_t){.percent = percent};
        p->nsteps++;
    }
    sb_sla_step_t *s = &p->steps[i];
    if (!target)
        return;
    for (size_t k = 0; k < s->ntargets; k++)
        if (!strcmp(s->targets[k], target))
            return;
    s->targets = sb_realloc(s->targets, (s->ntargets + 1) * sizeof(char *));
    s->targets[s->ntargets++] = sb_strdup(target);
}

/* Checks the target words argv[2..] (comma lists); adds them when p is not NULL. */
static bool targets_each(compile_t *c, const sb_config_entry_t *e, sb_sla_policy_t *p,
                         unsigned percent)
{
    for (int i = 2; i < e->argc; i++) {
        const char *w = e->argv[i];
        while (true) {
            size_t n = strcspn(w, ",");
            char t[128];
            snprintf(t, sizeof(t), "%.*s", (int)(n < sizeof(t) ? n : sizeof(t) - 1), w);
            if (n >= sizeof(t) || !target_valid(t)) {
                if (c)
                    report(c, e, "escalate",
                           "'%.*s' is not a target (assignee, everyone, role:<agent|admin|exec|"
                           "bot>, st_<id>)",
                           (int)(n > 100 ? 100 : n), w);
                return false;
            }
            if (p)
                step_add(p, percent, t);
            if (!w[n])
                break;
            w += n + 1;
        }
    }
    return true;
}

static void add_escalation(compile_t *c, const sb_config_entry_t *e)
{
    const char *name = e->argv[0];
    unsigned percent;
    bool ok = true;
    if (strcmp(name, "*") != 0 && !find_policy(c->conf, name)) {
        report(c, e, "escalate", "unknown sla '%.100s'", name);
        ok = false;
    }
    if (!parse_percent(e->argv[1], &percent)) {
        report(c, e, "escalate", "'%.100s' is not a percentage from 1%% to 1000%%", e->argv[1]);
        ok = false;
    }
    if (!targets_each(c, e, NULL, 0) || !ok)
        return;
    for (size_t i = 0; i < c->conf->npolicies; i++) {
        sb_sla_policy_t *p = &c->conf->policies[i];
        if (!strcmp(name, "*") || !strcmp(name, p->name))
            targets_each(NULL, e, p, percent);
    }
}

/* ---- The conf ---- */

int sb_sla_conf_load(const sb_config_t *cfg, sb_sla_conf_t **out, sb_buf_t *errors)
{
    compile_t c = {.conf = sb_calloc(1, sizeof(sb_sla_conf_t))};
    const struct {
        const sb_config_list_t *list;
        const char *key;
        int min;
        void (*add)(compile_t *, const sb_config_entry_t *);
    } passes[] = {
        {&cfg->calendar, "calendar", 4, add_calendar},
        {&cfg->holiday, "holiday", 2, add_holidays},
        {&cfg->sla, "sla", 1, add_policy},
        {&cfg->escalate, "escalate", 3, add_escalation},
    };
    for (size_t k = 0; k < SB_ARRAY_LEN(passes); k++) {
        for (size_t i = 0; i < passes[k].list->n; i++) {
            const sb_config_entry_t *e = &passes[k].list->items[i];
            if (e->argc < passes[k].min)
                report(&c, e, passes[k].key, "needs at least %d words", passes[k].min);
            else
                passes[k].add(&c, e);
        }
    }
    /* Every policy breaches at 100 %, with or without an escalate line there. */
    for (size_t i = 0; i < c.conf->npolicies; i++)
        step_add(&c.conf->policies[i], 100, NULL);
    size_t nerr = c.nerr;
    flush_problems(&c, errors);
    if (nerr) {
        sb_sla_conf_free(c.conf);
        *out = NULL;
        return SB_EINVAL;
    }
    *out = c.conf;
    return 0;
}

void sb_sla_conf_free(sb_sla_conf_t *conf)
{
    if (!conf)
        return;
    for (size_t i = 0; i < conf->npolicies; i++)
        policy_dispose(&conf->policies[i]);
    sb_free(conf->policies);
    for (size_t i = 0; i < conf->ncals; i++)
        sb_calendar_free(conf->cals[i]);
    sb_free(conf->cals);
    sb_free(conf);
}

bool sb_sla_conf_active(const sb_sla_conf_t *conf)
{
    return conf && conf->npolicies > 0;
}

const sb_sla_policy_t *sb_sla_match(const sb_sla_conf_t *conf, const char *channel,
                                    const char *priority)
{
    for (size_t i = 0; conf && i < conf->npolicies; i++) {
        const sb_sla_policy_t *p = &conf->policies[i];
        if ((!p->channel || (channel && !strcmp(p->channel, channel))) &&
            (!p->priority || (priority && !strcmp(p->priority, priority))))
            return p;
    }
    return NULL;
}

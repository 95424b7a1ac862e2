/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the SLA code (core/sla_conf.c, core/sla_plan.c). An input starting with `C` is
 * configuration text: each line `<key> <words…>` with key calendar, holiday, sla or
 * escalate becomes an entry of file fuzz.conf and the whole goes through sb_sla_conf_load.
 * Any other input is the JSON state sb_sla_tick hands the engine, planned with
 * sb_sla_plan_json under a fixed conf (a business-hours policy and a 24/7 one). Invariants: a
 * refused conf has one `fuzz.conf:` line per problem and no conf, an accepted one none, and every
 * policy steps at distinct increasing percents in 1..1000 with 100 among them; a refused state has
 * a reason, a plan has every documented field, its steps sorted by time, each of a running clock
 * and a configured percent, the 100 % step at the clock's due time, and queue_at the due time of
 * the response clock.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/sla.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_sla: broken invariant: %s\n", #cond);                            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static sb_config_list_t *list_of(sb_config_t *c, const char *key)
{
    return !strcmp(key, "calendar")   ? &c->calendar
           : !strcmp(key, "holiday")  ? &c->holiday
           : !strcmp(key, "sla")      ? &c->sla
           : !strcmp(key, "escalate") ? &c->escalate
                                      : NULL;
}

/* Adds the text's lines (NUL-free, may be unterminated) as entries of c. */
static void add_lines(sb_config_t *c, const char *text, size_t len)
{
    int line = 0;
    for (size_t at = 0; at < len;) {
        size_t n = 0;
        while (at + n < len && text[at + n] != '\n')
            n++;
        char *copy = sb_strndup(text + at, n), *save = NULL;
        at += n + 1;
        line++;
        char *key = strtok_r(copy, " \t", &save);
        sb_config_list_t *list = key ? list_of(c, key) : NULL;
        if (list) {
            list->items = sb_realloc(list->items, (list->n + 1) * sizeof(*list->items));
            sb_config_entry_t *e = &list->items[list->n++];
            *e = (sb_config_entry_t){.file = sb_strdup("fuzz.conf"), .line = line};
            for (char *w; (w = strtok_r(NULL, " \t", &save));) {
                e->argv = sb_realloc(e->argv, (size_t)(e->argc + 1) * sizeof(char *));
                e->argv[e->argc++] = sb_strdup(w);
            }
        }
        sb_free(copy);
    }
}

static void check_policy(const sb_sla_policy_t *p)
{
    bool has100 = false;
    for (size_t i = 0; i < p->nsteps; i++) {
        CHECK(p->steps[i].percent >= 1 && p->steps[i].percent <= 1000);
        CHECK(i == 0 || p->steps[i - 1].percent < p->steps[i].percent);
        has100 |= p->steps[i].percent == 100;
    }
    CHECK(has100);
    for (int k = 0; k < SB_CLOCKS; k++)
        CHECK(p->target_ms[k] > 0);
}

static void fuzz_conf(const char *text, size_t len)
{
    sb_config_t c;
    sb_config_init(&c);
    add_lines(&c, text, len);
    sb_buf_t errors;
    sb_buf_init(&errors, 1 << 20);
    sb_sla_conf_t *conf = NULL;
    int rc = sb_sla_conf_load(&c, &conf, &errors);
    if (rc == 0) {
        CHECK(conf && errors.len == 0);
        static const char *const chans[] = {"webchat", "email", "api", NULL};
        static const char *const prios[] = {"low", "urgent", NULL};
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                const sb_sla_policy_t *p = sb_sla_match(conf, chans[i], prios[j]);
                if (p)
                    check_policy(p);
            }
    } else {
        CHECK(rc == SB_EINVAL && !conf && errors.len > 0 && !sb_buf_error(&errors));
        CHECK(!strncmp(errors.data, "fuzz.conf:", 10));
        for (const char *nl = strchr(errors.data, '\n'); nl && nl[1]; nl = strchr(nl + 1, '\n'))
            CHECK(!strncmp(nl + 1, "fuzz.conf:", 10));
    }
    sb_sla_conf_free(conf);
    sb_buf_dispose(&errors);
    sb_config_dispose(&c);
}

static const sb_sla_conf_t *fixed_conf(void)
{
    static sb_sla_conf_t *conf;
    if (conf)
        return conf;
    static const char text[] = "calendar office Europe/Berlin mon-fri 09:00-12:30,13:30-17:30 "
                               "sat 10:00-14:00 sun 22:00-02:00\n"
                               "holiday office 2026-12-24 2026-12-25\n"
                               "sla chat channel=webchat priority=* first=1m next=5m resolve=1h "
                               "calendar=office\n"
                               "sla rest channel=* priority=* first=4h next=8h resolve=3d\n"
                               "escalate chat 50% assignee\n"
                               "escalate * 150% everyone,role:exec\n";
    sb_config_t c;
    sb_config_init(&c);
    add_lines(&c, text, sizeof(text) - 1);
    if (sb_sla_conf_load(&c, &conf, NULL) != 0)
        abort();
    sb_config_dispose(&c);
    return conf;
}

static bool is_time_or_null(const json_t *v)
{
    return json_is_null(v) || json_is_integer(v);
}

static void check_plan(const sb_sla_conf_t *conf, const json_t *plan)
{
    const json_t *due = json_object_get(plan, "due"), *steps = json_object_get(plan, "steps");
    const json_t *policy = json_object_get(plan, "policy");
    CHECK(json_is_string(json_object_get(plan, "conv")));
    CHECK(json_is_integer(json_object_get(plan, "rev")));
    CHECK(json_is_null(policy) || json_is_string(policy));
    CHECK(json_is_object(due) && json_object_size(due) == SB_CLOCKS);
    CHECK(json_is_boolean(json_object_get(plan, "paused")));
    CHECK(json_is_object(json_object_get(plan, "fold")));
    CHECK(json_is_array(steps));
    for (int k = 0; k < SB_CLOCKS; k++)
        CHECK(is_time_or_null(json_object_get(due, sb_clock_names[k])));
    const json_t *queue_at = json_object_get(plan, "queue_at");
    CHECK(is_time_or_null(queue_at));
    CHECK(json_is_null(queue_at) || json_equal(queue_at, json_object_get(due, "first_response")) ||
          json_equal(queue_at, json_object_get(due, "next_response")));
    const sb_sla_policy_t *p = NULL; /* the fixed conf's: chat (webchat) or rest */
    if (json_is_string(policy)) {
        const sb_sla_policy_t *chat = sb_sla_match(conf, "webchat", NULL);
        const sb_sla_policy_t *rest = sb_sla_match(conf, "email", NULL);
        const char *name = json_string_value(policy);
        p = !strcmp(chat->name, name) ? chat : !strcmp(rest->name, name) ? rest : NULL;
    }
    CHECK(json_is_null(policy) || p);
    CHECK(p || json_array_size(steps) == 0);
    json_int_t last = INT64_MIN;
    size_t i;
    const json_t *s;
    json_array_foreach(steps, i, s)
    {
        const json_t *at = json_object_get(s, "at"), *clock = json_object_get(s, "clock");
        const json_t *percent = json_object_get(s, "percent");
        CHECK(json_is_integer(at) && json_integer_value(at) >= last);
        last = json_integer_value(at);
        CHECK(json_is_string(clock) && json_is_integer(json_object_get(s, "gen")));
        CHECK(json_is_array(json_object_get(s, "targets")));
        const json_t *clock_due = json_object_get(due, json_string_value(clock));
        CHECK(json_is_integer(clock_due)); /* steps only of running clocks */
        bool known = false;
        for (size_t k = 0; k < p->nsteps; k++)
            known |= json_integer_value(percent) == p->steps[k].percent;
        CHECK(known);
        if (json_integer_value(percent) == 100)
            CHECK(json_equal(at, clock_due));
    }
}

static void fuzz_plan(const char *text, size_t len)
{
    const sb_sla_conf_t *conf = fixed_conf();
    json_t *state = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!state)
        return;
    char err[256] = "";
    json_t *plan = sb_sla_plan_json(conf, state, 1732270000000, err, sizeof(err));
    if (plan)
        check_plan(conf, plan);
    else
        CHECK(err[0] != '\0');
    json_decref(plan);
    json_decref(state);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool init;
    if (!init) {
        sb_alloc_init();
        init = true;
    }
    if (size > 1 << 16 || memchr(data, '\0', size))
        return 0;
    if (size > 0 && data[0] == 'C')
        fuzz_conf((const char *)data + 1, size - 1);
    else
        fuzz_plan((const char *)data, size);
    return 0;
}

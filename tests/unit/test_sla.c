/* SPDX-License-Identifier: MIT */
/*
 * SLA policies (core/sla_conf.c) and plans (core/sla_plan.c): the config lines compiled,
 * every config mistake reported as `file:line: what`, the first matching policy chosen,
 * and the plan of a conversation's clocks (due times, escalation steps, folds) computed
 * from the clock facts as docs/sla.md "Plan" says, on 24/7 and business-hours policies.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/sla.h"

#define MIN 60000LL
#define T0  1732270000000LL /* 2024-11-22 10:06:40 UTC, a Friday */

/* ---- Helpers ---- */

static sb_config_list_t *list_named(sb_config_t *c, const char *key)
{
    if (!strcmp(key, "sla"))
        return &c->sla;
    if (!strcmp(key, "calendar"))
        return &c->calendar;
    if (!strcmp(key, "holiday"))
        return &c->holiday;
    if (!strcmp(key, "escalate"))
        return &c->escalate;
    fail_msg("no list key %s", key);
    return NULL;
}

/* Adds a config line (words split on spaces) as an entry of file at line. */
static void add_line(sb_config_t *c, const char *file, int line, const char *text)
{
    char *copy = sb_strdup(text), *save = NULL;
    char *key = strtok_r(copy, " ", &save);
    sb_config_list_t *list = list_named(c, key);
    list->items = sb_realloc(list->items, (list->n + 1) * sizeof(*list->items));
    sb_config_entry_t *e = &list->items[list->n++];
    memset(e, 0, sizeof(*e));
    for (char *w; (w = strtok_r(NULL, " ", &save));) {
        e->argv = sb_realloc(e->argv, (size_t)(e->argc + 1) * sizeof(char *));
        e->argv[e->argc++] = sb_strdup(w);
    }
    e->file = sb_strdup(file);
    e->line = line;
    sb_free(copy);
}

/* Compiles the lines (NULL-terminated, file "sb.conf", lines numbered from 1). */
static int compile(const char *const *lines, sb_sla_conf_t **conf, sb_buf_t *errors)
{
    sb_config_t c;
    sb_config_init(&c);
    for (int i = 0; lines[i]; i++)
        add_line(&c, "sb.conf", i + 1, lines[i]);
    int rc = sb_sla_conf_load(&c, conf, errors);
    sb_config_dispose(&c);
    return rc;
}

static sb_sla_conf_t *compile_ok(const char *const *lines)
{
    sb_sla_conf_t *conf = NULL;
    sb_buf_t errors;
    sb_buf_init(&errors, 1 << 16);
    if (compile(lines, &conf, &errors) != 0)
        fail_msg("conf refused:\n%.*s", (int)errors.len, errors.data ? errors.data : "");
    sb_buf_dispose(&errors);
    assert_non_null(conf);
    return conf;
}

/* The plan of a state given as JSON text; fails the test when it is refused. */
static json_t *plan_of(const sb_sla_conf_t *conf, const char *state_text)
{
    json_error_t jerr;
    json_t *state = json_loads(state_text, 0, &jerr);
    if (!state)
        fail_msg("bad test JSON: %s: %s", jerr.text, state_text);
    char err[256] = "";
    json_t *plan = sb_sla_plan_json(conf, state, T0, err, sizeof(err));
    json_decref(state);
    if (!plan)
        fail_msg("state refused: %s", err);
    return plan;
}

static void assert_json(json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_SORT_KEYS), *w = json_dumps(want, JSON_SORT_KEYS);
        fprintf(stderr, "got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        fail();
    }
    json_decref(want);
}

static const char *const quick_conf[] = {
    "sla quick channel=* priority=* first=10m next=20m resolve=1d",
    "escalate quick 50% assignee",
    "escalate quick 100% everyone",
    "escalate * 200% role:exec",
    NULL,
};

/* ---- Configuration ---- */

static void test_sla_conf_compiles_policies_and_steps(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "sla chat channel=webchat priority=urgent first=45s next=5m resolve=2h",
        "sla mail channel=email priority=* first=4h next=8h resolve=3d",
        "escalate chat 50% assignee,everyone",
        "escalate * 50% role:agent",
        "escalate chat 150% st_0123456789abcdefghjkmnpqrs",
        "escalate mail 100% role:admin role:admin",
        NULL,
    };
    sb_sla_conf_t *conf = compile_ok(lines);
    assert_true(sb_sla_conf_active(conf));
    const sb_sla_policy_t *chat = sb_sla_match(conf, "webchat", "urgent");
    assert_non_null(chat);
    assert_string_equal(chat->name, "chat");
    assert_string_equal(chat->channel, "webchat");
    assert_string_equal(chat->priority, "urgent");
    assert_int_equal(chat->target_ms[SB_CLOCK_FIRST], 45000);
    assert_int_equal(chat->target_ms[SB_CLOCK_NEXT], 5 * MIN);
    assert_int_equal(chat->target_ms[SB_CLOCK_RESOLVE], 120 * MIN);
    assert_null(chat->cal);
    /* 50 % (merged from two lines), 100 % (implicit, nobody), 150 % */
    assert_int_equal(chat->nsteps, 3);
    assert_int_equal(chat->steps[0].percent, 50);
    assert_int_equal(chat->steps[0].ntargets, 3);
    assert_string_equal(chat->steps[0].targets[0], "assignee");
    assert_string_equal(chat->steps[0].targets[1], "everyone");
    assert_string_equal(chat->steps[0].targets[2], "role:agent");
    assert_int_equal(chat->steps[1].percent, 100);
    assert_int_equal(chat->steps[1].ntargets, 0);
    assert_int_equal(chat->steps[2].percent, 150);
    assert_string_equal(chat->steps[2].targets[0], "st_0123456789abcdefghjkmnpqrs");

    const sb_sla_policy_t *mail = sb_sla_match(conf, "email", "low");
    assert_non_null(mail);
    assert_string_equal(mail->name, "mail");
    assert_null(mail->priority);
    assert_int_equal(mail->nsteps, 2);
    assert_int_equal(mail->steps[0].percent, 50);
    assert_string_equal(mail->steps[0].targets[0], "role:agent");
    assert_int_equal(mail->steps[1].percent, 100);
    assert_int_equal(mail->steps[1].ntargets, 1); /* the repeated target once */
    assert_string_equal(mail->steps[1].targets[0], "role:admin");

    assert_null(sb_sla_match(conf, "webchat", "normal"));
    assert_null(sb_sla_match(conf, "mastodon", "urgent"));
    assert_null(sb_sla_match(conf, NULL, NULL));
    sb_sla_conf_free(conf);
}

static void test_sla_conf_empty_is_inactive(void **state)
{
    (void)state;
    static const char *const none[] = {NULL};
    sb_sla_conf_t *conf = compile_ok(none);
    assert_false(sb_sla_conf_active(conf));
    assert_null(sb_sla_match(conf, "webchat", "normal"));
    assert_null(sb_sla_calendar(conf, "office"));
    sb_sla_conf_free(conf);
    sb_sla_conf_free(NULL);
}

static void test_sla_conf_first_match_wins(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "sla urgent channel=* priority=urgent first=1m next=2m resolve=1h",
        "sla chat channel=webchat priority=* first=5m next=10m resolve=4h",
        "sla rest channel=* priority=* first=1h next=2h resolve=1d",
        "sla never channel=webchat priority=low first=1s next=1s resolve=1s",
        NULL,
    };
    sb_sla_conf_t *conf = compile_ok(lines);
    assert_string_equal(sb_sla_match(conf, "webchat", "urgent")->name, "urgent");
    assert_string_equal(sb_sla_match(conf, "webchat", "low")->name, "chat");
    assert_string_equal(sb_sla_match(conf, "email", "low")->name, "rest");
    assert_string_equal(sb_sla_match(conf, NULL, NULL)->name, "rest");
    sb_sla_conf_free(conf);
}

/* Each bad line alone, behind a valid one: its `file:line: what`, and no conf. */
static void test_sla_conf_reports_each_error(void **state)
{
    (void)state;
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"holiday nope 2026-12-24", "sb.conf:2: holiday: unknown calendar 'nope'\n"},
        {"sla b channel=* priority=* first=1m next=1m resolve=1m calendar=nope",
         "sb.conf:2: sla: unknown calendar 'nope'\n"},
        {"sla b channel=* priority=* first=5x next=1m resolve=1m",
         "sb.conf:2: sla: first=5x: not a duration from 1ms to 365d (45s, 5m, 2h, 1d)\n"},
        {"sla b channel=* priority=* first=0 next=1m resolve=1m",
         "sb.conf:2: sla: first=0: not a duration from 1ms to 365d (45s, 5m, 2h, 1d)\n"},
        {"sla b channel=* priority=* first=1m next=1m resolve=366d",
         "sb.conf:2: sla: resolve=366d: not a duration from 1ms to 365d (45s, 5m, 2h, 1d)\n"},
        {"sla b channel=* priority=* first=1m next=1m", "sb.conf:2: sla: 'b' has no resolve=\n"},
        {"sla b channel=* first=1m next=1m resolve=1m", "sb.conf:2: sla: 'b' has no priority=\n"},
        {"sla b priority=* first=1m next=1m resolve=1m", "sb.conf:2: sla: 'b' has no channel=\n"},
        {"sla b channel=* priority=* next=1m resolve=1m", "sb.conf:2: sla: 'b' has no first=\n"},
        {"sla b channel=* priority=* first=1m resolve=1m", "sb.conf:2: sla: 'b' has no next=\n"},
        {"sla b channel=* priority=* first=1m first=2m next=1m resolve=1m",
         "sb.conf:2: sla: first= given twice\n"},
        {"sla b channel=* priority=* first=1m next=1m resolution=1m",
         "sb.conf:2: sla: 'resolution=1m' is not a setting (channel= priority= first= next= "
         "resolve= calendar=)\n"},
        {"sla b channel=fax priority=* first=1m next=1m resolve=1m",
         "sb.conf:2: sla: unknown channel 'fax' (webchat, email, mastodon, bluesky, api or *)\n"},
        {"sla b channel=* priority=asap first=1m next=1m resolve=1m",
         "sb.conf:2: sla: unknown priority 'asap' (low, normal, high, urgent or *)\n"},
        {"sla a channel=* priority=* first=1m next=1m resolve=1m",
         "sb.conf:2: sla: 'a' is defined twice\n"},
        {"sla b/c channel=* priority=* first=1m next=1m resolve=1m",
         "sb.conf:2: sla: 'b/c' is not a name (letters, digits, _ . -)\n"},
        {"escalate a 0% assignee",
         "sb.conf:2: escalate: '0%' is not a percentage from 1% to 1000%\n"},
        {"escalate a 1001% assignee",
         "sb.conf:2: escalate: '1001%' is not a percentage from 1% to 1000%\n"},
        {"escalate a 50 assignee",
         "sb.conf:2: escalate: '50' is not a percentage from 1% to 1000%\n"},
        {"escalate a 50% boss", "sb.conf:2: escalate: 'boss' is not a target (assignee, everyone, "
                                "role:<agent|admin|exec|bot>, st_<id>)\n"},
        {"escalate a 50% assignee,role:king",
         "sb.conf:2: escalate: 'role:king' is not a target (assignee, everyone, "
         "role:<agent|admin|exec|bot>, st_<id>)\n"},
        {"escalate a 50% st_123",
         "sb.conf:2: escalate: 'st_123' is not a target (assignee, everyone, "
         "role:<agent|admin|exec|bot>, st_<id>)\n"},
        {"escalate a 50% assignee,", "sb.conf:2: escalate: '' is not a target (assignee, "
                                     "everyone, role:<agent|admin|exec|bot>, st_<id>)\n"},
        {"escalate ghost 50% assignee", "sb.conf:2: escalate: unknown sla 'ghost'\n"},
        {"calendar office Europe/Berlin mon-fri", "sb.conf:2: calendar: needs at least 4 words\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *lines[] = {"sla a channel=* priority=* first=1m next=1m resolve=1m",
                               cases[i].line, NULL};
        sb_sla_conf_t *conf = (sb_sla_conf_t *)&conf; /* must be reset */
        sb_buf_t errors;
        sb_buf_init(&errors, 1 << 16);
        assert_int_equal(compile(lines, &conf, &errors), SB_EINVAL);
        assert_null(conf);
        if (!errors.data || strcmp(errors.data, cases[i].want) != 0)
            fail_msg("%s\n got:  %s want: %s", cases[i].line, errors.data ? errors.data : "-",
                     cases[i].want);
        sb_buf_dispose(&errors);
    }
}

/* Every problem at once, in line order, the environment's last (saying which entry). */
static void test_sla_conf_reports_all_errors(void **state)
{
    (void)state;
    sb_config_t c;
    sb_config_init(&c);
    add_line(&c, "/etc/sb.conf", 3, "sla a channel=* priority=* first=1m next=1m resolve=1m");
    add_line(&c, "/etc/sb.conf", 7, "sla b channel=* priority=* first=1x next=1m");
    add_line(&c, "env:SWITCHBOARD_ESCALATE", 2, "escalate a 2000% everyone");
    add_line(&c, "/etc/sb.conf", 5, "escalate b 50% everyone");
    add_line(&c, "/etc/sb.conf", 9, "holiday office 2026-12-24");
    sb_sla_conf_t *conf = NULL;
    sb_buf_t errors;
    sb_buf_init(&errors, 1 << 16);
    assert_int_equal(sb_sla_conf_load(&c, &conf, &errors), SB_EINVAL);
    assert_null(conf);
    assert_string_equal(errors.data,
                        "/etc/sb.conf:5: escalate: unknown sla 'b'\n"
                        "/etc/sb.conf:7: sla: first=1x: not a duration from 1ms to 365d (45s, "
                        "5m, 2h, 1d)\n"
                        "/etc/sb.conf:9: holiday: unknown calendar 'office'\n"
                        "env:SWITCHBOARD_ESCALATE: entry 2: escalate: '2000%' is not a "
                        "percentage from 1% to 1000%\n");
    /* errors NULL: the same verdict, nothing written */
    assert_int_equal(sb_sla_conf_load(&c, &conf, NULL), SB_EINVAL);
    sb_buf_dispose(&errors);
    sb_config_dispose(&c);
}

/* ---- Plans on a 24/7 policy ---- */

static void test_sla_plan_running_first_response(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":7,\"channel\":\"webchat\","
                                 "\"priority\":\"normal\",\"status\":\"open\",\"assignee\":null,"
                                 "\"clocks\":{\"first_response\":{\"gen\":1,\"key\":\"x\","
                                 "\"used\":0,\"segs\":[],\"since\":1732270000000,\"done\":false},"
                                 "\"resolution\":{\"gen\":1,\"used\":0,\"segs\":[],"
                                 "\"since\":1732270000000,\"done\":false}},\"fired\":{}}");
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":7,\"policy\":\"quick\","
                      "\"due\":{\"first_response\":1732270600000,\"next_response\":null,"
                      "\"resolution\":1732356400000},"
                      "\"paused\":false,\"fold\":{},"
                      "\"steps\":["
                      "{\"at\":1732270300000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":50,\"targets\":[\"assignee\"]},"
                      "{\"at\":1732270600000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":100,\"targets\":[\"everyone\"]},"
                      "{\"at\":1732271200000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]},"
                      "{\"at\":1732313200000,\"clock\":\"resolution\",\"gen\":1,"
                      "\"percent\":50,\"targets\":[\"assignee\"]},"
                      "{\"at\":1732356400000,\"clock\":\"resolution\",\"gen\":1,"
                      "\"percent\":100,\"targets\":[\"everyone\"]},"
                      "{\"at\":1732442800000,\"clock\":\"resolution\",\"gen\":1,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]}],"
                      "\"queue_at\":1732270600000}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

static void test_sla_plan_paused_clock(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":2,\"channel\":\"email\","
                                 "\"priority\":\"low\",\"status\":\"pending\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":3,\"used\":120000,\"segs\":[],"
                                 "\"since\":null,\"done\":false}},\"fired\":{}}");
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":2,\"policy\":\"quick\","
                      "\"due\":{\"first_response\":null,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":true,\"fold\":{},\"steps\":[],"
                      "\"queue_at\":null}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* Two segments (1 min and 30 s) on top of 10 s folded: the fold, and the rest counted. */
static void test_sla_plan_folds_segments(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":3,\"channel\":\"email\","
                                 "\"priority\":\"low\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":1,\"used\":10000,"
                                 "\"segs\":[[1732270000000,1732270060000],"
                                 "[1732270100000,1732270130000]],"
                                 "\"since\":1732271000000,\"done\":false}},"
                                 "\"fired\":{\"first_response:1:50\":1}}");
    /* 100 s used: 100 % at since + 500 s, 200 % at since + 1100 s; 50 % fired */
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":3,\"policy\":\"quick\","
                      "\"due\":{\"first_response\":1732271500000,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":false,"
                      "\"fold\":{\"first_response\":{\"used\":100000,\"n\":2}},"
                      "\"steps\":["
                      "{\"at\":1732271500000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":100,\"targets\":[\"everyone\"]},"
                      "{\"at\":1732272100000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]}],"
                      "\"queue_at\":1732271500000}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* fired names clock, gen and percent: another wait (gen) plans the step again. */
static void test_sla_plan_fired_steps_excluded(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":3,\"channel\":\"email\","
                                 "\"priority\":\"low\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":2,\"used\":0,\"segs\":[],"
                                 "\"since\":1732270000000,\"done\":false}},"
                                 "\"fired\":{\"first_response:2:50\":1,\"first_response:2:100\":"
                                 "1,\"first_response:1:200\":1,\"resolution:2:200\":1}}");
    json_t *steps = json_object_get(plan, "steps");
    assert_int_equal(json_array_size(steps), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 0), "percent")), 200);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 0), "gen")), 2);
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* The same facts under another priority: another policy, its targets, time kept. */
static void test_sla_plan_priority_change(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "sla urgent channel=* priority=urgent first=1m next=2m resolve=1h",
        "sla rest channel=* priority=* first=1h next=2h resolve=1d",
        NULL,
    };
    sb_sla_conf_t *conf = compile_ok(lines);
#define PRIORITY_STATE(p)                                                                          \
    "{\"conv\":\"c_1\",\"rev\":3,\"channel\":\"email\",\"priority\":\"" p "\","                    \
    "\"clocks\":{\"first_response\":{\"gen\":1,\"used\":30000,\"segs\":[],"                        \
    "\"since\":1732270000000,\"done\":false}}}"
    const char *text = PRIORITY_STATE("normal");
    json_t *plan = plan_of(conf, text);
    assert_string_equal(json_string_value(json_object_get(plan, "policy")), "rest");
    assert_int_equal(json_integer_value(json_object_get(plan, "queue_at")), T0 + 60 * MIN - 30000);
    json_decref(plan);
    plan = plan_of(conf, PRIORITY_STATE("urgent"));
    assert_string_equal(json_string_value(json_object_get(plan, "policy")), "urgent");
    assert_int_equal(json_integer_value(json_object_get(plan, "queue_at")), T0 + 30000);
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* Marks passed long ago keep their instants: the due time is when the clock crossed. */
static void test_sla_plan_breached_clock_keeps_crossing(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    /* 4 min folded, then 4 min, then 8 min in segments: 50 % (5 min) in the first
       segment, 100 % (10 min) in the second, 200 % (20 min) still ahead */
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":3,\"channel\":\"email\","
                                 "\"priority\":\"low\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":1,\"used\":240000,"
                                 "\"segs\":[[1732270000000,1732270240000],"
                                 "[1732271000000,1732271480000]],"
                                 "\"since\":1732272000000,\"done\":false}},\"fired\":{}}");
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":3,\"policy\":\"quick\","
                      "\"due\":{\"first_response\":1732271120000,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":false,"
                      "\"fold\":{\"first_response\":{\"used\":960000,\"n\":2}},"
                      "\"steps\":["
                      "{\"at\":1732270060000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":50,\"targets\":[\"assignee\"]},"
                      "{\"at\":1732271120000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":100,\"targets\":[\"everyone\"]},"
                      "{\"at\":1732272240000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]}],"
                      "\"queue_at\":1732271120000}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* A step whose time has passed while the clock ran keeps its past time (fires next tick). */
static void test_sla_plan_past_step_keeps_past_at(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":3,\"channel\":\"email\","
                                 "\"priority\":\"low\",\"clocks\":{"
                                 "\"next_response\":{\"gen\":4,\"used\":0,\"segs\":[],"
                                 "\"since\":1732260000000,\"done\":false},"
                                 "\"first_response\":{\"gen\":1,\"used\":0,\"segs\":[],"
                                 "\"since\":null,\"done\":true}},\"fired\":{}}");
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":3,\"policy\":\"quick\","
                      "\"due\":{\"first_response\":null,\"next_response\":1732261200000,"
                      "\"resolution\":null},\"paused\":false,\"fold\":{},"
                      "\"steps\":["
                      "{\"at\":1732260600000,\"clock\":\"next_response\",\"gen\":4,"
                      "\"percent\":50,\"targets\":[\"assignee\"]},"
                      "{\"at\":1732261200000,\"clock\":\"next_response\",\"gen\":4,"
                      "\"percent\":100,\"targets\":[\"everyone\"]},"
                      "{\"at\":1732262400000,\"clock\":\"next_response\",\"gen\":4,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]}],"
                      "\"queue_at\":1732261200000}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

static void test_sla_plan_no_policy(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "sla chat channel=webchat priority=* first=1m next=2m resolve=1h",
        NULL,
    };
    sb_sla_conf_t *conf = compile_ok(lines);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_9\",\"rev\":1,\"channel\":\"email\","
                                 "\"priority\":\"normal\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":1,\"used\":0,"
                                 "\"segs\":[[1,2]],\"since\":5,\"done\":false}},\"fired\":[]}");
    assert_json(plan, "{\"conv\":\"c_9\",\"rev\":1,\"policy\":null,"
                      "\"due\":{\"first_response\":null,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":false,\"fold\":{},\"steps\":[],"
                      "\"queue_at\":null}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* Empty Lua tables arrive as {} or []: both are empty; done clocks plan nothing. */
static void test_sla_plan_empty_tables_and_done(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":0,\"channel\":null,"
                                 "\"priority\":null,\"clocks\":{\"resolution\":{\"gen\":0,"
                                 "\"segs\":{},\"since\":7,\"done\":true}}}");
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":0,\"policy\":\"quick\","
                      "\"due\":{\"first_response\":null,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":false,\"fold\":{},\"steps\":[],"
                      "\"queue_at\":null}");
    json_decref(plan);
    plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":1.0,\"channel\":\"api\",\"priority\":\"high\","
                         "\"clocks\":[],\"fired\":[]}");
    assert_int_equal(json_integer_value(json_object_get(plan, "rev")), 1);
    assert_int_equal(json_array_size(json_object_get(plan, "steps")), 0);
    json_decref(plan);
    sb_sla_conf_free(conf);
}

static void test_sla_plan_refuses_bad_state(void **state)
{
    (void)state;
    static const struct {
        const char *json, *why;
    } cases[] = {
        {"[]", "state is not an object"},
        {"{\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{}}", "conv"},
        {"{\"conv\":\"\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{}}", "conv"},
        {"{\"conv\":\"c\",\"rev\":-1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{}}", "rev"},
        {"{\"conv\":\"c\",\"rev\":1.5,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{}}", "rev"},
        {"{\"conv\":\"c\",\"rev\":\"1\",\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{}}",
         "rev"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":3,\"priority\":\"b\",\"clocks\":{}}", "channel"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":[],\"clocks\":{}}", "priority"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\"}", "clocks"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{},"
         "\"fired\":[1]}",
         "fired"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{},"
         "\"status\":1}",
         "status"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":{\"x\":{}}}",
         "clock other than"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"since\":null}}}",
         "gen"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1}}}",
         "since"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":-5}}}",
         "since"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":1e300}}}",
         "since"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":null,\"done\":1}}}",
         "done"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":null,\"used\":-1}}}",
         "used"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":null,\"segs\":[[5,4]]}}}",
         "segs[0]"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":null,\"segs\":[[1,2,3]]}}}",
         "segs[0]"},
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":null,\"segs\":{\"a\":1}}}}",
         "segs is not an array"},
    };
    sb_sla_conf_t *conf = compile_ok(quick_conf);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *s = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
        assert_non_null(s);
        char err[256] = "";
        json_t *plan = sb_sla_plan_json(conf, s, T0, err, sizeof(err));
        if (plan || !strstr(err, cases[i].why))
            fail_msg("%s: plan %p, err '%s', want '%s'", cases[i].json, (void *)plan, err,
                     cases[i].why);
        json_decref(s);
    }
    /* 256 segments are fine, 257 are not */
    json_t *segs = json_array();
    for (int i = 0; i < 257; i++)
        json_array_append_new(segs, json_pack("[I,I]", (json_int_t)i * 10, (json_int_t)i * 10 + 1));
    json_t *s =
        json_pack("{s:s,s:i,s:s,s:s,s:{s:{s:i,s:n,s:o}}}", "conv", "c", "rev", 1, "channel", "a",
                  "priority", "b", "clocks", "resolution", "gen", 1, "since", "segs", segs);
    char err[256] = "";
    assert_null(sb_sla_plan_json(conf, s, T0, err, sizeof(err)));
    assert_non_null(strstr(err, "more than 256 segs"));
    json_array_remove(segs, 0);
    json_t *plan = sb_sla_plan_json(conf, s, T0, err, sizeof(err));
    assert_non_null(plan);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(plan, "fold"), "resolution"), "n")),
                     256);
    json_decref(plan);
    json_decref(s);
    sb_sla_conf_free(conf);
}

int main(void)
{
    sb_alloc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sla_conf_compiles_policies_and_steps),
        cmocka_unit_test(test_sla_conf_empty_is_inactive),
        cmocka_unit_test(test_sla_conf_first_match_wins),
        cmocka_unit_test(test_sla_conf_reports_each_error),
        cmocka_unit_test(test_sla_conf_reports_all_errors),
        cmocka_unit_test(test_sla_plan_running_first_response),
        cmocka_unit_test(test_sla_plan_paused_clock),
        cmocka_unit_test(test_sla_plan_folds_segments),
        cmocka_unit_test(test_sla_plan_fired_steps_excluded),
        cmocka_unit_test(test_sla_plan_priority_change),
        cmocka_unit_test(test_sla_plan_breached_clock_keeps_crossing),
        cmocka_unit_test(test_sla_plan_past_step_keeps_past_at),
        cmocka_unit_test(test_sla_plan_no_policy),
        cmocka_unit_test(test_sla_plan_empty_tables_and_done),
        cmocka_unit_test(test_sla_plan_refuses_bad_state),
    };
    return cmocka_run_group_tests_name("core/sla", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * SLA plans (core/sla_plan.c): the plan of a conversation's clocks computed from its facts
 * as docs/sla.md "Plan" says (due times, escalation steps, folds, queue_at), on 24/7 and
 * business-hours policies, and states not shaped as documented refused.
 */
#include "tests/unit/sla_fixture.h"

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
        {"{\"conv\":\"c\",\"rev\":1,\"channel\":\"a\",\"priority\":\"b\",\"clocks\":"
         "{\"resolution\":{\"gen\":1,\"since\":null,\"segs\":[[0,200000000000],"
         "[300000000000,500000000000]]}}}",
         "segs cover more than 10 years"},
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

/* ---- Plans on a business-hours policy ---- */

static const char *const biz_conf[] = {
    "calendar office Europe/Berlin mon-fri 09:00-17:00",
    "sla biz channel=* priority=* first=2h next=4h resolve=2d calendar=office",
    "escalate biz 50% assignee",
    "escalate * 200% role:exec",
    NULL,
};

#define FRI_1630 1795793400000LL /* 2026-11-27 16:30 in Berlin (CET) */
#define FRI_1600 1795791600000LL
#define FRI_1800 1795798800000LL
#define MON_0900 1796025600000LL /* 2026-11-30 */
#define MON_1100 1796032800000LL
#define MON_1230 1796038200000LL

/* Friday 16:30 + 2 h on a 09:00-17:00 calendar: half an hour Friday, due Monday 10:30. */
static void test_sla_plan_business_hours(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(biz_conf);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":1,\"channel\":\"email\","
                                 "\"priority\":\"normal\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":1,\"used\":0,\"segs\":[],"
                                 "\"since\":1795793400000,\"done\":false}},\"fired\":{}}");
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":1,\"policy\":\"biz\","
                      "\"due\":{\"first_response\":1796031000000,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":false,\"fold\":{},"
                      "\"steps\":["
                      "{\"at\":1796027400000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":50,\"targets\":[\"assignee\"]},"
                      "{\"at\":1796031000000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":100,\"targets\":[]},"
                      "{\"at\":1796038200000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]}],"
                      "\"queue_at\":1796031000000}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* A holiday on the Monday moves every step to Tuesday. */
static void test_sla_plan_business_hours_holiday(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "calendar office Europe/Berlin mon-fri 09:00-17:00",
        "holiday office 2026-11-30",
        "sla biz channel=* priority=* first=2h next=4h resolve=2d calendar=office",
        "escalate biz 50% assignee",
        NULL,
    };
    sb_sla_conf_t *conf = compile_ok(lines);
    json_t *plan = plan_of(conf, "{\"conv\":\"c_1\",\"rev\":1,\"channel\":\"email\","
                                 "\"priority\":\"normal\",\"clocks\":{"
                                 "\"first_response\":{\"gen\":1,\"used\":0,\"segs\":[],"
                                 "\"since\":1795793400000,\"done\":false}},\"fired\":{}}");
    json_t *steps = json_object_get(plan, "steps");
    assert_int_equal(json_array_size(steps), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 0), "at")),
                     1796113800000LL); /* Tuesday 09:30 */
    assert_int_equal(json_integer_value(json_object_get(plan, "queue_at")),
                     1796117400000LL); /* Tuesday 10:30 */
    json_decref(plan);
    sb_sla_conf_free(conf);
}

/* Only open time counts in a segment and in the fold: Friday 16:00-18:00 is one hour. */
static void test_sla_plan_business_hours_segments(void **state)
{
    (void)state;
    sb_sla_conf_t *conf = compile_ok(biz_conf);
    char text[512];
    snprintf(text, sizeof(text),
             "{\"conv\":\"c_1\",\"rev\":1,\"channel\":\"email\",\"priority\":\"normal\","
             "\"clocks\":{\"first_response\":{\"gen\":1,\"used\":0,\"segs\":[[%lld,%lld]],"
             "\"since\":%lld,\"done\":false}},\"fired\":{\"first_response:1:50\":1}}",
             FRI_1600, FRI_1800, MON_0900);
    json_t *plan = plan_of(conf, text);
    json_t *fold = json_object_get(json_object_get(plan, "fold"), "first_response");
    assert_int_equal(json_integer_value(json_object_get(fold, "used")), 3600000);
    assert_int_equal(json_integer_value(json_object_get(fold, "n")), 1);
    assert_int_equal(json_integer_value(json_object_get(plan, "queue_at")),
                     MON_0900 + 3600000); /* the second hour on Monday */
    json_decref(plan);

    /* Friday 16:30 to Monday 11:00 holds 2.5 h open: crossed 2 h at Monday 10:30; the
       200 % mark is 1.5 h after the clock ran again at 12:30 */
    snprintf(text, sizeof(text),
             "{\"conv\":\"c_1\",\"rev\":1,\"channel\":\"email\",\"priority\":\"normal\","
             "\"clocks\":{\"first_response\":{\"gen\":1,\"used\":0,\"segs\":[[%lld,%lld]],"
             "\"since\":%lld,\"done\":false}},\"fired\":{}}",
             FRI_1630, MON_1100, MON_1230);
    plan = plan_of(conf, text);
    assert_json(plan, "{\"conv\":\"c_1\",\"rev\":1,\"policy\":\"biz\","
                      "\"due\":{\"first_response\":1796031000000,\"next_response\":null,"
                      "\"resolution\":null},\"paused\":false,"
                      "\"fold\":{\"first_response\":{\"used\":9000000,\"n\":1}},"
                      "\"steps\":["
                      "{\"at\":1796027400000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":50,\"targets\":[\"assignee\"]},"
                      "{\"at\":1796031000000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":100,\"targets\":[]},"
                      "{\"at\":1796043600000,\"clock\":\"first_response\",\"gen\":1,"
                      "\"percent\":200,\"targets\":[\"role:exec\"]}],"
                      "\"queue_at\":1796031000000}");
    json_decref(plan);
    sb_sla_conf_free(conf);
}

int main(void)
{
    sb_alloc_init();
    const struct CMUnitTest tests[] = {
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
        cmocka_unit_test(test_sla_plan_business_hours),
        cmocka_unit_test(test_sla_plan_business_hours_holiday),
        cmocka_unit_test(test_sla_plan_business_hours_segments),
    };
    return cmocka_run_group_tests_name("core/sla_plan", tests, NULL, NULL);
}

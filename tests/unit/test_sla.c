/* SPDX-License-Identifier: MIT */
/*
 * SLA configuration (core/sla_conf.c): the calendar, holiday, sla and escalate lines
 * compiled into calendars and policies, every mistake reported as `file:line: what` (all
 * at once, in line order, none twice), and the first matching policy chosen.
 */
#include "tests/unit/sla_fixture.h"

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
         "sb.conf:2: sla: unknown channel 'fax' (webchat, email, mastodon, bluesky, hook, api or "
         "*)\n"},
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
    add_line(&c, "/etc/sb.conf", 5, "escalate c 50% everyone");
    add_line(&c, "/etc/sb.conf", 6, "escalate b 50% everyone"); /* b is refused: not again */
    add_line(&c, "/etc/sb.conf", 9, "holiday office 2026-12-24");
    add_line(&c, "/etc/sb.conf", 10, "sla b channel=* priority=* first=1m next=1m resolve=1m");
    sb_sla_conf_t *conf = NULL;
    sb_buf_t errors;
    sb_buf_init(&errors, 1 << 16);
    assert_int_equal(sb_sla_conf_load(&c, &conf, &errors), SB_EINVAL);
    assert_null(conf);
    assert_string_equal(errors.data,
                        "/etc/sb.conf:5: escalate: unknown sla 'c'\n"
                        "/etc/sb.conf:7: sla: first=1x: not a duration from 1ms to 365d (45s, "
                        "5m, 2h, 1d)\n"
                        "/etc/sb.conf:9: holiday: unknown calendar 'office'\n"
                        "/etc/sb.conf:10: sla: 'b' is defined twice\n"
                        "env:SWITCHBOARD_ESCALATE: entry 2: escalate: '2000%' is not a "
                        "percentage from 1% to 1000%\n");
    /* errors NULL: the same verdict, nothing written */
    assert_int_equal(sb_sla_conf_load(&c, &conf, NULL), SB_EINVAL);
    sb_buf_dispose(&errors);
    sb_config_dispose(&c);
}

/* ---- Calendars ---- */

static void test_sla_conf_calendars_and_holidays(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "calendar office Europe/Berlin mon-fri 09:00-12:30,13:30-17:30 sat 10:00-14:00",
        "calendar night UTC mon-sun 22:00-06:00",
        "holiday office 2026-12-24 2026-12-25",
        "holiday office 2026-12-31",
        "sla biz channel=email priority=* first=4h next=8h resolve=3d calendar=office",
        "sla all channel=* priority=* first=1h next=1h resolve=1d",
        NULL,
    };
    sb_sla_conf_t *conf = compile_ok(lines);
    const sb_calendar_t *office = sb_sla_calendar(conf, "office");
    assert_non_null(office);
    assert_string_equal(sb_calendar_name(office), "office");
    assert_non_null(sb_sla_calendar(conf, "night"));
    assert_null(sb_sla_calendar(conf, "home"));
    assert_ptr_equal(sb_sla_match(conf, "email", "low")->cal, office);
    assert_null(sb_sla_match(conf, "webchat", "low")->cal);
    /* the holidays reached the calendar: Thursday 2026-12-24 10:00 in Berlin is closed */
    assert_false(sb_calendar_is_open(office, 1798102800000LL));
    assert_true(sb_calendar_is_open(office, 1798102800000LL - 7 * 24 * 3600000LL));
    sb_sla_conf_free(conf);
}

static void test_sla_conf_calendar_errors(void **state)
{
    (void)state;
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"calendar x Mars/Olympus mon-fri 09:00-17:00", "sb.conf:2: calendar: "},
        {"calendar x UTC mon-fri 25:00-26:00", "sb.conf:2: calendar: bad range 25:00-26:00\n"},
        {"calendar x UTC mon-fry 09:00-17:00", "sb.conf:2: calendar: bad days mon-fry\n"},
        {"calendar x UTC mon-fri 09:00-17:00 sat", "sb.conf:2: calendar: "},
        {"calendar office UTC mon 09:00-17:00", "sb.conf:2: calendar: 'office' is defined twice\n"},
        {"holiday office 2026-13-01", "sb.conf:2: holiday: bad date 2026-13-01\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *lines[] = {"calendar office Europe/Berlin mon-fri 09:00-17:00", cases[i].line,
                               NULL};
        sb_sla_conf_t *conf = NULL;
        sb_buf_t errors;
        sb_buf_init(&errors, 1 << 16);
        assert_int_equal(compile(lines, &conf, &errors), SB_EINVAL);
        assert_null(conf);
        const char *want = cases[i].want;
        size_t n = strlen(want);
        bool whole = want[n - 1] == '\n';
        if (!errors.data || (whole ? strcmp(errors.data, want) : strncmp(errors.data, want, n)) ||
            strchr(errors.data, '\n') != errors.data + errors.len - 1)
            fail_msg("%s\n got:  %s want: %s", cases[i].line, errors.data ? errors.data : "-",
                     want);
        sb_buf_dispose(&errors);
    }
}

/* A line naming a refused calendar or policy is not reported again. */
static void test_sla_conf_no_cascade(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "calendar office Mars/Olympus mon-fri 09:00-17:00",
        "holiday office 2026-12-24",
        "sla biz channel=* priority=* first=1h next=1h resolve=1h calendar=office",
        "sla slow channel=* priority=* first=1h next=1h resolve=1x",
        "escalate slow 50% assignee",
        "escalate biz 50% assignee",
        NULL,
    };
    sb_sla_conf_t *conf = NULL;
    sb_buf_t errors;
    sb_buf_init(&errors, 1 << 16);
    assert_int_equal(compile(lines, &conf, &errors), SB_EINVAL);
    assert_null(conf);
    assert_string_equal(errors.data,
                        "sb.conf:1: calendar: unknown time zone Mars/Olympus\n"
                        "sb.conf:4: sla: resolve=1x: not a duration from 1ms to 365d (45s, 5m, "
                        "2h, 1d)\n");
    sb_buf_dispose(&errors);
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
        cmocka_unit_test(test_sla_conf_calendars_and_holidays),
        cmocka_unit_test(test_sla_conf_calendar_errors),
        cmocka_unit_test(test_sla_conf_no_cascade),
    };
    return cmocka_run_group_tests_name("core/sla", tests, NULL, NULL);
}

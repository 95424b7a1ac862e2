/* SPDX-License-Identifier: MIT */
/*
 * What the SLA unit tests share (test_sla.c, test_sla_plan.c): config lines built into an
 * sb_config_t and compiled, a state planned from JSON text, a plan compared with the JSON
 * it should equal, and the 24/7 policy most plan tests use. Each test file is its own
 * executable, so these are static (inline where a file may not use them).
 */
#ifndef SB_TESTS_UNIT_SLA_FIXTURE_H
#define SB_TESTS_UNIT_SLA_FIXTURE_H

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

static inline sb_config_list_t *list_named(sb_config_t *c, const char *key)
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
static inline void add_line(sb_config_t *c, const char *file, int line, const char *text)
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
static inline int compile(const char *const *lines, sb_sla_conf_t **conf, sb_buf_t *errors)
{
    sb_config_t c;
    sb_config_init(&c);
    for (int i = 0; lines[i]; i++)
        add_line(&c, "sb.conf", i + 1, lines[i]);
    int rc = sb_sla_conf_load(&c, conf, errors);
    sb_config_dispose(&c);
    return rc;
}

static inline sb_sla_conf_t *compile_ok(const char *const *lines)
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
static inline json_t *plan_of(const sb_sla_conf_t *conf, const char *state_text)
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

static inline void assert_json(json_t *got, const char *want_text)
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

static const char *const quick_conf[] __attribute__((unused)) = {
    "sla quick channel=* priority=* first=10m next=20m resolve=1d",
    "escalate quick 50% assignee",
    "escalate quick 100% everyone",
    "escalate * 200% role:exec",
    NULL,
};

#endif

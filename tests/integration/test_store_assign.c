/* SPDX-License-Identifier: MIT */
/*
 * The `assign` action of the function library against a real redis-server: assign,
 * reassign, the no-op, unassign, the `assigned` events in the transcript, and the queue
 * (an assigned conversation still awaits its answer and lists under its assignee).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/harness/harness.h"
#include "tests/integration/store_fixture.h"

static json_t *to(const char *sid)
{
    return sid ? json_pack("{s:s}", "to", sid) : json_pack("{s:n}", "to");
}

/* The ids of the open conversations whose assignee filter is `assignee`. */
static bool listed(fixture_t *f, const char *assignee, const char *conv)
{
    result_t r = {0};
    sb_list_query_t q = {.status = "open", .assignee = assignee, .limit = 200};
    assert_int_equal(sb_store_list(f->store, &q, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    bool found = false;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(r.json, "items"), i, c)
    {
        const char *id = jstr(c, "id");
        found = found || (id && strcmp(id, conv) == 0);
    }
    reset(&r);
    return found;
}

static void test_assign_reassign_unassign(void **state)
{
    fixture_t *f = *state;
    char conv[SB_ID_MAX];
    new_conv(f, conv, NULL);
    result_t r = {0};

    act(f, conv, "assign", &bob, to("st_eve"), &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "changed")));
    assert_string_equal(jstr(r.json, "conversation.assignee"), "st_eve");
    assert_string_equal(jstr(r.json, "event.type"), "assigned");
    assert_string_equal(jstr(r.json, "event.to"), "st_eve");
    assert_string_equal(jstr(r.json, "event.by"), "st_bob");
    assert_true(json_is_null(json_object_get(json_object_get(r.json, "event"), "from")));
    /* still awaiting its answer: in the queue, under its assignee */
    assert_true(json_integer_value(json_object_get(json_object_get(r.json, "conversation"),
                                                   "awaiting_since")) > 0);
    assert_true(listed(f, "st_eve", conv));
    assert_false(listed(f, "none", conv));

    act(f, conv, "assign", &bob, to("st_eve"), &r); /* already hers: nothing happens */
    assert_int_equal(r.status, 0);
    assert_false(json_is_true(json_object_get(r.json, "changed")));
    assert_true(json_is_null(json_object_get(r.json, "event")));

    act(f, conv, "assign", &admin, to("st_bob"), &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "event.from"), "st_eve");
    assert_string_equal(jstr(r.json, "event.to"), "st_bob");
    assert_true(listed(f, "st_bob", conv));
    assert_false(listed(f, "st_eve", conv));

    act(f, conv, "assign", &bob, to(NULL), &r); /* null: nobody */
    assert_int_equal(r.status, 0);
    assert_true(json_is_null(json_object_get(json_object_get(r.json, "conversation"), "assignee")));
    assert_string_equal(jstr(r.json, "event.from"), "st_bob");
    assert_true(json_is_null(json_object_get(json_object_get(r.json, "event"), "to")));
    assert_true(listed(f, "none", conv));
    reset(&r);

    json_t *last = NULL;
    assert_int_equal(count_events(f, conv, "assigned", &last), 3);
    assert_string_equal(jstr(last, "by"), "st_bob");
    json_decref(last);

    /* an unknown conversation */
    char nobody[SB_ID_MAX];
    sb_id_new("c_", nobody);
    act(f, nobody, "assign", &bob, to("st_eve"), &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    reset(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_assign_reassign_unassign, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Staff as connectors see them (core/store_staff.c): the notify list joins the notify hash
 * (what sbctl staff notify writes) with each member's record; sb_store_once lets exactly
 * one caller through per name and expiry.
 */
#include "tests/integration/store_fixture.h"

static json_t *find(json_t *list, const char *id)
{
    for (size_t i = 0; i < json_array_size(list); i++)
        if (strcmp(jstr(json_array_get(list, i), "id"), id) == 0)
            return json_array_get(list, i);
    return NULL;
}

static void test_notify_list(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    /* nobody asked for mail yet */
    assert_int_equal(sb_store_notify_list(f->store, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "staff")), 0);
    reset(&r);

    const char *a = "st_01jd3k5x2p8q9r0s1t2v3w4x5a", *b = "st_01jd3k5x2p8q9r0s1t2v3w4x5b";
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:%s id %s name %s email %s", a, a, "Ada",
                      "ada@x.test");
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:%s id %s name %s email %s", b, b, "Bo", "bo@x.test");
    sb_test_redis_cmd(&f->srv, "HSET sb:notify %s new %s assigned junk-id new", a, b);
    assert_int_equal(sb_store_notify_list(f->store, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    json_t *list = json_object_get(r.json, "staff");
    assert_int_equal(json_array_size(list), 2); /* the malformed id is skipped */
    assert_string_equal(jstr(find(list, a), "notify"), "new");
    assert_string_equal(jstr(find(list, a), "email"), "ada@x.test");
    assert_string_equal(jstr(find(list, b), "notify"), "assigned");
    assert_string_equal(jstr(find(list, b), "name"), "Bo");
    reset(&r);
}

static void test_once(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    assert_int_equal(sb_store_once(f->store, "notify:c_1:st_1", 60, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "first")));
    reset(&r);
    assert_int_equal(sb_store_once(f->store, "notify:c_1:st_1", 60, on_result, &r), 0);
    wait(f, &r);
    assert_true(json_is_false(json_object_get(r.json, "first")));
    reset(&r);
    int ttl = atoi(sb_test_redis_cmd(&f->srv, "TTL sb:once:notify:c_1:st_1"));
    assert_true(ttl > 0 && ttl <= 60);
    assert_int_equal(sb_store_once(f->store, "", 60, on_result, &r), SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Canned replies (core/store_canned.c) on a real redis-server: create and replace (the
 * first author kept), the list sorted by shortcut and robust to foreign values, delete by
 * the author or an admin only, the 1000-entry limit, and input checks.
 */
#include "core/msg.h"
#include "tests/integration/store_fixture.h"

static void put(fixture_t *f, result_t *r, const char *sc, const char *text, const char *by)
{
    reset(r);
    assert_int_equal(sb_store_canned_put(f->store, sc, "Title", text, by, on_result, r), 0);
    wait(f, r);
}

static void del(fixture_t *f, result_t *r, const char *sc, const char *by, bool any)
{
    reset(r);
    assert_int_equal(sb_store_canned_delete(f->store, sc, by, any, on_result, r), 0);
    wait(f, r);
}

static json_t *list(fixture_t *f, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_canned_list(f->store, on_result, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
    return json_object_get(r->json, "items");
}

static void test_crud(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    assert_int_equal(json_array_size(list(f, &r)), 0);

    put(f, &r, "thanks", "Thank you, {{contact.name}}", "st_a");
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    assert_string_equal(jstr(r.json, "item.created_by"), "st_a");
    put(f, &r, "thanks", "Thanks — «ünïcode»", "st_b");
    assert_int_equal(r.status, 0);
    assert_true(json_is_false(json_object_get(r.json, "created")));
    assert_string_equal(jstr(r.json, "item.created_by"), "st_a"); /* the first author stays */
    assert_string_equal(jstr(r.json, "item.updated_by"), "st_b");
    assert_string_equal(jstr(r.json, "item.text"), "Thanks — «ünïcode»");
    assert_true(json_is_integer(json_object_get(json_object_get(r.json, "item"), "updated_at")));
    put(f, &r, "a-1", "first", "st_b");
    put(f, &r, "z_9", "last", "st_b");
    sb_test_redis_cmd(&f->srv, "HSET sb:canned junk not-json other %s", "[1]");

    json_t *items = list(f, &r);
    assert_int_equal(json_array_size(items), 3); /* foreign values are skipped */
    assert_string_equal(jstr(json_array_get(items, 0), "shortcut"), "a-1");
    assert_string_equal(jstr(json_array_get(items, 1), "shortcut"), "thanks");
    assert_string_equal(jstr(json_array_get(items, 1), "text"), "Thanks — «ünïcode»");
    assert_string_equal(jstr(json_array_get(items, 2), "shortcut"), "z_9");

    del(f, &r, "thanks", "st_b", false); /* not the author, not an admin */
    assert_int_equal(r.status, SB_EFORBIDDEN);
    del(f, &r, "thanks", "st_a", false);
    assert_int_equal(r.status, 0);
    del(f, &r, "thanks", "st_a", false);
    assert_int_equal(r.status, SB_ENOTFOUND);
    del(f, &r, "a-1", "st_x", true); /* an admin deletes anyone's */
    assert_int_equal(r.status, 0);
    assert_int_equal(json_array_size(list(f, &r)), 1);
    reset(&r);
}

static void test_limit(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    sb_test_redis_cmd(&f->srv, "EVAL %s 0",
                      "for i=1,999 do redis.call('HSET','sb:canned','f'..i,"
                      "'{\"shortcut\":\"f'..i..'\"}') end");
    put(f, &r, "the-1000th", "fits", "st_a");
    assert_int_equal(r.status, 0);
    put(f, &r, "one-more", "does not", "st_a");
    assert_int_equal(r.status, SB_ECONFLICT);
    put(f, &r, "the-1000th", "a replace still does", "st_a");
    assert_int_equal(r.status, 0);
    assert_int_equal(atoi(sb_test_redis_cmd(&f->srv, "HLEN sb:canned")), 1000);
    reset(&r);
}

static void test_invalid(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char big[SB_MAX_TEXT + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    const char *bad_shortcuts[] = {"",     "Upper", "with space",
                                   "dot.", "é",     "123456789012345678901234567890123"};
    for (size_t i = 0; i < SB_ARRAY_LEN(bad_shortcuts); i++) {
        assert_false(sb_canned_shortcut_valid(bad_shortcuts[i]));
        assert_int_equal(
            sb_store_canned_put(f->store, bad_shortcuts[i], "", "x", "st_a", on_result, &r),
            SB_EINVAL);
    }
    assert_true(sb_canned_shortcut_valid("12345678901234567890123456789012"));
    assert_int_equal(sb_store_canned_put(f->store, "ok", "", big, "st_a", on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_canned_put(f->store, "ok", "", "\xc3", "st_a", on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_canned_put(f->store, "ok", "a\nb", "x", "st_a", on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_canned_put(f->store, "ok", "", "x", "", on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_canned_delete(f->store, "Bad", "st_a", true, on_result, &r),
                     SB_EINVAL);
    const char *why = NULL;
    assert_int_equal(sb_canned_check("ok", "", big, &why), SB_ETOOBIG);
    assert_non_null(strstr(why, "8 KiB"));
    assert_int_equal(sb_canned_check("ok", "", "\xff", &why), SB_EUTF8);
    assert_int_equal(sb_canned_check("ok", NULL, "x", &why), SB_EINVAL);
    assert_false(r.done); /* nothing was sent */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

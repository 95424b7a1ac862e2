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

static void test_staff_list(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    const char *a = "st_01jd3k5x2p8q9r0s1t2v3w4x5a", *b = "st_01jd3k5x2p8q9r0s1t2v3w4x5b";
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:%s id %s name Ada email ada@x.test role agent", a, a);
    sb_test_redis_cmd(&f->srv,
                      "HSET sb:staff:%s id %s name Bo email bo@x.test role exec channels %s", b, b,
                      "email,webchat");
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:junk id junk role agent"); /* not an id: skipped */
    sb_test_redis_cmd(&f->srv, "HSET sb:bot:bot_1 id bot_1 role bot");
    sb_test_redis_cmd(&f->srv, "HSET sb:notify %s assigned", b);
    sb_test_redis_cmd(&f->srv, "EVAL %s 0", /* several SCAN pages */
                      "for i=1,3000 do redis.call('SET','sb:filler:'..i,'x') end");
    assert_int_equal(sb_store_staff_list(f->store, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    json_t *list = json_object_get(r.json, "staff");
    assert_int_equal(json_array_size(list), 2);
    json_t *ada = find(list, a), *bo = find(list, b);
    assert_string_equal(jstr(ada, "role"), "agent");
    assert_string_equal(jstr(ada, "email"), "ada@x.test");
    assert_string_equal(jstr(ada, "notify"), "none");
    assert_true(json_is_null(json_object_get(ada, "channels")));
    assert_string_equal(jstr(bo, "notify"), "assigned");
    json_t *ch = json_object_get(bo, "channels");
    assert_int_equal(json_array_size(ch), 2);
    assert_string_equal(json_string_value(json_array_get(ch, 1)), "webchat");
    reset(&r);

    /* Records from before the index were adopted into it; from now on the index is read,
     * never the key space: a member sbctl adds is there, one it removes is gone, and no
     * SCAN runs again. */
    const char *c = "st_01jd3k5x2p8q9r0s1t2v3w4x5c";
    assert_string_equal(sb_test_redis_cmd(&f->srv, "SCARD sb:staff_index"), "2");
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:%s id %s name Cy role admin", c, c);
    sb_test_redis_cmd(&f->srv, "SADD sb:staff_index %s", c);
    sb_test_redis_cmd(&f->srv, "DEL sb:staff:%s", a);
    sb_test_redis_cmd(&f->srv, "SREM sb:staff_index %s", a);
    sb_test_redis_cmd(&f->srv, "CONFIG RESETSTAT");
    assert_int_equal(sb_store_staff_list(f->store, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    list = json_object_get(r.json, "staff");
    assert_int_equal(json_array_size(list), 2);
    assert_null(find(list, a));
    assert_string_equal(jstr(find(list, c), "role"), "admin");
    assert_non_null(find(list, b));
    const char *stats = sb_test_redis_cmd(&f->srv, "INFO commandstats");
    assert_null(strstr(stats, "cmdstat_scan"));
    reset(&r);
}

/* sb_store_staff_cached: callers meanwhile share one read, answered in order; a fresh list
 * answers at once; an older one is read again. */
static int order[4], norder;
static size_t last_len;
static void on_cached(int status, const json_t *staff, void *data)
{
    assert_int_equal(status, 0);
    last_len = json_array_size(staff);
    order[norder++] = (int)(intptr_t)data;
}

static void test_staff_cached(void **state)
{
    fixture_t *f = *state;
    const char *a = "st_01jd3k5x2p8q9r0s1t2v3w4x5a";
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:%s id %s name Ada role agent", a, a);
    sb_test_redis_cmd(&f->srv, "SADD sb:staff_index %s", a);
    sb_test_redis_cmd(&f->srv, "CONFIG RESETSTAT");
    sb_store_staff_cached(f->store, 60000, on_cached, (void *)1);
    sb_store_staff_cached(f->store, 60000, on_cached, (void *)2);
    assert_int_equal(norder, 0); /* both wait for the one read */
    SB_TEST_SPIN_UNTIL(&f->loop, norder == 2, 5000);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(last_len, 1);
    sb_store_staff_cached(f->store, 60000, on_cached, (void *)3); /* fresh: at once */
    assert_int_equal(norder, 3);
    const char *stats = sb_test_redis_cmd(&f->srv, "INFO commandstats");
    assert_non_null(strstr(stats, "cmdstat_hgetall:calls=1,")); /* the notify hash, once */
    /* a member added meanwhile shows once the list is older than the caller allows */
    const char *b = "st_01jd3k5x2p8q9r0s1t2v3w4x5b";
    sb_test_redis_cmd(&f->srv, "HSET sb:staff:%s id %s name Bo role admin", b, b);
    sb_test_redis_cmd(&f->srv, "SADD sb:staff_index %s", b);
    sb_store_staff_cached(f->store, 0, on_cached, (void *)4);
    SB_TEST_SPIN_UNTIL(&f->loop, norder == 4, 5000);
    assert_int_equal(last_len, 2);
}

static void test_notif(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    const char *a = "st_01jd3k5x2p8q9r0s1t2v3w4x5a", *b = "st_01jd3k5x2p8q9r0s1t2v3w4x5b";
    const char *both[] = {a, b};
    /* the same notification twice (two nodes) is kept once */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            sb_store_notif_add(f->store, both, 2, 1000, "{\"id\":\"m_1\"}", on_result, &r), 0);
        wait(f, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(json_integer_value(json_object_get(r.json, "added")), i ? 0 : 2);
        reset(&r);
    }
    assert_int_equal(sb_store_notif_add(f->store, both, 1, 2000, "{\"id\":\"m_2\"}", on_result, &r),
                     0);
    wait(f, &r);
    reset(&r);
    assert_int_equal(sb_store_notif_list(f->store, a, 10, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_string_equal(jstr(json_array_get(items, 0), "id"), "m_2"); /* newest first */
    assert_int_equal(json_integer_value(json_object_get(r.json, "unread")), 2);
    reset(&r);
    /* read up to 1000: one left; a mark never moves back */
    assert_int_equal(sb_store_notif_read(f->store, a, 1000, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "unread")), 1);
    reset(&r);
    assert_int_equal(sb_store_notif_read(f->store, a, 10, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "unread")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "read_until")), 1000);
    reset(&r);
    assert_int_equal(sb_store_notif_list(f->store, b, 1, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 1);
    assert_int_equal(json_integer_value(json_object_get(r.json, "unread")), 1);
    reset(&r);
    /* capped at the newest SB_STORE_NOTIF_KEEP */
    for (int i = 0; i < SB_STORE_NOTIF_KEEP + 5; i++) {
        char m[32];
        snprintf(m, sizeof(m), "{\"id\":\"n_%d\"}", i);
        assert_int_equal(sb_store_notif_add(f->store, both + 1, 1, 3000 + i, m, on_result, &r), 0);
        wait(f, &r);
        reset(&r);
    }
    assert_int_equal(atoi(sb_test_redis_cmd(&f->srv, "ZCARD sb:notif:%s", b)), SB_STORE_NOTIF_KEEP);
    assert_int_equal(sb_store_notif_list(f->store, "nobody", 10, on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_notif_list(f->store, a, 0, on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_notif_read(f->store, a, -1, on_result, &r), SB_EINVAL);
    const char *bad[] = {"st_x"};
    assert_int_equal(sb_store_notif_add(f->store, bad, 1, 1, "{}", on_result, &r), SB_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_notify_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staff_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staff_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notif, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* The string-keyed hash map: set/get/replace/delete, growth and iteration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/map.h"

static void test_map_set_get_del(void **state)
{
    sb_map_t m;
    sb_map_init(&m);
    int a = 1, b = 2;
    assert_null(sb_map_get(&m, "x"));
    sb_map_set(&m, "x", &a);
    assert_ptr_equal(sb_map_get(&m, "x"), &a);
    sb_map_set(&m, "x", &b);
    assert_ptr_equal(sb_map_get(&m, "x"), &b);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(sb_map_del(&m, "x"), &b);
    assert_null(sb_map_get(&m, "x"));
    assert_null(sb_map_del(&m, "x"));
    assert_int_equal(m.count, 0);
    sb_map_dispose(&m);
}

static void test_map_grows_and_iterates(void **state)
{
    sb_map_t m;
    sb_map_init(&m);
    static int vals[5000];
    char key[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "c_%d", i);
        vals[i] = i;
        sb_map_set(&m, key, &vals[i]);
    }
    assert_int_equal(m.count, 5000);
    assert_true(m.nbuckets >= 4096);
    for (int i = 0; i < 5000; i += 7) {
        snprintf(key, sizeof(key), "c_%d", i);
        assert_int_equal(*(int *)sb_map_get(&m, key), i);
    }
    size_t b, n = 0;
    long sum = 0;
    for (sb_map_entry_t *e = sb_map_first(&m, &b); e; e = sb_map_next(&m, e, &b)) {
        n++;
        sum += *(int *)e->value;
    }
    assert_int_equal(n, 5000);
    assert_int_equal(sum, 4999L * 5000 / 2);
    sb_map_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_set_get_del),
        cmocka_unit_test(test_map_grows_and_iterates),
    };
    return cmocka_run_group_tests_name("core/map", tests, NULL, NULL);
}

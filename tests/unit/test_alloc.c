/* SPDX-License-Identifier: MIT */
/*
 * Allocation (core/alloc.c): jansson allocating through sb_malloc/sb_free once
 * sb_alloc_init has run, and sb_json_dumps never handing back a NULL string: a NULL
 * value (what json_pack returns for text that is not UTF-8) is an SB_EINVAL.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/err.h"

static void test_alloc_jansson_uses_sb_malloc(void **state)
{
    sb_alloc_init();
    json_malloc_t m = NULL;
    json_free_t f = NULL;
    json_get_alloc_funcs(&m, &f);
    assert_ptr_equal(m, sb_malloc);
    assert_ptr_equal(f, sb_free);
    json_t *j = json_pack("{s:s}", "a", "b"); /* allocated and freed through them */
    json_decref(j);
}

static void test_alloc_json_dumps(void **state)
{
    json_t *j = json_pack("{s:s, s:i}", "type", "pong", "n", 1);
    char *s = (char *)1;
    size_t len = 0;
    assert_int_equal(sb_json_dumps(j, JSON_COMPACT, &s, &len), 0);
    assert_string_equal(s, "{\"type\":\"pong\",\"n\":1}");
    assert_int_equal(len, strlen(s));
    sb_free(s);
    json_decref(j);

    /* json_pack refuses a string that is not UTF-8: its NULL is an error, not a crash. */
    json_t *bad = json_pack("{s:s}", "message", "caf\xe9");
    assert_null(bad);
    s = (char *)1;
    assert_int_equal(sb_json_dumps(bad, JSON_COMPACT, &s, NULL), SB_EINVAL);
    assert_null(s);

    /* A bare string needs JSON_ENCODE_ANY. */
    json_t *str = json_string("x");
    assert_int_equal(sb_json_dumps(str, JSON_COMPACT, &s, NULL), SB_EINVAL);
    assert_int_equal(sb_json_dumps(str, JSON_COMPACT | JSON_ENCODE_ANY, &s, NULL), 0);
    assert_string_equal(s, "\"x\"");
    sb_free(s);
    json_decref(str);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_jansson_uses_sb_malloc),
        cmocka_unit_test(test_alloc_json_dumps),
    };
    return cmocka_run_group_tests_name("core/alloc", tests, NULL, NULL);
}

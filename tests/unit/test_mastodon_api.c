/* SPDX-License-Identifier: MIT */
/* connectors/mastodon/api.c: Link headers, X-RateLimit-Reset times, the order of ids. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "connectors/mastodon/internal.h"
#include "core/alloc.h"

static void expect_rel(const char *link, const char *rel, const char *want)
{
    char *got = sb__md_link_rel(link, rel);
    if (!want)
        assert_null(got);
    else
        assert_string_equal(got, want);
    sb_free(got);
}

static void test_link_next_and_prev(void **state)
{
    (void)state;
    const char *l = "<https://m.example/api/v1/notifications?types%5B%5D=mention&max_id=7>; "
                    "rel=\"next\", <https://m.example/api/v1/notifications?min_id=9>; rel=\"prev\"";
    expect_rel(l, "next", "https://m.example/api/v1/notifications?types%5B%5D=mention&max_id=7");
    expect_rel(l, "prev", "https://m.example/api/v1/notifications?min_id=9");
    expect_rel(l, "last", NULL);
    /* unquoted, other parameters first, several types in one rel */
    expect_rel("<https://a/x>; title=\"t\"; rel=prev", "prev", "https://a/x");
    expect_rel("<https://a/y>; rel=\"first prev\"", "prev", "https://a/y");
    expect_rel("<https://a/z>; rel=\"prevx\"", "prev", NULL);
    expect_rel("<https://a/z", "prev", NULL);
    expect_rel("", "next", NULL);
}

static void test_iso_times(void **state)
{
    (void)state;
    assert_int_equal(sb__md_iso_ms("1970-01-01T00:00:01.500Z"), 1500);
    assert_int_equal(sb__md_iso_ms("2026-11-30T05:00:00.000Z"), 1796014800000LL);
    assert_int_equal(sb__md_iso_ms("2026-11-30T06:00:00+01:00"), 1796014800000LL);
    assert_int_equal(sb__md_iso_ms("2026-11-30T05:00:00"), 1796014800000LL);
    assert_int_equal(sb__md_iso_ms("2026-13-30T05:00:00Z"), -1);
    assert_int_equal(sb__md_iso_ms("soon"), -1);
    assert_int_equal(sb__md_iso_ms("2026-11-30T05:00:00Zjunk"), -1);
    assert_int_equal(sb__md_iso_ms(NULL), -1);
}

static void test_id_order(void **state)
{
    (void)state;
    assert_true(sb__md_id_cmp("109000000000000010", "109000000000000009") > 0);
    assert_true(sb__md_id_cmp("99", "100") < 0);
    assert_true(sb__md_id_cmp("", "1") < 0);
    assert_true(sb__md_id_cmp(NULL, "") == 0);
    assert_true(sb__md_id_cmp("42", "42") == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_link_next_and_prev),
        cmocka_unit_test(test_iso_times),
        cmocka_unit_test(test_id_order),
    };
    return cmocka_run_group_tests_name("connectors/mastodon_api", tests, NULL, NULL);
}

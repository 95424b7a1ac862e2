/* SPDX-License-Identifier: MIT */
/*
 * The string-keyed hash map: set/get/replace/delete, growth and iteration; its keyed hash
 * (SipHash-2-4 against the paper's test vectors) and that keys chosen to collide under an
 * unkeyed hash spread over the buckets.
 */
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

static void test_map_siphash_vectors(void **state)
{
    unsigned char key[16], msg[15];
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 15; i++)
        msg[i] = (unsigned char)i;
    /* The paper's Appendix A: key 00..0f, message 00..0e. */
    assert_true(sb_siphash24(key, msg, 15) == 0xa129ca6149be45e5ULL);
    /* The reference implementation's first vector: the empty message. */
    assert_true(sb_siphash24(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    key[0] ^= 1; /* another key, another hash */
    assert_true(sb_siphash24(key, msg, 15) != 0xa129ca6149be45e5ULL);
}

/* The unkeyed FNV-1a the map used before: an attacker can compute its buckets. */
static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static void test_map_chosen_keys_spread(void **state)
{
    enum { N = 1000 };
    sb_map_t m;
    sb_map_init(&m);
    static int v;
    char key[32];
    /* Keys an attacker would pick against FNV-1a: all in bucket 0 of 1024 buckets. */
    int found = 0;
    for (long i = 0; found < N; i++) {
        snprintf(key, sizeof(key), "c_%ld", i);
        if ((fnv1a(key) & 1023) == 0) {
            sb_map_set(&m, key, &v);
            found++;
        }
    }
    assert_int_equal(m.count, N);
    size_t longest = 0;
    for (size_t b = 0; b < m.nbuckets; b++) {
        size_t n = 0;
        for (sb_map_entry_t *e = m.buckets[b]; e; e = e->next)
            n++;
        if (n > longest)
            longest = n;
    }
    /* 1000 keys in >= 1024 buckets at random: the longest chain is a handful. */
    assert_true(longest <= 16);
    sb_map_dispose(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_set_get_del),
        cmocka_unit_test(test_map_grows_and_iterates),
        cmocka_unit_test(test_map_siphash_vectors),
        cmocka_unit_test(test_map_chosen_keys_spread),
    };
    return cmocka_run_group_tests_name("core/map", tests, NULL, NULL);
}

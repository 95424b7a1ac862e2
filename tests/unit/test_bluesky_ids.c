/* SPDX-License-Identifier: MIT */
/* The Bluesky connector's identifiers (connectors/bluesky/ids.c): record keys that are valid
 * TIDs, the same for the same answer and part, ordered by time and different between
 * answers; at-uris split into their parts; the bsky.app address of a post. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/bluesky/internal.h"
#include "core/alloc.h"

/* The 64-bit value of a TID (base32-sortable). */
static uint64_t tid_value(const char *t)
{
    static const char abc[] = "234567abcdefghijklmnopqrstuvwxyz";
    uint64_t v = 0;
    for (size_t i = 0; i < BS_TID_LEN; i++)
        v = v << 5 | (uint64_t)(strchr(abc, t[i]) - abc);
    return v;
}

static void test_tid_valid_and_stable(void **state)
{
    (void)state;
    char a[BS_TID_LEN + 1], b[BS_TID_LEN + 1], c[BS_TID_LEN + 1];
    const int64_t ts = 1764477600123; /* 2025-11-30 */
    sb__bs_tid("m_01jd3k5x2p8q9r0s1t2v3w4x5y", ts, 0, a);
    sb__bs_tid("m_01jd3k5x2p8q9r0s1t2v3w4x5y", ts, 0, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), BS_TID_LEN);
    assert_true(sb__bs_tid_valid(a));
    /* the timestamp is the message's, in microseconds, within its millisecond */
    uint64_t us = tid_value(a) >> 10;
    assert_true(us >= (uint64_t)ts * 1000 && us < (uint64_t)ts * 1000 + 1000);
    /* parts differ and sort in order; another answer gets other keys */
    sb__bs_tid("m_01jd3k5x2p8q9r0s1t2v3w4x5y", ts, 1, c);
    assert_string_not_equal(a, c);
    assert_true(strcmp(a, c) < 0);
    sb__bs_tid("m_01jd3k5x2p8q9r0s1t2v3w4x5z", ts, 0, b);
    assert_string_not_equal(a, b);
    /* a later answer sorts after */
    sb__bs_tid("m_01jd3k5x2p8q9r0s1t2v3w4x5y", ts + 1, 0, b);
    assert_true(strcmp(a, b) < 0);
}

static void test_tid_syntax(void **state)
{
    (void)state;
    assert_true(sb__bs_tid_valid("3jzfcijpj2z2a"));
    assert_false(sb__bs_tid_valid("3jzfcijpj2z2"));   /* 12 */
    assert_false(sb__bs_tid_valid("3jzfcijpj2z2aa")); /* 14 */
    assert_false(sb__bs_tid_valid("kjzfcijpj2z2a"));  /* top bit set */
    assert_false(sb__bs_tid_valid("3jzfcijpj2z1a"));  /* '1' is not base32-sortable */
    assert_false(sb__bs_tid_valid("3JZFCIJPJ2Z2A"));
    assert_false(sb__bs_tid_valid(NULL));
}

static void test_aturi(void **state)
{
    (void)state;
    bs_aturi_t u;
    assert_true(sb__bs_aturi_parse("at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a", &u));
    assert_int_equal(u.authority_len, 11);
    assert_memory_equal(u.authority, "did:plc:abc", 11);
    assert_memory_equal(u.collection, "app.bsky.feed.post", u.collection_len);
    assert_memory_equal(u.rkey, "3jzfcijpj2z2a", u.rkey_len);
    assert_false(sb__bs_aturi_parse("at://did:plc:abc/app.bsky.feed.post", &u));
    assert_false(sb__bs_aturi_parse("at://did:plc:abc/app.bsky.feed.post/a/b", &u));
    assert_false(sb__bs_aturi_parse("at:///app.bsky.feed.post/a", &u));
    assert_false(sb__bs_aturi_parse("https://x/app.bsky.feed.post/a", &u));
    assert_false(sb__bs_aturi_parse("at://x/app.bsky.feed.post/a?b", &u));
    assert_false(sb__bs_aturi_parse("at://x/app.bsky.feed.post/a b", &u));
}

static void test_web_url(void **state)
{
    (void)state;
    char *u = sb__bs_web_url("alice.test", "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a");
    assert_string_equal(u, "https://bsky.app/profile/alice.test/post/3jzfcijpj2z2a");
    sb_free(u);
    assert_null(sb__bs_web_url("alice.test", "at://did:plc:abc/app.bsky.feed.like/3jzfcijpj2z2a"));
    assert_null(sb__bs_web_url("alice test", "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a"));
    assert_null(sb__bs_web_url("", "at://did:plc:abc/app.bsky.feed.post/3jzfcijpj2z2a"));
    assert_null(sb__bs_web_url("a.test", "at://did:plc:abc/app.bsky.feed.post/<script>"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tid_valid_and_stable),
        cmocka_unit_test(test_tid_syntax),
        cmocka_unit_test(test_aturi),
        cmocka_unit_test(test_web_url),
    };
    return cmocka_run_group_tests_name("connectors/bluesky_ids", tests, NULL, NULL);
}

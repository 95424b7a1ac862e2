/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers (core/util.c): ULID ids (format, prefix, time order, validation,
 * shard placement), the Redis Cluster CRC16 that must agree with Redis, UTF-8
 * validation of untrusted input, SHA-256 and HMAC-SHA256 against published vectors,
 * constant-time comparison, random tokens, and the clocks behind core/sys.h's table.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/util.h"

static const char crockford[] = "0123456789abcdefghjkmnpqrstvwxyz";

/* A clock the tests move by hand (core/sys.h): no test sleeps to let time pass. */
static int64_t fake_ms = 1750000000000LL;
static uint64_t fake_ns = 42;

static int64_t fake_now_ms(void)
{
    return fake_ms;
}

static uint64_t fake_mono_ns(void)
{
    return fake_ns;
}

static const sb_sys_t fake_sys = {.now_ms = fake_now_ms, .mono_ns = fake_mono_ns};

/* The 48-bit millisecond time in the first 10 ULID characters. */
static int64_t ulid_time(const char *ulid)
{
    int64_t t = 0;
    for (int i = 0; i < 10; i++)
        t = t * 32 + (int64_t)(strchr(crockford, ulid[i]) - crockford);
    return t;
}

static void test_id_format_and_prefix(void **state)
{
    char id[SB_ID_MAX];
    int64_t before = sb_now_ms();
    sb_id_new("ct_", id);
    int64_t after = sb_now_ms();
    assert_int_equal(strlen(id), 3 + 26);
    assert_memory_equal(id, "ct_", 3);
    for (const char *p = id + 3; *p; p++)
        assert_non_null(strchr(crockford, *p)); /* lowercase Crockford base32 */
    int64_t t = ulid_time(id + 3);
    assert_true(t >= before && t <= after);
    assert_true(sb_id_valid(id, "ct_"));
    assert_false(sb_id_valid(id, "c_"));

    /* The longest prefix still fits SB_ID_MAX. */
    char longest[SB_ID_MAX];
    memset(longest, 0x7f, sizeof(longest));
    sb_id_new("bot_", longest);
    assert_int_equal(strlen(longest), 4 + 26);
    assert_true(sb_id_valid(longest, "bot_"));
}

static void test_id_ordered_by_time(void **state)
{
    char a[SB_ID_MAX], b[SB_ID_MAX], c[SB_ID_MAX];
    sb_sys_set(&fake_sys);
    sb_id_new("m_", a);
    fake_ms += 1;
    sb_id_new("m_", b);
    fake_ms += 1000;
    sb_id_new("m_", c);
    sb_sys_set(NULL);
    assert_true(strcmp(a, b) < 0); /* ids made in later milliseconds sort later */
    assert_true(strcmp(b, c) < 0);
    assert_int_equal(ulid_time(a + 2), fake_ms - 1001);
    assert_int_equal(ulid_time(b + 2), fake_ms - 1000);
    assert_int_equal(ulid_time(c + 2), fake_ms);
}

static void test_id_valid(void **state)
{
    assert_true(sb_id_valid("c_01hzy0a3b4c5d6e7f8g9hjkmnp", "c_"));
    assert_false(sb_id_valid(NULL, "c_"));
    assert_false(sb_id_valid("", "c_"));
    assert_false(sb_id_valid("c_01hzy0a3b4c5d6e7f8g9hjkmn", "c_"));   /* 25 chars */
    assert_false(sb_id_valid("c_01hzy0a3b4c5d6e7f8g9hjkmnpq", "c_")); /* 27 chars */
    assert_false(sb_id_valid("c_01HZY0A3B4C5D6E7F8G9HJKMNP", "c_"));  /* uppercase */
    assert_false(sb_id_valid("c_01hzy0a3b4c5d6e7f8g9hjkmnu", "c_"));  /* 'u' not base32 */
    assert_false(sb_id_valid("c_01hzy0a3b4c5d6e7f8g9hjkm/p", "c_"));
    assert_false(sb_id_valid("m_01hzy0a3b4c5d6e7f8g9hjkmnp", "c_"));
}

static void test_id_new_in_shard(void **state)
{
    const unsigned shards = 16;
    for (unsigned shard = 0; shard < shards; shard += 5) {
        char id[SB_ID_MAX];
        sb_id_new_in_shard("c_", shard, shards, id);
        assert_true(sb_id_valid(id, "c_"));
        assert_int_equal(sb_shard_of(id, shards), shard);
        assert_int_equal(sb_shard_of(id, shards), sb_crc16(id, strlen(id)) % shards);
    }
    char id[SB_ID_MAX];
    sb_id_new_in_shard("c_", 0, 1, id); /* one shard: everything is shard 0 */
    assert_int_equal(sb_shard_of(id, 1), 0);
}

static void test_crc16_matches_redis_cluster(void **state)
{
    assert_int_equal(sb_crc16("123456789", 9), 0x31c3); /* CRC-16/XMODEM check value */
    /* CLUSTER KEYSLOT values from the Redis Cluster tutorial. */
    assert_int_equal(sb_crc16("foo", 3) % 16384, 12182);
    assert_int_equal(sb_crc16("hello", 5) % 16384, 866);
    assert_int_equal(sb_crc16("", 0), 0);
}

static void test_utf8_validation(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"plain ascii", true},
        {"caf\xc3\xa9", true},       /* é, 2 bytes */
        {"\xe2\x82\xac 5", true},    /* €, 3 bytes */
        {"\xf0\x9f\x98\x80", true},  /* 😀, 4 bytes */
        {"\xf4\x8f\xbf\xbf", true},  /* U+10FFFF, the last code point */
        {"\xed\x9f\xbf", true},      /* U+D7FF, just below the surrogates */
        {"\xc0\xaf", false},         /* overlong '/' */
        {"\xc1\xbf", false},         /* overlong */
        {"\xe0\x80\xaf", false},     /* overlong, 3 bytes */
        {"\xf0\x80\x80\xaf", false}, /* overlong, 4 bytes */
        {"\xed\xa0\x80", false},     /* U+D800, a surrogate */
        {"\xed\xbf\xbf", false},     /* U+DFFF */
        {"\xe2\x82", false},         /* truncated */
        {"ok\xf0\x9f\x98", false},   /* truncated at the end */
        {"\xf4\x90\x80\x80", false}, /* U+110000 */
        {"\xf5\x80\x80\x80", false}, /* beyond any code point */
        {"\x80", false},             /* a lone continuation byte */
        {"\xc3\x28", false},         /* a bad continuation byte */
        {"\xff", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (sb_utf8_valid(cases[i].s, strlen(cases[i].s)) != cases[i].ok)
            fail_msg("case %zu: expected %s", i, cases[i].ok ? "valid" : "invalid");
    }
    assert_true(sb_utf8_valid("a\0b", 3));      /* the length counts, not a NUL */
    assert_false(sb_utf8_valid("\xc3\xa9", 1)); /* cut inside a character */
    assert_true(sb_utf8_valid("", 0));
}

static void test_sha256_hex(void **state)
{
    char out[65];
    sb_sha256_hex("abc", 3, out); /* FIPS 180-2 example */
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sb_sha256_hex("", 0, out);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_hmac_sha256_rfc4231(void **state)
{
    static const char data[] = "what do ya want for nothing?";
    static const char want[] = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    char hex[65];
    sb_hmac_sha256_hex("Jefe", 4, data, strlen(data), hex); /* RFC 4231 test case 2 */
    assert_string_equal(hex, want);

    unsigned char raw[32];
    sb_hmac_sha256("Jefe", 4, data, strlen(data), raw);
    assert_int_equal(raw[0], 0x5b);
    assert_int_equal(raw[31], 0x43);
}

static void test_streq_ct(void **state)
{
    assert_true(sb_streq_ct("s3cret", "s3cret"));
    assert_true(sb_streq_ct("", ""));
    assert_false(sb_streq_ct("s3cret", "s3creT"));
    assert_false(sb_streq_ct("s3cret", "s3cre")); /* a prefix is not equal */
    assert_false(sb_streq_ct("s3cre", "s3cret"));
    assert_false(sb_streq_ct("", "x"));
}

static void test_random_hex(void **state)
{
    char a[2 * 100 + 2], b[2 * 100 + 2];
    memset(a, 'X', sizeof(a));
    sb_random_hex(a, 16);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(a[33], 'X'); /* nothing written past the NUL */
    for (int i = 0; i < 32; i++)
        assert_non_null(strchr("0123456789abcdef", a[i]));
    sb_random_hex(b, 16);
    assert_string_not_equal(a, b);

    sb_random_hex(a, 100); /* more than one internal chunk */
    assert_int_equal(strlen(a), 200);
    sb_random_hex(a, 0);
    assert_string_equal(a, "");
}

static void test_ip_key_groups_ipv6_by_64(void **state)
{
    (void)state;
    char k[SB_IP_KEY_MAX];
    sb_ip_key("192.0.2.7", k);
    assert_string_equal(k, "192.0.2.7");
    sb_ip_key("::ffff:192.0.2.7", k);
    assert_string_equal(k, "192.0.2.7");
    sb_ip_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", k);
    assert_string_equal(k, "2001:db8:1:2::/64");
    char k2[SB_IP_KEY_MAX];
    sb_ip_key("2001:db8:1:2::1", k2);
    assert_string_equal(k, k2);
    sb_ip_key("2001:db8:1:3::1", k2);
    assert_string_not_equal(k, k2);
    sb_ip_key("::1", k);
    assert_string_equal(k, "::/64");
    sb_ip_key("not an address", k);
    assert_string_equal(k, "not an address");
}

static void test_clocks(void **state)
{
    assert_true(sb_now_ms() > 1700000000000LL); /* after November 2023 */
    uint64_t t0 = sb_mono_ns();
    assert_true(sb_mono_ns() >= t0);
}

static void test_clocks_go_through_the_table(void **state)
{
    assert_null(sb_sys_set(&fake_sys)); /* the real calls were in use */
    assert_int_equal(sb_now_ms(), fake_ms);
    assert_int_equal(sb_mono_ns(), fake_ns);
    fake_ms += 3600 * 1000;
    fake_ns += 5;
    assert_int_equal(sb_now_ms(), fake_ms);
    assert_int_equal(sb_mono_ns(), fake_ns);

    /* An entry left NULL falls back to the real call. */
    static const sb_sys_t only_wall = {.now_ms = fake_now_ms};
    assert_ptr_equal(sb_sys_set(&only_wall), &fake_sys);
    assert_int_equal(sb_now_ms(), fake_ms);
    assert_true(sb_mono_ns() != fake_ns);

    assert_ptr_equal(sb_sys_set(NULL), &only_wall);
    assert_true(sb_now_ms() > 1700000000000LL && sb_now_ms() != fake_ms);
}

/* HTML numeric character references, shared by the mail and Mastodon HTML readers. */
static void test_html_charref(void **state)
{
    (void)state;
    uint32_t cp = 0;
    assert_true(sb_html_charref("#38", 3, &cp));
    assert_int_equal(cp, '&');
    assert_true(sb_html_charref("#x1F600", 7, &cp));
    assert_int_equal(cp, 0x1F600);
    assert_true(sb_html_charref("#X2d", 4, &cp));
    assert_int_equal(cp, '-');
    assert_true(sb_html_charref("#99999999999", 12, &cp));
    assert_int_equal(cp, 0x110000);
    static const char *const bad[] = {"#", "#x", "#12a", "#xg", "38", "x26"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(sb_html_charref(bad[i], strlen(bad[i]), &cp));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_format_and_prefix),
        cmocka_unit_test(test_html_charref),
        cmocka_unit_test(test_id_ordered_by_time),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_id_new_in_shard),
        cmocka_unit_test(test_crc16_matches_redis_cluster),
        cmocka_unit_test(test_utf8_validation),
        cmocka_unit_test(test_sha256_hex),
        cmocka_unit_test(test_hmac_sha256_rfc4231),
        cmocka_unit_test(test_streq_ct),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_ip_key_groups_ipv6_by_64),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_clocks_go_through_the_table),
    };
    return cmocka_run_group_tests_name("core/util", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Redis key names (core/keys.c): every builder spells the layout of docs/redis-keys.md
 * exactly; the longest configurable prefix with the longest ids, the biggest shard and
 * the longest handle still fits; a key that does not fit fails with SB_ETOOBIG and is
 * empty, never truncated; and a builder restarts a failed key.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "core/alloc.h"
#include "core/keys.h"
#include "core/store.h"
#include "core/util.h"

static void test_keys_layout(void **state)
{
    sb_key_t k;
    assert_int_equal(sb_key_events(&k, "sb:", 3), 0);
    assert_string_equal(k.str, "sb:{3}:events");
    assert_int_equal(k.len, strlen("sb:{3}:events"));
    assert_int_equal(sb_key_queue(&k, "sb:", 0), 0);
    assert_string_equal(k.str, "sb:{0}:queue");
    assert_int_equal(sb_key_rt(&k, "x:", 15), 0);
    assert_string_equal(k.str, "x:{15}:rt");
    assert_int_equal(sb_key_shard(&k, "sb:", 7, "snoozed"), 0);
    assert_string_equal(k.str, "sb:{7}:snoozed");
    assert_int_equal(sb_key_shard_prefix(&k, "sb:", 12), 0);
    assert_string_equal(k.str, "sb:{12}:");
    assert_int_equal(sb_key_conv(&k, "sb:", 2, "c_01abc"), 0);
    assert_string_equal(k.str, "sb:{2}:conv:c_01abc");
    assert_int_equal(sb_key_log(&k, "sb:", 2, "c_01abc"), 0);
    assert_string_equal(k.str, "sb:{2}:log:c_01abc");
    assert_int_equal(sb_key_outbox(&k, "sb:", 5, "email"), 0);
    assert_string_equal(k.str, "sb:{5}:outbox:email");
    assert_int_equal(sb_key_contact(&k, "sb:", "ct_9"), 0);
    assert_string_equal(k.str, "sb:contact:ct_9");
    assert_int_equal(sb_key_contact_idents(&k, "sb:", "ct_9"), 0);
    assert_string_equal(k.str, "sb:contact:ct_9:idents");
    assert_int_equal(sb_key_ident(&k, "sb:", "email", "a@example.com"), 0);
    assert_string_equal(k.str, "sb:ident:email:a@example.com");
    assert_int_equal(sb_key_handle(&k, "sb:", "email:a@example.com"), 0);
    assert_string_equal(k.str, "sb:ident:email:a@example.com");
    assert_int_equal(sb_key_presence(&k, "sb:"), 0);
    assert_string_equal(k.str, "sb:presence");
    assert_int_equal(sb_key_principal(&k, "sb:", "staff", "st_1"), 0);
    assert_string_equal(k.str, "sb:staff:st_1");
    assert_int_equal(sb_key_principal(&k, "sb:", "bot", "bot_1"), 0);
    assert_string_equal(k.str, "sb:bot:bot_1");
    assert_int_equal(sb_key_webhooks(&k, "sb:"), 0);
    assert_string_equal(k.str, "sb:webhooks");
    assert_int_equal(sb_key_token_pattern(&k, "sb:"), 0);
    assert_string_equal(k.str, "sb:token:*");
    assert_int_equal(sb_key_dead(&k, "sb:", "email:support"), 0);
    assert_string_equal(k.str, "sb:dead:email:support");
    char *dup = sb_key_dup(&k);
    assert_string_equal(dup, "sb:dead:email:support");
    sb_free(dup);
    assert_int_equal(sb_key_events(&k, "", 0), 0); /* an empty prefix is allowed */
    assert_string_equal(k.str, "{0}:events");
}

static void test_keys_token_is_hashed(void **state)
{
    sb_key_t k;
    char hex[65];
    sb_sha256_hex("sbt_secret", strlen("sbt_secret"), hex);
    assert_int_equal(sb_key_token(&k, "sb:", "sbt_secret"), 0);
    assert_int_equal(strncmp(k.str, "sb:token:", 9), 0);
    assert_string_equal(k.str + 9, hex);
    assert_null(strstr(k.str, "secret")); /* the token itself never appears */
    /* sb_store_token_key (store.h) names the same key */
    char out[SB_KEY_MAX];
    sb_store_token_key("sb:", "sbt_secret", out, sizeof(out));
    assert_string_equal(out, k.str);
}

static void test_keys_longest_fits(void **state)
{
    char prefix[SB_PREFIX_MAX + 1], id[SB_ID_MAX], kind[40], value[300];
    memset(prefix, 'p', SB_PREFIX_MAX);
    prefix[SB_PREFIX_MAX] = '\0';
    memset(id, 'i', sizeof(id) - 1);
    id[sizeof(id) - 1] = '\0';
    memset(kind, 'k', sizeof(kind) - 1);
    kind[sizeof(kind) - 1] = '\0';
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    sb_key_t k;
    assert_int_equal(sb_key_conv(&k, prefix, 4294967295u, id), 0);
    assert_int_equal(k.len, SB_PREFIX_MAX + strlen("{4294967295}:conv:") + SB_ID_MAX - 1);
    assert_int_equal(strncmp(k.str + SB_PREFIX_MAX, "{4294967295}:conv:", 18), 0);
    assert_int_equal(sb_key_contact_idents(&k, prefix, id), 0);
    assert_int_equal(k.len, SB_PREFIX_MAX + strlen("contact::idents") + SB_ID_MAX - 1);
    assert_int_equal(sb_key_token(&k, prefix, "any token"), 0);
    assert_int_equal(k.len, SB_PREFIX_MAX + strlen("token:") + 64);
    assert_int_equal(sb_key_ident(&k, prefix, kind, value), 0);
    assert_int_equal(k.len, SB_PREFIX_MAX + strlen("ident::") + 39 + 299);
    assert_int_equal(k.str[k.len - 1], 'v');
}

/* External message ids: short printable ones as they are, every other one hashed, and a
 * hashed key never equal to a raw one. */
static void test_keys_mid_raw_or_hashed(void **state)
{
    sb_key_t k;
    char hex[65], want[128];
    assert_int_equal(sb_key_mid(&k, "sb:", "abc.1@mail.example"), 0);
    assert_string_equal(k.str, "sb:mid:abc.1@mail.example");
    assert_int_equal(sb_key_cursor(&k, "sb:", "email:support"), 0);
    assert_string_equal(k.str, "sb:cursor:email:support");

    char longest[SB_KEY_MID_RAW_MAX + 2], prefix[SB_PREFIX_MAX + 1];
    memset(longest, 'x', sizeof(longest) - 1);
    longest[SB_KEY_MID_RAW_MAX] = '\0';
    memset(prefix, 'p', SB_PREFIX_MAX);
    prefix[SB_PREFIX_MAX] = '\0';
    assert_int_equal(sb_key_mid(&k, prefix, longest), 0); /* the longest raw id fits */
    assert_int_equal(k.len, SB_PREFIX_MAX + strlen("mid:") + SB_KEY_MID_RAW_MAX);
    longest[SB_KEY_MID_RAW_MAX] = 'x'; /* one byte more: hashed */
    longest[SB_KEY_MID_RAW_MAX + 1] = '\0';
    const char *hashed[] = {longest, "a b@x",     "tab\t@x",    "{1}@x",
                            "x}@x",  "sha256:ab", "\xc3\xa9@x", ""};
    for (size_t i = 0; i < sizeof(hashed) / sizeof(hashed[0]); i++) {
        sb_sha256_hex(hashed[i], strlen(hashed[i]), hex);
        snprintf(want, sizeof(want), "sb:mid:sha256:%s", hex);
        assert_int_equal(sb_key_mid(&k, "sb:", hashed[i]), 0);
        assert_string_equal(k.str, want);
    }
}

static void test_keys_too_long_fails_empty(void **state)
{
    char value[SB_KEY_MAX];
    memset(value, 'v', sizeof(value) - 1);
    value[sizeof(value) - 1] = '\0';
    sb_key_t k;
    assert_int_equal(sb_key_ident(&k, "sb:", "email", value), SB_ETOOBIG);
    assert_int_equal(k.err, SB_ETOOBIG);
    assert_string_equal(k.str, ""); /* nothing truncated: no key at all */
    assert_int_equal(k.len, 0);
    /* exactly full: SB_KEY_MAX - 1 bytes and the NUL fit, one more does not */
    size_t room = SB_KEY_MAX - 1 - strlen("sb:ident:");
    value[room] = '\0';
    assert_int_equal(sb_key_handle(&k, "sb:", value), 0);
    assert_int_equal(k.len, SB_KEY_MAX - 1);
    value[room] = 'v';
    value[room + 1] = '\0';
    assert_int_equal(sb_key_handle(&k, "sb:", value), SB_ETOOBIG);
    assert_string_equal(k.str, "");
    /* an over-long prefix fails every key, even the short ones */
    memset(value, 'p', sizeof(value) - 1);
    assert_int_equal(sb_key_presence(&k, value), SB_ETOOBIG);
    assert_int_equal(sb_key_events(&k, value, 0), SB_ETOOBIG);
    assert_null(sb_key_dup(&k)); /* a key that failed is never copied out */
    /* the error stuck to that key only: the next build starts afresh */
    assert_int_equal(sb_key_presence(&k, "sb:"), 0);
    assert_string_equal(k.str, "sb:presence");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_layout),
        cmocka_unit_test(test_keys_token_is_hashed),
        cmocka_unit_test(test_keys_longest_fits),
        cmocka_unit_test(test_keys_too_long_fails_empty),
        cmocka_unit_test(test_keys_mid_raw_or_hashed),
    };
    return cmocka_run_group_tests_name("core/keys", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Standard Webhooks signatures (core/stdwebhooks.c): the key a secret decodes to, the
 * signature of the worked example docs/hooks.md shows (the test reads the doc, so the
 * doc cannot drift from the code), and what verification refuses: missing headers, a
 * forged or truncated signature, a timestamp more than five minutes off either way (the
 * clock moved through core/sys.h); several entries, any one matching, pass.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/stdwebhooks.h"
#include "core/sys.h"

#define EX_SECRET "whsec_c3dpdGNoYm9hcmQtaG9vay1leGFtcGxlLWtleQ=="
#define EX_ID     "msg_1"
#define EX_TS     "1700000000"
#define EX_BODY                                                                                    \
    "{\"thread\":\"t-42\",\"author\":{\"id\":\"u-7\",\"name\":\"Ann\"},\"text\":\"Hello\",\"id\":" \
    "\"p-1\"}"
#define EX_SIG "v1,LHvcI73mntNy3PNrV8IJbx30B6xUepaUuUORDfrT9sw="

static int64_t fake_now = 1700000000000LL;
static int64_t now_ms(void)
{
    return fake_now;
}
static const sb_sys_t fake = {.now_ms = now_ms};

static int setup(void **state)
{
    (void)state;
    sb_sys_set(&fake);
    fake_now = 1700000000000LL;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sb_sys_set(NULL);
    return 0;
}

static void test_stdwebhooks_key_decodes_whsec(void **state)
{
    (void)state;
    unsigned char *key;
    size_t n;
    assert_int_equal(sb_stdwebhooks_key(EX_SECRET, &key, &n), 0);
    assert_int_equal(n, strlen("switchboard-hook-example-key"));
    assert_memory_equal(key, "switchboard-hook-example-key", n);
    sb_free(key);
    assert_int_equal(sb_stdwebhooks_key("plain secret", &key, &n), 0); /* raw bytes */
    assert_int_equal(n, 12);
    assert_memory_equal(key, "plain secret", n);
    sb_free(key);
    assert_int_equal(sb_stdwebhooks_key("", &key, &n), SB_EINVAL);
    assert_int_equal(sb_stdwebhooks_key("whsec_", &key, &n), SB_EINVAL);
    assert_int_equal(sb_stdwebhooks_key("whsec_not*base64", &key, &n), SB_EINVAL);
}

static char *read_doc(void)
{
    FILE *f = fopen(SB_DOCS "/hooks.md", "rb");
    assert_non_null(f);
    static char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_stdwebhooks_worked_example_matches_doc(void **state)
{
    (void)state;
    unsigned char *key;
    size_t n;
    assert_int_equal(sb_stdwebhooks_key(EX_SECRET, &key, &n), 0);
    char sig[SB_STDWEBHOOKS_SIG_MAX];
    sb_stdwebhooks_sign(key, n, EX_ID, EX_TS, EX_BODY, strlen(EX_BODY), sig);
    assert_string_equal(sig, EX_SIG);
    const char *doc = read_doc();
    assert_non_null(strstr(doc, EX_SECRET));
    assert_non_null(strstr(doc, "webhook-id: " EX_ID));
    assert_non_null(strstr(doc, "webhook-timestamp: " EX_TS));
    assert_non_null(strstr(doc, EX_BODY));
    assert_non_null(strstr(doc, "webhook-signature: " EX_SIG));
    const char *why = NULL;
    assert_int_equal(
        sb_stdwebhooks_verify(key, n, EX_ID, EX_TS, EX_SIG, EX_BODY, strlen(EX_BODY), &why), 0);
    sb_free(key);
}

static int verify(const char *id, const char *ts, const char *sig, const char *body,
                  const char **why)
{
    unsigned char *key;
    size_t n;
    assert_int_equal(sb_stdwebhooks_key(EX_SECRET, &key, &n), 0);
    *why = NULL;
    int rc = sb_stdwebhooks_verify(key, n, id, ts, sig, body, strlen(body), why);
    sb_free(key);
    if (rc != 0)
        assert_non_null(*why);
    return rc;
}

static void test_stdwebhooks_verify_refusals(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(verify(NULL, EX_TS, EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_string_equal(why, "webhook-id missing");
    assert_int_equal(verify(EX_ID, NULL, EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_int_equal(verify(EX_ID, EX_TS, NULL, EX_BODY, &why), SB_EAUTH);
    assert_int_equal(verify("", EX_TS, EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_int_equal(verify(EX_ID, "17e8", EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_int_equal(verify(EX_ID, "-1700000000", EX_SIG, EX_BODY, &why), SB_EAUTH);
    /* Another body, id or timestamp under the same signature. */
    assert_int_equal(verify(EX_ID, EX_TS, EX_SIG, "{}", &why), SB_EAUTH);
    assert_string_equal(why, "no webhook-signature entry matches");
    assert_int_equal(verify("msg_2", EX_TS, EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_int_equal(verify(EX_ID, "1700000001", EX_SIG, EX_BODY, &why), SB_EAUTH);
    /* A truncated, re-versioned or unprefixed signature. */
    assert_int_equal(
        verify(EX_ID, EX_TS, "v1,LHvcI73mntNy3PNrV8IJbx30B6xUepaUuUORDfrT9sw", EX_BODY, &why),
        SB_EAUTH);
    assert_int_equal(
        verify(EX_ID, EX_TS, "v2,LHvcI73mntNy3PNrV8IJbx30B6xUepaUuUORDfrT9sw=", EX_BODY, &why),
        SB_EAUTH);
    assert_int_equal(
        verify(EX_ID, EX_TS, "LHvcI73mntNy3PNrV8IJbx30B6xUepaUuUORDfrT9sw=", EX_BODY, &why),
        SB_EAUTH);
    assert_int_equal(verify(EX_ID, EX_TS, "", EX_BODY, &why), SB_EAUTH);
}

static void test_stdwebhooks_verify_any_entry(void **state)
{
    (void)state;
    const char *why;
    assert_int_equal(verify(EX_ID, EX_TS,
                            "v1,Zm9yZ2VkIHNpZ25hdHVyZSBmb3IgdGVzdGluZyBvbmx5IQ== " EX_SIG
                            " v1a,ignored",
                            EX_BODY, &why),
                     0);
    assert_int_equal(verify(EX_ID, EX_TS, "  " EX_SIG "  ", EX_BODY, &why), 0);
}

static void test_stdwebhooks_timestamp_tolerance(void **state)
{
    (void)state;
    const char *why;
    fake_now = 1700000000000LL + 300 * 1000; /* exactly five minutes later: still fine */
    assert_int_equal(verify(EX_ID, EX_TS, EX_SIG, EX_BODY, &why), 0);
    fake_now += 1000;
    assert_int_equal(verify(EX_ID, EX_TS, EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_string_equal(why, "webhook-timestamp too old");
    fake_now = 1700000000000LL - 300 * 1000;
    assert_int_equal(verify(EX_ID, EX_TS, EX_SIG, EX_BODY, &why), 0);
    fake_now -= 1000;
    assert_int_equal(verify(EX_ID, EX_TS, EX_SIG, EX_BODY, &why), SB_EAUTH);
    assert_string_equal(why, "webhook-timestamp in the future");
    fake_now = 1700000000000LL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdwebhooks_key_decodes_whsec),
        cmocka_unit_test(test_stdwebhooks_worked_example_matches_doc),
        cmocka_unit_test(test_stdwebhooks_verify_refusals),
        cmocka_unit_test(test_stdwebhooks_verify_any_entry),
        cmocka_unit_test(test_stdwebhooks_timestamp_tolerance),
    };
    return cmocka_run_group_tests_name("core/stdwebhooks", tests, setup, teardown);
}

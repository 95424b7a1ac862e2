/* SPDX-License-Identifier: MIT */
/* Addresses in the email connector: staff reply addresses (connectors/email/staffaddr.h)
 * made, read back and verified only for the conversation and staff member they were made
 * for; a mail's recipients (connectors/email/rcpt.h) as its headers name them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "connectors/email/rcpt.h"
#include "connectors/email/staffaddr.h"
#include "core/err.h"

static const char KEY[] = "k3y";
static const char CID[] = "c_01jd3k5x2p8q9r0s1t2v3w4x5y";
static const char SID[] = "st_01jd3k5x2p8q9r0s1t2v3w4x5y";
static const char SID2[] = "st_01jd3k5x2p8q9r0s1t2v3w4x5z";

static void test_round_trip(void **state)
{
    (void)state;
    char a[128];
    assert_int_equal(sb_staffaddr_make(KEY, 3, "help@example.test", CID, SID, a, sizeof(a)), 0);
    assert_int_equal(strncmp(a, "help+c_01jd3k5x2p8q9r0s1t2v3w4x5y.", 34), 0);
    assert_non_null(strstr(a, "@example.test"));
    sb_staffaddr_t p;
    assert_true(sb_staffaddr_parse(a, "help@example.test", &p));
    assert_string_equal(p.cid, CID);
    assert_int_equal(strlen(p.sig), SB_STAFFADDR_SIG_LEN);
    assert_true(sb_staffaddr_verify(KEY, 3, p.cid, SID, p.sig));
    /* another staff member, another key, another conversation: refused */
    assert_false(sb_staffaddr_verify(KEY, 3, p.cid, SID2, p.sig));
    assert_false(sb_staffaddr_verify("other", 5, p.cid, SID, p.sig));
    assert_false(sb_staffaddr_verify(KEY, 3, "c_01jd3k5x2p8q9r0s1t2v3w4x5z", SID, p.sig));
    /* mail clients may change the case of the local part */
    char up[128];
    strcpy(up, a);
    for (char *c = up; *c && *c != '@'; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 32);
    assert_true(sb_staffaddr_parse(up, "help@EXAMPLE.test", &p));
    assert_true(sb_staffaddr_verify(KEY, 3, p.cid, SID, p.sig));
}

static void test_parse_others(void **state)
{
    (void)state;
    sb_staffaddr_t p;
    /* a customer's plus address: a conversation, no signature */
    assert_true(sb_staffaddr_parse("help+c_01jd3k5x2p8q9r0s1t2v3w4x5y@example.test",
                                   "help@example.test", &p));
    assert_string_equal(p.cid, CID);
    assert_string_equal(p.sig, "");
    assert_false(sb_staffaddr_parse("help@example.test", "help@example.test", &p));
    assert_false(sb_staffaddr_parse("other+c_01jd3k5x2p8q9r0s1t2v3w4x5y@example.test",
                                    "help@example.test", &p));
    assert_false(sb_staffaddr_parse("help+c_01jd3k5x2p8q9r0s1t2v3w4x5y@example.org",
                                    "help@example.test", &p));
    assert_false(sb_staffaddr_parse("help+invoice@example.test", "help@example.test", &p));
    assert_false(sb_staffaddr_parse("help+c_01jd3k5x2p8q9r0s1t2v3w4x5y.abc@example.test",
                                    "help@example.test", &p));
    assert_false(sb_staffaddr_parse("help+@example.test", "help@example.test", &p));
    assert_false(sb_staffaddr_parse("", "help@example.test", &p));
}

static void test_make_refuses(void **state)
{
    (void)state;
    char a[128];
    assert_int_equal(sb_staffaddr_make(KEY, 3, "nope", CID, SID, a, sizeof(a)), SB_EINVAL);
    assert_int_equal(sb_staffaddr_make(KEY, 3, "help@x", "c_bad", SID, a, sizeof(a)), SB_EINVAL);
    assert_int_equal(
        sb_staffaddr_make(KEY, 3, "a-very-long-mailbox-name-indeed@x", CID, SID, a, sizeof(a)),
        SB_EINVAL); /* the local part would pass 64 characters */
    assert_int_equal(sb_staffaddr_make(KEY, 3, "help@x", CID, SID, a, 20), SB_ETOOBIG);
}

static void test_recipients(void **state)
{
    (void)state;
    const char raw[] = "From: Ana <ana@example.org>\r\n"
                       "To: Support <Support@Example.test>, \"Lima, Ana\" <ana@example.org>\r\n"
                       "Cc: team: bo@x.test, cy@x.test;, support@example.test\r\n"
                       "Delivered-To: support+c_01jd3k5x2p8q9r0s1t2v3w4x5y@example.test\r\n"
                       "Subject: Re: hi\r\n"
                       "\r\n"
                       "To: not-a-header@x.test\r\n";
    sb_rcpt_t r;
    sb_rcpt_parse(raw, sizeof(raw) - 1, &r);
    assert_int_equal(r.n, 5);
    assert_string_equal(r.addr[0], "support@example.test"); /* lower case, once */
    assert_string_equal(r.addr[1], "ana@example.org");
    assert_string_equal(r.addr[2], "bo@x.test"); /* group members */
    assert_string_equal(r.addr[3], "cy@x.test");
    assert_string_equal(r.addr[4], "support+c_01jd3k5x2p8q9r0s1t2v3w4x5y@example.test");
    sb_rcpt_free(&r);
    sb_rcpt_parse("garbage without a header", 24, &r);
    assert_int_equal(r.n, 0);
    sb_rcpt_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_parse_others),
        cmocka_unit_test(test_make_refuses),
        cmocka_unit_test(test_recipients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

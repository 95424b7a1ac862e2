/* SPDX-License-Identifier: MIT */
/*
 * connectors/email/smtp.c, sb_email_smtp_outcome: every kind of SMTP answer to the outcome
 * the outbox acts on, and the queue ids of the replies real servers write (Postfix, Exim,
 * Sendmail-like, Gmail) taken as the provider's id, or our Message-ID when there is none.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <string.h>

#include "connectors/email/smtp.h"
#include "core/err.h"

#define OURS "sb.m_1@example.org"

static sb_outcome_t outcome(int status, sb_httpc_cause_t cause, long code, const char *reply,
                            char idbuf[SB_EMAIL_QUEUE_ID_MAX])
{
    sb_httpc_response_t r = {.status = status,
                             .error = status ? "curl says no" : "",
                             .code = code,
                             .body = "",
                             .headers = "",
                             .cause = cause,
                             .reply = reply};
    sb_outcome_t o;
    sb_email_smtp_outcome(&r, OURS, &o, idbuf);
    return o;
}

static void test_smtp_outcome_ok_and_queue_ids(void **state)
{
    static const char *const cases[][2] = {
        {"250 2.0.0 Ok: queued as 4Xz1Lm0c3Tz9", "4Xz1Lm0c3Tz9"},
        {"250 OK id=1rT2aB-000Abc-7Q", "1rT2aB-000Abc-7Q"},
        {"250 2.0.0 Ok: queued as <ABC@host>", OURS}, /* not an id we can take */
        {"250 2.0.0 OK  1732270000 a1-20020a05600c.123 - gsmtp", OURS},
        {"250 Ok", OURS},
        {"", OURS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char idbuf[SB_EMAIL_QUEUE_ID_MAX];
        sb_outcome_t o = outcome(0, SB_HTTPC_CAUSE_NONE, 250, cases[i][0], idbuf);
        assert_int_equal(o.kind, SB_OUTCOME_OK);
        assert_null(o.reason);
        assert_string_equal(o.provider_id, cases[i][1]);
    }
    char long_reply[400] = "250 queued as ";
    memset(long_reply + 14, 'x', 300);
    char idbuf[SB_EMAIL_QUEUE_ID_MAX];
    assert_string_equal(outcome(0, SB_HTTPC_CAUSE_NONE, 250, long_reply, idbuf).provider_id, OURS);
}

static void test_smtp_outcome_failures(void **state)
{
    static const struct {
        int status;
        sb_httpc_cause_t cause;
        long code;
        const char *reply;
        sb_outcome_kind_t kind;
        const char *reason;
    } cases[] = {
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 451, "451 4.3.0 try later", SB_OUTCOME_TEMPORARY,
         "451 4.3.0 try later"},
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 421, "421 4.7.0 too many connections", SB_OUTCOME_TEMPORARY,
         "421 4.7.0 too many connections"},
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 550, "550 5.1.1 no such user", SB_OUTCOME_PERMANENT,
         "550 5.1.1 no such user"},
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 552, "552 5.3.4 message too big", SB_OUTCOME_PERMANENT,
         "552 5.3.4 message too big"},
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 530, "530 5.7.0 Authentication required", SB_OUTCOME_AUTH,
         "530 5.7.0 Authentication required"},
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 534, "534 5.7.9 Application-specific password required",
         SB_OUTCOME_AUTH, "534 5.7.9 Application-specific password required"},
        {SB_EIO, SB_HTTPC_CAUSE_REPLY, 554, "554 5.7.8 credentials expired", SB_OUTCOME_AUTH,
         "554 5.7.8 credentials expired"},
        {SB_EIO, SB_HTTPC_CAUSE_LOGIN, 535, "535 5.7.8 Authentication credentials invalid",
         SB_OUTCOME_AUTH, "535 5.7.8 Authentication credentials invalid"},
        {SB_EIO, SB_HTTPC_CAUSE_TLS, 0, "", SB_OUTCOME_AUTH, "curl says no"},
        {SB_EIO, SB_HTTPC_CAUSE_NETWORK, 0, "", SB_OUTCOME_TEMPORARY, "curl says no"},
        {SB_ETIMEDOUT, SB_HTTPC_CAUSE_NETWORK, 354, "354 End data", SB_OUTCOME_TEMPORARY,
         "curl says no"},
        {SB_ECANCELED, SB_HTTPC_CAUSE_NONE, 0, "", SB_OUTCOME_TEMPORARY, "curl says no"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char idbuf[SB_EMAIL_QUEUE_ID_MAX];
        sb_outcome_t o =
            outcome(cases[i].status, cases[i].cause, cases[i].code, cases[i].reply, idbuf);
        assert_int_equal(o.kind, cases[i].kind);
        assert_string_equal(o.reason, cases[i].reason);
        assert_null(o.provider_id);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smtp_outcome_ok_and_queue_ids),
        cmocka_unit_test(test_smtp_outcome_failures),
    };
    return cmocka_run_group_tests_name("connectors/email/smtp", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Outbound mail end to end against a real SMTP server (aiosmtpd, tests/harness/smtp.h):
 * a mail composed by connectors/email/compose.c, sent by the sending thread of
 * connectors/email/smtp.h (or sb_httpc_send_mail on the test's loop), its answer read by
 * sb_email_smtp_outcome, and what the server stored read back. Plain
 * SMTP on loopback, STARTTLS and implicit TLS with the test CA, a certificate for another
 * host or one nobody signed refused (auth outcome), AUTH accepted and refused, 451 then
 * 250 on the retry, 550 permanent, one connection for many mails, deadlines.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/email/compose.h"
#include "connectors/email/mime.h"
#include "connectors/email/smtp.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/httpc.h"
#include "tests/harness/harness.h"
#include "tests/harness/smtp.h"
#include "tests/harness/testca.h"

typedef struct fixture {
    uv_loop_t loop;
    sb_httpc_t *h;      /* on the loop */
    sb_email_smtp_t *s; /* the sending thread */
    bool direct;        /* send with h, not s */
    bool stopped, s_stopped;
    sb_test_smtp_t srv;
    sb_test_ca_t ca;
    char msgid[SB_EMAIL_MSGID_MAX + 1];
} fixture_t;

/* What one send ended with, copied out of the callback. */
typedef struct result {
    bool done;
    int status;
    long code;
    sb_httpc_cause_t cause;
    sb_outcome_kind_t kind;
    char error[256], reply[512], reason[512], provider_id[SB_EMAIL_QUEUE_ID_MAX + 64];
    const char *msgid;
} result_t;

static void on_sent(const sb_httpc_response_t *res, void *data)
{
    result_t *r = data;
    r->done = true;
    r->status = res->status;
    r->code = res->code;
    r->cause = res->cause;
    snprintf(r->error, sizeof(r->error), "%s", res->error);
    snprintf(r->reply, sizeof(r->reply), "%s", res->reply);
    sb_outcome_t o;
    char idbuf[SB_EMAIL_QUEUE_ID_MAX];
    sb_email_smtp_outcome(res, r->msgid, &o, idbuf);
    r->kind = o.kind;
    snprintf(r->reason, sizeof(r->reason), "%s", o.reason ? o.reason : "");
    snprintf(r->provider_id, sizeof(r->provider_id), "%s", o.provider_id ? o.provider_id : "");
}

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    uv_loop_init(&f->loop);
    assert_int_equal(sb_httpc_new(&f->loop, "test", &f->h), 0);
    assert_int_equal(sb_email_smtp_start(&f->loop, &f->s), 0);
    assert_int_equal(sb_test_ca_make(&f->ca), 0);
    *state = f;
    return 0;
}

static void on_stopped(void *data)
{
    *(bool *)data = true;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    sb_httpc_stop(f->h, on_stopped, &f->stopped);
    sb_email_smtp_stop(f->s, on_stopped, &f->s_stopped);
    assert_true(sb_test_loop_until(&f->loop, &f->stopped, 5000));
    assert_true(sb_test_loop_until(&f->loop, &f->s_stopped, 5000));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    sb_test_smtp_stop(&f->srv);
    sb_test_ca_remove(&f->ca);
    sb_free(f);
    return 0;
}

static void start(fixture_t *f, const sb_test_smtp_opts_t *o)
{
    assert_int_equal(sb_test_smtp_start(&f->srv, o), 0);
}

/* A reply to Ana as the connector will send it (message id m_<n>). */
static char *compose(fixture_t *f, int n, const char *text, size_t *len)
{
    char id[32];
    snprintf(id, sizeof(id), "m_%d", n);
    sb_email_compose_t c = {.from_addr = "support@example.org",
                            .from_name = "Support",
                            .to_addr = "ana@customer.test",
                            .subject = "Order 42",
                            .reply = true,
                            .msg_id = id,
                            .in_reply_to = "CAB1@mail.gmail.com",
                            .date_ms = 1796088800000LL,
                            .text = text};
    char *m;
    assert_int_equal(sb_email_compose(&c, &m, len), 0);
    assert_int_equal(sb_email_message_id(id, "example.org", f->msgid, sizeof(f->msgid)), 0);
    return m;
}

/* Sends message n to url with mail's other fields (url, credentials, CA) and waits. */
static void send_n(fixture_t *f, sb_httpc_mail_t mail, int n, result_t *r)
{
    memset(r, 0, sizeof(*r));
    size_t len;
    char *m = compose(f, n, "Hello Ana,\n\nit left today.\n.\n..\nSam", &len);
    static const char *const rcpt[] = {"ana@customer.test", NULL};
    if (!mail.url)
        mail.url = f->srv.url;
    if (!mail.mail_from)
        mail.mail_from = "support@example.org";
    mail.rcpt = rcpt;
    mail.message = m;
    mail.message_len = len;
    r->msgid = f->msgid;
    if (f->direct)
        assert_int_equal(sb_httpc_send_mail(f->h, &mail, on_sent, r, NULL), 0);
    else
        assert_int_equal(sb_email_smtp_send(f->s, &mail, on_sent, r), 0);
    sb_free(m); /* copied */
    assert_true(sb_test_loop_until(&f->loop, &r->done, 20000));
}

static void send_one(fixture_t *f, sb_httpc_mail_t mail, result_t *r)
{
    send_n(f, mail, 1, r);
}

/* The value of an envelope or message header of stored message i. */
static void stored_header(fixture_t *f, unsigned i, const char *name, char *out, size_t cap)
{
    char *m = sb_test_smtp_message(&f->srv, i, NULL);
    assert_non_null(m);
    char want[64];
    snprintf(want, sizeof(want), "\r\n%s: ", name);
    char *p = strstr(m, want) ? strstr(m, want) + strlen(want) : NULL;
    if (!p && strncmp(m, want + 2, strlen(want + 2)) == 0)
        p = m + strlen(want + 2);
    assert_non_null(p);
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\r\n"), p);
    sb_free(m);
}

static void test_smtp_plain_loopback(void **state)
{
    fixture_t *f = *state;
    start(f, NULL);
    result_t r;
    send_one(f, (sb_httpc_mail_t){0}, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.code, 250);
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    assert_string_equal(r.reply, "250 2.0.0 Ok: queued as Q000001");
    assert_string_equal(r.provider_id, "Q000001");
    assert_int_equal(sb_test_smtp_count(&f->srv), 1);
    char v[256];
    stored_header(f, 0, "X-MailFrom", v, sizeof(v));
    assert_string_equal(v, "support@example.org");
    stored_header(f, 0, "X-RcptTo", v, sizeof(v));
    assert_string_equal(v, "ana@customer.test");
    stored_header(f, 0, "X-TLS", v, sizeof(v));
    assert_string_equal(v, "no");
    stored_header(f, 0, "Message-ID", v, sizeof(v));
    assert_string_equal(v, "<sb.m_1@example.org>");
    /* What arrived is what we composed: lines of "." and ".." survived the dot-stuffing. */
    size_t n;
    char *m = sb_test_smtp_message(&f->srv, 0, &n);
    sb_mime_msg_t p;
    assert_int_equal(sb_mime_parse(m, n, &p), 0);
    assert_string_equal(p.text, "Hello Ana,\n\nit left today.\n.\n..\nSam");
    assert_string_equal(p.subject, "Re: Order 42");
    sb_mime_free(&p);
    sb_free(m);

    /* The null reverse-path (a bounce's): MAIL FROM:<>. */
    send_n(f, (sb_httpc_mail_t){.mail_from = ""}, 2, &r);
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    stored_header(f, 1, "X-MailFrom", v, sizeof(v));
    assert_string_equal(v, "<>");
}

static void test_smtp_starttls(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){.tls_cert = f->ca.cert_pem, .tls_key = f->ca.key_pem});
    result_t r;
    char url[64];
    snprintf(url, sizeof(url), "smtp://localhost:%d", f->srv.port);
    send_one(f, (sb_httpc_mail_t){.url = url, .ca_file = f->ca.ca_pem}, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    char v[64];
    stored_header(f, 0, "X-TLS", v, sizeof(v));
    assert_string_equal(v, "yes");
    /* Without the CA (the system's store does not know it): refused before MAIL. A new
     * connection (another host name): libcurl reuses a STARTTLS connection without
     * comparing TLS options (docs/libraries.md). */
    snprintf(url, sizeof(url), "smtp://127.0.0.1:%d", f->srv.port);
    send_n(f, (sb_httpc_mail_t){.url = url}, 2, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_TLS);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH);
    assert_int_equal(sb_test_smtp_count(&f->srv), 1);
}

/* A non-loopback IPv4 address of this machine, or false when it has none. */
static bool outside_address(char *out, size_t cap)
{
    struct ifaddrs *all;
    bool found = false;
    if (getifaddrs(&all) != 0)
        return false;
    for (struct ifaddrs *i = all; i && !found; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP))
            continue;
        struct in_addr a = ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr;
        if ((ntohl(a.s_addr) >> 24) == 127)
            continue;
        found = inet_ntop(AF_INET, &a, out, (socklen_t)cap) != NULL;
    }
    freeifaddrs(all);
    return found;
}

/* Off loopback, smtp:// means STARTTLS or nothing: a server that does not offer it gets
 * no mail (and no password), and the account pauses. */
static void test_smtp_starttls_required(void **state)
{
    fixture_t *f = *state;
    char addr[64];
    if (!outside_address(addr, sizeof(addr)))
        skip(); /* no address but loopback here */
    start(f, &(sb_test_smtp_opts_t){.host = addr, .user = "support", .password = "s3cret"});
    result_t r;
    send_one(f, (sb_httpc_mail_t){.username = "support", .password = "s3cret"}, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_TLS);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH);
    assert_int_equal(sb_test_smtp_count(&f->srv), 0);
}

static void test_smtp_implicit_tls(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){
                 .tls_cert = f->ca.cert_pem, .tls_key = f->ca.key_pem, .implicit_tls = true});
    assert_int_equal(strncmp(f->srv.url, "smtps://", 8), 0);
    result_t r;
    send_one(f, (sb_httpc_mail_t){.ca_file = f->ca.ca_pem}, &r);
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    char v[64];
    stored_header(f, 0, "X-TLS", v, sizeof(v));
    assert_string_equal(v, "yes");
}

static void test_smtp_wrong_certificate_refused(void **state)
{
    fixture_t *f = *state;
    /* Signed by the trusted CA, but for wrong.example: the host name check refuses it. */
    start(f,
          &(sb_test_smtp_opts_t){.tls_cert = f->ca.wrong_cert_pem, .tls_key = f->ca.wrong_key_pem});
    result_t r;
    char url[64];
    snprintf(url, sizeof(url), "smtp://localhost:%d", f->srv.port);
    send_one(f, (sb_httpc_mail_t){.url = url, .ca_file = f->ca.ca_pem}, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_TLS);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH); /* an admin must fix it: the account pauses */
    assert_true(r.reason[0] != '\0');
    assert_int_equal(sb_test_smtp_count(&f->srv), 0);
    sb_test_smtp_stop(&f->srv);

    /* Self-signed for localhost: no CA vouches for it. */
    start(f, &(sb_test_smtp_opts_t){.tls_cert = f->ca.self_cert_pem,
                                    .tls_key = f->ca.self_key_pem,
                                    .implicit_tls = true});
    snprintf(url, sizeof(url), "smtps://localhost:%d", f->srv.port);
    send_one(f, (sb_httpc_mail_t){.url = url, .ca_file = f->ca.ca_pem}, &r);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_TLS);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH);
    assert_int_equal(sb_test_smtp_count(&f->srv), 0);
}

static void test_smtp_auth(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){.tls_cert = f->ca.cert_pem,
                                    .tls_key = f->ca.key_pem,
                                    .user = "support",
                                    .password = "s3cret"});
    char url[64];
    snprintf(url, sizeof(url), "smtp://localhost:%d", f->srv.port);
    result_t r;
    send_one(f,
             (sb_httpc_mail_t){
                 .url = url, .ca_file = f->ca.ca_pem, .username = "support", .password = "s3cret"},
             &r);
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    char v[64];
    stored_header(f, 0, "X-Auth", v, sizeof(v));
    assert_string_equal(v, "support");

    send_n(f,
           (sb_httpc_mail_t){
               .url = url, .ca_file = f->ca.ca_pem, .username = "support", .password = "wrong"},
           2, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_LOGIN);
    assert_int_equal(r.code, 535);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH);
    assert_non_null(strstr(r.reason, "535"));

    /* No credentials where the server wants them: 530 at MAIL, the same outcome. */
    send_n(f, (sb_httpc_mail_t){.url = url, .ca_file = f->ca.ca_pem}, 3, &r);
    assert_int_equal(r.code, 530);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH);
    assert_int_equal(sb_test_smtp_count(&f->srv), 1);
}

static void test_smtp_4xx_then_ok(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){.fail_data = 1});
    result_t r;
    send_one(f, (sb_httpc_mail_t){0}, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_REPLY);
    assert_int_equal(r.code, 451);
    assert_int_equal(r.kind, SB_OUTCOME_TEMPORARY);
    assert_string_equal(r.reason, "451 4.3.0 try later");
    assert_int_equal(sb_test_smtp_count(&f->srv), 0);
    send_one(f, (sb_httpc_mail_t){0}, &r); /* the outbox's retry: the same mail */
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    assert_int_equal(sb_test_smtp_count(&f->srv), 1);
}

static void test_smtp_5xx_permanent(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){.rcpt_reply = "550 5.1.1 no such user"});
    result_t r;
    send_one(f, (sb_httpc_mail_t){0}, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.code, 550);
    assert_int_equal(r.kind, SB_OUTCOME_PERMANENT);
    assert_string_equal(r.reason, "550 5.1.1 no such user");
    assert_int_equal(sb_test_smtp_count(&f->srv), 0);
}

static void test_smtp_connection_reused(void **state)
{
    fixture_t *f = *state;
    start(f, NULL);
    result_t r;
    for (int i = 1; i <= 5; i++) {
        send_n(f, (sb_httpc_mail_t){0}, i, &r);
        assert_int_equal(r.kind, SB_OUTCOME_OK);
    }
    assert_int_equal(sb_test_smtp_count(&f->srv), 5);
    assert_int_equal(sb_test_smtp_connections(&f->srv), 1);
    char v[16];
    stored_header(f, 4, "X-Conn", v, sizeof(v));
    assert_string_equal(v, "1");
    /* The client on the test's loop keeps its own connection the same way. */
    f->direct = true;
    for (int i = 6; i <= 8; i++) {
        send_n(f, (sb_httpc_mail_t){0}, i, &r);
        assert_int_equal(r.kind, SB_OUTCOME_OK);
    }
    assert_int_equal(sb_test_smtp_connections(&f->srv), 2);
    f->direct = false;
    /* Another account on the same server gets its own connection. */
    sb_test_smtp_stop(&f->srv);
    start(f, &(sb_test_smtp_opts_t){.user = "a", .password = "b"});
    send_one(f, (sb_httpc_mail_t){.username = "a", .password = "b"}, &r);
    assert_int_equal(r.kind, SB_OUTCOME_OK);
    send_one(f, (sb_httpc_mail_t){.username = "a", .password = "x"}, &r);
    assert_int_equal(r.kind, SB_OUTCOME_AUTH);
    assert_int_equal(sb_test_smtp_connections(&f->srv), 2);
}

/* Many mails at once from the thread: all answered, over fewer connections than mails. */
static void test_smtp_many_at_once(void **state)
{
    fixture_t *f = *state;
    start(f, NULL);
    enum { N = 20 };
    result_t r[N];
    char *msgs[N];
    static const char *const rcpt[] = {"ana@customer.test", NULL};
    for (int i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof(r[i]));
        size_t len;
        msgs[i] = compose(f, 100 + i, "Hi", &len);
        r[i].msgid = "x";
        sb_httpc_mail_t m = {.url = f->srv.url,
                             .mail_from = "support@example.org",
                             .rcpt = rcpt,
                             .message = msgs[i],
                             .message_len = len};
        assert_int_equal(sb_email_smtp_send(f->s, &m, on_sent, &r[i]), 0);
        sb_free(msgs[i]);
    }
    assert_int_equal(sb_email_smtp_inflight(f->s), N);
    SB_TEST_SPIN_UNTIL(&f->loop, sb_email_smtp_inflight(f->s) == 0, 20000);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].kind, SB_OUTCOME_OK);
    assert_int_equal(sb_test_smtp_count(&f->srv), N);
    assert_true(sb_test_smtp_connections(&f->srv) <= SB_EMAIL_SMTP_CONNECTIONS);
}

/* Stop with mails in flight: each callback runs once, with SB_ECANCELED. */
static void test_smtp_stop_in_flight(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){.hang = "greeting"});
    static const char *const rcpt[] = {"ana@customer.test", NULL};
    sb_httpc_mail_t m = {.url = f->srv.url,
                         .mail_from = "support@example.org",
                         .rcpt = rcpt,
                         .message = "x\r\n",
                         .message_len = 3};
    result_t r[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(sb_email_smtp_send(f->s, &m, on_sent, &r[i]), 0);
    SB_TEST_SPIN_UNTIL(&f->loop, sb_test_smtp_connections(&f->srv) >= 1, 5000);
    uint64_t t0 = sb_test_now_ms();
    sb_email_smtp_stop(f->s, on_stopped, &f->s_stopped);
    bool ok = sb_test_loop_until(&f->loop, &f->s_stopped, 10000);
    assert_true(ok);
    assert_true(sb_test_now_ms() - t0 < 3000); /* no waiting for answers to QUIT */
    for (int i = 0; i < 3; i++) {
        assert_true(r[i].done);
        assert_int_equal(r[i].status, SB_ECANCELED);
        assert_int_equal(r[i].kind, SB_OUTCOME_TEMPORARY);
    }
    f->s = NULL; /* stopped: teardown's stop of NULL just reports */
    f->s_stopped = false;
}

static void on_tick(uv_timer_t *t)
{
    (*(unsigned *)t->data)++;
}

static void test_smtp_timeout(void **state)
{
    fixture_t *f = *state;
    start(f, &(sb_test_smtp_opts_t){.hang = "greeting"});
    /* The loop keeps turning while the server says nothing. */
    unsigned ticks = 0;
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    tick.data = &ticks;
    uv_timer_start(&tick, on_tick, 20, 20);
    result_t r;
    uint64_t t0 = sb_test_now_ms();
    send_one(f, (sb_httpc_mail_t){.timeout_ms = 400}, &r);
    uint64_t took = sb_test_now_ms() - t0;
    uv_close((uv_handle_t *)&tick, NULL);
    assert_int_equal(r.status, SB_ETIMEDOUT);
    assert_int_equal(r.kind, SB_OUTCOME_TEMPORARY);
    assert_true(took >= 350 && took < 5000);
    assert_true(ticks >= 5);
    sb_test_smtp_stop(&f->srv);

    /* No answer to the end of the data: libcurl 7.88 waits for it without returning to its
     * caller (docs/libraries.md), but never past the deadline; on the sending thread, so
     * the loop keeps turning meanwhile. */
    start(f, &(sb_test_smtp_opts_t){.hang = "data"});
    uv_timer_t tick2;
    uv_timer_init(&f->loop, &tick2);
    tick2.data = &ticks;
    ticks = 0;
    uv_timer_start(&tick2, on_tick, 20, 20);
    t0 = sb_test_now_ms();
    send_one(f, (sb_httpc_mail_t){.timeout_ms = 400}, &r);
    took = sb_test_now_ms() - t0;
    uv_close((uv_handle_t *)&tick2, NULL);
    assert_int_equal(r.status, SB_ETIMEDOUT);
    assert_int_equal(r.kind, SB_OUTCOME_TEMPORARY);
    assert_true(took >= 350 && took < 5000);
    assert_true(ticks >= 10);
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the timers close */
}

static void test_smtp_bad_requests(void **state)
{
    fixture_t *f = *state;
    static const char *const rcpt[] = {"ana@customer.test", NULL};
    static const char *const bad_rcpt[] = {"ana@customer.test>\r\nRCPT TO:<x@y.z", NULL};
    static const char *const none[] = {NULL};
    sb_httpc_mail_t ok = {.url = "smtp://127.0.0.1:1",
                          .mail_from = "a@b.c",
                          .rcpt = rcpt,
                          .message = "x\r\n",
                          .message_len = 3};
    sb_httpc_mail_t m;
    result_t r = {0};
#define REFUSED(field, value)                                                                      \
    m = ok;                                                                                        \
    m.field = value;                                                                               \
    assert_int_equal(sb_httpc_send_mail(f->h, &m, on_sent, &r, NULL), SB_EINVAL);                  \
    assert_int_equal(sb_email_smtp_send(f->s, &m, on_sent, &r), SB_EINVAL)
    REFUSED(url, "http://127.0.0.1:1");
    REFUSED(url, "smtp://127.0.0.1:1/ehlo.name");
    REFUSED(url, "smtp://user@127.0.0.1:1");
    REFUSED(url, NULL);
    REFUSED(mail_from, "a@b.c>\r\nRCPT TO:<x@y.z");
    REFUSED(mail_from, NULL);
    REFUSED(rcpt, bad_rcpt);
    REFUSED(rcpt, none);
    REFUSED(helo, "bad helo");
    REFUSED(helo, "a%0d%0aRSET"); /* the EHLO name goes into the URL, which curl decodes */
    REFUSED(url, "smtp://127.0.0.1%0d%0a:1");
    REFUSED(message_len, 0);
    REFUSED(username, "only-user");
#undef REFUSED
    assert_int_equal(sb_httpc_inflight(f->h), 0);
    assert_int_equal(sb_email_smtp_inflight(f->s), 0);
    /* A refused connection: no answer, temporary. */
    send_one(f, ok, &r);
    assert_int_equal(r.status, SB_EIO);
    assert_int_equal(r.cause, SB_HTTPC_CAUSE_NETWORK);
    assert_int_equal(r.kind, SB_OUTCOME_TEMPORARY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_smtp_plain_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_starttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_starttls_required, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_implicit_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_wrong_certificate_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_4xx_then_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_5xx_permanent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_connection_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_many_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_stop_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_smtp_bad_requests, setup, teardown),
    };
    return cmocka_run_group_tests_name("connectors/email/smtp", tests, NULL, NULL);
}

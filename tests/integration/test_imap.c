/* SPDX-License-Identifier: MIT */
/*
 * The IMAP session (connectors/email/imap.c) against a real Dovecot (tests/harness/dovecot.h)
 * and TLS certificates from the test CA (tests/harness/testca.h): backfill in UID order,
 * IDLE delivery, resume from a stored last UID, a UIDVALIDITY change, Dovecot killed and
 * restarted mid-IDLE, the certificate checks before LOGIN (wrong host, self-signed, unknown
 * CA), STARTTLS, the poll fallback, a prompt stop, \Seen never set, the owner's credits
 * bounding what is in flight, a failed store fetched again. Also tls_verify.c and the URL
 * parser on their own. Every wait is for a condition, with a deadline.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <openssl/pem.h>
#include <poll.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connectors/email/imap.h"
#include "connectors/email/tls_verify.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "tests/harness/dovecot.h"
#include "tests/harness/harness.h"
#include "tests/harness/testca.h"

#define MAXMSG 64

typedef struct got {
    uint32_t uidvalidity, uid;
    char *raw; /* a copy; NULL when the session gave none */
    size_t len;
} got_t;

typedef struct fx {
    uv_loop_t loop;
    sb_test_dovecot_t dv;
    sb_test_ca_t ca;
    sb_imap_t *m;
    got_t got[MAXMSG];
    unsigned n;
    unsigned status_count[SB_IMAP_ERROR + 1];
    int last_status;
    char last_error[600];
    bool hold;          /* on_message does not call sb_imap_done */
    uint32_t fail_once; /* on_message reports this uid as not stored, once */
    bool stopped;
} fx_t;

/* ---- Session callbacks ---- */

static void on_message(sb_imap_t *m, uint32_t uidvalidity, uint32_t uid, const char *raw,
                       size_t len, void *parsed, void *data)
{
    fx_t *f = data;
    if (f->n < MAXMSG) {
        got_t *g = &f->got[f->n++];
        g->uidvalidity = uidvalidity;
        g->uid = uid;
        g->raw = raw ? sb_strndup(raw, len) : NULL;
        g->len = len;
    }
    if (f->hold)
        return;
    if (f->fail_once == uid) {
        f->fail_once = 0;
        sb_imap_done(m, uid, SB_EREDIS);
        return;
    }
    sb_imap_done(m, uid, 0);
}

static void on_status(sb_imap_t *m, int status, const char *reason, void *data)
{
    fx_t *f = data;
    f->status_count[status]++;
    f->last_status = status;
    if (status == SB_IMAP_ERROR)
        snprintf(f->last_error, sizeof(f->last_error), "%s", reason);
}

static void on_stopped(void *data)
{
    ((fx_t *)data)->stopped = true;
}

/* ---- Fixture ---- */

static int setup(void **state)
{
    fx_t *f = sb_calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    if (sb_test_ca_make(&f->ca) != 0)
        return -1;
    *state = f;
    return 0;
}

static void stop_session(fx_t *f)
{
    if (!f->m)
        return;
    f->stopped = false;
    sb_imap_stop(f->m, on_stopped, f);
    f->m = NULL;
    assert_true(sb_test_loop_until(&f->loop, &f->stopped, 5000));
}

static int teardown(void **state)
{
    fx_t *f = *state;
    stop_session(f);
    sb_test_dovecot_stop(&f->dv);
    sb_test_ca_remove(&f->ca);
    for (unsigned i = 0; i < f->n; i++)
        sb_free(f->got[i].raw);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    uv_loop_close(&f->loop);
    sb_free(f);
    return 0;
}

static void start_dovecot(fx_t *f, const char *cert, const char *key, bool no_idle)
{
    sb_test_dovecot_opts_t o = {.cert_pem = cert, .key_pem = key, .no_idle = no_idle};
    assert_int_equal(sb_test_dovecot_start(&f->dv, &o), 0);
}

static void start_session_with(fx_t *f, const char *url, const char *tls_ca, uint32_t uidv,
                               uint32_t last, unsigned poll_s)
{
    sb_imap_opts_t o = {.name = "test",
                        .url = url,
                        .tls_ca = tls_ca,
                        .uidvalidity = uidv,
                        .last_uid = last,
                        .poll_s = poll_s,
                        .timeout_s = 10,
                        .backoff_min_ms = 100,
                        .backoff_max_ms = 400,
                        .max_inflight = 4};
    sb_imap_cbs_t cbs = {.on_message = on_message, .on_status = on_status};
    assert_int_equal(sb_imap_start(&f->loop, &o, &cbs, f, &f->m), 0);
}

/* A plain session on loopback (Dovecot without TLS offers no STARTTLS). */
static void start_session(fx_t *f, const char *folder, uint32_t uidv, uint32_t last)
{
    char url[400];
    sb_test_dovecot_url(&f->dv, false, "127.0.0.1", folder, url, sizeof(url));
    start_session_with(f, url, NULL, uidv, last, 0);
}

static char *message(char *buf, size_t n, int i)
{
    snprintf(buf, n,
             "From: Alice <alice@example.com>\r\nTo: help@example.org\r\nSubject: question %d\r\n"
             "Message-ID: <q%d@example.com>\r\n\r\nbody of message %d\r\n",
             i, i, i);
    return buf;
}

static uint32_t append(fx_t *f, const char *folder, int i)
{
    char buf[400];
    uint32_t uid = 0;
    message(buf, sizeof(buf), i);
    assert_int_equal(sb_test_dovecot_append(&f->dv, folder, buf, strlen(buf), &uid), 0);
    return uid;
}

/* The i-th message arrived as message number k (its body says so). */
static void assert_body(const fx_t *f, unsigned k, int i)
{
    char want[64];
    snprintf(want, sizeof(want), "body of message %d", i);
    assert_true(k < f->n);
    assert_non_null(f->got[k].raw);
    assert_non_null(strstr(f->got[k].raw, want));
}

#define WAIT(f, cond, ms) SB_TEST_SPIN_UNTIL(&(f)->loop, cond, ms)

/* ---- Tests against Dovecot ---- */

static void test_imap_backfill_in_uid_order_then_idle(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    uint32_t uids[3];
    for (int i = 0; i < 3; i++)
        uids[i] = append(f, "INBOX", i);
    start_session(f, "INBOX", 0, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1, 10000);
    assert_int_equal(f->n, 3);
    uint32_t v = sb_test_dovecot_uidvalidity(&f->dv, "INBOX");
    for (unsigned k = 0; k < 3; k++) {
        assert_int_equal(f->got[k].uid, uids[k]);
        assert_int_equal(f->got[k].uidvalidity, v);
        assert_body(f, k, (int)k);
    }
    /* News during IDLE arrive within two seconds. */
    uint64_t t0 = sb_test_now_ms();
    uint32_t uid = append(f, "INBOX", 3);
    WAIT(f, f->n == 4, 2000);
    assert_true(sb_test_now_ms() - t0 < 2000);
    assert_int_equal(f->got[3].uid, uid);
    assert_body(f, 3, 3);
    /* Read, never marked read. */
    char flags[200];
    for (unsigned k = 0; k < 4; k++) {
        assert_int_equal(
            sb_test_dovecot_flags(&f->dv, "INBOX", f->got[k].uid, flags, sizeof(flags)), 0);
        assert_null(strstr(flags, "\\Seen"));
    }
}

static void test_imap_resume_fetches_only_newer(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    uint32_t uids[3];
    for (int i = 0; i < 3; i++)
        uids[i] = append(f, "INBOX", i);
    uint32_t v = sb_test_dovecot_uidvalidity(&f->dv, "INBOX");
    start_session(f, "INBOX", v, uids[1]);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1, 10000);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->got[0].uid, uids[2]);
    assert_body(f, 0, 2);
    /* Resuming at the highest UID: `n:*` still answers with it, and it is skipped. */
    stop_session(f);
    start_session(f, "INBOX", v, uids[2]);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 2, 10000);
    assert_int_equal(f->n, 1);
    assert_int_equal(f->status_count[SB_IMAP_UIDVALIDITY], 0);
}

static void test_imap_uidvalidity_change_refetches_all(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    assert_int_equal(sb_test_dovecot_create(&f->dv, "Support"), 0);
    uint32_t old_last = append(f, "Support", 0);
    uint32_t old = sb_test_dovecot_uidvalidity(&f->dv, "Support");
    assert_int_equal(sb_test_dovecot_recreate(&f->dv, "Support"), 0);
    uint32_t fresh = sb_test_dovecot_uidvalidity(&f->dv, "Support");
    assert_int_not_equal(old, fresh);
    append(f, "Support", 1);
    append(f, "Support", 2);
    /* The stored state says everything up to old_last was seen, under the old UIDVALIDITY. */
    start_session(f, "Support", old, old_last + 5);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1, 10000);
    assert_int_equal(f->status_count[SB_IMAP_UIDVALIDITY], 1);
    assert_int_equal(f->n, 2);
    for (unsigned k = 0; k < 2; k++) {
        assert_int_equal(f->got[k].uidvalidity, fresh);
        assert_body(f, k, (int)k + 1);
    }
}

/* The folder is deleted and made again under a running session: Dovecot drops it, and the
 * reconnect finds a new UIDVALIDITY and hands everything over again. */
static void test_imap_uidvalidity_change_while_running(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    assert_int_equal(sb_test_dovecot_create(&f->dv, "Support"), 0);
    append(f, "Support", 0);
    start_session(f, "Support", 0, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1 && f->n == 1, 10000);
    uint32_t old = f->got[0].uidvalidity;
    assert_int_equal(sb_test_dovecot_recreate(&f->dv, "Support"), 0);
    append(f, "Support", 1);
    append(f, "Support", 2);
    WAIT(f, f->n == 3 && f->status_count[SB_IMAP_UIDVALIDITY] == 1, 10000);
    uint32_t fresh = sb_test_dovecot_uidvalidity(&f->dv, "Support");
    assert_int_not_equal(old, fresh);
    for (unsigned k = 1; k < 3; k++) {
        assert_int_equal(f->got[k].uidvalidity, fresh);
        assert_body(f, k, (int)k);
    }
}

static void test_imap_dovecot_restart_mid_idle(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    append(f, "INBOX", 0);
    start_session(f, "INBOX", 0, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1 && f->n == 1, 10000);
    sb_test_dovecot_kill(&f->dv);
    WAIT(f, f->status_count[SB_IMAP_ERROR] >= 1, 5000);
    char buf[400];
    message(buf, sizeof(buf), 1);
    assert_int_equal(sb_test_dovecot_deliver(&f->dv, "INBOX", buf, strlen(buf)), 0);
    assert_int_equal(sb_test_dovecot_restart(&f->dv), 0);
    WAIT(f, f->n == 2 && f->status_count[SB_IMAP_IDLING] == 2, 10000);
    assert_body(f, 1, 1);
    append(f, "INBOX", 2);
    WAIT(f, f->n == 3, 5000);
    assert_body(f, 2, 2);
    for (unsigned a = 0; a < f->n; a++)
        for (unsigned b = a + 1; b < f->n; b++)
            assert_int_not_equal(f->got[a].uid, f->got[b].uid);
}

/* A local address that is not loopback ("" if the machine has none). */
static void non_loopback_ipv4(char out[INET_ADDRSTRLEN])
{
    out[0] = '\0';
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0)
        return;
    for (struct ifaddrs *i = ifs; i && !out[0]; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        const struct in_addr *in = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        if ((ntohl(in->s_addr) >> 24) != 127)
            inet_ntop(AF_INET, in, out, INET_ADDRSTRLEN);
    }
    freeifaddrs(ifs);
}

/* imap:// to a server that offers no STARTTLS and is not on loopback: no LOGIN in clear. */
static void test_imap_plain_refused_off_loopback(void **state)
{
    fx_t *f = *state;
    char ip[INET_ADDRSTRLEN];
    non_loopback_ipv4(ip);
    if (!ip[0])
        skip();
    sb_test_dovecot_opts_t o = {.listen_also = ip};
    assert_int_equal(sb_test_dovecot_start(&f->dv, &o), 0);
    char url[400];
    sb_test_dovecot_url(&f->dv, false, ip, "INBOX", url, sizeof(url));
    start_session_with(f, url, NULL, 0, 0, 0);
    WAIT(f, f->status_count[SB_IMAP_ERROR] >= 1, 10000);
    assert_non_null(strstr(f->last_error, "offers no STARTTLS"));
    assert_int_equal(f->status_count[SB_IMAP_CONNECTED], 0);
    assert_int_equal(sb_test_dovecot_logins(&f->dv), 0);
}

static void test_imap_poll_without_idle(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, true);
    char url[400];
    sb_test_dovecot_url(&f->dv, false, "127.0.0.1", "INBOX", url, sizeof(url));
    start_session_with(f, url, NULL, 0, 0, 1);
    WAIT(f, f->status_count[SB_IMAP_POLLING] == 1, 10000);
    assert_int_equal(f->status_count[SB_IMAP_IDLING], 0);
    append(f, "INBOX", 0);
    WAIT(f, f->n == 1, 3000);
    assert_body(f, 0, 0);
}

static void test_imap_stop_during_idle_is_prompt(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    start_session(f, "INBOX", 0, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1, 10000);
    uint64_t t0 = sb_test_now_ms();
    stop_session(f);
    assert_true(sb_test_now_ms() - t0 < 500);
}

/* A server that greets and then never answers: the session blocks reading the answer to its
 * CAPABILITY (with a long timeout), and a stop still ends it at once. */
static void test_imap_stop_during_silent_server(void **state)
{
    fx_t *f = *state;
    int port = sb_test_free_port();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 4), 0);
    char url[200];
    snprintf(url, sizeof(url), "imap://u:p@127.0.0.1:%d/", port);
    sb_imap_opts_t o = {.name = "silent", .url = url, .timeout_s = 60};
    sb_imap_cbs_t cbs = {.on_message = on_message, .on_status = on_status};
    assert_int_equal(sb_imap_start(&f->loop, &o, &cbs, f, &f->m), 0);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    assert_int_equal(poll(&p, 1, 5000), 1);
    int c = accept(lfd, NULL, NULL);
    assert_true(c >= 0);
    const char *greeting = "* OK silent test server\r\n";
    assert_int_equal(write(c, greeting, strlen(greeting)), (ssize_t)strlen(greeting));
    /* Once its command arrives, the session waits for an answer that never comes. */
    char got[256] = "";
    size_t n = 0;
    struct pollfd pc = {.fd = c, .events = POLLIN};
    while (!strstr(got, "CAPABILITY\r\n") && n + 1 < sizeof(got) && poll(&pc, 1, 5000) == 1) {
        ssize_t r = read(c, got + n, sizeof(got) - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        got[n] = '\0';
    }
    assert_non_null(strstr(got, "CAPABILITY\r\n"));
    uint64_t t0 = sb_test_now_ms();
    stop_session(f);
    assert_true(sb_test_now_ms() - t0 < 500);
    assert_int_equal(f->status_count[SB_IMAP_ERROR], 0); /* a stop is no error */
    close(c);
    close(lfd);
}

static void test_imap_credits_bound_what_is_in_flight(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    for (int i = 0; i < 6; i++)
        append(f, "INBOX", i);
    f->hold = true;
    start_session(f, "INBOX", 0, 0); /* max_inflight 4 */
    WAIT(f, f->n == 4, 10000);
    sb_test_loop_for(&f->loop, 300); /* an absence: nothing more comes without credits */
    assert_int_equal(f->n, 4);
    f->hold = false;
    sb_imap_done(f->m, f->got[0].uid, 0);
    sb_imap_done(f->m, f->got[1].uid, 0);
    WAIT(f, f->n == 6, 5000);
    for (unsigned k = 0; k < 6; k++)
        assert_body(f, k, (int)k);
    for (unsigned k = 2; k < 6; k++)
        sb_imap_done(f->m, f->got[k].uid, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1, 5000);
}

static void test_imap_failed_store_is_fetched_again(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    uint32_t a = append(f, "INBOX", 0);
    uint32_t b = append(f, "INBOX", 1);
    f->fail_once = b;
    start_session(f, "INBOX", 0, 0);
    WAIT(f, f->n >= 3 && f->status_count[SB_IMAP_IDLING] >= 1, 10000);
    assert_int_equal(f->got[0].uid, a);
    assert_int_equal(f->got[1].uid, b);
    assert_int_equal(f->got[2].uid, b); /* again, after the owner said it was not stored */
    assert_int_equal(f->n, 3);
    assert_true(f->status_count[SB_IMAP_ERROR] >= 1);
}

/* Over 25 MiB: listed with its size, never fetched; the next message comes as usual. */
static void test_imap_too_big_is_reported_not_fetched(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, NULL, NULL, false);
    size_t big = SB_IMAP_MAX_MESSAGE + 4096;
    char *raw = sb_malloc(big);
    const char *head = "From: a@example.com\r\nSubject: huge\r\nMessage-ID: <huge@x>\r\n\r\n";
    size_t hl = strlen(head);
    memcpy(raw, head, hl);
    for (size_t i = hl; i < big; i += 100) {
        size_t n = big - i < 100 ? big - i : 100;
        memset(raw + i, 'x', n);
        if (n >= 2)
            memcpy(raw + i + n - 2, "\r\n", 2);
    }
    uint32_t huge = 0;
    assert_int_equal(sb_test_dovecot_append(&f->dv, "INBOX", raw, big, &huge), 0);
    sb_free(raw);
    uint32_t small = append(f, "INBOX", 1);
    start_session(f, "INBOX", 0, 0);
    WAIT(f, f->n == 2 && f->status_count[SB_IMAP_IDLING] == 1, 20000);
    assert_int_equal(f->got[0].uid, huge);
    assert_null(f->got[0].raw);
    assert_true(f->got[0].len > SB_IMAP_MAX_MESSAGE);
    assert_int_equal(f->got[1].uid, small);
    assert_body(f, 1, 1);
}

/* ---- TLS ---- */

static void test_imap_tls_with_test_ca(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, f->ca.cert_pem, f->ca.key_pem, false);
    append(f, "INBOX", 0);
    char url[400];
    sb_test_dovecot_url(&f->dv, true, "localhost", "INBOX", url, sizeof(url));
    start_session_with(f, url, f->ca.ca_pem, 0, 0, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1 && f->n == 1, 10000);
    assert_int_equal(f->status_count[SB_IMAP_ERROR], 0);
    assert_body(f, 0, 0);
}

static void test_imap_starttls_with_test_ca(void **state)
{
    fx_t *f = *state;
    start_dovecot(f, f->ca.cert_pem, f->ca.key_pem, false);
    append(f, "INBOX", 0);
    int before = sb_test_dovecot_logins(&f->dv);
    char url[400];
    sb_test_dovecot_url(&f->dv, false, "127.0.0.1", "INBOX", url, sizeof(url));
    start_session_with(f, url, f->ca.ca_pem, 0, 0, 0);
    WAIT(f, f->status_count[SB_IMAP_IDLING] == 1 && f->n == 1, 10000);
    assert_int_equal(sb_test_dovecot_logins(&f->dv), before + 1);
    /* Dovecot marks a login over TLS: the session really upgraded. */
    FILE *lf = fopen(f->dv.log, "r");
    assert_non_null(lf);
    char line[2048];
    bool tls_login = false;
    while (fgets(line, sizeof(line), lf))
        if (strstr(line, "Login: user=<alice>") && strstr(line, "TLS"))
            tls_login = true;
    fclose(lf);
    assert_true(tls_login);
}

/* A refused certificate: an error with that reason, and no LOGIN ever reached Dovecot. */
static void refused(fx_t *f, const char *cert, const char *key, const char *tls_ca, const char *why)
{
    start_dovecot(f, cert, key, false);
    char url[400];
    sb_test_dovecot_url(&f->dv, true, "localhost", "INBOX", url, sizeof(url));
    start_session_with(f, url, tls_ca, 0, 0, 0);
    WAIT(f, f->status_count[SB_IMAP_ERROR] >= 2, 10000); /* refused, and again after backoff */
    assert_non_null(strstr(f->last_error, why));
    assert_int_equal(f->status_count[SB_IMAP_CONNECTED], 0);
    assert_int_equal(sb_test_dovecot_logins(&f->dv), 0);
}

static void test_imap_tls_wrong_host_refused(void **state)
{
    fx_t *f = *state;
    refused(f, f->ca.wrong_cert_pem, f->ca.wrong_key_pem, f->ca.ca_pem,
            "certificate for wrong.example does not match host localhost");
}

static void test_imap_tls_self_signed_refused(void **state)
{
    fx_t *f = *state;
    refused(f, f->ca.self_cert_pem, f->ca.self_key_pem, f->ca.ca_pem, "not trusted");
}

static void test_imap_tls_unknown_ca_refused(void **state)
{
    fx_t *f = *state;
    refused(f, f->ca.cert_pem, f->ca.key_pem, NULL, "unknown CA");
}

/* ---- tls_verify.c on its own ---- */

/* One PEM certificate as DER (sb_free data). */
static sb_tls_der_t der_of(const char *pem, unsigned char **owned)
{
    FILE *fp = fopen(pem, "r");
    assert_non_null(fp);
    X509 *x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(x);
    unsigned char *buf = NULL;
    int len = i2d_X509(x, &buf);
    X509_free(x);
    assert_true(len > 0);
    unsigned char *copy = sb_malloc((size_t)len);
    memcpy(copy, buf, (size_t)len);
    OPENSSL_free(buf);
    *owned = copy;
    return (sb_tls_der_t){copy, (size_t)len};
}

static int verify(const char *cert, const char *host, const char *ca, char *why, size_t n)
{
    unsigned char *buf;
    sb_tls_der_t d = der_of(cert, &buf);
    int rc = sb_tls_verify(&d, 1, host, ca, why, n);
    sb_free(buf);
    return rc;
}

static void test_tls_verify_chain_and_host(void **state)
{
    fx_t *f = *state;
    char why[300];
    assert_int_equal(verify(f->ca.cert_pem, "localhost", f->ca.ca_pem, why, sizeof(why)), 0);
    assert_int_equal(verify(f->ca.cert_pem, "127.0.0.1", f->ca.ca_pem, why, sizeof(why)), 0);
    assert_int_equal(verify(f->ca.cert_pem, "LOCALHOST", f->ca.ca_pem, why, sizeof(why)), 0);
    assert_int_equal(verify(f->ca.cert_pem, "127.0.0.2", f->ca.ca_pem, why, sizeof(why)),
                     SB_EFORBIDDEN);
    assert_non_null(strstr(why, "does not match host 127.0.0.2"));
    assert_int_equal(verify(f->ca.wrong_cert_pem, "localhost", f->ca.ca_pem, why, sizeof(why)),
                     SB_EFORBIDDEN);
    assert_string_equal(why, "certificate for wrong.example does not match host localhost");
    assert_int_equal(verify(f->ca.self_cert_pem, "localhost", f->ca.ca_pem, why, sizeof(why)),
                     SB_EFORBIDDEN);
    assert_non_null(strstr(why, "not trusted"));
    assert_int_equal(verify(f->ca.cert_pem, "localhost", NULL, why, sizeof(why)), SB_EFORBIDDEN);
    assert_non_null(strstr(why, "unknown CA"));
    /* A CA certificate is no server certificate, even for itself. */
    assert_int_equal(verify(f->ca.ca_pem, "localhost", f->ca.ca_pem, why, sizeof(why)),
                     SB_EFORBIDDEN);
    assert_int_equal(verify(f->ca.cert_pem, "localhost", "/nonexistent.pem", why, sizeof(why)),
                     SB_ECONFIG);
    sb_tls_der_t junk = {(const unsigned char *)"\x30\x03\x02\x01", 4};
    assert_int_equal(sb_tls_verify(&junk, 1, "localhost", NULL, why, sizeof(why)), SB_EPARSE);
    assert_int_equal(sb_tls_verify(NULL, 0, "localhost", NULL, why, sizeof(why)), SB_EPARSE);
}

/* ---- The URL ---- */

static void test_imap_url_parse(void **state)
{
    sb_imap_url_t u;
    char why[100];
    assert_int_equal(
        sb_imap_url_parse("imaps://a%40b.example:p%3Ass@mail.example.org", &u, why, sizeof(why)),
        0);
    assert_true(u.tls);
    assert_string_equal(u.user, "a@b.example");
    assert_string_equal(u.pass, "p:ss");
    assert_string_equal(u.host, "mail.example.org");
    assert_int_equal(u.port, 993);
    assert_string_equal(u.folder, "INBOX");
    sb_imap_url_dispose(&u);
    assert_int_equal(
        sb_imap_url_parse("imap://bob@[::1]:1143/Support%20Mail", &u, why, sizeof(why)), 0);
    assert_false(u.tls);
    assert_string_equal(u.user, "bob");
    assert_null(u.pass);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 1143);
    assert_string_equal(u.folder, "Support Mail");
    sb_imap_url_dispose(&u);
    const char *bad[] = {"http://x",       "imap://",        "imap://u@:143",    "imap://h:0",
                         "imap://h:65536", "imap://h:1x",    "imap://u%zz@h",    "imap://u%00@h",
                         "imap://[::1",    "imap://h/box?x", "imaps://u:p@h/%4", "imap://h:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        assert_int_equal(sb_imap_url_parse(bad[i], &u, why, sizeof(why)), SB_ECONFIG);
        assert_true(why[0] != '\0');
        assert_null(u.host);
    }
}

int main(void)
{
    if (getenv("SB_TEST_DEBUG")) /* the IMAP conversation on stderr */
        sb_log_setup(SB_LOG_DEBUG, SB_LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_imap_url_parse),
        cmocka_unit_test_setup_teardown(test_tls_verify_chain_and_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_backfill_in_uid_order_then_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_resume_fetches_only_newer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_uidvalidity_change_refetches_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_imap_uidvalidity_change_while_running, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_imap_dovecot_restart_mid_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_plain_refused_off_loopback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_poll_without_idle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_stop_during_idle_is_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_stop_during_silent_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_credits_bound_what_is_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_failed_store_is_fetched_again, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_too_big_is_reported_not_fetched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_tls_with_test_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_starttls_with_test_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_tls_wrong_host_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_tls_self_signed_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_imap_tls_unknown_ca_refused, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/imap", tests, NULL, NULL);
}

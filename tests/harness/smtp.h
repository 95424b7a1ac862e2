/* SPDX-License-Identifier: MIT */
/*
 * A real SMTP server for integration tests: tests/harness/smtp_server.py (aiosmtpd, run
 * with /usr/bin/python3) on a free loopback port in a fresh temp dir. It writes every
 * message it accepts into a Maildir with the envelope on top (X-MailFrom, X-RcptTo,
 * X-Conn: the connection that carried it, X-TLS, X-Auth), counts the connections it
 * accepted, and can offer STARTTLS or implicit TLS, require AUTH, and answer with scripted
 * errors (the first N DATA commands 451, every RCPT 550, or no answer at all).
 */
#ifndef SB_TEST_SMTP_H
#define SB_TEST_SMTP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/** How the server behaves; all zero = plain SMTP, no AUTH, every message accepted. */
typedef struct sb_test_smtp_opts {
    const char *tls_cert, *tls_key; /* PEM files: offer STARTTLS (and require it before MAIL) */
    bool implicit_tls;              /* with tls_cert: TLS from the first byte (smtps) */
    const char *user, *password;    /* require AUTH PLAIN/LOGIN with these */
    unsigned fail_data;             /* the first N DATA commands get data_reply */
    const char *data_reply;         /* NULL: "451 4.3.0 try later" */
    const char *rcpt_reply;         /* every RCPT gets this ("550 5.1.1 no such user") */
    const char *hang;               /* "greeting" or "data": never answer there */
    const char *host;               /* the IPv4 address to listen on; NULL: 127.0.0.1 */
} sb_test_smtp_opts_t;

typedef struct sb_test_smtp {
    char dir[256];
    char url[64]; /* smtp://HOST:PORT (smtps:// with implicit_tls) */
    int port;
    pid_t pid;
} sb_test_smtp_t;

/** Starts the server (opts may be NULL) and waits until it listens. 0 or -1. */
int sb_test_smtp_start(sb_test_smtp_t *s, const sb_test_smtp_opts_t *opts);
/** Stops the server and removes its directory. Accepts a server that never started. */
void sb_test_smtp_stop(sb_test_smtp_t *s);
/** Messages accepted so far. */
unsigned sb_test_smtp_count(const sb_test_smtp_t *s);
/** Connections accepted so far (a STARTTLS upgrade is not a new one). */
unsigned sb_test_smtp_connections(const sb_test_smtp_t *s);
/**
 * The i-th accepted message (from 0, in the order they arrived), envelope headers first,
 * as the server received it (CRLF line ends, dot-stuffing undone). A new string (sb_free),
 * or NULL when there is no such message; *len gets its length when len is not NULL.
 */
char *sb_test_smtp_message(const sb_test_smtp_t *s, unsigned i, size_t *len);

#endif

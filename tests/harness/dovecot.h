/* SPDX-License-Identifier: MIT */
/*
 * A real Dovecot for the IMAP tests: its own configuration under a fresh temp dir, a free
 * loopback port (plus an imaps port when TLS is on), a static password database (any user,
 * password "secret"), maildir storage. It can be killed (the whole process group, as a crash
 * would) and started again on the same ports, and the tests put mail in through IMAP itself
 * (APPEND with a small synchronous client here), or straight into the maildir while the
 * server is down. Runs as the current user; as root, the login process runs as dovenull and
 * the mail as nobody, as Dovecot refuses root for both.
 */
#ifndef SB_TEST_DOVECOT_H
#define SB_TEST_DOVECOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct sb_test_dovecot_opts {
    const char *cert_pem, *key_pem; /* TLS (imaps port + STARTTLS) when both are set */
    bool no_idle;                   /* leave IDLE out of the capability list */
    const char *listen_also;        /* another local address to listen on besides 127.0.0.1 */
} sb_test_dovecot_opts_t;

typedef struct sb_test_dovecot {
    char dir[256];
    char conf[300], log[300];
    int port;     /* imap:// (offers STARTTLS when TLS is on) */
    int tls_port; /* imaps://, 0 without TLS */
    pid_t pid;
    const char *user, *pass; /* "alice", "secret" */
    uid_t mail_uid;          /* who owns the maildir */
    gid_t mail_gid;
} sb_test_dovecot_t;

/** Writes the configuration and starts Dovecot; returns once it greets. 0 or -1. */
int sb_test_dovecot_start(sb_test_dovecot_t *d, const sb_test_dovecot_opts_t *o);
/** SIGKILLs Dovecot and all its processes (open IMAP sessions drop). */
void sb_test_dovecot_kill(sb_test_dovecot_t *d);
/** Starts it again (same ports, same mail); returns once it greets. 0 or -1. */
int sb_test_dovecot_restart(sb_test_dovecot_t *d);
/** Kills it and removes its directory. Accepts a zeroed struct. */
void sb_test_dovecot_stop(sb_test_dovecot_t *d);

/** imap://alice:secret@127.0.0.1:PORT/<folder> (tls: imaps:// on tls_port), host as given. */
void sb_test_dovecot_url(const sb_test_dovecot_t *d, bool tls, const char *host, const char *folder,
                         char *out, size_t n);

/** APPENDs raw to folder through IMAP; *uid (may be NULL) gets its UID. 0 or -1. */
int sb_test_dovecot_append(sb_test_dovecot_t *d, const char *folder, const char *raw, size_t len,
                           uint32_t *uid);
/** Writes raw straight into folder's maildir (new/), as a delivery agent would; works while
 *  Dovecot is down. 0 or -1. */
int sb_test_dovecot_deliver(sb_test_dovecot_t *d, const char *folder, const char *raw, size_t len);
/** Creates folder through IMAP. 0 or -1. */
int sb_test_dovecot_create(sb_test_dovecot_t *d, const char *folder);
/** Deletes and creates folder again (a new UIDVALIDITY, no mail). 0 or -1. */
int sb_test_dovecot_recreate(sb_test_dovecot_t *d, const char *folder);
/** folder's UIDVALIDITY (STATUS), 0 on error. */
uint32_t sb_test_dovecot_uidvalidity(sb_test_dovecot_t *d, const char *folder);
/** The flags of message uid, "(\Seen …)" as the server prints them, into out. 0 or -1. */
int sb_test_dovecot_flags(sb_test_dovecot_t *d, const char *folder, uint32_t uid, char *out,
                          size_t n);
/** How many times Dovecot's log says a user logged in. */
int sb_test_dovecot_logins(const sb_test_dovecot_t *d);

#endif

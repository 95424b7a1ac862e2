/* SPDX-License-Identifier: MIT */
/*
 * A throw-away certificate authority for TLS tests (IMAP, SMTP): a CA, a server
 * certificate it signed for localhost and 127.0.0.1, one it signed for another host only
 * (wrong.example: a client must refuse it on localhost), and a self-signed localhost
 * certificate (no CA vouches for it). Made with the openssl command (Debian's `openssl`
 * package) under a fresh temp dir; EC P-256 keys, valid for two days.
 */
#ifndef SB_TEST_TESTCA_H
#define SB_TEST_TESTCA_H

typedef struct sb_test_ca {
    char dir[256];
    char ca_pem[300];                             /* the CA certificate: trust this */
    char cert_pem[300], key_pem[300];             /* localhost + 127.0.0.1, signed by the CA */
    char wrong_cert_pem[300], wrong_key_pem[300]; /* wrong.example only, signed by the CA */
    char self_cert_pem[300], self_key_pem[300];   /* localhost, self-signed */
} sb_test_ca_t;

/** Makes the CA and the three certificates. 0, or -1 (the openssl command failed). */
int sb_test_ca_make(sb_test_ca_t *ca);

/** Removes the directory and everything in it. */
void sb_test_ca_remove(sb_test_ca_t *ca);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Verifies a TLS server's certificate chain and host name with OpenSSL's libcrypto: the
 * chain as the server sent it (DER, leaf first) must lead to a trusted CA (a PEM file, or
 * the system's store) with every certificate valid now and usable by a TLS server, and
 * the leaf must name the host (RFC 6125: subjectAltName DNS with the usual one-label
 * wildcard, or an IP address entry when the host is an address literal).
 *
 * libetpan's TLS (GnuTLS underneath) checks none of this, so the IMAP session calls it after
 * the handshake and before LOGIN. Pure: no I/O but reading the CA file, no shared state.
 */
#ifndef SB_EMAIL_TLS_VERIFY_H
#define SB_EMAIL_TLS_VERIFY_H

#include <stddef.h>

/** One certificate of a chain, DER encoded (borrowed). */
typedef struct sb_tls_der {
    const unsigned char *data;
    size_t len;
} sb_tls_der_t;

/**
 * Verifies chain[0..n) (chain[0] the server's own certificate, the rest what it sent to
 * help build the path; none of them is trusted for itself) for host (a DNS name, or an IPv4
 * or IPv6 address literal without brackets), against the CAs of the PEM file ca_file, or
 * the system's default store when ca_file is NULL.
 *
 * Returns 0 when it holds; SB_EFORBIDDEN when it does not, with a one-line reason in why
 * ("certificate for wrong.example does not match host localhost", "certificate not trusted:
 * self-signed certificate"); SB_EPARSE for a chain that is empty or not DER; SB_ECONFIG when
 * ca_file cannot be read. why (why_len bytes) always gets a reason on failure.
 */
int sb_tls_verify(const sb_tls_der_t *chain, size_t n, const char *host, const char *ca_file,
                  char *why, size_t why_len);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * tls_verify.h with libcrypto: the chain is decoded, an X509_STORE is filled from the CA
 * file or the default paths, X509_verify_cert builds and checks the path (purpose: TLS
 * server), then X509_check_host / X509_check_ip_asc match the leaf against the host. Trust
 * is checked before the name, so a self-signed certificate is reported as untrusted even
 * when its name is wrong too.
 */
#include "connectors/email/tls_verify.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

/* The names the leaf is for, "a, b" (subjectAltName DNS and IP entries, else the CN). */
static void leaf_names(X509 *leaf, char *out, size_t n)
{
    out[0] = '\0';
    size_t used = 0;
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && used + 1 < n; i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
        char ip[INET6_ADDRSTRLEN] = "";
        const char *name = NULL;
        if (g->type == GEN_DNS) {
            name = (const char *)ASN1_STRING_get0_data(g->d.dNSName);
        } else if (g->type == GEN_IPADD) {
            int len = ASN1_STRING_length(g->d.iPAddress);
            const unsigned char *a = ASN1_STRING_get0_data(g->d.iPAddress);
            if (len == 4 || len == 16)
                name = inet_ntop(len == 4 ? AF_INET : AF_INET6, a, ip, sizeof(ip));
        }
        if (name)
            used += (size_t)snprintf(out + used, n - used, "%s%s", used ? ", " : "", name);
    }
    GENERAL_NAMES_free(sans);
    if (!out[0]) {
        X509_NAME *subj = X509_get_subject_name(leaf);
        if (X509_NAME_get_text_by_NID(subj, NID_commonName, out, (int)n) < 0)
            snprintf(out, n, "(no name)");
    }
    if (used >= n && n > 4)
        memcpy(out + n - 4, "...", 4);
}

static bool is_ip(const char *host)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static int load_store(X509_STORE *store, const char *ca_file, char *why, size_t why_len)
{
    if (ca_file) {
        if (X509_STORE_load_file(store, ca_file) != 1) {
            snprintf(why, why_len, "cannot read the CA file %s", ca_file);
            return SB_ECONFIG;
        }
    } else if (X509_STORE_set_default_paths(store) != 1) {
        snprintf(why, why_len, "cannot load the system's CA store");
        return SB_ECONFIG;
    }
    return 0;
}

int sb_tls_verify(const sb_tls_der_t *chain, size_t n, const char *host, const char *ca_file,
                  char *why, size_t why_len)
{
    char dummy[1];
    if (!why || !why_len) {
        why = dummy;
        why_len = sizeof(dummy);
    }
    int rc = SB_EPARSE;
    X509 *leaf = NULL;
    STACK_OF(X509) *rest = sk_X509_new_null();
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (!rest || !store || !ctx) {
        snprintf(why, why_len, "out of memory");
        rc = SB_EINTERNAL;
        goto fail;
    }
    if (n == 0) {
        snprintf(why, why_len, "the server sent no certificate");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = chain[i].data;
        X509 *x = chain[i].len <= 65536 ? d2i_X509(NULL, &p, (long)chain[i].len) : NULL;
        if (!x || p != chain[i].data + chain[i].len) {
            X509_free(x);
            snprintf(why, why_len, "certificate %zu of the chain is not DER", i);
            goto fail;
        }
        if (i == 0)
            leaf = x;
        else
            sk_X509_push(rest, x);
    }
    if ((rc = load_store(store, ca_file, why, why_len)) != 0)
        goto fail;
    rc = SB_EFORBIDDEN;
    if (X509_STORE_CTX_init(ctx, store, leaf, rest) != 1) {
        snprintf(why, why_len, "cannot set up the verification");
        rc = SB_EINTERNAL;
        goto fail;
    }
    X509_VERIFY_PARAM_set_purpose(X509_STORE_CTX_get0_param(ctx), X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) != 1) {
        int e = X509_STORE_CTX_get_error(ctx);
        bool unknown_ca = e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
                          e == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
                          e == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
                          e == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT;
        snprintf(why, why_len, "certificate not trusted: %s%s", X509_verify_cert_error_string(e),
                 unknown_ca ? " (unknown CA)" : "");
        goto fail;
    }
    int match = is_ip(host) ? X509_check_ip_asc(leaf, host, 0)
                            : X509_check_host(leaf, host, strlen(host),
                                              X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL);
    if (match != 1) {
        char names[200];
        leaf_names(leaf, names, sizeof(names));
        snprintf(why, why_len, "certificate for %s does not match host %s", names, host);
        goto fail;
    }
    rc = 0;
fail:
    ERR_clear_error(); /* this thread's OpenSSL error queue stays empty for others */
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(leaf);
    sk_X509_pop_free(rest, X509_free);
    return rc;
}

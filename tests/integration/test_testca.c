/* SPDX-License-Identifier: MIT */
/*
 * The test CA (tests/harness/testca.h) gives what the TLS tests rely on: the server
 * certificate chains to the CA and names localhost and 127.0.0.1; the wrong-host one chains
 * to the CA but names only wrong.example; the self-signed one chains to nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "tests/harness/testca.h"

static X509 *load(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    return x;
}

/* 1 when cert chains to the CA file. */
static int chains(const char *ca_pem, X509 *cert)
{
    X509_STORE *store = X509_STORE_new();
    assert_int_equal(X509_STORE_load_file(store, ca_pem), 1);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    X509_STORE_CTX_init(ctx, store, cert, NULL);
    int ok = X509_verify_cert(ctx);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok == 1;
}

static void test_certificates(void **state)
{
    (void)state;
    sb_test_ca_t ca;
    assert_int_equal(sb_test_ca_make(&ca), 0);

    X509 *good = load(ca.cert_pem), *wrong = load(ca.wrong_cert_pem),
         *self = load(ca.self_cert_pem);
    assert_true(chains(ca.ca_pem, good));
    assert_int_equal(X509_check_host(good, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(good, "127.0.0.1", 0), 1);

    assert_true(chains(ca.ca_pem, wrong));
    assert_int_equal(X509_check_host(wrong, "localhost", 0, 0, NULL), 0);
    assert_int_equal(X509_check_host(wrong, "wrong.example", 0, 0, NULL), 1);

    assert_false(chains(ca.ca_pem, self));
    assert_int_equal(X509_check_host(self, "localhost", 0, 0, NULL), 1);

    X509_free(good);
    X509_free(wrong);
    X509_free(self);
    sb_test_ca_remove(&ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_certificates)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

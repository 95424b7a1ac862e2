/* SPDX-License-Identifier: MIT */
#include "tests/harness/testca.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness/harness.h"

/* Runs one shell command line (paths come from mkdtemp: no quoting surprises). */
static int run(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "testca: failed (%d): %s\n", rc, cmd);
    return rc == 0 ? 0 : -1;
}

/* A key and a certificate for san, signed by the CA (or by itself when ca is 0). */
static int make_cert(const sb_test_ca_t *ca, const char *name, const char *cn, const char *san,
                     int self_signed, char *cert, char *key)
{
    char cmd[8192];
    snprintf(key, 300, "%s/%s.key", ca->dir, name);
    snprintf(cert, 300, "%s/%s.pem", ca->dir, name);
    if (self_signed) {
        snprintf(cmd, sizeof(cmd),
                 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
                 " -keyout %s -out %s -days 2 -subj '/CN=%s' -addext 'subjectAltName=%s'"
                 " 2>/dev/null",
                 key, cert, cn, san);
        return run(cmd);
    }
    snprintf(cmd, sizeof(cmd),
             "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
             " -keyout %s -out %s/%s.csr -subj '/CN=%s' 2>/dev/null"
             " && printf 'subjectAltName=%s\\nbasicConstraints=CA:FALSE\\n"
             "extendedKeyUsage=serverAuth\\n' > %s/%s.ext"
             " && openssl x509 -req -in %s/%s.csr -CA %s -CAkey %s/ca.key -CAcreateserial"
             " -days 2 -extfile %s/%s.ext -out %s 2>/dev/null",
             key, ca->dir, name, cn, san, ca->dir, name, ca->dir, name, ca->ca_pem, ca->dir,
             ca->dir, name, cert);
    return run(cmd);
}

int sb_test_ca_make(sb_test_ca_t *ca)
{
    memset(ca, 0, sizeof(*ca));
    if (sb_test_mkdtemp(ca->dir, "ca") < 0)
        return -1;
    snprintf(ca->ca_pem, sizeof(ca->ca_pem), "%s/ca.pem", ca->dir);
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
             " -keyout %s/ca.key -out %s -days 2 -subj '/CN=Switchboard Test CA'"
             " -addext 'basicConstraints=critical,CA:TRUE'"
             " -addext 'keyUsage=critical,keyCertSign,cRLSign' 2>/dev/null",
             ca->dir, ca->ca_pem);
    if (run(cmd) < 0 ||
        make_cert(ca, "server", "localhost", "DNS:localhost,IP:127.0.0.1", 0, ca->cert_pem,
                  ca->key_pem) < 0 ||
        make_cert(ca, "wrong", "wrong.example", "DNS:wrong.example", 0, ca->wrong_cert_pem,
                  ca->wrong_key_pem) < 0 ||
        make_cert(ca, "self", "localhost", "DNS:localhost,IP:127.0.0.1", 1, ca->self_cert_pem,
                  ca->self_key_pem) < 0) {
        sb_test_ca_remove(ca);
        return -1;
    }
    return 0;
}

void sb_test_ca_remove(sb_test_ca_t *ca)
{
    if (!ca->dir[0])
        return;
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", ca->dir);
    run(cmd);
    ca->dir[0] = '\0';
}

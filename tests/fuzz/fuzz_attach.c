/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes what GET /v1/attachments/{sha} checks from the query (core/attach.c): the input
 * is split at NUL bytes into sha, name, type, exp and sig, as a client may send them.
 * Invariants: sb_attach_verify never accepts a signature it did not make (only the one
 * sb_attach_sign gives for those exact fields); a sha that is not 64 lower-case hex
 * characters never becomes a path; a URL built from the fields carries exactly them,
 * percent-encoded so that nothing but unreserved characters and '%XX' remain; and
 * verifying the URL's own signature succeeds before its expiry and is SB_ETIMEDOUT after.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/attach.h"
#include "core/err.h"

static void fail(const char *what, const char *s)
{
    fprintf(stderr, "fuzz_attach: %s: \"%.200s\"\n", what, s ? s : "(null)");
    abort();
}

/* The query's value of key in url, still encoded, or NULL. */
static char *param(const char *url, const char *key)
{
    const char *q = strchr(url, '?');
    size_t kl = strlen(key);
    for (const char *p = q ? q + 1 : NULL; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > kl && p[kl] == '=' && strncmp(p, key, kl) == 0)
            return sb_strndup(p + kl + 1, n - kl - 1);
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *buf = sb_malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *f[5] = {"", "", "", "", ""};
    const char *p = buf;
    for (int i = 0; i < 5 && p <= buf + size; i++) {
        f[i] = p;
        p += strlen(p) + 1;
    }
    static sb_attach_key_t key;
    static int ready;
    if (!ready)
        ready = sb_attach_key_load(&key, NULL, "fuzz") == 0;
    const char *sha = f[0], *name = f[1], *type = f[2], *exp = f[3], *sig = f[4];

    int rc = sb_attach_verify(&key, sha, name, type, exp, sig, 0);
    if (rc == 0 || rc == SB_ETIMEDOUT) {
        char want[65];
        sb_attach_sign(&key, sha, name, type, strtoll(exp, NULL, 10), want);
        if (strcmp(want, sig) != 0)
            fail("accepted a signature it did not make", sig);
    }
    char path[SB_ATTACH_PATH_MAX];
    if (sb_attach_path("/data", sha, path, sizeof(path)) == 0 &&
        (!sb_attach_sha_valid(sha) || strstr(path, "..")))
        fail("a path from a bad sha", sha);

    char *url = sb_attach_url(&key, sha, name, type, 1000);
    if (!url != !sb_attach_sha_valid(sha))
        fail("a URL for a bad sha, or none for a good one", sha);
    if (url) {
        const char *q = strchr(url, '?') + 1;
        for (const char *c = q; *c; c++)
            if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%=&",
                        *c))
                fail("a raw character in the query", url);
        char *s = param(url, "sig"), *n = param(url, "name");
        char enc[3 * 4096 + 1];
        sb_attach_pct_encode(name, enc, sizeof(enc));
        if (!n || strcmp(n, enc) != 0)
            fail("the name is not the one signed", url);
        if (!s || sb_attach_verify(&key, sha, name, type, "1000", s, 1000) != 0 ||
            sb_attach_verify(&key, sha, name, type, "1000", s, 1001) != SB_ETIMEDOUT)
            fail("the URL's own signature does not verify", url);
        sb_free(s);
        sb_free(n);
    }
    sb_free(url);
    sb_free(buf);
    return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzzes the Standard Webhooks headers of core/stdwebhooks.c, what every inbound hook
 * post (connectors/hook/) meets first. The input is four lines: webhook-id,
 * webhook-timestamp, webhook-signature, then the body (a line "-" stands for a missing
 * header); the clock is fixed at the example's time. Invariants: the answer is 0 or
 * SB_EAUTH with a reason; accepted ⇒ the timestamp is within five minutes and one entry of
 * the header is exactly the signature sb_stdwebhooks_sign makes; and the same header with
 * the right entry appended is accepted whenever the id and timestamp are acceptable.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/stdwebhooks.h"
#include "core/sys.h"

#define NOW_S 1700000000LL

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_stdwebhooks: %s\n", what);
    abort();
}

static int64_t now_ms(void)
{
    return NOW_S * 1000;
}
static const sb_sys_t fixed = {.now_ms = now_ms};

/* The next line of s (cut in place); NULL for "-". */
static char *line(char **s)
{
    char *l = *s, *nl = strchr(l, '\n');
    if (nl) {
        *nl = '\0';
        *s = nl + 1;
    } else {
        *s = l + strlen(l);
    }
    return strcmp(l, "-") == 0 ? NULL : l;
}

static bool has_entry(const char *header, const char *want)
{
    size_t wl = strlen(want);
    for (const char *p = header; (p = strstr(p, want)); p++)
        if ((p == header || p[-1] == ' ') && (p[wl] == ' ' || p[wl] == '\0'))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    sb_sys_set(&fixed);
    char *in = sb_strndup((const char *)data, size), *p = in;
    size_t inlen = strlen(in); /* up to a NUL */
    char *id = line(&p), *ts = line(&p), *sig = line(&p);
    const char *body = p;
    size_t blen = inlen - (size_t)(p - in);
    static const unsigned char key[] = "switchboard-hook-example-key";
    const char *why = NULL;
    int rc = sb_stdwebhooks_verify(key, sizeof(key) - 1, id, ts, sig, body, blen, &why);
    if (rc != 0 && (rc != SB_EAUTH || !why))
        fail("a refusal without SB_EAUTH and a reason");
    if (id && ts) {
        char want[SB_STDWEBHOOKS_SIG_MAX];
        sb_stdwebhooks_sign(key, sizeof(key) - 1, id, ts, body, blen, want);
        if (rc == 0) {
            long long t = atoll(ts);
            if (t < NOW_S - SB_STDWEBHOOKS_TOLERANCE_S || t > NOW_S + SB_STDWEBHOOKS_TOLERANCE_S)
                fail("accepted a timestamp out of tolerance");
            if (!has_entry(sig, want))
                fail("accepted without the right signature");
        }
        char *both = sb_asprintf("%s %s", sig ? sig : "", want);
        const char *why2 = NULL;
        int rc2 = sb_stdwebhooks_verify(key, sizeof(key) - 1, id, ts, both, body, blen, &why2);
        if (rc2 != 0 && strcmp(why2, "no webhook-signature entry matches") == 0)
            fail("the right entry among others was not found");
        if (rc == 0 && rc2 != 0)
            fail("adding an entry made a good header bad");
        sb_free(both);
    }
    sb_free(in);
    sb_sys_set(NULL);
    return 0;
}

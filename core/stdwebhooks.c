/* SPDX-License-Identifier: MIT */
/*
 * Standard Webhooks signing and verification (core/stdwebhooks.h): the one copy used by
 * the outbound webhooks (gateway/webhooks.c) and the hook connector (connectors/hook/).
 * HMAC-SHA256 through core/util.h, base64 through OpenSSL's EVP block encoder; the
 * timestamp check reads the clock of core/sys.h so tests move it instead of waiting.
 */
#include "core/stdwebhooks.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/util.h"

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes base64 (padding optional) into a new buffer. 0 or SB_EINVAL. */
static int base64_decode(const char *s, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(s);
    unsigned char *o = sb_malloc(n + 1);
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        int v = b64val((unsigned char)*s);
        if (v < 0) {
            sb_free(o);
            return SB_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[k++] = (unsigned char)(acc >> bits);
        }
    }
    if (k == 0) {
        sb_free(o);
        return SB_EINVAL;
    }
    *out = o;
    *outlen = k;
    return 0;
}

int sb_stdwebhooks_key(const char *secret, unsigned char **key, size_t *keylen)
{
    if (!secret || !*secret)
        return SB_EINVAL;
    if (strncmp(secret, "whsec_", 6) == 0)
        return base64_decode(secret + 6, key, keylen);
    *keylen = strlen(secret);
    *key = (unsigned char *)sb_strndup(secret, *keylen);
    return 0;
}

void sb_stdwebhooks_sign(const unsigned char *key, size_t keylen, const char *id, const char *ts,
                         const void *body, size_t len, char out[SB_STDWEBHOOKS_SIG_MAX])
{
    size_t hl = strlen(id) + strlen(ts) + 2;
    char *msg = sb_malloc(hl + len + 1);
    snprintf(msg, hl + 1, "%s.%s.", id, ts);
    if (len)
        memcpy(msg + hl, body, len);
    unsigned char mac[32];
    sb_hmac_sha256(key, keylen, msg, hl + len, mac);
    sb_free(msg);
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, sizeof(mac)); /* 44 chars + NUL */
}

/* The timestamp as seconds: decimal digits only, at most 15 of them. */
static bool parse_ts(const char *ts, int64_t *out)
{
    size_t n = strlen(ts);
    if (n == 0 || n > 15)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (ts[i] < '0' || ts[i] > '9')
            return false;
        v = v * 10 + (ts[i] - '0');
    }
    *out = v;
    return true;
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SB_STDWEBHOOKS_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return false;
    return true;
}

/* True if one of the space-separated entries of header is "v1,<want after v1,>". */
static bool any_matches(const char *header, const char *want)
{
    bool found = false;
    for (const char *p = header; *p;) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n > 3 && n < SB_STDWEBHOOKS_SIG_MAX && strncmp(p, "v1,", 3) == 0) {
            char entry[SB_STDWEBHOOKS_SIG_MAX];
            memcpy(entry, p, n);
            entry[n] = '\0';
            found |= sb_streq_ct(entry, want); /* every entry compared: no early exit */
        }
        p += n;
    }
    return found;
}

int sb_stdwebhooks_verify(const unsigned char *key, size_t keylen, const char *id, const char *ts,
                          const char *signature, const void *body, size_t len, const char **why)
{
    int64_t t;
    if (!id || !ts || !signature) {
        *why = !id   ? "webhook-id missing"
               : !ts ? "webhook-timestamp missing"
                     : "webhook-signature missing";
        return SB_EAUTH;
    }
    if (!id_ok(id)) {
        *why = "webhook-id empty, too long or with control characters";
        return SB_EAUTH;
    }
    if (!parse_ts(ts, &t)) {
        *why = "webhook-timestamp is not seconds since the epoch";
        return SB_EAUTH;
    }
    int64_t now = sb_now_ms() / 1000;
    if (t < now - SB_STDWEBHOOKS_TOLERANCE_S || t > now + SB_STDWEBHOOKS_TOLERANCE_S) {
        *why = t < now ? "webhook-timestamp too old" : "webhook-timestamp in the future";
        return SB_EAUTH;
    }
    char want[SB_STDWEBHOOKS_SIG_MAX];
    sb_stdwebhooks_sign(key, keylen, id, ts, body, len, want);
    if (!any_matches(signature, want)) {
        *why = "no webhook-signature entry matches";
        return SB_EAUTH;
    }
    return 0;
}

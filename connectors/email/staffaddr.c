/* SPDX-License-Identifier: MIT */
#include "connectors/email/staffaddr.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"

#define LOCAL_MAX 64 /* RFC 5321 §4.5.3.1.1 */

static void sign(const void *secret, size_t n, const char *cid, const char *sid,
                 char out[SB_STAFFADDR_SIG_LEN + 1])
{
    char msg[2 * SB_ID_MAX + 16], hex[65];
    int len = snprintf(msg, sizeof(msg), "staff-reply:%s:%s", cid, sid);
    sb_hmac_sha256_hex(secret, n, msg, (size_t)len, hex);
    memcpy(out, hex, SB_STAFFADDR_SIG_LEN);
    out[SB_STAFFADDR_SIG_LEN] = '\0';
}

int sb_staffaddr_make(const void *secret, size_t secret_len, const char *address, const char *cid,
                      const char *sid, char *out, size_t cap)
{
    const char *at = address ? strrchr(address, '@') : NULL;
    if (!at || at == address || !sb_id_valid(cid, "c_") || !sb_id_valid(sid, "st_"))
        return SB_EINVAL;
    char sig[SB_STAFFADDR_SIG_LEN + 1];
    sign(secret, secret_len, cid, sid, sig);
    size_t local = (size_t)(at - address);
    if (local + 1 + strlen(cid) + 1 + SB_STAFFADDR_SIG_LEN > LOCAL_MAX)
        return SB_EINVAL;
    int n = snprintf(out, cap, "%.*s+%s.%s%s", (int)local, address, cid, sig, at);
    return n < 0 || (size_t)n >= cap ? SB_ETOOBIG : 0;
}

bool sb_staffaddr_parse(const char *rcpt, const char *address, sb_staffaddr_t *out)
{
    memset(out, 0, sizeof(*out));
    const char *at = strrchr(address, '@'), *rat = strrchr(rcpt, '@');
    if (!at || !rat || strcasecmp(at, rat) != 0)
        return false;
    size_t local = (size_t)(at - address);
    if ((size_t)(rat - rcpt) <= local + 1 || strncasecmp(rcpt, address, local) != 0 ||
        rcpt[local] != '+')
        return false;
    const char *tag = rcpt + local + 1;
    size_t tlen = (size_t)(rat - tag);
    const char *dot = memchr(tag, '.', tlen);
    size_t clen = dot ? (size_t)(dot - tag) : tlen;
    if (clen >= sizeof(out->cid))
        return false;
    memcpy(out->cid, tag, clen);
    out->cid[clen] = '\0';
    for (char *p = out->cid; *p; p++) /* ids are lower case; some clients shout */
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    if (!sb_id_valid(out->cid, "c_")) {
        out->cid[0] = '\0';
        return false;
    }
    if (dot) {
        size_t slen = tlen - clen - 1;
        if (slen != SB_STAFFADDR_SIG_LEN) {
            out->cid[0] = '\0';
            return false;
        }
        memcpy(out->sig, dot + 1, slen);
        out->sig[slen] = '\0';
    }
    return true;
}

bool sb_staffaddr_verify(const void *secret, size_t secret_len, const char *cid, const char *sid,
                         const char *sig)
{
    if (!sb_id_valid(cid, "c_") || !sb_id_valid(sid, "st_") || !sig)
        return false;
    char want[SB_STAFFADDR_SIG_LEN + 1], got[SB_STAFFADDR_SIG_LEN + 1];
    snprintf(got, sizeof(got), "%s", sig);
    for (char *p = got; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    sign(secret, secret_len, cid, sid, want);
    return strlen(sig) == SB_STAFFADDR_SIG_LEN && sb_streq_ct(want, got);
}

/* SPDX-License-Identifier: MIT */
/*
 * Helpers of util.h. ULIDs follow https://github.com/ulid/spec (48-bit ms time +
 * 80 random bits, Crockford base32), lowercased as docs/contract.md §3 asks. CRC16 is the
 * XMODEM variant Redis Cluster uses (CLUSTER KEYSLOT).
 */
#include "core/util.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char b32[] = "0123456789abcdefghjkmnpqrstvwxyz";

void sb_random_bytes(void *buf, size_t n)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            perror("getrandom");
            abort();
        }
        p += r;
        n -= (size_t)r;
    }
}

void sb_random_hex(char *out, size_t n)
{
    unsigned char raw[64];
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    while (n > 0) {
        size_t k = n < sizeof(raw) ? n : sizeof(raw);
        sb_random_bytes(raw, k);
        for (size_t i = 0; i < k; i++) {
            out[o++] = hex[raw[i] >> 4];
            out[o++] = hex[raw[i] & 15];
        }
        n -= k;
    }
    out[o] = '\0';
}

void sb_id_new(const char *prefix, char out[SB_ID_MAX])
{
    size_t pl = strnlen(prefix, 8);
    memcpy(out, prefix, pl);
    char *u = out + pl;
    uint64_t ms = (uint64_t)sb_now_ms();
    for (int i = 9; i >= 0; i--) {
        u[i] = b32[ms & 31];
        ms >>= 5;
    }
    /* OpenSSL's DRBG (a getrandom syscall per id cost a third of an ingest), drawn 512
     * bytes at a time: RAND_bytes checks getpid() on every call. The pool is per thread;
     * a forked child would share it, and ours only exec. */
    static _Thread_local unsigned char pool[512];
    static _Thread_local size_t left;
    if (left < 16) {
        if (RAND_bytes(pool, sizeof(pool)) != 1)
            sb_random_bytes(pool, sizeof(pool));
        left = sizeof(pool);
    }
    const unsigned char *rnd = pool + sizeof(pool) - left;
    left -= 16;
    for (int i = 0; i < 16; i++)
        u[10 + i] = b32[rnd[i] & 31];
    u[26] = '\0';
}

static uint16_t crc16_step(uint16_t crc, char c);

void sb_id_new_in_shard(const char *prefix, unsigned shard, unsigned shards, char out[SB_ID_MAX])
{
    sb_id_new(prefix, out);
    if (shards <= 1)
        return;
    /* Walk the last two characters (1024 choices) until crc16 lands in the shard; the
     * crc of the rest is computed once. */
    size_t n = strlen(out);
    for (;;) {
        uint16_t head = sb_crc16(out, n - 2);
        for (int a = 0; a < 32; a++) {
            uint16_t ca = crc16_step(head, b32[a]);
            for (int b = 0; b < 32; b++) {
                if (crc16_step(ca, b32[b]) % shards == shard) {
                    out[n - 2] = b32[a];
                    out[n - 1] = b32[b];
                    return;
                }
            }
        }
        sb_id_new(prefix, out); /* no hit (shards > 1024): draw again */
    }
}

bool sb_id_valid(const char *s, const char *prefix)
{
    size_t pl = strlen(prefix);
    if (!s || strncmp(s, prefix, pl) != 0 || strlen(s) != pl + 26)
        return false;
    for (size_t i = pl; s[i]; i++)
        if (!strchr(b32, s[i]))
            return false;
    return true;
}

static uint16_t crc16_table[256];

static void crc16_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint16_t crc = (uint16_t)(i << 8);
        for (int k = 0; k < 8; k++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        crc16_table[i] = crc;
    }
}

static uint16_t crc16_step(uint16_t crc, char c)
{
    return (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ (unsigned char)c) & 0xff]);
}

uint16_t sb_crc16(const char *buf, size_t len)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, crc16_init);
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ (unsigned char)buf[i]) & 0xff]);
    return crc;
}

unsigned sb_shard_of(const char *id, unsigned shards)
{
    if (shards <= 1)
        return 0;
    return sb_crc16(id, strlen(id)) % shards;
}

bool sb_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

static void to_hex(const unsigned char *raw, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
}

void sb_sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char md[32];
    SHA256(data, n, md);
    to_hex(md, 32, out);
}

void sb_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                    unsigned char out[32])
{
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len);
}

void sb_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n, char out[65])
{
    unsigned char md[32];
    sb_hmac_sha256(key, keylen, data, n, md);
    to_hex(md, 32, out);
}

bool sb_streq_ct(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char)(la != lb);
    size_t n = la < lb ? la : lb;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

void sb_ip_key(const char *ip, char out[SB_IP_KEY_MAX])
{
    unsigned char a[16];
    if (inet_pton(AF_INET6, ip, a) == 1) {
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            inet_ntop(AF_INET, a + 12, out, SB_IP_KEY_MAX);
            return;
        }
        memset(a + 8, 0, 8);
        char text[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, a, text, sizeof(text));
        snprintf(out, SB_IP_KEY_MAX, "%s/64", text);
        return;
    }
    snprintf(out, SB_IP_KEY_MAX, "%s", ip);
}

int sb_cmp_i64(const void *pa, const void *pb)
{
    int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
    return a < b ? -1 : a > b;
}

int64_t sb_nearest_rank(const int64_t *sorted, size_t n, unsigned pct)
{
    size_t rank = (n * pct + 99) / 100;
    return sorted[rank ? rank - 1 : 0];
}

bool sb_html_charref(const char *s, size_t n, uint32_t *cp)
{
    if (n < 2 || s[0] != '#')
        return false;
    bool hex = s[1] == 'x' || s[1] == 'X';
    size_t i = hex ? 2 : 1;
    if (i >= n)
        return false;
    uint32_t c = 0;
    for (; i < n; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9'          ? ch - '0'
                : hex && ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : hex && ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                                : -1;
        if (d < 0)
            return false;
        c = c * (hex ? 16 : 10) + (uint32_t)d;
        if (c > 0x10FFFF)
            c = 0x110000; /* stays out of range */
    }
    *cp = c;
    return true;
}

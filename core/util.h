/* SPDX-License-Identifier: MIT */
/*
 * Small shared helpers: ULID ids with type prefixes, the Redis Cluster CRC16 that
 * picks a conversation's shard, UTF-8 validation, SHA-256/HMAC in hex, random tokens,
 * constant-time comparison (the clocks are sys.h's, included here).
 */
#ifndef SB_UTIL_H
#define SB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/sys.h" /* sb_now_ms(), sb_mono_ns(): the clocks */

/** Size of a buffer that holds any id: prefix (≤ 4 chars + '_') + 26 ULID chars + NUL. */
#define SB_ID_MAX 40

/**
 * Writes a new id "<prefix><ulid>" (lowercase Crockford base32, time-ordered) into out
 * (SB_ID_MAX bytes). prefix is e.g. "c_", "m_", "ct_".
 */
void sb_id_new(const char *prefix, char out[SB_ID_MAX]);

/** Like sb_id_new, but draws until sb_shard_of(out, shards) == shard. */
void sb_id_new_in_shard(const char *prefix, unsigned shard, unsigned shards, char out[SB_ID_MAX]);

/** True if s looks like an id with that prefix (prefix + 26 base32 chars). */
bool sb_id_valid(const char *s, const char *prefix);

/** CRC16 (XMODEM), the function Redis Cluster uses for key slots. */
uint16_t sb_crc16(const char *buf, size_t len);

/** The shard of an id: crc16(id) % shards. */
unsigned sb_shard_of(const char *id, unsigned shards);

/** True if the n bytes at s are valid UTF-8 (no overlongs, no surrogates, ≤ U+10FFFF). */
bool sb_utf8_valid(const char *s, size_t n);

/**
 * The code point of an HTML numeric character reference, given what lies between '&' and
 * ';' (s[0..n): "#38" or "#x26"): true and *cp, which is 0x110000 for any value over
 * U+10FFFF (callers replace what is not a character); false when it is not one.
 */
bool sb_html_charref(const char *s, size_t n, uint32_t *cp);

/** Writes the hex SHA-256 of data into out (65 bytes). */
void sb_sha256_hex(const void *data, size_t n, char out[65]);

/** Writes hex HMAC-SHA256(key, data) into out (65 bytes). */
void sb_hmac_sha256_hex(const void *key, size_t keylen, const void *data, size_t n, char out[65]);

/** Writes raw HMAC-SHA256(key, data) into out (32 bytes). */
void sb_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                    unsigned char out[32]);

/** Fills buf with n cryptographically random bytes (aborts if the kernel can't). */
void sb_random_bytes(void *buf, size_t n);

/** Writes 2*n hex chars of random data plus NUL into out. */
void sb_random_hex(char *out, size_t n);

/** Constant-time comparison of two NUL-terminated strings. */
bool sb_streq_ct(const char *a, const char *b);

/** qsort/bsearch comparator of int64_t values, ascending. */
int sb_cmp_i64(const void *a, const void *b);

/** Nearest-rank percentile (pct 1..100) of n >= 1 values sorted ascending. */
int64_t sb_nearest_rank(const int64_t *sorted, size_t n, unsigned pct);

/** Size of a buffer that holds any sb_ip_key result. */
#define SB_IP_KEY_MAX 64

/**
 * Writes into out the key that per-address limits count under for the peer address text
 * ip: an IPv4 address as it is; an IPv4-mapped IPv6 address as its IPv4 form; any other
 * IPv6 address as its /64 prefix ("2001:db8:1:2::/64"), since one host commonly holds a
 * whole /64. Text that is no address is copied as it is (truncated to fit).
 */
void sb_ip_key(const char *ip, char out[SB_IP_KEY_MAX]);

#endif

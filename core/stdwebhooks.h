/* SPDX-License-Identifier: MIT */
/*
 * Standard Webhooks signatures, both ways: the outbound webhooks and the hook connector's
 * replies are signed with them, the hook connector's inbound posts verified. A message is
 * signed as base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")) and sent as
 * `webhook-signature: v1,<signature>`; the header may carry several space-separated
 * entries (a sender rotating its secret), any v1 entry that matches passes. The key is
 * the decoded bytes of a `whsec_<base64>` secret, or the raw bytes of any other secret.
 * The timestamp is in seconds and must be within SB_STDWEBHOOKS_TOLERANCE_S of our clock
 * (core/sys.h), either way. docs/hooks.md shows a worked example.
 */
#ifndef SB_CORE_STDWEBHOOKS_H
#define SB_CORE_STDWEBHOOKS_H

#include <stddef.h>

/** Room for a signature entry "v1,<44 base64 characters>" and its NUL. */
#define SB_STDWEBHOOKS_SIG_MAX 48
/** How far a webhook-timestamp may be from our clock, either way, in seconds. */
#define SB_STDWEBHOOKS_TOLERANCE_S 300
/** The longest webhook-id accepted, in bytes. */
#define SB_STDWEBHOOKS_ID_MAX 256

/**
 * Decodes secret into the HMAC key: the bytes of the base64 after "whsec_", or the
 * secret's own bytes. *key is sb_malloc'd (the caller frees it with sb_free).
 * 0, or SB_EINVAL for an empty secret or bad base64 (then *key is untouched).
 */
int sb_stdwebhooks_key(const char *secret, unsigned char **key, size_t *keylen);

/**
 * Writes the signature entry "v1,<base64 HMAC-SHA256(key, id.ts.body)>" into out. All
 * arguments are borrowed; body is len bytes (may hold NULs).
 */
void sb_stdwebhooks_sign(const unsigned char *key, size_t keylen, const char *id, const char *ts,
                         const void *body, size_t len, char out[SB_STDWEBHOOKS_SIG_MAX]);

/**
 * Verifies the three header values (NULL when the header is missing) of a request whose
 * body is len bytes. 0, or SB_EAUTH with *why set to a static reason: a header missing, an
 * id that is empty, too long or has control characters, a timestamp that is not decimal
 * seconds or is more than SB_STDWEBHOOKS_TOLERANCE_S from sb_now_ms(), or no v1 entry
 * equal to the expected signature (compared in constant time).
 */
int sb_stdwebhooks_verify(const unsigned char *key, size_t keylen, const char *id, const char *ts,
                          const char *signature, const void *body, size_t len, const char **why);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Attachments (docs/attachments.md): content-addressed storage under data_dir and the
 * signed, expiring URLs staff download them through.
 *
 * Storage: the bytes of an attachment live in `<data_dir>/attachments/ab/cd/<sha256>`
 * (ab and cd the hash's first two byte pairs, in lowercase hex); the same bytes are stored
 * once, whoever sends them how often. A message lists its attachments as
 * `{"name","type","size","sha256","stored"}`; nothing else about them is in Redis.
 *
 * Signing: a URL is `/v1/attachments/<sha256>?name=…&type=…&exp=…&sig=…` with sig the hex
 * HMAC-SHA256 of sha, name, type and exp (unix seconds) under the attachment key: the
 * configured `attachment_secret`, else the random key in `<data_dir>/attachment.key`,
 * made (0600) by the first node to start, so every node sharing data_dir agrees.
 *
 * Thread rules: every function here may run on any thread; sb_attach_put and
 * sb_attach_key_load do blocking file I/O (fsync included), so the loop thread calls them
 * only at start (the key) or leaves them to a worker (the bytes).
 */
#ifndef SB_CORE_ATTACH_H
#define SB_CORE_ATTACH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/** Room for the path of a stored attachment under a data_dir of up to 3 KiB. */
#define SB_ATTACH_PATH_MAX 4096
/** Bytes of the attachment key (HMAC-SHA256 key). */
#define SB_ATTACH_KEY_LEN 32

/**
 * Stores n bytes (borrowed) under data_dir and writes their hex SHA-256 into sha_hex.
 * Writes a temporary file in the destination directory, fsyncs it, renames it into place
 * and fsyncs the directory; when the file exists already it is left as it is. Blocking.
 * Returns 0, SB_EINVAL (data_dir NULL or too long) or SB_EIO (logged with errno).
 */
int sb_attach_put(const char *data_dir, const void *bytes, size_t n, char sha_hex[65]);

/**
 * What a connector calls per attachment of an incoming message (on its worker thread):
 * stores the bytes with sb_attach_put when n <= max_bytes, and makes the message's entry
 * for them, {"name","type","size","sha256","stored"} ("stored" false over max_bytes;
 * "name" left out when NULL; type NULL is application/octet-stream). name and type must
 * be UTF-8 (they go into JSON). Blocking. Returns 0 and *entry (the caller's), or the
 * error of sb_attach_put (then nothing is listed: the caller should take the message
 * again later rather than list a file it failed to keep).
 */
int sb_attach_store(const char *data_dir, uint64_t max_bytes, const char *name, const char *type,
                    const void *bytes, size_t n, json_t **entry);

/** True if s is a SHA-256 in lowercase hex (64 of [0-9a-f]): the only names served. */
bool sb_attach_sha_valid(const char *s);

/**
 * Writes the path of the attachment sha under data_dir into out (cap bytes). 0, or
 * SB_EINVAL for a sha that is not sb_attach_sha_valid (nothing is written outside
 * `<data_dir>/attachments/`) or a path longer than cap.
 */
int sb_attach_path(const char *data_dir, const char *sha, char *out, size_t cap);

/**
 * Opens the stored attachment sha for reading: *fd (the caller closes it) and *size.
 * 0, SB_EINVAL (bad sha), SB_ENOTFOUND (not stored) or SB_EIO.
 */
int sb_attach_open(const char *data_dir, const char *sha, int *fd, uint64_t *size);

/** The key URLs are signed with. */
typedef struct sb_attach_key {
    unsigned char bytes[SB_ATTACH_KEY_LEN];
} sb_attach_key_t;

/**
 * Fills key: from secret when it is set and non-empty (its SHA-256, so any length works),
 * else from `<data_dir>/attachment.key`, creating it (0600, 32 random bytes in hex, made
 * atomically: two nodes starting at once end up with the same key) when it is missing.
 * Blocking. 0, or SB_EIO (logged) when the file can't be read or made, SB_EINVAL when it
 * holds no key (fewer than 32 hex characters).
 */
int sb_attach_key_load(sb_attach_key_t *key, const char *data_dir, const char *secret);

/**
 * Writes the hex signature of (sha, name, type, exp) into sig. name and type may be
 * NULL (signed as empty). exp: unix seconds.
 */
void sb_attach_sign(const sb_attach_key_t *key, const char *sha, const char *name, const char *type,
                    int64_t exp, char sig[65]);

/**
 * Checks a URL's parameters at now_s (unix seconds): 0 when sig is the signature of the
 * others and exp (decimal text) is not past; SB_EINVAL for a missing or malformed
 * parameter; SB_EFORBIDDEN for a wrong signature; SB_ETIMEDOUT for a good one that has
 * expired. The signature is compared in constant time.
 */
int sb_attach_verify(const sb_attach_key_t *key, const char *sha, const char *name,
                     const char *type, const char *exp, const char *sig, int64_t now_s);

/**
 * A signed URL path for the attachment, valid until exp (unix seconds):
 * `/v1/attachments/<sha>?name=…&type=…&exp=…&sig=…` with name and type percent-encoded
 * (NULL: left out, signed as empty). Owned by the caller (sb_free). NULL for a bad sha.
 */
char *sb_attach_url(const sb_attach_key_t *key, const char *sha, const char *name, const char *type,
                    int64_t exp);

/**
 * Appends s percent-encoded (RFC 3986: everything but ALPHA, DIGIT and -._~) to out,
 * NUL-terminated, within cap bytes. Returns the length written, or -1 if it does not fit.
 */
int sb_attach_pct_encode(const char *s, char *out, size_t cap);

#endif

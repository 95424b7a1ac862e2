/* SPDX-License-Identifier: MIT */
/*
 * Attachments (core/attach.h, docs/attachments.md): the content-addressed files under
 * `<data_dir>/attachments/`, the attachment key, and the HMAC-SHA256 signatures of the
 * URLs staff download them through.
 *
 * A file is written once: to a temporary name in its final directory, fsynced, renamed
 * into place (atomic on POSIX file systems), then the directory is fsynced so the rename
 * survives a power loss. A reader therefore sees a whole file or none. The key file is
 * made the same way but linked into place with link(2), which fails when another node was
 * first: then that node's key is read, and every node signs alike.
 *
 * The signed text is "sb-attach-v1", sha, exp, name and type separated by NUL bytes,
 * which none of them can contain: no two different tuples sign the same text.
 */
#include "core/attach.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/util.h"

#define KEY_FILE   "attachment.key"
#define DIR_MODE   0750
#define FILE_MODE  0640
#define SIGN_LABEL "sb-attach-v1"

bool sb_attach_sha_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = strspn(s, "0123456789abcdef");
    return n == 64 && s[64] == '\0';
}

int sb_attach_path(const char *data_dir, const char *sha, char *out, size_t cap)
{
    if (!data_dir || !sb_attach_sha_valid(sha))
        return SB_EINVAL;
    int n = snprintf(out, cap, "%s/attachments/%.2s/%.2s/%s", data_dir, sha, sha + 2, sha);
    return n < 0 || (size_t)n >= cap ? SB_EINVAL : 0;
}

/* ---- Writing ---- */

/* mkdir that accepts an existing directory. */
static int mkdir_one(const char *path)
{
    if (mkdir(path, DIR_MODE) == 0 || errno == EEXIST)
        return 0;
    return -1;
}

/* Makes data_dir/attachments/ab/cd (each level that is missing) and writes it into dir. */
static int make_dirs(const char *data_dir, const char *sha, char *dir, size_t cap)
{
    int n = snprintf(dir, cap, "%s/attachments/%.2s/%.2s", data_dir, sha, sha + 2);
    if (n < 0 || (size_t)n >= cap)
        return SB_EINVAL;
    /* The levels end where "/attachments", "/ab" and "/cd" begin, and at the end. */
    size_t base = strlen(data_dir), ends[] = {base, base + 12, base + 15, (size_t)n};
    for (size_t i = 0; i < SB_ARRAY_LEN(ends); i++) {
        char keep = dir[ends[i]];
        dir[ends[i]] = '\0';
        int rc = mkdir_one(dir);
        dir[ends[i]] = keep;
        if (rc != 0) {
            SB_LOG_ERROR("attach.mkdir", "dir=%.*s err=\"%s\"", (int)ends[i], dir, strerror(errno));
            return SB_EIO;
        }
    }
    return 0;
}

static int write_all(int fd, const void *bytes, size_t n)
{
    const char *p = bytes;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* Writes bytes to a new temporary file in dir, fsynced; its name goes into tmp. */
static int write_temp(const char *dir, const void *bytes, size_t n, char *tmp, size_t cap)
{
    char rnd[17];
    sb_random_hex(rnd, 8);
    int len = snprintf(tmp, cap, "%s/.tmp-%s", dir, rnd);
    if (len < 0 || (size_t)len >= cap)
        return SB_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
    if (fd < 0) {
        SB_LOG_ERROR("attach.write", "file=%s err=\"%s\"", tmp, strerror(errno));
        return SB_EIO;
    }
    if (write_all(fd, bytes, n) != 0 || fsync(fd) != 0) {
        SB_LOG_ERROR("attach.write", "file=%s err=\"%s\"", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return SB_EIO;
    }
    if (close(fd) != 0) {
        unlink(tmp);
        return SB_EIO;
    }
    return 0;
}

int sb_attach_put(const char *data_dir, const void *bytes, size_t n, char sha_hex[65])
{
    char dir[SB_ATTACH_PATH_MAX], path[SB_ATTACH_PATH_MAX], tmp[SB_ATTACH_PATH_MAX];
    struct stat st;
    sb_sha256_hex(bytes, n, sha_hex);
    if (!data_dir || sb_attach_path(data_dir, sha_hex, path, sizeof(path)) != 0)
        return SB_EINVAL;
    if (stat(path, &st) == 0)
        return 0; /* the same bytes are there already */
    int rc = make_dirs(data_dir, sha_hex, dir, sizeof(dir));
    if (rc == 0)
        rc = write_temp(dir, bytes, n, tmp, sizeof(tmp));
    if (rc != 0)
        return rc;
    if (rename(tmp, path) != 0) {
        SB_LOG_ERROR("attach.rename", "file=%s err=\"%s\"", path, strerror(errno));
        unlink(tmp);
        return SB_EIO;
    }
    if (fsync_dir(dir) != 0) {
        SB_LOG_ERROR("attach.fsync", "dir=%s err=\"%s\"", dir, strerror(errno));
        return SB_EIO;
    }
    return 0;
}

int sb_attach_store(const char *data_dir, uint64_t max_bytes, const char *name, const char *type,
                    const void *bytes, size_t n, json_t **entry)
{
    char sha[65];
    bool keep = n <= max_bytes;
    int rc = keep ? sb_attach_put(data_dir, bytes, n, sha) : 0;
    if (rc != 0)
        return rc;
    if (!keep)
        sb_sha256_hex(bytes, n, sha);
    *entry = json_pack("{s:s*, s:s, s:I, s:s, s:b}", "name", name, "type",
                       type ? type : "application/octet-stream", "size", (json_int_t)n, "sha256",
                       sha, "stored", keep);
    return *entry ? 0 : SB_EINVAL; /* json_pack fails only on text that is not UTF-8 */
}

int sb_attach_open(const char *data_dir, const char *sha, int *fd, uint64_t *size)
{
    char path[SB_ATTACH_PATH_MAX];
    struct stat st;
    if (sb_attach_path(data_dir, sha, path, sizeof(path)) != 0)
        return SB_EINVAL;
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return errno == ENOENT || errno == ENOTDIR ? SB_ENOTFOUND : SB_EIO;
    if (fstat(f, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return SB_EIO;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ---- The key ---- */

/* Reads the key file's hex into key: 0, SB_ENOTFOUND, SB_EIO or SB_EINVAL (no key). */
static int read_key_file(const char *path, sb_attach_key_t *key)
{
    char text[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? SB_ENOTFOUND : SB_EIO;
    ssize_t n = read(fd, text, sizeof(text) - 1);
    close(fd);
    if (n < 0)
        return SB_EIO;
    text[n] = '\0';
    size_t hex = strspn(text, "0123456789abcdefABCDEF");
    if (hex < 2 * SB_ATTACH_KEY_LEN)
        return SB_EINVAL;
    /* The whole hex text is the secret: hash it to the key's length. */
    unsigned char digest[32];
    sb_hmac_sha256(SIGN_LABEL, strlen(SIGN_LABEL), text, hex, digest);
    memcpy(key->bytes, digest, sizeof(key->bytes));
    return 0;
}

/* Makes the key file: a random key in a temporary file, linked into place. */
static int make_key_file(const char *data_dir, const char *path)
{
    char tmp[SB_ATTACH_PATH_MAX], hex[2 * SB_ATTACH_KEY_LEN + 2];
    if (mkdir_one(data_dir) != 0)
        return SB_EIO;
    sb_random_hex(hex, SB_ATTACH_KEY_LEN);
    strcat(hex, "\n");
    char rnd[17];
    sb_random_hex(rnd, 8);
    int len = snprintf(tmp, sizeof(tmp), "%s/.%s.%s", data_dir, KEY_FILE, rnd);
    if (len < 0 || (size_t)len >= sizeof(tmp))
        return SB_EINVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return SB_EIO;
    int rc = write_all(fd, hex, strlen(hex)) == 0 && fsync(fd) == 0 ? 0 : SB_EIO;
    close(fd);
    if (rc == 0 && link(tmp, path) != 0 && errno != EEXIST) /* EEXIST: another node won */
        rc = SB_EIO;
    unlink(tmp);
    if (rc == 0)
        fsync_dir(data_dir);
    return rc;
}

int sb_attach_key_load(sb_attach_key_t *key, const char *data_dir, const char *secret)
{
    if (secret && *secret) {
        sb_hmac_sha256(SIGN_LABEL, strlen(SIGN_LABEL), secret, strlen(secret), key->bytes);
        return 0;
    }
    if (!data_dir)
        return SB_EINVAL;
    char path[SB_ATTACH_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", data_dir, KEY_FILE);
    if (n < 0 || (size_t)n >= sizeof(path))
        return SB_EINVAL;
    int rc = read_key_file(path, key);
    if (rc == SB_ENOTFOUND) {
        rc = make_key_file(data_dir, path);
        if (rc == 0)
            rc = read_key_file(path, key);
    }
    if (rc != 0)
        SB_LOG_ERROR("attach.key", "file=%s err=\"%s\"", path,
                     rc == SB_EIO ? strerror(errno) : sb_strerror(rc));
    return rc;
}

/* ---- Signatures and URLs ---- */

void sb_attach_sign(const sb_attach_key_t *key, const char *sha, const char *name, const char *type,
                    int64_t exp, char sig[65])
{
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    const char *parts[] = {SIGN_LABEL, sha ? sha : "", NULL, name ? name : "", type ? type : ""};
    char e[24];
    snprintf(e, sizeof(e), "%lld", (long long)exp);
    parts[2] = e;
    for (size_t i = 0; i < SB_ARRAY_LEN(parts); i++)
        sb_buf_append(&b, parts[i], strlen(parts[i]) + 1); /* each with its NUL */
    sb_hmac_sha256_hex(key->bytes, sizeof(key->bytes), b.data, b.len, sig);
    sb_buf_dispose(&b);
}

int sb_attach_verify(const sb_attach_key_t *key, const char *sha, const char *name,
                     const char *type, const char *exp, const char *sig, int64_t now_s)
{
    if (!sb_attach_sha_valid(sha) || !exp || !sig || strlen(sig) != 64)
        return SB_EINVAL;
    size_t n = strlen(exp);
    if (n == 0 || n > 12 || strspn(exp, "0123456789") != n)
        return SB_EINVAL;
    int64_t e = (int64_t)strtoll(exp, NULL, 10);
    char want[65];
    sb_attach_sign(key, sha, name, type, e, want);
    if (!sb_streq_ct(want, sig))
        return SB_EFORBIDDEN;
    return now_s > e ? SB_ETIMEDOUT : 0;
}

int sb_attach_pct_encode(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || strchr("-._~", *p);
        if (o + (plain ? 1 : 3) >= cap)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= cap)
        return -1;
    out[o] = '\0';
    return (int)o;
}

char *sb_attach_url(const sb_attach_key_t *key, const char *sha, const char *name, const char *type,
                    int64_t exp)
{
    if (!sb_attach_sha_valid(sha))
        return NULL;
    char sig[65];
    sb_attach_sign(key, sha, name, type, exp, sig);
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    sb_buf_printf(&b, "/v1/attachments/%s?", sha);
    const char *const keys[] = {"name", "type"}, *vals[] = {name, type};
    for (size_t i = 0; i < SB_ARRAY_LEN(keys); i++) {
        if (!vals[i])
            continue;
        size_t cap = 3 * strlen(vals[i]) + 1; /* at most 3 bytes per byte */
        char *enc = sb_malloc(cap);
        sb_attach_pct_encode(vals[i], enc, cap);
        sb_buf_printf(&b, "%s=%s&", keys[i], enc);
        sb_free(enc);
    }
    sb_buf_printf(&b, "exp=%lld&sig=%s", (long long)exp, sig);
    if (sb_buf_error(&b) != 0) {
        sb_buf_dispose(&b);
        return NULL;
    }
    return sb_buf_steal(&b, NULL);
}

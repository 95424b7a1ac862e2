/* SPDX-License-Identifier: MIT */
/*
 * Attachments' storage and URL signatures (core/attach.c) on the real file system, in a
 * fresh data dir: the same bytes put twice make one file at `attachments/ab/cd/<sha>` and
 * leave no temporary file behind; an existing file is not rewritten; a path made of
 * anything but a lowercase SHA-256 is refused (no way out of attachments/); the key file
 * is made 0600 once and read back alike; several threads putting the same bytes at once
 * (two mails with one logo on two workers) end with one whole file and no temporary one;
 * sb_attach_store lists what it kept, and what it did not keep over the limit (so nodes
 * sharing data_dir sign alike); a configured secret wins; a signature holds for its (sha, name,
 * type, exp) only, and an expired one is told apart from a forged one.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/attach.h"
#include "core/err.h"
#include "core/util.h"
#include "tests/harness/harness.h"

/* Counts the regular files below dir (recursively). */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *p = sb_asprintf("%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0)
            n += S_ISDIR(st.st_mode) ? count_files(p) : 1;
        sb_free(p);
    }
    closedir(d);
    return n;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = sb_malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void test_attach_put_twice_is_one_file(void **state)
{
    char dir[256];
    assert_int_equal(sb_test_mkdtemp(dir, "attach"), 0);
    const char data[] = "%PDF-1.4 a small document\n";
    char sha[65], again[65], want[65];
    sb_sha256_hex(data, sizeof(data) - 1, want);
    assert_int_equal(sb_attach_put(dir, data, sizeof(data) - 1, sha), 0);
    assert_string_equal(sha, want);
    char *path = sb_asprintf("%s/attachments/%.2s/%.2s/%s", dir, sha, sha + 2, sha);
    size_t len;
    char *got = read_file(path, &len);
    assert_int_equal(len, sizeof(data) - 1);
    assert_memory_equal(got, data, len);
    sb_free(got);
    struct stat first, second;
    assert_int_equal(stat(path, &first), 0);

    assert_int_equal(sb_attach_put(dir, data, sizeof(data) - 1, again), 0);
    assert_string_equal(again, sha);
    assert_int_equal(stat(path, &second), 0);
    assert_int_equal(first.st_ino, second.st_ino); /* not rewritten */
    char *root = sb_asprintf("%s/attachments", dir);
    assert_int_equal(count_files(root), 1); /* and no temporary file left */

    /* Other bytes: a second file; empty bytes are an attachment too. */
    assert_int_equal(sb_attach_put(dir, "other", 5, again), 0);
    assert_string_not_equal(again, sha);
    assert_int_equal(sb_attach_put(dir, "", 0, again), 0);
    assert_int_equal(count_files(root), 3);

    int fd;
    uint64_t size;
    assert_int_equal(sb_attach_open(dir, sha, &fd, &size), 0);
    assert_int_equal(size, sizeof(data) - 1);
    close(fd);
    sb_free(root);
    sb_free(path);
}

typedef struct racer {
    const char *dir;
    const char *data;
    size_t n;
    int rc;
    char sha[65];
} racer_t;

static void *race_put(void *arg)
{
    racer_t *r = arg;
    r->rc = sb_attach_put(r->dir, r->data, r->n, r->sha);
    return NULL;
}

static void test_attach_put_from_threads(void **state)
{
    char dir[256];
    assert_int_equal(sb_test_mkdtemp(dir, "attach"), 0);
    size_t n = 256 * 1024;
    char *data = sb_malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 + 7);
    racer_t r[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        r[i] = (racer_t){.dir = dir, .data = data, .n = n};
        assert_int_equal(pthread_create(&th[i], NULL, race_put, &r[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].rc, 0);
        assert_string_equal(r[i].sha, r[0].sha);
    }
    char *root = sb_asprintf("%s/attachments", dir);
    assert_int_equal(count_files(root), 1);
    char path[SB_ATTACH_PATH_MAX];
    assert_int_equal(sb_attach_path(dir, r[0].sha, path, sizeof(path)), 0);
    size_t len;
    char *got = read_file(path, &len);
    assert_int_equal(len, n);
    assert_memory_equal(got, data, n);
    sb_free(got);
    sb_free(root);
    sb_free(data);
}

static void test_attach_store_lists_what_it_kept(void **state)
{
    char dir[256];
    assert_int_equal(sb_test_mkdtemp(dir, "attach"), 0);
    char *root = sb_asprintf("%s/attachments", dir);
    json_t *e = NULL;
    char sha[65];
    assert_int_equal(sb_attach_store(dir, 10, "a.txt", "text/plain", "0123456789", 10, &e), 0);
    sb_sha256_hex("0123456789", 10, sha);
    json_t *want = json_pack("{s:s, s:s, s:i, s:s, s:b}", "name", "a.txt", "type", "text/plain",
                             "size", 10, "sha256", sha, "stored", 1);
    assert_true(json_equal(e, want));
    json_decref(want);
    json_decref(e);
    assert_int_equal(count_files(root), 1);

    /* One byte over the limit: listed, hashed, not stored; no name, no type. */
    assert_int_equal(sb_attach_store(dir, 10, NULL, NULL, "0123456789A", 11, &e), 0);
    sb_sha256_hex("0123456789A", 11, sha);
    want = json_pack("{s:s, s:i, s:s, s:b}", "type", "application/octet-stream", "size", 11,
                     "sha256", sha, "stored", 0);
    assert_true(json_equal(e, want));
    json_decref(want);
    json_decref(e);
    assert_int_equal(count_files(root), 1);

    /* A data dir that can't be written: an error, nothing listed. */
    e = NULL;
    char *file = sb_asprintf("%s/not-a-dir", dir);
    FILE *f = fopen(file, "w");
    fclose(f);
    assert_int_equal(sb_attach_store(file, 10, "b", "text/plain", "x", 1, &e), SB_EIO);
    assert_null(e);
    sb_free(file);
    sb_free(root);
}

static void test_attach_refuses_paths_outside(void **state)
{
    char dir[256], path[SB_ATTACH_PATH_MAX];
    assert_int_equal(sb_test_mkdtemp(dir, "attach"), 0);
    /* A file next to attachments/ that a traversal would reach. */
    char *secret = sb_asprintf("%s/attachment.key", dir);
    FILE *f = fopen(secret, "w");
    fputs("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", f);
    fclose(f);
    const char *bad[] = {
        "../../attachment.key",
        "../../../../../../../../../../../../../../../../../../../../../etc/passwd",
        "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF",  /* upper case */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",   /* 63 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", /* 65 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde/",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd..",
        "",
        NULL,
    };
    for (size_t i = 0; i < SB_ARRAY_LEN(bad); i++) {
        assert_false(sb_attach_sha_valid(bad[i]));
        assert_int_equal(sb_attach_path(dir, bad[i], path, sizeof(path)), SB_EINVAL);
        int fd;
        uint64_t size;
        assert_int_equal(sb_attach_open(dir, bad[i], &fd, &size), SB_EINVAL);
    }
    const char *ok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(sb_attach_path(dir, ok, path, sizeof(path)), 0);
    char *want = sb_asprintf("%s/attachments/01/23/%s", dir, ok);
    assert_string_equal(path, want);
    int fd;
    uint64_t size;
    assert_int_equal(sb_attach_open(dir, ok, &fd, &size), SB_ENOTFOUND);
    sb_free(want);
    sb_free(secret);
}

static void test_attach_key_file_made_once(void **state)
{
    char dir[256];
    assert_int_equal(sb_test_mkdtemp(dir, "attach"), 0);
    char *data = sb_asprintf("%s/data", dir); /* made by the first load */
    sb_attach_key_t a, b, c;
    assert_int_equal(sb_attach_key_load(&a, data, NULL), 0);
    char *kf = sb_asprintf("%s/attachment.key", data);
    struct stat st;
    assert_int_equal(stat(kf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(sb_attach_key_load(&b, data, ""), 0); /* empty secret: the file */
    assert_memory_equal(a.bytes, b.bytes, sizeof(a.bytes));
    assert_int_equal(count_files(data), 1);

    /* A configured secret wins, and is the same on every node. */
    assert_int_equal(sb_attach_key_load(&b, data, "shared secret"), 0);
    assert_int_equal(sb_attach_key_load(&c, "/nonexistent/elsewhere", "shared secret"), 0);
    assert_memory_equal(b.bytes, c.bytes, sizeof(b.bytes));
    assert_memory_not_equal(a.bytes, b.bytes, sizeof(a.bytes));

    /* A key file that holds no key is an error, not a weak key. */
    FILE *f = fopen(kf, "w");
    fputs("short\n", f);
    fclose(f);
    assert_int_equal(sb_attach_key_load(&c, data, NULL), SB_EINVAL);
    sb_free(kf);
    sb_free(data);
}

static const char *const SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

static void test_attach_sign_verify(void **state)
{
    sb_attach_key_t key, other;
    assert_int_equal(sb_attach_key_load(&key, NULL, "k1"), 0);
    assert_int_equal(sb_attach_key_load(&other, NULL, "k2"), 0);
    char sig[65];
    sb_attach_sign(&key, SHA, "report.pdf", "application/pdf", 2000, sig);
    assert_int_equal(strlen(sig), 64);
    assert_int_equal(
        sb_attach_verify(&key, SHA, "report.pdf", "application/pdf", "2000", sig, 1999), 0);
    assert_int_equal(
        sb_attach_verify(&key, SHA, "report.pdf", "application/pdf", "2000", sig, 2000), 0);
    /* Expired: told apart from a forgery. */
    assert_int_equal(
        sb_attach_verify(&key, SHA, "report.pdf", "application/pdf", "2000", sig, 2001),
        SB_ETIMEDOUT);
    /* Tampered name, type, expiry, sha, signature; another key. */
    assert_int_equal(sb_attach_verify(&key, SHA, "report.exe", "application/pdf", "2000", sig, 1),
                     SB_EFORBIDDEN);
    assert_int_equal(sb_attach_verify(&key, SHA, "report.pdf", "text/html", "2000", sig, 1),
                     SB_EFORBIDDEN);
    assert_int_equal(sb_attach_verify(&key, SHA, "report.pdf", NULL, "2000", sig, 1),
                     SB_EFORBIDDEN);
    assert_int_equal(sb_attach_verify(&key, SHA, "report.pdf", "application/pdf", "9999", sig, 1),
                     SB_EFORBIDDEN);
    char sha2[65];
    snprintf(sha2, sizeof(sha2), "%s", SHA);
    sha2[0] = 'a';
    assert_int_equal(sb_attach_verify(&key, sha2, "report.pdf", "application/pdf", "2000", sig, 1),
                     SB_EFORBIDDEN);
    char bad[65];
    snprintf(bad, sizeof(bad), "%s", sig);
    bad[10] = bad[10] == '0' ? '1' : '0';
    assert_int_equal(sb_attach_verify(&key, SHA, "report.pdf", "application/pdf", "2000", bad, 1),
                     SB_EFORBIDDEN);
    assert_int_equal(sb_attach_verify(&other, SHA, "report.pdf", "application/pdf", "2000", sig, 1),
                     SB_EFORBIDDEN);
    /* Moving a byte between name and type changes the signature (fields are separated). */
    char s1[65], s2[65];
    sb_attach_sign(&key, SHA, "ab", "c", 5, s1);
    sb_attach_sign(&key, SHA, "a", "bc", 5, s2);
    assert_string_not_equal(s1, s2);
    /* Malformed parameters. */
    assert_int_equal(sb_attach_verify(&key, SHA, "a", "b", NULL, sig, 1), SB_EINVAL);
    assert_int_equal(sb_attach_verify(&key, SHA, "a", "b", "-5", sig, 1), SB_EINVAL);
    assert_int_equal(sb_attach_verify(&key, SHA, "a", "b", "2000", "abc", 1), SB_EINVAL);
    assert_int_equal(sb_attach_verify(&key, "../x", "a", "b", "2000", sig, 1), SB_EINVAL);
}

static void test_attach_url(void **state)
{
    sb_attach_key_t key;
    assert_int_equal(sb_attach_key_load(&key, NULL, "k1"), 0);
    char *url = sb_attach_url(&key, SHA, "Ré sumé & co.pdf", "application/pdf", 1234);
    char sig[65];
    sb_attach_sign(&key, SHA, "Ré sumé & co.pdf", "application/pdf", 1234, sig);
    char *want = sb_asprintf("/v1/attachments/%s?name=R%%C3%%A9%%20sum%%C3%%A9%%20%%26%%20co.pdf"
                             "&type=application%%2Fpdf&exp=1234&sig=%s",
                             SHA, sig);
    assert_string_equal(url, want);
    sb_free(url);
    sb_free(want);
    url = sb_attach_url(&key, SHA, NULL, NULL, 7);
    sb_attach_sign(&key, SHA, NULL, NULL, 7, sig);
    want = sb_asprintf("/v1/attachments/%s?exp=7&sig=%s", SHA, sig);
    assert_string_equal(url, want);
    sb_free(url);
    sb_free(want);
    assert_null(sb_attach_url(&key, "../etc/passwd", "a", "b", 7));
    char small[4];
    assert_int_equal(sb_attach_pct_encode("a b", small, sizeof(small)), -1);
    assert_int_equal(sb_attach_pct_encode("a-b", small, sizeof(small)), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attach_put_twice_is_one_file),
        cmocka_unit_test(test_attach_put_from_threads),
        cmocka_unit_test(test_attach_store_lists_what_it_kept),
        cmocka_unit_test(test_attach_refuses_paths_outside),
        cmocka_unit_test(test_attach_key_file_made_once),
        cmocka_unit_test(test_attach_sign_verify),
        cmocka_unit_test(test_attach_url),
    };
    return cmocka_run_group_tests_name("core/attach", tests, NULL, NULL);
}

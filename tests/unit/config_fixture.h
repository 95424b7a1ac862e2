/* SPDX-License-Identifier: MIT */
/*
 * What the configuration's unit tests share (test_config*.c): the scratch directory and
 * writing config files into it, loading with every key table (the built-in connectors'
 * and a stand-in for connectors to come), the environment reset, and error checks. Each
 * test file is its own executable, so these are static inline.
 */
#ifndef SB_TESTS_UNIT_CONFIG_FIXTURE_H
#define SB_TESTS_UNIT_CONFIG_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connectors/connector.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/store.h"
#include "core/util.h"

static char tmpdir[512];

/* ---- Helpers ---- */

/* Keys of connectors to come, as their descriptors would add them. */
static const sb_config_key_t other_keys[] = {
    {"mailbox", SB_CONFIG_LIST, NULL, 4, 0, "<name> <imap-url> <smtp-url> <address>", "Email."},
    {"mastodon", SB_CONFIG_LIST, NULL, 3, 0, "<name> <base-url> <token-file>", "Mastodon."},
    {"listen", SB_CONFIG_UINT, "1", 0, 9, "<n>", "A core key's name: the core row wins."},
    {NULL},
};

/* The built-in connectors' tables and other_keys. */
static inline const sb_config_key_t *const *all_keys(void)
{
    static const sb_config_key_t *tables[16];
    const sb_config_key_t *const *builtin = sb_connectors_config();
    size_t n = 0;
    while (builtin[n] && n < 14) {
        tables[n] = builtin[n];
        n++;
    }
    tables[n++] = other_keys;
    tables[n] = NULL;
    return tables;
}

static inline int load(sb_config_t *c, const char *path, sb_buf_t *errors)
{
    return sb_config_load_with(c, path, all_keys(), errors);
}

static inline const sb_config_list_t *list_of(const sb_config_t *c, const char *name)
{
    return sb_config_list(c, name);
}

/* Writes text into tmpdir/name; returns the path (static storage, valid until next call). */
static inline const char *write_file(const char *name, const char *text, size_t len)
{
    static char path[1024];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static inline const char *write_conf(const char *text)
{
    return write_file("t.conf", text, strlen(text));
}

/* Each key core and extra add, from sb_config_print_keys (a NULL-terminated array to free). */
static inline char **table_keys(const sb_config_key_t *const *extra)
{
    sb_buf_t out;
    sb_buf_init(&out, 1 << 20);
    sb_config_print_keys(&out, extra);
    assert_true(out.len > 0);
    char **keys = sb_calloc(256, sizeof(char *));
    int n = 0;
    for (char *line = out.data; line && *line;) {
        char *nl = strchr(line, '\n');
        if (*line != ' ') {
            assert_true(n < 255);
            keys[n++] = sb_strndup(line, strcspn(line, " \n"));
        }
        line = nl ? nl + 1 : NULL;
    }
    sb_buf_dispose(&out);
    return keys;
}

static inline void free_keys(char **keys)
{
    for (int i = 0; keys[i]; i++)
        sb_free(keys[i]);
    sb_free(keys);
}

/* Unsets SWITCHBOARD_<KEY> for every key, so the caller's environment can't leak in. */
static inline void clear_env(void)
{
    char **keys = table_keys(all_keys());
    for (int i = 0; keys[i]; i++) {
        char var[128] = "SWITCHBOARD_";
        size_t o = strlen(var);
        for (const char *k = keys[i]; *k && o + 1 < sizeof(var); k++)
            var[o++] = (*k >= 'a' && *k <= 'z') ? (char)(*k - 'a' + 'A') : *k;
        var[o] = '\0';
        unsetenv(var);
    }
    free_keys(keys);
}

static inline int count_lines(const sb_buf_t *b)
{
    int n = 0;
    for (size_t i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

/* Asserts that errors holds `<prefix>: <what…>` as one of its lines. */
static inline void assert_error(const sb_buf_t *errors, const char *prefix, const char *what)
{
    char want[2048];
    snprintf(want, sizeof(want), "%s: %s", prefix, what);
    const char *hay = errors->data ? errors->data : "";
    for (const char *p = hay; (p = strstr(p, want)) != NULL; p++) {
        if (p == hay || p[-1] == '\n')
            return;
    }
    fail_msg("expected error line starting with \"%s\" in:\n%s", want, hay);
}

static inline char *file_line(const char *path, int line)
{
    return sb_asprintf("%s:%d", path, line);
}

static inline int setup(void **state)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/sb-config-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir))
        return -1;
    return 0;
}

static inline int teardown(void **state)
{
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char path[1024];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
            if (unlink(path) != 0)
                rmdir(path);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* Before each test: no SWITCHBOARD_* variable, even if a failed test left one behind. */
static inline int reset_env(void **state)
{
    clear_env();
    return 0;
}

#endif

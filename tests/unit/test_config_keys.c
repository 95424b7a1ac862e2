/* SPDX-License-Identifier: MIT */
/*
 * The configuration's key tables (core/config.c, docs/contract.md §8): the shipped
 * deploy/switchboard.conf.example, which must load cleanly and document every key, the
 * help of --print-keys, and channel keys, which are not core's: they come from the
 * connectors' descriptors (web chat's site and visitor_rate) and, for the mechanism,
 * from a table standing in for connectors not written yet (config_fixture.h). Also the
 * key prefixes' and sizes' bounds.
 */
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
#include "core/sla.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/unit/config_fixture.h"

static char *source_root(void)
{
    /* __FILE__ is tests/unit/test_config.c under the source root (CMake passes it whole). */
    char *p = sb_strdup(__FILE__);
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(p, '/');
        if (slash)
            *slash = '\0';
        else
            snprintf(p, strlen(p) + 1, ".");
    }
    return p;
}

/* ---- The shipped example ---- */

static char *example_path(void)
{
    char *root = source_root();
    char *p = sb_asprintf("%s/deploy/switchboard.conf.example", root);
    sb_free(root);
    return p;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    sb_buf_t b;
    sb_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(sb_buf_append(&b, chunk, n), 0);
    fclose(f);
    return sb_buf_steal(&b, len);
}

/* True if key is a table key and `line` is `#key …` (an optional setting, commented out). */
static bool is_commented_setting(const char *line, char **keys)
{
    if (line[0] != '#')
        return false;
    size_t n = strcspn(line + 1, " \t\n");
    for (int i = 0; keys[i]; i++)
        if (strlen(keys[i]) == n && strncmp(line + 1, keys[i], n) == 0)
            return true;
    return false;
}

static void test_config_example_file_is_valid(void **state)
{
    char *path = example_path();
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    if (load(&c, path, &errors) != 0)
        fail_msg("%s does not load:\n%s", path, errors.data);
    assert_int_equal(errors.len, 0);
    sb_config_dispose(&c);

    /* Its optional settings (`#key value`) must be valid too: enable them all. */
    size_t len;
    char *text = read_all(path, &len);
    char **keys = table_keys(sb_connectors_config());
    sb_buf_t on;
    sb_buf_init(&on, 1 << 20);
    for (char *line = text; *line;) {
        size_t n = strcspn(line, "\n");
        size_t skip = is_commented_setting(line, keys) ? 1 : 0;
        assert_int_equal(sb_buf_append(&on, line + skip, n - skip), 0);
        assert_int_equal(sb_buf_puts(&on, "\n"), 0);
        line += n + (line[n] ? 1 : 0);
    }
    /* a mastodon line's token file must be readable (--check reads it): stand one in */
    const char *tok_at = strstr(on.data, "/etc/switchboard/mastodon.token");
    char *tok = sb_strdup(write_file("mastodon.token", "example-token\n", 14));
    char *fixed = tok_at ? sb_asprintf("%.*s%s%s", (int)(tok_at - on.data), on.data, tok,
                                       tok_at + strlen("/etc/switchboard/mastodon.token"))
                         : sb_strdup(on.data);
    const char *all = write_file("example-all.conf", fixed, strlen(fixed));
    sb_free(fixed);
    sb_free(tok);
    if (load(&c, all, &errors) != 0)
        fail_msg("the example with every setting enabled does not load:\n%s", errors.data);
    assert_int_equal(list_of(&c, "site")->n, 1);
    assert_int_equal(sb_config_uint(&c, "visitor_rate"), 120);
    assert_int_equal(c.sla.n, 1);
    assert_int_equal(c.calendar.n, 1);
    assert_int_equal(c.holiday.n, 1);
    assert_int_equal(c.escalate.n, 2);
    assert_non_null(c.tls_cert);
    assert_non_null(c.notify_from);
    /* its SLA section compiles (calendar, holiday, policy, escalation steps) */
    sb_sla_conf_t *sla = NULL;
    if (sb_sla_conf_load(&c, &sla, &errors) != 0)
        fail_msg("the example's SLA lines do not compile:\n%s", errors.data);
    assert_true(sb_sla_conf_active(sla));
    assert_non_null(sb_sla_calendar(sla, "office"));
    sb_sla_conf_free(sla);
    sb_config_dispose(&c);

    sb_buf_dispose(&on);
    free_keys(keys);
    sb_free(text);
    sb_free(path);
    sb_buf_dispose(&errors);
}

static void test_config_example_documents_every_key(void **state)
{
    char *path = example_path();
    size_t len;
    char *text = read_all(path, &len);
    char **keys = table_keys(sb_connectors_config());
    int nkeys = 0;
    for (int i = 0; keys[i]; i++, nkeys++) {
        /* At the start of a line, as `key value` or as an optional `#key value`. */
        char *a = sb_asprintf("\n%s ", keys[i]), *b = sb_asprintf("\n#%s ", keys[i]);
        if (!strstr(text, a) && !strstr(text, b))
            fail_msg("key '%s' is not documented in %s", keys[i], path);
        sb_free(a);
        sb_free(b);
    }
    assert_true(nkeys >= 24);
    free_keys(keys);
    sb_free(text);
    sb_free(path);
}

/* ---- Keys added by connectors ---- */

static bool even_words(int argc, char *const *argv, char *why, size_t cap)
{
    if (argc % 2 == 0)
        return true;
    snprintf(why, cap, "'%s' has an odd number of words", argv[0]);
    return false;
}

static const sb_config_key_t probe_keys[] = {
    {"probe_count", SB_CONFIG_UINT, "3", 1, 10, "<1..10>", "A count."},
    {"probe_wait", SB_CONFIG_DURATION, "2s", 1000, 60000, "<duration>", "A wait."},
    {"probe_on", SB_CONFIG_BOOL, "off", 0, 1, "on|off", "A switch."},
    {"probe_name", SB_CONFIG_STRING, NULL, 0, 0, "<name>", "A name."},
    {"probe_pair", SB_CONFIG_LIST, NULL, 2, 0, "<a> <b> [<c> <d>...]", "Pairs.", even_words},
    {NULL},
};

static void test_config_core_has_no_channel_keys(void **state)
{
    const char *path = write_conf("site shop s3cret\nvisitor_rate 60\nmailbox a b c d\n");
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(sb_config_load(&c, path, &errors), SB_ECONFIG);
    char *at = file_line(path, 1);
    assert_error(&errors, at, "unknown key 'site'");
    sb_free(at);
    assert_int_equal(count_lines(&errors), 3);
    assert_int_equal(list_of(&c, "site")->n, 0); /* no such key: an empty list */
    assert_int_equal(sb_config_uint(&c, "visitor_rate"), 0);
    assert_null(sb_config_str(&c, "visitor_rate"));
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

static void test_config_added_keys(void **state)
{
    const sb_config_key_t *const extra[] = {probe_keys, other_keys, NULL};
    sb_config_t c;
    sb_config_init_with(&c, extra);
    assert_int_equal(sb_config_uint(&c, "probe_count"), 3);
    assert_int_equal(sb_config_uint(&c, "probe_wait"), 2000);
    assert_int_equal(sb_config_uint(&c, "probe_on"), 0);
    assert_null(sb_config_str(&c, "probe_name"));
    assert_string_equal(c.listen, "127.0.0.1:8080"); /* other_keys' "listen" lost to core's */
    sb_config_dispose(&c);

    const char *path = write_conf("probe_count 7\nprobe_on on\nprobe_name \"a b\"\n"
                                  "probe_pair x y\nprobe_pair 1 2 3 4\nprobe_wait 1m\n");
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(sb_config_load_with(&c, path, extra, &errors), 0);
    assert_int_equal(sb_config_uint(&c, "probe_count"), 7);
    assert_int_equal(sb_config_uint(&c, "probe_on"), 1);
    assert_int_equal(sb_config_uint(&c, "probe_wait"), 60000);
    assert_string_equal(sb_config_str(&c, "probe_name"), "a b");
    assert_int_equal(list_of(&c, "probe_pair")->n, 2);
    assert_int_equal(list_of(&c, "probe_pair")->items[1].argc, 4);
    assert_int_equal(list_of(&c, "probe_pair")->items[1].line, 5);
    sb_config_dispose(&c);

    /* Their errors are reported like the core's, all in one run, at file:line. */
    path = write_conf("probe_count 11\nprobe_pair x y z\nprobe_on maybe\nprobe_count 2\n"
                      "probe_wait 1h\n");
    sb_buf_reset(&errors);
    assert_int_equal(sb_config_load_with(&c, path, extra, &errors), SB_ECONFIG);
    char *at1 = file_line(path, 1), *at2 = file_line(path, 2), *at3 = file_line(path, 3),
         *at4 = file_line(path, 4), *at5 = file_line(path, 5);
    assert_error(&errors, at1, "probe_count: 11 is out of range 1..10");
    assert_error(&errors, at2, "probe_pair: 'x' has an odd number of words");
    assert_error(&errors, at3, "probe_on: 'maybe' is not on or off");
    assert_error(&errors, at4, "probe_count: repeated (first set on line 1)");
    assert_error(&errors, at5, "probe_wait: 1h is out of range 1s..1m");
    assert_int_equal(count_lines(&errors), 5);
    assert_int_equal(list_of(&c, "probe_pair")->n, 0);
    sb_free(at1);
    sb_free(at2);
    sb_free(at3);
    sb_free(at4);
    sb_free(at5);
    sb_config_dispose(&c);

    /* The environment overrides them too. */
    setenv("SWITCHBOARD_PROBE_COUNT", "9", 1);
    setenv("SWITCHBOARD_PROBE_PAIR", "a b;c", 1);
    sb_buf_reset(&errors);
    assert_int_equal(sb_config_load_with(&c, NULL, extra, &errors), SB_ECONFIG);
    assert_int_equal(sb_config_uint(&c, "probe_count"), 9);
    assert_error(&errors, "env:SWITCHBOARD_PROBE_PAIR", "entry 2: probe_pair: needs at least 2");
    assert_int_equal(list_of(&c, "probe_pair")->n, 1);
    sb_config_dispose(&c);
    unsetenv("SWITCHBOARD_PROBE_COUNT");
    unsetenv("SWITCHBOARD_PROBE_PAIR");

    sb_buf_t out;
    sb_buf_init(&out, 1 << 20);
    sb_config_print_keys(&out, extra);
    assert_non_null(strstr(out.data, "\nprobe_wait <duration>  (default 2s; env "
                                     "SWITCHBOARD_PROBE_WAIT)\n    A wait.\n"));
    assert_non_null(strstr(out.data, "\nmailbox <name>"));
    sb_buf_dispose(&out);
    sb_buf_dispose(&errors);
}

static void test_config_print_keys_has_help(void **state)
{
    sb_buf_t out;
    sb_buf_init(&out, 1 << 20);
    sb_config_print_keys(&out, sb_connectors_config());
    assert_non_null(strstr(out.data, "listen <host:port>  (default 127.0.0.1:8080; env "
                                     "SWITCHBOARD_LISTEN)\n    "));
    assert_non_null(strstr(out.data, "\nsite <id> <secret>"));
    assert_non_null(strstr(out.data, "SWITCHBOARD_SITE holds entries separated by ';'"));
    sb_buf_dispose(&out);
}

static void test_config_prefix_bounded(void **state)
{
    char long_prefix[SB_PREFIX_MAX + 2];
    memset(long_prefix, 'p', sizeof(long_prefix) - 1);
    long_prefix[sizeof(long_prefix) - 1] = '\0'; /* 65 bytes */
    char *text = sb_asprintf("prefix %s\n", long_prefix);
    const char *path = write_conf(text);
    sb_free(text);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    char *at = file_line(path, 1);
    char what[200];
    snprintf(what, sizeof(what), "prefix: '%s' is longer than 64 bytes", long_prefix);
    assert_error(&errors, at, what);
    sb_free(at);
    sb_config_dispose(&c);

    /* Braces would move keys between Redis Cluster slots; spaces make keys unreadable. */
    sb_buf_reset(&errors);
    path = write_conf("prefix \"a{b}:\"\n");
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_non_null(strstr(errors.data, "may not contain braces"));
    sb_config_dispose(&c);
    sb_buf_reset(&errors);
    path = write_conf("prefix \"a b:\"\n");
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    sb_config_dispose(&c);

    /* Exactly the bound is fine, and every key built from it fits a SB_KEY_MAX buffer. */
    long_prefix[SB_PREFIX_MAX] = '\0';
    text = sb_asprintf("prefix %s\n", long_prefix);
    path = write_conf(text);
    sb_free(text);
    sb_buf_reset(&errors);
    assert_int_equal(load(&c, path, &errors), 0);
    assert_int_equal(strlen(c.prefix), SB_PREFIX_MAX);
    char key[SB_KEY_MAX];
    char token[] = "sbt_000000000000000000000000000000000000000000000000";
    sb_store_token_key(c.prefix, token, key, sizeof(key));
    assert_int_equal(strlen(key), SB_PREFIX_MAX + strlen("token:") + 64);
    char id[SB_ID_MAX];
    sb_id_new("ct_", id);
    int n = snprintf(key, sizeof(key), "%scontact:%s:idents", c.prefix, id);
    assert_true(n > 0 && (size_t)n < sizeof(key));
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

static void test_config_sizes(void **state)
{
    uint64_t b;
    assert_int_equal(sb_config_parse_size("65536", &b), 0);
    assert_true(b == 65536);
    assert_int_equal(sb_config_parse_size("64K", &b), 0);
    assert_true(b == 65536);
    assert_int_equal(sb_config_parse_size("256M", &b), 0);
    assert_true(b == 256ULL << 20);
    assert_int_equal(sb_config_parse_size("2G", &b), 0);
    assert_true(b == 2ULL << 30);
    assert_int_equal(sb_config_parse_size("", &b), SB_EINVAL);
    assert_int_equal(sb_config_parse_size("12X", &b), SB_EINVAL);
    assert_int_equal(sb_config_parse_size("-1", &b), SB_EINVAL);
    assert_int_equal(sb_config_parse_size("99999999999999999999G", &b), SB_EINVAL);

    sb_config_t c;
    sb_config_init_with(&c, all_keys());
    assert_true(c.max_outbound_buffer == 256ULL << 20); /* the default */
    sb_config_dispose(&c);
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    const char *path = write_conf("max_outbound_buffer 512K\n");
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    char *at = file_line(path, 1);
    assert_error(&errors, at, "max_outbound_buffer: 512K is out of range 1024K..1024G");
    sb_free(at);
    sb_config_dispose(&c);
    sb_buf_reset(&errors);
    path = write_conf("max_outbound_buffer 64M\n");
    assert_int_equal(load(&c, path, &errors), 0);
    assert_true(c.max_outbound_buffer == 64ULL << 20);
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, reset_env)
    const struct CMUnitTest tests[] = {
        T(test_config_example_file_is_valid),
        T(test_config_example_documents_every_key),
        T(test_config_print_keys_has_help),
        T(test_config_core_has_no_channel_keys),
        T(test_config_added_keys),
        T(test_config_prefix_bounded),
        T(test_config_sizes),
    };
    return cmocka_run_group_tests_name("core/config_keys", tests, setup, teardown);
}

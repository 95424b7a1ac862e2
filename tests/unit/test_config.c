/* SPDX-License-Identifier: MIT */
/*
 * The configuration loader (core/config.c, docs/contract.md §8): defaults, the file syntax
 * (comments, quotes), every kind of error with its exact `file:line:` prefix, several
 * errors in one run, size limits, environment overrides and durations. The shipped
 * example and the keys connectors add: test_config_keys.c; what both share:
 * config_fixture.h. Config files are written into a fresh mkdtemp directory.
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
#include "core/store.h"
#include "core/util.h"
#include "tests/unit/config_fixture.h"

/* ---- Defaults and syntax ---- */

static void test_config_defaults(void **state)
{
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, NULL, &errors), 0);
    assert_int_equal(errors.len, 0);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.public_url, "http://127.0.0.1:8080");
    assert_null(c.tls_cert);
    assert_null(c.tls_key);
    assert_null(c.redis);
    assert_string_equal(c.redis_server, "redis-server");
    assert_string_equal(c.data_dir, "./var");
    assert_string_equal(c.prefix, "sb:");
    assert_int_equal(c.shards, 16);
    assert_int_equal(c.log_level, SB_LOG_INFO);
    assert_int_equal(c.log_format, SB_LOG_TEXT);
    assert_int_equal(c.reopen_window_ms, 7LL * 24 * 3600 * 1000);
    assert_int_equal(c.events_maxlen, 100000);
    assert_int_equal(c.redis_timeout_ms, 5000);
    assert_true(c.demo_page);
    assert_null(c.notify_from);
    assert_int_equal(list_of(&c, "site")->n, 0);
    assert_int_equal(list_of(&c, "mailbox")->n, 0);
    assert_int_equal(sb_config_uint(&c, "visitor_rate"), 120);
    assert_int_equal(sb_config_uint(&c, "visitor_ip_rate"), 600);
    assert_int_equal(c.escalate.n, 0);
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);

    /* sb_config_init alone gives the same values (public_url is derived only on load). */
    sb_config_init_with(&c, all_keys());
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_int_equal(c.shards, 16);
    assert_true(c.demo_page);
    sb_config_dispose(&c);
}

static void test_config_file_parse(void **state)
{
    /* a mastodon row's token file must be readable */
    char *tok = sb_strdup(write_file("token", "t0ken\n", 6)); /* its buffer is reused */
    char *text =
        sb_asprintf("listen 0.0.0.0:9000\n"
                    "public_url https://support.example.com\n"
                    "tls_cert /etc/c.pem\n"
                    "tls_key /etc/k.pem\n"
                    "redis unix:/run/redis.sock\n"
                    "redis_server /usr/bin/redis-server\n"
                    "data_dir /srv/sb\n"
                    "prefix acme:\n"
                    "shards 64\n"
                    "log_level debug\n"
                    "log_format json\n"
                    "reopen_window 12h\n"
                    "events_maxlen 5000\n"
                    "redis_timeout 2s\n"
                    "demo_page off\n"
                    "notify_from sb@example.com\n"
                    "site shop s3cret https://shop.example.com https://example.com\n"
                    "site blog other\n"
                    "mailbox support imaps://u:p@imap.x/INBOX smtps://u:p@smtp.x s@x\n"
                    "mastodon social https://mastodon.social %s\n"
                    "bluesky bsky https://bsky.social bsky.example.com /dev/null\n"
                    "webhook https://hooks.x/sb whsec created resolved\n"
                    "sla email-normal channel=email priority=* first=4h next=8h resolve=3d\n"
                    "calendar office Europe/Berlin mon-fri 09:00-17:00\n"
                    "holiday office 2026-12-24 2026-12-25\n"
                    "escalate * 200%% role:exec\n",
                    tok);
    sb_free(tok);
    const char *path = write_conf(text);
    sb_free(text);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), 0);
    assert_int_equal(errors.len, 0);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.public_url, "https://support.example.com");
    assert_string_equal(c.tls_cert, "/etc/c.pem");
    assert_string_equal(c.tls_key, "/etc/k.pem");
    assert_string_equal(c.redis, "unix:/run/redis.sock");
    assert_string_equal(c.redis_server, "/usr/bin/redis-server");
    assert_string_equal(c.data_dir, "/srv/sb");
    assert_string_equal(c.prefix, "acme:");
    assert_int_equal(c.shards, 64);
    assert_int_equal(c.log_level, SB_LOG_DEBUG);
    assert_int_equal(c.log_format, SB_LOG_JSON);
    assert_int_equal(c.reopen_window_ms, 12LL * 3600 * 1000);
    assert_int_equal(c.events_maxlen, 5000);
    assert_int_equal(c.redis_timeout_ms, 2000);
    assert_false(c.demo_page);
    assert_string_equal(c.notify_from, "sb@example.com");

    assert_int_equal(list_of(&c, "site")->n, 2);
    assert_int_equal(list_of(&c, "site")->items[0].argc, 4);
    assert_string_equal(list_of(&c, "site")->items[0].argv[0], "shop");
    assert_string_equal(list_of(&c, "site")->items[0].argv[1], "s3cret");
    assert_string_equal(list_of(&c, "site")->items[0].argv[3], "https://example.com");
    assert_string_equal(list_of(&c, "site")->items[0].file, path);
    assert_int_equal(list_of(&c, "site")->items[0].line, 17);
    assert_int_equal(list_of(&c, "site")->items[1].argc, 2);
    assert_int_equal(list_of(&c, "site")->items[1].line, 18);
    assert_int_equal(list_of(&c, "mailbox")->n, 1);
    assert_int_equal(list_of(&c, "mailbox")->items[0].argc, 4);
    assert_string_equal(list_of(&c, "mailbox")->items[0].argv[3], "s@x");
    assert_int_equal(list_of(&c, "mastodon")->n, 1);
    assert_int_equal(list_of(&c, "bluesky")->n, 1);
    assert_int_equal(c.webhook.items[0].argc, 4);
    assert_int_equal(c.sla.items[0].argc, 6);
    assert_int_equal(c.calendar.items[0].argc, 4);
    assert_int_equal(c.holiday.items[0].argc, 3);
    assert_string_equal(c.holiday.items[0].argv[2], "2026-12-25");
    assert_int_equal(c.escalate.items[0].argc, 3);
    assert_string_equal(c.escalate.items[0].argv[2], "role:exec");
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

static void test_config_comments_and_quotes(void **state)
{
    const char *path = write_conf("# a comment line\n"
                                  "   # an indented comment\n"
                                  "\n"
                                  "  \t \n"
                                  "listen\t127.0.0.1:9001   # after a value\n"
                                  "data_dir \"/srv/my data\"\n"
                                  "prefix a#b:\n"
                                  "notify_from \"Support \\\"Team\\\" <s@x> \\\\ ok\"\n"
                                  "site shop \"secret with spaces\" https://a.example # x\n"
                                  "log_level debug\r\n"
                                  "redis \"\"\n");
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), 0);
    assert_int_equal(errors.len, 0);
    assert_string_equal(c.listen, "127.0.0.1:9001");
    assert_string_equal(c.data_dir, "/srv/my data");
    assert_string_equal(c.prefix, "a#b:"); /* '#' inside a word is not a comment */
    assert_string_equal(c.notify_from, "Support \"Team\" <s@x> \\ ok");
    assert_int_equal(list_of(&c, "site")->n, 1);
    assert_int_equal(list_of(&c, "site")->items[0].argc, 3);
    assert_string_equal(list_of(&c, "site")->items[0].argv[1], "secret with spaces");
    assert_int_equal(list_of(&c, "site")->items[0].line, 9);
    assert_int_equal(c.log_level, SB_LOG_DEBUG); /* CRLF line endings are fine */
    assert_null(c.redis);                        /* "" leaves an optional key unset */
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

/* ---- Errors ---- */

static void test_config_error_kinds(void **state)
{
    static const struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        {"no_such_key 1\n", 1, "unknown key 'no_such_key'"},
        {"\nlisten\n", 2, "listen: missing value"},
        {"data_dir /a /b\n", 1, "data_dir: expects one value, got 2"},
        {"shards many\n", 1, "shards: 'many' is not a number"},
        {"shards -3\n", 1, "shards: '-3' is not a number"},
        {"shards 0\n", 1, "shards: 0 is out of range 1..1024"},
        {"shards 1025\n", 1, "shards: 1025 is out of range 1..1024"},
        {"events_maxlen 99999999999999999999999\n", 1,
         "events_maxlen: 99999999999999999999999 "
         "is out of range"},
        {"demo_page yes\n", 1, "demo_page: 'yes' is not on or off"},
        {"log_level loud\n", 1, "log_level: 'loud' is not one of error|warn|info|debug"},
        {"log_format xml\n", 1, "log_format: 'xml' is not one of text|json"},
        {"reopen_window 7x\n", 1, "reopen_window: '7x' is not a duration"},
        {"redis_timeout 0\n", 1, "redis_timeout: 0 is out of range 1ms..10m"},
        {"listen 8080\n", 1, "listen: '8080' is not host:port"},
        {"listen example.com:80\n", 1, "listen: 'example.com:80' is not host:port"},
        {"listen 127.0.0.1:70000\n", 1, "listen: '127.0.0.1:70000' is not host:port"},
        {"public_url ftp://x\n", 1, "public_url: 'ftp://x' is not an http:// or https:// URL"},
        {"redis localhost:6379\n", 1, "redis: 'localhost:6379' is not redis://"},
        {"# tls\ntls_cert /c.pem\n", 2, "tls_cert is set but tls_key is not"},
        {"tls_key /k.pem\n", 1, "tls_key is set but tls_cert is not"},
        {"site lonely\n", 1, "site: needs at least 2 words"},
        {"mailbox a imap://x smtp://y\n", 1, "mailbox: needs at least 4 words"},
        {"mastodon a https://m.example\n", 1, "mastodon: needs at least 3 words"},
        {"bluesky a https://bsky.social\n", 1, "bluesky: needs at least 4 words"},
        {"webhook https://h.example\n", 1, "webhook: needs at least 2 words"},
        {"sla only-a-name\n", 1, "sla: needs at least 2 words"},
        {"calendar office Europe/Berlin mon-fri\n", 1, "calendar: needs at least 4 words"},
        {"holiday office\n", 1, "holiday: needs at least 2 words"},
        {"escalate * 50%\n", 1, "escalate: needs at least 3 words"},
        {"notify_from \"open\n", 1, "unterminated quote"},
        {"notify_from \"a\"b\n", 1, "text right after a closing quote"},
        {"data_dir \"\"\n", 1, "data_dir: empty value"},
        {"prefix \xc3\x28\n", 1, "invalid UTF-8"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *path = write_conf(cases[i].text);
        sb_config_t c;
        sb_buf_t errors;
        sb_buf_init(&errors, 65536);
        assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
        char *at = file_line(path, cases[i].line);
        assert_error(&errors, at, cases[i].what);
        if (count_lines(&errors) != 1)
            fail_msg("case %zu: one error expected:\n%s", i, errors.data);
        sb_free(at);
        sb_config_dispose(&c);
        sb_buf_dispose(&errors);
    }
}

static void test_config_reports_several_errors_at_once(void **state)
{
    const char *path = write_conf("listen 127.0.0.1:9002\n"
                                  "shards many\n"
                                  "log_level info\n"
                                  "no_such_key 1\n"
                                  "demo_page maybe\n"
                                  "site ok secret\n"
                                  "mailbox short\n"
                                  "prefix x:\n");
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_int_equal(count_lines(&errors), 4);
    int lines[] = {2, 4, 5, 7};
    const char *whats[] = {"shards:", "unknown key", "demo_page:", "mailbox:"};
    for (int i = 0; i < 4; i++) {
        char *at = file_line(path, lines[i]);
        assert_error(&errors, at, whats[i]);
        sb_free(at);
    }
    /* The good lines around the bad ones still count; bad ones keep the defaults. */
    assert_string_equal(c.listen, "127.0.0.1:9002");
    assert_string_equal(c.prefix, "x:");
    assert_int_equal(list_of(&c, "site")->n, 1);
    assert_int_equal(c.shards, 16);
    assert_true(c.demo_page);
    sb_config_dispose(&c);

    /* errors may be NULL: the result still says something is wrong. */
    assert_int_equal(load(&c, path, NULL), SB_ECONFIG);
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

static void test_config_repeated_single_key(void **state)
{
    const char *path = write_conf("log_level warn\n"
                                  "site a s1\n"
                                  "site b s2\n"
                                  "log_level debug\n");
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    char *at = file_line(path, 4);
    assert_error(&errors, at, "log_level: repeated (first set on line 1)");
    sb_free(at);
    assert_int_equal(count_lines(&errors), 1); /* list keys may repeat */
    assert_int_equal(c.log_level, SB_LOG_WARN);
    assert_int_equal(list_of(&c, "site")->n, 2);
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

static void test_config_unreadable_file(void **state)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_error(&errors, path, "cannot open: No such file or directory");
    assert_int_equal(count_lines(&errors), 1);
    assert_string_equal(c.listen, "127.0.0.1:8080"); /* defaults still in place */
    sb_config_dispose(&c);
    sb_buf_reset(&errors);

    assert_int_equal(load(&c, tmpdir, &errors), SB_ECONFIG); /* a directory */
    assert_error(&errors, tmpdir, "cannot read: Is a directory");
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
}

static void test_config_size_limits(void **state)
{
    /* A line over 64 KiB is an error; the lines after it are still read. */
    size_t n = 70 * 1024;
    char *text = sb_malloc(n + 64);
    size_t o = (size_t)sprintf(text, "shards 8\nnotify_from ");
    memset(text + o, 'a', n);
    o += n;
    o += (size_t)sprintf(text + o, "\nprefix y:\n");
    const char *path = write_file("long.conf", text, o);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    char *at = file_line(path, 2);
    assert_error(&errors, at, "line longer than 65536 bytes");
    sb_free(at);
    assert_int_equal(count_lines(&errors), 1);
    assert_int_equal(c.shards, 8);
    assert_string_equal(c.prefix, "y:");
    assert_null(c.notify_from);
    sb_config_dispose(&c);
    sb_free(text);

    /* A file over 1 MiB is refused as a whole, even if made of comments. */
    n = 1024 * 1024 + 1;
    text = sb_malloc(n);
    for (size_t i = 0; i < n; i += 64) {
        size_t k = n - i < 64 ? n - i : 64;
        memset(text + i, ' ', k);
        text[i] = '#';
        text[i + k - 1] = '\n';
    }
    path = write_file("big.conf", text, n);
    sb_buf_reset(&errors);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_error(&errors, path, "larger than 1048576 bytes");
    sb_config_dispose(&c);
    /* Exactly 1 MiB is fine. */
    path = write_file("big.conf", text, n - 1);
    sb_buf_reset(&errors);
    assert_int_equal(load(&c, path, &errors), 0);
    sb_config_dispose(&c);
    sb_free(text);
    sb_buf_dispose(&errors);
}

/* ---- Environment ---- */

static void test_config_env_overrides_file(void **state)
{
    const char *path = write_conf("listen 127.0.0.1:1111\n"
                                  "shards 32\n"
                                  "demo_page on\n"
                                  "notify_from file@example.com\n");
    setenv("SWITCHBOARD_LISTEN", "*:2222", 1);
    setenv("SWITCHBOARD_DEMO_PAGE", "off", 1);
    setenv("SWITCHBOARD_NOTIFY_FROM", "Support Team <env@example.com>", 1); /* as is */
    setenv("SWITCHBOARD_REDIS_TIMEOUT", "250ms", 1);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), 0);
    assert_int_equal(errors.len, 0);
    assert_string_equal(c.listen, "*:2222");
    assert_string_equal(c.public_url, "http://localhost:2222"); /* derived after env */
    assert_int_equal(c.shards, 32);
    assert_false(c.demo_page);
    assert_string_equal(c.notify_from, "Support Team <env@example.com>");
    assert_int_equal(c.redis_timeout_ms, 250);
    sb_config_dispose(&c);

    /* A bad env value is reported under its variable's name; the file's value stays. */
    setenv("SWITCHBOARD_SHARDS", "lots", 1);
    sb_buf_reset(&errors);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_error(&errors, "env:SWITCHBOARD_SHARDS", "shards: 'lots' is not a number");
    assert_int_equal(count_lines(&errors), 1);
    assert_int_equal(c.shards, 32);
    sb_config_dispose(&c);

    /* tls_cert from the environment alone: the error names the variable. */
    unsetenv("SWITCHBOARD_SHARDS");
    setenv("SWITCHBOARD_TLS_CERT", "/c.pem", 1);
    sb_buf_reset(&errors);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_error(&errors, "env:SWITCHBOARD_TLS_CERT", "tls_cert is set but tls_key is not");
    sb_config_dispose(&c);

    /* With both, public_url is derived as https. */
    setenv("SWITCHBOARD_TLS_KEY", "/k.pem", 1);
    assert_int_equal(load(&c, path, NULL), 0);
    assert_string_equal(c.public_url, "https://localhost:2222");
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
    clear_env();
}

static void test_config_env_list_entries(void **state)
{
    const char *path = write_conf("site filesite s0\n"
                                  "escalate * 200% role:exec\n");
    setenv("SWITCHBOARD_SITE", "shop s1 https://shop.example ;blog \"s 2\";;  ", 1);
    sb_config_t c;
    sb_buf_t errors;
    sb_buf_init(&errors, 65536);
    assert_int_equal(load(&c, path, &errors), 0);
    assert_int_equal(errors.len, 0);
    assert_int_equal(list_of(&c, "site")->n, 2); /* the env entries replace the file's */
    assert_int_equal(list_of(&c, "site")->items[0].argc, 3);
    assert_string_equal(list_of(&c, "site")->items[0].argv[0], "shop");
    assert_string_equal(list_of(&c, "site")->items[0].argv[2], "https://shop.example");
    assert_string_equal(list_of(&c, "site")->items[0].file, "env:SWITCHBOARD_SITE");
    assert_int_equal(list_of(&c, "site")->items[0].line, 1);
    assert_string_equal(list_of(&c, "site")->items[1].argv[1], "s 2");
    assert_int_equal(c.escalate.n, 1); /* untouched keys keep the file's entries */
    sb_config_dispose(&c);

    setenv("SWITCHBOARD_SITE", "shop s1;lonely", 1);
    sb_buf_reset(&errors);
    assert_int_equal(load(&c, path, &errors), SB_ECONFIG);
    assert_error(&errors, "env:SWITCHBOARD_SITE", "entry 2: site: needs at least 2 words");
    assert_int_equal(list_of(&c, "site")->n, 1);
    sb_config_dispose(&c);

    setenv("SWITCHBOARD_SITE", "", 1); /* empty: no entries at all */
    assert_int_equal(load(&c, path, NULL), 0);
    assert_int_equal(list_of(&c, "site")->n, 0);
    sb_config_dispose(&c);
    sb_buf_dispose(&errors);
    clear_env();
}

/* ---- Durations ---- */

static void test_config_duration_parse(void **state)
{
    static const struct {
        const char *s;
        int64_t ms;
    } good[] = {{"7d", 7LL * 86400000}, {"12h", 12LL * 3600000}, {"30m", 1800000}, {"45s", 45000},
                {"500ms", 500},         {"1500", 1500},          {"0", 0},         {"0s", 0}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -1;
        assert_int_equal(sb_config_parse_duration(good[i].s, &ms), 0);
        assert_int_equal(ms, good[i].ms);
    }
    static const char *const bad[] = {"",
                                      "d",
                                      "7x",
                                      "-1s",
                                      "1.5h",
                                      "7 d",
                                      " 7d",
                                      "7dd",
                                      "7D",
                                      "ms7",
                                      "1h30m",
                                      "99999999999999999999",
                                      "9999999999999999d"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -1;
        if (sb_config_parse_duration(bad[i], &ms) != SB_EINVAL)
            fail_msg("'%s' should be rejected", bad[i]);
        assert_int_equal(ms, -1);
    }
}

int main(void)
{
#define T(f) cmocka_unit_test_setup(f, reset_env)
    const struct CMUnitTest tests[] = {
        T(test_config_defaults),
        T(test_config_file_parse),
        T(test_config_comments_and_quotes),
        T(test_config_error_kinds),
        T(test_config_reports_several_errors_at_once),
        T(test_config_repeated_single_key),
        T(test_config_unreadable_file),
        T(test_config_size_limits),
        T(test_config_env_overrides_file),
        T(test_config_env_list_entries),
        T(test_config_duration_parse),
    };
    return cmocka_run_group_tests_name("core/config", tests, setup, teardown);
}

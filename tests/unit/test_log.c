/* SPDX-License-Identifier: MIT */
/*
 * The logger (core/log.c): the SB_LOG_* macros skip their arguments below the current
 * level (so a costly argument at DEBUG costs nothing in production), the text line
 * carries level, event and pairs, and log_format json gives one valid JSON object per
 * line whose fields are the key=value pairs. stderr is redirected into a temp file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"

static int evaluated;

static int count_me(void)
{
    return ++evaluated;
}

/* Captures what is written to stderr between capture_start and capture_stop. */
typedef struct capture {
    int saved;
    int fd;
    char path[256];
} capture_t;

static void capture_start(capture_t *c)
{
    const char *base = getenv("TMPDIR");
    snprintf(c->path, sizeof(c->path), "%s/sb-log-XXXXXX", base && *base ? base : "/tmp");
    c->fd = mkstemp(c->path);
    assert_true(c->fd >= 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written (static storage). */
static const char *capture_stop(capture_t *c)
{
    static char out[8192];
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    ssize_t n = pread(c->fd, out, sizeof(out) - 1, 0);
    assert_true(n >= 0);
    out[n] = '\0';
    close(c->fd);
    unlink(c->path);
    return out;
}

static void test_log_skips_arguments_below_level(void **state)
{
    capture_t cap;
    sb_log_setup(SB_LOG_WARN, SB_LOG_TEXT);
    evaluated = 0;
    capture_start(&cap);
    SB_LOG_DEBUG("test.debug", "n=%d", count_me());
    SB_LOG_INFO("test.info", "n=%d", count_me());
    const char *out = capture_stop(&cap);
    assert_int_equal(evaluated, 0); /* not even evaluated */
    assert_string_equal(out, "");

    capture_start(&cap);
    SB_LOG_WARN("test.warn", "n=%d", count_me());
    SB_LOG_ERROR("test.error", "n=%d", count_me());
    out = capture_stop(&cap);
    assert_int_equal(evaluated, 2);
    assert_non_null(strstr(out, " warn  test.warn n=1\n"));
    assert_non_null(strstr(out, " error test.error n=2\n"));

    sb_log_setup(SB_LOG_DEBUG, SB_LOG_TEXT);
    capture_start(&cap);
    SB_LOG_DEBUG("test.debug", "n=%d", count_me());
    out = capture_stop(&cap);
    assert_int_equal(evaluated, 3);
    assert_non_null(strstr(out, " debug test.debug n=3\n"));
    sb_log_setup(SB_LOG_INFO, SB_LOG_TEXT);
}

static void test_log_json_is_valid_json(void **state)
{
    capture_t cap;
    sb_log_setup(SB_LOG_INFO, SB_LOG_JSON);
    capture_start(&cap);
    SB_LOG_INFO("http.request", "method=%s path=%s status=%d reason=\"%s\" dir=%s", "GET", "/v1/x",
                404, "not found", "C:\\tmp\"q");
    const char *out = capture_stop(&cap);
    sb_log_setup(SB_LOG_INFO, SB_LOG_TEXT);

    size_t n = strlen(out);
    assert_true(n > 0);
    assert_int_equal(out[n - 1], '\n');
    assert_ptr_equal(strchr(out, '\n'), out + n - 1); /* exactly one line */
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    if (!o)
        fail_msg("not JSON (%s): %s", err.text, out);
    assert_true(json_is_object(o));
    assert_string_equal(json_string_value(json_object_get(o, "level")), "info");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "http.request");
    const char *ts = json_string_value(json_object_get(o, "ts"));
    assert_non_null(ts);
    assert_int_equal(strlen(ts), strlen("2026-11-23T07:40:01.123Z"));
    assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(o, "path")), "/v1/x");
    assert_string_equal(json_string_value(json_object_get(o, "status")), "404");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "not found");
    /* Backslashes and quotes inside a value are escaped, not breaking the line. */
    assert_string_equal(json_string_value(json_object_get(o, "dir")), "C:\\tmp\"q");
    json_decref(o);
}

/* Parses a one-line JSON log; fails the test when it is not exactly one JSON object. */
static json_t *json_line(const char *out)
{
    size_t n = strlen(out);
    assert_true(n > 0);
    assert_ptr_equal(strchr(out, '\n'), out + n - 1);
    json_error_t err;
    json_t *o = json_loads(out, 0, &err);
    if (!o)
        fail_msg("not JSON (%s): %s", err.text, out);
    return o;
}

/* A header value (an Origin) full of quotes, spaces, `=`, backslashes and control bytes
 * stays one value: it can neither add a key nor end the line. */
static void test_log_values_cannot_forge_keys(void **state)
{
    static const char *const evil[] = {
        "\"x\\\" admin=1", /* "x\" admin=1 */
        "x\" admin=1 y=\"",
        "a\\\\\" role=admin",
        "line\nforged=1\r\t\x01\x7f",
        "bad utf8 \xff\xc3( ok \xc3\xa9",
        "",
    };
    static const char *const fixed[] = {
        "\"x\\\" admin=1",
        "x\" admin=1 y=\"",
        "a\\\\\" role=admin",
        "line\nforged=1\r\t\x01\x7f",
        "bad utf8 \xef\xbf\xbd\xef\xbf\xbd( ok \xc3\xa9", /* U+FFFD for each bad byte */
        "",
    };
    capture_t cap;
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        sb_log_setup(SB_LOG_INFO, SB_LOG_JSON);
        capture_start(&cap);
        SB_LOG_INFO("webchat.refused", "peer=%s origin=\"%s\" bare=%s reason=origin", "1.2.3.4",
                    evil[i], evil[i]);
        json_t *o = json_line(capture_stop(&cap));
        assert_int_equal(json_object_size(o), 7); /* ts level event peer origin bare reason */
        assert_string_equal(json_string_value(json_object_get(o, "origin")), fixed[i]);
        assert_string_equal(json_string_value(json_object_get(o, "bare")), fixed[i]);
        assert_string_equal(json_string_value(json_object_get(o, "reason")), "origin");
        assert_null(json_object_get(o, "admin"));
        json_decref(o);

        /* The text form is one line whose values are quoted and escaped as needed. */
        sb_log_setup(SB_LOG_INFO, SB_LOG_TEXT);
        capture_start(&cap);
        SB_LOG_INFO("webchat.refused", "origin=%s reason=origin", evil[i]);
        const char *out = capture_stop(&cap);
        assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
        assert_non_null(strstr(out, " reason=origin\n"));
    }
    sb_log_setup(SB_LOG_INFO, SB_LOG_TEXT);
    capture_start(&cap);
    SB_LOG_INFO("t", "origin=%s next=1", "\"x\\\" admin=1");
    assert_non_null(strstr(capture_stop(&cap), " t origin=\"\\\"x\\\\\\\" admin=1\" next=1\n"));
    capture_start(&cap);
    SB_LOG_INFO("t", "q=\"%s\" url=%s%s", "a \"b\"", "http://h", "/p?x=1");
    assert_non_null(strstr(capture_stop(&cap), " t q=\"a \\\"b\\\"\" url=\"http://h/p?x=1\"\n"));
}

/* Plain values are written as they are, and every printf conversion still works. */
static void test_log_conversions(void **state)
{
    capture_t cap;
    sb_log_setup(SB_LOG_INFO, SB_LOG_TEXT);
    capture_start(&cap);
    SB_LOG_INFO("t", "a=%d b=%u c=%zu d=%lld e=%llu f=%.80s g=%.*s h=%.2f i=%x j=%ld k=%c l=100%%",
                -3, 4u, (size_t)5, -6LL, 7ULL, "abc", 2, "xyz", 1.5, 255, 8L, 'q');
    assert_non_null(strstr(capture_stop(&cap),
                           " t a=-3 b=4 c=5 d=-6 e=7 f=abc g=xy h=1.50 i=ff j=8 k=q l=100%\n"));
    capture_start(&cap);
    SB_LOG_INFO("t", "path=/v1/%s peer=%s", "conversations/c_1", "::1");
    assert_non_null(strstr(capture_stop(&cap), " t path=/v1/conversations/c_1 peer=::1\n"));
}

static void test_log_level_parse(void **state)
{
    sb_log_level_t l = SB_LOG_INFO;
    assert_int_equal(sb_log_level_parse("error", &l), 0);
    assert_int_equal(l, SB_LOG_ERROR);
    assert_int_equal(sb_log_level_parse("debug", &l), 0);
    assert_int_equal(l, SB_LOG_DEBUG);
    assert_int_equal(sb_log_level_parse("loud", &l), SB_EINVAL);
    assert_int_equal(sb_log_level_parse("INFO", &l), SB_EINVAL);
    assert_int_equal(l, SB_LOG_DEBUG); /* unchanged on error */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_skips_arguments_below_level),
        cmocka_unit_test(test_log_json_is_valid_json),
        cmocka_unit_test(test_log_values_cannot_forge_keys),
        cmocka_unit_test(test_log_conversions),
        cmocka_unit_test(test_log_level_parse),
    };
    return cmocka_run_group_tests_name("core/log", tests, NULL, NULL);
}

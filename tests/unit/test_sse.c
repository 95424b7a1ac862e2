/* SPDX-License-Identifier: MIT */
/*
 * The Server-Sent Events reader (core/sse.c): one sample stream with every kind of line
 * (BOM, comments, event/data/id/retry, unknown fields, a field without a colon, an id
 * holding a NUL, a non-digit retry, broken UTF-8, LF, CRLF and CR ends) gives the same
 * events and comments whole, byte by byte, and cut at every place into two and three
 * pieces (so a CR ending one chunk before the LF of the next); the caps; an on_event that
 * stops; reset between connections.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/sse.h"

/* What a reader reported, as text: "E<type>|<data>|<id>\n" and "C<text>\n". */
typedef struct log {
    sb_buf_t b;
    int stop_at, events; /* stop_at: on_event returns SB_ECANCELED at that event (1-based) */
} log_t;

static int on_event(const sb_sse_event_t *ev, void *data)
{
    log_t *l = data;
    assert_int_equal(strlen(ev->data), ev->data_len); /* the sample has no NUL in data */
    sb_buf_printf(&l->b, "E%s|%s|%s\n", ev->type, ev->data, ev->id);
    return ++l->events == l->stop_at ? SB_ECANCELED : 0;
}

static void on_comment(const char *text, size_t len, void *data)
{
    log_t *l = data;
    assert_int_equal(strlen(text), len);
    sb_buf_printf(&l->b, "C%s\n", text);
}

static sb_sse_t *reader(log_t *l, size_t max_line, size_t max_event)
{
    memset(l, 0, sizeof(*l));
    sb_buf_init(&l->b, 1 << 16);
    sb_sse_opts_t o = {.max_line = max_line,
                       .max_event = max_event,
                       .on_event = on_event,
                       .on_comment = on_comment,
                       .data = l};
    return sb_sse_new(&o);
}

static const char SAMPLE[] = "\xEF\xBB\xBF: hello\r\n"
                             "event: greet\r\n"
                             "data: one\r\n"
                             "data:two\r\n"
                             "data:  three\r\n"
                             "id: 7\r\n"
                             "\r\n"
                             "data\n"
                             "data: x\n"
                             "\n"
                             "id: a\0b\r"
                             "retry: 1500\r"
                             "retry: 15x\r"
                             "retry:\r"
                             "bogus: 1\r"
                             "Data: not a field\r"
                             "data: cr\r"
                             "\r"
                             "id\n"
                             "data: \xFF\xC3(\xE2\x82\n"
                             "\n"
                             "event: dropped\n"
                             "id: 9\n"
                             "\n"
                             "data: after\r\n\r\n"
                             ":\n"
                             ":no blank\r\n"
                             "data: tail";

static const char EXPECTED[] = "Chello\n"
                               "Egreet|one\ntwo\n three|7\n"
                               "Emessage|\nx|7\n"
                               "Emessage|cr|7\n"
                               "Emessage|\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD|\n"
                               "Emessage|after|9\n"
                               "C\n"
                               "Cno blank\n";

#define SAMPLE_LEN (sizeof(SAMPLE) - 1)

/* Feeds SAMPLE cut at a and b (0 ≤ a ≤ b ≤ len) and checks the log. */
static void feed_cut(size_t a, size_t b)
{
    log_t l;
    sb_sse_t *s = reader(&l, 0, 0);
    assert_int_equal(sb_sse_feed(s, SAMPLE, a), 0);
    assert_int_equal(sb_sse_feed(s, SAMPLE + a, b - a), 0);
    assert_int_equal(sb_sse_feed(s, SAMPLE + b, SAMPLE_LEN - b), 0);
    sb_buf_append(&l.b, "", 1);
    if (strcmp(l.b.data, EXPECTED) != 0)
        fail_msg("cut at %zu and %zu:\n%s", a, b, l.b.data);
    assert_string_equal(sb_sse_last_id(s), "9");
    assert_int_equal(sb_sse_retry_ms(s), 1500);
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
}

static void test_sse_sample_whole(void **state)
{
    (void)state;
    feed_cut(SAMPLE_LEN, SAMPLE_LEN);
}

static void test_sse_sample_byte_by_byte(void **state)
{
    (void)state;
    log_t l;
    sb_sse_t *s = reader(&l, 0, 0);
    for (size_t i = 0; i < SAMPLE_LEN; i++)
        assert_int_equal(sb_sse_feed(s, SAMPLE + i, 1), 0);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, EXPECTED);
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
}

static void test_sse_sample_every_cut(void **state)
{
    (void)state;
    for (size_t a = 0; a <= SAMPLE_LEN; a++)
        for (size_t b = a; b <= SAMPLE_LEN; b += 1 + (b % 3))
            feed_cut(a, b);
}

static void test_sse_one_bom_only(void **state)
{
    (void)state;
    log_t l;
    sb_sse_t *s = reader(&l, 0, 0);
    /* A second BOM is part of the first line: "\uFEFFdata" is not a field. */
    const char t[] = "\xEF\xBB\xBF\xEF\xBB\xBF"
                     "data: x\n\ndata: y\n\n";
    assert_int_equal(sb_sse_feed(s, t, sizeof(t) - 1), 0);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, "Emessage|y|\n");
    /* No BOM: the first bytes are text. */
    sb_sse_reset(s);
    sb_buf_reset(&l.b);
    assert_int_equal(sb_sse_feed(s, "data: z\n\n", 9), 0);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, "Emessage|z|\n");
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
}

static void test_sse_line_cap(void **state)
{
    (void)state;
    log_t l;
    sb_sse_t *s = reader(&l, 16, 0);
    assert_int_equal(sb_sse_feed(s, "data: 0123456789\n\n", 18), 0); /* 16 bytes: fits */
    assert_int_equal(sb_sse_feed(s, "data: 0123", 10), 0);
    assert_int_equal(sb_sse_feed(s, "45678", 5), 0);
    assert_int_equal(sb_sse_feed(s, "9X", 2), SB_ETOOBIG);                /* 17 bytes, no end yet */
    assert_int_equal(sb_sse_feed(s, "\n\ndata: ok\n\n", 12), SB_ETOOBIG); /* sticky */
    sb_sse_reset(s);
    assert_int_equal(sb_sse_feed(s, "data: ok\n\n", 10), 0);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, "Emessage|0123456789|\nEmessage|ok|\n");
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
}

static void test_sse_event_cap(void **state)
{
    (void)state;
    log_t l;
    sb_sse_t *s = reader(&l, 0, 8);
    /* "abc\nde\nfg" is 9 bytes: one over. "abc\nde\nf" (8) fits. */
    assert_int_equal(sb_sse_feed(s, "data: abc\ndata: de\ndata: f\n\n", 28), 0);
    assert_int_equal(sb_sse_feed(s, "data: abc\ndata: de\ndata: fg\n", 29), SB_ETOOBIG);
    assert_int_equal(sb_sse_feed(s, "\n", 1), SB_ETOOBIG);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, "Emessage|abc\nde\nf|\n");
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
}

static void test_sse_on_event_stops(void **state)
{
    (void)state;
    log_t l;
    sb_sse_t *s = reader(&l, 0, 0);
    l.stop_at = 1;
    assert_int_equal(sb_sse_feed(s, "data: a\n\ndata: b\n\n", 18), SB_ECANCELED);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, "Emessage|a|\n");
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
}

static void test_sse_reset_keeps_last_id(void **state)
{
    (void)state;
    log_t l;
    sb_sse_t *s = reader(&l, 0, 0);
    assert_int_equal(sb_sse_feed(s, "id: 41\ndata: a\n\nid: 42\nevent: x\ndata: half", 42), 0);
    assert_string_equal(sb_sse_last_id(s), "41");               /* 42 was never dispatched */
    sb_sse_reset(s);                                            /* a new connection */
    assert_int_equal(sb_sse_feed(s, "\n\xEF\xBB\xBF\n", 5), 0); /* not a BOM: not at the start */
    assert_int_equal(sb_sse_feed(s, "data: b\n\n", 9), 0);
    sb_buf_append(&l.b, "", 1);
    assert_string_equal(l.b.data, "Emessage|a|41\nEmessage|b|41\n");
    assert_string_equal(sb_sse_last_id(s), "41");
    sb_sse_free(s);
    sb_buf_dispose(&l.b);
    sb_sse_free(NULL);
}

static int on_nul_event(const sb_sse_event_t *ev, void *data)
{
    assert_int_equal(ev->data_len, 3);
    assert_memory_equal(ev->data, "a\0b", 4); /* NUL-terminated after data_len */
    (*(int *)data)++;
    return 0;
}

static void test_sse_data_may_hold_nul(void **state)
{
    (void)state;
    int n = 0;
    sb_sse_t *s = sb_sse_new(&(sb_sse_opts_t){.on_event = on_nul_event, .data = &n});
    assert_int_equal(sb_sse_feed(s, "data: a\0b\n\n:x\n", 14), 0); /* no on_comment */
    assert_int_equal(n, 1);
    assert_string_equal(sb_sse_last_id(s), "");
    assert_int_equal(sb_sse_retry_ms(s), 0);
    sb_sse_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_sample_whole),
        cmocka_unit_test(test_sse_sample_byte_by_byte),
        cmocka_unit_test(test_sse_sample_every_cut),
        cmocka_unit_test(test_sse_one_bom_only),
        cmocka_unit_test(test_sse_line_cap),
        cmocka_unit_test(test_sse_event_cap),
        cmocka_unit_test(test_sse_on_event_stops),
        cmocka_unit_test(test_sse_reset_keeps_last_id),
        cmocka_unit_test(test_sse_data_may_hold_nul),
    };
    return cmocka_run_group_tests_name("core/sse", tests, NULL, NULL);
}

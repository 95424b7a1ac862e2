/* SPDX-License-Identifier: MIT */
/*
 * sb_outbox_reply_of (core/outbox_attempt.c): the answer a channel lane's entry carries,
 * read the same way by every delivering connector; a malformed entry is refused whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/outbox.h"
#include "core/util.h"

/* An entry of two fields, conv and m (either NULL to leave it out). */
static int read_entry(const char *conv, const char *m, char *c, char *mid, json_t **out)
{
    const char *names[2], *values[2];
    size_t lens[2], n = 0;
    if (conv) {
        names[n] = "conv";
        values[n] = conv;
        lens[n++] = strlen(conv);
    }
    if (m) {
        names[n] = "m";
        values[n] = m;
        lens[n++] = strlen(m);
    }
    sb_outbox_entry_t e = {.stream = "sb:{0}:outbox:mastodon",
                           .id = "1-0",
                           .names = names,
                           .values = values,
                           .lens = lens,
                           .nfields = n,
                           .attempt = 1};
    return sb_outbox_reply_of(&e, c, mid, out);
}

static void test_reply_of_reads(void **state)
{
    (void)state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX];
    json_t *m = NULL;
    assert_int_equal(read_entry("c_01jd3k5x2p8q9r0s1t2v3w4x5y",
                                "{\"id\":\"m_01jd3k5x2p8q9r0s1t2v3w4x5z\",\"text\":\"Hi\"}", conv,
                                mid, &m),
                     0);
    assert_string_equal(conv, "c_01jd3k5x2p8q9r0s1t2v3w4x5y");
    assert_string_equal(mid, "m_01jd3k5x2p8q9r0s1t2v3w4x5z");
    assert_string_equal(json_string_value(json_object_get(m, "text")), "Hi");
    json_decref(m);
}

static void test_reply_of_refuses(void **state)
{
    (void)state;
    char conv[SB_ID_MAX], mid[SB_ID_MAX], long_id[SB_ID_MAX + 8], body[200];
    json_t *m = (json_t *)1;
    const char *ok = "{\"id\":\"m_1\",\"text\":\"Hi\"}";
    assert_int_equal(read_entry(NULL, ok, conv, mid, &m), SB_EINVAL);
    assert_null(m);
    assert_int_equal(read_entry("c_1", NULL, conv, mid, &m), SB_EINVAL);
    assert_int_equal(read_entry("", ok, conv, mid, &m), SB_EINVAL);
    assert_int_equal(read_entry("c_1", "{not json", conv, mid, &m), SB_EINVAL);
    assert_int_equal(read_entry("c_1", "{\"text\":\"no id\"}", conv, mid, &m), SB_EINVAL);
    assert_int_equal(read_entry("c_1", "{\"id\":\"m_1\"}", conv, mid, &m), SB_EINVAL);
    assert_int_equal(read_entry("c_1", "{\"id\":\"m_1\",\"text\":7}", conv, mid, &m), SB_EINVAL);
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(read_entry(long_id, ok, conv, mid, &m), SB_EINVAL);
    snprintf(body, sizeof(body), "{\"id\":\"%s\",\"text\":\"Hi\"}", long_id);
    assert_int_equal(read_entry("c_1", body, conv, mid, &m), SB_EINVAL);
    assert_null(m);
}

int main(void)
{
    sb_alloc_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_of_reads),
        cmocka_unit_test(test_reply_of_refuses),
    };
    return cmocka_run_group_tests_name("core/outbox entry", tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * sb_store_public_page (the web chat's history pages) against a real redis-server:
 * paging backwards returns every customer-visible message exactly once and in order,
 * skips notes even when thousands of them lie between two messages (the per-call scan
 * cap hands back a cursor instead of stalling Redis), honours `after` and the byte cap.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/redis.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/harness/harness.h"

typedef sb_test_store_t fixture_t;

typedef struct result {
    bool done;
    int status;
    json_t *json;
    unsigned left; /* fire-and-count calls still in flight */
} result_t;

static void on_result(int status, json_t *res, const char *errmsg, void *data)
{
    result_t *r = data;
    r->status = status ? status : r->status;
    json_decref(r->json);
    r->json = res ? json_incref(res) : NULL;
    if (r->left == 0 || --r->left == 0)
        r->done = true;
}

static int setup(void **state)
{
    *state = sb_test_store_new(false, 5000);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    sb_test_store_free(*state);
    return 0;
}

static void wait_for(fixture_t *f, result_t *r)
{
    assert_true(sb_test_loop_until(&f->loop, &r->done, 20000));
    assert_int_equal(r->status, 0);
}

/* A customer message; returns its seq into seq (48 bytes) and its conversation. */
static void customer_says(fixture_t *f, const char *ct, const char *text, char *conv, char *seq)
{
    result_t r = {0};
    sb_ingest_t in = {.channel = "webchat", .contact_id = ct, .text = text, .client_id = text};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait_for(f, &r);
    snprintf(conv, SB_ID_MAX, "%s",
             json_string_value(json_object_get(json_object_get(r.json, "message"), "conv")));
    snprintf(seq, 48, "%s",
             json_string_value(json_object_get(json_object_get(r.json, "message"), "seq")));
    json_decref(r.json);
}

/* n notes, sent without waiting for each other. */
static void notes(fixture_t *f, const char *conv, unsigned n)
{
    result_t r = {.left = n};
    sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(sb_store_note(f->store, conv, &bob, "internal", NULL, on_result, &r), 0);
    wait_for(f, &r);
    json_decref(r.json);
}

/* One page; returns the result (caller decrefs). */
static json_t *page(fixture_t *f, const char *conv, const char *before, const char *after,
                    unsigned limit, size_t max_bytes)
{
    result_t r = {0};
    assert_int_equal(
        sb_store_public_page(f->store, conv, before, after, limit, max_bytes, on_result, &r), 0);
    wait_for(f, &r);
    return r.json;
}

/* Pages from the newest down; texts collects the message texts oldest first. */
static size_t read_all(fixture_t *f, const char *conv, const char *after, unsigned limit,
                       size_t max_bytes, char texts[][16], size_t cap, size_t *pages)
{
    size_t n = 0;
    char before[48] = "";
    *pages = 0;
    for (;;) {
        json_t *p = page(f, conv, before[0] ? before : NULL, after, limit, max_bytes);
        json_t *items = json_object_get(p, "items");
        size_t k = json_array_size(items);
        assert_true(k <= limit);
        assert_true(n + k <= cap);
        memmove(texts[k], texts[0], n * sizeof(texts[0])); /* older ones go in front */
        for (size_t i = 0; i < k; i++) {
            json_t *m = json_array_get(items, i);
            assert_string_equal(json_string_value(json_object_get(m, "kind")), "message");
            snprintf(texts[i], sizeof(texts[i]), "%s",
                     json_string_value(json_object_get(m, "text")));
        }
        n += k;
        (*pages)++;
        const char *next = json_string_value(json_object_get(p, "next"));
        if (!next) {
            json_decref(p);
            return n;
        }
        snprintf(before, sizeof(before), "%s", next);
        json_decref(p);
    }
}

static void test_page_every_message_once_in_order_past_notes(void **state)
{
    fixture_t *f = *state;
    char ct[SB_ID_MAX], conv[SB_ID_MAX], seq[48], mid[48] = "";
    sb_id_new("ct_", ct);
    customer_says(f, ct, "m000", conv, seq);
    notes(f, conv, 2500); /* more than one call's scan cap between two messages */
    for (int i = 1; i <= 120; i++) {
        char t[16];
        snprintf(t, sizeof(t), "m%03d", i);
        customer_says(f, ct, t, conv, seq);
        if (i == 60)
            snprintf(mid, sizeof(mid), "%s", seq);
    }
    static char texts[200][16];
    size_t pages;
    size_t n = read_all(f, conv, NULL, 50, 1 << 20, texts, 200, &pages);
    assert_int_equal(n, 121);
    for (size_t i = 0; i < n; i++) {
        char want[16];
        snprintf(want, sizeof(want), "m%03d", (int)i);
        assert_string_equal(texts[i], want);
    }
    /* 50 + 50 + 20 (the scan cap stops in the notes and hands back a cursor), then m000 */
    assert_int_equal(pages, 4);

    /* after bounds the range: a reconnect's gap, exactly. */
    n = read_all(f, conv, mid, 50, 1 << 20, texts, 200, &pages);
    assert_int_equal(n, 60);
    assert_string_equal(texts[0], "m061");
    assert_string_equal(texts[59], "m120");

    /* the byte cap: a page always holds one message, however small the cap. */
    n = read_all(f, conv, mid, 50, 1, texts, 200, &pages);
    assert_int_equal(n, 60);
    assert_int_equal(pages, 60);
}

static void test_page_unknown_conversation(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    assert_int_equal(sb_store_public_page(f->store, "c_01jd3k0000000000000000000a", NULL, NULL, 50,
                                          1000, on_result, &r),
                     0);
    assert_true(sb_test_loop_until(&f->loop, &r.done, 5000));
    assert_int_equal(r.status, SB_ENOTFOUND);
    json_decref(r.json);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_page_every_message_once_in_order_past_notes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_page_unknown_conversation, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/store_page", tests, NULL, NULL);
}

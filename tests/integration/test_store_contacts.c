/* SPDX-License-Identifier: MIT */
/*
 * The store's contacts against a real redis-server: resolving a contact stays stable,
 * its latest conversation and identities, finding contacts, and merges (everything
 * moved once; a conversation continued across shards and within one).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/events.h"
#include "core/redis.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/harness/harness.h"
#include "tests/integration/store_fixture.h"

static void test_contact_resolve_stable(void **state)
{
    fixture_t *f = *state;
    result_t a = {0}, b = {0};
    assert_int_equal(sb_store_contact_resolve(f->store, "email", "zed@example.com", "Zed",
                                              "zed@example.com", on_result, &a),
                     0);
    assert_int_equal(
        sb_store_contact_resolve(f->store, "email", "zed@example.com", NULL, NULL, on_result, &b),
        0);
    wait(f, &a);
    wait(f, &b);
    assert_string_equal(jstr(a.json, "id"), jstr(b.json, "id"));
    assert_true(json_is_true(json_object_get(a.json, "created")));
    assert_false(json_is_true(json_object_get(b.json, "created")));
    char key[128];
    snprintf(key, sizeof(key), "sb:contact:%s", jstr(a.json, "id"));
    assert_string_equal(sb_test_redis_cmd(&f->srv, "HGET %s name", key), "Zed");
    reset(&a);
    reset(&b);
}

static void test_contact_latest_and_idents(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    assert_int_equal(sb_store_contact_latest(f->store, ct, "api", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_null(r.json));
    ingest(f, &r, ct, "hello", NULL);
    char conv[SB_ID_MAX];
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    reset(&r);
    assert_int_equal(sb_store_contact_latest(f->store, ct, "api", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), conv);
    assert_string_equal(jstr(r.json, "contact.name"), "Alice");
    reset(&r);
    assert_int_equal(sb_store_contact_latest(f->store, ct, "email", on_result, &r), 0);
    wait(f, &r);
    assert_true(json_is_null(r.json));
    reset(&r);
    assert_int_equal(sb_store_ident_get(f->store, "visitor", "abc", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    reset(&r);
    assert_int_equal(sb_store_ident_set(f->store, "visitor", "abc", ct, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    assert_int_equal(sb_store_ident_get(f->store, "visitor", "abc", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), ct);
    reset(&r);
}

static void contact_get(fixture_t *f, const char *ct, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_contact_get(f->store, ct, on_result, r), 0);
    wait(f, r);
}

static void merge(sb_store_t *st, const char *into, const char *other, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_contact_merge(st, into, other, &admin, on_result, r), 0);
}

static void test_contact_find(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char a[SB_ID_MAX], b[SB_ID_MAX];
    resolve(f, "finn@example.com", "Finn", a);
    resolve(f, "fay@example.com", "Fay", b);
    assert_int_equal(sb_store_contact_find(f->store, a, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "id"), a);
    assert_true(json_is_null(json_object_get(r.json, "merged_into")));
    reset(&r);
    assert_int_equal(sb_store_contact_find(f->store, "ct_01jd3k0000000000000000000", on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    assert_int_equal(sb_store_contact_find(f->store, b, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "merged_into"), a);
    reset(&r);
    /* b merged into a, then a into c: b's messages belong to c */
    char c[SB_ID_MAX];
    resolve(f, "cy@example.com", "Cy", c);
    merge(f->store, c, a, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    assert_int_equal(sb_store_contact_find(f->store, b, on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), b);
    assert_string_equal(jstr(r.json, "merged_into"), c);
    reset(&r);
}

static bool has_string(const json_t *arr, const char *s)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) &&
                                      strcmp(json_string_value(v), s) == 0) return true;
    return false;
}

static void test_contact_merge_moves_everything_once(void **state)
{
    fixture_t *f = *state;
    char a[SB_ID_MAX], b[SB_ID_MAX], a1[SB_ID_MAX], b1[SB_ID_MAX], b2[SB_ID_MAX];
    resolve(f, "ann@example.com", "Ann", a);
    char email[64];
    for (int i = 0;; i++) { /* the other contact in another shard: the hard case */
        snprintf(email, sizeof(email), "ann.%d@example.org", i);
        resolve(f, email, NULL, b);
        if (sb_store_shard(f->store, a) != sb_store_shard(f->store, b))
            break;
    }
    assert_int_equal(sb_store_ident_set(f->store, "mastodon", "@ann@social", b, on_result, NULL),
                     0);
    ingest_on(f, "email", a, "invoice?", a1);
    ingest_on(f, "email", b, "invoice!!", b1);
    usleep(2000);
    ingest_on(f, "mastodon", b, "@acme hello", b2);
    result_t r = {0}, r2 = {0};
    contact_get(f, b, &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "conversations")), 2);
    assert_string_equal(jstr(json_array_get(json_object_get(r.json, "conversations"), 0), "id"),
                        b2); /* newest first */
    assert_true(has_string(json_object_get(r.json, "handles"), "mastodon:@ann@social"));

    /* Two admins merge at the same moment from two nodes: everything moves exactly once. */
    node_t n2;
    node_start(f, &n2);
    merge(f->store, a, b, &r);
    merge(n2.store, a, b, &r2);
    wait(f, &r);
    wait(f, &r2);
    assert_int_equal(r.status, 0);
    assert_int_equal(r2.status, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "moved")) +
                         json_array_size(json_object_get(r2.json, "moved")),
                     2);
    node_stop(f, &n2);
    contact_get(f, a, &r);
    json_t *convs = json_object_get(r.json, "conversations");
    assert_int_equal(json_array_size(convs), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *c = json_array_get(convs, i);
        assert_string_equal(jstr(c, "contact.id"), a);
        if (strcmp(jstr(c, "id"), a1) != 0) /* moved ones carry the surviving name */
            assert_string_equal(jstr(c, "contact.name"), "Ann");
    }
    json_t *handles = json_object_get(r.json, "handles");
    assert_true(has_string(handles, "email:ann@example.com"));
    assert_true(has_string(handles, "mastodon:@ann@social"));
    char handle[80];
    snprintf(handle, sizeof(handle), "email:%s", email);
    assert_true(has_string(handles, handle));
    json_t *ev = NULL;
    assert_int_equal(count_events(f, b1, "merged", &ev), 1);
    assert_string_equal(jstr(ev, "from"), b);
    assert_string_equal(jstr(ev, "into"), a);
    assert_string_equal(jstr(ev, "author.id"), "st_adm");
    json_decref(ev);
    assert_int_equal(count_events(f, b2, "merged", NULL), 1);
    assert_int_equal(count_events(f, a1, "merged", NULL), 0);
    /* The customer's handles now find the surviving contact. */
    reset(&r);
    assert_int_equal(sb_store_ident_get(f->store, "mastodon", "@ann@social", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "id"), a);
    /* The merged contact says where it went and holds nothing. */
    contact_get(f, b, &r);
    assert_string_equal(jstr(r.json, "merged_into"), a);
    assert_int_equal(json_array_size(json_object_get(r.json, "conversations")), 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "handles")), 0);

    /* Again: nothing more to move, no new events. Into a third contact: refused. */
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "moved")), 0);
    assert_int_equal(count_events(f, b1, "merged", NULL), 1);
    char c[SB_ID_MAX];
    resolve(f, "carl@example.com", "Carl", c);
    merge(f->store, c, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, SB_ECONFLICT);
    merge(f->store, b, c, &r);
    wait(f, &r);
    assert_int_equal(r.status, SB_ECONFLICT);
    char unknown[SB_ID_MAX];
    sb_id_new("ct_", unknown);
    merge(f->store, a, unknown, &r);
    wait(f, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    contact_get(f, unknown, &r);
    assert_int_equal(r.status, SB_ENOTFOUND);
    assert_int_equal(sb_store_contact_merge(f->store, a, a, &admin, on_result, &r), SB_EINVAL);
    reset(&r);
    reset(&r2);
}

static void test_contact_merge_cross_shard_continues_conversation(void **state)
{
    fixture_t *f = *state;
    char a[SB_ID_MAX], b[SB_ID_MAX], conv[SB_ID_MAX], next[SB_ID_MAX], own[SB_ID_MAX];
    sb_id_new("ct_", a);
    do /* the other contact in another shard */
        sb_id_new("ct_", b);
    while (sb_store_shard(f->store, a) == sb_store_shard(f->store, b));
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s name Eve", a, a);
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s", b, b);
    ingest_on(f, "email", a, "my own email thread", own);
    ingest_on(f, "mastodon", b, "@acme my order?", conv);
    ingest_on(f, "email", b, "the other email thread", NULL);
    result_t r = {0};
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);

    /* The customer writes again as the surviving contact, on the other contact's channel:
     * that conversation continues (in its shard), not a new one. */
    ingest_on(f, "mastodon", a, "@acme any news?", next);
    assert_string_equal(next, conv);
    /* A channel the surviving contact had itself keeps its own conversation. */
    ingest_on(f, "email", a, "and about that email", next);
    assert_string_equal(next, own);
    /* The web chat's path (raw reply), with a client id: continued, then deduplicated. */
    reset(&r);
    sb_ingest_t in = {.channel = "mastodon", .contact_id = a, .text = "hello?", .client_id = "k1"};
    assert_int_equal(sb_store_ingest_raw(f->store, &in, on_raw, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.head.conv, conv);
    assert_false(r.head.duplicate);
    char first[SB_ID_MAX];
    snprintf(first, sizeof(first), "%s", r.head.id);
    reset(&r);
    assert_int_equal(sb_store_ingest_raw(f->store, &in, on_raw, &r), 0);
    wait(f, &r);
    assert_true(r.head.duplicate);
    assert_string_equal(r.head.id, first);
    reset(&r);

    /* Resolved longer ago than the reopen window: a new conversation, in the surviving
     * contact's own shard, which the next message continues. */
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16, .reopen_window_ms = 1};
    sb_store_t *quick;
    sb_store_new(f->redis, &so, &quick);
    act(f, conv, "resolve", &bob, NULL, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    usleep(20000);
    in = (sb_ingest_t){.channel = "mastodon", .contact_id = a, .text = "new question"};
    assert_int_equal(sb_store_ingest(quick, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    char fresh[SB_ID_MAX];
    snprintf(fresh, sizeof(fresh), "%s", jstr(r.json, "conversation.id"));
    assert_string_not_equal(fresh, conv);
    assert_int_equal(sb_store_shard(f->store, fresh), sb_store_shard(f->store, a));
    reset(&r);
    ingest_on(f, "mastodon", a, "follow-up", next);
    assert_string_equal(next, fresh);
    sb_store_free(quick);
}

static void test_contact_merge_same_shard_continues_conversation(void **state)
{
    fixture_t *f = *state;
    char a[SB_ID_MAX], b[SB_ID_MAX], conv[SB_ID_MAX], next[SB_ID_MAX];
    sb_id_new("ct_", a);
    sb_id_new_in_shard("ct_", sb_store_shard(f->store, a), 16, b);
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s name Dee", a, a);
    sb_test_redis_cmd(&f->srv, "HSET sb:contact:%s id %s", b, b);
    ingest_on(f, "email", b, "where is my parcel", conv);
    result_t r = {0};
    merge(f->store, a, b, &r);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    /* The customer writes again as the surviving contact: same conversation, not a new one. */
    ingest_on(f, "email", a, "any news?", next);
    assert_string_equal(next, conv);
    reset(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_contact_resolve_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_latest_and_idents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_merge_moves_everything_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_merge_cross_shard_continues_conversation,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact_merge_same_shard_continues_conversation, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("integration/store_contacts", tests, NULL, NULL);
}

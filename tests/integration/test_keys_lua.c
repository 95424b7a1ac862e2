/* SPDX-License-Identifier: MIT */
/*
 * The Redis key layout of core/keys.h against what core/functions.lua writes: the
 * Functions build their shard keys themselves (`ctx.pre` .. "conv:" …), so after an
 * ingest and a staff reply through the store, every key the C builder names for that
 * conversation must hold what the Function put there (conversation hash, transcript,
 * events, queue, response-time sample, outbox entry), under a non-default prefix and
 * shard count. And every key the operations left in Redis is one the C side names or
 * one docs/redis-keys.md lists as the Functions' own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/store.h"
#include "core/util.h"
#include "tests/harness/harness.h"

#define PREFIX "acme:sb:"

typedef sb_test_store_t fixture_t;

typedef struct result {
    bool done;
    int status;
    json_t *json;
} result_t;

static void on_result(int status, json_t *res, const char *errmsg, void *data)
{
    result_t *r = data;
    r->status = status;
    r->json = res ? json_incref(res) : NULL;
    r->done = true;
}

static int setup(void **state)
{
    fixture_t *f = sb_test_store_new(false, 5000);
    if (!f)
        return -1;
    /* the same server and connection, another prefix and shard count (before the loop
     * first runs, so the connect hook loads the functions for this store) */
    sb_store_free(f->store);
    sb_store_opts_t so = {.prefix = PREFIX, .shards = 8};
    sb_store_new(f->redis, &so, &f->store);
    sb_store_serve(f->store, "email"); /* the reply below goes out through outbox:email */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    sb_test_store_free(*state);
    return 0;
}

static json_t *wait_ok(fixture_t *f, result_t *r)
{
    assert_true(sb_test_loop_until(&f->loop, &r->done, 20000));
    assert_int_equal(r->status, 0);
    return r->json;
}

/* A command's reply as text (harness format), with the key as its one argument. */
static const char *cmd(fixture_t *f, const char *verb, const sb_key_t *k, const char *rest)
{
    if (!rest)
        return sb_test_redis_cmd(&f->srv, "%s %s", verb, k->str);
    return sb_test_redis_cmd(&f->srv, "%s %s %s", verb, k->str, rest);
}

static void test_keys_c_and_lua_agree(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    assert_int_equal(sb_store_contact_resolve(f->store, "email", "alice@example.com", "Alice", NULL,
                                              on_result, &r),
                     0);
    char ct[SB_ID_MAX];
    snprintf(ct, sizeof(ct), "%s", json_string_value(json_object_get(wait_ok(f, &r), "id")));
    json_decref(r.json);

    result_t in = {0};
    sb_ingest_t msg = {.channel = "email", .contact_id = ct, .text = "hello", .subject = "Hi"};
    assert_int_equal(sb_store_ingest(f->store, &msg, on_result, &in), 0);
    json_t *m = json_object_get(wait_ok(f, &in), "message");
    char cid[SB_ID_MAX];
    snprintf(cid, sizeof(cid), "%s", json_string_value(json_object_get(m, "conv")));
    json_decref(in.json);
    unsigned shard = sb_store_shard(f->store, cid);

    sb_key_t k;
    /* written by the Function sb_ingest */
    assert_int_equal(sb_key_conv(&k, PREFIX, shard, cid), 0);
    assert_string_equal(cmd(f, "HEXISTS", &k, "s"), "1");
    assert_int_equal(sb_key_log(&k, PREFIX, shard, cid), 0);
    int logged = atoi(cmd(f, "XLEN", &k, NULL)); /* the message and its `created` event */
    assert_true(logged >= 1);
    assert_int_equal(sb_key_events(&k, PREFIX, shard), 0);
    assert_true(atoi(cmd(f, "XLEN", &k, NULL)) >= 1);
    assert_int_equal(sb_key_queue(&k, PREFIX, shard), 0);
    assert_string_not_equal(cmd(f, "ZSCORE", &k, cid), "(nil)");
    /* written in C (store_contacts.c) */
    assert_int_equal(sb_key_ident(&k, PREFIX, "email", "alice@example.com"), 0);
    assert_string_equal(cmd(f, "GET", &k, NULL), ct);
    assert_int_equal(sb_key_contact(&k, PREFIX, ct), 0);
    assert_string_equal(cmd(f, "HGET", &k, "name"), "Alice");
    assert_int_equal(sb_key_contact_idents(&k, PREFIX, ct), 0);
    assert_string_equal(cmd(f, "SISMEMBER", &k, "email:alice@example.com"), "1");

    /* written by the Function sb_reply: a response-time sample and the outbox entry */
    result_t rep = {0};
    sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};
    assert_int_equal(
        sb_store_reply(f->store, cid, &bob, "hi Alice", NULL, NULL, false, on_result, &rep), 0);
    json_decref(wait_ok(f, &rep));
    assert_int_equal(sb_key_log(&k, PREFIX, shard, cid), 0);
    assert_int_equal(atoi(cmd(f, "XLEN", &k, NULL)), logged + 1);
    assert_int_equal(sb_key_rt(&k, PREFIX, shard), 0);
    assert_string_equal(cmd(f, "XLEN", &k, NULL), "1");
    assert_int_equal(sb_key_outbox(&k, PREFIX, shard, "email"), 0);
    assert_string_equal(cmd(f, "XLEN", &k, NULL), "1");
    assert_int_equal(sb_key_dlv(&k, PREFIX, shard, cid), 0); /* the reply's pending state */
    assert_string_equal(cmd(f, "HLEN", &k, NULL), "1");
    assert_int_equal(sb_key_queue(&k, PREFIX, shard), 0); /* answered: out of the queue */
    assert_string_equal(cmd(f, "ZSCORE", &k, cid), "(nil)");

    /* Every key left is named by keys.h, or is one of the Functions' own (shard-tagged
     * per-contact indexes cl:/cc:, the status indexes and counts). */
    redisContext *rc = redisConnect("127.0.0.1", f->srv.port);
    assert_non_null(rc);
    redisReply *all = redisCommand(rc, "KEYS *");
    assert_non_null(all);
    assert_true(all->elements >= 9);
    sb_key_t pre;
    assert_int_equal(sb_key_shard_prefix(&pre, PREFIX, shard), 0);
    for (size_t i = 0; i < all->elements; i++) {
        const char *key = all->element[i]->str;
        bool named = false;
        static const char *const lua_own[] = {"cl:", "cc:", "counts", "idle", "facts"};
        if (strncmp(key, pre.str, pre.len) == 0) {
            const char *rest = key + pre.len;
            for (size_t j = 0; j < SB_ARRAY_LEN(lua_own); j++)
                named = named || strncmp(rest, lua_own[j], strlen(lua_own[j])) == 0;
        }
        sb_key_t c[10];
        sb_key_conv(&c[0], PREFIX, shard, cid);
        sb_key_log(&c[1], PREFIX, shard, cid);
        sb_key_events(&c[2], PREFIX, shard);
        sb_key_rt(&c[3], PREFIX, shard);
        sb_key_outbox(&c[4], PREFIX, shard, "email");
        sb_key_ident(&c[5], PREFIX, "email", "alice@example.com");
        sb_key_contact(&c[6], PREFIX, ct);
        sb_key_contact_idents(&c[7], PREFIX, ct);
        sb_key_queue(&c[8], PREFIX, shard);
        sb_key_dlv(&c[9], PREFIX, shard, cid);
        for (size_t j = 0; j < SB_ARRAY_LEN(c); j++)
            named = named || strcmp(key, c[j].str) == 0;
        if (!named)
            fail_msg("key %s is named nowhere", key);
    }
    freeReplyObject(all);
    redisFree(rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_c_and_lua_agree, setup, teardown),
    };
    return cmocka_run_group_tests_name("integration/keys_lua", tests, NULL, NULL);
}

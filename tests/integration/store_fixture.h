/* SPDX-License-Identifier: MIT */
/*
 * What the store's integration tests share (test_store*.c): a store on a real redis-server
 * (tests/harness), a call's result copied out of its callback, ingest/act helpers, a second
 * node on its own connection, and the staff actors. Each test file is its own executable,
 * so these are static inline.
 */
#ifndef SB_TESTS_INTEGRATION_STORE_FIXTURE_H
#define SB_TESTS_INTEGRATION_STORE_FIXTURE_H

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

typedef sb_test_store_t fixture_t;

/* The result of one store call, copied out of the callback. */
typedef struct result {
    bool done;
    int status;
    json_t *json;
    char errmsg[256];
    sb_ingest_head_t head;
} result_t;

static inline void on_result(int status, json_t *res, const char *errmsg, void *data)
{
    result_t *r = data;
    if (!r) /* fire and forget */
        return;
    r->done = true;
    r->status = status;
    r->json = res ? json_incref(res) : NULL;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg ? errmsg : "");
}

static inline void reset(result_t *r)
{
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

static inline int setup(void **state)
{
    *state = sb_test_store_new(true, 2000);
    return *state ? 0 : -1;
}

static inline int teardown(void **state)
{
    sb_test_store_free(*state);
    return 0;
}

static inline void on_stopped(void *data)
{
    *(bool *)data = true;
}

static inline void wait(fixture_t *f, result_t *r)
{
    assert_true(sb_test_loop_until(&f->loop, &r->done, 5000));
}

static inline const char *jstr(const json_t *j, const char *path)
{
    /* "a.b" lookups */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", path);
    const json_t *cur = j;
    for (char *tok = strtok(buf, "."); tok && cur; tok = strtok(NULL, "."))
        cur = json_object_get(cur, tok);
    return json_string_value(cur);
}

static inline void ingest(fixture_t *f, result_t *r, const char *contact, const char *text,
                          const char *external_id)
{
    reset(r);
    sb_ingest_t in = {.channel = "api",
                      .contact_id = contact,
                      .contact_name = "Alice",
                      .text = text,
                      .external_id = external_id};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, r), 0);
    wait(f, r);
}

/* The raw ingest's text, parsed for the comparison with its head. */
static inline void on_raw(int status, const char *json, size_t len, const char *errmsg, void *data)
{
    result_t *r = data;
    r->done = true;
    r->status = status;
    r->json = json ? json_loadb(json, len, 0, NULL) : NULL;
    if (json && sb_store_ingest_head(json, len, &r->head) != 0)
        r->status = -1; /* the head must always be readable */
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg ? errmsg : "");
}

static const sb_actor_t bob = {.type = "staff", .id = "st_bob", .name = "Bob"};
static const sb_actor_t admin = {.type = "staff", .id = "st_adm", .name = "Ada", .admin = true};

static inline void new_conv(fixture_t *f, char conv[SB_ID_MAX], char seq[48])
{
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    ingest(f, &r, ct, "help me", NULL);
    assert_int_equal(r.status, 0);
    snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    if (seq)
        snprintf(seq, 48, "%s", jstr(r.json, "message.seq"));
    reset(&r);
}

/* A second store on its own connection, as another node would have. */
typedef struct node {
    sb_redis_t *redis;
    sb_store_t *store;
} node_t;

static inline void node_start(fixture_t *f, node_t *n)
{
    sb_redis_opts_t ro = {.url = f->srv.url, .name = "node2", .cmd_timeout_ms = 2000};
    assert_int_equal(sb_redis_new(&f->loop, &ro, &n->redis), 0);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    sb_store_new(n->redis, &so, &n->store);
    sb_store_on_connect(n->store);
}

static inline void node_stop(fixture_t *f, node_t *n)
{
    bool stopped = false;
    sb_redis_stop(n->redis, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    sb_store_free(n->store);
}

/* Ingests on a channel for a contact; returns the conversation id in conv. */
static inline void ingest_on(fixture_t *f, const char *channel, const char *contact,
                             const char *text, char conv[SB_ID_MAX])
{
    result_t r = {0};
    sb_ingest_t in = {.channel = channel, .contact_id = contact, .text = text};
    assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    if (conv)
        snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    reset(&r);
}

static inline void act(fixture_t *f, const char *conv, const char *action, const sb_actor_t *who,
                       json_t *args, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_act(f->store, conv, action, who, args, on_result, r), 0);
    wait(f, r);
    json_decref(args);
}

/* The transcript entries of a conversation with kind "event" and that type. */
static inline int count_events(fixture_t *f, const char *conv, const char *type, json_t **last)
{
    result_t r = {0};
    assert_int_equal(sb_store_messages(f->store, conv, NULL, 1000, on_result, &r), 0);
    wait(f, &r);
    int n = 0;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(r.json, "items"), i, m)
    {
        const char *t = jstr(m, "type");
        if (t && strcmp(t, type) == 0) {
            n++;
            if (last) {
                json_decref(*last);
                *last = json_incref(m);
            }
        }
    }
    reset(&r);
    return n;
}

/* Resolves an email handle to a contact id. */
static inline void resolve(fixture_t *f, const char *email, const char *name, char ct[SB_ID_MAX])
{
    result_t r = {0};
    assert_int_equal(sb_store_contact_resolve(f->store, "email", email, name, email, on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    snprintf(ct, SB_ID_MAX, "%s", jstr(r.json, "id"));
    reset(&r);
}

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Threading, automatic messages and connector cursors against a real redis-server
 * (core/store_thread.c, the automatic path of functions.lua's ingest; docs/threading.md):
 * a message finds its conversation by the first external id it answers, by a later one,
 * or by a conversation id its connector decoded, refs before convs, and never a
 * stranger's; ids recorded once keep their conversation; long or odd ids are hashed;
 * cursors round-trip; an automatic message neither queues, nor waits, nor reopens. And
 * the same operations on a single-node Redis Cluster, where a command or Function that
 * touched two slots would fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/keys.h"
#include "core/redis.h"
#include "core/store.h"
#include "core/sys.h"
#include "core/util.h"
#include "tests/harness/harness.h"
#include "tests/integration/store_fixture.h"

#define CH "email"

/* ---- Helpers ---- */

/* An inbound message on CH for contact (into conv when given); its result in r. */
static void mail_in(fixture_t *f, sb_store_t *st, result_t *r, const char *contact,
                    const char *conv, const char *text, bool automatic)
{
    reset(r);
    sb_ingest_t in = {.channel = CH,
                      .contact_id = contact,
                      .conv = conv,
                      .text = text,
                      .subject = automatic ? "Out of office" : "Order 42",
                      .automatic = automatic};
    assert_int_equal(sb_store_ingest(st ? st : f->store, &in, on_result, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
}

/* A new contact's first message on CH: its conversation and message ids. */
static void first_mail(fixture_t *f, const char *contact, char conv[SB_ID_MAX], char msg[SB_ID_MAX])
{
    result_t r = {0};
    mail_in(f, NULL, &r, contact, NULL, "where is my order?", false);
    snprintf(conv, SB_ID_MAX, "%s", jstr(r.json, "conversation.id"));
    if (msg)
        snprintf(msg, SB_ID_MAX, "%s", jstr(r.json, "message.id"));
    reset(&r);
}

static void link_ids(fixture_t *f, sb_store_t *st, const char *conv, const char *msg,
                     const char *const *ids, size_t n, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_thread_link(st ? st : f->store, conv, msg, ids, n, on_result, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
}

/* thread_find; asserts the conversation found (NULL: none), how, and the rejected count. */
static void expect_find(fixture_t *f, sb_store_t *st, const char *contact, const char *const *refs,
                        size_t nrefs, const char *const *convs, size_t nconvs, const char *want,
                        const char *via, int rejected)
{
    result_t r = {0};
    assert_int_equal(sb_store_thread_find(st ? st : f->store, CH, contact, refs, nrefs, convs,
                                          nconvs, on_result, &r),
                     0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    if (want) {
        assert_string_equal(jstr(r.json, "conv"), want);
        assert_string_equal(jstr(r.json, "via"), via);
    } else {
        assert_true(json_is_null(json_object_get(r.json, "conv")));
        assert_true(json_is_null(json_object_get(r.json, "via")));
    }
    assert_int_equal(json_integer_value(json_object_get(r.json, "rejected")), rejected);
    reset(&r);
}

static bool in_index(fixture_t *f, const char *index, const char *conv)
{
    char key[64];
    snprintf(key, sizeof(key), "sb:{%u}:%s", sb_store_shard(f->store, conv), index);
    return strcmp(sb_test_redis_cmd(&f->srv, "ZSCORE %s %s", key, conv), "(nil)") != 0;
}

static void get_conv(fixture_t *f, const char *conv, result_t *r)
{
    reset(r);
    assert_int_equal(sb_store_get(f->store, conv, on_result, r), 0);
    wait(f, r);
    assert_int_equal(r->status, 0);
}

/* A wall clock days ahead of the real one, for the reopen window. */
static int64_t clock_skew_ms;

static int64_t skewed_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_skew_ms;
}

static const sb_sys_t skewed_sys = {.now_ms = skewed_now};

/* ---- Finding a conversation ---- */

static void test_find_by_reply_to_and_later_reference(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX], msg[SB_ID_MAX];
    sb_id_new("ct_", ct);
    first_mail(f, ct, conv, msg);
    const char *own[] = {"first.1@mail.example"};
    link_ids(f, NULL, conv, msg, own, 1, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "linked")), 1);
    /* our reply's Message-ID, recorded before its outbox entry is acknowledged */
    const char *ours[] = {"m_reply.1@switchboard.example"};
    link_ids(f, NULL, conv, NULL, ours, 1, &r);
    reset(&r);

    const char *reply_to[] = {"m_reply.1@switchboard.example"};
    expect_find(f, NULL, ct, reply_to, 1, NULL, 0, conv, "ref", 0);
    /* Outlook dropped In-Reply-To: only a later References entry is known */
    const char *refs[] = {"", "unknown.9@mail.example", "other.3@mail.example",
                          "first.1@mail.example"};
    expect_find(f, NULL, ct, refs, 4, NULL, 0, conv, "ref", 0);
    /* nothing known: no conversation */
    const char *none[] = {"nobody@mail.example"};
    expect_find(f, NULL, ct, none, 1, NULL, 0, NULL, NULL, 0);
    expect_find(f, NULL, ct, NULL, 0, NULL, 0, NULL, NULL, 0);
}

static void test_find_by_conversation_candidate(void **state)
{
    fixture_t *f = *state;
    char ct[SB_ID_MAX], conv[SB_ID_MAX], gone[SB_ID_MAX];
    sb_id_new("ct_", ct);
    sb_id_new("c_", gone);
    first_mail(f, ct, conv, NULL);
    const char *none[] = {"nobody@mail.example"};
    /* a conversation that does not exist and a malformed id are passed over */
    const char *convs[] = {gone, "c_not-an-id", conv};
    expect_find(f, NULL, ct, none, 1, convs, 3, conv, "conv", 0);
}

static void test_find_refuses_strangers(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char alice[SB_ID_MAX], mallory[SB_ID_MAX], conv[SB_ID_MAX], msg[SB_ID_MAX], hers[SB_ID_MAX];
    sb_id_new("ct_", alice);
    sb_id_new("ct_", mallory);
    first_mail(f, alice, conv, msg);
    first_mail(f, mallory, hers, NULL);
    const char *ids[] = {"alice.1@mail.example"};
    link_ids(f, NULL, conv, msg, ids, 1, &r);

    /* Mallory copies Alice's Message-ID, then her conversation id (subject tag) */
    expect_find(f, NULL, mallory, ids, 1, NULL, 0, NULL, NULL, 1);
    const char *convs[] = {conv};
    expect_find(f, NULL, mallory, NULL, 0, convs, 1, NULL, NULL, 1);
    /* both at once, and her own conversation last: hers, with one conversation refused */
    const char *both[] = {conv, hers};
    expect_find(f, NULL, mallory, ids, 1, both, 2, hers, "conv", 1);

    /* recording Alice's id for her own conversation changes nothing */
    link_ids(f, NULL, hers, NULL, ids, 1, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "linked")), 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "existing")), 1);
    reset(&r);
    expect_find(f, NULL, alice, ids, 1, NULL, 0, conv, "ref", 0);

    /* Alice's conversation on another channel is not continued by mail */
    char chat[SB_ID_MAX];
    ingest_on(f, "webchat", alice, "hi", chat);
    const char *other[] = {chat};
    expect_find(f, NULL, alice, NULL, 0, other, 1, NULL, NULL, 1);
}

static void test_find_order_refs_before_convs(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], old[SB_ID_MAX], cur[SB_ID_MAX];
    sb_id_new("ct_", ct);
    first_mail(f, ct, old, NULL);
    act(f, old, "resolve", &bob, NULL, &r);
    /* eight days later (past the reopen window) the same customer starts another one */
    clock_skew_ms = 8LL * 24 * 3600 * 1000;
    sb_sys_set(&skewed_sys);
    mail_in(f, NULL, &r, ct, NULL, "a new question", false);
    snprintf(cur, sizeof(cur), "%s", jstr(r.json, "conversation.id"));
    sb_sys_set(NULL);
    assert_string_not_equal(cur, old);
    const char *in_old[] = {"old.1@mail.example"}, *in_cur[] = {"cur.1@mail.example"};
    link_ids(f, NULL, old, NULL, in_old, 1, &r);
    link_ids(f, NULL, cur, NULL, in_cur, 1, &r);
    reset(&r);

    /* refs beat convs */
    const char *convs_cur[] = {cur};
    expect_find(f, NULL, ct, in_old, 1, convs_cur, 1, old, "ref", 0);
    const char *convs_both[] = {cur, old};
    expect_find(f, NULL, ct, NULL, 0, convs_both, 2, cur, "conv", 0);
    /* within refs and within convs, the first one known wins */
    const char *refs[] = {"cur.1@mail.example", "old.1@mail.example"};
    expect_find(f, NULL, ct, refs, 2, NULL, 0, cur, "ref", 0);
    const char *refs_rev[] = {"old.1@mail.example", "cur.1@mail.example"};
    expect_find(f, NULL, ct, refs_rev, 2, NULL, 0, old, "ref", 0);
    const char *convs_old_first[] = {old, cur};
    expect_find(f, NULL, ct, NULL, 0, convs_old_first, 2, old, "conv", 0);
}

static void test_find_follows_contact_merges(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], other[SB_ID_MAX], conv[SB_ID_MAX];
    resolve(f, "alice@work.example", "Alice", ct);
    resolve(f, "alice@home.example", "Alice", other);
    first_mail(f, other, conv, NULL);
    const char *ids[] = {"home.1@mail.example"};
    link_ids(f, NULL, conv, NULL, ids, 1, &r);
    reset(&r);
    expect_find(f, NULL, ct, ids, 1, NULL, 0, NULL, NULL, 1);
    /* a merge half done: the other contact points at this one, its conversation not
     * moved yet; then the asker named by the merged-away id */
    assert_int_equal(sb_store_contact_set(f->store, other, "merged_into", ct, on_result, &r), 0);
    wait(f, &r);
    reset(&r);
    expect_find(f, NULL, ct, ids, 1, NULL, 0, conv, "ref", 0);
    expect_find(f, NULL, other, ids, 1, NULL, 0, conv, "ref", 0);
}

/* ---- Recording ids ---- */

static void expect_get(fixture_t *f, const char *id, const char *conv, const char *msg)
{
    result_t r = {0};
    assert_int_equal(sb_store_thread_get(f->store, id, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    if (!conv) {
        assert_true(json_is_null(r.json));
    } else {
        assert_string_equal(jstr(r.json, "conv"), conv);
        if (msg)
            assert_string_equal(jstr(r.json, "msg"), msg);
        else
            assert_true(json_is_null(json_object_get(r.json, "msg")));
    }
    reset(&r);
}

static void test_link_get_round_trip_and_hashed_ids(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX], msg[SB_ID_MAX];
    sb_id_new("ct_", ct);
    first_mail(f, ct, conv, msg);
    char long_id[301];
    memset(long_id, 'x', 300);
    memcpy(long_id + 290, "@a.example", 11);
    const char *ids[] = {"plain.1@mail.example", long_id, "with space@x", "{tag}@x",
                         "sha256:0000@x"};
    link_ids(f, NULL, conv, msg, ids, 5, &r);
    assert_int_equal(json_integer_value(json_object_get(r.json, "linked")), 5);
    reset(&r);
    for (size_t i = 0; i < 5; i++)
        expect_get(f, ids[i], conv, msg);
    expect_get(f, "never.seen@x", NULL, NULL);
    const char *bare[] = {"bare.1@mail.example"};
    link_ids(f, NULL, conv, NULL, bare, 1, &r);
    reset(&r);
    expect_get(f, "bare.1@mail.example", conv, NULL);
    expect_find(f, NULL, ct, ids + 1, 1, NULL, 0, conv, "ref", 0);

    /* short printable ids are the key; the others are hashed */
    assert_string_equal(sb_test_redis_cmd(&f->srv, "EXISTS sb:mid:plain.1@mail.example"), "1");
    for (size_t i = 1; i < 5; i++) {
        char hex[65];
        sb_sha256_hex(ids[i], strlen(ids[i]), hex);
        assert_string_equal(sb_test_redis_cmd(&f->srv, "EXISTS sb:mid:sha256:%s", hex), "1");
    }
    assert_string_equal(sb_test_redis_cmd(&f->srv, "TTL sb:mid:plain.1@mail.example"), "-1");

    /* bad arguments: no call, no callback */
    const char *empty[] = {""};
    assert_int_equal(sb_store_thread_link(f->store, conv, NULL, empty, 1, on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_thread_link(f->store, "c_bad", NULL, ids, 1, on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_thread_link(f->store, conv, "x", ids, 1, on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_thread_link(f->store, conv, NULL, ids, 0, on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_thread_get(f->store, "", on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_thread_find(f->store, CH, "st_x", NULL, 0, NULL, 0, on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_thread_find(f->store, "", ct, NULL, 0, NULL, 0, on_result, &r),
                     SB_EINVAL);
    assert_false(r.done);
}

static void test_link_ttl(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16, .thread_ttl_s = 3600};
    sb_store_t *st;
    sb_store_new(f->redis, &so, &st);
    char ct[SB_ID_MAX], conv[SB_ID_MAX];
    sb_id_new("ct_", ct);
    first_mail(f, ct, conv, NULL);
    const char *ids[] = {"ttl.1@mail.example"};
    link_ids(f, st, conv, NULL, ids, 1, &r);
    reset(&r);
    long ttl = strtol(sb_test_redis_cmd(&f->srv, "TTL sb:mid:ttl.1@mail.example"), NULL, 10);
    assert_true(ttl > 3500 && ttl <= 3600);
    sb_store_free(st);
}

/* ---- Cursors ---- */

static void test_cursor_get_set(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    assert_int_equal(sb_store_cursor_get(f->store, "email:support", on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_true(json_is_object(r.json) && json_object_size(r.json) == 0);
    reset(&r);

    json_t *first = json_pack("{s:s, s:s}", "uidvalidity", "1700", "last_uid", "41");
    assert_int_equal(sb_store_cursor_set(f->store, "email:support", first, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_string_equal(jstr(r.json, "name"), "email:support");
    reset(&r);
    json_t *next = json_pack("{s:s}", "last_uid", "42");
    assert_int_equal(sb_store_cursor_set(f->store, "email:support", next, on_result, &r), 0);
    wait(f, &r);
    reset(&r);
    assert_int_equal(sb_store_cursor_get(f->store, "email:support", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "uidvalidity"), "1700");
    assert_string_equal(jstr(r.json, "last_uid"), "42");
    assert_int_equal(json_object_size(r.json), 2);
    reset(&r);
    assert_string_equal(sb_test_redis_cmd(&f->srv, "HGET sb:cursor:email:support last_uid"), "42");

    /* bad names and fields: no call */
    json_t *bad = json_pack("{s:i}", "last_uid", 42), *none = json_object();
    assert_int_equal(sb_store_cursor_set(f->store, "email:support", bad, on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_cursor_set(f->store, "email:support", none, on_result, &r),
                     SB_EINVAL);
    assert_int_equal(sb_store_cursor_set(f->store, "a b", first, on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_cursor_get(f->store, "", on_result, &r), SB_EINVAL);
    assert_int_equal(sb_store_cursor_get(f->store, "{x}", on_result, &r), SB_EINVAL);
    assert_false(r.done);
    json_decref(first);
    json_decref(next);
    json_decref(bad);
    json_decref(none);
}

/* ---- Automatic messages ---- */

static void test_auto_first_message_awaits_nobody(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX];
    sb_id_new("ct_", ct);
    mail_in(f, NULL, &r, ct, NULL, "I am out of the office", true);
    assert_true(json_is_true(json_object_get(r.json, "created")));
    assert_true(json_is_true(json_object_get(json_object_get(r.json, "message"), "auto")));
    assert_string_equal(jstr(r.json, "message.dir"), "in");
    assert_string_equal(jstr(r.json, "message.kind"), "message");
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    assert_string_equal(jstr(r.json, "conversation.status"), "resolved");
    assert_true(
        json_is_null(json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    assert_false(in_index(f, "queue", conv));
    assert_false(in_index(f, "idle", conv));
    assert_true(in_index(f, "resolved", conv));
    json_t *ev = NULL;
    assert_int_equal(count_events(f, conv, "resolved", &ev), 1);
    assert_string_equal(jstr(ev, "reason"), "automatic");
    assert_string_equal(jstr(ev, "author.type"), "system");
    json_decref(ev);
    /* the live event carries the flag, so bots and webhooks can skip it */
    char key[64];
    snprintf(key, sizeof(key), "sb:{%u}:events", sb_store_shard(f->store, conv));
    bool flagged = false;
    redisContext *c = redisConnect("127.0.0.1", f->srv.port);
    redisReply *rep = redisCommand(c, "XREVRANGE %s + - COUNT 10", key);
    for (size_t i = 0; rep && i < rep->elements; i++) {
        redisReply *fields = rep->element[i]->element[1];
        const char *e = fields->element[3]->str;
        if (strstr(e, conv) && strstr(e, "\"type\":\"message\"") && strstr(e, "\"auto\":true"))
            flagged = true;
    }
    freeReplyObject(rep);
    redisFree(c);
    assert_true(flagged);

    /* the customer's own message afterwards: reopened, queued, awaiting */
    mail_in(f, NULL, &r, ct, NULL, "back again", false);
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_true(json_is_true(json_object_get(r.json, "reopened")));
    assert_string_equal(jstr(r.json, "conversation.status"), "open");
    assert_true(json_is_integer(
        json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    assert_true(in_index(f, "queue", conv));
    reset(&r);
}

static void test_auto_changes_no_state(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX], conv[SB_ID_MAX];
    sb_id_new("ct_", ct);
    first_mail(f, ct, conv, NULL);
    sb_store_serve(f->store, CH); /* as a running email connector would */
    assert_int_equal(
        sb_store_reply(f->store, conv, &bob, "on its way", NULL, NULL, false, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    assert_false(in_index(f, "queue", conv));

    /* open, answered: the out-of-office reply to our answer starts no wait */
    mail_in(f, NULL, &r, ct, conv, "I am out of the office", true);
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_string_equal(jstr(r.json, "conversation.status"), "open");
    assert_true(
        json_is_null(json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    assert_false(in_index(f, "queue", conv));
    assert_true(in_index(f, "idle", conv));
    get_conv(f, conv, &r);
    assert_string_equal(jstr(r.json, "subject"), "Order 42");
    assert_int_equal(json_integer_value(json_object_get(r.json, "message_count")), 3);

    /* resolved: it stays resolved, by conversation id and as the latest one */
    act(f, conv, "resolve", &bob, NULL, &r);
    mail_in(f, NULL, &r, ct, conv, "auto: still away", true);
    assert_false(json_is_true(json_object_get(r.json, "reopened")));
    assert_string_equal(jstr(r.json, "conversation.status"), "resolved");
    mail_in(f, NULL, &r, ct, NULL, "auto: still away", true);
    assert_false(json_is_true(json_object_get(r.json, "created")));
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_string_equal(jstr(r.json, "conversation.status"), "resolved");
    assert_false(in_index(f, "queue", conv));
    assert_int_equal(count_events(f, conv, "reopened", NULL), 0);

    /* a customer's real message after them still reopens and queues */
    mail_in(f, NULL, &r, ct, NULL, "any news?", false);
    assert_string_equal(jstr(r.json, "conversation.id"), conv);
    assert_true(json_is_true(json_object_get(r.json, "reopened")));
    assert_true(in_index(f, "queue", conv));
    assert_false(json_is_true(json_object_get(json_object_get(r.json, "message"), "auto")));
    reset(&r);
}

static void test_auto_dedup_by_external_id(void **state)
{
    fixture_t *f = *state;
    result_t r = {0};
    char ct[SB_ID_MAX];
    sb_id_new("ct_", ct);
    sb_ingest_t in = {.channel = CH,
                      .contact_id = ct,
                      .text = "auto",
                      .external_id = "ooo.1@mail.example",
                      .automatic = true};
    for (int i = 0; i < 2; i++) {
        reset(&r);
        assert_int_equal(sb_store_ingest(f->store, &in, on_result, &r), 0);
        wait(f, &r);
        assert_int_equal(r.status, 0);
        assert_int_equal(json_is_true(json_object_get(r.json, "duplicate")), i == 1);
    }
    reset(&r);
}

/* ---- The same on Redis Cluster ---- */

/* A single-node cluster owning every slot: a command or Function touching two slots of
 * it fails (CROSSSLOT, "Script attempted to access keys that do not hash to the same
 * slot"), as it would across nodes. */
static void cluster_start(sb_test_redis_t *r)
{
    memset(r, 0, sizeof(*r));
    assert_int_equal(sb_test_mkdtemp(r->dir, "cluster"), 0);
    r->port = sb_test_free_port();
    snprintf(r->url, sizeof(r->url), "redis://127.0.0.1:%d", r->port);
    /* the cluster bus's port: the default (port + 10000) may be out of range */
    char port[16], bus[16], log[300];
    snprintf(port, sizeof(port), "%d", r->port);
    snprintf(bus, sizeof(bus), "%d", sb_test_free_port());
    snprintf(log, sizeof(log), "%s/redis.log", r->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--dir",
               r->dir, "--save", "", "--appendonly", "no", "--cluster-enabled", "yes",
               "--cluster-config-file", "nodes.conf", "--cluster-port", bus, "--logfile", log,
               "--daemonize", "no", (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    uint64_t deadline = sb_test_now_ms() + 10000;
    while (strcmp(sb_test_redis_cmd(r, "PING"), "PONG") != 0 && sb_test_now_ms() < deadline)
        usleep(10000);
    assert_string_equal(sb_test_redis_cmd(r, "CLUSTER ADDSLOTSRANGE 0 16383"), "OK");
    while (!strstr(sb_test_redis_cmd(r, "CLUSTER INFO"), "cluster_state:ok") &&
           sb_test_now_ms() < deadline)
        usleep(10000);
    assert_non_null(strstr(sb_test_redis_cmd(r, "CLUSTER INFO"), "cluster_state:ok"));
}

static sb_test_redis_t cluster_srv; /* stopped by teardown_cluster, even after a failure */

static int teardown_cluster(void **state)
{
    sb_test_redis_stop(&cluster_srv);
    return teardown(state);
}

static void test_cluster_one_slot_per_command(void **state)
{
    fixture_t *f = *state;
    sb_test_redis_t *srv = &cluster_srv;
    cluster_start(srv);
    /* the cluster refuses a command over two slots: the check below is real */
    assert_non_null(strstr(sb_test_redis_cmd(srv, "MSET {a}x 1 {b}x 2"), "CROSSSLOT"));

    sb_redis_opts_t ro = {.url = srv->url, .name = "cluster", .cmd_timeout_ms = 2000};
    sb_redis_t *redis;
    assert_int_equal(sb_redis_new(&f->loop, &ro, &redis), 0);
    sb_store_opts_t so = {.prefix = "sb:", .shards = 16};
    sb_store_t *st;
    sb_store_new(redis, &so, &st);
    sb_store_on_connect(st);

    result_t r = {0};
    char alice[SB_ID_MAX], mallory[SB_ID_MAX], conv[SB_ID_MAX], msg[SB_ID_MAX];
    sb_id_new("ct_", alice);
    sb_id_new("ct_", mallory);
    mail_in(f, st, &r, alice, NULL, "where is my order?", false);
    snprintf(conv, sizeof(conv), "%s", jstr(r.json, "conversation.id"));
    snprintf(msg, sizeof(msg), "%s", jstr(r.json, "message.id"));
    const char *ids[] = {"c1@mail.example", "c2@mail.example", "c3@mail.example"};
    link_ids(f, st, conv, msg, ids, 3, &r);
    reset(&r);
    const char *refs[] = {"c9@mail.example", "c3@mail.example"};
    const char *convs[] = {conv};
    expect_find(f, st, alice, refs, 2, convs, 1, conv, "ref", 0);
    mail_in(f, st, &r, mallory, NULL, "hello", false);
    expect_find(f, st, mallory, refs, 2, convs, 1, NULL, NULL, 1);
    mail_in(f, st, &r, alice, conv, "out of office", true);
    /* still awaiting the staff reply the first message asked for */
    assert_true(json_is_integer(
        json_object_get(json_object_get(r.json, "conversation"), "awaiting_since")));
    mail_in(f, st, &r, mallory, NULL, "out of office", true);
    reset(&r);
    json_t *cur = json_pack("{s:s}", "since_id", "1234");
    assert_int_equal(sb_store_cursor_set(st, "mastodon:main", cur, on_result, &r), 0);
    wait(f, &r);
    assert_int_equal(r.status, 0);
    reset(&r);
    json_decref(cur);
    assert_int_equal(sb_store_cursor_get(st, "mastodon:main", on_result, &r), 0);
    wait(f, &r);
    assert_string_equal(jstr(r.json, "since_id"), "1234");
    reset(&r);

    bool stopped = false;
    sb_redis_stop(redis, on_stopped, &stopped);
    sb_test_loop_until(&f->loop, &stopped, 5000);
    sb_store_free(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_find_by_reply_to_and_later_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_by_conversation_candidate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_refuses_strangers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_order_refs_before_convs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_follows_contact_merges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_get_round_trip_and_hashed_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cursor_get_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_first_message_awaits_nobody, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_changes_no_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auto_dedup_by_external_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_one_slot_per_command, setup, teardown_cluster),
    };
    return cmocka_run_group_tests_name("core/store_thread", tests, NULL, NULL);
}

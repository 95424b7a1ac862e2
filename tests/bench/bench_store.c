/* SPDX-License-Identifier: MIT */
/*
 * Store ingest throughput: N customer messages through sb_store_ingest over ONE async,
 * pipelined Redis connection (a window of W calls in flight), spread over C contacts.
 * Prints ingests/s and latency percentiles. Usage: bench_store URL [N] [W] [C]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/redis.h"
#include "core/store.h"
#include "core/util.h"

typedef struct bench {
    uv_loop_t *loop;
    sb_store_t *store;
    long n, window, contacts;
    long sent, done, failed;
    char (*cts)[SB_ID_MAX];
    uint64_t *lat_ns;
    uint64_t *start_ns;
    bool ready;
} bench_t;

static void send_one(bench_t *b);

static void on_ingested(int status, json_t *res, const char *errmsg, void *data)
{
    bench_t *b = (bench_t *)((void **)data)[0];
    long i = (long)(intptr_t)((void **)data)[1];
    sb_free(data);
    b->lat_ns[i] = sb_mono_ns() - b->start_ns[i];
    if (status)
        b->failed++;
    b->done++;
    if (b->sent < b->n)
        send_one(b);
    else if (b->done == b->n)
        uv_stop(b->loop);
}

static void send_one(bench_t *b)
{
    long i = b->sent++;
    char text[201];
    memset(text, 'x', 200);
    text[200] = '\0';
    sb_ingest_t in = {.channel = "api", .contact_id = b->cts[i % b->contacts], .text = text};
    void **ctx = sb_malloc(2 * sizeof(void *));
    ctx[0] = b;
    ctx[1] = (void *)(intptr_t)i;
    b->start_ns[i] = sb_mono_ns();
    if (sb_store_ingest(b->store, &in, on_ingested, ctx) != 0) {
        fprintf(stderr, "ingest refused\n");
        exit(1);
    }
}

static void on_connect(sb_redis_t *r, void *data)
{
    sb_store_on_connect(((bench_t *)data)->store);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void on_poll(uv_timer_t *t)
{
    bench_t *b = t->data;
    if (sb_store_ready(b->store)) {
        b->ready = true;
        uv_stop(b->loop);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_store URL [N] [WINDOW] [CONTACTS]\n");
        return 2;
    }
    bench_t b = {0};
    b.loop = uv_default_loop();
    b.n = argc > 2 ? atol(argv[2]) : 200000;
    b.window = argc > 3 ? atol(argv[3]) : 1000;
    b.contacts = argc > 4 ? atol(argv[4]) : 1000;
    b.cts = sb_calloc((size_t)b.contacts, SB_ID_MAX);
    for (long i = 0; i < b.contacts; i++)
        sb_id_new("ct_", b.cts[i]);
    b.lat_ns = sb_calloc((size_t)b.n, sizeof(uint64_t));
    b.start_ns = sb_calloc((size_t)b.n, sizeof(uint64_t));
    sb_redis_t *redis;
    sb_redis_opts_t ro = {.url = argv[1],
                          .name = "bench",
                          .cmd_timeout_ms = 30000,
                          .on_connect = on_connect,
                          .data = &b};
    if (sb_redis_new(b.loop, &ro, &redis) != 0)
        return 1;
    sb_store_opts_t so = {.prefix = "bench:", .shards = 16};
    sb_store_new(redis, &so, &b.store);
    uv_timer_t poll;
    uv_timer_init(b.loop, &poll);
    poll.data = &b;
    uv_timer_start(&poll, on_poll, 5, 5);
    uv_run(b.loop, UV_RUN_DEFAULT);
    uv_timer_stop(&poll);
    if (!b.ready)
        return 1;
    uint64_t t0 = sb_mono_ns();
    for (long i = 0; i < b.window && b.sent < b.n; i++)
        send_one(&b);
    uv_run(b.loop, UV_RUN_DEFAULT);
    double secs = (double)(sb_mono_ns() - t0) / 1e9;
    qsort(b.lat_ns, (size_t)b.n, sizeof(uint64_t), cmp_u64);
    printf("store_ingest: n=%ld window=%ld contacts=%ld failed=%ld time=%.3fs rate=%.0f/s "
           "p50=%.2fms p99=%.2fms\n",
           b.n, b.window, b.contacts, b.failed, secs, (double)b.n / secs,
           (double)b.lat_ns[b.n / 2] / 1e6, (double)b.lat_ns[(long)((double)b.n * 0.99)] / 1e6);
    uv_close((uv_handle_t *)&poll, NULL);
    sb_redis_stop(redis, NULL, NULL);
    uv_run(b.loop, UV_RUN_DEFAULT);
    sb_store_free(b.store);
    sb_free(b.cts);
    sb_free(b.lat_ns);
    sb_free(b.start_ns);
    return b.failed ? 1 : 0;
}

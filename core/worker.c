/* SPDX-License-Identifier: MIT */
/*
 * The worker thread of worker.h. One mutex guards both queues and the two flags
 * (stopping: set by the loop; exited: set by the thread as its body returns). The
 * thread sleeps on a condition variable for jobs; the loop is woken by uv_async_send,
 * which coalesces, so the async callback drains the whole result queue each time. The
 * thread is joined only after it said it exited, so the join never blocks the loop.
 */
#include "core/worker.h"

#include <pthread.h>
#include <time.h>

#include "core/alloc.h"
#include "core/err.h"

typedef struct node node_t;
struct node {
    node_t *next;
    void *item;
};

typedef struct queue {
    node_t *head, *tail;
} queue_t;

struct sb_worker {
    uv_loop_t *loop;
    sb_worker_ops_t ops;
    void *data;
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    queue_t jobs, results; /* under mu */
    bool stopping, exited; /* under mu */
    bool joined;           /* loop only */
    void (*stop_cb)(void *);
    void *stop_data;
};

static void push(queue_t *q, void *item)
{
    node_t *n = SB_NEW(node_t);
    n->item = item;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
}

/* Detaches the whole queue (caller holds the lock) and returns its first node. */
static node_t *take_all(queue_t *q)
{
    node_t *n = q->head;
    q->head = q->tail = NULL;
    return n;
}

static void default_run(sb_worker_t *w, void *data)
{
    void *job;
    while (sb_worker_take(w, &job, UINT32_MAX))
        if (job) {
            void *res = w->ops.process(w, job, data);
            if (res)
                sb_worker_post(w, res);
        }
}

static void *thread_main(void *arg)
{
    sb_worker_t *w = arg;
    if (w->ops.run)
        w->ops.run(w, w->data);
    else
        default_run(w, w->data);
    pthread_mutex_lock(&w->mu);
    w->exited = true;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->async);
    return NULL;
}

static void on_closed(uv_handle_t *h)
{
    sb_worker_t *w = h->data;
    void (*cb)(void *) = w->stop_cb;
    void *data = w->stop_data;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cond);
    sb_free(w);
    if (cb)
        cb(data);
}

/* On the loop: delivers every posted result; once stopping and exited, finishes. */
static void on_async(uv_async_t *a)
{
    sb_worker_t *w = a->data;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        node_t *n = take_all(&w->results);
        bool done = w->stopping && w->exited;
        pthread_mutex_unlock(&w->mu);
        if (!n && !done)
            return;
        while (n) {
            node_t *next = n->next;
            w->ops.on_result(w, n->item, w->data);
            sb_free(n);
            n = next;
        }
        if (!done)
            continue;
        if (w->joined)
            return;
        pthread_join(w->thread, NULL);
        w->joined = true;
        pthread_mutex_lock(&w->mu);
        n = take_all(&w->results); /* none can come now: the thread is gone */
        node_t *jobs = take_all(&w->jobs);
        pthread_mutex_unlock(&w->mu);
        for (node_t *next; n; n = next) {
            next = n->next;
            w->ops.on_result(w, n->item, w->data);
            sb_free(n);
        }
        for (node_t *j = jobs, *next; j; j = next) {
            next = j->next;
            if (w->ops.free_job)
                w->ops.free_job(j->item, w->data);
            sb_free(j);
        }
        uv_close((uv_handle_t *)&w->async, on_closed);
        return;
    }
}

int sb_worker_start(uv_loop_t *loop, const sb_worker_ops_t *ops, void *data, sb_worker_t **out)
{
    sb_worker_t *w = SB_NEW(sb_worker_t);
    w->loop = loop;
    w->ops = *ops;
    w->data = data;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (uv_async_init(loop, &w->async, on_async) != 0) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cond);
        sb_free(w);
        return SB_EINTERNAL;
    }
    w->async.data = w;
    if (pthread_create(&w->thread, NULL, thread_main, w) != 0) {
        uv_close((uv_handle_t *)&w->async, on_closed); /* frees w, no callback */
        return SB_EINTERNAL;
    }
    *out = w;
    return 0;
}

int sb_worker_submit(sb_worker_t *w, void *job)
{
    pthread_mutex_lock(&w->mu);
    int rc = w->stopping ? SB_ECANCELED : 0;
    if (rc == 0) {
        push(&w->jobs, job);
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

bool sb_worker_take(sb_worker_t *w, void **job, uint32_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    *job = NULL;
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (!w->stopping && !w->jobs.head && rc == 0)
        rc = timeout_ms == UINT32_MAX ? pthread_cond_wait(&w->cond, &w->mu)
                                      : pthread_cond_timedwait(&w->cond, &w->mu, &dl);
    bool live = !w->stopping;
    if (live && w->jobs.head) {
        node_t *n = w->jobs.head;
        w->jobs.head = n->next;
        if (!w->jobs.head)
            w->jobs.tail = NULL;
        *job = n->item;
        sb_free(n);
    }
    pthread_mutex_unlock(&w->mu);
    return live;
}

bool sb_worker_stopping(sb_worker_t *w)
{
    pthread_mutex_lock(&w->mu);
    bool s = w->stopping;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void sb_worker_post(sb_worker_t *w, void *result)
{
    pthread_mutex_lock(&w->mu);
    push(&w->results, result);
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->async);
}

void sb_worker_stop(sb_worker_t *w, void (*cb)(void *data), void *data)
{
    if (!w) {
        if (cb)
            cb(data);
        return;
    }
    pthread_mutex_lock(&w->mu);
    bool again = w->stopping;
    w->stopping = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
    if (again)
        return;
    w->stop_cb = cb;
    w->stop_data = data;
    uv_async_send(&w->async); /* in case the thread exited already */
}

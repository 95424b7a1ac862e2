/* SPDX-License-Identifier: MIT */
/*
 * A worker thread for a blocking library (libetpan's IMAP IDLE, say), and the hand-off
 * between it and the libuv loop: jobs go from the loop to the thread through a locked
 * queue and a condition variable; results come back through a second locked queue and
 * a uv_async_t, so they are handled on the loop, in the order they were posted.
 *
 * The thread either runs the owner's own body (ops.run: a long-lived loop that waits
 * with sb_worker_take and leaves when it returns false) or the default body, which hands
 * each job to ops.process and posts what it returns.
 *
 * Thread rules: sb_worker_submit, sb_worker_stop and the callbacks of ops.on_result /
 * ops.free_job belong to the loop thread; sb_worker_take, sb_worker_post and
 * sb_worker_stopping to the worker thread (post may also be called on the loop).
 */
#ifndef SB_CORE_WORKER_H
#define SB_CORE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct sb_worker sb_worker_t;

typedef struct sb_worker_ops {
    /** The thread's body (worker thread); NULL = take jobs, process, post, until stopped. */
    void (*run)(sb_worker_t *w, void *data);
    /** With run NULL: handles one job on the worker thread; its return (may be NULL:
     *  nothing posted) goes to on_result. Owns job. */
    void *(*process)(sb_worker_t *w, void *job, void *data);
    /** A posted result, on the loop, in order. Owns result. Required. */
    void (*on_result)(sb_worker_t *w, void *result, void *data);
    /** A job never taken when the worker stopped, on the loop. May be NULL (then the
     *  job is simply dropped; the owner must not leak it). */
    void (*free_job)(void *job, void *data);
} sb_worker_ops_t;

/**
 * Starts the thread. loop is borrowed and must outlive the worker; ops is copied; data is
 * passed to every op. Returns 0 and *out, or SB_EINTERNAL if the thread can't start
 * (nothing to stop then).
 */
int sb_worker_start(uv_loop_t *loop, const sb_worker_ops_t *ops, void *data, sb_worker_t **out);

/** Queues a job for the thread (loop side). 0, or SB_ECANCELED once stopping (job stays
 *  the caller's). */
int sb_worker_submit(sb_worker_t *w, void *job);

/**
 * Worker side: waits up to timeout_ms (UINT32_MAX = no limit) for a job. Returns true
 * with *job set (owned by the caller) or with *job NULL on timeout; false once the worker
 * is stopping (the thread body should then return).
 */
bool sb_worker_take(sb_worker_t *w, void **job, uint32_t timeout_ms);

/** Worker side: has sb_worker_stop been called? */
bool sb_worker_stopping(sb_worker_t *w);

/**
 * Hands result (ownership passes) to ops.on_result on the loop. Any thread; results posted
 * before the thread body returns are all delivered, even while stopping.
 */
void sb_worker_post(sb_worker_t *w, void *result);

/**
 * Stops (loop side, never blocks): the thread is told to stop (sb_worker_take returns
 * false), and once its body has returned it is joined, the results it posted are
 * delivered, the jobs it never took go to ops.free_job, the async handle closes; then
 * cb(data) runs once on the loop and the worker is freed. cb may be NULL. Accepts NULL.
 */
void sb_worker_stop(sb_worker_t *w, void (*cb)(void *data), void *data);

#endif

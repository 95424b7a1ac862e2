/* SPDX-License-Identifier: MIT */
/*
 * The worker thread (core/worker.c): jobs to the thread and results back to the loop in
 * order, a busy thread posting while the loop consumes, stop while a job runs (the
 * result still comes, jobs never taken go to free_job, then the stop callback), a take
 * that times out, and a stop with nothing running. Built under the tsan preset too:
 * `cmake --preset tsan && cmake --build build/tsan --target test_worker`.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <uv.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/worker.h"

typedef struct fixture {
    uv_loop_t loop;
    sb_worker_t *w;
    int results, freed, stopped, out_of_order;
    long last, sum;
    uv_sem_t gate, started; /* job 0 posts started, then waits for gate (stop_while_busy) */
    bool gated;
    int posts; /* results a run body posts */
} fixture_t;

static void *process_double(sb_worker_t *w, void *job, void *data)
{
    fixture_t *f = data;
    long *v = job;
    if (f->gated && *v == 0) {
        uv_sem_post(&f->started);
        uv_sem_wait(&f->gate);
    }
    *v *= 2;
    return v;
}

static void on_result(sb_worker_t *w, void *result, void *data)
{
    fixture_t *f = data;
    long *v = result;
    if (f->results > 0 && *v <= f->last)
        f->out_of_order++;
    f->last = *v;
    f->sum += *v;
    f->results++;
    sb_free(v);
}

static void free_job(void *job, void *data)
{
    fixture_t *f = data;
    f->freed++;
    sb_free(job);
}

static void on_stopped(void *data)
{
    fixture_t *f = data;
    f->stopped++;
}

static int setup(void **state)
{
    fixture_t *f = SB_NEW(fixture_t);
    uv_loop_init(&f->loop);
    uv_sem_init(&f->gate, 0);
    uv_sem_init(&f->started, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    uv_sem_destroy(&f->gate);
    uv_sem_destroy(&f->started);
    sb_free(f);
    return 0;
}

static long *num(long v)
{
    long *p = sb_malloc(sizeof(long));
    *p = v;
    return p;
}

static void test_worker_jobs_in_order(void **state)
{
    fixture_t *f = *state;
    sb_worker_ops_t ops = {.process = process_double, .on_result = on_result, .free_job = free_job};
    assert_int_equal(sb_worker_start(&f->loop, &ops, f, &f->w), 0);
    enum { N = 2000 };
    for (long i = 1; i <= N; i++)
        assert_int_equal(sb_worker_submit(f->w, num(i)), 0);
    while (f->results < N)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->out_of_order, 0);
    assert_int_equal(f->sum, (long)N * (N + 1));
    sb_worker_stop(f->w, on_stopped, f);
    assert_int_equal(sb_worker_submit(f->w, (void *)1), SB_ECANCELED);
    while (!f->stopped)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->stopped, 1);
    assert_int_equal(f->freed, 0);
}

/* A body that posts as fast as it can, then waits to be stopped. */
static void run_poster(sb_worker_t *w, void *data)
{
    fixture_t *f = data;
    for (long i = 1; i <= f->posts; i++)
        sb_worker_post(w, num(i));
    void *job;
    while (sb_worker_take(w, &job, UINT32_MAX))
        sb_free(job);
}

static void test_worker_posts_while_loop_consumes(void **state)
{
    fixture_t *f = *state;
    f->posts = 20000;
    sb_worker_ops_t ops = {.run = run_poster, .on_result = on_result};
    assert_int_equal(sb_worker_start(&f->loop, &ops, f, &f->w), 0);
    while (f->results < f->posts / 2)
        uv_run(&f->loop, UV_RUN_ONCE);
    sb_worker_stop(f->w, on_stopped, f); /* maybe still posting: every result still comes */
    while (!f->stopped)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->results, f->posts);
    assert_int_equal(f->out_of_order, 0);
}

static void test_worker_stop_while_busy(void **state)
{
    fixture_t *f = *state;
    f->gated = true;
    sb_worker_ops_t ops = {.process = process_double, .on_result = on_result, .free_job = free_job};
    assert_int_equal(sb_worker_start(&f->loop, &ops, f, &f->w), 0);
    for (long i = 0; i < 5; i++)
        assert_int_equal(sb_worker_submit(f->w, num(i)), 0);
    uv_sem_wait(&f->started); /* the thread holds job 0 */
    sb_worker_stop(f->w, on_stopped, f);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->stopped, 0); /* the thread still holds job 0 */
    uv_sem_post(&f->gate);
    while (!f->stopped)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->results, 1); /* job 0's result still comes */
    assert_int_equal(f->freed, 4);   /* the others were never taken */
    assert_int_equal(f->stopped, 1);
}

static void run_timeout(sb_worker_t *w, void *data)
{
    void *job = (void *)1;
    bool live = sb_worker_take(w, &job, 20);
    sb_worker_post(w, num(live && job == NULL ? 7 : -1)); /* timed out, still live */
    while (!sb_worker_stopping(w))
        sb_worker_take(w, &job, 5);
}

static void test_worker_take_timeout(void **state)
{
    fixture_t *f = *state;
    sb_worker_ops_t ops = {.run = run_timeout, .on_result = on_result};
    assert_int_equal(sb_worker_start(&f->loop, &ops, f, &f->w), 0);
    while (f->results < 1)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->last, 7);
    sb_worker_stop(f->w, on_stopped, f);
    sb_worker_stop(f->w, on_stopped, f); /* twice: one callback */
    while (!f->stopped)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->stopped, 1);
}

static void test_worker_stop_idle_and_null(void **state)
{
    fixture_t *f = *state;
    sb_worker_ops_t ops = {.process = process_double, .on_result = on_result};
    assert_int_equal(sb_worker_start(&f->loop, &ops, f, &f->w), 0);
    sb_worker_stop(f->w, on_stopped, f);
    while (f->stopped < 1)
        uv_run(&f->loop, UV_RUN_ONCE);
    sb_worker_stop(NULL, on_stopped, f);
    assert_int_equal(f->stopped, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_worker_jobs_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_posts_while_loop_consumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_stop_while_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_take_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_worker_stop_idle_and_null, setup, teardown),
    };
    return cmocka_run_group_tests_name("core/worker", tests, NULL, NULL);
}

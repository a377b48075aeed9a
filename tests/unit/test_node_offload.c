/*
 * test_node_offload.c -- node/offload.c: jobs run on the pool's threads
 * (not the loop thread) and come back to the loop thread in completion
 * order; the pool's threads have the query stack size; a stop cancels what
 * never ran and still calls every done; submit after stop refuses.
 *
 * The loop runs on this (the main) thread; waits are uv_run with a bounded
 * number of iterations, no sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/limits.h"
#include "node/offload.h"

typedef struct test_job {
    offload_job base;
    pthread_t ran_on;
    size_t stack_bytes;  /* the pool thread's stack size */
    int id;
    int *done_order;     /* shared: ids appended in done order */
    int *done_count;
    bool was_cancelled;
    atomic_bool *gate;   /* NULL, or spin until true (keeps a thread busy) */
} test_job;

static void work(offload_job *b) {
    test_job *j = (test_job *)b;
    j->ran_on = pthread_self();
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, &j->stack_bytes);
        pthread_attr_destroy(&a);
    }
    if (j->gate != NULL)
        while (!atomic_load(j->gate)) sched_yield();
}

static void done(offload_job *b) {
    test_job *j = (test_job *)b;
    j->was_cancelled = b->cancelled;
    j->done_order[(*j->done_count)++] = j->id;
}

static void run_until(uv_loop_t *loop, int *count, int want) {
    for (int i = 0; i < 100000 && *count < want; i++) uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(*count, want);
}

static void test_jobs_run_off_the_loop(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    offload *o = NULL;
    assert_int_equal(offload_start(&loop, 2, &o), 0);
    enum { N = 50 };
    test_job jobs[N];
    int order[N], count = 0;
    for (int i = 0; i < N; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].base.work = work;
        jobs[i].base.done = done;
        jobs[i].id = i;
        jobs[i].done_order = order;
        jobs[i].done_count = &count;
        assert_true(offload_submit(o, &jobs[i].base));
    }
    assert_int_equal(count, 0); /* never done inside submit */
    run_until(&loop, &count, N);
    bool seen[N] = {false};
    for (int i = 0; i < N; i++) {
        assert_false(pthread_equal(jobs[i].ran_on, pthread_self()));
        assert_int_equal(jobs[i].stack_bytes, QUIVER_QUERY_THREAD_STACK_SIZE_BYTES);
        assert_false(jobs[i].was_cancelled);
        assert_false(seen[order[i]]);
        seen[order[i]] = true;
    }
    offload_stats st;
    offload_get_stats(o, &st);
    assert_int_equal(st.threads_count, 2);
    assert_int_equal(st.jobs_total, N);
    assert_int_equal(st.queued, 0);
    offload_stop(o);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_stop_cancels_what_never_ran(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    offload *o = NULL;
    assert_int_equal(offload_start(&loop, 1, &o), 0);
    atomic_bool gate = false;
    test_job busy, queued[3];
    int order[4], count = 0;
    memset(&busy, 0, sizeof busy);
    busy.base.work = work;
    busy.base.done = done;
    busy.id = 100;
    busy.done_order = order;
    busy.done_count = &count;
    busy.gate = &gate;
    assert_true(offload_submit(o, &busy.base));
    /* Wait until the one thread is inside busy's work. */
    for (int i = 0; i < 100000000 && busy.ran_on == 0; i++) sched_yield();
    for (int i = 0; i < 3; i++) {
        memset(&queued[i], 0, sizeof queued[i]);
        queued[i].base.work = work;
        queued[i].base.done = done;
        queued[i].id = i;
        queued[i].done_order = order;
        queued[i].done_count = &count;
        assert_true(offload_submit(o, &queued[i].base));
    }
    atomic_store(&gate, true); /* busy finishes; the stop may beat the queued ones */
    offload_stop(o);           /* every done has run when it returns */
    assert_int_equal(count, 4);
    assert_false(busy.was_cancelled);
    int cancelled = 0;
    for (int i = 0; i < 3; i++) cancelled += queued[i].was_cancelled;
    for (int i = 0; i < 3; i++)
        if (queued[i].was_cancelled) assert_true(queued[i].ran_on == 0); /* work not called */
    assert_true(cancelled >= 0 && cancelled <= 3);
    /* After the stop: refused, the caller keeps the job. */
    test_job late;
    memset(&late, 0, sizeof late);
    late.base.work = work;
    late.base.done = done;
    assert_false(offload_submit(o, &late.base));
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_submit_null_pool(void **state) {
    (void)state;
    test_job j;
    memset(&j, 0, sizeof j);
    j.base.work = work;
    j.base.done = done;
    assert_false(offload_submit(NULL, &j.base));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobs_run_off_the_loop),
        cmocka_unit_test(test_stop_cancels_what_never_ran),
        cmocka_unit_test(test_submit_null_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

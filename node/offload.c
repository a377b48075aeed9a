/*
 * offload.c -- the worker pool of offload.h.
 *
 * One mutex guards the job queue and the completion list, as in readers.c:
 * jobs are coarse (a whole text to admit, a whole result to encode), so the
 * lock is held for a few pointer moves per job.  uv_async_send coalesces
 * wake-ups; the async callback takes the whole completion list at once.
 */
#include "offload.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../common/limits.h"
#include "../common/qassert.h"

struct offload {
    uv_loop_t *loop;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    offload_job *queue_head, *queue_tail;
    uint32_t queue_count;
    offload_job *done_head, *done_tail;
    bool stopping;
    uint32_t threads_count;
    pthread_t threads[OFFLOAD_THREADS_COUNT_MAX];
    uv_async_t async;
    uint64_t jobs_total;
    uint64_t refused_total;
};

static void list_append(offload_job **head, offload_job **tail, offload_job *j) {
    j->next = NULL;
    if (*tail) (*tail)->next = j;
    else *head = j;
    *tail = j;
}

static void *worker_main(void *arg) {
    offload *o = arg;
    pthread_mutex_lock(&o->mu);
    for (;;) {
        while (o->queue_head == NULL && !o->stopping) pthread_cond_wait(&o->cond, &o->mu);
        if (o->stopping) break; /* queued jobs are cancelled by offload_stop */
        offload_job *j = o->queue_head;
        o->queue_head = j->next;
        if (o->queue_head == NULL) o->queue_tail = NULL;
        QUIVER_ASSERT(o->queue_count > 0);
        o->queue_count--;
        j->next = NULL;
        pthread_mutex_unlock(&o->mu);

        j->work(j);

        pthread_mutex_lock(&o->mu);
        list_append(&o->done_head, &o->done_tail, j);
        uv_async_send(&o->async);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

static void async_cb(uv_async_t *h) {
    offload *o = h->data;
    pthread_mutex_lock(&o->mu);
    offload_job *list = o->done_head;
    o->done_head = o->done_tail = NULL;
    pthread_mutex_unlock(&o->mu);
    while (list != NULL) {
        offload_job *next = list->next;
        list->next = NULL;
        list->done(list);
        list = next;
    }
}

static void async_close_cb(uv_handle_t *h) {
    offload *o = h->data;
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cond);
    free(o);
}

int offload_start(uv_loop_t *loop, uint32_t threads_count, offload **out) {
    QUIVER_ASSERT(loop != NULL && out != NULL);
    QUIVER_ASSERT(threads_count >= 1 && threads_count <= OFFLOAD_THREADS_COUNT_MAX);
    offload *o = calloc(1, sizeof *o);
    if (o == NULL) QUIVER_FATAL("out of memory (offload pool)");
    o->loop = loop;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cond, NULL);
    uv_async_init(loop, &o->async, async_cb);
    o->async.data = o;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) rc = pthread_attr_setstacksize(&attr, QUIVER_QUERY_THREAD_STACK_SIZE_BYTES);
    for (uint32_t i = 0; rc == 0 && i < threads_count; i++) {
        rc = pthread_create(&o->threads[i], &attr, worker_main, o);
        if (rc == 0) o->threads_count++;
    }
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        offload_stop(o);
        return -rc;
    }
    *out = o;
    return 0;
}

bool offload_submit(offload *o, offload_job *job) {
    QUIVER_ASSERT(job != NULL && job->work != NULL && job->done != NULL);
    if (o == NULL) return false;
    pthread_mutex_lock(&o->mu);
    if (o->stopping || o->queue_count >= OFFLOAD_QUEUE_COUNT_MAX) {
        o->refused_total++;
        pthread_mutex_unlock(&o->mu);
        return false;
    }
    job->cancelled = false;
    list_append(&o->queue_head, &o->queue_tail, job);
    o->queue_count++;
    o->jobs_total++;
    pthread_cond_signal(&o->cond);
    pthread_mutex_unlock(&o->mu);
    return true;
}

void offload_get_stats(offload *o, offload_stats *out) {
    QUIVER_ASSERT(o != NULL && out != NULL);
    pthread_mutex_lock(&o->mu);
    out->threads_count = o->threads_count;
    out->queued = o->queue_count;
    out->jobs_total = o->jobs_total;
    out->refused_total = o->refused_total;
    pthread_mutex_unlock(&o->mu);
}

void offload_stop(offload *o) {
    QUIVER_ASSERT(o != NULL);
    pthread_mutex_lock(&o->mu);
    QUIVER_ASSERT(!o->stopping);
    o->stopping = true;
    pthread_cond_broadcast(&o->cond);
    pthread_mutex_unlock(&o->mu);
    for (uint32_t i = 0; i < o->threads_count; i++) pthread_join(o->threads[i], NULL);
    /* Nothing runs now: cancel what never ran, then deliver everything. */
    pthread_mutex_lock(&o->mu);
    while (o->queue_head != NULL) {
        offload_job *j = o->queue_head;
        o->queue_head = j->next;
        j->cancelled = true;
        list_append(&o->done_head, &o->done_tail, j);
    }
    o->queue_tail = NULL;
    o->queue_count = 0;
    pthread_mutex_unlock(&o->mu);
    async_cb(&o->async);
    uv_close((uv_handle_t *)&o->async, async_close_cb);
}

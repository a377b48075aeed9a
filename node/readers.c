/*
 * readers.c -- reader thread pool (see readers.h).
 *
 * One mutex guards both the job queue and the completion list; jobs are
 * coarse (a whole query), so contention on it is negligible next to the
 * work.  uv_async_send coalesces wake-ups, so a burst of completions costs
 * the loop one callback.
 */
#include "readers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "../common/arena.h"
#include "../common/limits.h"
#include "../common/qassert.h"
#include "../query/query.h"

struct readers {
    uv_loop_t *loop;
    qs_db *db;
    readers_done_fn done;
    void *done_ctx;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    read_job *queue_head, *queue_tail;
    uint32_t queue_count;
    read_job *done_head, *done_tail;
    bool stopping;
    uint32_t threads_count;
    pthread_t *threads;
    uv_async_t async;
    uint64_t query_memory_max_bytes; /* query_request.memory_max_bytes of every read; 0: the default */
};

read_job *read_job_new(read_kind kind) {
    read_job *j = calloc(1, sizeof(*j));
    if (j == NULL) QUIVER_FATAL("out of memory (read job)");
    j->kind = kind;
    reply_buf_init(&j->out, 0);
    return j;
}

void read_job_free(read_job *job) {
    if (job == NULL) return;
    resp_request_free(&job->req);
    reply_buf_free(&job->out);
    free(job);
}

static uint64_t random_u64(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v)) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec;
    }
    return v;
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_job(readers *r, read_job *j) {
    qs_view *view = qs_view_open_snapshot(r->db);
    QUIVER_ASSERT(view != NULL);
    switch (j->kind) {
    case READ_QUERY:
    case READ_EXPLAIN: {
        query_request q = {
            .graph = j->graph,
            .graph_len = j->graph_len,
            .text = j->text,
            .text_len = j->text_len,
            .timestamp_ms = wall_ms(),
            .seed = random_u64(),
            .timeout_ms = j->timeout_ms,
            .read_only = j->read_only,
            .explain = j->kind == READ_EXPLAIN,
            .memory_max_bytes = r->query_memory_max_bytes,
        };
        query_result *res = query_run_read(view, &q);
        QUIVER_ASSERT(res != NULL);
        if (j->kind == READ_EXPLAIN) {
            reply_explain_result(&j->out, res);
        } else if (j->report_lag) {
            /* The snapshot is at least as new as the applied index seen at
             * submission (which counts barriers, unlike the snapshot's). */
            uint64_t base = qs_view_applied_index(view);
            if (j->applied_index > base) base = j->applied_index;
            uint64_t lag = j->known_commit_index > base ? j->known_commit_index - base : 0;
            char line[REPLY_LAG_LINE_SIZE_MAX_BYTES];
            reply_lag_line(line, sizeof line, lag);
            reply_query_result_with(&j->out, res, j->compact, line);
        } else {
            reply_query_result(&j->out, res, j->compact);
        }
        query_result_free(res);
        break;
    }
    case READ_GRAPH_LIST: {
        q_arena a;
        q_arena_init(&a, 64u * 1024 * 1024);
        qv_str *names = NULL;
        uint32_t count = 0;
        int rc = qs_graph_list(view, &a, &names, &count);
        if (rc != QS_OK) {
            reply_errorf(&j->out, "ERR cannot list graphs (storage status %d)", rc);
        } else {
            reply_array(&j->out, count);
            for (uint32_t i = 0; i < count; i++) reply_bulk(&j->out, names[i].ptr, names[i].len);
        }
        q_arena_free(&a);
        break;
    }
    case READ_DIGEST: {
        uint32_t graph_id = 0;
        int rc = qs_graph_lookup(view, j->graph, j->graph_len, &graph_id);
        if (rc == QS_NOT_FOUND) {
            reply_error(&j->out, "ERR Invalid graph operation on empty key");
            break;
        }
        char hex[17] = {0};
        if (rc == QS_OK) rc = qs_graph_digest(view, graph_id, hex);
        if (rc != QS_OK) {
            reply_errorf(&j->out, "ERR cannot compute the digest (storage status %d)", rc);
            break;
        }
        reply_array(&j->out, 2);
        reply_int(&j->out, (int64_t)qs_view_applied_index(view));
        reply_bulk(&j->out, hex, 16);
        break;
    }
    }
    qs_view_close(view);
    if (!reply_fix_overflow(&j->out)) reply_buf_shrink(&j->out);
    /* The request is not needed any more: free it here, not on the loop
     * thread (unmapping a 64 MiB text costs the loop ~10 ms). */
    resp_request_free(&j->req);
    j->graph = j->text = NULL;
    j->graph_len = j->text_len = 0;
}

static void *reader_main(void *arg) {
    readers *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (r->queue_head == NULL && !r->stopping) pthread_cond_wait(&r->cond, &r->mu);
        if (r->queue_head == NULL) break; /* stopping and nothing left to claim */
        if (r->stopping) break;           /* queued jobs are answered by readers_stop */
        read_job *j = r->queue_head;
        r->queue_head = j->next;
        if (r->queue_head == NULL) r->queue_tail = NULL;
        r->queue_count--;
        j->next = NULL;
        pthread_mutex_unlock(&r->mu);

        run_job(r, j);

        pthread_mutex_lock(&r->mu);
        if (r->done_tail) r->done_tail->next = j;
        else r->done_head = j;
        r->done_tail = j;
        uv_async_send(&r->async);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void async_cb(uv_async_t *h) {
    readers *r = h->data;
    pthread_mutex_lock(&r->mu);
    read_job *list = r->done_head;
    r->done_head = r->done_tail = NULL;
    pthread_mutex_unlock(&r->mu);
    while (list != NULL) {
        read_job *next = list->next;
        list->next = NULL;
        r->done(r->done_ctx, list);
        list = next;
    }
}

int readers_start(uv_loop_t *loop, qs_db *db, uint32_t threads_count, readers_done_fn done, void *done_ctx,
                  readers **out) {
    QUIVER_ASSERT(loop != NULL && db != NULL && done != NULL && out != NULL);
    QUIVER_ASSERT(threads_count >= 1);
    readers *r = calloc(1, sizeof(*r));
    if (r == NULL) QUIVER_FATAL("out of memory (readers)");
    r->loop = loop;
    r->db = db;
    r->done = done;
    r->done_ctx = done_ctx;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->threads = calloc(threads_count, sizeof(pthread_t));
    if (r->threads == NULL) QUIVER_FATAL("out of memory (readers)");
    uv_async_init(loop, &r->async, async_cb);
    r->async.data = r;
    /* Exactly this stack on every reader: the query engine's stack budget
     * (QUIVER_QUERY_STACK_BUDGET_BYTES) then trips at the same depth
     * whatever `ulimit -s` says (common/limits.h). */
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0) rc = pthread_attr_setstacksize(&attr, QUIVER_QUERY_THREAD_STACK_SIZE_BYTES);
    for (uint32_t i = 0; rc == 0 && i < threads_count; i++) {
        rc = pthread_create(&r->threads[i], &attr, reader_main, r);
        if (rc == 0) r->threads_count++;
    }
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        readers_stop(r);
        return -rc;
    }
    *out = r;
    return 0;
}

void readers_set_query_memory_max(readers *r, uint64_t bytes) {
    QUIVER_ASSERT(r != NULL);
    pthread_mutex_lock(&r->mu);
    r->query_memory_max_bytes = bytes;
    pthread_mutex_unlock(&r->mu);
}

bool readers_submit(readers *r, read_job *job) {
    QUIVER_ASSERT(job != NULL && job->next == NULL);
    pthread_mutex_lock(&r->mu);
    if (r->stopping || r->queue_count >= QUIVER_READ_QUEUE_COUNT_MAX) {
        pthread_mutex_unlock(&r->mu);
        return false;
    }
    if (r->queue_tail) r->queue_tail->next = job;
    else r->queue_head = job;
    r->queue_tail = job;
    r->queue_count++;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
    return true;
}

static void async_close_cb(uv_handle_t *h) {
    readers *r = h->data;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    free(r->threads);
    free(r);
}

void readers_stop(readers *r) {
    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->mu);
    for (uint32_t i = 0; i < r->threads_count; i++) pthread_join(r->threads[i], NULL);
    /* Answer what never ran, then deliver everything finished. */
    pthread_mutex_lock(&r->mu);
    read_job *q = r->queue_head;
    r->queue_head = r->queue_tail = NULL;
    r->queue_count = 0;
    while (q != NULL) {
        read_job *next = q->next;
        q->next = NULL;
        reply_buf_clear(&q->out);
        reply_error(&q->out, "ERR server is shutting down");
        if (r->done_tail) r->done_tail->next = q;
        else r->done_head = q;
        r->done_tail = q;
        q = next;
    }
    pthread_mutex_unlock(&r->mu);
    async_cb(&r->async);
    uv_close((uv_handle_t *)&r->async, async_close_cb);
}

/*
 * offload.h -- a small pool of worker threads for the loop thread's work
 * that grows with client input (DESIGN.md 2 and 7a: the loop thread never
 * does unbounded work).
 *
 * Users: admission of long query texts (admission.h), encoding large write
 * results into RESP (router.c) or into forward responses (forward.c),
 * decoding large forward responses (forward.c), returning freed memory to
 * the system (memory.h).  Reads keep their own pool (readers.h): a long
 * read must not delay the admission of another client's write, and the
 * libuv threadpool is raft's (DESIGN.md 2).
 *
 * A job is a struct the caller allocates with an offload_job as its first
 * member: work() runs on a worker thread, then done() on the loop thread,
 * in completion order, through a completion list plus uv_async_send (as
 * readers.c does).  The queue is bounded (OFFLOAD_QUEUE_COUNT_MAX): a full
 * queue refuses the job and the caller decides (do it inline, or answer
 * "busy").
 *
 * The threads are created with QUIVER_QUERY_THREAD_STACK_SIZE_BYTES of
 * stack, like the reader threads: admission parses and plans queries, and
 * the query engine's stack budget must trip at the same depth wherever a
 * text is parsed.
 *
 * Stop: queued jobs that never ran come back with cancelled = true (work()
 * not called); running ones finish; then every done() is called, on the
 * loop thread, before offload_stop returns.  Callers that keep submitting
 * after the stop get false from offload_submit.
 *
 * Thread: offload_start/submit/stop and done() on the loop thread; work()
 * on a pool thread.
 */
#ifndef QUIVER_NODE_OFFLOAD_H
#define QUIVER_NODE_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#define OFFLOAD_THREADS_COUNT_DEFAULT 2 /* two long texts from two clients do not wait for each other */
#define OFFLOAD_THREADS_COUNT_MAX 16
/* Jobs queued, not yet running.  Producers are bounded themselves (one
 * admission per connection at a time, QUIVER_CLIENTS_COUNT_MAX connections;
 * large results of writes in flight); past it submit refuses. */
#define OFFLOAD_QUEUE_COUNT_MAX 65536

typedef struct offload offload;
typedef struct offload_job offload_job;

/* Runs on a pool thread: the job's work, touching only what the job owns
 * (no loop-thread state, no libuv calls). */
typedef void (*offload_work_fn)(offload_job *job);
/* Runs on the loop thread once work() returned (or, with job->cancelled,
 * instead of it, during offload_stop).  The callee owns the job again. */
typedef void (*offload_done_fn)(offload_job *job);

struct offload_job {
    offload_job *next;   /* the pool's lists */
    offload_work_fn work;
    offload_done_fn done;
    bool cancelled;      /* set by offload_stop for a job that never ran */
};

/* Counters for INFO (offload_get_stats). */
typedef struct offload_stats {
    uint32_t threads_count;
    uint32_t queued;           /* waiting for a thread now */
    uint64_t jobs_total;       /* submitted since start */
    uint64_t refused_total;    /* offload_submit returned false */
} offload_stats;

/* Start threads_count (1..OFFLOAD_THREADS_COUNT_MAX) threads with
 * QUIVER_QUERY_THREAD_STACK_SIZE_BYTES of stack.  Returns 0 and *out, or a
 * negative errno (pthread_create / attribute failure; nothing is left
 * running).  Thread: the loop thread. */
int offload_start(uv_loop_t *loop, uint32_t threads_count, offload **out);

/* Queue job (work and done set; ownership moves to the pool until done()
 * is called).  Returns false, the caller keeping ownership, when
 * OFFLOAD_QUEUE_COUNT_MAX jobs already wait or the pool is stopping or o is
 * NULL.  done() is never called from inside this call.  Thread: the loop
 * thread. */
bool offload_submit(offload *o, offload_job *job);

/* Fill *out.  Thread: the loop thread. */
void offload_get_stats(offload *o, offload_stats *out);

/* Stop (see the top): cancel what never ran, join the threads, call every
 * pending done(), then free the pool once the loop has closed its async
 * handle.  o may not be used afterwards.  Thread: the loop thread. */
void offload_stop(offload *o);

#endif

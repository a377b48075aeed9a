/*
 * readers.h -- the reader thread pool (DESIGN.md 2): read queries, graph
 * listings and digests run here, each on its own RocksDB snapshot, never on
 * the loop thread.
 *
 * A job goes in through a bounded queue (QUIVER_READ_QUEUE_COUNT_MAX); a
 * reader thread opens a snapshot view (qs_view_open_snapshot), does the
 * work, encodes the RESP reply itself (so the loop thread only copies
 * bytes), closes the view, and hands the job back through a completion list
 * plus uv_async_send.  The loop thread then calls the pool's done callback
 * for each finished job, in completion order.
 *
 * Trade-off: encoding on the reader thread moves the most expensive part of
 * a big read off the loop thread, at the cost of holding the encoded reply
 * (bounded by the reply buffer cap, job->out.size_max_bytes, which the
 * router sets to the node's largest deliverable reply) instead of the
 * result set.  A reply with much unused capacity is shrunk before it is
 * handed back (reply_buf_shrink).
 *
 * Threads are created with QUIVER_QUERY_THREAD_STACK_SIZE_BYTES of stack
 * (common/limits.h: the query engine's stack check must trip at the same
 * depth on every node).
 *
 * Thread: readers_start/submit/stop on the loop thread; the work on the
 * pool's threads; done callbacks on the loop thread.
 */
#ifndef QUIVER_NODE_READERS_H
#define QUIVER_NODE_READERS_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "../storage/graph.h"
#include "reply.h"
#include "resp.h"

typedef enum read_kind {
    READ_QUERY = 1,   /* GRAPH.QUERY / GRAPH.RO_QUERY read: query_run_read */
    READ_EXPLAIN,     /* GRAPH.EXPLAIN: query_run_read with explain */
    READ_GRAPH_LIST,  /* GRAPH.LIST: qs_graph_list */
    READ_DIGEST,      /* QUIVER.DIGEST: [applied index, qs_graph_digest] */
} read_kind;

typedef struct read_job read_job;
struct read_job {
    read_job *next;
    read_kind kind;
    resp_request req;      /* owns the strings below; freed by the reader once the job ran */
    const char *graph;     /* into req */
    size_t graph_len;
    const char *text;      /* into req; NULL for LIST/DIGEST */
    size_t text_len;
    bool compact;
    bool read_only;        /* GRAPH.RO_QUERY */
    uint64_t timeout_ms;   /* 0: none */
    uint8_t consistency;   /* node_consistency (server.h) the read was served at; counters only */
    /* Stale reads (READ_QUERY): add "Replication lag: N entries" to the
     * statistics, N = known_commit_index - max(applied_index, the
     * snapshot's applied index), or 0.  known_commit_index and
     * applied_index are taken on the loop thread at submission. */
    bool report_lag;
    uint64_t known_commit_index;
    uint64_t applied_index;
    reply_buf out;         /* the reply, filled by the reader */
    void *ctx;             /* the caller's (the reply slot) */
};

typedef struct readers readers;

/* Called on the loop thread for every finished job; the callee owns job
 * (read_job_free).  On shutdown, jobs never run come back with an error
 * reply in out. */
typedef void (*readers_done_fn)(void *ctx, read_job *job);

/* Start threads_count threads reading db.  Returns 0 and *out, or a
 * negative errno (thread creation failed).  Thread: loop. */
int readers_start(uv_loop_t *loop, qs_db *db, uint32_t threads_count, readers_done_fn done, void *done_ctx,
                  readers **out);

/* Cap every read's query memory (query_request.memory_max_bytes;
 * --query-memory-max-bytes); 0: the query engine's default.  Call before
 * the first submit.  Thread: loop. */
void readers_set_query_memory_max(readers *r, uint64_t bytes);

/* Queue a job (ownership moves to the pool).  Returns false, keeping
 * ownership with the caller, when QUIVER_READ_QUEUE_COUNT_MAX jobs already
 * wait or the pool is stopping.  Thread: loop. */
bool readers_submit(readers *r, read_job *job);

/* A fresh job; never NULL (malloc failure aborts). */
read_job *read_job_new(read_kind kind);
void read_job_free(read_job *job);

/* Stop: jobs still queued complete with "-ERR server is shutting down",
 * running ones finish; threads are joined; the async handle is closed and
 * the pool freed once the loop runs its close callback.  Thread: loop. */
void readers_stop(readers *r);

#endif

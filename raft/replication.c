/*
 * replication.c -- Raft for Quiver (contract in replication.h).
 *
 * The moving parts, all on the loop thread:
 *
 *   proposals   repl_propose copies a command into the OPEN batch.  A uv_check
 *               handle (it runs once per loop iteration, right after the poll
 *               phase in which client requests are read) closes the open
 *               batch and hands it to raft_apply: one entry per iteration,
 *               so N clients writing at once cost one fsync and one
 *               AppendEntries round, not N (group commit).  raft 0.22.1
 *               asserts n == 1 in raft_apply, so batching inside one entry
 *               is the only way to batch.  A uv_idle handle is started while
 *               there is work for the check callback, so the loop does not
 *               block in poll with a batch waiting.
 *   bounds      an entry holds at most QUIVER_ENTRY_COMMANDS_COUNT_MAX
 *               commands and entry_size_max_bytes (--max-entry-bytes, 64 MiB
 *               by default; a command that cannot fit alone is refused with
 *               REPL_INVALID before anything is proposed); at most
 *               REPL_ENTRIES_IN_FLIGHT_COUNT_MAX entries are closed or in
 *               flight (proposed, results not all delivered); past that,
 *               repl_propose answers REPL_BUSY.  This also bounds how far the
 *               apply thread can fall behind on a leader.
 *   results     fsm->apply copies the entry into the state machine's queue
 *               (sm_enqueue) and returns 0.  The state machine calls back
 *               (sm_result_fn) for every command in log order; the in-flight
 *               batch with that entry index answers its proposers in order.
 *               The raft_apply callback only matters when it fails:
 *               RAFT_LEADERSHIPLOST (or close) after proposing means nobody
 *               knows whether the entry will commit -> REPL_UNKNOWN_OUTCOME
 *               for every command still unanswered in it.  Retrying with
 *               the same request id is safe: the de-dup table answers with
 *               the first outcome if it did commit.
 *   readiness   a new leader appends a barrier; once it is applied the
 *               leader is "ready" (its state machine has everything the
 *               previous leaders committed).  Linearizable reads use a
 *               shared barrier per batch of waiting reads (DESIGN.md 6) and
 *               then wait until the apply thread reached the last entry
 *               handed over before it.
 *   snapshots   a marker (applied index, term, database uuid).  Before raft
 *               persists it, the apply thread must have applied and flushed
 *               RocksDB up to it (sm_sync), or a restart would skip entries
 *               RocksDB never kept.  fsm->snapshot runs on the loop thread
 *               and 0.22.1 calls snapshot_async right after it, also on the
 *               loop thread (legacy.c), so waiting there would stall every
 *               client for a RocksDB flush.  Instead fsm->snapshot only
 *               builds the marker and notes the index; our snapshot_put
 *               wrapper runs sm_sync on the libuv threadpool and starts the
 *               backend's write when it returns.  Raft keeps applying
 *               meanwhile (it just sees a slower disk).  FSM version 2: a
 *               version 3 FSM would gain nothing on 0.22.1.
 *   failures    raft's I/O goes through thin wrappers around the libuv
 *               backend's append / snapshot_put / set_term / set_vote /
 *               truncate: any error but a cancellation at close is fatal
 *               (QUIVER_FATAL), because 0.22.1 built with NDEBUG would
 *               otherwise drop a failed append silently and stall.  Restart
 *               recovers by replay.  Auto-recovery is off.
 *   stopping    repl_stop only sets a flag; the check callback (never a raft
 *               callback) calls raft_close, whose callback closes the
 *               backend and the state machine, then our handles.
 */
#include "replication.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <xxhash.h>

#include "../common/limits.h"
#include "../common/qassert.h"
#include "../statemachine/result_codec.h"
#include "../statemachine/statemachine.h"

#define REPL_ELECTION_TIMEOUT_MS_DEFAULT 1000
#define REPL_HEARTBEAT_TIMEOUT_MS_DEFAULT 100
#define REPL_SNAPSHOT_MAGIC "QVSNAP\0\1"
#define REPL_SNAPSHOT_BYTES (8 + 8 + 8 + 16 + 8)
#define REPL_ERROR_SIZE_MAX_BYTES 256

static const char repl_unknown_outcome_msg[] =
    "outcome unknown: leadership was lost before the write committed; retry with the same request id is safe";

/* ------------------------------------------------------------------ */
/* Types                                                               */
/* ------------------------------------------------------------------ */

typedef struct repl_cmd {
    sm_command cmd;   /* graph/text point at the copies below */
    char *graph;      /* malloc'd copies */
    char *text;
    repl_reply_fn cb;
    void *ctx;
} repl_cmd;

typedef struct repl_batch {
    struct raft_apply req; /* req.data = the batch */
    repl *owner;
    struct repl_batch *next;
    uint64_t index;        /* entry index once proposed */
    uint32_t count;        /* commands */
    uint32_t capacity;
    uint32_t answered;     /* commands [0, answered) have had their callback */
    size_t size_bytes;     /* encoded size so far */
    repl_cmd *cmds;
    bool proposed;         /* raft_apply returned 0: raft owns req until its callback */
    bool raft_cb_fired;
} repl_batch;

typedef struct repl_batch_list {
    repl_batch *head, *tail;
    uint32_t count;
} repl_batch_list;

/* A reply decided before anything was proposed (errors), given on the next
 * check callback so that no callback runs inside repl_propose. */
typedef struct repl_deferred {
    struct repl_deferred *next;
    repl_status_code status;
    repl_reply_fn reply_cb; /* exactly one of reply_cb / read_cb */
    repl_read_fn read_cb;
    void *ctx;
    char error[REPL_ERROR_SIZE_MAX_BYTES];
} repl_deferred;

typedef struct repl_waiter {
    uint64_t index;
    uint64_t order; /* FIFO among equal indexes */
    repl_read_fn cb;
    void *ctx;
} repl_waiter;

typedef struct repl_read {
    struct repl_read *next;
    repl_read_fn cb;
    void *ctx;
} repl_read;

struct repl {
    uv_loop_t *loop;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    bool raft_initialised, raft_started;
    qs_db *db;
    sm *sm;
    uint64_t node_id;
    char address[REPL_ADDRESS_SIZE_MAX_BYTES];

    /* The libuv backend's methods, wrapped for fail-stop. */
    int (*io_append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[], unsigned,
                     raft_io_append_cb);
    int (*io_snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *, const struct raft_snapshot *,
                           raft_io_snapshot_put_cb);
    int (*io_set_term)(struct raft_io *, raft_term);
    int (*io_set_vote)(struct raft_io *, raft_id);
    int (*io_truncate)(struct raft_io *, raft_index);

    uv_check_t check;
    uv_idle_t idle;
    uv_async_t async; /* the apply thread's wake-up: results to deliver */

    sm_request_id next_id;
    uint64_t rng;

    size_t pending_bytes;     /* encoded bytes of every command not yet answered */
    /* Proposal limits and budgets (repl_config; defaults from limits.h). */
    uint64_t entry_size_max_bytes;   /* largest entry proposed (--max-entry-bytes) */
    uint64_t pending_size_max_bytes; /* pending_bytes bound: REPL_PENDING_ENTRIES_PER_BYTES_BOUND entries */
    uint64_t write_work_max;         /* put into every command proposed (command.h v2) */
    uint64_t query_memory_max_bytes;
    repl_batch *open;         /* accepting commands */
    repl_batch_list closed;   /* full, waiting for room in flight */
    repl_batch_list inflight; /* proposed, ordered by index */
    repl_deferred *deferred_head, *deferred_tail;

    uint64_t last_enqueued_index; /* last entry handed to the state machine */
    uint64_t marker_floor_index;  /* applied index of the snapshot marker restored at start */
    uint64_t final_applied_index; /* what repl_get_info reports once the state machine is closed */

    /* Leadership readiness. */
    struct raft_barrier ready_barrier;
    bool ready_barrier_inflight;
    uint64_t ready_barrier_term;
    uint64_t ready_term; /* term in which our barrier was applied by raft */
    uint64_t ready_index; /* last entry handed to the state machine before that barrier */

    /* Linearizable reads. */
    struct raft_barrier read_barrier;
    bool read_barrier_inflight;
    repl_read *reads_waiting, *reads_waiting_tail; /* for the next barrier */
    repl_read *reads_inflight;                     /* share the current barrier */
    uint32_t reads_count;

    /* Applied-index waiters: min-heap on (index, order). */
    repl_waiter *waiters;
    uint32_t waiter_count;
    uint64_t waiter_order;

    /* Snapshot durability (see the top comment). */
    bool snapshot_sync_pending;      /* set by fsm_snapshot, consumed by the next put */
    uint64_t snapshot_sync_index;
    bool snapshot_work_inflight;     /* repl_stop waits for it before raft_close */

    /* Snapshot markers beyond the database (repl_config). */
    void (*on_checkpoint_needed)(void *ctx, uint64_t marker_index);
    void *checkpoint_ctx;
    repl_checkpoint_need need;      /* set by fsm_restore at start-up */
    bool need_checkpoint;
    bool snapshot_restored;         /* fsm_restore accepted a marker at start-up */
    /* Start-up: an error found inside raft_start's restore. */
    char start_error[REPL_ERROR_SIZE_MAX_BYTES];

    bool stopping, closing;
    int handles_open;
    void (*stop_done)(void *);
    void *stop_ctx;
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static void idle_noop(uv_idle_t *h) { (void)h; }

/* Make sure the check callback runs soon: an active idle handle keeps the
 * loop from blocking in poll. */
static void kick(repl *r) {
    if (r->handles_open != 3 || uv_is_closing((uv_handle_t *)&r->idle)) return;
    if (!uv_is_active((uv_handle_t *)&r->idle)) uv_idle_start(&r->idle, idle_noop);
}

static uint64_t rng_next(repl *r) {
    /* splitmix64 (Steele, Lea, Flood 2014): seeds rand() per command */
    uint64_t z = (r->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t random_u64(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec ^ (uint64_t)getpid() << 32;
    }
    return v;
}

static int64_t wall_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *role_name(struct raft *rf) {
    switch (raft_state(rf)) {
    case RAFT_LEADER: return "leader";
    case RAFT_CANDIDATE: return "candidate";
    default: return "follower";
    }
}

static void not_leader_message(repl *r, char *out, size_t size) {
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&r->raft, &id, &address);
    if (id != 0 && id != r->node_id)
        snprintf(out, size, "not the leader: the leader is node %llu at %s", (unsigned long long)id,
                 address ? address : "?");
    else
        snprintf(out, size, "not the leader: no leader is known (election in progress); retry shortly");
}

static void batch_list_push(repl_batch_list *l, repl_batch *b) {
    b->next = NULL;
    if (l->tail) l->tail->next = b;
    else l->head = b;
    l->tail = b;
    l->count++;
}

static repl_batch *batch_list_pop(repl_batch_list *l) {
    repl_batch *b = l->head;
    if (b == NULL) return NULL;
    l->head = b->next;
    if (l->head == NULL) l->tail = NULL;
    l->count--;
    b->next = NULL;
    return b;
}

static void batch_list_remove(repl_batch_list *l, repl_batch *b) {
    repl_batch **p = &l->head;
    repl_batch *prev = NULL;
    while (*p && *p != b) {
        prev = *p;
        p = &(*p)->next;
    }
    QUIVER_ASSERT(*p == b);
    *p = b->next;
    if (l->tail == b) l->tail = prev;
    l->count--;
    b->next = NULL;
}

static void batch_free(repl_batch *b) {
    for (uint32_t i = 0; i < b->count; i++) {
        free(b->cmds[i].graph);
        free(b->cmds[i].text);
    }
    free(b->cmds);
    free(b);
}

static void defer_reply(repl *r, repl_reply_fn reply_cb, repl_read_fn read_cb, void *ctx, repl_status_code status,
                        const char *error) {
    repl_deferred *d = calloc(1, sizeof *d);
    if (d == NULL) QUIVER_FATAL("out of memory queueing a reply");
    d->status = status;
    d->reply_cb = reply_cb;
    d->read_cb = read_cb;
    d->ctx = ctx;
    snprintf(d->error, sizeof d->error, "%s", error ? error : "");
    if (r->deferred_tail) r->deferred_tail->next = d;
    else r->deferred_head = d;
    r->deferred_tail = d;
    kick(r);
}

/* Take the next unanswered command of b (its bytes leave the pending total). */
static repl_cmd *batch_take(repl_batch *b) {
    QUIVER_ASSERT(b->answered < b->count);
    repl_cmd *c = &b->cmds[b->answered++];
    size_t size = sm_command_encoded_size(&c->cmd);
    QUIVER_ASSERT(b->owner->pending_bytes >= size);
    b->owner->pending_bytes -= size;
    return c;
}

/* Answer every command of b from `answered` on with status and error. */
static void batch_fail_rest(repl_batch *b, repl_status_code status, const char *error) {
    while (b->answered < b->count) {
        repl_cmd *c = batch_take(b);
        c->cb(c->ctx, status, NULL, 0, error);
    }
}

/* ------------------------------------------------------------------ */
/* Applied-index waiters (min-heap)                                    */
/* ------------------------------------------------------------------ */

static bool waiter_less(const repl_waiter *a, const repl_waiter *b) {
    return a->index < b->index || (a->index == b->index && a->order < b->order);
}

static void waiter_push(repl *r, uint64_t index, repl_read_fn cb, void *ctx) {
    QUIVER_ASSERT(r->waiter_count < QUIVER_READ_QUEUE_COUNT_MAX);
    uint32_t i = r->waiter_count++;
    repl_waiter w = {index, r->waiter_order++, cb, ctx};
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!waiter_less(&w, &r->waiters[parent])) break;
        r->waiters[i] = r->waiters[parent];
        i = parent;
    }
    r->waiters[i] = w;
}

static repl_waiter waiter_pop(repl *r) {
    QUIVER_ASSERT(r->waiter_count > 0);
    repl_waiter top = r->waiters[0];
    repl_waiter last = r->waiters[--r->waiter_count];
    uint32_t i = 0, n = r->waiter_count;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && waiter_less(&r->waiters[c + 1], &r->waiters[c])) c++;
        if (!waiter_less(&r->waiters[c], &last)) break;
        r->waiters[i] = r->waiters[c];
        i = c;
    }
    if (n > 0) r->waiters[i] = last;
    return top;
}

static void waiters_run(repl *r) {
    uint64_t applied = sm_applied_index(r->sm);
    while (r->waiter_count > 0 && r->waiters[0].index <= applied) {
        repl_waiter w = waiter_pop(r);
        w.cb(w.ctx, REPL_OK, w.index, NULL);
    }
}

/* ------------------------------------------------------------------ */
/* Fail-stop wrappers around the libuv backend's I/O                   */
/* ------------------------------------------------------------------ */

static repl *repl_of_io(struct raft_io *io) {
    struct raft *rf = io->data;
    QUIVER_ASSERT(rf != NULL);
    return rf->data;
}

typedef struct wrapped_append {
    struct raft_io_append inner;
    struct raft_io_append *outer;
} wrapped_append;

static void wrapped_append_cb(struct raft_io_append *inner, int status) {
    wrapped_append *w = inner->data;
    struct raft_io_append *outer = w->outer;
    free(w);
    if (status != 0 && status != RAFT_CANCELED)
        QUIVER_FATAL("raft log append failed: %s (%s); stopping so that a restart recovers by replay",
                     raft_strerror(status), outer ? "log write" : "?");
    outer->cb(outer, status);
}

static int wrap_append(struct raft_io *io, struct raft_io_append *req, const struct raft_entry entries[], unsigned n,
                       raft_io_append_cb cb) {
    repl *r = repl_of_io(io);
    wrapped_append *w = calloc(1, sizeof *w);
    if (w == NULL) QUIVER_FATAL("out of memory appending to the raft log");
    w->outer = req;
    req->cb = cb;
    w->inner.data = w;
    int rv = r->io_append(io, &w->inner, entries, n, wrapped_append_cb);
    if (rv != 0) QUIVER_FATAL("raft log append failed to start: %s (%s)", raft_strerror(rv), io->errmsg);
    return 0;
}

typedef struct wrapped_put {
    struct raft_io_snapshot_put inner;
    struct raft_io_snapshot_put *outer;
} wrapped_put;

static void wrapped_put_cb(struct raft_io_snapshot_put *inner, int status) {
    wrapped_put *w = inner->data;
    struct raft_io_snapshot_put *outer = w->outer;
    free(w);
    if (status != 0 && status != RAFT_CANCELED)
        QUIVER_FATAL("raft snapshot write failed: %s; stopping so that a restart recovers by replay",
                     raft_strerror(status));
    outer->cb(outer, status);
}

static void start_backend_put(repl *r, unsigned trailing, struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb) {
    wrapped_put *w = calloc(1, sizeof *w);
    if (w == NULL) QUIVER_FATAL("out of memory writing a raft snapshot");
    w->outer = req;
    req->cb = cb;
    w->inner.data = w;
    int rv = r->io_snapshot_put(&r->io, trailing, &w->inner, snapshot, wrapped_put_cb);
    if (rv != 0) QUIVER_FATAL("raft snapshot write failed to start: %s (%s)", raft_strerror(rv), r->io.errmsg);
}

static void marker_seal(repl *r, uint8_t *p);

/* A snapshot we took: make RocksDB durable up to it on the threadpool,
 * then let the backend write the marker. */
typedef struct snapshot_sync_work {
    uv_work_t work;
    repl *r;
    sm *sm;
    uint64_t index;
    unsigned trailing;
    struct raft_io_snapshot_put *req;
    const struct raft_snapshot *snapshot;
    raft_io_snapshot_put_cb cb;
} snapshot_sync_work;

static void snapshot_sync_run(uv_work_t *work) {
    snapshot_sync_work *w = work->data;
    sm_sync(w->sm, w->index); /* threadpool thread: the loop keeps running */
}

static void snapshot_sync_done(uv_work_t *work, int status) {
    snapshot_sync_work *w = work->data;
    repl *r = w->r;
    QUIVER_ASSERT(status == 0); /* never cancelled: we do not call uv_cancel */
    QUIVER_ASSERT(sm_applied_index(r->sm) >= w->index);
    r->snapshot_work_inflight = false;
    /* Our own marker (fsm_snapshot's raft_malloc'd buffer, not yet written):
     * seal it with the cluster id the flushed state has. */
    QUIVER_ASSERT(w->snapshot->n_bufs == 1 && w->snapshot->bufs[0].len == REPL_SNAPSHOT_BYTES);
    marker_seal(r, (uint8_t *)w->snapshot->bufs[0].base);
    start_backend_put(r, w->trailing, w->req, w->snapshot, w->cb);
    free(w);
    kick(r); /* a repl_stop may be waiting for this */
}

static int wrap_snapshot_put(struct raft_io *io, unsigned trailing, struct raft_io_snapshot_put *req,
                             const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb) {
    repl *r = repl_of_io(io);
    if (!r->snapshot_sync_pending) {
        /* A snapshot installed from a leader: nothing of ours to flush. */
        start_backend_put(r, trailing, req, snapshot, cb);
        return 0;
    }
    r->snapshot_sync_pending = false;
    QUIVER_ASSERT(!r->snapshot_work_inflight);
    snapshot_sync_work *w = calloc(1, sizeof *w);
    if (w == NULL) QUIVER_FATAL("out of memory taking a snapshot");
    w->work.data = w;
    w->r = r;
    w->sm = r->sm;
    w->index = r->snapshot_sync_index;
    w->trailing = trailing;
    w->req = req;
    w->snapshot = snapshot;
    w->cb = cb;
    r->snapshot_work_inflight = true;
    int rv = uv_queue_work(r->loop, &w->work, snapshot_sync_run, snapshot_sync_done);
    if (rv != 0) QUIVER_FATAL("cannot queue the snapshot flush: %s", uv_strerror(rv));
    return 0;
}

static int wrap_set_term(struct raft_io *io, raft_term term) {
    int rv = repl_of_io(io)->io_set_term(io, term);
    if (rv != 0) QUIVER_FATAL("raft could not persist term %llu: %s (%s)", term, raft_strerror(rv), io->errmsg);
    return 0;
}

static int wrap_set_vote(struct raft_io *io, raft_id id) {
    int rv = repl_of_io(io)->io_set_vote(io, id);
    if (rv != 0) QUIVER_FATAL("raft could not persist its vote for %llu: %s (%s)", id, raft_strerror(rv), io->errmsg);
    return 0;
}

static int wrap_truncate(struct raft_io *io, raft_index index) {
    int rv = repl_of_io(io)->io_truncate(io, index);
    if (rv != 0) QUIVER_FATAL("raft could not truncate its log at %llu: %s (%s)", index, raft_strerror(rv), io->errmsg);
    return 0;
}

/* The apply thread's wake-up (any thread): uv_async_send is thread-safe
 * and coalesces. */
static void sm_wake(void *ctx) {
    repl *r = ctx;
    uv_async_send(&r->async);
}

static void async_cb(uv_async_t *h) {
    repl *r = h->data;
    if (r->sm != NULL) sm_deliver(r->sm);
    kick(r); /* the applied index moved: waiters may be satisfied */
}

/* ------------------------------------------------------------------ */
/* The state machine as raft sees it                                   */
/* ------------------------------------------------------------------ */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result) {
    repl *r = fsm->data;
    /* raft bumps last_applied after apply returns (RAFT-NOTES.md, checked
     * on 0.22.1 by test_raft_single). */
    uint64_t index = raft_last_applied(&r->raft) + 1;
    if (index <= r->last_enqueued_index) {
        /* Only after a marker at or below what we already handed over was
         * restored (fsm_restore): the state machine has these entries. */
        QUIVER_ASSERT(r->marker_floor_index > 0);
        *result = NULL;
        return 0;
    }
    if (buf->len > QUIVER_ENTRY_SIZE_MAX_BYTES)
        QUIVER_FATAL("raft entry at index %" PRIu64 " is %zu bytes, over the %llu-byte limit", index, buf->len,
                     (unsigned long long)QUIVER_ENTRY_SIZE_MAX_BYTES);
    sm_enqueue(r->sm, index, buf->base, buf->len);
    r->last_enqueued_index = index;
    *result = NULL;
    return 0; /* never non-zero: raft would stall and retry forever */
}

/* The cluster id (statemachine.h) and the checksum of a marker.  Called
 * again once sm_sync returned, because the cluster id may come from a
 * command the apply thread had not applied when fsm_snapshot ran. */
static void marker_seal(repl *r, uint8_t *p) {
    sm_cluster_id(r->sm, p + 24);
    uint64_t sum = XXH3_64bits(p, 40);
    for (int i = 0; i < 8; i++) p[40 + i] = (uint8_t)(sum >> (56 - 8 * i));
}

/* Marker: magic, applied index, term, cluster id, XXH3-64 of the rest. */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs) {
    repl *r = fsm->data;
    uint64_t snapshot_index = raft_last_applied(&r->raft);
    /* DESIGN.md 5: RocksDB durable up to the snapshot before raft persists
     * it.  The wait happens in wrap_snapshot_put, off the loop thread; raft
     * calls snapshot_put right after this returns (legacy.c). */
    /* The last command entry <= snapshot_index (or, right after a restore,
     * what the restored marker covered). */
    uint64_t applied = r->last_enqueued_index > r->marker_floor_index ? r->last_enqueued_index : r->marker_floor_index;
    QUIVER_ASSERT(applied <= snapshot_index);
    QUIVER_ASSERT(!r->snapshot_sync_pending);
    r->snapshot_sync_pending = true;
    r->snapshot_sync_index = applied;
    struct raft_buffer *b = raft_malloc(sizeof *b);
    uint8_t *p = raft_malloc(REPL_SNAPSHOT_BYTES);
    if (b == NULL || p == NULL) QUIVER_FATAL("out of memory taking a snapshot");
    memcpy(p, REPL_SNAPSHOT_MAGIC, 8);
    uint64_t term = raft_current_term(&r->raft);
    for (int i = 0; i < 8; i++) p[8 + i] = (uint8_t)(applied >> (56 - 8 * i));
    for (int i = 0; i < 8; i++) p[16 + i] = (uint8_t)(term >> (56 - 8 * i));
    marker_seal(r, p);
    b->base = p;
    b->len = REPL_SNAPSHOT_BYTES;
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static uint64_t load_be64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static bool bytes_zero(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0) return false;
    return true;
}

/* A marker restored at start-up (raft_start loads the newest snapshot) or
 * installed from a leader at run time.  Its cluster id must be ours: equal
 * to the database's, or zero on either side (no command applied yet when
 * it was taken / here), or -- for directories written before markers
 * carried the cluster id -- this database's own uuid. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf) {
    repl *r = fsm->data;
    char msg[REPL_ERROR_SIZE_MAX_BYTES] = "";
    const uint8_t *p = buf->base;
    uint8_t cluster[16], node_uuid[16];
    bool have_cluster = sm_cluster_id(r->sm, cluster);
    qs_db_uuid(r->db, node_uuid);
    uint64_t applied_here = sm_applied_index(r->sm);
    uint64_t marker_index = 0;
    if (buf->len != REPL_SNAPSHOT_BYTES || memcmp(p, REPL_SNAPSHOT_MAGIC, 8) != 0 ||
        XXH3_64bits(p, 40) != load_be64(p + 40)) {
        snprintf(msg, sizeof msg,
                 "the raft snapshot in the raft directory is not a Quiver snapshot marker (%zu bytes); "
                 "the directory is corrupt or belongs to another program",
                 buf->len);
    } else if (have_cluster && !bytes_zero(p + 24, 16) && memcmp(p + 24, cluster, 16) != 0 &&
               memcmp(p + 24, node_uuid, 16) != 0) {
        snprintf(msg, sizeof msg,
                 "the raft snapshot belongs to another cluster (cluster id differs): the raft directory and the "
                 "database directory do not belong together");
    } else if ((marker_index = load_be64(p + 8)) > applied_here && marker_index > r->last_enqueued_index) {
        if (r->raft_started) {
            /* Run time: a leader's marker beyond our database.  raft has
             * persisted it; the restart fetches a checkpoint (catchup.h). */
            fprintf(stderr,
                    "quiver: the leader sent a raft snapshot at index %" PRIu64 " but this node's database has applied "
                    "only %" PRIu64 ": restarting to copy a checkpoint from a peer\n",
                    marker_index, applied_here);
            if (r->on_checkpoint_needed != NULL) r->on_checkpoint_needed(r->checkpoint_ctx, marker_index);
            QUIVER_FATAL("a raft snapshot at index %" PRIu64 " is beyond this node's database (applied %" PRIu64
                         "); restart the node to copy a checkpoint from a peer",
                         marker_index, applied_here);
        }
        r->need_checkpoint = true;
        r->need.marker_index = marker_index;
        memcpy(r->need.cluster_id, p + 24, 16);
        snprintf(msg, sizeof msg,
                 "the raft snapshot covers index %" PRIu64 " but the database has applied only %" PRIu64
                 ": a checkpoint must be copied from a peer",
                 marker_index, applied_here);
    }
    if (msg[0] != 0) {
        if (r->raft_started) QUIVER_FATAL("%s", msg); /* a snapshot installed at run time */
        snprintf(r->start_error, sizeof r->start_error, "%s", msg);
        return RAFT_CORRUPT;
    }
    if (r->raft_started && marker_index > applied_here) {
        /* Entries up to the marker are queued here already: let the apply
         * thread finish them (bounded by the queue) so that the state
         * machine reflects the marker when raft says it does. */
        sm_sync(r->sm, marker_index);
    }
    if (!r->raft_started) r->snapshot_restored = true;
    /* Entries up to the marker were applied (and made durable) before it
     * was written; later markers must not claim less. */
    if (marker_index > r->last_enqueued_index) r->marker_floor_index = marker_index;
    else if (r->marker_floor_index == 0) r->marker_floor_index = marker_index ? marker_index : 1;
    raft_free(buf->base); /* restore owns the buffer on success */
    return 0;
}

/* ------------------------------------------------------------------ */
/* Results from the state machine                                      */
/* ------------------------------------------------------------------ */

static void batch_maybe_free(repl *r, repl_batch *b) {
    (void)r;
    if (b->answered == b->count && (!b->proposed || b->raft_cb_fired)) batch_free(b);
}

static repl_batch *inflight_find(repl *r, uint64_t index) {
    for (repl_batch *b = r->inflight.head; b; b = b->next)
        if (b->index == index) return b;
    return NULL;
}

static void on_result(void *ctx, sm_request_id id, uint64_t index, query_result *res) {
    repl *r = ctx;
    repl_batch *b = inflight_find(r, index);
    if (b == NULL) {
        /* Another leader's entry, a replayed one, or a batch already
         * answered with REPL_UNKNOWN_OUTCOME: nobody here is waiting. */
        query_result_free(res);
        return;
    }
    bool whole_entry_failed = id.origin == 0 && id.seq == 0;
    if (whole_entry_failed) {
        while (b->answered < b->count) {
            repl_cmd *c = batch_take(b);
            query_result *copy = sm_result_error(res->status, res->error ? res->error : "entry failed");
            if (copy == NULL) QUIVER_FATAL("out of memory");
            c->cb(c->ctx, REPL_OK, copy, index, NULL);
        }
        query_result_free(res);
    } else if (b->answered < b->count && sm_request_id_equal(b->cmds[b->answered].cmd.request_id, id)) {
        repl_cmd *c = batch_take(b);
        c->cb(c->ctx, REPL_OK, res, index, NULL);
    } else {
        /* The index holds an entry that is not ours: ours was overwritten
         * after a leadership change the raft callback has not reported yet. */
        query_result_free(res);
        batch_fail_rest(b, REPL_UNKNOWN_OUTCOME, repl_unknown_outcome_msg);
    }
    if (b->answered == b->count) {
        batch_list_remove(&r->inflight, b);
        batch_maybe_free(r, b);
        kick(r); /* room in flight: a closed batch may go */
    }
}

static void apply_cb(struct raft_apply *req, int status, void *result) {
    (void)result;
    repl_batch *b = req->data;
    repl *r = b->owner;
    b->raft_cb_fired = true;
    if (status != 0 && b->answered < b->count) {
        /* Proposed, then leadership lost or raft closed: it may or may not
         * commit under the next leader. */
        batch_fail_rest(b, REPL_UNKNOWN_OUTCOME, repl_unknown_outcome_msg);
        batch_list_remove(&r->inflight, b);
        kick(r);
    }
    batch_maybe_free(r, b);
}

/* ------------------------------------------------------------------ */
/* Proposing                                                           */
/* ------------------------------------------------------------------ */

sm_request_id repl_next_request_id(repl *r) {
    sm_request_id id = r->next_id;
    r->next_id.seq++;
    return id;
}

static bool batch_room(const repl *r) {
    return r->closed.count + r->inflight.count < REPL_ENTRIES_IN_FLIGHT_COUNT_MAX;
}

static repl_batch *batch_new(repl *r) {
    repl_batch *b = calloc(1, sizeof *b);
    if (b == NULL) QUIVER_FATAL("out of memory starting a batch");
    b->owner = r;
    b->req.data = b;
    b->size_bytes = SM_ENTRY_OVERHEAD_BYTES;
    return b;
}

int repl_propose(repl *r, const sm_command *cmd, repl_reply_fn cb, void *ctx) {
    QUIVER_ASSERT(r != NULL && cmd != NULL && cb != NULL);
    char msg[REPL_ERROR_SIZE_MAX_BYTES];
    if (r->stopping) {
        defer_reply(r, cb, NULL, ctx, REPL_SHUTTING_DOWN, "the node is shutting down");
        return 0;
    }
    int rc = sm_command_check(cmd);
    if (rc != SM_CODEC_OK) {
        snprintf(msg, sizeof msg, "write refused: %s", sm_codec_strerror(rc));
        defer_reply(r, cb, NULL, ctx, REPL_INVALID, msg);
        return 0;
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        not_leader_message(r, msg, sizeof msg);
        defer_reply(r, cb, NULL, ctx, REPL_NOT_LEADER, msg);
        return 0;
    }
    size_t size = sm_command_encoded_size(cmd);
    if (sm_entry_padded_size(SM_ENTRY_OVERHEAD_BYTES + size) > r->entry_size_max_bytes) {
        /* Refused before the log: an entry this big would stall every
         * replica's loop while it is copied and sent (issue 7). */
        snprintf(msg, sizeof msg,
                 "ERR write of %zu bytes exceeds the largest log entry this node proposes (%" PRIu64
                 " bytes, --max-entry-bytes); nothing was applied",
                 size, r->entry_size_max_bytes);
        defer_reply(r, cb, NULL, ctx, REPL_INVALID, msg);
        return 0;
    }
    if (r->pending_bytes + size > r->pending_size_max_bytes && r->pending_bytes > 0) {
        defer_reply(r, cb, NULL, ctx, REPL_BUSY, "too many bytes of writes in flight; retry");
        return 0;
    }
    if (r->open != NULL && (r->open->count == QUIVER_ENTRY_COMMANDS_COUNT_MAX ||
                            sm_entry_padded_size(r->open->size_bytes + size) > r->entry_size_max_bytes)) {
        if (!batch_room(r)) {
            defer_reply(r, cb, NULL, ctx, REPL_BUSY, "too many writes in flight; retry");
            return 0;
        }
        batch_list_push(&r->closed, r->open);
        r->open = NULL;
    }
    if (r->open == NULL) r->open = batch_new(r); /* bounded by the check above */
    repl_batch *b = r->open;
    if (b->count == b->capacity) {
        uint32_t cap = b->capacity ? b->capacity * 2 : 16;
        if (cap > QUIVER_ENTRY_COMMANDS_COUNT_MAX) cap = QUIVER_ENTRY_COMMANDS_COUNT_MAX;
        repl_cmd *n = realloc(b->cmds, cap * sizeof *n);
        if (n == NULL) QUIVER_FATAL("out of memory growing a batch");
        b->cmds = n;
        b->capacity = cap;
    }
    repl_cmd *c = &b->cmds[b->count];
    memset(c, 0, sizeof *c);
    c->graph = malloc(cmd->graph.len + 1);
    c->text = malloc(cmd->text.len + 1);
    if (c->graph == NULL || c->text == NULL) QUIVER_FATAL("out of memory copying a command");
    memcpy(c->graph, cmd->graph.ptr, cmd->graph.len);
    if (cmd->text.len) memcpy(c->text, cmd->text.ptr, cmd->text.len);
    c->cmd = *cmd;
    c->cmd.graph.ptr = c->graph;
    c->cmd.text.ptr = c->text;
    c->cmd.timestamp_ms = wall_clock_ms();
    c->cmd.seed = rng_next(r);
    /* The leader's budgets travel in the entry: every replica applies the
     * write with these, whatever its own flags say (command.h). */
    c->cmd.work_max = r->write_work_max;
    c->cmd.memory_max_bytes = r->query_memory_max_bytes;
    c->cb = cb;
    c->ctx = ctx;
    b->count++;
    b->size_bytes += size;
    r->pending_bytes += size;
    kick(r);
    return 0;
}

/* Hand one batch to raft; when raft refuses, its commands are answered and it is freed. */
static void batch_propose(repl *r, repl_batch *b) {
    sm_command *cmds = malloc(b->count * sizeof *cmds);
    if (cmds == NULL) QUIVER_FATAL("out of memory encoding an entry");
    for (uint32_t i = 0; i < b->count; i++) cmds[i] = b->cmds[i].cmd;
    size_t len = 0;
    int rc = sm_entry_size(cmds, b->count, &len);
    QUIVER_ASSERT(rc == SM_CODEC_OK); /* every command was checked in repl_propose */
    QUIVER_ASSERT(len == sm_entry_padded_size(b->size_bytes));
    struct raft_buffer buf;
    buf.base = raft_malloc(len);
    if (buf.base == NULL) QUIVER_FATAL("out of memory proposing an entry of %zu bytes", len);
    buf.len = len;
    rc = sm_entry_encode_into(cmds, b->count, buf.base, len); /* straight into raft's buffer */
    QUIVER_ASSERT(rc == SM_CODEC_OK);
    free(cmds);
    /* The texts live on in the entry; the batch only needs ids, lengths
     * (pending_bytes) and callbacks from here on. */
    for (uint32_t i = 0; i < b->count; i++) {
        free(b->cmds[i].text);
        b->cmds[i].text = NULL;
        b->cmds[i].cmd.text.ptr = NULL;
    }
    int rv = raft_apply(&r->raft, &b->req, &buf, 1, apply_cb);
    if (rv != 0) {
        /* The errors that reach here (not leader, no space, no memory) come
         * before raft frees the submitted buffer, so it is still ours.  (raft
         * 0.22.1 frees it itself when the backend refuses the append, but
         * our append wrapper aborts first: test_raft_notes.c.) */
        raft_free(buf.base);
        char msg[REPL_ERROR_SIZE_MAX_BYTES];
        repl_status_code status = REPL_BUSY;
        if (rv == RAFT_NOTLEADER) {
            not_leader_message(r, msg, sizeof msg);
            status = REPL_NOT_LEADER;
        } else {
            snprintf(msg, sizeof msg, "raft refused the write: %s; retry", raft_strerror(rv));
        }
        batch_fail_rest(b, status, msg);
        batch_free(b);
        return;
    }
    b->proposed = true;
    b->index = b->req.index;
    QUIVER_ASSERT(r->inflight.tail == NULL || r->inflight.tail->index < b->index);
    batch_list_push(&r->inflight, b);
}

static void flush_batches(repl *r) {
    if (r->open != NULL && r->open->count > 0 && batch_room(r)) {
        batch_list_push(&r->closed, r->open);
        r->open = NULL;
    }
    while (r->closed.head != NULL && r->inflight.count < REPL_ENTRIES_IN_FLIGHT_COUNT_MAX) {
        repl_batch *b = batch_list_pop(&r->closed);
        batch_propose(r, b);
    }
}

/* ------------------------------------------------------------------ */
/* Barriers: readiness and linearizable reads                          */
/* ------------------------------------------------------------------ */

static void ready_barrier_cb(struct raft_barrier *req, int status) {
    repl *r = req->data;
    r->ready_barrier_inflight = false;
    if (status == 0) {
        r->ready_term = r->ready_barrier_term;
        r->ready_index = r->last_enqueued_index;
    }
    kick(r);
}

static void read_barrier_cb(struct raft_barrier *req, int status) {
    repl *r = req->data;
    r->read_barrier_inflight = false;
    repl_read *list = r->reads_inflight;
    r->reads_inflight = NULL;
    while (list) {
        repl_read *rd = list;
        list = rd->next;
        r->reads_count--;
        if (status == 0) {
            /* Everything before the barrier went to the state machine;
             * the read may run once the apply thread has it. */
            waiter_push(r, r->last_enqueued_index, rd->cb, rd->ctx);
        } else {
            defer_reply(r, NULL, rd->cb, rd->ctx, REPL_UNKNOWN_OUTCOME,
                        "leadership was lost while confirming it for a read; retry");
        }
        free(rd);
    }
    kick(r);
}

int repl_read_barrier(repl *r, repl_read_fn cb, void *ctx) {
    QUIVER_ASSERT(r != NULL && cb != NULL);
    char msg[REPL_ERROR_SIZE_MAX_BYTES];
    if (r->stopping) {
        defer_reply(r, NULL, cb, ctx, REPL_SHUTTING_DOWN, "the node is shutting down");
        return 0;
    }
    if (raft_state(&r->raft) != RAFT_LEADER) {
        not_leader_message(r, msg, sizeof msg);
        defer_reply(r, NULL, cb, ctx, REPL_NOT_LEADER, msg);
        return 0;
    }
    if (r->reads_count + r->waiter_count >= QUIVER_READ_QUEUE_COUNT_MAX) {
        defer_reply(r, NULL, cb, ctx, REPL_BUSY, "too many reads waiting; retry");
        return 0;
    }
    repl_read *rd = calloc(1, sizeof *rd);
    if (rd == NULL) QUIVER_FATAL("out of memory queueing a read");
    rd->cb = cb;
    rd->ctx = ctx;
    if (r->reads_waiting_tail) r->reads_waiting_tail->next = rd;
    else r->reads_waiting = rd;
    r->reads_waiting_tail = rd;
    r->reads_count++;
    kick(r);
    return 0;
}

int repl_wait_applied(repl *r, uint64_t index, repl_read_fn cb, void *ctx) {
    QUIVER_ASSERT(r != NULL && cb != NULL);
    if (r->stopping) {
        defer_reply(r, NULL, cb, ctx, REPL_SHUTTING_DOWN, "the node is shutting down");
        return 0;
    }
    if (r->reads_count + r->waiter_count >= QUIVER_READ_QUEUE_COUNT_MAX) {
        defer_reply(r, NULL, cb, ctx, REPL_BUSY, "too many reads waiting; retry");
        return 0;
    }
    waiter_push(r, index, cb, ctx);
    kick(r);
    return 0;
}

static void barriers_run(repl *r) {
    bool leader = raft_state(&r->raft) == RAFT_LEADER;
    uint64_t term = raft_current_term(&r->raft);
    if (leader && r->ready_term != term && !r->ready_barrier_inflight) {
        r->ready_barrier.data = r;
        r->ready_barrier_term = term;
        if (raft_barrier(&r->raft, &r->ready_barrier, ready_barrier_cb) == 0) r->ready_barrier_inflight = true;
    }
    if (r->reads_waiting == NULL || r->read_barrier_inflight) return;
    if (!leader) {
        char msg[REPL_ERROR_SIZE_MAX_BYTES];
        not_leader_message(r, msg, sizeof msg);
        while (r->reads_waiting) {
            repl_read *rd = r->reads_waiting;
            r->reads_waiting = rd->next;
            r->reads_count--;
            defer_reply(r, NULL, rd->cb, rd->ctx, REPL_NOT_LEADER, msg);
            free(rd);
        }
        r->reads_waiting_tail = NULL;
        return;
    }
    r->read_barrier.data = r;
    if (raft_barrier(&r->raft, &r->read_barrier, read_barrier_cb) == 0) {
        r->read_barrier_inflight = true;
        r->reads_inflight = r->reads_waiting;
        r->reads_waiting = r->reads_waiting_tail = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* The per-iteration callback                                          */
/* ------------------------------------------------------------------ */

static void run_deferred(repl *r) {
    /* Replies queued by callbacks run here join the list and run too. */
    while (r->deferred_head) {
        repl_deferred *d = r->deferred_head;
        r->deferred_head = d->next;
        if (r->deferred_head == NULL) r->deferred_tail = NULL;
        if (d->reply_cb) d->reply_cb(d->ctx, d->status, NULL, 0, d->error);
        else d->read_cb(d->ctx, d->status, 0, d->error);
        free(d);
    }
}

static void start_close(repl *r);

static void check_cb(uv_check_t *h) {
    repl *r = h->data;
    if (r->closing) {
        run_deferred(r);
        uv_idle_stop(&r->idle);
        return;
    }
    if (r->stopping) {
        start_close(r);
        if (!r->closing) { /* waiting for a snapshot flush; it kicks us when done */
            run_deferred(r);
            uv_idle_stop(&r->idle);
        }
        return;
    }
    flush_batches(r);
    barriers_run(r);
    waiters_run(r);
    run_deferred(r);
    if (r->deferred_head == NULL && (r->open == NULL || r->open->count == 0)) uv_idle_stop(&r->idle);
}

/* ------------------------------------------------------------------ */
/* Start                                                               */
/* ------------------------------------------------------------------ */

static int ensure_dir(const char *dir, char *err, size_t err_size) {
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, err_size, "raft directory %s exists but is not a directory", dir);
            return -1;
        }
        return 0;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, err_size, "cannot create raft directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

static void on_raft_closed(struct raft *rf);
static void close_handles(repl *r);

int repl_start(uv_loop_t *loop, const repl_config *cfg, qs_db *db, repl **out, char *err, size_t err_size_bytes) {
    QUIVER_ASSERT(loop != NULL && cfg != NULL && db != NULL && out != NULL && err != NULL);
    if (cfg->node_id == 0 || cfg->address == NULL || cfg->dir == NULL || cfg->peer_count == 0 ||
        cfg->peers == NULL) {
        snprintf(err, err_size_bytes, "raft configuration incomplete: node id, address, directory and peers are needed");
        return -1;
    }
    if (cfg->peer_count > REPL_PEERS_COUNT_MAX) {
        snprintf(err, err_size_bytes, "too many raft peers: %u (at most %d)", cfg->peer_count, REPL_PEERS_COUNT_MAX);
        return -1;
    }
    if (strlen(cfg->address) >= REPL_ADDRESS_SIZE_MAX_BYTES) {
        snprintf(err, err_size_bytes, "raft address too long: %s", cfg->address);
        return -1;
    }
    bool self_found = false;
    for (uint32_t i = 0; i < cfg->peer_count; i++) {
        if (cfg->peers[i].id == 0 || memchr(cfg->peers[i].address, 0, sizeof cfg->peers[i].address) == NULL) {
            snprintf(err, err_size_bytes, "raft peer %u has id 0 or an unterminated address", i);
            return -1;
        }
        if (cfg->peers[i].id == cfg->node_id) self_found = true;
    }
    if (!self_found) {
        snprintf(err, err_size_bytes, "this node's id %" PRIu64 " is not in the raft peer list", cfg->node_id);
        return -1;
    }
    if (ensure_dir(cfg->dir, err, err_size_bytes) != 0) return -1;

    repl *r = calloc(1, sizeof *r);
    if (r == NULL) {
        snprintf(err, err_size_bytes, "out of memory starting raft");
        return -1;
    }
    r->loop = loop;
    r->db = db;
    r->node_id = cfg->node_id;
    r->entry_size_max_bytes =
        cfg->entry_size_max_bytes ? cfg->entry_size_max_bytes : QUIVER_ENTRY_PROPOSE_SIZE_MAX_BYTES_DEFAULT;
    if (r->entry_size_max_bytes > QUIVER_ENTRY_SIZE_MAX_BYTES) r->entry_size_max_bytes = QUIVER_ENTRY_SIZE_MAX_BYTES;
    r->pending_size_max_bytes = REPL_PENDING_SIZE_MAX_ENTRIES * r->entry_size_max_bytes;
    /* 0: the default; UINT64_MAX: no budget, which a command says with 0. */
    r->write_work_max = cfg->write_work_max == 0            ? QUIVER_WRITE_WORK_MAX_DEFAULT
                        : cfg->write_work_max == UINT64_MAX ? 0
                                                            : cfg->write_work_max;
    r->query_memory_max_bytes = cfg->query_memory_max_bytes;
    r->on_checkpoint_needed = cfg->on_checkpoint_needed;
    r->checkpoint_ctx = cfg->checkpoint_ctx;
    snprintf(r->address, sizeof r->address, "%s", cfg->address);
    r->next_id.origin = random_u64();
    if (r->next_id.origin == 0) r->next_id.origin = 1;
    r->next_id.seq = 1;
    r->rng = random_u64();
    r->waiters = malloc(QUIVER_READ_QUEUE_COUNT_MAX * sizeof *r->waiters);
    if (r->waiters == NULL) {
        free(r);
        snprintf(err, err_size_bytes, "out of memory starting raft");
        return -1;
    }

    /* Handles first: every failure path below closes them asynchronously. */
    uv_check_init(loop, &r->check);
    r->check.data = r;
    uv_idle_init(loop, &r->idle);
    r->idle.data = r;
    uv_async_init(loop, &r->async, async_cb);
    r->async.data = r;
    r->handles_open = 3;

    if (sm_open(db, sm_wake, r, on_result, r, &r->sm, err, err_size_bytes) != 0) {
        r->sm = NULL;
        goto fail_handles;
    }
    r->last_enqueued_index = 0;

    /* transport.version must be set before raft_uv_tcp_init (RAFT-NOTES.md). */
    r->transport.version = 1;
    r->transport.data = NULL;
    int rv = raft_uv_tcp_init(&r->transport, loop);
    if (rv != 0) {
        snprintf(err, err_size_bytes, "raft transport: %s", raft_strerror(rv));
        goto fail_sm;
    }
    rv = raft_uv_init(&r->io, loop, cfg->dir, &r->transport);
    if (rv != 0) {
        snprintf(err, err_size_bytes, "raft directory %s: %s", cfg->dir, r->io.errmsg);
        raft_uv_tcp_close(&r->transport);
        goto fail_sm;
    }
    /* A corrupt tail segment must stop us, not be renamed away silently. */
    raft_uv_set_auto_recovery(&r->io, false);

    r->io_append = r->io.append;
    r->io_snapshot_put = r->io.snapshot_put;
    r->io_set_term = r->io.set_term;
    r->io_set_vote = r->io.set_vote;
    r->io_truncate = r->io.truncate;
    r->io.append = wrap_append;
    r->io.snapshot_put = wrap_snapshot_put;
    r->io.set_term = wrap_set_term;
    r->io.set_vote = wrap_set_vote;
    r->io.truncate = wrap_truncate;

    r->fsm.version = 2; /* see the top comment: version 3 gains nothing on 0.22.1 */
    r->fsm.data = r;
    r->fsm.apply = fsm_apply;
    r->fsm.snapshot = fsm_snapshot;
    r->fsm.restore = fsm_restore;
    r->fsm.snapshot_finalize = NULL; /* raft frees the marker with raft_free */

    rv = raft_init(&r->raft, &r->io, &r->fsm, cfg->node_id, cfg->address);
    if (rv != 0) {
        snprintf(err, err_size_bytes, "raft init: %s", raft_errmsg(&r->raft));
        raft_uv_close(&r->io);
        raft_uv_tcp_close(&r->transport);
        goto fail_sm;
    }
    r->raft.data = r;
    r->raft_initialised = true;

    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (uint32_t i = 0; i < cfg->peer_count; i++) {
        rv = raft_configuration_add(&conf, cfg->peers[i].id, cfg->peers[i].address, RAFT_VOTER);
        if (rv != 0) {
            snprintf(err, err_size_bytes, "raft peer %" PRIu64 " (%s): %s", cfg->peers[i].id, cfg->peers[i].address,
                     raft_strerror(rv));
            raft_configuration_close(&conf);
            goto fail_raft;
        }
    }
    /* Bootstraps only a pristine directory; RAFT_CANTBOOTSTRAP means state
     * exists.  A joining node never bootstraps: its configuration arrives
     * from the leader that adds it. */
    rv = cfg->join ? RAFT_CANTBOOTSTRAP : raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
        snprintf(err, err_size_bytes, "raft bootstrap in %s: %s", cfg->dir, raft_errmsg(&r->raft));
        goto fail_raft;
    }

    raft_set_election_timeout(&r->raft,
                              cfg->election_timeout_ms ? cfg->election_timeout_ms : REPL_ELECTION_TIMEOUT_MS_DEFAULT);
    raft_set_heartbeat_timeout(&r->raft, cfg->heartbeat_timeout_ms ? cfg->heartbeat_timeout_ms
                                                                   : REPL_HEARTBEAT_TIMEOUT_MS_DEFAULT);
    raft_set_pre_vote(&r->raft, true);
    if (cfg->snapshot_threshold) raft_set_snapshot_threshold(&r->raft, (unsigned)cfg->snapshot_threshold);
    if (cfg->snapshot_trailing) raft_set_snapshot_trailing(&r->raft, (unsigned)cfg->snapshot_trailing);

    uv_check_start(&r->check, check_cb);

    rv = raft_start(&r->raft);
    if (rv != 0) {
        if (r->start_error[0])
            snprintf(err, err_size_bytes, "raft directory %s: %s", cfg->dir, r->start_error);
        else
            snprintf(err, err_size_bytes,
                     "raft could not load its state from %s: %s (auto-recovery is off: a damaged log is not "
                     "repaired silently; restore the directory from a replica)",
                     cfg->dir, raft_errmsg(&r->raft));
        /* The apply thread stops now, so the caller may close db at once;
         * raft and our handles close asynchronously (running the loop
         * frees them). */
        r->stopping = true;
        r->closing = true;
        sm_close(r->sm);
        r->sm = NULL;
        bool need = r->need_checkpoint;
        if (need && cfg->need_out != NULL) *cfg->need_out = r->need;
        raft_close(&r->raft, on_raft_closed);
        return need ? REPL_START_NEEDS_CHECKPOINT : -1;
    }
    /* A database ahead of the raft log means the log was lost or belongs
     * elsewhere: new entries would reuse indexes the database already
     * applied and be skipped as replays, silently. */
    uint64_t last_index = raft_last_index(&r->raft);
    uint64_t applied = sm_applied_index(r->sm);
    /* After a checkpoint copy the database may be ahead of the log: the
     * restored marker (same cluster, checked) vouches for the directory. */
    if (applied > last_index && !r->snapshot_restored) {
        snprintf(err, err_size_bytes,
                 "the database has applied log index %" PRIu64 " but the raft log in %s ends at %" PRIu64
                 ": the raft directory was removed or replaced; restore it (or start from an empty database "
                 "directory to rebuild from the log)",
                 applied, cfg->dir, last_index);
        r->stopping = true;
        r->closing = true;
        sm_close(r->sm);
        r->sm = NULL;
        raft_close(&r->raft, on_raft_closed);
        return -1;
    }
    r->raft_started = true;
    *out = r;
    return 0;

fail_raft:
    r->stopping = true;
    r->closing = true;
    sm_close(r->sm);
    r->sm = NULL;
    raft_close(&r->raft, on_raft_closed);
    return -1;
fail_sm:
    sm_close(r->sm);
    r->sm = NULL;
fail_handles:
    r->stopping = true;
    r->closing = true;
    close_handles(r);
    return -1;
}

/* ------------------------------------------------------------------ */
/* Info                                                                */
/* ------------------------------------------------------------------ */

void repl_get_info(repl *r, repl_info *out) {
    QUIVER_ASSERT(r != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    out->node_id = r->node_id;
    out->role = role_name(&r->raft);
    out->current_term = raft_current_term(&r->raft);
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&r->raft, &id, &address);
    out->leader_id = id;
    out->leader_address = address ? address : "";
    out->commit_index = raft_commit_index(&r->raft);
    out->last_applied_index = r->sm ? sm_applied_index(r->sm) : r->final_applied_index;
    /* Barriers and configuration changes take log indexes but never reach
     * the state machine.  Once the apply thread has caught up with every
     * entry handed to it, everything raft has applied is reflected, so report
     * raft's own applied index: otherwise INFO shows the applied index one
     * or more behind the commit index forever (after the barrier a new
     * leader appends), and readiness checks that compare the two never pass. */
    if (r->sm != NULL && out->last_applied_index >= r->last_enqueued_index) {
        uint64_t raft_applied = raft_last_applied(&r->raft);
        if (raft_applied > out->last_applied_index) out->last_applied_index = raft_applied;
    }
    out->ready = raft_state(&r->raft) == RAFT_LEADER && r->ready_term == out->current_term &&
                 out->last_applied_index >= r->ready_index;
}

struct raft *repl_raft(repl *r) {
    QUIVER_ASSERT(r != NULL && r->raft_started && !r->closing);
    return &r->raft;
}

uint64_t repl_applied_index(const repl *r) { return r->sm ? sm_applied_index(r->sm) : r->final_applied_index; }

/* ------------------------------------------------------------------ */
/* Stop                                                                */
/* ------------------------------------------------------------------ */

static void handle_closed_cb(uv_handle_t *h) {
    repl *r = h->data;
    if (--r->handles_open > 0) return;
    void (*done)(void *) = r->stop_done;
    void *ctx = r->stop_ctx;
    run_deferred(r); /* calls made while the handles were closing */
    QUIVER_ASSERT(r->pending_bytes == 0); /* every proposal was answered */
    free(r->waiters);
    free(r);
    if (done) done(ctx);
}

static void close_handles(repl *r) {
    uv_close((uv_handle_t *)&r->check, handle_closed_cb);
    uv_close((uv_handle_t *)&r->idle, handle_closed_cb);
    uv_close((uv_handle_t *)&r->async, handle_closed_cb);
}

static void on_raft_closed(struct raft *rf) {
    repl *r = rf->data;
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    /* Results still arriving find no batch and are freed. */
    if (r->sm != NULL) {
        sm_close(r->sm);
        r->final_applied_index = qs_applied_index(r->db);
    }
    r->sm = NULL;
    run_deferred(r);
    close_handles(r);
}

/* Runs from the check callback, outside any raft callback. */
static void start_close(repl *r) {
    /* A snapshot flush on the threadpool still uses the state machine and
     * will hand raft a write: let it finish first (it kicks us). */
    if (r->snapshot_work_inflight) return;
    r->closing = true;
    /* Not proposed yet: plainly not applied. */
    if (r->open) {
        batch_fail_rest(r->open, REPL_SHUTTING_DOWN, "the node is shutting down");
        batch_free(r->open);
        r->open = NULL;
    }
    repl_batch *b;
    while ((b = batch_list_pop(&r->closed)) != NULL) {
        batch_fail_rest(b, REPL_SHUTTING_DOWN, "the node is shutting down");
        batch_free(b);
    }
    while (r->reads_waiting) {
        repl_read *rd = r->reads_waiting;
        r->reads_waiting = rd->next;
        r->reads_count--;
        rd->cb(rd->ctx, REPL_SHUTTING_DOWN, 0, "the node is shutting down");
        free(rd);
    }
    r->reads_waiting_tail = NULL;
    while (r->waiter_count > 0) {
        repl_waiter w = waiter_pop(r);
        w.cb(w.ctx, REPL_SHUTTING_DOWN, 0, "the node is shutting down");
    }
    run_deferred(r);
    /* raft_close fails the in-flight entries (apply_cb with
     * RAFT_LEADERSHIPLOST -> REPL_UNKNOWN_OUTCOME) and the barriers. */
    raft_close(&r->raft, on_raft_closed);
}

void repl_stop(repl *r, void (*done)(void *ctx), void *ctx) {
    QUIVER_ASSERT(r != NULL);
    QUIVER_ASSERT(!r->stopping);
    r->stopping = true;
    r->stop_done = done;
    r->stop_ctx = ctx;
    kick(r);
}

/*
 * statemachine.h -- the apply thread: the only RocksDB writer (DESIGN.md 2, 3).
 *
 * Raft hands committed entries to fsm->apply on the loop thread, in log
 * order.  That callback must return at once (it runs on the thread serving
 * every client and peer), so it only copies the entry into a bounded queue
 * (sm_enqueue).  One apply thread takes entries in order and, per entry:
 *
 *     skip it when index <= the applied index stored in RocksDB (replay
 *         after a restart: raft replays its log from the last snapshot,
 *         RocksDB already holds some of it; nothing is applied twice);
 *     qs_txn_begin;
 *     for each command:
 *         request id already in the de-dup table -> its stored first outcome
 *             when the command is the statement the id was first used for
 *             (same kind, graph and text); an error naming the id when it is
 *             another statement; nothing applied either way;
 *         else savepoint; query_run_write (SM_CMD_QUERY) or qs_graph_delete
 *             (SM_CMD_GRAPH_DELETE); roll back to the savepoint on error
 *             (a failed command has no effects, the others in the entry
 *             keep theirs), release it on success;
 *         record the outcome in the de-dup table (same transaction);
 *     qs_txn_commit(txn, index): effects + de-dup table + applied index in
 *         one WriteBatch, so a crash leaves all or nothing of the entry.
 *
 * Commands run with the work and memory budgets their entry carries
 * (command.h version 2: the proposing leader's --write-work-max and
 * --query-memory-max-bytes), never this node's own flags, so a write over
 * its budget fails identically on every replica.
 *
 * An entry of a format version this binary does not know stops the process
 * (QUIVER_FATAL, "upgrade this node"): skipping it would diverge from the
 * replicas that understood it.  Any other entry that does not decode is a
 * bug or corruption that every replica would see alike; it is applied as
 * "no effects", its index still advances,
 * an error is logged, and on_result is called ONCE for the entry with the
 * request id {0, 0} and an error result (the proposer answers every command
 * it put in that entry with it).
 *
 * GRAPH.DELETE of a graph that does not exist fails with QUERY_ERR_NO_GRAPH
 * and FalkorDB's words "Invalid graph operation on empty key" (the server
 * adds the RESP "ERR " prefix as for every error).
 *
 * Results go back to the loop thread through the same bounded ring (an
 * entry's slot is freed only after its results are delivered): the apply
 * thread calls the owner's wake function (raft/ makes it a uv_async_send),
 * the owner calls sm_deliver on the loop thread, and on_result runs there,
 * for every command, in log order.  The module itself has no libuv
 * dependency.  The apply thread never waits for the loop thread, so the
 * loop thread may wait for the apply thread (sm_enqueue when the ring is
 * full, sm_sync) without deadlock.
 *
 * De-duplication table: request id -> encoded first outcome
 * (result_codec.h), at most QUIVER_DEDUP_TABLE_COUNT_MAX ids, persisted
 * under the meta prefix "sm/dd/" (qs_meta_put) in the applying transaction,
 * keyed by a per-database insertion sequence so the oldest id is evicted
 * first, identically on every replica.  Loaded at sm_open (qs_meta_scan).
 * Outcomes bigger than SM_DEDUP_OUTCOME_SIZE_MAX_BYTES are stored without
 * their rows: a retry then gets an error saying the write was applied and
 * its result is too large to be replayed.
 *
 * Storage errors abort inside storage (fail-stop); there is no error path
 * for them here.
 */
#ifndef QUIVER_STATEMACHINE_STATEMACHINE_H
#define QUIVER_STATEMACHINE_STATEMACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../query/query.h"
#include "../storage/graph.h"
#include "command.h"

/* Largest outcome kept whole in the de-dup table. */
#define SM_DEDUP_OUTCOME_SIZE_MAX_BYTES (1024u * 1024)

typedef struct sm sm;

/* Called ON THE LOOP THREAD for every command applied, in log order.
 * id: the command's request id; index: the entry's log index; r: the
 * outcome, never NULL (r->status tells success or the error); the callee
 * owns r and frees it with query_result_free.  Commands of entries skipped
 * on replay get no call. */
typedef void (*sm_result_fn)(void *ctx, sm_request_id id, uint64_t index, query_result *r);

/* Called FROM THE APPLY THREAD after each entry is applied: the owner must
 * arrange for sm_deliver to run soon on the loop thread (uv_async_send is
 * the intended body).  Must be thread-safe and must not block. */
typedef void (*sm_wake_fn)(void *wake_ctx);

/* Start the apply thread on db (opened by the caller, who keeps ownership
 * and closes it after sm_close).  Loads the de-dup table.  wake is called
 * from the apply thread whenever results may be waiting (see sm_wake_fn).
 * Returns 0 and *out, or -1 with err filled (NUL-terminated) when the
 * de-dup table does not decode (message names the key) or the thread
 * cannot be started.  Thread: the loop thread (the one that will call
 * sm_enqueue and sm_deliver). */
int sm_open(qs_db *db, sm_wake_fn wake, void *wake_ctx, sm_result_fn on_result, void *ctx, sm **out,
            char *err, size_t err_size_bytes);

/* Queue the committed entry at index (from fsm->apply) for the apply
 * thread; buf (len bytes, len <= QUIVER_ENTRY_SIZE_MAX_BYTES) is copied.
 * Indexes must increase (asserted); gaps are normal (barrier and
 * configuration entries take indexes too).  When QUIVER_APPLY_QUEUE_COUNT_MAX
 * entries (or 1 GiB of them) are waiting, this blocks the loop thread until the apply thread
 * frees a slot, delivering finished results meanwhile.  That stall is the
 * back-pressure DESIGN.md 2 asks for and is bounded: the apply thread never
 * waits for the loop, and the proposer (replication.c) bounds the entries in
 * flight, so on the leader it happens only when the disk-bound apply thread
 * falls a whole queue behind (replay after a restart, or a follower catching
 * up).  Thread: the loop thread. */
void sm_enqueue(sm *s, uint64_t index, const void *buf, size_t len);

/* The applied index: everything <= it is committed to RocksDB (not
 * necessarily flushed).  Thread: any (atomic load). */
uint64_t sm_applied_index(const sm *s);

/* Block until every entry with index <= index has been applied and RocksDB
 * is flushed (qs_flush, done by the apply thread) so the applied index on
 * disk is >= index.  Used before raft persists a snapshot marker (DESIGN.md
 * 5).  index may exceed the last index given to sm_enqueue (raft's
 * snapshot index can be a barrier or configuration entry): then it waits for
 * the last enqueued one.  The wait is bounded by the work queued (the apply
 * thread never waits for the loop thread).  Thread: any but the apply
 * thread; raft/ calls it from the libuv threadpool so that the loop keeps
 * serving during the flush.  s must stay open until it returns. */
void sm_sync(sm *s, uint64_t index);

/* Deliver every finished result now (on_result calls, in log order)
 * without waiting for more.  The owner calls it when woken (sm_wake_fn);
 * sm_enqueue and sm_close call it too.  A call from inside an on_result
 * callback returns at once (the outer call continues, keeping the order).
 * Thread: the loop thread. */
void sm_deliver(sm *s);

/* The cluster id: 16 bytes that every replica of one cluster shares and
 * other clusters do not, derived (XXH3-128) from the first command ever
 * applied (its request id, clock, seed and index) and kept in the database
 * (meta key SM_CLUSTER_ID_KEY).  Raft snapshot markers carry it, so a node
 * refuses a raft directory or a checkpoint of another cluster.  Returns
 * false (and zeroes out) while no command has been applied.  Thread: any. */
#define SM_CLUSTER_ID_BYTES 16
#define SM_CLUSTER_ID_KEY "sm/cluster"
bool sm_cluster_id(const sm *s, uint8_t out[SM_CLUSTER_ID_BYTES]);

/* Number of request ids in the de-dup table (tests, metrics).  Thread: any. */
uint32_t sm_dedup_count(sm *s);

/* Stop: finish applying what is queued, join the apply thread, deliver
 * the remaining results (on_result), free s.  Thread: the loop thread. */
void sm_close(sm *s);

#endif

/*
 * catchup.h -- a follower that fell behind the retained raft log catches up
 * by copying a RocksDB checkpoint from a peer (DESIGN.md section 5).
 *
 * Two halves:
 *
 *   serving   every node answers QUIVER.CHECKPOINT on its client port (an
 *             internal command, like QUIVER.FORWARD):
 *               OPEN min_applied_index      take a checkpoint (flushes RocksDB,
 *                                           hard-links its files into
 *                                           DATA/checkpoints/), hash every file;
 *                                           reply: id, applied index, cluster id
 *                                           (32 hex digits or ""), file count,
 *                                           then name, size_bytes, XXH3-64 (16
 *                                           hex digits) per file
 *               READ id name offset length  at most CATCHUP_CHUNK_SIZE_MAX_BYTES of
 *                                           one file, as a bulk string
 *               CLOSE id                    remove the checkpoint
 *             At most CATCHUP_OPEN_COUNT_MAX checkpoints are open; one unused
 *             for CATCHUP_IDLE_TIMEOUT_MS is removed by the next OPEN.
 *   fetching  catchup_fetch, at start-up, before RocksDB is opened: asks the
 *             peers in turn for a checkpoint at or after an index, copies it
 *             into DATA/db.incoming, verifies every file's size and hash,
 *             opens the copy to check its applied index and cluster id, then
 *             swaps it in (DATA/db -> DATA/db.old, DATA/db.incoming ->
 *             DATA/db, fsync, remove DATA/db.old).  catchup_recover_swap
 *             finishes or undoes a swap a crash interrupted.
 *
 * Why at start-up: raft 0.22.1 (FSM version 2) restores a snapshot with a
 * synchronous fsm->restore on the loop thread that must not fail, while a
 * checkpoint copy takes seconds and replaces the database under the reader
 * and apply threads.  So when a leader sends a snapshot beyond this node's
 * database, the node restarts itself (raft has already persisted the
 * snapshot; the restart finds it, sees the database behind it, and fetches
 * before serving).  See raft/replication.h (repl_config.on_checkpoint_needed).
 */
#ifndef QUIVER_NODE_CATCHUP_H
#define QUIVER_NODE_CATCHUP_H

#include <stdint.h>

#include "config.h"
#include "server.h"

#define CATCHUP_OPEN_COUNT_MAX 2
#define CATCHUP_CHUNK_SIZE_MAX_BYTES (4u * 1024 * 1024)
#define CATCHUP_FILES_COUNT_MAX 100000
#define CATCHUP_FILE_NAME_SIZE_MAX_BYTES 128
#define CATCHUP_IDLE_TIMEOUT_MS 120000
#define CATCHUP_CONNECT_TIMEOUT_MS 2000
#define CATCHUP_COMMAND_TIMEOUT_MS 120000 /* OPEN flushes RocksDB and hashes every file */
#define CATCHUP_FETCH_DEADLINE_MS (30u * 60 * 1000)

/* QUIVER.CHECKPOINT (see the top).  Replies into s now (READ, CLOSE, errors)
 * or from the threadpool's completion (OPEN); node_slot_done exactly once.
 * Errors: "ERR ..." for a bad sub-command, id, file name, range, or an
 * applied index below min_applied_index ("ERR behind: ..."); nothing changes.
 * Thread: the loop thread. */
void catchup_command(node_client *c, node_slot *s, resp_request *req);

/* Fetch a checkpoint whose applied index is >= min_index from one of
 * cfg's peers (not this node) and swap it in as cfg->db_dir.  cluster_id
 * (16 bytes, or NULL / all zero for "any") must match the checkpoint's.
 * Blocks (hiredis, timeouts above); retries the peers in turn with backoff
 * until CATCHUP_FETCH_DEADLINE_MS.  The database must be closed.  Returns 0,
 * or -1 with err filled.  Thread: the main thread, before the loop runs. */
int catchup_fetch(const node_config *cfg, uint64_t min_index, const uint8_t *cluster_id, char *err,
                  size_t err_size_bytes);

/* Finish or undo a swap a crash interrupted, and remove leftovers
 * (db.incoming, checkpoints/).  Returns 0 or -1 with err.  Thread: main,
 * before the database is opened. */
int catchup_recover_swap(const node_config *cfg, char *err, size_t err_size_bytes);

#endif

/*
 * replication.h -- Raft for Quiver: canonical/raft 0.22.1 through its libuv
 * backend, feeding the state machine (statemachine/statemachine.h).
 *
 * What lives here (DESIGN.md 1, 5, 6, 7; RAFT-NOTES.md):
 *   - raft_uv_init + raft_uv_tcp_init (transport version 1), auto-recovery
 *     off (a corrupt log tail stops the node instead of silently dropping
 *     entries), pre-vote on, timeouts from repl_config.
 *   - First start on an empty raft directory bootstraps the initial
 *     configuration from repl_config.peers (the same list on every node).
 *   - Group commit: every command proposed during one loop iteration goes
 *     into ONE log entry (one raft_apply per iteration), bounded by
 *     QUIVER_ENTRY_COMMANDS_COUNT_MAX commands, QUIVER_ENTRY_SIZE_MAX_BYTES
 *     and REPL_ENTRIES_IN_FLIGHT_COUNT_MAX entries proposed but not applied.
 *   - fsm->apply copies each committed entry into the apply thread's queue;
 *     results come back through the state machine and answer the proposer
 *     by request id.
 *   - Snapshots are markers (applied index, term, database uuid); before raft
 *     persists one, the apply thread has applied and flushed up to its index
 *     (the wait runs on the libuv threadpool, not on the loop thread).
 *   - Entries are padded to a multiple of 8 bytes (command.h): 0.22.1's
 *     libuv backend refuses other lengths.
 *   - After winning an election the leader appends a barrier and is "ready"
 *     once it is applied (reads must not be served from a new leader before).
 *   - Raft I/O errors are fatal (QUIVER_FATAL): restart recovers by replay.
 *
 * Thread: everything here runs on the loop thread (raft has no locks), except
 * where a function says otherwise.
 */
#ifndef QUIVER_RAFT_REPLICATION_H
#define QUIVER_RAFT_REPLICATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "../query/query.h"
#include "../statemachine/command.h"
#include "../storage/graph.h"

#define REPL_ENTRIES_IN_FLIGHT_COUNT_MAX 64      /* proposed entries not yet applied */
#define REPL_PENDING_COUNT_MAX (REPL_ENTRIES_IN_FLIGHT_COUNT_MAX * QUIVER_ENTRY_COMMANDS_COUNT_MAX)
/* Encoded bytes of writes proposed here and not yet answered: this many
 * entries of the largest size this node proposes (--max-entry-bytes). */
#define REPL_PENDING_SIZE_MAX_ENTRIES 4u
#define REPL_PEERS_COUNT_MAX 16
#define REPL_ADDRESS_SIZE_MAX_BYTES 64

typedef struct repl repl;

typedef struct repl_peer {
    uint64_t id;                               /* raft server id, != 0 */
    char address[REPL_ADDRESS_SIZE_MAX_BYTES]; /* "host:port" of its raft port */
} repl_peer;

typedef struct repl_checkpoint_need {
    uint64_t marker_index;      /* the database must reach at least this applied index */
    uint8_t cluster_id[16];     /* the checkpoint must belong to this cluster (zero: any) */
} repl_checkpoint_need;

#define REPL_START_NEEDS_CHECKPOINT (-2)

typedef struct repl_config {
    uint64_t node_id;            /* this node's raft id, != 0, must be among peers */
    const char *address;         /* this node's raft address "127.0.0.1:7000" (bound and advertised) */
    const char *dir;             /* raft log directory (created if missing) */
    uint32_t peer_count;         /* initial configuration incl. self; 1 = single node */
    const repl_peer *peers;
    uint32_t election_timeout_ms;  /* 0: 1000 */
    uint32_t heartbeat_timeout_ms; /* 0: 100 */
    uint64_t snapshot_threshold;   /* entries between snapshots; 0: raft's default (1024) */
    uint64_t snapshot_trailing;    /* entries kept after a snapshot; 0: raft's default (128) */
    /* A leader sent a snapshot marker beyond this node's database (it was
     * down longer than the retained log).  raft 0.22.1 has persisted the
     * marker and needs fsm->restore to succeed synchronously, which a
     * checkpoint copy cannot: so the owner must restart the process (the
     * restart finds the marker, repl_start returns REPL_START_NEEDS_CHECKPOINT,
     * node/catchup.c fetches a checkpoint).  Called on the loop thread; must
     * not return.  NULL: fail-stop with a message. */
    void (*on_checkpoint_needed)(void *ctx, uint64_t marker_index);
    void *checkpoint_ctx;
    /* Filled when repl_start returns REPL_START_NEEDS_CHECKPOINT: the marker's
     * index and cluster id (all zero: none yet).  May be NULL. */
    struct repl_checkpoint_need *need_out;
    bool join;                     /* never bootstrap: the node joins a running cluster, whose
                                      leader sends it the configuration (QUIVER.CLUSTER ADD) */
    /* Budgets this node puts into the commands it proposes as leader
     * (--write-work-max, --query-memory-max-bytes); every replica applies
     * a command with the budget its entry carries (command.h).  0: the
     * defaults of common/limits.h (QUIVER_WRITE_WORK_MAX_DEFAULT,
     * QUIVER_QUERY_MEMORY_MAX_BYTES); write_work_max UINT64_MAX: no work
     * budget at all. */
    uint64_t write_work_max;
    uint64_t query_memory_max_bytes;
    /* Largest entry this node proposes (--max-entry-bytes); a command that
     * would not fit alone is refused with REPL_INVALID before proposing.
     * Applying never uses it: a committed entry is applied whatever this
     * node's flag says (up to QUIVER_ENTRY_SIZE_MAX_BYTES).  0: the default
     * QUIVER_ENTRY_PROPOSE_SIZE_MAX_BYTES_DEFAULT. */
    uint64_t entry_size_max_bytes;
} repl_config;

/* Start raft on loop, with the state machine on db (opened by the caller,
 * closed by the caller after repl_stop's done callback).  Bootstraps the
 * configuration when dir holds no raft state.  Returns 0 and *out, or -1
 * with err (NUL-terminated) naming what failed: bad config (node id not in
 * peers, too many peers, address too long), the directory (unusable, or a
 * log raft refuses to load: corrupt segment -- the message names the
 * directory and says auto-recovery is off; a snapshot marker of another
 * cluster), the port (in use).  Returns REPL_START_NEEDS_CHECKPOINT (-2)
 * when the raft directory holds a snapshot marker beyond the database's
 * applied index (cfg->need_out says which index and cluster): the caller
 * closes db, fetches a checkpoint (node/catchup.c) and calls repl_start
 * again.
 * On failure the apply thread is already stopped (db may be closed at
 * once); raft's own handles close asynchronously, so run the loop (e.g.
 * uv_run until it returns) before closing it.
 * Thread: the loop thread, before uv_run or from a loop callback. */
int repl_start(uv_loop_t *loop, const repl_config *cfg, qs_db *db, repl **out,
               char *err, size_t err_size_bytes);

/* A fresh request id: origin fixed for this process, seq counting from 1. */
sm_request_id repl_next_request_id(repl *r);

typedef enum repl_status_code {
    REPL_OK = 0,            /* applied at index; r->status may still be a query error */
    REPL_NOT_LEADER,        /* not proposed: error names the leader ("leader is node 2 at host:port") or says none is known */
    REPL_UNKNOWN_OUTCOME,   /* proposed, then leadership was lost or raft shut down before it committed */
    REPL_SHUTTING_DOWN,     /* repl_stop was called before it was proposed */
    REPL_BUSY,              /* too many writes in flight (REPL_PENDING_COUNT_MAX, or
                               REPL_PENDING_SIZE_MAX_ENTRIES entries' worth of bytes); not proposed */
    REPL_INVALID,           /* the command breaks a format rule or limit (command.h), or
                               would not fit in an entry of entry_size_max_bytes; not proposed */
} repl_status_code;

/* Reply to one proposal.  Called on the loop thread exactly once per
 * repl_propose.  status REPL_OK: r is the outcome (callee owns it:
 * query_result_free), index the entry's log index, error NULL.  Otherwise
 * r is NULL, index 0, and error a message for the client (valid during the
 * call only). */
typedef void (*repl_reply_fn)(void *ctx, repl_status_code status, query_result *r,
                              uint64_t index, const char *error);

/* Propose one command.  cmd (and its strings) is copied; timestamp_ms and
 * seed are set here from the leader's wall clock and a random source (what
 * the caller put there is ignored), the request id is kept (use
 * repl_next_request_id, or the client's retry id).  Every command proposed
 * during one loop iteration is sent as one entry when the iteration ends.
 * cb is called exactly once, never from inside repl_propose.  A request id
 * already applied gets its first outcome.  Returns 0 (every outcome,
 * errors included, goes to cb).  Thread: the loop thread. */
int repl_propose(repl *r, const sm_command *cmd, repl_reply_fn cb, void *ctx);

/* Linearizable read gate (DESIGN.md 6).  cb is called once, on the loop
 * thread: REPL_OK with index when this node is the leader, a barrier issued
 * after this call committed, and the state machine has applied everything
 * before it (so a RocksDB snapshot taken now sees every write acknowledged
 * before the call); REPL_NOT_LEADER (error names the leader),
 * REPL_SHUTTING_DOWN, REPL_BUSY (over QUIVER_READ_QUEUE_COUNT_MAX waiting),
 * REPL_UNKNOWN_OUTCOME (leadership lost while waiting).  All reads waiting
 * when a barrier is issued share it.  Never called from inside the call.
 * Thread: the loop thread. */
typedef void (*repl_read_fn)(void *ctx, repl_status_code status, uint64_t index, const char *error);
int repl_read_barrier(repl *r, repl_read_fn cb, void *ctx);

/* Session-consistency gate: cb(ctx, REPL_OK, index, NULL) once the state
 * machine's applied index is >= index (at once, on the next loop iteration,
 * if it already is), or REPL_SHUTTING_DOWN / REPL_BUSY.  Returns 0.
 * Thread: the loop thread. */
int repl_wait_applied(repl *r, uint64_t index, repl_read_fn cb, void *ctx);

typedef struct repl_info {
    uint64_t node_id;
    const char *role;          /* "leader", "follower" or "candidate" (static string) */
    uint64_t current_term;
    uint64_t leader_id;        /* 0 when no leader is known */
    const char *leader_address;/* "" when unknown; valid until the next loop callback */
    uint64_t commit_index;
    uint64_t last_applied_index; /* the state machine's (RocksDB's) applied index */
    bool ready;                /* leader whose post-election barrier is applied, and whose
                                  state machine has applied every entry before it: it holds
                                  every write committed in earlier terms */
} repl_info;

/* Fill *out for INFO raft and /status.  Thread: the loop thread. */
void repl_get_info(repl *r, repl_info *out);

/* The applied index of the state machine (atomic load).  Thread: any,
 * until repl_stop; after it, the loop thread only. */
uint64_t repl_applied_index(const repl *r);

/* The raft instance, for raft/membership.c (configuration changes and
 * leadership transfer through raft_add / raft_assign / raft_remove /
 * raft_transfer).  Ownership stays with r.  Thread: the loop thread only,
 * and only between repl_start and repl_stop. */
struct raft;
struct raft *repl_raft(repl *r);

/* Stop: refuse new proposals (REPL_SHUTTING_DOWN), close raft outside any
 * raft callback, answer proposals still pending (REPL_UNKNOWN_OUTCOME for
 * those proposed, REPL_SHUTTING_DOWN for the others), stop the apply thread
 * after it applied what raft handed it, then call done(ctx) on the loop
 * thread; r is freed before done is called.  Call once.  Thread: the loop
 * thread. */
void repl_stop(repl *r, void (*done)(void *ctx), void *ctx);

#endif

/*
 * server.h -- the client side of quiverd: the libuv TCP server, one
 * node_client per connection, and the per-connection queue of replies.
 *
 * Order: a connection's replies leave in request order even though reads
 * finish on reader threads and writes finish when raft has applied them.
 * Every request gets a node_slot appended to its connection's queue when it
 * is parsed; the command fills the slot at once (PING) or later (reads,
 * writes); node_client_flush sends the ready slots at the head of the queue
 * and stops at the first one still waiting.
 *
 * Lifetime: a connection may close while slots are in flight.  The slot
 * stays linked and owned by the connection; the client struct is freed only
 * when its handle is closed and no asynchronous operation (read job, raft
 * proposal, socket write) still refers to it (refs == 0).  A completion that
 * finds its connection closed just frees the slot; a write still applies.
 *
 * Sequential semantics within a connection, as on FalkorDB (which runs a
 * connection's commands one after the other): a read waits (a deferred
 * slot) until every write before it has been answered, and a write waits
 * until every read before it has been answered; so in a pipelined
 * "CREATE; MATCH; CREATE; MATCH" each MATCH sees exactly the CREATEs before
 * it.  Writes after writes and reads after reads still overlap (raft
 * group-commits consecutive writes; readers run reads in parallel).
 *
 * Read consistency (DESIGN.md 6) is chosen per connection with
 * QUIVER.CONSISTENCY (router.h): linearizable (the default), session or
 * stale.  A read takes the level its connection had when the read ARRIVED
 * (node_slot.consistency), so a pipelined QUIVER.CONSISTENCY never changes
 * a read queued before it.  The connection keeps session_index, the highest
 * log index of its acknowledged writes, for session reads.
 *
 * Client-chosen request ids: QUIVER.REQUESTID stores an id in the
 * connection (request_id_set); the next write that is proposed moves it
 * into its slot (node_slot.request_id), so a write deferred behind earlier
 * reads still gets the id that was set before IT arrived (router.h).
 *
 * Readiness (/readyz, INFO raft node_ready): see node_ready below.
 *
 * Bounds: at most NODE_CLIENT_PENDING_COUNT_MAX requests waiting per
 * connection and NODE_CLIENT_OUTPUT_SIZE_MAX_BYTES of replies being written;
 * past either, the connection stops reading (TCP back-pressure) until it
 * drains.  At most cfg->max_clients connections; the next one is told
 * "max number of clients reached" and closed.
 *
 * Thread: everything here runs on the loop thread.
 */
#ifndef QUIVER_NODE_SERVER_H
#define QUIVER_NODE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "../raft/replication.h"
#include "../storage/graph.h"
#include "config.h"
#include "reply.h"
#include "resp.h"

#define NODE_CLIENT_PENDING_COUNT_MAX 1024
#define NODE_CLIENT_OUTPUT_SIZE_MAX_BYTES (64u * 1024 * 1024)
#define NODE_READ_BUFFER_SIZE_BYTES (64 * 1024)
#define NODE_CLIENT_NAME_SIZE_MAX_BYTES 128
#define NODE_WRITE_BUFS_COUNT_MAX 64   /* slots gathered into one uv_write */
#define NODE_READY_POLL_INTERVAL_MS 10 /* start-up readiness checks (node_ready) */

/* Read consistency levels (DESIGN.md 6; QUIVER.CONSISTENCY, router.h). */
typedef enum node_consistency {
    NODE_CONSISTENCY_LINEARIZABLE = 0, /* default: sees every write acknowledged before the read began */
    NODE_CONSISTENCY_SESSION = 1,      /* sees this connection's own acknowledged writes */
    NODE_CONSISTENCY_STALE = 2,        /* local snapshot at once; reports its lag */
} node_consistency;
#define NODE_CONSISTENCY_COUNT 3

typedef struct node node;
typedef struct node_client node_client;
typedef struct node_slot node_slot;
typedef struct readers readers;
typedef struct fwd fwd;

/* The forwarder's counters (forward.c), shown by INFO raft. */
typedef struct fwd_stats {
    uint32_t waiting;            /* requests waiting for a leader */
    uint32_t sent_inflight;      /* sent to a leader, not answered */
    uint32_t local_inflight;     /* proposed / barrier here, not answered */
    uint64_t forwarded_total;    /* requests sent to another node (retries included) */
    uint64_t retries_total;      /* requests sent or proposed again after a leader change / lost link */
    uint64_t unknown_total;      /* writes answered "outcome unknown" */
    uint64_t no_leader_total;    /* requests answered "no leader" at their deadline */
} fwd_stats;

/* A deferred command: run later with its request (ownership moves in). */
typedef void (*node_deferred_fn)(node_client *c, node_slot *s, resp_request *req);

struct node_slot {
    node_slot *prev, *next;
    node_client *client;
    reply_buf buf;
    bool ready;          /* buf holds the complete reply */
    bool in_flight;      /* an asynchronous operation holds this slot */
    bool is_write;       /* a write (deferred or proposed) not yet answered */
    bool is_read;        /* a read (deferred or running) not yet answered */
    bool compact;        /* GRAPH.QUERY --compact */
    bool close_after;    /* close the connection once this reply is written (QUIT, protocol error) */
    bool has_request_id; /* a write proposed with the client's QUIVER.REQUESTID id */
    uint8_t consistency; /* a read: the connection's node_consistency when it arrived */
    sm_request_id request_id; /* valid when has_request_id */
    node_deferred_fn deferred_fn; /* non-NULL: waiting for earlier writes */
    resp_request deferred_req;
};

struct node_client {
    uv_tcp_t tcp;
    node *n;
    node_client *prev, *next; /* node's list of open connections */
    uint64_t id;
    uint32_t refs;            /* handle + in-flight slots + in-flight writes */
    bool closing;             /* uv_close called */
    bool close_when_flushed;  /* a close_after slot was queued for writing */
    bool reading;             /* uv_read_start active */
    bool stop_parsing;        /* after QUIT or a protocol error */
    bool in_deferred;         /* run_deferred is on the stack: no flush, no re-entry */
    resp_parser parser;
    node_slot *head, *tail;
    uint32_t pending_count;   /* slots in the queue */
    uint32_t writes_in_flight;/* slots with is_write */
    uint32_t reads_pending;   /* slots with is_read */
    uint32_t socket_writes;   /* uv_write requests outstanding */
    size_t output_bytes;      /* bytes handed to uv_write, not yet written */
    char name[NODE_CLIENT_NAME_SIZE_MAX_BYTES];
    char lib_name[64], lib_ver[64];
    uint64_t created_ms;
    node_consistency consistency; /* QUIVER.CONSISTENCY; reads take it when they arrive */
    uint64_t session_index;   /* highest log index of this connection's acknowledged writes */
    bool request_id_set;      /* QUIVER.REQUESTID given, not yet used by a write */
    sm_request_id request_id; /* valid when request_id_set */
};

struct node {
    uv_loop_t *loop;
    const node_config *cfg;
    qs_db *db;
    repl *repl;               /* NULL in tests without raft */
    readers *readers;
    fwd *fwd;                 /* multi-node clusters: writes and reads go through the leader (forward.h); NULL alone */
    const struct node_cluster_ops *cluster; /* set by main (forward.c's table); NULL in tests without it */
    uv_tcp_t listener;
    bool listening;
    bool stopping;
    node_client *clients;
    uint32_t client_count;
    uint64_t next_client_id;
    uint64_t start_ms;        /* wall clock at start */
    uint64_t commands_processed;
    uint64_t connections_received;
    uint64_t rejected_connections;
    uint64_t warm_term;         /* single node: a read barrier completed in this term (router.c) */
    /* Reads by consistency level (router.c): served = answered by a reader
     * thread (query errors included), indexed by node_consistency. */
    uint64_t reads_served_total[NODE_CONSISTENCY_COUNT];
    uint64_t session_waits_total;         /* session reads that had to wait for the applied index */
    uint64_t session_wait_timeouts_total; /* ... and gave up at their deadline */
    uint64_t session_nudges_total;        /* read indexes asked to hurry the commit index along (router.c) */
    bool session_nudge_inflight;
    /* The highest log index this node learned the leader had committed
     * (write replies and read indexes relayed from the leader; router.c),
     * beside raft's own commit index: the stale lag uses the larger. */
    uint64_t leader_index_seen;
    /* Start-up readiness (node_ready): */
    uv_timer_t ready_timer;       /* polls until ready once (NODE_READY_POLL_INTERVAL_MS) */
    bool ready_timer_open;
    bool startup_recorded;        /* a leader became known and startup_commit_index was taken */
    bool startup_gate_inflight;   /* the leader's read index is being awaited */
    bool startup_gate_done;       /* applied >= the leader's read index once */
    bool startup_ready_once;      /* node_ready was true once (timer stopped) */
    uint64_t startup_commit_index;/* the first commit index seen once a leader was known */
    char read_buffer[NODE_READ_BUFFER_SIZE_BYTES]; /* one for all: parsed at once, in read_cb */
    void (*on_stopped)(node *n); /* optional: called when every client is closed after node_server_stop */
};

/* What router.c needs from node/forward.c, through a table so that the
 * server can be linked (and unit-tested) without raft and the state
 * machine: main.c sets node.cluster = &fwd_cluster_ops.  Thread: loop. */
typedef struct node_cluster_ops {
    /* QUIVER.FORWARD from a peer: run its write / read-index request here. */
    void (*serve_forward)(node_client *c, node_slot *s, resp_request *req);
    /* A client write through the leader (fwd_write). */
    void (*write)(fwd *f, const sm_command *cmd, repl_reply_fn cb, void *ctx);
    /* cb(REPL_OK) once a snapshot taken now is linearizable (fwd_read_gate). */
    void (*read_gate)(fwd *f, repl *r, repl_read_fn cb, void *ctx);
    /* Counters for INFO (fwd_get_stats). */
    void (*stats)(fwd *f, struct fwd_stats *out);
    /* cb(REPL_OK) once this node's state machine has applied index
     * (repl_wait_applied); session reads.  Through the table so that the
     * server links without raft in unit tests. */
    void (*wait_applied)(repl *r, uint64_t index, repl_read_fn cb, void *ctx);
} node_cluster_ops;

/* Initialise n (caller-owned memory) and listen on cfg->bind:cfg->port.
 * db, repl and readers are used by commands (repl may be NULL: writes then
 * fail with an error, for tests).  Returns 0, or a negative libuv error with
 * err filled ("cannot listen on 127.0.0.1:6379: address already in use").
 * Thread: the loop thread. */
int node_server_start(node *n, uv_loop_t *loop, const node_config *cfg, qs_db *db, repl *r, readers *rd,
                       char *err, size_t err_size_bytes);

/* The port actually bound (useful with port 0 in tests). */
int node_server_port(node *n);

/* Stop accepting and close every connection (their in-flight operations
 * still complete and are dropped).  Thread: the loop thread. */
void node_server_stop(node *n);

/* ---- used by commands.c / router.c ---- */

/* Mark s complete (its buf holds the reply) and send what can be sent.
 * If s was in flight, releases the reference it held.  Thread: loop. */
void node_slot_done(node_slot *s);

/* Take a reference for an asynchronous operation on s (in_flight). */
void node_slot_hold(node_slot *s);

/* Defer s until run_deferred may start it: a read (s->is_read) once every
 * earlier write is answered, a write (s->is_write) once every earlier read
 * is answered.  The caller marks s with node_slot_mark_read/write first. */
void node_slot_defer(node_slot *s, resp_request *req, node_deferred_fn fn);

/* Mark s as a pending read / write of its connection (see the top). */
void node_slot_mark_read(node_slot *s);
void node_slot_mark_write(node_slot *s);

/* A write on s was answered (call before node_slot_done). */
void node_client_write_answered(node_client *c, node_slot *s);

/* Wall clock in ms since the epoch. */
uint64_t node_now_ms(void);

/* Readiness for /readyz and INFO (issue 3: "ready once it knows a leader
 * and has applied up to the commit index it learned at start"):
 *   - startup_commit_index is the first commit index this node sees once a
 *     leader is known (a poll timer, NODE_READY_POLL_INTERVAL_MS, started
 *     by node_server_start when raft runs, records it without waiting for
 *     a probe);
 *   - because a follower's commit index can trail the leader's right after
 *     start, a multi-node node also asks the leader for its read index once
 *     (n->cluster->read_gate: applied >= the leader's commit index at that
 *     moment); a single node uses raft's ready flag (its post-election
 *     barrier is applied) instead;
 *   - ready = a leader is known NOW (this node is the ready leader, or it
 *     names another leader) && both start-up conditions above held &&
 *     applied index >= startup_commit_index.
 * ri: a fresh repl_get_info filled by the caller (without raft, n->repl
 * NULL: ready iff ri names a leader; ri NULL: not ready).
 * Thread: the loop thread. */
bool node_ready(node *n, const repl_info *ri);

/* The stale-read lag of this node in log entries: (the larger of raft's
 * commit index and leader_index_seen) - the applied index of ri, or 0.
 * An upper bound for a read whose snapshot is taken after this call.
 * ri may be NULL (no raft: 0).  Thread: the loop thread. */
uint64_t node_stale_lag_entries(const node *n, const repl_info *ri);

/* Note an index the leader is known to have committed (see leader_index_seen). */
void node_note_leader_index(node *n, uint64_t index);

#endif

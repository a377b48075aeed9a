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
 * Memory and work per connection (DESIGN.md 7a; Redis' names where Redis
 * has the limit).  Requests are parsed from what arrived one at a time; a
 * connection DISPATCHES nothing more -- the unparsed rest of what it sent
 * stays in its input buffer (at most one read, NODE_READ_BUFFER_SIZE_BYTES)
 * and its socket is not read (TCP back-pressure) -- while any of these
 * holds (soft limits: it resumes when they drain):
 *   - NODE_CLIENT_PENDING_COUNT_MAX requests are queued (answered or not);
 *   - NODE_CLIENT_READS_IN_FLIGHT_COUNT_MAX reads are unanswered: each may
 *     produce a reply as large as the reply cap, so their number is what
 *     bounds the memory they can produce;
 *   - the requests parsed and not yet answered hold
 *     NODE_CLIENT_REQUESTS_PAUSE_SIZE_BYTES (a deferred read keeps its text);
 *   - its pending replies (finished, not yet written, plus bytes handed to
 *     the socket) reach the output soft limit (node_client_output_pause_bytes);
 *   - a request of it is being admitted off the loop thread (admission.h):
 *     nothing after it may run before it is classified (order, above).
 * Hard limits disconnect (the client's buffers are freed):
 *   - --client-output-buffer-limit: pending replies past it (Redis' hard
 *     limit; no error is sent, as in Redis);
 *   - --client-query-buffer-limit: a partly received request holding more
 *     (resp.h counts it); it gets "-ERR max query buffer length reached
 *     ..." first;
 *   - --maxmemory-clients: when every open client's memory together (query
 *     buffer + input buffer + unanswered requests + pending replies) passes
 *     it, the client using the most is disconnected, then the next, until
 *     the sum is below (Redis 7's client eviction);
 *   - --timeout: a client idle that long (no request unanswered) is closed.
 * Disconnects for a limit happen at the end of the loop iteration (a check
 * handle), never inside a command.  At most cfg->max_clients connections;
 * the next one is told "max number of clients reached" and closed.
 *
 * --maxmemory: a cron timer (NODE_CRON_INTERVAL_MS) samples the resident
 * set size (memory.h); while it is above --maxmemory, commands that run
 * queries are refused with Redis' "-OOM command not allowed when used
 * memory > 'maxmemory'." (node_over_maxmemory; commands.c marks them).
 * The same timer closes idle clients, keeps the recent maximum buffer sizes
 * that INFO shows (client_recent_max_input_buffer / _output_buffer, over
 * the last NODE_RECENT_MAX_SLOTS_COUNT seconds, as Redis), and asks the
 * offload pool to return freed memory to the system (malloc_trim) when no
 * request is unanswered and either the resident size grew by
 * NODE_TRIM_GROWTH_BYTES since the last trim or that much was freed in
 * large buffers (replies written or dropped, large requests), or when the
 * node is over --maxmemory; at most once per NODE_TRIM_INTERVAL_MS.
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

#include "memory.h"
#include "offload.h"

#define NODE_CLIENT_PENDING_COUNT_MAX 1024
/* Output soft limit: pending replies past it pause the connection (below
 * the hard limit: half of it when --client-output-buffer-limit is lower). */
#define NODE_CLIENT_OUTPUT_SIZE_MAX_BYTES (64u * 1024 * 1024)
/* Reads of one connection unanswered at once (running, queued or waiting
 * for the connection's earlier writes).  Two reader threads per core at most
 * run anyway; 8 keep a pipelining client's reads overlapping while bounding
 * what they can produce to 8 replies. */
#define NODE_CLIENT_READS_IN_FLIGHT_COUNT_MAX 8
/* Request bytes of one connection parsed and not yet answered. */
#define NODE_CLIENT_REQUESTS_PAUSE_SIZE_BYTES (64u * 1024 * 1024)
#define NODE_READ_BUFFER_SIZE_BYTES (64 * 1024)
/* Bytes read from one connection per loop iteration.  libuv reads a
 * readable socket up to 32 times in one go; a client uploading a large
 * request would then cost the loop 2 MiB of copying per iteration, which
 * with first-touch page faults measured 12-30 ms on this VM.  Past the
 * budget the connection stops reading until the next iteration. */
#define NODE_READ_ITERATION_SIZE_MAX_BYTES (256 * 1024)
/* Request bytes dispatched plus reply bytes produced at once, per
 * connection per loop iteration: past it the connection dispatches again
 * in the next iteration (at least one request always runs).  Bounds what a
 * pipeline of commands answered on the loop thread (a checkpoint READ of
 * 4 MiB, an ECHO of a large argument) costs one iteration. */
#define NODE_DISPATCH_ITERATION_SIZE_MAX_BYTES (1024 * 1024)
#define NODE_CRON_INTERVAL_MS 100          /* memory sample, idle clients, recent maxima, trims */
#define NODE_RECENT_MAX_SLOTS_COUNT 8      /* seconds over which INFO's client_recent_max_* are kept */
#define NODE_TRIM_GROWTH_BYTES (64u * 1024 * 1024) /* RSS growth since the last trim that asks for one */
#define NODE_TRIM_INTERVAL_MS 5000         /* at most one malloc_trim this often */
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
    uint64_t request_bytes;   /* its request's size, counted in client->requests_bytes until answered */
    uint64_t reply_counted_bytes; /* buf.len counted in client->reply_bytes (ready, not yet written) */
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
    bool in_input;            /* parsing and dispatching: no re-entry */
    bool admitting;           /* a request is admitted off the loop: dispatch nothing after it */
    uint8_t close_reason;     /* node_close_reason; != NONE: closed at the end of this loop iteration */
    resp_parser parser;
    char *inbuf;              /* unparsed input kept while dispatch is paused (malloc'd, <= one read) */
    size_t inbuf_len, inbuf_off;
    uint64_t requests_bytes;  /* sizes of its requests parsed and not yet answered */
    uint64_t reply_bytes;     /* finished replies queued, not yet handed to the socket */
    uint64_t mem_counted_bytes; /* its share of node.clients_memory_bytes */
    uint64_t last_interaction_ms; /* uv_now of its last read or completed socket write */
    uint64_t read_iteration;  /* node.iteration of its last read */
    uint64_t read_iteration_bytes; /* bytes read in that iteration */
    bool read_throttled;      /* past an iteration budget: reads and dispatches again next iteration */
    uint64_t dispatch_iteration; /* node.iteration of its last dispatch */
    uint64_t dispatch_iteration_bytes; /* request + immediate reply bytes in that iteration */
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

/* Why a client was disconnected by the server (counted in INFO stats). */
typedef enum node_close_reason {
    NODE_CLOSE_NONE = 0,
    NODE_CLOSE_OUTPUT_LIMIT,   /* --client-output-buffer-limit */
    NODE_CLOSE_CLIENTS_MEMORY, /* --maxmemory-clients: evicted */
    NODE_CLOSE_IDLE,           /* --timeout */
} node_close_reason;

struct node {
    uv_loop_t *loop;
    const node_config *cfg;
    qs_db *db;
    repl *repl;               /* NULL in tests without raft */
    readers *readers;
    offload *offload;         /* set by main: long admissions, large encodings, trims; NULL: all inline */
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
    /* Memory and client limits (see the top): */
    uv_timer_t cron_timer;        /* NODE_CRON_INTERVAL_MS */
    bool cron_timer_open;
    uv_check_t close_check;       /* closes clients marked by a limit, at the end of the iteration */
    bool close_check_open;
    uv_check_t iteration_check;   /* counts loop iterations; lets throttled clients read again */
    bool iteration_check_open;
    uint64_t iteration;
    uint32_t throttled_count;     /* clients with read_throttled */
    uint64_t clients_memory_bytes;/* sum of mem_counted_bytes of open clients */
    uint64_t requests_unanswered; /* slots of every connection not yet answered */
    uint64_t used_memory_bytes;   /* resident set size, last sample */
    uint64_t used_memory_peak_bytes;
    uint64_t recent_max_input_bytes[NODE_RECENT_MAX_SLOTS_COUNT];  /* per second, ring */
    uint64_t recent_max_output_bytes[NODE_RECENT_MAX_SLOTS_COUNT];
    uint64_t recent_second;       /* the second (uv_now / 1000) the current slot is for */
    uint64_t last_idle_check_ms;
    uint64_t evicted_clients;     /* --maxmemory-clients (Redis: evicted_clients) */
    uint64_t output_limit_disconnections; /* Redis 7.4: client_output_buffer_limit_disconnections */
    uint64_t query_limit_disconnections;  /* Redis 7.4: client_query_buffer_limit_disconnections */
    uint64_t idle_disconnections;
    uint64_t oom_rejections;      /* commands refused with -OOM */
    uint64_t admissions_inline;   /* admission.h */
    uint64_t admissions_offloaded;
    bool trim_inflight;
    uint64_t trim_last_ms;        /* uv_now when the last trim was asked for */
    uint64_t trim_rss_after_bytes;/* RSS after the last trim (or at start) */
    uint64_t trim_freed_bytes;    /* large buffers freed since the last trim */
    uint64_t trims_total;
    uint64_t trim_last_duration_us;
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
    /* The same, taking the malloc'd text buffer instead of copying it
     * (fwd_write_owned); NULL: router.c uses write. */
    void (*write_owned)(fwd *f, const sm_command *cmd, char *text_owned, repl_reply_fn cb, void *ctx);
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

/* Keep c alive across asynchronous steps (node_client_unref frees it once
 * it is closed and nothing else refers to it).  Thread: loop. */
void node_client_ref(node_client *c);
void node_client_unref(node_client *c);

/* Off-loop work for s, the newest slot of c (admission.h): s is held (in
 * flight) and c dispatches nothing more until node_client_offload_end. */
void node_client_offload_begin(node_client *c, node_slot *s);

/* The off-loop work of s is over: s is no longer held and not answered
 * (the caller goes on with it: holds it again or answers it).  The caller
 * holds a reference (node_client_ref) across this call and what it does
 * with s, then calls node_client_resume and node_client_unref. */
void node_client_offload_end(node_client *c, node_slot *s);

/* Free req (left empty): on the offload pool when it is large
 * (NODE_FREE_OFFLOAD_SIZE_MIN_BYTES; unmapping a large argument costs the
 * loop thread ~0.2 ms per MB on this VM), else here.  Thread: loop. */
#define NODE_FREE_OFFLOAD_SIZE_MIN_BYTES (1024u * 1024)
void node_request_release(node *n, resp_request *req);

/* Fill s's reply with encode(out, r, arg), then free r and complete s
 * (node_slot_done; s must be held).  When r is larger than
 * NODE_ENCODE_INLINE_SIZE_MAX_BYTES (its arena) and the offload pool takes
 * the job, the encoding and the free of r's arena run there, so a large
 * write result never costs the loop thread; else here.  arg is the
 * encoder's (router: --compact; forward: the log index).  Takes r.
 * Thread: loop. */
#define NODE_ENCODE_INLINE_SIZE_MAX_BYTES (64u * 1024)
typedef void (*node_encode_fn)(reply_buf *out, const query_result *r, uint64_t arg);
void node_slot_reply_result(node_slot *s, query_result *r, node_encode_fn encode, uint64_t arg);

/* Dispatch what c's input buffer holds if its limits allow, send the
 * replies that are ready, and read again when there is room.  Safe to call
 * on a closing client (does nothing).  The caller holds a reference. */
void node_client_resume(node_client *c);

/* True while the last memory sample is above --maxmemory (0: never).
 * Thread: loop. */
bool node_over_maxmemory(const node *n);

/* The largest reply a command of this node builds (node_config_reply_size_max_bytes). */
size_t node_reply_size_max(const node *n);

/* INFO's client_recent_max_input_buffer and _output_buffer: the largest
 * query buffer (with the input buffer) and the largest pending output of
 * any client over the last NODE_RECENT_MAX_SLOTS_COUNT seconds.  Thread: loop. */
void node_recent_max_buffers(const node *n, uint64_t *input_bytes, uint64_t *output_bytes);

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

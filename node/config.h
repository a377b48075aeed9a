/*
 * config.h -- quiverd's command-line flags.
 *
 * Defaults give the embedded single-node database the issue asks for:
 * `quiverd` alone serves RESP on 127.0.0.1:6379 with its data in
 * ./quiver-data (RocksDB in DIR/db, the raft log in DIR/raft), as raft node
 * 1 of a one-node cluster whose raft port is the client port + 1000.
 *
 * The client port binds 127.0.0.1 by default, like Redis' shipped
 * configuration: Quiver has no authentication, so listening on every
 * interface must be asked for (--bind 0.0.0.0, e.g. inside a container).
 *
 * Client limits (DESIGN.md 7a) use Redis' names and meanings where Redis
 * has them: --maxclients (alias --max-clients), --timeout,
 * --client-output-buffer-limit (the hard limit of the normal class, in
 * bytes), --client-query-buffer-limit, --maxmemory, --maxmemory-clients.
 * Byte values take Redis' units: 1k = 1000, 1kb = 1024, m/mb, g/gb
 * (case-insensitive); --maxmemory-clients also takes N% (of --maxmemory).
 * Defaults that depend on the machine (--maxmemory, --maxmemory-clients)
 * are resolved here, once, and --help prints the values of this machine.
 *
 * Thread: parse once in main, before anything starts; read-only afterwards.
 */
#ifndef QUIVER_NODE_CONFIG_H
#define QUIVER_NODE_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../raft/replication.h"

#define QUIVER_VERSION "0.1.0"
#define NODE_DATA_DIR_DEFAULT "./quiver-data"
#define NODE_PORT_DEFAULT 6379
#define NODE_BIND_DEFAULT "127.0.0.1"
#define NODE_RAFT_PORT_OFFSET 1000   /* default raft port = client port + this */
/* Failover: raft draws each follower's election timeout from [T, 2T), so a
 * dead leader is noticed after 250-500 ms and a new one serves (pre-vote,
 * vote, barrier: a few ms here) well within a second; measured in
 * bench/cluster (failover).  Shorter risks needless elections when a loaded
 * machine delays heartbeats (every 25 ms); raft's leader stickiness makes
 * followers that heard from a live leader refuse pre-votes, which keeps a
 * slow node from deposing a healthy leader. */
#define NODE_ELECTION_TIMEOUT_MS_DEFAULT 250
#define NODE_HEARTBEAT_TIMEOUT_MS_DEFAULT 25
#define NODE_READER_THREADS_COUNT_MAX 256
#define NODE_PATH_SIZE_MAX_BYTES 4096
/* Between raft snapshots (markers, DESIGN.md 5).  Each snapshot flushes
 * RocksDB, so not too often; the trailing entries stay in the log (and in
 * raft's memory) after one, so that a follower that was away for a few
 * seconds -- a restart, a pause, a short partition -- catches up from the
 * log.  Past that it copies a RocksDB checkpoint (node/catchup.c), which
 * takes a second or two, so the trailing window must outlast a copy under
 * load: 16384 entries is about 10 s at 1,500 entries/s (the Docker fault
 * test's write load).  With 256, a node caught up by checkpoint was behind
 * the window again by the time it restarted, and looped. */
#define NODE_SNAPSHOT_THRESHOLD_DEFAULT 4096
#define NODE_SNAPSHOT_TRAILING_DEFAULT 16384
#define NODE_FORWARD_TIMEOUT_MS_DEFAULT 10000 /* a forwarded request's deadline, retries included */

typedef struct node_config {
    char data_dir[NODE_PATH_SIZE_MAX_BYTES];
    char db_dir[NODE_PATH_SIZE_MAX_BYTES + 8];    /* data_dir/db */
    char raft_dir[NODE_PATH_SIZE_MAX_BYTES + 8];  /* data_dir/raft */
    char bind[64];
    uint16_t port;
    uint64_t node_id;
    char raft_address[REPL_ADDRESS_SIZE_MAX_BYTES];
    uint32_t peer_count;                      /* >= 1: includes this node */
    repl_peer peers[REPL_PEERS_COUNT_MAX];
    /* peers[i]'s client (RESP) address, where writes are forwarded when it
     * leads (node/forward.c): the @ part of --peers, or the raft host with
     * the raft port - NODE_RAFT_PORT_OFFSET. */
    char peer_client_addresses[REPL_PEERS_COUNT_MAX][REPL_ADDRESS_SIZE_MAX_BYTES];
    uint64_t forward_timeout_ms;              /* --forward-timeout-ms */
    uint16_t admin_port;                      /* 0: no admin HTTP port */
    uint32_t election_timeout_ms;
    uint32_t heartbeat_timeout_ms;
    uint64_t max_request_bytes;
    uint32_t reader_threads;
    uint32_t max_clients;
    uint32_t read_consistency;                /* --read-consistency: a new connection's level
                                                 (node_consistency in server.h: 0 linearizable,
                                                 1 session, 2 stale) */
    bool join;                                /* --join: do not bootstrap; wait for QUIVER.CLUSTER ADD */
    uint32_t snapshot_threshold;              /* --snapshot-threshold: entries between snapshots */
    uint32_t snapshot_trailing;               /* --snapshot-trailing: entries kept after one */
    /* Replication budgets (repl_config, raft/replication.h): */
    uint64_t max_entry_bytes;                 /* --max-entry-bytes: largest log entry this node proposes */
    uint64_t write_work_max;                  /* --write-work-max: work units per write (query/engine.h) */
    uint64_t query_memory_max_bytes;          /* --query-memory-max-bytes: arena cap per query */
    /* Client limits (server.h): */
    uint64_t client_output_buffer_limit_bytes;/* --client-output-buffer-limit; 0 = none */
    uint64_t client_query_buffer_limit_bytes; /* --client-query-buffer-limit (resolved, never 0) */
    uint32_t timeout_s;                       /* --timeout: idle seconds before a client is closed; 0 = never */
    uint64_t maxmemory_bytes;                 /* --maxmemory (resolved); 0 = none */
    uint64_t maxmemory_clients_bytes;         /* --maxmemory-clients (resolved); 0 = none */
    uint64_t machine_memory_bytes;            /* what the defaults were computed from (memory.h) */
} node_config;

/* The largest reply this node builds for one request: the reply buffer cap,
 * lowered to --client-output-buffer-limit (a longer reply could never be
 * delivered: the client would be disconnected).  Thread: any. */
uint64_t node_config_reply_size_max_bytes(const node_config *cfg);

/* Parse a byte count the way Redis reads memory settings: digits with an
 * optional unit k (1000), kb (1024), m, mb, g, gb (any case), nothing
 * else.  Returns false on anything else or overflow.  Pure. */
bool node_config_parse_bytes(const char *s, uint64_t *out);

typedef enum node_config_result {
    NODE_CONFIG_RUN = 0,      /* start the server */
    NODE_CONFIG_EXIT_OK = 1,  /* --help or --version printed: exit 0 */
    NODE_CONFIG_ERROR = 2,    /* bad flags: err says why; print usage, exit 2 */
} node_config_result;

/* Parse argv into *cfg (defaults first).  Returns NODE_CONFIG_RUN,
 * NODE_CONFIG_EXIT_OK (after printing help/version to out), or
 * NODE_CONFIG_ERROR with err (NUL-terminated) naming the bad flag or value.
 * Thread: main, before anything else runs. */
node_config_result node_config_parse(int argc, char **argv, node_config *cfg, FILE *out, char *err,
                                     size_t err_size_bytes);

/* Print the usage text (every flag, its default, its unit). */
void node_config_usage(FILE *f);

#endif

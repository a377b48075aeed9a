/*
 * limits.h -- every bound in one place (TigerBeetle style: a limit on
 * everything).  A limit that is a run-time flag has its default here.
 *
 * Units go last in names.  Changing a limit that shapes on-disk or on-wire
 * data (key sizes, id widths) is a format change; the others are policy.
 */
#ifndef QUIVER_LIMITS_H
#define QUIVER_LIMITS_H

/* Client protocol (node/: resp.c, server.c, config.c; README quotes these).
 * Every buffer a client can fill has a bound (DESIGN.md 7a). */
/* --max-request-bytes: the sum of one request's argument sizes.  A bulk
 * length announced over it is refused at its header, before any byte of it
 * is buffered.  64 MiB: `quiver import` batches are 4 MiB by default, and a
 * write must also fit one raft entry (--max-entry-bytes, 64 MiB). */
#define QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT (64ull * 1024 * 1024)
/* Elements in one RESP array.  Quiver's commands take a handful of
 * arguments (GRAPH.QUERY g q --compact TIMEOUT ms is six); Redis' 1M let a
 * client make the server hold ~50 bytes of bookkeeping per one-byte
 * argument. */
#define QUIVER_RESP_ARGS_COUNT_MAX 1024
#define QUIVER_RESP_INLINE_SIZE_MAX_BYTES (64 * 1024)
#define QUIVER_CLIENTS_COUNT_MAX 10000 /* --maxclients: upper bound and default */
/* One reply (a result set) at most; a client's --client-output-buffer-limit
 * lowers it for that node (a reply larger than the limit could never be
 * delivered). */
#define QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES (1024ull * 1024 * 1024)
/* --client-output-buffer-limit: a client whose pending replies (finished,
 * not yet written, plus bytes handed to the socket) pass it is disconnected
 * (Redis' hard limit).  The default lets one reply of the largest size
 * through. */
#define QUIVER_CLIENT_OUTPUT_BUFFER_LIMIT_BYTES_DEFAULT QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES
/* --client-query-buffer-limit defaults to --max-request-bytes plus this:
 * room for the per-argument bookkeeping of QUIVER_RESP_ARGS_COUNT_MAX
 * arguments (resp.h counts 64 bytes each) and the header line, so that
 * every request the request limit admits also fits the query buffer. */
#define QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES (1024ull * 1024)
#define QUIVER_CLIENT_QUERY_BUFFER_LIMIT_BYTES_MIN (64ull * 1024) /* smallest accepted value */
/* --timeout: seconds a client may stay idle (nothing in flight); 0 = never
 * (Redis' default). */
#define QUIVER_CLIENT_TIMEOUT_S_DEFAULT 0
/* --maxmemory default: this percentage of the machine's memory (physical
 * memory, or the cgroup's memory.max when lower, e.g. in a container).
 * The rest is headroom for what a running query allocates between two
 * samples of the used memory, RocksDB and the kernel. */
#define QUIVER_MAXMEMORY_PERCENT_DEFAULT 75
/* --maxmemory-clients default: this percentage of --maxmemory (of the
 * machine's memory when --maxmemory is 0): the buffers of all clients
 * together; past it the client using the most is disconnected. */
#define QUIVER_MAXMEMORY_CLIENTS_PERCENT_DEFAULT 50

/* Names. */
#define QUIVER_GRAPH_NAME_SIZE_MAX_BYTES 512
#define QUIVER_SCHEMA_NAME_SIZE_MAX_BYTES 4096 /* label, type, property key */
#define QUIVER_GRAPHS_COUNT_MAX 4096

/* Schema ids are dense u32 from 0; a graph may not define more than this. */
#define QUIVER_SCHEMA_IDS_COUNT_MAX (1u << 20)
#define QUIVER_LABELS_PER_NODE_COUNT_MAX 64
#define QUIVER_PROPERTIES_PER_ENTITY_COUNT_MAX 4096

/* Values. */
#define QUIVER_STRING_SIZE_MAX_BYTES (64u * 1024 * 1024)
#define QUIVER_LIST_COUNT_MAX (16u * 1024 * 1024)
#define QUIVER_VALUE_DEPTH_MAX 64 /* nesting of lists and maps */
#define QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES 256 /* strings at least this long are LZ4-compressed when it helps */

/* Queries. */
#define QUIVER_QUERY_TEXT_SIZE_MAX_BYTES (512ull * 1024 * 1024)
#define QUIVER_QUERY_AST_DEPTH_MAX 256
#define QUIVER_QUERY_MEMORY_MAX_BYTES (4ull * 1024 * 1024 * 1024) /* arena cap per query */
#define QUIVER_QUERY_RESULT_ROWS_COUNT_MAX (64u * 1024 * 1024)
#define QUIVER_QUERY_TIMEOUT_MS_DEFAULT 0 /* 0: no timeout unless TIMEOUT is given */
/* Threads that run queries (reader threads, the apply thread) are created
 * with exactly this stack, so that the query engine's stack-budget check
 * (QUIVER_QUERY_STACK_BUDGET_BYTES, well below it) trips at the same depth on
 * every replica running the same binary, whatever `ulimit -s` says. */
#define QUIVER_QUERY_THREAD_STACK_SIZE_BYTES (64u * 1024 * 1024)
#define QUIVER_QUERY_STACK_BUDGET_BYTES (16u * 1024 * 1024)
/* Deterministic work budget of one write (--write-work-max), in the work
 * units query/engine.h defines; about one second of work on a 2-core
 * machine (measured: see query/engine.h). */
#define QUIVER_WRITE_WORK_MAX_DEFAULT (20ull * 1000 * 1000)

/* Replication and state machine. */
#define QUIVER_APPLY_QUEUE_COUNT_MAX 4096       /* committed entries waiting for the apply thread */
#define QUIVER_ENTRY_COMMANDS_COUNT_MAX 4096    /* commands batched into one log entry */
#define QUIVER_ENTRY_SIZE_MAX_BYTES (1024ull * 1024 * 1024) /* hard bound when applying (format) */
#define QUIVER_ENTRY_PROPOSE_SIZE_MAX_BYTES_DEFAULT (64ull * 1024 * 1024) /* --max-entry-bytes */
#define QUIVER_DEDUP_TABLE_COUNT_MAX 65536      /* remembered request ids */
/* Reader threads default to one per online core, at most this many: on the
 * 2-core machine more readers than cores measured slower (thread hand-offs
 * and context switches dominate a ~30 us point lookup). */
#define QUIVER_READER_THREADS_COUNT_DEFAULT_MAX 16
#define QUIVER_READ_QUEUE_COUNT_MAX 65536

#endif

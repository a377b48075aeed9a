/*
 * limits.h -- every bound in one place (TigerBeetle style: a limit on
 * everything).  A limit that is a run-time flag has its default here.
 *
 * Units go last in names.  Changing a limit that shapes on-disk or on-wire
 * data (key sizes, id widths) is a format change; the others are policy.
 */
#ifndef QUIVER_LIMITS_H
#define QUIVER_LIMITS_H

/* Client protocol. */
#define QUIVER_REQUEST_SIZE_MAX_BYTES_DEFAULT (512ull * 1024 * 1024) /* --max-request-bytes */
#define QUIVER_RESP_ARGS_COUNT_MAX (1024 * 1024)  /* elements in one RESP array */
#define QUIVER_RESP_INLINE_SIZE_MAX_BYTES (64 * 1024)
#define QUIVER_CLIENTS_COUNT_MAX 10000
#define QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES (1024ull * 1024 * 1024)

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

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
/* Nesting of lists and maps in one value: a scalar, node, relationship or
 * path has depth 0, a list or map 1 + the deepest of its elements.  The
 * query engine refuses to build a deeper value (value.h), so every
 * recursive walk of a value (equality, order, hash, copy, encode, print)
 * is bounded.  Entities are leaves here: their stored properties are
 * primitives or lists of primitives (storage refuses anything deeper than
 * this limit too). */
#define QUIVER_VALUE_DEPTH_MAX 64
/* Elements in one value, counted through every level (a list of 10 lists
 * of 10 integers holds 110).  Values may share parts (`WITH [x, x] AS x`
 * doubles the count without doubling the memory), so without this bound a
 * few clauses build a value whose comparison or copy never ends.  Far
 * above any value that fits the query memory cap unshared (24 bytes per
 * element): an import batch of 1M rows of 30 columns holds 31M. */
#define QUIVER_VALUE_ELEMENTS_COUNT_MAX (64u * 1024 * 1024)
/* Entries of one map value (a literal, a parameter, a computed map).  Map
 * keys are unordered, so comparing two maps is quadratic in their size;
 * this keeps one comparison bounded.  As many as an entity may have
 * properties (a map is their natural container). */
#define QUIVER_VALUE_MAP_COUNT_MAX 4096u
/* Recursion depth the value walkers (value.c, storage, replies) assert:
 * list and map nesting plus an entity's property values, which storage
 * bounds by QUIVER_VALUE_DEPTH_MAX separately, plus the entity itself. */
#define QUIVER_VALUE_RECURSION_DEPTH_MAX (2 * QUIVER_VALUE_DEPTH_MAX + 4)
#define QUIVER_PROPERTY_LZ4_THRESHOLD_BYTES 256 /* strings at least this long are LZ4-compressed when it helps */

/* Queries.  Statement limits: checked by the parser and the planner, so
 * query_admit (before a write is proposed) and query_run_* (every replica,
 * again) refuse the same statements.  A statement over one fails with an
 * error that starts with "ERR " and names the limit and its value (engine.h
 * lists the texts).  Generous: `quiver import` batches (one CYPHER
 * parameter of up to 1M rows, a short body) and CREATE statements with
 * tens of thousands of comma-separated parts pass; they exist to keep the
 * planner's and the executor's work linear in the text and their recursion
 * shallow. */
#define QUIVER_QUERY_TEXT_SIZE_MAX_BYTES (512ull * 1024 * 1024)
#define QUIVER_QUERY_AST_DEPTH_MAX 256
/* Clauses of a statement, all UNION parts together.  Each clause adds
 * operators to a chain that execution walks recursively. */
#define QUIVER_QUERY_CLAUSES_COUNT_MAX 1024
/* Operators of the whole plan: every UNION part and every sub-pipeline
 * (OPTIONAL MATCH, MERGE, pattern predicates) included. */
#define QUIVER_QUERY_OPERATORS_COUNT_MAX 4096
/* Expression (AST) nodes of a statement.  Constant lists (and the CYPHER
 * parameters) are folded into one node each, so bulk data does not count
 * element by element. */
#define QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX (1024u * 1024)
/* One string literal, bytes after unescaping (a value cannot be longer). */
#define QUIVER_QUERY_LITERAL_STRING_SIZE_MAX_BYTES QUIVER_STRING_SIZE_MAX_BYTES
/* Elements of one list literal (CYPHER parameters included); a map
 * literal has at most QUIVER_VALUE_MAP_COUNT_MAX entries. */
#define QUIVER_QUERY_LITERAL_LIST_COUNT_MAX QUIVER_LIST_COUNT_MAX
/* Relationships in one path pattern, (a)-[]->(b)-[]->... (a variable-length
 * relationship counts once). */
#define QUIVER_QUERY_PATH_RELS_COUNT_MAX 128
/* Comma-separated parts of one CREATE pattern (bulk loads write thousands
 * of nodes in one statement; planning and execution are linear in them). */
#define QUIVER_QUERY_CREATE_PARTS_COUNT_MAX (64u * 1024)
/* Comma-separated parts of one MATCH / OPTIONAL MATCH pattern: each is a
 * cartesian product factor, and choosing where to start is quadratic in
 * the pattern's size. */
#define QUIVER_QUERY_MATCH_PARTS_COUNT_MAX 64
/* Items of one ORDER BY (as for RETURN / WITH items). */
#define QUIVER_QUERY_SORT_ITEMS_COUNT_MAX 4096
/* Aggregate calls in one RETURN / WITH. */
#define QUIVER_QUERY_AGGREGATES_COUNT_MAX 1024
/* Regular expressions (`=~`, PCRE2; query/regex.c).  A pattern is compiled
 * once per query (constants at plan time, so admission refuses a bad one);
 * these bound one compilation and one match, deterministically (counted by
 * PCRE2, never timed; no JIT). */
#define QUIVER_QUERY_REGEX_PATTERN_SIZE_MAX_BYTES (16u * 1024)
#define QUIVER_QUERY_REGEX_PARENS_NEST_MAX 64
/* Counted repetition ({m,n}), nested counts multiplied: `(a{1,10}){1,20}`
 * repeats 200 times.  PCRE2 compiles a counted repeat of a group by copying
 * it, so nested counts multiply the program: `(a{1,1000}){1,300}` (18
 * bytes; 13.7 s and 5.1 GB in glibc's regcomp) is refused.  RE2's rule and
 * value. */
#define QUIVER_QUERY_REGEX_REPEAT_MAX 1000u
#define QUIVER_QUERY_REGEX_COMPILE_MEMORY_MAX_BYTES (1024u * 1024)
#define QUIVER_QUERY_REGEX_MATCH_LIMIT 1000000u     /* PCRE2 match limit (backtracking steps) */
#define QUIVER_QUERY_REGEX_DEPTH_LIMIT 10000u       /* PCRE2 depth limit (nested backtracking points) */
#define QUIVER_QUERY_REGEX_HEAP_LIMIT_KIB 16384u    /* PCRE2 heap limit of one match, KiB */
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
 * units query/engine.h defines; about one second of work on the 2-core
 * reference machine.  Measured with bench/query/work_units.c (thread CPU
 * time of query_run_write, Debian 12, RocksDB 7.8, a machine shared with
 * other builds): ns per unit, 21-24 UNWIND range + CREATE, 17-19 import
 * batches, 24-41 MATCH + SET, 11 a cartesian product into one CREATE, 16-17
 * a regex-heavy write, 27-31 a nested UNWIND buffered by CREATE, 7-20 a
 * sort, 5 DISTINCT + collect: about 19 ns in the median, so 50M units is
 * about a second.  The 3.6e9-row write stops after 1.9 s (560 MB);
 * a 5,000-row import batch of 5 columns uses about 3.5M units. */
#define QUIVER_WRITE_WORK_MAX_DEFAULT (50ull * 1000 * 1000)

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

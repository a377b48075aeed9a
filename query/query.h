/*
 * query.h -- the query engine's public face: run one openCypher statement
 * against a storage view (reads) or the apply thread's transaction (writes)
 * and produce a self-contained result set.
 *
 * The same code runs reads on reader threads and writes on the apply
 * thread.  Writes are deterministic (DESIGN.md section 3): timestamp() and
 * rand() come from query_request.timestamp_ms and .seed, iteration follows
 * key order, never hash order, and nothing reads the local clock except to
 * measure execution time for the statistics.
 *
 * Result sets follow FalkorDB's model (docs: "Result Set Structure" and
 * "Client Specification"): header (column names), rows of values, and
 * statistics; node/reply.c turns them into verbose or --compact RESP.
 *
 * Memory: a query_result owns one arena holding everything it references;
 * free it with query_result_free.  Thread: a result may be handed to another
 * thread (e.g. apply thread -> loop thread) once complete.
 */
#ifndef QUIVER_QUERY_QUERY_H
#define QUIVER_QUERY_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/value.h"
#include "../storage/graph.h"

/* FalkorDB's statistics, in the order its verbose reply prints them. */
typedef struct query_stats {
    uint64_t labels_added;
    uint64_t labels_removed;
    uint64_t nodes_created;
    uint64_t nodes_deleted;
    uint64_t properties_set;
    uint64_t properties_removed;
    uint64_t relationships_created;
    uint64_t relationships_deleted;
    uint64_t indices_created;
    uint64_t indices_deleted;
    double execution_time_ms;   /* measured; not replicated state */
} query_stats;

typedef enum query_status {
    QUERY_OK = 0,
    QUERY_ERR_SYNTAX,           /* parse error; message has line and column */
    QUERY_ERR_SEMANTIC,         /* e.g. undefined variable, aggregate misuse */
    QUERY_ERR_RUNTIME,          /* type error, division by zero, ... */
    QUERY_ERR_READ_ONLY,        /* write clause in GRAPH.RO_QUERY */
    QUERY_ERR_TIMEOUT,          /* TIMEOUT ms exceeded */
    QUERY_ERR_LIMIT,            /* memory / rows / hops limit */
    QUERY_ERR_NO_GRAPH,         /* read of a graph that does not exist */
} query_status;

typedef struct query_result {
    q_arena arena;              /* owns everything below */
    query_status status;
    char *error;                /* NUL-terminated message when status != QUERY_OK */
    uint32_t column_count;
    qv_str *columns;
    uint64_t row_count;
    qv_value *cells;            /* row-major: row_count * column_count; entities loaded */
    query_stats stats;
    bool wrote;                 /* the statement changed state */
    /* malloc failed somewhere in the run (an arena, the parser, a
     * traversal, PCRE2) -- as opposed to a limit, which is deterministic.
     * The status is then an error, but one other replicas may not have
     * had: the apply thread must fail-stop (abort; replay repairs) rather
     * than reply it and advance.  Reads may simply reply the error. */
    bool out_of_memory;
    uint64_t work;              /* work units the statement used, arenas' bytes included
                                   (what query_request.work_max is compared with) */
} query_result;

typedef struct query_request {
    const char *graph;          /* graph name */
    size_t graph_len;
    const char *text;           /* query text, may start with CYPHER params */
    size_t text_len;
    int64_t timestamp_ms;       /* value of timestamp(); leader's clock for writes */
    uint64_t seed;              /* seeds rand() */
    uint64_t timeout_ms;        /* 0: none.  Reads only: writes ignore it (they must
                                   finish identically everywhere) */
    bool read_only;             /* GRAPH.RO_QUERY: refuse writes */
    bool explain;               /* GRAPH.EXPLAIN: result rows are the plan lines */
    /* Deterministic work budget (DESIGN.md 3), in work units (engine.h,
     * "WORK UNITS": 1 per row an operator returns, per item read from
     * storage, per expression node evaluated, per list element built or
     * iterated, per entity or property written, per 64 string bytes; sorts,
     * hash probes and regex matches by formula; 1 per 16 bytes the
     * query's arenas hand out).  Never time: the same statement on the same state
     * uses the same units on every replica.  A statement over it fails
     * with QUERY_ERR_LIMIT and, for a write (query_run_write),
     * "ERR write exceeds its work budget (N units; raise --write-work-max)",
     * for a read "ERR query exceeds its work budget (N units)", N being
     * work_max.  Writes carry it in their log entry (the leader's
     * --write-work-max, default QUIVER_WRITE_WORK_MAX_DEFAULT); 0:
     * unlimited (entries of format version 1, written before budgets
     * existed, replay without one). */
    uint64_t work_max;
    /* Cap on the query's memory, bytes: the query's arena and its result's
     * arena together, counting bytes handed out (so it trips at the same
     * allocation on every replica).  0: QUIVER_QUERY_MEMORY_MAX_BYTES.
     * Writes carry it in their log entry. */
    uint64_t memory_max_bytes;
} query_request;

/* What admission learned about a statement (query_admit). */
typedef struct query_admission {
    bool writes;                /* an updating clause or index DDL */
} query_admission;

/* Limits a statement is held to, by admission and by every run (the
 * values are in common/limits.h; engine.h lists every error text):
 *   clauses (all UNION parts)        QUIVER_QUERY_CLAUSES_COUNT_MAX
 *   planned operators                QUIVER_QUERY_OPERATORS_COUNT_MAX
 *   expression nodes                 QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX
 *   string literal bytes             QUIVER_QUERY_LITERAL_STRING_SIZE_MAX_BYTES
 *   list literal elements            QUIVER_QUERY_LITERAL_LIST_COUNT_MAX
 *   relationships in one path        QUIVER_QUERY_PATH_RELS_COUNT_MAX
 *   parts of one CREATE / MATCH      QUIVER_QUERY_CREATE_PARTS_COUNT_MAX /
 *                                    QUIVER_QUERY_MATCH_PARTS_COUNT_MAX
 *   ORDER BY items, aggregates       QUIVER_QUERY_SORT_ITEMS_COUNT_MAX,
 *                                    QUIVER_QUERY_AGGREGATES_COUNT_MAX
 *   nesting                          QUIVER_QUERY_AST_DEPTH_MAX
 *   regular expressions              QUIVER_QUERY_REGEX_* (size, nesting,
 *                                    counted repetition, compile memory;
 *                                    match limits at run time)
 *   values                           QUIVER_VALUE_DEPTH_MAX,
 *                                    QUIVER_VALUE_ELEMENTS_COUNT_MAX
 * Each is an error starting with "ERR " that names the limit's value. */

/* Admission (DESIGN.md 3): everything that can be decided from the text
 * alone is decided here, before a write is proposed, by the node that
 * received it.  Parses, checks the statement limits of common/limits.h
 * (clauses, operators, expression size, literal sizes, pattern length,
 * nesting), plans it without storage (semantic errors), and compiles its
 * constant regular expressions with their limits.  A statement that passes
 * may still fail when it runs (data-dependent errors, the work budget), but
 * then identically on every replica.  A statement that only reads (and is
 * not EXPLAIN) is parsed and classified but not planned: it never reaches
 * the log, and the reader that runs it plans it and checks the planner's
 * limits then (admission of reads is the router's classification).
 * Successes on short texts are remembered per thread (the answer is a pure
 * function of the text).
 * Returns 0 with *out filled, or -1 with err (NUL-terminated, at most
 * err_size_bytes) holding the reply text: a syntax error in FalkorDB's
 * words with line and column, a semantic error, an invalid regular
 * expression ("ERR invalid regular expression ..."), or a limit error
 * starting with "ERR ".  Memory: the calling thread's reusable query arena
 * (nothing is kept).  Cost grows with len (about linearly: the planner has
 * no quadratic step the limits allow to grow): callers run long texts off
 * the loop thread (node/admission.c).  Stack: little (parser and planner
 * recursion are bounded by the AST depth, and checked against what the
 * thread has).  Thread: any. */
int query_admit(const char *text, size_t len, query_admission *out, char *err, size_t err_size_bytes);

/* Cheap classification for the router: parse only.  *writes true when the
 * statement has an updating clause or is index DDL.  Returns 0, or -1 with
 * err (NUL-terminated, size err_size_bytes) for a syntax error or a limit
 * the parser checks ("ERR ...": clauses, expression nodes, literals,
 * patterns, nesting).  Does not plan: query_admit does, for writes.
 * Thread: any. */
int query_classify(const char *text, size_t len, bool *writes, char *err, size_t err_size_bytes);

/* Run a read-only statement on a view (reader thread).  Never NULL: on error
 * result->status and ->error tell.  req->timeout_ms bounds it (saturating:
 * a timeout too large to add to the clock is none); req->work_max too when
 * set.  Best on a thread created with QUIVER_QUERY_THREAD_STACK_SIZE_BYTES
 * of stack (the stack budget is smaller on a smaller stack).  A missing graph gives an empty result
 * for queries that only read (FalkorDB creates graphs lazily) except where
 * FalkorDB errors.  Thread: the view's thread. */
query_result *query_run_read(qs_view *view, const query_request *req);

/* Run a statement on the apply thread's transaction.  Creates the graph if
 * missing.  On error the caller rolls back to a savepoint taken before the
 * call, so a failed statement has no effects -- unless
 * result->out_of_memory, when the caller must fail-stop (query_result).
 * Ignores req->timeout_ms; stops at req->work_max units and
 * req->memory_max_bytes bytes, identically on every replica.  Thread: the
 * apply thread, created with QUIVER_QUERY_THREAD_STACK_SIZE_BYTES of
 * stack so the stack budget trips at the same depth everywhere. */
query_result *query_run_write(qs_txn *txn, const query_request *req);

/* Free a result and its arena.  NULL is accepted. */
void query_result_free(query_result *r);

#endif

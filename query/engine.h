/*
 * engine.h -- internal interfaces of the query engine (not for other
 * modules): the execution context, compiled expressions, operators, and
 * the planner entry points.
 *
 * Design (see also query.c for the entry points):
 *   - A statement is parsed (parser.h), planned into a tree of operators per
 *     single query (plan.c), and executed by pulling rows from the root
 *     (exec.c, Volcano style).  Reads and writes use the same operators; a
 *     write simply has a qs_txn behind its view.
 *   - Rows are arrays of qv_value "slots".  Each variable (and each hidden
 *     intermediate: anonymous pattern elements, projection results,
 *     aggregate results) gets a slot number at plan time, so execution never
 *     looks names up.  All operators of one single query share ONE row
 *     array (ctx->row): an operator writes only its own slots, so a row
 *     flows through the chain without copying.  Operators that must hold
 *     rows (sort, aggregate, the eager write operators) copy the slots out
 *     and back.
 *   - Every pipeline starts at an ARGUMENT leaf that yields the current row
 *     once: at the top it is the empty row; inside OPTIONAL MATCH, MERGE and
 *     pattern predicates it is the outer row (an "apply" without copying).
 *   - Memory: everything lives in the query arena (ctx->a), freed at the
 *     end.  Only RocksDB iterators need explicit release (op_close).
 *   - Errors: the first error is recorded in the context (qctx_fail) and
 *     every operator stops; nothing is written after an error is seen, and
 *     the caller rolls the transaction back to its savepoint.
 *   - Guards (guard.c), so that no statement can crash, poison or stall a
 *     node (issue 7):
 *       * statement limits (common/limits.h): the parser counts clauses,
 *         expression nodes, literal sizes and pattern sizes, the planner
 *         counts operators; admission (query_admit) and every run check the
 *         same, so a command that reaches the apply thread without
 *         admission is held to them too;
 *       * a deterministic work budget (WORK UNITS below): writes carry
 *         query_request.work_max in their log entry and stop at the same
 *         unit on every replica; reads honour it too when it is set;
 *       * the deadline of a read (TIMEOUT), checked every
 *         QUERY_WORK_CHECK_INTERVAL units, including inside sort, list and
 *         regex loops, so no single step escapes it;
 *       * a stack budget: the run records its stack position; op_next,
 *         cx_eval and the planner's recursion fail with an error past
 *         QUIVER_QUERY_STACK_BUDGET_BYTES (less on a thread whose stack is
 *         smaller), instead of overflowing.  Recursion depth is also bounded
 *         by the limits (AST depth 256, operators 4096, value depth 64), so
 *         on the query threads (QUIVER_QUERY_THREAD_STACK_SIZE_BYTES) this
 *         is a backstop that trips at the same place on every replica
 *         running the same binary;
 *       * values are never built deeper than QUIVER_VALUE_DEPTH_MAX or with
 *         more than QUIVER_VALUE_ELEMENTS_COUNT_MAX elements
 *         (qctx_seal_list/qctx_seal_map), so walking one is bounded;
 *       * memory: the query's arenas share one byte budget
 *         (query_request.memory_max_bytes); a failed malloc (as opposed to
 *         a limit) sets qctx.out_of_memory, which the result reports so the
 *         apply thread can fail-stop instead of diverging.
 *
 * WORK UNITS (the unit of query_request.work_max).  Counted, never timed,
 * so a statement uses the same number of units on every replica (same
 * binary, same state, same entry):
 *   - 1 per row an operator returns (a row that passes three operators
 *     costs 3);
 *   - QUERY_WORK_ITERATOR_STEP_UNITS per item a scan, seek or expansion
 *     reads from storage, whether or not a row comes of it (nodes scanned,
 *     relationships examined by expansions and variable-length traversals),
 *     plus 1 per 16 earlier relationships checked for uniqueness;
 *   - QUERY_WORK_STORAGE_READ_UNITS per storage read by key (a node or
 *     relationship record, a property in a write, a label test, an
 *     existence check) and per iterator opened (a scan, an index seek, a
 *     node's relationships of one type and direction);
 *   - 1 per expression node evaluated (cx_eval);
 *   - 1 per list or map element built, copied or iterated: list and map
 *     literals, range(), UNWIND, comprehensions, quantifiers, list
 *     functions, collect(), `+` on lists, results copied out;
 *   - for equality, ordering, IN and hashing of values: what value.h's
 *     counting walks report (1 per value visited, string bytes / 64);
 *   - 1 per 64 bytes of a string built or scanned (concatenation, string
 *     functions, STARTS WITH / ENDS WITH / CONTAINS);
 *   - 1 per step of a hash-table probe (DISTINCT, grouping, UNION);
 *   - ceil(log2 n) * (n + the walk cost of the n rows' keys) to sort n rows
 *     (charged before sorting: glibc's qsort may use a different algorithm
 *     on another machine, so actual comparisons are not counted; each row
 *     takes part in about log2 n comparisons);
 *   - writes: QUERY_WORK_ENTITY_WRITE_UNITS per node or relationship
 *     created (plus QUERY_WORK_LABEL_WRITE_UNITS per label and
 *     QUERY_WORK_PROPERTY_WRITE_UNITS per property with it),
 *     QUERY_WORK_ENTITY_DELETE_UNITS per one deleted,
 *     QUERY_WORK_PROPERTY_UPDATE_UNITS per property set or removed later
 *     and QUERY_WORK_LABEL_UPDATE_UNITS per label added or removed later
 *     (values also cost their walk), and for CREATE INDEX one property write
 *     per node of the label (the index is filled);
 *   - a regular expression match: QUERY_REGEX_CALL_UNITS + subject bytes
 *     / QUERY_REGEX_SUBJECT_BYTES_PER_UNIT, plus, when the match needed
 *     more than the first match-limit tier, each outgrown tier's steps /
 *     QUERY_REGEX_STEPS_PER_UNIT (regex.c); a compilation
 *     QUERY_REGEX_COMPILE_UNITS + 1 per pattern byte;
 *   - 1 per QUERY_WORK_ARENA_BYTES_PER_UNIT bytes handed out by the query's
 *     arenas (AST, plan, intermediate values, buffered rows, the result);
 *     a large allocation is checked against the budget before it is made
 *     (qctx_reserve).
 * Sized so that QUIVER_WRITE_WORK_MAX_DEFAULT units are about one second
 * of work on the reference machine (2 cores; the measurements are in
 * common/limits.h).
 *
 * Limit errors (status QUERY_ERR_LIMIT; the text is what the client sees,
 * the same on every replica):
 *   "ERR query text longer than N bytes (the limit)"                 entry
 *   "ERR query has more than N clauses (the limit)"                 parser
 *   "ERR query has more than N expression nodes (the limit)"        parser
 *   "ERR string literal longer than N bytes (the limit)"            parser
 *   "ERR list literal with more than N elements (the limit)"        parser
 *   "ERR map literal with more than N entries (the limit)"          parser
 *   "ERR path pattern with more than N relationships (the limit)"   parser
 *   "ERR CREATE pattern with more than N parts (the limit)"         parser
 *   "ERR MATCH pattern with more than N parts (the limit)"          parser
 *   "ERR ORDER BY with more than N items (the limit)"               parser
 *   "ERR query is nested too deeply (the limit is N levels)"        parser
 *   "ERR query plan has more than N operators (the limit)"          planner
 *   "ERR RETURN or WITH with more than N aggregates (the limit)"    planner
 *   "ERR query needs more than N bytes of stack (too deeply nested)" guard
 *   "ERR value nested deeper than N levels (the limit)"             values
 *   "ERR value with more than N elements (the limit)"               values
 *   "ERR map with more than N entries (the limit)"                  values
 *   "ERR write exceeds its work budget (N units; raise --write-work-max)"
 *   "ERR query exceeds its work budget (N units)"                   reads
 *   regex.c (an invalid pattern is QUERY_ERR_RUNTIME, the rest LIMIT):
 *   "ERR invalid regular expression '<p>': <PCRE2's message> at offset N"
 *   "ERR regular expression '<p>' is longer than N bytes (the limit)"
 *   "ERR regular expression '<p>' nests parentheses deeper than N levels
 *    (the limit) at offset K"
 *   "ERR regular expression '<p>' repeats more than N times (the limit on
 *    counted repetition, nested counts multiplied)"
 *   "ERR regular expression '<p>' needs more than N bytes to compile (the
 *    limit)", "... is too large to compile (PCRE2's limit on a program)"
 *   "ERR regular expression '<p>' exceeds the match limit of N steps
 *    (subject of K bytes)", likewise the depth limit and the heap limit
 */
#ifndef QUIVER_QUERY_ENGINE_H
#define QUIVER_QUERY_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/limits.h"
#include "../common/value.h"
#include "../storage/graph.h"
#include "ast.h"
#include "query.h"

/* The budget and the deadline are checked every this many work units
 * (and at least this often, whatever is being done). */
#define QUERY_WORK_CHECK_INTERVAL 1024u
/* Bytes handed out by a query's arenas per work unit.  Memory is charged
 * above what it costs in time (about 64 bytes per unit would match): so
 * that the default budget also bounds a write's memory, to about 800 MB. */
#define QUERY_WORK_ARENA_BYTES_PER_UNIT 16u
/* Storage operations, in units (one unit is roughly 10-30 ns of the
 * engine's own work; these weights make a storage operation cost about
 * what it takes, as measured by bench/query/work_units.c): */
#define QUERY_WORK_ITERATOR_STEP_UNITS 4u    /* an item read by an open iterator (scan, expansion) */
#define QUERY_WORK_STORAGE_READ_UNITS 64u    /* a record or property read by key, an iterator opened */
#define QUERY_WORK_ENTITY_WRITE_UNITS 128u   /* a node or relationship created */
#define QUERY_WORK_ENTITY_DELETE_UNITS 512u  /* a node or relationship deleted (record, adjacency, indexes) */
#define QUERY_WORK_PROPERTY_WRITE_UNITS 64u  /* a property written with its entity's record */
#define QUERY_WORK_LABEL_WRITE_UNITS 128u    /* a label written (label index entry) */
/* Changing an existing entity rewrites its record: a read plus the write
 * (a label twice: the record and the label index). */
#define QUERY_WORK_PROPERTY_UPDATE_UNITS (QUERY_WORK_STORAGE_READ_UNITS + QUERY_WORK_PROPERTY_WRITE_UNITS)
#define QUERY_WORK_LABEL_UPDATE_UNITS (QUERY_WORK_STORAGE_READ_UNITS + 2u * QUERY_WORK_LABEL_WRITE_UNITS)
/* Regex work (regex.c): a match call, subject bytes per unit, match-limit
 * steps per unit, a compilation (plus a unit per pattern byte). */
#define QUERY_REGEX_CALL_UNITS 64u
#define QUERY_REGEX_SUBJECT_BYTES_PER_UNIT 64u
#define QUERY_REGEX_STEPS_PER_UNIT 1u
#define QUERY_REGEX_COMPILE_UNITS 512u
/* Stack kept free below the budget's floor for the calls a checked
 * function makes without checking (libc, RocksDB, PCRE2's 20 KiB frame
 * vector); a quarter of the thread's stack when that is smaller. */
#if defined(__SANITIZE_ADDRESS__)
#define QUERY_STACK_MARGIN_BYTES (1024u * 1024)
#else
#define QUERY_STACK_MARGIN_BYTES (256u * 1024)
#endif
/* Most output columns a procedure may have. */
#define QUERY_PROC_COLUMNS_MAX 8
/* Safety limit on the length of one path enumerated by a variable-length
 * pattern (depth-first, relationship-isomorphic).  Such a path is never
 * longer than the graph's relationship count, so a pattern's own bound is
 * honoured exactly up to this; past it the query fails with "variable-length
 * pattern exceeds N hops" rather than returning a truncated answer.  The
 * traversal is iterative (heap stack grown on demand), so depth costs no C
 * stack. */
#define QUERY_VARLEN_PATH_HOPS_MAX 65536u
/* Memory limit on the distinct-end-node breadth-first search: nodes in its
 * visited set and queue (about 64 bytes each, within the query memory cap).
 * The search needs no hop limit: it visits each node once. */
#define QUERY_VARLEN_VISITED_COUNT_MAX (QUIVER_QUERY_MEMORY_MAX_BYTES / 64u)

typedef struct cx cx;
typedef struct op op;
typedef struct qre qre;             /* a compiled regular expression (regex.c) */
typedef struct qre_state qre_state; /* a query's PCRE2 contexts and patterns */

/* ------------------------------------------------------------------ */
/* Execution context                                                   */
/* ------------------------------------------------------------------ */

typedef struct qctx {
    q_arena *a;                 /* query arena */
    qs_view *view;
    qs_txn *txn;                /* NULL for reads */
    uint32_t graph;
    bool graph_missing;         /* reads of a graph that does not exist: nothing matches */
    bool explain;               /* EXPLAIN: the planner writes operator descriptions */
    const query_request *req;
    query_stats *stats;
    uint64_t rng[4];            /* xoshiro256** state, seeded from req->seed */
    /* error */
    bool failed;
    query_status status;
    char err[512];
    /* guards (guard.c) */
    uint64_t deadline_ns;       /* 0: none (reads only; writes ignore TIMEOUT) */
    uint64_t work;              /* work units spent (WORK UNITS above) */
    uint64_t work_max;          /* 0: unlimited */
    uint64_t work_check_at;     /* qctx_work runs the slow check when work reaches this */
    uintptr_t stack_floor;      /* lowest stack address recursion may use; 0: unchecked */
    size_t stack_budget_bytes;  /* what the floor allows, for the message */
    uint32_t op_count;          /* operators planned (QUIVER_QUERY_OPERATORS_COUNT_MAX) */
    uint64_t hash_seed;         /* DISTINCT / grouping hashes: from the request's seed */
    bool out_of_memory;         /* malloc failed (not a limit): query_result.out_of_memory */
    bool admission;             /* query_admit: planning only, no storage */
    qre_state *re;              /* regular expressions; NULL until the first one */
    /* CYPHER parameters */
    uint32_t param_count;
    qv_str *param_names;
    qv_value *param_values;
    /* the current row of the running single query */
    qv_value *row;
    uint32_t slot_count;
    /* per-query caches of schema names copied into the result arena */
    q_arena *ra;                /* result arena (materialisation) */
    /* pipelines inside expressions (pattern predicates), closed at the end */
    op **subs;
    uint32_t sub_count, sub_cap;
} qctx;

/* Record the first error (printf-style) and return false. */
bool qctx_fail(qctx *c, query_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Next pseudo-random 64-bit number (xoshiro256**). */
uint64_t qctx_rand(qctx *c);
/* Allocation that records a memory-limit error on failure (and sets
 * out_of_memory when malloc, not the limit, failed). */
void *qctx_alloc(qctx *c, size_t size_bytes);

/* ---- guards (guard.c) ---- */

/* Set up the guards of a run or an admission on the calling thread: the
 * stack floor (from here, this thread's stack bounds and
 * QUIVER_QUERY_STACK_BUDGET_BYTES), the work budget (work_max 0:
 * unlimited) and the deadline (timeout_ms 0: none; saturating, so a huge
 * timeout is no timeout).  start_ns is when the statement started.
 * Thread: the one that runs the query. */
void qctx_guard_init(qctx *c, uint64_t work_max, uint64_t timeout_ms, uint64_t start_ns);
/* Hash of a name (variable, key, alias) for the planner's and the
 * parser's lookup tables: seeded randomly per process, so clients cannot
 * choose names that collide (the tables' answers never depend on it).
 * Thread: any. */
uint64_t query_name_hash(const char *p, size_t len);
/* The stack floor for recursion started from the caller's frame, and the
 * budget it allows (*budget_bytes): QUIVER_QUERY_STACK_BUDGET_BYTES, or
 * less on a thread whose stack is smaller (see guard.c).  Also used by the
 * parser (parser.h).  Thread: the caller's. */
uintptr_t query_stack_floor(size_t *budget_bytes);
/* Slow path of qctx_work: budget (including the arenas' bytes) and
 * deadline; false with the error recorded. */
bool qctx_work_slow(qctx *c);
/* Units spent so far, the arenas' bytes included (what the budget is
 * compared with). */
uint64_t qctx_work_total(const qctx *c);
/* Slow path of qctx_reserve. */
bool qctx_reserve_slow(qctx *c, uint64_t bytes);
/* Record the stack-budget error; returns false. */
bool qctx_stack_fail(qctx *c);
/* CLOCK_MONOTONIC in nanoseconds (statistics and deadlines only). */
uint64_t qctx_now_ns(void);

/* Count units of work (WORK UNITS above).  False once the query failed,
 * ran over its budget or (reads) passed its deadline.  The fast path is an
 * add and a compare. */
static inline bool qctx_work(qctx *c, uint64_t units) {
    c->work += units;
    if (__builtin_expect(c->work >= c->work_check_at, 0)) return qctx_work_slow(c);
    return !c->failed;
}
/* Before a large arena allocation (a buffer doubling, a big list): false,
 * with the budget error, when its bytes would take the query over its work
 * budget -- so the budget refuses the allocation rather than counting it
 * after the fact.  Free below QUERY_WORK_RESERVE_MIN_BYTES. */
#define QUERY_WORK_RESERVE_MIN_BYTES (64u * 1024)
static inline bool qctx_reserve(qctx *c, uint64_t bytes) {
    if (c->work_max == 0 || bytes < QUERY_WORK_RESERVE_MIN_BYTES) return !c->failed;
    return qctx_reserve_slow(c, bytes);
}
/* One unit: a row, an item read, an element. */
static inline bool qctx_tick(qctx *c) { return qctx_work(c, 1); }
/* Bytes of a string built or scanned: 1 unit per QV_WORK_STRING_BYTES_PER_UNIT. */
static inline bool qctx_work_bytes(qctx *c, uint64_t bytes) {
    return qctx_work(c, bytes / QV_WORK_STRING_BYTES_PER_UNIT);
}

/* True while the calling function's frame is above the stack floor;
 * otherwise records the error and is false.  A macro so that the frame
 * measured is the caller's.  __builtin_frame_address, not the address of
 * a local: under ASan's detect_stack_use_after_return locals live on a
 * heap "fake stack". */
#define QCTX_STACK_OK(c)                                                                  \
    (__builtin_expect((uintptr_t)__builtin_frame_address(0) >= (c)->stack_floor, 1) || \
     qctx_stack_fail(c))

/* Finish a list or map whose items are in place: compute its depth and
 * element count (value.h).  The elements are charged as work by whoever
 * allocates the list (before filling it), not here.  False, with
 * "ERR value nested deeper than ..." or "ERR value with more than ...
 * elements" (QUERY_ERR_LIMIT), when it breaks QUIVER_VALUE_DEPTH_MAX or
 * QUIVER_VALUE_ELEMENTS_COUNT_MAX: such a value is never handed on. */
bool qctx_seal_list(qctx *c, qv_list *l);
bool qctx_seal_map(qctx *c, qv_map *m);

/* ---- regular expressions (regex.c) ---- */

/* Compile pattern for `=~` (Java String.matches semantics: the whole
 * subject must match; PCRE2 syntax with UTF-8) under the limits of
 * common/limits.h.  The pattern belongs to the query (freed by
 * qre_release).  NULL with the error recorded: "ERR invalid regular
 * expression '<p>': <PCRE2 message> at offset N" (QUERY_ERR_RUNTIME) or
 * "ERR regular expression '<p>' exceeds ..." (QUERY_ERR_LIMIT). */
qre *qre_compile(qctx *c, qv_str pattern);
/* Does pattern re, compiled from text, still match this text (the per-row
 * cache of a computed pattern)? */
bool qre_is(const qre *re, qv_str pattern);
/* Free one pattern now (a per-row pattern replaced by the next). */
void qre_free(qctx *c, qre *re);
/* Match subject against re: QV_BOOL; QV_NULL when the subject is not valid
 * UTF-8 (as for a non-string operand); null with the error recorded when a
 * PCRE2 limit is hit ("ERR regular expression '<p>' exceeds the match
 * limit ...", QUERY_ERR_LIMIT), identically on every replica.  Charges its
 * work units. */
qv_value qre_match(qctx *c, qre *re, qv_str subject);
/* Free every pattern and context of the query.  Thread: the query's. */
void qre_release(qctx *c);

/* ------------------------------------------------------------------ */
/* Compiled expressions (eval.c)                                       */
/* ------------------------------------------------------------------ */

typedef enum cx_kind {
    CX_CONST,
    CX_SLOT,
    CX_PROP,        /* a.key */
    CX_INDEX,       /* a[b] */
    CX_SLICE,       /* a[b..c] */
    CX_LIST,        /* args */
    CX_MAP,         /* keys, args */
    CX_UNARY,       /* op a */
    CX_AND,
    CX_OR,
    CX_XOR,
    CX_BINARY,      /* a op b (comparisons, arithmetic, string ops, IN) */
    CX_IS_NULL,
    CX_IS_NOT_NULL,
    CX_HAS_LABELS,  /* a:L1:L2 (keys = label names) */
    CX_FUNC,
    CX_CASE,        /* a = subject or NULL; args = when,then pairs; b = else */
    CX_LIST_COMP,   /* slot = var; a = list; b = where; c = map */
    CX_QUANT,       /* slot = var; a = list; b = where; quant */
    CX_PATTERN,     /* sub: a pipeline; true when it yields a row */
    CX_PATH,        /* build a path from slots (path_*) */
} cx_kind;

typedef struct fn_def fn_def;
typedef qv_value (*fn_impl)(qctx *c, const cx *e, qv_value *args, uint32_t n);

struct fn_def {
    const char *name;           /* lower case */
    uint32_t min_args, max_args;
    fn_impl impl;
    bool aggregate;
};

/* A path element list for CX_PATH: nodes and relationship segments. */
typedef struct cx_path_seg {
    uint32_t edge_slot;         /* qv_edge, or a list of edges when varlen */
    bool varlen;
    uint32_t node_slot;         /* node after the segment */
} cx_path_seg;

struct cx {
    uint8_t kind;               /* cx_kind */
    uint8_t op;                 /* ast_op for CX_UNARY/CX_BINARY; ast_quantifier for CX_QUANT */
    bool cached;                /* CX_PROP/CX_HAS_LABELS: ids resolved */
    uint32_t slot;
    qv_value v;                 /* CX_CONST */
    cx *a, *b, *c;
    uint32_t n;
    cx **args;
    qv_str *keys;               /* CX_MAP keys; CX_HAS_LABELS label names */
    qv_str name;                /* CX_PROP key; CX_FUNC name */
    uint32_t key_id;            /* CX_PROP cached key id */
    uint32_t *ids;              /* CX_HAS_LABELS cached label ids (UINT32_MAX: unknown);
                                   CX_MAP each item's position (slot: distinct keys) */
    const fn_def *fn;           /* CX_FUNC */
    op *sub;                    /* CX_PATTERN */
    qre *re;                    /* CX_BINARY =~: the compiled pattern (a constant's at
                                   plan time; a computed one's last text, per row) */
    uint32_t path_start;        /* CX_PATH: first node slot */
    uint32_t path_seg_count;
    cx_path_seg *path_segs;
};

/* Evaluate e against ctx->row.  On error returns null with ctx->failed. */
qv_value cx_eval(qctx *c, const cx *e);
/* Truth of a predicate: true only for boolean true (null and false: no). */
bool cx_truth(qctx *c, const cx *e);
/* Constructors used by the planner. */
cx *cx_new(qctx *c, cx_kind kind);
cx *cx_const(qctx *c, qv_value v);
cx *cx_slot(qctx *c, uint32_t slot);
cx *cx_prop(qctx *c, cx *operand, qv_str key);
cx *cx_binary(qctx *c, ast_op op, cx *a, cx *b);
cx *cx_has_labels(qctx *c, cx *operand, uint32_t count, const qv_str *labels);
/* Function lookup by name, case-insensitive; NULL when unknown. */
const fn_def *fn_lookup(qv_str name);
bool fn_is_aggregate_name(qv_str name);

/* Entity helpers shared by eval and exec. */
qv_value eval_node_prop(qctx *c, qv_node *n, uint32_t key_id);
qv_value eval_edge_prop(qctx *c, qv_edge *e, uint32_t key_id);
/* Fully load a node/edge record (labels/props as ids) into the entity. */
bool load_node(qctx *c, qv_node *n);
bool load_edge(qctx *c, qv_edge *e);
qv_value make_node(qctx *c, uint64_t id);
qv_value make_edge(qctx *c, uint64_t id, uint64_t src, uint64_t dst, uint32_t type_id);
/* Resolve schema names at run time (reads: NOT_FOUND stays unknown). */
bool schema_lookup(qctx *c, qs_schema_kind kind, qv_str name, uint32_t *id);
bool schema_intern(qctx *c, qs_schema_kind kind, qv_str name, uint32_t *id);
/* Map a value to a property-storable form; error text in FalkorDB's words. */
bool value_storable(qctx *c, qv_value v);
/* Type-error helper: "Type mismatch: expected X but was Y". */
qv_value type_mismatch(qctx *c, const char *expected, qv_value got);
/* Build a string value in the arena. */
qv_value str_value(qctx *c, const char *p, size_t len);

/* ------------------------------------------------------------------ */
/* Operators (exec.c)                                                  */
/* ------------------------------------------------------------------ */

typedef enum op_kind {
    OP_ARGUMENT,
    OP_SCAN_ALL,
    OP_SCAN_LABEL,
    OP_SCAN_INDEX,
    OP_SEEK_ID,
    OP_EXPAND,
    OP_VAREXPAND,
    OP_FILTER,
    OP_PROJECT,
    OP_AGGREGATE,
    OP_DISTINCT,
    OP_SORT,
    OP_SKIP,
    OP_LIMIT,
    OP_UNWIND,
    OP_OPTIONAL,
    OP_CREATE,
    OP_MERGE,
    OP_SET,
    OP_REMOVE,
    OP_DELETE,
    OP_CALL,
    OP_INDEX_DDL,
} op_kind;

/* Eager buffer of full rows (slot_count values each). */
typedef struct rowbuf {
    uint64_t count, cap;
    qv_value *data;
} rowbuf;

/* Hash set of value tuples with first-seen order (DISTINCT, grouping). */
typedef struct tupset {
    uint64_t count, cap;        /* entries; cap is a power of two */
    uint32_t *table;            /* index+1 into entries, 0 = empty */
    uint64_t *hashes;
    qv_value **tuples;          /* entries in insertion order */
    uint32_t width;
} tupset;

/* Index seek modes. */
typedef enum idx_mode { IDX_EQ, IDX_IN, IDX_RANGE } idx_mode;

/* CREATE pattern compiled for execution (also used by MERGE). */
typedef struct create_node {
    uint32_t slot;
    bool create;                /* false: bound before, reuse */
    uint32_t label_count;
    qv_str *labels;
    uint32_t *label_ids;        /* interned lazily */
    bool interned;
    uint32_t prop_count;        /* static map items */
    qv_str *prop_keys;
    cx **prop_values;
    cx *prop_map;               /* a map-valued expression ($param), or NULL */
    /* SET items folded into the CREATE (plan.c: `CREATE (n:L) SET n = r`
     * writes the node once): applied in order after the map above */
    uint32_t extra_count;
    uint8_t *extra_kinds;       /* ast_set_kind: PROP, REPLACE, MERGE */
    qv_str *extra_keys;         /* PROP */
    cx **extra_values;
} create_node;

typedef struct create_rel {
    uint32_t slot;
    qv_str type;
    uint32_t type_id;
    bool interned;
    uint32_t src_slot, dst_slot;
    uint32_t prop_count;
    qv_str *prop_keys;
    cx **prop_values;
    cx *prop_map;
} create_rel;

typedef struct create_spec {
    uint32_t node_count;
    create_node *nodes;
    uint32_t rel_count;
    create_rel *rels;
    uint32_t path_count;        /* named paths to bind after creation */
    cx **path_exprs;
    uint32_t *path_slots;
} create_spec;

typedef struct set_spec {
    uint32_t count;
    ast_set_kind *kinds;
    cx **targets;               /* entity expressions */
    qv_str *keys;               /* AST_SET_PROP key */
    cx **values;
    uint32_t *label_counts;
    qv_str **labels;
} set_spec;

typedef struct agg_spec {
    const fn_def *fn;
    bool distinct;
    bool star;
    cx *arg;                    /* NULL for count(*) */
    cx *arg2;                   /* second argument (percentile etc.; unused) */
    uint32_t slot;              /* result slot */
} agg_spec;

/* Procedure output rows. */
typedef struct proc_def proc_def;

struct op {
    uint8_t kind;               /* op_kind */
    op *child;
    op *inner;                  /* OPTIONAL / MERGE sub-pipeline */
    char *describe;             /* EXPLAIN text after the name */
    bool started;               /* state: ARGUMENT yielded; eager ops filled */
    union {
        struct {                /* SCAN_ALL / SCAN_LABEL / SCAN_INDEX / SEEK_ID */
            uint32_t slot;
            qv_str label;
            qv_str key;
            idx_mode mode;
            cx *val;            /* EQ/IN value; SEEK_ID id or list */
            cx *lo, *hi;
            bool lo_incl, hi_incl;
            bool seek_list;     /* SEEK_ID: val is a list (IN) */
            /* state */
            qs_iter *it;
            bool have_input;
            qv_value *vals;     /* IN / seek list values */
            uint32_t val_count, val_pos;
        } scan;
        struct {                /* EXPAND / VAREXPAND */
            uint32_t src_slot, dst_slot, edge_slot;
            bool into;          /* dst already bound: check */
            ast_rel_dir dir;
            uint32_t type_count;
            qv_str *types;
            uint32_t *type_ids;
            uint32_t min_hops, max_hops;
            bool bfs;           /* distinct end nodes only */
            uint32_t hop_slot;  /* varlen: slot for the per-hop property filter */
            cx *hop_filter;     /* varlen: property map of the relationship, or NULL */
            uint32_t uniq_count;/* earlier relationship slots of the same MATCH */
            uint32_t *uniq_slots;
            /* state */
            bool have_input;
            qs_iter *it;
            uint32_t type_pos;
            uint8_t pass;       /* undirected: 0 out, 1 in */
            void *vstate;       /* varlen DFS / BFS state */
        } expand;
        struct {
            cx *pred;
        } filter;
        struct {                /* PROJECT, also UNWIND (count 1) */
            uint32_t count;
            cx **exprs;
            uint32_t *slots;
            /* UNWIND state */
            qv_value list;
            uint32_t pos;
            bool have_input;
        } project;
        struct {                /* AGGREGATE */
            uint32_t key_count;
            cx **keys;
            uint32_t agg_count;
            agg_spec *aggs;
            uint32_t out_count;
            cx **outs;
            uint32_t *out_slots;
            /* state */
            void *groups;       /* agg.c */
            uint64_t pos;
        } agg;
        struct {                /* DISTINCT */
            uint32_t count;
            uint32_t *slots;
            tupset seen;
        } distinct;
        struct {                /* SORT */
            uint32_t count;
            cx **keys;
            bool *desc;
            rowbuf rows;
            uint64_t pos;
            uint32_t *key_slots; /* sorted order: indexes into rows (keys follow each row's slots) */
        } sort;
        struct {                /* SKIP / LIMIT */
            cx *expr;
            int64_t n;
            int64_t seen;
        } skiplimit;
        struct {                /* OPTIONAL */
            uint32_t null_count;
            uint32_t *null_slots;
            bool inner_matched;
            bool have_input;
        } optional;
        struct {                /* CREATE / MERGE / SET / REMOVE / DELETE / CALL (eager writes) */
            create_spec create;
            set_spec set;       /* SET / REMOVE (kinds reuse ast_set_kind; REMOVE label/prop) */
            set_spec on_create, on_match;
            bool detach;
            uint32_t expr_count;
            cx **exprs;         /* DELETE targets */
            rowbuf rows;
            uint64_t pos;
            rowbuf matches;     /* MERGE: matches of the current input row */
            uint64_t mpos;
            uint32_t merge_new_count;  /* MERGE: slots the pattern binds (informational) */
            uint32_t *merge_new_slots;
            /* MERGE state */
            bool merge_matching;
            bool merge_have_input;
        } write;
        struct {                /* CALL */
            const proc_def *proc;
            uint32_t arg_count;
            cx **args;
            uint32_t out_count;
            uint32_t *out_cols;  /* procedure column index for each yielded slot */
            uint32_t *out_slots;
            cx *where;
            /* state */
            bool have_input;
            qv_value *rows;     /* row-major, proc column count wide */
            uint32_t row_count, pos;
        } call;
        struct {                /* INDEX_DDL */
            bool drop;
            qv_str label;
            uint32_t prop_count;
            qv_str *props;
        } ddl;
    } u;
};

/* Operator protocol: op_next fills the op's slots of ctx->row and returns
 * true, or returns false at the end (or on error: ctx->failed).  op_reset
 * rewinds (for re-running an inner pipeline with a new outer row);
 * op_close releases iterators.  All recurse into child/inner. */
bool op_next(qctx *c, op *o);
void op_reset(qctx *c, op *o);
void op_close(qctx *c, op *o);
op *op_new(qctx *c, op_kind kind, op *child);
/* Name used by EXPLAIN. */
const char *op_name(const op *o);

/* Row buffers and tuple sets (exec.c). */
bool rowbuf_push(qctx *c, rowbuf *b, const qv_value *row, uint32_t width);
/* Insert a tuple; *inserted tells if new; returns the entry index, or -1 on error. */
int64_t tupset_add(qctx *c, tupset *s, const qv_value *tuple, bool *inserted);
void tupset_init(tupset *s, uint32_t width);

/* Aggregation (aggregate.c). */
bool agg_run(qctx *c, op *o);  /* consume child, build groups */
bool agg_emit(qctx *c, op *o); /* next group into the row */

/* Procedures (procedures.c). */
struct proc_def {
    const char *name;           /* lower case, e.g. "db.labels" */
    uint32_t arg_count;
    uint32_t column_count;
    const char *columns[QUERY_PROC_COLUMNS_MAX];
    /* Fill rows (row-major column_count wide) for one call. */
    bool (*run)(qctx *c, qv_value *args, qv_value **rows, uint32_t *row_count);
};
const proc_def *proc_lookup(qv_str name);

/* ------------------------------------------------------------------ */
/* Planner (plan.c)                                                    */
/* ------------------------------------------------------------------ */

typedef struct plan {
    op *root;
    uint32_t slot_count;
    uint32_t column_count;
    qv_str *columns;
    uint32_t *column_slots;
} plan;

/* Plan one single query.  Returns false with ctx error (semantic). */
bool plan_single(qctx *c, const ast_single_query *q, plan *out);
/* Evaluate a constant expression (CYPHER parameters). */
bool plan_eval_const(qctx *c, const ast_expr *e, qv_value *out);
/* EXPLAIN text of a plan: lines appended (arena) to *lines. */
bool plan_explain(qctx *c, const plan *p, qv_str **lines, uint32_t *count, uint32_t *cap);

#endif

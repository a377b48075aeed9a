/*
 * reply.h -- RESP2 reply writer and FalkorDB's result-set encodings.
 *
 * A reply is built into a reply_buf (a growable byte buffer with a size
 * cap) and then handed to the socket as is.  Reads build their reply on the
 * reader thread that ran the query, so the loop thread only copies bytes.
 *
 * Result sets follow FalkorDB (docs.falkordb.com "Result Set Structure" and
 * "Client Specification"; FalkorDB src/resultset/formatters/resultset_reply{verbose,compact}.c):
 *
 *   verbose:  [header, rows, statistics] when the query has columns, else
 *             [statistics].  header = [name...]; a cell is an integer
 *             (Integer), a bulk string (String; Boolean as "true"/"false";
 *             Double printed "%.15g"), a null bulk (NULL), a node
 *             [["id", id], ["labels", [name...]], ["properties", [[key, value]...]]],
 *             a relationship [["id", id], ["type", name], ["src_node", id],
 *             ["dest_node", id], ["properties", [[key, value]...]]], and a
 *             list, map or path as one string in FalkorDB's text form
 *             ("[1, a, 2.500000]", "{k: v}", "[(0), [0], (1)]").
 *   compact:  the same three parts; header = [[1, name]...]; each cell is
 *             [value type, value] with FalkorDB's codes (reply_value_type):
 *             UNKNOWN 0, NULL 1, STRING 2, INTEGER 3, BOOLEAN 4, DOUBLE 5,
 *             ARRAY 6, EDGE 7, NODE 8, PATH 9, MAP 10, POINT 11; a node is
 *             [id, [label id...], [[key id, type, value]...]], a
 *             relationship [id, type id, src id, dest id, [[key id, type,
 *             value]...]], a list [[type, value]...], a map [key, [type,
 *             value], ...] and a path [[6, [[8, node]...]], [6, [[7, rel]...]]].
 *   statistics (both): the non-zero counters in FalkorDB's order
 *             "Labels added: n", "Labels removed: n", "Nodes created: n",
 *             "Properties set: n", "Properties removed: n",
 *             "Relationships created: n", "Nodes deleted: n",
 *             "Relationships deleted: n", "Indices created: n",
 *             "Indices deleted: n", then always "Cached execution: 0" and
 *             "Query internal execution time: %.6f milliseconds"; stale
 *             reads (router.h) add "Replication lag: N entries" last
 *             (reply_statistics_with).
 *
 * Errors are sent as "-<message>\r\n" with the message as given (FalkorDB's
 * query errors carry no "ERR " prefix; Redis-level errors include it in the
 * message).  CR and LF inside a message become spaces so framing holds.
 *
 * Thread: a reply_buf belongs to one thread at a time; it may be handed
 * from a reader thread to the loop thread once complete.
 */
#ifndef QUIVER_NODE_REPLY_H
#define QUIVER_NODE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/value.h"
#include "../query/query.h"

typedef struct reply_buf {
    char *data;             /* malloc'd; NULL while empty */
    size_t len;
    size_t cap;
    size_t size_max_bytes;  /* cap on len */
    bool overflow;          /* a write was dropped because of the cap */
} reply_buf;

/* FalkorDB's ValueType codes for --compact replies. */
typedef enum reply_value_type {
    REPLY_VALUE_UNKNOWN = 0,
    REPLY_VALUE_NULL = 1,
    REPLY_VALUE_STRING = 2,
    REPLY_VALUE_INTEGER = 3,
    REPLY_VALUE_BOOLEAN = 4,
    REPLY_VALUE_DOUBLE = 5,
    REPLY_VALUE_ARRAY = 6,
    REPLY_VALUE_EDGE = 7,
    REPLY_VALUE_NODE = 8,
    REPLY_VALUE_PATH = 9,
    REPLY_VALUE_MAP = 10,
    REPLY_VALUE_POINT = 11,
} reply_value_type;

/* Initialise an empty buffer whose length may not exceed size_max_bytes
 * (0: QUIVER_REPLY_BUFFER_SIZE_MAX_BYTES).  Never fails. */
void reply_buf_init(reply_buf *b, size_t size_max_bytes);
void reply_buf_free(reply_buf *b);
/* Forget the contents (and the overflow flag), keep the memory. */
void reply_buf_clear(reply_buf *b);
/* Append raw bytes.  Returns false (and sets overflow) past the cap.
 * malloc failure aborts (QUIVER_FATAL). */
bool reply_raw(reply_buf *b, const void *p, size_t len);

/* RESP2 primitives.  Each appends one complete element. */
void reply_simple(reply_buf *b, const char *s);                 /* +s */
void reply_error(reply_buf *b, const char *msg);                /* -msg */
void reply_errorf(reply_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_int(reply_buf *b, int64_t v);                        /* :v */
void reply_bulk(reply_buf *b, const void *p, size_t len);       /* $len p */
void reply_bulk_cstr(reply_buf *b, const char *s);
void reply_bulkf(reply_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_null(reply_buf *b);                                  /* $-1 */
void reply_array(reply_buf *b, uint64_t count);                 /* *count, then count elements */

/* A double as FalkorDB prints a scalar: "%.15g" as a bulk string. */
void reply_double(reply_buf *b, double d);

/* FalkorDB's code for a value's type (compact replies). */
reply_value_type reply_value_type_of(qv_value v);

/* One value in FalkorDB's verbose / compact cell form (see the top). */
void reply_value_verbose(reply_buf *b, qv_value v);
void reply_value_compact(reply_buf *b, qv_value v);

/* FalkorDB's text form of a value inside a verbose list/map/path
 * ("[1, a]", "{k: v}", "(3)" for a node, "[5]" for a relationship,
 * doubles "%f", null "NULL").  Appends to b without RESP framing. */
void reply_value_text(reply_buf *b, qv_value v);

/* The statistics array (see the top for order and wording). */
void reply_statistics(reply_buf *b, const query_stats *s);

/* The same with one more line at the end when extra is not NULL (Quiver's
 * own statistics, e.g. reply_lag_line).  Clients tolerate unknown lines:
 * redis-py 4.3 (redis/commands/graph/query_result.py) and falkordb-py look
 * up each known name by substring and ignore the rest; falkordb-go and
 * JFalkorDB split every line at ": " and read a number from the start of
 * the value, so an extra line must be "Name: <number> <unit>" and its name
 * must not contain a known name ("Nodes created", "internal execution
 * time", ...). */
void reply_statistics_with(reply_buf *b, const query_stats *s, const char *extra);

/* Stale reads' statistics line: "Replication lag: <entries> entries"
 * written into out (NUL-terminated, cut to out_size_bytes). */
#define REPLY_LAG_LINE_SIZE_MAX_BYTES 64
void reply_lag_line(char *out, size_t out_size_bytes, uint64_t lag_entries);

/* A whole GRAPH.QUERY / GRAPH.RO_QUERY reply: the error if r->status is not
 * QUERY_OK, else the result set in verbose or compact form.  If the reply
 * outgrows the buffer's cap, the buffer is replaced by an error reply that
 * says so.  Thread: any (reader threads call it). */
void reply_query_result(reply_buf *b, const query_result *r, bool compact);

/* reply_query_result with reply_statistics_with's extra line (NULL: none). */
void reply_query_result_with(reply_buf *b, const query_result *r, bool compact, const char *extra_statistic);

/* GRAPH.EXPLAIN: the plan lines (the result's first column) as an array of
 * bulk strings, or the error. */
void reply_explain_result(reply_buf *b, const query_result *r);

/* If b overflowed, replace its contents with an error naming the limit
 * (the large buffer is freed first).  Returns true when it did. */
bool reply_fix_overflow(reply_buf *b);

/* Give back the unused part of b's allocation when it exceeds
 * REPLY_BUF_SLACK_MAX_BYTES (doubling can leave up to half of a large
 * reply's buffer unused while the reply waits to be written).  Never fails
 * (a failed realloc keeps the buffer as it is).  Thread: b's. */
#define REPLY_BUF_SLACK_MAX_BYTES (256u * 1024)
void reply_buf_shrink(reply_buf *b);

#endif

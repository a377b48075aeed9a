/*
 * reply.h -- turning a GRAPH.QUERY verbose reply into a table and
 * statistics lines.
 *
 * Format source: FalkorDB docs, "Result Set Structure" (design/result_structure):
 * a query that returns data answers [header, rows, statistics]; one that
 * returns nothing answers [statistics].  Header cells are column names
 * (a --compact header's [type, name] pairs are accepted too).  In rows,
 * integers are RESP integers, null is nil, strings, booleans ("true"/"false")
 * and doubles arrive as strings; lists, maps and paths arrive as one string
 * (FalkorDB prints them with their own syntax); a node is
 *   [["id", n], ["labels", [l...]], ["properties", [[key, value]...]]]
 * and a relationship
 *   [["id", n], ["type", t], ["src_node", s], ["dest_node", d], ["properties", [...]]].
 *
 * Display choices (verbose replies cannot tell "true" the string from true
 * the boolean): a top-level string cell is printed as is; inside a node's or
 * relationship's property map a string is printed double-quoted unless it
 * reads as a number or a boolean, so `(:Package {name: "bash", size: 7})`.
 * Nodes print as (:Label {k: v}), relationships as [:TYPE {k: v}], other
 * arrays as [a, b].  Control characters are escaped (\n, \t, \xNN) so they
 * cannot break the table.  Integers are right-aligned.
 *
 * Thread: any.  Memory: see each function.
 */
#ifndef QUIVER_CLI_REPLY_H
#define QUIVER_CLI_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "buf.h"
#include "table.h"

/* Nesting of arrays in a value we are willing to print. */
#define CLI_REPLY_DEPTH_MAX 64

typedef struct cli_result {
    bool has_table;       /* the reply had a header and rows */
    cli_table table;      /* valid when has_table */
    size_t stat_count;
    char **stats;         /* "Nodes created: 1", ... (owned) */
} cli_result;

/* Convert reply r (not modified, still owned by the caller) into *out
 * (owned by the caller: cli_result_free).  Returns 0, or -1 with a message
 * in err (NUL-terminated, err_size_bytes): the server's own text for an
 * error reply (also an error nested in the result), or "unexpected reply
 * shape: ..." when r is not a verbose result set. */
int cli_result_from_reply(const redisReply *r, cli_result *out, char *err, size_t err_size_bytes);

void cli_result_free(cli_result *res);

/* Append the display text of one result cell (top level: nested = false)
 * or of a property value inside a node/relationship (nested = true). */
void cli_format_value(cli_buf *b, const redisReply *v, bool nested, int depth);

/* Append the rendered result: the table (when there is one), a line
 * "N rows" and the statistics lines. */
void cli_result_render(const cli_result *res, cli_buf *out);

#endif

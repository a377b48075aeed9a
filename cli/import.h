/*
 * import.h -- `quiver import`: bulk loading of neo4j-admin-style CSV files
 * into a Quiver graph over RESP.
 *
 * What it does: every nodes_*.csv[.gz] in a directory (sorted by name), then
 * every edges_*.csv[.gz], headers per header.h, rows per csv.h.  Nodes go in
 * batches of up to batch_rows rows per GRAPH.QUERY (one batch stream per
 * label set), rows being lists of the property values in header order:
 *   CYPHER rows=[['pkg:a','a',5],..] UNWIND $rows AS r
 *   CREATE (n:L {id: r[0], name: r[1], size: r[2]}) RETURN id(n)
 * (FalkorDB's parameter prefix), and the returned ids fill a map from CSV id
 * to node id (idmap.h).  Relationships go per type,
 *   CYPHER rows=[[src,dst,'>= 1',0],..] UNWIND $rows AS r MATCH (a), (b)
 *   WHERE id(a) = r[0] AND id(b) = r[1] CREATE (a)-[:T {v: r[2], g: r[3]}]->(b)
 * and each reply's "Relationships created: N" must equal the batch size.
 * A missing value is sent as null, which CREATE does not store.
 *
 * Pipelining: up to in_flight batches are sent before the oldest reply is
 * read (hiredis redisAppendCommandArgv + redisBufferWrite, then
 * redisGetReply), so CSV parsing and Cypher building overlap the server's
 * work.  All node batches are confirmed before the first relationship batch
 * is built (it needs their ids).  Every reply is checked; a retryable error
 * is retried (below); on the first other error nothing more is sent, the
 * replies already due are collected, and the summary says exactly what was
 * loaded.
 *
 * Safety: the import refuses a graph that already has nodes
 * (MATCH (n) RETURN count(n)) unless append is set; it never resumes
 * silently.  Every header is checked before anything is sent, so a bad
 * header changes nothing.  With append, relationships can only reference
 * nodes of this import (the id map starts empty), and nodes of a file
 * without an :ID column cannot be referenced at all (as in neo4j-admin).
 *
 * Rows that cannot be loaded (bad CSV, wrong field count, a value that does
 * not parse as its column's type, invalid UTF-8, a duplicate node id, an
 * unknown relationship endpoint) are skipped and counted, and the first
 * IMPORT_BAD_ROWS_LISTED are listed with file:line and the reason.  Exit
 * status: 0 when everything else loaded (skipped rows are printed
 * prominently), 1 on any failure, and also on skipped rows with strict.
 *
 * Clusters and retries: the import may talk to any node, leader or
 * follower (a follower forwards writes to the leader).  Every batch gets a
 * request id (origin, seq): origin is random per run, seq numbers the
 * batches 1, 2, ...; the batch is sent as `QUIVER.REQUESTID origin seq`
 * followed by its GRAPH.QUERY (pipelined), and the state machine's de-dup
 * table (DESIGN.md 3) answers a request id it has already applied with the
 * first outcome instead of applying it again.  So when a node answers
 * "outcome unknown", a no-leader / not-leader error, busy or shutting
 * down, or when the connection drops or a reply does not come within
 * reply_timeout_s, the SAME batch (byte-identical text, kept in its
 * flight until acknowledged) is sent again with the SAME id: after a
 * backoff (IMPORT_BACKOFF_MIN_MS doubling to IMPORT_BACKOFF_MAX_MS) on the
 * same connection for an error reply, or on a new connection to the next
 * node of the list (round robin, the failed node last) for a lost
 * connection, until the batch has been failing for retry_timeout_s.  A
 * retry of an applied node batch returns the ids of its first application,
 * so the id map stays right.  Nothing acknowledged is ever re-sent.
 * Bounds: at most in_flight (<= IMPORT_IN_FLIGHT_MAX = 64) batches are
 * unacknowledged at any time, far inside the de-dup table's window
 * (QUIVER_DEDUP_TABLE_COUNT_MAX ids), so a retry always finds its first
 * outcome unless other clients apply tens of thousands of writes in
 * between; node batches are cut at IMPORT_NODE_BATCH_ROWS_REPLAYABLE_MAX
 * rows so that their outcome (the ids) is kept whole for a retry.
 * A server without QUIVER.REQUESTID ("unknown command") makes the import
 * fall back to plain retries, says so, counts the retries whose first
 * attempt may have been applied, and exits 1 if there was any (the graph
 * may then hold a batch twice).
 *
 * Ctrl-C stops sending, waits for the batches already sent and prints the
 * summary of what was loaded (exit status 1); a second Ctrl-C ends at once.
 *
 * Progress: on a terminal (progress < 0 and isatty(stderr)) a bar with
 * elements loaded, elements/s and an ETA estimated from compressed bytes
 * read vs total, redrawn at most 10 times a second; otherwise one line per
 * file and a "progress:" line every IMPORT_PROGRESS_LINE_INTERVAL_MS.
 * Retries and reconnects are reported as "retry: ..." lines (connection
 * events always, batch retries at most one a second).  The summary gives
 * the totals per label and type, elapsed time, elements/s, the retries
 * (batches sent again, how many after an unknown outcome, reconnects, the
 * last node used) and the request id origin and range.
 *
 * Thread: the main thread.
 */
#ifndef QUIVER_CLI_IMPORT_H
#define QUIVER_CLI_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "csv.h"
#include "header.h"

#define IMPORT_BATCH_ROWS_DEFAULT 5000
#define IMPORT_BATCH_ROWS_MAX 1000000
#define IMPORT_BATCH_SIZE_DEFAULT_BYTES (4u * 1024 * 1024)  /* a batch is cut at this size too */
#define IMPORT_IN_FLIGHT_DEFAULT 3
#define IMPORT_IN_FLIGHT_MAX 64
#define IMPORT_OPEN_BATCHES_MAX 64          /* label sets / types being filled at once */
#define IMPORT_LINE_SIZE_MAX_BYTES (64u * 1024 * 1024)
#define IMPORT_FILES_COUNT_MAX 4096
#define IMPORT_BAD_ROWS_LISTED 10
#define IMPORT_PROGRESS_INTERVAL_MS 100
#define IMPORT_PROGRESS_LINE_INTERVAL_MS 5000 /* without a terminal: a progress line this often */
#define IMPORT_NODES_COUNT_MAX 16
#define IMPORT_RETRY_TIMEOUT_DEFAULT_S 60
#define IMPORT_RETRY_TIMEOUT_MAX_S 86400
#define IMPORT_REPLY_TIMEOUT_DEFAULT_S 60 /* a node answers within its --forward-timeout-ms (10 s) */
#define IMPORT_REPLY_TIMEOUT_MAX_S 86400
#define IMPORT_BACKOFF_MIN_MS 20
#define IMPORT_BACKOFF_MAX_MS 1000
/* A node batch's outcome (one 9-byte id per row in the result codec) must
 * fit the de-dup table's SM_DEDUP_OUTCOME_SIZE_MAX_BYTES (1 MiB) to be
 * replayed to a retry. */
#define IMPORT_NODE_BATCH_ROWS_REPLAYABLE_MAX 100000
#define IMPORT_HOST_SIZE_MAX_BYTES 256

/* One node of the cluster to talk to. */
typedef struct import_endpoint {
    char host[IMPORT_HOST_SIZE_MAX_BYTES];
    int port;
} import_endpoint;

typedef struct import_options {
    const char *host;
    int port;
    const char *nodes;    /* "HOST:PORT,HOST:PORT,..." to use instead of host:port (NULL: host:port) */
    unsigned retry_timeout_s;  /* give up a batch failing this long (>= 1) */
    unsigned reply_timeout_s;  /* no reply this long: connection treated as lost (>= 1) */
    uint64_t request_origin;   /* request id origin; 0: random (tests set it) */
    const char *graph;
    const char *dir;
    bool append;          /* allow a graph that already has nodes */
    bool strict;          /* skipped rows make the exit status 1 */
    bool dry_run;         /* parse and check everything, send nothing */
    int progress;         /* -1: bar if stderr is a terminal; 0: per-file lines; 1: bar */
    size_t batch_rows;
    size_t batch_size_bytes;
    size_t in_flight;
    FILE *dump;           /* when set, every batch's query text is written here, one per line */
    FILE *out;            /* summary */
    FILE *err;            /* progress, warnings, errors */
} import_options;

/* Defaults: 127.0.0.1:6379, graph "g", the sizes above, stdout/stderr. */
void import_options_default(import_options *o);

/* How the import treats an error reply (import_classify_error). */
typedef enum import_error_class {
    IMPORT_ERROR_FATAL = 0,        /* the batch was refused for good: stop */
    IMPORT_ERROR_NOT_APPLIED,      /* not applied (no leader, busy, not the leader): retry */
    IMPORT_ERROR_UNKNOWN,          /* may or may not have been applied: retry with the same id */
    IMPORT_ERROR_NO_REQUEST_ID,    /* the server does not know QUIVER.REQUESTID */
} import_error_class;

/* Classify the text of a RESP error reply (with or without its "ERR "
 * prefix; len bytes, no NUL needed).  Retryable: "outcome unknown",
 * "no leader", "not the leader", "leadership", "shutting down", "busy",
 * "too many ... in flight"/"waiting"/"queued" with "retry", and the
 * prefixes BUSY, LOADING, TRYAGAIN, MASTERDOWN; "unknown command
 * 'QUIVER.REQUESTID'" is IMPORT_ERROR_NO_REQUEST_ID; the rest, including
 * "already applied ... too large", is fatal.  Pure; any thread. */
import_error_class import_classify_error(const char *msg, size_t len);

/* Parse "HOST:PORT[,HOST:PORT...]" (an IPv6 host in brackets: [::1]:7001)
 * into out (at most max entries, duplicates dropped).  Returns the count
 * (>= 1), or -1 with the reason in err (empty entry, bad port, host too
 * long, more than max nodes).  Pure; any thread. */
int import_parse_nodes(const char *list, import_endpoint *out, size_t max, char *err, size_t err_size_bytes);

/* Run an import.  Returns the exit status (0 or 1). */
int import_run(const import_options *o);

/* Append the values of a row's property columns (header order, a named
 * :ID included) separated by ',', null for a missing value, to out (nothing
 * appended on error, nothing at all when the header has no properties).
 * Returns 0, or -1 with the reason in err, e.g.
 * "column 'size': 'x' is not a 64-bit integer".  fields has
 * h->column_count entries.  Exposed for unit tests. */
int import_append_values(const import_header *h, const csv_field *fields, cli_buf *out, char *err,
                         size_t err_size_bytes);

/* Append the CREATE pattern's property map " {k0: r[i], k1: r[i+1], ...}"
 * for the header's property columns starting at list index first_index
 * (0 for nodes, 2 for relationships after src and dst); nothing when the
 * header has no properties. */
void import_append_pattern_map(const import_header *h, size_t first_index, cli_buf *out);

/* Append the label fragment of a :LABEL cell ("A;B" -> ":A:B"; empty
 * parts ignored) and return the number of labels, or -1 with err. */
int import_append_labels(const char *cell, size_t len, cli_buf *out, char *err, size_t err_size_bytes);

#endif

/*
 * client.h -- the query side of the `quiver` program: connecting, running
 * one statement with GRAPH.QUERY and printing its result, `quiver status`,
 * and the interactive shell.
 *
 * Transport: hiredis (blocking context) over RESP2.  Replies are FalkorDB's
 * verbose result sets (reply.h).  Errors are printed on the error stream as
 * "error: <plain words>" and turned into a non-zero return; the caller maps
 * that to exit status 1.
 *
 * Thread: the main thread (readline/libedit is not thread-safe).
 */
#ifndef QUIVER_CLI_CLIENT_H
#define QUIVER_CLI_CLIENT_H

#include <stdbool.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

/* How long to wait for the TCP connection (queries themselves have no
 * client-side timeout: an import batch or a long query may take minutes). */
#define CLI_CONNECT_TIMEOUT_MS 5000
/* Bytes of one statement typed into the shell (multi-line input). */
#define CLI_STATEMENT_SIZE_MAX_BYTES (16u * 1024 * 1024)
/* Entries kept in ~/.quiver_history. */
#define CLI_HISTORY_COUNT_MAX 1000

/* Connect to host:port.  Returns a context (free with redisFree), or NULL
 * after printing "error: cannot connect to HOST:PORT: reason" on errf. */
redisContext *cli_connect(const char *host, int port, FILE *errf);

/* Run query on graph with GRAPH.QUERY and print the table and statistics on
 * out, or "error: ..." on errf.  Returns 0 on success, 1 on a query error
 * or a bad reply, 2 when the connection failed (the context is unusable). */
int cli_run_query(redisContext *c, const char *graph, const char *query, FILE *out, FILE *errf);

/* `quiver status`: INFO raft as a two-column table.  Returns 0 or 1. */
int cli_status(redisContext *c, FILE *out, FILE *errf);

/* The interactive shell (libedit) when stdin is a terminal, else statements
 * read from stdin separated by ';'.  graph is the initial graph (the shell
 * may change it with :graph).  Returns the exit status: 0, or 1 when
 * reading from a pipe and any statement failed. */
int cli_shell(const char *host, int port, const char *graph);

/* Does text (a statement being typed) end with ';' outside string literals,
 * back-quoted names and comments?  Exposed for unit tests. */
bool cli_statement_complete(const char *text, size_t len);

#endif

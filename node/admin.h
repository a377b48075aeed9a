/*
 * admin.h -- the admin HTTP port (DESIGN.md 8): /healthz, /readyz,
 * /status (JSON) and /metrics (Prometheus text exposition format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Deliberately tiny: one GET (or HEAD) per connection, answered with
 * "Connection: close".  Probes and scrapers need no more, and a full HTTP
 * server is not the product.
 *
 *   /healthz  200 "ok": the process runs its loop.
 *   /readyz   200 "ready" once this node knows a leader and has applied up
 *             to the commit index it learned at start (node_ready in
 *             server.h: a leader known now, the start-up commit index and
 *             the leader's read index applied), else 503 "not ready".
 *   /status   200 JSON: node id, role, term, leader, commit and applied
 *             indexes, readiness, clients, uptime, version, the start-up
 *             commit index, the stale-read lag, reads served per
 *             consistency level ("reads": {"linearizable", "session",
 *             "stale"}), session waits and their timeouts.
 *   /metrics  200 Prometheus text: the same numbers as gauges/counters.
 *
 * Every other request is answered and the connection closed:
 *   400  malformed request line or header (RFC 9112 section 3 and 5 syntax,
 *        checked strictly: NUL and other control bytes, a bad method token,
 *        a target not starting with '/', a version other than HTTP/1.x, a
 *        header line without a field name), or EOF before the blank line;
 *   404  unknown path;  405  a method other than GET/HEAD;
 *   408  the head not complete within ADMIN_REQUEST_TIMEOUT_MS (slowloris);
 *   414  a target longer than ADMIN_TARGET_SIZE_MAX_BYTES;
 *   431  a head longer than ADMIN_REQUEST_SIZE_MAX_BYTES.
 * Bad bytes are rejected as soon as they arrive, not at the blank line.
 * At most ADMIN_CLIENTS_COUNT_MAX admin connections are open at once; a
 * connection is closed at the latest ADMIN_REQUEST_TIMEOUT_MS +
 * ADMIN_WRITE_TIMEOUT_MS after it was accepted.
 *
 * Thread: the loop thread.
 */
#ifndef QUIVER_NODE_ADMIN_H
#define QUIVER_NODE_ADMIN_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "server.h"

#define ADMIN_REQUEST_SIZE_MAX_BYTES 8192 /* request line + headers + blank line */
#define ADMIN_TARGET_SIZE_MAX_BYTES 1024  /* the request target (path + query) */
#define ADMIN_METHOD_SIZE_MAX_BYTES 16    /* method token; ours are GET and HEAD */
#define ADMIN_CLIENTS_COUNT_MAX 64
#define ADMIN_REQUEST_TIMEOUT_MS 5000 /* accept -> complete head, else 408 */
#define ADMIN_WRITE_TIMEOUT_MS 2000   /* reply written -> connection closed anyway */

struct admin_conn;

typedef struct admin {
    uv_tcp_t listener;
    node *n;
    struct admin_conn *conns; /* open connections, so admin_stop can close them */
    uint32_t client_count;
    bool listening;
} admin;

/* Outcome of admin_parse_request. */
typedef enum admin_parse_status {
    ADMIN_PARSE_INCOMPLETE = 0, /* valid so far, blank line not seen yet */
    ADMIN_PARSE_OK,             /* a complete, well-formed head: req filled */
    ADMIN_PARSE_BAD,            /* malformed: answer 400 */
    ADMIN_PARSE_TARGET_TOO_LONG, /* target over ADMIN_TARGET_SIZE_MAX_BYTES: answer 414 */
    ADMIN_PARSE_TOO_LARGE       /* head over ADMIN_REQUEST_SIZE_MAX_BYTES: answer 431 */
} admin_parse_status;

/* A parsed request head: NUL-terminated method and target (the path, with
 * any "?query" cut off). */
typedef struct admin_request {
    char method[ADMIN_METHOD_SIZE_MAX_BYTES + 1];
    char path[ADMIN_TARGET_SIZE_MAX_BYTES + 1];
} admin_request;

/* Checks the first len bytes a client sent (buf need not be NUL-terminated,
 * may hold NUL bytes) against the HTTP/1.x request head syntax of RFC 9112
 * sections 2.2, 3 and 5 (strict subset: no obs-fold, request line
 * "METHOD SP /target SP HTTP/1.d", header lines "name:value", lines ended by
 * CRLF or a bare LF).  Bytes after the blank line are ignored.  Decides as
 * early as possible: BAD as soon as a prefix cannot start a valid head.
 * Fills *req only on ADMIN_PARSE_OK.  Pure function; any thread.
 * Errors: see admin_parse_status. */
admin_parse_status admin_parse_request(const char *buf, size_t len, admin_request *req);

/* Listen on n->cfg->bind:port.  Returns 0, or a negative libuv error with
 * err filled.  Thread: loop. */
int admin_start(admin *a, node *n, uint16_t port, char *err, size_t err_size_bytes);

/* Stop listening and close every open admin connection (an unwritten
 * reply is dropped), so that nothing of the admin port is left for the
 * loop's final uv_walk to close without freeing.  Thread: loop. */
void admin_stop(admin *a);

#endif

/*
 * admin.h -- the admin HTTP port (DESIGN.md 8): /healthz, /readyz,
 * /status (JSON) and /metrics (Prometheus text exposition format 0.0.4,
 * https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Deliberately tiny: HTTP/1.0-style, one GET per connection, answered with
 * "Connection: close".  The request head is bounded
 * (ADMIN_REQUEST_SIZE_MAX_BYTES) and so is the number of open admin
 * connections (ADMIN_CLIENTS_COUNT_MAX); anything else gets 400/404/405.
 * Probes and scrapers need no more, and a full HTTP server is not the
 * product.
 *
 *   /healthz  200 "ok": the process runs its loop.
 *   /readyz   200 "ready" when this node can serve (leader ready, or a
 *             follower that knows its leader), else 503 "not ready".
 *   /status   200 JSON: node id, role, term, leader, commit and applied
 *             indexes, readiness, clients, uptime, version.
 *   /metrics  200 Prometheus text: the same numbers as gauges/counters.
 *
 * Thread: the loop thread.
 */
#ifndef QUIVER_NODE_ADMIN_H
#define QUIVER_NODE_ADMIN_H

#include <stdint.h>

#include <uv.h>

#include "server.h"

#define ADMIN_REQUEST_SIZE_MAX_BYTES 8192
#define ADMIN_CLIENTS_COUNT_MAX 64

typedef struct admin {
    uv_tcp_t listener;
    node *n;
    uint32_t client_count;
    bool listening;
} admin;

/* Listen on n->cfg->bind:port.  Returns 0, or a negative libuv error with
 * err filled.  Thread: loop. */
int admin_start(admin *a, node *n, uint16_t port, char *err, size_t err_size_bytes);

/* Stop listening (open admin connections finish their reply). */
void admin_stop(admin *a);

#endif

/*
 * admin.c -- admin HTTP port (see admin.h).
 *
 * Each connection accumulates the request head into a fixed buffer until
 * the blank line, answers once from the loop thread's view of raft
 * (repl_get_info) and the server's counters, then closes.  Nothing here
 * touches RocksDB, so a probe never waits behind a query.
 */
#include "admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/qassert.h"

typedef struct admin_conn {
    uv_tcp_t tcp;
    admin *a;
    char req[ADMIN_REQUEST_SIZE_MAX_BYTES];
    size_t len;
    bool answered;
    uv_write_t wr;
    char *resp;
} admin_conn;

static void conn_close_cb(uv_handle_t *h) {
    admin_conn *c = h->data;
    QUIVER_ASSERT(c->a->client_count > 0);
    c->a->client_count--;
    free(c->resp);
    free(c);
}

static void conn_close(admin_conn *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
}

static void write_cb(uv_write_t *w, int status) {
    (void)status;
    conn_close(w->data);
}

static void respond(admin_conn *c, int code, const char *reason, const char *ctype, const char *body) {
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    size_t blen = strlen(body);
    size_t cap = blen + 256;
    c->resp = malloc(cap);
    if (c->resp == NULL) QUIVER_FATAL("out of memory (admin reply)");
    int n = snprintf(c->resp, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", code,
                     reason, ctype, blen, body);
    QUIVER_ASSERT(n > 0 && (size_t)n < cap);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)n);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) conn_close(c);
}

static void get_info(node *n, repl_info *ri) {
    memset(ri, 0, sizeof(*ri));
    if (n->repl != NULL) {
        repl_get_info(n->repl, ri);
    } else {
        ri->node_id = n->cfg->node_id;
        ri->role = "follower";
        ri->leader_address = "";
    }
    if (ri->role == NULL) ri->role = "follower";
    if (ri->leader_address == NULL) ri->leader_address = "";
}

static bool node_ready(const repl_info *ri) {
    return ri->ready || (ri->leader_id != 0 && ri->leader_id != ri->node_id);
}

static void handle(admin_conn *c) {
    node *n = c->a->n;
    char method[8] = {0}, path[128] = {0};
    if (sscanf(c->req, "%7s %127s", method, path) != 2) {
        respond(c, 400, "Bad Request", "text/plain", "bad request\n");
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond(c, 405, "Method Not Allowed", "text/plain", "only GET\n");
        return;
    }
    char *q = strchr(path, '?');
    if (q) *q = '\0';
    repl_info ri;
    get_info(n, &ri);
    uint64_t up_s = (node_now_ms() - n->start_ms) / 1000;
    char body[4096];
    if (strcmp(path, "/healthz") == 0) {
        respond(c, 200, "OK", "text/plain", "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        if (node_ready(&ri))
            respond(c, 200, "OK", "text/plain", "ready\n");
        else
            respond(c, 503, "Service Unavailable", "text/plain", "not ready\n");
    } else if (strcmp(path, "/status") == 0) {
        snprintf(body, sizeof(body),
                 "{\"node_id\":%" PRIu64 ",\"role\":\"%s\",\"current_term\":%" PRIu64 ",\"leader_id\":%" PRIu64
                 ",\"leader_address\":\"%s\",\"commit_index\":%" PRIu64 ",\"last_applied_index\":%" PRIu64
                 ",\"ready\":%s,\"raft_address\":\"%s\",\"peers\":%u,\"port\":%d,\"connected_clients\":%u"
                 ",\"uptime_seconds\":%" PRIu64 ",\"version\":\"%s\",\"process_id\":%ld}\n",
                 ri.node_id, ri.role, ri.current_term, ri.leader_id, ri.leader_address, ri.commit_index,
                 ri.last_applied_index, node_ready(&ri) ? "true" : "false", n->cfg->raft_address, n->cfg->peer_count,
                 node_server_port(n), n->client_count, up_s, QUIVER_VERSION, (long)getpid());
        respond(c, 200, "OK", "application/json", body);
    } else if (strcmp(path, "/metrics") == 0) {
        snprintf(body, sizeof(body),
                 "# HELP quiver_raft_term Current raft term.\n# TYPE quiver_raft_term gauge\nquiver_raft_term %" PRIu64 "\n"
                 "# HELP quiver_raft_leader 1 if this node is the raft leader.\n# TYPE quiver_raft_leader gauge\n"
                 "quiver_raft_leader %d\n"
                 "# HELP quiver_raft_commit_index Raft commit index.\n# TYPE quiver_raft_commit_index gauge\n"
                 "quiver_raft_commit_index %" PRIu64 "\n"
                 "# HELP quiver_raft_applied_index State machine applied index.\n"
                 "# TYPE quiver_raft_applied_index gauge\nquiver_raft_applied_index %" PRIu64 "\n"
                 "# HELP quiver_ready 1 if the node can serve requests.\n# TYPE quiver_ready gauge\nquiver_ready %d\n"
                 "# HELP quiver_connected_clients Open client connections.\n# TYPE quiver_connected_clients gauge\n"
                 "quiver_connected_clients %u\n"
                 "# HELP quiver_commands_processed_total Client commands processed.\n"
                 "# TYPE quiver_commands_processed_total counter\nquiver_commands_processed_total %" PRIu64 "\n"
                 "# HELP quiver_connections_received_total Client connections accepted.\n"
                 "# TYPE quiver_connections_received_total counter\nquiver_connections_received_total %" PRIu64 "\n"
                 "# HELP quiver_rejected_connections_total Connections refused (max clients).\n"
                 "# TYPE quiver_rejected_connections_total counter\nquiver_rejected_connections_total %" PRIu64 "\n"
                 "# HELP quiver_uptime_seconds Seconds since start.\n# TYPE quiver_uptime_seconds gauge\n"
                 "quiver_uptime_seconds %" PRIu64 "\n",
                 ri.current_term, strcmp(ri.role, "leader") == 0 ? 1 : 0, ri.commit_index, ri.last_applied_index,
                 node_ready(&ri) ? 1 : 0, n->client_count, n->commands_processed, n->connections_received,
                 n->rejected_connections, up_s);
        respond(c, 200, "OK", "text/plain; version=0.0.4", body);
    } else {
        respond(c, 404, "Not Found", "text/plain", "not found: try /healthz, /readyz, /status, /metrics\n");
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    admin_conn *c = h->data;
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    admin_conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (c->answered) return;
    c->len += (size_t)nread;
    c->req[c->len] = '\0';
    if (strstr(c->req, "\r\n\r\n") != NULL || strstr(c->req, "\n\n") != NULL) {
        handle(c);
    } else if (c->len >= sizeof(c->req) - 1) {
        respond(c, 431, "Request Header Fields Too Large", "text/plain", "request too large\n");
    }
}

static void on_connection(uv_stream_t *server, int status) {
    admin *a = server->data;
    if (status < 0) return;
    admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) QUIVER_FATAL("out of memory (admin connection)");
    c->a = a;
    a->client_count++;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || a->client_count > ADMIN_CLIENTS_COUNT_MAX) {
        conn_close(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

int admin_start(admin *a, node *n, uint16_t port, char *err, size_t err_size_bytes) {
    memset(a, 0, sizeof(*a));
    a->n = n;
    uv_tcp_init(n->loop, &a->listener);
    a->listener.data = a;
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(n->cfg->bind, port, (struct sockaddr_in *)&addr);
    if (rc != 0) rc = uv_ip6_addr(n->cfg->bind, port, (struct sockaddr_in6 *)&addr);
    if (rc == 0) rc = uv_tcp_bind(&a->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&a->listener, 64, on_connection);
    if (rc != 0) {
        snprintf(err, err_size_bytes, "cannot listen on %s:%u (--admin-port): %s", n->cfg->bind, (unsigned)port,
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&a->listener, NULL);
        return rc;
    }
    a->listening = true;
    return 0;
}

void admin_stop(admin *a) {
    if (!a->listening) return;
    a->listening = false;
    uv_close((uv_handle_t *)&a->listener, NULL);
}

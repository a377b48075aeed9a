/*
 * admin.c -- admin HTTP port (see admin.h).
 *
 * Each connection accumulates the request head into a fixed buffer
 * (ADMIN_REQUEST_SIZE_MAX_BYTES) and re-checks it with admin_parse_request
 * after every read, answers once from the loop thread's view of raft
 * (repl_get_info) and the server's counters, then closes.  Nothing here
 * touches RocksDB, so a probe never waits behind a query.
 *
 * Why a strict, incremental parser rather than sscanf on a C string: the
 * head is untrusted bytes, and treating it as a C string let a NUL byte hide
 * the rest (the blank line was never "seen", so the connection just waited).
 * Checking the bytes themselves, as they arrive, answers junk at once.
 * Re-parsing the whole head on each read is O(head^2) in the worst case
 * (one byte per read), bounded by 8 KiB and the deadline, and keeps the
 * parser a pure function that the unit tests drive directly.
 *
 * Resources per connection are bounded three ways: the head buffer, the
 * number of connections (ADMIN_CLIENTS_COUNT_MAX), and one timer per
 * connection: 408 when the head is not complete after
 * ADMIN_REQUEST_TIMEOUT_MS (a client sending a byte now and then cannot
 * hold a slot forever), then a hard close ADMIN_WRITE_TIMEOUT_MS after the
 * reply was queued (a client that never reads cannot either).
 */
#include "admin.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/qassert.h"

/* ------------------------------------------------------------------------
 * Request head syntax (RFC 9112 sections 2.2, 3, 5; RFC 9110 section 5.6.2
 * for token characters). */

static bool is_tchar(unsigned char ch) {
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A byte allowed in a field value: VCHAR, SP, HTAB, obs-text. */
static bool is_field_char(unsigned char ch) {
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

/* Consumes an end of line (CRLF or bare LF) at *pos.  Returns OK when
 * consumed, INCOMPLETE at the end of input, BAD otherwise. */
static admin_parse_status eol(const unsigned char *b, size_t len, size_t *pos) {
    if (*pos >= len) return ADMIN_PARSE_INCOMPLETE;
    if (b[*pos] == '\n') {
        (*pos)++;
        return ADMIN_PARSE_OK;
    }
    if (b[*pos] != '\r') return ADMIN_PARSE_BAD;
    if (*pos + 1 >= len) return ADMIN_PARSE_INCOMPLETE;
    if (b[*pos + 1] != '\n') return ADMIN_PARSE_BAD;
    *pos += 2;
    return ADMIN_PARSE_OK;
}

static admin_parse_status parse_head(const unsigned char *b, size_t len, admin_request *req) {
    size_t pos = 0;
    /* method SP */
    size_t m0 = pos;
    while (pos < len && is_tchar(b[pos])) {
        if (pos - m0 >= ADMIN_METHOD_SIZE_MAX_BYTES) return ADMIN_PARSE_BAD;
        pos++;
    }
    if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
    if (pos == m0 || b[pos] != ' ') return ADMIN_PARSE_BAD;
    size_t m1 = pos++;
    /* request-target (origin-form) SP */
    if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
    if (b[pos] != '/') return ADMIN_PARSE_BAD;
    size_t t0 = pos;
    while (pos < len && b[pos] > 0x20 && b[pos] < 0x7f) {
        if (pos - t0 >= ADMIN_TARGET_SIZE_MAX_BYTES) return ADMIN_PARSE_TARGET_TOO_LONG;
        pos++;
    }
    if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
    if (b[pos] != ' ') return ADMIN_PARSE_BAD;
    size_t t1 = pos++;
    /* HTTP-version = "HTTP/1." DIGIT */
    static const char version[] = "HTTP/1.";
    for (size_t i = 0; i < sizeof(version) - 1; i++, pos++) {
        if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
        if (b[pos] != (unsigned char)version[i]) return ADMIN_PARSE_BAD;
    }
    if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
    if (b[pos] < '0' || b[pos] > '9') return ADMIN_PARSE_BAD;
    pos++;
    admin_parse_status st = eol(b, len, &pos);
    if (st != ADMIN_PARSE_OK) return st;
    /* *( field-name ":" field-value eol ) eol */
    for (;;) {
        if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
        if (b[pos] == '\r' || b[pos] == '\n') {
            st = eol(b, len, &pos);
            if (st != ADMIN_PARSE_OK) return st;
            break;
        }
        size_t n0 = pos;
        while (pos < len && is_tchar(b[pos])) pos++;
        if (pos >= len) return ADMIN_PARSE_INCOMPLETE;
        if (pos == n0 || b[pos] != ':') return ADMIN_PARSE_BAD; /* also obs-fold: a line starting with SP */
        pos++;
        while (pos < len && is_field_char(b[pos])) pos++;
        st = eol(b, len, &pos);
        if (st != ADMIN_PARSE_OK) return st;
    }
    /* Complete: copy method and path (the target without its query). */
    size_t mlen = m1 - m0, tlen = t1 - t0;
    QUIVER_ASSERT(mlen >= 1 && mlen <= ADMIN_METHOD_SIZE_MAX_BYTES);
    QUIVER_ASSERT(tlen >= 1 && tlen <= ADMIN_TARGET_SIZE_MAX_BYTES);
    memcpy(req->method, b + m0, mlen);
    req->method[mlen] = '\0';
    memcpy(req->path, b + t0, tlen);
    req->path[tlen] = '\0';
    char *q = strchr(req->path, '?');
    if (q != NULL) *q = '\0';
    return ADMIN_PARSE_OK;
}

admin_parse_status admin_parse_request(const char *buf, size_t len, admin_request *req) {
    QUIVER_ASSERT(buf != NULL || len == 0);
    QUIVER_ASSERT(req != NULL);
    if (len > ADMIN_REQUEST_SIZE_MAX_BYTES) len = ADMIN_REQUEST_SIZE_MAX_BYTES;
    admin_parse_status st = parse_head((const unsigned char *)buf, len, req);
    /* A head that is still valid but has filled the whole budget can never
     * finish within it. */
    if (st == ADMIN_PARSE_INCOMPLETE && len >= ADMIN_REQUEST_SIZE_MAX_BYTES) st = ADMIN_PARSE_TOO_LARGE;
    QUIVER_ASSERT(st >= ADMIN_PARSE_INCOMPLETE && st <= ADMIN_PARSE_TOO_LARGE);
    return st;
}

/* ------------------------------------------------------------------------
 * Connections */

typedef struct admin_conn {
    uv_tcp_t tcp;
    uv_timer_t deadline; /* 408, then the hard close */
    admin *a;
    struct admin_conn *prev, *next; /* a->conns */
    int handles_open;    /* tcp + deadline; freed when both are closed */
    char req[ADMIN_REQUEST_SIZE_MAX_BYTES];
    size_t len;
    bool answered;
    uv_write_t wr;
    char *resp;
} admin_conn;

static void conn_close_cb(uv_handle_t *h) {
    admin_conn *c = h->data;
    QUIVER_ASSERT(c->handles_open > 0);
    if (--c->handles_open > 0) return;
    admin *a = c->a;
    QUIVER_ASSERT(a->client_count > 0);
    a->client_count--;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    free(c->resp);
    free(c);
}

static void conn_close(admin_conn *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    if (!uv_is_closing((uv_handle_t *)&c->deadline)) uv_close((uv_handle_t *)&c->deadline, conn_close_cb);
}

static void write_cb(uv_write_t *w, int status) {
    (void)status; /* written or not, the one reply is over */
    conn_close(w->data);
}

static void deadline_cb(uv_timer_t *t);

/* Queues the one reply of this connection and stops reading; write_cb
 * closes.  body is copied.  HEAD gets the same header lines, no body. */
static void respond(admin_conn *c, int code, const char *reason, const char *ctype, const char *body, bool head_only) {
    QUIVER_ASSERT(!c->answered);
    QUIVER_ASSERT(code >= 200 && code <= 599 && reason != NULL && ctype != NULL && body != NULL);
    c->answered = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    /* From now on the deadline bounds the write: a client that never
     * reads its reply does not keep the slot. */
    uv_timer_stop(&c->deadline);
    uv_timer_start(&c->deadline, deadline_cb, ADMIN_WRITE_TIMEOUT_MS, 0);
    size_t blen = strlen(body);
    size_t cap = blen + 256;
    c->resp = malloc(cap);
    if (c->resp == NULL) QUIVER_FATAL("out of memory (admin reply)");
    int n = snprintf(c->resp, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s", code,
                     reason, ctype, blen, head_only ? "" : body);
    QUIVER_ASSERT(n > 0 && (size_t)n < cap);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned)n);
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, write_cb) != 0) conn_close(c);
}

static void respond_error(admin_conn *c, int code, const char *reason, const char *body) {
    respond(c, code, reason, "text/plain", body, false);
}

static void deadline_cb(uv_timer_t *t) {
    admin_conn *c = t->data;
    if (!c->answered)
        respond_error(c, 408, "Request Timeout", "request head not complete in time\n");
    else
        conn_close(c); /* the reply could not be written in time */
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

/* Readiness is node_ready (server.h): a leader known now, and applied up
 * to the commit index learned at start (and to the leader's read index). */
static bool is_ready(node *n, const repl_info *ri) { return node_ready(n, n->repl != NULL ? ri : NULL); }

/* Answers a well-formed request. */
static void handle(admin_conn *c, const admin_request *req) {
    node *n = c->a->n;
    bool head_only = strcmp(req->method, "HEAD") == 0;
    if (strcmp(req->method, "GET") != 0 && !head_only) {
        respond_error(c, 405, "Method Not Allowed", "only GET\n");
        return;
    }
    repl_info ri;
    get_info(n, &ri);
    uint64_t up_s = (node_now_ms() - n->start_ms) / 1000;
    char body[16384];
    int len = 0;
    if (strcmp(req->path, "/healthz") == 0) {
        respond(c, 200, "OK", "text/plain", "ok\n", head_only);
    } else if (strcmp(req->path, "/readyz") == 0) {
        if (is_ready(n, &ri))
            respond(c, 200, "OK", "text/plain", "ready\n", head_only);
        else
            respond(c, 503, "Service Unavailable", "text/plain", "not ready\n", head_only);
    } else if (strcmp(req->path, "/status") == 0) {
        len = snprintf(body, sizeof(body),
                 "{\"node_id\":%" PRIu64 ",\"role\":\"%s\",\"current_term\":%" PRIu64 ",\"leader_id\":%" PRIu64
                 ",\"leader_address\":\"%s\",\"commit_index\":%" PRIu64 ",\"last_applied_index\":%" PRIu64
                 ",\"ready\":%s,\"raft_address\":\"%s\",\"peers\":%u,\"port\":%d,\"connected_clients\":%u"
                 ",\"uptime_seconds\":%" PRIu64 ",\"version\":\"%s\",\"process_id\":%ld"
                 ",\"startup_commit_index\":%" PRIu64 ",\"stale_lag_entries\":%" PRIu64
                 ",\"reads\":{\"linearizable\":%" PRIu64 ",\"session\":%" PRIu64 ",\"stale\":%" PRIu64
                 "},\"session_waits\":%" PRIu64 ",\"session_wait_timeouts\":%" PRIu64 "}\n",
                 ri.node_id, ri.role, ri.current_term, ri.leader_id, ri.leader_address, ri.commit_index,
                 ri.last_applied_index, is_ready(n, &ri) ? "true" : "false", n->cfg->raft_address, n->cfg->peer_count,
                 node_server_port(n), n->client_count, up_s, QUIVER_VERSION, (long)getpid(), n->startup_commit_index,
                 node_stale_lag_entries(n, n->repl != NULL ? &ri : NULL),
                 n->reads_served_total[NODE_CONSISTENCY_LINEARIZABLE], n->reads_served_total[NODE_CONSISTENCY_SESSION],
                 n->reads_served_total[NODE_CONSISTENCY_STALE], n->session_waits_total, n->session_wait_timeouts_total);
        if (len > 0 && (size_t)len < sizeof(body))
            respond(c, 200, "OK", "application/json", body, head_only);
        else /* never cut a JSON document short */
            respond_error(c, 500, "Internal Server Error", "status too large\n");
    } else if (strcmp(req->path, "/metrics") == 0) {
        len = snprintf(body, sizeof(body),
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
                 is_ready(n, &ri) ? 1 : 0, n->client_count, n->commands_processed, n->connections_received,
                 n->rejected_connections, up_s);
        QUIVER_ASSERT(len > 0 && (size_t)len < sizeof(body)); /* numbers only: bounded */
        /* Memory and client limits (server.h), INFO's numbers. */
        uint64_t recent_in = 0, recent_out = 0;
        node_recent_max_buffers(n, &recent_in, &recent_out);
        int more = snprintf(body + len, sizeof(body) - (size_t)len,
                 "# HELP quiver_used_memory_bytes Resident set size (INFO used_memory).\n"
                 "# TYPE quiver_used_memory_bytes gauge\nquiver_used_memory_bytes %" PRIu64 "\n"
                 "# HELP quiver_maxmemory_bytes --maxmemory (0: none).\n# TYPE quiver_maxmemory_bytes gauge\n"
                 "quiver_maxmemory_bytes %" PRIu64 "\n"
                 "# HELP quiver_clients_memory_bytes All clients' buffers together.\n"
                 "# TYPE quiver_clients_memory_bytes gauge\nquiver_clients_memory_bytes %" PRIu64 "\n"
                 "# HELP quiver_maxmemory_clients_bytes --maxmemory-clients (0: none).\n"
                 "# TYPE quiver_maxmemory_clients_bytes gauge\nquiver_maxmemory_clients_bytes %" PRIu64 "\n"
                 "# HELP quiver_client_recent_max_input_buffer_bytes Largest query buffer in the last seconds.\n"
                 "# TYPE quiver_client_recent_max_input_buffer_bytes gauge\n"
                 "quiver_client_recent_max_input_buffer_bytes %" PRIu64 "\n"
                 "# HELP quiver_client_recent_max_output_buffer_bytes Largest pending output in the last seconds.\n"
                 "# TYPE quiver_client_recent_max_output_buffer_bytes gauge\n"
                 "quiver_client_recent_max_output_buffer_bytes %" PRIu64 "\n"
                 "# HELP quiver_evicted_clients_total Clients disconnected by --maxmemory-clients.\n"
                 "# TYPE quiver_evicted_clients_total counter\nquiver_evicted_clients_total %" PRIu64 "\n"
                 "# HELP quiver_client_query_buffer_limit_disconnections_total Clients disconnected by "
                 "--client-query-buffer-limit.\n"
                 "# TYPE quiver_client_query_buffer_limit_disconnections_total counter\n"
                 "quiver_client_query_buffer_limit_disconnections_total %" PRIu64 "\n"
                 "# HELP quiver_client_output_buffer_limit_disconnections_total Clients disconnected by "
                 "--client-output-buffer-limit.\n"
                 "# TYPE quiver_client_output_buffer_limit_disconnections_total counter\n"
                 "quiver_client_output_buffer_limit_disconnections_total %" PRIu64 "\n"
                 "# HELP quiver_client_idle_timeout_disconnections_total Clients closed by --timeout.\n"
                 "# TYPE quiver_client_idle_timeout_disconnections_total counter\n"
                 "quiver_client_idle_timeout_disconnections_total %" PRIu64 "\n"
                 "# HELP quiver_oom_rejected_commands_total Commands refused with -OOM (--maxmemory).\n"
                 "# TYPE quiver_oom_rejected_commands_total counter\nquiver_oom_rejected_commands_total %" PRIu64 "\n"
                 "# HELP quiver_admissions_total Query texts admitted before running, by where.\n"
                 "# TYPE quiver_admissions_total counter\nquiver_admissions_total{where=\"inline\"} %" PRIu64 "\n"
                 "quiver_admissions_total{where=\"offloaded\"} %" PRIu64 "\n",
                 n->used_memory_bytes, n->cfg->maxmemory_bytes, n->clients_memory_bytes, n->cfg->maxmemory_clients_bytes,
                 recent_in, recent_out, n->evicted_clients, n->query_limit_disconnections,
                 n->output_limit_disconnections, n->idle_disconnections, n->oom_rejections, n->admissions_inline,
                 n->admissions_offloaded);
        QUIVER_ASSERT(more > 0 && (size_t)more < sizeof(body) - (size_t)len);
        respond(c, 200, "OK", "text/plain; version=0.0.4", body, head_only);
    } else {
        respond(c, 404, "Not Found", "text/plain", "not found: try /healthz, /readyz, /status, /metrics\n", head_only);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)suggested;
    admin_conn *c = h->data;
    QUIVER_ASSERT(c->len < sizeof(c->req)); /* a full buffer was answered with 431 */
    *buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - c->len));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
    (void)buf;
    admin_conn *c = s->data;
    if (c->answered) return;
    if (nread == UV_EOF && c->len > 0) {
        /* Half-closed before the head was complete: still say why. */
        respond_error(c, 400, "Bad Request", "incomplete request\n");
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    QUIVER_ASSERT((size_t)nread <= sizeof(c->req) - c->len);
    c->len += (size_t)nread;
    admin_request req;
    switch (admin_parse_request(c->req, c->len, &req)) {
    case ADMIN_PARSE_INCOMPLETE:
        QUIVER_ASSERT(c->len < sizeof(c->req));
        break;
    case ADMIN_PARSE_OK:
        handle(c, &req);
        break;
    case ADMIN_PARSE_BAD:
        respond_error(c, 400, "Bad Request", "bad request\n");
        break;
    case ADMIN_PARSE_TARGET_TOO_LONG:
        respond_error(c, 414, "URI Too Long", "request target too long\n");
        break;
    case ADMIN_PARSE_TOO_LARGE:
        respond_error(c, 431, "Request Header Fields Too Large", "request too large\n");
        break;
    }
}

static void on_connection(uv_stream_t *server, int status) {
    admin *a = server->data;
    if (status < 0) return;
    admin_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) QUIVER_FATAL("out of memory (admin connection)");
    c->a = a;
    a->client_count++;
    c->next = a->conns;
    if (a->conns != NULL) a->conns->prev = c;
    a->conns = c;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    uv_timer_init(server->loop, &c->deadline);
    c->deadline.data = c;
    c->handles_open = 2;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 || a->client_count > ADMIN_CLIENTS_COUNT_MAX) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->deadline, deadline_cb, ADMIN_REQUEST_TIMEOUT_MS, 0);
    if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0) conn_close(c);
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
    for (admin_conn *c = a->conns; c != NULL; c = c->next) conn_close(c);
}

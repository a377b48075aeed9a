/*
 * test_node_server.c -- quiverd's RESP server in-process (node/server.c,
 * commands.c, router.c, readers.c) on a random free 127.0.0.1 port, driven
 * over real TCP sockets.
 *
 * Raft, the query engine and storage are replaced by stubs defined here, so
 * this test checks the server's own behaviour: command texts, pipelining,
 * reply order across reader threads and (delayed) raft replies, reads
 * waiting for their connection's writes, protocol errors closing the
 * connection, a client vanishing while its write is in flight, admission
 * off the loop thread for long texts with the connection's order kept, and
 * the client limits (server.h): reads in flight per connection, the output
 * and query buffer limits, --maxmemory-clients, --timeout, --maxmemory,
 * --max-entry-bytes.  Since the stubs define every symbol node/ takes from
 * those modules, the linker pulls nothing else from their libraries.
 *
 * The tests run in groups (profiles), each with its own server started
 * with the limits it tests.
 *
 * The libuv loop runs on a second thread; assertions stay on the main
 * thread.  Waits are for a condition with a deadline (poll), never sleeps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "node/admission.h"
#include "node/commands.h"
#include "node/config.h"
#include "node/offload.h"
#include "node/readers.h"
#include "node/router.h"
#include "node/server.h"
#include "common/limits.h"
#include "query/query.h"
#include "raft/replication.h"
#include "storage/graph.h"

#define DEADLINE_MS 10000

/* ------------------------------------------------------------------ */
/* Stubs: storage                                                       */
/* ------------------------------------------------------------------ */

static atomic_uint_fast64_t applied_index; /* advanced by the fake apply */
static atomic_int views_open;

#include "node_storage_stubs.h"

int qs_graph_list(qs_view *v, q_arena *a, qv_str **names, uint32_t *count) {
    (void)v;
    qv_str *n = q_arena_alloc(a, sizeof(qv_str) * 2);
    n[0] = (qv_str){"a", 1};
    n[1] = (qv_str){"g", 1};
    *names = n;
    *count = 2;
    return QS_OK;
}
int qs_graph_lookup(qs_view *v, const char *name, size_t len, uint32_t *graph_id) {
    (void)v;
    if (len == 1 && name[0] == 'g') {
        *graph_id = 0;
        return QS_OK;
    }
    return QS_NOT_FOUND;
}
int qs_graph_digest(qs_view *v, uint32_t graph, char out_hex[17]) {
    (void)v;
    (void)graph;
    memcpy(out_hex, "0123456789abcdef", 17);
    return QS_OK;
}

/* ------------------------------------------------------------------ */
/* Stubs: query engine                                                  */
/* ------------------------------------------------------------------ */

/* "CREATE..." and "DELETE..." write; "BAD..." is a syntax error; "HUGE..."
 * breaks an admission limit; anything else reads and returns one row:
 * [text length, the applied index seen].  Counts where it ran (the loop
 * thread or another) for the off-loop admission tests. */
static pthread_t loop_thread;
static atomic_int admits_on_loop, admits_elsewhere;

int query_admit(const char *text, size_t len, query_admission *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    atomic_fetch_add(pthread_equal(pthread_self(), loop_thread) ? &admits_on_loop : &admits_elsewhere, 1);
    if (len >= 3 && memcmp(text, "BAD", 3) == 0) {
        snprintf(err, err_size, "errMsg: Invalid input at line: 1, column: 1");
        return -1;
    }
    if (len >= 4 && memcmp(text, "HUGE", 4) == 0) {
        snprintf(err, err_size, "ERR query refused: %zu bytes of literal", len);
        return -1;
    }
    out->writes = (len >= 6 && (memcmp(text, "CREATE", 6) == 0 || memcmp(text, "DELETE", 6) == 0));
    return 0;
}

static query_result *new_result(void) {
    query_result *r = calloc(1, sizeof(*r));
    q_arena_init(&r->arena, 0);
    return r;
}

/* "SLOW..." reads wait until the test opens the gate; "BIG n" reads return
 * one string cell of n bytes. */
static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;
static atomic_int slow_reads_entered;

static void gate_set(bool open) {
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_mu);
}

static query_result *big_result(size_t n) {
    query_result *r = new_result();
    r->column_count = 1;
    r->columns = q_arena_alloc(&r->arena, sizeof(qv_str));
    r->columns[0] = (qv_str){"s", 1};
    r->row_count = 1;
    r->cells = q_arena_alloc(&r->arena, sizeof(qv_value));
    char *text = q_arena_alloc(&r->arena, n);
    memset(text, 'x', n);
    r->cells[0].type = QV_STRING;
    r->cells[0].u.s = (qv_str){text, (uint32_t)n};
    return r;
}

query_result *query_run_read(qs_view *view, const query_request *req) {
    if (req->text_len >= 4 && memcmp(req->text, "SLOW", 4) == 0) {
        atomic_fetch_add(&slow_reads_entered, 1);
        pthread_mutex_lock(&gate_mu);
        while (!gate_open) pthread_cond_wait(&gate_cond, &gate_mu);
        pthread_mutex_unlock(&gate_mu);
    }
    if (req->text_len >= 4 && memcmp(req->text, "BIG ", 4) == 0) return big_result((size_t)atol(req->text + 4));
    query_result *r = new_result();
    r->column_count = 2;
    r->columns = q_arena_alloc(&r->arena, sizeof(qv_str) * 2);
    r->columns[0] = (qv_str){"len", 3};
    r->columns[1] = (qv_str){"seen", 4};
    r->row_count = 1;
    r->cells = q_arena_alloc(&r->arena, sizeof(qv_value) * 2);
    r->cells[0] = qv_int((int64_t)req->text_len);
    r->cells[1] = qv_int((int64_t)view->index);
    return r;
}

void query_result_free(query_result *r) {
    if (r == NULL) return;
    q_arena_free(&r->arena);
    free(r);
}

/* ------------------------------------------------------------------ */
/* Stubs: replication (answers after a delay, on the loop thread)       */
/* ------------------------------------------------------------------ */

typedef struct pending_write {
    struct pending_write *next;
    repl_reply_fn cb;
    void *ctx;
    sm_command_kind kind;
    char graph[64];
    size_t big_result_bytes; /* "CREATE BIG n": the result holds an n-byte string */
} pending_write;

struct repl {
    uv_loop_t *loop;
    uv_timer_t timer;
    pending_write *head, *tail;
    uint64_t seq;
};

static atomic_int writes_applied;
static atomic_int writes_proposed;

static void apply_timer_cb(uv_timer_t *t) {
    struct repl *r = t->data;
    pending_write *list = r->head;
    r->head = r->tail = NULL;
    while (list) {
        pending_write *p = list;
        list = p->next;
        uint64_t index = atomic_fetch_add(&applied_index, 1) + 1;
        atomic_fetch_add(&writes_applied, 1);
        query_result *res = p->big_result_bytes ? big_result(p->big_result_bytes) : new_result();
        if (p->kind == SM_CMD_GRAPH_DELETE && strcmp(p->graph, "g") != 0) {
            res->status = QUERY_ERR_NO_GRAPH;
        } else {
            res->stats.nodes_created = 1;
            res->stats.properties_set = 1;
        }
        p->cb(p->ctx, REPL_OK, res, index, NULL);
        free(p);
    }
}

sm_request_id repl_next_request_id(repl *r) {
    sm_request_id id = {.origin = 1, .seq = ++r->seq};
    return id;
}

int repl_propose(repl *r, const sm_command *cmd, repl_reply_fn cb, void *ctx) {
    pending_write *p = calloc(1, sizeof(*p));
    p->cb = cb;
    p->ctx = ctx;
    p->kind = cmd->kind;
    snprintf(p->graph, sizeof(p->graph), "%.*s", (int)cmd->graph.len, cmd->graph.ptr);
    if (cmd->text.len > 11 && memcmp(cmd->text.ptr, "CREATE BIG ", 11) == 0)
        p->big_result_bytes = (size_t)atol(cmd->text.ptr + 11);
    if (r->tail) r->tail->next = p;
    else r->head = p;
    r->tail = p;
    atomic_fetch_add(&writes_proposed, 1);
    /* 30 ms: long enough that a pipelined read would overtake the write
     * if the server did not hold it back. */
    uv_timer_start(&r->timer, apply_timer_cb, 30, 0);
    return 0;
}

int repl_read_barrier(repl *r, repl_read_fn cb, void *ctx) {
    (void)r;
    cb(ctx, REPL_OK, atomic_load(&applied_index), NULL);
    return 0;
}

/* QUIVER.CLUSTER (cluster.c) is linked in but not exercised here. */
struct raft *repl_raft(repl *r) {
    (void)r;
    return NULL;
}
void repl_get_info(repl *r, repl_info *out) {
    (void)r;
    memset(out, 0, sizeof(*out));
    out->node_id = 1;
    out->role = "leader";
    out->current_term = 2;
    out->leader_id = 1;
    out->leader_address = "127.0.0.1:7379";
    out->commit_index = atomic_load(&applied_index);
    out->last_applied_index = atomic_load(&applied_index);
    out->ready = true;
}

/* ------------------------------------------------------------------ */
/* Harness                                                              */
/* ------------------------------------------------------------------ */

static uv_loop_t loop;
static node server;
static node_config cfg;
static struct repl fake_repl;
static readers *rd;
static offload *pool;
static uv_async_t stop_async;
static int port;

/* The limits a group's server runs with (set before its setup). */
typedef struct profile {
    uint64_t max_request_bytes;
    uint64_t max_entry_bytes;
    uint64_t output_limit_bytes;
    uint64_t query_buffer_limit_bytes;
    uint64_t maxmemory_bytes;
    uint64_t maxmemory_clients_bytes;
    uint32_t timeout_s;
} profile;

static const profile profile_default = {.max_request_bytes = 65536, .max_entry_bytes = 65536 * 2};
static const profile profile_limits = {.max_request_bytes = 1024 * 1024,
                                       .max_entry_bytes = 300,
                                       .output_limit_bytes = 1024 * 1024,
                                       .query_buffer_limit_bytes = 256 * 1024,
                                       .timeout_s = 1};
static const profile profile_clients = {.max_request_bytes = 8u << 20,
                                        .max_entry_bytes = 65536,
                                        .query_buffer_limit_bytes = 8u << 20,
                                        .maxmemory_clients_bytes = 3u << 20};
static const profile profile_oom = {.max_request_bytes = 65536, .max_entry_bytes = 65536, .maxmemory_bytes = 1};
static const profile *current = &profile_default;

static void close_all_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_cb(uv_async_t *a) {
    (void)a;
    node_server_stop(&server);
    readers_stop(rd);
    apply_timer_cb(&fake_repl.timer); /* answer what is pending: the writes still apply */
    server.offload = NULL;
    offload_stop(pool);
    uv_walk(&loop, close_all_cb, NULL);
}

static void *loop_main(void *arg) {
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as quiverd's main does: a vanished client is an EPIPE, not a signal */
    char err[256];
    char *argv[] = {"quiverd", "--port", "1", "--reader-threads", "2", NULL};
    assert_int_equal(node_config_parse(5, argv, &cfg, stdout, err, sizeof(err)), NODE_CONFIG_RUN);
    cfg.port = 0; /* any free port */
    cfg.max_request_bytes = current->max_request_bytes;
    cfg.max_entry_bytes = current->max_entry_bytes;
    cfg.client_output_buffer_limit_bytes = current->output_limit_bytes;
    cfg.client_query_buffer_limit_bytes = current->query_buffer_limit_bytes != 0
                                              ? current->query_buffer_limit_bytes
                                              : cfg.max_request_bytes + QUIVER_CLIENT_QUERY_BUFFER_OVERHEAD_BYTES;
    cfg.maxmemory_bytes = current->maxmemory_bytes;
    cfg.maxmemory_clients_bytes = current->maxmemory_clients_bytes;
    cfg.timeout_s = current->timeout_s;
    gate_set(true);
    uv_loop_init(&loop);
    memset(&fake_repl, 0, sizeof(fake_repl));
    fake_repl.loop = &loop;
    uv_timer_init(&loop, &fake_repl.timer);
    fake_repl.timer.data = &fake_repl;
    assert_int_equal(readers_start(&loop, (qs_db *)&cfg, 2, router_read_done, &server, &rd), 0);
    assert_int_equal(node_server_start(&server, &loop, &cfg, (qs_db *)&cfg, (repl *)&fake_repl, rd, err, sizeof(err)), 0);
    assert_int_equal(offload_start(&loop, 2, &pool), 0);
    server.offload = pool;
    port = node_server_port(&server);
    assert_true(port > 0);
    uv_async_init(&loop, &stop_async, stop_cb);
    pthread_create(&loop_thread, NULL, loop_main, NULL);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    uv_async_send(&stop_async);
    pthread_join(loop_thread, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(atomic_load(&views_open), 0);
    return 0;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int connect_client(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t len) {
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

static void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

/* Read exactly strlen(want) bytes (deadline) and compare. */
static void expect(int fd, const char *want) {
    size_t n = strlen(want);
    char *got = calloc(1, n + 1);
    size_t have = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (have < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("timeout; got so far: '%s', want '%s'", got, want);
        ssize_t r = recv(fd, got + have, n - have, 0);
        if (r <= 0) fail_msg("connection closed; got so far: '%s', want '%s'", got, want);
        have += (size_t)r;
    }
    if (memcmp(got, want, n) != 0) fail_msg("got '%s'\nwant '%s'", got, want);
    free(got);
}

/* Read until the peer closes (deadline). */
static void expect_closed(int fd) {
    uint64_t deadline = now_ms() + DEADLINE_MS;
    char buf[256];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("connection not closed by the server");
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0) return;
        if (r < 0 && errno == ECONNRESET) return;
        if (r < 0) fail_msg("recv: %s", strerror(errno));
        fail_msg("unexpected bytes: %.*s", (int)r, buf);
    }
}

static void wait_for(atomic_int *v, int want) {
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (atomic_load(v) < want) {
        if (now_ms() > deadline) fail_msg("condition not reached: %d < %d", atomic_load(v), want);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling a condition, bounded by the deadline */
    }
}


/* Read one bulk reply ("$n\r\n...\r\n"); returns it malloc'd, NUL-terminated. */
static char *read_bulk(int fd) {
    char head[32];
    size_t hl = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (hl < 2 || head[hl - 2] != '\r' || head[hl - 1] != '\n') {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now_ms() > deadline || poll(&p, 1, DEADLINE_MS) <= 0) fail_msg("timeout reading a bulk header");
        assert_true(hl < sizeof head - 1);
        ssize_t r = recv(fd, head + hl, 1, 0);
        if (r <= 0) fail_msg("connection closed reading a bulk header");
        hl += (size_t)r;
    }
    head[hl] = '\0';
    if (head[0] != '$') fail_msg("not a bulk reply: %s", head);
    size_t n = (size_t)atol(head + 1);
    char *body = calloc(1, n + 3);
    size_t have = 0;
    while (have < n + 2) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now_ms() > deadline || poll(&p, 1, DEADLINE_MS) <= 0) fail_msg("timeout reading a bulk body");
        ssize_t r = recv(fd, body + have, n + 2 - have, 0);
        if (r <= 0) fail_msg("connection closed reading a bulk body");
        have += (size_t)r;
    }
    body[n] = '\0';
    return body;
}

/* A numeric field "name:value" of INFO (all sections), on a fresh connection. */
static uint64_t info_u64(const char *name) {
    int fd = connect_client();
    send_str(fd, "INFO everything\r\n");
    char *info = read_bulk(fd);
    close(fd);
    char key[128];
    snprintf(key, sizeof key, "\r\n%s:", name);
    char *at = strstr(info, key);
    if (at == NULL) fail_msg("INFO has no %s", name);
    uint64_t v = strtoull(at + strlen(key), NULL, 10);
    free(info);
    return v;
}

/* A numeric field "name=value" of the CLIENT LIST line of client id. */
static uint64_t client_field(uint64_t id, const char *name) {
    int fd = connect_client();
    send_str(fd, "CLIENT LIST\r\n");
    char *list = read_bulk(fd);
    close(fd);
    char key[64];
    snprintf(key, sizeof key, "id=%llu ", (unsigned long long)id);
    char *line = strstr(list, key);
    if (line == NULL) {
        free(list);
        return UINT64_MAX; /* gone */
    }
    char field[64];
    snprintf(field, sizeof field, " %s=", name);
    char *at = strstr(line, field);
    assert_non_null(at);
    uint64_t v = strtoull(at + strlen(field), NULL, 10);
    free(list);
    return v;
}

/* The id of the connection fd (CLIENT ID). */
static uint64_t client_id(int fd) {
    send_str(fd, "CLIENT ID\r\n");
    char buf[64] = {0};
    size_t have = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (have < 3 || buf[have - 1] != '\n') {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now_ms() > deadline || poll(&p, 1, DEADLINE_MS) <= 0) fail_msg("timeout reading CLIENT ID");
        ssize_t r = recv(fd, buf + have, 1, 0);
        assert_true(r > 0);
        have += (size_t)r;
    }
    assert_int_equal(buf[0], ':');
    return strtoull(buf + 1, NULL, 10);
}

/* Wait (deadline) until a CLIENT LIST field is want (at_least: >= want). */
static void wait_client_field_cmp(uint64_t id, const char *name, uint64_t want, bool at_least) {
    uint64_t deadline = now_ms() + DEADLINE_MS;
    uint64_t v;
    while ((v = client_field(id, name)) != want && !(at_least && v != UINT64_MAX && v >= want)) {
        if (now_ms() > deadline) fail_msg("client %llu: %s=%llu, want %llu", (unsigned long long)id, name,
                                          (unsigned long long)v, (unsigned long long)want);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL); /* polling a condition, bounded by the deadline */
    }
}

static void wait_client_field(uint64_t id, const char *name, uint64_t want) { wait_client_field_cmp(id, name, want, false); }

/* A GRAPH.QUERY request with a text of exactly len bytes: prefix, then
 * spaces. */
static char *query_request_of(const char *graph, const char *prefix, size_t len, size_t *out_len) {
    char *text = malloc(len);
    size_t pl = strlen(prefix);
    assert_true(pl <= len);
    memcpy(text, prefix, pl);
    memset(text + pl, ' ', len - pl);
    char *req = malloc(len + 128);
    int h = snprintf(req, 128, "*3\r\n$11\r\nGRAPH.QUERY\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(graph), graph, len);
    memcpy(req + h, text, len);
    memcpy(req + h + len, "\r\n", 2);
    *out_len = (size_t)h + len + 2;
    free(text);
    return req;
}

#define STATS0 "*2\r\n$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n"

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

static void test_basic_commands(void **state) {
    (void)state;
    int fd = connect_client();
    send_str(fd, "PING\r\n");
    expect(fd, "+PONG\r\n");
    send_str(fd, "*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n*2\r\n$4\r\necho\r\n$3\r\na b\r\n");
    expect(fd, "$2\r\nhi\r\n$3\r\na b\r\n");
    send_str(fd, "SELECT 0\r\nSELECT 1\r\nSELECT x\r\n");
    expect(fd, "+OK\r\n-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n");
    send_str(fd, "FOO bar \"baz qux\"\r\n");
    expect(fd, "-ERR unknown command 'FOO', with args beginning with: 'bar' 'baz qux' \r\n");
    send_str(fd, "GRAPH.QUERY g\r\nECHO\r\nGRAPH.DELETE\r\n");
    expect(fd, "-ERR wrong number of arguments for 'graph.query' command\r\n"
               "-ERR wrong number of arguments for 'echo' command\r\n"
               "-ERR wrong number of arguments for 'graph.delete' command\r\n");
    send_str(fd, "HELLO 3\r\nHELLO x\r\n");
    expect(fd, "-NOPROTO sorry, this protocol version is not supported.\r\n"
               "-ERR Protocol version is not an integer or out of range\r\n");
    send_str(fd, "HELLO 2\r\n");
    expect(fd, "*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$5\r\n7.2.4\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n");
    char buf[256];
    ssize_t r = recv(fd, buf, sizeof(buf), 0); /* id and the rest */
    assert_true(r > 0);
    send_str(fd, "COMMAND DOCS\r\nCOMMAND\r\nCOMMAND COUNT\r\n");
    char want_count[64];
    snprintf(want_count, sizeof want_count, "*0\r\n*0\r\n:%u\r\n", node_command_count());
    expect(fd, want_count);
    send_str(fd, "CLIENT SETNAME me\r\nCLIENT GETNAME\r\nCLIENT SETINFO LIB-NAME redis-py\r\nCLIENT SETINFO lib-ver 5.0\r\n"
                 "CLIENT NOPE\r\nCLIENT SETNAME \"a b\"\r\n");
    expect(fd, "+OK\r\n$2\r\nme\r\n+OK\r\n+OK\r\n-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n"
               "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    send_str(fd, "AUTH x\r\nAUTH default x\r\nAUTH bob x\r\n");
    expect(fd, "-ERR AUTH <password> called without any password configured for the default user. "
               "Are you sure your configuration is correct?\r\n+OK\r\n"
               "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    close(fd);
}

static void test_info(void **state) {
    (void)state;
    int fd = connect_client();
    send_str(fd, "INFO raft\r\n");
    char buf[4096];
    size_t have = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (strstr(buf, "raft_peers:1\r\n") == NULL) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(now_ms() < deadline && poll(&p, 1, DEADLINE_MS) > 0);
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        assert_true(r > 0);
        have += (size_t)r;
        buf[have] = '\0';
    }
    assert_non_null(strstr(buf, "# Raft\r\n"));
    assert_non_null(strstr(buf, "raft_node_id:1\r\n"));
    assert_non_null(strstr(buf, "raft_role:leader\r\n"));
    assert_non_null(strstr(buf, "raft_current_term:2\r\n"));
    assert_non_null(strstr(buf, "raft_leader_id:1\r\n"));
    assert_non_null(strstr(buf, "raft_commit_index:"));
    assert_non_null(strstr(buf, "raft_last_applied_index:"));
    assert_null(strstr(buf, "# Server"));
    send_str(fd, "INFO\r\n");
    have = 0;
    memset(buf, 0, sizeof(buf));
    while (strstr(buf, "raft_peers:1\r\n") == NULL) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        assert_true(now_ms() < deadline && poll(&p, 1, DEADLINE_MS) > 0);
        ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
        assert_true(r > 0);
        have += (size_t)r;
        buf[have] = '\0';
    }
    assert_non_null(strstr(buf, "# Server\r\nredis_version:"));
    assert_non_null(strstr(buf, "redis_mode:standalone\r\n"));
    assert_non_null(strstr(buf, "quiver_version:"));
    char want[64];
    snprintf(want, sizeof(want), "tcp_port:%d\r\n", port);
    assert_non_null(strstr(buf, want));
    close(fd);
}

static void test_graph_commands(void **state) {
    (void)state;
    int fd = connect_client();
    send_str(fd, "GRAPH.QUERY g \"MATCH (n) RETURN n\"\r\n");
    char want[512];
    snprintf(want, sizeof(want), "*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:18\r\n:%d\r\n%s",
             (int)atomic_load(&applied_index), STATS0);
    expect(fd, want);
    send_str(fd, "GRAPH.QUERY g \"MATCH (n) RETURN n\" --compact TIMEOUT 100\r\n");
    snprintf(want, sizeof(want),
             "*3\r\n*2\r\n*2\r\n:1\r\n$3\r\nlen\r\n*2\r\n:1\r\n$4\r\nseen\r\n*1\r\n*2\r\n*2\r\n:3\r\n:18\r\n*2\r\n:3\r\n:%d\r\n%s",
             (int)atomic_load(&applied_index), STATS0);
    expect(fd, want);
    send_str(fd, "GRAPH.QUERY g x TIMEOUT\r\nGRAPH.QUERY g x TIMEOUT -1\r\nGRAPH.QUERY g x --bogus\r\n");
    expect(fd, "-ERR Failed to parse query timeout value\r\n-ERR Failed to parse query timeout value\r\n"
               "-ERR unknown argument '--bogus' (expected --compact or TIMEOUT ms)\r\n");
    send_str(fd, "GRAPH.QUERY g BADQUERY\r\n");
    expect(fd, "-errMsg: Invalid input at line: 1, column: 1\r\n");
    send_str(fd, "GRAPH.RO_QUERY g \"CREATE (:P)\"\r\n");
    expect(fd, "-graph.RO_QUERY is to be executed only on read-only queries\r\n");
    send_str(fd, "GRAPH.QUERY \"\" x\r\n");
    expect(fd, "-ERR graph name must be 1 to 512 bytes long\r\n");
    send_str(fd, "GRAPH.LIST\r\nQUIVER.DIGEST nope\r\n");
    expect(fd, "*2\r\n$1\r\na\r\n$1\r\ng\r\n-ERR Invalid graph operation on empty key\r\n");
    int before = atomic_load(&writes_applied);
    send_str(fd, "GRAPH.QUERY g \"CREATE (:P {v:1})\"\r\n");
    expect(fd, "*1\r\n*4\r\n$16\r\nNodes created: 1\r\n$17\r\nProperties set: 1\r\n$19\r\nCached execution: 0\r\n"
               "$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n");
    assert_int_equal(atomic_load(&writes_applied), before + 1);
    send_str(fd, "GRAPH.DELETE g\r\nGRAPH.DELETE other\r\n");
    expect(fd, "$61\r\nGraph removed, internal execution time: 0.000000 milliseconds\r\n"
               "-ERR Invalid graph operation on empty key\r\n");
    close(fd);
}

static void test_pipeline_order_and_read_your_writes(void **state) {
    (void)state;
    int fd = connect_client();
    /* Two writes, then reads that must see both, then PING: one send. */
    uint64_t base = atomic_load(&applied_index);
    send_str(fd, "*3\r\n$11\r\nGRAPH.QUERY\r\n$1\r\ng\r\n$6\r\nCREATE\r\n"
                 "GRAPH.QUERY g CREATE\r\n"
                 "GRAPH.QUERY g MATCH\r\n"
                 "QUIVER.DIGEST g\r\n"
                 "PING\r\n");
    const char *w = "*1\r\n*4\r\n$16\r\nNodes created: 1\r\n$17\r\nProperties set: 1\r\n$19\r\nCached execution: 0\r\n"
                    "$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n";
    char want[2048];
    snprintf(want, sizeof(want), "%s%s*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:5\r\n:%d\r\n%s"
                                 "*2\r\n:%d\r\n$16\r\n0123456789abcdef\r\n+PONG\r\n",
             w, w, (int)(base + 2), STATS0, (int)(base + 2));
    expect(fd, want);
    close(fd);
}

static void test_pipeline_sequential_semantics(void **state) {
    (void)state;
    /* W R W R ...: each read sees exactly the writes before it (FalkorDB
     * runs a connection's commands one by one), although the writes are
     * answered late by raft and the reads run on reader threads. */
    int fd = connect_client();
    uint64_t base = atomic_load(&applied_index);
    char req[1024] = {0};
    for (int i = 0; i < 5; i++) strcat(req, "GRAPH.QUERY g CREATE\r\nGRAPH.QUERY g MATCH\r\n");
    strcat(req, "GRAPH.LIST\r\nGRAPH.QUERY g CREATE\r\nQUIVER.DIGEST g\r\n");
    send_str(fd, req);
    const char *w = "*1\r\n*4\r\n$16\r\nNodes created: 1\r\n$17\r\nProperties set: 1\r\n$19\r\nCached execution: 0\r\n"
                    "$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n";
    char want[8192] = {0};
    for (int i = 0; i < 5; i++) {
        char r[512];
        snprintf(r, sizeof(r), "%s*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:5\r\n:%d\r\n%s", w,
                 (int)(base + 1 + i), STATS0);
        strcat(want, r);
    }
    char tail[512];
    snprintf(tail, sizeof(tail), "*2\r\n$1\r\na\r\n$1\r\ng\r\n%s*2\r\n:%d\r\n$16\r\n0123456789abcdef\r\n", w,
             (int)(base + 6));
    strcat(want, tail);
    expect(fd, want);
    close(fd);
}

static void test_other_connection_not_blocked(void **state) {
    (void)state;
    /* A read on connection B does not wait for A's write. */
    int a = connect_client();
    int b = connect_client();
    uint64_t base = atomic_load(&applied_index);
    send_str(a, "GRAPH.QUERY g CREATE\r\n");
    wait_for(&writes_proposed, atomic_load(&writes_proposed)); /* no-op: proposal is immediate */
    send_str(b, "PING\r\n");
    expect(b, "+PONG\r\n");
    expect(a, "*1\r\n*4\r\n$16\r\nNodes created: 1\r\n");
    char rest[256];
    snprintf(rest, sizeof(rest), "$17\r\nProperties set: 1\r\n$19\r\nCached execution: 0\r\n"
                                 "$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n");
    expect(a, rest);
    assert_int_equal(atomic_load(&applied_index), base + 1);
    close(a);
    close(b);
}

static void test_protocol_error_closes(void **state) {
    (void)state;
    int fd = connect_client();
    send_str(fd, "PING\r\n*1\r\n*1\r\n$4\r\nPING\r\n");
    expect(fd, "+PONG\r\n-ERR Protocol error: expected '$', got '*'\r\n");
    expect_closed(fd);
    close(fd);
    fd = connect_client();
    send_str(fd, "*2\r\n$4\r\nECHO\r\n$70000\r\n");
    expect(fd, "-ERR Protocol error: request of more than 65536 bytes (the --max-request-bytes limit)\r\n");
    expect_closed(fd);
    close(fd);
    fd = connect_client();
    send_str(fd, "QUIT\r\nPING\r\n");
    expect(fd, "+OK\r\n");
    expect_closed(fd);
    close(fd);
}

static void test_disconnect_with_write_in_flight(void **state) {
    (void)state;
    int before = atomic_load(&writes_applied);
    for (int i = 0; i < 20; i++) {
        int fd = connect_client();
        send_str(fd, "GRAPH.QUERY g CREATE\r\nGRAPH.QUERY g MATCH\r\nGRAPH.QUERY g CREATE\r\n");
        close(fd); /* gone before the replies */
    }
    /* Every write still applies, and the server keeps serving. */
    wait_for(&writes_applied, before + 40);
    int fd = connect_client();
    send_str(fd, "PING\r\n");
    expect(fd, "+PONG\r\n");
    close(fd);
}

static void test_many_pipelined_requests(void **state) {
    (void)state;
    /* More than the per-connection pending limit: reading pauses and resumes. */
    int fd = connect_client();
    enum { N = 5000 };
    char *big = malloc(N * 6 + 1);
    for (int i = 0; i < N; i++) memcpy(big + i * 6, "PING\r\n", 6);
    send_all(fd, big, N * 6);
    char *want = malloc(N * 7 + 1);
    for (int i = 0; i < N; i++) memcpy(want + i * 7, "+PONG\r\n", 7);
    want[N * 7] = '\0';
    expect(fd, want);
    free(big);
    free(want);
    close(fd);
}

/* Random and mutated input on many connections: the server answers or
 * closes, never crashes, and keeps serving others.  Seeded: reproducible. */
static void test_garbage_input(void **state) {
    (void)state;
    static const char *seeds[] = {"*3\r\n$11\r\nGRAPH.QUERY\r\n$1\r\ng\r\n$5\r\nMATCH\r\n",
                                  "GRAPH.QUERY g \"CREATE\" --compact\r\n", "PING\r\n", "*1\r\n$4\r\nINFO\r\n",
                                  "CLIENT SETNAME x\r\n"};
    uint32_t rng = 12345;
    for (int round = 0; round < 200; round++) {
        char buf[512];
        size_t len = 0;
        int mode = round % 3;
        while (len < 200) {
            rng = rng * 1103515245u + 12345u;
            const char *sd = seeds[(rng >> 8) % 5];
            size_t sl = strlen(sd);
            memcpy(buf + len, sd, sl);
            len += sl;
        }
        for (size_t i = 0; i < len; i++) {
            rng = rng * 1103515245u + 12345u;
            if (mode == 0 && (rng >> 16) % 20 == 0) buf[i] = (char)(rng >> 8);  /* flip bytes */
            if (mode == 1) buf[i] = (char)(rng >> 12);                          /* pure noise */
        }
        int fd = connect_client();
        send(fd, buf, len, MSG_NOSIGNAL);
        if (round % 2 == 0) { /* sometimes read what comes back, until the server closes or goes quiet */
            struct pollfd p = {.fd = fd, .events = POLLIN};
            char tmp[4096];
            while (poll(&p, 1, 10) > 0 && recv(fd, tmp, sizeof(tmp), 0) > 0) {
            }
        }
        close(fd);
    }
    int fd = connect_client();
    send_str(fd, "PING\r\n");
    expect(fd, "+PONG\r\n");
    close(fd);
}


/* ---- admission (admission.h) ---- */

static void wait_writes_settled(void);

static void test_admission_inline_and_offloaded(void **state) {
    (void)state;
    wait_writes_settled();
    int fd = connect_client();
    int on_loop = atomic_load(&admits_on_loop), elsewhere = atomic_load(&admits_elsewhere);
    /* A short text: admitted on the loop thread. */
    send_str(fd, "GRAPH.QUERY g \"MATCH (n) RETURN n\"\r\n");
    expect(fd, "*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:18\r\n");
    char rest[256];
    snprintf(rest, sizeof rest, ":%d\r\n%s", (int)atomic_load(&applied_index), STATS0);
    expect(fd, rest);
    assert_int_equal(atomic_load(&admits_on_loop), on_loop + 1);
    assert_int_equal(atomic_load(&admits_elsewhere), elsewhere);
    /* A long one: elsewhere, with the same answer shape. */
    size_t len = 0;
    char *req = query_request_of("g", "MATCH (n) RETURN n", ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES + 1, &len);
    send_all(fd, req, len);
    char want[512];
    snprintf(want, sizeof want, "*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:%d\r\n:%d\r\n%s",
             ADMISSION_INLINE_TEXT_SIZE_MAX_BYTES + 1, (int)atomic_load(&applied_index), STATS0);
    expect(fd, want);
    assert_int_equal(atomic_load(&admits_elsewhere), elsewhere + 1);
    free(req);
    /* A long text refused by admission: its error, nothing proposed. */
    int proposed = atomic_load(&writes_proposed);
    req = query_request_of("g", "HUGE CREATE", 10000, &len);
    send_all(fd, req, len);
    expect(fd, "-ERR query refused: 10000 bytes of literal\r\n");
    assert_int_equal(atomic_load(&writes_proposed), proposed);
    free(req);
    close(fd);
}

/* While a long request is admitted elsewhere, nothing after it runs: a
 * pipelined write (long), then a read (short), QUIVER.CONSISTENCY and PING
 * come back in order, and the read sees the write. */
/* Earlier tests' writes (garbage input proposes some) apply meanwhile:
 * wait until every proposed write is applied. */
static void wait_writes_settled(void) {
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (atomic_load(&writes_applied) != atomic_load(&writes_proposed)) {
        if (now_ms() > deadline) fail_msg("writes not applied");
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

static void test_admission_keeps_connection_order(void **state) {
    (void)state;
    wait_writes_settled();
    int fd = connect_client();
    uint64_t base = atomic_load(&applied_index);
    size_t wl = 0;
    char *w = query_request_of("g", "CREATE (:P)", 20000, &wl);
    size_t total = wl + 256;
    char *all = malloc(total);
    memcpy(all, w, wl);
    int n = snprintf(all + wl, 256, "GRAPH.QUERY g MATCH\r\nQUIVER.CONSISTENCY stale\r\nPING\r\n");
    send_all(fd, all, wl + (size_t)n);
    char want[1024];
    snprintf(want, sizeof want,
             "*1\r\n*4\r\n$16\r\nNodes created: 1\r\n$17\r\nProperties set: 1\r\n$19\r\nCached execution: 0\r\n"
             "$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n"
             "*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:5\r\n:%d\r\n%s+OK\r\n+PONG\r\n",
             (int)(base + 1), STATS0);
    expect(fd, want);
    /* The read arrived before QUIVER.CONSISTENCY: it was linearizable (no
     * "Replication lag" line above); the next read is stale. */
    send_str(fd, "QUIVER.CONSISTENCY\r\n");
    expect(fd, "+stale\r\n");
    free(w);
    free(all);
    close(fd);
}

/* Closing the connection while its long write is being admitted: the
 * write still applies (as for a closed connection's deferred writes), the
 * server goes on. */
static void test_admission_client_gone(void **state) {
    (void)state;
    int applied = atomic_load(&writes_applied);
    size_t len = 0;
    char *req = query_request_of("g", "CREATE (:Gone)", 30000, &len);
    for (int i = 0; i < 10; i++) {
        int fd = connect_client();
        send_all(fd, req, len);
        send_str(fd, "GRAPH.QUERY g MATCH\r\n");
        close(fd);
    }
    wait_for(&writes_applied, applied + 10);
    free(req);
    int fd = connect_client();
    send_str(fd, "PING\r\n");
    expect(fd, "+PONG\r\n");
    close(fd);
}

/* ---- dispatch pauses (server.h soft limits) ---- */

static void test_reads_in_flight_bounded(void **state) {
    (void)state;
    wait_writes_settled();
    gate_set(false);
    int base_entered = atomic_load(&slow_reads_entered);
    int fd = connect_client();
    uint64_t id = client_id(fd);
    enum { N = 50 };
    char *all = malloc(N * 32);
    size_t len = 0;
    for (int i = 0; i < N; i++) len += (size_t)sprintf(all + len, "GRAPH.QUERY g SLOW\r\n");
    send_all(fd, all, len); /* 950 bytes: one read of the server */
    /* Eight reads are dispatched (two run, six wait for a reader); the
     * other 42 stay unparsed in the connection's input buffer. */
    wait_client_field(id, "reads", NODE_CLIENT_READS_IN_FLIGHT_COUNT_MAX);
    wait_for(&slow_reads_entered, base_entered + 2);
    assert_int_equal(client_field(id, "cmds"), NODE_CLIENT_READS_IN_FLIGHT_COUNT_MAX);
    assert_true(client_field(id, "qbuf") >= (N - NODE_CLIENT_READS_IN_FLIGHT_COUNT_MAX) * 19);
    gate_set(true);
    char *want = malloc(N * 200);
    size_t wl = 0;
    for (int i = 0; i < N; i++) {
        wl += (size_t)sprintf(want + wl, "*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:4\r\n:%d\r\n%s",
                              (int)atomic_load(&applied_index), STATS0);
    }
    expect(fd, want);
    free(want);
    free(all);
    close(fd);
}

/* A large write result is encoded on the offload pool; the reply is the same. */
static void test_large_write_result(void **state) {
    (void)state;
    uint64_t jobs = info_u64("offload_jobs_total");
    int fd = connect_client();
    send_str(fd, "GRAPH.QUERY g \"CREATE BIG 200000\"\r\n");
    expect(fd, "*3\r\n*1\r\n$1\r\ns\r\n*1\r\n*1\r\n$200000\r\nxxxxxxxx");
    char *rest = malloc(200000);
    memset(rest, 'x', 200000 - 8);
    rest[200000 - 8] = '\0';
    expect(fd, rest);
    free(rest);
    expect(fd, "\r\n*4\r\n$16\r\nNodes created: 1\r\n");
    close(fd);
    assert_true(info_u64("offload_jobs_total") >= jobs + 1);
}

/* ---- the limits profile ---- */

static void test_entry_size_refused(void **state) {
    (void)state;
    int fd = connect_client();
    int proposed = atomic_load(&writes_proposed);
    size_t len = 0;
    char *req = query_request_of("g", "CREATE (:P)", 400, &len); /* 400 + the command's fixed bytes > 300 */
    send_all(fd, req, len);
    /* the entry's size as command.h counts it: overhead + fixed bytes + graph + text, padded */
    char want[160];
    snprintf(want, sizeof want, "-ERR the write does not fit in one raft log entry: %zu bytes encoded, --max-entry-bytes is 300\r\n",
             sm_entry_padded_size(SM_ENTRY_OVERHEAD_BYTES + SM_COMMAND_FIXED_BYTES + 1 + 400));
    expect(fd, want);
    assert_int_equal(atomic_load(&writes_proposed), proposed);
    free(req);
    /* A read of that size is fine, and so is a short write. */
    req = query_request_of("g", "MATCH", 400, &len);
    send_all(fd, req, len);
    expect(fd, "*3\r\n*2\r\n$3\r\nlen\r\n$4\r\nseen\r\n*1\r\n*2\r\n:400\r\n");
    free(req);
    close(fd);
}

static void test_output_limit_disconnects(void **state) {
    (void)state;
    uint64_t before = info_u64("client_output_buffer_limit_disconnections");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096; /* keep the kernel from absorbing the replies */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    /* 40 replies of 300 KB, never read: 12 MB against a 1 MiB limit. */
    char req[2048];
    size_t len = 0;
    for (int i = 0; i < 40; i++) len += (size_t)sprintf(req + len, "GRAPH.QUERY g \"BIG 300000\"\r\n");
    send_all(fd, req, len);
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (info_u64("client_output_buffer_limit_disconnections") == before) {
        if (now_ms() > deadline) fail_msg("the client was not disconnected");
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    /* Gone: reading drains what the kernel holds, then EOF. */
    char buf[65536];
    deadline = now_ms() + DEADLINE_MS;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (now_ms() > deadline || poll(&p, 1, DEADLINE_MS) <= 0) fail_msg("no EOF");
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r <= 0) break;
    }
    close(fd);
    fd = connect_client();
    send_str(fd, "PING\r\n");
    expect(fd, "+PONG\r\n");
    close(fd);
}

static void test_query_buffer_limit(void **state) {
    (void)state;
    uint64_t before = info_u64("client_query_buffer_limit_disconnections");
    /* A bulk over the query buffer: refused at its header. */
    int fd = connect_client();
    send_str(fd, "*3\r\n$11\r\nGRAPH.QUERY\r\n$1\r\ng\r\n$300000\r\n");
    expect(fd, "-ERR max query buffer length reached: the request being received would hold more than 262144 bytes "
               "(the --client-query-buffer-limit)\r\n");
    expect_closed(fd);
    close(fd);
    /* Many small arguments: their bookkeeping counts. */
    fd = connect_client();
    char *req = malloc(1024 * 220 + 64);
    size_t len = (size_t)sprintf(req, "*1024\r\n");
    for (int i = 0; i < 1023; i++) len += (size_t)sprintf(req + len, "$200\r\n%0200d\r\n", i);
    send_all(fd, req, len);
    expect(fd, "-ERR max query buffer length reached: ");
    free(req);
    close(fd);
    assert_int_equal(info_u64("client_query_buffer_limit_disconnections"), before + 2);
}

static void test_idle_timeout(void **state) {
    (void)state;
    uint64_t before = info_u64("client_idle_timeout_disconnections");
    gate_set(false);
    int idle = connect_client();
    int busy = connect_client();
    send_str(busy, "GRAPH.QUERY g SLOW\r\n");
    send_str(idle, "PING\r\n");
    expect(idle, "+PONG\r\n");
    expect_closed(idle); /* after --timeout 1 s */
    close(idle);
    assert_true(info_u64("client_idle_timeout_disconnections") >= before + 1);
    /* The busy one had a request in flight: still served. */
    gate_set(true);
    expect(busy, "*3\r\n*2\r\n$3\r\nlen\r\n");
    close(busy);
}

/* ---- the clients-memory profile ---- */

static void test_maxmemory_clients_evicts_largest(void **state) {
    (void)state;
    uint64_t before = info_u64("evicted_clients");
    /* Two clients each half-send a large request: 1 MB and 2.5 MB held. */
    int small = connect_client(), large = connect_client();
    uint64_t small_id = client_id(small);
    size_t n1 = 1000000, n2 = 2500000;
    char *data = malloc(n2);
    memset(data, 'a', n2);
    char head[128];
    snprintf(head, sizeof head, "*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$%zu\r\n", n1 + 10);
    send_str(small, head);
    send_all(small, data, n1);
    wait_client_field_cmp(small_id, "qbuf", n1, true); /* counted before the large one starts */
    snprintf(head, sizeof head, "*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$%zu\r\n", n2 + 10);
    send_str(large, head);
    send_all(large, data, n2); /* 3.5 MB together > 3 MiB: the largest goes */
    expect_closed(large);
    close(large);
    assert_int_equal(info_u64("evicted_clients"), before + 1);
    assert_true(client_field(small_id, "qbuf") != UINT64_MAX); /* the small one stays */
    /* and completes its request */
    send_all(small, data, 10);
    send_str(small, "\r\n");
    char want[64];
    snprintf(want, sizeof want, "-ERR wrong number of arguments for 'echo' command\r\n");
    expect(small, want);
    free(data);
    close(small);
}

/* ---- the OOM profile ---- */

static void test_maxmemory_refuses_queries(void **state) {
    (void)state;
    uint64_t before = info_u64("oom_rejected_commands");
    int fd = connect_client();
    send_str(fd, "GRAPH.QUERY g \"MATCH (n) RETURN n\"\r\nGRAPH.RO_QUERY g x\r\nPING\r\nGRAPH.DELETE g\r\nECHO hi\r\n");
    expect(fd, "-OOM command not allowed when used memory > 'maxmemory'.\r\n"
               "-OOM command not allowed when used memory > 'maxmemory'.\r\n+PONG\r\n"
               "$61\r\nGraph removed, internal execution time: 0.000000 milliseconds\r\n$2\r\nhi\r\n");
    close(fd);
    assert_int_equal(info_u64("oom_rejected_commands"), before + 2);
    assert_int_equal(info_u64("maxmemory"), 1);
    assert_true(info_u64("used_memory") > 1);
}

static int setup_default(void **state) {
    current = &profile_default;
    return setup(state);
}
static int setup_limits(void **state) {
    current = &profile_limits;
    return setup(state);
}
static int setup_clients(void **state) {
    current = &profile_clients;
    return setup(state);
}
static int setup_oom(void **state) {
    current = &profile_oom;
    return setup(state);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_commands),
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_graph_commands),
        cmocka_unit_test(test_pipeline_order_and_read_your_writes),
        cmocka_unit_test(test_pipeline_sequential_semantics),
        cmocka_unit_test(test_other_connection_not_blocked),
        cmocka_unit_test(test_protocol_error_closes),
        cmocka_unit_test(test_disconnect_with_write_in_flight),
        cmocka_unit_test(test_many_pipelined_requests),
        cmocka_unit_test(test_garbage_input),
        cmocka_unit_test(test_admission_inline_and_offloaded),
        cmocka_unit_test(test_admission_keeps_connection_order),
        cmocka_unit_test(test_admission_client_gone),
        cmocka_unit_test(test_reads_in_flight_bounded),
        cmocka_unit_test(test_large_write_result),
    };
    const struct CMUnitTest limits[] = {
        cmocka_unit_test(test_entry_size_refused),
        cmocka_unit_test(test_output_limit_disconnects),
        cmocka_unit_test(test_query_buffer_limit),
        cmocka_unit_test(test_idle_timeout),
    };
    const struct CMUnitTest clients[] = {
        cmocka_unit_test(test_maxmemory_clients_evicts_largest),
    };
    const struct CMUnitTest oom[] = {
        cmocka_unit_test(test_maxmemory_refuses_queries),
    };
    int failed = cmocka_run_group_tests_name("default", tests, setup_default, teardown);
    failed += cmocka_run_group_tests_name("limits", limits, setup_limits, teardown);
    failed += cmocka_run_group_tests_name("clients_memory", clients, setup_clients, teardown);
    failed += cmocka_run_group_tests_name("oom", oom, setup_oom, teardown);
    return failed;
}

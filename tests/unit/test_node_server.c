/*
 * test_node_server.c -- quiverd's RESP server in-process (node/server.c,
 * commands.c, router.c, readers.c) on a random free 127.0.0.1 port, driven
 * over real TCP sockets.
 *
 * Raft, the query engine and storage are replaced by stubs defined here, so
 * this test checks the server's own behaviour: command texts, pipelining,
 * reply order across reader threads and (delayed) raft replies, reads
 * waiting for their connection's writes, protocol errors closing the
 * connection, and a client vanishing while its write is in flight.  Since
 * the stubs define every symbol node/ takes from those modules, the linker
 * pulls nothing else from their libraries.
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

#include "node/commands.h"
#include "node/config.h"
#include "node/readers.h"
#include "node/router.h"
#include "node/server.h"
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

query_result *query_run_read(qs_view *view, const query_request *req) {
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
        query_result *res = new_result();
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
static uv_async_t stop_async;
static int port;

static void close_all_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void stop_cb(uv_async_t *a) {
    (void)a;
    node_server_stop(&server);
    readers_stop(rd);
    apply_timer_cb(&fake_repl.timer); /* answer what is pending: the writes still apply */
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
    char *argv[] = {"quiverd", "--port", "1", "--reader-threads", "2", "--max-request-bytes", "4096", NULL};
    assert_int_equal(node_config_parse(7, argv, &cfg, stdout, err, sizeof(err)), NODE_CONFIG_RUN);
    cfg.port = 0; /* any free port */
    uv_loop_init(&loop);
    memset(&fake_repl, 0, sizeof(fake_repl));
    fake_repl.loop = &loop;
    uv_timer_init(&loop, &fake_repl.timer);
    fake_repl.timer.data = &fake_repl;
    assert_int_equal(readers_start(&loop, (qs_db *)&cfg, 2, router_read_done, &server, &rd), 0);
    assert_int_equal(node_server_start(&server, &loop, &cfg, (qs_db *)&cfg, (repl *)&fake_repl, rd, err, sizeof(err)), 0);
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
    send_str(fd, "*2\r\n$4\r\nECHO\r\n$5000\r\n");
    expect(fd, "-ERR Protocol error: request of more than 4096 bytes (the --max-request-bytes limit)\r\n");
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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

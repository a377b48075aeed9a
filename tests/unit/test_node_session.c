/*
 * test_node_session.c -- session and stale reads and QUIVER.REQUESTID in
 * quiverd's RESP server (node/server.c, router.c, readers.c) run in-process
 * on a random free 127.0.0.1 port, over real TCP sockets.
 *
 * Raft, the query engine and storage are stubs (as in test_node_server.c):
 * here a write is answered at once with a log index (101, 102, ...) that
 * the fake state machine has NOT applied yet; the test moves the applied
 * index itself.  The cluster table (server.h) is a fake whose wait_applied
 * holds its callers until the test releases them.  So the test controls
 * exactly when this "node" has applied a connection's writes, which a
 * real cluster cannot: a session read must wait for it, give up at its
 * TIMEOUT with a clear error, and a stale read must report the lag.
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

#include "node/config.h"
#include "node/readers.h"
#include "node/router.h"
#include "node/server.h"
#include "query/query.h"
#include "raft/replication.h"
#include "storage/graph.h"

#define DEADLINE_MS 10000
#define FIRST_WRITE_INDEX 100

static atomic_uint_fast64_t applied_index; /* the fake state machine's; moved by the test */
static atomic_uint_fast64_t write_index;   /* the last index given to a write */
static atomic_int views_open;

/* ------------------------------------------------------------------ */
/* Stubs: storage                                                       */
/* ------------------------------------------------------------------ */

#include "node_storage_stubs.h"

int qs_graph_list(qs_view *v, q_arena *a, qv_str **names, uint32_t *count) {
    (void)v, (void)a;
    *names = NULL;
    *count = 0;
    return QS_OK;
}
int qs_graph_lookup(qs_view *v, const char *name, size_t len, uint32_t *graph_id) {
    (void)v, (void)name, (void)len;
    *graph_id = 0;
    return QS_OK;
}
int qs_graph_digest(qs_view *v, uint32_t graph, char out_hex[17]) {
    (void)v, (void)graph;
    memcpy(out_hex, "0123456789abcdef", 17);
    return QS_OK;
}

/* ------------------------------------------------------------------ */
/* Stubs: query engine                                                  */
/* ------------------------------------------------------------------ */

/* "CREATE..." writes; anything else reads and returns one row: the
 * applied index its snapshot saw. */
int query_admit(const char *text, size_t len, query_admission *out, char *err, size_t err_size) {
    (void)err, (void)err_size;
    memset(out, 0, sizeof *out);
    out->writes = len >= 6 && memcmp(text, "CREATE", 6) == 0;
    return 0;
}

static query_result *new_result(void) {
    query_result *r = calloc(1, sizeof(*r));
    q_arena_init(&r->arena, 0);
    return r;
}

query_result *query_run_read(qs_view *view, const query_request *req) {
    (void)req;
    query_result *r = new_result();
    r->column_count = 1;
    r->columns = q_arena_alloc(&r->arena, sizeof(qv_str));
    r->columns[0] = (qv_str){"seen", 4};
    r->row_count = 1;
    r->cells = q_arena_alloc(&r->arena, sizeof(qv_value));
    r->cells[0] = qv_int((int64_t)view->index);
    return r;
}

void query_result_free(query_result *r) {
    if (r == NULL) return;
    q_arena_free(&r->arena);
    free(r);
}

/* ------------------------------------------------------------------ */
/* Stubs: replication                                                   */
/* ------------------------------------------------------------------ */

#define PROPOSED_MAX 64
static sm_request_id proposed[PROPOSED_MAX]; /* request ids, in proposal order (loop thread writes) */
static atomic_int proposed_count;

typedef struct answer {
    repl_reply_fn cb;
    void *ctx;
} answer;

struct repl {
    uint64_t seq;
    uv_idle_t idle; /* answers proposals on the next loop iteration, never inside repl_propose */
    answer answers[PROPOSED_MAX];
    int answer_count;
};

static void answer_idle_cb(uv_idle_t *h) {
    struct repl *r = h->data;
    uv_idle_stop(h);
    for (int i = 0; i < r->answer_count; i++) {
        query_result *res = new_result();
        res->stats.nodes_created = 1;
        uint64_t index = atomic_fetch_add(&write_index, 1) + 1; /* committed, not applied here */
        r->answers[i].cb(r->answers[i].ctx, REPL_OK, res, index, NULL);
    }
    r->answer_count = 0;
}

sm_request_id repl_next_request_id(repl *r) {
    sm_request_id id = {.origin = 1, .seq = ++r->seq};
    return id;
}

int repl_propose(repl *r, const sm_command *cmd, repl_reply_fn cb, void *ctx) {
    int n = atomic_load(&proposed_count);
    if (n >= PROPOSED_MAX || r->answer_count >= PROPOSED_MAX) abort(); /* loop thread: no cmocka asserts */
    proposed[n] = cmd->request_id;
    atomic_store(&proposed_count, n + 1);
    r->answers[r->answer_count++] = (answer){cb, ctx};
    uv_idle_start(&r->idle, answer_idle_cb);
    return 0;
}

int repl_read_barrier(repl *r, repl_read_fn cb, void *ctx) {
    (void)r;
    cb(ctx, REPL_OK, atomic_load(&applied_index), NULL);
    return 0;
}

struct raft *repl_raft(repl *r) {
    (void)r;
    return NULL;
}

void repl_get_info(repl *r, repl_info *out) {
    (void)r;
    memset(out, 0, sizeof(*out));
    out->node_id = 2;
    out->role = "follower";
    out->current_term = 2;
    out->leader_id = 1;
    out->leader_address = "127.0.0.1:7379";
    out->commit_index = atomic_load(&write_index);
    out->last_applied_index = atomic_load(&applied_index);
}

/* ------------------------------------------------------------------ */
/* The fake cluster table: wait_applied holds callers until released     */
/* ------------------------------------------------------------------ */

#define WAITERS_MAX 64
typedef struct waiter {
    uint64_t index;
    repl_read_fn cb;
    void *ctx;
} waiter;
static waiter waiters[WAITERS_MAX]; /* loop thread only */
static int waiter_count;
static atomic_int waits_started;

static void fake_wait_applied(repl *r, uint64_t index, repl_read_fn cb, void *ctx) {
    (void)r;
    if (waiter_count >= WAITERS_MAX) abort();
    waiters[waiter_count++] = (waiter){index, cb, ctx};
    atomic_fetch_add(&waits_started, 1);
}

/* Answer the waiters whose index is applied (st REPL_OK), or all of them
 * with st (shutdown).  Loop thread. */
static void release_waiters(repl_status_code st) {
    int kept = 0;
    waiter todo[WAITERS_MAX];
    int todo_count = 0;
    for (int i = 0; i < waiter_count; i++) {
        if (st != REPL_OK || waiters[i].index <= atomic_load(&applied_index))
            todo[todo_count++] = waiters[i];
        else
            waiters[kept++] = waiters[i];
    }
    waiter_count = kept;
    for (int i = 0; i < todo_count; i++) todo[i].cb(todo[i].ctx, st, todo[i].index, st == REPL_OK ? NULL : "stopping");
}

static void fake_read_gate(fwd *f, repl *r, repl_read_fn cb, void *ctx) {
    (void)f, (void)r, (void)cb, (void)ctx;
    abort(); /* not expected: no forwarder in this test */
}

static const node_cluster_ops fake_ops = {
    .serve_forward = NULL,
    .write = NULL,
    .read_gate = fake_read_gate,
    .stats = NULL,
    .wait_applied = fake_wait_applied,
};

/* ------------------------------------------------------------------ */
/* Harness                                                              */
/* ------------------------------------------------------------------ */

static uv_loop_t loop;
static node server;
static node_config cfg;
static struct repl fake_repl;
static readers *rd;
static uv_async_t stop_async, release_async;
static pthread_t loop_thread;
static int port;

static void close_all_cb(uv_handle_t *h, void *arg) {
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void release_cb(uv_async_t *a) {
    (void)a;
    release_waiters(REPL_OK);
}

static void stop_cb(uv_async_t *a) {
    (void)a;
    node_server_stop(&server);
    readers_stop(rd);
    release_waiters(REPL_SHUTTING_DOWN); /* as repl_stop answers its waiters */
    uv_walk(&loop, close_all_cb, NULL);
}

static void *loop_main(void *arg) {
    (void)arg;
    uv_run(&loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state) {
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    atomic_store(&applied_index, 0);
    atomic_store(&write_index, FIRST_WRITE_INDEX);
    char err[256];
    char *argv[] = {"quiverd", "--port", "1", "--reader-threads", "2", NULL};
    assert_int_equal(node_config_parse(5, argv, &cfg, stdout, err, sizeof(err)), NODE_CONFIG_RUN);
    cfg.port = 0;
    uv_loop_init(&loop);
    memset(&fake_repl, 0, sizeof(fake_repl));
    uv_idle_init(&loop, &fake_repl.idle);
    fake_repl.idle.data = &fake_repl;
    assert_int_equal(readers_start(&loop, (qs_db *)&cfg, 2, router_read_done, &server, &rd), 0);
    assert_int_equal(node_server_start(&server, &loop, &cfg, (qs_db *)&cfg, (repl *)&fake_repl, rd, err, sizeof(err)), 0);
    server.cluster = &fake_ops; /* n->fwd stays NULL: writes go to repl_propose, no nudges */
    port = node_server_port(&server);
    assert_true(port > 0);
    uv_async_init(&loop, &stop_async, stop_cb);
    uv_async_init(&loop, &release_async, release_cb);
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

static void send_str(int fd, const char *s) {
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

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

/* Read one line (up to CRLF, deadline) into buf. */
static void read_line(int fd, char *buf, size_t size) {
    size_t have = 0;
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (have < 2 || buf[have - 2] != '\r' || buf[have - 1] != '\n') {
        assert_true(have + 1 < size);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) fail_msg("timeout reading a line");
        ssize_t r = recv(fd, buf + have, 1, 0);
        assert_true(r == 1);
        have++;
    }
    buf[have] = '\0';
}

/* total_commands_processed from INFO stats on a fresh connection (this
 * INFO included). */
static long commands_processed(void) {
    int fd = connect_client();
    send_str(fd, "INFO stats\r\n");
    char line[256];
    long n = -1;
    read_line(fd, line, sizeof line);
    for (;;) {
        read_line(fd, line, sizeof line);
        if (strncmp(line, "total_commands_processed:", 25) == 0) n = atol(line + 25);
        if (strncmp(line, "rejected_connections:", 21) == 0) break;
    }
    close(fd);
    assert_true(n >= 0);
    return n;
}

static bool readable_now(int fd) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) > 0;
}

static void wait_atomic(atomic_int *v, int want) {
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (atomic_load(v) < want) {
        if (now_ms() > deadline) fail_msg("condition not reached: %d < %d", atomic_load(v), want);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* polling a condition, bounded by the deadline */
    }
}

#define CREATE_REPLY                                                                                             \
    "*1\r\n*3\r\n$16\r\nNodes created: 1\r\n$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: " \
    "0.000000 milliseconds\r\n"
#define STATS0 "$19\r\nCached execution: 0\r\n$52\r\nQuery internal execution time: 0.000000 milliseconds\r\n"

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

/* A session read waits until this node has applied the connection's last
 * write, however long the leader took to say it committed; a linearizable
 * or stale read does not wait for it; the stale one reports the lag. */
static void test_session_read_waits_for_its_write(void **state) {
    (void)state;
    int fd = connect_client();
    send_str(fd, "QUIVER.CONSISTENCY session\r\n");
    expect(fd, "+OK\r\n");
    uint64_t before = atomic_load(&write_index);
    int waits = atomic_load(&waits_started);
    send_str(fd, "GRAPH.QUERY g CREATE\r\n");
    expect(fd, CREATE_REPLY);
    uint64_t index = before + 1;
    assert_int_equal(atomic_load(&write_index), index);
    /* Nothing applied yet: the session read waits (wait_applied called). */
    send_str(fd, "GRAPH.QUERY g MATCH\r\n");
    wait_atomic(&waits_started, waits + 1);
    assert_false(readable_now(fd));
    /* Another connection, stale: answers at once, lag = commit - applied. */
    int other = connect_client();
    send_str(other, "QUIVER.CONSISTENCY stale\r\nGRAPH.QUERY g MATCH\r\n");
    unsigned long long applied = (unsigned long long)atomic_load(&applied_index);
    char lag[64], want[512];
    snprintf(lag, sizeof lag, "Replication lag: %llu entries", (unsigned long long)index - applied);
    snprintf(want, sizeof want, "+OK\r\n*3\r\n*1\r\n$4\r\nseen\r\n*1\r\n*1\r\n:%llu\r\n*3\r\n" STATS0 "$%zu\r\n%s\r\n",
             applied, strlen(lag), lag);
    expect(other, want);
    /* ... and its INFO says so, and counts the waiting session read. */
    send_str(other, "INFO raft\r\n");
    char line[256];
    read_line(other, line, sizeof line); /* $len */
    bool saw_lag = false, saw_wait = false, saw_level = false;
    for (;;) {
        read_line(other, line, sizeof line);
        char lagline[64];
        snprintf(lagline, sizeof lagline, "raft_stale_lag_entries:%llu\r\n",
                 (unsigned long long)(index - atomic_load(&applied_index)));
        if (strcmp(line, lagline) == 0) saw_lag = true;
        if (strncmp(line, "raft_session_waits_total:", 25) == 0 && atoi(line + 25) >= 1) saw_wait = true;
        if (strcmp(line, "raft_consistency:stale\r\n") == 0) saw_level = true;
        if (strncmp(line, "raft_peers:", 11) == 0) break;
    }
    assert_true(saw_lag && saw_wait && saw_level);
    read_line(other, line, sizeof line); /* the bulk's final CRLF */
    assert_string_equal(line, "\r\n");
    close(other);
    /* Applied up to the write: the read runs and sees it. */
    atomic_store(&applied_index, index);
    uv_async_send(&release_async);
    snprintf(want, sizeof want, "*3\r\n*1\r\n$4\r\nseen\r\n*1\r\n*1\r\n:%llu\r\n*2\r\n" STATS0, (unsigned long long)index);
    expect(fd, want);
    /* Applied already: the next session read does not wait. */
    waits = atomic_load(&waits_started);
    send_str(fd, "GRAPH.QUERY g MATCH\r\n");
    expect(fd, want);
    assert_int_equal(atomic_load(&waits_started), waits);
    close(fd);
}

/* A session read gives up at its TIMEOUT with a clear error; the late
 * release is harmless, and the connection goes on. */
static void test_session_read_timeout(void **state) {
    (void)state;
    int fd = connect_client();
    send_str(fd, "QUIVER.CONSISTENCY session\r\nGRAPH.QUERY g CREATE\r\n");
    expect(fd, "+OK\r\n" CREATE_REPLY);
    uint64_t index = atomic_load(&write_index);
    send_str(fd, "GRAPH.QUERY g MATCH TIMEOUT 50\r\n");
    char line[512];
    read_line(fd, line, sizeof line);
    char want[512];
    snprintf(want, sizeof want,
             "-ERR session read timed out after 50 ms: this node has applied log index %llu but this connection's "
             "last acknowledged write is at index %llu",
             (unsigned long long)atomic_load(&applied_index), (unsigned long long)index);
    if (strncmp(line, want, strlen(want)) != 0) fail_msg("got '%s'\nwant '%s...'", line, want);
    /* The wait's callback comes later and must be ignored. */
    atomic_store(&applied_index, index);
    uv_async_send(&release_async);
    send_str(fd, "QUIVER.CONSISTENCY\r\nPING\r\n");
    expect(fd, "+session\r\n+PONG\r\n");
    /* INFO counts the timeout. */
    send_str(fd, "INFO raft\r\n");
    read_line(fd, line, sizeof line);
    bool saw = false;
    for (;;) {
        read_line(fd, line, sizeof line);
        if (strncmp(line, "raft_session_wait_timeouts_total:", 33) == 0 && atoi(line + 33) >= 1) saw = true;
        if (strncmp(line, "raft_peers:", 11) == 0) break;
    }
    read_line(fd, line, sizeof line);
    assert_true(saw);
    close(fd);
}

/* QUIVER.REQUESTID: the next proposed write takes the id, even when it is
 * deferred behind a read of its connection; later writes get fresh ids. */
static void test_request_id_goes_to_the_next_write(void **state) {
    (void)state;
    int fd = connect_client();
    int n0 = atomic_load(&proposed_count);
    send_str(fd, "QUIVER.REQUESTID 5 7\r\nGRAPH.QUERY g MATCH\r\nGRAPH.QUERY g CREATE\r\nGRAPH.QUERY g CREATE\r\n");
    char want[512];
    snprintf(want, sizeof want, "+OK\r\n*3\r\n*1\r\n$4\r\nseen\r\n*1\r\n*1\r\n:%llu\r\n*2\r\n" STATS0 CREATE_REPLY CREATE_REPLY,
             (unsigned long long)atomic_load(&applied_index));
    expect(fd, want);
    wait_atomic(&proposed_count, n0 + 2);
    assert_true(proposed[n0].origin == 5 && proposed[n0].seq == 7);
    assert_true(proposed[n0 + 1].origin == 1); /* repl_next_request_id's */

    /* Hold a session read (its write is not applied), then pipeline
     * REQUESTID a; CREATE; REQUESTID b; CREATE: both writes wait behind
     * the read and must still get a and b in order. */
    send_str(fd, "QUIVER.CONSISTENCY session\r\nGRAPH.QUERY g CREATE\r\n");
    expect(fd, "+OK\r\n" CREATE_REPLY);
    int waits = atomic_load(&waits_started);
    int n1 = atomic_load(&proposed_count);
    send_str(fd, "GRAPH.QUERY g MATCH\r\n");
    wait_atomic(&waits_started, waits + 1);
    long c0 = commands_processed();
    send_str(fd, "QUIVER.REQUESTID 9 9\r\nGRAPH.QUERY g CREATE\r\nQUIVER.REQUESTID 8 8\r\nGRAPH.QUERY g CREATE\r\n");
    /* Once the server has parsed the four commands: nothing proposed, nothing answered. */
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (commands_processed() < c0 + 1 + 4) assert_true(now_ms() < deadline);
    assert_int_equal(atomic_load(&proposed_count), n1);
    assert_false(readable_now(fd));
    uint64_t index = atomic_load(&write_index);
    atomic_store(&applied_index, index);
    uv_async_send(&release_async);
    snprintf(want, sizeof want, "*3\r\n*1\r\n$4\r\nseen\r\n*1\r\n*1\r\n:%llu\r\n*2\r\n" STATS0 "+OK\r\n" CREATE_REPLY
             "+OK\r\n" CREATE_REPLY, (unsigned long long)index);
    expect(fd, want);
    wait_atomic(&proposed_count, n1 + 2);
    assert_true(proposed[n1].origin == 9 && proposed[n1].seq == 9);
    assert_true(proposed[n1 + 1].origin == 8 && proposed[n1 + 1].seq == 8);
    /* Bad arguments set nothing. */
    send_str(fd, "QUIVER.REQUESTID 0 1\r\nQUIVER.REQUESTID 1\r\nGRAPH.QUERY g CREATE\r\n");
    expect(fd, "-ERR QUIVER.REQUESTID origin and seq must be decimal unsigned 64-bit integers other than 0\r\n"
               "-ERR wrong number of arguments for 'quiver.requestid' command\r\n" CREATE_REPLY);
    wait_atomic(&proposed_count, n1 + 3);
    assert_true(proposed[n1 + 2].origin == 1);
    close(fd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_read_waits_for_its_write),
        cmocka_unit_test(test_session_read_timeout),
        cmocka_unit_test(test_request_id_goes_to_the_next_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

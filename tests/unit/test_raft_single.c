/*
 * test_raft_single.c -- raft/replication.c as a single-node cluster on
 * 127.0.0.1 with a temporary directory and real storage: proposals applied
 * in order, group commit (one entry per loop iteration), restart from the
 * same directories applies nothing twice, de-duplication across a restart,
 * marker snapshots and restore, the read gate, INFO, shutdown answering
 * every proposal once, and a node without quorum refusing writes.
 *
 * The apply index = last_applied + 1 rule (RAFT-NOTES.md; checked bare in
 * test_raft_notes.c) is also exercised by every REPL_OK here, because
 * results are matched to proposals by the index raft_apply reported.
 *
 * The query engine is the same stand-in as in test_statemachine_apply.c
 * ("CREATE" creates one node and returns its id), so these tests pin
 * replication, not Cypher.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <cmocka.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "common/limits.h"
#include "raft/replication.h"
#include "statemachine/result_codec.h"

/* ---- stand-in query engine ---- */

query_result *query_run_write(qs_txn *txn, const query_request *req) {
    uint32_t graph;
    int rc = qs_graph_create(txn, req->graph, req->graph_len, &graph);
    assert_true(rc == QS_OK || rc == QS_EXISTS);
    if (!(req->text_len == 6 && memcmp(req->text, "CREATE", 6) == 0)) return sm_result_empty(false);
    uint64_t node_id;
    assert_int_equal(qs_node_create(txn, graph, NULL, 0, NULL, &node_id), QS_OK);
    query_result *r = sm_result_empty(true);
    r->stats.nodes_created = 1;
    r->column_count = 1;
    r->columns = q_arena_calloc(&r->arena, 1, sizeof(qv_str));
    r->columns[0] = (qv_str){"id", 2};
    r->row_count = 1;
    r->cells = q_arena_calloc(&r->arena, 1, sizeof(qv_value));
    r->cells[0] = qv_int((int64_t)node_id);
    return r;
}

void query_result_free(query_result *r) {
    if (r == NULL) return;
    q_arena_free(&r->arena);
    free(r);
}

/* ---- harness ---- */

typedef struct reply {
    bool done;
    int calls;
    repl_status_code status;
    uint64_t index;
    int64_t cell;
    char error[256];
} reply;

typedef struct fixture {
    char dir[512], db_dir[600], raft_dir[600];
    char address[64];
    uv_loop_t loop;
    uv_timer_t tick;
    qs_db *db;
    repl *r;
    bool stopped;
    repl_peer peers[2];
    uint32_t peer_count;
    uint64_t snapshot_threshold, snapshot_trailing;
    uint64_t entry_size_max_bytes; /* repl_config.entry_size_max_bytes (0: default) */
} fixture;

static void reply_cb(void *ctx, repl_status_code status, query_result *r, uint64_t index, const char *error) {
    reply *p = ctx;
    p->calls++;
    p->done = true;
    p->status = status;
    p->index = index;
    p->cell = -1;
    if (r) {
        if (r->row_count == 1 && r->column_count == 1 && r->cells[0].type == QV_INT) p->cell = r->cells[0].u.i;
        query_result_free(r);
    }
    if (error) snprintf(p->error, sizeof p->error, "%s", error);
}

static void read_cb(void *ctx, repl_status_code status, uint64_t index, const char *error) {
    reply *p = ctx;
    p->calls++;
    p->done = true;
    p->status = status;
    p->index = index;
    if (error) snprintf(p->error, sizeof p->error, "%s", error);
}

static void tick_cb(uv_timer_t *t) { (void)t; }

/* Run the loop until *flag or 20 s (a hang guard, not a timing assertion). */
static bool run_until(fixture *f, bool (*cond)(void *), void *arg) {
    uv_update_time(&f->loop);
    uint64_t deadline = uv_now(&f->loop) + 20000;
    while (!cond(arg) && uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
        uv_update_time(&f->loop);
    }
    return cond(arg);
}

static bool reply_done(void *arg) { return ((reply *)arg)->done; }

typedef struct replies { reply *v; int n; } replies;
static bool all_done(void *arg) {
    replies *rs = arg;
    for (int i = 0; i < rs->n; i++)
        if (!rs->v[i].done) return false;
    return true;
}

static fixture *g_f;
static bool is_ready(void *arg) {
    fixture *f = arg;
    repl_info info;
    repl_get_info(f->r, &info);
    return info.ready;
}
static bool is_stopped(void *arg) { return ((fixture *)arg)->stopped; }
static void stopped_cb(void *ctx) { ((fixture *)ctx)->stopped = true; }

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
    close(s);
    return ntohs(a.sin_port);
}

static int start_node(fixture *f) {
    char err[512];
    qs_options o = {0, true};
    assert_int_equal(qs_open(f->db_dir, &o, &f->db, err, sizeof err), QS_OK);
    repl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    cfg.address = f->address;
    cfg.dir = f->raft_dir;
    cfg.peer_count = f->peer_count;
    cfg.peers = f->peers;
    cfg.election_timeout_ms = 300;
    cfg.heartbeat_timeout_ms = 50;
    cfg.snapshot_threshold = f->snapshot_threshold;
    cfg.snapshot_trailing = f->snapshot_trailing;
    cfg.entry_size_max_bytes = f->entry_size_max_bytes;
    f->stopped = false;
    int rc = repl_start(&f->loop, &cfg, f->db, &f->r, err, sizeof err);
    if (rc != 0) fprintf(stderr, "repl_start: %s\n", err);
    return rc;
}

static void stop_node(fixture *f) {
    repl_stop(f->r, stopped_cb, f);
    assert_true(run_until(f, is_stopped, f));
    f->r = NULL;
    qs_close(f->db);
    f->db = NULL;
}

static int setup_common(void **state, uint32_t peers) {
    fixture *f = calloc(1, sizeof *f);
    const char *base = getenv("QUIVER_TEST_TMP");
    if (base == NULL) base = "/tmp";
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", base);
    assert_int_equal(system(cmd), 0);
    snprintf(f->dir, sizeof f->dir, "%s/raft-single-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db_dir, sizeof f->db_dir, "%s/db", f->dir);
    snprintf(f->raft_dir, sizeof f->raft_dir, "%s/raft", f->dir);
    snprintf(f->address, sizeof f->address, "127.0.0.1:%d", free_port());
    f->peers[0].id = 1;
    snprintf(f->peers[0].address, sizeof f->peers[0].address, "%s", f->address);
    f->peers[1].id = 2; /* used only when peers == 2: a peer that never answers */
    snprintf(f->peers[1].address, sizeof f->peers[1].address, "127.0.0.1:%d", free_port());
    f->peer_count = peers;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->tick);
    uv_timer_start(&f->tick, tick_cb, 10, 10);
    *state = f;
    g_f = f;
    return 0;
}

static int setup(void **state) {
    setup_common(state, 1);
    fixture *f = *state;
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    return 0;
}

static int setup_snapshots(void **state) {
    setup_common(state, 1);
    fixture *f = *state;
    f->snapshot_threshold = 4;
    f->snapshot_trailing = 2;
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (f->r) stop_node(f);
    uv_close((uv_handle_t *)&f->tick, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static sm_command make_cmd(sm_request_id id, const char *text) {
    sm_command c;
    memset(&c, 0, sizeof c);
    c.kind = SM_CMD_QUERY;
    c.request_id = id;
    c.graph = (qv_str){"g", 1};
    c.text = (qv_str){text, (uint32_t)strlen(text)};
    return c;
}

static uint64_t node_count(fixture *f) {
    qs_view *v = qs_view_open_snapshot(f->db);
    uint32_t id;
    uint64_t n = 0;
    if (qs_graph_lookup(v, "g", 1, &id) == QS_OK) n = qs_node_count(v, id);
    qs_view_close(v);
    return n;
}

/* Propose n commands in ONE loop iteration and wait for all replies. */
static void propose_batch(fixture *f, reply *out, int n, sm_request_id *ids) {
    memset(out, 0, n * sizeof *out);
    for (int i = 0; i < n; i++) {
        sm_request_id id = ids ? ids[i] : repl_next_request_id(f->r);
        if (ids == NULL) (void)id;
        sm_command c = make_cmd(id, "CREATE");
        assert_int_equal(repl_propose(f->r, &c, reply_cb, &out[i]), 0);
        assert_false(out[i].done); /* never answered from inside repl_propose */
    }
    replies rs = {out, n};
    assert_true(run_until(f, all_done, &rs));
    for (int i = 0; i < n; i++) assert_int_equal(out[i].calls, 1);
}

/* ---- tests ---- */

static void test_info_single_leader(void **state) {
    fixture *f = *state;
    repl_info info;
    repl_get_info(f->r, &info);
    assert_string_equal(info.role, "leader");
    assert_int_equal(info.node_id, 1);
    assert_int_equal(info.leader_id, 1);
    assert_string_equal(info.leader_address, f->address);
    assert_true(info.current_term >= 1);
    assert_true(info.commit_index >= 2); /* bootstrap configuration + readiness barrier */
    assert_true(info.ready);
}

static void test_group_commit_and_order(void **state) {
    fixture *f = *state;
    enum { N = 50 };
    reply out[N];
    propose_batch(f, out, N, NULL);
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].status, REPL_OK);
        assert_int_equal(out[i].index, out[0].index); /* one loop iteration -> one entry */
        if (i > 0) assert_int_equal(out[i].cell, out[i - 1].cell + 1); /* applied in order */
    }
    /* separate iterations -> separate, increasing entries */
    uint64_t last = out[0].index;
    for (int k = 0; k < 5; k++) {
        reply one;
        propose_batch(f, &one, 1, NULL);
        assert_int_equal(one.status, REPL_OK);
        assert_true(one.index > last);
        last = one.index;
    }
    assert_int_equal(node_count(f), N + 5);
    repl_info info;
    repl_get_info(f->r, &info);
    assert_true(info.last_applied_index >= last);
    assert_true(info.commit_index >= last);
    assert_int_equal(repl_applied_index(f->r), info.last_applied_index);
}

static void test_restart_applies_nothing_twice(void **state) {
    fixture *f = *state;
    enum { N = 20 };
    reply out[N];
    sm_request_id ids[N];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < N / 4; i++) ids[round * (N / 4) + i] = repl_next_request_id(f->r);
        propose_batch(f, out + round * (N / 4), N / 4, ids + round * (N / 4));
    }
    for (int i = 0; i < N; i++) assert_int_equal(out[i].status, REPL_OK);
    uint64_t applied = repl_applied_index(f->r);
    assert_int_equal(node_count(f), N);
    stop_node(f);

    /* same directories: raft replays its whole log, the state machine skips it */
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    assert_true(repl_applied_index(f->r) >= applied);
    assert_int_equal(node_count(f), N);

    /* a retry of an old request id gets its first outcome, not a new node */
    reply again[2];
    sm_request_id retry[2] = {ids[3], repl_next_request_id(f->r)};
    propose_batch(f, again, 2, retry);
    assert_int_equal(again[0].status, REPL_OK);
    assert_int_equal(again[0].cell, out[3].cell);
    assert_int_equal(again[1].status, REPL_OK);
    assert_int_equal(node_count(f), N + 1);
    /* a new process picks a new request id origin */
    assert_true(retry[1].origin != ids[0].origin);

    /* and once more, after the new writes */
    stop_node(f);
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    assert_int_equal(node_count(f), N + 1);
}

static void test_snapshots_and_restore(void **state) {
    fixture *f = *state; /* threshold 4, trailing 2 */
    enum { ROUNDS = 30 };
    int64_t last_cell = -1;
    for (int i = 0; i < ROUNDS; i++) {
        reply one;
        propose_batch(f, &one, 1, NULL);
        assert_int_equal(one.status, REPL_OK);
        assert_true(one.cell > last_cell);
        last_cell = one.cell;
    }
    uint64_t applied = repl_applied_index(f->r);
    stop_node(f);
    /* snapshots were taken: raft's directory holds snapshot files */
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q '^snapshot-'", f->raft_dir);
    assert_int_equal(system(cmd), 0);
    /* restart restores the marker (checks uuid and index), replays the rest */
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    assert_true(repl_applied_index(f->r) >= applied);
    assert_int_equal(node_count(f), ROUNDS);
    reply one;
    propose_batch(f, &one, 1, NULL);
    assert_int_equal(one.status, REPL_OK);
    assert_int_equal(node_count(f), ROUNDS + 1);
}

/* True once raft's directory holds a snapshot file (snapshots are taken
 * asynchronously after the threshold, so tests wait for one). */
static bool has_snapshot(void *arg) {
    fixture *f = arg;
    DIR *d = opendir(f->raft_dir);
    if (d == NULL) return false;
    bool found = false;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) found = strncmp(e->d_name, "snapshot-", 9) == 0;
    closedir(d);
    return found;
}

static void test_foreign_database_refused(void **state) {
    fixture *f = *state; /* threshold 4 */
    for (int i = 0; i < 10; i++) {
        reply one;
        propose_batch(f, &one, 1, NULL);
        assert_int_equal(one.status, REPL_OK);
    }
    /* the refusal rests on the snapshot marker's uuid: wait for a marker */
    assert_true(run_until(f, has_snapshot, f));
    stop_node(f);
    /* pair the raft directory with a different (new) database */
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->db_dir);
    assert_int_equal(system(cmd), 0);
    assert_int_not_equal(start_node(f), 0); /* the snapshot marker's uuid differs */
    f->r = NULL;
    qs_close(f->db); /* allowed at once: the apply thread is stopped */
    f->db = NULL;
    /* raft's handles finish closing in teardown's final uv_run */
}

static void test_lost_raft_log_refused(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 3; i++) {
        reply one;
        propose_batch(f, &one, 1, NULL);
        assert_int_equal(one.status, REPL_OK);
    }
    stop_node(f);
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->raft_dir);
    assert_int_equal(system(cmd), 0);
    /* a fresh raft log would hand out indexes the database already applied */
    assert_int_not_equal(start_node(f), 0);
    f->r = NULL;
    qs_close(f->db);
    f->db = NULL;
}

/* A damaged raft log stops the start (auto-recovery is off) with a message
 * naming the directory, instead of silently dropping entries. */
static void test_corrupt_raft_log_refused(void **state) {
    fixture *f = *state;
    for (int i = 0; i < 5; i++) {
        reply one;
        propose_batch(f, &one, 1, NULL);
        assert_int_equal(one.status, REPL_OK);
    }
    stop_node(f);
    /* flip bytes in the middle of every segment file (closed ones are named
     * 0000...-0000..., open ones open-N) */
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "cd %s && for s in $(ls | grep -E '^(open-[0-9]+|[0-9]{16}-[0-9]{16})$'); do "
             "sz=$(stat -c %%s $s); [ $sz -gt 64 ] && printf '\377\377\377\377\377\377\377\377' | "
             "dd of=$s bs=1 seek=40 conv=notrunc status=none; done; true",
             f->raft_dir);
    assert_int_equal(system(cmd), 0);
    char err[512];
    qs_options o = {0, true};
    assert_int_equal(qs_open(f->db_dir, &o, &f->db, err, sizeof err), QS_OK);
    repl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.node_id = 1;
    cfg.address = f->address;
    cfg.dir = f->raft_dir;
    cfg.peer_count = 1;
    cfg.peers = f->peers;
    assert_int_not_equal(repl_start(&f->loop, &cfg, f->db, &f->r, err, sizeof err), 0);
    fprintf(stderr, "refused as expected: %s\n", err);
    assert_non_null(strstr(err, f->raft_dir));
    f->r = NULL;
    qs_close(f->db);
    f->db = NULL;
}

static void test_read_gate(void **state) {
    fixture *f = *state;
    reply w;
    propose_batch(f, &w, 1, NULL);
    assert_int_equal(w.status, REPL_OK);
    reply rd[3];
    memset(rd, 0, sizeof rd);
    for (int i = 0; i < 3; i++) assert_int_equal(repl_read_barrier(f->r, read_cb, &rd[i]), 0);
    replies rs = {rd, 3};
    assert_true(run_until(f, all_done, &rs));
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rd[i].status, REPL_OK);
        assert_int_equal(rd[i].calls, 1);
        assert_true(rd[i].index >= w.index); /* covers the acknowledged write */
        assert_true(repl_applied_index(f->r) >= rd[i].index);
    }
    reply wa;
    memset(&wa, 0, sizeof wa);
    assert_int_equal(repl_wait_applied(f->r, w.index, read_cb, &wa), 0);
    assert_false(wa.done);
    assert_true(run_until(f, reply_done, &wa));
    assert_int_equal(wa.status, REPL_OK);
}

/* More proposals in one loop iteration than REPL_ENTRIES_IN_FLIGHT_COUNT_MAX
 * full entries hold: the excess is refused with REPL_BUSY, the rest applies. */
static void test_busy_beyond_in_flight_bound(void **state) {
    fixture *f = *state;
    uint32_t n = (REPL_ENTRIES_IN_FLIGHT_COUNT_MAX + 1) * QUIVER_ENTRY_COMMANDS_COUNT_MAX + 3;
    reply *out = calloc(n, sizeof *out);
    for (uint32_t i = 0; i < n; i++) {
        sm_command c = make_cmd(repl_next_request_id(f->r), "NOOP");
        repl_propose(f->r, &c, reply_cb, &out[i]);
    }
    replies rs = {out, (int)n};
    uv_update_time(&f->loop);
    assert_true(run_until(f, all_done, &rs));
    uint32_t ok = 0, busy = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(out[i].calls, 1);
        if (out[i].status == REPL_OK) ok++;
        else if (out[i].status == REPL_BUSY) busy++;
    }
    assert_int_equal(ok + busy, n);
    assert_int_equal(ok, (REPL_ENTRIES_IN_FLIGHT_COUNT_MAX + 1) * QUIVER_ENTRY_COMMANDS_COUNT_MAX);
    assert_int_equal(busy, 3);
    assert_int_equal(out[n - 1].status, REPL_BUSY);
    free(out);
}

/* An entry larger than raft's segment size (8 MiB by default) still goes
 * through the libuv backend. */
static void test_large_entry(void **state) {
    fixture *f = *state;
    size_t len = 40u * 1024 * 1024;
    char *text = malloc(len + 1);
    memset(text, ' ', len);
    memcpy(text, "NOOP", 4);
    text[len] = 0;
    reply out[2];
    memset(out, 0, sizeof out);
    sm_command c = make_cmd(repl_next_request_id(f->r), "NOOP");
    c.text.ptr = text;
    c.text.len = (uint32_t)len;
    repl_propose(f->r, &c, reply_cb, &out[0]);
    free(text); /* repl_propose copied it */
    replies rs = {out, 1};
    assert_true(run_until(f, all_done, &rs));
    assert_int_equal(out[0].status, REPL_OK);
    propose_batch(f, &out[1], 1, NULL);
    assert_int_equal(out[1].status, REPL_OK);
    assert_int_equal(node_count(f), 1);
    /* and it survives a restart (replayed from the log) */
    stop_node(f);
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    assert_int_equal(node_count(f), 1);
}

/* --max-entry-bytes: a write that cannot fit in one entry is refused
 * before anything is proposed (REPL_INVALID, the error names the flag);
 * a write that fits still goes through, and so does the next one. */
static void test_entry_over_limit_refused(void **state) {
    fixture *f = *state;
    stop_node(f);
    f->entry_size_max_bytes = 4096;
    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    size_t len = 5000;
    char *text = malloc(len + 1);
    memset(text, ' ', len);
    memcpy(text, "CREATE", 6);
    text[len] = 0;
    reply out[2];
    memset(out, 0, sizeof out);
    sm_command c = make_cmd(repl_next_request_id(f->r), "CREATE");
    c.text.ptr = text;
    c.text.len = (uint32_t)len;
    repl_propose(f->r, &c, reply_cb, &out[0]);
    c = make_cmd(repl_next_request_id(f->r), "CREATE");
    repl_propose(f->r, &c, reply_cb, &out[1]);
    free(text);
    replies rs = {out, 2};
    assert_true(run_until(f, all_done, &rs));
    assert_int_equal(out[0].status, REPL_INVALID);
    assert_non_null(strstr(out[0].error, "--max-entry-bytes"));
    assert_int_equal(out[1].status, REPL_OK);
    assert_int_equal(node_count(f), 1);
}

static void test_invalid_command(void **state) {
    fixture *f = *state;
    reply out;
    memset(&out, 0, sizeof out);
    sm_command c = make_cmd((sm_request_id){0, 0}, "CREATE"); /* id 0 is invalid */
    repl_propose(f->r, &c, reply_cb, &out);
    assert_false(out.done);
    assert_true(run_until(f, reply_done, &out));
    assert_int_equal(out.status, REPL_INVALID);
    assert_int_equal(node_count(f), 0);
}

static void test_stop_answers_every_proposal_once(void **state) {
    fixture *f = *state;
    enum { N = 30 };
    reply out[N];
    memset(out, 0, sizeof out);
    /* some proposed and in flight, the rest proposed after repl_stop */
    for (int i = 0; i < N / 2; i++) {
        sm_command c = make_cmd(repl_next_request_id(f->r), "CREATE");
        repl_propose(f->r, &c, reply_cb, &out[i]);
    }
    uv_run(&f->loop, UV_RUN_NOWAIT); /* the check callback proposes them */
    repl_stop(f->r, stopped_cb, f);
    for (int i = N / 2; i < N; i++) {
        sm_command c = make_cmd((sm_request_id){99, (uint64_t)i + 1}, "CREATE");
        repl_propose(f->r, &c, reply_cb, &out[i]);
    }
    assert_true(run_until(f, is_stopped, f));
    f->r = NULL;
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].calls, 1);
        if (i < N / 2)
            assert_true(out[i].status == REPL_OK || out[i].status == REPL_UNKNOWN_OUTCOME);
        else
            assert_int_equal(out[i].status, REPL_SHUTTING_DOWN);
        if (out[i].status == REPL_UNKNOWN_OUTCOME)
            assert_non_null(strstr(out[i].error, "retry with the same request id is safe"));
    }
    qs_close(f->db);
    f->db = NULL;
}

static int setup_no_quorum(void **state) {
    setup_common(state, 2); /* node 2 never runs: no leader can be elected */
    fixture *f = *state;
    assert_int_equal(start_node(f), 0);
    return 0;
}

static void test_no_quorum_refuses_writes(void **state) {
    fixture *f = *state;
    reply out, rd;
    memset(&out, 0, sizeof out);
    memset(&rd, 0, sizeof rd);
    sm_command c = make_cmd(repl_next_request_id(f->r), "CREATE");
    repl_propose(f->r, &c, reply_cb, &out);
    repl_read_barrier(f->r, read_cb, &rd);
    assert_true(run_until(f, reply_done, &out));
    assert_true(run_until(f, reply_done, &rd));
    assert_int_equal(out.status, REPL_NOT_LEADER);
    assert_non_null(strstr(out.error, "not the leader"));
    assert_int_equal(rd.status, REPL_NOT_LEADER);
    repl_info info;
    repl_get_info(f->r, &info);
    assert_false(info.ready);
    assert_int_equal(info.leader_id, 0);
    assert_true(strcmp(info.role, "follower") == 0 || strcmp(info.role, "candidate") == 0);
}

/* kill -9 after acknowledged writes, with snapshots taken along the way:
 * state-machine writes skip RocksDB's WAL, so only the flush before each
 * snapshot marker and raft's replay keep acknowledged writes.  The child
 * process writes and dies without closing anything; the parent restarts
 * from the same directories and must find every acknowledged write, once. */
static int setup_crash(void **state) {
    setup_common(state, 1);
    fixture *f = *state;
    f->snapshot_threshold = 4;
    f->snapshot_trailing = 2;
    return 0;
}

static void test_kill9_keeps_every_acknowledged_write(void **state) {
    fixture *f = *state;
    enum { N = 40 };
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        /* cmocka's handlers would resume the test run in this child */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGILL, SIG_DFL);
        signal(SIGFPE, SIG_DFL);
        fixture child = *f;
        memset(&child.loop, 0, sizeof child.loop); /* a fresh loop, initialised in place */
        if (uv_loop_init(&child.loop) != 0) _exit(2);
        uv_timer_init(&child.loop, &child.tick);
        uv_timer_start(&child.tick, tick_cb, 10, 10);
        if (start_node(&child) != 0 || !run_until(&child, is_ready, &child)) _exit(3);
        uint32_t acked = 0;
        for (int i = 0; i < N; i++) {
            reply one;
            memset(&one, 0, sizeof one);
            sm_command c = make_cmd(repl_next_request_id(child.r), "CREATE");
            repl_propose(child.r, &c, reply_cb, &one);
            if (!run_until(&child, reply_done, &one) || one.status != REPL_OK) _exit(4);
            acked++;
        }
        if (write(fds[1], &acked, sizeof acked) != sizeof acked) _exit(5);
        kill(getpid(), SIGKILL); /* no close, no flush */
        _exit(6);
    }
    close(fds[1]);
    uint32_t acked = 0;
    assert_int_equal(read(fds[0], &acked, sizeof acked), sizeof acked);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(acked, N);
    /* snapshots were taken before the crash */
    char cmd[800];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q '^snapshot-'", f->raft_dir);
    assert_int_equal(system(cmd), 0);

    assert_int_equal(start_node(f), 0);
    assert_true(run_until(f, is_ready, f));
    assert_int_equal(node_count(f), N);
    reply one;
    propose_batch(f, &one, 1, NULL);
    assert_int_equal(one.status, REPL_OK);
    assert_int_equal(node_count(f), N + 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        /* first: fork() before this process has other threads */
        cmocka_unit_test_setup_teardown(test_kill9_keeps_every_acknowledged_write, setup_crash, teardown),
        cmocka_unit_test_setup_teardown(test_info_single_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart_applies_nothing_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshots_and_restore, setup_snapshots, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_database_refused, setup_snapshots, teardown),
        cmocka_unit_test_setup_teardown(test_lost_raft_log_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_raft_log_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_gate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_command, setup, teardown),
        cmocka_unit_test_setup_teardown(test_entry_over_limit_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_beyond_in_flight_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_answers_every_proposal_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_quorum_refuses_writes, setup_no_quorum, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

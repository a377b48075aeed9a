/*
 * test_statemachine_apply.c -- the apply thread (statemachine.c) on a real
 * RocksDB store: order of results, replay after a restart applies nothing
 * twice, de-duplication returns the first outcome (also after a restart and
 * within one entry), a failing command rolls back only itself, a malformed
 * entry advances the applied index with one error, GRAPH.DELETE, the bounded
 * de-dup table evicts the oldest id, and a full queue applies back-pressure
 * without deadlock.
 *
 * The query engine is replaced by a stand-in (query_run_write below) with
 * three statements, so that these tests pin the state machine's behaviour
 * whatever the executor does:
 *     "CREATE"  create one node; result row: the node id
 *     "FAIL"    create one node, then fail (QUERY_ERR_RUNTIME)
 *     "NOOP"    nothing; empty result
 * test_statemachine_queries.c runs the same path with the real engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <time.h>

#include "common/limits.h"
#include "statemachine/command.h"
#include "statemachine/result_codec.h"
#include "statemachine/statemachine.h"

/* ---- stand-in query engine ---- */

/* The budgets the last statement ran with (what the entry carried). */
static uint64_t seen_work_max, seen_memory_max_bytes;

query_result *query_run_write(qs_txn *txn, const query_request *req) {
    seen_work_max = req->work_max;
    seen_memory_max_bytes = req->memory_max_bytes;
    uint32_t graph;
    int rc = qs_graph_create(txn, req->graph, req->graph_len, &graph);
    assert_true(rc == QS_OK || rc == QS_EXISTS);
    bool create = req->text_len == 6 && memcmp(req->text, "CREATE", 6) == 0;
    bool fail = req->text_len == 4 && memcmp(req->text, "FAIL", 4) == 0;
    if (req->text_len == 3 && memcmp(req->text, "BIG", 3) == 0) {
        /* a result larger than the de-dup table keeps whole */
        query_result *r = sm_result_empty(true);
        r->stats.nodes_created = 9;
        uint32_t len = 2 * SM_DEDUP_OUTCOME_SIZE_MAX_BYTES;
        char *big = q_arena_alloc(&r->arena, len);
        memset(big, 'x', len);
        r->column_count = 1;
        r->columns = q_arena_calloc(&r->arena, 1, sizeof(qv_str));
        r->columns[0] = (qv_str){"s", 1};
        r->row_count = 1;
        r->cells = q_arena_calloc(&r->arena, 1, sizeof(qv_value));
        r->cells[0] = qv_string(big, len);
        return r;
    }
    if (!create && !fail) return sm_result_empty(false);
    uint64_t node_id;
    assert_int_equal(qs_node_create(txn, graph, NULL, 0, NULL, &node_id), QS_OK);
    if (fail) return sm_result_error(QUERY_ERR_RUNTIME, "stand-in failure after a write");
    query_result *r = sm_result_empty(true);
    r->stats.nodes_created = 1;
    r->column_count = 1;
    r->columns = q_arena_calloc(&r->arena, 1, sizeof(qv_str));
    r->columns[0] = (qv_str){"id", 2};
    r->row_count = 1;
    r->cells = q_arena_calloc(&r->arena, 1, sizeof(qv_value));
    r->cells[0] = qv_int((int64_t)node_id);
    /* timestamp and seed travel to the engine unchanged */
    r->stats.execution_time_ms = (double)req->timestamp_ms;
    return r;
}

void query_result_free(query_result *r) {
    if (r == NULL) return;
    q_arena_free(&r->arena);
    free(r);
}

/* ---- harness ---- */

typedef struct got {
    sm_request_id id;
    uint64_t index;
    query_status status;
    char error[256];
    int64_t cell; /* first cell if an integer, else -1 */
} got;

typedef struct fixture {
    char dir[512];
    pthread_mutex_t mu; /* the wake-up: the apply thread signals, the test thread delivers */
    pthread_cond_t cond;
    uint64_t wakes;
    qs_db *db;
    sm *s;
    got *got;
    uint32_t got_count, got_cap;
} fixture;

static void on_result(void *ctx, sm_request_id id, uint64_t index, query_result *r) {
    fixture *f = ctx;
    assert_non_null(r);
    if (f->got_count == f->got_cap) {
        f->got_cap = f->got_cap ? f->got_cap * 2 : 64;
        f->got = realloc(f->got, f->got_cap * sizeof *f->got);
    }
    got *g = &f->got[f->got_count++];
    memset(g, 0, sizeof *g);
    g->id = id;
    g->index = index;
    g->status = r->status;
    if (r->error) snprintf(g->error, sizeof g->error, "%s", r->error);
    g->cell = (r->row_count == 1 && r->column_count == 1 && r->cells[0].type == QV_INT) ? r->cells[0].u.i : -1;
    query_result_free(r);
}

/* Called from the apply thread. */
static void wake(void *ctx) {
    fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    f->wakes++;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->mu);
}

static void open_all(fixture *f) {
    char err[512];
    qs_options o = {0, true};
    assert_int_equal(qs_open(f->dir, &o, &f->db, err, sizeof err), QS_OK);
    assert_int_equal(sm_open(f->db, wake, f, on_result, f, &f->s, err, sizeof err), 0);
}

static void close_all(fixture *f) {
    sm_close(f->s);
    qs_close(f->db);
    f->s = NULL;
    f->db = NULL;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    const char *base = getenv("QUIVER_TEST_TMP");
    if (base == NULL) base = "/tmp";
    char cmd[600];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", base);
    assert_int_equal(system(cmd), 0);
    snprintf(f->dir, sizeof f->dir, "%s/sm-apply-XXXXXX", base);
    assert_non_null(mkdtemp(f->dir));
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cond, NULL);
    open_all(f);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (f->s) close_all(f);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cond);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f->got);
    free(f);
    return 0;
}

/* Deliver results until n arrived or 30 s passed (a hang guard, not a
 * timing assertion): wait for a wake-up, then deliver on this thread, the
 * way raft/ does it on the loop thread. */
static void wait_results(fixture *f, uint32_t n) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    for (;;) {
        pthread_mutex_lock(&f->mu);
        uint64_t seen = f->wakes;
        pthread_mutex_unlock(&f->mu);
        sm_deliver(f->s);
        if (f->got_count >= n) break;
        pthread_mutex_lock(&f->mu);
        int rc = 0;
        while (f->wakes == seen && rc == 0) rc = pthread_cond_timedwait(&f->cond, &f->mu, &deadline);
        pthread_mutex_unlock(&f->mu);
        if (rc != 0) break;
    }
    assert_int_equal(f->got_count, n);
}

static sm_command cmd(uint64_t origin, uint64_t seq, const char *graph, const char *text) {
    sm_command c;
    memset(&c, 0, sizeof c);
    c.kind = SM_CMD_QUERY;
    c.request_id = (sm_request_id){origin, seq};
    c.timestamp_ms = 1700000000000LL;
    c.seed = 42;
    c.graph = (qv_str){graph, (uint32_t)strlen(graph)};
    c.text = (qv_str){text, (uint32_t)strlen(text)};
    return c;
}

static void enqueue(fixture *f, uint64_t index, const sm_command *cmds, uint32_t n) {
    uint8_t *buf;
    size_t len;
    assert_int_equal(sm_entry_encode(cmds, n, &buf, &len), SM_CODEC_OK);
    sm_enqueue(f->s, index, buf, len);
    free(buf); /* sm_enqueue copied it */
}

static uint64_t node_count(fixture *f, const char *graph) {
    qs_view *v = qs_view_open_snapshot(f->db);
    uint32_t id;
    uint64_t n = 0;
    if (qs_graph_lookup(v, graph, strlen(graph), &id) == QS_OK) n = qs_node_count(v, id);
    qs_view_close(v);
    return n;
}

/* ---- tests ---- */

static void test_results_in_log_order(void **state) {
    fixture *f = *state;
    sm_command a[3] = {cmd(1, 1, "g", "CREATE"), cmd(1, 2, "g", "CREATE"), cmd(1, 3, "g", "NOOP")};
    enqueue(f, 2, a, 2);     /* gaps in indexes are normal (barriers, config) */
    enqueue(f, 5, a + 2, 1);
    enqueue(f, 6, (sm_command[]){cmd(1, 4, "g", "CREATE")}, 1);
    wait_results(f, 4);
    assert_int_equal(f->got[0].index, 2);
    assert_int_equal(f->got[0].id.seq, 1);
    assert_int_equal(f->got[1].index, 2);
    assert_int_equal(f->got[1].id.seq, 2);
    assert_int_equal(f->got[2].index, 5);
    assert_int_equal(f->got[3].index, 6);
    for (int i = 0; i < 4; i++) assert_int_equal(f->got[i].status, QUERY_OK);
    assert_true(f->got[0].cell != f->got[1].cell);
    assert_int_equal(sm_applied_index(f->s), 6);
    assert_int_equal(qs_applied_index(f->db), 6);
    assert_int_equal(node_count(f, "g"), 3);
    assert_int_equal(sm_dedup_count(f->s), 4);
}

static void test_replay_after_restart_applies_nothing_twice(void **state) {
    fixture *f = *state;
    enqueue(f, 1, (sm_command[]){cmd(2, 1, "g", "CREATE")}, 1);
    enqueue(f, 2, (sm_command[]){cmd(2, 2, "g", "CREATE"), cmd(2, 3, "g", "CREATE")}, 2);
    wait_results(f, 3);
    sm_sync(f->s, 2);
    close_all(f);
    open_all(f);
    assert_int_equal(sm_applied_index(f->s), 2);
    /* raft replays its log from the start: the first two entries are skipped */
    enqueue(f, 1, (sm_command[]){cmd(2, 1, "g", "CREATE")}, 1);
    enqueue(f, 2, (sm_command[]){cmd(2, 2, "g", "CREATE"), cmd(2, 3, "g", "CREATE")}, 2);
    enqueue(f, 3, (sm_command[]){cmd(2, 4, "g", "CREATE")}, 1);
    wait_results(f, 4); /* only the new entry's result */
    assert_int_equal(f->got[3].index, 3);
    assert_int_equal(f->got[3].id.seq, 4);
    assert_int_equal(node_count(f, "g"), 4);
    assert_int_equal(qs_applied_index(f->db), 3);
}

static void test_dedup_returns_first_outcome(void **state) {
    fixture *f = *state;
    enqueue(f, 1, (sm_command[]){cmd(3, 1, "g", "CREATE")}, 1);
    wait_results(f, 1);
    int64_t first = f->got[0].cell;
    /* a retry in a later entry, and twice within one entry */
    enqueue(f, 2, (sm_command[]){cmd(3, 1, "g", "CREATE")}, 1);
    enqueue(f, 3, (sm_command[]){cmd(3, 2, "g", "CREATE"), cmd(3, 2, "g", "CREATE")}, 2);
    wait_results(f, 4);
    assert_int_equal(f->got[1].cell, first);
    assert_int_equal(f->got[1].index, 2); /* delivered under the retry's entry */
    assert_int_equal(f->got[3].cell, f->got[2].cell);
    assert_int_equal(node_count(f, "g"), 2);
    assert_int_equal(qs_applied_index(f->db), 3); /* the index still advanced */
    /* a failed outcome is remembered too, and survives a restart */
    enqueue(f, 4, (sm_command[]){cmd(3, 3, "g", "FAIL")}, 1);
    wait_results(f, 5);
    assert_int_equal(f->got[4].status, QUERY_ERR_RUNTIME);
    close_all(f);
    open_all(f);
    assert_int_equal(sm_dedup_count(f->s), 3);
    enqueue(f, 5, (sm_command[]){cmd(3, 1, "g", "CREATE"), cmd(3, 3, "g", "FAIL")}, 2);
    wait_results(f, 7);
    assert_int_equal(f->got[5].cell, first);
    assert_int_equal(f->got[6].status, QUERY_ERR_RUNTIME);
    assert_string_equal(f->got[6].error, "stand-in failure after a write");
    assert_int_equal(node_count(f, "g"), 2);
}

/* A request id is bound to its statement (DESIGN.md 3): the same id with
 * another text, or another graph, is refused and changes nothing -- never
 * answered with the first outcome -- and stays bound to the first one. */
static void test_dedup_id_bound_to_statement(void **state) {
    fixture *f = *state;
    enqueue(f, 1, (sm_command[]){cmd(5, 1, "g", "CREATE")}, 1);
    wait_results(f, 1);
    assert_int_equal(f->got[0].status, QUERY_OK);
    int64_t first = f->got[0].cell;
    enqueue(f, 2, (sm_command[]){cmd(5, 1, "g", "NOOP"), cmd(5, 1, "h", "CREATE")}, 2);
    wait_results(f, 3);
    for (int i = 1; i <= 2; i++) {
        assert_int_equal(f->got[i].status, QUERY_ERR_RUNTIME);
        assert_non_null(strstr(f->got[i].error, "ERR request id 5:1 was already used for a different statement"));
    }
    assert_int_equal(node_count(f, "g"), 1);
    close_all(f);
    open_all(f);
    /* still bound to the first statement after a restart */
    enqueue(f, 3, (sm_command[]){cmd(5, 1, "g", "CREATE"), cmd(5, 1, "g", "CREATE ")}, 2);
    wait_results(f, 5);
    assert_int_equal(f->got[3].cell, first);
    assert_int_equal(f->got[4].status, QUERY_ERR_RUNTIME);
    assert_int_equal(node_count(f, "g"), 1);
}

/* The budgets the leader put into a command reach the engine on every
 * replica (command.h version 2), whatever the replica's own flags. */
static void test_budgets_travel_in_the_entry(void **state) {
    fixture *f = *state;
    sm_command c = cmd(6, 1, "g", "NOOP");
    c.work_max = 123456;
    c.memory_max_bytes = 7u << 20;
    enqueue(f, 1, &c, 1);
    wait_results(f, 1);
    assert_int_equal(seen_work_max, 123456);
    assert_int_equal(seen_memory_max_bytes, 7u << 20);
}

static void test_failed_command_rolls_back_only_itself(void **state) {
    fixture *f = *state;
    sm_command e[3] = {cmd(4, 1, "g", "CREATE"), cmd(4, 2, "g", "FAIL"), cmd(4, 3, "g", "CREATE")};
    enqueue(f, 7, e, 3);
    wait_results(f, 3);
    assert_int_equal(f->got[0].status, QUERY_OK);
    assert_int_equal(f->got[1].status, QUERY_ERR_RUNTIME);
    assert_int_equal(f->got[2].status, QUERY_OK);
    assert_int_equal(node_count(f, "g"), 2);
    /* the failed command's node id allocation was rolled back as well */
    assert_int_equal(f->got[2].cell, f->got[0].cell + 1);
    assert_int_equal(qs_applied_index(f->db), 7);
}

static void test_malformed_entry(void **state) {
    fixture *f = *state;
    uint8_t junk[40];
    memset(junk, 0xab, sizeof junk);
    sm_enqueue(f->s, 3, junk, sizeof junk);
    wait_results(f, 1);
    assert_int_equal(f->got[0].id.origin, 0);
    assert_int_equal(f->got[0].id.seq, 0);
    assert_int_equal(f->got[0].index, 3);
    assert_int_not_equal(f->got[0].status, QUERY_OK);
    assert_non_null(strstr(f->got[0].error, "does not decode"));
    assert_int_equal(qs_applied_index(f->db), 3);
    enqueue(f, 4, (sm_command[]){cmd(5, 1, "g", "CREATE")}, 1);
    wait_results(f, 2);
    assert_int_equal(f->got[1].status, QUERY_OK);
}

static void test_graph_delete(void **state) {
    fixture *f = *state;
    sm_command del = cmd(6, 1, "g", "");
    del.kind = SM_CMD_GRAPH_DELETE;
    enqueue(f, 1, &del, 1);
    wait_results(f, 1);
    assert_int_equal(f->got[0].status, QUERY_ERR_NO_GRAPH);
    assert_string_equal(f->got[0].error, "Invalid graph operation on empty key");
    enqueue(f, 2, (sm_command[]){cmd(6, 2, "g", "CREATE")}, 1);
    del.request_id.seq = 3;
    enqueue(f, 3, &del, 1);
    wait_results(f, 3);
    assert_int_equal(f->got[2].status, QUERY_OK);
    qs_view *v = qs_view_open_snapshot(f->db);
    uint32_t id;
    assert_int_equal(qs_graph_lookup(v, "g", 1, &id), QS_NOT_FOUND);
    qs_view_close(v);
}

static void test_dedup_table_bounded_oldest_evicted(void **state) {
    fixture *f = *state;
    uint32_t total = QUIVER_DEDUP_TABLE_COUNT_MAX + 1;
    sm_command *many = malloc(QUIVER_ENTRY_COMMANDS_COUNT_MAX * sizeof *many);
    uint64_t index = 0;
    for (uint32_t done = 0; done < total;) {
        uint32_t n = total - done < QUIVER_ENTRY_COMMANDS_COUNT_MAX ? total - done : QUIVER_ENTRY_COMMANDS_COUNT_MAX;
        for (uint32_t i = 0; i < n; i++) many[i] = cmd(7, done + i + 1, "g", "NOOP");
        enqueue(f, ++index, many, n);
        done += n;
    }
    free(many);
    wait_results(f, total);
    assert_int_equal(sm_dedup_count(f->s), QUIVER_DEDUP_TABLE_COUNT_MAX);
    close_all(f);
    open_all(f);
    assert_int_equal(sm_dedup_count(f->s), QUIVER_DEDUP_TABLE_COUNT_MAX);
    /* id 2 is still known (its first outcome: NOOP's empty result); id 1
     * was evicted, so it applies again (and evicts id 2, now the oldest) */
    enqueue(f, ++index, (sm_command[]){cmd(7, 2, "g", "NOOP"), cmd(7, 1, "g", "CREATE")}, 2);
    wait_results(f, total + 2);
    assert_int_equal(f->got[total].status, QUERY_OK);
    assert_int_equal(f->got[total].cell, -1);
    assert_true(f->got[total + 1].cell >= 0); /* ran: a node id */
    assert_int_equal(node_count(f, "g"), 1);
    assert_int_equal(sm_dedup_count(f->s), QUIVER_DEDUP_TABLE_COUNT_MAX);
}

static void test_dedup_outcome_too_big(void **state) {
    fixture *f = *state;
    enqueue(f, 1, (sm_command[]){cmd(9, 1, "g", "BIG")}, 1);
    wait_results(f, 1);
    assert_int_equal(f->got[0].status, QUERY_OK); /* the first answer is whole */
    enqueue(f, 2, (sm_command[]){cmd(9, 1, "g", "BIG")}, 1);
    wait_results(f, 2);
    /* the retry is not applied again, and says why it has no rows */
    assert_int_equal(f->got[1].status, QUERY_ERR_LIMIT);
    assert_non_null(strstr(f->got[1].error, "already applied (log index 1)"));
    assert_non_null(strstr(f->got[1].error, "too large"));
}

static void test_full_queue_backpressure(void **state) {
    fixture *f = *state;
    /* Without running the loop, enqueue more entries than the ring holds:
     * sm_enqueue must deliver finished results itself instead of deadlocking. */
    uint32_t n = QUIVER_APPLY_QUEUE_COUNT_MAX + 50;
    for (uint32_t i = 0; i < n; i++) enqueue(f, i + 1, (sm_command[]){cmd(8, i + 1, "g", "NOOP")}, 1);
    assert_true(f->got_count >= 50);
    wait_results(f, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(f->got[i].index, i + 1);
        assert_int_equal(f->got[i].id.seq, i + 1);
    }
    sm_sync(f->s, n + 10); /* past the last entry: waits for the last one, flushes */
    assert_int_equal(qs_applied_index(f->db), n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_results_in_log_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_after_restart_applies_nothing_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_returns_first_outcome, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_id_bound_to_statement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budgets_travel_in_the_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_command_rolls_back_only_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graph_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_table_bounded_oldest_evicted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_outcome_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_backpressure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

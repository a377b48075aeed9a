/*
 * test_cli_import_retry.c -- `quiver import`'s retries (import.h, "Clusters
 * and retries") against two in-process fake nodes sharing one fake state
 * machine with a de-dup table keyed by QUIVER.REQUESTID, plus the pure
 * helpers import_classify_error and import_parse_nodes.
 *
 * The fake state machine applies a batch (hands out node ids 0, 1, ... in
 * order of application) and remembers the reply per request id; a batch
 * arriving again with an id it knows gets the remembered reply and is NOT
 * applied again, as the real state machine does.  Faults are keyed by the
 * arrival number of GRAPH.QUERY batches (1-based): apply then answer
 * "outcome unknown", apply then drop the connection, answer "no leader ...
 * not applied" or "busy" without applying.  The tests check that every
 * batch is applied exactly once, that the relationship batches use the ids
 * of the first application, what the import prints, and its exit status.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "cli/buf.h"
#include "cli/import.h"
#include "test_cli_fake_server.h"

/* ------------------------------------------------------------------ */
/* The fake state machine (shared by both fake nodes)                  */
/* ------------------------------------------------------------------ */

#define SEQ_MAX 256
#define ARRIVALS_MAX 256

enum fault { F_NONE, F_UNKNOWN_AFTER_APPLY, F_CLOSE_AFTER_APPLY, F_STALL_AFTER_APPLY, F_NO_LEADER, F_BUSY };

static struct {
    bool no_request_id;            /* answer QUIVER.REQUESTID with "unknown command" */
    enum fault fault[ARRIVALS_MAX]; /* by arrival number */
    enum fault fault_from;          /* for every arrival >= fault_from_arrival */
    int fault_from_arrival;
    int arrivals;                  /* GRAPH.QUERY batches received */
    uint64_t pending_seq;          /* set by QUIVER.REQUESTID, taken by the next batch */
    uint64_t origin;
    char *stored[SEQ_MAX];         /* de-dup table: seq -> first reply */
    int applied_by_seq[SEQ_MAX];
    int applied;                   /* batches applied */
    long long next_id;
    long long nodes_created, rels_created;
    char *applied_text[ARRIVALS_MAX]; /* batches in order of application */
    int request_ids_seen;
    cli_buf out;
} sm;

static void sm_reset(void) {
    for (int i = 0; i < SEQ_MAX; i++) free(sm.stored[i]);
    for (int i = 0; i < ARRIVALS_MAX; i++) free(sm.applied_text[i]);
    cli_buf_free(&sm.out);
    memset(&sm, 0, sizeof sm);
}

/* Apply a batch: the reply a real node would give. */
static char *apply(const char *q) {
    cli_buf b = CLI_BUF_INIT;
    long rows = count_rows(q);
    if (sm.applied < ARRIVALS_MAX) sm.applied_text[sm.applied] = strdup(q);
    sm.applied++;
    if (strstr(q, "CREATE (n") != NULL) {
        cli_buf_printf(&b, "*3\r\n*1\r\n");
        bulk(&b, "id(n)");
        cli_buf_printf(&b, "*%ld\r\n", rows);
        for (long i = 0; i < rows; i++) cli_buf_printf(&b, "*1\r\n:%lld\r\n", sm.next_id++);
        cli_buf_puts(&b, "*1\r\n");
        char line[64];
        snprintf(line, sizeof line, "Nodes created: %ld", rows);
        bulk(&b, line);
        sm.nodes_created += rows;
    } else {
        char line[64];
        snprintf(line, sizeof line, "Relationships created: %ld", rows);
        cli_buf_puts(&b, "*1\r\n*1\r\n");
        bulk(&b, line);
        sm.rels_created += rows;
    }
    return cli_buf_take(&b);
}

static const char *answer(const char *text) {
    cli_buf_clear(&sm.out);
    cli_buf_puts(&sm.out, text);
    return sm.out.data;
}

static const char *sm_canned(fake *f, const redisReply *r) {
    (void)f;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) return NULL;
    const char *cmd = r->element[0]->str;
    if (strcasecmp(cmd, "QUIVER.REQUESTID") == 0) {
        if (sm.no_request_id)
            return answer("-ERR unknown command 'QUIVER.REQUESTID', with args beginning with: \r\n");
        assert_int_equal(r->elements, 3);
        uint64_t origin = strtoull(r->element[1]->str, NULL, 10);
        uint64_t seq = strtoull(r->element[2]->str, NULL, 10);
        assert_true(origin != 0 && seq != 0 && seq < SEQ_MAX);
        if (sm.origin == 0) sm.origin = origin;
        assert_true(sm.origin == origin); /* one origin per run */
        sm.pending_seq = seq;
        sm.request_ids_seen++;
        return answer("+OK\r\n");
    }
    if (strcasecmp(cmd, "GRAPH.QUERY") != 0 || r->elements != 3) return NULL;
    const char *q = r->element[2]->str;
    if (strcmp(q, "MATCH (n) RETURN count(n)") == 0) return NULL; /* the default: an empty graph */
    uint64_t seq = sm.pending_seq;
    sm.pending_seq = 0;
    int arrival = ++sm.arrivals;
    enum fault fault = arrival < ARRIVALS_MAX ? sm.fault[arrival] : F_NONE;
    if (sm.fault_from_arrival > 0 && arrival >= sm.fault_from_arrival) fault = sm.fault_from;
    if (fault == F_NO_LEADER)
        return answer("-ERR no leader available within 1000 ms (election in progress?); the write was not applied\r\n");
    if (fault == F_BUSY) return answer("-ERR busy: too many requests waiting for the leader, retry\r\n");
    char *reply;
    if (seq != 0 && sm.stored[seq] != NULL) {
        reply = strdup(sm.stored[seq]); /* a retry: the first outcome, not applied again */
    } else {
        reply = apply(q);
        if (seq != 0) {
            sm.stored[seq] = strdup(reply);
            sm.applied_by_seq[seq]++;
        }
    }
    const char *out;
    if (fault == F_UNKNOWN_AFTER_APPLY)
        out = answer("-ERR outcome unknown: leadership changed or the leader became unreachable after the write "
                     "was proposed or sent, and no leader confirmed its outcome within 1000 ms; it may or may not "
                     "have been applied\r\n");
    else if (fault == F_CLOSE_AFTER_APPLY)
        out = FAKE_CLOSE;
    else if (fault == F_STALL_AFTER_APPLY) {
        /* A hung node: no answer for longer than the client's reply
         * timeout (1 s); then the connection is dropped. */
        struct timespec ts = {1, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        out = FAKE_CLOSE;
    }
    else
        out = answer(reply);
    free(reply);
    return out;
}

/* ------------------------------------------------------------------ */
/* Data and helpers                                                    */
/* ------------------------------------------------------------------ */

static char tmpdir[256];

static void write_file(const char *name, const char *text) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state) {
    (void)state;
    const char *base = getenv("QUIVER_TEST_TMP");
    if (base == NULL || base[0] == '\0' || strlen(base) > 200) base = "/tmp";
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base);
    assert_int_equal(system(cmd), 0);
    snprintf(tmpdir, sizeof tmpdir, "%s/quiver-test-import-retry-XXXXXX", base);
    assert_non_null(mkdtemp(tmpdir));
    write_file("nodes_p.csv", "id:ID,name,:LABEL\np1,a,P\np2,b,P\np3,c,P\np4,d,P\np5,e,P\np6,f,P\n");
    write_file("edges_k.csv", ":START_ID,:END_ID,:TYPE\np1,p2,K\np2,p3,K\np3,p4,K\np5,p6,K\np6,p1,K\n");
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    sm_reset();
    return system(cmd) == 0 ? 0 : -1;
}

typedef struct run {
    fake *a, *b;
    char nodes[128];
    import_options o;
    char *out, *err;
    size_t out_len, err_len;
    int rc;
} run;

/* Two fake nodes; the import gets both in --nodes (a first), batches of
 * one row, two in flight. */
static void start(run *t) {
    memset(t, 0, sizeof *t);
    t->a = fake_start();
    t->b = fake_start();
    t->a->canned = sm_canned;
    t->b->canned = sm_canned;
    fake_run(t->a);
    fake_run(t->b);
    snprintf(t->nodes, sizeof t->nodes, "127.0.0.1:%d,127.0.0.1:%d", t->a->port, t->b->port);
    import_options_default(&t->o);
    t->o.nodes = t->nodes;
    t->o.graph = "t";
    t->o.dir = tmpdir;
    t->o.batch_rows = 1;
    t->o.in_flight = 2;
    t->o.retry_timeout_s = 5;
    t->o.progress = 0;
}

static void finish(run *t) {
    FILE *fo = open_memstream(&t->out, &t->out_len);
    FILE *fe = open_memstream(&t->err, &t->err_len);
    t->o.out = fo;
    t->o.err = fe;
    t->rc = import_run(&t->o);
    fclose(fo);
    fclose(fe);
    fake_stop(t->a);
    fake_stop(t->b);
}

static void release(run *t) {
    free(t->out);
    free(t->err);
}

static void expect(const char *text, const char *part) {
    if (strstr(text, part) == NULL) fail_msg("missing '%s' in:\n%s", part, text);
}

/* Every batch (6 node rows, 5 relationship rows, one per batch) applied
 * exactly once, by request id. */
static void expect_each_batch_once(void) {
    assert_int_equal(sm.nodes_created, 6);
    assert_int_equal(sm.rels_created, 5);
    assert_int_equal(sm.applied, 11);
    for (int s = 1; s <= 11; s++)
        if (sm.applied_by_seq[s] != 1) fail_msg("batch %d applied %d times", s, sm.applied_by_seq[s]);
}

/* The relationship batches reference the ids handed out at the FIRST
 * application of each node batch (ids go 0, 1, ... in order of
 * application, whatever order retries put the batches in). */
static void expect_edge_ids(void) {
    long long id_of[7];
    for (int k = 0; k < 7; k++) id_of[k] = -1;
    long long next = 0;
    for (int i = 0; i < sm.applied && i < ARRIVALS_MAX; i++) {
        const char *q = sm.applied_text[i];
        int k;
        if (strstr(q, "CREATE (n:P") == NULL) continue;
        assert_int_equal(sscanf(q, "CYPHER rows=[['p%d'", &k), 1);
        assert_true(k >= 1 && k <= 6);
        if (id_of[k] == -1) id_of[k] = next; /* a doubled batch (no request ids) keeps the first */
        next++;
    }
    static const int pairs[5][2] = {{1, 2}, {2, 3}, {3, 4}, {5, 6}, {6, 1}};
    bool seen[5] = {false};
    int found = 0;
    for (int i = 0; i < sm.applied && i < ARRIVALS_MAX; i++) {
        const char *q = sm.applied_text[i];
        if (strstr(q, "CREATE (a)-[:K]->(b)") == NULL) continue;
        long long src, dst;
        assert_int_equal(sscanf(q, "CYPHER rows=[[%lld,%lld]]", &src, &dst), 2);
        bool ok = false;
        for (int k = 0; k < 5; k++)
            if (!seen[k] && id_of[pairs[k][0]] == src && id_of[pairs[k][1]] == dst) {
                seen[k] = ok = true;
                break;
            }
        if (!ok) fail_msg("relationship batch with wrong or repeated ids: %s", q);
        found++;
    }
    assert_int_equal(found, 5);
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */
/* ------------------------------------------------------------------ */

static void test_classify_error(void **state) {
    (void)state;
#define C(s) import_classify_error(s, strlen(s))
    assert_int_equal(C("ERR outcome unknown: leadership was lost after the write was proposed"), IMPORT_ERROR_UNKNOWN);
    assert_int_equal(C("outcome unknown: the leader did not answer within 5000 ms"), IMPORT_ERROR_UNKNOWN);
    assert_int_equal(C("ERR no leader available within 5000 ms (election in progress?); the write was not applied"),
                     IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("ERR not the leader: no leader is known (election in progress); retry shortly"),
                     IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("ERR busy: too many requests waiting for the leader, retry"), IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("ERR too many writes in flight; retry"), IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("BUSY Redis is busy"), IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("LOADING"), IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("ERR server is shutting down"), IMPORT_ERROR_NOT_APPLIED);
    assert_int_equal(C("ERR unknown command 'QUIVER.REQUESTID', with args beginning with: '1' '2'"),
                     IMPORT_ERROR_NO_REQUEST_ID);
    assert_int_equal(C("ERR unknown command 'quiver.requestid'"), IMPORT_ERROR_NO_REQUEST_ID);
    /* Refusals for good. */
    assert_int_equal(C("ERR unknown command 'GRAPH.QUERY'"), IMPORT_ERROR_FATAL);
    assert_int_equal(C("ERR Invalid input 'X': expected MATCH"), IMPORT_ERROR_FATAL);
    assert_int_equal(C("ERR this request was already applied (log index 7); its result was too large to keep for "
                       "a retry, so only its effects remain"),
                     IMPORT_ERROR_FATAL);
    assert_int_equal(C("boom: batch refused"), IMPORT_ERROR_FATAL);
    assert_int_equal(C(""), IMPORT_ERROR_FATAL);
    assert_int_equal(import_classify_error("outcome unknown", 7), IMPORT_ERROR_FATAL); /* only len bytes count */
#undef C
}

static void test_parse_nodes(void **state) {
    (void)state;
    import_endpoint e[4];
    char err[256];
    assert_int_equal(import_parse_nodes("127.0.0.1:7001", e, 4, err, sizeof err), 1);
    assert_string_equal(e[0].host, "127.0.0.1");
    assert_int_equal(e[0].port, 7001);
    assert_int_equal(import_parse_nodes("a:1, b:2 ,a:1,[::1]:7003", e, 4, err, sizeof err), 3);
    assert_string_equal(e[0].host, "a");
    assert_string_equal(e[1].host, "b");
    assert_int_equal(e[1].port, 2);
    assert_string_equal(e[2].host, "::1");
    assert_int_equal(e[2].port, 7003);
    assert_int_equal(import_parse_nodes("node1:65535", e, 4, err, sizeof err), 1);
    const char *bad[] = {"", "a", "a:", ":1", "a:0", "a:65536", "a:1x", "a:1,,b:2", "[::1]7001", "a:1,", "a:-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (import_parse_nodes(bad[i], e, 4, err, sizeof err) != -1) fail_msg("'%s' was accepted", bad[i]);
    assert_int_equal(import_parse_nodes("a:1,b:1,c:1,d:1,e:1", e, 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "more than 4 nodes"));
}

static void test_no_faults_one_id_per_batch(void **state) {
    (void)state;
    sm_reset();
    run t;
    start(&t);
    t.o.request_origin = 42;
    finish(&t);
    if (t.rc != 0) fail_msg("rc %d\n%s\n%s", t.rc, t.out, t.err);
    expect_each_batch_once();
    expect_edge_ids();
    assert_int_equal(sm.origin, 42);
    assert_int_equal(sm.request_ids_seen, 11);
    expect(t.out, "retries: 0 batches sent again (0 after an unknown outcome), 0 reconnects");
    expect(t.out, "request ids: origin 42, batches 1..11");
    release(&t);
}

static void test_unknown_outcome_retried_with_same_id(void **state) {
    (void)state;
    sm_reset();
    sm.fault[2] = F_UNKNOWN_AFTER_APPLY; /* node batch p2: applied, answer lost */
    sm.fault[3] = F_NO_LEADER;           /* p3: refused, not applied */
    sm.fault[9] = F_BUSY;
    sm.fault[10] = F_UNKNOWN_AFTER_APPLY; /* a relationship batch */
    run t;
    start(&t);
    finish(&t);
    if (t.rc != 0) fail_msg("rc %d\n%s\n%s", t.rc, t.out, t.err);
    expect_each_batch_once();
    expect_edge_ids();
    expect(t.err, "answered ERR outcome unknown");
    expect(t.out, "Loaded graph 't': 11 elements");
    expect(t.out, "retries: 4 batches sent again (2 after an unknown outcome), 0 reconnects");
    release(&t);
}

static void test_lost_connection_moves_to_next_node(void **state) {
    (void)state;
    sm_reset();
    sm.fault[3] = F_CLOSE_AFTER_APPLY;  /* node batch p3 applied, then node a "dies" */
    sm.fault[8] = F_CLOSE_AFTER_APPLY;  /* and a relationship batch on node b */
    run t;
    start(&t);
    int a_port = t.a->port, b_port = t.b->port;
    finish(&t);
    if (t.rc != 0) fail_msg("rc %d\n%s\n%s", t.rc, t.out, t.err);
    expect_each_batch_once();
    expect_edge_ids();
    char line[160];
    snprintf(line, sizeof line, "retry: connection to 127.0.0.1:%d lost", a_port);
    expect(t.err, line);
    snprintf(line, sizeof line, "retry: connected to 127.0.0.1:%d;", b_port);
    expect(t.err, line);
    expect(t.err, "sent again with their request ids");
    expect(t.out, "2 reconnects");
    release(&t);
}

static void test_silent_node_counts_as_lost(void **state) {
    (void)state;
    sm_reset();
    sm.fault[2] = F_STALL_AFTER_APPLY;
    run t;
    start(&t);
    t.o.reply_timeout_s = 1;
    int b_port = t.b->port;
    finish(&t);
    if (t.rc != 0) fail_msg("rc %d\n%s\n%s", t.rc, t.out, t.err);
    expect_each_batch_once();
    expect_edge_ids();
    char line[160];
    snprintf(line, sizeof line, "retry: connected to 127.0.0.1:%d;", b_port);
    expect(t.err, line);
    expect(t.out, "1 reconnects");
    release(&t);
}

static void test_gives_up_after_retry_timeout(void **state) {
    (void)state;
    sm_reset();
    sm.fault_from_arrival = 2;
    sm.fault_from = F_NO_LEADER;
    run t;
    start(&t);
    t.o.retry_timeout_s = 1;
    t.o.in_flight = 1;
    finish(&t);
    assert_int_equal(t.rc, 1);
    expect(t.err, "error: import stopped: gave up on the batch of nodes_p.csv lines 3-3 after 1 s of retries; "
                  "last error: ERR no leader available");
    expect(t.out, "Partly loaded graph 't': 1 elements");
    assert_int_equal(sm.applied, 1);
    release(&t);
}

static void test_without_request_ids_plain_retries_are_reported(void **state) {
    (void)state;
    sm_reset();
    sm.no_request_id = true;
    sm.fault[2] = F_NO_LEADER;           /* not applied: a plain retry is safe */
    sm.fault[4] = F_UNKNOWN_AFTER_APPLY; /* applied: a plain retry applies it again */
    run t;
    start(&t);
    finish(&t);
    assert_int_equal(t.rc, 1); /* the graph may hold a batch twice: say so */
    expect(t.err, "warning: the server refused QUIVER.REQUESTID");
    expect(t.out, "request ids: NOT SUPPORTED by the server (plain retries); 1 batches retried after an unknown "
                  "outcome may have been applied twice");
    assert_int_equal(sm.nodes_created, 7); /* p4 twice: what the warning is about */
    release(&t);
}

static void test_bad_nodes_option(void **state) {
    (void)state;
    import_options o;
    import_options_default(&o);
    o.nodes = "127.0.0.1:1,nonsense";
    o.dir = tmpdir;
    char *err;
    size_t err_len;
    FILE *fe = open_memstream(&err, &err_len);
    o.err = fe;
    assert_int_equal(import_run(&o), 1);
    fclose(fe);
    expect(err, "error: --nodes: 'nonsense' is not HOST:PORT");
    free(err);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* a fake answering a client that already left */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_error),
        cmocka_unit_test(test_parse_nodes),
        cmocka_unit_test(test_no_faults_one_id_per_batch),
        cmocka_unit_test(test_unknown_outcome_retried_with_same_id),
        cmocka_unit_test(test_lost_connection_moves_to_next_node),
        cmocka_unit_test(test_silent_node_counts_as_lost),
        cmocka_unit_test(test_gives_up_after_retry_timeout),
        cmocka_unit_test(test_without_request_ids_plain_retries_are_reported),
        cmocka_unit_test(test_bad_nodes_option),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

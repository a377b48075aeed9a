/*
 * test_statemachine_queries.c -- the apply thread with the REAL query engine
 * and real storage: Cypher writes applied through log entries, results
 * returned to the proposer, a failing statement in a multi-command entry
 * rolling back only itself, de-duplication returning the first result,
 * replay after a restart changing nothing, and determinism: two replicas
 * applying the same entries (timestamp(), rand()) end with the same digest.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

#include <cmocka.h>

#include "statemachine/command.h"
#include "statemachine/statemachine.h"

typedef struct got {
    sm_request_id id;
    uint64_t index;
    query_result *r; /* kept for inspection, freed in teardown */
} got;

typedef struct replica {
    char dir[600];
    pthread_mutex_t mu;
    pthread_cond_t cond;
    uint64_t wakes;
    qs_db *db;
    sm *s;
    got got[64];
    uint32_t got_count;
} replica;

typedef struct fixture {
    char base[512];
    replica a, b;
} fixture;

static void wake(void *ctx) {
    replica *p = ctx;
    pthread_mutex_lock(&p->mu);
    p->wakes++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->mu);
}

static void on_result(void *ctx, sm_request_id id, uint64_t index, query_result *r) {
    replica *p = ctx;
    assert_true(p->got_count < 64);
    p->got[p->got_count++] = (got){id, index, r};
}

static void replica_open(replica *p) {
    char err[512];
    qs_options o = {0, true};
    assert_int_equal(qs_open(p->dir, &o, &p->db, err, sizeof err), QS_OK);
    assert_int_equal(sm_open(p->db, wake, p, on_result, p, &p->s, err, sizeof err), 0);
}

static void replica_close(replica *p) {
    sm_close(p->s);
    qs_close(p->db);
    p->s = NULL;
    p->db = NULL;
}

static void replica_wait(replica *p, uint32_t n) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30; /* a hang guard, not a timing assertion */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        uint64_t seen = p->wakes;
        pthread_mutex_unlock(&p->mu);
        sm_deliver(p->s);
        if (p->got_count >= n) break;
        pthread_mutex_lock(&p->mu);
        int rc = 0;
        while (p->wakes == seen && rc == 0) rc = pthread_cond_timedwait(&p->cond, &p->mu, &deadline);
        pthread_mutex_unlock(&p->mu);
        if (rc != 0) break;
    }
    assert_int_equal(p->got_count, n);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    const char *base = getenv("QUIVER_TEST_TMP");
    if (base == NULL) base = "/tmp";
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", base);
    assert_int_equal(system(cmd), 0);
    snprintf(f->base, sizeof f->base, "%s/sm-queries-XXXXXX", base);
    assert_non_null(mkdtemp(f->base));
    replica *rs[2] = {&f->a, &f->b};
    for (int i = 0; i < 2; i++) {
        snprintf(rs[i]->dir, sizeof rs[i]->dir, "%s/%c", f->base, 'a' + i);
        pthread_mutex_init(&rs[i]->mu, NULL);
        pthread_cond_init(&rs[i]->cond, NULL);
        replica_open(rs[i]);
    }
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    replica *rs[2] = {&f->a, &f->b};
    for (int i = 0; i < 2; i++) {
        if (rs[i]->s) replica_close(rs[i]);
        for (uint32_t k = 0; k < rs[i]->got_count; k++) query_result_free(rs[i]->got[k].r);
        pthread_mutex_destroy(&rs[i]->mu);
        pthread_cond_destroy(&rs[i]->cond);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->base);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static sm_command q(uint64_t seq, const char *text) {
    sm_command c;
    memset(&c, 0, sizeof c);
    c.kind = SM_CMD_QUERY;
    c.request_id = (sm_request_id){77, seq};
    c.timestamp_ms = 1732500000123LL;
    c.seed = 0x5eed;
    c.graph = (qv_str){"social", 6};
    c.text = (qv_str){text, (uint32_t)strlen(text)};
    return c;
}

static void enqueue(replica *p, uint64_t index, const sm_command *cmds, uint32_t n) {
    uint8_t *buf;
    size_t len;
    assert_int_equal(sm_entry_encode(cmds, n, &buf, &len), SM_CODEC_OK);
    sm_enqueue(p->s, index, buf, len);
    free(buf);
}

/* Run a read on a snapshot of p and return the single integer it yields. */
static int64_t read_int(replica *p, const char *text) {
    qs_view *v = qs_view_open_snapshot(p->db);
    query_request req;
    memset(&req, 0, sizeof req);
    req.graph = "social";
    req.graph_len = 6;
    req.text = text;
    req.text_len = strlen(text);
    req.read_only = true;
    query_result *r = query_run_read(v, &req);
    qs_view_close(v);
    if (r->status != QUERY_OK) fprintf(stderr, "read failed: %s\n", r->error);
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->row_count, 1);
    assert_int_equal(r->cells[0].type, QV_INT);
    int64_t out = r->cells[0].u.i;
    query_result_free(r);
    return out;
}

static void digest(replica *p, char out[17]) {
    qs_view *v = qs_view_open_snapshot(p->db);
    uint32_t id;
    assert_int_equal(qs_graph_lookup(v, "social", 6, &id), QS_OK);
    assert_int_equal(qs_graph_digest(v, id, out), QS_OK);
    qs_view_close(v);
}

static void test_writes_through_entries(void **state) {
    fixture *f = *state;
    replica *p = &f->a;
    sm_command e1[2] = {q(1, "CREATE (:Person {name: 'ada', born: 1815})"),
                        q(2, "CREATE (:Person {name: 'alan', born: 1912}) RETURN timestamp() AS t")};
    enqueue(p, 2, e1, 2);
    enqueue(p, 3, (sm_command[]){q(3, "MATCH (a:Person {name: 'ada'}), (b:Person {name: 'alan'}) "
                                      "CREATE (a)-[:INSPIRED]->(b)")}, 1);
    replica_wait(p, 3);
    for (int i = 0; i < 3; i++) {
        if (p->got[i].r->status != QUERY_OK) fprintf(stderr, "%d: %s\n", i, p->got[i].r->error);
        assert_int_equal(p->got[i].r->status, QUERY_OK);
    }
    assert_int_equal(p->got[0].r->stats.nodes_created, 1);
    assert_int_equal(p->got[0].r->stats.properties_set, 2);
    /* timestamp() is the command's, not the clock's */
    assert_int_equal(p->got[1].r->row_count, 1);
    assert_int_equal(p->got[1].r->cells[0].u.i, 1732500000123LL);
    assert_int_equal(p->got[2].r->stats.relationships_created, 1);
    assert_int_equal(read_int(p, "MATCH (n:Person) RETURN count(n)"), 2);
    assert_int_equal(read_int(p, "MATCH (:Person)-[r:INSPIRED]->(:Person) RETURN count(r)"), 1);
    assert_int_equal(qs_applied_index(p->db), 3);
}

static void test_failing_statement_rolls_back_only_itself(void **state) {
    fixture *f = *state;
    replica *p = &f->a;
    sm_command e[3] = {q(1, "CREATE (:A {i: 1})"),
                       q(2, "CREATE (:A {i: 2}) WITH 1 AS one RETURN one / 0"),
                       q(3, "CREATE (:A {i: 3})")};
    enqueue(p, 5, e, 3);
    replica_wait(p, 3);
    assert_int_equal(p->got[0].r->status, QUERY_OK);
    assert_int_equal(p->got[1].r->status, QUERY_ERR_RUNTIME);
    assert_non_null(strstr(p->got[1].r->error, "Division by zero"));
    assert_int_equal(p->got[2].r->status, QUERY_OK);
    assert_int_equal(read_int(p, "MATCH (n:A) RETURN count(n)"), 2);
    assert_int_equal(read_int(p, "MATCH (n:A) RETURN sum(n.i)"), 4);
    assert_int_equal(qs_applied_index(p->db), 5);
}

static void test_dedup_first_result_and_replay(void **state) {
    fixture *f = *state;
    replica *p = &f->a;
    enqueue(p, 1, (sm_command[]){q(1, "CREATE (n:B {v: rand()}) RETURN n.v")}, 1);
    replica_wait(p, 1);
    double first = p->got[0].r->cells[0].u.d;
    /* the same request id again: the first result, no new node */
    enqueue(p, 2, (sm_command[]){q(1, "CREATE (n:B {v: rand()}) RETURN n.v")}, 1);
    replica_wait(p, 2);
    assert_int_equal(p->got[1].r->status, QUERY_OK);
    assert_true(p->got[1].r->cells[0].u.d == first);
    assert_int_equal(p->got[1].r->stats.nodes_created, 1); /* the first outcome's statistics */
    assert_int_equal(read_int(p, "MATCH (n:B) RETURN count(n)"), 1);
    /* the same id with another statement: refused, nothing created */
    enqueue(p, 3, (sm_command[]){q(1, "CREATE (n:B {v: 0.5}) RETURN n.v")}, 1);
    replica_wait(p, 3);
    assert_int_not_equal(p->got[2].r->status, QUERY_OK);
    assert_non_null(strstr(p->got[2].r->error, "already used for a different statement"));
    assert_int_equal(read_int(p, "MATCH (n:B) RETURN count(n)"), 1);
    char before[17], after[17];
    digest(p, before);
    replica_close(p);
    replica_open(p);
    enqueue(p, 1, (sm_command[]){q(1, "CREATE (n:B {v: rand()}) RETURN n.v")}, 1);
    enqueue(p, 2, (sm_command[]){q(1, "CREATE (n:B {v: rand()}) RETURN n.v")}, 1);
    enqueue(p, 3, (sm_command[]){q(1, "CREATE (n:B {v: 0.5}) RETURN n.v")}, 1);
    enqueue(p, 4, (sm_command[]){q(2, "MATCH (n:B) RETURN count(n)")}, 1);
    replica_wait(p, 4);
    assert_int_equal(p->got[3].index, 4); /* the replayed entries gave no results */
    digest(p, after);
    assert_string_equal(before, after);
}

/* FNV-1a over every de-dup table key and value: the table is replicated
 * state too (a retry may reach any replica that becomes leader). */
static bool hash_meta(void *ctx, const void *key, size_t key_len, const void *val, size_t val_len) {
    uint64_t *h = ctx;
    const uint8_t *parts[2] = {key, val};
    size_t lens[2] = {key_len, val_len};
    for (int p = 0; p < 2; p++)
        for (size_t i = 0; i < lens[p]; i++) *h = (*h ^ parts[p][i]) * 0x100000001b3ULL;
    return true;
}

static uint64_t dedup_hash(replica *p) {
    uint64_t h = 0xcbf29ce484222325ULL;
    qs_view *v = qs_view_open_snapshot(p->db);
    assert_int_equal(qs_meta_scan(v, "sm/", 3, hash_meta, &h), QS_OK);
    qs_view_close(v);
    return h;
}

static void test_replicas_agree(void **state) {
    fixture *f = *state;
    sm_command e1[3] = {q(1, "UNWIND range(1, 50) AS i CREATE (:N {i: i, r: rand(), t: timestamp()})"),
                        q(2, "MATCH (n:N) WHERE n.i % 7 = 0 SET n.seven = true"),
                        q(3, "MATCH (a:N), (b:N) WHERE b.i = a.i + 1 CREATE (a)-[:NEXT {w: rand()}]->(b)")};
    sm_command e2[1] = {q(4, "MATCH (n:N) WHERE n.i > 45 DETACH DELETE n")};
    replica *rs[2] = {&f->a, &f->b};
    for (int i = 0; i < 2; i++) {
        enqueue(rs[i], 10, e1, 3);
        enqueue(rs[i], 11, e2, 1);
        replica_wait(rs[i], 4);
        for (int k = 0; k < 4; k++) {
            if (rs[i]->got[k].r->status != QUERY_OK) fprintf(stderr, "%d/%d: %s\n", i, k, rs[i]->got[k].r->error);
            assert_int_equal(rs[i]->got[k].r->status, QUERY_OK);
        }
    }
    char da[17], db[17];
    digest(&f->a, da);
    digest(&f->b, db);
    assert_string_equal(da, db);
    assert_true(dedup_hash(&f->a) == dedup_hash(&f->b)); /* no local timing leaks into it */
    assert_int_equal(sm_dedup_count(f->a.s), 4);
    assert_int_equal(read_int(&f->a, "MATCH (n:N) RETURN count(n)"), 45);
    /* a different seed makes a different graph: rand() really is in the state */
    sm_command other = q(5, "MATCH (n:N {i: 1}) SET n.r = rand()");
    enqueue(&f->a, 12, &other, 1);
    other.seed ^= 1;
    enqueue(&f->b, 12, &other, 1);
    replica_wait(&f->a, 5);
    replica_wait(&f->b, 5);
    digest(&f->a, da);
    digest(&f->b, db);
    assert_string_not_equal(da, db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_through_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_statement_rolls_back_only_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_first_result_and_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replicas_agree, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_query_budget.c -- the deterministic work budget
 * (query_request.work_max, engine.h "WORK UNITS") and the memory budget
 * (query_request.memory_max_bytes): a write over its budget fails with the
 * one text every replica gives and has no effects; the same statement on
 * the same state uses the same units (two databases built the same way
 * agree unit for unit); reads honour work_max with their own wording; 0
 * means unlimited; the 3.6e9-row write stops at the default
 * budget; the memory cap is a limit error, never out_of_memory.
 */
#include "test_query_util.h"

#include "common/limits.h"

static int setup(void **state) {
    *state = tq_open();
    return 0;
}

static int teardown(void **state) {
    tq_close(*state);
    return 0;
}

static query_result *write_budget(tq *t, const char *q, uint64_t work_max) {
    query_request req = tq_req(t, q);
    req.work_max = work_max;
    return tq_write_req(t, &req);
}

static void test_write_over_budget(void **state) {
    tq *t = *state;
    const char *q = "UNWIND range(1, 1000) AS i CREATE (:B {i: i, s: 'x' + toString(i)})";
    query_result *r = write_budget(t, q, 500);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    assert_string_equal(r->error, "ERR write exceeds its work budget (500 units; raise --write-work-max)");
    assert_false(r->out_of_memory);
    assert_false(r->wrote);
    query_result_free(r);
    TQ_READ_EQ(t, "MATCH (b:B) RETURN count(b)", "0\n");
    /* unlimited, and a budget it fits in */
    r = write_budget(t, q, 0);
    assert_int_equal(r->status, QUERY_OK);
    uint64_t used = r->work;
    assert_true(used > 1000);
    query_result_free(r);
    tq_exec(t, "MATCH (b:B) DETACH DELETE b");
    r = write_budget(t, q, used + 100);
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->stats.nodes_created, 1000);
    query_result_free(r);
    /* a read gets the read wording */
    query_request req = tq_req(t, "MATCH (b:B) RETURN b.i ORDER BY b.s");
    req.work_max = 100;
    r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    assert_string_equal(r->error, "ERR query exceeds its work budget (100 units)");
    query_result_free(r);
    req.work_max = 0;
    r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->row_count, 1000);
    query_result_free(r);
}

/* Two databases, the same statements: the same units, statement by
 * statement, success or failure. */
static void test_deterministic_units(void **state) {
    tq *a = *state;
    tq *b = tq_open();
    const char *script[] = {
        "UNWIND range(1, 300) AS i CREATE (:P {i: i, name: 'p' + toString(i), tags: [i, i * 2]})",
        "MATCH (p:P) WHERE p.i % 3 = 0 MATCH (q:P) WHERE q.i = p.i + 1 CREATE (p)-[:N {w: p.i}]->(q)",
        "MATCH (p:P) SET p.k = p.i % 7",
        "MATCH (p:P) WITH p.k AS k, collect(p.name) AS names RETURN k, size(names) ORDER BY k",
        "MATCH (p:P)-[r:N]->(q) RETURN DISTINCT q.k, sum(r.w) ORDER BY q.k DESC",
        "MATCH (p:P) WHERE p.name =~ 'p1[0-9]*' RETURN count(p)",
        "UNWIND range(1, 100000) AS x CREATE (:Never)",
        "MATCH (p:P) WITH p ORDER BY p.name DESC SKIP 10 LIMIT 5 RETURN p.i, [x IN p.tags | x * 3]",
    };
    for (size_t i = 0; i < sizeof script / sizeof script[0]; i++) {
        uint64_t budget = 200000;
        query_result *ra = write_budget(a, script[i], budget);
        query_result *rb = write_budget(b, script[i], budget);
        if (ra->status != rb->status || ra->work != rb->work)
            fail_msg("%s: status %d/%d, work %llu/%llu", script[i], ra->status, rb->status, (unsigned long long)ra->work,
                     (unsigned long long)rb->work);
        char *ta = tq_text(ra), *tb = tq_text(rb);
        assert_string_equal(ta, tb);
        free(ta);
        free(tb);
        query_result_free(ra);
        query_result_free(rb);
    }
    tq_close(b);
    /* the 100,000 :Never nodes were over the budget and are not there */
    TQ_READ_EQ(a, "MATCH (n:Never) RETURN count(n)", "0\n");
}

/* The probe: a write of 3.6e9 rows ran 34 s on the apply thread.
 * With the default budget it stops after QUIVER_WRITE_WORK_MAX_DEFAULT
 * units (about a second); in any case long before it would have ended. */
static void test_huge_write_stops(void **state) {
    tq *t = *state;
    query_result *r = write_budget(t, "UNWIND range(1, 60000) AS a UNWIND range(1, 60000) AS b CREATE (:X {a: a, b: b})",
                                   QUIVER_WRITE_WORK_MAX_DEFAULT);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    char want[128];
    snprintf(want, sizeof want, "ERR write exceeds its work budget (%llu units; raise --write-work-max)",
             (unsigned long long)QUIVER_WRITE_WORK_MAX_DEFAULT);
    assert_string_equal(r->error, want);
    assert_true(r->work <= QUIVER_WRITE_WORK_MAX_DEFAULT + 65536); /* stopped at the budget, not at the end */
    query_result_free(r);
    TQ_READ_EQ(t, "MATCH (x:X) RETURN count(x)", "0\n");
    /* a single huge step is charged before it runs: sorting a million rows
     * by a shared 1 MiB string */
    char q[1024];
    size_t o = (size_t)sprintf(q, "WITH 'a' AS s ");
    for (int i = 0; i < 20; i++) o += (size_t)sprintf(q + o, "WITH s + s AS s ");
    sprintf(q + o, "UNWIND range(1, 1000000) AS i WITH s, i ORDER BY [s, i] DESC LIMIT 1 CREATE (:Y {i: i})");
    r = write_budget(t, q, QUIVER_WRITE_WORK_MAX_DEFAULT);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    assert_string_equal(r->error, want);
    query_result_free(r);
}

static void test_memory_budget(void **state) {
    tq *t = *state;
    const char *q = "UNWIND range(1, 100000) AS i WITH collect('item ' + toString(i)) AS l RETURN size(l)";
    for (int write = 0; write < 2; write++) {
        query_request req = tq_req(t, q);
        req.memory_max_bytes = 1u << 20;
        query_result *r = write ? tq_write_req(t, &req) : tq_read_req(t, &req);
        assert_int_equal(r->status, QUERY_ERR_LIMIT);
        assert_string_equal(r->error, "Query's memory consumption exceeded capacity (1048576 bytes)");
        assert_false(r->out_of_memory);
        query_result_free(r);
        req.memory_max_bytes = 0; /* the default */
        r = write ? tq_write_req(t, &req) : tq_read_req(t, &req);
        assert_int_equal(r->status, QUERY_OK);
        assert_false(r->out_of_memory);
        query_result_free(r);
    }
    /* the result's arena shares the budget: a big result over a small cap */
    query_request req = tq_req(t, "UNWIND range(1, 20000) AS i RETURN 'a long enough string ' + toString(i) AS s");
    req.memory_max_bytes = 2u << 20;
    query_result *r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    query_result_free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_over_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deterministic_units, setup, teardown),
        cmocka_unit_test_setup_teardown(test_huge_write_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

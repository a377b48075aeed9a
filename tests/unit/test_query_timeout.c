/*
 * test_query_timeout.c -- TIMEOUT on reads: a huge timeout is no timeout
 * (the deadline arithmetic saturates: `TIMEOUT 18446744073709551615` used
 * to wrap and time out at once), and a short one interrupts single long
 * steps that produce no row: a sort whose comparisons are slow, building
 * and iterating a huge list, many regex matches, a DISTINCT over many
 * rows.  Writes ignore TIMEOUT (they stop by their work budget).  Nothing
 * here asserts a duration: the statements would run for many seconds
 * without the deadline, and the test only checks the status.
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

static query_status read_with_timeout(tq *t, const char *q, uint64_t timeout_ms) {
    query_request req = tq_req(t, q);
    req.timeout_ms = timeout_ms;
    query_result *r = tq_read_req(t, &req);
    query_status st = r->status;
    if (st == QUERY_ERR_TIMEOUT) assert_string_equal(r->error, "Query timed out");
    else if (st != QUERY_OK) fail_msg("%s: %s", q, r->error);
    query_result_free(r);
    return st;
}

static void test_huge_timeouts_are_none(void **state) {
    tq *t = *state;
    const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 1, UINT64_MAX / 1000000u, UINT64_MAX / 1000000u + 1, 1ull << 63};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++)
        assert_int_equal(read_with_timeout(t, "UNWIND range(1, 200000) AS x WITH x WHERE x % 7 = 3 RETURN count(x)", huge[i]),
                         QUERY_OK);
    /* and an ordinary one that is long enough */
    assert_int_equal(read_with_timeout(t, "RETURN 1", 60000), QUERY_OK);
}

/* 1 MiB string s, built by doubling in 20 clauses. */
#define BIG_STRING                                                                                                     \
    "WITH 'a' AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s " \
    "WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s " \
    "WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s WITH s + s AS s "

static void test_long_steps_stop(void **state) {
    tq *t = *state;
    /* a sort of 3,000 rows whose keys share a 1 MiB prefix: the rows come
     * at once, the comparisons take seconds; they check the deadline */
    assert_int_equal(read_with_timeout(t, BIG_STRING "UNWIND range(1, 3000) AS i WITH s, i RETURN i ORDER BY [s, i] DESC LIMIT 1",
                                       50),
                     QUERY_ERR_TIMEOUT);
    /* DISTINCT on the same keys: hashing and probing */
    assert_int_equal(read_with_timeout(t, BIG_STRING "UNWIND range(1, 100000) AS i RETURN count(DISTINCT [s, i % 2])", 50),
                     QUERY_ERR_TIMEOUT);
    /* building and iterating a huge list inside one expression */
    assert_int_equal(read_with_timeout(t, "RETURN size([x IN range(1, 4000000) WHERE x % 3 = 0 | x * 2]) AS n", 5),
                     QUERY_ERR_TIMEOUT);
    assert_int_equal(read_with_timeout(t, "RETURN any(x IN range(1, 4000000) WHERE x < 0) AS n", 5), QUERY_ERR_TIMEOUT);
    /* IN over a huge list, row after row */
    assert_int_equal(read_with_timeout(t, "WITH range(1, 1000000) AS l UNWIND range(1, 1000) AS i RETURN count(-i IN l)", 20),
                     QUERY_ERR_TIMEOUT);
    /* regex matches: each bounded by PCRE2's match limit, the deadline between them */
    assert_int_equal(
        read_with_timeout(t, "UNWIND range(1, 10000000) AS i WITH i WHERE 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab' =~ '(a|aa)*b' RETURN count(i)",
                          20),
        QUERY_ERR_TIMEOUT);
    /* string work inside one expression: 1 MiB replaced again and again */
    assert_int_equal(read_with_timeout(t, BIG_STRING "UNWIND range(1, 100000) AS i RETURN count(replace(s, 'a', 'b'))", 20),
                     QUERY_ERR_TIMEOUT);
}

/* Writes ignore TIMEOUT: they must stop at the same point on every replica,
 * so they stop by units; the same long sort as a write meets its budget
 * instead, before it sorts. */
static void test_writes_use_the_budget(void **state) {
    tq *t = *state;
    query_request req = tq_req(t, BIG_STRING "UNWIND range(1, 3000) AS i WITH s, i ORDER BY [s, i] DESC LIMIT 1 CREATE (:T {i: i})");
    req.timeout_ms = 1;
    req.work_max = QUIVER_WRITE_WORK_MAX_DEFAULT;
    query_result *r = tq_write_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    assert_non_null(strstr(r->error, "ERR write exceeds its work budget"));
    query_result_free(r);
    TQ_READ_EQ(t, "MATCH (n:T) RETURN count(n)", "0\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_huge_timeouts_are_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_steps_stop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_use_the_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_query_depth.c -- no recursion on untrusted depth: values are never
 * built deeper than QUIVER_VALUE_DEPTH_MAX (through clauses, collect(),
 * literals, maps, parameters) or with more than
 * QUIVER_VALUE_ELEMENTS_COUNT_MAX elements (shared parts counted as often
 * as they appear), so comparing, hashing, sorting and copying them is
 * bounded; and a query whose operator chain needs more stack than its
 * thread has stops with an error instead of overflowing (the stack
 * budget), while the same query runs on a thread with the query stack
 * size.  Run in the ASan build too, where frames are much bigger.
 */
#include <pthread.h>

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

/* `WITH <start> AS x` then `WITH <step> AS x` n times, then `RETURN <ret>`. */
static char *chain(const char *start, const char *step, uint32_t n, const char *ret) {
    size_t cap = strlen(start) + (strlen(step) + 16) * (size_t)n + strlen(ret) + 64;
    char *q = malloc(cap);
    assert_non_null(q);
    size_t o = (size_t)sprintf(q, "WITH %s AS x ", start);
    for (uint32_t i = 0; i < n; i++) o += (size_t)sprintf(q + o, "WITH %s AS x ", step);
    sprintf(q + o, "RETURN %s", ret);
    return q;
}

static void expect_limit(tq *t, const char *q, const char *want) {
    for (int write = 0; write < 2; write++) {
        query_result *r = write ? tq_write(t, q) : tq_read(t, q);
        if (r->status != QUERY_ERR_LIMIT || strstr(r->error, want) == NULL)
            fail_msg("%s: status %d %s (want %s)", write ? "write" : "read", r->status, r->error ? r->error : "", want);
        query_result_free(r);
    }
}

static void test_value_depth(void **state) {
    tq *t = *state;
    char want[128];
    snprintf(want, sizeof want, "ERR value nested deeper than %u levels (the limit)", QUIVER_VALUE_DEPTH_MAX);
    const char *steps[] = {"[x]", "{a: x}", "[x, 1] + []", "[y IN [1] | x]", "reverse([x])", "tail([0, x])"};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        /* exactly the limit: fine, and every walk of it works */
        char *q = chain("1", steps[k], QUIVER_VALUE_DEPTH_MAX, "x = x AS eq, size(toString(1)) AS s");
        query_result *r = tq_read(t, q);
        if (r->status != QUERY_OK) fail_msg("%s: %s", steps[k], r->error);
        query_result_free(r);
        free(q);
        q = chain("1", steps[k], QUIVER_VALUE_DEPTH_MAX, "x");
        r = tq_read(t, q);
        if (r->status != QUERY_OK) fail_msg("%s: %s", steps[k], r->error);
        query_result_free(r);
        free(q);
        /* one more: refused where it is built */
        q = chain("1", steps[k], QUIVER_VALUE_DEPTH_MAX + 1, "1");
        expect_limit(t, q, want);
        free(q);
    }
    /* collect() nests one level per clause */
    size_t cap = 64 * 1024;
    char *q = malloc(cap);
    size_t o = (size_t)sprintf(q, "UNWIND [1, 2] AS x ");
    for (int i = 0; i < 100; i++) o += (size_t)sprintf(q + o, "WITH collect(x) AS x ");
    sprintf(q + o, "RETURN count(*)");
    expect_limit(t, q, want);
    free(q);
    /* ORDER BY, DISTINCT and grouping on values at the limit */
    q = malloc(cap);
    o = (size_t)sprintf(q, "UNWIND [1, 2, 3] AS i WITH i, i %% 2 AS x ");
    for (uint32_t i = 0; i + 1 < QUIVER_VALUE_DEPTH_MAX; i++) o += (size_t)sprintf(q + o, "WITH i, [x] AS x ");
    sprintf(q + o, "RETURN DISTINCT x AS v, i, count(*) AS c ORDER BY v, i DESC");
    query_result *r = tq_read(t, q);
    if (r->status != QUERY_OK) fail_msg("%s", r->error);
    assert_int_equal(r->row_count, 3);
    assert_int_equal(r->cells[1].u.i, 2); /* [..[0]..] first, then the two [..[1]..] by i descending */
    assert_int_equal(r->cells[4].u.i, 3);
    assert_int_equal(r->cells[7].u.i, 1);
    query_result_free(r);
    free(q);
    /* literals: a nested list literal deeper than the limit is not folded,
     * and evaluating it is refused */
    q = malloc(1024);
    o = (size_t)sprintf(q, "RETURN ");
    for (int i = 0; i < 100; i++) q[o++] = '[';
    q[o++] = '1';
    for (int i = 0; i < 100; i++) q[o++] = ']';
    sprintf(q + o, " AS l");
    expect_limit(t, q, want);
    o = (size_t)sprintf(q, "RETURN ");
    for (int i = 0; i < 100; i++) o += (size_t)sprintf(q + o, "{a: ");
    q[o++] = '1';
    for (int i = 0; i < 100; i++) q[o++] = '}';
    sprintf(q + o, " AS m");
    expect_limit(t, q, want);
    free(q);
}

/* Shared parts count as often as they appear: doubling a value in each
 * clause reaches the element limit long before memory runs out, and
 * before any walk of it could run for ever. */
static void test_value_elements(void **state) {
    tq *t = *state;
    char want[128];
    snprintf(want, sizeof want, "ERR value with more than %u elements (the limit)", QUIVER_VALUE_ELEMENTS_COUNT_MAX);
    char *q = chain("[1, 2, 3, 4, 5, 6, 7, 8]", "[x, x, x, x, x, x, x, x]", 12, "x = x");
    expect_limit(t, q, want);
    free(q);
    /* 8^7 elements: allowed, and its walks are charged as work */
    q = chain("[1, 2, 3, 4, 5, 6, 7, 8]", "[x, x, x, x, x, x, x, x]", 6, "x = x AS eq");
    query_request req = tq_req(t, q);
    req.work_max = 1000000;
    query_result *r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_LIMIT);
    assert_string_equal(r->error, "ERR query exceeds its work budget (1000000 units)");
    query_result_free(r);
    req.work_max = 0;
    r = tq_read_req(t, &req);
    char *s = tq_text(r);
    assert_string_equal(s, "true\n");
    free(s);
    query_result_free(r);
    free(q);
}

/* Stack budget: a long operator chain on a thread with a small stack. */
typedef struct stack_job {
    tq *t;
    const char *q;
    query_status status;
    char error[256];
} stack_job;

static void *stack_run(void *arg) {
    stack_job *j = arg;
    query_result *r = tq_read(j->t, j->q);
    j->status = r->status;
    snprintf(j->error, sizeof j->error, "%s", r->error ? r->error : "");
    query_result_free(r);
    return NULL;
}

static void run_on_stack(stack_job *j, size_t stack_bytes) {
    pthread_attr_t at;
    pthread_attr_init(&at);
    assert_int_equal(pthread_attr_setstacksize(&at, stack_bytes), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, &at, stack_run, j), 0);
    pthread_join(th, NULL);
    pthread_attr_destroy(&at);
}

static void test_stack_budget(void **state) {
    tq *t = *state;
    /* ~1000 clauses of four operators each: a chain of ~4000 op_next frames */
    char *q = malloc(64 * 1024);
    size_t o = (size_t)sprintf(q, "WITH 1 AS x ");
    for (uint32_t i = 0; i < QUIVER_QUERY_CLAUSES_COUNT_MAX - 2; i++) o += (size_t)sprintf(q + o, "WITH x ORDER BY x SKIP 0 LIMIT 1 ");
    sprintf(q + o, "RETURN x");
    stack_job small = {t, q, QUERY_OK, ""};
    run_on_stack(&small, 256u * 1024);
    if (small.status != QUERY_ERR_LIMIT || strstr(small.error, "bytes of stack (too deeply nested)") == NULL)
        fail_msg("small stack: status %d: %s", small.status, small.error);
    assert_true(strncmp(small.error, "ERR query needs more than ", 26) == 0);
    /* the same statement on a query thread's stack */
    stack_job big = {t, q, QUERY_ERR_RUNTIME, ""};
    run_on_stack(&big, QUIVER_QUERY_THREAD_STACK_SIZE_BYTES);
    if (big.status != QUERY_OK) fail_msg("query stack: status %d: %s", big.status, big.error);
    /* a short statement is fine on the small stack */
    stack_job shallow = {t, "UNWIND range(1, 10) AS x WITH x ORDER BY x DESC RETURN collect(x)", QUERY_ERR_RUNTIME, ""};
    run_on_stack(&shallow, 256u * 1024);
    assert_int_equal(shallow.status, QUERY_OK);
    /* deeply nested expressions and pattern predicates on the small stack:
     * within the AST depth limit they run, or stop with the stack error */
    tq_exec(t, "CREATE (:N {v: 1})-[:R]->(:N {v: 2})");
    o = (size_t)sprintf(q, "MATCH (a:N) RETURN ");
    for (int i = 0; i < 80; i++) o += (size_t)sprintf(q + o, "CASE WHEN exists((a)-[:R]->({v: ");
    o += (size_t)sprintf(q + o, "2");
    for (int i = 0; i < 80; i++) o += (size_t)sprintf(q + o, "})) THEN 2 ELSE 3 END");
    sprintf(q + o, " AS c");
    stack_job nested = {t, q, QUERY_OK, ""};
    run_on_stack(&nested, 256u * 1024);
    if (nested.status != QUERY_OK && (nested.status != QUERY_ERR_LIMIT || strstr(nested.error, "bytes of stack") == NULL))
        fail_msg("nested: status %d: %s", nested.status, nested.error);
    free(q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_value_depth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_elements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stack_budget, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

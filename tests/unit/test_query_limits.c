/*
 * test_query_limits.c -- statement limits (common/limits.h) and admission:
 * each limit accepts a statement at its value and refuses one past it with
 * an "ERR ..." error naming the value, identically in query_admit, in a
 * read and in a write; 100,000 clauses end in an error, not a crash;
 * admission plans without storage (semantic errors, bad constant regexes)
 * and lets legitimate bulk statements through: an import batch of
 * 1,000,000 rows, a CREATE of 20,000 parts.
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

/* A growing text. */
typedef struct txt {
    char *p;
    size_t len, cap;
} txt;

static void tput(txt *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tput(txt *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (b->p && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = (b->cap ? b->cap * 2 : 4096) + (size_t)n + 1;
        b->p = realloc(b->p, ncap);
        assert_non_null(b->p);
        b->cap = ncap;
    }
}

/* Admission's answer: NULL when admitted, else the error (caller frees). */
static char *admit(const char *q, size_t len, bool *writes) {
    query_admission a;
    char err[600];
    err[0] = '\0';
    int rc = query_admit(q, len, &a, err, sizeof err);
    if (writes) *writes = a.writes;
    if (rc == 0) return NULL;
    assert_int_equal(rc, -1);
    assert_true(err[0] != '\0');
    return strdup(err);
}

/* The statement is refused with expect (a substring) by admission, by a
 * read and by a write, with status LIMIT in both runs. */
static void refused_everywhere(tq *t, const char *q, size_t len, const char *expect) {
    /* Admission plans only writes (query.h): a read may pass it when the
     * limit is the planner's, and is then refused by the reader below. */
    bool writes = true;
    char cerr[600];
    if (query_classify(q, len, &writes, cerr, sizeof cerr) != 0) writes = true;
    char *e = admit(q, len, NULL);
    if (e != NULL || writes) {
        if (e == NULL || strstr(e, expect) == NULL) fail_msg("admission: %s (want %s)", e ? e : "admitted", expect);
        assert_true(strncmp(e, "ERR ", 4) == 0);
    }
    free(e);
    query_request req = tq_req(t, q);
    req.text_len = len;
    for (int write = 0; write < 2; write++) {
        query_result *r = write ? tq_write_req(t, &req) : tq_read_req(t, &req);
        if (r->status != QUERY_ERR_LIMIT || strstr(r->error, expect) == NULL)
            fail_msg("%s: status %d: %s (want %s)", write ? "write" : "read", r->status, r->error ? r->error : "", expect);
        assert_false(r->out_of_memory);
        query_result_free(r);
    }
}

static void admitted(const char *q, size_t len) {
    char *e = admit(q, len, NULL);
    if (e != NULL) fail_msg("not admitted: %s", e);
}

/* `WITH 1 AS x` n times, then RETURN x: n + 1 clauses. */
static txt with_chain(uint32_t n) {
    txt b = {NULL, 0, 0};
    for (uint32_t i = 0; i < n; i++) tput(&b, "WITH 1 AS x ");
    tput(&b, "RETURN x");
    return b;
}

static void test_clauses(void **state) {
    tq *t = *state;
    char want[128];
    snprintf(want, sizeof want, "ERR query has more than %u clauses (the limit)", QUIVER_QUERY_CLAUSES_COUNT_MAX);
    /* the probe from the issue: 100,000 clauses crashed the server */
    txt b = with_chain(100000);
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
    b = with_chain(QUIVER_QUERY_CLAUSES_COUNT_MAX);
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
    /* at the limit: admitted and runs */
    b = with_chain(QUIVER_QUERY_CLAUSES_COUNT_MAX - 1);
    admitted(b.p, b.len);
    query_request req = tq_req(t, b.p);
    query_result *r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->row_count, 1);
    query_result_free(r);
    free(b.p);
    /* UNION parts count together */
    b = (txt){NULL, 0, 0};
    for (uint32_t i = 0; i < QUIVER_QUERY_CLAUSES_COUNT_MAX / 2 + 1; i++) tput(&b, "%sWITH 1 AS x RETURN x", i ? " UNION " : "");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
}

static void test_operators(void **state) {
    tq *t = *state;
    char want[128];
    snprintf(want, sizeof want, "ERR query plan has more than %u operators (the limit)", QUIVER_QUERY_OPERATORS_COUNT_MAX);
    /* each WITH ... ORDER BY ... SKIP ... LIMIT ... WHERE adds five operators */
    txt b = {NULL, 0, 0};
    for (uint32_t i = 0; i < QUIVER_QUERY_OPERATORS_COUNT_MAX / 5 + 1; i++) tput(&b, "WITH 1 AS x ORDER BY x SKIP 0 LIMIT 1 WHERE x = 1 ");
    tput(&b, "RETURN x");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
    /* sub-pipelines count too: pattern predicates in one WHERE */
    tq_exec(t, "CREATE (:O)-[:R]->(:O)");
    b = (txt){NULL, 0, 0};
    tput(&b, "MATCH (a:O) WHERE ");
    for (uint32_t i = 0; i < QUIVER_QUERY_OPERATORS_COUNT_MAX / 2 + 1; i++) tput(&b, "%s(a)-[:R]->()", i ? " OR " : "");
    tput(&b, " RETURN a");
    char *e = admit(b.p, b.len, NULL);
    /* OR chains are also bounded by the nesting limit: either is fine, but an error */
    assert_non_null(e);
    assert_true(strncmp(e, "ERR ", 4) == 0);
    free(e);
    free(b.p);
    /* many (shallow) pattern predicates: list items */
    b = (txt){NULL, 0, 0};
    tput(&b, "MATCH (a:O) RETURN [");
    for (uint32_t i = 0; i < QUIVER_QUERY_OPERATORS_COUNT_MAX / 2 + 1; i++) tput(&b, "%sexists((a)-[:R]->())", i ? ", " : "");
    tput(&b, "] AS l");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
}

static void test_expression_nodes(void **state) {
    tq *t = *state;
    char want[128];
    snprintf(want, sizeof want, "ERR query has more than %u expression nodes (the limit)",
             QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX);
    txt b = {NULL, 0, 0};
    tput(&b, "WITH 1 AS x RETURN size([");
    for (uint32_t i = 0; i <= QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX; i++) tput(&b, "%sx", i ? "," : "");
    tput(&b, "]) AS n");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
    /* constants fold into one node: more constant elements than the limit pass */
    b = (txt){NULL, 0, 0};
    tput(&b, "RETURN size([");
    for (uint32_t i = 0; i < QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX + 2; i++)
        tput(&b, i % 2 ? "%s%u" : "%s[%u, 'v']", i ? "," : "", i);
    tput(&b, "]) AS n");
    admitted(b.p, b.len);
    query_request req = tq_req(t, b.p);
    req.text_len = b.len;
    query_result *r = tq_read_req(t, &req);
    char *s = tq_text(r);
    char expect[32];
    snprintf(expect, sizeof expect, "%u\n", QUIVER_QUERY_EXPRESSION_NODES_COUNT_MAX + 2);
    assert_string_equal(s, expect);
    free(s);
    query_result_free(r);
    free(b.p);
}

static void test_patterns(void **state) {
    tq *t = *state;
    char want[128];
    /* relationships in one path */
    snprintf(want, sizeof want, "ERR path pattern with more than %u relationships (the limit)",
             QUIVER_QUERY_PATH_RELS_COUNT_MAX);
    for (int form = 0; form < 3; form++) {
        for (uint32_t n = QUIVER_QUERY_PATH_RELS_COUNT_MAX; n <= QUIVER_QUERY_PATH_RELS_COUNT_MAX + 1; n++) {
            txt b = {NULL, 0, 0};
            tput(&b, form == 0 ? "MATCH (a)" : form == 1 ? "CREATE (a)" : "MATCH (a) WHERE (a)");
            for (uint32_t i = 0; i < n; i++) tput(&b, "-[:R]->()");
            tput(&b, form == 2 ? " RETURN a" : form == 0 ? " RETURN a" : "");
            if (n > QUIVER_QUERY_PATH_RELS_COUNT_MAX) refused_everywhere(t, b.p, b.len, want);
            else admitted(b.p, b.len);
            free(b.p);
        }
    }
    /* parts of a MATCH */
    snprintf(want, sizeof want, "ERR MATCH pattern with more than %u parts (the limit)", QUIVER_QUERY_MATCH_PARTS_COUNT_MAX);
    for (uint32_t n = QUIVER_QUERY_MATCH_PARTS_COUNT_MAX; n <= QUIVER_QUERY_MATCH_PARTS_COUNT_MAX + 1; n++) {
        txt b = {NULL, 0, 0};
        tput(&b, "MATCH ");
        for (uint32_t i = 0; i < n; i++) tput(&b, "%s(a%u:L)", i ? ", " : "", i);
        tput(&b, " RETURN a0");
        if (n > QUIVER_QUERY_MATCH_PARTS_COUNT_MAX) refused_everywhere(t, b.p, b.len, want);
        else admitted(b.p, b.len);
        free(b.p);
    }
    /* parts of a CREATE */
    snprintf(want, sizeof want, "ERR CREATE pattern with more than %u parts (the limit)", QUIVER_QUERY_CREATE_PARTS_COUNT_MAX);
    txt b = {NULL, 0, 0};
    tput(&b, "CREATE ");
    for (uint32_t i = 0; i <= QUIVER_QUERY_CREATE_PARTS_COUNT_MAX; i++) tput(&b, "%s()", i ? "," : "");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
}

static void test_literals_and_items(void **state) {
    tq *t = *state;
    char want[128];
    snprintf(want, sizeof want, "ERR ORDER BY with more than %u items (the limit)", QUIVER_QUERY_SORT_ITEMS_COUNT_MAX);
    txt b = {NULL, 0, 0};
    tput(&b, "WITH 1 AS x RETURN x ORDER BY ");
    for (uint32_t i = 0; i <= QUIVER_QUERY_SORT_ITEMS_COUNT_MAX; i++) tput(&b, "%sx", i ? ", " : "");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
    snprintf(want, sizeof want, "ERR RETURN or WITH with more than %u aggregates (the limit)",
             QUIVER_QUERY_AGGREGATES_COUNT_MAX);
    b = (txt){NULL, 0, 0};
    tput(&b, "UNWIND [1, 2] AS x RETURN [");
    for (uint32_t i = 0; i <= QUIVER_QUERY_AGGREGATES_COUNT_MAX; i++) tput(&b, "%scount(x)", i ? ", " : "");
    tput(&b, "] AS l");
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
    /* map literals: at most QUIVER_VALUE_MAP_COUNT_MAX entries (maps compare
     * in quadratic time); repeated keys keep the first position, last value */
    TQ_READ_EQ(t, "RETURN {a: 1, b: 2, a: 3} AS m, size(keys({x: 1, x: 2})) AS n", "{a: 3, b: 2}|1\n");
    snprintf(want, sizeof want, "ERR map literal with more than %u entries (the limit)", QUIVER_VALUE_MAP_COUNT_MAX);
    for (int form = 0; form < 2; form++) {
        b = (txt){NULL, 0, 0};
        tput(&b, form == 0 ? "RETURN size(keys({" : "CYPHER m={");
        for (uint32_t i = 0; i <= QUIVER_VALUE_MAP_COUNT_MAX; i++) tput(&b, "%sk%u: %u", i ? ", " : "", i, i);
        tput(&b, form == 0 ? "})) AS n" : "} RETURN size(keys($m)) AS n");
        refused_everywhere(t, b.p, b.len, want);
        free(b.p);
    }
    /* nesting: a limit too, with its value */
    b = (txt){NULL, 0, 0};
    tput(&b, "RETURN ");
    for (uint32_t i = 0; i < 300; i++) tput(&b, "(");
    tput(&b, "1");
    for (uint32_t i = 0; i < 300; i++) tput(&b, ")");
    snprintf(want, sizeof want, "ERR query is nested too deeply (the limit is %u levels)", QUIVER_QUERY_AST_DEPTH_MAX);
    refused_everywhere(t, b.p, b.len, want);
    free(b.p);
}

/* Admission finds what planning finds, with no storage at all. */
static void test_admission_semantics(void **state) {
    (void)state;
    bool writes = false;
    assert_null(admit("CREATE (:P {name: 'a'})", 23, &writes));
    assert_true(writes);
    assert_null(admit("MATCH (n:Nowhere) WHERE n.x > 1 RETURN n", 40, &writes));
    assert_false(writes);
    /* a read is only classified (its reader plans it) */
    writes = true;
    char *ok = admit("MATCH (n) RETURN m", 18, &writes);
    assert_null(ok);
    assert_false(writes);
    const char *cases[][2] = {
        {"MATCH (n) SET n.y = 1 RETURN m", "m not defined"},
        {"CREATE (n) RETURN nope(1)", "Unknown function 'nope'"},
        {"MATCH (n) SET n.x = count(n)", "Invalid use of aggregating function"},
        {"CREATE (a)-[:R]-(b)", "Only directed relationships are supported in CREATE"},
        {"CREATE (n) RETURN n UNION CREATE (m) RETURN m", "same column names"},
        {"CREATE (n) SET n.x = 'a' =~ '(('", "ERR invalid regular expression '((': missing closing parenthesis at offset 2"},
        {"MATCH (n RETURN n", "line 1, column 10"},
        {NULL, "ERR value nested deeper than 64 levels (the limit)"},
    };
    /* CYPHER parameters are values: 70 nested lists are too deep */
    char deep[256];
    size_t o = (size_t)sprintf(deep, "CYPHER p=");
    for (int i = 0; i < 70; i++) deep[o++] = '[';
    deep[o++] = '1';
    for (int i = 0; i < 70; i++) deep[o++] = ']';
    sprintf(deep + o, " CREATE (n) RETURN $p");
    cases[sizeof cases / sizeof cases[0] - 1][0] = deep;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e = admit(cases[i][0], strlen(cases[i][0]), NULL);
        if (e == NULL || strstr(e, cases[i][1]) == NULL) fail_msg("%s: %s (want %s)", cases[i][0], e ? e : "admitted", cases[i][1]);
        free(e);
    }
}

/* `quiver import`'s shape with 1,000,000 rows, and a CREATE of 20,000
 * parts, are admitted; a 5,000-row batch also runs within the default work
 * budget. */
static void test_bulk_statements_pass(void **state) {
    tq *t = *state;
    txt b = {NULL, 0, 0};
    tput(&b, "CYPHER rows=[");
    for (uint32_t i = 0; i < 1000000; i++) tput(&b, "%s[%u,'n%u',%u.5]", i ? "," : "", i, i, i);
    tput(&b, "] UNWIND $rows AS r CREATE (n:L {a: r[0], b: r[1], c: r[2]}) RETURN id(n)");
    admitted(b.p, b.len);
    free(b.p);

    b = (txt){NULL, 0, 0};
    tput(&b, "CREATE ");
    for (uint32_t i = 0; i < 20000; i++) tput(&b, "%s(p%u:P {name: 'p%u', n: %u})", i ? ", " : "", i, i, i);
    for (uint32_t i = 0; i + 1 < 20000; i += 2) tput(&b, ", (p%u)-[:K]->(p%u)", i, i + 1);
    admitted(b.p, b.len);
    query_request req = tq_req(t, b.p);
    req.text_len = b.len;
    req.work_max = QUIVER_WRITE_WORK_MAX_DEFAULT;
    query_result *r = tq_write_req(t, &req);
    if (r->status != QUERY_OK) fail_msg("%s", r->error);
    assert_int_equal(r->stats.nodes_created, 20000);
    assert_int_equal(r->stats.relationships_created, 10000);
    query_result_free(r);
    free(b.p);

    b = (txt){NULL, 0, 0};
    tput(&b, "CYPHER rows=[");
    for (uint32_t i = 0; i < 5000; i++) tput(&b, "%s[%u,'name %u',%u.25,true,'x']", i ? "," : "", i, i, i);
    tput(&b, "] UNWIND $rows AS r CREATE (n:I {a: r[0], b: r[1], c: r[2], d: r[3], e: r[4]}) RETURN id(n)");
    req = tq_req(t, b.p);
    req.text_len = b.len;
    req.work_max = QUIVER_WRITE_WORK_MAX_DEFAULT;
    r = tq_write_req(t, &req);
    if (r->status != QUERY_OK) fail_msg("%s", r->error);
    assert_int_equal(r->row_count, 5000);
    /* "easily": well under a tenth of the budget */
    if (r->work * 10 > QUIVER_WRITE_WORK_MAX_DEFAULT) fail_msg("a 5,000-row batch used %llu units", (unsigned long long)r->work);
    query_result_free(r);
    free(b.p);
}

/* More than 63 new variables in one MATCH (the planner's readiness masks
 * have 64 bits): filters on the late ones still wait until they are bound,
 * and a late node met again is checked, not rebound. */
static void test_wide_patterns(void **state) {
    tq *t = *state;
    tq_exec(t, "UNWIND range(0, 79) AS i CREATE (:C {i: i})");
    tq_exec(t, "MATCH (a:C), (b:C) WHERE b.i = a.i + 1 CREATE (a)-[:R]->(b)");
    tq_exec(t, "MATCH (a:C {i: 79}), (b:C {i: 0}) CREATE (a)-[:R]->(b)");
    tq_exec(t, "MATCH (a:C), (b:C) WHERE b.i = a.i + 1 CREATE (a)-[:S]->(b)");
    txt b = {NULL, 0, 0};
    tput(&b, "MATCH (n0:C {i: 0})");
    for (int i = 1; i < 80; i++) tput(&b, "-[:R]->(n%d)", i);
    tput(&b, " WHERE n79.i = 79 AND n70.i = 70 RETURN n79.i, n64.i");
    admitted(b.p, b.len);
    query_request req = tq_req(t, b.p);
    query_result *r = tq_read_req(t, &req);
    char *s = tq_text(r);
    assert_string_equal(s, "79|64\n");
    free(s);
    query_result_free(r);
    free(b.p);
    /* second parts between late nodes that are already bound: checked */
    const char *tails[][2] = {{", (n79)-[:R]->(m), (n74)-[:S]->(n75) WHERE m = n0 RETURN m.i, n75.i", "0|75\n"},
                              {", (n74)-[:S]->(n76) RETURN n76.i", ""},
                              {", (n70)-[:S]->(x)-[:S]->(n72) RETURN x.i", "71\n"}};
    for (size_t k = 0; k < sizeof tails / sizeof tails[0]; k++) {
        b = (txt){NULL, 0, 0};
        tput(&b, "MATCH (n0:C {i: 0})");
        for (int i = 1; i < 80; i++) tput(&b, "-[:R]->(n%d)", i);
        tput(&b, "%s", tails[k][0]);
        req = tq_req(t, b.p);
        r = tq_read_req(t, &req);
        s = tq_text(r);
        if (strcmp(s, tails[k][1]) != 0) fail_msg("%s: got '%s'", tails[k][0], s);
        free(s);
        query_result_free(r);
        free(b.p);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_clauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operators, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expression_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patterns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literals_and_items, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admission_semantics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bulk_statements_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wide_patterns, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

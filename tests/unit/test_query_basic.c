/*
 * test_query_basic.c -- end-to-end: CREATE nodes and relationships, MATCH
 * them back with labels, property maps, WHERE, directions and chains;
 * statistics; results that outlive their view.
 */
#include "test_query_util.h"

static int setup(void **state) {
    *state = tq_open();
    return 0;
}

static int teardown(void **state) {
    tq_close(*state);
    return 0;
}

static void test_create_and_match(void **state) {
    tq *t = *state;
    query_stats s = tq_exec(t, "CREATE (:Person {name: 'Alice', age: 30}), (:Person {name: 'Bob', age: 25})");
    assert_int_equal(s.nodes_created, 2);
    assert_int_equal(s.labels_added, 1); /* one label schema created */
    assert_int_equal(s.properties_set, 4);
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.name, p.age ORDER BY p.name", "Alice|30\nBob|25\n");
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Bob'}) RETURN p", "(:Person {name: Bob, age: 25})\n");
    TQ_READ_EQ(t, "MATCH (p:Person) WHERE p.age > 26 RETURN p.name", "Alice\n");
    TQ_READ_EQ(t, "MATCH (p:Nope) RETURN p", "");
    TQ_READ_EQ(t, "MATCH (p) RETURN count(p)", "2\n");
}

static void test_relationships(void **state) {
    tq *t = *state;
    query_stats s = tq_exec(t, "CREATE (a:P {n: 1})-[:KNOWS {since: 2000}]->(b:P {n: 2})-[:KNOWS]->(c:P {n: 3}), (c)-[:LIKES]->(a)");
    assert_int_equal(s.nodes_created, 3);
    assert_int_equal(s.relationships_created, 3);
    assert_int_equal(s.properties_set, 4);
    TQ_READ_EQ(t, "MATCH (a:P)-[r:KNOWS]->(b:P) RETURN a.n, r.since, b.n ORDER BY a.n", "1|2000|2\n2|null|3\n");
    TQ_READ_EQ(t, "MATCH (a:P)<-[:KNOWS]-(b) RETURN a.n, b.n ORDER BY a.n", "2|1\n3|2\n");
    TQ_READ_EQ(t, "MATCH (a {n: 1})-[]-(b) RETURN b.n ORDER BY b.n", "2\n3\n");
    TQ_READ_EQ(t, "MATCH (a {n: 1})-[:KNOWS]->()-[:KNOWS]->(c) RETURN c.n", "3\n");
    TQ_READ_EQ(t, "MATCH (a)-[:KNOWS|LIKES]->(b) RETURN a.n, b.n ORDER BY a.n", "1|2\n2|3\n3|1\n");
    TQ_READ_EQ(t, "MATCH (a)-[r]->(b) RETURN type(r) ORDER BY type(r)", "KNOWS\nKNOWS\nLIKES\n");
    /* shared variables across comma-separated paths */
    TQ_READ_EQ(t, "MATCH (a)-[:KNOWS]->(b), (b)-[:KNOWS]->(c) RETURN a.n, c.n", "1|3\n");
    /* a cycle closes with Expand Into */
    TQ_READ_EQ(t, "MATCH (a)-[:KNOWS]->(b)-[:KNOWS]->(c)-[:LIKES]->(a) RETURN a.n, b.n, c.n", "1|2|3\n");
    /* relationship uniqueness inside one MATCH */
    TQ_READ_EQ(t, "MATCH (a {n: 1})-[r1]-(b)-[r2]-(c) RETURN b.n, c.n ORDER BY b.n", "2|3\n3|2\n");
    TQ_READ_EQ(t, "MATCH (a)-[r:KNOWS {since: 2000}]->(b) RETURN b.n", "2\n");
    TQ_READ_EQ(t, "MATCH (a:P)-[r]->(b) WHERE a.n = 3 RETURN r", "[:LIKES]\n");
    TQ_READ_EQ(t, "MATCH p = (a {n: 1})-[:KNOWS]->(b) RETURN p, length(p)",
               "<(:P {n: 1})[:KNOWS {since: 2000}](:P {n: 2})>|1\n");
}

static void test_where_logic(void **state) {
    tq *t = *state;
    tq_exec(t, "UNWIND range(1, 6) AS i CREATE (:N {i: i, s: 'x' + toString(i), odd: i % 2 = 1})");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.i >= 2 AND n.i < 4 RETURN n.i ORDER BY n.i", "2\n3\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.i = 1 OR n.i = 6 RETURN n.i ORDER BY n.i", "1\n6\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.odd XOR n.i > 3 RETURN n.i ORDER BY n.i", "1\n3\n4\n6\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE NOT n.odd RETURN n.i ORDER BY n.i DESC", "6\n4\n2\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.i IN [2, 5, 9] RETURN n.i ORDER BY n.i", "2\n5\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.s STARTS WITH 'x' AND n.s ENDS WITH '3' RETURN n.s", "x3\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.s CONTAINS '4' RETURN n.i", "4\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.missing IS NULL AND n.i = 1 RETURN n.i", "1\n");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.missing IS NOT NULL RETURN n.i", "");
    TQ_READ_EQ(t, "MATCH (n:N) WHERE n.missing = 1 OR n.i = 2 RETURN n.i", "2\n");
    TQ_READ_EQ(t, "MATCH (n) WHERE n:N AND n.i = 3 RETURN labels(n)", "[N]\n");
    TQ_READ_EQ(t, "RETURN null AND false, null OR true, null XOR true, NOT null", "false|true|null|null\n");
}

static void test_errors(void **state) {
    tq *t = *state;
    char *e = tq_error(t, "MATCH (n) RETURN m", false, QUERY_ERR_SEMANTIC);
    assert_string_equal(e, "m not defined");
    free(e);
    e = tq_error(t, "MATCH (n) RETRN n", false, QUERY_ERR_SYNTAX);
    free(e);
    e = tq_error(t, "RETURN 1 + 'a' + {a: 1}", false, QUERY_ERR_RUNTIME);
    free(e);
    e = tq_error(t, "RETURN toUpper(1)", false, QUERY_ERR_RUNTIME);
    assert_string_equal(e, "Type mismatch: expected String or Null but was Integer");
    free(e);
    e = tq_error(t, "RETURN 9223372036854775807 + 1", false, QUERY_ERR_RUNTIME);
    free(e);
    e = tq_error(t, "RETURN 1 / 0", false, QUERY_ERR_RUNTIME);
    assert_string_equal(e, "Division by zero");
    free(e);
    TQ_READ_EQ(t, "RETURN 1.0 / 0, 7 / 2, 7.0 / 2, 7 % 3", "inf|3|3.5|1\n");
    e = tq_error(t, "MATCH (n) WHERE count(n) > 1 RETURN n", false, QUERY_ERR_SEMANTIC);
    free(e);
    e = tq_error(t, "CREATE (n)", false, QUERY_ERR_READ_ONLY);
    free(e);
    /* a failing write has no effect */
    e = tq_error(t, "CREATE (:Z) WITH 1 AS x RETURN x / 0", true, QUERY_ERR_RUNTIME);
    free(e);
    TQ_READ_EQ(t, "MATCH (z:Z) RETURN count(z)", "0\n");
}

static void test_read_only_and_missing_graph(void **state) {
    tq *t = *state;
    query_request req = tq_req(t, "MATCH (n) RETURN n");
    req.graph = "missing";
    req.graph_len = 7;
    query_result *r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->row_count, 0);
    query_result_free(r);
    req.read_only = true;
    r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_NO_GRAPH);
    assert_string_equal(r->error, "Invalid graph operation on empty key");
    query_result_free(r);
    tq_exec(t, "CREATE (:A)");
    query_request w = tq_req(t, "CREATE (:A)");
    w.read_only = true;
    r = tq_read_req(t, &w);
    assert_int_equal(r->status, QUERY_ERR_READ_ONLY);
    assert_string_equal(r->error, "graph.RO_QUERY is to be executed only on read-only queries");
    query_result_free(r);
    bool writes;
    char err[256];
    assert_int_equal(query_classify("MATCH (n) RETURN n", 18, &writes, err, sizeof err), 0);
    assert_false(writes);
    assert_int_equal(query_classify("MATCH (n) SET n.x = 1", 21, &writes, err, sizeof err), 0);
    assert_true(writes);
    assert_int_equal(query_classify("MATCH (n RETURN n", 17, &writes, err, sizeof err), -1);
}

/* The per-thread query arena is reused from one statement to the next and
 * query_classify remembers recent texts: a result must stay intact while
 * later statements run (it lives in its own arena), a statement after a big
 * one must see a clean arena, and a remembered classification must be the
 * one of exactly that text (errors are never remembered). */
static void test_repeated_statements(void **state) {
    tq *t = *state;
    tq_exec(t, "CREATE (:R {name: 'x', tags: ['a', 'b']})-[:T {w: 1.5}]->(:R {name: 'y'})");
    const char *q1 = "MATCH p = (a:R {name: 'x'})-[e:T]->(b) RETURN a, e, b, p, a.tags, {k: b.name}";
    query_result *r1 = tq_read(t, q1);
    char *want = tq_text(r1);
    /* other statements on this thread, one of them big, one failing */
    TQ_READ_EQ(t, "UNWIND range(1, 20000) AS i WITH i WHERE i % 7 = 0 RETURN count(i), sum(i)", "2857|28578571\n");
    char *e = tq_error(t, "RETURN nope(1)", false, QUERY_ERR_SEMANTIC);
    free(e);
    query_result *r2 = tq_read(t, q1);
    char *again = tq_text(r2);
    char *still = tq_text(r1);
    assert_string_equal(again, want);
    assert_string_equal(still, want);
    free(again);
    free(still);
    free(want);
    query_result_free(r2);
    query_result_free(r1);
    /* classification: hits, misses, same-length texts, syntax errors */
    const char *texts[] = {"MATCH (n) RETURN n", "CREATE (n) RETURN n", "MATCH (n) RETURN m", "MERGE (n) RETURN n",
                           "MATCH (n) SET n.a = 1", "RETURN 1"};
    const bool writes_want[] = {false, true, false, true, true, false};
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 6; i++) {
            bool w = !writes_want[i];
            char err[128];
            assert_int_equal(query_classify(texts[i], strlen(texts[i]), &w, err, sizeof err), 0);
            assert_int_equal(w, writes_want[i]);
        }
    for (int round = 0; round < 2; round++) {
        char err[128] = "";
        bool w = false;
        assert_int_equal(query_classify("MATCH (n RETURN n", 17, &w, err, sizeof err), -1);
        assert_non_null(strstr(err, "line 1"));
    }
    /* a prefix of a remembered text is a different text */
    bool w = false;
    char err[128] = "";
    assert_int_equal(query_classify("RETURN 1", 6, &w, err, sizeof err), -1); /* "RETURN" alone */
    assert_non_null(strstr(err, "line 1"));
}

static void test_limits_and_timeouts(void **state) {
    tq *t = *state;
    char *e = tq_error(t, "RETURN size(range(1, 100000000))", false, QUERY_ERR_LIMIT);
    assert_non_null(strstr(e, "List exceeds the maximum"));
    free(e);
    /* a read that would run for a long time stops at its timeout ... */
    query_request req = tq_req(t, "UNWIND range(1, 10000000) AS x WITH x WHERE x % 7 = 100 RETURN count(x)");
    req.timeout_ms = 1;
    query_result *r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_TIMEOUT);
    query_result_free(r);
    /* ... while a write ignores it (it must finish identically everywhere) */
    req = tq_req(t, "UNWIND range(1, 200000) AS x WITH x WHERE x % 7 = 100 RETURN count(x)");
    req.timeout_ms = 1;
    r = tq_write_req(t, &req);
    assert_int_equal(r->status, QUERY_OK);
    query_result_free(r);
    /* undefined things */
    e = tq_error(t, "CALL db.labels() YIELD nope RETURN nope", false, QUERY_ERR_SEMANTIC);
    free(e);
    e = tq_error(t, "MATCH (n) RETURN count(count(n))", false, QUERY_ERR_SEMANTIC);
    free(e);
    e = tq_error(t, "RETURN toUpper('a', 'b')", false, QUERY_ERR_SEMANTIC);
    free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_match, setup, teardown),
        cmocka_unit_test_setup_teardown(test_relationships, setup, teardown),
        cmocka_unit_test_setup_teardown(test_where_logic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_and_missing_graph, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_statements, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_timeouts, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_query_traverse.c -- end-to-end: variable-length relationships
 * (bounds, type alternatives, relationship property maps, no repeated
 * relationship in a path), the distinct-end-node BFS on a graph with
 * exponentially many paths (a ladder of 60 diamonds: 2^60 paths, which
 * enumeration would never finish), property indexes (DDL, equality / IN /
 * range seeks, EXPLAIN), timeouts, and EXPLAIN never executing.
 */
#include "test_query_util.h"
#include "query/engine.h" /* QUERY_VARLEN_PATH_HOPS_MAX */

static int setup(void **state) {
    *state = tq_open();
    return 0;
}

static int teardown(void **state) {
    tq_close(*state);
    return 0;
}

static void test_varlen(void **state) {
    tq *t = *state;
    /* a -> b -> c -> d, plus a -[:OTHER]-> d, and b -[:A {w: 0}]-> e */
    tq_exec(t, "CREATE (a:V {n: 'a'})-[:A {w: 1}]->(b:V {n: 'b'})-[:B {w: 1}]->(c:V {n: 'c'})-[:A {w: 1}]->(d:V {n: 'd'}),"
               " (a)-[:OTHER]->(d), (b)-[:A {w: 0}]->(e:V {n: 'e'})");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*]->(x) RETURN x.n ORDER BY x.n", "b\nc\nd\nd\ne\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*2]->(x) RETURN x.n ORDER BY x.n", "c\ne\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*2..]->(x) RETURN x.n ORDER BY x.n", "c\nd\ne\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*..1]->(x) RETURN x.n ORDER BY x.n", "b\nd\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*0..1]->(x) RETURN x.n ORDER BY x.n", "a\nb\nd\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[:A|B*]->(x) RETURN x.n ORDER BY x.n", "b\nc\nd\ne\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[:A*]->(x) RETURN x.n ORDER BY x.n", "b\ne\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*1.. {w: 1}]->(x) RETURN x.n ORDER BY x.n", "b\nc\nd\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[r*]->(x:V {n: 'd'}) RETURN size(r) ORDER BY size(r)", "1\n3\n");
    TQ_READ_EQ(t, "MATCH p = (a:V {n: 'a'})-[*3]->(x) RETURN length(p), [n IN nodes(p) | n.n]", "3|[a, b, c, d]\n");
    TQ_READ_EQ(t, "MATCH (x:V {n: 'd'})<-[*]-(y) RETURN DISTINCT y.n ORDER BY y.n", "a\nb\nc\n");
    TQ_READ_EQ(t, "MATCH (x:V {n: 'c'})-[*1..2]-(y) RETURN DISTINCT y.n ORDER BY y.n", "a\nb\nd\ne\n");
    /* undirected, no relationship twice: a-b-a is not a path */
    TQ_READ_EQ(t, "MATCH (x:V {n: 'e'})-[*2]-(y) RETURN y.n ORDER BY y.n", "a\nc\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'}), (d:V {n: 'd'}) WHERE (a)-[*]->(d) RETURN 'yes'", "yes\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*]->(x) RETURN count(DISTINCT x)", "4\n");
    /* DISTINCT after a row-counting aggregate must still count every path */
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*]->(x:V {n: 'd'}) RETURN DISTINCT x.n, count(*)", "d|2\n");
    TQ_READ_EQ(t, "MATCH (a:V {n: 'a'})-[*]->(x) RETURN min(x.n), max(x.n), collect(DISTINCT x.n) = collect(DISTINCT x.n)", "b|e|true\n");
}

/* 60 diamonds in a row: s -> (u_i, v_i) -> j_i -> ... : 2^60 paths. */
static void test_bfs_ladder(void **state) {
    tq *t = *state;
    tq_exec(t, "CREATE (:J {i: 0, name: 'start'})");
    tq_exec(t, "UNWIND range(1, 60) AS i CREATE (:J {i: i})");
    tq_exec(t, "MATCH (a:J), (b:J) WHERE b.i = a.i + 1 CREATE (a)-[:DEPENDS_ON]->(:M)-[:DEPENDS_ON]->(b),"
               " (a)-[:DEPENDS_ON]->(:M)-[:DEPENDS_ON]->(b)");
    TQ_READ_EQ(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*]->(b:J) RETURN count(DISTINCT b)", "60\n");
    TQ_READ_EQ(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*]->(b) RETURN count(DISTINCT b)", "180\n");
    TQ_READ_EQ(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*]->(b:J) RETURN DISTINCT b.i ORDER BY b.i DESC LIMIT 2", "60\n59\n");
    TQ_READ_EQ(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*1..4]->(b:J) RETURN DISTINCT b.i ORDER BY b.i", "1\n2\n");
    TQ_READ_EQ(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*]->(b:J) WITH DISTINCT b RETURN max(b.i)", "60\n");
    TQ_READ_EQ(t, "MATCH (a:J {i: 60}) WHERE (:J {name: 'start'})-[:DEPENDS_ON*]->(a) RETURN a.i", "60\n");
    query_request req = tq_req(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*]->(b) RETURN DISTINCT b.name");
    req.explain = true;
    query_result *r = tq_read_req(t, &req);
    char *s = tq_text(r);
    assert_non_null(strstr(s, "Conditional Variable Length Traverse"));
    free(s);
    query_result_free(r);
    /* enumeration of the same pattern stops at the timeout instead of running for ever */
    req = tq_req(t, "MATCH (a {name: 'start'})-[:DEPENDS_ON*]->(b) RETURN count(b)");
    req.timeout_ms = 50;
    r = tq_read_req(t, &req);
    assert_int_equal(r->status, QUERY_ERR_TIMEOUT);
    assert_string_equal(r->error, "Query timed out");
    query_result_free(r);
}

/* Variable-length patterns past the old 1024-hop cap: exact answers, and
 * past the path-enumeration safety limit an error, never a truncated one. */
static void tq_chain(tq *t, const char *label, int n) {
    char q[256];
    snprintf(q, sizeof q, "CREATE INDEX FOR (c:%s) ON (c.i)", label);
    tq_exec(t, q);
    snprintf(q, sizeof q, "UNWIND range(0, %d) AS i CREATE (:%s {i: i})", n - 1, label);
    tq_exec(t, q);
    snprintf(q, sizeof q, "UNWIND range(1, %d) AS i MATCH (a:%s {i: i - 1}), (b:%s {i: i}) CREATE (a)-[:N]->(b)",
             n - 1, label, label);
    query_stats s = tq_exec(t, q);
    assert_int_equal(s.relationships_created, (uint64_t)(n - 1));
}

static void test_varlen_long_chain(void **state) {
    tq *t = *state;
    tq_chain(t, "Ch", 1500);
    TQ_READ_EQ(t, "MATCH (:Ch {i: 0})-[:N*]->(x) RETURN count(DISTINCT x)", "1499\n");
    TQ_READ_EQ(t, "MATCH (:Ch {i: 0})-[:N*]->(x) RETURN count(x)", "1499\n");
    TQ_READ_EQ(t, "MATCH (:Ch {i: 0})-[:N*1100..1200]->(x) RETURN count(x), min(x.i), max(x.i)", "101|1100|1200\n");
    TQ_READ_EQ(t, "MATCH (:Ch {i: 0})-[:N*1100..1200]->(x) RETURN count(DISTINCT x)", "101\n");
    TQ_READ_EQ(t, "MATCH p = (:Ch {i: 0})-[:N*]->(:Ch {i: 1499}) RETURN length(p)", "1499\n");
    TQ_READ_EQ(t, "MATCH (:Ch {i: 1499})<-[:N*1498..]-(x) RETURN x.i ORDER BY x.i", "0\n1\n");
    TQ_READ_EQ(t, "MATCH (:Ch {i: 0})-[:N*1500..]->(x) RETURN count(x)", "0\n");
}

static void test_varlen_hop_limit(void **state) {
    tq *t = *state;
    int n = (int)QUERY_VARLEN_PATH_HOPS_MAX + 64;
    tq_chain(t, "Lg", n);
    char want[64];
    snprintf(want, sizeof want, "%d\n", n - 1);
    /* distinct end nodes: breadth-first, no hop limit at all */
    TQ_READ_EQ(t, "MATCH (:Lg {i: 0})-[:N*]->(x) RETURN count(DISTINCT x)", want);
    /* path enumeration deeper than the safety limit: a clear error */
    char *e = tq_error(t, "MATCH (:Lg {i: 0})-[:N*]->(x) RETURN count(x)", false, QUERY_ERR_LIMIT);
    char msg[96];
    snprintf(msg, sizeof msg, "variable-length pattern exceeds %u hops", QUERY_VARLEN_PATH_HOPS_MAX);
    assert_non_null(strstr(e, msg));
    free(e);
    /* a bound within the limit is honoured exactly */
    TQ_READ_EQ(t, "MATCH (:Lg {i: 0})-[:N*65000..65010]->(x) RETURN count(x), min(x.i)", "11|65000\n");
}

static void test_index(void **state) {
    tq *t = *state;
    tq_exec(t, "UNWIND range(1, 200) AS i CREATE (:Package {name: 'p' + toString(i), size: i})");
    query_stats s = tq_exec(t, "CREATE INDEX FOR (p:Package) ON (p.name)");
    assert_int_equal(s.indices_created, 1);
    s = tq_exec(t, "CREATE INDEX ON :Package(size)");
    assert_int_equal(s.indices_created, 1);
    char *e = tq_error(t, "CREATE INDEX ON :Package(size)", true, QUERY_ERR_RUNTIME);
    free(e);
    TQ_READ_EQ(t, "MATCH (p:Package {name: 'p17'}) RETURN p.size", "17\n");
    TQ_READ_EQ(t, "CYPHER n='p42' MATCH (p:Package {name: $n}) RETURN p", "(:Package {name: p42, size: 42})\n");
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE p.name = 'p3' RETURN p.size", "3\n");
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE p.name IN ['p5', 'p6', 'nope', 'p5'] RETURN p.size ORDER BY p.size", "5\n6\n");
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE p.size > 197 RETURN p.size ORDER BY p.size", "198\n199\n200\n");
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE p.size >= 10 AND p.size < 13 RETURN p.size ORDER BY p.size", "10\n11\n12\n");
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE 3 >= p.size RETURN p.size ORDER BY p.size", "1\n2\n3\n");
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE p.size = 2.0 RETURN p.name", "p2\n");
    const char *plans[] = {
        "MATCH (p:Package {name: 'p17'}) RETURN p",
        "MATCH (p:Package) WHERE p.name IN ['a'] RETURN p",
        "MATCH (p:Package) WHERE p.size < 5 RETURN p",
    };
    for (size_t i = 0; i < 3; i++) {
        query_request req = tq_req(t, plans[i]);
        req.explain = true;
        query_result *r = tq_read_req(t, &req);
        char *x = tq_text(r);
        if (!strstr(x, "Node By Index Scan | (p:Package)")) fprintf(stderr, "%s\n", x);
        assert_non_null(strstr(x, "Results\n    Project\n        Node By Index Scan | (p:Package)\n"));
        free(x);
        query_result_free(r);
    }
    query_request req = tq_req(t, "MATCH (p:Package) WHERE p.other = 1 RETURN p");
    req.explain = true;
    query_result *r = tq_read_req(t, &req);
    char *x = tq_text(r);
    assert_string_equal(x, "Results\n    Project\n        Filter\n            Node By Label Scan | (p:Package)\n");
    free(x);
    query_result_free(r);
    /* a label given in WHERE drives the index too */
    req = tq_req(t, "MATCH (p) WHERE p:Package AND p.name = 'p9' RETURN p.size");
    r = tq_read_req(t, &req);
    x = tq_text(r);
    assert_string_equal(x, "9\n");
    free(x);
    query_result_free(r);
    req.explain = true;
    r = tq_read_req(t, &req);
    x = tq_text(r);
    assert_non_null(strstr(x, "Node By Index Scan | (p:Package)"));
    free(x);
    query_result_free(r);
    /* two-hop expansion from an indexed node */
    tq_exec(t, "MATCH (a:Package {name: 'p1'}), (b:Package {name: 'p2'}), (c:Package {name: 'p3'}) CREATE (a)-[:DEP]->(b)-[:DEP]->(c)");
    TQ_READ_EQ(t, "MATCH (a:Package {name: 'p1'})-[:DEP]->()-[:DEP]->(c) RETURN c.name", "p3\n");
    TQ_READ_EQ(t, "CALL db.indexes() YIELD label, properties RETURN label, properties", "Package|[name]\nPackage|[size]\n");
    s = tq_exec(t, "DROP INDEX ON :Package(size)");
    assert_int_equal(s.indices_deleted, 1);
    e = tq_error(t, "DROP INDEX ON :Package(size)", true, QUERY_ERR_RUNTIME);
    free(e);
    TQ_READ_EQ(t, "MATCH (p:Package) WHERE p.size < 3 RETURN p.size ORDER BY p.size", "1\n2\n");
}

static void test_explain_does_not_execute(void **state) {
    tq *t = *state;
    query_request req = tq_req(t, "CREATE (:Never {x: 1})");
    req.explain = true;
    query_result *r = tq_write_req(t, &req);
    assert_int_equal(r->status, QUERY_OK);
    char *x = tq_text(r);
    assert_non_null(strstr(x, "Create"));
    free(x);
    assert_int_equal(r->stats.nodes_created, 0);
    query_result_free(r);
    TQ_READ_EQ(t, "MATCH (n:Never) RETURN count(n)", "0\n");
    req = tq_req(t, "CREATE INDEX ON :Never(x)");
    req.explain = true;
    r = tq_write_req(t, &req);
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->stats.indices_created, 0);
    query_result_free(r);
    TQ_READ_EQ(t, "CALL db.indexes() YIELD label RETURN count(label)", "0\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_varlen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bfs_ladder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_varlen_long_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_varlen_hop_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index, setup, teardown),
        cmocka_unit_test_setup_teardown(test_explain_does_not_execute, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

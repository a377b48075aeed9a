/*
 * test_query_writes.c -- end-to-end: SET (property, = map, += map,
 * labels), REMOVE, DELETE (error on a connected node, twice is fine),
 * DETACH DELETE, MERGE idempotence with ON CREATE / ON MATCH, MERGE of a
 * relationship between bound nodes, import-shaped batches, statistics, and
 * determinism of writes (same statements, same seed -> same digest).
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

static void test_set_remove(void **state) {
    tq *t = *state;
    tq_exec(t, "CREATE (:P {name: 'a', x: 1, y: 2})");
    query_stats s = tq_exec(t, "MATCH (n:P) SET n.x = 10, n.z = 'new'");
    assert_int_equal(s.properties_set, 2);
    TQ_READ_EQ(t, "MATCH (n:P) RETURN n", "(:P {name: a, x: 10, y: 2, z: new})\n");
    s = tq_exec(t, "MATCH (n:P) SET n.y = null");
    assert_int_equal(s.properties_removed, 1);
    s = tq_exec(t, "MATCH (n:P) SET n += {x: 11, w: true}");
    assert_int_equal(s.properties_set, 2);
    TQ_READ_EQ(t, "MATCH (n:P) RETURN n.x, n.w, n.y", "11|true|null\n");
    s = tq_exec(t, "MATCH (n:P) SET n = {name: 'b', k: [1, 2]}");
    TQ_READ_EQ(t, "MATCH (n:P) RETURN n", "(:P {name: b, k: [1, 2]})\n");
    assert_int_equal(s.properties_set, 2);
    assert_int_equal(s.properties_removed, 3);
    s = tq_exec(t, "MATCH (n:P) SET n:Q:R");
    assert_int_equal(s.labels_added, 2);
    TQ_READ_EQ(t, "MATCH (n:Q) RETURN labels(n)", "[P, Q, R]\n");
    s = tq_exec(t, "MATCH (n:P) REMOVE n:Q, n.k");
    assert_int_equal(s.labels_removed, 1);
    assert_int_equal(s.properties_removed, 1);
    TQ_READ_EQ(t, "MATCH (n:P) RETURN n", "(:P:R {name: b})\n");
    s = tq_exec(t, "MATCH (n:P) SET n.copy = n.name + '!' RETURN n.copy");
    TQ_READ_EQ(t, "MATCH (n:P) RETURN n.copy", "b!\n");
    char *e = tq_error(t, "MATCH (n:P) SET n.bad = {a: 1}", true, QUERY_ERR_RUNTIME);
    assert_string_equal(e, "Property values can only be of primitive types or arrays of primitive types");
    free(e);
    TQ_READ_EQ(t, "MATCH (n:P) RETURN n.bad", "null\n");
    /* relationships */
    tq_exec(t, "MATCH (n:P) CREATE (n)-[:R {w: 1}]->(:P {name: 'c'})");
    s = tq_exec(t, "MATCH ()-[r:R]->() SET r.w = r.w + 1, r.v = 'x'");
    assert_int_equal(s.properties_set, 2);
    TQ_READ_EQ(t, "MATCH ()-[r:R]->() RETURN r", "[:R {w: 2, v: x}]\n");
    TQ_WRITE_EQ(t, "MATCH (n:P {name: 'b'}) SET n.i = 5 RETURN n.i", "5\n");
}

static void test_delete(void **state) {
    tq *t = *state;
    tq_exec(t, "CREATE (a:D {n: 1})-[:R]->(b:D {n: 2}), (c:D {n: 3})");
    char *e = tq_error(t, "MATCH (a:D {n: 1}) DELETE a", true, QUERY_ERR_RUNTIME);
    assert_non_null(strstr(e, "because it still has relationships"));
    free(e);
    TQ_READ_EQ(t, "MATCH (n:D) RETURN count(n)", "3\n");
    query_stats s = tq_exec(t, "MATCH (c:D {n: 3}) DELETE c");
    assert_int_equal(s.nodes_deleted, 1);
    s = tq_exec(t, "MATCH (a:D)-[r:R]->(b) DELETE r, a");
    assert_int_equal(s.nodes_deleted, 1);
    assert_int_equal(s.relationships_deleted, 1);
    TQ_READ_EQ(t, "MATCH (n:D) RETURN n.n", "2\n");
    tq_exec(t, "MATCH (b:D) CREATE (b)-[:R]->(:D {n: 4}), (b)-[:R]->(b)");
    s = tq_exec(t, "MATCH (b:D {n: 2}) DETACH DELETE b");
    assert_int_equal(s.nodes_deleted, 1);
    assert_int_equal(s.relationships_deleted, 2);
    TQ_READ_EQ(t, "MATCH (n:D) RETURN n.n", "4\n");
    TQ_READ_EQ(t, "MATCH ()-[r]->() RETURN count(r)", "0\n");
    /* the same node reached twice, deleted once */
    tq_exec(t, "CREATE (:E), (:E)");
    s = tq_exec(t, "MATCH (a:E), (b:E) DELETE a, b");
    assert_int_equal(s.nodes_deleted, 2);
    TQ_READ_EQ(t, "MATCH (n:E) RETURN count(n)", "0\n");
    s = tq_exec(t, "MATCH (n) DETACH DELETE n");
    assert_int_equal(s.nodes_deleted, 1);
    TQ_READ_EQ(t, "MATCH (n) RETURN count(n)", "0\n");
    e = tq_error(t, "WITH 1 AS x DELETE x", true, QUERY_ERR_RUNTIME);
    free(e);
}

static void test_merge(void **state) {
    tq *t = *state;
    query_stats s = tq_exec(t, "MERGE (n:M {k: 1}) ON CREATE SET n.created = true ON MATCH SET n.matched = true");
    assert_int_equal(s.nodes_created, 1);
    s = tq_exec(t, "MERGE (n:M {k: 1}) ON CREATE SET n.created = true ON MATCH SET n.matched = true");
    assert_int_equal(s.nodes_created, 0);
    TQ_READ_EQ(t, "MATCH (n:M) RETURN n.k, n.created, n.matched", "1|true|true\n");
    s = tq_exec(t, "UNWIND [1, 2, 2, 3] AS k MERGE (n:M {k: k})");
    assert_int_equal(s.nodes_created, 2);
    TQ_READ_EQ(t, "MATCH (n:M) RETURN n.k ORDER BY n.k", "1\n2\n3\n");
    s = tq_exec(t, "MATCH (a:M {k: 1}), (b:M {k: 2}) MERGE (a)-[r:LINK]->(b)");
    assert_int_equal(s.relationships_created, 1);
    assert_int_equal(s.nodes_created, 0);
    s = tq_exec(t, "MATCH (a:M {k: 1}), (b:M {k: 2}) MERGE (a)-[r:LINK]->(b)");
    assert_int_equal(s.relationships_created, 0);
    s = tq_exec(t, "MERGE (a:M {k: 1})-[:LINK]->(b:M {k: 9})");
    assert_int_equal(s.nodes_created, 2); /* the whole pattern is created */
    assert_int_equal(s.relationships_created, 1);
    TQ_WRITE_EQ(t, "MERGE (n:M {k: 3}) RETURN n.k", "3\n");
    TQ_READ_EQ(t, "MATCH (n:M) RETURN count(n)", "5\n");
}

/* FalkorDB: "Labels added" counts label schemas created by CREATE/MERGE
 * (once per label new to the graph) but, for SET n:L, labels added to
 * nodes (one per node per label the node did not have). */
static void test_labels_added_stats(void **state) {
    tq *t = *state;
    query_stats s = tq_exec(t, "CREATE (:A), (:A)");
    assert_int_equal(s.labels_added, 1);
    assert_int_equal(s.nodes_created, 2);
    s = tq_exec(t, "CREATE (:A), (:A)");
    assert_int_equal(s.labels_added, 0);
    s = tq_exec(t, "CREATE (:A:B:B)-[:T]->(:C:B)");
    assert_int_equal(s.labels_added, 2); /* B and C */
    s = tq_exec(t, "UNWIND range(1, 5) AS i CREATE (:U {i: i})");
    assert_int_equal(s.labels_added, 1);
    s = tq_exec(t, "MERGE (:M {k: 1})");
    assert_int_equal(s.labels_added, 1);
    s = tq_exec(t, "MERGE (:M {k: 2})");
    assert_int_equal(s.labels_added, 0);
    assert_int_equal(s.nodes_created, 1);
    s = tq_exec(t, "MATCH (n:A) SET n:New");
    assert_int_equal(s.labels_added, 5); /* five A nodes, one label each */
    s = tq_exec(t, "MATCH (n:A) SET n:New:A");
    assert_int_equal(s.labels_added, 0);
    TQ_READ_EQ(t, "CALL db.labels()", "A\nB\nC\nU\nM\nNew\n");
}

static void test_create_variants(void **state) {
    tq *t = *state;
    query_stats s = tq_exec(t, "CYPHER rows=[{name: 'x', v: 1}, {name: 'y', v: 2, w: null}] UNWIND $rows AS r CREATE (n:Pkg) SET n = r");
    assert_int_equal(s.nodes_created, 2);
    assert_int_equal(s.properties_set, 4);
    s = tq_exec(t, "CYPHER rows=[{a: 1, b: 'q'}] UNWIND $rows AS r CREATE (:L {a: r.a, b: r.b, c: r.missing})");
    assert_int_equal(s.properties_set, 2);
    TQ_READ_EQ(t, "MATCH (n:Pkg) RETURN n ORDER BY n.v", "(:Pkg {name: x, v: 1})\n(:Pkg {name: y, v: 2})\n");
    TQ_READ_EQ(t, "MATCH (n:L) RETURN n", "(:L {a: 1, b: q})\n");
    TQ_WRITE_EQ(t, "CREATE (a:X {i: 1})-[r:T]->(b:X {i: 2}) RETURN a.i, type(r), b.i", "1|T|2\n");
    /* SET folded into CREATE keeps SET semantics */
    TQ_WRITE_EQ(t, "CREATE (n:F {a: 1}) SET n = {b: 2} RETURN n", "(:F {b: 2})\n");
    TQ_WRITE_EQ(t, "CREATE (n:G {a: 1, d: 4}) SET n += {a: null, c: 3}, n.d = 5, n:H RETURN n", "(:G:H {d: 5, c: 3})\n");
    TQ_WRITE_EQ(t, "CREATE (n:I {a: 1}) SET n.b = n.a + 1 RETURN n", "(:I {a: 1, b: 2})\n");
    s = tq_exec(t, "CREATE (n:K {a: 1}) SET n = {b: 2, c: null}");
    assert_int_equal(s.nodes_created, 1);
    assert_int_equal(s.properties_set, 1);
    TQ_WRITE_EQ(t, "CREATE p = (:Y)-[:T]->(:Y) RETURN length(p)", "1\n");
    TQ_WRITE_EQ(t, "CREATE (n:Z {t: timestamp()}) RETURN n.t", "1700000000000\n");
    char *e = tq_error(t, "CREATE (a)-[:T]-(b)", true, QUERY_ERR_SYNTAX);
    free(e);
    e = tq_error(t, "MATCH (a:X {i: 1}) CREATE (a:X)", true, QUERY_ERR_SEMANTIC);
    free(e);
    /* MATCH + CREATE of the same label does not loop */
    s = tq_exec(t, "MATCH (n:X) CREATE (:X)");
    assert_int_equal(s.nodes_created, 2);
    TQ_READ_EQ(t, "MATCH (n:X) RETURN count(n)", "4\n");
}

static void digest_of(tq *t, char out[17]) {
    qs_view *v = qs_view_open_snapshot(t->db);
    uint32_t g;
    assert_int_equal(qs_graph_lookup(v, "g", 1, &g), QS_OK);
    assert_int_equal(qs_graph_digest(v, g, out), QS_OK);
    qs_view_close(v);
}

static void test_determinism(void **state) {
    (void)state;
    const char *qs[] = {
        "UNWIND range(1, 50) AS i CREATE (:R {i: i, r: rand(), t: timestamp()})",
        "MATCH (a:R), (b:R) WHERE a.i + 1 = b.i AND a.r < 0.5 CREATE (a)-[:NEXT {w: rand()}]->(b)",
        "MATCH (a:R) WITH a.i % 5 AS k, collect(a) AS l UNWIND l AS n SET n.k = k, n.rr = rand()",
        "MERGE (x:R {i: 1000}) ON CREATE SET x.r = rand()",
        "MATCH (a:R) WHERE a.r > 0.9 DETACH DELETE a",
    };
    char d[2][17];
    for (int round = 0; round < 2; round++) {
        tq *t = tq_open();
        t->seed = 7;
        for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) tq_exec(t, qs[i]);
        digest_of(t, d[round]);
        tq_close(t);
    }
    assert_string_equal(d[0], d[1]);
    /* a different seed gives a different state */
    tq *t = tq_open();
    t->seed = 8;
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) tq_exec(t, qs[i]);
    char other[17];
    digest_of(t, other);
    tq_close(t);
    assert_string_not_equal(d[0], other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_set_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_added_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_variants, setup, teardown),
        cmocka_unit_test(test_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

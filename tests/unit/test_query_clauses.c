/*
 * test_query_clauses.c -- end-to-end: aggregation with implicit grouping and
 * DISTINCT, ORDER BY (nulls last ascending, first descending), SKIP/LIMIT,
 * WITH, UNWIND, parameters, id seek, OPTIONAL MATCH, CASE, UNION,
 * comprehensions.
 */
#include "test_query_util.h"

static int setup(void **state) {
    tq *t = tq_open();
    tq_exec(t,
            "CREATE (a:Person {name: 'Alice', age: 30, city: 'Paris'}),"
            " (b:Person {name: 'Bob', age: 25, city: 'Berlin'}),"
            " (c:Person {name: 'Carol', age: 35, city: 'Paris'}),"
            " (d:Person {name: 'Dan', city: 'Rome'}),"
            " (a)-[:KNOWS]->(b), (a)-[:KNOWS]->(c), (b)-[:KNOWS]->(c)");
    *state = t;
    return 0;
}

static int teardown(void **state) {
    tq_close(*state);
    return 0;
}

static void test_aggregates(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN count(*), count(p.age), sum(p.age), min(p.age), max(p.age), avg(p.age)",
               "4|3|90|25|35|30\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.city, count(*) AS n ORDER BY n DESC, p.city", "Paris|2\nBerlin|1\nRome|1\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN count(DISTINCT p.city), collect(DISTINCT p.city)", "3|[Paris, Berlin, Rome]\n");
    TQ_READ_EQ(t, "MATCH (p:Person) WHERE p.city = 'Paris' RETURN p.city, collect(p.name)", "Paris|[Alice, Carol]\n");
    TQ_READ_EQ(t, "MATCH (p:Nobody) RETURN count(p), sum(p.age), avg(p.age), collect(p), min(p.x)", "0|0|null|[]|null\n");
    TQ_READ_EQ(t, "MATCH (p:Nobody) RETURN p.city, count(p)", "");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN count(*) + 1 AS n, max(p.age) - min(p.age)", "5|10\n");
    TQ_READ_EQ(t, "MATCH (a)-[:KNOWS]->(b) RETURN a.name, count(b) ORDER BY a.name", "Alice|2\nBob|1\n");
    TQ_READ_EQ(t, "MATCH (p:Person) WITH p.city AS city, count(*) AS n WHERE n > 1 RETURN city, n", "Paris|2\n");
    TQ_READ_EQ(t, "UNWIND [1, 2.5, 3] AS x RETURN sum(x), avg(x)", "6.5|2.16667\n");
}

static void test_order_skip_limit(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.age ORDER BY p.age", "25\n30\n35\nnull\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.age ORDER BY p.age DESC", "null\n35\n30\n25\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.name ORDER BY p.name SKIP 1 LIMIT 2", "Bob\nCarol\n");
    TQ_READ_EQ(t, "CYPHER n=1 MATCH (p:Person) RETURN p.name ORDER BY p.name LIMIT $n", "Alice\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.name ORDER BY p.name LIMIT 0", "");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN DISTINCT p.city ORDER BY p.city", "Berlin\nParis\nRome\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.name AS n ORDER BY n DESC LIMIT 1", "Dan\n");
    TQ_READ_EQ(t, "UNWIND [3, 'a', null, 1.5, true, [1]] AS x RETURN x ORDER BY x", "[1]\na\ntrue\n1.5\n3\nnull\n");
    char *e = tq_error(t, "MATCH (p) RETURN p LIMIT -1", false, QUERY_ERR_RUNTIME);
    free(e);
}

static void test_with_unwind_params(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "UNWIND [1, 2, 3] AS x WITH x * 2 AS y WHERE y > 2 RETURN y", "4\n6\n");
    TQ_READ_EQ(t, "UNWIND [] AS x RETURN x", "");
    TQ_READ_EQ(t, "UNWIND null AS x RETURN x", "");
    TQ_READ_EQ(t, "WITH [1, 2] AS l UNWIND l AS x UNWIND l AS y RETURN x, y", "1|1\n1|2\n2|1\n2|2\n");
    TQ_READ_EQ(t, "CYPHER name='Bob' ages=[25, 35] MATCH (p:Person) WHERE p.name = $name OR p.age IN $ages RETURN p.name ORDER BY p.name",
               "Bob\nCarol\n");
    TQ_READ_EQ(t, "CYPHER m={name: 'Carol'} MATCH (p:Person $m) RETURN p.age", "35\n");
    TQ_READ_EQ(t, "CYPHER m={name: 'Carol', age: 1} MATCH (p:Person $m) RETURN p.age", "");
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Alice'}) WITH p MATCH (p)-[:KNOWS]->(f) RETURN f.name ORDER BY f.name", "Bob\nCarol\n");
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Alice'}) WITH * RETURN p.name", "Alice\n");
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Dan'}) RETURN *", "(:Person {name: Dan, city: Rome})\n");
    char *e = tq_error(t, "RETURN $missing", false, QUERY_ERR_SEMANTIC);
    free(e);
    e = tq_error(t, "MATCH (p) WITH p.name AS n RETURN p", false, QUERY_ERR_SEMANTIC);
    assert_string_equal(e, "p not defined");
    free(e);
}

static void test_id_seek(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Bob'}) RETURN id(p)", "1\n");
    TQ_READ_EQ(t, "MATCH (p) WHERE id(p) = 2 RETURN p.name", "Carol\n");
    TQ_READ_EQ(t, "MATCH (p) WHERE id(p) IN [0, 3, 99] RETURN p.name ORDER BY p.name", "Alice\nDan\n");
    TQ_READ_EQ(t, "UNWIND [[0, 1], [1, 2]] AS r MATCH (a), (b) WHERE id(a) = r[0] AND id(b) = r[1] RETURN a.name, b.name",
               "Alice|Bob\nBob|Carol\n");
    query_request req = tq_req(t, "UNWIND [[0, 1]] AS r MATCH (a), (b) WHERE id(a) = r[0] AND id(b) = r[1] RETURN a, b");
    req.explain = true;
    query_result *r = tq_read_req(t, &req);
    char *s = tq_text(r);
    assert_non_null(strstr(s, "NodeByIdSeek | (a)"));
    assert_non_null(strstr(s, "NodeByIdSeek | (b)"));
    assert_null(strstr(s, "Scan"));
    free(s);
    query_result_free(r);
    /* writes through id seek, the importer's shape */
    query_stats st = tq_exec(t, "CYPHER rows=[[3, 0, 7], [3, 1, 8]] UNWIND $rows AS r MATCH (a), (b) WHERE id(a) = r[0] AND id(b) = r[1] CREATE (a)-[:LIKES {w: r[2]}]->(b)");
    assert_int_equal(st.relationships_created, 2);
    assert_int_equal(st.properties_set, 2);
    TQ_READ_EQ(t, "MATCH (a)-[l:LIKES]->(b) RETURN a.name, l.w, b.name ORDER BY l.w", "Dan|7|Alice\nDan|8|Bob\n");
}

static void test_optional(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (p:Person) OPTIONAL MATCH (p)-[:KNOWS]->(f) RETURN p.name, f.name ORDER BY p.name, f.name",
               "Alice|Bob\nAlice|Carol\nBob|Carol\nCarol|null\nDan|null\n");
    TQ_READ_EQ(t, "OPTIONAL MATCH (x:Nothing) RETURN x", "null\n");
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Alice'}) OPTIONAL MATCH (p)-[:KNOWS]->(f) WHERE f.age > 30 RETURN f.name", "Carol\n");
    TQ_READ_EQ(t, "MATCH (p:Person {name: 'Dan'}) OPTIONAL MATCH (p)-[r]->(f) OPTIONAL MATCH (f)-[]->(g) RETURN p.name, r, f, g",
               "Dan|null|null|null\n");
    TQ_READ_EQ(t, "MATCH (p:Person) OPTIONAL MATCH (p)-[:KNOWS]->(f) RETURN p.name, count(f) ORDER BY p.name",
               "Alice|2\nBob|1\nCarol|0\nDan|0\n");
}

static void test_expressions(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN p.name, CASE WHEN p.age >= 30 THEN 'old' WHEN p.age < 30 THEN 'young' ELSE 'unknown' END ORDER BY p.name",
               "Alice|old\nBob|young\nCarol|old\nDan|unknown\n");
    TQ_READ_EQ(t, "MATCH (p:Person) RETURN CASE p.city WHEN 'Paris' THEN 1 ELSE 0 END AS x ORDER BY x", "0\n0\n1\n1\n");
    TQ_READ_EQ(t, "RETURN [x IN range(1, 6) WHERE x % 2 = 0 | x * 10], [x IN [1, 2]], any(x IN [1, 2] WHERE x > 1), all(x IN [1, 2] WHERE x > 1)",
               "[20, 40, 60]|[1, 2]|true|false\n");
    TQ_READ_EQ(t, "RETURN none(x IN [1, 2] WHERE x > 5), single(x IN [1, 2] WHERE x > 1)", "true|true\n");
    TQ_READ_EQ(t, "RETURN [1, 2] + [3], [1] + 2, 'a' + 1, 1 + 'a', 'x' + 1.5, 2 ^ 3", "[1, 2, 3]|[1, 2]|a1|1a|x1.5|8\n");
    TQ_READ_EQ(t, "RETURN [1, 2, 3][0], [1, 2, 3][-1], [1, 2, 3][5], [1, 2, 3, 4][1..3], {a: {b: 5}}.a.b", "1|3|null|[2, 3]|5\n");
    TQ_READ_EQ(t, "RETURN 1 = 1.0, 'a' < 'b', [1, 2] = [1, 2], null = null, 1 < 'a', 2 IN [1, null], 1 IN [1, null]",
               "true|true|true|null|null|null|true\n");
    TQ_READ_EQ(t, "MATCH (a:Person {name: 'Alice'}) WHERE (a)-[:KNOWS]->(:Person {name: 'Carol'}) RETURN a.name", "Alice\n");
    TQ_READ_EQ(t, "MATCH (a:Person) WHERE NOT (a)-[:KNOWS]->() RETURN a.name ORDER BY a.name", "Carol\nDan\n");
    TQ_READ_EQ(t, "RETURN 'abc' =~ 'a.*', 'abc' =~ 'b'", "true|false\n");
}

/* toUpper/toLower map Unicode (simple case mappings of a fixed C.UTF-8
 * locale), whatever the process locale is (this test runs in "C"). */
static void test_case_mapping_unicode(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "RETURN toUpper('żółw'), toLower('ZAŻÓŁĆ GĘŚLĄ JAŹŃ')", "ŻÓŁW|zażółć gęślą jaźń\n");
    /* German: ß has no single-character upper case and stays */
    TQ_READ_EQ(t, "RETURN toUpper('Straße'), toLower('ÄÖÜ STRASSE')", "STRAßE|äöü strasse\n");
    TQ_READ_EQ(t, "RETURN toUpper('αβγ σοφία'), toLower('ΣΟΦΊΑ Ωmega')", "ΑΒΓ ΣΟΦΊΑ|σοφία ωmega\n");
    TQ_READ_EQ(t, "RETURN toUpper('привет, мир ё'), toLower('ЁЖИК В ТУМАНЕ')", "ПРИВЕТ, МИР Ё|ёжик в тумане\n");
    /* mappings that change the encoded length: U+023A (2 bytes) lowers to
     * U+2C65 (3 bytes); dotless i (2 bytes) uppers to ASCII I */
    TQ_READ_EQ(t, "RETURN toLower('ȺB'), size(toLower('Ⱥ')), toUpper('ıx'), size(toUpper('ı'))", "ⱥb|1|IX|1\n");
    /* CJK and emoji have no case: unchanged */
    TQ_READ_EQ(t, "RETURN toUpper('日本 🙂 ok')", "日本 🙂 OK\n");
    /* invalid UTF-8 bytes pass through unchanged */
    query_result *r = tq_read(t, "RETURN toUpper('a\xff\xc3z\xe2\x82'), toLower('A\xff\xc3Z\xe2\x82')");
    assert_int_equal(r->status, QUERY_OK);
    assert_int_equal(r->row_count, 1);
    qv_value u = r->cells[0], l = r->cells[1];
    assert_int_equal(u.type, QV_STRING);
    assert_int_equal(u.u.s.len, 6);
    assert_memory_equal(u.u.s.ptr, "A\xff\xc3Z\xe2\x82", 6);
    assert_int_equal(l.type, QV_STRING);
    assert_int_equal(l.u.s.len, 6);
    assert_memory_equal(l.u.s.ptr, "a\xff\xc3z\xe2\x82", 6);
    query_result_free(r);
}

static void test_functions(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (a:Person {name: 'Alice'})-[r]->(b {name: 'Bob'}) RETURN labels(a), type(r), keys(a), properties(b), id(startNode(r)), id(endNode(r))",
               "[Person]|KNOWS|[name, age, city]|{name: Bob, age: 25, city: Berlin}|0|1\n");
    TQ_READ_EQ(t, "RETURN toLower('AbC'), toUpper('abc'), toString(12), toString(1.5), toInteger('42'), toInteger(3.9), toFloat('2.5'), toInteger('x')",
               "abc|ABC|12|1.5|42|3|2.5|null\n");
    TQ_READ_EQ(t, "RETURN size('héllo'), size([1, 2]), length('ab'), coalesce(null, 2, 3), head([1, 2]), last([1, 2]), tail([1, 2, 3])",
               "5|2|2|2|1|2|[2, 3]\n");
    TQ_READ_EQ(t, "RETURN abs(-3), abs(-2.5), range(0, 10, 3), range(3, 1, -1), sqrt(16), floor(2.7), ceil(2.1), round(2.5), sign(-4)",
               "3|2.5|[0, 3, 6, 9]|[3, 2, 1]|4|2|3|3|-1\n");
    TQ_READ_EQ(t, "RETURN trim('  a '), ltrim(' a'), rtrim('a '), substring('hello', 1, 3), substring('hello', 2), replace('aXbX', 'X', '-'), split('a,b,c', ','), reverse('abc'), left('abc', 2), right('abc', 2)",
               "a|a|a|ell|llo|a-b-|[a, b, c]|cba|ab|bc\n");
    TQ_READ_EQ(t, "RETURN timestamp(), toBoolean('TRUE'), exists(null), exists(1)", "1700000000000|true|false|true\n");
    TQ_READ_EQ(t, "RETURN TOLOWER('X'), ToUpper('y')", "x|Y\n");
    query_result *r = tq_read(t, "RETURN rand() AS a, rand() AS b");
    assert_int_equal(r->status, QUERY_OK);
    double a = r->cells[0].u.d, b = r->cells[1].u.d;
    assert_true(a >= 0 && a < 1 && b >= 0 && b < 1 && a != b);
    query_result_free(r);
    char *e = tq_error(t, "RETURN nosuch(1)", false, QUERY_ERR_SEMANTIC);
    free(e);
    e = tq_error(t, "RETURN range(1, 2, 0)", false, QUERY_ERR_RUNTIME);
    free(e);
    e = tq_error(t, "RETURN labels(1)", false, QUERY_ERR_RUNTIME);
    assert_string_equal(e, "Type mismatch: expected Node or Null but was Integer");
    free(e);
}

static void test_union_and_procedures(void **state) {
    tq *t = *state;
    TQ_READ_EQ(t, "MATCH (p:Person {city: 'Paris'}) RETURN p.city AS c UNION MATCH (p:Person) RETURN p.city AS c", "Paris\nBerlin\nRome\n");
    TQ_READ_EQ(t, "RETURN 1 AS x UNION ALL RETURN 1 AS x", "1\n1\n");
    char *e = tq_error(t, "RETURN 1 AS x UNION RETURN 2 AS y", false, QUERY_ERR_SYNTAX);
    free(e);
    TQ_READ_EQ(t, "CALL db.labels()", "Person\n");
    TQ_READ_EQ(t, "CALL DB.RELATIONSHIPTYPES()", "KNOWS\n");
    TQ_READ_EQ(t, "CALL db.propertyKeys()", "name\nage\ncity\n");
    TQ_READ_EQ(t, "CALL db.propertyKeys() YIELD propertyKey WHERE propertyKey STARTS WITH 'c' RETURN propertyKey", "city\n");
    TQ_READ_EQ(t, "CALL db.propertyKeys() YIELD propertyKey AS k RETURN count(k)", "3\n");
    query_result *r = tq_read(t, "CALL db.labels()");
    assert_int_equal(r->column_count, 1);
    assert_int_equal(r->columns[0].len, 5);
    assert_memory_equal(r->columns[0].ptr, "label", 5);
    query_result_free(r);
    e = tq_error(t, "CALL db.nothing()", false, QUERY_ERR_SEMANTIC);
    free(e);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_aggregates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_skip_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_with_unwind_params, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_seek, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expressions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_case_mapping_unicode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_union_and_procedures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

"""The openCypher subset end to end: GRAPH.QUERY / RO_QUERY / EXPLAIN /
LIST / DELETE through redis-py against a real quiverd, checked against
openCypher's semantics and FalkorDB's reply formats (verbose and --compact,
statistics strings and their order, value-type codes 0..11).

Every test gets its own graph (fixture `graph`) on a server shared by the
module.  Error tests check that the error is reported and that the graph is
exactly as before (graph_dump before == after).
"""
import re

import pytest
import redis

import harness
from harness import compact, verbose, graph_dump, Node, Edge, Path

TIME_RE = re.compile(r"^Query internal execution time: [0-9]+(\.[0-9]+)? milliseconds$")
RO_ERROR = "graph.RO_QUERY is to be executed only on read-only queries"


def q(r, g, text, *extra, **kw):
    return compact(r, g, text, *extra, **kw)


def error_of(r, g, text, *extra, cmd="GRAPH.QUERY"):
    """Run a statement that must fail; return the error text."""
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(cmd, g, text, *extra)
    return str(e.value)


def fails_unchanged(r, g, text, *extra, cmd="GRAPH.QUERY"):
    before = graph_dump(r, g)
    msg = error_of(r, g, text, *extra, cmd=cmd)
    assert graph_dump(r, g) == before, "state changed by failed statement: %s" % text
    return msg


def assert_stats(res, expected):
    """Counters exactly `expected` in FalkorDB's order, then the optional
    'Cached execution: N' and the execution time, last."""
    assert res.counters() == expected, res.stats
    assert TIME_RE.match(res.stats[-1]), res.stats
    rest = res.stats[len(expected):-1]
    assert rest in ([], ["Cached execution: 0"], ["Cached execution: 1"]), res.stats


PEOPLE = """CREATE (a:Person {name:'Ann', age:30, city:'Oslo'}),
  (b:Person {name:'Bob', age:25, city:'Rome'}),
  (c:Person {name:'Cid', age:35}),
  (d:Person:Admin {name:'Dee', age:25, city:'Oslo'}),
  (x:Company {name:'Acme'}),
  (a)-[:KNOWS {since:2010}]->(b),
  (b)-[:KNOWS {since:2015}]->(c),
  (a)-[:KNOWS {since:2020}]->(d),
  (a)-[:WORKS_AT]->(x),
  (d)-[:WORKS_AT]->(x)"""


@pytest.fixture
def people(r, graph):
    res = verbose(r, graph, PEOPLE)
    assert res.stat("Nodes created") == 5 and res.stat("Relationships created") == 5, res.stats
    return graph


def test_create_people_stats(r, graph):
    res = verbose(r, graph, PEOPLE)
    # FalkorDB counts a label as added when its schema is created (once per
    # new label, not once per labelled node): Person, Admin, Company.
    assert_stats(res, ["Labels added: 3", "Nodes created: 5", "Properties set: 15",
                       "Relationships created: 5"])


def names(r, g, text, *extra):
    return q(r, g, text, *extra).column


# --- CREATE and statistics -------------------------------------------------------

def test_create_node_verbose_stats(r, graph):
    res = verbose(r, graph, "CREATE (:Person {name: 'Ann', age: 30})")
    assert res.header == [] and res.rows == []
    assert_stats(res, ["Labels added: 1", "Nodes created: 1", "Properties set: 2"])
    # the label exists now: not added again
    res = verbose(r, graph, "CREATE (:Person {name: 'Bob'})")
    assert_stats(res, ["Nodes created: 1", "Properties set: 1"])
    res = verbose(r, graph, "CREATE ()")
    assert_stats(res, ["Nodes created: 1"])


def test_create_relationship_and_return(r, graph):
    res = verbose(r, graph, "CREATE (a:P {n: 1})-[e:R {w: 0.5}]->(b:Q {n: 2}) "
                            "RETURN a.n, type(e), b.n")
    assert res.header == ["a.n", "type(e)", "b.n"]
    assert res.rows == [[1, "R", 2]]
    assert_stats(res, ["Labels added: 2", "Nodes created: 2", "Properties set: 3",
                       "Relationships created: 1"])


def test_statistics_order_delete(r, people):
    res = verbose(r, people, "MATCH (n) DETACH DELETE n")
    assert_stats(res, ["Nodes deleted: 5", "Relationships deleted: 5"])
    assert q(r, people, "MATCH (n) RETURN count(n)").scalar == 0


def test_statistics_order_mixed(r, people):
    res = verbose(r, people, "MATCH (a:Person {name:'Ann'}) REMOVE a.city "
                             "CREATE (a)-[:LIKES]->(:Thing {k: 1}) SET a.age = 31")
    assert_stats(res, ["Labels added: 1", "Nodes created: 1", "Properties set: 2",
                       "Properties removed: 1", "Relationships created: 1"])


def test_create_multiple_labels_and_types(r, graph):
    res = q(r, graph, "CREATE (n:A:B:C {x: 1}) RETURN labels(n)")
    assert sorted(res.scalar) == ["A", "B", "C"]
    assert q(r, graph, "MATCH (n:B) RETURN count(n)").scalar == 1
    assert q(r, graph, "MATCH (n:A:C) RETURN n.x").scalar == 1


def test_nested_list_property_refused(r, graph):
    # FalkorDB: "Property values can only be of primitive types or arrays of
    # primitive types"
    fails_unchanged(r, graph, "CREATE (:V {l: [1, [2]]})")
    fails_unchanged(r, graph, "CREATE (:V {m: {a: 1}})")


def test_values_round_trip(r, graph):
    big = "z" * 100000    # long enough to be LZ4-compressed in storage
    verbose(r, graph, "CYPHER big=%s CREATE (:V {i: -9223372036854775807 - 1, j: 9223372036854775807, "
                      "f: -2.5, s: 'żółw 🐢 \\'q\\'', t: true, u: false, l: [1, 'a', 2.5, true], "
                      "big: $big})" % _quote(big))
    res = q(r, graph, "CYPHER x=%s MATCH (v:V) RETURN v.i, v.j, v.f, v.s, v.t, v.u, v.l, "
                      "size(v.big), v.big = $x, v.missing" % _quote(big))
    assert res.rows == [[-9223372036854775808, 9223372036854775807, -2.5, "żółw 🐢 'q'",
                         True, False, [1, "a", 2.5, True], 100000, True, None]]


def _quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def test_doubles_are_rounded_like_falkordb(r, graph):
    res = verbose(r, graph, "RETURN 0.1 + 0.2, 1.0, 1e20, 2.5")
    # FalkorDB prints doubles with %.15g
    assert res.rows == [["0.3", "1", "1e+20", "2.5"]]


# --- MATCH ---------------------------------------------------------------------

def test_match_labels(r, people):
    assert names(r, people, "MATCH (p:Person) RETURN p.name ORDER BY p.name") == \
        ["Ann", "Bob", "Cid", "Dee"]
    assert names(r, people, "MATCH (p:Admin) RETURN p.name") == ["Dee"]
    assert names(r, people, "MATCH (p:Person:Admin) RETURN p.name") == ["Dee"]
    assert names(r, people, "MATCH (p:Nope) RETURN p.name") == []
    assert q(r, people, "MATCH (n) RETURN count(n)").scalar == 5


def test_match_property_map(r, people):
    assert names(r, people, "MATCH (p:Person {city: 'Oslo'}) RETURN p.name ORDER BY p.name") == \
        ["Ann", "Dee"]
    assert names(r, people, "MATCH (p:Person {city: 'Oslo', age: 25}) RETURN p.name") == ["Dee"]
    assert names(r, people, "MATCH (p {name: 'Acme'}) RETURN labels(p)") == [["Company"]]
    assert names(r, people, "MATCH ()-[k:KNOWS {since: 2015}]->(b) RETURN b.name") == ["Cid"]


def test_directed_and_undirected(r, people):
    assert names(r, people, "MATCH (:Person {name:'Bob'})-[:KNOWS]->(b) RETURN b.name") == ["Cid"]
    assert names(r, people, "MATCH (:Person {name:'Bob'})<-[:KNOWS]-(b) RETURN b.name") == ["Ann"]
    assert names(r, people, "MATCH (:Person {name:'Bob'})-[:KNOWS]-(b) RETURN b.name "
                            "ORDER BY b.name") == ["Ann", "Cid"]
    assert q(r, people, "MATCH ()-[k:KNOWS]->() RETURN count(k)").scalar == 3
    assert q(r, people, "MATCH ()-[k:KNOWS]-() RETURN count(k)").scalar == 6
    assert q(r, people, "MATCH ()-[k]->() RETURN count(k)").scalar == 5


def test_multi_hop(r, people):
    assert names(r, people, "MATCH (:Person {name:'Ann'})-[:KNOWS]->()-[:KNOWS]->(c) "
                            "RETURN c.name") == ["Cid"]
    assert q(r, people, "MATCH (a:Person)-[:KNOWS]->(b)-[:WORKS_AT]->(c) "
                        "RETURN a.name, b.name, c.name").rows == [["Ann", "Dee", "Acme"]]
    # two relationships in one pattern are distinct: a and b differ here
    assert q(r, people, "MATCH (a)-[:WORKS_AT]->(c)<-[:WORKS_AT]-(b) RETURN a.name, b.name "
                        "ORDER BY a.name").rows == [["Ann", "Dee"], ["Dee", "Ann"]]
    # comma-separated patterns sharing a variable
    assert q(r, people, "MATCH (a:Person)-[:KNOWS]->(b), (b)-[:KNOWS]->(c) "
                        "RETURN a.name, c.name").rows == [["Ann", "Cid"]]


CHAIN = ("CREATE (n1:V {i:1})-[:A {w:1}]->(n2:V {i:2})-[:A {w:1}]->(n3:V {i:3})"
         "-[:B {w:2}]->(n4:V {i:4})-[:C]->(n5:V {i:5})")


def test_variable_length(r, graph):
    verbose(r, graph, CHAIN)
    s = "MATCH (s:V {i:1})"
    cases = [
        ("-[:A*]->(x)", [2, 3]),
        ("-[:A|B*]->(x)", [2, 3, 4]),
        ("-[*]->(x)", [2, 3, 4, 5]),
        ("-[*1..2]->(x)", [2, 3]),
        ("-[*2..]->(x)", [3, 4, 5]),
        ("-[*2..2]->(x)", [3]),
        ("-[:A|B*1..]->(x)", [2, 3, 4]),
        ("-[:A|B|C*1.. {w:1}]->(x)", [2, 3]),
        ("-[*1.. {w:2}]->(x)", []),
        ("-[:B*]->(x)", []),
    ]
    for pat, want in cases:
        got = names(r, graph, s + pat + " RETURN x.i ORDER BY x.i")
        assert got == want, pat
    assert names(r, graph, "MATCH (x)-[:A*]->(:V {i:3}) RETURN x.i ORDER BY x.i") == [1, 2]
    # undirected: no relationship twice in one path, so 3-2-3 is not a path
    assert names(r, graph, "MATCH (:V {i:3})-[*1..2]-(x) RETURN x.i ORDER BY x.i") == [1, 2, 4, 5]


def test_variable_length_paths(r, graph):
    verbose(r, graph, CHAIN)
    res = q(r, graph, "MATCH p = (:V {i:1})-[*]->(x:V {i:5}) "
                      "RETURN length(p), size(nodes(p)), size(relationships(p))")
    assert res.rows == [[4, 5, 4]]
    assert names(r, graph, "MATCH p = (:V {i:1})-[*]->(x) RETURN length(p) ORDER BY length(p)") == \
        [1, 2, 3, 4]


def test_variable_length_cycle_terminates(r, graph):
    verbose(r, graph, "CREATE (a:T {i:1})-[:T]->(b:T {i:2})-[:T]->(c:T {i:3})-[:T]->(a)")
    # paths 1->2, 1->2->3, 1->2->3->1: each relationship at most once per path
    assert names(r, graph, "MATCH (:T {i:1})-[:T*]->(x) RETURN x.i ORDER BY x.i") == [1, 2, 3]
    assert names(r, graph, "MATCH (:T {i:1})-[:T*]-(x) RETURN count(*)") == [6]


def test_distinct_ends_do_not_enumerate_paths(r, graph):
    # 24 diamonds in a row: 2^24 (16.7M) paths from s0 to s24 but only 72 end nodes.
    # A TIMEOUT bounds the test if the engine enumerated paths.
    k = 24
    parts = ["(s0:Dm {i:0})"]
    for j in range(k):
        parts += ["(a%d:Dm {i:%d})" % (j, 1000 + j), "(b%d:Dm {i:%d})" % (j, 2000 + j),
                  "(s%d:Dm {i:%d})" % (j + 1, j + 1),
                  "(s%d)-[:D]->(a%d)" % (j, j), "(s%d)-[:D]->(b%d)" % (j, j),
                  "(a%d)-[:D]->(s%d)" % (j, j + 1), "(b%d)-[:D]->(s%d)" % (j, j + 1)]
    verbose(r, graph, "CREATE " + ", ".join(parts))
    res = q(r, graph, "MATCH (:Dm {i:0})-[:D*]->(x) RETURN count(DISTINCT x)", "TIMEOUT", "60000")
    assert res.scalar == 3 * k
    res = q(r, graph, "MATCH (:Dm {i:0})-[:D*]->(x) RETURN DISTINCT x.i ORDER BY x.i",
            "TIMEOUT", "60000")
    assert len(res.rows) == 3 * k
    res = q(r, graph, "MATCH (:Dm {i:0})-[:D*1..]->(x:Dm {i:%d}) RETURN DISTINCT x.i" % k,
            "TIMEOUT", "60000")
    assert res.rows == [[k]]


def exact_or_limit_error(r, g, text, want):
    """A query past an engine limit must give the exact answer or an error
    that says a limit was hit, never a silently truncated answer."""
    try:
        got = q(r, g, text, "TIMEOUT", "60000").rows
    except redis.ResponseError as e:
        assert re.search(r"limit|hops|too (long|deep|many)|exceed", str(e), re.I), (text, str(e))
        return
    assert got == want, text


def test_long_chain_no_silent_truncation(r, graph):
    n = 1500    # longer than QUIVER_VARLEN_HOPS_MAX (1024)
    verbose(r, graph, "CREATE INDEX FOR (c:Ch) ON (c.i)")
    verbose(r, graph, "UNWIND range(0, %d) AS i CREATE (:Ch {i: i})" % (n - 1))
    res = verbose(r, graph, "UNWIND range(1, %d) AS i MATCH (a:Ch {i: i - 1}), (b:Ch {i: i}) "
                            "CREATE (a)-[:N]->(b)" % (n - 1))
    assert res.stat("Relationships created") == n - 1
    exact_or_limit_error(r, graph, "MATCH (:Ch {i: 0})-[:N*]->(x) RETURN count(DISTINCT x)", [[n - 1]])
    exact_or_limit_error(r, graph, "MATCH (:Ch {i: 0})-[:N*]->(x) RETURN count(x)", [[n - 1]])
    exact_or_limit_error(r, graph, "MATCH p = (:Ch {i: 0})-[:N*]->(:Ch {i: %d}) RETURN length(p)"
                         % (n - 1), [[n - 1]])
    exact_or_limit_error(r, graph, "MATCH (:Ch {i: 0})-[:N*1100..1200]->(x) RETURN count(x)", [[101]])
    # within the limit: exact
    assert q(r, graph, "MATCH (:Ch {i: 0})-[:N*1..1000]->(x) RETURN count(DISTINCT x)").scalar == 1000


def test_optional_match(r, people):
    res = q(r, people, "MATCH (p:Person) OPTIONAL MATCH (p)-[:WORKS_AT]->(c) "
                       "RETURN p.name, c.name ORDER BY p.name")
    assert res.rows == [["Ann", "Acme"], ["Bob", None], ["Cid", None], ["Dee", "Acme"]]
    assert q(r, people, "OPTIONAL MATCH (n:Nope) RETURN n").rows == [[None]]
    res = q(r, people, "MATCH (p:Person) OPTIONAL MATCH (p)-[:KNOWS]->(f) "
                       "RETURN p.name, count(f) ORDER BY p.name")
    assert res.rows == [["Ann", 2], ["Bob", 1], ["Cid", 0], ["Dee", 0]]


# --- WHERE -----------------------------------------------------------------------

WHERE_CASES = [
    ("p.age > 25", ["Ann", "Cid"]),
    ("p.age >= 25", ["Ann", "Bob", "Cid", "Dee"]),
    ("p.age < 30", ["Bob", "Dee"]),
    ("p.age <= 30", ["Ann", "Bob", "Dee"]),
    ("p.age = 25", ["Bob", "Dee"]),
    ("p.age <> 25", ["Ann", "Cid"]),
    ("p.age = 25 AND p.city = 'Oslo'", ["Dee"]),
    ("p.age > 30 OR p.city = 'Rome'", ["Bob", "Cid"]),
    ("NOT p.age = 25", ["Ann", "Cid"]),
    ("p.age = 25 XOR p.city = 'Oslo'", ["Ann", "Bob"]),   # Cid: false XOR null = null
    ("p.name IN ['Ann', 'Cid', 'Zed']", ["Ann", "Cid"]),
    ("NOT p.name IN ['Ann']", ["Bob", "Cid", "Dee"]),
    ("p.city IS NULL", ["Cid"]),
    ("p.city IS NOT NULL", ["Ann", "Bob", "Dee"]),
    ("p.name STARTS WITH 'A'", ["Ann"]),
    ("p.name ENDS WITH 'e'", ["Dee"]),
    ("p.name CONTAINS 'o'", ["Bob"]),
    ("p.name CONTAINS 'O'", []),
    ("p.city = null", []),
    ("(p)-[:WORKS_AT]->()", ["Ann", "Dee"]),
    ("NOT (p)-[:KNOWS]->()", ["Cid", "Dee"]),
    ("(p)<-[:KNOWS]-(:Person {name: 'Ann'})", ["Bob", "Dee"]),
    ("(p.age > 26 AND p.age < 34) OR p.name = 'Bob'", ["Ann", "Bob"]),
    ("p.age + 5 = 30 AND NOT p:Admin", ["Bob"]),
]


@pytest.mark.parametrize("cond,want", WHERE_CASES, ids=[c[0] for c in WHERE_CASES])
def test_where(r, people, cond, want):
    assert names(r, people, "MATCH (p:Person) WHERE %s RETURN p.name ORDER BY p.name" % cond) == want


# --- RETURN, ORDER BY, SKIP, LIMIT, DISTINCT ---------------------------------------

def test_return_aliases_header(r, people):
    res = verbose(r, people, "MATCH (p:Person {name:'Ann'}) RETURN p.name AS name, p.age, "
                             "p.age + 1 AS next")
    assert res.header == ["name", "p.age", "next"]
    assert res.rows == [["Ann", 30, 31]]
    res = compact(r, people, "MATCH (p:Person {name:'Ann'}) RETURN p.name AS name")
    assert res.header == ["name"]


def test_distinct_order_skip_limit(r, people):
    assert names(r, people, "MATCH (p:Person) RETURN DISTINCT p.age ORDER BY p.age") == [25, 30, 35]
    res = q(r, people, "MATCH (p:Person) RETURN p.age, p.name ORDER BY p.age DESC, p.name")
    assert res.rows == [[35, "Cid"], [30, "Ann"], [25, "Bob"], [25, "Dee"]]
    res = q(r, people, "MATCH (p:Person) RETURN p.age, p.name ORDER BY p.age DESC, p.name "
                       "SKIP 1 LIMIT 2")
    assert res.rows == [[30, "Ann"], [25, "Bob"]]
    assert names(r, people, "MATCH (p:Person) RETURN p.name ORDER BY p.name SKIP 3") == ["Dee"]
    assert names(r, people, "MATCH (p:Person) RETURN p.name ORDER BY p.name LIMIT 0") == []
    # nulls sort last ascending, first descending
    assert names(r, people, "MATCH (p:Person) RETURN p.name ORDER BY p.city, p.name") == \
        ["Ann", "Dee", "Bob", "Cid"]
    assert names(r, people, "MATCH (p:Person) RETURN p.name ORDER BY p.city DESC, p.name") == \
        ["Cid", "Bob", "Ann", "Dee"]
    assert q(r, people, "MATCH (p:Person) RETURN DISTINCT p.city ORDER BY p.city").column == \
        ["Oslo", "Rome", None]


# --- aggregation -----------------------------------------------------------------

def test_aggregates(r, people):
    res = q(r, people, "MATCH (p:Person) RETURN count(*), count(p.city), sum(p.age), "
                       "min(p.age), max(p.age), avg(p.age), min(p.name), max(p.city)")
    assert res.rows == [[4, 3, 115, 25, 35, 28.75, "Ann", "Rome"]]


def test_aggregates_grouping(r, people):
    res = q(r, people, "MATCH (p:Person) RETURN p.age AS age, count(*) AS c, collect(p.name) AS n "
                       "ORDER BY age")
    rows = [[a, c, sorted(n)] for a, c, n in res.rows]
    assert rows == [[25, 2, ["Bob", "Dee"]], [30, 1, ["Ann"]], [35, 1, ["Cid"]]]
    res = q(r, people, "MATCH (p:Person) RETURN p.city AS city, count(*) ORDER BY city")
    assert res.rows == [["Oslo", 2], ["Rome", 1], [None, 1]]
    res = q(r, people, "MATCH (a:Person)-[:KNOWS]->(b) RETURN a.name, count(b), sum(b.age) "
                       "ORDER BY a.name")
    assert res.rows == [["Ann", 2, 50], ["Bob", 1, 35]]


def test_aggregates_distinct_and_empty(r, people):
    res = q(r, people, "MATCH (p:Person) RETURN count(DISTINCT p.age), collect(DISTINCT p.city), "
                       "sum(DISTINCT p.age)")
    c, cities, s = res.rows[0]
    assert (c, sorted(cities), s) == (3, ["Oslo", "Rome"], 90)
    res = q(r, people, "MATCH (n:Nope) RETURN count(n), sum(n.x), avg(n.x), collect(n.x), min(n.x)")
    assert res.rows == [[0, 0, None, [], None]]
    assert q(r, people, "MATCH (n:Nope) RETURN n.x, count(n)").rows == []
    assert q(r, people, "MATCH (p:Person) RETURN avg(p.age) * 2, count(p) + 1").rows == [[57.5, 5]]


# --- CASE, WITH, UNWIND ---------------------------------------------------------------

def test_case(r, people):
    res = q(r, people, "MATCH (p:Person) RETURN p.name, "
                       "CASE p.age WHEN 25 THEN 'young' WHEN 30 THEN 'mid' ELSE 'old' END, "
                       "CASE WHEN p.city IS NULL THEN 'nowhere' WHEN p.age < 30 THEN 'y' END "
                       "ORDER BY p.name")
    assert res.rows == [["Ann", "mid", None], ["Bob", "young", "y"], ["Cid", "old", "nowhere"],
                        ["Dee", "young", "y"]]


def test_with(r, people):
    res = q(r, people, "MATCH (p:Person) WITH p.age AS age, count(*) AS c WHERE c > 1 RETURN age, c")
    assert res.rows == [[25, 2]]
    assert names(r, people, "MATCH (p:Person) WITH p ORDER BY p.age DESC LIMIT 1 "
                            "RETURN p.name") == ["Cid"]
    res = q(r, people, "MATCH (p:Person) WITH p, p.age * 2 AS dbl WHERE dbl > 55 "
                       "MATCH (p)-[:KNOWS]->(f) RETURN p.name, dbl, f.name ORDER BY f.name")
    assert res.rows == [["Ann", 60, "Bob"], ["Ann", 60, "Dee"]]
    assert q(r, people, "WITH 1 AS a, 'x' AS b RETURN b, a").rows == [["x", 1]]
    assert q(r, people, "MATCH (p:Person) WITH DISTINCT p.city AS c RETURN count(*)").scalar == 3


def test_unwind(r, graph):
    assert names(r, graph, "UNWIND [1, 2, 3] AS x RETURN x * 10") == [10, 20, 30]
    assert q(r, graph, "UNWIND range(1, 5) AS x WITH x WHERE x % 2 = 1 "
                       "RETURN collect(x)").scalar == [1, 3, 5]
    assert q(r, graph, "UNWIND [] AS x RETURN x").rows == []
    assert q(r, graph, "UNWIND null AS x RETURN x").rows == []
    assert q(r, graph, "UNWIND [[1, 2], [3]] AS l UNWIND l AS x RETURN sum(x)").scalar == 6
    res = verbose(r, graph, "UNWIND range(1, 10) AS i CREATE (:U {i: i})")
    assert_stats(res, ["Labels added: 1", "Nodes created: 10", "Properties set: 10"])
    assert q(r, graph, "MATCH (u:U) RETURN sum(u.i)").scalar == 55


# --- SET, REMOVE, DELETE, DETACH DELETE ---------------------------------------------------

def test_set(r, people):
    res = verbose(r, people, "MATCH (p:Person {name:'Bob'}) SET p.age = 26, p.new = 'x'")
    assert_stats(res, ["Properties set: 2"])
    assert q(r, people, "MATCH (p:Person {name:'Bob'}) RETURN p.age, p.new").rows == [[26, "x"]]
    # from another node's property, and on a relationship
    verbose(r, people, "MATCH (a:Person {name:'Ann'}), (b:Person {name:'Bob'}) SET b.city = a.city")
    assert names(r, people, "MATCH (p:Person {name:'Bob'}) RETURN p.city") == ["Oslo"]
    verbose(r, people, "MATCH (:Person {name:'Ann'})-[k:KNOWS]->(:Person {name:'Bob'}) SET k.since = 1999")
    assert names(r, people, "MATCH ()-[k:KNOWS]->(:Person {name:'Bob'}) RETURN k.since") == [1999]
    # setting null removes the property
    verbose(r, people, "MATCH (p:Person {name:'Bob'}) SET p.new = null")
    assert q(r, people, "MATCH (p:Person {name:'Bob'}) RETURN keys(p)").scalar.count("new") == 0
    res = q(r, people, "MATCH (p:Person {name:'Bob'}) SET p.age = p.age + 1 RETURN p.age")
    assert res.scalar == 27


def test_remove(r, people):
    res = verbose(r, people, "MATCH (p:Person {name:'Ann'}) REMOVE p.city RETURN p.city")
    assert res.rows == [[None]]
    assert res.stat("Properties removed") == 1
    assert sorted(q(r, people, "MATCH (p:Person {name:'Ann'}) RETURN keys(p)").scalar) == ["age", "name"]
    # removing a missing property is not an error and changes nothing
    verbose(r, people, "MATCH (p:Person {name:'Ann'}) REMOVE p.nope")


def test_delete_node_with_relationships_fails(r, people):
    msg = fails_unchanged(r, people, "MATCH (p:Person {name:'Ann'}) DELETE p")
    assert msg
    res = verbose(r, people, "MATCH (:Person {name:'Bob'})-[k:KNOWS]->() DELETE k")
    assert_stats(res, ["Relationships deleted: 1"])
    res = verbose(r, people, "MATCH (p:Person {name:'Cid'}) DELETE p")
    assert_stats(res, ["Nodes deleted: 1"])
    assert q(r, people, "MATCH (n) RETURN count(n)").scalar == 4


def test_detach_delete(r, people):
    res = verbose(r, people, "MATCH (p:Person {name:'Ann'}) DETACH DELETE p")
    assert_stats(res, ["Nodes deleted: 1", "Relationships deleted: 3"])
    assert q(r, people, "MATCH ()-[k]->() RETURN count(k)").scalar == 2
    assert names(r, people, "MATCH (p:Person) RETURN p.name ORDER BY p.name") == ["Bob", "Cid", "Dee"]


def test_delete_relationship_and_node_together(r, people):
    res = verbose(r, people, "MATCH (a:Person {name:'Bob'})-[k]-(b) DELETE k")
    assert_stats(res, ["Relationships deleted: 2"])
    res = verbose(r, people, "MATCH (b:Person {name:'Bob'}) DELETE b")
    assert_stats(res, ["Nodes deleted: 1"])


# --- MERGE --------------------------------------------------------------------------

def test_merge_node(r, graph):
    text = ("MERGE (c:City {name:'Oslo'}) ON CREATE SET c.created = true "
            "ON MATCH SET c.matched = true RETURN c.created, c.matched")
    res = verbose(r, graph, text)
    assert res.rows == [["true", None]]
    assert_stats(res, ["Labels added: 1", "Nodes created: 1", "Properties set: 2"])
    res = verbose(r, graph, text)
    assert res.rows == [["true", "true"]]
    assert_stats(res, ["Properties set: 1"])
    assert q(r, graph, "MATCH (c:City) RETURN count(c)").scalar == 1


def test_merge_sees_own_writes(r, graph):
    res = verbose(r, graph, "UNWIND [1, 1, 2] AS k MERGE (:K {k: k})")
    assert res.stat("Nodes created") == 2
    assert names(r, graph, "MATCH (n:K) RETURN n.k ORDER BY n.k") == [1, 2]


def test_merge_relationship(r, people):
    text = ("MATCH (a:Person {name:'Bob'}), (b:Person {name:'Cid'}) "
            "MERGE (a)-[l:LIKES]->(b) ON CREATE SET l.n = 1 ON MATCH SET l.n = l.n + 1 RETURN l.n")
    res = verbose(r, people, text)
    assert res.rows == [[1]] and res.stat("Relationships created") == 1
    res = verbose(r, people, text)
    assert res.rows == [[2]] and res.stat("Relationships created") == 0
    assert q(r, people, "MATCH ()-[l:LIKES]->() RETURN count(l)").scalar == 1
    # an existing relationship is matched, not duplicated
    res = verbose(r, people, "MATCH (a:Person {name:'Ann'}), (b:Person {name:'Bob'}) MERGE (a)-[:KNOWS]->(b)")
    assert res.stat("Relationships created") == 0


def test_merge_path(r, graph):
    for _ in range(2):
        verbose(r, graph, "MERGE (:X {k: 1})-[:R]->(:Y {k: 2})")
    assert q(r, graph, "MATCH (x:X)-[:R]->(y:Y) RETURN count(*)").scalar == 1
    assert q(r, graph, "MATCH (n) RETURN count(n)").scalar == 2


# --- parameters ---------------------------------------------------------------------

def test_parameters(r, people):
    assert q(r, people, "CYPHER name='Ann' MATCH (p:Person {name: $name}) RETURN p.age").scalar == 30
    res = q(r, people, "CYPHER i=1 f=2.5 s=\"x y\" b=true n=null l=[1, 2] m={a: 1} "
                       "RETURN $i, $f, $s, $b, $n, $l, $m")
    assert res.rows == [[1, 2.5, "x y", True, None, [1, 2], {"a": 1}]]
    verbose(r, people, "CYPHER v=5 names=['P1', 'P2'] UNWIND $names AS nm CREATE (:Param {v: $v, nm: nm})")
    assert q(r, people, "MATCH (p:Param) RETURN sum(p.v), count(p)").rows == [[10, 2]]
    assert names(r, people, "CYPHER ages=[25, 35] MATCH (p:Person) WHERE p.age IN $ages "
                            "RETURN p.name ORDER BY p.name") == ["Bob", "Cid", "Dee"]
    fails_unchanged(r, people, "MATCH (p:Person {name: $missing}) RETURN p")


# --- functions -----------------------------------------------------------------------

def test_entity_functions(r, people):
    ids = q(r, people, "MATCH (n) RETURN id(n)").column
    assert len(set(ids)) == 5 and all(isinstance(i, int) and i >= 0 for i in ids)
    assert sorted(q(r, people, "MATCH (d:Person {name:'Dee'}) RETURN labels(d)").scalar) == \
        ["Admin", "Person"]
    assert q(r, people, "MATCH (:Person {name:'Ann'})-[k]->(:Company) RETURN type(k)").scalar == "WORKS_AT"
    assert q(r, people, "MATCH (b:Person {name:'Bob'}) RETURN properties(b)").scalar == \
        {"name": "Bob", "age": 25, "city": "Rome"}
    assert sorted(q(r, people, "MATCH (b:Person {name:'Bob'}) RETURN keys(b)").scalar) == \
        ["age", "city", "name"]
    res = q(r, people, "MATCH (a:Person {name:'Ann'})-[k:WORKS_AT]->(c) "
                       "RETURN id(startNode(k)) = id(a), id(endNode(k)) = id(c), "
                       "startNode(k).name, endNode(k).name")
    assert res.rows == [[True, True, "Ann", "Acme"]]
    res = q(r, people, "MATCH p = (:Person {name:'Ann'})-[:KNOWS]->()-[:KNOWS]->() "
                       "RETURN length(p), size(nodes(p)), size(relationships(p)), "
                       "nodes(p)[0].name, relationships(p)[1].since")
    assert res.rows == [[2, 3, 2, "Ann", 2015]]
    assert q(r, people, "MATCH (p:Person) RETURN exists(p.city) ORDER BY p.name").column == \
        [True, True, False, True]


def test_scalar_functions(r, graph):
    cases = [
        ("size('abc')", 3), ("size([1, 2, 3])", 3), ("size([])", 0),
        ("toLower('AbC')", "abc"), ("toUpper('AbC')", "ABC"),
        ("toString(42)", "42"), ("toString(2.5)", "2.5"), ("toString(true)", "true"),
        ("toString('s')", "s"),
        ("toInteger('42')", 42), ("toInteger(3.9)", 3), ("toInteger('x')", None),
        ("toInteger(-3.9)", -3),
        ("toFloat('2.5')", 2.5), ("toFloat(3)", 3.0), ("toFloat('x')", None),
        ("coalesce(null, null, 'z', 'w')", "z"), ("coalesce(null)", None),
        ("range(1, 5)", [1, 2, 3, 4, 5]), ("range(0, 10, 3)", [0, 3, 6, 9]),
        ("range(5, 1, -2)", [5, 3, 1]), ("range(1, 0)", []),
        ("head([1, 2, 3])", 1), ("last([1, 2, 3])", 3), ("head([])", None), ("last([])", None),
        ("abs(-3)", 3), ("abs(-2.5)", 2.5), ("abs(4)", 4),
        ("toLower(null)", None), ("size(null)", None),
    ]
    exprs = ", ".join(c[0] for c in cases)
    res = q(r, graph, "RETURN " + exprs)
    for (expr, want), got in zip(cases, res.rows[0]):
        assert got == want and type(got) is type(want), (expr, got, want)
    res = q(r, graph, "RETURN toFloat(3)")
    assert isinstance(res.scalar, float)


EXPRESSIONS = [
    ("null = null", None), ("1 IN [null]", None), ("1 IN [1, null]", True),
    ("[1, 2] + 3", [1, 2, 3]), ("[1, 2] + [3]", [1, 2, 3]), ("'a' + 1", "a1"),
    ("7 / 2", 3), ("-7 / 2", -3), ("7 % 3", 1), ("-7 % 3", -1), ("2 ^ 3", 8.0), ("7.0 / 2", 3.5),
    ("[1, 2, 3][1]", 2), ("[1, 2, 3][-1]", 3), ("[1, 2, 3][0..2]", [1, 2]), ("[1, 2, 3][5]", None),
    ("'a' < 'b'", True), ("'B' < 'a'", True), ("1 < 2.5", True), ("1 = 1.0", True), ("1 < 'a'", None),
    ("NOT null", None), ("null AND false", False), ("null OR true", True), ("null XOR true", None),
    ("CASE WHEN null THEN 1 ELSE 2 END", 2), ("coalesce(null, 1) + 1", 2),
    ("'abc' STARTS WITH null", None), ("[1, 2] = [1, 2]", True), ("{a: 1} = {a: 1}", True),
    ("size('żółw')", 4), ("0.1 * 3", 0.3),
]


def test_expression_semantics(r, graph):
    text = "RETURN " + ", ".join("%s AS c%d" % (e, i) for i, (e, _) in enumerate(EXPRESSIONS))
    row = q(r, graph, text).rows[0]
    for (expr, want), got in zip(EXPRESSIONS, row):
        assert got == want and type(got) is type(want), (expr, got, want)


def test_integer_overflow_is_an_error(r, graph):
    for text in ("RETURN 9223372036854775807 + 1", "RETURN abs(-9223372036854775807 - 1)",
                 "RETURN range(1, 10, 0)"):
        fails_unchanged(r, graph, text)


def test_lexical_details(r, graph):
    verbose(r, graph, "CREATE (:`My Label` {`a b`: 1, s: \"dq 'x'\"})")
    assert q(r, graph, "MATCH (n:`My Label`) // a comment\nRETURN n.`a b`, n.s").rows == [[1, "dq 'x'"]]
    assert q(r, graph, "match (n) where n.`a b` = 1 return count(n)").scalar == 1
    assert q(r, graph, "/* block\ncomment */ RETURN 'a\\'b', \"c\\\"d\", '\\u00e9\\n'").rows == \
        [["a'b", 'c"d', "é\n"]]


def test_timestamp_and_rand(r, graph):
    ts, ts2, x = q(r, graph, "RETURN timestamp() AS t1, timestamp() AS t2, rand()").rows[0]
    assert isinstance(ts, int) and ts > 1_600_000_000_000 and ts == ts2
    assert isinstance(x, float) and 0.0 <= x < 1.0
    # in a write, the stored values are what the reply says (same on every replica)
    res = q(r, graph, "CREATE (n:R {t: timestamp(), x: rand()}) RETURN n.t, n.x")
    t, x = res.rows[0]
    assert q(r, graph, "MATCH (n:R) RETURN n.t, n.x").rows == [[t, x]]
    xs = q(r, graph, "UNWIND range(1, 50) AS i RETURN rand()").column
    assert len(set(xs)) > 1 and all(0.0 <= v < 1.0 for v in xs)


# --- reply formats ------------------------------------------------------------------

def test_compact_value_types(r, people):
    reply = r.execute_command("GRAPH.QUERY", people,
                              "MATCH p = (a:Person {name:'Ann'})-[w:WORKS_AT]->(c) "
                              "RETURN null, 'a', 1, true, 2.5, [1, 'x'], {k: 1}, w, a, p", "--compact")
    header, rows, stats = harness.parse_reply(reply)
    assert [h[0] for h in header] == [1] * 10
    assert [h[1] for h in header] == ["null", "'a'", "1", "true", "2.5", "[1, 'x']", "{k: 1}",
                                     "w", "a", "p"]
    assert len(rows) == 1
    types = [cell[0] for cell in rows[0]]
    assert types == [1, 2, 3, 4, 5, 6, 10, 7, 8, 9]
    assert rows[0][:5] == [[1, None], [2, "a"], [3, 1], [4, "true"], [5, "2.5"]]
    assert rows[0][5] == [6, [[3, 1], [2, "x"]]]
    assert rows[0][6] == [10, ["k", [3, 1]]]
    assert TIME_RE.match(stats[-1])
    # decoded with the schema procedures
    res = compact(r, people, "MATCH p = (a:Person {name:'Ann'})-[w:WORKS_AT]->(c) RETURN a, w, c, p",
                  schema=True)
    a, w, c, p = res.rows[0]
    assert isinstance(a, Node) and a.labels == ["Person"] and a.props == \
        {"name": "Ann", "age": 30, "city": "Oslo"}
    assert isinstance(w, Edge) and w.type == "WORKS_AT" and (w.src, w.dst) == (a.id, c.id)
    assert isinstance(p, Path) and [n.id for n in p.nodes] == [a.id, c.id] and \
        [e.id for e in p.edges] == [w.id]


def test_verbose_entities(r, people):
    res = verbose(r, people, "MATCH (a:Person {name:'Bob'})-[k:KNOWS]->(b) RETURN a, k, a.age, 2.5, true, null")
    a, k, age, dbl, t, n = res.rows[0]
    assert a[0] == ["id", a[0][1]] and isinstance(a[0][1], int)
    assert a[1] == ["labels", ["Person"]]
    assert a[2][0] == "properties" and sorted(map(tuple, a[2][1])) == \
        [("age", 25), ("city", "Rome"), ("name", "Bob")]
    assert [f[0] for f in k] == ["id", "type", "src_node", "dest_node", "properties"]
    assert k[1] == ["type", "KNOWS"] and k[2] == ["src_node", a[0][1]]
    assert k[4] == ["properties", [["since", 2015]]]
    assert (age, dbl, t, n) == (25, "2.5", "true", None)


def test_dense_schema_ids(r, graph):
    verbose(r, graph, "CREATE (:A {x: 1})-[:R {y: 2}]->(:B {z: 3})")
    verbose(r, graph, "CREATE (:C)-[:S]->(:A)")
    reply = r.execute_command("GRAPH.QUERY", graph, "MATCH (a:A)-[r:R]->(b:B) RETURN a, r, b", "--compact")
    (_, a), (_, e), (_, b) = reply[1][0]
    assert a[1] == [0] and b[1] == [1] and e[1] == 0
    keys = [a[2][0][0], e[4][0][0], b[2][0][0]]
    assert sorted(keys) == [0, 1, 2]
    assert verbose(r, graph, "CALL db.labels()").column == ["A", "B", "C"]
    assert verbose(r, graph, "CALL db.relationshipTypes()").column == ["R", "S"]
    pk = verbose(r, graph, "CALL db.propertyKeys()").column
    assert sorted(pk) == ["x", "y", "z"] and [pk[k] for k in keys] == ["x", "y", "z"]


def test_procedures(r, people):
    res = verbose(r, people, "CALL db.labels()")
    assert res.header == ["label"] and sorted(res.column) == ["Admin", "Company", "Person"]
    res = verbose(r, people, "CALL db.relationshipTypes()")
    assert res.header == ["relationshipType"] and sorted(res.column) == ["KNOWS", "WORKS_AT"]
    res = verbose(r, people, "CALL db.propertyKeys()")
    assert res.header == ["propertyKey"] and sorted(res.column) == ["age", "city", "name", "since"]
    assert sorted(verbose(r, people, "CALL DB.LABELS()").column) == ["Admin", "Company", "Person"]
    assert verbose(r, people, "call db.RelationshipTypes()").column == \
        verbose(r, people, "CALL db.relationshipTypes()").column


# --- indexes --------------------------------------------------------------------------

def plan(r, g, text):
    lines = r.execute_command("GRAPH.EXPLAIN", g, text)
    assert isinstance(lines, list) and all(isinstance(x, str) for x in lines), lines
    return "\n".join(lines)


def test_index_create_explain_drop(r, graph):
    verbose(r, graph, "UNWIND range(0, 99) AS i CREATE (:P {v: i, s: toString(i)})")
    queries = {
        "MATCH (n:P) WHERE n.v = 5 RETURN n.v": [5],
        "MATCH (n:P {v: 7}) RETURN n.v": [7],
        "MATCH (n:P) WHERE n.v IN [1, 2, 200] RETURN n.v ORDER BY n.v": [1, 2],
        "MATCH (n:P) WHERE n.v > 96 RETURN n.v ORDER BY n.v": [97, 98, 99],
        "MATCH (n:P) WHERE n.v >= 10 AND n.v < 13 RETURN n.v ORDER BY n.v": [10, 11, 12],
    }
    for text, want in queries.items():
        assert "index" not in plan(r, graph, text).lower(), text
        assert names(r, graph, text) == want
    res = verbose(r, graph, "CREATE INDEX FOR (n:P) ON (n.v)")
    assert_stats(res, ["Indices created: 1"])
    for text, want in queries.items():
        p = plan(r, graph, text)
        assert "index" in p.lower(), (text, p)
        assert names(r, graph, text) == want, text
    # the index follows writes
    verbose(r, graph, "CREATE (:P {v: 1000})")
    verbose(r, graph, "MATCH (n:P {v: 5}) SET n.v = 500")
    verbose(r, graph, "MATCH (n:P {v: 6}) DELETE n")
    for v, c in ((1000, 1), (5, 0), (500, 1), (6, 0)):
        assert q(r, graph, "MATCH (n:P) WHERE n.v = %d RETURN count(n)" % v).scalar == c, v
    assert q(r, graph, "MATCH (n:P) WHERE n.v >= 499 RETURN count(n)").scalar == 2
    # string index next to the integer one
    verbose(r, graph, "CREATE INDEX FOR (n:P) ON (n.s)")
    assert "index" in plan(r, graph, "MATCH (n:P) WHERE n.s = '42' RETURN n").lower()
    assert names(r, graph, "MATCH (n:P) WHERE n.s = '42' RETURN n.v") == [42]
    res = verbose(r, graph, "DROP INDEX ON :P(v)")
    assert_stats(res, ["Indices deleted: 1"])
    assert "index" not in plan(r, graph, "MATCH (n:P) WHERE n.v = 5 RETURN n").lower()
    assert names(r, graph, "MATCH (n:P) WHERE n.v = 7 RETURN n.v") == [7]
    verbose(r, graph, "DROP INDEX ON :P(s)")


def test_index_errors_change_nothing(r, graph):
    verbose(r, graph, "CREATE (:P {v: 1})")
    verbose(r, graph, "CREATE INDEX FOR (n:P) ON (n.v)")
    # FalkorDB: creating an existing index reports it without error or says so
    try:
        res = verbose(r, graph, "CREATE INDEX FOR (n:P) ON (n.v)")
        assert res.stat("Indices created") == 0
    except redis.ResponseError:
        pass
    fails_unchanged(r, graph, "DROP INDEX ON :P(nope)")


# --- RO_QUERY, LIST, DELETE, TIMEOUT --------------------------------------------------------

def test_ro_query(r, people):
    for text in ("CREATE (:X)", "MATCH (p:Person) SET p.x = 1", "MERGE (:X)",
                 "MATCH (p:Person {name:'Cid'}) DETACH DELETE p", "MATCH (p:Person) REMOVE p.age",
                 "CREATE INDEX FOR (n:Person) ON (n.name)"):
        msg = fails_unchanged(r, people, text, cmd="GRAPH.RO_QUERY")
        assert RO_ERROR in msg, (text, msg)
    res = compact(r, people, "MATCH (p:Person) RETURN count(p)", cmd="GRAPH.RO_QUERY")
    assert res.scalar == 4


def test_list_and_delete(r, graph):
    verbose(r, graph, "CREATE (:L {v: 1})")
    assert graph in r.execute_command("GRAPH.LIST")
    reply = r.execute_command("GRAPH.DELETE", graph)
    assert reply is not None
    assert graph not in r.execute_command("GRAPH.LIST")
    with pytest.raises(redis.ResponseError):
        r.execute_command("GRAPH.DELETE", graph)
    assert q(r, graph, "MATCH (n) RETURN count(n)").scalar == 0
    # a re-created graph starts with fresh schema ids
    verbose(r, graph, "CREATE (:Fresh)")
    assert verbose(r, graph, "CALL db.labels()").column == ["Fresh"]
    reply = r.execute_command("GRAPH.QUERY", graph, "MATCH (n) RETURN n", "--compact")
    assert reply[1][0][0][1][1] == [0]


def test_graphs_are_isolated(r, graph):
    other = graph + "_other"
    try:
        verbose(r, graph, "CREATE (:Only {v: 1})")
        verbose(r, other, "CREATE (:Else {v: 2}), (:Else {v: 3})")
        assert q(r, graph, "MATCH (n) RETURN count(n)").scalar == 1
        assert q(r, other, "MATCH (n) RETURN count(n)").scalar == 2
        assert verbose(r, other, "CALL db.labels()").column == ["Else"]
    finally:
        r.execute_command("GRAPH.DELETE", other)


HEAVY = "UNWIND range(1, 5000) AS a UNWIND range(1, 5000) AS b RETURN count(*)"


def test_timeout(r, graph):
    msg = error_of(r, graph, HEAVY, "TIMEOUT", "1")
    assert "time" in msg.lower(), msg
    msg = error_of(r, graph, HEAVY, "timeout", "1")   # redis-py spells it in lower case
    assert "time" in msg.lower(), msg
    assert compact(r, graph, "RETURN 1", "TIMEOUT", "10000").scalar == 1
    assert r.ping()


def test_bad_arguments(r, graph):
    for extra in (("TIMEOUT",), ("TIMEOUT", "abc"), ("TIMEOUT", "-5")):
        with pytest.raises(redis.ResponseError):
            r.execute_command("GRAPH.QUERY", graph, "RETURN 1", *extra)
    assert r.ping()


# --- errors ---------------------------------------------------------------------------------

LINE_RE = re.compile(r"line\D{0,3}(\d+)", re.I)
COL_RE = re.compile(r"col(?:umn)?\D{0,3}(\d+)", re.I)

SYNTAX_ERRORS = [
    ("MATCH (n RETURN n", 1),
    ("MATCH (n)\nRETRN n", 2),
    ("RETURN 'unterminated", 1),
    ("CREATE (:A {x: })", 1),
    ("MATCH (n)\nWHERE n.x = 1\nRETURN n,", 3),
    ("MATCH (a)-[:R]->(b RETURN a", 1),
]


@pytest.mark.parametrize("text,line", SYNTAX_ERRORS, ids=[s[0].replace("\n", "\\n") for s in SYNTAX_ERRORS])
def test_syntax_errors(r, people, text, line):
    msg = fails_unchanged(r, people, text)
    m, c = LINE_RE.search(msg), COL_RE.search(msg)
    assert m and c, "no line/column in: %s" % msg
    assert int(m.group(1)) == line, msg
    assert int(c.group(1)) >= 1, msg


SEMANTIC_ERRORS = [
    "RETURN x",
    "MATCH (n) RETURN nosuchfunction(n)",
    "CREATE (n:A) CREATE (n:B)",
    "MATCH (n) RETURN count(count(n))",
]


@pytest.mark.parametrize("text", SEMANTIC_ERRORS)
def test_semantic_errors(r, people, text):
    assert fails_unchanged(r, people, text)


RUNTIME_ERRORS = [
    "RETURN toUpper(1)",
    "UNWIND [1, 'a'] AS x RETURN x * 2",
    "RETURN 1 / 0",
    "MATCH (p:Person) SET p.age = p.name * 2",
    "UNWIND [1, 2, 'x'] AS v CREATE (:E {v: v * 2})",
    "MATCH (p:Person) CREATE (:E {n: p.name}) WITH p RETURN toUpper(p.age)",
    "MATCH (p:Person {name:'Ann'}) DETACH DELETE p WITH 1 AS x RETURN abs('a')",
    "MERGE (c:City {name: 'X'}) ON CREATE SET c.v = toUpper(1)",
]


@pytest.mark.parametrize("text", RUNTIME_ERRORS)
def test_runtime_errors_change_nothing(r, people, text):
    fails_unchanged(r, people, text)
    assert r.ping()


def test_error_on_missing_graph_read(r, graph):
    # FalkorDB answers reads of a missing graph with an empty result, not a crash
    try:
        res = q(r, graph + "_missing", "MATCH (n) RETURN count(n)")
        assert res.scalar == 0
    except redis.ResponseError:
        pass
    assert r.ping()


# --- a FalkorDB-style client library, unchanged ---------------------------------------------

def test_redis_py_graph_client(r, graph):
    g = r.graph(graph)
    res = g.query("CREATE (:Person {name: 'A', age: 3})-[:K {w: 1.5}]->(:Person {name: 'B'})")
    assert res.nodes_created == 2 and res.relationships_created == 1 and res.labels_added == 1
    res = g.query("MATCH (a:Person)-[k:K]->(b) RETURN a, k, b, a.age")
    a, k, b, age = res.result_set[0]
    assert a.label == "Person" and a.properties == {"name": "A", "age": 3}
    assert k.relation == "K" and k.properties == {"w": 1.5}
    assert b.properties == {"name": "B"} and age == 3
    res = g.query("MATCH (p:Person {name: $n}) RETURN p.name", {"n": "B"})
    assert res.result_set == [["B"]]
    res = g.query("MATCH (p:Person) RETURN count(p)", read_only=True)
    assert res.result_set == [[2]]
    assert [x[0] for x in g.labels()] == ["Person"]
    assert [x[0] for x in g.relationship_types()] == ["K"]
    assert sorted(x[0] for x in g.property_keys()) == ["age", "name", "w"]
    res = g.query("MATCH p = (:Person)-[:K]->() RETURN p")
    path = res.result_set[0][0]
    assert path.nodes_count() == 2 and path.edge_count() == 1
    with pytest.raises(redis.ResponseError):
        g.query("CREATE (:Nope)", read_only=True)
    g.delete()
    assert graph not in r.execute_command("GRAPH.LIST")

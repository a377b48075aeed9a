"""The Debian bookworm package graph: imported with `quiver import`, counted
against manifest.json, and a dozen questions answered by Quiver compared
with the answers of debian_oracle.py, which reads the CSV files itself.

The import runs once per module (module-scoped fixture).
"""
import json
import os
import subprocess
import time

import pytest

import debian_oracle as oracle
import harness
from harness import compact, verbose

GRAPH = "debian"
IMPORT_TIMEOUT_S = 900
QUERY_TIMEOUT_MS = "120000"   # bound for the path-explosion queries (a hang guard, not a timing check)


@pytest.fixture(scope="module")
def data_dir():
    return harness.data_path()


@pytest.fixture(scope="module")
def answers(data_dir):
    a = oracle.compute(data_dir)
    oracle.check_manifest(a, data_dir)
    return a


@pytest.fixture(scope="module")
def manifest(data_dir):
    with open(os.path.join(data_dir, "manifest.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def imported(server, data_dir):
    cli = harness.quiver_cli_path()
    if not os.access(cli, os.X_OK):
        pytest.fail("quiver CLI not found at %s: build with ./deploy/build or set QUIVER" % cli)
    argv = [cli, "import", "--host", harness.HOST, "--port", str(server.port),
            "--graph", GRAPH, data_dir]
    t0 = time.monotonic()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=IMPORT_TIMEOUT_S)
    wall = time.monotonic() - t0
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    print("quiver import: exit %d in %.1fs\nstdout:\n%s\nstderr:\n%s"
          % (p.returncode, wall, out[-3000:], err[-3000:]))
    return {"argv": argv, "rc": p.returncode, "stdout": out, "stderr": err, "wall_s": wall}


@pytest.fixture(scope="module")
def rq(r, imported):
    """A client for queries, available only once the import succeeded."""
    assert imported["rc"] == 0, "import failed (exit %d):\n%s\n%s" % (
        imported["rc"], imported["stdout"][-2000:], imported["stderr"][-2000:])
    return r


def one(r, text, *extra):
    return compact(r, GRAPH, text, *extra).scalar


def column(r, text, *extra):
    return compact(r, GRAPH, text, *extra).column


def test_import_exit_status_and_summary(imported, manifest):
    assert imported["rc"] == 0, imported
    text = imported["stdout"] + imported["stderr"]
    # the final summary reports what was loaded
    total_nodes = sum(manifest["nodes"].values())
    total_rels = sum(manifest["relationships"].values())
    flat = text.replace(",", "").replace("_", "")
    assert any(str(n) in flat for n in (total_nodes, total_rels, total_nodes + total_rels)), \
        "no summary with the loaded counts:\n" + text[-2000:]


def test_counts_per_label(rq, manifest):
    for label, n in sorted(manifest["nodes"].items()):
        assert one(rq, "MATCH (n:%s) RETURN count(n)" % label) == n, label
    assert one(rq, "MATCH (n) RETURN count(n)") == sum(manifest["nodes"].values())


def test_counts_per_type(rq, manifest):
    for typ, n in sorted(manifest["relationships"].items()):
        assert one(rq, "MATCH ()-[r:%s]->() RETURN count(r)" % typ) == n, typ
    assert one(rq, "MATCH ()-[r]->() RETURN count(r)") == sum(manifest["relationships"].values())


def test_schema_procedures(rq, manifest):
    assert sorted(verbose(rq, GRAPH, "CALL db.labels()").column) == sorted(manifest["nodes"])
    assert sorted(verbose(rq, GRAPH, "CALL db.relationshipTypes()").column) == \
        sorted(manifest["relationships"])
    keys = set(verbose(rq, GRAPH, "CALL db.propertyKeys()").column)
    assert {"name", "version", "installed_size_kib", "essential", "optional",
            "alternative_group", "email"} <= keys, keys


def test_typed_columns(rq, answers):
    res = compact(rq, GRAPH, "MATCH (p:Package {name: 'bash'}) "
                             "RETURN p.installed_size_kib, p.essential, p.name, p.section")
    assert res.rows == [[answers["bash_installed_size_kib"], answers["bash_essential"],
                         "bash", "shells"]]
    raw = rq.execute_command("GRAPH.QUERY", GRAPH, "MATCH (p:Package {name: 'bash'}) "
                             "RETURN p.installed_size_kib, p.essential", "--compact")
    assert [c[0] for c in raw[1][0]] == [harness.VALUE_INTEGER, harness.VALUE_BOOLEAN]
    res = compact(rq, GRAPH, "MATCH (:Package {name: 'bash'})-[d:PRE_DEPENDS_ON|DEPENDS_ON]->() "
                             "RETURN d.alternative_group, d.alternative_index, d.optional LIMIT 1")
    g, i, o = res.rows[0]
    assert isinstance(g, int) and isinstance(i, int) and isinstance(o, bool)
    # an empty cell is a missing property, not an empty string
    assert one(rq, "MATCH (:Package {name: 'bash'})-[d:DEPENDS_ON]->() "
                   "WHERE d.version_constraint = '' RETURN count(d)") == 0


def test_q01_direct_dependencies(rq, answers):
    assert column(rq, "MATCH (:Package {name: '%s'})-[:DEPENDS_ON]->(d) "
                      "RETURN DISTINCT d.name ORDER BY d.name" % oracle.DEPS_OF) == answers["deps_of"]
    assert one(rq, "MATCH (:Package {name: '%s'})-[r:DEPENDS_ON]->() RETURN count(r)"
               % oracle.DEPS_OF) == answers["deps_of_rel_count"]


def test_q02_packages_of_maintainer(rq, answers):
    assert one(rq, "MATCH (p:Package)-[:MAINTAINED_BY]->(:Maintainer {email: '%s'}) "
                   "RETURN count(p)" % oracle.MAINTAINER_EMAIL) == answers["maintainer_package_count"]


def test_q03_reverse_dependencies_of_libc6(rq, answers):
    res = compact(rq, GRAPH, "MATCH (p:Package)-[r:DEPENDS_ON]->(:Package {name: '%s'}) "
                             "RETURN count(DISTINCT p), count(r)" % oracle.REVDEP_OF)
    assert res.rows == [[answers["revdeps_distinct"], answers["revdeps_rels"]]]


def test_q04_essential_packages(rq, answers):
    assert column(rq, "MATCH (p:Package) WHERE p.essential = true RETURN p.name ORDER BY p.name") == \
        answers["essential_names"]
    assert one(rq, "MATCH (p:Package {essential: true}) RETURN count(p)") == answers["essential_count"]


def test_q05_source_of_bash(rq, answers):
    res = compact(rq, GRAPH, "MATCH (:Package {name: '%s'})-[:BUILT_FROM]->(s:Source) "
                             "RETURN s.name, s.version ORDER BY s.name" % oracle.SOURCE_OF)
    assert res.rows == answers["source_of"]


def test_q06_version(rq, answers):
    assert one(rq, "MATCH (p:Package {name: '%s'}) RETURN p.version" % oracle.VERSION_OF) == \
        answers["version_of"]


def test_q07_providers_of_virtual(rq, answers):
    assert column(rq, "MATCH (p:Package)-[:PROVIDES]->(:VirtualPackage {name: '%s'}) "
                      "RETURN p.name ORDER BY p.name" % oracle.VIRTUAL) == answers["providers"]


def test_q08_optional_dependencies(rq, answers):
    assert one(rq, "MATCH ()-[r:DEPENDS_ON {optional: true}]->() RETURN count(r)") == \
        answers["optional_depends"]
    assert one(rq, "MATCH ()-[r:DEPENDS_ON]->() WHERE r.optional RETURN count(r)") == \
        answers["optional_depends"]


def test_q09_two_hop(rq, answers):
    assert one(rq, "MATCH (a:Package)-[:DEPENDS_ON]->(b)-[:DEPENDS_ON]->(:Package {name: '%s'}) "
                   "RETURN count(DISTINCT a)" % oracle.TWO_HOP_TARGET,
               "TIMEOUT", QUERY_TIMEOUT_MS) == answers["two_hop_distinct"]


def test_q10_transitive_closure(rq, answers):
    assert one(rq, "MATCH (:Package {name: '%s'})-[:DEPENDS_ON*]->(d) RETURN count(DISTINCT d)"
               % oracle.CLOSURE_FROM, "TIMEOUT", QUERY_TIMEOUT_MS) == answers["closure_count"]
    assert one(rq, "MATCH (:Package {name: '%s'})-[:DEPENDS_ON*1..2]->(d) RETURN count(DISTINCT d)"
               % oracle.CLOSURE_FROM, "TIMEOUT", QUERY_TIMEOUT_MS) == answers["closure_1_2_count"]


def test_q10b_transitive_closure_with_millions_of_paths(rq, answers):
    # kde-full's dependency paths number in the millions: only a search that
    # keeps distinct end nodes (not paths) answers this.
    assert one(rq, "MATCH (:Package {name: '%s'})-[:DEPENDS_ON*]->(d) RETURN count(DISTINCT d)"
               % oracle.CLOSURE_HEAVY, "TIMEOUT", QUERY_TIMEOUT_MS) == answers["closure_heavy_count"]


def test_q11_top_maintainers(rq, answers):
    res = compact(rq, GRAPH, "MATCH (p:Package)-[:MAINTAINED_BY]->(m:Maintainer) "
                             "RETURN m.email AS email, count(p) AS c ORDER BY c DESC, email "
                             "LIMIT %d" % oracle.TOP_N)
    assert res.rows == answers["top_maintainers"]


def test_q12_average_size_in_section(rq, answers):
    res = compact(rq, GRAPH, "MATCH (p:Package {section: '%s'}) "
                             "RETURN avg(p.installed_size_kib), count(p)" % oracle.SECTION)
    avg, n = res.rows[0]
    assert n == answers["section_count"]
    assert avg == pytest.approx(answers["section_avg_size"], rel=1e-12)


def test_q13_optional_match(rq, answers):
    assert one(rq, "MATCH (p:Package) OPTIONAL MATCH (p)-[:BUILT_FROM]->(s:Source) "
                   "WITH p, s WHERE s IS NULL RETURN count(p)") == answers["no_built_from"]
    assert one(rq, "MATCH (p:Package) OPTIONAL MATCH (p)-[r:DEPENDS_ON]->() "
                   "WITH p, count(r) AS c WHERE c = 0 RETURN count(p)") == answers["no_depends"]


def test_q14_missing_targets(rq, answers):
    assert one(rq, "MATCH (:Package)-[:DEPENDS_ON]->(m:MissingPackage) RETURN count(DISTINCT m)") == \
        answers["missing_dep_targets"]


def test_q15_prefix(rq, answers):
    assert one(rq, "MATCH (p:Package) WHERE p.name STARTS WITH 'python3-' RETURN count(p)") == \
        answers["python3_prefix"]


def test_q16_grouping(rq, answers):
    res = compact(rq, GRAPH, "MATCH (p:Package {priority: 'required'}) "
                             "RETURN p.architecture AS a, count(*) ORDER BY a")
    assert res.rows == answers["required_by_arch"]


def test_zz_index_on_package_name(rq, answers):
    # runs last in this module (pytest keeps file order): it changes the plan
    text = "MATCH (p:Package) WHERE p.name = '%s' RETURN p.version" % oracle.VERSION_OF
    before = "\n".join(rq.execute_command("GRAPH.EXPLAIN", GRAPH, text))
    assert "index" not in before.lower(), before
    res = verbose(rq, GRAPH, "CREATE INDEX FOR (p:Package) ON (p.name)")
    assert res.stat("Indices created") == 1, res.stats
    after = "\n".join(rq.execute_command("GRAPH.EXPLAIN", GRAPH, text))
    assert "index" in after.lower(), after
    assert one(rq, text) == answers["version_of"]
    # the same questions through the index
    assert column(rq, "MATCH (:Package {name: '%s'})-[:DEPENDS_ON]->(d) "
                      "RETURN DISTINCT d.name ORDER BY d.name" % oracle.DEPS_OF) == answers["deps_of"]
    assert one(rq, "MATCH (:Package {name: '%s'})-[:DEPENDS_ON*]->(d) RETURN count(DISTINCT d)"
               % oracle.CLOSURE_FROM, "TIMEOUT", QUERY_TIMEOUT_MS) == answers["closure_count"]
    assert one(rq, "MATCH (p:Package) WHERE p.name IN ['bash', 'libc6', 'no-such-package'] "
                   "RETURN count(p)") == 2
    assert "index" in "\n".join(rq.execute_command(
        "GRAPH.EXPLAIN", GRAPH, "MATCH (p:Package) WHERE p.name IN ['bash'] RETURN p")).lower()

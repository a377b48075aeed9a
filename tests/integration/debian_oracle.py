#!/usr/bin/env python3
"""debian_oracle.py -- expected answers about the Debian bookworm graph,
computed from the CSV files alone (never from Quiver).

The integration test test_debian.py asks Quiver a dozen questions in Cypher
and compares with what this script computes.  The script is deliberately
independent of every Quiver module: it reads the neo4j-admin-import style
CSV files (README.md beside the data) with Python's csv and gzip modules and
answers with plain dicts, sets and a BFS.  Each answer follows openCypher's
semantics for the query the test sends (noted beside each question), e.g.
relationship uniqueness within one pattern, DISTINCT, null-skipping
aggregates, string order by code point.

Usage:  python3 debian_oracle.py [DATA_DIR]    prints every answer as JSON.
"""
import csv
import gzip
import json
import os
import sys
from collections import defaultdict, deque

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# The questions' parameters, shared with test_debian.py so both sides ask
# about the same packages.
DEPS_OF = "git"                      # direct DEPENDS_ON targets
MAINTAINER_EMAIL = "debian-boot@lists.debian.org"
REVDEP_OF = "libc6"                  # reverse DEPENDS_ON
SOURCE_OF = "bash"                   # BUILT_FROM target
VERSION_OF = "libc6"
VIRTUAL = "mail-transport-agent"     # providers of a virtual package
TWO_HOP_TARGET = "libssl3"           # a -> b -> libssl3
CLOSURE_FROM = "python3"             # DEPENDS_ON* reachable set (mid-size)
CLOSURE_HEAVY = "kde-full"           # DEPENDS_ON* with a huge number of paths
SECTION = "utils"                    # avg installed size
TOP_N = 5


def default_data_dir():
    """$QUIVER_DEBIAN_DATA, data/debian-bookworm in the repo, else
    ../shared/data/debian-bookworm."""
    for d in ([os.environ["QUIVER_DEBIAN_DATA"]] if os.environ.get("QUIVER_DEBIAN_DATA") else []) + [os.path.join(REPO, "data", "debian-bookworm"),
              os.path.join(os.path.dirname(REPO), "shared", "data", "debian-bookworm")]:
        if os.path.isfile(os.path.join(d, "manifest.json")):
            return d
    raise FileNotFoundError("no debian-bookworm data directory found")


def _rows(path):
    """Yield (header, row) dicts from a .csv or .csv.gz file.

    Header names keep only the part before ':' (e.g. 'installed_size_kib:int'
    -> 'installed_size_kib'); the neo4j columns ':START_ID' etc. keep their
    full spelling.  Values are typed by the header's :int / :boolean suffix,
    and an empty cell is a missing value (None), as the README says."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        cols = []
        for h in header:
            if h.startswith(":"):
                cols.append((h, "raw"))
            elif ":" in h:
                name, typ = h.split(":", 1)
                cols.append((name, typ))
            else:
                cols.append((h, "string"))
        for row in reader:
            rec = {}
            for (name, typ), cell in zip(cols, row):
                if cell == "" and typ != "raw":
                    rec[name] = None
                elif typ == "int":
                    rec[name] = int(cell)
                elif typ == "float":
                    rec[name] = float(cell)
                elif typ == "boolean":
                    rec[name] = (cell.lower() == "true")
                else:
                    rec[name] = cell
            yield rec


class DebianGraph:
    """The whole graph in memory: nodes by id, edges as a list per type."""

    def __init__(self, data_dir):
        self.data_dir = data_dir
        self.nodes = {}                  # id -> (label, props)
        self.edges = defaultdict(list)   # type -> [(start, end, props)]
        files = sorted(os.listdir(data_dir))
        for fn in files:
            if fn.startswith("nodes_") and (fn.endswith(".csv") or fn.endswith(".csv.gz")):
                for rec in _rows(os.path.join(data_dir, fn)):
                    nid = rec.pop("id")
                    label = rec.pop(":LABEL")
                    assert nid not in self.nodes, nid
                    self.nodes[nid] = (label, rec)
        for fn in files:
            if fn.startswith("edges_") and (fn.endswith(".csv") or fn.endswith(".csv.gz")):
                for rec in _rows(os.path.join(data_dir, fn)):
                    s = rec.pop(":START_ID")
                    e = rec.pop(":END_ID")
                    t = rec.pop(":TYPE")
                    assert s in self.nodes and e in self.nodes, (s, e)
                    self.edges[t].append((s, e, rec))

    def name(self, nid):
        return self.nodes[nid][1]["name"]

    def pkg(self, name):
        nid = "pkg:" + name
        assert self.nodes[nid][0] == "Package"
        return nid


def compute(data_dir=None):
    """Every expected answer, keyed by question name (see test_debian.py)."""
    data_dir = data_dir or default_data_dir()
    g = DebianGraph(data_dir)
    a = {}

    # Counts per label and per relationship type (checked against the
    # manifest too, so the oracle itself is validated).
    labels = defaultdict(int)
    for label, _ in g.nodes.values():
        labels[label] += 1
    a["label_counts"] = dict(sorted(labels.items()))
    a["type_counts"] = {t: len(v) for t, v in sorted(g.edges.items())}
    a["node_total"] = len(g.nodes)
    a["rel_total"] = sum(len(v) for v in g.edges.values())

    dep = g.edges["DEPENDS_ON"]
    out_dep = defaultdict(list)      # start -> [(edge index, end)]
    for i, (s, e, _) in enumerate(dep):
        out_dep[s].append((i, e))

    # 1. MATCH (:Package {name:$p})-[:DEPENDS_ON]->(d) RETURN DISTINCT d.name ORDER BY d.name
    src = g.pkg(DEPS_OF)
    a["deps_of"] = sorted({g.name(e) for _, e in out_dep[src]})
    #    ... and the number of DEPENDS_ON relationships (rows, duplicates kept)
    a["deps_of_rel_count"] = len(out_dep[src])

    # 2. MATCH (p:Package)-[:MAINTAINED_BY]->(:Maintainer {email:$e}) RETURN count(p)
    mnt = "mnt:" + MAINTAINER_EMAIL
    a["maintainer_package_count"] = sum(
        1 for s, e, _ in g.edges["MAINTAINED_BY"]
        if e == mnt and g.nodes[s][0] == "Package")

    # 3. reverse dependencies of libc6: distinct packages, and relationships
    tgt = g.pkg(REVDEP_OF)
    rev = [s for s, e, _ in dep if e == tgt]
    a["revdeps_distinct"] = len(set(rev))
    a["revdeps_rels"] = len(rev)

    # 4. MATCH (p:Package) WHERE p.essential = true RETURN p.name ORDER BY p.name
    ess = sorted(p["name"] for lbl, p in g.nodes.values()
                 if lbl == "Package" and p.get("essential") is True)
    a["essential_names"] = ess
    a["essential_count"] = len(ess)

    # 5. MATCH (:Package {name:'bash'})-[:BUILT_FROM]->(s:Source) RETURN s.name, s.version
    src_rows = sorted((g.name(e), g.nodes[e][1]["version"])
                      for s, e, _ in g.edges["BUILT_FROM"] if s == g.pkg(SOURCE_OF))
    a["source_of"] = [list(r) for r in src_rows]

    # 6. MATCH (p:Package {name:$p}) RETURN p.version
    a["version_of"] = g.nodes[g.pkg(VERSION_OF)][1]["version"]

    # 7. MATCH (p:Package)-[:PROVIDES]->(:VirtualPackage {name:$v}) RETURN p.name ORDER BY p.name
    virt = "virt:" + VIRTUAL
    assert g.nodes[virt][0] == "VirtualPackage"
    a["providers"] = sorted(g.name(s) for s, e, _ in g.edges["PROVIDES"] if e == virt)

    # 8. MATCH ()-[r:DEPENDS_ON {optional:true}]->() RETURN count(r)
    a["optional_depends"] = sum(1 for _, _, p in dep if p.get("optional") is True)

    # 9. MATCH (a:Package)-[r1:DEPENDS_ON]->(b)-[r2:DEPENDS_ON]->(:Package {name:$t})
    #    RETURN count(DISTINCT a)   -- r1 and r2 must be different relationships
    t = g.pkg(TWO_HOP_TARGET)
    into_t = defaultdict(set)        # b -> {edge index of b->t}
    for i, (s, e, _) in enumerate(dep):
        if e == t:
            into_t[s].add(i)
    two_hop = set()
    for i, (s, e, _) in enumerate(dep):
        if g.nodes[s][0] != "Package":
            continue
        r2s = into_t.get(e)
        if r2s and (r2s - {i}):
            two_hop.add(s)
    a["two_hop_distinct"] = len(two_hop)

    # 10. MATCH (:Package {name:$p})-[:DEPENDS_ON*]->(d) RETURN count(DISTINCT d)
    # A node is the end of some relationship-unique path of length >= 1 iff it
    # is reachable in >= 1 step (the shortest walk repeats no relationship), so
    # BFS from the start's successors is exact; the start counts only if it
    # lies on a cycle.
    def closure(start):
        seen = set()
        queue = deque()
        for _, e in out_dep[start]:
            if e not in seen:
                seen.add(e)
                queue.append(e)
        while queue:
            n = queue.popleft()
            for _, e in out_dep[n]:
                if e not in seen:
                    seen.add(e)
                    queue.append(e)
        return len(seen)
    start = g.pkg(CLOSURE_FROM)
    a["closure_count"] = closure(start)
    a["closure_heavy_count"] = closure(g.pkg(CLOSURE_HEAVY))
    #     the same bounded to 1..2 hops (*1..2)
    one = {e for _, e in out_dep[start]}
    two = set(one)
    for i, b in out_dep[start]:
        for j, e in out_dep[b]:
            if j != i:
                two.add(e)
    a["closure_1_2_count"] = len(two)

    # 11. MATCH (p:Package)-[:MAINTAINED_BY]->(m:Maintainer)
    #     RETURN m.email AS email, count(p) AS c ORDER BY c DESC, email LIMIT 5
    per = defaultdict(int)
    for s, e, _ in g.edges["MAINTAINED_BY"]:
        if g.nodes[s][0] == "Package" and g.nodes[e][0] == "Maintainer":
            per[g.nodes[e][1]["email"]] += 1
    top = sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    a["top_maintainers"] = [[k, v] for k, v in top]

    # 12. MATCH (p:Package {section:'utils'}) RETURN avg(p.installed_size_kib), count(p)
    sizes = [p.get("installed_size_kib") for lbl, p in g.nodes.values()
             if lbl == "Package" and p.get("section") == SECTION]
    vals = [v for v in sizes if v is not None]
    a["section_count"] = len(sizes)
    a["section_avg_size"] = (sum(vals) / len(vals)) if vals else None

    # 13. OPTIONAL MATCH: packages with no BUILT_FROM, and with no DEPENDS_ON
    has_src = {s for s, _, _ in g.edges["BUILT_FROM"]}
    pkgs = [nid for nid, (lbl, _) in g.nodes.items() if lbl == "Package"]
    a["no_built_from"] = sum(1 for p in pkgs if p not in has_src)
    a["no_depends"] = sum(1 for p in pkgs if not out_dep.get(p))

    # 14. dependency targets that are MissingPackage nodes (distinct)
    a["missing_dep_targets"] = len({e for _, e, _ in dep if g.nodes[e][0] == "MissingPackage"})

    # 15. MATCH (p:Package) WHERE p.name STARTS WITH 'python3-' RETURN count(p)
    a["python3_prefix"] = sum(1 for lbl, p in g.nodes.values()
                              if lbl == "Package" and p["name"].startswith("python3-"))

    # 16. priority 'required' packages, by architecture (grouping)
    req = defaultdict(int)
    for lbl, p in g.nodes.values():
        if lbl == "Package" and p.get("priority") == "required":
            req[p.get("architecture")] += 1
    a["required_by_arch"] = [[k, v] for k, v in sorted(req.items())]

    # Facts about the parameters used by the benchmarks and type checks.
    bash = g.nodes[g.pkg("bash")][1]
    a["bash_installed_size_kib"] = bash["installed_size_kib"]
    a["bash_essential"] = bash["essential"]
    return a


def check_manifest(answers, data_dir=None):
    """The oracle's counts equal manifest.json (a self-check of the oracle)."""
    data_dir = data_dir or default_data_dir()
    with open(os.path.join(data_dir, "manifest.json")) as f:
        m = json.load(f)
    assert answers["label_counts"] == m["nodes"], (answers["label_counts"], m["nodes"])
    assert answers["type_counts"] == m["relationships"], (answers["type_counts"], m["relationships"])
    return m


if __name__ == "__main__":
    d = sys.argv[1] if len(sys.argv) > 1 else None
    ans = compute(d)
    check_manifest(ans, d)
    out = dict(ans)
    out["essential_names"] = "%d names" % len(ans["essential_names"])
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")

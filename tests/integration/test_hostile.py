"""Hostile input (issue 7): no single request can crash, poison or stall a
node.

Every case sends what an attacker would -- a poison write, a runaway write,
a request that never ends, a thousand pipelined requests whose replies are
never read -- to one quiverd with default flags on 127.0.0.1, then checks
the promise (`intact`):
  - the node answers PING;
  - a baseline graph made before the case has the same node count and the
    same QUIVER.DIGEST (its content; the applied index may move on);
  - `kill -9` and a restart come back (replay of whatever the case put in
    the log does not crash the node again), and the baseline is still
    intact afterwards.
A write that must be refused *before the log* is also checked against the
raft commit index: it must not move.

The cluster case sends the poison write through a follower of a
three-process cluster: refused there, nothing proposed, all three nodes
alive and agreeing on the digest.

What the node does with memory (client buffers, maxmemory) is measured by
the server's own INFO and its resident set (/proc/PID/status), never by
timing.  Waits are conditions with deadlines.
"""
import os
import re
import socket
import threading
import time

import pytest
import redis

import harness

BASE = "hostile_base"
DEADLINE_S = 60


def rss_bytes(server):
    with open("/proc/%d/status" % server.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS for pid %d" % server.proc.pid)


def commit_index(server):
    info = harness.raft_info(server, timeout_s=10)
    assert info is not None, "INFO raft did not answer\n" + server.log_tail()
    return int(info["raft_commit_index"])


def digest(c, graph=BASE):
    index, value = c.execute_command("QUIVER.DIGEST", graph)
    return value


def count(c, graph=BASE):
    res = c.execute_command("GRAPH.QUERY", graph, "MATCH (n) RETURN count(n)")
    return res[1][0][0]


def error_of(c, *args):
    """The error reply of a command that must fail (its text)."""
    with pytest.raises(redis.ResponseError) as e:
        c.execute_command(*args)
    return str(e.value)


class Baseline:
    def __init__(self, server):
        self.server = server
        c = server.client()
        c.execute_command("GRAPH.QUERY", BASE,
                          "UNWIND range(1, 500) AS i CREATE (:P {i: i, s: 'x' + toString(i)})")
        c.execute_command("GRAPH.QUERY", BASE,
                          "MATCH (a:P), (b:P) WHERE b.i = a.i + 1 CREATE (a)-[:NEXT {w: a.i}]->(b)")
        self.count = count(c)
        self.digest = digest(c)
        c.close()

    def check(self, restart=True):
        """The promise after a case: alive, baseline intact, and after
        kill -9 + restart still intact."""
        s = self.server
        assert s.alive(), "quiverd died (status %s)\n%s" % (s.proc.returncode, s.log_tail())
        c = s.client(timeout_s=DEADLINE_S)
        try:
            assert c.ping()
            assert count(c) == self.count
            assert digest(c) == self.digest
        finally:
            c.close()
        if restart:
            s.kill9()
            s.start()
            self.check(restart=False)


@pytest.fixture(scope="module")
def node(tmp_path_factory, quiverd_bin):
    s = harness.Server(tmp_path_factory.mktemp("hostile"), (), quiverd_bin)
    s.start()
    base = Baseline(s)
    yield s, base
    s.close()


# ---------------------------------------------------------------------------
# Poison writes: refused before the log

def nested_groups(depth):
    return "(" * depth + "a" + ")" * depth


def test_poison_regex_write_refused_before_the_log(node):
    s, base = node
    c = s.client()
    before = commit_index(s)
    text = "CREATE (:Poison {m: 'a' =~ '%s'})" % nested_groups(15000)
    err = error_of(c, "GRAPH.QUERY", "g_poison", text)
    assert err.startswith("ERR") and "regular expression" in err, err
    assert commit_index(s) == before, "the poison write reached the raft log"
    # the same regex in a read: an error from the reader thread, not a crash
    err = error_of(c, "GRAPH.RO_QUERY", BASE, "RETURN 'a' =~ '%s'" % nested_groups(15000))
    assert "regular expression" in err, err
    c.close()
    base.check()


def test_regex_compile_blowup_is_bounded(node):
    s, base = node
    c = s.client()
    before = commit_index(s)
    err = error_of(c, "GRAPH.QUERY", "g_poison", "CREATE (:Poison {m: 'a' =~ '(a{1,1000}){1,300}'})")
    assert "regular expression" in err, err
    assert commit_index(s) == before
    rss0 = rss_bytes(s)
    err = error_of(c, "GRAPH.RO_QUERY", BASE, "RETURN 'a' =~ '(a{1,1000}){1,300}'")
    assert "regular expression" in err, err
    assert rss_bytes(s) < rss0 + (256 << 20), "compiling one pattern grew the node by more than 256 MiB"
    c.close()
    base.check()


def test_regex_data_dependent_pattern_limit(node):
    """A pattern computed per row (admission cannot compile it) that breaks
    a limit fails the write identically and changes nothing; the replay
    after kill -9 fails it again."""
    s, base = node
    c = s.client()
    deep = nested_groups(15000)
    err = error_of(c, "GRAPH.QUERY", "g_poison",
                   "UNWIND range(1, 3) AS i "
                   "WITH i, CASE WHEN i > 0 THEN '%s' ELSE 'a' END AS p "
                   "CREATE (:Poison {m: toString(i) =~ p})" % deep)
    assert "regular expression" in err, err
    r = c.execute_command("GRAPH.QUERY", "g_poison", "MATCH (n:Poison) RETURN count(n)")
    assert r[1][0][0] == 0
    c.close()
    base.check()


def test_catastrophic_backtracking_is_a_deterministic_error(node):
    """(a+)+b against 'aaaa...cb' backtracks exponentially: the match limit
    stops it with an error, the same on every replica."""
    s, base = node
    c = s.client()
    subject = "a" * 40 + "cb"   # the required b is there, so PCRE2 must backtrack
    err = error_of(c, "GRAPH.QUERY", "g_poison",
                   "CREATE (:Poison {m: '%s' =~ '(a+)+b'})" % subject)
    assert "regular expression" in err, err
    err = error_of(c, "GRAPH.RO_QUERY", BASE, "RETURN '%s' =~ '(a+)+b'" % subject)
    assert "regular expression" in err, err
    # the same pattern on a short subject still works
    r = c.execute_command("GRAPH.RO_QUERY", BASE, "RETURN 'aab' =~ '(a+)+b', 'AaB' =~ '(?i)a+b'")
    assert r[1][0] == [1, 1] or r[1][0] == ["true", "true"] or r[1][0] == [True, True]
    c.close()
    base.check()


# ---------------------------------------------------------------------------
# Runaway writes: a deterministic work budget

def test_runaway_write_exceeds_its_work_budget(node):
    s, base = node
    c = s.client()
    err = error_of(c, "GRAPH.QUERY", "g_runaway",
                   "UNWIND range(1, 60000) AS a UNWIND range(1, 60000) AS b "
                   "WITH count(*) AS n CREATE (:Runaway {n: n})")
    assert err.startswith("ERR write exceeds its work budget"), err
    err = error_of(c, "GRAPH.QUERY", "g_runaway",
                   "UNWIND range(1, 100000) AS a UNWIND range(1, 1000) AS b CREATE (:Runaway)")
    assert err.startswith("ERR write exceeds its work budget"), err
    r = c.execute_command("GRAPH.QUERY", "g_runaway", "MATCH (n:Runaway) RETURN count(n)")
    assert r[1][0][0] == 0, "part of a write over its budget was applied"
    # an ordinary write of a few thousand rows is far inside the budget
    r = c.execute_command("GRAPH.QUERY", "g_runaway", "UNWIND range(1, 5000) AS i CREATE (:Ok {i: i})")
    assert "Nodes created: 5000" in r[-1]
    c.close()
    # the replay after kill -9 fails the runaway entries again, identically
    base.check()
    c = s.client()
    r = c.execute_command("GRAPH.QUERY", "g_runaway", "MATCH (n:Runaway) RETURN count(n)")
    assert r[1][0][0] == 0
    r = c.execute_command("GRAPH.QUERY", "g_runaway", "MATCH (n:Ok) RETURN count(n)")
    assert r[1][0][0] == 5000
    c.close()


def test_read_timeout_interrupts_long_steps(node):
    s, base = node
    c = s.client()
    # a sort of millions of rows and a huge list: TIMEOUT stops both
    for q in ("UNWIND range(1, 3000000) AS x RETURN x ORDER BY -x LIMIT 1",
              "RETURN size([x IN range(1, 16000000) WHERE x % 7 = 0]) AS n"):
        err = error_of(c, "GRAPH.RO_QUERY", BASE, q, "TIMEOUT", "50")
        assert "timed out" in err.lower() or "timeout" in err.lower(), err
    # TIMEOUT 2^64-1 means "no timeout", not "at once"
    r = c.execute_command("GRAPH.RO_QUERY", BASE, "RETURN 1", "TIMEOUT", "18446744073709551615")
    assert r[1][0][0] == 1
    c.close()
    base.check(restart=False)


# ---------------------------------------------------------------------------
# Depth: clauses, operators, values

def test_hundred_thousand_clauses(node):
    s, base = node
    c = s.client()
    before = commit_index(s)
    q = " ".join(["WITH 1 AS x"] * 100000) + " RETURN x"
    err = error_of(c, "GRAPH.RO_QUERY", BASE, q)
    assert err
    err = error_of(c, "GRAPH.QUERY", "g_deep", " ".join(["WITH 1 AS x"] * 100000) + " CREATE (:Deep)")
    assert err
    assert commit_index(s) == before
    c.close()
    base.check()


def test_deeply_nested_values(node):
    s, base = node
    c = s.client()
    q = "WITH 1 AS x " + " ".join(["WITH collect(x) AS x"] * 200) + " RETURN x"
    err = error_of(c, "GRAPH.RO_QUERY", BASE, q)
    assert "nest" in err.lower() or "depth" in err.lower(), err
    q = "WITH 1 AS x " + " ".join(["WITH collect(x) AS x"] * 200) + " CREATE (:Deep {x: size(x)})"
    err = error_of(c, "GRAPH.QUERY", "g_deep", q)
    assert "nest" in err.lower() or "depth" in err.lower(), err
    c.close()
    base.check()


# ---------------------------------------------------------------------------
# Request ids are bound to their statement

def test_request_id_reused_for_another_statement(node):
    s, base = node
    c1 = s.client()
    c2 = s.client()
    pipe = c1.pipeline(transaction=False)
    pipe.execute_command("QUIVER.REQUESTID", 777, 1)
    pipe.execute_command("GRAPH.QUERY", "g_ids", "CREATE (:First)")
    ok, first = pipe.execute()
    assert "Nodes created: 1" in first[-1]
    # a second client, same id, another statement: refused, nothing created
    pipe = c2.pipeline(transaction=False)
    pipe.execute_command("QUIVER.REQUESTID", 777, 1)
    pipe.execute_command("GRAPH.QUERY", "g_ids", "CREATE (:Second)")
    res = pipe.execute(raise_on_error=False)
    assert isinstance(res[1], redis.ResponseError), res
    assert "different statement" in str(res[1])
    # the same statement again: its first outcome, not applied twice
    pipe = c2.pipeline(transaction=False)
    pipe.execute_command("QUIVER.REQUESTID", 777, 1)
    pipe.execute_command("GRAPH.QUERY", "g_ids", "CREATE (:First)")
    ok, again = pipe.execute()
    assert "Nodes created: 1" in again[-1]
    r = c1.execute_command("GRAPH.QUERY", "g_ids", "MATCH (n) RETURN labels(n)[0], count(n)")
    assert r[1] == [["First", 1]]
    c1.close()
    c2.close()
    base.check()


# ---------------------------------------------------------------------------
# The cluster: the poison write through a follower

def test_cluster_poison_write_through_a_follower(cluster_factory):
    servers = cluster_factory()
    leader = harness.wait_leader(servers)
    follower = next(s for s in servers if s is not leader)
    c = leader.client()
    c.execute_command("GRAPH.QUERY", BASE, "UNWIND range(1, 100) AS i CREATE (:P {i: i})")
    c.close()
    before = harness.wait_digests_agree(servers, BASE)
    f = follower.client()
    err = error_of(f, "GRAPH.QUERY", BASE, "CREATE (:Poison {m: 'a' =~ '%s'})" % nested_groups(15000))
    assert "regular expression" in err, err
    err = error_of(f, "GRAPH.QUERY", BASE,
                   "UNWIND range(1, 60000) AS a UNWIND range(1, 60000) AS b WITH count(*) AS n CREATE (:R {n: n})")
    assert err.startswith("ERR write exceeds its work budget"), err
    f.close()
    # the regex write never reached the log; the runaway did, and failed
    # identically everywhere: the digests agree, nothing changed
    for s in servers:
        assert s.alive(), s.log_tail()
    after = harness.wait_digests_agree(servers, BASE)
    assert after[1] == before[1]
    assert harness.wait_leader(servers) is leader, "an election happened"

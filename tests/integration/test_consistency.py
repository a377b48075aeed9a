"""Read consistency levels, client-chosen request ids and readiness
(issue 3 "Reads", DESIGN.md section 6; node/router.h):

  - QUIVER.CONSISTENCY [linearizable|session|stale] per connection: get,
    set, a bad word refused without a change; INFO raft shows the calling
    connection's level and reads served per level;
  - session: a connection that writes through a FOLLOWER and reads its
    write back at once on the same follower always sees it;
  - stale: answers on a follower at once, with "Replication lag: N entries"
    in the statistics (which redis-py's graph client accepts) and
    raft_stale_lag_entries in INFO -- also while the follower is cut off
    from every other node, when a linearizable read cannot be answered;
  - QUIVER.REQUESTID origin seq: the same id twice applies once (on one
    node, and through followers with the count checked on every node),
    GRAPH.DELETE too; the id is used by the next write only; bad arguments
    are refused and set nothing;
  - /readyz: 200 on every node of a cluster once it knows the leader and
    caught up; 503 on a node that is alone (no leader).

Every wait is a condition with a deadline; no sleeps.  Traffic stays on
127.0.0.1.
"""
import os
import re
import signal
import socket
import time
import urllib.request
import urllib.error

import pytest
import redis

import harness

WAIT_S = 60.0
FORWARD_TIMEOUT_MS = 1500   # short, so reads that cannot be answered fail fast


def wait_for(what, fn, timeout_s=WAIT_S):
    """Poll fn() until it returns a true value (returned) or the deadline."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.02)   # poll interval of a condition wait
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def start_cluster(workdir, quiverd_bin, admin=False, forward_timeout_ms=FORWARD_TIMEOUT_MS):
    """Three quiverd on 127.0.0.1 as harness.start_cluster makes them (ids
    1..3, one --peers list with client addresses), each optionally with its
    own --admin-port (s.admin_port).  Started without waiting."""
    extra = ["--forward-timeout-ms", str(forward_timeout_ms)]
    if not admin:
        return harness.start_cluster(workdir, 3, extra, binary=quiverd_bin)
    servers = [harness.Server(os.path.join(str(workdir), "node%d" % (i + 1)), (), quiverd_bin,
                              name="node%d" % (i + 1)) for i in range(3)]
    used = {s.port for s in servers}
    ports = []
    while len(ports) < 3 * 2:
        p = harness.free_port()
        if p not in used:
            used.add(p)
            ports.append(p)
    raft_ports, admin_ports = ports[:3], ports[3:]
    peers = ",".join("%d=%s:%d@%s:%d" % (i + 1, harness.HOST, raft_ports[i], harness.HOST, s.port)
                     for i, s in enumerate(servers))
    for i, s in enumerate(servers):
        s.node_id = i + 1
        s.admin_port = admin_ports[i]
        s.cluster_args = []
        s.extra_args = (["--node-id", str(i + 1), "--peers", peers, "--admin-port", str(s.admin_port)] + extra)
        s.start(wait=False)
    return servers


@pytest.fixture
def cluster_factory(tmp_path, quiverd_bin):
    made = []

    def make(admin=False, forward_timeout_ms=FORWARD_TIMEOUT_MS):
        servers = start_cluster(tmp_path / ("c%d" % len(made)), quiverd_bin, admin, forward_timeout_ms)
        made.extend(servers)
        return servers

    yield make
    harness.close_servers(made)


@pytest.fixture
def cluster(cluster_factory):
    servers = cluster_factory()
    harness.wait_leader(servers)
    return servers


def followers_of(servers):
    leader = harness.wait_leader(servers)
    return leader, [s for s in servers if s is not leader]


def lag_of(result):
    """N of the 'Replication lag: N entries' statistic, or None."""
    for s in result.stats:
        m = re.fullmatch(r"Replication lag: (\d+) entries", s)
        if m:
            return int(m.group(1))
    return None


def count_on(server, graph, query, level="linearizable"):
    c = server.client(timeout_s=10)
    try:
        c.execute_command("QUIVER.CONSISTENCY", level)
        return harness.verbose(c, graph, query).scalar
    finally:
        c.close()


def info(c):
    return c.info("raft")


# --- QUIVER.CONSISTENCY -------------------------------------------------------

def test_consistency_get_set_and_bad_word(server):
    a, b = server.client(), server.client()
    try:
        assert a.execute_command("QUIVER.CONSISTENCY") == "linearizable"   # the default
        assert info(a)["raft_consistency"] == "linearizable"
        assert a.execute_command("QUIVER.CONSISTENCY", "session") == "OK"
        assert a.execute_command("QUIVER.CONSISTENCY") == "session"
        assert a.execute_command("QUIVER.CONSISTENCY", "STALE") == "OK"     # case-insensitive
        assert a.execute_command("QUIVER.CONSISTENCY") == "stale"
        for bad in ("strong", "", "stale ", "linearizable2"):
            with pytest.raises(redis.ResponseError, match="unknown consistency level"):
                a.execute_command("QUIVER.CONSISTENCY", bad)
            assert a.execute_command("QUIVER.CONSISTENCY") == "stale"       # nothing changed
        with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
            a.execute_command("QUIVER.CONSISTENCY", "stale", "session")
        assert a.execute_command("QUIVER.CONSISTENCY") == "stale"
        # Per connection: the other connection keeps the default; INFO shows the caller's level.
        assert b.execute_command("QUIVER.CONSISTENCY") == "linearizable"
        assert info(a)["raft_consistency"] == "stale"
        assert info(b)["raft_consistency"] == "linearizable"
    finally:
        a.close()
        b.close()


def test_levels_on_a_single_node(server, graph):
    """Every level reads the connection's writes on a single node; only
    stale replies carry the lag line (0 here); the counters count."""
    c = server.client()
    try:
        before = info(c)
        harness.verbose(c, graph, "CREATE (:P {v: 1})")
        got = {}
        for level in ("linearizable", "session", "stale"):
            assert c.execute_command("QUIVER.CONSISTENCY", level) == "OK"
            res = harness.verbose(c, graph, "MATCH (p:P) RETURN count(p)")
            ro = harness.verbose(c, graph, "MATCH (p:P) RETURN count(p)", cmd="GRAPH.RO_QUERY")
            assert res.scalar == 1 and ro.scalar == 1, (level, res, ro)
            got[level] = (lag_of(res), lag_of(ro))
            # The other statistics are unchanged and still parse.
            assert res.stats[-2 if level == "stale" else -1].startswith("Query internal execution time")
        assert got["linearizable"] == (None, None) and got["session"] == (None, None), got
        assert got["stale"] == (0, 0), got
        after = info(c)
        for level in ("linearizable", "session", "stale"):
            k = "raft_reads_%s_total" % level
            assert after[k] >= before[k] + 2, (k, before, after)
        assert after["raft_stale_lag_entries"] == 0
    finally:
        c.close()


def test_redis_py_graph_client_accepts_the_lag_line(server, graph):
    """redis-py's graph client (Debian's python3-redis) parses a stale reply,
    extra statistics line included, and still reads the known statistics."""
    c = server.client()
    try:
        g = c.graph(graph)
        g.query("CREATE (:Q {v: 1}), (:Q {v: 2})")
        assert c.execute_command("QUIVER.CONSISTENCY", "stale") == "OK"
        res = g.query("MATCH (q:Q) RETURN q.v ORDER BY q.v")
        assert res.result_set == [[1], [2]]
        assert res.run_time_ms >= 0
        res = g.query("MATCH (q:Q) RETURN count(q)", read_only=True)
        assert res.result_set == [[2]]
        raw = c.execute_command("GRAPH.QUERY", graph, "MATCH (q:Q) RETURN count(q)", "--compact")
        assert any(s.startswith("Replication lag: ") for s in raw[-1]), raw
    finally:
        c.close()


# --- session and stale reads in a cluster --------------------------------------

def test_session_read_your_writes_through_a_follower(cluster):
    leader, followers = followers_of(cluster)
    g = "session_ryw"
    for f in followers:
        c = f.client(timeout_s=30)
        try:
            assert c.execute_command("QUIVER.CONSISTENCY", "session") == "OK"
            before = info(c)
            rounds = 150
            for i in range(rounds):
                w = harness.verbose(c, g, "CREATE (:W {node: %d, i: %d})" % (f.node_id, i))
                assert w.stat("Nodes created") == 1, w
                # At once, on the same follower connection: the write is visible.
                r = harness.verbose(c, g, "MATCH (w:W {node: %d, i: %d}) RETURN count(w)" % (f.node_id, i))
                assert r.scalar == 1, (f.name, i, r)
                assert lag_of(r) is None
            after = info(c)
            assert after["raft_reads_session_total"] >= before["raft_reads_session_total"] + rounds
            assert after["raft_session_wait_timeouts_total"] == before["raft_session_wait_timeouts_total"]
            assert after["raft_role"] == "follower"
            print("%s: session reads that had to wait: %d of %d"
                  % (f.name, after["raft_session_waits_total"] - before["raft_session_waits_total"], rounds))
        finally:
            c.close()
    # Pipelined: write, read, write, read on one follower connection.
    f = followers[0]
    c = f.client(timeout_s=30)
    try:
        assert c.execute_command("QUIVER.CONSISTENCY", "session") == "OK"
        p = c.pipeline(transaction=False)
        for i in range(50):
            p.execute_command("GRAPH.QUERY", g, "CREATE (:PW {i: %d})" % i)
            p.execute_command("GRAPH.QUERY", g, "MATCH (x:PW) RETURN count(x)")
        replies = p.execute()
        counts = [harness.parse_reply(replies[k])[1][0][0] for k in range(1, len(replies), 2)]
        assert counts == list(range(1, 51)), counts
    finally:
        c.close()


def test_stale_read_on_a_follower_reports_lag(cluster):
    leader, followers = followers_of(cluster)
    g = "stale_lag"
    w = leader.client()
    try:
        for i in range(20):
            harness.verbose(w, g, "CREATE (:S {i: %d})" % i)
    finally:
        w.close()
    f = followers[0]
    c = f.client(timeout_s=10)
    try:
        assert c.execute_command("QUIVER.CONSISTENCY", "stale") == "OK"
        res = harness.verbose(c, g, "MATCH (s:S) RETURN count(s)")
        lag = lag_of(res)
        assert lag is not None and lag >= 0, res
        assert 0 <= res.scalar <= 20
        i = info(c)
        assert i["raft_role"] == "follower"
        assert isinstance(i["raft_stale_lag_entries"], int) and i["raft_stale_lag_entries"] >= 0, i
        assert i["raft_reads_stale_total"] >= 1
        # The follower catches up: a stale read then sees all 20 and says lag 0.
        def caught_up():
            r = harness.verbose(c, g, "MATCH (s:S) RETURN count(s)")
            return r if r.scalar == 20 and lag_of(r) == 0 else None
        wait_for("the follower to catch up", caught_up)
    finally:
        c.close()


def _readable(sock):
    import select
    r, _, _ = select.select([sock], [], [], 0)
    return bool(r)


def test_stale_read_answers_while_cut_off_linearizable_does_not(cluster_factory):
    """SIGSTOP the two other nodes: the follower left alone has no leader.
    A linearizable read there waits (then fails with 'no leader' after the
    forward timeout, 5 s here: a wide margin); a stale read sent after it
    answers at once, while the linearizable one is still unanswered."""
    forward_timeout_ms = 5000
    cluster = cluster_factory(forward_timeout_ms=forward_timeout_ms)
    leader, followers = followers_of(cluster)
    g = "cut_off"
    w = followers[0].client()
    try:
        for i in range(10):
            harness.verbose(w, g, "CREATE (:C {i: %d})" % i)
    finally:
        w.close()
    alone = followers[0]
    wait_for("the follower to apply the writes", lambda: count_on(alone, g, "MATCH (c:C) RETURN count(c)", "stale") == 10)
    paused = [s for s in cluster if s is not alone]
    for s in paused:
        os.kill(s.proc.pid, signal.SIGSTOP)
    try:
        lin = harness.RespConn(alone.port, timeout_s=forward_timeout_ms / 1000.0 * 10)
        stale = harness.RespConn(alone.port, timeout_s=10)
        try:
            lin.send(harness.encode_command("GRAPH.QUERY", g, "MATCH (c:C) RETURN count(c)"))
            assert stale.command("QUIVER.CONSISTENCY", "stale") == "OK"
            reply = stale.command("GRAPH.QUERY", g, "MATCH (c:C) RETURN count(c)")
            res = harness.Result(*harness.parse_reply(reply))
            assert res.scalar == 10, res
            assert lag_of(res) is not None, res
            still_waiting = not _readable(lin.sock)
            # INFO answers at once too, with the lag field.
            i = harness.raft_info(alone)
            assert i is not None and i["raft_stale_lag_entries"] >= 0
            # The linearizable read never succeeds without a leader.
            out = lin.read_reply()
            assert isinstance(out, harness.RespError), out
            assert "leader" in out, out
            assert still_waiting, "the linearizable read was answered before the stale one"
        finally:
            lin.close()
            stale.close()
    finally:
        for s in paused:
            os.kill(s.proc.pid, signal.SIGCONT)
    harness.wait_leader(cluster)


# --- QUIVER.REQUESTID ----------------------------------------------------------

def test_request_id_bad_arguments(server, graph):
    c = server.client()
    try:
        for args in (("0", "1"), ("1", "0"), ("-1", "2"), ("+1", "2"), ("1", "x"), ("0x10", "1"),
                     ("18446744073709551616", "1"), ("1", "99999999999999999999"), (" 1", "2"), ("1.0", "2"),
                     ("", "1")):
            with pytest.raises(redis.ResponseError, match="QUIVER.REQUESTID origin and seq"):
                c.execute_command("QUIVER.REQUESTID", *args)
        for args in ((), ("1",), ("1", "2", "3")):
            with pytest.raises(redis.ResponseError, match="wrong number of arguments"):
                c.execute_command("QUIVER.REQUESTID", *args)
        # Nothing was set: two writes are two writes.
        harness.verbose(c, graph, "CREATE (:B)")
        harness.verbose(c, graph, "CREATE (:B)")
        assert harness.verbose(c, graph, "MATCH (b:B) RETURN count(b)").scalar == 2
        # The largest id is accepted.
        assert c.execute_command("QUIVER.REQUESTID", "18446744073709551615", "18446744073709551615") == "OK"
    finally:
        c.close()


def test_request_id_applies_once_on_a_single_node(server, graph):
    origin = str(int.from_bytes(os.urandom(8), "big") | 1)
    a, b = server.client(), server.client()
    try:
        assert a.execute_command("QUIVER.REQUESTID", origin, "1") == "OK"
        first = harness.verbose(a, graph, "CREATE (:R {k: 1}) RETURN 'x'")
        assert first.stat("Nodes created") == 1
        # The same id again, on another connection: the first outcome, not applied again.
        assert b.execute_command("QUIVER.REQUESTID", origin, "1") == "OK"
        again = harness.verbose(b, graph, "CREATE (:R {k: 1}) RETURN 'x'")
        assert again.rows == first.rows and again.counters() == first.counters(), (first, again)
        assert harness.verbose(a, graph, "MATCH (r:R) RETURN count(r)").scalar == 1
        # A read does not use the id; the next write does, then it is cleared.
        assert a.execute_command("QUIVER.REQUESTID", origin, "2") == "OK"
        harness.verbose(a, graph, "MATCH (r:R) RETURN count(r)")
        harness.verbose(a, graph, "CREATE (:R {k: 2})")    # takes (origin, 2)
        harness.verbose(a, graph, "CREATE (:R {k: 3})")    # a fresh id
        assert b.execute_command("QUIVER.REQUESTID", origin, "2") == "OK"
        harness.verbose(b, graph, "CREATE (:R {k: 2})")    # duplicate of (origin, 2)
        assert harness.verbose(a, graph, "MATCH (r:R) RETURN r.k ORDER BY r.k").column == [1, 2, 3]
        # Pipelined: REQUESTID, write, write -- only the first write takes the id.
        p = a.pipeline(transaction=False)
        p.execute_command("QUIVER.REQUESTID", origin, "3")
        p.execute_command("GRAPH.QUERY", graph, "CREATE (:R {k: 4})")
        p.execute_command("GRAPH.QUERY", graph, "CREATE (:R {k: 5})")
        p.execute_command("QUIVER.REQUESTID", origin, "3")
        p.execute_command("GRAPH.QUERY", graph, "CREATE (:R {k: 4})")
        p.execute()
        assert harness.verbose(a, graph, "MATCH (r:R) RETURN r.k ORDER BY r.k").column == [1, 2, 3, 4, 5]
        # GRAPH.DELETE: a retry does not delete the graph created after it.
        g2 = graph + "_del"
        harness.verbose(a, g2, "CREATE (:D)")
        assert a.execute_command("QUIVER.REQUESTID", origin, "4") == "OK"
        assert a.execute_command("GRAPH.DELETE", g2).startswith("Graph removed")
        harness.verbose(a, g2, "CREATE (:D), (:D)")
        assert b.execute_command("QUIVER.REQUESTID", origin, "4") == "OK"
        assert b.execute_command("GRAPH.DELETE", g2).startswith("Graph removed")   # the first outcome
        assert harness.verbose(a, g2, "MATCH (d:D) RETURN count(d)").scalar == 2
        a.execute_command("GRAPH.DELETE", g2)
    finally:
        a.close()
        b.close()


def test_request_id_applies_once_through_followers(cluster):
    leader, followers = followers_of(cluster)
    g = "reqid"
    origin = str(int.from_bytes(os.urandom(8), "big") | 1)
    writers = [followers[0], followers[1], leader, followers[0]]
    for seq in range(1, 21):
        for s in writers:   # the same id through every node, twice through one follower
            c = s.client(timeout_s=30)
            try:
                assert c.execute_command("QUIVER.REQUESTID", origin, str(seq)) == "OK"
                res = harness.verbose(c, g, "CREATE (:X {seq: %d})" % seq)
                assert res.stat("Nodes created") == 1, res   # first outcome, also for duplicates
            finally:
                c.close()
    # And without an id, the same text twice is two writes.
    c = followers[1].client()
    try:
        harness.verbose(c, g, "CREATE (:X {seq: 0})")
        harness.verbose(c, g, "CREATE (:X {seq: 0})")
    finally:
        c.close()
    harness.wait_digests_agree(cluster, g)
    for s in cluster:
        rows = harness.verbose(s.client(), g, "MATCH (x:X) RETURN x.seq, count(x) ORDER BY x.seq").rows
        assert rows == [[0, 2]] + [[seq, 1] for seq in range(1, 21)], (s.name, rows)


# --- /readyz -------------------------------------------------------------------

def http_get(port, path):
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (harness.HOST, port, path), timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout):
        return None, ""


def test_readyz_on_followers(cluster_factory):
    import json
    servers = cluster_factory(admin=True)
    leader = harness.wait_leader(servers)
    for s in servers:
        wait_for("/readyz 200 on %s" % s.name, lambda s=s: http_get(s.admin_port, "/readyz")[0] == 200)
    for s in servers:
        code, body = http_get(s.admin_port, "/status")
        assert code == 200, body
        st = json.loads(body)
        assert st["ready"] is True
        assert st["last_applied_index"] >= st["startup_commit_index"] >= 1, st
        assert set(st["reads"]) == {"linearizable", "session", "stale"}, st
        assert st["stale_lag_entries"] >= 0
        i = harness.raft_info(s)
        assert i["raft_node_ready"] == 1, i
    # A node alone (the others stopped) has no leader: not ready.
    for s in servers:
        s.stop()
    alone = servers[1]
    alone.start(wait=False)
    wait_for("/healthz on the lone node", lambda: http_get(alone.admin_port, "/healthz")[0] == 200)
    assert http_get(alone.admin_port, "/readyz")[0] == 503
    assert harness.raft_info(alone)["raft_node_ready"] == 0
    # A second node: a leader is elected, both catch up and become ready.
    servers[2].start(wait=False)
    for s in (alone, servers[2]):
        wait_for("/readyz 200 on %s" % s.name, lambda s=s: http_get(s.admin_port, "/readyz")[0] == 200)
    assert leader is not None


def test_read_consistency_flag_sets_the_default_of_new_connections(server_factory):
    """--read-consistency LEVEL: every new connection starts at LEVEL (so
    tools that cannot send QUIVER.CONSISTENCY first, e.g. redis-benchmark,
    can use it); QUIVER.CONSISTENCY still changes one connection."""
    s = server_factory(extra_args=["--read-consistency", "stale"])
    c = s.client()
    try:
        assert c.execute_command("QUIVER.CONSISTENCY") == "stale"
        assert c.info("raft")["raft_consistency"] == "stale"
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:N)")
        r = c.execute_command("GRAPH.RO_QUERY", "g", "MATCH (n:N) RETURN count(n)")
        assert any("Replication lag" in str(x) for x in r[-1]), r
        assert c.execute_command("QUIVER.CONSISTENCY", "linearizable") == "OK"
        assert c.execute_command("QUIVER.CONSISTENCY") == "linearizable"
    finally:
        c.close()
    c2 = s.client()
    try:
        assert c2.execute_command("QUIVER.CONSISTENCY") == "stale"
    finally:
        c2.close()
    bad = harness.Server(s.workdir + "-bad", ["--read-consistency", "eventual"], s.binary)
    with pytest.raises(harness.ServerError):
        bad.start()
    assert "--read-consistency: 'eventual' is not linearizable, session or stale" in bad.log_text()
    bad.close()

"""Three quiverd processes on 127.0.0.1 (issue 3, "Processes"):

  - writes through a FOLLOWER are forwarded to the leader and the reply is
    relayed (rows, statistics, errors), and every node then reads them;
  - kill -9 of the leader during a stream of writes through the followers:
    a new leader is elected, every acknowledged write is on every survivor
    exactly once, no write is applied twice (also those whose outcome was
    reported unknown), a write reported "not applied" is absent; the killed
    node restarts and all three digests agree.

Every wait is a condition with a deadline (harness.wait_leader,
harness.wait_digests_agree, the writer-progress waits below).
"""
import os
import signal
import threading
import time

import pytest
import redis

import harness

WAIT_S = 60.0


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory()


def count_rows(server, graph, query):
    c = server.client()
    try:
        return harness.verbose(c, graph, query).rows
    finally:
        c.close()


def test_three_nodes_elect_one_leader(cluster):
    leader = harness.wait_leader(cluster)
    infos = [harness.raft_info(s) for s in cluster]
    assert [i["raft_role"] for i in infos].count("leader") == 1
    assert all(i["raft_peers"] == 3 for i in infos)
    assert all(i["raft_leader_id"] == leader.node_id for i in infos)
    # Every node names the leader's client address (where writes are forwarded).
    assert all(i["raft_leader_client_address"] == "%s:%d" % (harness.HOST, leader.port) for i in infos)


def test_write_through_follower(cluster):
    leader = harness.wait_leader(cluster)
    followers = [s for s in cluster if s is not leader]
    g = "fwd"
    f = followers[0].client()
    try:
        res = harness.verbose(f, g, "CREATE (p:Person {name: 'Ann', age: 41}) RETURN p.name, p.age")
        assert res.header == ["p.name", "p.age"]
        assert res.rows == [["Ann", 41]]
        assert res.stat("Nodes created") == 1 and res.stat("Labels added") == 1
        assert res.stat("Properties set") == 2
        # A node value survives the relay (result codec), verbose and compact.
        res = harness.verbose(f, g, "CREATE (p:Person {name: 'Bob'}) RETURN p")
        node = res.rows[0][0]
        assert ["labels", ["Person"]] in node and ["properties", [["name", "Bob"]]] in node
        cres = harness.compact(f, g, "MERGE (p:Person {name: 'Cy'}) RETURN p.name", schema=False)
        assert cres.rows == [["Cy"]] and cres.stat("Nodes created") == 1
        # A query error at apply is relayed as an error, and changes nothing.
        with pytest.raises(redis.ResponseError) as e:
            f.execute_command("GRAPH.QUERY", g, "CREATE (:Person {v: 1 / 0})")
        assert "outcome unknown" not in str(e.value)
        # The other follower too; GRAPH.DELETE through a follower.
        f2 = followers[1].client()
        try:
            harness.verbose(f2, "scratch", "CREATE (:X)")
            assert f2.execute_command("GRAPH.DELETE", "scratch").startswith("Graph removed")
            with pytest.raises(redis.ResponseError) as e:
                f2.execute_command("GRAPH.DELETE", "scratch")
            assert "empty key" in str(e.value)
        finally:
            f2.close()
    finally:
        f.close()
    harness.wait_digests_agree(cluster, g, WAIT_S)
    for s in cluster:   # reads on every node (followers: the leader's read index)
        rows = count_rows(s, g, "MATCH (p:Person) RETURN p.name ORDER BY p.name")
        assert rows == [["Ann"], ["Bob"], ["Cy"]], (s.name, rows)
    # A follower's own write is visible to its next read (read index).
    c = followers[1].client()
    try:
        harness.verbose(c, g, "CREATE (:Person {name: 'Dee'})")
        assert harness.verbose(c, g, "MATCH (p:Person {name: 'Dee'}) RETURN count(p)").scalar == 1
    finally:
        c.close()


class Writer(threading.Thread):
    """Writes CREATE (:W {id: 'name-i'}) one at a time through one node,
    recording acknowledged ids, ids whose outcome is unknown and ids
    reported as not applied."""

    def __init__(self, server, graph, name):
        super().__init__(daemon=True)
        self.server, self.graph, self.name = server, graph, name
        self.acked, self.unknown, self.failed = [], [], []
        self.errors = []
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        c = self.server.client(timeout_s=60)
        i = 0
        while not self.stop.is_set():
            wid = "%s-%d" % (self.name, i)
            i += 1
            try:
                res = harness.verbose(c, self.graph, "CREATE (:W {id: '%s'})" % wid)
                assert res.stat("Nodes created") == 1, res
                with self.lock:
                    self.acked.append(wid)
            except redis.ResponseError as e:
                with self.lock:
                    if "outcome unknown" in str(e):
                        self.unknown.append(wid)
                    else:
                        self.failed.append(wid)
                    self.errors.append(str(e))
            except (redis.ConnectionError, redis.TimeoutError) as e:
                with self.lock:
                    # Refused at connect: never sent.  Otherwise it may have been.
                    (self.failed if "connecting to" in str(e) else self.unknown).append(wid)
                    self.errors.append(repr(e))
                c.close()
                c = self.server.client(timeout_s=60)
        c.close()

    def acked_count(self):
        with self.lock:
            return len(self.acked)


class PipelinedWriter(Writer):
    """Like Writer, but sends batches of `depth` CREATEs in one pipeline, so
    many forwarded writes are in flight on the follower's link when the
    leader dies (the retry path for a whole window, not just one)."""

    def __init__(self, server, graph, name, depth=16):
        super().__init__(server, graph, name)
        self.depth = depth

    def run(self):
        c = self.server.client(timeout_s=60)
        i = 0
        while not self.stop.is_set():
            ids = ["%s-%d" % (self.name, i + k) for k in range(self.depth)]
            i += self.depth
            p = c.pipeline(transaction=False)
            for wid in ids:
                p.execute_command("GRAPH.QUERY", self.graph, "CREATE (:W {id: '%s'})" % wid)
            try:
                replies = p.execute(raise_on_error=False)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                with self.lock:
                    self.unknown.extend(ids)
                    self.errors.append(repr(e))
                c.close()
                c = self.server.client(timeout_s=60)
                continue
            with self.lock:
                for wid, rep in zip(ids, replies):
                    if isinstance(rep, Exception):
                        (self.unknown if "outcome unknown" in str(rep) else self.failed).append(wid)
                        self.errors.append(str(rep))
                    else:
                        self.acked.append(wid)
        c.close()


def wait_progress(writers, at_least, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(w.acked_count() >= at_least for w in writers):
            return
        time.sleep(0.01)   # poll interval of a condition wait
    raise AssertionError("writers did not reach %d acknowledged writes in %.0fs: %r; errors: %r"
                         % (at_least, timeout_s, [w.acked_count() for w in writers],
                            [w.errors[-3:] for w in writers]))


def check_writes(servers, graph, writers):
    acked = set().union(*(w.acked for w in writers))
    unknown = set().union(*(w.unknown for w in writers))
    failed = set().union(*(w.failed for w in writers))
    for s in servers:
        rows = count_rows(s, graph, "MATCH (w:W) RETURN w.id, count(w)")
        counts = {r[0]: r[1] for r in rows}
        twice = {k: v for k, v in counts.items() if v != 1}
        assert not twice, "%s applied writes more than once: %r" % (s.name, twice)
        missing = acked - set(counts)
        assert not missing, "%s lost acknowledged writes: %r" % (s.name, sorted(missing))
        stray = set(counts) - acked - unknown
        assert not stray, "%s holds writes reported as failed/not applied: %r" % (s.name, sorted(stray))
    assert not (failed & acked)
    return acked, unknown, failed


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_kill_leader_during_writes_through_followers(cluster, how):
    """kill -9 (or a clean SIGTERM stop) of the leader in a stream of writes
    through the followers (one at a time and pipelined) and through the
    leader itself."""
    leader = harness.wait_leader(cluster)
    followers = [s for s in cluster if s is not leader]
    g = "stream"
    writers = [Writer(s, g, "w%d" % s.node_id) for s in followers]
    writers.append(PipelinedWriter(followers[0], g, "pipe%d" % followers[0].node_id))
    # Writes through the leader itself die with it: their outcome is unknown
    # to the client, and they must still be applied at most once.
    on_leader = Writer(leader, g, "l%d" % leader.node_id)
    for w in writers + [on_leader]:
        w.start()
    try:
        wait_progress(writers + [on_leader], 20, WAIT_S)
        before = [w.acked_count() for w in writers]
        if how == "kill9":
            leader.kill9()
        else:
            assert leader.stop() == 0   # answers or fails what it holds, exits cleanly
        on_leader.stop.set()
        new_leader = harness.wait_leader(followers, WAIT_S)
        assert new_leader is not leader
        # Writes keep being acknowledged after the failover, through both survivors.
        wait_progress(writers, max(before) + 20, WAIT_S)
    finally:
        for w in writers + [on_leader]:
            w.stop.set()
        for w in writers + [on_leader]:
            w.join(timeout=WAIT_S)
    assert not any(w.is_alive() for w in writers + [on_leader]), "a writer is stuck"
    writers.append(on_leader)
    infos = [harness.raft_info(s) for s in followers]
    assert all(i["forward_sent_total"] > 0 or i["raft_role"] == "leader" for i in infos), infos
    assert all(i["forward_waiting"] == 0 for i in infos), infos   # every client was answered
    print("forward retries on the survivors: %r" % [i["forward_retries_total"] for i in infos])
    harness.wait_digests_agree(followers, g, WAIT_S)
    acked, unknown, failed = check_writes(followers, g, writers)
    assert len(acked) >= 80
    print("acknowledged %d, outcome unknown %d, not applied %d; errors: %r"
          % (len(acked), len(unknown), len(failed), sorted(set(e[:120] for w in writers for e in w.errors))))
    # The killed node comes back, catches up, and agrees.
    leader.start(wait=False)
    harness.wait_leader(cluster, WAIT_S)
    harness.wait_digests_agree(cluster, g, WAIT_S)
    check_writes(cluster, g, writers)


def test_pause_leader_during_writes_through_followers(cluster):
    """SIGSTOP the leader: its connections stay open but silent; the
    followers elect a new leader and retry what they had sent to the old one
    with the same request ids.  After SIGCONT every acknowledged write is on
    every node exactly once."""
    leader = harness.wait_leader(cluster)
    followers = [s for s in cluster if s is not leader]
    g = "paused"
    writers = [Writer(s, g, "p%d" % s.node_id) for s in followers]
    for w in writers:
        w.start()
    paused = False
    try:
        wait_progress(writers, 20, WAIT_S)
        before = [w.acked_count() for w in writers]
        os.kill(leader.proc.pid, signal.SIGSTOP)
        paused = True
        harness.wait_leader(followers, WAIT_S)
        wait_progress(writers, max(before) + 20, WAIT_S)
        os.kill(leader.proc.pid, signal.SIGCONT)
        paused = False
        harness.wait_leader(cluster, WAIT_S)
        wait_progress(writers, max(before) + 40, WAIT_S)
    finally:
        if paused:
            os.kill(leader.proc.pid, signal.SIGCONT)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(timeout=WAIT_S)
    assert not any(w.is_alive() for w in writers), "a writer is stuck"
    harness.wait_digests_agree(cluster, g, WAIT_S)
    check_writes(cluster, g, writers)


def test_writes_without_quorum_say_what_happened(cluster_factory):
    """With both followers killed, a write through the old leader either
    says its outcome is unknown (proposed, then leadership lost) or that it
    was not applied (no leader); once leadership is gone, a write says it
    was not applied.  After the others come back, 'not applied' writes are
    absent and no write is present twice."""
    nodes = cluster_factory(["--forward-timeout-ms", "1500"])
    leader = harness.wait_leader(nodes)
    others = [s for s in nodes if s is not leader]
    g = "quorum"
    c = leader.client()
    not_applied = []
    try:
        harness.verbose(c, g, "CREATE (:W {id: 'before'})")
        for s in others:
            s.kill9()
        with pytest.raises(redis.ResponseError) as e:
            harness.verbose(c, g, "CREATE (:W {id: 'first'})")
        first = str(e.value)
        assert ("outcome unknown" in first) != ("not applied" in first), first
        if "not applied" in first:
            not_applied.append("first")
        with pytest.raises(redis.ResponseError) as e:
            harness.verbose(c, g, "CREATE (:W {id: 'second'})")
        second = str(e.value)
        assert "not applied" in second and "outcome unknown" not in second, second
        not_applied.append("second")
        print("without quorum: %s | %s" % (first, second))
        # Reads need a leader too: a clear error, not a stale answer.
        with pytest.raises(redis.ResponseError) as e:
            harness.verbose(c, g, "MATCH (w:W) RETURN count(w)")
        assert "leader" in str(e.value)
    finally:
        c.close()
    for s in others:
        s.start(wait=False)
    harness.wait_leader(nodes, WAIT_S)
    harness.wait_digests_agree(nodes, g, WAIT_S)
    for s in nodes:
        counts = {r[0]: r[1] for r in count_rows(s, g, "MATCH (w:W) RETURN w.id, count(w)")}
        assert counts.get("before") == 1, counts
        assert all(v == 1 for v in counts.values()), counts
        for wid in not_applied:
            assert wid not in counts, (s.name, wid, counts)

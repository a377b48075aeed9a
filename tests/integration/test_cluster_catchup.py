"""Checkpoint catch-up (issue 3, "Processes": a node kept down past the
snapshot threshold catches up by checkpoint; DESIGN.md section 5).

Three quiverd on 127.0.0.1 with a small --snapshot-threshold and
--snapshot-trailing, so the leader compacts its log quickly.  Node 3 is
stopped, the others take many more entries than the retained log holds,
node 3 restarts: the leader can only send it a snapshot marker, which is
beyond node 3's database, so node 3 restarts itself, copies a RocksDB
checkpoint from a peer (QUIVER.CHECKPOINT), verifies it, swaps it in and
follows the log from there.  At the end every write is on node 3 and the
three digests agree at the same applied index.

Also: a checkpoint is refused to a node asking for more than the peer has,
bad QUIVER.CHECKPOINT arguments get errors, and a leftover of an interrupted
swap (db.old beside db) is cleaned up at start.
"""
import os
import time

import pytest
import redis

import harness

WAIT_S = 90.0
SMALL_LOG = ["--snapshot-threshold", "16", "--snapshot-trailing", "4"]


@pytest.fixture
def cluster(tmp_path, quiverd_bin):
    servers = harness.start_cluster(tmp_path / "c", 3, SMALL_LOG, binary=quiverd_bin)
    yield servers
    for s in servers:
        s.close()


def count(server, graph, label="N", consistency_retry_s=WAIT_S):
    deadline = time.monotonic() + consistency_retry_s
    while True:
        c = server.client(timeout_s=10)
        try:
            r = c.execute_command("GRAPH.RO_QUERY", graph, "MATCH (n:%s) RETURN count(n)" % label)
            return r[1][0][0]
        except (redis.ResponseError, redis.ConnectionError) as e:
            if time.monotonic() > deadline:
                raise AssertionError("count on %s failed: %r" % (server.name, e))
            time.sleep(0.05)   # poll interval of a condition wait
        finally:
            c.close()


def wait_for(cond, what, timeout_s=WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)   # poll interval of a condition wait
    raise AssertionError("timed out waiting for " + what)


def test_node_down_past_the_snapshot_catches_up_by_checkpoint(cluster):
    leader = harness.wait_leader(cluster)
    lagging = next(s for s in cluster if s is not leader)
    live = [s for s in cluster if s is not lagging]
    c = leader.client()
    c.execute_command("GRAPH.QUERY", "g", "CREATE INDEX FOR (n:N) ON (n.i)")
    for i in range(20):
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: %d, phase: 'before'})" % i)
    harness.wait_digests_agree(cluster, "g", timeout_s=WAIT_S)

    lagging.stop()
    # Many separate entries (one write in flight at a time: one entry each),
    # far beyond threshold + trailing, so the leader's log starts after
    # everything node 3 has.
    for i in range(20, 420):
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: %d, phase: 'while down'})" % i)
    c.close()
    info = harness.raft_info(leader)
    assert info["raft_last_applied_index"] > 400

    lagging.start(wait=False)
    # It must come back by checkpoint: its log says so.
    wait_for(lambda: "database replaced by the checkpoint" in lagging.log_text(), "the checkpoint swap on %s" % lagging.name)
    text = lagging.log_text()
    assert "every file's XXH3-64 verified" in text
    assert "database replaced by the checkpoint" in text
    harness.wait_leader(cluster, timeout_s=WAIT_S)
    assert count(lagging, "g") == 420
    # It keeps following the log after the copy.
    c = leader.client()
    for i in range(420, 430):
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: %d, phase: 'after'})" % i)
    c.close()
    idx, digest = harness.wait_digests_agree(cluster, "g", timeout_s=WAIT_S)
    assert count(lagging, "g") == 430
    # The index came along (it is part of the checkpoint).
    lc = lagging.client()
    try:
        plan = lc.execute_command("GRAPH.EXPLAIN", "g", "MATCH (n:N) WHERE n.i = 7 RETURN n")
        assert any("Index" in (p.decode() if isinstance(p, bytes) else p) for p in plan), plan
    finally:
        lc.close()
    # Checkpoints were closed: nothing left pinned on the peers.
    for s in live:
        cps = os.path.join(s.data_dir, "checkpoints")
        wait_for(lambda: not os.path.isdir(cps) or not os.listdir(cps), "checkpoints removed on %s" % s.name)
    assert not os.path.exists(os.path.join(lagging.data_dir, "db.incoming"))
    assert not os.path.exists(os.path.join(lagging.data_dir, "db.old"))


def test_checkpoint_command_errors_and_limits(cluster):
    leader = harness.wait_leader(cluster)
    c = leader.client(decode=False)
    c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: 1})")
    # The database's applied index (INFO's may be higher: raft's own
    # barrier entries after an election never reach the database).
    applied = int(c.execute_command("QUIVER.DIGEST", "g")[0])
    with pytest.raises(redis.ResponseError, match="behind"):
        c.execute_command("QUIVER.CHECKPOINT", "OPEN", str(applied + 1000))
    with pytest.raises(redis.ResponseError, match="usage"):
        c.execute_command("QUIVER.CHECKPOINT", "OPEN", "-1")
    with pytest.raises(redis.ResponseError, match="unknown QUIVER.CHECKPOINT"):
        c.execute_command("QUIVER.CHECKPOINT", "STEAL")
    with pytest.raises(redis.ResponseError, match="no checkpoint"):
        c.execute_command("QUIVER.CHECKPOINT", "READ", "999", "CURRENT", "0", "10")
    r = c.execute_command("QUIVER.CHECKPOINT", "OPEN", "1")
    cp_id, cp_applied, cluster_hex, nfiles = r[0], r[1], r[2], r[3]
    assert cp_applied >= applied and len(cluster_hex) == 32 and nfiles == (len(r) - 4) // 3
    names = [r[4 + 3 * i].decode() for i in range(nfiles)]
    assert "CURRENT" in names and not any(n.startswith("LOG") or n == "LOCK" for n in names)
    with pytest.raises(redis.ResponseError, match="range"):
        c.execute_command("QUIVER.CHECKPOINT", "READ", str(cp_id), "CURRENT", "0", str(64 * 1024 * 1024))
    with pytest.raises(redis.ResponseError, match="no checkpoint"):
        c.execute_command("QUIVER.CHECKPOINT", "READ", str(cp_id), "../../etc/passwd", "0", "10")
    head = c.execute_command("QUIVER.CHECKPOINT", "READ", str(cp_id), "CURRENT", "0", "100")
    assert head.startswith(b"MANIFEST-")
    # Two open at most.
    r2 = c.execute_command("QUIVER.CHECKPOINT", "OPEN", "1")
    with pytest.raises(redis.ResponseError, match="busy"):
        c.execute_command("QUIVER.CHECKPOINT", "OPEN", "1")
    assert c.execute_command("QUIVER.CHECKPOINT", "CLOSE", str(cp_id)) in (b"OK", "OK")
    assert c.execute_command("QUIVER.CHECKPOINT", "CLOSE", str(r2[0])) in (b"OK", "OK")
    with pytest.raises(redis.ResponseError):
        c.execute_command("QUIVER.CHECKPOINT", "CLOSE", str(cp_id))
    assert not os.listdir(os.path.join(leader.data_dir, "checkpoints"))
    c.close()


def test_interrupted_swap_is_finished_at_start(tmp_path, quiverd_bin):
    s = harness.Server(tmp_path / "one", binary=quiverd_bin)
    s.start()
    c = s.client()
    c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: 1})")
    c.close()
    s.stop()
    # A crash after "db -> db.old" and before "db.incoming -> db": the old
    # database comes back.
    os.rename(os.path.join(s.data_dir, "db"), os.path.join(s.data_dir, "db.old"))
    os.mkdir(os.path.join(s.data_dir, "db.incoming"))
    s.start()
    assert count(s, "g") == 1
    assert not os.path.exists(os.path.join(s.data_dir, "db.old"))
    assert not os.path.exists(os.path.join(s.data_dir, "db.incoming"))
    s.close()


def test_node_added_after_compaction_catches_up_by_checkpoint(cluster, tmp_path, quiverd_bin):
    """QUIVER.CLUSTER ADD of a fresh node when the leader's log no longer
    starts at index 1: the new node gets a snapshot marker, copies a
    checkpoint, then votes and serves."""
    leader = harness.wait_leader(cluster)
    c = leader.client()
    for i in range(200):
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: %d})" % i)
    n4 = harness.start_joining_node(tmp_path / "j", cluster, 4, SMALL_LOG, binary=quiverd_bin)
    try:
        assert c.execute_command("QUIVER.CLUSTER", "ADD", "4", n4.raft_address) == "OK"
        wait_for(lambda: "database replaced by the checkpoint" in n4.log_text(), "the checkpoint swap on node4")
        everyone = cluster + [n4]
        harness.wait_digests_agree(everyone, "g", timeout_s=WAIT_S)
        assert count(n4, "g") == 200
        c.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: 200})")
        harness.wait_digests_agree(everyone, "g", timeout_s=WAIT_S)
        nodes = harness.cluster_nodes(leader)
        assert sorted(int(n["id"]) for n in nodes) == [1, 2, 3, 4], nodes
        # Node 4 leads: the original nodes know it only from raft (it is
        # not in their --peers) and still forward writes and reads to it.
        assert c.execute_command("QUIVER.CLUSTER", "TRANSFER", "4") == "OK"
        harness.wait_leader(everyone, timeout_s=WAIT_S)
        for s in cluster:
            sc = s.client()
            try:
                sc.execute_command("GRAPH.QUERY", "g", "CREATE (:N {i: %d})" % (1000 + s.node_id))
                assert sc.info("raft")["raft_leader_client_address"] == "127.0.0.1:%d" % n4.port
            finally:
                sc.close()
        harness.wait_digests_agree(everyone, "g", timeout_s=WAIT_S)
        assert count(n4, "g") == 204
    finally:
        c.close()
        n4.close()

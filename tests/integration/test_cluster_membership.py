"""Cluster membership and the cluster view (issue 3, "Membership" and
`quiver status`), with quiverd processes on 127.0.0.1:

  - a fourth node started with --join is added with QUIVER.CLUSTER ADD on
    the leader, catches up from the log (same digest at the same applied
    index), is listed by NODES as a voter, takes writes, and can lead
    (TRANSFER); REMOVE takes it out again and the three keep accepting
    writes;
  - removing the leader itself: it answers +OK, steps down, and the two
    others elect a leader among themselves;
  - ADD of a node that is down: it stays a spare (raft aborts its catch-up),
    another change meanwhile is refused, and ADD again once it runs
    promotes it;
  - bad arguments and commands on a follower get clear errors and change
    nothing;
  - `quiver status` prints one row per node and marks a killed node
    unreachable; exit 1 when the node cannot be reached.

The cluster keeps its whole log (a large --snapshot-threshold), so the new
node catches up from the log, not by checkpoint (tested elsewhere).

Every wait is a condition with a deadline; no sleeps.
"""
import os
import re
import signal
import subprocess
import threading
import time

import pytest
import redis

import harness

WAIT_S = 60.0
ARGS = ["--snapshot-threshold", "100000"]


@pytest.fixture
def made(tmp_path, quiverd_bin):
    servers = []
    yield servers
    problems = []
    for s in servers:
        try:
            if s.alive():
                os.kill(s.proc.pid, signal.SIGCONT)
            s.close()
        except harness.ServerError as e:
            problems.append(str(e))
    if problems:
        raise harness.ServerError("\n\n".join(problems))


def cluster3(tmp_path, made, quiverd_bin):
    servers = harness.start_cluster(tmp_path / "c", 3, ARGS, binary=quiverd_bin)
    made.extend(servers)
    return servers


def command(server, *args):
    c = server.client(timeout_s=30)
    try:
        return c.execute_command(*args)
    finally:
        c.close()


def error_of(server, *args):
    with pytest.raises(redis.ResponseError) as e:
        command(server, *args)
    return str(e.value)


def write(server, graph, i):
    c = server.client(timeout_s=30)
    try:
        res = harness.verbose(c, graph, "CREATE (:W {i: %d})" % i)
        assert res.stat("Nodes created") == 1, res
    finally:
        c.close()


def count(server, graph):
    c = server.client(timeout_s=30)
    try:
        return harness.verbose(c, graph, "MATCH (w:W) RETURN count(w)").scalar
    finally:
        c.close()


def wait_until(what, fn, timeout_s=WAIT_S):
    """Poll fn() until it returns a true value; return it (or fail)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
            last = repr(e)
        time.sleep(0.02)   # poll interval of a condition wait
    raise AssertionError("%s: not true within %.0fs (last: %r)" % (what, timeout_s, last))


def wait_answers(server):
    def ping():
        if not server.alive():
            raise harness.ServerError("%s exited\n%s" % (server.name, server.log_tail()))
        return command(server, "PING") in ("PONG", b"PONG", True)
    wait_until("%s answers PING" % server.name, ping)


def by_id(rows):
    return {r["id"]: r for r in rows}


NODE_FIELDS = ["id", "address", "raft_address", "role", "state", "term", "commit_index",
               "applied_index", "lag", "reachable", "leader_id", "error"]


def test_add_catch_up_transfer_remove(tmp_path, made, quiverd_bin):
    servers = cluster3(tmp_path, made, quiverd_bin)
    leader = harness.wait_leader(servers, WAIT_S)
    g = "members"
    followers = [s for s in servers if s is not leader]
    for i in range(30):
        write(leader if i % 2 else followers[0], g, i)

    # The view of three: every field, in order, on every node.
    for s in servers:
        raw = command(s, "QUIVER.CLUSTER", "NODES")
        assert len(raw) == 3, raw
        assert all(r[0::2] == NODE_FIELDS for r in raw), raw
    rows = wait_until("three reachable voters, one leader",
                      lambda: (lambda rs: rs if all(r["reachable"] == "yes" for r in rs) else None)(
                          harness.cluster_nodes(followers[1])))
    assert sorted(r["id"] for r in rows) == [1, 2, 3]
    assert all(r["role"] == "voter" for r in rows), rows
    assert [r["state"] for r in rows].count("leader") == 1, rows
    for r in rows:
        s = servers[r["id"] - 1]
        assert r["address"] == "%s:%d" % (harness.HOST, s.port), r
        assert r["leader_id"] == leader.node_id and r["lag"] >= 0 and r["error"] == "", r

    # The fourth node, started with --join: not a member yet.
    n4 = harness.start_joining_node(tmp_path / "c", servers, 4, ARGS, binary=quiverd_bin)
    made.append(n4)
    wait_answers(n4)
    assert 4 not in by_id(harness.cluster_nodes(leader))
    assert harness.cluster_nodes(n4) == []     # no configuration until the leader adds it
    rc, out, err = run_cli("-p", str(n4.port), "status")
    assert rc == 0 and "no members" in out, (rc, out, err)

    # Membership changes run on the leader only; a follower names it.
    e = error_of(followers[0], "QUIVER.CLUSTER", "ADD", "4", n4.raft_address)
    assert "not the leader" in e and "node %d" % leader.node_id in e and str(leader.port) in e, e

    assert command(leader, "QUIVER.CLUSTER", "ADD", "4", n4.raft_address) == "OK"
    everyone = servers + [n4]
    digest = harness.wait_digests_agree(everyone, g, WAIT_S)
    assert count(n4, g) == 30
    rows = wait_until("node 4 listed as a reachable voter everywhere",
                      lambda: all(len(rs) == 4 and all(r["role"] == "voter" and r["reachable"] == "yes" for r in rs)
                                  for rs in [harness.cluster_nodes(s) for s in everyone]))
    rows = by_id(harness.cluster_nodes(leader))
    assert rows[4]["raft_address"] == n4.raft_address
    assert rows[4]["address"] == "%s:%d" % (harness.HOST, n4.port)   # derived: raft port - 1000
    assert rows[4]["state"] == "follower"

    # Adding again is refused and changes nothing.
    assert "already a voter" in error_of(leader, "QUIVER.CLUSTER", "ADD", "4", n4.raft_address)
    assert "already belongs to node 4" in error_of(leader, "QUIVER.CLUSTER", "ADD", "5", n4.raft_address)
    assert "already in the configuration" in error_of(leader, "QUIVER.CLUSTER", "ADD", "4", "127.0.0.1:1")
    assert len(harness.cluster_nodes(leader)) == 4

    # Writes through node 4 (forwarded to the leader) and reads there.
    for i in range(30, 40):
        write(n4, g, i)
    assert count(n4, g) == 40
    digest = harness.wait_digests_agree(everyone, g, WAIT_S)

    # TRANSFER to a given follower makes it the leader.
    target = followers[0]
    assert command(leader, "QUIVER.CLUSTER", "TRANSFER", str(target.node_id)) == "OK"
    assert harness.wait_leader(everyone, WAIT_S) is target
    # ... and to the new node: it leads (its own writes are proposed locally).
    assert command(target, "QUIVER.CLUSTER", "TRANSFER", "4") == "OK"
    assert harness.wait_leader(everyone, WAIT_S) is n4
    write(n4, g, 40)
    # TRANSFER without an id: raft picks a voter.
    assert command(n4, "QUIVER.CLUSTER", "TRANSFER") == "OK"
    leader = harness.wait_leader(everyone, WAIT_S)
    assert leader is not n4
    write(leader, g, 41)

    # REMOVE 4: three members again, and they keep accepting writes.
    assert command(leader, "QUIVER.CLUSTER", "REMOVE", "4") == "OK"
    rows = harness.cluster_nodes(leader)
    assert sorted(r["id"] for r in rows) == [1, 2, 3], rows
    assert "not in the configuration" in error_of(leader, "QUIVER.CLUSTER", "REMOVE", "4")
    n4.close()
    for i in range(42, 52):
        write(servers[i % 3], g, i)
    harness.wait_digests_agree(servers, g, WAIT_S)
    assert all(count(s, g) == 52 for s in servers)
    for s in servers:
        wait_until("%s lists three members" % s.name,
                   lambda s=s: sorted(r["id"] for r in harness.cluster_nodes(s)) == [1, 2, 3])


def test_bad_arguments_change_nothing(tmp_path, made, quiverd_bin):
    servers = cluster3(tmp_path, made, quiverd_bin)
    leader = harness.wait_leader(servers, WAIT_S)
    follower = next(s for s in servers if s is not leader)
    cases = [
        (("QUIVER.CLUSTER",), "wrong number of arguments"),
        (("QUIVER.CLUSTER", "FROB"), "unknown QUIVER.CLUSTER subcommand"),
        (("QUIVER.CLUSTER", "NODES", "x"), "wrong number of arguments"),
        (("QUIVER.CLUSTER", "ADD", "4"), "wrong number of arguments"),
        (("QUIVER.CLUSTER", "ADD", "0", "127.0.0.1:9"), "bad node id"),
        (("QUIVER.CLUSTER", "ADD", "four", "127.0.0.1:9"), "bad node id"),
        (("QUIVER.CLUSTER", "ADD", "-4", "127.0.0.1:9"), "bad node id"),
        (("QUIVER.CLUSTER", "ADD", "4", "nohost"), "bad raft address"),
        (("QUIVER.CLUSTER", "ADD", "4", "127.0.0.1:0"), "bad raft address"),
        (("QUIVER.CLUSTER", "ADD", "4", "127.0.0.1:99999"), "bad raft address"),
        (("QUIVER.CLUSTER", "ADD", "4", ":7000"), "bad raft address"),
        (("QUIVER.CLUSTER", "ADD", "4", "h" * 80 + ":7000"), "bad raft address"),
        (("QUIVER.CLUSTER", "REMOVE"), "wrong number of arguments"),
        (("QUIVER.CLUSTER", "REMOVE", "x"), "bad node id"),
        (("QUIVER.CLUSTER", "REMOVE", "9"), "not in the configuration"),
        (("QUIVER.CLUSTER", "TRANSFER", "x"), "bad node id"),
        (("QUIVER.CLUSTER", "TRANSFER", "1", "2"), "wrong number of arguments"),
        (("QUIVER.CLUSTER", "TRANSFER", "9"), "not in the configuration"),
        (("QUIVER.CLUSTER", "TRANSFER", str(leader.node_id)), "already the leader"),
    ]
    for args, words in cases:
        e = error_of(leader, *args)
        assert words in e, (args, e)
    for sub in (("REMOVE", "1"), ("TRANSFER",), ("ADD", "4", "127.0.0.1:9")):
        e = error_of(follower, "QUIVER.CLUSTER", *sub)
        assert "not the leader" in e and "node %d" % leader.node_id in e, (sub, e)
    rows = harness.cluster_nodes(leader)
    assert sorted(r["id"] for r in rows) == [1, 2, 3] and all(r["role"] == "voter" for r in rows)
    assert harness.wait_leader(servers, WAIT_S) is leader


def test_remove_the_leader(tmp_path, made, quiverd_bin):
    servers = cluster3(tmp_path, made, quiverd_bin)
    leader = harness.wait_leader(servers, WAIT_S)
    g = "rmleader"
    write(leader, g, 0)
    # 0.22.1: the change commits, the callback answers, then the leader
    # steps down ("leader removed from config").
    assert command(leader, "QUIVER.CLUSTER", "REMOVE", str(leader.node_id)) == "OK"
    rest = [s for s in servers if s is not leader]
    new = harness.wait_leader(rest, WAIT_S)
    assert new is not leader
    rows = harness.cluster_nodes(new)
    assert sorted(r["id"] for r in rows) == sorted(s.node_id for s in rest), rows
    write(new, g, 1)
    write(next(s for s in rest if s is not new), g, 2)
    harness.wait_digests_agree(rest, g, WAIT_S)
    assert count(new, g) == 3


# --- quiver status ----------------------------------------------------------------

def run_cli(*args, timeout=60):
    p = subprocess.run([harness.quiver_cli_path()] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def status_rows(out):
    """Table rows of `quiver status` as lists of cells (header excluded)."""
    lines = [l for l in out.splitlines() if l.startswith("|")]
    cells = [[c.strip() for c in l.strip("|").split("|")] for l in lines]
    return cells[0], cells[1:]


def test_quiver_status(tmp_path, made, quiverd_bin):
    cli = harness.quiver_cli_path()
    if not os.access(cli, os.X_OK):
        pytest.fail("quiver CLI not found at %s" % cli)
    servers = cluster3(tmp_path, made, quiverd_bin)
    leader = harness.wait_leader(servers, WAIT_S)
    write(leader, "st", 0)
    follower = next(s for s in servers if s is not leader)
    rc, out, err = run_cli("-h", harness.HOST, "-p", str(follower.port), "status")
    assert rc == 0, (out, err)
    header, rows = status_rows(out)
    assert header[:4] == ["id", "address", "raft address", "role"], header
    for col in ("state", "term", "commit index", "applied index", "lag", "reachable"):
        assert col in header, header
    assert sorted(int(r[0]) for r in rows) == [1, 2, 3], out
    state = header.index("state")
    reach = header.index("reachable")
    assert [r[state] for r in rows].count("leader") == 1, out
    assert all(r[reach] == "yes" for r in rows), out
    # aligned: every table line has the same width
    assert len({len(l) for l in out.splitlines() if l.startswith(("|", "+"))}) == 1, out

    # A killed follower shows as unreachable (asked through the leader).
    victim = next(s for s in servers if s is not leader and s is not follower)
    victim.kill9()

    def victim_unreachable():
        rc, out, err = run_cli("-p", str(leader.port), "status")
        assert rc == 0, (out, err)
        _, rows = status_rows(out)
        row = next(r for r in rows if int(r[0]) == victim.node_id)
        return out if row[reach] == "no" and row[state] == "unreachable" else None
    out = wait_until("the killed node is unreachable in quiver status", victim_unreachable)
    _, rows = status_rows(out)
    assert sum(1 for r in rows if r[reach] == "yes") == 2, out

    # A node that cannot be reached: exit 1 and a clear message.
    rc, out, err = run_cli("-p", str(victim.port), "status")
    assert rc == 1, (out, err)
    assert re.search(r"cannot connect to 127\.0\.0\.1:%d" % victim.port, err), err


def test_add_unreachable_node_stays_spare_then_resumes(tmp_path, made, quiverd_bin):
    servers = cluster3(tmp_path, made, quiverd_bin)
    leader = harness.wait_leader(servers, WAIT_S)
    g = "spare"
    for i in range(5):
        write(leader, g, i)
    # Node 5's address is known, but the process is down when it is added.
    n5 = harness.start_joining_node(tmp_path / "c", servers, 5, ARGS, binary=quiverd_bin)
    made.append(n5)
    n5.kill9()

    result = {}

    def add():
        try:
            result["reply"] = command(leader, "QUIVER.CLUSTER", "ADD", "5", n5.raft_address)
        except redis.ResponseError as e:
            result["error"] = str(e)
    t = threading.Thread(target=add)
    t.start()
    # While the first ADD waits for node 5 to catch up, another change is refused.
    wait_until("node 5 is in the configuration as a spare",
               lambda: by_id(harness.cluster_nodes(leader)).get(5, {}).get("role") == "spare")
    e = error_of(leader, "QUIVER.CLUSTER", "REMOVE", "5")
    assert "already in progress" in e, e
    t.join(WAIT_S)
    assert not t.is_alive()
    # raft aborts the catch-up of an unresponsive node (5 s rounds in 0.22.1).
    assert "did not catch up" in result.get("error", ""), result
    row = by_id(harness.cluster_nodes(leader))[5]
    assert row["role"] == "spare" and row["reachable"] == "no" and row["state"] == "unreachable", row
    assert row["term"] is None and row["lag"] is None, row
    # The three still take writes: a spare does not count for the quorum.
    write(leader, g, 5)

    # Started now, the same ADD resumes at the promotion and succeeds.
    n5.start(wait=False)
    wait_answers(n5)
    assert command(leader, "QUIVER.CLUSTER", "ADD", "5", n5.raft_address) == "OK"
    harness.wait_digests_agree(servers + [n5], g, WAIT_S)
    assert count(n5, g) == 6
    assert by_id(harness.cluster_nodes(leader))[5]["role"] == "voter"
    # A voter can be removed again.
    assert command(leader, "QUIVER.CLUSTER", "REMOVE", "5") == "OK"
    assert 5 not in by_id(harness.cluster_nodes(leader))

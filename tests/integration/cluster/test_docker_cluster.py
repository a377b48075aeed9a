"""The docker-compose cluster under faults (issue 3, "Tests ... Cluster
(Docker)" and "A linearizability check").

In file order (pytest keeps it), against ONE cluster made by ./deploy/up:

  1. ./deploy/up exits 0, prints how to connect, and leaves three running
     containers that agree on one leader, each answering /readyz "ready".
  2. `quiver import` of the Debian graph through node2 (127.0.0.1:7002, a
     follower or the leader, whichever it is); the per-label node counts and
     per-type relationship counts of manifest.json on each of the three nodes
     (one test per node; reads are linearizable by default).
  3. Faults, in this order, while two kinds of clients run through every
     node that is reachable:
       - writers, one thread per node, each `CREATE (:W {id: 'nN-i'})` with a
         unique id, recording acknowledged ids, ids whose outcome is unknown
         (timeout, connection lost after sending, "outcome unknown" error or
         an error we cannot classify) and ids refused with a "not applied"
         error; a refused connection sends nothing and records nothing;
       - the register workload of lin_workload.py (two clients per node,
         three registers, random reads and writes, each operation recorded
         with its start and end time and outcome ok / fail / unknown);
     the faults: `docker kill` of the leader's container, a new leader among
     the other two, writes acknowledged again, `docker start`, the node
     ready again; `docker pause` of a follower, writes acknowledged through
     the others, `docker unpause`, ready again; `docker network disconnect`
     of the leader (this also closes its published client port), a new
     leader among the other two, writes acknowledged again, `docker network
     connect`, ready again.  Every step waits for a condition with a
     deadline; no sleep decides anything.
  4. At the end: every acknowledged write is on every node exactly once, no
     id appears twice, no write refused as "not applied" is present; the
     three nodes report the same QUIVER.DIGEST [applied index, digest] for
     the writers' graph, the registers' graph and the Debian graph; the
     register history is linearizable (linearizability.py: unknown writes
     may have happened or not, nothing else is allowed).
  5. ./deploy/down --keep-daemon removes containers and volumes (checked),
     a second ./deploy/down is a no-op (idempotent) and, unless
     QUIVER_DOCKER_DOWN_ARGS says --keep-daemon, stops a dockerd that
     ./deploy/up started.  The module fixture runs the same ./deploy/down
     when a test fails on the way, so no container outlives the run.

A cluster that exists before the test and was not made by this test (label
org.quiver.owner != "tests", set through QUIVER_CLUSTER_OWNER in
docker-compose.yml) is a user's: the test refuses to touch it and fails
with a message -- except with CI=true, where it can only be what a session
left on the machine, and is removed.  Leftovers of an interrupted earlier
run of this test are removed with ./deploy/down first.

Environment:
  QUIVER_DOCKER_UP_ARGS    extra arguments of ./deploy/up (tests/run passes
                           --no-build: it has just built build/)
  QUIVER_DOCKER_DOWN_ARGS  extra arguments of the final ./deploy/down
                           (tests/run passes --keep-daemon and stops the
                           dockerd it started itself)
  QUIVER_DOCKER_WAIT_S     deadline of each wait (default 60)
  QUIVER_DEBIAN_DATA, QUIVER / QUIVER_CLI as for the other integration tests
Needs root (or sudo) for Docker.
"""
import collections
import json
import os
import shlex
import subprocess
import sys
import threading
import time

import pytest
import redis

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(INTEGRATION))
sys.path.insert(0, INTEGRATION)
import harness  # noqa: E402
import lin_workload as W  # noqa: E402
import linearizability as L  # noqa: E402

HOST = "127.0.0.1"
PORTS = {1: 7001, 2: 7002, 3: 7003}
IMPORT_NODE = 2
CONTAINER = "quiver-node%d"
OWNER_LABEL = "org.quiver.owner"
OWNER = "tests"
WAIT_S = float(os.environ.get("QUIVER_DOCKER_WAIT_S", "60"))
# ./deploy/up from nothing installs packages, may debootstrap the base image
# and builds the image: a hang guard, not a timing check.
UP_TIMEOUT_S = 1800
DOWN_TIMEOUT_S = 300
IMPORT_TIMEOUT_S = 900
WRITE_TIMEOUT_S = 10.0     # socket timeout of one write (then: outcome unknown)
# After a connection is refused or lost, a client waits this long before it
# connects again: while a node's client port is gone (docker network
# disconnect) Docker's proxy accepts and then resets every connection, and
# clients reconnecting at once would spin, load the two cores and record
# thousands of operations with unknown outcomes that say nothing.
RECONNECT_WAIT_S = 0.05
PROGRESS_WRITES = 20       # "writes continue": this many more acknowledged per live writer
PROGRESS_REGISTER_OPS = 200  # ... and this many more register operations completed
WRITER_GRAPH = "faults"
REGISTER_GRAPH = "lin"
DEBIAN_GRAPH = "debian"

DOCKER = ["docker"] if os.geteuid() == 0 else ["sudo", "docker"]

# What conftest.py prints at the end of the run: seconds per phase, and
# lines about the fault schedule (steps, counts).
TIMINGS = collections.OrderedDict()
SUMMARY = []


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def docker(*args, check=True, timeout_s=120):
    p = subprocess.run(DOCKER + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout_s, text=True)
    if check and p.returncode != 0:
        raise AssertionError("docker %s: exit %d\n%s%s" % (" ".join(args), p.returncode, p.stdout, p.stderr))
    return p


def docker_answers():
    try:
        return docker("info", check=False, timeout_s=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def run_script(argv, timeout_s, env_extra=None):
    """Runs a deploy script; returns (exit status, stdout+stderr)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    t0 = time.monotonic()
    p = subprocess.run(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout_s, env=env, text=True)
    log("%s: exit %d in %.1fs" % (" ".join(argv), p.returncode, time.monotonic() - t0))
    return p.returncode, p.stdout


def wait_for(what, cond, timeout_s=WAIT_S, poll_s=0.05):
    """Calls cond() until it returns a true value (returned) or the deadline
    passes (AssertionError naming `what` and cond's last value)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        ok, last = cond()
        if ok:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("not within %.0fs: %s (last: %r)" % (timeout_s, what, last))
        time.sleep(poll_s)   # poll interval of a condition wait


# --- talking to the nodes ------------------------------------------------------

def client(node, timeout_s=30):
    return redis.Redis(host=HOST, port=PORTS[node], socket_timeout=timeout_s,
                       socket_connect_timeout=5, decode_responses=True)


def raft_info(node, timeout_s=2):
    """INFO raft of a node as a dict; None when it does not answer."""
    try:
        c = client(node, timeout_s)
        try:
            return c.info("raft")
        finally:
            c.close()
    except (redis.RedisError, OSError):
        return None


def node_ready(node):
    """/readyz of the node's admin port (through docker exec)."""
    try:
        p = docker("exec", CONTAINER % node, "quiver-http", "/readyz", check=False, timeout_s=10)
    except subprocess.TimeoutExpired:
        return False, "docker exec timed out"
    return p.returncode == 0 and p.stdout.strip() == "ready", (p.stdout + p.stderr).strip()


def leader_of(nodes, min_term=0):
    """(ok, (leader id, term) or what is wrong): every node in `nodes`
    answers INFO raft, exactly one of them says it is the leader (ready), all
    name it in the same term, and that term is at least min_term."""
    infos = {n: raft_info(n) for n in nodes}
    silent = [n for n, i in infos.items() if i is None]
    if silent:
        return False, "node(s) %s do not answer INFO raft" % silent
    leaders = [n for n, i in infos.items() if i.get("raft_role") == "leader"]
    view = {n: (i.get("raft_role"), i.get("raft_leader_id"), i.get("raft_current_term")) for n, i in infos.items()}
    if len(leaders) != 1:
        return False, view
    li = infos[leaders[0]]
    term = li.get("raft_current_term")
    if li.get("raft_ready", 1) != 1 or term < min_term:
        return False, view
    if any(i.get("raft_leader_id") != leaders[0] or i.get("raft_current_term") != term for i in infos.values()):
        return False, view
    return True, (leaders[0], term)


def wait_leader(nodes, min_term=0, what="a leader"):
    return wait_for("%s agreed by nodes %s (term >= %d)" % (what, list(nodes), min_term),
                    lambda: leader_of(nodes, min_term))


def wait_ready(nodes):
    for n in nodes:
        wait_for("node%d /readyz says ready" % n, lambda: node_ready(n))


def digest(node, graph):
    try:
        c = client(node, 10)
        try:
            return tuple(c.execute_command("QUIVER.DIGEST", graph))
        finally:
            c.close()
    except (redis.RedisError, OSError) as e:
        return repr(e)


def wait_digests_agree(graph):
    """Until the three nodes answer the same [applied index, digest]."""
    def cond():
        got = {n: digest(n, graph) for n in PORTS}
        vals = set(got.values())
        return (len(vals) == 1 and isinstance(next(iter(vals)), tuple)), got
    return wait_for("QUIVER.DIGEST %s equal on all three nodes" % graph, cond)


def scalar(node, graph, query):
    c = client(node, 120)
    try:
        return harness.compact(c, graph, query).scalar
    finally:
        c.close()


def collapse_repeats(lines):
    """Log lines with runs of the same message (timestamps aside) folded
    into one line and a count: a node retrying a peer every 50 ms would
    otherwise fill the tail."""
    out, prev, count = [], None, 0
    for line in lines + [None]:
        msg = line.split(" ", 1)[-1] if line else None
        if msg is not None and msg == prev:
            count += 1
            continue
        if count > 1:
            out.append("    ... the same %d more times" % (count - 1))
        if line is not None:
            out.append(line)
        prev, count = msg, 1
    return out


def container_logs(lines=40):
    """The last lines of each node's log (stdout and stderr merged in time
    order, repeats folded) and its state, for a failure message."""
    out = []
    for n in sorted(PORTS):
        st = docker("inspect", "-f", "{{.State.Status}} exit={{.State.ExitCode}} restarts={{.RestartCount}} "
                    "started={{.State.StartedAt}}", CONTAINER % n, check=False)
        lg = docker("logs", "--timestamps", "--tail", str(lines * 20), CONTAINER % n, check=False)
        merged = sorted(lg.stdout.splitlines() + lg.stderr.splitlines())   # by timestamp
        out.append("--- %s (%s) ---\n%s" % (CONTAINER % n, st.stdout.strip() or st.stderr.strip(),
                                           "\n".join(collapse_repeats(merged)[-lines:])))
    return "\n".join(out)


# --- the cluster -------------------------------------------------------------------

class Cluster:
    """./deploy/up and ./deploy/down, and what the faults left undone."""

    def __init__(self):
        self.up_rc, self.up_out = None, ""
        self.down_done = False
        self.paused = set()
        self.disconnected = {}    # node -> network
        self.killed = set()
        self.timings = TIMINGS

    def containers(self):
        p = docker("ps", "-a", "--format", '{{.Names}} {{.Label "%s"}}' % OWNER_LABEL, check=False)
        out = {}
        for line in p.stdout.splitlines():
            name, _, owner = line.partition(" ")
            if name in {CONTAINER % n for n in PORTS}:
                out[name] = owner
        return out

    def volumes(self):
        """{volume name: owner label} of the nodes' volumes."""
        p = docker("volume", "ls", "--format", '{{.Name}} {{.Label "%s"}}' % OWNER_LABEL, check=False)
        out = {}
        for line in p.stdout.splitlines():
            name, _, owner = line.partition(" ")
            if name in {"quiver_node%d-data" % n for n in PORTS}:
                out[name] = owner
        return out

    def clear_leftovers(self):
        """Removes what an interrupted run of THIS test left; refuses to
        touch a cluster that someone started with ./deploy/up."""
        if not docker_answers():
            return    # no daemon yet: ./deploy/up starts one; nothing can be left
        found = dict(self.containers(), **self.volumes())
        foreign = {k: v for k, v in found.items() if v != OWNER}
        if foreign and os.environ.get("CI") == "true":
            # CI's machine is the one a session just left: what runs there is
            # a leftover (dockerd restarts `unless-stopped` containers), not a
            # user's cluster.
            log("CI=true: removing a cluster this test did not make: %r" % sorted(foreign.items()))
            foreign = {}
        if foreign:
            pytest.fail("a Quiver cluster (or its volumes) not made by this test exists (%s); this "
                        "test would destroy it.  Remove it with ./deploy/down, or skip this test with "
                        "QUIVER_SKIP_DOCKER=1" % ", ".join("%s owner=%s" % (k, v or "?")
                                                           for k, v in sorted(foreign.items())),
                        pytrace=False)
        if found:
            log("leftovers of an earlier run of this test: %s; ./deploy/down --keep-daemon" % sorted(found))
            rc, out = run_script(["./deploy/down", "--keep-daemon"], DOWN_TIMEOUT_S)
            assert rc == 0, out

    def up(self):
        args = shlex.split(os.environ.get("QUIVER_DOCKER_UP_ARGS", ""))
        t0 = time.monotonic()
        self.up_rc, self.up_out = run_script(["./deploy/up"] + args, UP_TIMEOUT_S,
                                             {"QUIVER_CLUSTER_OWNER": OWNER})
        self.timings["deploy/up"] = time.monotonic() - t0
        print(self.up_out[-4000:])

    def undo_faults(self):
        for n in sorted(self.paused):
            docker("unpause", CONTAINER % n, check=False)
        self.paused.clear()
        for n, net in sorted(self.disconnected.items()):
            docker("network", "connect", net, CONTAINER % n, check=False)
        self.disconnected.clear()

    def down(self, args):
        rc, out = run_script(["./deploy/down"] + list(args), DOWN_TIMEOUT_S)
        self.down_done = True
        return rc, out

    def network_of(self, node):
        p = docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                   CONTAINER % node)
        nets = p.stdout.split()
        assert len(nets) == 1, "node%d is on networks %r, expected one" % (node, nets)
        return nets[0]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    c.clear_leftovers()
    c.up()
    yield c
    # Also when a test failed on the way: undo faults, take everything down.
    if not c.down_done:
        c.undo_faults()
        rc, out = c.down(["--keep-daemon"])
        left = (c.containers(), c.volumes()) if docker_answers() else ({}, {})
        extra = shlex.split(os.environ.get("QUIVER_DOCKER_DOWN_ARGS", ""))
        if "--keep-daemon" not in extra:
            c.down(extra)
        assert rc == 0, "./deploy/down failed:\n%s" % out
        assert left == ({}, {}), "left behind by ./deploy/down: %r" % (left,)


@pytest.fixture(scope="module")
def running(cluster):
    if cluster.up_rc != 0:
        pytest.fail("./deploy/up failed (exit %s); see test_deploy_up" % cluster.up_rc, pytrace=False)
    return cluster


@pytest.fixture(scope="module")
def manifest():
    with open(os.path.join(harness.data_path(), "manifest.json")) as f:
        return json.load(f)


# --- 1. up ---------------------------------------------------------------------------

def test_deploy_up(cluster):
    assert cluster.up_rc == 0, "./deploy/up exit %s:\n%s" % (cluster.up_rc, cluster.up_out[-6000:])
    text = cluster.up_out
    # How to connect: the three client ports, redis-cli and the quiver CLI, and how to stop.
    for needle in ("127.0.0.1", "7001", "7002", "7003", "redis-cli -p 7001", "quiver -p 7001",
                   "./deploy/down"):
        assert needle in text, "deploy/up did not print %r:\n%s" % (needle, text[-3000:])
    names = cluster.containers()
    assert sorted(names) == [CONTAINER % n for n in PORTS], names
    assert set(names.values()) == {OWNER}, names
    for n in PORTS:
        state = docker("inspect", "-f", "{{.State.Status}}", CONTAINER % n).stdout.strip()
        assert state == "running", (n, state)
    # up returns only once a leader is elected and every node is ready.
    ok, view = leader_of(PORTS)
    assert ok, view
    for n in PORTS:
        ok, why = node_ready(n)
        assert ok, "node%d not ready right after ./deploy/up: %s" % (n, why)
    log("cluster up: leader node%d term %d" % view)


# --- 2. the Debian graph through node2 --------------------------------------------

def test_import_debian_through_node2(running, manifest):
    cli = harness.quiver_cli_path()
    data = harness.data_path()
    role = (raft_info(IMPORT_NODE) or {}).get("raft_role")
    argv = [cli, "import", "--host", HOST, "--port", str(PORTS[IMPORT_NODE]), "--graph", DEBIAN_GRAPH,
            "--strict", "--no-progress", data]
    t0 = time.monotonic()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=IMPORT_TIMEOUT_S, text=True)
    running.timings["import through node2"] = time.monotonic() - t0
    log("quiver import through node2 (%s): exit %d in %.1fs" % (role, p.returncode, time.monotonic() - t0))
    print(p.stdout[-2000:], p.stderr[-2000:])
    assert p.returncode == 0, "quiver import: exit %d\n%s\n%s" % (p.returncode, p.stdout[-3000:], p.stderr[-3000:])
    flat = (p.stdout + p.stderr).replace(",", "")
    assert str(sum(manifest["nodes"].values())) in flat, flat[-2000:]
    assert str(sum(manifest["relationships"].values())) in flat, flat[-2000:]


@pytest.mark.parametrize("node", sorted(PORTS), ids=lambda n: "node%d" % n)
def test_debian_counts_on_every_node(running, manifest, node):
    got_nodes = {label: scalar(node, DEBIAN_GRAPH, "MATCH (n:%s) RETURN count(n)" % label)
                 for label in sorted(manifest["nodes"])}
    got_rels = {typ: scalar(node, DEBIAN_GRAPH, "MATCH ()-[r:%s]->() RETURN count(r)" % typ)
                for typ in sorted(manifest["relationships"])}
    assert got_nodes == manifest["nodes"]
    assert got_rels == manifest["relationships"]
    assert scalar(node, DEBIAN_GRAPH, "MATCH (n) RETURN count(n)") == sum(manifest["nodes"].values())
    assert scalar(node, DEBIAN_GRAPH, "MATCH ()-[r]->() RETURN count(r)") == \
        sum(manifest["relationships"].values())


# --- 3. faults under load --------------------------------------------------------------

class Writer(threading.Thread):
    """CREATE (:W {id: 'nN-i'}) one at a time through one node, forever
    until stopped, reconnecting after errors.  Uses redis-py's bare
    Connection: no automatic retry (which would re-send a write whose outcome
    is unknown), and a refused connection is told apart from a failure after
    sending."""

    def __init__(self, node):
        super().__init__(daemon=True, name="writer-node%d" % node)
        self.node = node
        self.acked, self.unknown, self.failed = [], [], []
        self.errors = collections.Counter()
        self.not_sent = 0
        self.stop_event = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        conn = redis.Connection(host=HOST, port=PORTS[self.node], socket_timeout=WRITE_TIMEOUT_S,
                                socket_connect_timeout=2, decode_responses=True)
        i = 0
        while not self.stop_event.is_set():
            try:
                conn.connect()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                conn.disconnect()
                with self.lock:
                    self.not_sent += 1
                    self.errors["connect: %s" % str(e)[:100]] += 1
                self.stop_event.wait(RECONNECT_WAIT_S)
                continue
            wid = "n%d-%d" % (self.node, i)
            i += 1
            try:
                conn.send_command("GRAPH.QUERY", WRITER_GRAPH, "CREATE (:W {id: '%s'})" % wid)
                reply = conn.read_response()
            except redis.ResponseError as e:
                outcome, _ = W.classify_write_error(str(e))
                with self.lock:
                    (self.unknown if outcome == L.UNKNOWN else self.failed).append(wid)
                    self.errors[str(e)[:120]] += 1
                continue
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                conn.disconnect()
                with self.lock:
                    self.unknown.append(wid)
                    self.errors[repr(e)[:120]] += 1
                self.stop_event.wait(RECONNECT_WAIT_S)
                continue
            with self.lock:
                if isinstance(reply, list) and any(s == "Nodes created: 1" for s in reply[-1]):
                    self.acked.append(wid)
                else:   # not an error, not what a CREATE answers: count it as unknown, and say so
                    self.unknown.append(wid)
                    self.errors["unexpected reply: %r" % (reply,)] += 1
        conn.disconnect()

    def acked_count(self):
        with self.lock:
            return len(self.acked)


class PacedWorkload(W.Workload):
    """lin_workload's register clients, pausing RECONNECT_WAIT_S after an
    operation that lost its connection (lin_workload reconnects at once)."""

    def _read(self, conn, c, key):
        super()._read(conn, c, key)
        if conn._sock is None:      # redis-py's Connection after disconnect()
            self._stop.wait(RECONNECT_WAIT_S)

    def _write(self, conn, c, key, value):
        super()._write(conn, c, key, value)
        if conn._sock is None:
            self._stop.wait(RECONNECT_WAIT_S)


def wait_writes_continue(writers, nodes, what):
    """Until the writers of `nodes` each have PROGRESS_WRITES more
    acknowledged writes than now."""
    base = {n: writers[n].acked_count() for n in nodes}

    def cond():
        now = {n: writers[n].acked_count() for n in nodes}
        return all(now[n] >= base[n] + PROGRESS_WRITES for n in nodes), now
    t0 = time.monotonic()
    wait_for("writes acknowledged through node(s) %s %s" % (list(nodes), what), cond)
    return time.monotonic() - t0


def wait_registers_continue(workload, what):
    """Until the register clients completed PROGRESS_REGISTER_OPS more
    operations successfully (on the nodes they can reach)."""
    assert workload.wait_ok(workload.completed_ok() + PROGRESS_REGISTER_OPS, WAIT_S), \
        "register operations do not complete %s (%d ok so far)" % (what, workload.completed_ok())


class FaultRun:
    def __init__(self):
        self.writers = {}
        self.workload = None
        self.report = None
        self.events = []     # (seconds since start, text)
        self.t0 = time.monotonic()
        self.final_leader = None
        self.digests = {}

    def event(self, text):
        self.events.append((time.monotonic() - self.t0, text))
        log(text)


def docker_pause(node):
    """docker pause, repeated while runc answers "unable to freeze": with
    cgroup v1 the freezer gives up when a task does not stop in time (a
    thread inside an O_DSYNC write, say), and runc then thaws the container
    again, so a new attempt is safe.  Returns the number of attempts."""
    attempts = [0]

    def cond():
        attempts[0] += 1
        p = docker("pause", CONTAINER % node, check=False)
        if p.returncode != 0 and "unable to freeze" not in p.stderr:
            raise AssertionError("docker pause %s: %s" % (CONTAINER % node, p.stderr))
        return p.returncode == 0, p.stderr.strip()
    wait_for("docker pause %s succeeds" % (CONTAINER % node), cond)
    return attempts[0]


def fault_schedule(c, run):
    all_nodes = sorted(PORTS)
    leader, term = wait_leader(all_nodes)
    run.event("start: leader node%d term %d" % (leader, term))
    wait_writes_continue(run.writers, all_nodes, "before the faults")
    wait_registers_continue(run.workload, "before the faults")

    # (a) docker kill of the leader; new leader; restart; ready.
    killed = leader
    others = [n for n in all_nodes if n != killed]
    t = time.monotonic()
    docker("kill", CONTAINER % killed)
    c.killed.add(killed)
    run.event("docker kill %s (the leader)" % (CONTAINER % killed))
    new, term = wait_leader(others, term + 1, "a new leader after the kill")
    run.event("new leader node%d term %d, %.2fs after the kill" % (new, term, time.monotonic() - t))
    d = wait_writes_continue(run.writers, others, "after the kill")
    wait_registers_continue(run.workload, "after the kill")
    run.event("writes acknowledged again through %s (+%d each in %.2fs)" % (others, PROGRESS_WRITES, d))
    docker("start", CONTAINER % killed)
    c.killed.discard(killed)
    t = time.monotonic()
    leader, term = wait_leader(all_nodes, term, "one leader after the restart")
    wait_ready(all_nodes)
    run.event("docker start: node%d ready again in %.2fs; leader node%d term %d"
              % (killed, time.monotonic() - t, leader, term))
    wait_writes_continue(run.writers, all_nodes, "after the restart")

    # (b) docker pause of a follower; writes continue; unpause; ready.
    follower = [n for n in all_nodes if n != leader][0]
    live = [n for n in all_nodes if n != follower]
    attempts = docker_pause(follower)
    c.paused.add(follower)
    run.event("docker pause %s (a follower; %d attempt(s))" % (CONTAINER % follower, attempts))
    d = wait_writes_continue(run.writers, live, "while node%d is paused" % follower)
    wait_registers_continue(run.workload, "while node%d is paused" % follower)
    run.event("writes acknowledged through %s while paused (+%d each in %.2fs)" % (live, PROGRESS_WRITES, d))
    docker("unpause", CONTAINER % follower)
    c.paused.discard(follower)
    t = time.monotonic()
    leader, term = wait_leader(all_nodes, term, "one leader after the unpause")
    wait_ready(all_nodes)
    run.event("docker unpause: node%d ready again in %.2fs; leader node%d term %d"
              % (follower, time.monotonic() - t, leader, term))
    wait_writes_continue(run.writers, all_nodes, "after the unpause")

    # (c) cut the leader off the network (its client port goes too); heal.
    cut = leader
    others = [n for n in all_nodes if n != cut]
    net = c.network_of(cut)
    t = time.monotonic()
    docker("network", "disconnect", net, CONTAINER % cut)
    c.disconnected[cut] = net
    run.event("docker network disconnect %s %s (the leader)" % (net, CONTAINER % cut))
    new, term = wait_leader(others, term + 1, "a new leader without node%d" % cut)
    run.event("new leader node%d term %d, %.2fs after the cut" % (new, term, time.monotonic() - t))
    d = wait_writes_continue(run.writers, others, "while node%d is cut off" % cut)
    wait_registers_continue(run.workload, "while node%d is cut off" % cut)
    run.event("writes acknowledged through %s while node%d is cut off (+%d each in %.2fs)"
              % (others, cut, PROGRESS_WRITES, d))
    docker("network", "connect", net, CONTAINER % cut)
    del c.disconnected[cut]
    t = time.monotonic()
    leader, term = wait_leader(all_nodes, term, "one leader after healing")
    wait_ready(all_nodes)
    run.event("docker network connect: node%d ready again in %.2fs; leader node%d term %d"
              % (cut, time.monotonic() - t, leader, term))
    wait_writes_continue(run.writers, all_nodes, "after healing")
    wait_registers_continue(run.workload, "after healing")
    run.final_leader = leader


@pytest.fixture(scope="module")
def faults(running):
    """Runs the fault schedule once under the writers and the register
    workload; the tests below judge what it recorded."""
    run = FaultRun()
    run.writers = {n: Writer(n) for n in PORTS}
    # Two register clients per node (client i uses endpoint i % 3).
    run.workload = PacedWorkload([(HOST, PORTS[n]) for n in sorted(PORTS)], graph=REGISTER_GRAPH,
                              clients=6, keys=3, duration_s=None, timeout_s=WRITE_TIMEOUT_S, seed=None)
    t0 = time.monotonic()
    run.workload.start()
    for w in run.writers.values():
        w.start()
    try:
        fault_schedule(running, run)
    except AssertionError as e:
        raise AssertionError("%s\n\nsteps so far:\n%s\n\n%s" % (
            e, "\n".join("  %7.2fs  %s" % ev for ev in run.events), container_logs())) from e
    finally:
        running.undo_faults()
        for n in sorted(running.killed):
            docker("start", CONTAINER % n, check=False)
        running.killed.clear()
        for w in run.writers.values():
            w.stop_event.set()
        run.workload.stop()
        for w in run.writers.values():
            w.join(WRITE_TIMEOUT_S + 30)
        stuck = [w.name for w in run.writers.values() if w.is_alive()]
        assert not stuck, "writer threads did not stop: %r" % stuck
    running.timings["fault schedule"] = time.monotonic() - t0
    wait_leader(sorted(PORTS), 0, "one leader at the end")
    wait_ready(sorted(PORTS))
    t1 = time.monotonic()
    run.report = run.workload.check()
    running.timings["linearizability check"] = time.monotonic() - t1
    SUMMARY.extend("  %7.2fs  %s" % e for e in run.events)
    for n, w in sorted(run.writers.items()):
        SUMMARY.append("writer node%d: acknowledged %d, unknown %d, not applied %d, not sent (refused) %d"
                       % (n, len(w.acked), len(w.unknown), len(w.failed), w.not_sent))
    text = run.report.text().splitlines()
    SUMMARY.extend(text[:3] + [t for t in text if t.startswith("linearizability:")])
    print("\n".join(SUMMARY))
    for n, w in sorted(run.writers.items()):
        print("writer node%d errors: %r" % (n, w.errors.most_common(6)))
    print(run.report.text())
    return run


def test_fault_schedule_ran_with_writes_acknowledged_throughout(faults):
    # The fixture waited for writes after every step; here: the amount.
    acked = {n: len(w.acked) for n, w in faults.writers.items()}
    assert all(a >= 4 * PROGRESS_WRITES for a in acked.values()), acked
    texts = [t for _, t in faults.events]
    for step in ("docker kill", "docker start", "docker pause", "docker unpause",
                 "docker network disconnect", "docker network connect"):
        assert any(t.startswith(step) for t in texts), (step, texts)


def test_every_acknowledged_write_on_every_node_exactly_once(faults):
    acked = set().union(*(w.acked for w in faults.writers.values()))
    unknown = set().union(*(w.unknown for w in faults.writers.values()))
    failed = set().union(*(w.failed for w in faults.writers.values()))
    assert not (acked & failed) and not (acked & unknown)
    for n in sorted(PORTS):
        c = client(n, 120)
        try:   # the default read consistency: linearizable
            rows = harness.verbose(c, WRITER_GRAPH, "MATCH (w:W) RETURN w.id, count(w)").rows
        finally:
            c.close()
        counts = {r[0]: r[1] for r in rows}
        twice = {k: v for k, v in counts.items() if v != 1}
        assert not twice, "node%d holds writes more than once: %r" % (n, sorted(twice.items())[:20])
        missing = acked - set(counts)
        assert not missing, "node%d lost %d acknowledged writes: %r" % (n, len(missing), sorted(missing)[:20])
        stray = set(counts) - acked - unknown
        assert not stray, "node%d holds writes that were refused as not applied: %r" % (n, sorted(stray)[:20])
        log("node%d: all %d acknowledged writes present once; %d of %d unknown-outcome writes applied"
            % (n, len(acked), len(set(counts) & unknown), len(unknown)))


def test_digests_agree_at_the_same_applied_index(faults):
    for g in (WRITER_GRAPH, REGISTER_GRAPH, DEBIAN_GRAPH):
        index, value = wait_digests_agree(g)[1]
        faults.digests[g] = (index, value)
        log("QUIVER.DIGEST %s: applied index %s, digest %s on all three nodes" % (g, index, value))


def test_register_history_is_linearizable(faults):
    rep = faults.report
    assert rep.ok, rep.text()
    # Not vacuous: many operations completed, across the faults.
    assert rep.count(L.READ, L.OK) >= 200 and rep.count(L.WRITE, L.OK) >= 200, rep.text()
    assert rep.unclassified == 0, rep.text()


# --- 5. down -----------------------------------------------------------------------------

def test_deploy_down_removes_containers_and_volumes(cluster):
    cluster.undo_faults()
    t0 = time.monotonic()
    rc, out = cluster.down(["--keep-daemon"])
    cluster.timings["deploy/down"] = time.monotonic() - t0
    print(out[-3000:])
    assert rc == 0, out
    assert cluster.containers() == {}, cluster.containers()
    assert cluster.volumes() == {}, cluster.volumes()
    p = docker("network", "ls", "-q", "--filter", "label=com.docker.compose.project=quiver")
    assert p.stdout.strip() == "", p.stdout
    # Idempotent; and, unless told to keep it, stops a dockerd that ./deploy/up started.
    rc, out = cluster.down(shlex.split(os.environ.get("QUIVER_DOCKER_DOWN_ARGS", "")))
    assert rc == 0, out

#!/usr/bin/python3
"""docker.py -- benchmarks of the docker-compose cluster (./deploy/up), for
bench/docker/run (numbers are reported, never asserted).

    docker.py load RUN     on the running cluster: (a) import of the Debian
                           graph through a follower, (c) indexed point lookups
                           at each consistency level on the leader and on a
                           follower, (b) CREATE writes on the leader and
                           through a follower; the graphs are deleted first
    docker.py failover     FAILOVER_RUNS times: docker kill of the leader's
                           container, time to the first acknowledged write
                           through a survivor, docker start, wait until all
                           three are ready

The cluster is the one of docker-compose.yml: services node1..3, containers
quiver-node1..3, client ports 127.0.0.1:7001..7003 (node N on 700N, raft id
N).  Roles come from INFO raft (raft_role, raft_leader_id) on every port.

Each metric is appended to RESULTS as "RUN<TAB>docker.METRIC<TAB>VALUE" and
each command is printed before it runs.  The etcd side is
bench/cluster/cluster.py (imported here for its helpers: run_tool, kv, rb_csv,
wait_for, Recorder, BenchError).

Failover: as bench/cluster/cluster.py does it (so the etcd figures compare):
from the moment before the kill, a fresh one-write attempt (new connection,
10 s timeout) through each survivor every ATTEMPT_INTERVAL_S until one is
acknowledged; times from time.monotonic().  The kill is Docker's API call
POST /containers/NAME/kill?signal=KILL on /var/run/docker.sock (what `docker
kill` sends; the CLI's own start-up, ~50-100 ms of Go on a busy machine, is
not in the figure); without the socket, `docker kill` itself.  The writers
start as soon as the container's processes (its init and quiverd, host pids
from the container's State.Pid) are seen dead in /proc, so no write
acknowledged by the old leader is counted; the kill call itself returns
later (Docker tears the container's network down first), which would
otherwise delay the writers.

Environment: RESULTS, QDRIVER, NAMES (package names for qdriver -f, unused
by default), QUIVER (CLI), QUIVER_BENCH_DATA, BENCH_QUICK=1, FAILOVER_RUNS
(default 10), DOCKER_SOCKET (default /var/run/docker.sock).
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
import cluster  # noqa: E402  (bench/cluster/cluster.py: run_tool, kv, rb_csv, wait_for, Recorder)
from cluster import BenchError, kv, rb_csv, wait_for  # noqa: E402

HOST = "127.0.0.1"
QUICK = os.environ.get("BENCH_QUICK") == "1"
N_SEQ = 1000 if QUICK else 5000          # 1-client writes (after WARM_SEQ)
N_W64 = 10000 if QUICK else 50000        # 64-client writes
N_LOOKUP = 10000 if QUICK else 50000     # each lookup load
WARM_SEQ, WARM_64 = 200, 1000
STEP_TIMEOUT_S = 900
FAILOVER_RUNS = int(os.environ.get("FAILOVER_RUNS", "10"))
ATTEMPT_INTERVAL_S = 0.02
ATTEMPT_TIMEOUT_S = 10.0
ATTEMPTS_MAX = 2000
CREATE_Q = "CREATE (:P {i: 1})"
CREATE_Q_SEQ = "CREATE (:P {i: @I@})"
LOOKUP_Q = "MATCH (p:Package {name:'bash'}) RETURN p"   # bench/run's (c)
LEVELS = ("linearizable", "session", "stale")
DEBIAN_GRAPH, WRITE_GRAPH, FAILOVER_GRAPH = "debian", "bench", "failover"
SOCKET = os.environ.get("DOCKER_SOCKET", "/var/run/docker.sock")


def say(msg):
    print(msg, flush=True)


class Node:
    def __init__(self, node_id):
        self.node_id = node_id
        self.idx = node_id - 1  # position in members (bench/cluster's leader() uses it)
        self.name = "node%d" % node_id
        self.container = "quiver-node%d" % node_id
        self.port = 7000 + node_id
        self.running = True     # set by kill / start here (no docker inspect in the polls)

    def alive(self):
        return self.running


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout_s):
        super().__init__("localhost", timeout=timeout_s)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def docker_api(method, path, timeout_s=30):
    c = UnixHTTPConnection(SOCKET, timeout_s)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read()
        return r.status, body
    finally:
        c.close()


class DockerCluster:
    """The compose cluster, driven through its published client ports."""
    system = "docker"

    def __init__(self):
        self.members = [Node(i) for i in (1, 2, 3)]

    def resp(self, m, *args, timeout_s=2.0):
        import redis
        r = redis.Redis(host=HOST, port=m.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        try:
            return True, r.execute_command(*args)
        except redis.ResponseError as e:
            return False, str(e)
        finally:
            r.close()

    # INFO raft and the readiness rule are bench/cluster's QuiverCluster's.
    info = cluster.QuiverCluster.info
    leader = cluster.QuiverCluster.leader

    def wait_ready(self, timeout_s=120):
        return wait_for("a leader known to all three, every node applied the commit index",
                        self.leader, timeout_s=timeout_s)

    def follower(self, lead):
        return next(m for m in self.members if m is not lead)

    def kill(self, m):
        """SIGKILL the container's processes (docker kill); returns the seconds the call took."""
        t0 = time.monotonic()
        if os.path.exists(SOCKET):
            st, body = docker_api("POST", "/containers/%s/kill?signal=KILL" % m.container)
            if st != 204:
                raise BenchError("docker kill %s: HTTP %d %s" % (m.container, st, body[:200]))
        else:
            subprocess.run(["docker", "kill", m.container], check=True, stdout=subprocess.DEVNULL)
        m.running = False
        return time.monotonic() - t0

    def host_pids(self, m):
        """Host pids of the container's init and its children (quiverd); [] if unknown."""
        try:
            if os.path.exists(SOCKET):
                st, body = docker_api("GET", "/containers/%s/json" % m.container)
                pid = int(json.loads(body)["State"]["Pid"]) if st == 200 else 0
            else:
                pid = int(subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", m.container],
                                         stdout=subprocess.PIPE, check=True).stdout)
        except (OSError, ValueError, KeyError, subprocess.CalledProcessError):
            return []
        if pid <= 0:
            return []
        pids = [pid]
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                pids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return pids

    def start(self, m):
        subprocess.run(["docker", "start", m.container], check=True, stdout=subprocess.DEVNULL,
                       timeout=120)
        m.running = True

    def write_once(self, m, tag):
        ok, _ = self.resp(m, "GRAPH.QUERY", FAILOVER_GRAPH, "CREATE (:F {t: '%s'})" % tag,
                          timeout_s=ATTEMPT_TIMEOUT_S)
        return ok

    def scalar(self, m, graph, q, timeout_s=600):
        ok, rep = self.resp(m, "GRAPH.QUERY", graph, q, "--compact", timeout_s=timeout_s)
        if not ok:
            raise BenchError("%s on %s: %s" % (q, m.name, rep))
        return int(rep[1][0][0][1])

    def delete_graph(self, graph):
        """GRAPH.DELETE through the leader (a missing graph is fine); returns seconds."""
        lead = self.wait_ready()
        t0 = time.monotonic()
        ok, rep = self.resp(lead, "GRAPH.DELETE", graph, timeout_s=600)
        if not ok and "empty key" not in rep.lower():
            raise BenchError("GRAPH.DELETE %s: %s" % (graph, rep))
        return time.monotonic() - t0


def all_dead(pids):
    """True when every pid is gone or a zombie (/proc/PID/stat state Z or X)."""
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return False
    return True


def shown(argv):
    return " ".join("'%s'" % a if (" " in a or "(" in a) else a for a in argv)


def tool(argv):
    say("  $ " + shown(argv))
    return cluster.run_tool(["timeout", str(STEP_TIMEOUT_S)] + argv)


def rb(port, clients, n, *cmd):
    return rb_csv(tool(["redis-benchmark", "-h", HOST, "-p", str(port), "-c", str(clients), "-n", str(n),
                        "--csv"] + list(cmd)))


def qd(port, clients, n, warm, query, graph, setup=None, read_only=False):
    argv = [os.environ["QDRIVER"], "-p", str(port), "-c", str(clients), "-n", str(n), "-w", str(warm),
            "-g", graph]
    if read_only:
        argv.append("-r")
    if setup:
        argv += ["--setup", setup]
    return kv(tool(argv + [query]))


def manifest_counts(data):
    with open(os.path.join(data, "manifest.json")) as f:
        m = json.load(f)
    return sum(m["nodes"].values()), sum(m["relationships"].values())


def load(c, rec):
    data = os.environ["QUIVER_BENCH_DATA"]
    quiver = os.environ["QUIVER"]
    for g in (DEBIAN_GRAPH, WRITE_GRAPH):
        secs = c.delete_graph(g)
        say("  GRAPH.DELETE %s: %.2f s" % (g, secs))
    lead = c.wait_ready()
    fol = c.follower(lead)
    say("  leader %s (port %d), follower used: %s (port %d)" % (lead.name, lead.port, fol.name, fol.port))
    rec("leader_node_id", lead.node_id)

    # (a) import through the follower
    n_nodes, n_rels = manifest_counts(data)
    argv = [quiver, "import", "--host", HOST, "--port", str(fol.port), "--graph", DEBIAN_GRAPH,
            "--no-progress", data]
    say("  $ time " + shown(argv))
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                       timeout=STEP_TIMEOUT_S)
    secs = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError("quiver import failed (exit %d): %s" % (p.returncode, p.stdout.decode()[-2000:]))
    lead2 = c.wait_ready()
    for m in c.members:
        nn = c.scalar(m, DEBIAN_GRAPH, "MATCH (n) RETURN count(n)")
        nr = c.scalar(m, DEBIAN_GRAPH, "MATCH ()-[e]->() RETURN count(e)")
        if (nn, nr) != (n_nodes, n_rels):
            raise BenchError("after the import %s has %d nodes + %d relationships, manifest: %d + %d"
                             % (m.name, nn, nr, n_nodes, n_rels))
    rec("import_seconds", "%.3f" % secs)
    rec("import_elements_per_s", "%.1f" % ((n_nodes + n_rels) / secs))
    if lead2 is not lead:
        say("  note: the leader changed during the import (%s -> %s)" % (lead.name, lead2.name))
        lead = lead2
        fol = c.follower(lead)

    # (c) indexed point lookups
    ok, rep = c.resp(lead, "GRAPH.QUERY", DEBIAN_GRAPH, "CREATE INDEX FOR (p:Package) ON (p.name)", timeout_s=600)
    if not ok:
        raise BenchError("CREATE INDEX: %s" % rep)
    for m in c.members:
        def uses_index(m=m):
            ok, rep = c.resp(m, "GRAPH.EXPLAIN", DEBIAN_GRAPH, LOOKUP_Q, timeout_s=30)
            return ok and "index" in str(rep).lower()
        wait_for("the lookup's plan on %s uses the index" % m.name, uses_index, timeout_s=120, interval_s=0.1)
    for role, m in (("leader", lead), ("follower", fol)):
        for clients in (16, 64):
            o = rb(m.port, clients, N_LOOKUP, "GRAPH.RO_QUERY", DEBIAN_GRAPH, LOOKUP_Q)
            rec("lookup%d_%s_linearizable_rb_per_s" % (clients, role), o["rps"])
            for level in LEVELS:
                o = qd(m.port, clients, N_LOOKUP, WARM_64, LOOKUP_Q, DEBIAN_GRAPH,
                       setup="QUIVER.CONSISTENCY %s" % level, read_only=True)
                rec("lookup%d_%s_%s_qd_per_s" % (clients, role, level), o["qps"])
                rec("lookup%d_%s_%s_qd_p99_ms" % (clients, role, level), o["p99_ms"])

    # (b) writes: leader, then through the follower
    for role, m in (("leader", lead), ("follower", fol)):
        o = qd(m.port, 1, N_SEQ, WARM_SEQ, CREATE_Q_SEQ, WRITE_GRAPH)
        rec("write1_%s_qd_per_s" % role, o["qps"])
        rec("write1_%s_qd_p50_ms" % role, o["p50_ms"])
        rec("write1_%s_qd_p99_ms" % role, o["p99_ms"])
        o = rb(m.port, 1, N_SEQ, "GRAPH.QUERY", WRITE_GRAPH, CREATE_Q)
        rec("write1_%s_rb_per_s" % role, o["rps"])
        rec("write1_%s_rb_p50_ms" % role, o["p50_ms"])
        rec("write1_%s_rb_p99_ms" % role, o["p99_ms"])
        o = rb(m.port, 64, N_W64, "GRAPH.QUERY", WRITE_GRAPH, CREATE_Q)
        rec("write64_%s_rb_per_s" % role, o["rps"])
        rec("write64_%s_rb_p99_ms" % role, o["p99_ms"])
    want = 2 * (N_SEQ + WARM_SEQ) + 2 * N_SEQ + 2 * N_W64
    c.wait_ready()
    got = c.scalar(lead, WRITE_GRAPH, "MATCH (p:P) RETURN count(p)")
    if got != want:
        raise BenchError("writes: expected %d :P nodes, found %d" % (want, got))
    end_lead = c.leader()
    if end_lead is not None and end_lead is not lead:
        say("  note: the leader changed during the run (%s -> %s)" % (lead.name, end_lead.name))


def failover(c, results):
    times = []
    c.delete_graph(FAILOVER_GRAPH)
    for k in range(1, FAILOVER_RUNS + 1):
        lead = c.wait_ready()
        term0 = c.info(lead).get("raft_current_term", "?")
        survivors = [m for m in c.members if m is not lead]
        done = threading.Event()
        first = {}
        lock = threading.Lock()
        attempts = [0]

        def attempt(m, tag):
            try:
                ok = c.write_once(m, tag)
            except Exception:
                ok = False
            if ok:
                t = time.monotonic()
                with lock:
                    if "t" not in first:
                        first["t"], first["via"] = t, m.name
                done.set()

        pids = c.host_pids(lead)
        kill_result = {}

        def do_kill():
            try:
                kill_result["s"] = c.kill(lead)
            except Exception as e:  # noqa: BLE001 -- reported below
                kill_result["error"] = e

        t0 = time.monotonic()
        killer = threading.Thread(target=do_kill, daemon=True)
        killer.start()
        # Writers start once the killed container's processes are seen dead
        # (so no write acknowledged by the old leader counts), not when
        # Docker's kill call returns (it also tears down the container's
        # network before answering, ~0.2 s here).
        t_dead = None
        threads = []
        while not done.is_set():
            elapsed = time.monotonic() - t0
            if "error" in kill_result:
                raise BenchError("docker kill %s: %s" % (lead.container, kill_result["error"]))
            if attempts[0] >= ATTEMPTS_MAX or elapsed > 60:
                raise BenchError("failover %d: no write acknowledged by %s after %.1fs"
                                 % (k, [m.name for m in survivors], elapsed))
            if t_dead is None:
                if all_dead(pids) if pids else ("s" in kill_result):
                    t_dead = time.monotonic()
                else:
                    time.sleep(0.001)
                    continue
            for m in survivors:
                th = threading.Thread(target=attempt, args=(m, "%d-%d" % (k, attempts[0])), daemon=True)
                th.start()
                threads.append(th)
                attempts[0] += 1
            done.wait(ATTEMPT_INTERVAL_S)
        killer.join(60)
        kill_s = kill_result.get("s", float("nan"))
        secs = first["t"] - t0
        times.append(secs)
        new = None
        for m in survivors:
            i = c.info(m)
            if i and i.get("raft_role") == "leader":
                new = (m.name, i.get("raft_current_term", "?"))
        with open(results, "a") as f:
            f.write("%d\tdocker.failover_s\t%.3f\n" % (k, secs))
            f.write("%d\tdocker.failover_kill_call_s\t%.3f\n" % (k, kill_s))
            f.write("%d\tdocker.failover_dead_s\t%.3f\n" % (k, t_dead - t0))
        say("  failover %d: %.3f s (killed %s in term %s, dead after %.3f s, kill call %.3f s, first ack via %s, "
            "new leader %s, %d attempts)" % (k, secs, lead.container, term0, t_dead - t0, kill_s, first["via"],
                              "%s term %s" % new if new else "?", attempts[0]))
        for th in threads:
            th.join(ATTEMPT_TIMEOUT_S + 5)
        c.start(lead)
    c.wait_ready()
    say("  failover: median %.3f s, max %.3f s over %d kills"
        % (statistics.median(times), max(times), len(times)))


def main():
    if len(sys.argv) < 2 or sys.argv[1] not in ("load", "failover"):
        print(__doc__, file=sys.stderr)
        return 2
    mode = sys.argv[1]
    results = os.environ["RESULTS"]
    run = sys.argv[2] if len(sys.argv) > 2 else "1"
    c = DockerCluster()
    try:
        if mode == "load":
            load(c, cluster.Recorder(results, "docker", run))
        else:
            failover(c, results)
    except BenchError as e:
        print("docker.py %s: %s" % (mode, e), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("docker.py %s: interrupted" % mode, file=sys.stderr)
        return 130
    finally:
        # A container killed here and not started again (error, Ctrl-C) is started.
        for m in c.members:
            if not m.running:
                try:
                    c.start(m)
                except Exception as e:  # noqa: BLE001 -- report and go on
                    print("docker.py: docker start %s: %s" % (m.container, e), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

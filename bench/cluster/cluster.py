#!/usr/bin/python3
"""cluster.py -- three-node etcd and three-node quiverd on 127.0.0.1, for
bench/cluster/run (numbers are reported, never asserted).

    cluster.py SYSTEM load RUN     fresh cluster; write / read loads; stop
    cluster.py SYSTEM failover     fresh cluster; FAILOVER_RUNS times: kill -9
                                   the leader, time to the first acknowledged
                                   write through a survivor, restart the
                                   killed member, wait until all three agree

SYSTEM is etcd or quiver.  Each metric is appended to RESULTS as
"RUN<TAB>SYSTEM.METRIC<TAB>VALUE" (failover: one line per kill, RUN = kill
number).  Every process started is written to WORK/pids (pid and command
name) so bench/cluster/run can stop leftovers by pid; this script stops its
own processes itself on exit, error and Ctrl-C (SIGINT/SIGTERM).

Both systems run with their default election (1000 ms) and heartbeat
(100 ms) timeouts, data directories under WORK on the same disk, their
write-ahead logs fsynced before any acknowledgement (etcd always; quiverd
O_DSYNC).  The loads:

  etcd   bench/etcd/edriver (HTTP/1.1 keep-alive to the v3 JSON gateway):
         put 1 client, put 64 clients (through the leader, and spread over
         all three members), linearizable range 64 clients (leader)
  quiver qdriver 1 client (CREATE with a distinct v per request), then
         redis-benchmark -c 64 GRAPH.QUERY bench "CREATE (:B {v: 1})" through
         the leader and through a follower (forwarded to the leader), and
         redis-benchmark -c 64 GRAPH.RO_QUERY of an indexed point lookup
         (the default consistency level, linearizable)

Failover: a writer per survivor starts a fresh attempt (new connection, one
small write, 10 s timeout) every ATTEMPT_INTERVAL_S from the moment of the
kill; the clock stops at the first acknowledgement from any survivor.  So
the figure is election + first commit + at most one attempt interval, with
no client back-off or per-request timeout in it.

Environment: QUIVERD, EDRIVER, QDRIVER (paths), ETCD (default etcd),
QUIVERD_ARGS / ETCD_ARGS (extra flags for every member, e.g.
"--election-timeout-ms 300"; not set = both systems' defaults),
BENCH_QUICK=1 (small counts), FAILOVER_RUNS (default 10).
"""
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"
QUICK = os.environ.get("BENCH_QUICK") == "1"
N_SEQ = 1000 if QUICK else 5000          # 1-client requests (after warm-up)
N_W64 = 10000 if QUICK else 50000        # 64-client requests
N_READ = 10000 if QUICK else 50000
WARM_SEQ, WARM_64 = 200, 1000
STEP_TIMEOUT_S = 900                     # any one load command
READY_TIMEOUT_S = 60
FAILOVER_RUNS = int(os.environ.get("FAILOVER_RUNS", "10"))
ATTEMPT_INTERVAL_S = 0.02
ATTEMPT_TIMEOUT_S = 10.0
ATTEMPTS_MAX = 2000                      # per kill, all survivors together
CREATE_Q = "CREATE (:B {v: 1})"
CREATE_Q_SEQ = "CREATE (:B {v: @I@})"
LOOKUP_Q = "MATCH (k:K {k: 0}) RETURN k.v"


class BenchError(Exception):
    pass


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def free_ports(n):
    """n distinct free ports (bound at once so they differ)."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((HOST, 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def wait_for(what, cond, timeout_s=READY_TIMEOUT_S, interval_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval_s)
    raise BenchError("%s: not reached after %ss" % (what, timeout_s))


class Member:
    def __init__(self, idx, work, name):
        self.idx, self.name = idx, name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir, exist_ok=True)
        self.proc = None
        self.log = None

    def spawn(self, argv, pids_file):
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
                                     stdin=subprocess.DEVNULL)
        with open(pids_file, "a") as f:
            f.write("%d %s\n" % (self.proc.pid, os.path.basename(argv[0])))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        if self.log:
            self.log.close()
            self.log = None

    def stop(self):
        # SIGKILL, not a graceful stop: the data directory is thrown away, and
        # a lone etcd member without quorum can take many seconds to stop.
        self.kill9()


class EtcdCluster:
    system = "etcd"

    def __init__(self, work):
        self.work = work
        self.pids = os.path.join(work, "pids")
        self.etcd = os.environ.get("ETCD", "etcd")
        ports = free_ports(6)
        self.members = [Member(i, work, "etcd%d" % (i + 1)) for i in range(3)]
        for i, m in enumerate(self.members):
            m.client_port, m.peer_port = ports[i], ports[3 + i]
        self.initial = ",".join("%s=http://%s:%d" % (m.name, HOST, m.peer_port) for m in self.members)
        self.token = "bench-%d-%d" % (os.getpid(), int(time.time()))

    def start_member(self, m, state="new"):
        m.spawn([self.etcd, "--name", m.name, "--data-dir", os.path.join(m.dir, "data"),
                 "--listen-client-urls", "http://%s:%d" % (HOST, m.client_port),
                 "--advertise-client-urls", "http://%s:%d" % (HOST, m.client_port),
                 "--listen-peer-urls", "http://%s:%d" % (HOST, m.peer_port),
                 "--initial-advertise-peer-urls", "http://%s:%d" % (HOST, m.peer_port),
                 "--initial-cluster", self.initial, "--initial-cluster-state", state,
                 "--initial-cluster-token", self.token] + os.environ.get("ETCD_ARGS", "").split(), self.pids)

    def start(self):
        for m in self.members:
            self.start_member(m)
        self.wait_ready()

    def restart(self, m):
        self.start_member(m, "existing")   # same data dir: --initial-* are ignored

    def call(self, m, path, body, timeout_s=2.0):
        c = http.client.HTTPConnection(HOST, m.client_port, timeout=timeout_s)
        try:
            c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            r = c.getresponse()
            data = r.read()
            return r.status, json.loads(data or b"{}")
        finally:
            c.close()

    def status(self, m):
        try:
            st, j = self.call(m, "/v3/maintenance/status", {})
            return j if st == 200 else None
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def leader(self):
        """The member that is leader by everyone's account, else None."""
        sts = [self.status(m) if m.alive() else None for m in self.members]
        if any(s is None for s in sts):
            return None
        leaders = {s.get("leader") for s in sts}
        if len(leaders) != 1 or "0" in leaders or None in leaders:
            return None
        (lid,) = leaders
        applied = [int(s.get("raftAppliedIndex", 0)) for s in sts]
        if max(applied) - min(applied) > 0:
            return None   # someone is still catching up
        for m, s in zip(self.members, sts):
            if s["header"]["member_id"] == lid:
                return m
        return None

    def wait_ready(self):
        for m in self.members:
            if not m.alive():
                raise BenchError("%s exited (see %s/server.log)" % (m.name, m.dir))
        return wait_for("etcd leader known to all three and applied indexes equal", self.leader)

    def write_once(self, m, tag):
        st, _ = self.call(m, "/v3/kv/put", {"key": "ZmFpbG92ZXI=", "value": "eA=="}, ATTEMPT_TIMEOUT_S)
        return st == 200

    def stop(self):
        for m in self.members:
            m.stop()


class QuiverCluster:
    system = "quiver"

    def __init__(self, work):
        self.work = work
        self.pids = os.path.join(work, "pids")
        self.quiverd = os.environ["QUIVERD"]
        ports = free_ports(6)
        self.members = [Member(i, work, "quiverd%d" % (i + 1)) for i in range(3)]
        for i, m in enumerate(self.members):
            m.port, m.raft_port, m.node_id = ports[i], ports[3 + i], i + 1
        self.peers = ",".join("%d=%s:%d@%s:%d" % (m.node_id, HOST, m.raft_port, HOST, m.port)
                              for m in self.members)

    def start_member(self, m):
        m.spawn([self.quiverd, "--data-dir", os.path.join(m.dir, "data"), "--port", str(m.port),
                 "--node-id", str(m.node_id), "--raft-address", "%s:%d" % (HOST, m.raft_port),
                 "--peers", self.peers] + os.environ.get("QUIVERD_ARGS", "").split(), self.pids)

    def start(self):
        for m in self.members:
            self.start_member(m)
        self.wait_ready()

    def restart(self, m):
        self.start_member(m)

    def resp(self, m, *args, timeout_s=2.0):
        """One RESP command on a fresh connection; returns (ok, reply or error text)."""
        import redis
        r = redis.Redis(host=HOST, port=m.port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        try:
            return True, r.execute_command(*args)
        except redis.ResponseError as e:
            return False, str(e)
        finally:
            r.close()

    def info(self, m):
        try:
            ok, rep = self.resp(m, "INFO", "raft")
        except Exception:
            return None
        if not ok:
            return None
        if isinstance(rep, dict):
            return {k: str(v) for k, v in rep.items()}
        text = rep.decode() if isinstance(rep, bytes) else str(rep)
        return dict(l.split(":", 1) for l in text.replace("\r", "").split("\n") if ":" in l)

    def leader(self):
        infos = [self.info(m) if m.alive() else None for m in self.members]
        if any(i is None for i in infos):
            return None
        leaders = {i.get("raft_leader_id") for i in infos}
        if len(leaders) != 1 or leaders & {"0", "", None}:
            return None
        lead = [m for m, i in zip(self.members, infos) if i.get("raft_role") == "leader"]
        if len(lead) != 1:
            return None
        if infos[lead[0].idx].get("raft_ready", "1") != "1":   # its barrier applied
            return None
        commit = int(infos[lead[0].idx].get("raft_commit_index", 0))
        if any(int(i.get("raft_last_applied_index", 0)) < commit for i in infos):
            return None   # someone is still catching up
        return lead[0]

    def wait_ready(self):
        for m in self.members:
            if not m.alive():
                raise BenchError("%s exited (see %s/server.log)" % (m.name, m.dir))
        return wait_for("quiverd leader known to all three, every node applied the commit index",
                        self.leader)

    def write_once(self, m, tag):
        ok, _ = self.resp(m, "GRAPH.QUERY", "failover", "CREATE (:F {t: '%s'})" % tag,
                          timeout_s=ATTEMPT_TIMEOUT_S)
        return ok

    def stop(self):
        for m in self.members:
            m.stop()


def run_tool(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=STEP_TIMEOUT_S,
                       stdin=subprocess.DEVNULL)
    out = p.stdout.decode(errors="replace")
    if p.returncode != 0 or "Error from server" in out or "ERR" in out.split("\n", 1)[0]:
        raise BenchError("%s failed (exit %d): %s" % (" ".join(argv[:6]), p.returncode, out[-2000:]))
    return out


def kv(out):
    """key=value fields of a qdriver/edriver line."""
    return dict(f.split("=", 1) for f in out.strip().splitlines()[-1].split() if "=" in f)


def rb_csv(out):
    """redis-benchmark 7 --csv: rps, avg, min, p50, p95, p99, max (ms)."""
    last = out.strip().splitlines()[-1]
    cells = [c.strip('"') for c in last.split('","')]
    cells = [c.strip('"') for c in cells]
    return {"rps": cells[1], "p50_ms": cells[4], "p99_ms": cells[6]}


class Recorder:
    def __init__(self, results, system, run):
        self.results, self.system, self.run = results, system, run

    def __call__(self, metric, value):
        with open(self.results, "a") as f:
            f.write("%s\t%s.%s\t%s\n" % (self.run, self.system, metric, value))
        print("  %s.%s = %s" % (self.system, metric, value), flush=True)


def load_etcd(c, rec):
    ed = os.environ["EDRIVER"]
    lead = c.wait_ready()
    ep = "%s:%d" % (HOST, lead.client_port)
    all_ep = ",".join("%s:%d" % (HOST, m.client_port) for m in c.members)
    o = kv(run_tool([ed, "-e", ep, "-c", "1", "-n", str(N_SEQ), "-w", str(WARM_SEQ), "-o", "put"]))
    rec("write1_per_s", o["qps"]); rec("write1_p50_ms", o["p50_ms"]); rec("write1_p99_ms", o["p99_ms"])
    o = kv(run_tool([ed, "-e", ep, "-c", "64", "-n", str(N_W64), "-w", str(WARM_64), "-o", "put"]))
    rec("write64_per_s", o["qps"]); rec("write64_p50_ms", o["p50_ms"]); rec("write64_p99_ms", o["p99_ms"])
    o = kv(run_tool([ed, "-e", all_ep, "-c", "64", "-n", str(N_W64), "-w", str(WARM_64), "-o", "put"]))
    rec("write64_all_per_s", o["qps"])
    o = kv(run_tool([ed, "-e", ep, "-c", "64", "-n", str(N_READ), "-w", str(WARM_64), "-o", "range"]))
    rec("read64_per_s", o["qps"]); rec("read64_p99_ms", o["p99_ms"])


def load_quiver(c, rec):
    qd = os.environ["QDRIVER"]
    lead = c.wait_ready()
    follower = next(m for m in c.members if m is not lead)
    o = kv(run_tool([qd, "-p", str(lead.port), "-c", "1", "-n", str(N_SEQ), "-w", str(WARM_SEQ),
                     "-g", "bench", CREATE_Q_SEQ]))
    rec("write1_per_s", o["qps"]); rec("write1_p50_ms", o["p50_ms"]); rec("write1_p99_ms", o["p99_ms"])
    rb = ["redis-benchmark", "-h", HOST, "-c", "64", "--csv"]
    o = rb_csv(run_tool(["timeout", str(STEP_TIMEOUT_S)] + rb + ["-p", str(lead.port), "-n", str(N_W64),
                                                                 "GRAPH.QUERY", "bench", CREATE_Q]))
    rec("write64_per_s", o["rps"]); rec("write64_p50_ms", o["p50_ms"]); rec("write64_p99_ms", o["p99_ms"])
    # Through a follower: forwarded to the leader (skipped, and said so, if
    # this build's followers refuse writes).
    ok, rep = c.resp(follower, "GRAPH.QUERY", "bench", CREATE_Q, timeout_s=30)
    if ok:
        o = rb_csv(run_tool(["timeout", str(STEP_TIMEOUT_S)] + rb + ["-p", str(follower.port), "-n", str(N_W64),
                                                                     "GRAPH.QUERY", "bench", CREATE_Q]))
        rec("write64_follower_per_s", o["rps"])
    else:
        print("  quiver: a write through a follower was refused (%s); no follower figure" % rep, flush=True)
    for q in ("CREATE INDEX FOR (k:K) ON (k.k)", "CREATE (:K {k: 0, v: 'x'})"):
        ok, rep = c.resp(lead, "GRAPH.QUERY", "bench", q, timeout_s=30)
        if not ok:
            raise BenchError("%s: %s" % (q, rep))
    o = rb_csv(run_tool(["timeout", str(STEP_TIMEOUT_S)] + rb + ["-p", str(lead.port), "-n", str(N_READ),
                                                                 "GRAPH.RO_QUERY", "bench", LOOKUP_Q]))
    rec("read64_per_s", o["rps"]); rec("read64_p99_ms", o["p99_ms"])


def failover(c, results):
    times = []
    for k in range(1, FAILOVER_RUNS + 1):
        lead = c.wait_ready()
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

        t0 = time.monotonic()
        lead.kill9()     # SIGKILL and reap; the clock already runs
        threads = []
        while not done.is_set():
            elapsed = time.monotonic() - t0
            if attempts[0] >= ATTEMPTS_MAX or elapsed > 60:
                raise BenchError("failover %d: no write acknowledged by %s after %.1fs"
                                 % (k, [m.name for m in survivors], elapsed))
            for m in survivors:
                th = threading.Thread(target=attempt, args=(m, "%d-%d" % (k, attempts[0])), daemon=True)
                th.start()
                threads.append(th)
                attempts[0] += 1
            done.wait(ATTEMPT_INTERVAL_S)
        secs = first["t"] - t0
        times.append(secs)
        with open(results, "a") as f:
            f.write("%d\t%s.failover_s\t%.3f\n" % (k, c.system, secs))
        print("  %s failover %d: %.3f s (killed %s, first ack via %s, %d attempts)"
              % (c.system, k, secs, lead.name, first["via"], attempts[0]), flush=True)
        for th in threads:
            th.join(ATTEMPT_TIMEOUT_S + 5)
        c.restart(lead)
    c.wait_ready()
    print("  %s failover: median %.3f s, max %.3f s over %d kills"
          % (c.system, statistics.median(times), max(times), len(times)), flush=True)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("etcd", "quiver") or sys.argv[2] not in ("load", "failover"):
        print(__doc__, file=sys.stderr)
        return 2
    system, mode = sys.argv[1], sys.argv[2]
    work, results = os.environ["WORK"], os.environ["RESULTS"]
    run = sys.argv[3] if len(sys.argv) > 3 else "1"
    sub = os.path.join(work, "%s-%s-%s" % (system, mode, run))
    os.makedirs(sub, exist_ok=True)
    c = (EtcdCluster if system == "etcd" else QuiverCluster)(sub)
    c.pids = os.path.join(work, "pids")

    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    # SIGINT too: bench/cluster/run starts this script in the background,
    # where a non-interactive shell has SIGINT ignored.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        c.start()
        if mode == "load":
            (load_etcd if system == "etcd" else load_quiver)(c, Recorder(results, system, run))
        else:
            failover(c, results)
    except BenchError as e:
        print("cluster.py: %s %s: %s" % (system, mode, e), file=sys.stderr)
        for m in c.members:
            p = os.path.join(m.dir, "server.log")
            if os.path.exists(p):
                with open(p, "rb") as f:
                    tail = f.read()[-1500:].decode(errors="replace")
                print("--- %s (last lines)\n%s" % (p, tail), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cluster.py: %s %s: interrupted; stopping its servers" % (system, mode), file=sys.stderr)
        return 130
    finally:
        c.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

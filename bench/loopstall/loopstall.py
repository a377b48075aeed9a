#!/usr/bin/python3
"""loopstall.py -- does one client's 100 MB request stall the node's loop
thread?  (issue 7; bench/loopstall/README.md; numbers are reported, never
asserted.)

    loopstall.py single    one quiverd: a 100 MB read, then a 100 MB write,
                           while other clients PING it
    loopstall.py cluster   three quiverd on 127.0.0.1: a 100 MB read on a
                           follower, a 100 MB write to the leader, one to a
                           follower (forwarded), while clients PING the
                           leader and a follower; raft terms after each
    loopstall.py all       both (default)

The aim: another client's PING p99 under 100 ms during each phase, and no
election in the cluster (every node's raft_current_term unchanged).

The requests are made of 10 MB string literals (each under the 64 MiB
string limit): the read is RETURN size([s0, ..., s9]), the write CREATE
(:Big {p0: s0, ..., p9: s9}); both 100 MB of text, which admission parses
off the loop thread.  The nodes run with --max-request-bytes 200mb and
--max-entry-bytes 200mb (the defaults, 64 MiB, would refuse them) and the
default election timeout (250 ms) and heartbeat (25 ms).

A pinger is a separate process with one connection: it sends PING, waits
for PONG, records the round trip and the send time, sleeps PING_GAP_S,
again; its samples are cut into phases by the phases' start and end times.
Results: printed, and written to OUT/loopstall-summary.txt (OUT:
$BENCH_OUT or build/bench).  Every process started is stopped by its pid at
the end, on error and on Ctrl-C.

Environment: QUIVERD (default build/bin/quiverd), BENCH_OUT,
LOOPSTALL_MB (request size, default 100), QUIVERD_ARGS (extra flags),
LOOPSTALL_FLAGS (replaces the two size flags).
"""
import multiprocessing
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUIVERD = os.environ.get("QUIVERD") or os.path.join(REPO, "build", "bin", "quiverd")
OUT = os.environ.get("BENCH_OUT") or os.path.join(REPO, "build", "bench")
REQUEST_MB = int(os.environ.get("LOOPSTALL_MB", "100"))
EXTRA = os.environ.get("QUIVERD_ARGS", "").split()
# LOOPSTALL_FLAGS replaces the size flags (e.g. "" for a binary without
# --max-entry-bytes, to compare with an older build).
FLAGS = os.environ.get("LOOPSTALL_FLAGS", "--max-request-bytes 200mb --max-entry-bytes 200mb").split() + EXTRA
PING_GAP_S = 0.002
IDLE_PHASE_S = 2.0
STEP_TIMEOUT_S = 600
READY_TIMEOUT_S = 60

PROCS = []   # every quiverd / pinger started, stopped at exit


def free_port():
    s = socket.socket()
    s.bind((HOST, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Conn:
    def __init__(self, port, timeout_s=STEP_TIMEOUT_S):
        self.s = socket.create_connection((HOST, port), timeout=timeout_s)
        self.buf = bytearray()

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return ln
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def reply(self):
        ln = self.line()
        t = ln[:1]
        if t in (b"+", b"-", b":"):
            return ln.decode()
        if t == b"$":
            n = int(ln[1:])
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    raise ConnectionError("closed")
                self.buf += chunk
            data = bytes(self.buf[:n])
            del self.buf[:n + 2]
            return data.decode("utf-8", "replace")
        if t == b"*":
            return [self.reply() for _ in range(int(ln[1:]))]
        raise ValueError("bad reply line %r" % ln)

    def command(self, *args):
        self.s.sendall(encode(*args))
        return self.reply()

    def close(self):
        self.s.close()


def info(port, section="everything"):
    c = Conn(port, 10)
    try:
        text = c.command("INFO", section)
    finally:
        c.close()
    return dict(l.split(":", 1) for l in text.split("\r\n") if ":" in l and not l.startswith("#"))


class Node:
    def __init__(self, work, node_id, port, raft_port, peers):
        self.port, self.node_id = port, node_id
        self.dir = os.path.join(work, "node%d" % node_id)
        os.makedirs(self.dir)
        argv = [QUIVERD, "--data-dir", os.path.join(self.dir, "data"), "--port", str(port), "--node-id",
                str(node_id), "--raft-address", "%s:%d" % (HOST, raft_port)] + FLAGS
        if peers:
            argv += ["--peers", peers]
        self.log = open(os.path.join(self.dir, "quiverd.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
                                     start_new_session=True)
        PROCS.append(self.proc)

    def rss_mb(self):
        with open("/proc/%d/statm" % self.proc.pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def wait_for(what, cond, timeout_s=READY_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            v = cond()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("timed out waiting for " + what)


def pinger(port, out_q, stop_ev):
    """Child process: PING round trips until stop_ev; sends [(t_send, rtt_s)]."""
    c = Conn(port, 30)
    samples = []
    while not stop_ev.is_set():
        t0 = time.monotonic()
        c.s.sendall(b"PING\r\n")
        assert c.line() == b"+PONG"
        samples.append((t0, time.monotonic() - t0))
        time.sleep(PING_GAP_S)
    c.close()
    out_q.put(samples)


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def payloads():
    s10 = "'" + "a" * (REQUEST_MB * 1024 * 1024 // 10) + "'"
    read = "RETURN size([%s]) AS n" % ",".join([s10] * 10)
    write = "CREATE (:Big {%s})" % ",".join("p%d: %s" % (i, s10) for i in range(10))
    return encode("GRAPH.QUERY", "big", read), encode("GRAPH.QUERY", "big", write)


def run_phases(targets, phases):
    """targets: {name: port} to ping; phases: [(name, fn)] run in order.
    Returns rows (phase, target, count, p50_ms, p99_ms, max_ms, seconds, result)."""
    ctx = multiprocessing.get_context("fork")
    stop_ev = ctx.Event()
    queues, procs = {}, {}
    for name, port in targets.items():
        q = ctx.Queue()
        p = ctx.Process(target=pinger, args=(port, q, stop_ev))
        p.start()
        PROCS.append(p)
        queues[name], procs[name] = q, p
    time.sleep(0.5)   # the pingers connect and warm up; samples before the first phase are dropped
    windows = []
    for name, fn in phases:
        t0 = time.monotonic()
        result = fn()
        windows.append((name, t0, time.monotonic(), result))
    stop_ev.set()
    samples = {name: q.get(timeout=60) for name, q in queues.items()}
    for p in procs.values():
        p.join(10)
    rows = []
    for name, t0, t1, result in windows:
        for target, ss in samples.items():
            rtts = [rtt for (ts, rtt) in ss if t0 <= ts < t1 or (ts < t0 and ts + rtt > t0)]
            rows.append((name, target, len(rtts), percentile(rtts, 50) * 1e3, percentile(rtts, 99) * 1e3,
                         max(rtts) * 1e3 if rtts else float("nan"), t1 - t0, result))
    return rows


def send_big(port, blob):
    c = Conn(port)
    t = time.monotonic()
    c.s.sendall(blob)
    reply = c.reply()
    c.close()
    ok = isinstance(reply, list) or (isinstance(reply, str) and not reply.startswith("-"))
    return "%s in %.1f s" % ("ok" if ok else "ERROR " + str(reply)[:120], time.monotonic() - t)


def idle():
    time.sleep(IDLE_PHASE_S)
    return "idle"


def single(work, report):
    read_blob, write_blob = payloads()
    port = free_port()
    n = Node(work, 1, port, free_port(), None)
    wait_for("the node", lambda: "PONG" in Conn(port, 5).command("PING"))
    wait_for("leadership", lambda: info(port, "raft").get("raft_role") == "leader")
    rows = run_phases({"client": port}, [("idle", idle), ("%d MB read" % REQUEST_MB, lambda: send_big(port, read_blob)),
                                         ("%d MB write" % REQUEST_MB, lambda: send_big(port, write_blob))])
    report.append("single node (%s)" % " ".join(FLAGS))
    table(rows, report)
    report.append("  resident size after: %.0f MB; offloaded admissions: %s" %
                  (n.rss_mb(), info(port).get("admissions_offloaded")))


def terms(nodes):
    return {n.node_id: int(info(n.port, "raft").get("raft_current_term", "0")) for n in nodes}


def cluster(work, report):
    read_blob, write_blob = payloads()
    ports = [(free_port(), free_port()) for _ in range(3)]
    peers = ",".join("%d=%s:%d@%s:%d" % (i + 1, HOST, rp, HOST, cp) for i, (cp, rp) in enumerate(ports))
    nodes = [Node(work, i + 1, cp, rp, peers) for i, (cp, rp) in enumerate(ports)]

    def leader():
        roles = {n.node_id: info(n.port, "raft").get("raft_role") for n in nodes}
        leaders = [n for n in nodes if roles[n.node_id] == "leader"]
        if len(leaders) != 1:
            return None
        ready = info(leaders[0].port, "raft").get("raft_ready") == "1"
        followers_ok = all(info(n.port, "raft").get("raft_node_ready") == "1" for n in nodes)
        return leaders[0] if ready and followers_ok else None
    lead = wait_for("a ready leader", leader)

    def with_terms(result):   # the terms once the phase is over: which phase caused an election
        return "%s; terms after %s" % (result, sorted(terms(nodes).values()))
    follower = [n for n in nodes if n is not lead][0]
    before = terms(nodes)
    rows = run_phases({"leader": lead.port, "follower": follower.port},
                      [("idle", idle),
                       ("%d MB read on a follower" % REQUEST_MB, lambda: with_terms(send_big(follower.port, read_blob))),
                       ("%d MB write to the leader" % REQUEST_MB, lambda: with_terms(send_big(lead.port, write_blob))),
                       ("%d MB write to a follower" % REQUEST_MB,
                        lambda: with_terms(send_big(follower.port, write_blob)))])
    after = terms(nodes)
    report.append("three nodes (%s)" % " ".join(FLAGS))
    table(rows, report)
    report.append("  raft terms before %s, after %s: %s" %
                  (before, after, "no election" if before == after else "ELECTION(S)"))
    report.append("  resident sizes after: %s MB" % ", ".join("%.0f" % n.rss_mb() for n in nodes))


def table(rows, report):
    report.append("  %-28s %-9s %6s %8s %8s %8s %7s  %s" % ("phase", "pinging", "pings", "p50 ms", "p99 ms",
                                                          "max ms", "secs", "request"))
    for phase, target, count, p50, p99, mx, secs, result in rows:
        report.append("  %-28s %-9s %6d %8.2f %8.2f %8.2f %7.1f  %s" % (phase, target, count, p50, p99, mx, secs,
                                                                      result if target in ("client", "leader") else ""))


def stop_all():
    for p in PROCS:
        try:
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(20)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            elif p.is_alive():
                p.terminate()
                p.join(5)
        except OSError:
            pass


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what not in ("all", "single", "cluster"):
        sys.exit("usage: loopstall.py [all|single|cluster]")
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    report = ["loop stall under a %d MB request (bench/loopstall; %s; %s)" %
              (REQUEST_MB, time.strftime("%Y-%m-%d %H:%M"), os.uname().nodename)]
    try:
        with tempfile.TemporaryDirectory(prefix="loopstall-") as work:
            if what in ("all", "single"):
                single(os.path.join(work, "single"), report)
                stop_all()
            if what in ("all", "cluster"):
                cluster(os.path.join(work, "cluster"), report)
                stop_all()
    finally:
        stop_all()
    text = "\n".join(report) + "\n"
    sys.stdout.write(text)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "loopstall-summary.txt"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()

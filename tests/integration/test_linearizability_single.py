"""The register workload (lin_workload.py) against one real quiverd, with
the history checked by linearizability.py:

  - an undisturbed run (8 clients, 3 registers) is linearizable, every
    operation succeeded, and the same history with one read made stale is
    judged a violation (the check is not vacuous on real data);
  - kill -9 of the server in the middle of a run and a restart on the same
    data directory: operations in flight at the kill have unknown outcomes,
    the whole history (before, across and after the crash) is still
    linearizable -- every acknowledged write survived, nothing unacknowledged
    appeared out of nowhere -- and again a stale read in it is caught.

  - against a fake RESP server with known behaviour: refusals and unknown
    outcomes are recorded so a correct server passes, and a server that
    serves stale reads or applies writes it refused is caught.

Bounded: a few seconds of workload each; waits are conditions with deadlines.
"""
import random
import re
import socketserver
import threading
import time

import harness
import lin_workload as W
import linearizability as L

WAIT_S = 60.0


def assert_mutation_caught(history, seed):
    ops = history.ops()
    target = L.make_stale_read(ops, random.Random(seed))
    r = L.check(ops)
    assert r.status == L.VIOLATION, r.report()
    assert [k.key for k in r.violations()] == [target.key]
    assert target.id in {o.id for o in r.keys[target.key].minimal}, r.report()
    return r


def test_single_node_register_workload_is_linearizable(server_factory):
    s = server_factory()
    wl = W.Workload([(harness.HOST, s.port)], graph="lin", clients=8, keys=3,
                    duration_s=5.0, seed=11)
    rep = wl.run()
    print(rep.text())
    assert rep.ok, rep.text()
    assert rep.count(L.READ, L.OK) > 100 and rep.count(L.WRITE, L.OK) > 100, rep.text()
    # Nothing disturbed the server: every operation has a definite outcome.
    for kind in (L.READ, L.WRITE):
        assert rep.count(kind, L.FAIL) == 0 and rep.count(kind, L.UNKNOWN) == 0, rep.text()
    assert rep.unclassified == 0 and rep.not_sent == 0, rep.text()
    # Every register was written, and reads saw written values.
    reads = [o for o in rep.history.ops() if o.kind == L.READ and o.value is not None]
    assert {o.key for o in reads} == {"r0", "r1", "r2"}
    r = assert_mutation_caught(rep.history, 5)
    print(r.report())


def test_kill9_and_restart_mid_run_history_is_judged_correctly(server_factory):
    s = server_factory()
    wl = W.Workload([(harness.HOST, s.port)], graph="lin", clients=8, keys=3,
                    duration_s=None, timeout_s=10.0, seed=12)
    wl.start()
    try:
        assert wl.wait_ok(4000, WAIT_S), "workload made no progress\n%s" % s.log_tail()
        s.kill9()
        killed_ns = time.monotonic_ns()     # the process is gone and reaped
        s.start()                       # same data dir and port; waits until ready
        ready_ns = time.monotonic_ns()
        after = wl.completed_ok()
        assert wl.wait_ok(after + 4000, WAIT_S), "no progress after the restart\n%s" % s.log_tail()
    finally:
        wl.stop()
    rep = wl.check()
    print(rep.text())
    assert rep.ok, rep.text()
    ops = rep.history.ops()
    # The crash was inside the run: requests in flight lost their replies
    # (outcome unknown), and clients found the port closed for a while.
    unknown = [o for o in ops if o.outcome == L.UNKNOWN]
    assert unknown and all(o.invoke_ns < killed_ns for o in unknown), rep.text()
    assert rep.not_sent > 0, rep.text()
    assert rep.unclassified == 0, rep.text()
    # The registers survived: reads after the restart see written values
    # (which ones is the checker's business: the last acknowledged write or
    # a later/unknown one, never an older one).
    late_reads = [o for o in ops if o.kind == L.READ and o.outcome == L.OK and o.invoke_ns > ready_ns]
    assert late_reads and all(o.value is not None for o in late_reads)
    assert_mutation_caught(rep.history, 6)


# --- the driver and checker against a fake server with known behaviour ------------
#
# A tiny RESP server that understands only the workload's two queries, so the
# driver's recording of outcomes is tested end to end, including against
# servers that are NOT linearizable (which quiverd should never be).

class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


class FakeRegisterServer:
    """modes:
      correct      one store; some writes answered 'not the leader' (not
                   applied), 'outcome unknown' (applied or not, at random),
                   or the connection closed (applied or not): linearizable.
      stale_reads  reads served from a copy refreshed every 8th write.
      lying_fail   some writes answered 'not the leader' but applied."""

    def __init__(self, mode, seed=1):
        self.mode = mode
        self.store, self.copy = {}, {}
        self.writes = 0
        self.lock = threading.Lock()
        self.rng = random.Random(seed)
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    argv = read_command(self.rfile)
                    if argv is None:
                        return
                    reply = fake.serve(argv)
                    if reply is None:          # drop the connection, no reply
                        return
                    self.wfile.write(reply)
                    self.wfile.flush()

        self.srv = _TCPServer((harness.HOST, 0), Handler)
        self.port = self.srv.server_address[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(10)

    def serve(self, argv):
        if len(argv) != 3 or argv[0].upper() != b"GRAPH.QUERY":
            return b"-ERR unknown command\r\n"
        q = argv[2].decode()
        k = re.search(r"k='([^']*)'", q).group(1)
        v = re.search(r"v='([^']*)'", q)
        with self.lock:
            dice = self.rng.random()
            apply = self.rng.random() < 0.5
            if v is None:                                   # a read
                src = self.copy if self.mode == "stale_reads" else self.store
                val = src.get(k)
                rows = b"*0\r\n" if val is None else b"*1\r\n*1\r\n$%d\r\n%s\r\n" % (len(val), val.encode())
                return b"*3\r\n*1\r\n$3\r\nr.v\r\n" + rows + b"*0\r\n"
            v = v.group(1)
            if dice < 0.1:
                if self.mode == "lying_fail":
                    self.set(k, v)
                return b"-ERR not the leader: the leader is node 2 at 127.0.0.1:1\r\n"
            if dice < 0.15 and self.mode == "correct":
                if apply:
                    self.set(k, v)
                return b"-ERR outcome unknown: the leader did not answer; it may or may not have been applied\r\n"
            if dice < 0.18 and self.mode == "correct":
                if apply:
                    self.set(k, v)
                return None
            self.set(k, v)
            return b"*1\r\n*1\r\n+Properties set: 1\r\n"

    def set(self, k, v):
        self.store[k] = v
        self.writes += 1
        if self.writes % 8 == 0:
            self.copy = dict(self.store)


def read_command(rfile):
    """One RESP array of bulk strings from a client; None at EOF."""
    line = rfile.readline()
    if not line:
        return None
    assert line[:1] == b"*", line
    argv = []
    for _ in range(int(line[1:])):
        n = int(rfile.readline()[1:])
        argv.append(rfile.read(n + 2)[:-2])
    return argv


def run_fake(mode, seed):
    fake = FakeRegisterServer(mode, seed)
    try:
        return W.Workload([(harness.HOST, fake.port)], graph="g", clients=6, keys=3,
                          duration_s=None, ops_max=3000, seed=seed).run()
    finally:
        fake.close()


def test_driver_records_fail_and_unknown_outcomes_of_a_correct_fake_server():
    rep = run_fake("correct", 21)
    print(rep.text())
    assert rep.ok, rep.text()
    assert rep.count(L.WRITE, L.FAIL) > 20, rep.text()            # 'not the leader'
    assert rep.count(L.WRITE, L.UNKNOWN) > 20, rep.text()         # 'outcome unknown', dropped
    assert rep.unclassified == 0, rep.text()
    ops = rep.history.ops()
    seen = {o.value for o in ops if o.kind == L.READ and o.outcome == L.OK}
    unknown_writes = [o for o in ops if o.kind == L.WRITE and o.outcome == L.UNKNOWN]
    # Some unknown writes took effect (were read), some did not: both allowed.
    assert any(o.value in seen for o in unknown_writes), rep.text()
    assert any(o.value not in seen for o in unknown_writes), rep.text()


def test_driver_and_checker_catch_stale_reads_of_a_fake_server():
    rep = run_fake("stale_reads", 22)
    assert rep.result.status == L.VIOLATION, rep.text()
    print(rep.text())
    for k in rep.result.violations():
        assert k.minimal_is_1_minimal and 2 <= len(k.minimal) <= 8, rep.text()


def test_driver_and_checker_catch_writes_applied_after_a_clean_refusal():
    rep = run_fake("lying_fail", 23)
    assert rep.result.status == L.VIOLATION, rep.text()
    print(rep.text())
    # The explanation names a write that was reported as failed.
    assert any(o.kind == L.READ and o.value in {w.value for w in rep.history.ops() if w.outcome == L.FAIL}
               for k in rep.result.violations() for o in k.minimal), rep.text()

"""lin_workload.py -- a register workload for the linearizability check.

K client threads, spread over a list of (host, port) RESP endpoints, each
doing random reads and writes of a few registers stored as graph nodes:

    read:  GRAPH.QUERY g "CYPHER k='r1' MATCH (r:Reg {k: $k}) RETURN r.v"
    write: GRAPH.QUERY g "CYPHER k='r1' v='c3-17' MERGE (r:Reg {k: $k}) SET r.v = $v"

Every written value is unique (client id and sequence number), so a read
names the write it saw.  Every operation is recorded in a
linearizability.History with its invocation time (just before the request
is sent), its completion time (just after the reply is read) and its
outcome, and at the end the history is checked (linearizability.check).

Outcomes, from what the client can know:
  * a reply                                  -> ok (a read's value: the row's
    r.v, None when no row; two rows would be two registers with one key, a
    bug, recorded as a tuple that no write produced, so it is a violation);
  * error reply saying "outcome unknown"     -> unknown;
  * error reply that guarantees nothing was applied ("not the leader",
    "... not applied", "busy: ...")          -> fail (left out);
  * any other error reply to a write         -> unknown (we cannot prove it
    was not applied), and counted as "unclassified" in the report so a
    workload bug or a new server message does not go unnoticed;
  * timeout or connection lost after sending  -> unknown;
  * connection refused (nothing sent)         -> not recorded at all.
Reads that fail or are unknown tell nothing and are dropped by the checker.

The client is redis-py's bare Connection: one request at a time, and no
automatic retry, which would re-send a write after a lost connection (a
second application of an old value, i.e. a false violation).  Before the
clients start, one read of every register gives its initial value, so a
graph that already holds registers can be reused.
"""
import collections
import itertools
import random
import threading
import time

import redis

import linearizability as L

LABEL = "Reg"
READ_QUERY = "CYPHER k='%s' MATCH (r:Reg {k: $k}) RETURN r.v"
WRITE_QUERY = "CYPHER k='%s' v='%s' MERGE (r:Reg {k: $k}) SET r.v = $v"

UNKNOWN_MARKER = "outcome unknown"
# Error texts of quiverd that guarantee the write was not applied
# (raft/replication.c, node/forward.c, node/router.c).
NOT_APPLIED_MARKERS = ("not the leader", "not applied", "busy:")

RECONNECT_WAIT_S = 0.02      # pause between connection attempts to a down node
SETUP_TIMEOUT_S = 30.0


def classify_write_error(text):
    """UNKNOWN or FAIL for an error reply to a write; second value True if
    the text was not recognised (then UNKNOWN, the safe side)."""
    t = text.lower()
    if UNKNOWN_MARKER in t:
        return L.UNKNOWN, False
    if any(m in t for m in NOT_APPLIED_MARKERS):
        return L.FAIL, False
    return L.UNKNOWN, True


def parse_read_reply(reply):
    """The register's value from a GRAPH.QUERY reply [header, rows, stats]."""
    if not (isinstance(reply, list) and len(reply) == 3 and isinstance(reply[1], list)):
        raise ValueError("unexpected read reply: %r" % (reply,))
    rows = reply[1]
    if not rows:
        return None
    if len(rows) == 1:
        return rows[0][0]
    return ("DUPLICATE REGISTERS",) + tuple(sorted(str(r[0]) for r in rows))


class Report:
    """What a run did and the checker's verdict (result: linearizability.Result)."""

    def __init__(self, result, history, counts, errors, unclassified, not_sent, elapsed_s):
        self.result, self.history = result, history
        self.counts, self.errors = counts, errors
        self.unclassified, self.not_sent, self.elapsed_s = unclassified, not_sent, elapsed_s

    @property
    def ok(self):
        return self.result.ok

    def count(self, kind, outcome):
        return self.counts.get((kind, outcome), 0)

    def text(self):
        lines = ["workload: %.1f s, %d operations recorded, %d not sent (connection refused), "
                 "%d unclassified write errors" % (self.elapsed_s, len(self.history), self.not_sent,
                                                  self.unclassified)]
        for kind in (L.READ, L.WRITE):
            lines.append("  %-5s ok %d, fail %d, unknown %d" % (
                kind, self.count(kind, L.OK), self.count(kind, L.FAIL), self.count(kind, L.UNKNOWN)))
        ops = self.history.ops()
        seen = {o.value for o in ops if o.kind == L.READ and o.outcome == L.OK}
        unknown_writes = [o for o in ops if o.kind == L.WRITE and o.outcome == L.UNKNOWN]
        if unknown_writes:
            lines.append("  unknown writes: %d, of which %d were read back (took effect)"
                         % (len(unknown_writes), sum(1 for o in unknown_writes if o.value in seen)))
        if self.errors:
            lines.append("  errors (count, text):")
            for text, n in self.errors.most_common(10):
                lines.append("    %6d  %s" % (n, text))
        lines.append(self.result.report())
        return "\n".join(lines)

    def __str__(self):
        return self.text()


class Workload:
    """Start with start(); stop with stop() (or let duration_s / ops_max end
    it); then check().  run() does all three.

    endpoints   list of (host, port); client i uses endpoints[i % len]
    graph       the graph holding the registers
    clients     number of client threads
    keys        number of registers (keys 'r0'..), or a list of key names
    duration_s  the clients stop after this long (None: until stop())
    ops_max     ... or after this many operations in all (None: no limit)
    read_ratio  probability that an operation is a read
    timeout_s   socket timeout of one request (then its outcome is unknown)
    consistency if set, sent as QUIVER.CONSISTENCY <level> on each connection
    """

    def __init__(self, endpoints, graph="lin", clients=8, keys=3, duration_s=10.0, ops_max=None,
                 read_ratio=0.5, timeout_s=5.0, seed=None, consistency=None):
        assert endpoints and clients >= 1
        self.endpoints = [tuple(e) for e in endpoints]
        self.graph = graph
        self.clients = clients
        self.keys = list(keys) if not isinstance(keys, int) else ["r%d" % i for i in range(keys)]
        self.duration_s, self.ops_max = duration_s, ops_max
        self.read_ratio, self.timeout_s = read_ratio, timeout_s
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.consistency = consistency
        self.history = L.History()
        self.initial = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._started = 0          # operations invoked
        self._completed_ok = 0
        self._errors = collections.Counter()
        self._unclassified = 0
        self._not_sent = 0
        self._threads = []
        self._t0 = None
        self._t1 = None
        self._seq = itertools.count()
        self.setup_error = None

    # --- control ------------------------------------------------------------
    def start(self):
        self._read_initial()
        self._t0 = time.monotonic()
        for c in range(self.clients):
            t = threading.Thread(target=self._client, args=(c,), daemon=True, name="lin-client-%d" % c)
            self._threads.append(t)
            t.start()
        return self

    def wait_ok(self, count, timeout_s):
        """Until at least `count` operations completed ok in all (a condition
        with a deadline); returns whether it was reached."""
        deadline = time.monotonic() + timeout_s
        with self._progress:
            while self._completed_ok < count:
                left = deadline - time.monotonic()
                if left <= 0 or self._finished_locked():
                    return self._completed_ok >= count
                self._progress.wait(min(left, 0.5))
            return True

    def completed_ok(self):
        with self._lock:
            return self._completed_ok

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout_s + 30)
            assert not t.is_alive(), "client thread %s did not stop" % t.name
        if self._t1 is None:
            self._t1 = time.monotonic()

    def check(self, max_steps=L.MAX_STEPS_DEFAULT):
        """Check the recorded history; returns a Report."""
        result = L.check(self.history, initial=self.initial, max_steps=max_steps)
        with self._lock:
            errors = collections.Counter(self._errors)
            unclassified, not_sent = self._unclassified, self._not_sent
        if self.setup_error:
            errors["setup: " + self.setup_error] += 1
        return Report(result, self.history, self.history.counts(), errors, unclassified, not_sent,
                      (self._t1 or time.monotonic()) - (self._t0 or time.monotonic()))

    def run(self, max_steps=L.MAX_STEPS_DEFAULT):
        self.start()
        for t in self._threads:
            t.join()
        self.stop()
        return self.check(max_steps)

    # --- clients ------------------------------------------------------------
    def _finished_locked(self):
        return (self._stop.is_set() or
                (self.ops_max is not None and self._started >= self.ops_max) or
                (self.duration_s is not None and self._t0 is not None
                 and time.monotonic() - self._t0 >= self.duration_s))

    def _connection(self, endpoint):
        host, port = endpoint
        return redis.Connection(host=host, port=port, socket_timeout=self.timeout_s,
                                socket_connect_timeout=self.timeout_s, decode_responses=True)

    def _read_initial(self):
        """One read of every register through the first endpoint that
        answers, retried until SETUP_TIMEOUT_S: the initial values."""
        deadline = time.monotonic() + SETUP_TIMEOUT_S
        last = None
        for key in self.keys:
            while True:
                conn = self._connection(self.endpoints[0])
                try:
                    conn.connect()
                    self._set_consistency(conn)
                    conn.send_command("GRAPH.QUERY", self.graph, READ_QUERY % key)
                    self.initial[key] = parse_read_reply(conn.read_response())
                    break
                except (redis.RedisError, OSError) as e:
                    last = e
                    if time.monotonic() > deadline:
                        raise RuntimeError("cannot read the initial value of %r: %r" % (key, last))
                    time.sleep(RECONNECT_WAIT_S)   # poll interval of a condition wait
                finally:
                    conn.disconnect()

    def _set_consistency(self, conn):
        if self.consistency:
            conn.send_command("QUIVER.CONSISTENCY", self.consistency)
            conn.read_response()

    def _error(self, text):
        with self._lock:
            self._errors[text[:160]] += 1

    def _client(self, c):
        rng = random.Random(self.seed * 1000003 + c)
        conn = self._connection(self.endpoints[c % len(self.endpoints)])
        try:
            while True:
                with self._lock:
                    if self._finished_locked():
                        return
                # Connect first: a refused connection sends nothing.
                try:
                    conn.connect()
                    self._set_consistency(conn)
                except redis.ResponseError as e:
                    self.setup_error = "QUIVER.CONSISTENCY %s: %s" % (self.consistency, e)
                    self._stop.set()
                    return
                except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                    conn.disconnect()
                    with self._lock:
                        self._not_sent += 1
                    self._error("connect: %s" % e)
                    self._stop.wait(RECONNECT_WAIT_S)
                    continue
                key = rng.choice(self.keys)
                with self._lock:
                    self._started += 1
                if rng.random() < self.read_ratio:
                    self._read(conn, c, key)
                else:
                    self._write(conn, c, key, "c%d-%d" % (c, next(self._seq)))
        finally:
            conn.disconnect()
            with self._progress:
                self._progress.notify_all()

    def _done_ok(self):
        with self._progress:
            self._completed_ok += 1
            self._progress.notify_all()

    def _read(self, conn, c, key):
        op = self.history.invoke(c, L.READ, key)
        try:
            conn.send_command("GRAPH.QUERY", self.graph, READ_QUERY % key)
            reply = conn.read_response()
        except redis.ResponseError as e:
            self.history.fail(op, str(e))           # a read changes nothing
            self._error("read: %s" % e)
            return
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            conn.disconnect()
            self.history.unknown(op, repr(e))
            self._error("read: %r" % e)
            return
        self.history.ok(op, parse_read_reply(reply))
        self._done_ok()

    def _write(self, conn, c, key, value):
        op = self.history.invoke(c, L.WRITE, key, value)
        try:
            conn.send_command("GRAPH.QUERY", self.graph, WRITE_QUERY % (key, value))
            conn.read_response()
        except redis.ResponseError as e:
            outcome, unclassified = classify_write_error(str(e))
            (self.history.unknown if outcome == L.UNKNOWN else self.history.fail)(op, str(e))
            if unclassified:
                with self._lock:
                    self._unclassified += 1
            self._error("write: %s" % e)
            return
        except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
            # Sent (at least in part) before the failure: it may have been applied.
            conn.disconnect()
            self.history.unknown(op, repr(e))
            self._error("write: %r" % e)
            return
        self.history.ok(op)
        self._done_ok()


def run_workload(endpoints, **kw):
    """Run a Workload to its end (duration_s or ops_max) and check it;
    keyword arguments as Workload's.  Returns a Report."""
    max_steps = kw.pop("max_steps", L.MAX_STEPS_DEFAULT)
    return Workload(endpoints, **kw).run(max_steps)


def main(argv=None):
    """Command line: python3 lin_workload.py HOST:PORT [HOST:PORT...] [options];
    prints the report, exit status 0 if linearizable, 1 if not, 2 if too complex."""
    import argparse
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("endpoints", nargs="+", help="HOST:PORT of each node")
    ap.add_argument("--graph", default="lin")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--keys", type=int, default=3)
    ap.add_argument("--duration-s", type=float, default=10.0)
    ap.add_argument("--ops-max", type=int, default=None)
    ap.add_argument("--read-ratio", type=float, default=0.5)
    ap.add_argument("--timeout-s", type=float, default=5.0)
    ap.add_argument("--consistency", default=None)
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args(argv)
    endpoints = [(e.rsplit(":", 1)[0], int(e.rsplit(":", 1)[1])) for e in a.endpoints]
    rep = run_workload(endpoints, graph=a.graph, clients=a.clients, keys=a.keys,
                       duration_s=a.duration_s, ops_max=a.ops_max, read_ratio=a.read_ratio,
                       timeout_s=a.timeout_s, consistency=a.consistency, seed=a.seed)
    print(rep.text())
    return 0 if rep.ok else (1 if rep.result.status == L.VIOLATION else 2)


if __name__ == "__main__":
    raise SystemExit(main())

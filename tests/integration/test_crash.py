"""Crash recovery: kill -9 in the middle of a stream of writes, restart on
the same data directory, and check that every acknowledged write is there
exactly once and nothing is there twice; and refusal of corrupt or foreign
data directories with a message that names the file.

The kill moment is random but seeded; the seed is printed (and in every
assertion message).  Re-run a failure with QUIVER_CRASH_SEED=<seed>.
"""
import json
import os
import random
import subprocess
import threading
import time

import pytest
import redis

import harness
from harness import compact, verbose

SEED = int(os.environ.get("QUIVER_CRASH_SEED", str(int(time.time() * 1000) % 1000000007)))
ROUNDS = 5
WRITER_THREADS = 6
BATCH = 50              # the batch writer creates this many nodes per statement
GRAPH = "crash"
PROGRESS_TIMEOUT_S = 120


class Stream:
    """Several client threads writing CREATE (:W {k: <unique>}) until stopped."""

    def __init__(self, port, round_no):
        self.port = port
        self.round = round_no
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.acked = set()        # keys whose CREATE got a success reply
        self.attempted = set()    # keys ever sent
        self.batches = []         # (first key, acked?) of multi-node statements
        self.errors = []          # error replies (not connection loss)
        self.threads = [threading.Thread(target=self._run, args=(t,), daemon=True)
                        for t in range(WRITER_THREADS)]

    def start(self):
        for t in self.threads:
            t.start()

    def _run(self, tid):
        c = redis.Redis(host=harness.HOST, port=self.port, socket_timeout=60,
                        socket_connect_timeout=10, decode_responses=True)
        i = 0
        while not self.stop.is_set():
            base = (self.round * 100 + tid) * 10_000_000 + i * BATCH
            batch = (tid == 0)
            keys = list(range(base, base + BATCH)) if batch else [base]
            text = ("UNWIND range(%d, %d) AS k CREATE (:W {k: k})" % (base, base + BATCH - 1)
                    if batch else "CREATE (:W {k: %d})" % base)
            with self.lock:
                self.attempted.update(keys)
            try:
                reply = c.execute_command("GRAPH.QUERY", GRAPH, text)
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                break   # the server is gone: the outcome of this write is unknown
            except redis.ResponseError as e:
                with self.cond:
                    self.errors.append(str(e))
                    if batch:
                        self.batches.append((base, False))
                    self.cond.notify_all()
                i += 1
                continue
            ok = (isinstance(reply, list) and reply and
                  "Nodes created: %d" % len(keys) in reply[-1])
            with self.cond:
                if ok:
                    self.acked.update(keys)
                else:
                    self.errors.append("unexpected reply: %r" % (reply,))
                if batch:
                    self.batches.append((base, ok))
                self.cond.notify_all()
            i += 1
        c.close()

    def wait_acked(self, n, timeout_s):
        deadline = time.monotonic() + timeout_s
        with self.cond:
            while len(self.acked) < n:
                if self.errors:
                    return False   # an error reply before any kill: fail at once
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def halt(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)
            assert not t.is_alive(), "writer thread stuck"


def key_counts(r):
    res = compact(r, GRAPH, "MATCH (w:W) RETURN w.k, count(*)")
    return {k: c for k, c in res.rows}


def check(counts, acked, attempted, batches, ctx):
    missing = sorted(k for k in acked if counts.get(k, 0) != 1)
    assert not missing, "%s: acknowledged writes missing or duplicated: %s" % (
        ctx, [(k, counts.get(k, 0)) for k in missing[:20]])
    dup = sorted(k for k, c in counts.items() if c > 1)
    assert not dup, "%s: keys present more than once: %s" % (ctx, dup[:20])
    foreign = sorted(k for k in counts if k not in attempted)
    assert not foreign, "%s: keys never written: %s" % (ctx, foreign[:20])
    for base, ok in batches:
        present = sum(1 for k in range(base, base + BATCH) if counts.get(k, 0) == 1)
        assert present in (0, BATCH), "%s: statement at %d half applied: %d of %d nodes" % (
            ctx, base, present, BATCH)
        if ok:
            assert present == BATCH, ctx


def test_kill9_during_writes(server_factory):
    rng = random.Random(SEED)
    print("crash test seed: %d (QUIVER_CRASH_SEED=%d to repeat)" % (SEED, SEED))
    s = server_factory()
    acked, attempted, batches = set(), set(), []
    for rnd in range(ROUNDS):
        ctx = "seed %d round %d" % (SEED, rnd)
        stream = Stream(s.port, rnd)
        target = rng.randint(20, 5000)
        stream.start()
        try:
            assert stream.wait_acked(target, PROGRESS_TIMEOUT_S), \
                "%s: only %d writes acknowledged in %ds (errors: %s)" % (
                    ctx, len(stream.acked), PROGRESS_TIMEOUT_S, stream.errors[:5])
            # a random moment after the target count: up to a few ms more
            extra = rng.randint(0, 5)
            if extra:
                stream.wait_acked(len(stream.acked) + extra, 5)
            s.kill9()
        finally:
            stream.halt()
        assert not stream.errors, "%s: error replies before the kill: %s" % (ctx, stream.errors[:5])
        acked |= stream.acked
        attempted |= stream.attempted
        batches += stream.batches
        print("%s: killed after %d acknowledged keys (%d attempted)" % (
            ctx, len(stream.acked), len(stream.attempted)))
        s.start()
        r = s.client()
        try:
            check(key_counts(r), acked, attempted, batches, ctx)
        finally:
            r.close()
    # a graceful stop and restart keeps everything too
    s.restart()
    r = s.client()
    try:
        counts = key_counts(r)
        check(counts, acked, attempted, batches, "seed %d after clean restart" % SEED)
        # and the node still takes writes
        verbose(r, GRAPH, "CREATE (:W {k: -1})")
        assert compact(r, GRAPH, "MATCH (w:W {k: -1}) RETURN count(w)").scalar == 1
    finally:
        r.close()


def test_kill9_right_after_acks(server_factory):
    """Writes acknowledged just before a kill -9 with no further traffic."""
    s = server_factory()
    r = s.client()
    for i in range(30):
        verbose(r, GRAPH, "CREATE (:W {k: %d})" % i)
    verbose(r, GRAPH, "MATCH (w:W) WHERE w.k < 10 SET w.tag = 'x'")
    verbose(r, GRAPH, "MATCH (w:W {k: 29}) DELETE w")
    r.close()
    digest_before = None
    try:
        rc = s.client()
        digest_before = rc.execute_command("QUIVER.DIGEST", GRAPH)
        rc.close()
    except redis.ResponseError:
        pass
    for _ in range(2):      # twice: replay after a replay
        s.kill9()
        s.start()
    r = s.client()
    try:
        assert compact(r, GRAPH, "MATCH (w:W) RETURN count(w)").scalar == 29
        assert compact(r, GRAPH, "MATCH (w:W) WHERE w.tag = 'x' RETURN count(w)").scalar == 10
        if digest_before is not None:
            assert r.execute_command("QUIVER.DIGEST", GRAPH)[1] == digest_before[1]
    finally:
        r.close()


# --- corrupt and foreign data directories ---------------------------------------------

def wait_exit(s, timeout_s=60):
    """Wait for quiverd to exit; fail at once if it starts serving instead."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rc = s.proc.poll()
        if rc is not None:
            return rc
        try:
            c = redis.Redis(host=harness.HOST, port=s.port, socket_timeout=1,
                            socket_connect_timeout=1)
            try:
                if c.ping():
                    pytest.fail("quiverd accepted the bad data dir and serves clients\n%s"
                                % s.log_tail())
            finally:
                c.close()
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            pass
        time.sleep(0.05)
    pytest.fail("quiverd still running %ds after start on a bad data dir\n%s"
                % (timeout_s, s.log_tail()))


def last_run_log(s):
    text = s.log_text()
    return text[text.rfind("=== start #"):]


def files_named(root, pred):
    out = []
    for d, _, files in os.walk(root):
        out += [os.path.join(d, f) for f in files if pred(f)]
    return sorted(out)


def populated(server_factory):
    s = server_factory()
    r = s.client()
    for i in range(20):
        verbose(r, GRAPH, "CREATE (:W {k: %d})" % i)
    r.close()
    assert s.stop() is not None
    return s


def test_corrupt_rocksdb_current_refused(server_factory):
    s = populated(server_factory)
    currents = files_named(s.data_dir, lambda f: f == "CURRENT")
    assert currents, "no RocksDB CURRENT file under %s" % s.data_dir
    for p in currents:
        with open(p, "wb") as f:
            f.write(b"garbage")
    s.start(wait=False)
    rc = wait_exit(s)
    log = last_run_log(s)
    assert rc != 0, log
    assert "CURRENT" in log, "message does not name the file:\n" + log


def test_corrupt_rocksdb_manifest_refused(server_factory):
    s = populated(server_factory)
    manifests = files_named(s.data_dir, lambda f: f.startswith("MANIFEST-"))
    assert manifests, "no RocksDB MANIFEST file under %s" % s.data_dir
    rng = random.Random(SEED)
    for p in manifests:
        size = os.path.getsize(p)
        with open(p, "wb") as f:
            f.write(bytes(rng.randrange(256) for _ in range(max(size, 64))))
    s.start(wait=False)
    rc = wait_exit(s)
    log = last_run_log(s)
    assert rc != 0, log
    assert "MANIFEST" in log, "message does not name the file:\n" + log


def test_corrupt_raft_metadata_refused(server_factory):
    s = populated(server_factory)
    metas = files_named(s.data_dir, lambda f: f in ("metadata1", "metadata2"))
    if not metas:
        pytest.skip("no canonical-raft metadata files found under %s" % s.data_dir)
    for p in metas:
        with open(p, "wb") as f:
            f.write(b"\xff" * 32)
    s.start(wait=False)
    rc = wait_exit(s)
    log = last_run_log(s)
    assert rc != 0, log
    assert "metadata" in log, "message does not name the file:\n" + log


def test_foreign_data_dir_refused(server_factory, tmp_path):
    s = server_factory(start=False)
    os.makedirs(s.data_dir)
    with open(os.path.join(s.data_dir, "notes.txt"), "w") as f:
        f.write("not a quiver data directory\n")
    os.makedirs(os.path.join(s.data_dir, "photos"))
    s.start(wait=False)
    rc = wait_exit(s)
    log = last_run_log(s)
    assert rc != 0, log
    assert "notes.txt" in log or "photos" in log or s.data_dir in log, \
        "message does not name the file or directory:\n" + log
    # and nothing was written into it
    assert sorted(os.listdir(s.data_dir)) == ["notes.txt", "photos"]


def test_data_dir_is_a_file_refused(server_factory):
    s = server_factory(start=False)
    with open(s.data_dir, "w") as f:
        f.write("x")
    s.start(wait=False)
    rc = wait_exit(s)
    log = last_run_log(s)
    assert rc != 0, log
    assert s.data_dir in log, "message does not name the path:\n" + log


def test_kill9_during_import(server_factory):
    """kill -9 while `quiver import` streams large batches: after restart no
    element is there twice and every batch is all-or-nothing per label."""
    cli = harness.quiver_cli_path()
    if not os.access(cli, os.X_OK):
        pytest.fail("quiver CLI not found at %s" % cli)
    s = server_factory()
    data = harness.data_path()
    imp = subprocess.Popen([cli, "import", "--host", harness.HOST, "--port", str(s.port),
                            "--graph", "debian", data], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        r = s.client()
        rng = random.Random(SEED)
        target = rng.randint(10000, 120000)
        deadline = time.monotonic() + 600
        n = 0
        while time.monotonic() < deadline and imp.poll() is None:
            n = compact(r, "debian", "MATCH (n) RETURN count(n)").scalar
            if n >= target:
                break
            time.sleep(0.05)
        r.close()
        assert imp.poll() is None, "import finished before the kill (%d nodes); raise the data size" % n
        print("seed %d: killing quiverd during import at %d nodes" % (SEED, n))
        s.kill9()
        out = imp.communicate(timeout=120)[0].decode("utf-8", "replace")
        assert imp.returncode != 0, "import reported success although the server died:\n" + out[-2000:]
    finally:
        if imp.poll() is None:
            imp.kill()
            imp.wait()
    s.start()
    r = s.client()
    try:
        with open(os.path.join(data, "manifest.json")) as f:
            manifest = json.load(f)
        total = 0
        for label, want in manifest["nodes"].items():
            got = compact(r, "debian", "MATCH (n:%s) RETURN count(n)" % label).scalar
            assert got <= want, (label, got, want)
            key = "email" if label == "Maintainer" else "name"   # unique per label in the data
            dup = compact(r, "debian", "MATCH (n:%s) WITH n.%s AS k, count(*) AS c WHERE c > 1 "
                                       "RETURN count(k)" % (label, key)).scalar
            assert dup == 0, "%s: %d keys present more than once after replay" % (label, dup)
            total += got
        assert total >= n, "fewer nodes after restart (%d) than acknowledged before (%d)" % (total, n)
        rels = compact(r, "debian", "MATCH ()-[e]->() RETURN count(e)").scalar
        assert rels <= sum(manifest["relationships"].values())
        # and it still takes writes
        verbose(r, "debian", "CREATE (:AfterCrash)")
    finally:
        r.close()

"""Many clients at once: concurrent writes all land exactly once, a read
issued after a write was acknowledged (on any connection) sees it
(linearizable reads, DESIGN.md section 6), and one reader's successive
counts never go backwards while writers run."""
import threading

import redis

import harness
from harness import compact

THREADS = 8
WRITES_PER_THREAD = 60


def client(server):
    return redis.Redis(host=harness.HOST, port=server.port, decode_responses=True,
                       socket_timeout=120)


def test_concurrent_writes_and_read_after_write(server):
    g = "conc_rw"
    failures = []
    errors = []

    def worker(t):
        w, rd = client(server), client(server)
        try:
            for i in range(WRITES_PER_THREAD):
                rep = w.execute_command("GRAPH.QUERY", g, "CREATE (:C {t: %d, i: %d})" % (t, i))
                if "Nodes created: 1" not in rep[-1]:
                    failures.append(("write", t, i, rep))
                # the write is acknowledged: a read on another connection sees it
                n = compact(rd, g, "MATCH (c:C {t: %d, i: %d}) RETURN count(c)" % (t, i)).scalar
                if n != 1:
                    failures.append(("read-after-write", t, i, n))
        except Exception as e:   # reported below; a thread must not die silently
            errors.append(repr(e))
        finally:
            w.close()
            rd.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
        assert not th.is_alive(), "worker stuck"
    assert not errors, errors[:5]
    assert not failures, failures[:10]
    r = client(server)
    res = compact(r, g, "MATCH (c:C) RETURN c.t, count(*), count(DISTINCT c.i) ORDER BY c.t")
    assert res.rows == [[t, WRITES_PER_THREAD, WRITES_PER_THREAD] for t in range(THREADS)]


def test_reads_are_monotonic_during_writes(server):
    g = "conc_mono"
    stop = threading.Event()
    seen, errors = [], []

    def reader():
        rd = client(server)
        try:
            while not stop.is_set():
                seen.append(compact(rd, g, "MATCH (c:M) RETURN count(c)").scalar)
        except Exception as e:
            errors.append(repr(e))
        finally:
            rd.close()

    th = threading.Thread(target=reader)
    th.start()
    w = client(server)
    try:
        for i in range(200):
            w.execute_command("GRAPH.QUERY", g, "CREATE (:M {i: %d})" % i)
    finally:
        stop.set()
        th.join(timeout=120)
        w.close()
    assert not errors, errors
    assert seen == sorted(seen), "a later read saw fewer nodes than an earlier one"
    assert compact(client(server), g, "MATCH (c:M) RETURN count(c)").scalar == 200


def test_pipelined_clients_interleaved(server):
    """Several connections each pipelining writes and reads: every reply in
    order, every write present once."""
    g = "conc_pipe"
    errors = []

    def worker(t):
        c = client(server)
        try:
            p = c.pipeline(transaction=False)
            for i in range(100):
                p.execute_command("GRAPH.QUERY", g, "CREATE (:P {t: %d, i: %d})" % (t, i))
                p.execute_command("GRAPH.QUERY", g,
                                  "MATCH (n:P {t: %d}) RETURN count(n)" % t, "--compact")
            replies = p.execute()
            for i in range(100):
                count = replies[2 * i + 1][1][0][0][1]
                if count != i + 1:
                    errors.append((t, i, count))
                    break
        except Exception as e:
            errors.append(repr(e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    assert not errors, errors[:5]
    assert compact(client(server), g, "MATCH (n:P) RETURN count(n)").scalar == 400

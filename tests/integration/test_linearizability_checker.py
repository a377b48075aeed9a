"""Unit tests of the linearizability checker (linearizability.py), no server.

Known linearizable and non-linearizable histories by hand; the checker
against a brute-force oracle (every order of every subset of unknown writes)
on thousands of small random histories; large histories generated from a
real sequential register with random overlaps (linearizable by
construction) and the same with one read made stale (not linearizable by
construction); the shrinking of a violation; a 3-register, ~2,000-operation,
10-client history; the "too complex" verdict of a bounded search; and the
thread-safe History recorder.
"""
import itertools
import random
import threading

import pytest

import linearizability as L
from linearizability import CAS, FAIL, OK, READ, UNKNOWN, WRITE


def hist(*ops):
    """ops: (client, kind, key, value, invoke, complete[, outcome[, result]])."""
    h = L.History()
    for o in ops:
        client, kind, key, value, inv, comp = o[:6]
        outcome = o[6] if len(o) > 6 else OK
        result = o[7] if len(o) > 7 else None
        h.add(client, kind, key, value, inv, comp, outcome, result)
    return h


def status(h, **kw):
    return L.check(h, **kw).status


# --- by hand ----------------------------------------------------------------

def test_empty_and_sequential_histories_are_linearizable():
    assert status(L.History()) == L.LINEARIZABLE
    h = hist((1, READ, "x", None, 0, 1),
             (1, WRITE, "x", "a", 2, 3),
             (2, READ, "x", "a", 4, 5),
             (2, WRITE, "x", "b", 6, 7),
             (1, READ, "x", "b", 8, 9))
    r = L.check(h)
    assert r.ok and r.status == L.LINEARIZABLE
    assert r.keys["x"].linearization == [0, 1, 2, 3, 4]


def test_initial_value_is_respected():
    h = hist((1, READ, "x", 0, 0, 1))
    assert status(h) == L.VIOLATION          # initial None
    assert status(h, initial=0) == L.LINEARIZABLE
    assert status(h, initial={"x": 0}) == L.LINEARIZABLE


def test_stale_read_is_a_violation():
    # a := 1 completes, b := 2 completes, then a read returns 1.
    h = hist((1, WRITE, "x", 1, 0, 10),
             (2, WRITE, "x", 2, 20, 30),
             (3, READ, "x", 1, 40, 50))
    r = L.check(h)
    assert r.status == L.VIOLATION and not r.ok
    assert [k.key for k in r.violations()] == ["x"]
    assert "violation" in r.report()


def test_lost_write_is_a_violation():
    # An acknowledged write, then every later read sees the value before it.
    h = hist((1, WRITE, "x", "old", 0, 5),
             (1, WRITE, "x", "new", 10, 20),
             (2, READ, "x", "old", 30, 40),
             (3, READ, "x", "old", 50, 60))
    assert status(h) == L.VIOLATION


def test_read_of_a_value_before_its_write_was_invoked_is_a_violation():
    h = hist((2, READ, "x", "v", 0, 10),
             (1, WRITE, "x", "v", 11, 20))
    assert status(h) == L.VIOLATION
    # Touching (read completes at the instant the write is invoked): concurrent.
    h = hist((2, READ, "x", "v", 0, 10),
             (1, WRITE, "x", "v", 10, 20))
    assert status(h) == L.LINEARIZABLE


def test_read_of_a_value_never_written_is_a_violation():
    h = hist((1, WRITE, "x", 1, 0, 10), (2, READ, "x", 7, 5, 15))
    assert status(h) == L.VIOLATION


def test_concurrent_overlapping_writes_either_order_but_one_order():
    writes = [(1, WRITE, "x", "a", 0, 100), (2, WRITE, "x", "b", 10, 90)]
    # During the writes a read may see either (or nothing yet); after, the last.
    assert status(hist(*writes, (3, READ, "x", "b", 20, 30), (3, READ, "x", "a", 40, 50),
                       (3, READ, "x", "a", 110, 120))) == L.LINEARIZABLE
    assert status(hist(*writes, (3, READ, "x", None, 1, 5), (3, READ, "x", "a", 110, 120))) == L.LINEARIZABLE
    assert status(hist(*writes, (3, READ, "x", "a", 110, 120))) == L.LINEARIZABLE
    assert status(hist(*writes, (3, READ, "x", "b", 110, 120))) == L.LINEARIZABLE
    # But once a reader saw a then b, nobody may see a again.
    assert status(hist(*writes, (3, READ, "x", "a", 20, 30), (3, READ, "x", "b", 40, 50),
                       (4, READ, "x", "a", 60, 70))) == L.VIOLATION
    # Two readers that disagree on the order of the writes, one after the other.
    assert status(hist(*writes, (3, READ, "x", "a", 20, 30), (3, READ, "x", "b", 31, 35),
                       (4, READ, "x", "b", 40, 45), (4, READ, "x", "a", 46, 50))) == L.VIOLATION
    # After both completed, the final value cannot flip.
    assert status(hist(*writes, (3, READ, "x", "b", 110, 120), (3, READ, "x", "a", 130, 140))) \
        == L.VIOLATION


def test_unknown_write_may_take_effect_late():
    # Invoked at 0, the client gave up; it takes effect long after.
    h = hist((1, WRITE, "x", "u", 0, None, UNKNOWN),
             (2, WRITE, "x", "a", 100, 110),
             (3, READ, "x", "a", 120, 130),
             (3, READ, "x", "u", 500, 510),
             (3, READ, "x", "u", 600, 610))
    assert status(h) == L.LINEARIZABLE


def test_unknown_write_may_never_take_effect():
    h = hist((1, WRITE, "x", "u", 0, None, UNKNOWN),
             (2, WRITE, "x", "a", 100, 110),
             (3, READ, "x", "a", 120, 130),
             (3, READ, "x", "a", 900, 910))
    r = L.check(h)
    assert r.status == L.LINEARIZABLE
    assert 0 not in r.keys["x"].linearization  # "never happened"


def test_unknown_write_cannot_take_effect_before_its_invocation_or_twice():
    # Seen before it was invoked.
    h = hist((3, READ, "x", "u", 0, 10), (1, WRITE, "x", "u", 20, None, UNKNOWN))
    assert status(h) == L.VIOLATION
    # Took effect (seen), was overwritten, then seen again: it happened once.
    h = hist((1, WRITE, "x", "u", 0, None, UNKNOWN),
             (3, READ, "x", "u", 10, 20),
             (2, WRITE, "x", "a", 30, 40),
             (3, READ, "x", "u", 50, 60))
    assert status(h) == L.VIOLATION


def test_failed_write_never_happened():
    h = hist((1, WRITE, "x", "f", 0, 10, FAIL), (2, READ, "x", None, 20, 30))
    assert status(h) == L.LINEARIZABLE
    h = hist((1, WRITE, "x", "f", 0, 10, FAIL), (2, READ, "x", "f", 20, 30))
    assert status(h) == L.VIOLATION


def test_unknown_and_failed_reads_are_dropped():
    h = hist((1, WRITE, "x", "a", 0, 10),
             (2, READ, "x", "garbage", 20, None, UNKNOWN),
             (2, READ, "x", "garbage", 20, 30, FAIL),
             (3, READ, "x", "a", 40, 50))
    assert status(h) == L.LINEARIZABLE


def test_keys_are_checked_independently():
    h = hist((1, WRITE, "x", 1, 0, 10), (1, WRITE, "y", 1, 0, 10),
             (2, WRITE, "x", 2, 20, 30), (2, READ, "y", 1, 20, 30),
             (3, READ, "x", 1, 40, 50))
    r = L.check(h)
    assert r.keys["y"].status == L.LINEARIZABLE
    assert r.keys["x"].status == L.VIOLATION
    assert r.status == L.VIOLATION


def test_compare_and_set():
    h = hist((1, WRITE, "x", 1, 0, 10),
             (2, CAS, "x", (1, 2), 20, 30, OK, True),
             (3, CAS, "x", (1, 3), 40, 50, OK, False),
             (3, READ, "x", 2, 60, 70))
    assert status(h) == L.LINEARIZABLE
    h = hist((1, WRITE, "x", 1, 0, 10),
             (2, CAS, "x", (1, 2), 20, 30, OK, True),
             (3, CAS, "x", (1, 3), 40, 50, OK, True))       # 1 is gone by then
    assert status(h) == L.VIOLATION
    h = hist((1, WRITE, "x", 1, 0, 10),
             (3, CAS, "x", (1, 3), 40, 50, OK, False))      # nothing changed 1
    assert status(h) == L.VIOLATION
    # An unknown CAS may have swapped.
    h = hist((1, WRITE, "x", 1, 0, 10),
             (2, CAS, "x", (1, 2), 20, None, UNKNOWN),
             (3, READ, "x", 2, 40, 50))
    assert status(h) == L.LINEARIZABLE


def test_any_initial_value():
    # From ANY value, the first read tells the value; a contradiction later
    # is still a violation whatever the register held.
    h = hist((1, READ, "x", 5, 0, 10), (1, READ, "x", 5, 20, 30))
    assert status(h, initial=L.ANY) == L.LINEARIZABLE
    assert status(h) == L.VIOLATION
    h = hist((1, READ, "x", 5, 0, 10), (1, READ, "x", 6, 20, 30))
    assert status(h, initial=L.ANY) == L.VIOLATION
    h = hist((1, WRITE, "x", 1, 0, 10), (2, READ, "x", 7, 20, 30))
    assert status(h, initial=L.ANY) == L.VIOLATION
    h = hist((1, CAS, "x", (3, 4), 0, 10, OK, True), (2, READ, "x", 4, 20, 30))
    assert status(h, initial=L.ANY) == L.LINEARIZABLE


def test_bounded_search_says_too_complex():
    rng = random.Random(7)
    h = model_history(rng, clients=10, ops_per_client=40, keys=["x"])
    r = L.check(h, max_steps=5)
    assert r.status == L.TOO_COMPLEX and not r.ok
    assert "search budget exhausted" in r.report()
    assert L.check(h).status == L.LINEARIZABLE


def test_violation_report_shows_a_minimal_sub_history():
    rng = random.Random(3)
    h = model_history(rng, clients=5, ops_per_client=60, keys=["x"])
    ops = h.ops()
    target = make_stale(ops, rng)
    r = L.check(ops)
    assert r.status == L.VIOLATION
    k = r.keys["x"]
    assert k.minimal_is_1_minimal
    # The stale read is the culprit, with the two writes that make it stale;
    # possibly a few more operations needed to pin their order.
    ids = {o.id for o in k.minimal}
    assert target.id in ids
    # A window of the history: the stale read and a write completed before it
    # (plus, at most, a few operations needed to pin their order), not
    # linearizable whatever the register held before the window.
    assert k.minimal_from_any
    assert 2 <= len(k.minimal) <= 8, r.report()
    assert L.check(k.minimal, initial=L.ANY).status == L.VIOLATION
    for o in k.minimal:            # every read, every write with its reads, is needed
        rest = [p for p in k.minimal
                if p is not o and not (o.kind == WRITE and p.kind == READ and p.value == o.value)]
        assert L.check(rest, initial=L.ANY, shrink_violations=False).status == L.LINEARIZABLE, \
            (o, r.report())
    text = r.report()
    assert "1-minimal" in text and ("#%d " % target.id) in text
    assert "written before the sub-history above" in text


# --- brute-force oracle ---------------------------------------------------------

def brute_force_linearizable(ops, initial=None):
    """Every order of the ok operations plus every subset of the unknown
    writes/CAS, checked against real time (b strictly completed before a was
    invoked => b first) and the sequential register."""
    req = [o for o in ops if o.outcome == OK]
    opt = [o for o in ops if o.outcome == UNKNOWN and o.kind != READ]
    for k in range(len(opt) + 1):
        for sub in itertools.combinations(opt, k):
            chosen = req + list(sub)
            for perm in itertools.permutations(chosen):
                if legal_order(perm, initial):
                    return True
    return False


def legal_order(perm, initial):
    for i, a in enumerate(perm):
        for b in perm[i + 1:]:
            if b.outcome == OK and b.complete_ns < a.invoke_ns:
                return False
    state = initial
    for o in perm:
        if o.kind == READ:
            if o.value != state:
                return False
        elif o.kind == WRITE:
            state = o.value
        else:
            exp, new = o.value
            if o.outcome == OK:
                if o.result != (state == exp):
                    return False
            if state == exp:
                state = new
    return True


def random_small_history(rng):
    h = L.History()
    n = rng.randint(1, 7)
    for _ in range(n):
        inv = rng.randint(0, 20)
        comp = inv + rng.randint(0, 12)
        kind = rng.choice([READ, READ, WRITE, WRITE, CAS])
        outcome = rng.choice([OK, OK, OK, OK, UNKNOWN, FAIL])
        if kind == READ:
            value = rng.choice([None, 1, 2, 3])
        elif kind == WRITE:
            value = rng.choice([1, 2, 3])
        else:
            value = (rng.choice([None, 1, 2]), rng.choice([1, 2, 3]))
        h.add(rng.randint(1, 3), kind, "k", value, inv, comp if outcome != UNKNOWN else None, outcome,
              rng.choice([True, False]) if kind == CAS and outcome == OK else None)
    return h


def test_agrees_with_brute_force_on_small_random_histories():
    rng = random.Random(12345)
    seen = {True: 0, False: 0}
    for case in range(3000):
        h = random_small_history(rng)
        ops = h.ops()
        expected = brute_force_linearizable(ops)
        r = L.check(ops)
        assert r.status == (L.LINEARIZABLE if expected else L.VIOLATION), \
            "case %d: brute force says %s\n%s\n%s" % (case, expected, "\n".join(map(repr, ops)), r.report())
        if expected:
            lin = [next(o for o in ops if o.id == i) for i in r.keys["k"].linearization] if ops else []
            assert legal_order(lin, None), "case %d: witness %r is not a legal order" % (case, lin)
            assert {o.id for o in ops if o.outcome == OK} <= {o.id for o in lin}
        else:
            k = r.keys["k"]
            m = k.minimal
            for init in ([None, 1, 2, 3, 99] if k.minimal_from_any else [None]):
                assert m and not brute_force_linearizable(m, init), \
                    "case %d: shrunk history is linearizable from %r" % (case, init)
        seen[expected] += 1
    # Both verdicts exercised plenty.
    assert seen[True] > 500 and seen[False] > 500, seen


# --- histories from a real sequential model ---------------------------------------

def model_history(rng, clients, ops_per_client, keys, read_ratio=0.5, unknown_rate=0.0,
                  gap_max=40, duration_max=100):
    """Each client runs ops_per_client operations one after another; each
    operation takes effect at a random instant inside its interval (an
    unknown write: at a random instant after its invocation, possibly long
    after, or never) and reads return what a sequential register holds at
    that instant.  Linearizable by construction."""
    h = L.History()
    effects = []            # (instant, tie-break, op)
    seq = itertools.count()
    for c in range(clients):
        t = rng.randint(0, gap_max)
        for _ in range(ops_per_client):
            inv = t + rng.randint(0, gap_max)
            comp = inv + rng.randint(1, duration_max)
            key = rng.choice(keys)
            if rng.random() < read_ratio:
                op = h.add(c, READ, key, None, inv * 1000, comp * 1000)
                at = rng.randint(inv * 1000, comp * 1000)
            else:
                value = "c%d-%d" % (c, next(seq))
                if rng.random() < unknown_rate:
                    op = h.add(c, WRITE, key, value, inv * 1000, None, UNKNOWN)
                    at = None if rng.random() < 0.5 else rng.randint(inv * 1000, (comp + 2000) * 1000)
                    comp += rng.randint(0, 300)     # the client waited for a timeout
                else:
                    op = h.add(c, WRITE, key, value, inv * 1000, comp * 1000)
                    at = rng.randint(inv * 1000, comp * 1000)
            if at is not None:
                effects.append((at, rng.random(), op))
            t = comp
    state = {}
    for _, _, op in sorted(effects, key=lambda e: (e[0], e[1])):
        if op.kind == WRITE:
            state[op.key] = op.value
        else:
            op.value = state.get(op.key)   # the recorder's Op objects, set in place
    return h


make_stale = L.make_stale_read


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_model_history_is_linearizable_and_one_stale_read_is_not(seed):
    rng = random.Random(seed)
    h = model_history(rng, clients=8, ops_per_client=60, keys=["a", "b"], unknown_rate=0.1)
    r = L.check(h)
    assert r.status == L.LINEARIZABLE, r.report()
    ops = h.ops()
    assert any(o.outcome == UNKNOWN for o in ops)
    target = make_stale(ops, rng)
    r = L.check(ops)
    assert r.status == L.VIOLATION, r.report()
    assert [k.key for k in r.violations()] == [target.key]
    assert target.id in {o.id for o in r.keys[target.key].minimal}, r.report()


def test_a_read_of_a_future_value_is_not_linearizable():
    rng = random.Random(9)
    h = model_history(rng, clients=6, ops_per_client=50, keys=["a"])
    ops = h.ops()
    reads = sorted((o for o in ops if o.kind == READ), key=lambda o: o.invoke_ns)
    first = reads[0]
    later = [w for w in ops if w.kind == WRITE and w.invoke_ns > first.complete_ns]
    first.value = later[-1].value
    assert L.check(ops).status == L.VIOLATION


def test_three_registers_two_thousand_operations_ten_clients():
    """The size of a cluster run; must finish (no time assertion) with a verdict."""
    rng = random.Random(2026)
    h = model_history(rng, clients=10, ops_per_client=200, keys=["r0", "r1", "r2"],
                      unknown_rate=0.02)
    assert len(h) == 2000
    r = L.check(h)
    assert r.status == L.LINEARIZABLE, r.report()
    ops = h.ops()
    make_stale(ops, rng)
    assert L.check(ops).status == L.VIOLATION


# --- the recorder -------------------------------------------------------------------

def test_history_recorder_is_thread_safe_and_pending_counts_as_unknown():
    h = L.History()
    n_threads, n_ops = 8, 500

    def worker(c):
        for i in range(n_ops):
            op = h.invoke(c, WRITE, "k%d" % (i % 3), "%d-%d" % (c, i))
            if i % 10 == 0:
                h.unknown(op, "timeout")
            elif i % 10 == 1:
                h.fail(op, "not the leader")
            else:
                h.ok(op)
            rop = h.invoke(c, READ, "k0")
            h.ok(rop, ["list", "value"])

    threads = [threading.Thread(target=worker, args=(c,)) for c in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ops = h.ops()
    assert len(ops) == len(h) == n_threads * n_ops * 2
    assert len({o.id for o in ops}) == len(ops)
    for o in ops:
        if o.outcome == OK:
            assert o.complete_ns >= o.invoke_ns
        if o.kind == READ:
            assert o.value == ("list", "value")      # hashable
    counts = h.counts()
    assert counts[(WRITE, UNKNOWN)] == n_threads * n_ops // 10
    assert counts[(WRITE, FAIL)] == n_threads * n_ops // 10
    pending = h.invoke(99, WRITE, "k0", "p")
    snap = [o for o in h.ops() if o.id == pending.id][0]
    assert snap.outcome == UNKNOWN and snap.complete_ns is None
    with pytest.raises(AssertionError):
        h.ok(rop_done(h))


def rop_done(h):
    """An operation that is already complete."""
    return next(o for o in h._ops if o.outcome == OK)

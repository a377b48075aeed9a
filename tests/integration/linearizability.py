"""linearizability.py -- record a history of register operations and check
that it is linearizable (issue 3, "A linearizability check").

A history is a set of operations on registers (one register per key).  Each
operation has an invocation time and, unless its outcome is unknown, a
completion time, both from time.monotonic_ns() of one process, so real-time
order between operations of different client threads is meaningful.  The
history is linearizable if every operation can be given a single point in
time, inside its [invoke, complete] interval, such that the sequence of
points is a legal run of a sequential register (Herlihy & Wing, 1990).

Outcomes (what the client learned):
  ok       the operation happened; reads and CAS carry their result.
  fail     it definitely did not happen (e.g. "not the leader", or never
           sent): it is left out of the check.
  unknown  it may or may not have happened (timeout, "outcome unknown" error,
           connection lost after sending).  An unknown write may take effect
           at any time after its invocation, or never: its completion is
           +infinity.  An unknown read tells nothing and is left out.

The algorithm is Wing & Gong's search (J. Wing, C. Gong, "Testing and
verifying concurrent objects", JPDC 1993) in the form given by G. Lowe
("Testing for linearizability", CCPE 2017), which adds memoisation of the
configurations already explored -- the pair (set of operations linearized,
state of the register) -- so each is expanded at most once.  The history is
a list of call and return events in time order; the search walks it,
linearizing a call whose operation is legal in the current state (and whose
configuration is new), and backtracking when it reaches the return of an
operation not yet linearized.  The same design as Porcupine (MIT, Go) and
Knossos' "wgl" checker; this is our own small implementation.

Registers are independent objects, so the history is checked one key at a
time (Herlihy & Wing's locality; Lowe calls splitting by key
"P-compositionality"): a history is linearizable iff every per-key
sub-history is.  That turns one search over 3n operations into three over n.

Trade-offs and choices:
  * The search is exponential in the worst case (the problem is NP-complete,
    Gibbons & Korach 1997).  It is bounded by a step budget (max_steps); past
    it the verdict is TOO_COMPLEX, never a hang and never a false verdict.
  * An unknown write whose value is never observed (no read returned it, no
    CAS expected it) and key without failed CAS is dropped: "never happened"
    is always at least as good a linearization for it, and each such write
    would otherwise double the configurations around it.
  * Events at the same instant: calls sort before returns, i.e. operations
    that touch at one nanosecond count as concurrent (the permissive side:
    with one clock of nanosecond resolution a tie says nothing about order).
  * On a violation the checker shrinks the key's sub-history to a small one
    that is still not linearizable: first the shortest prefix in time (a
    truncated history stays linearizable if the whole one is), then the
    shortest suffix of that which is not linearizable from ANY initial value
    (so the explanation needs nothing from before it; writes in progress at
    its start count as unknown, see _window), then removal
    of chunks of operations (delta debugging, Zeller 2002), where removing a
    write also removes the reads that returned its value -- otherwise the
    shrinking would "explain" a stale read by a read of a value never written
    -- and last of single reads.  No single write-with-its-reads group and no
    single read can then be removed when the shrink budget sufficed (the
    report says whether it did).

Values must be hashable; the recorder turns lists into tuples.  Written
values should be unique per key (the workload makes them so); the checker is
correct without that, only slower and its shrinking less precise.
"""
import itertools
import threading
import time

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
READ, WRITE, CAS = "read", "write", "cas"

LINEARIZABLE, VIOLATION, TOO_COMPLEX = "linearizable", "violation", "too complex"

INF = float("inf")

# Search budget per key (loop iterations of the search); at roughly a million
# per few seconds in CPython, the default keeps one key under ~half a minute.
MAX_STEPS_DEFAULT = 5_000_000
# Budget for shrinking a violation: sub-checks, steps per sub-check (at
# least this, or a few times what the whole key's search took), and time.
SHRINK_CHECKS_MAX = 400
SHRINK_STEPS_PER_CHECK = 200_000
SHRINK_TIME_MAX_S = 20.0


class _Any:
    """The register's value is not known: any read is legal and tells it."""

    def __repr__(self):
        return "ANY"


ANY = _Any()


class Op:
    """One operation.  value: for a write the value written, for a read the
    value read (None: the register was absent/empty), for a CAS the pair
    (expected, new).  result: for an ok CAS, True if it swapped.
    complete_ns is None while pending and for unknown outcomes."""

    __slots__ = ("id", "client", "kind", "key", "value", "result", "outcome",
                 "invoke_ns", "complete_ns", "error")

    def __init__(self, id, client, kind, key, value, invoke_ns, outcome=None,
                 complete_ns=None, result=None, error=None):
        assert kind in (READ, WRITE, CAS), kind
        assert outcome in (None, OK, FAIL, UNKNOWN), outcome
        self.id, self.client, self.kind, self.key, self.value = id, client, kind, key, value
        self.invoke_ns, self.outcome, self.complete_ns = invoke_ns, outcome, complete_ns
        self.result, self.error = result, error

    def copy(self, **changes):
        o = Op(self.id, self.client, self.kind, self.key, self.value, self.invoke_ns,
               self.outcome, self.complete_ns, self.result, self.error)
        for k, v in changes.items():
            setattr(o, k, v)
        return o

    def describe(self, t0_ns=0):
        """One line: client, interval in ms from t0_ns, kind, key, value, outcome."""
        inv = (self.invoke_ns - t0_ns) / 1e6
        if self.complete_ns is not None:
            span = "[%10.3f, %10.3f] ms" % (inv, (self.complete_ns - t0_ns) / 1e6)
        else:
            span = "[%10.3f,        inf] ms" % inv
        if self.kind == READ:
            what = "read  %r -> %r" % (self.key, self.value)
        elif self.kind == WRITE:
            what = "write %r := %r" % (self.key, self.value)
        else:
            what = "cas   %r %r -> %r%s" % (self.key, self.value[0], self.value[1],
                                            "" if self.result is None else
                                            (" (swapped)" if self.result else " (not swapped)"))
        return "#%-5d client %-4s %s  %-36s %s%s" % (
            self.id, self.client, span, what, self.outcome,
            (" (%s)" % self.error[:100]) if self.error and self.outcome != OK else "")

    def __repr__(self):
        return "Op(%s)" % self.describe()


def _hashable(v):
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


class History:
    """A thread-safe recorder of operations.

    Usage from a client thread:
        op = h.invoke(client, READ, key)          # just before sending
        ... h.ok(op, value_read)                  # reply received
            h.fail(op, error) / h.unknown(op, error)
    Times come from time.monotonic_ns() (one clock for all threads).  add()
    records a complete operation with explicit times (tests, replays).
    Operations still pending when the history is read count as unknown."""

    def __init__(self):
        self._lock = threading.Lock()
        self._ops = []
        self._ids = itertools.count()

    def invoke(self, client, kind, key, value=None):
        """Record the invocation now; returns the Op to complete later.
        For a CAS, value = (expected, new)."""
        t = time.monotonic_ns()
        with self._lock:
            op = Op(next(self._ids), client, kind, key, _hashable(value), t)
            self._ops.append(op)
        return op

    def ok(self, op, value=None):
        """Completed and happened.  value: the value read (READ) or whether
        it swapped (CAS); ignored for a WRITE."""
        t = time.monotonic_ns()
        with self._lock:
            assert op.outcome is None, "completed twice: %r" % op
            if op.kind == READ:
                op.value = _hashable(value)
            elif op.kind == CAS:
                op.result = bool(value)
            op.outcome, op.complete_ns = OK, t

    def fail(self, op, error=None):
        """Completed and definitely did not happen."""
        t = time.monotonic_ns()
        with self._lock:
            assert op.outcome is None, "completed twice: %r" % op
            op.outcome, op.complete_ns, op.error = FAIL, t, error

    def unknown(self, op, error=None):
        """May or may not have happened (timeout, lost connection, ...)."""
        with self._lock:
            assert op.outcome is None, "completed twice: %r" % op
            op.outcome, op.complete_ns, op.error = UNKNOWN, None, error

    def add(self, client, kind, key, value, invoke_ns, complete_ns=None, outcome=OK,
            result=None, error=None):
        """Record a finished operation with explicit times (ns, any origin)."""
        assert outcome != OK or complete_ns is not None, "an ok operation needs its completion"
        assert complete_ns is None or complete_ns >= invoke_ns, (invoke_ns, complete_ns)
        with self._lock:
            op = Op(next(self._ids), client, kind, key, _hashable(value), invoke_ns, outcome,
                    complete_ns if outcome != UNKNOWN else None, result, error)
            self._ops.append(op)
        return op

    def ops(self):
        """A snapshot copy of every operation; pending ones as unknown."""
        with self._lock:
            return [o.copy(outcome=UNKNOWN, complete_ns=None) if o.outcome is None else o.copy()
                    for o in self._ops]

    def counts(self):
        """{(kind, outcome): count}, pending counted as 'pending'."""
        out = {}
        with self._lock:
            for o in self._ops:
                k = (o.kind, o.outcome or "pending")
                out[k] = out.get(k, 0) + 1
        return out

    def __len__(self):
        with self._lock:
            return len(self._ops)


# --- the search ----------------------------------------------------------------

_R, _W, _CAS_T, _CAS_F, _CAS_U = range(5)


class KeyResult:
    """Verdict for one key.  status: LINEARIZABLE / VIOLATION / TOO_COMPLEX.
    linearization: op ids in linearization order (LINEARIZABLE; unknown
    writes that 'never happened' are absent).  minimal: for a VIOLATION, a
    small sub-history that is still not linearizable; minimal_is_1_minimal
    says whether removing any one group from it was tried; minimal_from_any
    that it is not linearizable whatever value the register held before it
    (a window cut out of the history), else from the initial value."""

    def __init__(self, key, status, ops, steps, linearization=None, initial=None):
        self.key, self.status, self.ops, self.steps = key, status, ops, steps
        self.initial = initial
        self.linearization = linearization
        self.minimal = None
        self.minimal_is_1_minimal = False
        self.minimal_from_any = False


def _prepare(ops):
    """Operations that take part in the search: fail and unknown reads out,
    unobserved unknown writes out (see the top comment)."""
    ops = [o for o in ops if o.outcome != FAIL and not (o.kind == READ and o.outcome != OK)]
    observed = set()
    failed_cas = False
    for o in ops:
        if o.kind == READ:
            observed.add(o.value)
        elif o.kind == CAS:
            observed.add(o.value[0])
            if o.outcome == OK and not o.result:
                failed_cas = True
    if failed_cas:
        return ops
    return [o for o in ops if not (o.kind == WRITE and o.outcome == UNKNOWN and o.value not in observed)]


def _search(ops, initial, max_steps):
    """Wing-Gong-Lowe search over one register's operations (already
    prepared).  initial may be ANY (any value: a history cut out of a longer
    one; ANY admits every linearization some real value admits, so a
    violation from ANY is a violation from every value).  Returns (status,
    steps, linearization or None)."""
    n = len(ops)
    required = sum(1 for o in ops if o.outcome == OK)
    if required == 0:
        return LINEARIZABLE, 0, []
    kind, arg1, arg2 = [0] * n, [None] * n, [None] * n
    for i, o in enumerate(ops):
        if o.kind == READ:
            kind[i], arg1[i] = _R, o.value
        elif o.kind == WRITE:
            kind[i], arg1[i] = _W, o.value
        else:
            kind[i] = _CAS_U if o.outcome != OK else (_CAS_T if o.result else _CAS_F)
            arg1[i], arg2[i] = o.value
    events = []
    for i, o in enumerate(ops):
        events.append((o.invoke_ns, 0, i))
        events.append((o.complete_ns if o.outcome == OK else INF, 1, i))
    events.sort()
    # Doubly linked list of events: node 0 is the head, 1..2n the events in
    # order, 2n+1 the tail.  call_op[e] = op index of a call event, -1 for a
    # return; match[e] = the return event of call e.
    size = 2 * n + 2
    tail = size - 1
    nxt = list(range(1, size)) + [tail]
    prv = [0] + list(range(0, size - 1))
    call_op = [-1] * size
    match = [0] * size
    call_at = [0] * n
    for pos, (_, is_ret, i) in enumerate(events, start=1):
        if is_ret:
            match[call_at[i]] = pos
        else:
            call_op[pos] = i
            call_at[i] = pos
    bit = [1 << i for i in range(n)]
    is_required = [o.outcome == OK for o in ops]

    seen = set()
    stack = []           # (call event, state before it)
    linearized = 0
    state = initial
    steps = 0
    e = nxt[0]
    while True:
        steps += 1
        if steps > max_steps:
            return TOO_COMPLEX, steps, None
        i = call_op[e]
        if i >= 0:
            k = kind[i]
            if k == _R:
                legal = state == arg1[i]
                new = state
                if not legal and state is ANY:
                    legal, new = True, arg1[i]
            elif k == _W:
                legal, new = True, arg1[i]
            elif k == _CAS_T:
                legal, new = (state == arg1[i] or state is ANY), arg2[i]
            elif k == _CAS_F:
                legal, new = state != arg1[i], state
            else:
                legal, new = True, (arg2[i] if state == arg1[i] else state)
            if legal:
                lin2 = linearized | bit[i]
                cfg = (lin2, new)
                if cfg not in seen:
                    seen.add(cfg)
                    stack.append((e, state))
                    linearized, state = lin2, new
                    if is_required[i]:
                        required -= 1
                        if required == 0:
                            return LINEARIZABLE, steps, [call_op[c] for c, _ in stack]
                    # lift the call and its return out of the list
                    m = match[e]
                    nxt[prv[e]] = nxt[e]
                    prv[nxt[e]] = prv[e]
                    nxt[prv[m]] = nxt[m]
                    prv[nxt[m]] = prv[m]
                    e = nxt[0]
                    continue
            e = nxt[e]
        else:
            # The return of an operation not linearized yet: undo the last choice.
            assert e != tail, "walked past every return with operations still required"
            if not stack:
                return VIOLATION, steps, None
            e, state = stack.pop()
            i = call_op[e]
            linearized &= ~bit[i]
            if is_required[i]:
                required += 1
            m = match[e]
            nxt[prv[m]] = m
            prv[nxt[m]] = m
            nxt[prv[e]] = e
            prv[nxt[e]] = e
            e = nxt[e]


def check_key_ops(ops, initial=None, max_steps=MAX_STEPS_DEFAULT):
    """Search one key's operations; returns (status, steps, linearization as
    op ids or None)."""
    prepared = _prepare(ops)
    status, steps, lin = _search(prepared, initial, max_steps)
    if lin is not None:
        lin = [prepared[i].id for i in lin]
    return status, steps, lin


def _truncate(ops, t):
    """The history as it stood at time t: operations invoked after t gone,
    operations still running at t as unknown (reads among them dropped)."""
    out = []
    for o in ops:
        if o.invoke_ns > t:
            continue
        if o.outcome == OK and o.complete_ns <= t:
            out.append(o)
        elif o.kind != READ and o.outcome != FAIL:
            out.append(o.copy(outcome=UNKNOWN, complete_ns=None))
    return out


def _window(ops, t):
    """The history from time t on, to be checked from ANY value: operations
    invoked at or after t; writes in progress at t (or unknown) as unknown
    (they may have taken effect before t: then 'never' in the window); reads
    in progress at t dropped.  If the whole history is linearizable, so is
    this from ANY (the value at t), so a window's violation is the history's."""
    out = []
    for o in ops:
        if o.invoke_ns >= t:
            out.append(o)
        elif o.outcome == OK and o.complete_ns < t:
            continue
        elif o.kind != READ:
            out.append(o.copy(outcome=UNKNOWN, complete_ns=None))
    return out


def shrink(ops, initial=None, checks_max=SHRINK_CHECKS_MAX, steps_per_check=SHRINK_STEPS_PER_CHECK,
           time_max_s=SHRINK_TIME_MAX_S):
    """A small sub-history of a non-linearizable one that is still not
    linearizable (see the top comment).  Returns (ops, one_minimal,
    from_any): from_any means the sub-history is a window cut out of the
    history and is not linearizable whatever the register held before it."""
    budget = [checks_max]
    deadline = time.monotonic() + time_max_s

    def spent():
        return budget[0] <= 0 or time.monotonic() > deadline

    def violates(cand, init):
        budget[0] -= 1
        return _search(_prepare(cand), init, steps_per_check)[0] == VIOLATION

    ops = [o for o in ops if o.outcome != FAIL and not (o.kind == READ and o.outcome != OK)]
    # 1. The earliest completion time at which the prefix already violates.
    times = sorted(set(o.complete_ns for o in ops if o.outcome == OK))
    lo, hi = 0, len(times) - 1
    if hi >= 0 and violates(_truncate(ops, times[hi]), initial):
        while lo < hi and not spent():
            mid = (lo + hi) // 2
            if violates(_truncate(ops, times[mid]), initial):
                hi = mid
            else:
                lo = mid + 1
        ops = _truncate(ops, times[hi])
    # 2. The latest start of a window that violates from ANY value (a
    #    heuristic bisection: every window kept is verified).
    starts = sorted(set(o.invoke_ns for o in ops))
    from_any = False
    lo, hi = 1, len(starts) - 1
    while lo <= hi and not spent():
        mid = (lo + hi) // 2
        window = _window(ops, starts[mid])
        if violates(window, ANY):
            ops, from_any, lo = window, True, mid + 1
        else:
            hi = mid - 1
    init = ANY if from_any else initial
    # 3. Delta debugging over groups (a write with the reads of its value).
    groups, owner = [], {}
    for o in sorted(ops, key=lambda o: o.invoke_ns):
        if o.kind == WRITE and o.value not in owner:
            owner[o.value] = len(groups)
            groups.append([o])
    for o in sorted(ops, key=lambda o: o.invoke_ns):
        if o.kind == WRITE and groups[owner[o.value]][0] is o:
            continue
        if o.kind == READ and o.value in owner:
            groups[owner[o.value]].append(o)
        else:
            groups.append([o])
    groups.sort(key=lambda g: g[0].invoke_ns)
    parts = 2
    one_minimal = False
    while groups and not spent():
        chunk = max(1, -(-len(groups) // parts))
        removed = exhausted = False
        for start in range(0, len(groups), chunk):
            if spent():
                exhausted = True
                break
            cand = groups[:start] + groups[start + chunk:]
            if cand and violates([o for g in cand for o in g], init):
                groups = cand
                parts = max(parts - 1, 2)
                removed = True
                break
        if exhausted:
            break
        if not removed:
            if chunk == 1:
                one_minimal = True      # no single group can go
                break
            parts = min(len(groups), parts * 2)
    out = sorted((o for g in groups for o in g), key=lambda o: (o.invoke_ns, o.id))
    # 4. A read alone can always go without changing what the others mean.
    for o in [o for o in out if o.kind == READ]:
        if spent():
            one_minimal = False
            break
        cand = [p for p in out if p is not o]
        if cand and violates(cand, init):
            out = cand
    return out, one_minimal, from_any


class Result:
    """The verdict for a whole history: status is VIOLATION if any key has
    one, else TOO_COMPLEX if any key was too complex, else LINEARIZABLE."""

    def __init__(self, keys, t0_ns):
        self.keys = keys          # {key: KeyResult}
        self.t0_ns = t0_ns
        statuses = [k.status for k in keys.values()]
        self.status = (VIOLATION if VIOLATION in statuses else
                       TOO_COMPLEX if TOO_COMPLEX in statuses else LINEARIZABLE)

    @property
    def ok(self):
        return self.status == LINEARIZABLE

    def violations(self):
        return [k for k in self.keys.values() if k.status == VIOLATION]

    def report(self):
        """Human-readable text: per-key verdicts and each violation's
        minimal sub-history (times in ms from the history's first event)."""
        lines = ["linearizability: %s (%d keys, %d operations)"
                 % (self.status, len(self.keys), sum(len(k.ops) for k in self.keys.values()))]
        for key in sorted(self.keys, key=repr):
            k = self.keys[key]
            lines.append("  key %r: %s, %d operations, %d search steps"
                         % (key, k.status, len(k.ops), k.steps))
            if k.status == VIOLATION and k.minimal is not None:
                lines.append("    not linearizable; %s sub-history (%d operations), %s:"
                             % ("a 1-minimal" if k.minimal_is_1_minimal else "a reduced (shrink budget spent)",
                                len(k.minimal),
                                "whatever the register held before it" if k.minimal_from_any else
                                "from the initial value %r" % (k.initial,)))
                writers = {}
                for o in k.ops:
                    if o.kind == WRITE:
                        writers.setdefault(o.value, o)
                shown = {o.value for o in k.minimal if o.kind == WRITE}
                original = {o.id: o for o in k.ops}
                for o in k.minimal:
                    orig = original.get(o.id, o)
                    lines.append("      " + orig.describe(self.t0_ns) + (
                        "  [in progress when the sub-history starts: may or may not be in it]"
                        if orig.outcome != o.outcome else ""))
                    if o.kind == READ and o.value not in shown and o.value is not None:
                        w = writers.get(o.value)
                        lines.append("        ^ the value read was %s" % (
                            "written by no operation" if w is None else
                            ("written by this write, which did not happen (it failed):" if w.outcome == FAIL
                             else "written before the sub-history above, by:")
                            + "\n          " + w.describe(self.t0_ns)))
            if k.status == TOO_COMPLEX:
                lines.append("    search budget exhausted: neither proven nor refuted")
        return "\n".join(lines)

    def __str__(self):
        return self.report()


def check(history, initial=None, max_steps=MAX_STEPS_DEFAULT, shrink_violations=True):
    """Check a History (or a list of Op) key by key.  initial: the value of
    every register before the history (None = absent), or a dict per key.
    Returns a Result.  Each key's search is bounded by max_steps."""
    ops = history.ops() if isinstance(history, History) else [o.copy() for o in history]
    by_key = {}
    for o in ops:
        by_key.setdefault(o.key, []).append(o)
    t0 = min((o.invoke_ns for o in ops), default=0)
    results = {}
    for key, kops in by_key.items():
        init = initial.get(key) if isinstance(initial, dict) else initial
        status, steps, lin = check_key_ops(kops, init, max_steps)
        kr = KeyResult(key, status, kops, steps, lin, init)
        if status == VIOLATION and shrink_violations:
            kr.minimal, kr.minimal_is_1_minimal, kr.minimal_from_any = shrink(
                kops, init, steps_per_check=max(SHRINK_STEPS_PER_CHECK, 3 * steps))
        results[key] = kr
    return Result(results, t0)


# --- for tests of the checker on real histories ----------------------------------

def make_stale_read(ops, rng):
    """Mutate one ok read in ops (in place) to return the value of a write
    w1 that completed before another ok write w2 of the same key was invoked,
    w2 completing before the read was invoked: not linearizable whatever
    else happens.  Returns the read; AssertionError if no read qualifies."""
    writes = [o for o in ops if o.kind == WRITE and o.outcome == OK]
    reads = [o for o in ops if o.kind == READ and o.outcome == OK]
    rng.shuffle(reads)
    for r in reads:
        before = [w for w in writes if w.key == r.key and w.complete_ns < r.invoke_ns]
        if len(before) < 2:
            continue
        before.sort(key=lambda w: w.complete_ns)
        # w2: the latest-invoked write done before r; w1: any done before w2 began.
        w2 = max(before, key=lambda w: w.invoke_ns)
        w1s = [w for w in before if w.complete_ns < w2.invoke_ns and w.value != r.value]
        if w1s:
            r.value = rng.choice(w1s).value
            return r
    raise AssertionError("no read can be made stale in this history")

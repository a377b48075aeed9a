"""harness.py -- start, probe, crash and stop quiverd processes for the
integration tests, and decode FalkorDB-style replies.

Design: every server runs on 127.0.0.1 with ports picked free by the kernel,
in its own temporary data directory, with stdout+stderr appended to a log
file that conftest.py prints when a test fails.  Readiness is a condition,
never a sleep: PING answers PONG and, when INFO has a raft section, this node
is the leader (a single-node cluster elects itself; writes before that would
be refused or forwarded).  Every wait has a deadline and fails with the log
tail.  Servers are killed at teardown and, as a last resort, at interpreter
exit, so a failing test leaves no process behind.

The flags for the raft address and the admin port are not fixed by the
issue, so the harness reads `quiverd --help` once and passes whichever of
the known spellings the binary documents (see _cluster_args).

Environment:
  QUIVERD   path of the quiverd binary (default: <repo>/build/bin/quiverd)
  QUIVER    path of the quiver CLI      (default: <repo>/build/bin/quiver)
"""
import atexit
import os
import re
import signal
import socket
import subprocess
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HOST = "127.0.0.1"

READY_TIMEOUT_S = float(os.environ.get("QUIVER_READY_TIMEOUT_S", "60"))
STOP_TIMEOUT_S = 20.0

# Every server object ever made in this process; conftest.py shows the logs of
# those involved in a failing test, and atexit kills any still running.
SERVERS = []
CURRENT_TEST = [None]   # node id of the running test, set by conftest.py


def quiverd_path():
    return os.environ.get("QUIVERD") or os.path.join(REPO, "build", "bin", "quiverd")


def quiver_cli_path():
    return os.environ.get("QUIVER") or os.path.join(REPO, "build", "bin", "quiver")


def data_path():
    """The Debian sample data: $QUIVER_DEBIAN_DATA, data/debian-bookworm in
    the repo, else ../shared/data/debian-bookworm."""
    for d in ([os.environ["QUIVER_DEBIAN_DATA"]] if os.environ.get("QUIVER_DEBIAN_DATA") else []) + [os.path.join(REPO, "data", "debian-bookworm"),
              os.path.join(os.path.dirname(REPO), "shared", "data", "debian-bookworm")]:
        if os.path.isfile(os.path.join(d, "manifest.json")):
            return d
    raise FileNotFoundError("debian-bookworm data not found")


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


_HELP_CACHE = {}


def help_text(binary):
    """`binary --help` output (stdout+stderr), cached; '' if it fails."""
    if binary not in _HELP_CACHE:
        try:
            p = subprocess.run([binary, "--help"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=10)
            _HELP_CACHE[binary] = p.stdout.decode("utf-8", "replace")
        except (OSError, subprocess.TimeoutExpired):
            _HELP_CACHE[binary] = ""
    return _HELP_CACHE[binary]


def documented_flags(binary):
    return set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text(binary)))


def _cluster_args(binary):
    """Flags that keep a test server's raft port off the default (so tests
    can run side by side), in whichever spelling `--help` documents."""
    flags = documented_flags(binary)
    args = []
    for f in ("--raft-address", "--raft-addr", "--peer-address", "--bind-raft"):
        if f in flags:
            args += [f, "%s:%d" % (HOST, free_port())]
            break
    else:
        for f in ("--raft-port", "--peer-port"):
            if f in flags:
                args += [f, str(free_port())]
                break
    # The admin HTTP port is off by default (--admin-port 0); tests that
    # need it pass it in extra_args.
    return args


class ServerError(AssertionError):
    pass


class Server:
    """One quiverd process over a data directory that outlives restarts."""

    def __init__(self, workdir, extra_args=(), binary=None, name="quiverd"):
        self.binary = binary or quiverd_path()
        self.workdir = str(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.data_dir = os.path.join(self.workdir, "data")
        self.log_path = os.path.join(self.workdir, name + ".log")
        self.port = free_port()
        self.extra_args = list(extra_args)
        self.cluster_args = None
        self.proc = None
        self.starts = 0
        self.closed = False
        self.closed_in = None
        self.name = name
        SERVERS.append(self)

    # --- life cycle -------------------------------------------------------
    def argv(self):
        if self.cluster_args is None:   # fixed for the server's life: restarts reuse them
            self.cluster_args = _cluster_args(self.binary)
        return ([self.binary, "--data-dir", self.data_dir, "--port", str(self.port)]
                + self.cluster_args + self.extra_args)

    def start(self, wait=True):
        if not os.access(self.binary, os.X_OK):
            raise ServerError("quiverd binary not found or not executable: %s "
                              "(build with ./deploy/build, or set QUIVERD)" % self.binary)
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = self.argv()
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(("\n=== start #%d: %s\n" % (self.starts, " ".join(argv))).encode())
            log.flush()
            # cwd = workdir so that nothing lands in the repository even if
            # the binary ignored --data-dir and used ./quiver-data.
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True)
        self.closed = False
        if wait:
            self.wait_ready()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout_s=READY_TIMEOUT_S):
        """Until PING gives PONG and raft_role is leader (if INFO reports raft)."""
        deadline = time.monotonic() + timeout_s
        last = "no attempt"
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError("quiverd exited with status %s before becoming ready\n%s"
                                  % (self.proc.returncode, self.log_tail()))
            try:
                c = redis.Redis(host=HOST, port=self.port, socket_timeout=2,
                                socket_connect_timeout=2, decode_responses=True)
                try:
                    if c.ping():
                        role = self._raft_role(c)
                        if role in (None, "leader"):
                            return
                        last = "raft_role=%s" % role
                finally:
                    c.close()
            except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
                last = repr(e)
            time.sleep(0.02)   # poll interval of a condition wait, not a guess
        raise ServerError("quiverd not ready after %.0fs (last: %s)\n%s"
                          % (timeout_s, last, self.log_tail()))

    @staticmethod
    def _raft_role(c):
        try:
            text = c.execute_command("INFO", "raft")
        except redis.ResponseError:
            return None
        if isinstance(text, dict):      # redis-py parses INFO into a dict
            role = text.get("raft_role")
            return str(role) if role is not None else None
        if isinstance(text, bytes):
            text = text.decode()
        if not isinstance(text, str):
            return None
        m = re.search(r"^raft_role:(\S+)", text, re.M)
        return m.group(1) if m else None

    def kill9(self):
        """SIGKILL and reap; returns the exit status."""
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait(timeout=STOP_TIMEOUT_S) if self.proc else None
        with open(self.log_path, "ab") as log:
            log.write(b"=== killed with SIGKILL by the test\n")
        return rc

    def stop(self):
        """SIGTERM, wait up to STOP_TIMEOUT_S, then SIGKILL; returns the status."""
        if self.proc is None:
            return None
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with open(self.log_path, "ab") as log:
                    log.write(b"=== did not stop on SIGTERM; SIGKILL\n")
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        return self.proc.returncode

    def restart(self, wait=True):
        self.stop()
        return self.start(wait=wait)

    def close(self):
        """Stop (SIGTERM, so a sanitizer build reports leaks), then fail if
        the log holds an AddressSanitizer/UBSan/LeakSanitizer report."""
        if self.proc is not None and self.alive():
            self.stop()
        self.closed = True
        self.closed_in = CURRENT_TEST[0]
        reports = sanitizer_reports(self.log_text())
        if reports:
            raise ServerError("sanitizer report in %s:\n%s\n%s"
                              % (self.log_path, "\n".join(reports[:5]), self.log_tail(80)))

    # --- clients ----------------------------------------------------------
    def client(self, decode=True, timeout_s=120):
        return redis.Redis(host=HOST, port=self.port, decode_responses=decode,
                           socket_timeout=timeout_s, socket_connect_timeout=10)

    def socket(self, timeout_s=30):
        s = socket.create_connection((HOST, self.port), timeout=timeout_s)
        return s

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, lines=60):
        t = self.log_text().splitlines()
        return "--- %s (last %d lines) ---\n%s" % (self.log_path, min(lines, len(t)),
                                                 "\n".join(t[-lines:]))


SANITIZER_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer|ThreadSanitizer)|"
                          r"^\S+:\d+:\d+: runtime error: ", re.M)


def sanitizer_reports(text):
    """Lines of a quiverd log that start an ASan/LSan/UBSan report."""
    return [m.group(0) for m in SANITIZER_RE.finditer(text)]


@atexit.register
def _kill_all():
    for s in SERVERS:
        try:
            if s.alive():
                s.proc.kill()
                s.proc.wait(timeout=5)
        except Exception:
            pass


# --- FalkorDB replies ---------------------------------------------------------

class Result:
    """A GRAPH.QUERY reply: header (column names), rows, statistics."""

    def __init__(self, header, rows, stats):
        self.header = header
        self.rows = rows
        self.stats = stats   # the raw list of strings, in server order

    def stat(self, name):
        """Value of a statistic by its name ('Nodes created'), 0 if absent."""
        for s in self.stats:
            k, _, v = s.partition(": ")
            if k == name:
                v = v.replace(" milliseconds", "")
                return float(v) if "." in v else int(v)
        return 0

    def counters(self):
        """The statistics without execution time and cache flag, in order."""
        return [s for s in self.stats
                if not s.startswith("Query internal execution time")
                and not s.startswith("Cached execution")]

    @property
    def column(self):
        """The single column's values."""
        assert all(len(r) == 1 for r in self.rows), self.rows
        return [r[0] for r in self.rows]

    @property
    def scalar(self):
        assert len(self.rows) == 1 and len(self.rows[0]) == 1, self.rows
        return self.rows[0][0]

    def __repr__(self):
        return "Result(header=%r, rows=%r, stats=%r)" % (self.header, self.rows, self.stats)


def parse_reply(reply):
    """Split a verbose or compact reply: [stats] or [header, rows, stats]."""
    assert isinstance(reply, list), "reply is not an array: %r" % (reply,)
    if len(reply) == 1:
        stats = reply[0]
        header, rows = [], []
    else:
        assert len(reply) == 3, "reply has %d elements: %r" % (len(reply), reply)
        header, rows, stats = reply
    assert isinstance(stats, list) and all(isinstance(s, str) for s in stats), stats
    return header, rows, stats


# FalkorDB's value-type codes (resultset_formatter.h, "Client Specification").
VALUE_UNKNOWN, VALUE_NULL, VALUE_STRING, VALUE_INTEGER, VALUE_BOOLEAN, VALUE_DOUBLE, \
    VALUE_ARRAY, VALUE_EDGE, VALUE_NODE, VALUE_PATH, VALUE_MAP, VALUE_POINT = range(12)


class Node:
    def __init__(self, id, labels, props):
        self.id, self.labels, self.props = id, labels, props

    def __repr__(self):
        return "Node(%r, %r, %r)" % (self.id, self.labels, self.props)

    def __eq__(self, o):
        return isinstance(o, Node) and (self.id, self.labels, self.props) == (o.id, o.labels, o.props)


class Edge:
    def __init__(self, id, type, src, dst, props):
        self.id, self.type, self.src, self.dst, self.props = id, type, src, dst, props

    def __repr__(self):
        return "Edge(%r, %r, %r->%r, %r)" % (self.id, self.type, self.src, self.dst, self.props)


class Path:
    def __init__(self, nodes, edges):
        self.nodes, self.edges = nodes, edges

    def __repr__(self):
        return "Path(%r, %r)" % (self.nodes, self.edges)


class Schema:
    """Id -> name maps of one graph, from db.labels() etc. (rows in id order)."""

    def __init__(self, r, graph):
        self.labels = verbose(r, graph, "CALL db.labels()").column
        self.types = verbose(r, graph, "CALL db.relationshipTypes()").column
        self.keys = verbose(r, graph, "CALL db.propertyKeys()").column


def decode_compact(cell, schema=None):
    """[type, value] -> a Python value; nodes/edges resolved by schema if given."""
    assert isinstance(cell, list) and len(cell) == 2, "not a compact cell: %r" % (cell,)
    t, v = cell
    if t == VALUE_NULL:
        assert v is None, cell
        return None
    if t == VALUE_STRING:
        assert isinstance(v, str), cell
        return v
    if t == VALUE_INTEGER:
        assert isinstance(v, int), cell
        return v
    if t == VALUE_BOOLEAN:
        assert v in ("true", "false"), cell
        return v == "true"
    if t == VALUE_DOUBLE:
        return float(v)
    if t == VALUE_ARRAY:
        return [decode_compact(x, schema) for x in v]
    if t == VALUE_MAP:
        assert len(v) % 2 == 0, cell
        return {v[i]: decode_compact(v[i + 1], schema) for i in range(0, len(v), 2)}
    if t == VALUE_NODE:
        nid, labels, props = v
        return Node(nid, [schema.labels[i] if schema else i for i in labels],
                    _props(props, schema))
    if t == VALUE_EDGE:
        eid, typ, src, dst, props = v
        return Edge(eid, schema.types[typ] if schema else typ, src, dst, _props(props, schema))
    if t == VALUE_PATH:
        nodes, edges = v
        return Path(decode_compact(nodes, schema), decode_compact(edges, schema))
    raise AssertionError("unknown compact value type %r in %r" % (t, cell))


def _props(props, schema):
    out = {}
    for p in props:
        assert len(p) == 3, "compact property is [key id, type, value]: %r" % (p,)
        k = schema.keys[p[0]] if schema else p[0]
        out[k] = decode_compact([p[1], p[2]], schema)
    return out


def verbose(r, graph, q, *extra, cmd="GRAPH.QUERY"):
    """Run q, return Result with verbose cells as the server sent them."""
    reply = r.execute_command(cmd, graph, q, *extra)
    header, rows, stats = parse_reply(reply)
    assert all(isinstance(h, str) for h in header), header
    return Result(header, rows, stats)


def compact(r, graph, q, *extra, cmd="GRAPH.QUERY", schema=False):
    """Run q with --compact; cells decoded to Python values; header as names.
    schema=True resolves label/type/key ids with db.* procedures."""
    reply = r.execute_command(cmd, graph, q, "--compact", *extra)
    header, rows, stats = parse_reply(reply)
    names = []
    for h in header:
        assert isinstance(h, list) and len(h) == 2 and h[0] == 1, \
            "compact header column is [1 (scalar), name]: %r" % (h,)
        names.append(h[1])
    sch = Schema(r, graph) if schema else None
    drows = [[decode_compact(c, sch) for c in row] for row in rows]
    return Result(names, drows, stats)


def graph_dump(r, graph):
    """Everything in a graph, as a comparable value (for 'nothing changed')."""
    nodes = verbose(r, graph, "MATCH (n) RETURN id(n), labels(n), properties(n) ORDER BY id(n)")
    rels = verbose(r, graph, "MATCH (a)-[e]->(b) RETURN id(e), type(e), id(a), id(b), "
                             "properties(e) ORDER BY id(e)")
    return (nodes.rows, rels.rows)


# --- raw RESP over a socket (for malformed-input and pipelining tests) -------

class RespError(str):
    """An error reply ('-ERR ...'), kept as a value instead of raised."""


class Closed(Exception):
    pass


class RespConn:
    """A bare TCP connection that sends raw bytes and reads RESP2 replies."""

    def __init__(self, port, timeout_s=30):
        self.sock = socket.create_connection((HOST, port), timeout=timeout_s)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def command(self, *args):
        """Send one command as a RESP array of bulk strings and read its reply."""
        self.send(encode_command(*args))
        return self.read_reply()

    def _fill(self):
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise Closed("connection closed by server")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            return RespError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                self._fill()
            data, self.buf = self.buf[:n], self.buf[n + 2:]
            return data.decode("utf-8", "replace")
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read_reply() for _ in range(n)]
        raise AssertionError("not a RESP2 reply line: %r" % (line,))

    def is_closed(self, timeout_s=5):
        """True if the server closed the connection (EOF) within timeout_s and
        sent nothing more; False if it is still open (recv times out)."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout_s)
        try:
            chunk = self.sock.recv(1 << 16)
            if chunk:
                self.buf += chunk
                return False
            return True
        except socket.timeout:
            return False
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(old)

    def close(self):
        self.sock.close()


def encode_command(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


# --- clusters (several quiverd with the same --peers) ---------------------------

def start_cluster(workdir, count=3, extra_args=(), binary=None):
    """count quiverd processes on 127.0.0.1, node ids 1..count, with the same
    --peers list naming each node's raft address and, after '@', its client
    address (node/forward.c).  Started without waiting (a follower never
    becomes 'leader', so Server.wait_ready does not apply): use wait_leader.
    Returns the Server objects, index i = node id i + 1."""
    servers = [Server(os.path.join(str(workdir), "node%d" % (i + 1)), (), binary, name="node%d" % (i + 1))
               for i in range(count)]
    used = {s.port for s in servers}
    raft_ports = []
    while len(raft_ports) < count:
        p = free_port()
        if p not in used:
            used.add(p)
            raft_ports.append(p)
    peers = ",".join("%d=%s:%d@%s:%d" % (i + 1, HOST, raft_ports[i], HOST, s.port)
                     for i, s in enumerate(servers))
    for i, s in enumerate(servers):
        s.node_id = i + 1
        s.cluster_args = []   # the raft address comes from --peers
        s.extra_args = ["--node-id", str(i + 1), "--peers", peers] + list(extra_args)
        s.start(wait=False)
    return servers


def raft_info(server, timeout_s=2):
    """INFO raft of a running server as a dict, or None if it does not answer."""
    try:
        c = redis.Redis(host=HOST, port=server.port, socket_timeout=timeout_s,
                        socket_connect_timeout=timeout_s, decode_responses=True)
        try:
            return c.info("raft")
        finally:
            c.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return None


def wait_leader(servers, timeout_s=READY_TIMEOUT_S):
    """Until every server in `servers` (all must be running) answers INFO raft,
    exactly one says raft_role:leader with raft_ready:1, and all name it as
    raft_leader_id in the same term.  Returns that Server."""
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while time.monotonic() < deadline:
        for s in servers:
            if not s.alive():
                raise ServerError("%s exited with status %s while waiting for a leader\n%s"
                                  % (s.name, s.proc.returncode, s.log_tail()))
        infos = [raft_info(s) for s in servers]
        if all(i is not None for i in infos):
            leaders = [s for s, i in zip(servers, infos) if i.get("raft_role") == "leader"]
            if len(leaders) == 1:
                li = infos[servers.index(leaders[0])]
                lid, term = li.get("raft_node_id"), li.get("raft_current_term")
                if (li.get("raft_ready") == 1 and
                        all(i.get("raft_leader_id") == lid and i.get("raft_current_term") == term
                            for i in infos)):
                    return leaders[0]
            last = [(i.get("raft_role"), i.get("raft_leader_id"), i.get("raft_current_term"))
                    for i in infos]
        else:
            last = "a node does not answer INFO"
        time.sleep(0.02)   # poll interval of a condition wait
    raise ServerError("no agreed leader after %.0fs (last: %s)\n%s"
                      % (timeout_s, last, "\n".join(s.log_tail(30) for s in servers)))


def wait_digests_agree(servers, graph, timeout_s=READY_TIMEOUT_S):
    """Until QUIVER.DIGEST graph answers the same [applied index, digest] on
    every server; returns it."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        got = []
        for s in servers:
            try:
                c = s.client(timeout_s=5)
                try:
                    got.append(tuple(c.execute_command("QUIVER.DIGEST", graph)))
                finally:
                    c.close()
            except (redis.ResponseError, redis.ConnectionError, redis.TimeoutError) as e:
                got.append(repr(e))
        if all(isinstance(g, tuple) for g in got) and len(set(got)) == 1:
            return got[0]
        last = got
        time.sleep(0.02)   # poll interval of a condition wait
    raise ServerError("digests of %s never agreed within %.0fs (last: %r)" % (graph, timeout_s, last))


# --- one extra node joining a running cluster (QUIVER.CLUSTER ADD) ------------

def _free_port_pair(offset, used=()):
    """A client port p with p + offset also free (the raft port the other
    nodes derive for an id missing from their --peers: node/config.h's
    NODE_RAFT_PORT_OFFSET)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as a:
            a.bind((HOST, 0))
            p = a.getsockname()[1]
            if p + offset > 65535 or p in used or p + offset in used:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as b:
                try:
                    b.bind((HOST, p + offset))
                except OSError:
                    continue
            return p
    raise ServerError("no free port pair (p, p + %d) found" % offset)


def start_joining_node(workdir, servers, node_id, extra_args=(), binary=None, raft_port_offset=1000):
    """Start quiverd node `node_id` with --join next to the cluster
    `servers` (made by start_cluster): its --peers is the cluster's list plus
    itself, its raft port is its client port + raft_port_offset (so nodes
    whose --peers lack it find its client port), and it does not wait (a
    joining node has no leader until QUIVER.CLUSTER ADD).  Returns the
    Server, with .node_id and .raft_address set."""
    peers = None
    args = list(servers[0].extra_args)
    for i, a in enumerate(args):
        if a == "--peers":
            peers = args[i + 1]
    assert peers is not None, "servers[0] was not started by start_cluster"
    s = Server(os.path.join(str(workdir), "node%d" % node_id), (), binary, name="node%d" % node_id)
    s.port = _free_port_pair(raft_port_offset, {x.port for x in servers})
    s.node_id = node_id
    s.raft_address = "%s:%d" % (HOST, s.port + raft_port_offset)
    s.cluster_args = []
    s.extra_args = (["--node-id", str(node_id), "--join", "--peers",
                     "%s,%d=%s@%s:%d" % (peers, node_id, s.raft_address, HOST, s.port)]
                    + list(extra_args))
    s.start(wait=False)
    return s


def cluster_nodes(server, timeout_s=5):
    """QUIVER.CLUSTER NODES of server as a list of dicts (field -> value)."""
    c = server.client(timeout_s=timeout_s)
    try:
        rows = c.execute_command("QUIVER.CLUSTER", "NODES")
    finally:
        c.close()
    return [dict(zip(r[0::2], r[1::2])) for r in rows]


def close_servers(servers):
    """Close every server (resuming any a test paused with SIGSTOP first),
    then raise one ServerError naming every problem (a crash, a sanitizer
    report) found on the way.  Fixtures' teardown."""
    problems = []
    for s in servers:
        try:
            if s.alive():
                os.kill(s.proc.pid, signal.SIGCONT)   # a test may have paused it
            s.close()
        except ServerError as e:
            problems.append(str(e))
    if problems:
        raise ServerError("\n\n".join(problems))

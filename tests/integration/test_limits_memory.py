"""Issue 7, node side: no single client can make a node stall or run out of
memory.  Each probe that broke a node before is run against a real quiverd
and the limit's behaviour is asserted: the error text, the disconnect, the
resident size staying bounded, other clients still served, PING answered.

The probes (from the issue):
  - pipelined large reads whose replies are never read;
  - connections half-sending huge requests;
  - hundreds of pipelined large reads in a few KB of input;
  - memory not returned to the system after large queries;
  - long texts parsed on the loop thread, stalling PING;
plus the limits added for them: --max-entry-bytes, --maxmemory (-OOM),
--timeout, --maxclients, --client-output-buffer-limit,
--client-query-buffer-limit, --maxmemory-clients, and admission of writes
that arrive by QUIVER.FORWARD.

No timed assertions: "not stalled" is asserted as an order (another
client's PONG arrives while the long request is still being worked on),
memory as bounds with generous margins, and every wait is for a condition
with a deadline.
"""
import ctypes
import os
import socket
import struct
import time

import pytest

import harness
from harness import RespConn, RespError, encode_command

MB = 1024 * 1024
DEADLINE_S = 60.0


# --- helpers -----------------------------------------------------------------

def rss_bytes(server):
    with open("/proc/%d/statm" % server.proc.pid) as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def under_asan(server):
    """AddressSanitizer keeps freed memory in quarantine and adds shadow
    memory: resident-size bounds do not apply to such a build."""
    with open("/proc/%d/maps" % server.proc.pid) as f:
        return "libasan" in f.read()


def info(server, section="everything"):
    c = RespConn(server.port)
    try:
        text = c.command("INFO", section)
    finally:
        c.close()
    out = {}
    for line in text.split("\r\n"):
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k] = v
    return out


def info_int(server, name):
    return int(info(server)[name])


def client_list(server):
    """CLIENT LIST as {id: {field: value}} (numbers as ints)."""
    c = RespConn(server.port)
    try:
        text = c.command("CLIENT", "LIST")
        me = c.command("CLIENT", "ID")
    finally:
        c.close()
    out = {}
    for line in text.splitlines():
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        cid = int(fields["id"])
        if cid == me:
            continue
        out[cid] = {k: int(v) if v.isdigit() else v for k, v in fields.items()}
    return out


def wait_until(cond, what, timeout_s=DEADLINE_S):
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(0.05)   # poll interval of a condition wait
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def ping(server):
    c = RespConn(server.port, timeout_s=10)
    try:
        return c.command("PING")
    finally:
        c.close()


def raw_socket(server, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:   # before connect: keeps the kernel from absorbing replies
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(30)
    s.connect((harness.HOST, server.port))
    return s


def closed_by_server(sock, timeout_s=DEADLINE_S):
    """Read (and drop) until EOF or reset; True if that happened in time."""
    sock.settimeout(timeout_s)
    try:
        while True:
            if not sock.recv(1 << 20):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


BIG_READ = b'GRAPH.QUERY g "UNWIND range(1,300000) AS i RETURN i"\r\n'   # a ~4 MB reply, 55 bytes


# --- probe: unread replies ------------------------------------------------------

def test_unread_large_replies_pause_the_client(server_factory):
    """500 pipelined ~4 MB reads in 27 KB of input, replies never read: the
    connection is paused (8 reads in flight at most, output soft limit), the
    node's resident size stays bounded, other clients are served; once the
    client goes, its memory goes back to the system."""
    s = server_factory()
    r = s.client()
    r.execute_command("GRAPH.QUERY", "g", "UNWIND range(1,300000) AS i RETURN i")   # warm up
    base = rss_bytes(s)
    sock = raw_socket(s, rcvbuf=4096)
    sock.sendall(BIG_READ * 500)

    def paused():
        cl = [c for c in client_list(s).values() if c.get("omem", 0) > 0 or c.get("reads", 0) > 0]
        return len(cl) == 1 and cl[0]["reads"] == 0 and cl[0]["omem"] >= 60 * MB and cl[0]
    c = wait_until(paused, "the client to be paused with its replies pending")
    assert c["omem"] <= 64 * MB + 9 * 5 * MB, c   # soft limit + what was in flight
    assert c["qbuf"] > 0, c                          # the rest waits, unparsed
    assert under_asan(s) or rss_bytes(s) < base + 400 * MB, (base, rss_bytes(s))
    assert ping(s) == "PONG"
    assert r.execute_command("GRAPH.QUERY", "g", "RETURN 1")[1] == [[1]]
    assert info_int(s, "client_recent_max_output_buffer") >= 60 * MB
    sock.close()
    wait_until(lambda: c["id"] not in client_list(s), "the client to be gone")
    if not under_asan(s):
        wait_until(lambda: rss_bytes(s) < base + 64 * MB, "the memory to be returned")


def test_unread_replies_past_output_limit_disconnect(server_factory):
    s = server_factory(["--client-output-buffer-limit", "24mb"])
    sock = raw_socket(s, rcvbuf=4096)
    sock.sendall(BIG_READ * 40)
    # Not reading (reading would drain the output): the counter says when.
    wait_until(lambda: info_int(s, "client_output_buffer_limit_disconnections") == 1, "the disconnect")
    assert closed_by_server(sock)   # what the kernel held, then EOF
    sock.close()
    assert ping(s) == "PONG"


def test_reply_larger_than_output_limit_is_an_error(server_factory):
    # The reply cap follows --client-output-buffer-limit: one reply that
    # could never be delivered is refused with an error, not built.
    s = server_factory(["--client-output-buffer-limit", "1mb"])
    c = RespConn(s.port)
    reply = c.command("GRAPH.QUERY", "g", "UNWIND range(1,300000) AS i RETURN i")
    assert isinstance(reply, RespError) and "reply larger than 1048576 bytes" in str(reply), reply
    assert c.command("PING") == "PONG"
    c.close()


# --- probe: half-sent requests ---------------------------------------------------

def test_half_sent_huge_argument_counts(server_factory):
    """20 connections announcing 1M arguments: refused at the header."""
    s = server_factory()
    base = rss_bytes(s)
    conns = [RespConn(s.port) for _ in range(20)]
    for c in conns:
        c.send(b"*1048576\r\n$1\r\na\r\n")
    for c in conns:
        assert str(c.read_reply()) == "ERR Protocol error: invalid multibulk length"
        assert c.is_closed()
        c.close()
    assert under_asan(s) or rss_bytes(s) < base + 32 * MB
    assert ping(s) == "PONG"


def test_half_sent_requests_query_buffer_limit(server_factory):
    """Many one-byte arguments cost their bookkeeping: 1000 of them pass a
    64 KB query buffer limit long before 1000 bytes of data would."""
    s = server_factory(["--client-query-buffer-limit", "256kb", "--max-request-bytes", "1mb"])
    c = RespConn(s.port)
    c.send(b"*1024\r\n" + b"$200\r\n" + b"x" * 200 + b"\r\n")
    c.send((b"$200\r\n" + b"y" * 200 + b"\r\n") * 1022)
    reply = c.read_reply()
    assert isinstance(reply, RespError) and str(reply).startswith("ERR max query buffer length reached"), reply
    assert "--client-query-buffer-limit" in str(reply)
    assert c.is_closed()
    c.close()
    # A bulk over it: refused at its header, before any byte of it.
    c = RespConn(s.port)
    c.send(b"*3\r\n$11\r\nGRAPH.QUERY\r\n$1\r\ng\r\n$900000\r\n")
    reply = c.read_reply()
    assert isinstance(reply, RespError) and "max query buffer length" in str(reply), reply
    c.close()
    assert info_int(s, "client_query_buffer_limit_disconnections") == 2
    assert ping(s) == "PONG"


def test_half_sent_requests_maxmemory_clients(server_factory):
    """20 connections each half-sending a 30 MB argument (600 MB together)
    against --maxmemory-clients 128mb: the largest are evicted until the
    sum fits; the node stays bounded and serving."""
    s = server_factory(["--maxmemory-clients", "128mb"])
    base = rss_bytes(s)
    socks = []
    chunk = b"a" * MB
    for _ in range(20):
        sk = raw_socket(s)
        sk.sendall(b"*3\r\n$4\r\nECHO\r\n$1\r\nx\r\n$%d\r\n" % (40 * MB))
        socks.append(sk)
    for _ in range(30):   # 30 MB each, round robin: all of them grow together
        for sk in socks:
            try:
                sk.sendall(chunk)
            except OSError:
                pass   # evicted
    wait_until(lambda: info_int(s, "evicted_clients") >= 16, "evictions")
    clients = client_list(s)
    assert sum(c["tot-mem"] for c in clients.values()) <= 128 * MB, clients
    assert info_int(s, "mem_clients_normal") <= 128 * MB
    assert under_asan(s) or rss_bytes(s) < base + 256 * MB
    assert ping(s) == "PONG"
    for sk in socks:
        sk.close()


# --- probe: the loop thread never does heavy work ---------------------------------

def list_literal(n_bytes):
    """A Cypher list of n_bytes/2 + 1 ones, about n_bytes long."""
    items = (n_bytes // 2) + 1
    return "[" + "1," * (items - 1) + "1]"


@pytest.mark.parametrize("kind", ["read", "write"])
def test_long_text_does_not_stall_other_clients(server_factory, kind):
    """A 2 MB statement (a million-element list: seconds of parsing and
    planning, twice) is admitted off the loop thread: another client's PING
    is answered while it is still being worked on."""
    s = server_factory()
    before = info_int(s, "admissions_offloaded")
    lit = list_literal(2 * MB)
    text = ("RETURN size(%s) AS n" if kind == "read" else "CREATE (:Big {n: size(%s)})") % lit
    a = RespConn(s.port, timeout_s=120)
    a.send(encode_command("GRAPH.QUERY", "g", text))
    b = RespConn(s.port)
    pongs = 0
    a.sock.settimeout(0.001)
    answered = False
    deadline = time.monotonic() + 120
    while not answered and time.monotonic() < deadline:
        assert b.command("PING") == "PONG"
        pongs += 1
        try:
            chunk = a.sock.recv(1 << 16)
            answered = bool(chunk)
            a.buf += chunk
        except socket.timeout:
            pass
    assert answered
    assert pongs >= 1
    a.sock.settimeout(120)
    reply = a.read_reply()
    assert not isinstance(reply, RespError), reply
    assert info_int(s, "admissions_offloaded") == before + 1
    if kind == "write":
        r = s.client()
        assert r.execute_command("GRAPH.QUERY", "g", "MATCH (b:Big) RETURN b.n")[1] == [[MB + 1]]
    a.close()
    b.close()


def test_request_over_the_limit_refused_at_header(server_factory):
    """A 420 MB write is refused by its header (64 MiB default), nothing of
    it is buffered, and the node goes on."""
    s = server_factory()
    base = rss_bytes(s)
    c = RespConn(s.port)
    c.send(b"*3\r\n$11\r\nGRAPH.QUERY\r\n$1\r\ng\r\n$%d\r\nCREATE " % (420 * MB))
    reply = c.read_reply()
    assert isinstance(reply, RespError)
    assert str(reply) == "ERR Protocol error: request of more than 67108864 bytes (the --max-request-bytes limit)"
    assert c.is_closed()
    c.close()
    assert under_asan(s) or rss_bytes(s) < base + 16 * MB
    assert ping(s) == "PONG"


def test_write_over_entry_limit(server_factory):
    s = server_factory(["--max-entry-bytes", "1mb"])
    r = s.client()
    lit = list_literal(2 * MB)
    with pytest.raises(Exception) as e:
        r.execute_command("GRAPH.QUERY", "g", "CREATE (:P {n: size(%s)})" % lit)
    assert "does not fit in one raft log entry" in str(e.value) and "--max-entry-bytes is 1048576" in str(e.value)
    # Reads of that size are fine; nothing was written.
    assert r.execute_command("GRAPH.QUERY", "g", "RETURN size(%s)" % lit)[1] == [[MB + 1]]
    assert r.execute_command("GRAPH.QUERY", "g", "MATCH (n) RETURN count(n)")[1] == [[0]]


# --- QUIVER.FORWARD is no way around admission -----------------------------------

_xxh = ctypes.CDLL("libxxhash.so.0")
_xxh.XXH3_64bits.restype = ctypes.c_uint64
_xxh.XXH3_64bits.argtypes = [ctypes.c_char_p, ctypes.c_size_t]


def forward_write_blob(graph, text, seq):
    """A forward request (node/forward.h, version 1): a write command."""
    g, t = graph.encode(), text.encode()
    body = (struct.pack(">BBBQQ", 1, 1, 1, 0x5eed, seq) + struct.pack(">I", len(g)) + g
            + struct.pack(">I", len(t)) + t)
    return body + struct.pack(">Q", _xxh.XXH3_64bits(body, len(body)))


def forward_response(blob):
    """(status, index, payload) of a forward response."""
    version, typ, status, index, plen = struct.unpack(">BBBQI", blob[:15])
    assert version == 1 and typ == 1
    return status, index, blob[15:15 + plen]


def forward(s, blob):
    sk = raw_socket(s)
    sk.sendall(encode_command("QUIVER.FORWARD", blob))
    data = b""
    while b"\r\n" not in data:
        data += sk.recv(1 << 16)
    head, _, rest = data.partition(b"\r\n")
    assert head.startswith(b"$"), data
    n = int(head[1:])
    while len(rest) < n + 2:
        rest += sk.recv(1 << 16)
    sk.close()
    return forward_response(rest[:n])


REPL_OK, REPL_INVALID = 0, 5


def test_forward_is_admitted(server_factory):
    s = server_factory()
    status, _, payload = forward(s, forward_write_blob("g", "CREATE (:P", 1))
    assert status == REPL_INVALID and b"line 1" in payload, payload   # the syntax error, not proposed
    status, _, payload = forward(s, forward_write_blob("g", "MATCH (n) RETURN n", 2))
    assert status == REPL_INVALID and b"does not write" in payload, payload
    long_bad = "CREATE (:P {v: size(%s)}) RETURN" % list_literal(64 * 1024)   # admitted off the loop
    status, _, payload = forward(s, forward_write_blob("g", long_bad, 3))
    assert status == REPL_INVALID, payload
    status, index, _ = forward(s, forward_write_blob("g", "CREATE (:P {v: 1})", 4))
    assert status == REPL_OK and index > 0
    r = s.client()
    assert r.execute_command("GRAPH.QUERY", "g", "MATCH (n:P) RETURN n.v")[1] == [[1]]


# --- --maxmemory, --timeout, --maxclients ------------------------------------------

def test_maxmemory_refuses_queries_not_ping(server_factory):
    s = server_factory(["--maxmemory", "1mb"])   # the resident size is always above
    c = RespConn(s.port)
    reply = c.command("GRAPH.QUERY", "g", "RETURN 1")
    assert isinstance(reply, RespError)
    assert str(reply) == "OOM command not allowed when used memory > 'maxmemory'."
    assert isinstance(c.command("GRAPH.RO_QUERY", "g", "RETURN 1"), RespError)
    assert c.command("PING") == "PONG"
    assert "used_memory:" in c.command("INFO", "memory")
    assert c.command("AUTH", "default", "x") == "OK"
    c.close()
    assert info_int(s, "oom_rejected_commands") == 2
    assert info_int(s, "maxmemory") == MB


def test_idle_timeout(server_factory):
    s = server_factory(["--timeout", "1"])
    idle = RespConn(s.port)
    assert idle.command("PING") == "PONG"
    busy = RespConn(s.port, timeout_s=120)
    # Seconds of work: in flight, so not idle.
    busy.send(encode_command("GRAPH.QUERY", "g", "UNWIND range(1,10000000) AS i WITH i WHERE i < 0 RETURN count(i)"))
    assert idle.is_closed(timeout_s=30)   # closed after 1 s idle
    idle.close()
    assert busy.read_reply()[1] == [[0]]
    busy.close()
    assert info_int(s, "client_idle_timeout_disconnections") >= 1


def test_maxclients(server_factory):
    s = server_factory(["--maxclients", "3"])
    opened, refused = [], None
    for _ in range(10):   # a connection of the harness may still be open: count until refused
        c = RespConn(s.port)
        reply = c.command("PING")
        if isinstance(reply, RespError):
            refused = reply
            c.close()
            break
        opened.append(c)
    assert str(refused) == "ERR max number of clients reached"   # Redis' text
    assert 1 <= len(opened) <= 3
    for c in opened:
        c.close()
    # Once the server has seen those closes, INFO gets through again.
    # (INFO itself may be refused once more before those closes are seen.)
    assert int(wait_until(lambda: info(s).get("rejected_connections"), "a free slot")) >= 1


# --- what INFO, /metrics and --help show --------------------------------------------

def test_info_metrics_and_help(server_factory):
    admin = harness.free_port()
    s = server_factory(["--admin-port", str(admin)])
    fields = info(s)
    for name in ("used_memory", "used_memory_rss", "maxmemory", "maxmemory_clients", "connected_clients",
                 "client_recent_max_input_buffer", "client_recent_max_output_buffer", "rejected_connections",
                 "evicted_clients", "client_query_buffer_limit_disconnections",
                 "client_output_buffer_limit_disconnections", "client_idle_timeout_disconnections",
                 "oom_rejected_commands", "mem_clients_normal", "admissions_offloaded"):
        assert name in fields, name
    assert int(fields["maxmemory"]) > 0   # protected out of the box
    sk = socket.create_connection((harness.HOST, admin), timeout=10)
    sk.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    body = b""
    while True:
        chunk = sk.recv(1 << 16)
        if not chunk:
            break
        body += chunk
    sk.close()
    for name in (b"quiver_used_memory_bytes", b"quiver_maxmemory_bytes", b"quiver_clients_memory_bytes",
                 b"quiver_evicted_clients_total", b"quiver_client_output_buffer_limit_disconnections_total",
                 b"quiver_client_query_buffer_limit_disconnections_total", b"quiver_oom_rejected_commands_total"):
        assert name in body, name
    text = harness.help_text(harness.quiverd_path())
    for flag in ("--max-request-bytes", "--max-entry-bytes", "--client-output-buffer-limit",
                 "--client-query-buffer-limit", "--maxmemory", "--maxmemory-clients", "--maxclients",
                 "--max-clients", "--timeout", "--write-work-max", "--query-memory-max-bytes"):
        assert flag in text, flag


# --- large writes and results through a follower ------------------------------------

def test_large_write_and_result_through_a_follower(cluster_factory):
    """A 1 MB write sent to a follower travels to the leader (its text moved,
    not copied, into the forwarder), is admitted there off the loop thread,
    and a write whose result is megabytes comes back (encoded on the
    leader's offload pool, decoded on the follower's) intact; a text that
    admission refuses is refused by the leader too."""
    servers = cluster_factory()
    leader = harness.wait_leader(servers)
    follower = [s for s in servers if s is not leader][0]
    r = follower.client()
    before = info_int(leader, "admissions_offloaded")
    lit = list_literal(MB)
    reply = r.execute_command("GRAPH.QUERY", "g", "CREATE (:Big {n: size(%s)})" % lit)
    assert any("Nodes created: 1" in str(x) for x in reply[-1]), reply
    assert info_int(leader, "admissions_offloaded") >= before + 1   # QUIVER.FORWARD was admitted too
    # A result of ~3 MB: 100,000 rows of a 20-byte string.
    jobs_leader, jobs_follower = info_int(leader, "offload_jobs_total"), info_int(follower, "offload_jobs_total")
    res = r.execute_command("GRAPH.QUERY", "g",
                            "UNWIND range(1,100000) AS i CREATE (x:X {i: i}) RETURN x.i AS i, 'abcdefghijklmnopqrst' AS s")
    rows = res[1]
    assert len(rows) == 100000 and rows[0] == [1, "abcdefghijklmnopqrst"] and rows[-1][0] == 100000
    # Encoded on the leader's pool (result -> forward response); on the
    # follower's, decoded (response -> result) and encoded (-> RESP).
    assert info_int(leader, "offload_jobs_total") >= jobs_leader + 1
    assert info_int(follower, "offload_jobs_total") >= jobs_follower + 2
    assert r.execute_command("GRAPH.QUERY", "g", "MATCH (b:Big) RETURN b.n")[1] == [[MB // 2 + 1]]
    with pytest.raises(Exception) as e:
        r.execute_command("GRAPH.QUERY", "g", "CREATE (:Big {n: size(%s)}) RETURN" % lit)
    assert "line 1" in str(e.value) or "Invalid input" in str(e.value), e.value
    harness.wait_digests_agree(servers, "g")


def test_pipelined_large_echoes_in_order(server_factory):
    """Commands answered on the loop thread are dispatched at most ~1 MiB per
    connection per loop iteration (server.h); a pipeline of 40 large ECHOs
    still comes back complete and in order while another client is served."""
    s = server_factory()
    c = RespConn(s.port)
    args = [bytes([65 + i % 26]) * (500 * 1024 + i) for i in range(40)]
    c.send(b"".join(encode_command("ECHO", a) for a in args))
    assert ping(s) == "PONG"
    for a in args:
        got = c.read_reply()
        assert len(got) == len(a) and got[:1] == a[:1].decode()
    c.close()

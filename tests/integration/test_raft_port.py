"""Hostile bytes on a node's raft port (issue 7).

Anyone who can reach the raft port can send raft's wire format (handshake,
then messages; raft's src/uv_tcp_listen.c, uv_recv.c, uv_encoding.c).  Before
deploy/patches/0001-uv-validate-messages-from-peers.patch one AppendEntries
whose entry type is 0 -- 80 bytes after the 40-byte handshake -- killed the
node with SIGSEGV inside libraft.

Well-formed messages from a host posing as a leader
(tests/fuzz/crashes/raft-port-hostile-leader.md): before deploy/patches/0002
an AppendEntries with a higher term and an entry that conflicts with the
committed bootstrap entry killed the node with a double free inside libraft
(test_append_entries_conflicting_with_a_committed_entry); before
deploy/patches/0003 an AppendEntries of the term in which the node had just
re-elected itself corrupted its leader state and got its entry committed
(test_append_entries_in_the_term_the_node_leads).

Each case connects to a running single-node quiverd's raft port, sends one
hostile handshake or message, and asserts that the node:
  - is still alive and answers PING;
  - closed that connection (when the bytes are malformed, not merely
    incomplete), so the peer cannot keep state on the node;
  - still commits a write;
and at the end that a restart on the same data directory comes back with
every write.  Traffic only to 127.0.0.1, on ports the harness picked.

Byte layouts (little-endian u64 unless said):
  handshake: protocol (1), server id, address length (padded to 8, nul
             included), address bytes
  message:   preamble word 0 (byte 0 type, byte 2 version), header length,
             then the header, then the payload
"""
import socket
import struct
import time

import pytest

import harness

RAFT_APPEND_ENTRIES = 1
RAFT_APPEND_ENTRIES_RESULT = 2
RAFT_INSTALL_SNAPSHOT = 5
CLOSE_TIMEOUT_S = 10          # deadline for the node to close a hostile connection
GRAPH = "raftport"


def u64(*values):
    return b"".join(struct.pack("<Q", v) for v in values)


def handshake(server_id=2, address=b"127.0.0.1:1"):
    body = address + b"\0"
    body += b"\0" * (-len(body) % 8)
    return u64(1, server_id, len(body)) + body


def preamble(msg_type, header_len, version=0):
    return u64(msg_type | (version << 16), header_len)


def append_entries_header(entries, term=0, entry_term=1):
    """entries: list of (type, size); term 0 is older than any real term, so a
    well-formed message is refused as stale rather than obeyed."""
    h = u64(term, 0, 0, 0) + u64(len(entries))
    for etype, size in entries:
        h += u64(entry_term) + struct.pack("<BBBBI", etype, 0, 0, 0, size)
    return h + u64(0)


def install_snapshot_header(conf, data_len):
    return u64(0, 1, 1, 1, len(conf)) + conf + u64(data_len, 0)


def raft_port(server):
    args = server.argv()
    for flag in ("--raft-address", "--raft-addr", "--peer-address", "--bind-raft"):
        if flag in args:
            return int(args[args.index(flag) + 1].rsplit(":", 1)[1])
    return server.port + 1000   # quiverd's default


# --- the hostile inputs ------------------------------------------------------

BAD_ENTRY_TYPE = handshake() + preamble(RAFT_APPEND_ENTRIES, 64) + append_entries_header([(0, 8)])
assert len(BAD_ENTRY_TYPE) == 40 + 80

CASES = {
    # the crash of the issue: entry type 0 (NULL dereference in libraft)
    "append_entries_entry_type_0": (BAD_ENTRY_TYPE, True),
    # a header length of 2^40: must not be allocated
    "header_length_huge": (handshake() + preamble(RAFT_APPEND_ENTRIES, 1 << 40), True),
    # entries announcing 4 GiB - 8 bytes each: over the entry bound
    "payload_huge": (handshake() + preamble(RAFT_APPEND_ENTRIES, 80)
                     + append_entries_header([(1, 0xFFFFFFF8), (1, 0xFFFFFFF8)]), True),
    # a count of entries that does not fit in the header (over-read before the patch)
    "entry_count_past_header": (handshake() + preamble(RAFT_APPEND_ENTRIES, 48)
                                + u64(0, 0, 0, 0, 1000000, 0), True),
    # an InstallSnapshot header of 8 bytes (over-read before the patch)
    "install_snapshot_short": (handshake() + preamble(RAFT_INSTALL_SNAPSHOT, 8) + u64(1), True),
    # a configuration that fails after a valid server (double free before the patch)
    "install_snapshot_bad_configuration": (
        handshake() + (lambda conf: preamble(RAFT_INSTALL_SNAPSHOT, len(install_snapshot_header(conf, 8)))
                       + install_snapshot_header(conf, 8))(
            b"\x01" + u64(2) + u64(5) + b"x.y\0\x01" + u64(5) + b"z.w\0\x01"), True),
    # message type 0 and 200
    "message_type_unknown": (handshake() + preamble(0, 8) + u64(0) + preamble(200, 8) + u64(0), True),
    # handshakes: wrong protocol, huge address, address without its nul, zero length
    "handshake_wrong_protocol": (u64(6, 2, 16) + b"127.0.0.1:1\0\0\0\0\0", True),
    "handshake_address_huge": (u64(1, 2, 1 << 40), True),
    "handshake_address_unterminated": (u64(1, 2, 16) + b"127.0.0.1:123456", True),
    "handshake_address_empty": (u64(1, 2, 0), True),
    "garbage": (bytes(range(256)) * 4, True),
    # truncated: half a handshake, then half a message; the node waits, we hang up
    "handshake_truncated": (u64(1, 2)[:13], False),
    "message_truncated": (BAD_ENTRY_TYPE[:40 + 50], False),
}


# Well-formed, from a host posing as the leader of term 100: prev 0/0 and one
# 8-byte command entry 1^100, which conflicts with the committed bootstrap
# entry 1^1.  A double free in raft 0.22.1 (SIGABRT) until patch 0002; the
# hex in tests/fuzz/crashes/raft-port-hostile-leader.md is this message plus
# one stray byte.
HOSTILE_TERM = 100
CONFLICT_WITH_COMMITTED = (handshake() + preamble(RAFT_APPEND_ENTRIES, 64, version=1)
                           + append_entries_header([(1, 8)], term=HOSTILE_TERM,
                                                   entry_term=HOSTILE_TERM)
                           + b"\x01" * 8)
assert len(CONFLICT_WITH_COMMITTED) == 40 + 16 + 64 + 8


def append_entries(term, prev_index, prev_term, entries=()):
    """An AppendEntries message (no handshake): entries is a list of
    (term, type, payload bytes); the payloads are padded to 8 bytes."""
    h = u64(term, prev_index, prev_term, 0) + u64(len(entries))
    payload = b""
    for eterm, etype, data in entries:
        h += u64(eterm) + struct.pack("<BBBBI", etype, 0, 0, 0, len(data))
        payload += data + b"\0" * (-len(data) % 8)
    h += u64(0)
    return preamble(RAFT_APPEND_ENTRIES, len(h), version=1) + h + payload


def wait_closed_by_peer(sock, timeout_s):
    """True once the node closed the connection (EOF or reset), within the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        except (ConnectionResetError, BrokenPipeError):
            return True
        if data == b"":
            return True
        # raft never answers before a whole message; keep reading until EOF
    return False


def send_hostile(port, data, expect_close):
    s = socket.create_connection((harness.HOST, port), timeout=10)
    try:
        try:
            s.sendall(data)
        except (ConnectionResetError, BrokenPipeError):
            # the node closed while we were still sending: that is the point
            return
        if expect_close:
            assert wait_closed_by_peer(s, CLOSE_TIMEOUT_S), \
                "the node kept a connection open after malformed raft bytes"
    finally:
        s.close()


def assert_serving(server, r, expected_count):
    assert server.alive(), "quiverd died:\n" + server.log_tail()
    assert r.ping() is True
    res = harness.verbose(r, GRAPH, "CREATE (:Hit {n: %d})" % expected_count)
    assert res.stat("Nodes created") == 1
    got = harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar
    assert got == expected_count


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    s = harness.Server(tmp_path_factory.mktemp("raftport"))
    s.start()
    yield s
    s.close()


def test_each_hostile_input_leaves_the_node_serving(node):
    port = raft_port(node)
    r = node.client()
    count = 0
    try:
        for name, (data, expect_close) in CASES.items():
            try:
                send_hostile(port, data, expect_close)
            except AssertionError as e:
                raise AssertionError("%s: %s" % (name, e))
            count += 1
            try:
                assert_serving(node, r, count)
            except AssertionError as e:
                raise AssertionError("after %s: %s" % (name, e))
    finally:
        r.close()


def test_many_hostile_connections_at_once(node):
    """The crash input on many connections in one go, then the node still serves."""
    port = raft_port(node)
    socks = []
    try:
        for _ in range(32):
            s = socket.create_connection((harness.HOST, port), timeout=10)
            socks.append(s)
        for s in socks:
            try:
                s.sendall(BAD_ENTRY_TYPE)
            except (ConnectionResetError, BrokenPipeError):
                pass
        for s in socks:
            assert wait_closed_by_peer(s, CLOSE_TIMEOUT_S)
    finally:
        for s in socks:
            s.close()
    r = node.client()
    try:
        before = harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar
        assert_serving(node, r, before + 1)
    finally:
        r.close()


def test_restart_after_hostile_input_keeps_every_write(node):
    port = raft_port(node)
    send_hostile(port, BAD_ENTRY_TYPE, True)
    r = node.client()
    try:
        before = harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar
    finally:
        r.close()
    node.restart()
    r = node.client()
    try:
        assert harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar == before
        send_hostile(raft_port(node), BAD_ENTRY_TYPE, True)
        assert_serving(node, r, before + 1)
    finally:
        r.close()


def raft_term(server):
    info = harness.raft_info(server)
    return None if info is None else info.get("raft_current_term")


def wait_raft_term_at_least(server, term, timeout_s=CLOSE_TIMEOUT_S):
    """Until INFO raft reports a current term >= term: the node read and
    obeyed the message that carried it."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        assert server.alive(), "quiverd died:\n" + server.log_tail()
        last = raft_term(server)
        if last is not None and last >= term:
            return last
        time.sleep(0.02)   # poll interval of a condition wait
    raise AssertionError("raft term still %r after %ss, expected >= %d\n%s"
                         % (last, timeout_s, term, server.log_tail()))


def test_append_entries_conflicting_with_a_committed_entry(node):
    """The node ignores the conflicting entry, follows the higher term like
    for any message, elects itself again, keeps serving and commits writes;
    the term it followed was persisted (the step that carried it succeeded),
    and a restart comes back with every write."""
    port = raft_port(node)
    r = node.client()
    try:
        before = harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar
    finally:
        r.close()

    s = socket.create_connection((harness.HOST, port), timeout=10)
    try:
        s.sendall(CONFLICT_WITH_COMMITTED)
        wait_raft_term_at_least(node, HOSTILE_TERM)
    finally:
        s.close()
    harness.wait_leader([node])
    r = node.client()
    try:
        assert_serving(node, r, before + 1)
        info = harness.raft_info(node)
        assert info["raft_commit_index"] >= 2
    finally:
        r.close()

    node.restart()
    assert raft_term(node) >= HOSTILE_TERM, "the term followed before the restart was not persisted"
    r = node.client()
    try:
        assert harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar == before + 1
        assert_serving(node, r, before + 2)
    finally:
        r.close()


class RaftListener:
    """A raft port of our own on 127.0.0.1, so that the node's replies to a
    hostile sender that gives this address in its handshake reach the test:
    the node dials it, sends its handshake, then messages."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind((harness.HOST, 0))
        self.sock.listen(4)
        self.address = ("%s:%d" % self.sock.getsockname()).encode()
        self.conn = None

    def _read(self, n, deadline):
        data = b""
        while len(data) < n:
            self.conn.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise AssertionError("the node closed its connection to our raft port")
            data += chunk
        return data

    def wait_append_entries_result(self, rejected, timeout_s=CLOSE_TIMEOUT_S):
        """Read the node's messages until an AppendEntries result with the
        given rejected index; returns the (term, rejected, last_log_index) of
        every result read, that one last."""
        deadline = time.monotonic() + timeout_s
        if self.conn is None:
            self.sock.settimeout(timeout_s)
            self.conn, _ = self.sock.accept()
            _, _, addr_len = struct.unpack("<QQQ", self._read(24, deadline))
            self._read(addr_len, deadline)
        results = []
        while True:
            word0, header_len = struct.unpack("<QQ", self._read(16, deadline))
            header = self._read(header_len, deadline)
            if word0 & 0xFF == RAFT_APPEND_ENTRIES_RESULT:
                results.append(struct.unpack("<QQQ", header[:24]))
                if results[-1][1] == rejected:
                    return results

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.sock.close()


def test_append_entries_in_the_term_the_node_leads(node):
    """A single voter that followed a hostile term elects itself again in that
    same term (raft 0.22.1 does not start a new term for a single voter).  An
    AppendEntries of that term then reached raft as if the node were a
    follower: follower fields written over its leader state, the sender's
    entry appended to the leader's log and committed, the heap corrupt (glibc
    aborted at shutdown).  Since patch 0003 the leader ignores it."""
    port = raft_port(node)
    r = node.client()
    try:
        before = harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar
    finally:
        r.close()
    term = (raft_term(node) or 0) + 100
    listener = RaftListener()
    hello = handshake(address=listener.address)
    try:
        # 1. A heartbeat of a higher term: the node follows it, then elects
        #    itself again in that same term.
        s = socket.create_connection((harness.HOST, port), timeout=10)
        try:
            s.sendall(hello + append_entries(term, 0, 0))
            wait_raft_term_at_least(node, term)
        finally:
            s.close()
        harness.wait_leader([node])
        assert raft_term(node) == term
        last = harness.raft_info(node)["raft_commit_index"]

        # 2. An entry of that term after our last one, then a stale probe on
        #    the same connection: raft handles a connection's messages in
        #    order, so its reply to the probe means it handled the entry.
        probe_prev = 7
        s = socket.create_connection((harness.HOST, port), timeout=10)
        try:
            s.sendall(hello + append_entries(term, last, term, [(term, 1, b"\x02" * 8)])
                      + append_entries(term - 1, probe_prev, term - 1))
            results = listener.wait_append_entries_result(rejected=probe_prev)
        finally:
            s.close()
        assert results[-1][0] == term, results
        # (The success reply to the heartbeat of step 1 has last_log_index 0.)
        assert not any(rejected == 0 and last_log_index > last
                       for _, rejected, last_log_index in results), \
            "the leader acknowledged entries from another leader of its term: %r" % (results,)
    finally:
        listener.close()

    # The entry was not appended: our write is the next entry (and nothing
    # else is written meanwhile; a read would add a barrier entry).
    assert harness.raft_info(node)["raft_role"] == "leader"
    r = node.client()
    try:
        res = harness.verbose(r, GRAPH, "CREATE (:Hit {n: %d})" % (before + 1))
        assert res.stat("Nodes created") == 1
        assert harness.raft_info(node)["raft_commit_index"] == last + 1
        assert harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar == before + 1
    finally:
        r.close()

    assert node.stop() == 0, "quiverd did not stop cleanly:\n" + node.log_tail()
    node.start()
    r = node.client()
    try:
        assert harness.verbose(r, GRAPH, "MATCH (h:Hit) RETURN count(h)").scalar == before + 1
        assert_serving(node, r, before + 2)
    finally:
        r.close()

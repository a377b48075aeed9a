#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<harness>/ (run it again after
a format change; the files are committed, a few KiB each harness but cypher).

Seeds are small, valid inputs in each harness's input layout (see the top
comment of tests/fuzz/fuzz_<harness>.c):
  resp     first byte picks the request size bound, then a client's byte stream
  cypher   queries from tests/integration/test_cypher.py's style and the
           openCypher TCK features (../shared/opencypher-tck, when present)
  command  a log entry BODY (version, count, commands, zero padding) without
           its checksum: the harness's re-sealing pass appends the XXH3-64,
           so these decode as valid entries there (Python has no XXH3 here)
  result   a result body without its checksum, likewise
  forward  first byte 0 request body / 1 response body / 2 RESP replies
  raft     first byte even: type, version, message header; odd: a
           configuration encoding

Usage: python3 tests/fuzz/make_corpus.py [--tck DIR]
Deterministic: the same sources give the same files (named by SHA-1).
"""
import argparse
import hashlib
import os
import re
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
TCK_QUERIES_MAX = 400          # keeps the cypher corpus around 100 KiB
TCK_QUERY_SIZE_MAX_BYTES = 1024


def be(fmt, *v):
    return struct.pack(">" + fmt, *v)


def le64(*v):
    return b"".join(struct.pack("<Q", x) for x in v)


def write(harness, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


# --- resp ------------------------------------------------------------------

def resp_array(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


RESP_SEEDS = [
    resp_array("PING"),
    resp_array("GRAPH.QUERY", "g", "MATCH (n) RETURN n", "--compact"),
    resp_array("GRAPH.QUERY", "g", "CYPHER x=1 name='a' CREATE (:P {v: $x, n: $name})"),
    resp_array("GRAPH.RO_QUERY", "g", "MATCH (a)-[r:KNOWS]->(b) RETURN a.name, b.name LIMIT 10"),
    resp_array("GRAPH.DELETE", "g") + resp_array("GRAPH.LIST") + resp_array("INFO", "raft"),
    resp_array("AUTH", "user", "secret") + resp_array("HELLO", "2") + resp_array("CLIENT", "SETINFO", "lib-name", "x"),
    b"PING\r\n",
    b"GRAPH.QUERY g \"MATCH (n) RETURN n\" --compact\r\n",
    b"set 'a b' \"c\\x41\\n\" ''\r\n\r\n",
    b"*0\r\n*-1\r\n" + resp_array("SELECT", "0"),
    resp_array("QUIVER.FORWARD", b"\x01\x01\x01" + b"\0" * 20),
]


def make_resp():
    for i, seed in enumerate(RESP_SEEDS):
        write("resp", bytes([2 if i % 3 else 1]) + seed)   # default bound, 4 KiB
    write("resp", b"\x00" + resp_array("GRAPH.QUERY", "g", "x" * 80))  # over the 64-byte bound


# --- cypher ----------------------------------------------------------------

CYPHER_SEEDS = [
    "MATCH (n) RETURN n",
    "CREATE (a:Person {name: 'Ann', age: 42})-[:KNOWS {since: 2020}]->(b:Person {name: \"Bob\"}) RETURN a, b",
    "MATCH (a:Person)-[r:KNOWS*1..3]->(b) WHERE a.age > 30 AND b.name =~ 'B.*' RETURN a.name AS x, count(r) ORDER BY x DESC SKIP 1 LIMIT 5",
    "MERGE (n:City {name: $name}) ON CREATE SET n.created = timestamp() ON MATCH SET n.seen = n.seen + 1",
    "CYPHER name='Oslo' limit=3 MATCH (c:City {name: $name}) RETURN c LIMIT $limit",
    "UNWIND range(1, 10) AS i WITH i WHERE i % 2 = 0 RETURN collect(i), sum(i), avg(i)",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n:Person) SET n:Employee, n += {badge: 1} REMOVE n.age RETURN n",
    "CREATE INDEX ON :Person(name)",
    "DROP INDEX ON :Person(name)",
    "OPTIONAL MATCH (a)-[:X]-(b) RETURN CASE WHEN a IS NULL THEN 'none' ELSE a.name END",
    "MATCH p = (a)-[*]->(b) RETURN nodes(p), relationships(p), length(p)",
    "RETURN [x IN [1,2,3] WHERE x > 1 | x * 2], {a: 1, b: [true, null, 1.5e3]}, 'esc\\'\\n\\u00e9'",
    "MATCH (a) RETURN a.name UNION ALL MATCH (b) RETURN b.name",
    "RETURN toInteger('12'), toUpper('x'), substring('hello', 1, 3), abs(-1), rand(), randomUUID()",
    "MATCH (`weird name`:`La bel`) RETURN `weird name` // comment\n/* block */",
    "EXPLAIN MATCH (n) RETURN n",
    "RETURN 9223372036854775807, -9223372036854775808, 0x1F, 1.0e-10, .5",
    "MATCH (n) WHERE n.name STARTS WITH 'A' OR n.name ENDS WITH 'z' XOR NOT n.name CONTAINS 'q' RETURN DISTINCT n",
    "WITH 1 AS x CALL db.labels() YIELD label RETURN label",
]


def tck_queries(tck_dir):
    """The Cypher text of every query block in the TCK's .feature files."""
    out = []
    feats = []
    for root, _, files in os.walk(os.path.join(tck_dir, "features")):
        feats += [os.path.join(root, f) for f in files if f.endswith(".feature")]
    for path in sorted(feats):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for m in re.finditer(r'"""\n(.*?)\n\s*"""', text, re.S):
            q = "\n".join(line.strip() for line in m.group(1).splitlines()).strip()
            if q and len(q.encode()) <= TCK_QUERY_SIZE_MAX_BYTES and not q.startswith("|"):
                out.append(q)
    # keep a spread of the whole suite, not the first files only
    out = sorted(set(out))
    if len(out) > TCK_QUERIES_MAX:
        step = len(out) / TCK_QUERIES_MAX
        out = [out[int(i * step)] for i in range(TCK_QUERIES_MAX)]
    return out


def make_cypher(tck_dir):
    for q in CYPHER_SEEDS:
        write("cypher", q.encode())
    if tck_dir and os.path.isdir(tck_dir):
        for q in tck_queries(tck_dir):
            write("cypher", q.encode())
    else:
        print("note: no TCK at %s; cypher corpus without it" % tck_dir, file=sys.stderr)


# --- command (log entry bodies) ----------------------------------------------

def command(kind, origin, seq, ts, seed, graph, text):
    return (be("B", kind) + be("QQqQ", origin, seq, ts, seed)
            + be("I", len(graph)) + graph + be("I", len(text)) + text)


def entry_body(cmds):
    body = be("B", 1) + be("I", len(cmds)) + b"".join(cmds)
    body += b"\0" * (-(len(body) + 8) % 8)   # the entry (body + checksum) is a multiple of 8
    return body


def make_command():
    q = command(1, 0x1234, 1, 1700000000000, 42, b"g", b"CREATE (:P {v: 1})")
    d = command(2, 0x1234, 2, 1700000000001, 43, b"g", b"")
    p = command(1, 7, 3, -1, 0, b"social", b"CYPHER x=1 MERGE (n:N {v: $x}) RETURN n")
    write("command", entry_body([q]))
    write("command", entry_body([q, d, p]))
    write("command", entry_body([d]))


# --- result bodies ------------------------------------------------------------

def qstr(b):
    return be("I", len(b)) + b


def value(tag, payload=b""):
    return be("B", tag) + payload


def result_body(status=0, wrote=0, error=b"", columns=(), rows=()):
    out = be("BBB", 1, status, wrote) + qstr(error)
    out += be("10Q", *range(10)) + be("d", 1.25)
    out += be("I", len(columns)) + b"".join(qstr(c) for c in columns)
    out += be("Q", len(rows)) + b"".join(b"".join(r) for r in rows)
    return out


def make_result():
    write("result", result_body())
    write("result", result_body(status=1, error=b"Invalid input 'X': expected MATCH"))
    node = be("Q", 5) + be("B", 1) + be("I", 1) + be("I", 0) + qstr(b"Person") \
        + be("I", 1) + be("I", 0) + qstr(b"name") + value(4, qstr(b"Ann"))
    edge = be("QQQ", 9, 5, 6) + be("I", 0) + be("B", 1) + qstr(b"KNOWS") + be("I", 0)
    node6 = be("Q", 6) + be("B", 0)
    rows = [
        [value(0), value(1, be("B", 1)), value(2, be("q", -7)), value(3, be("d", 2.5)),
         value(4, qstr(b"str")), value(5, be("I", 2) + value(2, be("q", 1)) + value(0)),
         value(6, be("I", 1) + qstr(b"k") + value(4, qstr(b"v")))],
    ]
    write("result", result_body(wrote=1, columns=[b"n", b"b", b"i", b"d", b"s", b"l", b"m"], rows=rows))
    write("result", result_body(columns=[b"a"], rows=[[value(7, node)]]))
    write("result", result_body(columns=[b"r"], rows=[[value(8, edge)]]))
    write("result", result_body(columns=[b"p"], rows=[[value(9, be("I", 2) + node + node6 + edge)]]))


# --- forward ------------------------------------------------------------------

def make_forward():
    write("forward", b"\x00" + be("BB", 1, 1) + be("B", 1) + be("QQ", 99, 1)
          + qstr(b"g") + qstr(b"CREATE (:X)"))
    write("forward", b"\x00" + be("BB", 1, 2))
    write("forward", b"\x01" + be("BBB", 1, 1, 0) + be("Q", 17) + qstr(result_body()))
    write("forward", b"\x01" + be("BBB", 1, 2, 0) + be("Q", 18) + qstr(b""))
    write("forward", b"\x01" + be("BBB", 1, 1, 1) + be("Q", 0) + qstr(b"outcome unknown: leader changed"))
    write("forward", b"\x02" + b"$5\r\nhello\r\n+OK\r\n-ERR not leader\r\n$0\r\n\r\n")


# --- raft -----------------------------------------------------------------------

RAFT_APPEND_ENTRIES, RAFT_APPEND_ENTRIES_RESULT, RAFT_REQUEST_VOTE, RAFT_REQUEST_VOTE_RESULT, \
    RAFT_INSTALL_SNAPSHOT, RAFT_TIMEOUT_NOW = range(1, 7)


def configuration(servers):
    out = b"\x01" + le64(len(servers))
    for sid, addr, role in servers:
        out += le64(sid) + addr + b"\0" + bytes([role])
    return out + b"\0" * (-len(out) % 8)


def make_raft():
    def msg(t, version, header):
        write("raft", bytes([0, t, version]) + header)
    ae = le64(2, 10, 1, 9, 2) + le64(2) + bytes([1, 0, 0, 0]) + struct.pack("<I", 24) \
        + le64(2) + bytes([3, 0, 0, 0]) + struct.pack("<I", 8) + le64(0)
    msg(RAFT_APPEND_ENTRIES, 1, ae)
    msg(RAFT_APPEND_ENTRIES, 1, le64(2, 10, 1, 9, 0, 0))                 # heartbeat
    msg(RAFT_APPEND_ENTRIES_RESULT, 2, le64(2, 0, 11) + struct.pack("<HHI", 1, 32, 0))
    msg(RAFT_REQUEST_VOTE, 2, le64(3, 2, 11, 2, 3))
    msg(RAFT_REQUEST_VOTE_RESULT, 2, le64(3, 1) + bytes([1, 0]) + struct.pack("<HHH", 1, 32, 0))
    conf = configuration([(1, b"127.0.0.1:7001", 1), (2, b"127.0.0.1:7002", 1), (3, b"127.0.0.1:7003", 0)])
    msg(RAFT_INSTALL_SNAPSHOT, 0, le64(3, 100, 2, 90, len(conf)) + conf + le64(32, 0))
    msg(RAFT_TIMEOUT_NOW, 0, le64(3, 11, 2))
    write("raft", b"\x01" + conf)
    write("raft", b"\x01" + configuration([(7, b"node7:9000", 2)]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tck", default=os.path.join(HERE, "..", "..", "..", "shared", "opencypher-tck"))
    args = ap.parse_args()
    make_resp()
    make_cypher(os.path.abspath(args.tck))
    make_command()
    make_result()
    make_forward()
    make_raft()
    for h in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, h))
        size = sum(os.path.getsize(os.path.join(CORPUS, h, f)) for f in files)
        print("%-8s %4d files %7d bytes" % (h, len(files), size))


if __name__ == "__main__":
    main()

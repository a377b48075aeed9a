"""Seeded, bounded fuzzing of the two parsers a client can reach: random
bytes at the RESP server, and mutated Cypher sent with GRAPH.RO_QUERY.
The server must answer (or close the connection), stay up, and keep the
graph unchanged (QUIVER.DIGEST equal before and after).  Re-run a failure
with QUIVER_FUZZ_SEED=<seed>; run against an ASan build (QUIVERD=...) to
catch memory errors the replies do not show."""
import os
import random
import socket
import time

import redis

import harness
from harness import RespConn, compact, verbose

SEED = int(os.environ.get("QUIVER_FUZZ_SEED", str(int(time.time() * 1000) % 1000000007)))
RESP_CASES = 1000
CYPHER_CASES = 5000

SEEDS_CYPHER = [
    "MATCH (p:Person) WHERE p.age > 25 AND p.name STARTS WITH 'A' RETURN p.name, p.age ORDER BY p.age DESC LIMIT 3",
    "MATCH (a:Person)-[k:KNOWS*1..3]->(b) RETURN a.name, count(DISTINCT b) AS n ORDER BY n",
    "OPTIONAL MATCH (p:Person)-[:WORKS_AT]->(c:Company {name: 'Acme'}) RETURN collect(p.name), c",
    "UNWIND range(1, 10) AS x WITH x WHERE x % 2 = 0 RETURN sum(x), avg(x), min(x), max(x)",
    "MATCH p = (a)-[*]->(b) RETURN length(p), nodes(p), relationships(p) LIMIT 5",
    "RETURN CASE WHEN 1 < 2 THEN [1, 2.5, 'x', null, {a: [true]}] ELSE toUpper('s') END AS v",
    "CYPHER n=2 s='q' MATCH (n) WHERE n.name IN ['Ann', $s] OR size(keys(n)) > $n RETURN DISTINCT labels(n)",
    "MATCH (a:Person), (b:Person) WHERE NOT (a)-[:KNOWS]->(b) AND a <> b RETURN count(*)",
    "CALL db.labels()",
    "MATCH (n) RETURN coalesce(n.city, 'none') AS c, count(*) ORDER BY c SKIP 1",
]
TOKENS = ["(", ")", "[", "]", "{", "}", "-", "->", "<-", "*", "..", ":", ",", "'", '"', "`", "$",
          "MATCH", "RETURN", "WHERE", "WITH", "UNWIND", "CREATE", "DELETE", "SET", "OR", "NOT",
          "null", "0", "-1", "9223372036854775807", "1e309", "\\", "\\u", "//", "/*", "\x00", "é",
          "count(", "*0..", "|", "=", "<>", "IN", "AS", " ", "\n", "CASE", "END", ".", "%"]


def mutate(rng, text):
    s = text
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        op = rng.randrange(4)
        i = rng.randrange(len(s) + 1)
        if op == 0 and s:                                   # delete a span
            s = s[:i] + s[i + rng.randint(1, 8):]
        elif op == 1:                                       # insert a token
            s = s[:i] + rng.choice(TOKENS) + s[i:]
        elif op == 2 and s:                                 # duplicate a span
            j = min(len(s), i + rng.randint(1, 20))
            s = s[:j] + s[i:j] + s[j:]
        else:                                               # truncate
            s = s[:i]
    return s


def test_resp_random_bytes(server):
    rng = random.Random(SEED)
    print("fuzz seed %d (QUIVER_FUZZ_SEED=%d to repeat)" % (SEED, SEED))
    pieces = [b"*", b"$", b"+", b"-", b":", b"\r\n", b"\n", b"\r", b"0", b"1", b"-1", b"99999999999",
              b"PING", b"GRAPH.QUERY", b"\x00", b"\xff", b" ", b"\"", b"'", b"*2\r\n$4\r\nECHO\r\n"]
    for n in range(RESP_CASES):
        if rng.random() < 0.5:
            data = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        else:
            data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        c = socket.create_connection((harness.HOST, server.port), timeout=10)
        try:
            c.sendall(data)
            c.shutdown(socket.SHUT_WR)      # no more bytes: the server must not wait forever
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    if not c.recv(65536):
                        break
                except (ConnectionResetError, socket.timeout):
                    break
        finally:
            c.close()
        assert server.alive(), "seed %d case %d: quiverd died on %r\n%s" % (
            SEED, n, data, server.log_tail())
    conn = RespConn(server.port)
    assert conn.command("PING") == "PONG"
    conn.close()


def test_cypher_mutations(server, r):
    g = "fuzz"
    rng = random.Random(SEED + 1)
    verbose(r, g, "CREATE (a:Person {name:'Ann', age:30, city:'Oslo'}), (b:Person {name:'Bob', age:25}), "
                  "(c:Company {name:'Acme'}), (a)-[:KNOWS]->(b), (b)-[:KNOWS]->(a), (a)-[:WORKS_AT]->(c)")
    before = r.execute_command("QUIVER.DIGEST", g)
    answered = errors = 0
    for n in range(CYPHER_CASES):
        text = mutate(rng, rng.choice(SEEDS_CYPHER))
        try:
            r.execute_command("GRAPH.RO_QUERY", g, text, "TIMEOUT", "2000")
            answered += 1
        except redis.ResponseError:
            errors += 1
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise AssertionError("seed %d case %d: no answer (%r) to %r\n%s"
                                 % (SEED, n, e, text, server.log_tail()))
    print("cypher fuzz: %d answered, %d errors" % (answered, errors))
    assert server.alive()
    after = r.execute_command("QUIVER.DIGEST", g)
    assert after[1] == before[1], "seed %d: graph changed by read-only fuzz" % SEED
    assert compact(r, g, "MATCH (n) RETURN count(n)").scalar == 3

"""quiverd's command line: --help, --version, bad flags, the embedded
default (no arguments: single node, ./quiver-data, client port 6379), and
schema ids that survive a restart."""
import os
import socket
import subprocess

import pytest

import harness
from harness import compact, verbose


def run(binary, *args, timeout=30):
    p = subprocess.run([binary] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_help_and_version(quiverd_bin):
    rc, out, err = run(quiverd_bin, "--help")
    assert rc == 0, err
    for flag in ("--data-dir", "--port", "--max-request-bytes"):
        assert flag in out + err, flag
    rc, out, err = run(quiverd_bin, "--version")
    assert rc == 0 and (out + err).strip(), (out, err)


@pytest.mark.parametrize("args", [["--no-such-flag"], ["--port"], ["--port", "notaport"],
                                  ["--port", "70000"], ["--max-request-bytes", "-1"]])
def test_bad_flags_refused(quiverd_bin, tmp_path, args):
    p = subprocess.run([quiverd_bin, "--data-dir", str(tmp_path / "d")] + args,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       timeout=30, cwd=str(tmp_path))
    assert p.returncode != 0, args
    assert p.stderr.strip() or p.stdout.strip(), "no message for %s" % args
    assert not os.path.exists(tmp_path / "d" / "db"), "a refused start created data"


def port_in_use(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_no_arguments_embedded_default(quiverd_bin, tmp_path):
    if port_in_use(6379) or port_in_use(7379):
        pytest.skip("port 6379 or 7379 is taken on this machine")
    s = harness.Server(tmp_path, (), quiverd_bin)
    s.port = 6379
    s.argv = lambda: [quiverd_bin]          # no arguments at all
    s.start()
    try:
        r = s.client()
        verbose(r, "g", "CREATE (:Default {v: 1})")
        assert compact(r, "g", "MATCH (n:Default) RETURN n.v").scalar == 1
        r.close()
        assert os.path.isdir(tmp_path / "quiver-data"), os.listdir(tmp_path)
    finally:
        s.close()


def test_schema_ids_survive_restart(server_factory):
    s = server_factory()
    r = s.client()
    verbose(r, "ids", "CREATE (:A {x: 1})-[:R {y: 2}]->(:B {z: 3})")
    before = r.execute_command("GRAPH.QUERY", "ids", "MATCH (a:A)-[e:R]->(b:B) RETURN a, e, b",
                               "--compact")[1]
    r.close()
    s.kill9()
    s.start()
    r = s.client()
    after = r.execute_command("GRAPH.QUERY", "ids", "MATCH (a:A)-[e:R]->(b:B) RETURN a, e, b",
                              "--compact")[1]
    assert after == before
    verbose(r, "ids", "CREATE (:C {w: 4})-[:S]->(:A)")
    assert verbose(r, "ids", "CALL db.labels()").column == ["A", "B", "C"]
    assert verbose(r, "ids", "CALL db.relationshipTypes()").column == ["R", "S"]
    keys = verbose(r, "ids", "CALL db.propertyKeys()").column
    assert sorted(keys[:3]) == ["x", "y", "z"] and keys[3] == "w", keys
    c = r.execute_command("GRAPH.QUERY", "ids", "MATCH (c:C) RETURN c", "--compact")[1][0][0][1]
    assert c[1] == [2] and c[2][0][0] == 3, c
    r.close()

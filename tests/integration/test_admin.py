"""The admin HTTP port (DESIGN.md section 8): /healthz, /readyz, /status
(JSON), /metrics (Prometheus text format), on 127.0.0.1 only."""
import json
import re
import socket
import urllib.error
import urllib.request

import pytest

import harness


@pytest.fixture(scope="module")
def admin(tmp_path_factory, quiverd_bin):
    if "--admin-port" not in harness.documented_flags(quiverd_bin):
        pytest.fail("quiverd --help documents no --admin-port")
    port = harness.free_port()
    s = harness.Server(tmp_path_factory.mktemp("quiverd_admin"), ["--admin-port", str(port)],
                       quiverd_bin)
    s.start()
    yield s, port
    s.close()


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def test_healthz_readyz(admin):
    s, port = admin
    assert get(port, "/healthz")[0] == 200
    assert get(port, "/readyz")[0] == 200   # a single node that is leader is ready


def test_status_json(admin):
    s, port = admin
    code, ctype, body = get(port, "/status")
    assert code == 200 and "json" in ctype, (code, ctype)
    st = json.loads(body)
    assert st["role"] == "leader" and st["port"] == s.port and st["ready"] is True, st
    r = s.client()
    before = st["last_applied_index"]
    r.execute_command("GRAPH.QUERY", "adm", "CREATE ()")
    st = json.loads(get(port, "/status")[2])
    assert st["last_applied_index"] > before and st["commit_index"] >= st["last_applied_index"], st
    r.close()


def test_metrics_prometheus_text(admin):
    s, port = admin
    code, ctype, body = get(port, "/metrics")
    assert code == 200 and ctype.startswith("text/plain"), (code, ctype)
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            assert line == "" or re.match(r"# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* ", line), line
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$", line)
        assert m, "not a Prometheus sample line: %r" % line
        samples[m.group(1)] = float(m.group(3))
    assert samples, body
    assert any("leader" in k for k in samples), samples


def test_unknown_path_and_garbage(admin):
    s, port = admin
    assert get(port, "/nope")[0] == 404
    for junk in (b"garbage\r\n\r\n", b"\x00\xff garbage\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(junk)
            try:
                c.recv(4096)   # an answer (400) or a close
            except socket.timeout:
                pytest.fail("admin port neither answered nor closed %r within 10 s" % junk)
    assert get(port, "/healthz")[0] == 200
    assert s.client().ping()

"""The `quiver` CLI against a real quiverd: one-shot queries (table and
statistics, exit status), statements on stdin, errors in plain words, and
`quiver import` on a small hand-made CSV directory with bad rows (reported
with line numbers, nothing resumed silently)."""
import gzip
import os
import re
import subprocess

import pytest

import harness
from harness import compact


@pytest.fixture(scope="module")
def cli():
    p = harness.quiver_cli_path()
    if not os.access(p, os.X_OK):
        pytest.fail("quiver CLI not found at %s: build with ./deploy/build or set QUIVER" % p)
    return p


def run(cli, *args, stdin=None, timeout=120):
    p = subprocess.run([cli] + list(args), input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_query_table_and_stats(cli, server):
    p = str(server.port)
    rc, out, err = run(cli, "-h", "127.0.0.1", "-p", p, "-g", "cli1", "CREATE (:A {x: 1}), (:A {x: 22})")
    assert rc == 0, (out, err)
    assert "Nodes created: 2" in out, out
    rc, out, err = run(cli, "-p", p, "-g", "cli1", "MATCH (a:A) RETURN a.x AS value ORDER BY a.x")
    assert rc == 0, (out, err)
    assert "value" in out and re.search(r"\b1\b", out) and re.search(r"\b22\b", out), out
    # aligned: the two value cells start in the same column
    lines = [l for l in out.splitlines() if re.search(r"\b(1|22)\b", l) and "time" not in l]
    assert len(lines) >= 2, out
    assert len({len(l) for l in lines[:2]}) == 1 or \
        lines[0].index("1") == lines[1].index("22") or lines[0].rindex("1") == lines[1].rindex("2"), out


def test_error_exit_status(cli, server):
    rc, out, err = run(cli, "-p", str(server.port), "-g", "cli2", "MATCH (n RETURN n")
    assert rc != 0
    text = out + err
    assert re.search(r"line\D{0,3}\d+", text, re.I), text
    rc, out, err = run(cli, "-p", str(harness.free_port()), "RETURN 1")
    assert rc != 0 and (out + err).strip(), (out, err)


def test_statements_on_stdin(cli, server, r):
    rc, out, err = run(cli, "-p", str(server.port), "-g", "cli3",
                       stdin=b"CREATE (:S {v: 1});\nCREATE (:S {v: 2});\nMATCH (s:S) RETURN sum(s.v) AS total;\n")
    assert rc == 0, (out, err)
    assert "total" in out and re.search(r"\b3\b", out), out
    assert compact(r, "cli3", "MATCH (s:S) RETURN count(s)").scalar == 2


def test_status(cli, server):
    rc, out, err = run(cli, "-p", str(server.port), "status")
    assert rc == 0, (out, err)
    assert "leader" in out.lower(), out


def write_csv(path, text):
    if path.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8", newline="") as f:
            f.write(text)
    else:
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)


def test_import_small_dir_with_bad_rows(cli, server, r, tmp_path):
    d = str(tmp_path / "csv")
    os.makedirs(d)
    write_csv(os.path.join(d, "nodes_person.csv"),
              "id:ID,name,age:int,ok:boolean,score:float,:LABEL\n"
              "p1,Ann,30,true,1.5,Person\n"
              "p2,\"Bob, Jr.\",notanumber,false,2,Person\n"     # line 3: bad int
              "p3,\"Cid \"\"C\"\"\",35,,,Person;Admin\n")
    write_csv(os.path.join(d, "edges_knows.csv.gz"),
              ":START_ID,:END_ID,since:int,:TYPE\n"
              "p1,p3,2010,KNOWS\n"
              "p1,p9,2011,KNOWS\n"                              # line 3: unknown end id
              "p3,p1,2012,KNOWS\n")
    p = str(server.port)
    rc, out, err = run(cli, "import", "--host", "127.0.0.1", "--port", p, "--graph", "imp", d)
    text = out + err
    assert rc == 0, text
    # both bad rows reported with their file and line numbers
    assert "nodes_person.csv" in text and re.search(r"\b3\b", text), text
    assert "edges_knows.csv.gz" in text, text
    g = "imp"
    assert compact(r, g, "MATCH (n:Person) RETURN count(n)").scalar in (2, 3)
    res = compact(r, g, "MATCH (n:Person {name: 'Ann'}) RETURN n.age, n.ok, n.score")
    assert res.rows == [[30, True, 1.5]]
    assert compact(r, g, "MATCH (n {name: 'Cid \"C\"'}) RETURN n.age, labels(n)").rows[0][0] == 35
    assert compact(r, g, "MATCH ()-[k:KNOWS]->() RETURN count(k)").scalar == 2
    # importing again into the now non-empty graph is refused, not merged silently
    rc, out, err = run(cli, "import", "--host", "127.0.0.1", "--port", p, "--graph", g, d)
    assert rc != 0, out + err
    assert compact(r, g, "MATCH ()-[k:KNOWS]->() RETURN count(k)").scalar == 2
    # --strict turns skipped rows into a failure
    rc, out, err = run(cli, "import", "--host", "127.0.0.1", "--port", p, "--graph", "imp2",
                       "--strict", d)
    assert rc != 0, out + err


def test_interactive_prompt_with_history(cli, server, tmp_path):
    """The shell on a terminal (a pty): a statement ending in ';' prints its
    table, Ctrl-D exits 0, and the statement lands in ~/.quiver_history."""
    import pty
    import select
    import time
    pid, fd = pty.fork()
    if pid == 0:   # child: the CLI with HOME in the test's temporary directory
        os.environ["HOME"] = str(tmp_path)
        os.environ["TERM"] = "dumb"
        os.execv(cli, [cli, "-p", str(server.port), "-g", "tty"])
    out = b""

    def read_until(pattern, timeout_s=30):
        nonlocal out
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if re.search(pattern, out):
                return True
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        return bool(re.search(pattern, out))

    try:
        os.write(fd, b"RETURN 40 + 2 AS answer;\n")
        assert read_until(rb"\b42\b"), out.decode("utf-8", "replace")
        assert b"answer" in out
        # Wait for the next prompt, as a person would: libedit may flush
        # input typed while it switches the terminal mode between lines.
        assert read_until(rb"\b42\b[\s\S]*tty>"), out.decode("utf-8", "replace")
        deadline = time.monotonic() + 30
        status = None
        next_eof = 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= next_eof:
                os.write(fd, b"\x04")               # Ctrl-D at an empty prompt
                next_eof = time.monotonic() + 2
            read_until(rb"$^", timeout_s=0.2)          # drain output
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == pid:
                status = st
                break
        assert status is not None, "quiver shell did not exit on Ctrl-D:\n" + out.decode("utf-8", "replace")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
    hist = tmp_path / ".quiver_history"
    assert hist.exists(), os.listdir(tmp_path)
    # libedit's history file escapes bytes as \ooo octal (e.g. space = \040)
    text = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), hist.read_text(errors="replace"))
    assert "RETURN 40 + 2" in text, text

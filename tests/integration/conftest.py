"""Fixtures for the integration tests (see harness.py for the design).

  server_factory  make Server objects (fresh data dir each); all are killed
                  at the end of the test, also when it fails
  server          one quiverd shared by a test module (module scope)
  r               redis-py client (decoded strings) to `server`
  graph           a graph name unique to the test; deleted afterwards

On a failing test the tail of every involved server's log is attached to the
report, so a crash or an assertion inside quiverd is visible in CI output.
"""
import itertools
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    harness.CURRENT_TEST[0] = item.nodeid
    yield
    harness.CURRENT_TEST[0] = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in harness.SERVERS:
            if not s.closed or s.closed_in == item.nodeid:
                alive = "running" if s.alive() else (
                    "exited %s" % (s.proc.returncode if s.proc else "never started"))
                rep.sections.append(("quiverd log %s (%s)" % (s.workdir, alive),
                                     s.log_tail(80)))


@pytest.fixture(scope="session")
def quiverd_bin():
    p = harness.quiverd_path()
    if not os.access(p, os.X_OK):
        pytest.fail("quiverd not found at %s: build with ./deploy/build or set QUIVERD" % p)
    return p


@pytest.fixture
def server_factory(tmp_path, quiverd_bin):
    made = []
    counter = itertools.count()

    def make(extra_args=(), start=True, workdir=None):
        s = harness.Server(workdir or tmp_path / ("q%d" % next(counter)), extra_args, quiverd_bin)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    problems = []
    for s in made:          # close every server even if one reports a problem
        try:
            s.close()
        except harness.ServerError as e:
            problems.append(str(e))
    if problems:
        raise harness.ServerError("\n\n".join(problems))


@pytest.fixture(scope="module")
def server(tmp_path_factory, quiverd_bin):
    s = harness.Server(tmp_path_factory.mktemp("quiverd"), (), quiverd_bin)
    s.start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def r(server):
    c = server.client()
    yield c
    c.close()


_graph_ids = itertools.count()


@pytest.fixture
def graph(request, r):
    name = "t%d_%s" % (next(_graph_ids), request.node.name[:40].replace("[", "_").replace("]", ""))
    yield name
    try:
        r.execute_command("GRAPH.DELETE", name)
    except Exception:
        pass


@pytest.fixture
def cluster_factory(tmp_path, quiverd_bin):
    """make(extra_args=()) starts three quiverd on 127.0.0.1 as one cluster
    (harness.start_cluster; not waited for: use harness.wait_leader);
    every cluster made is closed at the end of the test."""
    made = []

    def make(extra_args=()):
        servers = harness.start_cluster(tmp_path / ("c%d" % len(made)), 3, extra_args, binary=quiverd_bin)
        made.extend(servers)
        return servers

    yield make
    harness.close_servers(made)

#!/usr/bin/python3
"""report.py RESULTS.tsv COMMANDS_FILE [LOAD_AT_START] -- the table of
bench/docker/run: for each metric the median over the runs (every run's value
after it), the aim of issue 3 where it has one, and for the loads etcd also
ran (bench/cluster/cluster.py: 1- and 64-client writes to the leader,
64-client linearizable reads, failover) etcd's median and Quiver's ratio to
it (Quiver / etcd: above 1 is Quiver ahead for rates, below 1 for latencies
and failover times).  Metrics are "docker.NAME" (the compose cluster) and
"etcd.NAME" (bench/cluster/cluster.py's names)."""
import os
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict

# The results format and sh() are bench/cluster's.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from report import load_results, sh  # noqa: E402

# (docker metric, label, aim, etcd metric to compare with)
ROWS = [
    ("import_elements_per_s", "(a) import through a follower, elements/s", ">= 100000", None),
    ("import_seconds", "(a) import through a follower, seconds", "", None),
    ("write1_leader_qd_p50_ms", "(b) writes 1 client, leader, p50 ms (qdriver)", "< 0.5", "write1_p50_ms"),
    ("write1_leader_qd_p99_ms", "(b) writes 1 client, leader, p99 ms (qdriver)", "", "write1_p99_ms"),
    ("write1_leader_qd_per_s", "(b) writes 1 client, leader, writes/s (qdriver)", "", "write1_per_s"),
    ("write1_leader_rb_p50_ms", "(b) writes 1 client, leader, p50 ms (redis-benchmark)", "< 0.5", "write1_p50_ms"),
    ("write1_leader_rb_p99_ms", "(b) writes 1 client, leader, p99 ms (redis-benchmark)", "", "write1_p99_ms"),
    ("write1_follower_qd_p50_ms", "(b) writes 1 client, via follower, p50 ms (qdriver)", "", None),
    ("write1_follower_qd_p99_ms", "(b) writes 1 client, via follower, p99 ms (qdriver)", "", None),
    ("write1_follower_rb_p50_ms", "(b) writes 1 client, via follower, p50 ms (redis-benchmark)", "", None),
    ("write1_follower_rb_p99_ms", "(b) writes 1 client, via follower, p99 ms (redis-benchmark)", "", None),
    ("write64_leader_rb_per_s", "(b) writes 64 clients, leader, writes/s (redis-benchmark)", ">= 25000", "write64_per_s"),
    ("write64_leader_rb_p99_ms", "(b) writes 64 clients, leader, p99 ms", "", "write64_p99_ms"),
    ("write64_follower_rb_per_s", "(b) writes 64 clients, via follower, writes/s (redis-benchmark)", "", "write64_per_s"),
    ("write64_follower_rb_p99_ms", "(b) writes 64 clients, via follower, p99 ms", "", None),
]
for _c in (16, 64):
    for _role in ("leader", "follower"):
        ROWS.append(("lookup%d_%s_linearizable_rb_per_s" % (_c, _role),
                     "(c) lookup %d clients, %s, linearizable, q/s (redis-benchmark)" % (_c, _role),
                     ">= 20000", "read64_per_s" if _c == 64 and _role == "leader" else None))
        for _lvl, _aim in (("linearizable", ">= 20000"), ("session", ""), ("stale", ">= 50000")):
            ROWS.append(("lookup%d_%s_%s_qd_per_s" % (_c, _role, _lvl),
                         "(c) lookup %d clients, %s, %s, q/s (qdriver)" % (_c, _role, _lvl), _aim,
                         "read64_per_s" if (_c == 64 and _role == "leader" and _lvl == "linearizable") else None))
ROWS += [
    ("failover_s", "(d) failover: docker kill leader -> first acked write, s (median)", "< 0.5", "failover_s"),
    ("failover_max_s", "(d) failover: worst of the kills, s", "< 1", "failover_max_s"),
    ("failover_dead_s", "(d) kill call -> its processes seen dead (writers start), s (median)", "", None),
    ("failover_kill_call_s", "(d) the docker kill API call until it returned, s (median)", "", None),
]


def main():
    results, commands = sys.argv[1], sys.argv[2]
    vals, med = load_results(results, ("docker", "etcd"))

    runs = len(vals.get(("docker", "import_seconds"), []))
    kills = len(vals.get(("docker", "failover_s"), []))
    print()
    print("Quiver's docker-compose cluster (./deploy/up, ports 7001-7003): median of %d load run(s), "
          "failover over %d kills; etcd: three processes on 127.0.0.1 (bench/cluster/cluster.py)" % (runs, kills))
    w = max(len(r[1]) for r in ROWS)
    print("%-*s  %11s  %-9s  %10s  %7s   %s" % (w, "metric", "quiver", "aim", "etcd", "q/etcd",
                                              "runs (quiver | etcd)"))
    for metric, label, aim, em in ROWS:
        q = med("docker", metric)
        e = med("etcd", em) if em else None
        if q is None and e is None:
            continue
        ratio = "%7.2f" % (q / e) if e and q is not None else "%7s" % "-"
        runs_s = ", ".join("%.3f" % x for x in vals.get(("docker", metric), [])) or "-"
        if em and vals.get(("etcd", em)):
            runs_s += " | " + ", ".join("%.3f" % x for x in vals[("etcd", em)])
        print("%-*s  %11s  %-9s  %10s  %s   %s" % (w, label, "%11.3f" % q if q is not None else "-", aim or "-",
                                                    "%10.3f" % e if e is not None else "%10s" % "-",
                                                    ratio, runs_s))
    lids = vals.get(("docker", "leader_node_id"))
    if lids:
        print("leader at the start of each load run: %s" % ", ".join("node%d" % int(x) for x in lids))
    print()
    with open(commands) as f:
        print(f.read().rstrip())
    print()
    print("quiverd in the image: %s" % (sh("docker run --rm --entrypoint quiverd quiver:local --version")
                                        or "version unknown"))
    print("image: quiver:local %s" % sh("docker image inspect -f '{{.Created}}' quiver:local"))
    print("etcd: %s" % (sh("etcd --version | head -1") or "not run"))
    print("redis-benchmark: %s" % sh("redis-benchmark --version"))
    print("docker: %s; userland proxy on the published ports: %s"
          % (sh("docker version -f '{{.Server.Version}}'"), "yes" if sh("pgrep -x docker-proxy") else "no"))
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    print("machine: %s cores, %s, %s" % (os.cpu_count(), cpu or "cpu unknown", platform.platform()))
    if len(sys.argv) > 3:
        print("load average at the start (1/5/15 min): %s" % sys.argv[3])
    print("load average at the end (1/5/15 min): %s  -- other work on these cores skews every number"
          % " ".join(sh("cat /proc/loadavg").split()[:3]))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""report.py RESULTS.tsv QUIVERD [LOAD_AT_START] -- the table of
bench/cluster/run: for each metric the median over the runs for Quiver and
for etcd, every run's value, and Quiver's ratio to etcd (Quiver / etcd; for
latencies and failover times lower is better, so a ratio below 1 is Quiver
ahead there and above 1 is Quiver ahead for rates)."""
import os
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict

# (metric, label); a metric only one system has prints "-" for the other
ROWS = [
    ("write1_per_s", "writes, 1 client, writes/s (leader)"),
    ("write1_p50_ms", "writes, 1 client, p50 ms"),
    ("write1_p99_ms", "writes, 1 client, p99 ms"),
    ("write64_per_s", "writes, 64 clients, writes/s (leader)"),
    ("write64_p50_ms", "writes, 64 clients, p50 ms"),
    ("write64_p99_ms", "writes, 64 clients, p99 ms"),
    ("write64_all_per_s", "writes, 64 clients spread over all 3 members, writes/s (etcd)"),
    ("write64_follower_per_s", "writes, 64 clients through a follower, writes/s (quiver)"),
    ("read64_per_s", "linearizable reads, 64 clients, reads/s (leader)"),
    ("read64_p99_ms", "linearizable reads, 64 clients, p99 ms"),
    ("failover_s", "failover: kill -9 leader -> first acked write, s (median)"),
    ("failover_max_s", "failover: worst of the kills, s"),
]

COMMANDS = """Commands (P = a member's port on 127.0.0.1; all on fresh three-process clusters):
  etcd 3.4 (Debian etcd-server), 3 members, default timeouts (election 1000 ms, heartbeat 100 ms);
    edriver = bench/etcd/edriver.c: HTTP/1.1 keep-alive POST to the v3 JSON gateway
    writes 1:   edriver -e LEADER -c 1 -n N_SEQ -w 200 -o put        (8-byte value, key bench/%08d)
    writes 64:  edriver -e LEADER -c 64 -n N_W64 -w 1000 -o put      (and -e all three members)
    reads 64:   edriver -e LEADER -c 64 -n N_READ -w 1000 -o range   (serializable=false)
  quiverd x3: --node-id I --raft-address 127.0.0.1:R --peers 1=..@..,2=..,3=.. (default timeouts)
    writes 1:   qdriver -p LEADER -c 1 -n N_SEQ -w 200 'CREATE (:B {v: @I@})'
    writes 64:  redis-benchmark -p LEADER -c 64 -n N_W64 --csv GRAPH.QUERY bench "CREATE (:B {v: 1})"
                (and -p FOLLOWER: forwarded to the leader)
    reads 64:   after CREATE INDEX FOR (k:K) ON (k.k) and CREATE (:K {k: 0, v: 'x'}):
                redis-benchmark -p LEADER -c 64 -n N_READ --csv GRAPH.RO_QUERY bench "MATCH (k:K {k: 0}) RETURN k.v"
  N_SEQ=5000, N_W64=50000, N_READ=50000 (BENCH_QUICK=1: 1000, 10000, 10000)
  failover: kill -9 of the leader of a settled cluster, then a fresh one-write attempt through each
    survivor every 20 ms (new connection, 10 s timeout); time from the kill to the first
    acknowledgement; the killed member is restarted and the cluster settles before the next kill."""


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=10).stdout.decode().strip()
    except Exception:
        return ""


def load_results(path, systems):
    """RESULTS.tsv (run, "system.metric", value per line) as
    {(system, metric): [values in run order]}, plus failover_max_s (the
    worst of failover_s) for each of systems; and med(system, metric), the
    median or None.  Shared with bench/docker/report.py."""
    vals = OrderedDict()
    with open(path) as f:
        for line in f:
            _run, key, value = line.rstrip("\n").split("\t")
            system, metric = key.split(".", 1)
            vals.setdefault((system, metric), []).append(float(value))
    for system in systems:
        fo = vals.get((system, "failover_s"))
        if fo:
            vals[(system, "failover_max_s")] = [max(fo)]

    def med(system, metric):
        v = vals.get((system, metric))
        return statistics.median(v) if v else None
    return vals, med


def main():
    results, quiverd = sys.argv[1], sys.argv[2]
    vals, med = load_results(results, ("quiver", "etcd"))

    runs = max((len(v) for (s, m), v in vals.items() if m != "failover_s" and m != "failover_max_s"), default=0)
    print()
    print("Three-node cluster on 127.0.0.1: quiverd vs etcd, median of %d load run(s); failover over %d kills"
          % (runs, max(len(vals.get((s, "failover_s"), [])) for s in ("quiver", "etcd"))))
    w = max(len(label) for _, label in ROWS)
    print("%-*s  %10s  %10s  %8s   %s" % (w, "metric", "quiver", "etcd", "q/etcd", "runs (quiver | etcd)"))
    fmt = lambda x: "%10.3f" % x if x is not None else "%10s" % "-"
    for metric, label in ROWS:
        q, e = med("quiver", metric), med("etcd", metric)
        if q is None and e is None:
            continue
        ratio = "%8.2f" % (q / e) if q is not None and e else "%8s" % "-"
        runs_s = " | ".join(", ".join("%.3f" % x for x in vals.get((s, metric), [])) or "-"
                            for s in ("quiver", "etcd"))
        print("%-*s  %s  %s  %s   %s" % (w, label, fmt(q), fmt(e), ratio, runs_s))
    print()
    print(COMMANDS)
    print()
    print("etcd: %s" % (sh("etcd --version | head -1") or "not run"))
    for var in ("QUIVERD_ARGS", "ETCD_ARGS"):
        if os.environ.get(var, "").strip():
            print("NOT the defaults: %s=%s for every member" % (var, os.environ[var]))
    cache = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(quiverd))), "CMakeCache.txt")
    bt = sh("grep -E '^(CMAKE_BUILD_TYPE|QUIVER_SANITIZE):' %s" % cache).replace("\n", ", ")
    print("quiverd: %s (%s)" % (quiverd, bt or "build type unknown"))
    print("redis-benchmark: %s" % sh("redis-benchmark --version"))
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    print("machine: %s cores, %s, %s; data dirs on %s" % (os.cpu_count(), cpu or "cpu unknown",
                                                         platform.platform(), sh("df -T /tmp | tail -1 | awk '{print $2}'")))
    if len(sys.argv) > 3:
        print("load average at the start: %s" % sys.argv[3])
    print("load average at the end (1/5/15 min): %s  -- other work on these cores skews every number"
          % " ".join(sh("cat /proc/loadavg").split()[:3]))


if __name__ == "__main__":
    main()

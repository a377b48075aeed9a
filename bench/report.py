#!/usr/bin/env python3
"""report.py RESULTS.tsv QUIVERD COMMANDS -- the summary table of bench/run:
median of the runs for each metric, every run's value, the aim from the
issue where there is one, the commands, and the build facts that matter
(RocksDB package and whether it has assertions, quiverd's build type)."""
import os
import platform
import statistics
import subprocess
import sys
from collections import OrderedDict

AIMS = {
    "import_elements_per_s": (">=", 100000),
    "write1_p50_ms": ("<", 0.5),
    "write64_per_s_redis_benchmark": (">=", 20000),
    "write64_per_s_qdriver": (">=", 20000),
    "lookup16_per_s_redis_benchmark": (">=", 30000),
    "lookup16_per_s_qdriver_random": (">=", 30000),
}

LABELS = {
    "import_seconds": "(a) import wall time, s",
    "import_elements_per_s": "(a) import, elements/s",
    "write1_p50_ms": "(b) CREATE, 1 client, p50 ms",
    "write1_p99_ms": "(b) CREATE, 1 client, p99 ms",
    "write1_per_s": "(b) CREATE, 1 client, writes/s",
    "write64_per_s_redis_benchmark": "(b) CREATE, 64 clients, writes/s (redis-benchmark)",
    "write64_per_s_qdriver": "(b) CREATE, 64 clients, writes/s (qdriver)",
    "write64_p99_ms_qdriver": "(b) CREATE, 64 clients, p99 ms (qdriver)",
    "lookup16_per_s_redis_benchmark": "(c) indexed lookup 'bash', 16 clients, q/s (redis-benchmark)",
    "lookup16_per_s_qdriver_random": "(c) indexed lookup random name, 16 clients, q/s (qdriver)",
    "lookup16_p99_ms_qdriver_random": "(c) indexed lookup random name, 16 clients, p99 ms",
    "twohop16_per_s_redis_benchmark_bash": "(d) 2-hop from 'bash', 16 clients, q/s (redis-benchmark)",
    "twohop16_per_s_qdriver_random": "(d) 2-hop random start, 16 clients, q/s (qdriver)",
    "twohop16_p99_ms_qdriver_random": "(d) 2-hop random start, 16 clients, p99 ms",
}


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              timeout=10).stdout.decode().strip()
    except Exception:
        return ""


def main():
    results, quiverd, cmds = sys.argv[1], sys.argv[2], sys.argv[3]
    vals = OrderedDict()
    with open(results) as f:
        for line in f:
            run, key, value = line.rstrip("\n").split("\t")
            try:
                vals.setdefault(key, []).append(float(value))
            except ValueError:
                vals.setdefault(key, [])
    print()
    print("Quiver benchmarks: median of %d run(s)" % max((len(v) for v in vals.values()), default=0))
    w = max([len(LABELS.get(k, k)) for k in vals] + [10])
    print("%-*s  %12s  %-32s  %s" % (w, "metric", "median", "runs", "aim"))
    for k, v in vals.items():
        med = statistics.median(v) if v else float("nan")
        aim = AIMS.get(k)
        aim_s = ""
        if aim and v:
            ok = med >= aim[1] if aim[0] == ">=" else med < aim[1]
            aim_s = "%s %g: %s" % (aim[0], aim[1], "met" if ok else "NOT met")
        print("%-*s  %12.3f  %-32s  %s" % (w, LABELS.get(k, k), med,
                                           ", ".join("%.3f" % x for x in v), aim_s))
    print()
    print("Commands (P = the run's own quiverd port on 127.0.0.1; qdriver = bench/qdriver.c):")
    print(cmds)
    print()
    rocks = sh("dpkg-query -W -f='${Package} ${Version}\\n' 'librocksdb*' 2>/dev/null")
    print("RocksDB: %s (Debian's build, compiled with assertions enabled)"
          % ("; ".join(rocks.splitlines()) or "unknown"))
    cache = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(quiverd))), "CMakeCache.txt")
    bt = sh("grep -E '^(CMAKE_BUILD_TYPE|QUIVER_SANITIZE):' %s" % cache).replace("\n", ", ")
    bt = bt.replace("CMAKE_BUILD_TYPE:STRING=,", "CMAKE_BUILD_TYPE empty = RelWithDebInfo (CMakeLists default),")
    print("quiverd: %s (%s)" % (quiverd, bt or "build type unknown"))
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    print("machine: %s cores, %s, %s" % (os.cpu_count(), cpu or "cpu unknown", platform.platform()))
    print("redis-benchmark: %s" % sh("redis-benchmark --version"))
    print("load average at the end (1/5/15 min): %s  -- other work on these 2 cores skews every number"
          % " ".join(sh("cat /proc/loadavg").split()[:3]))
    if len(sys.argv) > 4:
        print("load average at the start: %s" % sys.argv[4])


if __name__ == "__main__":
    main()

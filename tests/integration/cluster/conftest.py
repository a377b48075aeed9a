"""Prints what the Docker cluster test measured (deploy/up, import, fault
schedule, the steps and their waits) at the end of the pytest run, also
when the run passed and its output was captured: tests/run's log then
shows how long each phase took."""
import sys


def pytest_terminal_summary(terminalreporter):
    mod = sys.modules.get("test_docker_cluster")
    if mod is None:
        return
    lines = list(getattr(mod, "SUMMARY", []))
    timings = getattr(mod, "TIMINGS", {})
    if timings:
        lines.insert(0, "seconds: " + ", ".join("%s %.1f" % kv for kv in timings.items()))
    if lines:
        terminalreporter.write_sep("-", "Docker cluster test: timings and steps")
        for line in lines:
            terminalreporter.write_line(line)

#!/usr/bin/python3
"""A daemon run under valgrind (scripts/check-valgrind): seed, several polls
with new sales, a reload, a BigQuery fault, SIGTERM; then a --once and a
--dry-run. Any leak or memory error valgrind reports fails the check.
Usage: valgrind_run.py BINARY"""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

VALGRIND = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", "--error-exitcode=99",
            "--track-fds=no", "--num-callers=30"]


def main():
    binary = sys.argv[1]
    failures = 0
    with harness.Workdir("valgrind") as w:
        g = w.add(harness.GoogleFake(w.path))
        s = w.add(harness.SeeTicketsFake(w.path))
        cfg = harness.write_config(w.path, g, s, **{"sales.interval": "1", "events.interval": "1"})
        wrapper = os.path.join(w.path, "vg.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(VALGRIND) + f" --log-file={w.path}/vg.%p.log {binary} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        harness.STBQ_BIN = wrapper

        d = w.add(harness.Daemon(w.path, cfg))
        d.wait_notify("READY=1", 120)
        for _ in range(3):
            s.grow(sales=15, events=1)
            time.sleep(2)
        g.fault({"status": 503, "body": "busy"}, path="/insertAll", times=2)
        d.signal(signal.SIGHUP)
        time.sleep(3)
        rc = d.stop(60)
        print(f"daemon mode: exit {rc}")
        failures += rc != 0
        s.grow(sales=10)
        for args in (["--once"], ["--dry-run"]):
            rc, out, err = harness.run_once(w.path, cfg, *args, timeout=300)
            print(f"{' '.join(args)}: exit {rc}")
            failures += rc != 0
        logs = [n for n in sorted(os.listdir(w.path)) if n.startswith("vg.") and n.endswith(".log")]
        if len(logs) < 3:
            failures += 1
            print(f"expected a valgrind log per run, found {logs}")
        for name in logs:
            text = open(os.path.join(w.path, name)).read().strip()
            if text:
                failures += 1
                print(f"--- {name}\n{text[-6000:]}")
        harness.check_exactly_once(g, s, "sales")
        harness.check_exactly_once(g, s, "events")
        if failures:
            raise SystemExit(f"{failures} valgrind failures")
    print("valgrind: no leaks, no memory errors")


main()

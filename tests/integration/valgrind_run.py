#!/usr/bin/python3
"""A daemon run under valgrind (scripts/check-valgrind): seed, several polls
with new and changed rows (track_changes on), a reload, a BigQuery fault,
SIGTERM; then a --once, a --dry-run and an --audit. Any leak or memory error
valgrind reports fails the check.
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
        cfg = harness.write_config(w.path, g, s, **{"sales.interval": "1", "events.interval": "1",
                                                     "sales.track_changes": "true",
                                                     "events.track_changes": "true"})
        wrapper = os.path.join(w.path, "vg.sh")
        with open(wrapper, "w") as f:
            f.write("#!/bin/sh\nexec " + " ".join(VALGRIND) + f" --log-file={w.path}/vg.%p.log {binary} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        harness.STBQ_BIN = wrapper

        d = w.add(harness.Daemon(w.path, cfg))
        d.wait_notify("READY=1", 120)
        for i in range(3):
            s.grow(sales=15, events=1)
            key = s.truth("sales")[i]["uniqueCode"]
            s.post("/_fake/update", {"feed": "sales", "key": key, "set": {"sold": 40 + i}})
            ev = s.truth("events")[i]["id"]
            s.post("/_fake/update", {"feed": "events", "key": ev, "set": {"name": f"Renamed {i}"}})
            time.sleep(2)
        g.fault({"status": 503, "body": "busy"}, path="/insertAll", times=2)
        d.signal(signal.SIGHUP)
        time.sleep(3)
        rc = d.stop(60)
        print(f"daemon mode: exit {rc}")
        failures += rc != 0
        s.grow(sales=10)
        for args in (["--once"], ["--dry-run"], ["--audit", "--json"]):
            rc, out, err = harness.run_once(w.path, cfg, *args, timeout=300)
            print(f"{' '.join(args)}: exit {rc}")
            failures += rc != 0
        logs = [n for n in sorted(os.listdir(w.path)) if n.startswith("vg.") and n.endswith(".log")]
        if len(logs) < 4:
            failures += 1
            print(f"expected a valgrind log per run, found {logs}")
        for name in logs:
            text = open(os.path.join(w.path, name)).read().strip()
            if text:
                failures += 1
                print(f"--- {name}\n{text[-6000:]}")
        # The base tables hold the first versions; the changed ones are in *_changes.
        harness.check_exactly_once(g, s, "sales", values=False)
        harness.check_exactly_once(g, s, "events", values=False)
        if not g.rows("sales_changes") or not g.rows("events_changes"):
            failures += 1
            print("no changed version was recorded")
        if failures:
            raise SystemExit(f"{failures} valgrind failures")
    print("valgrind: no leaks, no memory errors")


main()

#!/usr/bin/python3
"""bench_cycle - steady-state throughput of seetickets-bq, end to end.

A fake See Tickets with 20 000 sales over 40 events and an empty fake BigQuery (the daemon
creates the tables); the daemon's defaults for page size (100), batch size (500 rows) and insert
method (streaming), with every event in the lookback window. Two runs of

    seetickets-bq -c CONF --once

  first    everything is new: events, then 20 000 sales fetched, spooled (fsynced), inserted
  again    nothing is new: seed the keys from BigQuery, fetch every page again, de-duplicate
           every row, insert nothing

Reported per run:

  wall_s     exec to exit
  cpu_s      the daemon's user+system CPU time (wait4())
  st_cpu     CPU time of the See Tickets fake during the run (/proc/PID/stat)
  bq_cpu     CPU time of the Google fake during the run
  other_s    wall_s - cpu_s - st_cpu - bq_cpu: waiting on fsync, the loopback, the scheduler
             (2 CPUs: the three processes can overlap, so this can go below zero)
  rows       rows inserted, both feeds
  rows/s     rows / wall_s
  st_req     requests to See Tickets      bq_req  requests to Google (OAuth token included)
  peak_MiB   the daemon's peak RSS (/usr/bin/time %M, else VmHWM polled every 50 ms)

Both runs are checked: exit status 0; after the first, every good source row in the fake
BigQuery exactly once with the coerced values; after the second, nothing new and the tables as
they were. Any failure makes the exit status 1.

Usage: STBQ_BIN=build/src/seetickets-bq bench/bench_cycle.py [--sales 20000] [--events 40]
           [--page-size 100] [--insert-method streaming|load]
"""
import argparse
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("TOP_SRCDIR", os.path.join(HERE, "..")),
                                "tests", "integration"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from bench_seed import cpu_of, metric, run_daemon  # noqa: E402

SEED_RE = re.compile(r"(\w+): \d+ keys known in table \S+ \(seeded in (\d+) ms\)")
POLL_RE = re.compile(r"(\w+): fetched \d+, new \d+, inserted \d+, rejected \d+ in (\d+) ms")


def calls(fake):
    return fake.get("/_fake/stats")["calls"]


def delta(after, before):
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def run(w, conf, google, st, label):
    cpu0 = (cpu_of(st.proc.pid), cpu_of(google.proc.pid))
    calls0 = (calls(st), calls(google))
    d = run_daemon(w.path, conf, "--once")
    st_cpu = cpu_of(st.proc.pid) - cpu0[0]
    bq_cpu = cpu_of(google.proc.pid) - cpu0[1]
    st_calls, bq_calls = delta(calls(st), calls0[0]), delta(calls(google), calls0[1])
    if d["status"] != 0:
        for line in d["stderr"].splitlines()[-20:]:
            print(f"# daemon: {line}")
        raise RuntimeError(f"{label}: exit status {d['status']}")
    fresh = sum(metric(w.path, "rows_new_total", f) or 0 for f in ("sales", "events"))
    inserted = sum(metric(w.path, "rows_inserted_total", f) or 0 for f in ("sales", "events"))
    phases = [f"{m[0]} seeded in {m[1]} ms" for m in SEED_RE.findall(d["stderr"])]
    phases += [f"{m[0]} polled in {m[1]} ms" for m in POLL_RE.findall(d["stderr"])]
    return {"label": label, "wall": d["wall"], "cpu": d["cpu"], "st_cpu": st_cpu,
            "phases": phases,
            "bq_cpu": bq_cpu, "rows": inserted, "fresh": fresh, "peak_kib": d["peak_kib"],
            "how": d["how"], "st_calls": st_calls, "bq_calls": bq_calls}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sales", type=int, default=20000)
    ap.add_argument("--events", type=int, default=40)
    ap.add_argument("--page-size", type=int, default=None,
                    help="seetickets.page_size (default: the daemon's, 100)")
    ap.add_argument("--insert-method", default="streaming", choices=("streaming", "load"))
    a = ap.parse_args()
    if not os.access(h.STBQ_BIN, os.X_OK):
        sys.exit(f"bench_cycle: no binary at {h.STBQ_BIN}; set STBQ_BIN")

    results, failed = [], False
    try:
        with h.Workdir("bench-cycle") as w:
            t0 = time.monotonic()
            st = w.add(h.SeeTicketsFake(w.path, "--events", str(a.events), "--sales",
                                        str(a.sales)))
            google = w.add(h.GoogleFake(w.path))
            setup = time.monotonic() - t0
            over = {"seetickets.page_size": None if a.page_size is None else str(a.page_size),
                    "bigquery.batch_rows": None,
                    "bigquery.insert_method": f'"{a.insert_method}"'}
            conf = h.write_config(w.path, google, st, **over)
            print(f"cycle: seetickets-bq --once, {a.sales} sales over {a.events} events, "
                  f"page size {a.page_size or 'default'}, {a.insert_method} inserts; "
                  f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} (fakes started in "
                  f"{setup:.1f} s)", flush=True)
            first = run(w, conf, google, st, "first")
            results.append(first)
            landed = {f: h.check_exactly_once(google, st, f) for f in ("sales", "events")}
            if first["rows"] != sum(landed.values()):
                raise RuntimeError(f"first: daemon says {first['rows']} rows inserted, the "
                                   f"tables hold {sum(landed.values())}")
            if landed["sales"] < a.sales * 0.9:
                raise RuntimeError(f"first: only {landed['sales']} sales landed")
            again = run(w, conf, google, st, "again")
            results.append(again)
            if again["fresh"] or again["rows"]:
                raise RuntimeError(f"again: {again['fresh']} rows taken as new, "
                                   f"{again['rows']} inserted; expected none")
            for f, n in landed.items():
                if len(google.rows(f)) != n:
                    raise RuntimeError(f"again: table {f} changed")
    except Exception as e:  # noqa: BLE001 - print what was measured, then fail
        print(f"# FAILED: {e}", flush=True)
        failed = True

    cols = ("run", "wall_s", "cpu_s", "st_cpu", "bq_cpu", "other_s", "rows", "rows/s", "st_req",
            "bq_req", "peak_MiB")
    print("%-6s %7s %6s %6s %6s %7s %6s %7s %6s %6s %8s" % cols)
    for r in results:
        other = r["wall"] - r["cpu"] - r["st_cpu"] - r["bq_cpu"]
        print("%-6s %7.2f %6.2f %6.2f %6.2f %7.2f %6d %7.0f %6d %6d %8.1f" % (
            r["label"], r["wall"], r["cpu"], r["st_cpu"], r["bq_cpu"], other, r["rows"],
            r["rows"] / r["wall"], sum(r["st_calls"].values()), sum(r["bq_calls"].values()),
            r["peak_kib"] / 1024))
    for r in results:
        print(f"# {r['label']}: {', '.join(r['phases'])} (the daemon's log)")
        print(f"# {r['label']}: See Tickets {dict(sorted(r['st_calls'].items()))}")
        print(f"# {r['label']}: Google {dict(sorted(r['bq_calls'].items()))}")
    if results:
        print(f"# peak RSS from {results[0]['how']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

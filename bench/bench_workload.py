#!/usr/bin/python3
"""bench_workload - seetickets-bq --once on the workload of the "Performance" issue.

The setup (not measured): a fake BigQuery whose `sales` table holds 1 000 000 sales keys and
whose `events` table holds the See Tickets events, and a fake See Tickets serving
200 events x 500 sales = 100 000 sales. 90 % of those sales are already in the sales table
(their uniqueCodes are among the 1 000 000 keys); the newest 10 % (10 000) are not. Then

    seetickets-bq -c CONF --once

runs with the daemon's defaults (page size 100, 50 event codes per request, batches of 500
rows, streaming inserts or, with --method load, load jobs). Each run gets fresh fakes' state
and a fresh state directory, so every run does the same work.

Reported per run, for the daemon process only:

  wall_s     exec to exit
  cpu_s      user + system CPU time (wait4()); user_s and sys_s separately
  peak_MiB   peak RSS: the ru_maxrss that time(1)'s wait4() gets for the daemon (%M)
  st_cpu     CPU time of the See Tickets fake during the run (/proc/PID/stat), for scale
  bq_cpu     CPU time of the Google fake during the run
  poll_us_row  the poll phase's CPU per sale fetched; with --new-fraction 0 every sale is
             known, and this is what a known row costs: fetched, recognised, dropped
  phases     from the daemon's log: "keys known in table T (seeded in N ms)" per feed, and
             each feed's poll line "fetched F, new N, inserted I, rejected R in D ms"
             (D is the journal's DURATION_MS)

and the floors, the least any client pays to move the same bytes:

  curl_st    one curl process replaying every See Tickets request the daemon made (read from
             the fake's /_fake/requests log), chained with --next in a config file so it
             keeps one connection alive, as libcurl in the daemon does: its CPU and bytes
  curl_bq    the same for the seeding queries to BigQuery (jobs.query and getQueryResults
             pages, both feeds); the requestId the daemon sent makes the fake answer the
             query job the daemon read, so the pages are the same bytes
  st_curl_us_row  curl_st's CPU per sale fetched: the transport's share of a row

A run is valid only if the daemon exits 0, fetches every sale, takes exactly the new ones
as new, inserts them all, and the sales table ends with exactly keys + new distinct keys;
otherwise it is reported as invalid and the exit status is 1.

Usage: STBQ_BIN=build/src/seetickets-bq bench/bench_workload.py [--keys 1000000]
           [--events 200] [--per-event 500] [--new-fraction 0.1] [--runs 3]
           [--method streaming|load] [--track] [--json]

--track turns sales.track_changes on, with the known sales already in the table at the
version the source serves (their _fingerprint as the daemon computes it, taken from its own
--dry-run before the runs): the steady state, where every known row is read, coerced and
fingerprinted, and none has changed.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("TOP_SRCDIR", os.path.join(HERE, "..")),
                                "tests", "integration"))
sys.path.insert(0, HERE)
import harness as h  # noqa: E402
from bench_seed import cpu_of, key  # noqa: E402
from bench_seed import run_daemon as seed_run_daemon  # noqa: E402

CHUNK = 50000  # keys per POST to the fake, as bench_seed does
# The fake's data depends on its --now; a fixed day makes every run, any day, the same data.
NOW = "2026-12-04T00:00:00Z"
SEED_RE = re.compile(r"(\w+): (\d+) keys known in table \S+ \(seeded in (\d+) ms\)")
POLL_RE = re.compile(r"(\w+): fetched (\d+), new (\d+)(?:, changed \d+ \(inserted \d+\))?, "
                     r"inserted (\d+), rejected (\d+) in (\d+) ms")
# Log lines that end the phases of a --once run, in the order the daemon writes them:
# (phase, regex). The CPU the daemon had used when each was written splits its CPU time.
MARKS = [
    ("start", rb"sales: seeding known keys"),  # credentials, tables, the events' seeding
    ("seed", rb"sales: \d+ keys known in table"),  # the sales table's keys
    ("poll", rb"sales: fetched \d+"),  # the events poll, then the sales poll with its inserts
]
# Headers curl makes itself from the request it sends.
NOT_REPLAYED = {"host", "content-length", "connection"}
LONG = 900  # seconds: control requests that move a million rows through a Python fake


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def fetch_json(fake, method, path, body=None):
    """A control request with a long timeout (the harness allows 30 s, too little for a
    million rows on a loaded machine)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(fake.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=LONG) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------- setup (not measured)

def start_seetickets(w, events, sales):
    """The See Tickets fake with `sales` sales over `events` events. It generates them before
    it listens (about 4 s per 100 000 sales idle); the harness waits only 15 s for that."""
    wait_for = h.wait_for
    h.wait_for = lambda pred, timeout=10.0, what="condition", step=0.05: wait_for(
        pred, max(timeout, LONG), what, step)
    try:
        return w.add(h.SeeTicketsFake(w.path, "--events", str(events), "--sales", str(sales),
                                      "--now", NOW))
    finally:
        h.wait_for = wait_for


def split_sales(st, new_fraction):
    """(known codes, new codes) of the fake's sales: the newest new_fraction are new, as after
    a poll interval. Creation order is sale-time order in the fake."""
    codes = [row["uniqueCode"] for row in fetch_json(st, "GET", "/_fake/truth/sales")["data"]]
    n_new = round(len(codes) * new_fraction)
    return codes[:len(codes) - n_new], codes[len(codes) - n_new:]


def event_rows(st):
    """The events as the daemon would have stored them: they are all known already."""
    good, bad = h.expected_rows(st, "events")
    if bad:
        raise RuntimeError(f"{len(bad)} events of the fake do not coerce")
    return list(good.values())


def tracked_rows(w, st, events):
    """Every sale as the daemon stores it with track_changes (all columns and _fingerprint):
    its --dry-run against an empty sales table (not measured)."""
    d = os.path.join(w.path, "tracked")
    os.makedirs(d)
    g = h.GoogleFake(d)
    try:
        g.create_table("events")
        g.add_rows("events", events)
        conf = h.write_config(d, g, st, **{"sales.track_changes": "true",
                                           "sales.interval": None, "events.interval": None})
        rc, out, err = h.run_once(d, conf, "--dry-run", "--feed", "sales", timeout=LONG)
        if rc != 0:
            raise RuntimeError(f"--dry-run for the fingerprints: exit {rc}: {err[-1000:]}")
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        return {r["uniqueCode"]: r for r in rows}
    finally:
        g.stop()


def preload(google, keys, known, events, tracked=None):
    """Fill the fake BigQuery: `keys` sales keys in all, the `known` See Tickets codes among
    them and filler keys for the rest (bench_seed's "O…" keys, which the See Tickets fake
    never makes), plus the events. Only uniqueCode is set in a sales row: the rest of the
    columns are NULLABLE and seeding reads only the key."""
    if tracked:
        types = {"S": "STRING", "F": "FLOAT", "I": "INTEGER", "B": "BOOLEAN"}
        fields = [{"name": c[0], "type": types[c[1]], "mode": "NULLABLE"}
                  for c in h.SALES_COLUMNS] + [{"name": "_fingerprint", "type": "STRING"}]
        google.post("/_fake/tables", {"project": google.project, "dataset": h.DATASET,
                                      "table": "sales", "schema": {"fields": fields}})
    else:
        google.create_table("sales")
    google.create_table("events")
    google.add_rows("events", events)
    filler = keys - len(known)
    for start in range(0, keys, CHUNK):
        end = min(keys, start + CHUNK)
        rows = [(tracked[known[i - filler]] if tracked else {"uniqueCode": known[i - filler]})
                if i >= filler else {"uniqueCode": key(i)} for i in range(start, end)]
        r = fetch_json(google, "POST", f"/_fake/tables/{h.PROJECT}/{h.DATASET}/sales/rows",
                       {"rows": rows})
        if r.get("stored") != len(rows):
            raise RuntimeError(f"fake stored {r.get('stored')} of {len(rows)} keys")


def config(run_dir, google, st, method, track=False):
    """The harness's configuration with the daemon's own defaults for everything that shapes
    the work (page size, batch size, timeout), every event inside the lookback window."""
    return h.write_config(run_dir, google, st, **{
        "seetickets.page_size": None, "seetickets.timeout": None, "bigquery.batch_rows": None,
        "bigquery.insert_method": json.dumps(method), "sales.interval": None,
        "events.interval": None, "sales.track_changes": "true" if track else None})


# ---------------------------------------------------------------- the daemon

class CpuSampler(threading.Thread):
    """Every 20 ms: (bytes of the daemon's log so far, the daemon's CPU seconds), to tell
    how much CPU each phase took. The daemon is time(1)'s child, found through /proc."""

    def __init__(self, parent_pid, err_path, direct):
        super().__init__(daemon=True)
        self.parent, self.err_path, self.direct = parent_pid, err_path, direct
        self.samples, self.stop = [], threading.Event()

    def daemon_pid(self):
        if self.direct:
            return self.parent
        try:
            with open(f"/proc/{self.parent}/task/{self.parent}/children") as f:
                kids = f.read().split()
        except OSError:
            return None
        return int(kids[0]) if kids else None

    def run(self):
        pid = None
        while not self.stop.wait(0.02):
            pid = pid or self.daemon_pid()
            if pid is None:
                continue
            try:
                size = os.stat(self.err_path).st_size  # before the CPU: CPU >= the log's
                self.samples.append((size, cpu_of(pid)))
            except (OSError, IndexError, ValueError):
                return  # the daemon is gone

    def split(self, log_bytes, total):
        """CPU seconds per phase of MARKS, and "exit" for the rest; None for a phase whose
        line is missing."""
        out, prev = {}, 0.0
        for name, pat in MARKS:
            m = re.search(pat + rb"[^\n]*\n", log_bytes)
            # A line written after the last sample (the daemon exits within 20 ms of its
            # last poll line) is charged the total.
            at = None if not m else next(
                (cpu for size, cpu in self.samples if size >= m.end()), total)
            out[name] = None if at is None else max(0.0, at - prev)
            prev = prev if at is None else at
        out["exit"] = max(0.0, total - prev)
        return out


def run_daemon(run_dir, conf):
    """Run `seetickets-bq --once` to completion (bench_seed.run_daemon: CPU from wait4(), the
    peak RSS from time(1)), with the CPU split into phases at the daemon's log lines."""
    d = seed_run_daemon(run_dir, conf, "--once", watcher=CpuSampler)
    raw = d["stderr"].encode()
    return {"status": d["status"], "wall_s": d["wall"], "user_s": d["user"],
            "sys_s": d["sys"], "cpu_s": d["cpu"], "peak_kib": d["peak_kib"],
            "peak_how": "time(1) %M" if d["how"] == "time(1)" else "VmHWM polled",
            "phase_cpu": d["watched"].split(raw, d["cpu"]), "stderr": d["stderr"]}


def phases(stderr):
    """Per feed, what the daemon's log says: seeded keys and ms, poll counts and ms."""
    out = {}
    for feed, n, ms in SEED_RE.findall(stderr):
        out.setdefault(feed, {}).update(seeded=int(n), seed_ms=int(ms))
    for feed, *v in POLL_RE.findall(stderr):
        out.setdefault(feed, {}).update(zip(("fetched", "new", "inserted", "rejected",
                                             "poll_ms"), map(int, v)))
    return out


def problems_of(d, ph, want, keys_in_table):
    """Why a run does not count, if it does not."""
    out = []
    if d["status"] != 0:
        out.append(f"exit status {d['status']}")
    s = ph.get("sales", {})
    for name in ("seeded", "fetched", "new", "inserted", "rejected"):
        if s.get(name) != want[name]:
            out.append(f"sales {name} {s.get(name)}, expected {want[name]}")
    if keys_in_table != want["table"]:
        out.append(f"the sales table holds {keys_in_table}, expected {want['table']}")
    return out


def table_check(google, new):
    """Distinct keys in the fake's sales table, or -1 if any key is there twice or a new sale
    is missing."""
    rows = fetch_json(google, "GET", f"/_fake/tables/{h.PROJECT}/{h.DATASET}/sales/rows")["rows"]
    codes = {r.get("uniqueCode") for r in rows}
    if len(codes) != len(rows) or not codes.issuperset(new):
        log(f"# sales table: {len(rows)} rows, {len(codes)} distinct keys, "
            f"{len(set(new) - codes)} new sales missing")
        return -1
    return len(codes)


# ---------------------------------------------------------------- the curl floor

def curl_config(fake, requests, body_dir):
    """A curl config file replaying `requests` one after another, chained with `next`: one
    process, one kept-alive connection. Bodies go in files, read with data-binary @file."""
    def q(s):
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    lines = []
    for i, r in enumerate(requests):
        url = fake.url + r["path"]
        if r["query"]:
            url += "?" + urllib.parse.urlencode(r["query"], doseq=True)
        lines += ["silent", f"url = {q(url)}", f"request = {r['method']}", "output = /dev/null",
                  'write-out = "%{http_code} %{size_download}\\n"']
        for k, v in r["headers"].items():
            if k.lower() not in NOT_REPLAYED:
                lines.append(f"header = {q(f'{k}: {v}')}")
        if r["body"]:
            path = os.path.join(body_dir, f"body-{i}")
            with open(path, "w", encoding="utf-8") as f:
                f.write(r["body"])
            lines.append(f"data-binary = {q('@' + path)}")
        lines.append("next")
    return "\n".join(lines[:-1]) + "\n"


def curl_floor(fake, requests, run_dir, name):
    """Replay `requests` with one curl: its CPU (wait4()), requests, bytes of the bodies."""
    if not requests:
        return {"requests": 0, "bytes": 0, "cpu_s": 0.0, "wall_s": 0.0}
    body_dir = os.path.join(run_dir, f"curl-{name}")
    os.makedirs(body_dir, exist_ok=True)
    cfg = os.path.join(run_dir, f"curl-{name}.cfg")
    with open(cfg, "w") as f:
        f.write(curl_config(fake, requests, body_dir))
    t0 = time.monotonic()
    p = subprocess.Popen(["curl", "-K", cfg], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read().decode()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    replies = [line.split() for line in out.splitlines()]
    bad = [c for c, _ in replies if c != "200"]
    if p.returncode or len(replies) != len(requests) or bad:
        raise RuntimeError(f"curl {name}: exit {p.returncode}, {len(replies)} replies of "
                           f"{len(requests)}, not 200: {bad[:5]}")
    return {"requests": len(requests), "bytes": sum(int(n) for _, n in replies),
            "cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall}


def seeding_requests(google):
    """The daemon's jobs.query and getQueryResults requests, in order."""
    return [r for r in fetch_json(google, "GET", "/_fake/requests")["requests"]
            if re.search(r"/bigquery/v2/projects/[^/]+/queries(/[^/]+)?$", r["path"])]


# ---------------------------------------------------------------- one run

def measure(w, st, a, known, new, events, i, tracked=None):
    run_dir = os.path.join(w.path, f"run-{i}")
    os.makedirs(run_dir)
    google = h.GoogleFake(run_dir)  # a fresh one per run: the daemon adds the new sales
    try:
        t0 = time.monotonic()
        preload(google, a.keys, known, events, tracked)
        fetch_json(google, "DELETE", "/_fake/requests")
        fetch_json(st, "DELETE", "/_fake/requests")
        log(f"# run {i}: fakes ready in {time.monotonic() - t0:.1f} s "
            f"(load {os.getloadavg()[0]:.2f}); running the daemon")
        conf = config(run_dir, google, st, a.method, bool(tracked))
        cpu0 = (cpu_of(st.proc.pid), cpu_of(google.proc.pid))
        d = run_daemon(run_dir, conf)
        d["st_cpu"] = cpu_of(st.proc.pid) - cpu0[0]
        d["bq_cpu"] = cpu_of(google.proc.pid) - cpu0[1]
        d["phases"] = ph = phases(d["stderr"])
        d["bq_calls"] = fetch_json(google, "GET", "/_fake/stats")["calls"]  # the daemon's only
        d["table_keys"] = table_check(google, new)
        want = {"seeded": a.keys, "fetched": len(known) + len(new), "new": len(new),
                "inserted": len(new), "rejected": 0, "table": a.keys + len(new)}
        d["problems"] = problems_of(d, ph, want, d["table_keys"])
        if tracked and "changed 0 (inserted 0)" not in d["stderr"]:
            d["problems"].append("known sales were taken for changed ones")
        if d["problems"]:
            for line in d["stderr"].splitlines()[-20:]:
                log(f"# daemon: {line}")
        d["curl_st"] = curl_floor(st, fetch_json(st, "GET", "/_fake/requests")["requests"],
                                  run_dir, "seetickets")
        d["curl_bq"] = curl_floor(google, seeding_requests(google), run_dir, "bigquery")
        del d["stderr"]
        d["run"] = i
        return d
    finally:
        google.stop()


# ---------------------------------------------------------------- report

# (heading, format, figure of a run) for the two tables; None where a run lacks the figure.
def _ph(feed, name):
    return lambda r: r["phases"].get(feed, {}).get(name)


def _per_row(r, cpu_s):
    """CPU microseconds per sale fetched: with --new-fraction 0, what a known row costs."""
    fetched = r["phases"].get("sales", {}).get("fetched")
    return cpu_s * 1e6 / fetched if fetched else None


DAEMON_COLS = [
    ("wall_s", "%7.2f", lambda r: r["wall_s"]),
    ("cpu_s", "%6.2f", lambda r: r["cpu_s"]),
    ("user_s", "%6.2f", lambda r: r["user_s"]),
    ("sys_s", "%6.2f", lambda r: r["sys_s"]),
    ("peak_MiB", "%8.1f", lambda r: r["peak_kib"] / 1024),
    ("start_cpu", "%9.2f", lambda r: r["phase_cpu"]["start"]),
    ("seed_cpu", "%8.2f", lambda r: r["phase_cpu"]["seed"]),
    ("poll_cpu", "%8.2f", lambda r: r["phase_cpu"]["poll"]),
    ("exit_cpu", "%8.2f", lambda r: r["phase_cpu"]["exit"]),
    ("poll_us_row", "%11.2f", lambda r: _per_row(r, r["phase_cpu"]["poll"])),
]
LOG_COLS = [
    ("seed_ms", "%7d", _ph("sales", "seed_ms")),
    ("poll_ms", "%7d", _ph("sales", "poll_ms")),
    ("ev_seed", "%7d", _ph("events", "seed_ms")),
    ("ev_poll", "%7d", _ph("events", "poll_ms")),
    ("fetched", "%7d", _ph("sales", "fetched")),
    ("new", "%6d", _ph("sales", "new")),
    ("inserted", "%8d", _ph("sales", "inserted")),
    ("st_cpu", "%6.2f", lambda r: r["st_cpu"]),
    ("bq_cpu", "%6.2f", lambda r: r["bq_cpu"]),
]
FLOOR_COLS = [
    ("st_req", "%6d", lambda r: r["curl_st"]["requests"]),
    ("st_MB", "%6.1f", lambda r: r["curl_st"]["bytes"] / 1e6),
    ("st_curl_cpu", "%11.2f", lambda r: r["curl_st"]["cpu_s"]),
    ("st_curl_wall", "%12.2f", lambda r: r["curl_st"]["wall_s"]),
    ("st_curl_us_row", "%14.2f", lambda r: _per_row(r, r["curl_st"]["cpu_s"])),
    ("bq_req", "%6d", lambda r: r["curl_bq"]["requests"]),
    ("bq_MB", "%6.1f", lambda r: r["curl_bq"]["bytes"] / 1e6),
    ("bq_curl_cpu", "%11.2f", lambda r: r["curl_bq"]["cpu_s"]),
    ("bq_curl_wall", "%12.2f", lambda r: r["curl_bq"]["wall_s"]),
]


def row_text(cols, values):
    cells = []
    for (name, fmt, _), v in zip(cols, values):
        width = len(fmt % 0)
        cells.append("%*s" % (max(width, len(name)), "-" if v is None else fmt % v))
    return " ".join(cells)


def median_of(cols, runs):
    out = []
    for _, _, get in cols:
        vals = [get(r) for r in runs if get(r) is not None]
        out.append(statistics.median(vals) if vals else None)
    return out


def print_table(title, cols, runs):
    print(title)
    print("%-6s " % "run" + " ".join("%*s" % (max(len(f % 0), len(n)), n) for n, f, _ in cols))
    for r in runs:
        mark = "" if not r["problems"] else "  INVALID: " + "; ".join(r["problems"])
        print("%-6s " % r["run"] + row_text(cols, [get(r) for _, _, get in cols]) + mark)
    good = [r for r in runs if not r["problems"]]
    if good:
        print("%-6s " % "median" + row_text(cols, median_of(cols, good)))


def report_text(a, info, runs):
    print(f"workload: seetickets-bq --once, {a.keys} keys in BigQuery, {info['sales']} sales "
          f"over {info['events']} events, {info['new']} new, {a.method} inserts"
          f"{', track_changes' if a.track else ''}; "
          f"{info['cpus']} CPUs, load {info['load_before']:.2f} -> {info['load_after']:.2f}")
    print_table("the daemon: CPU seconds in all, then per phase", DAEMON_COLS, runs)
    print_table("its log (sales unless ev_), and the fakes' CPU seconds", LOG_COLS, runs)
    print_table("floor: one curl replaying the daemon's requests", FLOOR_COLS, runs)
    for r in runs:
        print(f"# run {r['run']}: Google calls {dict(sorted(r['bq_calls'].items()))}")
    if runs:
        print(f"# peak RSS from {runs[0]['peak_how']}; phases end at the daemon's log lines "
              "'sales: seeding known keys', '… keys known in table', 'sales: fetched …' "
              "(CPU sampled every 20 ms)")


def report_json(a, info, runs):
    good = [r for r in runs if not r["problems"]]
    cols = DAEMON_COLS + LOG_COLS + FLOOR_COLS
    doc = {"benchmark": "bench_workload", "params": vars(a), "setup": info, "runs": runs,
           "median": dict(zip([n for n, _, _ in cols], median_of(cols, good))) if good else None,
           "valid": len(good) == len(runs) == a.runs}
    json.dump(doc, sys.stdout, indent=1)
    print()


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", type=int, default=1000000, help="sales keys in BigQuery")
    ap.add_argument("--events", type=int, default=200, help="See Tickets events")
    ap.add_argument("--per-event", type=int, default=500,
                    help="sales per event on average (the fake weights events unevenly)")
    ap.add_argument("--new-fraction", type=float, default=0.1,
                    help="fraction of the See Tickets sales not in BigQuery")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--method", default="streaming", choices=("streaming", "load"))
    ap.add_argument("--track", action="store_true", help="sales.track_changes on (steady state)")
    ap.add_argument("--json", action="store_true", help="print one JSON document instead")
    a = ap.parse_args()
    if not os.access(h.STBQ_BIN, os.X_OK):
        sys.exit(f"bench_workload: no binary at {h.STBQ_BIN}; set STBQ_BIN")

    runs = []
    with h.Workdir("bench-workload") as w:
        t0 = time.monotonic()
        st = start_seetickets(w, a.events, a.events * a.per_event)
        known, new = split_sales(st, a.new_fraction)
        if len(known) > a.keys:
            sys.exit(f"bench_workload: {len(known)} known sales do not fit in {a.keys} keys")
        events = event_rows(st)
        per_event = fetch_json(st, "GET", "/_fake/truth/summary")["sales_by_event"].values()
        info = {"sales": len(known) + len(new), "known": len(known), "new": len(new),
                "events": len(events), "per_event_min": min(per_event),
                "per_event_max": max(per_event), "cpus": os.cpu_count(),
                "load_before": os.getloadavg()[0], "binary": h.STBQ_BIN}
        log(f"# workload: {a.keys} keys in BigQuery; {info['sales']} sales over "
            f"{info['events']} events ({info['per_event_min']}-{info['per_event_max']} per "
            f"event), {len(new)} new; {a.method} inserts; See Tickets fake ready in "
            f"{time.monotonic() - t0:.1f} s")
        tracked = tracked_rows(w, st, events) if a.track else None
        for i in range(1, a.runs + 1):
            try:
                runs.append(measure(w, st, a, known, new, events, i, tracked))
            except Exception as e:  # noqa: BLE001 - report, go on with the next run
                log(f"# run {i}: FAILED: {e}")
        info["load_after"] = os.getloadavg()[0]

    (report_json if a.json else report_text)(a, info, runs)
    return 0 if all(not r["problems"] for r in runs) and len(runs) == a.runs else 1


if __name__ == "__main__":
    sys.exit(main())

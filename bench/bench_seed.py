#!/usr/bin/python3
"""bench_seed - start-up cost of seetickets-bq with a large sales table.

For each size N (default 0, 100 000 and 1 000 000) a fresh fake BigQuery gets N sales keys
(through the fake's POST /_fake/tables/P/D/T/rows, in chunks; the fake's default
--max-page-bytes), a fresh fake See Tickets a handful of sales, and then

    seetickets-bq -c CONF --once --feed sales

runs to completion. Reported per N:

  preload_s   time to load the N keys into the fake (setup, not the daemon)
  wall_s      the daemon's run, exec to exit
  seed_ms     what the daemon logs: "keys known in table ... (seeded in N ms)"
  serve_ms    a Python client paging the same query the same way (jobs.query, then
              getQueryResults with maxResults=100000) after the daemon's run: the fake's own
              time to serve the pages, HTTP only (the client's JSON parsing is left out)
  bq_cpu      CPU time of the Google fake during the daemon's run (/proc/PID/stat): the
              other measure of the same thing
  cpu_s       the daemon's user+system CPU time, from wait4()
  peak_MiB    the daemon's peak RSS, from /usr/bin/time (%M) or, without it, VmHWM polled
              every 50 ms
  B/key       (peak RSS at N - peak RSS at 0 keys) / N
  dB/key      (peak RSS at N - peak RSS at the size before) / (N - that size): the cost of
              one more key once the first result pages have set the peak

seed_ms - serve_ms is roughly what the daemon itself adds to seeding, and cpu_s against wall_s
(and bq_cpu) says how much of the run the daemon spent working rather than waiting for the fake.

The run is checked: it must exit 0, have seeded exactly N keys, and have inserted every good
sale of the See Tickets fake; otherwise the exit status is 1.

Usage: STBQ_BIN=build/src/seetickets-bq bench/bench_seed.py [--keys 0,100000,1000000]
           [--sales 20]
"""
import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.environ.get("TOP_SRCDIR", os.path.join(HERE, "..")),
                                "tests", "integration"))
import harness as h  # noqa: E402

CHUNK = 50000  # keys per POST to the fake
SEED_PAGE_ROWS = 100000  # BQ_SEED_PAGE_ROWS in src/bigquery.h: the daemon's maxResults
# Preloaded keys look like the API's (10 characters) but start with "O", a letter the
# See Tickets fake never uses in codes, so they cannot collide with its sales.
CODE_CHARS = "ABCDEFGHIJKLMNPQRSTUVWXYZ0123456789"
MULT = 2654435761  # coprime to 35: i -> i * MULT mod 35^9 is a bijection
SPACE = len(CODE_CHARS) ** 9
SEED_RE = re.compile(r"sales: (\d+) keys known in table \S+ \(seeded in (\d+) ms\)")


def key(i):
    v = (i * MULT) % SPACE
    out = ["O"]
    for _ in range(9):
        v, d = divmod(v, 35)
        out.append(CODE_CHARS[d])
    return "".join(out)


def preload(google, n):
    t0 = time.monotonic()
    for start in range(0, n, CHUNK):
        rows = [{"uniqueCode": key(i)} for i in range(start, min(n, start + CHUNK))]
        r = google.add_rows("sales", rows)
        if r.get("stored") != len(rows):
            raise RuntimeError(f"fake stored {r.get('stored')} of {len(rows)} keys")
    return time.monotonic() - t0


class HwmPoller(threading.Thread):
    """Peak VmHWM seen by polling /proc every 50 ms: a cross-check of ru_maxrss."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.kib, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.kib = max(self.kib, int(line.split()[1]))
            except OSError:
                return
            self.stop.wait(0.05)


TIME = "/usr/bin/time"  # GNU time (Debian package `time`)
TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid):
    """utime + stime of a running process, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces: count fields after its closing parenthesis.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run_daemon(workdir, conf, *args, watcher=None):
    """Run the binary to completion. Returns a dict: status, wall (s), cpu (s), user, sys,
    peak_kib, how (where peak_kib came from), stderr, and `watched`: the object
    watcher(pid, err_path, direct) made (a thread started with the run and stopped and joined
    after it; `direct` says pid is the daemon itself, not time(1)), or None.

    The peak comes from GNU time's %M when it is installed, else from polling VmHWM. Not from
    the ru_maxrss of our own wait4(): Python starts children with vfork(), and exec() folds the
    high-water mark of the mm it leaves -- this benchmark's -- into the child's ru_maxrss. time(1)
    forks from its own small process, so its figure is the daemon's. CPU time does not have the
    problem and comes from wait4() (time's own share is a millisecond)."""
    stamp = time.monotonic_ns()
    err_path = os.path.join(workdir, f"daemon-{stamp}.err")
    time_path = os.path.join(workdir, f"time-{stamp}.out")
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    env.pop("JOURNAL_STREAM", None)
    cmd = [h.STBQ_BIN, "-c", conf, *args]
    have_time = os.access(TIME, os.X_OK)
    if have_time:
        cmd = [TIME, "-f", "%M", "-o", time_path, *cmd]
    with open(err_path, "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
        poll = HwmPoller(p.pid)
        if not have_time:
            poll.start()
        watched = watcher(p.pid, err_path, direct=not have_time) if watcher else None
        if watched:
            watched.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        except BaseException:
            p.kill()
            raise
        wall = time.monotonic() - t0
        if not have_time:
            poll.stop.set()
            poll.join()
        if watched:
            watched.stop.set()
            watched.join()
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    with open(err_path, "rb") as f:
        text = f.read().decode(errors="replace")
    peak, how = poll.kib, "polled VmHWM"
    if have_time:
        with open(time_path) as f:
            # "Command exited with non-zero status N" may come first.
            peak, how = int(f.read().split()[-1]), "time(1)"
    return {"status": p.returncode, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
            "user": ru.ru_utime, "sys": ru.ru_stime, "peak_kib": peak, "how": how,
            "stderr": text, "watched": watched}


def page_like_the_daemon(google, sql):
    """Page a query's results as bq_query() does, on one kept-alive connection. Returns
    (seconds waiting for the fake, seconds parsing here, rows, pages)."""
    tok = google.post("/_fake/tokens", {"issue": True})["access_token"]
    hdr = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", google.port, timeout=300)
    base = f"/bigquery/v2/projects/{h.PROJECT}/queries"
    serve = parse = 0.0
    rows = pages = 0

    def call(method, path, body=None):
        nonlocal serve, parse
        t0 = time.monotonic()
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=hdr)
        resp = conn.getresponse()
        raw = resp.read()
        t1 = time.monotonic()
        reply = json.loads(raw)
        parse += time.monotonic() - t1
        serve += t1 - t0
        if resp.status != 200:
            raise RuntimeError(f"{method} {path}: {resp.status} {raw[:300]!r}")
        return reply

    reply = call("POST", base + "?prettyPrint=false",
                 {"query": sql, "useLegacySql": False, "timeoutMs": 10000,
                  "maxResults": SEED_PAGE_ROWS, "requestId": str(uuid.uuid4()),
                  "formatOptions": {"useInt64Timestamp": True}, "location": "EU"})
    job = reply["jobReference"]["jobId"]
    while True:
        if not reply.get("jobComplete"):
            raise RuntimeError("query job not complete; the benchmark expects the fake's default")
        rows += len(reply.get("rows", []))
        pages += 1
        token = reply.get("pageToken")
        if not token:
            break
        reply = call("GET", f"{base}/{job}?location=EU&maxResults={SEED_PAGE_ROWS}"
                     f"&timeoutMs=10000&formatOptions.useInt64Timestamp=true&prettyPrint=false"
                     f"&pageToken={token}")
    conn.close()
    return serve, parse, rows, pages


def metric(workdir, name, feed):
    try:
        with open(os.path.join(workdir, "metrics.prom")) as f:
            for line in f:
                if line.startswith(f'seetickets_bq_{name}{{feed="{feed}"}} '):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def measure(n, sales):
    with h.Workdir(f"bench-seed-{n}") as w:
        google = w.add(h.GoogleFake(w.path))
        google.create_table("sales")
        preload_s = preload(google, n)
        st = w.add(h.SeeTicketsFake(w.path, "--events", "4", "--sales", str(sales)))
        codes = sorted({str(e["id"]) for e in st.truth("events")})
        conf = h.write_config(w.path, google, st, **{
            "sales.event_codes": "[ " + ", ".join(json.dumps(c) for c in codes) + " ]"})
        good, _ = h.expected_rows(st, "sales")

        bq_cpu = cpu_of(google.proc.pid)
        d = run_daemon(w.path, conf, "--once", "--feed", "sales")
        bq_cpu = cpu_of(google.proc.pid) - bq_cpu
        err = d["stderr"]
        m = SEED_RE.search(err)
        problems = []
        if d["status"] != 0:
            problems.append(f"exit status {d['status']}")
        if not m or int(m.group(1)) != n:
            problems.append(f"seeded {m.group(1) if m else 'no'} keys, expected {n}")
        inserted = metric(w.path, "rows_inserted_total", "sales")
        if inserted != len(good):
            problems.append(f"inserted {inserted} sales, expected {len(good)}")
        if problems:
            for line in err.splitlines()[-20:]:
                print(f"# daemon: {line}")
            raise RuntimeError(f"{n} keys: " + "; ".join(problems))

        sql = (f"SELECT uniqueCode FROM `{h.PROJECT}.{h.DATASET}.sales` "
               "WHERE uniqueCode IS NOT NULL")
        serve, parse, rows, pages = page_like_the_daemon(google, sql)
        if rows != n + len(good):
            raise RuntimeError(f"the paging client read {rows} rows, expected {n + len(good)}")
        return {
            "keys": n, "preload_s": preload_s, "wall_s": d["wall"], "seed_ms": int(m.group(2)),
            "serve_ms": serve * 1000, "parse_ms": parse * 1000, "pages": pages,
            "cpu_s": d["cpu"], "bq_cpu": bq_cpu, "peak_kib": d["peak_kib"], "how": d["how"],
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keys", default="0,100000,1000000",
                    help="comma-separated table sizes; 0 is added as the RSS baseline")
    ap.add_argument("--sales", type=int, default=20, help="sales in the See Tickets fake")
    a = ap.parse_args()
    sizes = sorted({0} | {int(x) for x in a.keys.split(",") if x.strip()})
    if not os.access(h.STBQ_BIN, os.X_OK):
        sys.exit(f"bench_seed: no binary at {h.STBQ_BIN}; set STBQ_BIN")

    print(f"seed: seetickets-bq --once --feed sales, {a.sales} See Tickets sales, "
          f"sales table of N keys; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}",
          flush=True)
    cols = ("keys", "preload_s", "wall_s", "seed_ms", "serve_ms", "bq_cpu", "cpu_s", "peak_MiB",
            "B/key", "dB/key")
    print("%9s %9s %7s %8s %8s %6s %6s %8s %6s %6s" % cols, flush=True)
    base = prev = None
    failed = False
    for n in sizes:
        try:
            r = measure(n, a.sales)
        except Exception as e:  # noqa: BLE001 - report, go on with the next size
            print(f"# {n} keys: FAILED: {e}", flush=True)
            failed = True
            continue
        if n == 0:
            base = r["peak_kib"]
        per_key = "-" if not n or base is None else "%.0f" % ((r["peak_kib"] - base) * 1024 / n)
        marginal = "-" if not n or prev is None else "%.0f" % (
            (r["peak_kib"] - prev[1]) * 1024 / (n - prev[0]))
        prev = (n, r["peak_kib"])
        print("%9d %9.1f %7.2f %8d %8.0f %6.2f %6.2f %8.1f %6s %6s" % (
            n, r["preload_s"], r["wall_s"], r["seed_ms"], r["serve_ms"], r["bq_cpu"],
            r["cpu_s"], r["peak_kib"] / 1024, per_key, marginal), flush=True)
        print(f"#   {r['pages']} result pages; the paging client spent {r['parse_ms']:.0f} ms "
              f"parsing them; peak RSS from {r['how']}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

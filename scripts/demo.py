#!/usr/bin/python3
"""Run the daemon against the bundled fakes and show the result (scripts/demo)."""
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
os.environ["STBQ_BIN"] = os.path.abspath(sys.argv[1])
import harness  # noqa: E402

harness.STBQ_BIN = os.environ["STBQ_BIN"]
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 30


def main():
    with harness.Workdir("demo") as w:
        print("starting the fake See Tickets API and the fake Google APIs on loopback ...")
        g = w.add(harness.GoogleFake(w.path))
        s = w.add(harness.SeeTicketsFake(w.path, "--events", "8", "--sales", "400"))
        cfg = harness.write_config(w.path, g, s, **{"sales.interval": "5", "events.interval": "10",
                                                    "seetickets.page_size": "100",
                                                    "sales.track_changes": "true",
                                                    "events.track_changes": "true"})
        print(f"configuration: {cfg}")
        print(f"running seetickets-bq in the foreground for {seconds} s; its log follows\n")
        d = harness.Daemon(w.path, cfg)
        w.add(d)
        stop = threading.Event()

        def tail():
            pos = 0
            while not stop.is_set():
                with open(d.stderr_path, "rb") as f:
                    f.seek(pos)
                    chunk = f.read()
                    pos += len(chunk)
                if chunk:
                    sys.stdout.write("  | " + chunk.decode(errors="replace").replace("\n", "\n  | ").rstrip(" |"))
                    sys.stdout.flush()
                time.sleep(0.3)

        t = threading.Thread(target=tail, daemon=True)
        t.start()
        end = time.monotonic() + seconds
        grown = 0
        event = s.truth("events")[0]["id"]
        sale = s.truth("sales")[0]["uniqueCode"]
        changed = False
        while time.monotonic() < end - 8:
            time.sleep(4)
            s.grow(sales=25)
            grown += 25
            if not changed:
                # Rows change after they are first seen: track_changes records it.
                s.post("/_fake/update", {"feed": "events", "key": event,
                                         "set": {"starts": "2031-05-01T20:00:00Z"}})
                s.post("/_fake/update", {"feed": "sales", "key": sale,
                                         "set": {"isPending": False, "sold": 3}})
                changed = True
        time.sleep(max(0, end - time.monotonic()))
        rc = d.stop()
        time.sleep(0.5)
        stop.set()
        t.join()
        print(f"\ndaemon stopped with exit status {rc}; {grown} sales appeared while it ran\n")
        ok = True
        for feed in ("events", "sales"):
            want, bad = harness.expected_rows(s, feed)
            rows = g.rows(feed)
            keys = [r[harness.KEYS[feed]] for r in rows]
            dup = len(keys) - len(set(keys))
            missing = len(set(want) - set(keys))
            print(f"{feed:>7}: source {len(want)} rows, BigQuery {len(rows)} rows, "
                  f"{dup} duplicates, {missing} not yet loaded")
            ok = ok and dup == 0
        print("\na few sales rows as they landed in BigQuery:")
        for r in g.rows("sales")[:3]:
            shown = {k: r[k] for k in ("uniqueCode", "eventId", "eventName", "sold", "faceValue",
                                       "isPending", "country")}
            print("  " + json.dumps(shown, ensure_ascii=False))
        print(f"\nchanged versions (track_changes): {len(g.rows('events_changes'))} in "
              f"events_changes, {len(g.rows('sales_changes'))} in sales_changes; "
              "the postponed event in events_current:")
        for r in g.rows("events_current"):
            if str(r["id"]) == str(event):
                print("  " + json.dumps({k: r[k] for k in ("id", "name", "starts", "_observed_at")},
                                        ensure_ascii=False))
        print("\nseetickets-bq --audit, against the same fakes:\n")
        audit = subprocess.run([harness.STBQ_BIN, "-c", cfg, "--audit"], capture_output=True,
                               text=True, timeout=300)
        print("  " + audit.stdout.rstrip().replace("\n", "\n  "))
        if audit.returncode != 0:
            print(audit.stderr[-3000:])
        return 0 if ok and audit.returncode == 0 else 1


sys.exit(main())

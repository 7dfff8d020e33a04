#!/usr/bin/python3
"""Run the daemon against the bundled fakes and show the result (scripts/demo)."""
import json
import os
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
                                                    "seetickets.page_size": "100"})
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
        while time.monotonic() < end - 8:
            time.sleep(4)
            s.grow(sales=25)
            grown += 25
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
        return 0 if ok else 1


sys.exit(main())

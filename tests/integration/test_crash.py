#!/usr/bin/python3
"""Crashes and outages: kill -9 at random moments, a full disk, BigQuery down.
Real daemon, fake servers, public interface only; every test compares
BigQuery's rows with the source's ground truth."""
import os
import random
import resource
import time

from harness import (Daemon, Tap, Workdir, check_exactly_once,
                     run_once)

from test_pipeline import SEED, once_ok, setup  # noqa: E402,F401


def test_bigquery_outage_keeps_rows_spooled_then_delivers_them():
    with Workdir("outage") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        g.fault({"status": 503, "body": {"error": {"code": 503, "message": "down",
                 "errors": [{"reason": "backendError", "message": "down"}]}}},
                path="sales/insertAll", times=0)
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 75, (rc, err[-2000:])
        spool = os.path.join(w.path, "state", "spool")
        assert [f for f in os.listdir(spool) if f.startswith("sales-")]
        g.clear_faults()
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")
        assert not [f for f in os.listdir(spool) if f.startswith("sales-")]


def test_disk_full_stops_fetching_and_loses_nothing():
    with Workdir("diskfull") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")

        def small_files():
            resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        rc, out, err = run_once(w.path, cfg, "--once", preexec=small_files)
        assert rc != 0, "a spool that cannot be written must not end in success"
        assert "cannot spool" in err, err[-2000:]
        sent = len(g.rows("sales"))
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")
        assert sent <= len(g.rows("sales"))


def test_kill9_at_random_moments_loses_and_duplicates_nothing():
    rng = random.Random(SEED)
    print(f"# kill -9 schedule seed {SEED} (STBQ_TEST_SEED to repeat)")
    with Workdir("kill9") as w:
        g, s, cfg = setup(w, "--sales", "20000", "--events", "40",
                          **{"sales.interval": "1", "events.interval": "1",
                             "bigquery.batch_rows": "250", "seetickets.page_size": "200"})
        kills = 0
        for round_ in range(6):
            if round_ in (2, 4):
                g.fault({"lost_ack": True}, path="sales/insertAll", times=2, skip=rng.randrange(5))
            s.grow(sales=rng.randrange(50, 400))
            d = Daemon(w.path, cfg, notify=False)
            time.sleep(rng.uniform(0.3, 4.0))
            if d.proc.poll() is None:
                kills += 1
            d.kill9()
        g.clear_faults()
        once_ok(w, cfg)
        print(f"# {kills} kill -9 while running")
        assert kills >= 4
        n = check_exactly_once(g, s, "sales")
        check_exactly_once(g, s, "events")
        assert n > 20000


if __name__ == "__main__":
    t = Tap()
    for fn in (test_bigquery_outage_keeps_rows_spooled_then_delivers_them,
               test_disk_full_stops_fetching_and_loses_nothing,
               test_kill9_at_random_moments_loses_and_duplicates_nothing):
        t.run(fn)
    t.done()

#!/usr/bin/python3
"""seetickets-bq --audit: the real binary against the fakes. A clean table
is clean; a planted duplicate and a planted missing row are found, by key,
with exit status 1; rows still spooled, dead-lettered or newer than the
service's last poll are told apart and are no failure; the audit writes
nothing; --wait confirms against the service's next poll."""
import json
import os
import time

from harness import (Daemon, GoogleFake, SeeTicketsFake, Tap, Workdir, run_once,
                     write_config)


def setup(w, *st_args, **cfg):
    g = w.add(GoogleFake(w.path))
    s = w.add(SeeTicketsFake(w.path, *st_args))
    return g, s, write_config(w.path, g, s, **cfg)


def audit(w, cfg, *args):
    rc, out, err = run_once(w.path, cfg, "--audit", "--json", *args)
    assert rc in (0, 1), f"audit exit {rc}: {err[-2000:]}"
    return rc, json.loads(out), err


def counts(doc, feed):
    f = doc["feeds"][feed]
    return {k: v["count"] for k, v in f.items() if isinstance(v, dict)}


def clean(doc, feed):
    c = counts(doc, feed)
    return all(n == 0 for n in c.values()), c


def once_ok(w, cfg):
    rc, out, err = run_once(w.path, cfg, "--once")
    assert rc == 0, f"--once exit {rc}: {err[-2000:]}"


def plant_old_sale(s, key, days_ago=3):
    """A sale of an existing event, dated days ago, that appears at the
    source only now: a row every earlier poll should have had."""
    sale = dict(s.truth("sales")[0])
    sale["uniqueCode"] = key
    when = time.gmtime(time.time() - days_ago * 86400)
    sale["date"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", when)
    s.post("/_fake/raw_rows", {"feed": "sales", "event": str(sale["eventId"]),
                               "text": json.dumps(sale)})
    return sale


def test_a_clean_table_is_clean():
    with Workdir("audit-clean") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        g.call("DELETE", "/_fake/requests")
        rc, doc, err = audit(w, cfg)
        assert rc == 0 and doc["ok"] is True, doc
        for feed in ("events", "sales"):
            ok, c = clean(doc, feed)
            assert ok, (feed, c)
            f = doc["feeds"][feed]
            assert f["source_rows"] > 0 and f["source_rows"] == f["bigquery_keys"], f
            assert f["last_complete_poll"], f
        # It inserted nothing, created nothing, changed nothing.
        writes = [r for r in g.requests() if r["method"] != "GET" and
                  not r["path"].endswith("/queries") and "/queries/" not in r["path"] and
                  "/token" not in r["path"]]
        assert writes == [], writes
        # The human summary says the same.
        rc2, out, _ = run_once(w.path, cfg, "--audit")
        assert rc2 == 0 and "audit: OK" in out, out


def test_a_planted_duplicate_and_missing_row_are_found_by_key():
    with Workdir("audit-planted") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        rows = g.rows("sales")
        dup = rows[3]
        g.add_rows("sales", [dup])
        sale = plant_old_sale(s, "ST-PLANTED-MISSING-1")
        rc, doc, err = audit(w, cfg)
        assert rc == 1 and doc["ok"] is False, doc
        c = counts(doc, "sales")
        assert c["duplicated"] == 1 and c["missing"] == 1, c
        f = doc["feeds"]["sales"]
        assert f["duplicated"]["examples"] == [dup["uniqueCode"]], f["duplicated"]
        assert f["missing"]["examples"] == ["ST-PLANTED-MISSING-1"], f["missing"]
        assert doc["feeds"]["events"]["ok"] is True
        rc, out, err = run_once(w.path, cfg, "--audit", "--feed", "sales")
        assert rc == 1, (rc, err[-2000:])
        assert "ST-PLANTED-MISSING-1" in out and dup["uniqueCode"] in out, out
        assert "audit: FAILED" in out and "events (" not in out, out
        # Keys only: no personal field of any sale reaches the output.
        for r in rows[:50] + [sale]:
            loc = r.get("location") or {}
            for v in (r.get("postCode"), loc.get("postCode") if isinstance(loc, dict) else None):
                if v:
                    assert v not in out and v not in err, v
        # The service then loads the missing row, and only the duplicate remains.
        once_ok(w, cfg)
        rc, doc, _ = audit(w, cfg, "--feed", "sales")
        c = counts(doc, "sales")
        assert rc == 1 and c["missing"] == 0 and c["duplicated"] == 1, c


def test_rows_newer_than_the_last_poll_are_not_yet_polled():
    with Workdir("audit-new") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        time.sleep(1.1)  # the new sales are dated after the poll's start
        s.grow(sales=4)
        rc, doc, _ = audit(w, cfg, "--feed", "sales")
        c = counts(doc, "sales")
        assert rc == 0 and doc["ok"], doc
        assert c["not_yet_polled"] == 4 and c["missing"] == 0, c


def test_wait_confirms_against_the_service_s_next_poll():
    with Workdir("audit-wait") as w:
        g, s, cfg = setup(w, **{"sales.interval": "3", "events.interval": "3"})
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        d.wait_notify("STATUS=sales: fetched", 30)
        time.sleep(1.1)
        s.grow(sales=3)
        rc, doc, err = audit(w, cfg, "--feed", "sales", "--wait")
        c = counts(doc, "sales")
        assert rc == 0 and c["not_yet_polled"] == 0 and c["missing"] == 0, (c, err[-1500:])
        assert doc["feeds"]["sales"]["last_complete_poll"] >= doc["feeds"]["sales"]["source_read_at"]
        d.stop()


def test_wait_without_a_service_gives_up_with_75():
    with Workdir("audit-nowait") as w:
        g, s, cfg = setup(w, **{"sales.interval": "1"})
        once_ok(w, cfg)
        time.sleep(1.1)
        s.grow(sales=2)
        t0 = time.monotonic()
        rc, out, err = run_once(w.path, cfg, "--audit", "--feed", "sales", "--wait")
        assert rc == 75, (rc, err[-1500:])
        assert "is the service running" in err, err[-1500:]
        assert time.monotonic() - t0 < 2 * 1 + 60 + 30


def test_spooled_and_dead_lettered_rows_are_pending_and_rejected():
    with Workdir("audit-pending") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        # Five more sales; BigQuery refuses one of them, and the rest cannot be sent.
        s.grow(sales=5)
        g.fault({"insert_errors": [{"index": 0, "reason": "invalid", "message": "bad"}]},
                path=r"/tables/sales/insertAll", times=1)
        g.fault({"status": 503}, path=r"/tables/sales/insertAll", times=0, skip=0)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
        assert rc in (69, 75), (rc, err[-1500:])
        g.clear_faults()
        rc, doc, _ = audit(w, cfg, "--feed", "sales")
        c = counts(doc, "sales")
        assert rc == 0 and c["missing"] == 0, c
        assert c["pending"] + c["rejected"] == 5 and c["rejected"] == 1, c


def test_audit_errors_exit_as_elsewhere():
    with Workdir("audit-errors") as w:
        g, s, cfg = setup(w)
        rc, out, err = run_once(w.path, cfg, "--json")
        assert rc == 64, rc
        rc, out, err = run_once(w.path, cfg, "--audit", "--once")
        assert rc == 64, rc
        bad = write_config(w.path, g, s, **{"bigquery.batch_rows": "0"})
        rc, out, err = run_once(w.path, bad, "--audit")
        assert rc == 78, rc
        cfg = write_config(w.path, g, s, **{"google.bigquery_endpoint": '"http://127.0.0.1:9"'})
        rc, out, err = run_once(w.path, cfg, "--audit", timeout=240)
        assert rc == 69, (rc, err[-1500:])
        assert not os.path.exists(os.path.join(w.path, "state", "spool")), "the audit wrote state"


if __name__ == "__main__":
    t = Tap()
    for fn in (test_wait_confirms_against_the_service_s_next_poll,
               test_wait_without_a_service_gives_up_with_75,
               test_audit_errors_exit_as_elsewhere,
               test_a_clean_table_is_clean,
               test_a_planted_duplicate_and_missing_row_are_found_by_key,
               test_rows_newer_than_the_last_poll_are_not_yet_polled,
               test_spooled_and_dead_lettered_rows_are_pending_and_rejected):
        t.run(fn)
    t.done()

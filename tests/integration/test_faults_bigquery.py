#!/usr/bin/python3
"""BigQuery faults during a cycle: retries, splits, per-row errors, token refresh, load jobs.
Real daemon, fake servers, public interface only; every test compares
BigQuery's rows with the source's ground truth."""
import json
import os

from harness import (Daemon, Tap, Workdir, check_exactly_once,
                     expected_rows)

from test_pipeline import once_ok, setup  # noqa: E402,F401


def bq_fault_run(action, path="/insertAll", times=1, google_args=(), **cfg):
    with Workdir("bqfault") as w:
        g, s, conf = setup(w, google_args=google_args, **cfg)
        g.fault(action, path=path, times=times)
        out, err = once_ok(w, conf)
        check_exactly_once(g, s, "events")
        check_exactly_once(g, s, "sales")
        return g, err


def test_bigquery_503_during_insert_is_retried():
    bq_fault_run({"status": 503, "body": {"error": {"code": 503, "message": "backend",
                  "errors": [{"reason": "backendError", "message": "x"}]}}}, times=2)


def test_bigquery_lost_acknowledgement_duplicates_nothing():
    bq_fault_run({"lost_ack": True}, times=3)


def test_bigquery_rate_limit_403_backs_off_and_succeeds():
    bq_fault_run({"status": 403, "body": {"error": {"code": 403, "message": "Exceeded rate limits",
                  "errors": [{"reason": "rateLimitExceeded", "message": "x"}]}}}, times=2)


def test_bigquery_stopped_rows_are_resent():
    bq_fault_run({"insert_errors": [{"index": 3, "reason": "stopped"},
                                    {"index": 1, "reason": "timeout"}]}, times=2)


def test_bigquery_413_html_splits_the_batch():
    g, err = bq_fault_run({"status": 413, "body": "<html><body>Request Entity Too Large</body></html>",
                           "headers": {"Content-Type": "text/html"}}, times=1)


def test_bigquery_payload_limit_splits_batches():
    bq_fault_run({"delay_ms": 0}, times=1, google_args=("--max-insert-bytes", "20000"))


def test_access_token_revoked_mid_run_is_refreshed():
    with Workdir("revoke") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        g.post("/_fake/tokens/revoke")
        s.grow(sales=20)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        g.post("/_fake/tokens/revoke")
        d.wait_notify("STATUS=sales: fetched", 30)
        d.stop()
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")


def test_invalid_rows_are_dead_lettered_and_not_retried():
    with Workdir("invalid") as w:
        g, s, cfg = setup(w)
        g.fault({"insert_errors": [{"index": 2, "reason": "invalid", "message": "bad value"}]},
                path="sales/insertAll", times=1)
        once_ok(w, cfg)
        rej = [json.loads(l) for l in open(os.path.join(w.path, "state", "rejected-sales.ndjson"))]
        assert len(rej) == 1 and "invalid" in rej[0]["reason"] or "bad value" in rej[0]["reason"], rej
        bad_key = rej[0]["row"]["uniqueCode"]
        keys = [r["uniqueCode"] for r in g.rows("sales")]
        want, _ = expected_rows(s, "sales")
        assert set(keys) == set(want) - {bad_key}
        assert len(keys) == len(set(keys))
        # A second run neither re-sends nor re-dead-letters it.
        once_ok(w, cfg)
        rej2 = open(os.path.join(w.path, "state", "rejected-sales.ndjson")).read().splitlines()
        assert len(rej2) == 1
        assert bad_key not in [r["uniqueCode"] for r in g.rows("sales")]


def test_load_jobs_deliver_exactly_once_even_with_a_lost_acknowledgement():
    with Workdir("load") as w:
        g, s, cfg = setup(w, **{"bigquery.insert_method": '"load"'})
        g.fault({"lost_ack": True}, path="/upload/", times=1)
        once_ok(w, cfg)
        check_exactly_once(g, s, "events")
        check_exactly_once(g, s, "sales")


def test_a_seeding_query_that_keeps_failing_stops_the_start_and_sends_nothing():
    """Found writing track_changes: a seeding query that failed for good
    (EAGAIN after its retries) was taken for "rows still spooled" and the
    start went on with an empty key set, so every row looked new."""
    from harness import run_once
    with Workdir("seedfail") as w:
        g, s, cfg = setup(w, google_args=("--dedup-window", "1"))
        once_ok(w, cfg)
        g.call("DELETE", "/_fake/requests")
        g.fault({"status": 503, "body": {"error": {"code": 503, "message": "backend",
                 "errors": [{"reason": "backendError", "message": "x"}]}}},
                path=r"/queries", times=0)
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 69, (rc, err[-2000:])
        assert "seeding from table events failed" in err, err[-2000:]
        sent = [r for r in g.requests() if r["path"].endswith("/insertAll")]
        assert sent == [], f"{len(sent)} inserts without the keys of BigQuery"
        check_exactly_once(g, s, "events")
        check_exactly_once(g, s, "sales")


if __name__ == "__main__":
    t = Tap()
    for fn in (test_bigquery_503_during_insert_is_retried,
               test_bigquery_lost_acknowledgement_duplicates_nothing,
               test_bigquery_rate_limit_403_backs_off_and_succeeds,
               test_bigquery_stopped_rows_are_resent,
               test_bigquery_413_html_splits_the_batch,
               test_bigquery_payload_limit_splits_batches,
               test_access_token_revoked_mid_run_is_refreshed,
               test_invalid_rows_are_dead_lettered_and_not_retried,
               test_load_jobs_deliver_exactly_once_even_with_a_lost_acknowledgement,
               test_a_seeding_query_that_keeps_failing_stops_the_start_and_sends_nothing):
        t.run(fn)
    t.done()

#!/usr/bin/python3
"""Exactly once under two faults in a row: one regression test per hole the
review found (issue: rows loaded twice, rows never fetched, a feed stopped
for good) and the event calendar's sources. Real daemon, fakes, public
interface only."""
import base64
import datetime
import json
import os
import signal
import subprocess
import time

from harness import (PROJECT, Daemon, Tap, Workdir, check_exactly_once, expected_rows,
                     run_once, wait_for, write_config)
from test_pipeline import once_ok, setup


def state(w, *parts):
    return os.path.join(w.path, "state", *parts)


def dead_letters(w, feed):
    try:
        with open(state(w, f"rejected-{feed}.ndjson")) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def spool_files(w):
    try:
        return sorted(os.listdir(state(w, "spool")))
    except FileNotFoundError:
        return []


def deny_sales_inserts(g):
    """Every sales insertAll refused at once (no retries): rows stay spooled."""
    g.fault({"status": 403, "body": {"error": {"code": 403, "message": "denied", "errors": [
        {"reason": "accessDenied", "message": "denied"}]}}}, path="sales/insertAll", times=0)


def reject_first_sale(g):
    """BigQuery refuses the first row of the next sales insertAll as invalid."""
    g.fault({"insert_errors": [{"index": 0, "reason": "invalid", "message": "bad value"}]},
            path="sales/insertAll", times=1)


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sales_codes_asked(s):
    codes = set()
    for r in s.requests():
        if r["path"].endswith("/reports/sales"):
            codes |= set(json.loads(r["body"])["search"]["searchItemCodes"])
    return codes


def test_a_row_jansson_cannot_load_costs_only_itself():
    """Case 3: an integer beyond int64, 1e999, a lone surrogate, invalid UTF-8."""
    with Workdir("badjson") as w:
        g, s, cfg = setup(w, **{"sales.codes_per_request": "2"})
        once_ok(w, cfg, "--feed", "events")
        ev = str(s.truth("events")[0]["id"])
        planted = {
            "BIGUNKNOWN": ('{"uniqueCode":"BIGUNKNOWN","eventId":"%s",'
                           '"basketId":123456789012345678901234567890}' % ev, True),
            "BIGSOLD": ('{"uniqueCode":"BIGSOLD","eventId":"%s","sold":99999999999999999999999}'
                        % ev, False),
            "HUGEFACE": ('{"uniqueCode":"HUGEFACE","eventId":"%s","faceValue":1e999}' % ev, False),
        }
        for text, _ in planted.values():
            s.post("/_fake/raw_rows", {"feed": "sales", "event": ev, "text": text})
        # No eventId: it goes out with every chunk of codes.
        s.post("/_fake/raw_rows", {"feed": "sales", "b64": base64.b64encode(
            b'{"uniqueCode":"BADUTF8","postCode":"SW1A \xff"}').decode()})
        s.post("/_fake/raw_rows", {"feed": "sales", "event": ev,
                                   "text": '{"uniqueCode":"LONESURR","eventName":"x\\ud83c"}'})
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 0, (rc, err[-3000:])
        want, _ = expected_rows(s, "sales")
        keys = [r["uniqueCode"] for r in g.rows("sales")]
        assert len(keys) == len(set(keys)), "a key landed twice"
        assert set(keys) == set(want) | {"BIGUNKNOWN"}, set(want) ^ set(keys)
        dl = dead_letters(w, "sales")
        assert len(dl) == 4, dl
        texts = json.dumps(dl)
        for k in ("BIGSOLD", "HUGEFACE", "BADUTF8", "LONESURR"):
            assert k in texts, (k, dl)
        assert "SW1A" not in err, "a post code reached the log"
        # Seen again, the same bad rows are not dead-lettered again.
        once_ok(w, cfg)
        assert len(dead_letters(w, "sales")) == 4


def test_a_stuck_line_does_not_hold_back_newer_segments():
    """Case 4: the oldest segment has a line that cannot finish (its dead letter
    cannot be written); newer rows go all the same."""
    with Workdir("stuckline") as w:
        g, s, cfg = setup(w)
        os.makedirs(state(w, "spool"))
        with open(state(w, "spool", "sales-0000000000000001.ndjson"), "w") as f:
            f.write("this line is damaged\n")
        os.mkdir(state(w, "rejected-sales.ndjson"))  # the dead letter cannot be written
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 75, (rc, err[-2000:])
        check_exactly_once(g, s, "sales")
        check_exactly_once(g, s, "events")
        assert spool_files(w) == ["sales-0000000000000001.ndjson"], spool_files(w)
        os.rmdir(state(w, "rejected-sales.ndjson"))
        once_ok(w, cfg)
        assert spool_files(w) == []
        assert [d["stage"] for d in dead_letters(w, "sales")] == ["spool"]


def test_an_unreadable_segment_is_set_aside_not_a_crash_loop():
    """Case 4: a line over the spool's size limit makes the segment unreadable."""
    with Workdir("unreadable") as w:
        g, s, cfg = setup(w)
        os.makedirs(state(w, "spool"))
        seg = state(w, "spool", "sales-0000000000000001.ndjson")
        with open(seg, "w") as f:
            f.write('{"uniqueCode":"' + "x" * (17 << 20) + '"}\n')
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 0, (rc, err[-2000:])
        assert "cannot be read" in err and ".unreadable" in err, err[-2000:]
        assert spool_files(w) == ["sales-0000000000000001.ndjson.unreadable"], spool_files(w)
        check_exactly_once(g, s, "sales")


def test_a_postponed_event_stays_in_the_sales_poll():
    """Case 6: an event's start is updated from every events fetch."""
    with Workdir("postponed") as w:
        g, s, cfg = setup(w, **{"sales.event_lookback_days": "1"})
        now = time.time()
        old = [e for e in s.truth("events")
               if isinstance(e.get("starts"), str) and e["starts"].endswith("Z")
               and datetime.datetime.fromisoformat(e["starts"].replace("Z", "+00:00")).timestamp()
               < now - 5 * 86400]
        assert len(old) >= 2, "the fake has no event in the past"
        later, earlier = str(old[0]["id"]), str(old[1]["id"])
        once_ok(w, cfg)
        assert later not in sales_codes_asked(s)
        s.call("DELETE", "/_fake/requests")
        # One is postponed into the future, the other moved to yesterday: both are
        # inside the lookback now.
        s.post("/_fake/update", {"feed": "events", "key": later, "set": {"starts": iso(now + 30 * 86400)}})
        s.post("/_fake/update", {"feed": "events", "key": earlier, "set": {"starts": iso(now - 3600)}})
        once_ok(w, cfg)
        asked = sales_codes_asked(s)
        assert later in asked and earlier in asked, asked
        got = {r["uniqueCode"] for r in g.rows("sales")}
        for code in (later, earlier):
            theirs = {x["uniqueCode"] for x in s.truth("sales") if str(x.get("eventId")) == code}
            assert theirs and theirs <= got, code


def test_events_spooled_at_a_restart_have_their_sales_fetched():
    """Issue 14: events still in the spool at start are in the calendar."""
    for method, path in (("streaming", "events/insertAll"), ("load", "/upload/bigquery")):
        with Workdir(f"spooledevents-{method}") as w:
            g, s, cfg = setup(w, **{"bigquery.insert_method": f'"{method}"'})
            g.fault({"status": 500}, path=path, times=0)
            rc, out, err = run_once(w.path, cfg, "--once", "--feed", "events")
            assert rc == 75, (method, rc, err[-2000:])
            assert [f for f in spool_files(w) if f.startswith("events-")]
            g.clear_faults()
            once_ok(w, cfg)
            check_exactly_once(g, s, "events")
            check_exactly_once(g, s, "sales")


def test_events_spooled_in_a_running_daemon_have_their_sales_fetched():
    """Issue 14, daemon mode: within one sales interval, with no restart."""
    with Workdir("spooledevents-daemon") as w:
        g, s, cfg = setup(w)
        g.fault({"status": 500}, path="events/insertAll", times=0)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "events")
        assert rc == 75, (rc, err[-2000:])
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1", 30)
        want, _ = expected_rows(s, "sales")
        wait_for(lambda: len(g.rows("sales")) >= len(want), 30, "the sales of spooled events")
        g.clear_faults()
        wait_for(lambda: len(g.rows("events")) >= len(s.truth("events")), 30, "events")
        d.stop()
        check_exactly_once(g, s, "sales")
        check_exactly_once(g, s, "events")


def test_an_event_the_schema_rejects_still_has_its_sales_fetched():
    with Workdir("rejectedevent") as w:
        g, s, cfg = setup(w)
        s.post("/_fake/bad_rows", {"events": [{"id": "DF-BADEVENT", "name": "x",
                                               "timeslotEnabled": "maybe",
                                               "starts": iso(time.time() + 86400)}],
                                   "sales": [{"uniqueCode": "SALEOFBAD1", "eventId": "DF-BADEVENT",
                                              "sold": 1}]})
        once_ok(w, cfg)
        assert "DF-BADEVENT" in json.dumps(dead_letters(w, "events"))
        assert "SALEOFBAD1" in {r["uniqueCode"] for r in g.rows("sales")}


def test_a_row_bigquery_rejected_takes_its_corrected_version_without_a_restart():
    """Case 7."""
    with Workdir("corrected") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        reject_first_sale(g)
        d = w.add(Daemon(w.path, cfg))
        wait_for(lambda: dead_letters(w, "sales"), 30, "a dead letter")
        key = dead_letters(w, "sales")[0]["row"]["uniqueCode"]
        assert key not in {r["uniqueCode"] for r in g.rows("sales")}
        s.post("/_fake/update", {"feed": "sales", "key": key, "set": {"priceName": "Corrected"}})
        wait_for(lambda: key in {r["uniqueCode"] for r in g.rows("sales")}, 20,
                 "the corrected row to land")
        d.stop()
        check_exactly_once(g, s, "sales")
        assert len(dead_letters(w, "sales")) == 1


def test_timestamp_starts_columns_are_read():
    """Case 8: seeding reads a TIMESTAMP `starts` as int64 microseconds."""
    with Workdir("tsstarts") as w:
        g, s, cfg = setup(w, **{"sales.event_lookback_days": "1"})
        g.create_table("events", retype={"starts": "TIMESTAMP"})
        once_ok(w, cfg)
        first = sales_codes_asked(s)
        s.call("DELETE", "/_fake/requests")
        once_ok(w, cfg, "--feed", "sales")  # codes from seeding alone
        assert sales_codes_asked(s) == first, (sales_codes_asked(s), first)


def test_a_restart_does_not_send_rows_bigquery_rejected():
    """Case 9: the start-up scan knows the dead letters."""
    with Workdir("rescan") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        reject_first_sale(g)
        deny_sales_inserts(g)
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 75, (rc, err[-2000:])
        key = dead_letters(w, "sales")[0]["row"]["uniqueCode"]
        g.clear_faults()
        once_ok(w, cfg)
        assert key not in {r["uniqueCode"] for r in g.rows("sales")}
        assert len(dead_letters(w, "sales")) == 1


def test_streaming_rows_are_looked_up_after_the_dedup_window():
    """Case 2: a lost answer, then BigQuery refusing past insertId's window."""
    with Workdir("dedupwindow") as w:
        g, s, cfg = setup(w, google_args=("--dedup-window", "2"))
        once_ok(w, cfg, "--feed", "events")
        g.fault({"lost_ack": True}, path="sales/insertAll", times=1)
        deny_sales_inserts(g)
        d = w.add(Daemon(w.path, cfg, env={"STBQ_DEDUP_TRUST_MS": "3000"}))
        wait_for(lambda: len(d.notified("STATUS=sales: fetched")) >= 2, 30, "two sales polls")
        time.sleep(3.5)
        g.clear_faults()
        want, _ = expected_rows(s, "sales")
        wait_for(lambda: not [f for f in spool_files(w) if f.startswith("sales-")], 30,
                 "the spool to drain")
        err = d.stderr()
        d.stop()
        check_exactly_once(g, s, "sales")
        assert "in table sales already" in err, err[-3000:]


def test_load_jobs_interrupted_mid_drain_are_followed_not_duplicated():
    """Case 1: a drain bigger than one job becomes jobs A and B; A finishes, the
    daemon stops while B still runs. The next run must follow B, not load B's
    rows again in a differently cut job."""
    import re
    import urllib.request
    with Workdir("loadplan") as w:
        g, s, cfg = setup(w, "--sales", "9000", "--events", "12",
                          google_args=("--job-polls-to-done", "2"),
                          **{"bigquery.insert_method": '"load"', "seetickets.page_size": "1000"})
        once_ok(w, cfg, "--feed", "events")
        g.call("DELETE", "/_fake/requests")
        d = Daemon(w.path, cfg, "--once", "--feed", "sales", notify=False)
        uploads = lambda: [r for r in g.requests() if r["path"].startswith("/upload/")]
        wait_for(lambda: len(uploads()) >= 2 or d.proc.poll() is not None, 120, "job B")
        d.signal(signal.SIGTERM)
        rc = d.wait(30)
        assert rc == 75, (rc, d.stderr()[-2000:])
        d.err.close()
        d.out.close()
        once_ok(w, cfg)
        # Let every job ever submitted finish, as BigQuery would on its own.
        token = g.post("/_fake/tokens", {"issue": True})["access_token"]
        ids = set()
        for r in g.requests():
            if r["path"].startswith("/upload/"):
                ids |= set(re.findall(r'"jobId":\s*"([^"]+)"', r["body"] or ""))
        assert len(ids) >= 3, ids
        for jid in ids:
            for _ in range(5):
                req = urllib.request.Request(
                    f"{g.url}/bigquery/v2/projects/{PROJECT}/jobs/{jid}?location=EU",
                    headers={"Authorization": "Bearer " + token})
                with urllib.request.urlopen(req, timeout=30) as resp:
                    if json.loads(resp.read())["status"]["state"] == "DONE":
                        break
        check_exactly_once(g, s, "sales")


def test_a_failing_chunk_of_codes_does_not_stop_the_others():
    """Case 3: the first chunk's page stays malformed through its retries; the
    chunks after it are still asked, and the run says it is incomplete."""
    with Workdir("chunks") as w:
        g, s, cfg = setup(w, **{"sales.codes_per_request": "3"})
        once_ok(w, cfg, "--feed", "events")
        s.fault({"malformed": True}, path="/v1/reports/sales", times=3)
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 69, (rc, err[-2000:])
        assert "the other codes go on" in err, err[-2000:]
        want, _ = expected_rows(s, "sales")
        got = {r["uniqueCode"] for r in g.rows("sales")}
        assert got and got < set(want), (len(got), len(want))
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")


def test_a_reload_that_changes_the_insert_method_waits_for_the_spool():
    """Case 1: rows with an unknown outcome finish the way they were sent."""
    with Workdir("reloadmethod") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        deny_sales_inserts(g)
        d = w.add(Daemon(w.path, cfg))
        wait_for(lambda: [f for f in spool_files(w) if f.startswith("sales-")], 30, "spooled sales")
        write_config(w.path, g, s, **{"bigquery.insert_method": '"load"'})
        d.signal(signal.SIGHUP)
        wait_for(lambda: "insert_method cannot change while rows are spooled" in d.stderr(), 20,
                 "the reload to be refused")
        g.clear_faults()
        wait_for(lambda: not [f for f in spool_files(w) if f.startswith("sales-")], 30,
                 "the spool to drain")
        assert not [r for r in g.requests() if r["path"].startswith("/upload/")]
        d.stop()
        check_exactly_once(g, s, "sales")


def test_no_event_code_to_ask_for_is_said():
    """Issue 14: a sales poll with nothing to ask says why, in the log and STATUS."""
    with Workdir("nocodes") as w:
        g, s, cfg = setup(w, **{"sales.event_lookback_days": "1"})
        now = time.time()
        for e in s.truth("events"):
            s.post("/_fake/update", {"feed": "events", "key": str(e["id"]),
                                     "set": {"starts": iso(now - 10 * 86400)}})
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 0, (rc, err[-2000:])
        assert "warning: sales: no event code to ask for: all" in err, err[-2000:]
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("STATUS=sales: fetched 0, new 0, inserted 0, rejected 0 (no event code", 30)
        d.stop()


def test_once_stopped_by_sigterm_after_a_failed_feed_exits_75():
    """A --once run whose events feed failed and which is then stopped by SIGTERM was
    interrupted: 75 (try again), not 69 (the service failed), or a timer that stops a long
    run would page someone for an outage that did not happen."""
    with Workdir("once75") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        s.fault({"status": 404, "body": {"error": "gone"}}, path="/v1/events/search", times=0)
        s.fault({"delay_ms": 30000}, path="/v1/reports/sales", times=0)
        s.call("DELETE", "/_fake/requests")
        d = Daemon(w.path, cfg, "--once", notify=False)
        wait_for(lambda: any(r["path"].endswith("/reports/sales") for r in s.requests())
                 or d.proc.poll() is not None, 30, "the sales request")
        d.signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = d.wait(30)
        err = d.stderr()
        d.err.close()
        d.out.close()
        assert "events: fetched 0" in err and "failed" in err, err[-2000:]
        assert rc == 75, (rc, err[-2000:])
        assert time.monotonic() - t0 < 5, "stopping took more than 5 s"
        s.clear_faults()
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")


def test_spooled_lines_the_scanner_cannot_vouch_for_are_sent_by_jansson():
    """The drain sends spooled lines as they are when jscan_valid_object() vouches for them;
    a control character (jansson writes \\u0001) or a real written with an exponent (1e+20)
    makes it hand the line to jansson. Those rows must land too, once, with their values,
    by streaming and by load jobs, and a lost answer next must not duplicate them."""
    for method in ("streaming", "load"):
        with Workdir("oddlines") as w:
            g, s, cfg = setup(w, **{"bigquery.insert_method": f'"{method}"'})
            once_ok(w, cfg, "--feed", "events")
            sales = sorted(str(r["uniqueCode"]) for r in s.truth("sales"))
            s.post("/_fake/update", {"feed": "sales", "key": sales[0],
                                     "set": {"eventName": "bell\u0007 and\u0001 start"}})
            s.post("/_fake/update", {"feed": "sales", "key": sales[1],
                                     "set": {"faceValue": 1e20, "grossCost": 12345678901234567.0}})
            g.fault({"lost_ack": True}, path="insertAll" if method == "streaming" else "/upload/",
                    times=1)
            once_ok(w, cfg, "--feed", "sales")
            check_exactly_once(g, s, "sales")
            assert not spool_files(w), spool_files(w)


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0750", "tmpfs",
                           path], capture_output=True).returncode == 0


def test_a_load_plan_that_cannot_be_written_is_tried_again():
    """Found by the fault-schedule checker (seed 285517010): the disk is full when a
    segment's load plan is written. That is a local failure to retry, not an unreadable
    segment: setting it aside left its rows unsent until a human renamed it back."""
    if os.geteuid() != 0:
        print("# skipped: needs root to mount a small tmpfs as the state directory")
        return
    with Workdir("planfull") as w:
        statedir = state(w)
        if not _mount_tmpfs(statedir, "2m"):
            print("# skipped: cannot mount a tmpfs here")
            return
        try:
            g, s, cfg = setup(w)
            once_ok(w, cfg, "--feed", "events")
            # Rows spooled by streaming (no plan), BigQuery refusing them.
            deny_sales_inserts(g)
            rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
            assert rc != 0 and [f for f in spool_files(w) if f.startswith("sales-")], err[-2000:]
            g.clear_faults()
            # Now by load jobs, and the disk full before the plan is written.
            cfg = write_config(w.path, g, s, **{"bigquery.insert_method": '"load"'})
            filler = state(w, "filler")
            with open(filler, "wb") as f:
                try:
                    while True:
                        f.write(b"\0" * 65536)
                        f.flush()
                except OSError:
                    pass
            rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
            assert rc != 0, err[-2000:]
            assert not [f for f in spool_files(w) if f.endswith(".unreadable")], \
                (spool_files(w), err[-2000:])
            os.unlink(filler)
            once_ok(w, cfg, "--feed", "sales")
            check_exactly_once(g, s, "sales")
            assert not [f for f in spool_files(w) if f.startswith("sales-")], spool_files(w)
        finally:
            subprocess.run(["umount", "-l", statedir], capture_output=True)


if __name__ == "__main__":
    tap = Tap()
    for t in (test_a_row_jansson_cannot_load_costs_only_itself,
              test_a_stuck_line_does_not_hold_back_newer_segments,
              test_an_unreadable_segment_is_set_aside_not_a_crash_loop,
              test_a_postponed_event_stays_in_the_sales_poll,
              test_events_spooled_at_a_restart_have_their_sales_fetched,
              test_events_spooled_in_a_running_daemon_have_their_sales_fetched,
              test_an_event_the_schema_rejects_still_has_its_sales_fetched,
              test_a_row_bigquery_rejected_takes_its_corrected_version_without_a_restart,
              test_timestamp_starts_columns_are_read,
              test_a_restart_does_not_send_rows_bigquery_rejected,
              test_streaming_rows_are_looked_up_after_the_dedup_window,
              test_load_jobs_interrupted_mid_drain_are_followed_not_duplicated,
              test_a_failing_chunk_of_codes_does_not_stop_the_others,
              test_a_reload_that_changes_the_insert_method_waits_for_the_spool,
              test_no_event_code_to_ask_for_is_said,
              test_once_stopped_by_sigterm_after_a_failed_feed_exits_75,
              test_a_load_plan_that_cannot_be_written_is_tried_again,
              test_spooled_lines_the_scanner_cannot_vouch_for_are_sent_by_jansson):
        tap.run(t)
    tap.done()

#!/usr/bin/python3
"""Exactly once, end to end: first runs, reruns, growth, paging, dry run,
daemon mode. Every test compares
BigQuery's rows with the source's ground truth: same keys, none twice, every
value equal after coercion."""
import datetime
import json
import os
import random
import time

from harness import (API_KEY, Daemon, GoogleFake, SeeTicketsFake, Tap, Workdir, check_exactly_once,
                     expected_rows, run_once, write_config, PROJECT)

SEED = int(os.environ.get("STBQ_TEST_SEED", "0")) or random.randrange(1, 1 << 30)


def setup(w, *st_args, google_args=(), **cfg):
    g = w.add(GoogleFake(w.path, *google_args))
    s = w.add(SeeTicketsFake(w.path, *st_args))
    return g, s, write_config(w.path, g, s, **cfg)


def once_ok(w, cfg, *args):
    rc, out, err = run_once(w.path, cfg, "--once", *args)
    assert rc == 0, f"exit {rc}: {err[-3000:]}"
    return out, err


def insert_calls(g):
    return [r for r in g.requests() if r["path"].endswith("/insertAll")]


def test_first_run_loads_every_row_exactly_once():
    with Workdir("first") as w:
        g, s, cfg = setup(w)
        out, err = once_ok(w, cfg)
        assert check_exactly_once(g, s, "events") > 0
        assert check_exactly_once(g, s, "sales") > 0
        assert "FEED=sales" in err and "ROWS_INSERTED=" in err
        metrics = open(os.path.join(w.path, "metrics.prom")).read()
        assert 'seetickets_bq_rows_inserted_total{feed="sales"}' in metrics


def test_rerun_inserts_nothing():
    with Workdir("rerun") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        g.call("DELETE", "/_fake/requests")
        once_ok(w, cfg)
        assert insert_calls(g) == [], "a second run sent rows again"
        check_exactly_once(g, s, "sales")
        check_exactly_once(g, s, "events")


def test_growth_between_runs_is_loaded_once():
    with Workdir("growth") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        s.grow(sales=37, events=3)
        once_ok(w, cfg)
        check_exactly_once(g, s, "events")
        check_exactly_once(g, s, "sales")


def test_short_server_pages_are_followed_to_the_empty_page():
    with Workdir("shortpages") as w:
        g, s, cfg = setup(w, "--page-cap", "7", "--sales", "300")
        once_ok(w, cfg)
        check_exactly_once(g, s, "events")
        check_exactly_once(g, s, "sales")


def test_a_server_ignoring_offset_stops_paging_and_fails_the_run():
    with Workdir("nooffset") as w:
        g, s, cfg = setup(w, "--ignore-offset", "--default-limit", "5")
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "events")
        # Rows past the first page were never fetched: not a success.
        assert rc == 69, (rc, err[-2000:])
        assert "ignore offset" in err, err[-2000:]
        rows = g.rows("events")
        assert 0 < len(rows) <= 50
        assert len({r["id"] for r in rows}) == len(rows)
        s.post("/_fake/config", {"ignore_offset": False})
        once_ok(w, cfg, "--feed", "events")
        check_exactly_once(g, s, "events")


def test_rows_already_in_bigquery_are_not_sent_again():
    with Workdir("preseeded") as w:
        g, s, cfg = setup(w)
        want, _ = expected_rows(s, "sales")
        half = sorted(want)[: len(want) // 2]
        g.create_table("sales")
        g.add_rows("sales", [want[k] for k in half])
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")


def test_dry_run_prints_new_rows_and_writes_nothing():
    with Workdir("dryrun") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        rc, out, err = run_once(w.path, cfg, "--dry-run", "--feed", "sales")
        assert rc == 0, err[-2000:]
        lines = [json.loads(l) for l in out.splitlines() if l.strip()]
        want, _ = expected_rows(s, "sales")
        assert {r["uniqueCode"] for r in lines} == set(want)
        assert len(lines) == len(want)
        assert g.rows("sales") == []
        spool = os.path.join(w.path, "state", "spool")
        assert not [f for f in os.listdir(spool) if f.startswith("sales")]
        assert not os.path.exists(os.path.join(w.path, "state", "rejected-sales.ndjson")) or \
            open(os.path.join(w.path, "state", "rejected-sales.ndjson")).read() == ""
        once_ok(w, cfg)
        rc, out, err = run_once(w.path, cfg, "--dry-run")
        assert rc == 0 and out.strip() == "", out[:500]


def test_daemon_mode_loads_growth_over_several_intervals():
    with Workdir("daemon") as w:
        g, s, cfg = setup(w, **{"sales.interval": "1", "events.interval": "1"})
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        for _ in range(5):
            s.grow(sales=9, events=1)
            time.sleep(1.0)
        # The source stops growing; the daemon must catch up on its own.
        want, _ = expected_rows(s, "sales")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(g.rows("sales")) < len(want):
            time.sleep(0.5)
        assert d.stop() == 0
        check_exactly_once(g, s, "events")
        check_exactly_once(g, s, "sales")
        assert len(d.notified("STATUS=sales")) >= 3


def test_rows_without_key_or_with_bad_values_are_dead_lettered():
    with Workdir("badrows") as w:
        g, s, cfg = setup(w)
        s.post("/_fake/bad_rows", {"sales": [
            {"eventId": "DF-1", "sold": 1},
            {"uniqueCode": "BADSOLD0001", "sold": "several", "eventId": "DF-1"},
            {"uniqueCode": "BADLOC0001", "location": "London", "eventId": "DF-1"},
        ]})
        # The bad rows belong to an event code we must ask for.
        once_ok(w, cfg, "--feed", "events")
        codes = sorted({str(r["id"]) for r in s.truth("events")} | {"DF-1"})
        conf = write_config(w.path, g, s, **{"sales.event_codes": json.dumps(codes).replace("[", "[ ").replace("]", " ]")})
        once_ok(w, conf)
        path = os.path.join(w.path, "state", "rejected-sales.ndjson")
        rej = [json.loads(l) for l in open(path)]
        assert len(rej) == 3, rej
        for r in rej:
            assert r["reason"] and r["time"] and "row" in r
        keys = {r["uniqueCode"] for r in g.rows("sales")}
        assert "BADSOLD0001" not in keys and "BADLOC0001" not in keys
        once_ok(w, conf)
        assert len(open(path).read().splitlines()) == 3, "dead letters repeated"


def sales_requests(s):
    """The searchItemCodes of every sales request the fake See Tickets saw."""
    out = []
    for r in s.requests():
        if r["path"].endswith("/reports/sales"):
            body = json.loads(r["body"])
            out.append((body.get("offset"), body["search"]["searchItemCodes"]))
    return out


def test_event_codes_are_asked_for_in_chunks():
    with Workdir("chunks") as w:
        g, s, cfg = setup(w, "--events", "11", **{"sales.codes_per_request": "3"})
        once_ok(w, cfg)
        first_pages = [codes for off, codes in sales_requests(s) if off == 0]
        assert len(first_pages) == 4, first_pages
        assert all(len(c) <= 3 for c in first_pages)
        asked = [c for chunk in first_pages for c in chunk]
        assert sorted(asked) == sorted(str(e["id"]) for e in s.truth("events"))
        check_exactly_once(g, s, "sales")


def test_automatic_codes_skip_events_past_the_lookback():
    with Workdir("lookback") as w:
        g, s, cfg = setup(w, "--events", "30", **{"sales.event_lookback_days": "7"})
        once_ok(w, cfg)
        asked = {c for off, chunk in sales_requests(s) for c in chunk}
        cutoff = time.time() - 7 * 86400
        for e in s.truth("events"):
            starts = e.get("starts")
            try:
                t = parse_time(starts)
            except (TypeError, ValueError):
                t = None  # missing or unparseable: kept, never dropped silently
            want = t is None or t >= cutoff
            assert (str(e["id"]) in asked) == want, (e["id"], starts, want)
        assert len(asked) < 30, "nothing was past the lookback: the test proves nothing"
        # Sales of the events asked for landed, exactly once; no others.
        rows = g.rows("sales")
        assert len(rows) == len({r["uniqueCode"] for r in rows})
        assert {r["eventId"] for r in rows} <= asked


def parse_time(v):
    """ISO-8601 as the See Tickets fake writes it; no zone means UTC."""
    if not isinstance(v, str):
        raise TypeError(v)
    d = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


def test_date_filter_window_moves_only_after_a_good_fetch():
    with Workdir("datefilter") as w:
        g, s, cfg = setup(w, **{"sales.date_filter": "true"})
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")
        bodies = [json.loads(r["body"]) for r in s.requests() if r["path"].endswith("/reports/sales")]
        assert bodies and all(b["filteredBy"]["salesStartDate"] == "2000-01-01T00:00:00Z"
                              for b in bodies), bodies[:1]
        end = parse_time(bodies[0]["filteredBy"]["salesEndDate"])
        assert abs(end - time.time()) < 120
        ckpt = os.path.join(w.path, "state", "checkpoint-sales")

        def checkpoints():
            return dict(reversed(l.rstrip("\n").split("\t", 1)) for l in open(ckpt))
        first = checkpoints()
        codes = {str(e["id"]) for e in s.truth("events")}
        assert set(first) == codes, (first, codes)
        first_start = set(first.values())
        assert len(first_start) == 1, first
        # The window restarts an hour before the last end: keys remove the overlap.
        assert abs(parse_time(next(iter(first_start))) - (end - 3600)) < 2, (first, end)
        # A failed fetch leaves the checkpoints where they were.
        s.fault({"status": 503, "body": "down"}, path="/v1/reports/sales", times=0)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
        assert rc == 69, (rc, err[-1500:])
        assert checkpoints() == first
        s.clear_faults()
        s.call("DELETE", "/_fake/requests")
        s.grow(sales=12)
        # The window's end has one-second resolution and is exclusive: a sale stamped in
        # the same second is taken by the next, overlapping window, not this one.
        time.sleep(1.5)
        once_ok(w, cfg)
        starts = {json.loads(r["body"])["filteredBy"]["salesStartDate"]
                  for r in s.requests() if r["path"].endswith("/reports/sales")}
        assert starts == first_start, starts
        check_exactly_once(g, s, "sales")
        # A new event's code starts at the beginning, not at the others' checkpoint:
        # its older sales are asked for too.
        s.grow(events=1, sales=0)
        s.call("DELETE", "/_fake/requests")
        once_ok(w, cfg)
        bodies = [json.loads(r["body"]) for r in s.requests() if r["path"].endswith("/reports/sales")]
        newest = str(s.truth("events")[-1]["id"])
        firsts = [b for b in bodies if newest in b["search"]["searchItemCodes"]]
        assert firsts and all(b["filteredBy"]["salesStartDate"] == "2000-01-01T00:00:00Z"
                              for b in firsts), bodies
        assert newest in checkpoints()


def test_a_dead_letter_that_cannot_be_written_leaves_the_run_unfinished():
    with Workdir("deadletterfail") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        event = str(s.truth("events")[0]["id"])
        s.post("/_fake/bad_rows", {"sales": [{"uniqueCode": "BADSOLD0002", "sold": "many",
                                              "eventId": event}]})
        path = os.path.join(w.path, "state", "rejected-sales.ndjson")
        os.mkdir(path)  # appending to it fails, as on a full or read-only disk
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 75, (rc, err[-1500:])
        assert "cannot write dead letter" in err
        os.rmdir(path)
        once_ok(w, cfg)
        rej = [json.loads(l) for l in open(path)]
        assert [r["row"]["uniqueCode"] for r in rej] == ["BADSOLD0002"], rej
        check_exactly_once(g, s, "sales")


def test_an_unreadable_spool_line_is_dead_lettered_and_the_rest_sent():
    with Workdir("spoolcorrupt") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg, "--feed", "events")
        want, _ = expected_rows(s, "sales")
        some = sorted(want)[:3]
        spool = os.path.join(w.path, "state", "spool")
        with open(os.path.join(spool, "sales-0000000000000001.ndjson"), "w") as f:
            f.write(json.dumps(want[some[0]]) + "\n")
            f.write("{\"uniqueCode\": \"torn-by-a-bad-disk\n")
            f.write(json.dumps(want[some[1]]) + "\n")
            f.write(json.dumps(want[some[2]]))  # a torn last line: never fsynced, never sent
        once_ok(w, cfg)
        rej = [json.loads(l) for l in open(os.path.join(w.path, "state", "rejected-sales.ndjson"))]
        assert len(rej) == 1 and rej[0]["stage"] == "spool", rej
        assert rej[0]["reason"] == "unreadable spool line"
        assert not os.listdir(spool)
        check_exactly_once(g, s, "sales")


def test_api_key_from_secret_manager():
    with Workdir("secret") as w:
        g, s, _ = setup(w)
        g.post("/_fake/secrets", {"name": f"projects/{PROJECT}/secrets/st-key", "data": API_KEY + "\n"})
        cfg = write_config(w.path, g, s, **{
            "seetickets.api_key_file": None,
            "seetickets.api_key_secret": json.dumps(f"projects/{PROJECT}/secrets/st-key/versions/latest")})
        once_ok(w, cfg)
        check_exactly_once(g, s, "sales")


def test_new_rows_from_their_text_are_jansson_s_rows_byte_for_byte():
    """Issue 10: a new sale goes from its text to its spool line without jansson
    (schema-text.c), except at debug level, where schema.c runs to note unknown
    fields. The rows --dry-run prints must be the same bytes either way, over the
    fake's data (quotes, backslashes, emoji, numbers as strings) and rows made to
    take each path: escapes, control characters, big integers, refusals."""
    with Workdir("textpath") as w:
        g, s, cfg = setup(w)
        ev = s.truth("events")[0]["id"]
        odd = [
            {"uniqueCode": "TXT-ESC-1", "eventId": ev, "eventName": "Tab\tand\x01ctl \u2028 \U0001F3B8",
             "priceName": "a/b \\ \"q\"", "sold": " 3 ", "faceValue": "1e2", "isPending": "TRUE"},
            {"uniqueCode": "TXT-BIG-1", "eventId": ev, "sold": 9007199254740993,
             "priceId": 12345678901234567890, "grossCost": 0.1, "taxTotal": -0.0},
            {"uniqueCode": "TXT-EXP-1", "eventId": ev, "faceValue": 1.5e300, "grossFace": 2e-7},
            {"uniqueCode": "TXT-REF-1", "eventId": ev, "isPending": "maybe"},
            {"uniqueCode": "TXT-LOC-1", "eventId": ev, "location": {"country": "X", "postCode": ""}},
            {"uniqueCode": "TXT-DUP-1", "eventId": ev, "sold": 1},
            {"uniqueCode": "TXT-DUP-1", "eventId": ev, "sold": 2},
            {"uniqueCode": 4711, "eventId": ev},
        ]
        s.post("/_fake/bad_rows", {"sales": odd})
        once_ok(w, cfg, "--feed", "events")
        runs = {}
        for level in ("info", "debug"):
            cfg = write_config(w.path, g, s, log_level=f'"{level}"')
            rc, out, err = run_once(w.path, cfg, "--dry-run", "--feed", "sales")
            assert rc == 0, err[-2000:]
            runs[level] = out
        assert runs["info"] == runs["debug"], "the text path and jansson differ"
        lines = runs["info"].splitlines()
        want, _ = expected_rows(s, "sales")
        assert len(lines) >= len(want) > 20, (len(lines), len(want))
        text = runs["info"]
        for k in ("TXT-ESC-1", "TXT-BIG-1", "TXT-EXP-1", "TXT-LOC-1", "4711"):
            assert f'"uniqueCode":"{k}"' in text, k
        assert "TXT-REF-1" not in text
        assert text.count('"uniqueCode":"TXT-DUP-1"') == 1


if __name__ == "__main__":
    t = Tap()
    for fn in (test_first_run_loads_every_row_exactly_once,
               test_rerun_inserts_nothing,
               test_growth_between_runs_is_loaded_once,
               test_short_server_pages_are_followed_to_the_empty_page,
               test_a_server_ignoring_offset_stops_paging_and_fails_the_run,
               test_rows_already_in_bigquery_are_not_sent_again,
               test_dry_run_prints_new_rows_and_writes_nothing,
               test_daemon_mode_loads_growth_over_several_intervals,
               test_rows_without_key_or_with_bad_values_are_dead_lettered,
               test_event_codes_are_asked_for_in_chunks,
               test_automatic_codes_skip_events_past_the_lookback,
               test_date_filter_window_moves_only_after_a_good_fetch,
               test_a_dead_letter_that_cannot_be_written_leaves_the_run_unfinished,
               test_an_unreadable_spool_line_is_dead_lettered_and_the_rest_sent,
               test_api_key_from_secret_manager,
               test_new_rows_from_their_text_are_jansson_s_rows_byte_for_byte):
        t.run(fn)
    t.done()

#!/usr/bin/python3
"""track_changes through the real binary and the fakes: every distinct
version of a known row reaches TABLE_changes exactly once, TABLE_current
shows the latest, the same version seen again adds nothing, and that holds
across kill -9, lost acknowledgements, failed inserts, load jobs and
enabling tracking on tables that already hold rows."""
import json
import os
import time

from harness import (Daemon, GoogleFake, SeeTicketsFake, Tap, Workdir, run_once, wait_for,
                     write_config, expected_rows, check_exactly_once)

TRACK = {"sales.track_changes": "true", "events.track_changes": "true"}
KEYS = {"sales": "uniqueCode", "events": "id"}


def setup(w, *st_args, google_args=(), **cfg):
    g = w.add(GoogleFake(w.path, *google_args))
    s = w.add(SeeTicketsFake(w.path, *st_args))
    over = dict(TRACK)
    over.update(cfg)
    return g, s, write_config(w.path, g, s, **over)


def once_ok(w, cfg, *args):
    rc, out, err = run_once(w.path, cfg, "--once", *args)
    assert rc == 0, f"--once exit {rc}: {err[-3000:]}"
    return err


def update(s, feed, key, **fields):
    n = s.post("/_fake/update", {"feed": feed, "key": key, "set": fields})["updated"]
    assert n >= 1, (feed, key)


def history(g, feed, key):
    """Every version of a key: the base row, then the changes by _observed_at."""
    k = KEYS[feed]
    base = [r for r in g.rows(feed) if r[k] == key]
    ch = sorted((r for r in g.rows(feed + "_changes") if r[k] == key),
                key=lambda r: r["_observed_at"])
    return base, ch


def check_versions(g, feed):
    """Exactly-once for versions: no (key, _observed_at) twice, and no key
    with the same version twice in a row (a version recorded again)."""
    k = KEYS[feed]
    rows = g.rows(feed + "_changes")
    seen = set()
    for r in rows:
        ident = (r[k], r["_observed_at"])
        assert ident not in seen, f"{feed}: change row {ident} stored twice"
        seen.add(ident)
        assert r["_fingerprint"] and len(r["_fingerprint"]) == 16, r
    base = {r[k]: r for r in g.rows(feed)}
    by_key = {}
    for r in sorted(rows, key=lambda r: r["_observed_at"]):
        by_key.setdefault(r[k], []).append(r["_fingerprint"])
    for key, fps in by_key.items():
        prev = base[key].get("_fingerprint") if key in base else None
        for fp in fps:
            assert fp != prev, f"{feed} {key}: version {fp} recorded twice in a row"
            prev = fp
    return rows


def current(g, feed):
    return {r[KEYS[feed]]: r for r in g.rows(feed + "_current")}


def check_current_is_source(g, s, feed):
    """TABLE_current holds every source row once, with the source's values."""
    want, _ = expected_rows(s, feed)
    cur = g.rows(feed + "_current")
    keys = [r[KEYS[feed]] for r in cur]
    assert len(keys) == len(set(keys)), f"{feed}_current: a key twice"
    assert set(keys) == set(want), (set(want) ^ set(keys))
    for r in cur:
        for col, v in want[r[KEYS[feed]]].items():
            got = r.get(col)
            if isinstance(v, float) or isinstance(got, float):
                assert got is not None and abs(float(got) - float(v)) < 1e-9, (col, got, v)
            else:
                assert got == v, f"{feed} {r[KEYS[feed]]}: {col} = {got!r}, expected {v!r}"


def test_tables_and_view_are_created_and_first_rows_have_fingerprints():
    with Workdir("chg-create") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        for feed in ("sales", "events"):
            check_exactly_once(g, s, feed)
            assert g.rows(feed + "_changes") == []
            assert all(len(r["_fingerprint"]) == 16 for r in g.rows(feed))
            check_current_is_source(g, s, feed)
        # The same versions again: nothing is sent.
        g.call("DELETE", "/_fake/requests")
        once_ok(w, cfg)
        assert [r for r in g.requests() if r["path"].endswith("/insertAll")] == []


def test_a_postponed_event_ends_up_with_its_new_start_in_events_current():
    with Workdir("chg-postponed") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        ev = next(r for r in g.rows("events") if r["starts"])
        update(s, "events", ev["id"], starts="2031-05-01T20:00:00Z", name="Postponed show")
        err = once_ok(w, cfg)
        assert "ROWS_CHANGED=1" in err, err[-2000:]
        cur = current(g, "events")[ev["id"]]
        assert cur["starts"] == "2031-05-01T20:00:00Z" and cur["name"] == "Postponed show", cur
        base, ch = history(g, "events", ev["id"])
        assert len(base) == 1 and base[0]["starts"] == ev["starts"], base
        assert len(ch) == 1 and ch[0]["starts"] == "2031-05-01T20:00:00Z", ch
        check_versions(g, "events")
        check_current_is_source(g, s, "events")


def test_a_confirmed_pending_sale_shows_both_versions_and_the_latest_is_current():
    with Workdir("chg-pending") as w:
        g, s, cfg = setup(w)
        key = s.truth("sales")[5]["uniqueCode"]
        update(s, "sales", key, isPending=True)
        once_ok(w, cfg)
        update(s, "sales", key, isPending=False)
        once_ok(w, cfg)
        base, ch = history(g, "sales", key)
        assert [r["isPending"] for r in base + ch] == [True, False], (base, ch)
        assert current(g, "sales")[key]["isPending"] is False
        # Seen again: nothing more.
        once_ok(w, cfg)
        assert len(history(g, "sales", key)[1]) == 1
        check_versions(g, "sales")
        check_current_is_source(g, s, "sales")


def test_a_version_changed_back_and_forth_records_each_change():
    with Workdir("chg-back") as w:
        g, s, cfg = setup(w)
        key = s.truth("sales")[7]["uniqueCode"]
        update(s, "sales", key, isPending=False)
        once_ok(w, cfg)
        for v in (True, False, True):
            update(s, "sales", key, isPending=v)
            once_ok(w, cfg)
        base, ch = history(g, "sales", key)
        assert [r["isPending"] for r in base + ch] == [False, True, False, True], (base, ch)
        assert ch[0]["_fingerprint"] == ch[2]["_fingerprint"] != ch[1]["_fingerprint"]
        assert current(g, "sales")[key]["isPending"] is True
        check_versions(g, "sales")


def test_a_restart_sends_spooled_versions_once_and_records_none_again():
    with Workdir("chg-restart") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        keys = [r["uniqueCode"] for r in s.truth("sales")[:6]]
        for k in keys:
            update(s, "sales", k, isPending=True, sold=9)
        # The changes cannot be sent: they stay spooled over the restart ...
        g.fault({"status": 503}, path=r"/tables/sales_changes/insertAll", times=0)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
        assert rc in (69, 75), (rc, err[-2000:])
        assert g.rows("sales_changes") == []
        g.clear_faults()
        # ... and the next run's first answer is lost after the rows were stored.
        g.fault({"lost_ack": True}, path=r"/tables/sales_changes/insertAll", times=1)
        once_ok(w, cfg, "--feed", "sales")
        once_ok(w, cfg, "--feed", "sales")
        ch = check_versions(g, "sales")
        assert sorted(r["uniqueCode"] for r in ch) == sorted(keys), ch
        check_current_is_source(g, s, "sales")


def test_versions_stored_with_their_answers_lost_are_not_sent_again_after_the_window():
    with Workdir("chg-lostack") as w:
        g, s, cfg = setup(w, google_args=("--dedup-window", "1"))
        env = dict(os.environ, STBQ_DEDUP_TRUST_MS="800")
        once_ok(w, cfg)
        keys = [r["uniqueCode"] for r in s.truth("sales")[10:14]]
        for k in keys:
            update(s, "sales", k, sold=21)
        # Every answer lost: BigQuery stores the versions, the daemon never hears so.
        g.fault({"lost_ack": True}, path=r"/tables/sales_changes/insertAll", times=0)
        # ... nor can it look them up (the two seeding queries go through).
        g.fault({"status": 503}, path=r"/queries", method="POST", times=0, skip=2)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales", env=env)
        assert rc in (69, 75), (rc, err[-2000:])
        g.clear_faults()
        assert len(g.rows("sales_changes")) == 4
        time.sleep(1.5)  # insertId no longer de-duplicates them
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales", env=env)
        assert rc == 0, (rc, err[-2000:])
        assert "versions of them are in table sales_changes" in err, err[-2000:]
        assert len(check_versions(g, "sales")) == 4
        check_current_is_source(g, s, "sales")


def test_kill_9_during_change_cycles_gives_each_version_exactly_once():
    with Workdir("chg-kill") as w:
        g, s, cfg = setup(w, **{"sales.interval": "1", "events.interval": "1"})
        once_ok(w, cfg)
        truth = [r["uniqueCode"] for r in s.truth("sales")]
        for round_ in range(4):
            for k in truth[round_ * 5:(round_ + 1) * 5] + truth[:2]:
                update(s, "sales", k, sold=10 + round_, isPending=bool(round_ % 2))
            # Slow changes inserts, so that the kill lands mid-cycle.
            g.fault({"delay_ms": 700}, path=r"_changes/insertAll", times=0)
            d = w.add(Daemon(w.path, cfg))
            d.wait_notify("READY=1", 60)
            time.sleep(0.8 + 0.4 * round_)
            d.kill9()
            g.clear_faults()
        once_ok(w, cfg)
        once_ok(w, cfg)
        check_versions(g, "sales")
        check_versions(g, "events")
        check_current_is_source(g, s, "sales")
        # The two keys changed in every round hold one version per round at most.
        for k in truth[:2]:
            base, ch = history(g, "sales", k)
            assert 1 <= len(ch) <= 4, ch


def test_enabling_tracking_on_tables_that_hold_rows_records_each_version_once():
    with Workdir("chg-enable") as w:
        g, s, cfg = setup(w, **{"sales.track_changes": "false", "events.track_changes": "false"})
        once_ok(w, cfg)
        n = len(g.rows("sales"))
        assert "_fingerprint" not in g.rows("sales")[0]
        cfg = write_config(w.path, g, s, **TRACK)
        err = once_ok(w, cfg)
        assert "added column _fingerprint" in err, err[-2000:]
        # The rows from before had no fingerprint: each current version is recorded once.
        assert len(g.rows("sales_changes")) == n
        once_ok(w, cfg)
        assert len(g.rows("sales_changes")) == n
        key = s.truth("sales")[0]["uniqueCode"]
        update(s, "sales", key, sold=77)
        once_ok(w, cfg)
        assert len(g.rows("sales_changes")) == n + 1
        check_versions(g, "sales")
        check_current_is_source(g, s, "sales")
        check_current_is_source(g, s, "events")


def test_an_older_table_with_a_timestamp_column_gets_a_changes_table_of_its_types():
    """The view unites base and changes: a base table made when `starts` was a
    TIMESTAMP must get a changes table with a TIMESTAMP `starts`, or the view
    could not be created."""
    with Workdir("chg-tstype") as w:
        g, s, cfg = setup(w)
        g.create_table("events", retype={"starts": "TIMESTAMP"})
        once_ok(w, cfg)
        made = [json.loads(r["body"]) for r in g.requests()
                if r["method"] == "POST" and r["path"].endswith("/tables") and r["body"] and
                json.loads(r["body"])["tableReference"]["tableId"] == "events_changes"]
        got = {f["name"]: f["type"] for f in made[0]["schema"]["fields"]}
        assert got["starts"] == "TIMESTAMP" and got["_observed_at"] == "TIMESTAMP", got
        ev = next(r for r in g.rows("events") if r["starts"])
        update(s, "events", ev["id"], starts="2031-05-01T20:00:00Z")
        once_ok(w, cfg)
        cur = current(g, "events")[ev["id"]]
        assert cur["starts"].startswith("2031-05-01"), cur
        check_versions(g, "events")


def test_a_full_disk_between_the_versions_and_the_new_rows_records_no_version_twice():
    """A page with a changed row and new rows: the version is spooled, then the
    disk is full for the new rows. The version is durable, so its fingerprint
    must be taken all the same, or the next poll records it a second time."""
    import subprocess
    if os.geteuid() != 0:
        print("# skipped: needs root to mount a small tmpfs as the state directory")
        return
    with Workdir("chg-diskfull") as w:
        statedir = os.path.join(w.path, "state")
        os.makedirs(statedir)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0750", "tmpfs",
                           statedir], capture_output=True).returncode != 0:
            print("# skipped: cannot mount a tmpfs here")
            return
        try:
            # One event, one page: the change and the new rows arrive together.
            # A running daemon: a restart would mend its key set from the spool.
            g, s, cfg = setup(w, "--events", "1", "--sales", "40",
                              **{"seetickets.page_size": "1000", "sales.interval": "1",
                                 "events.interval": "1"})
            d = w.add(Daemon(w.path, cfg))
            d.wait_notify("READY=1", 60)
            d.wait_notify("STATUS=sales: fetched", 30)
            filler = os.path.join(statedir, "filler")
            with open(filler, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError:
                    pass
            # Room for the one version's line, not for 30 new rows.
            os.truncate(filler, max(0, os.path.getsize(filler) - 8192))
            key = s.truth("sales")[3]["uniqueCode"]
            update(s, "sales", key, sold=55)
            s.grow(sales=30)
            wait_for(lambda: "cannot spool 30 new rows" in d.stderr(), 30, "a full disk")
            time.sleep(2.5)  # polls with the disk still full
            os.unlink(filler)
            wait_for(lambda: "new 30," in d.stderr(), 30, "the new rows")
            time.sleep(2.5)
            assert d.stop() == 0
            assert len(history(g, "sales", key)[1]) == 1, history(g, "sales", key)
            check_versions(g, "sales")
            check_exactly_once(g, s, "sales", values=False)
            check_current_is_source(g, s, "sales")
        finally:
            subprocess.run(["umount", "-l", statedir], capture_output=True)


def test_a_clock_set_back_still_makes_the_new_version_current():
    """_observed_at orders the versions in the view. A wall clock stepped back a
    day between two runs must not make the newer version sort first."""
    lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
    if not os.path.exists(lib):
        print("# skipped: no libfaketime (apt-get install faketime)")
        return
    with Workdir("chg-clock") as w:
        # Metadata credentials: a service-account JWT made a day early would be refused.
        g, s, cfg = setup(w, **{"google.credentials": '"metadata"'})
        once_ok(w, cfg)
        key = s.truth("sales")[6]["uniqueCode"]
        update(s, "sales", key, sold=2)
        once_ok(w, cfg, "--feed", "sales")
        update(s, "sales", key, sold=3)
        env = dict(os.environ, LD_PRELOAD=lib, FAKETIME="-1d", FAKETIME_DONT_RESET="1")
        # A sanitizer build wants its runtime first; libfaketime only wraps the clock.
        env["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"),
                                                   "verify_asan_link_order=0") if x)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales", env=env)
        assert rc == 0, (rc, err[-2000:])
        base, ch = history(g, "sales", key)
        assert [r["sold"] for r in ch] == [2, 3], ch
        assert current(g, "sales")[key]["sold"] == 3
        check_versions(g, "sales")
        check_current_is_source(g, s, "sales")


def test_a_restart_does_not_send_a_version_bigquery_refused():
    """Found by the fault-schedule checker (seed 515254514 and five others): a
    version BigQuery refused is dead-lettered and not sent again in that
    process, but a restart seeds the key's latest landed version from the view,
    saw the refused one at the source again and sent it once more. Now the
    changes' dead letters decide, as for rows; a newer version still goes."""
    with Workdir("chg-refused") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        key = s.truth("sales")[8]["uniqueCode"]
        update(s, "sales", key, sold=66)
        g.fault({"insert_errors": [{"index": 0, "reason": "invalid", "message": "bad"}]},
                path=r"/tables/sales_changes/insertAll", times=1)
        once_ok(w, cfg, "--feed", "sales")
        with open(os.path.join(w.path, "state", "rejected-sales_changes.ndjson")) as f:
            dl = [json.loads(x) for x in f]
        assert len(dl) == 1 and dl[0]["row"]["uniqueCode"] == key, dl
        assert g.rows("sales_changes") == []
        g.call("DELETE", "/_fake/requests")
        once_ok(w, cfg, "--feed", "sales")  # a new process
        assert g.rows("sales_changes") == [], "the refused version was sent again"
        update(s, "sales", key, sold=67)
        once_ok(w, cfg, "--feed", "sales")
        base, ch = history(g, "sales", key)
        assert [r["sold"] for r in ch] == [67], ch
        check_versions(g, "sales")


def _table(g, table, feed, extra=()):
    """A table with the feed's columns and the extra ones given."""
    from harness import PROJECT, DATASET, SALES_COLUMNS, EVENTS_COLUMNS
    types = {"S": "STRING", "F": "FLOAT", "I": "INTEGER", "B": "BOOLEAN"}
    cols = SALES_COLUMNS if feed == "sales" else EVENTS_COLUMNS
    fields = [{"name": c[0], "type": types[c[1]]} for c in cols] + \
        [{"name": n, "type": t} for n, t in extra]
    g.post("/_fake/tables", {"project": PROJECT, "dataset": DATASET, "table": table,
                             "schema": {"fields": fields}})


def test_the_view_is_the_daemon_s_or_the_start_says_why():
    """Seeding reads TABLE_current, so its definition matters: another one is
    replaced (create_tables) or refused (without), a table in its place is
    refused, and a base table that cannot take _fingerprint stops the start
    with the permission it needs."""
    from harness import PROJECT, DATASET
    other = f"SELECT uniqueCode FROM `{PROJECT}.{DATASET}.sales`"
    with Workdir("chg-view") as w:
        g, s, cfg = setup(w)
        g.create_table("sales")
        g.fault({"status": 403, "body": {"error": {"code": 403, "message": "denied",
                 "errors": [{"reason": "accessDenied", "message": "denied"}]}}},
                path=r"/tables/sales\b", method="PATCH", times=0)
        rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
        assert rc == 69 and "bigquery.tables.update" in err, (rc, err[-2000:])
        assert g.rows("sales") == []
        g.clear_faults()
        g.post("/_fake/tables", {"project": PROJECT, "dataset": DATASET,
                                 "table": "sales_current", "view": other})
        err = once_ok(w, cfg)
        assert "view definition replaced" in err, err[-2000:]
        check_current_is_source(g, s, "sales")
    for what, want in (("view", "does not have the daemon's definition"),
                       ("table", "not a view")):
        with Workdir("chg-view-" + what) as w:
            g, s, cfg = setup(w, **{"bigquery.create_tables": "false",
                                    "events.track_changes": "false"})
            fp, at = ("_fingerprint", "STRING"), ("_observed_at", "TIMESTAMP")
            _table(g, "sales", "sales", [fp])
            _table(g, "sales_changes", "sales", [fp, at])
            _table(g, "events", "events")
            if what == "view":
                g.post("/_fake/tables", {"project": PROJECT, "dataset": DATASET,
                                         "table": "sales_current", "view": other})
            else:
                _table(g, "sales_current", "sales", [fp])
            rc, out, err = run_once(w.path, cfg, "--once", "--feed", "sales")
            assert rc == 78 and want in err, (what, rc, err[-2000:])
            assert g.rows("sales_changes") == []


def test_a_reload_cannot_turn_tracking_off_under_the_key_sets():
    """The key sets hold fingerprints and the changes have their own spool:
    a reload that changes track_changes is refused and the old one goes on."""
    import signal
    with Workdir("chg-reload") as w:
        g, s, cfg = setup(w, **{"sales.interval": "1", "events.interval": "1"})
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1", 60)
        write_config(w.path, g, s, **dict(TRACK, **{"sales.track_changes": "false",
                                                    "sales.interval": "1",
                                                    "events.interval": "1"}))
        d.signal(signal.SIGHUP)
        wait_for(lambda: "sales.track_changes cannot change while running" in d.stderr(), 15,
                 "the reload refused")
        key = s.truth("sales")[2]["uniqueCode"]
        update(s, "sales", key, sold=12)
        wait_for(lambda: len(history(g, "sales", key)[1]) == 1, 20, "the change recorded")
        assert d.stop() == 0


def test_load_jobs_carry_changed_versions_too():
    with Workdir("chg-load") as w:
        g, s, cfg = setup(w, **{"bigquery.insert_method": '"load"'})
        once_ok(w, cfg)
        key = s.truth("sales")[3]["uniqueCode"]
        update(s, "sales", key, sold=41)
        once_ok(w, cfg)
        base, ch = history(g, "sales", key)
        assert len(ch) == 1 and ch[0]["sold"] == 41, ch
        check_versions(g, "sales")
        check_current_is_source(g, s, "sales")


def test_dry_run_prints_changed_versions_and_writes_nothing():
    with Workdir("chg-dry") as w:
        g, s, cfg = setup(w)
        once_ok(w, cfg)
        key = s.truth("sales")[2]["uniqueCode"]
        update(s, "sales", key, sold=5)
        rc, out, err = run_once(w.path, cfg, "--dry-run", "--feed", "sales")
        assert rc == 0, err[-2000:]
        lines = [json.loads(x) for x in out.splitlines() if x.strip()]
        assert len(lines) == 1 and lines[0]["uniqueCode"] == key and lines[0]["sold"] == 5, lines
        assert "_observed_at" in lines[0] and "_fingerprint" in lines[0]
        assert g.rows("sales_changes") == []


def test_the_audit_finds_a_stale_row_only_after_a_poll():
    with Workdir("chg-audit") as w:
        g, s, cfg = setup(w, **{"sales.interval": "2", "events.interval": "2"})
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1", 60)
        d.wait_notify("STATUS=sales: fetched", 30)
        rc, out, err = run_once(w.path, cfg, "--audit", "--json")
        doc = json.loads(out)
        assert rc == 0 and doc["feeds"]["sales"]["stale"]["count"] == 0, doc
        # A latest version the service never sent (the running service keeps
        # its own fingerprints, so it does not mend it): stale.
        row = dict(g.rows("sales")[4])
        row["sold"] = 999
        row["_fingerprint"] = "0123456789abcdef"
        row["_observed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        g.add_rows("sales_changes", [row])
        rc, out, err = run_once(w.path, cfg, "--audit", "--json", "--feed", "sales", "--wait")
        doc = json.loads(out)
        f = doc["feeds"]["sales"]
        assert rc == 1 and f["stale"]["count"] == 1, (rc, f)
        assert f["stale"]["examples"] == [row["uniqueCode"]], f
        d.stop()
        # Without a poll after the read, the same finding is only "not yet polled".
        rc, out, err = run_once(w.path, cfg, "--audit", "--json", "--feed", "sales")
        doc = json.loads(out)
        assert rc == 0 and doc["feeds"]["sales"]["not_yet_polled"]["count"] == 1, doc


if __name__ == "__main__":
    t = Tap()
    for fn in (test_kill_9_during_change_cycles_gives_each_version_exactly_once,
               test_tables_and_view_are_created_and_first_rows_have_fingerprints,
               test_a_postponed_event_ends_up_with_its_new_start_in_events_current,
               test_a_confirmed_pending_sale_shows_both_versions_and_the_latest_is_current,
               test_a_version_changed_back_and_forth_records_each_change,
               test_a_restart_sends_spooled_versions_once_and_records_none_again,
               test_versions_stored_with_their_answers_lost_are_not_sent_again_after_the_window,
               test_enabling_tracking_on_tables_that_hold_rows_records_each_version_once,
               test_an_older_table_with_a_timestamp_column_gets_a_changes_table_of_its_types,
               test_a_full_disk_between_the_versions_and_the_new_rows_records_no_version_twice,
               test_a_clock_set_back_still_makes_the_new_version_current,
               test_a_restart_does_not_send_a_version_bigquery_refused,
               test_the_view_is_the_daemon_s_or_the_start_says_why,
               test_a_reload_cannot_turn_tracking_off_under_the_key_sets,
               test_load_jobs_carry_changed_versions_too,
               test_dry_run_prints_changed_versions_and_writes_nothing,
               test_the_audit_finds_a_stale_row_only_after_a_poll):
        t.run(fn)
    t.done()

#!/usr/bin/python3
"""The daemon as systemd sees it: notify protocol, signals, reload, watchdog,
command line and exit status. Real binary, fake servers, public interface."""
import os
import re
import signal
import time

from harness import (API_KEY, Daemon, GoogleFake, SeeTicketsFake, Tap, Workdir, run_once,
                     check_exactly_once, expected_rows, wait_for, write_config, STBQ_BIN)
import subprocess


def start_fakes(w, *st_args):
    g = w.add(GoogleFake(w.path))
    s = w.add(SeeTicketsFake(w.path, *st_args))
    return g, s


def reload_with(d, cfg, text, logged):
    """Write text as the configuration, SIGHUP the daemon and give it 10 s to log `logged`."""
    with open(cfg, "w") as f:
        f.write(text)
    d.signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and logged not in d.stderr():
        time.sleep(0.1)


def test_ready_status_and_stopping_are_notified():
    with Workdir("notify") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        d.wait_notify("STATUS=sales: fetched", 30)
        t0 = time.monotonic()
        rc = d.stop()
        assert rc == 0, rc
        assert time.monotonic() - t0 < 5
        assert d.notified("STOPPING=1"), d.messages
        # READY comes after seeding, which reports progress through STATUS.
        ready = d.messages.index("READY=1")
        assert any(m.startswith("STATUS=") for m in d.messages[ready:])


def test_status_shows_both_feeds_last_polls_with_their_times():
    """`systemctl status` shows one STATUS= line: the feed that just polled first, then the
    other feed's last poll, each with the time it ended."""
    with Workdir("status2") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("STATUS=sales: fetched", 30)
        d.wait_notify("STATUS=events: fetched", 30)
        d.wait_notify("STATUS=sales: fetched", 30)
        clock = r"at (\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d \w+"
        both = re.compile(r"^STATUS=(sales|events): fetched \d+, new \d+, inserted \d+, "
                          r"rejected \d+ " + clock + r"; (sales|events): fetched \d+, new \d+, "
                          r"inserted \d+, rejected \d+ " + clock + "$")
        last = [m for m in d.messages if m.startswith("STATUS=")][-1]
        m = both.match(last)
        assert m and m.group(1) != m.group(2), last
        # The very first poll has no other feed to show yet.
        first = [m for m in d.messages if re.match(r"STATUS=(sales|events): fetched", m)][0]
        assert re.match(r"^STATUS=\w+: fetched [^;]*" + clock + "$", first), first
        assert d.stop() == 0


def test_sigterm_during_a_slow_transfer_exits_within_5s():
    with Workdir("slow") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        s.fault({"delay_ms": 60000}, path="/v1/events/search", times=0)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        time.sleep(1.0)  # the first events poll is now stuck in the slow answer
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(10)
        took = time.monotonic() - t0
        assert took < 5, f"took {took:.1f}s"
        assert rc == 0, rc
        assert d.notified("STOPPING=1")
        s.clear_faults()


def test_sighup_with_a_broken_file_keeps_the_old_configuration():
    with Workdir("reload") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        good = open(cfg).read()
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        reload_with(d, cfg, good.replace('page_size = 50;', 'page_size = "fifty";'),
                    "reload refused")
        err = d.stderr()
        assert "reload refused" in err, err[-2000:]
        assert re.search(r"seetickets-bq\.conf:\d+: seetickets\.page_size: ", err), err[-2000:]
        assert d.notified("RELOADING=1")
        assert d.proc.poll() is None, "daemon died on a bad reload"
        # It keeps polling with the old configuration.
        n = len(d.notified("STATUS=sales"))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(d.notified("STATUS=sales")) <= n:
            time.sleep(0.2)
        assert len(d.notified("STATUS=sales")) > n, "no poll after the refused reload"
        # A valid file is taken.
        reload_with(d, cfg, good.replace("page_size = 50;", "page_size = 20;"),
                    "configuration reloaded")
        assert "configuration reloaded" in d.stderr()
        # Changing the dataset needs a restart: refused, old one kept.
        reload_with(d, cfg, good.replace('dataset = "seetickets_data";', 'dataset = "other";'),
                    "cannot change while running")
        assert "bigquery.dataset cannot change while running" in d.stderr()
        assert d.stop() == 0


def test_watchdog_is_fed_when_enabled():
    with Workdir("watchdog") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        d = w.add(Daemon(w.path, cfg, env={"WATCHDOG_USEC": "400000"}))
        d.wait_notify("READY=1")
        time.sleep(2.0)
        pings = len(d.notified("WATCHDOG=1"))
        assert pings >= 4, f"{pings} pings in 2 s with a 0.4 s watchdog"
        d.stop()


def test_no_watchdog_pings_without_watchdog_usec():
    with Workdir("nowatchdog") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        time.sleep(1.0)
        assert not d.notified("WATCHDOG=1")
        d.stop()


def test_a_long_seed_reports_progress_and_extends_the_start_timeout():
    with Workdir("seedprogress") as w:
        g, s = start_fakes(w)
        g.create_table("sales")
        n = 150000
        for start in range(0, n, 25000):
            g.add_rows("sales", [{"uniqueCode": f"SEED{i:08d}"} for i in range(start, start + 25000)])
        # Seeding asks for 100 000 keys a page: the second page comes slowly.
        g.fault({"delay_ms": 6500}, path="/queries/", method="GET", times=1)
        cfg = write_config(w.path, g, s)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1", 60)
        ready = d.messages.index("READY=1")
        before = d.messages[:ready]
        assert any(m.startswith("STATUS=seeding sales") for m in before), before
        assert any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in before), before
        assert re.search(r"sales: seeding, \d+ keys of table sales loaded so far", d.stderr())
        assert f"sales: {n} keys known in table sales" in d.stderr()
        d.stop()


def test_a_refused_key_is_read_again_before_the_next_poll():
    with Workdir("rotate") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        key_file = os.path.join(w.path, "api-key")
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("STATUS=sales: fetched", 30)
        # The key is rotated at See Tickets first, in the file a little later.
        s.post("/_fake/config", {"api_key": "rotated-key-5d2e9a"})
        wait_for(lambda: "refused the API key from file " + key_file in d.stderr(), 15,
                 "the refusal naming the key file")
        with open(key_file, "w") as f:
            f.write("rotated-key-5d2e9a\n")
        s.grow(sales=7)
        want, _ = expected_rows(s, "sales")
        wait_for(lambda: len(g.rows("sales")) == len(want), 20, "the new sales to land")
        check_exactly_once(g, s, "sales")
        # A reload whose key cannot be read is refused; the daemon goes on.
        os.unlink(key_file)
        reload_with(d, cfg, open(cfg).read(), "the API key could not be read")
        assert "reload refused: the API key could not be read" in d.stderr()
        assert d.proc.poll() is None
        assert "rotated-key-5d2e9a" not in d.stderr()
        assert d.stop() == 0


def test_command_line_errors_exit_64_and_help_exits_0():
    for args in (["--bogus"], ["--feed", "tickets", "--once"], ["--feed", "sales"],
                 ["extra-arg"], ["--log-level", "loud"], ["-c"], ["--check-config", "--once"]):
        p = subprocess.run([STBQ_BIN, *args], capture_output=True, text=True, timeout=10)
        assert p.returncode == 64, (args, p.returncode, p.stderr)
        assert p.stderr.strip(), args
    p = subprocess.run([STBQ_BIN, "--help"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "--dry-run" in p.stdout and "--check-config" in p.stdout
    p = subprocess.run([STBQ_BIN, "--version"], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and re.match(r"seetickets-bq \d+\.\d+", p.stdout), p.stdout


def test_missing_config_file_exits_78():
    p = subprocess.run([STBQ_BIN, "-c", "/nonexistent/x.conf"], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 78, p.returncode
    assert "/nonexistent/x.conf" in p.stderr


def test_second_daemon_on_the_same_state_dir_is_refused():
    with Workdir("lock") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s)
        d = w.add(Daemon(w.path, cfg))
        d.wait_notify("READY=1")
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 75, (rc, err[-1000:])
        assert "another seetickets-bq uses this state directory" in err
        d.stop()


def test_logs_hold_no_secret_at_debug_level():
    with Workdir("secrets") as w:
        g, s = start_fakes(w)
        cfg = write_config(w.path, g, s, log_level='"debug"')
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 0, (rc, err[-2000:])
        assert API_KEY not in err and API_KEY not in out
        assert "ya29." not in err
        assert "PRIVATE KEY" not in err
        assert "assertion=" not in err or "assertion=*" in err
        # Personal fields of sales never appear: pick post codes from the truth.
        for sale in s.truth("sales")[:50]:
            loc = sale.get("location") or {}
            pc = loc.get("postCode") if isinstance(loc, dict) else None
            if isinstance(pc, str) and len(pc) > 4:
                assert pc not in err, "a post code reached the log"


if __name__ == "__main__":
    t = Tap()
    for fn in (test_command_line_errors_exit_64_and_help_exits_0,
               test_missing_config_file_exits_78,
               test_ready_status_and_stopping_are_notified,
               test_status_shows_both_feeds_last_polls_with_their_times,
               test_sigterm_during_a_slow_transfer_exits_within_5s,
               test_sighup_with_a_broken_file_keeps_the_old_configuration,
               test_watchdog_is_fed_when_enabled,
               test_no_watchdog_pings_without_watchdog_usec,
               test_second_daemon_on_the_same_state_dir_is_refused,
               test_a_long_seed_reports_progress_and_extends_the_start_timeout,
               test_a_refused_key_is_read_again_before_the_next_poll,
               test_logs_hold_no_secret_at_debug_level):
        t.run(fn)
    t.done()

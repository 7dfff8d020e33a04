#!/usr/bin/python3
"""Every See Tickets fault: the run retries or fails cleanly, and BigQuery still holds each row once.
Real daemon, fake servers, public interface only; every test compares
BigQuery's rows with the source's ground truth."""
import json
import os
import time

import httpd

from harness import (API_KEY, Tap, Workdir, check_exactly_once,
                     run_once)

from test_pipeline import once_ok, setup  # noqa: E402,F401


def run_with_st_fault(action, path, times=1, expect_rc=0, **cfg):
    with Workdir("stfault") as w:
        g, s, conf = setup(w, **cfg)
        s.fault(action, path=path, times=times)
        rc, out, err = run_once(w.path, conf, "--once")
        assert rc == expect_rc, f"exit {rc}, expected {expect_rc}: {err[-3000:]}"
        if expect_rc == 0:
            check_exactly_once(g, s, "events")
            check_exactly_once(g, s, "sales")
        else:
            s.clear_faults()
            once_ok(w, conf)
            check_exactly_once(g, s, "events")
            check_exactly_once(g, s, "sales")
        return err


def test_see_tickets_429_with_retry_after_is_waited_out():
    t0 = time.monotonic()
    run_with_st_fault({"status": 429, "body": {"error": "slow down"}, "headers": {"Retry-After": "2"}},
                      "/v1/reports/sales")
    assert time.monotonic() - t0 >= 2


def test_see_tickets_500_is_retried():
    run_with_st_fault({"status": 500, "body": "oops"}, "/v1/events/search", times=2)


def test_see_tickets_malformed_json_is_retried():
    run_with_st_fault({"malformed": True}, "/v1/reports/sales", times=2)


def test_see_tickets_truncated_body_is_retried():
    run_with_st_fault({"truncate": True}, "/v1/events/search", times=1)


def test_see_tickets_dropped_connection_is_retried():
    run_with_st_fault({"drop": True}, "/v1/reports/sales", times=2)


def test_see_tickets_slow_answer_within_timeout_is_fine():
    run_with_st_fault({"delay_ms": 1500}, "/v1/events/search", times=1)


def test_see_tickets_outage_fails_the_run_and_the_next_run_catches_up():
    err = run_with_st_fault({"status": 503, "body": "down"}, "/v1/reports/sales", times=0,
                            expect_rc=69, **{"sales.event_codes": None})
    assert "sales" in err


def test_see_tickets_refusing_the_key_names_the_key_source():
    with Workdir("badkey") as w:
        g, s, cfg = setup(w)
        s.post("/_fake/config", {"api_key": "another-key-entirely"})
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc == 69, (rc, err[-2000:])
        assert "refused the API key" in err and "file " + os.path.join(w.path, "api-key") in err
        assert API_KEY not in err


def test_untrusted_certificate_says_tls_failed_for_which_host():
    """A TLS-intercepting proxy or a wrong ca_file: the warning says TLS, the host, curl's
    reason and what to check, not only "Permission denied"; nothing is retried."""
    with Workdir("tls") as w:
        srv = httpd.Server(tls=httpd.Cert(w.path, "intercepting")).start()
        try:
            srv.script("/v1/events/search", {"body": "{}"})
            g, s, cfg = setup(w, **{"seetickets.base_url": json.dumps(srv.url("/v1"))})
            rc, out, err = run_once(w.path, cfg, "--once")
            assert srv.requests("/v1/events/search") == [], "a request crossed the failed handshake"
        finally:
            srv.stop()
        assert rc == 69, (rc, err[-2000:])
        w_lines = [l for l in err.splitlines() if l.startswith("warning:") and "TLS" in l]
        assert w_lines, err[-2000:]
        line = w_lines[0]
        for part in ("TLS verification of 127.0.0.1 failed", "self-signed certificate",
                     "ca_file", "proxy", "clock"):
            assert part in line, (part, line)


def test_unresolvable_host_says_dns_failed_for_which_host():
    with Workdir("dns") as w:
        g, s, cfg = setup(w, **{"seetickets.base_url": '"https://stbq-no-such-host.invalid/v1"',
                                "seetickets.timeout": "2"})
        rc, out, err = run_once(w.path, cfg, "--once")
        assert rc in (69, 75), (rc, err[-2000:])
        lines = [l for l in err.splitlines() if l.startswith("warning:") and
                 "cannot resolve stbq-no-such-host.invalid" in l]
        assert lines and "DNS resolver" in lines[0], err[-2000:]


if __name__ == "__main__":
    t = Tap()
    for fn in (test_see_tickets_429_with_retry_after_is_waited_out,
               test_see_tickets_500_is_retried,
               test_see_tickets_malformed_json_is_retried,
               test_see_tickets_truncated_body_is_retried,
               test_see_tickets_dropped_connection_is_retried,
               test_see_tickets_slow_answer_within_timeout_is_fine,
               test_see_tickets_outage_fails_the_run_and_the_next_run_catches_up,
               test_see_tickets_refusing_the_key_names_the_key_source,
               test_untrusted_certificate_says_tls_failed_for_which_host,
               test_unresolvable_host_says_dns_failed_for_which_host):
        t.run(fn)
    t.done()

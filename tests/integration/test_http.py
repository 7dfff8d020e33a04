#!/usr/bin/python3
"""The HTTP layer against real loopback servers, through tests/unit/http_probe.

Each case runs the probe (one http_send per request, one JSON line each) against a scripted
server from httpd.py and checks what the probe reports and what the server saw. TAP on stdout.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import httpd  # noqa: E402

BUILD = os.environ.get("TOP_BUILDDIR") or os.getcwd()
PROBE = os.path.join(BUILD, "tests", "unit", "http_probe")
BEARER = "s3cret-probe-value-0123456789"


def package_version():
    with open(os.path.join(BUILD, "autoconfig.h")) as f:
        m = re.search(r'#define PACKAGE_VERSION "([^"]+)"', f.read())
    return m.group(1)


class Run:
    def __init__(self, proc, out, err, took):
        self.rc = proc.returncode
        self.out = out
        self.err = err
        self.took = took
        self.lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
        self.r = self.lines[0] if self.lines else {}

    def __repr__(self):
        return "rc=%s took=%.2fs out=%s err=%s" % (self.rc, self.took, self.out.strip(),
                                                   self.err.strip()[-800:])


def probe_with(program, *args, timeout=20):
    t0 = time.monotonic()
    p = subprocess.run([program] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout)
    return Run(p, p.stdout, p.stderr, time.monotonic() - t0)


def probe(*args, timeout=20):
    return probe_with(PROBE, *args, timeout=timeout)


class Fail(Exception):
    pass


def check(cond, what, run=None):
    if not cond:
        raise Fail(what + ("" if run is None else "\n" + repr(run)))


# ---- the cases ------------------------------------------------------------------------------


def test_200_with_body_and_project_headers(ctx):
    srv = ctx.http
    srv.script("/ok", {"body": "hello world", "headers": {"X-Thing": "1"}})
    r = probe(srv.url("/ok?page=1"))
    check(r.rc == 0 and r.r["rc"] == "OK" and r.r["status"] == 200, "200 expected", r)
    check(r.r["body_len"] == 11 and r.r["excerpt"] == "hello world", "body", r)
    check(r.r["attempts"] == 1, "one attempt", r)
    check(r.r["retry_after_ms"] == -1, "no Retry-After", r)
    seen = srv.requests("/ok")
    check(len(seen) == 1, "one request")
    h = seen[0].headers
    check(h.get("User-Agent") == "seetickets-bq/" + package_version(),
          "user agent %r" % h.get("User-Agent"))
    check("gzip" in (h.get("Accept-Encoding") or ""), "accept-encoding %r" % h.get("Accept-Encoding"))
    check(h.get("Authorization") is None, "no Authorization without a bearer")
    check(seen[0].path == "/ok?page=1", "query string sent")
    # The debug record names the URL without its query.
    check("/ok" in r.err and "page=1" not in r.err, "query kept out of the log", r)


def test_gzip_body_is_decoded(ctx):
    srv = ctx.http
    srv.script("/gz", {"body": "z" * 5000, "gzip": True})
    r = probe("--max-bytes", 6000, srv.url("/gz"))
    check(r.r.get("rc") == "OK" and r.r["body_len"] == 5000, "decoded 5000 bytes", r)


def test_connection_is_reused_between_requests(ctx):
    srv = ctx.http
    srv.script("/keep", {"body": "k"})
    r = probe("--repeat", 3, srv.url("/keep"))
    check(r.rc == 0 and len(r.lines) == 3, "three answers", r)
    ports = {s.client_port for s in srv.requests("/keep")}
    check(len(srv.requests("/keep")) == 3 and len(ports) == 1, "one connection, ports %s" % ports)


def test_large_post_sends_no_expect_header(ctx):
    srv = ctx.http
    srv.script("/post", {"status": 201, "body": {"ok": True}})
    path = os.path.join(ctx.tmp, "big.json")
    with open(path, "w") as f:
        f.write('"' + "a" * (1536 * 1024) + '"')
    r = probe("--method", "POST", "--data-file", path, "--content-type", "application/json",
              "--header", "X-Request-Tag: t1", srv.url("/post"))
    check(r.r.get("rc") == "OK" and r.r["status"] == 201, "201 expected", r)
    seen = srv.requests("/post")
    check(len(seen) == 1 and seen[0].method == "POST", "one POST")
    check(len(seen[0].body) == 1536 * 1024 + 2, "whole body arrived (%d)" % len(seen[0].body))
    check(seen[0].headers.get("Expect") is None, "Expect header sent")
    check(seen[0].headers.get("Content-Type") == "application/json", "content type")
    check(seen[0].headers.get("X-Request-Tag") == "t1", "extra header")
    # Other methods: DELETE without a body, PUT with an empty one.
    srv.script("/del", {"status": 204})
    r = probe("--method", "DELETE", srv.url("/del"))
    check(r.r.get("rc") == "OK" and srv.requests("/del")[0].method == "DELETE", "DELETE", r)
    srv.script("/put", {"status": 200})
    r = probe("--method", "PUT", srv.url("/put"))
    s = srv.requests("/put")
    check(r.r.get("rc") == "OK" and s[0].method == "PUT" and
          s[0].headers.get("Content-Length") == "0", "empty PUT", r)


def test_total_timeout_when_the_server_stalls(ctx):
    srv = ctx.http
    srv.script("/stall", {"delay": 8, "body": "late"})
    r = probe("--timeout", 1, srv.url("/stall"))
    check(r.r.get("rc") == "EAGAIN" and r.r["error"] == "ETIMEDOUT", "timed out", r)
    check(900 <= r.r.get("elapsed_ms", 0) < 2500, "ended by the 1 s limit", r)


def test_declared_oversize_body_is_refused_at_the_headers(ctx):
    srv = ctx.http
    # The server announces 10 MB and then sends nothing: only an abort at the headers
    # ends this quickly.
    srv.script("/huge", {"declare": 10 * 1024 * 1024})
    r = probe("--max-bytes", 1000, "--attempts", 3, srv.url("/huge"))
    check(r.r.get("rc") == "EFBIG" and r.r["error"] == "EFBIG", "EFBIG", r)
    check("response larger than 1000 bytes" in r.r["errmsg"], "clear message", r)
    check(r.r.get("elapsed_ms", 10**6) < 2000 and len(srv.requests("/huge")) == 1,
          "aborted at once, not retried", r)


def test_chunked_oversize_body_is_cut_off(ctx):
    srv = ctx.http
    srv.script("/chunky", {"body": "c" * 5000, "chunked": 500})
    r = probe("--max-bytes", 1000, srv.url("/chunky"))
    check(r.r.get("rc") == "EFBIG" and r.r["body_len"] <= 1000, "EFBIG", r)
    srv.script("/fits", {"body": "c" * 1000, "chunked": 100})
    r = probe("--max-bytes", 1000, srv.url("/fits"))
    check(r.r.get("rc") == "OK" and r.r["body_len"] == 1000, "exactly the cap is fine", r)
    srv.script("/over", {"body": "c" * 1001, "chunked": 100})
    r = probe("--max-bytes", 1000, srv.url("/over"))
    check(r.r.get("rc") == "EFBIG", "one byte over the cap is not", r)


def test_429_retry_after_is_honoured(ctx):
    srv = ctx.http
    srv.script("/limited", {"status": 429, "headers": {"Retry-After": "1"}, "body": "slow down"},
               {"body": "done"})
    r = probe("--attempts", 3, srv.url("/limited"))
    check(r.r.get("rc") == "OK" and r.r["attempts"] == 2, "success on the 2nd attempt", r)
    seen = srv.requests("/limited")
    check(len(seen) == 2, "two requests")
    gap = seen[1].time - seen[0].time
    check(1.0 <= gap < 1.8, "waited the Retry-After second (%.2f s)" % gap, r)
    check(r.took >= 1.0, "took at least 1 s", r)


def test_503_is_retried_until_attempts_run_out(ctx):
    srv = ctx.http
    srv.script("/down", {"status": 503, "headers": {"Retry-After": "0"}, "body": "unavailable"})
    r = probe("--attempts", 3, srv.url("/down"))
    check(r.r.get("rc") == "EAGAIN" and r.r["status"] == 503 and r.r["error"] == "OK",
          "EAGAIN with the last 503", r)
    check(len(srv.requests("/down")) == 3 and r.r["attempts"] == 3, "three attempts", r)
    check("unavailable" in r.err and "3/3" in r.err, "retries logged with the body excerpt", r)


def test_backoff_without_retry_after_waits_one_to_two_seconds(ctx):
    srv = ctx.http
    srv.script("/flaky", {"status": 502})
    r = probe("--attempts", 2, srv.url("/flaky"))
    seen = srv.requests("/flaky")
    check(r.r.get("rc") == "EAGAIN" and len(seen) == 2, "two attempts", r)
    gap = seen[1].time - seen[0].time
    check(1.0 <= gap < 2.3, "first backoff 1-2 s (%.2f s)" % gap, r)


def test_budget_stops_before_a_wait_that_would_pass_it(ctx):
    srv = ctx.http
    srv.script("/budget", {"status": 503})
    r = probe("--attempts", 5, "--budget-ms", 500, srv.url("/budget"))
    check(r.r.get("rc") == "EAGAIN" and len(srv.requests("/budget")) == 1, "one attempt", r)
    # The probe's own clock: process start-up (slow under ASan) is not the budget's business.
    check(r.r.get("elapsed_ms", 10**6) < 500, "did not sleep past the budget", r)


def test_client_errors_are_not_retried(ctx):
    srv = ctx.http
    for status, want in ((400, "EINVAL"), (401, "EKEYREJECTED"), (403, "EACCES"),
                         (404, "ENOENT"), (409, "EEXIST")):
        path = "/status%d" % status
        srv.script(path, {"status": status, "body": {"error": {"code": status, "errors": [
            {"reason": "accessDenied" if status == 403 else "invalid"}]}}})
        r = probe("--attempts", 3, srv.url(path))
        check(r.r.get("rc") == want and r.r["status"] == status, "%d -> %s" % (status, want), r)
        check(len(srv.requests(path)) == 1, "%d not retried" % status, r)


def test_403_rate_limit_reason_is_retried(ctx):
    srv = ctx.http
    body = {"error": {"code": 403, "message": "Exceeded rate limits", "errors": [
        {"domain": "global", "reason": "rateLimitExceeded", "message": "too many"}]}}
    srv.script("/bq", {"status": 403, "body": body}, {"body": {"kind": "ok"}})
    r = probe("--attempts", 3, srv.url("/bq"))
    check(r.r.get("rc") == "OK" and len(srv.requests("/bq")) == 2, "retried once, then OK", r)
    check("rateLimitExceeded" in r.err, "the reason is logged", r)


def test_connection_refused_is_retried(ctx):
    port = httpd.free_port()
    r = probe("--attempts", 2, "http://127.0.0.1:%d/x" % port)
    check(r.r.get("rc") == "EAGAIN" and r.r["error"] == "ECONNREFUSED", "refused", r)
    check(r.r["attempts"] == 2 and r.took >= 1.0, "retried after a backoff", r)
    w = [l for l in r.err.splitlines() if l.startswith("warning:")]
    check(len(w) == 1 and "cannot connect to 127.0.0.1 (Failed to connect" in w[0] and
          "no retries left" in w[0], "the last attempt is a warning naming the host", r)
    check(all(x in w[0] for x in ("host and port", "proxy", "firewall")), "what to check", r)


def test_unresolvable_name_says_so(ctx):
    # .invalid never resolves (RFC 6761), with or without a network.
    r = probe("--attempts", 1, "https://stbq-no-such-host.invalid/x")
    check(r.r.get("rc") == "EAGAIN" and r.r["error"] == "EHOSTUNREACH", "EHOSTUNREACH", r)
    w = [l for l in r.err.splitlines() if l.startswith("warning:")]
    check(len(w) == 1 and "cannot resolve stbq-no-such-host.invalid (" in w[0] and
          "Could not resolve host" in w[0], "a warning naming the host and curl's reason", r)
    check(all(x in w[0] for x in ("host name", "DNS", "proxy")), "what to check", r)


def test_truncated_body_is_a_protocol_error(ctx):
    srv = ctx.http
    srv.script("/cut", {"body": "t" * 4000, "truncate": True})
    r = probe(srv.url("/cut"))
    check(r.r.get("error") == "EPROTO" and r.r["rc"] == "EAGAIN", "EPROTO", r)


def test_1xx_headers_do_not_leak_into_the_final_response(ctx):
    srv = ctx.http
    srv.script("/early", {"interim": [(103, {"Retry-After": "7", "Content-Type": "x/early"})],
                          "body": "final"})
    r = probe(srv.url("/early"))
    check(r.r.get("rc") == "OK" and r.r["status"] == 200, "200", r)
    check(r.r["retry_after_ms"] == -1 and r.r["content_type"] == "text/plain",
          "only the final block counts", r)


def test_redirects_are_not_followed(ctx):
    srv = ctx.http
    srv.script("/moved", {"status": 302, "headers": {"Location": srv.url("/ok2")}})
    srv.script("/ok2", {"body": "should not be fetched"})
    r = probe("--attempts", 3, srv.url("/moved"))
    check(r.r.get("status") == 302 and r.r["rc"] != "OK", "302 is not success", r)
    check(len(srv.requests("/ok2")) == 0 and len(srv.requests("/moved")) == 1, "not followed", r)


def test_untrusted_self_signed_certificate_is_refused(ctx):
    srv = ctx.https
    srv.script("/tls", {"body": "secure"})
    r = probe("--attempts", 3, srv.url("/tls"))
    check(r.r.get("rc") == "EACCES" and r.r["error"] == "EACCES", "EACCES", r)
    check(len(srv.requests("/tls")) == 0, "no request was sent", r)
    check(r.r["attempts"] == 1, "not retried", r)
    # What an operator reads: at warning level, what failed, for which host, curl's
    # reason and what to check (a bare "Permission denied" reads as a sandbox problem).
    w = [l for l in r.err.splitlines() if l.startswith("warning:")]
    check(len(w) == 1 and "TLS verification of 127.0.0.1 failed" in w[0], "warning says TLS", r)
    check("self-signed certificate" in w[0] and all(x in w[0] for x in
                                                     ("ca_file", "proxy", "clock")),
          "with curl's reason and what to check", r)


def test_same_certificate_via_ca_file_is_accepted(ctx):
    srv = ctx.https
    srv.script("/tls", {"body": "secure"})
    r = probe("--ca-file", ctx.cert.cert, srv.url("/tls"))
    check(r.r.get("rc") == "OK" and r.r["status"] == 200 and r.r["excerpt"] == "secure", "200", r)


def test_certificate_for_another_host_is_refused_even_when_trusted(ctx):
    srv = ctx.https_wrong
    srv.script("/tls", {"body": "secure"})
    r = probe("--ca-file", ctx.wrong.cert, srv.url("/tls"))
    check(r.r.get("rc") == "EACCES", "host name checked", r)
    check(len(srv.requests("/tls")) == 0, "no request was sent", r)


def test_extra_ca_file_keeps_the_system_store(ctx):
    # http_probe_capath is built with its "system" CA directory inside the build tree.
    variant = PROBE + "_capath"
    check(os.access(variant, os.X_OK), "%s is built" % variant)
    capath = os.path.join(BUILD, "tests", "unit", "capath.d")
    shutil.rmtree(capath, ignore_errors=True)
    os.makedirs(capath)
    try:
        shutil.copy(ctx.sysca.cert, capath)
        subprocess.run(["openssl", "rehash", capath], check=True, capture_output=True)
        srv = ctx.https_sys
        srv.script("/tls", {"body": "system"})
        r = probe_with(variant, "--ca-file", ctx.cert.cert, srv.url("/tls"))
        check(r.r.get("rc") == "OK" and r.r["excerpt"] == "system", "system store still used", r)
        r = probe_with(variant, "--ca-file", ctx.cert.cert, ctx.https.url("/tls"))
        check(r.r.get("rc") == "OK", "and the extra file too", r)
        # Control: without the certificate in the directory the same request fails.
        for name in os.listdir(capath):
            os.unlink(os.path.join(capath, name))
        r = probe_with(variant, "--ca-file", ctx.cert.cert, srv.url("/tls"))
        check(r.r.get("rc") == "EACCES", "the directory is what made it pass", r)
    finally:
        shutil.rmtree(capath, ignore_errors=True)


def test_plain_http_to_a_remote_host_is_refused_at_once(ctx):
    r = probe("--attempts", 3, "http://192.0.2.1/x")
    check(r.r.get("rc") == "EPERM" and r.r["error"] == "EPERM" and r.r["status"] == 0, "EPERM", r)
    check(r.r["elapsed_ms"] < 100, "refused before any connection", r)


def wait_for(cond, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def run_and_term(args, ready, ctx):
    p = subprocess.Popen([PROBE] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        check(wait_for(ready, 5), "the request never started")
        time.sleep(0.5)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=5)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return Run(p, out, err, took)


def test_sigterm_during_a_slow_transfer_cancels_it(ctx):
    srv = ctx.http
    srv.script("/drip", {"drip": (0.3, 200)})
    r = run_and_term(["--timeout", 30, srv.url("/drip")], lambda: srv.requests("/drip"), ctx)
    check(r.r.get("rc") == "ECANCELED" and r.r["error"] == "ECANCELED", "ECANCELED", r)
    check(r.took < 2.0, "stopped within 2 s", r)


def test_sigterm_during_a_stalled_response_cancels_it(ctx):
    srv = ctx.http
    srv.script("/silent", {"delay": 8})
    r = run_and_term(["--timeout", 30, srv.url("/silent")], lambda: srv.requests("/silent"), ctx)
    check(r.r.get("rc") == "ECANCELED", "ECANCELED", r)
    check(r.took < 2.0, "stopped within 2 s", r)


def test_sigterm_during_backoff_cancels_the_wait(ctx):
    srv = ctx.http
    srv.script("/wait", {"status": 503, "headers": {"Retry-After": "20"}})
    r = run_and_term(["--attempts", 3, srv.url("/wait")], lambda: srv.requests("/wait"), ctx)
    check(r.r.get("rc") == "ECANCELED" and r.r["status"] == 503, "ECANCELED, last response kept", r)
    check(r.took < 1.5, "the wait ended promptly", r)
    check(len(srv.requests("/wait")) == 1, "no further attempt")


def test_bearer_never_appears_in_output_even_when_echoed(ctx):
    srv = ctx.http
    path = os.path.join(ctx.tmp, "bearer")
    with open(path, "w") as f:
        f.write(BEARER + "\n")
    srv.script("/echo", {"status": 503, "headers": {"Retry-After": "0"},
                         "body": "bad credentials:", "echo_auth": True})
    r = probe("--bearer-file", path, "--attempts", 2, srv.url("/echo"))
    seen = srv.requests("/echo")
    check(len(seen) == 2, "two attempts", r)
    check(seen[0].headers.get("Authorization") == "Bearer " + BEARER, "bearer sent (trimmed)")
    check(r.r.get("rc") == "EAGAIN", "EAGAIN", r)
    check("bad credentials" in r.r["excerpt"] and "bad credentials" in r.err,
          "the error body is shown", r)
    for part in (BEARER, BEARER[:12], BEARER[-12:]):
        check(part not in r.out and part not in r.err, "bearer leaked: %r" % part, r)
    # A token-shaped bearer is hidden too, also on a fatal answer.
    srv.script("/echo400", {"status": 400, "body": "bad:", "echo_auth": True})
    with open(path, "w") as f:
        f.write("ya29.a0AfH6SMBtokenvalue1234567890\n")
    r = probe("--bearer-file", path, srv.url("/echo400"))
    check("a0AfH6SMBtokenvalue" not in r.out + r.err and r.r.get("rc") == "EINVAL",
          "token leaked", r)


CASES = [
    test_200_with_body_and_project_headers,
    test_gzip_body_is_decoded,
    test_connection_is_reused_between_requests,
    test_large_post_sends_no_expect_header,
    test_total_timeout_when_the_server_stalls,
    test_declared_oversize_body_is_refused_at_the_headers,
    test_chunked_oversize_body_is_cut_off,
    test_429_retry_after_is_honoured,
    test_503_is_retried_until_attempts_run_out,
    test_backoff_without_retry_after_waits_one_to_two_seconds,
    test_budget_stops_before_a_wait_that_would_pass_it,
    test_client_errors_are_not_retried,
    test_403_rate_limit_reason_is_retried,
    test_connection_refused_is_retried,
    test_unresolvable_name_says_so,
    test_truncated_body_is_a_protocol_error,
    test_1xx_headers_do_not_leak_into_the_final_response,
    test_redirects_are_not_followed,
    test_untrusted_self_signed_certificate_is_refused,
    test_same_certificate_via_ca_file_is_accepted,
    test_certificate_for_another_host_is_refused_even_when_trusted,
    test_extra_ca_file_keeps_the_system_store,
    test_plain_http_to_a_remote_host_is_refused_at_once,
    test_sigterm_during_a_slow_transfer_cancels_it,
    test_sigterm_during_a_stalled_response_cancels_it,
    test_sigterm_during_backoff_cancels_the_wait,
    test_bearer_never_appears_in_output_even_when_echoed,
]


class Ctx:
    pass


def main():
    if not os.access(PROBE, os.X_OK):
        print("not ok 1 - http_probe is built (%s)" % PROBE)
        print("1..1")
        return 1
    ctx = Ctx()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="stbq-http-") as tmp:
        ctx.tmp = tmp
        ctx.cert = httpd.Cert(tmp, "loopback")
        ctx.wrong = httpd.Cert(tmp, "elsewhere", san="DNS:elsewhere.invalid")
        ctx.sysca = httpd.Cert(tmp, "systemca")
        ctx.http = httpd.Server().start()
        ctx.https = httpd.Server(tls=ctx.cert).start()
        ctx.https_wrong = httpd.Server(tls=ctx.wrong).start()
        ctx.https_sys = httpd.Server(tls=ctx.sysca).start()
        try:
            for n, case in enumerate(CASES, 1):
                t0 = time.monotonic()
                try:
                    case(ctx)
                    print("ok %d - %s # %.1f s" % (n, case.__name__, time.monotonic() - t0))
                except Exception as e:  # noqa: BLE001 - every failure is reported, then on
                    failed += 1
                    print("not ok %d - %s" % (n, case.__name__))
                    detail = str(e) if isinstance(e, Fail) else traceback.format_exc()
                    for line in detail.splitlines():
                        print("# " + line)
                sys.stdout.flush()
        finally:
            for s in (ctx.http, ctx.https, ctx.https_wrong, ctx.https_sys):
                s.stop()
    print("1..%d" % len(CASES))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""fakecore - the shared base of the local fake servers (google-fake, seetickets-fake).

Stdlib only; runs with Debian's /usr/bin/python3 (3.11).

API contract (version FAKECORE_API_VERSION at the end of this file)
-------------------------------------------------------------------

FakeServer(port=0, quiet=False)
    A http.server.ThreadingHTTPServer on 127.0.0.1 speaking HTTP/1.1 with keep-alive, one daemon
    thread per connection.
    .port                        the bound port
    .lock                        server-wide RLock; every handler runs while holding it, so fake
                                 state needs no further locking
    .add_route(method, regex, handler, name=None)
                                 handler(req: Request, match: re.Match) -> Response.  regex is
                                 matched (re.fullmatch) against the raw, still percent-encoded
                                 path without the query string; handlers unquote groups
                                 themselves.  name (default handler.__name__) keys /_fake/stats.
                                 Routes under /_fake/ are control routes: never faulted, never
                                 logged, never counted; a fake's control routes are tried before
                                 the built-in ones.
    .on_reset                    callable() run by POST /_fake/reset (default: nothing)
    .make_error(status, message, reason=None) -> Response
                                 overridable hook that shapes the errors fakecore itself produces
                                 (unmatched route 404, BadRequest 400, handler crash 500, a status
                                 fault without a body); the default is
                                 {"error": {"code": N, "message": "...", "status": "..."}}
    .serve_forever() / .start() (background thread) / .shutdown()

Request:  .method .path (raw path, no query) .query (dict of lists, blanks kept) .headers
          (case-insensitive, .get(name)) .body (bytes) .json() (raises BadRequest on invalid
          JSON) .fault (the fault action dict applied to this request, or None) .server
Response(status=200, body=obj_or_bytes_or_str, headers=None, content_type=None)
          dict/list bodies are JSON-encoded as application/json; charset=UTF-8, str bodies are
          sent as UTF-8 (text/plain unless content_type says otherwise), bytes as is.
BadRequest(message, response=None)
          raise from a handler: answered with `response`, or make_error(400, message).

main(argv, build, add_args=None, description=None)
    Common CLI: --port N (0 = any free port), --port-file PATH (the bound port is written there
    atomically once listening), --quiet.  add_args(parser) adds a fake's own options;
    build(server, args) registers its routes.  SIGTERM/SIGINT shut it down cleanly, exit 0.

Control endpoints present in every fake:
    GET    /_fake/health            {"ok": true}
    POST   /_fake/faults            {"method": "POST"?, "path": "<regex searched in the path>"?,
                                     "skip": 0, "times": 1 (0 = forever), "action": {...}}
                                     -> {"id": N}.  Matching requests, after `skip` of them, get
                                     the action `times` times; the first active matching fault
                                     (lowest id) wins.  Actions:
        {"status": 503, "body": obj|str, "headers": {"Retry-After": "2"}}  answer this instead
        {"delay_ms": 3000}   wait (outside the lock), then go on (combinable with other keys)
        {"drop": true}       close the connection without any answer
        {"truncate": true}   answer normally but send only the first half of the body (full
                             Content-Length) and close
        {"malformed": true}  answer 200 with a body that is not valid JSON
        {"lost_ack": true}   process normally (state changes happen), then close without answer
        other keys           fake-specific, seen by the handler as req.fault
    GET    /_fake/faults            {"faults": [...]} with "hits" per fault
    DELETE /_fake/faults            clear all faults
    GET    /_fake/requests          {"requests": [{"method","path","query","headers","body",
                                     "status"}]}: every non-control request in order (body as
                                     UTF-8 text or "<binary N bytes>"); status is null for a
                                     dropped request, "fault" names an applied action
    DELETE /_fake/requests          clear the log
    GET    /_fake/stats             {"calls": {route name: count}, "total": N}
    POST   /_fake/reset             clear faults, request log and stats, then call server.on_reset
"""

import argparse
import http.server
import json
import os
import re
import signal
import sys
import threading
import time
import traceback
import urllib.parse

_REASONS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(code):
    """google.rpc.Code name commonly paired with an HTTP status."""
    return _REASONS.get(code, "UNKNOWN")


class BadRequest(Exception):
    def __init__(self, message, response=None):
        super().__init__(message)
        self.message = message
        self.response = response


class Response:
    def __init__(self, status=200, body=None, headers=None, content_type=None):
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.content_type = content_type

    def encode(self):
        """Return (bytes, content_type)."""
        body = self.body
        if body is None:
            return b"", self.content_type
        if isinstance(body, (dict, list)):
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
            return data, self.content_type or "application/json; charset=UTF-8"
        if isinstance(body, str):
            return body.encode("utf-8"), self.content_type or "text/plain; charset=UTF-8"
        return bytes(body), self.content_type or "application/octet-stream"


class Request:
    def __init__(self, server, method, target, headers, body):
        self.server = server
        self.method = method
        parts = urllib.parse.urlsplit(target)
        self.path = parts.path
        self.query_string = parts.query
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self.headers = headers
        self.body = body
        self.fault = None

    def arg(self, name, default=None):
        """First value of a query parameter."""
        v = self.query.get(name)
        return v[0] if v else default

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise BadRequest("Invalid JSON payload received. %s" % e) from None

    def body_text(self):
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError:
            return "<binary %d bytes>" % len(self.body)


class _Route:
    def __init__(self, method, regex, handler, name):
        self.method = method.upper()
        self.regex = re.compile(regex)
        self.handler = handler
        self.name = name or getattr(handler, "__name__", "route")


class _Fault:
    def __init__(self, fid, spec):
        self.id = fid
        self.method = spec.get("method")
        self.path = spec.get("path")
        self.path_re = re.compile(self.path) if self.path else None
        self.skip = int(spec.get("skip", 0))
        self.times = int(spec.get("times", 1))
        self.action = spec.get("action") or {}
        if not isinstance(self.action, dict):
            raise ValueError("action must be an object")
        self.remaining = self.times
        self.hits = 0

    def matches(self, method, path):
        if self.method and self.method.upper() != method:
            return False
        if self.path_re and not self.path_re.search(path):
            return False
        return True

    def describe(self):
        return {
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "skip": self.skip,
            "times": self.times,
            "action": self.action,
            "hits": self.hits,
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without TCP_NODELAY, Nagle waits
    # for the client's delayed ACK and every answer costs 40 ms.
    disable_nagle_algorithm = True
    server_version = "fakecore/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        if not self.server.fake.quiet:
            sys.stderr.write("%s %s\n" % (self.server.fake.name, fmt % args))

    def log_request(self, code="-", size="-"):
        # Only the path: query strings and bodies may carry secrets.
        if not self.server.fake.quiet:
            path = urllib.parse.urlsplit(self.path).path
            sys.stderr.write("%s %s %s %s\n" % (self.server.fake.name, self.command, path, code))

    def _read_body(self):
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("EOF in chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers
                        t = self.rfile.readline(65537)
                        if t in (b"\r\n", b"\n", b""):
                            break
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(3)
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _dispatch(self):
        fake = self.server.fake
        try:
            body = self._read_body()
        except (ValueError, ConnectionError):
            self.close_connection = True
            return
        req = Request(fake, self.command, self.path, self.headers, body)
        fake._handle(self, req)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    def send_fake_response(self, resp, truncate=False):
        data, ctype = resp.encode()
        self.send_response(resp.status)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in resp.headers.items():
            if k.lower() not in ("content-length", "connection"):
                self.send_header(k, str(v))
        self.send_header("Content-Length", str(len(data)))
        if truncate:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data[: len(data) // 2] if truncate else data)
        self.wfile.flush()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # clients hanging up mid-answer are routine under fault injection
        super().handle_error(request, client_address)


class FakeServer:
    def __init__(self, port=0, quiet=False, name="fake"):
        self.quiet = quiet
        self.name = name
        self.lock = threading.RLock()
        self.on_reset = None
        self._routes = []
        self._core_routes = []
        self._faults = []
        self._next_fault_id = 1
        self._log = []
        self._stats = {}
        self._thread = None
        self.httpd = _HTTPServer(("127.0.0.1", port), _Handler)
        self.httpd.fake = self
        self.port = self.httpd.server_address[1]
        self._add_core_routes()

    # -- public API ------------------------------------------------------------------------

    def add_route(self, method, regex, handler, name=None):
        self._routes.append(_Route(method, regex, handler, name))

    def make_error(self, status, message, reason=None):
        return Response(
            status, {"error": {"code": status, "message": message, "status": status_name(status)}}
        )

    def serve_forever(self):
        self.httpd.serve_forever(poll_interval=0.1)

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def shutdown(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_fault(self, spec):
        with self.lock:
            f = _Fault(self._next_fault_id, spec)
            self._next_fault_id += 1
            self._faults.append(f)
            return f.id

    def clear_faults(self):
        with self.lock:
            self._faults = []

    def reset(self):
        with self.lock:
            self._faults = []
            self._log = []
            self._stats = {}
            if self.on_reset:
                self.on_reset()

    # -- internals -------------------------------------------------------------------------

    def _add_core_routes(self):
        def core(method, regex, fn):
            self._core_routes.append(_Route(method, regex, fn, fn.__name__))

        def health(req, m):
            return Response(200, {"ok": True})

        def faults_add(req, m):
            spec = req.json()
            if not isinstance(spec, dict):
                raise BadRequest("fault must be an object")
            try:
                return Response(200, {"id": self.add_fault(spec)})
            except (ValueError, TypeError, re.error) as e:
                raise BadRequest("bad fault: %s" % e) from None

        def faults_list(req, m):
            return Response(200, {"faults": [f.describe() for f in self._faults]})

        def faults_clear(req, m):
            self._faults = []
            return Response(200, {"ok": True})

        def requests_list(req, m):
            return Response(200, {"requests": self._log})

        def requests_clear(req, m):
            self._log = []
            return Response(200, {"ok": True})

        def stats(req, m):
            return Response(200, {"calls": dict(self._stats), "total": sum(self._stats.values())})

        def reset(req, m):
            self.reset()
            return Response(200, {"ok": True})

        core("GET", r"/_fake/health", health)
        core("POST", r"/_fake/faults", faults_add)
        core("GET", r"/_fake/faults", faults_list)
        core("DELETE", r"/_fake/faults", faults_clear)
        core("GET", r"/_fake/requests", requests_list)
        core("DELETE", r"/_fake/requests", requests_clear)
        core("GET", r"/_fake/stats", stats)
        core("POST", r"/_fake/reset", reset)

    def _find(self, routes, method, path):
        for r in routes:
            if r.method != method and not (method == "HEAD" and r.method == "GET"):
                continue
            m = r.regex.fullmatch(path)
            if m:
                return r, m
        return None, None

    def _call(self, route, match, req):
        try:
            resp = route.handler(req, match)
            if not isinstance(resp, Response):
                raise TypeError("handler %s returned %r" % (route.name, type(resp)))
            return resp
        except BadRequest as e:
            return e.response or self.make_error(400, e.message, "invalid")
        except Exception:
            traceback.print_exc()
            return self.make_error(500, "internal error in fake", "internalError")

    def _pick_fault(self, method, path):
        for f in self._faults:
            if f.times and f.remaining <= 0:
                continue
            if not f.matches(method, path):
                continue
            if f.skip > 0:
                f.skip -= 1
                continue
            if f.times:
                f.remaining -= 1
            f.hits += 1
            return f.action
        return None

    def _handle(self, h, req):
        if req.path.startswith("/_fake/"):
            with self.lock:
                route, m = self._find(self._routes, req.method, req.path)
                if not route:
                    route, m = self._find(self._core_routes, req.method, req.path)
                if route:
                    resp = self._call(route, m, req)
                else:
                    resp = self.make_error(
                        404, "no control endpoint %s %s" % (req.method, req.path)
                    )
            h.send_fake_response(resp)
            return

        with self.lock:
            route, m = self._find(self._routes, req.method, req.path)
            name = route.name if route else "unmatched"
            self._stats[name] = self._stats.get(name, 0) + 1
            action = self._pick_fault(req.method, req.path)
            entry = {
                "method": req.method,
                "path": req.path,
                "query": req.query,
                "headers": {k: v for k, v in req.headers.items()},
                "body": req.body_text(),
                "status": None,
            }
            if action:
                entry["fault"] = action
            self._log.append(entry)

        action = action or {}
        if action.get("delay_ms"):
            time.sleep(float(action["delay_ms"]) / 1000.0)

        if action.get("drop"):
            h.close_connection = True
            return
        if action.get("malformed"):
            resp = Response(
                200, '{"kind": "fake#malformed", "rows": [{"f": [', content_type="application/json"
            )
            with self.lock:
                entry["status"] = 200
            h.send_fake_response(resp)
            return
        if "status" in action:
            st = int(action["status"])
            body = action.get("body")
            resp = (
                Response(st, body, action.get("headers"))
                if body is not None
                else self.make_error(st, "fault injected (HTTP %d)" % st, "backendError")
            )
            if body is None and action.get("headers"):
                resp.headers.update(action["headers"])
            with self.lock:
                entry["status"] = st
            h.send_fake_response(resp)
            return

        with self.lock:
            req.fault = action or None
            if route:
                resp = self._call(route, m, req)
            else:
                resp = self.make_error(404, "Not found: %s %s" % (req.method, req.path), "notFound")
            entry["status"] = resp.status

        if action.get("lost_ack"):
            h.close_connection = True
            return
        h.send_fake_response(resp, truncate=bool(action.get("truncate")))


def _write_port_file(path, port):
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def main(argv, build, add_args=None, description=None, name=None):
    prog = name or os.path.basename(sys.argv[0] or "fake")
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    p.add_argument(
        "--port-file", metavar="PATH", help="write the bound port here (atomically) once listening"
    )
    p.add_argument("--quiet", action="store_true", help="no access log on stderr")
    if add_args:
        add_args(p)
    args = p.parse_args(argv)

    server = FakeServer(args.port, quiet=args.quiet, name=prog)
    build(server, args)

    def stop(signum, frame):
        # shutdown() blocks until serve_forever returns, so it cannot run on that thread.
        threading.Thread(target=server.httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        _write_port_file(args.port_file, server.port)
    if not args.quiet:
        sys.stderr.write("%s listening on 127.0.0.1:%d\n" % (prog, server.port))
        sys.stderr.flush()
    server.serve_forever()
    server.httpd.server_close()
    return 0


FAKECORE_API_VERSION = 1

"""httpd - a small scripted HTTP(S) server on 127.0.0.1 for testing the HTTP layer.

Stdlib only (Debian /usr/bin/python3); the TLS certificate is made with the openssl CLI.

    srv = Server(tls=None | Cert)       # binds 127.0.0.1 on a free port
    srv.start(); ...; srv.stop()
    srv.script("/path", action, action, ...)   # one action per request, the last repeats
    srv.url("/path")                    # "http(s)://127.0.0.1:PORT/path"
    srv.requests("/path")               # what arrived: list of Seen

An action is a dict; every key is optional:
    status        int (200)
    headers       {name: value}
    body          bytes | str | dict/list (JSON)
    delay         seconds to stall before answering
    gzip          True: Content-Encoding gzip
    chunked       int: send the body with chunked encoding, pieces of this size
    declare       int: announce this Content-Length, then stall instead of sending the body
    truncate      True: announce the full length, send half the body, close
    drip          (interval_s, count): announce count bytes, send one per interval
    interim       list of (status, {headers}) 1xx responses sent before the final one
    echo_auth     True: append the request's Authorization header to the body
"""

import gzip as gziplib
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time


class Seen:
    def __init__(self, method, path, headers, body, client_port, t):
        self.method = method
        self.path = path
        self.headers = headers  # email.message.Message: case-insensitive .get()
        self.body = body
        self.client_port = client_port
        self.time = t


class Cert:
    """A self-signed certificate (its own CA) for the given subjectAltName."""

    def __init__(self, directory, name, san="IP:127.0.0.1,DNS:localhost"):
        self.cert = os.path.join(directory, name + ".crt")
        self.key = os.path.join(directory, name + ".key")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.key, "-out", self.cert,
             "-days", "2", "-subj", "/CN=stbq-test-" + name, "-addext",
             "subjectAltName=" + san],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def free_port():
    """A loopback port nothing listens on (bound and released)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        if self.server.tls:
            # Handshake here, not in the accept loop, so one failing client
            # cannot stall the server.
            try:
                self.request.settimeout(5)
                self.request.do_handshake()
                self.request.settimeout(None)
            except (ssl.SSLError, OSError):
                self.server.handshake_failures += 1
                raise
        super().setup()

    def handle(self):
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, OSError):
            pass

    def _serve(self):
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        srv = self.server.owner
        with srv.lock:
            srv.seen.setdefault(path, []).append(
                Seen(self.command, self.path, self.headers, body, self.client_address[1],
                     time.monotonic()))
            script = srv.scripts.get(path)
            n = len(srv.seen[path]) - 1
            action = dict(script[min(n, len(script) - 1)]) if script else {"status": 404}
        self._answer(action)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _wait(self, seconds):
        return not self.server.owner.stopping.wait(seconds)

    def _answer(self, a):
        if a.get("delay") and not self._wait(a["delay"]):
            return
        for st, hdrs in a.get("interim", []):
            self.wfile.write(("HTTP/1.1 %d Interim\r\n" % st).encode())
            for k, v in hdrs.items():
                self.wfile.write(("%s: %s\r\n" % (k, v)).encode())
            self.wfile.write(b"\r\n")
        body = a.get("body", b"")
        ctype = "text/plain"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            ctype = "application/json"
        elif isinstance(body, str):
            body = body.encode()
        if a.get("echo_auth"):
            body += (" " + (self.headers.get("Authorization") or "")).encode()
        self.send_response(a.get("status", 200))
        headers = {"Content-Type": ctype}
        headers.update(a.get("headers", {}))
        if a.get("gzip"):
            body = gziplib.compress(body)
            headers["Content-Encoding"] = "gzip"
        for k, v in headers.items():
            self.send_header(k, v)

        if "declare" in a:
            self.send_header("Content-Length", str(a["declare"]))
            self.end_headers()
            self.wfile.flush()
            self._wait(10)
            self.close_connection = True
        elif a.get("truncate"):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif "drip" in a:
            interval, count = a["drip"]
            self.send_header("Content-Length", str(count))
            self.end_headers()
            self.wfile.flush()
            for _ in range(count):
                self.wfile.write(b"x")
                self.wfile.flush()
                if not self._wait(interval):
                    break
            self.close_connection = True
        elif a.get("chunked"):
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = a["chunked"]
            for i in range(0, len(body), step):
                piece = body[i: i + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        self.wfile.flush()


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # failed handshakes and dropped clients are what the tests provoke


class Server:
    def __init__(self, tls=None):
        self.lock = threading.Lock()
        self.scripts = {}
        self.seen = {}
        self.stopping = threading.Event()
        self.httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.httpd.tls = tls is not None
        self.httpd.handshake_failures = 0
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert, tls.key)
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                                do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.scheme = "https" if tls else "http"
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def handshake_failures(self):
        return self.httpd.handshake_failures

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % (self.scheme, self.port, path)

    def script(self, path, *actions):
        with self.lock:
            self.scripts[path] = list(actions)
            self.seen.pop(path, None)

    def requests(self, path):
        with self.lock:
            return list(self.seen.get(path, []))

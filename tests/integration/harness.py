"""Shared machinery for the integration tests: start the fakes and the real
daemon binary, talk to them only through their public interfaces, and compare
what landed in the fake BigQuery with the fake See Tickets' ground truth.

Everything started here binds loopback ports chosen by the kernel (port 0 and
a port file) and is stopped by PID.
"""
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

TOP_SRCDIR = os.environ.get("TOP_SRCDIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
TOP_BUILDDIR = os.environ.get("TOP_BUILDDIR", TOP_SRCDIR)
STBQ_BIN = os.environ.get("STBQ_BIN", os.path.join(TOP_BUILDDIR, "src", "seetickets-bq"))
FAKES = os.path.join(TOP_SRCDIR, "tests", "fakes")
PYTHON = "/usr/bin/python3"
PROJECT = "test-project"
DATASET = "seetickets_data"
API_KEY = "st-test-key-3f9a1c7e5b"


# ---------------------------------------------------------------- TAP

class Tap:
    """One 'ok'/'not ok' line per test function, the plan at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def run(self, fn, *args):
        self.n += 1
        try:
            fn(*args)
            print(f"ok {self.n} - {fn.__name__}", flush=True)
        except SkipTest as e:
            print(f"ok {self.n} - {fn.__name__} # SKIP {e}", flush=True)
        except Exception:  # noqa: BLE001 - every failure is reported, none stops the run
            self.failed += 1
            for line in traceback.format_exc().splitlines():
                print(f"# {line}")
            print(f"not ok {self.n} - {fn.__name__}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)


class SkipTest(Exception):
    pass


def wait_for(pred, timeout=10.0, what="condition", step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


# ---------------------------------------------------------------- fakes

class Fake:
    """A fake server started with --port 0 --port-file, stopped by PID."""

    script = None

    def __init__(self, workdir, *args):
        self.workdir = workdir
        pf = os.path.join(workdir, f"{self.script}.port")
        self.log = open(os.path.join(workdir, f"{self.script}.log"), "wb")
        self.proc = subprocess.Popen([PYTHON, os.path.join(FAKES, self.script), "--port", "0",
                                      "--port-file", pf, "--quiet", *args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(pf) or self.proc.poll() is not None, 15, f"{self.script} to listen")
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.script} exited with {self.proc.returncode}")
        with open(pf) as f:
            self.port = int(f.read().strip())
        self.url = f"http://127.0.0.1:{self.port}"

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None):
        return self.call("POST", path, {} if body is None else body)

    def fault(self, action, path=None, method=None, times=1, skip=0):
        spec = {"action": action, "times": times, "skip": skip}
        if path:
            spec["path"] = path
        if method:
            spec["method"] = method
        return self.post("/_fake/faults", spec)

    def clear_faults(self):
        self.call("DELETE", "/_fake/faults")

    def requests(self):
        return self.get("/_fake/requests")["requests"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class GoogleFake(Fake):
    """google-fake with the dataset `project`:DATASET (location EU) and one service account,
    whose key file is sa_file; create_table(), rows() and add_rows() work in that dataset."""

    script = "google-fake"

    def __init__(self, workdir, *args, project=PROJECT):
        super().__init__(workdir, "--dataset", f"{project}:{DATASET}:EU", *args)
        self.project = project
        key = self.post("/_fake/service_accounts")
        self.sa_file = os.path.join(workdir, "sa.json")
        with open(self.sa_file, "w") as f:
            json.dump(key, f)
        os.chmod(self.sa_file, 0o600)  # the daemon refuses a key file open to all

    def reset(self):
        """Datasets, tables, jobs, secrets and settings back to how they were at start, no
        faults, an empty request log; credentials and the tokens issued stay valid."""
        self.post("/_fake/reset")

    def rows(self, table):
        """The table's stored rows; a table that does not exist holds none."""
        try:
            return self.get(f"/_fake/tables/{self.project}/{DATASET}/{table}/rows")["rows"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise

    def create_table(self, feed, table=None, retype=None):
        """The feed's table as the daemon would make it; `retype` {column: type} makes
        some columns another type (an older table's TIMESTAMP `starts`, say)."""
        types = {"S": "STRING", "F": "FLOAT", "I": "INTEGER", "B": "BOOLEAN"}
        cols = SALES_COLUMNS if feed == "sales" else EVENTS_COLUMNS
        fields = [{"name": c[0], "type": (retype or {}).get(c[0], types[c[1]]),
                   "mode": "NULLABLE"} for c in cols]
        self.post("/_fake/tables", {"project": self.project, "dataset": DATASET,
                                    "table": table or feed, "schema": {"fields": fields}})

    def add_rows(self, table, rows):
        return self.post(f"/_fake/tables/{self.project}/{DATASET}/{table}/rows", {"rows": rows})


class SeeTicketsFake(Fake):
    script = "seetickets-fake"

    def __init__(self, workdir, *args):
        super().__init__(workdir, "--api-key", API_KEY, *args)

    def truth(self, feed):
        return self.get(f"/_fake/truth/{feed}")["data"]

    def grow(self, sales=0, events=0):
        return self.post("/_fake/grow", {"sales": sales, "events": events})


# ---------------------------------------------------------------- config

def write_config(workdir, google, st, **over):
    """A complete configuration pointing at the fakes; `over` replaces
    entries as 'group.key' = raw libconfig value text."""
    key_file = os.path.join(workdir, "api-key")
    with open(key_file, "w") as f:
        f.write(API_KEY + "\n")
    os.chmod(key_file, 0o600)
    state = os.path.join(workdir, "state")
    values = {
        "log_level": '"info"',
        "state_dir": json.dumps(state),
        "metrics_file": json.dumps(os.path.join(workdir, "metrics.prom")),
        "seetickets.base_url": json.dumps(f"{st.url}/v1" if st else "http://127.0.0.1:9/v1"),
        "seetickets.api_key_file": json.dumps(key_file),
        "seetickets.page_size": "50",
        "seetickets.timeout": "10",
        "google.credentials": json.dumps(google.sa_file if google else "metadata"),
        "google.bigquery_endpoint": json.dumps(google.url if google else "http://127.0.0.1:9"),
        "google.secretmanager_endpoint": json.dumps(google.url if google else "http://127.0.0.1:9"),
        "google.metadata_host": json.dumps(f"127.0.0.1:{google.port}" if google else "127.0.0.1:9"),
        "bigquery.project": json.dumps(PROJECT),
        "bigquery.dataset": json.dumps(DATASET),
        "bigquery.location": '"EU"',
        "bigquery.insert_method": '"streaming"',
        "bigquery.batch_rows": "500",
        "sales.interval": "2",
        "sales.event_lookback_days": "3650",
        "events.interval": "2",
    }
    for k, v in over.items():
        if v is None:
            values.pop(k.replace("__", "."), None)
        else:
            values[k.replace("__", ".")] = v
    groups = {}
    top = []
    for k, v in values.items():
        if "." in k:
            g, key = k.split(".", 1)
            groups.setdefault(g, []).append(f"  {key} = {v};")
        else:
            top.append(f"{k} = {v};")
    text = "\n".join(top) + "\n"
    for g, lines in groups.items():
        text += f"{g} = {{\n" + "\n".join(lines) + "\n};\n"
    path = os.path.join(workdir, "seetickets-bq.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


# ---------------------------------------------------------------- daemon

class Daemon:
    """The real binary, with a NOTIFY_SOCKET we read like systemd does."""

    def __init__(self, workdir, config, *args, notify=True, env=None, preexec=None):
        self.workdir = workdir
        self.messages = []
        self.sock = None
        e = dict(os.environ)
        e.pop("JOURNAL_STREAM", None)
        e.pop("NOTIFY_SOCKET", None)
        self.lock = threading.Lock()
        if notify:
            path = os.path.join(workdir, f"notify-{time.monotonic_ns()}.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(path)
            self.sock.settimeout(0.1)
            e["NOTIFY_SOCKET"] = path
            # Like systemd, read the socket all the time: the daemon's
            # sd_notify() blocks once a datagram queue is full.
            self.reader = threading.Thread(target=self._read_forever, daemon=True)
        if env:
            e.update(env)
        self.stderr_path = os.path.join(workdir, f"daemon-{time.monotonic_ns()}.err")
        self.stdout_path = self.stderr_path[:-4] + ".out"
        self.err = open(self.stderr_path, "wb")
        self.out = open(self.stdout_path, "wb")
        self.proc = subprocess.Popen([STBQ_BIN, "-c", config, *args], stdout=self.out,
                                     stderr=self.err, env=e, preexec_fn=preexec)
        if self.sock:
            self.reader.start()

    def _read_forever(self):
        while True:
            sock = self.sock
            if sock is None:
                return
            try:
                data = sock.recv(4096)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            with self.lock:
                self.messages.extend(data.decode().split("\n"))

    def _drain(self):
        """Messages are collected by the reader thread; give it a moment."""
        time.sleep(0.01)

    def wait_notify(self, prefix, timeout=30):
        def seen():
            if self.notified(prefix):
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}) before {prefix}: {self.stderr()[-2000:]}")
            return False
        return wait_for(seen, timeout, prefix)

    def notified(self, prefix):
        self._drain()
        with self.lock:
            return [m for m in self.messages if m.startswith(prefix)]

    def stderr(self):
        self.err.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stdout(self):
        self.out.flush()
        with open(self.stdout_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        finally:
            self._drain()

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("daemon did not stop within %ss of SIGTERM" % timeout)
        self._drain()
        self.err.close()
        self.out.close()
        if self.sock:
            sock, self.sock = self.sock, None
            sock.close()
        return self.proc.returncode

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.err.close()
        self.out.close()
        if self.sock:
            sock, self.sock = self.sock, None
            sock.close()


def run_once(workdir, config, *args, timeout=180, env=None, preexec=None):
    """Run the binary to completion; returns (status, stdout, stderr)."""
    d = Daemon(workdir, config, *args, notify=False, env=env, preexec=preexec)
    try:
        rc = d.wait(timeout)
    except subprocess.TimeoutExpired:
        d.kill9()
        raise AssertionError(f"{args} did not finish in {timeout}s: {d.stderr()[-2000:]}")
    out, err = d.stdout(), d.stderr()
    d.err.close()
    d.out.close()
    return rc, out, err


class Workdir:
    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix=f"stbq-{name}-")
        self.things = []

    def __enter__(self):
        return self

    def add(self, thing):
        self.things.append(thing)
        return thing

    def __exit__(self, *exc):
        for t in reversed(self.things):
            try:
                t.stop()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        if exc[0] is None:
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            print(f"# kept {self.path} for inspection")
        return False


# ---------------------------------------------------------------- probes

# The suites that drive a library module through a command-line probe from tests/unit
# (bq_probe, gauth_probe) rather than the daemon: one process per step, one JSON object per
# line on stdout, logs on stderr.

def check(cond, what, run=None):
    """assert, with the probe run (see ProbeRun) that failed it in the message."""
    if not cond:
        raise AssertionError(what + ("" if run is None else "\n" + repr(run)))


def header(req, name):
    """A header of a request the fake logged, found by its name in any case; None if absent."""
    for k, v in (req.get("headers") or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def need_probe(name):
    """The path of tests/unit/NAME; without it the suite is one failed test and exits."""
    path = os.path.join(TOP_BUILDDIR, "tests", "unit", name)
    if not os.access(path, os.X_OK):
        print(f"not ok 1 - {name} not built at {path}")
        print("1..1")
        sys.exit(1)
    return path


class ProbeRun:
    """A finished probe: exit status, stdout, stderr and stdout's JSON lines.

    Every run's stdout and stderr is kept in ProbeRun.outputs, for a suite to search for
    leaked secrets at the end. Under --enable-sanitizers a report on stderr fails the case
    that caused it, whatever the exit status."""

    outputs = []
    sanitizer_markers = ("Sanitizer", "runtime error:")

    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err
        self.lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        ProbeRun.outputs.append(out + err)
        for marker in self.sanitizer_markers:
            check(marker not in err, "sanitizer report: " + marker, self)

    @classmethod
    def of(cls, argv, env=None, timeout=60):
        """Run argv to completion."""
        p = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                           timeout=timeout, env=env)
        return cls(p.returncode, p.stdout, p.stderr)

    def __repr__(self):
        out = self.out.strip()
        if len(out) > 3000:
            out = out[:3000] + "..."
        return "rc=%s\nstdout=%s\nstderr=%s" % (self.rc, out, self.err.strip()[-3000:])


class ProbeSession:
    """A probe reading commands on stdin: one line in, one JSON line out, so that a case
    can change the fake between steps. close() gives the whole exchange as a `run` (a
    ProbeRun class)."""

    def __init__(self, argv, run=ProbeRun, env=None):
        self.run = run
        self.p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env)
        self.out = []

    def read(self):
        line = self.p.stdout.readline()
        self.out.append(line)
        return json.loads(line)

    def send(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return self.read()

    def close(self):
        self.p.stdin.close()
        rest = self.p.stdout.read()
        err = self.p.stderr.read()
        self.p.wait(timeout=30)
        return self.run(self.p.returncode, "".join(self.out) + rest, err)


def run_cases(tap, ctx, cases, look_back=()):
    """Each case is one TAP test, called with ctx against ctx.fake reset just before, except
    the cases named in look_back: those check the whole run. Every request the fake logged
    is gathered in ctx.all_requests for them."""
    for case in cases:
        if case.__name__ not in look_back:
            ctx.fake.reset()
        tap.run(case, ctx)
        try:
            ctx.all_requests.extend(ctx.fake.requests())
        except Exception:  # noqa: BLE001 - a fake that died fails the next case, not this one
            pass


# ---------------------------------------------------------------- coercion (the contract)

SALES_COLUMNS = [
    ("affiliate", "S"), ("currency", "S"), ("date", "S"), ("deliveryMethod", "S"),
    ("deviceModel", "S"), ("deviceType", "S"), ("eventDate", "S"), ("eventId", "S"),
    ("eventName", "S"), ("faceValue", "F"), ("grossCost", "F"), ("grossFace", "F"),
    ("grossSales", "F"), ("isInternetOrder", "B"), ("isPending", "B"), ("country", "S", "location"),
    ("countryIso", "S", "location"), ("postCode", "S", "location"), ("region1", "S", "location"),
    ("region2", "S", "location"), ("region3", "S", "location"), ("region4", "S", "location"),
    ("offerCode", "S"), ("partnerSite", "S"), ("paymentMethod", "S"), ("priceId", "S"),
    ("priceName", "S"), ("salesChannel", "S"), ("sold", "I"), ("source", "S"), ("taxTotal", "F"),
    ("ticketPrice", "F"), ("uniqueCode", "S"),
]
EVENTS_COLUMNS = [
    ("doorsOpen", "S"), ("id", "S"), ("name", "S"), ("promoterName", "S"), ("starts", "S"),
    ("timeslotEnabled", "B"), ("tourId", "S"), ("tourName", "S"), ("venueName", "S"),
]
KEYS = {"sales": "uniqueCode", "events": "id"}


def _num_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return v


def coerce_value(v, t):
    """Python statement of the coercion rules of interface.md, used to check
    values; None means null, ValueError means the row is dead-lettered."""
    if v is None:
        return None
    if t == "S":
        if isinstance(v, (dict, list)):
            raise ValueError("not scalar")
        return _num_str(v)
    if isinstance(v, str) and v.strip() == "":
        return None
    if t == "F":
        if isinstance(v, bool):
            raise ValueError("bool")
        f = float(v)
        if math.isnan(f) or math.isinf(f):
            raise ValueError("nan")
        return f
    if t == "I":
        if isinstance(v, bool):
            raise ValueError("bool")
        f = float(v) if isinstance(v, str) else v
        if isinstance(f, float):
            if not f.is_integer():
                raise ValueError("fraction")
            f = int(f)
        return f
    if t == "B":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return v.lower() == "true"
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
        raise ValueError("bool")
    raise AssertionError(t)


def coerce_row(feed, api):
    cols = SALES_COLUMNS if feed == "sales" else EVENTS_COLUMNS
    out = {}
    loc = api.get("location")
    for c in cols:
        name, t = c[0], c[1]
        if len(c) == 3:
            src = loc.get(name) if isinstance(loc, dict) else None
        else:
            src = api.get(name)
        out[name] = coerce_value(src, t)
    return out


def expected_rows(st, feed):
    """Ground truth coerced: {key: row} for rows that must land; dead-letter set of keys."""
    good, bad = {}, set()
    for api in st.truth(feed):
        try:
            row = coerce_row(feed, api)
        except (ValueError, TypeError):
            k = api.get(KEYS[feed])
            bad.add(str(k) if k is not None else None)
            continue
        k = row[KEYS[feed]]
        if not k:
            bad.add(None)
            continue
        good.setdefault(k, row)
    return good, bad


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-9
    return a == b


def check_exactly_once(google, st, feed, table=None, values=True):
    """The fake BigQuery holds each good source row exactly once, with every
    value equal to the coerced source value. Returns the number of rows."""
    want, _ = expected_rows(st, feed)
    rows = google.rows(table or feed)
    key = KEYS[feed]
    keys = [r.get(key) for r in rows]
    dupes = sorted({k for k in keys if keys.count(k) > 1}) if len(keys) != len(set(keys)) else []
    assert not dupes, f"{feed}: {len(dupes)} keys landed twice, e.g. {dupes[:5]}"
    missing = set(want) - set(keys)
    extra = set(keys) - set(want)
    assert not missing, f"{feed}: {len(missing)} rows missing, e.g. {sorted(missing)[:5]}"
    assert not extra, f"{feed}: {len(extra)} unexpected rows, e.g. {sorted(extra)[:5]}"
    if values:
        for r in rows:
            exp = want[r[key]]
            for col, v in exp.items():
                got = r.get(col)
                assert _same(got, v), f"{feed} {r[key]}: {col} = {got!r}, expected {v!r}"
    return len(rows)

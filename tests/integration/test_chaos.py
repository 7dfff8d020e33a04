#!/usr/bin/python3
"""Randomized fault schedules, in the spirit of Jepsen and FoundationDB's simulation: the real
daemon against the fakes, through its public interface only (configuration file, command line,
signals, the state directory's spool/ and rejected-FEED.ndjson, exit codes), while one seed
draws a sequence of steps: the source grows and changes (new events, postponed events,
corrected rows, rows no parser likes), BigQuery and See Tickets fail in every way the fakes can
fail, the process is reloaded, stopped, killed with -9, its disk fills, its dead-letter file
becomes unwritable. At every quiet point (every fault cleared, then full polls) and after every
`--once` run that exits 0, the checker compares BigQuery with the source's ground truth:

  - every good source row is in BigQuery exactly once, with the values of one of its versions;
  - every bad row is in rejected-FEED.ndjson, and no row is both landed and dead-lettered
    (a good row BigQuery was made to refuse as `invalid` counts as bad until it is corrected);
  - no spool segment is left (FEED-* nor, with tracking, FEED_changes-*), no `*.unreadable`;
  - the daemon is alive, or `--once` exited with a documented status.

Changed rows (track_changes). Each schedule turns `sales.track_changes` and/or
`events.track_changes` on from the start, each with probability 1/2 (drawn from a stream of
its own, so a seed without tracking draws what it drew before; the description line says
`track_changes=sales+events|sales|events|none`). Tracked schedules draw a `churn` step: a few
good rows the base table holds change (a sale's isPending toggled, sold or priceName changed, an
event renamed, postponed, its doors moved), a key changed before is often set back to an
earlier version, and now and then every row changed goes back a moment later (A -> B -> A, B
seen by a poll or not). Kills, stops, --once runs and faults on the insert path change a few
rows too, so that versions are in flight when they strike; faults aimed at inserts include
/tables/FEED_changes/insertAll (streaming; `/upload/` covers every table), a dedup outage can
lose the answer to stored versions, and `invalid` refusals hit changed versions as well. Every
version goes through Schedule.update, which keeps every version each key has had. Then, for
each tracked feed F, wherever the checks above run:

  - every `_fingerprint` in F and F_changes is 16 lowercase hex digits, and one fingerprint
    never stands for two different contents;
  - F_changes never holds the same (key, _observed_at) twice; every change row has the values
    of a version the source has had for its key, and its key is in F;
  - each key's versions in the order the daemon saw them (its base row, then its change rows
    and its dead-lettered versions from rejected-F_changes.ndjson by _observed_at) never hold
    the same version twice in a row: A, A is a version recorded twice; A, B refused, A is
    right (the refused B stays the key's last version); B refused then B landed is a refused
    version sent again;
  - every changes dead letter is a row BigQuery was made to refuse (stage `bigquery`), with
    the values of a version, not also landed, and not twice;
  - at quiet points and after --once exits 0: F_current holds each key once, and for every key
    the base table must hold whose current source version is good and was not made refused,
    F_current's row is that current version (no stale row).
Versions a poll never saw (the source changed twice between two polls) are not required.

Each schedule is one TAP line; its seed is printed, and STBQ_CHAOS_SEED=N runs it again alone
(the same steps with the same arguments; where a step lands in the daemon's work depends on
timing, so a race may need a few runs to show again).

What the checker decides where the contract leaves room:
  - A sale must land when its event is good, in BigQuery (or not refused there), and starts
    within sales.event_lookback_days by its current `starts` (unknown starts count as within);
    sales of events moved out of the window, or within 10 minutes of its edge, may land or not,
    but never twice. A sale without eventId must land when any event is asked for.
  - A landed row must equal some version the source has had (a correction after it landed
    does not reach BigQuery: keys are never sent twice).
  - BigQuery completes a load job whether or not anyone waits: after a daemon is stopped or
    killed, the checker asks the fake about every job it was sent, as the real service would
    have run them, so an abandoned job's rows do land, sooner or later.
  - A fault can make the fake refuse as `invalid` a row that an earlier request, whose answer
    was lost, had stored; BigQuery could not do that, so that row landed and dead-lettered is
    not held against the daemon. Nor are repeated dead letters once a daemon has started while
    its dead-letter file could not be read.
  - In daemon mode, an exit with 69/75 (or any status while a fault is in force) is restarted
    as systemd's Restart=on-failure would; a crash, an exit 0 or 78 unasked is a violation.
    A --once run with no fault in force must exit 0; with faults, 0, 69 or 75.
  - The full disk is a small tmpfs mounted on the state directory (root only; otherwise the
    step is never drawn and the run says so).

Environment:
  STBQ_CHAOS_SEED=N        run the single schedule with seed N
  STBQ_CHAOS_SCHEDULES=N   how many schedules (default 12, and no new one after about 150 s)
  STBQ_CHAOS_JOBS=N        schedules run in N parallel processes, each with its own fakes
  STBQ_CHAOS_BASE_SEED=N   the seed the schedule seeds are drawn from (default: random)
  STBQ_CHAOS_REPORT=FILE   the summary as JSON, written there too
  STBQ_CHAOS_KEEP=1        keep every schedule's directory, not only those of failures
  STBQ_CHAOS_VERBOSE=1     print the steps of passing schedules too
  STBQ_CHAOS_SKIP=K,...    never draw these step kinds or bad-row kinds (e.g. kill9,raw_inf), to
                           look past a known bug; a seed then draws a different schedule.
                           Also: track_changes (no schedule tracks changes) and
                           invalid_changes (no `invalid` refusal can hit a changed version:
                           streaming refusals aim at base tables only, and load jobs refuse
                           nothing when tracking is on; the seed's steps stay as they were)
"""
import base64
import calendar
import concurrent.futures
import copy
import http.client
import ctypes
import datetime as dt
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
from harness import (API_KEY, EVENTS_COLUMNS, KEYS, SALES_COLUMNS, Daemon,  # noqa: E402
                     GoogleFake, SeeTicketsFake, coerce_row, write_config)

FEEDS = ("events", "sales")
COLUMNS = {"sales": [c[0] for c in SALES_COLUMNS], "events": [c[0] for c in EVENTS_COLUMNS]}
UNOWNED = "<every search>"  # a sale without eventId goes out with every search
NEVER = "<no search>"  # an eventId no search can name
BIG = "123456789012345678901234567890"
DEDUP_WINDOW_S = 3  # the short insertId window some schedules set ...
DEDUP_TRUST_MS = 2400  # ... and the 80 % of it the daemon is told to trust
LOOKBACK_MARGIN_S = 600  # events this close to the lookback cutoff: their sales may go either way
STOP_WITHIN_S = 8  # interface.md says 5 s; a loaded test machine gets some slack
QUIET_TIMEOUT_S = 60
TMPFS_BYTES = 4 << 20
BULK_SALES = 7000  # > 4 MiB of NDJSON: one drain becomes two load jobs
DEFAULT_SCHEDULES = 12
DEFAULT_BUDGET_S = 150

ENV = os.environ
ONE_SEED = int(ENV["STBQ_CHAOS_SEED"]) if ENV.get("STBQ_CHAOS_SEED") else None
N_SCHEDULES = int(ENV.get("STBQ_CHAOS_SCHEDULES") or DEFAULT_SCHEDULES)
BUDGET_S = None if ENV.get("STBQ_CHAOS_SCHEDULES") or ONE_SEED else DEFAULT_BUDGET_S
JOBS = max(1, int(ENV.get("STBQ_CHAOS_JOBS") or 1))
REPORT = ENV.get("STBQ_CHAOS_REPORT")
KEEP = ENV.get("STBQ_CHAOS_KEEP") == "1"
VERBOSE = ENV.get("STBQ_CHAOS_VERBOSE") == "1"
SKIP = {x.strip() for x in (ENV.get("STBQ_CHAOS_SKIP") or "").split(",") if x.strip()}


# ------------------------------------------------------------------------------- small helpers

def canon(v):
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def iso(t):
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_starts(v):
    """An event's start as the daemon reads it (ISO-8601, no zone = UTC); None if unknown."""
    if not isinstance(v, str):
        return None
    s = v.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.timezone.utc)
    return t.timestamp()


def api_key(feed, api):
    """The key of an API row as a string (a numeric id as its digits); None without one."""
    if not isinstance(api, dict):
        return None
    v = api.get(KEYS[feed])
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, str):
        return v or None
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return None


def served_event(api):
    """The event code whose searches return this sale."""
    if not isinstance(api, dict) or api.get("eventId") is None:
        return UNOWNED
    v = api["eventId"]
    if isinstance(v, bool):
        return NEVER
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    return NEVER


def good_coerce(feed, api):
    """The BigQuery row of a good API row (interface.md's coercion, as harness.coerce_row
    states it); None for a row that must be dead-lettered."""
    if not isinstance(api, dict):
        return None
    loc = api.get("location")
    if feed == "sales" and loc is not None and not isinstance(loc, dict):
        return None
    try:
        row = coerce_row(feed, api)
    except (ValueError, TypeError, OverflowError):
        return None
    if not row[KEYS[feed]]:
        return None
    sold = row.get("sold")
    if isinstance(sold, int) and not -(1 << 63) <= sold < (1 << 63):
        return None
    return row


FINGERPRINT_RE = re.compile(r"[0-9a-f]{16}")


def observed_us(v):
    """An _observed_at as integer microseconds since the epoch, None if unreadable. The fake
    shows a TIMESTAMP as "2026-12-04 23:36:07.35024 UTC"; the spool and the dead letters
    carry "2026-12-04T23:36:07.350240Z"."""
    if not isinstance(v, str):
        return None
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                     r"\s*(?:Z|UTC|\+00:00|\+00)?", v.strip())
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(x) for x in m.groups()[:6])
    try:
        t = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0))
    except (ValueError, OverflowError):
        return None
    return t * 1000000 + int(((m.group(7) or "") + "000000")[:6])


def same_row(feed, a, b):
    """Equal in every column of the table (null and absent alike, floats within 1e-9)."""
    return all(H._same(a.get(c), b.get(c)) for c in COLUMNS[feed])


def row_diff(feed, got, want):
    return ", ".join(f"{c}={got.get(c)!r} not {want.get(c)!r}" for c in COLUMNS[feed]
                     if not H._same(got.get(c), want.get(c)))


def raw_text(data):
    """A raw row as the dead-letter file must quote it: its text, invalid bytes as \\xNN."""
    return data.decode("utf-8", "backslashreplace")


def norm_hex(s):
    return re.sub(r"\\x([0-9A-Fa-f]{2})", lambda m: "\\x" + m.group(1).lower(), s).strip()


def file_tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return []
    return text.splitlines()[-lines:]


def bq_error_body(code, reason, message):
    return {"error": {"code": code, "message": message, "status": "UNAVAILABLE",
                      "errors": [{"reason": reason, "message": message, "domain": "global"}]}}


# ----------------------------------------------------------------------- platform capabilities

def _can_mount_tmpfs():
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    d = tempfile.mkdtemp(prefix="stbq-chaos-tmpfs-probe-")
    try:
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", d],
                           capture_output=True, timeout=10)
        if p.returncode != 0:
            return False
        subprocess.run(["umount", d], capture_output=True, timeout=10)
        return True
    except (OSError, subprocess.SubprocessError):
        return False
    finally:
        try:
            os.rmdir(d)
        except OSError:
            pass


TMPFS = _can_mount_tmpfs()

_libc = ctypes.CDLL(None, use_errno=True)
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a, b):
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE): a running daemon never sees the
    dead-letter path missing."""
    fn = getattr(_libc, "renameat2", None)
    if fn is None:
        raise OSError("renameat2 unavailable")
    if fn(_AT_FDCWD, a.encode(), _AT_FDCWD, b.encode(), _RENAME_EXCHANGE) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


# ----------------------------------------------------------------------------------- timers

class Timers:
    """Actions due later (a fault that lasts N seconds), run by one thread; fire_all() runs
    every pending one at once, e.g. at a quiet point."""

    def __init__(self):
        self.cv = threading.Condition()
        self.running = threading.Lock()
        self.items = []
        self.errors = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, delay, fn, label):
        with self.cv:
            self.items.append((time.monotonic() + delay, label, fn))
            self.items.sort(key=lambda x: x[0])
            self.cv.notify()

    def _run(self):
        # Lock order: `running` before `cv`, as in fire_all(). Holding cv while waiting
        # for `running` deadlocked against a fire_all() that held `running` and waited
        # for cv (seed 670609654 hung for an hour in the 1000-schedule run).
        while True:
            with self.cv:
                while not self.stopped and (not self.items or
                                            self.items[0][0] > time.monotonic()):
                    self.cv.wait(None if not self.items else
                                 max(0.0, self.items[0][0] - time.monotonic()))
                if self.stopped:
                    return
            with self.running:
                with self.cv:
                    # fire_all() may have run the due item while this thread waited.
                    if not self.items or self.items[0][0] > time.monotonic():
                        continue
                    _, label, fn = self.items.pop(0)
                try:
                    fn()
                except Exception as e:  # noqa: BLE001 - reported with the schedule
                    self.errors.append(f"timer {label}: {e!r}")

    def fire_all(self):
        with self.running:
            with self.cv:
                items, self.items = self.items, []
            for _, label, fn in items:
                try:
                    fn()
                except Exception as e:  # noqa: BLE001
                    self.errors.append(f"timer {label}: {e!r}")

    def stop(self):
        with self.cv:
            self.stopped = True
            self.cv.notify()
        self.thread.join(5)


# -------------------------------------------------------------------------------- violations

class Violations:
    """Problems grouped by what went wrong, with a few examples of each."""

    def __init__(self):
        self.kinds = {}

    def add(self, kind, example=None):
        n, ex = self.kinds.get(kind, (0, []))
        if example is not None and len(ex) < 5:
            ex.append(str(example)[:300])
        self.kinds[kind] = (n + 1, ex)

    def __bool__(self):
        return bool(self.kinds)

    def lines(self):
        return [f"{kind}: {n}" + (f", e.g. {ex}" if ex else "")
                for kind, (n, ex) in sorted(self.kinds.items())]


class ScheduleFailed(Exception):
    pass


# -------------------------------------------------------------------------- step generation

COMMON_STEPS = [
    ("grow", 10), ("new_events", 4), ("postpone", 3), ("earlier", 2), ("correct_good", 3),
    ("correct_bad", 6), ("bad_row", 11),
    ("bq_5xx", 5), ("bq_429", 3), ("bq_lost_ack", 5), ("bq_invalid", 5), ("bq_stopped", 3),
    ("bq_garbled", 2), ("bq_revoke", 2), ("bq_delay", 1),
    ("st_429", 3), ("st_5xx", 4), ("st_garbled", 4), ("st_page_cap", 2),
    ("st_ignore_offset", 3), ("st_delay", 1),
    ("events_feed_down", 2), ("events_spooled_restart", 3), ("deadletter_unwritable", 2),
    ("check", 2),
]
LOAD_STEPS = [("bq_slow_job", 2), ("bq_job_error", 2)]
DEDUP_STEPS = [("bq_dedup_outage", 5)]
TMPFS_STEPS = [("disk_full", 3)]
DAEMON_STEPS = [("sighup", 4), ("restart", 3), ("kill9", 6), ("sigterm", 2)]
ONCE_STEPS = [("reconfigure", 2)]
CHANGES_STEPS = [("churn", 20)]  # drawn only when a feed tracks changes
TRACK_P = 0.5  # each feed tracks changes in about half the schedules


class Plan:
    """Everything a seed decides before the schedule runs: the setting and the steps, each step
    with its own random numbers (a, b, c in [0, 1), n an integer) that pick its arguments."""

    def __init__(self, seed):
        rng = random.Random(seed)
        self.seed = seed
        self.mode = "daemon" if rng.random() < 0.6 else "once"
        self.method = "streaming" if rng.random() < 0.5 else "load"
        self.bulk = self.method == "load" and rng.random() < 0.06
        self.n_events = rng.randint(4, 8)
        self.n_sales = rng.randint(40, 100)
        self.st_seed = rng.randrange(1, 1 << 20)
        self.page_size = rng.randint(4, 25)
        self.batch_rows = rng.randint(5, 50)
        self.codes = rng.randint(2, 6)
        self.lookback = 30 if rng.random() < 0.75 else 3650
        self.short_dedup = self.method == "streaming" and rng.random() < 0.4
        self.tmpfs = TMPFS and not self.bulk and rng.random() < 0.25
        self.job_polls = 1 if (self.bulk or rng.random() < 0.2) else 0
        # Tracking is drawn from a stream of its own: a seed without it draws the very
        # schedule it drew before tracking existed.
        trng = random.Random(f"{seed}/track_changes")
        self.track = {f: trng.random() < TRACK_P and "track_changes" not in SKIP
                      for f in ("sales", "events")}
        self.tracked = [f for f in ("sales", "events") if self.track[f]]
        weights = list(COMMON_STEPS)
        weights += CHANGES_STEPS if self.tracked else []
        weights += LOAD_STEPS if self.method == "load" else []
        weights += DEDUP_STEPS if self.short_dedup else []
        weights += TMPFS_STEPS if self.tmpfs else []
        weights += DAEMON_STEPS if self.mode == "daemon" else ONCE_STEPS
        weights = [(k, x) for k, x in weights if k not in SKIP]
        kinds, w = [k for k, _ in weights], [x for _, x in weights]
        n = rng.randint(5, 11)
        steps = []
        for _ in range(n):
            steps.append(self._step(rng, rng.choices(kinds, w)[0]))
            if self.mode == "once" and rng.random() < 0.5:
                steps.append(self._step(rng, "run_once"))
        if self.bulk and "bulk_kill" not in SKIP:
            steps.insert(rng.randrange(len(steps) + 1), self._step(rng, "bulk_kill"))
        self.steps = steps

    @staticmethod
    def _step(rng, kind):
        return {"kind": kind, "a": rng.random(), "b": rng.random(), "c": rng.random(),
                "n": rng.randrange(1 << 30), "pause": rng.random()}

    def describe(self):
        return (f"seed={self.seed} mode={self.mode} method={self.method} "
                f"events={self.n_events} sales={self.n_sales} page_size={self.page_size} "
                f"batch_rows={self.batch_rows} codes_per_request={self.codes} "
                f"lookback={self.lookback} "
                f"dedup={'%ds' % DEDUP_WINDOW_S if self.short_dedup else '60s'} "
                f"job_polls={self.job_polls} tmpfs={'yes' if self.tmpfs else 'no'} "
                f"bulk={'yes' if self.bulk else 'no'} "
                f"track_changes={'+'.join(self.tracked) or 'none'} steps={len(self.steps)}")


# --------------------------------------------------------------------------------- schedule

class Schedule:
    def __init__(self, plan):
        self.p = plan
        self.t0 = time.monotonic()
        self.dir = tempfile.mkdtemp(prefix=f"stbq-chaos-{plan.seed}-")
        self.state = os.path.join(self.dir, "state")
        self.log = []  # what was done, with times
        self.v = Violations()
        self.counts = {"steps": 0, "kill9": 0, "sigterm": 0, "sighup": 0, "restarts": 0,
                       "supervisor_restarts": 0, "once_runs": 0, "checks": 0, "faults": {},
                       # track_changes: schedules with it, keys changed by churn, versions
                       # changed back to an earlier one, change rows and changes dead letters
                       # (in the tables at the last check, and summed over every check), keys
                       # whose recorded history holds a version again after another
                       # (A -> B -> A), F_current rows compared with the source
                       "tracked": 1 if plan.tracked else 0, "churned": 0, "reverted": 0,
                       "change_rows": 0, "change_rows_checked": 0, "change_dead_letters": 0,
                       "aba_keys": 0, "back_over_refused": 0, "current_checked": 0}
        self.fakes = []
        self.daemons = []
        self.daemon = None
        self.disturbed = set()  # non-fault disturbances in force: page_cap, disk_full, ...
        self.mounted = False
        self.timers = Timers()
        self.history = {"sales": {}, "events": {}}  # key -> API versions before updates
        self.raw = {}  # ident -> spec of the raw row as served now
        self.raw_old = {}  # ident -> earlier specs
        self.fixes = {}  # (feed, key) -> correction of a planted bad row
        self.done_jobs = set()
        self.orphans_possible = False  # a process was stopped or killed since the last look
        self.refusal_faults = False  # a fault made the fake refuse rows as invalid
        self.refused_after_stored = set()
        self.refused_after_stored_changes = set()  # (table, key, _observed_at in µs)
        self.churned = {"sales": set(), "events": set()}  # keys churn changed
        # feed -> (change rows, changes dead letters, A->B->A keys, A, B refused, A keys)
        self.last_changes = {}
        # A daemon that starts while its dead-letter file cannot be read does not know what
        # it dead-lettered before: it may do so again, and send again a row BigQuery refused.
        self.dl_blind_start = False
        self.mark_n = 0
        self.env = {"STBQ_DEDUP_TRUST_MS": str(DEDUP_TRUST_MS)} if plan.short_dedup else {}

    # ---- bookkeeping --------------------------------------------------------------------

    def note(self, text):
        self.log.append(f"{time.monotonic() - self.t0:7.2f}s {text}")

    def fault_count(self, kind):
        f = self.counts["faults"]
        f[kind] = f.get(kind, 0) + 1

    def mark(self, prefix):
        self.mark_n += 1
        return f"{prefix}{self.p.seed % 100000:05d}-{self.mark_n:03d}"

    # ---- setup and teardown -------------------------------------------------------------

    def setup(self):
        os.makedirs(self.state)
        if self.p.tmpfs:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0750",
                            "tmpfs", self.state], check=True, capture_output=True, timeout=10)
            self.mounted = True
        gargs = ["--job-polls-to-done", str(self.p.job_polls)]
        if self.p.short_dedup:
            gargs += ["--dedup-window", str(DEDUP_WINDOW_S)]
        box = {}

        def start_st():  # both fakes start at once: it saves a good part of a second
            try:
                box["s"] = SeeTicketsFake(self.dir, "--seed", str(self.p.st_seed), "--events",
                                          str(self.p.n_events), "--sales", str(self.p.n_sales))
            except Exception as e:  # noqa: BLE001 - raised again below
                box["e"] = e
        t = threading.Thread(target=start_st)
        t.start()
        try:
            self.g = GoogleFake(self.dir, *gargs)
            self.fakes.append(self.g)
        finally:
            t.join()
            if "s" in box:
                self.fakes.append(box["s"])
        if "e" in box:
            raise box["e"]
        self.s = box["s"]
        self.cfg = {
            "log_level": '"info"',
            "seetickets.page_size": str(self.p.page_size),
            "seetickets.timeout": "5",
            "bigquery.batch_rows": str(self.p.batch_rows),
            "bigquery.insert_method": json.dumps(self.p.method),
            "sales.interval": "1",
            "events.interval": "1",
            "sales.event_lookback_days": str(self.p.lookback),
            "sales.codes_per_request": str(self.p.codes),
        }
        if self.p.bulk:
            self.cfg["seetickets.page_size"] = "500"
        for feed in self.p.tracked:  # fixed for the schedule: a reload cannot change it
            self.cfg[f"{feed}.track_changes"] = "true"
        self.write_cfg()

    def write_cfg(self):
        self.cfg_path = write_config(self.dir, self.g, self.s, **self.cfg)

    def save_fake_logs(self):
        """Every request the fakes saw, kept with a failed schedule's directory."""
        for name, fake in (("google", getattr(self, "g", None)),
                           ("seetickets", getattr(self, "s", None))):
            if fake is None:
                continue
            try:
                with open(os.path.join(self.dir, f"{name}-requests.json"), "w") as f:
                    json.dump(fake.requests(), f, indent=0)
            except Exception:  # noqa: BLE001 - a fake that died has nothing to save
                pass

    def teardown(self, failed):
        self.timers.stop()
        if failed:
            self.save_fake_logs()
        for d in self.daemons:
            self.kill_quietly(d)
        for f in self.fakes:
            try:
                f.stop()
            except Exception:  # noqa: BLE001 - cleanup goes on
                pass
        if self.mounted:
            if failed or KEEP:
                shutil.copytree(self.state, self.state + ".kept", symlinks=True,
                                ignore_dangling_symlinks=True, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns(".chaos-fill"))
            p = subprocess.run(["umount", self.state], capture_output=True, timeout=20)
            if p.returncode != 0:
                subprocess.run(["umount", "-l", self.state], capture_output=True, timeout=20)
        if not failed and not KEEP:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill_quietly(self, d):
        self.orphans_possible = True
        try:
            if d.proc.poll() is None:
                d.proc.kill()
                d.proc.wait(10)
        except Exception:  # noqa: BLE001
            pass
        for f in (d.err, d.out):
            try:
                f.close()
            except Exception:  # noqa: BLE001
                pass
        if d.sock:
            sock, d.sock = d.sock, None
            try:
                sock.close()
            except OSError:
                pass

    # ---- the daemon ---------------------------------------------------------------------

    def starting(self):
        if "deadletter" in self.disturbed and not self.dl_blind_start:
            self.dl_blind_start = True
            self.note("a daemon starts while a dead-letter file is unreadable")

    def start_daemon(self):
        self.starting()
        d = Daemon(self.dir, self.cfg_path, env=self.env)
        self.daemons.append(d)
        self.daemon = d
        self.note(f"daemon started (pid {d.proc.pid})")
        return d

    def stop_daemon(self, d, sig=signal.SIGTERM):
        """SIGTERM: the daemon must exit 0 within STOP_WITHIN_S."""
        if d.proc.poll() is not None:
            self.kill_quietly(d)
            return d.proc.returncode
        d.signal(sig)
        t = time.monotonic()
        try:
            rc = d.proc.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.v.add("daemon did not stop within %ds of SIGTERM" % STOP_WITHIN_S, d.proc.pid)
            self.kill_quietly(d)
            return None
        self.kill_quietly(d)
        self.note(f"daemon exited {rc} {time.monotonic() - t:.1f}s after SIGTERM")
        if rc not in (0, -signal.SIGTERM):  # killed by it before its handler was set: fine
            self.v.add("daemon exited non-zero after SIGTERM", rc)
        return rc

    def supervise(self):
        """Like systemd's Restart=on-failure: a daemon that exited is started again; an exit
        that no documented failure explains is a violation."""
        d = self.daemon
        if self.p.mode != "daemon" or d is None or d.proc.poll() is None:
            return
        rc = d.proc.returncode
        self.kill_quietly(d)
        tail = file_tail(d.stderr_path, 3)
        self.note(f"daemon exited by itself with {rc}: {tail}")
        if rc < 0:
            self.v.add("daemon died by a signal", f"signal {-rc}: {tail}")
        elif rc in (0, 78):
            self.v.add("daemon exited by itself", f"status {rc}: {tail}")
        elif rc not in (69, 75) and not self.faults_active():
            # 69/75: a start-up that failed under faults; systemd starts it again. Another
            # status is fine while the disk is full or a fault is in force, not otherwise.
            self.v.add("daemon exited by itself with no fault in force", f"status {rc}: {tail}")
        self.counts["supervisor_restarts"] += 1
        time.sleep(0.2)
        self.start_daemon()

    def status_lines(self, d, feed, start=0):
        msgs = d.notified("")
        # STATUS= names the feed that just polled first, then the other one's last poll:
        # keep the first part only.
        return [(i, re.split(r"; (?:sales|events): fetched", m, maxsplit=1)[0])
                for i, m in enumerate(msgs) if i >= start
                and m.startswith(f"STATUS={feed}: fetched")]

    # ---- fakes ---------------------------------------------------------------------------

    def stats(self, fake, route):
        return fake.get("/_fake/stats")["calls"].get(route, 0)

    def trigger(self, step):
        """Wait for a random moment: a random delay, or the Nth next request of a kind."""
        if step["b"] < 0.35:
            delay = 0.05 + step["c"] * 1.5
            time.sleep(delay)
            return f"after {delay:.2f}s"
        routes = [(self.s, "sales_report"), (self.s, "events_search"),
                  (self.g, "bigquery.jobs.query")]
        if self.cfg["bigquery.insert_method"] == '"load"':
            routes += [(self.g, "bigquery.jobs.insert.upload")] * 3
            if self.p.job_polls or "slow_job" in self.disturbed:
                routes += [(self.g, "bigquery.jobs.get")] * 2
        else:
            routes += [(self.g, "bigquery.tabledata.insertAll")] * 4
        fake, route = routes[step["n"] % len(routes)]
        want = 1 + int(step["c"] * 2)
        base = self.stats(fake, route)
        end = time.monotonic() + 2.0
        while time.monotonic() < end and self.stats(fake, route) < base + want:
            time.sleep(0.01)
        return f"after {want} more {route}" + ("" if time.monotonic() < end else " (timed out)")

    def finish_orphans(self):
        """BigQuery runs a submitted load job to its end whether anyone waits for it or not;
        the fake only moves a job on when asked. Ask, as the real service would have gone on."""
        if not self.orphans_possible or self.cfg["bigquery.insert_method"] != '"load"' and \
                self.p.method != "load":
            return
        self.orphans_possible = False
        try:
            tok = self.g.post("/_fake/tokens", {"issue": True})["access_token"]
            reqs = self.g.requests()
        except Exception as e:  # noqa: BLE001
            self.note(f"finish_orphans: {e!r}")
            return
        jobs = []
        for r in reqs:
            if r["method"] != "POST" or "/upload/" not in r["path"]:
                continue
            m = re.search(r'"jobId"\s*:\s*"([^"]+)"', r.get("body") or "")
            p = re.search(r"/projects/([^/]+)/jobs", r["path"])
            if m and p and m.group(1) not in self.done_jobs:
                jobs.append((p.group(1), m.group(1)))
        n = 0
        for project, job in dict.fromkeys(jobs):
            for _ in range(8):
                try:
                    req = urllib.request.Request(
                        f"{self.g.url}/bigquery/v2/projects/{project}/jobs/{job}?location=EU",
                        headers={"Authorization": "Bearer " + tok})
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        state = json.loads(resp.read())["status"]["state"]
                except urllib.error.HTTPError as e:
                    if e.code == 404:  # its upload never arrived: there is no job
                        self.done_jobs.add(job)
                        break
                    time.sleep(0.05)
                    continue
                except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError,
                        KeyError):
                    # Its own faults (a truncated answer) hit the checker's asks too.
                    time.sleep(0.05)
                    continue
                if state == "DONE":
                    self.done_jobs.add(job)
                    n += 1
                    break
        if n:
            self.note(f"BigQuery finished {n} load jobs on its own")

    def truth(self, feed):
        return self.s.truth(feed)

    def update(self, feed, key, set_=None, unset=None):
        cur = [r for r in self.truth(feed) if api_key(feed, r) == key]
        self.history[feed].setdefault(key, []).extend(copy.deepcopy(cur))
        return self.s.post("/_fake/update", {"feed": feed, "key": key, "set": set_ or {},
                                             "unset": unset or []})

    def selected_events(self, now=None):
        """Event codes whose sales the daemon must ask for now (good, in the lookback)."""
        now = now or time.time()
        cutoff = now - self.p.lookback * 86400
        out = []
        for e in self.truth("events"):
            c = good_coerce("events", e)
            if c is None:
                continue
            t = parse_starts(c.get("starts"))
            if t is None or t >= cutoff + LOOKBACK_MARGIN_S:
                out.append(c["id"])
        return sorted(out)

    def add_fault(self, fake, action, path=None, times=1, method=None):
        spec = {"action": action, "times": times}
        if path:
            spec["path"] = path
        if method:
            spec["method"] = method
        return fake.post("/_fake/faults", spec)

    def for_a_while(self, fake, seconds, label):
        """A fault with times=0 lasts until this timer clears the fake's faults."""
        self.timers.add(seconds, fake.clear_faults, label)

    def restore_all(self):
        self.timers.fire_all()
        self.g.clear_faults()
        self.s.clear_faults()
        self.s.post("/_fake/config", {"page_cap": 0, "ignore_offset": False})
        self.g.post("/_fake/settings", {"job_polls_to_done": self.p.job_polls})
        self.restore_deadletter()
        self.disk_free()
        self.disturbed.clear()

    def faults_active(self):
        if self.disturbed:
            return True
        for fake in (self.g, self.s):
            for f in fake.get("/_fake/faults")["faults"]:
                if f["times"] == 0 or f["hits"] < f["times"]:
                    return True
        return False

    # ---- dead-letter file and disk ------------------------------------------------------

    def dl_path(self, feed):
        return os.path.join(self.state, f"rejected-{feed}.ndjson")

    def make_deadletter_unwritable(self, feed):
        path = self.dl_path(feed)
        aside = path + ".chaos-dir"
        if os.path.isfile(path):
            os.mkdir(aside)
            exchange(path, aside)  # path is now a directory, aside the file
        elif not os.path.exists(path):
            os.mkdir(path)
        self.dl_swapped = (feed, path, aside)
        self.disturbed.add("deadletter")

    def restore_deadletter(self):
        sw = getattr(self, "dl_swapped", None)
        if not sw:
            return
        feed, path, aside = sw
        if os.path.isfile(aside):
            exchange(path, aside)
            os.rmdir(aside)
        elif os.path.isdir(path):
            os.rmdir(path)
        self.dl_swapped = None
        self.disturbed.discard("deadletter")
        self.note(f"rejected-{feed}.ndjson writable again")

    def disk_fill(self):
        fill = os.path.join(self.state, ".chaos-fill")
        fd = os.open(fill, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (1 << 16, 4096, 512, 64, 1):
                try:
                    while os.write(fd, b"\0" * size) > 0:
                        pass
                except OSError:
                    pass
        finally:
            os.close(fd)
        self.disturbed.add("disk_full")

    def disk_free(self):
        fill = os.path.join(self.state, ".chaos-fill")
        if os.path.exists(fill):
            os.unlink(fill)
            self.note("disk has room again")
        self.disturbed.discard("disk_full")

    # ---- planted rows -------------------------------------------------------------------

    def sale_obj(self, key, event):
        return {"uniqueCode": key, "eventId": event, "eventName": "Chaos Night",
                "date": iso(time.time()), "currency": "GBP", "priceName": "CHAOS",
                "sold": 1, "faceValue": 12.5, "isPending": False,
                "location": {"country": "United Kingdom", "postCode": "ZZ9 9ZZ"}}

    def event_obj(self, key):
        return {"id": key, "name": "Chaos Event", "promoterName": "Chaos Promotions",
                "starts": iso(time.time() + 10 * 86400), "doorsOpen": "19:00",
                "timeslotEnabled": False, "venueName": "Chaos Hall"}

    def plant_raw(self, feed, kind, key, obj, event):
        """Build and plant one raw row; returns its spec."""
        field = "priceName" if feed == "sales" else "name"
        good_text = json.dumps(obj, ensure_ascii=False)
        api = None
        if kind == "raw_bigint_unknown":
            data = (good_text[:-1] + ', "basketId": %s}' % BIG).encode()
            good, api = True, json.loads(data)
        elif kind == "raw_bigint_sold":
            data = json.dumps(dict(obj, sold="@@")).replace('"@@"', BIG).encode()
            good = False
        elif kind == "raw_inf":
            data = json.dumps(dict(obj, faceValue="@@")).replace('"@@"', "1e999").encode()
            good = False
        elif kind == "raw_bad_utf8":
            data = json.dumps(dict(obj, **{field: "@@"}), ensure_ascii=False).encode().replace(
                b'"@@"', b'"caf\xe9 \xff\xfe"')
            good = False
        elif kind == "raw_surrogate":
            data = json.dumps(dict(obj, **{field: "@@"}), ensure_ascii=False).encode().replace(
                b'"@@"', b'"half \\ud83c moon"')
            good = False
        elif kind == "raw_odd_good":
            base = {k: v for k, v in obj.items() if k != field}  # no duplicate member
            text = json.dumps(base, ensure_ascii=False)[:-1] + (
                ' , "%s" : "caf\\u00e9 \\u2013 \\ud83c\\udfb8 \\"q\\" \\/ tab\\t" ,\n'
                '  "zzExtra" : [ 1 , { "n" : null } ] }' % field)
            data = text.encode()
            api = json.loads(text)
            if feed == "sales":
                data = data.replace(b'"sold": 1', b'"sold" : 1.0E0')
                api["sold"] = 1.0
            good = True
        else:
            raise AssertionError(kind)
        body = {"feed": feed, "b64": base64.b64encode(data).decode()}
        if feed == "sales" and event is not None:
            body["event"] = event
        ident = self.s.post("/_fake/raw_rows", body)["index"]
        spec = {"ident": ident, "feed": feed, "key": key, "kind": kind, "data": data,
                "good": good, "api": api if good else None,
                "coerced": good_coerce(feed, api) if good else None,
                "event": event if feed == "sales" else None,
                "fix": None if good else good_text}
        if good and spec["coerced"] is None:
            raise AssertionError(f"planted good raw row does not coerce: {data!r}")
        self.raw[ident] = spec
        return spec

    def replace_raw(self, spec, text):
        obj = json.loads(text)
        self.s.post("/_fake/raw_rows", {"feed": spec["feed"], "index": spec["ident"],
                                        "text": text})
        self.raw_old.setdefault(spec["ident"], []).append(spec)
        new = dict(spec, kind=spec["kind"] + "+fixed", data=text.encode(), good=True, api=obj,
                   coerced=good_coerce(spec["feed"], obj), fix=None)
        self.raw[spec["ident"]] = new
        return new

    # ---- steps ----------------------------------------------------------------------------

    def step(self, st):
        k = st["kind"]
        fn = getattr(self, "do_" + k)
        desc = fn(st)
        self.counts["steps"] += 1
        self.note(f"{k}: {desc}")

    def do_grow(self, st):
        n = 3 + int(st["a"] * 22)
        self.s.grow(sales=n)
        return f"{n} new sales"

    def do_new_events(self, st):
        e, n = 1 + int(st["a"] * 2), 3 + int(st["b"] * 8)
        self.s.grow(sales=n, events=e)
        return f"{e} new events, {n} new sales"

    def do_postpone(self, st):
        now = time.time()
        cutoff = now - self.p.lookback * 86400
        cands = sorted((e for e in self.truth("events") if good_coerce("events", e)
                        and parse_starts(e.get("starts")) is not None), key=lambda e: str(e["id"]))
        if not cands:
            return "no event with a start date"
        outside = [e for e in cands if parse_starts(e["starts"]) < cutoff - 2 * 86400]
        pool = outside if outside and st["b"] < 0.7 else cands
        ev = pool[st["n"] % len(pool)]
        when = iso(now + (5 + st["a"] * 55) * 86400)
        self.update("events", api_key("events", ev), {"starts": when})
        return f"event {ev['id']} postponed from {ev.get('starts')} to {when}"

    def do_earlier(self, st):
        now = time.time()
        cands = sorted((e for e in self.truth("events") if good_coerce("events", e)
                        and (parse_starts(e.get("starts")) or now + 1) > now),
                       key=lambda e: str(e["id"]))
        if not cands:
            return "no future event"
        ev = cands[st["n"] % len(cands)]
        when = iso(now - (self.p.lookback + 3 + st["a"] * 20) * 86400)
        self.update("events", api_key("events", ev), {"starts": when})
        return f"event {ev['id']} moved from {ev.get('starts')} to {when}"

    def do_correct_good(self, st):
        feed = "sales" if st["b"] < 0.7 else "events"
        rows = [r for r in self.truth(feed) if good_coerce(feed, r)]
        if not rows:
            return "nothing to correct"
        rows.sort(key=lambda r: api_key(feed, r))
        row = rows[st["n"] % len(rows)]
        key = api_key(feed, row)
        if feed == "sales":
            self.update(feed, key, {"priceName": "Corrected " + self.mark("C"),
                                    "sold": 1 + st["n"] % 9})
        else:
            self.update(feed, key, {"name": "Corrected " + self.mark("C")})
        return f"{feed} row {key} corrected"

    def do_correct_bad(self, st):
        cands = []
        truth = {f: self.truth(f) for f in FEEDS}
        for (feed, key), fix in sorted(self.fixes.items()):
            cur = [r for r in truth[feed] if api_key(feed, r) == key]
            if cur and good_coerce(feed, cur[0]) is None:
                cands.append(("planted", feed, key, fix))
        for ident, spec in sorted(self.raw.items()):
            if not spec["good"] and spec["fix"]:
                cands.append(("raw", spec["feed"], spec["key"], spec))
        rejected = self.fake_rejected()
        for feed in FEEDS:
            seen = set()
            for r in rejected[feed]:
                k = r.get(KEYS[feed])
                if k in seen:
                    continue
                seen.add(k)
                cur = [x for x in truth[feed] if api_key(feed, x) == k]
                c = good_coerce(feed, cur[0]) if cur else None
                if c is not None and same_row(feed, c, r):
                    cands.append(("refused", feed, k, None))
                for spec in self.raw.values():
                    if spec["feed"] == feed and spec["key"] == k and spec["good"] and \
                            same_row(feed, spec["coerced"], r):
                        cands.append(("refused raw", feed, k, spec))
        for feed in self.p.tracked:  # changed versions BigQuery refused: a later one is sent
            seen = set()
            for r in rejected[feed + "_changes"]:
                k = r.get(KEYS[feed])
                if k in seen:
                    continue
                seen.add(k)
                cur = [x for x in truth[feed] if api_key(feed, x) == k]
                c = good_coerce(feed, cur[0]) if cur else None
                if c is not None and same_row(feed, c, r) and k not in \
                        {spec["key"] for spec in self.raw.values()}:
                    cands.append(("refused change", feed, k, None))
        if not cands:
            return "nothing to correct"
        # Rows BigQuery refused are the rarest and most telling: favour them.
        refused = [c for c in cands if c[0].startswith("refused")]
        pool = refused if refused and st["b"] < 0.6 else cands
        how, feed, key, what = pool[st["n"] % len(pool)]
        if how == "planted":
            self.update(feed, key, what.get("set"), what.get("unset"))
            del self.fixes[(feed, key)]
        elif how == "raw":
            self.replace_raw(what, what["fix"])
        elif how == "refused raw":
            field = "priceName" if feed == "sales" else "venueName"
            fixed = dict(what["api"], **{field: "Fixed " + self.mark("F")})
            self.replace_raw(what, json.dumps(fixed))
        else:
            field = "priceName" if feed == "sales" else "venueName"
            self.update(feed, key, {field: "Fixed " + self.mark("F")})
        return f"{how} {feed} row {key} corrected"

    # changed versions (track_changes)

    def sub_rng(self, st, tag):
        """A random stream of the step's own for what it does only when tracking is on, so
        that a schedule without tracking draws exactly as it did before tracking existed."""
        return random.Random(f"{st['n']}/{st['a']!r}/{tag}")

    def restore_version(self, feed, key, cur, old):
        """The source row back to exactly an earlier version of it (an API row)."""
        set_ = {k: copy.deepcopy(x) for k, x in old.items()
                if k not in cur or canon(cur[k]) != canon(x)}
        unset = [k for k in cur if k not in old]
        self.update(feed, key, set_, unset)

    def churn_candidates(self, feed, truth):
        """Good source rows the daemon knows (the base table holds their key), neither planted
        raw nor waiting for a fix, nor in the base dead letters (a row refused after an earlier
        request stored it has its key released: a change would be a second base row, the
        fake's doing, not the daemon's)."""
        landed = {str(r.get(KEYS[feed])) for r in self.g.rows(feed)}
        dl, _ = self.read_dl(feed)
        dl_keys = {api_key(feed, rec.get("row")) for rec in dl if isinstance(rec.get("row"), dict)}
        raw_keys = {spec["key"] for spec in self.raw.values() if spec["feed"] == feed}
        n = {}
        for a in truth:
            k = api_key(feed, a)
            n[k] = n.get(k, 0) + 1
        out = [a for a in truth if n[api_key(feed, a)] == 1 and api_key(feed, a) in landed
               and api_key(feed, a) not in dl_keys and api_key(feed, a) not in raw_keys
               and (feed, api_key(feed, a)) not in self.fixes and good_coerce(feed, a)]
        return sorted(out, key=lambda a: api_key(feed, a))

    def mutate(self, feed, api, r):
        """A new value for a field of a good API row, as the source changes them: a pending
        sale confirmed (or back), tickets refunded or added, an event renamed or postponed."""
        c = good_coerce(feed, api)
        x = r.random()
        if feed == "sales":
            if x < 0.4:
                pending = not c.get("isPending")
                return {"isPending": pending}, f"isPending -> {pending}"
            if x < 0.75:
                sold = r.choice([n for n in range(10) if n != c.get("sold")])
                return {"sold": sold}, f"sold {c.get('sold')} -> {sold}"
            return {"priceName": "Churn " + self.mark("R")}, "priceName changed"
        if x < 0.4:
            return {"name": "Renamed " + self.mark("R")}, "renamed"
        if x < 0.75:
            when = iso(time.time() + (5 + r.random() * 55) * 86400)
            return {"starts": when}, f"postponed to {when}"
        doors = r.choice([d for d in ("18:00", "18:30", "19:00", "19:30", "20:00")
                          if d != c.get("doorsOpen")])
        return {"doorsOpen": doors}, f"doors {c.get('doorsOpen')} -> {doors}"

    def churn(self, feed, n, r, flip_after=None):
        """Change up to n good rows the daemon knows; a key changed before is often set back to
        one of its earlier versions (A -> B -> A). With flip_after, every row changed goes back
        to the version it had that many seconds later: a version a poll may or may not see.
        self.update keeps every version in self.history."""
        truth = self.truth(feed)
        cands = self.churn_candidates(feed, truth)
        if not cands:
            return f"{feed}: no known good row to change"
        if feed == "sales":
            sel = set(self.selected_events())
            cands = [a for a in cands if served_event(a) in sel or served_event(a) == UNOWNED] \
                or cands
        again = [a for a in cands if api_key(feed, a) in self.churned[feed]]
        picked = {}
        for _ in range(n):
            pool = again if again and r.random() < 0.6 else cands
            a = pool[r.randrange(len(pool))]
            picked.setdefault(api_key(feed, a), a)
        what = []
        for k, a in picked.items():
            c = good_coerce(feed, a)
            olds = [o for o in self.history[feed].get(k, []) if good_coerce(feed, o)
                    and not same_row(feed, good_coerce(feed, o), c)]
            if olds and r.random() < 0.5:
                self.restore_version(feed, k, a, olds[r.randrange(len(olds))])
                self.counts["reverted"] += 1
                what.append(f"{k} back to an earlier version")
            else:
                set_, desc = self.mutate(feed, a, r)
                self.update(feed, k, set_)
                what.append(f"{k} {desc}")
            self.churned[feed].add(k)
            self.counts["churned"] += 1
        if flip_after is not None:
            time.sleep(flip_after)
            cur = {api_key(feed, x): x for x in self.truth(feed)}
            for k, a in picked.items():
                if k in cur:
                    self.restore_version(feed, k, cur[k], a)
                    self.counts["reverted"] += 1
            what.append(f"each back after {flip_after:.1f}s")
        return f"{feed}: " + ", ".join(what)

    def churn_some(self, st, tag, p=1.0, feed=None):
        """With tracking on: a few changed versions as well (from the step's own stream)."""
        if not self.p.tracked:
            return None
        r = self.sub_rng(st, tag)
        if r.random() >= p:
            return None
        feeds = self.p.tracked if feed is None else [f for f in self.p.tracked if f == feed]
        if not feeds:
            return None
        desc = self.churn(feeds[r.randrange(len(feeds))], 1 + r.randrange(3), r)
        self.note(f"  changed versions ({tag}): {desc}")
        return desc

    def do_churn(self, st):
        r = random.Random(st["n"])
        feeds = self.p.tracked
        feed = feeds[0] if len(feeds) == 1 else ("sales" if st["b"] < 0.6 else "events")
        flip = 0.2 + r.random() * 1.4 if st["c"] < 0.3 else None
        return self.churn(feed, 1 + int(st["a"] * 5), r, flip)

    SALE_BAD_KINDS = ["no_key", "uncoercible", "bool_sold", "unowned_good", "raw_bigint_unknown",
                      "raw_bigint_sold", "raw_inf", "raw_bad_utf8", "raw_surrogate",
                      "raw_odd_good"]
    EVENT_BAD_KINDS = ["no_key", "bad_bool", "list_name", "raw_bigint_unknown", "raw_bad_utf8",
                       "raw_surrogate", "raw_odd_good"]

    def spoil(self, feed, kind, obj, key, n):
        """Make a good row bad in the way `kind` says; the fix that makes it good again, if
        the kind has one (a corrected row the daemon must pick up)."""
        if kind == "no_key":
            del obj["uniqueCode" if feed == "sales" else "id"]
            obj["offerCode" if feed == "sales" else "name"] = "NOKEY-" + key
        elif kind == "uncoercible":
            field, bad, good = [("sold", "many", 2), ("faceValue", "abc", 11.0),
                                ("isPending", "maybe", True)][n % 3]
            obj[field] = bad
            return {"set": {field: good}}
        elif kind == "bool_sold":
            obj["sold"] = True
            return {"set": {"sold": 3}}
        elif kind == "unowned_good":
            del obj["eventId"]
        elif kind == "bad_bool":
            obj["timeslotEnabled"] = "maybe"
            return {"set": {"timeslotEnabled": True}}
        elif kind == "list_name":
            obj["name"] = ["Chaos", "Event"]
            return {"set": {"name": "Chaos Event Fixed"}}
        return None

    def plant_bad(self, feed, kind, n):
        event = None
        if feed == "sales":
            sel = self.selected_events() or sorted(str(e.get("id")) for e in self.truth("events"))
            event = sel[n % len(sel)] if sel else "DF-1"
            key = self.mark("X-S")
            obj = self.sale_obj(key, event)
        else:
            key = self.mark("X-E")
            obj = self.event_obj(key)
        what = "sale" if feed == "sales" else "event"
        if kind.startswith("raw_"):
            self.plant_raw(feed, kind, key, obj, event)
            return f"raw {what} {key} ({kind})" + (f" of event {event}" if event else "")
        fix = self.spoil(feed, kind, obj, key, n)
        self.s.post("/_fake/bad_rows", {feed: [obj]})
        if fix:
            self.fixes[(feed, key)] = fix
        return f"{what} {key} ({kind})" + (f" of event {obj.get('eventId', '-')}"
                                          if feed == "sales" else "")

    def do_bad_row(self, st):
        feed = "sales" if st["b"] < 0.65 else "events"
        kinds = self.SALE_BAD_KINDS if feed == "sales" else self.EVENT_BAD_KINDS
        kinds = [k for k in kinds if k not in SKIP] or ["no_key"]
        kind = kinds[int(st["a"] * len(kinds))]
        self.fault_count("bad_row:" + kind)
        return self.plant_bad(feed, kind, st["n"])

    # BigQuery

    def insert_path(self, st):
        if self.cfg["bigquery.insert_method"] == '"load"':
            return r"/upload/"
        paths = [r"/insertAll", r"/tables/sales/insertAll", r"/tables/events/insertAll"]
        paths += [f"/tables/{f}_changes/insertAll" for f in self.p.tracked]
        return paths[st["n"] % len(paths)]

    def bq_path(self, st):
        x = st["c"]
        if x < 0.55:
            return self.insert_path(st)
        if x < 0.75:
            return r"/queries"
        if x < 0.88 and self.cfg["bigquery.insert_method"] == '"load"':
            return r"/projects/[^/]+/jobs/"
        if x < 0.95:
            return r"^/token$"
        return r"/tables/[^/]+$"

    def timed_or_counted(self, fake, st, action, path, label):
        if st["b"] < 0.6:
            times = 1 + st["n"] % 2
            self.add_fault(fake, action, path, times)
            return f"{label} on {path} x{times}"
        secs = 0.5 + st["a"] * 1.2
        self.add_fault(fake, action, path, 0)
        self.for_a_while(fake, secs, label)
        return f"{label} on {path} for {secs:.1f}s"

    def some_inserts(self, st):
        """A few new sales (and changed versions), so that a fault on the insert path meets an
        insert soon."""
        self.s.grow(sales=2 + st["n"] % 5)
        self.churn_some(st, "inserts", 0.8)

    def do_bq_5xx(self, st):
        code = [500, 502, 503][st["n"] % 3]
        self.fault_count("bq_5xx")
        return self.timed_or_counted(
            self.g, st,
            {"status": code, "body": bq_error_body(code, "backendError", "Backend error")},
            self.bq_path(st), f"BigQuery {code}")

    def do_bq_429(self, st):
        self.fault_count("bq_429")
        path = self.bq_path(st)
        code = 429 if st["a"] < 0.5 else 403
        action = {"status": code, "body": bq_error_body(code, "rateLimitExceeded",
                                                        "Exceeded rate limits: too many requests")}
        times = 1 + st["n"] % 2
        self.add_fault(self.g, action, path, times)
        return f"BigQuery {code} rateLimitExceeded on {path} x{times}"

    def do_bq_lost_ack(self, st):
        self.some_inserts(st)
        self.fault_count("bq_lost_ack")
        path = self.insert_path(st) if st["c"] < 0.7 else self.bq_path(st)
        times = 1 + st["n"] % 2
        self.add_fault(self.g, {"lost_ack": True}, path, times)
        return f"lost acknowledgement on {path} x{times}"

    def do_bq_invalid(self, st):
        self.some_inserts(st)
        self.fault_count("bq_invalid")
        if self.p.tracked and "invalid_changes" in SKIP and \
                self.cfg["bigquery.insert_method"] == '"load"':
            return "no load job refuses rows (a load job may carry changed versions)"
        self.refusal_faults = True
        if self.cfg["bigquery.insert_method"] == '"load"':
            times = 1 + st["n"] % 7
            msg = ("Error while reading data, error message: JSON parsing error in row starting "
                   "at position 0: Could not convert value to integer. Field: sold"
                   if st["a"] < 0.3 else
                   "Error while reading data, error message: JSON table encountered too many "
                   "errors, giving up. Rows: 1; errors: 1.")
            self.add_fault(self.g, {"job_error": {"reason": "invalid", "message": msg}},
                           r"/upload/", times)
            return f"load jobs fail as invalid x{times}"
        feed = "sales" if st["b"] < 0.7 else "events"
        idx = int(st["a"] * min(self.p.batch_rows, 6))
        table = feed
        r = self.sub_rng(st, "invalid")
        if self.p.tracked and r.random() < 0.5 and "invalid_changes" not in SKIP:
            # A changed version refused: dead-lettered, its key's fingerprint stays there.
            if feed not in self.p.tracked:
                feed = self.p.tracked[0]
            table = feed + "_changes"
            n = 1 + r.randrange(3)
            self.note(f"  changed versions (invalid): {self.churn(feed, n, r)}")
            idx = r.randrange(n)
        fid = self.add_fault(self.g, {"insert_errors": [{"index": idx, "reason": "invalid",
                                                         "message": "Cannot convert value to "
                                                         "integer."}]},
                             f"/tables/{table}/insertAll", 1)["id"]
        if self.p.mode == "daemon":
            # Let it meet an insert, so that a later step can correct the refused row.
            end = time.monotonic() + 2.5
            while time.monotonic() < end and not any(
                    f["id"] == fid and f["hits"] for f in self.g.get("/_fake/faults")["faults"]):
                time.sleep(0.05)
        return f"{table} insertAll refuses row {idx} as invalid"

    def do_bq_stopped(self, st):
        self.some_inserts(st)
        self.fault_count("bq_stopped")
        if self.cfg["bigquery.insert_method"] == '"load"':
            return self.do_bq_job_error(st)
        idx = int(st["a"] * min(self.p.batch_rows, 6))
        reason = ["stopped", "timeout", "backendError"][st["n"] % 3]
        errs = [{"index": idx, "reason": reason}]
        if st["c"] < 0.5 and idx > 0:
            errs.append({"index": 0, "reason": "stopped"})
        times = 1 + st["n"] % 2
        self.add_fault(self.g, {"insert_errors": errs}, r"/insertAll", times)
        return f"insertAll rows {[e['index'] for e in errs]} {reason} x{times}"

    def do_bq_job_error(self, st):
        self.fault_count("bq_job_error")
        reason = ["backendError", "internalError", "rateLimitExceeded"][st["n"] % 3]
        times = 1 + st["n"] % 3
        self.add_fault(self.g,
                       {"job_error": {"reason": reason, "message": "Job failed: " + reason}},
                       r"/upload/", times)
        return f"load jobs end in {reason} x{times}"

    def do_bq_slow_job(self, st):
        self.fault_count("bq_slow_job")
        polls = 2 + st["n"] % 2
        self.g.post("/_fake/settings", {"job_polls_to_done": polls})
        self.disturbed.add("slow_job")
        secs = 2 + st["a"] * 2

        def restore():
            self.g.post("/_fake/settings", {"job_polls_to_done": self.p.job_polls})
            self.disturbed.discard("slow_job")
        self.timers.add(secs, restore, "slow jobs")
        return f"load jobs need {polls} polls for {secs:.1f}s"

    def do_bq_garbled(self, st):
        self.some_inserts(st)
        self.fault_count("bq_garbled")
        action = [{"malformed": True}, {"truncate": True}, {"drop": True}][st["n"] % 3]
        path = self.bq_path(st)
        self.add_fault(self.g, action, path, 1)
        return f"{list(action)[0]} answer on {path}"

    def do_bq_revoke(self, st):
        self.fault_count("bq_revoke")
        self.g.post("/_fake/tokens/revoke")
        return "every access token revoked"

    def do_bq_delay(self, st):
        self.fault_count("bq_delay")
        ms = 300 + int(st["a"] * 1200)
        path = self.bq_path(st)
        times = 1 + st["n"] % 3
        self.add_fault(self.g, {"delay_ms": ms}, path, times)
        return f"{ms} ms delay on {path} x{times}"

    def do_bq_dedup_outage(self, st):
        """The answer to a stored insert is lost, then BigQuery is down for longer than its
        insertId de-duplication window: a blind re-send would store the rows twice."""
        self.fault_count("bq_dedup_outage")
        paths = [r"/insertAll", r"/tables/sales/insertAll"]
        paths += [f"/tables/{f}_changes/insertAll" for f in self.p.tracked]
        path = paths[st["n"] % len(paths)]
        self.s.grow(sales=3 + int(st["c"] * 8))
        if "_changes" in path or path == r"/insertAll":
            feed = path.split("/tables/")[1].split("_changes")[0] if "_changes" in path else None
            self.churn_some(st, "dedup outage", 1.0, feed)
        self.add_fault(self.g, {"lost_ack": True}, path, 1)
        self.add_fault(self.g, {"status": 503, "body": bq_error_body(503, "backendError",
                                                                    "Backend error")}, path, 0)
        secs = DEDUP_WINDOW_S + 0.5 + st["a"] * 1.0
        if self.p.mode == "once":
            self.for_a_while(self.g, secs, "dedup outage")
            return f"lost acknowledgement then 503 on {path} for {secs:.1f}s"
        time.sleep(secs)  # the outage must outlast the window: no quiet point may cut it short
        self.g.clear_faults()
        return f"lost acknowledgement then 503 on {path} for {secs:.1f}s, cleared"

    # See Tickets

    def st_path(self, st):
        return "/v1/reports/sales" if st["c"] < 0.65 else "/v1/events/search"

    def do_st_429(self, st):
        self.fault_count("st_429")
        path = self.st_path(st)
        times = 1 + st["n"] % 2
        self.add_fault(self.s, {"status": 429, "body": {"error": "Too Many Requests"},
                                "headers": {"Retry-After": "1"}}, path, times)
        return f"See Tickets 429 Retry-After 1 on {path} x{times}"

    def do_st_5xx(self, st):
        self.fault_count("st_5xx")
        code = [500, 502, 503][st["n"] % 3]
        return self.timed_or_counted(self.s, st, {"status": code, "body": {"error": "oops"}},
                                     self.st_path(st), f"See Tickets {code}")

    def do_st_garbled(self, st):
        self.fault_count("st_garbled")
        action = [{"malformed": True}, {"truncate": True}, {"drop": True}][st["n"] % 3]
        path = self.st_path(st)
        times = 1 + int(st["a"] * 2)
        self.add_fault(self.s, action, path, times)
        return f"{list(action)[0]} page on {path} x{times}"

    def do_st_delay(self, st):
        self.fault_count("st_delay")
        ms = 300 + int(st["a"] * 1200)
        path = self.st_path(st)
        self.add_fault(self.s, {"delay_ms": ms}, path, 1 + st["n"] % 2)
        return f"{ms} ms delay on {path}"

    def st_config_for_a_while(self, st, body, label):
        self.s.post("/_fake/config", body)
        self.disturbed.add(label)
        if st["b"] < 0.3:
            return "until the next quiet point"
        secs = 1 + st["a"] * 1.5

        def restore():
            self.s.post("/_fake/config", {k: (0 if k == "page_cap" else False) for k in body})
            self.disturbed.discard(label)
        self.timers.add(secs, restore, label)
        return f"for {secs:.1f}s"

    def do_st_page_cap(self, st):
        self.fault_count("st_page_cap")
        cap = 1 + st["n"] % 3
        return f"short pages of {cap} " + self.st_config_for_a_while(st, {"page_cap": cap},
                                                                      "page_cap")

    def do_st_ignore_offset(self, st):
        self.fault_count("st_ignore_offset")
        return "See Tickets ignores offset " + self.st_config_for_a_while(
            st, {"ignore_offset": True}, "ignore_offset")

    def do_events_feed_down(self, st):
        """The events feed fails (every request, or every insert) while sales go on."""
        self.fault_count("events_feed_down")
        secs = 1.2 + st["a"] * 1.3
        n = 5 + int(st["b"] * 10)
        if st["c"] < 0.5 and self.cfg["bigquery.insert_method"] != '"load"':
            self.s.grow(sales=n, events=1)
            path = "/tables/events/insertAll"
            if "events" in self.p.tracked:
                path = r"/tables/events(?:_changes)?/insertAll"
                self.churn_some(st, "events down", 0.7, "events")
            self.add_fault(self.g, {"status": 503, "body": bq_error_body(503, "backendError",
                                                                        "down")},
                           path, 0)
            self.for_a_while(self.g, secs, "events inserts failing")
            return f"every events insert 503 for {secs:.1f}s while 1 event and {n} sales arrive"
        self.add_fault(self.s, {"status": 500, "body": {"error": "down"}}, "/v1/events/search", 0)
        self.for_a_while(self.s, secs, "events feed down")
        self.s.grow(sales=n)
        return f"every events request 500 for {secs:.1f}s while {n} sales arrive"

    # the daemon itself

    def do_sighup(self, st):
        changes = {}
        if st["a"] > 0.25:
            r = random.Random(st["n"])
            for key, values in (("seetickets.page_size", [str(x) for x in range(3, 26)]),
                                ("bigquery.batch_rows", [str(x) for x in (5, 10, 20, 50, 500)]),
                                ("log_level", ['"debug"', '"info"', '"notice"', '"warning"']),
                                ("sales.codes_per_request", ["1", "2", "3", "6"])):
                if r.random() < 0.4:
                    changes[key] = r.choice(values)
            if st["b"] < 0.15:
                changes["bigquery.insert_method"] = (
                    '"streaming"' if self.cfg["bigquery.insert_method"] == '"load"' else '"load"')
        self.cfg.update(changes)
        self.write_cfg()
        d = self.daemon
        if self.p.mode != "daemon" or d is None:
            return f"configuration changed: {changes or 'nothing'}"
        # Like systemd, which queues a reload until the service is up: SIGHUP's default
        # action would end a process that has not set its handler yet.
        try:
            H.wait_for(lambda: d.notified("READY=1") or d.proc.poll() is not None, 15, "READY")
        except AssertionError:
            return f"configuration changed, no SIGHUP (not ready): {changes or 'nothing'}"
        if d.proc.poll() is None:
            d.signal(signal.SIGHUP)
            self.counts["sighup"] += 1
        return f"SIGHUP with {changes or 'no change'}"

    def do_reconfigure(self, st):
        return self.do_sighup(st)

    def restart(self, st, how):
        d = self.daemon
        if how == "kill9":
            when = self.trigger(st)
            if d.proc.poll() is None:
                self.counts["kill9"] += 1
            self.kill_quietly(d)
            self.note(f"kill -9 {when}")
        else:
            when = self.trigger(st) if how == "sigterm" else "at once"
            self.counts["sigterm"] += 1
            self.stop_daemon(d)
            self.note(f"SIGTERM {when}")
        if st["a"] < 0.5:
            self.finish_orphans()
        time.sleep(st["c"] * 0.5)
        self.counts["restarts"] += 1
        self.start_daemon()
        if st["a"] >= 0.5:
            self.timers.add(0.5 + st["b"], self.finish_orphans, "orphan jobs")
        return f"{how} {when}, restarted"

    def do_restart(self, st):
        return self.restart(st, "restart")

    def do_kill9(self, st):
        self.s.grow(sales=5 + st["n"] % 20)  # something to do when it dies
        self.churn_some(st, "kill9", 0.7)
        return self.restart(st, "kill9")

    def do_sigterm(self, st):
        self.s.grow(sales=5 + st["n"] % 20)
        self.churn_some(st, "sigterm", 0.7)
        return self.restart(st, "sigterm")

    def do_events_spooled_restart(self, st):
        """New events whose inserts fail sit in the events spool when the daemon restarts;
        their sales must still be fetched once they land."""
        self.fault_count("events_spooled_restart")
        self.s.grow(events=1 + st["n"] % 2, sales=4 + int(st["b"] * 8))
        if self.cfg["bigquery.insert_method"] == '"load"':
            path = r"/upload/"
        elif "events" in self.p.tracked:
            path = r"/tables/events(?:_changes)?/insertAll"
        else:
            path = r"/tables/events/insertAll"
        self.churn_some(st, "events spooled", 0.7, "events")
        self.add_fault(self.g, {"status": 503, "body": bq_error_body(503, "backendError", "down")},
                       path, 0)
        if self.p.mode == "daemon":
            time.sleep(1.0 + st["c"] * 0.5)
            how = "kill9" if st["a"] < 0.5 else "restart"
            d = self.daemon
            if how == "kill9":
                self.counts["kill9"] += 1
                self.kill_quietly(d)
            else:
                self.counts["sigterm"] += 1
                self.stop_daemon(d)
            self.counts["restarts"] += 1
            self.start_daemon()
            self.for_a_while(self.g, 0.3 + st["c"] * 1.5, "events inserts failing")
            return f"new events, inserts failing on {path}, {how}, cleared soon after"
        self.starting()
        d = Daemon(self.dir, self.cfg_path, "--once", notify=False, env=self.env)
        self.daemons.append(d)
        self.counts["once_runs"] += 1
        time.sleep(1.0 + st["c"])
        if st["a"] < 0.5:
            self.counts["kill9"] += 1
            self.kill_quietly(d)
            how = "kill -9"
        else:
            self.counts["sigterm"] += 1
            self.stop_daemon_once(d)
            how = "SIGTERM"
        self.g.clear_faults()
        return f"new events, inserts failing on {path}, --once stopped by {how}, fault cleared"

    def do_deadletter_unwritable(self, st):
        if "deadletter" in self.disturbed or "disk_full" in self.disturbed:
            return "dead letters unwritable already, or the disk is full"
        self.fault_count("deadletter_unwritable")
        feed = "sales" if st["b"] < 0.7 else "events"
        self.make_deadletter_unwritable(feed)
        kind = "uncoercible" if feed == "sales" else "bad_bool"
        what = self.plant_bad(feed, kind, st["n"])
        if st["c"] < 0.3:
            return f"rejected-{feed}.ndjson unwritable until the next quiet point; {what}"
        secs = 1 + st["a"] * 1.5
        self.timers.add(secs, self.restore_deadletter, "dead letters unwritable")
        return f"rejected-{feed}.ndjson unwritable for {secs:.1f}s; {what}"

    def do_disk_full(self, st):
        if "disk_full" in self.disturbed:
            return "disk full already"
        self.fault_count("disk_full")
        self.disk_fill()
        n = 5 + int(st["b"] * 10)
        self.s.grow(sales=n)
        if st["c"] < 0.25:
            return f"disk full until the next quiet point; {n} new sales"
        secs = 1 + st["a"] * 1.5
        self.timers.add(secs, self.disk_free, "disk full")
        return f"disk full for {secs:.1f}s; {n} new sales"

    def do_bulk_kill(self, st):
        """More than one load job's worth of rows in one drain, stopped between its jobs."""
        self.fault_count("bulk_kill")
        self.s.grow(sales=BULK_SALES)
        base = self.stats(self.g, "bigquery.jobs.insert.upload")
        want = 2 + st["n"] % 2
        if self.p.mode == "daemon":
            d = self.daemon
        else:
            self.starting()
            d = Daemon(self.dir, self.cfg_path, "--once", notify=False, env=self.env)
            self.daemons.append(d)
            self.counts["once_runs"] += 1
        end = time.monotonic() + 30
        while time.monotonic() < end and d.proc.poll() is None and \
                self.stats(self.g, "bigquery.jobs.insert.upload") < base + want:
            time.sleep(0.01)
        how = "kill9" if st["a"] < 0.6 else "sigterm"
        if how == "kill9":
            self.counts["kill9"] += 1
            self.kill_quietly(d)
        else:
            self.counts["sigterm"] += 1
            if self.p.mode == "daemon":
                self.stop_daemon(d)
            else:
                self.stop_daemon_once(d)
        if self.p.mode == "daemon":
            self.counts["restarts"] += 1
            self.start_daemon()
        # The job the daemon was waiting for ends a little later, on BigQuery's own time:
        # after the next daemon has read the table and cut its own jobs.
        self.timers.add(0.5 + st["b"] * 1.5, self.finish_orphans, "orphan jobs")
        return f"{BULK_SALES} new sales, {how} after {want} load jobs"

    def do_check(self, st):
        self.quiet_point("mid-schedule")
        return "quiet point passed"

    # ---- --once runs ------------------------------------------------------------------------

    def stop_daemon_once(self, d):
        d.signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.v.add("--once did not stop within %ds of SIGTERM" % STOP_WITHIN_S)
            self.kill_quietly(d)
            return None
        self.kill_quietly(d)
        # 75 for the work cut short; 69 or 0 when the run had already failed or finished.
        if rc not in (0, 69, 75, -signal.SIGTERM):
            self.v.add("--once exited with an undocumented status after SIGTERM", rc)
        return rc

    def once(self, disturbance="none", st=None, strict=None):
        """One --once run; returns its status (None when killed)."""
        active = self.faults_active()
        self.starting()
        d = Daemon(self.dir, self.cfg_path, "--once", notify=False, env=self.env)
        self.daemons.append(d)
        self.counts["once_runs"] += 1
        t = time.monotonic()
        rc = None
        if disturbance == "kill9":
            when = self.trigger(st)
            if d.proc.poll() is None:
                self.counts["kill9"] += 1
            self.kill_quietly(d)
            self.note(f"--once killed -9 {when}")
            if st["a"] < 0.5:
                self.finish_orphans()
            return None
        if disturbance == "sigterm":
            when = self.trigger(st)
            if d.proc.poll() is None:
                self.counts["sigterm"] += 1
                rc = self.stop_daemon_once(d)
                self.note(f"--once SIGTERM {when}: exit {rc}")
                return rc
        if disturbance == "clear":
            time.sleep(0.3 + st["c"] * 1.5)
            self.restore_all()
            self.note("faults cleared while --once runs")
        try:
            rc = d.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.v.add("--once did not finish within 120 s")
            self.kill_quietly(d)
            return None
        self.kill_quietly(d)
        self.note(f"--once exit {rc} in {time.monotonic() - t:.1f}s"
                  + (" (faults active)" if active else ""))
        strict = (not active and disturbance == "none") if strict is None else strict
        if rc not in (0, 69, 75) or (strict and rc != 0):
            self.v.add("--once exited with status %s" % rc + ("" if active else
                                                              " although no fault was active"),
                       " | ".join(file_tail(d.stderr_path, 4)))
        if rc == 0:
            self.verify("after --once exit 0", quiet=False)
        return rc

    def do_run_once(self, st):
        x = st["a"]
        dist = "kill9" if x < 0.15 else "sigterm" if x < 0.25 else \
            "clear" if x < 0.45 else "none"
        self.churn_some(st, "once", 0.5)
        rc = self.once(dist, st)
        return f"--once ({dist}) -> {rc}"

    # ---- quiet points and the invariant ----------------------------------------------------

    def quiet_point(self, where):
        self.counts["checks"] += 1
        self.restore_all()
        self.finish_orphans()
        if self.p.mode == "daemon":
            self.supervise()
            d = self.daemon
            t0 = time.monotonic()
            start = len(d.notified(""))

            def polls(feed, since):
                return self.status_lines(d, feed, since)
            try:
                H.wait_for(lambda: len(polls("events", start)) >= 2 or d.proc.poll() is not None,
                           QUIET_TIMEOUT_S, "two events polls")
                if d.proc.poll() is not None:
                    raise AssertionError("daemon exited")
                # The second events poll began after the faults were cleared; the loop runs
                # one poll at a time, so the next sales poll begins after it, on a clean slate.
                mid = polls("events", start)[1][0] + 1
                H.wait_for(lambda: len(polls("sales", mid)) >= 1 or d.proc.poll() is not None,
                           QUIET_TIMEOUT_S, "a sales poll")
            except AssertionError as e:
                self.supervise()
                self.v.add(f"no fresh polls at a quiet point ({e})",
                           " | ".join(file_tail(d.stderr_path, 4)))
                return
            self.note(f"quiet: fresh polls after {time.monotonic() - t0:.1f}s")
            for feed in FEEDS:
                last = polls(feed, start)[-1][1]
                if "failed" in last:
                    self.v.add("a poll still fails with every fault cleared", last)
        else:
            for attempt in range(3):
                rc = self.once("none", strict=False)
                if rc == 0:
                    break
            else:
                self.v.add("--once never exited 0 with every fault cleared")
        self.finish_orphans()
        self.verify(where, quiet=True)

    def fake_rejected(self):
        """Rows the fake BigQuery refused as `invalid` because a fault told it to, as the
        daemon sent them: {feed: [rows]}."""
        out = {"sales": [], "events": [], "sales_changes": [], "events_changes": []}
        if not self.refusal_faults:
            return out  # reading the request log costs seconds when it holds big load jobs
        offered = {t: set() for t in out}  # insertIds BigQuery has processed
        self.refused_after_stored = set()
        self.refused_after_stored_changes = set()
        for r in self.g.requests():
            f = r.get("fault") or {}
            if r.get("status") != 200:
                continue
            m = re.search(r"/tables/([^/]+)/insertAll$", r["path"])
            if m and m.group(1) in out and not f.get("insert_errors") and not f.get("malformed"):
                try:
                    offered[m.group(1)].update(str(x.get("insertId"))
                                               for x in json.loads(r["body"])["rows"])
                except (ValueError, KeyError, TypeError, AttributeError):
                    pass
            if not f:
                continue
            if m and f.get("insert_errors"):
                try:
                    rows = json.loads(r["body"])["rows"]
                except (ValueError, KeyError, TypeError):
                    continue
                for e in f["insert_errors"]:
                    i = int(e["index"])
                    if e.get("reason", "invalid") == "invalid" and 0 <= i < len(rows) and \
                            m.group(1) in out:
                        out[m.group(1)].append(rows[i].get("json") or {})
                        # A fault can refuse a row that an earlier request whose answer was
                        # lost had stored; real BigQuery judges a row by its content and
                        # could not. Landed and dead-lettered is no fault of the daemon then.
                        if str(rows[i].get("insertId")) in offered[m.group(1)]:
                            self.refused_after_stored.add((m.group(1),
                                                           str(rows[i].get("insertId"))))
                            if m.group(1).endswith("_changes"):
                                j = rows[i].get("json") or {}
                                self.refused_after_stored_changes.add(
                                    (m.group(1), api_key(m.group(1)[:-8], j),
                                     observed_us(j.get("_observed_at"))))
            elif "/upload/" in r["path"] and (f.get("job_error") or {}).get("reason") == "invalid":
                table, rows = None, []
                for line in (r.get("body") or "").split("\n"):
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    try:
                        o = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(o, dict) and "configuration" in o:
                        table = o["configuration"].get("load", {}).get(
                            "destinationTable", {}).get("tableId")
                    elif isinstance(o, dict):
                        rows.append(o)
                if table in out and len(rows) == 1:
                    out[table].append(rows[0])
        return out

    def read_dl(self, feed):
        path = self.dl_path(feed)
        if not os.path.isfile(path):
            return [], []
        recs, bad = [], []
        with open(path, "rb") as f:
            data = f.read()
        for i, line in enumerate(data.split(b"\n")):
            if not line.strip():
                continue
            try:
                o = json.loads(line.decode("utf-8"))
                if not isinstance(o, dict):
                    raise ValueError("not an object")
            except ValueError:
                bad.append(f"line {i + 1}: {line[:120]!r}")
                continue
            recs.append(o)
        if data and not data.endswith(b"\n"):
            bad.append("the file does not end with a newline")
        return recs, bad

    def verify(self, where, quiet):
        v = self.v
        before = sum(n for n, _ in v.kinds.values())
        now = time.time()
        cutoff = now - self.p.lookback * 86400
        truth = {f: self.truth(f) for f in FEEDS}
        landed = {f: self.g.rows(f) for f in FEEDS}
        rejected = self.fake_rejected()
        dls = {}
        for feed in FEEDS:
            dls[feed], bad = self.read_dl(feed)
            for b in bad:
                v.add(f"{feed}: unreadable dead-letter line", b)

        info = {}
        keyless = {f: [] for f in FEEDS}
        for feed in FEEDS:
            inf = info[feed] = {}

            def ent(k):
                return inf.setdefault(k, {"good": [], "good_api": [], "bad_api": [], "bad_raw": [],
                                          "cur": None, "cur_api": None, "raw": None,
                                          "event": None})
            for api in truth[feed]:
                k = api_key(feed, api)
                c = good_coerce(feed, api)
                if k is None:
                    keyless[feed].append(api)
                    continue
                e = ent(k)
                e["cur"], e["cur_api"] = c, api
                (e["good"] if c else e["bad_api"]).append(c or api)
                if c:
                    e["good_api"].append(api)
                if feed == "sales":
                    e["event"] = served_event(api)
            for k, olds in self.history[feed].items():
                e = ent(k)
                for api in olds:
                    c = good_coerce(feed, api)
                    (e["good"] if c else e["bad_api"]).append(c or api)
                    if c:
                        e["good_api"].append(api)
            for ident, spec in self.raw.items():
                if spec["feed"] != feed:
                    continue
                e = ent(spec["key"])
                e["raw"] = spec
                e["cur"] = spec["coerced"]
                e["cur_api"] = None
                if spec["good"]:
                    e["good"].append(spec["coerced"])
                    e["good_api"].append(spec["api"])
                else:
                    e["bad_raw"].append(spec)
                if feed == "sales":
                    e["event"] = spec["event"] or UNOWNED
                for old in self.raw_old.get(ident, []):
                    if old["good"]:
                        e["good"].append(old["coerced"])
                    else:
                        e["bad_raw"].append(old)

        def refused_now(feed, c):
            return any(same_row(feed, c, r) for r in rejected[feed])

        dl_by_key = {f: {} for f in FEEDS}
        for feed in FEEDS:
            for rec in dls[feed]:
                row = rec.get("row")
                k = api_key(feed, row) if isinstance(row, dict) else None
                if k is not None:
                    dl_by_key[feed].setdefault(k, []).append(rec)

        def dl_refused(feed, k, c):
            return any(rec.get("stage") == "bigquery" and isinstance(rec.get("row"), dict)
                       and same_row(feed, rec["row"], c) for rec in dl_by_key[feed].get(k, []))

        # Which events' sales the daemon must ask for.
        ev_landed = {r.get("id") for r in landed["events"]}
        status = {}
        for k, e in info["events"].items():
            c = e["cur"]
            if c is None:
                status[k] = "bad"
            elif refused_now("events", c) and k not in ev_landed:
                status[k] = "refused"
            else:
                t = parse_starts(c.get("starts"))
                if t is None or t >= cutoff + LOOKBACK_MARGIN_S:
                    status[k] = "selected"
                elif t <= cutoff - LOOKBACK_MARGIN_S:
                    status[k] = "excluded"
                else:
                    status[k] = "uncertain"
        any_selected = "selected" in status.values()

        def required(feed, ev):
            if feed == "events":
                return True
            if ev == UNOWNED:
                return any_selected
            return status.get(ev) == "selected"

        for feed in FEEDS:
            kc = KEYS[feed]
            inf = info[feed]
            by_key = {}
            for r in landed[feed]:
                by_key.setdefault(r.get(kc), []).append(r)
            for k, rows in sorted(by_key.items(), key=lambda x: str(x[0])):
                if len(rows) > 1:
                    v.add(f"{feed}: landed more than once", f"{k} x{len(rows)}")
                e = inf.get(k)
                if e is None:
                    v.add(f"{feed}: landed although no source row has its key", k)
                    continue
                if not e["good"]:
                    v.add(f"{feed}: landed although no version of it was good", k)
                    continue
                for r in rows:
                    if not any(same_row(feed, r, g) for g in e["good"]):
                        v.add(f"{feed}: landed with values of no version of the source row",
                              f"{k}: {row_diff(feed, r, e['good'][-1])}")
                    if dl_refused(feed, k, r) and not self.dl_blind_start and \
                            (feed, str(k)) not in self.refused_after_stored:
                        v.add(f"{feed}: landed and dead-lettered", k)
            for k, e in sorted(inf.items()):
                if k in by_key or not required(feed, e["event"]):
                    continue
                c = e["cur"]
                if c is not None:
                    if refused_now(feed, c) and dl_refused(feed, k, c):
                        continue  # BigQuery refused this very version: dead-lettered
                    what = k if feed == "events" else f"{k} (event {e['event']})"
                    v.add(f"{feed}: good row missing", what)
                elif e["raw"] is not None and not e["raw"]["good"]:
                    if not any(self.dl_matches_raw(rec, e["raw"]) for rec in dls[feed]):
                        v.add(f"{feed}: bad raw row not dead-lettered",
                              f"{k} ({e['raw']['kind']})")
                elif e["cur_api"] is not None:
                    if not self.dl_has(feed, e["cur_api"], dls[feed]):
                        v.add(f"{feed}: bad row not dead-lettered", k)
            for api in keyless[feed]:
                if feed == "sales" and not required(feed, served_event(api)):
                    continue
                if not self.dl_has(feed, api, dls[feed]):
                    v.add(f"{feed}: row without a key not dead-lettered",
                          self.keyless_marker(feed, api))
            self.check_dead_letters(feed, dls[feed], inf, keyless[feed], rejected, v)

        settled = quiet or where.startswith("after --once")
        n_changes = {}
        for feed in self.p.tracked:
            n_changes[feed] = self.check_changes(feed, landed[feed], info[feed], required,
                                                 refused_now, rejected, v, settled)

        if settled:
            spool = os.path.join(self.state, "spool")
            files = os.listdir(spool) if os.path.isdir(spool) else []
            segs = sorted(f for f in files if f.endswith(".ndjson"))
            unread = sorted(f for f in files if f.endswith(".unreadable"))
            # FEED-SEQ.ndjson; with tracking, FEED_changes-SEQ.ndjson hold changed versions.
            csegs = [f for f in segs if re.match(r"(sales|events)_changes-", f)]
            segs = [f for f in segs if f not in csegs]
            if segs:
                v.add("spool segments left", segs[:5])
            if csegs:
                v.add("changes spool segments left (changed versions never confirmed)",
                      csegs[:5])
            if unread:
                v.add("unreadable spool files", unread[:5])
        for d in self.daemons:
            err = "\n".join(file_tail(d.stderr_path, 1000000))
            for marker in ("Sanitizer", "runtime error:"):
                if marker in err:
                    v.add("sanitizer report", marker)
            if API_KEY in err:
                v.add("the API key is in the log")
        for e in self.timers.errors:
            v.add("test machinery error", e)
        self.timers.errors.clear()
        after = sum(n for n, _ in v.kinds.values())
        n_land = {f: len(landed[f]) for f in FEEDS}
        n_dl = {f: len(dls[f]) for f in FEEDS}
        self.note(f"check {where}: landed {n_land}, dead letters {n_dl}"
                  + (f", changes (rows, dead letters, current checked) {n_changes}"
                     if n_changes else "")
                  + ("" if after == before else f": {after - before} violations"))
        if after != before:
            raise ScheduleFailed(where)

    def check_changes(self, feed, base_rows, inf, required, refused_now, rejected, v,
                      settled):
        """track_changes: F_changes, rejected-F_changes.ndjson and the view F_current against
        the source's versions. Returns (change rows, changes dead letters, keys whose
        F_current row was compared with the source)."""
        kc = KEYS[feed]
        table = feed + "_changes"
        ch = self.g.rows(table)
        dls, bad = self.read_dl(table)
        for b in bad:
            v.add(f"{table}: unreadable dead-letter line", b)
        refused = rejected.get(table, [])

        def fp_ok(r):
            fp = r.get("_fingerprint")
            return isinstance(fp, str) and FINGERPRINT_RE.fullmatch(fp) is not None

        base_by = {}
        for r in base_rows:
            if not fp_ok(r):
                v.add(f"{feed}: base row without a _fingerprint of 16 lowercase hex digits",
                      f"{r.get(kc)}: {r.get('_fingerprint')!r}")
            base_by.setdefault(r.get(kc), []).append(r)
        # One fingerprint, one content (a hash of the row's columns): what the sequences
        # below compare stands for the content.
        by_fp = {}
        for r in base_rows + ch:
            fp = r.get("_fingerprint")
            if not isinstance(fp, str):
                continue
            o = by_fp.setdefault(fp, r)
            if o is not r and not same_row(feed, o, r):
                v.add(f"{feed}: one _fingerprint for two different versions",
                      f"{fp}: {o.get(kc)} and {r.get(kc)}: {row_diff(feed, r, o)}")

        hist = {}  # key -> [(_observed_at µs, 0 table / 1 dead letter, fingerprint)]
        stored = set()  # (key, _observed_at µs) of the change rows
        for r in ch:
            k = r.get(kc)
            if not fp_ok(r):
                v.add(f"{table}: change row without a _fingerprint of 16 lowercase hex digits",
                      f"{k}: {r.get('_fingerprint')!r}")
            obs = observed_us(r.get("_observed_at"))
            if obs is None:
                v.add(f"{table}: change row without a readable _observed_at",
                      f"{k}: {r.get('_observed_at')!r}")
                continue
            if (k, obs) in stored:
                v.add(f"{table}: the same (key, _observed_at) stored twice",
                      f"{k} at {r.get('_observed_at')}")
                continue
            stored.add((k, obs))
            e = inf.get(k)
            if e is None or not e["good"]:
                v.add(f"{table}: change row of a key no good source version has", k)
            elif not any(same_row(feed, r, g) for g in e["good"]):
                v.add(f"{table}: change row with values of no version of the source row",
                      f"{k}: {row_diff(feed, r, e['good'][-1])}")
            if k not in base_by:
                v.add(f"{table}: change row of a key the base table does not hold", k)
            hist.setdefault(k, []).append((obs, 0, r.get("_fingerprint")))

        seen = set()
        for rec in dls:
            c = canon([rec.get("stage"), rec.get("row")])
            if not self.dead_letter_sound(table, rec, seen, v):
                continue
            row, stage = rec.get("row"), rec.get("stage")
            if not isinstance(row, dict):
                v.add(f"{table}: dead letter whose row is not an object", c[:100])
                continue
            k = api_key(feed, row)
            if stage != "bigquery":
                v.add(f"{table}: a changed version dead-lettered at stage {stage!r}", k)
                continue
            if not any(same_row(feed, row, x) and x.get("_fingerprint") ==
                       row.get("_fingerprint") for x in refused):
                v.add(f"{table}: dead-lettered at the bigquery stage though BigQuery was not "
                      "made to refuse it", k)
            e = inf.get(k)
            if e is None or not any(same_row(feed, row, g) for g in e["good"]):
                v.add(f"{table}: dead letter with values of no version of the source row", k)
            obs = observed_us(row.get("_observed_at"))
            if obs is None:
                v.add(f"{table}: dead letter without a readable _observed_at", k)
                continue
            if (k, obs) in stored:
                # The very version the table holds: only a fault refusing what a request
                # whose answer was lost had stored can do that (not real BigQuery).
                if (table, k, obs) not in self.refused_after_stored_changes:
                    v.add(f"{table}: landed and dead-lettered", f"{k} at {row['_observed_at']}")
                continue
            hist.setdefault(k, []).append((obs, 1, row.get("_fingerprint")))

        # Each key's versions in the order the daemon saw them: the base row, then the change
        # rows and the changes dead letters by _observed_at. Two neighbours never hold the same
        # version: the daemon sends a version only when it differs from the key's last one, and
        # a refused version stays the last one (A, B refused, A again is right; A, A is not).
        aba = back = 0
        for k, items in sorted(hist.items(), key=lambda x: str(x[0])):
            base = base_by.get(k)
            if not base or len(base) != 1 or (feed, str(k)) in self.refused_after_stored:
                continue
            prev, prev_dl = base[0].get("_fingerprint"), False
            table_fps = [prev]
            for obs, is_dl, fp in sorted(items):
                if fp == prev:
                    if not is_dl and not prev_dl:
                        v.add(f"{feed}: the same version recorded twice in a row", f"{k}: {fp}")
                    elif not is_dl:
                        v.add(f"{table}: a version BigQuery refused was sent again and landed",
                              f"{k}: {fp}")
                    elif prev_dl:
                        v.add(f"{table}: a refused version sent again and refused again",
                              f"{k}: {fp}")
                    else:
                        v.add(f"{table}: a recorded version sent again (and refused)",
                              f"{k}: {fp}")
                prev, prev_dl = fp, bool(is_dl)
                if not is_dl:
                    table_fps.append(fp)
            if len(set(table_fps)) < len(table_fps):
                aba += 1
            seq = [(None, 0, base[0].get("_fingerprint"))] + sorted(items)
            if any(seq[i][1] == 0 and seq[i + 1][1] == 1 and seq[i + 2][1] == 0 and
                   seq[i][2] == seq[i + 2][2] for i in range(len(seq) - 2)):
                back += 1  # A, B refused, A again: right, and rare

        n_cur = 0
        if settled:
            cur_by = {}
            for r in self.g.rows(feed + "_current"):
                cur_by.setdefault(r.get(kc), []).append(r)
            for k, rs in sorted(cur_by.items(), key=lambda x: str(x[0])):
                if len(rs) > 1:
                    v.add(f"{feed}_current: a key more than once", f"{k} x{len(rs)}")
            for k in sorted(base_by, key=str):
                e = inf.get(k)
                if e is None or not required(feed, e["event"]):
                    continue
                c = e["cur"]
                if c is None or refused_now(feed, c) or \
                        any(same_row(feed, c, x) for x in refused) or \
                        (feed, str(k)) in self.refused_after_stored:
                    continue  # bad now, or BigQuery was made to refuse this very version
                n_cur += 1
                got = cur_by.get(k)
                if not got:
                    v.add(f"{feed}_current: a key of the base table missing", k)
                elif not same_row(feed, got[0], c):
                    v.add(f"{feed}_current: stale (not the source's current version)",
                          f"{k}: {row_diff(feed, got[0], c)}")
        cnt = self.counts
        cnt["change_rows_checked"] += len(ch)
        if settled:
            cnt["current_checked"] += n_cur
        self.last_changes[feed] = (len(ch), len(dls), aba, back)
        cnt["change_rows"] = sum(x[0] for x in self.last_changes.values())
        cnt["change_dead_letters"] = sum(x[1] for x in self.last_changes.values())
        cnt["aba_keys"] = sum(x[2] for x in self.last_changes.values())
        cnt["back_over_refused"] = sum(x[3] for x in self.last_changes.values())
        return (len(ch), len(dls), n_cur)

    def dl_matches_raw(self, rec, spec):
        row = rec.get("row")
        if isinstance(row, str):
            return spec["key"] in row
        return isinstance(row, dict) and api_key(spec["feed"], row) == spec["key"]

    @staticmethod
    def dead_letter_sound(what, rec, seen, v, twice_ok=False):
        """What every dead letter (of rows or of changed versions) must be: not written
        twice, complete, not an unreadable spool line. False when the record is not
        to be looked at further (an unreadable spool line)."""
        c = canon([rec.get("stage"), rec.get("row")])
        if c in seen and not twice_ok:
            v.add(f"{what}: dead-lettered twice", c[:160])
        seen.add(c)
        if not all(k in rec for k in ("row", "reason", "time", "stage")) or \
                not isinstance(rec.get("reason"), str) or not rec["reason"]:
            v.add(f"{what}: dead letter without row, reason, time and stage", c[:160])
        if rec.get("stage") == "spool":
            v.add(f"{what}: a spool line was unreadable", str(rec.get("row"))[:100])
            return False
        return True

    def check_dead_letters(self, feed, recs, inf, keyless, rejected, v):
        seen = set()
        specs = list(self.raw.values()) + [s for olds in self.raw_old.values() for s in olds]
        specs = [s for s in specs if s["feed"] == feed]
        keyless_c = {canon(a) for a in keyless}
        for rec in recs:
            c = canon([rec.get("stage"), rec.get("row")])
            if not self.dead_letter_sound(feed, rec, seen, v, twice_ok=self.dl_blind_start):
                continue
            row, stage = rec.get("row"), rec.get("stage")
            k = api_key(feed, row) if isinstance(row, dict) else None
            e = inf.get(k) if k is not None else None
            has_bad = e is not None and (e["bad_api"] or e["bad_raw"])
            if stage == "bigquery":
                if isinstance(row, dict) and (any(same_row(feed, row, r) for r in rejected[feed])
                                              or has_bad):
                    continue
                v.add(f"{feed}: dead-lettered at the bigquery stage though BigQuery was not made "
                      "to refuse it", k)
                continue
            if isinstance(row, str):
                hits = [s for s in specs if s["key"] in row]
                if not hits:
                    v.add(f"{feed}: dead letter of raw text matching no planted row", row[:100])
                elif all(s["good"] for s in hits):
                    v.add(f"{feed}: a good raw row was dead-lettered", hits[0]["key"])
                elif not any(norm_hex(raw_text(s["data"])) == norm_hex(row) for s in hits
                             if not s["good"]):
                    v.add(f"{feed}: dead letter does not quote the raw row as it came",
                          f"{row[:100]!r} vs {raw_text(hits[0]['data'])[:100]!r}")
                continue
            if not isinstance(row, dict):
                v.add(f"{feed}: dead letter whose row is neither an object nor text", c[:100])
                continue
            if e is None:
                if canon(row) in keyless_c or any(self.keyless_marker(feed, a) in c
                                                  for a in keyless):
                    continue
                v.add(f"{feed}: dead letter matching no source row", c[:160])
                continue
            if e["bad_api"] or e["bad_raw"]:
                continue  # a version of this row was bad (the daemon may quote it its own way)
            if any(canon(row) == canon(a) for a in e["good_api"]):
                v.add(f"{feed}: a good row was dead-lettered", k)
            else:
                v.add(f"{feed}: a row none of whose versions was bad was dead-lettered", k)

    @staticmethod
    def keyless_marker(feed, api):
        """The value that names a planted row without a key (see plant_bad)."""
        return str(api.get("offerCode") if feed == "sales" else api.get("name"))

    def dl_has(self, feed, api, recs):
        """Is this bad API row in the dead letters: as it came, or (the daemon may quote a row
        its own way) a dead letter of the same key, or naming its marker if it has no key?"""
        want = canon(api)
        k = api_key(feed, api)
        for rec in recs:
            row = rec.get("row")
            if canon(row) == want:
                return True
            if k is not None and isinstance(row, dict) and api_key(feed, row) == k and \
                    rec.get("stage") != "bigquery":
                return True
            if k is None and self.keyless_marker(feed, api) in canon(row):
                return True
        return False

    # ---- the whole schedule ---------------------------------------------------------------

    def run(self):
        self.setup()
        if self.p.mode == "daemon":
            d = self.start_daemon()
            try:
                d.wait_notify("READY=1", 30)
            except AssertionError as e:
                self.v.add("daemon did not become ready", str(e)[:200])
                raise ScheduleFailed("start") from None
        else:
            self.once("none", strict=True)
        for i, st in enumerate(self.p.steps):
            self.step(st)
            if self.p.mode == "daemon":
                time.sleep(0.05 + st["pause"] * 0.5)
                self.supervise()
            if self.v:  # an exit status, a slow stop, a crash: no need to go on
                raise ScheduleFailed(f"step {i + 1} ({st['kind']})")
        self.quiet_point("end of schedule")
        if self.p.mode == "daemon":
            self.counts["sigterm"] += 1
            self.stop_daemon(self.daemon)
        if self.v:
            raise ScheduleFailed("final stop")


def run_schedule(seed):
    """Run one schedule; a dict that the parent prints (the children print nothing)."""
    plan = Plan(seed)
    s = Schedule(plan)
    failed, lines = False, []
    try:
        s.run()
    except ScheduleFailed as e:
        failed = True
        lines.append(f"failed at: {e}")
    except Exception:  # noqa: BLE001 - the machinery broke: a failure too, with its trace
        failed = True
        s.v.add("test machinery error", traceback.format_exc().splitlines()[-1])
        lines += traceback.format_exc().splitlines()
    finally:
        try:
            s.teardown(failed)
        except Exception:  # noqa: BLE001
            lines += traceback.format_exc().splitlines()
    if failed:
        lines += ["violations:"] + ["  " + x for x in s.v.lines()]
        lines += ["steps:"] + ["  " + x for x in s.log]
        for d in s.daemons[-2:]:
            lines += [f"stderr of pid {d.proc.pid} (last 40 lines):"]
            lines += ["  " + x for x in file_tail(d.stderr_path, 40)]
        lines += [f"kept {s.dir} for inspection; repeat with STBQ_CHAOS_SEED={seed}"]
    elif VERBOSE:
        lines += ["steps:"] + ["  " + x for x in s.log]
    return {"seed": seed, "ok": not failed, "secs": round(time.monotonic() - s.t0, 2),
            "desc": plan.describe(), "mode": plan.mode, "method": plan.method,
            "counts": s.counts, "violations": s.v.lines(), "lines": lines}


# ------------------------------------------------------------------------------------- main

def main():
    # SIGTERM unwinds like an exception, so that every schedule's teardown still stops its
    # processes and unmounts its tmpfs (forked workers inherit the handler).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if not os.access(H.STBQ_BIN, os.X_OK):
        print(f"not ok 1 - daemon not built at {H.STBQ_BIN}")
        print("1..1")
        return 1
    if ONE_SEED is not None:
        seeds = [ONE_SEED]
        print(f"# chaos: the single schedule STBQ_CHAOS_SEED={ONE_SEED}")
    else:
        base = int(ENV.get("STBQ_CHAOS_BASE_SEED") or random.randrange(1, 1 << 31))
        r = random.Random(base)
        seeds = [r.randrange(1, 1 << 31) for _ in range(N_SCHEDULES)]
        print(f"# chaos: {N_SCHEDULES} schedules, {JOBS} at a time, base seed {base} "
              f"(STBQ_CHAOS_BASE_SEED={base} repeats the run)"
              + (f", no new schedule after {BUDGET_S} s" if BUDGET_S else ""))
    if SKIP:
        print(f"# chaos: never drawing {', '.join(sorted(SKIP))}")
    print("# disk-full steps: " + ("a small tmpfs per schedule" if TMPFS else
                                   "skipped (cannot mount a tmpfs here; needs root)"))
    sys.stdout.flush()
    t0 = time.monotonic()
    results, n = [], 0

    def report(res):
        nonlocal n
        n += 1
        results.append(res)
        print(f"# schedule {res['desc']}")
        for line in res["lines"]:
            print(f"# {line}")
        print(f"{'ok' if res['ok'] else 'not ok'} {n} - schedule seed={res['seed']} "
              f"{res['mode']}/{res['method']} {res['counts']['steps']} steps "
              f"{res['secs']:.1f}s", flush=True)

    def over_budget():
        return BUDGET_S is not None and time.monotonic() - t0 > BUDGET_S

    skipped = 0
    if JOBS == 1:
        for i, seed in enumerate(seeds):
            if over_budget():
                skipped = len(seeds) - i
                break
            report(run_schedule(seed))
    else:
        ctx = multiprocessing.get_context("fork")
        with concurrent.futures.ProcessPoolExecutor(JOBS, mp_context=ctx) as pool:
            pending, it = set(), iter(seeds)
            while True:
                while len(pending) < JOBS and not over_budget():
                    seed = next(it, None)
                    if seed is None:
                        break
                    pending.add(pool.submit(run_schedule, seed))
                if not pending:
                    break
                done, pending = concurrent.futures.wait(
                    pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for f in done:
                    report(f.result())
            skipped = len(seeds) - len(results)
    summary = {"schedules": len(results), "failed": sum(not r["ok"] for r in results),
               "skipped_for_time": skipped, "secs": round(time.monotonic() - t0, 1),
               "steps": 0, "kill9": 0, "sigterm": 0, "sighup": 0, "restarts": 0,
               "supervisor_restarts": 0, "once_runs": 0, "checks": 0, "faults": {},
               "failed_seeds": [r["seed"] for r in results if not r["ok"]],
               "median_schedule_secs": (sorted(r["secs"] for r in results)[len(results) // 2]
                                        if results else 0),
               "schedules_detail": [{k: r[k] for k in ("seed", "ok", "secs", "desc",
                                                       "violations")} for r in results]}
    for r in results:
        for k, x in r["counts"].items():
            if k == "faults":
                for fk, fn in x.items():
                    summary["faults"][fk] = summary["faults"].get(fk, 0) + fn
            else:
                summary[k] = summary.get(k, 0) + x
    faults = ", ".join(f"{k}={v}" for k, v in sorted(summary["faults"].items()))
    print(f"# chaos summary: schedules={summary['schedules']} failed={summary['failed']} "
          f"steps={summary['steps']} kill9={summary['kill9']} sigterm={summary['sigterm']} "
          f"sighup={summary['sighup']} restarts={summary['restarts']} "
          f"once_runs={summary['once_runs']} checks={summary['checks']} "
          f"median={summary['median_schedule_secs']}s total={summary['secs']}s"
          + (f" skipped_for_time={skipped}" if skipped else ""))
    print(f"# chaos changes: tracked_schedules={summary.get('tracked', 0)} "
          f"keys_churned={summary.get('churned', 0)} reverted={summary.get('reverted', 0)} "
          f"change_rows={summary.get('change_rows', 0)} "
          f"change_rows_checked={summary.get('change_rows_checked', 0)} "
          f"change_dead_letters={summary.get('change_dead_letters', 0)} "
          f"aba_keys={summary.get('aba_keys', 0)} "
          f"back_over_refused={summary.get('back_over_refused', 0)} "
          f"current_rows_checked={summary.get('current_checked', 0)}")
    print(f"# chaos faults: {faults}")
    if summary["failed_seeds"]:
        print(f"# failed seeds: {' '.join(map(str, summary['failed_seeds']))}")
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"1..{n}", flush=True)
    return 1 if summary["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

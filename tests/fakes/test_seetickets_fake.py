#!/usr/bin/python3
"""TAP tests of tests/fakes/seetickets-fake, driven over HTTP as a client would."""

import base64
import datetime as dt
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "seetickets-fake")
KEY = "test-key-7f3a9c"
NOW = "2026-06-15T00:00:00Z"
NOW_T = dt.datetime(2026, 6, 15, tzinfo=dt.timezone.utc)

EVENT_FIELDS = {"id", "name", "promoterName", "tourName", "tourId", "venueName", "starts",
                "doorsOpen", "timeslotEnabled"}
SALE_FIELDS = {"uniqueCode", "eventId", "eventName", "eventDate", "date", "affiliate", "currency",
               "deliveryMethod", "deviceModel", "deviceType", "offerCode", "partnerSite",
               "paymentMethod", "priceId", "priceName", "salesChannel", "source", "faceValue",
               "grossCost", "grossFace", "grossSales", "taxTotal", "ticketPrice", "sold",
               "isInternetOrder", "isPending", "location"}
MONEY = ["faceValue", "grossCost", "grossFace", "grossSales", "taxTotal", "ticketPrice"]
LOCATION_FIELDS = {"country", "countryIso", "postCode", "region1", "region2", "region3", "region4",
                   "iso2"}

n_tests = 0
failed = 0


def ok(cond, name, diag=None):
    global n_tests, failed
    n_tests += 1
    print("%s %d - %s" % ("ok" if cond else "not ok", n_tests, name))
    if not cond:
        failed += 1
        if diag is not None:
            for line in str(diag).splitlines()[:20]:
                print("# " + line)
    sys.stdout.flush()
    return cond


def diag(msg):
    print("# " + msg)


# ---- process and HTTP helpers ----------------------------------------------------------------


class Fake:
    def __init__(self, *extra, quiet=True):
        self.dir = tempfile.mkdtemp(prefix="st-fake-test.")
        self.port_file = os.path.join(self.dir, "port")
        self.err_path = os.path.join(self.dir, "stderr")
        args = [FAKE, "--port", "0", "--port-file", self.port_file, "--api-key", KEY]
        if quiet:
            args.append("--quiet")
        args += list(extra)
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.err)
        deadline = time.monotonic() + 10
        self.port = None
        while time.monotonic() < deadline and self.proc.poll() is None:
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    self.port = int(f.read().strip())
                break
            time.sleep(0.02)
        if self.port is None:
            self.stop()
            raise RuntimeError("fake did not start: %s" % self.stderr())

    def stderr(self):
        if self.err.closed:
            return self.err_text
        self.err.flush()
        with open(self.err_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def stop(self):
        """SIGTERM by PID; the exit status (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err_text = self.stderr()
        self.err.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.proc.returncode if self.proc.returncode >= 0 else None

    def raw(self, method, path, body=None, headers=None, auth=True, timeout=5):
        """(status, headers, body bytes); http.client exceptions pass through."""
        h = {}
        if auth:
            h["Authorization"] = "Bearer " + (KEY if auth is True else auth)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=h)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp, data
        finally:
            conn.close()

    def call(self, method, path, body=None, **kw):
        status, resp, data = self.raw(method, path, body, **kw)
        try:
            obj = json.loads(data.decode("utf-8"))
        except ValueError:
            obj = None
        return status, obj

    def ctl(self, method, path, body=None):
        status, obj = self.call(method, path, body, auth=False)
        if status != 200:
            raise RuntimeError("%s %s -> %s %r" % (method, path, status, obj))
        return obj

    def events(self, offset=None, limit=None, **kw):
        q = []
        if offset is not None:
            q.append("offset=%d" % offset)
        if limit is not None:
            q.append("limit=%d" % limit)
        return self.call("GET", "/v1/events/search" + ("?" + "&".join(q) if q else ""), **kw)

    def sales(self, codes, offset=0, limit=None, window=None, **kw):
        body = {"offset": offset, "search": {"forSearchItemType": "EVENT",
                                             "searchItemCodes": list(codes)}}
        if limit is not None:
            body["limit"] = limit
        if window is not None:
            body["filteredBy"] = {"salesStartDate": window[0], "salesEndDate": window[1]}
        return self.call("POST", "/v1/reports/sales", body, **kw)

    def truth(self, what):
        return self.ctl("GET", "/_fake/truth/" + what)["data"]


def page_all(fetch, limit, max_pages=10000):
    """Offset paging as the daemon does it: advance by rows received, stop on an empty page.
    Returns (rows, page sizes)."""
    rows, sizes, offset = [], [], 0
    for _ in range(max_pages):
        status, obj = fetch(offset, limit)
        if status != 200:
            raise RuntimeError("page at %d: HTTP %d %r" % (offset, status, obj))
        page = obj["data"]
        sizes.append(len(page))
        if not page:
            break
        rows += page
        offset += len(page)
    return rows, sizes


def key(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, str)):
        return str(v)
    return None


def codes_of(events):
    return [key(e["id"]) for e in events]


def collect_sales(fake, codes, limit, chunk=5):
    out = []
    for i in range(0, len(codes), chunk):
        part = codes[i:i + chunk]
        rows, _ = page_all(lambda o, l: fake.sales(part, o, l), limit)
        out += rows
    return out


def canon(rows):
    return sorted(json.dumps(r, sort_keys=True, ensure_ascii=False) for r in rows)


def parse_iso(s):
    if not isinstance(s, str):
        return None
    t = s[:-1] + "+00:00" if s.endswith("Z") else s
    try:
        v = dt.datetime.fromisoformat(t)
    except ValueError:
        return None
    return v if v.tzinfo else v.replace(tzinfo=dt.timezone.utc)


def expect_error(status, obj, want, name):
    ok(status == want and isinstance(obj, dict) and "error" in obj, name,
       "got %s %r" % (status, obj))


# ---- tests -----------------------------------------------------------------------------------


def test_help():
    p = subprocess.run([FAKE, "--help"], capture_output=True, text=True, timeout=10)
    opts = ["--port", "--port-file", "--quiet", "--api-key", "--seed", "--events", "--sales",
            "--page-cap", "--default-limit", "--grow-every", "--grow-sales", "--grow-events",
            "--ignore-offset", "--now"]
    missing = [o for o in opts if o not in p.stdout]
    ok(p.returncode == 0 and not missing, "--help documents every option", "missing %s" % missing)
    p = subprocess.run([FAKE, "--port", "0"], capture_output=True, text=True, timeout=10)
    ok(p.returncode != 0 and "api-key" in p.stderr, "--api-key is required")


def test_auth(f):
    st, obj = f.events(auth=False)
    ok(st == 401 and obj == {"error": "Unauthorized"}, "events without Authorization: 401",
       (st, obj))
    st, obj = f.events(auth="wrong-key")
    ok(st == 401 and obj == {"error": "Unauthorized"}, "events with a wrong key: 401", (st, obj))
    st, obj = f.events(headers={"Authorization": KEY})
    ok(st == 401, "events with the key but no Bearer scheme: 401", (st, obj))
    st, obj = f.events(auth=KEY + "x")
    ok(st == 401, "events with a key that only starts right: 401", (st, obj))
    st, obj = f.sales(["DF-1"], auth=False)
    ok(st == 401 and obj == {"error": "Unauthorized"}, "sales without Authorization: 401",
       (st, obj))
    st, obj = f.sales(["DF-1"], auth="wrong-key")
    ok(st == 401, "sales with a wrong key: 401", (st, obj))
    st, obj = f.call("POST", "/v1/reports/sales", b"not json", auth=False)
    ok(st == 401, "auth is checked before the body", (st, obj))
    st, obj = f.events()
    ok(st == 200 and isinstance(obj.get("data"), list), "events with the key: 200", st)

    f.ctl("POST", "/_fake/config", {"api_key": "rotated-key"})
    st_old, _ = f.events()
    st_new, _ = f.events(auth="rotated-key")
    st_sales, _ = f.sales(["DF-1"], auth="rotated-key")
    ok(st_old == 401 and st_new == 200 and st_sales == 200,
       "POST /_fake/config api_key rotates the key", (st_old, st_new, st_sales))
    f.ctl("POST", "/_fake/config", {"api_key": KEY})
    st, obj = f.call("POST", "/_fake/config", {"page_cap": "3"}, auth=False)
    ok(st == 400, "/_fake/config refuses a mistyped page_cap", (st, obj))


def test_event_paging(f, truth_events):
    ok(len(truth_events) == 12, "12 events by default", len(truth_events))
    st, obj = f.call("GET", "/v1/events/search")
    ok(st == 200 and obj["data"] == truth_events,
       "no offset, no limit: every event (default limit 100) in creation order")
    rows, sizes = page_all(f.events, 5)
    ok(rows == truth_events and sizes == [5, 5, 2, 0], "events paged by 5: 5,5,2 then empty",
       sizes)
    st, obj = f.events(offset=12, limit=5)
    ok(st == 200 and obj["data"] == [], "offset past the end: empty page", obj)
    st, obj = f.events(offset=3)
    ok(st == 200 and obj["data"] == truth_events[3:], "offset without limit", obj)
    f.ctl("POST", "/_fake/config", {"default_limit": 4})
    rows, sizes = page_all(lambda o, l: f.events(offset=o), None)
    ok(rows == truth_events and sizes == [4, 4, 4, 0],
       "no limit pages by the default limit (set to 4)", sizes)
    f.ctl("POST", "/_fake/config", {"default_limit": 100})
    for q in ["offset=abc", "offset=-1", "limit=0", "limit=x", "limit=-5"]:
        st, obj = f.call("GET", "/v1/events/search?" + q)
        expect_error(st, obj, 400, "events ?%s: 400 with a JSON error" % q)


def test_sales_paging(f, truth_events, truth_sales):
    codes = codes_of(truth_events)
    all_rows, sizes = page_all(lambda o, l: f.sales(codes, o, l), None)
    ok(sizes == [100, 100, 0] and all_rows == truth_sales,
       "sales for every event without limit: pages of 100 (default), creation order", sizes)
    rows, sizes = page_all(lambda o, l: f.sales(codes, o, l), 33)
    ok(rows == truth_sales and sizes == [33] * 6 + [2, 0], "sales paged by 33", sizes)
    one = codes[0]
    want = [s for s in truth_sales if key(s.get("eventId")) == one]
    rows, _ = page_all(lambda o, l: f.sales([one], o, l), 3)
    ok(rows == want and len(want) >= 2, "one event's sales only, in order (%d)" % len(want))
    st, obj = f.call("POST", "/v1/reports/sales",
                     {"search": {"forSearchItemType": "EVENT", "searchItemCodes": [one]}})
    ok(st == 200 and obj["data"] == want, "missing offset and limit are accepted", st)
    st, obj = f.sales(["DF-0000000", "no-such"])
    ok(st == 200 and obj["data"] == [], "unknown event codes: empty data", obj)
    st, obj = f.sales([])
    ok(st == 200 and obj["data"] == [], "no event codes: empty data", obj)
    numeric = [key(e["id"]) for e in truth_events if isinstance(e["id"], int)]
    want = [s for s in truth_sales if key(s.get("eventId")) in numeric]
    rows = collect_sales(f, numeric, 50)
    ok(numeric and rows == want and want,
       "a numeric event id is searched by its string form (%s)" % ",".join(numeric))

    collected = collect_sales(f, codes_of(page_all(f.events, 5)[0]), 7, chunk=5)
    ok(canon(collected) == canon(truth_sales) and len(collected) == len(truth_sales),
       "a full paging client (events, then sales in chunks of 5 codes) collects the truth exactly",
       "%d collected vs %d" % (len(collected), len(truth_sales)))
    summary = f.ctl("GET", "/_fake/truth/summary")
    ok(summary["events"] == len(truth_events) and summary["sales"] == len(truth_sales)
       and sum(summary["sales_by_event"].values()) == len(truth_sales),
       "truth/summary counts match the truth", summary)


def test_page_cap(f, truth_events, truth_sales):
    f.ctl("POST", "/_fake/config", {"page_cap": 3})
    st, obj = f.events(offset=0, limit=5)
    ok(st == 200 and len(obj["data"]) == 3, "page_cap 3: a page of 3 although limit is 5")
    rows, sizes = page_all(f.events, 5)
    ok(rows == truth_events and sizes == [3, 3, 3, 3, 0],
       "page_cap: short pages while more remain; paging to the empty page gets all", sizes)
    codes = codes_of(truth_events)
    rows, sizes = page_all(lambda o, l: f.sales(codes, o, l), 100)
    ok(rows == truth_sales and max(sizes) == 3 and len(sizes) == 68,
       "page_cap applies to sales too", sizes[:5])
    f.ctl("POST", "/_fake/config", {"page_cap": 0})
    st, obj = f.events(offset=0, limit=5)
    ok(len(obj["data"]) == 5, "page_cap 0 lifts the cap")


def test_ignore_offset_runtime(f, truth_events, truth_sales):
    f.ctl("POST", "/_fake/config", {"ignore_offset": True})
    _, a = f.events(offset=0, limit=4)
    _, b = f.events(offset=4, limit=4)
    codes = codes_of(truth_events)
    _, c = f.sales(codes, offset=50, limit=10)
    ok(a["data"] == b["data"] == truth_events[:4] and c["data"] == truth_sales[:10],
       "ignore_offset via /_fake/config: every page is the first")
    f.ctl("POST", "/_fake/config", {"ignore_offset": False})
    _, b = f.events(offset=4, limit=4)
    ok(b["data"] == truth_events[4:8], "ignore_offset false: offsets honoured again")


def test_ignore_offset_cli():
    f = Fake("--ignore-offset", "--page-cap", "4", "--now", NOW)
    try:
        truth = f.truth("events")
        _, a = f.events(offset=0, limit=10)
        _, b = f.events(offset=8, limit=10)
        ok(a["data"] == b["data"] == truth[:4],
           "--ignore-offset --page-cap 4: offset 8 answers the first 4 rows again")
        cfg = f.ctl("POST", "/_fake/config", {})
        ok(cfg == {"page_cap": 4, "default_limit": 100, "ignore_offset": True},
           "/_fake/config reports the command-line settings (and not the key)", cfg)
    finally:
        ok(f.stop() == 0, "--ignore-offset server stops with status 0 on SIGTERM")


def test_growth_stable_order(f, truth_events, truth_sales):
    codes = codes_of(truth_events)
    first, _ = page_all(lambda o, l: f.sales(codes, o, l) if o < 100 else (200, {"data": []}),
                        50)
    ev_first, _ = page_all(lambda o, l: f.events(o, l) if o < 8 else (200, {"data": []}), 4)
    totals = f.ctl("POST", "/_fake/grow", {"sales": 30, "events": 3})
    ok(totals == {"events": 15, "sales": 230}, "/_fake/grow returns the new totals", totals)
    new_events = f.truth("events")
    new_sales = f.truth("sales")
    ok(new_events[:12] == truth_events and new_sales[:200] == truth_sales,
       "growth appends: the old rows keep their places")
    offset = len(ev_first)
    rest = []
    while True:
        _, obj = f.events(offset, 4)
        if not obj["data"]:
            break
        rest += obj["data"]
        offset += len(obj["data"])
    ok(ev_first + rest == new_events, "events paging across growth: nothing lost or repeated")
    future = [parse_iso(e.get("starts")) for e in new_events[12:]]
    ok(all(t is None or t > NOW_T for t in future), "grown events start in the future", future)
    # The first half was read before growth; the rest after, over the old codes only.
    old_now = [s for s in new_sales if key(s.get("eventId")) in set(codes)]
    offset, rest = len(first), []
    while True:
        _, obj = f.sales(codes, offset, 50)
        if not obj["data"]:
            break
        rest += obj["data"]
        offset += len(obj["data"])
    ok(first + rest == old_now and len(set(r["uniqueCode"] for r in first + rest)) == len(old_now),
       "sales paging across growth: nothing lost or repeated (%d rows)" % len(old_now))
    all_codes = codes_of(new_events)
    ok(len(set(all_codes)) == 15, "event ids stay unique as strings after growth")
    now = dt.datetime.now(dt.timezone.utc)
    grown = new_sales[200:]
    dates = [parse_iso(s["date"]) for s in grown]
    ok(all(d is not None and abs((now - d).total_seconds()) < 60 for d in dates)
       and len({s["uniqueCode"] for s in new_sales}) == 230,
       "grown sales: unique codes, dated now")
    ok(all(key(s["eventId"]) in set(all_codes) for s in grown),
       "grown sales belong to existing events")
    st, obj = f.call("POST", "/_fake/grow", {"sales": -1}, auth=False)
    ok(st == 400, "/_fake/grow refuses a negative count", (st, obj))


def test_grow_timer():
    f = Fake("--grow-every", "0.2", "--grow-sales", "3", "--grow-events", "1", "--events", "2",
             "--sales", "10", "--now", NOW)
    try:
        s0 = f.ctl("GET", "/_fake/truth/summary")
        time.sleep(0.9)
        s1 = f.ctl("GET", "/_fake/truth/summary")
        ticks = s1["events"] - s0["events"]
        ok(s0["events"] >= 2 and ticks >= 2 and s1["sales"] - s0["sales"] == 3 * ticks,
           "--grow-every 0.2: +1 event and +3 sales per tick", (s0, s1))
    finally:
        ok(f.stop() == 0, "growing server stops with status 0 on SIGTERM")


def quirks(events, sales, now_t, label):
    ids = [e.get("id") for e in events]
    ok(len({key(i) for i in ids}) == len(ids), label + "event ids unique as strings")
    ok(any(isinstance(i, int) for i in ids) and
       all(isinstance(i, int) or re.fullmatch(r"DF-\d{7}", i) for i in ids),
       label + "event ids like DF-2974218, some sent as JSON numbers", ids)
    names = [e.get("name") or "" for e in events]
    ok(any(any(ord(c) > 127 for c in n) for n in names) and any('"' in n for n in names)
       and any("\\" in n for n in names) and any(any(ord(c) > 0xFFFF for c in n) for n in names),
       label + "names with non-ASCII, quotes, backslashes and emoji", names)
    tour = [type(e.get("tourId")).__name__ for e in events]
    ok("int" in tour and "str" in tour, label + "tourId as number and as string", tour)
    ts = [e.get("timeslotEnabled") for e in events]
    ok(True in ts and False in ts and "true" in ts, label + 'timeslotEnabled true/false/"true"', ts)
    ok(all(re.fullmatch(r"\d\d:\d\d", e["doorsOpen"]) for e in events),
       label + "doorsOpen like 19:00")
    starts = [e.get("starts", "<missing>") for e in events]
    kinds = set()
    for s in starts:
        if s == "<missing>":
            kinds.add("missing")
        elif s is None:
            kinds.add("null")
        elif parse_iso(s) is None:
            kinds.add("bad")
        elif s.endswith("Z"):
            kinds.add("Z")
        elif s.endswith("+00:00"):
            kinds.add("offset")
        else:
            kinds.add("naive")
    ok(kinds == {"missing", "null", "bad", "Z", "offset", "naive"},
       label + "starts: Z, +00:00, no zone, missing, null, unparseable", starts)
    times = [parse_iso(s) for s in starts if isinstance(s, str) and parse_iso(s)]
    lo, hi = now_t - dt.timedelta(days=61), now_t + dt.timedelta(days=91)
    ok(times and all(lo <= t <= hi for t in times) and min(times) < now_t < max(times),
       label + "starts spread from 60 days ago to 90 days ahead")

    codes = [s.get("uniqueCode") for s in sales]
    ok(all(isinstance(c, str) and re.fullmatch(r"[A-Z0-9]{10}", c) for c in codes)
       and len(set(codes)) == len(codes), label + "every sale has a unique uniqueCode")
    numeric = {str(i) for i in ids if isinstance(i, int)}
    eids = [s.get("eventId") for s in sales]
    ok(all(key(e) in {key(i) for i in ids} for e in eids), label + "every eventId is an event's")
    ok(any(isinstance(e, int) for e in eids) and
       any(isinstance(e, str) and e in numeric for e in eids) and
       all(not isinstance(e, int) or str(e) in numeric for e in eids),
       label + "numeric event ids sent as numbers and as strings in sales")
    for m in MONEY:
        vals = [s.get(m) for s in sales]
        strs = [v for v in vals if isinstance(v, str)]
        nums = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
        ok(strs and nums and all(re.fullmatch(r"\d+\.\d\d", v) for v in strs)
           and len(strs) < len(vals) / 3,
           label + "%s: numbers, some as numeric strings (%d/%d)" % (m, len(strs), len(vals)))
    sold = [s.get("sold") for s in sales]
    ok(any(isinstance(v, int) for v in sold) and any(isinstance(v, str) and v.isdigit()
                                                     for v in sold),
       label + 'sold as int and as "2"-style string')
    for b in ["isInternetOrder", "isPending"]:
        vals = [s.get(b) for s in sales]
        ok(True in vals and False in vals and ("true" in vals or "false" in vals)
           and set(map(repr, vals)) <= {"True", "False", "'true'", "'false'"},
           label + "%s: booleans, some as strings" % b, set(map(repr, vals)))
    ok(all(isinstance(s.get("priceId"), (int, str)) for s in sales)
       and len({type(s["priceId"]) for s in sales}) == 2, label + "priceId string or number")
    locs = [s.get("location", "<missing>") for s in sales]
    full = [x for x in locs if isinstance(x, dict)]
    ok(None in locs and "<missing>" in locs and full
       and all(set(x) <= LOCATION_FIELDS and "postCode" in x for x in full)
       and any(set(x) == LOCATION_FIELDS for x in full),
       label + "location nested, sometimes null or missing")
    ok(any(v is None for s in sales for k, v in s.items() if k != "location"),
       label + "some null values")
    extra = [s for s in sales if set(s) - SALE_FIELDS]
    ok(1 <= len(extra) <= len(sales) / 8,
       label + "about 1 in 20 sales with an unknown field (%d)" % len(extra),
       [sorted(set(s) - SALE_FIELDS) for s in extra])
    ok(all(s.get("currency") == "GBP" for s in sales), label + "currency GBP")
    dates = [parse_iso(s.get("date")) for s in sales]
    ok(all(d is not None and s["date"].endswith("Z") for d, s in zip(dates, sales)),
       label + "sale dates are ISO-8601 UTC with Z")


def test_determinism(truth_events, truth_sales):
    same = Fake("--seed", "1", "--now", NOW)
    other = Fake("--seed", "2", "--now", NOW)
    try:
        ok(same.truth("events") == truth_events and same.truth("sales") == truth_sales,
           "same seed: the same events and sales")
        oe, os_ = other.truth("events"), other.truth("sales")
        ok(oe != truth_events and os_ != truth_sales
           and not {s["uniqueCode"] for s in os_} & {s["uniqueCode"] for s in truth_sales},
           "another seed: different data")
        ok(len(oe) == 12 and len(os_) == 200, "another seed: default sizes")
        quirks(oe, os_, NOW_T, "seed 2: ")
    finally:
        ok(same.stop() == 0 and other.stop() == 0, "determinism servers stop with status 0")


def test_filtered_by(f, truth_events, truth_sales):
    codes = codes_of(truth_events)
    dates = sorted({s["date"] for s in truth_sales})
    start, end = dates[40], dates[120]
    want = [s for s in truth_sales if start <= s["date"] < end]
    rows, _ = page_all(lambda o, l: f.sales(codes, o, l, window=(start, end)), 25)
    ok(rows == want and rows[0]["date"] == start and all(r["date"] != end for r in rows),
       "filteredBy: start inclusive, end exclusive, in order (%d rows)" % len(want))
    alt = (parse_iso(start).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
           parse_iso(end).strftime("%Y-%m-%dT%H:%M:%S+00:00"))
    rows2, _ = page_all(lambda o, l: f.sales(codes, o, l, window=alt), 100)
    ok(rows2 == want, "filteredBy accepts +00:00 as well as Z")
    st, obj = f.sales(codes, limit=100, window=(end, start))
    ok(st == 200 and obj["data"] == [], "filteredBy with end before start: empty")
    body = {"search": {"forSearchItemType": "EVENT", "searchItemCodes": codes},
            "filteredBy": {"salesStartDate": end}}
    st, obj = f.call("POST", "/v1/reports/sales", body)
    ok(st == 200 and obj["data"] == [s for s in truth_sales if s["date"] >= end][:100],
       "filteredBy with only a start date")
    body["filteredBy"] = {"salesStartDate": "yesterday"}
    st, obj = f.call("POST", "/v1/reports/sales", body)
    expect_error(st, obj, 400, "filteredBy with an unparseable date: 400")


def test_bad_bodies(f, truth_events):
    code = codes_of(truth_events)[0]
    good = {"offset": 0, "limit": 10,
            "search": {"forSearchItemType": "EVENT", "searchItemCodes": [code]}}

    def variant(**changes):
        b = json.loads(json.dumps(good))
        for k, v in changes.items():
            if k.startswith("s_"):
                b["search"][k[2:]] = v
            elif v is KeyError:
                del b[k]
            else:
                b[k] = v
        return b

    cases = [
        ("not JSON", b"{offset: 0"),
        ("a JSON array", b"[]"),
        ("an empty body", b""),
        ("offset as a string", variant(offset="0")),
        ("negative offset", variant(offset=-1)),
        ("limit 0", variant(limit=0)),
        ("limit as a boolean", variant(limit=True)),
        ("limit as a float", variant(limit=2.5)),
        ("search missing", variant(search=KeyError)),
        ("search not an object", variant(search=["EVENT"])),
        ("unknown forSearchItemType", variant(s_forSearchItemType="VENUE")),
        ("forSearchItemType missing", variant(s_forSearchItemType=None)),
        ("searchItemCodes not an array", variant(s_searchItemCodes=code)),
        ("a number among searchItemCodes", variant(s_searchItemCodes=[code, 2974300])),
        ("filteredBy not an object", variant(filteredBy="2026-01-01")),
        ("filteredBy date as a number", variant(filteredBy={"salesStartDate": 20260101})),
    ]
    for name, body in cases:
        st, obj = f.call("POST", "/v1/reports/sales", body)
        expect_error(st, obj, 400, "sales body with %s: 400 with a JSON error" % name)
    st, obj = f.call("POST", "/v1/reports/sales", variant(extraKey=1, filteredBy=None))
    ok(st == 200 and len(obj["data"]) == 10, "unknown top-level keys and null filteredBy ignored",
       (st, obj))
    st, obj = f.call("GET", "/v1/reports/sales")
    expect_error(st, obj, 404, "GET on the sales report: 404")


def test_faults(f, truth_events):
    codes = codes_of(truth_events)
    sales_body = {"offset": 0, "limit": 5,
                  "search": {"forSearchItemType": "EVENT", "searchItemCodes": codes}}
    endpoints = [("events", "GET", "/v1/events/search?offset=0&limit=5", None),
                 ("sales", "POST", "/v1/reports/sales", sales_body)]
    for label, method, path, body in endpoints:
        plain = f.raw(method, path, body)[2]

        def arm(action, **kw):
            spec = {"method": method, "path": path.split("?")[0], "action": action}
            spec.update(kw)
            f.ctl("POST", "/_fake/faults", spec)

        arm({"status": 429, "headers": {"Retry-After": "2"}})
        st, resp, data = f.raw(method, path, body)
        st2, _, data2 = f.raw(method, path, body)
        ok(st == 429 and resp.getheader("Retry-After") == "2" and "error" in json.loads(data)
           and st2 == 200 and data2 == plain,
           "%s: 429 with Retry-After once, then normal" % label, (st, st2))

        arm({"status": 500, "body": {"error": "Internal Server Error"}}, skip=1, times=2)
        sts = [f.raw(method, path, body)[0] for _ in range(4)]
        ok(sts == [200, 500, 500, 200], "%s: 500 after skip 1, twice" % label, sts)

        arm({"drop": True})
        try:
            f.raw(method, path, body)
            dropped = False
        except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
            dropped = True
        ok(dropped, "%s: drop closes without an answer" % label)

        arm({"truncate": True})
        try:
            st, resp, data = f.raw(method, path, body)
            truncated, got = False, data
        except http.client.IncompleteRead as e:
            truncated, got = True, e.partial
        ok(truncated and 0 < len(got) < len(plain) and plain.startswith(got),
           "%s: truncate sends a prefix of the body, short of Content-Length" % label,
           (truncated, len(got), len(plain)))

        arm({"malformed": True})
        st, _, data = f.raw(method, path, body)
        try:
            json.loads(data)
            bad = False
        except ValueError:
            bad = True
        ok(st == 200 and bad, "%s: malformed answers 200 with invalid JSON" % label)

        arm({"delay_ms": 300})
        t0 = time.monotonic()
        st, _, data = f.raw(method, path, body)
        took = time.monotonic() - t0
        ok(st == 200 and data == plain and took >= 0.29, "%s: delay_ms 300 (%.2fs)" % (label, took))

        f.ctl("DELETE", "/_fake/requests")
        arm({"lost_ack": True})
        try:
            f.raw(method, path, body)
            lost = False
        except (http.client.RemoteDisconnected, ConnectionError, http.client.BadStatusLine):
            lost = True
        log = f.ctl("GET", "/_fake/requests")["requests"]
        ok(lost and len(log) == 1 and log[0]["status"] == 200,
           "%s: lost_ack processes the request, then closes without an answer" % label, log)

    f.ctl("POST", "/_fake/faults", {"path": "/v1/reports/sales", "times": 0,
                                    "action": {"status": 503}})
    st_e = f.raw("GET", "/v1/events/search")[0]
    st_s = [f.raw("POST", "/v1/reports/sales", sales_body)[0] for _ in range(2)]
    f.ctl("DELETE", "/_fake/faults")
    st_after = f.raw("POST", "/v1/reports/sales", sales_body)[0]
    ok(st_e == 200 and st_s == [503, 503] and st_after == 200,
       "a fault on the sales path spares events; times 0 lasts until cleared", (st_e, st_s))

    f.ctl("DELETE", "/_fake/requests")
    f.raw("POST", "/v1/reports/sales", sales_body)
    log = f.ctl("GET", "/_fake/requests")["requests"]
    ok(len(log) == 1 and json.loads(log[0]["body"]) == sales_body,
       "the request log holds the sales request body")


def test_bad_rows_and_reset(f, truth_events, truth_sales):
    code = codes_of(truth_events)[1]
    bad = [{"eventId": code, "sold": 1, "date": "2026-06-01T00:00:00Z"},
           {"uniqueCode": "BADSOLD001", "eventId": code, "sold": "many", "faceValue": "abc"},
           {"uniqueCode": "NOEVENT001", "sold": 1}]
    totals = f.ctl("POST", "/_fake/bad_rows", {"sales": bad})
    before = f.truth("sales")
    ok(totals["sales"] == len(before) and before[-3:] == bad,
       "/_fake/bad_rows appends the rows raw, as given")
    rows, _ = page_all(lambda o, l: f.sales([code], o, l), 100)
    ok(rows[-3:] == bad and len(rows) == 3 + len([s for s in before[:-3]
                                                  if key(s.get("eventId")) == code]),
       "bad rows are served with their event; one without eventId with every search")
    other = codes_of(truth_events)[2]
    rows, _ = page_all(lambda o, l: f.sales([other], o, l), 100)
    ok(rows[-1] == bad[2] and bad[0] not in rows, "a row without eventId goes to every search")
    s = f.ctl("GET", "/_fake/truth/summary")
    ok(s["bad_sales"] == 3 and s["unowned_sales"] == 1, "summary counts bad rows", s)
    st, obj = f.call("POST", "/_fake/bad_rows", {"sales": {"a": 1}}, auth=False)
    ok(st == 400, "/_fake/bad_rows refuses a non-array", (st, obj))

    f.ctl("POST", "/_fake/config", {"api_key": "other", "page_cap": 2})
    f.ctl("POST", "/_fake/reset")
    ok(f.truth("sales") == truth_sales and f.truth("events") == truth_events,
       "/_fake/reset restores the initial data")
    st, obj = f.events(limit=5)
    ok(st == 200 and len(obj["data"]) == 5, "/_fake/reset restores the key and page cap")


def raw_page(f, method, path, body=None):
    """A page's bytes, and its rows split at the top level of the data array (so that invalid
    JSON inside one row does not hide the others)."""
    status, resp, data = f.raw(method, path, body)
    if status != 200 or not data.startswith(b'{"data":[') or not data.endswith(b"]}"):
        return status, data, None
    inner = data[len(b'{"data":['):-2]
    parts, depth, start, in_str, esc = [], 0, 0, False, False
    for i, c in enumerate(inner):
        ch = chr(c)
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    if inner:
        parts.append(inner[start:])
    return status, data, parts


def test_raw_rows(f, truth_events, truth_sales):
    code = codes_of(truth_events)[0]
    other = codes_of(truth_events)[3]
    big = '{"uniqueCode":"RAWBIG0001","eventId":"%s","sold":1,"basketId":%s}' % (code, "9" * 30)
    bad_utf8 = b'{"uniqueCode":"RAWUTF0001","eventName":"caf\xe9 \xff","sold":2}'
    surrogate = '{"id":"RAWEV0001","name":"half \\ud83c moon"}'
    r1 = f.ctl("POST", "/_fake/raw_rows", {"feed": "sales", "event": code, "text": big})
    r2 = f.ctl("POST", "/_fake/raw_rows",
               {"feed": "sales", "b64": base64.b64encode(bad_utf8).decode()})
    r3 = f.ctl("POST", "/_fake/raw_rows", {"feed": "events", "text": surrogate})
    ok([r1, r2, r3] == [{"index": 0}, {"index": 1}, {"index": 2}],
       "/_fake/raw_rows answers the index of each raw row", [r1, r2, r3])

    owned = [s for s in truth_sales if key(s.get("eventId")) == code]
    st, data, parts = raw_page(f, "POST", "/v1/reports/sales",
                               {"offset": 0, "limit": 1000,
                                "search": {"forSearchItemType": "EVENT",
                                           "searchItemCodes": [code]}})
    ok(st == 200 and parts is not None and len(parts) == len(owned) + 2
       and parts[-2] == big.encode() and parts[-1] == bad_utf8,
       "raw sales are spliced byte for byte: one with its event, one without with every search",
       (st, data[-300:]))
    ok(b"9" * 30 in data and b"\xe9 \xff" in data, "the raw bytes reach the wire unchanged")
    st, data, parts = raw_page(f, "POST", "/v1/reports/sales",
                               {"offset": 0, "limit": 1000,
                                "search": {"forSearchItemType": "EVENT",
                                           "searchItemCodes": [other]}})
    ok(parts is not None and parts[-1] == bad_utf8 and big.encode() not in data,
       "a raw sale naming an event goes out only with searches naming it")
    st, data, parts = raw_page(f, "GET", "/v1/events/search?limit=1000")
    ok(parts is not None and len(parts) == len(truth_events) + 1
       and parts[-1] == surrogate.encode(), "a raw event goes out in the events search")

    # A raw row is one row for paging: walk with a small limit and count the parts.
    n_rows, offset, pages = 0, 0, 0
    while pages < 1000:
        st, data, parts = raw_page(f, "GET", "/v1/events/search?offset=%d&limit=3" % offset)
        pages += 1
        if not parts:
            break
        n_rows += len(parts)
        offset += len(parts)
    ok(n_rows == len(truth_events) + 1, "a raw row counts as one row for offset and limit",
       (n_rows, len(truth_events)))
    # filteredBy does not hide raw rows (they have no date the fake could read).
    st, data, parts = raw_page(f, "POST", "/v1/reports/sales",
                               {"offset": 0, "limit": 1000,
                                "filteredBy": {"salesStartDate": "2000-01-01T00:00:00Z",
                                               "salesEndDate": "2000-01-02T00:00:00Z"},
                                "search": {"forSearchItemType": "EVENT",
                                           "searchItemCodes": [code]}})
    ok(parts == [big.encode(), bad_utf8], "raw sales are served whatever filteredBy says",
       data[:300])

    raw = f.truth("raw")
    ok([r["index"] for r in raw] == [0, 1, 2]
       and [base64.b64decode(r["b64"]) for r in raw] == [big.encode(), bad_utf8,
                                                         surrogate.encode()]
       and [r["feed"] for r in raw] == ["sales", "sales", "events"]
       and [r["event"] for r in raw] == [code, None, None]
       and raw[0]["position"] == len(truth_sales) and raw[2]["position"] == len(truth_events),
       "/_fake/truth/raw lists raw rows as base64 with feed, event and position", raw)
    ok(f.truth("sales") == truth_sales and f.truth("events") == truth_events,
       "/_fake/truth/sales and /events leave raw rows out")
    s = f.ctl("GET", "/_fake/truth/summary")
    ok(s["raw_sales"] == 2 and s["raw_events"] == 1 and s["sales"] == len(truth_sales) + 2,
       "summary counts raw rows", s)

    fixed = '{"uniqueCode":"RAWUTF0001","eventName":"caf\u00e9","sold":2}'
    ok(f.ctl("POST", "/_fake/raw_rows", {"feed": "sales", "index": 1, "text": fixed})
       == {"index": 1}, "/_fake/raw_rows with an index replaces that raw row")
    st, data, parts = raw_page(f, "POST", "/v1/reports/sales",
                               {"offset": 0, "limit": 1000,
                                "search": {"forSearchItemType": "EVENT",
                                           "searchItemCodes": [other]}})
    ok(parts is not None and parts[-1] == fixed.encode("utf-8"),
       "the replacement is served in the same place", data[-200:])
    st, obj = f.call("POST", "/_fake/raw_rows", {"feed": "events", "index": 1, "text": "{}"},
                     auth=False)
    ok(st == 404, "replacing a raw row of another feed is 404", (st, obj))
    for body, why in (({"feed": "tickets", "text": "{}"}, "an unknown feed"),
                      ({"feed": "sales"}, "neither text nor b64"),
                      ({"feed": "sales", "text": "{}", "b64": "e30="}, "both text and b64"),
                      ({"feed": "sales", "b64": "not base64!"}, "bad base64"),
                      ({"feed": "sales", "text": "  "}, "an empty row"),
                      ({"feed": "events", "event": "X", "text": "{}"}, "an event on an event"),
                      ({"feed": "sales", "event": [1], "text": "{}"},
                       "an event code not a string")):
        st, obj = f.call("POST", "/_fake/raw_rows", body, auth=False)
        expect_error(st, obj, 400, "/_fake/raw_rows refuses " + why)

    f.ctl("POST", "/_fake/reset")
    ok(f.truth("raw") == [] and f.ctl("GET", "/_fake/truth/summary")["raw_sales"] == 0,
       "/_fake/reset clears raw rows")


def test_update(f, truth_events, truth_sales):
    sale = truth_sales[5]
    code = sale["uniqueCode"]
    n_before = len(truth_sales)
    r = f.ctl("POST", "/_fake/update", {"feed": "sales", "key": code,
                                        "set": {"sold": 7, "priceName": "FIXED"},
                                        "unset": ["affiliate"]})
    ok(r == {"updated": 1}, "/_fake/update answers how many rows changed", r)
    now = f.truth("sales")
    want = dict(sale, sold=7, priceName="FIXED")
    want.pop("affiliate", None)
    ok(len(now) == n_before and now[5] == want and now[:5] == truth_sales[:5]
       and now[6:] == truth_sales[6:], "an update changes the row in place, order unchanged")
    ev = key(sale["eventId"])
    rows = collect_sales(f, [ev], 4)
    ok(want in rows and sale not in rows, "the sales report serves the updated row")

    numeric = next(e for e in truth_events if isinstance(e["id"], int))
    later = "2030-01-01T20:00:00Z"
    r = f.ctl("POST", "/_fake/update", {"feed": "events", "key": str(numeric["id"]),
                                        "set": {"starts": later}})
    events = f.truth("events")
    ok(r == {"updated": 1} and any(e["id"] == numeric["id"] and e["starts"] == later
                                   for e in events),
       "an event whose id is a JSON number is found by its string form", r)
    rows, _ = page_all(lambda o, l: f.events(o, l), 5)
    ok(rows == events, "events paging serves the postponed event in its old place")
    grown = f.ctl("POST", "/_fake/grow", {"sales": 60})
    new = [s for s in f.truth("sales")[n_before:] if key(s.get("eventId")) == key(numeric["id"])]
    ok(grown["sales"] == n_before + 60 and new and all(s["eventDate"] == later for s in new),
       "new sales of a postponed event carry its new date", [s["eventDate"] for s in new])

    f.ctl("POST", "/_fake/bad_rows", {"sales": [{"uniqueCode": "BADFIX0001", "sold": "many",
                                                 "eventId": ev}],
                                      "events": [{"id": 123456, "timeslotEnabled": "maybe"}]})
    r1 = f.ctl("POST", "/_fake/update", {"feed": "sales", "key": "BADFIX0001",
                                         "set": {"sold": 2}})
    r2 = f.ctl("POST", "/_fake/update", {"feed": "events", "key": "123456",
                                         "set": {"timeslotEnabled": False}})
    ok(r1 == r2 == {"updated": 1}
       and f.truth("sales")[-1] == {"uniqueCode": "BADFIX0001", "sold": 2, "eventId": ev}
       and f.truth("events")[-1] == {"id": 123456, "timeslotEnabled": False},
       "rows added with /_fake/bad_rows can be corrected")
    moved = f.ctl("POST", "/_fake/update", {"feed": "sales", "key": "BADFIX0001",
                                            "set": {"eventId": None}})
    other = codes_of(truth_events)[2]
    rows = collect_sales(f, [other], 100)
    ok(moved == {"updated": 1} and rows[-1]["uniqueCode"] == "BADFIX0001",
       "a sale whose eventId is cleared goes out with every search")

    st, obj = f.call("POST", "/_fake/update", {"feed": "sales", "key": "NO-SUCH-ROW",
                                               "set": {"sold": 1}}, auth=False)
    expect_error(st, obj, 404, "/_fake/update of an unknown key is 404")
    for body, why in (({"feed": "x", "key": code}, "an unknown feed"),
                      ({"feed": "sales", "key": 5}, "a key not a string"),
                      ({"feed": "sales", "key": code, "set": [1]}, "set not an object"),
                      ({"feed": "sales", "key": code, "unset": "sold"}, "unset not an array")):
        st, obj = f.call("POST", "/_fake/update", body, auth=False)
        expect_error(st, obj, 400, "/_fake/update refuses " + why)
    f.ctl("POST", "/_fake/reset")
    ok(f.truth("sales") == truth_sales and f.truth("events") == truth_events,
       "/_fake/reset undoes updates")


def main():
    t_start = time.monotonic()
    test_help()
    main_fake = Fake("--now", NOW, quiet=False)  # default seed and sizes
    try:
        ok(main_fake.ctl("GET", "/_fake/health") == {"ok": True}, "starts on a free port, healthy")
        truth_events = main_fake.truth("events")
        truth_sales = main_fake.truth("sales")
        test_auth(main_fake)
        quirks(truth_events, truth_sales, NOW_T, "seed 1: ")
        test_event_paging(main_fake, truth_events)
        test_sales_paging(main_fake, truth_events, truth_sales)
        test_page_cap(main_fake, truth_events, truth_sales)
        test_ignore_offset_runtime(main_fake, truth_events, truth_sales)
        test_filtered_by(main_fake, truth_events, truth_sales)
        test_bad_bodies(main_fake, truth_events)
        test_faults(main_fake, truth_events)
        test_determinism(truth_events, truth_sales)
        test_ignore_offset_cli()
        test_grow_timer()
        test_growth_stable_order(main_fake, truth_events, truth_sales)
        test_bad_rows_and_reset(main_fake, truth_events, truth_sales)
        test_raw_rows(main_fake, truth_events, truth_sales)
        test_update(main_fake, truth_events, truth_sales)
    except Exception as e:  # a crash is a failure, not a silent stop
        import traceback
        ok(False, "test program ran to the end", traceback.format_exc())
        del e
    finally:
        status = main_fake.stop()
        ok(status == 0, "main server stops with status 0 on SIGTERM", status)
        err = main_fake.stderr()
        ok(KEY not in err and "rotated-key" not in err and "postCode" not in err
           and "listening" in err, "the access log carries no key and no row data")
    diag("%.1f s" % (time.monotonic() - t_start))
    print("1..%d" % n_tests)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The BigQuery client against tests/fakes/google-fake, through tests/unit/bq_probe.

Each case resets the fake, creates what it needs through the fake's control endpoints, runs
bq_probe (one JSON line per step on stdout, logs on stderr) and checks what the probe reports,
what it logged, and what the fake saw and stored. After every case the rows stored in the
fake's table are compared with what the probe sent: the same key set (minus the rows reported
invalid or still pending), and no key twice. At the end every probe's output is searched for
access tokens and for the personal and invalid values the test rows carried.

TAP on stdout; env TOP_BUILDDIR / TOP_SRCDIR.
"""

import functools
import hashlib
import json
import os
import re
import sys
import time

from harness import (DATASET, GoogleFake, ProbeRun, ProbeSession, Tap, Workdir, check, header,
                     need_probe, run_cases)

PROJECT = "fake-project"
UPLOAD = "/upload/bigquery/v2/projects/%s/jobs" % PROJECT
INSERT_ALL = "/insertAll"

# Values that must never reach a log: a post code (personal data) and the value of an invalid
# field (BigQuery messages quote them).
POSTCODE = "ZZ9 9QX"
BAD_VALUE = "not-a-number-7731"

SALES_COLUMNS = [
    ("affiliate", "STRING"), ("currency", "STRING"), ("date", "STRING"),
    ("deliveryMethod", "STRING"), ("deviceModel", "STRING"), ("deviceType", "STRING"),
    ("eventDate", "STRING"), ("eventId", "STRING"), ("eventName", "STRING"),
    ("faceValue", "FLOAT"), ("grossCost", "FLOAT"), ("grossFace", "FLOAT"),
    ("grossSales", "FLOAT"), ("isInternetOrder", "BOOLEAN"), ("isPending", "BOOLEAN"),
    ("country", "STRING"), ("countryIso", "STRING"), ("postCode", "STRING"),
    ("region1", "STRING"), ("region2", "STRING"), ("region3", "STRING"), ("region4", "STRING"),
    ("offerCode", "STRING"), ("partnerSite", "STRING"), ("paymentMethod", "STRING"),
    ("priceId", "STRING"), ("priceName", "STRING"), ("salesChannel", "STRING"),
    ("sold", "INTEGER"), ("source", "STRING"), ("taxTotal", "FLOAT"), ("ticketPrice", "FLOAT"),
    ("uniqueCode", "STRING"),
]


class Run(ProbeRun):
    # The reports this suite has always failed on; ProbeRun's default catches more.
    sanitizer_markers = ("AddressSanitizer", "LeakSanitizer", "runtime error:")

    def result(self, cmd):
        r = [l for l in self.lines if l.get("cmd") == cmd]
        return r[-1] if r else {}


# ---- helpers --------------------------------------------------------------------------------


def base_args(ctx, **over):
    args = {"--endpoint": ctx.fake.url, "--credentials": ctx.sa, "--project": PROJECT,
            "--dataset": DATASET, "--location": "EU", "--log-level": "debug",
            "--attempts": "4", "--budget-ms": "30000", "--job-poll-ms": "50",
            "--resend-ms": "50"}
    args.update(over)
    out = []
    for k, v in args.items():
        if v is not None:
            out += [k, str(v)]
    return out


def probe(ctx, *cmd, timeout=180, **over):
    return Run.of([ctx.probe] + base_args(ctx, **over) + list(cmd), timeout=timeout)


def insert(ctx, path, *options):
    """bq_probe insert of the rows in path into table sales: the run and its insert result."""
    r = probe(ctx, "insert", "sales", "sales", path, *options)
    return r, r.result("insert")


def session(ctx):
    """bq_probe commands: one command in, one JSON line out."""
    return ProbeSession([ctx.probe] + base_args(ctx) + ["commands"], Run)


def settings(ctx, **kv):
    ctx.fake.post("/_fake/settings", kv)


def fields(columns):
    return [{"name": n, "type": t, "mode": "NULLABLE"} for n, t in columns]


def make_table(ctx, table="sales", columns=SALES_COLUMNS):
    ctx.fake.post("/_fake/tables", {"project": PROJECT, "dataset": DATASET, "table": table,
                                    "schema": {"fields": fields(columns)}})


def stored_rows(ctx, table="sales"):
    """The table's rows; an error if there is no such table."""
    return ctx.fake.get("/_fake/tables/%s/%s/%s/rows" % (PROJECT, DATASET, table))["rows"]


def stored_keys(ctx, table="sales"):
    """No such table: nothing stored."""
    return [r.get("uniqueCode") for r in ctx.fake.rows(table)]


def sale(key, i=0, **extra):
    row = {"uniqueCode": key, "eventId": "DF-100", "eventName": "Test Night", "sold": i % 5 + 1,
           "faceValue": 12.5, "isPending": False, "postCode": POSTCODE, "currency": "GBP"}
    row.update(extra)
    return row


def rows_file(ctx, rows):
    ctx.nfile += 1
    path = os.path.join(ctx.tmp, "rows-%d.ndjson" % ctx.nfile)
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r, separators=(",", ":")) + "\n")
    ctx.sent.extend(r["uniqueCode"] for r in rows)
    return path


def sales(prefix, n, **extra):
    return [sale("%s%04d" % (prefix, i), i, **extra) for i in range(n)]


def states(res):
    out = {}
    for r in res.get("rows", []):
        out.setdefault(r["state"], set()).add(r["key"])
    return out


def calls(ctx, path_part, method="POST"):
    return [r for r in ctx.fake.requests()
            if r["method"] == method and path_part in r["path"]]


def uploads(ctx):
    out = []
    for r in calls(ctx, UPLOAD):
        meta, media, ctype = split_multipart(r)
        out.append({"req": r, "meta": meta, "media": media, "ctype": ctype,
                    "job_id": meta["jobReference"]["jobId"]})
    return out


def lost(req):
    """The fake processed this request and closed the connection without answering."""
    return bool((req.get("fault") or {}).get("lost_ack"))


def split_multipart(req):
    ctype = header(req, "Content-Type")
    m = re.match(r"multipart/related; boundary=([A-Za-z0-9]+)$", ctype or "")
    check(m, "multipart content type: %r" % ctype)
    b = m.group(1)
    body = req["body"]
    head1 = "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n" % b
    check(body.startswith(head1), "first part header: %r" % body[:120])
    rest = body[len(head1):]
    sep = "\r\n--%s\r\nContent-Type: application/octet-stream\r\n\r\n" % b
    check(rest.count(sep) == 1, "exactly one media part delimiter")
    meta, media = rest.split(sep)
    tail = "\r\n--%s--" % b
    check(media.endswith(tail), "closing delimiter")
    media = media[:-len(tail)]
    check(b not in meta and b not in media, "boundary occurs in no part")
    return json.loads(meta), media, ctype


def ensure_stored_matches(ctx, res=None, table="sales"):
    """The fake holds exactly the keys sent minus invalid/pending ones, none twice."""
    keys = stored_keys(ctx, table)
    dup = sorted({k for k in keys if keys.count(k) > 1}) if len(keys) != len(set(keys)) else []
    check(not dup, "keys stored twice: %r" % dup[:10])
    not_landed = set()
    if res is not None:
        st = states(res)
        not_landed = st.get("invalid", set()) | st.get("pending", set())
        check(st.get("done", set()) == set(keys),
              "rows reported done == rows stored (%d vs %d)" % (len(st.get("done", ())),
                                                                len(keys)))
    check(set(keys) == set(ctx.sent) - not_landed,
          "stored key set: %d stored, %d sent, %d not landed" % (len(set(keys)),
                                                                 len(set(ctx.sent)),
                                                                 len(not_landed)))


# ---- tables and datasets --------------------------------------------------------------------


def test_missing_table_without_create_names_table_and_setting(ctx):
    r = probe(ctx, "ensure-table", "sales", "sales")
    res = r.result("ensure-table")
    check(r.rc == 1 and res.get("errno") == "ENOENT", "ENOENT", r)
    check("%s:%s.sales" % (PROJECT, DATASET) in r.err and "create_tables" in r.err,
          "log names the table and create_tables", r)
    check(not calls(ctx, "/datasets/%s/tables" % DATASET), "no tables.insert without create")


def test_missing_table_is_created_with_the_schema(ctx):
    r = probe(ctx, "ensure-table", "sales", "sales", "--create")
    check(r.rc == 0 and r.result("ensure-table").get("rc") == 0, "created", r)
    ins = [q for q in calls(ctx, "/datasets/%s/tables" % DATASET) if q["path"].endswith("/tables")]
    check(len(ins) == 1 and ins[0]["status"] == 200, "one tables.insert")
    body = json.loads(ins[0]["body"])
    check(body["tableReference"] == {"projectId": PROJECT, "datasetId": DATASET,
                                     "tableId": "sales"}, "tableReference %r" % body)
    got = [(f["name"], f["type"]) for f in body["schema"]["fields"]]
    check(sorted(got) == sorted(SALES_COLUMNS), "schema columns %r" % got)
    check(all(f.get("mode") == "NULLABLE" for f in body["schema"]["fields"]), "all NULLABLE")
    check(stored_rows(ctx) == [], "table exists and is empty")
    # The next start finds it and creates nothing.
    r = probe(ctx, "ensure-table", "sales", "sales", "--create")
    check(r.rc == 0, "second run", r)
    check(len([q for q in calls(ctx, "/tables") if q["path"].endswith("/tables")]) == 1,
          "no second tables.insert")
    # Query parameters: prettyPrint=false everywhere.
    for q in ctx.fake.requests():
        if "/bigquery/v2/" in q["path"]:
            check(q["query"].get("prettyPrint") == ["false"], "prettyPrint=false on " + q["path"])


def test_table_created_meanwhile_409_reads_it_again(ctx):
    # The insert arrives (and creates the table) but its answer is lost: the resend meets 409.
    ctx.fake.fault(method="POST", path=r"/datasets/[^/]+/tables$", action={"lost_ack": True})
    r = probe(ctx, "ensure-table", "sales", "sales", "--create")
    check(r.rc == 0, "ensure-table succeeds after 409", r)
    ins = [q for q in calls(ctx, "/tables") if q["path"].endswith("/tables")]
    check(len(ins) == 2 and lost(ins[0]) and ins[1]["status"] == 409,
          "insert answered nothing, then 409: %r" % [q["status"] for q in ins])
    gets = [q for q in ctx.fake.requests() if q["method"] == "GET" and
            q["path"].endswith("/tables/sales")]
    check(len(gets) == 2 and gets[-1]["status"] == 200, "tables.get again after the 409")


def test_missing_column_is_an_actionable_error(ctx):
    make_table(ctx, columns=[c for c in SALES_COLUMNS if c[0] != "postCode"])
    r = probe(ctx, "ensure-table", "sales", "sales", "--create")
    check(r.rc == 1 and r.result("ensure-table").get("errno") == "EINVAL", "EINVAL", r)
    check("postCode" in r.err and "ALTER TABLE" in r.err and "ADD COLUMN postCode STRING" in r.err,
          "log names the column and the fix", r)


def test_wrong_column_type_is_named(ctx):
    make_table(ctx, columns=[(n, "STRING" if n == "sold" else t) for n, t in SALES_COLUMNS])
    r = probe(ctx, "ensure-table", "sales", "sales")
    check(r.rc == 1 and "sold" in r.err and "STRING" in r.err, "type mismatch named", r)


def test_missing_dataset_and_other_location(ctx):
    r = probe(ctx, "ensure-table", "sales", "sales", **{"--dataset": "nope"})
    check(r.rc == 1 and r.result("dataset").get("errno") == "ENOENT", "ENOENT", r)
    check("%s:nope not found" % PROJECT in r.err and "bigquery.dataset" in r.err,
          "actionable message", r)
    ctx.fake.post("/_fake/datasets", {"project": PROJECT, "dataset": "usds", "location": "US"})
    r = probe(ctx, "ensure-table", "sales", "sales", "--create", **{"--dataset": "usds"})
    check(r.rc == 0, "works in another location", r)
    check("is in location US, not EU" in r.err, "notice about the location", r)


def test_dataset_access_denied_names_the_permission(ctx):
    ctx.fake.fault(method="GET", path=r"/datasets/", times=0, action={
        "status": 403, "body": {"error": {"code": 403, "message": "Access Denied: Dataset",
                                          "errors": [{"reason": "accessDenied",
                                                      "message": "Access Denied"}]}}})
    r = probe(ctx, "ensure-table", "sales", "sales")
    check(r.rc == 1 and r.result("dataset").get("errno") == "EACCES", "EACCES", r)
    check("bigquery.datasets.get" in r.err, "names the permission", r)
    check(len(calls(ctx, "/datasets/", "GET")) == 1, "403 accessDenied is not retried")


# ---- seeding --------------------------------------------------------------------------------


def preload(ctx, keys):
    for i in range(0, len(keys), 50000):
        ctx.fake.add_rows("sales", [{"uniqueCode": k} for k in keys[i:i + 50000]])


SEED_PAGE_ROWS = 25000  # BQ_SEED_PAGE_ROWS in src/bigquery.h


def test_seed_100000_keys_over_many_pages_exactly_once(ctx):
    make_table(ctx)
    keys = ["S%06d" % i for i in range(100000)]
    preload(ctx, keys)
    settings(ctx, max_page_bytes=200000)
    r = probe(ctx, "seed", "sales", "sales")
    res = r.result("seed")
    check(r.rc == 0 and res.get("rc") == 0, "seed ok", r)
    got = res["keys"]
    check(len(got) == 100000 and set(got) == set(keys), "every key once (%d)" % len(got))
    pages = [q for q in calls(ctx, "/queries/", "GET") if "pageToken" in q["query"]]
    check(len(pages) >= 10, "many pages, saw %d" % len(pages))
    check(res["progress_calls"] == len(pages) + 2 and res["last_progress"] == 100000,
          "progress after every page: %r" % {k: res[k] for k in ("progress_calls",
                                                                "last_progress")})
    check(res["first_progress"] == 0 and res["first_total"] == 100000,
          "the total announced before the first row: %r" % {
              k: res[k] for k in ("first_progress", "first_total")})
    q = calls(ctx, "/queries")[0]
    body = json.loads(q["body"])
    check(body["useLegacySql"] is False and body["location"] == "EU" and
          body["maxResults"] == SEED_PAGE_ROWS and body["formatOptions"] == {"useInt64Timestamp": True},
          "query body %r" % body)
    check(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                       body["requestId"]), "requestId is a UUID v4: %r" % body["requestId"])
    for p in pages:
        check(p["query"].get("location") == ["EU"], "location on every page")
    # A second seed uses a fresh request id.
    r2 = probe(ctx, "seed", "sales", "sales", "--stop-after", "10")
    check(r2.result("seed").get("rc") == 7 and r2.result("seed")["rows"] == 10,
          "the callback's stop value comes back", r2)
    rid2 = json.loads(calls(ctx, "/queries")[-1]["body"])["requestId"]
    check(rid2 != body["requestId"], "fresh requestId per query")


def test_seed_waits_for_an_incomplete_job(ctx):
    make_table(ctx)
    keys = ["W%05d" % i for i in range(5000)]
    preload(ctx, keys)
    settings(ctx, query_incomplete_polls=3, max_page_bytes=30000)
    r = probe(ctx, "seed", "sales", "sales")
    res = r.result("seed")
    check(r.rc == 0 and len(res["keys"]) == 5000 and set(res["keys"]) == set(keys),
          "every key once", r)
    polls = [q for q in calls(ctx, "/queries/", "GET") if q["query"].get("maxResults") == ["0"]]
    # jobs.query was the first incomplete answer, two polls the next, the third completes.
    check(len(polls) == 3, "three maxResults=0 polls, saw %d" % len(polls))
    check(all(q["query"].get("timeoutMs") and q["query"].get("location") == ["EU"]
              for q in polls), "polls carry timeoutMs and location")


def test_seed_of_a_query_error_fails(ctx):
    r = probe(ctx, "seed", "nosuchtable", "sales")
    check(r.rc == 1 and r.result("seed").get("rc", 0) < 0, "error", r)


# ---- streaming inserts ----------------------------------------------------------------------


def test_streaming_insert_all_rows_land(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("A", 1234))
    r, res = insert(ctx, path, "--batch-rows", "500")
    check(r.rc == 0 and res["done"] == 1234 and res["pending"] == 0, "all done", r)
    ins = calls(ctx, INSERT_ALL)
    check(len(ins) == 3, "three requests of <= 500 rows, saw %d" % len(ins))
    body = json.loads(ins[0]["body"])
    check(body["skipInvalidRows"] is False and body["ignoreUnknownValues"] is False,
          "skipInvalidRows/ignoreUnknownValues false")
    check(len(body["rows"]) == 500 and body["rows"][0]["insertId"] == "A0000" and
          body["rows"][0]["json"]["uniqueCode"] == "A0000", "insertId = key")
    ensure_stored_matches(ctx, res)


def test_streaming_batches_by_bytes(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("B", 200))
    r, res = insert(ctx, path, "--batch-bytes", "5000")
    check(r.rc == 0 and res["done"] == 200, "all done", r)
    ins = calls(ctx, INSERT_ALL)
    check(len(ins) > 5 and all(len(q["body"].encode()) <= 5000 for q in ins),
          "every request within 5000 bytes (%r)" % [len(q["body"]) for q in ins])
    ensure_stored_matches(ctx, res)


def test_streaming_partial_errors_invalid_reported_stopped_resent(ctx):
    make_table(ctx)
    rows = sales("P", 10)
    path = rows_file(ctx, rows)
    ctx.fake.fault(method="POST", path=INSERT_ALL, action={"insert_errors": [
        {"index": 2, "reason": "invalid", "location": "eventName",
         "message": "Invalid string '%s' here" % BAD_VALUE},
        {"index": 5, "reason": "invalid", "location": "sold",
         "message": "Cannot convert value to integer (bad value): %s" % BAD_VALUE},
        {"index": 5, "reason": "stopped"}]})
    r, res = insert(ctx, path)
    st = states(res)
    check(r.rc == 0 and st.get("invalid") == {"P0002", "P0005"} and res["done"] == 8,
          "2 invalid, 8 done", r)
    reasons = {x["key"]: x["reason"] for x in res["rows"] if x["state"] == "invalid"}
    check(reasons == {"P0002": 'eventName: Invalid string "..." here',
                      "P0005": "sold: Cannot convert value to integer (bad value)"},
          "reasons without values: %r" % reasons)
    ins = calls(ctx, INSERT_ALL)
    check(len(ins) == 2, "one resend, saw %d" % len(ins))
    resent = json.loads(ins[1]["body"])["rows"]
    orig = {x["insertId"]: x for x in json.loads(ins[0]["body"])["rows"]}
    check(len(resent) == 8 and all(orig[x["insertId"]] == x for x in resent),
          "the 8 others resent unchanged, same insertIds")
    ensure_stored_matches(ctx, res)


def test_streaming_transient_row_errors_are_resent(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("T", 6))
    ctx.fake.fault(method="POST", path=INSERT_ALL, action={"insert_errors": [
        {"index": 1, "reason": "backendError"}, {"index": 3, "reason": "timeout"},
        {"index": 4, "reason": "someNewReason"}]})
    r, res = insert(ctx, path)
    check(r.rc == 0 and res["done"] == 6, "all done", r)
    ins = calls(ctx, INSERT_ALL)
    check(len(ins) == 2 and {x["insertId"] for x in json.loads(ins[1]["body"])["rows"]} ==
          {"T0001", "T0003", "T0004"}, "the three rows resent")
    ensure_stored_matches(ctx, res)


def test_streaming_rows_failing_every_time_stay_pending(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("F", 4))
    ctx.fake.fault(method="POST", path=INSERT_ALL, times=0,
                   action={"insert_errors": [{"index": 0, "reason": "backendError"}]})
    r, res = insert(ctx, path)
    # ETIMEDOUT, not EAGAIN: BigQuery answered, so the caller may go on with other rows.
    check(res.get("errno") == "ETIMEDOUT" and states(res).get("pending") == {"F0000"} and
          res["done"] == 3, "one row pending after the resends", r)
    check(len(calls(ctx, INSERT_ALL)) == 1 + 5, "BQ_ROW_RESEND_ROUNDS resends")
    ensure_stored_matches(ctx, res)


def test_row_resends_start_within_the_span_of_the_first_send(ctx):
    """A row BigQuery answered with backendError may have been stored by an earlier send
    whose answer was lost: every resend must start within the span (half the trusted
    insertId window) of the call's first send, or a row could be stored twice. Found by
    the fault-schedule checker: row resends used a fixed 25 s span."""
    make_table(ctx)
    path = rows_file(ctx, sales("W", 4))
    ctx.fake.fault(method="POST", path=INSERT_ALL, times=0,
                   action={"insert_errors": [{"index": 0, "reason": "backendError"}]})
    r = probe(ctx, "insert", "sales", "sales", path, **{"--resend-ms": "400",
                                                       "--span-ms": "1000"})
    res = r.result("insert")
    ins = calls(ctx, INSERT_ALL)
    # Resend 1 waits 400-600 ms; resend 2 would wait 800-1000 ms more: past the span.
    check(len(ins) == 2, "one resend within the span, saw %d requests" % len(ins))
    check(res.get("errno") == "ETIMEDOUT" and states(res).get("pending") == {"W0000"} and
          res["done"] == 3, "the row stays pending for a look-up, not resent late", r)
    check(res["ms"] < 1000 + 500, "the call ended within the span (%s ms)" % res["ms"])
    ensure_stored_matches(ctx, res)


def test_lost_acknowledgement_gives_no_duplicate(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("L", 50))
    ctx.fake.fault(method="POST", path=INSERT_ALL, action={"lost_ack": True})
    r, res = insert(ctx, path)
    check(r.rc == 0 and res["done"] == 50, "all done", r)
    ins = calls(ctx, INSERT_ALL)
    check(len(ins) == 2 and lost(ins[0]) and ins[0]["body"] == ins[1]["body"],
          "the same request sent again")
    check(len(stored_keys(ctx)) == 50, "50 rows stored, not 100")
    ensure_stored_matches(ctx, res)


def test_unreadable_reply_keeps_rows_pending_for_the_next_call(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("G", 5))
    ctx.fake.fault(method="POST", path=INSERT_ALL, action={"malformed": True})
    r, res = insert(ctx, path)
    check(res.get("errno") == "EAGAIN" and res["pending"] == 5, "EAGAIN, pending", r)
    r, res = insert(ctx, path)
    check(r.rc == 0 and res["done"] == 5, "done next time", r)
    ensure_stored_matches(ctx, res)


def test_transient_http_errors_then_success(ctx):
    make_table(ctx)
    cases = [
        ("503", {"status": 503}),
        ("429", {"status": 429, "headers": {"Retry-After": "1"}}),
        ("403 rateLimitExceeded", {"status": 403, "body": {"error": {
            "code": 403, "message": "Exceeded rate limits: too many table update operations",
            "errors": [{"domain": "global", "reason": "rateLimitExceeded",
                        "message": "Exceeded rate limits"}]}}}),
    ]
    for n, (name, action) in enumerate(cases):
        ctx.fake.call("DELETE", "/_fake/requests")
        path = rows_file(ctx, sales("R%d" % n, 20))
        ctx.fake.fault(method="POST", path=INSERT_ALL, action=action)
        r, res = insert(ctx, path)
        check(r.rc == 0 and res["done"] == 20, "%s: all done" % name, r)
        ins = calls(ctx, INSERT_ALL)
        check([q["status"] for q in ins] == [action["status"], 200],
              "%s: one retry (%r)" % (name, [q["status"] for q in ins]))
        if name == "429":
            check(res["ms"] >= 950, "Retry-After honoured (%d ms)" % res["ms"])
    ensure_stored_matches(ctx)


def test_access_denied_is_not_retried(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("D", 10))
    ctx.fake.fault(method="POST", path=INSERT_ALL, times=0, action={"status": 403, "body": {
        "error": {"code": 403, "message": "Access Denied: Table %s:%s.sales: Permission "
                  "bigquery.tables.updateData denied" % (PROJECT, DATASET),
                  "errors": [{"domain": "global", "reason": "accessDenied",
                              "message": "Access Denied"}]}}})
    r, res = insert(ctx, path)
    check(res.get("errno") == "EACCES" and res["pending"] == 10, "EACCES, rows pending", r)
    check(len(calls(ctx, INSERT_ALL)) == 1, "exactly one request")
    check("bigquery.tables.updateData" in r.err and "roles/bigquery.dataEditor" in r.err,
          "log names the permission and the role", r)
    ensure_stored_matches(ctx, res)


def test_table_deleted_gives_enoent_and_keeps_rows(ctx):
    path = rows_file(ctx, sales("N", 3))
    r, res = insert(ctx, path)
    check(res.get("errno") == "ENOENT" and res["pending"] == 3, "ENOENT, rows pending", r)
    check("not found" in r.err and "spooled" in r.err, "log says so", r)


def test_401_mid_run_refreshes_the_token_and_succeeds(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("U", 5))
    p = session(ctx)
    first = p.send("check-dataset")
    ctx.fake.post("/_fake/tokens/revoke")
    res = p.send("insert sales sales %s" % path)
    run = p.close()
    check(first.get("rc") == 0 and res.get("rc") == 0 and res["done"] == 5, "insert ok", run)
    ins = calls(ctx, INSERT_ALL)
    check([q["status"] for q in ins] == [401, 200], "401 then 200: %r" %
          [q["status"] for q in ins])
    tokens = [q for q in ctx.fake.requests() if q["path"] == "/token"]
    check(len(tokens) == 2, "a second token was fetched (%d)" % len(tokens))
    check(header(ins[0], "Authorization") != header(ins[1], "Authorization"), "new bearer")
    ensure_stored_matches(ctx, res)


def test_payload_too_large_splits_and_a_huge_row_is_invalid(ctx):
    make_table(ctx)
    rows = sales("Z", 40)
    rows[17]["eventName"] = "x" * 5000
    path = rows_file(ctx, rows)
    settings(ctx, max_insert_bytes=3000)
    r, res = insert(ctx, path)
    check(r.rc == 0 and res["done"] == 39 and states(res).get("invalid") == {"Z0017"},
          "39 done, the huge row invalid", r)
    reason = [x["reason"] for x in res["rows"] if x["key"] == "Z0017"][0]
    check(reason == "row too large for a streaming insert", "reason %r" % reason)
    check(res["stats"]["splits"] >= 3, "splits counted: %r" % res["stats"])
    ok = [q for q in calls(ctx, INSERT_ALL) if q["status"] == 200]
    check(all(len(q["body"].encode()) <= 3000 for q in ok), "accepted requests fit")
    ensure_stored_matches(ctx, res)


def test_too_many_rows_splits(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("M", 30))
    settings(ctx, max_insert_rows=7)
    r, res = insert(ctx, path)
    check(r.rc == 0 and res["done"] == 30, "all done", r)
    ok = [q for q in calls(ctx, INSERT_ALL) if q["status"] == 200]
    check(all(len(json.loads(q["body"])["rows"]) <= 7 for q in ok), "accepted requests <= 7 rows")
    ensure_stored_matches(ctx, res)


def test_413_with_an_html_body_splits(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("H", 16))
    ctx.fake.fault(method="POST", path=INSERT_ALL, action={
        "status": 413, "body": "<html><head><title>413 Request Entity Too Large</title></head>"
                               "<body><h1>Request Entity Too Large</h1></body></html>"})
    r, res = insert(ctx, path)
    check(r.rc == 0 and res["done"] == 16 and res["stats"]["splits"] == 1, "split once", r)
    ins = calls(ctx, INSERT_ALL)
    check([len(json.loads(q["body"])["rows"]) for q in ins] == [16, 8, 8], "16 then 8 + 8")
    ensure_stored_matches(ctx, res)


# ---- load jobs ------------------------------------------------------------------------------


def test_load_job_lands_rows_under_a_content_job_id(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("J", 300))
    r, res = insert(ctx, path, "--method", "load", "--batch-rows", "10")
    check(r.rc == 0 and res["done"] == 300, "all done", r)
    ups = uploads(ctx)
    check(len(ups) == 1, "one load job for 300 rows (batch_rows does not limit loads)")
    u = ups[0]
    check(u["req"]["query"].get("uploadType") == ["multipart"], "uploadType=multipart")
    lines = u["media"].split("\n")
    check(lines[-1] == "" and len(lines) == 301, "NDJSON, one row per line")
    digest = hashlib.sha256(u["media"].encode()).hexdigest()[:40]
    check(u["job_id"] == "stbq_sales_" + digest, "job id from the content: %s" % u["job_id"])
    load = u["meta"]["configuration"]["load"]
    check(load == {"destinationTable": {"projectId": PROJECT, "datasetId": DATASET,
                                        "tableId": "sales"},
                   "sourceFormat": "NEWLINE_DELIMITED_JSON", "writeDisposition": "WRITE_APPEND",
                   "createDisposition": "CREATE_NEVER", "ignoreUnknownValues": False,
                   "maxBadRecords": 0}, "load configuration %r" % load)
    check(u["meta"]["jobReference"]["location"] == "EU", "job location")
    gets = calls(ctx, "/jobs/", "GET")
    check(gets and all(q["query"].get("location") == ["EU"] for q in gets),
          "jobs.get with location")
    ensure_stored_matches(ctx, res)
    # The same rows again: 409, the job is followed, nothing loads twice.
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["done"] == 300, "second run done", r)
    check([u["req"]["status"] for u in uploads(ctx)] == [200, 409], "second upload got 409")
    ensure_stored_matches(ctx, res)


def test_load_resubmission_after_lost_ack_uses_the_same_job_id(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("K", 25))
    settings(ctx, job_polls_to_done=2)
    ctx.fake.fault(method="POST", path=UPLOAD, action={"lost_ack": True})
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["done"] == 25, "all done", r)
    ups = uploads(ctx)
    check(len(ups) == 2 and ups[0]["job_id"] == ups[1]["job_id"], "same job id resubmitted")
    check(lost(ups[0]["req"]) and ups[1]["req"]["status"] == 409, "lost, then 409: %r" %
          [u["req"]["status"] for u in ups])
    check(len(calls(ctx, "/jobs/", "GET")) >= 2, "the job was polled to DONE")
    ensure_stored_matches(ctx, res)


def test_load_invalid_rows_found_and_the_rest_lands(ctx):
    make_table(ctx)
    rows = sales("V", 40)
    rows[7]["sold"] = BAD_VALUE
    rows[31]["faceValue"] = BAD_VALUE
    path = rows_file(ctx, rows)
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and states(res).get("invalid") == {"V0007", "V0031"} and res["done"] == 38,
          "two invalid, 38 done", r)
    reasons = sorted(x["reason"] for x in res["rows"] if x["state"] == "invalid")
    check(reasons == ["faceValue: Cannot convert value to floating point (bad value)",
                      "sold: Cannot convert value to integer (bad value)"], "reasons %r" % reasons)
    ids = [u["job_id"] for u in uploads(ctx)]
    check(len(ids) == len(set(ids)), "every part a new job id")
    ensure_stored_matches(ctx, res)


def test_load_rows_all_named_invalid_cost_one_job(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("I", 5, sold=BAD_VALUE))
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["invalid"] == 5, "all invalid", r)
    check(len(uploads(ctx)) == 1, "no further jobs when BigQuery named every row")
    ensure_stored_matches(ctx, res)


def test_load_job_invalid_without_positions_is_bisected(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("X", 8))
    ctx.fake.fault(method="POST", path=UPLOAD, action={"job_error": {
        "reason": "invalid", "message": "Error while reading data, error message: bad data"}})
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["done"] == 8 and res["stats"]["splits"] == 1, "halves land", r)
    ups = uploads(ctx)
    check([u["media"].count("\n") for u in ups] == [8, 4, 4], "8 then 4 + 4 rows: %r" %
          [u["media"].count("\n") for u in ups])
    check(len({u["job_id"] for u in ups}) == 3, "three job ids")
    ensure_stored_matches(ctx, res)


def test_load_backend_error_reruns_under_a_new_job_id(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("E", 12))
    ctx.fake.fault(method="POST", path=UPLOAD, action={"job_error": {
        "reason": "backendError", "message": "Backend error. Job aborted."}})
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["done"] == 12, "all done", r)
    ids = [u["job_id"] for u in uploads(ctx)]
    check(len(ids) == 2 and ids[1] == ids[0] + "_r1", "attempt suffix: %r" % ids)
    ensure_stored_matches(ctx, res)
    # Next time the same content meets the failed job through 409 and goes to _r1 (done).
    ctx.fake.call("DELETE", "/_fake/requests")
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["done"] == 12, "replay done", r)
    check([(u["job_id"], u["req"]["status"]) for u in uploads(ctx)] ==
          [(ids[0], 409), (ids[1], 409)], "both ids found by 409")
    ensure_stored_matches(ctx, res)


def test_load_job_not_done_in_time_stays_pending_then_is_followed(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("G", 9))
    settings(ctx, job_polls_to_done=100000)
    r, res = insert(ctx, path, "--method", "load", "--job-max-wait-ms", "400")
    check(res.get("errno") == "EAGAIN" and res["pending"] == 9, "EAGAIN, pending", r)
    check(stored_keys(ctx) == [], "nothing stored yet")
    settings(ctx, job_polls_to_done=1)
    r, res = insert(ctx, path, "--method", "load")
    check(r.rc == 0 and res["done"] == 9, "done on the next call", r)
    check(len({u["job_id"] for u in uploads(ctx)}) == 1, "one job id throughout")
    ensure_stored_matches(ctx, res)


def test_load_access_denied_is_not_retried(ctx):
    make_table(ctx)
    path = rows_file(ctx, sales("Q", 3))
    ctx.fake.fault(method="POST", path=UPLOAD, times=0, action={"status": 403, "body": {
        "error": {"code": 403, "message": "Access Denied: Project %s: User does not have "
                  "bigquery.jobs.create permission" % PROJECT,
                  "errors": [{"reason": "accessDenied", "message": "Access Denied"}]}}})
    r, res = insert(ctx, path, "--method", "load")
    check(res.get("errno") == "EACCES" and res["pending"] == 3, "EACCES", r)
    check(len(calls(ctx, UPLOAD)) == 1 and "bigquery.jobs.create" in r.err, "one try, advice", r)


# ---- at the end -----------------------------------------------------------------------------


def test_no_output_carries_tokens_or_row_values(ctx):
    tokens = set()
    for q in ctx.all_requests:
        auth = header(q, "Authorization") or ""
        if auth.startswith("Bearer "):
            tokens.add(auth[7:])
    check(tokens, "tokens were seen")
    for out in Run.outputs:
        for t in tokens:
            check(t not in out, "an access token leaked")
        # stdout carries keys by design, never row values; stderr carries neither.
        check(POSTCODE not in out, "a post code leaked")
        check(BAD_VALUE not in out, "an invalid value leaked")


# ---- runner ---------------------------------------------------------------------------------


class Ctx:
    pass


def with_store_checks(case):
    """The case, then what every case leaves whatever it checked itself: nothing stored twice,
    nothing stored that was not sent."""

    @functools.wraps(case)
    def run(ctx):
        ctx.sent = []
        t0 = time.monotonic()
        case(ctx)
        if ctx.sent:
            keys = stored_keys(ctx)
            check(len(keys) == len(set(keys)), "a key stored twice")
            check(set(keys) <= set(ctx.sent), "a stored key that was never sent")
        print("# %.1f s" % (time.monotonic() - t0))
    return run


def main():
    ctx = Ctx()
    ctx.probe = need_probe("bq_probe")
    last = "test_no_output_carries_tokens_or_row_values"
    only = sys.argv[1:]
    cases = [with_store_checks(v) for k, v in list(globals().items())
             if k.startswith("test_") and callable(v) and (not only or k in only or k == last)]
    tap = Tap()
    with Workdir("bq-it") as w:
        ctx.tmp = w.path
        ctx.nfile = 0
        ctx.all_requests = []
        ctx.fake = w.add(GoogleFake(w.path, project=PROJECT))
        ctx.sa = ctx.fake.sa_file
        os.chmod(ctx.sa, 0o600)
        run_cases(tap, ctx, cases, look_back=(last,))
    tap.done()


if __name__ == "__main__":
    main()

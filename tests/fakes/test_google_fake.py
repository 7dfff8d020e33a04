#!/usr/bin/python3
"""TAP test of tests/fakes/google-fake (and, through it, fakecore.py).

Starts the fake on a free port, drives it over HTTP with urllib and checks every endpoint on its
success and error paths.  Every successful Google API response is also walked against the
discovery document's schema for that method (tests/contracts/*.discovery.json)."""

import base64
import datetime
import http.client
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "google-fake")
CONTRACTS = os.path.join(HERE, "..", "contracts")
P, D = "proj-1", "seetickets_data"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# The JWT audience Google's libraries sign whatever token_uri says (see google-fake).
GOOGLE_AUD = "https://oauth2.googleapis.com/token"
GOOGLE_AUD_V4 = "https://www.googleapis.com/oauth2/v4/token"
AUD_ERROR = {
    "error": "invalid_grant",
    "error_description": "Invalid JWT: Failed audience check. The right audience is "
    "https://www.googleapis.com/oauth2/v4/token",
}
BAD_TOKEN_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
    "or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
NO_CREDENTIAL_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)

SALES_FIELDS = (
    "affiliate:STRING currency:STRING date:STRING deliveryMethod:STRING deviceModel:STRING "
    "deviceType:STRING eventDate:STRING eventId:STRING eventName:STRING faceValue:FLOAT "
    "grossCost:FLOAT grossFace:FLOAT grossSales:FLOAT isInternetOrder:BOOLEAN isPending:BOOLEAN "
    "country:STRING countryIso:STRING postCode:STRING region1:STRING region2:STRING region3:STRING "
    "region4:STRING offerCode:STRING partnerSite:STRING paymentMethod:STRING priceId:STRING "
    "priceName:STRING salesChannel:STRING sold:INTEGER source:STRING taxTotal:FLOAT "
    "ticketPrice:FLOAT uniqueCode:STRING"
)
EVENTS_FIELDS = (
    "doorsOpen:STRING id:STRING name:STRING promoterName:STRING starts:STRING "
    "timeslotEnabled:BOOLEAN tourId:STRING tourName:STRING venueName:STRING"
)


def schema_of(spec):
    return [
        {"name": n, "type": t, "mode": "NULLABLE"} for n, t in (x.split(":") for x in spec.split())
    ]


# -- TAP -----------------------------------------------------------------------------------------


class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, name))
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, name))
            if diag is not None:
                for line in str(diag).splitlines()[:40]:
                    print("#   " + line)
        sys.stdout.flush()
        return bool(cond)

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why))

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line)


T = Tap()


# -- conformance against the discovery documents -------------------------------------------------


class Conformance:
    """Walks a JSON response against the discovery schema of the method's response."""

    def __init__(self):
        self.docs = {}
        for key, name in (("bigquery", "bigquery.v2"), ("secretmanager", "secretmanager.v1")):
            with open(os.path.join(CONTRACTS, name + ".discovery.json")) as f:
                self.docs[key] = json.load(f)
        self.results = {}  # method -> [count, [problems]]

    def response_ref(self, method):
        api, rest = method.split(".", 1)
        doc = self.docs[api]
        *res_path, meth = rest.split(".")
        node = doc
        for r in res_path:
            node = node["resources"][r]
        return api, node["methods"][meth]["response"]["$ref"]

    def problems(self, method, value):
        api, ref = self.response_ref(method)
        errs = []
        self.walk(self.docs[api]["schemas"], {"$ref": ref}, value, "$", errs)
        return errs

    def walk(self, schemas, s, v, path, errs):
        while "$ref" in s:
            s = schemas[s["$ref"]]
        t = s.get("type")
        if t == "any":
            return
        if v is None:
            errs.append("%s: null where %s expected" % (path, t))
            return
        if t == "object":
            if not isinstance(v, dict):
                errs.append("%s: expected object, got %s" % (path, type(v).__name__))
                return
            props = s.get("properties")
            addl = s.get("additionalProperties")
            for k, x in v.items():
                if props is not None and k in props:
                    self.walk(schemas, props[k], x, path + "." + k, errs)
                elif addl is not None:
                    self.walk(schemas, addl, x, path + "." + k, errs)
                else:
                    errs.append("%s: key %r is not in the schema" % (path, k))
        elif t == "array":
            if not isinstance(v, list):
                errs.append("%s: expected array, got %s" % (path, type(v).__name__))
                return
            for i, x in enumerate(v):
                self.walk(schemas, s.get("items", {}), x, "%s[%d]" % (path, i), errs)
        elif t == "string":
            if not isinstance(v, str):
                errs.append("%s: expected string (format %s), got %r" % (path, s.get("format"), v))
            elif s.get("format") in ("int64", "uint64") and not re.fullmatch(r"-?\d+", v):
                errs.append("%s: %s string is not a decimal integer: %r" % (path, s["format"], v))
            elif s.get("format") == "byte":
                try:
                    base64.b64decode(v.replace("-", "+").replace("_", "/"), validate=True)
                except ValueError:
                    errs.append("%s: byte string is not base64: %r" % (path, v))
        elif t == "integer":
            if not isinstance(v, int) or isinstance(v, bool):
                errs.append("%s: expected integer, got %r" % (path, v))
        elif t == "number":
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                errs.append("%s: expected number, got %r" % (path, v))
        elif t == "boolean":
            if not isinstance(v, bool):
                errs.append("%s: expected boolean, got %r" % (path, v))

    def record(self, method, value):
        r = self.results.setdefault(method, [0, []])
        r[0] += 1
        r[1].extend(self.problems(method, value))


CONF = Conformance()


# -- HTTP ----------------------------------------------------------------------------------------


class Fake:
    def __init__(self, *extra):
        self.dir = tempfile.mkdtemp(prefix="google-fake-test.")
        pf = os.path.join(self.dir, "port")
        self.stderr_path = os.path.join(self.dir, "stderr")
        self.proc = subprocess.Popen(
            [FAKE, "--port", "0", "--port-file", pf, "--quiet"] + list(extra),
            stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, "w"),
        )
        deadline = time.time() + 15
        while not os.path.exists(pf):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("google-fake did not start: " + open(self.stderr_path).read())
            time.sleep(0.02)
        self.port = int(open(pf).read())
        self.base = "http://127.0.0.1:%d" % self.port
        self.token = None

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def http(self, method, path, body=None, headers=None, ctype=None):
        """-> (status, headers, body bytes); raises on a broken connection."""
        hdrs = dict(headers or {})
        data = None
        if body is not None:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode()
                hdrs.setdefault("Content-Type", ctype or "application/json")
            else:
                data = body if isinstance(body, bytes) else body.encode()
                if ctype:
                    hdrs["Content-Type"] = ctype
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def js(self, method, path, body=None, headers=None, ctype=None):
        st, h, b = self.http(method, path, body, headers, ctype)
        try:
            return st, json.loads(b) if b else None
        except ValueError:
            return st, b

    def ctl(self, method, path, body=None):
        st, j = self.js(method, "/_fake/" + path, body)
        if st != 200:
            raise RuntimeError("control %s %s -> %s %s" % (method, path, st, j))
        return j

    def api(self, conf_method, method, path, body=None, token=None, ctype=None, raw_headers=None):
        """A Google API call with a bearer token; successful replies are conformance-checked."""
        hdrs = dict(raw_headers or {})
        tok = self.token if token is None else token
        if tok:
            hdrs["Authorization"] = "Bearer " + tok
        st, h, b = self.http(method, path, body, hdrs, ctype)
        j = json.loads(b) if b else None
        if st == 200 and conf_method:
            CONF.record(conf_method, j)
        return st, j

    def bq(self, method, path, body=None, conf=None, **kw):
        return self.api(conf, method, "/bigquery/v2/projects/%s/%s" % (P, path), body, **kw)


def err_reason(j):
    try:
        return j["error"]["errors"][0]["reason"]
    except (KeyError, IndexError, TypeError):
        return None


def err_message(j):
    try:
        return j["error"]["message"]
    except (KeyError, TypeError):
        return None


# -- JWTs ----------------------------------------------------------------------------------------

from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import padding, rsa  # noqa: E402


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_jwt(
    key_json, aud=None, iat=None, exp=None, scope=SCOPE, private_key=None, alg="RS256", extra=None
):
    now = int(time.time())
    iat = now if iat is None else iat
    exp = iat + 3600 if exp is None else exp
    header = {"alg": alg, "typ": "JWT", "kid": key_json["private_key_id"]}
    claims = {
        "iss": key_json["client_email"],
        "aud": aud or GOOGLE_AUD,
        "iat": iat,
        "exp": exp,
    }
    if scope is not None:
        claims["scope"] = scope
    claims.update(extra or {})
    signing_input = b64u(json.dumps(header).encode()) + "." + b64u(json.dumps(claims).encode())
    key = private_key or serialization.load_pem_private_key(key_json["private_key"].encode(), None)
    sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64u(sig)


def token_request(f, form):
    return f.js(
        "POST",
        "/token",
        urllib.parse.urlencode(form),
        ctype="application/x-www-form-urlencoded",
    )


def jwt_grant(f, jwt):
    return token_request(
        f, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": jwt}
    )


def multipart(meta, media, boundary="b7c1e0d2a9", extra_part=False):
    parts = [
        b"--"
        + boundary.encode()
        + b"\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        + json.dumps(meta).encode()
        + b"\r\n",
        b"--"
        + boundary.encode()
        + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
        + media
        + b"\r\n",
    ]
    if extra_part:
        parts.append(b"--" + boundary.encode() + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n")
    return (
        b"".join(parts) + b"--" + boundary.encode() + b"--\r\n",
        "multipart/related; boundary=" + boundary,
    )


def load_job(
    f, job_id, rows_ndjson, table="sales", fmt="NEWLINE_DELIMITED_JSON", location="EU", **conf
):
    load = {
        "destinationTable": {"projectId": P, "datasetId": D, "tableId": table},
        "maxBadRecords": 0,
        "writeDisposition": "WRITE_APPEND",
        "createDisposition": "CREATE_NEVER",
    }
    if fmt:
        load["sourceFormat"] = fmt
    load.update(conf)
    meta = {"configuration": {"load": load}}
    if job_id is not None:
        meta["jobReference"] = {"projectId": P, "jobId": job_id, "location": location}
    body, ctype = multipart(meta, rows_ndjson)
    return f.api(
        "bigquery.jobs.insert",
        "POST",
        "/upload/bigquery/v2/projects/%s/jobs?uploadType=multipart" % P,
        body,
        ctype=ctype,
    )


def rows_of(f, table):
    return f.ctl("GET", "tables/%s/%s/%s/rows" % (P, D, table))


def query(f, sql, **kw):
    body = {"query": sql, "useLegacySql": False, "location": "EU"}
    body.update(kw)
    return f.bq("POST", "queries", body, conf="bigquery.jobs.query")


def gqr(f, job_id, **params):
    params.setdefault("location", "EU")
    return f.bq(
        "GET",
        "queries/%s?%s" % (job_id, urllib.parse.urlencode(params)),
        conf="bigquery.jobs.getQueryResults",
    )


def insert_all(f, table, rows, token=None, **kw):
    body = {"rows": rows}
    body.update(kw)
    return f.bq(
        "POST",
        "datasets/%s/tables/%s/insertAll" % (D, table),
        body,
        conf="bigquery.tabledata.insertAll",
        token=token,
    )


# -- the tests -----------------------------------------------------------------------------------


def test_cli_and_core(f):
    out = subprocess.run([FAKE, "--help"], capture_output=True, text=True, timeout=20)
    opts = [
        "--port",
        "--port-file",
        "--quiet",
        "--dataset",
        "--dedup-window",
        "--max-insert-bytes",
        "--max-insert-rows",
        "--max-page-bytes",
        "--token-lifetime",
        "--job-polls-to-done",
        "--query-incomplete-polls",
        "--project-id",
        "--expires-in-as-string",
    ]
    T.ok(
        out.returncode == 0 and all(o in out.stdout for o in opts),
        "--help documents every option",
        [o for o in opts if o not in out.stdout],
    )
    T.eq(f.ctl("GET", "health"), {"ok": True}, "GET /_fake/health")
    st, j = f.js("GET", "/no/such/path")
    T.ok(
        st == 404 and isinstance(j, dict) and "error" in j, "unmatched route is a JSON 404", (st, j)
    )
    st, j = f.js("POST", "/_fake/faults", "{not json")
    T.eq(st, 400, "control endpoint refuses invalid JSON with 400")


def test_auth(f):
    path = "/bigquery/v2/projects/%s/datasets/%s" % (P, D)
    st, h, b = f.http("GET", path)
    T.ok(
        st == 401
        and json.loads(b)
        == {
            "error": {
                "code": 401,
                "message": "Login Required.",
                "errors": [
                    {
                        "message": "Login Required.",
                        "domain": "global",
                        "reason": "required",
                        "location": "Authorization",
                        "locationType": "header",
                    }
                ],
                "status": "UNAUTHENTICATED",
            }
        }
        and h.get("WWW-Authenticate") == 'Bearer realm="https://accounts.google.com/"',
        "BigQuery without an Authorization header: 401 required, Login Required. (BigQuery v2)",
        (st, dict(h), b),
    )
    for name, hdrs in (
        ("an unknown bearer token", {"Authorization": "Bearer ya29.made-up"}),
        ("an empty bearer token", {"Authorization": "Bearer "}),
        ("a Basic credential", {"Authorization": "Basic dXNlcjpwYXNz"}),
    ):
        st, h, b = f.http("GET", path, headers=hdrs)
        j = json.loads(b)
        T.ok(
            st == 401
            and err_reason(j) == "authError"
            and j["error"]["errors"][0]["message"] == "Invalid Credentials"
            and j["error"]["errors"][0]["location"] == "Authorization"
            and err_message(j) == BAD_TOKEN_MESSAGE
            and j["error"]["status"] == "UNAUTHENTICATED"
            and 'error="invalid_token"' in (h.get("WWW-Authenticate") or ""),
            "BigQuery with %s: 401 authError, Invalid Credentials" % name,
            (st, j),
        )

    sa = f.ctl("POST", "service_accounts", {})
    need = {
        "type",
        "project_id",
        "private_key_id",
        "private_key",
        "client_email",
        "client_id",
        "auth_uri",
        "token_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
    }
    T.ok(
        need <= set(sa)
        and sa["type"] == "service_account"
        and sa["token_uri"] == f.base + "/token"
        and sa["private_key"].startswith("-----BEGIN PRIVATE KEY-----"),
        "service account key JSON is complete",
        sorted(set(need) - set(sa)),
    )
    key = serialization.load_pem_private_key(sa["private_key"].encode(), None)
    T.eq(key.key_size, 2048, "service account key is RSA-2048")

    st, j = jwt_grant(f, make_jwt(sa))
    T.ok(
        st == 200
        and j["access_token"].startswith("ya29.")
        and j["token_type"] == "Bearer"
        and isinstance(j["expires_in"], int)
        and j["expires_in"] == 3599,
        "correctly signed JWT gets an access token",
        j,
    )
    f.token = j["access_token"] if st == 200 else None
    st, j = f.bq("GET", "datasets/" + D, conf="bigquery.datasets.get")
    T.eq(st, 200, "the issued token authorizes BigQuery calls")

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    st, j = jwt_grant(f, make_jwt(sa, private_key=other))
    T.ok(
        st == 400
        and j == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
        "JWT signed with the wrong key is refused",
        j,
    )
    # The audience is Google's token endpoint, never token_uri (where the JWT is POSTed).
    T.ok(sa["token_uri"] != GOOGLE_AUD, "the key file's token_uri is the fake, not Google")
    st, j = jwt_grant(f, make_jwt(sa, aud=sa["token_uri"]))
    T.ok(
        st == 400 and j == AUD_ERROR,
        "JWT with aud = token_uri is refused with Google's audience error",
        (st, j),
    )
    st, j = jwt_grant(f, make_jwt(sa, aud=GOOGLE_AUD_V4))
    T.ok(st == 200 and j.get("access_token"), "JWT with aud = the oauth2/v4 URL is accepted", j)
    for other in ("https://oauth2.googleapis.com/token/", "https://example.com/token", ""):
        st, j = jwt_grant(f, make_jwt(sa, extra={"aud": other}))
        T.ok(st == 400 and j == AUD_ERROR, "JWT with aud %r is refused" % other, (st, j))
    st, j = jwt_grant(f, make_jwt(sa, extra={"aud": None}))
    T.ok(st == 400 and j == AUD_ERROR, "JWT without aud is refused", (st, j))
    now = int(time.time())
    st, j = jwt_grant(f, make_jwt(sa, iat=now, exp=now + 3601))
    T.ok(
        st == 400 and j["error"] == "invalid_grant" and "short-lived" in j["error_description"],
        "JWT with exp - iat > 3600 is refused",
        j,
    )
    st, j = jwt_grant(f, make_jwt(sa, iat=now - 4000, exp=now - 400))
    T.ok(st == 400 and j["error"] == "invalid_grant", "expired JWT is refused", j)
    st, j = jwt_grant(f, make_jwt(sa, iat=now + 600, exp=now + 1200))
    T.ok(
        st == 400 and j["error"] == "invalid_grant",
        "JWT issued > 5 min in the future is refused",
        j,
    )
    st, j = jwt_grant(f, make_jwt(sa, iat=now + 120, exp=now + 1800))
    T.eq(st, 200, "JWT with iat 2 min ahead (clock skew) is accepted")
    st, j = jwt_grant(f, make_jwt(sa, scope=None))
    T.ok(st == 400 and j["error"] == "invalid_scope", "JWT without scope is refused", j)
    st, j = jwt_grant(f, make_jwt(sa, alg="HS256"))
    T.ok(st == 400 and j["error"] == "invalid_grant", "JWT with alg other than RS256 is refused", j)
    good = make_jwt(sa)
    h, c, s = good.split(".")
    padded = ".".join(x + "=" * (-len(x) % 4) for x in (h, c, s))
    std = ".".join(
        base64.b64encode(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))).decode()
        for x in (h, c, s)
    )
    st1, _ = jwt_grant(f, padded)
    st2, _ = jwt_grant(f, std)
    T.ok(
        st1 == 400 and (st2 == 400 or std == padded),
        "JWT segments with padding or standard base64 are refused",
        (st1, st2),
    )
    tampered = (
        h
        + "."
        + b64u(
            json.dumps(
                {
                    "iss": sa["client_email"],
                    "aud": GOOGLE_AUD,
                    "iat": now,
                    "exp": now + 3600,
                    "scope": SCOPE + " x",
                }
            ).encode()
        )
        + "."
        + s
    )
    st, j = jwt_grant(f, tampered)
    T.eq(st, 400, "JWT with altered claims is refused")
    st, j = jwt_grant(
        f, make_jwt(dict(sa, client_email="nobody@x.iam.gserviceaccount.com"), private_key=key)
    )
    T.ok(
        st == 400 and j["error"] == "invalid_grant",
        "JWT from an unknown service account is refused",
        j,
    )
    st, j = f.js("POST", "/token", {"grant_type": "x"})
    T.eq(st, 400, "token endpoint refuses a JSON body (form encoding required)")
    st, j = token_request(f, {"grant_type": "password"})
    T.ok(st == 400 and j["error"] == "unsupported_grant_type", "unsupported grant_type", j)

    au = f.ctl("POST", "authorized_users", {})
    T.ok(
        {"client_id", "client_secret", "refresh_token", "type", "token_uri"} <= set(au)
        and au["type"] == "authorized_user",
        "authorized_user JSON is complete",
        au,
    )
    form = {
        "grant_type": "refresh_token",
        "client_id": au["client_id"],
        "client_secret": au["client_secret"],
        "refresh_token": au["refresh_token"],
    }
    st, j = token_request(f, form)
    T.ok(
        st == 200 and j["token_type"] == "Bearer" and j["access_token"],
        "refresh_token grant works",
        j,
    )
    user_token = j.get("access_token") if st == 200 else None
    st, _ = f.bq("GET", "datasets/" + D, token=user_token, conf="bigquery.datasets.get")
    T.eq(st, 200, "authorized_user token authorizes BigQuery calls")
    st, j = token_request(f, dict(form, client_secret="wrong"))
    T.ok(
        st == 401 and j["error"] == "invalid_client",
        "refresh with wrong client secret is refused",
        j,
    )
    st, j = token_request(f, dict(form, refresh_token="1//wrong"))
    T.ok(
        st == 400 and j["error"] == "invalid_grant",
        "refresh with wrong refresh token is refused",
        j,
    )

    # lifetime and revocation
    f.ctl("POST", "tokens", {"lifetime": 1})
    st, j = jwt_grant(f, make_jwt(sa))
    T.eq(j.get("expires_in"), 1, "POST /_fake/tokens sets the lifetime of issued tokens")
    short = j["access_token"]
    f.ctl("POST", "tokens", {"lifetime": 3599})
    time.sleep(1.1)
    st, j = f.bq("GET", "datasets/" + D, token=short)
    T.eq(st, 401, "an expired access token gets 401")

    st, j = jwt_grant(f, make_jwt(sa))
    doomed = j["access_token"]
    revoked = f.ctl("POST", "tokens/revoke", {})
    st1, _ = f.bq("GET", "datasets/" + D, token=doomed)
    st2, _ = f.bq("GET", "datasets/" + D)
    T.ok(
        st1 == 401 and st2 == 401 and revoked.get("revoked", 0) >= 2,
        "after /_fake/tokens/revoke every issued token gets 401",
        (st1, st2, revoked),
    )
    st, j = jwt_grant(f, make_jwt(sa))
    f.token = j["access_token"]
    st, _ = f.bq("GET", "datasets/" + D)
    T.eq(st, 200, "a token issued after revocation works")

    # scopes: an insertdata-only token may stream rows but not run queries or read secrets
    st, j = jwt_grant(f, make_jwt(sa, scope="https://www.googleapis.com/auth/bigquery.insertdata"))
    narrow = j["access_token"]
    st, j = f.bq("POST", "queries", {"query": "SELECT 1", "useLegacySql": False}, token=narrow)
    T.ok(
        st == 403 and err_reason(j) == "insufficientPermissions",
        "insertdata-only token cannot query",
        j,
    )
    st, j = jwt_grant(f, make_jwt(sa, scope="https://www.googleapis.com/auth/bigquery"))
    bq_only = j["access_token"]
    return sa, narrow, bq_only


def test_metadata(f):
    path = "/computeMetadata/v1/instance/service-accounts/default/token"
    st, h, b = f.http("GET", path)
    T.ok(
        st == 403 and h.get("Metadata-Flavor") == "Google",
        "metadata token without Metadata-Flavor: 403",
        (st, b),
    )
    st, h, b = f.http("GET", path, headers={"Metadata-Flavor": "google-ish"})
    T.eq(st, 403, "metadata token with a wrong Metadata-Flavor value: 403")
    st, h, b = f.http(
        "GET", path + "?scopes=" + urllib.parse.quote(SCOPE), headers={"Metadata-Flavor": "Google"}
    )
    j = json.loads(b)
    T.ok(
        st == 200
        and h.get("Metadata-Flavor") == "Google"
        and set(j) == {"access_token", "expires_in", "token_type"}
        and j["token_type"] == "Bearer"
        and j["expires_in"] == 3599,
        "metadata token reply",
        (st, j),
    )
    st, _ = f.bq("GET", "datasets/" + D, token=j["access_token"])
    T.eq(st, 200, "metadata token authorizes BigQuery calls")
    f.ctl("POST", "metadata", {"expires_in": 30})
    st, h, b = f.http("GET", path, headers={"Metadata-Flavor": "Google"})
    T.eq(
        json.loads(b)["expires_in"],
        30,
        "POST /_fake/metadata makes tokens with a short remaining life",
    )
    f.ctl("POST", "metadata", {"expires_in": None})
    st, h, b = f.http(
        "GET", "/computeMetadata/v1/project/project-id", headers={"Metadata-Flavor": "Google"}
    )
    T.ok(
        st == 200 and b == b"proj-meta" and h.get("Metadata-Flavor") == "Google",
        "metadata project-id",
        (st, b),
    )
    st, h, b = f.http("GET", "/computeMetadata/v1/project/project-id")
    T.eq(st, 403, "metadata project-id without Metadata-Flavor: 403")


def test_datasets_tables(f):
    st, j = f.bq("GET", "datasets/" + D, conf="bigquery.datasets.get")
    T.ok(
        st == 200
        and j["location"] == "EU"
        and j["id"] == "%s:%s" % (P, D)
        and j["kind"] == "bigquery#dataset"
        and j["datasetReference"] == {"datasetId": D, "projectId": P},
        "datasets.get",
        j,
    )
    st, j = f.bq("GET", "datasets/nope")
    T.ok(
        st == 404 and err_reason(j) == "notFound" and j["error"]["code"] == 404,
        "datasets.get missing: 404 notFound",
        j,
    )
    f.ctl("POST", "datasets", {"project": P, "dataset": "added", "location": "europe-west2"})
    st, j = f.bq("GET", "datasets/added", conf="bigquery.datasets.get")
    T.ok(st == 200 and j["location"] == "europe-west2", "POST /_fake/datasets adds a dataset", j)

    def table_body(tid, fields, **kw):
        b = {
            "tableReference": {"projectId": P, "datasetId": D, "tableId": tid},
            "schema": {"fields": fields},
        }
        b.update(kw)
        return b

    st, j = f.bq(
        "POST",
        "datasets/%s/tables" % D,
        table_body("sales", schema_of(SALES_FIELDS)),
        conf="bigquery.tables.insert",
    )
    T.ok(
        st == 200
        and j["id"] == "%s:%s.sales" % (P, D)
        and len(j["schema"]["fields"]) == 33
        and j["numRows"] == "0"
        and j["kind"] == "bigquery#table",
        "tables.insert sales",
        j if st != 200 else None,
    )
    st, j = f.bq(
        "POST",
        "datasets/%s/tables" % D,
        table_body("events", schema_of(EVENTS_FIELDS)),
        conf="bigquery.tables.insert",
    )
    T.eq(st, 200, "tables.insert events")
    st, j = f.bq("POST", "datasets/%s/tables" % D, table_body("sales", schema_of(SALES_FIELDS)))
    T.ok(
        st == 409 and err_reason(j) == "duplicate" and "Already Exists" in err_message(j),
        "tables.insert existing: 409 duplicate",
        j,
    )
    st, j = f.bq(
        "POST",
        "datasets/nope/tables",
        dict(
            table_body("x", schema_of("a:STRING")),
            tableReference={"projectId": P, "datasetId": "nope", "tableId": "x"},
        ),
    )
    T.ok(
        st == 404 and err_reason(j) == "notFound",
        "tables.insert into a missing dataset: 404 notFound",
        j,
    )
    for name, fields in (
        ("bad field name", [{"name": "1abc", "type": "STRING"}]),
        ("bad field type", [{"name": "a", "type": "VARCHAR"}]),
        ("bad field mode", [{"name": "a", "type": "STRING", "mode": "OPTIONAL"}]),
        (
            "duplicate field (case-insensitive)",
            [{"name": "a", "type": "STRING"}, {"name": "A", "type": "INTEGER"}],
        ),
        ("RECORD without fields", [{"name": "r", "type": "RECORD"}]),
    ):
        st, j = f.bq(
            "POST",
            "datasets/%s/tables" % D,
            table_body("bad_" + str(abs(hash(name)) % 1000), fields),
        )
        T.ok(st == 400 and err_reason(j) == "invalid", "tables.insert refuses " + name, j)
    st, j = f.bq(
        "POST",
        "datasets/%s/tables" % D,
        dict(table_body("t_unknown", schema_of("a:STRING")), colour="red"),
    )
    T.ok(
        st == 400 and "Unknown name" in (err_message(j) or ""),
        "tables.insert refuses an unknown request field",
        j,
    )
    st, j = f.bq(
        "POST",
        "datasets/%s/tables" % D,
        table_body(
            "t_alias",
            [
                {"name": "n", "type": "INT64"},
                {"name": "x", "type": "FLOAT64"},
                {"name": "b", "type": "BOOL"},
            ],
            timePartitioning={"type": "DAY"},
        ),
        conf="bigquery.tables.insert",
    )
    T.ok(
        st == 200 and [x["type"] for x in j["schema"]["fields"]] == ["INTEGER", "FLOAT", "BOOLEAN"],
        "tables.insert normalises INT64/FLOAT64/BOOL",
        j,
    )
    st, j = f.bq(
        "POST",
        "datasets/%s/tables" % D,
        table_body("t_part", schema_of("a:STRING"), timePartitioning={"type": "DAY", "field": "a"}),
    )
    T.ok(
        st == 400 and err_reason(j) == "invalid",
        "tables.insert refuses partitioning on a STRING column",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/sales" % D, conf="bigquery.tables.get")
    T.ok(
        st == 200
        and j["numRows"] == "0"
        and j["location"] == "EU"
        and j["schema"]["fields"][0]["name"] == "affiliate",
        "tables.get",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/nope" % D)
    T.ok(
        st == 404 and err_reason(j) == "notFound" and "Not found: Table" in err_message(j),
        "tables.get missing: 404 notFound",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/sales%%2420260101" % D, conf="bigquery.tables.get")
    T.ok(
        st == 200 and j["tableReference"]["tableId"] == "sales",
        "percent-encoded partition decorator is decoded",
        j,
    )


def sale(code, **kw):
    r = {"uniqueCode": code, "sold": 2, "faceValue": 25.0, "isPending": False, "eventId": "DF-1"}
    r.update(kw)
    return r


def test_insert_all(f, narrow):
    st, j = insert_all(
        f,
        "sales",
        [
            {"insertId": "sale-A1", "json": sale("A1")},
            {"insertId": "sale-A2", "json": sale("A2", postCode="AB1 2CD")},
        ],
    )
    T.ok(
        st == 200 and j == {"kind": "bigquery#tableDataInsertAllResponse"},
        "insertAll of valid rows",
        j,
    )
    rows = rows_of(f, "sales")
    T.ok(
        rows["count"] == 2
        and rows["rows"][0]["sold"] == 2
        and rows["rows"][0]["faceValue"] == 25.0
        and rows["rows"][0]["isPending"] is False
        and rows["rows"][1]["postCode"] == "AB1 2CD",
        "rows are stored, typed as stored",
        rows,
    )
    st, j = f.bq("GET", "datasets/%s/tables/sales" % D, conf="bigquery.tables.get")
    T.ok(
        st == 200 and "streamingBuffer" in j and j["streamingBuffer"]["estimatedRows"] == "2",
        "tables.get shows the streaming buffer",
        j,
    )

    st, j = insert_all(
        f,
        "sales",
        [
            {
                "json": sale(
                    "B1",
                    sold="42",
                    faceValue="3.5",
                    isPending="true",
                    isInternetOrder=True,
                    grossCost=7,
                )
            }
        ],
        token=narrow,
    )
    T.ok(
        st == 200 and "insertErrors" not in j,
        "integer/float/boolean strings accepted (insertdata-only token)",
        j,
    )
    b1 = [r for r in rows_of(f, "sales")["rows"] if r["uniqueCode"] == "B1"]
    T.ok(
        len(b1) == 1
        and b1[0]["sold"] == 42
        and b1[0]["faceValue"] == 3.5
        and b1[0]["isPending"] is True
        and b1[0]["grossCost"] == 7.0,
        "string values are stored with the column type",
        b1,
    )

    cases = [
        ("STRING given a number", {"eventId": 42}, "eventId"),
        ("INTEGER given letters", {"sold": "abc"}, "sold"),
        ("INTEGER given a fraction", {"sold": 2.5}, "sold"),
        ("INTEGER given a boolean", {"sold": True}, "sold"),
        ("FLOAT given letters", {"faceValue": "cheap"}, "faceValue"),
        ("BOOLEAN given yes", {"isPending": "yes"}, "isPending"),
        ("BOOLEAN given 1", {"isPending": 1}, "isPending"),
        ("unknown field", {"colour": "red"}, "colour"),
    ]
    before = rows_of(f, "sales")["count"]
    for name, patch, loc in cases:
        st, j = insert_all(f, "sales", [{"json": sale("X", **patch)}])
        errs = (j.get("insertErrors") or [{}])[0].get("errors", []) if st == 200 else []
        T.ok(
            st == 200
            and len(j.get("insertErrors", [])) == 1
            and errs
            and errs[0]["reason"] == "invalid"
            and errs[0]["location"] == loc,
            "invalid row: " + name,
            j,
        )
    T.eq(rows_of(f, "sales")["count"], before, "invalid rows are not stored")
    st, j = insert_all(f, "sales", [{"json": sale("N1", eventId=None, sold=None)}])
    T.ok(st == 200 and "insertErrors" not in j, "null is accepted for NULLABLE columns", j)
    st, j = insert_all(f, "sales", [{"json": sale("U1", colour="red")}], ignoreUnknownValues=True)
    T.ok(st == 200 and "insertErrors" not in j, "ignoreUnknownValues accepts unknown fields", j)

    before = rows_of(f, "sales")["count"]
    three = [
        {"insertId": "s-%d" % i, "json": sale("S%d" % i, sold="bad" if i == 1 else 1)}
        for i in range(3)
    ]
    st, j = insert_all(f, "sales", three)
    errs = {e["index"]: e["errors"][0]["reason"] for e in j.get("insertErrors", [])}
    T.ok(
        st == 200
        and errs == {0: "stopped", 1: "invalid", 2: "stopped"}
        and rows_of(f, "sales")["count"] == before,
        "skipInvalidRows=false: invalid row invalid, others stopped, nothing written",
        j,
    )
    st, j = insert_all(f, "sales", three, skipInvalidRows=True)
    errs = {e["index"]: e["errors"][0]["reason"] for e in j.get("insertErrors", [])}
    T.ok(
        st == 200 and errs == {1: "invalid"} and rows_of(f, "sales")["count"] == before + 2,
        "skipInvalidRows=true: only the invalid row listed, the rest written",
        j,
    )

    before = rows_of(f, "sales")["count"]
    batch = [{"insertId": "dup-1", "json": sale("D1")}, {"insertId": "dup-2", "json": sale("D2")}]
    insert_all(f, "sales", batch)
    st, j = insert_all(f, "sales", batch)
    T.ok(
        st == 200 and "insertErrors" not in j and rows_of(f, "sales")["count"] == before + 2,
        "insertId re-sent within the window is acknowledged but stored once",
        j,
    )
    insert_all(f, "sales", [{"json": sale("NOID")}, {"json": sale("NOID")}])
    T.eq(rows_of(f, "sales")["count"], before + 4, "rows without insertId are never de-duplicated")
    f.ctl("POST", "settings", {"dedup_window": 0.3})
    time.sleep(0.4)
    insert_all(f, "sales", batch)
    T.eq(
        rows_of(f, "sales")["count"],
        before + 6,
        "after the de-dup window the same insertId is stored again",
    )
    f.ctl("POST", "settings", {"dedup_window": 60})

    st, j = f.bq(
        "POST",
        "datasets/%s/tables/sales%%2420260101/insertAll" % D,
        {"rows": [{"json": sale("PART")}]},
        conf="bigquery.tabledata.insertAll",
    )
    T.ok(
        st == 200 and any(r["uniqueCode"] == "PART" for r in rows_of(f, "sales")["rows"]),
        "insertAll into a partition decorator lands in the table",
        j,
    )
    st, j = insert_all(f, "nope", [{"json": {"a": 1}}])
    T.ok(
        st == 404 and err_reason(j) == "notFound", "insertAll into a missing table: 404 notFound", j
    )
    st, j = insert_all(f, "sales", [])
    T.ok(st == 400 and err_reason(j) == "invalid", "insertAll without rows: 400 invalid", j)
    big = [{"json": sale("BIG%d" % i, eventName="x" * 1000)} for i in range(120)]
    st, j = insert_all(f, "sales", big)
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and err_message(j) == "Request payload size exceeds the limit: 100000 bytes.",
        "insertAll over --max-insert-bytes: 400 with the configured limit",
        j,
    )
    many = [{"json": {"uniqueCode": "M%d" % i}} for i in range(601)]
    st, j = insert_all(f, "sales", many)
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and "too many rows present in the request" in err_message(j),
        "insertAll over --max-insert-rows: 400 too many rows",
        j,
    )
    st, j = insert_all(f, "sales", many[:600])
    T.ok(
        st == 200 and "insertErrors" not in j,
        "insertAll at exactly --max-insert-rows is accepted",
        j,
    )
    st, j = insert_all(f, "sales", [{"json": sale("K")}], colour="red")
    T.ok(
        st == 400 and "Unknown name" in (err_message(j) or ""),
        "insertAll refuses an unknown request field",
        j,
    )


def test_faults(f):
    def count():
        return rows_of(f, "events")["count"]

    def ev(i):
        return {
            "insertId": "event-%s" % i,
            "json": {"id": str(i), "name": "Event %s" % i, "starts": "2026-05-01T19:00:00"},
        }

    f.ctl("DELETE", "requests")
    fid = f.ctl(
        "POST",
        "faults",
        {
            "method": "POST",
            "path": r"/insertAll$",
            "times": 1,
            "action": {"status": 503, "headers": {"Retry-After": "2"}},
        },
    )
    T.ok(isinstance(fid.get("id"), int), "POST /_fake/faults returns an id", fid)
    n = count()
    st, h, b = f.http(
        "POST",
        "/bigquery/v2/projects/%s/datasets/%s/tables/events/insertAll" % (P, D),
        {"rows": [ev(1)]},
        {"Authorization": "Bearer " + f.token},
    )
    j = json.loads(b)
    T.ok(
        st == 503 and h.get("Retry-After") == "2" and j["error"]["code"] == 503 and count() == n,
        "fault status 503 with Retry-After, request not processed",
        (st, dict(h), j),
    )
    st, j = insert_all(f, "events", [ev(1)])
    T.ok(st == 200 and count() == n + 1, "fault with times=1 fires once", j)

    f.ctl("POST", "faults", {"path": "insertAll", "action": {"drop": True}})
    try:
        insert_all(f, "events", [ev(2)])
        T.ok(False, "fault drop closes the connection without an answer")
    except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError) as e:
        T.ok(
            count() == n + 1,
            "fault drop closes the connection without an answer (nothing written)",
            repr(e),
        )

    f.ctl("POST", "faults", {"path": "insertAll", "action": {"truncate": True}})
    try:
        st, j = insert_all(f, "events", [ev(3)])
        T.ok(False, "fault truncate sends half the body", (st, j))
    except (http.client.IncompleteRead, ValueError, ConnectionError) as e:
        T.ok(count() == n + 2, "fault truncate sends half the body after processing", repr(e))

    f.ctl("POST", "faults", {"path": "/datasets/[^/]+$", "action": {"malformed": True}})
    st, h, b = f.http(
        "GET",
        "/bigquery/v2/projects/%s/datasets/%s" % (P, D),
        headers={"Authorization": "Bearer " + f.token},
    )
    try:
        json.loads(b)
        bad = False
    except ValueError:
        bad = True
    T.ok(st == 200 and bad, "fault malformed answers 200 with invalid JSON", b)

    f.ctl("POST", "faults", {"path": "insertAll", "action": {"lost_ack": True}})
    n = count()
    try:
        insert_all(f, "events", [ev(4), ev(5)])
        lost = False
    except (http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError):
        lost = True
    T.ok(lost and count() == n + 2, "fault lost_ack stores the rows but never answers", count() - n)
    st, j = insert_all(f, "events", [ev(4), ev(5)])
    T.ok(
        st == 200 and "insertErrors" not in j and count() == n + 2,
        "retry after lost_ack is de-duplicated by insertId",
        j,
    )

    f.ctl("POST", "faults", {"path": "insertAll", "action": {"delay_ms": 400}})
    t0 = time.time()
    st, j = insert_all(f, "events", [ev(6)])
    T.ok(
        st == 200 and time.time() - t0 >= 0.39, "fault delay_ms delays the answer", time.time() - t0
    )

    f.ctl("POST", "faults", {"path": "insertAll", "skip": 1, "times": 2, "action": {"status": 500}})
    got = [insert_all(f, "events", [ev(100 + i)])[0] for i in range(4)]
    T.eq(
        got, [200, 500, 500, 200], "fault skip=1 times=2 affects the 2nd and 3rd matching requests"
    )
    f.ctl("POST", "faults", {"path": "insertAll", "times": 0, "action": {"status": 429}})
    got = [insert_all(f, "events", [ev(200 + i)])[0] for i in range(3)]
    f.ctl("DELETE", "faults")
    got.append(insert_all(f, "events", [ev(203)])[0])
    T.eq(got, [429, 429, 429, 200], "fault times=0 lasts until DELETE /_fake/faults")
    f.ctl("POST", "faults", {"method": "GET", "path": "insertAll", "action": {"status": 500}})
    st, _ = insert_all(f, "events", [ev(204)])
    f.ctl("DELETE", "faults")
    T.eq(st, 200, "fault method filter: a GET fault does not hit a POST")

    n = count()
    f.ctl(
        "POST",
        "faults",
        {
            "path": "insertAll",
            "action": {
                "insert_errors": [
                    {"index": 1, "reason": "invalid", "message": "bad"},
                    {"index": 0, "reason": "stopped"},
                ]
            },
        },
    )
    st, j = insert_all(f, "events", [ev(300), ev(301), ev(302)])
    idx = [e["index"] for e in j.get("insertErrors", [])]
    by = {e["index"]: e["errors"][0] for e in j.get("insertErrors", [])}
    T.ok(
        st == 200
        and idx == [2, 1, 0]
        and by[1]["reason"] == "invalid"
        and by[1]["message"] == "bad"
        and by[0]["reason"] == "stopped"
        and by[2]["reason"] == "stopped"
        and count() == n,
        "fault insert_errors: out of order, invalid stops the rest, nothing written",
        j,
    )
    f.ctl(
        "POST",
        "faults",
        {
            "path": "insertAll",
            "action": {
                "insert_errors": [
                    {"index": 0, "reason": "timeout"},
                    {"index": 2, "reason": "stopped"},
                ]
            },
        },
    )
    st, j = insert_all(f, "events", [ev(310), ev(311), ev(312)])
    idx = [e["index"] for e in j.get("insertErrors", [])]
    stored = {r["id"] for r in rows_of(f, "events")["rows"]}
    T.ok(
        st == 200
        and idx == [2, 0]
        and "311" in stored
        and "310" not in stored
        and "312" not in stored,
        "fault insert_errors without invalid: unlisted rows written",
        j,
    )
    st, j = insert_all(f, "events", [ev(310), ev(312)])
    stored = {r["id"] for r in rows_of(f, "events")["rows"]}
    T.ok(
        st == 200 and {"310", "312"} <= stored,
        "rows refused by a fault are written when re-sent",
        j,
    )

    log = f.ctl("GET", "requests")["requests"]
    ia = [r for r in log if r["path"].endswith("/insertAll")]
    T.ok(
        ia
        and ia[0]["method"] == "POST"
        and ia[0]["status"] == 503
        and json.loads(ia[0]["body"])["rows"][0]["insertId"] == "event-1"
        and not any(r["path"].startswith("/_fake/") for r in log)
        and "headers" in ia[0]
        and "query" in ia[0],
        "GET /_fake/requests logs non-control requests in order with status and body",
        ia[:1],
    )
    f.ctl("DELETE", "requests")
    T.eq(f.ctl("GET", "requests")["requests"], [], "DELETE /_fake/requests clears the log")
    stats = f.ctl("GET", "stats")
    T.ok(
        stats["calls"].get("bigquery.tabledata.insertAll", 0) >= 20
        and stats["calls"].get("oauth2.token", 0) >= 5,
        "GET /_fake/stats counts calls per method",
        stats,
    )


def test_queries(f):
    f.ctl(
        "POST",
        "tables/%s/%s/events/rows" % (P, D),
        {
            "rows": [
                {
                    "id": "E1",
                    "starts": "2026-06-01T19:30:00",
                    "name": "Gig",
                    "timeslotEnabled": True,
                },
                {"id": None, "name": "no id"},
            ]
        },
    )
    st, j = query(f, "SELECT uniqueCode FROM `%s.%s.sales` WHERE uniqueCode IS NOT NULL" % (P, D))
    codes = [r["f"][0]["v"] for r in j.get("rows", [])]
    total = rows_of(f, "sales")["count"]
    T.ok(
        st == 200
        and j["jobComplete"] is True
        and j["totalRows"] == str(total)
        and len(codes) == total
        and "A1" in codes
        and j["schema"]["fields"] == [{"name": "uniqueCode", "type": "STRING", "mode": "NULLABLE"}]
        and j["jobReference"]["location"] == "EU"
        and j["jobReference"]["projectId"] == P
        and "pageToken" not in j,
        "jobs.query: the sales seeding query",
        {k: v for k, v in j.items() if k != "rows"},
    )
    st, j = query(f, "SELECT id, starts FROM `%s.%s.events` WHERE id IS NOT NULL" % (P, D))
    ids = [r["f"][0]["v"] for r in j["rows"]]
    T.ok(
        st == 200
        and "E1" in ids
        and j["rows"][ids.index("E1")]["f"][1]["v"] == "2026-06-01T19:30:00"
        and all(isinstance(c["v"], str) for r in j["rows"] for c in r["f"] if c["v"] is not None),
        "jobs.query: the events seeding query",
        j,
    )
    st, j = query(f, "SELECT uniqueCode FROM `%s.%s.sales`" % (P, D), useLegacySql=True)
    T.ok(st == 400 and err_reason(j) == "invalidQuery", "useLegacySql=true: 400 invalidQuery", j)
    st, j = f.bq(
        "POST",
        "queries",
        {"query": "SELECT uniqueCode FROM `%s.%s.sales`" % (P, D), "location": "EU"},
    )
    T.ok(
        st == 400 and err_reason(j) == "invalidQuery",
        "useLegacySql missing (defaults to true): 400 invalidQuery",
        j,
    )
    st, j = query(f, "SELECT a FROM `%s.%s.nope`" % (P, D))
    T.ok(
        st == 404
        and err_reason(j) == "notFound"
        and err_message(j) == "Not found: Table %s:%s.nope was not found in location EU" % (P, D),
        "jobs.query on a missing table: 404 with Google's message",
        j,
    )
    st, j = query(f, "SELECT uniqueCode FROM `%s.%s.sales`" % (P, D), location="US")
    T.ok(st == 404 and err_reason(j) == "notFound", "jobs.query in the wrong location: 404", j)
    st, j = query(f, "SELEC nonsense FROM `%s.%s.sales`" % (P, D))
    T.ok(
        st == 400 and err_reason(j) == "invalidQuery",
        "jobs.query with bad SQL: 400 invalidQuery",
        j,
    )

    f.ctl(
        "POST",
        "tables/%s/%s/sales/rows" % (P, D),
        {
            "rows": [
                {
                    "uniqueCode": "FMT",
                    "faceValue": 1e20,
                    "grossCost": 0.1,
                    "sold": 7,
                    "isPending": True,
                    "taxTotal": 25,
                }
            ]
        },
    )
    st, j = query(
        f,
        "SELECT faceValue, grossCost, sold, isPending, taxTotal, eventId FROM `%s.%s.sales` WHERE uniqueCode = @c"
        % (P, D),
        parameterMode="NAMED",
        queryParameters=[
            {"name": "c", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "FMT"}}
        ],
    )
    vals = [c["v"] for c in j["rows"][0]["f"]] if st == 200 and j.get("rows") else None
    T.eq(
        vals,
        ["1.0E20", "0.1", "7", "true", "25.0", None],
        "cells: FLOAT/INTEGER/BOOLEAN as BigQuery prints them, null as null",
    )
    types = [x["type"] for x in j["schema"]["fields"]] if st == 200 else None
    T.eq(
        types,
        ["FLOAT", "FLOAT", "INTEGER", "BOOLEAN", "FLOAT", "STRING"],
        "result schema takes the table's column types",
    )
    st, j = query(
        f,
        "SELECT uniqueCode FROM `%s.%s.sales` WHERE uniqueCode IN UNNEST(@codes) ORDER BY uniqueCode"
        % (P, D),
        parameterMode="NAMED",
        queryParameters=[
            {
                "name": "codes",
                "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}},
                "parameterValue": {"arrayValues": [{"value": "A1"}, {"value": "A2"}]},
            }
        ],
    )
    T.eq(
        [r["f"][0]["v"] for r in j.get("rows", [])],
        ["A1", "A2"],
        "array query parameter with IN UNNEST",
    )
    st, j = query(f, "SELECT COUNT(*) AS n FROM `%s.%s.events`" % (P, D))
    T.ok(
        st == 200
        and j["rows"][0]["f"][0]["v"] == str(rows_of(f, "events")["count"])
        and j["schema"]["fields"][0]["type"] == "INTEGER",
        "computed column gets an inferred type",
        j,
    )
    st, j = query(f, "SELECT id FROM `%s.%s.events` WHERE id = 'none'" % (P, D))
    T.ok(
        st == 200 and j["totalRows"] == "0" and "rows" not in j,
        "empty result: totalRows 0 and no rows key",
        j,
    )

    job = query(f, "SELECT id FROM `%s.%s.events`" % (P, D))[1]["jobReference"]["jobId"]
    st, j = gqr(f, job)
    T.ok(
        st == 200
        and j["jobComplete"]
        and j["kind"] == "bigquery#getQueryResultsResponse"
        and len(j["rows"]) == int(j["totalRows"]),
        "jobs.getQueryResults",
        j,
    )
    st, j = gqr(f, job, maxResults=0)
    T.ok(
        st == 200 and "rows" not in j and j["totalRows"] and j["schema"],
        "getQueryResults maxResults=0: no rows, schema and totalRows",
        j,
    )
    st, j = gqr(f, job, startIndex=1, maxResults=1)
    T.ok(
        st == 200 and len(j["rows"]) == 1 and "pageToken" in j,
        "getQueryResults startIndex/maxResults",
        j,
    )
    st, j = gqr(f, job, pageToken="garbage")
    T.ok(st == 400 and err_reason(j) == "invalid", "getQueryResults with a bad pageToken: 400", j)
    st, j = gqr(f, "job_nope")
    T.ok(st == 404 and err_reason(j) == "notFound", "getQueryResults unknown job: 404", j)
    st, j = gqr(f, job, location="asia-east1")
    T.ok(st == 404 and err_reason(j) == "notFound", "getQueryResults wrong location: 404", j)
    st, j = f.bq("GET", "jobs/%s?location=EU" % job, conf="bigquery.jobs.get")
    T.ok(
        st == 200 and j["status"]["state"] == "DONE" and j["configuration"]["jobType"] == "QUERY",
        "jobs.get on a query job",
        j,
    )

    # requestId
    sql = "SELECT id FROM `%s.%s.events`" % (P, D)
    a = query(f, sql, requestId="req-1")[1]["jobReference"]["jobId"]
    b = query(f, sql, requestId="req-1")[1]["jobReference"]["jobId"]
    c = query(f, sql, requestId="req-2")[1]["jobReference"]["jobId"]
    T.ok(a == b and a != c, "requestId reuse returns the same job", (a, b, c))

    # incomplete jobs
    f.ctl("POST", "settings", {"query_incomplete_polls": 2})
    st, j = query(f, sql)
    job = j["jobReference"]["jobId"]
    T.ok(
        st == 200
        and j["jobComplete"] is False
        and not {"rows", "schema", "totalRows"} & set(j)
        and j["jobReference"]["location"] == "EU",
        "incomplete job: jobs.query says jobComplete false, no rows",
        j,
    )
    st, j = gqr(f, job, maxResults=0, timeoutMs=100)
    st2, j2 = gqr(f, job)
    T.ok(
        j["jobComplete"] is False and j2["jobComplete"] is True and j2["rows"],
        "incomplete job completes after N answers",
        (j, j2),
    )
    f.ctl("POST", "settings", {"query_incomplete_polls": 0})


def micros(ts):
    """An ISO-8601 UTC time ("...Z") as microseconds since the epoch."""
    dt = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00"))
    epoch = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    return (dt - epoch) // datetime.timedelta(microseconds=1)


def current_view_sql(base, key, names):
    """The daemon's TABLE_current view (src/feed.c feed_current_view_sql)."""
    cols = "".join("`%s`, " % n for n in names) + "_fingerprint"
    return (
        "SELECT %s, _observed_at FROM (SELECT %s, _observed_at, ROW_NUMBER() OVER (PARTITION BY "
        "`%s` ORDER BY _observed_at DESC, _fingerprint DESC) AS _version FROM (SELECT %s, "
        "CAST(NULL AS TIMESTAMP) AS _observed_at FROM `%s.%s.%s` UNION ALL SELECT %s, "
        "_observed_at FROM `%s.%s.%s_changes`)) WHERE _version = 1"
        % (cols, cols, key, cols, P, D, base, cols, P, D, base)
    )


def test_track_changes(f):
    """tables.patch, views and the queries of the daemon's track_changes mode."""
    sales = schema_of(SALES_FIELDS)
    events = schema_of(EVENTS_FIELDS)
    fp = {"name": "_fingerprint", "type": "STRING", "mode": "NULLABLE"}
    obs = {"name": "_observed_at", "type": "TIMESTAMP", "mode": "NULLABLE"}
    t1, t2, t3 = "2026-12-04T23:10:14.123456Z", "2026-12-04T23:11:00Z", "2026-12-05T08:00:00.5Z"

    def create(tid, fields):
        body = {"tableReference": {"projectId": P, "datasetId": D, "tableId": tid}}
        body["schema"] = {"fields": fields}
        return f.bq("POST", "datasets/%s/tables" % D, body, conf="bigquery.tables.insert")

    def patch(tid, body):
        return f.bq("PATCH", "datasets/%s/tables/%s" % (D, tid), body, conf="bigquery.tables.patch")

    def create_view(tid, sql, **view):
        body = {
            "tableReference": {"projectId": P, "datasetId": D, "tableId": tid},
            "view": dict({"query": sql}, **view),
        }
        return f.bq("POST", "datasets/%s/tables" % D, body, conf="bigquery.tables.insert")

    def cells(j):
        return [[c["v"] for c in r["f"]] for r in j.get("rows", [])]

    def names_types(j):
        return [(x["name"], x["type"]) for x in j.get("schema", {}).get("fields", [])]

    def keys_param(*keys):
        return {
            "parameterMode": "NAMED",
            "queryParameters": [
                {
                    "name": "keys",
                    "parameterType": {"type": "ARRAY", "arrayType": {"type": "STRING"}},
                    "parameterValue": {"arrayValues": [{"value": k} for k in keys]},
                }
            ],
        }

    # tables.patch --------------------------------------------------------------------------
    create("tc_sales", sales)
    create("tc_events", events)
    f.ctl(
        "POST",
        "tables/%s/%s/tc_sales/rows" % (P, D),
        {"rows": [{"uniqueCode": k, "sold": 1} for k in ("K1", "K2", "K3", "K4", "K6")]},
    )
    f.ctl(
        "POST",
        "tables/%s/%s/tc_events/rows" % (P, D),
        {"rows": [{"id": "E1", "starts": "2026-06-01T19:30:00"}, {"id": None, "name": "no id"}]},
    )
    st, j = patch("tc_sales", {"schema": {"fields": sales + [fp]}})
    T.ok(
        st == 200
        and j["schema"]["fields"] == sales + [fp]
        and j["type"] == "TABLE"
        and j["numRows"] == "5",
        "tables.patch appends a NULLABLE column",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/tc_sales" % D, conf="bigquery.tables.get")
    rows = rows_of(f, "tc_sales")["rows"]
    T.ok(
        st == 200
        and j["schema"]["fields"][-1] == fp
        and len(rows) == 5
        and not any("_fingerprint" in r for r in rows),
        "tables.get shows the new column; the rows there before have it null",
        (j, rows),
    )
    st, j = insert_all(
        f, "tc_sales", [{"json": {"uniqueCode": "K5", "sold": 2, "_fingerprint": "f5"}}]
    )
    st2, j2 = query(
        f,
        "SELECT uniqueCode, _fingerprint FROM `%s.%s.tc_sales` WHERE uniqueCode IN ('K1', 'K5') "
        "ORDER BY uniqueCode" % (P, D),
    )
    T.ok(
        st == 200
        and "insertErrors" not in j
        and cells(j2) == [["K1", None], ["K5", "f5"]]
        and names_types(j2) == [("uniqueCode", "STRING"), ("_fingerprint", "STRING")],
        "insertAll and queries use the added column",
        (j, j2),
    )
    st, j = patch("tc_events", {"schema": {"fields": events + [fp]}})
    T.ok(st == 200 and j["schema"]["fields"][-1] == fp, "tables.patch of events", j)
    head = "Provided Schema does not match Table %s:%s.tc_sales. " % (P, D)
    retyped = [dict(x, type="STRING") if x["name"] == "sold" else x for x in sales + [fp]]
    st, j = patch("tc_sales", {"schema": {"fields": retyped}})
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and err_message(j) == head + "Field sold has changed type from INTEGER to STRING",
        "tables.patch refuses to retype a column: 400 invalid",
        j,
    )
    st, j = patch("tc_sales", {"schema": {"fields": [x for x in sales if x["name"] != "sold"]}})
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and err_message(j) == head + "Field sold is missing in new schema",
        "tables.patch refuses to drop a column: 400 invalid",
        j,
    )
    req = {"name": "must", "type": "STRING", "mode": "REQUIRED"}
    st, j = patch("tc_sales", {"schema": {"fields": sales + [fp, req]}})
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and err_message(j)
        == head + "Cannot add required fields to an existing schema. (field: must)",
        "tables.patch refuses to add a REQUIRED column: 400 invalid",
        j,
    )
    st, j = patch("tc_sales", {"schema": {"fields": sales + [dict(fp, mode="REQUIRED")]}})
    T.ok(
        st == 400 and err_reason(j) == "invalid" and "has changed mode" in err_message(j),
        "tables.patch refuses to make a column REQUIRED: 400 invalid",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/tc_sales" % D, conf="bigquery.tables.get")
    T.eq(j["schema"]["fields"], sales + [fp], "a refused tables.patch changes nothing")
    st, j = patch("tc_nope", {"schema": {"fields": sales}})
    T.ok(
        st == 404
        and err_reason(j) == "notFound"
        and err_message(j) == "Not found: Table %s:%s.tc_nope" % (P, D),
        "tables.patch of a missing table: 404 notFound",
        j,
    )

    # _changes tables: TIMESTAMP columns by insertAll and by load job -----------------------
    create("tc_sales_changes", sales + [fp, obs])
    create("tc_events_changes", events + [fp, obs])

    def change(code, fingerprint, at):
        return {
            "json": {"uniqueCode": code, "sold": 9, "_fingerprint": fingerprint, "_observed_at": at}
        }

    st, j = insert_all(
        f,
        "tc_sales_changes",
        [
            change("K2", "c2a", t1),
            change("K2", "c2b", t2),  # later: K2's current version
            change("K3", "c3", t1),
            change("K3", "b3", t2),  # K3 changed back to its base fingerprint
        ],
    )
    T.ok(st == 200 and "insertErrors" not in j, "insertAll of TIMESTAMP strings", j)
    nd = b"".join(
        json.dumps(c["json"]).encode() + b"\n"
        for c in (change("K6", "a", t3), change("K6", "b", t3), change("K4", "d4", t1))
    )
    st, j = load_job(f, "tc_changes_load", nd, table="tc_sales_changes")
    st, j = f.bq("GET", "jobs/tc_changes_load?location=EU", conf="bigquery.jobs.get")
    T.ok(
        st == 200
        and j["status"] == {"state": "DONE"}
        and j["statistics"]["load"]["outputRows"] == "3",
        "load job of TIMESTAMP strings",
        j,
    )
    st, j = insert_all(
        f,
        "tc_events_changes",
        [
            {
                "json": {
                    "id": "E1",
                    "starts": "2026-07-01T20:00:00",
                    "_fingerprint": "e1b",
                    "_observed_at": t1,
                }
            }
        ],
    )

    # views ---------------------------------------------------------------------------------
    sql = current_view_sql("tc_sales", "uniqueCode", [x["name"] for x in sales])
    st, j = create_view("tc_sales_current", sql)
    T.ok(
        st == 400 and err_reason(j) == "invalid",
        "a view without useLegacySql (legacy SQL by default): 400 invalid",
        j,
    )
    st, j = create_view("tc_sales_current", "SELEC uniqueCode FROM x", useLegacySql=False)
    T.ok(st == 400 and err_reason(j) == "invalid", "a view whose SQL does not parse: 400", j)
    st, j = create_view(
        "tc_sales_current", sql.replace("tc_sales_changes", "tc_nope"), useLegacySql=False
    )
    T.ok(
        st == 400 and err_reason(j) == "invalid" and "tc_nope" in err_message(j),
        "a view of a missing table: 400 invalid",
        j,
    )
    st, j = create_view(
        "tc_sales_current",
        "SELECT uniqueCode, nope FROM `%s.%s.tc_sales`" % (P, D),
        useLegacySql=False,
    )
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and err_message(j) == "Unrecognized name: nope at [1:20]",
        "a view naming a missing column: 400 invalid",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/tc_sales_current" % D)
    T.ok(st == 404, "a refused view is not created", j)
    st, j = create_view("tc_sales_current", sql, useLegacySql=False)
    want_schema = [dict(x, mode="NULLABLE") for x in sales + [fp, obs]]
    T.ok(
        st == 200
        and j["type"] == "VIEW"
        and j["view"] == {"query": sql, "useLegacySql": False}
        and j["schema"]["fields"] == want_schema
        and j["numRows"] == "0"
        and "streamingBuffer" not in j,
        "tables.insert of a view: type VIEW, its query, schema derived from the query",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/tc_sales_current" % D, conf="bigquery.tables.get")
    T.ok(
        st == 200
        and j["type"] == "VIEW"
        and j["view"]["query"] == sql
        and j["schema"]["fields"][-1] == obs,
        "tables.get of a view (CAST(NULL AS TIMESTAMP) typed TIMESTAMP)",
        j,
    )
    st, j = create_view("tc_sales_current", sql, useLegacySql=False)
    T.ok(st == 409 and err_reason(j) == "duplicate", "a view that exists: 409 duplicate", j)
    esql = current_view_sql("tc_events", "id", [x["name"] for x in events])
    st, j = create_view("tc_events_current", esql, useLegacySql=False)
    T.ok(st == 200 and j["type"] == "VIEW", "the events view", j)

    st, j = query(
        f,
        "SELECT uniqueCode, _fingerprint, _observed_at, sold FROM `%s.%s.tc_sales_current` "
        "ORDER BY uniqueCode" % (P, D),
    )
    got = cells(j)
    T.eq(
        got,
        [
            ["K1", None, None, "1"],  # base row only
            ["K2", "c2b", "1.79642586E9", "9"],  # the later of two changes
            ["K3", "b3", "1.79642586E9", "9"],  # changed back: the later change wins
            ["K4", "d4", "1.796425814123456E9", "9"],  # a change beats the base row (NULL last)
            ["K5", "f5", None, "2"],
            ["K6", "b", "1.7964576005E9", "9"],  # same _observed_at: larger _fingerprint
        ],
        "the view gives each key's latest version",
    )
    T.eq(
        names_types(j),
        [
            ("uniqueCode", "STRING"),
            ("_fingerprint", "STRING"),
            ("_observed_at", "TIMESTAMP"),
            ("sold", "INTEGER"),
        ],
        "query of the view: column types",
    )
    st, j = query(
        f,
        "SELECT uniqueCode, _observed_at FROM `%s.%s.tc_sales_current` WHERE uniqueCode "
        "IN ('K1', 'K2') ORDER BY _observed_at DESC" % (P, D),
        formatOptions={"useInt64Timestamp": True},
    )
    T.eq(
        cells(j),
        [["K2", str(micros(t2))], ["K1", None]],
        "ORDER BY ... DESC puts NULL last; useInt64Timestamp gives microseconds",
    )
    view_rows = rows_of(f, "tc_sales_current")
    T.ok(
        view_rows["count"] == 6
        and {
            "uniqueCode": "K2",
            "sold": 9,
            "_fingerprint": "c2b",
            "_observed_at": "2026-12-04 23:11:00 UTC",
        }
        in view_rows["rows"]
        and {"uniqueCode": "K1", "sold": 1} in view_rows["rows"],
        "GET /_fake/tables/P/D/VIEW/rows evaluates the view",
        view_rows,
    )

    # the daemon's queries ------------------------------------------------------------------
    st, j = query(
        f,
        "SELECT uniqueCode, _fingerprint FROM `%s.%s.tc_sales_current` WHERE uniqueCode IS NOT NULL"
        % (P, D),
    )
    T.ok(
        st == 200
        and sorted(cells(j))
        == [["K1", None], ["K2", "c2b"], ["K3", "b3"], ["K4", "d4"], ["K5", "f5"], ["K6", "b"]]
        and names_types(j) == [("uniqueCode", "STRING"), ("_fingerprint", "STRING")],
        "seeding query through the sales view",
        j,
    )
    st, j = query(
        f,
        "SELECT id, starts, _fingerprint FROM `%s.%s.tc_events_current` WHERE id IS NOT NULL"
        % (P, D),
    )
    T.ok(
        st == 200 and cells(j) == [["E1", "2026-07-01T20:00:00", "e1b"]],
        "seeding query through the events view",
        j,
    )
    st, j = query(
        f,
        "SELECT uniqueCode, _fingerprint, UNIX_MICROS(_observed_at) FROM `%s.%s.tc_sales_changes` "
        "WHERE uniqueCode IN UNNEST(@keys)" % (P, D),
        **keys_param("K2", "K4", "K9")
    )
    T.ok(
        st == 200
        and sorted(cells(j))
        == [
            ["K2", "c2a", str(micros(t1))],
            ["K2", "c2b", str(micros(t2))],
            ["K4", "d4", str(micros(t1))],
        ]
        and j["schema"]["fields"]
        == [
            {"name": "uniqueCode", "type": "STRING", "mode": "NULLABLE"},
            {"name": "_fingerprint", "type": "STRING", "mode": "NULLABLE"},
            {"name": "f0_", "type": "INTEGER", "mode": "NULLABLE"},
        ],
        "change lookup: UNIX_MICROS is an INTEGER column f0_, IN UNNEST(@keys)",
        j,
    )
    f.ctl("POST", "tables/%s/%s/tc_sales/rows" % (P, D), {"rows": [{"uniqueCode": "K1"}]})
    st, j = query(
        f,
        "SELECT uniqueCode, COUNT(*) FROM `%s.%s.tc_sales` WHERE uniqueCode IS NOT NULL GROUP BY "
        "uniqueCode" % (P, D),
    )
    T.ok(
        st == 200
        and sorted(cells(j))
        == [["K1", "2"], ["K2", "1"], ["K3", "1"], ["K4", "1"], ["K5", "1"], ["K6", "1"]]
        and names_types(j) == [("uniqueCode", "STRING"), ("f0_", "INTEGER")],
        "audit count: GROUP BY key, COUNT(*) an INTEGER column f0_",
        j,
    )
    insert_all(f, "tc_sales_changes", [change("K2", "c2b", t2)])
    st, j = query(
        f,
        "SELECT uniqueCode, UNIX_MICROS(_observed_at), COUNT(*) FROM `%s.%s.tc_sales_changes` "
        "WHERE uniqueCode IS NOT NULL GROUP BY uniqueCode, _observed_at HAVING COUNT(*) > 1"
        % (P, D),
    )
    T.ok(
        st == 200
        and sorted(cells(j)) == [["K2", str(micros(t2)), "2"], ["K6", str(micros(t3)), "2"]]
        and names_types(j) == [("uniqueCode", "STRING"), ("f0_", "INTEGER"), ("f1_", "INTEGER")],
        "audit duplicates: GROUP BY key, _observed_at HAVING COUNT(*) > 1 (f0_, f1_)",
        j,
    )

    # what the fake refuses rather than answer differently ----------------------------------
    for what, bad in (
        ("SELECT * EXCEPT", "SELECT * EXCEPT (_version) FROM `%s.%s.tc_sales_current`"),
        (
            "QUALIFY",
            "SELECT uniqueCode FROM `%s.%s.tc_sales_changes` QUALIFY ROW_NUMBER() OVER "
            "(PARTITION BY uniqueCode ORDER BY _observed_at DESC) = 1",
        ),
        ("LIKE", "SELECT uniqueCode FROM `%s.%s.tc_sales` WHERE uniqueCode LIKE 'K%'"),
        (
            "a JOIN",
            "SELECT a.uniqueCode FROM `%s.%s.tc_sales` a JOIN `%s.%s.tc_sales` b USING "
            "(uniqueCode)",
        ),
        ("DML", "DELETE FROM `%s.%s.tc_sales` WHERE TRUE"),
    ):
        st, j = query(f, bad.replace("%s.%s", "%s.%s" % (P, D)))
        T.ok(
            st == 400
            and err_reason(j) == "invalidQuery"
            and "Not supported by this fake" in err_message(j),
            "%s is refused: 400 invalidQuery" % what,
            j,
        )
    st, j = query(f, "SELECT uniqueCode, sold FROM `%s.%s.tc_sales` GROUP BY uniqueCode" % (P, D))
    T.ok(
        st == 400
        and err_reason(j) == "invalidQuery"
        and err_message(j).startswith(
            "SELECT list expression references column sold which is neither grouped nor aggregated"
        ),
        "an ungrouped column: 400 invalidQuery as BigQuery says it",
        j,
    )
    st, j = query(f, "SELECT sold FROM `%s.%s.tc_sales` WHERE sold = '1'" % (P, D))
    T.ok(
        st == 400
        and err_reason(j) == "invalidQuery"
        and err_message(j).startswith(
            "No matching signature for operator = for argument types: INT64, STRING"
        ),
        "INT64 = STRING: 400 invalidQuery (SQLite would compare them)",
        j,
    )

    # writing to a view ----------------------------------------------------------------------
    st, j = insert_all(f, "tc_sales_current", [{"json": {"uniqueCode": "V1"}}])
    T.ok(
        st == 400
        and err_reason(j) == "invalid"
        and err_message(j) == "Cannot add rows to a table of type VIEW.",
        "insertAll into a view: 400 invalid",
        j,
    )
    st, j = f.bq("GET", "datasets/%s/tables/tc_sales_current/data" % D)
    T.ok(st == 400 and err_reason(j) == "invalid", "tabledata.list of a view: 400 invalid", j)
    load_job(f, "tc_view_load", b'{"uniqueCode":"V1"}\n', table="tc_sales_current")
    st, j = f.bq("GET", "jobs/tc_view_load?location=EU", conf="bigquery.jobs.get")
    T.ok(
        st == 200
        and j["status"]["state"] == "DONE"
        and j["status"]["errorResult"]["reason"] == "invalid",
        "a load job into a view ends DONE with errorResult invalid",
        j,
    )

    # patching and stacking views ------------------------------------------------------------
    other = "SELECT uniqueCode FROM `%s.%s.tc_sales`" % (P, D)
    st, j = patch("tc_sales_current", {"view": {"query": other, "useLegacySql": False}})
    T.ok(
        st == 200
        and j["view"]["query"] == other
        and j["schema"]["fields"] == [{"name": "uniqueCode", "type": "STRING", "mode": "NULLABLE"}],
        "tables.patch of a view replaces its query and schema",
        j,
    )
    st, j = patch(
        "tc_sales_current",
        {"view": {"query": "SELECT nope FROM `%s.%s.tc_sales`" % (P, D), "useLegacySql": False}},
    )
    T.ok(st == 400 and err_reason(j) == "invalid", "tables.patch of a view checks the query", j)
    st, j = patch("tc_sales_current", {"view": {"query": sql, "useLegacySql": False}})
    T.ok(st == 200 and j["view"]["query"] == sql, "tables.patch of a view back", j)
    st, j = patch("tc_sales", {"view": {"query": other, "useLegacySql": False}})
    T.ok(st == 400 and err_reason(j) == "invalid", "tables.patch cannot make a table a view", j)
    v = f.ctl(
        "POST",
        "tables",
        {
            "project": P,
            "dataset": D,
            "table": "tc_latest_codes",
            "view": "SELECT uniqueCode AS code FROM `%s.%s.tc_sales_current` WHERE _observed_at IS "
            "NOT NULL" % (P, D),
        },
    )
    st, j = query(f, "SELECT code FROM `%s.%s.tc_latest_codes` ORDER BY code" % (P, D))
    T.ok(
        v["type"] == "VIEW" and cells(j) == [["K2"], ["K3"], ["K4"], ["K6"]],
        "POST /_fake/tables with a view; a view of a view",
        (v, j),
    )


def test_paging(f):
    f.ctl(
        "POST",
        "tables",
        {
            "project": P,
            "dataset": D,
            "table": "keys",
            "schema": {"fields": [{"name": "uniqueCode", "type": "STRING"}]},
        },
    )
    keys = ["K%07d-%s" % (i, "abcdefgh"[i % 8]) for i in range(100000)]
    t0 = time.time()
    r = f.ctl(
        "POST", "tables/%s/%s/keys/rows" % (P, D), {"rows": [{"uniqueCode": k} for k in keys]}
    )
    T.ok(
        r["count"] == 100000,
        "POST /_fake/tables/.../rows seeds 100 000 keys (%.1fs)" % (time.time() - t0),
        r,
    )
    sql = "SELECT uniqueCode FROM `%s.%s.keys` WHERE uniqueCode IS NOT NULL" % (P, D)

    def collect(max_results, limit_bytes):
        got, pages, sizes = [], 0, []
        req = f.base + "/bigquery/v2/projects/%s/queries" % P
        body = {"query": sql, "useLegacySql": False, "location": "EU", "maxResults": max_results}
        hdr = {"Authorization": "Bearer " + f.token, "Content-Type": "application/json"}
        with urllib.request.urlopen(
            urllib.request.Request(req, json.dumps(body).encode(), hdr), timeout=60
        ) as resp:
            raw = resp.read()
        while True:
            sizes.append(len(raw))
            j = json.loads(raw)
            if pages == 0:
                CONF.record("bigquery.jobs.query", j)
            elif pages < 3:
                CONF.record("bigquery.jobs.getQueryResults", j)
            pages += 1
            got += [x["f"][0]["v"] for x in j.get("rows", [])]
            if "pageToken" not in j:
                return got, pages, sizes, j
            q = urllib.parse.urlencode(
                {"pageToken": j["pageToken"], "maxResults": max_results, "location": "EU"}
            )
            url = f.base + "/bigquery/v2/projects/%s/queries/%s?%s" % (
                P,
                j["jobReference"]["jobId"],
                q,
            )
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=hdr), timeout=60
            ) as resp:
                raw = resp.read()

    f.ctl("POST", "settings", {"max_page_bytes": 500000})
    t0 = time.time()
    got, pages, sizes, last = collect(100000, 500000)
    T.ok(
        got == keys and pages >= 5 and max(sizes) <= 500000,
        "byte limit trims pages; pageToken carries on to all 100 000 keys (%d pages, %.1fs)"
        % (pages, time.time() - t0),
        (len(got), pages, max(sizes)),
    )
    f.ctl("POST", "settings", {"max_page_bytes": 20000000})
    got, pages, sizes, last = collect(30000, 20000000)
    T.ok(
        got == keys and pages == 4 and last["totalRows"] == "100000" and max(sizes) > 500000,
        "maxResults limits pages under the default byte limit (30000 -> 4 pages)",
        (len(got), pages),
    )


def test_tabledata_list(f, narrow):
    fields = [
        {"name": "k", "type": "STRING", "mode": "NULLABLE"},
        {"name": "n", "type": "INTEGER", "mode": "NULLABLE"},
        {"name": "x", "type": "FLOAT", "mode": "NULLABLE"},
        {"name": "b", "type": "BOOLEAN", "mode": "NULLABLE"},
        {"name": "ts", "type": "TIMESTAMP", "mode": "NULLABLE"},
        {
            "name": "rec",
            "type": "RECORD",
            "mode": "NULLABLE",
            "fields": [
                {"name": "a", "type": "STRING", "mode": "NULLABLE"},
                {"name": "t", "type": "TIMESTAMP", "mode": "NULLABLE"},
            ],
        },
        {"name": "tags", "type": "STRING", "mode": "REPEATED"},
    ]
    for table in ("tdl", "tdl_empty"):
        f.ctl(
            "POST",
            "tables",
            {"project": P, "dataset": D, "table": table, "schema": {"fields": fields}},
        )
    rows = [
        {
            "k": "a",
            "n": 1,
            "x": 1.5,
            "b": True,
            "ts": "2023-01-01 12:00:00.123456 UTC",
            "rec": {"a": "r0", "t": "2023-01-01 00:00:00"},
            "tags": ["p", "q"],
        },
        {"k": "b", "n": -7, "x": 1e20, "b": False, "tags": []},
        {"k": "c", "n": 3},
        {"k": "d", "n": 4},
        {"k": "e", "n": 5},
    ]
    f.ctl("POST", "tables/%s/%s/tdl/rows" % (P, D), {"rows": rows})

    def tdl(table="tdl", token=None, **params):
        q = urllib.parse.urlencode(params)
        return f.bq(
            "GET",
            "datasets/%s/tables/%s/data%s" % (D, table, "?" + q if q else ""),
            conf="bigquery.tabledata.list",
            token=token,
        )

    def keys(j):
        return [r["f"][0]["v"] for r in j.get("rows", [])]

    st, j = tdl()
    T.ok(
        st == 200
        and j["kind"] == "bigquery#tableDataList"
        and isinstance(j.get("etag"), str)
        and j["etag"]
        and j["totalRows"] == "5"
        and "pageToken" not in j
        and keys(j) == ["a", "b", "c", "d", "e"],
        "tabledata.list: kind, etag, totalRows as a string, every row in insertion order",
        j,
    )
    r0, r1 = (j["rows"][0]["f"], j["rows"][1]["f"]) if st == 200 else ([{}] * 7, [{}] * 7)
    T.ok(
        [c.get("v") for c in r0[:4]] == ["a", "1", "1.5", "true"]
        and r0[5] == {"v": {"f": [{"v": "r0"}, {"v": "1.6725312E9"}]}}
        and r0[6] == {"v": [{"v": "p"}, {"v": "q"}]}
        and [c.get("v") for c in r1] == ["b", "-7", "1.0E20", "false", None, None, []],
        "tabledata.list cells are strings as in query results (records as f/v, arrays of v, null)",
        (r0, r1),
    )
    ts = r0[4].get("v")
    T.ok(
        isinstance(ts, str)
        and re.fullmatch(r"\d\.\d+E9", ts)
        and round(float(ts) * 1e6) == 1672574400123456,
        "TIMESTAMP without useInt64Timestamp: float seconds as a string",
        ts,
    )
    st, j = tdl(**{"formatOptions.useInt64Timestamp": "true"})
    T.ok(
        st == 200
        and j["rows"][0]["f"][4] == {"v": "1672574400123456"}
        and j["rows"][0]["f"][5]["v"]["f"][1] == {"v": "1672531200000000"}
        and j["rows"][0]["f"][1] == {"v": "1"},
        "formatOptions.useInt64Timestamp=true: TIMESTAMP as int64 microseconds string",
        j,
    )
    st, j = tdl(**{"formatOptions.useInt64Timestamp": "false"})
    T.eq(j["rows"][0]["f"][4], {"v": ts}, "formatOptions.useInt64Timestamp=false: float seconds")

    pages, token = [], None
    for _ in range(10):
        st, j = tdl(maxResults=2, **({"pageToken": token} if token else {}))
        pages.append((st, j.get("totalRows"), keys(j), "pageToken" in j))
        token = j.get("pageToken")
        if not token:
            break
    T.eq(
        pages,
        [
            (200, "5", ["a", "b"], True),
            (200, "5", ["c", "d"], True),
            (200, "5", ["e"], False),
        ],
        "maxResults=2 pages by pageToken; the last page has no pageToken",
    )
    st, j = tdl(startIndex=3)
    T.ok(st == 200 and keys(j) == ["d", "e"] and "pageToken" not in j, "startIndex=3", j)
    st, j = tdl(startIndex=1, maxResults=1)
    st2, j2 = tdl(startIndex=0, maxResults=2, pageToken=j.get("pageToken"))
    T.ok(
        keys(j) == ["b"] and keys(j2) == ["c", "d"],
        "a pageToken wins over startIndex",
        (j, j2),
    )
    st, j = tdl(startIndex=5)
    st2, j2 = tdl(startIndex=99)
    T.ok(
        st == st2 == 200
        and "rows" not in j
        and "rows" not in j2
        and "pageToken" not in j
        and j["totalRows"] == "5",
        "startIndex at or past the end: no rows, no pageToken",
        (j, j2),
    )
    st, j = tdl(maxResults=0)
    T.ok(st == 200 and "rows" not in j and j["totalRows"] == "5", "maxResults=0: no rows", j)
    st, j = tdl("tdl_empty")
    T.ok(
        st == 200 and set(j) == {"kind", "etag", "totalRows"} and j["totalRows"] == "0",
        "empty table: totalRows 0, no rows, no pageToken",
        j,
    )

    st, j = tdl(selectedFields="n,k")
    T.ok(
        st == 200 and [c["v"] for c in j["rows"][0]["f"]] == ["a", "1"],
        "selectedFields returns those columns, in schema order",
        j,
    )
    st, j = tdl(selectedFields="rec.t, K", maxResults=1)
    T.ok(
        st == 200 and j["rows"][0]["f"] == [{"v": "a"}, {"v": {"f": [{"v": "1.6725312E9"}]}}],
        "selectedFields with a record sub-field keeps only that sub-field (names case-blind)",
        j,
    )
    for name, params in (
        ("an unknown selectedFields column", {"selectedFields": "nope"}),
        ("a sub-field of a non-record", {"selectedFields": "k.x"}),
        ("a bad pageToken", {"pageToken": "garbage"}),
        ("a negative maxResults", {"maxResults": -1}),
        ("a non-numeric startIndex", {"startIndex": "x"}),
        ("a non-boolean useInt64Timestamp", {"formatOptions.useInt64Timestamp": "maybe"}),
    ):
        st, j = tdl(**params)
        T.ok(
            st == 400 and err_reason(j) == "invalid",
            "tabledata.list with %s: 400 invalid" % name,
            j,
        )
    st, j = tdl(maxResults=1)
    st, j = tdl("tdl_empty", pageToken=j["pageToken"])
    T.ok(st == 400 and err_reason(j) == "invalid", "another table's pageToken: 400 invalid", j)
    st, j = tdl("absent")
    T.ok(st == 404 and err_reason(j) == "notFound", "tabledata.list of a missing table: 404", j)
    st, j = tdl(token="")
    T.ok(st == 401 and err_reason(j) == "required", "tabledata.list without a token: 401", j)
    st, j = tdl(token=narrow)
    T.ok(
        st == 403 and err_reason(j) == "insufficientPermissions",
        "tabledata.list with an insertdata-only token: 403",
        j,
    )

    # The page also stops at its byte limit, and the pageToken carries on from there.
    old = f.ctl("GET", "settings")["max_page_bytes"]
    f.ctl("POST", "settings", {"max_page_bytes": 340})
    try:
        pages, token = [], None
        for _ in range(10):
            st, j = tdl(selectedFields="k", **({"pageToken": token} if token else {}))
            pages.append(keys(j))
            token = j.get("pageToken")
            if not token:
                break
    finally:
        f.ctl("POST", "settings", {"max_page_bytes": old})
    T.ok(
        len(pages) > 1
        and all(pages)
        and sum(pages, []) == ["a", "b", "c", "d", "e"],
        "pages stop at max_page_bytes; paging on collects every row once",
        pages,
    )
    st, j = insert_all(f, "tdl", [{"insertId": "tdl-s1", "json": {"k": "f", "n": 6}}])
    st, j = tdl(startIndex=5)
    T.ok(
        j["totalRows"] == "6" and keys(j) == ["f"],
        "streamed rows are listed too",
        j,
    )


def test_load_jobs(f):
    def count():
        return rows_of(f, "sales")["count"]

    n = count()
    nd = b'{"uniqueCode":"L1","sold":2}\n{"uniqueCode":"L2","sold":"3","isPending":true}\n'
    st, j = load_job(f, "stbq_sales_1", nd)
    T.ok(
        st == 200
        and j["status"] == {"state": "PENDING"}
        and "startTime" not in j["statistics"]
        and "creationTime" in j["statistics"]
        and j["jobReference"]["jobId"] == "stbq_sales_1"
        and j["jobReference"]["location"] == "EU"
        and j["kind"] == "bigquery#job"
        and count() == n,
        "load job accepted as PENDING (no startTime), rows not yet stored",
        j,
    )
    st, j = f.bq("GET", "jobs/stbq_sales_1?location=EU", conf="bigquery.jobs.get")
    T.ok(
        st == 200
        and j["status"] == {"state": "DONE"}
        and "startTime" in j["statistics"]
        and j["statistics"]["load"]["outputRows"] == "2"
        and j["statistics"]["load"]["badRecords"] == "0"
        and count() == n + 2,
        "jobs.get: load job DONE without errors, rows stored, statistics as strings",
        j,
    )
    st, j = load_job(f, "stbq_sales_1", nd)
    T.ok(
        st == 409
        and err_reason(j) == "duplicate"
        and err_message(j) == "Already Exists: Job %s:EU.stbq_sales_1" % P
        and count() == n + 2,
        "jobs.insert with an existing jobId: 409 duplicate",
        j,
    )
    st, j = f.bq("GET", "jobs/stbq_sales_1?location=US")
    T.ok(st == 404 and err_reason(j) == "notFound", "jobs.get in the wrong location: 404", j)
    st, j = f.bq("GET", "jobs/nope?location=EU")
    T.ok(st == 404 and err_reason(j) == "notFound", "jobs.get unknown job: 404", j)

    st, j = load_job(
        f, "stbq_sales_bad", b'{"uniqueCode":"L3"}\n{"uniqueCode":"L4","sold":"many"}\n'
    )
    st, j = f.bq("GET", "jobs/stbq_sales_bad?location=EU", conf="bigquery.jobs.get")
    T.ok(
        st == 200
        and j["status"]["state"] == "DONE"
        and j["status"].get("errorResult", {}).get("reason") == "invalid"
        and count() == n + 2,
        "load job with a bad row: DONE with errorResult invalid, nothing stored",
        j,
    )
    failed_row_error = j["status"]["errors"][-1]
    T.ok(
        failed_row_error["reason"] == "invalid"
        and "position 20:" in failed_row_error["message"]
        and failed_row_error["message"].endswith("Field: sold"),
        "failed load job: errors[] names the bad row by byte position and field",
        j["status"],
    )
    # maxBadRecords: a success, but status.errors still lists every skipped row.
    row_msg = (
        "Error while reading data, error message: JSON parsing error in row starting at "
        "position %d: Cannot convert value to integer (bad value): many Field: sold"
    )
    st, j = load_job(
        f,
        "stbq_sales_bad2",
        b'{"uniqueCode":"L3"}\n{"uniqueCode":"L4","sold":"many"}\n',
        maxBadRecords=1,
    )
    st, j = f.bq("GET", "jobs/stbq_sales_bad2?location=EU", conf="bigquery.jobs.get")
    T.ok(
        j["status"]["state"] == "DONE"
        and "errorResult" not in j["status"]
        and j["status"].get("errors")
        == [{"reason": "invalid", "location": "file-00000000", "message": row_msg % 20}]
        and count() == n + 3
        and j["statistics"]["load"]["badRecords"] == "1"
        and j["statistics"]["load"]["outputRows"] == "1",
        "maxBadRecords=1 skips one bad row: DONE, no errorResult, errors[] names the row",
        j,
    )
    T.eq(
        j["status"]["errors"][0]["message"],
        failed_row_error["message"],
        "a skipped row's error reads like the same row's error in a failed job",
    )
    st, j = load_job(
        f,
        "stbq_sales_bad3",
        b'{"uniqueCode":"L5","sold":"x"}\n{"uniqueCode":"L6"}\n\n{"uniqueCode":"L7","sold":"y"}\n',
        maxBadRecords=5,
    )
    st, j = f.bq("GET", "jobs/stbq_sales_bad3?location=EU", conf="bigquery.jobs.get")
    T.ok(
        "errorResult" not in j["status"]
        and [e["message"] for e in j["status"].get("errors", [])]
        == [
            (row_msg % 0).replace("many", "x"),
            (row_msg % 52).replace("many", "y"),
        ]
        and all(
            e["reason"] == "invalid" and e["location"] == "file-00000000"
            for e in j["status"]["errors"]
        )
        and count() == n + 4
        and j["statistics"]["load"]["badRecords"] == "2",
        "maxBadRecords=5 with two bad rows: both listed in order, with their byte positions",
        j,
    )
    n = count()
    st, j = load_job(
        f,
        "stbq_sales_bad4",
        b'{"uniqueCode":"L8","sold":"x"}\n{"uniqueCode":"L9","sold":"y"}\n',
        maxBadRecords=1,
    )
    st, j = f.bq("GET", "jobs/stbq_sales_bad4?location=EU", conf="bigquery.jobs.get")
    T.ok(
        j["status"].get("errorResult", {}).get("reason") == "invalid"
        and "errors: 2" in j["status"]["errorResult"]["message"]
        and len(j["status"]["errors"]) == 3
        and count() == n,
        "maxBadRecords=1 with two bad rows: the job fails, nothing stored",
        j,
    )
    n = count()
    st, j = load_job(f, "stbq_sales_csv", b'{"uniqueCode":"L7"}\n', fmt=None)
    st, j = f.bq("GET", "jobs/stbq_sales_csv?location=EU", conf="bigquery.jobs.get")
    T.ok(
        j["status"]["state"] == "DONE" and "errorResult" in j["status"] and count() == n,
        "load job without sourceFormat (CSV): errorResult, nothing stored",
        j,
    )
    f.ctl(
        "POST",
        "faults",
        {
            "path": "^/upload/",
            "action": {"job_error": {"reason": "backendError", "message": "boom"}},
        },
    )
    st, j = load_job(f, "stbq_sales_fault", b'{"uniqueCode":"L8"}\n')
    st, j = f.bq("GET", "jobs/stbq_sales_fault?location=EU", conf="bigquery.jobs.get")
    T.ok(
        j["status"].get("errorResult") == {"reason": "backendError", "message": "boom"}
        and count() == n,
        "fault job_error: DONE with that errorResult, no rows",
        j,
    )
    st, j = load_job(f, None, b'{"uniqueCode":"L9"}\n')
    gen = j.get("jobReference", {}).get("jobId")
    st2, j2 = f.bq("GET", "jobs/%s?location=EU" % gen, conf="bigquery.jobs.get")
    T.ok(
        st == 200 and gen and j2["status"]["state"] == "DONE" and count() == n + 1,
        "load job without a jobId gets a generated one",
        j,
    )
    st, j = load_job(
        f,
        "stbq_new_table",
        b'{"a":1}\n',
        table="created",
        createDisposition="CREATE_IF_NEEDED",
        schema={"fields": [{"name": "a", "type": "INTEGER"}]},
    )
    f.bq("GET", "jobs/stbq_new_table?location=EU")
    T.eq(
        rows_of(f, "created")["rows"],
        [{"a": 1}],
        "CREATE_IF_NEEDED creates the table from the job schema",
    )
    st, j = load_job(f, "stbq_never", b'{"a":1}\n', table="absent")
    st, j = f.bq("GET", "jobs/stbq_never?location=EU")
    T.ok(
        j["status"].get("errorResult", {}).get("reason") == "notFound",
        "CREATE_NEVER on a missing table: errorResult notFound",
        j,
    )
    st, j = load_job(
        f, "stbq_trunc", b'{"a":5}\n', table="created", writeDisposition="WRITE_TRUNCATE"
    )
    f.bq("GET", "jobs/stbq_trunc?location=EU")
    T.eq(rows_of(f, "created")["rows"], [{"a": 5}], "WRITE_TRUNCATE replaces the rows")
    body, ctype = multipart(
        {
            "configuration": {
                "load": {
                    "destinationTable": {"projectId": P, "datasetId": D, "tableId": "sales"},
                    "sourceFormat": "NEWLINE_DELIMITED_JSON",
                }
            }
        },
        b"{}\n",
        extra_part=True,
    )
    st, j = f.api(
        None,
        "POST",
        "/upload/bigquery/v2/projects/%s/jobs?uploadType=multipart" % P,
        body,
        ctype=ctype,
    )
    T.ok(st == 400 and err_reason(j) == "invalid", "multipart upload with three parts: 400", j)
    st, j = f.api(
        None,
        "POST",
        "/upload/bigquery/v2/projects/%s/jobs?uploadType=multipart" % P,
        b"{}",
        ctype="application/json",
    )
    T.eq(st, 400, "upload that is not multipart/related: 400")


def test_load_polls():
    g = Fake(
        "--dataset",
        "%s:%s:EU" % (P, D),
        "--job-polls-to-done",
        "2",
        "--query-incomplete-polls",
        "1",
        "--expires-in-as-string",
        "--token-lifetime",
        "1234",
        "--max-insert-bytes",
        "3000",
        "--project-id",
        "other",
    )
    try:
        sa = g.ctl("POST", "service_accounts", {})
        st, j = jwt_grant(g, make_jwt(sa))
        T.ok(
            st == 200 and j["expires_in"] == "1234",
            "--expires-in-as-string and --token-lifetime",
            j,
        )
        g.token = j["access_token"]
        g.ctl(
            "POST",
            "tables",
            {
                "project": P,
                "dataset": D,
                "table": "sales",
                "schema": {"fields": schema_of(SALES_FIELDS)},
            },
        )
        def poll_states(job_id, polls):
            st, j = load_job(g, job_id, b'{"uniqueCode":"%s"}\n' % job_id.encode())
            states, counts = [j["status"]["state"]], [rows_of(g, "sales")["count"]]
            for _ in range(polls):
                j = g.bq("GET", "jobs/%s?location=EU" % job_id, conf="bigquery.jobs.get")[1]
                states.append(j["status"]["state"])
                counts.append(rows_of(g, "sales")["count"])
            return states, counts

        states, counts = poll_states("j1", 3)
        T.eq(
            states,
            ["PENDING", "RUNNING", "DONE", "DONE"],
            "--job-polls-to-done 2: PENDING at insert, RUNNING at the 1st poll, DONE at the 2nd",
        )
        T.eq(counts, [0, 0, 1, 1], "load rows stored once DONE, and once only")
        g.ctl("POST", "settings", {"job_polls_to_done": 3})
        states, counts = poll_states("j3", 4)
        T.eq(
            (states, counts),
            (["PENDING", "RUNNING", "RUNNING", "DONE", "DONE"], [1, 1, 1, 2, 2]),
            "job_polls_to_done 3: PENDING, RUNNING, RUNNING, DONE",
        )
        g.ctl("POST", "settings", {"job_polls_to_done": 1})
        states, counts = poll_states("j4", 1)
        T.eq(
            (states, counts),
            (["PENDING", "DONE"], [2, 3]),
            "job_polls_to_done 1: PENDING at insert, DONE at the 1st poll",
        )
        g.ctl("POST", "settings", {"job_polls_to_done": 0})
        states, counts = poll_states("j0", 1)
        T.eq(
            (states, counts),
            (["DONE", "DONE"], [4, 4]),
            "job_polls_to_done 0: DONE at insert, rows already stored",
        )
        g.ctl("POST", "settings", {"job_polls_to_done": 2})
        st, j = query(g, "SELECT uniqueCode FROM `%s.%s.sales`" % (P, D))
        st2, j2 = gqr(g, j["jobReference"]["jobId"])
        T.ok(
            j["jobComplete"] is False and j2["jobComplete"] is True,
            "--query-incomplete-polls 1",
            (j, j2),
        )
        st, j = insert_all(
            g, "sales", [{"json": sale("P%d" % i, eventName="y" * 200)} for i in range(20)]
        )
        T.ok(
            st == 400 and err_message(j) == "Request payload size exceeds the limit: 3000 bytes.",
            "--max-insert-bytes 3000",
            j,
        )
        st, h, b = g.http(
            "GET", "/computeMetadata/v1/project/project-id", headers={"Metadata-Flavor": "Google"}
        )
        T.eq(b, b"other", "--project-id")
        # reset: back to the command-line state
        g.ctl("POST", "faults", {"path": "x", "action": {"drop": True}})
        g.ctl("POST", "reset", {})
        cleared = (
            g.ctl("GET", "faults")["faults"] == [] and g.ctl("GET", "requests")["requests"] == []
        )
        st, j = g.bq("GET", "datasets/" + D)
        st2, j2 = g.bq("GET", "datasets/%s/tables/sales" % D)
        T.ok(
            st == 200 and st2 == 404 and cleared,
            "POST /_fake/reset clears faults, log, tables; keeps CLI datasets and tokens",
            (st, st2, cleared),
        )
    finally:
        rc = g.stop()
    T.eq(rc, 0, "SIGTERM stops the fake cleanly with exit status 0")
    T.ok("Traceback" not in g.stderr(), "second fake logged no traceback", g.stderr()[-2000:])


def crc32c_ref(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_secrets(f, bq_only):
    T.ok(
        crc32c_ref(b"123456789") == 3808858755 and crc32c_ref(b"secret-key") == 4048198890,
        "reference CRC32C matches the check vectors",
    )
    name = "projects/%s/secrets/SEE_TICKETS_API_KEY" % P

    def access(v="latest", secret="SEE_TICKETS_API_KEY", token=None):
        return f.api(
            "secretmanager.projects.secrets.versions.access",
            "GET",
            "/v1/projects/%s/secrets/%s/versions/%s:access" % (P, secret, v),
            token=token,
        )

    f.ctl("POST", "secrets", {"name": name, "data": "secret-key"})
    st, j = access()
    T.ok(
        st == 200
        and base64.b64decode(j["payload"]["data"]) == b"secret-key"
        and j["payload"]["dataCrc32c"] == "4048198890"
        and re.fullmatch(r"projects/\d+/secrets/SEE_TICKETS_API_KEY/versions/1", j["name"]),
        "access latest: std base64 data, CRC32C 4048198890 as a decimal string, numbered name",
        j,
    )
    f.ctl("POST", "secrets", {"name": name, "data": "123456789"})
    st, j = access()
    T.ok(
        st == 200
        and j["payload"]["dataCrc32c"] == "3808858755"
        and j["name"].endswith("/versions/2"),
        "a new version becomes latest; CRC32C(123456789) = 3808858755",
        j,
    )
    st, j = access("1")
    T.ok(
        st == 200 and base64.b64decode(j["payload"]["data"]) == b"secret-key",
        "access a numbered version",
        j,
    )
    f.ctl(
        "POST",
        "secrets",
        {
            "name": "projects/%s/secrets/BIN" % P,
            "data_b64": base64.b64encode(b"\xfb\xff\xfe\n").decode(),
        },
    )
    st, j = access(secret="BIN")
    T.ok(
        st == 200
        and j["payload"]["data"] == "+//+Cg=="
        and j["payload"]["dataCrc32c"] == str(crc32c_ref(b"\xfb\xff\xfe\n")),
        "binary payload is standard (not url-safe) base64",
        j,
    )
    st, j = access(secret="MISSING")
    T.ok(
        st == 403
        and j["error"]["status"] == "PERMISSION_DENIED"
        and "(or it may not exist)" in j["error"]["message"]
        and "secretmanager.versions.access" in j["error"]["message"]
        and "errors" not in j["error"],
        "missing secret: 403 PERMISSION_DENIED in google.rpc.Status shape",
        j,
    )
    f.ctl("POST", "secrets", {"name": name, "data": "third", "disabled": True})
    st, j = access()
    T.ok(
        st == 400 and j["error"]["status"] == "FAILED_PRECONDITION",
        "latest version disabled: 400 FAILED_PRECONDITION",
        j,
    )
    st, j = access("9")
    T.ok(
        st == 404 and j["error"]["status"] == "NOT_FOUND",
        "version that does not exist: 404 NOT_FOUND",
        j,
    )
    f.ctl(
        "POST",
        "secrets",
        {"name": "projects/%s/secrets/CRC" % P, "data": "secret-key", "bad_crc": True},
    )
    st, j = access(secret="CRC")
    T.ok(
        st == 200
        and j["payload"]["dataCrc32c"] != "4048198890"
        and base64.b64decode(j["payload"]["data"]) == b"secret-key",
        "bad_crc serves a wrong dataCrc32c",
        j,
    )
    st, j = access(token="")
    T.eq(
        (st, j),
        (
            401,
            {"error": {"code": 401, "message": NO_CREDENTIAL_MESSAGE, "status": "UNAUTHENTICATED"}},
        ),
        "Secret Manager without an Authorization header: 401, missing credential text",
    )
    st, j = access(token="ya29.made-up")
    T.eq(
        (st, j),
        (401, {"error": {"code": 401, "message": BAD_TOKEN_MESSAGE, "status": "UNAUTHENTICATED"}}),
        "Secret Manager with an unknown token: 401, invalid credentials text",
    )
    st, j = access(token=bq_only)
    T.ok(
        st == 403 and j["error"]["status"] == "PERMISSION_DENIED",
        "access with a bigquery-only scope: 403",
        j,
    )
    st, j = f.api(
        None, "GET", "/v1/projects/%s/secrets/SEE_TICKETS_API_KEY/versions/1%%3Aaccess" % P
    )
    T.eq(st, 200, "percent-encoded ':access' is accepted")


def test_googleapiclient(f):
    names = [
        "datasets.get",
        "tables.insert",
        "tabledata.insertAll",
        "tabledata.list",
        "jobs.query",
        "jobs.getQueryResults",
        "secretmanager access",
    ]
    try:
        import httplib2
        from googleapiclient.discovery import build_from_document
    except ImportError as e:
        for n in names:
            T.skip("googleapiclient " + n, "python3-googleapi not installed (%s)" % e)
        return

    class AuthHttp(httplib2.Http):
        def request(self, uri, method="GET", body=None, headers=None, *a, **kw):
            headers = dict(headers or {})
            headers["authorization"] = "Bearer " + f.token
            return super().request(uri, method, body, headers, *a, **kw)

    def doc(name):
        with open(os.path.join(CONTRACTS, name)) as fh:
            d = json.load(fh)
        d["rootUrl"] = f.base + "/"
        d["mtlsRootUrl"] = f.base + "/"
        if "baseUrl" in d:
            d["baseUrl"] = f.base + "/" + d.get("servicePath", "")
        return d

    def attempt(name, fn, check):
        try:
            res = fn()
            T.ok(check(res), "googleapiclient " + name, res)
        except Exception as e:  # noqa: BLE001 - any failure is this test's failure
            T.ok(
                False,
                "googleapiclient " + name,
                "".join(traceback.format_exception_only(type(e), e)),
            )

    bq = build_from_document(doc("bigquery.v2.discovery.json"), http=AuthHttp())
    attempt(
        "datasets.get",
        lambda: bq.datasets().get(projectId=P, datasetId=D).execute(),
        lambda r: r["location"] == "EU",
    )
    attempt(
        "tables.insert",
        lambda: bq.tables()
        .insert(
            projectId=P,
            datasetId=D,
            body={
                "tableReference": {"projectId": P, "datasetId": D, "tableId": "gapi"},
                "schema": {
                    "fields": [{"name": "k", "type": "STRING"}, {"name": "n", "type": "INTEGER"}]
                },
            },
        )
        .execute(),
        lambda r: r["id"].endswith(".gapi"),
    )
    attempt(
        "tabledata.insertAll",
        lambda: bq.tabledata()
        .insertAll(
            projectId=P,
            datasetId=D,
            tableId="gapi",
            body={
                "rows": [
                    {"insertId": "g1", "json": {"k": "a", "n": 1}},
                    {"insertId": "g2", "json": {"k": "b", "n": "2"}},
                ]
            },
        )
        .execute(),
        lambda r: "insertErrors" not in r and rows_of(f, "gapi")["count"] == 2,
    )
    attempt(
        "tabledata.list",
        lambda: bq.tabledata()
        .list(
            projectId=P,
            datasetId=D,
            tableId="gapi",
            maxResults=1,
            selectedFields="n",
            formatOptions_useInt64Timestamp=True,
        )
        .execute(),
        lambda r: r["kind"] == "bigquery#tableDataList"
        and r["totalRows"] == "2"
        and r["rows"] == [{"f": [{"v": "1"}]}]
        and "pageToken" in r,
    )
    sent = [q for q in f.ctl("GET", "requests")["requests"] if q["path"].endswith("/gapi/data")]
    T.ok(
        sent
        and {k: v for k, v in sent[-1]["query"].items() if k != "alt"}
        == {
            "maxResults": ["1"],
            "selectedFields": ["n"],
            "formatOptions.useInt64Timestamp": ["true"],
        },
        "googleapiclient sends tabledata.list's query parameters under the names the fake reads",
        sent[-1:],
    )
    holder = {}

    def q():
        r = (
            bq.jobs()
            .query(
                projectId=P,
                body={
                    "query": "SELECT k, n FROM `%s.%s.gapi` ORDER BY k" % (P, D),
                    "useLegacySql": False,
                    "location": "EU",
                    "maxResults": 1,
                },
            )
            .execute()
        )
        holder["r"] = r
        return r

    attempt("jobs.query", q, lambda r: r["rows"][0]["f"][0]["v"] == "a" and "pageToken" in r)
    attempt(
        "jobs.getQueryResults",
        lambda: bq.jobs()
        .getQueryResults(
            projectId=P,
            jobId=holder["r"]["jobReference"]["jobId"],
            location="EU",
            pageToken=holder["r"]["pageToken"],
        )
        .execute(),
        lambda r: r["rows"][0]["f"] == [{"v": "b"}, {"v": "2"}] and "pageToken" not in r,
    )
    sm = build_from_document(doc("secretmanager.v1.discovery.json"), http=AuthHttp())
    attempt(
        "secretmanager access",
        lambda: sm.projects()
        .secrets()
        .versions()
        .access(name="projects/%s/secrets/SEE_TICKETS_API_KEY/versions/1" % P)
        .execute(),
        lambda r: base64.b64decode(r["payload"]["data"]) == b"secret-key",
    )


def test_conformance():
    bad = {
        "kind": "bigquery#table",
        "numRows": 5,
        "colour": "red",
        "schema": {"fields": [{"name": 1}]},
        "requirePartitionFilter": "yes",
        "replicas": {},
    }
    probs = CONF.problems("bigquery.tables.get", bad)
    T.ok(
        len(probs) == 5,
        "conformance validator catches int64 as number, unknown key, wrong types",
        probs,
    )
    T.eq(
        CONF.problems(
            "bigquery.jobs.query",
            {"jobComplete": True, "totalRows": "3", "rows": [{"f": [{"v": None}]}]},
        ),
        [],
        "conformance validator accepts a well-formed response",
    )
    want = [
        "bigquery.datasets.get",
        "bigquery.tables.get",
        "bigquery.tables.insert",
        "bigquery.tables.patch",
        "bigquery.tabledata.insertAll",
        "bigquery.tabledata.list",
        "bigquery.jobs.query",
        "bigquery.jobs.getQueryResults",
        "bigquery.jobs.get",
        "bigquery.jobs.insert",
        "secretmanager.projects.secrets.versions.access",
    ]
    for m in want:
        n, probs = CONF.results.get(m, [0, []])
        T.ok(
            n > 0 and not probs,
            "conformance: %d %s responses match the discovery schema" % (n, m),
            probs[:20] or "no responses",
        )


def timed(fn, *args):
    t0 = time.time()
    try:
        return fn(*args)
    finally:
        T.diag("%s: %.1fs" % (fn.__name__, time.time() - t0))


def main():
    f = Fake(
        "--dataset",
        "%s:%s:EU" % (P, D),
        "--max-insert-bytes",
        "100000",
        "--max-insert-rows",
        "600",
        "--project-id",
        "proj-meta",
    )
    T.diag("google-fake on port %d" % f.port)
    t0 = time.time()
    try:
        timed(test_cli_and_core, f)
        sa, narrow, bq_only = timed(test_auth, f)
        timed(test_metadata, f)
        timed(test_datasets_tables, f)
        timed(test_insert_all, f, narrow)
        timed(test_faults, f)
        timed(test_queries, f)
        timed(test_track_changes, f)
        timed(test_paging, f)
        timed(test_tabledata_list, f, narrow)
        timed(test_load_jobs, f)
        timed(test_secrets, f, bq_only)
        timed(test_googleapiclient, f)
        timed(test_load_polls)
        timed(test_conformance)
    except Exception:
        T.ok(False, "test program crashed", traceback.format_exc())
    finally:
        rc = f.stop()
    T.eq(rc, 0, "fake exits 0 on SIGTERM")
    err = f.stderr()
    T.ok("Traceback" not in err, "fake logged no traceback", err[-3000:])
    T.ok(f.token is None or f.token not in err, "fake never logged an access token")
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    T.diag("took %.1fs (fakes used %.1fs CPU)" % (time.time() - t0, ru.ru_utime + ru.ru_stime))
    print("1..%d" % T.n)
    return 1 if T.failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Google credentials and the Secret Manager key source against tests/fakes/google-fake.

Each case runs tests/unit/gauth_probe (which prints one JSON line per step, token hashes
only) with one credential source and checks what it reports, what it logged, and what the
fake saw. At the end every probe's stdout and stderr is searched for every secret the fake
saw on the wire: access tokens, JWT assertions, private keys, refresh tokens, client secrets,
API keys. TAP on stdout; env TOP_BUILDDIR / TOP_SRCDIR.
"""

import base64
import errno
import hashlib
import importlib.util
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request

from harness import (GoogleFake, ProbeRun, ProbeSession, SkipTest, Tap, Workdir, check, header,
                     need_probe, run_cases)

PROJECT = "fake-project"
# The aud of a service-account JWT: Google's token endpoint, whatever token_uri the key file
# names (google-auth signs the same); token_uri is only where the JWT is POSTed.
GOOGLE_AUD = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"


class Run(ProbeRun):
    def events(self, kind):
        return [l for l in self.lines if l.get("event") == kind]

    @property
    def source(self):
        s = self.events("source")
        return s[0] if s else {}


def clean_env(ctx, **extra):
    """An environment without ambient Google credentials: no ADC file, no metadata host."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST",
                        "GCE_METADATA_ROOT", "CREDENTIALS_DIRECTORY")}
    env["HOME"] = ctx.home
    env.update({k: str(v) for k, v in extra.items()})
    return env


def probe(ctx, *args, env=None, timeout=60):
    return Run.of([ctx.probe, "--log-level", "debug", *args], timeout=timeout,
                  env=env if env is not None else clean_env(ctx))


class Interactive(ProbeSession):
    """gauth_probe --commands: the source line, then one command in, one JSON line out."""

    def __init__(self, ctx, *args, env=None):
        super().__init__([ctx.probe, "--log-level", "debug", "--commands", *args], Run,
                         env=env if env is not None else clean_env(ctx))
        self.source = self.read()


def key_file(ctx, kind, name):
    """A new credential from the fake in a file; the final case looks for its secrets."""
    body = ctx.fake.post("/_fake/%s" % kind)
    path = os.path.join(ctx.tmp, name)
    with open(path, "w") as f:
        json.dump(body, f, indent=2)
    os.chmod(path, 0o600)
    ctx.key_files.append(path)
    return path, body


def token_posts(fake):
    return [r for r in fake.requests() if r["method"] == "POST" and r["path"] == "/token"]


def metadata_gets(fake):
    return [r for r in fake.requests() if r["path"].endswith("/service-accounts/default/token")]


def form(req):
    return {k: v[0] for k, v in urllib.parse.parse_qs(req.get("body") or "").items()}


def jwt_json(segment):
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def jwt_parts(assertion):
    """(header, claims) of a JWT; the signature is left alone."""
    h, c, _ = assertion.split(".")
    return jwt_json(h), jwt_json(c)


def sign_jwt(key, header, claims):
    """An RS256 JWT signed with the key file's private key, as a test-made stand-in."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(obj):
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    pk = serialization.load_pem_private_key(key["private_key"].encode(), None)
    signing_input = b64(header) + "." + b64(claims)
    sig = pk.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def post_assertion(url, assertion):
    """POST a jwt-bearer grant to url: (status, JSON reply)."""
    data = urllib.parse.urlencode({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                   "assertion": assertion}).encode()
    req = urllib.request.Request(url, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---- the cases -----------------------------------------------------------------------------


def test_service_account_key_file_gets_a_cached_token(ctx):
    path, key = key_file(ctx, "service_accounts", "sa.json")
    r = probe(ctx, "--credentials", path, "--tokens", 3)
    toks = r.events("token")
    check(r.rc == 0 and len(toks) == 3 and all(t["rc"] == 0 for t in toks), "3 tokens", r)
    check(r.source["describe"] == "service account %s (file %s)" % (key["client_email"], path),
          "description", r)
    check(len({t["sha256"] for t in toks}) == 1, "one cached token", r)
    posts = token_posts(ctx.fake)
    check(len(posts) == 1, "one token request, saw %d" % len(posts))
    f = form(posts[0])
    check(f.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer", "grant %r" % f)
    check(f.get("assertion", "").count(".") == 2, "a JWT assertion")
    check(header(posts[0], "Content-Type").startswith("application/x-www-form-urlencoded"),
          "form content type")
    check(posts[0]["status"] == 200, "fake accepted the JWT: %r" % posts[0])
    # Posted to token_uri (the fake), but signed for Google's token endpoint.
    check(key["token_uri"] == ctx.fake.url + "/token" and posts[0]["path"] == "/token",
          "posted to the key file's token_uri")
    head, claims = jwt_parts(f["assertion"])
    check(head == {"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]},
          "JWT header: %r" % head)
    check(claims.get("aud") == GOOGLE_AUD,
          "aud is %s, not token_uri: %r" % (GOOGLE_AUD, claims.get("aud")))
    check(claims.get("iss") == key["client_email"] and claims.get("scope") == SCOPE
          and claims.get("exp", 0) - claims.get("iat", 0) == 3600 and "sub" not in claims,
          "JWT claims: %r" % sorted(claims))


def test_fake_refuses_a_jwt_signed_for_token_uri(ctx):
    """The daemon's own claims, signed again by the test: accepted as they are, refused with
    aud = token_uri. So the fake would catch a daemon that signed its token_uri."""
    if importlib.util.find_spec("cryptography") is None:
        raise SkipTest("python3-cryptography is not installed")
    path, key = key_file(ctx, "service_accounts", "sa-aud.json")
    r = probe(ctx, "--credentials", path)
    check(r.rc == 0 and r.events("token")[0]["rc"] == 0, "the daemon got a token", r)
    head, claims = jwt_parts(form(token_posts(ctx.fake)[0])["assertion"])
    st, j = post_assertion(key["token_uri"], sign_jwt(key, head, claims))
    check(st == 200 and j.get("access_token"), "the daemon's claims re-signed: accepted %r"
          % ((st, sorted(j)),))
    st, j = post_assertion(key["token_uri"],
                           sign_jwt(key, head, dict(claims, aud=key["token_uri"])))
    check(st == 400 and j.get("error") == "invalid_grant"
          and "Failed audience check" in j.get("error_description", ""),
          "aud = token_uri: refused with invalid_grant, audience: %r" % ((st, j),))


def test_authorized_user_file_exchanges_its_refresh_token(ctx):
    path, user = key_file(ctx, "authorized_users", "au.json")
    r = probe(ctx, "--credentials", path)
    check(r.rc == 0 and r.events("token")[0]["rc"] == 0, "token", r)
    check(r.source["describe"] == "authorized user (file %s)" % path, "description", r)
    posts = token_posts(ctx.fake)
    check(len(posts) == 1 and posts[0]["status"] == 200, "one accepted request")
    f = form(posts[0])
    check(f == {"grant_type": "refresh_token", "client_id": user["client_id"],
                "client_secret": user["client_secret"], "refresh_token": user["refresh_token"]},
          "refresh form fields: %r" % sorted(f))


def test_metadata_server_named_by_gce_metadata_host(ctx):
    host = "127.0.0.1:%d" % ctx.fake.port
    # The environment wins over the configured host (which would go nowhere).
    r = probe(ctx, "--credentials", "metadata", "--metadata-host", "127.0.0.1:%d" % closed_port(),
              "--tokens", 2, env=clean_env(ctx, GCE_METADATA_HOST=host))
    check(r.rc == 0 and all(t["rc"] == 0 for t in r.events("token")), "tokens", r)
    check(r.source["describe"] == "metadata server " + host, "description", r)
    gets = metadata_gets(ctx.fake)
    check(len(gets) == 1, "one metadata request (cached), saw %d" % len(gets))
    check(header(gets[0], "Metadata-Flavor") == "Google", "Metadata-Flavor header sent")
    check("cloud-platform" in urllib.parse.unquote(json.dumps(gets[0]["query"])),
          "cloud-platform scope asked: %r" % gets[0]["query"])


def test_metadata_host_from_configuration(ctx):
    r = probe(ctx, "--credentials", "metadata", "--metadata-host", "127.0.0.1:%d" % ctx.fake.port)
    check(r.rc == 0 and r.events("token")[0]["rc"] == 0, "token", r)


def test_auto_uses_google_application_credentials_first(ctx):
    path, key = key_file(ctx, "service_accounts", "gac.json")
    # A gcloud ADC file and a metadata server are there too, but lower in the order.
    gcloud = os.path.join(ctx.tmp, "gcloud-cfg")
    os.makedirs(gcloud, exist_ok=True)
    au, _ = key_file(ctx, "authorized_users", "gcloud-cfg/application_default_credentials.json")
    env = clean_env(ctx, GOOGLE_APPLICATION_CREDENTIALS=path, CLOUDSDK_CONFIG=gcloud,
                    GCE_METADATA_HOST="127.0.0.1:%d" % ctx.fake.port)
    r = probe(ctx, "--credentials", "auto", env=env)
    check(r.rc == 0 and r.source["describe"].startswith("service account " + key["client_email"]),
          "service account from GOOGLE_APPLICATION_CREDENTIALS", r)
    check(len(token_posts(ctx.fake)) == 1 and not metadata_gets(ctx.fake), "token from /token")
    # Without the variable, gcloud's file is next.
    del env["GOOGLE_APPLICATION_CREDENTIALS"]
    r = probe(ctx, "--credentials", "auto", env=env)
    check(r.rc == 0 and r.source["describe"] == "authorized user (file %s)" % au,
          "gcloud ADC file", r)


def test_auto_falls_back_to_the_metadata_server(ctx):
    env = clean_env(ctx, GCE_METADATA_HOST="127.0.0.1:%d" % ctx.fake.port)
    r = probe(ctx, "--credentials", "auto", env=env)
    check(r.rc == 0 and r.events("token")[0]["rc"] == 0, "token", r)
    check(r.source["describe"].startswith("metadata server 127.0.0.1:"), "metadata", r)
    check(len(metadata_gets(ctx.fake)) == 1 and not token_posts(ctx.fake), "metadata request")


def test_auto_without_any_credentials_says_none_were_found(ctx):
    env = clean_env(ctx, GCE_METADATA_HOST="127.0.0.1:%d" % closed_port())
    r = probe(ctx, "--credentials", "auto", "--attempts", 2, env=env)
    check(r.rc == 1 and r.events("token")[0]["rc"] == -errno.EACCES, "refused", r)
    check("no Google credentials found" in r.err and "GOOGLE_APPLICATION_CREDENTIALS" in r.err,
          "actionable message", r)


def test_short_metadata_expires_in_is_used_then_refreshed(ctx):
    ctx.fake.post("/_fake/metadata", {"expires_in": 2})
    env = clean_env(ctx, GCE_METADATA_HOST="127.0.0.1:%d" % ctx.fake.port)
    p = Interactive(ctx, "--credentials", "metadata", env=env)
    a = p.send("token")
    b = p.send("token")
    check(a["rc"] == 0 and b["rc"] == 0 and a["sha256"] == b["sha256"],
          "a 2 s token is used, not refetched at once: %r %r" % (a, b))
    check(len(metadata_gets(ctx.fake)) == 1, "one metadata request so far")
    p.send("sleep 1200")
    c = p.send("token")
    r = p.close()
    check(c["rc"] == 0 and c["sha256"] != a["sha256"], "refreshed after half its life", r)
    check(len(metadata_gets(ctx.fake)) == 2, "second metadata request")
    check(r.rc == 0, "no failure", r)


def test_token_endpoint_503_then_success(ctx):
    path, _ = key_file(ctx, "service_accounts", "sa503.json")
    ctx.fake.fault(method="POST", path="^/token$", times=1, action={"status": 503})
    r = probe(ctx, "--credentials", path)
    check(r.rc == 0 and r.events("token")[0]["rc"] == 0, "token after a retry", r)
    posts = token_posts(ctx.fake)
    check([p["status"] for p in posts] == [503, 200], "503 then 200: %r" %
          [p["status"] for p in posts])
    a1, a2 = (form(p).get("assertion") for p in posts)
    check(a1 and a2, "both carried a JWT")


def test_failed_refresh_keeps_the_still_valid_token(ctx):
    path, _ = key_file(ctx, "service_accounts", "sa-keep.json")
    ctx.fake.post("/_fake/tokens", {"lifetime": 4})
    try:
        p = Interactive(ctx, "--credentials", path, "--attempts", 1)
        a = p.send("token")
        ctx.fake.fault(method="POST", path="^/token$", times=0, action={"status": 503})
        p.send("sleep 2500")  # past half of the 4 s life: a refresh is due
        b = p.send("token")
        p.send("sleep 2200")  # now the old token has expired too
        c = p.send("token")
        r = p.close()
    finally:
        ctx.fake.post("/_fake/tokens", {"lifetime": 3599})
    check(a["rc"] == 0 and b["rc"] == 0 and b["sha256"] == a["sha256"],
          "refresh failed, old token still served: %r %r" % (a, b), r)
    check(c["rc"] == -errno.EAGAIN, "expired and no new one: transient error %r" % c, r)
    statuses = [q["status"] for q in token_posts(ctx.fake)]
    check(statuses[0] == 200 and len(statuses) >= 3 and set(statuses[1:]) == {503},
          "one good token, then refused refreshes: %r" % statuses)
    check("stays in use" in r.err, "the kept token is logged", r)


def test_oauth_temporarily_unavailable_is_retried(ctx):
    path, _ = key_file(ctx, "service_accounts", "sa-tu.json")
    ctx.fake.fault(method="POST", path="^/token$", times=1,
                   action={"status": 400, "body": {"error": "temporarily_unavailable",
                                                   "error_description": "try later"}})
    r = probe(ctx, "--credentials", path)
    check(r.rc == 0, "token after a retry", r)
    check([p["status"] for p in token_posts(ctx.fake)] == [400, 200], "retried once")


def test_invalid_grant_is_a_clear_permanent_error(ctx):
    path, key = key_file(ctx, "service_accounts", "sa-skew.json")
    ctx.fake.fault(method="POST", path="^/token$", times=0, action={"status": 400, "body": {
        "error": "invalid_grant",
        "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and "
                             "in a reasonable timeframe. Check your iat and exp values in the "
                             "JWT claim."}})
    r = probe(ctx, "--credentials", path, "--attempts", 4)
    check(r.rc == 1 and r.events("token")[0]["rc"] == -errno.EACCES, "refused for good", r)
    check(len(token_posts(ctx.fake)) == 1, "a permanent error is not retried")
    check("invalid_grant" in r.err and "clock" in r.err and key["client_email"] in r.err,
          "message names the source, the error and the clock", r)


def test_unknown_service_account_is_refused(ctx):
    path, key = key_file(ctx, "service_accounts", "sa-unknown.json")
    key["client_email"] = "nobody@%s.iam.gserviceaccount.com" % PROJECT
    with open(path, "w") as f:
        json.dump(key, f)
    r = probe(ctx, "--credentials", path)
    check(r.rc == 1 and r.events("token")[0]["rc"] == -errno.EACCES, "refused", r)
    check("invalid_grant" in r.err and "nobody@" in r.err, "message", r)


def test_unsupported_key_file_type_is_refused_at_start(ctx):
    path = os.path.join(ctx.tmp, "ext.json")
    with open(path, "w") as f:
        json.dump({"type": "external_account", "audience": "x"}, f)
    os.chmod(path, 0o600)
    r = probe(ctx, "--credentials", path)
    check(r.rc == 1 and r.source.get("ok") is False, "refused", r)
    check("external_account" in r.source["error"] and path in r.source["error"], "message", r)
    check(not ctx.fake.requests(), "nothing sent")


def add_secret(ctx, name, **kw):
    body = {"name": "projects/%s/secrets/%s" % (PROJECT, name)}
    body.update(kw)
    return ctx.fake.post("/_fake/secrets", body)


def secret_probe(ctx, secret, *extra):
    path, _ = key_file(ctx, "service_accounts", "sa-sm-%s.json" % secret)
    return probe(ctx, "--credentials", path, "--secret",
                 "projects/%s/secrets/%s/versions/latest" % (PROJECT, secret),
                 "--sm-endpoint", ctx.fake.url, *extra)


def test_secret_manager_key_is_read_and_checked(ctx):
    add_secret(ctx, "SEE_TICKETS_API_KEY", data="st-api-key-for-tests-7\n")
    r = secret_probe(ctx, "SEE_TICKETS_API_KEY")
    s = r.events("secret")
    check(r.rc == 0 and s and s[0]["rc"] == 0, "secret read", r)
    want = b"st-api-key-for-tests-7"
    check(s[0]["length"] == len(want), "newline stripped", r)
    check(s[0]["sha256"] == hashlib.sha256(want).hexdigest()[:16], "same bytes", r)
    access = [q for q in ctx.fake.requests() if q["path"].endswith(":access")]
    check(len(access) == 1 and access[0]["status"] == 200 and access[0]["method"] == "GET",
          "one access call")


def test_secret_with_a_crc_mismatch_is_refused(ctx):
    add_secret(ctx, "CORRUPT", data="st-api-key-corrupt", bad_crc=True)
    r = secret_probe(ctx, "CORRUPT")
    check(r.rc == 1 and r.events("secret")[0]["rc"] == -errno.EBADMSG, "EBADMSG", r)
    check("corrupted in transit" in r.err, "message", r)


def test_secret_403_names_the_permission_and_the_missing_secret(ctx):
    r = secret_probe(ctx, "NO_SUCH_SECRET")
    check(r.rc == 1 and r.events("secret")[0]["rc"] == -errno.EACCES, "EACCES", r)
    check("secretmanager.versions.access" in r.err and
          "roles/secretmanager.secretAccessor" in r.err and "does not exist" in r.err,
          "both causes named", r)
    check("projects/%s/secrets/NO_SUCH_SECRET/versions/latest" % PROJECT in r.err,
          "source named", r)


def test_disabled_secret_version_is_explained(ctx):
    add_secret(ctx, "OLD", data="st-api-key-old", disabled=True)
    r = secret_probe(ctx, "OLD")
    check(r.rc == 1 and r.events("secret")[0]["rc"] == -errno.EINVAL, "EINVAL", r)
    check("disabled or destroyed" in r.err, "message", r)


def test_revoked_token_is_replaced_once_on_401(ctx):
    add_secret(ctx, "ROTATE", data="st-api-key-rotate")
    path, _ = key_file(ctx, "service_accounts", "sa-revoke.json")
    p = Interactive(ctx, "--credentials", path, "--secret",
                    "projects/%s/secrets/ROTATE/versions/latest" % PROJECT,
                    "--sm-endpoint", ctx.fake.url)
    first = p.send("secret")
    ctx.fake.post("/_fake/tokens/revoke")
    second = p.send("secret")
    r = p.close()
    check(first["rc"] == 0 and second["rc"] == 0, "both reads succeed", r)
    seq = [(q["method"], q["path"].rsplit("/", 1)[-1], q["status"]) for q in ctx.fake.requests()]
    check(seq == [("POST", "token", 200), ("GET", "latest:access", 200),
                  ("GET", "latest:access", 401), ("POST", "token", 200),
                  ("GET", "latest:access", 200)], "token, access, 401, new token, access: %r" % seq)


def test_every_api_request_carries_a_token(ctx):
    """Replays the whole log of this run's fake (cases above included)."""
    api = [q for q in ctx.all_requests if q["path"].startswith(("/v1/", "/bigquery/"))]
    check(api, "some API requests were made")
    for q in api:
        auth = header(q, "Authorization") or ""
        check(auth.startswith("Bearer ") and len(auth) > 20, "request without a token: %s %s"
              % (q["method"], q["path"]))


def test_no_output_contains_a_token_jwt_or_key(ctx):
    secrets = set()
    for q in ctx.all_requests:
        auth = header(q, "Authorization")
        if auth and auth.startswith("Bearer "):
            secrets.add(auth[7:])
        f = form(q) if q["path"] == "/token" else {}
        for k in ("assertion", "refresh_token", "client_secret"):
            if f.get(k):
                secrets.add(f[k])
                # The JWT's signature alone is secret enough to look for.
                if k == "assertion":
                    secrets.add(f[k].rsplit(".", 1)[-1])
    for path in ctx.key_files:
        with open(path) as f:
            body = json.load(f)
        for k in ("refresh_token", "client_secret"):
            if body.get(k):
                secrets.add(body[k])
        pem = body.get("private_key")
        if pem:
            lines = [l for l in pem.splitlines() if l and not l.startswith("-----")]
            secrets.update(lines[1:4])
    secrets.update(["st-api-key-for-tests-7", "st-api-key-rotate", "st-api-key-corrupt"])
    check(len(secrets) > 10, "collected %d secrets to look for" % len(secrets))
    check(len(Run.outputs) > 10, "collected %d probe outputs" % len(Run.outputs))
    for out in Run.outputs:
        for s in secrets:
            check(s not in out, "a secret (%d chars, starts %r) leaked into probe output"
                  % (len(s), s[:6]))
    check(any("new access token" in o for o in Run.outputs), "the debug log was on and captured")


# ---- runner ---------------------------------------------------------------------------------


class Ctx:
    pass


def main():
    ctx = Ctx()
    ctx.probe = need_probe("gauth_probe")
    cases = [v for k, v in list(globals().items()) if k.startswith("test_") and callable(v)]
    tap = Tap()
    with Workdir("gauth-it") as w:
        ctx.tmp = w.path
        ctx.home = os.path.join(w.path, "home")
        os.makedirs(ctx.home)
        ctx.key_files = []
        ctx.all_requests = []
        ctx.fake = w.add(GoogleFake(w.path))
        run_cases(tap, ctx, cases, look_back=("test_every_api_request_carries_a_token",
                                              "test_no_output_contains_a_token_jwt_or_key"))
    tap.done()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""seetickets-bq --check-config against the sample files (TAP).

Every tests/config/bad/*.conf names the problems it must produce in comment
lines "# expect: LINE: key: problem substring". The daemon must exit 78 and
print each of them, and nothing else, as "FILE:LINE: key: problem" on stderr.
The shipped etc/seetickets-bq.conf and tests/config/good/*.conf must pass
with "configuration OK" on stdout and exit 0.
"""
import glob
import os
import re
import subprocess
import sys
import tempfile

EX_CONFIG = 78
EXPECT = re.compile(r"^# expect: (\d+): ([^:]+): (.*)$")

top = os.environ.get("TOP_SRCDIR") or os.path.join(os.path.dirname(__file__), "..", "..")
top = os.path.abspath(top)
binary = os.environ.get("STBQ_BIN") or os.path.join(top, "src", "seetickets-bq")

count = 0
failed = 0


def result(ok, name, diag=()):
    global count, failed
    count += 1
    if not ok:
        failed += 1
    for line in diag:
        print("# " + line)
    print(("ok" if ok else "not ok") + " %d - %s" % (count, name))
    sys.stdout.flush()


def check_config(path):
    """Run --check-config on path; (exit status, stdout, stderr) or None on a hang."""
    env = dict(os.environ)
    # Plain stderr, never the journal, whatever the test runner's stderr is.
    env.pop("JOURNAL_STREAM", None)
    try:
        p = subprocess.run([binary, "--check-config", "-c", path], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None
    except OSError as e:
        return -1, "", "cannot run %s: %s\n" % (binary, e)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def expectations(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = EXPECT.match(line.rstrip("\n"))
            if m:
                out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def test_bad(path):
    name = "bad/" + os.path.basename(path)
    expected = expectations(path)
    if not expected:
        result(False, name, ["no '# expect:' lines in " + path])
        return
    r = check_config(path)
    if r is None:
        result(False, name, ["timed out"])
        return
    status, out, err = r
    diag = []
    if status != EX_CONFIG:
        diag.append("exit status %d, expected %d" % (status, EX_CONFIG))
    if "configuration OK" in out:
        diag.append("printed 'configuration OK' for a bad file")
    problems = [l for l in err.splitlines() if l.startswith(path + ":")]
    for line, key, problem in expected:
        prefix = "%s:%d: %s: " % (path, line, key)
        if not any(p.startswith(prefix) and problem in p[len(prefix):] for p in problems):
            diag.append("missing: %s%s" % (prefix, problem))
    if len(problems) != len(expected):
        diag.append("%d problems reported, %d expected" % (len(problems), len(expected)))
    if diag:
        diag += ["stderr: " + l for l in err.splitlines()]
    result(not diag, name, diag)


def test_good(path, name):
    r = check_config(path)
    if r is None:
        result(False, name, ["timed out"])
        return
    status, out, err = r
    diag = []
    if status != 0:
        diag.append("exit status %d, expected 0" % status)
    if out != "configuration OK\n":
        diag.append("stdout %r, expected 'configuration OK'" % out)
    if diag:
        diag += ["stderr: " + l for l in err.splitlines()]
    result(not diag, name, diag)


def test_unreadable():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "missing.conf")
        r = check_config(path)
        if r is None:
            result(False, "a missing file is a configuration error", ["timed out"])
            return
        status, out, err = r
        want = "%s: cannot read: No such file or directory" % path
        diag = []
        if status != EX_CONFIG:
            diag.append("exit status %d, expected %d" % (status, EX_CONFIG))
        if want not in err.splitlines():
            diag.append("no line %r on stderr" % want)
            diag += ["stderr: " + l for l in err.splitlines()]
        result(not diag, "a missing file is a configuration error", diag)


def test_secret_not_echoed():
    """A real key pasted where the secret's name belongs must not be printed."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "pasted-key.conf")
        key = "sk_live_9f8e7d6c5b4a39281706"
        with open(path, "w", encoding="utf-8") as f:
            f.write('seetickets = { api_key_secret = "%s"; };\n' % key)
            f.write('bigquery = { project = "my-project"; dataset = "d"; };\n')
        r = check_config(path)
        ok = r is not None and r[0] == EX_CONFIG and key not in r[1] + r[2]
        result(ok, "a pasted API key is not echoed", [] if ok else [repr(r)])


def main():
    if not os.access(binary, os.X_OK):
        print("# %s is not built" % binary)
    for path in sorted(glob.glob(os.path.join(top, "tests", "config", "bad", "*.conf"))):
        test_bad(path)
    test_good(os.path.join(top, "etc", "seetickets-bq.conf"), "etc/seetickets-bq.conf")
    for path in sorted(glob.glob(os.path.join(top, "tests", "config", "good", "*.conf"))):
        test_good(path, "good/" + os.path.basename(path))
    test_unreadable()
    test_secret_not_echoed()
    print("1..%d" % count)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

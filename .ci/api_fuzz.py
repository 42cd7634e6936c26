"""Fuzz the published API with schemathesis against a real server.

Run by .ci/run inside its virtual environment:
    python .ci/api_fuzz.py SERVER_BINARY docs/openapi.json

Starts `returnee-server serve` on a free loopback port with an empty store,
enrolls a device of each role (admin, supervisor, field), runs the
example client (docs/api-example.sh), and runs
schemathesis once per role with that role's token, a bounded number of
examples per operation. Pass: no 5xx, every answer matches the published
schema (status, content type, body, headers), no role gets a 2xx on an
operation whose `security` does not list it (the check in
api_fuzz_checks.py), and /v1/health still answers afterwards. Prints the
requests sent and the failures.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("API_FUZZ_SEED", "20261205")
# The checks that judge a server's answers; positive_data_acceptance is
# left out: a value the schema allows is still refused when a rule the
# schema cannot say (a known crossing, a device's own id) breaks.
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
    "roles_respected",
])


def call(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    req.add_header("x-returnee-protocol", "2")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def enroll(base, code, name):
    answer = call(base, "POST", "/v1/enroll", {
        "protocol": 2,
        "device_id": str(uuid.uuid4()),
        "code": code,
        "device_name": name,
    })
    return answer["token"]


def start_server(binary, data_dir):
    proc = subprocess.Popen(
        [binary, "serve", "--bind", "127.0.0.1:0", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    first = proc.stdout.readline().strip()
    second = proc.stdout.readline().strip()
    m = re.match(r"listening on (http://127\.0\.0\.1:\d+)$", first)
    code = second.rsplit(" ", 1)[-1]
    if not m or not second.startswith("admin enrollment code:"):
        proc.kill()
        sys.exit(f"the server did not start: {first!r} {second!r}")
    return proc, m.group(1), code


def fuzz(spec, base, role, token, report_dir):
    """One schemathesis run as `role`; run again once if schemathesis itself
    crashed (a "Runtime Error" of the tool, no check failed): a crash of the
    fuzzer says nothing about the API, a failed check does."""
    rc, requests, out = fuzz_once(spec, base, role, token, report_dir)
    if rc != 0 and "Failures:" not in out and "Runtime Error" in out:
        print(f"-- schemathesis as {role} crashed without a failed check: once more")
        rc, again, out = fuzz_once(spec, base, role, token, report_dir)
        requests += again
    return rc, requests


def fuzz_once(spec, base, role, token, report_dir):
    report = os.path.join(report_dir, f"{role}.ndjson")
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"),
        "run", spec,
        "--url", base,
        "-H", f"Authorization: Bearer {token}",
        "--checks", CHECKS,
        "--max-examples", str(EXAMPLES),
        "--seed", SEED,
        "--phases", "examples,coverage,fuzzing",
        "--workers", "2",
        "--no-shrink",
        "--request-timeout", "10",
        "--report", "ndjson", "--report-ndjson-path", report,
    ]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "api_fuzz_checks",
        "PYTHONPATH": HERE,
        "API_FUZZ_ROLE": role,
    }
    started = time.monotonic()
    # In the temporary folder: schemathesis keeps a cache where it runs.
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=report_dir)
    took = time.monotonic() - started
    requests = count_requests(report)
    tail = "\n".join(done.stdout.strip().splitlines()[-25:])
    print(f"-- schemathesis as {role}: {requests} requests in {took:.0f} s, exit {done.returncode}")
    if done.returncode != 0:
        print(done.stdout[-20000:])
        print(done.stderr[-5000:])
    else:
        print(tail)
    return done.returncode, requests, done.stdout


def count_requests(report):
    """The HTTP requests schemathesis sent, from its ndjson event log."""
    n = 0
    try:
        with open(report) as f:
            for line in f:
                n += line.count('"request":')
    except OSError:
        return 0
    return n


def main():
    binary, spec = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, admin_code = start_server(binary, os.path.join(tmp, "data"))
        try:
            tokens = {"admin": enroll(base, admin_code, "fuzz-admin")}
            for role, sites in [("supervisor", ["torkham"]), ("field", ["torkham"])]:
                minted = call(base, "POST", "/v1/admin/codes",
                              {"role": role, "sites": sites, "uses": 1}, tokens["admin"])
                tokens[role] = enroll(base, minted["code"], f"fuzz-{role}")
            failed, total = 0, 0
            # The example client of the README, from the description only.
            minted = call(base, "POST", "/v1/admin/codes",
                          {"role": "field", "sites": ["torkham"], "uses": 1}, tokens["admin"])
            example = subprocess.run(
                ["bash", os.path.join(HERE, "..", "docs", "api-example.sh"), base, minted["code"]],
                capture_output=True, text=True)
            print(f"-- docs/api-example.sh: exit {example.returncode}")
            if example.returncode != 0:
                print(example.stdout + example.stderr)
                failed += 1
            for role in ["field", "supervisor", "admin"]:
                rc, n = fuzz(spec, base, role, tokens[role], tmp)
                failed += rc != 0
                total += n
            health = call(base, "GET", "/v1/health")
            alive = health.get("status") == "ok" and proc.poll() is None
            print(f"api fuzz: {total} requests sent as 3 roles; runs with failures: {failed}; "
                  f"health afterwards: {'ok' if alive else 'DOWN'}")
            return 0 if failed == 0 and alive else 1
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())

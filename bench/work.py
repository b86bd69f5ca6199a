#!/usr/bin/env python3
"""Per-request work, counted rather than timed: SQL statements and CPU instructions.

Starts one `portcullis serve` (SQLite in a temp data dir, or a fresh PostgreSQL database),
signs a user up, registers a confidential client (as bench/oidc.sh does), warms the caches
with a few requests of the scenario, then sends exactly N requests of it, one at a time on
one keep-alive connection, and reports for those N requests only:

* statements: lines of sqlx's statement log (`sqlx::query`, PORTCULLIS_LOG_LEVEL includes
  `sqlx=debug`) written between the start and the end of the burst, per request;
* instructions (with --callgrind): the server runs under `valgrind --tool=callgrind
  --instr-atstart=no`; collection is switched on just before the burst and off just after
  (`callgrind_control -i`), so start-up, sign-up and warm-up are not counted. Background
  tasks that happen to run during the burst are (they are part of what the server costs).

* CPU time (with --cpu SECS, GET scenarios): instead of N requests, wrk loads the route for
  SECS seconds and the server's user + kernel CPU time (/proc/<pid>/stat) is divided by the
  requests wrk completed: a per-request cost that counts the kernel's share (which callgrind
  does not) and is far less disturbed by other load on the machine than a request rate.

Scenarios: cc (client_credentials grant, HTTP Basic), introspect (a JWT access token),
me (GET /v1/me with the session cookie), jwks (GET /.well-known/jwks.json), readyz.

Deterministic enough to compare two builds: instruction counts repeat within ~1-2 %. Up to
session 5 the webhook worker polled the database every 200 ms whatever the load, and under
valgrind a burst lasts seconds, so its polls landed in the count (a few thousand
instructions per request); since session 6 an idle worker looks once per
webhook_fallback_poll_ms (5 s). To compare with older builds, run both with
`--env PORTCULLIS_WEBHOOK_WORKER=false` (older builds have no worker and ignore the key).
Prints one JSON line per scenario. bench/README.md ("Counting work") has the figures.
"""

import argparse
import base64
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.parse


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Server:
    def __init__(self, a, work):
        self.a = a
        self.port = free_port()
        self.log = os.path.join(work, "server.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
        env["PORTCULLIS_LOG_LEVEL"] = "warn,sqlx::query=debug" if a.sql else "warn"
        env["PORTCULLIS_RATE_LIMIT_ENABLED"] = "true" if a.rate_limit else "false"
        if a.rate_limit and a.cpu:
            # wrk on one address would be limited; the check and its headers still run.
            env["PORTCULLIS_RATE_LIMITS__MANAGEMENT__LIMIT"] = "1000000000"
        env["NO_COLOR"] = "1"
        for kv in a.env:
            k, _, v = kv.partition("=")
            env[k] = v
        self.db = None
        if a.backend == "postgres":
            self.db = f"portcullis_work_{os.getpid()}_{self.port}"
            subprocess.run(
                ["psql", "-q", "-v", "ON_ERROR_STOP=1", f"{a.pg_url}/postgres", "-c",
                 f'CREATE DATABASE "{self.db}"'], check=True)
            env["PORTCULLIS_DATABASE_URL"] = f"{a.pg_url}/{self.db}"
            env["PORTCULLIS_MASTER_KEY"] = base64.b64encode(os.urandom(32)).decode()
        cmd = [a.bin, "serve", "--data-dir", os.path.join(work, "data"),
               "--listen", f"127.0.0.1:{self.port}"]
        self.cg_out = None
        if a.callgrind:
            self.cg_out = os.path.join(work, "callgrind.out")
            cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                   f"--callgrind-out-file={self.cg_out}"] + (
                       ["--cache-sim=yes"] if a.cache_sim else []) + cmd
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen(cmd, env=env, cwd=work, stdout=self.logf,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + (300 if a.callgrind else 60)
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {open(self.log).read()[-2000:]}")
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/readyz")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("server not ready")

    def callgrind(self, on):
        if self.cg_out:
            subprocess.run(["callgrind_control", "-i", "on" if on else "off",
                            str(self.proc.pid)], check=True, stdout=subprocess.DEVNULL)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()
        if self.db:
            subprocess.run(["psql", "-q", f"{self.a.pg_url}/postgres", "-c",
                            f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'])

    def instructions(self):
        total = 0
        for f in glob.glob(self.cg_out + "*"):
            found = {}
            for line in open(f, errors="replace"):
                if line.startswith(("totals:", "summary:")):
                    key, value = line.split()[:2]
                    found[key] = int(value)
            total += found.get("totals:", found.get("summary:", 0))
        return total


def request(conn, method, path, headers=None, body=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheaders(), r.read()


def setup(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    # The ES256 and RS256 keys are generated in the background after start (RSA takes long
    # under valgrind): wait for them, so that their generation is not counted.
    deadline = time.time() + 600
    while True:
        st, _, body = request(c, "GET", "/.well-known/jwks.json")
        if st == 200 and len(json.loads(body)["keys"]) >= 3:
            break
        if time.time() > deadline:
            raise SystemExit(f"the signing keys were not all generated: {body[:300]}")
        time.sleep(0.5)
    st, hdrs, body = request(c, "POST", "/v1/auth/signup",
                             {"Content-Type": "application/json"},
                             json.dumps({"email": "work@example.com",
                                         "password": "correct horse battery staple"}))
    assert st == 201, (st, body)
    cookie = None
    for k, v in hdrs:
        if k.lower() == "set-cookie" and v.startswith("portcullis_session="):
            cookie = v.split(";", 1)[0].split("=", 1)[1]
    project = json.loads(body)["project"]["id"]
    st, _, body = request(c, "POST", "/v1/project/clients",
                          {"Authorization": f"Bearer {cookie}", "X-Project-ID": project,
                           "Content-Type": "application/json"},
                          json.dumps({"name": "Bench", "type": "confidential",
                                      "redirect_uris": ["https://rp.example.com/callback"],
                                      "grant_types": ["authorization_code", "refresh_token",
                                                      "client_credentials"],
                                      "token_endpoint_auth_method": "client_secret_basic"}))
    assert st == 201, (st, body)
    d = json.loads(body)
    basic = base64.b64encode(f"{d['client_id']}:{d['client_secret']}".encode()).decode()
    c.close()
    return cookie, basic


def cpu_ticks(pid):
    """User + kernel CPU time of a process so far, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def cpu_per_request(srv, method, path, headers, secs):
    """The server's CPU time per request under a wrk load: less disturbed than a rate by
    whatever else the machine runs, and it counts the kernel's share that callgrind does not."""
    if method != "GET":
        raise SystemExit("--cpu loads GET scenarios only")
    cmd = ["wrk", "-t1", "-c8", f"-d{int(secs)}s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    before = cpu_ticks(srv.proc.pid)
    out = subprocess.run(cmd + [f"http://127.0.0.1:{srv.port}{path}"], check=True,
                         capture_output=True, text=True).stdout
    ticks = cpu_ticks(srv.proc.pid) - before
    m = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or bad:
        raise SystemExit(f"wrk: {out}")
    n = int(m.group(1))
    hz = os.sysconf("SC_CLK_TCK")
    return {"requests": n, "cpu_us_per_request": round(ticks / hz * 1e6 / n, 2)}


def scenario(name, port, cookie, basic):
    """(method, path, headers, body) of one request of the scenario."""
    form = {"Content-Type": "application/x-www-form-urlencoded",
            "Authorization": f"Basic {basic}"}
    if name == "cc":
        return "POST", "/oauth2/token", form, "grant_type=client_credentials"
    if name == "introspect":
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        st, _, body = request(c, "POST", "/oauth2/token", form, "grant_type=client_credentials")
        assert st == 200, (st, body)
        token = json.loads(body)["access_token"]
        c.close()
        return "POST", "/oauth2/introspect", form, "token=" + urllib.parse.quote(token)
    if name == "me":
        return "GET", "/v1/me", {"Cookie": f"portcullis_session={cookie}"}, None
    if name == "jwks":
        return "GET", "/.well-known/jwks.json", {}, None
    if name == "readyz":
        return "GET", "/readyz", {}, None
    raise SystemExit(f"unknown scenario {name}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True)
    p.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    p.add_argument("--scenarios", default="cc,introspect,me")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--sql", action="store_true", help="count statements (sqlx log)")
    p.add_argument("--callgrind", action="store_true", help="count instructions")
    p.add_argument("--rate-limit", action="store_true", help="rate limiting on")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the server (e.g. PORTCULLIS_WEBHOOK_WORKER=false)")
    p.add_argument("--cache-sim", action="store_true", help="callgrind's cache simulation too")
    p.add_argument("--cpu", type=int, metavar="SECS",
                   help="instead of -n requests: load GET scenarios with wrk for SECS seconds "
                        "and report the server's CPU time (user + kernel) per request")
    p.add_argument("--label", default="")
    p.add_argument("--keep", help="copy the callgrind output files to this prefix")
    a = p.parse_args()
    for sc in a.scenarios.split(","):
        work = tempfile.mkdtemp(prefix="portcullis-work-")
        srv = Server(a, work)
        try:
            cookie, basic = setup(srv.port)
            method, path, headers, body = scenario(sc, srv.port, cookie, basic)
            c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=600)
            for _ in range(a.warmup):
                st, _, out = request(c, method, path, headers, body)
                assert 200 <= st < 300, (sc, st, out)
            time.sleep(0.5)
            log_before = os.path.getsize(srv.log)
            srv.callgrind(True)
            t0 = time.time()
            if a.cpu:
                cpu = cpu_per_request(srv, method, path, headers, a.cpu)
            else:
                for _ in range(a.n):
                    st, _, out = request(c, method, path, headers, body)
                    assert 200 <= st < 300, (sc, st, out)
            secs = time.time() - t0
            srv.callgrind(False)
            time.sleep(0.5)
            with open(srv.log, errors="replace") as f:
                f.seek(log_before)
                burst = f.read()
            c.close()
        finally:
            srv.stop()
        stmts = [l for l in burst.splitlines() if "sqlx::query" in l]
        kinds = {}
        for l in stmts:
            try:
                k = json.loads(l).get("summary", "?")
            except ValueError:
                m = re.search(r'summary="([^"]*)"', l)
                k = m.group(1) if m else "?"
            kinds[k] = kinds.get(k, 0) + 1
        out = {"label": a.label, "backend": a.backend, "scenario": sc, "n": a.n,
               "secs": round(secs, 2)}
        if a.cpu:
            out.update(cpu)
        if a.sql:
            out["statements_per_request"] = round(len(stmts) / a.n, 3)
            out["statements"] = dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:12])
        if a.callgrind:
            out["instructions_per_request"] = round(srv.instructions() / a.n)
            if a.keep:
                for f in glob.glob(srv.cg_out + "*"):
                    shutil.copy(f, f"{a.keep}.{a.backend}.{sc}" + f[len(srv.cg_out):])
        print(json.dumps(out), flush=True)
        if os.environ.get("WORK_KEEP_LOG"):
            shutil.copy(srv.log, os.environ["WORK_KEEP_LOG"] + f".{a.backend}.{sc}.log")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

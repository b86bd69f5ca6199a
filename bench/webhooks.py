#!/usr/bin/env python3
"""Webhook delivery benchmark, on loopback, with the verifying Node receiver
(conformance/webhook-receiver.mjs: every delivery checked by the reference
`standardwebhooks` library, so the receiver's cost is in the figures).

    python3 bench/webhooks.py                 # release build (cargo build --release first)
    PROFILE=debug BACKLOG=300 RATE=50 DURATION=3 python3 bench/webhooks.py   # smoke run

Three measurements, one server pinned to SERVER_CPU (taskset), SQLite in a temp dir:

1. deliveries/s: BACKLOG test events are queued while the worker is off
   (`webhook_worker = false`); the server is restarted with the worker on and the clock runs
   until the receiver has acknowledged all of them.
2. event-to-first-attempt latency at a steady RATE events/s for DURATION seconds: project
   renames (`PATCH /v1/project`, so each event goes through the outbox and the fan-out),
   latency = the receiver's arrival time minus the event's `timestamp`; p50/p99 of first
   attempts.
3. outbox-write cost: the `PATCH /v1/project` rate (LOAD_THREADS keep-alive clients, DURATION
   seconds) with no endpoint, then with 10 subscribed endpoints, in the same run.

Knobs (environment): PROFILE (release), BACKLOG (5000), RATE (500), DURATION (10),
LOAD_THREADS (8), SERVER_CPU (0), LOAD_CPU (1). Prints a table and writes it to
bench/results/webhooks-latest.txt. Exit 0 when the measurement completed; targets
(>= 2000 deliveries/s, p99 <= 1 s) are reported, not enforced, unless STRICT=1.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILE = os.environ.get("PROFILE", "release")
BACKLOG = int(os.environ.get("BACKLOG", "5000"))
RATE = int(os.environ.get("RATE", "500"))
DURATION = float(os.environ.get("DURATION", "10"))
LOAD_THREADS = int(os.environ.get("LOAD_THREADS", "8"))
SERVER_CPU = os.environ.get("SERVER_CPU", "0")
LOAD_CPU = os.environ.get("LOAD_CPU", "1")
STRICT = os.environ.get("STRICT") == "1"
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.path.join(TARGET, PROFILE, "portcullis")

children = []


def cleanup(*_):
    for c in children:
        if c.poll() is None:
            c.kill()
            c.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def receiver():
    p = subprocess.Popen(
        ["taskset", "-c", LOAD_CPU, "node", os.path.join(ROOT, "conformance/webhook-receiver.mjs")],
        stdout=subprocess.PIPE,
        text=True,
    )
    children.append(p)
    port = json.loads(p.stdout.readline())["port"]
    return f"http://127.0.0.1:{port}"


def serve(data_dir, worker=True):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTCULLIS_")}
    env.update(
        PORTCULLIS_LOG_LEVEL="warn",
        PORTCULLIS_WEBHOOK_WORKER="true" if worker else "false",
        PORTCULLIS_WEBHOOK_CONCURRENCY="64",
        PORTCULLIS_WEBHOOK_ENDPOINT_CONCURRENCY="64",
        # The backlog is queued with test sends and the load is a stream of project changes:
        # the per-project send budget and the route limits would cut both short.
        PORTCULLIS_WEBHOOK_SENDS_PER_MINUTE="1000000",
        PORTCULLIS_RATE_LIMIT_ENABLED="false",
    )
    p = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, BIN, "serve", "--dev", "--data-dir", data_dir,
         "--listen", f"127.0.0.1:{port}"],
        env=env,
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    children.append(p)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return p, base
        except OSError:
            time.sleep(0.05)
    raise SystemExit("portcullis did not become ready")


def stop(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()


def request(base, method, path, body=None, token=None, project=None):
    req = urllib.request.Request(base + path, method=method)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    if project:
        req.add_header("x-project-id", project)
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        cookie = r.headers.get("set-cookie")
        return (json.loads(text) if text else None), cookie


def put(url, body):
    req = urllib.request.Request(url, method="PUT", data=json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    urllib.request.urlopen(req, timeout=30).read()


def received(rx, name):
    with urllib.request.urlopen(f"{rx}/_control/{name}", timeout=60) as r:
        return json.loads(r.read())["received"]


def wait_received(rx, name, n, limit=600):
    deadline = time.time() + limit
    while time.time() < deadline:
        got = received(rx, name)
        if sum(1 for g in got if g["status"] == 204) >= n:
            return got
        time.sleep(0.05)
    raise SystemExit(f"{name}: only {len(received(rx, name))} of {n} deliveries arrived")


class Client:
    """A keep-alive connection for the load phases."""

    def __init__(self, base, token, project):
        host, port = base.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {
            "authorization": f"Bearer {token}",
            "x-project-id": project,
            "content-type": "application/json",
        }

    def call(self, method, path, body):
        self.conn.request(method, path, json.dumps(body), self.headers)
        r = self.conn.getresponse()
        r.read()
        if r.status >= 300:
            raise SystemExit(f"{method} {path} answered {r.status}")


def set_up(base, rx, names, events):
    _, cookie = request(base, "POST", "/v1/auth/signup",
                        {"email": f"bench-{time.time_ns()}@example.com", "password": "correct horse battery"})
    token = cookie.split(";")[0].split("=", 1)[1]
    me, _ = request(base, "GET", "/v1/me", token=token)
    project = me["memberships"][0]["projects"][0]["id"]
    hooks = []
    for name in names:
        h, _ = request(base, "POST", "/v1/project/webhooks",
                       {"url": f"{rx}/hooks/{name}", "events": events}, token, project)
        put(f"{rx}/_control/{name}", {"secrets": [h["secret"]]})
        hooks.append(h["id"])
    return token, project, hooks


def patch_rate(base, token, project, seconds):
    """PATCH /v1/project from LOAD_THREADS clients for `seconds`; requests per second."""
    stop_at = time.time() + seconds
    counts = [0] * LOAD_THREADS

    def run(i):
        c = Client(base, token, project)
        n = 0
        while time.time() < stop_at:
            c.call("PATCH", "/v1/project", {"name": f"bench {i} {n}"})
            n += 1
        counts[i] = n

    threads = [threading.Thread(target=run, args=(i,)) for i in range(LOAD_THREADS)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.time() - started)


def main():
    if not os.path.exists(BIN):
        raise SystemExit(f"{BIN} missing: cargo build --{PROFILE} -p portcullis" if PROFILE == "release"
                         else f"{BIN} missing: cargo build -p portcullis")
    if shutil.which("taskset") is None or shutil.which("node") is None:
        raise SystemExit("needs taskset and node (npm ci --prefix conformance)")
    rx = receiver()
    lines = [f"# webhooks benchmark ({PROFILE} build, server on CPU {SERVER_CPU}, load and receiver on CPU {LOAD_CPU})"]

    # 1. Deliveries per second from a backlog.
    data = tempfile.mkdtemp(prefix="portcullis-bench-wh-")
    try:
        server, base = serve(data, worker=False)
        token, project, hooks = set_up(base, rx, ["drain"], ["*"])
        c = Client(base, token, project)
        for _ in range(BACKLOG):
            c.call("POST", f"/v1/project/webhooks/{hooks[0]}/test", {})
        stop(server)
        started = time.time()
        server, base = serve(data, worker=True)
        wait_received(rx, "drain", BACKLOG)
        elapsed = time.time() - started
        rate = BACKLOG / elapsed
        lines.append(f"deliveries/s (backlog of {BACKLOG}, start included): {rate:,.0f}  target >= 2,000  "
                     f"{'PASS' if rate >= 2000 else 'MISS'}")

        # 2. Latency at a steady rate, through the outbox and the fan-out.
        h, _ = request(base, "POST", "/v1/project/webhooks",
                       {"url": f"{rx}/hooks/steady", "events": ["project.updated"]}, token, project)
        put(f"{rx}/_control/steady", {"secrets": [h["secret"]]})
        # The drain endpoint stops listening to renames, so only `steady` hears them.
        request(base, "DELETE", f"/v1/project/webhooks/{hooks[0]}", None, token, project)
        total = int(RATE * DURATION)
        c = Client(base, token, project)
        t0 = time.time()
        for i in range(total):
            due = t0 + i / RATE
            now = time.time()
            if due > now:
                time.sleep(due - now)
            c.call("PATCH", "/v1/project", {"name": f"steady {i}"})
        sent_rate = total / (time.time() - t0)
        got = wait_received(rx, "steady", total)
        first = {}
        for g in got:
            if g["id"] not in first and g["event_ms"] is not None:
                first[g["id"]] = g["at_ms"] - g["event_ms"]
        lat = sorted(first.values())
        p50 = statistics.median(lat)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        lines.append(f"event-to-first-attempt at {sent_rate:,.0f} events/s: p50 {p50:.0f} ms, p99 {p99:.0f} ms  "
                     f"target p99 <= 1,000 ms  {'PASS' if p99 <= 1000 else 'MISS'}")
        stop(server)
    finally:
        shutil.rmtree(data, ignore_errors=True)

    # 3. The originating request with no endpoint, then with 10 subscribed endpoints.
    data = tempfile.mkdtemp(prefix="portcullis-bench-wh-")
    try:
        server, base = serve(data, worker=True)
        token, project, _ = set_up(base, rx, [], ["*"])
        none = patch_rate(base, token, project, DURATION)
        for i in range(10):
            h, _ = request(base, "POST", "/v1/project/webhooks",
                           {"url": f"{rx}/hooks/ten{i}", "events": ["project.updated"]}, token, project)
            put(f"{rx}/_control/ten{i}", {"secrets": [h["secret"]]})
        ten = patch_rate(base, token, project, DURATION)
        lines.append(f"PATCH /v1/project req/s: no endpoint {none:,.0f}, 10 subscribed endpoints {ten:,.0f} "
                     f"({ten / none:.2f}x; the worker's fan-out and deliveries share the server's core)")
        stop(server)
    finally:
        shutil.rmtree(data, ignore_errors=True)

    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.join(ROOT, "bench/results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench/results/webhooks-latest.txt"), "w") as f:
        f.write(text)
    if STRICT and ("MISS" in text):
        sys.exit(1)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, cleanup)
    try:
        main()
    finally:
        cleanup()

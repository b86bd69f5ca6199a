#!/usr/bin/env python3
"""Start a server pinned to one core and time it from spawn to its first HTTP 200.

Used by bench/run.sh. The clock starts immediately before the fork/exec and stops when the
status line of the first 200 answer has been read, polling with raw sockets about every
millisecond (a refused connection is retried at once after a 1 ms sleep). This process
pins itself to the load-generator core first, so polling does not steal the server's core.

Prints one line: "<pid> <milliseconds>". With --keep the server is left running (the caller
owns it and must kill the pid); without it the server is stopped with SIGTERM (SIGKILL
after 5 s) before this script exits. Exit status is non-zero if the server exits or is not
ready within --timeout seconds; its output is in --log.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/readyz")
    p.add_argument("--server-cpu", type=int, required=True)
    p.add_argument("--self-cpu", type=int, required=True)
    p.add_argument("--cwd", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--keep", action="store_true")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.command and a.command[0] == "--":
        a.command = a.command[1:]
    if not a.command:
        p.error("missing the server command after --")
    return a


def status_of(port, request):
    """The HTTP status of one request, or None if the server does not answer yet."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=1.0)
    except OSError:
        return None
    try:
        s.settimeout(1.0)
        s.sendall(request)
        data = b""
        while b"\r\n" not in data and len(data) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        parts = data.split(b" ", 2)
        if len(parts) >= 2 and parts[0].startswith(b"HTTP/"):
            return int(parts[1])
        return None
    except (OSError, ValueError):
        return None
    finally:
        s.close()


def stop(proc):
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def main():
    a = parse_args()
    os.sched_setaffinity(0, {a.self_cpu})
    request = (
        f"GET {a.path} HTTP/1.1\r\nHost: 127.0.0.1:{a.port}\r\nConnection: close\r\n\r\n"
    ).encode()
    cpu = a.server_cpu
    log = open(a.log, "ab")

    t0 = time.perf_counter_ns()
    proc = subprocess.Popen(
        a.command,
        cwd=a.cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    deadline = t0 + int(a.timeout * 1e9)
    ready_ns = None
    while time.perf_counter_ns() < deadline:
        if proc.poll() is not None:
            print(f"server exited with status {proc.returncode} before it was ready; see {a.log}",
                  file=sys.stderr)
            return 1
        if status_of(a.port, request) == 200:
            ready_ns = time.perf_counter_ns() - t0
            break
        time.sleep(0.001)
    if ready_ns is None:
        stop(proc)
        print(f"server not ready within {a.timeout} s; see {a.log}", file=sys.stderr)
        return 1
    print(f"{proc.pid} {ready_ns / 1e6:.2f}", flush=True)
    if not a.keep:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Helpers of bench/oidc.sh that wrk cannot do: minting refresh tokens through the code
flow, the kill -9 test of refresh rotation, and the report.

  helper.py mint   --url U --client-id ID --auth 'Basic …' --cookie TOKEN --n N --out FILE
  helper.py crash  --url U --auth 'Basic …' --pool FILE --pid PID --seconds S --state OUT
  helper.py verify --url U --auth 'Basic …' --state FILE --grace SECS
  helper.py report ROUNDS_FILE KILL_FILE …   (see bench/oidc.sh)

Everything speaks HTTP/1.1 with keep-alive over raw asyncio streams to 127.0.0.1 (no
third-party packages); the caller pins this process to the load-generator core.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sys
import time
import urllib.parse

REDIRECT_URI = "https://rp.example.com/callback"
SCOPE = "openid offline_access"


class HttpError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        if u.hostname != "127.0.0.1":
            raise SystemExit(f"refusing a non-loopback URL: {url}")
        self.host, self.port = u.hostname, u.port
        self.r = self.w = None

    async def open(self):
        self.r, self.w = await asyncio.open_connection(self.host, self.port)

    def close(self):
        if self.w is not None:
            self.w.close()
            self.w = None

    async def request(self, method, path, headers=None, body=b""):
        if self.w is None:
            await self.open()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body or method == "POST":
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.w.write(head + body)
        await self.w.drain()
        status_line = await self.r.readline()
        if not status_line:
            raise HttpError("connection closed")
        parts = status_line.split(b" ", 2)
        status = int(parts[1])
        hdrs = {}
        while True:
            line = await self.r.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await self.r.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.r.readline()
                    break
                data += await self.r.readexactly(size)
                await self.r.readexactly(2)
        else:
            data = await self.r.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, data


def form(**kv):
    return urllib.parse.urlencode(kv).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


# --- mint ---------------------------------------------------------------------------------


async def mint_one(conn, a):
    q = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": a.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": "bench",
        }
    )
    st, h, body = await conn.request(
        "GET", f"/oauth2/authorize?{q}", {"Cookie": f"portcullis_session={a.cookie}"}
    )
    if st != 303 or "location" not in h:
        raise HttpError(f"authorize answered {st}: {body[:300]!r}")
    params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(h["location"]).query))
    if "code" not in params:
        raise HttpError(f"authorize redirected without a code: {h['location']}")
    st, _, body = await conn.request(
        "POST",
        "/oauth2/token",
        {**FORM, "Authorization": a.auth},
        form(grant_type="authorization_code", code=params["code"], redirect_uri=REDIRECT_URI),
    )
    if st != 200:
        raise HttpError(f"code exchange answered {st}: {body[:300]!r}")
    doc = json.loads(body)
    for k in ("access_token", "id_token", "refresh_token"):
        if k not in doc:
            raise HttpError(f"code exchange without {k}: {doc}")
    return doc["refresh_token"]


async def mint(a):
    todo = list(range(a.n))
    out = []

    async def worker():
        conn = Conn(a.url)
        try:
            while todo:
                todo.pop()
                out.append(await mint_one(conn, a))
        finally:
            conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(a.concurrency, a.n))))
    dt = time.perf_counter() - t0
    if len(set(out)) != a.n:
        raise SystemExit(f"minted {len(set(out))} distinct refresh tokens, wanted {a.n}")
    with open(a.out, "w") as f:
        f.write("".join(t + "\n" for t in out))
    print(f"minted {a.n} refresh tokens (code flows) in {dt:.1f} s, {a.n / dt:.0f}/s", file=sys.stderr)


# --- crash: refresh load, kill -9 in the middle of it -------------------------------------


async def crash(a):
    """Each chain is one refresh family: its current token is presented, and the successor
    from a 200 becomes its next token. At `seconds` the server gets SIGKILL while requests
    are in flight. Recorded per chain: the last token whose rotation was acknowledged (a
    200 was read, whenever it arrived), the successor that 200 carried, and whether a
    presentation of that successor was unanswered at the kill (then the server may or may
    not have rotated it: excluded from the successor check)."""
    tokens = [t.strip() for t in open(a.pool) if t.strip()]
    if len(tokens) < a.concurrency:
        raise SystemExit(f"only {len(tokens)} refresh tokens for {a.concurrency} connections")
    chains = [{"latest": t, "rotated": None, "in_flight": False, "acks": 0} for t in tokens]
    queue = list(range(len(chains)))  # FIFO of chains whose latest token is unpresented
    head = 0
    killed_at = None
    stats = {"acks": 0, "errors_after_kill": 0, "late_acks": 0}

    async def worker():
        nonlocal head
        conn = Conn(a.url)
        try:
            while killed_at is None:
                if head >= len(queue):
                    await asyncio.sleep(0.001)
                    continue
                i = queue[head]
                head += 1
                c = chains[i]
                c["in_flight"] = True
                try:
                    st, _, body = await conn.request(
                        "POST",
                        "/oauth2/token",
                        {**FORM, "Authorization": a.auth},
                        form(grant_type="refresh_token", refresh_token=c["latest"]),
                    )
                except (OSError, HttpError, asyncio.IncompleteReadError, ValueError, IndexError):
                    if killed_at is None:
                        raise
                    stats["errors_after_kill"] += 1
                    return
                if st != 200:
                    raise SystemExit(f"refresh answered {st} before the kill: {body[:300]!r}")
                doc = json.loads(body)
                c["rotated"], c["latest"], c["in_flight"] = c["latest"], doc["refresh_token"], False
                c["acks"] += 1
                stats["acks"] += 1
                if killed_at is not None:
                    stats["late_acks"] += 1
                queue.append(i)
        finally:
            conn.close()

    async def killer():
        nonlocal killed_at
        await asyncio.sleep(a.seconds)
        killed_at = time.time()
        os.kill(a.pid, signal.SIGKILL)

    t0 = time.perf_counter()
    await asyncio.gather(killer(), *(worker() for _ in range(a.concurrency)))
    dt = time.perf_counter() - t0
    state = {
        "killed_at": killed_at,
        "acks": stats["acks"],
        "late_acks": stats["late_acks"],
        "unanswered": sum(1 for c in chains if c["in_flight"]),
        "seconds": dt,
        "chains": chains,
    }
    with open(a.state, "w") as f:
        json.dump(state, f)
    print(
        f"crash run: {stats['acks']} rotations acknowledged in {dt:.1f} s, then SIGKILL with "
        f"{state['unanswered']} requests unanswered",
        file=sys.stderr,
    )


async def verify(a):
    st = json.load(open(a.state))
    chains = st["chains"]
    live = [c for c in chains if not c["in_flight"]]
    rotated = [c for c in chains if c["rotated"] is not None]
    if a.sample:
        random.seed(1)
        live = random.sample(live, min(a.sample, len(live)))
        rotated = random.sample(rotated, min(a.sample, len(rotated)))
    failures = []

    async def run(items, check, conc=16):
        items = list(items)

        async def worker():
            conn = Conn(a.url)
            try:
                while items:
                    await check(conn, items.pop())
            finally:
                conn.close()

        await asyncio.gather(*(worker() for _ in range(conc)))

    ok_live = 0

    async def check_live(conn, c):
        nonlocal ok_live
        s, _, body = await conn.request(
            "POST", "/oauth2/token", {**FORM, "Authorization": a.auth},
            form(grant_type="refresh_token", refresh_token=c["latest"]),
        )
        doc = json.loads(body) if body else {}
        if s == 200 and doc.get("refresh_token", "").startswith("rt_"):
            ok_live += 1
        else:
            failures.append(f"acknowledged successor refused after restart: {s} {body[:200]!r}")

    await run(live, check_live)

    # A rotated token presented again within the grace window gets the same successor
    # (the concurrent-retry rule); after it, it is refused. Wait out the window, counted
    # from the kill (every acknowledged rotation happened before it).
    wait = st["killed_at"] + a.grace + 1.0 - time.time()
    if wait > 0:
        await asyncio.sleep(wait)
    refused = reused = 0

    async def check_rotated(conn, c):
        nonlocal refused, reused
        s, _, body = await conn.request(
            "POST", "/oauth2/token", {**FORM, "Authorization": a.auth},
            form(grant_type="refresh_token", refresh_token=c["rotated"]),
        )
        doc = json.loads(body) if body else {}
        if s == 400 and doc.get("error") == "invalid_grant":
            refused += 1
            reused += doc.get("code") == "refresh_token_reused"
        else:
            failures.append(f"rotated token accepted after restart: {s} {body[:200]!r}")

    await run(rotated, check_rotated)
    ok = not failures and ok_live == len(live) and refused == len(rotated) and live and rotated
    line = (
        f"kill -9 during refresh load on SQLite: {st['acks']} rotations acknowledged in "
        f"{st['seconds']:.1f} s ({st['late_acks']} read after the kill), {st['unanswered']} "
        f"unanswered at the kill; after restart: acknowledged successors still valid "
        f"{ok_live}/{len(live)}, rotated tokens refused with invalid_grant {refused}/{len(rotated)} "
        f"({reused} as refresh_token_reused): {'PASS' if ok else 'FAIL'}"
    )
    print(line)
    for f in failures[:5]:
        print("  " + f, file=sys.stderr)
    return 0 if ok else 1


# --- report -------------------------------------------------------------------------------

SCENARIOS = [
    ("cc", "client_credentials grant"),
    ("introspect", "introspection (JWT)"),
    ("jwks", "JWKS GET"),
    ("refresh", "refresh rotation"),
]


def report(a):
    # rounds file: backend round clean scenario rps p50 p99 requests busy% foreign% db% max
    #                                   (the same eight for the hello run after it)
    rows = []
    for line in open(a.rounds):
        f = line.split()
        if not f:
            continue
        rows.append(
            {
                "backend": f[0], "round": int(f[1]), "clean": f[2] == "1", "scenario": f[3],
                "p": [float(x) for x in f[4:12]], "h": [float(x) for x in f[12:20]],
            }
        )
    med = statistics.median
    targets = {
        "cc": (a.t_cc, a.t_ratio),
        "introspect": (a.t_introspect, a.t_ratio),
        "refresh": (a.t_refresh, None),
    }
    out = []
    w = out.append
    w("Portcullis OpenID Connect load benchmark (bench/oidc.sh)")
    w(f"  {a.machine}")
    w(f"  {a.method}")
    w("")
    w(f"  {'backend':9}{'scenario':27}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'srv CPU':>8}"
      f"{'other':>7}{'db CPU':>7}{'req/CPU-s':>10}{'hello':>9}{'ratio':>7}")
    checks = []
    backends = []
    for r in rows:
        if r["backend"] not in backends:
            backends.append(r["backend"])
    for b in backends:
        for key, name in SCENARIOS:
            rs = [r for r in rows if r["backend"] == b and r["scenario"] == key]
            if not rs:
                continue
            used = [r for r in rs if r["clean"]] or rs
            p = lambda i: med(r["p"][i] for r in used)
            hr = med(r["h"][0] for r in used)
            ratio = med(r["p"][0] / r["h"][0] for r in used)
            per_cpu = med(r["p"][0] / max(r["p"][4], 1.0) * 100 for r in used)
            flag = "" if any(r["clean"] for r in rs) else " (DISTURBED)"
            db = f"{p(6):>6.0f}%" if b == "postgres" else f"{'-':>7}"
            mx = max(r["p"][7] for r in used)
            w(f"  {b:9}{name:27}{p(0):>8.0f}{p(1):>8.2f}{p(2):>8.2f}{mx:>8.0f}{p(4):>7.0f}%{p(5):>6.0f}%"
              f"{db}{per_cpu:>10.0f}{hr:>9.0f}{ratio:>7.3f}{flag}")
            if key in targets:
                t_abs, t_ratio = targets[key]
                checks.append((f"{b} {name} req/s", f"{p(0):,.0f}", f">= {t_abs:,.0f}", p(0) >= t_abs))
                if t_ratio is not None:
                    checks.append((f"{b} {name} / hello", f"{ratio:.3f}", f">= {t_ratio:.2f}",
                                   ratio >= t_ratio))
        w("")
    kill = open(a.kill).read().strip() if a.kill and os.path.exists(a.kill) else ""
    if kill:
        checks.append(("sqlite refresh survives kill -9", "see below", "no loss", kill.endswith("PASS")))
    w("  srv CPU: the server's own share of its core; other: anything else on that core; db CPU:")
    w("  all postgres processes together, in % of one CPU (they run unpinned on both cores);")
    w("  req/CPU-s: requests per second of server CPU; ratio: req/s / hello req/s of the same round;")
    w("  medians over the rounds used, except max ms: the slowest answer in any of them")
    w("")
    w(f"  {'check':44}{'measured':>10}{'target':>12}  verdict")
    for name, value, target, ok in checks:
        w(f"  {name:44}{value:>10}{target:>12}  {'PASS' if ok else 'FAIL'}")
    w("")
    if kill:
        w("  " + kill)
        w("")
    w("  rounds: backend round scenario req/s (server core busy with it, + others[, postgres]) | hello req/s (busy) ratio")
    for r in rows:
        db = f", db {r['p'][6]:.0f}%" if r["backend"] == "postgres" else ""
        w(f"    {r['backend']:8} {r['round']:>2} {r['scenario']:10} {r['p'][0]:>8.0f} ({r['p'][4]:>3.0f}% +{r['p'][5]:.0f}%{db})"
          f" | {r['h'][0]:>8.0f} ({r['h'][4]:>3.0f}%) {r['p'][0] / r['h'][0]:.3f}"
          f"{'' if r['clean'] else '  (disturbed' + (', not used)' if any(x['clean'] for x in rows if x['backend'] == r['backend'] and x['scenario'] == r['scenario']) else ')')}")
    loadavg = " ".join(open("/proc/loadavg").read().split()[:3])
    w(f"  load average at the end {loadavg}; {a.notes}")
    w("  absolute req/s are machine-dependent; read the ratios to hello measured in the same run")
    print("\n".join(out))
    return 0 if all(ok for *_, ok in checks) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mint")
    m.add_argument("--url", required=True)
    m.add_argument("--client-id", required=True)
    m.add_argument("--auth", required=True)
    m.add_argument("--cookie", required=True)
    m.add_argument("--n", type=int, required=True)
    m.add_argument("--concurrency", type=int, default=16)
    m.add_argument("--out", required=True)
    c = sub.add_parser("crash")
    c.add_argument("--url", required=True)
    c.add_argument("--auth", required=True)
    c.add_argument("--pool", required=True)
    c.add_argument("--pid", type=int, required=True)
    c.add_argument("--seconds", type=float, default=3.0)
    c.add_argument("--concurrency", type=int, default=32)
    c.add_argument("--state", required=True)
    v = sub.add_parser("verify")
    v.add_argument("--url", required=True)
    v.add_argument("--auth", required=True)
    v.add_argument("--state", required=True)
    v.add_argument("--grace", type=float, required=True)
    v.add_argument("--sample", type=int, default=0, help="check at most this many (0: all)")
    r = sub.add_parser("report")
    r.add_argument("rounds")
    r.add_argument("--kill", default="")
    r.add_argument("--machine", default="")
    r.add_argument("--method", default="")
    r.add_argument("--notes", default="")
    r.add_argument("--t-cc", type=float, required=True)
    r.add_argument("--t-introspect", type=float, required=True)
    r.add_argument("--t-refresh", type=float, required=True)
    r.add_argument("--t-ratio", type=float, required=True)
    a = p.parse_args()
    if a.cmd == "mint":
        asyncio.run(mint(a))
        return 0
    if a.cmd == "crash":
        asyncio.run(crash(a))
        return 0
    if a.cmd == "verify":
        return asyncio.run(verify(a))
    return report(a)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Load benchmark of Portcullis against a bare axum "hello" baseline, in one run, on loopback.
#
#   bash bench/run.sh
#
# What it does (see bench/README.md for why):
#   1. installs wrk from Debian if missing; builds the release binaries;
#   2. times spawn -> first `GET /readyz` = 200 over STARTS fresh starts, each on a new temp
#      SQLite data dir (median; the hello server's spawn -> first 200 is timed alongside);
#   3. starts portcullis pinned to SERVER_CPU, signs a user up with curl, reads the idle RSS;
#   4. runs wrk pinned to LOAD_CPU against `GET /v1/me` with the session cookie, then against
#      the hello server (also pinned to SERVER_CPU), alternating, until ROUNDS rounds were
#      server-bound, i.e. undisturbed by other load (at most 3 x ROUNDS attempts);
#   5. the storage path behind the session cache: GET /v1/me with session_cache_ttl_ms = 0
#      on SQLite and on PostgreSQL (a fresh database), alternating with hello the same way
#      (STORAGE="sqlite postgres" by default; STORAGE="" skips it);
#   6. prints requests/s of each, the ratio portcullis/hello, p50/p99 latency, idle RSS and
#      start-to-ready, with PASS/FAIL against the targets, and writes the same to
#      bench/results/latest.txt.
#
# Knobs (environment): DURATION (s, default 10), WARMUP (s, 2), CONNECTIONS (32), ROUNDS (3),
# STARTS (5), SERVER_CPU (0), LOAD_CPU (1), NOISE_MAX (a round is repeated when a server
# kept its core less than 100 - NOISE_MAX % busy, default 10),
# STORAGE ("sqlite postgres"), LIMITS ("memory always redis": GET /v1/me with rate limiting on, in
# memory; in memory with rate_limit_headers = "always" (RateLimit-* on every answer, not only
# near the limit); shared through Redis at REDIS_URL, default redis://127.0.0.1:6379), PG_URL (postgres://postgres@127.0.0.1:5432: a superuser on
# loopback; a fresh database is made and dropped), SKIP_BUILD=1 (use existing binaries), STRICT=1 (exit 1 when a target is missed; by
# default only a broken measurement fails).
#
# The machine may be shared: every wrk run also records how busy the server's core was with
# the server itself and with anything else (from /proc/stat and /proc/PID/stat), disturbed
# rounds are repeated, and requests per server CPU-second are reported next to requests
# per second as a cross-check that is less sensitive to contention.
#
# Exit status: 0 when the measurement completed (whatever the verdicts, unless STRICT=1);
# non-zero when something is broken: a build, a start, the signup, a non-2xx answer under
# load, a socket error.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
cd "$ROOT"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
STARTS=${STARTS:-5}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NOISE_MAX=${NOISE_MAX:-10}
SKIP_BUILD=${SKIP_BUILD:-0}
STRICT=${STRICT:-0}
STORAGE=${STORAGE-sqlite postgres}
LIMITS=${LIMITS-memory always redis}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}

for b in $STORAGE; do
    [[ $b == sqlite || $b == postgres ]] || {
        echo "error: STORAGE: unknown backend '$b' (sqlite, postgres)" >&2
        exit 2
    }
done
[[ $PG_URL =~ ^postgres://[^/@]+@127\.0\.0\.1(:[0-9]+)?$ ]] || {
    echo "error: PG_URL must be postgres://USER@127.0.0.1[:PORT] (no database, loopback only)" >&2
    exit 2
}

# Targets (bench/README.md).
TARGET_RATIO=0.50
TARGET_RSS_MB=20
TARGET_READY_MS=100

for n in DURATION WARMUP CONNECTIONS ROUNDS STARTS SERVER_CPU LOAD_CPU NOISE_MAX; do
    if ! [[ ${!n} =~ ^[0-9]+$ ]]; then
        echo "error: $n must be a non-negative integer (got '${!n}')" >&2
        exit 2
    fi
done
if ((DURATION < 1 || CONNECTIONS < 1 || ROUNDS < 1 || STARTS < 1)); then
    echo "error: DURATION, CONNECTIONS, ROUNDS and STARTS must be at least 1" >&2
    exit 2
fi
if ((ROUNDS > 20 || STARTS > 50 || DURATION > 600)); then
    echo "error: ROUNDS <= 20, STARTS <= 50, DURATION <= 600 keep a run bounded" >&2
    exit 2
fi

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
clear_portcullis_env
require_tools taskset curl python3 cargo
build_release

# --- processes and temp dirs: everything is removed on exit -----------------------------

WORK=$(mktemp -d -t portcullis-bench.XXXXXX)
PIDS=()

stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

PG_DB=
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    if [[ -n $PG_DB ]]; then
        psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
            echo "warning: could not drop database $PG_DB" >&2
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_timed NAME PATH KEEP -- COMMAND... : prints "<pid> <ms>"; the server runs in a fresh
# temp dir (its cwd), pinned to SERVER_CPU. {PORT} and {DIR} in COMMAND are substituted.
LAST_PORT=
start_timed() {
    local name=$1 path=$2 keep=$3
    shift 4
    local dir port out
    dir=$(mktemp -d -p "$WORK" "$name.XXXXXX")
    port=$(free_port)
    local cmd=()
    local arg
    for arg in "$@"; do
        arg=${arg//\{PORT\}/$port}
        cmd+=("${arg//\{DIR\}/$dir}")
    done
    local keep_flag=()
    [[ $keep == keep ]] && keep_flag=(--keep)
    out=$(python3 "$BENCH/start.py" --port "$port" --path "$path" \
        --server-cpu "$SERVER_CPU" --self-cpu "$LOAD_CPU" \
        --cwd "$dir" --log "$dir/server.log" "${keep_flag[@]}" -- "${cmd[@]}") || {
        echo "--- $dir/server.log" >&2
        tail -n 20 "$dir/server.log" >&2 || true
        die "$name did not start"
    }
    LAST_PORT=$port
    echo "$out"
}

export PORTCULLIS_LOG_LEVEL=warn
# The baseline runs without rate limits (a load generator on one address would be limited);
# section 5b measures the limiter on the same route, in memory and through Redis.
export PORTCULLIS_RATE_LIMIT_ENABLED=false
PORTCULLIS_CMD=("$PORTCULLIS" serve --data-dir "{DIR}/data" --listen "127.0.0.1:{PORT}")
HELLO_CMD=("$HELLO" "127.0.0.1:{PORT}")

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# --- 1. start-to-ready --------------------------------------------------------------------

READY_MS=()
HELLO_READY_MS=()
for ((i = 1; i <= STARTS; i++)); do
    out=$(start_timed portcullis /readyz stop -- "${PORTCULLIS_CMD[@]}")
    READY_MS+=("${out##* }")
    out=$(start_timed hello / stop -- "${HELLO_CMD[@]}")
    ms=${out##* }
    HELLO_READY_MS+=("$ms")
    log "start $i/$STARTS: portcullis ready in ${READY_MS[-1]} ms, hello in $ms ms"
done

# --- 2. portcullis: start, sign up, idle RSS ----------------------------------------------

start_timed portcullis /readyz keep -- "${PORTCULLIS_CMD[@]}" >"$WORK/p.start"
read -r P_PID _ <"$WORK/p.start"
PIDS+=("$P_PID")
P_PORT=$LAST_PORT
P_URL="http://127.0.0.1:$P_PORT"
sleep 0.5
RSS_STARTED_KB=$(rss_kb "$P_PID")

log "signing up a user"
code=$(curl -sS -m 30 -o "$WORK/signup.json" -D "$WORK/signup.headers" -w '%{http_code}' \
    -H 'Content-Type: application/json' \
    --data '{"email":"bench@example.com","password":"correct horse battery staple"}' \
    "$P_URL/v1/auth/signup")
[[ $code == 201 ]] || die "signup answered $code: $(cat "$WORK/signup.json")"
TOKEN=$(sed -n 's/^[Ss]et-[Cc]ookie: portcullis_session=\([^;]*\);.*/\1/p' "$WORK/signup.headers" | tr -d '\r' | head -n 1)
[[ -n $TOKEN ]] || die "no portcullis_session cookie in the signup answer"
COOKIE="Cookie: portcullis_session=$TOKEN"

code=$(curl -sS -m 10 -o "$WORK/me.json" -w '%{http_code}' -H "$COOKIE" "$P_URL/v1/me")
[[ $code == 200 ]] || die "GET /v1/me answered $code: $(cat "$WORK/me.json")"
ME_BYTES=$(wc -c <"$WORK/me.json")
sleep 1
RSS_IDLE_KB=$(rss_kb "$P_PID")

# --- 3. hello ---------------------------------------------------------------------------

start_timed hello / keep -- "${HELLO_CMD[@]}" >"$WORK/h.start"
read -r H_PID _ <"$WORK/h.start"
PIDS+=("$H_PID")
H_URL="http://127.0.0.1:$LAST_PORT/"
code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$H_URL")
[[ $code == 200 ]] || die "hello answered $code"
sleep 0.5
H_RSS_KB=$(rss_kb "$H_PID")

# --- 4. load ----------------------------------------------------------------------------

# cpu_ticks PID: "<ticks of the server core: busy> <all> <ticks of PID: user+system>".
# Busy counts user, nice, system, irq, softirq and steal (another VM ran on our CPU).
cpu_ticks() {
    local core proc
    core=$(awk -v c="cpu$SERVER_CPU" '$1 == c {
        busy = $2 + $3 + $4 + $7 + $8 + $9; all = busy + $5 + $6; print busy, all }' /proc/stat)
    proc=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')
    echo "$core $proc"
}

# run_wrk OUT SECONDS PID URL [HEADER]: one wrk run pinned to LOAD_CPU against the server PID;
# fails on any non-2xx answer or socket error. Prints
# "rps p50_ms p99_ms requests server_busy_% foreign_%".
run_wrk() {
    local out=$1 secs=$2 pid=$3 url=$4
    shift 4
    local hdr=()
    (($# > 0)) && hdr=(-H "$1")
    local before after
    before=$(cpu_ticks "$pid")
    timeout $((secs + 30)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --latency "${hdr[@]}" "$url" >"$out" 2>&1 ||
        die "wrk failed: $(cat "$out")"
    after=$(cpu_ticks "$pid")
    awk -v out="$out" -v before="$before" -v after="$after" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
            if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
            return v + 0
        }
        /^ +50% / { p50 = ms($2) }
        /^ +99% / { p99 = ms($2) }
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
        END {
            if (bad + 0 > 0) { print "non-2xx answers under load: " bad " (see " out ")" > "/dev/stderr"; exit 3 }
            if (errs + 0 > 0) { print "socket errors under load: " errs " (see " out ")" > "/dev/stderr"; exit 3 }
            if (rps == "" || n + 0 == 0) { print "cannot read wrk output " out > "/dev/stderr"; exit 3 }
            split(before, b, " "); split(after, a, " ")
            all = a[2] - b[2]; if (all <= 0) all = 1
            busy = (a[3] - b[3]) / all * 100
            foreign = ((a[1] - b[1]) - (a[3] - b[3])) / all * 100
            if (foreign < 0) foreign = 0
            printf "%s %.3f %.3f %s %.1f %.1f\n", rps, p50, p99, n, busy, foreign
        }' "$out" || die "invalid measurement; wrk said: $(cat "$out")"
}

if ((WARMUP > 0)); then
    log "warming up (${WARMUP}s each)"
    run_wrk "$WORK/warm.p" "$WARMUP" "$P_PID" "$P_URL/v1/me" "$COOKIE" >/dev/null
    run_wrk "$WORK/warm.h" "$WARMUP" "$H_PID" "$H_URL" >/dev/null
fi

# Rounds: portcullis then hello, back to back. A round counts as clean when in both runs the
# server itself kept its core at least (100 - NOISE_MAX) % busy: the measurement was
# server-bound. Less means another process took the server's core, or starved wrk on the
# other one. The loop stops after ROUNDS clean rounds or 3 x ROUNDS attempts.
: >"$WORK/rounds"
clean=0
for ((r = 1; r <= 3 * ROUNDS && clean < ROUNDS; r++)); do
    log "round $r: wrk -t1 -c$CONNECTIONS -d${DURATION}s GET /v1/me, then GET / (hello)"
    p=$(run_wrk "$WORK/wrk.p.$r" "$DURATION" "$P_PID" "$P_URL/v1/me" "$COOKIE")
    h=$(run_wrk "$WORK/wrk.h.$r" "$DURATION" "$H_PID" "$H_URL")
    read -r p_rps _ _ _ p_busy p_foreign <<<"$p"
    read -r h_rps _ _ _ h_busy h_foreign <<<"$h"
    ok=1
    awk -v a="$p_busy" -v b="$h_busy" -v m="$NOISE_MAX" 'BEGIN { exit !(a < 100 - m || b < 100 - m) }' && ok=0
    ((ok)) && clean=$((clean + 1))
    echo "$r $ok $p $h" >>"$WORK/rounds"
    log "round $r: portcullis $p_rps req/s (its core: ${p_busy}% portcullis, ${p_foreign}% other)," \
        "hello $h_rps req/s (${h_busy}% hello, ${h_foreign}% other)$( ((ok)) || echo '; disturbed, repeated')"
done
RSS_AFTER_KB=$(rss_kb "$P_PID")

# --- 5. the storage path: no session cache, SQLite and PostgreSQL -----------------------

# Every request reads the session (and the /v1/me body) from the database: what a unit of
# work or a store change costs on reads shows here, not in the cached figure above.
: >"$WORK/storage"
for backend in $STORAGE; do
    env_cmd=(env PORTCULLIS_SESSION_CACHE_TTL_MS=0)
    if [[ $backend == postgres ]]; then
        command -v psql >/dev/null || die "psql is required for STORAGE=postgres (or STORAGE=sqlite)"
        PG_DB="portcullis_run_bench_$$_$RANDOM"
        psql -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null ||
            die "cannot create a database at $PG_URL"
        env_cmd+=(PORTCULLIS_DATABASE_URL="$PG_URL/$PG_DB"
            PORTCULLIS_MASTER_KEY="$(head -c 32 /dev/urandom | base64 -w0)")
    fi
    start_timed "nocache-$backend" /readyz keep -- "${env_cmd[@]}" "${PORTCULLIS_CMD[@]}" >"$WORK/s.start"
    read -r S_PID _ <"$WORK/s.start"
    PIDS+=("$S_PID")
    S_URL="http://127.0.0.1:$LAST_PORT"
    code=$(curl -sS -m 30 -o "$WORK/s.signup.json" -D "$WORK/s.signup.headers" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        --data '{"email":"bench@example.com","password":"correct horse battery staple"}' \
        "$S_URL/v1/auth/signup")
    [[ $code == 201 ]] || die "$backend signup answered $code: $(cat "$WORK/s.signup.json")"
    S_TOKEN=$(sed -n 's/^[Ss]et-[Cc]ookie: portcullis_session=\([^;]*\);.*/\1/p' "$WORK/s.signup.headers" | tr -d '\r' | head -n 1)
    S_COOKIE="Cookie: portcullis_session=$S_TOKEN"
    ((WARMUP > 0)) && run_wrk "$WORK/warm.s" "$WARMUP" "$S_PID" "$S_URL/v1/me" "$S_COOKIE" >/dev/null
    clean=0
    for ((r = 1; r <= 3 * ROUNDS && clean < ROUNDS; r++)); do
        p=$(run_wrk "$WORK/wrk.s.$backend.$r" "$DURATION" "$S_PID" "$S_URL/v1/me" "$S_COOKIE")
        h=$(run_wrk "$WORK/wrk.sh.$backend.$r" "$DURATION" "$H_PID" "$H_URL")
        read -r p_rps _ _ _ p_busy p_foreign <<<"$p"
        read -r h_rps _ _ _ h_busy _ <<<"$h"
        # PostgreSQL runs on the same two cores, so the server cannot keep its core busy:
        # only hello's run decides whether a round was disturbed.
        ok=1
        if [[ $backend == sqlite ]]; then
            awk -v a="$p_busy" -v b="$h_busy" -v m="$NOISE_MAX" 'BEGIN { exit !(a < 100 - m || b < 100 - m) }' && ok=0
        else
            awk -v b="$h_busy" -v m="$NOISE_MAX" 'BEGIN { exit !(b < 100 - m) }' && ok=0
        fi
        ((ok)) && clean=$((clean + 1))
        echo "$backend $r $ok $p $h" >>"$WORK/storage"
        log "$backend, no session cache, round $r: $p_rps req/s (its core ${p_busy}%), hello $h_rps req/s$( ((ok)) || echo '; disturbed, repeated')"
    done
    stop_pid "$S_PID"
    if [[ $backend == postgres ]]; then
        psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
        PG_DB=
    fi
done

# --- 5b. rate limiting on: in memory, and shared through Redis ---------------------------

# The management quota is set out of reach so every request pays for the check and none is
# refused (wrk treats a 429 as a broken measurement); the ratio to hello is compared with
# the baseline's. So far from its limit, a client's answers carry no RateLimit-* headers by
# default (rate_limit_headers = "near_limit"); `always` measures them on every answer.
: >"$WORK/limits"
for mode in $LIMITS; do
    [[ $mode == memory || $mode == always || $mode == redis ]] ||
        die "LIMITS takes memory, always and redis, not $mode"
    # public_config's limit of 1 proves below that the limiter is on in this server.
    env_cmd=(env PORTCULLIS_RATE_LIMIT_ENABLED=true PORTCULLIS_RATE_LIMITS__MANAGEMENT__LIMIT=1000000000
        PORTCULLIS_RATE_LIMITS__PUBLIC_CONFIG__LIMIT=1)
    if [[ $mode == redis ]]; then
        env_cmd+=(PORTCULLIS_REDIS_URL="$REDIS_URL" PORTCULLIS_REDIS_KEY_PREFIX="bench-$$-$RANDOM")
    fi
    if [[ $mode == always ]]; then
        env_cmd+=(PORTCULLIS_RATE_LIMIT_HEADERS=always)
    fi
    start_timed "limits-$mode" /readyz keep -- "${env_cmd[@]}" "${PORTCULLIS_CMD[@]}" >"$WORK/l.start"
    read -r L_PID _ <"$WORK/l.start"
    PIDS+=("$L_PID")
    L_URL="http://127.0.0.1:$LAST_PORT"
    code=$(curl -sS -m 30 -o "$WORK/l.signup.json" -D "$WORK/l.signup.headers" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        --data '{"email":"bench@example.com","password":"correct horse battery staple"}' \
        "$L_URL/v1/auth/signup")
    [[ $code == 201 ]] || die "limits-$mode signup answered $code: $(cat "$WORK/l.signup.json")"
    L_TOKEN=$(sed -n 's/^[Ss]et-[Cc]ookie: portcullis_session=\([^;]*\);.*/\1/p' "$WORK/l.signup.headers" | tr -d '\r' | head -n 1)
    L_COOKIE="Cookie: portcullis_session=$L_TOKEN"
    for want in 404 429; do
        code=$(curl -sS -m 10 -o /dev/null -w '%{http_code}' "$L_URL/v1/public/config?publishable_key=pk_live_bench")
        [[ $code == "$want" ]] || die "limits-$mode: rate limiting is not on (public config answered $code, not $want)"
    done
    if [[ $mode == always ]]; then
        curl -sS -m 10 -D - -o /dev/null -H "$L_COOKIE" "$L_URL/v1/me" | grep -qi '^ratelimit-limit' ||
            die "limits-$mode: GET /v1/me carries no RateLimit-Limit header"
    fi
    ((WARMUP > 0)) && run_wrk "$WORK/warm.l" "$WARMUP" "$L_PID" "$L_URL/v1/me" "$L_COOKIE" >/dev/null
    clean=0
    for ((r = 1; r <= 3 * ROUNDS && clean < ROUNDS; r++)); do
        p=$(run_wrk "$WORK/wrk.l.$mode.$r" "$DURATION" "$L_PID" "$L_URL/v1/me" "$L_COOKIE")
        h=$(run_wrk "$WORK/wrk.lh.$mode.$r" "$DURATION" "$H_PID" "$H_URL")
        read -r p_rps _ _ _ p_busy _ <<<"$p"
        read -r h_rps _ _ _ h_busy _ <<<"$h"
        ok=1
        # Redis shares the two cores: as for PostgreSQL, only hello's run decides.
        if [[ $mode != redis ]]; then
            awk -v a="$p_busy" -v b="$h_busy" -v m="$NOISE_MAX" 'BEGIN { exit !(a < 100 - m || b < 100 - m) }' && ok=0
        else
            awk -v b="$h_busy" -v m="$NOISE_MAX" 'BEGIN { exit !(b < 100 - m) }' && ok=0
        fi
        ((ok)) && clean=$((clean + 1))
        echo "$mode $r $ok $p $h" >>"$WORK/limits"
        log "rate limits $mode, round $r: $p_rps req/s (its core ${p_busy}%), hello $h_rps req/s$( ((ok)) || echo '; disturbed, repeated')"
    done
    stop_pid "$L_PID"
done

# --- 6. report --------------------------------------------------------------------------

mkdir -p "$BENCH/results"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=
[[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null || true) ]] || DIRTY="+dirty"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)

python3 - "$WORK/rounds" "$WORK/storage" "$TARGET_RATIO" "$TARGET_RSS_MB" "$TARGET_READY_MS" "$STRICT" \
    "${READY_MS[*]}" "${HELLO_READY_MS[*]}" "$RSS_STARTED_KB" "$RSS_IDLE_KB" "$RSS_AFTER_KB" "$H_RSS_KB" \
    "$ME_BYTES" "commit $COMMIT$DIRTY; $(date -u +%Y-%m-%dT%H:%M:%SZ); $(uname -sr); $CPU_MODEL; $(nproc --all) CPUs" \
    "wrk -t1 -c$CONNECTIONS -d${DURATION}s --latency; server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; loopback; warm-up ${WARMUP}s; rounds alternate portcullis/hello; a round where a server kept its core < $((100 - NOISE_MAX))% busy is repeated" \
    "$WORK/limits" <<'PY' | tee "$BENCH/results/latest.txt"
import statistics as st
import sys

(rounds_file, storage_file, t_ratio, t_rss, t_ready, strict, ready, hready, rss_started, rss_idle,
 rss_after, h_rss, me_bytes, machine, method, limits_file) = sys.argv[1:]
loadavg = " ".join(open("/proc/loadavg").read().split()[:3])
t_ratio, t_rss, t_ready = float(t_ratio), float(t_rss), float(t_ready)
# round clean | rps p50 p99 requests busy% foreign% (portcullis) | the same (hello)
rows = [[float(x) for x in line.split()] for line in open(rounds_file) if line.strip()]
clean = [r for r in rows if r[1] == 1]
used = clean or rows
P, H = 2, 8  # column offsets of the two runs in a row
med = st.median


def col(i):
    return med(r[i] for r in used)


def per_cpu_s(r, o):
    return r[o] / max(r[o + 4], 1.0) * 100  # requests per second of server CPU time


ratios = [r[P] / r[H] for r in used]
cpu_ratios = [per_cpu_s(r, P) / per_cpu_s(r, H) for r in used]
ratio, cpu_ratio = med(ratios), med(cpu_ratios)
ready = [float(x) for x in ready.split()]
hready = [float(x) for x in hready.split()]
mb = lambda kb: int(kb) / 1024
ready_ms = med(ready)
idle_mb = mb(rss_idle)
checks = [
    ("GET /v1/me req/s vs hello", f"{ratio:.2f}", f">= {t_ratio:.2f}", ratio >= t_ratio),
    ("idle RSS (MB)", f"{idle_mb:.1f}", f"<= {t_rss:.0f}", idle_mb <= t_rss),
    ("start to /readyz 200 (ms)", f"{ready_ms:.1f}", f"<= {t_ready:.0f}", ready_ms <= t_ready),
]

out = []
w = out.append
w("Portcullis load benchmark (bench/run.sh)")
w(f"  {machine}")
w(f"  {method}")
w("")
w(f"  {'':24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU':>9}{'req/CPU-s':>11}")
for name, o in (("portcullis GET /v1/me", P), ("hello GET / (baseline)", H)):
    w(f"  {name:24}{col(o):>9.0f}{col(o + 1):>9.3f}{col(o + 2):>9.3f}{col(o + 4):>8.0f}%"
      f"{med(per_cpu_s(r, o) for r in used):>11.0f}")
w(f"  ratio portcullis / hello: {ratio:.3f} req/s, {cpu_ratio:.3f} req per server CPU-second")
w(f"  medians of {len(used)} {'server-bound' if clean else 'DISTURBED (no server-bound round: unreliable)'} round(s);"
  f" {len(rows)} rounds run; load average {loadavg}")
w("")
w(f"  {'check':32}{'measured':>10}{'target':>10}  verdict")
for name, value, target, ok in checks:
    w(f"  {name:32}{value:>10}{target:>10}  {'PASS' if ok else 'FAIL'}")
w("")
w("  rounds: req/s portcullis, hello, ratio; server core busy with portcullis, hello (+ others)")
for r in rows:
    w(f"    {int(r[0]):>2}: {r[P]:>8.0f} {r[H]:>8.0f}  {r[P] / r[H]:.3f}"
      f"   {r[P + 4]:>3.0f}% (+{r[P + 5]:.0f}%)  {r[H + 4]:>3.0f}% (+{r[H + 5]:.0f}%)"
      f"{'' if r[1] == 1 else '  (disturbed, not used)' if clean else '  (disturbed)'}")
w(f"  start to ready, {len(ready)} fresh starts (ms): portcullis {', '.join(f'{x:.1f}' for x in ready)};"
  f" hello (first 200 on /) median {med(hready):.1f}")
w(f"  RSS (MB): portcullis after start {mb(rss_started):.1f}, after signup (idle) {idle_mb:.1f},"
  f" after load {mb(rss_after):.1f}; hello idle {mb(h_rss):.1f}")
w(f"  /v1/me body: {me_bytes} bytes; absolute figures are machine-dependent, read the ratios")
# backend round clean | portcullis run (6 columns) | hello run (6 columns)
storage = {}
for line in open(storage_file):
    f = line.split()
    if f:
        storage.setdefault(f[0], []).append([float(x) for x in f[1:]])
if storage:
    w("")
    w("  storage path: GET /v1/me with session_cache_ttl_ms = 0 (every request reads the database)")
    w(f"  {'backend':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'hello':>9}{'ratio':>8}  rounds (ratio)")
    for backend, rs in storage.items():
        good = [r for r in rs if r[1] == 1] or rs
        rat = [r[2] / r[8] for r in good]
        w(f"  {backend:10}{med(r[2] for r in good):>9.0f}{med(r[3] for r in good):>9.3f}"
          f"{med(r[4] for r in good):>9.3f}{med(r[8] for r in good):>9.0f}{med(rat):>8.3f}  "
          + ", ".join(f"{r[2] / r[8]:.3f}{'' if r[1] == 1 else '*'}" for r in rs)
          + ("" if any(r[1] == 1 for r in rs) else "  (all disturbed)"))
    w("  (* disturbed round, not in the median)")
limits = {}
for line in open(limits_file):
    f = line.split()
    if f:
        limits.setdefault(f[0], []).append([float(x) for x in f[1:]])
if limits:
    w("")
    w(f"  rate limiting on: GET /v1/me, ratio to hello against the baseline's {ratio:.3f} (target: within 5 %)")
    w(f"  {'limiter':10}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}{'vs off':>9}  rounds (ratio)")
    for mode, rs in limits.items():
        good = [r for r in rs if r[1] == 1] or rs
        rat = med(r[2] / r[8] for r in good)
        w(f"  {mode:10}{med(r[2] for r in good):>9.0f}{med(r[3] for r in good):>9.3f}"
          f"{med(r[4] for r in good):>9.3f}{rat:>8.3f}{(rat / ratio - 1) * 100:>+8.1f}%  "
          + ", ".join(f"{r[2] / r[8]:.3f}{'' if r[1] == 1 else '*'}" for r in rs))
print("\n".join(out))
if strict == "1" and not all(ok for *_, ok in checks):
    sys.exit(1)
PY

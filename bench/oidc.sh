#!/usr/bin/env bash
# Load benchmark of the OpenID Connect provider against the bare axum/hyper "hello" baseline,
# in one run, on loopback, on SQLite and on PostgreSQL.
#
#   bash bench/oidc.sh
#
# For each backend: starts `portcullis serve` pinned to SERVER_CPU, signs a user up, registers
# a confidential client (authorization_code, refresh_token, client_credentials;
# client_secret_basic), mints REFRESH_FAMILIES refresh tokens through the code flow, then
# runs wrk pinned to LOAD_CPU against
#   cc          POST /oauth2/token grant_type=client_credentials (HTTP Basic)
#   introspect  POST /oauth2/introspect token=<one access token> (HTTP Basic)
#   jwks        GET /.well-known/jwks.json
#   refresh     POST /oauth2/token grant_type=refresh_token, a never-presented token on every
#               request (bench/oidc/refresh.lua)
# each followed by the hello server (also on SERVER_CPU), repeated until ROUNDS pairs were
# undisturbed. On SQLite it then kills the server with SIGKILL in the middle of refresh load,
# restarts it on the same data dir and checks that no acknowledged rotation was lost.
# Prints req/s, ratios to hello and PASS/FAIL against the targets of bench/README.md and
# writes the same to bench/results/oidc-latest.txt.
#
# Knobs (environment): DURATION (s per wrk run, 5), WARMUP (s, 2), CONNECTIONS (32),
# ROUNDS (3), SERVER_CPU (0), LOAD_CPU (1), NOISE_MAX (10), WRK_TIMEOUT (s, 10),
# BACKENDS ("sqlite postgres"),
# PG_URL (postgres://postgres@127.0.0.1:5432, a superuser on loopback; a fresh database is
# created and dropped), REFRESH_FAMILIES (1024), CRASH_SECONDS (3), SKIP_BUILD=1,
# STRICT=1 (exit 1 when a target is missed or the kill -9 check fails).
#
# Exit status: 0 when the measurement completed (whatever the verdicts, unless STRICT=1);
# non-zero when something is broken: a build, a start, a set-up request, a non-2xx answer
# under load, a socket error.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
HELPER="$BENCH/oidc/helper.py"
cd "$ROOT"

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
ROUNDS=${ROUNDS:-3}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
NOISE_MAX=${NOISE_MAX:-10}
REFRESH_FAMILIES=${REFRESH_FAMILIES:-1024}
CRASH_SECONDS=${CRASH_SECONDS:-3}
# wrk counts a request unanswered after this long as a timeout, which fails the run. Longer
# than wrk's default of 2 s: slow answers are reported (p99, max), only lost ones are fatal.
WRK_TIMEOUT=${WRK_TIMEOUT:-10}
BACKENDS=${BACKENDS:-sqlite postgres}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
SKIP_BUILD=${SKIP_BUILD:-0}
STRICT=${STRICT:-0}

# Targets (bench/README.md, "OpenID Connect").
T_CC=25000
T_INTROSPECT=25000
T_RATIO=0.20
T_REFRESH=2000
# The refresh grace window the server is started with (the default); the kill -9 check
# waits it out before presenting rotated tokens again.
GRACE=10

for n in DURATION WARMUP CONNECTIONS ROUNDS SERVER_CPU LOAD_CPU NOISE_MAX REFRESH_FAMILIES CRASH_SECONDS WRK_TIMEOUT; do
    if ! [[ ${!n} =~ ^[0-9]+$ ]]; then
        echo "error: $n must be a non-negative integer (got '${!n}')" >&2
        exit 2
    fi
done
if ((DURATION < 1 || CONNECTIONS < 1 || ROUNDS < 1 || CRASH_SECONDS < 1)); then
    echo "error: DURATION, CONNECTIONS, ROUNDS and CRASH_SECONDS must be at least 1" >&2
    exit 2
fi
if ((ROUNDS > 20 || DURATION > 600 || CRASH_SECONDS > 60 || REFRESH_FAMILIES > 100000)); then
    echo "error: ROUNDS <= 20, DURATION <= 600, CRASH_SECONDS <= 60, REFRESH_FAMILIES <= 100000" >&2
    exit 2
fi
if ((REFRESH_FAMILIES < 2 * CONNECTIONS)); then
    echo "error: REFRESH_FAMILIES must be at least 2 x CONNECTIONS" >&2
    exit 2
fi
for b in $BACKENDS; do
    [[ $b == sqlite || $b == postgres ]] || {
        echo "error: BACKENDS: unknown backend '$b' (sqlite, postgres)" >&2
        exit 2
    }
done
[[ $PG_URL =~ ^postgres://[^/@]+@127\.0\.0\.1(:[0-9]+)?$ ]] || {
    echo "error: PG_URL must be postgres://USER@127.0.0.1[:PORT] (no database, loopback only)" >&2
    exit 2
}

# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
clear_portcullis_env
if [[ " $BACKENDS " == *" postgres "* ]]; then
    command -v psql >/dev/null || die "psql is required for the postgres backend (or BACKENDS=sqlite)"
fi
require_tools taskset curl python3 cargo base64
build_release

# --- processes, temp dirs and the database: everything is removed on exit ---------------

WORK=$(mktemp -d -t portcullis-oidc-bench.XXXXXX)
PIDS=()
PG_DB=

# alive PID: the process exists and is not a zombie (a server killed here is reparented,
# and whoever reaps it may take a moment).
alive() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ -n $st && $st != Z ]]
}

# stop_pid PID: SIGTERM, SIGKILL after 5 s; the pid is then forgotten, so the exit trap never
# signals a number the system may have handed to someone else since.
stop_pid() {
    local pid=$1 i keep=()
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        alive "$pid" && kill -KILL "$pid" 2>/dev/null || true
    fi
    for i in "${PIDS[@]}"; do
        [[ $i == "$pid" ]] || keep+=("$i")
    done
    PIDS=("${keep[@]}")
}

drop_db() {
    [[ -n $PG_DB ]] || return 0
    psql -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" \
        >/dev/null 2>&1 || echo "warning: could not drop database $PG_DB" >&2
    PG_DB=
}

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        stop_pid "$pid"
    done
    PIDS=()
    drop_db
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server DIR PATH COMMAND... : starts COMMAND ({PORT} substituted) in DIR, pinned to
# SERVER_CPU, waits for PATH = 200 (bench/start.py); sets SRV_PID and SRV_URL.
SRV_PID=
SRV_URL=
SRV_MS=
start_server() {
    local dir=$1 path=$2
    shift 2
    local port out arg cmd=()
    port=$(free_port)
    for arg in "$@"; do
        cmd+=("${arg//\{PORT\}/$port}")
    done
    out=$(python3 "$BENCH/start.py" --port "$port" --path "$path" \
        --server-cpu "$SERVER_CPU" --self-cpu "$LOAD_CPU" \
        --cwd "$dir" --log "$dir/server.log" --keep -- "${cmd[@]}") || {
        echo "--- $dir/server.log" >&2
        tail -n 20 "$dir/server.log" >&2 || true
        die "server did not start: ${cmd[*]}"
    }
    SRV_PID=${out%% *}
    SRV_MS=${out##* }
    PIDS+=("$SRV_PID")
    SRV_URL="http://127.0.0.1:$port"
}

# --- the hello baseline (one instance for the whole run) ---------------------------------

mkdir -p "$WORK/hello"
start_server "$WORK/hello" / "$HELLO" "127.0.0.1:{PORT}"
H_PID=$SRV_PID
H_URL="$SRV_URL/"
code=$(curl -sS -m 10 -o "$WORK/hello.out" -w '%{http_code}' "$H_URL")
[[ $code == 200 && $(cat "$WORK/hello.out") == hello ]] || die "hello answered $code"

# --- measuring ----------------------------------------------------------------------------

# cpu_ticks PID: "<ticks of the server core: busy> <all> <ticks of PID: user+system>
# <ticks of all postgres processes>" (the last is 0 unless the backend is postgres: the
# database runs on the same machine, unpinned, and its share is reported beside the server's).
cpu_ticks() {
    local core proc db=0 p c
    core=$(awk -v c="cpu$SERVER_CPU" '$1 == c {
        busy = $2 + $3 + $4 + $7 + $8 + $9; all = busy + $5 + $6; print busy, all }' /proc/stat)
    proc=$(sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}')
    if [[ ${BACKEND:-} == postgres ]]; then
        # The postmaster's own time and that of its reaped children (cutime, cstime), plus
        # its live children: a backend that exits meanwhile moves from one sum to the other.
        p=$(pgrep -x -o postgres || true)
        if [[ -n $p ]]; then
            db=$({
                sed -n 's/.*) //p' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13 + $14 + $15}'
                for c in $(pgrep -P "$p" || true); do
                    sed -n 's/.*) //p' "/proc/$c/stat" 2>/dev/null | awk '{print $12 + $13}'
                done
            } | awk '{s += $1} END {print s + 0}')
        fi
    fi
    echo "$core $proc $db"
}

# run_wrk OUT SECONDS PID URL [WRK ARGS...]: one wrk run pinned to LOAD_CPU against the
# server PID (extra environment for the Lua scripts comes from the caller's exports); fails
# on any non-2xx answer or socket error, including a request unanswered after WRK_TIMEOUT
# seconds. Prints "rps p50_ms p99_ms requests server_busy_% foreign_% postgres_% max_ms"
# (percentages of one CPU).
run_wrk() {
    local out=$1 secs=$2 pid=$3 url=$4
    shift 4
    local before after
    before=$(cpu_ticks "$pid")
    timeout $((secs + 30)) taskset -c "$LOAD_CPU" \
        wrk -t1 -c"$CONNECTIONS" -d"${secs}s" --timeout "${WRK_TIMEOUT}s" --latency "$@" "$url" >"$out" 2>&1 ||
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
        /^ +Latency +[0-9]/ { max = ms($4) }
        /^ +50% / { p50 = ms($2) }
        /^ +99% / { p99 = ms($2) }
        / requests in / { n = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ { gsub(",", ""); errs = $4 + $6 + $8 + $10 }
        /^refresh: sent / { if ($6 + 0 > 0 || $8 + 0 > 0) lua = $0 }
        END {
            if (bad + 0 > 0) { print "non-2xx answers under load: " bad " (see " out ")" > "/dev/stderr"; exit 3 }
            if (errs + 0 > 0) { print "socket errors under load: " errs " (see " out ")" > "/dev/stderr"; exit 3 }
            if (lua != "") { print "bad refresh answers or an empty pool: " lua > "/dev/stderr"; exit 3 }
            if (rps == "" || n + 0 == 0) { print "cannot read wrk output " out > "/dev/stderr"; exit 3 }
            split(before, b, " "); split(after, a, " ")
            all = a[2] - b[2]; if (all <= 0) all = 1
            busy = (a[3] - b[3]) / all * 100
            foreign = ((a[1] - b[1]) - (a[3] - b[3])) / all * 100
            if (foreign < 0) foreign = 0
            db = (a[4] - b[4]) / all * 100
            if (db < 0) db = 0
            printf "%s %.3f %.3f %s %.1f %.1f %.1f %.3f\n", rps, p50, p99, n, busy, foreign, db, max
        }' "$out" || die "invalid measurement; wrk said: $(cat "$out")"
}

# expect_json NAME STATUS FILE CODE PYTHON-CONDITION: the answer's status and JSON body
# (`d`) are what the scenario expects.
expect_json() {
    local name=$1 want=$2 file=$3 got=$4 cond=$5
    [[ $got == "$want" ]] || die "$name answered $got (expected $want): $(head -c 500 "$file")"
    python3 -c "import json, sys; d = json.load(open(sys.argv[1])); sys.exit(0 if ($cond) else 1)" "$file" ||
        die "$name: unexpected answer: $(head -c 500 "$file")"
}

json_field() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

# check_scenario NAME: one request with curl, as the following wrk run will send it; sets up
# what that run needs (a fresh access token for introspection; the refresh pool's first
# token is rotated and replaced by its successor).
check_scenario() {
    local f="$WORK/check.json" code
    case $1 in
    cc)
        code=$(curl -sS -m 10 -o "$f" -w '%{http_code}' -H "$AUTH" \
            --data 'grant_type=client_credentials' "$P_URL/oauth2/token")
        expect_json "client_credentials" 200 "$f" "$code" \
            "d['token_type'] == 'Bearer' and d['access_token'].count('.') == 2 and 'refresh_token' not in d"
        ;;
    introspect)
        code=$(curl -sS -m 10 -o "$f" -w '%{http_code}' -H "$AUTH" \
            --data 'grant_type=client_credentials' "$P_URL/oauth2/token")
        expect_json "client_credentials" 200 "$f" "$code" "'access_token' in d"
        ACCESS_TOKEN=$(json_field "$f" access_token)
        code=$(curl -sS -m 10 -o "$f" -w '%{http_code}' -H "$AUTH" \
            --data "token=$ACCESS_TOKEN" "$P_URL/oauth2/introspect")
        expect_json "introspection" 200 "$f" "$code" \
            "d['active'] is True and d['client_id'] == '$CLIENT_ID' and d['token_type'] == 'Bearer'"
        ;;
    jwks)
        code=$(curl -sS -m 10 -o "$f" -w '%{http_code}' "$P_URL/.well-known/jwks.json")
        expect_json "JWKS" 200 "$f" "$code" \
            "len(d['keys']) >= 1 and all('kid' in k and 'd' not in k for k in d['keys'])"
        ;;
    refresh)
        local first
        first=$(head -n 1 "$POOL")
        code=$(curl -sS -m 10 -o "$f" -w '%{http_code}' -H "$AUTH" \
            --data "grant_type=refresh_token&refresh_token=$first" "$P_URL/oauth2/token")
        expect_json "refresh" 200 "$f" "$code" \
            "d['refresh_token'].startswith('rt_') and d['refresh_token'] != '$first' and 'id_token' in d and 'access_token' in d"
        { json_field "$f" refresh_token; tail -n +2 "$POOL"; } >"$POOL.new"
        mv "$POOL.new" "$POOL"
        ;;
    esac
}

# measure NAME OUT SECONDS: one wrk run of a scenario against portcullis.
measure() {
    local name=$1 out=$2 secs=$3
    case $name in
    cc)
        OIDC_WRK_AUTH=${AUTH#Authorization: } OIDC_WRK_BODY='grant_type=client_credentials' \
            run_wrk "$out" "$secs" "$P_PID" "$P_URL/oauth2/token" -s "$BENCH/oidc/post.lua"
        ;;
    introspect)
        OIDC_WRK_AUTH=${AUTH#Authorization: } OIDC_WRK_BODY="token=$ACCESS_TOKEN" \
            run_wrk "$out" "$secs" "$P_PID" "$P_URL/oauth2/introspect" -s "$BENCH/oidc/post.lua"
        ;;
    jwks)
        run_wrk "$out" "$secs" "$P_PID" "$P_URL/.well-known/jwks.json"
        ;;
    refresh)
        OIDC_WRK_AUTH=${AUTH#Authorization: } OIDC_WRK_POOL_IN=$POOL OIDC_WRK_POOL_OUT=$POOL.out \
            run_wrk "$out" "$secs" "$P_PID" "$P_URL/oauth2/token" -s "$BENCH/oidc/refresh.lua"
        mv "$POOL.out" "$POOL"
        (($(wc -l <"$POOL") >= 2 * CONNECTIONS)) ||
            die "the refresh pool ran down to $(wc -l <"$POOL") tokens; raise REFRESH_FAMILIES"
        ;;
    esac
}

SCENARIOS=(cc introspect jwks refresh)
: >"$WORK/rounds"
: >"$WORK/kill.txt"
: >"$WORK/notes"

# --- one backend --------------------------------------------------------------------------

bench_backend() {
    local backend=$1 dir="$WORK/$1" env_cmd
    BACKEND=$backend
    mkdir -p "$dir"
    # Route limits off: the load would be answered 429 (the limiter has its own figures in run.sh).
    env_cmd=(env PORTCULLIS_LOG_LEVEL=warn PORTCULLIS_RATE_LIMIT_ENABLED=false PORTCULLIS_OIDC_REFRESH_GRACE_SECS=$GRACE)
    if [[ $backend == postgres ]]; then
        PG_DB="portcullis_oidc_bench_$$_$RANDOM"
        log "postgres: CREATE DATABASE $PG_DB"
        psql -q -v ON_ERROR_STOP=1 "$PG_URL/postgres" -c "CREATE DATABASE \"$PG_DB\"" >/dev/null ||
            die "cannot create a database at $PG_URL"
        env_cmd+=(PORTCULLIS_DATABASE_URL="$PG_URL/$PG_DB"
            PORTCULLIS_MASTER_KEY="$(head -c 32 /dev/urandom | base64 -w0)")
    fi
    SERVER_CMD=("${env_cmd[@]}" "$PORTCULLIS" serve --data-dir "$dir/data" --listen "127.0.0.1:{PORT}")
    start_server "$dir" /readyz "${SERVER_CMD[@]}"
    P_PID=$SRV_PID
    P_URL=$SRV_URL
    log "$backend: portcullis pid $P_PID at $P_URL"

    local code
    code=$(curl -sS -m 30 -o "$dir/signup.json" -D "$dir/signup.headers" -w '%{http_code}' \
        -H 'Content-Type: application/json' \
        --data '{"email":"bench@example.com","password":"correct horse battery staple"}' \
        "$P_URL/v1/auth/signup")
    [[ $code == 201 ]] || die "signup answered $code: $(cat "$dir/signup.json")"
    SESSION=$(sed -n 's/^[Ss]et-[Cc]ookie: portcullis_session=\([^;]*\);.*/\1/p' "$dir/signup.headers" | tr -d '\r' | head -n 1)
    [[ -n $SESSION ]] || die "no portcullis_session cookie in the signup answer"
    local project
    project=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["project"]["id"])' "$dir/signup.json")

    code=$(curl -sS -m 30 -o "$dir/client.json" -w '%{http_code}' \
        -H "Authorization: Bearer $SESSION" -H "X-Project-ID: $project" \
        -H 'Content-Type: application/json' \
        --data '{"name": "Bench", "type": "confidential",
                 "redirect_uris": ["https://rp.example.com/callback"],
                 "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
                 "token_endpoint_auth_method": "client_secret_basic"}' \
        "$P_URL/v1/project/clients")
    expect_json "client registration" 201 "$dir/client.json" "$code" \
        "d['client_id'].startswith('pcc_') and d['client_secret'].startswith('pcs_') and d['signing_alg'] == 'EdDSA'"
    CLIENT_ID=$(json_field "$dir/client.json" client_id)
    local secret
    secret=$(json_field "$dir/client.json" client_secret)
    # client_secret_basic: id and secret are form-urlencoded first (RFC 6749 §2.3.1); both
    # are base64url, which form encoding leaves alone.
    AUTH="Authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$secret" | base64 -w0)"

    log "$backend: minting $REFRESH_FAMILIES refresh tokens through the code flow"
    POOL="$dir/refresh.pool"
    taskset -c "$LOAD_CPU" python3 "$HELPER" mint --url "$P_URL" --client-id "$CLIENT_ID" \
        --auth "${AUTH#Authorization: }" --cookie "$SESSION" --n "$REFRESH_FAMILIES" --out "$POOL" ||
        die "minting refresh tokens failed"

    local sc p h
    if ((WARMUP > 0)); then
        log "$backend: warming up (${WARMUP}s per scenario)"
        for sc in "${SCENARIOS[@]}"; do
            check_scenario "$sc"
            measure "$sc" "$dir/warm.$sc" "$WARMUP" >/dev/null
        done
        run_wrk "$dir/warm.hello" "$WARMUP" "$H_PID" "$H_URL" >/dev/null
    fi

    # Rounds: each scenario then hello, back to back. A pair counts when hello kept its core
    # at least (100 - NOISE_MAX) % busy (the machine could saturate the server core), and,
    # on SQLite, other processes took at most NOISE_MAX % of the server core while the
    # scenario ran. (On PostgreSQL the database's own processes land on the server core too,
    # so "other" is reported, not judged.) Disturbed pairs are repeated; at most
    # 3 x ROUNDS attempts per scenario.
    declare -A clean=()
    for sc in "${SCENARIOS[@]}"; do clean[$sc]=0; done
    local r ok remaining
    for ((r = 1; r <= 3 * ROUNDS; r++)); do
        remaining=0
        for sc in "${SCENARIOS[@]}"; do
            ((clean[$sc] < ROUNDS)) || continue
            remaining=1
            check_scenario "$sc"
            p=$(measure "$sc" "$dir/wrk.$sc.$r" "$DURATION")
            h=$(run_wrk "$dir/wrk.hello.$sc.$r" "$DURATION" "$H_PID" "$H_URL")
            read -r p_rps _ _ _ p_busy p_foreign p_db _ <<<"$p"
            read -r h_rps _ _ _ h_busy _ _ _ <<<"$h"
            ok=1
            awk -v hb="$h_busy" -v pf="$p_foreign" -v m="$NOISE_MAX" -v sq="$([[ $backend == sqlite ]] && echo 1 || echo 0)" \
                'BEGIN { exit !(hb < 100 - m || (sq && pf > m)) }' && ok=0
            ((ok)) && clean[$sc]=$((clean[$sc] + 1))
            echo "$backend $r $ok $sc $p $h" >>"$WORK/rounds"
            log "$backend round $r $sc: $p_rps req/s (server ${p_busy}%, other ${p_foreign}%$([[ $backend == postgres ]] && echo ", postgres ${p_db}% of a CPU"))," \
                "hello $h_rps req/s (${h_busy}%)$( ((ok)) || echo '; disturbed, repeated')"
        done
        ((remaining)) || break
    done

    if [[ $backend == sqlite ]]; then
        log "sqlite: kill -9 during refresh load (${CRASH_SECONDS}s), restart, check every acknowledged rotation"
        taskset -c "$LOAD_CPU" python3 "$HELPER" crash --url "$P_URL" --auth "${AUTH#Authorization: }" \
            --pool "$POOL" --pid "$P_PID" --seconds "$CRASH_SECONDS" --concurrency "$CONNECTIONS" \
            --state "$dir/crash.json" || die "the crash run failed"
        local i
        for ((i = 0; i < 100; i++)); do
            alive "$P_PID" || break
            sleep 0.1
        done
        alive "$P_PID" && die "portcullis $P_PID survived SIGKILL"
        stop_pid "$P_PID" # forget it
        local wal_mb
        wal_mb=$(du -m "$dir/data/portcullis.db-wal" 2>/dev/null | cut -f1 || echo '?')
        start_server "$dir" /readyz "${SERVER_CMD[@]}"
        P_PID=$SRV_PID
        P_URL=$SRV_URL
        echo "SQLite after the kill: portcullis.db $(du -m "$dir/data/portcullis.db" | cut -f1) MB," \
            "WAL $wal_mb MB; restart to /readyz $SRV_MS ms" >>"$WORK/notes"
        log "sqlite: restarted on the same data dir (pid $P_PID); waiting out the ${GRACE}s grace window"
        taskset -c "$LOAD_CPU" python3 "$HELPER" verify --url "$P_URL" --auth "${AUTH#Authorization: }" \
            --state "$dir/crash.json" --grace "$GRACE" | tee "$WORK/kill.txt" >&2 || true
        [[ -s $WORK/kill.txt ]] || die "the kill -9 check printed nothing"
    fi

    stop_pid "$P_PID"
    drop_db
}

for backend in $BACKENDS; do
    bench_backend "$backend"
done

# --- report -------------------------------------------------------------------------------

mkdir -p "$BENCH/results"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=
[[ -z $(git -C "$ROOT" status --porcelain 2>/dev/null || true) ]] || DIRTY="+dirty"
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)
PG_VERSION=
if [[ " $BACKENDS " == *" postgres "* ]]; then
    PG_VERSION="; PostgreSQL $(psql -tA "$PG_URL/postgres" -c 'SHOW server_version' 2>/dev/null || echo '?') on loopback, not pinned"
fi

rc=0
python3 "$HELPER" report "$WORK/rounds" --kill "$WORK/kill.txt" \
    --machine "commit $COMMIT$DIRTY; $(date -u +%Y-%m-%dT%H:%M:%SZ); $(uname -sr); $CPU_MODEL; $(nproc --all) CPUs$PG_VERSION" \
    --method "wrk -t1 -c$CONNECTIONS -d${DURATION}s --timeout ${WRK_TIMEOUT}s --latency; server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU; warm-up ${WARMUP}s; each scenario then hello, medians of $ROUNDS undisturbed pairs" \
    --notes "$(sed 's/$/; /' "$WORK/notes" | tr -d '\n')client EdDSA, client_secret_basic; refresh: $REFRESH_FAMILIES families, scope 'openid offline_access' (a new access and ID token per rotation)" \
    --t-cc "$T_CC" --t-introspect "$T_INTROSPECT" --t-refresh "$T_REFRESH" --t-ratio "$T_RATIO" \
    >"$WORK/report.txt" || rc=$?
tee "$BENCH/results/oidc-latest.txt" <"$WORK/report.txt"
[[ -s $WORK/report.txt ]] || die "no report"
if [[ $STRICT == 1 && $rc != 0 ]]; then
    exit 1
fi
exit 0

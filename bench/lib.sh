# Shared by bench/run.sh and bench/oidc.sh (sourced after ROOT, SERVER_CPU, LOAD_CPU and
# SKIP_BUILD are set): messages, a clean environment, the tools, the release build.

log() { printf '==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# A developer's PORTCULLIS_* settings (a Postgres URL, a log level...) must not leak into the
# measured server: it runs on defaults plus what the script sets, in a directory without a
# portcullis.toml.
clear_portcullis_env() {
    local v
    while IFS= read -r v; do
        unset "$v"
    done < <(compgen -e | grep '^PORTCULLIS_' || true)
}

# require_tools TOOL...: each must be on PATH; wrk is installed from Debian when root. Also
# checks that SERVER_CPU and LOAD_CPU exist and differ.
require_tools() {
    local tool cpu
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is required"
    done
    if ! command -v wrk >/dev/null; then
        log "installing wrk from Debian"
        [[ $(id -u) -eq 0 ]] || die "wrk is missing; install it with: sudo apt-get install -y wrk"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
    fi
    for cpu in "$SERVER_CPU" "$LOAD_CPU"; do
        taskset -c "$cpu" true 2>/dev/null || die "cannot pin to CPU $cpu (CPUs: $(nproc --all))"
    done
    [[ $SERVER_CPU != "$LOAD_CPU" ]] || die "SERVER_CPU and LOAD_CPU must differ"
}

# build_release: sets PORTCULLIS and HELLO to the release binaries, building them unless
# SKIP_BUILD=1.
build_release() {
    local target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
    PORTCULLIS="$target_dir/release/portcullis"
    HELLO="$target_dir/release/portcullis-hello"
    if [[ $SKIP_BUILD != 1 ]]; then
        log "cargo build --release -p portcullis -p portcullis-bench-hello"
        cargo build --release -p portcullis -p portcullis-bench-hello
    fi
    [[ -x $PORTCULLIS && -x $HELLO ]] || die "release binaries missing in $target_dir/release"
}

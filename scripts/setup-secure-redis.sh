#!/usr/bin/env bash
# From a fresh clone to a TLS-only redis-server behind sealcache, on loopback.
#
#   scripts/setup-secure-redis.sh               build, init, start both; proxy in the foreground
#   scripts/setup-secure-redis.sh --background  the same, detached (PIDs in .sealcache/*.pid)
#   scripts/setup-secure-redis.sh --stop        stop both
#
# Installs redis-server/redis-tools with apt-get when missing, builds the release
# binary, runs `sealcache init --dir .sealcache` once (never overwriting), starts
# redis-server with only a TLS port (certificates and password from .sealcache/),
# then `sealcache serve --config .sealcache/sealcache.yaml`, and prints the
# redis-cli command that connects. Re-running is safe: what already runs is kept.
#
# Environment:
#   SEALCACHE_REDIS_PORT  redis-server's TLS port (default 6379)
#   SEALCACHE_PROXY_PORT  the proxy's TLS port (default 6380)
# The script passes these to sealcache as --upstream/--listen and removes them
# from its environment (SEALCACHE_* variables are configuration overrides).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

STATE="$ROOT/.sealcache"
REDIS_PORT=${SEALCACHE_REDIS_PORT:-6379}
PROXY_PORT=${SEALCACHE_PROXY_PORT:-6380}
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sealcache"
REDIS_PIDFILE="$STATE/redis.pid"
PROXY_PIDFILE="$STATE/sealcache.pid"
READY_SECONDS=60

usage() {
    sed -n '2,18s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

MODE=foreground
case "${1:-}" in
"") ;;
--background) MODE=background ;;
--stop) MODE=stop ;;
-h | --help)
    usage
    exit 0
    ;;
*)
    usage >&2
    exit 64
    ;;
esac

read_pid() { if [ -f "$1" ]; then cat "$1"; fi; }

stop_all() {
    stop_pid "$(read_pid "$PROXY_PIDFILE")" sealcache
    rm -f "$PROXY_PIDFILE"
    stop_pid "$(read_pid "$REDIS_PIDFILE")" redis-server
    rm -f "$REDIS_PIDFILE"
}

if [ "$MODE" = stop ]; then
    log "stopping sealcache and redis-server"
    stop_all
    log "stopped"
    exit 0
fi

# ---- prerequisites -----------------------------------------------------------
apt_install_missing redis-server:redis-server redis-cli:redis-tools
command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) and retry"

log "building sealcache (release; the first build takes a few minutes)"
(cd "$ROOT" && cargo build --release --locked --bin sealcache)

if [ -f "$STATE/sealcache.yaml" ]; then
    log "keeping the existing $STATE (delete it to start over)"
else
    log "sealcache init --dir $STATE"
    "$BIN" init --dir "$STATE" --upstream "rediss://127.0.0.1:$REDIS_PORT"
fi
for f in certs/ca.crt certs/server.crt certs/server.key upstream.password client.password; do
    [ -f "$STATE/$f" ] || die "$STATE/$f is missing: move $STATE away and re-run to initialise again"
done

# Credentials reach redis-cli through REDISCLI_AUTH, never argv. `timeout`: redis-cli
# has no connect timeout and hangs on a port that does not speak TLS.
redis_ping() {
    [ "$(REDISCLI_AUTH="$(cat "$STATE/upstream.password")" timeout 5 redis-cli --no-auth-warning --tls \
        --cacert "$STATE/certs/ca.crt" -h 127.0.0.1 -p "$REDIS_PORT" PING 2>/dev/null)" = PONG ]
}
proxy_ping() {
    [ "$(REDISCLI_AUTH="$(cat "$STATE/client.password")" timeout 5 redis-cli --no-auth-warning --tls \
        --cacert "$STATE/certs/ca.crt" -h 127.0.0.1 -p "$PROXY_PORT" --user default PING 2>/dev/null)" = PONG ]
}

# ---- redis-server --------------------------------------------------------------
STARTED_REDIS=
start_redis() {
    mkdir -p "$STATE/redis"
    # The config carries the password: create it private, rewrite it every start.
    local password
    password=$(sed 's/[\\"]/\\&/g' "$STATE/upstream.password")
    (
        umask 077
        cat >"$STATE/redis.conf" <<EOF
# Written by scripts/setup-secure-redis.sh on every start; edits are lost.
port 0
tls-port $REDIS_PORT
bind 127.0.0.1
protected-mode yes
tls-cert-file "$STATE/certs/server.crt"
tls-key-file "$STATE/certs/server.key"
tls-ca-cert-file "$STATE/certs/ca.crt"
tls-auth-clients no
tls-protocols "TLSv1.2 TLSv1.3"
requirepass "$password"
daemonize no
dir "$STATE/redis"
EOF
    )
    log "starting redis-server (TLS only) on 127.0.0.1:$REDIS_PORT (log: $STATE/redis.log)"
    nohup redis-server "$STATE/redis.conf" >>"$STATE/redis.log" 2>&1 </dev/null &
    redis_pid=$!
    echo "$redis_pid" >"$REDIS_PIDFILE"
    STARTED_REDIS=1
    local deadline=$((SECONDS + READY_SECONDS))
    until redis_ping; do
        if ! pid_alive "$redis_pid" redis-server || [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 20 "$STATE/redis.log" >&2 || true
            stop_pid "$redis_pid" redis-server
            rm -f "$REDIS_PIDFILE"
            die "redis-server did not come up on TLS port $REDIS_PORT (port in use? a system redis-server? set SEALCACHE_REDIS_PORT); log above"
        fi
        sleep 0.1
    done
}

redis_pid=$(read_pid "$REDIS_PIDFILE")
if pid_alive "$redis_pid" redis-server; then
    redis_ping || die "redis-server (pid $redis_pid) runs but does not answer PING with $STATE/upstream.password; run $0 --stop and retry"
    log "redis-server already running (pid $redis_pid)"
else
    start_redis
fi

# ---- sealcache -----------------------------------------------------------------
print_connect() {
    cat <<EOF

sealcache listens on 127.0.0.1:$PROXY_PORT (TLS) -> redis-server 127.0.0.1:$REDIS_PORT (TLS, pid $redis_pid)
Connect (user default; the password is in $STATE/client.password):

  redis-cli --tls --cacert $STATE/certs/ca.crt -h 127.0.0.1 -p $PROXY_PORT --user default --pass "\$(cat $STATE/client.password)"

Stop: $0 --stop
EOF
    if [ "$MODE" = background ]; then
        echo "Logs: $STATE/sealcache.log, $STATE/redis.log"
    else
        echo "redis-server log: $STATE/redis.log; the proxy logs here."
    fi
}

proxy_pid=$(read_pid "$PROXY_PIDFILE")
if pid_alive "$proxy_pid" sealcache; then
    proxy_ping || die "sealcache (pid $proxy_pid) runs but does not answer PING; see $STATE/sealcache.log or run $0 --stop"
    log "sealcache already running (pid $proxy_pid)"
    print_connect
    exit 0
fi

serve=(env -u SEALCACHE_REDIS_PORT -u SEALCACHE_PROXY_PORT
    "$BIN" serve --config "$STATE/sealcache.yaml"
    --listen "127.0.0.1:$PROXY_PORT" --upstream "rediss://127.0.0.1:$REDIS_PORT")

# Polls PING through the proxy; gives up at once if the process exits (a bad
# configuration exits 78 before listening).
wait_for_proxy() {
    local deadline=$((SECONDS + READY_SECONDS)) status
    until proxy_ping; do
        if ! pid_alive "$proxy_pid" sealcache; then
            show_proxy_log
            rm -f "$PROXY_PIDFILE"
            wait "$proxy_pid" 2>/dev/null && status=0 || status=$?
            die "sealcache exited during startup (status $status)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_proxy_log
            stop_pid "$proxy_pid" sealcache
            rm -f "$PROXY_PIDFILE"
            die "sealcache did not answer PING on 127.0.0.1:$PROXY_PORT within ${READY_SECONDS}s"
        fi
        sleep 0.1
    done
}
# In the foreground the log is already on the terminal.
show_proxy_log() {
    if [ "$MODE" = background ]; then
        tail -n 30 "$STATE/sealcache.log" >&2 || true
    fi
}

if [ "$MODE" = background ]; then
    log "starting sealcache in the background (log: $STATE/sealcache.log)"
    nohup "${serve[@]}" >>"$STATE/sealcache.log" 2>&1 </dev/null &
    proxy_pid=$!
    echo "$proxy_pid" >"$PROXY_PIDFILE"
    wait_for_proxy
    print_connect
    exit 0
fi

# Foreground: the proxy logs to this terminal; Ctrl-C stops it, and redis-server
# too when this run started it.
# shellcheck disable=SC2317 # invoked by the trap below
on_signal() {
    trap - INT TERM
    log "stopping"
    stop_pid "$proxy_pid" sealcache
    rm -f "$PROXY_PIDFILE"
    if [ -n "$STARTED_REDIS" ]; then
        stop_pid "$redis_pid" redis-server
        rm -f "$REDIS_PIDFILE"
    fi
    exit "$1"
}
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
log "starting sealcache in the foreground (Ctrl-C stops it)"
"${serve[@]}" </dev/null &
proxy_pid=$!
echo "$proxy_pid" >"$PROXY_PIDFILE"
wait_for_proxy
print_connect
status=0
wait "$proxy_pid" || status=$?
rm -f "$PROXY_PIDFILE"
log "sealcache exited (status $status)"
exit "$status"

#!/usr/bin/env bash
# Memory per idle client connection of sealcache (release build), on this machine.
#
#   scripts/idle-memory.sh [CONNECTIONS]      # default 2000
#
# Starts redis-server (TLS) and sealcache in front of it on free loopback ports,
# then opens CONNECTIONS TLS connections to sealcache (python3's ssl module), each
# authenticated and answered one PING, and leaves them idle. Reported: sealcache's
# resident memory (VmRSS) before and after, and the difference per connection,
# once for connections that only completed the TLS handshake and once for
# authenticated ones; each with a fresh sealcache process.
#
# Environment: IDLE_SEALCACHE_BIN (measure another sealcache binary instead of
# building this tree's release build).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

CONNECTIONS=${1:-2000}
case "$CONNECTIONS" in '' | *[!0-9]*) die "CONNECTIONS must be a number, not '$CONNECTIONS'" ;; esac
BIN="${IDLE_SEALCACHE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sealcache}"
READY_SECONDS=60

apt_install_missing redis-server:redis-server redis-cli:redis-tools python3:python3
# Each connection is a descriptor here and one in sealcache (which raises its own limit).
ulimit -n $((CONNECTIONS + 256)) 2>/dev/null ||
    die "cannot raise the open-file limit to $((CONNECTIONS + 256)) (ulimit -n): lower CONNECTIONS"

WORK=$(mktemp -d -t sealcache-idle.XXXXXX)
REDIS_PID='' SEALCACHE_PID='' CLIENT_PID=''
cleanup() {
    [ -n "$CLIENT_PID" ] && kill "$CLIENT_PID" 2>/dev/null && wait "$CLIENT_PID" 2>/dev/null
    stop_pid "$SEALCACHE_PID" sealcache
    stop_pid "$REDIS_PID" redis-server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_secrets

release_and_certs "${IDLE_SEALCACHE_BIN:-}"

REDIS_PORT=$(free_port)
SEALCACHE_PORT=$(free_port)

# No idle or authentication timeout: the connections are meant to stay.
write_sealcache_conf "$WORK/sealcache.yaml" "$SEALCACHE_PORT" "$REDIS_PORT" IDLE_CLIENT_PASSWORD \
    "limits: {idle_timeout_secs: 0, auth_timeout_secs: 3600}"
start_redis "$REDIS_PORT"

# A fresh proxy for each measurement: an allocator keeps what it has freed,
# so a second measurement in the same process would see the first's memory.
start_sealcache() {
    log "starting sealcache on TLS port $SEALCACHE_PORT"
    env -u SEALCACHE_CONFIG IDLE_CLIENT_PASSWORD="$CLIENT_PASSWORD" \
        "$BIN" serve --config "$WORK/sealcache.yaml" >"$WORK/sealcache.log" 2>&1 </dev/null &
    SEALCACHE_PID=$!
    wait_ready sealcache "$SEALCACHE_PID" "$SEALCACHE_PORT" "$CLIENT_PASSWORD" "$WORK/sealcache.log"
}

rss_kib() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$SEALCACHE_PID/status"; }

# The client: opens the connections (MODE handshake: TLS only; auth: AUTH + PING
# answered), prints "ready", then holds them until stdin closes.
cat >"$WORK/client.py" <<'EOF'
import socket, ssl, sys
port, count, mode, cafile, password = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context(cafile=cafile)
held = []
auth = b"*3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$%d\r\n%s\r\n*1\r\n$4\r\nPING\r\n" % (len(password), password.encode())
for _ in range(count):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    tls = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    if mode == "auth":
        tls.sendall(auth)
        got = b""
        while not got.endswith(b"+PONG\r\n"):
            chunk = tls.recv(256)
            if not chunk:
                sys.exit("sealcache closed a connection: %r" % got)
            got += chunk
        if not got.startswith(b"+OK\r\n"):
            sys.exit("AUTH failed: %r" % got)
    held.append(tls)
print("ready", flush=True)
sys.stdin.read()
EOF

# measure MODE: sets BEFORE and AFTER (sealcache's VmRSS in KiB).
measure() {
    local mode=$1 fifo="$WORK/hold.$1"
    start_sealcache
    BEFORE=$(rss_kib)
    mkfifo "$fifo"
    python3 "$WORK/client.py" "$SEALCACHE_PORT" "$CONNECTIONS" "$mode" "$CERTS/ca.crt" "$CLIENT_PASSWORD" \
        <"$fifo" >"$WORK/client.$mode.out" 2>"$WORK/client.$mode.err" &
    CLIENT_PID=$!
    exec 9>"$fifo"
    wait_until 300 "$CONNECTIONS $mode connections" grep -q ready "$WORK/client.$mode.out" || {
        cat "$WORK/client.$mode.err" >&2
        die "the client did not open $CONNECTIONS connections"
    }
    # Handshake-only connections are counted once their session has started: a
    # fresh connection's INFO shows them all.
    wait_until 60 "sealcache to count $CONNECTIONS clients" connected_at_least "$CONNECTIONS"
    AFTER=$(rss_kib)
    exec 9>&-
    wait "$CLIENT_PID" 2>/dev/null || true
    CLIENT_PID=''
    rm -f "$fifo"
    stop_pid "$SEALCACHE_PID" sealcache
    SEALCACHE_PID=''
}
connected_clients() {
    REDISCLI_AUTH="$CLIENT_PASSWORD" timeout 5 redis-cli --no-auth-warning --tls --cacert "$CERTS/ca.crt" \
        -h 127.0.0.1 -p "$SEALCACHE_PORT" --user default INFO proxy 2>/dev/null |
        sed -n 's/^connected_clients:\([0-9]*\).*/\1/p'
}
connected_at_least() { [ "$(connected_clients)" -ge $(($1 + 1)) ]; }

report() {
    local mode=$1 before=$2 after=$3
    awk -v m="$mode" -v b="$before" -v a="$after" -v n="$CONNECTIONS" 'BEGIN {
        printf "| %s | %d | %.1f | %.1f | %.1f |\n", m, n, b / 1024, a / 1024, (a - b) / n
    }'
}

log "opening $CONNECTIONS TLS connections (handshake only)"
measure handshake
hs_before=$BEFORE hs_after=$AFTER
log "opening $CONNECTIONS TLS connections (AUTH + PING)"
measure auth
au_before=$BEFORE au_after=$AFTER

revision=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
echo "## sealcache memory per idle connection ($revision, $(date -u '+%Y-%m-%d'))"
echo
echo "| connections | count | RSS before (MiB) | RSS after (MiB) | KiB per connection |"
echo "|---|---:|---:|---:|---:|"
report "TLS handshake only" "$hs_before" "$hs_after"
report "authenticated, one PING" "$au_before" "$au_after"

# shellcheck shell=bash
# Helpers shared by the scripts in this directory. Source it; do not run it.

# haproxy and friends live in sbin, which a non-root PATH may lack.
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

# apt_install PACKAGE... installs packages with apt-get, quietly (one
# `apt-get update` per script run).
_APT_UPDATED=
apt_install() {
    command -v apt-get >/dev/null 2>&1 ||
        die "need $* and this is not a Debian-like system: install them and retry"
    log "installing $* with apt-get"
    if [ -z "$_APT_UPDATED" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null
}

# apt_install_missing COMMAND:PACKAGE... installs the packages whose command is
# missing. Does nothing (and needs no network) when all are present.
apt_install_missing() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    apt_install "${missing[@]}"
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 ||
            die "apt-get installed ${pair#*:} but '${pair%%:*}' is still not on PATH"
    done
}

# wait_until SECONDS WHAT COMMAND... polls COMMAND (quietly) until it succeeds;
# returns 1 after SECONDS. A readiness poll, not a fixed sleep.
wait_until() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            warn "timed out after ${seconds}s waiting for $what"
            return 1
        fi
        sleep 0.1
    done
}

# free_port prints a loopback TCP port nothing listens on (and that this shell
# has not handed out before, so several calls give different ports). Below the
# kernel's ephemeral range (32768 up by default): a port some client connection
# holds there, or left in TIME-WAIT after a benchmark's thousands of
# connections, would look free yet refuse to be bound.
_FREE_PORTS=" "
free_port() {
    local port _ low=32768
    [ -r /proc/sys/net/ipv4/ip_local_port_range ] && read -r low _ </proc/sys/net/ipv4/ip_local_port_range
    [ "$low" -gt 11024 ] || die "the ephemeral port range starts at $low: no room below it for test servers"
    for _ in $(seq 200); do
        port=$((10000 + RANDOM % (low - 10000)))
        case "$_FREE_PORTS" in *" $port "*) continue ;; esac
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            _FREE_PORTS="$_FREE_PORTS$port "
            echo "$port"
            return 0
        fi
    done
    die "could not find a free loopback port"
}

# pid_alive PID NAME: PID runs and its command line mentions NAME (so a reused
# PID from a stale pidfile is never signalled).
pid_alive() {
    local pid=$1 name=$2
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

_pid_gone() { ! pid_alive "$1" "$2"; }

# stop_pid PID NAME: SIGTERM, wait up to 10 s, then SIGKILL. Reaps the process
# when it is this shell's child (a zombie has an empty cmdline, so it counts as gone).
stop_pid() {
    local pid=$1 name=$2
    pid_alive "$pid" "$name" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! wait_until 10 "$name (pid $pid) to exit" _pid_gone "$pid" "$name"; then
        warn "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# cpu_ticks PID: user+system CPU time of a process so far, in clock ticks.
cpu_ticks() {
    local stat fields
    read -r stat <"/proc/$1/stat"
    # Drop "pid (comm) " (comm may contain spaces): fields[0] is field 3 (state),
    # utime is field 14, stime field 15.
    read -r -a fields <<<"${stat##*) }"
    echo $((fields[11] + fields[12]))
}

# children_ticks PID: CPU time (clock ticks) of the children PID has waited for
# (cutime+cstime). Call it as `children_ticks "$BASHPID"` from the subshell that
# ran the command: a builtin, so it reads that subshell's own stat.
children_ticks() {
    local stat fields
    read -r stat <"/proc/$1/stat"
    read -r -a fields <<<"${stat##*) }"
    # fields[0] is field 3 (state): cutime is field 16, cstime field 17.
    echo $((fields[13] + fields[14]))
}

# ---- a redis-server and a sealcache over TLS, for the measuring scripts --------
# These read $CERTS (a directory with ca.crt, server.crt, server.key) and
# READY_SECONDS (how long a server may take to answer, default 60).

# ping_tls PORT PASSWORD: PONG over TLS as user default (timeout: redis-cli has no
# connect timeout of its own).
ping_tls() {
    local port=$1 password=$2
    [ "$(REDISCLI_AUTH="$password" timeout 5 redis-cli --no-auth-warning --tls --cacert "$CERTS/ca.crt" \
        -h 127.0.0.1 -p "$port" --user default PING 2>/dev/null)" = PONG ]
}

# wait_ready NAME PID PORT PASSWORD LOG: polls PING until it answers; dies with
# the log's tail if the process exits or READY_SECONDS pass.
wait_ready() {
    local name=$1 pid=$2 port=$3 password=$4 logfile=$5 deadline=$((SECONDS + ${READY_SECONDS:-60}))
    until ping_tls "$port" "$password"; do
        if ! pid_alive "$pid" "$name" || [ "$SECONDS" -ge "$deadline" ]; then
            tail -n 30 "$logfile" >&2 || true
            die "$name did not answer PING on 127.0.0.1:$port (log above)"
        fi
        sleep 0.1
    done
}

# random_secret: 32 random letters and digits (passwords for throwaway servers).
random_secret() { head -c 48 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9' | cut -c1-32; }

# make_secrets: sets UPSTREAM_PASSWORD and CLIENT_PASSWORD, and writes
# $WORK/upstream.password and $WORK/master.key (mode 0600) for write_sealcache_conf.
make_secrets() {
    UPSTREAM_PASSWORD=$(random_secret)
    CLIENT_PASSWORD=$(random_secret)
    (
        umask 077
        printf '%s' "$UPSTREAM_PASSWORD" >"$WORK/upstream.password"
        head -c 32 /dev/urandom | base64 -w0 >"$WORK/master.key"
    )
}

# write_sealcache_conf FILE PORT REDIS_PORT PASSWORD_ENV [EXTRA_YAML]: a proxy on
# PORT in front of the redis-server on REDIS_PORT, with its upstream password in
# $WORK/upstream.password, its master key in $WORK/master.key, and the client
# password of user default in the variable PASSWORD_ENV. No admin listener (two
# proxies may run side by side).
write_sealcache_conf() {
    local file=$1 port=$2 redis_port=$3 password_env=$4 extra=${5:-}
    (
        umask 077
        cat >"$file" <<CONF
profile: development
listen:
  tcp: "127.0.0.1:$port"
tls:
  cert_file: "$CERTS/server.crt"
  key_file: "$CERTS/server.key"
auth:
  users:
    - name: default
      password_env: $password_env
upstream:
  url: "rediss://127.0.0.1:$redis_port"
  ca_file: "$CERTS/ca.crt"
  password_file: "$WORK/upstream.password"
encryption:
  master_key_file: "$WORK/master.key"
logging:
  level: warn
admin:
  listen: null
$extra
CONF
    )
}

# drop_section FILE KEY: FILE without its top-level YAML section KEY (to swap
# write_sealcache_conf's upstream: for backends:, say).
drop_section() {
    awk -v key="$2:" '$1 == key { skip = 1; next } skip && /^[^ ]/ { skip = 0 } !skip' "$1" >"$1.new"
    mv "$1.new" "$1"
}

# write_redis_conf FILE TLS_PORT PASSWORD DIR: a TLS-only, persistence-free
# redis-server configuration (mode 0600: it holds the password).
write_redis_conf() {
    local file=$1 port=$2 password=$3 dir=$4
    (
        umask 077
        cat >"$file" <<CONF
port 0
tls-port $port
bind 127.0.0.1
tls-cert-file "$CERTS/server.crt"
tls-key-file "$CERTS/server.key"
tls-ca-cert-file "$CERTS/ca.crt"
tls-auth-clients no
requirepass "$password"
save ""
appendonly no
dir "$dir"
CONF
    )
}

# start_redis PORT: a redis-server on TLS port PORT (password $UPSTREAM_PASSWORD,
# files in $WORK); sets REDIS_PID and returns once it answers PING.
start_redis() {
    local port=$1
    write_redis_conf "$WORK/redis.conf" "$port" "$UPSTREAM_PASSWORD" "$WORK"
    log "starting redis-server on TLS port $port"
    redis-server "$WORK/redis.conf" >"$WORK/redis.log" 2>&1 </dev/null &
    REDIS_PID=$!
    wait_ready redis-server "$REDIS_PID" "$port" "$UPSTREAM_PASSWORD" "$WORK/redis.log"
}

# build_release [SOURCE] [TARGET_DIR]: the release sealcache binary of SOURCE
# (default: this tree) into TARGET_DIR (default: cargo's own).
build_release() {
    local src=${1:-$ROOT} target=${2:-}
    if [ -n "$target" ]; then
        (cd "$src" && CARGO_TARGET_DIR="$target" cargo build --release --locked --bin sealcache)
    else
        (cd "$src" && cargo build --release --locked --bin sealcache)
    fi
}

# release_and_certs OVERRIDE: builds this tree's release binary unless
# OVERRIDE (another binary to measure) is set, then generates certificates
# for localhost into $WORK/certs and sets CERTS.
release_and_certs() {
    if [ -z "${1:-}" ]; then
        log "cargo build --release (sealcache)"
        build_release
    fi
    CERTS="$WORK/certs"
    "$BIN" certs generate --out "$CERTS" --hosts localhost,127.0.0.1 >/dev/null
}

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
# has not handed out before, so several calls give different ports).
_FREE_PORTS=" "
free_port() {
    local port _
    for _ in $(seq 200); do
        port=$((20000 + RANDOM % 40000))
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

#!/usr/bin/env bash
# Throughput and CPU cost of sealcache against the alternatives, on this machine.
#
#   scripts/bench.sh            # 5 rounds; ROUNDS=9 REQUESTS=200000 scripts/bench.sh
#
# Setups, started here on free loopback ports, all over TLS:
#   direct     redis-server's TLS port
#   sealcache  the proxy (release build) in front of that redis-server
#   haproxy    an haproxy TLS-in/TLS-out TCP hop in front of it (what a user
#              would otherwise deploy to put TLS in front of Redis)
#   memory     the same proxy with a memory route only (`type: memory`): no upstream hop
#   before     another sealcache build (BENCH_BEFORE_BIN; scripts/bench-before.sh
#              builds one from an earlier commit) in front of the same redis-server
#   core       the proxy core without value encryption (BENCH_CORE_BIN, scripts/bench-core.sh)
# The setups run interleaved within each round (rotating order), so drift
# affects all of them alike; every figure is reported as the median of per-round
# paired ratios to direct TLS.
#
# Parts (PARTS, default "setget incr default"):
#   setget   redis-benchmark -t set,get -d 1024 -c 50 -n REQUESTS at -P 1 and -P 16,
#            every setup. Also the CPU-µs per request of every process
#            (redis-server, the proxies, redis-benchmark) from /proc/PID/stat
#            utime+stime, because on a small machine they share the CPUs.
#   incr     INCR, which sealcache computes itself (read, decrypt, add, seal,
#            write back atomically): one client, one hot key with 20 and 50
#            clients, and 50 clients over `-r 100000` random keys.
#   default  redis-benchmark's whole default test set (DEFAULT_TESTS), one
#            redis-benchmark run per test so that an error stops only its own:
#            ping, set, get, incr, lpush, rpush, lpop, rpop, sadd, hset, spop,
#            zadd, zpopmin, lrange_100/300/500/600 (each run fills the list with
#            its own LPUSHes first, as redis-benchmark does), mset.
#   lrange   LRANGE of LRANGE_SIZES elements (3 bytes each, as redis-benchmark
#            pushes) from a list filled once, so no LPUSH is counted, with the
#            CPU-µs per request of every process on the path.
# incr, default and lrange run for direct and each sealcache setup (not haproxy).
# redis-benchmark stops at the first error reply ("Error from server: …"):
# every run's error replies are recorded, and must be 0.
# Direct runs in database 9, so its plaintext never meets the proxies' sealed keys in 0.
# Markdown goes to stdout and target/bench/results.md; raw rows to target/bench/raw.tsv.
#
# PIN=1 pins redis-server and redis-benchmark to CPU 0 and every proxy (and
# haproxy) to CPU 1 (taskset): the proxy then has a CPU of its own, as a
# sidecar on the application's host has, instead of taking its CPU out of
# Redis's and the client's share; direct runs on CPU 0 alone.
# Environment: ROUNDS (5), REQUESTS (100000), CLIENTS (50), DATA_SIZE (1024),
# PIPELINES ("1 16"), SETUPS ("direct sealcache haproxy"), BENCH_CERTS_DIR (use
# ca.crt/server.crt/server.key from there instead of `sealcache certs generate`),
# BENCH_SEALCACHE_BIN (a sealcache binary to measure instead of building this tree),
# BENCH_BEFORE_BIN, BENCH_CORE_BIN, PARTS, PAIRED_SETUPS (the setups incr and
# default compare with direct: every sealcache setup in SETUPS), INCR_REQUESTS (50000 per INCR run; a
# fifth of it for the single client), INCR_TESTS ("single:1:0 hot:20:0 hot:50:0
# random:50:100000", each name:clients:keyspace, keyspace 0 = one hot key),
# DEFAULT_TESTS (the list above), DEFAULT_REQUESTS (20000 per run),
# DEFAULT_DATA_SIZE (3, redis-benchmark's own default), LRANGE_SIZES ("100 600"),
# LRANGE_REQUESTS (20000 per run).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

ROUNDS=${ROUNDS:-5}
REQUESTS=${REQUESTS:-100000}
CLIENTS=${CLIENTS:-50}
DATA_SIZE=${DATA_SIZE:-1024}
PIPELINES=${PIPELINES:-"1 16"}
SETUPS=${SETUPS:-"direct sealcache haproxy"}
PARTS=${PARTS:-"setget incr default"}
INCR_REQUESTS=${INCR_REQUESTS:-50000}
INCR_TESTS=${INCR_TESTS:-"single:1:0 hot:20:0 hot:50:0 random:50:100000"}
DEFAULT_TESTS=${DEFAULT_TESTS:-"ping set get incr lpush rpush lpop rpop sadd hset spop zadd zpopmin lrange_100 lrange_300 lrange_500 lrange_600 mset"}
DEFAULT_REQUESTS=${DEFAULT_REQUESTS:-20000}
DEFAULT_DATA_SIZE=${DEFAULT_DATA_SIZE:-3}
LRANGE_SIZES=${LRANGE_SIZES:-"100 600"}
LRANGE_REQUESTS=${LRANGE_REQUESTS:-20000}
OUT_DIR="$ROOT/target/bench"
# BENCH_SEALCACHE_BIN: measure another build (scripts/bench-core.sh passes the proxy core without value encryption).
BIN="${BENCH_SEALCACHE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sealcache}"
CLK_TCK=$(getconf CLK_TCK)
PIN=${PIN:-0}
READY_SECONDS=60

read -r -a SETUP_LIST <<<"$SETUPS"
read -r -a PIPELINE_LIST <<<"$PIPELINES"
for setup in "${SETUP_LIST[@]}"; do
    case "$setup" in direct | sealcache | haproxy | core | before | memory) ;; *) die "unknown setup '$setup' in SETUPS" ;; esac
done
wants() { case " $SETUPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac }
wants direct || die "SETUPS must include direct: the ratios are relative to it"
# "core": the proxy core without value encryption (BENCH_CORE_BIN, built by scripts/bench-core.sh).
if wants core; then
    [ -x "${BENCH_CORE_BIN:-}" ] || die "SETUPS has core: set BENCH_CORE_BIN to that build (scripts/bench-core.sh does)"
fi
if wants before; then
    [ -x "${BENCH_BEFORE_BIN:-}" ] || die "SETUPS has before: set BENCH_BEFORE_BIN to that build (scripts/bench-before.sh does)"
fi

# pin CPU PID: with PIN=1, every thread of PID (and those it starts later) on CPU.
pin() {
    [ "$PIN" = 1 ] || return 0
    taskset -a -p -c "$1" "$2" >/dev/null || die "taskset could not pin $2 to CPU $1"
}
# bench_client ARGS: redis-benchmark, on CPU 0 with PIN=1.
bench_client() {
    if [ "$PIN" = 1 ]; then taskset -c 0 redis-benchmark "$@"; else redis-benchmark "$@"; fi
}

wants_part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac }
# The setups incr and default compare with direct: every sealcache build asked for.
PAIRED=()
for setup in sealcache memory before core; do wants "$setup" && PAIRED+=("$setup"); done
if [ -n "${PAIRED_SETUPS:-}" ]; then
    read -r -a PAIRED <<<"$PAIRED_SETUPS"
    for setup in "${PAIRED[@]}"; do
        [ "$setup" != direct ] && [ "$setup" != haproxy ] && wants "$setup" ||
            die "PAIRED_SETUPS: '$setup' is not a sealcache setup in SETUPS"
    done
fi
PAIRED_SETUPS="${PAIRED[*]}"
read -r -a INCR_TEST_LIST <<<"$INCR_TESTS"
read -r -a DEFAULT_TEST_LIST <<<"$DEFAULT_TESTS"
read -r -a LRANGE_SIZE_LIST <<<"$LRANGE_SIZES"

render_report() {
    # ---- report --------------------------------------------------------------------
    cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
    redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
    haproxy_version=$(haproxy -v 2>/dev/null | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')
    revision=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

    # The awk functions every table uses: median, and the paired ratio of two
    # setups (median of the per-round ratios, each round in brackets).
    AWK_LIB='
        function median(list,    n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            if (n == 0) return ""
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        # value[round, setup, group, name] of setup a over setup b.
        function paired(a, b, g, t,    r, x, d, list, each) {
            list = ""; each = ""
            for (r = 1; (r in rounds); r++) {
                d = value[r, b, g, t]; x = value[r, a, g, t]
                if (d > 0 && x != "") { list = list " " x / d; each = each (each == "" ? "" : " ") sprintf("%.2f", x / d) }
            }
            if (list == "") return "–"
            return sprintf("**%.2f** [%s]", median(list), each)
        }
    '

    {
        echo "## sealcache benchmark"
        echo
        echo "$(date -u '+%Y-%m-%d %H:%M UTC'), sealcache $revision; $(nproc) CPUs ($cpu_model);"
        echo "Redis $redis_version, HAProxy ${haproxy_version:-n/a}. $ROUNDS rounds, setups interleaved in rotating order;"
        echo "ratios are medians of per-round paired ratios (each round in brackets). Setups: $SETUPS."
        [ "$PIN" = 1 ] && echo "PIN=1: redis-server and redis-benchmark on CPU 0, each proxy on CPU 1."
        if wants_part setget; then
            echo
            echo "### SET and GET"
            echo
            echo "\`redis-benchmark --tls -t set,get -d $DATA_SIZE -c $CLIENTS -n $REQUESTS -P {$(echo "$PIPELINES" | tr ' ' ',')}\`."
            echo
            awk -F'\t' -v setups="$SETUPS" -v pipelines="$PIPELINES" "$AWK_LIB"'
            NR == 1 || $3 == "incr" || $3 == "default" { next }
            $4 == "rps" { rps[$2, $3, $5] = rps[$2, $3, $5] " " $6; value[$1, $2, $3, $5] = $6; rounds[$1] = 1 }
            $4 == "cpu_us" { cpu[$2, $3, $5] = cpu[$2, $3, $5] " " $6 }
            END {
                ns = split(setups, S, " "); np = split(pipelines, P, " "); nt = split("SET GET", T, " ")
                header = "| setup |"; rule = "|---|"
                for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) { header = header " " T[t] " -P " P[p] " |"; rule = rule "---:|" }

                print "Throughput, median requests/s:"; print ""; print header; print rule
                for (s = 1; s <= ns; s++) {
                    line = "| " S[s] " |"
                    for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) line = line sprintf(" %.0f |", median(rps[S[s], P[p], T[t]]))
                    print line
                }

                print ""; print "Ratio to direct TLS:"; print ""
                print header; print rule
                for (s = 1; s <= ns; s++) {
                    if (S[s] == "direct") continue
                    line = "| " S[s] " |"
                    for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) line = line " " paired(S[s], "direct", P[p], T[t]) " |"
                    print line
                }
                # Two builds of the proxy side by side: their ratio, paired per round.
                split("sealcache/core sealcache/before", R, " ")
                for (k = 1; k <= 2; k++) {
                    split(R[k], ab, "/")
                    if ((" " setups " ") !~ (" " ab[1] " ") || (" " setups " ") !~ (" " ab[2] " ")) continue
                    print ""; print "Ratio " ab[1] " / " ab[2] ":"; print ""
                    print header; print rule
                    line = "| " ab[1] " / " ab[2] " |"
                    for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) line = line " " paired(ab[1], ab[2], P[p], T[t]) " |"
                    print line
                }

                print ""; print "CPU-µs per request (median over rounds; SET+GET requests of a run):"; print ""
                nc = split("redis-server sealcache memory before core haproxy redis-benchmark", C, " ")
                line = "| setup | -P |"; rule = "|---|---:|"
                for (c = 1; c <= nc; c++) { line = line " " C[c] " |"; rule = rule "---:|" }
                print line " total |"; print rule "---:|"
                for (s = 1; s <= ns; s++) for (p = 1; p <= np; p++) {
                    line = "| " S[s] " | " P[p] " |"; total = 0
                    for (c = 1; c <= nc; c++) {
                        # Only the processes on the request path count for a setup.
                        onpath = (C[c] == "redis-server" && S[s] != "memory") || C[c] == "redis-benchmark" || C[c] == S[s]
                        m = median(cpu[S[s], P[p], C[c]])
                        if (onpath && m != "") { line = line sprintf(" %.1f |", m); total += m } else line = line " – |"
                    }
                    print line sprintf(" %.1f |", total)
                }
            }' "$RAW"
        fi
        if { wants_part incr || wants_part default; } && [ -n "$PAIRED_SETUPS" ]; then
            # table PART NAMES TITLE-COLUMN: one row per name (for default, each
            # test of redis-benchmark the name selects), requests/s and ratio per
            # paired setup, and the error replies of every setup's runs.
            table() {
                awk -F'\t' -v part="$1" -v names="$2" -v others="$PAIRED_SETUPS" "$AWK_LIB"'
                NR == 1 || $3 != part { next }
                $4 == "rps" { rps[$2, $5] = rps[$2, $5] " " $6; value[$1, $2, part, $5] = $6; rounds[$1] = 1; seen[$5] = 1 }
                $4 == "errors" { errors[$2, $5] += $6 }
                END {
                    np = split(others, S, " "); others_list = others; gsub(/ /, ", ", others_list)
                    line = "| test | direct requests/s |"; rule = "|---|---:|"
                    for (s = 1; s <= np; s++) { line = line " " S[s] " requests/s | " S[s] " / direct |"; rule = rule "---:|---:|" }
                    print line " error replies (direct" (np ? ", " others_list : "") ") |"; print rule "---:|"
                    nn = split(names, N, " ")
                    for (n = 1; n <= nn; n++) {
                        # The tests a name stands for: ping is PING_INLINE and PING_MBULK.
                        if (part == "default") { if (N[n] == "ping") nt = split("PING_INLINE PING_MBULK", T, " "); else nt = split(toupper(N[n]), T, " ") }
                        else nt = split(N[n], T, " ")
                        err = errors["direct", N[n]] + 0
                        for (s = 1; s <= np; s++) err = err ", " errors[S[s], N[n]] + 0
                        for (t = 1; t <= nt; t++) {
                            line = sprintf("| %s | %.0f |", T[t], median(rps["direct", T[t]]))
                            for (s = 1; s <= np; s++) line = line sprintf(" %.0f | %s |", median(rps[S[s], T[t]]), paired(S[s], "direct", part, T[t]))
                            print line " " err " |"
                        }
                    }
                }' "$RAW"
            }
            if wants_part incr; then
                echo
                echo "### INCR (computed by sealcache: read, decrypt, add, seal, write back atomically)"
                echo
                echo "\`redis-benchmark --tls -t incr -n $INCR_REQUESTS\` (a fifth of that for one client); name-clients; \`hot\`: one key, \`random\`: \`-r\` keys."
                echo
                names=""
                for test in "${INCR_TEST_LIST[@]}"; do
                    IFS=: read -r name clients _ <<<"$test"
                    names="$names $name-$clients"
                done
                table incr "$names"
            fi
            if wants_part default; then
                echo
                echo "### redis-benchmark's default test set"
                echo
                echo "\`redis-benchmark --tls -c $CLIENTS -n $DEFAULT_REQUESTS -d $DEFAULT_DATA_SIZE -t TEST\`, one run per test (lrange runs fill the list first)."
                echo
                table default "$DEFAULT_TESTS"
            fi
        fi
        if wants_part lrange && [ -n "$PAIRED_SETUPS" ]; then
            echo
            echo "### LRANGE of a filled list"
            echo
            echo "\`redis-benchmark --tls -c $CLIENTS -n $LRANGE_REQUESTS lrange KEY 0 N-1\` on a list of N 3-byte elements filled before the rounds."
            echo
            awk -F'\t' -v sizes="$LRANGE_SIZES" -v others="$PAIRED_SETUPS" "$AWK_LIB"'
            NR == 1 || $3 != "lrange" { next }
            $4 == "rps" { rps[$2, $5] = rps[$2, $5] " " $6; value[$1, $2, "lrange", $5] = $6; rounds[$1] = 1 }
            $4 == "cpu_us" { cpu[$2, $5] = cpu[$2, $5] " " $6 }
            END {
                np = split(others, S, " "); nz = split(sizes, Z, " ")
                line = "| test | direct requests/s |"; rule = "|---|---:|"
                for (s = 1; s <= np; s++) { line = line " " S[s] " requests/s | " S[s] " / direct |"; rule = rule "---:|---:|" }
                print line; print rule
                for (z = 1; z <= nz; z++) {
                    t = "LRANGE_" Z[z]
                    line = sprintf("| %s | %.0f |", t, median(rps["direct", t]))
                    for (s = 1; s <= np; s++) line = line sprintf(" %.0f | %s |", median(rps[S[s], t]), paired(S[s], "direct", "lrange", t))
                    print line
                }
                print ""; print "CPU-µs per LRANGE (median over rounds):"; print ""
                print "| test | setup | redis-server | proxy | redis-benchmark | total |"; print "|---|---|---:|---:|---:|---:|"
                for (z = 1; z <= nz; z++) {
                    t = "LRANGE_" Z[z]
                    split("direct " others, A, " ")
                    for (s = 1; (s in A); s++) {
                        r = median(cpu[A[s], t "/redis-server"]); c = median(cpu[A[s], t "/redis-benchmark"])
                        if (A[s] == "direct") { x = 0; xs = "–" } else { x = median(cpu[A[s], t "/" A[s]]); xs = sprintf("%.1f", x) }
                        if (A[s] == "memory") { r = 0; rs = "–" } else rs = sprintf("%.1f", r)
                        printf "| %s | %s | %s | %s | %.1f | %.1f |\n", t, A[s], rs, xs, c, r + x + c
                    }
                }
            }' "$RAW"
        fi
    } | tee "$OUT_DIR/results.md"
    log "written to $OUT_DIR/results.md (raw rows: $RAW)"
}

# BENCH_REPORT_FROM=FILE: only the tables, from the raw rows of an earlier run
# (with the same SETUPS, PARTS and test lists).
if [ -n "${BENCH_REPORT_FROM:-}" ]; then
    OUT_DIR=$(dirname "$BENCH_REPORT_FROM")
    RAW=$BENCH_REPORT_FROM
    render_report
    exit 0
fi

apt_install_missing redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools
wants haproxy && apt_install_missing haproxy:haproxy

WORK=$(mktemp -d -t sealcache-bench.XXXXXX)
REDIS_PID='' SEALCACHE_PID='' HAPROXY_PID='' CORE_PID='' BEFORE_PID='' MEMORY_PID=''
cleanup() {
    stop_pid "$SEALCACHE_PID" sealcache
    stop_pid "$CORE_PID" core
    stop_pid "$BEFORE_PID" before
    stop_pid "$MEMORY_PID" memory
    stop_pid "$HAPROXY_PID" haproxy
    stop_pid "$REDIS_PID" redis-server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Not through SEALCACHE_*: those are configuration overrides for the proxy.
make_secrets

# ---- build and certificates ------------------------------------------------------
if [ -z "${BENCH_SEALCACHE_BIN:-}" ] && { wants sealcache || wants memory || [ -z "${BENCH_CERTS_DIR:-}" ]; }; then
    log "cargo build --release (sealcache)"
    build_release
fi
CERTS="$WORK/certs"
if [ -n "${BENCH_CERTS_DIR:-}" ]; then
    mkdir -p "$CERTS"
    cp "$BENCH_CERTS_DIR"/{ca.crt,server.crt,server.key} "$CERTS/"
    chmod 600 "$CERTS/server.key"
else
    "$BIN" certs generate --out "$CERTS" --hosts localhost,127.0.0.1 >/dev/null
fi

REDIS_PORT=$(free_port)
SEALCACHE_PORT=$(free_port)
HAPROXY_PORT=$(free_port)
CORE_PORT=$(free_port)
BEFORE_PORT=$(free_port)
MEMORY_PORT=$(free_port)

# ---- redis-server ------------------------------------------------------------------
start_redis "$REDIS_PORT"
pin 0 "$REDIS_PID"

# ---- sealcache -------------------------------------------------------------------
# start_proxy NAME BINARY PORT: a sealcache in front of the redis-server (or,
# for NAME memory, with one memory route and no upstream); prints its PID.
start_proxy() {
    local name=$1 binary=$2 port=$3
    write_sealcache_conf "$WORK/$name.yaml" "$port" "$REDIS_PORT" BENCH_CLIENT_PASSWORD
    case "$name" in
        memory)
            # The upstream: shorthand out, one memory backend on the default route in.
            drop_section "$WORK/$name.yaml" upstream
            cat >>"$WORK/$name.yaml" <<'CONF'
backends:
  scratch: {type: memory, max_memory: 256MiB}
routes:
  - {prefix: "", backend: scratch}
CONF
            ;;
    esac
    # Builds from before the admin listener (bf4463b) refuse its key: they have no listener to turn off.
    local checked
    checked=$(env BENCH_CLIENT_PASSWORD="$CLIENT_PASSWORD" "$binary" check-config --config "$WORK/$name.yaml" 2>&1 || true)
    case "$checked" in *'unknown configuration key `admin`'*) drop_section "$WORK/$name.yaml" admin ;; esac
    log "starting $name on TLS port $port" >&2
    env -u SEALCACHE_CONFIG BENCH_CLIENT_PASSWORD="$CLIENT_PASSWORD" \
        "$binary" serve --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 </dev/null &
    echo $!
}
# The proxies asked for, NAME BINARY each; NAME_PID (upper case) is set once it answers.
while read -r name binary; do
    wants "$name" || continue
    port_var="${name^^}_PORT"
    pid=$(start_proxy "$name" "$binary" "${!port_var}")
    printf -v "${name^^}_PID" '%s' "$pid"
    wait_ready "$name" "$pid" "${!port_var}" "$CLIENT_PASSWORD" "$WORK/$name.log" </dev/null
    pin 1 "$pid"
done <<PROXIES
sealcache $BIN
core ${BENCH_CORE_BIN:-}
before ${BENCH_BEFORE_BIN:-}
memory $BIN
PROXIES

# ---- haproxy -------------------------------------------------------------------
if wants haproxy; then
    (
        umask 077
        cat "$CERTS/server.crt" "$CERTS/server.key" >"$WORK/haproxy.pem"
        cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 5s
    timeout client 5m
    timeout server 5m
frontend redis_tls
    bind 127.0.0.1:$HAPROXY_PORT ssl crt $WORK/haproxy.pem
    default_backend redis
backend redis
    server redis 127.0.0.1:$REDIS_PORT ssl verify required ca-file $CERTS/ca.crt sni str(localhost) verifyhost localhost
EOF
    )
    haproxy -c -q -f "$WORK/haproxy.cfg" || die "haproxy rejected $WORK/haproxy.cfg"
    log "starting haproxy on TLS port $HAPROXY_PORT"
    haproxy -db -f "$WORK/haproxy.cfg" >"$WORK/haproxy.log" 2>&1 </dev/null &
    HAPROXY_PID=$!
    wait_ready haproxy "$HAPROXY_PID" "$HAPROXY_PORT" "$UPSTREAM_PASSWORD" "$WORK/haproxy.log"
    pin 1 "$HAPROXY_PID"
fi

port_of() {
    case "$1" in
        direct) echo "$REDIS_PORT" ;; sealcache) echo "$SEALCACHE_PORT" ;; haproxy) echo "$HAPROXY_PORT" ;;
        core) echo "$CORE_PORT" ;; before) echo "$BEFORE_PORT" ;; memory) echo "$MEMORY_PORT" ;;
    esac
}
password_of() {
    case "$1" in direct | haproxy) echo "$UPSTREAM_PASSWORD" ;; *) echo "$CLIENT_PASSWORD" ;; esac
}
# The server-side processes whose CPU each run is charged with.
processes() {
    echo "redis-server $REDIS_PID"
    [ -n "$SEALCACHE_PID" ] && echo "sealcache $SEALCACHE_PID"
    [ -n "$CORE_PID" ] && echo "core $CORE_PID"
    [ -n "$BEFORE_PID" ] && echo "before $BEFORE_PID"
    [ -n "$MEMORY_PID" ] && echo "memory $MEMORY_PID"
    [ -n "$HAPROXY_PID" ] && echo "haproxy $HAPROXY_PID"
    return 0
}

# ---- the runs ------------------------------------------------------------------
mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/raw.tsv"
printf 'round\tsetup\tpipeline\tmetric\tname\tvalue\n' >"$RAW"

# run_one ROUND SETUP PIPELINE: one redis-benchmark run; appends rps and CPU rows.
run_one() {
    local round=$1 setup=$2 pipeline=$3 port password csv="$WORK/run.csv" name pid
    port=$(port_of "$setup")
    password=$(password_of "$setup")
    declare -A before=()
    while read -r name pid; do before[$name]=$(cpu_ticks "$pid"); done < <(processes)
    # The subshell waits for redis-benchmark, so its cutime+cstime is the client's CPU.
    local client_ticks
    client_ticks=$(
        bench_client --tls --cacert "$CERTS/ca.crt" -h 127.0.0.1 -p "$port" \
            --user default -a "$password" -t set,get -d "$DATA_SIZE" -c "$CLIENTS" \
            -n "$REQUESTS" -P "$pipeline" --csv >"$csv" 2>"$WORK/bench.err" ||
            die "redis-benchmark against $setup failed: $(cat "$WORK/bench.err")"
        children_ticks "$BASHPID"
    )
    local total=$((2 * REQUESTS))
    awk -F'"' -v r="$round" -v s="$setup" -v p="$pipeline" \
        '$2 == "SET" || $2 == "GET" { printf "%s\t%s\t%s\trps\t%s\t%s\n", r, s, p, $2, $4 }' "$csv" >>"$RAW"
    grep -q '"GET"' "$csv" || die "no results from redis-benchmark against $setup: $(cat "$csv")"
    local after
    while read -r name pid; do
        after=$(cpu_ticks "$pid")
        cpu_row "$round" "$setup" "$pipeline" "$name" $((after - ${before[$name]})) "$total"
    done < <(processes)
    cpu_row "$round" "$setup" "$pipeline" redis-benchmark "$client_ticks" "$total"
}

# cpu_row ROUND SETUP PIPELINE PROCESS TICKS REQUESTS: clock ticks → µs per request.
cpu_row() {
    printf '%s\t%s\t%s\tcpu_us\t%s\t%s\n' "$1" "$2" "$3" "$4" \
        "$(awk -v d="$5" -v hz="$CLK_TCK" -v n="$6" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')" >>"$RAW"
}

# run_bench ROUND SETUP PART NAME REDIS-BENCHMARK-ARGS...: one redis-benchmark
# run; appends the rps of each test it reports (NAME for a run of one test;
# for PART default each test's own name, e.g. PING_INLINE, LRANGE_100) and the
# error replies it printed. redis-benchmark stops at the first error reply
# ("Error from server: …"), so a run that completes saw none.
run_bench() {
    local round=$1 setup=$2 part=$3 name=$4 out="$WORK/run.out"
    shift 4
    local extra=()
    # Options before "$@": a command to run (lrange KEY …) must come last.
    # Direct works in a database of its own: the proxies' values in 0 are sealed.
    [ "$setup" = direct ] && extra+=(--dbnum 9)
    if ! bench_client --tls --cacert "$CERTS/ca.crt" -h 127.0.0.1 -p "$(port_of "$setup")" \
        --user default -a "$(password_of "$setup")" -c "$CLIENTS" "${extra[@]}" --csv "$@" >"$out" 2>&1; then
        warn "redis-benchmark $* against $setup failed: $(tail -n 3 "$out")"
    fi
    local errors rows
    errors=$(grep -c 'Error from server' "$out" || true)
    # The lrange tests' own filling LPUSHes are not a test of the set.
    rows=$(awk -F'"' -v r="$round" -v s="$setup" -v part="$part" -v name="$name" '
        NF >= 4 && $2 != "test" && $2 !~ /needed to benchmark/ {
            short = $2; sub(/ \(.*/, "", short)
            printf "%s\t%s\t%s\trps\t%s\t%s\n", r, s, part, (part == "default" ? short : name), $4
        }' "$out")
    [ -n "$rows" ] || [ "$errors" -gt 0 ] ||
        die "no result from redis-benchmark $* against $setup: $(tail -n 5 "$out")"
    [ -n "$rows" ] && printf '%s\n' "$rows" >>"$RAW"
    printf '%s\t%s\t%s\terrors\t%s\t%s\n' "$round" "$setup" "$part" "$name" "$errors" >>"$RAW"
}

# run_incr ROUND SETUP NAME CLIENTS KEYSPACE: one `-t incr` run (`-r KEYSPACE`
# unless 0: one hot key).
run_incr() {
    local round=$1 setup=$2 name=$3 clients=$4 keyspace=$5 requests=$INCR_REQUESTS
    [ "$clients" -eq 1 ] && requests=$((INCR_REQUESTS / 5))
    local extra=()
    [ "$keyspace" -gt 0 ] && extra+=(-r "$keyspace")
    CLIENTS=$clients run_bench "$round" "$setup" incr "$name-$clients" -t incr -n "$requests" "${extra[@]}"
}


# run_paired ROUND COMMAND ARGS...: COMMAND ROUND SETUP ARGS for direct and each
# paired setup, the order rotating with the round.
run_paired() {
    local round=$1 fn=$2
    shift 2
    local all=(direct "${PAIRED[@]}") n i
    n=${#all[@]}
    for ((i = 0; i < n; i++)); do
        "$fn" "$round" "${all[$(((i + round - 1) % n))]}" "$@"
    done
}

run_default() {
    local round=$1 setup=$2 test=$3
    log "round $round/$ROUNDS  $test  $setup"
    run_bench "$round" "$setup" default "$test" -t "$test" -n "$DEFAULT_REQUESTS" -d "$DEFAULT_DATA_SIZE"
}

# lrange_key SETUP N: the list run_lrange reads; one per setup, since the
# proxies share database 0 (direct's lives in database 9).
lrange_key() { echo "bench:lrange:$1:$2"; }

# fill_lrange SETUP N: the list of N 3-byte elements, written through SETUP.
fill_lrange() {
    local setup=$1 n=$2 key db=0
    key=$(lrange_key "$setup" "$n")
    [ "$setup" = direct ] && db=9
    local cli=(redis-cli --tls --cacert "$CERTS/ca.crt" -h 127.0.0.1 -p "$(port_of "$setup")"
        --user default -a "$(password_of "$setup")" --no-auth-warning -n "$db")
    "${cli[@]}" DEL "$key" >/dev/null
    for ((i = 0; i < n; i++)); do echo "RPUSH $key xxx"; done | "${cli[@]}" >/dev/null
    [ "$("${cli[@]}" LLEN "$key")" = "$n" ] || die "could not fill $key with $n elements through $setup"
}

# run_lrange ROUND SETUP N: one LRANGE run; rps and the CPU-µs per request of
# every process on the path.
run_lrange() {
    local round=$1 setup=$2 n=$3 name pid test="LRANGE_$3"
    log "round $round/$ROUNDS  lrange $n  $setup"
    declare -A before=()
    while read -r name pid; do before[$name]=$(cpu_ticks "$pid"); done < <(processes)
    local client_ticks
    client_ticks=$(
        run_bench "$round" "$setup" lrange "$test" -n "$LRANGE_REQUESTS" lrange "$(lrange_key "$setup" "$n")" 0 $((n - 1)) >/dev/null
        children_ticks "$BASHPID"
    )
    local after
    while read -r name pid; do
        [ "$name" = redis-server ] || [ "$name" = "$setup" ] || continue
        after=$(cpu_ticks "$pid")
        cpu_row "$round" "$setup" lrange "$test/$name" $((after - ${before[$name]})) "$LRANGE_REQUESTS"
    done < <(processes)
    cpu_row "$round" "$setup" lrange "$test/redis-benchmark" "$client_ticks" "$LRANGE_REQUESTS"
}

run_incr_test() {
    local round=$1 setup=$2 name=$3 clients=$4 keyspace=$5
    log "round $round/$ROUNDS  incr $name -c $clients  $setup"
    run_incr "$round" "$setup" "$name" "$clients" "$keyspace"
}

log "running: ${ROUNDS} rounds × pipelines (${PIPELINES}) × setups (${SETUPS}); -n $REQUESTS -c $CLIENTS -d $DATA_SIZE; parts: $PARTS"
for ((round = 1; round <= ROUNDS; round++)); do
    # Rotate the order every round so no setup always runs first (or last).
    n=${#SETUP_LIST[@]}
    order=()
    for ((i = 0; i < n; i++)); do order+=("${SETUP_LIST[$(((i + round - 1) % n))]}"); done
    if wants_part setget; then
        for pipeline in "${PIPELINE_LIST[@]}"; do
            for setup in "${order[@]}"; do
                log "round $round/$ROUNDS  -P $pipeline  $setup"
                run_one "$round" "$setup" "$pipeline"
            done
        done
    fi
    if wants_part incr && [ "${#PAIRED[@]}" -gt 0 ]; then
        for test in "${INCR_TEST_LIST[@]}"; do
            IFS=: read -r name clients keyspace <<<"$test"
            run_paired "$round" run_incr_test "$name" "$clients" "$keyspace"
        done
    fi
    if wants_part default && [ "${#PAIRED[@]}" -gt 0 ]; then
        for test in "${DEFAULT_TEST_LIST[@]}"; do
            run_paired "$round" run_default "$test"
        done
    fi
    if wants_part lrange && [ "${#PAIRED[@]}" -gt 0 ]; then
        for n in "${LRANGE_SIZE_LIST[@]}"; do
            if [ "$round" -eq 1 ]; then
                for setup in direct "${PAIRED[@]}"; do fill_lrange "$setup" "$n"; done
            fi
            run_paired "$round" run_lrange "$n"
        done
    fi
done

render_report

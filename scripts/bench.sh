#!/usr/bin/env bash
# Throughput and CPU cost of sealcache against the alternatives, on this machine.
#
#   scripts/bench.sh            # 5 rounds; ROUNDS=9 REQUESTS=200000 scripts/bench.sh
#
# redis-benchmark -t set,get -d 1024 -c 50 -n REQUESTS at -P 1 and -P 16, over
# TLS, against three setups started here on free loopback ports:
#   direct     redis-server's TLS port
#   sealcache  the proxy (release build) in front of that redis-server
#   haproxy    an haproxy TLS-in/TLS-out TCP hop in front of it (what a user
#              would otherwise deploy to put TLS in front of Redis)
# The setups run interleaved within each round (rotating order), so drift
# affects all of them alike. Reported: median requests/s; the per-round paired
# ratio to direct TLS; the CPU-µs per request of every process (redis-server,
# sealcache, haproxy, redis-benchmark) from /proc/PID/stat utime+stime, because
# on a small machine the client, the proxy and Redis share the CPUs.
# Markdown goes to stdout and target/bench/results.md; raw rows to target/bench/raw.tsv.
#
# INCR, which sealcache computes itself (read, decrypt, add, seal, write back
# atomically), runs after SET/GET for direct and sealcache: one client, one hot
# key with 20 and 50 clients, and 50 clients over `-r 100000` random keys. Each
# reports the paired ratio to direct and the runs that ended on an error reply
# (redis-benchmark stops at the first), which must be 0.
#
# Environment: ROUNDS (5), REQUESTS (100000), CLIENTS (50), DATA_SIZE (1024),
# PIPELINES ("1 16"), SETUPS ("direct sealcache haproxy"), BENCH_CERTS_DIR (use
# ca.crt/server.crt/server.key from there instead of `sealcache certs generate`),
# BENCH_SEALCACHE_BIN (a sealcache binary to measure instead of building this tree),
# PARTS ("setget incr": which parts run), INCR_REQUESTS (50000 per INCR run; a
# fifth of it for the single client), INCR_TESTS ("single:1:0 hot:20:0 hot:50:0
# random:50:100000", each name:clients:keyspace, keyspace 0 = one hot key).
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
PARTS=${PARTS:-"setget incr"}
INCR_REQUESTS=${INCR_REQUESTS:-50000}
INCR_TESTS=${INCR_TESTS:-"single:1:0 hot:20:0 hot:50:0 random:50:100000"}
OUT_DIR="$ROOT/target/bench"
# BENCH_SEALCACHE_BIN: measure another build (scripts/bench-core.sh passes the proxy core without value encryption).
BIN="${BENCH_SEALCACHE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sealcache}"
CLK_TCK=$(getconf CLK_TCK)
READY_SECONDS=60

read -r -a SETUP_LIST <<<"$SETUPS"
read -r -a PIPELINE_LIST <<<"$PIPELINES"
for setup in "${SETUP_LIST[@]}"; do
    case "$setup" in direct | sealcache | haproxy | core) ;; *) die "unknown setup '$setup' in SETUPS" ;; esac
done
wants() { case " $SETUPS " in *" $1 "*) return 0 ;; *) return 1 ;; esac }
wants direct || die "SETUPS must include direct: the ratios are relative to it"
# "core": the proxy core without value encryption (BENCH_CORE_BIN, built by scripts/bench-core.sh).
if wants core; then
    [ -x "${BENCH_CORE_BIN:-}" ] || die "SETUPS has core: set BENCH_CORE_BIN to that build (scripts/bench-core.sh does)"
fi

apt_install_missing redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools
wants haproxy && apt_install_missing haproxy:haproxy

WORK=$(mktemp -d -t sealcache-bench.XXXXXX)
REDIS_PID='' SEALCACHE_PID='' HAPROXY_PID='' CORE_PID=''
cleanup() {
    stop_pid "$SEALCACHE_PID" sealcache
    stop_pid "$CORE_PID" core
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
if [ -z "${BENCH_SEALCACHE_BIN:-}" ] && { wants sealcache || [ -z "${BENCH_CERTS_DIR:-}" ]; }; then
    log "cargo build --release (sealcache)"
    (cd "$ROOT" && cargo build --release --locked --bin sealcache)
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

# ---- redis-server ------------------------------------------------------------------
start_redis "$REDIS_PORT"

# ---- sealcache -------------------------------------------------------------------
# start_proxy NAME BINARY PORT: a sealcache in front of the redis-server; prints its PID.
start_proxy() {
    local name=$1 binary=$2 port=$3
    write_sealcache_conf "$WORK/$name.yaml" "$port" "$REDIS_PORT" BENCH_CLIENT_PASSWORD
    log "starting $name on TLS port $port" >&2
    env -u SEALCACHE_CONFIG BENCH_CLIENT_PASSWORD="$CLIENT_PASSWORD" \
        "$binary" serve --config "$WORK/$name.yaml" >"$WORK/$name.log" 2>&1 </dev/null &
    echo $!
}
if wants sealcache; then
    SEALCACHE_PID=$(start_proxy sealcache "$BIN" "$SEALCACHE_PORT")
    wait_ready sealcache "$SEALCACHE_PID" "$SEALCACHE_PORT" "$CLIENT_PASSWORD" "$WORK/sealcache.log"
fi
if wants core; then
    CORE_PID=$(start_proxy core "$BENCH_CORE_BIN" "$CORE_PORT")
    wait_ready core "$CORE_PID" "$CORE_PORT" "$CLIENT_PASSWORD" "$WORK/core.log"
fi

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
fi

port_of() {
    case "$1" in direct) echo "$REDIS_PORT" ;; sealcache) echo "$SEALCACHE_PORT" ;; haproxy) echo "$HAPROXY_PORT" ;; core) echo "$CORE_PORT" ;; esac
}
password_of() {
    case "$1" in sealcache | core) echo "$CLIENT_PASSWORD" ;; *) echo "$UPSTREAM_PASSWORD" ;; esac
}
# The server-side processes whose CPU each run is charged with.
processes() {
    echo "redis-server $REDIS_PID"
    [ -n "$SEALCACHE_PID" ] && echo "sealcache $SEALCACHE_PID"
    [ -n "$CORE_PID" ] && echo "core $CORE_PID"
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
        redis-benchmark --tls --cacert "$CERTS/ca.crt" -h 127.0.0.1 -p "$port" \
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

# run_incr ROUND SETUP NAME CLIENTS KEYSPACE: one `-t incr` run (`-r KEYSPACE`
# unless 0: one hot key); appends its rps and the error replies it saw.
run_incr() {
    local round=$1 setup=$2 name=$3 clients=$4 keyspace=$5 out="$WORK/incr.out" requests=$INCR_REQUESTS
    [ "$clients" -eq 1 ] && requests=$((INCR_REQUESTS / 5))
    local extra=()
    [ "$keyspace" -gt 0 ] && extra+=(-r "$keyspace")
    # Direct counts in a database of its own: sealcache's counters in 0 are sealed.
    [ "$setup" = direct ] && extra+=(--dbnum 9)
    # redis-benchmark stops at the first error reply ("Error from server: …"),
    # so a run that completes saw none; the row records the ones it printed.
    local rps errors
    if ! redis-benchmark --tls --cacert "$CERTS/ca.crt" -h 127.0.0.1 -p "$(port_of "$setup")" \
        --user default -a "$(password_of "$setup")" -t incr -c "$clients" -n "$requests" \
        "${extra[@]}" --csv >"$out" 2>&1; then
        warn "redis-benchmark -t incr against $setup failed: $(tail -n 3 "$out")"
    fi
    rps=$(awk -F'"' '$2 == "INCR" { print $4 }' "$out")
    errors=$(grep -c 'Error from server' "$out" || true)
    [ -n "$rps" ] || [ "$errors" -gt 0 ] ||
        die "no INCR result from redis-benchmark against $setup: $(tail -n 5 "$out")"
    rps=${rps:-0}
    printf '%s\t%s\tincr\trps\t%s\t%s\n' "$round" "$setup" "$name-$clients" "$rps" >>"$RAW"
    printf '%s\t%s\tincr\terrors\t%s\t%s\n' "$round" "$setup" "$name-$clients" "$errors" >>"$RAW"
}

wants_part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac }
INCR_SETUP_LIST=()
for setup in direct sealcache; do wants "$setup" && INCR_SETUP_LIST+=("$setup"); done
read -r -a INCR_TEST_LIST <<<"$INCR_TESTS"

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
    if wants_part incr && [ "${#INCR_SETUP_LIST[@]}" -eq 2 ]; then
        for test in "${INCR_TEST_LIST[@]}"; do
            IFS=: read -r name clients keyspace <<<"$test"
            pair=("${INCR_SETUP_LIST[@]}")
            ((round % 2 == 0)) && pair=("${pair[1]}" "${pair[0]}")
            for setup in "${pair[@]}"; do
                log "round $round/$ROUNDS  incr $name -c $clients  $setup"
                run_incr "$round" "$setup" "$name" "$clients" "$keyspace"
            done
        done
    fi
done

# ---- report --------------------------------------------------------------------
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
redis_version=$(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')
haproxy_version=$(haproxy -v 2>/dev/null | sed -n '1s/^HAProxy version \([^ ]*\).*/\1/p')
revision=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

{
    echo "## sealcache benchmark"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), sealcache $revision; $(nproc) CPUs ($cpu_model);"
    echo "Redis $redis_version, HAProxy ${haproxy_version:-n/a}. \`redis-benchmark --tls -t set,get -d $DATA_SIZE -c $CLIENTS -n $REQUESTS -P {$(echo "$PIPELINES" | tr ' ' ',')}\`,"
    echo "$ROUNDS rounds, setups interleaved in rotating order. Reproduce: \`ROUNDS=$ROUNDS REQUESTS=$REQUESTS scripts/bench.sh\`."
    echo
    awk -F'\t' -v setups="$SETUPS" -v pipelines="$PIPELINES" '
        function median(list,    n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            if (n == 0) return ""
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        # "**median** [each round]" of the per-round ratios setup a / setup b.
        function paired(a, b, p, t,    r, x, d, list, each) {
            list = ""; each = ""
            for (r = 1; (r in rounds); r++) {
                d = value[r, b, p, t]; x = value[r, a, p, t]
                if (d > 0 && x != "") { list = list " " x / d; each = each (each == "" ? "" : " ") sprintf("%.2f", x / d) }
            }
            return sprintf("**%.2f** [%s]", median(list), each)
        }
        NR == 1 { next }
        $4 == "rps" { rps[$2, $3, $5] = rps[$2, $3, $5] " " $6; value[$1, $2, $3, $5] = $6; rounds[$1] = 1 }
        $4 == "cpu_us" { cpu[$2, $3, $5] = cpu[$2, $3, $5] " " $6 }
        END {
            ns = split(setups, S, " "); np = split(pipelines, P, " "); nt = split("SET GET", T, " ")
            header = "| setup |"; rule = "|---|"
            for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) { header = header " " T[t] " -P " P[p] " |"; rule = rule "---:|" }

            print "### Throughput: median requests/s"; print ""; print header; print rule
            for (s = 1; s <= ns; s++) {
                line = "| " S[s] " |"
                for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) line = line sprintf(" %.0f |", median(rps[S[s], P[p], T[t]]))
                print line
            }

            print ""; print "### Ratio to direct TLS: median of per-round paired ratios (each round in brackets)"; print ""
            print header; print rule
            for (s = 1; s <= ns; s++) {
                if (S[s] == "direct") continue
                line = "| " S[s] " |"
                for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) line = line " " paired(S[s], "direct", P[p], T[t]) " |"
                print line
            }
            if ((" " setups " ") ~ / sealcache / && (" " setups " ") ~ / core /) {
                print ""; print "### What value encryption costs: sealcache / core, median of per-round paired ratios"; print ""
                print header; print rule
                line = "| sealcache / core |"
                for (p = 1; p <= np; p++) for (t = 1; t <= nt; t++) line = line " " paired("sealcache", "core", P[p], T[t]) " |"
                print line
            }

            print ""; print "### CPU-µs per request (median over rounds; SET+GET requests of a run)"; print ""
            print "| setup | -P | redis-server | sealcache | core | haproxy | redis-benchmark | total |"
            print "|---|---:|---:|---:|---:|---:|---:|---:|"
            split("redis-server sealcache core haproxy redis-benchmark", C, " ")
            for (s = 1; s <= ns; s++) for (p = 1; p <= np; p++) {
                line = "| " S[s] " | " P[p] " |"; total = 0
                for (c = 1; c <= 5; c++) {
                    # Only the processes on the request path count for a setup.
                    onpath = (C[c] == "redis-server" || C[c] == "redis-benchmark" || C[c] == S[s])
                    m = median(cpu[S[s], P[p], C[c]])
                    if (onpath && m != "") { line = line sprintf(" %.1f |", m); total += m } else line = line " – |"
                }
                print line sprintf(" %.1f |", total)
            }
        }' "$RAW"
    if wants_part incr && [ "${#INCR_SETUP_LIST[@]}" -eq 2 ]; then
        echo
        echo "### INCR (computed by sealcache: read, decrypt, add, seal, write back atomically)"
        echo
        echo "\`redis-benchmark --tls -t incr -n $INCR_REQUESTS\` (a fifth of that for one client); \`hot\`: one key, \`random\`: \`-r\` keys."
        echo
        awk -F'\t' -v tests="$INCR_TESTS" '
            function median(list,    n, a, i, j, t) {
                n = split(list, a, " ")
                for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
                if (n == 0) return ""
                return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
            }
            NR == 1 || $3 != "incr" { next }
            $4 == "rps" { rps[$2, $5] = rps[$2, $5] " " $6; value[$1, $2, $5] = $6; rounds[$1] = 1 }
            $4 == "errors" { errors[$2, $5] += $6 }
            END {
                print "| test | -c | keys | direct requests/s | sealcache requests/s | sealcache / direct | runs with errors (direct, sealcache) |"
                print "|---|---:|---|---:|---:|---:|---:|"
                nt = split(tests, T, " ")
                for (t = 1; t <= nt; t++) {
                    split(T[t], f, ":"); name = f[1] "-" f[2]
                    list = ""; each = ""
                    for (r = 1; (r in rounds); r++) {
                        d = value[r, "direct", name]; x = value[r, "sealcache", name]
                        if (d > 0 && x != "") { list = list " " x / d; each = each (each == "" ? "" : " ") sprintf("%.2f", x / d) }
                    }
                    printf "| %s | %s | %s | %.0f | %.0f | **%.2f** [%s] | %d, %d |\n", f[1], f[2], (f[3] > 0 ? "-r " f[3] : "one"), \
                        median(rps["direct", name]), median(rps["sealcache", name]), median(list), each, \
                        errors["direct", name], errors["sealcache", name]
                }
            }' "$RAW"
    fi
} | tee "$OUT_DIR/results.md"
log "written to $OUT_DIR/results.md (raw rows: $RAW)"

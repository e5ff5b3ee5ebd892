#!/usr/bin/env bash
# GET/SET throughput and latency through sealcache on a DynamoDB route, against
# AWS DynamoDB Local (the emulator the tests use), and how many DynamoDB
# requests each Redis command costs.
#
#   scripts/bench-dynamodb.sh            # ROUNDS=5 REQUESTS=20000 scripts/bench-dynamodb.sh
#
# One sealcache (release build) with a single `type: dynamodb` backend on the
# default route, in front of DynamoDB Local started here (`-inMemory`, a free
# loopback port, as tests/it/support/dynamodb.rs starts it; scripts/test.sh
# installs it into target/dynamodb-local). Each round runs
# `redis-benchmark --tls -t set` and then `-t get` (-c CLIENTS, -d DATA_SIZE,
# -r KEYSPACE random keys) and reads sealcache's INFO before and after each run:
# the `backend_<name>_requests_*` fields count the DynamoDB requests by
# operation, so their growth over a run divided by its commands is the
# requests per command.
#
# The emulator is not DynamoDB: its throughput and latency (a Java process on
# this machine, no network, no throttling) say nothing about the real
# service's. The request counts do carry over: they are what sealcache sends.
#
# Environment: ROUNDS (3), REQUESTS (10000 per run), CLIENTS (50), DATA_SIZE
# (100), KEYSPACE (10000), BENCH_SEALCACHE_BIN (a binary instead of building this
# tree). Markdown goes to stdout and target/bench/dynamodb.md.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-10000}
CLIENTS=${CLIENTS:-50}
DATA_SIZE=${DATA_SIZE:-100}
KEYSPACE=${KEYSPACE:-10000}
BIN="${BENCH_SEALCACHE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sealcache}"
EMULATOR=${IT_DYNAMODB_LOCAL:-$ROOT/target/dynamodb-local}
OUT_DIR="$ROOT/target/bench"
BACKEND=shared
READY_SECONDS=90

[ -f "$EMULATOR/DynamoDBLocal.jar" ] ||
    die "no DynamoDBLocal.jar in $EMULATOR: run scripts/test.sh once (it installs DynamoDB Local there)"
apt_install_missing redis-cli:redis-tools redis-benchmark:redis-tools java:openjdk-17-jre-headless

WORK=$(mktemp -d -t sealcache-bench-dynamodb.XXXXXX)
DYNAMO_PID='' SEALCACHE_PID=''
cleanup() {
    stop_pid "$SEALCACHE_PID" sealcache
    stop_pid "$DYNAMO_PID" DynamoDBLocal
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

make_secrets
release_and_certs "${BENCH_SEALCACHE_BIN:-}"

# ---- DynamoDB Local ----------------------------------------------------------------
DYNAMO_PORT=$(free_port)
log "starting DynamoDB Local on port $DYNAMO_PORT"
(cd "$EMULATOR" && exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xss512k \
    -Djava.library.path="$EMULATOR/DynamoDBLocal_lib" -jar "$EMULATOR/DynamoDBLocal.jar" \
    -inMemory -disableTelemetry -port "$DYNAMO_PORT") >"$WORK/dynamodb.log" 2>&1 </dev/null &
DYNAMO_PID=$!
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_until "$READY_SECONDS" "DynamoDB Local on port $DYNAMO_PORT" port_open "$DYNAMO_PORT" ||
    die "DynamoDB Local did not open port $DYNAMO_PORT: $(tail -n 20 "$WORK/dynamodb.log")"

# ---- sealcache on a DynamoDB route ---------------------------------------------------
SEALCACHE_PORT=$(free_port)
write_sealcache_conf "$WORK/sealcache.yaml" "$SEALCACHE_PORT" 0 BENCH_CLIENT_PASSWORD
drop_section "$WORK/sealcache.yaml" upstream
cat >>"$WORK/sealcache.yaml" <<CONF
backends:
  $BACKEND: {type: dynamodb, table: sealcache_bench, region: us-east-1, endpoint_url: "http://127.0.0.1:$DYNAMO_PORT"}
routes:
  - {prefix: "", backend: $BACKEND}
CONF
log "starting sealcache on TLS port $SEALCACHE_PORT (table sealcache_bench)"
env -u SEALCACHE_CONFIG BENCH_CLIENT_PASSWORD="$CLIENT_PASSWORD" \
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    "$BIN" serve --config "$WORK/sealcache.yaml" >"$WORK/sealcache.log" 2>&1 </dev/null &
SEALCACHE_PID=$!
wait_ready sealcache "$SEALCACHE_PID" "$SEALCACHE_PORT" "$CLIENT_PASSWORD" "$WORK/sealcache.log"

# requests: "op count" lines, one per DynamoDB operation, from sealcache's INFO.
requests() {
    REDISCLI_AUTH="$CLIENT_PASSWORD" redis-cli --no-auth-warning --tls --cacert "$CERTS/ca.crt" \
        -h 127.0.0.1 -p "$SEALCACHE_PORT" --user default INFO proxy |
        tr -d '\r' | sed -n "s/^backend_${BACKEND}_requests_\([a-z_]*\):\([0-9]*\)$/\1 \2/p"
}

mkdir -p "$OUT_DIR"
RAW="$OUT_DIR/dynamodb.tsv"
printf 'round\ttest\tmetric\tvalue\n' >"$RAW"
for ((round = 1; round <= ROUNDS; round++)); do
    for test in set get; do
        log "round $round/$ROUNDS  $test"
        before=$(requests)
        [ -n "$before" ] || die "sealcache's INFO has no backend_${BACKEND}_requests_* fields"
        out="$WORK/run.out"
        redis-benchmark --tls --cacert "$CERTS/ca.crt" -h 127.0.0.1 -p "$SEALCACHE_PORT" \
            --user default -a "$CLIENT_PASSWORD" -t "$test" -n "$REQUESTS" -c "$CLIENTS" \
            -d "$DATA_SIZE" -r "$KEYSPACE" --csv >"$out" 2>&1 ||
            die "redis-benchmark -t $test failed: $(tail -n 3 "$out")"
        after=$(requests)
        # rps, avg, p50, p95, p99 latency (ms), and the error replies (must be 0).
        awk -F'"' -v r="$round" -v t="$test" 'NF >= 14 && $2 != "test" {
            printf "%s\t%s\trps\t%s\n%s\t%s\tavg_ms\t%s\n%s\t%s\tp50_ms\t%s\n%s\t%s\tp95_ms\t%s\n%s\t%s\tp99_ms\t%s\n", \
                r, t, $4, r, t, $6, r, t, $10, r, t, $12, r, t, $14 }' "$out" >>"$RAW"
        printf '%s\t%s\terrors\t%s\n' "$round" "$test" "$(grep -c 'Error from server' "$out" || true)" >>"$RAW"
        # DynamoDB requests per command, by operation.
        join <(sort <<<"$before") <(sort <<<"$after") |
            awk -v r="$round" -v t="$test" -v n="$REQUESTS" '$3 > $2 { printf "%s\t%s\tper_command:%s\t%.3f\n", r, t, $1, ($3 - $2) / n }' >>"$RAW"
    done
done

# ---- report --------------------------------------------------------------------
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
revision=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)
{
    echo "## sealcache on DynamoDB Local"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), sealcache $revision; $(nproc) CPUs ($cpu_model); DynamoDB Local from $EMULATOR."
    echo "\`redis-benchmark --tls -t set|get -n $REQUESTS -c $CLIENTS -d $DATA_SIZE -r $KEYSPACE\`, $ROUNDS rounds (medians)."
    echo "The emulator is not DynamoDB: throughput and latency of the real service differ; the request counts carry over."
    echo
    awk -F'\t' '
        function median(list,    n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            if (n == 0) return ""
            return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        NR == 1 { next }
        { v[$2, $3] = v[$2, $3] " " $4 }
        $3 ~ /^per_command:/ { sub(/^per_command:/, "", $3); ops[$2] = ops[$2] (index(ops[$2], " " $3 " ") ? "" : " " $3 " "); per[$2, $3] = per[$2, $3] " " $4 }
        $3 == "errors" { errors[$2] += $4 }
        END {
            print "| command | requests/s | avg ms | p50 ms | p95 ms | p99 ms | DynamoDB requests per command | error replies |"
            print "|---|---:|---:|---:|---:|---:|---|---:|"
            split("set get", T, " ")
            for (t = 1; t <= 2; t++) {
                n = split(ops[T[t]], O, " "); list = ""
                for (o = 1; o <= n; o++) list = list (list == "" ? "" : ", ") O[o] " " sprintf("%.2f", median(per[T[t], O[o]]))
                printf "| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %s | %d |\n", toupper(T[t]), median(v[T[t], "rps"]), median(v[T[t], "avg_ms"]), \
                    median(v[T[t], "p50_ms"]), median(v[T[t], "p95_ms"]), median(v[T[t], "p99_ms"]), (list == "" ? "none" : list), errors[T[t]]
            }
        }' "$RAW"
} | tee "$OUT_DIR/dynamodb.md"
log "written to $OUT_DIR/dynamodb.md (raw rows: $RAW)"

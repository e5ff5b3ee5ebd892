#!/usr/bin/env bash
# The whole test suite, from a fresh clone.
#
#   scripts/test.sh [extra arguments for the test runner, e.g. a test filter]
#
# 1. Installs what the tests need when it is missing: redis-server, redis-cli,
#    redis-benchmark (redis-tools) and haproxy with apt-get; AWS DynamoDB Local
#    (Java, from the npm registry) into target/dynamodb-local; the client
#    libraries for the real-client tests when those tests exist:
#      tests/clients/requirements.txt -> a venv in target/py-clients (redis-py),
#                                        exported to the tests as IT_PYTHON
#      tests/clients/package.json     -> tests/clients/node_modules (ioredis)
# 2. cargo build --all-targets, and a check that fuzz/Cargo.lock (the fuzz
#    crate's own lock file) still holds every dependency sealcache has, so
#    scripts/fuzz.sh builds from a fresh clone
# 3. The tests: cargo-nextest when installed (profile `ci` under CI), else
#    cargo test; then the doc tests (nextest does not run them).
# 4. Prints the runner's summary last; exits non-zero if anything failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
cd "$ROOT"

if [ -n "${CI:-}" ]; then
    export CARGO_TERM_COLOR=never
fi
# Tests must not see overrides meant for a locally running proxy.
for name in $(compgen -e); do
    case "$name" in SEALCACHE_*) unset "$name" ;; esac
done

# ---- 1. dependencies -----------------------------------------------------------
apt_install_missing redis-server:redis-server redis-cli:redis-tools \
    redis-benchmark:redis-tools haproxy:haproxy

CLIENTS="$ROOT/tests/clients"
if [ -f "$CLIENTS/requirements.txt" ]; then
    apt_install_missing python3:python3
    venv="$ROOT/target/py-clients"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
        log "creating $venv"
        python3 -m venv "$venv"
    fi
    log "pip install -r tests/clients/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$CLIENTS/requirements.txt"
    # tests/it/clients.rs runs redis_py_client.py with this interpreter.
    export IT_PYTHON="$venv/bin/python"
fi
if [ -f "$CLIENTS/package.json" ]; then
    apt_install_missing node:nodejs npm:npm
    log "npm install in tests/clients"
    if [ -f "$CLIENTS/package-lock.json" ]; then
        npm ci --prefix "$CLIENTS" --no-audit --no-fund --loglevel=error
    else
        npm install --prefix "$CLIENTS" --no-audit --no-fund --loglevel=error
    fi
fi

# AWS DynamoDB Local, for the DynamoDB backend's tests: AWS's emulator jar,
# from the npm package that carries it (see ../shared/ENVIRONMENT.md). It needs Java.
DYNAMODB_LOCAL="$ROOT/target/dynamodb-local"
if [ ! -f "$DYNAMODB_LOCAL/DynamoDBLocal.jar" ]; then
    apt_install_missing java:openjdk-17-jre-headless npm:npm
    log "npm pack amplify-dynamodb-simulator (DynamoDB Local) into target/dynamodb-local"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent amplify-dynamodb-simulator@2.9.30 >/dev/null &&
        tar xzf amplify-dynamodb-simulator-2.9.30.tgz package/emulator)
    mkdir -p "$ROOT/target"
    rm -rf "$DYNAMODB_LOCAL"
    mv "$tmp/package/emulator" "$DYNAMODB_LOCAL"
    rm -rf "$tmp"
fi
apt_install_missing java:openjdk-17-jre-headless
# tests/it/support/dynamodb.rs starts DynamoDB Local from here.
export IT_DYNAMODB_LOCAL="$DYNAMODB_LOCAL"

# ---- 2. build ------------------------------------------------------------------
log "cargo build --all-targets"
cargo build --all-targets --locked
# A dependency added to sealcache must be locked in fuzz/ too (cd fuzz && cargo
# metadata --offline --format-version 1 >/dev/null adds it), or fuzz.sh fails.
log "fuzz/Cargo.lock is current"
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null ||
    die "fuzz/Cargo.lock lacks sealcache's dependencies: run (cd fuzz && cargo metadata --offline --format-version 1 >/dev/null) and commit fuzz/Cargo.lock"

# ---- 3. tests ------------------------------------------------------------------
RESULTS=$(mktemp -t sealcache-test.XXXXXX)
trap 'rm -f "$RESULTS"' EXIT

status=0
if cargo nextest --version >/dev/null 2>&1; then
    runner=nextest
    profile=default
    [ -n "${CI:-}" ] && profile=ci
    log "cargo nextest run --all-targets --profile $profile"
    cargo nextest run --all-targets --locked --profile "$profile" --no-fail-fast "$@" 2>&1 |
        tee -a "$RESULTS" || status=1
else
    runner="cargo test"
    log "cargo test --all-targets (install cargo-nextest for a faster run and one summary line)"
    cargo test --all-targets --locked --no-fail-fast "$@" 2>&1 | tee -a "$RESULTS" || status=1
fi

# Doc tests only when there are no extra arguments (a filter is meant for the above).
doc_status=0
if [ "$#" -eq 0 ]; then
    log "cargo test --doc"
    cargo test --doc --locked 2>&1 | tee -a "$RESULTS" || doc_status=1
fi

# ---- 4. summary ----------------------------------------------------------------
# The runner's own summary comes last (the doc-test line, usually "0 passed",
# would otherwise be the last word), then one plain "N passed, N failed" line.
echo
log "summary ($runner)"
if [ "$#" -eq 0 ]; then
    grep -E '^test result:' "$RESULTS" | tail -n 1 | sed 's/^/doc tests: /' || true
fi
if [ "$runner" = nextest ]; then
    grep -E '^ +(FAIL|TIMEOUT|SIGSEGV|SIGABRT|LEAK-FAIL) \[' "$RESULTS" | sort -u || true
    summary=$(grep -E '^ *Summary \[' "$RESULTS" | tail -n 1 || true)
    passed=$(sed -nE 's/.* ([0-9]+) passed.*/\1/p' <<<"$summary")
    failed=$(sed -nE 's/.* ([0-9]+) failed.*/\1/p' <<<"$summary")
    [ "$status" -ne 0 ] && [ -z "$failed" ] && failed=1
    if [ "$status" -ne 0 ] || [ "$doc_status" -ne 0 ]; then log "FAILED"; else log "all tests passed"; fi
    echo "${summary:-no nextest summary (the build failed?)}"
    echo "${passed:-0} passed, ${failed:-0} failed"
else
    if [ "$status" -ne 0 ] || [ "$doc_status" -ne 0 ]; then log "FAILED"; else log "all tests passed"; fi
    awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i + 1) ~ /^passed/) passed += $i
                if ($(i + 1) ~ /^failed/) failed += $i
            }
        }
        END { printf "%d passed, %d failed\n", passed, failed }' "$RESULTS"
fi

if [ "$status" -ne 0 ] || [ "$doc_status" -ne 0 ]; then
    exit 1
fi

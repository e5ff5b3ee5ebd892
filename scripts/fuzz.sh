#!/usr/bin/env bash
# Coverage-guided fuzzing of sealcache's decoders with AFL++ (cargo-afl, stable toolchain).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # default: 600 s each, every target
#
# Targets (fuzz/fuzz_targets/, checks in fuzz/src/targets.rs):
#   request   the client request decoder (protocol::request::RequestCodec)
#   reply     the upstream reply scanner and decoder (protocol::scan, backend::redis::decode)
#   envelope  envelope parsing and opening (crypto::Sealer::open / open_member)
#   config    the configuration loader (YAML file + SEALCACHE_* environment)
#
# Runs the targets one after another, each for SECONDS, under `nice -n 10` (the
# machine is small and shared). Installs cargo-afl when it is missing (crates.io)
# and builds AFL++ with it. Seeds: fuzz/seeds/<target>/ and fuzz/regressions/<target>/.
# AFL++'s state goes to fuzz/target/afl/<target>/ and is resumed by the next run.
# A crash or hang found is copied to fuzz/target/findings/<target>/ and the
# script exits 1: fix it, then move the input to fuzz/regressions/<target>/, which
# the normal test suite replays (tests/it/fuzz_regressions.rs). Every run appends
# a line to fuzz/target/runs.tsv (date, target, seconds, executions, crashes, hangs).
#
# The test suite (scripts/test.sh, .ci/run) never runs this: only the replays.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

ALL_TARGETS=(request reply envelope config)
SECONDS_EACH=${1:-600}
case "$SECONDS_EACH" in '' | *[!0-9]*) die "SECONDS must be a number, not '$SECONDS_EACH'" ;; esac
shift || true
TARGETS=("$@")
[ "${#TARGETS[@]}" -eq 0 ] && TARGETS=("${ALL_TARGETS[@]}")
for target in "${TARGETS[@]}"; do
    case " ${ALL_TARGETS[*]} " in *" $target "*) ;; *) die "unknown target '$target' (targets: ${ALL_TARGETS[*]})" ;; esac
done

FUZZ="$ROOT/fuzz"
OUT="$FUZZ/target/afl"
FINDINGS="$FUZZ/target/findings"

if ! cargo afl --version >/dev/null 2>&1; then
    log "cargo install cargo-afl (crates.io)"
    cargo install cargo-afl --locked
fi
# Builds AFL++ for this toolchain once; "already built" is not an error.
cargo afl config --build >/dev/null 2>&1 || true

log "cargo afl build --release (fuzz/)"
(cd "$FUZZ" && nice -n 10 cargo afl build --release --locked)

# No UI (not a terminal), no CPU pinning (the cores are shared), no complaint
# about the host's core_pattern or CPU governor, which a container cannot change.
export AFL_NO_UI=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_AUTORESUME=1 AFL_SUPPRESS_ERROR_REPORTS=1
# A panic must abort at once: printing a backtrace takes long enough that AFL++
# would file the crash as a hang too.
export RUST_BACKTRACE=0

stat_of() { sed -n "s/^$1[[:space:]]*: *//p" "$2" 2>/dev/null | head -n 1; }

found=0
mkdir -p "$OUT" "$FINDINGS"
for target in "${TARGETS[@]}"; do
    seeds="$OUT/$target.seeds"
    rm -rf "$seeds"
    mkdir -p "$seeds"
    cp "$FUZZ/seeds/$target"/* "$seeds/"
    cp "$FUZZ/regressions/$target"/* "$seeds/" 2>/dev/null || true
    log "fuzzing $target for ${SECONDS_EACH}s"
    # -V: stop after that many seconds; -t: a hang is an input taking over 1 s.
    nice -n 10 cargo afl fuzz -i "$seeds" -o "$OUT/$target" -V "$SECONDS_EACH" -t 1000 \
        -- "$FUZZ/target/release/$target" >"$OUT/$target.log" 2>&1 ||
        die "AFL++ failed on $target (see $OUT/$target.log)"
    stats="$OUT/$target/default/fuzzer_stats"
    execs=$(stat_of execs_done "$stats")
    crashes=$(stat_of saved_crashes "$stats")
    hangs=$(stat_of saved_hangs "$stats")
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u '+%Y-%m-%dT%H:%MZ')" "$target" "$SECONDS_EACH" \
        "${execs:-0}" "${crashes:-0}" "${hangs:-0}" >>"$FUZZ/target/runs.tsv"
    log "$target: ${execs:-0} executions, ${crashes:-0} crashes, ${hangs:-0} hangs, corpus $(stat_of corpus_count "$stats")"
    for kind in crashes hangs; do
        for input in "$OUT/$target/default/$kind"/id:*; do
            [ -e "$input" ] || continue
            mkdir -p "$FINDINGS/$target"
            cp "$input" "$FINDINGS/$target/$kind-$(basename "$input" | tr ':,' '__')"
            found=1
        done
    done
done

if [ "$found" -ne 0 ]; then
    warn "findings in $FINDINGS: reproduce with $FUZZ/target/release/<target> < input"
    exit 1
fi
log "no crashes or hangs"

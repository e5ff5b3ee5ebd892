#!/usr/bin/env bash
# This tree against an earlier build, in one interleaved run of scripts/bench.sh:
# the earlier commit (BEFORE_REV, default bf4463b, the last commit before the
# backend contract of issue 8) runs as setup "before" beside "direct" and
# "sealcache", so README can put their ratios to direct TLS side by side.
#
#   scripts/bench-before.sh                  # same environment variables as scripts/bench.sh
#   BEFORE_REV=<commit> scripts/bench-before.sh
#
# The earlier tree is exported with `git archive` to target/bench/before-src
# and built there with its own target dir, target/bench/before-target (a
# first build takes several minutes; later runs of the same commit reuse it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

BEFORE_REV=${BEFORE_REV:-bf4463b}
SRC="$ROOT/target/bench/before-src"
TARGET="$ROOT/target/bench/before-target"
commit=$(git -C "$ROOT" rev-parse --verify "$BEFORE_REV^{commit}") || die "BEFORE_REV=$BEFORE_REV is not a commit"
if [ "$(cat "$SRC/.commit" 2>/dev/null)" != "$commit" ]; then
    rm -rf "$SRC"
    mkdir -p "$SRC"
    log "exporting $BEFORE_REV ($commit) to $SRC"
    git -C "$ROOT" archive "$commit" | tar -x -C "$SRC"
    echo "$commit" >"$SRC/.commit"
fi
log "cargo build --release (sealcache at $BEFORE_REV)"
build_release "$SRC" "$TARGET"
BENCH_BEFORE_BIN="$TARGET/release/sealcache" SETUPS="${SETUPS:-direct sealcache before}" \
    exec "$ROOT/scripts/bench.sh"

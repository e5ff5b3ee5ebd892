#!/usr/bin/env bash
# The proxy core's figure, measured in the same run as scripts/bench.sh's: this
# tree with value encryption switched off for the commands the benchmark sends
# (CORE_PASS) runs as setup "core" beside "direct" and "sealcache",
# interleaved, so README can compare the ratio to direct TLS with and without
# encryption.
#
#   scripts/bench-core.sh            # same environment variables as scripts/bench.sh
#
# The variant is built from a temporary copy of HEAD in target/bench/core-src
# (its own target dir, target/bench/core-target). It is a measuring instrument
# only: nothing here changes the product, which has no way to turn encryption off.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

SRC="$ROOT/target/bench/core-src"
TARGET="$ROOT/target/bench/core-target"
rm -rf "$SRC"
mkdir -p "$SRC"
log "copying HEAD to $SRC"
git -C "$ROOT" archive HEAD | tar -x -C "$SRC"
# The commands the benchmark sends for its values pass through unchanged in
# this build only: SET and GET, and the lists LRANGE reads.
CORE_PASS=${CORE_PASS:-"SET GET LPUSH RPUSH LRANGE"}
for name in $CORE_PASS; do
    sed -i -E "s/^(    c!\\(\"$name\", .*, )Encrypt\\([A-Za-z]+\\)(, x\\(\\).*)$/\\1Pass\\2/" "$SRC/src/commands/table.rs"
    grep -qE "^    c!\\(\"$name\", .*, Pass, x\\(\\)" "$SRC/src/commands/table.rs" || die "could not switch $name to pass in the core build"
done
log "cargo build --release (proxy core without value encryption)"
build_release "$SRC" "$TARGET"
# Interleaved with the real proxy in the same rounds, so the two ratios are comparable.
BENCH_CORE_BIN="$TARGET/release/sealcache" SETUPS="${SETUPS:-direct sealcache core}" exec "$ROOT/scripts/bench.sh"

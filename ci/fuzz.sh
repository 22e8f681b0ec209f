#!/usr/bin/env bash
# Short, bounded fuzz runs of crates/net's cargo-fuzz targets on the stable toolchain (`-s none`:
# no sanitizer, so no nightly flags are needed). Each target runs for SECONDS (default 30); a
# crash prints the tail of its log and fails. Longer runs: docs/design/tx-stream.md.
# Usage: ci/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/../crates/net/fuzz"
seconds="${1:-30}"
logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
for target in decode_tx stream_frame peer_frame; do
  log="$logs/$target.log"
  if ! cargo fuzz run "$target" -s none -- -max_total_time="$seconds" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed" >&2
    exit 1
  fi
  echo "fuzz $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
done

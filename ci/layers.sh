#!/usr/bin/env bash
# Crate layer check (style B2): every workspace dependency edge must go to a lower layer, and
# the pure crates must not pull in an async runtime.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo metadata --format-version 1 --no-deps --locked | python3 ci/layers.py

for pure in mempulse-primitives mempulse-mempool mempulse-schedule; do
  if cargo metadata --format-version 1 --no-deps --locked |
      python3 -c "import json,sys; sys.exit(0 if any(p['name']=='$pure' for p in json.load(sys.stdin)['packages']) else 1)"; then
    if cargo tree -e normal -p "$pure" --locked --prefix none | grep -qE '^tokio '; then
      echo "layer check: $pure (a pure crate) depends on tokio" >&2
      exit 1
    fi
  fi
done
echo "layer check: ok"

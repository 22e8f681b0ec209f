#!/usr/bin/env bash
# The whole test suite, as CI runs it. Installs what the tests need, then runs, in order:
# fmt, clippy (warnings denied), nextest, doctests, rustdoc (warnings denied), cargo-deny, and the
# crate layer check. Usage: ci/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# A one-off build on a fresh machine: incremental artifacts would only take disk (gigabytes).
export CARGO_INCREMENTAL=0

# Free space where the build and the tests write; the log shows it if a step runs out.
disk() { df -h "${CARGO_TARGET_DIR:-target}" "${TMPDIR:-/tmp}" 2>/dev/null | awk '!seen[$0]++'; }
mkdir -p "${CARGO_TARGET_DIR:-target}"
step "disk before the build"
disk

step "install test prerequisites"
ci/install.sh

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "clickhouse server (mempulse-sink-clickhouse's tests; stopped on exit)"
MEMPULSE_CLICKHOUSE_URL="$(ci/clickhouse.sh start)"
export MEMPULSE_CLICKHOUSE_URL
trap 'ci/clickhouse.sh stop' EXIT

step "disk before the tests"
disk

step "nextest"
cargo nextest run --workspace --all-features --locked --profile ci

step "doctests"
cargo test --workspace --doc --all-features --locked

step "rustdoc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "cargo-deny"
cargo deny --log-level error check bans licenses sources

step "layer check"
ci/layers.sh

step "fuzz (30 s per target)"
ci/fuzz.sh 30

step "all checks passed"

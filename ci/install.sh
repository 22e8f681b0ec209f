#!/usr/bin/env bash
# Installs what the test suite needs on a fresh machine. Idempotent: skips what is present.
set -euo pipefail

if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install cargo-nextest --locked
fi
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install cargo-deny --locked --no-default-features
fi
# cargo-fuzz for ci/fuzz.sh (stable toolchain with `-s none`; installs in about 40 s).
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
# The ClickHouse engine (PyPI chdb-core, in a venv under ~/.cache) for the sink tests.
"$(dirname "$0")/clickhouse.sh" install
# eth-account and web3 (PyPI, in a venv under ~/.cache) for the wallet end-to-end test.
"$(dirname "$0")/python-env.sh" >/dev/null

#!/usr/bin/env bash
# Provisions the Python interpreter the end-to-end tests drive real Ethereum client libraries with
# (eth-account, web3), in a virtualenv outside the repository, and prints its path. Idempotent:
# a venv whose imports work is reused. Override the location with MEMPULSE_E2E_VENV.
# Usage: ci/python-env.sh   (prints e.g. /home/u/.cache/mempulse/e2e-venv/bin/python)
set -euo pipefail

venv="${MEMPULSE_E2E_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mempulse/e2e-venv}"
python="$venv/bin/python"
check='import eth_account, web3'

if ! "$python" -c "$check" >/dev/null 2>&1; then
  mkdir -p "$(dirname "$venv")"
  # A lock so concurrent test processes provision once.
  exec 9>"$venv.lock"
  flock 9
  if ! "$python" -c "$check" >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$python" -m pip install --quiet --disable-pip-version-check 'eth-account>=0.13' 'web3>=7' >&2
    "$python" -c "$check"
  fi
fi
echo "$python"

#!/usr/bin/env bash
# A real ClickHouse server on 127.0.0.1 for mempulse-sink-clickhouse's tests and bench: the
# ClickHouse engine that PyPI's chdb-core ships, serving ClickHouse's own HTTP interface (see
# ci/clickhouse_server.py and docs/design/sink-clickhouse.md). The engine is installed in a venv
# outside the repository; the server's data, log, pid and URL live under target/clickhouse.
#
# Usage: ci/clickhouse.sh install   provision the venv (idempotent)
#        ci/clickhouse.sh start     install if needed, start (or reuse) the server, print its URL
#        ci/clickhouse.sh stop      stop the server started from this tree
#        ci/clickhouse.sh status    print the URL and exit 0 if it answers, else exit 1
# Then: export MEMPULSE_CLICKHOUSE_URL="$(ci/clickhouse.sh start)"
# Env: MEMPULSE_CLICKHOUSE_VENV (venv path), MEMPULSE_CLICKHOUSE_DIR (state dir),
#      MEMPULSE_CLICKHOUSE_LIFETIME_S (the server stops by itself after this; default 6 h).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
chdb_version="26.9.0"
venv="${MEMPULSE_CLICKHOUSE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mempulse/chdb-venv}"
state="${MEMPULSE_CLICKHOUSE_DIR:-${CARGO_TARGET_DIR:-$root/target}/clickhouse}"
python="$venv/bin/python"
check="import chdb, sys; sys.exit(chdb.__version__ != '$chdb_version')"

install() {
  if "$python" -c "$check" >/dev/null 2>&1; then
    return
  fi
  mkdir -p "$(dirname "$venv")"
  # A lock so concurrent test processes provision once.
  exec 9>"$venv.lock"
  flock 9
  if ! "$python" -c "$check" >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    # The engine alone: pandas and pyarrow are only for chdb's DataFrame results.
    "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
      "chdb-core==$chdb_version" >&2
    "$python" -c "$check"
  fi
  exec 9>&-
}

server() {
  python3 "$root/ci/clickhouse_server.py" "$@" --state "$state" --python "$python"
}

case "${1:-}" in
  install) install ;;
  start) install; server start ;;
  stop) server stop ;;
  status) server status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac

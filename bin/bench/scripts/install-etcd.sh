#!/usr/bin/env bash
# Installs etcd (server and etcdctl) for the peer runs of `mempulse-bench cluster` and
# `mempulse-bench failover`. Not run by CI: the benchmarks are measured by hand.
#
# Debian/Ubuntu: the distribution's etcd-server package (Debian 12: etcd 3.4.23). The package
# may enable an etcd systemd unit; the benchmarks never use it (they start their own members
# on free loopback ports with temp data dirs).
set -euo pipefail

if command -v etcd >/dev/null 2>&1; then
    echo "etcd already installed: $(etcd --version | head -n 1)" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "no apt-get here: install etcd >= 3.4 so that \`etcd\` is in PATH" >&2
    echo "(https://etcd.io/docs/latest/install/)" >&2
    exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
$sudo apt-get update
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y etcd-server etcd-client
# A unit the package started (on systems with systemd) would hold the default ports; the
# benchmarks use free ports, so stopping it is only tidiness.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    $sudo systemctl stop etcd || true
fi
echo "installed: $(etcd --version | head -n 1)" >&2

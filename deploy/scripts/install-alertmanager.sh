#!/usr/bin/env bash
# Install Prometheus Alertmanager from the Debian package when it is missing.
#
# Idempotent: does nothing when /usr/bin/prometheus-alertmanager exists. Non-interactive.
# Needs root (or passwordless sudo) and a reachable Debian mirror. The package's postinst
# may try to start the service; in containers policy-rc.d refuses, so nothing is left running.
# Used by the `alertmanager` integration tests (tests/integration/conftest.py).
#
# Exit 0 when the binary is present afterwards; otherwise one line on stderr and exit 1.
set -euo pipefail

BIN=/usr/bin/prometheus-alertmanager
PKG=prometheus-alertmanager

if [[ -x "$BIN" ]]; then
    exit 0
fi

fail() {
    echo "install-alertmanager: $1" >&2
    exit 1
}

SUDO=""
if [[ "${EUID}" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: run 'apt-get install $PKG' as root"
    SUDO="sudo -n"
fi
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: install $PKG (Alertmanager 0.25+) by hand so $BIN exists"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q >"$log" 2>&1; then
    fail "apt-get update failed ($(tail -n 1 "$log")): check the network and /etc/apt/sources.list, then re-run"
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "$PKG" >"$log" 2>&1; then
    fail "apt-get install $PKG failed ($(tail -n 1 "$log")): fix apt, then re-run"
fi
[[ -x "$BIN" ]] || fail "$PKG installed but $BIN is missing: check 'dpkg -L $PKG'"

#!/usr/bin/env bash
# Install the PostgreSQL server binaries from the Debian package when they are missing.
#
# Idempotent and quiet: does nothing when initdb is found (on PATH or in
# /usr/lib/postgresql/<version>/bin). Non-interactive. Needs root (or passwordless sudo) and
# a reachable Debian mirror. The package's postinst may create and try to start a system
# cluster; in containers policy-rc.d refuses, and the tests never use it: they run their own
# server in a temp dir (tests/postgres_server.py).
#
# Exit 0 when initdb is present afterwards; otherwise one line on stderr and exit 1.
set -euo pipefail

PKG=postgresql

have_initdb() {
    command -v initdb >/dev/null 2>&1 && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null
}

if have_initdb; then
    exit 0
fi

fail() {
    echo "install-postgresql: $1" >&2
    exit 1
}

SUDO=""
if [[ "${EUID}" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: run 'apt-get install $PKG' as root"
    SUDO="sudo -n"
fi
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: install PostgreSQL 13+ by hand so initdb is on PATH (or set DRIFTGATE_PG_BIN)"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get update -q >"$log" 2>&1; then
    fail "apt-get update failed ($(tail -n 1 "$log")): check the network and /etc/apt/sources.list, then re-run"
fi
if ! $SUDO apt-get install -y -q --no-install-recommends "$PKG" >"$log" 2>&1; then
    fail "apt-get install $PKG failed ($(tail -n 1 "$log")): fix apt, then re-run"
fi
have_initdb || fail "$PKG installed but no initdb in /usr/lib/postgresql/*/bin: check 'dpkg -L postgresql-common'"

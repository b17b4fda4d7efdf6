#!/usr/bin/env bash
# Idempotent: installs the Debian PostgreSQL server when its binaries are
# missing. The server's tests start their own PostgreSQL from these binaries
# (initdb into a temporary directory, a loopback port); nothing is started
# or enabled here.
set -euo pipefail

log() { printf 'setup-postgres: %s\n' "$*"; }

# shellcheck disable=SC2012
initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)"
if [ -n "$initdb" ] && [ -x "$initdb" ]; then
  log "PostgreSQL present ($initdb)"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
log "installing the Debian package postgresql"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
# The package may start a system cluster; the tests do not use it.
initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$initdb" ]; then
  log "postgresql installed but no initdb under /usr/lib/postgresql/*/bin" >&2
  exit 1
fi
log "PostgreSQL installed ($initdb)"

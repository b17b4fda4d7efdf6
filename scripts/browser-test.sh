#!/usr/bin/env bash
# Browser tests of the web UI: Debian Chromium driven headless by
# playwright-core (tests/browser/). Installs what is missing (idempotent):
# the chromium and chromium-driver packages, and the test's npm packages.
# Builds nothing: run `cargo build --release` first.
#
# SAFECITY_UPDATE_SCREENSHOTS=1 also rewrites docs/search.png and
# docs/operations.png; screenshots of every step go to target/browser/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
SERVER_BIN="${SAFECITY_SERVER_BIN:-$ROOT/target/release/safecity-server}"

log() { printf 'browser-test: %s\n' "$*"; }
die() { printf 'browser-test: %s\n' "$*" >&2; exit 1; }

if [ ! -x "$SERVER_BIN" ]; then
  die "$SERVER_BIN is missing: run 'cargo build --release -p safecity-server' (or make build) first"
fi

if [ ! -x "$CHROMIUM" ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "installing Debian packages: chromium chromium-driver"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi
[ -x "$CHROMIUM" ] || die "$CHROMIUM is still missing after installing chromium"

command -v node >/dev/null || die "node is missing: install Node.js 20 or later"
command -v npm >/dev/null || die "npm is missing: install Node.js with npm"
cd "$ROOT/tests/browser"
if [ ! -d node_modules/playwright-core ]; then
  log "installing playwright-core (npm ci; it downloads no browser)"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "$("$CHROMIUM" --version 2>/dev/null || echo chromium), node $(node --version)"
export CHROMIUM SAFECITY_SERVER_BIN="$SERVER_BIN"
exec node --test --test-reporter=spec .

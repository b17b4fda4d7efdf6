#!/usr/bin/env bash
# The server benchmark: makes sure PostgreSQL is installed, starts a throwaway
# cluster (scripts/bench-postgres.sh), runs target/release/server-bench against
# the embedded store, our PostgreSQL backend and the plain-PostgreSQL
# baseline, writes target/bench/server.json, and stops the cluster.
#
# Environment: EVENTS (default 10000000), PLATES (1000000), SEED (1);
# further arguments go to server-bench (see `server-bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'bench-server: %s\n' "$*" >&2; }

bash scripts/setup-postgres.sh >&2
cargo build --release --locked -p safecity-benches --bin server-bench >&2

mkdir -p target/bench
pgdir=$(mktemp -u /tmp/safecity-bench-pg.XXXXXX)
trap 'bash scripts/bench-postgres.sh stop "$pgdir"' EXIT
url=$(bash scripts/bench-postgres.sh start "$pgdir")

log "server-bench ${EVENTS:-10000000} events, ${PLATES:-1000000} plates"
target/release/server-bench \
  --events "${EVENTS:-10000000}" --plates "${PLATES:-1000000}" --seed "${SEED:-1}" \
  --backend both --postgres "$url" \
  --data-dir target/bench/server-data --json target/bench/server.json "$@"

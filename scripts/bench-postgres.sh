#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the server benchmark.
#
#   scripts/bench-postgres.sh start DIR   initdb in DIR, start on a free loopback
#                                         port, print the administrator's URL
#   scripts/bench-postgres.sh stop DIR    stop it and remove DIR
#
# DIR must not exist yet (start makes it). It runs the newest installed Debian
# PostgreSQL (/usr/lib/postgresql/*/bin, or $SAFECITY_PG_BIN); as root it runs
# as the `postgres` user (or `nobody`), since PostgreSQL refuses root. Trust
# authentication, listening on 127.0.0.1 only.
#
# Settings for a bulk-load benchmark on one machine (written to
# postgresql.auto.conf; the benchmark reports them again from the server):
#   shared_buffers = 2GB, effective_cache_size = 12GB, work_mem = 64MB,
#   maintenance_work_mem = 1GB (index builds), max_wal_size = 16GB and
#   checkpoint_timeout = 30min (no forced checkpoints during the loads),
#   random_page_cost = 1.1 (SSD).
# Durability is left at the defaults: fsync = on, synchronous_commit = on,
# full_page_writes = on, wal_level = replica. Our PostgreSQL backend's ingest
# is acknowledged after a durable commit, so it is measured that way.
set -euo pipefail

log() { printf 'bench-postgres: %s\n' "$*" >&2; }
usage() { log "usage: $0 start DIR | stop DIR"; exit 2; }

[ $# -eq 2 ] || usage
cmd=$1
dir=$2

bin=${SAFECITY_PG_BIN:-}
if [ -z "$bin" ]; then
  # shellcheck disable=SC2012
  initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n1 || true)"
  [ -n "$initdb" ] || { log "PostgreSQL is not installed; run scripts/setup-postgres.sh"; exit 1; }
  bin=$(dirname "$initdb")
fi

# Runs a PostgreSQL program as a user PostgreSQL accepts.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    local user=postgres
    id -u postgres >/dev/null 2>&1 || user=nobody
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  local port
  for port in $(seq 55400 55499); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  log "no free port in 55400-55499"
  exit 1
}

case "$cmd" in
  start)
    [ ! -e "$dir" ] || { log "$dir exists; stop the old cluster or pick another folder"; exit 1; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
      user=postgres
      id -u postgres >/dev/null 2>&1 || user=nobody
      chown "$user" "$dir"
    fi
    as_pg "$bin/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    port=$(free_port)
    cat >>"$dir/data/postgresql.auto.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 100
shared_buffers = '2GB'
effective_cache_size = '12GB'
work_mem = '64MB'
maintenance_work_mem = '1GB'
max_wal_size = '16GB'
checkpoint_timeout = '30min'
random_page_cost = 1.1
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    echo "$port" >"$dir/port"
    log "PostgreSQL from $bin on 127.0.0.1:$port, data in $dir/data"
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *)
    usage
    ;;
esac

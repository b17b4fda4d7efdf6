#!/usr/bin/env bash
# `make demo`: the whole chain on one machine. The search server on its
# embedded store, the scene simulator playing the hit-and-run scenario on 4
# cameras and a pillar, and the edge analysing those streams and forwarding
# to the server. Runs until Ctrl-C, then stops everything.
#
# Ports (override with the variables): server 8080, RTSP 8554, edge API 8091;
# SAFECITY_DEMO_DIR for the logs and data, SAFECITY_DEMO_BIN for the binaries.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVER_PORT="${SAFECITY_DEMO_SERVER_PORT:-8080}"
RTSP_PORT="${SAFECITY_DEMO_RTSP_PORT:-8554}"
EDGE_PORT="${SAFECITY_DEMO_EDGE_PORT:-8091}"
DEMO="${SAFECITY_DEMO_DIR:-$ROOT/target/demo}"
BIN="${SAFECITY_DEMO_BIN:-$ROOT/target/release}"
SERVER="http://127.0.0.1:$SERVER_PORT"

for port in "$SERVER_PORT" "$RTSP_PORT" "$EDGE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is taken; stop what uses it or set SAFECITY_DEMO_*_PORT" >&2
    exit 1
  fi
done

mkdir -p "$DEMO"
rm -rf "$DEMO/spool" "$DEMO/server-data"
pids=()
stopping=""
stop() {
  stopping=1
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  # The edge first, so that it hands its open passes to the spool.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -INT "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo "demo: stopped; logs in $DEMO"
}
trap stop INT TERM EXIT

token() { "$BIN/safecity-server" token create --data-dir "$DEMO/server-data" --role "$1" --name "$2"; }
ADMIN_TOKEN="demo-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
EDGE_TOKEN="$(token edge edge-demo)"
INVESTIGATOR_TOKEN="$(token investigator demo-investigator)"
OPERATOR_TOKEN="$(token operator demo-operator)"

echo "demo: starting the search server on $SERVER"
SAFECITY_ADMIN_TOKEN="$ADMIN_TOKEN" "$BIN/safecity-server" --data-dir "$DEMO/server-data" \
  --listen "127.0.0.1:$SERVER_PORT" >"$DEMO/server.out" 2>"$DEMO/server.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -sf "$SERVER/healthz" >/dev/null && break
  sleep 0.1
done

echo "demo: starting the simulator (the first start renders the streams: a few minutes; later starts reuse them)"
"$BIN/safecity-edge" simulate --scenario hit-and-run --width 1280 --height 720 \
  --rtsp-port "$RTSP_PORT" --truth "$DEMO/truth.jsonl" \
  --alarm-url "http://127.0.0.1:$EDGE_PORT/api/v1/alarm" >"$DEMO/simulator.out" 2>"$DEMO/simulator.log" &
pids+=($!)
until grep -q '^ground truth:' "$DEMO/simulator.out" 2>/dev/null; do
  if ! kill -0 "${pids[-1]}" 2>/dev/null; then
    echo "demo: the simulator stopped; see $DEMO/simulator.log" >&2
    exit 1
  fi
  sleep 1
done

# Lines like: stream alm-cam-0001 camera rtsp://...  (Abay Ave / Dostyk Ave, 43.24035,76.95720)
api() { curl -sf -H "Authorization: Bearer $ADMIN_TOKEN" -H 'Content-Type: application/json' "$@"; }
{
  cat <<TOML
edge_id = "edge-demo"
[server]
url = "$SERVER"
token = "$EDGE_TOKEN"
[spool]
dir = "$DEMO/spool"
[api]
listen = "127.0.0.1:$EDGE_PORT"
[models]
threads = 2
TOML
  sed -nE 's/^stream (\S+) (\S+) (\S+)  \((.*), ([-0-9.]+),([-0-9.]+)\)$/\1|\2|\3|\4|\5|\6/p' "$DEMO/simulator.out" |
    while IFS='|' read -r id kind url name lat lon; do
      api -X PUT "$SERVER/api/v1/cameras/$id" \
        -d "{\"name\":\"$name\",\"kind\":\"$kind\",\"lat\":$lat,\"lon\":$lon}" >/dev/null
      if [[ "$kind" == pillar ]]; then section="[[pillars]]"; else section="[[cameras]]"; fi
      printf '%s\nid = "%s"\nurl = "%s"\nlat = %s\nlon = %s\n' "$section" "$id" "$url" "$lat" "$lon"
    done
} >"$DEMO/edge.toml"

# The operations centre watches for the fleeing car's plate.
api -X POST "$SERVER/api/v1/watchlist" \
  -d '{"pattern":"715KXM02","reason":"demo: hit-and-run suspect","priority":"high"}' >/dev/null

echo "demo: starting the edge ($DEMO/edge.toml)"
"$BIN/safecity-edge" run --config "$DEMO/edge.toml" >"$DEMO/edge.out" 2>"$DEMO/edge.log" &
pids+=($!)

cat <<MSG

safecity demo is running.

  web UI          $SERVER   (log in with a token below; embedded store in $DEMO/server-data)
  edge            local API http://127.0.0.1:$EDGE_PORT/metrics
  cameras         rtsp://127.0.0.1:$RTSP_PORT/alm-cam-0001 .. 0004, pillar alm-pil-0001

Demo credentials (bearer tokens):
  admin          $ADMIN_TOKEN
  investigator   $INVESTIGATOR_TOKEN
  operator       $OPERATOR_TOKEN

The story: at 20 s into the 150 s loop a white car, plate 715 KXM 02, passes
Abay/Dostyk; a witness presses the pillar at 24 s; the car flees west past
three more cameras. 715KXM02 is on the watchlist.

Try:
  # live alerts (hotlist hits and the pillar alarm)
  curl -N -H "Authorization: Bearer $OPERATOR_TOKEN" $SERVER/api/v1/alerts/stream
  # where was the car seen?
  curl -H "Authorization: Bearer $INVESTIGATOR_TOKEN" "$SERVER/api/v1/search?plate=715KXM02&mode=fuzzy&max_distance=2&reason=demo"
  curl -H "Authorization: Bearer $INVESTIGATOR_TOKEN" "$SERVER/api/v1/plates/715KXM02/track?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00Z&reason=demo"

Logs: $DEMO/*.log. Stop with Ctrl-C.
MSG

wait -n "${pids[@]}" || true
if [[ -z "$stopping" ]]; then
  echo "demo: a process stopped on its own; see the logs in $DEMO" >&2
fi

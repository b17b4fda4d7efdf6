#!/usr/bin/env bash
# The demo: the simulator plays the built-in hit-and-run scenario.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${SAFECITY_DEMO_RTSP_PORT:-8554}"
cat <<MSG
safecity demo: the scene simulator plays a hit-and-run on Abay Avenue,
Almaty, on 4 road cameras and 1 panic pillar.

The first start renders the streams (a few minutes; they are cached by seed,
so later starts are immediate). Then watch a camera with, for example:

  gst-launch-1.0 playbin uri=rtsp://127.0.0.1:$PORT/cam1

The fleeing car carries plate 715 KXM 02. The ground truth of every vehicle
pass and pillar press is written to target/demo-truth.jsonl as it happens.
Stop with Ctrl-C.

MSG
mkdir -p "$ROOT/target"
exec "$ROOT/target/release/safecity-edge" simulate --scenario hit-and-run \
  --width 1280 --height 720 --rtsp-port "$PORT" --truth "$ROOT/target/demo-truth.jsonl"

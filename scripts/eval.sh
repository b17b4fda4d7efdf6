#!/usr/bin/env bash
# `make eval`: scores the shipped models through the Rust sessions on a
# simulator hold-out (rendered once, then reused), on every real data set
# in ../shared/data/real that is here (see its SOURCES.md), and times both
# models:
#   openalpr-us/        US photos with plate boxes and texts (test split)
#   argentina-crops/    plate crops with texts: the reader alone
#                       (GPL-3.0: validation only)
#   romania-dashcam/    dashcam frames with plate boxes, no texts; their
#                       texts are in models/train/labels/ (the validation
#                       rides' legible plates are read)
#   car-detection.mp4   a traffic clip, no labels, no readable plates: the
#                       plate reads a user would be shown are all false
# A set that is not here is skipped with a note. The report goes to stdout,
# the numbers to target/eval/eval.json, one key per set.
#
# EVAL_SEED (default 1000) and EVAL_IMAGES (default 1000) pick the hold-out;
# its seed must stay apart from the seeds the models were trained on.
# EVAL_VIDEO_EVERY (default 1: every frame; the clip is 30 s) analyses every
# Nth frame of the clip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEED="${EVAL_SEED:-1000}"
IMAGES="${EVAL_IMAGES:-1000}"
VIDEO_EVERY="${EVAL_VIDEO_EVERY:-1}"
BIN="$ROOT/target/release/safecity-edge"
SIM="$ROOT/target/eval/sim-$SEED"
if [[ "$IMAGES" != 1000 ]]; then
  SIM="$SIM-$IMAGES"
fi
REAL="$(cd "$ROOT/.." && pwd)/shared/data/real"
OPENALPR="$REAL/openalpr-us"
CROPS="$REAL/argentina-crops"
BOXES="$REAL/romania-dashcam"
VIDEO="$REAL/car-detection.mp4"

lines() { if [[ -f "$1" ]]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }

if [[ "$(lines "$SIM/ground_truth.jsonl")" != "$IMAGES" ]]; then
  echo "rendering $IMAGES simulator stills (seed $SEED) into $SIM"
  rm -rf "$SIM.tmp"
  mkdir -p "$(dirname "$SIM")"
  "$BIN" simulate --images "$IMAGES" --seed "$SEED" --width 1280 --height 720 --out "$SIM.tmp"
  rm -rf "$SIM"
  mv "$SIM.tmp" "$SIM"
fi

args=(eval --sim "$SIM" --timing --json "$ROOT/target/eval/eval.json")
# Adds `FLAG PATH` when PATH is here.
add_set() {
  if [[ -e "$2" ]]; then
    args+=("$1" "$2")
  else
    echo "note: $2 is not here; skipped"
  fi
}
add_set --openalpr "$OPENALPR"
add_set --plate-crops "$CROPS"
add_set --boxes "$BOXES"
if [[ -d "$BOXES" ]]; then
  args+=(--box-texts "$ROOT/models/train/labels/romania-dashcam-texts.tsv")
fi
add_set --video "$VIDEO"
if [[ -f "$VIDEO" ]]; then
  args+=(--video-every "$VIDEO_EVERY")
fi
exec "$BIN" "${args[@]}"

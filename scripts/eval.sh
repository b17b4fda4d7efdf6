#!/usr/bin/env bash
# `make eval`: scores the shipped models through the Rust sessions on a
# simulator hold-out (rendered once, then reused), the openalpr test split
# when its folder is there, and times both models.
#
# EVAL_SEED (default 1000) and EVAL_IMAGES (default 1000) pick the hold-out;
# its seed must stay apart from the seeds the models were trained on.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SEED="${EVAL_SEED:-1000}"
IMAGES="${EVAL_IMAGES:-1000}"
BIN="$ROOT/target/release/safecity-edge"
SIM="$ROOT/target/eval/sim-$SEED"
if [[ "$IMAGES" != 1000 ]]; then
  SIM="$SIM-$IMAGES"
fi
OPENALPR="$(cd "$ROOT/.." && pwd)/shared/data/real/openalpr-us"

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
if [[ -d "$OPENALPR" ]]; then
  args+=(--openalpr "$OPENALPR")
else
  echo "note: $OPENALPR is not here; the openalpr test split is skipped"
fi
exec "$BIN" "${args[@]}"

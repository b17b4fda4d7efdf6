#!/usr/bin/env bash
# Builds safecity's models from scratch: simulator data, detector, plate
# reader, ONNX export, description files, validation.
#
#   models/train/train.sh            # defaults as shipped
#   DET_MINUTES=120 PLATE_MINUTES=40 TRAIN_CHUNKS="101 102 103 104 105 106" models/train/train.sh
#
# Environment:
#   PYTHON         Python with torch, onnx, numpy, pillow (default: .deps/train-venv)
#   TRAIN_CHUNKS   simulator seeds for training, 500 pictures each (default "101 102")
#   VAL_SEED       simulator seed of the held-out set (default 1000), VAL_IMAGES (default 300)
#   DET_MINUTES    detector training budget in wall-clock minutes (default 30)
#   PLATE_MINUTES  plate reader budget (default 14)
#   THREADS        CPU threads for the detector (default 2)
# Data are cached under target/train-data/: an existing chunk is not rendered again.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
VENV=$ROOT/.deps/train-venv
if [ -z "${PYTHON:-}" ] && [ ! -x "$VENV/bin/python" ]; then
  # First run: PyTorch and friends from PyPI into a project-local venv.
  echo "train: creating $VENV (PyTorch from PyPI, a few minutes)"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet torch onnx onnxscript numpy pillow "onnxruntime==1.31.1"
fi
PYTHON=${PYTHON:-$VENV/bin/python}
DATA=$ROOT/target/train-data
TRAIN_CHUNKS=${TRAIN_CHUNKS:-"101 102"}
VAL_SEED=${VAL_SEED:-1000}
VAL_IMAGES=${VAL_IMAGES:-300}
DET_MINUTES=${DET_MINUTES:-30}
PLATE_MINUTES=${PLATE_MINUTES:-14}
THREADS=${THREADS:-2}
EDGE=$ROOT/target/release/safecity-edge

[ -x "$EDGE" ] || cargo build --release -p safecity-edge

render() { # seed count folder
    local lines=0
    [ -f "$3/ground_truth.jsonl" ] && lines=$(wc -l < "$3/ground_truth.jsonl")
    if [ "$lines" -lt "$2" ]; then
        rm -rf "$3"
        "$EDGE" simulate --images "$2" --out "$3" --seed "$1" --width 1280 --height 720
    fi
}

train_dirs=()
for seed in $TRAIN_CHUNKS; do
    render "$seed" 500 "$DATA/sim/train-$seed"
    train_dirs+=("$DATA/sim/train-$seed")
done
render "$VAL_SEED" "$VAL_IMAGES" "$DATA/sim/val-$VAL_SEED"

cd "$ROOT/models/train"
# The two trainings run side by side: the plate reader on one thread.
"$PYTHON" train_plate.py --sim "${train_dirs[@]}" --val "$DATA/sim/val-$VAL_SEED" \
    --out "$DATA/plate" --minutes "$PLATE_MINUTES" --onnx "$ROOT/models/safecity-plate.onnx" &
plate_pid=$!
"$PYTHON" train_detector.py --sim "${train_dirs[@]}" --out "$DATA/det" --minutes "$DET_MINUTES" \
    --threads "$THREADS" --onnx "$ROOT/models/safecity-detector.onnx"
wait "$plate_pid"

"$PYTHON" evaluate.py --detector "$ROOT/models/safecity-detector.onnx" --plate "$ROOT/models/safecity-plate.onnx" \
    --sim "$DATA/sim/val-$VAL_SEED" --json "$DATA/validation.json"

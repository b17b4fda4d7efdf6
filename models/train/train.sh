#!/usr/bin/env bash
# Builds safecity's models from scratch: simulator data, detector, plate
# reader, ONNX export, description files, validation.
#
#   models/train/train.sh            # defaults as shipped
#   DET_MINUTES=240 PLATE_MINUTES=120 models/train/train.sh
#   DET_INIT=target/train-data/det/detector-ema.pt models/train/train.sh   # continue a run
#   DET_INIT=models/safecity-detector.onnx models/train/train.sh           # fine-tune the shipped one
#
# Environment:
#   PYTHON         Python with torch, onnx, numpy, pillow (default: .deps/train-venv)
#   TRAIN_CHUNKS   simulator seeds for training, 500 pictures each (default 201..208)
#   PLATE_CHUNKS   seeds of plate windows for the reader, 20,000 each (default 3101..3103)
#   VAL_SEED       simulator seed of the held-out set (default 1000), VAL_IMAGES (default 1000)
#   DET_MINUTES    detector training budget in wall-clock minutes (default 100)
#   PLATE_MINUTES  plate reader budget (default 80)
#   PLATE_FINETUNE_MINUTES  then the reader's fine-tune with rare layouts drawn
#                  more often, --balance 0.5 at lr 3e-4 (default 50; 0 skips it)
#   STRONG_MINUTES the strong reader (second stage of the cascade) budget
#                  (default 65; 0 skips it)
#   STRONG_MORE_MINUTES then its second run, continued from the first's last
#                  step at lr 1.5e-4 (default 60)
#   COLOUR_EPOCHS  colour classifier epochs (default 15)
#   DET_INIT, PLATE_INIT  checkpoints to start from (default: from scratch);
#                  either may be a released .onnx (see from_onnx)
#   DET_BALANCE    detector draws, weight count(rarest class)^-A (default 1.0)
#   DET_FULL_EVERY every Nth detector step on whole canvases (default 3)
#   THREADS        CPU threads for the detector (default 1; the reader takes another)
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
TRAIN_CHUNKS=${TRAIN_CHUNKS:-"201 202 203 204 205 206 207 208"}
PLATE_CHUNKS=${PLATE_CHUNKS:-"3101 3102 3103"}
VAL_SEED=${VAL_SEED:-1000}
VAL_IMAGES=${VAL_IMAGES:-1000}
DET_MINUTES=${DET_MINUTES:-100}
PLATE_MINUTES=${PLATE_MINUTES:-80}
PLATE_FINETUNE_MINUTES=${PLATE_FINETUNE_MINUTES:-50}
STRONG_MINUTES=${STRONG_MINUTES:-65}
STRONG_MORE_MINUTES=${STRONG_MORE_MINUTES:-60}
COLOUR_EPOCHS=${COLOUR_EPOCHS:-15}
THREADS=${THREADS:-1}
DET_BALANCE=${DET_BALANCE:-1.0}
DET_FULL_EVERY=${DET_FULL_EVERY:-3}
det_init=(); [ -n "${DET_INIT:-}" ] && det_init=(--init "$DET_INIT")
plate_init=(); [ -n "${PLATE_INIT:-}" ] && plate_init=(--init "$PLATE_INIT")
EDGE=$ROOT/target/release/safecity-edge

[ -x "$EDGE" ] || cargo build --release -p safecity-edge

render() { # seed count folder [--plates]
    local lines=0
    [ -f "$3/ground_truth.jsonl" ] && lines=$(wc -l < "$3/ground_truth.jsonl")
    if [ "$lines" -lt "$2" ]; then
        rm -rf "$3"
        "$EDGE" simulate --images "$2" --out "$3" --seed "$1" --width 1280 --height 720 "${@:4}"
    fi
}

train_dirs=()
for seed in $TRAIN_CHUNKS; do
    render "$seed" 500 "$DATA/sim/train-$seed"
    train_dirs+=("$DATA/sim/train-$seed")
done
render "$VAL_SEED" "$VAL_IMAGES" "$DATA/sim/val-$VAL_SEED"
plate_dirs=()
for seed in $PLATE_CHUNKS; do
    render "$seed" 20000 "$DATA/plates/p-$seed" --plates
    plate_dirs+=("$DATA/plates/p-$seed")
done

cd "$ROOT/models/train"
"$PYTHON" train_colour.py --sim "${train_dirs[@]}" --val "$DATA/sim/val-$VAL_SEED" \
    --out "$DATA/colour" --epochs "$COLOUR_EPOCHS" --onnx "$ROOT/models/safecity-colour.onnx"
# The two long trainings run side by side, one thread each.
"$PYTHON" train_plate.py --sim "${plate_dirs[@]}" --val "$DATA/sim/val-$VAL_SEED" --batch 64 --openalpr-repeat 30 \
    --out "$DATA/plate" --minutes "$PLATE_MINUTES" "${plate_init[@]}" --onnx "$ROOT/models/safecity-plate.onnx" &
plate_pid=$!
"$PYTHON" train_detector.py --sim "${train_dirs[@]}" --out "$DATA/det" --minutes "$DET_MINUTES" \
    --threads "$THREADS" --balance "$DET_BALANCE" --full-every "$DET_FULL_EVERY" "${det_init[@]}" --onnx "$ROOT/models/safecity-detector.onnx"
wait "$plate_pid"
if [ "$PLATE_FINETUNE_MINUTES" != 0 ]; then
    "$PYTHON" train_plate.py --sim "${plate_dirs[@]}" --val "$DATA/sim/val-$VAL_SEED" --batch 64 --openalpr-repeat 30 \
        --out "$DATA/plate-ft" --minutes "$PLATE_FINETUNE_MINUTES" --init "$DATA/plate/plate.pt" \
        --lr 3e-4 --warmup 100 --balance 0.5 --threads 2 --onnx "$ROOT/models/safecity-plate.onnx"
fi

# The strong reader: PP-OCRv4's recogniser (from the PyPI wheel
# rapidocr-onnxruntime) fine-tuned on synthetic plates of many countries
# (typefaces from Debian: scripts/setup.sh --train), the simulator's plate
# windows, the openalpr-us train photos and the romania-dashcam training
# rides (texts in labels/), in two runs; then its temperature, fitted on
# the real validation split it did not train on.
if [ "$STRONG_MINUTES" != 0 ]; then
    bash "$ROOT/scripts/setup.sh" --train
    render 3199 1000 "$DATA/plates/p-3199-1k" --plates
    strong=(--sim "$DATA/plates/p-3101" --val "$DATA/plates/p-3199-1k")
    onnx=(--onnx "$ROOT/models/safecity-plate-strong.onnx")
    if [ "$STRONG_MORE_MINUTES" = 0 ]; then
        "$PYTHON" train_reader.py "${strong[@]}" --out "$DATA/reader" --minutes "$STRONG_MINUTES" "${onnx[@]}"
    else
        "$PYTHON" train_reader.py "${strong[@]}" --out "$DATA/reader" --minutes "$STRONG_MINUTES"
        "$PYTHON" train_reader.py "${strong[@]}" --out "$DATA/reader2" --init "$DATA/reader/last.pt" \
            --lr 1.5e-4 --warmup 50 --seed 1 --minutes "$STRONG_MORE_MINUTES" "${onnx[@]}"
    fi
    "$PYTHON" calibrate.py --onnx "$ROOT/models/safecity-plate-strong.onnx" --write
fi

# The scores in the model card: through the Rust sessions.
cd "$ROOT" && bash scripts/eval.sh

#!/usr/bin/env bash
# `make bench-gpu`: real-time 1080p25 streams per GPU at a stated detection
# rate (SAFECITY_GPU_FPS, default 5), with decoder and GPU use. Needs a GPU
# host with the NVIDIA driver, the GPU build of ONNX Runtime and GStreamer's
# nvcodec plugin (docs/gpu.md). Writes target/bench/gpu.md and gpu.json.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "bench-gpu: no NVIDIA GPU here (nvidia-smi not found); run it on a GPU host (docs/gpu.md)" >&2
  exit 2
fi
GPU_ORT="$ROOT/.deps/onnxruntime-gpu/lib"
if [ -f "$GPU_ORT/libonnxruntime.so" ]; then
  export SAFECITY_ORT_LIB="$GPU_ORT/libonnxruntime.so"
  export LD_LIBRARY_PATH="$GPU_ORT${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  echo "bench-gpu: no GPU build of ONNX Runtime in $GPU_ORT; bring it with scripts/gpu-bundle.sh (docs/gpu.md)" >&2
  exit 2
fi
if ! gst-inspect-1.0 nvh264dec >/dev/null 2>&1; then
  echo "bench-gpu: GStreamer has no nvh264dec; install gstreamer1.0-plugins-bad (docs/gpu.md)" >&2
  exit 2
fi
cargo build --release --locked -p safecity-edge-cli --features cuda,nvdec
cargo build --release --locked -p safecity-benches --bin edge-bench --features cuda,nvdec
cargo build --release --locked -p safecity-server
python3 scripts/bench.py --gpu --fps "${SAFECITY_GPU_FPS:-5}" \
  --out target/bench/gpu.md --json target/bench/gpu.json

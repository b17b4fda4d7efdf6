#!/usr/bin/env bash
# Carries the GPU build of ONNX Runtime, its CUDA libraries and GStreamer's
# NVDEC plugin to a GPU host that has no network, in pieces of at most
# 64 MiB (docs/gpu.md).
#
#   scripts/gpu-bundle.sh pack DIR     on a machine with the PyPI and Debian
#                                      registries: fetch, tar, split, checksum
#   scripts/gpu-bundle.sh unpack DIR   on the GPU host: verify, join, install
#                                      into .deps/onnxruntime-gpu
#
# Only package registries are used: PyPI (onnxruntime-gpu and NVIDIA's CUDA
# runtime wheels) and Debian (apt-get download).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_VERSION="${ORT_VERSION:-1.31.1}"
PIECE="${SAFECITY_PIECE_SIZE:-64M}"
# The CUDA 12 libraries the onnxruntime-gpu wheel links against.
WHEELS=(
  "onnxruntime-gpu==$ORT_VERSION"
  nvidia-cuda-runtime-cu12
  nvidia-cublas-cu12
  nvidia-cudnn-cu12
  nvidia-cufft-cu12
  nvidia-curand-cu12
  nvidia-cuda-nvrtc-cu12
)
# GStreamer's nvcodec plugin (nvh264dec) is in plugins-bad; the driver on
# the GPU host provides libnvcuvid.
DEBS=(gstreamer1.0-plugins-bad libgstreamer-plugins-bad1.0-0)

log() { printf 'gpu-bundle: %s\n' "$*" >&2; }

pack() {
  local out="$1" work
  mkdir -p "$out"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  mkdir -p "$work/wheels" "$work/debs"
  log "downloading wheels: ${WHEELS[*]}"
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux_2_28_x86_64 --python-version 3.11 -d "$work/wheels" "${WHEELS[@]}"
  log "downloading Debian packages: ${DEBS[*]}"
  (cd "$work/debs" && apt-get download "${DEBS[@]}")
  tar -C "$work" -cf "$work/bundle.tar" wheels debs
  (cd "$out" && split -b "$PIECE" -d -a 3 "$work/bundle.tar" safecity-gpu.tar.part-)
  (cd "$out" && sha256sum safecity-gpu.tar.part-* >SHA256SUMS && sha256sum "$work/bundle.tar" |
    awk '{print $1"  safecity-gpu.tar"}' >>SHA256SUMS)
  log "wrote $(ls "$out"/safecity-gpu.tar.part-* | wc -l) pieces of at most $PIECE and SHA256SUMS to $out"
}

unpack() {
  local in="$1" work dest="$ROOT/.deps/onnxruntime-gpu"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' RETURN
  (cd "$in" && grep part- SHA256SUMS | sha256sum -c --quiet) ||
    { log "a piece in $in is damaged or missing; copy it again"; exit 1; }
  cat "$in"/safecity-gpu.tar.part-* >"$work/bundle.tar"
  (cd "$work" && grep '  safecity-gpu.tar$' "$in/SHA256SUMS" | sed 's/safecity-gpu.tar$/bundle.tar/' |
    sha256sum -c --quiet) || { log "the joined bundle does not match SHA256SUMS"; exit 1; }
  tar -C "$work" -xf "$work/bundle.tar"
  mkdir -p "$dest/lib"
  for w in "$work"/wheels/*.whl; do
    # The shared libraries only, flattened into one directory.
    unzip -q -o "$w" -d "$work/unzipped"
  done
  find "$work/unzipped" -name '*.so*' -exec cp -a {} "$dest/lib/" \;
  ln -sf "libonnxruntime.so.$ORT_VERSION" "$dest/lib/libonnxruntime.so"
  local SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO dpkg -i "$work"/debs/*.deb >/dev/null
  log "ONNX Runtime (GPU) in $dest/lib; use it with:"
  echo "export SAFECITY_ORT_LIB=$dest/lib/libonnxruntime.so"
  echo "export LD_LIBRARY_PATH=$dest/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
}

case "${1:-}" in
  pack) pack "${2:?usage: gpu-bundle.sh pack DIR}" ;;
  unpack) unpack "${2:?usage: gpu-bundle.sh unpack DIR}" ;;
  *) echo "usage: scripts/gpu-bundle.sh pack|unpack DIR (docs/gpu.md)" >&2; exit 2 ;;
esac

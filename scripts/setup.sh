#!/usr/bin/env bash
# Idempotent set-up: Debian GStreamer packages and the ONNX Runtime shared
# library from the PyPI wheel. Quick when everything is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORT_VERSION="${ORT_VERSION:-1.31.1}"
ORT_DIR="${SAFECITY_ORT_DIR:-$ROOT/.deps/onnxruntime}"

APT_PACKAGES=(
  pkg-config
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  gstreamer1.0-tools
  unzip
  curl
  openssl
)
# `setup.sh --train`: the typefaces models/train/plate_synth.py draws
# synthetic plates with (kept in step with its FONT_PACKAGES).
if [ "${1:-}" = "--train" ]; then
  APT_PACKAGES+=(
    fonts-opendin fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf
    fonts-paratype fonts-bebas-neue fonts-roboto-unhinted fonts-open-sans fonts-b612
    fonts-clear-sans fonts-inter fonts-league-spartan fonts-cantarell
  )
fi
# Extra packages a caller asks for (make test adds what its tests need).
if [ -n "${SAFECITY_EXTRA_APT:-}" ]; then
  read -r -a extra <<<"$SAFECITY_EXTRA_APT"
  APT_PACKAGES+=("${extra[@]}")
fi

log() { printf 'setup: %s\n' "$*"; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

lib="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ ! -f "$lib" ]; then
  log "fetching ONNX Runtime $ORT_VERSION from the PyPI onnxruntime wheel"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --no-deps --only-binary=:all: \
    "onnxruntime==$ORT_VERSION" -d "$tmp"
  wheel="$(ls "$tmp"/onnxruntime-*.whl | head -n1)"
  mkdir -p "$ORT_DIR"
  unzip -q -o -j "$wheel" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$ORT_DIR"
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"
log "ONNX Runtime at $ORT_DIR/libonnxruntime.so"

# PostgreSQL for the server tests against a real server.
bash "$ROOT/scripts/setup-postgres.sh"

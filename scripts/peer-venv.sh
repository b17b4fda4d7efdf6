#!/usr/bin/env bash
# Creates .deps/peer-venv for the Python peer baseline (benches/peer/) and
# installs its pinned requirements from PyPI. Idempotent: a venv that already
# has the pinned versions is left as it is. Prints the venv's python.
#
#   scripts/peer-venv.sh            # then: "$(scripts/peer-venv.sh | tail -1)" benches/peer/peer.py ...
#   PYTHON=python3.11 scripts/peer-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.deps/peer-venv
REQ=$ROOT/benches/peer/requirements.txt
STAMP=$VENV/.requirements.txt

if [ ! -x "$VENV/bin/python" ]; then
  echo "peer-venv: creating $VENV" >&2
  mkdir -p "$ROOT/.deps"
  "${PYTHON:-python3}" -m venv "$VENV"
fi
# Reinstall only when the requirements changed since the last good install.
if ! cmp -s "$REQ" "$STAMP"; then
  echo "peer-venv: installing $(grep -cv '^\s*\(#\|$\)' "$REQ") pinned packages from PyPI" >&2
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
  "$VENV/bin/python" -c 'import av, cv2, numpy, onnxruntime' >&2
  cp "$REQ" "$STAMP"
fi
echo "$VENV/bin/python"

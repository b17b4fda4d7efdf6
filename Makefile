# safecity: `make demo` and `make test` set up what is missing on their own.
SHELL := bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Where `make setup` puts ONNX Runtime; the binaries and tests find it there.
export SAFECITY_ORT_LIB := $(CURDIR)/.deps/onnxruntime/libonnxruntime.so

.PHONY: setup build lint test demo simulator-sheet clean-sim-cache models models-eval eval eval-edge

## Install Debian GStreamer packages and ONNX Runtime if missing (idempotent).
setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --locked

## fmt, clippy and rustdoc, all warnings as errors.
lint: setup
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --release --workspace --no-deps --locked

## Everything CI runs.
test: setup lint
	$(CARGO) test --release --workspace --locked

## The simulator plays the hit-and-run scenario on 4 cameras and a pillar.
demo: build
	@bash scripts/demo.sh

## Regenerate the contact sheet shown in the README.
simulator-sheet: build
	rm -rf target/simulator-sheet
	target/release/safecity-edge simulate --images 12 --seed 5 --width 1280 --height 720 \
	  --out target/simulator-sheet --contact-sheet docs/simulator.png

## Train the detector and plate reader (PyTorch on CPU or GPU; not run by CI).
models: build
	models/train/train.sh

## Validate the shipped models on a simulator hold-out and the openalpr test split.
models-eval: build
	cd models/train && ../../.deps/train-venv/bin/python evaluate.py \
	  --detector ../safecity-detector.onnx --plate ../safecity-plate.onnx \
	  --sim ../../target/train-data/sim/val-1000

## Score the models through the Rust sessions (simulator hold-out, openalpr test split, latency).
eval: build
	bash scripts/eval.sh

## The edge daemon against the simulator's ground truth: 4 cameras at 720p25,
## a SIGKILL and restart, a 30 s server outage (python3, standard library).
eval-edge: build
	python3 scripts/eval_edge.py --json target/eval/edge.json

clean-sim-cache:
	rm -rf "$${XDG_CACHE_HOME:-$$HOME/.cache}/safecity/sim"

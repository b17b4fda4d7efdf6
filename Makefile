# safecity: `make demo` and `make test` set up what is missing on their own.
SHELL := bash
CARGO ?= cargo
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Where `make setup` puts ONNX Runtime; the binaries and tests find it there.
export SAFECITY_ORT_LIB := $(CURDIR)/.deps/onnxruntime/libonnxruntime.so

.PHONY: setup build lint test browser-test demo bench bench-gpu simulator-sheet clean-sim-cache models models-eval eval eval-edge faults faults-quick soak

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

## Everything CI runs: the Rust tests, a build of the benchmarks, the web UI
## in headless Chromium, and the short faults.
test: setup lint
	$(CARGO) test --release --workspace --locked
	$(CARGO) bench --workspace --no-run --locked
	$(MAKE) browser-test
	$(MAKE) faults-quick

## Short faults (about 3 minutes): PostgreSQL restart, server and edge
## SIGKILL, a camera that vanishes; fails on anything acknowledged and lost.
faults-quick: build
	python3 scripts/faults.py --quick

## Every fault at full length, the rural link included (about 30 minutes,
## root for tmpfs and network namespaces): writes docs/reliability.md.
faults: build
	SAFECITY_EXTRA_APT="iproute2 nftables" bash scripts/setup.sh
	python3 scripts/faults.py --json target/faults/faults.json --markdown docs/reliability.md

## Four cameras and a pillar through edge and server for an hour: memory,
## open files and storage over time, into docs/reliability.md.
soak: build
	python3 scripts/faults.py --soak 60 --json target/faults/soak.json --markdown docs/reliability.md

## The web UI driven in Debian Chromium by playwright-core (installed if missing).
browser-test: setup
	$(CARGO) build --release -p safecity-server --locked
	bash scripts/browser-test.sh

## The simulator plays the hit-and-run scenario on 4 cameras and a pillar.
demo: build
	@bash scripts/demo.sh

## Edge throughput, capacity, memory and latency against their ceilings and
## a peer, server scale against plain PostgreSQL, micro-benchmarks:
## writes BENCHMARKS.md (about 20 minutes).
bench: build
	python3 scripts/bench.py

## Real-time 1080p streams per GPU on an NVIDIA host (docs/gpu.md).
bench-gpu: setup
	bash scripts/bench-gpu.sh

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

"""How well the plate reader reads plates it was trained on, by layout and
readability: crops as at run time, no augmentation. Tells a network too
small for its data (low rates here) from one that does not generalise.

    python check_fit.py --sim DIR [DIR...] --checkpoint target/train-data/plate/plate.pt \
        [--patches target/train-data/plate/patches.pkl] [--n 3000]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np
import torch

from common import load_simulated
from plate_data import MIN_READ_HEIGHT, cut_patches
from train_plate import PlateReader, SlotsReader, batch, exact_rate, from_onnx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", nargs="+", type=Path, required=True, help="the plate-window folders it trained on")
    ap.add_argument("--checkpoint", type=Path, required=True, help="a training checkpoint (.pt) or a released .onnx")
    ap.add_argument("--patches", type=Path, help="train_plate.py's patch cache for the same folders")
    ap.add_argument("--arch", choices=["attn", "slots"], default="attn")
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    samples = [s for d in args.sim for s in load_simulated(d)]
    if args.patches:
        items = pickle.loads(args.patches.read_bytes())[0]
    else:
        items = cut_patches(samples)
    # The same plates in the same order as cut_patches keeps them.
    meta = [
        ("readable" if p.readable else "unreadable", p.layout)
        for s in samples
        for p in s.plates
        if p.text and (p.readable or p.box[3] >= MIN_READ_HEIGHT)
    ]
    if len(meta) != len(items):
        raise SystemExit(f"{len(items)} patches but {len(meta)} plates: --patches is not of these --sim folders")

    rng = np.random.default_rng(1)
    if args.checkpoint.suffix == ".onnx":
        # A released reader; eval mode computes exactly its function.
        model = from_onnx(args.checkpoint, batch(items, list(range(min(64, len(items)))), rng, False)[0])
    else:
        model = PlateReader() if args.arch == "attn" else SlotsReader()
        model.load_state_dict(torch.load(args.checkpoint))
    groups: dict[tuple[str, str], list] = {}
    for i in rng.choice(len(items), min(args.n, len(items)), replace=False):
        groups.setdefault(meta[i], []).append(items[i])
    for (readable, layout), group in sorted(groups.items()):
        print(f"{readable:10} {layout:12} {len(group):5} plates  exact {exact_rate(model, group, rng):.3f}")


if __name__ == "__main__":
    main()

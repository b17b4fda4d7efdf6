"""Trains the fixed-slot plate reader and exports it to ONNX.

    python train_plate.py --sim DIR [DIR...] --out target/train-data/plate --minutes 12
"""

from __future__ import annotations

import argparse
import copy
import math
import pickle
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import bn_fold
from common import ALPHABET, SLOTS, decode_slots, load_simulated, openalpr_split
from plate_data import MARGIN_X, MARGIN_Y, augment_view, cut_patches

WIDTH, HEIGHT = 128, 64


def conv(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SlotsReader(nn.Module):
    """The first reader: CNN to a 4x8 map squeezed to 32 channels, flattened,
    one linear layer to all slots. Kept for comparison (`--arch slots`)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 16), nn.MaxPool2d(2),  # 32x64
            conv(16, 32), nn.MaxPool2d(2),  # 16x32
            conv(32, 64), nn.MaxPool2d(2),  # 8x16
            conv(64, 96), conv(96, 96), nn.MaxPool2d(2),  # 4x8
            nn.Conv2d(96, 32, 1), nn.BatchNorm2d(32), nn.ReLU(inplace=True),
        )
        self.drop = nn.Dropout(0.2)
        self.slots = nn.Linear(32 * (HEIGHT // 16) * (WIDTH // 16), SLOTS * len(ALPHABET))

    def forward(self, x):
        f = self.features(x).flatten(1)
        return self.slots(self.drop(f)).view(-1, SLOTS, len(ALPHABET))


class DecoderLayer(nn.Module):
    """Pre-norm transformer decoder layer: slots talk to each other, then
    look at the feature map, then a small MLP."""

    def __init__(self, d, heads, ff):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, ff), nn.ReLU(inplace=True), nn.Linear(ff, d))
        self.n1, self.n2, self.n3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)

    def forward(self, q, mem):
        h = self.n1(q)
        q = q + self.self_attn(h, h, h, need_weights=False)[0]
        q = q + self.cross_attn(self.n2(q), mem, mem, need_weights=False)[0]
        return q + self.ff(self.n3(q))


class PlateReader(nn.Module):
    """CNN to an 8x16 feature map (stride 8), then ten learned slot queries
    that attend over its 128 cells through two small decoder layers, each
    slot classified on its own (non-autoregressive, fixed slots). A slot can
    look at either line of a two-line plate, and the slots see each other,
    so the n-th slot can find the n-th character whatever the layout."""

    def __init__(self, d=96, layers=2, heads=4, ff=192):
        super().__init__()
        self.features = nn.Sequential(
            conv(1, 16), nn.MaxPool2d(2),  # 32x64
            conv(16, 32), nn.MaxPool2d(2),  # 16x32
            conv(32, 64), conv(64, 64), nn.MaxPool2d(2),  # 8x16
            conv(64, 128), conv(128, 128),
            nn.Conv2d(128, d, 1),
        )
        self.pos = nn.Parameter(torch.randn(1, (HEIGHT // 8) * (WIDTH // 8), d) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, SLOTS, d) * 0.02)
        self.mem_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(DecoderLayer(d, heads, ff) for _ in range(layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, len(ALPHABET))

    def forward(self, x):
        mem = self.mem_norm(self.features(x).flatten(2).transpose(1, 2) + self.pos)
        q = self.queries.expand(x.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, mem)
        return self.head(self.out_norm(q))


def from_onnx(path: Path, calibration: torch.Tensor) -> PlateReader:
    """Rebuilds a trainable PlateReader from an ONNX file that `export_onnx`
    wrote, so a released reader can be fine-tuned without its checkpoint.

    Named initializers load by name. The exporter folds each BatchNorm into
    the conv before it and turns the self-attention input projections, the
    MLPs and the head into MatMuls with transposed, renamed weights; those
    load in graph order. The BatchNorms are unfolded and calibrated on
    `calibration` (a batch of training views) as `bn_fold` describes."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
    model = PlateReader().eval()
    params = dict(model.named_parameters())

    def put(name, value):
        if name not in params or params[name].shape != value.shape:
            raise ValueError(f"{path}: {name} {tuple(value.shape)} does not fit this reader: not a reader of this architecture")
        params[name].data.copy_(value)

    for name, value in inits.items():
        if name in params:
            put(name, value)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    blocks = [m for m in model.features if isinstance(m, nn.Sequential)]
    if len(convs) != len(blocks) + 1:
        raise ValueError(f"{path}: {len(convs)} Conv nodes, the reader has {len(blocks) + 1} convs")
    with torch.no_grad():
        for block, node in zip(blocks, convs):
            conv2d, bn = block[0], block[1]
            w, b = inits[node.input[1]], inits[node.input[2]]
            if w.shape != conv2d.weight.shape:
                raise ValueError(f"{path}: {node.name} has weight {tuple(w.shape)}, the reader expects {tuple(conv2d.weight.shape)}")
            conv2d.weight.copy_(w)
            bn_fold.unfold(bn, b)
    matmuls = [inits[n.input[1]] for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    names = []
    for i in range(len(model.layers)):
        names += [f"layers.{i}.self_attn.in_proj_weight", f"layers.{i}.ff.0.weight", f"layers.{i}.ff.2.weight"]
    names.append("head.weight")
    if len(matmuls) != len(names):
        raise ValueError(f"{path}: {len(matmuls)} weight MatMuls, the reader has {len(names)}")
    for name, w in zip(names, matmuls):
        put(name, w.t().contiguous())
    # Real statistics of each BatchNorm's input, then the same function.
    bn_fold.calibrate(model, calibration)
    return model


def export_onnx(model, path: Path, size: tuple[int, int] = (WIDTH, HEIGHT)):
    """A gray `size` (width, height) reader with `[B, 10, 37]` logits to
    ONNX, batch dynamic."""
    m = copy.deepcopy(model).eval()
    torch.onnx.export(
        m,
        torch.zeros(1, 1, size[1], size[0]),
        str(path),
        input_names=["images"],
        output_names=["logits"],
        opset_version=17,
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        dynamo=False,
    )
    # Pin the slot and symbol counts the exporter leaves symbolic.
    import onnx

    g = onnx.load(str(path))
    dims = g.graph.output[0].type.tensor_type.shape.dim
    for d, v in ((dims[1], SLOTS), (dims[2], len(ALPHABET))):
        d.Clear()
        d.dim_value = v
    onnx.checker.check_model(g)
    onnx.save(g, str(path))


def write_description(path: Path):
    path.write_text(
        f"""# safecity's own plate reader (models/README.md). Output [B, {SLOTS}, {len(ALPHABET)}]
# raw scores: one character or the pad "_" per slot, left-aligned.
# Feed the detector's plate box widened by {MARGIN_X:g} of its width left and right
# and {MARGIN_Y:g} of its height above and below, stretched to {WIDTH}x{HEIGHT}.
kind = "plate_reader"
decoder = "fixed_slots"
alphabet = "{ALPHABET}"
pad = "_"
logits = true
# Read each plate three times, tighter and looser around the box, and
# average: +2 points of exact reads on simulator seeds 1100-1101.
crop_views = [[0.14, 0.25], [0.03, 0.08]]

[input]
width = {WIDTH}
height = {HEIGHT}
channels = "gray"
scale = 0.00392156862745098
resize = "stretch"
"""
    )


def batch(items, idx, rng, train):
    x = np.stack([augment_view(items[i], (WIDTH, HEIGHT), rng, train) for i in idx])[:, None]
    y = np.stack([items[i]["label"] for i in idx])
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def exact_rate(model, items, rng):
    model.eval()
    hits = 0
    with torch.no_grad():
        for s in range(0, len(items), 64):
            idx = list(range(s, min(len(items), s + 64)))
            x, _ = batch(items, idx, rng, False)
            pred = model(x).argmax(-1).numpy()
            hits += sum(decode_slots(p) == items[i]["text"] for p, i in zip(pred, idx))
    return hits / max(1, len(items))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", nargs="+", type=Path, required=True)
    ap.add_argument("--val", type=Path, help="held-out simulator folder for a progress read rate")
    ap.add_argument("--openalpr-repeat", type=int, default=4)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--init", type=Path, help="checkpoint (.pt) of a previous run or a released .onnx to start from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--arch", choices=["attn", "slots"], default="attn")
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument(
        "--balance",
        type=float,
        default=0.0,
        help="draw simulated plates with weight count(shape)^-B, shape = the text with digits "
        "as 9 and letters as A, two-line plates apart (0: uniform; 0.5 lifts rare layouts such "
        "as foreign and two-line plates)",
    )
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    cache = args.out / "patches.pkl"
    if cache.exists():
        items, alpr = pickle.loads(cache.read_bytes())
    else:
        items = cut_patches([s for d in args.sim for s in load_simulated(d)])
        alpr = cut_patches(openalpr_split()[0]) if args.openalpr_repeat else []
        cache.write_bytes(pickle.dumps((items, alpr)))
    val = cut_patches(load_simulated(args.val), only_readable=True) if args.val else []
    pool = list(range(len(items))) + list(range(len(items), len(items) + len(alpr))) * args.openalpr_repeat
    # Draw weights (--balance): each simulated plate count(shape)^-B, shape
    # its text with digits as 9 and letters as A, scaled so that they sum
    # to the number of simulated plates; each openalpr photo openalpr_repeat.
    # Two-line plates are shapes of their own: the same text stacked on a
    # square plate reads unlike the long one.
    shapes = [
        ("two_line " if it.get("layout") == "two_line" else "") + "".join("9" if c.isdigit() else "A" for c in it["text"])
        for it in items
    ]
    counts = Counter(shapes)
    sim = np.array([counts[sh] ** -args.balance for sh in shapes])
    weights = np.concatenate([sim * len(items) / sim.sum(), np.full(len(alpr), float(args.openalpr_repeat))])
    weights /= weights.sum()
    items = items + alpr
    print(f"plates: {len(items) - len(alpr)} simulated, {len(alpr)} openalpr, {len(val)} readable for validation", flush=True)
    if args.balance:
        rare = sorted(counts.items(), key=lambda kv: kv[1])[:5]
        print(f"balance {args.balance}: {len(counts)} shapes, rarest {rare}", flush=True)

    model = PlateReader() if args.arch == "attn" else SlotsReader()
    if args.init and args.init.suffix == ".onnx":
        if args.arch != "attn":
            raise SystemExit("--init with an .onnx file rebuilds the attn reader only")
        calibration, _ = batch(items, list(rng.choice(len(items), size=256, p=weights)), rng, True)
        model = from_onnx(args.init, calibration)
        print(f"starting from {args.init} (weights rebuilt from the ONNX graph)", flush=True)
    elif args.init:
        model.load_state_dict(torch.load(args.init))
        print(f"starting from {args.init}", flush=True)
    print(f"plate reader: {sum(p.numel() for p in model.parameters())} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    start, step, queue = time.time(), 0, []
    log = open(args.out / "train.log", "a")
    while True:
        progress = step / args.steps if args.steps else (time.time() - start) / (args.minutes * 60)
        if progress >= 1:
            break
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        if args.balance:
            idx = list(rng.choice(len(items), size=args.batch, p=weights))
        else:
            if len(queue) < args.batch:
                queue += list(rng.permutation(pool))
            idx, queue = queue[: args.batch], queue[args.batch :]
        x, y = batch(items, idx, rng, True)
        model.train()
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, len(ALPHABET)), y.reshape(-1), label_smoothing=0.05)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            msg = f"step {step} {time.time() - start:.0f}s lr {lr:.5f} loss {loss.item():.4f}"
            if step % 250 == 0 and val:
                msg += f" val exact {exact_rate(model, val, rng):.3f}"
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
            torch.save(model.state_dict(), args.out / "plate.pt")
    torch.save(model.state_dict(), args.out / "plate.pt")
    print(f"trained {step} steps in {time.time() - start:.0f} s", flush=True)
    if val:
        print(f"validation exact read (readable, box crops): {exact_rate(model, val, rng):.3f}", flush=True)
    if args.onnx:
        export_onnx(model, args.onnx)
        write_description(args.onnx.with_suffix(".toml"))
        print(f"exported {args.onnx} ({args.onnx.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()

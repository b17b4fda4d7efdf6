"""Trains the vehicle colour classifier on vehicle crops from simulator
pictures and exports it to ONNX.

    python train_colour.py --sim DIR [DIR...] --val DIR --out target/train-data/colour --onnx ../safecity-colour.onnx

The runtime feeds the vehicle box widened by CROP_MARGIN of its size on each
side (a little road around the body tells the lighting), stretched to 32x32.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

COLOURS = ["white", "black", "silver", "grey", "red", "blue", "green", "yellow", "brown"]
SIZE = 32
# Crops are cached this much larger than SIZE so training can jitter them.
CACHE = 40
CROP_MARGIN = 0.1
MIN_HEIGHT = 24.0


def load_crops(folder: Path, limit: int = 0):
    """Vehicle crops (box widened by CROP_MARGIN, then by CACHE/SIZE more for
    jitter) and colour labels from a simulator folder."""
    xs, ys = [], []
    with open(folder / "ground_truth.jsonl") as f:
        for i, line in enumerate(f):
            if limit and i >= limit:
                break
            row = json.loads(line)
            vs = [v for v in row["vehicles"] if v["bbox"][3] >= MIN_HEIGHT]
            if not vs:
                continue
            with Image.open(folder / row["file"]) as im:
                im = im.convert("RGB")
                for v in vs:
                    x, y, w, h = v["bbox"]
                    k = CACHE / SIZE
                    cw, ch = w * (1 + 2 * CROP_MARGIN) * k, h * (1 + 2 * CROP_MARGIN) * k
                    cx, cy = x + w / 2, y + h / 2
                    # Clamped to the picture, as the runtime clamps its crop.
                    box = (max(0.0, cx - cw / 2), max(0.0, cy - ch / 2), min(im.width, cx + cw / 2), min(im.height, cy + ch / 2))
                    xs.append(np.asarray(im.resize((CACHE, CACHE), Image.BILINEAR, box=box), np.uint8))
                    ys.append(COLOURS.index(v["colour"]))
    return np.stack(xs), np.array(ys, np.int64)


class ColourNet(nn.Module):
    def __init__(self):
        super().__init__()

        def block(cin, cout):
            return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

        self.features = nn.Sequential(
            block(3, 16), nn.MaxPool2d(2),  # 16
            block(16, 32), nn.MaxPool2d(2),  # 8
            block(32, 64), nn.MaxPool2d(2),  # 4
            block(64, 64),
        )
        self.head = nn.Linear(64 * 2, len(COLOURS))

    def forward(self, x):
        f = self.features(x)
        # Mean and max pooling: the body's colour and its brightest parts.
        f = torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1)
        return self.head(f)


def views(x: np.ndarray, rng: np.random.Generator, train: bool) -> torch.Tensor:
    n = len(x)
    out = np.empty((n, SIZE, SIZE, 3), np.float32)
    off = (CACHE - SIZE) // 2
    for i in range(n):
        if train:
            s = rng.integers(SIZE - 3, SIZE + 5)
            ox, oy = rng.integers(max(0, off - 3), min(CACHE - s, off + 3) + 1, 2)
            im = Image.fromarray(x[i, oy : oy + s, ox : ox + s])
            v = np.asarray(im.resize((SIZE, SIZE), Image.BILINEAR), np.float32)
            if rng.random() < 0.5:
                v = v[:, ::-1]
            v = v * rng.uniform(0.85, 1.15) + rng.normal(0, 3, v.shape)
        else:
            v = x[i, off : off + SIZE, off : off + SIZE].astype(np.float32)
        out[i] = v
    return torch.from_numpy(np.clip(out, 0, 255).transpose(0, 3, 1, 2) / 255.0).float()


class Export(nn.Module):
    """Adds the softmax, so the ONNX output is probabilities."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        return torch.softmax(self.m(x), -1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", nargs="+", type=Path, required=True)
    ap.add_argument("--val", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--onnx", type=Path)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.out / "crops.npz"
    if cache.exists():
        z = np.load(cache)
        x, y = z["x"], z["y"]
    else:
        parts = [load_crops(d) for d in args.sim]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        np.savez(cache, x=x, y=y)
    vx, vy = load_crops(args.val) if args.val else (None, None)
    print(f"colour: {len(x)} training crops, {0 if vx is None else len(vx)} validation", flush=True)
    model = ColourNet()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * math.ceil(len(x) / args.batch)
    step, start = 0, time.time()
    for epoch in range(args.epochs):
        model.train()
        for idx in np.array_split(rng.permutation(len(x)), math.ceil(len(x) / args.batch)):
            lr = 3e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
            for g in opt.param_groups:
                g["lr"] = lr
            loss = F.cross_entropy(model(views(x[idx], rng, True)), torch.from_numpy(y[idx]), label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        msg = f"epoch {epoch + 1} {time.time() - start:.0f}s loss {loss.item():.3f}"
        if vx is not None:
            model.eval()
            with torch.no_grad():
                pred = torch.cat([model(views(vx[i : i + 512], rng, False)).argmax(1) for i in range(0, len(vx), 512)]).numpy()
            msg += f" val accuracy {(pred == vy).mean():.3f}"
        print(msg, flush=True)
    torch.save(model.state_dict(), args.out / "colour.pt")
    if args.onnx:
        torch.onnx.export(
            Export(copy.deepcopy(model).eval()).eval(),
            torch.zeros(1, 3, SIZE, SIZE),
            str(args.onnx),
            input_names=["images"],
            output_names=["probs"],
            opset_version=17,
            dynamic_axes={"images": {0: "batch"}, "probs": {0: "batch"}},
            dynamo=False,
        )
        import onnx

        g = onnx.load(str(args.onnx))
        d = g.graph.output[0].type.tensor_type.shape.dim[1]
        d.Clear()
        d.dim_value = len(COLOURS)
        onnx.checker.check_model(g)
        onnx.save(g, str(args.onnx))
        classes = ", ".join(f'"{c}"' for c in COLOURS)
        args.onnx.with_suffix(".toml").write_text(
            f"""# safecity's vehicle colour classifier (models/README.md). Output [B, {len(COLOURS)}]
# probabilities. Feed the vehicle box widened by {CROP_MARGIN:g} of its size on each side.
kind = "classifier"
classes = [{classes}]
logits = false
crop_margin = [{CROP_MARGIN:g}, {CROP_MARGIN:g}]

[input]
width = {SIZE}
height = {SIZE}
channels = "rgb"
scale = 0.00392156862745098
resize = "stretch"
"""
        )
        print(f"exported {args.onnx} ({args.onnx.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()

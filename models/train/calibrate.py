"""Fits a plate reader's temperature on a validation split and writes it
into the reader's description.

    python calibrate.py --onnx ../safecity-plate-strong.onnx [--write]
    python calibrate.py --onnx ../safecity-plate.onnx --sim DIR [--write]

The reader's confidence in a text is the product of its slots'
probabilities. One temperature divides all logits before the softmax; it is
chosen to minimise the log loss of "the best text is exactly right" on the
validation plates, read the way the runtime reads them: the box widened by
each of the description's margins, stretched to the input, the views'
probabilities averaged. The strong reader is fitted on the real
validation split (`train_reader.real_split`: the openalpr-us train photos
and romania-dashcam rides that training keeps out); the fast reader, which keeps only what it reads as
a Kazakhstan plate, on held-out simulator plate windows (`--sim`, a seed
never trained on and not the `make eval` hold-out). Prints the
reliability table and the expected calibration error (ECE, 10 equal bins)
before and after.
"""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort

from common import decode_slots, load_simulated
from plate_data import box_crop, cut_patches, runtime_crop_box, to_gray
from train_reader import real_split


def logits_of(session, items, desc: dict) -> np.ndarray:
    """[views, N, slots, classes] raw scores, one view per margin."""
    inp = desc["input"]
    size = (inp["width"], inp["height"])
    mean, std = inp.get("mean", [0.0])[0], inp.get("std", [1.0])[0]
    margins = [desc.get("crop_margin", [0.08, 0.15])] + desc.get("crop_views", [])
    out = []
    for mx, my in margins:
        views = []
        for it in items:
            img = box_crop(it["patch"], runtime_crop_box(it["box"], mx, my), size)
            views.append((to_gray(img) * inp.get("scale", 1 / 255) - mean) / std)
        x = np.stack(views)[:, None].astype(np.float32)
        out.append(np.concatenate([session.run(None, {"images": x[s : s + 64]})[0] for s in range(0, len(x), 64)]))
    return np.stack(out)


def confidences(logits: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    z = logits / t
    z = z - z.max(-1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(-1, keepdims=True)
    p = p.mean(0)  # the views
    return p.max(-1).prod(-1), p.argmax(-1)


def ece(conf: np.ndarray, right: np.ndarray, bins: int = 10) -> tuple[float, list]:
    table, total = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        m = (conf >= lo) & ((conf < hi) if b < bins - 1 else (conf <= hi))
        if m.any():
            acc, mean = right[m].mean(), conf[m].mean()
            total += m.sum() / len(conf) * abs(acc - mean)
            table.append((lo, hi, int(m.sum()), float(mean), float(acc)))
    return float(total), table


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path, required=True)
    ap.add_argument("--sim", type=Path, help="held-out simulator plate windows instead of the real photos")
    ap.add_argument("--write", action="store_true", help="write the temperature into the .toml beside the model")
    args = ap.parse_args()
    if args.sim:
        items, what = cut_patches(load_simulated(args.sim), only_readable=True), "readable simulator"
    else:
        items, what = cut_patches(real_split()[1]), "real validation"
    desc = tomllib.loads(args.onnx.with_suffix(".toml").read_text())
    session = ort.InferenceSession(str(args.onnx), providers=["CPUExecutionProvider"])
    logits = logits_of(session, items, desc)
    truth = [it["text"] for it in items]

    def scored(t):
        conf, idx = confidences(logits, t)
        right = np.array([decode_slots(i) == s for i, s in zip(idx, truth)], np.float64)
        return conf, right

    def nll(t):
        conf, right = scored(t)
        c = np.clip(conf, 1e-6, 1 - 1e-6)
        return float(-(right * np.log(c) + (1 - right) * np.log(1 - c)).mean())

    grid = np.exp(np.linspace(np.log(0.3), np.log(5.0), 200))
    best = float(min(grid, key=nll))
    for name, t in (("as trained (T=1)", 1.0), (f"calibrated (T={best:.3f})", best)):
        conf, right = scored(t)
        e, table = ece(conf, right)
        print(f"{name}: {len(items)} {what} plates, exact {right.mean():.3f}, log loss {nll(t):.4f}, ECE {e:.4f}")
        for lo, hi, n, mean, acc in table:
            print(f"  {lo:.1f}-{hi:.1f}  n={n:3d}  confidence {mean:.3f}  right {acc:.3f}")
    if args.write:
        toml = args.onnx.with_suffix(".toml")
        text = toml.read_text()
        line = f"temperature = {best:.4f}"
        text = re.sub(r"^temperature = .*$", line, text, flags=re.M) if "temperature =" in text else text.replace(
            "\n[input]", f"\n{line}\n\n[input]", 1
        )
        toml.write_text(text)
        print(f"wrote {line} into {toml}")


if __name__ == "__main__":
    main()

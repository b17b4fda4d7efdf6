"""Trains the vehicle+plate detector and exports it to ONNX.

    python train_detector.py --sim DIR [DIR...] --out target/train-data/det --minutes 30
"""

from __future__ import annotations

import argparse
import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from common import CLASSES, load_simulated, openalpr_split, romania_split
from det_data import CropSampler, build_cache, collate
from detector import STRIDES, Detector, ExportWrapper, anchor_points, detection_loss, from_onnx


class Ema:
    """Exponential moving average of the weights: on a short schedule it is
    worth several extra epochs."""

    def __init__(self, model, decay=0.999):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / 300))
        for e, m in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(d).add_(m.detach(), alpha=1 - d)
            else:
                e.copy_(m)


def export_onnx(model: Detector, width: int, height: int, path: Path):
    wrapper = ExportWrapper(copy.deepcopy(model).eval(), height, width).eval()
    dummy = torch.zeros(1, 3, height, width)
    torch.onnx.export(
        wrapper,
        dummy,
        str(path),
        input_names=["images"],
        output_names=["output0"],
        opset_version=17,
        dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
        dynamo=False,
    )
    # The exporter leaves the row count symbolic; pin it so tools and the
    # Rust side see [batch, 9, N].
    import onnx

    m = onnx.load(str(path))
    dims = m.graph.output[0].type.tensor_type.shape.dim
    n = sum((height // s) * (width // s) for s in STRIDES)
    dims[1].Clear()
    dims[1].dim_value = 4 + len(CLASSES)
    dims[2].Clear()
    dims[2].dim_value = n
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def write_description(path: Path, width: int, height: int):
    classes = ", ".join(f'"{c}"' for c in CLASSES)
    path.write_text(
        f"""# safecity's own vehicle and plate detector (models/README.md).
# Output [B, 9, N]: cx, cy, w, h in input pixels, then 5 class scores
# already through a sigmoid (ultralytics YOLOv8 layout).
kind = "detector"
layout = "yolov8"
classes = [{classes}]
strides = [{", ".join(str(s) for s in STRIDES)}]
score_threshold = 0.25
iou_threshold = 0.45

[input]
width = {width}
height = {height}
channels = "rgb"
scale = 0.00392156862745098
resize = "letterbox"
pad = 114
"""
    )


def draw_weights(samples, pool, balance: float):
    """Draw probabilities over `pool` (indices into `samples`): each
    simulated picture weighs count(c)^-balance for the rarest vehicle class
    c in it, so pictures with buses, trucks and motorcycles come up more
    often than their share. Photos labelled for plates only keep the share
    of the pool they have without balancing. None when balance is 0
    (uniform draws)."""
    if balance <= 0:
        return None
    counts = np.zeros(len(CLASSES))
    for s in samples:
        for v in s.vehicles:
            counts[int(v[4])] += 1
    counts = np.maximum(counts, 1)
    per_picture = []
    for s in samples:
        classes = {int(v[4]) for v in s.vehicles}
        per_picture.append(max((counts[c] ** -balance for c in classes), default=counts.max() ** -balance))
    w = np.array([per_picture[i] for i in pool])
    plates_only = np.array([samples[i].plates_only for i in pool])
    share = plates_only.mean()
    if plates_only.any():
        w[plates_only] = share / plates_only.sum()
    w[~plates_only] *= (1 - share) / w[~plates_only].sum()
    return w / w.sum()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", nargs="+", type=Path, required=True, help="simulator image folders")
    ap.add_argument("--openalpr-repeat", type=int, default=3, help="times the openalpr train photos are repeated per epoch (0: unused)")
    ap.add_argument(
        "--romania-repeat",
        type=int,
        default=0,
        help="times the romania-dashcam frames of the training rides (every plate box) are repeated per epoch (0: unused)",
    )
    ap.add_argument("--out", type=Path, required=True, help="work folder: cache, checkpoints, log")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--crop", type=int, nargs=2, default=(384, 224), metavar=("W", "H"), help="training view size")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget; the LR schedule follows it")
    ap.add_argument("--steps", type=int, default=0, help="fixed step count instead of --minutes")
    ap.add_argument("--init", type=Path, help="checkpoint to start from: a previous run's .pt, or a released .onnx")
    ap.add_argument(
        "--balance",
        type=float,
        default=0.0,
        help="draw pictures with weight count(class)^-A of their rarest vehicle class (0: every picture alike)",
    )
    ap.add_argument(
        "--full-every",
        type=int,
        default=0,
        help="every Nth step trains on whole canvases (half the batch) instead of crops, so vehicles that fill the frame are seen whole (0: never)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--onnx", type=Path, help="where to export the ONNX model")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)

    samples = [s for d in args.sim for s in load_simulated(d)]
    n_sim = len(samples)
    # Photos labelled for plates only, each set repeated its own number of
    # times per epoch.
    repeats = []
    for repeat, photos in [
        (args.openalpr_repeat, lambda: openalpr_split()[0]),
        (args.romania_repeat, lambda: romania_split(illegible=True)[0]),
    ]:
        if repeat:
            extra = photos()
            samples += extra
            repeats += [repeat] * len(extra)
    cache_path = args.out / f"cache-{args.width}x{args.height}-{len(samples)}.npy"
    if cache_path.exists():
        cache = np.load(cache_path, mmap_mode="r")
    else:
        t = time.time()
        cache = build_cache(samples, args.width, args.height, cache_path)
        print(f"cached {len(samples)} pictures in {time.time() - t:.0f} s", flush=True)
    sampler = CropSampler(cache, samples, args.crop[0], args.crop[1], args.seed)
    vehicle_ok = np.array([not s.plates_only for s in samples])
    order_rng = np.random.default_rng(args.seed)
    pool = list(range(n_sim)) + [n_sim + i for i, r in enumerate(repeats) for _ in range(r)]
    weights = draw_weights(samples, pool, args.balance)

    model = Detector()
    if args.init and args.init.suffix == ".onnx":
        calibration = torch.from_numpy(np.stack([sampler.view(i)[0] for i in order_rng.choice(n_sim, 32, replace=False)]))
        model = from_onnx(args.init, calibration)
        print(f"starting from {args.init} (weights unfolded, BatchNorm statistics from 32 views)", flush=True)
    elif args.init:
        model.load_state_dict(torch.load(args.init)["model"])
        print(f"starting from {args.init}", flush=True)
    model = model.to(memory_format=torch.channels_last)
    print(f"detector: {sum(p.numel() for p in model.parameters())} parameters, {len(samples)} pictures ({n_sim} simulated)", flush=True)
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        (no_decay if p.ndim <= 1 else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}], lr=args.lr)
    ema = Ema(model)
    points, strides = anchor_points(args.crop[1], args.crop[0])
    full_points = anchor_points(args.height, args.width)

    start = time.time()
    step, epoch, queue = 0, 0, []
    budget = args.minutes * 60
    log = open(args.out / "train.log", "a")
    while True:
        progress = step / args.steps if args.steps else (time.time() - start) / budget
        if progress >= 1:
            break
        # Short warm-up, then cosine to 5%.
        warm = min(1.0, (step + 1) / 100)
        lr = args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = lr
        full = args.full_every > 0 and step % args.full_every == args.full_every - 1
        n = max(1, args.batch // 2) if full else args.batch
        if len(queue) < n:
            if weights is None:
                queue += list(order_rng.permutation(pool))
            else:
                queue += list(order_rng.choice(pool, len(pool), p=weights))
            epoch += 1
        idx, queue = queue[:n], queue[n:]
        views = [sampler.view(i, full=full) for i in idx]
        step_points, step_strides = full_points if full else (points, strides)
        images, targets = collate(views, vehicle_ok[idx], step_points)
        model.train()
        cls, ltrb = model(images.contiguous(memory_format=torch.channels_last))
        loss, info = detection_loss(cls, ltrb, step_points, step_strides, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        ema.update(model)
        step += 1
        if step % 20 == 0:
            msg = (
                f"step {step} epoch {epoch} {time.time() - start:.0f}s lr {lr:.5f} loss {loss.item():.3f} "
                f"cls {info['cls']:.3f} box {info['box']:.3f} fg {info['fg']}"
            )
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
        if step % 200 == 0:
            torch.save({"model": ema.model.state_dict(), "step": step}, args.out / "detector-ema.pt")
    torch.save({"model": ema.model.state_dict(), "step": step}, args.out / "detector-ema.pt")
    print(f"trained {step} steps, {epoch} epochs, {time.time() - start:.0f} s", flush=True)
    if args.onnx:
        export_onnx(ema.model, args.width, args.height, args.onnx)
        write_description(args.onnx.with_suffix(".toml"), args.width, args.height)
        print(f"exported {args.onnx} ({args.onnx.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()

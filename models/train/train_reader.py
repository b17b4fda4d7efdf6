"""Fine-tunes the pretrained-backbone plate reader (`ppocr_reader`) on real
and synthetic plates and exports it to ONNX.

    python train_reader.py --sim DIR [DIR...] --val DIR --out target/train-data/reader \
        --minutes 70 --onnx ../safecity-plate.onnx

Each batch mixes four sources:
- synthetic plates of many countries, typefaces and camera conditions
  (`plate_synth`, a pool made once and cached);
- the simulator's plate windows (Kazakhstan plates in the simulator's
  scenes, with their two-line and foreign plates);
- the openalpr-us train photos, less every fourth of them;
- the romania-dashcam frames with the plate texts of `labels/`, less the
  rides kept for validation (`common.romania_split`).
The held-out fourth of the openalpr-us train photos and the romania-dashcam
validation rides make the real validation split that picks the checkpoint
and calibrates the confidence (`calibrate.py`). The openalpr-us test split
is never read.

Loss: cross-entropy over the ten slots, plus a CTC loss through the
recogniser's own sequence head on single-line plates, which keeps the
backbone reading text the way it learned to.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import pickle
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from common import ALPHABET, decode_slots, load_simulated, openalpr_split, romania_split
from plate_data import augment_view, cut_patches
from plate_synth import make_items
from ppocr_reader import HEIGHT, WIDTH, PpocrReader, export_onnx, normalise

PAD = len(ALPHABET) - 1
# Share of each source in a batch: synthetic, simulator, real US photos,
# real Romanian dashcam frames.
MIX = (0.40, 0.35, 0.12, 0.13)


def openalpr_train_split():
    """openalpr-us train photos into (train, validation): every fourth photo
    by sorted name is validation."""
    train = openalpr_split()[0]
    return [s for i, s in enumerate(train) if i % 4 != 3], [s for i, s in enumerate(train) if i % 4 == 3]


def real_split():
    """The real validation split beside the real training photos: openalpr-us
    (`openalpr_train_split`) and romania-dashcam (`common.romania_split`).
    Returns ((openalpr train, romania train), validation)."""
    (us, us_val), (ro, ro_val) = openalpr_train_split(), romania_split()
    return (us, ro), us_val + ro_val


def synth_pool(n: int, seed: int, cache: Path, procs: int) -> list[dict]:
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    chunks = [(n // procs + (1 if k < n % procs else 0), seed * 1000 + k) for k in range(procs)]
    with multiprocessing.Pool(procs) as pool:
        items = [it for part in pool.starmap(make_items, chunks) for it in part]
    cache.write_bytes(pickle.dumps(items))
    return items


def batch(items, rng, train):
    x = np.stack([normalise(augment_view(it, (WIDTH, HEIGHT), rng, train)) for it in items])[:, None]
    y = np.stack([it["label"] for it in items])
    return torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)


def ctc_targets(items):
    """CTC targets (class 1.. for 0-9A-Z, blank 0) of the single-line items."""
    keep, targets, lengths = [], [], []
    for k, it in enumerate(items):
        if it.get("layout") == "two_line" or not it["text"]:
            continue
        keep.append(k)
        targets += [ALPHABET.index(c) + 1 for c in it["text"]]
        lengths.append(len(it["text"]))
    return keep, torch.tensor(targets, dtype=torch.long), torch.tensor(lengths, dtype=torch.long)


def read(model, items, rng):
    """Slot probabilities [N, 10, 37] of items as the runtime crops them."""
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(items), 64):
            x, _ = batch(items[s : s + 64], rng, False)
            out.append(F.softmax(model(x)[0], -1))
    return torch.cat(out) if out else torch.zeros(0, 10, len(ALPHABET))


def exact(model, items, rng) -> float:
    if not items:
        return float("nan")
    probs = read(model, items, rng)
    return sum(decode_slots(p) == it["text"] for p, it in zip(probs.argmax(-1).numpy(), items)) / len(items)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim", nargs="*", type=Path, default=[], help="simulator plate-window folders")
    ap.add_argument("--val", type=Path, help="held-out simulator folder (readable plates are scored)")
    ap.add_argument("--synth", type=int, default=30000, help="synthetic plates in the pool")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--lr", type=float, default=3e-4, help="backbone learning rate (the head gets 3x)")
    ap.add_argument("--ctc-weight", type=float, default=0.3)
    ap.add_argument("--minutes", type=float, default=70.0)
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--init", type=Path, help="checkpoint (.pt) to continue from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--onnx", type=Path)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    synth = synth_pool(args.synth, args.seed, args.out / f"synth-{args.synth}-{args.seed}.pkl", max(1, args.threads))
    sim_cache = args.out / f"sim-{'-'.join(d.name for d in args.sim)}.pkl"
    if sim_cache.exists():
        sim = pickle.loads(sim_cache.read_bytes())
    else:
        sim = cut_patches([s for d in args.sim for s in load_simulated(d)])
        sim_cache.write_bytes(pickle.dumps(sim))
    (us, ro), val = real_split()
    real_us, real_ro, real_val = cut_patches(us), cut_patches(ro), cut_patches(val)
    sim_val = cut_patches(load_simulated(args.val), only_readable=True)[:1000] if args.val else []
    print(
        f"plates: {len(synth)} synthetic, {len(sim)} simulated, {len(real_us)} + {len(real_ro)} real; "
        f"validation {len(real_val)} real, {len(sim_val)} simulated ({time.time() - t0:.0f} s)",
        flush=True,
    )
    sources = [src for src in (synth, sim, real_us, real_ro) if src]
    mix = np.array([m for m, src in zip(MIX, (synth, sim, real_us, real_ro)) if src])
    mix /= mix.sum()

    model = PpocrReader()
    if args.init:
        model.load_state_dict(torch.load(args.init))
    print(f"reader: {sum(p.numel() for p in model.parameters())} parameters", flush=True)
    opt = torch.optim.AdamW(
        [
            {"params": model.backbone_parameters(), "base": args.lr},
            {"params": model.head_parameters(), "base": args.lr * 3},
        ],
        weight_decay=1e-4,
    )
    log = open(args.out / "train.log", "a")
    start, step, best = time.time(), 0, -1.0
    while True:
        progress = step / args.steps if args.steps else (time.time() - start) / (args.minutes * 60)
        if progress >= 1:
            break
        scale = min(1.0, (step + 1) / args.warmup) * (0.03 + 0.97 * 0.5 * (1 + math.cos(math.pi * progress)))
        for g in opt.param_groups:
            g["lr"] = g["base"] * scale
        counts = rng.multinomial(args.batch, mix)
        items = [src[i] for src, c in zip(sources, counts) for i in rng.integers(0, len(src), c)]
        x, y = batch(items, rng, True)
        model.train()
        model.graph.eval()  # the pretrained BatchNorm statistics stay as they are
        slots, seq = model(x)
        loss = F.cross_entropy(slots.reshape(-1, len(ALPHABET)), y.reshape(-1), label_smoothing=0.05)
        keep, targets, lengths = ctc_targets(items)
        if keep and args.ctc_weight:
            logp = F.log_softmax(seq[keep], -1).transpose(0, 1)  # [T, N, C]
            inputs = torch.full((len(keep),), logp.shape[0], dtype=torch.long)
            ctc = F.ctc_loss(logp, targets, inputs, lengths, blank=0, zero_infinity=True)
            loss = loss + args.ctc_weight * ctc
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        if step % 25 == 0:
            msg = f"step {step} {time.time() - start:.0f}s lr {args.lr * scale:.6f} loss {loss.item():.4f}"
            if step % args.eval_every == 0:
                r, s = exact(model, real_val, rng), exact(model, sim_val, rng)
                msg += f" val real {r:.3f} sim {s:.3f}"
                score = np.nanmean([r, s])
                if score >= best:
                    best = score
                    torch.save(model.state_dict(), args.out / "best.pt")
                    msg += " (best)"
            print(msg, flush=True)
            log.write(msg + "\n")
            log.flush()
            torch.save(model.state_dict(), args.out / "last.pt")
    torch.save(model.state_dict(), args.out / "last.pt")
    r, s = exact(model, real_val, rng), exact(model, sim_val, rng)
    print(f"trained {step} steps in {time.time() - start:.0f} s; last: val real {r:.3f} sim {s:.3f}", flush=True)
    if np.nanmean([r, s]) < best:
        model.load_state_dict(torch.load(args.out / "best.pt"))
        print("exporting the best checkpoint", flush=True)
    if args.onnx:
        export_onnx(model, args.onnx)
        print(f"exported {args.onnx} ({args.onnx.stat().st_size} bytes)", flush=True)


if __name__ == "__main__":
    main()

"""Detector training data: letterboxed pictures cached once as a uint8
array, then random scale/crop/flip/colour jitter per step."""

from __future__ import annotations

import numpy as np
from PIL import Image

from common import PLATE_CLASS, Sample, letterbox

# Plates smaller than this (source pixels high) and not marked readable are
# neither positives nor negatives: no one can read them, and forcing the
# model to find 2-pixel plates only adds noise.
MIN_PLATE_HEIGHT = 6.0
# Vehicles lower than this (source pixels) are ignore regions too: a few
# pixels of distant traffic teach nothing a camera here needs.
MIN_VEHICLE_HEIGHT = 12.0


def build_cache(samples: list[Sample], width: int, height: int, path) -> np.ndarray:
    """Letterboxes every picture once into a memory-mapped [N,H,W,3] file."""
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(len(samples), height, width, 3))
    for i, s in enumerate(samples):
        with Image.open(s.path) as im:
            arr[i] = letterbox(im, width, height)[0]
    arr.flush()
    return arr


def labels_in_input(s: Sample, width: int, height: int):
    """Boxes of one sample in letterboxed input pixels, x1y1x2y2.
    Returns (boxes [G,4], classes [G], ignore boxes [K,4])."""
    from common import letterbox_params

    scale, ox, oy = letterbox_params(s.width, s.height, width, height)
    boxes, classes, ignore = [], [], []
    for x, y, w, h, c in s.vehicles:
        if h < MIN_VEHICLE_HEIGHT:
            ignore.append([x, y, x + w, y + h])
            continue
        boxes.append([x, y, x + w, y + h])
        classes.append(int(c))
    for p in s.plates:
        x, y, w, h = p.box
        b = [x, y, x + w, y + h]
        if p.readable or h >= MIN_PLATE_HEIGHT:
            boxes.append(b)
            classes.append(PLATE_CLASS)
        else:
            ignore.append(b)

    def tf(b):
        b = np.array(b, np.float32).reshape(-1, 4)
        b[:, [0, 2]] = b[:, [0, 2]] * scale + ox
        b[:, [1, 3]] = b[:, [1, 3]] * scale + oy
        return b

    return tf(boxes), np.array(classes, np.int64), tf(ignore)


class CropSampler:
    """Random training views of the cached canvases. Crops smaller than the
    full input keep objects at their real scale (the network is fully
    convolutional) while costing a fraction of the compute per step."""

    def __init__(self, cache: np.ndarray, samples: list[Sample], crop_w: int, crop_h: int, seed: int):
        self.cache = cache
        self.samples = samples
        self.crop_w, self.crop_h = crop_w, crop_h
        h, w = cache.shape[1:3]
        self.labels = [labels_in_input(s, w, h) for s in samples]
        self.rng = np.random.default_rng(seed)

    def view(self, i: int, full: bool = False):
        """A training view of picture i: a crop of the crop size, or with
        `full` the whole canvas at a scale near 1 (vehicles that fill the
        frame do not fit in a crop)."""
        rng = self.rng
        canvas = self.cache[i]
        H, W = canvas.shape[:2]
        boxes, classes, ignore = self.labels[i]
        out_w, out_h = (W, H) if full else (self.crop_w, self.crop_h)
        if full:
            s = float(np.exp(rng.uniform(np.log(0.85), np.log(1.15))))
        else:
            s = float(np.exp(rng.uniform(np.log(0.75), np.log(1.3))))
        # Crop window in canvas pixels, then resized to the output size.
        cw, ch = out_w / s, out_h / s
        # Bias the window towards objects: centre it on a random object half the time.
        if len(boxes) and not full and rng.random() < 0.6:
            b = boxes[rng.integers(len(boxes))]
            cx = (b[0] + b[2]) / 2 + rng.uniform(-0.4, 0.4) * cw
            cy = (b[1] + b[3]) / 2 + rng.uniform(-0.4, 0.4) * ch
            x0, y0 = cx - cw / 2, cy - ch / 2
        else:
            x0, y0 = rng.uniform(min(0, W - cw), max(0, W - cw)), rng.uniform(min(0, H - ch), max(0, H - ch))
        x0 = float(np.clip(x0, min(0, W - cw), max(0, W - cw)))
        y0 = float(np.clip(y0, min(0, H - ch), max(0, H - ch)))
        img = Image.fromarray(np.ascontiguousarray(canvas)).transform(
            (out_w, out_h), Image.AFFINE, (1 / s, 0, x0, 0, 1 / s, y0), resample=Image.BILINEAR, fillcolor=(114, 114, 114)
        )
        out = np.asarray(img, np.float32)

        def tf(b):
            b = b.copy()
            b[:, [0, 2]] = (b[:, [0, 2]] - x0) * s
            b[:, [1, 3]] = (b[:, [1, 3]] - y0) * s
            return b

        boxes_t, ignore_t = tf(boxes), tf(ignore)
        clipped = boxes_t.copy()
        clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, out_w)
        clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, out_h)
        area = lambda b: (b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0)
        frac = area(clipped) / np.maximum(area(boxes_t), 1e-6)
        keep = (frac >= 0.45) & ((clipped[:, 2] - clipped[:, 0]) >= 2) & ((clipped[:, 3] - clipped[:, 1]) >= 1.5)
        # Mostly cut-off objects: ignored rather than taught as background.
        ign = np.concatenate([ignore_t, clipped[~keep & (frac > 0)]], 0)
        boxes_t, classes_t = clipped[keep], classes[keep]
        if rng.random() < 0.5:
            out = out[:, ::-1]
            for b in (boxes_t, ign):
                b[:, [0, 2]] = out_w - b[:, [2, 0]]
        # Colour: brightness, contrast, per-channel gain, noise.
        out = out * rng.uniform(0.6, 1.4) + rng.uniform(-30, 30)
        out = out * rng.uniform(0.9, 1.1, size=3)
        if rng.random() < 0.3:
            out = out + rng.normal(0, rng.uniform(2, 8), out.shape)
        out = np.clip(out, 0, 255) / 255.0
        return np.ascontiguousarray(out.transpose(2, 0, 1), dtype=np.float32), boxes_t, classes_t, ign


def collate(views, vehicle_mask, points):
    """Stacks views into tensors for detection_loss."""
    import torch

    B = len(views)
    G = max(1, max(len(v[1]) for v in views))
    boxes = torch.zeros(B, G, 4)
    cls = torch.zeros(B, G, dtype=torch.long)
    valid = torch.zeros(B, G, dtype=torch.bool)
    ignore = torch.zeros(B, points.shape[0], dtype=torch.bool)
    for i, (_, b, c, ign) in enumerate(views):
        n = len(b)
        if n:
            boxes[i, :n] = torch.from_numpy(b)
            cls[i, :n] = torch.from_numpy(c)
            valid[i, :n] = True
        if len(ign):
            g = torch.from_numpy(ign)
            inside = (points[None, :, 0] >= g[:, None, 0]) & (points[None, :, 0] <= g[:, None, 2])
            inside &= (points[None, :, 1] >= g[:, None, 1]) & (points[None, :, 1] <= g[:, None, 3])
            ignore[i] = inside.any(0)
    images = torch.from_numpy(np.stack([v[0] for v in views]))
    return images, {
        "boxes": boxes,
        "cls": cls,
        "valid": valid,
        "ignore": ignore,
        "vehicle_mask": torch.tensor(vehicle_mask, dtype=torch.bool),
    }

"""Plate-reader training data: patches around each plate cut once from the
source pictures, then per step either a perspective warp from jittered
ground-truth corners or an axis-aligned box crop with random margins (what
the runtime feeds: the detector's box, widened, stretched to the input)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

from common import Sample, encode_text

# Plates shorter than this in source pixels are not used for reading
# unless the simulator marks them readable.
MIN_READ_HEIGHT = 14.0
# Patches of plates taller than this are scaled down when cut: the reader
# sees a plate about 50 px high at most, and the patches take less memory.
MAX_PATCH_PLATE_HEIGHT = 40.0
# The crop the runtime should make around a detected plate box: this
# fraction of the box width on the left and right, of the height above and
# below. Training margins are drawn around it.
MARGIN_X, MARGIN_Y = 0.08, 0.15


def runtime_crop_box(box, margin_x=MARGIN_X, margin_y=MARGIN_Y):
    """x, y, w, h plate box to the x0, y0, x1, y1 region the reader sees."""
    x, y, w, h = box
    return x - margin_x * w, y - margin_y * h, x + w * (1 + margin_x), y + h * (1 + margin_y)


def cut_patches(samples: list[Sample], only_readable: bool = False):
    """For each usable plate: a uint8 RGB patch around it (the box widened
    by its own size), the box and corners in patch pixels, and the label."""
    out = []
    for s in samples:
        plates = [
            p
            for p in s.plates
            if p.text and (p.readable or (not only_readable and p.box[3] >= MIN_READ_HEIGHT))
        ]
        if not plates:
            continue
        with Image.open(s.path) as im:
            im = im.convert("RGB")
            for p in plates:
                x, y, w, h = p.box
                x0, y0 = int(max(0, x - w * 0.6)), int(max(0, y - h * 1.0))
                x1, y1 = int(min(s.width, x + w * 1.6 + 1)), int(min(s.height, y + h * 2.0 + 1))
                crop = im.crop((x0, y0, x1, y1))
                f = min(1.0, MAX_PATCH_PLATE_HEIGHT / max(h, 1.0))
                if f < 1.0:
                    crop = crop.resize((max(1, round(crop.width * f)), max(1, round(crop.height * f))), Image.BOX)
                    f_x, f_y = crop.width / (x1 - x0), crop.height / (y1 - y0)
                else:
                    f_x = f_y = 1.0
                scale = np.array([f_x, f_y], np.float32)
                patch = np.asarray(crop)
                corners = None if p.corners is None else (p.corners - np.array([x0, y0], np.float32)) * scale
                out.append(
                    {
                        "patch": patch,
                        "box": np.array([(x - x0) * f_x, (y - y0) * f_y, w * f_x, h * f_y], np.float32),
                        "corners": corners,
                        "text": p.text,
                        "layout": p.layout,
                        "label": encode_text(p.text),
                    }
                )
    return out


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """Same weights as the Rust preprocessing."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def box_crop(patch: np.ndarray, region, size) -> np.ndarray:
    """Axis-aligned region x0, y0, x1, y1 stretched to size (w, h), float RGB."""
    # Outside the patch the edge pixels repeat, as the runtime clamps its
    # samples to the frame.
    ph, pw = patch.shape[:2]
    x0, y0, x1, y1 = (float(v) for v in region)
    px = int(np.ceil(max(0.0, -x0, x1 - pw))) + 1
    py = int(np.ceil(max(0.0, -y0, y1 - ph))) + 1
    im = Image.fromarray(np.pad(patch, ((py, py), (px, px), (0, 0)), mode="edge"))
    return np.asarray(im.resize(size, Image.BILINEAR, box=(x0 + px, y0 + py, x1 + px, y1 + py)), np.float32)


def _perspective_coeffs(dst_quad, src_quad):
    """PIL perspective coefficients mapping output points to input points."""
    a, b = [], []
    for (x, y), (u, v) in zip(dst_quad, src_quad):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return np.linalg.solve(np.array(a, np.float64), np.array(b, np.float64))


def warp_crop(patch: np.ndarray, corners: np.ndarray, size) -> np.ndarray:
    W, H = size
    coeffs = _perspective_coeffs([(0, 0), (W, 0), (W, H), (0, H)], corners)
    im = Image.fromarray(patch).transform(size, Image.PERSPECTIVE, tuple(coeffs), Image.BILINEAR)
    return np.asarray(im, np.float32)


def augment_view(item, size, rng: np.random.Generator, train: bool = True) -> np.ndarray:
    """One gray [H, W] float view in 0..1 of a plate."""
    patch = item["patch"]
    x, y, w, h = item["box"]
    if not train:
        img = box_crop(patch, runtime_crop_box((x, y, w, h)), size)
        return to_gray(img) / 255.0
    if item["corners"] is not None and rng.random() < 0.35:
        # Corners pushed out by a margin, each jittered.
        c = item["corners"].copy()
        centre = c.mean(0)
        c = centre + (c - centre) * rng.uniform(1.02, 1.25)
        c += rng.normal(0, 0.06, c.shape) * np.array([w, h])
        img = warp_crop(patch, c, size)
    else:
        # Box crop: margins around the runtime's, plus a shift as a
        # detector's box would have.
        mx = rng.uniform(-0.04, 0.22, 2)
        my = rng.uniform(-0.08, 0.40, 2)
        sx, sy = rng.normal(0, 0.03) * w, rng.normal(0, 0.06) * h
        region = (x - mx[0] * w + sx, y - my[0] * h + sy, x + w * (1 + mx[1]) + sx, y + h * (1 + my[1]) + sy)
        img = box_crop(patch, region, size)
    # Resolution loss: a plate a few pixels high, upsampled. Kept mild:
    # the simulator's own plates are already blurred and compressed.
    if rng.random() < 0.25:
        f = rng.uniform(0.5, 0.9)
        im = Image.fromarray(img.astype(np.uint8))
        small = im.resize((max(8, int(size[0] * f)), max(4, int(size[1] * f))), Image.BILINEAR)
        img = np.asarray(small.resize(size, Image.BILINEAR), np.float32)
    if rng.random() < 0.15:
        img = np.asarray(Image.fromarray(img.astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.9))), np.float32)
    if rng.random() < 0.2:
        buf = io.BytesIO()
        Image.fromarray(img.astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(30, 90)))
        img = np.asarray(Image.open(io.BytesIO(buf.getvalue())), np.float32)
    g = to_gray(img)
    g = (g - g.mean()) * rng.uniform(0.5, 1.5) + g.mean() + rng.uniform(-40, 40)
    if rng.random() < 0.3:
        g = g + rng.normal(0, rng.uniform(2, 8), g.shape)
    if rng.random() < 0.03:
        g = 255 - g  # light-on-dark plates exist abroad
    return np.clip(g, 0, 255) / 255.0

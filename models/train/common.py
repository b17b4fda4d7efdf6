"""Shared pieces of the training code: class names, ground-truth reading,
letterboxing that matches the Rust preprocessing, and the splits of the
real photo sets (openalpr-us; romania-dashcam with the plate texts in
`labels/`)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ["car", "bus", "truck", "motorcycle", "plate"]
VEHICLE_CLASSES = CLASSES[:4]
PLATE_CLASS = 4
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_"
PAD_INDEX = ALPHABET.index("_")
SLOTS = 10
PAD_GREY = 114

REPO = Path(__file__).resolve().parents[2]
DATA_ROOT = REPO / "target" / "train-data"
REAL = REPO.parent / "shared" / "data" / "real"
OPENALPR = Path(os.environ.get("SAFECITY_OPENALPR", REAL / "openalpr-us"))
ROMANIA = Path(os.environ.get("SAFECITY_ROMANIA", REAL / "romania-dashcam"))
# Plate texts for the romania-dashcam boxes, transcribed by eye, each
# plate marked legible or not and train or validation (labels/README.md).
ROMANIA_TEXTS = Path(__file__).resolve().parent / "labels" / "romania-dashcam-texts.tsv"


@dataclass
class Plate:
    text: str
    box: np.ndarray  # x, y, w, h in source pixels
    corners: np.ndarray | None  # 4x2 TL, TR, BR, BL, or None
    readable: bool
    layout: str = "single_line"


@dataclass
class Sample:
    """One picture with its labels. `vehicles` rows are x, y, w, h, class."""

    path: Path
    width: int
    height: int
    vehicles: np.ndarray
    plates: list[Plate] = field(default_factory=list)
    # Photos labelled for plates only: vehicle classes carry no negatives.
    plates_only: bool = False


def load_simulated(folder: Path) -> list[Sample]:
    """Reads a `safecity-edge simulate --images` folder."""
    out = []
    with open(folder / "ground_truth.jsonl") as f:
        for line in f:
            row = json.loads(line)
            vehicles, plates = [], []
            for v in row["vehicles"]:
                x, y, w, h = v["bbox"]
                vehicles.append([x, y, w, h, CLASSES.index(v["class"])])
                p = v.get("plate")
                if p:
                    plates.append(
                        Plate(
                            text=p["text"],
                            box=np.array(p["bbox"], np.float32),
                            corners=np.array(p["corners"], np.float32),
                            readable=bool(p["readable"]),
                            layout=p.get("layout", "single_line"),
                        )
                    )
            out.append(
                Sample(
                    path=folder / row["file"],
                    width=row["width"],
                    height=row["height"],
                    vehicles=np.array(vehicles, np.float32).reshape(-1, 5),
                    plates=plates,
                )
            )
    return out


def openalpr_split(folder: Path = OPENALPR) -> tuple[list[Sample], list[Sample]]:
    """The openalpr-us photos, split by sorted file name: every third photo
    (index 2, 5, 8, ...) is test, the rest train. Returns (train, test)."""
    train, test = [], []
    if not folder.is_dir():
        return train, test
    labels = sorted(folder.glob("*.txt"))
    for i, txt in enumerate(labels):
        plates = []
        name = None
        for line in txt.read_text().splitlines():
            parts = line.strip().split("\t")
            if len(parts) < 6:
                continue
            name = parts[0]
            x, y, w, h = map(float, parts[1:5])
            text = "".join(c for c in parts[5].upper() if c.isalnum())
            plates.append(Plate(text=text, box=np.array([x, y, w, h], np.float32), corners=None, readable=True))
        if name is None:
            continue
        path = folder / name
        with Image.open(path) as im:
            width, height = im.size
        s = Sample(path, width, height, np.zeros((0, 5), np.float32), plates, plates_only=True)
        (test if i % 3 == 2 else train).append(s)
    return train, test


def romania_split(
    folder: Path = ROMANIA, texts: Path = ROMANIA_TEXTS, illegible: bool = False
) -> tuple[list[Sample], list[Sample]]:
    """The romania-dashcam frames with the plates whose text is legible in
    the frame itself, split as the texts file says (by ride: see
    labels/README.md). Returns (train, validation); empty when the frames
    are not here. With `illegible` every plate box of a frame is kept (a
    detector must find those too), the illegible ones not `readable`."""
    if not (folder / "images").is_dir() or not texts.is_file():
        return [], []
    frames: dict[tuple[str, str], list[Plate]] = {}
    for line in texts.read_text().splitlines()[1:]:
        name, x, y, w, h, text, legible, split = line.split("\t")
        if legible == "1" or illegible:
            box = np.array([float(x), float(y), float(w), float(h)], np.float32)
            plate = Plate(text=text, box=box, corners=None, readable=legible == "1")
            frames.setdefault((split, name), []).append(plate)
    train, val = [], []
    for (split, name), plates in sorted(frames.items()):
        path = folder / "images" / name
        with Image.open(path) as im:
            width, height = im.size
        s = Sample(path, width, height, np.zeros((0, 5), np.float32), plates, plates_only=True)
        (val if split == "val" else train).append(s)
    return train, val


def letterbox_params(src_w: int, src_h: int, dst_w: int, dst_h: int) -> tuple[float, float, float]:
    """Scale and top-left offset exactly as models/src/preprocess.rs computes
    them: one scale, picture centred on whole pixels."""
    s = min(dst_w / src_w, dst_h / src_h)
    ox = float(np.floor((dst_w - src_w * s) / 2))
    oy = float(np.floor((dst_h - src_h * s) / 2))
    return s, ox, oy


def letterbox(img: Image.Image, dst_w: int, dst_h: int, scale_jitter: float = 1.0) -> tuple[np.ndarray, float, float, float]:
    """RGB picture to an HxWx3 uint8 canvas padded with grey 114. With
    `scale_jitter` != 1 the picture is scaled further (training only)."""
    s, ox, oy = letterbox_params(img.width, img.height, dst_w, dst_h)
    s *= scale_jitter
    nw, nh = max(1, round(img.width * s)), max(1, round(img.height * s))
    if scale_jitter != 1.0:
        ox, oy = float(np.floor((dst_w - nw) / 2)), float(np.floor((dst_h - nh) / 2))
    canvas = np.full((dst_h, dst_w, 3), PAD_GREY, np.uint8)
    small = np.asarray(img.convert("RGB").resize((nw, nh), Image.BILINEAR))
    # Paste with clipping (scaled-up pictures overflow the canvas).
    x0, y0 = int(ox), int(oy)
    sx0, sy0 = max(0, -x0), max(0, -y0)
    dx0, dy0 = max(0, x0), max(0, y0)
    w = min(nw - sx0, dst_w - dx0)
    h = min(nh - sy0, dst_h - dy0)
    canvas[dy0 : dy0 + h, dx0 : dx0 + w] = small[sy0 : sy0 + h, sx0 : sx0 + w]
    return canvas, s, float(x0), float(y0)


def encode_text(text: str) -> np.ndarray:
    """Plate text to SLOTS class indices, padded with `_`."""
    idx = [ALPHABET.index(c) for c in text[:SLOTS] if c in ALPHABET and c != "_"]
    return np.array(idx + [PAD_INDEX] * (SLOTS - len(idx)), np.int64)


def decode_slots(indices) -> str:
    return "".join(ALPHABET[i] for i in indices if i != PAD_INDEX)


def box_iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of x, y, w, h boxes: a [N,4], b [M,4] -> [N,M]."""
    a = np.asarray(a, np.float32).reshape(-1, 4)
    b = np.asarray(b, np.float32).reshape(-1, 4)
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, 0:1], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, 1:2], b[None, :, 1]), 0, None)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-9)

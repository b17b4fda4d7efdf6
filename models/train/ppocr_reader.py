"""The plate reader built on a pretrained text recogniser.

The backbone is PP-OCRv4's text-recognition network (PPLCNetV3, about 1.9M
parameters), shipped by the PyPI wheel `rapidocr-onnxruntime` (Apache-2.0)
as `ch_PP-OCRv4_rec_infer.onnx` and trained on large amounts of real text.
`onnx_graph.OnnxGraph` runs that graph in PyTorch with its weights
trainable. Under it sit our fixed-slot head (ten learned slot queries that
attend over the backbone's map, as in `train_plate.PlateReader`), which
reads two-line plates as well as long ones, and, during training only, the
recogniser's own sequence neck with a CTC head cut down to our 36
characters, which keeps the backbone close to what it learned about text.

Input: `[B, 1, 48, 160]` gray, `(v / 255 - 0.5) / 0.5`, the plate box
widened by the runtime margins and stretched. Output: `[B, 10, 37]` slot
logits over `0-9 A-Z _`, the same layout as the small reader's.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn

from common import ALPHABET, REPO, SLOTS
import train_plate
from onnx_graph import OnnxGraph
from train_plate import DecoderLayer

WIDTH, HEIGHT = 160, 48
WHEEL = "rapidocr-onnxruntime==1.4.4"
WHEEL_MEMBER = "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"
# SHA-256 of that member in the 1.4.4 wheel.
WHEEL_MEMBER_SHA256 = "48fc40f24f6d2a207a2b1091d3437eb3cc3eb6b676dc3ef9c37384005483683b"
# Tensor names inside the PP-OCRv4 graph: the backbone's last map
# ([B, 480, H/16, W/4]), the first conv's weight, and the sequence features
# before the character classifier ([B, W/8, 120]) with that classifier.
BACKBONE_OUT = "p2o.Add.231"
FIRST_CONV = "conv2d_10.w_0"
NECK_OUT = "transpose_51.tmp_0"
CLASSIFIER_W, CLASSIFIER_B = "linear_85.w_0", "linear_85.b_0"
CACHE = REPO / "target" / "train-data" / "pretrained"


def pretrained_path() -> Path:
    """The PP-OCRv4 recogniser from its PyPI wheel, downloaded once with pip
    into target/train-data/pretrained and checked by SHA-256."""
    out = CACHE / "ch_PP-OCRv4_rec_infer.onnx"
    if not out.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", WHEEL, "-d", str(CACHE)],
            check=True,
        )
        wheel = next(CACHE.glob("rapidocr_onnxruntime-1.4.4-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            out.write_bytes(z.read(WHEEL_MEMBER))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    if digest != WHEEL_MEMBER_SHA256:
        raise SystemExit(f"{out}: SHA-256 {digest}, expected {WHEEL_MEMBER_SHA256}; delete it to fetch it again")
    return out


def character_classes(model: onnx.ModelProto) -> list[int]:
    """Rows of the recogniser's classifier for CTC blank, then 0-9 and A-Z,
    from the character list in the model's metadata (row 0 is the blank)."""
    meta = {p.key: p.value for p in model.metadata_props}
    chars = ["<blank>"] + meta["character"].split("\n") + [" "]
    rows = [0]
    for c in ALPHABET[:-1]:
        rows.append(chars.index(c))
    return rows


class PpocrReader(nn.Module):
    def __init__(self, pretrained: Path | None = None, d: int = 128, layers: int = 2, heads: int = 4, ff: int = 256):
        super().__init__()
        model = onnx.load(str(pretrained or pretrained_path()))
        self.graph = OnnxGraph(model, outputs=[BACKBONE_OUT, NECK_OUT])
        # Gray input: the first conv's three colour filters summed.
        key = self.graph.param_names[FIRST_CONV]
        w = self.graph.params[key]
        self.graph.params[key] = nn.Parameter(w.detach().sum(1, keepdim=True))
        # CTC classifier over blank + our 36 characters, from the recogniser's.
        rows = character_classes(model)
        consts = {
            n.output[0]: onnx.numpy_helper.to_array(n.attribute[0].t)
            for n in model.graph.node
            if n.op_type == "Constant" and n.output[0] in (CLASSIFIER_W, CLASSIFIER_B)
        }
        self.ctc = nn.Linear(120, len(rows))
        with torch.no_grad():
            self.ctc.weight.copy_(torch.from_numpy(consts[CLASSIFIER_W][:, rows].T.copy()))
            self.ctc.bias.copy_(torch.from_numpy(consts[CLASSIFIER_B][rows].copy()))
        rows_out, cols_out = HEIGHT // 16, WIDTH // 4
        self.proj = nn.Sequential(nn.Conv2d(480, d, 1), nn.BatchNorm2d(d))
        self.pos = nn.Parameter(torch.randn(1, rows_out * cols_out, d) * 0.02)
        self.queries = nn.Parameter(torch.randn(1, SLOTS, d) * 0.02)
        self.mem_norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(DecoderLayer(d, heads, ff) for _ in range(layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, len(ALPHABET))

    def slots(self, fmap: torch.Tensor) -> torch.Tensor:
        mem = self.mem_norm(self.proj(fmap).flatten(2).transpose(1, 2) + self.pos)
        q = self.queries.expand(fmap.shape[0], -1, -1)
        for layer in self.layers:
            q = layer(q, mem)
        return self.head(self.out_norm(q))

    def forward(self, x: torch.Tensor):
        """Slot logits and, for the training loss, the CTC head's."""
        fmap, seq = self.graph(x)
        return self.slots(fmap), self.ctc(seq)

    def backbone_parameters(self):
        return list(self.graph.parameters())

    def head_parameters(self):
        ids = {id(p) for p in self.graph.parameters()}
        return [p for p in self.parameters() if id(p) not in ids]


class _Export(nn.Module):
    """The slot reader alone, as the runtime runs it (no CTC branch)."""

    def __init__(self, model: PpocrReader):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.slots(self.model.graph(x, outputs=[BACKBONE_OUT]))


def export_onnx(model: PpocrReader, path: Path):
    train_plate.export_onnx(_Export(model), path, (WIDTH, HEIGHT))


def normalise(gray01: np.ndarray) -> np.ndarray:
    """Gray views in 0..1 to the network's input scale."""
    return (gray01 - 0.5) / 0.5

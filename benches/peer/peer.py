#!/usr/bin/env python3
"""Peer baseline: the plate-recognition loop most teams would write in Python.

Decodes an H.264 file with PyAV, runs safecity's shipped detector on every
Nth frame and the plate reader on every detected plate, all with ONNX Runtime
on the CPU, and prints what it counted and how fast it went.

Pre- and post-processing follow the models' sidecar descriptions
(`models/*.toml`) the way safecity's Rust side reads them (models/src):
centred letterbox with the sidecar's pad value, RGB, scale 1/255, NCHW;
YOLOv8 output decoding, score threshold and class-wise NMS; plate crops
widened by the sidecar's crop margin and each of its crop views, grey,
stretched, the views' probabilities averaged; fixed-slot decoding.

    peer.py VIDEO --detector models/safecity-detector.onnx \
        --plate models/safecity-plate.onnx [--every N] [--frames M] \
        [--threads T] [--realtime FPS] [--repeat R] [--json] [--verbose]
"""

import argparse
import itertools
import json
import resource
import sys
import time
import tomllib
from pathlib import Path

import av
import cv2
import numpy as np
import onnxruntime as ort


def load_description(model):
    """The sidecar beside `model` (`x.onnx` -> `x.toml`) with safecity's defaults."""
    with open(Path(model).with_suffix(".toml"), "rb") as f:
        desc = tomllib.load(f)
    inp = desc.setdefault("input", {})
    inp.setdefault("scale", 1.0 / 255.0)
    inp.setdefault("mean", [0.0, 0.0, 0.0])
    inp.setdefault("std", [1.0, 1.0, 1.0])
    inp.setdefault("pad", 114)
    inp.setdefault("nhwc", False)
    if desc.get("kind") == "detector":
        desc.setdefault("score_threshold", 0.25)
        desc.setdefault("iou_threshold", 0.45)
        if desc.get("layout", "yolov8") != "yolov8":
            sys.exit(f"peer.py reads yolov8 detectors only, not {desc['layout']!r}")
    if desc.get("kind") == "plate_reader":
        desc.setdefault("pad", "_")
        desc.setdefault("logits", True)
        desc.setdefault("crop_margin", [0.08, 0.15])
        desc.setdefault("crop_views", [])
        if desc.get("decoder", "fixed_slots") != "fixed_slots":
            sys.exit(f"peer.py reads fixed_slots plate readers only, not {desc['decoder']!r}")
    return desc


def open_session(model, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads  # 0: ONNX Runtime chooses
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])


def resize(img, width, height):
    """OpenCV resize as a peer would pick it: area when shrinking, bilinear otherwise."""
    shrinking = width < img.shape[1] and height < img.shape[0]
    return cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_tensor(img, inp):
    """uint8 HxWxC (RGB or grey) -> float32 CxHxW (or HxWxC), normalised."""
    x = img.astype(np.float32)
    if x.ndim == 2:
        x = x[:, :, None]
    c = x.shape[2]
    if inp["scale"] != 1.0:
        x *= np.float32(inp["scale"])
    mean, std = np.float32(inp["mean"][:c]), np.float32(inp["std"][:c])
    if mean.any() or (std != 1.0).any():
        x = (x - mean) / std
    return x if inp["nhwc"] else x.transpose(2, 0, 1)


def convert_channels(rgb, channels):
    if channels == "bgr":
        return rgb[:, :, ::-1]
    if channels == "gray":
        return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # 0.299 R + 0.587 G + 0.114 B
    return rgb


def letterbox(rgb, inp):
    """Fits the frame into the input, aspect kept, centred on whole pixels
    (offsets floored), padded with `pad`. Returns the picture, the scale
    (input px per source px) and the top-left offset in input pixels."""
    iw, ih = inp["width"], inp["height"]
    h, w = rgb.shape[:2]
    s = min(iw / w, ih / h)
    cw, ch = min(iw, round(w * s)), min(ih, round(h * s))
    ox, oy = (iw - w * s) // 2, (ih - h * s) // 2
    body = resize(rgb, cw, ch)
    out = np.full((ih, iw, 3), inp["pad"], np.uint8)
    out[int(oy) : int(oy) + ch, int(ox) : int(ox) + cw] = body
    return out, s, (ox, oy)


def nms(boxes, scores, classes, iou_threshold):
    """Class-wise greedy NMS, best first; keeps indices (as safecity's nms)."""
    order = np.argsort(-scores, kind="stable")
    areas = np.maximum(boxes[:, 2] - boxes[:, 0], 0) * np.maximum(boxes[:, 3] - boxes[:, 1], 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0)
        ih = np.maximum(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0)
        inter = iw * ih
        union = areas[i] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[~((iou > iou_threshold) & (classes[rest] == classes[i]))]
    return np.array(keep, dtype=np.int64)


class Detector:
    def __init__(self, model, threads):
        self.desc = load_description(model)
        self.inp = self.desc["input"]
        self.classes = self.desc["classes"]
        self.session = open_session(model, threads)
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, rgb):
        """Detections in source pixels: list of (class name, score, [x1, y1, x2, y2])."""
        pic, s, (ox, oy) = letterbox(convert_channels(rgb, self.inp["channels"]), self.inp)
        x = to_tensor(pic, self.inp)[None]
        out = self.session.run(None, {self.input_name: x})[0][0]  # [4 + C, N]
        if out.shape[0] != 4 + len(self.classes):
            sys.exit(f"detector output {out.shape} does not match {len(self.classes)} classes")
        scores_all = out[4:]
        cls = scores_all.argmax(axis=0)
        score = scores_all[cls, np.arange(out.shape[1])]
        hit = score >= self.desc["score_threshold"]
        cx, cy, w, h = out[:4, hit]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        score, cls = score[hit], cls[hit]
        keep = nms(boxes, score, cls, self.desc["iou_threshold"])
        # Input pixels -> source pixels, clipped to the frame.
        sh, sw = rgb.shape[:2]
        boxes = boxes[keep]
        boxes[:, [0, 2]] = np.clip((boxes[:, [0, 2]] - ox) / s, 0, sw)
        boxes[:, [1, 3]] = np.clip((boxes[:, [1, 3]] - oy) / s, 0, sh)
        return [(self.classes[c], float(p), b.tolist()) for c, p, b in zip(cls[keep], score[keep], boxes)]


class PlateReader:
    def __init__(self, model, threads):
        self.desc = load_description(model)
        self.inp = self.desc["input"]
        self.alphabet = self.desc["alphabet"]
        self.pad = self.alphabet.index(self.desc["pad"])
        self.session = open_session(model, threads)
        self.input_name = self.session.get_inputs()[0].name

    def crop(self, rgb, box, margin):
        """The plate box widened by `margin`, clamped to the frame."""
        mx, my = margin
        fh, fw = rgb.shape[:2]
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        rx1 = min(max(x1 - w * mx, 0.0), fw - 1.0)
        ry1 = min(max(y1 - h * my, 0.0), fh - 1.0)
        rx2 = min(max(x2 + w * mx, rx1 + 1.0), fw)
        ry2 = min(max(y2 + h * my, ry1 + 1.0), fh)
        patch = rgb[int(ry1) : int(np.ceil(ry2)), int(rx1) : int(np.ceil(rx2))]
        patch = convert_channels(patch, self.inp["channels"])
        return to_tensor(resize(patch, self.inp["width"], self.inp["height"]), self.inp)

    def __call__(self, rgb, boxes):
        """Texts and confidences of all plates of one frame, in one batch."""
        if not boxes:
            return []
        # Each plate at every margin (crop_margin, then crop_views), its
        # views' probabilities averaged, as safecity reads them.
        margins = [self.desc["crop_margin"], *self.desc["crop_views"]]
        x = np.stack([self.crop(rgb, b, m) for b in boxes for m in margins])  # [P*V, 1, 64, 128]
        out = self.session.run(None, {self.input_name: x})[0]  # [P*V, slots, K]
        if self.desc["logits"]:
            out = np.exp(out - out.max(axis=2, keepdims=True))
            out /= out.sum(axis=2, keepdims=True)
        out = out.reshape(len(boxes), len(margins), *out.shape[1:]).mean(axis=1)
        best = out.argmax(axis=2)
        conf = out.max(axis=2).prod(axis=1)
        return [
            ("".join(self.alphabet[k] for k in slots if k != self.pad), float(c))
            for slots, c in zip(best, conf)
        ]


def frames(path, repeat):
    """Decoded frames of `path`, played `repeat` times, with FFmpeg's threading on."""
    for _ in range(repeat):
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield from container.decode(stream)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video", help="H.264 video file (MP4, MKV, ...)")
    ap.add_argument("--detector", default="models/safecity-detector.onnx")
    ap.add_argument("--plate", default="models/safecity-plate.onnx")
    ap.add_argument("--every", type=int, default=1, help="detect on every Nth frame (default 1)")
    ap.add_argument("--frames", type=int, default=0, help="stop after M decoded frames (0: all)")
    ap.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0: its default)")
    ap.add_argument("--realtime", type=float, default=0.0, metavar="FPS",
                    help="pace frames to FPS on the wall clock, as a live camera delivers them")
    ap.add_argument("--warmup", type=float, default=0.0, metavar="S",
                    help="with --realtime: also report the rates after the first S seconds")
    ap.add_argument("--repeat", type=int, default=1, help="play the file this many times")
    ap.add_argument("--json", action="store_true", help="print only the JSON summary line")
    ap.add_argument("--verbose", action="store_true", help="print detections and plate reads to stderr")
    args = ap.parse_args()
    if args.every < 1 or args.repeat < 1:
        ap.error("--every and --repeat must be at least 1")

    detector = Detector(args.detector, args.threads)
    reader = PlateReader(args.plate, args.threads)
    plate_class = detector.classes[-1]

    decoded = detected = plates = texts = objects = 0
    max_lag = 0.0
    start = time.perf_counter()
    cpu_start = time.process_time()
    warm = None  # (time, decoded, detected) when the warm-up ended
    for frame in itertools.islice(frames(args.video, args.repeat), args.frames or None):
        if args.warmup and warm is None and time.perf_counter() - start >= args.warmup:
            warm = (time.perf_counter(), decoded, detected)
        if args.realtime:
            # Frame i arrives at start + i / FPS; wait for it, and note how
            # late we are when we do get to it.
            due = start + decoded / args.realtime
            now = time.perf_counter()
            if now < due:
                time.sleep(due - now)
            else:
                max_lag = max(max_lag, now - due)
        index = decoded
        decoded += 1
        if index % args.every:
            continue
        rgb = frame.to_ndarray(format="rgb24")
        dets = detector(rgb)
        detected += 1
        objects += len(dets)
        plate_boxes = [b for name, _, b in dets if name == plate_class]
        reads = reader(rgb, plate_boxes)
        plates += len(reads)
        texts += sum(1 for t, _ in reads if len(t) >= 4)
        if args.verbose and dets:
            read_of = iter(reads)
            for name, score, (x1, y1, x2, y2) in dets:
                line = f"frame {index}: {name:<10} {score:.2f} [{x1:.0f}, {y1:.0f}, {x2 - x1:.0f}, {y2 - y1:.0f}]"
                if name == plate_class:
                    text, conf = next(read_of)
                    line += f" -> {text or '(none)'} {conf:.2f}"
                print(line, file=sys.stderr)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu_start

    result = {
        "frames": decoded,
        "detected": detected,
        "plates": plates,
        "seconds": round(seconds, 3),
        "fps": round(decoded / seconds, 2) if seconds else 0.0,
        "detect_fps": round(detected / seconds, 2) if seconds else 0.0,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # CPU seconds of all the process's threads (decoder and ORT included).
        "cpu_s": round(cpu, 3),
        "objects": objects,
        "texts": texts,
    }
    if args.realtime:
        # How far behind the stream's own clock the last frame was finished.
        lag = max(0.0, seconds - decoded / args.realtime)
        result.update(lag_s=round(lag, 3), max_lag_s=round(max_lag, 3), kept_up=lag < 1.0)
        if warm:
            # The same window and rates as safecity's real-time trial.
            window = time.perf_counter() - warm[0]
            result.update(window_s=round(window, 3),
                          window_decode_fps=round((decoded - warm[1]) / window, 2),
                          window_detect_fps=round((detected - warm[2]) / window, 2))
    if not args.json:
        print(f"{args.video}: {decoded} frames decoded, {detected} detected, {objects} objects, "
              f"{plates} plates ({texts} with 4+ characters) in {seconds:.2f} s: "
              f"{result['fps']} fps decode, {result['detect_fps']} fps detection, "
              f"peak RSS {result['peak_rss_mb']} MB")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

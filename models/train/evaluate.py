"""Training-time validation of the exported ONNX models with ONNX Runtime.

    python evaluate.py --detector ../safecity-detector.onnx --plate ../safecity-plate.onnx \
        --sim ../../target/train-data/sim/val-1000

Reports, on held-out simulator pictures: plate detection recall at IoU 0.5
for readable plates, vehicle mAP50 (and plate AP50), exact plate reads on
readable plates from ground-truth box crops and from detected box crops;
on the openalpr-us test split (every third photo by sorted name): plate
recall and exact reads. Also ms per call at the given batch sizes.
"""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from common import ALPHABET, CLASSES, PAD_INDEX, PLATE_CLASS, box_iou_xywh, letterbox, load_simulated, openalpr_split
from plate_data import box_crop, runtime_crop_box, to_gray


def nms(boxes, scores, iou_thr):
    """Greedy NMS on x, y, w, h boxes; returns kept indices."""
    order = np.argsort(-scores)
    keep = []
    while len(order):
        i = order[0]
        keep.append(i)
        if len(order) == 1:
            break
        iou = box_iou_xywh(boxes[i : i + 1], boxes[order[1:]])[0]
        order = order[1:][iou <= iou_thr]
    return keep


class DetectorRunner:
    def __init__(self, path: Path, threads: int):
        self.desc = tomllib.loads(path.with_suffix(".toml").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.w, self.h = self.desc["input"]["width"], self.desc["input"]["height"]

    def prepare(self, img: Image.Image):
        canvas, s, ox, oy = letterbox(img, self.w, self.h)
        return canvas.transpose(2, 0, 1).astype(np.float32) / 255.0, (s, ox, oy)

    def detect(self, images: list[Image.Image], score_thr: float, iou_thr: float):
        """Per picture: list of (x, y, w, h, score, class) in source pixels."""
        prepared = [self.prepare(im) for im in images]
        out = self.session.run(None, {"images": np.stack([p[0] for p in prepared])})[0]
        results = []
        for o, (_, (s, ox, oy)) in zip(out, prepared):
            cls = o[4:].argmax(0)
            score = o[4:].max(0)
            m = score >= score_thr
            if m.sum() > 1000:  # keep NMS cheap at the mAP threshold
                m = score >= np.sort(score)[-1000]
            cx, cy, w, h = o[0, m], o[1, m], o[2, m], o[3, m]
            boxes = np.stack([(cx - w / 2 - ox) / s, (cy - h / 2 - oy) / s, w / s, h / s], 1)
            dets = []
            for c in np.unique(cls[m]):
                sel = np.where(cls[m] == c)[0]
                for k in nms(boxes[sel], score[m][sel], iou_thr):
                    i = sel[k]
                    dets.append((*boxes[i], float(score[m][i]), int(c)))
            results.append(dets)
        return results


class PlateRunner:
    def __init__(self, path: Path, threads: int):
        self.desc = tomllib.loads(path.with_suffix(".toml").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.size = (self.desc["input"]["width"], self.desc["input"]["height"])

    def read(self, rgb: np.ndarray, boxes) -> list[str]:
        if not len(boxes):
            return []
        x = np.stack([to_gray(box_crop(rgb, runtime_crop_box(b), self.size)) / 255.0 for b in boxes])[:, None]
        out = self.session.run(None, {"images": x.astype(np.float32)})[0]
        return ["".join(ALPHABET[i] for i in row if i != PAD_INDEX) for row in out.argmax(-1)]


def average_precision(dets, n_gt):
    """VOC all-points AP from (score, is_true_positive) pairs."""
    if n_gt == 0:
        return float("nan")
    if not dets:
        return 0.0
    dets = sorted(dets, key=lambda d: -d[0])
    tp = np.cumsum([d[1] for d in dets])
    fp = np.cumsum([1 - d[1] for d in dets])
    recall = tp / n_gt
    precision = tp / np.maximum(tp + fp, 1e-9)
    mrec = np.concatenate([[0], recall, [1]])
    mpre = np.concatenate([[0], precision, [0]])
    for i in range(len(mpre) - 2, -1, -1):
        mpre[i] = max(mpre[i], mpre[i + 1])
    idx = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def evaluate(samples, det: DetectorRunner, reader: PlateRunner, score_thr: float, iou_thr: float, plates_only=False, batch=8):
    ap_dets = {c: [] for c in range(len(CLASSES))}
    n_gt = {c: 0 for c in range(len(CLASSES))}
    plate_stats = {"readable": 0, "found": 0, "read_gt": 0, "read_det": 0}
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        images = [Image.open(s.path).convert("RGB") for s in chunk]
        all_dets = det.detect(images, 0.001, iou_thr)
        for s, im, dets in zip(chunk, images, all_dets):
            gts = [(v[:4], int(v[4])) for v in s.vehicles] + [(p.box, PLATE_CLASS) for p in s.plates]
            for c in range(len(CLASSES)):
                if plates_only and c != PLATE_CLASS:
                    continue
                g = np.array([b for b, k in gts if k == c], np.float32).reshape(-1, 4)
                n_gt[c] += len(g)
                d = sorted([x for x in dets if x[5] == c], key=lambda x: -x[4])
                used = np.zeros(len(g), bool)
                for x in d:
                    tp = 0
                    if len(g):
                        iou = box_iou_xywh(np.array(x[:4]), g)[0]
                        iou[used] = 0
                        j = int(iou.argmax())
                        if iou[j] >= 0.5:
                            used[j], tp = True, 1
                    ap_dets[c].append((x[4], tp))
            readable = [p for p in s.plates if p.readable]
            if not readable:
                continue
            rgb = np.asarray(im)
            plate_dets = np.array([x[:4] for x in dets if x[5] == PLATE_CLASS and x[4] >= score_thr], np.float32).reshape(-1, 4)
            gt_reads = reader.read(rgb, [p.box for p in readable])
            for p, text in zip(readable, gt_reads):
                plate_stats["readable"] += 1
                plate_stats["read_gt"] += text == p.text
                if len(plate_dets):
                    iou = box_iou_xywh(p.box, plate_dets)[0]
                    j = int(iou.argmax())
                    if iou[j] >= 0.5:
                        plate_stats["found"] += 1
                        plate_stats["read_det"] += reader.read(rgb, [plate_dets[j]])[0] == p.text
    aps = {CLASSES[c]: average_precision(ap_dets[c], n_gt[c]) for c in range(len(CLASSES))}
    n = max(plate_stats["readable"], 1)
    result = {
        "pictures": len(samples),
        "readable_plates": plate_stats["readable"],
        "plate_recall_iou50": plate_stats["found"] / n,
        "exact_read_gt_box": plate_stats["read_gt"] / n,
        "exact_read_detected_box": plate_stats["read_det"] / n,
        "ap50": aps,
    }
    if not plates_only:
        result["vehicle_map50"] = float(np.nanmean([aps[c] for c in CLASSES[:4]]))
    return result


def timing(det: DetectorRunner, reader: PlateRunner, repeats: int = 10):
    out = {}
    for b in (1, 8):
        x = np.random.rand(b, 3, det.h, det.w).astype(np.float32)
        det.session.run(None, {"images": x})
        t = time.perf_counter()
        for _ in range(repeats):
            det.session.run(None, {"images": x})
        out[f"detector_batch{b}_ms_per_frame"] = (time.perf_counter() - t) / repeats / b * 1000
    for b in (1, 16):
        x = np.random.rand(b, 1, reader.size[1], reader.size[0]).astype(np.float32)
        reader.session.run(None, {"images": x})
        t = time.perf_counter()
        for _ in range(repeats * 5):
            reader.session.run(None, {"images": x})
        out[f"plate_batch{b}_ms_per_call"] = (time.perf_counter() - t) / (repeats * 5) * 1000
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--detector", type=Path, required=True)
    ap.add_argument("--plate", type=Path, required=True)
    ap.add_argument("--sim", type=Path, help="held-out simulator folder")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N simulator pictures")
    ap.add_argument("--no-openalpr", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    det = DetectorRunner(args.detector, args.threads)
    reader = PlateRunner(args.plate, args.threads)
    score_thr = det.desc.get("score_threshold", 0.25)
    iou_thr = det.desc.get("iou_threshold", 0.45)
    results = {}
    if args.sim:
        samples = load_simulated(args.sim)
        if args.limit:
            samples = samples[: args.limit]
        results["simulator"] = evaluate(samples, det, reader, score_thr, iou_thr)
        print(json.dumps({"simulator": results["simulator"]}, indent=1), flush=True)
    if not args.no_openalpr:
        test = openalpr_split()[1]
        if test:
            results["openalpr_test"] = evaluate(test, det, reader, score_thr, iou_thr, plates_only=True)
            print(json.dumps({"openalpr_test": results["openalpr_test"]}, indent=1), flush=True)
    results["timing"] = timing(det, reader)
    print(json.dumps({"timing": results["timing"]}, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

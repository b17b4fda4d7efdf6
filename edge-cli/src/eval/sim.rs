//! `--sim DIR`: simulator stills with their `ground_truth.jsonl`. Plates
//! are found at the operating threshold and read end to end and on their
//! ground-truth boxes; unreadable plates too small to see are ignore
//! regions for AP. Vehicles are scored per class (mAP50) and for the body
//! colour named.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use safecity_models::{Picture, COLOURS};
use safecity_sim::{FrameTruth, VehicleClass};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::metrics::{greedy_match, rate, xyxy, ApTally, TruthBox};
use super::{
    at_least, calibration_json, count, decode, frame, header_line, metric_line, misread_lines,
    number, of_class, reliability_lines, round4, Models, PlateReads, ReadTally, MATCH_IOU,
};

/// The targets the models are trained for, printed beside the measured
/// values.
const SIM_TARGETS: [(&str, f64); 3] = [
    ("plate_recall_readable", 0.98),
    ("read_exact_readable_e2e", 0.98),
    ("vehicle_map50", 0.90),
];
/// Unreadable plates lower than this (pixels) are ignore regions for AP.
const MIN_PLATE_HEIGHT: f32 = 10.0;
/// Vehicles lower than this (pixels) are ignore regions for AP and are not
/// scored for colour.
const MIN_VEHICLE_HEIGHT: f32 = 24.0;

/// One line of `ground_truth.jsonl`.
#[derive(Debug, Deserialize)]
pub(super) struct SimLine {
    pub(super) file: String,
    #[serde(flatten)]
    pub(super) truth: FrameTruth,
}

pub(super) struct SimSet {
    pub(super) dir: PathBuf,
    pub(super) lines: Vec<SimLine>,
}

pub(super) fn load_sim(dir: &Path, limit: Option<usize>) -> anyhow::Result<SimSet> {
    let render = format!(
        "render one with `safecity-edge simulate --images 1000 --out {} --seed 1000`",
        dir.display()
    );
    if !dir.is_dir() {
        bail!("{}: no such folder; {render}", dir.display());
    }
    let gt = dir.join("ground_truth.jsonl");
    if !gt.is_file() {
        bail!(
            "{}: not found, so {} is not a folder of simulator stills; {render}",
            gt.display(),
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&gt).with_context(|| format!("reading {}", gt.display()))?;
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if limit.is_some_and(|n| lines.len() >= n) {
            break;
        }
        let parsed: SimLine = serde_json::from_str(line).with_context(|| {
            format!(
                "{} line {}: not simulator ground truth",
                gt.display(),
                i + 1
            )
        })?;
        lines.push(parsed);
    }
    if lines.is_empty() {
        bail!("{}: lists no pictures; {render}", gt.display());
    }
    Ok(SimSet {
        dir: dir.to_path_buf(),
        lines,
    })
}

#[derive(Default)]
pub(super) struct SimTally {
    images: usize,
    vehicles: usize,
    plates: usize,
    readable: usize,
    recalled: usize,
    plate_ap: ApTally,
    vehicle_ap: [ApTally; 4],
    reads: ReadTally,
    colour_scored: usize,
    colour_right: usize,
    /// Rows: truth, columns: named colour, both in `COLOURS` order.
    colour_confusion: [[usize; 9]; 9],
    /// Per truth colour, vehicles no colour was named for.
    colour_none: [usize; 9],
    seconds: f64,
}

pub(super) fn eval_sim(
    models: &mut Models,
    set: &SimSet,
    batch: usize,
    bar: &indicatif::ProgressBar,
    shutdown: &AtomicBool,
) -> anyhow::Result<SimTally> {
    let started = Instant::now();
    let mut t = SimTally::default();
    let operating = models.operating;
    for chunk in set.lines.chunks(batch) {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let mut images = Vec::with_capacity(chunk.len());
        for line in chunk {
            let path = set.dir.join(&line.file);
            let img = decode(&path)?;
            if (img.width(), img.height()) != (line.truth.width, line.truth.height) {
                bail!(
                    "{}: the picture is {}x{}, but its ground truth says {}x{}",
                    path.display(),
                    img.width(),
                    img.height(),
                    line.truth.width,
                    line.truth.height
                );
            }
            images.push(img);
        }
        let frames: Vec<Picture<'_>> = images.iter().map(frame).collect();
        let detections = models
            .detect_stills(&frames)
            .with_context(|| format!("detecting in {}", set.dir.display()))?;

        let mut reads = PlateReads::default();
        for ((line, frame), dets) in chunk.iter().zip(&frames).zip(&detections) {
            let truth = &line.truth;
            t.images += 1;
            t.vehicles += truth.vehicles.len();

            // Plates.
            let plates: Vec<_> = truth
                .vehicles
                .iter()
                .filter_map(|v| v.plate.as_ref())
                .collect();
            t.plates += plates.len();
            let plate_dets = of_class(dets, "plate");
            let plate_truth: Vec<TruthBox> = plates
                .iter()
                .map(|p| TruthBox {
                    bbox: xyxy(p.bbox),
                    ignore: !(p.readable || p.bbox[3] >= MIN_PLATE_HEIGHT),
                })
                .collect();
            t.plate_ap.add(&plate_dets, &plate_truth, MATCH_IOU);
            let operating_plates = at_least(&plate_dets, operating);
            let boxes: Vec<[f32; 4]> = plate_truth.iter().map(|p| p.bbox).collect();
            let matched = greedy_match(&operating_plates, &boxes, MATCH_IOU);
            for (p, m) in plates.iter().zip(&matched) {
                if !p.readable {
                    continue;
                }
                t.readable += 1;
                t.recalled += usize::from(m.is_some());
                let detected = m.map(|d| operating_plates[d].bbox);
                let key = (line.file.clone(), p.text.clone());
                reads.push(*frame, key, xyxy(p.bbox), detected);
            }

            // Vehicles.
            for (k, class) in VehicleClass::ALL.iter().enumerate() {
                let vehicle_truth: Vec<TruthBox> = truth
                    .vehicles
                    .iter()
                    .filter(|v| v.class == *class)
                    .map(|v| TruthBox {
                        bbox: xyxy(v.bbox),
                        ignore: v.bbox[3] < MIN_VEHICLE_HEIGHT,
                    })
                    .collect();
                t.vehicle_ap[k].add(&of_class(dets, class.as_str()), &vehicle_truth, MATCH_IOU);
            }

            // Colours.
            let scored: Vec<(usize, [f32; 4])> = truth
                .vehicles
                .iter()
                .filter(|v| v.bbox[3] >= MIN_VEHICLE_HEIGHT)
                .filter_map(|v| {
                    let row = COLOURS.iter().position(|c| *c == v.colour.as_str())?;
                    Some((row, xyxy(v.bbox)))
                })
                .collect();
            let boxes: Vec<[f32; 4]> = scored.iter().map(|s| s.1).collect();
            let named = models.colours(frame, &boxes)?;
            for ((row, _), name) in scored.iter().zip(named) {
                t.colour_scored += 1;
                match name.and_then(|name| COLOURS.iter().position(|c| *c == name)) {
                    Some(col) => {
                        t.colour_confusion[*row][col] += 1;
                        t.colour_right += usize::from(*row == col);
                    }
                    None => t.colour_none[*row] += 1,
                }
            }
        }

        reads.read_into(models, &mut t.reads, &set.dir)?;
        bar.inc(chunk.len() as u64);
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

pub(super) fn sim_json(set: &SimSet, t: &SimTally, operating: f32) -> Value {
    let mut per_class = Map::new();
    let mut aps = Vec::new();
    for (class, tally) in VehicleClass::ALL.iter().zip(&t.vehicle_ap) {
        let ap = tally.ap();
        aps.extend(ap);
        let (precision, recall) = tally.precision_recall(operating);
        per_class.insert(
            class.as_str().to_owned(),
            json!({
                "ap50": ap.map(round4),
                "gt": tally.positives,
                "ignored": tally.ignored,
                "precision": precision.map(round4),
                "recall": recall.map(round4),
            }),
        );
    }
    let map = (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64);
    let vehicle_gt: usize = t.vehicle_ap.iter().map(|a| a.positives).sum();
    let (plate_precision, plate_recall) = t.plate_ap.precision_recall(operating);
    let r = |hits| rate(hits, t.readable).map(round4);
    let calibration = calibration_json(&t.reads.gt_box_reads);
    json!({
        "dir": set.dir.display().to_string(),
        "images": t.images,
        "vehicles": t.vehicles,
        "plates": t.plates,
        "readable_plates": t.readable,
        "seconds": round4(t.seconds),
        "operating_threshold": operating,
        "plate_recall_readable": r(t.recalled),
        "plate_recall_readable_count": t.readable,
        "plate_ap50": t.plate_ap.ap().map(round4),
        "plate_ap50_count": t.plate_ap.positives,
        "plate_detection": {
            "ap50": t.plate_ap.ap().map(round4),
            "gt": t.plate_ap.positives,
            "ignored": t.plate_ap.ignored,
            "precision": plate_precision.map(round4),
            "recall": plate_recall.map(round4),
        },
        "vehicle_map50": map.map(round4),
        "vehicle_map50_count": vehicle_gt,
        "vehicle_ap50": per_class,
        "read_exact_readable_e2e": r(t.reads.e2e_exact),
        "read_exact_readable_e2e_count": t.readable,
        "read_exact_readable_e2e_any_confidence": r(t.reads.e2e_exact_any_confidence),
        "read_exact_readable_e2e_any_confidence_count": t.readable,
        "read_exact_readable_gt_box": r(t.reads.gt_box_exact),
        "read_exact_readable_gt_box_count": t.readable,
        "char_accuracy_gt_box": t.reads.mean_char_accuracy(),
        "char_accuracy_gt_box_count": t.readable,
        "ece_gt_box": number(&calibration, "ece"),
        "ece_gt_box_count": t.readable,
        "calibration_gt_box": calibration,
        "colour_accuracy": rate(t.colour_right, t.colour_scored).map(round4),
        "colour_accuracy_count": t.colour_scored,
        "colour_confusion": {
            "labels": COLOURS,
            "counts": t.colour_confusion,
            "no_colour": t.colour_none,
        },
        "misreads": t.reads.misreads,
    })
}

pub(super) fn sim_report(v: &Value) -> String {
    let mut out = vec![
        format!(
            "== simulator stills: {}  ({} images, {} vehicles, {} plates, {} readable; {:.1} s)",
            v["dir"].as_str().unwrap_or(""),
            count(v, "images"),
            count(v, "vehicles"),
            count(v, "plates"),
            count(v, "readable_plates"),
            number(v, "seconds").unwrap_or(0.0)
        ),
        header_line(),
    ];
    for key in [
        "plate_recall_readable",
        "plate_ap50",
        "vehicle_map50",
        "read_exact_readable_e2e",
        "read_exact_readable_e2e_any_confidence",
        "read_exact_readable_gt_box",
        "char_accuracy_gt_box",
        "ece_gt_box",
        "colour_accuracy",
    ] {
        out.push(metric_line(
            key,
            number(v, key),
            count(v, &format!("{key}_count")),
            &SIM_TARGETS,
        ));
        if key == "vehicle_map50" {
            for class in VehicleClass::ALL {
                let c = &v["vehicle_ap50"][class.as_str()];
                out.push(metric_line(
                    &format!("  ap50 {}", class.as_str()),
                    number(c, "ap50"),
                    count(c, "gt"),
                    &[],
                ));
            }
        }
    }
    out.extend(reliability_lines(
        &v["calibration_gt_box"],
        "of reads on ground-truth boxes of readable plates",
    ));
    misread_lines(v, &mut out);
    out.join("\n")
}

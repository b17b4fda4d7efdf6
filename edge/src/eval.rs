//! `safecity-edge eval`: the detector and plate reader measured on labelled
//! pictures, through the same ONNX Runtime sessions the edge runs.
//!
//! - Simulator stills (`safecity-edge simulate --images N --out DIR`): plate
//!   recall on readable plates, plate AP50, vehicle mAP50, exact reads end to
//!   end and on ground-truth plate boxes, character accuracy, and the body
//!   colour named by the colour classifier (or from pixels without one).
//! - openalpr-style photo folders (`NAME.jpg` beside `NAME.txt`): plate
//!   recall, plate AP50 and exact reads on the fixed test split (every third
//!   picture by sorted name, starting with the third).
//! - `--timing`: milliseconds per call and per frame (or plate) of both
//!   models at a small and a large batch.
//!
//! Pictures are detected in as `recognize` does a photo: at two scales
//! ([`STILL_ZOOM_OUT`]). The timing is of one detector call.
//!
//! The report goes to stdout; `--json FILE` writes the same numbers as one
//! JSON object. Matching, AP and edit distance are small pure functions,
//! tested at the end of this file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use image::RgbImage;
use safecity_core::normalize_plate;
use safecity_models::{
    find_model, iou, vehicle_colour, ClassifierSession, DetectorSession, ObjectDetection, Picture,
    PlateCrop, PlateReaderSession, Runtime, SessionOptions, COLOURS, COLOUR_FILE, DETECTOR_FILE,
    PLATE_READER_FILE,
};
use safecity_pipeline::sim::{FrameTruth, VehicleClass};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::analyse::STILL_ZOOM_OUT;

#[derive(Debug, Args)]
#[command(
    after_help = "At least one of --sim, --openalpr and --timing is needed. \
Without --all, --openalpr uses the test split: sorted by file name, every third picture \
starting with the third."
)]
pub struct EvalArgs {
    /// Folder of simulator stills with its ground_truth.jsonl (repeatable).
    #[arg(long, value_name = "DIR")]
    pub sim: Vec<PathBuf>,
    /// openalpr-style folder: NAME.jpg with NAME.txt holding
    /// `file x y w h PLATE`.
    #[arg(long, value_name = "DIR")]
    pub openalpr: Option<PathBuf>,
    /// Use every openalpr picture, not only the test split (every third by
    /// name).
    #[arg(long)]
    pub all: bool,
    /// Detector .onnx (default: the shipped models/safecity-detector.onnx).
    #[arg(long, value_name = "FILE")]
    pub detector: Option<PathBuf>,
    /// Plate reader .onnx (default: the shipped models/safecity-plate.onnx).
    #[arg(long, value_name = "FILE")]
    pub plate_reader: Option<PathBuf>,
    /// Only the first N pictures of each dataset.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Threads per model.
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub threads: usize,
    /// Frames per detector call.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub batch: usize,
    /// Also write the numbers as one JSON object to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure milliseconds per frame of the detector (batch 1 and 8) and
    /// per plate of the reader (batch 1 and 16).
    #[arg(long)]
    pub timing: bool,
}

/// Detections down to this score are kept, to trace the whole
/// precision-recall curve.
const CURVE_THRESHOLD: f32 = 0.05;
/// IoU at which a detection counts as finding a ground-truth box.
const MATCH_IOU: f32 = 0.5;
/// Candidates asked of the plate reader per plate.
const TOP_K: usize = 5;
/// Unreadable plates lower than this (pixels) are ignore regions for AP.
const MIN_PLATE_HEIGHT: f32 = 10.0;
/// Vehicles lower than this (pixels) are ignore regions for AP and are not
/// scored for colour.
const MIN_VEHICLE_HEIGHT: f32 = 24.0;
/// Misread examples kept for the report and the JSON.
const MAX_EXAMPLES: usize = 20;

/// The targets the models are trained for, printed beside the measured
/// values.
const SIM_TARGETS: [(&str, f64); 3] = [
    ("plate_recall_readable", 0.98),
    ("read_exact_readable_e2e", 0.97),
    ("vehicle_map50", 0.90),
];
const OPENALPR_TARGETS: [(&str, f64); 2] = [("plate_recall", 0.85), ("read_exact_e2e", 0.60)];

// ---------------------------------------------------------------------------
// Metrics: pure functions on boxes, scores and texts.

/// A detection: score and box `x1, y1, x2, y2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredBox {
    pub score: f32,
    pub bbox: [f32; 4],
}

/// A ground-truth box `x1, y1, x2, y2`; an `ignore` box is a region where a
/// detection counts neither as right nor as wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthBox {
    pub bbox: [f32; 4],
    pub ignore: bool,
}

/// `[x, y, w, h]` to `[x1, y1, x2, y2]`.
pub fn xyxy(b: [f32; 4]) -> [f32; 4] {
    [b[0], b[1], b[0] + b[2], b[1] + b[3]]
}

/// Indices of `dets` by descending score (ties keep their order).
fn by_score(dets: &[ScoredBox]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| dets[b].score.total_cmp(&dets[a].score));
    order
}

/// One-to-one greedy matching: detections, best score first, each take the
/// not yet matched ground-truth box they overlap most, when that overlap is
/// at least `min_iou`. Returns, for each ground-truth box, the index of the
/// detection matched to it.
pub fn greedy_match(dets: &[ScoredBox], truth: &[[f32; 4]], min_iou: f32) -> Vec<Option<usize>> {
    let mut matched: Vec<Option<usize>> = vec![None; truth.len()];
    for d in by_score(dets) {
        let best = truth
            .iter()
            .enumerate()
            .filter(|(j, _)| matched[*j].is_none())
            .map(|(j, t)| (j, iou(dets[d].bbox, *t)))
            .filter(|&(_, o)| o >= min_iou)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((j, _)) = best {
            matched[j] = Some(d);
        }
    }
    matched
}

/// VOC all-points average precision of detections ranked by score, each
/// marked true or false positive, against `positives` ground-truth boxes.
/// `None` when there is nothing to find.
pub fn voc_ap(scored: &[(f32, bool)], positives: usize) -> Option<f64> {
    if positives == 0 {
        return None;
    }
    let mut ranked = scored.to_vec();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0usize, 0usize);
    // Recall and precision after each detection, with the sentinels of the
    // VOC devkit: recall 0 and 1 at the ends, precision 0.
    let mut recall = vec![0.0];
    let mut precision = vec![0.0];
    for &(_, hit) in &ranked {
        if hit {
            tp += 1;
        } else {
            fp += 1;
        }
        recall.push(tp as f64 / positives as f64);
        precision.push(tp as f64 / (tp + fp) as f64);
    }
    recall.push(1.0);
    precision.push(0.0);
    // The precision envelope: the best precision at this recall or beyond.
    for i in (0..precision.len() - 1).rev() {
        precision[i] = precision[i].max(precision[i + 1]);
    }
    Some(
        (1..recall.len())
            .filter(|&i| recall[i] != recall[i - 1])
            .map(|i| (recall[i] - recall[i - 1]) * precision[i])
            .sum(),
    )
}

/// Detections of one class over many pictures, marked VOC-style, for AP and
/// for precision and recall at a threshold.
#[derive(Debug, Clone, Default)]
pub struct ApTally {
    /// Score and whether it was a true positive, for every detection that
    /// was not in an ignore region.
    scored: Vec<(f32, bool)>,
    /// Ground-truth boxes to find.
    pub positives: usize,
    /// Ground-truth ignore regions.
    pub ignored: usize,
}

impl ApTally {
    /// Marks one picture's detections: best score first, each goes to the
    /// ground-truth box it overlaps most. At `min_iou` or more it is a true
    /// positive for a box not yet found, a false positive for a box already
    /// found, and nothing for an ignore region; below, a false positive.
    pub fn add(&mut self, dets: &[ScoredBox], truth: &[TruthBox], min_iou: f32) {
        self.positives += truth.iter().filter(|t| !t.ignore).count();
        self.ignored += truth.iter().filter(|t| t.ignore).count();
        let mut found = vec![false; truth.len()];
        for d in by_score(dets) {
            let best = truth
                .iter()
                .enumerate()
                .map(|(j, t)| (j, iou(dets[d].bbox, t.bbox)))
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let hit = match best {
                Some((j, o)) if o >= min_iou => {
                    if truth[j].ignore {
                        continue;
                    }
                    !std::mem::replace(&mut found[j], true)
                }
                _ => false,
            };
            self.scored.push((dets[d].score, hit));
        }
    }

    /// VOC all-points AP; `None` without ground truth.
    pub fn ap(&self) -> Option<f64> {
        voc_ap(&self.scored, self.positives)
    }

    /// Precision and recall of the detections scoring `threshold` or more.
    pub fn precision_recall(&self, threshold: f32) -> (Option<f64>, Option<f64>) {
        let kept = self.scored.iter().filter(|s| s.0 >= threshold);
        let (n, tp) = kept.fold((0, 0), |(n, tp), s| (n + 1, tp + usize::from(s.1)));
        (rate(tp, n), rate(tp, self.positives))
    }
}

/// Edit distance in characters (insertions, deletions, substitutions).
pub fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// `1 - distance / longer length`: 1 for the same text, 0 for nothing in
/// common.
pub fn char_accuracy(predicted: &str, truth: &str) -> f64 {
    let longest = predicted.chars().count().max(truth.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(predicted, truth) as f64 / longest as f64
}

/// `hits / n`, `None` for `n == 0`.
pub fn rate(hits: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| hits as f64 / n as f64)
}

/// Plate text for comparison: canonical when it parses as a plate, else
/// its letters and digits in upper case.
pub fn plate_key(text: &str) -> String {
    normalize_plate(text).unwrap_or_else(|_| {
        text.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_uppercase())
            .collect()
    })
}

/// One line of an openalpr label, `file x y w h PLATE`, as the plate box
/// `x1, y1, x2, y2` and its text; `None` for a line that is not one.
pub fn parse_openalpr_line(line: &str) -> Option<([f32; 4], String)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 6 {
        return None;
    }
    let n = |i: usize| fields[i].parse::<f32>().ok().filter(|v| v.is_finite());
    let bbox = [n(1)?, n(2)?, n(3)?, n(4)?];
    Some((xyxy(bbox), fields[5..].concat()))
}

/// The median of `values` (0 for none).
fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

// ---------------------------------------------------------------------------
// Datasets.

/// One line of `ground_truth.jsonl`.
#[derive(Debug, Deserialize)]
struct SimLine {
    file: String,
    #[serde(flatten)]
    truth: FrameTruth,
}

struct SimSet {
    dir: PathBuf,
    lines: Vec<SimLine>,
}

/// A labelled photo: its plates as boxes `x1, y1, x2, y2` and texts.
struct Photo {
    path: PathBuf,
    plates: Vec<([f32; 4], String)>,
}

struct PhotoSet {
    dir: PathBuf,
    /// Pictures in the folder, before the split.
    total: usize,
    photos: Vec<Photo>,
}

fn load_sim(dir: &Path, limit: Option<usize>) -> anyhow::Result<SimSet> {
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

fn is_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
}

fn load_openalpr(dir: &Path, all: bool, limit: Option<usize>) -> anyhow::Result<PhotoSet> {
    if !dir.is_dir() {
        bail!(
            "{}: no such folder; give a folder of NAME.jpg pictures with NAME.txt labels \
             (`file x y w h PLATE`), such as the openalpr benchmark's us set",
            dir.display()
        );
    }
    let mut pictures: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_picture(p))
        .collect();
    pictures.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    if pictures.is_empty() {
        bail!(
            "{}: no .jpg or .png pictures; give a folder of NAME.jpg pictures with NAME.txt labels",
            dir.display()
        );
    }
    let total = pictures.len();
    let chosen = pictures
        .into_iter()
        .enumerate()
        .filter(|(i, _)| all || i % 3 == 2)
        .map(|(_, p)| p)
        .take(limit.unwrap_or(usize::MAX));
    let mut photos = Vec::new();
    for path in chosen {
        let label = path.with_extension("txt");
        let text = std::fs::read_to_string(&label).with_context(|| {
            format!(
                "{}: no label for {} (NAME.txt with `file x y w h PLATE`)",
                label.display(),
                path.display()
            )
        })?;
        let plates: Vec<_> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                parse_openalpr_line(l).with_context(|| {
                    format!("{}: {l:?} is not `file x y w h PLATE`", label.display())
                })
            })
            .collect::<anyhow::Result<_>>()?;
        photos.push(Photo { path, plates });
    }
    Ok(PhotoSet {
        dir: dir.to_path_buf(),
        total,
        photos,
    })
}

fn decode(path: &Path) -> anyhow::Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("{}: cannot decode the picture", path.display()))?
        .to_rgb8())
}

fn frame(img: &RgbImage) -> Picture<'_> {
    Picture::rgb(img.as_raw(), img.width(), img.height())
}

// ---------------------------------------------------------------------------
// Models.

struct Models {
    detector: DetectorSession,
    reader: PlateReaderSession,
    /// The shipped colour classifier; the pixel rule when it is absent.
    colour: Option<ClassifierSession>,
    detector_path: PathBuf,
    reader_path: PathBuf,
    /// The description's score threshold: what the edge reports at.
    operating: f32,
}

impl Models {
    fn open(args: &EvalArgs) -> anyhow::Result<Models> {
        let options = SessionOptions {
            intra_threads: args.threads,
            ..SessionOptions::default()
        };
        let runtime = Runtime::get(None)?;
        let detector_path = match &args.detector {
            Some(p) => p.clone(),
            None => find_model(DETECTOR_FILE)?,
        };
        let reader_path = match &args.plate_reader {
            Some(p) => p.clone(),
            None => find_model(PLATE_READER_FILE)?,
        };
        let mut detector = DetectorSession::open(runtime, &detector_path, None, &options)
            .with_context(|| format!("detector {}", detector_path.display()))?;
        let reader = PlateReaderSession::open(runtime, &reader_path, None, &options)
            .with_context(|| format!("plate reader {}", reader_path.display()))?;
        let operating = detector.description().score_threshold;
        detector.set_score_threshold(CURVE_THRESHOLD.min(operating));
        let colour = match find_model(COLOUR_FILE) {
            Ok(path) => Some(
                ClassifierSession::open(runtime, &path, None, &options)
                    .with_context(|| format!("colour model {}", path.display()))?,
            ),
            Err(_) => None,
        };
        Ok(Models {
            detector,
            reader,
            colour,
            detector_path,
            reader_path,
            operating,
        })
    }

    fn detect(&mut self, frames: &[Picture<'_>]) -> anyhow::Result<Vec<Vec<ObjectDetection>>> {
        Ok(self.detector.detect(frames)?)
    }

    /// As `recognize` detects in a picture: at two scales.
    fn detect_stills(
        &mut self,
        frames: &[Picture<'_>],
    ) -> anyhow::Result<Vec<Vec<ObjectDetection>>> {
        Ok(self.detector.detect_stills(frames, STILL_ZOOM_OUT)?)
    }

    /// The colour named for each vehicle box: by the classifier, or from
    /// pixels without one.
    fn colours(
        &mut self,
        frame: &Picture<'_>,
        boxes: &[[f32; 4]],
    ) -> anyhow::Result<Vec<Option<String>>> {
        match &mut self.colour {
            Some(model) => {
                if boxes.is_empty() {
                    return Ok(Vec::new());
                }
                let crops: Vec<PlateCrop<'_>> = boxes
                    .iter()
                    .map(|&bbox| PlateCrop {
                        frame: *frame,
                        bbox,
                    })
                    .collect();
                Ok(model
                    .classify(&crops)?
                    .into_iter()
                    .map(|(c, _)| Some(c))
                    .collect())
            }
            None => Ok(boxes
                .iter()
                .map(|&b| vehicle_colour(frame, b).map(|(name, _)| name.to_owned()))
                .collect()),
        }
    }

    /// The best text read from each crop, empty where nothing was read.
    fn read(&mut self, crops: &[PlateCrop<'_>]) -> anyhow::Result<Vec<String>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .reader
            .read(crops, TOP_K)?
            .into_iter()
            .map(|c| c.into_iter().next().map(|c| c.text).unwrap_or_default())
            .collect())
    }
}

fn of_class(dets: &[ObjectDetection], class: &str) -> Vec<ScoredBox> {
    dets.iter()
        .filter(|d| d.class == class)
        .map(|d| ScoredBox {
            score: d.score,
            bbox: d.bbox,
        })
        .collect()
}

fn at_least(dets: &[ScoredBox], threshold: f32) -> Vec<ScoredBox> {
    dets.iter()
        .filter(|d| d.score >= threshold)
        .copied()
        .collect()
}

// ---------------------------------------------------------------------------
/// Exact reads and misread examples, on ground-truth boxes and end to end.
#[derive(Default)]
struct ReadTally {
    e2e_exact: usize,
    gt_box_exact: usize,
    char_accuracy: f64,
    misreads: Vec<Value>,
}

impl ReadTally {
    /// One plate: what the reader made of the ground-truth box, and of the
    /// detected box that matched it (`None`: no detection matched).
    fn add(&mut self, file: &str, truth: &str, on_box: &str, e2e: Option<&str>) {
        self.e2e_exact += usize::from(e2e == Some(truth));
        self.gt_box_exact += usize::from(on_box == truth);
        self.char_accuracy += char_accuracy(on_box, truth);
        if (on_box != truth || e2e != Some(truth)) && self.misreads.len() < MAX_EXAMPLES {
            self.misreads.push(json!({
                "file": file,
                "truth": truth,
                "gt_box": on_box,
                "e2e": e2e,
            }));
        }
    }
}

// Simulator stills.

#[derive(Default)]
struct SimTally {
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

/// A readable plate of a batch, with the indices of its crops.
struct PlateJob {
    file: String,
    text: String,
    detected: Option<usize>,
    truth_box: usize,
}

fn eval_sim(
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

        let mut crops = Vec::new();
        let mut jobs = Vec::new();
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
                let detected = m.map(|d| {
                    crops.push(PlateCrop {
                        frame: *frame,
                        bbox: operating_plates[d].bbox,
                    });
                    crops.len() - 1
                });
                crops.push(PlateCrop {
                    frame: *frame,
                    bbox: xyxy(p.bbox),
                });
                jobs.push(PlateJob {
                    file: line.file.clone(),
                    text: p.text.clone(),
                    detected,
                    truth_box: crops.len() - 1,
                });
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

        let reads = models
            .read(&crops)
            .with_context(|| format!("reading plates in {}", set.dir.display()))?;
        for job in jobs {
            let e2e = job.detected.map(|i| reads[i].as_str());
            let on_box = reads[job.truth_box].as_str();
            t.reads.add(&job.file, &job.text, on_box, e2e);
        }
        bar.inc(chunk.len() as u64);
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

fn sim_json(set: &SimSet, t: &SimTally, operating: f32) -> Value {
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
        "read_exact_readable_gt_box": r(t.reads.gt_box_exact),
        "read_exact_readable_gt_box_count": t.readable,
        "char_accuracy_gt_box": (t.readable > 0).then(|| round4(t.reads.char_accuracy / t.readable as f64)),
        "char_accuracy_gt_box_count": t.readable,
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

// ---------------------------------------------------------------------------
// openalpr photos.

#[derive(Default)]
struct PhotoTally {
    images: usize,
    plates: usize,
    recalled: usize,
    plate_ap: ApTally,
    reads: ReadTally,
    seconds: f64,
}

fn eval_photos(
    models: &mut Models,
    set: &PhotoSet,
    batch: usize,
    bar: &indicatif::ProgressBar,
    shutdown: &AtomicBool,
) -> anyhow::Result<PhotoTally> {
    let started = Instant::now();
    let mut t = PhotoTally::default();
    let operating = models.operating;
    for chunk in set.photos.chunks(batch) {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let images: Vec<RgbImage> = chunk
            .iter()
            .map(|p| decode(&p.path))
            .collect::<anyhow::Result<_>>()?;
        let frames: Vec<Picture<'_>> = images.iter().map(frame).collect();
        let detections = models
            .detect_stills(&frames)
            .with_context(|| format!("detecting in {}", set.dir.display()))?;
        let mut crops = Vec::new();
        let mut jobs = Vec::new();
        for ((photo, frame), dets) in chunk.iter().zip(&frames).zip(&detections) {
            t.images += 1;
            t.plates += photo.plates.len();
            let plate_dets = of_class(dets, "plate");
            let truth: Vec<TruthBox> = photo
                .plates
                .iter()
                .map(|p| TruthBox {
                    bbox: p.0,
                    ignore: false,
                })
                .collect();
            t.plate_ap.add(&plate_dets, &truth, MATCH_IOU);
            let operating_plates = at_least(&plate_dets, operating);
            let boxes: Vec<[f32; 4]> = photo.plates.iter().map(|p| p.0).collect();
            let matched = greedy_match(&operating_plates, &boxes, MATCH_IOU);
            for ((bbox, text), m) in photo.plates.iter().zip(&matched) {
                t.recalled += usize::from(m.is_some());
                let detected = m.map(|d| {
                    crops.push(PlateCrop {
                        frame: *frame,
                        bbox: operating_plates[d].bbox,
                    });
                    crops.len() - 1
                });
                crops.push(PlateCrop {
                    frame: *frame,
                    bbox: *bbox,
                });
                jobs.push(PlateJob {
                    file: photo
                        .path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    text: plate_key(text),
                    detected,
                    truth_box: crops.len() - 1,
                });
            }
        }
        let reads = models
            .read(&crops)
            .with_context(|| format!("reading plates in {}", set.dir.display()))?;
        for job in jobs {
            let e2e = job.detected.map(|i| plate_key(&reads[i]));
            let on_box = plate_key(&reads[job.truth_box]);
            t.reads.add(&job.file, &job.text, &on_box, e2e.as_deref());
        }
        bar.inc(chunk.len() as u64);
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

fn photos_json(set: &PhotoSet, all: bool, t: &PhotoTally, operating: f32) -> Value {
    let r = |hits| rate(hits, t.plates).map(round4);
    let (precision, recall) = t.plate_ap.precision_recall(operating);
    json!({
        "dir": set.dir.display().to_string(),
        "split": if all { "all" } else { "test" },
        "pictures_in_folder": set.total,
        "images": t.images,
        "plates": t.plates,
        "seconds": round4(t.seconds),
        "operating_threshold": operating,
        "plate_recall": r(t.recalled),
        "plate_recall_count": t.plates,
        "plate_ap50": t.plate_ap.ap().map(round4),
        "plate_ap50_count": t.plate_ap.positives,
        "plate_detection": {
            "ap50": t.plate_ap.ap().map(round4),
            "gt": t.plate_ap.positives,
            "precision": precision.map(round4),
            "recall": recall.map(round4),
        },
        "read_exact_e2e": r(t.reads.e2e_exact),
        "read_exact_e2e_count": t.plates,
        "read_exact_gt_box": r(t.reads.gt_box_exact),
        "read_exact_gt_box_count": t.plates,
        "char_accuracy_gt_box": (t.plates > 0).then(|| round4(t.reads.char_accuracy / t.plates as f64)),
        "char_accuracy_gt_box_count": t.plates,
        "misreads": t.reads.misreads,
    })
}

// ---------------------------------------------------------------------------
// Timing.

/// Milliseconds of each of `runs` calls of `f`, after `warmup` untimed ones.
fn time_calls(
    warmup: usize,
    runs: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..warmup {
        f()?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f()?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(ms)
}

/// A deterministic 1280x720 picture: colour gradients with a grey band.
fn synthetic_picture() -> RgbImage {
    RgbImage::from_fn(1280, 720, |x, y| {
        if (400..480).contains(&y) {
            image::Rgb([128, 128, 128])
        } else {
            image::Rgb([
                (x * 255 / 1279) as u8,
                (y * 255 / 719) as u8,
                ((x + y) % 256) as u8,
            ])
        }
    })
}

struct TimingRow {
    model: &'static str,
    batch: usize,
    runs: usize,
    ms_per_call: f64,
}

fn eval_timing(
    models: &mut Models,
    sims: &[SimSet],
    threads: usize,
) -> anyhow::Result<(Vec<TimingRow>, String, Value)> {
    // The first simulator still when there is one, with its first plate.
    let first = sims.first().and_then(|s| Some((s, s.lines.first()?)));
    let (img, what, plate) = match first {
        Some((set, line)) => {
            let path = set.dir.join(&line.file);
            let plate = line
                .truth
                .vehicles
                .iter()
                .find_map(|v| v.plate.as_ref().map(|p| xyxy(p.bbox)));
            (decode(&path)?, path.display().to_string(), plate)
        }
        None => (synthetic_picture(), "synthetic gradient".to_owned(), None),
    };
    let (w, h) = (img.width() as f32, img.height() as f32);
    let plate = plate.unwrap_or([0.45 * w, 0.7 * h, 0.55 * w, 0.75 * h]);
    let one = frame(&img);
    // Timed at the threshold the edge runs at.
    models.detector.set_score_threshold(models.operating);
    let mut rows = Vec::new();
    for (batch, runs) in [(1, 20), (8, 5)] {
        let frames = vec![one; batch];
        let ms = time_calls(3, runs, || models.detect(&frames).map(drop))?;
        rows.push(TimingRow {
            model: "detector",
            batch,
            runs,
            ms_per_call: median(&ms),
        });
    }
    for (batch, runs) in [(1, 20), (16, 5)] {
        let crops = vec![
            PlateCrop {
                frame: one,
                bbox: plate,
            };
            batch
        ];
        let ms = time_calls(3, runs, || models.read(&crops).map(drop))?;
        rows.push(TimingRow {
            model: "plate_reader",
            batch,
            runs,
            ms_per_call: median(&ms),
        });
    }
    models
        .detector
        .set_score_threshold(CURVE_THRESHOLD.min(models.operating));
    let mut value = Map::new();
    value.insert("threads".into(), json!(threads));
    value.insert("picture".into(), json!(what));
    value.insert("width".into(), json!(img.width()));
    value.insert("height".into(), json!(img.height()));
    for model in ["detector", "plate_reader"] {
        let per = if model == "detector" {
            "ms_per_frame"
        } else {
            "ms_per_plate"
        };
        let mut m = Map::new();
        for r in rows.iter().filter(|r| r.model == model) {
            m.insert(
                format!("batch_{}", r.batch),
                json!({
                    "runs": r.runs,
                    "ms_per_call": round4(r.ms_per_call),
                    per: round4(r.ms_per_call / r.batch as f64),
                }),
            );
        }
        value.insert(model.into(), Value::Object(m));
    }
    Ok((rows, what, Value::Object(value)))
}

// ---------------------------------------------------------------------------
// Report.

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// One report line: metric, value, count and the target where there is one.
fn metric_line(name: &str, value: Option<f64>, count: usize, targets: &[(&str, f64)]) -> String {
    let shown = value.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    let target = targets
        .iter()
        .find(|(t, _)| *t == name)
        .map(|&(_, min)| {
            let verdict = match value {
                Some(v) if v >= min => "met",
                Some(_) => "BELOW",
                None => "",
            };
            format!("target >= {min:.2}  {verdict}")
        })
        .unwrap_or_default();
    format!("  {name:<28} {shown:>7} {count:>7}   {target}")
        .trim_end()
        .to_owned()
}

fn header_line() -> String {
    format!("  {:<28} {:>7} {:>7}", "metric", "value", "count")
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn count(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_u64).unwrap_or(0) as usize
}

fn misread_lines(v: &Value, out: &mut Vec<String>) {
    let Some(list) = v.get("misreads").and_then(Value::as_array) else {
        return;
    };
    if list.is_empty() {
        return;
    }
    out.push("  misreads (truth: on ground-truth box / end to end):".to_owned());
    for m in list.iter().take(8) {
        let s = |k: &str| m[k].as_str().unwrap_or("-").to_owned();
        out.push(format!(
            "    {:<14} {:<12} {:<12} {}",
            s("file"),
            s("truth"),
            s("gt_box"),
            s("e2e")
        ));
    }
}

fn sim_report(v: &Value) -> String {
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
        "read_exact_readable_gt_box",
        "char_accuracy_gt_box",
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
    misread_lines(v, &mut out);
    out.join("\n")
}

fn photos_report(v: &Value) -> String {
    let mut out = vec![
        format!(
            "== openalpr photos: {}  ({} split: {} of {} pictures, {} plates; {:.1} s)",
            v["dir"].as_str().unwrap_or(""),
            v["split"].as_str().unwrap_or(""),
            count(v, "images"),
            count(v, "pictures_in_folder"),
            count(v, "plates"),
            number(v, "seconds").unwrap_or(0.0)
        ),
        header_line(),
    ];
    for key in [
        "plate_recall",
        "plate_ap50",
        "read_exact_e2e",
        "read_exact_gt_box",
        "char_accuracy_gt_box",
    ] {
        out.push(metric_line(
            key,
            number(v, key),
            count(v, &format!("{key}_count")),
            &OPENALPR_TARGETS,
        ));
    }
    misread_lines(v, &mut out);
    out.join("\n")
}

fn timing_report(rows: &[TimingRow], what: &str, threads: usize) -> String {
    let mut out = vec![format!(
        "== timing  (threads per model: {threads}; picture: {what}; median of the runs after 3 warm-up calls)"
    )];
    for r in rows {
        let unit = if r.model == "detector" {
            "frame"
        } else {
            "plate"
        };
        out.push(format!(
            "  {:<14} batch {:>2}  {:>9.2} ms/call  {:>8.2} ms/{unit}  ({} runs)",
            r.model.replace('_', " "),
            r.batch,
            r.ms_per_call,
            r.ms_per_call / r.batch as f64,
            r.runs
        ));
    }
    out.join("\n")
}

// ---------------------------------------------------------------------------

pub fn run(args: EvalArgs, shutdown: &AtomicBool) -> anyhow::Result<()> {
    if args.sim.is_empty() && args.openalpr.is_none() && !args.timing {
        bail!("nothing to measure: give --sim DIR, --openalpr DIR or --timing");
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    // Every dataset is checked before the models load.
    let sims = args
        .sim
        .iter()
        .map(|dir| load_sim(dir, args.limit))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let photos = args
        .openalpr
        .as_deref()
        .map(|dir| load_openalpr(dir, args.all, args.limit))
        .transpose()?;
    let mut models = Models::open(&args)?;
    let operating = models.operating;

    let stdout_report = |text: &str, bar: &indicatif::ProgressBar| {
        bar.suspend(|| println!("{text}\n"));
    };
    let total = sims.iter().map(|s| s.lines.len()).sum::<usize>()
        + photos.as_ref().map_or(0, |p| p.photos.len());
    let bar = if std::io::stderr().is_terminal() && total > 0 {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {eta} {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };

    stdout_report(
        &format!(
            "safecity-edge eval\n  detector       {}  (operating score threshold {operating})\n  plate reader   {}\n  threads        {} per model, detector batch {}",
            models.detector_path.display(),
            models.reader_path.display(),
            args.threads,
            args.batch
        ),
        &bar,
    );
    let mut report = Map::new();
    report.insert(
        "detector".into(),
        json!(models.detector_path.display().to_string()),
    );
    report.insert(
        "plate_reader".into(),
        json!(models.reader_path.display().to_string()),
    );
    let colour_by = if models.colour.is_some() {
        "classifier (models/safecity-colour.onnx)"
    } else {
        "pixel rule (no colour model found)"
    };
    stdout_report(&format!("  colour named by {colour_by}"), &bar);
    report.insert("colour_by".into(), json!(colour_by));
    report.insert("threads".into(), json!(args.threads));
    report.insert("batch".into(), json!(args.batch));
    report.insert("operating_threshold".into(), json!(operating));

    let mut sim_values = Vec::new();
    for set in &sims {
        bar.set_message(format!("simulator stills {}", set.dir.display()));
        let tally = eval_sim(&mut models, set, args.batch, &bar, shutdown)?;
        let value = sim_json(set, &tally, operating);
        stdout_report(&sim_report(&value), &bar);
        sim_values.push(value);
    }
    match sim_values.len() {
        0 => {}
        1 => {
            report.insert("sim".into(), sim_values.pop().expect("one"));
        }
        _ => {
            let per_dir: Map<String, Value> = sims
                .iter()
                .zip(sim_values)
                .map(|(s, v)| (s.dir.display().to_string(), v))
                .collect();
            report.insert("sim".into(), Value::Object(per_dir));
        }
    }
    if let Some(set) = &photos {
        bar.set_message(format!("openalpr {}", set.dir.display()));
        let tally = eval_photos(&mut models, set, args.batch, &bar, shutdown)?;
        let value = photos_json(set, args.all, &tally, operating);
        stdout_report(&photos_report(&value), &bar);
        report.insert("openalpr".into(), value);
    }
    bar.finish_and_clear();
    if args.timing {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let (rows, what, value) = eval_timing(&mut models, &sims, args.threads)?;
        println!("{}\n", timing_report(&rows, &what, args.threads));
        report.insert("timing".into(), value);
    }

    if let Some(path) = &args.json {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = serde_json::to_string_pretty(&Value::Object(report))?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(score: f32, bbox: [f32; 4]) -> ScoredBox {
        ScoredBox { score, bbox }
    }

    fn truth(bbox: [f32; 4]) -> TruthBox {
        TruthBox {
            bbox,
            ignore: false,
        }
    }

    const A: [f32; 4] = [0.0, 0.0, 10.0, 10.0];
    const B: [f32; 4] = [100.0, 100.0, 120.0, 110.0];
    const FAR: [f32; 4] = [300.0, 300.0, 310.0, 310.0];

    #[test]
    fn a_perfect_detector_has_ap_one() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, A), det(0.8, B)], &[truth(A), truth(B)], 0.5);
        t.add(&[det(0.3, A)], &[truth(A)], 0.5);
        assert_eq!(t.positives, 3);
        assert!((t.ap().unwrap() - 1.0).abs() < 1e-12);
        assert_eq!(t.precision_recall(0.5), (Some(1.0), Some(2.0 / 3.0)));
    }

    #[test]
    fn a_false_positive_ranked_first_halves_ap() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, FAR), det(0.5, A)], &[truth(A)], 0.5);
        assert!((t.ap().unwrap() - 0.5).abs() < 1e-12);
        // Ranked after the hit, it costs nothing.
        let mut t = ApTally::default();
        t.add(&[det(0.9, A), det(0.5, FAR)], &[truth(A)], 0.5);
        assert!((t.ap().unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn missed_boxes_and_duplicates_lower_ap() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, A)], &[truth(A), truth(B)], 0.5);
        assert!((t.ap().unwrap() - 0.5).abs() < 1e-12);
        // A second detection of the same box is a false positive.
        let mut t = ApTally::default();
        t.add(
            &[det(0.9, A), det(0.8, A), det(0.7, B)],
            &[truth(A), truth(B)],
            0.5,
        );
        // Precision 1 up to recall 0.5, then 2/3 at recall 1.
        assert!((t.ap().unwrap() - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        assert!(voc_ap(&[(0.9, false)], 0).is_none());
        assert_eq!(ApTally::default().ap(), None);
    }

    #[test]
    fn ignore_regions_are_neither_hit_nor_false_alarm() {
        let mut t = ApTally::default();
        let gts = [
            truth(A),
            TruthBox {
                bbox: B,
                ignore: true,
            },
        ];
        t.add(&[det(0.95, B), det(0.9, A)], &gts, 0.5);
        assert_eq!((t.positives, t.ignored), (1, 1));
        assert_eq!(t.scored.len(), 1);
        assert!((t.ap().unwrap() - 1.0).abs() < 1e-12);
        // Only ignore regions: nothing to find, no AP.
        let mut t = ApTally::default();
        t.add(&[det(0.9, B)], &gts[1..], 0.5);
        assert_eq!(t.ap(), None);
    }

    #[test]
    fn matching_needs_half_overlap_and_is_one_to_one() {
        // [0,0,10,10] against [5,0,15,10]: IoU 1/3.
        let shifted = [5.0, 0.0, 15.0, 10.0];
        assert_eq!(greedy_match(&[det(0.9, shifted)], &[A], 0.5), vec![None]);
        // [0,0,10,10] against [0,0,10,8]: IoU 0.8.
        let close = [0.0, 0.0, 10.0, 8.0];
        assert_eq!(greedy_match(&[det(0.9, close)], &[A], 0.5), vec![Some(0)]);
        // Two detections of one box: the better scored one takes it.
        assert_eq!(
            greedy_match(&[det(0.4, A), det(0.9, close)], &[A], 0.5),
            vec![Some(1)]
        );
        // One detection finds one box at most.
        assert_eq!(
            greedy_match(&[det(0.9, A)], &[A, close], 0.5),
            vec![Some(0), None]
        );
        assert_eq!(greedy_match(&[], &[A], 0.5), vec![None]);
    }

    #[test]
    fn below_half_overlap_is_a_false_positive() {
        let mut t = ApTally::default();
        t.add(&[det(0.9, [5.0, 0.0, 15.0, 10.0])], &[truth(A)], 0.5);
        assert_eq!(t.ap(), Some(0.0));
        assert_eq!(t.precision_recall(0.0), (Some(0.0), Some(0.0)));
    }

    #[test]
    fn edit_distance_and_char_accuracy() {
        assert_eq!(levenshtein("", ""), 0);
        assert_eq!(levenshtein("ABC", ""), 3);
        assert_eq!(levenshtein("123ABC02", "123ABC02"), 0);
        assert_eq!(levenshtein("123ABC02", "123A8C02"), 1);
        assert_eq!(levenshtein("123ABC02", "23ABC02"), 1);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(char_accuracy("123ABC02", "123ABC02"), 1.0);
        assert_eq!(char_accuracy("", "1234"), 0.0);
        assert_eq!(char_accuracy("", ""), 1.0);
        assert!((char_accuracy("123A8C02", "123ABC02") - 7.0 / 8.0).abs() < 1e-12);
    }

    #[test]
    fn openalpr_labels_are_read_leniently() {
        let (b, text) = parse_openalpr_line("car1.jpg\t935\t362\t99\t49\tYG9X2G").unwrap();
        assert_eq!(b, [935.0, 362.0, 1034.0, 411.0]);
        assert_eq!(text, "YG9X2G");
        let (b, text) = parse_openalpr_line("  car1.jpg 10  20 30 40   ABC 123\r").unwrap();
        assert_eq!(b, [10.0, 20.0, 40.0, 60.0]);
        assert_eq!(text, "ABC123");
        assert!(parse_openalpr_line("car1.jpg 10 20 30").is_none());
        assert!(parse_openalpr_line("car1.jpg 10 x 30 40 ABC").is_none());
        assert_eq!(plate_key("abc-123"), "ABC123");
        assert_eq!(plate_key("АВС 123"), "ABC123");
    }

    #[test]
    fn helpers() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(rate(1, 4), Some(0.25));
        assert_eq!(rate(0, 0), None);
        assert_eq!(xyxy([1.0, 2.0, 3.0, 4.0]), [1.0, 2.0, 4.0, 6.0]);
        assert!(metric_line("plate_recall", Some(0.9), 10, &OPENALPR_TARGETS).ends_with("met"));
        assert!(metric_line("plate_recall", Some(0.5), 10, &OPENALPR_TARGETS).ends_with("BELOW"));
    }
}

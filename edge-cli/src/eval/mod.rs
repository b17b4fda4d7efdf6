//! `safecity-edge eval`: the detector and plate reader measured on labelled
//! pictures and on a clip, through the same ONNX Runtime sessions the edge
//! runs. One module per job:
//!
//! - `sim`, `--sim DIR`: simulator stills (`safecity-edge simulate
//!   --images N --out DIR`): plate recall on readable plates, plate AP50,
//!   vehicle mAP50, exact reads end to end and on ground-truth plate boxes,
//!   character accuracy, calibration of the reads, and the body colour named
//!   by the colour classifier (or from pixels without one).
//! - `photos`, `--openalpr DIR`: openalpr-style photo folders (`NAME.jpg`
//!   beside `NAME.txt`): plate recall, plate AP50, exact reads and
//!   calibration on the fixed test split (every third picture by sorted
//!   name, starting with the third).
//! - `crops`, `--plate-crops DIR`: plate crops with their texts
//!   (`annotations.csv`): the reader alone, each crop read whole: exact
//!   reads, character accuracy and calibration.
//! - `boxes`, `--boxes DIR`: frames with plate boxes but no texts
//!   (`boxes.tsv`): plate recall and AP50, overall, per ride and by day and
//!   night; with `--box-texts FILE`, the texts of those plates, and the
//!   validation split's legible plates read as the photos' are.
//! - `video`, `--video FILE`: a clip with no labels, decoded and tracked
//!   as `recognize` does a video: vehicles per frame by class and the plate
//!   reads a user would be shown, which are all false on a clip whose plates
//!   cannot be read.
//! - `timing`, `--timing`: milliseconds per call and per frame (or plate)
//!   of both models at a small and a large batch.
//! - `metrics`: the pure functions the jobs score with.
//!
//! Pictures (stills, photos, dashcam frames) are detected in as
//! `recognize` does a photo: at two scales ([`STILL_ZOOM_OUT`]); the clip's
//! frames as it does a video's, at one. The timing is of one detector call.
//!
//! A read end to end counts as right only when its text is right and its
//! confidence is at least [`DEFAULT_MIN_CONFIDENCE`], the least `recognize`
//! shows by default; `*_any_confidence` counts the right texts at any
//! confidence. Calibration is measured on the reads of ground-truth boxes
//! (every plate of a set once), exact text counting as right.
//!
//! The report goes to stdout; `--json FILE` writes the same numbers as one
//! JSON object, one key per set. The report helpers and the tally of reads
//! are tested at the end of this file.

mod boxes;
mod crops;
pub mod metrics;
mod photos;
mod sim;
mod timing;
mod video;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context};
use clap::Args;
use image::RgbImage;
use safecity_models::{
    find_model, vehicle_colour, ClassifierSession, DetectorSession, ObjectDetection, Picture,
    PlateCrop, PlateReaderSession, Runtime, SessionOptions, COLOUR_FILE, DETECTOR_FILE,
    PLATE_READER_FILE,
};
use serde_json::{json, Map, Value};

use metrics::{
    char_accuracy, expected_calibration_error, plate_key, reliability, ScoredBox, CALIBRATION_BINS,
};
use safecity_edge::analyse::STILL_ZOOM_OUT;
use safecity_edge::recognize::DEFAULT_MIN_CONFIDENCE;

#[derive(Debug, Args)]
#[command(
    after_help = "At least one of --sim, --openalpr, --plate-crops, --boxes, --video \
and --timing is needed.

What each folder or file holds:
  --sim DIR           ground_truth.jsonl and the stills it names, as
                      `safecity-edge simulate --images N --out DIR` renders them.
  --openalpr DIR      NAME.jpg beside NAME.txt, one line per plate:
                      `file x y w h PLATE` (pixels, top-left and size). Without --all,
                      the test split: sorted by file name, every third picture
                      starting with the third.
  --plate-crops DIR   annotations.csv: the header `image_path,plate_text`, then one
                      line per crop (paths relative to DIR; a picture may be listed
                      twice), and the pictures it names. Each is read whole.
  --boxes DIR         boxes.tsv: the header `file x y w h`, then one line per plate
                      (pixels, top-left and size), and images/FILE for each file
                      named. Frames named RIDE_tSECONDS.jpg are also scored per ride;
                      rides named night* make the night split. No plate texts.
  --box-texts FILE    the texts of the --boxes plates: the header
                      `file x y w h text legible split`, one tab-separated line per
                      plate of boxes.tsv (legible 0 or 1, split train or val).
  --video FILE        any video file GStreamer decodes, with no labels and no plate
                      readable in it: every plate read shown counts as a false read."
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
    /// Folder of plate crops: annotations.csv (header
    /// `image_path,plate_text`, paths relative to DIR) and the crops it
    /// names, each read whole.
    #[arg(long, value_name = "DIR")]
    pub plate_crops: Option<PathBuf>,
    /// Folder of frames with plate boxes and no texts: boxes.tsv (header
    /// `file x y w h`, one line per plate, pixels, top-left and size) and
    /// images/FILE.
    #[arg(long, value_name = "DIR")]
    pub boxes: Option<PathBuf>,
    /// Texts of the --boxes plates: the header `file x y w h text legible
    /// split`, one tab-separated line per plate of boxes.tsv; the legible
    /// plates of split `val` are read and scored.
    #[arg(long, value_name = "FILE", requires = "boxes")]
    pub box_texts: Option<PathBuf>,
    /// Video file with no labels and no readable plates: vehicles per frame,
    /// and the plate reads a user would be shown at the default
    /// --min-confidence of `recognize`, each a false read.
    #[arg(long, value_name = "FILE")]
    pub video: Option<PathBuf>,
    /// Analyse every Nth decoded frame of --video.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub video_every: usize,
    /// Detector .onnx (default: the shipped models/safecity-detector.onnx).
    #[arg(long, value_name = "FILE")]
    pub detector: Option<PathBuf>,
    /// Plate reader .onnx (default: the shipped models/safecity-plate.onnx).
    #[arg(long, value_name = "FILE")]
    pub plate_reader: Option<PathBuf>,
    /// Only the first N pictures (crop lines, frames) of each dataset.
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
/// Misread examples kept for the report and the JSON.
const MAX_EXAMPLES: usize = 20;

fn decode(path: &Path) -> anyhow::Result<RgbImage> {
    Ok(image::open(path)
        .with_context(|| format!("{}: cannot decode the picture", path.display()))?
        .to_rgb8())
}

fn frame(img: &RgbImage) -> Picture<'_> {
    Picture::rgb(img.as_raw(), img.width(), img.height())
}

fn is_picture(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].contains(&e.to_ascii_lowercase().as_str()))
}

/// A file name for the report.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Models.

/// The reader's best text for a plate and its confidence (0..1); empty and
/// 0 when nothing was read.
#[derive(Debug, Clone, Default, PartialEq)]
struct BestRead {
    text: String,
    confidence: f32,
}

impl BestRead {
    /// The same read with its text as a [`plate_key`].
    fn keyed(&self) -> BestRead {
        BestRead {
            text: plate_key(&self.text),
            confidence: self.confidence,
        }
    }
}

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

    /// The best read of each crop.
    fn read(&mut self, crops: &[PlateCrop<'_>]) -> anyhow::Result<Vec<BestRead>> {
        if crops.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self
            .reader
            .read(crops, TOP_K)?
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .next()
                    .map(|c| BestRead {
                        text: c.text,
                        confidence: c.confidence,
                    })
                    .unwrap_or_default()
            })
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
// Reads of plates with known texts.

/// Reads of plates whose texts are known: on ground-truth boxes (exact,
/// character accuracy, and confidence beside rightness for calibration),
/// end to end, and misread examples.
#[derive(Debug, Default)]
struct ReadTally {
    /// End to end, the right text at [`DEFAULT_MIN_CONFIDENCE`] or above:
    /// what a user with default settings is shown.
    e2e_exact: usize,
    /// End to end, the right text at any confidence.
    e2e_exact_any_confidence: usize,
    gt_box_exact: usize,
    char_accuracy: f64,
    /// Each read of a ground-truth box: its confidence and whether its text
    /// was right.
    gt_box_reads: Vec<(f32, bool)>,
    misreads: Vec<Value>,
}

impl ReadTally {
    /// A read of a ground-truth box, texts compared as given; true when it
    /// is right.
    fn on_box(&mut self, truth: &str, read: &BestRead) -> bool {
        let right = read.text == truth;
        self.gt_box_exact += usize::from(right);
        self.char_accuracy += char_accuracy(&read.text, truth);
        self.gt_box_reads.push((read.confidence, right));
        right
    }

    /// A plate end to end, `None` when no detection matched it; true when a
    /// user with default settings is shown its right text.
    fn end_to_end(&mut self, truth: &str, read: Option<&BestRead>) -> bool {
        let text_right = read.is_some_and(|r| r.text == truth);
        let shown = read.is_some_and(|r| r.confidence >= DEFAULT_MIN_CONFIDENCE);
        self.e2e_exact_any_confidence += usize::from(text_right);
        self.e2e_exact += usize::from(text_right && shown);
        text_right && shown
    }

    /// Keeps a misread example, up to [`MAX_EXAMPLES`].
    fn misread(&mut self, example: Value) {
        if self.misreads.len() < MAX_EXAMPLES {
            self.misreads.push(example);
        }
    }

    /// One plate: what the reader made of the ground-truth box, and of the
    /// detected box that matched it (`None`: no detection matched). Either
    /// wrong makes a misread example.
    fn add(&mut self, file: &str, truth: &str, on_box: &BestRead, e2e: Option<&BestRead>) {
        let box_right = self.on_box(truth, on_box);
        let e2e_right = self.end_to_end(truth, e2e);
        if !(box_right && e2e_right) {
            self.misread(json!({
                "file": file,
                "truth": truth,
                "gt_box": on_box.text,
                "gt_box_confidence": confidence4(on_box.confidence),
                "e2e": e2e.map(|r| &r.text),
                "e2e_confidence": e2e.map(|r| confidence4(r.confidence)),
            }));
        }
    }

    /// Mean character accuracy on ground-truth boxes.
    fn mean_char_accuracy(&self) -> Option<f64> {
        let n = self.gt_box_reads.len();
        (n > 0).then(|| round4(self.char_accuracy / n as f64))
    }
}

/// A plate of a batch to read, with the indices of its crops.
struct PlateJob {
    file: String,
    text: String,
    detected: Option<usize>,
    truth_box: usize,
}

/// The plates of a batch whose texts are known, each to be read from its
/// ground-truth box and, where a detection matched it, from that box; all
/// read in one call.
#[derive(Default)]
struct PlateReads<'a> {
    crops: Vec<PlateCrop<'a>>,
    jobs: Vec<PlateJob>,
}

impl<'a> PlateReads<'a> {
    fn push(
        &mut self,
        frame: Picture<'a>,
        (file, text): (String, String),
        truth_box: [f32; 4],
        detected: Option<[f32; 4]>,
    ) {
        let detected = detected.map(|bbox| {
            self.crops.push(PlateCrop { frame, bbox });
            self.crops.len() - 1
        });
        self.crops.push(PlateCrop {
            frame,
            bbox: truth_box,
        });
        self.jobs.push(PlateJob {
            file,
            text,
            detected,
            truth_box: self.crops.len() - 1,
        });
    }

    /// Reads every crop and adds each plate to `tally`, texts compared as
    /// [`plate_key`]s; returns how many plates. `dir` names the set in an
    /// error.
    fn read_into(
        self,
        models: &mut Models,
        tally: &mut ReadTally,
        dir: &Path,
    ) -> anyhow::Result<usize> {
        let reads = models
            .read(&self.crops)
            .with_context(|| format!("reading plates in {}", dir.display()))?;
        for job in &self.jobs {
            let e2e = job.detected.map(|i| reads[i].keyed());
            let on_box = reads[job.truth_box].keyed();
            tally.add(&job.file, &job.text, &on_box, e2e.as_ref());
        }
        Ok(self.jobs.len())
    }
}

// ---------------------------------------------------------------------------
// Report.

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

fn confidence4(c: f32) -> f64 {
    round4(f64::from(c))
}

/// Width of the metric names in the report.
const NAME_WIDTH: usize = 38;

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
    format!("  {name:<NAME_WIDTH$} {shown:>7} {count:>7}   {target}")
        .trim_end()
        .to_owned()
}

fn header_line() -> String {
    format!("  {:<NAME_WIDTH$} {:>7} {:>7}", "metric", "value", "count")
}

/// Metric lines for `keys`, each counted by `KEY_count`.
fn metric_lines(v: &Value, keys: &[&str], targets: &[(&str, f64)], out: &mut Vec<String>) {
    for key in keys {
        out.push(metric_line(
            key,
            number(v, key),
            count(v, &format!("{key}_count")),
            targets,
        ));
    }
}

fn number(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn count(v: &Value, key: &str) -> usize {
    v.get(key).and_then(Value::as_u64).unwrap_or(0) as usize
}

/// A read for the report: text and confidence, `(none)` for an empty text
/// and `-` for no read at all.
fn shown_read(m: &Value, key: &str) -> String {
    let Some(text) = m.get(key).and_then(Value::as_str) else {
        return "-".to_owned();
    };
    let text = if text.is_empty() { "(none)" } else { text };
    let confidence = number(m, &format!("{key}_confidence")).unwrap_or(0.0);
    format!("{text} {confidence:.2}")
}

/// The first misread examples: ground-truth box and end to end where the
/// set has both, else the read alone.
fn misread_lines(v: &Value, out: &mut Vec<String>) {
    let Some(list) = v.get("misreads").and_then(Value::as_array) else {
        return;
    };
    if list.is_empty() {
        return;
    }
    let e2e = list.iter().any(|m| m.get("e2e").is_some());
    out.push(if e2e {
        "  misreads (truth: on ground-truth box / end to end, each with its confidence):".to_owned()
    } else {
        "  misreads (truth: read, confidence):".to_owned()
    });
    for m in list.iter().take(8) {
        let line = format!(
            "    {:<28} {:<12} {:<18} {}",
            m["file"].as_str().unwrap_or("-"),
            m["truth"].as_str().unwrap_or("-"),
            shown_read(m, "gt_box"),
            if e2e {
                shown_read(m, "e2e")
            } else {
                String::new()
            }
        );
        out.push(line.trim_end().to_owned());
    }
}

/// ECE and the reliability table of reads `(confidence, right)`, as JSON.
fn calibration_json(reads: &[(f32, bool)]) -> Value {
    let bins = reliability(reads);
    let width = 1.0 / CALIBRATION_BINS as f64;
    let table: Vec<Value> = bins
        .iter()
        .enumerate()
        .map(|(k, b)| {
            json!({
                "from": round4(k as f64 * width),
                "to": round4((k + 1) as f64 * width),
                "count": b.count,
                "mean_confidence": b.mean_confidence().map(round4),
                "accuracy": b.accuracy().map(round4),
            })
        })
        .collect();
    json!({
        "ece": expected_calibration_error(&bins).map(round4),
        "reads": reads.len(),
        "bins": table,
    })
}

/// The reliability table of [`calibration_json`] in four lines: per bin,
/// its lower edge, reads, mean confidence and share of exact reads.
fn reliability_lines(calibration: &Value, what: &str) -> Vec<String> {
    let bins = calibration["bins"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    if bins.is_empty() {
        return Vec::new();
    }
    let row = |label: &str, cell: &dyn Fn(&Value) -> String| {
        let cells: String = bins.iter().map(|b| format!("{:>6}", cell(b))).collect();
        format!("    {label:<12}{cells}")
    };
    let share = |key: &'static str| {
        move |b: &Value| number(b, key).map_or("-".into(), |v| format!("{v:.2}"))
    };
    vec![
        format!("  reliability {what} (confidence bins):"),
        row("bin from", &|b| {
            format!("{:.1}", number(b, "from").unwrap_or(0.0))
        }),
        row("reads", &|b| count(b, "count").to_string()),
        row("confidence", &share("mean_confidence")),
        row("exact", &share("accuracy")),
    ]
}

// ---------------------------------------------------------------------------

/// A progress bar on a terminal, nothing elsewhere.
fn progress_bar(total: usize) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() && total > 0 {
        let bar = indicatif::ProgressBar::new(total as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {eta} {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}

fn check_args(args: &EvalArgs) -> anyhow::Result<()> {
    if args.sim.is_empty()
        && args.openalpr.is_none()
        && args.plate_crops.is_none()
        && args.boxes.is_none()
        && args.video.is_none()
        && !args.timing
    {
        bail!(
            "nothing to measure: give --sim DIR, --openalpr DIR, --plate-crops DIR, --boxes DIR, \
             --video FILE or --timing"
        );
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if args.limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    if args.video_every == 0 {
        bail!("--video-every must be at least 1");
    }
    Ok(())
}

pub fn run(args: EvalArgs, shutdown: &AtomicBool) -> anyhow::Result<()> {
    check_args(&args)?;
    // Every dataset is checked before the models load.
    let sims = args
        .sim
        .iter()
        .map(|dir| sim::load_sim(dir, args.limit))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let photos = args
        .openalpr
        .as_deref()
        .map(|dir| photos::load_openalpr(dir, args.all, args.limit))
        .transpose()?;
    let crop_set = args
        .plate_crops
        .as_deref()
        .map(|dir| crops::load_crops(dir, args.limit))
        .transpose()?;
    let mut box_set = args
        .boxes
        .as_deref()
        .map(|dir| boxes::load_boxes(dir, args.limit))
        .transpose()?;
    if let (Some(set), Some(texts)) = (&mut box_set, &args.box_texts) {
        boxes::load_box_texts(set, texts)?;
    }
    if let Some(path) = &args.video {
        if !path.is_file() {
            bail!(
                "{}: no such file; give a video file GStreamer can decode, such as an .mp4",
                path.display()
            );
        }
    }
    let mut models = Models::open(&args)?;
    let operating = models.operating;

    let stdout_report = |text: &str, bar: &indicatif::ProgressBar| {
        bar.suspend(|| println!("{text}\n"));
    };
    let total = sims.iter().map(|s| s.lines.len()).sum::<usize>()
        + photos.as_ref().map_or(0, |p| p.photos.len())
        + crop_set.as_ref().map_or(0, |c| c.pictures.len())
        + box_set.as_ref().map_or(0, |b| b.frames.len());
    let bar = progress_bar(total);

    stdout_report(
        &format!(
            "safecity-edge eval\n  detector       {}  (operating score threshold {operating})\n  plate reader   {}  (reads shown from confidence {DEFAULT_MIN_CONFIDENCE})\n  threads        {} per model, detector batch {}",
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
    report.insert("min_confidence".into(), json!(DEFAULT_MIN_CONFIDENCE));

    let mut sim_values = Vec::new();
    for set in &sims {
        bar.set_message(format!("simulator stills {}", set.dir.display()));
        let tally = sim::eval_sim(&mut models, set, args.batch, &bar, shutdown)?;
        let value = sim::sim_json(set, &tally, operating);
        stdout_report(&sim::sim_report(&value), &bar);
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
        let tally = photos::eval_photos(&mut models, set, args.batch, &bar, shutdown)?;
        let value = photos::photos_json(set, args.all, &tally, operating);
        stdout_report(&photos::photos_report(&value), &bar);
        report.insert("openalpr".into(), value);
    }
    if let Some(set) = &crop_set {
        bar.set_message(format!("plate crops {}", set.dir.display()));
        let tally = crops::eval_crops(&mut models, set, &bar, shutdown)?;
        let value = crops::crops_json(set, &tally);
        stdout_report(&crops::crops_report(&value), &bar);
        report.insert("plate_crops".into(), value);
    }
    if let Some(set) = &box_set {
        bar.set_message(format!("plate boxes {}", set.dir.display()));
        let tally = boxes::eval_boxes(&mut models, set, args.batch, &bar, shutdown)?;
        let value = boxes::boxes_json(set, &tally, operating);
        stdout_report(&boxes::boxes_report(&value), &bar);
        report.insert("boxes".into(), value);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.video {
        let options = video::VideoOptions {
            every: args.video_every,
            limit: args.limit,
            threads: args.threads,
        };
        let tally = video::eval_video(&models, path, &options, shutdown)?;
        let value = video::video_json(path, &options, &tally);
        println!("{}\n", video::video_report(&value));
        report.insert("video".into(), value);
    }
    if args.timing {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let (rows, what, value) = timing::eval_timing(&mut models, &sims, args.threads)?;
        println!("{}\n", timing::timing_report(&rows, &what, args.threads));
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

    fn read(text: &str, confidence: f32) -> BestRead {
        BestRead {
            text: text.to_owned(),
            confidence,
        }
    }

    #[test]
    fn an_unsure_right_read_end_to_end_is_not_shown() {
        let mut t = ReadTally::default();
        let sure = read("123ABC02", 0.9);
        let unsure = read("123ABC02", DEFAULT_MIN_CONFIDENCE / 2.0);
        let at_threshold = read("123ABC02", DEFAULT_MIN_CONFIDENCE);
        t.add("a.jpg", "123ABC02", &sure, Some(&sure));
        t.add("b.jpg", "123ABC02", &sure, Some(&unsure));
        t.add("c.jpg", "123ABC02", &sure, Some(&at_threshold));
        t.add("d.jpg", "123ABC02", &sure, None);
        t.add("e.jpg", "123ABC02", &sure, Some(&read("123A8C02", 0.9)));
        assert_eq!(t.e2e_exact, 2);
        assert_eq!(t.e2e_exact_any_confidence, 3);
        assert_eq!(t.gt_box_exact, 5);
        // The unsure read, the missed plate and the wrong text are examples.
        let files: Vec<&str> = t
            .misreads
            .iter()
            .map(|m| m["file"].as_str().unwrap())
            .collect();
        assert_eq!(files, ["b.jpg", "d.jpg", "e.jpg"]);
        assert_eq!(
            t.misreads[0]["e2e_confidence"],
            json!(confidence4(unsure.confidence))
        );
        assert_eq!(t.misreads[1]["e2e"], Value::Null);
    }

    #[test]
    fn reads_on_boxes_feed_accuracy_and_calibration() {
        let mut t = ReadTally::default();
        assert!(t.on_box("AB12", &read("AB12", 0.8)));
        assert!(!t.on_box("AB12", &read("AB13", 0.6)));
        assert!(!t.on_box("AB12", &BestRead::default()));
        assert_eq!(t.gt_box_exact, 1);
        assert_eq!(t.gt_box_reads, [(0.8, true), (0.6, false), (0.0, false)]);
        assert_eq!(
            t.mean_char_accuracy(),
            Some(round4((1.0 + 0.75 + 0.0) / 3.0))
        );
        assert_eq!(ReadTally::default().mean_char_accuracy(), None);
        assert_eq!(read("abc-123", 0.5).keyed(), read("ABC123", 0.5));
    }

    #[test]
    fn the_reliability_table_shows_every_bin() {
        let v = calibration_json(&[(0.95, true), (0.95, false), (0.05, false)]);
        assert_eq!(v["reads"], 3);
        assert_eq!(v["bins"].as_array().unwrap().len(), CALIBRATION_BINS);
        assert_eq!(v["bins"][3]["from"], json!(0.3));
        assert_eq!(v["bins"][9]["accuracy"], json!(0.5));
        assert_eq!(v["bins"][4]["accuracy"], Value::Null);
        // (2 * |0.5 - 0.95| + 1 * |0 - 0.05|) / 3
        assert!((number(&v, "ece").unwrap() - (0.9 + 0.05) / 3.0).abs() < 1e-4);
        let lines = reliability_lines(&v, "on boxes");
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "  reliability on boxes (confidence bins):");
        assert_eq!(
            lines[1],
            "    bin from       0.0   0.1   0.2   0.3   0.4   0.5   0.6   0.7   0.8   0.9"
        );
        assert_eq!(
            lines[2],
            "    reads            1     0     0     0     0     0     0     0     0     2"
        );
        assert_eq!(
            lines[3],
            "    confidence    0.05     -     -     -     -     -     -     -     -  0.95"
        );
        assert_eq!(
            lines[4],
            "    exact         0.00     -     -     -     -     -     -     -     -  0.50"
        );
        assert!(reliability_lines(&json!({}), "x").is_empty());
    }

    #[test]
    fn report_lines() {
        let targets = [("plate_recall", 0.85)];
        assert!(metric_line("plate_recall", Some(0.9), 10, &targets).ends_with("met"));
        assert!(metric_line("plate_recall", Some(0.5), 10, &targets).ends_with("BELOW"));
        assert!(metric_line("plate_recall", None, 0, &targets).ends_with("target >= 0.85"));
        let m = json!({"file": "a.jpg", "truth": "AB12", "gt_box": "", "gt_box_confidence": 0.0,
                       "e2e": "AB13", "e2e_confidence": 0.4567});
        assert_eq!(shown_read(&m, "gt_box"), "(none) 0.00");
        assert_eq!(shown_read(&m, "e2e"), "AB13 0.46");
        assert_eq!(shown_read(&json!({"e2e": null}), "e2e"), "-");
        let mut out = Vec::new();
        misread_lines(&json!({"misreads": [m]}), &mut out);
        assert!(out[0].contains("end to end"), "{out:?}");
        assert!(out[1].ends_with("AB13 0.46"), "{out:?}");
    }
}

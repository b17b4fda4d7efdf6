//! `safecity-edge recognize`: plates and vehicles in image and video files.
//!
//! Images: one line per plate read. Videos: frames sampled to `--fps`,
//! vehicles tracked, each track's plate reads voted into one text, and one
//! line per tracked vehicle with its best read.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use safecity_models::{Picture, PlateCandidate, SessionOptions};
use safecity_pipeline::VideoFrames;

use crate::analyse::{Analyser, ModelPaths};
use crate::passes::{PassBuilder, PassConfig};
use serde_json::json;

#[derive(Debug, Args)]
pub struct RecognizeArgs {
    /// Image (JPEG, PNG, ...) or video files.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// One JSON line per plate read (per tracked vehicle for video).
    #[arg(long)]
    pub json: bool,
    /// Detector .onnx (default: the shipped models/safecity-detector.onnx).
    #[arg(long, value_name = "FILE")]
    pub detector: Option<PathBuf>,
    /// Plate reader .onnx (default: the shipped models/safecity-plate.onnx).
    #[arg(long, value_name = "FILE")]
    pub plate_reader: Option<PathBuf>,
    /// Frames per second of video to analyse.
    #[arg(long, default_value_t = 10.0)]
    pub fps: f64,
    /// Reads below this confidence are not reported.
    #[arg(long, default_value_t = DEFAULT_MIN_CONFIDENCE)]
    pub min_confidence: f32,
    /// Threads per model.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

/// The least confidence of a read shown by default (`--min-confidence`).
/// `eval` counts a read end to end as right only at this confidence or
/// above: what a user with default settings sees.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 0.3;

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "webp", "tif"];

/// One plate read, as reported.
struct Read {
    frame: u64,
    ts_ms: u64,
    best: PlateCandidate,
    candidates: Vec<PlateCandidate>,
    /// `x1, y1, x2, y2`.
    plate_box: [f32; 4],
    vehicle: Option<ReadVehicle>,
}

struct ReadVehicle {
    class: String,
    score: f32,
    colour: Option<String>,
    bbox: [f32; 4],
}

pub fn run(args: RecognizeArgs) -> anyhow::Result<()> {
    if !(args.fps > 0.0 && args.fps <= 120.0) {
        bail!("--fps {} is out of range (0, 120]", args.fps);
    }
    let options = SessionOptions {
        intra_threads: args.threads,
        ..SessionOptions::default()
    };
    let paths = ModelPaths {
        detector: args.detector.clone(),
        plate_reader: args.plate_reader.clone(),
        colour: None,
    };
    let mut models = Analyser::open(&paths, &options)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(args.paths.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let mut failed = 0;
    let stdout = std::io::stdout();
    for path in &args.paths {
        bar.set_message(path.display().to_string());
        let result = if is_image(path) {
            recognize_image(&mut models, path)
        } else {
            recognize_video(&mut models, path, args.fps, &bar)
        };
        match result {
            Ok(reads) => {
                let mut out = stdout.lock();
                for r in reads
                    .iter()
                    .filter(|r| r.best.confidence >= args.min_confidence)
                {
                    let line = if args.json {
                        json_line(path, r)
                    } else {
                        text_line(path, r)
                    };
                    bar.suspend(|| writeln!(out, "{line}"))?;
                }
            }
            Err(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {e:#}"));
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if failed > 0 {
        bail!(
            "{failed} of {} inputs could not be read (see above)",
            args.paths.len()
        );
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn recognize_image(models: &mut Analyser, path: &Path) -> anyhow::Result<Vec<Read>> {
    let img = image::open(path)
        .with_context(|| format!("{}: cannot read the image", path.display()))?
        .to_rgb8();
    let frame = Picture::rgb(img.as_raw(), img.width(), img.height());
    let analysis = models.analyse_stills(&[frame])?.pop().unwrap_or_default();
    Ok(analysis
        .plates
        .iter()
        .filter_map(|p| {
            let best = p.candidates.first()?.clone();
            let (cx, cy) = (
                (p.det.bbox[0] + p.det.bbox[2]) / 2.0,
                (p.det.bbox[1] + p.det.bbox[3]) / 2.0,
            );
            let area = |b: [f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
            let vehicle = analysis
                .vehicles
                .iter()
                .filter(|v| {
                    let b = v.det.bbox;
                    b[0] <= cx && cx <= b[2] && b[1] <= cy && cy <= b[3]
                })
                .min_by(|a, b| area(a.det.bbox).total_cmp(&area(b.det.bbox)));
            Some(Read {
                frame: 0,
                ts_ms: 0,
                best,
                candidates: p.candidates.clone(),
                plate_box: p.det.bbox,
                vehicle: vehicle.map(|v| ReadVehicle {
                    class: v.det.class.clone(),
                    score: v.det.score,
                    colour: v.colour.as_ref().map(|c| c.0.clone()),
                    bbox: v.det.bbox,
                }),
            })
        })
        .collect())
}

fn recognize_video(
    models: &mut Analyser,
    path: &Path,
    fps: f64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Read>> {
    let frames = VideoFrames::open(path, Some(fps), None)?;
    let mut passes = PassBuilder::new(PassConfig {
        snapshots: false,
        ..PassConfig::default()
    });
    let mut out = Vec::new();
    for frame in frames {
        let frame = frame?;
        let rgb = frame.picture();
        let analysis = models.analyse(&[rgb])?.pop().unwrap_or_default();
        out.extend(passes.update(frame.seq, frame.pts_ms, &rgb, &analysis));
        bar.set_message(format!("{} frame {}", path.display(), frame.seq));
    }
    out.extend(passes.finish());
    let mut reads: Vec<Read> = out
        .into_iter()
        .filter_map(|p| {
            let plate = p.plate?;
            Some(Read {
                frame: p.frame,
                ts_ms: p.ts_ms,
                best: plate.best,
                candidates: plate.candidates,
                plate_box: plate.bbox,
                vehicle: p.vehicle_bbox.map(|bbox| ReadVehicle {
                    class: p.class.clone(),
                    score: p.class_confidence,
                    colour: p.colour.clone(),
                    bbox,
                }),
            })
        })
        .collect();
    reads.sort_by_key(|r| r.frame);
    Ok(reads)
}

/// `x1, y1, x2, y2` to whole-pixel `[x, y, w, h]`.
fn xywh(b: [f32; 4]) -> [i64; 4] {
    let x = b[0].round() as i64;
    let y = b[1].round() as i64;
    [x, y, b[2].round() as i64 - x, b[3].round() as i64 - y]
}

fn round3(v: f32) -> f64 {
    (v as f64 * 1000.0).round() / 1000.0
}

fn json_line(path: &Path, r: &Read) -> String {
    json!({
        "source": path.display().to_string(),
        "frame": r.frame,
        "ts_ms": r.ts_ms,
        "plate": r.best.text,
        "display": r.best.display,
        "format": r.best.format,
        "region": r.best.region,
        "confidence": round3(r.best.confidence),
        "candidates": r.candidates.iter().map(|c| json!({"text": c.text, "confidence": round3(c.confidence)})).collect::<Vec<_>>(),
        "bbox": xywh(r.plate_box),
        "vehicle": r.vehicle.as_ref().map(|v| json!({
            "class": v.class,
            "colour": v.colour,
            "confidence": round3(v.score),
            "bbox": xywh(v.bbox),
        })),
    })
    .to_string()
}

fn text_line(path: &Path, r: &Read) -> String {
    format!(
        "{}\tframe {}\t{}\t{:.2}\t{}",
        path.display(),
        r.frame,
        r.best.display,
        r.best.confidence,
        r.vehicle.as_ref().map_or("-", |v| v.class.as_str())
    )
}

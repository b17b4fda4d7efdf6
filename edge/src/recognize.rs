//! `safecity-edge recognize`: plates and vehicles in image and video files.
//!
//! Images: one line per plate read. Videos: frames sampled to `--fps`,
//! vehicles tracked, each track's plate reads voted into one text, and one
//! line per tracked vehicle with its best read.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Args;
use safecity_core::parse_plate;
use safecity_models::{
    find_model, DetectorSession, ObjectDetection, PlateCandidate, PlateCrop, PlateReaderSession,
    RgbFrame, Runtime, SessionOptions, DETECTOR_FILE, PLATE_READER_FILE,
};
use safecity_pipeline::{IouTracker, PlateVote, TrackInput, TrackerConfig, VideoFrames};
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
    #[arg(long, default_value_t = 0.3)]
    pub min_confidence: f32,
    /// Threads per model.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "webp", "tif"];

struct Models {
    detector: DetectorSession,
    reader: PlateReaderSession,
}

/// One plate read, as reported.
struct Read {
    frame: u64,
    ts_ms: u64,
    best: PlateCandidate,
    candidates: Vec<PlateCandidate>,
    /// `x1, y1, x2, y2`.
    plate_box: [f32; 4],
    vehicle: Option<ObjectDetection>,
}

pub fn run(args: RecognizeArgs) -> anyhow::Result<()> {
    if !(args.fps > 0.0 && args.fps <= 120.0) {
        bail!("--fps {} is out of range (0, 120]", args.fps);
    }
    let runtime = Runtime::get(None)?;
    let options = SessionOptions {
        intra_threads: args.threads,
    };
    let detector = match &args.detector {
        Some(p) => p.clone(),
        None => find_model(DETECTOR_FILE)?,
    };
    let reader = match &args.plate_reader {
        Some(p) => p.clone(),
        None => find_model(PLATE_READER_FILE)?,
    };
    let mut models = Models {
        detector: DetectorSession::open(runtime, &detector, None, &options)?,
        reader: PlateReaderSession::open(runtime, &reader, None, &options)?,
    };
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

/// A frame's vehicles, and its plates each with their ranked reads.
type FrameAnalysis = (
    Vec<ObjectDetection>,
    Vec<(ObjectDetection, Vec<PlateCandidate>)>,
);

/// Detects vehicles and plates in one frame and reads the plates.
fn analyse(models: &mut Models, frame: RgbFrame<'_>) -> anyhow::Result<FrameAnalysis> {
    let detections = models.detector.detect(&[frame])?.pop().unwrap_or_default();
    let (plates, vehicles): (Vec<_>, Vec<_>) =
        detections.into_iter().partition(|d| d.class == "plate");
    let crops: Vec<PlateCrop<'_>> = plates
        .iter()
        .map(|p| PlateCrop {
            frame,
            bbox: p.bbox,
        })
        .collect();
    let reads = models.reader.read(&crops, 5)?;
    Ok((vehicles, plates.into_iter().zip(reads).collect()))
}

/// The smallest vehicle box around the plate's centre.
fn carrier<'a>(
    plate: &ObjectDetection,
    vehicles: &'a [ObjectDetection],
) -> Option<(usize, &'a ObjectDetection)> {
    let (cx, cy) = (
        (plate.bbox[0] + plate.bbox[2]) / 2.0,
        (plate.bbox[1] + plate.bbox[3]) / 2.0,
    );
    let area = |b: [f32; 4]| (b[2] - b[0]) * (b[3] - b[1]);
    vehicles
        .iter()
        .enumerate()
        .filter(|(_, v)| v.bbox[0] <= cx && cx <= v.bbox[2] && v.bbox[1] <= cy && cy <= v.bbox[3])
        .min_by(|a, b| area(a.1.bbox).total_cmp(&area(b.1.bbox)))
}

fn recognize_image(models: &mut Models, path: &Path) -> anyhow::Result<Vec<Read>> {
    let img = image::open(path)
        .with_context(|| format!("{}: cannot read the image", path.display()))?
        .to_rgb8();
    let frame = RgbFrame::packed(img.as_raw(), img.width(), img.height());
    let (vehicles, plates) = analyse(models, frame)?;
    Ok(plates
        .into_iter()
        .filter_map(|(plate, candidates)| {
            let best = candidates.first()?.clone();
            Some(Read {
                frame: 0,
                ts_ms: 0,
                best,
                candidates,
                plate_box: plate.bbox,
                vehicle: carrier(&plate, &vehicles).map(|(_, v)| v.clone()),
            })
        })
        .collect())
}

/// What a track has gathered so far.
#[derive(Default)]
struct TrackState {
    vote: PlateVote,
    /// The most confident single read, kept for its frame, box and vehicle.
    best: Option<Read>,
}

fn recognize_video(
    models: &mut Models,
    path: &Path,
    fps: f64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Read>> {
    let frames = VideoFrames::open(path, Some(fps), None)?;
    let mut vehicles_tracker = IouTracker::new(TrackerConfig::default());
    // Plates whose vehicle was not detected are tracked on their own.
    let mut plates_tracker = IouTracker::new(TrackerConfig::default());
    let mut states: std::collections::HashMap<(bool, u64), TrackState> = Default::default();
    let mut out = Vec::new();
    let finish = |states: &mut std::collections::HashMap<(bool, u64), TrackState>,
                  key: (bool, u64),
                  out: &mut Vec<Read>| {
        if let Some(state) = states.remove(&key) {
            if let (Some(vote), Some(mut best)) = (state.vote.result(5), state.best) {
                // The voted text, with the best single read's frame and boxes.
                if let Ok(parsed) = parse_plate(&vote.text) {
                    best.best = PlateCandidate {
                        text: parsed.text,
                        display: parsed.display,
                        format: parsed.format,
                        region: parsed.region,
                        confidence: vote.confidence,
                    };
                    best.candidates = vote
                        .candidates
                        .iter()
                        .filter_map(|(t, c)| {
                            let p = parse_plate(t).ok()?;
                            Some(PlateCandidate {
                                text: p.text,
                                display: p.display,
                                format: p.format,
                                region: p.region,
                                confidence: *c,
                            })
                        })
                        .collect();
                    out.push(best);
                }
            }
        }
    };
    for frame in frames {
        let frame = frame?;
        let rgb = RgbFrame::packed(&frame.data, frame.width, frame.height);
        let (vehicles, plates) = analyse(models, rgb)?;
        let inputs: Vec<TrackInput> = vehicles
            .iter()
            .map(|v| TrackInput {
                bbox: v.bbox,
                class: v.class.clone(),
                score: v.score,
            })
            .collect();
        let update = vehicles_tracker.update(&inputs, frame.pts_ms);
        let mut orphans = Vec::new();
        for (plate, candidates) in plates {
            let Some(best) = candidates.first().cloned() else {
                continue;
            };
            let (key, vehicle) = match carrier(&plate, &vehicles) {
                Some((i, v)) => ((true, update.assigned[i]), Some(v.clone())),
                None => {
                    orphans.push((plate.clone(), best.clone(), candidates.clone()));
                    continue;
                }
            };
            record(
                &mut states,
                key,
                frame.index,
                frame.pts_ms,
                plate.bbox,
                best,
                candidates,
                vehicle,
            );
        }
        let plate_inputs: Vec<TrackInput> = orphans
            .iter()
            .map(|(p, _, _)| TrackInput {
                bbox: p.bbox,
                class: "plate".into(),
                score: p.score,
            })
            .collect();
        let plate_update = plates_tracker.update(&plate_inputs, frame.pts_ms);
        for ((plate, best, candidates), id) in orphans.into_iter().zip(plate_update.assigned) {
            record(
                &mut states,
                (false, id),
                frame.index,
                frame.pts_ms,
                plate.bbox,
                best,
                candidates,
                None,
            );
        }
        for t in update.ended {
            finish(&mut states, (true, t.id), &mut out);
        }
        for t in plate_update.ended {
            finish(&mut states, (false, t.id), &mut out);
        }
        bar.set_message(format!("{} frame {}", path.display(), frame.index));
    }
    for t in vehicles_tracker.finish() {
        finish(&mut states, (true, t.id), &mut out);
    }
    for t in plates_tracker.finish() {
        finish(&mut states, (false, t.id), &mut out);
    }
    out.sort_by_key(|r| r.frame);
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn record(
    states: &mut std::collections::HashMap<(bool, u64), TrackState>,
    key: (bool, u64),
    frame: u64,
    ts_ms: u64,
    plate_box: [f32; 4],
    best: PlateCandidate,
    candidates: Vec<PlateCandidate>,
    vehicle: Option<ObjectDetection>,
) {
    let state = states.entry(key).or_default();
    state.vote.add(&best.text, best.confidence);
    if state
        .best
        .as_ref()
        .is_none_or(|b| best.confidence > b.best.confidence)
    {
        state.best = Some(Read {
            frame,
            ts_ms,
            best,
            candidates,
            plate_box,
            vehicle,
        });
    }
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

//! `--video FILE`: a clip with no labels and no readable plates, analysed
//! as `recognize` analyses a video: decoded through GStreamer
//! ([`VideoFrames`]), every Nth frame (`--video-every`) run through the
//! models ([`Analyser`], the detector at its operating threshold) and
//! tracked into vehicle passes ([`PassBuilder`]), each pass's plate reads
//! voted into one text.
//!
//! Without labels, what is measured is: frames decoded and analysed,
//! vehicles detected per frame by class, plate detections, and the plate
//! reads a user would be shown at the default `--min-confidence`
//! ([`DEFAULT_MIN_CONFIDENCE`]): per pass (the lines `recognize` prints)
//! and per frame. No plate of such a clip can be read, so every read shown
//! is a false read.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use safecity_models::SessionOptions;
use safecity_pipeline::VideoFrames;
use serde_json::{json, Value};

use super::metrics::rate;
use super::{confidence4, count, number, round4, Models, MAX_EXAMPLES};
use safecity_edge::analyse::{Analyser, FrameAnalysis, ModelPaths};
use safecity_edge::passes::{Pass, PassBuilder, PassConfig};
use safecity_edge::recognize::DEFAULT_MIN_CONFIDENCE;

/// Which frames of the clip are analysed, and with how many threads.
pub(super) struct VideoOptions {
    /// Every Nth decoded frame.
    pub(super) every: usize,
    /// At most this many analysed frames.
    pub(super) limit: Option<usize>,
    pub(super) threads: usize,
}

#[derive(Debug, Default)]
pub(super) struct VideoTally {
    decoded: usize,
    analysed: usize,
    /// Time of the last frame analysed, from the start of the clip.
    last_ms: u64,
    /// Vehicle detections by class.
    vehicles: BTreeMap<String, usize>,
    frames_with_vehicles: usize,
    plates: usize,
    /// Plate detections whose best read is shown.
    frame_reads_shown: usize,
    passes: usize,
    /// Passes with a plate read, at any confidence.
    pass_reads: usize,
    /// Passes with a plate read that is shown: the plate lines `recognize`
    /// prints.
    pass_reads_shown: usize,
    /// The first reads shown, per pass.
    shown: Vec<Value>,
    seconds: f64,
}

impl VideoTally {
    /// One analysed frame's vehicles and plates.
    fn add_frame(&mut self, analysis: &FrameAnalysis) {
        self.analysed += 1;
        for v in &analysis.vehicles {
            *self.vehicles.entry(v.det.class.clone()).or_default() += 1;
        }
        self.frames_with_vehicles += usize::from(!analysis.vehicles.is_empty());
        self.plates += analysis.plates.len();
        self.frame_reads_shown += analysis
            .plates
            .iter()
            .filter(|p| {
                p.candidates
                    .first()
                    .is_some_and(|c| c.confidence >= DEFAULT_MIN_CONFIDENCE)
            })
            .count();
    }

    /// Passes that ended: those with a plate read shown are false reads.
    fn add_passes(&mut self, passes: &[Pass]) {
        self.passes += passes.len();
        for p in passes {
            let Some(plate) = &p.plate else {
                continue;
            };
            self.pass_reads += 1;
            if plate.best.confidence < DEFAULT_MIN_CONFIDENCE {
                continue;
            }
            self.pass_reads_shown += 1;
            if self.shown.len() < MAX_EXAMPLES {
                self.shown.push(json!({
                    "frame": p.frame,
                    "ts_ms": p.ts_ms,
                    "text": plate.best.text,
                    "confidence": confidence4(plate.best.confidence),
                    "class": p.class,
                }));
            }
        }
    }
}

pub(super) fn eval_video(
    models: &Models,
    path: &Path,
    options: &VideoOptions,
    shutdown: &AtomicBool,
) -> anyhow::Result<VideoTally> {
    let started = Instant::now();
    // The same models, opened as `recognize` opens them.
    let paths = ModelPaths {
        detector: Some(models.detector_path.clone()),
        plate_reader: Some(models.reader_path.clone()),
        colour: None,
    };
    let session_options = SessionOptions {
        intra_threads: options.threads,
        ..SessionOptions::default()
    };
    let mut analyser = Analyser::open(&paths, &session_options)?;
    let mut passes = PassBuilder::new(PassConfig {
        snapshots: false,
        ..PassConfig::default()
    });
    let mut t = VideoTally::default();
    for frame in VideoFrames::open(path, None, None)? {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let frame = frame?;
        if options.limit.is_some_and(|n| t.analysed >= n) {
            break;
        }
        t.decoded += 1;
        if frame.seq % options.every as u64 != 0 {
            continue;
        }
        let picture = frame.picture();
        let analysis = analyser
            .analyse(&[picture])
            .with_context(|| format!("{} frame {}", path.display(), frame.seq))?
            .pop()
            .unwrap_or_default();
        t.add_frame(&analysis);
        t.add_passes(&passes.update(frame.seq, frame.pts_ms, &picture, &analysis));
        t.last_ms = frame.pts_ms;
    }
    t.add_passes(&passes.finish());
    if t.analysed == 0 {
        bail!(
            "{}: no frame could be decoded; is it a video file GStreamer can decode?",
            path.display()
        );
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

pub(super) fn video_json(path: &Path, options: &VideoOptions, t: &VideoTally) -> Value {
    let per_frame = |n: usize| rate(n, t.analysed).map(round4);
    let minutes = t.last_ms as f64 / 60_000.0;
    json!({
        "file": path.display().to_string(),
        "labels": "none; no plate is readable, so every read shown is false",
        "every": options.every,
        "frames_decoded": t.decoded,
        "frames_analysed": t.analysed,
        "video_seconds": round4(t.last_ms as f64 / 1000.0),
        "seconds": round4(t.seconds),
        "min_confidence": confidence4(DEFAULT_MIN_CONFIDENCE),
        "vehicles": t.vehicles,
        "vehicles_per_frame": t.vehicles.iter().map(|(c, &n)| (c.clone(), per_frame(n))).collect::<BTreeMap<_, _>>(),
        "frames_with_vehicles": t.frames_with_vehicles,
        "plate_detections": t.plates,
        "passes": t.passes,
        "plate_reads_any_confidence": t.pass_reads,
        "false_reads_shown": t.pass_reads_shown,
        "false_reads_shown_per_minute": (minutes > 0.0).then(|| round4(t.pass_reads_shown as f64 / minutes)),
        "false_frame_reads_shown": t.frame_reads_shown,
        "false_reads": t.shown,
    })
}

pub(super) fn video_report(v: &Value) -> String {
    let every = count(v, "every");
    let sampled = if every == 1 {
        "every frame".to_owned()
    } else {
        format!("one frame in {every}")
    };
    let per_frame: Vec<String> = v["vehicles_per_frame"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(class, n)| format!("{class} {:.2}", n.as_f64().unwrap_or(0.0)))
                .collect()
        })
        .unwrap_or_default();
    let min = number(v, "min_confidence").unwrap_or(0.0);
    let mut out = vec![
        format!(
            "== video, no labels and no readable plates: {}  ({sampled}: {} of {} decoded frames, {:.1} s of video; {:.1} s)",
            v["file"].as_str().unwrap_or(""),
            count(v, "frames_analysed"),
            count(v, "frames_decoded"),
            number(v, "video_seconds").unwrap_or(0.0),
            number(v, "seconds").unwrap_or(0.0)
        ),
        format!(
            "  vehicles per frame          {}  (frames with any: {})",
            if per_frame.is_empty() { "none".to_owned() } else { per_frame.join(", ") },
            count(v, "frames_with_vehicles")
        ),
        format!("  plate detections            {}", count(v, "plate_detections")),
        format!(
            "  false reads shown per frame {}  (plate detections read at confidence >= {min})",
            count(v, "false_frame_reads_shown")
        ),
        format!(
            "  vehicle passes              {}  ({} with a plate read at any confidence)",
            count(v, "passes"),
            count(v, "plate_reads_any_confidence")
        ),
        format!(
            "  false reads shown           {}  ({} a minute; passes `recognize` prints a plate for at its defaults)",
            count(v, "false_reads_shown"),
            number(v, "false_reads_shown_per_minute").map_or("-".to_owned(), |r| format!("{r:.1}"))
        ),
    ];
    if let Some(list) = v["false_reads"].as_array().filter(|l| !l.is_empty()) {
        let shown: Vec<String> = list
            .iter()
            .take(8)
            .map(|r| {
                format!(
                    "{} {:.2} at {:.1} s",
                    r["text"].as_str().unwrap_or("-"),
                    number(r, "confidence").unwrap_or(0.0),
                    number(r, "ts_ms").unwrap_or(0.0) / 1000.0
                )
            })
            .collect();
        out.push(format!("  first false reads: {}", shown.join("; ")));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use safecity_edge::analyse::{PlateDetection, VehicleDetection};
    use safecity_edge::passes::PassPlate;
    use safecity_models::{rank_candidates, ObjectDetection, PlateCandidate};

    fn candidate(text: &str, confidence: f32) -> PlateCandidate {
        let mut c = rank_candidates(&[(text.to_owned(), confidence)], 1).remove(0);
        c.confidence = confidence;
        c
    }

    fn det(class: &str) -> ObjectDetection {
        ObjectDetection {
            class: class.to_owned(),
            score: 0.9,
            bbox: [0.0, 0.0, 10.0, 10.0],
        }
    }

    fn pass(read: Option<f32>) -> Pass {
        Pass {
            track_id: 1,
            class: "car".into(),
            class_confidence: 0.9,
            colour: None,
            frame: 7,
            ts_ms: 560,
            first_ms: 0,
            last_ms: 800,
            vehicle_bbox: None,
            plate: read.map(|confidence| PassPlate {
                best: candidate("ABC123", confidence),
                candidates: Vec::new(),
                bbox: [0.0; 4],
                reads: 3,
            }),
            snapshot: None,
            hits: 10,
        }
    }

    #[test]
    fn frames_count_vehicles_by_class_and_shown_reads() {
        let vehicle = |class: &str| VehicleDetection {
            det: det(class),
            colour: None,
        };
        let plate = |candidates: Vec<PlateCandidate>| PlateDetection {
            det: det("plate"),
            candidates,
        };
        let mut t = VideoTally::default();
        t.add_frame(&FrameAnalysis {
            vehicles: vec![vehicle("car"), vehicle("car"), vehicle("truck")],
            plates: vec![
                plate(vec![candidate("ABC123", DEFAULT_MIN_CONFIDENCE)]),
                plate(vec![candidate("ABC123", DEFAULT_MIN_CONFIDENCE / 2.0)]),
                plate(Vec::new()),
            ],
        });
        t.add_frame(&FrameAnalysis::default());
        assert_eq!(t.analysed, 2);
        assert_eq!(t.vehicles["car"], 2);
        assert_eq!(t.vehicles["truck"], 1);
        assert_eq!(t.frames_with_vehicles, 1);
        assert_eq!(t.plates, 3);
        assert_eq!(t.frame_reads_shown, 1);
    }

    #[test]
    fn passes_with_a_sure_read_are_false_reads_shown() {
        let mut t = VideoTally::default();
        t.add_passes(&[
            pass(None),
            pass(Some(0.9)),
            pass(Some(DEFAULT_MIN_CONFIDENCE / 2.0)),
        ]);
        assert_eq!((t.passes, t.pass_reads, t.pass_reads_shown), (3, 2, 1));
        assert_eq!(t.shown.len(), 1);
        assert_eq!(t.shown[0]["text"], "ABC123");
        assert_eq!(t.shown[0]["ts_ms"], 560);
        t.last_ms = 30_000;
        let v = video_json(
            Path::new("clip.mp4"),
            &VideoOptions {
                every: 2,
                limit: None,
                threads: 1,
            },
            &t,
        );
        assert_eq!(v["false_reads_shown"], 1);
        assert_eq!(v["false_reads_shown_per_minute"], json!(2.0));
        assert!(video_report(&v).contains("one frame in 2: 0 of 0 decoded frames"));
    }
}

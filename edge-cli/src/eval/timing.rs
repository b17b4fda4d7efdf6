//! `--timing`: milliseconds per call and per frame (or plate) of the
//! detector at batch 1 and 8 and of the plate reader at batch 1 and 16, on
//! the first simulator still (or a synthetic picture), each the median of
//! its runs after 3 warm-up calls, at the operating threshold.

use std::time::Instant;

use image::RgbImage;
use safecity_models::PlateCrop;
use serde_json::{json, Map, Value};

use super::metrics::{median, xyxy};
use super::sim::SimSet;
use super::{decode, frame, round4, Models, CURVE_THRESHOLD};

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

pub(super) struct TimingRow {
    model: &'static str,
    batch: usize,
    runs: usize,
    ms_per_call: f64,
}

pub(super) fn eval_timing(
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

pub(super) fn timing_report(rows: &[TimingRow], what: &str, threads: usize) -> String {
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

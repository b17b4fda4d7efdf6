//! `--openalpr DIR`: openalpr-style photo folders, `NAME.jpg` beside
//! `NAME.txt` with one line per plate (`file x y w h PLATE`). By default
//! the fixed test split: sorted by file name, every third picture starting
//! with the third. Plates are found at the operating threshold and read end
//! to end and on their ground-truth boxes, texts compared as plate keys.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use image::RgbImage;
use safecity_models::Picture;
use serde_json::{json, Value};

use super::metrics::{greedy_match, plate_key, rate, xyxy, ApTally, TruthBox};
use super::{
    at_least, calibration_json, count, decode, file_name, frame, header_line, is_picture,
    metric_lines, misread_lines, number, of_class, reliability_lines, round4, Models, PlateReads,
    ReadTally, MATCH_IOU,
};

const OPENALPR_TARGETS: [(&str, f64); 2] = [("plate_recall", 0.85), ("read_exact_e2e", 0.85)];

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

/// A labelled photo: its plates as boxes `x1, y1, x2, y2` and texts.
pub(super) struct Photo {
    path: PathBuf,
    plates: Vec<([f32; 4], String)>,
}

pub(super) struct PhotoSet {
    pub(super) dir: PathBuf,
    /// Pictures in the folder, before the split.
    total: usize,
    pub(super) photos: Vec<Photo>,
}

pub(super) fn load_openalpr(
    dir: &Path,
    all: bool,
    limit: Option<usize>,
) -> anyhow::Result<PhotoSet> {
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

#[derive(Default)]
pub(super) struct PhotoTally {
    images: usize,
    plates: usize,
    recalled: usize,
    plate_ap: ApTally,
    reads: ReadTally,
    seconds: f64,
}

pub(super) fn eval_photos(
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
        let mut plates = PlateReads::default();
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
                let detected = m.map(|d| operating_plates[d].bbox);
                let key = (file_name(&photo.path), plate_key(text));
                plates.push(*frame, key, *bbox, detected);
            }
        }
        plates.read_into(models, &mut t.reads, &set.dir)?;
        bar.inc(chunk.len() as u64);
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

pub(super) fn photos_json(set: &PhotoSet, all: bool, t: &PhotoTally, operating: f32) -> Value {
    let r = |hits| rate(hits, t.plates).map(round4);
    let (precision, recall) = t.plate_ap.precision_recall(operating);
    let calibration = calibration_json(&t.reads.gt_box_reads);
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
        "read_exact_e2e_any_confidence": r(t.reads.e2e_exact_any_confidence),
        "read_exact_e2e_any_confidence_count": t.plates,
        "read_exact_gt_box": r(t.reads.gt_box_exact),
        "read_exact_gt_box_count": t.plates,
        "char_accuracy_gt_box": t.reads.mean_char_accuracy(),
        "char_accuracy_gt_box_count": t.plates,
        "ece_gt_box": number(&calibration, "ece"),
        "ece_gt_box_count": t.plates,
        "calibration_gt_box": calibration,
        "misreads": t.reads.misreads,
    })
}

pub(super) fn photos_report(v: &Value) -> String {
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
    metric_lines(
        v,
        &[
            "plate_recall",
            "plate_ap50",
            "read_exact_e2e",
            "read_exact_e2e_any_confidence",
            "read_exact_gt_box",
            "char_accuracy_gt_box",
            "ece_gt_box",
        ],
        &OPENALPR_TARGETS,
        &mut out,
    );
    out.extend(reliability_lines(
        &v["calibration_gt_box"],
        "of reads on ground-truth boxes",
    ));
    misread_lines(v, &mut out);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}

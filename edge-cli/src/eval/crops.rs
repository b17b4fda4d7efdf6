//! `--plate-crops DIR`: the plate reader alone, on plate crops listed in
//! `DIR/annotations.csv`: the header `image_path,plate_text`, then one line
//! per crop, the path relative to DIR. Each crop is read whole: its box is
//! the whole picture, and the margins the reader adds are clamped to it. A
//! picture listed on two lines is read once and counted on both. Texts are
//! compared as plate keys.
//!
//! Reported: exact reads, character accuracy, calibration (ECE and the
//! reliability table) and misreads. The heading says the set is for
//! validation only and names the licence of `DIR/LICENSE`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use image::RgbImage;
use safecity_models::PlateCrop;
use serde_json::{json, Value};

use super::metrics::{plate_key, rate};
use super::{
    calibration_json, confidence4, count, decode, frame, header_line, metric_lines, misread_lines,
    number, reliability_lines, round4, BestRead, Models, ReadTally,
};

/// The first line of annotations.csv.
const HEADER: &str = "image_path,plate_text";
/// Crops per reader call.
const CROP_BATCH: usize = 16;

/// One crop line of annotations.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Line number, from 1.
    pub line: usize,
    /// Path of the picture, relative to the folder.
    pub image: String,
    pub text: String,
}

/// The crop lines of an annotations.csv, after its header; blank lines are
/// skipped. An error names the line at fault.
pub fn parse_annotations(text: &str) -> Result<Vec<Annotation>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.trim_start_matches('\u{feff}').trim() == HEADER => {}
        Some((i, l)) => {
            return Err(format!(
                "line {}: {l:?} is not the header `{HEADER}`",
                i + 1
            ))
        }
        None => {
            return Err(format!(
                "is empty; it must start with the header `{HEADER}`"
            ))
        }
    }
    lines
        .map(|(i, l)| {
            let fields = l.trim().split_once(',').and_then(|(image, text)| {
                let (image, text) = (image.trim(), text.trim());
                (!image.is_empty() && !text.is_empty() && !text.contains(','))
                    .then_some((image, text))
            });
            let (image, text) = fields
                .ok_or_else(|| format!("line {}: {l:?} is not `image_path,plate_text`", i + 1))?;
            Ok(Annotation {
                line: i + 1,
                image: image.to_owned(),
                text: text.to_owned(),
            })
        })
        .collect()
}

/// The licence a LICENSE file's text states: `GPL-3.0` and the like for the
/// GNU licences, else its first line.
pub fn licence_name(text: &str) -> Option<String> {
    const GNU: [(&str, &str); 3] = [
        ("GNU AFFERO GENERAL PUBLIC LICENSE", "AGPL"),
        ("GNU LESSER GENERAL PUBLIC LICENSE", "LGPL"),
        ("GNU GENERAL PUBLIC LICENSE", "GPL"),
    ];
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    let Some((_, short)) = GNU
        .iter()
        .find(|(name, _)| first.eq_ignore_ascii_case(name))
    else {
        return Some(first.to_owned());
    };
    let version = lines
        .next()
        .and_then(|l| l.strip_prefix("Version "))
        .and_then(|v| v.split([',', ' ']).next())
        .filter(|v| !v.is_empty());
    Some(match version {
        Some(v) if v.contains('.') => format!("{short}-{v}"),
        Some(v) => format!("{short}-{v}.0"),
        None => (*short).to_owned(),
    })
}

pub(super) struct CropSet {
    pub(super) dir: PathBuf,
    /// The pictures listed, each once.
    pub(super) pictures: Vec<PathBuf>,
    /// Each crop line: the picture's index in `pictures` and the text.
    lines: Vec<(usize, Annotation)>,
    /// The licence of `DIR/LICENSE`, when there is one.
    licence: Option<String>,
}

pub(super) fn load_crops(dir: &Path, limit: Option<usize>) -> anyhow::Result<CropSet> {
    let layout = format!(
        "a --plate-crops folder holds annotations.csv (the header `{HEADER}`, then one line per \
         crop, the path relative to the folder) and the crop pictures it names"
    );
    if !dir.is_dir() {
        bail!("{}: no such folder; {layout}", dir.display());
    }
    let csv = dir.join("annotations.csv");
    if !csv.is_file() {
        bail!("{}: not found; {layout}", csv.display());
    }
    let text =
        std::fs::read_to_string(&csv).with_context(|| format!("reading {}", csv.display()))?;
    let mut annotations =
        parse_annotations(&text).map_err(|e| anyhow::anyhow!("{} {e}; {layout}", csv.display()))?;
    annotations.truncate(limit.unwrap_or(usize::MAX));
    if annotations.is_empty() {
        bail!(
            "{}: lists no crops after its header; {layout}",
            csv.display()
        );
    }
    let mut pictures = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut lines = Vec::with_capacity(annotations.len());
    for a in annotations {
        let path = dir.join(&a.image);
        if !path.is_file() {
            bail!(
                "{} line {}: {} is not there; put the crop there or fix the path (relative \
                 to {})",
                csv.display(),
                a.line,
                path.display(),
                dir.display()
            );
        }
        let k = *index.entry(a.image.clone()).or_insert_with(|| {
            pictures.push(path);
            pictures.len() - 1
        });
        lines.push((k, a));
    }
    let licence = std::fs::read_to_string(dir.join("LICENSE"))
        .ok()
        .and_then(|t| licence_name(&t));
    Ok(CropSet {
        dir: dir.to_path_buf(),
        pictures,
        lines,
        licence,
    })
}

#[derive(Default)]
pub(super) struct CropTally {
    reads: ReadTally,
    seconds: f64,
}

/// Reads every picture once, whole, then scores every crop line.
pub(super) fn eval_crops(
    models: &mut Models,
    set: &CropSet,
    bar: &indicatif::ProgressBar,
    shutdown: &AtomicBool,
) -> anyhow::Result<CropTally> {
    let started = Instant::now();
    let mut reads: Vec<BestRead> = Vec::with_capacity(set.pictures.len());
    for chunk in set.pictures.chunks(CROP_BATCH) {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let images: Vec<RgbImage> = chunk
            .iter()
            .map(|p| decode(p))
            .collect::<anyhow::Result<_>>()?;
        let crops: Vec<PlateCrop<'_>> = images
            .iter()
            .map(|img| PlateCrop {
                frame: frame(img),
                bbox: [0.0, 0.0, img.width() as f32, img.height() as f32],
            })
            .collect();
        reads.extend(
            models
                .read(&crops)
                .with_context(|| format!("reading crops in {}", set.dir.display()))?,
        );
        bar.inc(chunk.len() as u64);
    }
    let mut t = CropTally::default();
    for (k, a) in &set.lines {
        let truth = plate_key(&a.text);
        let read = reads[*k].keyed();
        if !t.reads.on_box(&truth, &read) {
            t.reads.misread(json!({
                "file": a.image,
                "truth": truth,
                "gt_box": read.text,
                "gt_box_confidence": confidence4(read.confidence),
            }));
        }
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

pub(super) fn crops_json(set: &CropSet, t: &CropTally) -> Value {
    let crops = set.lines.len();
    let calibration = calibration_json(&t.reads.gt_box_reads);
    json!({
        "dir": set.dir.display().to_string(),
        "licence": set.licence,
        "use": "validation only",
        "crops": crops,
        "pictures": set.pictures.len(),
        "seconds": round4(t.seconds),
        "read_exact": rate(t.reads.gt_box_exact, crops).map(round4),
        "read_exact_count": crops,
        "char_accuracy": t.reads.mean_char_accuracy(),
        "char_accuracy_count": crops,
        "ece": number(&calibration, "ece"),
        "ece_count": crops,
        "calibration": calibration,
        "misreads": t.reads.misreads,
    })
}

pub(super) fn crops_report(v: &Value) -> String {
    let licence = v["licence"]
        .as_str()
        .map_or_else(|| "no LICENSE file".to_owned(), |l| format!("licence {l}"));
    let mut out = vec![
        format!(
            "== plate crops, validation only ({licence}; do not train on it): {}  ({} crops, {} pictures; {:.1} s)",
            v["dir"].as_str().unwrap_or(""),
            count(v, "crops"),
            count(v, "pictures"),
            number(v, "seconds").unwrap_or(0.0)
        ),
        header_line(),
    ];
    metric_lines(v, &["read_exact", "char_accuracy", "ece"], &[], &mut out);
    out.extend(reliability_lines(
        &v["calibration"],
        "of reads of whole crops",
    ));
    misread_lines(v, &mut out);
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_need_the_header_and_two_fields_a_line() {
        let rows = parse_annotations(
            "\u{feff}image_path,plate_text\r\nimgs/a.png,AD054JI\r\n\nimgs/a.png, AD054JI \nimgs/b.png,ABC123",
        )
        .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            Annotation {
                line: 2,
                image: "imgs/a.png".into(),
                text: "AD054JI".into()
            }
        );
        assert_eq!((rows[1].line, rows[1].text.as_str()), (4, "AD054JI"));
        assert_eq!(rows[2].image, "imgs/b.png");

        let err = parse_annotations("imgs/a.png,AD054JI\n").unwrap_err();
        assert!(err.starts_with("line 1:") && err.contains(HEADER), "{err}");
        assert!(parse_annotations("").unwrap_err().contains(HEADER));
        let err =
            parse_annotations("image_path,plate_text\nimgs/a.png,AB1\nimgs/b.png\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        for bad in [",AB1", "imgs/a.png,", "imgs/a.png,AB,1"] {
            let text = format!("image_path,plate_text\n{bad}\n");
            assert!(parse_annotations(&text).is_err(), "{bad}");
        }
        assert_eq!(parse_annotations("image_path,plate_text\n"), Ok(Vec::new()));
    }

    #[test]
    fn licences_are_named_from_their_file() {
        let gpl = "                    GNU GENERAL PUBLIC LICENSE\n                       Version 3, 29 June 2007\n\n Copyright";
        assert_eq!(licence_name(gpl).as_deref(), Some("GPL-3.0"));
        let agpl = "GNU AFFERO GENERAL PUBLIC LICENSE\nVersion 3, 19 November 2007";
        assert_eq!(licence_name(agpl).as_deref(), Some("AGPL-3.0"));
        let lgpl = "GNU LESSER GENERAL PUBLIC LICENSE\nVersion 2.1, February 1999";
        assert_eq!(licence_name(lgpl).as_deref(), Some("LGPL-2.1"));
        assert_eq!(
            licence_name("\nMIT License\n\nCopyright (c) 2020").as_deref(),
            Some("MIT License")
        );
        assert_eq!(licence_name(" \n"), None);
    }
}

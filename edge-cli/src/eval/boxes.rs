//! `--boxes DIR`: the plate detector on frames labelled with plate boxes but
//! no texts: `DIR/boxes.tsv` (the header `file x y w h`, then one line per
//! plate, pixels, top-left and size) and `DIR/images/FILE`. A frame without
//! a line is not in the set. Frames are detected in as stills are.
//!
//! Reported: plate recall at the operating threshold, precision there and
//! AP50, over the set, by day and night (rides named `night*` are night),
//! and per ride, the file name before `_t<digits>` (`RIDE_tSECONDS.jpg`):
//! neighbouring frames of a ride are near duplicates, so a ride is one
//! sample more than its frames are many.
//!
//! With `--box-texts FILE` (the header `file x y w h text legible split`,
//! one line per plate of boxes.tsv, the same box), the plates marked
//! legible in the validation split are also read, from their
//! ground-truth box and end to end as the photos' plates are: exact reads,
//! characters right and calibration. Plates of the training split are
//! not scored. Plate recall is then also reported over the frames of the
//! validation split alone, the frames a detector trained on the others
//! has not seen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use image::RgbImage;
use safecity_models::Picture;
use serde_json::{json, Map, Value};

use super::metrics::{greedy_match, plate_key, rate, xyxy, ApTally, ScoredBox, TruthBox};
use super::{
    at_least, calibration_json, count, decode, frame, header_line, metric_lines, misread_lines,
    number, of_class, reliability_lines, round4, Models, PlateReads, ReadTally, MATCH_IOU,
};

/// The first line of boxes.tsv, field by field.
const HEADER: [&str; 5] = ["file", "x", "y", "w", "h"];

/// One plate line of boxes.tsv, `file x y w h`, as the file and the box
/// `x1, y1, x2, y2`; `None` for a line that is not one or a box without
/// area.
pub fn parse_box_line(line: &str) -> Option<(String, [f32; 4])> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != HEADER.len() {
        return None;
    }
    box_of(&fields)
}

/// The file and box `x1, y1, x2, y2` of the fields `file x y w h`.
fn box_of(fields: &[&str]) -> Option<(String, [f32; 4])> {
    let n = |i: usize| fields[i].parse::<f32>().ok().filter(|v| v.is_finite());
    let b = [n(1)?, n(2)?, n(3)?, n(4)?];
    (b[2] > 0.0 && b[3] > 0.0).then(|| (fields[0].to_owned(), xyxy(b)))
}

/// The ride of a frame named `RIDE_tSECONDS.jpg`: the name before `_t` and
/// its digits. A name not of that form is a ride of its own.
pub fn ride_of(file: &str) -> &str {
    let stem = Path::new(file)
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or(file);
    match stem.rsplit_once("_t") {
        Some((ride, seconds))
            if !ride.is_empty()
                && !seconds.is_empty()
                && seconds.bytes().all(|b| b.is_ascii_digit()) =>
        {
            ride
        }
        _ => stem,
    }
}

/// Rides whose names start with `night` (any case) are night rides.
pub fn is_night(ride: &str) -> bool {
    ride.get(..5)
        .is_some_and(|p| p.eq_ignore_ascii_case("night"))
}

/// The first line of a --box-texts file, field by field.
const TEXTS_HEADER: [&str; 8] = ["file", "x", "y", "w", "h", "text", "legible", "split"];

/// One line of a --box-texts file.
#[derive(Debug, PartialEq)]
pub struct TextLine {
    pub file: String,
    /// `x1, y1, x2, y2`.
    pub bbox: [f32; 4],
    /// In the validation split.
    pub validation: bool,
    /// The text of a legible plate of the validation split; `None` for a
    /// plate whose reading is not scored.
    pub read: Option<String>,
}

/// One line of a --box-texts file; `Err` names what is wrong with it.
pub fn parse_text_line(line: &str) -> Result<TextLine, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    if fields.len() != TEXTS_HEADER.len() {
        return Err(format!("{} tab-separated fields, not 8", fields.len()));
    }
    let trimmed: Vec<&str> = fields[..HEADER.len()].iter().map(|f| f.trim()).collect();
    let (file, bbox) = box_of(&trimmed)
        .ok_or("the file and box are not `file x y w h` with width and height above 0")?;
    let text = plate_key(fields[5]);
    let (validation, scored) = match (fields[6], fields[7]) {
        ("0" | "1", "train") => (false, false),
        (legible @ ("0" | "1"), "val") => (true, legible == "1"),
        (legible, split) => {
            return Err(format!(
                "legible {legible:?} and split {split:?}: legible is 0 or 1, split train or val"
            ))
        }
    };
    if scored && text.is_empty() {
        return Err("a legible plate of the validation split needs its text".to_owned());
    }
    Ok(TextLine {
        file,
        bbox,
        validation,
        read: scored.then_some(text),
    })
}

/// A labelled frame: its plates as boxes `x1, y1, x2, y2`, and the texts of
/// those to read (--box-texts).
pub(super) struct BoxFrame {
    file: String,
    path: PathBuf,
    plates: Vec<[f32; 4]>,
    texts: Vec<Option<String>>,
    /// A plate of the frame is in the validation split (--box-texts).
    validation: bool,
}

pub(super) struct BoxSet {
    pub(super) dir: PathBuf,
    /// Sorted by file name.
    pub(super) frames: Vec<BoxFrame>,
    /// The --box-texts file, when one was given.
    pub(super) texts: Option<PathBuf>,
}

/// Gives the frames of `set` the texts of `path` (a --box-texts file).
/// Every line must name a plate of boxes.tsv.
pub(super) fn load_box_texts(set: &mut BoxSet, path: &Path) -> anyhow::Result<()> {
    let layout = "--box-texts holds the header `file x y w h text legible split`, then one \
                  tab-separated line per plate of boxes.tsv (legible 0 or 1, split train or val)";
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {}: {layout}", path.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, l)) if l.split('\t').eq(TEXTS_HEADER) => {}
        _ => bail!(
            "{}: the first line is not the header; {layout}",
            path.display()
        ),
    }
    let index: BTreeMap<String, usize> = set
        .frames
        .iter()
        .enumerate()
        .map(|(i, f)| (f.file.clone(), i))
        .collect();
    for (i, l) in lines {
        let at = || format!("{} line {}", path.display(), i + 1);
        let TextLine {
            file,
            bbox,
            validation,
            read,
        } = parse_text_line(l).map_err(|e| anyhow::anyhow!("{}: {e}; {layout}", at()))?;
        let Some(&n) = index.get(&file) else {
            // A frame left out by --limit, or not in the set.
            continue;
        };
        let frame = &mut set.frames[n];
        let Some(k) = frame.plates.iter().position(|b| *b == bbox) else {
            bail!(
                "{}: {file} has no such plate box in {}; the texts must follow boxes.tsv",
                at(),
                set.dir.join("boxes.tsv").display()
            );
        };
        frame.texts[k] = read;
        frame.validation |= validation;
    }
    set.texts = Some(path.to_path_buf());
    Ok(())
}

pub(super) fn load_boxes(dir: &Path, limit: Option<usize>) -> anyhow::Result<BoxSet> {
    let layout = "a --boxes folder holds boxes.tsv (the header `file x y w h`, then one line per \
                  plate: pixels, top-left and size) and images/FILE for each file it names";
    if !dir.is_dir() {
        bail!("{}: no such folder; {layout}", dir.display());
    }
    let tsv = dir.join("boxes.tsv");
    if !tsv.is_file() {
        bail!("{}: not found; {layout}", tsv.display());
    }
    let text =
        std::fs::read_to_string(&tsv).with_context(|| format!("reading {}", tsv.display()))?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, l)) if l.split_whitespace().eq(HEADER) => {}
        Some((i, l)) => bail!(
            "{} line {}: {l:?} is not the header `file x y w h`; {layout}",
            tsv.display(),
            i + 1
        ),
        None => bail!("{}: is empty; {layout}", tsv.display()),
    }
    // Each file's plates, and the line that first named it.
    let mut frames: BTreeMap<String, (usize, Vec<[f32; 4]>)> = BTreeMap::new();
    for (i, l) in lines {
        let (file, bbox) = parse_box_line(l).with_context(|| {
            format!(
                "{} line {}: {l:?} is not `file x y w h` (pixels, width and height above 0); \
                 fix or delete it",
                tsv.display(),
                i + 1
            )
        })?;
        frames
            .entry(file)
            .or_insert((i + 1, Vec::new()))
            .1
            .push(bbox);
    }
    if frames.is_empty() {
        bail!("{}: lists no plates; {layout}", tsv.display());
    }
    let mut out = Vec::new();
    for (file, (line, plates)) in frames.into_iter().take(limit.unwrap_or(usize::MAX)) {
        let path = dir.join("images").join(&file);
        if !path.is_file() {
            bail!(
                "{} line {line}: {} is not there; each file named must be in {}",
                tsv.display(),
                path.display(),
                dir.join("images").display()
            );
        }
        let texts = vec![None; plates.len()];
        out.push(BoxFrame {
            file,
            path,
            plates,
            texts,
            validation: false,
        });
    }
    Ok(BoxSet {
        dir: dir.to_path_buf(),
        frames: out,
        texts: None,
    })
}

/// Plate detection over some frames.
#[derive(Debug, Default)]
struct Group {
    frames: usize,
    plates: usize,
    /// Plates a detection at the operating threshold matched.
    recalled: usize,
    /// Detections at the operating threshold.
    detections: usize,
    ap: ApTally,
}

impl Group {
    fn add(&mut self, dets: &[ScoredBox], plates: &[[f32; 4]], operating: f32) {
        let truth: Vec<TruthBox> = plates
            .iter()
            .map(|&bbox| TruthBox {
                bbox,
                ignore: false,
            })
            .collect();
        self.ap.add(dets, &truth, MATCH_IOU);
        let operating_dets = at_least(dets, operating);
        let matched = greedy_match(&operating_dets, plates, MATCH_IOU);
        self.frames += 1;
        self.plates += plates.len();
        self.recalled += matched.iter().filter(|m| m.is_some()).count();
        self.detections += operating_dets.len();
    }

    fn json(&self, operating: f32) -> Value {
        let (precision, _) = self.ap.precision_recall(operating);
        json!({
            "frames": self.frames,
            "plates": self.plates,
            "plate_recall": rate(self.recalled, self.plates).map(round4),
            "plate_recall_count": self.plates,
            "plate_ap50": self.ap.ap().map(round4),
            "plate_ap50_count": self.ap.positives,
            "plate_precision": precision.map(round4),
            "plate_precision_count": self.detections,
        })
    }
}

/// Plate detection over the set, by day and night and per ride.
#[derive(Debug, Default)]
pub(super) struct BoxTally {
    all: Group,
    day: Group,
    night: Group,
    rides: BTreeMap<String, Group>,
    /// Frames of the validation split (--box-texts).
    validation: Group,
    /// Reads of the plates with texts (--box-texts).
    reads: ReadTally,
    read_plates: usize,
    seconds: f64,
}

impl BoxTally {
    /// One frame's plate detections against its plates.
    fn add(
        &mut self,
        file: &str,
        validation: bool,
        dets: &[ScoredBox],
        plates: &[[f32; 4]],
        operating: f32,
    ) {
        if validation {
            self.validation.add(dets, plates, operating);
        }
        let ride = ride_of(file);
        let light = if is_night(ride) {
            &mut self.night
        } else {
            &mut self.day
        };
        let by_ride = self.rides.entry(ride.to_owned()).or_default();
        for group in [&mut self.all, light, by_ride] {
            group.add(dets, plates, operating);
        }
    }
}

pub(super) fn eval_boxes(
    models: &mut Models,
    set: &BoxSet,
    batch: usize,
    bar: &indicatif::ProgressBar,
    shutdown: &AtomicBool,
) -> anyhow::Result<BoxTally> {
    let started = Instant::now();
    let mut t = BoxTally::default();
    let operating = models.operating;
    for chunk in set.frames.chunks(batch) {
        if shutdown.load(Ordering::SeqCst) {
            bail!("interrupted");
        }
        let images: Vec<RgbImage> = chunk
            .iter()
            .map(|f| decode(&f.path))
            .collect::<anyhow::Result<_>>()?;
        let frames: Vec<Picture<'_>> = images.iter().map(frame).collect();
        let detections = models
            .detect_stills(&frames)
            .with_context(|| format!("detecting in {}", set.dir.display()))?;
        let mut plates = PlateReads::default();
        for ((f, picture), dets) in chunk.iter().zip(&frames).zip(&detections) {
            let plate_dets = of_class(dets, "plate");
            t.add(&f.file, f.validation, &plate_dets, &f.plates, operating);
            if f.texts.iter().all(Option::is_none) {
                continue;
            }
            let operating_plates = at_least(&plate_dets, operating);
            let matched = greedy_match(&operating_plates, &f.plates, MATCH_IOU);
            for ((bbox, text), m) in f.plates.iter().zip(&f.texts).zip(&matched) {
                if let Some(text) = text {
                    let detected = m.map(|d| operating_plates[d].bbox);
                    plates.push(*picture, (f.file.clone(), text.clone()), *bbox, detected);
                }
            }
        }
        t.read_plates += plates.read_into(models, &mut t.reads, &set.dir)?;
        bar.inc(chunk.len() as u64);
    }
    t.seconds = started.elapsed().as_secs_f64();
    Ok(t)
}

pub(super) fn boxes_json(set: &BoxSet, t: &BoxTally, operating: f32) -> Value {
    let rides: Map<String, Value> = t
        .rides
        .iter()
        .map(|(ride, g)| (ride.clone(), g.json(operating)))
        .collect();
    let mut out = t.all.json(operating);
    out["dir"] = json!(set.dir.display().to_string());
    out["rides"] = json!(rides.len());
    out["seconds"] = json!(round4(t.seconds));
    out["operating_threshold"] = json!(operating);
    out["day"] = t.day.json(operating);
    out["night"] = t.night.json(operating);
    out["by_ride"] = Value::Object(rides);
    if let Some(texts) = &set.texts {
        out["validation"] = t.validation.json(operating);
        let n = t.read_plates;
        let r = |hits| rate(hits, n).map(round4);
        let calibration = calibration_json(&t.reads.gt_box_reads);
        out["reads"] = json!({
            "texts": texts.display().to_string(),
            "plates": n,
            "read_exact_e2e": r(t.reads.e2e_exact),
            "read_exact_e2e_count": n,
            "read_exact_e2e_any_confidence": r(t.reads.e2e_exact_any_confidence),
            "read_exact_e2e_any_confidence_count": n,
            "read_exact_gt_box": r(t.reads.gt_box_exact),
            "read_exact_gt_box_count": n,
            "char_accuracy_gt_box": t.reads.mean_char_accuracy(),
            "char_accuracy_gt_box_count": n,
            "ece_gt_box": number(&calibration, "ece"),
            "ece_gt_box_count": n,
            "calibration_gt_box": calibration,
            "misreads": t.reads.misreads,
        });
    }
    out
}

/// One row of the table by light and ride.
fn group_line(name: &str, g: &Value) -> String {
    let shown = |key: &str| number(g, key).map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    format!(
        "    {name:<24} {:>7} {:>7} {:>7} {:>7} {:>9}",
        count(g, "frames"),
        count(g, "plates"),
        shown("plate_recall"),
        shown("plate_ap50"),
        shown("plate_precision")
    )
}

pub(super) fn boxes_report(v: &Value) -> String {
    let mut out = vec![
        format!(
            "== plate boxes: {}  ({} frames, {} plates, rides: {}; {:.1} s)",
            v["dir"].as_str().unwrap_or(""),
            count(v, "frames"),
            count(v, "plates"),
            count(v, "rides"),
            number(v, "seconds").unwrap_or(0.0)
        ),
        header_line(),
    ];
    metric_lines(
        v,
        &["plate_recall", "plate_ap50", "plate_precision"],
        &[],
        &mut out,
    );
    out.push(format!(
        "  {:<26} {:>7} {:>7} {:>7} {:>7} {:>9}",
        "by light and ride", "frames", "plates", "recall", "ap50", "precision"
    ));
    for group in ["day", "night", "validation"] {
        if count(&v[group], "frames") > 0 {
            out.push(group_line(group, &v[group]));
        }
    }
    if let Some(rides) = v["by_ride"].as_object() {
        for (ride, g) in rides {
            out.push(group_line(ride, g));
        }
    }
    let reads = &v["reads"];
    if reads.is_object() {
        out.push(format!(
            "  reads of the {} legible plates of the validation split (texts: {}):",
            count(reads, "plates"),
            reads["texts"].as_str().unwrap_or("")
        ));
        metric_lines(
            reads,
            &[
                "read_exact_e2e",
                "read_exact_e2e_any_confidence",
                "read_exact_gt_box",
                "char_accuracy_gt_box",
                "ece_gt_box",
            ],
            &[],
            &mut out,
        );
        out.extend(reliability_lines(
            &reads["calibration_gt_box"],
            "of reads on ground-truth boxes",
        ));
        misread_lines(reads, &mut out);
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_lines_are_file_and_pixels() {
        let (file, b) = parse_box_line("dayride_type1_001_t01054.jpg\t557\t373\t65\t16").unwrap();
        assert_eq!(file, "dayride_type1_001_t01054.jpg");
        assert_eq!(b, [557.0, 373.0, 622.0, 389.0]);
        assert!(parse_box_line("a.jpg 1 2 3").is_none());
        assert!(parse_box_line("a.jpg 1 2 3 4 5").is_none());
        assert!(parse_box_line("a.jpg 1 2 x 4").is_none());
        assert!(parse_box_line("a.jpg 1 2 0 4").is_none());
        assert!(parse_box_line("a.jpg 1 2 3 NaN").is_none());
    }

    #[test]
    fn text_lines_score_legible_validation_plates_only() {
        let line = |rest: &str| format!("f_t01.jpg\t10\t20\t30\t8\t{rest}");
        let read = parse_text_line(&line("B 21-gsb\t1\tval")).unwrap();
        assert_eq!(
            read,
            TextLine {
                file: "f_t01.jpg".to_owned(),
                bbox: [10.0, 20.0, 40.0, 28.0],
                validation: true,
                read: Some("B21GSB".to_owned()),
            }
        );
        let split_and_read = |rest: &str| {
            let l = parse_text_line(&line(rest)).unwrap();
            (l.validation, l.read)
        };
        assert_eq!(split_and_read("B21GSB\t0\tval"), (true, None));
        assert_eq!(split_and_read("B21GSB\t1\ttrain"), (false, None));
        assert_eq!(split_and_read("?\t0\ttrain"), (false, None));
        for bad in [
            "?\t1\tval",
            "B21GSB\tyes\tval",
            "B21GSB\t1\ttest",
            "B21GSB\t1",
        ] {
            assert!(parse_text_line(&line(bad)).is_err(), "{bad:?} accepted");
        }
        assert!(parse_text_line("f.jpg\t1\t2\t0\t4\tAB\t1\tval").is_err());
    }

    #[test]
    fn rides_are_named_before_the_time() {
        assert_eq!(ride_of("dayride_type1_001_t01054.jpg"), "dayride_type1_001");
        assert_eq!(
            ride_of("nightride_type3_001_t00012.jpg"),
            "nightride_type3_001"
        );
        assert_eq!(ride_of("clip_t1_tx.jpg"), "clip_t1_tx");
        assert_eq!(ride_of("frame.jpg"), "frame");
        assert_eq!(ride_of("_t0001.jpg"), "_t0001");
        assert!(is_night("nightride_type3_001"));
        assert!(is_night("Night_2"));
        assert!(!is_night("dayride_type1_001"));
        assert!(!is_night("nigh"));
    }

    #[test]
    fn frames_count_overall_by_light_and_by_ride() {
        let plate = [100.0, 100.0, 160.0, 115.0];
        let hit = ScoredBox {
            score: 0.9,
            bbox: plate,
        };
        let unsure = ScoredBox {
            score: 0.2,
            bbox: plate,
        };
        let mut t = BoxTally::default();
        t.add("dayride_1_t00001.jpg", true, &[hit], &[plate], 0.5);
        t.add("dayride_1_t00002.jpg", false, &[unsure], &[plate], 0.5);
        t.add(
            "dayride_2_t00001.jpg",
            false,
            &[],
            &[plate, [0.0, 0.0, 10.0, 5.0]],
            0.5,
        );
        t.add("nightride_1_t00001.jpg", true, &[hit], &[plate], 0.5);
        assert_eq!((t.all.frames, t.all.plates, t.all.recalled), (4, 5, 2));
        assert_eq!((t.day.frames, t.day.plates, t.day.recalled), (3, 4, 1));
        assert_eq!((t.night.frames, t.night.recalled), (1, 1));
        assert_eq!((t.validation.frames, t.validation.recalled), (2, 2));
        assert_eq!(t.rides.len(), 3);
        assert_eq!(t.rides["dayride_1"].recalled, 1);
        assert_eq!(t.rides["dayride_1"].detections, 1);
        // Below the operating threshold it is not recalled, but still ranks
        // for AP: both day_1 plates found, in score order.
        assert_eq!(t.rides["dayride_1"].ap.ap(), Some(1.0));
        assert_eq!(t.rides["dayride_2"].ap.ap(), Some(0.0));
        let v = t.rides["dayride_2"].json(0.5);
        assert_eq!(v["plate_recall"], json!(0.0));
        assert_eq!(v["plate_precision"], Value::Null);
    }
}

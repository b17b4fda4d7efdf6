//! `safecity-edge recognize`, driven through the binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn recognize(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_safecity-edge"))
        .arg("recognize")
        .args(args)
        .output()
        .expect("run safecity-edge")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn shared(rel: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared")
        .join(rel);
    if p.exists() {
        Some(p)
    } else {
        // Straight to standard error, past the test runner's capture, so
        // the skip shows on a pass too.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED: {} is not here",
            p.display()
        );
        None
    }
}

#[test]
fn a_missing_model_is_named_with_what_to_do() {
    let o = recognize(&[
        "--detector",
        "/nonexistent/det.onnx",
        "--plate-reader",
        "/nonexistent/plate.onnx",
        "x.jpg",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("/nonexistent/det.toml"), "{err}");

    let Some(yolox) = shared("data/models/yolox_nano.onnx") else {
        return;
    };
    // The detector opens (with its description copied beside it); the
    // missing plate reader is then what the error names.
    let dir = tempfile::tempdir().unwrap();
    let det = dir.path().join("det.onnx");
    std::fs::copy(&yolox, &det).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/byo/yolox_nano.toml"),
        dir.path().join("det.toml"),
    )
    .unwrap();
    let o = recognize(&[
        "--detector",
        det.to_str().unwrap(),
        "--plate-reader",
        "/nonexistent/plate.onnx",
        "x.jpg",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("/nonexistent/plate.toml"), "{err}");
}

#[test]
fn bad_arguments_are_refused() {
    let o = recognize(&[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("<PATH>"), "{}", stderr(&o));
    let o = recognize(&["--fps", "0", "x.jpg"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--fps 0 is out of range"),
        "{}",
        stderr(&o)
    );
}

/// `x, y, w, h` boxes.
fn iou_xywh(a: [f64; 4], b: [f64; 4]) -> f64 {
    let iw = ((a[0] + a[2]).min(b[0] + b[2]) - a[0].max(b[0])).max(0.0);
    let ih = ((a[1] + a[3]).min(b[1] + b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    inter / (a[2] * a[3] + b[2] * b[3] - inter)
}

/// The IoU of a JSON line's `bbox` with an `x, y, w, h` box.
fn read_iou(read: &serde_json::Value, b: [f64; 4]) -> f64 {
    let r: Vec<f64> = read["bbox"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    iou_xywh([r[0], r[1], r[2], r[3]], b)
}

fn lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// The shipped models find the plates of real photos, one JSON line per
/// read; a corrupt file among them is named and the rest still processed.
#[test]
fn reads_real_photos_and_reports_a_corrupt_one_without_stopping() {
    let Some(photos) = shared("data/real/openalpr-us") else {
        return;
    };
    // The held-out photos of the model card's split: every third by name.
    let mut labels: Vec<(PathBuf, [f64; 4])> = std::fs::read_dir(&photos)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "txt").then_some(p)
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let f: Vec<&str> = text.trim().split('\t').collect();
            let n = |i: usize| f.get(i)?.trim().parse::<f64>().ok();
            Some((photos.join(f.first()?.trim()), [n(1)?, n(2)?, n(3)?, n(4)?]))
        })
        .collect();
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    let test: Vec<_> = labels.into_iter().skip(2).step_by(3).take(8).collect();
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.jpg");
    std::fs::write(&corrupt, b"\xff\xd8\xff not really a jpeg").unwrap();

    // Every read is listed: this checks detection and the output, not the
    // reader's accuracy (see models/README.md for that).
    let mut args: Vec<String> = vec!["--json".into(), "--min-confidence".into(), "0".into()];
    args.extend(test.iter().map(|(p, _)| p.display().to_string()));
    args.insert(5, corrupt.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = recognize(&args);
    assert!(
        !o.status.success(),
        "a failed input makes the exit status non-zero"
    );
    let err = stderr(&o);
    assert!(
        err.contains("corrupt.jpg") && err.contains("1 of 9 inputs"),
        "{err}"
    );

    let reads = lines(&o);
    let mut found = 0;
    for (path, plate) in &test {
        let source = path.display().to_string();
        let mine: Vec<_> = reads
            .iter()
            .filter(|r| r["source"] == source.as_str())
            .collect();
        for r in &mine {
            assert_eq!(r["frame"], 0);
            let text = r["plate"].as_str().unwrap();
            assert!(
                !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric()),
                "{r}"
            );
            let c = r["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&c), "{r}");
            assert_eq!(r["candidates"][0]["text"], r["plate"]);
        }
        let hit = mine.iter().any(|r| read_iou(r, *plate) >= 0.3);
        found += usize::from(hit);
    }
    // The model card measures 0.96 plate recall on the held-out photos.
    assert!(
        found >= 5,
        "plate found in {found} of {} photos",
        test.len()
    );
}

/// Width, height and frame rate of [`street`].
const STREET: (u32, u32, u32) = (1280, 720, 10);

/// A daylight street of `seconds`, empty but for a white car driving
/// towards the camera at each `(at_s, plate)`.
fn street(seconds: f64, cars: &[(f64, &str)]) -> safecity_sim::Scene {
    use safecity_sim::{
        Direction, Lighting, Scene, SceneConfig, ScriptedPass, VehicleClass, VehicleColour,
    };
    let (width, height, fps) = STREET;
    let passes = cars
        .iter()
        .map(|&(at_s, plate)| ScriptedPass {
            at_s,
            plate: plate.into(),
            class: VehicleClass::Car,
            colour: VehicleColour::White,
            direction: Direction::Towards,
        })
        .collect();
    Scene::new(
        SceneConfig {
            width,
            height,
            fps,
            duration_s: seconds,
            seed: 4,
            lighting: Some(Lighting::Day),
            rain: Some(false),
            vehicles_per_minute: 0.0,
        },
        passes,
    )
    .unwrap()
}

/// Video goes through decoding, tracking and the vote: every line is one
/// tracked vehicle with its best frame inside the clip.
#[test]
fn a_video_gives_one_line_per_tracked_vehicle() {
    use safecity_sim::{encode_clip, ClipSpec};
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("street.mp4");
    let (w, h, fps, seconds) = (STREET.0, STREET.1, STREET.2, 12.0);
    let cars = [(3.0, "715KXM02"), (6.0, "123ABC01"), (9.0, "480BDE17")];
    let mut scene = street(seconds, &cars);
    let frames = (seconds * fps as f64) as u64;
    encode_clip(&ClipSpec::new(w, h, fps, frames), &clip, |i| {
        scene.render_frame(i).0
    })
    .unwrap();

    let o = recognize(&["--json", "--min-confidence", "0", clip.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reads = lines(&o);
    // Three cars pass one after another; tracking must not split them into
    // many short tracks, nor lose one: each car's plate is read, in one
    // line, at about the time the car passes.
    assert!(
        (3..=6).contains(&reads.len()),
        "{} lines for 3 vehicles: {reads:?}",
        reads.len()
    );
    for (at_s, plate) in cars {
        let mine: Vec<_> = reads.iter().filter(|r| r["plate"] == plate).collect();
        assert_eq!(mine.len(), 1, "{plate}: {reads:?}");
        let ts = mine[0]["ts_ms"].as_f64().unwrap() / 1000.0;
        assert!(
            (ts - at_s).abs() < 2.0,
            "{plate} at {ts} s, passing at {at_s} s"
        );
    }
    for r in &reads {
        assert_eq!(r["source"], clip.to_str().unwrap());
        let ts = r["ts_ms"].as_u64().unwrap();
        assert!(ts <= (seconds * 1000.0) as u64, "{r}");
        assert!(r["frame"].as_u64().unwrap() < frames, "{r}");
        let b = r["bbox"].as_array().unwrap();
        assert!(
            b[0].as_i64().unwrap() >= 0
                && b[0].as_i64().unwrap() + b[2].as_i64().unwrap() <= w as i64,
            "{r}"
        );
    }
}

/// A close-up photo, its plate two fifths of the picture wide (bigger than
/// any in the detector's training, which misses it at full size), is
/// searched at a second, smaller scale: the plate is found and read.
#[test]
fn a_plate_filling_a_close_up_photo_is_found_and_read() {
    let (w, h, fps) = STREET;
    let mut scene = street(8.0, &[(3.0, "715KXM02")]);
    // The frame where the readable plate is biggest.
    let (frame, plate) = (0..8 * fps as u64)
        .filter_map(|i| {
            let (img, truth) = scene.render_frame(i);
            let p = truth.vehicles.first()?.plate.clone()?;
            p.readable.then_some((img, p))
        })
        .max_by(|a, b| a.1.bbox[2].total_cmp(&b.1.bbox[2]))
        .expect("a readable plate");
    // A crop two and a half plates wide around it (inside the frame),
    // enlarged to 900x600.
    let [px, py, pw, ph] = plate.bbox;
    let (cw, ch) = ((2.5 * pw).round(), (1.6 * pw).round());
    let cx = (px + pw / 2.0 - cw / 2.0).clamp(0.0, w as f32 - cw).round();
    let cy = (py + ph / 2.0 - ch / 2.0).clamp(0.0, h as f32 - ch).round();
    let crop =
        image::imageops::crop_imm(&frame, cx as u32, cy as u32, cw as u32, ch as u32).to_image();
    let (ow, oh) = (900u32, 600u32);
    let photo = image::imageops::resize(&crop, ow, oh, image::imageops::FilterType::Triangle);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("close-up.png");
    photo.save(&path).unwrap();
    let s = ow as f64 / cw as f64;
    let truth = [
        (px - cx) as f64 * s,
        (py - cy) as f64 * s,
        pw as f64 * s,
        ph as f64 * s,
    ];

    let o = recognize(&["--json", "--min-confidence", "0", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reads = lines(&o);
    let hit = reads.iter().find(|r| read_iou(r, truth) >= 0.5);
    let hit = hit.unwrap_or_else(|| panic!("no plate at {truth:?}: {reads:?}"));
    assert_eq!(hit["plate"], "715KXM02", "{hit}");
}

//! Detectors through ort: a user's own model described by a sidecar file,
//! and the errors for broken or mismatched models.

use std::path::{Path, PathBuf};

use safecity_models::{DetectorSession, ModelError, Picture, SessionOptions};

mod common;
use common::runtime;

fn byo_description() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("byo/yolox_nano.toml")
}

/// The shared data folder, or `None` (and a message) when it is absent.
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
fn a_users_yolox_model_finds_the_cars_in_real_photos() {
    let Some(model) = shared("data/models/yolox_nano.onnx") else {
        return;
    };
    let Some(photos) = shared("data/real/openalpr-us") else {
        return;
    };
    let mut det = DetectorSession::open(
        runtime(),
        &model,
        Some(&byo_description()),
        &SessionOptions::default(),
    )
    .expect("yolox_nano opens with its description");

    // Photos with their plate boxes: `file x y w h PLATE`.
    let mut labels: Vec<(PathBuf, [f32; 4])> = std::fs::read_dir(&photos)
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "txt").then_some(p)
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let f: Vec<&str> = text.trim().split('\t').collect();
            let n = |i: usize| f.get(i)?.trim().parse::<f32>().ok();
            Some((photos.join(f.first()?.trim()), [n(1)?, n(2)?, n(3)?, n(4)?]))
        })
        .collect();
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    labels.truncate(8);
    assert_eq!(labels.len(), 8, "labelled photos");

    let images: Vec<_> = labels
        .iter()
        .map(|(p, _)| image::open(p).unwrap().to_rgb8())
        .collect();
    let frames: Vec<Picture<'_>> = images
        .iter()
        .map(|i| Picture::rgb(i.as_raw(), i.width(), i.height()))
        .collect();
    // One batch of all eight photos.
    let results = det.detect(&frames).unwrap();
    assert_eq!(results.len(), 8);
    let mut found = 0;
    for ((path, plate), dets) in labels.iter().zip(&results) {
        let (cx, cy) = (plate[0] + plate[2] / 2.0, plate[1] + plate[3] / 2.0);
        for d in dets {
            assert!(
                ["car", "bus", "truck", "motorcycle"].contains(&d.class.as_str()),
                "{d:?}"
            );
            assert!(d.bbox[0] <= d.bbox[2] && d.bbox[1] <= d.bbox[3]);
        }
        // The vehicle carrying the labelled plate is found around it.
        if dets
            .iter()
            .any(|d| d.bbox[0] <= cx && cx <= d.bbox[2] && d.bbox[1] <= cy && cy <= d.bbox[3])
        {
            found += 1;
        } else {
            eprintln!(
                "{}: no vehicle around the plate; got {dets:?}",
                path.display()
            );
        }
    }
    assert!(
        found >= 6,
        "vehicle around the plate in {found} of 8 photos"
    );
}

#[test]
fn a_description_that_does_not_fit_the_model_is_refused_with_both_shapes() {
    let Some(model) = shared("data/models/yolox_nano.onnx") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("wrong.toml");
    let text = std::fs::read_to_string(byo_description()).unwrap();
    std::fs::write(
        &desc,
        text.replace("width = 416", "width = 640")
            .replace("height = 416", "height = 640"),
    )
    .unwrap();
    let err = DetectorSession::open(runtime(), &model, Some(&desc), &SessionOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Mismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("yolox_nano.onnx") && msg.contains("416") && msg.contains("640"),
        "{msg}"
    );

    let classes = text.replace("\"toothbrush\",", "");
    std::fs::write(&desc, classes).unwrap();
    let msg = DetectorSession::open(runtime(), &model, Some(&desc), &SessionOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("79 classes") && msg.contains("85"), "{msg}");
}

#[test]
fn a_corrupt_model_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("broken.onnx");
    std::fs::write(&model, b"\x08\x07this is not a protobuf model").unwrap();
    std::fs::copy(byo_description(), dir.path().join("broken.toml")).unwrap();
    let err = DetectorSession::open(runtime(), &model, None, &SessionOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, ModelError::Load { .. }), "{err:?}");
    assert!(err.to_string().contains("broken.onnx"), "{err}");

    // Without its description beside it, the description is what is named.
    std::fs::remove_file(dir.path().join("broken.toml")).unwrap();
    let err = DetectorSession::open(runtime(), &model, None, &SessionOptions::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("broken.toml"), "{err}");
}

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
        eprintln!("skipped: {} is not here", p.display());
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

//! `safecity-edge eval`, driven through the binary on simulator stills and,
//! when the folder is here, the openalpr test split. These tests check the
//! bookkeeping (counts, ranges, errors), not how good the models are.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn edge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_safecity-edge"))
        .args(args)
        .output()
        .expect("run safecity-edge")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Every value under `keys` is a rate: a number in [0, 1], or null where
/// its count is 0.
fn assert_rates(v: &Value, keys: &[&str]) {
    for key in keys {
        match &v[*key] {
            Value::Null => assert_eq!(
                v[format!("{key}_count")].as_u64(),
                Some(0),
                "{key} is null with a non-zero count"
            ),
            x => {
                let r = x.as_f64().unwrap_or_else(|| panic!("{key}: {x}"));
                assert!((0.0..=1.0).contains(&r), "{key} = {r}");
            }
        }
    }
}

#[test]
fn scores_simulator_stills_with_counts_from_the_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim");
    let o = edge(&[
        "simulate",
        "--images",
        "12",
        "--width",
        "640",
        "--height",
        "360",
        "--seed",
        "77",
        "--out",
        sim.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = dir.path().join("eval.json");
    let o = edge(&[
        "eval",
        "--sim",
        sim.to_str().unwrap(),
        "--batch",
        "5",
        "--json",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("plate_recall_readable"), "{text}");
    assert!(text.contains("vehicle_map50"), "{text}");

    // What the report should have counted, straight from the ground truth.
    let (mut images, mut vehicles, mut plates, mut readable) = (0, 0, 0, 0);
    let (mut big_vehicles, mut small_vehicles) = (0, 0);
    let (mut plate_gt, mut plate_ignored) = (0, 0);
    let gt = std::fs::read_to_string(sim.join("ground_truth.jsonl")).unwrap();
    for line in gt.lines() {
        let frame: Value = serde_json::from_str(line).unwrap();
        images += 1;
        for v in frame["vehicles"].as_array().unwrap() {
            vehicles += 1;
            if v["bbox"][3].as_f64().unwrap() >= 24.0 {
                big_vehicles += 1;
            } else {
                small_vehicles += 1;
            }
            if let Some(p) = v["plate"].as_object() {
                plates += 1;
                let is_readable = p["readable"].as_bool().unwrap();
                readable += usize::from(is_readable);
                if is_readable || p["bbox"][3].as_f64().unwrap() >= 10.0 {
                    plate_gt += 1;
                } else {
                    plate_ignored += 1;
                }
            }
        }
    }
    assert_eq!(images, 12);

    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let s = &json["sim"];
    assert_eq!(s["images"], images);
    assert_eq!(s["vehicles"], vehicles);
    assert_eq!(s["plates"], plates);
    assert_eq!(s["readable_plates"], readable);
    for key in [
        "plate_recall_readable_count",
        "read_exact_readable_e2e_count",
        "read_exact_readable_gt_box_count",
        "char_accuracy_gt_box_count",
    ] {
        assert_eq!(s[key], readable, "{key}");
    }
    assert_eq!(s["plate_ap50_count"], plate_gt);
    assert_eq!(s["plate_detection"]["ignored"], plate_ignored);
    assert_eq!(s["colour_accuracy_count"], big_vehicles);
    assert_eq!(s["vehicle_map50_count"], big_vehicles);
    assert_rates(
        s,
        &[
            "plate_recall_readable",
            "plate_ap50",
            "vehicle_map50",
            "read_exact_readable_e2e",
            "read_exact_readable_gt_box",
            "char_accuracy_gt_box",
            "colour_accuracy",
        ],
    );
    // End to end needs the plate found first.
    if let (Some(e2e), Some(found)) = (
        s["read_exact_readable_e2e"].as_f64(),
        s["plate_recall_readable"].as_f64(),
    ) {
        assert!(e2e <= found, "{e2e} > {found}");
    }

    // Per-class ground truth adds up to every vehicle.
    let classes = s["vehicle_ap50"].as_object().unwrap();
    assert_eq!(classes.len(), 4);
    let (mut gt_sum, mut ignored_sum) = (0, 0);
    for (class, c) in classes {
        gt_sum += c["gt"].as_u64().unwrap();
        ignored_sum += c["ignored"].as_u64().unwrap();
        match c["ap50"].as_f64() {
            Some(ap) => assert!((0.0..=1.0).contains(&ap), "{class}: {ap}"),
            None => assert_eq!(c["gt"], 0, "{class} has ground truth but no AP"),
        }
    }
    assert_eq!(gt_sum, big_vehicles);
    assert_eq!(ignored_sum, small_vehicles);
    assert_eq!(gt_sum + ignored_sum, vehicles);

    // The colour confusion counts every scored vehicle once.
    let confusion = &s["colour_confusion"];
    let named: u64 = confusion["counts"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    let unnamed: u64 = confusion["no_colour"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(named + unnamed, big_vehicles);

    assert!(json["detector"].as_str().unwrap().ends_with(".onnx"));
    assert!(json["plate_reader"].as_str().unwrap().ends_with(".onnx"));
    assert_eq!(json["threads"], 2);
    assert!(json.get("openalpr").is_none() && json.get("timing").is_none());
}

#[test]
fn missing_datasets_are_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let o = edge(&["eval", "--sim", path]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{path}/ground_truth.jsonl")) && err.contains("simulate --images"),
        "{err}"
    );

    let gone = dir.path().join("gone");
    let o = edge(&["eval", "--openalpr", gone.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains(gone.to_str().unwrap()), "{err}");

    let o = edge(&["eval"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("--sim") && err.contains("--openalpr") && err.contains("--timing"),
        "{err}"
    );
}

#[test]
fn an_undecodable_picture_fails_the_run_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path();
    std::fs::write(sim.join("000000.jpg"), b"\xff\xd8\xff not really a jpeg").unwrap();
    std::fs::write(
        sim.join("ground_truth.jsonl"),
        r#"{"file":"000000.jpg","width":64,"height":64,"lighting":"day","rain":false,"vehicles":[]}"#,
    )
    .unwrap();
    let o = edge(&["eval", "--sim", sim.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("000000.jpg"), "{err}");
}

#[test]
fn scores_the_openalpr_test_split() {
    let photos = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/real/openalpr-us"
    ));
    if !photos.is_dir() {
        eprintln!("skipping: {} not found", photos.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("eval.json");
    let o = edge(&[
        "eval",
        "--openalpr",
        photos.to_str().unwrap(),
        "--limit",
        "6",
        "--json",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("plate_recall"), "{}", stdout(&o));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let a = &json["openalpr"];
    assert_eq!(a["split"], "test");
    assert_eq!(a["images"], 6);
    let plates = a["plates"].as_u64().unwrap();
    assert!(plates >= 6, "{plates} plates in 6 labelled photos");
    assert_eq!(a["plate_recall_count"], plates);
    assert_rates(
        a,
        &[
            "plate_recall",
            "plate_ap50",
            "read_exact_e2e",
            "read_exact_gt_box",
            "char_accuracy_gt_box",
        ],
    );
}

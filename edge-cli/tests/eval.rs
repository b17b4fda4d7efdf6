//! `safecity-edge eval`, driven through the binary on simulator stills, on
//! small plate-crop and plate-box folders and a clip made here, and, when
//! the folder is here, the openalpr test split. These tests check the
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

/// A calibration block: one read per plate, spread over ten bins whose
/// rates are in range.
fn assert_calibration(c: &Value, reads: usize) {
    assert_eq!(c["reads"], reads, "{c}");
    let bins = c["bins"].as_array().unwrap();
    assert_eq!(bins.len(), 10);
    let counted: u64 = bins.iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, reads as u64);
    for b in bins {
        for key in ["mean_confidence", "accuracy"] {
            match b[key].as_f64() {
                Some(r) => assert!((0.0..=1.0).contains(&r), "{b}"),
                None => assert_eq!(b["count"], 0, "{b}"),
            }
        }
    }
    if reads > 0 {
        let ece = c["ece"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&ece), "{ece}");
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
        "read_exact_readable_e2e_any_confidence_count",
        "read_exact_readable_gt_box_count",
        "char_accuracy_gt_box_count",
        "ece_gt_box_count",
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
            "read_exact_readable_e2e_any_confidence",
            "read_exact_readable_gt_box",
            "char_accuracy_gt_box",
            "ece_gt_box",
            "colour_accuracy",
        ],
    );
    // End to end needs the plate found first, and a sure read is a right
    // read too.
    if let (Some(e2e), Some(any), Some(found)) = (
        s["read_exact_readable_e2e"].as_f64(),
        s["read_exact_readable_e2e_any_confidence"].as_f64(),
        s["plate_recall_readable"].as_f64(),
    ) {
        assert!(e2e <= any && any <= found, "{e2e} {any} {found}");
    }
    assert_calibration(&s["calibration_gt_box"], readable);

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
        err.contains("--sim")
            && err.contains("--openalpr")
            && err.contains("--plate-crops")
            && err.contains("--boxes")
            && err.contains("--video")
            && err.contains("--timing"),
        "{err}"
    );
}

/// Runs `eval` and returns its error, which must name every one of `words`.
fn fails_naming(args: &[&str], words: &[&str]) {
    let o = edge(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = stderr(&o);
    for w in words {
        assert!(err.contains(w), "{args:?}: {w:?} not in {err}");
    }
}

#[test]
fn bad_crop_box_and_video_inputs_are_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let crops = dir.path().join("crops");
    std::fs::create_dir(&crops).unwrap();
    let c = crops.to_str().unwrap();
    let csv = crops.join("annotations.csv");
    let csv_s = csv.to_str().unwrap();
    fails_naming(
        &["eval", "--plate-crops", c],
        &[csv_s, "image_path,plate_text"],
    );
    std::fs::write(&csv, "imgs/a.png,AB123\n").unwrap();
    fails_naming(&["eval", "--plate-crops", c], &[csv_s, "line 1", "header"]);
    std::fs::write(
        &csv,
        "image_path,plate_text\nimgs/a.png,AB123\nimgs/b.png\n",
    )
    .unwrap();
    fails_naming(&["eval", "--plate-crops", c], &[csv_s, "line 3"]);
    std::fs::write(&csv, "image_path,plate_text\nimgs/a.png,AB123\n").unwrap();
    fails_naming(
        &["eval", "--plate-crops", c],
        &[csv_s, "line 2", "imgs/a.png", "is not there"],
    );

    let boxes = dir.path().join("boxes");
    std::fs::create_dir(&boxes).unwrap();
    let b = boxes.to_str().unwrap();
    let tsv = boxes.join("boxes.tsv");
    let tsv_s = tsv.to_str().unwrap();
    fails_naming(
        &["eval", "--boxes", b],
        &[tsv_s, "file x y w h", "images/FILE"],
    );
    std::fs::write(&tsv, "file\tx\ty\tw\th\na.jpg\t1\t2\t3\n").unwrap();
    fails_naming(&["eval", "--boxes", b], &[tsv_s, "line 2"]);
    std::fs::write(&tsv, "file\tx\ty\tw\th\na.jpg\t1\t2\t3\t4\n").unwrap();
    fails_naming(&["eval", "--boxes", b], &[tsv_s, "line 2", "images/a.jpg"]);
    // Texts need their boxes, a header, known values and boxes.tsv's boxes.
    std::fs::create_dir(boxes.join("images")).unwrap();
    picture(&boxes.join("images/a.jpg"), 64, 64);
    let texts = dir.path().join("texts.tsv");
    let t = texts.to_str().unwrap();
    fails_naming(&["eval", "--box-texts", t, "--timing"], &["--boxes"]);
    std::fs::write(&texts, "a.jpg\t1\t2\t3\t4\tAB1\t1\tval\n").unwrap();
    fails_naming(&["eval", "--boxes", b, "--box-texts", t], &[t, "header"]);
    let header = "file\tx\ty\tw\th\ttext\tlegible\tsplit\n";
    std::fs::write(
        &texts,
        format!("{header}a.jpg\t1\t2\t3\t4\tAB1\tyes\tval\n"),
    )
    .unwrap();
    fails_naming(
        &["eval", "--boxes", b, "--box-texts", t],
        &[t, "line 2", "legible"],
    );
    std::fs::write(&texts, format!("{header}a.jpg\t9\t2\t3\t4\tAB1\t1\tval\n")).unwrap();
    fails_naming(
        &["eval", "--boxes", b, "--box-texts", t],
        &[t, "line 2", "a.jpg", "boxes.tsv"],
    );

    let clip = dir.path().join("gone.mp4");
    fails_naming(
        &["eval", "--video", clip.to_str().unwrap()],
        &[clip.to_str().unwrap()],
    );
    fails_naming(
        &[
            "eval",
            "--video",
            clip.to_str().unwrap(),
            "--video-every",
            "0",
        ],
        &["--video-every"],
    );
}

/// A grey picture with a white plate-like box.
fn picture(path: &Path, w: u32, h: u32) {
    image::RgbImage::from_fn(w, h, |x, y| {
        let plate = (w / 3..w / 2).contains(&x) && (h / 2..h / 2 + 12).contains(&y);
        image::Rgb(if plate { [240, 240, 240] } else { [90, 90, 90] })
    })
    .save(path)
    .unwrap();
}

#[test]
fn scores_plate_crops_boxes_and_a_clip_with_counts_from_their_labels() {
    let dir = tempfile::tempdir().unwrap();
    let crops = dir.path().join("crops");
    std::fs::create_dir_all(crops.join("imgs")).unwrap();
    picture(&crops.join("imgs/a.png"), 186, 51);
    picture(&crops.join("imgs/b.png"), 160, 60);
    // The same crop on two lines counts twice.
    std::fs::write(
        crops.join("annotations.csv"),
        "image_path,plate_text\nimgs/a.png,AD054JI\nimgs/a.png,AD054JI\nimgs/b.png,ABC123\n",
    )
    .unwrap();

    let boxes = dir.path().join("boxes");
    std::fs::create_dir_all(boxes.join("images")).unwrap();
    for name in [
        "dayride_a_t00001.jpg",
        "dayride_a_t00002.jpg",
        "nightride_b_t00001.jpg",
    ] {
        picture(&boxes.join("images").join(name), 320, 180);
    }
    // A picture no line names is not in the set.
    picture(&boxes.join("images/dayride_a_t00003.jpg"), 320, 180);
    std::fs::write(
        boxes.join("boxes.tsv"),
        "file\tx\ty\tw\th\n\
         dayride_a_t00001.jpg\t107\t90\t53\t12\n\
         dayride_a_t00001.jpg\t10\t10\t40\t10\n\
         dayride_a_t00002.jpg\t107\t90\t53\t12\n\
         nightride_b_t00001.jpg\t107\t90\t53\t12\n",
    )
    .unwrap();
    // Texts for those plates: two legible in the validation split (one of
    // them on the night ride), one illegible, one of the training split;
    // only the first two are read.
    let texts = dir.path().join("texts.tsv");
    std::fs::write(
        &texts,
        "file\tx\ty\tw\th\ttext\tlegible\tsplit\n\
         dayride_a_t00001.jpg\t107\t90\t53\t12\tAB123CD\t1\tval\n\
         dayride_a_t00001.jpg\t10\t10\t40\t10\t?\t0\tval\n\
         dayride_a_t00002.jpg\t107\t90\t53\t12\tAB123CD\t1\ttrain\n\
         nightride_b_t00001.jpg\t107\t90\t53\t12\tXY99ZZ\t1\tval\n",
    )
    .unwrap();

    use safecity_sim::{encode_clip, ClipSpec};
    let clip = dir.path().join("clip.mp4");
    encode_clip(&ClipSpec::new(320, 180, 25, 20), &clip, |i| {
        image::RgbImage::from_pixel(320, 180, image::Rgb([(i * 5) as u8, 60, 200]))
    })
    .unwrap();

    let report = dir.path().join("eval.json");
    let o = edge(&[
        "eval",
        "--plate-crops",
        crops.to_str().unwrap(),
        "--boxes",
        boxes.to_str().unwrap(),
        "--box-texts",
        texts.to_str().unwrap(),
        "--video",
        clip.to_str().unwrap(),
        "--video-every",
        "4",
        "--batch",
        "2",
        "--json",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("plate crops, validation only"), "{text}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();

    let c = &json["plate_crops"];
    assert_eq!(c["crops"], 3);
    assert_eq!(c["pictures"], 2);
    assert_eq!(c["read_exact_count"], 3);
    assert_rates(c, &["read_exact", "char_accuracy", "ece"]);
    assert_calibration(&c["calibration"], 3);

    let b = &json["boxes"];
    assert_eq!(
        (b["frames"].as_u64(), b["plates"].as_u64()),
        (Some(3), Some(4))
    );
    assert_eq!(b["rides"], 2);
    assert_eq!(b["day"]["frames"], 2);
    assert_eq!(b["day"]["plates"], 3);
    assert_eq!(b["night"]["frames"], 1);
    assert_eq!(b["by_ride"]["dayride_a"]["plates"], 3);
    assert_eq!(b["by_ride"]["nightride_b"]["plates"], 1);
    assert_rates(b, &["plate_recall", "plate_ap50"]);
    let r = &b["reads"];
    assert_eq!(r["plates"], 2);
    assert_eq!(r["read_exact_gt_box_count"], 2);
    assert_rates(
        r,
        &[
            "read_exact_e2e",
            "read_exact_gt_box",
            "char_accuracy_gt_box",
        ],
    );
    assert_calibration(&r["calibration_gt_box"], 2);
    assert!(
        text.contains("reads of the 2 legible plates of the validation split"),
        "{text}"
    );

    let v = &json["video"];
    assert_eq!(v["frames_decoded"], 20);
    assert_eq!(v["frames_analysed"], 5);
    assert_eq!(v["every"], 4);
    let shown = v["false_reads_shown"].as_u64().unwrap();
    assert!(shown <= v["plate_reads_any_confidence"].as_u64().unwrap());
    assert!(v["false_reads"].as_array().unwrap().len() as u64 <= shown);
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
        // Straight to standard error, past the test runner's capture, so
        // the skip shows on a pass too.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "SKIPPED: {} is not here",
            photos.display()
        );
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
            "read_exact_e2e_any_confidence",
            "read_exact_gt_box",
            "char_accuracy_gt_box",
            "ece_gt_box",
        ],
    );
    assert_calibration(&a["calibration_gt_box"], plates as usize);
}

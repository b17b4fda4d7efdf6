//! Micro-benchmarks of the hot pure-Rust paths: detector preprocessing,
//! detector output decoding and NMS, plate-reader decoding, plate distance
//! and normalisation, and the edge's durable spool.
//!
//! Run with `cargo bench -p safecity-benches --bench micro`; no ONNX
//! Runtime is needed. Inputs are synthetic and seeded, so runs compare.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use safecity_core::{
    normalize_plate, plate_distance, Candidate, Event, EventId, EventKind, Layout, PlateFormat,
    PlateInfo, VehicleInfo, YuvMatrix,
};
use safecity_edge::spool::{Priority, Spool, SpoolConfig, DEFAULT_SEGMENT_BYTES};
use safecity_models::{
    ctc_beam, ctc_greedy, decode_detections, fixed_slots, fixed_slots_k_best, input_len, nms,
    preprocess_into, rank_candidates, DetectorDescription, DetectorLayout, ModelDescription,
    OutputShape, Picture,
};

/// Short runs: the whole file finishes in about a minute and a half.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

fn detector() -> DetectorDescription {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/safecity-detector.toml");
    match ModelDescription::from_file(&path) {
        Ok(ModelDescription::Detector(d)) => d,
        Ok(other) => panic!("{} describes a {}", path.display(), other.kind()),
        Err(e) => panic!("{e}"),
    }
}

// ---------------------------------------------------------------------------
// 1. Letterbox preprocessing into the detector input.

/// A packed RGB frame with some texture (content does not change the cost).
fn frame_data(width: u32, height: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        for x in 0..width {
            data.extend_from_slice(&[
                (x ^ y) as u8,
                (x.wrapping_mul(3) + y) as u8,
                (y.wrapping_mul(5)) as u8,
            ]);
        }
    }
    data
}

fn bench_preprocess(c: &mut Criterion) {
    let d = detector();
    let mut out = vec![0.0f32; input_len(&d.input)];
    let mut g = c.benchmark_group("preprocess");
    // Milliseconds an iteration: flat sampling keeps the run short.
    g.sampling_mode(SamplingMode::Flat);
    for (w, h) in [(1920u32, 1080u32), (1280, 720)] {
        let data = frame_data(w, h);
        let frame = Picture::rgb(&data, w, h);
        let name = format!("letterbox_{w}x{h}_to_{}x{}", d.input.width, d.input.height);
        // Frames per second; source bytes per second is `w * h * 3` times it.
        g.throughput(Throughput::Elements(1));
        g.bench_function(name, |b| {
            b.iter(|| preprocess_into(black_box(&frame), None, &d.input, &mut out))
        });
    }
    // The edge's own case: the decoder's I420, converted after filtering.
    let (w, h) = (1920u32, 1080u32);
    let (layout, len) = Layout::i420_packed(w, h, YuvMatrix::Bt709, false);
    let data: Vec<u8> = frame_data(w, h).into_iter().take(len).collect();
    let frame = Picture::new(&data, w, h, layout);
    let name = format!(
        "letterbox_i420_{w}x{h}_to_{}x{}",
        d.input.width, d.input.height
    );
    g.bench_function(name, |b| {
        b.iter(|| preprocess_into(black_box(&frame), None, &d.input, &mut out))
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// 2. Detector output decoding and NMS.

/// Candidates scoring above the threshold in the synthetic output.
const ABOVE_THRESHOLD: usize = 300;

/// A `[9, N]` YOLOv8-layout output (N = 5040 for 640x384 at strides 8, 16,
/// 32): 20 objects, each seen by 15 overlapping candidates, as an
/// ultralytics head reports them before NMS; every other candidate scores
/// below the threshold.
fn yolov8_output(d: &DetectorDescription) -> (Vec<f32>, usize) {
    let (w, h) = (d.input.width as f32, d.input.height as f32);
    let n: usize = d
        .strides
        .iter()
        .map(|s| ((d.input.width / s) * (d.input.height / s)) as usize)
        .sum();
    let classes = d.classes.len();
    let rows = 4 + classes;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut data = vec![0.0f32; rows * n];
    let mut set = |r: usize, i: usize, v: f32| data[r * n + i] = v;
    for i in 0..n {
        set(0, i, rng.gen_range(0.0..w));
        set(1, i, rng.gen_range(0.0..h));
        set(2, i, rng.gen_range(4.0..60.0));
        set(3, i, rng.gen_range(4.0..60.0));
        for c in 0..classes {
            set(4 + c, i, rng.gen_range(0.0..0.1));
        }
    }
    // Distinct columns for the objects' candidates.
    let mut columns: Vec<usize> = (0..n).collect();
    for i in 0..ABOVE_THRESHOLD {
        let j = rng.gen_range(i..n);
        columns.swap(i, j);
    }
    let per_object = 15;
    for (object, chunk) in columns[..ABOVE_THRESHOLD].chunks(per_object).enumerate() {
        // Vehicles (classes 0..4) and their plates (class 4).
        let class = if object % 4 == 3 { 4 } else { object % 3 };
        let (bw, bh) = if class == 4 {
            (40.0, 12.0)
        } else {
            (rng.gen_range(60.0..200.0), rng.gen_range(50.0..150.0))
        };
        let (cx, cy) = (
            rng.gen_range(bw / 2.0..w - bw / 2.0),
            rng.gen_range(bh / 2.0..h - bh / 2.0),
        );
        for &i in chunk {
            let jitter = |rng: &mut ChaCha8Rng, v: f32, by: f32| v + rng.gen_range(-by..by);
            set(0, i, jitter(&mut rng, cx, bw * 0.08));
            set(1, i, jitter(&mut rng, cy, bh * 0.08));
            set(2, i, jitter(&mut rng, bw, bw * 0.1));
            set(3, i, jitter(&mut rng, bh, bh * 0.1));
            set(4 + class, i, rng.gen_range(0.3..0.95));
        }
    }
    (data, n)
}

fn bench_detect(c: &mut Criterion) {
    let d = detector();
    let (data, n) = yolov8_output(&d);
    let classes = d.classes.len();
    let shape = OutputShape {
        dims: [4 + classes, n],
    };
    let input = (d.input.width, d.input.height);
    let decode = || {
        decode_detections(
            DetectorLayout::Yolov8,
            black_box(&data),
            shape,
            classes,
            input,
            &d.strides,
            d.score_threshold,
        )
        .expect("decodes")
    };
    let candidates = decode();
    assert_eq!(candidates.len(), ABOVE_THRESHOLD, "synthetic output");
    let kept = nms(candidates.clone(), d.iou_threshold).len();
    assert!(
        (20..ABOVE_THRESHOLD / 2).contains(&kept),
        "NMS kept {kept} of {ABOVE_THRESHOLD}"
    );

    let mut g = c.benchmark_group("detect");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("decode_yolov8_1x{}x{n}", 4 + classes), |b| {
        b.iter(decode)
    });
    g.throughput(Throughput::Elements(ABOVE_THRESHOLD as u64));
    g.bench_function(format!("nms_{ABOVE_THRESHOLD}_candidates"), |b| {
        b.iter_batched(
            || candidates.clone(),
            |v| nms(v, d.iou_threshold),
            BatchSize::SmallInput,
        )
    });
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(format!("decode_and_nms_1x{}x{n}", 4 + classes), |b| {
        b.iter(|| nms(decode(), d.iou_threshold))
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// 3. Plate-reader decoding.

/// Plates the synthetic reader outputs spell: the common formats, repeated
/// characters (which CTC must keep apart with a blank), regions 01..17.
const PLATES: [&str; 16] = [
    "123ABC02", "777KXM17", "001AAA01", "456BNM05", "908TTR15", "222ZZZ11", "310HLC02", "555KMA09",
    "A123BCD", "B456FGH", "042PXX16", "800OOO10", "119AEB03", "674DDK13", "350RSL07", "987YWQ14",
];

const CTC_STEPS: usize = 32;
/// Blank plus `0-9A-Z`.
const CTC_CLASSES: usize = 37;
const SLOTS: usize = 10;
const ALPHABET: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

fn index_of(ch: char) -> usize {
    ALPHABET.find(ch).expect("alphabet character")
}

/// Raw scores with `hot` classes high at each row and noise elsewhere;
/// every fourth row has a close runner-up (a look-alike), so beam search
/// has real choices to make.
fn logits(rng: &mut ChaCha8Rng, rows: &[usize], classes: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows.len() * classes);
    for (r, &hot) in rows.iter().enumerate() {
        let start = out.len();
        out.extend((0..classes).map(|_| rng.gen_range(-3.0f32..1.0)));
        out[start + hot] = rng.gen_range(6.0..9.0);
        if r % 4 == 1 {
            let rival = (hot + 1 + rng.gen_range(0..classes - 1)) % classes;
            out[start + rival] = out[start + hot] - rng.gen_range(0.2..1.5);
        }
    }
    out
}

/// CTC output `[32, 37]` (class 0 blank): each character over two steps
/// then a blank, the rest blank.
fn ctc_logits(rng: &mut ChaCha8Rng, plate: &str) -> Vec<f32> {
    let mut rows = vec![0usize; CTC_STEPS];
    let mut t = 1;
    for ch in plate.chars() {
        let class = index_of(ch) + 1;
        rows[t] = class;
        rows[t + 1] = class;
        t += 3;
    }
    logits(rng, &rows, CTC_CLASSES)
}

/// Fixed-slot output `[10, 37]` (pad `_` last), text left-aligned.
fn slot_logits(rng: &mut ChaCha8Rng, plate: &str) -> Vec<f32> {
    let pad = ALPHABET.len();
    let mut rows = vec![pad; SLOTS];
    for (slot, ch) in plate.chars().enumerate() {
        rows[slot] = index_of(ch);
    }
    logits(rng, &rows, CTC_CLASSES)
}

fn bench_plate_decode(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let ctc: Vec<Vec<f32>> = PLATES.iter().map(|p| ctc_logits(&mut rng, p)).collect();
    let slots: Vec<Vec<f32>> = PLATES.iter().map(|p| slot_logits(&mut rng, p)).collect();
    let ctc_alphabet: Vec<char> = ALPHABET.chars().collect();
    let slot_alphabet: Vec<char> = ALPHABET.chars().chain(['_']).collect();
    let pad = ALPHABET.len();
    // As the plate reader session decodes: beam width 16, 8 raw candidates.
    let (beam_width, raw_candidates) = (16, 8);

    for (plate, data) in PLATES.iter().zip(&ctc) {
        let (text, _) = ctc_greedy(data, CTC_CLASSES, &ctc_alphabet, 0, true);
        assert_eq!(&text, plate, "synthetic CTC output");
    }
    for (plate, data) in PLATES.iter().zip(&slots) {
        let (text, _) = fixed_slots(data, CTC_CLASSES, &slot_alphabet, pad, true);
        assert_eq!(&text, plate, "synthetic fixed-slot output");
    }
    let raw: Vec<Vec<(String, f32)>> = slots
        .iter()
        .map(|d| fixed_slots_k_best(d, CTC_CLASSES, &slot_alphabet, pad, true, raw_candidates))
        .collect();

    let batch = PLATES.len();
    let mut g = c.benchmark_group("plate_decode");
    g.throughput(Throughput::Elements(batch as u64));
    g.bench_function(
        format!("ctc_greedy_{batch}x{CTC_STEPS}x{CTC_CLASSES}"),
        |b| {
            b.iter(|| {
                for data in &ctc {
                    black_box(ctc_greedy(
                        black_box(data),
                        CTC_CLASSES,
                        &ctc_alphabet,
                        0,
                        true,
                    ));
                }
            })
        },
    );
    g.bench_function(
        format!("ctc_beam{beam_width}_{batch}x{CTC_STEPS}x{CTC_CLASSES}"),
        |b| {
            b.iter(|| {
                for data in &ctc {
                    black_box(ctc_beam(
                        black_box(data),
                        CTC_CLASSES,
                        &ctc_alphabet,
                        0,
                        true,
                        beam_width,
                        raw_candidates,
                    ));
                }
            })
        },
    );
    g.bench_function(format!("fixed_slots_{batch}x{SLOTS}x{CTC_CLASSES}"), |b| {
        b.iter(|| {
            for data in &slots {
                black_box(fixed_slots(
                    black_box(data),
                    CTC_CLASSES,
                    &slot_alphabet,
                    pad,
                    true,
                ));
            }
        })
    });
    g.bench_function(
        format!("fixed_slots_k{raw_candidates}_{batch}x{SLOTS}x{CTC_CLASSES}"),
        |b| {
            b.iter(|| {
                for data in &slots {
                    black_box(fixed_slots_k_best(
                        black_box(data),
                        CTC_CLASSES,
                        &slot_alphabet,
                        pad,
                        true,
                        raw_candidates,
                    ));
                }
            })
        },
    );
    g.bench_function(format!("rank_candidates_{batch}x{raw_candidates}"), |b| {
        b.iter(|| {
            for r in &raw {
                black_box(rank_candidates(black_box(r), 5));
            }
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// 4. Plate distance and normalisation.

fn bench_plates(c: &mut Criterion) {
    // A watch-list plate against what readers and people make of it.
    let pairs: Vec<(&str, &str)> = [
        ("123ABC02", "123ABC02"), // identical
        ("123ABC02", "123A8C02"), // one look-alike
        ("123ABC02", "I23A8CO2"), // three look-alikes
        ("123ABC02", "123AXC02"), // one substitution
        ("123ABC02", "12ABC02"),  // deletion
        ("123ABC02", "1234ABC02"),
        ("123ABC02", "777KXM17"), // unrelated
        ("123ABC02", "A123BCD"),  // older format
        ("001AAA01", "OO1AAA01"),
        ("456BNM05", "456BMN05"), // swapped letters
        ("908TTR15", "9O8TTR15"),
        ("555KMA09", "SS5KMA09"),
        ("A123BCD", "A123BC0"),
        ("310HLC02", "31OHIC02"),
        ("222ZZZ11", "2Z2ZZZ11"),
        ("987YWQ14", "987YWO14"),
    ]
    .into();
    assert_eq!(plate_distance(pairs[1].0, pairs[1].1), 0.5);
    let raw = [
        "123 abc-02",
        "777 KXM 17",
        "А 123 ВС",
        "001aaa01",
        "456-ВНМ-05",
        "908 TTR 15",
        "A123BCD",
        "555 кма 09",
    ];
    for r in raw {
        normalize_plate(r).expect("a plate");
    }

    let mut g = c.benchmark_group("plate");
    g.throughput(Throughput::Elements(pairs.len() as u64));
    g.bench_function(format!("distance_{}_pairs", pairs.len()), |b| {
        b.iter(|| {
            for &(a, p) in &pairs {
                black_box(plate_distance(black_box(a), black_box(p)));
            }
        })
    });
    g.throughput(Throughput::Elements(raw.len() as u64));
    g.bench_function(format!("normalize_{}_plates", raw.len()), |b| {
        b.iter(|| {
            for r in raw {
                black_box(normalize_plate(black_box(r)).expect("a plate"));
            }
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------
// 5. The edge's durable spool.

/// Payload size of a typical spooled event.
const RECORD_BYTES: usize = 1024;
/// Records per `append_many` call.
const BATCH: usize = 32;

/// The JSON of a plate read as the daemon spools it, with a small snapshot
/// thumbnail making it up to [`RECORD_BYTES`].
fn event_json() -> Vec<u8> {
    let unix_ms = 1_750_000_000_000u64;
    let mut event = Event {
        id: EventId::new(unix_ms, 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef).to_string(),
        kind: EventKind::PlateRead,
        edge_id: "edge-almaty-017".into(),
        camera_id: "cam-abay-av-west-2".into(),
        ts: time::OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
            .expect("a time"),
        plate: Some(PlateInfo {
            text: "123ABC02".into(),
            display: "123 ABC 02".into(),
            confidence: 0.934,
            format: PlateFormat::KzPrivate,
            region: Some("02".into()),
            candidates: ["123ABC02", "123A8C02", "I23ABC02", "123ABC05"]
                .iter()
                .zip([0.934, 0.041, 0.012, 0.004])
                .map(|(t, confidence)| Candidate {
                    text: (*t).into(),
                    confidence,
                })
                .collect(),
            bbox: [812, 644, 118, 34],
        }),
        vehicle: Some(VehicleInfo {
            class: "car".into(),
            colour: Some("white".into()),
            confidence: 0.912,
            bbox: [640, 402, 420, 318],
            track_id: 48_213,
        }),
        alarm: None,
        status: None,
        snapshot: None,
    };
    let bare = serde_json::to_vec(&event).expect("serialises").len();
    let room = RECORD_BYTES.saturating_sub(bare + r#","snapshot":"""#.len());
    event.snapshot = Some("/9j/".repeat(room.div_ceil(4))[..room].to_owned());
    let json = serde_json::to_vec(&event).expect("serialises");
    assert_eq!(json.len(), RECORD_BYTES, "event size");
    json
}

fn open_spool(dir: &Path) -> Spool {
    // As the daemon opens it: 8 MiB segments, with the 2 GiB cap of the
    // example configuration.
    Spool::open(SpoolConfig {
        dir: dir.to_path_buf(),
        max_bytes: 2048 * 1024 * 1024,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
    })
    .expect("spool opens")
}

fn bench_spool(c: &mut Criterion) {
    let payload = event_json();
    let batch: Vec<(Priority, &[u8])> = vec![(Priority::Normal, payload.as_slice()); BATCH];
    // Beside the build output: on the disk a real spool uses, not in memory.
    let root = tempfile::Builder::new()
        .prefix("spool-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temporary directory");

    let mut g = c.benchmark_group("spool");
    // Every call syncs (fdatasync) before it returns: milliseconds on a
    // disk, so flat sampling.
    g.sampling_mode(SamplingMode::Flat);
    let cases: [(&str, usize); 2] = [("append_1k", 1), ("append_many_32x1k", BATCH)];
    for (name, records) in cases {
        for (unit, throughput) in [
            ("records", Throughput::Elements(records as u64)),
            ("bytes", Throughput::Bytes((records * RECORD_BYTES) as u64)),
        ] {
            let dir = root.path().join(format!("{name}-{unit}"));
            let mut spool = open_spool(&dir);
            g.throughput(throughput);
            g.bench_function(format!("{name}/{unit}"), |b| {
                if records == 1 {
                    b.iter(|| spool.append(Priority::Normal, black_box(&payload)))
                } else {
                    b.iter(|| spool.append_many(black_box(&batch)))
                }
            });
            drop(spool);
            std::fs::remove_dir_all(&dir).expect("spool removed");
        }
    }
    g.finish();
}

criterion_group! {
    name = micro;
    config = config();
    targets = bench_preprocess, bench_detect, bench_plate_decode, bench_plates, bench_spool
}
criterion_main!(micro);

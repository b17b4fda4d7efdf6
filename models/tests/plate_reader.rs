//! The shipped plate reader through ort: how many crop views it reads, and
//! how its cascade hands unsure plates to the next reader.

use std::path::{Path, PathBuf};

mod common;
use common::runtime;

use safecity_models::{Picture, PlateCandidate, PlateCrop, PlateReaderSession, SessionOptions};

fn shipped_reader() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("safecity-plate.onnx")
}

/// A 320x160 grey picture with a light plate-like panel of dark bars, and
/// three plate boxes over it at slightly different places.
fn picture() -> (Vec<u8>, Vec<[f32; 4]>) {
    let (w, h) = (320usize, 160usize);
    let mut data = vec![90u8; w * h * 3];
    for y in 50..110 {
        for x in 60..260 {
            let bar = (x - 60) % 22 < 12 && (62..98).contains(&y);
            let v = if bar { 30 } else { 220 };
            data[(y * w + x) * 3..][..3].fill(v);
        }
    }
    let boxes = vec![
        [60.0, 50.0, 260.0, 110.0],
        [66.0, 54.0, 250.0, 104.0],
        [40.0, 40.0, 280.0, 120.0],
    ];
    (data, boxes)
}

fn read(reader: &mut PlateReaderSession) -> Vec<Vec<PlateCandidate>> {
    let (data, boxes) = picture();
    let frame = Picture::rgb(&data, 320, 160);
    let crops: Vec<PlateCrop<'_>> = boxes
        .iter()
        .map(|&bbox| PlateCrop { frame, bbox })
        .collect();
    reader.read(&crops, 5).expect("read")
}

/// The shipped reader's description without its `[cascade]` table (the
/// last table of the file), with `extra` lines at the top in place of the
/// keys they set.
fn own_description(extra: &str) -> String {
    let text = std::fs::read_to_string(shipped_reader().with_extension("toml")).unwrap();
    let own = text.split("\n[cascade]").next().unwrap();
    let set: Vec<&str> = extra.lines().filter_map(|l| l.split('=').next()).collect();
    let kept: String = own
        .lines()
        .filter(|l| !set.iter().any(|k| l.split('=').next() == Some(k)))
        .map(|l| format!("{l}\n"))
        .collect();
    format!("{extra}{kept}")
}

/// A description of the shipped reader in `dir`, with a cascade to
/// `next` (absolute path) below `below`.
fn cascade_description(dir: &Path, name: &str, next: &Path, below: f32) -> PathBuf {
    let own = own_description("");
    let path = dir.join(name);
    let text = format!("{own}\n[cascade]\nmodel = {next:?}\nbelow = {below}\n");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_reader_limited_to_one_view_reads_as_a_one_view_description() {
    let options = SessionOptions::default();
    // The shipped fast reader on its own, without the cascade behind it.
    let dir = tempfile::tempdir().unwrap();
    let own = dir.path().join("own.toml");
    std::fs::write(&own, own_description("")).unwrap();
    let mut all =
        PlateReaderSession::open(runtime(), &shipped_reader(), Some(&own), &options).unwrap();
    let described = all.description().margins().len();
    assert!(described > 1, "the shipped reader describes several views");
    assert_eq!(all.views(), described);

    // The same reader with a description that lists no extra views.
    let one_view: String = own_description("")
        .lines()
        .filter(|l| !l.starts_with("crop_views"))
        .map(|l| format!("{l}\n"))
        .collect();
    let desc = dir.path().join("one-view.toml");
    std::fs::write(&desc, one_view).unwrap();
    let mut single =
        PlateReaderSession::open(runtime(), &shipped_reader(), Some(&desc), &options).unwrap();
    assert_eq!(single.views(), 1);

    let every_view = read(&mut all);
    assert!(every_view.iter().all(|c| !c.is_empty()), "{every_view:?}");
    all.set_views(1);
    assert_eq!(all.views(), 1);
    let first_view = read(&mut all);
    assert_eq!(
        first_view,
        read(&mut single),
        "one view is the description's crop_margin"
    );
    assert_ne!(
        first_view, every_view,
        "averaging three views changes what a plate reads as"
    );

    // Asking for more views than described reads them all; 0 reads one.
    all.set_views(99);
    assert_eq!(all.views(), described);
    assert_eq!(read(&mut all), every_view);
    all.set_views(0);
    assert_eq!(all.views(), 1);
}

#[test]
fn plates_the_first_reader_is_unsure_of_are_read_by_the_next() {
    let options = SessionOptions::default();
    let dir = tempfile::tempdir().unwrap();
    // Two stand-alone readers: the shipped model as described, and the
    // same model made unsure of everything (a huge temperature flattens
    // every slot), so that their reads differ.
    let sure = dir.path().join("sure.onnx");
    std::fs::copy(shipped_reader(), &sure).unwrap();
    std::fs::write(sure.with_extension("toml"), own_description("")).unwrap();
    let flat = dir.path().join("flat.onnx");
    std::fs::copy(shipped_reader(), &flat).unwrap();
    std::fs::write(
        flat.with_extension("toml"),
        own_description("temperature = 1000.0\n"),
    )
    .unwrap();
    let open = |model: &Path, desc: Option<&Path>| {
        PlateReaderSession::open(runtime(), model, desc, &options).unwrap()
    };
    let sure_reads = read(&mut open(&sure, None));
    let flat_reads = read(&mut open(&flat, None));
    assert_ne!(
        sure_reads, flat_reads,
        "the temperature changes the confidences"
    );
    assert!(open(&sure, None).next_stage().is_none());

    // The unsure reader first: no read reaches 0.5, so every plate goes on
    // and the result is the second reader's.
    let unsure_first = dir.path().join("unsure-first.toml");
    let own = own_description("temperature = 1000.0\n");
    std::fs::write(
        &unsure_first,
        format!("{own}\n[cascade]\nmodel = {sure:?}\nbelow = 0.5\n"),
    )
    .unwrap();
    let mut cascade = open(&shipped_reader(), Some(&unsure_first));
    assert!(cascade.next_stage().is_some());
    assert_eq!(read(&mut cascade), sure_reads);

    // The unsure reader first with below = 0: a plate it reads as a
    // Kazakhstan plate keeps that read, however unsure; any other is read
    // again, and the second reading stands.
    let keep = dir.path().join("keep.toml");
    std::fs::write(
        &keep,
        format!("{own}\n[cascade]\nmodel = {sure:?}\nbelow = 0.0\n"),
    )
    .unwrap();
    let kept = read(&mut open(&shipped_reader(), Some(&keep)));
    for ((k, s), f) in kept.iter().zip(&sure_reads).zip(&flat_reads) {
        let kazakh = f.first().is_some_and(|b| b.format.is_kazakh());
        assert_eq!(k, if kazakh { f } else { s });
    }
}

#[test]
fn a_cascade_that_names_itself_is_refused() {
    let options = SessionOptions::default();
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("loop.onnx");
    std::fs::copy(shipped_reader(), &model).unwrap();
    cascade_description(dir.path(), "loop.toml", &model, 0.9);
    let err = PlateReaderSession::open(runtime(), &model, None, &options)
        .err()
        .expect("a cascade without an end is refused")
        .to_string();
    assert!(err.contains("cascade"), "{err}");
    assert!(err.contains("loop.toml"), "{err}");
}

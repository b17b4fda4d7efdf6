//! The shipped plate reader through ort: how many crop views it reads.

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

#[test]
fn a_reader_limited_to_one_view_reads_as_a_one_view_description() {
    let options = SessionOptions::default();
    let mut all = PlateReaderSession::open(runtime(), &shipped_reader(), None, &options).unwrap();
    let described = all.description().margins().len();
    assert!(described > 1, "the shipped reader describes several views");
    assert_eq!(all.views(), described);

    // The same reader with a description that lists no extra views.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(shipped_reader().with_extension("toml")).unwrap();
    let one_view: String = text
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

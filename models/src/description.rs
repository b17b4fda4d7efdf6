//! Model descriptions: the small TOML sidecar next to each `.onnx` file.
//!
//! A description says how to feed a model and how to read it, so a user can
//! drop in their own model without code. Example for a YOLOX export:
//!
//! ```toml
//! kind = "detector"
//! layout = "yolox"
//! strides = [8, 16, 32]
//! classes = ["person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck"]
//! # Which model classes are which of ours; the rest are ignored.
//! class_map = { car = "car", bus = "bus", truck = "truck", motorcycle = "motorcycle" }
//!
//! [input]
//! width = 416
//! height = 416
//! channels = "bgr"
//! scale = 1.0        # pixel values stay 0..255
//! resize = "letterbox"
//! pad = 114
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::detect::DetectorLayout;

/// Channel order and count the model expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    Rgb,
    Bgr,
    Gray,
}

impl Channels {
    pub fn count(self) -> usize {
        match self {
            Channels::Rgb | Channels::Bgr => 3,
            Channels::Gray => 1,
        }
    }
}

/// How a picture is fitted to the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resize {
    /// Keep the aspect ratio and pad (detectors).
    Letterbox,
    /// Stretch to the input size (plate crops).
    Stretch,
}

/// The model's input tensor, `[B, C, H, W]` (or `[B, H, W, C]` with
/// `layout = "nhwc"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputDescription {
    pub width: u32,
    pub height: u32,
    pub channels: Channels,
    /// Pixel values 0..255 are multiplied by this, then `(v - mean) / std`.
    #[serde(default = "one_over_255")]
    pub scale: f32,
    #[serde(default)]
    pub mean: [f32; 3],
    #[serde(default = "ones")]
    pub std: [f32; 3],
    pub resize: Resize,
    /// Padding grey level for letterboxing.
    #[serde(default = "pad_grey")]
    pub pad: u8,
    #[serde(default)]
    pub nhwc: bool,
}

fn one_over_255() -> f32 {
    1.0 / 255.0
}
fn ones() -> [f32; 3] {
    [1.0; 3]
}
fn pad_grey() -> u8 {
    114
}

/// A detector's description.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorDescription {
    pub input: InputDescription,
    pub layout: DetectorLayout,
    /// The model's class names, in output order.
    pub classes: Vec<String>,
    /// Model class name to our class name (`car`, `bus`, `truck`,
    /// `motorcycle`, `plate`). Without it, names are taken as they are.
    #[serde(default)]
    pub class_map: BTreeMap<String, String>,
    /// Grid strides of YOLOX outputs.
    #[serde(default = "default_strides")]
    pub strides: Vec<u32>,
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    #[serde(default = "default_iou")]
    pub iou_threshold: f32,
}

fn default_strides() -> Vec<u32> {
    vec![8, 16, 32]
}
fn default_score() -> f32 {
    0.25
}
fn default_iou() -> f32 {
    0.45
}

/// How a plate reader's output is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlateDecoder {
    /// `[B, T, K]` with a CTC blank class.
    Ctc,
    /// `[B, S, K]`, one symbol per slot with a pad symbol.
    FixedSlots,
}

/// A plate reader's description.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateReaderDescription {
    pub input: InputDescription,
    pub decoder: PlateDecoder,
    /// The characters, in class order without the CTC blank; with fixed
    /// slots it includes the pad symbol.
    pub alphabet: String,
    /// CTC blank class index.
    #[serde(default)]
    pub blank: usize,
    /// Fixed-slot pad symbol.
    #[serde(default = "pad_symbol")]
    pub pad: char,
    /// Whether outputs are raw scores that need a softmax.
    #[serde(default = "yes")]
    pub logits: bool,
    /// Margin added around a detected plate box before cropping, as a
    /// fraction of its width and height.
    #[serde(default = "crop_margin")]
    pub crop_margin: [f32; 2],
    /// More margins, each read as another view of the same plate. The
    /// reader averages the views: per-slot probabilities for fixed slots,
    /// candidate probabilities for CTC. Empty: one view.
    #[serde(default)]
    pub crop_views: Vec<[f32; 2]>,
    /// Calibration: raw scores are divided by this before the softmax, so
    /// that a confidence of 0.8 is right about 8 times in 10 (fitted on a
    /// validation split; see models/README.md). Only with `logits`.
    #[serde(default = "one")]
    pub temperature: f32,
    /// A second reader for the plates this one is unsure of.
    #[serde(default)]
    pub cascade: Option<CascadeDescription>,
}

/// The second stage of a plate reader: a stronger, slower model that reads
/// again every plate the first one did not read as a Kazakhstan plate with
/// at least `below` confidence. Its own description sits beside it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CascadeDescription {
    /// The second model's `.onnx`, relative to this description's folder.
    pub model: PathBuf,
    /// Reads at or above this confidence are kept without a second read.
    pub below: f32,
    /// Plate boxes lower than this, in frame pixels, are not read again:
    /// too small for either reader, they would only cost time.
    #[serde(default)]
    pub min_height: f32,
}

impl PlateReaderDescription {
    /// Every margin a plate is read at: `crop_margin`, then `crop_views`.
    pub fn margins(&self) -> Vec<[f32; 2]> {
        std::iter::once(self.crop_margin)
            .chain(self.crop_views.iter().copied())
            .collect()
    }
}

fn crop_margin() -> [f32; 2] {
    [0.08, 0.15]
}

fn one() -> f32 {
    1.0
}

fn pad_symbol() -> char {
    '_'
}
fn yes() -> bool {
    true
}

/// An image classifier's description (the vehicle colour model): one
/// score per class for a crop around an object.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierDescription {
    pub input: InputDescription,
    /// Class names in output order.
    pub classes: Vec<String>,
    /// Whether outputs are raw scores that need a softmax.
    #[serde(default = "yes")]
    pub logits: bool,
    /// Margin added around the object box before cropping, as a fraction
    /// of its width and height.
    #[serde(default)]
    pub crop_margin: [f32; 2],
}

/// A description file of any kind.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelDescription {
    Detector(DetectorDescription),
    PlateReader(PlateReaderDescription),
    Classifier(ClassifierDescription),
}

impl ModelDescription {
    /// What kind of model this describes, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelDescription::Detector(_) => "detector",
            ModelDescription::PlateReader(_) => "plate reader",
            ModelDescription::Classifier(_) => "classifier",
        }
    }
}

/// A description that cannot be used, with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("model description {path}: {message}")]
pub struct DescriptionError {
    pub path: PathBuf,
    pub message: String,
}

impl ModelDescription {
    /// The sidecar of a model file: `model.onnx` → `model.toml`.
    pub fn sidecar(model: &Path) -> PathBuf {
        model.with_extension("toml")
    }

    /// Reads and checks a description file.
    pub fn from_file(path: &Path) -> Result<ModelDescription, DescriptionError> {
        let err = |message: String| DescriptionError {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "{e}; every .onnx needs a description beside it (see models/README.md)"
            ))
        })?;
        let d: ModelDescription = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        d.validate().map_err(err)?;
        Ok(d)
    }

    fn validate(&self) -> Result<(), String> {
        let input = match self {
            ModelDescription::Detector(d) => &d.input,
            ModelDescription::PlateReader(p) => &p.input,
            ModelDescription::Classifier(c) => &c.input,
        };
        if !(8..=4096).contains(&input.width) || !(8..=4096).contains(&input.height) {
            return Err(format!(
                "input {}x{} is out of range 8..4096",
                input.width, input.height
            ));
        }
        if input.std.contains(&0.0) {
            return Err("input.std has a zero".into());
        }
        match self {
            ModelDescription::Detector(d) => {
                if d.classes.is_empty() {
                    return Err("classes is empty".into());
                }
                for (from, to) in &d.class_map {
                    if !d.classes.contains(from) {
                        return Err(format!("class_map names {from:?}, which is not in classes"));
                    }
                    if !["car", "bus", "truck", "motorcycle", "plate"].contains(&to.as_str()) {
                        return Err(format!(
                            "class_map maps {from:?} to {to:?}; use car, bus, truck, motorcycle or plate"
                        ));
                    }
                }
                if d.layout == DetectorLayout::Yolox
                    && d.strides
                        .iter()
                        .any(|s| *s == 0 || input.width % s != 0 || input.height % s != 0)
                {
                    return Err(format!(
                        "strides {:?} must divide the input size {}x{}",
                        d.strides, input.width, input.height
                    ));
                }
            }
            ModelDescription::PlateReader(p) => {
                if p.alphabet.is_empty() {
                    return Err("alphabet is empty".into());
                }
                if p.decoder == PlateDecoder::FixedSlots && !p.alphabet.contains(p.pad) {
                    return Err(format!("alphabet lacks the pad symbol {:?}", p.pad));
                }
                if let Some(c) = &p.cascade {
                    if !(0.0..=1.0).contains(&c.below) {
                        return Err(format!(
                            "cascade.below is {}; give a confidence from 0 to 1",
                            c.below
                        ));
                    }
                }
                if !(p.temperature.is_finite() && p.temperature > 0.0) {
                    return Err(format!(
                        "temperature is {}; it must be above 0 (1 leaves the scores as they are)",
                        p.temperature
                    ));
                }
            }
            ModelDescription::Classifier(c) => {
                if c.classes.is_empty() {
                    return Err("classes is empty".into());
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelDescription, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, text).unwrap();
        ModelDescription::from_file(&path).map_err(|e| e.to_string())
    }

    const INPUT: &str =
        "[input]\nwidth = 416\nheight = 416\nchannels = \"bgr\"\nresize = \"letterbox\"\n";

    #[test]
    fn reads_a_detector_with_defaults() {
        let d = parse(&format!(
            "kind = \"detector\"\nlayout = \"yolox\"\nclasses = [\"car\", \"dog\"]\n{INPUT}"
        ))
        .unwrap();
        let ModelDescription::Detector(d) = d else {
            panic!()
        };
        assert_eq!(d.strides, vec![8, 16, 32]);
        assert_eq!(d.input.pad, 114);
        assert!((d.input.scale - 1.0 / 255.0).abs() < 1e-9);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let e = parse(&format!(
            "kind = \"detector\"\nlayout = \"yolov9\"\nclasses = [\"car\"]\n{INPUT}"
        ))
        .unwrap_err();
        assert!(
            e.contains("m.toml") && e.contains("yolov9") && e.contains("yolov8"),
            "{e}"
        );
        let e = parse(&format!(
            "kind = \"detector\"\nlayout = \"yolov8\"\nclasses = [\"car\"]\nclass_map = {{ auto = \"car\" }}\n{INPUT}"
        ))
        .unwrap_err();
        assert!(e.contains("\"auto\""), "{e}");
        let e = parse(&format!(
            "kind = \"detector\"\nlayout = \"yolox\"\nclasses = [\"car\"]\nstrides = [7]\n{INPUT}"
        ))
        .unwrap_err();
        assert!(e.contains("strides"), "{e}");
        let e = parse("kind = \"detector\"\n").unwrap_err();
        assert!(e.contains("missing field"), "{e}");
        let e = ModelDescription::from_file(Path::new("/nonexistent/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/x.toml") && e.contains("description beside it"),
            "{e}"
        );
    }

    #[test]
    fn reads_a_plate_reader() {
        let d = parse(
            "kind = \"plate_reader\"\ndecoder = \"fixed_slots\"\nalphabet = \"0123456789_\"\n\
             [input]\nwidth = 128\nheight = 64\nchannels = \"gray\"\nresize = \"stretch\"\n",
        )
        .unwrap();
        let ModelDescription::PlateReader(p) = d else {
            panic!()
        };
        assert_eq!(p.pad, '_');
        assert!(p.logits);
        let e = parse(
            "kind = \"plate_reader\"\ndecoder = \"fixed_slots\"\nalphabet = \"0123456789\"\n\
             [input]\nwidth = 128\nheight = 64\nchannels = \"gray\"\nresize = \"stretch\"\n",
        )
        .unwrap_err();
        assert!(e.contains("pad symbol"), "{e}");
    }
}

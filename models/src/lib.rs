//! Model side of safecity: ONNX Runtime, loaded at run time, and the
//! pre- and post-processing around the detector and the plate reader.
//!
//! - [`Runtime`] finds the ONNX Runtime shared library (the one `make setup`
//!   takes from the PyPI `onnxruntime` wheel, or one the user names) and
//!   builds the process's single ort environment.
//! - [`ModelDescription`] is the TOML sidecar beside each `.onnx` that says
//!   how to feed and read it; [`preprocess_into`] crops, letterboxes and
//!   normalises into a reused buffer accordingly.
//! - [`DetectorSession`] runs a detector on a batch of frames and checks the
//!   model against its description when it opens.
//! - [`PlateReaderSession`] crops plate boxes with a margin, reads them in a
//!   batch and ranks the texts; a description may name a second, stronger
//!   reader that reads again the plates the first is unsure of (a cascade).
//! - [`decode_detections`] reads the YOLOv8/v11, YOLOv5, YOLOX and
//!   end-to-end output layouts ([`DetectorLayout`]); [`nms`] is class-wise.
//! - [`ctc_greedy`], [`ctc_beam`] and [`fixed_slots`] decode plate-reader
//!   outputs; [`rank_candidates`] applies the Kazakhstan grammar prior and
//!   gives [`PlateCandidate`]s with canonical and display forms.
//! - [`ClassifierSession`] runs the vehicle colour model on vehicle boxes;
//!   [`vehicle_colour`] is the model-free fallback from pixels.
//! - [`Provider`] picks CPU, CUDA or TensorRT (cargo features `cuda`,
//!   `tensorrt`).

mod classifier;
mod colour;
mod description;
mod detect;
mod locate;
mod plate_decode;
mod plate_session;
mod preprocess;
mod runtime;
mod session;

pub use classifier::ClassifierSession;
pub use colour::{vehicle_colour, COLOURS};
pub use description::{
    CascadeDescription, Channels, ClassifierDescription, DescriptionError, DetectorDescription,
    InputDescription, ModelDescription, PlateDecoder, PlateReaderDescription, Resize,
};
pub use detect::{
    decode_detections, nms, Detection, DetectorLayout, OutputShape, OutputShapeError,
};
pub use locate::{
    find_model, ModelNotFound, COLOUR_FILE, DETECTOR_FILE, MODELS_DIR_ENV, PLATE_READER_FILE,
};
pub use plate_decode::{
    ctc_beam, ctc_greedy, fixed_slots, fixed_slots_k_best, rank_candidates, PlateCandidate,
    FOREIGN_PRIOR,
};
pub use plate_session::{CascadeStats, PlateCrop, PlateReaderSession};
pub use preprocess::{input_len, preprocess_into, Letterbox};
pub use runtime::{Runtime, RuntimeError, ORT_LIB_ENV};
pub use safecity_core::iou;
pub use safecity_core::{Layout, Picture, YuvMatrix};
pub use session::{DetectorSession, ModelError, ObjectDetection, Provider, SessionOptions};

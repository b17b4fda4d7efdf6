//! Model side of safecity: ONNX Runtime, loaded at run time, and the
//! pre- and post-processing around the detector and the plate reader.
//!
//! - [`Runtime`] finds the ONNX Runtime shared library (the one `make setup`
//!   takes from the PyPI `onnxruntime` wheel, or one the user names) and
//!   builds the process's single ort environment.
//! - [`decode_detections`] reads the YOLOv8/v11, YOLOv5, YOLOX and
//!   end-to-end output layouts ([`DetectorLayout`]); [`nms`] is class-wise.
//! - [`ctc_greedy`], [`ctc_beam`] and [`fixed_slots`] decode plate-reader
//!   outputs; [`rank_candidates`] applies the Kazakhstan grammar prior and
//!   gives [`PlateCandidate`]s with canonical and display forms.

mod detect;
mod plate_decode;
mod runtime;

pub use detect::{
    decode_detections, iou, nms, DecodeError, Detection, DetectorLayout, OutputShape,
};
pub use plate_decode::{
    ctc_beam, ctc_greedy, fixed_slots, rank_candidates, PlateCandidate, FOREIGN_PRIOR,
};
pub use runtime::{Runtime, RuntimeError, ORT_LIB_ENV};

//! Model side of safecity: ONNX Runtime, loaded at run time.
//!
//! [`Runtime`] finds the ONNX Runtime shared library (the one `make setup`
//! takes from the PyPI `onnxruntime` wheel, or one the user names) and builds
//! the process's single ort environment. Sessions for the detector and the
//! plate reader are built on top of it.

mod runtime;

pub use runtime::{Runtime, RuntimeError, ORT_LIB_ENV};

//! Helpers shared by the model tests that run through ort.

use std::path::Path;

use safecity_models::Runtime;

/// The process's ONNX Runtime, loaded from where `make setup` puts it.
pub fn runtime() -> &'static Runtime {
    let lib = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.deps/onnxruntime/libonnxruntime.so");
    Runtime::get(Some(&lib)).expect("ONNX Runtime from `make setup`")
}

//! Finding the shipped model files.

use std::path::{Path, PathBuf};

/// Environment variable naming the folder with the model files.
pub const MODELS_DIR_ENV: &str = "SAFECITY_MODELS_DIR";

/// The shipped detector.
pub const DETECTOR_FILE: &str = "safecity-detector.onnx";
/// The shipped plate reader.
pub const PLATE_READER_FILE: &str = "safecity-plate.onnx";
/// The shipped vehicle colour classifier.
pub const COLOUR_FILE: &str = "safecity-colour.onnx";

/// A model file that is nowhere to be found.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "model {name} not found (looked in {}); set {MODELS_DIR_ENV} or give the path",
    .looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
)]
pub struct ModelNotFound {
    pub name: String,
    pub looked: Vec<PathBuf>,
}

/// Finds `name` in `$SAFECITY_MODELS_DIR`, then in `models/` of the working
/// folder and its parents, then in `models/` beside the executable and its
/// parents (a build inside the repository finds the shipped files).
pub fn find_model(name: &str) -> Result<PathBuf, ModelNotFound> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os(MODELS_DIR_ENV) {
        dirs.push(PathBuf::from(d));
    }
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(|d| d.join("models")));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        dirs.extend(exe_dir.ancestors().map(|d| d.join("models")));
    }
    dirs.dedup();
    let looked: Vec<PathBuf> = dirs.iter().map(|d| d.join(name)).collect();
    looked
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| ModelNotFound {
            name: name.to_owned(),
            looked,
        })
}

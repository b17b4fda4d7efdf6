//! Finding ONNX Runtime and building the one ort environment of the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Environment variable naming the ONNX Runtime library to load.
pub const ORT_LIB_ENV: &str = "SAFECITY_ORT_LIB";

/// Why ONNX Runtime could not be brought up.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime library not found (looked at {}); run `make setup`, or set {ORT_LIB_ENV} to libonnxruntime.so",
        .looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { looked: Vec<PathBuf> },
    #[error("cannot load ONNX Runtime from {path}: {message}")]
    Load { path: PathBuf, message: String },
    #[error("ONNX Runtime was already started from {loaded}; cannot switch to {requested}")]
    AlreadyLoaded { loaded: PathBuf, requested: PathBuf },
}

/// The process's ONNX Runtime: the library it came from and its environment.
#[derive(Debug)]
pub struct Runtime {
    library: PathBuf,
    environment: ort::environment::Environment,
}

static RUNTIME: OnceLock<Result<Runtime, RuntimeError>> = OnceLock::new();

impl Runtime {
    /// Where the library is looked for, in order: `explicit`, then
    /// `$SAFECITY_ORT_LIB`, then `.deps/onnxruntime/` in the working folder and
    /// its parents (where `make setup` puts it), then beside the executable.
    pub fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
        if let Some(p) = explicit {
            return vec![p.to_path_buf()];
        }
        let mut out = Vec::new();
        if let Some(p) = std::env::var_os(ORT_LIB_ENV) {
            return vec![PathBuf::from(p)];
        }
        let rel = Path::new(".deps/onnxruntime/libonnxruntime.so");
        if let Ok(cwd) = std::env::current_dir() {
            out.extend(cwd.ancestors().map(|d| d.join(rel)));
        }
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            out.push(dir.join("libonnxruntime.so"));
            out.extend(dir.ancestors().map(|d| d.join(rel)));
        }
        out.dedup();
        out
    }

    /// Starts ONNX Runtime once per process; later calls return the same one.
    pub fn get(explicit: Option<&Path>) -> Result<&'static Runtime, RuntimeError> {
        let rt = RUNTIME
            .get_or_init(|| Runtime::start(explicit))
            .as_ref()
            .map_err(Clone::clone)?;
        if let Some(p) = explicit {
            if p != rt.library {
                return Err(RuntimeError::AlreadyLoaded {
                    loaded: rt.library.clone(),
                    requested: p.to_path_buf(),
                });
            }
        }
        Ok(rt)
    }

    fn start(explicit: Option<&Path>) -> Result<Runtime, RuntimeError> {
        let looked = Runtime::candidates(explicit);
        let library = looked
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or_else(|| RuntimeError::NotFound {
                looked: looked.clone(),
            })?;
        let load_error = |message: String| RuntimeError::Load {
            path: library.clone(),
            message,
        };
        let environment = ort::init_from(&library)
            .map_err(|e| load_error(e.to_string()))?
            .with_name("safecity")
            .build()
            .map_err(|e| load_error(e.to_string()))?;
        tracing::info!(library = %library.display(), "ONNX Runtime loaded");
        Ok(Runtime {
            library,
            environment,
        })
    }

    /// The process's ort environment, for building sessions.
    pub fn environment(&self) -> &ort::environment::Environment {
        &self.environment
    }

    /// The library file this process runs on.
    pub fn library(&self) -> &Path {
        &self.library
    }
}

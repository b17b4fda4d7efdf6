//! Errors of the simulator.

use std::path::PathBuf;

/// What went wrong in the simulator, with the input it concerns.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A setting is out of range; the message names it and the allowed values.
    #[error("invalid simulator setting: {0}")]
    Config(String),
    #[error("scenario file {path}: {message}")]
    Scenario { path: PathBuf, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing image {path}: {source}")]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("GStreamer: {0}")]
    Gst(String),
    #[error("RTSP port {port} on {address}: {message}")]
    Port {
        address: String,
        port: u16,
        message: String,
    },
}

impl SimError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SimError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = SimError> = std::result::Result<T, E>;

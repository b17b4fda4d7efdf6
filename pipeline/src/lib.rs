//! Video side of safecity: GStreamer graphs, tracking, and the scene
//! simulator.
//!
//! - [`VideoFrames`] decodes a video file to RGB frames, sampled down to a
//!   detection rate before colour conversion.
//! - [`sim`]: the Safe City scene simulator, which renders road scenes and
//!   panic pillars with ground truth, as still images or as looping RTSP
//!   cameras.

mod decode;
pub mod sim;

pub use decode::{DecodeError, VideoFrame, VideoFrames};

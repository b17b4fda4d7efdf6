//! Video side of safecity: GStreamer graphs, tracking, and the scene
//! simulator.
//!
//! - [`VideoFrames`] decodes a video file to RGB frames, sampled down to a
//!   detection rate before colour conversion.
//! - [`IouTracker`] follows vehicles across a camera's frames, predicting
//!   each box forward; [`PlateVote`] turns a track's plate reads into one
//!   text by a character-level vote.
//! - [`sim`]: the Safe City scene simulator, which renders road scenes and
//!   panic pillars with ground truth, as still images or as looping RTSP
//!   cameras.

mod decode;
pub mod sim;
mod track;
mod vote;

pub use decode::{DecodeError, VideoFrame, VideoFrames};
pub use safecity_core::iou;
pub use track::{IouTracker, Track, TrackInput, TrackUpdate, TrackerConfig};
pub use vote::{PlateVote, VoteResult};

//! Video side of safecity: GStreamer graphs, tracking, and the scene
//! simulator.
//!
//! - [`VideoFrames`] decodes a video file to frames in the decoder's I420,
//!   sampled down to a detection rate; the models convert only the pixels
//!   they read ([`safecity_core::Picture`]).
//! - [`Source`] reads a live camera or pillar (RTSP, HTTP) or a file for
//!   the edge: hardware decoding where there is a decoder for it, sampling
//!   to the detection rate, scaling, I420 frames with capture times through
//!   a bounded hand-off, and reconnects with backoff ([`source`]).
//! - [`IouTracker`] follows vehicles across a camera's frames, predicting
//!   each box forward; [`PlateVote`] turns a track's plate reads into one
//!   text by a character-level vote.
//! - [`sim`]: the Safe City scene simulator, which renders road scenes and
//!   panic pillars with ground truth, as still images or as looping RTSP
//!   cameras.

mod decode;
mod pixels;
pub mod sim;
pub mod source;
mod track;
mod vote;

pub use decode::{DecodeError, VideoFrame, VideoFrames};
pub use safecity_core::iou;
pub use source::{
    CaptureClock, Frame, RtspTransport, Source, SourceConfig, SourceError, SourceEvent,
    SourceStats, SourceStatus,
};
pub use track::{IouTracker, Track, TrackInput, TrackUpdate, TrackerConfig};
pub use vote::{PlateVote, VoteResult};

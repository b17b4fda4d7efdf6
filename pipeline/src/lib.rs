//! Video in: GStreamer graphs that turn cameras, pillars and files into
//! frames.
//!
//! - [`VideoFrames`] decodes a video file to [`Frame`]s in the decoder's I420,
//!   sampled down to a detection rate; the models convert only the pixels
//!   they read ([`safecity_core::Picture`]).
//! - [`Source`] reads a live camera or pillar (RTSP, HTTP) or a file for
//!   the edge: hardware decoding where there is a decoder for it, sampling
//!   to the detection rate, scaling, I420 frames with capture times through
//!   a bounded hand-off, and reconnects with backoff ([`source`]).

mod decode;
mod pixels;
pub mod source;

pub use decode::{DecodeError, VideoFrames};
pub use source::{
    CaptureClock, Frame, RtspTransport, Source, SourceConfig, SourceError, SourceEvent,
    SourceStats, SourceStatus,
};

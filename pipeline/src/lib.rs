//! Video side of safecity: GStreamer graphs and the scene simulator.
//!
//! - [`sim`]: the Safe City scene simulator, which renders road scenes and
//!   panic pillars with ground truth, as still images or as looping RTSP
//!   cameras.

pub mod sim;

//! Clip encoding. (Being written.)
/// A clip to encode.
#[derive(Debug, Clone, Default)]
pub struct ClipSpec;
/// Encodes a clip.
pub fn encode_clip() {}

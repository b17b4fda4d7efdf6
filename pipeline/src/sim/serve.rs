//! RTSP serving. (Being written.)
/// Server settings.
#[derive(Debug, Clone, Default)]
pub struct SimServerConfig;
/// The server.
#[derive(Debug, Default)]
pub struct SimServer;
/// A pass record.
#[derive(Debug, Clone, Default)]
pub struct PassRecord;

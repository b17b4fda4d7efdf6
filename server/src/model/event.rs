//! Events as the stores take them in and give them back.

use safecity_core::Event;

use super::Alert;

/// The hex SHA-256 naming a snapshot or clip in the blob store.
pub type BlobHash = String;

/// An event ready to store: validated, its snapshot already in the blob
/// store and removed from the event.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event: Event,
    pub snapshot: Option<BlobHash>,
}

/// What one ingest call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestOutcome {
    /// Events stored now.
    pub accepted: u64,
    /// Events whose id was already stored (or came twice in the batch).
    pub duplicates: u64,
    /// Alerts raised by the events stored now, committed with them, by id.
    pub alerts: Vec<Alert>,
    /// This call's place in the store's commit order, from 1 since the
    /// store was opened: a call with a lower number committed first (and
    /// its alerts have lower ids). The API publishes alerts in this order.
    pub seq: u64,
}

/// A stored event's blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBlobs {
    pub snapshot: Option<BlobHash>,
    pub clip: Option<BlobHash>,
    /// The edge that sent the event: the one that may add its clip.
    pub edge_id: String,
}

/// One stored sighting of a plate.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    pub event_id: String,
    /// Capture time, milliseconds since 1970.
    pub ts_ms: i64,
    pub camera_id: String,
    pub confidence: Option<f32>,
    pub snapshot: Option<BlobHash>,
    pub clip: Option<BlobHash>,
}

//! The server's shared value types: what the stores, the domain logic and
//! the HTTP layer pass to each other. Plain data with its own small rules
//! (parsing, state transitions, distances); no storage and no I/O. Every
//! other module may use this one; it uses none of them but `error` and the
//! token roles of `auth`.

mod access;
mod alert;
mod camera;
mod event;
mod retention;
mod search;

pub(crate) use access::parse_role;
pub use access::{AuditEntry, AuditRecord, TokenOwner, TokenRecord};
pub use alert::{
    Alert, AlertChange, AlertKind, AlertQuery, AlertState, NewWatch, Priority, StateChange,
    WatchEntry, WatchMode, WatchRef,
};
pub use camera::{Camera, CameraHealth, CameraKind};
pub use event::{BlobHash, EventBlobs, IngestOutcome, NewEvent, Sighting};
pub use retention::{EventClass, PurgeReport, RetentionPolicy};
pub use search::{
    cameras_near, haversine_m, Cursor, Hit, Near, PlateQuery, SearchPage, SearchQuery,
};

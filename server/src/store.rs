//! Storage behind one trait.
//!
//! [`Store`] is what the HTTP layer needs from a backend: ingest (with
//! watchlist matching), search, trajectories, the camera registry, the
//! watchlist and alerts, tokens and the audit log. Its methods block; the
//! HTTP layer calls them from `tokio::task::spawn_blocking`. The embedded
//! backend is [`SqliteStore`]; [`PostgresStore`] is the one for production,
//! with time-partitioned events (see its module for the schema and the
//! distribution key for scale-out). Snapshot and clip bytes live in the
//! [`BlobStore`](crate::blobs::BlobStore) beside it; events name them by hash.

mod checkpoint;
mod pg_tls;
mod postgres;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::sync::Arc;

use crate::config::{ServerConfig, StoreBackend};
use crate::error::{Error, Result};
use crate::model::{
    Alert, AlertChange, AlertQuery, AlertState, AuditEntry, AuditRecord, Camera, CameraHealth,
    EventBlobs, IngestOutcome, NewEvent, NewWatch, PlateQuery, PurgeReport, RetentionPolicy,
    SearchPage, SearchQuery, Sighting, StateChange, TokenOwner, TokenRecord, WatchEntry,
};

/// Most events a backend deletes in one transaction.
pub const PURGE_BATCH: usize = 1_000;

/// Opens the store `config` names: SQLite in `data_dir`, or PostgreSQL at
/// `store.url`.
pub fn open(config: &ServerConfig) -> Result<Arc<dyn Store>> {
    Ok(match (config.store.backend, &config.store.url) {
        (StoreBackend::Postgres, Some(url)) => Arc::new(PostgresStore::connect(url)?),
        (StoreBackend::Postgres, None) => {
            return Err(Error::Config(
                "store.url: backend \"postgres\" needs a URL".into(),
            ))
        }
        (StoreBackend::Sqlite, _) => Arc::new(SqliteStore::open(&config.data_dir)?),
    })
}

/// The `status.state` of a stored `camera_status` event's JSON, or
/// `unknown` when it has none.
fn status_state(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v["status"]["state"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// A storage backend.
pub trait Store: Send + Sync + 'static {
    /// Answers when the database does: an empty query through the same
    /// connections the other calls use (`/healthz`).
    fn ping(&self) -> Result<()>;

    /// Stores a batch in one durable transaction. Ids already stored are
    /// counted as duplicates and left as they are. Each new `plate_read`
    /// is matched against the active watchlist and each new `panic_alarm`
    /// raises an alert; the alerts are committed in the same transaction.
    fn ingest(&self, events: &[NewEvent]) -> Result<IngestOutcome>;

    /// Sightings of a canonical plate within `[from_ms, to_ms]`, oldest
    /// first by `(ts, id)`, at most `limit`.
    fn track(&self, plate: &str, from_ms: i64, to_ms: i64, limit: usize) -> Result<Vec<Sighting>>;

    /// Adds a watchlist entry; it matches from the next ingest on.
    fn add_watch(&self, entry: &NewWatch) -> Result<WatchEntry>;

    /// Watchlist entries by id; removed ones only with `include_removed`.
    fn watchlist(&self, include_removed: bool) -> Result<Vec<WatchEntry>>;

    /// Removes an entry (it is kept, marked removed, for the alerts that
    /// name it). `None` when there is no such entry or it is removed.
    fn remove_watch(&self, id: i64, who: &str, at_ms: i64) -> Result<Option<WatchEntry>>;

    /// Alerts matching `query`: newest first, or oldest first when
    /// `query.after` is given.
    fn alerts(&self, query: &AlertQuery) -> Result<Vec<Alert>>;

    /// One alert and its state changes, oldest first.
    fn alert(&self, id: i64) -> Result<Option<(Alert, Vec<AlertChange>)>>;

    /// Moves an alert to `to` when its state allows it, recording the
    /// change (who and when from `audit`, with `note`) and appending
    /// `audit`, its `detail` set to `alert ID: FROM -> TO`, in one
    /// transaction.
    fn change_alert(
        &self,
        id: i64,
        to: AlertState,
        note: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<StateChange>;

    /// The blobs of a stored event; `None` when the id is unknown.
    fn event_blobs(&self, id: &str) -> Result<Option<EventBlobs>>;

    /// Links a stored clip blob to an event that has none yet (evidence is
    /// written once); `false` when the id is unknown or the event already
    /// has a clip.
    fn attach_clip(&self, id: &str, clip: &str) -> Result<bool>;

    /// The distinct stored plates that `query` matches, in byte order,
    /// from the [`PlateIndex`](crate::plate_index::PlateIndex); none for
    /// [`PlateQuery::Any`].
    fn plates(&self, query: &PlateQuery) -> Result<Vec<String>>;

    /// Events matching `query`, newest first, by `(ts, id)`.
    fn search(&self, query: &SearchQuery) -> Result<SearchPage>;

    /// Adds or replaces a camera.
    fn put_camera(&self, camera: &Camera) -> Result<()>;

    /// Every camera, by id.
    fn cameras(&self) -> Result<Vec<Camera>>;

    /// A camera's latest status change and latest event (two index seeks).
    fn camera_health(&self, camera_id: &str) -> Result<CameraHealth>;

    /// Stores a token's hash; a hash already stored is left as it is.
    fn add_token(&self, hash: &str, owner: &TokenOwner) -> Result<()>;

    /// The owner of a token hash; `None` for an unknown or revoked one.
    fn token(&self, hash: &str) -> Result<Option<TokenOwner>>;

    /// Every stored token, revoked ones included, oldest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>>;

    /// Revokes the tokens named `name` not revoked yet, as of `at_ms`;
    /// returns how many.
    fn revoke_tokens(&self, name: &str, at_ms: i64) -> Result<usize>;

    /// Appends to the audit log and returns the record's sequence number.
    fn append_audit(&self, entry: &AuditEntry) -> Result<i64>;

    /// Audit records before `before` (a sequence number), newest first.
    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>>;

    /// Deletes the events that `policy` says have expired at `now_ms`
    /// (milliseconds since 1970), classed and timed as
    /// [`RetentionPolicy::cutoff_ms`] and [`EventClass::of`] say, in
    /// transactions of at most [`PURGE_BATCH`] events each. With each
    /// event go the alerts it raised and their state changes; with each
    /// batch, the distinct-plate rows no remaining event names, and the
    /// blobs (snapshots, clips) the deleted events named that no remaining
    /// event names, removed through [`BlobStore::remove_with`] so that a
    /// failed commit puts them back. Those blobs must be chosen while no
    /// other ingest can commit (SQLite: inside the `IMMEDIATE` write
    /// transaction); ingest writes its blobs again after its commit, so a
    /// blob an event committed later names is never lost. The audit log is
    /// never touched. Returns what was deleted; a policy that
    /// [keeps everything](RetentionPolicy::keeps_everything) deletes
    /// nothing.
    ///
    /// [`EventClass::of`]: crate::model::EventClass::of
    /// [`BlobStore::remove_with`]: crate::blobs::BlobStore::remove_with
    fn purge(
        &self,
        now_ms: i64,
        policy: &RetentionPolicy,
        blobs: &crate::blobs::BlobStore,
    ) -> Result<PurgeReport>;
}

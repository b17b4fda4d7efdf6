//! Storage behind one trait.
//!
//! [`Store`] is what the HTTP layer needs from a backend: ingest (with
//! watchlist matching), search, trajectories, the camera registry, the
//! watchlist and alerts, tokens and the audit log. Its methods block; the
//! HTTP layer calls them from `tokio::task::spawn_blocking`. The embedded
//! backend is [`SqliteStore`]; [`PostgresStore`] is the one for production,
//! with time-partitioned events (see its module for the schema and the
//! distribution key for scale-out). Snapshot and clip bytes live in the
//! [`BlobStore`](crate::BlobStore) beside it; events name them by hash.

mod checkpoint;
mod pg_tls;
mod postgres;
mod sqlite;

pub use postgres::{redact_url, PostgresStore};
pub use sqlite::SqliteStore;

/// Opens the store `config` names: SQLite in `data_dir`, or PostgreSQL at
/// `store.url`.
pub fn open(config: &crate::ServerConfig) -> Result<std::sync::Arc<dyn Store>> {
    use crate::config::StoreBackend;
    Ok(match (config.store.backend, &config.store.url) {
        (StoreBackend::Postgres, Some(url)) => std::sync::Arc::new(PostgresStore::connect(url)?),
        (StoreBackend::Postgres, None) => {
            return Err(crate::Error::Config(
                "store.url: backend \"postgres\" needs a URL".into(),
            ))
        }
        (StoreBackend::Sqlite, _) => std::sync::Arc::new(SqliteStore::open(&config.data_dir)?),
    })
}

use safecity_core::{Event, PlatePattern};
use serde::{Deserialize, Serialize};

use crate::alerts::{
    Alert, AlertChange, AlertQuery, AlertState, NewWatch, StateChange, WatchEntry,
};
use crate::auth::Role;
use crate::blobs::BlobHash;
use crate::error::Result;
use crate::retention::{PurgeReport, RetentionPolicy};
use crate::track::Sighting;

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

/// Which plates a search looks for.
#[derive(Debug, Clone)]
pub enum PlateQuery {
    /// Every event, with or without a plate.
    Any,
    /// One canonical plate.
    Exact(String),
    /// Plates matching a `?`/`*` pattern.
    Wildcard(PlatePattern),
    /// Plates within a weighted edit distance of a canonical plate.
    Fuzzy { plate: String, max_distance: f32 },
}

/// A circle on the map: cameras inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    pub lat: f64,
    pub lon: f64,
    pub metres: f64,
}

/// Where a page of results continues: the last hit's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub ts_ms: i64,
    pub id: String,
}

/// A search, already checked.
#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub plate: PlateQuery,
    /// Inclusive bounds, milliseconds since 1970.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    /// Only these cameras, when given.
    pub cameras: Option<Vec<String>>,
    /// Only cameras inside this circle.
    pub near: Option<Near>,
    pub class: Option<String>,
    pub colour: Option<String>,
    pub kind: Option<String>,
    pub limit: usize,
    pub after: Option<Cursor>,
}

/// One search result.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The event as sent, without its snapshot.
    pub event: serde_json::Value,
    pub id: String,
    pub ts_ms: i64,
    pub snapshot: Option<BlobHash>,
    pub clip: Option<BlobHash>,
    /// Weighted edit distance to the queried plate, for fuzzy searches.
    pub distance: Option<f32>,
}

/// One page of results, newest first.
#[derive(Debug, Clone)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl SearchPage {
    /// The first `limit` of `hits` (fetched as `limit + 1` to learn whether
    /// more follow), with the cursor after the last one kept.
    pub fn cut(mut hits: Vec<Hit>, limit: usize) -> SearchPage {
        let next = if hits.len() > limit {
            hits.truncate(limit);
            hits.last().map(|h| Cursor {
                ts_ms: h.ts_ms,
                id: h.id.clone(),
            })
        } else {
            None
        };
        SearchPage { hits, next }
    }
}

/// A stored event's blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBlobs {
    pub snapshot: Option<BlobHash>,
    pub clip: Option<BlobHash>,
    /// The edge that sent the event: the one that may add its clip.
    pub edge_id: String,
}

/// What a camera or pillar is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraKind {
    Camera,
    Pillar,
}

impl CameraKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraKind::Camera => "camera",
            CameraKind::Pillar => "pillar",
        }
    }

    pub fn parse(s: &str) -> Option<CameraKind> {
        match s {
            "camera" => Some(CameraKind::Camera),
            "pillar" => Some(CameraKind::Pillar),
            _ => None,
        }
    }
}

/// An entry of the camera and pillar registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    pub id: String,
    pub name: String,
    pub kind: CameraKind,
    pub lat: f64,
    pub lon: f64,
}

/// What the events say of a camera's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CameraHealth {
    /// The state of its latest `camera_status` event (`online` or
    /// `offline`) and that event's capture time, ms since the epoch.
    pub status: Option<(String, i64)>,
    /// The capture time of its latest event of any kind.
    pub last_seen_ms: Option<i64>,
}

/// The `status.state` of a stored `camera_status` event's JSON, or
/// `unknown` when it has none.
fn status_state(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|v| v["status"]["state"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub name: String,
    pub role: Role,
    /// When it stops working, ms since 1970; `None`: never.
    pub expires_ms: Option<i64>,
}

/// A stored role, naming the token when it is not one.
pub(crate) fn parse_role(role: &str, name: &str) -> Result<Role> {
    role.parse()
        .map_err(|e| crate::Error::Corrupt(format!("token {name:?}: {e}")))
}

/// A stored token as `safecity-server token list` shows it (never the
/// token: only its hash is stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    /// The first 12 hex digits of the token's SHA-256.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_ms: i64,
    pub expires_ms: Option<i64>,
    pub revoked_ms: Option<i64>,
}

/// One audit record to append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Milliseconds since 1970.
    pub at_ms: i64,
    /// The token's name.
    pub who: String,
    pub role: String,
    /// `METHOD /path` as called.
    pub route: String,
    /// The query string as sent.
    pub query: String,
    pub reason: Option<String>,
    /// How many results were given.
    pub results: Option<u64>,
    /// What a change did, e.g. `alert 7: new -> acknowledged`.
    pub detail: Option<String>,
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: AuditEntry,
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
    /// from the [`PlateIndex`](crate::PlateIndex); none for
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
    /// [`EventClass::of`]: crate::retention::EventClass::of
    /// [`PURGE_BATCH`]: crate::retention::PURGE_BATCH
    /// [`BlobStore::remove_with`]: crate::BlobStore::remove_with
    fn purge(
        &self,
        now_ms: i64,
        policy: &RetentionPolicy,
        blobs: &crate::BlobStore,
    ) -> Result<PurgeReport>;
}

/// Distance in metres between two points on the Earth (haversine).
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    const R: f64 = 6_371_008.8;
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * R * a.sqrt().asin()
}

/// The ids of the cameras inside `near`.
pub fn cameras_near(cameras: &[Camera], near: Near) -> Vec<String> {
    cameras
        .iter()
        .filter(|c| haversine_m(near.lat, near.lon, c.lat, c.lon) <= near.metres)
        .map(|c| c.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // One degree of latitude is about 111.2 km.
        let d = haversine_m(43.0, 76.0, 44.0, 76.0);
        assert!((d - 111_195.0).abs() < 100.0, "{d}");
        assert_eq!(haversine_m(43.25, 76.9, 43.25, 76.9), 0.0);
    }
}

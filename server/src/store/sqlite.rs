//! The embedded backend: SQLite in WAL mode.
//!
//! # Layout
//!
//! ```text
//! DATA/safecity.sqlite3      the database (with -wal and -shm beside it)
//! DATA/blobs/                snapshots and clips, see crate::blobs::BlobStore
//! ```
//!
//! Tables: `events` (one row per event id, the columns searches filter on
//! and the event JSON without its snapshot and without what the columns
//! hold, see `StoredJson`), `new_sightings`, `sightings`
//! and `sighting_parts` (the plate index, below), `camera_sightings` and
//! `store_meta` (the camera index, below), `plates` (the distinct
//! canonical plates of merged parts; with those of the level-0 parts they
//! are loaded into a [`PlateIndex`] at open, which wildcard and fuzzy
//! searches ask before looking up sightings), `cameras`, `tokens` (SHA-256
//! of each token, its role and name) and `audit` (append-only: triggers
//! refuse updates and deletes), `watchlist` (entries are marked removed,
//! never deleted), `alerts` (one row per watchlist hit or pillar alarm, with
//! the event's camera, plate and time) and `alert_changes` (who moved an
//! alert from which state to which, when, with what note). Partial indexes
//! on the snapshot and clip hashes let the retention purge tell whether a
//! blob is still named.
//!
//! # The plate index: sorted parts
//!
//! A plate search needs a plate's reads in time order, i.e. an index
//! ordered by plate. Kept as one B-tree over all events, every ingest batch
//! of 1,000 reads of random plates would touch some 1,000 random pages of
//! it, and each touched page is written whole to the write-ahead log at
//! commit and again at checkpoint: 8.6-12.8 KB written per event (measured
//! by `server-bench`, 1 M reads), and an index far larger than the page
//! cache.
//!
//! Instead the sightings `(part, plate, ts, ev)` (`ev` the event's rowid)
//! are cut into parts by their leading key, in two `WITHOUT ROWID` tables:
//! `new_sightings` holds the level-0 parts, `sightings` the merged ones.
//!
//! - Ingest appends to the newest level-0 part until it holds
//!   [`PART_ROWS`] sightings, then opens the next. A batch touches only that
//!   part's few dozen pages.
//! - Once [`MERGE_PARTS`] level-0 parts are full, they are merged, in one
//!   transaction, into one level-1 part written in (plate, ts) order under a
//!   new, higher part number: a sequential write of each sighting once more.
//!   `new_sightings` is then emptied in one step (its pages freed, not its
//!   rows deleted one by one).
//!   The merge runs after the batch that filled the last part has committed,
//!   before the [`Store::ingest`] call that wrote it returns: that one call takes
//!   0.34-0.47 s longer (576,000 sightings; `server-bench --events 2000000
//!   --plates 200000`), once per merge.
//! - `sighting_parts` holds each part's level, its sighting count and its
//!   time range. A search seeks each part whose range overlaps its time
//!   window (one B-tree descent per part and plate), so a 24-hour search
//!   reads one or two level-1 parts, and at most [`MERGE_PARTS`] level-0
//!   parts, which hold the newest reads and stay cached. Level-1 parts are
//!   not merged further: a search over all time seeks each of them (19 at
//!   10 M reads).
//! - A plate search takes the sightings in its window newest first, and
//!   reads event rows (one random page each when cold) only until its page
//!   is full. An often-read plate has some 170 sightings in a day at 10 M
//!   reads; joining them all to their events before sorting read 170 rows
//!   for a page of 50. `server-bench` at 10 M, exact search p99: 5.69 ms
//!   joined, 3.86 ms now (back-to-back runs).
//!
//! A part's time range only ever widens while it is filled; reads arriving
//! late (an edge catching up after an outage) widen the open part's range,
//! never wrong a search. The purge deletes an event's sighting with it and
//! drops parts left empty.
//!
//! # The camera index: taken in by chunks
//!
//! For the same reason a `(camera_id, ts)` index of `events` cost about a
//! third of ingest time (measured with 50 cameras): each batch touched one
//! page per camera. `camera_sightings (camera_id, ts, ev)` instead takes
//! the newest events in once [`CAMERA_CHUNK`] of them are past it, in key
//! order, so each camera gets a run of entries in one or two pages;
//! `store_meta.cameras_indexed` is the last rowid it covers. A camera
//! search reads the index and scans the events past it (at most a chunk
//! and a batch, by rowid). An event that takes a rowid below that mark (one
//! the purge freed) goes into the index at once.
//!
//! The active watchlist is also kept in memory as a [`Matcher`], rebuilt
//! under the writer lock whenever an entry is added or removed, so ingest
//! matches without reading the table.
//!
//! # Durability
//!
//! Every connection runs with `synchronous=FULL`: a commit returns only
//! after its write-ahead-log frames are synced to disk, so a batch that
//! [`Store::ingest`] has returned for survives a crash of the process or
//! of the machine. A batch is written in one transaction, with the alerts
//! it raises (with other callers' batches, see below): after a crash it is
//! stored whole or not at all.
//!
//! Writes go through one connection behind a mutex; reads use a small pool
//! of their own connections and, in WAL mode, do not wait for writes. A
//! thread of its own copies the log back into the database after commits
//! ([`Checkpointer`]), so that an ingest call does not wait for it.
//!
//! # Group commit
//!
//! Edges post at the same time. Each [`Store::ingest`] call makes its
//! rows (columns and JSON) before it waits, then queues its batch and takes
//! the writer lock. The caller that gets the lock writes every queued
//! batch in one transaction, under one fsync, and hands each caller its
//! own outcome; a caller whose batch was written that way returns as soon
//! as it gets the lock. Each batch is still acknowledged only after the
//! commit that holds it. If the joint transaction fails, each batch is
//! tried again in a transaction of its own, so one batch's error never
//! becomes another's. Measured with `server-bench` (the first million
//! events into fresh stores, wall clock, one run): one client 117.3k
//! events/s, four clients at once 121.2k. The API publishes the alerts of
//! concurrent calls in commit order ([`IngestOutcome::seq`]).

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, ToSql, TransactionBehavior};
use safecity_core::{
    plate_distance, AlarmInfo, Event, EventKind, PlateInfo, StatusInfo, VehicleInfo,
};
use time::OffsetDateTime;

use super::checkpoint::Checkpointer;
use super::Store;
use super::PURGE_BATCH;
use crate::blobs::BlobStore;
use crate::error::{Error, Result};
use crate::model::BlobHash;
use crate::model::Sighting;
use crate::model::{
    cameras_near, parse_role, AuditEntry as Audit, AuditEntry, AuditRecord, Camera, CameraHealth,
    CameraKind, EventBlobs, Hit, IngestOutcome, NewEvent, PlateQuery, SearchPage, SearchQuery,
    TokenOwner, TokenRecord,
};
use crate::model::{
    Alert, AlertChange, AlertKind, AlertQuery, AlertState, NewWatch, Priority, StateChange,
    WatchEntry, WatchMode, WatchRef,
};
use crate::model::{EventClass, PurgeReport, RetentionPolicy};
use crate::plate_index::PlateIndex;
use crate::watchlist::Matcher;
use safecity_core::clock::now_ms;
use safecity_core::sync::{Locked, ReadWriteLocked};

/// Version of the schema below, kept in `PRAGMA user_version`.
/// Version 2 added `audit.detail` and the watchlist and alert tables;
/// version 3 replaced the `(plate, ts, id)` index of `events` with the
/// parts of `sightings`.
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    edge_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    plate TEXT,
    plate_display TEXT,
    plate_confidence REAL,
    vehicle_class TEXT,
    colour TEXT,
    snapshot_sha256 TEXT,
    clip_sha256 TEXT,
    received INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_status ON events (camera_id, ts)
    WHERE kind = 'camera_status';
CREATE INDEX IF NOT EXISTS events_snapshot ON events (snapshot_sha256)
    WHERE snapshot_sha256 IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_clip ON events (clip_sha256) WHERE clip_sha256 IS NOT NULL;
CREATE TABLE IF NOT EXISTS sightings (
    part INTEGER NOT NULL,
    plate TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ev INTEGER NOT NULL,
    PRIMARY KEY (part, plate, ts, ev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS new_sightings (
    part INTEGER NOT NULL,
    plate TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ev INTEGER NOT NULL,
    PRIMARY KEY (part, plate, ts, ev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS camera_sightings (
    camera_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ev INTEGER NOT NULL,
    PRIMARY KEY (camera_id, ts, ev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sighting_parts (
    part INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS plates (plate TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cameras (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    sha256 TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    revoked INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    route TEXT NOT NULL,
    query TEXT NOT NULL,
    reason TEXT,
    results INTEGER,
    detail TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS watchlist (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern TEXT NOT NULL,
    mode TEXT NOT NULL,
    max_distance REAL,
    reason TEXT NOT NULL,
    priority TEXT NOT NULL,
    expires INTEGER,
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    removed INTEGER,
    removed_by TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT NOT NULL,
    event_id TEXT NOT NULL,
    watchlist_id INTEGER REFERENCES watchlist (id),
    camera_id TEXT NOT NULL,
    plate TEXT,
    ts INTEGER NOT NULL,
    distance REAL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    UNIQUE (event_id, watchlist_id)
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, id);
CREATE TABLE IF NOT EXISTS alert_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS alert_changes_alert ON alert_changes (alert_id, seq);
";

/// The columns [`SqliteStore::alert_from_row`] reads, over `alerts a`
/// joined with its event `e` and watchlist entry `w`.
const ALERT_COLUMNS: &str = "a.id, a.kind, a.state, a.priority, a.event_id, a.camera_id, a.plate,
    a.ts, a.created, a.updated, a.watchlist_id, w.pattern, w.mode, w.reason, a.distance,
    e.snapshot_sha256, e.clip_sha256
    FROM alerts a LEFT JOIN events e ON e.id = a.event_id
    LEFT JOIN watchlist w ON w.id = a.watchlist_id";

const WATCH_COLUMNS: &str = "id, pattern, mode, max_distance, reason, priority, expires, created,
    created_by, removed, removed_by FROM watchlist";

/// Sightings a level-0 part of the plate index takes before the next opens
/// (see the module notes): a batch of 1,000 touches at most its ~40 pages.
pub const PART_ROWS: i64 = 8192;
/// Full level-0 parts merged into one level-1 part (~0.5 M sightings).
pub const MERGE_PARTS: usize = 64;

/// Events the camera index leaves to a scan before it takes them in (see
/// the module notes): 50 cameras get ~160 entries each, 1-2 pages.
pub const CAMERA_CHUNK: i64 = 8192;

/// The sizes of the plate index's parts and the camera index's chunk;
/// tests make them small.
#[derive(Debug, Clone, Copy)]
struct Parts {
    rows: i64,
    merge: usize,
    camera_chunk: i64,
}

/// Page size of new databases, bytes. Measured with `server-bench` (2 M
/// events, two runs each): 4 KiB 86k / 98k events/s, 8 KiB 101k / 101k,
/// 16 KiB 89k / 100k; search times alike.
const PAGE_SIZE: u32 = 8192;

/// Most reader connections kept open between calls.
const READER_POOL: usize = 8;
/// Page cache of the writer connection, KiB (readers keep SQLite's 2 MiB).
/// Ingest touches few pages (see the module notes); a larger cache only
/// costs time at each commit (measured: 256 MiB was 15% slower).
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// The writer's own checkpoint runs once the write-ahead log holds this
/// many pages (160 MiB at 8 KiB pages; SQLite's default is 1,000). The
/// [`Checkpointer`] has copied most of them back by then, and a checkpoint
/// that finds every frame copied lets the log start over.
const WAL_CHECKPOINT_PAGES: u32 = 20_000;

/// The embedded store in a data directory.
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Batches waiting for the writer; the next holder of the writer lock
    /// writes them all in one transaction (group commit).
    queue: Mutex<Vec<Arc<IngestJob>>>,
    /// Ingest calls committed since open ([`IngestOutcome::seq`]); counted
    /// under the writer lock.
    commits: AtomicU64,
    readers: Mutex<Vec<Connection>>,
    /// The watchlist entries that are not removed; replaced under the
    /// writer lock.
    matcher: RwLock<Arc<Matcher>>,
    /// The plates of all parts; changed after each commit, under the writer
    /// lock.
    index: PlateIndex,
    parts: Parts,
    /// Copies the log back into the database beside the writer.
    checkpointer: Checkpointer,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens the store in `data_dir`, creating the folder and the schema
    /// when missing.
    pub fn open(data_dir: &Path) -> Result<SqliteStore> {
        crate::blobs::private_dir(data_dir)
            .map_err(|e| Error::io("cannot create data directory", data_dir, e))?;
        let path = data_dir.join("safecity.sqlite3");
        let conn = Self::connect(&path)?;
        // New databases only (an existing one keeps its page size).
        conn.execute_batch(&format!("PRAGMA page_size = {PAGE_SIZE}"))?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|cause| Error::Open {
                path: path.clone(),
                cause,
            })?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "{} cannot use write-ahead logging (journal mode {mode})",
                path.display()
            )));
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(Error::Config(format!(
                "{} has schema version {version}, newer than this server's {SCHEMA_VERSION}; run a newer safecity-server",
                path.display()
            )));
        }
        conn.execute_batch(SCHEMA)?;
        if version == 1 {
            // The audit table predates `detail`.
            conn.execute_batch("ALTER TABLE audit ADD COLUMN detail TEXT")?;
        }
        if (1..4).contains(&version) {
            // Tokens made before expiry and revocation (a table made just
            // now by SCHEMA has the columns already).
            let columns: Vec<String> = conn
                .prepare("SELECT name FROM pragma_table_info('tokens')")?
                .query_map([], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for column in ["expires", "revoked"] {
                if !columns.iter().any(|c| c == column) {
                    conn.execute_batch(&format!("ALTER TABLE tokens ADD COLUMN {column} INTEGER"))?;
                }
            }
        }
        if version < 3 {
            // The plate reads move from the `(plate, ts[, id])` index of
            // `events` into one level-1 part, written in key order, and the
            // `(camera_id, ts)` index into `camera_sightings`.
            conn.execute_batch(
                "BEGIN IMMEDIATE;
                 INSERT INTO sightings (part, plate, ts, ev)
                     SELECT 1, plate, ts, rowid FROM events WHERE plate IS NOT NULL
                     ORDER BY plate, ts, rowid;
                 INSERT INTO sighting_parts (part, level, rows, min_ts, max_ts)
                     SELECT 1, 1, count(*), min(ts), max(ts) FROM sightings WHERE part = 1
                     HAVING count(*) > 0;
                 DROP INDEX IF EXISTS events_plate_ts;
                 DROP INDEX IF EXISTS events_plate_ts_id;
                 INSERT OR IGNORE INTO camera_sightings (camera_id, ts, ev)
                     SELECT camera_id, ts, rowid FROM events ORDER BY camera_id, ts, rowid;
                 INSERT OR REPLACE INTO store_meta (key, value)
                     VALUES ('cameras_indexed', coalesce((SELECT max(rowid) FROM events), 0));
                 DROP INDEX IF EXISTS events_camera_ts;
                 COMMIT;",
            )?;
        }
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        // The writer gets a larger page cache (memory, not durability: each
        // commit is still fsynced) and checkpoints the log less often: a
        // page dirtied by several batches is copied back once.
        conn.execute_batch(&format!(
            "PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES};"
        ))?;
        let matcher = Matcher::new(Self::watchlist_on(&conn, false)?);
        let index = {
            // The plates of merged parts, and those only level-0 parts hold
            // yet (a merge adds them to the table).
            let mut stmt = conn.prepare(
                "SELECT plate FROM plates UNION
                 SELECT plate FROM new_sightings",
            )?;
            let plates = stmt
                .query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            PlateIndex::new(plates)
        };
        let checkpointer =
            Checkpointer::start(Self::connect(&path)?, path.display().to_string())
                .map_err(|e| Error::io("cannot start the checkpoint thread for", &path, e))?;
        Ok(SqliteStore {
            checkpointer,
            index,
            path,
            writer: Mutex::new(conn),
            queue: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
            readers: Mutex::new(Vec::new()),
            matcher: RwLock::new(Arc::new(matcher)),
            parts: Parts {
                rows: PART_ROWS,
                merge: MERGE_PARTS,
                camera_chunk: CAMERA_CHUNK,
            },
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(path: &Path) -> Result<Connection> {
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
            rusqlite::vtab::array::load_module(&conn)?;
            Ok(conn)
        };
        open().map_err(|cause| Error::Open {
            path: path.to_owned(),
            cause,
        })
    }

    /// Runs `f` on a reader connection from the pool.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let pooled = self.readers.locked().pop();
        let conn = match pooled {
            Some(c) => c,
            None => Self::connect(&self.path)?,
        };
        let out = f(&conn);
        let mut pool = self.readers.locked();
        if pool.len() < READER_POOL {
            pool.push(conn);
        }
        out
    }

    fn search_on(conn: &Connection, index: &PlateIndex, q: &SearchQuery) -> Result<SearchPage> {
        let empty = SearchPage {
            hits: Vec::new(),
            next: None,
        };
        let mut args: Vec<Box<dyn ToSql>> = Vec::new();
        // Binds `v` and names it (`?N`, usable more than once).
        fn arg(args: &mut Vec<Box<dyn ToSql>>, v: impl ToSql + 'static) -> String {
            args.push(Box::new(v));
            format!("?{}", args.len())
        }
        let values = |v: Vec<String>| -> Rc<Vec<Value>> {
            Rc::new(v.into_iter().map(Value::Text).collect())
        };
        // The plate index's side of a plate search has its own statement.
        let mut sight: Vec<Box<dyn ToSql>> = Vec::new();
        let plates = match &q.plate {
            PlateQuery::Any => None,
            PlateQuery::Exact(p) => Some(format!("s.plate = {}", arg(&mut sight, p.clone()))),
            other => {
                let plates = index.matching(other);
                if plates.is_empty() {
                    return Ok(empty);
                }
                Some(format!(
                    "s.plate IN rarray({})",
                    arg(&mut sight, values(plates))
                ))
            }
        };
        let mut cameras = q.cameras.clone();
        if let Some(near) = q.near {
            let inside = cameras_near(&Self::cameras_on(conn)?, near);
            cameras = Some(match cameras {
                Some(list) => list.into_iter().filter(|c| inside.contains(c)).collect(),
                None => inside,
            });
        }
        if cameras.as_ref().is_some_and(|c| c.is_empty()) {
            return Ok(empty);
        }
        if let Some(list) = cameras.as_mut() {
            // A camera named twice is one arm below.
            list.sort();
            list.dedup();
        }
        let camera_list = cameras.clone().unwrap_or_default();
        let cameras = cameras.map(|c| arg(&mut args, values(c)));
        let to_ms = match (q.to_ms, &q.after) {
            (Some(to), Some(after)) => to.min(after.ts_ms),
            (to, after) => to.or(after.as_ref().map(|a| a.ts_ms)).unwrap_or(i64::MAX),
        };
        let from_ms = q.from_ms.unwrap_or(i64::MIN);
        let from = arg(&mut args, from_ms);
        let to = arg(&mut args, to_ms);
        // What every branch below asks of the event row.
        let mut filters = vec![format!("e.ts >= {from}"), format!("e.ts <= {to}")];
        for (column, value) in [
            ("e.vehicle_class", &q.class),
            ("e.colour", &q.colour),
            ("e.kind", &q.kind),
        ] {
            if let Some(v) = value {
                filters.push(format!("{column} = {}", arg(&mut args, v.clone())));
            }
        }
        if let Some(after) = &q.after {
            let ts = arg(&mut args, after.ts_ms);
            let id = arg(&mut args, after.id.clone());
            filters.push(format!("(e.ts, e.id) < ({ts}, {id})"));
        }
        if let (Some(_), Some(cameras)) = (&plates, &cameras) {
            filters.push(format!("e.camera_id IN rarray({cameras})"));
        }
        let filters = filters.join(" AND ");
        let columns = "e.id, e.ts, e.json, e.snapshot_sha256, e.clip_sha256, e.plate, e.kind,
            e.edge_id, e.camera_id";
        let fuzzy_plate = match &q.plate {
            PlateQuery::Fuzzy { plate, .. } => Some(plate.as_str()),
            _ => None,
        };
        let mut sql = match (plates, cameras) {
            // A plate search walks the plate index's parts that meet the
            // time window, with the time bounds on the index's own column,
            // newest first; then reads the event rows one by one.
            (Some(plates), _) => {
                let from = arg(&mut sight, from_ms);
                let to = arg(&mut sight, to_ms);
                let sightings = SIGHTING_TABLES
                    .map(|(table, level)| {
                        format!(
                            "SELECT s.ts, s.ev FROM {table} s
                             WHERE s.part IN (SELECT part FROM sighting_parts WHERE {level}
                                              AND max_ts >= {from} AND min_ts <= {to})
                                 AND {plates} AND s.ts >= {from} AND s.ts <= {to}"
                        )
                    })
                    .join(" UNION ALL ")
                    + " ORDER BY 1 DESC";
                let event = format!(
                    "SELECT {columns} FROM events e WHERE e.rowid = ?{} AND {filters}",
                    args.len() + 1
                );
                return Self::plate_page(
                    conn,
                    (&sightings, &sight),
                    (&event, &args),
                    q.limit,
                    fuzzy_plate,
                );
            }
            // A camera search reads the camera index, and the events it
            // does not cover yet (by rowid). One arm per camera walks its
            // index range newest first (`c.ts` is the time column, so the
            // index gives the order) and the arms merge in time order: a
            // page stops early. Many cameras share one arm and a sort.
            (None, Some(cameras)) => {
                let indexed = "SELECT e.id, c.ts, e.json, e.snapshot_sha256, e.clip_sha256,
                     e.plate, e.kind, e.edge_id, e.camera_id
                     FROM camera_sightings c CROSS JOIN events e ON e.rowid = c.ev";
                let mut arms: Vec<String> = if camera_list.len() <= CAMERA_ARMS {
                    camera_list
                        .into_iter()
                        .map(|camera| {
                            let camera = arg(&mut args, camera);
                            format!(
                                "{indexed} WHERE c.camera_id = {camera}
                                     AND c.ts >= {from} AND c.ts <= {to} AND {filters}"
                            )
                        })
                        .collect()
                } else {
                    vec![format!(
                        "{indexed} WHERE c.camera_id IN rarray({cameras})
                             AND c.ts >= {from} AND c.ts <= {to} AND {filters}"
                    )]
                };
                arms.push(format!(
                    "SELECT {columns} FROM {UNINDEXED_EVENTS}
                         AND e.camera_id IN rarray({cameras}) AND {filters}"
                ));
                arms.join(" UNION ALL ")
            }
            (None, None) => format!("SELECT {columns} FROM events e WHERE {filters}"),
        };
        sql.push_str(&format!(
            " ORDER BY 2 DESC, 1 DESC LIMIT {}",
            arg(&mut args, q.limit as i64 + 1)
        ));

        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(args.iter()))?;
        let mut hits = Vec::new();
        while let Some(row) = rows.next()? {
            hits.push(hit_from_row(row, fuzzy_plate)?);
        }
        Ok(SearchPage::cut(hits, q.limit))
    }

    /// A plate search's page. `sightings` lists the plate index's
    /// `(ts, ev)` in the window, newest first; `events` reads one event
    /// row, by the rowid bound last, with the search's filters. Rows are
    /// read a time at a time until the page (`limit + 1`, to learn whether
    /// more follow) is full, ties on time ordered by id, newest first.
    ///
    /// Event rows are the search's random reads, one page each: an often
    /// read plate has some 170 sightings in a day at 10 M events, and a
    /// page takes 51 of them (filters that drop rows read more).
    fn plate_page(
        conn: &Connection,
        sightings: (&str, &[Box<dyn ToSql>]),
        events: (&str, &[Box<dyn ToSql>]),
        limit: usize,
        fuzzy_plate: Option<&str>,
    ) -> Result<SearchPage> {
        let mut by_time = conn.prepare_cached(sightings.0)?;
        let mut candidates = by_time.query(rusqlite::params_from_iter(sightings.1))?;
        let mut event = conn.prepare_cached(events.0)?;
        for (i, value) in events.1.iter().enumerate() {
            event.raw_bind_parameter(i + 1, value)?;
        }
        let rowid = events.1.len() + 1;
        let by_id = |a: &Hit, b: &Hit| b.id.cmp(&a.id);
        let mut hits: Vec<Hit> = Vec::new();
        // Where the hits at the current time start.
        let mut tied = 0;
        let mut time = None;
        while let Some(candidate) = candidates.next()? {
            let ts: i64 = candidate.get(0)?;
            if time != Some(ts) {
                // Every later candidate is older than the hits so far.
                hits[tied..].sort_by(by_id);
                if hits.len() > limit {
                    break;
                }
                tied = hits.len();
                time = Some(ts);
            }
            event.raw_bind_parameter(rowid, candidate.get::<_, i64>(1)?)?;
            let mut rows = event.raw_query();
            if let Some(row) = rows.next()? {
                hits.push(hit_from_row(row, fuzzy_plate)?);
            }
        }
        hits[tied..].sort_by(by_id);
        Ok(SearchPage::cut(hits, limit))
    }

    fn cameras_on(conn: &Connection) -> Result<Vec<Camera>> {
        let mut stmt =
            conn.prepare_cached("SELECT id, name, kind, lat, lon FROM cameras ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, f64>(3)?,
                r.get::<_, f64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, name, kind, lat, lon) = row?;
            let kind = CameraKind::parse(&kind)
                .ok_or_else(|| Error::Corrupt(format!("camera {id}: kind {kind:?}")))?;
            out.push(Camera {
                id,
                name,
                kind,
                lat,
                lon,
            });
        }
        Ok(out)
    }
}

impl SqliteStore {
    fn watch_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(WatchEntry, String, String)> {
        let mode: String = r.get(2)?;
        let priority: String = r.get(5)?;
        let entry = WatchEntry {
            id: r.get(0)?,
            entry: NewWatch {
                pattern: r.get(1)?,
                mode: WatchMode::parse(&mode).unwrap_or(WatchMode::Exact),
                max_distance: r.get::<_, Option<f64>>(3)?.map(|d| d as f32),
                reason: r.get(4)?,
                priority: Priority::parse(&priority).unwrap_or(Priority::Normal),
                expires_ms: r.get(6)?,
                created_ms: r.get(7)?,
                created_by: r.get(8)?,
            },
            removed_ms: r.get(9)?,
            removed_by: r.get(10)?,
        };
        Ok((entry, mode, priority))
    }

    fn watchlist_on(conn: &Connection, include_removed: bool) -> Result<Vec<WatchEntry>> {
        let sql = format!("SELECT {WATCH_COLUMNS} WHERE ?1 OR removed IS NULL ORDER BY id");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([include_removed], Self::watch_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            let (entry, mode, priority) = row?;
            if WatchMode::parse(&mode).is_none() || Priority::parse(&priority).is_none() {
                return Err(Error::Corrupt(format!(
                    "watchlist entry {}: mode {mode:?}, priority {priority:?}",
                    entry.id
                )));
            }
            out.push(entry);
        }
        Ok(out)
    }

    fn alert_from_row(r: &rusqlite::Row<'_>) -> Result<Alert> {
        let id: i64 = r.get(0)?;
        let text = |i: usize| -> Result<String> { Ok(r.get::<_, String>(i)?) };
        let bad = |what: &str, v: String| Error::Corrupt(format!("alert {id}: {what} {v:?}"));
        let kind = text(1)?;
        let state = text(2)?;
        let priority = text(3)?;
        let watch = match r.get::<_, Option<i64>>(10)? {
            None => None,
            Some(wid) => {
                let mode: Option<String> = r.get(12)?;
                let mode = mode.unwrap_or_default();
                Some(WatchRef {
                    id: wid,
                    pattern: r.get::<_, Option<String>>(11)?.unwrap_or_default(),
                    mode: WatchMode::parse(&mode).ok_or_else(|| bad("watchlist mode", mode))?,
                    reason: r.get::<_, Option<String>>(13)?.unwrap_or_default(),
                })
            }
        };
        Ok(Alert {
            id,
            kind: AlertKind::parse(&kind).ok_or_else(|| bad("kind", kind.clone()))?,
            state: AlertState::parse(&state).ok_or_else(|| bad("state", state.clone()))?,
            priority: Priority::parse(&priority)
                .ok_or_else(|| bad("priority", priority.clone()))?,
            event_id: text(4)?,
            camera_id: text(5)?,
            plate: r.get(6)?,
            ts_ms: r.get(7)?,
            created_ms: r.get(8)?,
            updated_ms: r.get(9)?,
            watch,
            distance: r.get::<_, Option<f64>>(14)?.map(|d| d as f32),
            snapshot: r.get(15)?,
            clip: r.get(16)?,
        })
    }

    fn alert_on(conn: &Connection, id: i64) -> Result<Option<Alert>> {
        let sql = format!("SELECT {ALERT_COLUMNS} WHERE a.id = ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => Ok(Some(Self::alert_from_row(row)?)),
            None => Ok(None),
        }
    }

    /// Rebuilds the in-memory matcher; call with the writer lock held.
    fn refresh_matcher(&self, conn: &Connection) -> Result<()> {
        let matcher = Matcher::new(Self::watchlist_on(conn, false)?);
        *self.matcher.write_locked() = Arc::new(matcher);
        Ok(())
    }

    fn append_audit_on(conn: &Connection, e: &Audit) -> Result<i64> {
        conn.prepare_cached(
            "INSERT INTO audit (at, who, role, route, query, reason, results, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            e.at_ms,
            e.who,
            e.role,
            e.route,
            e.query,
            e.reason,
            e.results.map(|n| n as i64),
            e.detail
        ])?;
        Ok(conn.last_insert_rowid())
    }
}

impl Store for SqliteStore {
    fn ping(&self) -> Result<()> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    fn ingest(&self, events: &[NewEvent]) -> Result<IngestOutcome> {
        // Columns and JSON are made before the writer lock, so concurrent
        // callers prepare in parallel; then the group commit (module notes).
        let rows = events.iter().map(Row::of).collect::<Result<Vec<_>>>()?;
        let job = Arc::new(IngestJob {
            rows,
            result: Mutex::new(None),
        });
        self.queue.locked().push(Arc::clone(&job));
        let mut conn = self.writer.locked();
        if let Some(done) = job.result.locked().take() {
            // An earlier holder of the lock wrote this batch with its own.
            return done;
        }
        let group = std::mem::take(&mut *self.queue.locked());
        self.write_group(&mut conn, &group);
        drop(conn);
        let done = job.result.locked().take();
        done.unwrap_or_else(|| Err(Error::Corrupt("a batch left its group unwritten".into())))
    }

    fn event_blobs(&self, id: &str) -> Result<Option<EventBlobs>> {
        self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT snapshot_sha256, clip_sha256, edge_id FROM events WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(EventBlobs {
                        snapshot: r.get(0)?,
                        clip: r.get(1)?,
                        edge_id: r.get(2)?,
                    })
                })
                .optional()?)
        })
    }

    fn attach_clip(&self, id: &str, clip: &str) -> Result<bool> {
        let conn = self.writer.locked();
        let n = conn
            .prepare_cached(
                "UPDATE events SET clip_sha256 = ?2 WHERE id = ?1 AND clip_sha256 IS NULL",
            )?
            .execute([id, clip])?;
        Ok(n == 1)
    }

    fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        self.read(|conn| Self::search_on(conn, &self.index, query))
    }

    fn plates(&self, query: &PlateQuery) -> Result<Vec<String>> {
        Ok(self.index.matching(query))
    }

    fn put_camera(&self, camera: &Camera) -> Result<()> {
        let conn = self.writer.locked();
        conn.prepare_cached(
            "INSERT INTO cameras (id, name, kind, lat, lon, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                 lat = excluded.lat, lon = excluded.lon, updated = excluded.updated",
        )?
        .execute(params![
            camera.id,
            camera.name,
            camera.kind.as_str(),
            camera.lat,
            camera.lon,
            now_ms()
        ])?;
        Ok(())
    }

    fn cameras(&self) -> Result<Vec<Camera>> {
        self.read(Self::cameras_on)
    }

    fn camera_health(&self, camera_id: &str) -> Result<CameraHealth> {
        self.read(|conn| {
            let last_seen_ms = conn
                .prepare_cached(&format!(
                    "SELECT max(t) FROM (
                         SELECT max(ts) AS t FROM camera_sightings WHERE camera_id = ?1
                         UNION ALL
                         SELECT max(e.ts) FROM {UNINDEXED_EVENTS} AND e.camera_id = ?1)"
                ))?
                .query_row([camera_id], |r| r.get::<_, Option<i64>>(0))?;
            let latest: Option<(i64, String)> = conn
                .prepare_cached(
                    "SELECT ts, json FROM events WHERE camera_id = ?1 AND kind = 'camera_status'
                     ORDER BY ts DESC LIMIT 1",
                )?
                .query_row([camera_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(CameraHealth {
                status: latest.map(|(ts, json)| (super::status_state(&json), ts)),
                last_seen_ms,
            })
        })
    }

    fn add_token(&self, hash: &str, owner: &TokenOwner) -> Result<()> {
        let conn = self.writer.locked();
        conn.prepare_cached(
            "INSERT OR IGNORE INTO tokens (sha256, role, name, created, expires)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            hash,
            owner.role.as_str(),
            owner.name,
            now_ms(),
            owner.expires_ms
        ])?;
        Ok(())
    }

    fn token(&self, hash: &str) -> Result<Option<TokenOwner>> {
        let row: Option<(String, String, Option<i64>)> = self.read(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT role, name, expires FROM tokens WHERE sha256 = ?1 AND revoked IS NULL",
                )?
                .query_row([hash], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?)
        })?;
        row.map(|(role, name, expires_ms)| {
            Ok(TokenOwner {
                role: parse_role(&role, &name)?,
                name,
                expires_ms,
            })
        })
        .transpose()
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        // sha256, role, name, created, expires, revoked.
        type Row = (String, String, String, i64, Option<i64>, Option<i64>);
        let rows: Vec<Row> = self.read(|conn| {
            let mut st = conn.prepare_cached(
                "SELECT sha256, role, name, created, expires, revoked FROM tokens
                     ORDER BY created, sha256",
            )?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        rows.into_iter()
            .map(|(hash, role, name, created_ms, expires_ms, revoked_ms)| {
                Ok(TokenRecord {
                    id: hash.chars().take(12).collect(),
                    role: parse_role(&role, &name)?,
                    name,
                    created_ms,
                    expires_ms,
                    revoked_ms,
                })
            })
            .collect()
    }

    fn revoke_tokens(&self, name: &str, at_ms: i64) -> Result<usize> {
        let conn = self.writer.locked();
        let n = conn
            .prepare_cached("UPDATE tokens SET revoked = ?2 WHERE name = ?1 AND revoked IS NULL")?
            .execute(params![name, at_ms])?;
        Ok(n)
    }

    fn append_audit(&self, e: &AuditEntry) -> Result<i64> {
        Self::append_audit_on(&self.writer.locked(), e)
    }

    fn purge(
        &self,
        now_ms: i64,
        policy: &RetentionPolicy,
        blobs: &BlobStore,
    ) -> Result<PurgeReport> {
        let mut total = PurgeReport::default();
        for class in EventClass::ALL {
            let Some(cutoff) = policy.cutoff_ms(class, now_ms) else {
                continue;
            };
            // Rows before `after` were deleted or are of another class.
            let mut after = (i64::MIN, i64::MIN);
            loop {
                let (report, last) = self.purge_batch(class, cutoff, after, blobs)?;
                total.add(&report);
                match last {
                    Some(last) => after = last,
                    None => break,
                }
            }
        }
        Ok(total)
    }

    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at, who, role, route, query, reason, results, detail FROM audit
                 WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![before.unwrap_or(i64::MAX), limit as i64], |r| {
                Ok(AuditRecord {
                    seq: r.get(0)?,
                    entry: AuditEntry {
                        at_ms: r.get(1)?,
                        who: r.get(2)?,
                        role: r.get(3)?,
                        route: r.get(4)?,
                        query: r.get(5)?,
                        reason: r.get(6)?,
                        results: r.get::<_, Option<i64>>(7)?.map(|n| n as u64),
                        detail: r.get(8)?,
                    },
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn track(&self, plate: &str, from_ms: i64, to_ms: i64, limit: usize) -> Result<Vec<Sighting>> {
        self.read(|conn| {
            let arms = SIGHTING_TABLES.map(|(table, level)| {
                format!(
                    "SELECT e.id, e.ts, e.camera_id, e.plate_confidence, e.snapshot_sha256,
                         e.clip_sha256
                     FROM {table} s CROSS JOIN events e ON e.rowid = s.ev
                     WHERE s.part IN (SELECT part FROM sighting_parts WHERE {level}
                                      AND max_ts >= ?2 AND min_ts <= ?3)
                         AND s.plate = ?1 AND s.ts >= ?2 AND s.ts <= ?3"
                )
            });
            let mut stmt = conn.prepare_cached(&format!(
                "{} ORDER BY 2, 1 LIMIT ?4",
                arms.join(" UNION ALL ")
            ))?;
            let rows = stmt.query_map(params![plate, from_ms, to_ms, limit as i64], |r| {
                Ok(Sighting {
                    event_id: r.get(0)?,
                    ts_ms: r.get(1)?,
                    camera_id: r.get(2)?,
                    confidence: r.get::<_, Option<f64>>(3)?.map(|c| c as f32),
                    snapshot: r.get(4)?,
                    clip: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn add_watch(&self, w: &NewWatch) -> Result<WatchEntry> {
        let conn = self.writer.locked();
        conn.prepare_cached(
            "INSERT INTO watchlist (pattern, mode, max_distance, reason, priority, expires,
                 created, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            w.pattern,
            w.mode.as_str(),
            w.max_distance.map(f64::from),
            w.reason,
            w.priority.as_str(),
            w.expires_ms,
            w.created_ms,
            w.created_by
        ])?;
        let id = conn.last_insert_rowid();
        self.refresh_matcher(&conn)?;
        Ok(WatchEntry {
            id,
            entry: w.clone(),
            removed_ms: None,
            removed_by: None,
        })
    }

    fn watchlist(&self, include_removed: bool) -> Result<Vec<WatchEntry>> {
        self.read(|conn| Self::watchlist_on(conn, include_removed))
    }

    fn remove_watch(&self, id: i64, who: &str, at_ms: i64) -> Result<Option<WatchEntry>> {
        let conn = self.writer.locked();
        let n = conn
            .prepare_cached(
                "UPDATE watchlist SET removed = ?2, removed_by = ?3
                 WHERE id = ?1 AND removed IS NULL",
            )?
            .execute(params![id, at_ms, who])?;
        if n == 0 {
            return Ok(None);
        }
        self.refresh_matcher(&conn)?;
        let sql = format!("SELECT {WATCH_COLUMNS} WHERE id = ?1");
        let entry = conn
            .prepare_cached(&sql)?
            .query_row([id], Self::watch_from_row)?
            .0;
        Ok(Some(entry))
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>> {
        self.read(|conn| {
            let order = if q.after.is_some() { "ASC" } else { "DESC" };
            let sql = format!(
                "SELECT {ALERT_COLUMNS}
                 WHERE (?1 IS NULL OR a.state = ?1) AND a.id < ?2 AND a.id > ?3
                 ORDER BY a.id {order} LIMIT ?4"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![
                q.state.map(AlertState::as_str),
                q.before.unwrap_or(i64::MAX),
                q.after.unwrap_or(i64::MIN),
                q.limit as i64
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(Self::alert_from_row(row)?);
            }
            Ok(out)
        })
    }

    fn alert(&self, id: i64) -> Result<Option<(Alert, Vec<AlertChange>)>> {
        self.read(|conn| {
            let Some(alert) = Self::alert_on(conn, id)? else {
                return Ok(None);
            };
            let mut stmt = conn.prepare_cached(
                "SELECT at, who, role, from_state, to_state, note FROM alert_changes
                 WHERE alert_id = ?1 ORDER BY seq",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut changes = Vec::new();
            for row in rows {
                let (at_ms, who, role, from, to, note) = row?;
                let state = |s: String| {
                    AlertState::parse(&s)
                        .ok_or_else(|| Error::Corrupt(format!("alert {id}: change to state {s:?}")))
                };
                changes.push(AlertChange {
                    at_ms,
                    who,
                    role,
                    from: state(from)?,
                    to: state(to)?,
                    note,
                });
            }
            Ok(Some((alert, changes)))
        })
    }

    fn change_alert(
        &self,
        id: i64,
        to: AlertState,
        note: Option<&str>,
        audit: &AuditEntry,
    ) -> Result<StateChange> {
        let mut conn = self.writer.locked();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(alert) = Self::alert_on(&tx, id)? else {
            return Ok(StateChange::NotFound);
        };
        let from = alert.state;
        if !from.may_become(to) {
            return Ok(StateChange::Refused(from));
        }
        tx.prepare_cached("UPDATE alerts SET state = ?2, updated = ?3 WHERE id = ?1")?
            .execute(params![id, to.as_str(), audit.at_ms])?;
        tx.prepare_cached(
            "INSERT INTO alert_changes (alert_id, at, who, role, from_state, to_state, note)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            id,
            audit.at_ms,
            audit.who,
            audit.role,
            from.as_str(),
            to.as_str(),
            note
        ])?;
        let mut audit = audit.clone();
        audit.detail = Some(format!("alert {id}: {} -> {}", from.as_str(), to.as_str()));
        Self::append_audit_on(&tx, &audit)?;
        tx.commit()?;
        Ok(StateChange::Changed(Box::new(Alert {
            state: to,
            updated_ms: audit.at_ms,
            ..alert
        })))
    }
}

/// The level-0 part of the plate index that ingest appends to.
#[derive(Debug)]
struct OpenPart {
    id: i64,
    rows: i64,
    min_ts: i64,
    max_ts: i64,
    added: bool,
}

impl OpenPart {
    /// The newest level-0 part while it has room for more than `full`
    /// sightings, else a new one numbered above every part.
    fn newest(conn: &Connection, full: i64) -> Result<OpenPart> {
        let newest = conn
            .prepare_cached(
                "SELECT part, rows, min_ts, max_ts FROM sighting_parts WHERE level = 0
                 ORDER BY part DESC LIMIT 1",
            )?
            .query_row([], |r| {
                Ok(OpenPart {
                    id: r.get(0)?,
                    rows: r.get(1)?,
                    min_ts: r.get(2)?,
                    max_ts: r.get(3)?,
                    added: false,
                })
            })
            .optional()?;
        match newest {
            Some(part) if part.rows < full => Ok(part),
            _ => Ok(OpenPart {
                id: conn
                    .prepare_cached("SELECT coalesce(max(part), 0) + 1 FROM sighting_parts")?
                    .query_row([], |r| r.get(0))?,
                rows: 0,
                min_ts: i64::MAX,
                max_ts: i64::MIN,
                added: false,
            }),
        }
    }

    fn add(&mut self, ts_ms: i64) {
        self.rows += 1;
        self.min_ts = self.min_ts.min(ts_ms);
        self.max_ts = self.max_ts.max(ts_ms);
        self.added = true;
    }

    /// Writes the part's count and time range, when sightings were added.
    fn save(&self, conn: &Connection) -> Result<()> {
        if self.added {
            conn.prepare_cached(
                "INSERT INTO sighting_parts (part, level, rows, min_ts, max_ts)
                 VALUES (?1, 0, ?2, ?3, ?4)
                 ON CONFLICT (part) DO UPDATE
                 SET rows = excluded.rows, min_ts = excluded.min_ts, max_ts = excluded.max_ts",
            )?
            .execute(params![self.id, self.rows, self.min_ts, self.max_ts])?;
        }
        Ok(())
    }
}

/// What `events.json` holds of an event: the rest is in the row's columns
/// (`id`, `kind`, `edge_id`, `camera_id`), put back by [`stored_event`].
/// Rows written before carry the whole event, and read back the same.
#[derive(serde::Serialize)]
struct StoredJson<'a> {
    #[serde(with = "time::serde::rfc3339")]
    ts: OffsetDateTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    plate: Option<&'a PlateInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vehicle: Option<&'a VehicleInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alarm: Option<&'a AlarmInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<&'a StatusInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<&'a str>,
}

impl<'a> StoredJson<'a> {
    fn of(e: &'a Event) -> Self {
        StoredJson {
            ts: e.ts,
            plate: e.plate.as_ref(),
            vehicle: e.vehicle.as_ref(),
            alarm: e.alarm.as_ref(),
            status: e.status.as_ref(),
            snapshot: e.snapshot.as_deref(),
        }
    }
}

/// The event of a row, as sent (without its snapshot): its JSON with the
/// columns `id`, `kind`, `edge_id` and `camera_id` put back.
fn stored_event(
    json: &str,
    id: &str,
    kind: String,
    edge_id: String,
    camera_id: String,
) -> Result<serde_json::Value> {
    let corrupt = |what: String| Error::Corrupt(format!("event {id}: stored JSON: {what}"));
    let mut event: serde_json::Value =
        serde_json::from_str(json).map_err(|e| corrupt(e.to_string()))?;
    let fields = event
        .as_object_mut()
        .ok_or_else(|| corrupt("not an object".into()))?;
    for (key, value) in [
        ("id", id.to_owned()),
        ("kind", kind),
        ("edge_id", edge_id),
        ("camera_id", camera_id),
    ] {
        fields.entry(key).or_insert(value.into());
    }
    Ok(event)
}

/// A search result from a row of `search_on`'s columns; `fuzzy_plate` is
/// the plate a fuzzy search asked for.
fn hit_from_row(row: &rusqlite::Row<'_>, fuzzy_plate: Option<&str>) -> Result<Hit> {
    let id: String = row.get(0)?;
    let json: String = row.get(2)?;
    let event = stored_event(&json, &id, row.get(6)?, row.get(7)?, row.get(8)?)?;
    let plate: Option<String> = row.get(5)?;
    Ok(Hit {
        event,
        ts_ms: row.get(1)?,
        snapshot: row.get(3)?,
        clip: row.get(4)?,
        distance: fuzzy_plate
            .zip(plate.as_deref())
            .map(|(q, p)| plate_distance(q, p)),
        id,
    })
}

/// The plate index's tables, each with the `sighting_parts` condition of
/// the parts it holds: level-0 parts, merged parts. A search seeks a table
/// only for its own parts.
const SIGHTING_TABLES: [(&str, &str); 2] =
    [("new_sightings", "level = 0"), ("sightings", "level > 0")];

/// Most cameras a search reads through an index arm each (see
/// `search_on`).
const CAMERA_ARMS: usize = 16;

/// The last event rowid that `camera_sightings` covers.
const CAMERAS_INDEXED: &str =
    "SELECT coalesce((SELECT value FROM store_meta WHERE key = 'cameras_indexed'), 0)";

/// The events `camera_sightings` does not cover yet, as `e`, read by rowid:
/// left to itself SQLite may walk `events_ts` instead, and for a camera
/// with no new events that is every event (57 ms at 1 M, measured).
const UNINDEXED_EVENTS: &str = "events e NOT INDEXED
    WHERE e.rowid > (SELECT coalesce((SELECT value FROM store_meta
                                      WHERE key = 'cameras_indexed'), 0))";

/// An expired event: rowid, ts, id, plate, snapshot and clip hashes,
/// camera.
type ExpiredRow = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// One event of a batch, made ready for its row outside the writer lock.
struct Row {
    id: String,
    kind: EventKind,
    edge_id: String,
    camera_id: String,
    ts_ms: i64,
    /// The canonical plate of a `plate_read`; `None` for other kinds.
    plate: Option<String>,
    display: Option<String>,
    confidence: Option<f64>,
    class: Option<String>,
    colour: Option<String>,
    snapshot: Option<BlobHash>,
    json: String,
}

impl Row {
    fn of(new: &NewEvent) -> Result<Row> {
        let e = &new.event;
        let json = serde_json::to_string(&StoredJson::of(e))
            .map_err(|err| Error::Corrupt(format!("event {}: {err}", e.id)))?;
        Ok(Row {
            id: e.id.clone(),
            kind: e.kind,
            edge_id: e.edge_id.clone(),
            camera_id: e.camera_id.clone(),
            ts_ms: (e.ts.unix_timestamp_nanos() / 1_000_000) as i64,
            plate: if e.kind == EventKind::PlateRead {
                e.plate.as_ref().map(|p| p.text.clone())
            } else {
                None
            },
            display: e.plate.as_ref().map(|p| p.display.clone()),
            confidence: e.plate.as_ref().map(|p| f64::from(p.confidence)),
            class: e.vehicle.as_ref().map(|v| v.class.to_lowercase()),
            colour: e
                .vehicle
                .as_ref()
                .and_then(|v| v.colour.as_ref())
                .map(|c| c.to_lowercase()),
            snapshot: new.snapshot.clone(),
            json,
        })
    }
}

/// One caller's batch waiting for the writer, and what became of it.
struct IngestJob {
    rows: Vec<Row>,
    result: Mutex<Option<Result<IngestOutcome>>>,
}

impl SqliteStore {
    /// Writes `group` (batches of callers waiting for the writer, in
    /// arrival order) in one transaction and hands each its outcome. When
    /// that transaction fails, each batch is tried again alone, so that one
    /// batch's error is not another's. Merging follows the commit.
    fn write_group(&self, conn: &mut Connection, group: &[Arc<IngestJob>]) {
        let received = now_ms();
        match self.write_batches(conn, group, received) {
            Ok(outcomes) => {
                for (job, mut outcome) in group.iter().zip(outcomes) {
                    outcome.seq = self.next_seq();
                    *job.result.locked() = Some(Ok(outcome));
                }
            }
            Err(e) if group.len() == 1 => *group[0].result.locked() = Some(Err(e)),
            Err(_) => {
                for job in group {
                    let alone = self
                        .write_batches(conn, std::slice::from_ref(job), received)
                        .map(|mut o| {
                            let mut outcome = o.pop().unwrap_or_default();
                            outcome.seq = self.next_seq();
                            outcome
                        });
                    *job.result.locked() = Some(alone);
                }
            }
        }
        // The batches are durable (or failed); merging is bookkeeping, in
        // transactions of its own, tried again after every commit.
        if let Err(e) = Self::merge_parts(conn, self.parts)
            .and_then(|()| Self::index_cameras(conn, self.parts.camera_chunk))
        {
            tracing::error!(
                "{}: index upkeep failed, tried again after the next batch: {e}",
                self.path.display()
            );
        }
        self.checkpointer.nudge();
    }

    /// The next [`IngestOutcome::seq`]; called under the writer lock, in
    /// commit order.
    fn next_seq(&self) -> u64 {
        self.commits.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stores the rows of `group` in one transaction; one outcome per job.
    fn write_batches(
        &self,
        conn: &mut Connection,
        group: &[Arc<IngestJob>],
        received: i64,
    ) -> Result<Vec<IngestOutcome>> {
        let matcher = self.matcher.read_locked().clone();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut part = OpenPart::newest(&tx, self.parts.rows)?;
        let mut new_plates: Vec<&str> = Vec::new();
        let mut outcomes = Vec::with_capacity(group.len());
        {
            let mut alert = tx.prepare_cached(
                "INSERT INTO alerts (kind, state, priority, event_id, watchlist_id, camera_id,
                     plate, ts, distance, created, updated)
                 VALUES (?1, 'new', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
            )?;
            let mut raise = |kind: AlertKind,
                             priority: Priority,
                             row: &Row,
                             watch: Option<WatchRef>,
                             distance: Option<f32>|
             -> Result<Alert> {
                alert.execute(params![
                    kind.as_str(),
                    priority.as_str(),
                    row.id,
                    watch.as_ref().map(|w| w.id),
                    row.camera_id,
                    row.plate,
                    row.ts_ms,
                    distance.map(f64::from),
                    received,
                ])?;
                Ok(Alert {
                    id: tx.last_insert_rowid(),
                    kind,
                    state: AlertState::New,
                    priority,
                    event_id: row.id.clone(),
                    camera_id: row.camera_id.clone(),
                    plate: row.plate.clone(),
                    ts_ms: row.ts_ms,
                    created_ms: received,
                    updated_ms: received,
                    watch,
                    distance,
                    snapshot: row.snapshot.clone(),
                    clip: None,
                })
            };
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, kind, edge_id, camera_id, ts, plate,
                     plate_display, plate_confidence, vehicle_class, colour,
                     snapshot_sha256, received, json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            let mut sighting = tx.prepare_cached(
                "INSERT INTO new_sightings (part, plate, ts, ev) VALUES (?1, ?2, ?3, ?4)",
            )?;
            let cameras_indexed: i64 = tx
                .prepare_cached(CAMERAS_INDEXED)?
                .query_row([], |r| r.get(0))?;
            let mut camera = tx.prepare_cached(
                "INSERT INTO camera_sightings (camera_id, ts, ev) VALUES (?1, ?2, ?3)",
            )?;
            for job in group {
                let mut outcome = IngestOutcome::default();
                for row in &job.rows {
                    let inserted = insert.execute(params![
                        row.id,
                        row.kind.as_str(),
                        row.edge_id,
                        row.camera_id,
                        row.ts_ms,
                        row.plate,
                        row.display,
                        row.confidence,
                        row.class,
                        row.colour,
                        row.snapshot,
                        received,
                        row.json,
                    ])?;
                    if inserted != 1 {
                        outcome.duplicates += 1;
                        continue;
                    }
                    outcome.accepted += 1;
                    let rowid = tx.last_insert_rowid();
                    if rowid <= cameras_indexed {
                        // A rowid freed by the purge, below the indexed
                        // range: indexed now, not with the next chunk.
                        camera.execute(params![row.camera_id, row.ts_ms, rowid])?;
                    }
                    if let Some(p) = row.plate.as_deref() {
                        sighting.execute(params![part.id, p, row.ts_ms, rowid])?;
                        part.add(row.ts_ms);
                        // The `plates` table gets it when its part is
                        // merged; the index at once (see `plates` in `open`).
                        if !self.index.contains(p) {
                            new_plates.push(p);
                        }
                        for (entry, distance) in matcher.matches(p, received) {
                            let watch = WatchRef {
                                id: entry.id,
                                pattern: entry.entry.pattern.clone(),
                                mode: entry.entry.mode,
                                reason: entry.entry.reason.clone(),
                            };
                            let a = raise(
                                AlertKind::Watchlist,
                                entry.entry.priority,
                                row,
                                Some(watch),
                                distance,
                            )?;
                            outcome.alerts.push(a);
                        }
                    }
                    if row.kind == EventKind::PanicAlarm {
                        let a = raise(AlertKind::PanicAlarm, Priority::Critical, row, None, None)?;
                        outcome.alerts.push(a);
                    }
                }
                outcomes.push(outcome);
            }
            part.save(&tx)?;
        }
        // Still under the writer lock: the index changes in commit order.
        self.index
            .commit_with(&new_plates, &[] as &[&str], || Ok(tx.commit()?))?;
        Ok(outcomes)
    }
}

impl SqliteStore {
    /// Adds the events past the camera index to it, in key order, once
    /// there are `chunk` of them (see the module notes).
    fn index_cameras(conn: &mut Connection, chunk: i64) -> Result<()> {
        let (indexed, last): (i64, i64) = conn
            .prepare_cached(&format!(
                "SELECT ({CAMERAS_INDEXED}), coalesce((SELECT max(rowid) FROM events), 0)"
            ))?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if last - indexed < chunk {
            return Ok(());
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO camera_sightings (camera_id, ts, ev)
             SELECT camera_id, ts, rowid FROM events WHERE rowid > ?1 AND rowid <= ?2
             ORDER BY camera_id, ts, rowid",
            params![indexed, last],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO store_meta (key, value) VALUES ('cameras_indexed', ?1)",
            [last],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Merges the full level-0 parts of the plate index into one level-1
    /// part once there are `parts.merge` of them (see the module notes).
    fn merge_parts(conn: &mut Connection, parts: Parts) -> Result<()> {
        let full: Vec<Value> = conn
            .prepare_cached(
                "SELECT part FROM sighting_parts WHERE level = 0 AND rows >= ?1 ORDER BY part",
            )?
            .query_map([parts.rows], |r| r.get(0).map(Value::Integer))?
            .collect::<rusqlite::Result<_>>()?;
        if full.len() < parts.merge {
            return Ok(());
        }
        let full = Rc::new(full);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let merged: i64 = tx.query_row(
            "SELECT coalesce(max(part), 0) + 1 FROM sighting_parts",
            [],
            |r| r.get(0),
        )?;
        let rows = tx.execute(
            "INSERT INTO sightings (part, plate, ts, ev)
             SELECT ?1, plate, ts, ev FROM new_sightings WHERE part IN rarray(?2)
             ORDER BY plate, ts, ev",
            params![merged, full],
        )?;
        // In key order, the plates table takes them in one pass.
        tx.execute(
            "INSERT OR IGNORE INTO plates (plate)
             SELECT DISTINCT plate FROM sightings WHERE part = ?1 ORDER BY plate",
            params![merged],
        )?;
        tx.execute(
            "INSERT INTO sighting_parts (part, level, rows, min_ts, max_ts)
             SELECT ?1, 1, ?2, min(min_ts), max(max_ts) FROM sighting_parts
             WHERE part IN rarray(?3)",
            params![merged, rows as i64, full],
        )?;
        let level_0: usize = tx.query_row(
            "SELECT count(*) FROM sighting_parts WHERE level = 0",
            [],
            |r| r.get(0),
        )?;
        if level_0 == full.len() {
            // All of them: SQLite empties a table without a WHERE clause by
            // freeing its pages, not row by row (a third of the merge's time).
            tx.execute("DELETE FROM new_sightings", [])?;
        } else {
            tx.execute(
                "DELETE FROM new_sightings WHERE part IN rarray(?1)",
                params![full],
            )?;
        }
        tx.execute(
            "DELETE FROM sighting_parts WHERE part IN rarray(?1)",
            params![full],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes up to [`PURGE_BATCH`] events of `class` with `ts < cutoff`
    /// after `(ts, rowid)` `after`, oldest first, in one transaction.
    /// Returns what it deleted and, unless it was the last batch, where
    /// the next one starts.
    fn purge_batch(
        &self,
        class: EventClass,
        cutoff: i64,
        after: (i64, i64),
        blobs: &BlobStore,
    ) -> Result<(PurgeReport, Option<(i64, i64)>)> {
        let hit =
            "EXISTS (SELECT 1 FROM alerts a WHERE a.event_id = e.id AND a.kind = 'watchlist')";
        let class_sql = match class {
            EventClass::PlainRead => format!("e.kind IN ('plate_read', 'vehicle') AND NOT {hit}"),
            EventClass::HotlistHit => format!("e.kind IN ('plate_read', 'vehicle') AND {hit}"),
            EventClass::Alarm => "e.kind = 'panic_alarm'".to_owned(),
            EventClass::Status => "e.kind = 'camera_status'".to_owned(),
        };
        let mut report = PurgeReport::default();
        let mut conn = self.writer.locked();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut rows: Vec<ExpiredRow> = Vec::new();
        {
            let sql = format!(
                "SELECT e.rowid, e.ts, e.id, e.plate, e.snapshot_sha256, e.clip_sha256,
                     e.camera_id
                 FROM events e INDEXED BY events_ts
                 WHERE e.ts < ?1 AND (e.ts, e.rowid) > (?2, ?3) AND {class_sql}
                 ORDER BY e.ts, e.rowid LIMIT ?4"
            );
            let mut stmt = tx.prepare_cached(&sql)?;
            let found =
                stmt.query_map(params![cutoff, after.0, after.1, PURGE_BATCH as i64], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                    ))
                })?;
            for row in found {
                rows.push(row?);
            }
        }
        let last = (rows.len() == PURGE_BATCH)
            .then(|| rows.last().map(|r| (r.1, r.0)))
            .flatten();
        let mut plates: Vec<String> = Vec::new();
        let mut hashes: Vec<BlobHash> = Vec::new();
        {
            let mut changes = tx.prepare_cached(
                "DELETE FROM alert_changes
                 WHERE alert_id IN (SELECT id FROM alerts WHERE event_id = ?1)",
            )?;
            let mut alerts = tx.prepare_cached("DELETE FROM alerts WHERE event_id = ?1")?;
            let mut events = tx.prepare_cached("DELETE FROM events WHERE rowid = ?1")?;
            let mut sighting = SIGHTING_TABLES
                .map(|(table, level)| {
                    tx.prepare_cached(&format!(
                        "DELETE FROM {table} AS s
                         WHERE s.part IN (SELECT part FROM sighting_parts WHERE {level}
                                          AND max_ts >= ?2 AND min_ts <= ?2)
                             AND s.plate = ?1 AND s.ts = ?2 AND s.ev = ?3"
                    ))
                })
                .into_iter()
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut camera = tx.prepare_cached(
                "DELETE FROM camera_sightings WHERE camera_id = ?1 AND ts = ?2 AND ev = ?3",
            )?;
            for (rowid, ts, id, plate, snapshot, clip, camera_id) in rows {
                changes.execute([&id])?;
                report.alerts += alerts.execute([&id])? as u64;
                events.execute([rowid])?;
                camera.execute(params![camera_id, ts, rowid])?;
                if let Some(p) = &plate {
                    for table in &mut sighting {
                        table.execute(params![p, ts, rowid])?;
                    }
                }
                report.count(class);
                plates.extend(plate);
                hashes.extend(snapshot);
                hashes.extend(clip);
            }
        }
        plates.sort();
        plates.dedup();
        hashes.sort();
        hashes.dedup();
        {
            // Parts the purge emptied go; then a plate is unused when no
            // part holds it.
            tx.prepare_cached(
                "DELETE FROM sighting_parts AS p WHERE p.min_ts < ?1
                 AND NOT EXISTS (SELECT 1 FROM sightings s WHERE s.part = p.part)
                 AND NOT EXISTS (SELECT 1 FROM new_sightings s WHERE s.part = p.part)",
            )?
            .execute([cutoff])?;
            let used = SIGHTING_TABLES.map(|(table, level)| {
                format!(
                    "EXISTS (SELECT 1 FROM {table} s
                             WHERE s.part IN (SELECT part FROM sighting_parts WHERE {level})
                                 AND s.plate = ?1)"
                )
            });
            let mut used = tx.prepare_cached(&format!("SELECT {}", used.join(" OR ")))?;
            let mut unused_plate = tx.prepare_cached("DELETE FROM plates WHERE plate = ?1")?;
            let mut removed = Vec::new();
            for p in plates {
                if !used.query_row([&p], |r| r.get::<_, bool>(0))? {
                    // A plate only level-0 parts held is not in the table.
                    unused_plate.execute([&p])?;
                    removed.push(p);
                }
            }
            plates = removed;
            report.plates = plates.len() as u64;
            let mut named = tx.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM events WHERE snapshot_sha256 = ?1)
                     OR EXISTS (SELECT 1 FROM events WHERE clip_sha256 = ?1)",
            )?;
            let mut unused = Vec::new();
            for h in hashes {
                if !named.query_row([&h], |r| r.get::<_, bool>(0))? {
                    unused.push(h);
                }
            }
            hashes = unused;
        }
        // Still inside the write transaction: no ingest commits until the
        // blobs are set aside and this commit is done.
        let ((), removed) = blobs.remove_with(&hashes, || {
            self.index
                .commit_with(&[] as &[&str], &plates, || Ok(tx.commit()?))
        })?;
        report.blobs = removed;
        Ok((report, last))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cursor;
    use safecity_core::{EventId, PlatePattern};

    fn read(n: u128, ts_ms: u64, plate: &str) -> NewEvent {
        read_by(n, ts_ms, plate, "c")
    }

    fn read_by(n: u128, ts_ms: u64, plate: &str, camera: &str) -> NewEvent {
        let parsed = safecity_core::parse_plate(plate).unwrap();
        let json = serde_json::json!({
            "id": EventId::new(ts_ms, n).to_string(),
            "kind": "plate_read",
            "edge_id": "e",
            "camera_id": camera,
            "ts": OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            "plate": {"text": parsed.text, "display": parsed.display, "confidence": 0.9,
                      "format": parsed.format, "bbox": [0, 0, 1, 1]},
        });
        NewEvent {
            event: serde_json::from_value(json).unwrap(),
            snapshot: None,
        }
    }

    fn query(plate: PlateQuery, limit: usize, after: Option<Cursor>) -> SearchQuery {
        SearchQuery {
            plate,
            from_ms: None,
            to_ms: None,
            cameras: None,
            near: None,
            class: None,
            colour: None,
            kind: None,
            limit,
            after,
        }
    }

    /// Callers that ingest at the same time share commits (group commit):
    /// each still gets the outcome of its own batch, every event is stored
    /// once, and each alert goes to the caller whose batch raised it.
    #[test]
    fn concurrent_batches_each_get_their_own_outcome() {
        const THREADS: u128 = 6;
        const BATCHES: u128 = 30;
        const SIZE: u128 = 40;
        // Thread t sends events [600 t, 600 t + 1200): each id but the
        // first and last 600 comes from two threads.
        const OFFSET: u128 = BATCHES * SIZE / 2;
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let watched = "007ABC02";
        store
            .add_watch(&NewWatch {
                pattern: watched.into(),
                mode: WatchMode::Exact,
                max_distance: None,
                reason: "r".into(),
                priority: Priority::High,
                expires_ms: None,
                created_ms: 0,
                created_by: "t".into(),
            })
            .unwrap();
        let event = |n: u128| {
            read(
                n,
                1_700_000_000_000 + n as u64 * 1000,
                &format!("{:03}ABC02", n % 97 + 1),
            )
        };
        let barrier = Arc::new(std::sync::Barrier::new(THREADS as usize));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    (0..BATCHES)
                        .map(|b| {
                            let ns: Vec<u128> =
                                (0..SIZE).map(|k| t * OFFSET + b * SIZE + k).collect();
                            let batch: Vec<NewEvent> = ns.iter().map(|&n| event(n)).collect();
                            let outcome = store.ingest(&batch).unwrap();
                            (batch, outcome)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let calls: Vec<(Vec<NewEvent>, IngestOutcome)> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();

        let distinct = (THREADS + 1) * OFFSET;
        let watched_events = (0..distinct).filter(|n| n % 97 == 6).count();
        let mut alerted = std::collections::HashSet::new();
        for (batch, outcome) in &calls {
            assert_eq!(outcome.accepted + outcome.duplicates, SIZE as u64);
            for a in &outcome.alerts {
                assert!(
                    batch.iter().any(|e| e.event.id == a.event_id),
                    "alert of another batch"
                );
                assert_eq!(a.plate.as_deref(), Some(watched));
                assert!(
                    alerted.insert(a.event_id.clone()),
                    "two alerts for one event"
                );
            }
        }
        let accepted: u64 = calls.iter().map(|(_, o)| o.accepted).sum();
        assert_eq!(accepted, distinct as u64);
        assert_eq!(alerted.len(), watched_events);
        // Stored once each: a second pass finds every event a duplicate.
        for (batch, _) in calls.iter().step_by(7) {
            let again = store.ingest(batch).unwrap();
            assert_eq!((again.accepted, again.alerts.len()), (0, 0));
        }
        let page = store
            .search(&query(PlateQuery::Exact(watched.into()), 1000, None))
            .unwrap();
        assert_eq!(page.hits.len(), watched_events);
    }

    #[test]
    fn pages_break_ties_on_time_by_id_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        // Five reads in the same millisecond, one later.
        let mut batch: Vec<NewEvent> = (0..5).map(|n| read(n, 1000, "123ABC02")).collect();
        batch.push(read(9, 2000, "123ABC02"));
        batch.push(read(10, 1500, "777KXM17"));
        assert_eq!(store.ingest(&batch).unwrap().accepted, 7);
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.ingest(&batch[..2]).unwrap().duplicates, 2);

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .search(&query(PlateQuery::Exact("123ABC02".into()), 2, after))
                .unwrap();
            seen.extend(page.hits.iter().map(|h| (h.ts_ms, h.id.clone())));
            match page.next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen.len(), 6);
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, sorted);

        let wildcard = PlateQuery::Wildcard(PlatePattern::parse("*K*").unwrap());
        assert_eq!(
            store.search(&query(wildcard, 50, None)).unwrap().hits.len(),
            1
        );
        let fuzzy = PlateQuery::Fuzzy {
            plate: "777KXMI7".into(),
            max_distance: 0.5,
        };
        let hits = store.search(&query(fuzzy, 50, None)).unwrap().hits;
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].distance, Some(0.5));
    }

    #[test]
    fn a_stored_event_reads_back_as_sent_in_either_json_form() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut new = read_by(1, 1000, "123ABC02", "cam-7");
        new.event.vehicle = serde_json::from_value(serde_json::json!({
            "class": "car", "colour": "red", "confidence": 0.8, "bbox": [1, 2, 3, 4],
            "track_id": 9
        }))
        .unwrap();
        store.ingest(std::slice::from_ref(&new)).unwrap();
        // As JSON text, the way it arrives (f32 confidences written short).
        let sent: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&new.event).unwrap()).unwrap();
        let found = || {
            let hits = store
                .search(&query(PlateQuery::Exact("123ABC02".into()), 5, None))
                .unwrap()
                .hits;
            assert_eq!(hits.len(), 1);
            hits[0].event.clone()
        };
        assert_eq!(found(), sent);
        // The columns are not in the stored JSON.
        let json = |store: &SqliteStore| -> String {
            store
                .writer
                .locked()
                .query_row("SELECT json FROM events", [], |r| r.get(0))
                .unwrap()
        };
        assert!(!json(&store).contains("cam-7"), "{}", json(&store));
        // A row written whole (as before) reads the same.
        store
            .writer
            .locked()
            .execute("UPDATE events SET json = ?1", [sent.to_string()])
            .unwrap();
        assert_eq!(found(), sent);
    }

    #[test]
    fn the_audit_log_refuses_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let entry = AuditEntry {
            at_ms: 1,
            who: "detective".into(),
            role: "investigator".into(),
            route: "GET /api/v1/search".into(),
            query: "plate=1&reason=r".into(),
            reason: Some("r".into()),
            results: Some(3),
            detail: None,
        };
        let seq = store.append_audit(&entry).unwrap();
        let conn = store.writer.locked();
        for sql in ["UPDATE audit SET who = 'x'", "DELETE FROM audit"] {
            let err = conn.execute(sql, []).unwrap_err().to_string();
            assert!(err.contains("append-only"), "{err}");
        }
        drop(conn);
        assert_eq!(store.audit(None, 10).unwrap()[0].seq, seq);
        assert_eq!(store.audit(None, 10).unwrap()[0].entry, entry);
    }

    #[test]
    fn an_older_database_moves_its_plate_reads_into_a_part() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let batch = [
            read(1, 3000, "123ABC02"),
            read(2, 1000, "123ABC02"),
            read(3, 2000, "777KXM17"),
        ];
        store.ingest(&batch).unwrap();
        drop(store);
        let file = dir.path().join("safecity.sqlite3");
        // What version 2 had: the reads and cameras in indexes of `events`.
        Connection::open(&file)
            .unwrap()
            .execute_batch(
                "DROP TABLE sightings; DROP TABLE new_sightings; DROP TABLE sighting_parts;
                 DROP TABLE camera_sightings; DROP TABLE store_meta;
                 CREATE INDEX events_plate_ts_id ON events (plate, ts, id);
                 CREATE INDEX events_camera_ts ON events (camera_id, ts);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let track = store.track("123ABC02", 0, i64::MAX, 10).unwrap();
        let times: Vec<i64> = track.iter().map(|s| s.ts_ms).collect();
        assert_eq!(times, [1000, 3000]);
        let mut by_camera = query(PlateQuery::Any, 10, None);
        by_camera.cameras = Some(vec!["c".into()]);
        assert_eq!(store.search(&by_camera).unwrap().hits.len(), 3);
        assert_eq!(store.camera_health("c").unwrap().last_seen_ms, Some(3000));
        let conn = Connection::open(&file).unwrap();
        let old: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master
                 WHERE name LIKE 'events_plate%' OR name = 'events_camera_ts'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
        let parts: (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT level, rows, min_ts, max_ts FROM sighting_parts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .unwrap();
        assert_eq!(parts, (1, 3, 1000, 3000));
        let indexed: (i64, i64) = conn
            .query_row(
                "SELECT (SELECT count(*) FROM camera_sightings),
                        (SELECT value FROM store_meta WHERE key = 'cameras_indexed')",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(indexed, (3, 3));
    }

    /// Small parts, so that a few hundred reads fill and merge many: every
    /// search, track and purge must give what a scan of the reads gives,
    /// across merges, late reads and reopening.
    #[test]
    fn small_parts_fill_merge_and_answer_as_a_scan_does() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            let mut store = SqliteStore::open(dir.path()).unwrap();
            store.parts = Parts {
                rows: 5,
                merge: 3,
                camera_chunk: 7,
            };
            store
        };
        let plates = [
            "123ABC02", "777KXM17", "555BBB01", "100AAA05", "321CBA02", "777KXM18",
        ];
        let mut rng = StdRng::seed_from_u64(7);
        let cameras = ["c1", "c2", "c3"];
        // (plate, ts, id, camera) of every read stored.
        let mut stored: Vec<(String, i64, String, String)> = Vec::new();
        let mut store = open();
        let mut n = 0u128;
        let mut clock = 1_000_000i64;
        for round in 0..40 {
            let size = rng.gen_range(1..12);
            let batch: Vec<NewEvent> = (0..size)
                .map(|_| {
                    n += 1;
                    clock += rng.gen_range(0..1000);
                    // One read in five arrives late, from up to a minute back.
                    let ts = if rng.gen_range(0..5) == 0 {
                        clock - rng.gen_range(0..60_000)
                    } else {
                        clock
                    };
                    let plate = plates[rng.gen_range(0..plates.len())];
                    read_by(n, ts as u64, plate, cameras[rng.gen_range(0..3)])
                })
                .collect();
            store.ingest(&batch).unwrap();
            for e in &batch {
                let ts = (e.event.ts.unix_timestamp_nanos() / 1_000_000) as i64;
                let plate = e.event.plate.as_ref().unwrap().text.clone();
                stored.push((plate, ts, e.event.id.clone(), e.event.camera_id.clone()));
            }
            if round % 13 == 12 {
                drop(store);
                store = open();
            }
            let plate = plates[rng.gen_range(0..plates.len())];
            let from = rng.gen_range(1_000_000..clock.max(1_000_001));
            let to = from + rng.gen_range(0..30_000);
            check(&store, &stored, plate, from, to);
            let camera = cameras[rng.gen_range(0..3)];
            check_camera(&store, &stored, &[camera], Some(plate), from, to);
            check_camera(&store, &stored, &[camera, "c3"], None, from, to);
            // More cameras than index arms: one arm and a sort.
            let many: Vec<String> = (0..CAMERA_ARMS).map(|i| format!("x{i}")).collect();
            let mut many: Vec<&str> = many.iter().map(String::as_str).collect();
            many.extend(["c1", "c2"]);
            check_camera(&store, &stored, &many, None, from, to);
        }
        let levels = |store: &SqliteStore| -> Vec<i64> {
            let conn = store.writer.locked();
            let mut stmt = conn
                .prepare("SELECT level FROM sighting_parts ORDER BY part")
                .unwrap();
            let levels = stmt.query_map([], |r| r.get(0)).unwrap();
            levels.collect::<rusqlite::Result<_>>().unwrap()
        };
        // Every read is in exactly one part, and every part is listed.
        let sightings = |store: &SqliteStore| -> (usize, usize) {
            let conn = store.writer.locked();
            let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
            (
                count(
                    "SELECT (SELECT count(*) FROM sightings)
                          + (SELECT count(*) FROM new_sightings)",
                ) as usize,
                count(
                    "SELECT (SELECT count(*) FROM sightings
                             WHERE part NOT IN (SELECT part FROM sighting_parts WHERE level > 0))
                          + (SELECT count(*) FROM new_sightings
                             WHERE part NOT IN (SELECT part FROM sighting_parts WHERE level = 0))",
                ) as usize,
            )
        };
        assert_eq!(sightings(&store), (stored.len(), 0));
        let before = levels(&store);
        assert!(
            before.iter().filter(|&&l| l == 1).count() >= 3,
            "{before:?}"
        );
        assert!(
            before.iter().filter(|&&l| l == 0).count() < 3 + 1,
            "{before:?}"
        );

        // Purge everything before the middle read; whole parts empty.
        let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
        let mut times: Vec<i64> = stored.iter().map(|s| s.1).collect();
        times.sort();
        let cutoff = times[times.len() / 2];
        let policy = RetentionPolicy {
            plate_reads_days: Some(1),
            ..RetentionPolicy::default()
        };
        let now = cutoff + 24 * 3600 * 1000;
        let report = store.purge(now, &policy, &blobs).unwrap();
        stored.retain(|s| s.1 >= cutoff);
        assert_eq!(report.plate_reads as usize, times.len() / 2);
        assert!(levels(&store).len() < before.len(), "{before:?}");
        assert_eq!(sightings(&store), (stored.len(), 0));
        for plate in plates {
            check(&store, &stored, plate, i64::MIN, i64::MAX);
            check(&store, &stored, plate, cutoff, cutoff + 20_000);
        }
        for camera in cameras {
            check_camera(&store, &stored, &[camera], None, i64::MIN, i64::MAX);
        }
        // A plate whose reads are all gone leaves the plate index.
        let left: std::collections::BTreeSet<&str> = stored.iter().map(|s| s.0.as_str()).collect();
        let wildcard = PlateQuery::Wildcard(PlatePattern::parse("*").unwrap());
        assert_eq!(store.index.matching(&wildcard).len(), left.len());
        drop(store);
        let store = open();
        assert_eq!(store.index.matching(&wildcard).len(), left.len());
        for plate in plates {
            check(&store, &stored, plate, i64::MIN, i64::MAX);
        }
        for camera in cameras {
            check_camera(&store, &stored, &[camera], None, i64::MIN, i64::MAX);
        }

        // Purge it all: new events then take rowids the camera index has
        // passed already, and must be found all the same.
        let later = clock + 48 * 3600 * 1000;
        store.purge(later, &policy, &blobs).unwrap();
        stored.clear();
        assert_eq!(sightings(&store), (0, 0));
        let batch: Vec<NewEvent> = (0..3)
            .map(|i| read_by(n + 1 + i, (clock + 1) as u64, "123ABC02", "c1"))
            .collect();
        store.ingest(&batch).unwrap();
        for e in &batch {
            stored.push((
                "123ABC02".into(),
                clock + 1,
                e.event.id.clone(),
                "c1".into(),
            ));
        }
        check(&store, &stored, "123ABC02", i64::MIN, i64::MAX);
        check_camera(&store, &stored, &["c1"], None, i64::MIN, i64::MAX);
    }

    /// Searches and tracks `plate` in `[from, to]` and checks both against
    /// a scan of `stored`.
    fn check(
        store: &SqliteStore,
        stored: &[(String, i64, String, String)],
        plate: &str,
        from: i64,
        to: i64,
    ) {
        let mut want: Vec<(i64, String)> = stored
            .iter()
            .filter(|s| s.0 == plate && s.1 >= from && s.1 <= to)
            .map(|s| (s.1, s.2.clone()))
            .collect();
        want.sort();
        let track: Vec<(i64, String)> = store
            .track(plate, from, to, 10_000)
            .unwrap()
            .into_iter()
            .map(|s| (s.ts_ms, s.event_id))
            .collect();
        assert_eq!(track, want, "track {plate} in [{from}, {to}]");
        let mut q = query(PlateQuery::Exact(plate.into()), 7, None);
        q.from_ms = Some(from);
        q.to_ms = Some(to);
        let found = every_page(store, q);
        assert_eq!(found, want, "search {plate} in [{from}, {to}]");
    }

    /// `(time, id)` of every hit of `q`, page by page, oldest first.
    fn every_page(store: &SqliteStore, mut q: SearchQuery) -> Vec<(i64, String)> {
        let mut found = Vec::new();
        loop {
            let page = store.search(&q).unwrap();
            found.extend(page.hits.iter().map(|h| (h.ts_ms, h.id.clone())));
            match page.next {
                Some(c) => q.after = Some(c),
                None => break,
            }
        }
        found.reverse();
        found
    }

    /// Searches `cameras` (and `plate`) in `[from, to]`, and each camera's
    /// last sighting, and checks them against a scan of `stored`.
    fn check_camera(
        store: &SqliteStore,
        stored: &[(String, i64, String, String)],
        cameras: &[&str],
        plate: Option<&str>,
        from: i64,
        to: i64,
    ) {
        let mut want: Vec<(i64, String)> = stored
            .iter()
            .filter(|s| cameras.contains(&s.3.as_str()) && s.1 >= from && s.1 <= to)
            .filter(|s| plate.is_none_or(|p| s.0 == p))
            .map(|s| (s.1, s.2.clone()))
            .collect();
        want.sort();
        want.dedup();
        let plate_query = plate.map_or(PlateQuery::Any, |p| PlateQuery::Exact(p.into()));
        let mut q = query(plate_query, 5, None);
        q.cameras = Some(cameras.iter().map(|c| c.to_string()).collect());
        q.from_ms = Some(from);
        q.to_ms = Some(to);
        let found = every_page(store, q);
        assert_eq!(
            found, want,
            "search {cameras:?} {plate:?} in [{from}, {to}]"
        );
        for camera in cameras {
            let last = stored.iter().filter(|s| s.3 == *camera).map(|s| s.1).max();
            assert_eq!(store.camera_health(camera).unwrap().last_seen_ms, last);
        }
    }

    #[test]
    fn tokens_made_before_expiry_keep_working_and_can_be_revoked() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("safecity.sqlite3")).unwrap();
            conn.execute_batch(
                "CREATE TABLE tokens (sha256 TEXT PRIMARY KEY, role TEXT NOT NULL,
                     name TEXT NOT NULL, created INTEGER NOT NULL);
                 INSERT INTO tokens VALUES ('abc123', 'edge', 'edge-alm-01', 5);
                 PRAGMA user_version = 3;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let owner = store.token("abc123").unwrap().unwrap();
        assert_eq!(
            (owner.name.as_str(), owner.expires_ms),
            ("edge-alm-01", None)
        );
        assert_eq!(store.revoke_tokens("edge-alm-01", 9).unwrap(), 1);
        assert_eq!(store.token("abc123").unwrap(), None);
        let listed = store.tokens().unwrap();
        assert_eq!((listed[0].created_ms, listed[0].revoked_ms), (5, Some(9)));
    }

    #[test]
    fn a_version_1_database_gets_the_new_tables_and_keeps_its_audit_log() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = Connection::open(dir.path().join("safecity.sqlite3")).unwrap();
            conn.execute_batch(
                "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
                     who TEXT NOT NULL, role TEXT NOT NULL, route TEXT NOT NULL,
                     query TEXT NOT NULL, reason TEXT, results INTEGER);
                 INSERT INTO audit (at, who, role, route, query) VALUES (1, 'a', 'admin', 'GET /x', '');
                 PRAGMA user_version = 1;",
            )
            .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut entry = store.audit(None, 10).unwrap()[0].entry.clone();
        entry.detail = Some("d".into());
        store.append_audit(&entry).unwrap();
        drop(store);
        let store = SqliteStore::open(dir.path()).unwrap();
        let records = store.audit(None, 10).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].entry.detail.as_deref(), Some("d"));
        assert!(store.watchlist(true).unwrap().is_empty());
    }
}

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

mod alerts;
mod ingest;
mod purge;
mod schema;
mod search;
#[cfg(test)]
mod tests;

use ingest::*;
use schema::*;
use search::*;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, ToSql, TransactionBehavior};
use safecity_core::clock::now_ms;
use safecity_core::sync::{Locked, ReadWriteLocked};
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

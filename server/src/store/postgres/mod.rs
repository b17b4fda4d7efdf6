//! The production backend: PostgreSQL.
//!
//! Selected with `[store] backend = "postgres"` and `url` in the
//! configuration, `--postgres URL` or `SAFECITY_POSTGRES_URL`. Snapshot and
//! clip bytes stay in the [`BlobStore`] under the data directory; the
//! database holds everything else. The database user must be allowed to
//! create tables in its schema: the schema is created at the first start,
//! and a partition of `events` each time an event of a new month arrives.
//!
//! # Schema
//!
//! ```text
//! events       PARTITION BY RANGE (ts): one partition per calendar month (UTC),
//!              events_YYYY_MM, created on demand at ingest for the years
//!              2000..=2199, plus events_default for any other time.
//!              PRIMARY KEY (shard_key, ts, id); indexes (ts, id),
//!              (camera_id, ts) and partial ones on the blob hashes
//! event_ids    id PRIMARY KEY, ts, shard_key: every stored event id once
//! plates       distinct canonical plates, loaded into the in-memory PlateIndex
//! cameras, tokens (SHA-256 of each token), watchlist, watchlist_version,
//! alerts, alert_changes, audit (append-only: a trigger refuses UPDATE,
//! DELETE and TRUNCATE), safecity_schema (the schema version)
//! ```
//!
//! A primary key of a partitioned table must include the partition key, so
//! `events` alone cannot refuse a second row with the same id at another
//! time. Idempotency comes from `event_ids` instead: an ingest inserts the
//! batch's ids there with `ON CONFLICT DO NOTHING RETURNING id`, and only
//! the ids that come back are new; their rows go into `events` in the same
//! transaction. `event_ids` also says where an id's row is (`ts` prunes the
//! partitions, `shard_key` picks the shard), for snapshot and clip look-ups.
//!
//! `shard_key` is the canonical plate for plate reads and `camera:ID` for
//! every other event (no plate contains `:`), so the primary key
//! `(shard_key, ts, id)` is also the `(plate, time)` index of sightings.
//! Text that is compared or ordered (ids, plates) uses the `"C"` collation,
//! so order is bytewise, as in the embedded store, and `LIKE 'PREFIX%'`
//! can use the index whatever the database's locale.
//!
//! # Distribution key for scale-out (Citus)
//!
//! The schema is ready to be distributed without changes:
//!
//! | table | Citus | key |
//! |---|---|---|
//! | `events` | distributed | `shard_key` (hash) |
//! | `plates` | distributed, co-located with `events` | `plate` (hash) |
//! | `event_ids` | distributed | `id` (hash) |
//! | `cameras`, `tokens`, `watchlist`, `watchlist_version` | reference (a copy on every node) | |
//! | `alerts`, `alert_changes`, `audit`, `safecity_schema` | local to the coordinator | |
//!
//! The key is the plate because the investigators' questions are about
//! plates: an exact search and a trajectory (`track`) are a single-shard
//! index scan on `(shard_key, ts)`, and a wildcard or fuzzy search finds its
//! plates in the co-located `plates` shard and then reads sightings on the
//! same node. Hashing spreads ingest evenly: a city has many plates and no
//! single plate is more than a sliver of the reads. Events without a plate
//! (vehicles, alarms, status) are keyed by camera, which keeps a pillar's
//! alarms together. `camera_id` was the alternative: it would make
//! "which cars passed these cameras" single-shard, but every plate query
//! would fan out to all shards, and one busy camera would make a hot shard.
//! Time-window and camera searches fan out to every shard, in parallel, and
//! each shard prunes by time partition. The small, rarely written tables
//! that every node joins or checks are reference tables; alerts and the
//! audit log are low-volume and need one sequence, so they stay on the
//! coordinator. Monthly time partitions are kept under distribution, and a
//! retention job may drop whole old partitions.
//!
//! # Durability
//!
//! A batch is one transaction, with its `event_ids`, `plates` and the
//! alerts it raises, and [`Store::ingest`] returns only after `COMMIT`
//! returns. Each connection checks `synchronous_commit` when it opens and
//! turns it back `on` (the default) if the server set it `off`, so a
//! commit is flushed to the write-ahead log (and to synchronous replicas,
//! where configured) before it is acknowledged.
//!
//! A connection the database ended (a restart, an operator) is closed
//! when a call fails on it, not lent again; one that sat idle for
//! `CHECK_AFTER_IDLE` (2 s) is checked with an empty query before it is lent.
//! So after a restart at most the calls that met a dead connection fail,
//! and the server reconnects without being restarted itself.
//!
//! Alerts get their ids in commit order: an ingest that raises alerts takes
//! a transaction-level advisory lock before it inserts them, so the live
//! stream's replay by id never skips an alert committed late. The active
//! watchlist is kept in memory as a [`Matcher`]; each ingest reads
//! `watchlist_version` (bumped by every change, from any server) and
//! reloads the watchlist when it moved.
//!
//! # Search
//!
//! Exact searches and trajectories read the primary key. Wildcard and
//! fuzzy searches ask the in-memory [`PlateIndex`] for the matching plates
//! (loaded from `plates` at connect, then changed by this server's ingests
//! and purges after each commit, as in the embedded store) and read their
//! sightings by `shard_key`. Results are ordered by `(ts, id)`, newest
//! first, with a keyset cursor.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, GenericClient, NoTls, Statement};

use super::pg_tls::Connector;
use safecity_core::{plate_distance, EventKind};
use time::OffsetDateTime;

use super::Store;
use super::PURGE_BATCH;
use crate::blobs::BlobStore;
use crate::config::redact_url;
use crate::error::{Error, Result};
use crate::model::BlobHash;
use crate::model::Sighting;
use crate::model::{
    cameras_near, parse_role, AuditEntry, AuditRecord, Camera, CameraHealth, CameraKind,
    EventBlobs, Hit, IngestOutcome, NewEvent, PlateQuery, SearchPage, SearchQuery, TokenOwner,
    TokenRecord,
};
use crate::model::{
    Alert, AlertChange, AlertKind, AlertQuery, AlertState, NewWatch, Priority, StateChange,
    WatchEntry, WatchMode, WatchRef,
};
use crate::model::{EventClass, PurgeReport, RetentionPolicy};
use crate::plate_index::PlateIndex;
use crate::watchlist::Matcher;

mod pool;
mod purge;
mod rows;
mod schema;
mod search;
#[cfg(test)]
mod tests;

use pool::*;
use rows::*;
use safecity_core::clock::now_ms;
use safecity_core::sync::{Locked, ReadWriteLocked};
use schema::*;
use search::*;

/// The PostgreSQL store: a pool of connections to one database.
pub struct PostgresStore {
    pool: Pool,
    /// The active watchlist and the `watchlist_version` it was read at.
    matcher: RwLock<(i64, Arc<Matcher>)>,
    /// Months (`year * 12 + month - 1`) whose partition is known to exist.
    partitions: Mutex<HashSet<i32>>,
    /// The `plates` table as this server changed it.
    index: PlateIndex,
    /// Ingest calls committed since open ([`IngestOutcome::seq`]); held
    /// across each ingest commit, so the count follows commit order.
    commits: Mutex<u64>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.pool.url)
            .finish()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.pool.state.locked().idle);
        if idle.is_empty() {
            return;
        }
        // A client closes by blocking on its own runtime, which must not
        // happen on an async thread: close them on a thread of their own.
        let _ = std::thread::Builder::new()
            .name("postgres-close".into())
            .spawn(move || drop(idle))
            .map(|t| t.join());
    }
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in milliseconds: the
/// times both `time` and PostgreSQL hold. Bounds outside are clamped.
const MIN_MS: i64 = -62_167_219_200_000;
const MAX_MS: i64 = 253_402_300_799_999;

/// Milliseconds since 1970 as a `timestamptz` value.
fn at(ms: i64) -> OffsetDateTime {
    safecity_core::clock::utc(ms.clamp(MIN_MS, MAX_MS))
}

/// A `timestamptz` value as milliseconds since 1970.
fn ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos().div_euclid(1_000_000)) as i64
}

/// PostgreSQL text cannot hold NUL characters; free-text fields drop them.
fn no_nul(s: &str) -> String {
    s.replace('\0', "")
}

/// An event of a batch, ready for the insert.
struct Row<'a> {
    new: &'a NewEvent,
    ts_ms: i64,
    shard_key: String,
    plate: Option<&'a str>,
    json: String,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`
    /// or a `key=value` string) and creates the schema when missing.
    ///
    /// A server that cannot be reached, or that refuses the login, is an
    /// [`Error::Connect`] naming the URL without its password.
    pub fn connect(url: &str) -> Result<PostgresStore> {
        let redacted = redact_url(url);
        let (url, connector) = super::pg_tls::split(url, &redacted)?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| Error::Config(format!("store.url {redacted}: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // As libpq does: a password left out of the URL comes from the
        // environment, where the process list does not show it.
        if config.get_password().is_none() {
            if let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty()) {
                config.password(password.as_encoded_bytes());
            }
        }
        if config.get_application_name().is_none() {
            config.application_name("safecity-server");
        }
        let store = PostgresStore {
            pool: Pool {
                config,
                connector,
                url: redacted,
                state: Mutex::new(PoolState {
                    idle: Vec::new(),
                    open: 0,
                }),
                returned: Condvar::new(),
            },
            matcher: RwLock::new((i64::MIN, Arc::new(Matcher::default()))),
            partitions: Mutex::new(HashSet::new()),
            index: PlateIndex::default(),
            commits: Mutex::new(0),
        };
        store.pool.with(Self::migrate)?;
        let plates: Vec<String> = store.pool.with(|conn| {
            Ok(conn
                .client
                .query("SELECT plate FROM plates", &[])?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        store.index.apply(&plates, &[] as &[&str]);
        // This month's and the next two months' partitions, ahead of need.
        let now = now_ms();
        let month = 31 * 24 * 3600 * 1000;
        store.ensure_partitions([now, now + month, now + 2 * month].into_iter())?;
        match store.tls_version()? {
            Some(version) => tracing::info!(url = %store.pool.url, "PostgreSQL over {version}"),
            None => {
                tracing::info!(url = %store.pool.url, "PostgreSQL over an unencrypted connection")
            }
        }
        Ok(store)
    }

    /// The URL connected to, without its password.
    pub fn url(&self) -> &str {
        &self.pool.url
    }

    /// The TLS version of a connection to the database (`TLSv1.3`), or
    /// `None` when it is not encrypted; from the server's `pg_stat_ssl`.
    pub fn tls_version(&self) -> Result<Option<String>> {
        self.pool.with(|conn| {
            let row = conn.client.query_opt(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// The active watchlist, reloaded when another change was committed.
    fn current_matcher(
        &self,
        tx: &mut impl GenericClient,
        stmts: &mut HashMap<String, Statement>,
    ) -> Result<Arc<Matcher>> {
        let st = stmt(stmts, tx, "SELECT version FROM watchlist_version")?;
        let version: i64 = tx.query_one(&st, &[])?.get(0);
        {
            let cached = self.matcher.read_locked();
            if cached.0 == version {
                return Ok(cached.1.clone());
            }
        }
        let matcher = Arc::new(Matcher::new(watchlist_on(tx, false)?));
        *self.matcher.write_locked() = (version, matcher.clone());
        Ok(matcher)
    }
}

impl Store for PostgresStore {
    fn ping(&self) -> Result<()> {
        self.pool.with(|conn| {
            conn.client.simple_query("SELECT 1")?;
            Ok(())
        })
    }

    fn ingest(&self, events: &[NewEvent]) -> Result<IngestOutcome> {
        let received = now_ms();
        let mut outcome = IngestOutcome::default();
        // The first of each id in the batch; later ones are duplicates.
        let mut seen = HashSet::with_capacity(events.len());
        let mut rows: Vec<Row<'_>> = Vec::with_capacity(events.len());
        for new in events {
            let e = &new.event;
            if !seen.insert(e.id.as_str()) {
                continue;
            }
            let plate = if e.kind == EventKind::PlateRead {
                e.plate.as_ref().map(|p| p.text.as_str())
            } else {
                None
            };
            rows.push(Row {
                new,
                ts_ms: (e.ts.unix_timestamp_nanos().div_euclid(1_000_000)) as i64,
                shard_key: match plate {
                    Some(p) => p.to_owned(),
                    None => format!("camera:{}", e.camera_id),
                },
                plate,
                json: serde_json::to_string(e)
                    .map_err(|err| Error::Corrupt(format!("event {}: {err}", e.id)))?,
            });
        }
        self.ensure_partitions(rows.iter().map(|r| r.ts_ms))?;
        self.pool.with(|conn| {
            let Conn { client, stmts, .. } = conn;
            let mut tx = client.transaction()?;
            let matcher = self.current_matcher(&mut tx, stmts)?;

            let st = stmt(stmts, &mut tx, INSERT_IDS)?;
            let ids: Vec<&str> = rows.iter().map(|r| r.new.event.id.as_str()).collect();
            let times: Vec<OffsetDateTime> = rows.iter().map(|r| at(r.ts_ms)).collect();
            let keys: Vec<&str> = rows.iter().map(|r| r.shard_key.as_str()).collect();
            let fresh: HashSet<String> = tx
                .query(&st, &[&ids, &times, &keys])?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let new_rows: Vec<&Row<'_>> = rows
                .iter()
                .filter(|r| fresh.contains(r.new.event.id.as_str()))
                .collect();
            outcome.accepted = new_rows.len() as u64;
            outcome.duplicates = events.len() as u64 - outcome.accepted;
            // Numbered in commit order (see `commits`).
            let commit = |tx: postgres::Transaction<'_>| -> Result<u64> {
                let mut n = self.commits.locked();
                tx.commit()?;
                *n += 1;
                Ok(*n)
            };
            if new_rows.is_empty() {
                outcome.seq = commit(tx)?;
                return Ok(());
            }

            let col = |f: &dyn Fn(&Row<'_>) -> Option<String>| -> Vec<Option<String>> {
                new_rows.iter().map(|r| f(r)).collect()
            };
            let keys: Vec<&str> = new_rows.iter().map(|r| r.shard_key.as_str()).collect();
            let times: Vec<OffsetDateTime> = new_rows.iter().map(|r| at(r.ts_ms)).collect();
            let ids: Vec<&str> = new_rows.iter().map(|r| r.new.event.id.as_str()).collect();
            let kinds: Vec<&str> = new_rows.iter().map(|r| r.new.event.kind.as_str()).collect();
            let edges: Vec<&str> = new_rows
                .iter()
                .map(|r| r.new.event.edge_id.as_str())
                .collect();
            let cameras: Vec<&str> = new_rows
                .iter()
                .map(|r| r.new.event.camera_id.as_str())
                .collect();
            let plates: Vec<Option<&str>> = new_rows.iter().map(|r| r.plate).collect();
            let displays = col(&|r| r.new.event.plate.as_ref().map(|p| no_nul(&p.display)));
            let confidences: Vec<Option<f32>> = new_rows
                .iter()
                .map(|r| r.new.event.plate.as_ref().map(|p| p.confidence))
                .collect();
            let classes = col(&|r| {
                r.new
                    .event
                    .vehicle
                    .as_ref()
                    .map(|v| no_nul(&v.class.to_lowercase()))
            });
            let colours = col(&|r| {
                r.new
                    .event
                    .vehicle
                    .as_ref()
                    .and_then(|v| v.colour.as_ref())
                    .map(|c| no_nul(&c.to_lowercase()))
            });
            let snapshots: Vec<Option<&str>> =
                new_rows.iter().map(|r| r.new.snapshot.as_deref()).collect();
            let jsons: Vec<&str> = new_rows.iter().map(|r| r.json.as_str()).collect();
            let st = stmt(stmts, &mut tx, INSERT_EVENTS)?;
            tx.execute(
                &st,
                &[
                    &keys,
                    &times,
                    &ids,
                    &kinds,
                    &edges,
                    &cameras,
                    &plates,
                    &displays,
                    &confidences,
                    &classes,
                    &colours,
                    &snapshots,
                    &at(received),
                    &jsons,
                ],
            )?;
            let distinct: Vec<&str> = new_rows.iter().filter_map(|r| r.plate).collect();
            let mut new_plates: Vec<String> = Vec::new();
            if !distinct.is_empty() {
                let st = stmt(stmts, &mut tx, INSERT_PLATES)?;
                new_plates = tx
                    .query(&st, &[&distinct])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
            }

            let mut locked = false;
            for r in &new_rows {
                let e = &r.new.event;
                let mut raised: Vec<(AlertKind, Priority, Option<WatchRef>, Option<f32>)> =
                    Vec::new();
                if let Some(p) = r.plate {
                    for (entry, distance) in matcher.matches(p, received) {
                        raised.push((
                            AlertKind::Watchlist,
                            entry.entry.priority,
                            Some(WatchRef {
                                id: entry.id,
                                pattern: entry.entry.pattern.clone(),
                                mode: entry.entry.mode,
                                reason: entry.entry.reason.clone(),
                            }),
                            distance,
                        ));
                    }
                }
                if e.kind == EventKind::PanicAlarm {
                    raised.push((AlertKind::PanicAlarm, Priority::Critical, None, None));
                }
                for (kind, priority, watch, distance) in raised {
                    if !locked {
                        // Alert ids in commit order, across servers.
                        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_ALERTS])?;
                        locked = true;
                    }
                    let st = stmt(stmts, &mut tx, INSERT_ALERT)?;
                    let id: i64 = tx
                        .query_one(
                            &st,
                            &[
                                &kind.as_str(),
                                &priority.as_str(),
                                &e.id,
                                &watch.as_ref().map(|w| w.id),
                                &e.camera_id,
                                &r.plate,
                                &at(r.ts_ms),
                                &distance,
                                &at(received),
                            ],
                        )?
                        .get(0);
                    outcome.alerts.push(Alert {
                        id,
                        kind,
                        state: AlertState::New,
                        priority,
                        event_id: e.id.clone(),
                        camera_id: e.camera_id.clone(),
                        plate: r.plate.map(str::to_owned),
                        ts_ms: r.ts_ms,
                        created_ms: received,
                        updated_ms: received,
                        watch,
                        distance,
                        snapshot: r.new.snapshot.clone(),
                        clip: None,
                    });
                }
            }
            outcome.seq = self
                .index
                .commit_with(&new_plates, &[] as &[&str], || commit(tx))?;
            Ok(())
        })?;
        Ok(outcome)
    }

    fn track(&self, plate: &str, from_ms: i64, to_ms: i64, limit: usize) -> Result<Vec<Sighting>> {
        self.pool.with(|Conn { client, stmts, .. }| {
            let st = stmt(
                stmts,
                client,
                "SELECT id, ts, camera_id, plate_confidence, snapshot_sha256, clip_sha256
                 FROM events
                 WHERE shard_key = $1 AND plate = $1 AND ts >= $2 AND ts <= $3
                 ORDER BY ts, id LIMIT $4",
            )?;
            let rows = client.query(&st, &[&plate, &at(from_ms), &at(to_ms), &(limit as i64)])?;
            Ok(rows
                .iter()
                .map(|r| Sighting {
                    event_id: r.get(0),
                    ts_ms: ms(r.get(1)),
                    camera_id: r.get(2),
                    confidence: r.get(3),
                    snapshot: r.get(4),
                    clip: r.get(5),
                })
                .collect())
        })
    }

    fn add_watch(&self, w: &NewWatch) -> Result<WatchEntry> {
        self.pool.with(|conn| {
            let mut tx = conn.client.transaction()?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO watchlist (pattern, mode, max_distance, reason, priority,
                         expires, created, created_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                    &[
                        &no_nul(&w.pattern),
                        &w.mode.as_str(),
                        &w.max_distance,
                        &no_nul(&w.reason),
                        &w.priority.as_str(),
                        &w.expires_ms.map(at),
                        &at(w.created_ms),
                        &no_nul(&w.created_by),
                    ],
                )?
                .get(0);
            tx.execute("UPDATE watchlist_version SET version = version + 1", &[])?;
            tx.commit()?;
            Ok(WatchEntry {
                id,
                entry: w.clone(),
                removed_ms: None,
                removed_by: None,
            })
        })
    }

    fn watchlist(&self, include_removed: bool) -> Result<Vec<WatchEntry>> {
        self.pool
            .with(|conn| watchlist_on(&mut conn.client, include_removed))
    }

    fn remove_watch(&self, id: i64, who: &str, at_ms: i64) -> Result<Option<WatchEntry>> {
        self.pool.with(|conn| {
            let mut tx = conn.client.transaction()?;
            let sql = format!(
                "UPDATE watchlist SET removed = $2, removed_by = $3
                 WHERE id = $1 AND removed IS NULL
                 RETURNING {}",
                WATCH_COLUMNS.trim_end_matches("FROM watchlist")
            );
            let Some(row) = tx.query_opt(&sql, &[&id, &at(at_ms), &no_nul(who)])? else {
                return Ok(None);
            };
            let entry = watch_from_row(&row)?;
            tx.execute("UPDATE watchlist_version SET version = version + 1", &[])?;
            tx.commit()?;
            Ok(Some(entry))
        })
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Vec<Alert>> {
        self.pool.with(|Conn { client, stmts, .. }| {
            let order = if q.after.is_some() { "ASC" } else { "DESC" };
            let sql = format!(
                "SELECT {ALERT_COLUMNS}
                 WHERE ($1::text IS NULL OR a.state = $1) AND a.id < $2 AND a.id > $3
                 ORDER BY a.id {order} LIMIT $4"
            );
            let st = stmt(stmts, client, &sql)?;
            client
                .query(
                    &st,
                    &[
                        &q.state.map(AlertState::as_str),
                        &q.before.unwrap_or(i64::MAX),
                        &q.after.unwrap_or(i64::MIN),
                        &(q.limit as i64),
                    ],
                )?
                .iter()
                .map(alert_from_row)
                .collect()
        })
    }

    fn alert(&self, id: i64) -> Result<Option<(Alert, Vec<AlertChange>)>> {
        self.pool.with(|conn| {
            let client = &mut conn.client;
            let Some(alert) = alert_on(client, id, false)? else {
                return Ok(None);
            };
            let mut changes = Vec::new();
            for r in client.query(
                "SELECT at, who, role, from_state, to_state, note FROM alert_changes
                 WHERE alert_id = $1 ORDER BY seq",
                &[&id],
            )? {
                let state = |s: String| {
                    AlertState::parse(&s)
                        .ok_or_else(|| Error::Corrupt(format!("alert {id}: change to state {s:?}")))
                };
                changes.push(AlertChange {
                    at_ms: ms(r.get(0)),
                    who: r.get(1),
                    role: r.get(2),
                    from: state(r.get(3))?,
                    to: state(r.get(4))?,
                    note: r.get(5),
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
        self.pool.with(|Conn { client, stmts, .. }| {
            let mut tx = client.transaction()?;
            let Some(alert) = alert_on(&mut tx, id, true)? else {
                return Ok(StateChange::NotFound);
            };
            let from = alert.state;
            if !from.may_become(to) {
                return Ok(StateChange::Refused(from));
            }
            tx.execute(
                "UPDATE alerts SET state = $2, updated = $3 WHERE id = $1",
                &[&id, &to.as_str(), &at(audit.at_ms)],
            )?;
            tx.execute(
                "INSERT INTO alert_changes (alert_id, at, who, role, from_state, to_state, note)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &id,
                    &at(audit.at_ms),
                    &no_nul(&audit.who),
                    &no_nul(&audit.role),
                    &from.as_str(),
                    &to.as_str(),
                    &note.map(no_nul),
                ],
            )?;
            let mut audit = audit.clone();
            audit.detail = Some(format!("alert {id}: {} -> {}", from.as_str(), to.as_str()));
            append_audit_on(&mut tx, stmts, &audit)?;
            tx.commit()?;
            Ok(StateChange::Changed(Box::new(Alert {
                state: to,
                updated_ms: audit.at_ms,
                ..alert
            })))
        })
    }

    fn event_blobs(&self, id: &str) -> Result<Option<EventBlobs>> {
        self.pool.with(|Conn { client, stmts, .. }| {
            let st = stmt(
                stmts,
                client,
                "SELECT e.snapshot_sha256, e.clip_sha256, e.edge_id FROM event_ids i
                 JOIN events e ON e.shard_key = i.shard_key AND e.ts = i.ts AND e.id = i.id
                 WHERE i.id = $1",
            )?;
            Ok(client.query_opt(&st, &[&no_nul(id)])?.map(|r| EventBlobs {
                snapshot: r.get(0),
                clip: r.get(1),
                edge_id: r.get(2),
            }))
        })
    }

    fn attach_clip(&self, id: &str, clip: &str) -> Result<bool> {
        self.pool.with(|conn| {
            let n = conn.client.execute(
                "UPDATE events e SET clip_sha256 = $2 FROM event_ids i
                 WHERE i.id = $1 AND e.shard_key = i.shard_key AND e.ts = i.ts AND e.id = i.id
                   AND e.clip_sha256 IS NULL",
                &[&no_nul(id), &clip],
            )?;
            Ok(n == 1)
        })
    }

    fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        self.pool
            .with(|conn| Self::search_on(conn, &self.index, query))
    }

    fn plates(&self, query: &PlateQuery) -> Result<Vec<String>> {
        Ok(self.index.matching(query))
    }

    fn put_camera(&self, camera: &Camera) -> Result<()> {
        self.pool.with(|conn| {
            conn.client.execute(
                "INSERT INTO cameras (id, name, kind, lat, lon, updated)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind,
                     lat = excluded.lat, lon = excluded.lon, updated = excluded.updated",
                &[
                    &no_nul(&camera.id),
                    &no_nul(&camera.name),
                    &camera.kind.as_str(),
                    &camera.lat,
                    &camera.lon,
                    &at(now_ms()),
                ],
            )?;
            Ok(())
        })
    }

    fn cameras(&self) -> Result<Vec<Camera>> {
        self.pool.with(|conn| cameras_on(&mut conn.client))
    }

    fn camera_health(&self, camera_id: &str) -> Result<CameraHealth> {
        self.pool.with(|Conn { client, stmts, .. }| {
            let st = stmt(
                stmts,
                client,
                "SELECT max(ts) FROM events WHERE camera_id = $1",
            )?;
            let last: Option<OffsetDateTime> = client.query_one(&st, &[&camera_id])?.get(0);
            let st = stmt(
                stmts,
                client,
                "SELECT ts, json FROM events WHERE camera_id = $1 AND kind = 'camera_status'
                 ORDER BY ts DESC LIMIT 1",
            )?;
            let latest = client.query_opt(&st, &[&camera_id])?.map(|row| {
                let json: String = row.get(1);
                (super::status_state(&json), ms(row.get(0)))
            });
            Ok(CameraHealth {
                status: latest,
                last_seen_ms: last.map(ms),
            })
        })
    }

    fn add_token(&self, hash: &str, owner: &TokenOwner) -> Result<()> {
        self.pool.with(|conn| {
            conn.client.execute(
                "INSERT INTO tokens (sha256, role, name, created, expires)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (sha256) DO NOTHING",
                &[
                    &hash,
                    &owner.role.as_str(),
                    &no_nul(&owner.name),
                    &at(now_ms()),
                    &owner.expires_ms.map(at),
                ],
            )?;
            Ok(())
        })
    }

    fn token(&self, hash: &str) -> Result<Option<TokenOwner>> {
        type Row = (String, String, Option<OffsetDateTime>);
        let row: Option<Row> = self.pool.with(|Conn { client, stmts, .. }| {
            let st = stmt(
                stmts,
                client,
                "SELECT role, name, expires FROM tokens WHERE sha256 = $1 AND revoked IS NULL",
            )?;
            Ok(client
                .query_opt(&st, &[&no_nul(hash)])?
                .map(|r| (r.get(0), r.get(1), r.get(2))))
        })?;
        row.map(|(role, name, expires)| {
            Ok(TokenOwner {
                role: parse_role(&role, &name)?,
                name,
                expires_ms: expires.map(ms),
            })
        })
        .transpose()
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>> {
        self.pool.with(|conn| {
            conn.client
                .query(
                    "SELECT sha256, role, name, created, expires, revoked FROM tokens
                     ORDER BY created, sha256",
                    &[],
                )?
                .iter()
                .map(|r| {
                    let (hash, role, name): (String, String, String) =
                        (r.get(0), r.get(1), r.get(2));
                    Ok(TokenRecord {
                        id: hash.chars().take(12).collect(),
                        role: parse_role(&role, &name)?,
                        name,
                        created_ms: ms(r.get(3)),
                        expires_ms: r.get::<_, Option<OffsetDateTime>>(4).map(ms),
                        revoked_ms: r.get::<_, Option<OffsetDateTime>>(5).map(ms),
                    })
                })
                .collect()
        })
    }

    fn revoke_tokens(&self, name: &str, at_ms: i64) -> Result<usize> {
        self.pool.with(|conn| {
            let n = conn.client.execute(
                "UPDATE tokens SET revoked = $2 WHERE name = $1 AND revoked IS NULL",
                &[&no_nul(name), &at(at_ms)],
            )?;
            Ok(n as usize)
        })
    }

    fn append_audit(&self, entry: &AuditEntry) -> Result<i64> {
        self.pool
            .with(|Conn { client, stmts, .. }| append_audit_on(client, stmts, entry))
    }

    fn audit(&self, before: Option<i64>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.pool.with(|conn| {
            let rows = conn.client.query(
                "SELECT seq, at, who, role, route, query, reason, results, detail FROM audit
                 WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
                &[&before.unwrap_or(i64::MAX), &(limit as i64)],
            )?;
            Ok(rows
                .iter()
                .map(|r| AuditRecord {
                    seq: r.get(0),
                    entry: AuditEntry {
                        at_ms: ms(r.get(1)),
                        who: r.get(2),
                        role: r.get(3),
                        route: r.get(4),
                        query: r.get(5),
                        reason: r.get(6),
                        results: r.get::<_, Option<i64>>(7).map(|n| n as u64),
                        detail: r.get(8),
                    },
                })
                .collect())
        })
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
            // Rows up to `after` were deleted or are of another class.
            let mut after = (MIN_MS, String::new());
            loop {
                let (report, last) = self.purge_batch(class, cutoff, &after, blobs)?;
                total.add(&report);
                match last {
                    Some(last) => after = last,
                    None => break,
                }
            }
        }
        Ok(total)
    }
}

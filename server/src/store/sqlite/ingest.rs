//! Ingest: batches of events grouped behind one writer, their rows and
//! stored JSON, the level-0 sighting parts ingest appends to, and the
//! merging of parts and the camera index that follow.

use super::*;

/// The level-0 part of the plate index that ingest appends to.
#[derive(Debug)]
pub(super) struct OpenPart {
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
pub(super) struct StoredJson<'a> {
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
pub(super) fn stored_event(
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

/// One event of a batch, made ready for its row outside the writer lock.
pub(super) struct Row {
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
    pub(super) fn of(new: &NewEvent) -> Result<Row> {
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
pub(super) struct IngestJob {
    pub(super) rows: Vec<Row>,
    pub(super) result: Mutex<Option<Result<IngestOutcome>>>,
}

impl SqliteStore {
    /// Writes `group` (batches of callers waiting for the writer, in
    /// arrival order) in one transaction and hands each its outcome. When
    /// that transaction fails, each batch is tried again alone, so that one
    /// batch's error is not another's. Merging follows the commit.
    pub(super) fn write_group(&self, conn: &mut Connection, group: &[Arc<IngestJob>]) {
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
    pub(super) fn next_seq(&self) -> u64 {
        self.commits.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Stores the rows of `group` in one transaction; one outcome per job.
    pub(super) fn write_batches(
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

    /// Adds the events past the camera index to it, in key order, once
    /// there are `chunk` of them (see the module notes).
    pub(super) fn index_cameras(conn: &mut Connection, chunk: i64) -> Result<()> {
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
    pub(super) fn merge_parts(conn: &mut Connection, parts: Parts) -> Result<()> {
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
}

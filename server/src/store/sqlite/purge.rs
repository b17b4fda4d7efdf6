//! The retention purge: expired events in batches, with their alerts,
//! plates and blobs.

use super::*;

impl SqliteStore {
    /// Deletes up to [`PURGE_BATCH`] events of `class` with `ts < cutoff`
    /// after `(ts, rowid)` `after`, oldest first, in one transaction.
    /// Returns what it deleted and, unless it was the last batch, where
    /// the next one starts.
    pub(super) fn purge_batch(
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

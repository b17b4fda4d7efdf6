//! The retention purge: expired events in batches, with their alerts,
//! plates and blobs.

use super::*;

impl PostgresStore {
    /// Deletes up to [`PURGE_BATCH`] events of `class` with `ts < cutoff`
    /// after `(ts, id)` `after`, oldest first, in one transaction. Returns
    /// what it deleted and, unless it was the last batch, where the next
    /// one starts.
    pub(super) fn purge_batch(
        &self,
        class: EventClass,
        cutoff: i64,
        after: &(i64, String),
        blobs: &BlobStore,
    ) -> Result<(PurgeReport, Option<(i64, String)>)> {
        let hit =
            "EXISTS (SELECT 1 FROM alerts a WHERE a.event_id = e.id AND a.kind = 'watchlist')";
        let class_sql = match class {
            EventClass::PlainRead => format!("e.kind IN ('plate_read', 'vehicle') AND NOT {hit}"),
            EventClass::HotlistHit => format!("e.kind IN ('plate_read', 'vehicle') AND {hit}"),
            EventClass::Alarm => "e.kind = 'panic_alarm'".to_owned(),
            EventClass::Status => "e.kind = 'camera_status'".to_owned(),
        };
        self.pool.with(|conn| {
            let mut report = PurgeReport::default();
            let mut tx = conn.client.transaction()?;
            // No ingest commits until this one has: the blobs chosen below
            // cannot become named again before the commit.
            tx.batch_execute("LOCK TABLE event_ids IN SHARE ROW EXCLUSIVE MODE")?;
            let sql = format!(
                "SELECT e.shard_key, e.ts, e.id, e.plate, e.snapshot_sha256, e.clip_sha256
                 FROM events e
                 WHERE e.ts < $1 AND (e.ts, e.id) > ($2, $3) AND {class_sql}
                 ORDER BY e.ts, e.id LIMIT $4"
            );
            let rows = tx.query(
                &sql,
                &[&at(cutoff), &at(after.0), &after.1, &(PURGE_BATCH as i64)],
            )?;
            let last = (rows.len() == PURGE_BATCH)
                .then(|| rows.last().map(|r| (ms(r.get(1)), r.get::<_, String>(2))))
                .flatten();
            let mut keys: Vec<String> = Vec::with_capacity(rows.len());
            let mut times: Vec<OffsetDateTime> = Vec::with_capacity(rows.len());
            let mut ids: Vec<String> = Vec::with_capacity(rows.len());
            let mut plates: Vec<String> = Vec::new();
            let mut hashes: Vec<BlobHash> = Vec::new();
            for r in &rows {
                keys.push(r.get(0));
                times.push(r.get(1));
                ids.push(r.get(2));
                plates.extend(r.get::<_, Option<String>>(3));
                hashes.extend(r.get::<_, Option<String>>(4));
                hashes.extend(r.get::<_, Option<String>>(5));
                report.count(class);
            }
            if ids.is_empty() {
                tx.commit()?;
                return Ok((report, None));
            }
            tx.execute(
                "DELETE FROM alert_changes
                 WHERE alert_id IN (SELECT id FROM alerts WHERE event_id = ANY($1))",
                &[&ids],
            )?;
            report.alerts = tx.execute("DELETE FROM alerts WHERE event_id = ANY($1)", &[&ids])?;
            tx.execute(
                "DELETE FROM events e USING unnest($1::text[], $2::timestamptz[], $3::text[])
                     AS u (k, t, i)
                 WHERE e.shard_key = u.k AND e.ts = u.t AND e.id = u.i",
                &[&keys, &times, &ids],
            )?;
            tx.execute("DELETE FROM event_ids WHERE id = ANY($1)", &[&ids])?;
            plates.sort();
            plates.dedup();
            let removed: Vec<String> = tx
                .query(
                    "DELETE FROM plates p WHERE p.plate = ANY($1)
                     AND NOT EXISTS (SELECT 1 FROM events e WHERE e.shard_key = p.plate)
                     RETURNING p.plate",
                    &[&plates],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            report.plates = removed.len() as u64;
            hashes.sort();
            hashes.dedup();
            let unused: Vec<BlobHash> = tx
                .query(
                    "SELECT h FROM unnest($1::text[]) AS u (h)
                     WHERE NOT EXISTS (SELECT 1 FROM events WHERE snapshot_sha256 = u.h)
                       AND NOT EXISTS (SELECT 1 FROM events WHERE clip_sha256 = u.h)",
                    &[&hashes],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let ((), blobs_removed) = blobs.remove_with(&unused, || {
                self.index
                    .commit_with(&[] as &[&str], &removed, || Ok(tx.commit()?))
            })?;
            report.blobs = blobs_removed;
            Ok((report, last))
        })
    }
}

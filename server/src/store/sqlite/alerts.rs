//! Watch-list entries, alerts and audit records as rows.

use super::*;

impl SqliteStore {
    pub(super) fn watch_from_row(
        r: &rusqlite::Row<'_>,
    ) -> rusqlite::Result<(WatchEntry, String, String)> {
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

    pub(super) fn watchlist_on(
        conn: &Connection,
        include_removed: bool,
    ) -> Result<Vec<WatchEntry>> {
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

    pub(super) fn alert_from_row(r: &rusqlite::Row<'_>) -> Result<Alert> {
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

    pub(super) fn alert_on(conn: &Connection, id: i64) -> Result<Option<Alert>> {
        let sql = format!("SELECT {ALERT_COLUMNS} WHERE a.id = ?1");
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([id])?;
        match rows.next()? {
            Some(row) => Ok(Some(Self::alert_from_row(row)?)),
            None => Ok(None),
        }
    }

    /// Rebuilds the in-memory matcher; call with the writer lock held.
    pub(super) fn refresh_matcher(&self, conn: &Connection) -> Result<()> {
        let matcher = Matcher::new(Self::watchlist_on(conn, false)?);
        *self.matcher.write_locked() = Arc::new(matcher);
        Ok(())
    }

    pub(super) fn append_audit_on(conn: &Connection, e: &Audit) -> Result<i64> {
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

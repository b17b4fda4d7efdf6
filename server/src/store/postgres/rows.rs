//! Watch-list entries, alerts and audit records as rows.

use super::*;

pub(super) fn watch_from_row(r: &postgres::Row) -> Result<WatchEntry> {
    let id: i64 = r.get(0);
    let mode: String = r.get(2);
    let priority: String = r.get(5);
    let (Some(parsed_mode), Some(parsed_priority)) =
        (WatchMode::parse(&mode), Priority::parse(&priority))
    else {
        return Err(Error::Corrupt(format!(
            "watchlist entry {id}: mode {mode:?}, priority {priority:?}"
        )));
    };
    Ok(WatchEntry {
        id,
        entry: NewWatch {
            pattern: r.get(1),
            mode: parsed_mode,
            max_distance: r.get(3),
            reason: r.get(4),
            priority: parsed_priority,
            expires_ms: r.get::<_, Option<OffsetDateTime>>(6).map(ms),
            created_ms: ms(r.get(7)),
            created_by: r.get(8),
        },
        removed_ms: r.get::<_, Option<OffsetDateTime>>(9).map(ms),
        removed_by: r.get(10),
    })
}

pub(super) fn watchlist_on(
    client: &mut impl GenericClient,
    include_removed: bool,
) -> Result<Vec<WatchEntry>> {
    let sql = format!("SELECT {WATCH_COLUMNS} WHERE $1 OR removed IS NULL ORDER BY id");
    client
        .query(&sql, &[&include_removed])?
        .iter()
        .map(watch_from_row)
        .collect()
}

pub(super) fn alert_from_row(r: &postgres::Row) -> Result<Alert> {
    let id: i64 = r.get(0);
    let bad = |what: &str, v: String| Error::Corrupt(format!("alert {id}: {what} {v:?}"));
    let kind: String = r.get(1);
    let state: String = r.get(2);
    let priority: String = r.get(3);
    let watch = match r.get::<_, Option<i64>>(10) {
        None => None,
        Some(wid) => {
            let mode: String = r.get::<_, Option<String>>(12).unwrap_or_default();
            Some(WatchRef {
                id: wid,
                pattern: r.get::<_, Option<String>>(11).unwrap_or_default(),
                mode: WatchMode::parse(&mode).ok_or_else(|| bad("watchlist mode", mode.clone()))?,
                reason: r.get::<_, Option<String>>(13).unwrap_or_default(),
            })
        }
    };
    Ok(Alert {
        id,
        kind: AlertKind::parse(&kind).ok_or_else(|| bad("kind", kind.clone()))?,
        state: AlertState::parse(&state).ok_or_else(|| bad("state", state.clone()))?,
        priority: Priority::parse(&priority).ok_or_else(|| bad("priority", priority.clone()))?,
        event_id: r.get(4),
        camera_id: r.get(5),
        plate: r.get(6),
        ts_ms: ms(r.get(7)),
        created_ms: ms(r.get(8)),
        updated_ms: ms(r.get(9)),
        watch,
        distance: r.get(14),
        snapshot: r.get(15),
        clip: r.get(16),
    })
}

pub(super) fn alert_on(
    client: &mut impl GenericClient,
    id: i64,
    for_update: bool,
) -> Result<Option<Alert>> {
    let lock = if for_update { " FOR UPDATE OF a" } else { "" };
    let sql = format!("SELECT {ALERT_COLUMNS} WHERE a.id = $1{lock}");
    client
        .query_opt(&sql, &[&id])?
        .as_ref()
        .map(alert_from_row)
        .transpose()
}

pub(super) fn append_audit_on(
    client: &mut impl GenericClient,
    stmts: &mut HashMap<String, Statement>,
    e: &AuditEntry,
) -> Result<i64> {
    let st = stmt(
        stmts,
        client,
        "INSERT INTO audit (at, who, role, route, query, reason, results, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
    )?;
    let row = client.query_one(
        &st,
        &[
            &at(e.at_ms),
            &no_nul(&e.who),
            &no_nul(&e.role),
            &no_nul(&e.route),
            &no_nul(&e.query),
            &e.reason.as_deref().map(no_nul),
            &e.results.map(|n| n as i64),
            &e.detail.as_deref().map(no_nul),
        ],
    )?;
    Ok(row.get(0))
}

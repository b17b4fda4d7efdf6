//! Searches: plate queries through the plate index and its sighting
//! parts, camera and time filters, pages, and the camera registry read.

use super::*;

/// A search result from a row of `search_on`'s columns; `fuzzy_plate` is
/// the plate a fuzzy search asked for.
pub(super) fn hit_from_row(row: &rusqlite::Row<'_>, fuzzy_plate: Option<&str>) -> Result<Hit> {
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
pub(super) const SIGHTING_TABLES: [(&str, &str); 2] =
    [("new_sightings", "level = 0"), ("sightings", "level > 0")];

/// Most cameras a search reads through an index arm each (see
/// `search_on`).
pub(super) const CAMERA_ARMS: usize = 16;

/// The last event rowid that `camera_sightings` covers.
pub(super) const CAMERAS_INDEXED: &str =
    "SELECT coalesce((SELECT value FROM store_meta WHERE key = 'cameras_indexed'), 0)";

/// The events `camera_sightings` does not cover yet, as `e`, read by rowid:
/// left to itself SQLite may walk `events_ts` instead, and for a camera
/// with no new events that is every event (57 ms at 1 M, measured).
pub(super) const UNINDEXED_EVENTS: &str = "events e NOT INDEXED
    WHERE e.rowid > (SELECT coalesce((SELECT value FROM store_meta
                                      WHERE key = 'cameras_indexed'), 0))";

impl SqliteStore {
    pub(super) fn search_on(
        conn: &Connection,
        index: &PlateIndex,
        q: &SearchQuery,
    ) -> Result<SearchPage> {
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
    pub(super) fn plate_page(
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

    pub(super) fn cameras_on(conn: &Connection) -> Result<Vec<Camera>> {
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

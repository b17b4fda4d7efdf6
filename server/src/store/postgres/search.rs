//! Searches: plate queries through the plate index, camera, place and
//! time filters as parameters, pages, and the camera registry read.

use super::*;

/// Parameters of a query built at run time, numbered `$1`, `$2`...
#[derive(Default)]
pub(super) struct Args(Vec<Box<dyn ToSql + Sync + Send>>);

impl Args {
    pub(super) fn add(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    pub(super) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0
            .iter()
            .map(|b| b.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

pub(super) fn cameras_on(client: &mut impl GenericClient) -> Result<Vec<Camera>> {
    let mut out = Vec::new();
    for row in client.query(
        "SELECT id, name, kind, lat, lon FROM cameras ORDER BY id",
        &[],
    )? {
        let id: String = row.get(0);
        let kind: String = row.get(2);
        let kind = CameraKind::parse(&kind)
            .ok_or_else(|| Error::Corrupt(format!("camera {id}: kind {kind:?}")))?;
        out.push(Camera {
            name: row.get(1),
            kind,
            lat: row.get(3),
            lon: row.get(4),
            id,
        });
    }
    Ok(out)
}

impl PostgresStore {
    pub(super) fn search_on(
        conn: &mut Conn,
        index: &PlateIndex,
        q: &SearchQuery,
    ) -> Result<SearchPage> {
        let empty = SearchPage {
            hits: Vec::new(),
            next: None,
        };
        let Conn { client, stmts, .. } = conn;
        let mut args = Args::default();
        let mut clauses: Vec<String> = Vec::new();
        match &q.plate {
            PlateQuery::Any => {}
            PlateQuery::Exact(p) => {
                clauses.push(format!(
                    "shard_key = {} AND plate IS NOT NULL",
                    args.add(p.clone())
                ));
            }
            other => {
                let plates = index.matching(other);
                if plates.is_empty() {
                    return Ok(empty);
                }
                clauses.push(format!(
                    "shard_key = ANY({}) AND plate IS NOT NULL",
                    args.add(plates)
                ));
            }
        }
        let mut cameras = q.cameras.clone();
        if let Some(near) = q.near {
            let inside = cameras_near(&cameras_on(client)?, near);
            cameras = Some(match cameras {
                Some(list) => list.into_iter().filter(|c| inside.contains(c)).collect(),
                None => inside,
            });
        }
        if let Some(cameras) = cameras {
            if cameras.is_empty() {
                return Ok(empty);
            }
            let cameras: Vec<String> = cameras.iter().map(|c| no_nul(c)).collect();
            clauses.push(format!("camera_id = ANY({})", args.add(cameras)));
        }
        if let Some(from) = q.from_ms {
            clauses.push(format!("ts >= {}", args.add(at(from))));
        }
        if let Some(to) = q.to_ms {
            clauses.push(format!("ts <= {}", args.add(at(to))));
        }
        for (column, value) in [
            ("vehicle_class", &q.class),
            ("colour", &q.colour),
            ("kind", &q.kind),
        ] {
            if let Some(v) = value {
                clauses.push(format!("{column} = {}", args.add(no_nul(v))));
            }
        }
        if let Some(after) = &q.after {
            let ts = args.add(at(after.ts_ms));
            let id = args.add(no_nul(&after.id));
            clauses.push(format!("(ts, id) < ({ts}, {id})"));
        }
        let mut sql =
            String::from("SELECT id, ts, json, snapshot_sha256, clip_sha256, plate FROM events");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(
            " ORDER BY ts DESC, id DESC LIMIT {}",
            args.add(q.limit as i64 + 1)
        ));

        let fuzzy_plate = match &q.plate {
            PlateQuery::Fuzzy { plate, .. } => Some(plate.as_str()),
            _ => None,
        };
        let st = stmt(stmts, client, &sql)?;
        let mut hits = Vec::new();
        for row in client.query(&st, &args.refs())? {
            let id: String = row.get(0);
            let json: String = row.get(2);
            let event = serde_json::from_str(&json)
                .map_err(|e| Error::Corrupt(format!("event {id}: stored JSON: {e}")))?;
            let plate: Option<String> = row.get(5);
            hits.push(Hit {
                event,
                ts_ms: ms(row.get(1)),
                snapshot: row.get(3),
                clip: row.get(4),
                distance: fuzzy_plate
                    .zip(plate.as_deref())
                    .map(|(q, p)| plate_distance(q, p)),
                id,
            });
        }
        Ok(SearchPage::cut(hits, q.limit))
    }
}

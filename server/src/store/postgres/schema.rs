//! The schema: tables, partitions by month, advisory locks, the statements
//! ingest prepares, and the migration and partition making at start.

use super::*;

/// Version of the schema below, kept in `safecity_schema`.
pub(super) const SCHEMA_VERSION: i32 = 1;

/// Advisory lock keys (`pg_advisory_xact_lock`), one per purpose.
pub(super) const LOCK_SCHEMA: i64 = 0x5AFE_C171_0001;

pub(super) const LOCK_PARTITIONS: i64 = 0x5AFE_C171_0002;

pub(super) const LOCK_ALERTS: i64 = 0x5AFE_C171_0003;

/// Years that get a monthly partition; others go to `events_default`.
pub(super) const PARTITION_YEARS: std::ops::RangeInclusive<i32> = 2000..=2199;

pub(super) const SCHEMA: &str = r#"
CREATE TABLE events (
    shard_key TEXT COLLATE "C" NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    id TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    edge_id TEXT NOT NULL,
    camera_id TEXT COLLATE "C" NOT NULL,
    plate TEXT COLLATE "C",
    plate_display TEXT,
    plate_confidence REAL,
    vehicle_class TEXT,
    colour TEXT,
    snapshot_sha256 TEXT COLLATE "C",
    clip_sha256 TEXT COLLATE "C",
    received TIMESTAMPTZ NOT NULL,
    json TEXT NOT NULL,
    PRIMARY KEY (shard_key, ts, id)
) PARTITION BY RANGE (ts);
CREATE TABLE events_default PARTITION OF events DEFAULT;
CREATE INDEX events_ts ON events (ts, id);
CREATE INDEX events_camera_ts ON events (camera_id, ts);
CREATE INDEX events_status ON events (camera_id, ts) WHERE kind = 'camera_status';
CREATE INDEX events_snapshot ON events (snapshot_sha256) WHERE snapshot_sha256 IS NOT NULL;
CREATE INDEX events_clip ON events (clip_sha256) WHERE clip_sha256 IS NOT NULL;
CREATE TABLE event_ids (
    id TEXT COLLATE "C" PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    shard_key TEXT COLLATE "C" NOT NULL
);
CREATE TABLE plates (plate TEXT COLLATE "C" PRIMARY KEY);
CREATE TABLE cameras (
    id TEXT COLLATE "C" PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    updated TIMESTAMPTZ NOT NULL
);
CREATE TABLE tokens (
    sha256 TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created TIMESTAMPTZ NOT NULL,
    expires TIMESTAMPTZ,
    revoked TIMESTAMPTZ
);
CREATE TABLE audit (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    route TEXT NOT NULL,
    query TEXT NOT NULL,
    reason TEXT,
    results BIGINT,
    detail TEXT
);
CREATE FUNCTION safecity_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END
$$;
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION safecity_audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION safecity_audit_append_only();
CREATE TABLE watchlist (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pattern TEXT NOT NULL,
    mode TEXT NOT NULL,
    max_distance REAL,
    reason TEXT NOT NULL,
    priority TEXT NOT NULL,
    expires TIMESTAMPTZ,
    created TIMESTAMPTZ NOT NULL,
    created_by TEXT NOT NULL,
    removed TIMESTAMPTZ,
    removed_by TEXT
);
CREATE TABLE watchlist_version (version BIGINT NOT NULL);
INSERT INTO watchlist_version VALUES (0);
CREATE TABLE alerts (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    watchlist_id BIGINT REFERENCES watchlist (id),
    camera_id TEXT NOT NULL,
    plate TEXT,
    ts TIMESTAMPTZ NOT NULL,
    distance REAL,
    created TIMESTAMPTZ NOT NULL,
    updated TIMESTAMPTZ NOT NULL,
    UNIQUE (event_id, watchlist_id)
);
CREATE INDEX alerts_state ON alerts (state, id);
CREATE TABLE alert_changes (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id BIGINT NOT NULL REFERENCES alerts (id),
    at TIMESTAMPTZ NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT
);
CREATE INDEX alert_changes_alert ON alert_changes (alert_id, seq);
"#;

/// The columns [`alert_from_row`] reads, over `alerts a` joined with its
/// event `e` (found through `event_ids i`) and watchlist entry `w`.
pub(super) const ALERT_COLUMNS: &str =
    "a.id, a.kind, a.state, a.priority, a.event_id, a.camera_id, a.plate,
    a.ts, a.created, a.updated, a.watchlist_id, w.pattern, w.mode, w.reason, a.distance,
    e.snapshot_sha256, e.clip_sha256
    FROM alerts a LEFT JOIN event_ids i ON i.id = a.event_id
    LEFT JOIN events e ON e.shard_key = i.shard_key AND e.ts = i.ts AND e.id = i.id
    LEFT JOIN watchlist w ON w.id = a.watchlist_id";

pub(super) const WATCH_COLUMNS: &str =
    "id, pattern, mode, max_distance, reason, priority, expires, created,
    created_by, removed, removed_by FROM watchlist";

pub(super) const INSERT_IDS: &str = "INSERT INTO event_ids (id, ts, shard_key)
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u (id, ts, shard_key)
    ORDER BY id
    ON CONFLICT DO NOTHING RETURNING id";

pub(super) const INSERT_EVENTS: &str =
    "INSERT INTO events (shard_key, ts, id, kind, edge_id, camera_id,
        plate, plate_display, plate_confidence, vehicle_class, colour, snapshot_sha256,
        received, json)
    SELECT k, t, i, kd, ed, c, p, pd, pc, vc, co, s, $13, j
    FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::real[], $10::text[], $11::text[], $12::text[], $14::text[])
        AS u (k, t, i, kd, ed, c, p, pd, pc, vc, co, s, j)";

pub(super) const INSERT_PLATES: &str = "INSERT INTO plates (plate)
    SELECT DISTINCT p FROM unnest($1::text[]) AS u (p) ORDER BY p
    ON CONFLICT DO NOTHING RETURNING plate";

pub(super) const INSERT_ALERT: &str =
    "INSERT INTO alerts (kind, state, priority, event_id, watchlist_id,
        camera_id, plate, ts, distance, created, updated)
    VALUES ($1, 'new', $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";

/// The `(year, month)` partition for a time, if it gets one.
pub(super) fn month_of(ts_ms: i64) -> Option<i32> {
    let t = at(ts_ms);
    let year = t.year();
    PARTITION_YEARS
        .contains(&year)
        .then(|| year * 12 + i32::from(u8::from(t.month())) - 1)
}

/// `CREATE TABLE` for the partition of month `m` (`year * 12 + month - 1`).
pub(super) fn partition_ddl(m: i32) -> String {
    let (y, mo) = (m.div_euclid(12), m.rem_euclid(12) + 1);
    let (ny, nmo) = ((m + 1).div_euclid(12), (m + 1).rem_euclid(12) + 1);
    format!(
        "CREATE TABLE IF NOT EXISTS events_{y:04}_{mo:02} PARTITION OF events
         FOR VALUES FROM ('{y:04}-{mo:02}-01 00:00:00+00') TO ('{ny:04}-{nmo:02}-01 00:00:00+00')"
    )
}

impl PostgresStore {
    pub(super) fn migrate(conn: &mut Conn) -> Result<()> {
        let mut tx = conn.client.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_SCHEMA])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS safecity_schema (version INTEGER NOT NULL)")?;
        let version: Option<i32> = tx
            .query_one("SELECT max(version) FROM safecity_schema", &[])?
            .get(0);
        match version {
            None => {
                tx.batch_execute(SCHEMA)?;
                tx.execute(
                    "INSERT INTO safecity_schema (version) VALUES ($1)",
                    &[&SCHEMA_VERSION],
                )?;
            }
            Some(v) if v > SCHEMA_VERSION => {
                return Err(Error::Config(format!(
                    "the database has schema version {v}, newer than this server's {SCHEMA_VERSION}; run a newer safecity-server"
                )));
            }
            Some(_) => {
                // Added after version 1; older databases get them here.
                tx.batch_execute(
                    "CREATE INDEX IF NOT EXISTS events_status ON events (camera_id, ts)
                     WHERE kind = 'camera_status';
                     ALTER TABLE tokens ADD COLUMN IF NOT EXISTS expires TIMESTAMPTZ,
                         ADD COLUMN IF NOT EXISTS revoked TIMESTAMPTZ;",
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Creates the monthly partitions that events at `times` need.
    pub(super) fn ensure_partitions(&self, times: impl Iterator<Item = i64>) -> Result<()> {
        let mut months: Vec<i32> = times.filter_map(month_of).collect();
        months.sort_unstable();
        months.dedup();
        {
            let known = self.partitions.locked();
            months.retain(|m| !known.contains(m));
        }
        if months.is_empty() {
            return Ok(());
        }
        // In a transaction of its own: the parent's lock is held briefly,
        // not for a whole ingest.
        self.pool.with(|conn| {
            let mut tx = conn.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_PARTITIONS])?;
            for m in &months {
                tx.batch_execute(&partition_ddl(*m))?;
            }
            tx.commit()?;
            Ok(())
        })?;
        self.partitions.locked().extend(months);
        Ok(())
    }
}

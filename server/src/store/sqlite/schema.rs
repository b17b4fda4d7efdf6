//! The schema: tables, indexes and triggers, its version, and the
//! column lists the row readers expect.

/// Version of the schema below, kept in `PRAGMA user_version`.
/// Version 2 added `audit.detail` and the watchlist and alert tables;
/// version 3 replaced the `(plate, ts, id)` index of `events` with the
/// parts of `sightings`.
pub(super) const SCHEMA_VERSION: i64 = 4;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    edge_id TEXT NOT NULL,
    camera_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    plate TEXT,
    plate_display TEXT,
    plate_confidence REAL,
    vehicle_class TEXT,
    colour TEXT,
    snapshot_sha256 TEXT,
    clip_sha256 TEXT,
    received INTEGER NOT NULL,
    json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_status ON events (camera_id, ts)
    WHERE kind = 'camera_status';
CREATE INDEX IF NOT EXISTS events_snapshot ON events (snapshot_sha256)
    WHERE snapshot_sha256 IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_clip ON events (clip_sha256) WHERE clip_sha256 IS NOT NULL;
CREATE TABLE IF NOT EXISTS sightings (
    part INTEGER NOT NULL,
    plate TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ev INTEGER NOT NULL,
    PRIMARY KEY (part, plate, ts, ev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS new_sightings (
    part INTEGER NOT NULL,
    plate TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ev INTEGER NOT NULL,
    PRIMARY KEY (part, plate, ts, ev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS camera_sightings (
    camera_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    ev INTEGER NOT NULL,
    PRIMARY KEY (camera_id, ts, ev)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS sighting_parts (
    part INTEGER PRIMARY KEY,
    level INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS plates (plate TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cameras (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    lat REAL NOT NULL,
    lon REAL NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    sha256 TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER,
    revoked INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    route TEXT NOT NULL,
    query TEXT NOT NULL,
    reason TEXT,
    results INTEGER,
    detail TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS watchlist (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pattern TEXT NOT NULL,
    mode TEXT NOT NULL,
    max_distance REAL,
    reason TEXT NOT NULL,
    priority TEXT NOT NULL,
    expires INTEGER,
    created INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    removed INTEGER,
    removed_by TEXT
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT NOT NULL,
    event_id TEXT NOT NULL,
    watchlist_id INTEGER REFERENCES watchlist (id),
    camera_id TEXT NOT NULL,
    plate TEXT,
    ts INTEGER NOT NULL,
    distance REAL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    UNIQUE (event_id, watchlist_id)
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts (state, id);
CREATE TABLE IF NOT EXISTS alert_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at INTEGER NOT NULL,
    who TEXT NOT NULL,
    role TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    note TEXT
);
CREATE INDEX IF NOT EXISTS alert_changes_alert ON alert_changes (alert_id, seq);
";

/// The columns [`SqliteStore::alert_from_row`] reads, over `alerts a`
/// joined with its event `e` and watchlist entry `w`.
pub(super) const ALERT_COLUMNS: &str =
    "a.id, a.kind, a.state, a.priority, a.event_id, a.camera_id, a.plate,
    a.ts, a.created, a.updated, a.watchlist_id, w.pattern, w.mode, w.reason, a.distance,
    e.snapshot_sha256, e.clip_sha256
    FROM alerts a LEFT JOIN events e ON e.id = a.event_id
    LEFT JOIN watchlist w ON w.id = a.watchlist_id";

pub(super) const WATCH_COLUMNS: &str =
    "id, pattern, mode, max_distance, reason, priority, expires, created,
    created_by, removed, removed_by FROM watchlist";

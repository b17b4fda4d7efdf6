//! PostgreSQL the plain way, the baseline: one table loaded with `COPY`,
//! its indexes, and the databases the runs make and drop.

use super::*;

pub(crate) fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("time in range")
}

pub(crate) fn rfc3339(ms: i64) -> String {
    at(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// `url` with its database replaced by `db`.
pub(crate) fn with_database(url: &str, db: &str) -> String {
    let Some(scheme) = url.find("://").map(|i| i + 3) else {
        return format!("{url} dbname={db}");
    };
    let (head, query) = url.split_at(url[scheme..].find('?').map_or(url.len(), |q| scheme + q));
    let host = match head[scheme..].find('/') {
        Some(slash) => &head[..scheme + slash],
        None => head,
    };
    format!("{host}/{db}{query}")
}

pub(crate) fn pg_connect(url: &str) -> Result<postgres::Client> {
    postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| format!("cannot connect to {}", safecity_server::redact_url(url)))
}

pub(crate) const BASELINE_SCHEMA: &str = "
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS fuzzystrmatch;
CREATE TABLE sightings (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    edge_id TEXT NOT NULL,
    camera TEXT NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    plate TEXT,
    confidence REAL,
    vehicle_class TEXT,
    colour TEXT,
    json TEXT NOT NULL
);";

pub(crate) const BASELINE_INDEXES: &str = "
CREATE INDEX sightings_plate_ts ON sightings (plate, ts);
CREATE INDEX sightings_plate_trgm ON sightings USING gin (plate gin_trgm_ops);";

/// WAL written by the whole PostgreSQL server so far.
pub(crate) fn wal_bytes(client: &mut postgres::Client) -> Result<u64> {
    let row = client.query_one("SELECT wal_bytes::float8 FROM pg_stat_wal", &[])?;
    Ok(row.get::<_, f64>(0) as u64)
}

pub(crate) fn pg_sizes(client: &mut postgres::Client, sql: &str) -> Result<BTreeMap<String, u64>> {
    Ok(client
        .query(sql, &[])?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect())
}

pub(crate) fn recreate_database(admin: &str, db: &str) -> Result<()> {
    let mut client = pg_connect(admin)?;
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    client.batch_execute(&format!(
        "CREATE DATABASE {db} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    ))?;
    Ok(())
}

pub(crate) fn drop_database(admin: &str, db: &str) -> Result<()> {
    pg_connect(admin)?.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    Ok(())
}

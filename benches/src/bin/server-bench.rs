//! `server-bench`: ingest and search rates of the safecity server on
//! generated data, against PostgreSQL used the plain way.
//!
//! ```text
//! server-bench --events 10000000 --plates 1000000 --backend both \
//!     --postgres postgres://postgres@127.0.0.1:PORT/postgres \
//!     --data-dir target/bench/server-data --json target/bench/server.json
//! ```
//!
//! What it measures (the data is described in `safecity_benches::server`):
//!
//! - **Ingest** through [`Store::ingest`] in batches (1,000 by default), the
//!   call the `POST /api/v1/events` handler makes once it has parsed the
//!   body (the events carry no snapshots, so there are no blob writes).
//!   Each batch is one durable transaction and updates the in-memory
//!   [`PlateIndex`](safecity_server::PlateIndex). Events are built on a
//!   second thread; only the time inside `ingest` counts.
//! - **Concurrent ingest** (group commit): the first million events into
//!   fresh embedded stores by one client and by `--clients` clients at
//!   once, each taking the next batch as it is built, as several edges
//!   post at the same time; wall-clock rates, both measured the same way.
//! - **HTTP ingest** at a smaller scale into a fresh embedded store: gzip
//!   JSON batches through the real router ([`app`]), as an edge sends them,
//!   without a socket.
//! - **Search** through [`Store::search`], the call the `GET /api/v1/search`
//!   handler makes: the plate index gives the candidate plates, then the
//!   store reads their sightings in the time window, newest first, 50 per
//!   page. Exact, wildcard and fuzzy (weighted distance 2) searches, each
//!   in a 24 h window around a known sighting, one at a time, after a few
//!   warm-up searches. At every checkpoint (1M events and the end) and,
//!   at the end, a smaller sample through the HTTP handler (which also
//!   writes an audit record, a durable commit, per search).
//! - **Baseline**: the same events in one plain PostgreSQL table loaded
//!   with `COPY`, a B-tree on `(plate, ts)` and a `pg_trgm` GIN index on
//!   `plate`, searched with `=`, `LIKE` and `%` + `levenshtein`; and a few
//!   fuzzy searches by `levenshtein` alone (a scan).
//! - **Our PostgreSQL backend** ([`PostgresStore`]) with the same ingest and
//!   searches (by default on the first million events when the embedded
//!   store gets ten million).
//! - **Memory**: a fresh process opens each store and reports its resident
//!   memory before and after (the plate index is loaded at open), and the
//!   benchmark's own peak. **Disk**: the SQLite files, and
//!   `pg_total_relation_size` of the tables.
//!
//! The figures go to `--json` and a table on standard output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, ValueEnum};
use safecity_benches::server::{
    load_average, proc_io, proc_status_bytes, Dataset, Kind, Latency, Query, QuerySet, Spec,
};
use safecity_core::PlatePattern;
use safecity_server::{
    app, new_token, token_hash, AppState, BlobStore, NewEvent, PlateQuery, PostgresStore, Role,
    SearchQuery, ServerConfig, SqliteStore, Store, TokenOwner,
};
use serde::Serialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

/// Results per page, as the search handler's default.
const LIMIT: usize = 50;
/// Fuzzy searches allow this weighted distance (the API's maximum).
const MAX_DISTANCE: f32 = 2.0;
/// Warm-up searches of each kind before the timed ones.
const WARM_UP: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Backend {
    Sqlite,
    Postgres,
    Both,
}

/// Ingest and search benchmark of the safecity server.
#[derive(Debug, Parser)]
#[command(name = "server-bench")]
struct Args {
    /// Events to generate and ingest.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Distinct plates among them.
    #[arg(long, default_value_t = 1_000_000)]
    plates: u32,
    /// Which of our stores to measure: the embedded SQLite store, our
    /// PostgreSQL backend, or both.
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// A PostgreSQL server to use (an administrator's URL; databases
    /// `bench_store` and `bench_plain` are made there and dropped after).
    /// With it the plain PostgreSQL baseline runs too.
    #[arg(long)]
    postgres: Option<String>,
    /// Where the embedded stores go (sub-folders `sqlite` and `http` are
    /// replaced).
    #[arg(long, default_value = "target/bench/server-data")]
    data_dir: PathBuf,
    /// Exact searches per checkpoint; wildcard and fuzzy default to a fifth.
    #[arg(long, default_value_t = 1_000)]
    queries: usize,
    #[arg(long)]
    wildcard_queries: Option<usize>,
    #[arg(long)]
    fuzzy_queries: Option<usize>,
    /// Fuzzy searches by `levenshtein` alone (a scan) in the baseline.
    #[arg(long, default_value_t = 10)]
    scan_queries: usize,
    /// Searches of each kind through the HTTP handler at the end.
    #[arg(long, default_value_t = 200)]
    http_queries: usize,
    /// Event counts at which to stop and search (default: 1,000,000 when
    /// there are more events, and the end).
    #[arg(long = "checkpoint")]
    checkpoints: Vec<u64>,
    /// Events per ingest batch.
    #[arg(long, default_value_t = 1_000)]
    batch: usize,
    /// Concurrent ingest clients for the group-commit figure (0: skip it).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Events the concurrent clients send (and the one client, to compare).
    #[arg(long, default_value_t = 1_000_000)]
    clients_events: u64,
    /// Events sent through the HTTP handler (0: skip).
    #[arg(long, default_value_t = 200_000)]
    http_events: u64,
    /// Events ingested into our PostgreSQL backend (default: all with
    /// `--backend postgres`, at most 1,000,000 with `both`).
    #[arg(long)]
    pg_store_events: Option<u64>,
    /// Seed of the generated data and queries.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every figure here as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the stores and databases afterwards.
    #[arg(long)]
    keep_data: bool,
    /// Internal: open the SQLite store in this folder and report memory.
    #[arg(long, hide = true)]
    probe_sqlite: Option<PathBuf>,
    /// Internal: connect our PostgreSQL store at this URL and report memory.
    #[arg(long, hide = true)]
    probe_postgres: Option<String>,
}

// ---------------------------------------------------------------- report

#[derive(Debug, Default, Serialize)]
struct Report {
    machine: Machine,
    data: DataReport,
    settings: Settings,
    sqlite: Option<StoreReport>,
    /// The embedded store fed by one client, then by several at once.
    clients: Vec<ClientsReport>,
    http: Option<HttpReport>,
    postgres_store: Option<StoreReport>,
    baseline: Option<BaselineReport>,
    targets: Vec<Target>,
    /// Peak resident memory of this benchmark process (generator, stores,
    /// query sets and client buffers together).
    bench_peak_rss_bytes: u64,
    wall_s: f64,
    notes: Vec<String>,
    /// Steps that failed; the figures before each failure are kept.
    errors: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Machine {
    /// 1-minute load average when the run started and ended: other work
    /// on the machine shows here.
    load_start: f64,
    load_end: f64,
    /// Whether the kernel's DAMON reclaim (`pageout`) is on: it evicts
    /// cold file pages, so searches read older sightings from disk even
    /// with memory free.
    damon_reclaim: bool,
    cpus: usize,
    cpu: String,
    memory_bytes: u64,
    postgres_version: Option<String>,
    postgres_settings: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
struct DataReport {
    events: u64,
    plates: u32,
    seed: u64,
    cameras: u32,
    days: u32,
    snapshots: bool,
    generate_s: f64,
    event_json_bytes_mean: f64,
}

#[derive(Debug, Default, Serialize)]
struct Settings {
    backend: Option<Backend>,
    batch: usize,
    checkpoints: Vec<u64>,
    queries: BTreeMap<&'static str, usize>,
    window_hours: f64,
    page_limit: usize,
    fuzzy_max_distance: f32,
    warm_up_per_kind: usize,
    pg_store_events: u64,
}

#[derive(Debug, Default, Serialize)]
struct StoreReport {
    events: u64,
    /// Seconds inside `Store::ingest`.
    ingest_s: f64,
    /// Events per second inside `Store::ingest`.
    events_per_s: f64,
    /// Events per second of the whole loop, generation on another thread
    /// included.
    wall_events_per_s: f64,
    segments: Vec<Segment>,
    checkpoints: Vec<Checkpoint>,
}

impl StoreReport {
    /// Sums the segments up to `events`, ingested in `wall`.
    fn totals(&mut self, events: u64, wall: Duration) {
        self.events = events;
        self.ingest_s = self.segments.iter().map(|s| s.ingest_s).sum();
        self.events_per_s = events as f64 / self.ingest_s;
        self.wall_events_per_s = events as f64 / secs(wall);
    }
}

#[derive(Debug, Default, Serialize)]
struct Segment {
    from: u64,
    to: u64,
    ingest_s: f64,
    events_per_s: f64,
    batch: Latency,
    /// Bytes written per event: for SQLite, what this process passed to
    /// write calls (`wchar`: WAL frames and checkpoints) and sent to
    /// storage (`write_bytes`); for PostgreSQL, WAL bytes
    /// (`pg_stat_wal.wal_bytes`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    written_per_event: BTreeMap<&'static str, f64>,
}

#[derive(Debug, Default, Serialize)]
struct Checkpoint {
    events: u64,
    distinct_plates: u64,
    /// 1-minute load average after the searches: other work on the
    /// machine lengthens the tail.
    load_average: f64,
    search: BTreeMap<String, SearchFigures>,
    disk: Disk,
    memory: Option<Value>,
}

#[derive(Debug, Default, Serialize)]
struct SearchFigures {
    /// What the query was, e.g. `plate = $1 AND ts BETWEEN ...`.
    how: String,
    latency: Latency,
    /// Results per search (at most the page of 50).
    hits_mean: f64,
    /// Share of searches whose results include the plate the query was
    /// made from (seen in the window by construction).
    source_found: f64,
    /// Candidate plates from the plate index per search.
    #[serde(skip_serializing_if = "Option::is_none")]
    plates_mean: Option<f64>,
    /// Time of the plate-index lookup alone (`Store::plates`), measured
    /// separately.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<Latency>,
    /// Wildcard latency by query shape (`12?AB*`, `*KXM0?`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    by_shape: BTreeMap<String, Latency>,
    /// Searches whose result ids differ from the embedded store's.
    #[serde(skip_serializing_if = "Option::is_none")]
    differ_from_sqlite: Option<usize>,
}

#[derive(Debug, Default, Serialize)]
struct Disk {
    bytes: u64,
    bytes_per_million_events: f64,
    parts: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
struct HttpReport {
    ingest_events: u64,
    /// Seconds of the router calls, batches sent one after another.
    ingest_s: f64,
    events_per_s: f64,
    batch: Latency,
    /// `Store::ingest` alone over the same first events (from the
    /// embedded store's run), to compare with `events_per_s`.
    store_path_events_per_s: f64,
    /// The sender's side, not in `ingest_s`: JSON and gzip per batch.
    encode_ms_per_batch: f64,
    gzip_bytes_per_batch: f64,
    json_bytes_per_batch: f64,
    /// Searches through `GET /api/v1/search` on the embedded store at the
    /// last checkpoint.
    search_events: u64,
    search: BTreeMap<String, Latency>,
}

#[derive(Debug, Default, Serialize)]
struct ClientsReport {
    clients: usize,
    events: u64,
    /// From the first batch sent to the last acknowledged.
    wall_s: f64,
    events_per_s: f64,
    /// Each client's `ingest` calls, waiting for the writer included.
    batch: Latency,
}

#[derive(Debug, Default, Serialize)]
struct BaselineReport {
    schema: String,
    /// `pg_trgm.similarity_threshold` (the `%` operator's cut-off).
    trgm_similarity_threshold: f32,
    loads: Vec<Value>,
    checkpoints: Vec<Checkpoint>,
}

#[derive(Debug, Serialize)]
struct Target {
    what: String,
    target: String,
    value: f64,
    met: bool,
}

// ---------------------------------------------------------------- helpers

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn per_million(bytes: u64, events: u64) -> f64 {
    bytes as f64 * 1e6 / events.max(1) as f64
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        thousands(n)
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).expect("time in range")
}

fn rfc3339(ms: i64) -> String {
    at(ms)
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formattable")
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
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

fn pg_connect(url: &str) -> Result<postgres::Client> {
    postgres::Client::connect(url, postgres::NoTls)
        .with_context(|| format!("cannot connect to {}", safecity_server::redact_url(url)))
}

/// Builds the events of `[from, to)` on a second thread, `batch` at a time.
fn batches(
    data: &Arc<Dataset>,
    from: u64,
    to: u64,
    batch: usize,
) -> std::sync::mpsc::Receiver<Vec<NewEvent>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4);
    let data = data.clone();
    std::thread::spawn(move || {
        let mut i = from;
        while i < to {
            let end = (i + batch as u64).min(to);
            let events = (i..end)
                .map(|j| NewEvent {
                    event: data.event(j),
                    snapshot: None,
                })
                .collect();
            if tx.send(events).is_err() {
                return;
            }
            i = end;
        }
    });
    rx
}

/// Ingests `[from, to)` through `store`; the time inside `ingest` and the
/// wall time, and each batch's time.
fn ingest(
    store: &dyn Store,
    data: &Arc<Dataset>,
    from: u64,
    to: u64,
    batch: usize,
) -> Result<(Segment, Duration, Vec<Duration>)> {
    let started = Instant::now();
    let mut times = Vec::with_capacity(((to - from) as usize).div_ceil(batch));
    let mut inside = Duration::ZERO;
    let mut done = from;
    let mut next_report = from + 1_000_000;
    for events in batches(data, from, to, batch) {
        let n = events.len() as u64;
        let t = Instant::now();
        let outcome = store.ingest(&events)?;
        let dt = t.elapsed();
        ensure!(
            outcome.accepted == n,
            "ingest accepted {} of {n} events (duplicates {})",
            outcome.accepted,
            outcome.duplicates
        );
        inside += dt;
        times.push(dt);
        done += n;
        if done >= next_report {
            eprintln!(
                "  {} events, {:.0} events/s inside ingest",
                thousands(done),
                (done - from) as f64 / secs(inside)
            );
            next_report += 1_000_000;
        }
    }
    ensure!(done == to, "generator stopped at {done} of {to}");
    Ok((
        Segment {
            from,
            to,
            ingest_s: secs(inside),
            events_per_s: (to - from) as f64 / secs(inside),
            batch: Latency::of(&times),
            written_per_event: BTreeMap::new(),
        },
        started.elapsed(),
        times,
    ))
}

/// The query the search handler builds for `q`.
fn search_query(q: &Query) -> Result<SearchQuery> {
    let plate = match q.kind {
        Kind::Exact => PlateQuery::Exact(q.text.clone()),
        Kind::Wildcard => {
            let pattern = PlatePattern::parse(&q.text)?;
            if pattern.is_exact() {
                PlateQuery::Exact(pattern.as_str().to_owned())
            } else {
                PlateQuery::Wildcard(pattern)
            }
        }
        Kind::Fuzzy => PlateQuery::Fuzzy {
            plate: q.text.clone(),
            max_distance: MAX_DISTANCE,
        },
    };
    Ok(SearchQuery {
        plate,
        from_ms: Some(q.from_ms),
        to_ms: Some(q.to_ms),
        cameras: None,
        near: None,
        class: None,
        colour: None,
        kind: None,
        limit: LIMIT,
        after: None,
    })
}

/// One search's result: ids, and whether the source plate was among them.
struct Found {
    ids: Vec<String>,
    source: bool,
    /// Set by [`time_searches`].
    elapsed: Duration,
}

fn plate_of_event(v: &Value) -> Option<&str> {
    v.get("plate")?.get("text")?.as_str()
}

/// Runs `queries` one after another through `run`, after `warm` searches.
fn time_searches(
    queries: &[Query],
    warm: &[Query],
    mut run: impl FnMut(&Query) -> Result<Found>,
) -> Result<(Latency, Vec<Found>)> {
    for q in warm {
        run(q)?;
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut found = Vec::with_capacity(queries.len());
    for q in queries {
        let t = Instant::now();
        let mut f = run(q)?;
        f.elapsed = t.elapsed();
        times.push(f.elapsed);
        found.push(f);
    }
    Ok((Latency::of(&times), found))
}

fn figures(how: &str, latency: Latency, queries: &[Query], found: &[Found]) -> SearchFigures {
    let n = found.len().max(1) as f64;
    let mut shapes: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for (q, f) in queries.iter().zip(found) {
        if let Some(shape) = q.shape {
            shapes.entry(shape.to_owned()).or_default().push(f.elapsed);
        }
    }
    SearchFigures {
        how: how.to_owned(),
        latency,
        hits_mean: found.iter().map(|f| f.ids.len()).sum::<usize>() as f64 / n,
        source_found: found.iter().filter(|f| f.source).count() as f64 / n,
        by_shape: shapes
            .into_iter()
            .map(|(k, v)| (k, Latency::of(&v)))
            .collect(),
        ..SearchFigures::default()
    }
}

fn differ(a: &[Found], b: &[Found]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.ids != y.ids).count()
}

/// Exact, wildcard and fuzzy searches through `store`, with the plate
/// index's share timed separately.
fn search_store(
    store: &dyn Store,
    queries: &QuerySet,
    warm: &QuerySet,
    results: &mut BTreeMap<Kind, Vec<Found>>,
) -> Result<BTreeMap<String, SearchFigures>> {
    let mut out = BTreeMap::new();
    for kind in Kind::ALL {
        let (latency, found) = time_searches(queries.of(kind), warm.of(kind), |q| {
            let page = store.search(&search_query(q)?)?;
            Ok(Found {
                source: page
                    .hits
                    .iter()
                    .any(|h| plate_of_event(&h.event) == Some(q.source.as_str())),
                ids: page.hits.into_iter().map(|h| h.id).collect(),
                elapsed: Duration::ZERO,
            })
        })?;
        let how = match kind {
            Kind::Exact => "Store::search, PlateQuery::Exact",
            Kind::Wildcard => "Store::search, PlateQuery::Wildcard (plate index, then (plate, ts))",
            Kind::Fuzzy => {
                "Store::search, PlateQuery::Fuzzy within 2 (plate index, then (plate, ts))"
            }
        };
        let mut f = figures(how, latency, queries.of(kind), &found);
        if kind != Kind::Exact {
            let mut times = Vec::new();
            let mut plates = 0usize;
            for q in queries.of(kind) {
                let sq = search_query(q)?;
                let t = Instant::now();
                plates += store.plates(&sq.plate)?.len();
                times.push(t.elapsed());
            }
            f.index = Some(Latency::of(&times));
            f.plates_mean = Some(plates as f64 / queries.of(kind).len().max(1) as f64);
        }
        out.insert(kind.as_str().to_owned(), f);
        results.insert(kind, found);
    }
    Ok(out)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn sqlite_disk(dir: &Path, events: u64) -> Disk {
    let mut parts = BTreeMap::new();
    for name in [
        "safecity.sqlite3",
        "safecity.sqlite3-wal",
        "safecity.sqlite3-shm",
    ] {
        parts.insert(name.to_owned(), file_size(&dir.join(name)));
    }
    let bytes = parts.values().sum();
    Disk {
        bytes,
        bytes_per_million_events: per_million(bytes, events),
        parts,
    }
}

/// Runs this program again to open a store holding `events` events in a
/// fresh process and report its memory.
fn probe(flag: &str, target: &str, events: u64) -> Result<Value> {
    // The running image, even if the file was rebuilt meanwhile.
    let exe = Path::new("/proc/self/exe");
    let exe = if exe.exists() {
        exe.to_owned()
    } else {
        std::env::current_exe()?
    };
    let out = std::process::Command::new(exe)
        .args([flag, target])
        .stderr(std::process::Stdio::inherit())
        .output()?;
    ensure!(out.status.success(), "the memory probe failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v: Value = serde_json::from_str(text.trim())?;
    let after = v["rss_after_open_bytes"].as_u64().unwrap_or(0);
    v["rss_after_open_bytes_per_million_events"] = json!(per_million(after, events));
    Ok(v)
}

fn probe_report(open: impl FnOnce() -> Result<Box<dyn std::any::Any>>) -> Result<()> {
    let before = proc_status_bytes("VmRSS");
    let t = Instant::now();
    let store = open()?;
    let open_s = secs(t.elapsed());
    let after = proc_status_bytes("VmRSS");
    let report = json!({
        "rss_before_open_bytes": before,
        "rss_after_open_bytes": after,
        "open_rss_bytes": after.saturating_sub(before),
        "peak_rss_bytes": proc_status_bytes("VmHWM"),
        "open_s": open_s,
    });
    drop(store);
    println!("{report}");
    Ok(())
}

// ---------------------------------------------------------------- phases

struct Run {
    args: Args,
    data: Arc<Dataset>,
    checkpoints: Vec<u64>,
    queries: BTreeMap<u64, QuerySet>,
    warm: QuerySet,
    /// The embedded store's results per checkpoint, to compare with.
    sqlite_results: BTreeMap<u64, BTreeMap<Kind, Vec<Found>>>,
    /// Times of the embedded store's first ingest batches.
    sqlite_first_batches: Vec<Duration>,
}

impl Run {
    /// Ingest and searches on the embedded store; `report` holds what was
    /// measured even when a later step fails.
    fn sqlite(&mut self, report: &mut StoreReport) -> Result<()> {
        let dir = self.args.data_dir.join("sqlite");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let store = Arc::new(SqliteStore::open(&dir)?);
        let mut from = 0;
        let mut wall = Duration::ZERO;
        for &cp in &self.checkpoints.clone() {
            eprintln!(
                "sqlite: ingesting events {}..{}",
                thousands(from),
                thousands(cp)
            );
            let io = (proc_io("wchar"), proc_io("write_bytes"));
            let (mut segment, w, times) =
                ingest(store.as_ref(), &self.data, from, cp, self.args.batch)?;
            if from == 0 {
                self.sqlite_first_batches = times;
            }
            let n = (cp - from) as f64;
            segment
                .written_per_event
                .insert("wchar", (proc_io("wchar") - io.0) as f64 / n);
            segment
                .written_per_event
                .insert("write_bytes", (proc_io("write_bytes") - io.1) as f64 / n);
            wall += w;
            report.segments.push(segment);
            report.totals(cp, wall);
            eprintln!("sqlite: searching at {} events", thousands(cp));
            let mut results = BTreeMap::new();
            let search =
                search_store(store.as_ref(), &self.queries[&cp], &self.warm, &mut results)?;
            self.sqlite_results.insert(cp, results);
            let memory = probe("--probe-sqlite", &dir.to_string_lossy(), cp)?;
            report.checkpoints.push(Checkpoint {
                events: cp,
                distinct_plates: self.data.distinct_plates(cp),
                load_average: load_average(),
                search,
                disk: sqlite_disk(&dir, cp),
                memory: Some(memory),
            });
            from = cp;
        }
        Ok(())
    }

    /// The first `--clients-events` events into a fresh embedded store by
    /// `clients` threads at once, each taking the next batch built.
    fn clients(&self, clients: usize, report: &mut ClientsReport) -> Result<()> {
        let n = self.args.clients_events.min(self.data.len());
        let dir = self.args.data_dir.join("clients");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let store = SqliteStore::open(&dir)?;
        eprintln!(
            "clients: {} events by {clients} client(s) at once",
            thousands(n)
        );
        let source = std::sync::Mutex::new(batches(&self.data, 0, n, self.args.batch));
        let started = Instant::now();
        let times = std::thread::scope(|scope| -> Result<Vec<Duration>> {
            let workers: Vec<_> = (0..clients)
                .map(|_| {
                    scope.spawn(|| -> Result<Vec<Duration>> {
                        let mut times = Vec::new();
                        loop {
                            let next = source.lock().expect("batch source").recv();
                            let Ok(events) = next else {
                                return Ok(times);
                            };
                            let t = Instant::now();
                            let outcome = store.ingest(&events)?;
                            times.push(t.elapsed());
                            ensure!(
                                outcome.accepted == events.len() as u64,
                                "ingest accepted {} of {} events",
                                outcome.accepted,
                                events.len()
                            );
                        }
                    })
                })
                .collect();
            let mut all = Vec::new();
            for w in workers {
                all.extend(w.join().expect("client thread")?);
            }
            Ok(all)
        })?;
        let wall = started.elapsed();
        *report = ClientsReport {
            clients,
            events: n,
            wall_s: secs(wall),
            events_per_s: n as f64 / secs(wall),
            batch: Latency::of(&times),
        };
        drop(store);
        if !self.args.keep_data {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    /// Searches through the HTTP handler on the embedded store, and ingest
    /// of gzip JSON batches through it into a fresh store.
    fn http(&self, report: &mut HttpReport) -> Result<()> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let last = *self.checkpoints.last().expect("a checkpoint");

        if self.args.http_queries > 0 {
            let dir = self.args.data_dir.join("sqlite");
            let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir)?);
            let token = new_token();
            store.add_token(
                &token_hash(&token),
                &TokenOwner {
                    name: "server-bench".into(),
                    role: Role::Investigator,
                    expires_ms: None,
                },
            )?;
            let config = ServerConfig {
                data_dir: dir.clone(),
                ..ServerConfig::default()
            };
            let blobs = Arc::new(BlobStore::open(&dir.join("blobs"))?);
            let router = app(AppState::new(store, blobs, &config));
            let n = self.args.http_queries;
            eprintln!(
                "http: {n} searches of each kind at {} events",
                thousands(last)
            );
            report.search_events = last;
            for kind in Kind::ALL {
                let queries =
                    &self.queries[&last].of(kind)[..n.min(self.queries[&last].of(kind).len())];
                let (latency, _) = time_searches(queries, self.warm.of(kind), |q| {
                    let mut uri = format!(
                        "/api/v1/search?plate={}&mode={}&from={}&to={}&reason=benchmark",
                        q.text.replace('?', "%3F").replace('*', "%2A"),
                        kind.as_str(),
                        rfc3339(q.from_ms),
                        rfc3339(q.to_ms)
                    );
                    if kind == Kind::Fuzzy {
                        uri.push_str(&format!("&max_distance={MAX_DISTANCE}"));
                    }
                    let request = axum::http::Request::get(uri)
                        .header("authorization", format!("Bearer {token}"))
                        .body(axum::body::Body::empty())?;
                    let (status, body) = rt.block_on(async {
                        use tower::ServiceExt;
                        let response = router.clone().oneshot(request).await?;
                        let status = response.status();
                        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                        anyhow::Ok((status, body))
                    })?;
                    ensure!(
                        status.is_success(),
                        "search: {status} {}",
                        String::from_utf8_lossy(&body)
                    );
                    let v: Value = serde_json::from_slice(&body)?;
                    let results = v["results"].as_array().cloned().unwrap_or_default();
                    Ok(Found {
                        source: results
                            .iter()
                            .any(|r| plate_of_event(&r["event"]) == Some(q.source.as_str())),
                        ids: Vec::new(),
                        elapsed: Duration::ZERO,
                    })
                })?;
                report.search.insert(kind.as_str().to_owned(), latency);
            }
        }

        let n = self.args.http_events.min(self.data.len());
        if n == 0 {
            return Ok(());
        }
        let dir = self.args.data_dir.join("http");
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let config = ServerConfig {
            data_dir: dir.clone(),
            ..ServerConfig::default()
        };
        let state = AppState::open(&config)?;
        let token = new_token();
        state.store().add_token(
            &token_hash(&token),
            // An admin's: the events come from many edges, and an edge
            // token speaks for its own edge only.
            &TokenOwner {
                name: "server-bench".into(),
                role: Role::Admin,
                expires_ms: None,
            },
        )?;
        let router = app(state);
        eprintln!("http: ingesting {} events as gzip JSON", thousands(n));
        let mut times = Vec::new();
        let (mut encode, mut gz_bytes, mut json_bytes) = (Duration::ZERO, 0usize, 0usize);
        let mut i = 0;
        while i < n {
            let end = (i + self.args.batch as u64).min(n);
            let events: Vec<_> = (i..end).map(|j| self.data.event(j)).collect();
            let t = Instant::now();
            let json = serde_json::to_vec(&events)?;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&json)?;
            let body = gz.finish()?;
            encode += t.elapsed();
            json_bytes += json.len();
            gz_bytes += body.len();
            let request = axum::http::Request::post("/api/v1/events")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .body(axum::body::Body::from(body))?;
            let t = Instant::now();
            let (status, body) = rt.block_on(async {
                use tower::ServiceExt;
                let response = router.clone().oneshot(request).await?;
                let status = response.status();
                let body = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
                anyhow::Ok((status, body))
            })?;
            times.push(t.elapsed());
            ensure!(
                status.is_success(),
                "ingest: {status} {}",
                String::from_utf8_lossy(&body)
            );
            let v: Value = serde_json::from_slice(&body)?;
            ensure!(
                v["accepted"].as_u64() == Some(end - i),
                "ingest answered {v}"
            );
            i = end;
        }
        let batches = times.len().max(1) as f64;
        report.ingest_events = n;
        report.ingest_s = times.iter().map(|t| secs(*t)).sum();
        report.events_per_s = n as f64 / report.ingest_s;
        report.batch = Latency::of(&times);
        report.encode_ms_per_batch = secs(encode) * 1e3 / batches;
        let same = &self.sqlite_first_batches[..times.len().min(self.sqlite_first_batches.len())];
        if same.len() == times.len() {
            report.store_path_events_per_s = n as f64 / same.iter().map(|t| secs(*t)).sum::<f64>();
        }
        report.gzip_bytes_per_batch = gz_bytes as f64 / batches;
        report.json_bytes_per_batch = json_bytes as f64 / batches;
        if !self.args.keep_data {
            drop(router);
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    fn postgres_store(&self, admin: &str, events: u64, report: &mut StoreReport) -> Result<()> {
        recreate_database(admin, "bench_store")?;
        let url = with_database(admin, "bench_store");
        let store = PostgresStore::connect(&url)?;
        let mut client = pg_connect(&url)?;
        let mut from = 0;
        let mut wall = Duration::ZERO;
        let mut stops: Vec<u64> = self
            .checkpoints
            .iter()
            .copied()
            .filter(|&c| c < events)
            .collect();
        stops.push(events);
        for cp in stops {
            eprintln!(
                "postgres store: ingesting events {}..{}",
                thousands(from),
                thousands(cp)
            );
            let wal = wal_bytes(&mut client)?;
            let (mut segment, w, _) = ingest(&store, &self.data, from, cp, self.args.batch)?;
            segment.written_per_event.insert(
                "wal_bytes",
                (wal_bytes(&mut client)? - wal) as f64 / (cp - from) as f64,
            );
            wall += w;
            report.segments.push(segment);
            report.totals(cp, wall);
            client.batch_execute("VACUUM ANALYZE")?;
            let queries = match self.queries.get(&cp) {
                Some(q) => q.clone(),
                None => self.draw(cp),
            };
            eprintln!("postgres store: searching at {} events", thousands(cp));
            let mut results = BTreeMap::new();
            let mut search = search_store(&store, &queries, &self.warm, &mut results)?;
            if let Some(ours) = self.sqlite_results.get(&cp) {
                for kind in Kind::ALL {
                    if let (Some(f), Some(a), Some(b)) = (
                        search.get_mut(kind.as_str()),
                        ours.get(&kind),
                        results.get(&kind),
                    ) {
                        f.differ_from_sqlite = Some(differ(a, b));
                    }
                }
            }
            let parts = pg_sizes(
                &mut client,
                "SELECT CASE WHEN c.relname LIKE 'events%' THEN 'events (all partitions)'
                             ELSE c.relname END,
                        sum(pg_total_relation_size(c.oid))::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind = 'r' GROUP BY 1",
            )?;
            let bytes = parts.values().sum();
            let memory = probe("--probe-postgres", &url, cp)?;
            report.checkpoints.push(Checkpoint {
                events: cp,
                distinct_plates: self.data.distinct_plates(cp),
                load_average: load_average(),
                search,
                disk: Disk {
                    bytes,
                    bytes_per_million_events: per_million(bytes, cp),
                    parts,
                },
                memory: Some(memory),
            });
            from = cp;
        }
        drop(store);
        drop(client);
        if !self.args.keep_data {
            drop_database(admin, "bench_store")?;
        }
        Ok(())
    }

    fn draw(&self, stored: u64) -> QuerySet {
        QuerySet::draw(&self.data, stored, query_counts(&self.args), self.args.seed)
    }

    fn baseline(&self, admin: &str, report: &mut BaselineReport) -> Result<()> {
        recreate_database(admin, "bench_plain")?;
        let url = with_database(admin, "bench_plain");
        let mut client = pg_connect(&url)?;
        client.batch_execute(BASELINE_SCHEMA)?;
        report.schema = format!("{BASELINE_SCHEMA}\n{BASELINE_INDEXES}");
        report.trgm_similarity_threshold = client.query_one("SELECT show_limit()", &[])?.get(0);
        let mut from = 0;
        for &cp in &self.checkpoints {
            if from > 0 {
                client.batch_execute(
                    "DROP INDEX sightings_plate_ts; DROP INDEX sightings_plate_trgm;",
                )?;
            }
            eprintln!(
                "baseline: COPY events {}..{}",
                thousands(from),
                thousands(cp)
            );
            let wal = wal_bytes(&mut client)?;
            let copy_s = self.copy(&mut client, from, cp)?;
            let copy_wal = wal_bytes(&mut client)? - wal;
            eprintln!("baseline: indexes and ANALYZE");
            let t = Instant::now();
            client.batch_execute(BASELINE_INDEXES)?;
            let index_s = secs(t.elapsed());
            let index_wal = wal_bytes(&mut client)? - wal - copy_wal;
            let t = Instant::now();
            client.batch_execute("VACUUM ANALYZE sightings")?;
            let analyze_s = secs(t.elapsed());
            report.loads.push(json!({
                "from": from, "to": cp,
                "copy_s": copy_s,
                "copy_events_per_s": (cp - from) as f64 / copy_s,
                "index_s": index_s,
                "vacuum_analyze_s": analyze_s,
                "copy_wal_bytes_per_event": copy_wal as f64 / (cp - from) as f64,
                "index_wal_bytes": index_wal,
                "note": if from > 0 {
                    "the two search indexes were dropped before COPY and built again after"
                } else {
                    "COPY into the table with its primary key, then the search indexes"
                },
            }));
            eprintln!("baseline: searching at {} events", thousands(cp));
            let search = self.baseline_search(&mut client, cp)?;
            let parts = pg_sizes(
                &mut client,
                "SELECT c.relname::text, pg_relation_size(c.oid) FROM pg_class c
                 WHERE c.relname IN ('sightings', 'sightings_pkey', 'sightings_plate_ts',
                                     'sightings_plate_trgm')
                 UNION ALL
                 SELECT 'toast', coalesce(pg_total_relation_size(reltoastrelid), 0)
                 FROM pg_class WHERE relname = 'sightings'",
            )?;
            let bytes: u64 = client
                .query_one("SELECT pg_total_relation_size('sightings')", &[])?
                .get::<_, i64>(0) as u64;
            report.checkpoints.push(Checkpoint {
                events: cp,
                distinct_plates: self.data.distinct_plates(cp),
                load_average: load_average(),
                search,
                disk: Disk {
                    bytes,
                    bytes_per_million_events: per_million(bytes, cp),
                    parts,
                },
                memory: None,
            });
            from = cp;
        }
        drop(client);
        if !self.args.keep_data {
            drop_database(admin, "bench_plain")?;
        }
        Ok(())
    }

    /// `COPY sightings FROM STDIN` of events `[from, to)`, in seconds.
    fn copy(&self, client: &mut postgres::Client, from: u64, to: u64) -> Result<f64> {
        let t = Instant::now();
        let mut writer = std::io::BufWriter::with_capacity(
            1 << 20,
            client.copy_in(
                "COPY sightings (id, kind, edge_id, camera, ts, plate, confidence,
                                 vehicle_class, colour, json) FROM STDIN",
            )?,
        );
        let mut line = String::new();
        for i in from..to {
            let e = self.data.event(i);
            let json = serde_json::to_string(&e)?;
            let plate = e.plate.as_ref().expect("plate reads");
            let vehicle = e.vehicle.as_ref().expect("vehicles");
            line.clear();
            use std::fmt::Write as _;
            write!(
                line,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
                e.id,
                e.kind.as_str(),
                e.edge_id,
                e.camera_id,
                rfc3339(self.data.ts_ms(i)),
                plate.text,
                plate.confidence,
                vehicle.class,
                vehicle.colour.as_deref().unwrap_or("\\N"),
            )?;
            for c in json.chars() {
                match c {
                    '\\' => line.push_str("\\\\"),
                    '\t' => line.push_str("\\t"),
                    '\n' => line.push_str("\\n"),
                    '\r' => line.push_str("\\r"),
                    c => line.push(c),
                }
            }
            line.push('\n');
            writer.write_all(line.as_bytes())?;
        }
        let writer = writer.into_inner().map_err(|e| e.into_error())?;
        let rows = writer.finish()?;
        ensure!(
            rows == to - from,
            "COPY stored {rows} of {} rows",
            to - from
        );
        Ok(secs(t.elapsed()))
    }

    fn baseline_search(
        &self,
        client: &mut postgres::Client,
        cp: u64,
    ) -> Result<BTreeMap<String, SearchFigures>> {
        const COLUMNS: &str = "SELECT id, ts, json, plate FROM sightings";
        const ORDER: &str = "AND ts >= $2 AND ts <= $3 ORDER BY ts DESC, id DESC LIMIT $4";
        let variants: [(&str, Kind, String); 4] = [
            (
                "exact",
                Kind::Exact,
                format!("{COLUMNS} WHERE plate = $1 {ORDER}"),
            ),
            (
                "wildcard",
                Kind::Wildcard,
                format!("{COLUMNS} WHERE plate LIKE $1 {ORDER}"),
            ),
            (
                "fuzzy",
                Kind::Fuzzy,
                format!("{COLUMNS} WHERE plate % $1 AND levenshtein(plate, $1) <= 2 {ORDER}"),
            ),
            (
                "fuzzy_scan",
                Kind::Fuzzy,
                format!("{COLUMNS} WHERE levenshtein(plate, $1) <= 2 {ORDER}"),
            ),
        ];
        let queries = &self.queries[&cp];
        let ours = self.sqlite_results.get(&cp);
        let mut out = BTreeMap::new();
        for (name, kind, sql) in variants {
            let statement = client.prepare(&sql)?;
            let all = queries.of(kind);
            let (list, warm) = if name == "fuzzy_scan" {
                (&all[..self.args.scan_queries.min(all.len())], &[][..])
            } else {
                (all, self.warm.of(kind))
            };
            if list.is_empty() {
                continue;
            }
            let (latency, found) = time_searches(list, warm, |q| {
                let text = if kind == Kind::Wildcard {
                    q.like()
                } else {
                    q.text.clone()
                };
                let rows = client.query(
                    &statement,
                    &[&text, &at(q.from_ms), &at(q.to_ms), &(LIMIT as i64 + 1)],
                )?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut source = false;
                for row in rows.iter().take(LIMIT) {
                    let id: String = row.get(0);
                    let _ts: OffsetDateTime = row.get(1);
                    // Parsed as the server parses its stored JSON.
                    let _event: Value = serde_json::from_str(row.get::<_, &str>(2))?;
                    source |= row.get::<_, &str>(3) == q.source;
                    ids.push(id);
                }
                Ok(Found {
                    ids,
                    source,
                    elapsed: Duration::ZERO,
                })
            })?;
            let mut f = figures(&sql, latency, list, &found);
            if kind != Kind::Fuzzy {
                if let Some(a) = ours.and_then(|o| o.get(&kind)) {
                    f.differ_from_sqlite = Some(differ(a, &found));
                }
            }
            out.insert(name.to_owned(), f);
        }
        Ok(out)
    }
}

const BASELINE_SCHEMA: &str = "
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

const BASELINE_INDEXES: &str = "
CREATE INDEX sightings_plate_ts ON sightings (plate, ts);
CREATE INDEX sightings_plate_trgm ON sightings USING gin (plate gin_trgm_ops);";

/// WAL written by the whole PostgreSQL server so far.
fn wal_bytes(client: &mut postgres::Client) -> Result<u64> {
    let row = client.query_one("SELECT wal_bytes::float8 FROM pg_stat_wal", &[])?;
    Ok(row.get::<_, f64>(0) as u64)
}

fn pg_sizes(client: &mut postgres::Client, sql: &str) -> Result<BTreeMap<String, u64>> {
    Ok(client
        .query(sql, &[])?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect())
}

fn recreate_database(admin: &str, db: &str) -> Result<()> {
    let mut client = pg_connect(admin)?;
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    client.batch_execute(&format!(
        "CREATE DATABASE {db} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    ))?;
    Ok(())
}

fn drop_database(admin: &str, db: &str) -> Result<()> {
    pg_connect(admin)?.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))?;
    Ok(())
}

fn query_counts(args: &Args) -> [usize; 3] {
    [
        args.queries,
        args.wildcard_queries.unwrap_or(args.queries / 5),
        args.fuzzy_queries.unwrap_or(args.queries / 5),
    ]
}

fn machine(postgres: Option<&str>) -> Result<Machine> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split(':')
                    .nth(1)
                    .map(|v| v.trim().to_owned())
            })
        })
        .unwrap_or_default();
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    let mut m = Machine {
        load_start: load_average(),
        damon_reclaim: std::fs::read_to_string("/sys/kernel/mm/damon/admin/kdamonds/0/state")
            .is_ok_and(|s| s.trim() == "on"),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu,
        memory_bytes,
        ..Machine::default()
    };
    if let Some(url) = postgres {
        let mut client = pg_connect(url)?;
        m.postgres_version = Some(client.query_one("SHOW server_version", &[])?.get(0));
        for name in [
            "shared_buffers",
            "work_mem",
            "maintenance_work_mem",
            "effective_cache_size",
            "max_wal_size",
            "checkpoint_timeout",
            "wal_level",
            "fsync",
            "synchronous_commit",
            "full_page_writes",
            "random_page_cost",
            "max_parallel_workers_per_gather",
            "max_parallel_maintenance_workers",
            "jit",
        ] {
            let value: Option<String> = client
                .query_one("SELECT current_setting($1, true)", &[&name])?
                .get(0);
            m.postgres_settings
                .insert(name.to_owned(), value.unwrap_or_else(|| "(default)".into()));
        }
    }
    Ok(m)
}

// ---------------------------------------------------------------- output

fn targets(report: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    let mut add = |what: String, target: &str, value: f64, met: bool| {
        out.push(Target {
            what,
            target: target.to_owned(),
            value,
            met,
        })
    };
    for (name, store) in [
        ("sqlite", &report.sqlite),
        ("postgres store", &report.postgres_store),
    ] {
        let Some(s) = store else { continue };
        add(
            format!(
                "{name}: ingest events/s, batches of {}, 0..{}",
                thousands(report.settings.batch as u64),
                short(s.events)
            ),
            ">= 100000",
            s.events_per_s,
            s.events_per_s >= 100_000.0,
        );
        if let Some(cp) = s.checkpoints.last() {
            for (kind, limit) in [("exact", 5.0), ("fuzzy", 50.0), ("wildcard", 100.0)] {
                if let Some(f) = cp.search.get(kind) {
                    add(
                        format!("{name}: {kind} search p99 ms at {}", short(cp.events)),
                        &format!("<= {limit}"),
                        f.latency.p99_ms,
                        f.latency.p99_ms <= limit,
                    );
                }
            }
        }
    }
    if let Some(c) = report.clients.iter().rfind(|c| c.clients > 1) {
        add(
            format!(
                "sqlite, {} clients at once: ingest events/s, batches of {}, 0..{}",
                c.clients,
                thousands(report.settings.batch as u64),
                short(c.events)
            ),
            ">= 100000",
            c.events_per_s,
            c.events_per_s >= 100_000.0,
        );
    }
    out
}

fn print_table(r: &Report) {
    let mut o = String::new();
    use std::fmt::Write as _;
    let d = &r.data;
    let _ = writeln!(
        o,
        "\nserver-bench: {} events, {} distinct plates, {} cameras, {} days, seed {}, no snapshots; batches of {}",
        thousands(d.events),
        thousands(u64::from(d.plates)),
        d.cameras,
        d.days,
        d.seed,
        r.settings.batch
    );
    let _ = writeln!(
        o,
        "machine: {} CPUs ({}), {:.0} GiB RAM{}; load average {:.1} at start, {:.1} at end",
        r.machine.cpus,
        r.machine.cpu,
        r.machine.memory_bytes as f64 / (1u64 << 30) as f64,
        r.machine
            .postgres_version
            .as_ref()
            .map(|v| format!(", PostgreSQL {v}"))
            .unwrap_or_default(),
        r.machine.load_start,
        r.machine.load_end
    );
    let _ = writeln!(
        o,
        "\nINGEST                                   events/s   batch p50   batch p99   written/event"
    );
    let seg = |o: &mut String, name: &str, s: &Segment| {
        let written = s
            .written_per_event
            .get("wchar")
            .map(|b| format!("{b:>8.0} B (write calls)"))
            .or_else(|| {
                s.written_per_event
                    .get("wal_bytes")
                    .map(|b| format!("{b:>8.0} B (WAL)"))
            })
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<36} {:>10.0} {:>8.1} ms {:>8.1} ms  {written}",
            format!("{name} {}..{}", short(s.from), short(s.to)),
            s.events_per_s,
            s.batch.p50_ms,
            s.batch.p99_ms
        );
    };
    if let Some(s) = &r.sqlite {
        for x in &s.segments {
            seg(&mut o, "sqlite Store::ingest", x);
        }
        let _ = writeln!(
            o,
            "  {:<36} {:>10.0}   (wall, generation on another thread: {:.0}/s)",
            format!("sqlite Store::ingest 0..{}", short(s.events)),
            s.events_per_s,
            s.wall_events_per_s
        );
    }
    for c in &r.clients {
        let _ = writeln!(
            o,
            "  {:<36} {:>10.0} {:>8.1} ms {:>8.1} ms  (wall clock, fresh store)",
            format!(
                "sqlite {} client(s) at once 0..{}",
                c.clients,
                short(c.events)
            ),
            c.events_per_s,
            c.batch.p50_ms,
            c.batch.p99_ms,
        );
    }
    if let Some(h) = &r.http {
        if h.ingest_events > 0 {
            let _ = writeln!(
                o,
                "  {:<36} {:>10.0} {:>8.1} ms {:>8.1} ms  (Store::ingest alone on these events: {:.0}/s)",
                format!("sqlite HTTP gzip JSON 0..{}", short(h.ingest_events)),
                h.events_per_s,
                h.batch.p50_ms,
                h.batch.p99_ms,
                h.store_path_events_per_s
            );
        }
    }
    if let Some(s) = &r.postgres_store {
        for x in &s.segments {
            seg(&mut o, "postgres Store::ingest", x);
        }
    }
    if let Some(b) = &r.baseline {
        for l in &b.loads {
            let _ = writeln!(
                o,
                "  {:<36} {:>10.0}   (+ {:.0} s indexes, {:.0} s VACUUM ANALYZE)",
                format!(
                    "baseline COPY {}..{}",
                    short(l["from"].as_u64().unwrap_or(0)),
                    short(l["to"].as_u64().unwrap_or(0))
                ),
                l["copy_events_per_s"].as_f64().unwrap_or(0.0),
                l["index_s"].as_f64().unwrap_or(0.0),
                l["vacuum_analyze_s"].as_f64().unwrap_or(0.0)
            );
        }
    }

    let _ = writeln!(
        o,
        "\nSEARCH p50 / p99 ms (24 h window, page of {LIMIT})  exact            wildcard          fuzzy <= 2        n"
    );
    let cell = |f: Option<&SearchFigures>| match f {
        Some(f) => format!("{:>6.2} / {:>7.2}", f.latency.p50_ms, f.latency.p99_ms),
        None => format!("{:>16}", "-"),
    };
    let mut rows: Vec<(u64, String, &Checkpoint, &str)> = Vec::new();
    if let Some(s) = &r.sqlite {
        rows.extend(
            s.checkpoints
                .iter()
                .map(|c| (c.events, "sqlite".to_owned(), c, "fuzzy")),
        );
    }
    if let Some(s) = &r.postgres_store {
        rows.extend(
            s.checkpoints
                .iter()
                .map(|c| (c.events, "postgres store".to_owned(), c, "fuzzy")),
        );
    }
    if let Some(b) = &r.baseline {
        for c in &b.checkpoints {
            rows.push((
                c.events,
                "baseline =, LIKE, % + lev.".to_owned(),
                c,
                "fuzzy",
            ));
            rows.push((
                c.events,
                "baseline levenshtein scan".to_owned(),
                c,
                "fuzzy_scan",
            ));
        }
    }
    rows.sort_by_key(|r| r.0);
    for (events, name, c, fuzzy) in rows {
        let n = |k: &str| c.search.get(k).map_or(0, |f| f.latency.n);
        if fuzzy == "fuzzy_scan" {
            let _ = writeln!(
                o,
                "  {:<44} {:>16}  {:>16}  {}  {}",
                format!("{name} @{}", short(events)),
                "",
                "",
                cell(c.search.get(fuzzy)),
                n(fuzzy)
            );
            continue;
        }
        let _ = writeln!(
            o,
            "  {:<44} {}  {}  {}  {}/{}/{}",
            format!("{name} @{}", short(events)),
            cell(c.search.get("exact")),
            cell(c.search.get("wildcard")),
            cell(c.search.get(fuzzy)),
            n("exact"),
            n("wildcard"),
            n(fuzzy)
        );
    }
    if let Some(h) = &r.http {
        if !h.search.is_empty() {
            let c = |k: &str| match h.search.get(k) {
                Some(l) => format!("{:>6.2} / {:>7.2}", l.p50_ms, l.p99_ms),
                None => format!("{:>16}", "-"),
            };
            let _ = writeln!(
                o,
                "  {:<44} {}  {}  {}  (with audit commit)",
                format!("sqlite via GET /api/v1/search @{}", short(h.search_events)),
                c("exact"),
                c("wildcard"),
                c("fuzzy")
            );
        }
    }
    let _ = writeln!(
        o,
        "\nRECALL (share of searches whose page holds the plate searched for)"
    );
    let recall = |o: &mut String, name: &str, c: &Checkpoint, key: &str| {
        if let Some(f) = c.search.get(key) {
            let _ = writeln!(
                o,
                "  {:<44} {:>5.1} %   hits/search {:>5.1}{}",
                format!("{name} @{}", short(c.events)),
                f.source_found * 100.0,
                f.hits_mean,
                f.plates_mean
                    .map(|p| format!("   plates/search {p:.1}"))
                    .unwrap_or_default()
            );
        }
    };
    for (name, store) in [
        ("sqlite fuzzy", &r.sqlite),
        ("postgres store fuzzy", &r.postgres_store),
    ] {
        if let Some(s) = store {
            for c in &s.checkpoints {
                recall(&mut o, name, c, "fuzzy");
            }
        }
    }
    if let Some(b) = &r.baseline {
        for c in &b.checkpoints {
            recall(&mut o, "baseline fuzzy (% + levenshtein)", c, "fuzzy");
            recall(&mut o, "baseline fuzzy (levenshtein scan)", c, "fuzzy_scan");
        }
    }
    let _ = writeln!(o, "\nWILDCARD BY SHAPE p50 / p99 ms");
    let mut shaped: Vec<(String, &Checkpoint)> = Vec::new();
    for (name, store) in [("sqlite", &r.sqlite), ("postgres store", &r.postgres_store)] {
        if let Some(c) = store.as_ref().and_then(|s| s.checkpoints.last()) {
            shaped.push((name.to_owned(), c));
        }
    }
    if let Some(c) = r.baseline.as_ref().and_then(|b| b.checkpoints.last()) {
        shaped.push(("baseline LIKE".to_owned(), c));
    }
    for (name, c) in shaped {
        if let Some(f) = c.search.get("wildcard") {
            let cells: Vec<String> = f
                .by_shape
                .iter()
                .map(|(k, l)| format!("{k} {:.2} / {:.2}", l.p50_ms, l.p99_ms))
                .collect();
            let _ = writeln!(
                o,
                "  {:<28} {}",
                format!("{name} @{}", short(c.events)),
                cells.join("   ")
            );
        }
    }
    let _ = writeln!(
        o,
        "\nWHERE FUZZY AND WILDCARD TIME GOES (plate index alone, p50 / p99 ms)"
    );
    for (name, store) in [("sqlite", &r.sqlite), ("postgres store", &r.postgres_store)] {
        if let Some(s) = store {
            for c in &s.checkpoints {
                for k in ["wildcard", "fuzzy"] {
                    if let Some(ix) = c.search.get(k).and_then(|f| f.index.as_ref()) {
                        let _ = writeln!(
                            o,
                            "  {:<44} {:>6.2} / {:>7.2}",
                            format!("{name} {k} @{}", short(c.events)),
                            ix.p50_ms,
                            ix.p99_ms
                        );
                    }
                }
            }
        }
    }
    let _ = writeln!(
        o,
        "\nDISK AND MEMORY                          total MiB   MiB per 1M events   open RSS MiB"
    );
    let disk = |o: &mut String, name: &str, c: &Checkpoint| {
        let open = c
            .memory
            .as_ref()
            .and_then(|m| m["rss_after_open_bytes"].as_u64())
            .map(|b| format!("{:>10.0}", mib(b)))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {:<36} {:>10.0} {:>15.0} {:>17}",
            format!("{name} @{}", short(c.events)),
            mib(c.disk.bytes),
            mib(c.disk.bytes_per_million_events as u64),
            open
        );
    };
    if let Some(s) = &r.sqlite {
        for c in &s.checkpoints {
            disk(&mut o, "sqlite files", c);
        }
    }
    if let Some(s) = &r.postgres_store {
        for c in &s.checkpoints {
            disk(&mut o, "postgres store tables", c);
        }
    }
    if let Some(b) = &r.baseline {
        for c in &b.checkpoints {
            disk(&mut o, "baseline table", c);
        }
    }
    let _ = writeln!(
        o,
        "  benchmark process peak RSS {:.0} MiB (generator, stores, clients)",
        mib(r.bench_peak_rss_bytes)
    );
    let _ = writeln!(o, "\nTARGETS");
    for t in &r.targets {
        let _ = writeln!(
            o,
            "  {:<56} {:>12.2} {:<10} {}",
            t.what,
            t.value,
            t.target,
            if t.met { "met" } else { "MISSED" }
        );
    }
    for n in &r.notes {
        let _ = writeln!(o, "note: {n}");
    }
    for e in &r.errors {
        let _ = writeln!(o, "FAILED: {e}");
    }
    let _ = writeln!(o, "total {:.0} s", r.wall_s);
    print!("{o}");
}

// ---------------------------------------------------------------- main

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(dir) = &args.probe_sqlite {
        return probe_report(|| Ok(Box::new(SqliteStore::open(dir)?)));
    }
    if let Some(url) = &args.probe_postgres {
        return probe_report(|| Ok(Box::new(PostgresStore::connect(url)?)));
    }
    let started = Instant::now();
    if args.events == 0 || args.batch == 0 {
        bail!("--events and --batch must be positive");
    }
    if u64::from(args.plates) > args.events || args.plates == 0 {
        bail!("--plates must be from 1 to --events");
    }
    if args.backend != Backend::Sqlite && args.postgres.is_none() {
        bail!("--backend {:?} needs --postgres URL", args.backend);
    }
    let mut checkpoints: Vec<u64> = if args.checkpoints.is_empty() {
        [1_000_000]
            .into_iter()
            .filter(|&c| c < args.events)
            .collect()
    } else {
        args.checkpoints
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < args.events)
            .collect()
    };
    checkpoints.push(args.events);
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let pg_store_events = args
        .pg_store_events
        .unwrap_or(match args.backend {
            Backend::Both => 1_000_000,
            _ => args.events,
        })
        .min(args.events);

    let mut report = Report {
        machine: machine(args.postgres.as_deref())?,
        ..Report::default()
    };
    eprintln!(
        "generating {} events over {} plates (seed {})",
        thousands(args.events),
        thousands(u64::from(args.plates)),
        args.seed
    );
    let t = Instant::now();
    let data = Arc::new(Dataset::generate(Spec::new(
        args.events,
        args.plates,
        args.seed,
    )));
    let generate_s = secs(t.elapsed());
    let sample = 1_000.min(args.events);
    let json_mean = (0..sample)
        .map(|i| {
            serde_json::to_string(&data.event(i * (args.events / sample))).map_or(0, |s| s.len())
        })
        .sum::<usize>() as f64
        / sample as f64;
    report.data = DataReport {
        events: args.events,
        plates: args.plates,
        seed: args.seed,
        cameras: data.spec.cameras,
        days: data.spec.days,
        snapshots: false,
        generate_s,
        event_json_bytes_mean: json_mean,
    };
    let counts = query_counts(&args);
    report.settings = Settings {
        backend: Some(args.backend),
        batch: args.batch,
        checkpoints: checkpoints.clone(),
        queries: [
            ("exact", counts[0]),
            ("wildcard", counts[1]),
            ("fuzzy", counts[2]),
            ("baseline_levenshtein_scan", args.scan_queries),
            ("http_per_kind", args.http_queries),
        ]
        .into_iter()
        .collect(),
        window_hours: safecity_benches::server::WINDOW_MS as f64 / 3.6e6,
        page_limit: LIMIT,
        fuzzy_max_distance: MAX_DISTANCE,
        warm_up_per_kind: WARM_UP,
        pg_store_events: if args.backend == Backend::Sqlite {
            0
        } else {
            pg_store_events
        },
    };
    let queries = checkpoints
        .iter()
        .map(|&cp| (cp, QuerySet::draw(&data, cp, counts, args.seed)))
        .collect();
    let warm = QuerySet::draw(
        &data,
        checkpoints[0],
        counts.map(|c| c.min(WARM_UP)),
        args.seed ^ 0xA11,
    );
    std::fs::create_dir_all(&args.data_dir)?;
    let mut run = Run {
        args,
        data,
        checkpoints,
        queries,
        warm,
        sqlite_results: BTreeMap::new(),
        sqlite_first_batches: Vec::new(),
    };
    report.notes.push(
        "Events are plate reads without snapshots; times are in order, as edges forward them. \
         Searches run one at a time right after ingest, on whatever the OS kept cached."
            .into(),
    );
    if report.machine.damon_reclaim {
        report.notes.push(
            "DAMON reclaim is on here: cold file pages are paged out even with memory free, \
             so searches read older sightings from disk (a random 4 KiB read costs tens of µs)."
                .into(),
        );
    }

    let mut errors = Vec::new();
    let mut check = |step: &str, result: Result<()>| {
        if let Err(e) = result {
            eprintln!("{step} failed: {e:#}");
            errors.push(format!("{step}: {e:#}"));
        }
    };
    if run.args.backend != Backend::Postgres {
        let mut sqlite = StoreReport::default();
        let result = run.sqlite(&mut sqlite);
        let ok = result.is_ok();
        check("sqlite", result);
        report.sqlite = Some(sqlite);
        if ok && run.args.clients > 0 {
            for clients in [1, run.args.clients] {
                let mut r = ClientsReport::default();
                check("clients", run.clients(clients, &mut r));
                report.clients.push(r);
            }
        }
        if ok {
            let mut http = HttpReport::default();
            check("http", run.http(&mut http));
            report.http = Some(http);
        }
        if !run.args.keep_data {
            let _ = std::fs::remove_dir_all(run.args.data_dir.join("sqlite"));
        }
    }
    if let Some(admin) = run.args.postgres.clone() {
        let mut baseline = BaselineReport::default();
        check("baseline", run.baseline(&admin, &mut baseline));
        report.baseline = Some(baseline);
        if run.args.backend != Backend::Sqlite {
            if pg_store_events < run.args.events {
                report.notes.push(format!(
                    "Our PostgreSQL backend gets the first {} events only (--pg-store-events), to keep the run short.",
                    thousands(pg_store_events)
                ));
            }
            let mut store = StoreReport::default();
            check(
                "postgres store",
                run.postgres_store(&admin, pg_store_events, &mut store),
            );
            report.postgres_store = Some(store);
        }
    }
    report.errors = errors;
    report.targets = targets(&report);
    report.bench_peak_rss_bytes = proc_status_bytes("VmHWM");
    report.machine.load_end = load_average();
    report.wall_s = secs(started.elapsed());
    print_table(&report);
    if let Some(path) = &run.args.json {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if !report.errors.is_empty() {
        bail!(
            "{} step(s) failed: {}",
            report.errors.len(),
            report.errors.join("; ")
        );
    }
    Ok(())
}

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

mod baseline;
mod report;
mod run;

use baseline::*;
use report::*;
use run::*;

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

// ---------------------------------------------------------------- helpers

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

fn query_counts(args: &Args) -> [usize; 3] {
    [
        args.queries,
        args.wildcard_queries.unwrap_or(args.queries / 5),
        args.fuzzy_queries.unwrap_or(args.queries / 5),
    ]
}

// ---------------------------------------------------------------- output

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

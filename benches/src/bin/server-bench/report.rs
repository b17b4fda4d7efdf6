//! What a run found: the report written to `--json`, the targets it is
//! judged against, and the table on standard output.

use super::*;

#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Machine,
    pub(crate) data: DataReport,
    pub(crate) settings: Settings,
    pub(crate) sqlite: Option<StoreReport>,
    /// The embedded store fed by one client, then by several at once.
    pub(crate) clients: Vec<ClientsReport>,
    pub(crate) http: Option<HttpReport>,
    pub(crate) postgres_store: Option<StoreReport>,
    pub(crate) baseline: Option<BaselineReport>,
    pub(crate) targets: Vec<Target>,
    /// Peak resident memory of this benchmark process (generator, stores,
    /// query sets and client buffers together).
    pub(crate) bench_peak_rss_bytes: u64,
    pub(crate) wall_s: f64,
    pub(crate) notes: Vec<String>,
    /// Steps that failed; the figures before each failure are kept.
    pub(crate) errors: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Machine {
    /// 1-minute load average when the run started and ended: other work
    /// on the machine shows here.
    pub(crate) load_start: f64,
    pub(crate) load_end: f64,
    /// Whether the kernel's DAMON reclaim (`pageout`) is on: it evicts
    /// cold file pages, so searches read older sightings from disk even
    /// with memory free.
    pub(crate) damon_reclaim: bool,
    pub(crate) cpus: usize,
    pub(crate) cpu: String,
    pub(crate) memory_bytes: u64,
    pub(crate) postgres_version: Option<String>,
    pub(crate) postgres_settings: BTreeMap<String, String>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct DataReport {
    pub(crate) events: u64,
    pub(crate) plates: u32,
    pub(crate) seed: u64,
    pub(crate) cameras: u32,
    pub(crate) days: u32,
    pub(crate) snapshots: bool,
    pub(crate) generate_s: f64,
    pub(crate) event_json_bytes_mean: f64,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Settings {
    pub(crate) backend: Option<Backend>,
    pub(crate) batch: usize,
    pub(crate) checkpoints: Vec<u64>,
    pub(crate) queries: BTreeMap<&'static str, usize>,
    pub(crate) window_hours: f64,
    pub(crate) page_limit: usize,
    pub(crate) fuzzy_max_distance: f32,
    pub(crate) warm_up_per_kind: usize,
    pub(crate) pg_store_events: u64,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct StoreReport {
    pub(crate) events: u64,
    /// Seconds inside `Store::ingest`.
    pub(crate) ingest_s: f64,
    /// Events per second inside `Store::ingest`.
    pub(crate) events_per_s: f64,
    /// Events per second of the whole loop, generation on another thread
    /// included.
    pub(crate) wall_events_per_s: f64,
    pub(crate) segments: Vec<Segment>,
    pub(crate) checkpoints: Vec<Checkpoint>,
}

impl StoreReport {
    /// Sums the segments up to `events`, ingested in `wall`.
    pub(crate) fn totals(&mut self, events: u64, wall: Duration) {
        self.events = events;
        self.ingest_s = self.segments.iter().map(|s| s.ingest_s).sum();
        self.events_per_s = events as f64 / self.ingest_s;
        self.wall_events_per_s = events as f64 / secs(wall);
    }
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Segment {
    pub(crate) from: u64,
    pub(crate) to: u64,
    pub(crate) ingest_s: f64,
    pub(crate) events_per_s: f64,
    pub(crate) batch: Latency,
    /// Bytes written per event: for SQLite, what this process passed to
    /// write calls (`wchar`: WAL frames and checkpoints) and sent to
    /// storage (`write_bytes`); for PostgreSQL, WAL bytes
    /// (`pg_stat_wal.wal_bytes`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) written_per_event: BTreeMap<&'static str, f64>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Checkpoint {
    pub(crate) events: u64,
    pub(crate) distinct_plates: u64,
    /// 1-minute load average after the searches: other work on the
    /// machine lengthens the tail.
    pub(crate) load_average: f64,
    pub(crate) search: BTreeMap<String, SearchFigures>,
    pub(crate) disk: Disk,
    pub(crate) memory: Option<Value>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct SearchFigures {
    /// What the query was, e.g. `plate = $1 AND ts BETWEEN ...`.
    pub(crate) how: String,
    pub(crate) latency: Latency,
    /// Results per search (at most the page of 50).
    pub(crate) hits_mean: f64,
    /// Share of searches whose results include the plate the query was
    /// made from (seen in the window by construction).
    pub(crate) source_found: f64,
    /// Candidate plates from the plate index per search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plates_mean: Option<f64>,
    /// Time of the plate-index lookup alone (`Store::plates`), measured
    /// separately.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<Latency>,
    /// Wildcard latency by query shape (`12?AB*`, `*KXM0?`, ...).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) by_shape: BTreeMap<String, Latency>,
    /// Searches whose result ids differ from the embedded store's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) differ_from_sqlite: Option<usize>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Disk {
    pub(crate) bytes: u64,
    pub(crate) bytes_per_million_events: f64,
    pub(crate) parts: BTreeMap<String, u64>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct HttpReport {
    pub(crate) ingest_events: u64,
    /// Seconds of the router calls, batches sent one after another.
    pub(crate) ingest_s: f64,
    pub(crate) events_per_s: f64,
    pub(crate) batch: Latency,
    /// `Store::ingest` alone over the same first events (from the
    /// embedded store's run), to compare with `events_per_s`.
    pub(crate) store_path_events_per_s: f64,
    /// The sender's side, not in `ingest_s`: JSON and gzip per batch.
    pub(crate) encode_ms_per_batch: f64,
    pub(crate) gzip_bytes_per_batch: f64,
    pub(crate) json_bytes_per_batch: f64,
    /// Searches through `GET /api/v1/search` on the embedded store at the
    /// last checkpoint.
    pub(crate) search_events: u64,
    pub(crate) search: BTreeMap<String, Latency>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct ClientsReport {
    pub(crate) clients: usize,
    pub(crate) events: u64,
    /// From the first batch sent to the last acknowledged.
    pub(crate) wall_s: f64,
    pub(crate) events_per_s: f64,
    /// Each client's `ingest` calls, waiting for the writer included.
    pub(crate) batch: Latency,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct BaselineReport {
    pub(crate) schema: String,
    /// `pg_trgm.similarity_threshold` (the `%` operator's cut-off).
    pub(crate) trgm_similarity_threshold: f32,
    pub(crate) loads: Vec<Value>,
    pub(crate) checkpoints: Vec<Checkpoint>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) target: String,
    pub(crate) value: f64,
    pub(crate) met: bool,
}

pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub(crate) fn per_million(bytes: u64, events: u64) -> f64 {
    bytes as f64 * 1e6 / events.max(1) as f64
}

pub(crate) fn thousands(n: u64) -> String {
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

pub(crate) fn short(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1_000 && n.is_multiple_of(1_000) {
        format!("{}k", n / 1_000)
    } else {
        thousands(n)
    }
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub(crate) fn machine(postgres: Option<&str>) -> Result<Machine> {
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

pub(crate) fn targets(report: &Report) -> Vec<Target> {
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

pub(crate) fn print_table(r: &Report) {
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

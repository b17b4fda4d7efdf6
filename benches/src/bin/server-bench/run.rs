//! One run: ingest in batches (one client and several), searches timed at
//! each checkpoint, through the store and through the HTTP handler.

use super::*;

/// Builds the events of `[from, to)` on a second thread, `batch` at a time.
pub(crate) fn batches(
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
pub(crate) fn ingest(
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
pub(crate) fn search_query(q: &Query) -> Result<SearchQuery> {
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
pub(crate) struct Found {
    pub(crate) ids: Vec<String>,
    pub(crate) source: bool,
    /// Set by [`time_searches`].
    pub(crate) elapsed: Duration,
}

pub(crate) fn plate_of_event(v: &Value) -> Option<&str> {
    v.get("plate")?.get("text")?.as_str()
}

/// Runs `queries` one after another through `run`, after `warm` searches.
pub(crate) fn time_searches(
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

pub(crate) fn figures(
    how: &str,
    latency: Latency,
    queries: &[Query],
    found: &[Found],
) -> SearchFigures {
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

pub(crate) fn differ(a: &[Found], b: &[Found]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x.ids != y.ids).count()
}

/// Exact, wildcard and fuzzy searches through `store`, with the plate
/// index's share timed separately.
pub(crate) fn search_store(
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

pub(crate) fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

pub(crate) fn sqlite_disk(dir: &Path, events: u64) -> Disk {
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

pub(crate) struct Run {
    pub(crate) args: Args,
    pub(crate) data: Arc<Dataset>,
    pub(crate) checkpoints: Vec<u64>,
    pub(crate) queries: BTreeMap<u64, QuerySet>,
    pub(crate) warm: QuerySet,
    /// The embedded store's results per checkpoint, to compare with.
    pub(crate) sqlite_results: BTreeMap<u64, BTreeMap<Kind, Vec<Found>>>,
    /// Times of the embedded store's first ingest batches.
    pub(crate) sqlite_first_batches: Vec<Duration>,
}

impl Run {
    /// Ingest and searches on the embedded store; `report` holds what was
    /// measured even when a later step fails.
    pub(crate) fn sqlite(&mut self, report: &mut StoreReport) -> Result<()> {
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
    pub(crate) fn clients(&self, clients: usize, report: &mut ClientsReport) -> Result<()> {
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
    pub(crate) fn http(&self, report: &mut HttpReport) -> Result<()> {
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

    pub(crate) fn postgres_store(
        &self,
        admin: &str,
        events: u64,
        report: &mut StoreReport,
    ) -> Result<()> {
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

    pub(crate) fn draw(&self, stored: u64) -> QuerySet {
        QuerySet::draw(&self.data, stored, query_counts(&self.args), self.args.seed)
    }

    pub(crate) fn baseline(&self, admin: &str, report: &mut BaselineReport) -> Result<()> {
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
    pub(crate) fn copy(&self, client: &mut postgres::Client, from: u64, to: u64) -> Result<f64> {
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

    pub(crate) fn baseline_search(
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

use super::*;
use crate::model::Cursor;
use safecity_core::{EventId, PlatePattern};

fn read(n: u128, ts_ms: u64, plate: &str) -> NewEvent {
    read_by(n, ts_ms, plate, "c")
}

fn read_by(n: u128, ts_ms: u64, plate: &str, camera: &str) -> NewEvent {
    let parsed = safecity_core::parse_plate(plate).unwrap();
    let json = serde_json::json!({
        "id": EventId::new(ts_ms, n).to_string(),
        "kind": "plate_read",
        "edge_id": "e",
        "camera_id": camera,
        "ts": OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
            .unwrap()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        "plate": {"text": parsed.text, "display": parsed.display, "confidence": 0.9,
                  "format": parsed.format, "bbox": [0, 0, 1, 1]},
    });
    NewEvent {
        event: serde_json::from_value(json).unwrap(),
        snapshot: None,
    }
}

fn query(plate: PlateQuery, limit: usize, after: Option<Cursor>) -> SearchQuery {
    SearchQuery {
        plate,
        from_ms: None,
        to_ms: None,
        cameras: None,
        near: None,
        class: None,
        colour: None,
        kind: None,
        limit,
        after,
    }
}

/// Callers that ingest at the same time share commits (group commit):
/// each still gets the outcome of its own batch, every event is stored
/// once, and each alert goes to the caller whose batch raised it.
#[test]
fn concurrent_batches_each_get_their_own_outcome() {
    const THREADS: u128 = 6;
    const BATCHES: u128 = 30;
    const SIZE: u128 = 40;
    // Thread t sends events [600 t, 600 t + 1200): each id but the
    // first and last 600 comes from two threads.
    const OFFSET: u128 = BATCHES * SIZE / 2;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    let watched = "007ABC02";
    store
        .add_watch(&NewWatch {
            pattern: watched.into(),
            mode: WatchMode::Exact,
            max_distance: None,
            reason: "r".into(),
            priority: Priority::High,
            expires_ms: None,
            created_ms: 0,
            created_by: "t".into(),
        })
        .unwrap();
    let event = |n: u128| {
        read(
            n,
            1_700_000_000_000 + n as u64 * 1000,
            &format!("{:03}ABC02", n % 97 + 1),
        )
    };
    let barrier = Arc::new(std::sync::Barrier::new(THREADS as usize));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                (0..BATCHES)
                    .map(|b| {
                        let ns: Vec<u128> = (0..SIZE).map(|k| t * OFFSET + b * SIZE + k).collect();
                        let batch: Vec<NewEvent> = ns.iter().map(|&n| event(n)).collect();
                        let outcome = store.ingest(&batch).unwrap();
                        (batch, outcome)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let calls: Vec<(Vec<NewEvent>, IngestOutcome)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let distinct = (THREADS + 1) * OFFSET;
    let watched_events = (0..distinct).filter(|n| n % 97 == 6).count();
    let mut alerted = std::collections::HashSet::new();
    for (batch, outcome) in &calls {
        assert_eq!(outcome.accepted + outcome.duplicates, SIZE as u64);
        for a in &outcome.alerts {
            assert!(
                batch.iter().any(|e| e.event.id == a.event_id),
                "alert of another batch"
            );
            assert_eq!(a.plate.as_deref(), Some(watched));
            assert!(
                alerted.insert(a.event_id.clone()),
                "two alerts for one event"
            );
        }
    }
    let accepted: u64 = calls.iter().map(|(_, o)| o.accepted).sum();
    assert_eq!(accepted, distinct as u64);
    assert_eq!(alerted.len(), watched_events);
    // Stored once each: a second pass finds every event a duplicate.
    for (batch, _) in calls.iter().step_by(7) {
        let again = store.ingest(batch).unwrap();
        assert_eq!((again.accepted, again.alerts.len()), (0, 0));
    }
    let page = store
        .search(&query(PlateQuery::Exact(watched.into()), 1000, None))
        .unwrap();
    assert_eq!(page.hits.len(), watched_events);
}

#[test]
fn pages_break_ties_on_time_by_id_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    // Five reads in the same millisecond, one later.
    let mut batch: Vec<NewEvent> = (0..5).map(|n| read(n, 1000, "123ABC02")).collect();
    batch.push(read(9, 2000, "123ABC02"));
    batch.push(read(10, 1500, "777KXM17"));
    assert_eq!(store.ingest(&batch).unwrap().accepted, 7);
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.ingest(&batch[..2]).unwrap().duplicates, 2);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .search(&query(PlateQuery::Exact("123ABC02".into()), 2, after))
            .unwrap();
        seen.extend(page.hits.iter().map(|h| (h.ts_ms, h.id.clone())));
        match page.next {
            Some(c) => after = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted);

    let wildcard = PlateQuery::Wildcard(PlatePattern::parse("*K*").unwrap());
    assert_eq!(
        store.search(&query(wildcard, 50, None)).unwrap().hits.len(),
        1
    );
    let fuzzy = PlateQuery::Fuzzy {
        plate: "777KXMI7".into(),
        max_distance: 0.5,
    };
    let hits = store.search(&query(fuzzy, 50, None)).unwrap().hits;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].distance, Some(0.5));
}

#[test]
fn a_stored_event_reads_back_as_sent_in_either_json_form() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut new = read_by(1, 1000, "123ABC02", "cam-7");
    new.event.vehicle = serde_json::from_value(serde_json::json!({
        "class": "car", "colour": "red", "confidence": 0.8, "bbox": [1, 2, 3, 4],
        "track_id": 9
    }))
    .unwrap();
    store.ingest(std::slice::from_ref(&new)).unwrap();
    // As JSON text, the way it arrives (f32 confidences written short).
    let sent: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&new.event).unwrap()).unwrap();
    let found = || {
        let hits = store
            .search(&query(PlateQuery::Exact("123ABC02".into()), 5, None))
            .unwrap()
            .hits;
        assert_eq!(hits.len(), 1);
        hits[0].event.clone()
    };
    assert_eq!(found(), sent);
    // The columns are not in the stored JSON.
    let json = |store: &SqliteStore| -> String {
        store
            .writer
            .locked()
            .query_row("SELECT json FROM events", [], |r| r.get(0))
            .unwrap()
    };
    assert!(!json(&store).contains("cam-7"), "{}", json(&store));
    // A row written whole (as before) reads the same.
    store
        .writer
        .locked()
        .execute("UPDATE events SET json = ?1", [sent.to_string()])
        .unwrap();
    assert_eq!(found(), sent);
}

#[test]
fn the_audit_log_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let entry = AuditEntry {
        at_ms: 1,
        who: "detective".into(),
        role: "investigator".into(),
        route: "GET /api/v1/search".into(),
        query: "plate=1&reason=r".into(),
        reason: Some("r".into()),
        results: Some(3),
        detail: None,
    };
    let seq = store.append_audit(&entry).unwrap();
    let conn = store.writer.locked();
    for sql in ["UPDATE audit SET who = 'x'", "DELETE FROM audit"] {
        let err = conn.execute(sql, []).unwrap_err().to_string();
        assert!(err.contains("append-only"), "{err}");
    }
    drop(conn);
    assert_eq!(store.audit(None, 10).unwrap()[0].seq, seq);
    assert_eq!(store.audit(None, 10).unwrap()[0].entry, entry);
}

#[test]
fn an_older_database_moves_its_plate_reads_into_a_part() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let batch = [
        read(1, 3000, "123ABC02"),
        read(2, 1000, "123ABC02"),
        read(3, 2000, "777KXM17"),
    ];
    store.ingest(&batch).unwrap();
    drop(store);
    let file = dir.path().join("safecity.sqlite3");
    // What version 2 had: the reads and cameras in indexes of `events`.
    Connection::open(&file)
        .unwrap()
        .execute_batch(
            "DROP TABLE sightings; DROP TABLE new_sightings; DROP TABLE sighting_parts;
             DROP TABLE camera_sightings; DROP TABLE store_meta;
             CREATE INDEX events_plate_ts_id ON events (plate, ts, id);
             CREATE INDEX events_camera_ts ON events (camera_id, ts);
             PRAGMA user_version = 2;",
        )
        .unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let track = store.track("123ABC02", 0, i64::MAX, 10).unwrap();
    let times: Vec<i64> = track.iter().map(|s| s.ts_ms).collect();
    assert_eq!(times, [1000, 3000]);
    let mut by_camera = query(PlateQuery::Any, 10, None);
    by_camera.cameras = Some(vec!["c".into()]);
    assert_eq!(store.search(&by_camera).unwrap().hits.len(), 3);
    assert_eq!(store.camera_health("c").unwrap().last_seen_ms, Some(3000));
    let conn = Connection::open(&file).unwrap();
    let old: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master
             WHERE name LIKE 'events_plate%' OR name = 'events_camera_ts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old, 0);
    let parts: (i64, i64, i64, i64) = conn
        .query_row(
            "SELECT level, rows, min_ts, max_ts FROM sighting_parts",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(parts, (1, 3, 1000, 3000));
    let indexed: (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM camera_sightings),
                    (SELECT value FROM store_meta WHERE key = 'cameras_indexed')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(indexed, (3, 3));
}

/// Small parts, so that a few hundred reads fill and merge many: every
/// search, track and purge must give what a scan of the reads gives,
/// across merges, late reads and reopening.
#[test]
fn small_parts_fill_merge_and_answer_as_a_scan_does() {
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.parts = Parts {
            rows: 5,
            merge: 3,
            camera_chunk: 7,
        };
        store
    };
    let plates = [
        "123ABC02", "777KXM17", "555BBB01", "100AAA05", "321CBA02", "777KXM18",
    ];
    let mut rng = StdRng::seed_from_u64(7);
    let cameras = ["c1", "c2", "c3"];
    // (plate, ts, id, camera) of every read stored.
    let mut stored: Vec<(String, i64, String, String)> = Vec::new();
    let mut store = open();
    let mut n = 0u128;
    let mut clock = 1_000_000i64;
    for round in 0..40 {
        let size = rng.gen_range(1..12);
        let batch: Vec<NewEvent> = (0..size)
            .map(|_| {
                n += 1;
                clock += rng.gen_range(0..1000);
                // One read in five arrives late, from up to a minute back.
                let ts = if rng.gen_range(0..5) == 0 {
                    clock - rng.gen_range(0..60_000)
                } else {
                    clock
                };
                let plate = plates[rng.gen_range(0..plates.len())];
                read_by(n, ts as u64, plate, cameras[rng.gen_range(0..3)])
            })
            .collect();
        store.ingest(&batch).unwrap();
        for e in &batch {
            let ts = (e.event.ts.unix_timestamp_nanos() / 1_000_000) as i64;
            let plate = e.event.plate.as_ref().unwrap().text.clone();
            stored.push((plate, ts, e.event.id.clone(), e.event.camera_id.clone()));
        }
        if round % 13 == 12 {
            drop(store);
            store = open();
        }
        let plate = plates[rng.gen_range(0..plates.len())];
        let from = rng.gen_range(1_000_000..clock.max(1_000_001));
        let to = from + rng.gen_range(0..30_000);
        check(&store, &stored, plate, from, to);
        let camera = cameras[rng.gen_range(0..3)];
        check_camera(&store, &stored, &[camera], Some(plate), from, to);
        check_camera(&store, &stored, &[camera, "c3"], None, from, to);
        // More cameras than index arms: one arm and a sort.
        let many: Vec<String> = (0..CAMERA_ARMS).map(|i| format!("x{i}")).collect();
        let mut many: Vec<&str> = many.iter().map(String::as_str).collect();
        many.extend(["c1", "c2"]);
        check_camera(&store, &stored, &many, None, from, to);
    }
    let levels = |store: &SqliteStore| -> Vec<i64> {
        let conn = store.writer.locked();
        let mut stmt = conn
            .prepare("SELECT level FROM sighting_parts ORDER BY part")
            .unwrap();
        let levels = stmt.query_map([], |r| r.get(0)).unwrap();
        levels.collect::<rusqlite::Result<_>>().unwrap()
    };
    // Every read is in exactly one part, and every part is listed.
    let sightings = |store: &SqliteStore| -> (usize, usize) {
        let conn = store.writer.locked();
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        (
            count(
                "SELECT (SELECT count(*) FROM sightings)
                      + (SELECT count(*) FROM new_sightings)",
            ) as usize,
            count(
                "SELECT (SELECT count(*) FROM sightings
                         WHERE part NOT IN (SELECT part FROM sighting_parts WHERE level > 0))
                      + (SELECT count(*) FROM new_sightings
                         WHERE part NOT IN (SELECT part FROM sighting_parts WHERE level = 0))",
            ) as usize,
        )
    };
    assert_eq!(sightings(&store), (stored.len(), 0));
    let before = levels(&store);
    assert!(
        before.iter().filter(|&&l| l == 1).count() >= 3,
        "{before:?}"
    );
    assert!(
        before.iter().filter(|&&l| l == 0).count() < 3 + 1,
        "{before:?}"
    );

    // Purge everything before the middle read; whole parts empty.
    let blobs = BlobStore::open(&dir.path().join("blobs")).unwrap();
    let mut times: Vec<i64> = stored.iter().map(|s| s.1).collect();
    times.sort();
    let cutoff = times[times.len() / 2];
    let policy = RetentionPolicy {
        plate_reads_days: Some(1),
        ..RetentionPolicy::default()
    };
    let now = cutoff + 24 * 3600 * 1000;
    let report = store.purge(now, &policy, &blobs).unwrap();
    stored.retain(|s| s.1 >= cutoff);
    assert_eq!(report.plate_reads as usize, times.len() / 2);
    assert!(levels(&store).len() < before.len(), "{before:?}");
    assert_eq!(sightings(&store), (stored.len(), 0));
    for plate in plates {
        check(&store, &stored, plate, i64::MIN, i64::MAX);
        check(&store, &stored, plate, cutoff, cutoff + 20_000);
    }
    for camera in cameras {
        check_camera(&store, &stored, &[camera], None, i64::MIN, i64::MAX);
    }
    // A plate whose reads are all gone leaves the plate index.
    let left: std::collections::BTreeSet<&str> = stored.iter().map(|s| s.0.as_str()).collect();
    let wildcard = PlateQuery::Wildcard(PlatePattern::parse("*").unwrap());
    assert_eq!(store.index.matching(&wildcard).len(), left.len());
    drop(store);
    let store = open();
    assert_eq!(store.index.matching(&wildcard).len(), left.len());
    for plate in plates {
        check(&store, &stored, plate, i64::MIN, i64::MAX);
    }
    for camera in cameras {
        check_camera(&store, &stored, &[camera], None, i64::MIN, i64::MAX);
    }

    // Purge it all: new events then take rowids the camera index has
    // passed already, and must be found all the same.
    let later = clock + 48 * 3600 * 1000;
    store.purge(later, &policy, &blobs).unwrap();
    stored.clear();
    assert_eq!(sightings(&store), (0, 0));
    let batch: Vec<NewEvent> = (0..3)
        .map(|i| read_by(n + 1 + i, (clock + 1) as u64, "123ABC02", "c1"))
        .collect();
    store.ingest(&batch).unwrap();
    for e in &batch {
        stored.push((
            "123ABC02".into(),
            clock + 1,
            e.event.id.clone(),
            "c1".into(),
        ));
    }
    check(&store, &stored, "123ABC02", i64::MIN, i64::MAX);
    check_camera(&store, &stored, &["c1"], None, i64::MIN, i64::MAX);
}

/// Searches and tracks `plate` in `[from, to]` and checks both against
/// a scan of `stored`.
fn check(
    store: &SqliteStore,
    stored: &[(String, i64, String, String)],
    plate: &str,
    from: i64,
    to: i64,
) {
    let mut want: Vec<(i64, String)> = stored
        .iter()
        .filter(|s| s.0 == plate && s.1 >= from && s.1 <= to)
        .map(|s| (s.1, s.2.clone()))
        .collect();
    want.sort();
    let track: Vec<(i64, String)> = store
        .track(plate, from, to, 10_000)
        .unwrap()
        .into_iter()
        .map(|s| (s.ts_ms, s.event_id))
        .collect();
    assert_eq!(track, want, "track {plate} in [{from}, {to}]");
    let mut q = query(PlateQuery::Exact(plate.into()), 7, None);
    q.from_ms = Some(from);
    q.to_ms = Some(to);
    let found = every_page(store, q);
    assert_eq!(found, want, "search {plate} in [{from}, {to}]");
}

/// `(time, id)` of every hit of `q`, page by page, oldest first.
fn every_page(store: &SqliteStore, mut q: SearchQuery) -> Vec<(i64, String)> {
    let mut found = Vec::new();
    loop {
        let page = store.search(&q).unwrap();
        found.extend(page.hits.iter().map(|h| (h.ts_ms, h.id.clone())));
        match page.next {
            Some(c) => q.after = Some(c),
            None => break,
        }
    }
    found.reverse();
    found
}

/// Searches `cameras` (and `plate`) in `[from, to]`, and each camera's
/// last sighting, and checks them against a scan of `stored`.
fn check_camera(
    store: &SqliteStore,
    stored: &[(String, i64, String, String)],
    cameras: &[&str],
    plate: Option<&str>,
    from: i64,
    to: i64,
) {
    let mut want: Vec<(i64, String)> = stored
        .iter()
        .filter(|s| cameras.contains(&s.3.as_str()) && s.1 >= from && s.1 <= to)
        .filter(|s| plate.is_none_or(|p| s.0 == p))
        .map(|s| (s.1, s.2.clone()))
        .collect();
    want.sort();
    want.dedup();
    let plate_query = plate.map_or(PlateQuery::Any, |p| PlateQuery::Exact(p.into()));
    let mut q = query(plate_query, 5, None);
    q.cameras = Some(cameras.iter().map(|c| c.to_string()).collect());
    q.from_ms = Some(from);
    q.to_ms = Some(to);
    let found = every_page(store, q);
    assert_eq!(
        found, want,
        "search {cameras:?} {plate:?} in [{from}, {to}]"
    );
    for camera in cameras {
        let last = stored.iter().filter(|s| s.3 == *camera).map(|s| s.1).max();
        assert_eq!(store.camera_health(camera).unwrap().last_seen_ms, last);
    }
}

#[test]
fn tokens_made_before_expiry_keep_working_and_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("safecity.sqlite3")).unwrap();
        conn.execute_batch(
            "CREATE TABLE tokens (sha256 TEXT PRIMARY KEY, role TEXT NOT NULL,
                 name TEXT NOT NULL, created INTEGER NOT NULL);
             INSERT INTO tokens VALUES ('abc123', 'edge', 'edge-alm-01', 5);
             PRAGMA user_version = 3;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let owner = store.token("abc123").unwrap().unwrap();
    assert_eq!(
        (owner.name.as_str(), owner.expires_ms),
        ("edge-alm-01", None)
    );
    assert_eq!(store.revoke_tokens("edge-alm-01", 9).unwrap(), 1);
    assert_eq!(store.token("abc123").unwrap(), None);
    let listed = store.tokens().unwrap();
    assert_eq!((listed[0].created_ms, listed[0].revoked_ms), (5, Some(9)));
}

#[test]
fn a_version_1_database_gets_the_new_tables_and_keeps_its_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join("safecity.sqlite3")).unwrap();
        conn.execute_batch(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,
                 who TEXT NOT NULL, role TEXT NOT NULL, route TEXT NOT NULL,
                 query TEXT NOT NULL, reason TEXT, results INTEGER);
             INSERT INTO audit (at, who, role, route, query) VALUES (1, 'a', 'admin', 'GET /x', '');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let mut entry = store.audit(None, 10).unwrap()[0].entry.clone();
    entry.detail = Some("d".into());
    store.append_audit(&entry).unwrap();
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    let records = store.audit(None, 10).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].entry.detail.as_deref(), Some("d"));
    assert!(store.watchlist(true).unwrap().is_empty());
}

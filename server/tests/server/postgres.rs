//! What only the PostgreSQL store has: monthly partitions, idempotency
//! across them, several servers on one database, the append-only audit
//! table, and the retention purge on PostgreSQL.

use safecity_core::Event;
use safecity_server::{
    AlertKind, AuditEntry, BlobStore, NewEvent, NewWatch, PlateQuery, PostgresStore, Priority,
    RetentionPolicy, SearchQuery, Store, WatchMode,
};
use serde_json::Value;

use crate::support::*;

const DAY: u64 = 24 * 3600 * 1000;

fn new_event(v: &Value, snapshot: Option<String>) -> NewEvent {
    NewEvent {
        event: serde_json::from_value::<Event>(v.clone()).unwrap(),
        snapshot,
    }
}

fn all(plate: PlateQuery) -> SearchQuery {
    SearchQuery {
        plate,
        from_ms: None,
        to_ms: None,
        cameras: None,
        near: None,
        class: None,
        colour: None,
        kind: None,
        limit: 500,
        after: None,
    }
}

fn now_ms() -> u64 {
    safecity_core::clock::now_ms() as u64
}

#[test]
fn events_go_to_monthly_partitions_and_ids_stay_unique_across_them() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let store = PostgresStore::connect(&url).unwrap();
    // 1999 and 2300 have no monthly partition: the default one holds them.
    let times = [
        T0,
        T0 + 35 * DAY,
        T0 + 400 * DAY,
        915_148_800_000,
        10_413_792_000_000,
    ];
    let batch: Vec<NewEvent> = times
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            new_event(
                &event(i as u128, *ts, "cam-a", Some("123ABC02"), "car", "white"),
                None,
            )
        })
        .collect();
    let out = store.ingest(&batch).unwrap();
    assert_eq!((out.accepted, out.duplicates), (5, 0));

    // The same id again, claiming another time (so another partition).
    let mut moved = event(0, T0, "cam-a", Some("123ABC02"), "car", "white");
    moved["ts"] = Value::from(rfc3339(T0 + 100 * DAY));
    let out = store.ingest(&[new_event(&moved, None)]).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, 1));

    let hits = store
        .search(&all(PlateQuery::Exact("123ABC02".into())))
        .unwrap()
        .hits;
    let ts: Vec<i64> = hits.iter().map(|h| h.ts_ms).collect();
    let mut want: Vec<i64> = times.iter().map(|t| *t as i64).collect();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(ts, want);

    let mut db = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let counts: Vec<(String, i64)> = db
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        counts,
        [
            ("events_2026_11".to_owned(), 1),
            ("events_2026_12".to_owned(), 1),
            ("events_2027_12".to_owned(), 1),
            ("events_default".to_owned(), 2),
        ],
    );
    // The audit log refuses changes.
    store
        .append_audit(&AuditEntry {
            at_ms: 1,
            who: "detective".into(),
            role: "investigator".into(),
            route: "GET /api/v1/search".into(),
            query: "plate=1&reason=r".into(),
            reason: Some("r".into()),
            results: Some(3),
            detail: None,
        })
        .unwrap();
    for sql in [
        "UPDATE audit SET who = 'x'",
        "DELETE FROM audit",
        "TRUNCATE audit",
    ] {
        let err = db.batch_execute(sql).unwrap_err();
        let text = err.as_db_error().map(|e| e.message().to_owned());
        assert_eq!(
            text.as_deref(),
            Some("the audit log is append-only"),
            "{sql}"
        );
    }
}

/// Two servers on one database: a watchlist entry added through one is
/// matched by an ingest through the other, and alert ids keep rising.
/// Ends every connection of the store's database but the caller's, as a
/// restart of PostgreSQL does; returns how many it ended.
fn end_connections(url: &str) -> i64 {
    let mut db = postgres::Client::connect(url, postgres::NoTls).unwrap();
    db.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
        &[],
    )
    .unwrap()
    .len() as i64
}

/// The database ends the server's connections (a restart, an operator):
/// a lost connection is not lent again, so at most the call that met it
/// fails; a connection that sat idle is checked before it is lent, so
/// after a pause none fails. Nothing acknowledged is lost.
#[test]
fn lost_connections_are_replaced_and_nothing_acknowledged_is_lost() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let store = PostgresStore::connect(&url).unwrap();
    let batch = |from: u128| -> Vec<NewEvent> {
        (from..from + 5)
            .map(|i| {
                let v = event(i, T0 + i as u64, "cam-a", Some("123ABC02"), "car", "white");
                new_event(&v, None)
            })
            .collect()
    };
    assert_eq!(store.ingest(&batch(0)).unwrap().accepted, 5);
    assert!(
        end_connections(&url) >= 1,
        "the store had a connection open"
    );
    // At once: the call that meets the dead connection may fail, the next
    // one works.
    let mut failed = 0;
    let out = loop {
        match store.ingest(&batch(10)) {
            Ok(out) => break out,
            Err(e) => {
                failed += 1;
                assert!(failed < 2, "still failing after a lost connection: {e}");
            }
        }
    };
    assert_eq!(out.accepted + out.duplicates, 5);
    // After a pause, the idle connection is checked and replaced first.
    assert!(end_connections(&url) >= 1);
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    let hits = store
        .search(&all(PlateQuery::Exact("123ABC02".into())))
        .expect("the first call after a pause works")
        .hits;
    assert_eq!(hits.len(), 10);
}

/// `/healthz` says ok while the database answers and 503, with the JSON
/// error naming the database, once it is gone.
#[tokio::test]
async fn health_tells_when_the_database_is_gone() {
    use axum::body::Body;
    use axum::http::{Method, StatusCode};
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let f = Fixture::on(Backend::Postgres(url.clone()));
    let health = || f.call(Method::GET, "/healthz", None, &[], Body::empty());
    let a = health().await;
    assert_eq!((a.status, &a.body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let (admin, name) = url.rsplit_once('/').unwrap();
    let (admin, name) = (format!("{admin}/postgres"), name.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut db = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        db.batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
            .unwrap();
    })
    .await
    .unwrap();
    let a = health().await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.error());
    assert!(
        a.error().starts_with("down: the database does not answer"),
        "{}",
        a.error()
    );
}

#[test]
fn servers_sharing_a_database_share_the_watchlist() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let a = PostgresStore::connect(&url).unwrap();
    let b = PostgresStore::connect(&url).unwrap();
    let read = |n: u128, plate: &str| {
        new_event(
            &event(n, T0 + n as u64, "cam-a", Some(plate), "car", "white"),
            None,
        )
    };
    assert!(b.ingest(&[read(1, "555XYZ05")]).unwrap().alerts.is_empty());
    let watch = a
        .add_watch(&NewWatch {
            pattern: "555XYZ05".into(),
            mode: WatchMode::Exact,
            max_distance: None,
            reason: "case 5".into(),
            priority: Priority::High,
            expires_ms: None,
            created_ms: 1,
            created_by: "operator-1".into(),
        })
        .unwrap();
    let first = b.ingest(&[read(2, "555XYZ05")]).unwrap().alerts;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].watch.as_ref().unwrap().id, watch.id);
    let second = a.ingest(&[read(3, "555XYZ05")]).unwrap().alerts;
    assert!(second[0].id > first[0].id);
    a.remove_watch(watch.id, "operator-1", 2).unwrap().unwrap();
    assert!(b.ingest(&[read(4, "555XYZ05")]).unwrap().alerts.is_empty());
    assert_eq!(b.watchlist(true).unwrap().len(), 1);
}

/// The purge on PostgreSQL: each class by its own retention, with alerts,
/// plates and blobs no event names any more; a purged id may come again.
#[test]
fn the_purge_deletes_expired_events_with_their_alerts_plates_and_blobs() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    let store = PostgresStore::connect(&url).unwrap();
    store
        .add_watch(&NewWatch {
            pattern: "777HOT02".into(),
            mode: WatchMode::Exact,
            max_distance: None,
            reason: "case 7".into(),
            priority: Priority::High,
            expires_ms: None,
            created_ms: 1,
            created_by: "operator-1".into(),
        })
        .unwrap();
    let now = now_ms();
    let old = now - 60 * DAY;
    let shared = blobs.put(b"shared snapshot").unwrap();
    let own = blobs.put(b"old read snapshot").unwrap();
    let batch = vec![
        // Plain reads: 30 days.
        new_event(
            &event(1, old, "cam-a", Some("111OLD01"), "car", "white"),
            Some(own.clone()),
        ),
        new_event(
            &event(2, old + 1, "cam-a", Some("222OLD02"), "car", "white"),
            Some(shared.clone()),
        ),
        new_event(
            &event(3, now - DAY, "cam-a", Some("222OLD02"), "car", "white"),
            Some(shared.clone()),
        ),
        // A hotlist hit: a year.
        new_event(
            &event(4, old + 2, "cam-a", Some("777HOT02"), "car", "white"),
            None,
        ),
        // An alarm: 7 days.
        new_event(&alarm(5, old + 3, "pillar-1"), None),
    ];
    let out = store.ingest(&batch).unwrap();
    assert_eq!(out.accepted, 5);
    let kinds: Vec<AlertKind> = out.alerts.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, [AlertKind::Watchlist, AlertKind::PanicAlarm]);

    let policy = RetentionPolicy {
        plate_reads_days: Some(30),
        hotlist_hits_days: Some(365),
        alarms_days: Some(7),
        status_days: None,
    };
    let report = store.purge(now as i64, &policy, &blobs).unwrap();
    assert_eq!(
        (
            report.plate_reads,
            report.hotlist_hits,
            report.alarms,
            report.alerts
        ),
        (2, 0, 1, 1),
        "{report}"
    );
    assert_eq!(report.plates, 1, "111OLD01 is gone, 222OLD02 is still read");
    assert_eq!(report.blobs, 1, "only the old read's own snapshot");
    assert!(blobs.get(&own).unwrap().is_none());
    assert!(blobs.get(&shared).unwrap().is_some());

    let left: Vec<String> = store
        .search(&all(PlateQuery::Any))
        .unwrap()
        .hits
        .iter()
        .map(|h| h.id.clone())
        .collect();
    assert_eq!(
        left,
        [
            id_of(&batch_json(3, now - DAY)),
            id_of(&batch_json(4, old + 2))
        ]
    );
    let alerts = store
        .alerts(&safecity_server::AlertQuery {
            state: None,
            before: None,
            after: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].kind, AlertKind::Watchlist);
    // A purged event sent again is stored again.
    let again = store.ingest(&batch[..1]).unwrap();
    assert_eq!((again.accepted, again.duplicates), (1, 0));
    // Nothing more to purge but that one.
    let report = store.purge(now as i64, &policy, &blobs).unwrap();
    assert_eq!(report.events(), 1, "{report}");
}

fn batch_json(n: u128, ts: u64) -> Value {
    // Ids depend only on the number and the time.
    event(n, ts, "cam-a", None, "car", "white")
}

/// The URL's `sslmode` is honoured: encrypted by default (the test server
/// offers TLS), `verify-full` checks the certificate against `sslrootcert`
/// and refuses one from another CA, `disable` stays plain.
#[test]
fn the_urls_sslmode_is_honoured() {
    let Some(Backend::Postgres(url)) = Backend::postgres() else {
        return;
    };
    let ca = crate::pg::ca();
    let by_default = PostgresStore::connect(&url).unwrap();
    let version = by_default.tls_version().unwrap();
    assert!(
        version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")),
        "{version:?}"
    );
    let verified = PostgresStore::connect(&format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        ca.display()
    ))
    .unwrap();
    assert!(verified.tls_version().unwrap().is_some());
    let plain = PostgresStore::connect(&format!("{url}?sslmode=disable")).unwrap();
    assert_eq!(plain.tls_version().unwrap(), None);

    let other = tempfile::tempdir().unwrap();
    crate::tls::certificates(other.path());
    let err = match PostgresStore::connect(&format!(
        "{url}?sslmode=verify-full&sslrootcert={}",
        other.path().join("ca.pem").display()
    )) {
        Ok(_) => panic!("a certificate from another CA was taken"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("certificate"), "{err}");
}

//! The in-memory plate index follows the stored plates: plates that an
//! ingest adds are found at once, plates that a purge removes are gone,
//! and a store opened again on the same data builds the same index.

use axum::http::StatusCode;
use safecity_core::PlatePattern;
use safecity_server::{
    run_purge, PlateIndex, PlateQuery, PostgresStore, RetentionPolicy, SqliteStore, Store,
};

use crate::support::{event, ids, on_both_backends, Backend, Fixture, T0};

on_both_backends!(the_plate_index_follows_ingest_and_purge);

const DAY: u64 = 24 * 3600 * 1000;

fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

fn read(n: u128, ts_ms: u64, plate: &str) -> serde_json::Value {
    event(n, ts_ms, "alm-cam-0001", Some(plate), "car", "white")
}

fn every_plate() -> PlateQuery {
    PlateQuery::Wildcard(PlatePattern::parse("*").unwrap())
}

fn fuzzy(plate: &str, max_distance: f32) -> PlateQuery {
    PlateQuery::Fuzzy {
        plate: plate.to_owned(),
        max_distance,
    }
}

/// The queries checked against a scan of the plates known to be stored.
fn queries() -> Vec<PlateQuery> {
    let mut out = vec![
        every_plate(),
        PlateQuery::Wildcard(PlatePattern::parse("*02").unwrap()),
        PlateQuery::Wildcard(PlatePattern::parse("???ABC??").unwrap()),
        PlateQuery::Exact("123ABC02".into()),
    ];
    for d in [0.0, 0.5, 1.0, 1.5, 2.0] {
        out.push(fuzzy("123ABC02", d));
        out.push(fuzzy("555XY205", d));
    }
    out
}

fn check(store: &dyn Store, stored: &[&str]) {
    let mut stored: Vec<&str> = stored.to_vec();
    stored.sort_unstable();
    for q in queries() {
        let found = off_thread(|| store.plates(&q).unwrap());
        assert_eq!(found, PlateIndex::scan(stored.iter().copied(), &q), "{q:?}");
    }
}

async fn the_plate_index_follows_ingest_and_purge(backend: Backend) {
    let f = Fixture::on(backend.clone());
    let (old, new) = (T0, T0 + 90 * DAY);
    let batch = [
        read(1, old, "123ABC02"),
        read(2, new, "I23ABC02"),
        read(3, old, "777KXM17"),
        read(4, new, "555XYZ05"),
        read(5, old, "123A8C02"),
        read(6, new, "123A8C02"),
        read(7, old, "12ABC02"),
    ];
    assert_eq!(f.post_events(&batch).await.status, StatusCode::OK);
    let store = f.state.store().clone();
    check(
        &*store,
        &[
            "123ABC02", "I23ABC02", "777KXM17", "555XYZ05", "123A8C02", "12ABC02",
        ],
    );
    let hits = f
        .search_all("plate=123ABC02&mode=fuzzy&max_distance=0.5")
        .await;
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert_eq!(ids(&f.search_all("plate=*17&mode=wildcard").await).len(), 1);

    // Reads older than 30 days go; plates no longer named go with them.
    let policy = RetentionPolicy {
        plate_reads_days: Some(30),
        hotlist_hits_days: None,
        alarms_days: None,
        status_days: None,
    };
    let now = (new + DAY) as i64;
    let report = off_thread(|| {
        run_purge(&*store, f.state.blobs(), f.state.metrics(), &policy, now).unwrap()
    });
    assert_eq!((report.plate_reads, report.plates), (4, 3));
    let kept = ["I23ABC02", "555XYZ05", "123A8C02"];
    check(&*store, &kept);
    let hits = f
        .search_all("plate=123ABC02&mode=fuzzy&max_distance=0.5")
        .await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(f.search_all("plate=*17&mode=wildcard").await.is_empty());

    // A purged plate read again is found again.
    assert_eq!(
        f.post_events(&[read(8, new + 1, "777KXM17")]).await.status,
        StatusCode::OK
    );
    let kept = ["I23ABC02", "555XYZ05", "123A8C02", "777KXM17"];
    check(&*store, &kept);
    assert_eq!(f.search_all("plate=*17&mode=wildcard").await.len(), 1);
    assert_eq!(
        f.search_all("plate=777KXN17&mode=fuzzy&max_distance=1")
            .await
            .len(),
        1
    );

    // A store opened again loads the same plates.
    let dir = f.dir.path().to_owned();
    let reopened = off_thread(|| -> Box<dyn Store> {
        match backend {
            Backend::Sqlite => Box::new(SqliteStore::open(&dir).unwrap()),
            Backend::Postgres(url) => Box::new(PostgresStore::connect(&url).unwrap()),
        }
    });
    check(&*reopened, &kept);
    off_thread(move || drop(reopened));
}

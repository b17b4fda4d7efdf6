//! Retention: the purge deletes expired events of each kind, their alerts,
//! unused plates and unused blobs, and keeps recent events, hotlist hits
//! longer than plain reads, shared blobs and the audit log.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use safecity_core::EventId;
use safecity_server::{
    run_purge, BlobStore, PlateQuery, PurgeReport, RetentionPolicy, SearchQuery, ServerConfig,
    SqliteStore, Store, PURGE_BATCH,
};
use serde_json::{json, Value};

use crate::support::{alarm, event, id_of, on_both_backends, rfc3339, Backend, Fixture};

on_both_backends!(
    the_purge_keeps_each_kind_as_long_as_its_policy_says,
    a_purged_snapshot_sent_again_is_stored_again,
    the_purge_works_through_more_events_than_one_batch,
);

const DAY: u64 = 24 * 3600 * 1000;

/// Runs blocking store calls off the async test's thread (the PostgreSQL
/// client blocks on a runtime of its own).
fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

/// One purge of the fixture's store at `now` with `policy`.
fn purge(f: &Fixture, policy: &RetentionPolicy, now: u64) -> PurgeReport {
    off_thread(|| {
        run_purge(
            &**f.state.store(),
            f.state.blobs(),
            f.state.metrics(),
            policy,
            now as i64,
        )
        .unwrap()
    })
}

fn now_ms() -> u64 {
    safecity_core::clock::now_ms() as u64
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn with_snapshot(mut e: Value, bytes: &[u8]) -> Value {
    e["snapshot"] = json!(b64(bytes));
    e
}

fn status(n: u128, ts_ms: u64, camera: &str) -> Value {
    json!({
        "id": EventId::new(ts_ms, n).to_string(),
        "kind": "camera_status",
        "edge_id": "edge-alm-01",
        "camera_id": camera,
        "ts": rfc3339(ts_ms),
        "status": {"state": "offline", "message": "no frames for 10 s"},
    })
}

fn read(n: u128, ts_ms: u64, plate: &str) -> Value {
    event(n, ts_ms, "alm-cam-0001", Some(plate), "car", "white")
}

/// Where the blob of `bytes` lives in the data directory `dir`.
fn blob_path(dir: &Path, bytes: &[u8]) -> PathBuf {
    let h = BlobStore::hash(bytes);
    dir.join("blobs/sha256").join(&h[..2]).join(&h[2..])
}

fn policy() -> RetentionPolicy {
    RetentionPolicy {
        plate_reads_days: Some(30),
        hotlist_hits_days: Some(365),
        alarms_days: Some(60),
        status_days: Some(7),
    }
}

fn all_events(store: &dyn Store) -> Vec<String> {
    let page = store
        .search(&SearchQuery {
            plate: PlateQuery::Any,
            from_ms: None,
            to_ms: None,
            cameras: None,
            near: None,
            class: None,
            colour: None,
            kind: None,
            limit: 100_000,
            after: None,
        })
        .unwrap();
    let mut ids: Vec<String> = page.hits.into_iter().map(|h| h.id).collect();
    ids.sort();
    ids
}

fn distinct_plates(dir: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(dir.join("safecity.sqlite3")).unwrap();
    let mut stmt = conn
        // Merged parts' plates are in `plates`, the newest parts' only in
        // `sightings`.
        .prepare(
            "SELECT plate FROM plates UNION SELECT plate FROM sightings
             UNION SELECT plate FROM new_sightings ORDER BY plate",
        )
        .unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.collect::<Result<_, _>>().unwrap()
}

async fn put_clip(f: &Fixture, id: &str, bytes: &[u8]) {
    let a = f
        .call(
            Method::PUT,
            &format!("/api/v1/events/{id}/clip"),
            Some(&f.edge),
            &[("content-type", "video/mp4")],
            bytes.to_vec(),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.error());
}

async fn snapshot_status(f: &Fixture, id: &str) -> StatusCode {
    f.get(
        &format!("/api/v1/events/{id}/snapshot?reason=retention+test"),
        &f.investigator,
    )
    .await
    .status
}

async fn the_purge_keeps_each_kind_as_long_as_its_policy_says(backend: Backend) {
    let sqlite = backend == Backend::Sqlite;
    let f = Fixture::on(backend);
    let now = now_ms();
    let shared_snapshot: &[u8] = b"\xFF\xD8 shared snapshot \xFF\xD9";
    let lone_snapshot: &[u8] = b"\xFF\xD8 lone snapshot \xFF\xD9";
    let hit_snapshot: &[u8] = b"\xFF\xD8 old hotlist hit \xFF\xD9";
    let old_clip: &[u8] = b"old alarm clip";
    let shared_clip: &[u8] = b"clip shared by two alarms";

    // Watch a plate: reads of it are hotlist hits.
    let a = f
        .post_json(
            "/api/v1/watchlist",
            &f.operator,
            &json!({"pattern": "555EEE02", "reason": "case 17/2026"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.error());

    let old_read = with_snapshot(read(1, now - 100 * DAY, "111AAA02"), shared_snapshot);
    let new_read = with_snapshot(read(2, now - DAY, "222BBB02"), shared_snapshot);
    let old_lone = with_snapshot(read(3, now - 100 * DAY, "333CCC02"), lone_snapshot);
    let old_vehicle = event(4, now - 100 * DAY, "alm-cam-0001", None, "truck", "red");
    let old_seen_again = read(5, now - 100 * DAY, "444DDD02");
    let seen_again = read(6, now - 2 * DAY, "444DDD02");
    let hit_kept = read(7, now - 100 * DAY, "555EEE02");
    let hit_expired = with_snapshot(read(8, now - 400 * DAY, "555EEE02"), hit_snapshot);
    let alarm_expired = alarm(9, now - 100 * DAY, "alm-pillar-01");
    let alarm_kept = alarm(10, now - 10 * DAY, "alm-pillar-01");
    let alarm_sharing = alarm(11, now - 100 * DAY, "alm-pillar-02");
    let status_expired = status(12, now - 10 * DAY, "alm-cam-0001");
    let status_kept = status(13, now - DAY, "alm-cam-0001");
    let batch = vec![
        old_read.clone(),
        new_read.clone(),
        old_lone.clone(),
        old_vehicle.clone(),
        old_seen_again.clone(),
        seen_again.clone(),
        hit_kept.clone(),
        hit_expired.clone(),
        alarm_expired.clone(),
        alarm_kept.clone(),
        alarm_sharing.clone(),
        status_expired.clone(),
        status_kept.clone(),
    ];
    let a = f.post_events(&batch).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    assert_eq!(a.json()["accepted"], 13);
    put_clip(&f, &id_of(&alarm_expired), old_clip).await;
    put_clip(&f, &id_of(&alarm_kept), shared_clip).await;
    put_clip(&f, &id_of(&alarm_sharing), shared_clip).await;

    // Five alerts: two hotlist hits and three alarms.
    let alerts = f.get("/api/v1/alerts?limit=50", &f.operator).await.json();
    let alert_of = |id: &str| -> i64 {
        alerts["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["event_id"] == id)
            .unwrap_or_else(|| panic!("no alert for {id}"))["id"]
            .as_i64()
            .unwrap()
    };
    let expired_hit_alert = alert_of(&id_of(&hit_expired));
    let kept_hit_alert = alert_of(&id_of(&hit_kept));
    let expired_alarm_alert = alert_of(&id_of(&alarm_expired));
    let kept_alarm_alert = alert_of(&id_of(&alarm_kept));
    let a = f
        .post_json(
            &format!("/api/v1/alerts/{expired_hit_alert}/ack"),
            &f.operator,
            &json!({"note": "seen"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());

    assert_eq!(snapshot_status(&f, &id_of(&old_read)).await, StatusCode::OK);
    let audit_before = off_thread(|| f.state.store().audit(None, 1000).unwrap());
    // The watchlist entry, three clips stored, the alert list, the
    // acknowledgement and the snapshot read.
    assert_eq!(audit_before.len(), 7, "{audit_before:?}");
    for bytes in [
        shared_snapshot,
        lone_snapshot,
        hit_snapshot,
        old_clip,
        shared_clip,
    ] {
        assert!(blob_path(f.dir.path(), bytes).is_file());
    }

    let report = purge(&f, &policy(), now);
    assert_eq!(
        report,
        PurgeReport {
            plate_reads: 4,
            hotlist_hits: 1,
            alarms: 2,
            status: 1,
            alerts: 3,
            plates: 2,
            blobs: 3,
        }
    );

    // What stays.
    let mut kept: Vec<String> = [&new_read, &seen_again, &hit_kept, &alarm_kept, &status_kept]
        .iter()
        .map(|e| id_of(e))
        .collect();
    kept.sort();
    assert_eq!(off_thread(|| all_events(&**f.state.store())), kept);
    let found = f.search_all("").await;
    assert_eq!(found.len(), 5);
    assert_eq!(
        f.search_all("plate=444DDD02").await.len(),
        1,
        "the recent sighting of a plate stays"
    );
    assert!(f.search_all("plate=111AAA02").await.is_empty());
    assert!(f.search_all("plate=333*").await.is_empty());
    assert!(f.search_all("plate=333CCB02&mode=fuzzy").await.is_empty());
    if sqlite {
        assert_eq!(
            distinct_plates(f.dir.path()),
            ["222BBB02", "444DDD02", "555EEE02"]
        );
    }

    // Snapshots and clips: gone with their events unless still named.
    assert_eq!(
        snapshot_status(&f, &id_of(&old_read)).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(snapshot_status(&f, &id_of(&new_read)).await, StatusCode::OK);
    let a = f
        .get(
            &format!(
                "/api/v1/events/{}/snapshot?reason=retention+test",
                id_of(&new_read)
            ),
            &f.investigator,
        )
        .await;
    assert_eq!(&a.body[..], shared_snapshot);
    assert!(blob_path(f.dir.path(), shared_snapshot).is_file());
    assert!(!blob_path(f.dir.path(), lone_snapshot).exists());
    assert!(!blob_path(f.dir.path(), hit_snapshot).exists());
    assert!(!blob_path(f.dir.path(), old_clip).exists());
    assert!(blob_path(f.dir.path(), shared_clip).is_file());
    let a = f
        .get(
            &format!(
                "/api/v1/events/{}/clip?reason=retention+test",
                id_of(&alarm_kept)
            ),
            &f.operator,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(&a.body[..], shared_clip);
    let set_aside = std::fs::read_dir(f.dir.path().join("blobs/purging"))
        .unwrap()
        .count();
    assert_eq!(set_aside, 0);

    // Alerts go with their events; the others stay.
    for (id, expect) in [
        (expired_hit_alert, StatusCode::NOT_FOUND),
        (expired_alarm_alert, StatusCode::NOT_FOUND),
        (kept_hit_alert, StatusCode::OK),
        (kept_alarm_alert, StatusCode::OK),
    ] {
        let a = f.get(&format!("/api/v1/alerts/{id}"), &f.operator).await;
        assert_eq!(a.status, expect, "alert {id}");
    }

    // The audit log is untouched: the same records, then the reads since.
    let audit_after = off_thread(|| f.state.store().audit(None, 1000).unwrap());
    let old_part: Vec<_> = audit_after
        .iter()
        .filter(|r| r.seq <= audit_before[0].seq)
        .cloned()
        .collect();
    assert_eq!(old_part, audit_before);
    assert!(audit_before.iter().any(|r| r.entry.detail.as_deref()
        == Some(&format!("alert {expired_hit_alert}: new -> acknowledged"))));

    // Counted in the metrics.
    let metrics = String::from_utf8(
        f.call(Method::GET, "/metrics", None, &[], Body::empty())
            .await
            .body
            .to_vec(),
    )
    .unwrap();
    for line in [
        "safecity_purge_runs_total 1",
        "safecity_purged_events_total{class=\"plate_reads\"} 4",
        "safecity_purged_events_total{class=\"hotlist_hits\"} 1",
        "safecity_purged_events_total{class=\"alarms\"} 2",
        "safecity_purged_events_total{class=\"status\"} 1",
        "safecity_purged_alerts_total 3",
        "safecity_purged_plates_total 2",
        "safecity_purged_blobs_total 3",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }

    // Again: nothing more to do.
    let again = purge(&f, &policy(), now);
    assert_eq!(again, PurgeReport::default());
    // A policy that keeps everything deletes nothing.
    let report = purge(&f, &RetentionPolicy::default(), now + 10_000 * DAY);
    assert_eq!(report, PurgeReport::default());
    assert_eq!(off_thread(|| all_events(&**f.state.store())).len(), 5);
}

async fn a_purged_snapshot_sent_again_is_stored_again(backend: Backend) {
    let f = Fixture::on(backend);
    let now = now_ms();
    let bytes: &[u8] = b"\xFF\xD8 sent twice \xFF\xD9";
    let old = with_snapshot(read(1, now - 100 * DAY, "111AAA02"), bytes);
    assert_eq!(f.post_events(&[old]).await.status, StatusCode::OK);
    let report = purge(&f, &policy(), now);
    assert_eq!((report.plate_reads, report.blobs), (1, 1));
    assert!(!blob_path(f.dir.path(), bytes).exists());
    let new = with_snapshot(read(2, now, "111AAA02"), bytes);
    assert_eq!(
        f.post_events(std::slice::from_ref(&new)).await.status,
        StatusCode::OK
    );
    assert_eq!(snapshot_status(&f, &id_of(&new)).await, StatusCode::OK);
}

async fn the_purge_works_through_more_events_than_one_batch(backend: Backend) {
    let f = Fixture::on(backend);
    let now = now_ms();
    let old: Vec<Value> = (0..PURGE_BATCH as u128 * 2 + 37)
        .map(|n| {
            read(
                n,
                now - 40 * DAY - n as u64,
                &format!("{:03}ABC02", n % 1000),
            )
        })
        .collect();
    for chunk in old.chunks(500) {
        assert_eq!(f.post_events(chunk).await.status, StatusCode::OK);
    }
    let recent = read(99_999, now - DAY, "777KXM17");
    // An old hotlist hit and an old alarm among them are kept longer.
    let hit = {
        let a = f
            .post_json(
                "/api/v1/watchlist",
                &f.operator,
                &json!({"pattern": "888ZZZ02", "reason": "case 18/2026"}),
            )
            .await;
        assert_eq!(a.status, StatusCode::CREATED);
        read(100_000, now - 40 * DAY, "888ZZZ02")
    };
    let old_alarm = alarm(100_001, now - 40 * DAY, "alm-pillar-01");
    let a = f
        .post_events(&[recent.clone(), hit.clone(), old_alarm.clone()])
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let report = purge(&f, &policy(), now);
    assert_eq!(report.plate_reads, old.len() as u64);
    assert_eq!(report.events(), old.len() as u64);
    assert_eq!(report.plates, 1000);
    let mut kept = vec![id_of(&recent), id_of(&hit), id_of(&old_alarm)];
    kept.sort();
    assert_eq!(off_thread(|| all_events(&**f.state.store())), kept);
}

/// Old and recent reads with snapshots in a data directory; returns their
/// ids and the snapshot bytes.
async fn data_dir_with_old_reads(f: &Fixture) -> (String, String, &'static [u8]) {
    let now = now_ms();
    let snapshot: &[u8] = b"\xFF\xD8 cron purge \xFF\xD9";
    let old = with_snapshot(read(1, now - 100 * DAY, "111AAA02"), snapshot);
    let recent = read(2, now - DAY, "222BBB02");
    let a = f.post_events(&[old.clone(), recent.clone()]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(blob_path(f.dir.path(), snapshot).is_file());
    (id_of(&old), id_of(&recent), snapshot)
}

fn server_bin(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_safecity-server"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test]
async fn safecity_server_purge_applies_the_configured_retention_to_a_data_dir() {
    let f = Fixture::new();
    let (old, recent, snapshot) = data_dir_with_old_reads(&f).await;
    let audit_before = off_thread(|| f.state.store().audit(None, 1000).unwrap());
    let dir = f.dir.path().to_str().unwrap().to_owned();
    let config = f.dir.path().join("server.toml");

    // No retention set: nothing happens.
    let out = server_bin(&["purge", "--data-dir", &dir]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to purge"),
        "{out:?}"
    );
    assert_eq!(off_thread(|| all_events(&**f.state.store())).len(), 2);

    // A bad setting is named.
    std::fs::write(&config, "[retention]\nplate_reads_days = 0\n").unwrap();
    let out = server_bin(&[
        "purge",
        "--data-dir",
        &dir,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention.plate_reads_days"), "{err}");

    std::fs::write(
        &config,
        "[retention]\nplate_reads_days = 30\nalarms_days = 365\n",
    )
    .unwrap();
    let out = server_bin(&[
        "purge",
        "--data-dir",
        &dir,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("purged 1 events (plate reads 1, hotlist hits 0, alarms 0, status 0)"),
        "{stdout}"
    );
    assert!(stdout.contains("1 plates, 1 blobs"), "{stdout}");

    // Read back through a fresh store on the same directory.
    let store = SqliteStore::open(f.dir.path()).unwrap();
    assert_eq!(all_events(&store), vec![recent]);
    assert!(store.event_blobs(&old).unwrap().is_none());
    assert!(!blob_path(f.dir.path(), snapshot).exists());
    assert_eq!(store.audit(None, 1000).unwrap(), audit_before);
}

#[tokio::test]
async fn a_bad_retention_setting_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (text, field) in [
        (
            "[retention]\nhotlist_hits_days = 0\n",
            "retention.hotlist_hits_days",
        ),
        ("[retention]\nstatus_days = -1\n", "retention.status_days"),
        (
            "[retention]\nalarms_days = 100000\n",
            "retention.alarms_days",
        ),
        ("[retention]\nplate_reads_dys = 3\n", "plate_reads_dys"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let err = ServerConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains(field), "{text}: {err}");
    }
}

#[tokio::test]
async fn the_server_purges_in_the_background() {
    let f = Fixture::new();
    let (old, recent, snapshot) = data_dir_with_old_reads(&f).await;
    let mut config: ServerConfig = toml::from_str(
        "listen = \"127.0.0.1:0\"\n[retention]\nplate_reads_days = 30\npurge_interval_s = 3600\n",
    )
    .unwrap();
    config.data_dir = f.dir.path().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(safecity_server::run(config, async {
        let _ = stopped.await;
    }));
    // The first purge runs at start.
    let mut waited = Duration::ZERO;
    while off_thread(|| f.state.store().event_blobs(&old).unwrap().is_some()) {
        assert!(
            waited < Duration::from_secs(60),
            "the background purge did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    assert_eq!(off_thread(|| all_events(&**f.state.store())), vec![recent]);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    assert!(!blob_path(f.dir.path(), snapshot).exists());
}

//! Every route through `app(state)` without a socket.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use safecity_server::ServerConfig;
use serde_json::{json, Value};

use crate::support::*;

on_both_backends!(
    ingest_is_idempotent_plain_and_gzip,
    every_gzip_member_is_read,
    an_event_id_is_one_id_in_any_letter_case,
    exact_wildcard_and_fuzzy_search_with_filters_and_pages,
    bad_parameters_are_named,
    tokens_and_roles_are_checked,
    bad_batches_are_refused_whole_and_lose_nothing,
    snapshots_and_clips_are_stored_by_hash_and_served,
    an_edge_token_speaks_for_its_own_edge_only,
    an_expired_token_is_refused_by_name,
    a_clip_is_written_once_by_its_own_edge_and_refusals_are_audited,
    the_audit_log_records_who_why_and_how_many,
    cameras_are_registered_and_near_searches_use_them,
    camera_health_follows_status_events_and_me_names_the_role,
);

/// A day of traffic over three cameras and a few plates.
fn traffic() -> Vec<Value> {
    let plates = ["123ABC02", "123ABD02", "777KXM17", "A123BCD", "123AB02"];
    let cameras = ["cam-a", "cam-b", "cam-c"];
    let classes = [("car", "white"), ("truck", "red"), ("bus", "blue")];
    (0..30u64)
        .map(|i| {
            let (class, colour) = classes[i as usize % 3];
            event(
                u128::from(i) + 1,
                T0 + i * 60_000,
                cameras[i as usize % 3],
                Some(plates[i as usize % plates.len()]),
                class,
                colour,
            )
        })
        .collect()
}

/// A ULID is case-insensitive: the same id in upper, lower and mixed case
/// is one event, stored once under its upper-case form, and found by its
/// snapshot route in any case.
async fn an_event_id_is_one_id_in_any_letter_case(backend: Backend) {
    let f = Fixture::on(backend);
    let mut upper = event(7, T0, "cam-a", Some("123ABC02"), "car", "white");
    upper["snapshot"] = json!(base64::engine::general_purpose::STANDARD.encode(b"jpeg"));
    let id = id_of(&upper);
    let mixed: String = id
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_lowercase()
            } else {
                c
            }
        })
        .collect();
    assert_ne!(mixed, id, "the id has letters to change");
    let mut lower = upper.clone();
    lower["id"] = json!(id.to_ascii_lowercase());
    let mut mixed_case = upper.clone();
    mixed_case["id"] = json!(mixed);
    let a = f.post_events(&[lower]).await;
    assert_eq!(
        a.json(),
        json!({"accepted": 1, "duplicates": 0}),
        "{}",
        a.error()
    );
    let a = f.post_events(&[upper, mixed_case]).await;
    assert_eq!(
        a.json(),
        json!({"accepted": 0, "duplicates": 2}),
        "{}",
        a.error()
    );
    let all = f.search_all("").await;
    assert_eq!(ids(&all), vec![id.clone()], "stored once, upper case");
    let a = f
        .get(
            &format!(
                "/api/v1/events/{}/snapshot?reason=case%201",
                id.to_ascii_lowercase()
            ),
            &f.investigator,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    assert_eq!(&a.body[..], b"jpeg");
}

/// A gzip body may be several members one after another: all are read.
/// A batch split across two members is stored whole; two arrays in two
/// members are one body that is not one array, and nothing is stored.
async fn every_gzip_member_is_read(backend: Backend) {
    let f = Fixture::on(backend);
    let batch = traffic();
    let json = serde_json::to_vec(&batch[..4]).unwrap();
    let cut = json.len() / 2;
    let a = f
        .post_gzip([gzip(&json[..cut]), gzip(&json[cut..])].concat())
        .await;
    assert_eq!(
        a.json(),
        json!({"accepted": 4, "duplicates": 0}),
        "{}",
        a.error()
    );

    let first = serde_json::to_vec(&batch[4..6]).unwrap();
    let second = serde_json::to_vec(&batch[6..8]).unwrap();
    let a = f.post_gzip([gzip(&first), gzip(&second)].concat()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("one JSON array"), "{}", a.error());
    assert_eq!(
        f.search_all("").await.len(),
        4,
        "stored from a refused body"
    );
}

async fn ingest_is_idempotent_plain_and_gzip(backend: Backend) {
    let f = Fixture::on(backend);
    let batch = traffic();
    let a = f.post_events(&batch).await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.json(), json!({"accepted": 30, "duplicates": 0}));

    let a = f
        .post_gzip(gzip(&serde_json::to_vec(&batch).unwrap()))
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({"accepted": 0, "duplicates": 30}));

    // A gzip batch with new events and a repeat inside it.
    let fresh = vec![
        event(100, T0 + 5, "cam-z", Some("999ZZZ01"), "car", "black"),
        event(101, T0 + 6, "cam-z", None, "car", "black"),
    ];
    let twice = [fresh.clone(), fresh].concat();
    let a = f
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&f.admin),
            &[("content-encoding", "gzip")],
            gzip(&serde_json::to_vec(&twice).unwrap()),
        )
        .await;
    assert_eq!(a.json(), json!({"accepted": 2, "duplicates": 2}));

    let all = f.search_all("").await;
    let mut got = ids(&all);
    assert_eq!(got.len(), 32);
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 32, "an id is stored twice");

    let metrics = f
        .call(Method::GET, "/metrics", None, &[], Body::empty())
        .await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(text.contains("safecity_events_ingested_total 32"), "{text}");
    assert!(
        text.contains("safecity_events_duplicate_total 32"),
        "{text}"
    );
    assert!(
        text.contains(
            "safecity_http_requests_total{method=\"POST\",route=\"/api/v1/events\",status=\"200\"} 3"
        ),
        "{text}"
    );
}

async fn exact_wildcard_and_fuzzy_search_with_filters_and_pages(backend: Backend) {
    let f = Fixture::on(backend);
    let batch = traffic();
    assert_eq!(f.post_events(&batch).await.status, StatusCode::OK);

    // Exact, typed the way a person would, newest first.
    let hits = f.search_all("plate=123%20abc-02").await;
    assert_eq!(hits.len(), 6);
    let ts: Vec<&str> = hits
        .iter()
        .map(|h| h["event"]["ts"].as_str().unwrap())
        .collect();
    let mut sorted = ts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ts, sorted, "not newest first");
    assert!(hits
        .iter()
        .all(|h| h["event"]["plate"]["text"] == "123ABC02"));

    // Cyrillic look-alikes are the same plate.
    assert_eq!(f.search_all("plate=123%D0%90%D0%92%D0%A102").await.len(), 6);

    // Wildcards: `?` one character, `*` any run.
    let hits = f.search_all("plate=123AB%3F02").await;
    assert_eq!(hits.len(), 12);
    let hits = f.search_all("plate=123*02&mode=wildcard").await;
    assert_eq!(hits.len(), 18);
    let hits = f.search_all("plate=*BC*").await;
    assert_eq!(hits.len(), 12, "123ABC02 and A123BCD");

    // Filters: camera (repeatable), time window, class and colour.
    let hits = f.search_all("plate=123*02&camera=cam-a&camera=cam-b").await;
    assert!(hits.iter().all(|h| h["event"]["camera_id"] != "cam-c"));
    assert_eq!(hits.len(), 12);
    let from = rfc3339(T0 + 10 * 60_000);
    let to = rfc3339(T0 + 19 * 60_000);
    let hits = f.search_all(&format!("from={from}&to={to}")).await;
    assert_eq!(hits.len(), 10, "both bounds are inclusive");
    let hits = f.search_all("class=truck&colour=RED").await;
    assert_eq!(hits.len(), 10);
    assert!(hits
        .iter()
        .all(|h| h["event"]["vehicle"]["class"] == "truck"));

    // Pages of 7 cover everything once, in order.
    let all = f.search_all("").await;
    assert_eq!(all.len(), 30);
    let mut want: Vec<String> = batch.iter().map(id_of).collect();
    want.reverse();
    assert_eq!(ids(&all), want);

    // Fuzzy: an OCR misread (I for 1) finds the plate, with its distance.
    let a = f
        .get(
            "/api/v1/search?plate=I23ABC02&mode=fuzzy&reason=case%207",
            &f.investigator,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    let results = a.json()["results"].as_array().unwrap().clone();
    assert_eq!(results.len(), 6);
    assert!(results.iter().all(|r| r["distance"] == 0.5));
    let a = f
        .get(
            "/api/v1/search?plate=I23ABC02&mode=fuzzy&max_distance=1.5&reason=x",
            &f.investigator,
        )
        .await;
    // 123ABC02 (0.5), 123ABD02 (1.5: D for C is a plain edit... plus I/1), 123AB02 (1.5).
    let plates: std::collections::BTreeSet<String> = a.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["event"]["plate"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        plates.contains("123ABC02") && plates.contains("123AB02"),
        "{plates:?}"
    );
    assert!(!plates.contains("777KXM17"));
}

async fn bad_parameters_are_named(backend: Backend) {
    let f = Fixture::on(backend);
    let inv = f.investigator.clone();
    let cases = [
        ("/api/v1/search?plate=123ABC02", "reason is required"),
        (
            "/api/v1/search?plate=123ABC02&reason=%20",
            "reason is required",
        ),
        ("/api/v1/search?reason=x&from=yesterday", "`from`"),
        ("/api/v1/search?reason=x&to=2026-13-01T00:00:00Z", "`to`"),
        ("/api/v1/search?reason=x&plate=12%25AB&mode=wildcard", "'%'"),
        (
            "/api/v1/search?reason=x&plate=123*&mode=exact",
            "mode=wildcard",
        ),
        (
            "/api/v1/search?reason=x&plate=123ABC02&mode=regex",
            "`mode`",
        ),
        (
            "/api/v1/search?reason=x&plate=123ABC02&mode=fuzzy&max_distance=3",
            "max_distance",
        ),
        ("/api/v1/search?reason=x&limit=501", "`limit`"),
        ("/api/v1/search?reason=x&cursor=bogus", "cursor"),
        ("/api/v1/search?reason=x&near=43.2,76.9", "`near`"),
        ("/api/v1/search?reason=x&plat=123ABC02", "`plat`"),
        ("/api/v1/search?reason=x&kind=car", "`kind`"),
        (
            "/api/v1/search?reason=x&from=2026-11-22T11:00:00Z&to=2026-11-22T10:00:00Z",
            "swap",
        ),
    ];
    for (uri, needle) in cases {
        let a = f.get(uri, &inv).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(a.error().contains(needle), "{uri}: {}", a.error());
    }
    // An offset whose `+` was not encoded still parses.
    let a = f
        .get(
            "/api/v1/search?reason=x&from=2026-11-22T15:00:00+05:00",
            &inv,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
}

async fn tokens_and_roles_are_checked(backend: Backend) {
    let f = Fixture::on(backend);
    let a = f
        .call(
            Method::GET,
            "/api/v1/search?reason=x",
            None,
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.error().contains("Bearer"), "{}", a.error());
    let a = f.get("/api/v1/search?reason=x", "not-a-token").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.error().contains("unknown or revoked token"),
        "{}",
        a.error()
    );
    let a = f
        .call(
            Method::GET,
            "/api/v1/cameras",
            None,
            &[("authorization", "Basic abc")],
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    for (token, method, uri) in [
        (&f.edge, Method::GET, "/api/v1/search?reason=x"),
        (&f.operator, Method::GET, "/api/v1/search?reason=x"),
        (&f.investigator, Method::POST, "/api/v1/events"),
        (&f.operator, Method::POST, "/api/v1/events"),
        (&f.investigator, Method::GET, "/api/v1/audit"),
        (&f.investigator, Method::PUT, "/api/v1/cameras/cam-a"),
        (
            &f.edge,
            Method::GET,
            "/api/v1/events/01JD3Q6Z8W4M2K9T7R5N1C0XYZ/snapshot?reason=x",
        ),
        (
            &f.investigator,
            Method::PUT,
            "/api/v1/events/01JD3Q6Z8W4M2K9T7R5N1C0XYZ/clip",
        ),
    ] {
        let a = f.call(method.clone(), uri, Some(token), &[], "[]").await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method} {uri}");
        assert!(a.error().contains("needs role"), "{}", a.error());
    }
    // Open routes.
    let a = f
        .call(Method::GET, "/healthz", None, &[], Body::empty())
        .await;
    assert_eq!((a.status, &a.body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let a = f
        .call(Method::GET, "/nowhere", None, &[], Body::empty())
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("/nowhere"));
}

async fn bad_batches_are_refused_whole_and_lose_nothing(backend: Backend) {
    let f = Fixture::with_config_on(
        ServerConfig {
            max_body_mb: 1,
            ..ServerConfig::default()
        },
        backend,
    );
    let good = traffic();
    assert_eq!(f.post_events(&good).await.status, StatusCode::OK);

    let newcomer = event(500, T0 + 1, "cam-a", Some("555XYZ05"), "car", "white");
    let mut unknown_field = event(501, T0 + 2, "cam-a", Some("556XYZ05"), "car", "white");
    unknown_field["camera"] = json!("cam-a");
    let mut wrong_type = event(502, T0 + 3, "cam-a", Some("557XYZ05"), "car", "white");
    wrong_type["plate"]["confidence"] = json!("high");
    let mut bad_plate = event(503, T0 + 4, "cam-a", Some("558XYZ05"), "car", "white");
    bad_plate["plate"]["text"] = json!("558xyz05");
    let mut bad_snapshot = event(504, T0 + 5, "cam-a", Some("559XYZ05"), "car", "white");
    bad_snapshot["snapshot"] = json!("not base64 at all!");

    let (unknown_id, wrong_id) = (id_of(&unknown_field), id_of(&wrong_type));
    let cases: Vec<(Vec<u8>, Vec<&str>)> = vec![
        (
            b"[{\"id\": ".to_vec(),
            vec!["not valid JSON", "line 1 column 8", "nothing in this batch"],
        ),
        (b"[] []".to_vec(), vec!["one JSON array"]),
        (b"{\"id\": 1}".to_vec(), vec!["JSON array"]),
        (
            serde_json::to_vec(&[newcomer.clone(), unknown_field.clone()]).unwrap(),
            vec!["event 1", &unknown_id, "unknown field `camera`"],
        ),
        (
            serde_json::to_vec(&[newcomer.clone(), wrong_type.clone()]).unwrap(),
            vec!["event 1", &wrong_id, "plate.confidence", "invalid type"],
        ),
        (
            serde_json::to_vec(&[newcomer.clone(), bad_plate.clone()]).unwrap(),
            vec!["event 1", "plate.text", "558XYZ05"],
        ),
        (
            serde_json::to_vec(&[newcomer.clone(), bad_snapshot.clone()]).unwrap(),
            vec!["event 1", "snapshot", "base64"],
        ),
    ];
    for (body, needles) in cases {
        let a = f
            .call(Method::POST, "/api/v1/events", Some(&f.edge), &[], body)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        for n in needles {
            assert!(a.error().contains(n), "{n:?} not in {}", a.error());
        }
    }

    // Over the limit, plain and after decompression.
    let big = vec![b' '; 2 * 1024 * 1024];
    let a = f
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&f.edge),
            &[],
            big.clone(),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.error().contains("1 MiB"), "{}", a.error());
    let a = f
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&f.edge),
            &[("content-encoding", "gzip")],
            gzip(&big),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let a = f
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&f.edge),
            &[("content-encoding", "gzip")],
            "not gzip",
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("gzip"));
    let a = f
        .call(
            Method::POST,
            "/api/v1/events",
            Some(&f.edge),
            &[("content-type", "text/plain")],
            "[]",
        )
        .await;
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // What was stored before is all there; nothing of the refused batches is.
    let all = f.search_all("").await;
    let mut want: Vec<String> = good.iter().map(id_of).collect();
    want.reverse();
    assert_eq!(ids(&all), want);
}

async fn snapshots_and_clips_are_stored_by_hash_and_served(backend: Backend) {
    let f = Fixture::on(backend);
    let mut e = event(7, T0, "pillar-1", None, "car", "white");
    e["snapshot"] = json!(base64::engine::general_purpose::STANDARD.encode(JPEG));
    let mut alarm = json!({
        "id": safecity_core::EventId::new(T0 + 1, 8).to_string(),
        "kind": "panic_alarm",
        "edge_id": "edge-alm-01",
        "camera_id": "pillar-1",
        "ts": rfc3339(T0 + 1),
        "alarm": {"source": "button"},
    });
    alarm["snapshot"] = e["snapshot"].clone();
    assert_eq!(
        f.post_events(&[e.clone(), alarm.clone()]).await.status,
        StatusCode::OK
    );
    let (id, alarm_id) = (id_of(&e), id_of(&alarm));

    // One file for the two identical snapshots, at its hash.
    let hash = safecity_server::BlobStore::hash(JPEG);
    let path = f
        .dir
        .path()
        .join("blobs/sha256")
        .join(&hash[..2])
        .join(&hash[2..]);
    assert_eq!(std::fs::read(&path).unwrap(), JPEG);

    let a = f
        .get(
            &format!("/api/v1/events/{id}/snapshot?reason=case%201"),
            &f.operator,
        )
        .await;
    assert_eq!(
        a.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    assert_eq!(a.headers["content-type"], "image/jpeg");
    assert_eq!(&a.body[..], JPEG);
    let a = f
        .get(&format!("/api/v1/events/{id}/snapshot"), &f.operator)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("reason is required"));
    let unknown = safecity_core::EventId::new(T0, 999).to_string();
    let a = f
        .get(
            &format!("/api/v1/events/{unknown}/snapshot?reason=x"),
            &f.investigator,
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);

    // Search results carry links, not bytes.
    let hits = f.search_all("camera=pillar-1").await;
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h["event"].get("snapshot").is_none()));
    assert_eq!(
        hits[1]["snapshot_url"],
        format!("/api/v1/events/{id}/snapshot")
    );
    assert_eq!(hits[0]["clip_url"], Value::Null);

    // Clips: 404 for an unknown event (the edge retries), 201 and idempotent.
    let clip = b"\x00\x00\x00\x18ftypmp42 fake clip".to_vec();
    let put = |id: String| {
        let clip = clip.clone();
        let f = &f;
        async move {
            f.call(
                Method::PUT,
                &format!("/api/v1/events/{id}/clip"),
                Some(&f.edge),
                &[("content-type", "video/mp4")],
                clip,
            )
            .await
        }
    };
    let a = put(unknown.clone()).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("send the event first"));
    // Stored, then the same bytes again (a lost answer): already there.
    for status in [StatusCode::CREATED, StatusCode::OK] {
        let a = put(alarm_id.clone()).await;
        assert_eq!(a.status, status, "{}", String::from_utf8_lossy(&a.body));
        assert_eq!(a.json()["sha256"], safecity_server::BlobStore::hash(&clip));
    }
    let a = f
        .get(
            &format!("/api/v1/events/{alarm_id}/clip?reason=alarm%2012"),
            &f.operator,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers["content-type"], "video/mp4");
    assert_eq!(&a.body[..], &clip[..]);
    let a = f
        .get(&format!("/api/v1/events/{id}/clip?reason=x"), &f.operator)
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.error().contains("has no clip"));
    let hits = f.search_all("kind=panic_alarm").await;
    assert_eq!(
        hits[0]["clip_url"],
        format!("/api/v1/events/{alarm_id}/clip")
    );
}

async fn the_audit_log_records_who_why_and_how_many(backend: Backend) {
    let f = Fixture::on(backend);
    assert_eq!(f.post_events(&traffic()).await.status, StatusCode::OK);
    let a = f
        .get(
            "/api/v1/search?plate=123ABC02&reason=hit-and-run%20case%2042",
            &f.investigator,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    // A refused search is not a search.
    f.get("/api/v1/search?plate=123ABC02", &f.investigator)
        .await;

    let a = f.get("/api/v1/audit", &f.admin).await;
    assert_eq!(a.status, StatusCode::OK);
    let records = a.json()["records"].as_array().unwrap().clone();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["who"], "investigator-1");
    assert_eq!(r["role"], "investigator");
    assert_eq!(r["route"], "GET /api/v1/search");
    assert_eq!(r["reason"], "hit-and-run case 42");
    assert_eq!(r["results"], 6);
    assert!(r["query"].as_str().unwrap().contains("plate=123ABC02"));
    assert!(r["at"].as_str().unwrap().starts_with("20"));

    // Paging back through it.
    for i in 0..3 {
        f.get(&format!("/api/v1/search?reason=r{i}"), &f.investigator)
            .await;
    }
    let a = f.get("/api/v1/audit?limit=2", &f.admin).await;
    let page = a.json();
    assert_eq!(page["records"][0]["reason"], "r2");
    let before = page["next_before"].as_i64().unwrap();
    let a = f
        .get(&format!("/api/v1/audit?limit=2&before={before}"), &f.admin)
        .await;
    let reasons: Vec<Value> = a.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].clone())
        .collect();
    assert_eq!(reasons, [json!("r0"), json!("hit-and-run case 42")]);
}

async fn cameras_are_registered_and_near_searches_use_them(backend: Backend) {
    let f = Fixture::on(backend);
    let put = |id: &str, body: Value, token: String| {
        let f = &f;
        let uri = format!("/api/v1/cameras/{id}");
        async move {
            f.call(
                Method::PUT,
                &uri,
                Some(&token),
                &[("content-type", "application/json")],
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    };
    // Two cameras 300 m apart in Almaty, one in Astana.
    for (id, lat, lon) in [
        ("cam-a", 43.2389, 76.8897),
        ("cam-b", 43.2389, 76.8934),
        ("cam-c", 51.1694, 71.4491),
    ] {
        let a = put(
            id,
            json!({"name": format!("{id} crossing"), "kind": "camera", "lat": lat, "lon": lon}),
            f.admin.clone(),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&a.body)
        );
    }
    let a = put(
        "cam-a",
        json!({"name": "x", "kind": "camera", "lat": 43.0, "lon": 76.0}),
        f.investigator.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = put(
        "cam-d",
        json!({"name": "x", "kind": "kiosk", "lat": 43.0, "lon": 76.0}),
        f.admin.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("kind"), "{}", a.error());
    let a = put(
        "cam-d",
        json!({"name": "x", "kind": "pillar", "lat": 143.0, "lon": 76.0}),
        f.admin.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("lat"));

    let a = f.get("/api/v1/cameras", &f.edge).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["cameras"].as_array().unwrap().len(), 3);
    let a = f.get("/api/v1/cameras/cam-c", &f.operator).await;
    assert_eq!(a.json()["name"], "cam-c crossing");
    assert_eq!(
        f.get("/api/v1/cameras/nope", &f.operator).await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(f.post_events(&traffic()).await.status, StatusCode::OK);
    // 100 m around cam-a: only cam-a.
    let hits = f.search_all("near=43.2389,76.8897,100").await;
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|h| h["event"]["camera_id"] == "cam-a"));
    // 1 km: both Almaty cameras, intersected with a camera list.
    assert_eq!(f.search_all("near=43.2389,76.8897,1000").await.len(), 20);
    assert_eq!(
        f.search_all("near=43.2389,76.8897,1000&camera=cam-b&camera=cam-c")
            .await
            .len(),
        10
    );
    assert!(f.search_all("near=0,0,1000").await.is_empty());
}

async fn camera_health_follows_status_events_and_me_names_the_role(backend: Backend) {
    let f = Fixture::on(backend);
    for (token, role) in [
        (&f.admin, "admin"),
        (&f.edge, "edge"),
        (&f.operator, "operator"),
        (&f.investigator, "investigator"),
    ] {
        let a = f.get("/api/v1/me", token).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.json()["role"], role);
    }
    assert_eq!(
        f.call(Method::GET, "/api/v1/me", None, &[], Vec::new())
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );

    f.cameras(&[
        ("cam-a", "camera", 43.2389, 76.8897),
        ("cam-z", "pillar", 43.25, 76.9),
    ])
    .await;
    let h = health(&f).await;
    assert_eq!(h["cam-a"]["status"], "unknown");
    assert_eq!(h["cam-a"]["last_seen"], Value::Null);

    let read = event(1, T0, "cam-a", Some("123ABC02"), "car", "white");
    let status = |n: u128, ts: u64, state: &str| {
        let mut e = event(n, ts, "cam-a", None, "car", "white");
        e["kind"] = json!("camera_status");
        e.as_object_mut().unwrap().remove("vehicle");
        e["status"] = json!({"state": state, "message": "no frames for 5 s"});
        e
    };
    let offline = status(2, T0 + 60_000, "offline");
    assert_eq!(f.post_events(&[read, offline]).await.status, StatusCode::OK);
    let h = health(&f).await;
    assert_eq!(h["cam-a"]["status"], "offline");
    assert_eq!(h["cam-a"]["since"], json!(rfc3339(T0 + 60_000)));
    assert_eq!(h["cam-a"]["last_seen"], json!(rfc3339(T0 + 60_000)));
    assert_eq!(h["cam-z"]["status"], "unknown");
    let one = f.get("/api/v1/cameras/cam-a", &f.investigator).await.json();
    assert_eq!(one["health"]["status"], "offline");

    // Reads after the loss mean the stream is back, status event or not.
    let later = event(3, T0 + 120_000, "cam-a", Some("777KXM17"), "car", "red");
    assert_eq!(f.post_events(&[later]).await.status, StatusCode::OK);
    let h = health(&f).await;
    assert_eq!(h["cam-a"]["status"], "online");
    assert_eq!(h["cam-a"]["since"], json!(rfc3339(T0 + 60_000)));
    assert_eq!(h["cam-a"]["last_seen"], json!(rfc3339(T0 + 120_000)));
}

/// Each camera's `health` from `GET /cameras`, by id.
async fn health(f: &Fixture) -> std::collections::HashMap<String, Value> {
    let cameras = f.get("/api/v1/cameras", &f.operator).await.json();
    cameras["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["health"].clone()))
        .collect()
}

async fn an_edge_token_speaks_for_its_own_edge_only(backend: Backend) {
    let f = Fixture::on(backend);
    let mut foreign = event(1, T0, "cam-a", Some("123ABC02"), "car", "white");
    foreign["edge_id"] = json!("edge-alm-99");
    let own = event(2, T0, "cam-a", Some("777AAA02"), "car", "white");
    let a = f.post_events(&[own.clone(), foreign]).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let err = a.error();
    assert!(
        err.contains("event 1") && err.contains("edge-alm-99") && err.contains("edge-alm-01"),
        "{err}"
    );
    // The whole batch was refused.
    assert!(f.search_all("plate=777AAA02").await.is_empty());
    let a = f.post_events(&[own]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(f.search_all("plate=777AAA02").await.len(), 1);
}

async fn a_clip_is_written_once_by_its_own_edge_and_refusals_are_audited(backend: Backend) {
    let f = Fixture::on(backend);
    let pressed = alarm(1, T0, "pillar-1");
    let id = id_of(&pressed);
    assert_eq!(f.post_events(&[pressed]).await.status, StatusCode::OK);
    let path = format!("/api/v1/events/{id}/clip");
    let put = |token: String, bytes: Vec<u8>| {
        let (f, path) = (&f, &path);
        async move {
            f.call(
                Method::PUT,
                path,
                Some(&token),
                &[("content-type", "video/mp4")],
                bytes,
            )
            .await
        }
    };
    let clip = b"\x00\x00\x00\x18ftypmp42 the pillar's clip".to_vec();
    let other = b"\x00\x00\x00\x18ftypmp42 another clip".to_vec();

    // Another edge may not add it.
    let a = put(f.other_edge.clone(), clip.clone()).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().contains("only that edge"), "{}", a.error());
    // Its own edge may, once.
    assert_eq!(
        put(f.edge.clone(), clip.clone()).await.status,
        StatusCode::CREATED
    );
    // No one replaces it, the admin included.
    for token in [&f.edge, &f.admin] {
        let a = put(token.clone(), other.clone()).await;
        assert_eq!(a.status, StatusCode::CONFLICT);
        assert!(a.error().contains("written once"), "{}", a.error());
    }
    let a = f
        .get(
            &format!("/api/v1/events/{id}/clip?reason=case%201"),
            &f.operator,
        )
        .await;
    assert_eq!(&a.body[..], &clip[..]);

    // The audit log has the clip stored and every refusal, with who.
    let a = f.get("/api/v1/audit?limit=1000", &f.admin).await;
    assert_eq!(a.status, StatusCode::OK);
    let clip_records: Vec<(String, String)> = a.json()["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["route"]
                .as_str()
                .is_some_and(|p| p.ends_with("/clip") && p.starts_with("PUT"))
        })
        .map(|r| {
            (
                r["who"].as_str().unwrap().to_owned(),
                r["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let sha = safecity_server::BlobStore::hash(&clip);
    let kind = |detail: &str| {
        if detail.starts_with("refused: ") {
            "refused"
        } else if detail.starts_with(&format!("clip of event {id} stored: sha256 {sha}")) {
            "stored"
        } else {
            "other"
        }
    };
    let mut got: Vec<(&str, &str)> = clip_records
        .iter()
        .map(|(who, detail)| (who.as_str(), kind(detail)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("admin-1", "refused"),
            ("edge-alm-01", "refused"),
            ("edge-alm-01", "stored"),
            ("edge-alm-02", "refused"),
        ],
        "{clip_records:?}"
    );
}

async fn an_expired_token_is_refused_by_name(backend: Backend) {
    let f = Fixture::on(backend);
    let (expired, current) = (safecity_server::new_token(), safecity_server::new_token());
    for (token, name, expires_ms) in [
        (&expired, "old-laptop", T0 as i64),
        (&current, "new-laptop", i64::MAX / 2),
    ] {
        let store = f.state.store().clone();
        let (hash, name) = (safecity_server::token_hash(token), name.to_owned());
        std::thread::spawn(move || {
            store.add_token(
                &hash,
                &safecity_server::TokenOwner {
                    name,
                    role: safecity_server::Role::Investigator,
                    expires_ms: Some(expires_ms),
                },
            )
        })
        .join()
        .unwrap()
        .unwrap();
    }
    let a = f.get("/api/v1/me", &expired).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.error()
            .contains("\"old-laptop\" expired at 2026-11-22T10:00:00Z"),
        "{}",
        a.error()
    );
    assert_eq!(f.get("/api/v1/me", &current).await.status, StatusCode::OK);
}

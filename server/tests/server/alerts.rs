//! Watchlists, live alerts over server-sent events, their states and audit.

use axum::body::Body;
use axum::http::{Method, StatusCode};
use base64::Engine;
use safecity_server::{NewWatch, Priority, WatchMode};
use serde_json::{json, Value};

use crate::support::*;

on_both_backends!(
    watchlist_entries_are_added_listed_removed_and_checked,
    hotlisted_reads_and_pillar_alarms_are_alerts_on_the_live_stream,
    a_reconnecting_board_replays_what_it_missed,
    alerts_move_from_new_to_acknowledged_to_closed_and_each_change_is_audited,
);

const ALMATY: &[(&str, &str, f64, f64)] = &[
    ("cam-a", "camera", 43.2389, 76.8897),
    ("cam-b", "camera", 43.2389, 76.8934),
    ("pillar-1", "pillar", 43.2392, 76.8900),
    ("cam-c", "camera", 51.1694, 71.4491),
];

fn read(n: u128, camera: &str, plate: &str) -> Value {
    event(n, T0 + n as u64 * 1000, camera, Some(plate), "car", "white")
}

async fn watch(f: &Fixture, body: Value) -> Value {
    let a = f.post_json("/api/v1/watchlist", &f.operator, &body).await;
    assert_eq!(a.status, StatusCode::CREATED, "{body}: {}", a.error());
    a.json()
}

async fn watchlist_entries_are_added_listed_removed_and_checked(backend: Backend) {
    let f = Fixture::on(backend);
    let e = watch(
        &f,
        json!({"pattern": "123 abc-02", "reason": "case 12: stolen car", "priority": "high",
               "expires": "2099-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(e["pattern"], "123ABC02");
    assert_eq!(e["mode"], "exact");
    assert_eq!(e["priority"], "high");
    assert_eq!(e["active"], true);
    assert_eq!(e["created_by"], "operator-1");
    assert_eq!(e["expires"], "2099-01-01T00:00:00Z");
    let w = watch(&f, json!({"pattern": "777*17", "reason": "r"})).await;
    assert_eq!(
        (&w["mode"], &w["priority"]),
        (&json!("wildcard"), &json!("normal"))
    );
    let z = watch(
        &f,
        json!({"pattern": "555XYZ05", "mode": "fuzzy", "max_distance": 1.5, "reason": "r",
               "priority": "critical"}),
    )
    .await;
    assert_eq!(z["max_distance"], 1.5);
    // A pattern without wildcards is an exact entry.
    let x = watch(
        &f,
        json!({"pattern": "A123BCD", "mode": "wildcard", "reason": "r"}),
    )
    .await;
    assert_eq!(x["mode"], "exact");

    let cases = [
        (json!({"pattern": "123ABC02"}), "`reason` is required"),
        (
            json!({"pattern": "123ABC02", "reason": " "}),
            "`reason` is required",
        ),
        (json!({"reason": "r"}), "`pattern` is required"),
        (json!({"pattern": "12%AB", "reason": "r"}), "`pattern`"),
        (json!({"pattern": "*1*", "reason": "r"}), "too many plates"),
        (
            json!({"pattern": "123*", "mode": "exact", "reason": "r"}),
            "mode wildcard",
        ),
        (
            json!({"pattern": "123ABC02", "mode": "regex", "reason": "r"}),
            "`mode`",
        ),
        (
            json!({"pattern": "123ABC02", "mode": "fuzzy", "max_distance": 3, "reason": "r"}),
            "`max_distance`",
        ),
        (
            json!({"pattern": "123ABC02", "max_distance": 1, "reason": "r"}),
            "`max_distance` applies only to mode fuzzy",
        ),
        (
            json!({"pattern": "123ABC02", "reason": "r", "priority": "urgent"}),
            "`priority`",
        ),
        (
            json!({"pattern": "123ABC02", "reason": "r", "expires": "tomorrow"}),
            "`expires`",
        ),
        (
            json!({"pattern": "123ABC02", "reason": "r", "expires": "2020-01-01T00:00:00Z"}),
            "in the past",
        ),
        (
            json!({"pattern": "123ABC02", "reason": "r", "plate": "x"}),
            "unknown field `plate`",
        ),
        (json!({"pattern": 123, "reason": "r"}), "field `pattern`"),
    ];
    for (body, needle) in cases {
        let a = f.post_json("/api/v1/watchlist", &f.operator, &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(a.error().contains(needle), "{body}: {}", a.error());
    }
    let a = f
        .call(
            Method::POST,
            "/api/v1/watchlist",
            Some(&f.operator),
            &[],
            "{",
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    // Roles: operators and admins only.
    let a = f
        .post_json(
            "/api/v1/watchlist",
            &f.investigator,
            &json!({"pattern": "1", "reason": "r"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        f.get("/api/v1/watchlist", &f.edge).await.status,
        StatusCode::FORBIDDEN
    );

    let a = f.get("/api/v1/watchlist", &f.admin).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["entries"].as_array().unwrap().len(), 4);

    let id = w["id"].as_i64().unwrap();
    let uri = format!("/api/v1/watchlist/{id}?reason=case%20closed");
    let a = f
        .call(Method::DELETE, &uri, Some(&f.operator), &[], Body::empty())
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    assert_eq!(a.json()["removed_by"], "operator-1");
    assert_eq!(a.json()["active"], false);
    let a = f
        .call(Method::DELETE, &uri, Some(&f.operator), &[], Body::empty())
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f
        .call(
            Method::DELETE,
            "/api/v1/watchlist/abc",
            Some(&f.operator),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("\"abc\""), "{}", a.error());
    let listed = f.get("/api/v1/watchlist", &f.operator).await.json();
    assert_eq!(listed["entries"].as_array().unwrap().len(), 3);
    let all = f
        .get("/api/v1/watchlist?include_removed=true", &f.operator)
        .await
        .json();
    assert_eq!(all["entries"].as_array().unwrap().len(), 4);

    // Every change is in the audit log, with its reason.
    let records = f.get("/api/v1/audit?limit=1000", &f.admin).await.json()["records"]
        .as_array()
        .unwrap()
        .clone();
    let details: Vec<&str> = records
        .iter()
        .filter_map(|r| r["detail"].as_str())
        .collect();
    assert!(
        details.contains(&"watchlist 1 added: exact 123ABC02 (high)"),
        "{details:?}"
    );
    assert!(
        details.contains(&format!("watchlist {id} removed: wildcard 777*17").as_str()),
        "{details:?}"
    );
    let added = records
        .iter()
        .find(|r| r["detail"] == "watchlist 1 added: exact 123ABC02 (high)")
        .unwrap();
    assert_eq!(added["reason"], "case 12: stolen car");
    assert_eq!(added["who"], "operator-1");
}

async fn hotlisted_reads_and_pillar_alarms_are_alerts_on_the_live_stream(backend: Backend) {
    let f = Fixture::on(backend);
    f.cameras(ALMATY).await;
    let mut live = f
        .stream("/api/v1/alerts/stream", &f.operator, &[])
        .await
        .unwrap_or_else(|a| panic!("{}", a.error()));

    let exact = watch(
        &f,
        json!({"pattern": "123ABC02", "reason": "case 12", "priority": "high"}),
    )
    .await;
    let wildcard = watch(&f, json!({"pattern": "777*17", "reason": "case 13"})).await;
    let fuzzy = watch(
        &f,
        json!({"pattern": "555XYZ05", "mode": "fuzzy", "max_distance": 1, "reason": "case 14"}),
    )
    .await;
    // An entry that has expired never fires. (Store calls block: off the
    // async thread.)
    let store = f.state.store().clone();
    tokio::task::spawn_blocking(move || {
        store.add_watch(&NewWatch {
            pattern: "999ZZZ01".into(),
            mode: WatchMode::Exact,
            max_distance: None,
            reason: "old case".into(),
            priority: Priority::Critical,
            expires_ms: Some(1),
            created_ms: 0,
            created_by: "operator-1".into(),
        })
    })
    .await
    .unwrap()
    .unwrap();

    // Not hotlisted, then the hotlisted read (with a snapshot), then the
    // same read again, then the plate of the expired entry.
    assert_eq!(
        f.post_events(&[read(1, "cam-a", "321CBA02")]).await.status,
        StatusCode::OK
    );
    let mut hot = read(2, "cam-a", "123ABC02");
    hot["snapshot"] = json!(base64::engine::general_purpose::STANDARD.encode(JPEG));
    let a = f.post_events(&[hot.clone()]).await;
    assert_eq!(a.json()["accepted"], 1);
    let a = f
        .post_events(&[hot.clone(), read(3, "cam-b", "999ZZZ01")])
        .await;
    assert_eq!(
        (
            a.json()["accepted"].as_u64(),
            a.json()["duplicates"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // A wildcard hit, a fuzzy hit (Z read as 2) and a pillar alarm.
    f.post_events(&[read(4, "cam-b", "777KXM17"), read(5, "cam-c", "555XY205")])
        .await;
    f.post_events(&[alarm(6, T0 + 6000, "pillar-1")]).await;

    let first = live.next().await;
    assert_eq!(first.event, "alert");
    let a = first.json();
    assert_eq!(first.id, a["id"].to_string());
    assert_eq!(a["kind"], "watchlist");
    assert_eq!(a["state"], "new");
    assert_eq!(a["priority"], "high");
    assert_eq!(a["plate"], "123ABC02");
    assert_eq!(a["event_id"], id_of(&hot));
    assert_eq!(a["event_kind"], "plate_read");
    assert_eq!(a["camera_id"], "cam-a");
    assert_eq!(a["camera"]["name"], "cam-a crossing");
    assert_eq!(a["camera"]["lat"], 43.2389);
    assert_eq!(a["ts"], rfc3339(T0 + 2000));
    assert_eq!(a["watchlist"]["id"], exact["id"]);
    assert_eq!(a["watchlist"]["reason"], "case 12");
    assert_eq!(
        a["snapshot_url"],
        format!("/api/v1/events/{}/snapshot", id_of(&hot))
    );
    // Nothing for the duplicate or the expired entry: the wildcard hit is next.
    let b = live.next().await.json();
    assert_eq!(
        (&b["plate"], &b["watchlist"]["id"]),
        (&json!("777KXM17"), &wildcard["id"])
    );
    assert_eq!(b["watchlist"]["mode"], "wildcard");
    let c = live.next().await.json();
    assert_eq!(
        (&c["plate"], &c["watchlist"]["id"]),
        (&json!("555XY205"), &fuzzy["id"])
    );
    assert_eq!(c["distance"], 0.5);
    assert_eq!(c["priority"], "normal");
    let d = live.next().await.json();
    assert_eq!(d["kind"], "panic_alarm");
    assert_eq!(d["event_kind"], "panic_alarm");
    assert_eq!(d["priority"], "critical");
    assert_eq!(d["camera_id"], "pillar-1");
    assert_eq!(d["plate"], Value::Null);
    assert_eq!(d["camera"]["kind"], "pillar");
    let nearby: Vec<&str> = d["nearby_cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        nearby,
        ["cam-a", "cam-b"],
        "nearest first, Astana not listed"
    );
    let ids: Vec<i64> = [&a, &b, &c, &d]
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // The alarm's clip, delivered later, shows on the stored alert.
    let clip = b"\x00\x00\x00\x18ftypmp42 fake clip".to_vec();
    let put = f
        .call(
            Method::PUT,
            &format!("/api/v1/events/{}/clip", d["event_id"].as_str().unwrap()),
            Some(&f.edge),
            &[("content-type", "video/mp4")],
            clip,
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let stored = f
        .get(&format!("/api/v1/alerts/{}", ids[3]), &f.operator)
        .await
        .json();
    assert_eq!(
        stored["clip_url"],
        format!("/api/v1/events/{}/clip", d["event_id"].as_str().unwrap())
    );

    // Removing an entry stops it: the next hit comes from the alarm after.
    let uri = format!("/api/v1/watchlist/{}", exact["id"]);
    let a = f
        .call(Method::DELETE, &uri, Some(&f.admin), &[], Body::empty())
        .await;
    assert_eq!(a.status, StatusCode::OK);
    f.post_events(&[
        read(7, "cam-a", "123ABC02"),
        alarm(8, T0 + 8000, "pillar-1"),
    ])
    .await;
    let e = live.next().await.json();
    assert_eq!(e["kind"], "panic_alarm");

    let metrics = f
        .call(Method::GET, "/metrics", None, &[], Body::empty())
        .await;
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(text.contains("safecity_alerts_raised_total 5"), "{text}");
}

async fn a_reconnecting_board_replays_what_it_missed(backend: Backend) {
    let f = Fixture::on(backend);
    watch(&f, json!({"pattern": "123ABC02", "reason": "case 1"})).await;
    let batch: Vec<Value> = (1..=5).map(|n| read(n, "cam-a", "123ABC02")).collect();
    f.post_events(&batch).await;

    // Seen up to alert 2: the rest comes first, then live ones.
    let mut s = f
        .stream(
            "/api/v1/alerts/stream",
            &f.operator,
            &[("last-event-id", "2")],
        )
        .await
        .unwrap_or_else(|a| panic!("{}", a.error()));
    for want in ["3", "4", "5"] {
        assert_eq!(s.next().await.id, want);
    }
    f.post_events(&[read(6, "cam-b", "123ABC02")]).await;
    let ev = s.next().await;
    assert_eq!(ev.id, "6");
    assert_eq!(ev.json()["camera_id"], "cam-b");

    // `since=0` replays everything; `since` wins over the header.
    let mut all = f
        .stream(
            "/api/v1/alerts/stream?since=0",
            &f.admin,
            &[("last-event-id", "5")],
        )
        .await
        .unwrap_or_else(|a| panic!("{}", a.error()));
    for want in 1..=6 {
        assert_eq!(all.next().await.id, want.to_string());
    }

    for (uri, headers, needle) in [
        (
            "/api/v1/alerts/stream",
            vec![("last-event-id", "x")],
            "Last-Event-ID",
        ),
        ("/api/v1/alerts/stream?since=abc", vec![], "`since`"),
        ("/api/v1/alerts/stream?from=1", vec![], "`from`"),
    ] {
        let a = f.stream(uri, &f.operator, &headers).await.err().unwrap();
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(a.error().contains(needle), "{}", a.error());
    }
    let a = f
        .stream("/api/v1/alerts/stream", &f.investigator, &[])
        .await
        .err()
        .unwrap();
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

async fn alerts_move_from_new_to_acknowledged_to_closed_and_each_change_is_audited(
    backend: Backend,
) {
    let f = Fixture::on(backend);
    watch(&f, json!({"pattern": "123ABC02", "reason": "case 1"})).await;
    f.post_events(&[read(1, "cam-a", "123ABC02"), read(2, "cam-a", "123ABC02")])
        .await;
    f.post_events(&[alarm(3, T0 + 3000, "pillar-1")]).await;

    let a = f.get("/api/v1/alerts", &f.operator).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    let ids: Vec<i64> = a.json()["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2, 1], "newest first");

    let empty = |uri: &str| {
        let f = &f;
        let uri = uri.to_owned();
        async move {
            f.call(Method::POST, &uri, Some(&f.operator), &[], Body::empty())
                .await
        }
    };
    // new -> acknowledged, with a note.
    let a = f
        .post_json(
            "/api/v1/alerts/1/ack",
            &f.operator,
            &json!({"note": "unit 7 sent"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    assert_eq!(a.json()["state"], "acknowledged");
    let a = empty("/api/v1/alerts/1/ack").await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.error().contains("acknowledged already"), "{}", a.error());
    // acknowledged -> closed, then nothing more.
    let a = empty("/api/v1/alerts/1/close").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    assert_eq!(a.json()["state"], "closed");
    for verb in ["ack", "close"] {
        let a = empty(&format!("/api/v1/alerts/1/{verb}")).await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{verb}");
        assert!(a.error().contains("closed"), "{}", a.error());
    }
    // new -> closed directly.
    let a = f
        .post_json(
            "/api/v1/alerts/2/close",
            &f.admin,
            &json!({"note": "false read"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());

    // Wrong role, unknown alert, bad id, bad body.
    let a = f
        .call(
            Method::POST,
            "/api/v1/alerts/3/ack",
            Some(&f.investigator),
            &[],
            Body::empty(),
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(
        a.error().contains("needs role operator or admin"),
        "{}",
        a.error()
    );
    assert_eq!(
        empty("/api/v1/alerts/99/ack").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        empty("/api/v1/alerts/x/ack").await.status,
        StatusCode::BAD_REQUEST
    );
    let a = f
        .post_json(
            "/api/v1/alerts/3/ack",
            &f.operator,
            &json!({"comment": "x"}),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(
        a.error().contains("unknown field `comment`"),
        "{}",
        a.error()
    );
    assert_eq!(
        f.get("/api/v1/alerts/3", &f.operator).await.json()["state"],
        "new"
    );

    // Filters and pages.
    let a = f.get("/api/v1/alerts?state=new", &f.operator).await.json();
    assert_eq!(a["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(a["alerts"][0]["kind"], "panic_alarm");
    let a = f
        .get("/api/v1/alerts?state=closed&limit=1", &f.operator)
        .await
        .json();
    assert_eq!(a["alerts"][0]["id"], 2);
    let cursor = a["next_cursor"].as_str().unwrap().to_owned();
    let a = f
        .get(
            &format!("/api/v1/alerts?state=closed&limit=1&cursor={cursor}"),
            &f.operator,
        )
        .await
        .json();
    assert_eq!(a["alerts"][0]["id"], 1);
    let a = f.get("/api/v1/alerts?state=open", &f.operator).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("`state`"));

    // The alert's history: who, when, from, to, note.
    let a = f.get("/api/v1/alerts/1", &f.operator).await.json();
    let history = a["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["who"], "operator-1");
    assert_eq!(
        (&history[0]["from"], &history[0]["to"]),
        (&json!("new"), &json!("acknowledged"))
    );
    assert_eq!(history[0]["note"], "unit 7 sent");
    assert!(history[0]["at"].as_str().unwrap().starts_with("20"));
    assert_eq!(
        (&history[1]["from"], &history[1]["to"]),
        (&json!("acknowledged"), &json!("closed"))
    );
    assert_eq!(history[1]["note"], Value::Null);

    // And the audit log, refused changes not included.
    let records = f.get("/api/v1/audit?limit=1000", &f.admin).await.json()["records"]
        .as_array()
        .unwrap()
        .clone();
    let changes: Vec<(String, String, Value)> = records
        .iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("alert "))
        })
        .map(|r| {
            (
                r["who"].as_str().unwrap().to_owned(),
                r["detail"].as_str().unwrap().to_owned(),
                r["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "admin-1".into(),
                "alert 2: new -> closed".into(),
                json!("false read")
            ),
            (
                "operator-1".into(),
                "alert 1: acknowledged -> closed".into(),
                Value::Null
            ),
            (
                "operator-1".into(),
                "alert 1: new -> acknowledged".into(),
                json!("unit 7 sent")
            ),
        ]
    );
}

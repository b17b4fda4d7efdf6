//! `GET /api/v1/plates/{plate}/track`: a plate across the city.

use axum::http::StatusCode;
use serde_json::Value;

use crate::support::*;

on_both_backends!(a_track_is_in_time_order_with_positions_and_flags_an_impossible_hop,);

const MIN: u64 = 60_000;

async fn a_track_is_in_time_order_with_positions_and_flags_an_impossible_hop(backend: Backend) {
    let f = Fixture::on(backend);
    // Two Almaty cameras 300 m apart, one in Astana, about 970 km away.
    f.cameras(&[
        ("cam-a", "camera", 43.2389, 76.8897),
        ("cam-b", "camera", 43.2389, 76.8934),
        ("cam-c", "camera", 51.1694, 71.4491),
    ])
    .await;
    // Sent out of order, with other plates between and an unregistered camera.
    let s = |n: u128, dt: u64, camera: &str, plate: &str| {
        event(n, T0 + dt, camera, Some(plate), "car", "white")
    };
    let sightings = [
        s(4, 12 * MIN, "cam-c", "123ABC02"),
        s(1, 0, "cam-a", "123ABC02"),
        s(9, MIN / 2, "cam-a", "777KXM17"),
        s(2, MIN, "cam-b", "123ABC02"),
        s(5, 5 * 60 * MIN, "cam-x", "123ABC02"),
        s(3, 2 * MIN, "cam-a", "123ABC02"),
    ];
    assert_eq!(f.post_events(&sightings).await.status, StatusCode::OK);
    // Outside the window.
    f.post_events(&[s(6, 30 * 60 * MIN, "cam-a", "123ABC02")])
        .await;

    let window = format!(
        "from={}&to={}",
        rfc3339(T0),
        rfc3339(T0 + 24 * 60 * MIN - 1)
    );
    let a = f
        .get(
            &format!("/api/v1/plates/123%20ABC%2002/track?{window}&reason=case%2042"),
            &f.investigator,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    let t = a.json();
    assert_eq!(t["plate"], "123ABC02");
    let got: Vec<(&str, &str)> = t["sightings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["camera_id"].as_str().unwrap(), s["ts"].as_str().unwrap()))
        .collect();
    let want = [
        ("cam-a", rfc3339(T0)),
        ("cam-b", rfc3339(T0 + MIN)),
        ("cam-a", rfc3339(T0 + 2 * MIN)),
        ("cam-c", rfc3339(T0 + 12 * MIN)),
        ("cam-x", rfc3339(T0 + 5 * 60 * MIN)),
    ];
    let want: Vec<(&str, &str)> = want.iter().map(|(c, ts)| (*c, ts.as_str())).collect();
    assert_eq!(got, want);
    let first = &t["sightings"][0];
    assert_eq!(first["camera_name"], "cam-a crossing");
    assert_eq!(
        (first["lat"].as_f64(), first["lon"].as_f64()),
        (Some(43.2389), Some(76.8897))
    );
    assert_eq!(first["event_id"], id_of(&sightings[1]));
    let unregistered = &t["sightings"][4];
    assert_eq!(
        (&unregistered["lat"], &unregistered["camera_name"]),
        (&Value::Null, &Value::Null)
    );

    let hops = t["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 4);
    let distance = |i: usize| hops[i]["distance_m"].as_f64();
    // 300 m in a minute: 18 km/h.
    assert!((distance(0).unwrap() - 300.0).abs() < 10.0, "{}", hops[0]);
    assert_eq!(hops[0]["elapsed_s"], 60.0);
    assert!((hops[0]["speed_kmh"].as_f64().unwrap() - 18.0).abs() < 1.0);
    assert_eq!(hops[0]["impossible"], false);
    assert_eq!(hops[1]["impossible"], false);
    // Almaty to Astana in ten minutes: a cloned plate.
    assert!(distance(2).unwrap() > 900_000.0, "{}", hops[2]);
    assert_eq!(hops[2]["impossible"], true);
    assert!(hops[2]["speed_kmh"].as_f64().unwrap() > 5000.0);
    assert_eq!(
        (&hops[2]["from_camera"], &hops[2]["to_camera"]),
        (&"cam-a".into(), &"cam-c".into())
    );
    // No position, no verdict.
    assert_eq!((distance(3), &hops[3]["impossible"]), (None, &false.into()));
    assert_eq!(t["impossible_hops"], 1);
    assert_eq!(t["limits"]["max_speed_kmh"], 250.0);
    assert_eq!(t["truncated"], false);

    // Audited with its reason and count.
    let audit = f.get("/api/v1/audit", &f.admin).await.json();
    let r = &audit["records"][0];
    assert_eq!(r["route"], "GET /api/v1/plates/123ABC02/track");
    assert_eq!(r["reason"], "case 42");
    assert_eq!(r["results"], 5);

    // Bad input, and roles.
    let cases = [
        (
            format!("/api/v1/plates/12%25AB/track?{window}&reason=x"),
            "\"12%AB\"",
        ),
        (
            format!("/api/v1/plates/123*/track?{window}&reason=x"),
            "use /api/v1/search",
        ),
        (
            format!("/api/v1/plates/123ABC02/track?{window}"),
            "reason is required",
        ),
        (
            format!("/api/v1/plates/123ABC02/track?to={}&reason=x", rfc3339(T0)),
            "`from` is required",
        ),
        (
            format!(
                "/api/v1/plates/123ABC02/track?from=yesterday&to={}&reason=x",
                rfc3339(T0)
            ),
            "`from`",
        ),
        (
            format!(
                "/api/v1/plates/123ABC02/track?from={}&to={}&reason=x",
                rfc3339(T0 + 1),
                rfc3339(T0)
            ),
            "swap",
        ),
        (
            format!("/api/v1/plates/123ABC02/track?{window}&reason=x&camera=a"),
            "`camera`",
        ),
    ];
    for (uri, needle) in cases {
        let a = f.get(&uri, &f.investigator).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(a.error().contains(needle), "{uri}: {}", a.error());
    }
    let uri = format!("/api/v1/plates/123ABC02/track?{window}&reason=x");
    assert_eq!(f.get(&uri, &f.operator).await.status, StatusCode::FORBIDDEN);
    assert_eq!(f.get(&uri, &f.admin).await.status, StatusCode::OK);
    let none = f
        .get(&uri.replace("123ABC02", "000AAA01"), &f.investigator)
        .await
        .json();
    assert_eq!(none["sightings"].as_array().unwrap().len(), 0);
    assert_eq!(none["hops"].as_array().unwrap().len(), 0);
}

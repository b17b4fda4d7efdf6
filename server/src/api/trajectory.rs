//! `GET /api/v1/plates/{plate}/track`: a plate's sightings in time order,
//! with camera positions and the hops between them (see [`crate::trajectory`]).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::Method;
use axum::Json;
use safecity_core::normalize_plate;
use serde_json::{json, Value};

use super::{audit_call, blocking, rfc3339, ApiError, ApiResult, AppState, Caller, Params};
use crate::auth::Role;
use crate::trajectory::{hop, CLOCK_SLACK_S, DISTANCE_SLACK_M, MAX_SPEED_KMH};

/// Most sightings in one answer; a longer track is cut and says so.
const MAX_SIGHTINGS: usize = 10_000;

pub(super) async fn track(
    State(state): State<AppState>,
    caller: Caller,
    Path(plate): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Investigator, Role::Admin], "follow a plate's track")?;
    let params = Params::parse(raw.as_deref(), &["from", "to", "reason"])?;
    let reason = params.reason()?;
    let canonical = normalize_plate(&plate).map_err(|e| {
        ApiError::bad_request(format!(
            "plate in the path: {e}; write it like 123ABC02 or 123 ABC 02 (no wildcards: use /api/v1/search for patterns)"
        ))
    })?;
    let required = |name: &str, v: Option<i64>| {
        v.ok_or_else(|| {
            ApiError::bad_request(format!(
                "`{name}` is required: give the time window as RFC 3339, e.g. from=2026-11-22T00:00:00Z&to=2026-11-23T00:00:00Z"
            ))
        })
    };
    let from_ms = required("from", params.time("from")?)?;
    let to_ms = required("to", params.time("to")?)?;
    if from_ms > to_ms {
        return Err(ApiError::bad_request("`from` is after `to`; swap them"));
    }
    let store = state.inner.store.clone();
    let p = canonical.clone();
    let (mut sightings, cameras) = blocking("reading a track", move || {
        let sightings = store.track(&p, from_ms, to_ms, MAX_SIGHTINGS + 1)?;
        Ok((sightings, store.cameras()?))
    })
    .await?;
    let truncated = sightings.len() > MAX_SIGHTINGS;
    sightings.truncate(MAX_SIGHTINGS);
    audit_call(
        &state,
        &caller,
        &Method::GET,
        &format!("/api/v1/plates/{canonical}/track"),
        raw.as_deref(),
        Some(reason),
        Some(sightings.len() as u64),
    )
    .await?;

    let by_id: HashMap<&str, &crate::model::Camera> =
        cameras.iter().map(|c| (c.id.as_str(), c)).collect();
    let camera = |id: &str| by_id.get(id).copied();
    let hops: Vec<Value> = sightings
        .windows(2)
        .map(|w| {
            let (a, b) = (&w[0], &w[1]);
            let h = hop(a, camera(&a.camera_id), b, camera(&b.camera_id));
            json!({
                "from_event": a.event_id,
                "to_event": b.event_id,
                "from_camera": a.camera_id,
                "to_camera": b.camera_id,
                "distance_m": h.distance_m.map(|d| d.round()),
                "elapsed_s": h.elapsed_s,
                "speed_kmh": h.speed_kmh.map(|v| (v * 10.0).round() / 10.0),
                "impossible": h.impossible,
            })
        })
        .collect();
    let impossible = hops.iter().filter(|h| h["impossible"] == true).count();
    let sightings: Vec<Value> = sightings
        .iter()
        .map(|s| {
            let c = camera(&s.camera_id);
            json!({
                "event_id": s.event_id,
                "ts": rfc3339(s.ts_ms),
                "camera_id": s.camera_id,
                "camera_name": c.map(|c| c.name.as_str()),
                "lat": c.map(|c| c.lat),
                "lon": c.map(|c| c.lon),
                "confidence": s.confidence,
                "snapshot_url": s.snapshot.as_ref().map(|_| format!("/api/v1/events/{}/snapshot", s.event_id)),
                "clip_url": s.clip.as_ref().map(|_| format!("/api/v1/events/{}/clip", s.event_id)),
            })
        })
        .collect();
    Ok(Json(json!({
        "plate": canonical,
        "from": rfc3339(from_ms),
        "to": rfc3339(to_ms),
        "sightings": sightings,
        "hops": hops,
        "impossible_hops": impossible,
        "truncated": truncated,
        "limits": {
            "max_speed_kmh": MAX_SPEED_KMH,
            "clock_slack_s": CLOCK_SLACK_S,
            "distance_slack_m": DISTANCE_SLACK_M,
        },
    })))
}

//! Who am I, the audit log, health and metrics.

use super::*;

/// `GET /me`: who the token belongs to and its role, for clients that
/// show each role its own views.
pub(super) async fn me(caller: Caller) -> Json<Value> {
    Json(json!({ "name": caller.name, "role": caller.role.as_str() }))
}

pub(super) async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Admin], "read the audit log")?;
    let params = Params::parse(raw.as_deref(), &["limit", "before"])?;
    let limit = match params.one("limit")? {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("`limit`: {v:?} must be from 1 to 1000"))
            })?,
    };
    let before = params
        .one("before")?
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("`before`: {v:?} must be a record's `seq`"))
            })
        })
        .transpose()?;
    let store = state.inner.store.clone();
    let records = blocking("reading the audit log", move || store.audit(before, limit)).await?;
    let next_before = (records.len() == limit)
        .then(|| records.last().map(|r| r.seq))
        .flatten();
    let records: Vec<Value> = records
        .into_iter()
        .map(|r| {
            json!({
                "seq": r.seq,
                "at": rfc3339(r.entry.at_ms),
                "who": r.entry.who,
                "role": r.entry.role,
                "route": r.entry.route,
                "query": r.entry.query,
                "reason": r.entry.reason,
                "results": r.entry.results,
                "detail": r.entry.detail,
            })
        })
        .collect();
    Ok(Json(
        json!({ "records": records, "next_before": next_before }),
    ))
}

/// The database and the data disk, checked off the async threads.
pub(super) async fn health_of(state: &AppState) -> crate::health::Health {
    let (store, blobs) = (state.inner.store.clone(), state.inner.blobs.clone());
    tokio::task::spawn_blocking(move || crate::health::check(store.as_ref(), blobs.dir()))
        .await
        .unwrap_or_else(|e| crate::health::Health {
            down: vec![format!("the health check failed: {e}")],
            ..Default::default()
        })
}

/// `ok`, or the JSON of a degraded (200) or down (503) server with its
/// reasons, so a balancer or an operator sees a server that cannot store.
pub(super) async fn healthz(State(state): State<AppState>) -> Response {
    let health = health_of(&state).await;
    let (status, word, reasons) = match health.level() {
        0 => return (StatusCode::OK, "ok\n").into_response(),
        1 => (StatusCode::OK, "degraded", &health.degraded),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "down", &health.down),
    };
    tracing::warn!("health check: {word}: {}", reasons.join("; "));
    let message = format!("{word}: {}", reasons.join("; "));
    let mut body = json!({ "status": word, "reasons": reasons });
    if status != StatusCode::OK {
        body["error"] = json!(message);
    }
    (status, Json(body)).into_response()
}

pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let health = health_of(&state).await;
    let mut text = state.inner.metrics.render();
    text.push_str(&format!(
        "# HELP safecity_health 0 ok, 1 degraded, 2 down, as /healthz says.\n\
         # TYPE safecity_health gauge\nsafecity_health {}\n",
        health.level()
    ));
    if let Some(free) = health.disk_free_bytes {
        text.push_str(&format!(
            "# HELP safecity_disk_free_bytes Free bytes on the disk of the data directory.\n\
             # TYPE safecity_disk_free_bytes gauge\nsafecity_disk_free_bytes {free}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

//! The watchlist, alerts and their live stream (operator and admin).
//!
//! - `GET/POST /api/v1/watchlist`, `DELETE /api/v1/watchlist/{id}`;
//! - `GET /api/v1/alerts` (`state`, `limit`, `cursor`), `GET
//!   /api/v1/alerts/{id}` (with its state changes),
//!   `POST /api/v1/alerts/{id}/ack` and `.../close` (body optional
//!   `{"note": "..."}`);
//! - `GET /api/v1/alerts/stream`: server-sent events, one `alert` event per
//!   new alert, its `id` the alert's id. With `Last-Event-ID` (or
//!   `?since=ID`) the stream first replays the stored alerts after that id,
//!   so a board that reconnects misses nothing. A comment line every
//!   [`KEEP_ALIVE`] keeps proxies from closing a quiet stream.
//!
//! Every call is audited; a state change records who, when, from and to
//! which state, and the note.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use safecity_core::{normalize_plate, PlatePattern};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;

use super::{
    append_audit, audit_call, audit_entry, blocking, check_content_type, now_ms, read_body,
    rfc3339, ApiError, ApiResult, AppState, Caller, Params,
};
use crate::auth::Role;
use crate::model::{haversine_m, Camera, CameraKind};
use crate::model::{
    Alert, AlertKind, AlertQuery, AlertState, NewWatch, Priority, StateChange, WatchEntry,
    WatchMode,
};

/// Alerts buffered for a live stream that reads slowly; one that falls
/// further behind catches up from the store.
pub(super) const LIVE_BUFFER: usize = 1024;
/// Alerts read from the store per replay step.
const REPLAY_PAGE: usize = 500;
/// Interval of the stream's keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Cameras listed with a pillar alarm: the nearest, within this radius.
const NEARBY_M: f64 = 1000.0;
const NEARBY_MAX: usize = 5;
/// Largest watchlist entry or state-change body.
const MAX_BODY: usize = 64 * 1024;
/// Fuzzy entries' distance bounds and default.
const MIN_FUZZY: f32 = 1.0;
const MAX_FUZZY: f32 = 2.0;

/// An alert as sent on the live streams and to webhooks.
#[derive(Debug)]
pub(crate) struct LiveAlert {
    pub id: i64,
    /// The alert's JSON text.
    pub json: String,
}

const OPERATORS: &[Role] = &[Role::Operator, Role::Admin];

/// An alert as the API shows it.
pub(crate) fn alert_json(a: &Alert, cameras: &[Camera]) -> Value {
    let camera = cameras.iter().find(|c| c.id == a.camera_id);
    let mut v = json!({
        "id": a.id,
        "kind": a.kind.as_str(),
        "state": a.state.as_str(),
        "priority": a.priority.as_str(),
        "event_id": a.event_id,
        "event_kind": a.kind.event_kind(),
        "camera_id": a.camera_id,
        "camera": camera.map(|c| json!({
            "name": c.name, "kind": c.kind.as_str(), "lat": c.lat, "lon": c.lon,
        })),
        "plate": a.plate,
        "ts": rfc3339(a.ts_ms),
        "created": rfc3339(a.created_ms),
        "updated": rfc3339(a.updated_ms),
        "watchlist": a.watch.as_ref().map(|w| json!({
            "id": w.id, "pattern": w.pattern, "mode": w.mode.as_str(), "reason": w.reason,
        })),
        "distance": a.distance,
        "snapshot_url": a.snapshot.as_ref().map(|_| format!("/api/v1/events/{}/snapshot", a.event_id)),
        "clip_url": a.clip.as_ref().map(|_| format!("/api/v1/events/{}/clip", a.event_id)),
    });
    if a.kind == AlertKind::PanicAlarm {
        let mut nearby: Vec<(f64, &Camera)> = camera
            .map(|p| {
                cameras
                    .iter()
                    .filter(|c| c.kind == CameraKind::Camera && c.id != p.id)
                    .map(|c| (haversine_m(p.lat, p.lon, c.lat, c.lon), c))
                    .filter(|(d, _)| *d <= NEARBY_M)
                    .collect()
            })
            .unwrap_or_default();
        nearby.sort_by(|x, y| x.0.total_cmp(&y.0));
        nearby.truncate(NEARBY_MAX);
        v["nearby_cameras"] = nearby
            .into_iter()
            .map(|(d, c)| json!({"id": c.id, "name": c.name, "distance_m": d.round()}))
            .collect();
    }
    v
}

fn watch_json(w: &WatchEntry) -> Value {
    let e = &w.entry;
    json!({
        "id": w.id,
        "pattern": e.pattern,
        "mode": e.mode.as_str(),
        "max_distance": e.max_distance,
        "reason": e.reason,
        "priority": e.priority.as_str(),
        "expires": e.expires_ms.map(rfc3339),
        "active": w.is_active(now_ms()),
        "created": rfc3339(e.created_ms),
        "created_by": e.created_by,
        "removed": w.removed_ms.map(rfc3339),
        "removed_by": w.removed_by,
    })
}

/// Parses a JSON body, naming the field that is wrong.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> ApiResult<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        if e.inner().is_syntax() || e.inner().is_eof() || path == "." {
            ApiError::bad_request(format!("{what}: {}", e.inner()))
        } else {
            ApiError::bad_request(format!("{what}, field `{path}`: {}", e.inner()))
        }
    })
}

/// The body of `POST /watchlist`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    pattern: Option<String>,
    mode: Option<String>,
    max_distance: Option<f32>,
    reason: Option<String>,
    priority: Option<String>,
    expires: Option<String>,
}

/// Checks a watchlist body into an entry to store.
fn new_watch(b: WatchBody, caller: &Caller, now: i64) -> ApiResult<NewWatch> {
    let text = b
        .pattern
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("`pattern` is required: a plate (123ABC02), a pattern with ? and * (123?BC*), or a plate to match fuzzily")
        })?;
    let has_wildcard = text.contains(['*', '?']);
    let mode = match b.mode.as_deref() {
        None => {
            if has_wildcard {
                WatchMode::Wildcard
            } else {
                WatchMode::Exact
            }
        }
        Some(m) => WatchMode::parse(m).ok_or_else(|| {
            ApiError::bad_request(format!("`mode`: {m:?} is not exact, wildcard or fuzzy"))
        })?,
    };
    if b.max_distance.is_some() && mode != WatchMode::Fuzzy {
        return Err(ApiError::bad_request(
            "`max_distance` applies only to mode fuzzy",
        ));
    }
    let canonical = |text: &str| {
        if has_wildcard {
            return Err(ApiError::bad_request(format!(
                "`pattern`: {text:?} has wildcards; use mode wildcard"
            )));
        }
        normalize_plate(text).map_err(|e| ApiError::bad_request(format!("`pattern`: {e}")))
    };
    let (pattern, mode, max_distance) = match mode {
        WatchMode::Exact => (canonical(text)?, WatchMode::Exact, None),
        WatchMode::Wildcard => {
            let p = PlatePattern::parse(text)
                .map_err(|e| ApiError::bad_request(format!("`pattern`: {e}")))?;
            let literal = p
                .as_str()
                .chars()
                .filter(|c| !matches!(c, '?' | '*'))
                .count();
            if p.is_exact() {
                (p.as_str().to_owned(), WatchMode::Exact, None)
            } else if literal < 3 {
                return Err(ApiError::bad_request(format!(
                    "`pattern`: {text:?} would match too many plates; give at least 3 letters or digits"
                )));
            } else {
                (p.as_str().to_owned(), WatchMode::Wildcard, None)
            }
        }
        WatchMode::Fuzzy => {
            let plate = canonical(text)?;
            if plate.len() < 4 {
                return Err(ApiError::bad_request(format!(
                    "`pattern`: {text:?} is too short to match fuzzily; give at least 4 letters or digits"
                )));
            }
            let d = b.max_distance.unwrap_or(MIN_FUZZY);
            if !(MIN_FUZZY..=MAX_FUZZY).contains(&d) {
                return Err(ApiError::bad_request(format!(
                    "`max_distance`: {d} must be from {MIN_FUZZY} to {MAX_FUZZY}"
                )));
            }
            (plate, WatchMode::Fuzzy, Some(d))
        }
    };
    let reason = b
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request("`reason` is required: why the plate is watched (a case or warrant number); it is kept with the entry and in the audit log")
        })?;
    if reason.chars().count() > 1000 {
        return Err(ApiError::bad_request(
            "`reason` is too long: keep it under 1000 characters",
        ));
    }
    let priority = match b.priority.as_deref() {
        None => Priority::Normal,
        Some(p) => Priority::parse(p).ok_or_else(|| {
            ApiError::bad_request(format!(
                "`priority`: {p:?} is not low, normal, high or critical"
            ))
        })?,
    };
    let expires_ms = b
        .expires
        .as_deref()
        .map(|v| {
            let t = OffsetDateTime::parse(v, &Rfc3339).map_err(|e| {
                ApiError::bad_request(format!(
                    "`expires`: {v:?} is not an RFC 3339 time ({e}); write e.g. 2026-12-31T23:59:59Z"
                ))
            })?;
            let ms = (t.unix_timestamp_nanos() / 1_000_000) as i64;
            if ms <= now {
                return Err(ApiError::bad_request(format!(
                    "`expires`: {v} is in the past; give a later time or leave it out"
                )));
            }
            Ok(ms)
        })
        .transpose()?;
    Ok(NewWatch {
        pattern,
        mode,
        max_distance,
        reason: reason.to_owned(),
        priority,
        expires_ms,
        created_ms: now,
        created_by: caller.name.clone(),
    })
}

pub(super) async fn list_watchlist(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "read the watchlist")?;
    let params = Params::parse(raw.as_deref(), &["include_removed"])?;
    let include_removed = match params.one("include_removed")? {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "`include_removed`: {v:?} must be true or false"
            )))
        }
    };
    let store = state.inner.store.clone();
    let entries = blocking("reading the watchlist", move || {
        store.watchlist(include_removed)
    })
    .await?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        "/api/v1/watchlist",
        raw.as_deref(),
        None,
        Some(entries.len() as u64),
    )
    .await?;
    let entries: Vec<Value> = entries.iter().map(watch_json).collect();
    Ok(Json(json!({ "entries": entries })))
}

pub(super) async fn add_watch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require(OPERATORS, "change the watchlist")?;
    check_content_type(&headers, "application/json")?;
    let bytes = read_body(&headers, body, MAX_BODY, "the watchlist entry").await?;
    let b: WatchBody = parse_json(&bytes, "watchlist entry")?;
    let new = new_watch(b, &caller, now_ms())?;
    let store = state.inner.store.clone();
    let entry = blocking("adding to the watchlist", move || store.add_watch(&new)).await?;
    let mut audit = audit_entry(
        &caller,
        &Method::POST,
        "/api/v1/watchlist",
        None,
        Some(entry.entry.reason.clone()),
        None,
    );
    audit.detail = Some(format!(
        "watchlist {} added: {} {} ({})",
        entry.id,
        entry.entry.mode.as_str(),
        entry.entry.pattern,
        entry.entry.priority.as_str()
    ));
    append_audit(&state, audit).await?;
    Ok((StatusCode::CREATED, Json(watch_json(&entry))).into_response())
}

fn parse_id(what: &str, id: &str) -> ApiResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::bad_request(format!("{what} id {id:?} must be a positive number")))
}

pub(super) async fn remove_watch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "change the watchlist")?;
    let params = Params::parse(raw.as_deref(), &["reason"])?;
    let reason = params.one("reason")?.map(str::to_owned);
    let id = parse_id("watchlist", &id)?;
    let store = state.inner.store.clone();
    let who = caller.name.clone();
    let entry = blocking("removing from the watchlist", move || {
        store.remove_watch(id, &who, now_ms())
    })
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "no active watchlist entry {id}; GET /api/v1/watchlist lists them"
        ))
    })?;
    let mut audit = audit_entry(
        &caller,
        &Method::DELETE,
        &format!("/api/v1/watchlist/{id}"),
        raw.as_deref(),
        reason,
        None,
    );
    audit.detail = Some(format!(
        "watchlist {id} removed: {} {}",
        entry.entry.mode.as_str(),
        entry.entry.pattern
    ));
    append_audit(&state, audit).await?;
    Ok(Json(watch_json(&entry)))
}

/// Stored alerts rendered, with the camera registry.
async fn render(state: &AppState, query: AlertQuery) -> ApiResult<Vec<(Alert, Value)>> {
    let store = state.inner.store.clone();
    blocking("reading alerts", move || {
        let alerts = store.alerts(&query)?;
        let cameras = if alerts.is_empty() {
            Vec::new()
        } else {
            store.cameras()?
        };
        Ok(alerts
            .into_iter()
            .map(|a| {
                let v = alert_json(&a, &cameras);
                (a, v)
            })
            .collect())
    })
    .await
}

pub(super) async fn list_alerts(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "read alerts")?;
    let params = Params::parse(raw.as_deref(), &["state", "limit", "cursor"])?;
    let alert_state = params
        .one("state")?
        .map(|s| {
            AlertState::parse(s).ok_or_else(|| {
                ApiError::bad_request(format!("`state`: {s:?} is not new, acknowledged or closed"))
            })
        })
        .transpose()?;
    let limit = match params.one("limit")? {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("`limit`: {v:?} must be from 1 to 500"))
            })?,
    };
    let before = params
        .one("cursor")?
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "`cursor` is not one this server gave; pass `next_cursor` from the previous page as it is",
                )
            })
        })
        .transpose()?;
    let page = render(
        &state,
        AlertQuery {
            state: alert_state,
            before,
            after: None,
            limit,
        },
    )
    .await?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        "/api/v1/alerts",
        raw.as_deref(),
        None,
        Some(page.len() as u64),
    )
    .await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|(a, _)| a.id.to_string()))
        .flatten();
    let alerts: Vec<Value> = page.into_iter().map(|(_, v)| v).collect();
    Ok(Json(json!({ "alerts": alerts, "next_cursor": next })))
}

pub(super) async fn get_alert(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    caller.require(OPERATORS, "read alerts")?;
    let id = parse_id("alert", &id)?;
    let store = state.inner.store.clone();
    let (alert, changes, cameras) = blocking("reading an alert", move || {
        Ok(match store.alert(id)? {
            Some((a, c)) => Some((a, c, store.cameras()?)),
            None => None,
        })
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no alert {id}")))?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        &format!("/api/v1/alerts/{id}"),
        None,
        None,
        Some(1),
    )
    .await?;
    let mut v = alert_json(&alert, &cameras);
    v["history"] = changes
        .iter()
        .map(|c| {
            json!({
                "at": rfc3339(c.at_ms), "who": c.who, "role": c.role,
                "from": c.from.as_str(), "to": c.to.as_str(), "note": c.note,
            })
        })
        .collect();
    Ok(Json(v))
}

/// The optional body of `ack` and `close`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoteBody {
    note: Option<String>,
}

async fn change(
    state: AppState,
    caller: Caller,
    id: String,
    headers: HeaderMap,
    body: Body,
    to: AlertState,
) -> ApiResult<Json<Value>> {
    let (verb, path_verb) = match to {
        AlertState::Closed => ("close", "close"),
        _ => ("acknowledge", "ack"),
    };
    caller.require(OPERATORS, &format!("{verb} alerts"))?;
    let id = parse_id("alert", &id)?;
    check_content_type(&headers, "application/json")?;
    let bytes = read_body(&headers, body, MAX_BODY, "the note").await?;
    let note = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let b: NoteBody = parse_json(&bytes, "the body must be {\"note\": \"...\"} or empty")?;
        b.note
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
    };
    if note.as_ref().is_some_and(|n| n.chars().count() > 2000) {
        return Err(ApiError::bad_request(
            "`note` is too long: keep it under 2000 characters",
        ));
    }
    let audit = audit_entry(
        &caller,
        &Method::POST,
        &format!("/api/v1/alerts/{id}/{path_verb}"),
        None,
        note.clone(),
        None,
    );
    let store = state.inner.store.clone();
    let outcome = blocking("changing an alert", move || {
        let outcome = store.change_alert(id, to, note.as_deref(), &audit)?;
        let cameras = match outcome {
            StateChange::Changed(_) => store.cameras()?,
            _ => Vec::new(),
        };
        Ok((outcome, cameras))
    })
    .await?;
    match outcome {
        (StateChange::Changed(a), cameras) => Ok(Json(alert_json(&a, &cameras))),
        (StateChange::NotFound, _) => Err(ApiError::not_found(format!("no alert {id}"))),
        (StateChange::Refused(current), _) => Err(ApiError::new(
            StatusCode::CONFLICT,
            match (current, to) {
                (AlertState::Closed, _) => {
                    format!("alert {id} is closed already; a closed alert does not change")
                }
                (_, AlertState::Acknowledged) => format!(
                    "alert {id} is {} already; only a new alert can be acknowledged (close it instead)",
                    current.as_str()
                ),
                _ => format!("alert {id} is {}; it cannot become {}", current.as_str(), to.as_str()),
            },
        )),
    }
}

pub(super) async fn ack(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    change(state, caller, id, headers, body, AlertState::Acknowledged).await
}

pub(super) async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    change(state, caller, id, headers, body, AlertState::Closed).await
}

/// One subscriber's position in the alert sequence.
struct Feed {
    state: AppState,
    rx: tokio::sync::broadcast::Receiver<Arc<LiveAlert>>,
    /// Every alert up to this id was sent (or not asked for).
    floor: i64,
    pending: VecDeque<Arc<LiveAlert>>,
    /// Whether stored alerts after `floor` must be read first.
    replay: bool,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Feed)> {
        loop {
            if let Some(a) = self.pending.pop_front() {
                // Alerts are published in id order; a lower id was sent
                // by a replay already.
                if a.id <= self.floor {
                    continue;
                }
                self.floor = a.id;
                let event = Event::default()
                    .event("alert")
                    .id(a.id.to_string())
                    .data(&a.json);
                return Some((Ok(event), self));
            }
            if self.replay {
                let query = AlertQuery {
                    state: None,
                    before: None,
                    after: Some(self.floor),
                    limit: REPLAY_PAGE,
                };
                match render(&self.state, query).await {
                    Ok(page) => {
                        self.replay = page.len() == REPLAY_PAGE;
                        self.pending.extend(page.into_iter().map(|(a, v)| {
                            Arc::new(LiveAlert {
                                id: a.id,
                                json: v.to_string(),
                            })
                        }));
                    }
                    // Logged by `render`; the client reconnects with
                    // Last-Event-ID and misses nothing.
                    Err(_) => return None,
                }
                continue;
            }
            match self.rx.recv().await {
                Ok(a) => self.pending.push_back(a),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(
                        skipped = n,
                        "an alert stream fell behind; catching up from the store"
                    );
                    self.replay = true;
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

pub(super) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    caller.require(OPERATORS, "watch live alerts")?;
    let params = Params::parse(raw.as_deref(), &["since"])?;
    let since = match params.one("since")? {
        Some(v) => Some(v.parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "`since`: {v:?} is not an alert id; give the id of the last alert you saw, or 0 for all"
            ))
        })?),
        None => match headers.get("last-event-id") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|v| v.trim().parse::<i64>().ok())
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            "Last-Event-ID is not an alert id; reconnect without it or with the id of the last alert seen",
                        )
                    })?,
            ),
        },
    };
    // Subscribe before reading the store, so nothing falls in between.
    let rx = state.inner.live.subscribe();
    let state_closing = state.inner.closing.subscribe();
    let floor = match since {
        Some(s) => s.max(0),
        None => {
            let store = state.inner.store.clone();
            blocking("reading alerts", move || {
                store.alerts(&AlertQuery {
                    state: None,
                    before: None,
                    after: None,
                    limit: 1,
                })
            })
            .await?
            .first()
            .map_or(0, |a| a.id)
        }
    };
    audit_call(
        &state,
        &caller,
        &Method::GET,
        "/api/v1/alerts/stream",
        raw.as_deref(),
        None,
        None,
    )
    .await?;
    let feed = Feed {
        state,
        rx,
        floor,
        pending: VecDeque::new(),
        replay: since.is_some(),
    };
    let mut closing = state_closing;
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let events = futures_util::stream::unfold(feed, Feed::next).take_until(closed);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

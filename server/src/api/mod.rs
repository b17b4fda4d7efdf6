//! The HTTP API under `/api/v1`, plus `/healthz` and `/metrics`.
//!
//! Every `/api/v1` call needs `Authorization: Bearer TOKEN`; a missing or
//! unknown token gets 401, a token of the wrong role 403. Errors are JSON
//! `{"error": "..."}` saying what is wrong and what to do; storage failures
//! are logged and answered with a 500 that leaks no internals.
//!
//! Query strings are checked strictly: an unknown parameter is a 400 that
//! names it, like an unknown field in an event.
//!
//! This file holds the routes, the caller's token check, errors and the
//! audit of each call; the handlers are by job: `events` (ingest, clips,
//! snapshots), `search`, `trajectory`, `cameras`, `alerts` (the watchlist,
//! alerts and their live stream) and `ops` (who am I, audit log, health,
//! metrics), over the shared `state`.

mod alerts;
mod cameras;
mod events;
mod login_guard;
mod ops;
mod search;
mod state;
mod trajectory;

use cameras::*;
pub use events::fuzzing;
use events::*;
use ops::*;
use search::*;
pub use state::AppState;

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, Path, RawQuery, Request, State};
use axum::handler::Handler;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::{Json, Router};
use base64::Engine;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use safecity_core::{normalize_plate, Event, EventId, EventKind, PlatePattern};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::{token_hash, Role};
use crate::blobs::BlobStore;
use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::model::Alert;
use crate::model::{
    AuditEntry, Camera, Cursor, Near, NewEvent, PlateQuery, SearchQuery, TokenOwner,
};
use crate::store::Store;
use crate::webhooks::Webhooks;
use safecity_core::clock::now_ms;
use safecity_core::sync::{Locked, ReadWriteLocked};

/// One route: its method, its path template and the handler.
type Route = (Method, &'static str, MethodRouter<AppState>);

/// A route for `handler` on `method` only.
fn at<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a method axum routes on");
    (method, path, on(filter, handler))
}

/// Every route the router serves, one method each. The OpenAPI document
/// (`GET /api/v1/openapi.json`) must describe each of them; a test checks.
fn route_table() -> Vec<Route> {
    vec![
        at(Method::POST, "/api/v1/events", ingest),
        at(Method::PUT, "/api/v1/events/{id}/clip", put_clip),
        at(Method::GET, "/api/v1/events/{id}/clip", get_clip),
        at(Method::GET, "/api/v1/events/{id}/snapshot", get_snapshot),
        at(Method::GET, "/api/v1/search", search),
        at(Method::GET, "/api/v1/me", me),
        at(Method::GET, "/api/v1/cameras", list_cameras),
        at(Method::GET, "/api/v1/cameras/{id}", get_camera),
        at(Method::PUT, "/api/v1/cameras/{id}", put_camera),
        at(
            Method::GET,
            "/api/v1/plates/{plate}/track",
            trajectory::track,
        ),
        at(Method::GET, "/api/v1/watchlist", alerts::list_watchlist),
        at(Method::POST, "/api/v1/watchlist", alerts::add_watch),
        at(
            Method::DELETE,
            "/api/v1/watchlist/{id}",
            alerts::remove_watch,
        ),
        at(Method::GET, "/api/v1/alerts", alerts::list_alerts),
        at(Method::GET, "/api/v1/alerts/stream", alerts::stream),
        at(Method::GET, "/api/v1/alerts/{id}", alerts::get_alert),
        at(Method::POST, "/api/v1/alerts/{id}/ack", alerts::ack),
        at(Method::POST, "/api/v1/alerts/{id}/close", alerts::close),
        at(Method::GET, "/api/v1/audit", audit),
        at(Method::GET, "/api/v1/openapi.json", crate::openapi::serve),
        at(Method::GET, "/healthz", healthz),
        at(Method::GET, "/metrics", metrics),
    ]
}

/// The `(method, path template)` of every route [`app`] serves.
pub fn routes() -> Vec<(Method, &'static str)> {
    route_table()
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect()
}

/// The HTTP router.
pub fn app(state: AppState) -> Router {
    route_table()
        .into_iter()
        .fold(Router::new(), |router, (_, path, handler)| {
            router.route(path, handler)
        })
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .merge(crate::ui::router())
        .fallback(no_route)
        .with_state(state)
}

/// An error answer: a status and a message for the caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    fn internal(what: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "{what}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error while {what}; the server log has the details; retry later"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs blocking store work off the async threads.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) if e.is_disk_full() => {
            tracing::error!(error = %e, "{what}: the disk is full");
            Err(ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                format!(
                    "the server's disk is full while {what}; nothing of this request was \
                     stored; send it again once space is freed"
                ),
            ))
        }
        Ok(Err(e)) => Err(ApiError::internal(what, e)),
        Err(e) => Err(ApiError::internal(what, e)),
    }
}

/// The caller, from its bearer token.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// 403 unless the caller has one of `roles`.
    fn require(&self, roles: &[Role], action: &str) -> ApiResult<()> {
        if roles.contains(&self.role) {
            return Ok(());
        }
        let allowed: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "a token with role {} may not {action}; this needs role {}",
                self.role,
                allowed.join(" or ")
            ),
        ))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> ApiResult<Caller> {
        let address = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let logins = &state.inner.logins;
        let unauthorized = |m: &str| {
            logins.failed(address, m);
            ApiError::new(StatusCode::UNAUTHORIZED, m)
        };
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| {
                unauthorized(
                    "no token: send `Authorization: Bearer TOKEN` (an admin makes tokens with `safecity-server token create`)",
                )
            })?
            .to_str()
            .map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer TOKEN`"))?;
        let hash = token_hash(token);
        let cached = state.inner.tokens.read_locked().get(&hash).cloned();
        let owner = match cached {
            Some((o, at)) if at.elapsed() < TOKEN_RECHECK => o,
            _ => {
                // A token seen before is looked up again even from a
                // blocked address.
                let blocked = address.and_then(|a| logins.blocked(a));
                if let (Some(seconds), None) = (blocked, &cached) {
                    return Err(ApiError::new(
                        StatusCode::TOO_MANY_REQUESTS,
                        format!(
                            "too many failed authentications from this address; try again in \
                             {seconds} s"
                        ),
                    ));
                }
                let store = state.inner.store.clone();
                let h = hash.clone();
                let found = blocking("checking a token", move || store.token(&h)).await?;
                let mut tokens = state.inner.tokens.write_locked();
                let Some(owner) = found else {
                    tokens.remove(&hash);
                    drop(tokens);
                    return Err(unauthorized(
                        "unknown or revoked token: check it, or ask an admin for a new one",
                    ));
                };
                tokens.insert(hash, (owner.clone(), Instant::now()));
                owner
            }
        };
        if let Some(expires) = owner.expires_ms.filter(|&e| e <= now_ms()) {
            return Err(unauthorized(&format!(
                "token {:?} expired at {}; ask an admin for a new one",
                owner.name,
                rfc3339(expires)
            )));
        }
        Ok(Caller {
            name: owner.name,
            role: owner.role,
        })
    }
}

/// Query parameters, checked against the names a route knows.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: Option<&str>, known: &[&str]) -> ApiResult<Params> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        for (k, _) in &pairs {
            if !known.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{k}`; this route takes {}",
                    known.join(", ")
                )));
            }
        }
        Ok(Params(pairs))
    }

    /// A parameter given at most once.
    fn one(&self, name: &str) -> ApiResult<Option<&str>> {
        let mut found = self.0.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "parameter `{name}` is given more than once; give it once"
            )));
        }
        Ok(first)
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `reason` every search and download must give.
    fn reason(&self) -> ApiResult<String> {
        match self.one("reason")?.map(str::trim) {
            Some(r) if !r.is_empty() => {
                if r.chars().count() > 1000 {
                    Err(ApiError::bad_request(
                        "reason is too long: keep it under 1000 characters",
                    ))
                } else {
                    Ok(r.to_owned())
                }
            }
            _ => Err(ApiError::bad_request(
                "reason is required: add `reason=...` (a case number or why you look); it is kept in the audit log",
            )),
        }
    }

    fn time(&self, name: &str) -> ApiResult<Option<i64>> {
        let Some(v) = self.one(name)? else {
            return Ok(None);
        };
        // An unencoded `+` in an offset arrives as a space.
        let parsed = OffsetDateTime::parse(v, &Rfc3339)
            .or_else(|e| OffsetDateTime::parse(&v.replace(' ', "+"), &Rfc3339).map_err(|_| e));
        match parsed {
            Ok(t) => Ok(Some((t.unix_timestamp_nanos() / 1_000_000) as i64)),
            Err(e) => Err(ApiError::bad_request(format!(
                "`{name}`: {v:?} is not an RFC 3339 time ({e}); write e.g. 2026-11-22T10:15:30Z"
            ))),
        }
    }
}

/// How long a token looked up stays trusted before it is looked up again:
/// a revoked token stops working within this on every server.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(30);

fn rfc3339(ms: i64) -> String {
    safecity_core::clock::utc(ms)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// An audit record of a call by `caller`, made now.
fn audit_entry(
    caller: &Caller,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    reason: Option<String>,
    results: Option<u64>,
) -> AuditEntry {
    AuditEntry {
        at_ms: now_ms(),
        who: caller.name.clone(),
        role: caller.role.as_str().to_owned(),
        route: format!("{method} {path}"),
        query: raw_query.unwrap_or("").to_owned(),
        reason,
        results,
        detail: None,
    }
}

/// Appends an audit record; the answer is not given if this fails.
async fn audit_call(
    state: &AppState,
    caller: &Caller,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    reason: Option<String>,
    results: Option<u64>,
) -> ApiResult<()> {
    let entry = audit_entry(caller, method, path, raw_query, reason, results);
    append_audit(state, entry).await
}

/// Appends a prepared audit record.
async fn append_audit(state: &AppState, entry: AuditEntry) -> ApiResult<()> {
    let store = state.inner.store.clone();
    blocking("writing the audit log", move || store.append_audit(&entry)).await?;
    Ok(())
}

/// Reads a body of at most `limit` bytes.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize, what: &str) -> ApiResult<Bytes> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{what} is over the limit of {} MiB; send smaller batches",
                limit / (1024 * 1024)
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

async fn no_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route {method} {}; the API is under /api/v1 (events, search, plates/PLATE/track, cameras, watchlist, alerts, audit)",
        uri.path()
    ))
}

async fn count_requests(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = req.method().clone();
    let res = next.run(req).await;
    state
        .inner
        .metrics
        .count_request(method.as_str(), &route, res.status().as_u16());
    res
}

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
//! Trajectories are in [`track`](self::track); the watchlist, alerts and
//! their live stream in [`alerts`](self::alerts).

mod alerts;
mod login_guard;
mod trajectory;

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
pub(crate) use safecity_core::clock::now_ms;
use safecity_core::sync::{Locked, ReadWriteLocked};

/// Largest camera registry entry accepted.
const MAX_CAMERA_BODY: usize = 64 * 1024;
/// Results per search page unless `limit` says otherwise, and the most.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 500;
/// Fuzzy distance unless `max_distance` says otherwise, and the most.
const DEFAULT_MAX_DISTANCE: f32 = 1.0;
const MAX_DISTANCE: f32 = 2.0;

/// How long an ingest call with alerts waits for the calls committed
/// before it to publish theirs, before it publishes anyway (a call that
/// never finishes must not stall the live streams).
const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// Publishes the alerts of ingest calls in the store's commit order
/// ([`IngestOutcome::seq`](crate::model::IngestOutcome::seq)), so that live
/// streams and webhooks see alert ids in order while batches are stored
/// concurrently. A call without alerts only marks its turn as taken; one
/// with alerts waits for every earlier call first.
struct PublishOrder {
    state: Mutex<PublishState>,
    turn: Condvar,
    /// [`PUBLISH_WAIT`]; shorter in tests.
    wait: Duration,
}

impl Default for PublishOrder {
    fn default() -> Self {
        PublishOrder {
            state: Mutex::default(),
            turn: Condvar::new(),
            wait: PUBLISH_WAIT,
        }
    }
}

#[derive(Default)]
struct PublishState {
    /// Every call numbered up to this one is through.
    through: u64,
    /// Calls through above `through`, waiting for a gap to close.
    ahead: BTreeSet<u64>,
}

impl PublishOrder {
    /// Runs `publish` (when `alerts`) once every call committed before
    /// `seq` is through, or after [`PUBLISH_WAIT`], then marks `seq`
    /// through.
    fn in_turn(&self, seq: u64, alerts: bool, publish: impl FnOnce()) {
        let mut st = self.state.locked();
        if alerts {
            let deadline = Instant::now() + self.wait;
            while st.through + 1 < seq {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    tracing::warn!(
                        seq,
                        through = st.through,
                        "publishing alerts before an earlier ingest call that has not finished"
                    );
                    // Later calls do not wait for the missing ones again.
                    st.ahead.retain(|&s| s > seq);
                    st.through = seq - 1;
                    break;
                }
                st = self
                    .turn
                    .wait_timeout(st, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            publish();
        }
        if seq > st.through {
            st.ahead.insert(seq);
        }
        while st.ahead.first() == Some(&(st.through + 1)) {
            st.ahead.pop_first();
            st.through += 1;
        }
        self.turn.notify_all();
    }
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    blobs: Arc<BlobStore>,
    metrics: Arc<Metrics>,
    /// New alerts, in id order, for the live streams.
    live: tokio::sync::broadcast::Sender<Arc<alerts::LiveAlert>>,
    /// Ingest calls publish their alerts in the store's commit order.
    publish_order: PublishOrder,
    webhooks: Webhooks,
    max_body: usize,
    max_clip: usize,
    /// Token hashes already looked up, and when: an entry older than
    /// [`TOKEN_RECHECK`] is looked up again (it may have been revoked).
    tokens: RwLock<HashMap<String, (TokenOwner, Instant)>>,
    /// Failed authentication per client address.
    logins: login_guard::LoginGuard,
    /// Set when the server shuts down: live streams end, so that their
    /// connections close and the shutdown does not wait on them.
    closing: tokio::sync::watch::Sender<bool>,
}

impl AppState {
    /// State over any store and blob store. Starts a delivery thread per
    /// configured webhook.
    pub fn new(store: Arc<dyn Store>, blobs: Arc<BlobStore>, config: &ServerConfig) -> AppState {
        let metrics = Arc::new(Metrics::default());
        AppState {
            inner: Arc::new(Inner {
                store,
                blobs,
                live: tokio::sync::broadcast::channel(alerts::LIVE_BUFFER).0,
                publish_order: PublishOrder::default(),
                webhooks: Webhooks::start(&config.webhooks, metrics.clone()),
                metrics,
                max_body: config.max_body_mb * 1024 * 1024,
                max_clip: config.max_clip_mb * 1024 * 1024,
                tokens: RwLock::new(HashMap::new()),
                logins: login_guard::LoginGuard::default(),
                closing: tokio::sync::watch::channel(false).0,
            }),
        }
    }

    /// Ends every live alert stream (and refuses new ones), for a shutdown:
    /// a connected board would otherwise keep the server waiting.
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// Opens the configured store (embedded in `config.data_dir`, or
    /// PostgreSQL) and the blobs in `config.data_dir`, and stores
    /// the hash of `config.admin_token` if there is one.
    pub fn open(config: &ServerConfig) -> crate::error::Result<AppState> {
        config.validate()?;
        let store = crate::store::open(config)?;
        let blobs = BlobStore::open(&config.data_dir.join("blobs"))?;
        if let Some(token) = &config.admin_token {
            store.add_token(
                &token_hash(token),
                &TokenOwner {
                    name: "admin (SAFECITY_ADMIN_TOKEN)".into(),
                    role: Role::Admin,
                    expires_ms: None,
                },
            )?;
        }
        Ok(AppState::new(store, Arc::new(blobs), config))
    }

    /// The store behind the API.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The snapshots and clips.
    pub fn blobs(&self) -> &Arc<BlobStore> {
        &self.inner.blobs
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Sends newly stored alerts to the live streams and webhooks. Blocks
    /// (it reads the camera registry): call it off the async threads.
    fn publish(&self, new: &[Alert]) {
        if new.is_empty() {
            return;
        }
        let cameras = self.inner.store.cameras().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read cameras for alerts; sending them without positions");
            Vec::new()
        });
        for a in new {
            let live = Arc::new(alerts::LiveAlert {
                id: a.id,
                json: alerts::alert_json(a, &cameras).to_string(),
            });
            self.inner.webhooks.deliver(a.priority, &live.json);
            // No receiver is fine: nobody is watching right now.
            let _ = self.inner.live.send(live);
        }
        self.inner
            .metrics
            .alerts_raised
            .fetch_add(new.len() as u64, Ordering::Relaxed);
    }
}

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

fn check_content_type(headers: &HeaderMap, expected: &str) -> ApiResult<()> {
    match headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
        None => Ok(()),
        Some(Ok(v)) if v.split(';').next().unwrap_or("").trim() == expected => Ok(()),
        Some(v) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Content-Type {:?} is not accepted here; send {expected}",
                v.unwrap_or("?")
            ),
        )),
    }
}

/// An event id from a path in its canonical (upper-case) form: a ULID is
/// the same id in either case.
fn canonical_event_id(id: &str) -> ApiResult<String> {
    EventId::parse(id)
        .map(|id| id.to_string())
        .map_err(|e| ApiError::bad_request(format!("event id: {e}")))
}

/// Parses and checks a batch: the whole batch is refused if one event is
/// wrong, so nothing is half stored and the sender can split it.
fn parse_batch(body: &[u8]) -> ApiResult<Vec<(Event, Option<Vec<u8>>)>> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let events: Vec<Event> = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            // The path starts with the index of the event, `[3].plate...`.
            let index: Option<usize> = path
                .strip_prefix('[')
                .and_then(|p| p.split(']').next())
                .and_then(|i| i.parse().ok());
            let message = match index {
                _ if e.inner().is_syntax() || e.inner().is_eof() => format!(
                    "the body is not valid JSON ({}); send a JSON array of events",
                    e.inner()
                ),
                Some(i) => {
                    let id = serde_json::from_slice::<Vec<Value>>(body)
                        .ok()
                        .and_then(|v| v.get(i)?.get("id")?.as_str().map(str::to_owned));
                    let field = path.split_once('.').map(|(_, f)| f).unwrap_or("");
                    let mut m = format!("event {i}");
                    if let Some(id) = id {
                        m.push_str(&format!(" (id {id})"));
                    }
                    if !field.is_empty() {
                        m.push_str(&format!(", field `{field}`"));
                    }
                    format!("{m}: {}", e.inner())
                }
                None => format!("the body must be a JSON array of events: {}", e.inner()),
            };
            return Err(ApiError::bad_request(format!(
                "{message}; nothing in this batch was stored"
            )));
        }
    };
    de.end().map_err(|e| {
        ApiError::bad_request(format!(
            "the body must be one JSON array of events: {e}; nothing in this batch was stored"
        ))
    })?;
    let mut out = Vec::with_capacity(events.len());
    for (i, mut event) in events.into_iter().enumerate() {
        if let Err(e) = event.validate() {
            return Err(ApiError::bad_request(format!(
                "event {i} (id {}), field `{}`: {}; nothing in this batch was stored",
                e.id, e.field, e.message
            )));
        }
        // One id, one event: the stored form is the canonical upper case.
        event.id = EventId::parse(&event.id).expect("validated").to_string();
        let snapshot = match event.snapshot.take().filter(|s| !s.is_empty()) {
            None => None,
            Some(b64) => Some(base64::engine::general_purpose::STANDARD.decode(b64).map_err(
                |e| {
                    ApiError::bad_request(format!(
                        "event {i} (id {}), field `snapshot`: not base64 ({e}); nothing in this batch was stored",
                        event.id
                    ))
                },
            )?),
        };
        out.push((event, snapshot));
    }
    Ok(out)
}

/// The request body as JSON bytes: `encoding` is the lower-cased
/// Content-Encoding; at most `limit` bytes once decompressed.
fn decode_body(encoding: Option<&str>, raw: &[u8], limit: usize) -> ApiResult<Vec<u8>> {
    match encoding {
        None | Some("identity") => Ok(raw.to_vec()),
        Some("gzip") => {
            let mut out = Vec::new();
            // Every member: a gzip stream may be several concatenated.
            flate2::read::MultiGzDecoder::new(raw)
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "the body says Content-Encoding: gzip but is not valid gzip ({e})"
                    ))
                })?;
            if out.len() > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the decompressed body is over the limit of {} MiB; send smaller batches",
                        limit / (1024 * 1024)
                    ),
                ));
            }
            Ok(out)
        }
        Some(other) => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {other:?} is not supported; send gzip or none"),
        )),
    }
}

/// The ingest body and the search parameters decoded exactly as the API
/// does, without a store or a network: entry points for the fuzz harnesses
/// in `fuzz/`.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// Decodes an ingest body (`encoding` as in Content-Encoding) under the
    /// default body limit; the number of events accepted, or the error the
    /// sender would get.
    pub fn ingest_body(encoding: Option<&str>, body: &[u8]) -> Result<usize, String> {
        let limit = ServerConfig::default().max_body_mb * 1024 * 1024;
        let json = decode_body(encoding, body, limit).map_err(|e| e.message)?;
        parse_batch(&json).map(|b| b.len()).map_err(|e| e.message)
    }

    /// Parses a search's query string; the error a caller would get.
    pub fn search_params(raw: &str) -> Result<(), String> {
        let params = Params::parse(Some(raw), SEARCH_PARAMS).map_err(|e| e.message)?;
        params.reason().map_err(|e| e.message)?;
        search_query(&params).map(|_| ()).map_err(|e| e.message)
    }
}

async fn ingest(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Edge, Role::Admin], "send events")?;
    check_content_type(&headers, "application/json")?;
    let limit = state.inner.max_body;
    let raw = read_body(&headers, body, limit, "the request body").await?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let json = decode_body(encoding.as_deref(), &raw, limit)?;
    let batch = parse_batch(&json)?;
    if caller.role == Role::Edge {
        // An edge token speaks for the edge it is named after, only.
        if let Some((i, (e, _))) = batch
            .iter()
            .enumerate()
            .find(|(_, (e, _))| e.edge_id != caller.name)
        {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "event {i} is from edge {:?}, but this token speaks for edge {:?} only; \
                     give the edge a token made with --name {:?}, or set its edge_id to {:?}",
                    e.edge_id, caller.name, e.edge_id, caller.name
                ),
            ));
        }
    }
    let live = state.clone();
    let outcome = blocking("storing events", move || {
        let inner = &live.inner;
        let mut events = Vec::with_capacity(batch.len());
        let mut snapshots = Vec::new();
        for (event, snapshot) in batch {
            let hash = snapshot
                .as_ref()
                .map(|bytes| inner.blobs.put(bytes))
                .transpose()?;
            snapshots.extend(snapshot);
            events.push(NewEvent {
                event,
                snapshot: hash,
            });
        }
        // Batches of edges posting at the same time may share a commit.
        let outcome = inner.store.ingest(&events)?;
        // A retention purge that committed between the puts and this
        // commit may have removed a blob these events name: put it back.
        let put_back = snapshots
            .iter()
            .try_for_each(|bytes| inner.blobs.put(bytes).map(drop));
        // After the commit, only for events stored now, in commit order;
        // even when a blob could not be put back, as calls after this one
        // wait for it.
        inner
            .publish_order
            .in_turn(outcome.seq, !outcome.alerts.is_empty(), || {
                live.publish(&outcome.alerts)
            });
        put_back?;
        Ok(outcome)
    })
    .await?;
    let m = &state.inner.metrics;
    m.events_ingested
        .fetch_add(outcome.accepted, Ordering::Relaxed);
    m.events_duplicate
        .fetch_add(outcome.duplicates, Ordering::Relaxed);
    m.ingest_batches.fetch_add(1, Ordering::Relaxed);
    Ok(Json(json!({
        "accepted": outcome.accepted,
        "duplicates": outcome.duplicates,
    })))
}

async fn put_clip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require(&[Role::Edge, Role::Admin], "upload clips")?;
    let id = canonical_event_id(&id)?;
    check_content_type(&headers, "video/mp4")?;
    let store = state.inner.store.clone();
    let i = id.clone();
    let Some(event) = blocking("looking up an event", move || store.event_blobs(&i)).await? else {
        return Err(ApiError::not_found(format!(
            "no event {id}: send the event first, then its clip"
        )));
    };
    if caller.role == Role::Edge && event.edge_id != caller.name {
        let refusal = format!(
            "event {id} is from edge {:?}; only that edge may add its clip",
            event.edge_id
        );
        return Err(refused_clip(&state, &caller, &id, refusal, StatusCode::FORBIDDEN).await);
    }
    let bytes = read_body(&headers, body, state.inner.max_clip, "the clip").await?;
    if bytes.is_empty() {
        return Err(ApiError::bad_request(
            "the clip is empty; send the MP4 bytes",
        ));
    }
    let size = bytes.len();
    let hash = BlobStore::hash(&bytes);
    let linked = match &event.clip {
        // The same clip again (an answer was lost): already stored.
        Some(stored) if *stored == hash => false,
        Some(stored) => {
            let refusal = already_has_clip(&id, stored);
            return Err(refused_clip(&state, &caller, &id, refusal, StatusCode::CONFLICT).await);
        }
        None => {
            let (store, blobs, i, h) = (
                state.inner.store.clone(),
                state.inner.blobs.clone(),
                id.clone(),
                hash.clone(),
            );
            let (linked, now) = blocking("storing a clip", move || {
                blobs.put(&bytes)?;
                let linked = store.attach_clip(&i, &h)?;
                // As after an ingest: a purge may have removed it meanwhile.
                blobs.put(&bytes)?;
                Ok((linked, store.event_blobs(&i)?))
            })
            .await?;
            match now.and_then(|e| e.clip) {
                Some(stored) if stored == hash => linked,
                Some(stored) => {
                    // Another upload won the race.
                    let refusal = already_has_clip(&id, &stored);
                    let status = StatusCode::CONFLICT;
                    return Err(refused_clip(&state, &caller, &id, refusal, status).await);
                }
                None => return Err(ApiError::not_found(format!("no event {id}"))),
            }
        }
    };
    if linked {
        state
            .inner
            .metrics
            .clips_stored
            .fetch_add(1, Ordering::Relaxed);
        let mut entry = audit_entry(&caller, &Method::PUT, &clip_path(&id), None, None, None);
        entry.detail = Some(format!(
            "clip of event {id} stored: sha256 {hash}, {size} bytes"
        ));
        append_audit(&state, entry).await?;
    }
    let status = if linked {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({ "id": id, "sha256": hash, "bytes": size })),
    )
        .into_response())
}

/// Why other bytes for an event's clip are refused.
fn already_has_clip(id: &str, stored: &str) -> String {
    format!("event {id} already has its clip (sha256 {stored}); evidence is written once")
}

fn clip_path(id: &str) -> String {
    format!("/api/v1/events/{id}/clip")
}

/// A refused clip upload, written to the audit log (an attempt to change
/// evidence is itself evidence) and answered with `status`.
async fn refused_clip(
    state: &AppState,
    caller: &Caller,
    id: &str,
    refusal: String,
    status: StatusCode,
) -> ApiError {
    let mut entry = audit_entry(caller, &Method::PUT, &clip_path(id), None, None, None);
    entry.detail = Some(format!("refused: {refusal}"));
    if let Err(e) = append_audit(state, entry).await {
        return e;
    }
    ApiError::new(status, refusal)
}

#[derive(Clone, Copy)]
enum Media {
    Snapshot,
    Clip,
}

async fn get_media(
    state: AppState,
    caller: Caller,
    id: String,
    raw: Option<String>,
    media: Media,
) -> ApiResult<Response> {
    let (noun, path, content_type) = match media {
        Media::Snapshot => (
            "snapshot",
            format!("/api/v1/events/{id}/snapshot"),
            "image/jpeg",
        ),
        Media::Clip => ("clip", format!("/api/v1/events/{id}/clip"), "video/mp4"),
    };
    caller.require(
        &[Role::Investigator, Role::Operator, Role::Admin],
        &format!("download {noun}s"),
    )?;
    let params = Params::parse(raw.as_deref(), &["reason"])?;
    let reason = params.reason()?;
    let id = canonical_event_id(&id)?;
    let store = state.inner.store.clone();
    let i = id.clone();
    let blobs = blocking("looking up an event", move || store.event_blobs(&i))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
    let hash = match media {
        Media::Snapshot => blobs.snapshot,
        Media::Clip => blobs.clip,
    }
    .ok_or_else(|| ApiError::not_found(format!("event {id} has no {noun}")))?;
    let store_blobs = state.inner.blobs.clone();
    let h = hash.clone();
    let bytes = blocking("reading a blob", move || store_blobs.get(&h))
        .await?
        .ok_or_else(|| ApiError::internal("reading a blob", format!("blob {hash} is missing")))?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        &path,
        raw.as_deref(),
        Some(reason),
        Some(1),
    )
    .await?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        bytes,
    )
        .into_response())
}

async fn get_snapshot(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    get_media(state, caller, id, raw, Media::Snapshot).await
}

async fn get_clip(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    get_media(state, caller, id, raw, Media::Clip).await
}

const SEARCH_PARAMS: &[&str] = &[
    "plate",
    "mode",
    "max_distance",
    "from",
    "to",
    "camera",
    "near",
    "class",
    "colour",
    "kind",
    "limit",
    "cursor",
    "reason",
];

fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{}.{}", c.ts_ms, c.id))
}

fn decode_cursor(s: &str) -> ApiResult<Cursor> {
    let bad = || {
        ApiError::bad_request(
            "`cursor` is not one this server gave; pass `next_cursor` from the previous page as it is, or start again without it",
        )
    };
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let (ts, id) = text.split_once('.').ok_or_else(bad)?;
    let ts_ms = ts.parse().map_err(|_| bad())?;
    EventId::parse(id).map_err(|_| bad())?;
    Ok(Cursor {
        ts_ms,
        id: id.to_owned(),
    })
}

/// Builds a checked query from the parameters.
fn search_query(p: &Params) -> ApiResult<SearchQuery> {
    let mode = p.one("mode")?;
    let max_distance = p.one("max_distance")?;
    let plate = match p.one("plate")?.map(str::trim).filter(|s| !s.is_empty()) {
        None => {
            if mode.is_some() {
                return Err(ApiError::bad_request("`mode` needs `plate`"));
            }
            PlateQuery::Any
        }
        Some(text) => {
            let has_wildcard = text.contains(['*', '?']);
            let mode = mode.unwrap_or(if has_wildcard { "wildcard" } else { "exact" });
            if max_distance.is_some() && mode != "fuzzy" {
                return Err(ApiError::bad_request(
                    "`max_distance` applies only to mode=fuzzy",
                ));
            }
            let canonical = |text: &str| {
                if has_wildcard {
                    return Err(ApiError::bad_request(format!(
                        "`plate`: {text:?} has wildcards; use mode=wildcard"
                    )));
                }
                normalize_plate(text).map_err(|e| ApiError::bad_request(format!("`plate`: {e}")))
            };
            match mode {
                "exact" => PlateQuery::Exact(canonical(text)?),
                "wildcard" => {
                    let pattern = PlatePattern::parse(text)
                        .map_err(|e| ApiError::bad_request(format!("`plate`: {e}")))?;
                    if pattern.is_exact() {
                        PlateQuery::Exact(pattern.as_str().to_owned())
                    } else {
                        PlateQuery::Wildcard(pattern)
                    }
                }
                "fuzzy" => {
                    let max_distance = match max_distance {
                        None => DEFAULT_MAX_DISTANCE,
                        Some(v) => v
                            .parse::<f32>()
                            .ok()
                            .filter(|d| (0.0..=MAX_DISTANCE).contains(d))
                            .ok_or_else(|| {
                                ApiError::bad_request(format!(
                                    "`max_distance`: {v:?} must be a number from 0 to {MAX_DISTANCE}"
                                ))
                            })?,
                    };
                    PlateQuery::Fuzzy {
                        plate: canonical(text)?,
                        max_distance,
                    }
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "`mode`: {other:?} is not exact, wildcard or fuzzy"
                    )))
                }
            }
        }
    };
    let from_ms = p.time("from")?;
    let to_ms = p.time("to")?;
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if f > t {
            return Err(ApiError::bad_request("`from` is after `to`; swap them"));
        }
    }
    let cameras = p.all("camera");
    if cameras.iter().any(|c| c.is_empty()) {
        return Err(ApiError::bad_request("`camera` must not be empty"));
    }
    let near = p
        .one("near")?
        .map(|v| {
            let parts: Vec<f64> = v
                .split(',')
                .map(|x| x.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .unwrap_or_default();
            match parts[..] {
                [lat, lon, metres]
                    if (-90.0..=90.0).contains(&lat)
                        && (-180.0..=180.0).contains(&lon)
                        && metres > 0.0
                        && metres <= 100_000.0 =>
                {
                    Ok(Near { lat, lon, metres })
                }
                _ => Err(ApiError::bad_request(format!(
                    "`near`: {v:?} must be lat,lon,metres (e.g. 43.2389,76.8897,500; at most 100000 metres)"
                ))),
            }
        })
        .transpose()?;
    let kind = p
        .one("kind")?
        .map(|k| {
            [
                EventKind::PlateRead,
                EventKind::Vehicle,
                EventKind::PanicAlarm,
                EventKind::CameraStatus,
            ]
            .into_iter()
            .find(|x| x.as_str() == k)
            .map(|x| x.as_str().to_owned())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`kind`: {k:?} is not plate_read, vehicle, panic_alarm or camera_status"
                ))
            })
        })
        .transpose()?;
    let limit = match p.one("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("`limit`: {v:?} must be from 1 to {MAX_LIMIT}"))
            })?,
    };
    Ok(SearchQuery {
        plate,
        from_ms,
        to_ms,
        cameras: (!cameras.is_empty()).then(|| cameras.iter().map(|c| c.to_string()).collect()),
        near,
        class: p.one("class")?.map(str::to_lowercase),
        colour: p.one("colour")?.map(str::to_lowercase),
        kind,
        limit,
        after: p.one("cursor")?.map(decode_cursor).transpose()?,
    })
}

async fn search(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Value>> {
    caller.require(&[Role::Investigator, Role::Admin], "search")?;
    let params = Params::parse(raw.as_deref(), SEARCH_PARAMS)?;
    let reason = params.reason()?;
    let query = search_query(&params)?;
    let store = state.inner.store.clone();
    let page = blocking("searching", move || store.search(&query)).await?;
    audit_call(
        &state,
        &caller,
        &Method::GET,
        "/api/v1/search",
        raw.as_deref(),
        Some(reason),
        Some(page.hits.len() as u64),
    )
    .await?;
    let results: Vec<Value> = page
        .hits
        .into_iter()
        .map(|h| {
            let mut r = json!({
                "event": h.event,
                "snapshot_url": h.snapshot.map(|_| format!("/api/v1/events/{}/snapshot", h.id)),
                "clip_url": h.clip.map(|_| format!("/api/v1/events/{}/clip", h.id)),
            });
            if let Some(d) = h.distance {
                r["distance"] = json!(d);
            }
            r
        })
        .collect();
    Ok(Json(json!({
        "results": results,
        "next_cursor": page.next.as_ref().map(encode_cursor),
    })))
}

/// `GET /me`: who the token belongs to and its role, for clients that
/// show each role its own views.
async fn me(caller: Caller) -> Json<Value> {
    Json(json!({ "name": caller.name, "role": caller.role.as_str() }))
}

async fn list_cameras(State(state): State<AppState>, _caller: Caller) -> ApiResult<Json<Value>> {
    let store = state.inner.store.clone();
    let cameras = blocking("reading cameras", move || {
        store
            .cameras()?
            .into_iter()
            .map(|camera| {
                let health = store.camera_health(&camera.id)?;
                Ok(camera_json(camera, &health))
            })
            .collect::<crate::error::Result<Vec<Value>>>()
    })
    .await?;
    Ok(Json(json!({ "cameras": cameras })))
}

async fn get_camera(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let store = state.inner.store.clone();
    let found = blocking("reading cameras", move || {
        let Some(camera) = store.cameras()?.into_iter().find(|c| c.id == id) else {
            return Ok(Err(id));
        };
        let health = store.camera_health(&camera.id)?;
        Ok(Ok(camera_json(camera, &health)))
    })
    .await?;
    found
        .map(Json)
        .map_err(|id| ApiError::not_found(format!("no camera {id}; PUT it first")))
}

/// A registry entry with its `health`: the state of its latest
/// `camera_status` event, or `online` when events came after it (or came
/// with no status event at all), `unknown` when it never sent anything.
fn camera_json(camera: Camera, health: &crate::model::CameraHealth) -> Value {
    let status = match (&health.status, health.last_seen_ms) {
        (Some((state, at)), Some(seen)) if state == "offline" && seen > *at => "online",
        (Some((state, _)), _) => state.as_str(),
        (None, Some(_)) => "online",
        (None, None) => "unknown",
    };
    let mut value = serde_json::to_value(camera).expect("a camera serialises");
    value["health"] = json!({
        "status": status,
        "since": health.status.as_ref().map(|(_, at)| rfc3339(*at)),
        "last_seen": health.last_seen_ms.map(rfc3339),
    });
    value
}

/// The body of `PUT /cameras/{id}`: the id comes from the path.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CameraBody {
    #[serde(default)]
    id: Option<String>,
    name: String,
    kind: crate::model::CameraKind,
    lat: f64,
    lon: f64,
}

async fn put_camera(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Camera>> {
    caller.require(&[Role::Admin], "change the camera registry")?;
    check_content_type(&headers, "application/json")?;
    let bytes = read_body(&headers, body, MAX_CAMERA_BODY, "the camera").await?;
    let mut de = serde_json::Deserializer::from_slice(&bytes);
    let b: CameraBody = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        ApiError::bad_request(format!("camera, field `{}`: {}", e.path(), e.inner()))
    })?;
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(format!(
            "camera id {id:?} must be 1 to 64 printable ASCII characters"
        )));
    }
    if b.id.as_ref().is_some_and(|bid| *bid != id) {
        return Err(ApiError::bad_request(
            "the body's `id` differs from the path's; leave it out or make them equal",
        ));
    }
    if b.name.trim().is_empty() || b.name.len() > 200 {
        return Err(ApiError::bad_request("`name` must be 1 to 200 characters"));
    }
    if !(-90.0..=90.0).contains(&b.lat) || !(-180.0..=180.0).contains(&b.lon) {
        return Err(ApiError::bad_request(
            "`lat` must be within -90..90 and `lon` within -180..180 (degrees, WGS 84)",
        ));
    }
    let camera = Camera {
        id: id.clone(),
        name: b.name,
        kind: b.kind,
        lat: b.lat,
        lon: b.lon,
    };
    let store = state.inner.store.clone();
    let c = camera.clone();
    blocking("storing a camera", move || store.put_camera(&c)).await?;
    audit_call(
        &state,
        &caller,
        &Method::PUT,
        &format!("/api/v1/cameras/{id}"),
        None,
        None,
        None,
    )
    .await?;
    Ok(Json(camera))
}

async fn audit(
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
async fn health_of(state: &AppState) -> crate::health::Health {
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
async fn healthz(State(state): State<AppState>) -> Response {
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

async fn metrics(State(state): State<AppState>) -> Response {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls that finish out of commit order publish in commit order; a
    /// call without alerts never waits, but later calls wait for it.
    #[test]
    fn alerts_are_published_in_commit_order() {
        let order = Arc::new(PublishOrder::default());
        let published = Arc::new(Mutex::new(Vec::new()));
        // Arrival order differs from commit order; 3 and 6 raise no alerts.
        let arrivals = [5u64, 2, 7, 3, 1, 6, 4, 8];
        let threads: Vec<_> = arrivals
            .iter()
            .enumerate()
            .map(|(i, &seq)| {
                let (order, published) = (Arc::clone(&order), Arc::clone(&published));
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20 * i as u64));
                    let alerts = seq != 3 && seq != 6;
                    order.in_turn(seq, alerts, || published.locked().push(seq));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(*published.locked(), vec![1, 2, 4, 5, 7, 8]);
        let st = order.state.locked();
        assert_eq!((st.through, st.ahead.len()), (8, 0));
    }

    /// A call that never finishes holds up the calls after it only once,
    /// for the wait; if it turns up late it publishes without waiting.
    #[test]
    fn a_missing_call_delays_publishing_once() {
        let order = PublishOrder {
            wait: Duration::from_millis(200),
            ..PublishOrder::default()
        };
        let published = Mutex::new(Vec::new());
        let publish = |seq: u64| order.in_turn(seq, true, || published.locked().push(seq));
        publish(1);
        // 2 never comes (yet): 3 waits, then publishes anyway, and counts
        // everything up to itself as through, so nothing waits for 2 again.
        publish(3);
        assert_eq!(*published.locked(), vec![1, 3]);
        assert_eq!(order.state.locked().through, 3);
        publish(4);
        publish(2);
        publish(5);
        assert_eq!(*published.locked(), vec![1, 3, 4, 2, 5]);
        assert_eq!(order.state.locked().through, 5);
    }
}

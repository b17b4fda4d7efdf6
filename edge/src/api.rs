//! The edge's local HTTP API: pillar alarms in, health and metrics out.
//!
//! - `POST /api/v1/alarm` `{"pillar_id": "...", "source": "button"}` (the
//!   `source` is optional; `ts` in RFC 3339 optional, default now): a
//!   `panic_alarm` event goes into the spool at alarm priority at once and
//!   the forwarder is woken. Answers `202 {"id": ...}`.
//! - `GET /api/v1/status`: every stream's state and counters, as JSON.
//! - `GET /metrics`: the same in Prometheus text format.
//! - `GET /healthz`: `ok` when all is well; otherwise JSON
//!   `{"status": "degraded" | "down", "reasons": [...]}`, with 503 when
//!   down (events cannot be stored) and 200 when degraded (the server out
//!   of reach, plain reads dropped for room, a stream offline).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// What the API needs from the running edge.
pub trait EdgeHandle: Send + Sync + 'static {
    /// Raises a pillar alarm; `Err((status, message))` for the caller.
    fn alarm(
        &self,
        pillar_id: &str,
        unix_ms: u64,
        source: &str,
    ) -> Result<String, (StatusCode, String)>;
    /// Stream states and counters.
    fn status(&self) -> serde_json::Value;
    /// Prometheus text.
    fn metrics(&self) -> String;
    /// What is wrong, if anything.
    fn health(&self) -> Health;
}

/// The edge's health: down when events cannot be stored, degraded when
/// they are stored but something needs a look.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Health {
    /// Why events cannot be stored; empty when they can.
    pub down: Vec<String>,
    /// What else is wrong.
    pub degraded: Vec<String>,
}

impl Health {
    /// 0 ok, 1 degraded, 2 down: the `safecity_edge_health` gauge.
    pub fn level(&self) -> u8 {
        if !self.down.is_empty() {
            2
        } else if !self.degraded.is_empty() {
            1
        } else {
            0
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AlarmRequest {
    pillar_id: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    ts: Option<String>,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(serde_json::json!({ "error": message.into() }))).into_response()
}

/// The router over `edge`.
pub fn router(edge: Arc<dyn EdgeHandle>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/alarm", post(alarm))
        .with_state(edge)
}

async fn healthz(State(edge): State<Arc<dyn EdgeHandle>>) -> Response {
    let health = edge.health();
    let (status, word) = match health.level() {
        0 => return "ok\n".into_response(),
        1 => (StatusCode::OK, "degraded"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "down"),
    };
    let reasons: Vec<&String> = health.down.iter().chain(&health.degraded).collect();
    (
        status,
        Json(serde_json::json!({ "status": word, "reasons": reasons })),
    )
        .into_response()
}

async fn metrics(State(edge): State<Arc<dyn EdgeHandle>>) -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        edge.metrics(),
    )
        .into_response()
}

async fn status(State(edge): State<Arc<dyn EdgeHandle>>) -> Response {
    Json(edge.status()).into_response()
}

async fn alarm(
    State(edge): State<Arc<dyn EdgeHandle>>,
    body: Result<Json<AlarmRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("{}; send {{\"pillar_id\": \"...\"}}", e.body_text()),
            )
        }
    };
    let unix_ms = match &req.ts {
        None => crate::events::now_ms(),
        Some(ts) => match OffsetDateTime::parse(ts, &Rfc3339) {
            Ok(t) => (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("ts {ts:?} is not RFC 3339 ({e})"),
                )
            }
        },
    };
    let source = req.source.as_deref().unwrap_or("http");
    match edge.alarm(&req.pillar_id, unix_ms, source) {
        Ok(id) => (StatusCode::ACCEPTED, Json(serde_json::json!({ "id": id }))).into_response(),
        Err((status, message)) => error(status, message),
    }
}

/// Serves the API on its own thread until `shutdown` turns true. Returns
/// the bound address (useful with port 0).
pub fn serve(
    listen: SocketAddr,
    edge: Arc<dyn EdgeHandle>,
    shutdown: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let std_listener = std::net::TcpListener::bind(listen).map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen}: {e}; change [api] listen in the config")
    })?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let handle = std::thread::Builder::new()
        .name("edge-api".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                let stop = async move {
                    while !shutdown.load(std::sync::atomic::Ordering::SeqCst) {
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                };
                if let Err(e) = axum::serve(listener, router(edge))
                    .with_graceful_shutdown(stop)
                    .await
                {
                    tracing::error!("edge API stopped: {e}");
                }
            });
        })?;
    Ok((addr, handle))
}

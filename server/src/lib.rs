//! The safecity search server.
//!
//! It stores the events that edges send and answers investigators' searches,
//! over the HTTP API of `docs/contract.md`. It builds and runs without GStreamer or
//! ONNX Runtime: it only needs `safecity-core` for plates and events.
//!
//! # Layers
//!
//! Modules depend downwards only (a test reads the sources and fails on a
//! cycle):
//!
//! 1. `model` (the value types every layer passes: events, queries, hits,
//!    cameras, watch entries and alerts, tokens and audit records, the
//!    retention policy) and `error`;
//! 2. `config`: every setting, checked;
//! 3. storage: `blobs` (snapshots and clips) and `store` (the [`Store`]
//!    trait and its two backends), with the in-memory `plate_index` and the
//!    `watchlist` matcher the backends keep;
//! 4. what runs on the stores: `trajectory` (a plate's sightings and
//!    hops), `retention` (the purge), `health`, `metrics`, `webhooks`;
//! 5. `api` (the HTTP layer: [`AppState`], handlers, `openapi`, `ui`), and
//!    this file, which wires them into [`run`].
//!
//! - [`app`] is the HTTP router over an [`AppState`], kept apart from
//!   [`run`], which binds a socket and serves until shut down.
//! - [`Store`] is the storage trait; [`SqliteStore`] the embedded backend
//!   (SQLite in WAL mode in the data directory), [`PostgresStore`] the
//!   production one (`[store] backend = "postgres"`, `--postgres URL` or
//!   `SAFECITY_POSTGRES_URL`): events partitioned by month, with the
//!   distribution key for Citus-style scale-out (the plate) written down in
//!   its documentation.
//! - [`PlateIndex`]: the distinct plates in memory, for exact, wildcard
//!   and fuzzy plate searches on both backends.
//! - [`BlobStore`] keeps snapshots and clips content-addressed on disk.
//! - [`Role`] and [`new_token`]: bearer tokens, stored only as hashes,
//!   with an optional expiry ([`create_token`]), listed and revoked from
//!   the command line ([`list_tokens`], [`revoke_tokens`]); a server trusts
//!   a token it looked up for [`TOKEN_RECHECK`] before it looks again. An
//!   edge token is named after the one edge it speaks for.
//! - [`ServerConfig`]: settings from TOML and the command line, with
//!   [`WebhookConfig`]s.
//! - Trajectories ([`hop`], `GET /api/v1/plates/{plate}/track`) flag hops
//!   faster than [`MAX_SPEED_KMH`], a sign of a cloned plate.
//! - Watchlists and alerts ([`WatchEntry`], [`Matcher`], [`Alert`]): each
//!   new plate read is matched during ingest, each pillar alarm is an
//!   alert; alerts go out live as server-sent events at
//!   `/api/v1/alerts/stream` and to webhooks, and operators acknowledge and
//!   close them.
//! - Retention ([`RetentionConfig`], [`RetentionPolicy`], [`run_purge`]):
//!   expired events are purged per kind, with their alerts, unused plates
//!   and unused blobs, every `purge_interval_s` while serving or once with
//!   `safecity-server purge`; the audit log is never purged.
//! - Health (`health`): `/healthz` and the `safecity_health` gauge say
//!   ok, degraded or down from the database and the data disk's free space.
//! - [`openapi_document`]: the OpenAPI 3.1 description served at
//!   `/api/v1/openapi.json`, checked by a test against [`routes`].
//! - The web UI (`ui`): static pages, scripts and styles embedded in the
//!   binary and served at `/` and `/ui/{file}` without a token: search and
//!   trajectories for investigators, the live operations board and the
//!   watchlist for operators, the audit log for admins, in Kazakh, Russian
//!   and English.
//!
//! # Data directory
//!
//! ```text
//! DATA/safecity.sqlite3      events, distinct plates, cameras, tokens, audit log,
//!                            watchlist, alerts and their state changes
//! DATA/blobs/sha256/ab/cd..  snapshots and clips, named by their SHA-256
//! DATA/blobs/tmp/            blobs being written
//! ```
//!
//! # PostgreSQL
//!
//! With `[store] backend = "postgres"` and `url`, `--postgres URL` or
//! `SAFECITY_POSTGRES_URL`, the tables live in PostgreSQL and only the
//! blobs stay in the data directory. The schema is made at the first start:
//! `events` is partitioned by month of capture time (`PARTITION BY RANGE
//! (ts)`, partitions made on demand, a default partition for odd times),
//! idempotency by id comes from an `event_ids` table, and the distribution
//! key for Citus-style scale-out is the plate (`events.shard_key`, the
//! camera for events without a plate), with `plates` co-located,
//! `event_ids` hashed by id, and `cameras`, `tokens` and the watchlist as
//! reference tables. [`PostgresStore`] explains the choice.
//!
//! # What an acknowledgement guarantees
//!
//! `POST /api/v1/events` answers 200 only after the batch's snapshots are
//! synced to disk and the batch's transaction is committed with
//! `synchronous=FULL` (on PostgreSQL: with `synchronous_commit` on). An
//! acknowledged event therefore survives a crash of the server or the
//! machine, and is stored once however often it is sent
//! again (the event id is the key). A batch that gets no answer may or may
//! not be stored, and is safe to send again.
//!
//! The alerts a batch raises are committed in the same transaction, and
//! only then sent to the live streams and webhooks; an event sent again
//! raises nothing, so a re-sent batch does not alert twice.

mod api;
mod auth;
mod blobs;
mod config;
mod error;
mod health;
mod listen;
mod metrics;
mod model;
mod openapi;
mod plate_index;
mod retention;
mod store;
mod trajectory;
mod ui;
mod watchlist;
mod webhooks;

use std::future::Future;
use std::time::Duration;

pub use api::{app, fuzzing, routes, ApiError, AppState, Caller, TOKEN_RECHECK};
pub use auth::{new_token, token_hash, Role};
pub use blobs::BlobStore;
pub use config::redact_url;
pub use config::{
    RetentionConfig, ServerConfig, StoreBackend, StoreConfig, TlsConfig, WebhookConfig,
};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use model::{
    cameras_near, haversine_m, Alert, AlertChange, AlertKind, AlertQuery, AlertState, AuditEntry,
    AuditRecord, BlobHash, Camera, CameraHealth, CameraKind, Cursor, EventBlobs, EventClass, Hit,
    IngestOutcome, Near, NewEvent, NewWatch, PlateQuery, Priority, PurgeReport, RetentionPolicy,
    SearchPage, SearchQuery, Sighting, StateChange, TokenOwner, TokenRecord, WatchEntry, WatchMode,
    WatchRef,
};
pub use openapi::openapi_document;
pub use plate_index::PlateIndex;
pub use retention::{purge_data_dir, run_purge};
use safecity_core::clock::now_ms;
pub use store::{open as open_store, PostgresStore, SqliteStore, Store, PURGE_BATCH};
pub use trajectory::{hop, Hop, CLOCK_SLACK_S, DISTANCE_SLACK_M, MAX_SPEED_KMH};
pub use watchlist::Matcher;

/// Opens the data directory and serves [`app`] on `config.listen` until
/// `shutdown` completes: over HTTPS when `config.tls` names a certificate,
/// plain HTTP otherwise; every connection with time limits (`listen`).
///
/// Prints `safecity-server listening on https://ADDR` (or `http://`) on
/// standard output once the socket is bound (useful with port 0).
pub async fn run(
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    use anyhow::Context;
    config.validate()?;
    let tls = match &config.tls {
        Some(t) => Some(listen::tls_acceptor(&t.cert, &t.key)?),
        None => None,
    };
    let state = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            AppState::open(&config)
                .with_context(|| format!("cannot open {}", config.store_location()))
        })
        .await??
    };
    spawn_purges(&state, &config.retention);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pick another address with --listen",
                config.listen
            )
        })?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "safecity-server listening");
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("safecity-server listening on {scheme}://{address}");
    let closer = state.clone();
    let shutdown = async move {
        shutdown.await;
        closer.close_streams();
    };
    let header_timeout = Duration::from_secs(config.header_timeout_s);
    listen::serve(listener, app(state), tls, header_timeout, shutdown).await
}

/// Makes a token with `role` and `name` in the store `config` names, good
/// for `expires_days` days from now when given, and returns it; only its
/// hash is kept, so it cannot be shown again.
pub fn create_token(
    config: &ServerConfig,
    role: Role,
    name: &str,
    expires_days: Option<u32>,
) -> Result<String> {
    let expires_ms = expires_days.map(|d| now_ms() + i64::from(d) * 24 * 3600 * 1000);
    if name.trim().is_empty() || name.len() > 100 {
        return Err(Error::Config(
            "--name must be 1 to 100 characters (who holds the token)".into(),
        ));
    }
    let store = store::open(config)?;
    let token = new_token();
    store.add_token(
        &token_hash(&token),
        &TokenOwner {
            name: name.to_owned(),
            role,
            expires_ms,
        },
    )?;
    let mut entry = command_line_audit("token create");
    entry.detail = Some(format!("token {name:?} made with role {role}"));
    store.append_audit(&entry)?;
    Ok(token)
}

/// Every token of the store `config` names, revoked ones included.
pub fn list_tokens(config: &ServerConfig) -> Result<Vec<TokenRecord>> {
    store::open(config)?.tokens()
}

/// Revokes every token named `name`, in the audit log too; returns how
/// many. A running server stops taking them within
/// [`TOKEN_RECHECK`].
pub fn revoke_tokens(config: &ServerConfig, name: &str) -> Result<usize> {
    let store = store::open(config)?;
    let n = store.revoke_tokens(name, now_ms())?;
    let mut entry = command_line_audit("token revoke");
    entry.detail = Some(format!("{n} token(s) named {name:?} revoked"));
    store.append_audit(&entry)?;
    Ok(n)
}

/// An audit record of a `safecity-server` command run on the server's
/// machine.
fn command_line_audit(command: &str) -> AuditEntry {
    AuditEntry {
        at_ms: now_ms(),
        who: "command line".into(),
        role: Role::Admin.as_str().into(),
        route: format!("safecity-server {command}"),
        query: String::new(),
        reason: None,
        results: None,
        detail: None,
    }
}

/// Starts the background purge of a serving server: at once, then every
/// `purge_interval_s` seconds. Does nothing when the interval is 0 or the
/// policy keeps everything. Call inside a Tokio runtime.
fn spawn_purges(state: &AppState, config: &RetentionConfig) {
    let policy = config.policy();
    if config.purge_interval_s == 0 || policy.keeps_everything() {
        return;
    }
    let state = state.clone();
    let period = Duration::from_secs(config.purge_interval_s);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let state = state.clone();
            // Failures are logged and counted; the next tick tries again.
            let _ = tokio::task::spawn_blocking(move || {
                run_purge(
                    &**state.store(),
                    state.blobs(),
                    state.metrics(),
                    &policy,
                    now_ms(),
                )
            })
            .await;
        }
    });
}

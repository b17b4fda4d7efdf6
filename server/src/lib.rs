//! The safecity search server.
//!
//! It builds and runs without GStreamer or ONNX Runtime: it only needs
//! `safecity-core` for plates and events. [`app`] is the HTTP router, kept
//! apart from [`run`], which binds a socket and serves until shut down.

use std::future::Future;
use std::net::SocketAddr;

use axum::routing::get;
use axum::Router;

/// The HTTP router.
pub fn app() -> Router {
    Router::new().route("/healthz", get(healthz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Serves [`app`] on `listen` until `shutdown` completes.
pub async fn run(
    listen: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {listen}: {e}; pick another address with --listen")
    })?;
    tracing::info!(address = %listener.local_addr()?, "safecity-server listening");
    axum::serve(listener, app())
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

//! The listening socket: HTTPS with rustls when a certificate is given,
//! plain HTTP otherwise, and time limits on every connection.
//!
//! A connection must finish its TLS handshake within `header_timeout_s` (30
//! s unless configured), and then send each request's headers within the
//! same time, counted from the handshake or its previous response's end: a
//! client that opens a connection and sends nothing, or sends half a
//! request and stops, is cut off instead of holding a socket for ever. (The
//! limit is generous on purpose: over a slow, lossy link with a round trip
//! of seconds a handshake alone takes several.) A response that is being
//! streamed (the live alert stream) is not limited. Plain HTTP is
//! HTTP/1.1; over TLS a client may pick HTTP/2 by ALPN, and such a
//! connection is pinged and closed when the peer stops answering. The
//! protocol is never sniffed from the first bytes, and connections take no
//! HTTP upgrades (the API has none): hyper-util reads those first bytes
//! with no time limit.
//!
//! Each request carries the peer's address as axum's `ConnectInfo`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long open connections may finish their requests after shutdown
/// begins.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS acceptor from a PEM certificate chain and its PEM private key
/// (`safecity_core::tls::server_config`).
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    Ok(TlsAcceptor::from(safecity_core::tls::server_config(
        cert, key,
    )?))
}

/// Serves `app` on `listener` (over TLS when `tls` is given), cutting off
/// clients that take longer than `header_timeout` to send a request's
/// headers, until `shutdown` completes; then stops accepting and gives open
/// requests [`DRAIN_TIMEOUT`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(header_timeout))
        .keep_alive_timeout(header_timeout);
    let builders = Builders {
        http1: builder.clone().http1_only(),
        http2: builder.http2_only(),
        handshake: header_timeout,
    };
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = connection(
            builders.clone(),
            stream,
            peer,
            app.clone(),
            tls.clone(),
            &graceful,
        );
        tokio::spawn(connection);
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {} s after shutdown began; closing them",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    Ok(())
}

/// The connection settings, one protocol each, and the time a TLS
/// handshake may take.
#[derive(Clone)]
struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    handshake: Duration,
}

/// One connection, from the TLS handshake (when there is one) to its end.
fn connection(
    builders: Builders,
    stream: TcpStream,
    peer: SocketAddr,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
    graceful: &GracefulShutdown,
) -> impl Future<Output = ()> + Send + 'static {
    let watcher = graceful.watcher();
    async move {
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request)
        });
        let result = match tls {
            None => {
                let conn = builders
                    .http1
                    .serve_connection(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
            Some(acceptor) => {
                let stream =
                    match tokio::time::timeout(builders.handshake, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake not finished in time");
                            return;
                        }
                    };
                let builder = match stream.get_ref().1.alpn_protocol() {
                    Some(b"h2") => &builders.http2,
                    _ => &builders.http1,
                };
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(conn.into_owned()).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended: {e}");
        }
    }
}

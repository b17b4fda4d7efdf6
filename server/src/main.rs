//! `safecity-server`: the search server's command line.

use std::net::SocketAddr;

use clap::Parser;

/// The safecity search server.
#[derive(Debug, Parser)]
#[command(name = "safecity-server", version, about)]
struct Args {
    /// Address to serve HTTP on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    safecity_server::run(args.listen, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

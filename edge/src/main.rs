//! `safecity-edge`: the edge daemon's command line.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use safecity_edge::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,safecity=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let shutdown = shutdown.clone();
        if let Err(e) = ctrlc::set_handler(move || shutdown.store(true, Ordering::SeqCst)) {
            eprintln!("warning: cannot catch Ctrl-C: {e}");
        }
    }
    match safecity_edge::run(cli, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

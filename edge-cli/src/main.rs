//! `safecity-edge`: the edge's command line.
//!
//! - `run`: the edge daemon ([`safecity_edge::daemon`]);
//! - `recognize`: plates and vehicles in image and video files
//!   ([`safecity_edge::recognize`]);
//! - `simulate`: the scene simulator's stills and RTSP cameras
//!   ([`safecity_sim::cli`]);
//! - `eval`: the models measured on labelled pictures and a clip
//!   ([`eval`]).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use safecity_edge::{daemon, recognize};
use safecity_sim::cli as simulate;

mod eval;

/// `safecity-edge`: video analytics at the camera site.
#[derive(Debug, Parser)]
#[command(name = "safecity-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the edge daemon: cameras and pillars in, events delivered to
    /// the server through the durable spool.
    Run(daemon::RunArgs),
    /// Render synthetic road scenes: still images with ground truth, or
    /// simulated cameras and panic pillars served over RTSP.
    Simulate(simulate::SimulateArgs),
    /// Read plates and find vehicles in image and video files.
    Recognize(recognize::RecognizeArgs),
    /// Measure the detector and plate reader on labelled pictures (simulator
    /// stills, openalpr-style photos, plate crops, plate boxes) and a clip.
    Eval(eval::EvalArgs),
}

/// Carries out a command line; `shutdown` turns true on Ctrl-C.
fn run(cli: Cli, shutdown: &AtomicBool) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => daemon::run(args, shutdown),
        Command::Simulate(args) => simulate::run(args, shutdown),
        Command::Recognize(args) => recognize::run(args),
        Command::Eval(args) => eval::run(args, shutdown),
    }
}

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
    match run(cli, &shutdown) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! The safecity edge: what runs at each camera site.
//!
//! - [`recognize`]: plates and vehicles in image and video files, as JSON
//!   lines.
//! - [`simulate`]: the scene simulator's command line, which renders training
//!   images and serves simulated cameras and pillars over RTSP.
//!
//! [`Cli`] is the whole command line and [`run`] carries it out.

use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand};

pub mod recognize;
pub mod simulate;

/// `safecity-edge`: video analytics at the camera site.
#[derive(Debug, Parser)]
#[command(name = "safecity-edge", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Render synthetic road scenes: still images with ground truth, or
    /// simulated cameras and panic pillars served over RTSP.
    Simulate(simulate::SimulateArgs),
    /// Read plates and find vehicles in image and video files.
    Recognize(recognize::RecognizeArgs),
}

/// Carries out a command line; `shutdown` turns true on Ctrl-C.
pub fn run(cli: Cli, shutdown: &AtomicBool) -> anyhow::Result<()> {
    match cli.command {
        Command::Simulate(args) => simulate::run(args, shutdown),
        Command::Recognize(args) => recognize::run(args),
    }
}

//! The safecity edge: what runs at each camera site.
//!
//! - [`analyse`]: the models on a batch of frames (detector, plate reader,
//!   colour).
//! - [`passes`]: tracking and voting, one record per vehicle pass.
//! - [`events`]: the events a pass, a pillar press or a stream change
//!   makes.
//! - [`daemon`]: `safecity-edge run`, wiring sources, [`infer`]ence
//!   workers, passes, the spool, the [`forward`]er and the local [`api`].
//! - [`config`]: `edge.toml`, checked field by field.
//! - [`spool`]: the durable on-disk event spool (checksummed segments, alarms
//!   first, size cap) that events pass through on their way to the server.
//! - [`recognize`]: plates and vehicles in image and video files, as JSON
//!   lines.
//! - [`simulate`]: the scene simulator's command line, which renders training
//!   images and serves simulated cameras and pillars over RTSP.
//! - [`eval`]: the detector and plate reader measured on labelled pictures
//!   (simulator stills, openalpr-style photos, plate crops, plate boxes
//!   without texts) and an unlabelled clip, with the plate confidence's
//!   calibration, and timed.
//!
//! [`Cli`] is the whole command line and [`run`] carries it out.

use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand};

pub mod analyse;
pub mod api;
pub mod config;
pub mod daemon;
pub mod eval;
pub mod events;
pub mod forward;
pub mod infer;
pub mod passes;
pub mod recognize;
pub mod simulate;
pub mod spool;

/// `safecity-edge`: video analytics at the camera site.
#[derive(Debug, Parser)]
#[command(name = "safecity-edge", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
pub fn run(cli: Cli, shutdown: &AtomicBool) -> anyhow::Result<()> {
    match cli.command {
        Command::Run(args) => daemon::run(args, shutdown),
        Command::Simulate(args) => simulate::run(args, shutdown),
        Command::Recognize(args) => recognize::run(args),
        Command::Eval(args) => eval::run(args, shutdown),
    }
}

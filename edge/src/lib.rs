//! The edge daemon's library: what runs at each camera site.
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
//!
//! The `safecity-edge` command (crate `safecity-edge-cli`) puts these
//! together with the scene simulator (`safecity-sim`) and the models'
//! evaluation; this library links neither the simulator nor its RTSP server.

pub mod analyse;
pub mod api;
pub mod config;
pub mod daemon;
pub mod events;
pub mod forward;
pub mod infer;
pub mod passes;
pub mod recognize;
pub mod spool;

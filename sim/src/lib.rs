//! The Safe City scene simulator.
//!
//! It renders what a pole-mounted city camera sees: a road in perspective with
//! cars, buses, trucks and motorcycles carrying Kazakhstan plates, by day, at
//! dusk and at night, with blur, noise and rain. Every picture comes with its
//! ground truth, and everything is a pure function of the seed.
//!
//! - [`Scene`] renders a camera's frames in time order ([`SceneConfig`],
//!   [`ScriptedPass`] for vehicles a scenario places).
//! - [`render_still`] and [`write_stills`] make independent still images and
//!   `ground_truth.jsonl`, the training and evaluation data of the models;
//!   [`render_plate_window`] a small window around one plate, the plate
//!   reader's training data.
//! - [`PlateSpec`] and [`render_plate`] draw plates in the Kazakhstan formats.
//! - [`PillarScene`] renders a panic-pillar camera with a person at the pillar.
//! - [`Scenario`] scripts which vehicle passes which camera when.
//! - [`SimServer`] encodes each camera once to a file cached by seed and
//!   serves it in a loop over RTSP.
//! - [`cli`]: the `safecity-edge simulate` command line.

mod camera;
pub mod cli;
mod effects;
mod error;
mod font;
mod pillar;
mod plate;
mod raster;
mod render;
mod road;
mod scenario;
mod scene;
mod serve;
mod still;
mod truth;
mod vehicle;
mod video;

pub use error::SimError;
pub use pillar::PillarScene;
pub use plate::{
    plate_size_mm, render_plate, render_plate_scaled, render_plate_with_chars, PlateChar, PlateSpec,
};
pub use scenario::{
    AlarmSpec, CameraSpec, PassSpec, PillarSpec, Scenario, DEFAULT_VEHICLES_PER_MINUTE,
};
pub use scene::{Scene, SceneConfig, ScriptedPass};
pub use serve::{
    default_cache_dir, post_alarm, prepare_streams, rfc3339_ms, AlarmRecord, ClipPass, PassRecord,
    PreparedStream, ServedStream, SimEvent, SimServer, SimServerConfig, StreamSource, StreamSpec,
};
pub use still::{contact_sheet, render_plate_window, render_still, write_stills, StillsConfig};
pub use truth::{
    Direction, FrameTruth, Lighting, PlateLayout, PlateTruth, VehicleClass, VehicleColour,
    VehicleTruth,
};
pub use video::{encode_clip, ClipSpec};
